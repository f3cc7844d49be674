//! WiC (Word-in-Context, Pilehvar & Camacho-Collados 2019): does the target word have the same
//! sense in two sentences? Scored per layer by thresholding the cosine of its two vectors.

use std::path::Path;

use serde::Serialize;

use super::{bad_line, display_name, read_lines};
use crate::analysis::postprocess::Postprocess;
use crate::engine::{Embedder, LayerSelection, LayerVectors, Pooling};
use crate::error::{Error, Result};
use crate::occurrence::{Locator, Occurrence};

/// Folds of the cross-validation used when no training split is given.
pub const DEFAULT_FOLDS: usize = 5;

/// Pairs embedded per call to [`Embedder::embed_batch`]: bounds the memory held at once.
const PAIRS_PER_BATCH: usize = 512;

/// Why the static engine cannot do better than chance, shown with its score.
pub const STATIC_NOTE: &str = "a static model gives the target word one vector whatever the sentence, so its cosine \
    across the two sentences is 1 for every pair and no threshold can separate same-sense from different-sense pairs: \
    it predicts one label for all, right for half of a balanced set";

/// One WiC instance.
#[derive(Clone, Debug, PartialEq)]
pub struct WicPair {
    /// The target word (a lemma; the sentences may inflect it).
    pub word: String,
    /// Its part of speech (`N` or `V`).
    pub pos: String,
    /// The target in the first sentence (located by whitespace-token index).
    pub first: Occurrence,
    /// The target in the second sentence.
    pub second: Occurrence,
    /// Whether the sense is the same (`T` in the gold file).
    pub same_sense: bool,
    /// Line number in the data file (from 1).
    pub line: usize,
}

/// The pairs of one WiC split.
#[derive(Clone, Debug, PartialEq)]
pub struct WicSet {
    /// The data file's name.
    pub file: String,
    /// The pairs, in file order.
    pub pairs: Vec<WicPair>,
}

impl WicSet {
    /// Reads the published format: `data` has `target<TAB>POS<TAB>i-j<TAB>sentence1<TAB>sentence2`
    /// per line, `i` and `j` being the target's whitespace-token indices (from 0) in each
    /// sentence; `gold` has `T` or `F` on the matching line.
    pub fn read(data: impl AsRef<Path>, gold: impl AsRef<Path>) -> Result<Self> {
        let (data, gold) = (data.as_ref(), gold.as_ref());
        let rows = read_lines(data, "WiC data file")?;
        let labels = read_lines(gold, "WiC gold file")?;
        if rows.len() != labels.len() {
            return Err(Error::InvalidArgument(format!(
                "{} has {} lines but {} has {}: pass the gold file that belongs to the data file",
                data.display(), rows.len(), gold.display(), labels.len()
            )));
        }
        let mut pairs = Vec::with_capacity(rows.len());
        for ((line, text), (gold_line, label)) in rows.into_iter().zip(labels) {
            let same_sense = match label.trim() {
                "T" => true,
                "F" => false,
                other => return Err(bad_line(gold, gold_line, format!("expected T or F, found {other:?}"))),
            };
            let fields: Vec<&str> = text.split('\t').collect();
            let [word, pos, indices, s1, s2] = fields[..] else {
                return Err(bad_line(data, line, format!(
                    "expected 5 tab-separated columns (target, POS, i-j, sentence1, sentence2), found {}", fields.len()
                )));
            };
            let parsed = indices.split_once('-').and_then(|(i, j)| Some((i.trim().parse().ok()?, j.trim().parse().ok()?)));
            let Some((i, j)) = parsed else {
                return Err(bad_line(data, line, format!("expected token indices i-j such as 3-0, found {indices:?}")));
            };
            let locate = |sentence: &str, index: usize| {
                Occurrence::locate(word, sentence, &Locator::TokenIndex(index)).map_err(|e| bad_line(data, line, e))
            };
            pairs.push(WicPair {
                word: word.to_owned(),
                pos: pos.to_owned(),
                first: locate(s1, i)?,
                second: locate(s2, j)?,
                same_sense,
                line,
            });
        }
        if pairs.is_empty() {
            return Err(Error::InvalidArgument(format!("{} has no WiC pairs", data.display())));
        }
        Ok(WicSet { file: display_name(data), pairs })
    }

    /// The gold labels, in order.
    pub fn labels(&self) -> Vec<bool> {
        self.pairs.iter().map(|p| p.same_sense).collect()
    }
}

/// A threshold on the cosine: "same sense" when `cosine >= threshold`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    /// The threshold.
    pub value: f64,
    /// Correct predictions on the data it was chosen on.
    pub correct: usize,
}

/// The threshold with the most correct predictions on `(scores, labels)`.
///
/// Every cut between two adjacent distinct scores is tried, plus "all same" and "all
/// different"; among equally good cuts the lowest wins. The value reported is the midpoint of
/// the cut (the lowest score for "all same", just above the highest for "all different"). NaN
/// scores count as below every threshold.
pub fn best_threshold(scores: &[f64], labels: &[bool]) -> Threshold {
    assert_eq!(scores.len(), labels.len());
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let finite: Vec<usize> = order.iter().copied().filter(|&i| !scores[i].is_nan()).collect();
    let nan_negatives = order.iter().filter(|&&i| scores[i].is_nan() && !labels[i]).count();
    let positives = finite.iter().filter(|&&i| labels[i]).count();
    // Cut at position p of `finite`: the first p are "different", the rest "same".
    let mut best = Threshold { value: finite.first().map_or(0.0, |&i| scores[i]), correct: positives + nan_negatives };
    let mut correct = positives + nan_negatives;
    for p in 1..=finite.len() {
        let prev = finite[p - 1];
        correct = if labels[prev] { correct - 1 } else { correct + 1 };
        let boundary = p == finite.len() || scores[finite[p]] != scores[prev];
        if boundary && correct > best.correct {
            let value = match finite.get(p) {
                Some(&next) => (scores[prev] + scores[next]) / 2.0,
                None => scores[prev].next_up(),
            };
            best = Threshold { value, correct };
        }
    }
    best
}

/// Correct predictions of `cosine >= threshold` against the labels.
pub fn count_correct(scores: &[f64], labels: &[bool], threshold: f64) -> usize {
    scores.iter().zip(labels).filter(|&(&s, &l)| (s >= threshold) == l).count()
}

/// Stratified cross-validated accuracy: the `k`-th pair with a given label (in file order)
/// belongs to fold `k % folds`, so every fold has the labels in the proportions of the whole
/// set, and each fold is predicted with the threshold chosen on the others. Returns the number
/// of correct predictions.
///
/// Stratifying matters for a model with no signal: on a balanced set, plain folds leave each
/// training part slightly unbalanced towards the label its held-out fold lacks, and a constant
/// score would then land below chance.
pub fn cross_validate(scores: &[f64], labels: &[bool], folds: usize) -> usize {
    let folds = folds.clamp(1, scores.len().max(1));
    let mut seen = [0usize; 2];
    let fold_of: Vec<usize> = labels
        .iter()
        .map(|&l| {
            let k = &mut seen[usize::from(l)];
            *k += 1;
            (*k - 1) % folds
        })
        .collect();
    (0..folds)
        .map(|fold| {
            let (test, train): (Vec<usize>, Vec<usize>) = (0..scores.len()).partition(|&i| fold_of[i] == fold);
            let pick = |idx: &[usize]| -> (Vec<f64>, Vec<bool>) { (idx.iter().map(|&i| scores[i]).collect(), idx.iter().map(|&i| labels[i]).collect()) };
            let (train_scores, train_labels) = pick(&train);
            let (test_scores, test_labels) = pick(&test);
            let threshold = if train.is_empty() { f64::NEG_INFINITY } else { best_threshold(&train_scores, &train_labels).value };
            count_correct(&test_scores, &test_labels, threshold)
        })
        .sum()
}

/// Per layer, the cosine between the target's vectors in the two sentences of each pair.
///
/// A pair the engine cannot embed (a word out of a static vocabulary) gets a NaN cosine.
pub fn layer_cosines(engine: &dyn Embedder, pairs: &[WicPair], pooling: Pooling) -> Result<Vec<Vec<f64>>> {
    let mut layers = vec![Vec::with_capacity(pairs.len()); engine.num_layers()];
    for chunk in pairs.chunks(PAIRS_PER_BATCH) {
        let occurrences: Vec<Occurrence> = chunk.iter().flat_map(|p| [p.first.clone(), p.second.clone()]).collect();
        let vectors = engine.embed_batch(&occurrences, pooling)?;
        for pair in vectors.chunks(2) {
            for (layer, cosines) in layers.iter_mut().enumerate() {
                let (a, b) = (layer_of(&pair[0], layer), layer_of(&pair[1], layer));
                cosines.push(a.zip(b).map_or(f64::NAN, |(a, b)| f64::from(crate::analysis::cosine(a, b))));
            }
        }
    }
    Ok(layers)
}

/// One layer of an embedding, when the occurrence could be embedded.
fn layer_of(found: &Result<crate::engine::Embedding>, layer: usize) -> Option<&[f32]> {
    found.as_ref().ok().and_then(|e| e.vectors.layer(layer))
}

/// One layer's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WicLayer {
    /// The layer (0 = embeddings output).
    pub layer: usize,
    /// The cosine threshold chosen (on the training split, or on all pairs with cross-validation).
    pub threshold: f64,
    /// Accuracy on the evaluated pairs.
    pub accuracy: f64,
}

/// The result of a WiC evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WicResult {
    /// The evaluated data file's name.
    pub file: String,
    /// The contextual model.
    pub model: String,
    /// Pairs evaluated.
    pub n: usize,
    /// How the thresholds were chosen: `"train"` or `"k-fold cross-validation"`.
    pub threshold_selection: String,
    /// The training file's name, when one was given.
    pub train_file: Option<String>,
    /// Pairs in the training file.
    pub train_n: Option<usize>,
    /// Per layer of the contextual model.
    pub layers: Vec<WicLayer>,
    /// The static engine's accuracy under the same procedure (50% on a balanced set).
    pub static_accuracy: f64,
    /// Why the static engine scores what it scores.
    pub static_note: String,
    /// The correction applied to `layers` (`none` unless asked for).
    pub postprocess: String,
    /// Every requested layer selection x correction (empty unless more than one was asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<WicVariant>,
}

/// One layer selection and correction scored on WiC.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WicVariant {
    /// The layer selection (`6`, `3..=6`, `all`).
    pub layers: String,
    /// The correction.
    pub postprocess: String,
    /// The threshold chosen.
    pub threshold: f64,
    /// Accuracy on the evaluated pairs.
    pub accuracy: f64,
}

/// Corrections and layer selections for [`evaluate_with`].
#[derive(Clone, Debug, Default)]
pub struct WicOptions {
    /// The corrections; the first is applied to `layers`, all appear in `variants`.
    pub postprocess: Vec<Postprocess>,
    /// Layer selections scored in `variants` besides each single layer.
    pub selections: Vec<LayerSelection>,
    /// Vectors to fit the corrections on instead of the pairs at hand: a name and per-layer vectors.
    pub fit: Option<(String, Vec<LayerVectors>)>,
    /// How each word's pieces are pooled; `None`: the engine's default.
    pub pooling: Option<Pooling>,
}

/// Evaluates a contextual model on `test`, choosing each layer's threshold on `train`, or by
/// stratified `folds`-fold cross-validation on `test` itself when there is no training split (the
/// threshold reported is then the one chosen on all of `test`).
///
/// The static engine is scored by the same procedure with a cosine of 1 for every pair: a
/// static model gives a word one vector, so the target's two vectors are identical (see
/// [`STATIC_NOTE`]).
pub fn evaluate(engine: &dyn Embedder, pooling: Pooling, test: &WicSet, train: Option<&WicSet>, folds: usize) -> Result<WicResult> {
    evaluate_with(engine, test, train, folds, &WicOptions { pooling: Some(pooling), ..WicOptions::default() })
}

/// [`evaluate`] with anisotropy corrections and layer selections: each correction is fitted per
/// layer selection on the vectors of all the pairs at hand (test and train; no labels are used),
/// or on `options.fit`; `layers` shows the first correction, `variants` every selection x correction.
pub fn evaluate_with(engine: &dyn Embedder, test: &WicSet, train: Option<&WicSet>, folds: usize, options: &WicOptions) -> Result<WicResult> {
    let pooling = options.pooling.unwrap_or_else(|| engine.default_pooling());
    let postprocess = if options.postprocess.is_empty() { vec![Postprocess::None] } else { options.postprocess.clone() };
    let test_labels = test.labels();
    let train_labels = train.map(WicSet::labels);
    let n = test.pairs.len() as f64;
    let layers_count = engine.num_layers();
    for s in &options.selections {
        s.range(layers_count)?;
    }
    let (test_vectors, train_vectors, test_cosines_raw) = if postprocess == [Postprocess::None] && options.selections.is_empty() {
        // The common case streams: no vectors are kept.
        (Vec::new(), Vec::new(), Some((layer_cosines(engine, &test.pairs, pooling)?, train.map(|t| layer_cosines(engine, &t.pairs, pooling)).transpose()?)))
    } else {
        (pair_vectors(engine, &test.pairs, pooling)?, train.map(|t| pair_vectors(engine, &t.pairs, pooling)).transpose()?.unwrap_or_default(), None)
    };
    let score = |te: &[f64], tr: Option<&Vec<f64>>| -> (f64, f64) {
        match (tr, &train_labels) {
            (Some(tr), Some(labels)) => {
                let threshold = best_threshold(tr, labels).value;
                (threshold, count_correct(te, &test_labels, threshold) as f64 / n)
            }
            _ => (best_threshold(te, &test_labels).value, cross_validate(te, &test_labels, folds) as f64 / n),
        }
    };
    let single: Vec<LayerSelection> = (0..layers_count as isize).map(LayerSelection::Layer).collect();
    let mut layers = Vec::new();
    let mut variants = Vec::new();
    if let Some((te, tr)) = &test_cosines_raw {
        for (layer, cos) in te.iter().enumerate() {
            let (threshold, accuracy) = score(cos, tr.as_ref().map(|t| &t[layer]));
            layers.push(WicLayer { layer, threshold, accuracy });
        }
    } else {
        for (index, selection) in single.iter().chain(&options.selections).enumerate() {
            let pick = |v: &[LayerVectors]| -> Result<Vec<Vec<f32>>> { v.iter().map(|x| x.select(selection)).collect() };
            let (te, tr) = (pick(&test_vectors)?, pick(&train_vectors)?);
            let at_hand: Vec<&Vec<f32>> = te.iter().chain(&tr).collect();
            for (p, how) in postprocess.iter().enumerate() {
                let fitted = match &options.fit {
                    Some((_, corpus)) if *how != Postprocess::None => how.fit(&pick(corpus)?)?,
                    _ => how.fit(&at_hand)?,
                };
                let cosines = |v: &[Vec<f32>]| -> Vec<f64> {
                    v.chunks(2).map(|pair| f64::from(crate::analysis::cosine(&fitted.apply(&pair[0]), &fitted.apply(&pair[1])))).collect()
                };
                let te_cos = cosines(&te);
                let tr_cos = train.map(|_| cosines(&tr));
                let (threshold, accuracy) = score(&te_cos, tr_cos.as_ref());
                if p == 0 && index < single.len() {
                    layers.push(WicLayer { layer: index, threshold, accuracy });
                }
                variants.push(WicVariant { layers: selection.to_string(), postprocess: how.to_string(), threshold, accuracy });
            }
        }
        if postprocess.len() == 1 && options.selections.is_empty() {
            variants.clear();
        }
    }
    let static_correct = match &train_labels {
        Some(labels) => {
            let static_threshold = best_threshold(&vec![1.0; labels.len()], labels).value;
            count_correct(&vec![1.0; test_labels.len()], &test_labels, static_threshold)
        }
        None => cross_validate(&vec![1.0; test_labels.len()], &test_labels, folds),
    };
    Ok(WicResult {
        file: test.file.clone(),
        model: engine.name().to_owned(),
        n: test.pairs.len(),
        threshold_selection: if train.is_some() { "train".into() } else { format!("{folds}-fold cross-validation") },
        train_file: train.map(|t| t.file.clone()),
        train_n: train.map(|t| t.pairs.len()),
        layers,
        static_accuracy: static_correct as f64 / n,
        static_note: STATIC_NOTE.to_owned(),
        postprocess: postprocess[0].to_string(),
        variants,
    })
}

/// The target's per-layer vectors in both sentences of each pair: first, second, first, ...
pub fn pair_vectors(engine: &dyn Embedder, pairs: &[WicPair], pooling: Pooling) -> Result<Vec<LayerVectors>> {
    let mut out = Vec::with_capacity(2 * pairs.len());
    for chunk in pairs.chunks(PAIRS_PER_BATCH) {
        let occurrences: Vec<Occurrence> = chunk.iter().flat_map(|p| [p.first.clone(), p.second.clone()]).collect();
        out.extend(engine.embed_vectors(&occurrences, pooling)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The best threshold by trying every candidate: a slow, obviously correct reference.
    fn brute_force(scores: &[f64], labels: &[bool]) -> usize {
        let mut candidates: Vec<f64> = scores.to_vec();
        candidates.push(f64::INFINITY);
        candidates.iter().map(|&t| count_correct(scores, labels, t)).max().unwrap()
    }

    #[test]
    fn threshold_is_optimal_and_reproduces_its_count() {
        let cases: Vec<(Vec<f64>, Vec<bool>)> = vec![
            (vec![0.1, 0.9, 0.5, 0.7, 0.3], vec![false, true, false, true, true]),
            (vec![0.5, 0.5, 0.5, 0.2], vec![true, false, true, false]),
            (vec![1.0; 4], vec![true, false, true, false]),
            (vec![0.9, 0.8, 0.1], vec![false, false, true]),
            (vec![0.4, f64::NAN, 0.6], vec![true, false, true]),
        ];
        for (scores, labels) in cases {
            let t = best_threshold(&scores, &labels);
            assert_eq!(t.correct, brute_force(&scores, &labels), "{scores:?}");
            assert_eq!(count_correct(&scores, &labels, t.value), t.correct, "{scores:?} at {}", t.value);
        }
        // Constant scores on a balanced set: "all same" (the lowest cut) wins the tie.
        assert_eq!(best_threshold(&[1.0; 4], &[true, false, true, false]).value, 1.0);
        assert!(best_threshold(&[0.9, 0.8], &[false, false]).value > 0.9);
    }

    #[test]
    fn cross_validation_uses_held_out_thresholds() {
        // Perfectly separable: every fold's threshold separates the held-out pairs too.
        let scores = [0.9, 0.1, 0.8, 0.2, 0.85, 0.15];
        let labels = [true, false, true, false, true, false];
        assert_eq!(cross_validate(&scores, &labels, 3), 6);
        // Constant scores on a balanced set: stratified folds keep every training part balanced,
        // so the tie goes to "same" everywhere and exactly the "same" half is right.
        assert_eq!(cross_validate(&[1.0; 6], &labels, 3), 3);
        assert_eq!(cross_validate(&[1.0; 12], &[true, true, false, true, false, false, true, false, true, true, false, false], 5), 6);
    }
}
