//! How far a variant moved each occurrence's vectors, per layer: the cosine between the two
//! vectors of the same occurrence, and what that does to the word-level measures
//! (self-similarity, sense separation, nearest neighbours).
//!
//! Every measure is computed in f64 from the f32 vectors; `scripts/drift_reference.py`
//! computes the same in numpy for the tests.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::contextual::ContextualEncoder;
use crate::engine::{Embedder, Embedding, LayerVectors, Pooling};
use crate::error::{Error, Result};
use crate::occurrence::Occurrence;

use super::Variant;

/// Neighbours compared by [`LayerDrift::neighbour_overlap`] (`analysis::cka::neighbour_overlap`).
pub const NEIGHBOURS: usize = 10;

/// The drift of one layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerDrift {
    /// The base engine's layer (0 = embeddings output).
    pub layer: usize,
    /// Mean over occurrences of the cosine between the base and the variant vector.
    pub drift_mean: f64,
    /// Smallest such cosine.
    pub drift_min: f64,
    /// Its 5th percentile (linear interpolation, as numpy's default).
    pub drift_p5: f64,
    /// Variant minus base self-similarity (mean pairwise cosine of a word's occurrences,
    /// averaged over the words with two or more); `None` without such a word.
    pub self_similarity_delta: Option<f64>,
    /// Variant minus base sense separation (mean within-sense minus mean between-sense cosine
    /// of a word's labelled occurrences, averaged over the words that have both kinds of pair).
    pub sense_separation_delta: Option<f64>,
    /// Mean share of each occurrence's 10 nearest other occurrences (cosine, all words pooled)
    /// that are the same in both engines; fewer neighbours when there are fewer occurrences.
    pub neighbour_overlap: Option<f64>,
}

/// The occurrences both engines embedded: their words and, where known, senses.
#[derive(Clone, Copy, Debug)]
pub struct Labels<'a> {
    /// The word of each occurrence.
    pub words: &'a [String],
    /// The sense label of each occurrence, if any.
    pub senses: &'a [Option<String>],
}

/// The cosine in f64; 0 for a zero vector, so that one dead vector does not turn every mean
/// into NaN.
fn cosine64(a: &[f32], b: &[f32]) -> f64 {
    let c = crate::analysis::cosine64(a, b);
    if c.is_nan() { 0.0 } else { c }
}

/// numpy's default percentile: linear interpolation between the closest ranks.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let position = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo as f64)
}

/// Per word with two or more occurrences: (mean pairwise cosine, mean within-sense cosine minus
/// mean between-sense cosine when both kinds of pair exist), averaged over words.
fn word_measures(vectors: &[&[f32]], labels: &Labels) -> (Option<f64>, Option<f64>) {
    let mut words: Vec<&str> = labels.words.iter().map(String::as_str).collect();
    words.sort_unstable();
    words.dedup();
    let (mut self_sims, mut separations) = (Vec::new(), Vec::new());
    for word in words {
        let members: Vec<usize> = (0..vectors.len()).filter(|&i| labels.words[i] == word).collect();
        if members.len() < 2 {
            continue;
        }
        let (mut all, mut within, mut between) = (Vec::new(), Vec::new(), Vec::new());
        for (a, &i) in members.iter().enumerate() {
            for &j in &members[a + 1..] {
                let c = cosine64(vectors[i], vectors[j]);
                all.push(c);
                match (&labels.senses[i], &labels.senses[j]) {
                    (Some(x), Some(y)) if x == y => within.push(c),
                    (Some(_), Some(_)) => between.push(c),
                    _ => {}
                }
            }
        }
        self_sims.push(mean(&all));
        if !within.is_empty() && !between.is_empty() {
            separations.push(mean(&within) - mean(&between));
        }
    }
    let average = |v: &[f64]| (!v.is_empty()).then(|| mean(v));
    (average(&self_sims), average(&separations))
}

fn mean(values: &[f64]) -> f64 {
    // Kept within the values' range: the rounded sum of n equal cosines just below 1, divided
    // by n, can land an ulp below each of them.
    // (NaN cosines, of zero vectors, make the mean NaN; `min`/`max` skip them.)
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    if min <= max { mean.clamp(min, max) } else { mean }
}

/// Layer `l` of every occurrence.
fn pick(all: &[LayerVectors], l: usize) -> Result<Vec<&[f32]>> {
    all.iter().map(|v| v.layer(l).ok_or_else(|| Error::InvalidArgument(format!("drift: an occurrence has no layer {l}")))).collect()
}

/// The drift of every layer of `variant` against `base`, over the same occurrences.
///
/// `layer_map[k]` is the base layer that the variant's layer `k` stands for (the identity
/// unless layers were dropped; see [`super::Variant::layer_map`]).
pub fn drift(base: &[LayerVectors], variant: &[LayerVectors], layer_map: &[usize], labels: &Labels) -> Result<Vec<LayerDrift>> {
    let n = base.len();
    if variant.len() != n || labels.words.len() != n || labels.senses.len() != n {
        return Err(Error::InvalidArgument(format!(
            "drift needs the same occurrences for both engines: {n} base, {} variant, {} words, {} senses",
            variant.len(),
            labels.words.len(),
            labels.senses.len()
        )));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    layer_map
        .iter()
        .enumerate()
        .map(|(k, &layer)| {
            let (b, v) = (pick(base, layer)?, pick(variant, k)?);
            let cosines: Vec<f64> = b.iter().zip(&v).map(|(x, y)| cosine64(x, y)).collect();
            let (bs, bsep) = word_measures(&b, labels);
            let (vs, vsep) = word_measures(&v, labels);
            Ok(LayerDrift {
                layer,
                drift_mean: mean(&cosines),
                drift_min: cosines.iter().copied().fold(f64::INFINITY, f64::min),
                drift_p5: percentile(&cosines, 5.0),
                self_similarity_delta: vs.zip(bs).map(|(v, b)| v - b),
                sense_separation_delta: vsep.zip(bsep).map(|(v, b)| v - b),
                neighbour_overlap: crate::analysis::cka::neighbour_overlap(&b, &v, NEIGHBOURS),
            })
        })
        .collect()
}

/// One variant engine against its original: `report --json`'s `"variants"` entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantDrift {
    /// The variant engine's name (`NAME·V`).
    pub engine: String,
    /// The original engine's name.
    pub base: String,
    /// The variant's canonical label.
    pub variant: String,
    /// Bytes of the variant's weights as `vecshift compress` stores them.
    pub bytes: u64,
    /// Bytes of the original's weights file.
    pub base_bytes: u64,
    /// Real (non-padding) tokens per second of the variant embedding the occurrences'
    /// sentences here, wall clock: comparable only with [`Self::base_tokens_per_second`],
    /// measured in the same run on the same sentences.
    #[serde(default)]
    pub tokens_per_second: f64,
    /// The same for the original.
    #[serde(default)]
    pub base_tokens_per_second: f64,
    /// Occurrences both engines embedded.
    pub occurrences: usize,
    /// Per layer of the variant, named by the original layer it stands for.
    pub layers: Vec<LayerDrift>,
}

/// Embeds `occurrences` with `engine` and measures its speed: the real tokens (those of the
/// occurrences it embedded, special tokens included, padding not) per second of wall clock.
///
/// One occurrence is embedded first, untimed, so that one-time costs (allocations, first
/// touches of the weights) count against neither of two engines compared. The speed is 0
/// when no time could be measured. [`variant_drift`] and the TUI's Models pane measure with it.
pub fn timed_embed(engine: &ContextualEncoder, occurrences: &[Occurrence], pooling: Pooling) -> Result<(Vec<Result<Embedding>>, f64)> {
    if let Some(first) = occurrences.first() {
        engine.embed_batch(std::slice::from_ref(first), pooling)?;
    }
    let start = Instant::now();
    let embedded = engine.embed_batch(occurrences, pooling)?;
    let seconds = start.elapsed().as_secs_f64();
    let mut tokens = 0;
    for (occurrence, embedding) in occurrences.iter().zip(&embedded) {
        if embedding.is_ok() {
            tokens += engine.tokenize(occurrence)?.ids.len();
        }
    }
    Ok((embedded, if seconds > 0.0 { tokens as f64 / seconds } else { 0.0 }))
}

/// Embeds `occurrences` with `base` and with `engine` (`base` with `variant` applied) and
/// measures the drift, and each engine's speed on them (timed separately). Occurrences either
/// engine cannot embed are left out of both.
pub fn variant_drift(
    base: &ContextualEncoder,
    engine: &ContextualEncoder,
    variant: &Variant,
    occurrences: &[Occurrence],
    senses: &[Option<String>],
    pooling: Pooling,
) -> Result<VariantDrift> {
    let (a, base_tokens_per_second) = timed_embed(base, occurrences, pooling)?;
    let (b, tokens_per_second) = timed_embed(engine, occurrences, pooling)?;
    let (mut bv, mut vv, mut words, mut kept_senses) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, (x, y)) in a.into_iter().zip(b).enumerate() {
        if let (Ok(x), Ok(y)) = (x, y) {
            bv.push(x.vectors);
            vv.push(y.vectors);
            words.push(occurrences[i].word().to_lowercase());
            kept_senses.push(senses.get(i).cloned().flatten());
        }
    }
    let layer_map = variant.layer_map(base.num_layers() - 1);
    let layers = drift(&bv, &vv, &layer_map, &Labels { words: &words, senses: &kept_senses })?;
    Ok(VariantDrift {
        engine: engine.name().to_owned(),
        base: base.name().to_owned(),
        variant: variant.to_string(),
        bytes: engine.weight_bytes(),
        base_bytes: base.weight_bytes(),
        tokens_per_second,
        base_tokens_per_second,
        occurrences: bv.len(),
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], 5) == 1.15
        assert!((percentile(&[4.0, 1.0, 3.0, 2.0], 5.0) - 1.15).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 5.0), 7.0);
    }

    #[test]
    fn identical_engines_do_not_drift() {
        let vectors: Vec<LayerVectors> = (0..4).map(|i| LayerVectors::new(vec![vec![1.0, i as f32], vec![i as f32, 2.0]])).collect();
        let words: Vec<String> = ["a", "a", "b", "b"].map(String::from).to_vec();
        let senses = vec![Some("x".to_owned()), Some("y".to_owned()), None, None];
        let d = drift(&vectors, &vectors, &[0, 1], &Labels { words: &words, senses: &senses }).unwrap();
        for layer in d {
            assert!((layer.drift_min - 1.0).abs() < 1e-12);
            assert_eq!(layer.self_similarity_delta, Some(0.0));
            assert_eq!(layer.sense_separation_delta, None, "word a has no within-sense pair");
            assert_eq!(layer.neighbour_overlap, Some(1.0));
        }
    }
}
