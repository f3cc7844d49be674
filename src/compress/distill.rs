//! Distillation from contextual to static: each word's vector is the mean of its contextual
//! vectors over its occurrences in a corpus (Bommasani et al. 2020, "Interpreting pretrained
//! contextualized representations via reductions to static embeddings", the "aggregated"
//! reduction with mean pooling over occurrences).
//!
//! A [`Distiller`] takes sentences in batches, so a corpus of any size streams through it: only
//! the running sums (one vector per word type) are held. Words are found as the rest of
//! vecshift finds them ([`context_words`](crate::engine::context_words): Unicode words, UAX #29,
//! with a letter or digit), and every word of a sentence comes from one forward pass
//! ([`SentenceEmbedder::embed_in_context`]).
//!
//! ```no_run
//! use vecshift::compress::distill::{DistillOptions, Distiller};
//! use vecshift::{ContextualEncoder, LayerSelection};
//!
//! let bert = ContextualEncoder::load_default()?;
//! let options = DistillOptions::new(LayerSelection::Layer(4)).lowercase(true);
//! let mut distiller = Distiller::new(&bert, options)?;
//! distiller.add(&["The bank approved the loan.".to_owned(), "We sat on the river bank.".to_owned()])?;
//! let distilled = distiller.finish()?;
//! distilled.write_finalfusion(&mut std::io::BufWriter::new(std::fs::File::create("minilm-l4.fifu")?))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;

use finalfusion::embeddings::Embeddings;
use finalfusion::io::WriteEmbeddings;
use finalfusion::norms::NdNorms;
use finalfusion::storage::{NdArray, StorageViewWrap};
use finalfusion::vocab::{SimpleVocab, VocabWrap};
use ndarray::{Array1, Array2};

use crate::engine::{LayerSelection, Pooling, SentenceEmbedder};
use crate::error::{Error, Result};
use crate::occurrence::Occurrence;
use crate::static_vectors::StaticEmbeddings;

/// What to distill: the layer(s), the pooling of a word's pieces, which words to keep.
#[derive(Clone, Debug, PartialEq)]
pub struct DistillOptions {
    layers: LayerSelection,
    pooling: Pooling,
    min_count: usize,
    lowercase: bool,
}

impl DistillOptions {
    /// Distills `layers` (one layer or the mean of several), mean pooling, every word seen
    /// once or more, words kept as written.
    pub fn new(layers: LayerSelection) -> Self {
        DistillOptions { layers, pooling: Pooling::Mean, min_count: 1, lowercase: false }
    }

    /// How each occurrence's pieces are pooled into one vector.
    pub fn pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }

    /// Words seen fewer times than this are left out of the result.
    pub fn min_count(mut self, min_count: usize) -> Self {
        self.min_count = min_count.max(1);
        self
    }

    /// Whether words are lowercased before they are counted: what an uncased model sees, so
    /// that "The" and "the" (one input to it) become one entry. See [`tokenizer_lowercases`].
    pub fn lowercase(mut self, lowercase: bool) -> Self {
        self.lowercase = lowercase;
        self
    }
}

/// How far a [`Distiller`] got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DistillStats {
    /// Sentences read (blank ones included).
    pub sentences: usize,
    /// Sentences that gave no vectors: blank, no word, or the model could not tokenize them.
    pub sentences_skipped: usize,
    /// Word occurrences averaged.
    pub occurrences: usize,
    /// Word occurrences found but not embedded: outside the window a sentence longer than the
    /// model was cut to, or without pieces.
    pub occurrences_skipped: usize,
}

/// Running sums of each word's contextual vectors; feed it sentences with [`add`](Self::add),
/// then [`finish`](Self::finish).
pub struct Distiller<'a> {
    engine: &'a dyn SentenceEmbedder,
    options: DistillOptions,
    index: HashMap<String, usize>,
    words: Vec<String>,
    counts: Vec<usize>,
    /// Row-major sums, `dims` per word; f64 so that millions of occurrences add up exactly enough.
    sums: Vec<f64>,
    dims: usize,
    stats: DistillStats,
}

impl<'a> Distiller<'a> {
    /// A distiller over `engine`; errors when the layer selection does not exist in it.
    pub fn new(engine: &'a dyn SentenceEmbedder, options: DistillOptions) -> Result<Self> {
        options.layers.range(engine.num_layers())?;
        Ok(Distiller {
            engine,
            dims: engine.dims(),
            options,
            index: HashMap::new(),
            words: Vec::new(),
            counts: Vec::new(),
            sums: Vec::new(),
            stats: DistillStats::default(),
        })
    }

    /// Embeds a batch of sentences (one forward pass per sentence, batched by the engine) and
    /// adds every word's vector to its sums. Only a failure of the model itself is an error; a
    /// sentence it cannot embed is counted in [`DistillStats::sentences_skipped`].
    pub fn add(&mut self, sentences: &[String]) -> Result<()> {
        self.stats.sentences += sentences.len();
        // Any word of the sentence serves as the target: all come from the same pass.
        let mut occurrences = Vec::with_capacity(sentences.len());
        let mut found = Vec::with_capacity(sentences.len());
        for sentence in sentences {
            let Some(span) = sentence_words(sentence).next() else {
                self.stats.sentences_skipped += 1;
                continue;
            };
            found.push(sentence_words(sentence).count());
            occurrences.push(Occurrence::new(sentence.as_str(), span)?);
        }
        let results = self.engine.embed_in_context(&occurrences, self.options.pooling)?;
        for ((occurrence, result), words) in occurrences.iter().zip(results).zip(found) {
            let Ok(vectors) = result else {
                self.stats.sentences_skipped += 1;
                self.stats.occurrences_skipped += words;
                continue;
            };
            let sentence = occurrence.sentence();
            let embedded = 1 + vectors.words.len();
            self.stats.occurrences_skipped += words.saturating_sub(embedded);
            self.accumulate(occurrence.word(), &vectors.target.vectors.select(&self.options.layers)?);
            for (span, layers) in &vectors.words {
                self.accumulate(&sentence[span.clone()], &layers.select(&self.options.layers)?);
            }
        }
        Ok(())
    }

    fn accumulate(&mut self, word: &str, vector: &[f32]) {
        let key = if self.options.lowercase { word.to_lowercase() } else { word.to_owned() };
        let row = *self.index.entry(key).or_insert_with_key(|key| {
            self.words.push(key.clone());
            self.counts.push(0);
            self.sums.resize(self.sums.len() + self.dims, 0.0);
            self.words.len() - 1
        });
        self.counts[row] += 1;
        self.stats.occurrences += 1;
        for (sum, &v) in self.sums[row * self.dims..(row + 1) * self.dims].iter_mut().zip(vector) {
            *sum += f64::from(v);
        }
    }

    /// How far it got.
    pub fn stats(&self) -> DistillStats {
        self.stats
    }

    /// Word types seen so far.
    pub fn words_seen(&self) -> usize {
        self.words.len()
    }

    /// The mean vectors of the words seen at least `min_count` times, most frequent first (ties
    /// in the order first seen), as finalfusion embeddings (unit rows with their norms, as
    /// every static engine holds them). Errors when no word qualifies.
    pub fn finish(self) -> Result<Distilled> {
        let mut order: Vec<usize> = (0..self.words.len()).filter(|&i| self.counts[i] >= self.options.min_count).collect();
        if order.is_empty() {
            return Err(Error::InvalidArgument(match self.words.is_empty() {
                true => "the corpus gave no word vectors: it has no words the model could embed".to_owned(),
                false => format!(
                    "no word occurs {} times or more in the corpus (the most frequent occurs {} times): lower --min-count",
                    self.options.min_count,
                    self.counts.iter().max().copied().unwrap_or(0)
                ),
            }));
        }
        // Stable: equal counts keep the order of first appearance.
        order.sort_by_key(|&i| std::cmp::Reverse(self.counts[i]));
        let dims = self.dims;
        let mut matrix = Array2::<f32>::zeros((order.len(), dims));
        let mut norms = Array1::<f32>::zeros(order.len());
        for (r, &i) in order.iter().enumerate() {
            let count = self.counts[i] as f64;
            let mean: Vec<f64> = self.sums[i * dims..(i + 1) * dims].iter().map(|s| s / count).collect();
            let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
            // A zero vector stays zero: its cosine is undefined, as for any static file.
            let scale = if norm > 0.0 { 1.0 / norm } else { 1.0 };
            matrix.row_mut(r).iter_mut().zip(&mean).for_each(|(m, v)| *m = (v * scale) as f32);
            norms[r] = norm as f32;
        }
        let words: Vec<String> = order.iter().map(|&i| self.words[i].clone()).collect();
        let counts = order.iter().map(|&i| self.counts[i]).collect();
        let embeddings = Embeddings::new(
            None,
            VocabWrap::SimpleVocab(SimpleVocab::new(words)),
            StorageViewWrap::NdArray(NdArray::new(matrix)),
            NdNorms::new(norms),
        );
        Ok(Distilled { embeddings, counts, stats: self.stats, words_seen: self.words.len() })
    }
}

/// The distilled static vectors.
pub struct Distilled {
    /// The vectors, most frequent word first.
    pub embeddings: StaticEmbeddings,
    /// How many occurrences each word's vector is the mean of, in vocabulary order.
    pub counts: Vec<usize>,
    /// What was read.
    pub stats: DistillStats,
    /// Word types seen, before `min_count` left the rarer ones out.
    pub words_seen: usize,
}

impl Distilled {
    /// Writes the vectors in finalfusion's format (which `--vectors` opens like any other) to
    /// `out`, a file or a buffer.
    pub fn write_finalfusion(&self, out: &mut (impl std::io::Write + std::io::Seek)) -> Result<()> {
        self.embeddings
            .write_embeddings(out)
            .map_err(|e| Error::InvalidArgument(format!("cannot write the distilled vectors as finalfusion: {e}")))
    }
}

/// Distills every sentence of `sentences`, `batch` at a time; `progress` is called after each
/// batch with the distiller (for a progress display).
pub fn distill<I>(
    engine: &dyn SentenceEmbedder,
    sentences: I,
    options: DistillOptions,
    batch: usize,
    mut progress: impl FnMut(&Distiller),
) -> Result<Distilled>
where
    I: IntoIterator<Item = String>,
{
    let mut distiller = Distiller::new(engine, options)?;
    let mut pending = Vec::with_capacity(batch.max(1));
    for sentence in sentences {
        pending.push(sentence);
        if pending.len() >= batch.max(1) {
            distiller.add(&pending)?;
            pending.clear();
            progress(&distiller);
        }
    }
    if !pending.is_empty() {
        distiller.add(&pending)?;
        progress(&distiller);
    }
    distiller.finish()
}

/// Whether a tokenizer lowercases its input (an uncased BERT's normalizer does): then "The"
/// and "the" are one input to the model, and distilling should count them as one word.
pub fn tokenizer_lowercases(tokenizer: &tokenizers::Tokenizer) -> bool {
    use tokenizers::{NormalizedString, Normalizer};
    let Some(normalizer) = tokenizer.get_normalizer() else { return false };
    let mut text = NormalizedString::from("Ab");
    normalizer.normalize(&mut text).is_ok() && text.get() == "ab"
}

/// The byte spans of a sentence's words, as [`crate::engine::context_words`] finds them.
fn sentence_words(sentence: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    use unicode_segmentation::UnicodeSegmentation;
    sentence.unicode_word_indices().map(|(start, word)| start..start + word.len())
}
