//! The trait every embedding engine implements, and the per-layer vectors it returns.

use std::ops::Range;

use serde::Serialize;
use unicode_segmentation::UnicodeSegmentation;

use crate::error::{Error, Result};
use crate::occurrence::Occurrence;
use crate::static_vectors::{Neighbor, StaticVector};

/// Whether an engine gives every occurrence of a word the same vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// One vector per word type (Word2Vec, GloVe, fastText, finalfusion).
    Static,
    /// One vector per occurrence, depending on the sentence (BERT).
    Contextual,
}

/// The vectors of one occurrence, one per layer.
///
/// Layer 0 of a BERT encoder is the embeddings output, layer `i` the output of encoder
/// layer `i`. A static engine has exactly one layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct LayerVectors {
    layers: Vec<Vec<f32>>,
}

impl LayerVectors {
    /// Wraps per-layer vectors; all layers must have the same, non-zero length.
    pub fn new(layers: Vec<Vec<f32>>) -> Self {
        debug_assert!(layers.windows(2).all(|w| w[0].len() == w[1].len()));
        LayerVectors { layers }
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The vector of one layer, if it exists. Like [`LayerSelection::Layer`], a negative index
    /// counts from the last layer: `layer(-1)` is the last, `layer(0)` the first (for BERT the
    /// embeddings output). Takes a `usize` or a signed integer.
    ///
    /// ```
    /// let v = vecshift::LayerVectors::new(vec![vec![0.0], vec![1.0], vec![2.0]]);
    /// assert_eq!(v.layer(2), v.layer(-1));
    /// assert_eq!(v.layer(0usize), Some(&[0.0][..]));
    /// assert_eq!(v.layer(-4), None);
    /// ```
    pub fn layer(&self, layer: impl LayerIndex) -> Option<&[f32]> {
        self.layers.get(layer.resolve(self.layers.len())?).map(Vec::as_slice)
    }

    /// All layers, index 0 first.
    pub fn layers(&self) -> &[Vec<f32>] {
        &self.layers
    }

    /// Reduces the layers to one vector as `selection` says.
    pub fn select(&self, selection: &LayerSelection) -> Result<Vec<f32>> {
        let range = selection.range(self.num_layers())?;
        let count = range.len() as f32;
        let mut mean = vec![0.0; self.layers[0].len()];
        for layer in &self.layers[range] {
            for (m, v) in mean.iter_mut().zip(layer) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= count);
        Ok(mean)
    }

    /// Unwraps the per-layer vectors.
    pub fn into_inner(self) -> Vec<Vec<f32>> {
        self.layers
    }
}

/// A layer index as [`LayerVectors::layer`] takes it: a `usize` from the first layer, or a
/// signed integer (`isize`, `i32`, `i64`) where a negative value counts from the last layer, as
/// [`LayerSelection::Layer`] does. Sealed: only these integer types implement it.
pub trait LayerIndex: sealed::Sealed {
    /// The index from the first layer in a model with `num_layers` layers; `None` when it is
    /// outside the model.
    fn resolve(self, num_layers: usize) -> Option<usize>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for usize {}
    impl Sealed for isize {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
}

impl LayerIndex for usize {
    fn resolve(self, num_layers: usize) -> Option<usize> {
        (self < num_layers).then_some(self)
    }
}

impl LayerIndex for isize {
    fn resolve(self, num_layers: usize) -> Option<usize> {
        let index = if self < 0 { num_layers.checked_sub(self.unsigned_abs())? } else { self as usize };
        (index < num_layers).then_some(index)
    }
}

impl LayerIndex for i32 {
    fn resolve(self, num_layers: usize) -> Option<usize> {
        (self as isize).resolve(num_layers)
    }
}

impl LayerIndex for i64 {
    fn resolve(self, num_layers: usize) -> Option<usize> {
        isize::try_from(self).ok()?.resolve(num_layers)
    }
}

/// Which layer(s) to reduce an occurrence's [`LayerVectors`] to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSelection {
    /// One layer; negative values count from the last layer (-1 = last), as in
    /// [`LayerVectors::layer`].
    Layer(isize),
    /// The mean of an inclusive range of layers.
    Mean {
        /// First layer of the range.
        first: usize,
        /// Last layer of the range (inclusive).
        last: usize,
    },
    /// The mean of all layers.
    All,
}

impl LayerSelection {
    /// The half-open range of layer indices this selection covers in a model with `num_layers` layers.
    pub fn range(&self, num_layers: usize) -> Result<std::ops::Range<usize>> {
        let out_of_range = || {
            Error::InvalidArgument(format!(
                "layer selection {self} does not exist: the model has layers 0..={}",
                num_layers.saturating_sub(1)
            ))
        };
        match *self {
            LayerSelection::Layer(layer) => layer.resolve(num_layers).map(|i| i..i + 1).ok_or_else(out_of_range),
            LayerSelection::Mean { first, last } if first <= last && last < num_layers => Ok(first..last + 1),
            LayerSelection::Mean { .. } => Err(out_of_range()),
            LayerSelection::All => Ok(0..num_layers),
        }
    }
}

impl std::fmt::Display for LayerSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerSelection::Layer(layer) => write!(f, "{layer}"),
            LayerSelection::Mean { first, last } => write!(f, "{first}..={last}"),
            LayerSelection::All => f.write_str("all"),
        }
    }
}

impl std::str::FromStr for LayerSelection {
    type Err = Error;

    /// Parses `7`, `-1` (last), `4..=6` / `4-6` (mean of a range) or `all`.
    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidArgument(format!("invalid layer {s:?}: expected a number (e.g. 6 or -1 for the last), a range (e.g. 4..=6) or \"all\""));
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(LayerSelection::All);
        }
        if let Some((a, b)) = s.split_once("..=").or_else(|| s.split_once('-').filter(|(a, _)| !a.is_empty())) {
            let first = a.trim().parse().map_err(|_| invalid())?;
            let last = b.trim().parse().map_err(|_| invalid())?;
            return Ok(LayerSelection::Mean { first, last });
        }
        s.parse().map(LayerSelection::Layer).map_err(|_| invalid())
    }
}

/// How the vectors of a word's pieces (WordPieces, BPE tokens) become one word vector.
///
/// A static engine has one vector per word and ignores it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean of all the word's pieces.
    #[default]
    Mean,
    /// The first piece.
    First,
    /// The last piece: what users of decoders take, since only it has seen the whole word.
    Last,
}

impl Pooling {
    /// Every pooling, in the order the UI cycles through them.
    pub const ALL: [Pooling; 3] = [Pooling::Mean, Pooling::First, Pooling::Last];
}

impl std::str::FromStr for Pooling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mean" => Ok(Pooling::Mean),
            "first" => Ok(Pooling::First),
            "last" => Ok(Pooling::Last),
            _ => Err(Error::InvalidArgument(format!("unknown pooling {s:?}; expected mean, first or last"))),
        }
    }
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pooling::Mean => "mean",
            Pooling::First => "first",
            Pooling::Last => "last",
        })
    }
}

/// The vectors of one occurrence and what the engine pooled to get them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Embedding {
    /// One vector per layer.
    pub vectors: LayerVectors,
    /// What was pooled: the word's pieces as the tokenizer wrote them (e.g. `["un", "##happiness"]`)
    /// for a contextual engine; the vocabulary entry, or the subword n-grams of a word built from
    /// them, for a static one.
    pub pieces: Vec<String>,
    /// The pieces the tokenizer did not know (`[UNK]`, `<unk>`), and any text of the word that no
    /// piece stands for (a tokenizer without an unknown token drops it): the vector then says
    /// little or nothing about the word, so callers should warn.
    pub unknown: Vec<String>,
    /// When the sentence had more tokens than the model's positions: its length in tokens. A
    /// window around the word was encoded.
    pub windowed_from: Option<usize>,
}

impl Embedding {
    /// An embedding of plain vectors, as a static engine gives them.
    pub fn new(vectors: LayerVectors, pieces: Vec<String>) -> Self {
        Embedding { vectors, pieces, unknown: Vec::new(), windowed_from: None }
    }

    /// Whether any pooled piece is unknown to the tokenizer.
    pub fn has_unknown(&self) -> bool {
        !self.unknown.is_empty()
    }
}

/// The per-layer vectors of a target word and of the other words of its sentence, from one pass.
#[derive(Clone, Debug, PartialEq)]
pub struct SentenceVectors {
    /// The target, exactly as [`Embedder::embed_batch`] gives it.
    pub target: Embedding,
    /// The other words that the engine has vectors for, in sentence order, with their byte spans.
    pub words: Vec<(Range<usize>, LayerVectors)>,
}

/// An engine that turns occurrences of words into per-layer vectors.
///
/// Object-safe, so engines of different kinds can sit in one `Vec<Box<dyn Embedder>>`:
///
/// ```no_run
/// use vecshift::{ContextualEncoder, Embedder, Occurrence, Pooling, StaticEngine};
/// let engines: Vec<Box<dyn Embedder>> = vec![
///     Box::new(StaticEngine::open_default()?),
///     Box::new(ContextualEncoder::load_default()?),
/// ];
/// let occ = Occurrence::find("bank", "The bank approved my loan.")?;
/// for engine in &engines {
///     let found = engine.embed(&occ, Pooling::Mean)?;
///     println!("{}: {} layer(s) of {} dims from {:?}", engine.name(), found.vectors.num_layers(), engine.dims(), found.pieces);
/// }
/// # Ok::<(), vecshift::Error>(())
/// ```
pub trait Embedder: Send + Sync {
    /// A human-readable name of the model (e.g. its directory or file name).
    fn name(&self) -> &str;

    /// The architecture or file format: `bert`, `roberta`, ... for contextual engines;
    /// `finalfusion`, `word2vec`, `glove`, `fasttext` for static ones.
    fn architecture(&self) -> &str;

    /// Length of each vector.
    fn dims(&self) -> usize;

    /// Number of layers each occurrence gets vectors for (a static engine has one).
    fn num_layers(&self) -> usize;

    /// Static or contextual.
    fn kind(&self) -> EngineKind;

    /// The pooling that suits the model when the user names none: the last piece for a decoder
    /// (only it has seen the whole word), the mean otherwise.
    fn default_pooling(&self) -> Pooling {
        Pooling::Mean
    }

    /// The most tokens one sentence may have, for engines that tokenize; a longer sentence is
    /// cut to a window around the word (see [`Embedding::windowed_from`]).
    fn max_positions(&self) -> Option<usize> {
        None
    }

    /// Whether each position sees only the words to its left (a decoder such as GPT-2).
    fn is_causal(&self) -> bool {
        false
    }

    /// Embeds many occurrences at once, pooling each word's pieces as `pooling` says.
    ///
    /// The result has one entry per occurrence, in order: an occurrence the engine cannot embed
    /// (a word out of a static vocabulary, a word the tokenizer drops) is an `Err` in its slot
    /// and does not fail the others. The outer error is for failures of the whole batch (the
    /// model itself failing).
    fn embed_batch(&self, occurrences: &[Occurrence], pooling: Pooling) -> Result<Vec<Result<Embedding>>>;

    /// Embeds one occurrence.
    fn embed(&self, occurrence: &Occurrence, pooling: Pooling) -> Result<Embedding> {
        let mut batch = self.embed_batch(std::slice::from_ref(occurrence), pooling)?;
        batch.pop().expect("embed_batch returns one result per occurrence")
    }

    /// The per-layer vectors of every occurrence, or the first occurrence's error: for callers
    /// that need them all (an evaluation set, a fitting corpus).
    fn embed_vectors(&self, occurrences: &[Occurrence], pooling: Pooling) -> Result<Vec<LayerVectors>> {
        self.embed_batch(occurrences, pooling)?.into_iter().map(|found| found.map(|e| e.vectors)).collect()
    }

    /// The engine as a [`SentenceEmbedder`], when it can give the other words of a sentence from
    /// the same pass.
    fn sentence_embedder(&self) -> Option<&dyn SentenceEmbedder> {
        None
    }

    /// The engine as a [`Vocabulary`], when it has one to look words up in and search.
    fn vocabulary(&self) -> Option<&dyn Vocabulary> {
        None
    }
}

/// A capability of static engines: a vocabulary of word vectors to look words up in and to
/// search for nearest neighbours.
pub trait Vocabulary: Embedder {
    /// The word's vector as stored (the word as written, else lowercased, else from subwords).
    fn lookup(&self, word: &str) -> Result<StaticVector>;

    /// The `k` nearest words to `word` by cosine, the word itself left out.
    fn neighbors(&self, word: &str, k: usize) -> Result<Vec<Neighbor>>;
}

/// A capability of some engines: the vectors of the other words of an occurrence's sentence,
/// from the same forward pass as the target's (what intra-sentence similarity needs).
pub trait SentenceEmbedder: Embedder {
    /// Embeds each occurrence and the other words of its sentence: the Unicode words (UAX #29)
    /// with a letter or digit that do not overlap the target, as [`context_words`] finds them.
    /// Per-occurrence failures are `Err` in their slot, as in [`Embedder::embed_batch`].
    fn embed_in_context(&self, occurrences: &[Occurrence], pooling: Pooling) -> Result<Vec<Result<SentenceVectors>>>;
}

/// The byte spans of the other words of an occurrence's sentence: Unicode word segmentation
/// (UAX #29), segments without a letter or digit (punctuation) left out, the target left out.
pub fn context_words(occurrence: &Occurrence) -> Vec<Range<usize>> {
    let target = occurrence.span();
    occurrence
        .sentence()
        .unicode_word_indices()
        .map(|(start, word)| start..start + word.len())
        .filter(|span| span.end <= target.start || span.start >= target.end)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_selection_parses_and_reduces() {
        let v = LayerVectors::new(vec![vec![0.0, 2.0], vec![2.0, 4.0], vec![4.0, 6.0]]);
        assert_eq!(v.select(&"-1".parse().unwrap()).unwrap(), [4.0, 6.0]);
        assert_eq!(v.select(&"1..=2".parse().unwrap()).unwrap(), [3.0, 5.0]);
        assert_eq!(v.select(&"0-1".parse().unwrap()).unwrap(), [1.0, 3.0]);
        assert_eq!(v.select(&"all".parse().unwrap()).unwrap(), [2.0, 4.0]);
        assert!(v.select(&LayerSelection::Layer(3)).is_err());
        assert!(v.select(&LayerSelection::Layer(-4)).is_err());
        assert!(v.select(&LayerSelection::Mean { first: 2, last: 1 }).is_err());
        assert!("x".parse::<LayerSelection>().is_err());
    }

    #[test]
    fn layer_index_counts_from_the_end_as_layer_selection_does() {
        let v = LayerVectors::new(vec![vec![0.0], vec![1.0], vec![2.0]]);
        for signed in -4isize..4 {
            let by_selection = LayerSelection::Layer(signed).range(3).ok().map(|r| r.start);
            assert_eq!(v.layer(signed), by_selection.map(|i| v.layers()[i].as_slice()), "layer({signed})");
            assert_eq!(v.layer(signed as i32), v.layer(signed));
            assert_eq!(v.layer(signed as i64), v.layer(signed));
        }
        assert_eq!(v.layer(1usize), Some(&[1.0][..]));
        assert_eq!(v.layer(3usize), None);
        assert_eq!(v.layer(isize::MIN), None);
        assert_eq!(v.layer(i64::MIN), None);
    }
}
