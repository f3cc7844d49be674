//! What anisotropy corrections do to self-similarity, per layer: the report's `postprocess`
//! section.
//!
//! A correction is fitted per BERT layer, on every sampled occurrence of every word (no labels
//! are used) or on a separate corpus, and applied to each sampled vector before the cosines.
//! Self-similarity and the anisotropy baseline are then taken exactly as for the raw vectors,
//! from sums of unit vectors, but over the sample (each word's `sampled`), since the corrected
//! vectors of occurrences outside it are not kept. The static engine is left out: a correction
//! maps one vector to one vector, so a word's static self-similarity stays 1.

use rayon::prelude::*;
use serde::Serialize;

use super::WordState;
use super::metrics::{Moments, anisotropy_baseline};
use crate::analysis::postprocess::Postprocess;
use crate::engine::LayerVectors;

/// The corrections a report measures, and what they are fitted on.
#[derive(Clone, Debug, Default)]
pub struct Corrections {
    /// The corrections, each measured on its own (`none` measures the raw sample).
    pub methods: Vec<Postprocess>,
    /// A corpus to fit them on instead of the sampled occurrences: a name and its occurrences'
    /// per-layer vectors from the report's contextual engine.
    pub fit: Option<(String, Vec<LayerVectors>)>,
}

/// Self-similarity per layer after one correction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CorrectionReport {
    /// The correction, as `--postprocess` names it.
    pub method: String,
    /// What it was fitted on: `sampled occurrences (N)` or the corpus and its size.
    pub fit: String,
    /// Means over words, one entry per BERT layer.
    pub layers: Vec<CorrectedLayer>,
    /// Per word, in report order.
    pub words: Vec<CorrectedWord>,
}

/// The means over words at one layer after a correction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CorrectedLayer {
    /// The layer (0 = embeddings output).
    pub layer: usize,
    /// Mean over words of each word's self-similarity over its sampled occurrences.
    pub self_similarity: Option<f64>,
    /// Mean cosine between sampled occurrences of different words.
    pub anisotropy_baseline: Option<f64>,
    /// Mean over words of self-similarity minus the baseline.
    pub adjusted_self_similarity: Option<f64>,
}

/// One word's self-similarity per layer after a correction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CorrectedWord {
    /// The word.
    pub word: String,
    /// One value per BERT layer, layer 0 first; `null` below two sampled occurrences.
    pub self_similarity: Vec<Option<f64>>,
}

/// The `postprocess` section: one entry per correction. A correction that cannot be fitted
/// (fewer than two vectors) gives `null` measures.
pub(crate) fn measure(corrections: &Corrections, words: &[WordState], engine: usize, num_layers: usize) -> Vec<CorrectionReport> {
    let sampled: usize = words.iter().map(|w| w.sample.len()).sum();
    corrections
        .methods
        .iter()
        .map(|method| {
            // Per layer: each word's moments of its corrected sample, or None when unfitted.
            let per_layer: Vec<Option<Vec<Moments>>> = (0..num_layers)
                .into_par_iter()
                .map(|layer| {
                    let at_hand: Vec<&[f32]> = words.iter().flat_map(|w| w.sample.iter().map(move |s| s.vectors[engine].as_ref().expect("a contextual engine embeds every sampled occurrence")[layer].as_slice())).collect();
                    let fitted = match &corrections.fit {
                        Some((_, corpus)) if *method != Postprocess::None => {
                            method.fit(&corpus.iter().filter_map(|v| v.layer(layer)).collect::<Vec<_>>())
                        }
                        _ => method.fit(&at_hand),
                    }
                    .ok()?;
                    Some(
                        words
                            .iter()
                            .map(|w| {
                                let mut moments = Moments::default();
                                w.sample.iter().for_each(|s| moments.add(&fitted.apply(&s.vectors[engine].as_ref().expect("a contextual engine embeds every sampled occurrence")[layer]), None));
                                moments
                            })
                            .collect(),
                    )
                })
                .collect();
            let layers = per_layer
                .iter()
                .enumerate()
                .map(|(layer, moments)| {
                    let Some(moments) = moments else {
                        return CorrectedLayer { layer, self_similarity: None, anisotropy_baseline: None, adjusted_self_similarity: None };
                    };
                    let baseline = anisotropy_baseline(moments.iter());
                    let own: Vec<f64> = moments.iter().filter_map(Moments::self_similarity).collect();
                    let mean = |values: &[f64]| (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
                    let adjusted: Vec<f64> = baseline.map(|b| own.iter().map(|s| s - b).collect()).unwrap_or_default();
                    CorrectedLayer { layer, self_similarity: mean(&own), anisotropy_baseline: baseline, adjusted_self_similarity: mean(&adjusted) }
                })
                .collect();
            let words = words
                .iter()
                .enumerate()
                .map(|(i, w)| CorrectedWord {
                    word: w.word.clone(),
                    self_similarity: per_layer.iter().map(|m| m.as_ref().and_then(|m| m[i].self_similarity())).collect(),
                })
                .collect();
            let fit = match &corrections.fit {
                Some((name, corpus)) if *method != Postprocess::None => format!("{name} ({} occurrences)", corpus.len()),
                _ => format!("sampled occurrences ({sampled})"),
            };
            CorrectionReport { method: method.to_string(), fit, layers, words }
        })
        .collect()
}
