//! The compression lab: a checkpoint made smaller (quantized, pruned, cut to fewer layers or a
//! lower rank) is one more engine, and [`drift`](mod@drift) measures how far each word's vectors moved.
//!
//! A [`Variant`] is parsed from the grammar in [`variant`]; [`Checkpoint`] applies its weight
//! transforms to a checkpoint's tensors before the model is built (`LoadOptions::variant`),
//! or stores the result as a directory that loads again (`vecshift compress`). Adding a variant
//! is one entry in the grammar and its transform in `checkpoint.rs`; adding an architecture is
//! one row in [`names::LAYOUTS`].

pub mod checkpoint;
pub mod distill;
pub mod drift;
pub mod names;
pub mod quant;
pub mod sparse;
pub mod variant;

pub use checkpoint::{Checkpoint, VARIANT_KEY, stored_variant};
pub use drift::{LayerDrift, VariantDrift, drift, variant_drift};
pub use variant::{Rank, Step, Variant};
