//! # vecshift
//!
//! A word's *static* vector (Word2Vec, GloVe, fastText, finalfusion) is the same in every
//! sentence; its *contextual* vector (a transformer's) moves from sentence to sentence and
//! from layer to layer. vecshift puts both behind one trait, [`Embedder`], so the shift can be
//! measured:
//!
//! ```
//! use vecshift::{ContextualEncoder, Embedder, Occurrence, Pooling, StaticEngine, cosine};
//!
//! let bert = ContextualEncoder::load_default()?;
//! let glove = StaticEngine::open_default()?;
//! let river = Occurrence::find("bank", "We had a picnic on the river bank.")?;
//! let money = Occurrence::find("bank", "The bank approved my loan.")?;
//!
//! for engine in [&bert as &dyn Embedder, &glove] {
//!     let v = engine.embed_batch(&[river.clone(), money.clone()], engine.default_pooling())?;
//!     let (a, b) = (v[0].as_ref().unwrap(), v[1].as_ref().unwrap());
//!     let last = engine.num_layers() - 1;
//!     let c = cosine(a.vectors.layer(last).unwrap(), b.vectors.layer(last).unwrap());
//!     println!("{:<20} {:?} cosine {c:.3}", engine.name(), engine.kind());
//!     if engine.num_layers() == 1 {
//!         assert!((c - 1.0).abs() < 1e-6, "a static vector does not move");
//!     } else {
//!         assert!(c < 0.9, "BERT tells the two banks apart");
//!     }
//! }
//! # Ok::<(), vecshift::Error>(())
//! ```
#![warn(missing_docs)]

pub mod analysis;
pub mod compress;
pub mod contextual;
pub mod engine;
pub mod error;
pub mod eval;
pub mod occurrence;
mod panic_guard;
mod simd;
pub mod report;
pub mod senses;
pub mod source;
pub mod static_vectors;

/// The contextual engine under the name it had when BERT was its only architecture.
pub mod bert {
    pub use crate::contextual::*;
    pub use crate::engine::Pooling;
}

pub use analysis::{Pca, cosine, cosine_matrix, mean_off_diagonal, pca};
pub use contextual::{BertConfig, BertEncoder, ContextualEncoder, LoadOptions};
pub use engine::{Embedder, Embedding, EngineKind, LayerIndex, LayerSelection, LayerVectors, Pooling, SentenceEmbedder, SentenceVectors, Vocabulary};
pub use error::{Error, Result};
pub use occurrence::{Locator, Occurrence};
pub use report::{Analyzer, Report, ReportOptions};
pub use source::{HubOptions, ModelFiles, ModelSource};
pub use static_vectors::{LookupSource, Neighbor, OpenOptions, StaticEngine, StaticVector, VectorFormat};

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
