//! # vecshift
//!
//! A word's *static* vector (Word2Vec, GloVe, fastText, finalfusion) is the same in every
//! sentence; its *contextual* vector (any BERT-architecture model) moves from sentence to
//! sentence and from layer to layer. vecshift puts both behind one trait, [`Embedder`], so
//! the shift can be measured:
//!
//! ```
//! use vecshift::{BertEncoder, Embedder, Occurrence, StaticEngine, cosine};
//!
//! let bert = BertEncoder::load_default()?;
//! let glove = StaticEngine::open_default()?;
//! let river = Occurrence::find("We had a picnic on the river bank.", "bank")?;
//! let money = Occurrence::find("The bank approved my loan.", "bank")?;
//!
//! for engine in [&bert as &dyn Embedder, &glove] {
//!     let v = engine.embed_batch(&[river.clone(), money.clone()])?;
//!     let last = engine.num_layers() - 1;
//!     let c = cosine(v[0].layer(last).unwrap(), v[1].layer(last).unwrap());
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
pub mod bert;
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

pub use analysis::{Pca, cosine, cosine_matrix, mean_off_diagonal, pca};
pub use bert::{BertConfig, BertEncoder, Pooling};
pub use engine::{Embedder, EngineKind, LayerSelection, LayerVectors};
pub use error::{Error, Result};
pub use occurrence::{Locator, Occurrence};
pub use report::{Analyzer, Report, ReportOptions};
pub use source::{HubOptions, ModelFiles, ModelSource};
pub use static_vectors::{LookupSource, Neighbor, StaticEngine, StaticVector, VectorFormat};

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
