//! Batch similarity reports: per word and per layer, how much a word's contextual vectors
//! vary across its occurrences, compared with the static engine's one vector.
//!
//! An [`Analyzer`] takes [`Record`]s in chunks (as a [`RecordReader`] streams them from text,
//! TSV, JSONL or WiC input) and keeps, per word, only what the measures need: running sums of
//! the unit-length occurrence vectors (exact self-similarity and anisotropy baseline over all
//! occurrences) and a sample of at most [`ReportOptions::max_per_word`] occurrence vectors
//! (PCA and sense measures), chosen by a fixed hash so that it does not depend on the input's
//! order. Memory is therefore bounded by the number of words, not the number of sentences, and
//! the state of each shard of an input merges into that of the whole ([`partial`]).
//! [`Analyzer::finish`] gives a [`Report`], which writes itself as JSON, JSONL, CSV, Markdown
//! or a self-contained HTML page ([`OutputFormat`]).
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

mod corrections;
mod html;
mod input;
mod metrics;
mod models;
pub mod partial;
mod variants;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use corrections::{CorrectedLayer, CorrectedWord, CorrectionReport, Corrections};
pub use input::{BadRow, InputFormat, Record, RecordReader, Row};
pub use metrics::{ClusterMetrics, LayerMetrics, SenseMetrics};
pub use models::{CKA_OCCURRENCES, Cka, NeighbourOverlap};
pub use partial::{InputId, Partial, Shard, merge, merge_with};
pub use write::OutputFormat;

use crate::analysis::cosine_matrix;
use crate::engine::{Embedder, EngineKind, Pooling, SentenceVectors};
use crate::error::Error;
use crate::error::Result;
use crate::occurrence::Occurrence;
use metrics::Moments;

/// The default of [`ReportOptions::max_per_word`].
pub const DEFAULT_MAX_PER_WORD: usize = 1000;

/// Occurrences per word shown in the HTML report's cosine heatmaps.
const HEATMAP_OCCURRENCES: usize = 40;

/// The keys of the hash that picks each word's sample: fixed, so that the same input always
/// gives the same sample and report, however it is split into shards.
const SAMPLE_SEED: (u64, u64) = (0x7665_6373_6869_6674, 0x7361_6d70_6c65_2d31);

/// Settings of an [`Analyzer`].
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Most occurrence vectors kept per word (a uniform sample, reproducible and independent
    /// of the order and sharding of the input) for the measures that need the vectors themselves: first-PC variance and the sense measures.
    /// Self-similarity, the anisotropy baseline and intra-sentence similarity always use every
    /// occurrence.
    pub max_per_word: usize,
    /// How each word's pieces are pooled; `None`: each engine's own default.
    pub pooling: Option<Pooling>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { max_per_word: DEFAULT_MAX_PER_WORD, pooling: None }
    }
}

/// Where the input came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputInfo {
    /// The file name, or `stdin`.
    pub name: String,
    /// How it was read.
    pub format: InputFormat,
    /// Lines read, bad ones included.
    pub lines: usize,
}

/// The BERT model a report was made with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StaticInfo {
    /// The file's name.
    pub name: String,
    /// Vector length.
    pub dims: usize,
}

/// One engine of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// The engine's name (unique within a report).
    pub name: String,
    /// Static or contextual.
    pub kind: EngineKind,
    /// The architecture or file format (`bert`, `roberta`, ..., `glove`, `finalfusion`, ...).
    pub architecture: String,
    /// How pieces were pooled into word vectors; `null` for a static engine.
    pub pooling: Option<Pooling>,
    /// Number of layers (hidden states, the embeddings output included; 1 for a static engine).
    pub layers: usize,
    /// Vector length.
    pub dims: usize,
}

impl EngineInfo {
    /// Describes `engine`, which pools with `pooling`.
    fn of(engine: &dyn Embedder, pooling: Pooling) -> Self {
        let kind = engine.kind();
        EngineInfo {
            name: engine.name().to_owned(),
            kind,
            architecture: engine.architecture().to_owned(),
            pooling: (kind == EngineKind::Contextual).then_some(pooling),
            layers: engine.num_layers(),
            dims: engine.dims(),
        }
    }
}

/// The models of a report: the first contextual and the first static engine (the
/// [`Report::engines`] list has every one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Models {
    /// The contextual engine.
    pub bert: BertInfo,
    /// The static engine, when one was used.
    #[serde(rename = "static")]
    pub static_: Option<StaticInfo>,
}

impl Models {
    /// The first contextual and the first static engine of `engines`, which has a contextual one.
    fn of(engines: &[EngineInfo]) -> Self {
        let bert = engines.iter().find(|e| e.kind == EngineKind::Contextual).expect("a report has a contextual engine");
        Models {
            bert: BertInfo { name: bert.name.clone(), pooling: bert.pooling.unwrap_or_default(), layers: bert.layers, dims: bert.dims },
            static_: engines
                .iter()
                .find(|e| e.kind == EngineKind::Static)
                .map(|e| StaticInfo { name: e.name.clone(), dims: e.dims }),
        }
    }
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
    /// The pieces the first contextual engine pooled for the word, each sequence with how many
    /// occurrences it was, most frequent first: `[UNK]` shows here, as do spellings that differ
    /// with the context (`Ġbank` mid-sentence, `bank` first in a byte-level BPE).
    pub pieces: Vec<PieceCount>,
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
    /// The occurrences of the heatmaps, in their row order (row `i` is `S{i+1}`), which the
    /// HTML and Markdown reports list; not serialized.
    #[serde(skip)]
    pub examples: Vec<Example>,
}

/// One way a word was split into pieces, and how many of its occurrences were.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PieceCount {
    /// The tokens pooled, e.g. `["un", "##happiness"]`.
    pub pieces: Vec<String>,
    /// Occurrences split this way.
    pub count: usize,
}

impl PieceCount {
    /// The pieces joined by spaces, with the count when `of` (all occurrences) is larger.
    pub fn label(&self, of: usize) -> String {
        let joined = self.pieces.join(" ");
        if self.count < of { format!("{joined} ×{}", self.count) } else { joined }
    }
}

/// Most distinct piece sequences a report keeps per word.
const MAX_PIECE_SEQUENCES: usize = 8;

/// One occurrence shown in a word's heatmaps and listed under the word.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// 1-based line number in the input.
    pub line: usize,
    /// The sense label, when the input gives one.
    pub sense: Option<String>,
    /// The sentence.
    pub sentence: String,
}

/// A word's occurrence-by-occurrence cosine matrix at one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    /// What the matrix is of, e.g. "BERT layer 6" or "static".
    pub title: String,
    /// One label per row and column: `S1`, `S2`... (the word's [`Example`]s) and the sense.
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
    /// The first contextual and the first static engine.
    pub models: Models,
    /// The cap on sampled vectors per word.
    pub max_per_word: usize,
    /// Occurrences analysed, over all words.
    pub occurrences: usize,
    /// Per word, in order of first appearance: the measures of the first contextual and the
    /// first static engine.
    pub words: Vec<WordReport>,
    /// Means over words per layer.
    pub summary: Summary,
    /// Input lines that were skipped, in line order.
    pub skipped: Vec<BadRow>,
    /// What each anisotropy correction of [`Analyzer::corrections`] does to self-similarity
    /// per layer (over the sampled occurrences); absent when none was asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub postprocess: Vec<CorrectionReport>,
    /// Each compression variant against its original (`--variant`), over a sample of the
    /// occurrences; absent without variants.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<crate::compress::VariantDrift>,
    /// Every engine, in the order given, with its measures per word.
    pub engines: Vec<EngineReport>,
    /// Linear CKA between every layer of one engine and every layer of another, for every pair
    /// of engines, over the same sampled occurrences.
    pub cka: Vec<Cka>,
    /// How many of each occurrence's nearest other occurrences two engines agree on, at the
    /// layer pairs described in the README (matching relative depth; a static engine against every layer).
    pub neighbour_overlap: Vec<NeighbourOverlap>,
}

/// One engine's measures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EngineReport {
    /// Which engine.
    #[serde(flatten)]
    pub info: EngineInfo,
    /// Per word, in the order of [`Report::words`].
    pub words: Vec<EngineWord>,
    /// Means over words per layer.
    pub summary: Vec<LayerMetrics>,
}

/// The measures of one word by one engine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EngineWord {
    /// The word as the input names it.
    pub word: String,
    /// Its occurrences with a (non-zero) vector from this engine: all of them for a contextual
    /// engine, none when a static engine lacks the word.
    pub occurrences: usize,
    /// How many of the sampled occurrences have a vector from this engine.
    pub sampled: usize,
    /// One entry per layer, layer 0 first; empty when the engine has no vector for the word.
    pub layers: Vec<LayerMetrics>,
}

/// Accumulates occurrences chunk by chunk, in bounded memory, and computes the [`Report`].
pub struct Analyzer<'a> {
    engines: Vec<&'a dyn Embedder>,
    info: Vec<EngineInfo>,
    options: ReportOptions,
    tally: Tally,
    /// The last chunk's embedded records, added to the tally while the next chunk is embedded.
    pending: Vec<Embedded>,
    corrections: Corrections,
}

/// The per-word sums and samples so far.
#[derive(Default)]
struct Tally {
    words: Vec<WordState>,
    index: HashMap<String, usize>,
    occurrences: usize,
}

/// A record with its vectors from each engine (`None` where a static engine lacks the word).
struct Embedded {
    record: Record,
    vectors: Vec<Option<SentenceVectors>>,
}

/// What is kept of one word between chunks, and what a partial report holds per word: sums
/// over every occurrence and a sample of at most `max_per_word` of them. Two states of one word
/// from different parts of the input merge exactly ([`WordState::absorb`]).
#[derive(Serialize, Deserialize)]
pub(crate) struct WordState {
    word: String,
    occurrences: usize,
    labels: Vec<String>,
    label_counts: Vec<usize>,
    /// How often the first contextual engine pooled each sequence of pieces (a byte-level BPE
    /// spells a sentence-initial word otherwise than a mid-sentence one), at most
    /// [`MAX_PIECE_SEQUENCES`] of them.
    pieces: Vec<(Vec<String>, usize)>,
    /// Per engine, per layer.
    moments: Vec<Vec<Moments>>,
    sample: Vec<Sample>,
    /// Index in `sample` of the entry that goes first when a better one comes (the largest
    /// [`Sample::rank`]), once the sample is full; recomputed, not stored.
    #[serde(skip)]
    worst: Option<usize>,
}

/// One sampled occurrence.
#[derive(Serialize, Deserialize)]
pub(crate) struct Sample {
    /// [`sample_key`] of the occurrence.
    key: u64,
    line: usize,
    sense: Option<u32>,
    /// The sentence, for the reports' lists and heatmap labels.
    sentence: String,
    /// Per engine, its per-layer vectors; `None` where a static engine lacks the word.
    vectors: Vec<Option<Vec<Vec<f32>>>>,
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

impl Sample {
    /// What the sample keeps: the occurrences with the smallest ranks. The line breaks ties,
    /// which only identical occurrences on one line (or a 64-bit hash collision) can have.
    fn rank(&self) -> (u64, usize) {
        (self.key, self.line)
    }
}

/// A hash of where an occurrence is (the byte offset of its line in the whole input) and what
/// it is (word, sentence, span), with fixed keys: keeping the occurrences with the smallest
/// keys is a uniform sample that does not depend on the order in which occurrences come, so
/// samples of the shards of an input merge into exactly the sample of the whole input.
fn sample_key(word: &str, offset: u64, occurrence: &Occurrence) -> u64 {
    use std::hash::Hasher;
    let mut hasher = siphasher::sip::SipHasher13::new_with_keys(SAMPLE_SEED.0, SAMPLE_SEED.1);
    // Lengths first, so that no two different inputs give the same byte stream.
    for part in [word.as_bytes(), occurrence.sentence().as_bytes()] {
        hasher.write(&(part.len() as u64).to_le_bytes());
        hasher.write(part);
    }
    for number in [offset, occurrence.span().start as u64, occurrence.span().end as u64] {
        hasher.write(&number.to_le_bytes());
    }
    hasher.finish()
}

impl<'a> Analyzer<'a> {
    /// An analyzer over a contextual engine and, optionally, a static one; `options.pooling`
    /// (default: the contextual engine's own) pools each word's pieces.
    pub fn new(bert: &'a dyn Embedder, static_engine: Option<&'a dyn Embedder>, options: ReportOptions) -> Self {
        let engines: Vec<&dyn Embedder> = std::iter::once(bert).chain(static_engine).collect();
        Self::with_engines(&engines, options).expect("the first engine is contextual")
    }

    /// An analyzer over any number of engines, in the order the report lists them, of which at
    /// least one is contextual. Each pools with `options.pooling`, else its own default. Engine
    /// names should be unique: the report keys its measures by them.
    pub fn with_engines(engines: &[&'a dyn Embedder], options: ReportOptions) -> Result<Self> {
        if !engines.iter().any(|e| e.kind() == EngineKind::Contextual) {
            return Err(Error::InvalidArgument("a report needs a contextual engine (e.g. --bert); static vectors alone do not vary across sentences".into()));
        }
        if let Some((i, e)) = engines.iter().enumerate().find(|(i, e)| engines[..*i].iter().any(|o| o.name() == e.name())) {
            return Err(Error::InvalidArgument(format!(
                "two engines are named {:?} (the {} given is the second); a report keys its measures by name: label them NAME=SOURCE",
                e.name(),
                ordinal(i + 1)
            )));
        }
        let info = engines.iter().map(|e| EngineInfo::of(*e, options.pooling.unwrap_or_else(|| e.default_pooling()))).collect();
        Ok(Analyzer { engines: engines.to_vec(), info, options, tally: Tally::default(), pending: Vec::new(), corrections: Corrections::default() })
    }

    /// Also measures what these anisotropy corrections do to self-similarity per layer (the
    /// report's [`postprocess`](Report::postprocess)). A [`partial`] report does not carry them.
    pub fn corrections(mut self, corrections: Corrections) -> Self {
        self.corrections = corrections;
        self
    }

    /// Occurrences added so far.
    pub fn occurrences(&self) -> usize {
        self.tally.occurrences + self.pending.len()
    }

    /// Embeds a chunk of records (the contextual engines batch and sort them by length) and
    /// adds them to the per-word sums and samples (while the next chunk is embedded, or when
    /// the report is made: [`occurrences`](Self::occurrences) counts them from the start).
    /// Records that a contextual engine cannot
    /// embed come back as bad rows (every contextual engine sees the same occurrences); a word
    /// that a static engine lacks has no vector from it. Model failures are errors.
    pub fn add(&mut self, records: &[Record]) -> Result<Vec<BadRow>> {
        let Analyzer { engines, info, options, tally, pending, .. } = self;
        let waiting = std::mem::take(pending);
        let occurrences: Vec<Occurrence> = records.iter().map(|r| r.occurrence.clone()).collect();
        let embed = |kind: EngineKind| -> Result<Vec<(usize, Vec<Result<SentenceVectors>>)>> {
            let of_kind = engines.iter().zip(info.iter()).enumerate().filter(|(_, (_, info))| info.kind == kind);
            of_kind.map(|(e, (engine, info))| Ok((e, embed_in_context(*engine, &occurrences, info.pooling.unwrap_or_default())?))).collect()
        };
        // The contextual engines (on the thread pool) beside serial work on a thread of its
        // own: the previous chunk's sums and this chunk's static lookups. The encoder leaves
        // a core idle now and then (tokenizing, the steps between its parallel ones).
        let (statics, contextual) = std::thread::scope(|scope| {
            let background = scope.spawn(|| {
                tally.add(info, options.max_per_word, waiting);
                embed(EngineKind::Static)
            });
            let contextual = embed(EngineKind::Contextual);
            (background.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), contextual)
        });
        let mut found: Vec<(usize, Vec<Result<SentenceVectors>>)> = contextual?.into_iter().chain(statics?).collect();
        found.sort_by_key(|(e, _)| *e);
        let (embedded, bad) = sort_out(info, records, found.into_iter().map(|(_, results)| results).collect());
        *pending = embedded;
        Ok(bad)
    }

    /// Adds the last chunk's records to the sums.
    fn flush(&mut self) {
        let waiting = std::mem::take(&mut self.pending);
        self.tally.add(&self.info, self.options.max_per_word, waiting);
    }

    /// The state so far as the partial report of one shard of the input, to be merged with the
    /// other shards' by [`merge`]. `lines` counts the shard's lines and `skipped` holds its bad
    /// rows, both numbered from the shard's first line.
    pub fn into_partial(mut self, input: InputId, shard: Shard, range: Range<u64>, lines: usize, skipped: Vec<BadRow>) -> Partial {
        self.flush();
        Partial::new(input, shard, range, lines, self.info, self.options.max_per_word, self.tally.occurrences, self.tally.words, skipped)
    }

    /// Computes the measures. `skipped` (bad rows from reading and from [`add`](Self::add)) is
    /// sorted into the report.
    pub fn finish(mut self, input: InputInfo, skipped: Vec<BadRow>) -> Report {
        self.flush();
        build_report(input, self.info, self.options.max_per_word, self.tally.occurrences, self.tally.words, skipped, &self.corrections)
    }
}

/// Each engine's results (per engine, per record) sorted out: the records every contextual
/// engine embedded, and the others as bad rows. A static engine gives the vector of the word as
/// written (`Bank` falls back to `bank`), and those of the other words of the sentence that are
/// in the vocabulary.
fn sort_out(info: &[EngineInfo], records: &[Record], found: Vec<Vec<Result<SentenceVectors>>>) -> (Vec<Embedded>, Vec<BadRow>) {
    let mut found: Vec<std::vec::IntoIter<Result<SentenceVectors>>> = found.into_iter().map(Vec::into_iter).collect();
    let contextual = info.iter().filter(|e| e.kind == EngineKind::Contextual).count();
    let mut embedded = Vec::with_capacity(records.len());
    let mut bad = Vec::new();
    for record in records {
        let mut vectors = Vec::with_capacity(found.len());
        let mut failed = None;
        for (results, info) in found.iter_mut().zip(info) {
            let result = results.next().expect("one result per occurrence");
            match (result, info.kind) {
                (Ok(v), kind) => {
                    if let (Some(total), EngineKind::Contextual) = (v.target.windowed_from, kind) {
                        let by = if contextual > 1 { format!(" for {}", info.name) } else { String::new() };
                        log::warn!("line {}: the sentence has {total} tokens, more than the model's positions{by}: a window around the word was encoded", record.line);
                    }
                    vectors.push(Some(v));
                }
                (Err(e), EngineKind::Contextual) => {
                    let reason = if contextual > 1 { format!("{}: {e}", info.name) } else { e.to_string() };
                    failed.get_or_insert(reason);
                    vectors.push(None);
                }
                (Err(_), EngineKind::Static) => vectors.push(None),
            }
        }
        match failed {
            Some(reason) => bad.push(BadRow { line: record.line, reason }),
            None => embedded.push(Embedded { record: record.clone(), vectors }),
        }
    }
    (embedded, bad)
}

impl Tally {
    /// Adds embedded records, in order, to the sums and samples.
    fn add(&mut self, info: &[EngineInfo], max_per_word: usize, embedded: Vec<Embedded>) {
        for Embedded { record, vectors } in embedded {
            self.add_one(info, max_per_word, &record, vectors);
        }
    }

    fn add_one(&mut self, info: &[EngineInfo], max_per_word: usize, record: &Record, found: Vec<Option<SentenceVectors>>) {
        let index = *self.index.entry(record.word.clone()).or_insert_with(|| {
            self.words.push(WordState {
                word: record.word.clone(),
                occurrences: 0,
                labels: Vec::new(),
                label_counts: Vec::new(),
                pieces: Vec::new(),
                moments: info.iter().map(|e| vec![Moments::default(); e.layers]).collect(),
                sample: Vec::new(),
                worst: None,
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
        if let Some(Some(first)) = info.iter().position(|e| e.kind == EngineKind::Contextual).map(|e| &found[e]) {
            state.count_pieces(&first.target.pieces, 1);
        }
        for (moments, vectors) in state.moments.iter_mut().zip(&found) {
            let Some(vectors) = vectors else { continue };
            for (layer, target) in vectors.target.vectors.layers().iter().enumerate() {
                let intra = metrics::intra_sentence(target, vectors.words.iter().map(|(_, v)| &v.layers()[layer]));
                moments[layer].add(target, intra);
            }
        }

        state.occurrences += 1;
        self.occurrences += 1;
        let key = sample_key(&record.word, record.offset, &record.occurrence);
        if state.wants((key, record.line), max_per_word) {
            let sentence = record.occurrence.sentence().to_owned();
            let vectors = found.into_iter().map(|v| v.map(|v| v.target.vectors.into_inner())).collect();
            state.keep(Sample { key, line: record.line, sense, sentence, vectors }, max_per_word);
        }
    }
}

/// The report from the state of every word: the single-process path ([`Analyzer::finish`]) and
/// the merge of partial reports ([`merge`]) meet here.
pub(crate) fn build_report(
    input: InputInfo,
    engines: Vec<EngineInfo>,
    max_per_word: usize,
    occurrences: usize,
    mut state: Vec<WordState>,
    mut skipped: Vec<BadRow>,
    corrections: &Corrections,
) -> Report {
    let models = Models::of(&engines);
    let first_contextual = engines.iter().position(|e| e.kind == EngineKind::Contextual).expect("a contextual engine");
    let first_static = engines.iter().position(|e| e.kind == EngineKind::Static);
    // Per engine, per layer.
    let baselines: Vec<Vec<Option<f64>>> = engines
        .iter()
        .enumerate()
        .map(|(e, info)| (0..info.layers).map(|l| metrics::anisotropy_baseline(state.iter().map(|w| &w.moments[e][l]))).collect())
        .collect();
    // In input order, whichever order the occurrences came in (shards, or the sample's
    // replacements): the heatmaps show the first of them, and the model-to-model rows follow it.
    state.par_iter_mut().for_each(|w| w.sample.sort_unstable_by_key(|s| (s.line, s.key)));
    let started = std::time::Instant::now();
    // Side by side: each is parallel inside, but each ends on a tail that keeps one core busy.
    let ((cka, neighbour_overlap), (postprocess, finished)) = rayon::join(
        || {
            let compared = models::compare(&engines, &state);
            log::debug!("report: models compared in {:.3} s", started.elapsed().as_secs_f64());
            compared
        },
        || {
            let postprocess = corrections::measure(corrections, &state, first_contextual, engines[first_contextual].layers);
            let finished: Vec<(WordReport, Vec<EngineWord>)> =
                state.par_iter().map(|w| w.finish(&engines, &baselines, first_contextual, first_static)).collect();
            log::debug!("report: {} words measured in {:.3} s", finished.len(), started.elapsed().as_secs_f64());
            (postprocess, finished)
        },
    );
    drop(state);
    let (words, per_engine): (Vec<WordReport>, Vec<Vec<EngineWord>>) = finished.into_iter().unzip();
    skipped.sort_by_key(|b| b.line);

    let engine_reports: Vec<EngineReport> = engines
        .into_iter()
        .enumerate()
        .map(|(e, info)| {
            let words: Vec<EngineWord> = per_engine.iter().map(|w| w[e].clone()).collect();
            let summary = (0..info.layers).map(|l| summarize(l, baselines[e][l], words.iter().map(|w| w.layers.get(l)))).collect();
            EngineReport { info, words, summary }
        })
        .collect();
    let summary = Summary {
        words: words.len(),
        layers: engine_reports[first_contextual].summary.clone(),
        static_: first_static
            .filter(|&s| engine_reports[s].words.iter().any(|w| !w.layers.is_empty()))
            .map(|s| engine_reports[s].summary[0].clone()),
    };
    Report { input, models, max_per_word, occurrences, words, summary, skipped, engines: engine_reports, cka, neighbour_overlap, postprocess, variants: Vec::new() }
}

impl WordState {
    /// Whether an occurrence of this rank gets into a sample of at most `max` entries.
    fn wants(&self, rank: (u64, usize), max: usize) -> bool {
        self.sample.len() < max || self.worst.is_some_and(|w| rank < self.sample[w].rank())
    }

    /// Puts an occurrence that [`wants`](Self::wants) says belongs into the sample, in place of
    /// the worst one when the sample is full.
    fn keep(&mut self, sample: Sample, max: usize) {
        match self.worst {
            Some(worst) if self.sample.len() >= max => self.sample[worst] = sample,
            _ => self.sample.push(sample),
        }
        if self.sample.len() >= max {
            self.worst = (0..self.sample.len()).max_by_key(|&i| self.sample[i].rank());
        }
    }

    /// Adds the state of the same word from a later part of the input, whose lines are
    /// numbered from `line_offset + 1`: counts and sums add up, sense labels are matched by
    /// name, and the sample keeps the `max` occurrences of smallest rank of both.
    pub(crate) fn absorb(&mut self, other: WordState, line_offset: usize, max: usize) {
        self.occurrences += other.occurrences;
        for (pieces, count) in &other.pieces {
            self.count_pieces(pieces, *count);
        }
        let sense_ids: Vec<u32> = other
            .labels
            .into_iter()
            .zip(other.label_counts)
            .map(|(label, count)| {
                let id = self.labels.iter().position(|l| *l == label).unwrap_or_else(|| {
                    self.labels.push(label);
                    self.label_counts.push(0);
                    self.labels.len() - 1
                });
                self.label_counts[id] += count;
                id as u32
            })
            .collect();
        for (mine, theirs) in self.moments.iter_mut().zip(&other.moments) {
            mine.iter_mut().zip(theirs).for_each(|(a, b)| a.merge(b));
        }
        self.sample.extend(other.sample.into_iter().map(|s| Sample {
            line: s.line + line_offset,
            sense: s.sense.map(|id| sense_ids[id as usize]),
            ..s
        }));
        if self.sample.len() > max {
            self.sample.sort_unstable_by_key(Sample::rank);
            self.sample.truncate(max);
        }
        self.worst = None;
    }

    /// Shifts the line numbers (of a part whose lines follow `line_offset` others).
    pub(crate) fn shift_lines(&mut self, line_offset: usize) {
        self.sample.iter_mut().for_each(|s| s.line += line_offset);
    }

    /// The word as the input names it.
    pub(crate) fn word(&self) -> &str {
        &self.word
    }

    /// Whether the state has the engines and layers of `engines`.
    pub(crate) fn has_layers(&self, engines: &[EngineInfo]) -> bool {
        let fits = |vectors: &[Option<Vec<Vec<f32>>>]| {
            vectors.len() == engines.len()
                && vectors.iter().zip(engines).all(|(v, e)| v.as_ref().is_none_or(|v| v.len() == e.layers && v.iter().all(|l| l.len() == e.dims)))
        };
        self.moments.len() == engines.len()
            && self.moments.iter().zip(engines).all(|(m, e)| m.len() == e.layers)
            && self.sample.iter().all(|s| fits(&s.vectors))
    }

    /// The vector of sampled occurrence `index` from engine `engine` at `layer`, if it has one.
    pub(crate) fn vector(&self, engine: usize, index: usize, layer: usize) -> Option<&[f32]> {
        Some(self.sample[index].vectors[engine].as_ref()?[layer].as_slice())
    }

    /// The sample keys, in sample order.
    pub(crate) fn sample_keys(&self) -> impl Iterator<Item = u64> {
        self.sample.iter().map(|s| s.key)
    }

    /// Counts `count` more occurrences pooled from `pieces`; a sequence beyond the first
    /// [`MAX_PIECE_SEQUENCES`] is not kept (a word spelled that many ways is noise).
    fn count_pieces(&mut self, pieces: &[String], count: usize) {
        if let Some((_, n)) = self.pieces.iter_mut().find(|(p, _)| p.as_slice() == pieces) {
            *n += count;
        } else if self.pieces.len() < MAX_PIECE_SEQUENCES {
            self.pieces.push((pieces.to_vec(), count));
        }
    }

    fn finish(&self, engines: &[EngineInfo], baselines: &[Vec<Option<f64>>], first_contextual: usize, first_static: Option<usize>) -> (WordReport, Vec<EngineWord>) {
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
        let per_engine: Vec<EngineWord> = engines
            .iter()
            .enumerate()
            .map(|(e, info)| {
                let moments = &self.moments[e];
                let sampled = self.sample.iter().filter(|s| s.vectors[e].is_some()).count();
                // A contextual engine embedded every occurrence; a static one only the words it has.
                let present = info.kind == EngineKind::Contextual || moments[0].count > 0;
                let layers = if present {
                    (0..info.layers)
                        .map(|l| {
                            let vectors = self.sample.iter().filter_map(|s| Some((s.vectors[e].as_ref()?[l].as_slice(), s.sense))).collect();
                            measure(l, &moments[l], baselines[e][l], vectors)
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let occurrences = if info.kind == EngineKind::Contextual { self.occurrences } else { moments[0].count };
                EngineWord { word: self.word.clone(), occurrences, sampled, layers }
            })
            .collect();

        // Heatmaps of the first sampled occurrences, grouped by sense so that sense blocks show:
        // layers 0 and last of the first contextual engine, the last layer of the other
        // contextual engines, and the first static engine.
        let mut shown: Vec<&Sample> = self.sample.iter().take(HEATMAP_OCCURRENCES).collect();
        shown.sort_by_key(|s| s.sense.map(|id| &self.labels[id as usize]));
        let examples: Vec<Example> = shown
            .iter()
            .map(|s| Example { line: s.line, sense: s.sense.map(|id| self.labels[id as usize].clone()), sentence: s.sentence.clone() })
            .collect();
        let labels: Vec<String> = examples
            .iter()
            .enumerate()
            .map(|(i, e)| e.sense.as_ref().map_or_else(|| format!("S{}", i + 1), |sense| format!("S{} {sense}", i + 1)))
            .collect();
        let map = |title: String, e: usize, l: usize| Heatmap {
            title,
            labels: labels.clone(),
            matrix: cosine_matrix(&shown.iter().map(|s| s.vectors[e].as_ref().expect("a contextual vector")[l].as_slice()).collect::<Vec<_>>()),
        };
        let last = engines[first_contextual].layers.saturating_sub(1);
        let mut heatmaps: Vec<Heatmap> = [0, last].into_iter().map(|l| map(format!("BERT layer {l}"), first_contextual, l)).collect();
        heatmaps.dedup_by(|a, b| a.title == b.title);
        for (e, info) in engines.iter().enumerate().filter(|&(e, i)| e != first_contextual && i.kind == EngineKind::Contextual) {
            heatmaps.push(map(format!("{} layer {}", info.name, info.layers - 1), e, info.layers - 1));
        }
        let static_ = first_static.and_then(|s| per_engine[s].layers.first().cloned());
        if let Some(s) = first_static
            && static_.is_some()
            && shown.iter().all(|x| x.vectors[s].is_some())
        {
            heatmaps.push(Heatmap {
                title: "static".into(),
                labels,
                matrix: cosine_matrix(&shown.iter().filter_map(|x| Some(x.vectors[s].as_ref()?[0].as_slice())).collect::<Vec<_>>()),
            });
        }

        let mut pieces: Vec<PieceCount> = self.pieces.iter().map(|(pieces, count)| PieceCount { pieces: pieces.clone(), count: *count }).collect();
        pieces.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.pieces.cmp(&b.pieces)));
        let report = WordReport {
            word: self.word.clone(),
            occurrences: self.occurrences,
            pieces,
            sampled: self.sample.len(),
            senses: self.labels.iter().cloned().zip(self.label_counts.iter().copied()).collect(),
            layers: per_engine[first_contextual].layers.clone(),
            static_,
            heatmaps,
            examples,
        };
        (report, per_engine)
    }
}

/// "1st", "2nd", "3rd", "4th", ...
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
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
