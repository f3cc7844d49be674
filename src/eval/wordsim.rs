//! Word similarity: correlation between model cosines and human similarity scores
//! (WordSim-353, SimLex-999, RG-65, MEN, ...).

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::{EvalVocab, bad_line, display_name, pearson, read_lines, spearman};
use crate::engine::{Embedder, EngineKind, LayerVectors, Pooling};
use crate::error::{Error, Result};
use crate::occurrence::Occurrence;
use crate::static_vectors::StaticEngine;

/// One scored word pair.
#[derive(Clone, Debug, PartialEq)]
pub struct WordPair {
    /// The first word, as written in the file.
    pub first: String,
    /// The second word, as written in the file.
    pub second: String,
    /// The human similarity score.
    pub score: f64,
    /// Line number in the file (from 1).
    pub line: usize,
}

/// The pairs of one word-pair file.
#[derive(Clone, Debug, PartialEq)]
pub struct WordPairSet {
    /// The file's name (shown in results).
    pub file: String,
    /// The pairs, in file order.
    pub pairs: Vec<WordPair>,
}

impl WordPairSet {
    /// Reads the common word-pair formats: three columns `word1 word2 score` separated by a tab
    /// (then words may contain spaces) or by spaces; empty lines and `#` comments are skipped,
    /// and so is a header line (a first row whose score is not a number).
    ///
    /// Any other row that is not two words and a finite number is an error naming the line.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut pairs = Vec::new();
        let mut first_row = true;
        for (line, text) in read_lines(path, "word-pair file")? {
            let text = text.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = if text.contains('\t') { text.split('\t').map(str::trim).collect() } else { text.split_whitespace().collect() };
            let score = fields.get(2).and_then(|s| s.parse::<f64>().ok());
            let is_first = std::mem::replace(&mut first_row, false);
            match (fields.as_slice(), score) {
                ([a, b, _], Some(score)) if !a.is_empty() && !b.is_empty() && score.is_finite() => {
                    pairs.push(WordPair { first: a.to_string(), second: b.to_string(), score, line });
                }
                (_, None) if is_first => {} // a header such as "Word 1<TAB>Word 2<TAB>Human (mean)"
                _ => {
                    return Err(bad_line(path, line, format!(
                        "expected three columns, word1 word2 score (separated by a tab or spaces), found {:?}",
                        text.chars().take(80).collect::<String>()
                    )));
                }
            }
        }
        if pairs.is_empty() {
            return Err(Error::InvalidArgument(format!("{} has no word pairs (expected lines of word1 word2 score)", path.display())));
        }
        Ok(WordPairSet { file: display_name(path), pairs })
    }
}

/// Correlations of one layer of a contextual model with the human scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerCorrelation {
    /// The layer (0 = embeddings output).
    pub layer: usize,
    /// Pearson's r; `null` when undefined (fewer than two pairs, or constant cosines).
    pub pearson: Option<f64>,
    /// Spearman's rho (ties averaged); `null` when undefined.
    pub spearman: Option<f64>,
}

/// The result for one word-pair file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WordSimResult {
    /// The file's name.
    pub file: String,
    /// Pairs read from the file.
    pub pairs_total: usize,
    /// Pairs whose two words are both in the (restricted) static vocabulary.
    pub pairs_used: usize,
    /// Pairs skipped because a word is not in the (restricted) static vocabulary.
    pub oov: usize,
    /// Those pairs, `[word1, word2]` as the file writes them.
    pub oov_pairs: Vec<[String; 2]>,
    /// Pearson's r of the static cosines with the scores.
    pub pearson: Option<f64>,
    /// Spearman's rho of the static cosines with the scores (ties averaged).
    pub spearman: Option<f64>,
    /// Per layer of the contextual model, on the same `pairs_used` pairs; empty without one.
    pub contextual: Vec<LayerCorrelation>,
    /// Every engine, in the order given: the fields above are those of the first static and
    /// the first contextual engine.
    pub engines: Vec<EngineCorrelation>,
    /// Each compression variant against its original, per layer (filled by the caller, which
    /// knows which engines are variants; empty without `--variant`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<super::deltas::VariantDeltas<super::deltas::SpearmanDelta>>,
}

/// One engine's correlations on a word-pair file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EngineCorrelation {
    /// The engine's name.
    pub name: String,
    /// Static or contextual.
    pub kind: EngineKind,
    /// The architecture or file format.
    pub architecture: String,
    /// Pairs scored: a static engine's own in-vocabulary pairs (as gensim counts them); for a
    /// contextual engine those of the first static engine, so that the two compare.
    pub pairs_used: usize,
    /// Pairs skipped.
    pub oov: usize,
    /// Per layer (a static engine has one, layer 0).
    pub layers: Vec<LayerCorrelation>,
}

/// The static engine's cosines for the pairs both of whose words it knows.
#[derive(Clone, Debug, PartialEq)]
pub struct StaticScores {
    /// Indices (into the set's pairs) of the pairs used.
    pub used: Vec<usize>,
    /// The cosine of each used pair.
    pub cosines: Vec<f64>,
}

/// Cosines of the static vectors as gensim's `evaluate_word_pairs` computes them: words are
/// matched case-insensitively among the first `restrict_vocab` words (all when `None`), the
/// most frequent spelling standing for all of its case variants; a pair with a word outside
/// that vocabulary is skipped.
pub fn static_scores(engine: &StaticEngine, set: &WordPairSet, restrict_vocab: Option<usize>) -> StaticScores {
    let vocab = EvalVocab::new(engine.words(), restrict_vocab);
    let storage = engine.matrix();
    let mut scores = StaticScores { used: Vec::new(), cosines: Vec::new() };
    for (index, pair) in set.pairs.iter().enumerate() {
        if let (Some(a), Some(b)) = (vocab.get(&pair.first), vocab.get(&pair.second)) {
            // The stored rows are unit length: their dot product is the cosine.
            scores.used.push(index);
            scores.cosines.push(f64::from(storage.row(a).dot(&storage.row(b))));
        }
    }
    scores
}

/// Per-layer cosines of a contextual model for the given pairs: each word is embedded alone,
/// as the one-word sentence `[CLS] word [SEP]`, in one batch.
pub fn contextual_scores(engine: &dyn Embedder, pairs: &[&WordPair], pooling: Pooling) -> Result<Vec<Vec<f64>>> {
    let mut words: Vec<&str> = pairs.iter().flat_map(|p| [p.first.as_str(), p.second.as_str()]).collect();
    words.sort_unstable();
    words.dedup();
    let occurrences: Vec<Occurrence> = words.iter().map(|w| Occurrence::new(*w, 0..w.len())).collect::<Result<_>>()?;
    let vectors: Vec<LayerVectors> =
        engine.embed_batch(&occurrences, pooling)?.into_iter().map(|r| r.map(|e| e.vectors)).collect::<Result<_>>()?;
    let by_word: HashMap<&str, _> = words.iter().copied().zip(&vectors).collect();
    Ok((0..engine.num_layers())
        .map(|layer| {
            pairs
                .iter()
                .map(|p| {
                    let a = by_word[p.first.as_str()].layer(layer).expect("every word has every layer");
                    let b = by_word[p.second.as_str()].layer(layer).expect("every word has every layer");
                    f64::from(crate::analysis::cosine(a, b))
                })
                .collect()
        })
        .collect())
}

/// Evaluates one file: the static engine as gensim does (see [`static_scores`]) and, when
/// given, a contextual engine layer by layer on the same pairs (see [`contextual_scores`]).
pub fn evaluate(
    engine: &StaticEngine,
    contextual: Option<(&dyn Embedder, Pooling)>,
    set: &WordPairSet,
    restrict_vocab: Option<usize>,
) -> Result<WordSimResult> {
    evaluate_engines(&[engine], contextual.as_slice(), set, restrict_vocab)
}

/// Evaluates one file with any number of engines: each static engine as gensim does (see
/// [`static_scores`]), each contextual one layer by layer on the pairs the first static engine
/// uses (all pairs without one). The result's top-level fields are those of the first engine
/// of each kind; [`WordSimResult::engines`] has every engine, static ones first.
pub fn evaluate_engines(
    statics: &[&StaticEngine],
    contextual: &[(&dyn Embedder, Pooling)],
    set: &WordPairSet,
    restrict_vocab: Option<usize>,
) -> Result<WordSimResult> {
    let all = StaticScores { used: (0..set.pairs.len()).collect(), cosines: Vec::new() };
    let per_static: Vec<StaticScores> = statics.iter().map(|e| static_scores(e, set, restrict_vocab)).collect();
    let scores = per_static.first().unwrap_or(&all);
    let human_of = |s: &StaticScores| -> Vec<f64> { s.used.iter().map(|&i| set.pairs[i].score).collect() };
    let human = human_of(scores);
    let mut engines: Vec<EngineCorrelation> = statics
        .iter()
        .zip(&per_static)
        .map(|(engine, s)| {
            let human = human_of(s);
            EngineCorrelation {
                name: engine.name().to_owned(),
                kind: EngineKind::Static,
                architecture: engine.architecture().to_owned(),
                pairs_used: s.used.len(),
                oov: set.pairs.len() - s.used.len(),
                layers: vec![LayerCorrelation { layer: 0, pearson: pearson(&human, &s.cosines), spearman: spearman(&human, &s.cosines) }],
            }
        })
        .collect();
    let used: Vec<&WordPair> = scores.used.iter().map(|&i| &set.pairs[i]).collect();
    for &(model, pooling) in contextual {
        let layers = contextual_scores(model, &used, pooling)?
            .into_iter()
            .enumerate()
            .map(|(layer, cosines)| LayerCorrelation { layer, pearson: pearson(&human, &cosines), spearman: spearman(&human, &cosines) })
            .collect();
        engines.push(EngineCorrelation {
            name: model.name().to_owned(),
            kind: EngineKind::Contextual,
            architecture: model.architecture().to_owned(),
            pairs_used: used.len(),
            oov: set.pairs.len() - used.len(),
            layers,
        });
    }
    let layers = engines.iter().find(|e| e.kind == EngineKind::Contextual).map(|e| e.layers.clone()).unwrap_or_default();
    Ok(WordSimResult {
        file: set.file.clone(),
        pairs_total: set.pairs.len(),
        pairs_used: scores.used.len(),
        oov: set.pairs.len() - scores.used.len(),
        oov_pairs: set
            .pairs
            .iter()
            .enumerate()
            .filter(|(i, _)| scores.used.binary_search(i).is_err())
            .map(|(_, p)| [p.first.clone(), p.second.clone()])
            .collect(),
        pearson: per_static.first().and_then(|s| pearson(&human, &s.cosines)),
        spearman: per_static.first().and_then(|s| spearman(&human, &s.cosines)),
        contextual: layers,
        engines,
        variants: Vec::new(),
    })
}
