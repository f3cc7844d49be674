//! Supervised word sense disambiguation by nearest neighbour (Loureiro et al. 2021, "Analysis and
//! Evaluation of Language Models for Word Sense Disambiguation"): each test occurrence takes the
//! sense of its nearest training occurrence (1-NN), or of the nearest sense centroid, by cosine,
//! per layer.
//!
//! Input, one target word per file set: a data file with `<token index>TAB<sentence>` per line
//! (the target's whitespace-token index, from 0, as in WiC) and a gold file with one sense id per
//! line. Punctuation attached to the token ("bank," or "(bank)") is left out of the target.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;

use super::{bad_line, display_name, read_lines};
use crate::analysis::postprocess::{Fitted, Postprocess};
use crate::engine::{Embedder, EngineKind, LayerSelection, LayerVectors};
use crate::error::{Error, Result};
use crate::occurrence::{Locator, Occurrence};
use crate::senses::{Assign, NearestSense};

/// Why a static engine scores the majority class.
pub const STATIC_NOTE: &str = "a static model gives the target word one vector in every sentence, so every training \
    occurrence is equally near and nearest-neighbour WSD can only predict one sense for all: the most frequent training sense \
    (majority_baseline)";

/// The labelled occurrences of one word.
#[derive(Clone, Debug, PartialEq)]
pub struct WsdWord {
    /// The word (the folder name, or the most frequent target token).
    pub word: String,
    /// Training occurrences with their sense ids.
    pub train: Vec<(Occurrence, String)>,
    /// Test occurrences with their gold sense ids.
    pub test: Vec<(Occurrence, String)>,
}

/// A WSD test set: one or more words.
#[derive(Clone, Debug, PartialEq)]
pub struct WsdSet {
    /// Where it was read from (shown in results).
    pub source: String,
    /// The words, in the order read (folders sorted by name).
    pub words: Vec<WsdWord>,
}

impl WsdSet {
    /// Reads one word's four files.
    pub fn read_files(train_data: &Path, train_gold: &Path, test_data: &Path, test_gold: &Path) -> Result<Self> {
        let train = read_split(train_data, train_gold)?;
        let test = read_split(test_data, test_gold)?;
        let word = most_common_token(train.iter().chain(&test).map(|(o, _)| o));
        Ok(WsdSet { source: display_name(test_data), words: vec![WsdWord { word, train, test }] })
    }

    /// Reads a folder holding `<word>/{train,test}.{data,gold}.txt` for each word.
    pub fn read_dir(dir: &Path) -> Result<Self> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::InvalidArgument(format!("cannot read the WSD folder {}: {e}", dir.display())))?;
        let mut folders: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("test.data.txt").is_file()).collect();
        folders.sort();
        if folders.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{} holds no <word>/test.data.txt: pass a folder of <word>/{{train,test}}.{{data,gold}}.txt, or the four files",
                dir.display()
            )));
        }
        let words = folders
            .iter()
            .map(|f| {
                let train = read_split(&f.join("train.data.txt"), &f.join("train.gold.txt"))?;
                let test = read_split(&f.join("test.data.txt"), &f.join("test.gold.txt"))?;
                Ok(WsdWord { word: display_name(f), train, test })
            })
            .collect::<Result<_>>()?;
        Ok(WsdSet { source: display_name(dir), words })
    }
}

fn read_split(data: &Path, gold: &Path) -> Result<Vec<(Occurrence, String)>> {
    let rows = read_lines(data, "WSD data file")?;
    let labels = read_lines(gold, "WSD gold file")?;
    if rows.len() != labels.len() {
        return Err(Error::InvalidArgument(format!(
            "{} has {} lines but {} has {}: pass the gold file that belongs to the data file",
            data.display(), rows.len(), gold.display(), labels.len()
        )));
    }
    if rows.is_empty() {
        return Err(Error::InvalidArgument(format!("{} is empty: a WSD split needs at least one line", data.display())));
    }
    rows.into_iter()
        .zip(labels)
        .map(|((line, text), (gold_line, label))| {
            let label = label.trim();
            if label.is_empty() {
                return Err(bad_line(gold, gold_line, "is empty: expected a sense id"));
            }
            let (index, sentence) = text
                .split_once('\t')
                .ok_or_else(|| bad_line(data, line, "expected <token index><TAB><sentence>"))?;
            let index: usize = index.trim().parse().map_err(|_| bad_line(data, line, format!("expected a token index (from 0), found {index:?}")))?;
            let occ = Occurrence::locate("", sentence, &Locator::TokenIndex(index)).map_err(|e| bad_line(data, line, e))?;
            Ok((trim_punctuation(occ).map_err(|e| bad_line(data, line, e))?, label.to_owned()))
        })
        .collect()
}

/// Shrinks the span to its alphanumeric core ("(bank)," -> "bank").
fn trim_punctuation(occ: Occurrence) -> Result<Occurrence> {
    let token = occ.word();
    let start = token.find(|c: char| c.is_alphanumeric());
    let end = token.rfind(|c: char| c.is_alphanumeric()).map(|i| i + token[i..].chars().next().map_or(1, char::len_utf8));
    match (start, end) {
        (Some(s), Some(e)) => {
            let start = occ.span().start;
            Occurrence::new(occ.sentence(), start + s..start + e)
        }
        _ => Err(Error::InvalidArgument(format!("the target token {token:?} has no letters or digits"))),
    }
}

fn most_common_token<'a>(occurrences: impl Iterator<Item = &'a Occurrence>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for o in occurrences {
        *counts.entry(o.word().to_lowercase()).or_default() += 1;
    }
    counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).map(|(w, _)| w).unwrap_or_default()
}

/// Accuracy and macro-F1 of one way of predicting.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Score {
    /// Share of test occurrences given their gold sense.
    pub accuracy: f64,
    /// Macro-averaged F1 over the senses (gold or predicted), as scikit-learn's `f1_score(average="macro")`;
    /// over several words, the mean of the words' macro-F1.
    pub macro_f1: f64,
}

/// One layer's scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WsdLayer {
    /// The layer (0 = embeddings output).
    pub layer: usize,
    /// 1-NN accuracy.
    pub accuracy: f64,
    /// 1-NN macro-F1.
    pub macro_f1: f64,
    /// Nearest-centroid accuracy.
    pub centroid_accuracy: f64,
    /// Nearest-centroid macro-F1.
    pub centroid_macro_f1: f64,
}

impl WsdLayer {
    fn new(layer: usize, [nearest, centroid]: [Score; 2]) -> Self {
        WsdLayer { layer, accuracy: nearest.accuracy, macro_f1: nearest.macro_f1, centroid_accuracy: centroid.accuracy, centroid_macro_f1: centroid.macro_f1 }
    }
}

/// One word's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WsdWordResult {
    /// The word.
    pub word: String,
    /// Training occurrences.
    pub n_train: usize,
    /// Test occurrences.
    pub n_test: usize,
    /// Per layer.
    pub layers: Vec<WsdLayer>,
    /// Accuracy of predicting the most frequent training sense.
    pub majority_baseline: f64,
}

/// A layer selection and correction scored over all words.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WsdVariant {
    /// The layer selection (`6`, `3..=6`, `all`).
    pub layers: String,
    /// The correction.
    pub postprocess: String,
    /// 1-NN scores.
    pub nearest: Score,
    /// Nearest-centroid scores.
    pub centroid: Score,
}

/// The result of `eval wsd`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WsdResult {
    /// The data's name.
    pub source: String,
    /// The engine.
    pub model: String,
    /// The correction applied to the per-layer results (`none` by default).
    pub postprocess: String,
    /// What the correction was fitted on.
    pub fit: String,
    /// Per word.
    pub words: Vec<WsdWordResult>,
    /// Over all words: accuracy over all test occurrences, macro-F1 the mean of the words'.
    pub layers: Vec<WsdLayer>,
    /// Accuracy of each word's most frequent training sense, over all test occurrences.
    pub majority_baseline: f64,
    /// Why a static engine scores the majority baseline (and does, when `model` is one).
    pub static_note: String,
    /// Every requested layer selection x correction, when more than the default was asked for.
    pub variants: Vec<WsdVariant>,
}

/// Options of [`evaluate`].
#[derive(Clone, Debug, Default)]
pub struct WsdOptions {
    /// The corrections; the first one is applied to `layers` and `words`, all appear in `variants`.
    pub postprocess: Vec<Postprocess>,
    /// Layer selections scored in `variants` besides each single layer.
    pub selections: Vec<LayerSelection>,
    /// Vectors to fit the corrections on instead of the occurrences at hand: per layer.
    pub fit: Option<(String, Vec<LayerVectors>)>,
    /// How each word's pieces are pooled; `None`: the engine's default.
    pub pooling: Option<crate::engine::Pooling>,
}

/// Scores `engine` on `set`.
///
/// The corrections are fitted once per layer selection, on all train and test occurrences of all
/// words (the occurrences at hand: no labels are used), or on `options.fit`. A static engine
/// predicts each word's most frequent training sense (see [`STATIC_NOTE`]).
pub fn evaluate(engine: &dyn Embedder, set: &WsdSet, options: &WsdOptions) -> Result<WsdResult> {
    let postprocess = if options.postprocess.is_empty() { vec![Postprocess::None] } else { options.postprocess.clone() };
    let mut all = Vec::new();
    for w in &set.words {
        all.extend(w.train.iter().chain(&w.test).map(|(o, _)| o.clone()));
    }
    let vectors = engine.embed_vectors(&all, options.pooling.unwrap_or_else(|| engine.default_pooling()))?;
    let static_engine = engine.kind() == EngineKind::Static;
    let layers = engine.num_layers();
    let single: Vec<LayerSelection> = (0..layers as isize).map(LayerSelection::Layer).collect();
    let extra: Vec<&LayerSelection> = options.selections.iter().collect();
    for s in &extra {
        s.range(layers)?;
    }
    // scores[selection][postprocess] = per word [nearest, centroid]
    let mut per_view: Vec<Vec<Vec<[Score; 2]>>> = Vec::new();
    for selection in single.iter().chain(extra.iter().copied()) {
        let selected: Vec<Vec<f32>> = vectors.iter().map(|v| v.select(selection)).collect::<Result<_>>()?;
        let mut row = Vec::new();
        for how in &postprocess {
            let fitted = fit(*how, selection, &selected, options.fit.as_ref())?;
            row.push(score_words(set, &fitted.apply_all(&selected), static_engine));
        }
        per_view.push(row);
    }
    let majority: Vec<(usize, usize)> = set.words.iter().map(majority_correct).collect();
    let n_test: usize = set.words.iter().map(|w| w.test.len()).sum();
    let combine = |scores: &[[Score; 2]], method: usize| -> Score {
        let correct: f64 = scores.iter().zip(&set.words).map(|(s, w)| s[method].accuracy * w.test.len() as f64).sum();
        Score { accuracy: correct / n_test as f64, macro_f1: scores.iter().map(|s| s[method].macro_f1).sum::<f64>() / scores.len() as f64 }
    };
    let words = set
        .words
        .iter()
        .enumerate()
        .map(|(i, w)| WsdWordResult {
            word: w.word.clone(),
            n_train: w.train.len(),
            n_test: w.test.len(),
            layers: (0..layers).map(|l| WsdLayer::new(l, per_view[l][0][i])).collect(),
            majority_baseline: majority[i].0 as f64 / majority[i].1 as f64,
        })
        .collect();
    let overall = (0..layers).map(|l| WsdLayer::new(l, [combine(&per_view[l][0], 0), combine(&per_view[l][0], 1)])).collect();
    let names: Vec<String> = single.iter().chain(extra.iter().copied()).map(ToString::to_string).collect();
    let variants = if postprocess.len() > 1 || !extra.is_empty() {
        per_view
            .iter()
            .zip(&names)
            .flat_map(|(row, name)| {
                row.iter().zip(&postprocess).map(move |(scores, how)| WsdVariant {
                    layers: name.clone(),
                    postprocess: how.to_string(),
                    nearest: combine(scores, 0),
                    centroid: combine(scores, 1),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(WsdResult {
        source: set.source.clone(),
        model: engine.name().to_owned(),
        postprocess: postprocess[0].to_string(),
        fit: options.fit.as_ref().map_or_else(|| "the occurrences at hand (train and test)".to_owned(), |(name, _)| name.clone()),
        words,
        layers: overall,
        majority_baseline: majority.iter().map(|m| m.0).sum::<usize>() as f64 / n_test as f64,
        static_note: STATIC_NOTE.to_owned(),
        variants,
    })
}

/// Fits `how` for one layer selection on the given corpus vectors, or on `at_hand`.
pub fn fit(how: Postprocess, selection: &LayerSelection, at_hand: &[Vec<f32>], corpus: Option<&(String, Vec<LayerVectors>)>) -> Result<Fitted> {
    match corpus {
        Some((_, vectors)) if how != Postprocess::None => {
            let selected: Vec<Vec<f32>> = vectors.iter().map(|v| v.select(selection)).collect::<Result<_>>()?;
            how.fit(&selected)
        }
        _ => how.fit(at_hand),
    }
}

/// Per word, [1-NN, centroid] scores; `vectors` holds each word's train then test vectors, in order.
fn score_words(set: &WsdSet, vectors: &[Vec<f32>], static_engine: bool) -> Vec<[Score; 2]> {
    let mut offset = 0;
    set.words
        .iter()
        .map(|w| {
            let train = &vectors[offset..offset + w.train.len()];
            let test = &vectors[offset + w.train.len()..offset + w.train.len() + w.test.len()];
            offset += w.train.len() + w.test.len();
            let mut ids: Vec<&str> = w.train.iter().map(|(_, s)| s.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let id_of: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, s)| (*s, i)).collect();
            let labels: Vec<usize> = w.train.iter().map(|(_, s)| id_of[s.as_str()]).collect();
            let gold: Vec<&str> = w.test.iter().map(|(_, s)| s.as_str()).collect();
            let majority = majority_sense(w);
            let matcher = NearestSense::new(train.to_vec(), labels);
            [Assign::Nearest, Assign::Centroid].map(|how| {
                let predicted: Vec<&str> = test
                    .iter()
                    .map(|v| match (static_engine, matcher.assign(v, how)) {
                        (false, Some((label, _))) => ids[label],
                        _ => majority,
                    })
                    .collect();
                Score { accuracy: accuracy(&gold, &predicted), macro_f1: macro_f1(&gold, &predicted) }
            })
        })
        .collect()
}

/// The most frequent training sense (the first in sorted order among equals).
fn majority_sense(w: &WsdWord) -> &str {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, s) in &w.train {
        *counts.entry(s).or_default() += 1;
    }
    counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(s, _)| *s).unwrap_or("")
}

/// (correct, total) of predicting the majority training sense.
fn majority_correct(w: &WsdWord) -> (usize, usize) {
    let m = majority_sense(w);
    (w.test.iter().filter(|(_, s)| s == m).count(), w.test.len())
}

fn accuracy(gold: &[&str], predicted: &[&str]) -> f64 {
    gold.iter().zip(predicted).filter(|(g, p)| g == p).count() as f64 / gold.len().max(1) as f64
}

/// Macro-averaged F1 over the union of gold and predicted labels, as scikit-learn's
/// `f1_score(average="macro")` (a label with no true and no predicted positive has F1 0, which
/// cannot happen here as every label in the union occurs on one side).
pub fn macro_f1(gold: &[&str], predicted: &[&str]) -> f64 {
    let mut labels: Vec<&str> = gold.iter().chain(predicted).copied().collect();
    labels.sort_unstable();
    labels.dedup();
    let f1 = |label: &str| {
        let tp = gold.iter().zip(predicted).filter(|&(g, p)| *g == label && *p == label).count() as f64;
        let fp = predicted.iter().filter(|&&p| p == label).count() as f64 - tp;
        let fn_ = gold.iter().filter(|&&g| g == label).count() as f64 - tp;
        if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + fn_) }
    };
    labels.iter().map(|l| f1(l)).sum::<f64>() / labels.len().max(1) as f64
}
