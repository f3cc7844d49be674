//! Batch similarity reports: per word and per layer, how much a word's contextual vectors
//! vary across its occurrences, compared with the static engine's one vector.
//!
//! An [`Analyzer`] takes [`Record`]s in chunks (as a [`RecordReader`] streams them from text,
//! TSV, JSONL or WiC input) and keeps, per word, only what the measures need: running sums of
//! the unit-length occurrence vectors (exact self-similarity and anisotropy baseline over all
//! occurrences) and a reservoir sample of at most [`ReportOptions::max_per_word`] occurrence
//! vectors (PCA and sense measures). Memory is therefore bounded by the number of words, not
//! the number of sentences. [`Analyzer::finish`] gives a [`Report`], which writes itself as
//! JSON, JSONL, CSV, Markdown or a self-contained HTML page ([`OutputFormat`]).
//!
//! ```no_run
//! use vecshift::report::{Analyzer, InputFormat, InputInfo, RecordReader, ReportOptions, OutputFormat};
//! use vecshift::{ContextualEncoder, StaticEngine};
//!
//! let bert = ContextualEncoder::load_default()?;
//! let glove = StaticEngine::open_default()?;
//! let mut analyzer = Analyzer::new(&bert, Some(&glove), ReportOptions::default());
//! let file = std::io::BufReader::new(std::fs::File::open("data/sentences/bank.tsv").unwrap());
//! let mut records = Vec::new();
//! let mut skipped = Vec::new();
//! for row in RecordReader::new(file, InputFormat::Tsv, &[])? {
//!     match row? {
//!         Ok(found) => records.extend(found),
//!         Err(bad) => skipped.push(bad),
//!     }
//! }
//! skipped.extend(analyzer.add(&records)?);
//! let report = analyzer.finish(InputInfo { name: "bank.tsv".into(), format: InputFormat::Tsv, lines: 9 }, skipped);
//! println!("{:?}", report.summary.layers.last().unwrap().self_similarity);
//! report.write(OutputFormat::Md, &mut std::io::stdout()).unwrap();
//! # Ok::<(), vecshift::Error>(())
//! ```

mod html;
mod input;
mod metrics;
mod write;

use std::collections::{BTreeMap, HashMap};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

pub use input::{BadRow, InputFormat, Record, RecordReader, Row};
pub use metrics::{ClusterMetrics, LayerMetrics, SenseMetrics};
pub use write::OutputFormat;

use crate::analysis::cosine_matrix;
use crate::engine::{Embedder, Pooling, SentenceVectors};
use crate::error::Result;
use crate::occurrence::Occurrence;
use metrics::Moments;

/// The default of [`ReportOptions::max_per_word`].
pub const DEFAULT_MAX_PER_WORD: usize = 1000;

/// Occurrences per word shown in the HTML report's cosine heatmaps.
const HEATMAP_OCCURRENCES: usize = 40;

/// Fixed so that the same input in the same order always gives the same sample and report.
const SAMPLE_SEED: u64 = 0x7665_6373_6869_6674;

/// Settings of an [`Analyzer`].
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Most occurrence vectors kept per word (a uniform reservoir sample, reproducible) for
    /// the measures that need the vectors themselves: first-PC variance and the sense measures.
    /// Self-similarity, the anisotropy baseline and intra-sentence similarity always use every
    /// occurrence.
    pub max_per_word: usize,
    /// How each word's pieces are pooled; `None`: the contextual engine's default.
    pub pooling: Option<Pooling>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { max_per_word: DEFAULT_MAX_PER_WORD, pooling: None }
    }
}

/// Where the input came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InputInfo {
    /// The file name, or `stdin`.
    pub name: String,
    /// How it was read.
    pub format: InputFormat,
    /// Lines read, bad ones included.
    pub lines: usize,
}

/// The BERT model a report was made with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BertInfo {
    /// The model's name.
    pub name: String,
    /// How WordPieces were pooled into word vectors.
    pub pooling: Pooling,
    /// Number of layers (hidden states), the embeddings output included.
    pub layers: usize,
    /// Vector length.
    pub dims: usize,
}

/// The static vectors a report was made with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StaticInfo {
    /// The file's name.
    pub name: String,
    /// Vector length.
    pub dims: usize,
}

/// The models of a report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Models {
    /// The contextual engine.
    pub bert: BertInfo,
    /// The static engine, when one was used.
    #[serde(rename = "static")]
    pub static_: Option<StaticInfo>,
}

/// The measures of one word.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WordReport {
    /// The word as the input names it.
    pub word: String,
    /// Its occurrences in the input (bad rows excluded).
    pub occurrences: usize,
    /// How many of them are in the sample used for `first_pc_variance` and the sense measures.
    pub sampled: usize,
    /// Occurrences per sense label, when the input has labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub senses: BTreeMap<String, usize>,
    /// One entry per BERT layer, layer 0 first.
    pub layers: Vec<LayerMetrics>,
    /// The static engine as one layer; `null` when the word has no static vector.
    #[serde(rename = "static")]
    pub static_: Option<LayerMetrics>,
    /// Pairwise cosines of (up to 40) sampled occurrences, for the HTML report; not serialized.
    #[serde(skip)]
    pub heatmaps: Vec<Heatmap>,
}

/// A word's occurrence-by-occurrence cosine matrix at one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    /// What the matrix is of, e.g. "BERT layer 6" or "static".
    pub title: String,
    /// One label per row and column: the sense, or the input line.
    pub labels: Vec<String>,
    /// Pairwise cosines.
    pub matrix: Vec<Vec<f32>>,
}

/// Means over words, per layer: the curves of Ethayarajh (2019).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Number of words.
    pub words: usize,
    /// One entry per BERT layer; each measure is the unweighted mean over the words where it
    /// is defined (sense measures over the words with sense labels).
    pub layers: Vec<LayerMetrics>,
    /// The same for the static engine.
    #[serde(rename = "static")]
    pub static_: Option<LayerMetrics>,
}

/// A finished report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Where the input came from.
    pub input: InputInfo,
    /// The engines.
    pub models: Models,
    /// The cap on sampled vectors per word.
    pub max_per_word: usize,
    /// Occurrences analysed, over all words.
    pub occurrences: usize,
    /// Per word, in order of first appearance.
    pub words: Vec<WordReport>,
    /// Means over words per layer.
    pub summary: Summary,
    /// Input lines that were skipped, in line order.
    pub skipped: Vec<BadRow>,
}

/// Accumulates occurrences chunk by chunk, in bounded memory, and computes the [`Report`].
pub struct Analyzer<'a> {
    bert: &'a dyn Embedder,
    static_engine: Option<&'a dyn Embedder>,
    pooling: Pooling,
    options: ReportOptions,
    words: Vec<WordState>,
    index: HashMap<String, usize>,
    rng: ChaCha8Rng,
    occurrences: usize,
}

/// What is kept of one word between chunks.
struct WordState {
    word: String,
    occurrences: usize,
    labels: Vec<String>,
    label_counts: Vec<usize>,
    bert: Vec<Moments>,
    static_: Moments,
    sample: Vec<Sample>,
}

/// One sampled occurrence.
struct Sample {
    line: usize,
    sense: Option<u32>,
    bert: Vec<Vec<f32>>,
    static_: Option<Vec<f32>>,
}

/// Embeds occurrences with the other words of their sentences when the engine can (the
/// [`SentenceEmbedder`](crate::SentenceEmbedder) capability), and alone otherwise.
fn embed_in_context(engine: &dyn Embedder, occurrences: &[Occurrence], pooling: Pooling) -> Result<Vec<Result<SentenceVectors>>> {
    match engine.sentence_embedder() {
        Some(engine) => engine.embed_in_context(occurrences, pooling),
        None => Ok(engine
            .embed_batch(occurrences, pooling)?
            .into_iter()
            .map(|r| r.map(|target| SentenceVectors { target, words: Vec::new() }))
            .collect()),
    }
}

impl<'a> Analyzer<'a> {
    /// An analyzer over a contextual engine and, optionally, a static one; `options.pooling`
    /// (default: the contextual engine's own) pools each word's pieces.
    pub fn new(bert: &'a dyn Embedder, static_engine: Option<&'a dyn Embedder>, options: ReportOptions) -> Self {
        Analyzer {
            bert,
            static_engine,
            pooling: options.pooling.unwrap_or_else(|| bert.default_pooling()),
            options,
            words: Vec::new(),
            index: HashMap::new(),
            rng: ChaCha8Rng::seed_from_u64(SAMPLE_SEED),
            occurrences: 0,
        }
    }

    /// Occurrences added so far.
    pub fn occurrences(&self) -> usize {
        self.occurrences
    }

    /// Embeds a chunk of records (the contextual engine batches and sorts them by length) and
    /// adds them to the per-word sums and samples. Records the contextual engine cannot embed
    /// come back as bad rows; model failures are errors.
    pub fn add(&mut self, records: &[Record]) -> Result<Vec<BadRow>> {
        let occurrences: Vec<Occurrence> = records.iter().map(|r| r.occurrence.clone()).collect();
        let contextual = embed_in_context(self.bert, &occurrences, self.pooling)?;
        // The static vector of the word as written (`Bank` falls back to `bank`), and those of the
        // other words of the sentence that are in the vocabulary.
        let statics = match self.static_engine {
            Some(engine) => embed_in_context(engine, &occurrences, self.pooling)?.into_iter().map(Result::ok).collect(),
            None => vec![None; records.len()],
        };
        let mut bad = Vec::new();
        for ((record, vectors), static_vectors) in records.iter().zip(contextual).zip(statics) {
            match vectors {
                Ok(vectors) => {
                    if let Some(total) = vectors.target.windowed_from {
                        log::warn!("line {}: the sentence has {total} tokens, more than the model's positions: a window around the word was encoded", record.line);
                    }
                    self.add_one(record, vectors, static_vectors);
                }
                Err(e) => bad.push(BadRow { line: record.line, reason: e.to_string() }),
            }
        }
        Ok(bad)
    }

    fn add_one(&mut self, record: &Record, vectors: SentenceVectors, static_vectors: Option<SentenceVectors>) {
        let static_vector = static_vectors.map(|s| {
            let vector = s.target.vectors.into_inner().pop().expect("a static engine has one layer");
            let intra = metrics::intra_sentence(&vector, s.words.iter().map(|(_, v)| &v.layers()[0]));
            (vector, intra)
        });

        let num_layers = self.bert.num_layers();
        let index = *self.index.entry(record.word.clone()).or_insert_with(|| {
            self.words.push(WordState {
                word: record.word.clone(),
                occurrences: 0,
                labels: Vec::new(),
                label_counts: Vec::new(),
                bert: vec![Moments::default(); num_layers],
                static_: Moments::default(),
                sample: Vec::new(),
            });
            self.words.len() - 1
        });
        let state = &mut self.words[index];
        let sense = record.sense.as_ref().map(|label| {
            let id = state.labels.iter().position(|l| l == label).unwrap_or_else(|| {
                state.labels.push(label.clone());
                state.label_counts.push(0);
                state.labels.len() - 1
            });
            state.label_counts[id] += 1;
            id as u32
        });
        for (layer, target) in vectors.target.vectors.layers().iter().enumerate() {
            let intra = metrics::intra_sentence(target, vectors.words.iter().map(|(_, v)| &v.layers()[layer]));
            state.bert[layer].add(target, intra);
        }
        if let Some((vector, intra)) = &static_vector {
            state.static_.add(vector, *intra);
        }

        // Reservoir sampling (Algorithm R): every occurrence ends up in the sample with the same probability.
        let seen = state.occurrences;
        state.occurrences += 1;
        self.occurrences += 1;
        let slot = if seen < self.options.max_per_word {
            Some(seen)
        } else {
            Some(self.rng.random_range(0..=seen)).filter(|&j| j < self.options.max_per_word)
        };
        if let Some(slot) = slot {
            let sample = Sample {
                line: record.line,
                sense,
                bert: vectors.target.vectors.into_inner(),
                static_: static_vector.map(|(v, _)| v),
            };
            if slot == state.sample.len() {
                state.sample.push(sample);
            } else {
                state.sample[slot] = sample;
            }
        }
    }

    /// Computes the measures. `skipped` (bad rows from reading and from [`add`](Self::add)) is
    /// sorted into the report.
    pub fn finish(self, input: InputInfo, mut skipped: Vec<BadRow>) -> Report {
        let num_layers = self.bert.num_layers();
        let baselines: Vec<Option<f64>> =
            (0..num_layers).map(|l| metrics::anisotropy_baseline(self.words.iter().map(|w| &w.bert[l]))).collect();
        let static_baseline = metrics::anisotropy_baseline(self.words.iter().map(|w| &w.static_));
        let words: Vec<WordReport> =
            self.words.into_par_iter().map(|w| w.finish(&baselines, static_baseline)).collect();
        skipped.sort_by_key(|b| b.line);
        let summary = Summary {
            words: words.len(),
            layers: (0..num_layers).map(|l| summarize(l, baselines[l], words.iter().map(|w| Some(&w.layers[l])))).collect(),
            static_: words
                .iter()
                .any(|w| w.static_.is_some())
                .then(|| summarize(0, static_baseline, words.iter().map(|w| w.static_.as_ref()))),
        };
        Report {
            input,
            models: Models {
                bert: BertInfo {
                    name: self.bert.name().to_owned(),
                    pooling: self.pooling,
                    layers: num_layers,
                    dims: self.bert.dims(),
                },
                static_: self.static_engine.map(|e| StaticInfo { name: e.name().to_owned(), dims: e.dims() }),
            },
            max_per_word: self.options.max_per_word,
            occurrences: self.occurrences,
            words,
            summary,
            skipped,
        }
    }
}

impl WordState {
    fn finish(self, baselines: &[Option<f64>], static_baseline: Option<f64>) -> WordReport {
        let has_senses = !self.labels.is_empty();
        let measure = |layer: usize, moments: &Moments, baseline: Option<f64>, vectors: Vec<(&[f32], Option<u32>)>| {
            let self_similarity = moments.self_similarity();
            let all: Vec<&[f32]> = vectors.iter().map(|(v, _)| *v).collect();
            let (labelled, senses): (Vec<&[f32]>, Vec<u32>) =
                vectors.iter().filter_map(|&(v, s)| Some((v, s?))).unzip();
            LayerMetrics {
                layer,
                self_similarity,
                anisotropy_baseline: baseline,
                adjusted_self_similarity: self_similarity.zip(baseline).map(|(s, b)| s - b),
                intra_sentence_similarity: moments.intra_sentence(),
                first_pc_variance: metrics::first_pc_variance(&all),
                senses: has_senses.then(|| metrics::sense_metrics(&labelled, &senses)),
                clusters: Some(metrics::cluster_metrics(&all, &vectors.iter().map(|(_, s)| *s).collect::<Vec<_>>())),
            }
        };
        let layers = (0..self.bert.len())
            .map(|l| measure(l, &self.bert[l], baselines[l], self.sample.iter().map(|s| (s.bert[l].as_slice(), s.sense)).collect()))
            .collect();
        let static_ = (self.static_.count > 0).then(|| {
            let vectors = self.sample.iter().filter_map(|s| Some((s.static_.as_deref()?, s.sense))).collect();
            measure(0, &self.static_, static_baseline, vectors)
        });

        // Heatmaps of the first sampled occurrences, grouped by sense so that sense blocks show.
        let mut shown: Vec<&Sample> = self.sample.iter().take(HEATMAP_OCCURRENCES).collect();
        shown.sort_by_key(|s| s.sense.map(|id| &self.labels[id as usize]));
        let labels: Vec<String> = shown
            .iter()
            .map(|s| s.sense.map_or_else(|| format!("line {}", s.line), |id| self.labels[id as usize].clone()))
            .collect();
        let last = self.bert.len().saturating_sub(1);
        let mut heatmaps: Vec<Heatmap> = [0, last]
            .into_iter()
            .filter(|&l| l < self.bert.len())
            .map(|l| Heatmap {
                title: format!("BERT layer {l}"),
                labels: labels.clone(),
                matrix: cosine_matrix(&shown.iter().map(|s| s.bert[l].as_slice()).collect::<Vec<_>>()),
            })
            .collect();
        heatmaps.dedup_by(|a, b| a.title == b.title);
        if shown.iter().all(|s| s.static_.is_some()) && static_.is_some() {
            heatmaps.push(Heatmap {
                title: "static".into(),
                labels,
                matrix: cosine_matrix(&shown.iter().filter_map(|s| s.static_.as_deref()).collect::<Vec<_>>()),
            });
        }

        WordReport {
            word: self.word,
            occurrences: self.occurrences,
            sampled: self.sample.len(),
            senses: self.labels.into_iter().zip(self.label_counts).collect(),
            layers,
            static_,
            heatmaps,
        }
    }
}

/// The mean of each measure over the words where it is defined.
fn summarize<'a>(layer: usize, baseline: Option<f64>, words: impl Iterator<Item = Option<&'a LayerMetrics>>) -> LayerMetrics {
    let words: Vec<&LayerMetrics> = words.flatten().collect();
    let mean = |f: &dyn Fn(&LayerMetrics) -> Option<f64>| {
        let values: Vec<f64> = words.iter().filter_map(|w| f(w)).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let sense = |f: &dyn Fn(&SenseMetrics) -> Option<f64>| mean(&|w| w.senses.as_ref().and_then(f));
    LayerMetrics {
        layer,
        self_similarity: mean(&|w| w.self_similarity),
        anisotropy_baseline: baseline,
        adjusted_self_similarity: mean(&|w| w.adjusted_self_similarity),
        intra_sentence_similarity: mean(&|w| w.intra_sentence_similarity),
        first_pc_variance: mean(&|w| w.first_pc_variance),
        senses: words.iter().any(|w| w.senses.is_some()).then(|| SenseMetrics {
            within_sense: sense(&|s| s.within_sense),
            between_sense: sense(&|s| s.between_sense),
            nn_sense_accuracy: sense(&|s| s.nn_sense_accuracy),
        }),
        clusters: None,
    }
}
