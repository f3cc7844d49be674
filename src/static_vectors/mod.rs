//! The static engine: one vector per word, from word2vec, GloVe, fastText or finalfusion files.

mod formats;
mod index;
mod int8;
mod pq;
mod quantized;
mod search;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use finalfusion::storage::StorageView;
use finalfusion::vocab::{Vocab, WordIndex};
use finalfusion::io::WriteEmbeddings;
use serde::Serialize;

pub use formats::{StaticEmbeddings, VectorFormat};
pub use index::{index_path, write_index};
pub use int8::{INT8_FORMAT, quantize_int8};
pub use search::Neighbor;

use crate::engine::{Embedder, Embedding, EngineKind, LayerVectors, Pooling, SentenceEmbedder, SentenceVectors, Vocabulary};
use crate::error::{Error, Result};
use crate::occurrence::{Occurrence, is_invisible};

/// How a word's static vector was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LookupSource {
    /// The word as written is in the vocabulary.
    Exact,
    /// Only the lowercased word is in the vocabulary.
    Lowercased,
    /// The word is unknown; its vector was composed from subword (character n-gram) vectors.
    Subwords,
}

/// A word's static vector, as stored in the file (not normalised).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StaticVector {
    /// The vocabulary entry that was used (the lowercased form after a fallback).
    pub word: String,
    /// How the vector was found.
    pub source: LookupSource,
    /// The vector's components.
    pub vector: Vec<f32>,
}

/// Static word vectors behind the [`Embedder`] trait, with neighbour and analogy queries.
///
/// ```no_run
/// use vecshift::StaticEngine;
/// let glove = StaticEngine::open_default()?;
/// for n in glove.neighbors("bank", 3)? {
///     println!("{} {:.3}", n.word, n.cosine);
/// }
/// # Ok::<(), vecshift::Error>(())
/// ```
pub struct StaticEngine {
    name: String,
    path: PathBuf,
    format: VectorFormat,
    vectors: Vectors,
    /// The int8 copy of the word rows that neighbour searches scan, made by the second search.
    quantized: OnceLock<quantized::QuantizedRows>,
    /// Whether a search has run: the first scans the f32 rows (an int8 file's stored codes), as
    /// building the int8 copy costs more than one scan and a single query does not win it back.
    searched: AtomicBool,
}

/// Where the words and rows are.
enum Vectors {
    /// Read by finalfusion (every format): the vocabulary is a hash map built at open.
    Read(StaticEmbeddings),
    /// A finalfusion file memory-mapped with its index sidecar: nothing is built at open.
    Mapped {
        file: index::MappedFile,
        /// The words as strings, made when [`StaticEngine::words`] is first asked.
        words: OnceLock<Vec<String>>,
        /// The finalfusion form, made when [`StaticEngine::embeddings`] is first asked.
        embeddings: OnceLock<StaticEmbeddings>,
    },
    /// An int8 file (`convert --quantize int8`): codes and scales, no f32 matrix until asked.
    Int8 {
        file: Box<int8::Int8File>,
        /// The finalfusion form, made when [`StaticEngine::embeddings`] is first asked.
        embeddings: OnceLock<StaticEmbeddings>,
    },
}

impl Vectors {
    /// The row of a word, or its subword indices, as finalfusion's `Vocab::idx` answers.
    fn idx(&self, word: &str) -> Option<WordIndex> {
        match self {
            Vectors::Read(e) => e.vocab().idx(word),
            Vectors::Mapped { file, .. } => file.find(word).map(WordIndex::Word),
            Vectors::Int8 { file, .. } => file.find(word).map(WordIndex::Word),
        }
    }

    fn words_len(&self) -> usize {
        match self {
            Vectors::Read(e) => e.vocab().words_len(),
            Vectors::Mapped { file, .. } => file.words_len(),
            Vectors::Int8 { file, .. } => file.len(),
        }
    }

    /// Words plus subword buckets.
    fn vocab_len(&self) -> usize {
        match self {
            Vectors::Read(e) => e.vocab().vocab_len(),
            Vectors::Mapped { file, .. } => file.words_len(),
            Vectors::Int8 { file, .. } => file.len(),
        }
    }

    /// The word of a row.
    fn word(&self, row: usize) -> &str {
        match self {
            Vectors::Read(e) => &e.vocab().words()[row],
            Vectors::Mapped { file, .. } => file.word(row),
            Vectors::Int8 { file, .. } => file.word(row),
        }
    }

    /// Every row: the words', then a subword model's n-gram rows.
    fn matrix(&self) -> ndarray::ArrayView2<'_, f32> {
        match self {
            Vectors::Read(e) => e.storage().view(),
            Vectors::Mapped { file, .. } => file.matrix(),
            Vectors::Int8 { file, .. } => file.unit_rows(),
        }
    }

    fn dims(&self) -> usize {
        match self {
            Vectors::Int8 { file, .. } => file.dims(),
            _ => self.matrix().ncols(),
        }
    }

    /// A word's vector as stored: its (unit) row times its norm.
    fn word_vector(&self, row: usize) -> Vec<f32> {
        match self {
            Vectors::Int8 { file, .. } => file.vector(row),
            _ => {
                let norm = self.norm(row);
                self.matrix().row(row).iter().map(|v| v * norm).collect()
            }
        }
    }

    /// The norm of a word's row, as stored (1 when the file has none).
    fn norm(&self, row: usize) -> f32 {
        match self {
            Vectors::Read(e) => e.norms().map_or(1.0, |n| n[row]),
            Vectors::Mapped { file, .. } => file.norms().map_or(1.0, |n| n[row]),
            Vectors::Int8 { file, .. } => file.norm(row),
        }
    }
}

/// How to open a vector file.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    format: Option<VectorFormat>,
    name: Option<String>,
}

impl OpenOptions {
    /// Reads the file as `format` instead of detecting the format from its first bytes.
    pub fn format(mut self, format: impl Into<Option<VectorFormat>>) -> Self {
        self.format = format.into();
        self
    }

    /// Reports the engine under `name` instead of the file's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl StaticEngine {
    /// Opens a vector file, detecting its format from its first bytes.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// Opens a vector file as `options` say.
    ///
    /// ```no_run
    /// use vecshift::{StaticEngine, VectorFormat, static_vectors::OpenOptions};
    /// let w2v = StaticEngine::open_with("vectors.txt", &OpenOptions::default().format(VectorFormat::Word2VecText))?;
    /// # Ok::<(), vecshift::Error>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Self> {
        let path = path.as_ref();
        let format = match options.format {
            Some(format) => format,
            None => VectorFormat::detect(path)?,
        };
        let mapped = (format == VectorFormat::Finalfusion).then(|| index::MappedFile::open(path)).flatten();
        let vectors = match mapped {
            Some(file) => Vectors::Mapped { file, words: OnceLock::new(), embeddings: OnceLock::new() },
            None if format == VectorFormat::Int8 => Vectors::Int8 { file: Box::new(formats::read_int8(path)?), embeddings: OnceLock::new() },
            None => Vectors::Read(formats::read(path, format)?),
        };
        let name = options.name.clone().unwrap_or_else(|| {
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
        });
        Ok(StaticEngine { name, path: path.to_owned(), format, vectors, quantized: OnceLock::new(), searched: AtomicBool::new(false) })
    }

    /// Opens the embedded default (GloVe 6B 50d, 100,000 most frequent words, finalfusion)
    /// from the source tree's `data/` (see [`crate::source::source_tree_data_dir`]).
    pub fn open_default() -> Result<Self> {
        Self::open_default_from(crate::source::source_tree_data_dir())
    }

    /// Opens the default vectors from a data directory laid out like the source tree's `data/`
    /// (for instance the one `vecshift install-data` fills).
    pub fn open_default_from(data_dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(crate::source::default_vectors_path_in(data_dir.as_ref()), &OpenOptions::default().format(VectorFormat::Finalfusion))
    }

    /// The file the vectors came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's format.
    pub fn format(&self) -> VectorFormat {
        self.format
    }

    /// Number of words with their own vector.
    pub fn vocab_len(&self) -> usize {
        self.vectors.words_len()
    }

    /// The vocabulary, in file order (usually most frequent first).
    ///
    /// A file opened through its index makes these strings on the first call.
    pub fn words(&self) -> &[String] {
        match &self.vectors {
            Vectors::Read(e) => e.vocab().words(),
            Vectors::Mapped { file, words, .. } => words.get_or_init(|| (0..file.words_len()).map(|row| file.word(row).to_owned()).collect()),
            Vectors::Int8 { file, .. } => file.words(),
        }
    }

    /// The word of a row of the matrix ([`words`](Self::words) order).
    ///
    /// # Panics
    /// When `row` is not below [`vocab_len`](Self::vocab_len).
    pub fn word(&self, row: usize) -> &str {
        assert!(row < self.vocab_len(), "row {row} of a vocabulary of {}", self.vocab_len());
        self.vectors.word(row)
    }

    /// Whether the file was opened through its vocabulary index (see [`write_index`]), so
    /// that nothing was built at open.
    pub fn is_indexed(&self) -> bool {
        matches!(self.vectors, Vectors::Mapped { .. })
    }

    /// Whether unknown words can get vectors from subwords.
    pub fn has_subwords(&self) -> bool {
        self.vectors.vocab_len() > self.vectors.words_len()
    }

    /// Every row of the matrix, unit length: the words' ([`words`](Self::words) order), then
    /// a subword model's n-gram rows.
    pub fn matrix(&self) -> ndarray::ArrayView2<'_, f32> {
        self.vectors.matrix()
    }

    /// The underlying finalfusion embeddings (unit-length rows, with the original norms).
    ///
    /// A file opened through its index, or an int8 file, makes them on the first call (a copy of
    /// the matrix and finalfusion's hash map of the words).
    pub fn embeddings(&self) -> &StaticEmbeddings {
        match &self.vectors {
            Vectors::Read(e) => e,
            Vectors::Mapped { embeddings, .. } | Vectors::Int8 { embeddings, .. } => self.simple_embeddings(embeddings),
        }
    }

    /// The finalfusion form of a file read without finalfusion, made in `cell` on the first call.
    fn simple_embeddings<'a>(&'a self, cell: &'a OnceLock<StaticEmbeddings>) -> &'a StaticEmbeddings {
        cell.get_or_init(|| {
            let norms: ndarray::Array1<f32> = (0..self.vocab_len()).map(|row| self.vectors.norm(row)).collect();
            finalfusion::embeddings::Embeddings::new(
                None,
                finalfusion::vocab::VocabWrap::SimpleVocab(finalfusion::vocab::SimpleVocab::new(self.words().to_vec())),
                finalfusion::storage::StorageViewWrap::NdArray(finalfusion::storage::NdArray::new(self.vectors.matrix().to_owned())),
                finalfusion::norms::NdNorms::new(norms),
            )
        })
    }

    /// Looks a word up: the exact form, else its lowercase form, else its subwords.
    pub fn lookup(&self, word: &str) -> Result<StaticVector> {
        let (entry, index, source) = self.resolve(word)?;
        let vector = match index {
            WordIndex::Word(idx) => self.vectors.word_vector(idx),
            // fastText (and gensim) define an unknown word's vector as the mean of its n-gram vectors.
            WordIndex::Subword(indices) => {
                let rows = self.vectors.matrix().select(ndarray::Axis(0), &indices);
                (rows.sum_axis(ndarray::Axis(0)) / indices.len() as f32).to_vec()
            }
        };
        Ok(StaticVector { word: entry, source, vector })
    }

    /// The row of `word` in the matrix ([`words`](Self::words) order), after the same exact then
    /// lowercase fallback as [`lookup`](Self::lookup); `None` when it has no row of its own.
    pub fn word_index(&self, word: &str) -> Option<usize> {
        match self.resolve(word) {
            Ok((_, WordIndex::Word(row), _)) => Some(row),
            _ => None,
        }
    }

    /// Finds the vocabulary entry for `word` and how it was found.
    fn resolve(&self, word: &str) -> Result<(String, WordIndex, LookupSource)> {
        let vocab = &self.vectors;
        if let Some(index @ WordIndex::Word(_)) = vocab.idx(word) {
            return Ok((word.to_owned(), index, LookupSource::Exact));
        }
        let lower = word.to_lowercase();
        if lower != word
            && let Some(index @ WordIndex::Word(_)) = vocab.idx(&lower)
        {
            return Ok((lower, index, LookupSource::Lowercased));
        }
        // The word as a sentence may spell it: decomposed accents ("cafe\u{301}") or zero-width
        // characters inside it; vocabularies hold the composed (NFC), visible form.
        let clean: String = unicode_normalization::UnicodeNormalization::nfc(word.chars().filter(|c| !is_invisible(*c))).collect();
        if clean != word && !clean.is_empty() {
            return self.resolve(&clean).map_err(|_| self.unknown(word));
        }
        match vocab.idx(word) {
            Some(index @ WordIndex::Subword(_)) => Ok((word.to_owned(), index, LookupSource::Subwords)),
            _ => Err(self.unknown(word)),
        }
    }

    fn unknown(&self, word: &str) -> Error {
        Error::UnknownWord { word: word.to_owned(), model: self.name.clone(), has_subwords: self.has_subwords() }
    }

    /// The unit-length vector of a word (after the same fallbacks as [`lookup`](Self::lookup)).
    fn unit_vector(&self, word: &str) -> Result<(String, Vec<f32>)> {
        let found = self.lookup(word)?;
        let norm = found.vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm == 0.0 {
            return Err(Error::InvalidArgument(format!("the vector of {:?} in {} is all zeros, so its cosine with anything is undefined", found.word, self.name)));
        }
        Ok((found.word, found.vector.iter().map(|v| v / norm).collect()))
    }

    /// The `k` words most cosine-similar to `word`, the word itself excluded.
    pub fn neighbors(&self, word: &str, k: usize) -> Result<Vec<Neighbor>> {
        let (entry, query) = self.unit_vector(word)?;
        Ok(self.nearest(&query, k, &[entry.as_str()]))
    }

    /// Analogy by 3CosAdd, as word2vec and gensim compute it: `a` is to `b` as `c` is to ...?
    ///
    /// The answer maximises the cosine to `unit(b) - unit(a) + unit(c)`; the three query
    /// words are excluded from the answers.
    pub fn analogy(&self, a: &str, b: &str, c: &str, k: usize) -> Result<Vec<Neighbor>> {
        let (a, va) = self.unit_vector(a)?;
        let (b, vb) = self.unit_vector(b)?;
        let (c, vc) = self.unit_vector(c)?;
        let query: Vec<f32> = (0..va.len()).map(|i| vb[i] - va[i] + vc[i]).collect();
        Ok(self.nearest(&query, k, &[a.as_str(), b.as_str(), c.as_str()]))
    }

    /// The `k` vocabulary words with the highest cosine to `query`, skipping `exclude`.
    ///
    /// The search is exact (the same words and order as scoring every row in f32), but it
    /// reads an int8 copy of the matrix (a quarter of the f32 size) that the second call
    /// builds; the first scans the f32 rows. An int8 file is searched through its own codes
    /// (exact over its dequantized rows; the first search scans them as stored).
    pub fn nearest(&self, query: &[f32], k: usize, exclude: &[&str]) -> Vec<Neighbor> {
        let vocab = &self.vectors;
        let mut excluded: Vec<usize> = exclude.iter().filter_map(|w| match vocab.idx(w) {
            Some(WordIndex::Word(idx)) => Some(idx),
            _ => None,
        }).collect();
        let Some(unit) = unit_length(query) else { return Vec::new() };
        let first = self.quantized.get().is_none() && !self.searched.swap(true, Ordering::Relaxed);
        let found = if let (true, Vectors::Int8 { file, .. }) = (first, &self.vectors) {
            quantized::top_k_codes(file.raw_codes(), file.scales(), &unit, k, &excluded)
        } else if first && !matches!(self.vectors, Vectors::Int8 { .. }) {
            quantized::top_k_f32(self.word_rows(), &unit, k, &excluded, true)
        } else {
            // A zero vector has no cosine with anything: it is no one's neighbour.
            excluded.extend_from_slice(self.quantized().zero_rows());
            quantized::top_k(self.exact_rows(self.vocab_len()), self.quantized(), &unit, k, &excluded, true)
        };
        found.into_iter().map(|(idx, cosine)| Neighbor { word: vocab.word(idx).to_owned(), cosine }).collect()
    }

    /// The `k` best vocabulary rows for each of many query vectors: `(row index, cosine)`,
    /// best first, like [`nearest`](Self::nearest) but for a whole batch.
    ///
    /// `queries` need not be unit length (a zero query finds nothing). `exclude[i]` lists row
    /// indices that query `i` must not return (the analogy's own words); it may be shorter than
    /// `queries`, missing entries excluding nothing. `restrict` searches only the first
    /// `restrict` rows (the most frequent words, in the usual file order), as gensim's
    /// `restrict_vocab` does. Equal scores keep file order (the more frequent word first).
    /// The rows are read in cache-sized blocks that every query passes over in turn, so a batch
    /// costs far less per query than one [`nearest`](Self::nearest) call each.
    ///
    /// ```no_run
    /// use vecshift::StaticEngine;
    /// let glove = StaticEngine::open_default()?;
    /// let king = glove.lookup("king")?.vector;
    /// let paris = glove.lookup("paris")?.vector;
    /// let found = glove.nearest_batch(&[king, paris], 3, &[], Some(50_000));
    /// for (index, cosine) in &found[0] {
    ///     println!("{} {cosine:.3}", glove.words()[*index]);
    /// }
    /// # Ok::<(), vecshift::Error>(())
    /// ```
    pub fn nearest_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        exclude: &[Vec<usize>],
        restrict: Option<usize>,
    ) -> Vec<Vec<(usize, f32)>> {
        let rows = restrict.map_or(self.vocab_len(), |r| r.min(self.vocab_len()));
        let matrix = self.exact_rows(rows);
        let units: Vec<Option<Vec<f32>>> = queries
            .iter()
            .map(|q| {
                assert_eq!(q.len(), self.dims(), "query length must equal the vectors' dimensionality");
                unit_length(q)
            })
            .collect();
        let exclude: Vec<&[usize]> = (0..queries.len()).map(|i| exclude.get(i).map_or(&[][..], Vec::as_slice)).collect();
        quantized::top_k_batch(matrix, self.quantized(), &units, k, &exclude)
    }

    /// The rows of the words (a subword model's n-gram rows follow them in the storage).
    fn word_rows(&self) -> ndarray::ArrayView2<'_, f32> {
        let rows = self.vectors.words_len();
        self.vectors.matrix().slice_move(ndarray::s![..rows, ..])
    }

    /// What the search computes the exact scores of the first `rows` words from: the f32 rows,
    /// or an int8 file's codes.
    fn exact_rows(&self, rows: usize) -> quantized::Exact<'_> {
        match &self.vectors {
            Vectors::Int8 { .. } => quantized::Exact::Codes(rows),
            _ => quantized::Exact::Rows(self.word_rows().slice_move(ndarray::s![..rows, ..])),
        }
    }

    /// The int8 copy of [`word_rows`](Self::word_rows), built on first use; an int8 file's own
    /// codes.
    fn quantized(&self) -> &quantized::QuantizedRows {
        match &self.vectors {
            Vectors::Int8 { file, .. } => file.codes(),
            _ => self.quantized.get_or_init(|| quantized::QuantizedRows::new(self.word_rows())),
        }
    }

    /// Writes the vectors as a finalfusion file, the format that opens fastest (memory-mapped).
    pub fn write_finalfusion(&self, path: &Path) -> Result<()> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut writer = BufWriter::new(file);
        self.embeddings()
            .write_embeddings(&mut writer)
            .map_err(|e| Error::VectorFile { path: path.to_owned(), reason: format!("cannot write finalfusion: {e}") })?;
        writer.into_inner().map_err(|e| Error::io(path, e.into_error()))?.sync_all().map_err(|e| Error::io(path, e))
    }
}

impl Embedder for StaticEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn architecture(&self) -> &str {
        self.format.name()
    }

    fn dims(&self) -> usize {
        self.vectors.dims()
    }

    fn num_layers(&self) -> usize {
        1
    }

    fn kind(&self) -> EngineKind {
        EngineKind::Static
    }

    /// Every occurrence of a word gets the same vector: the context (and the pooling) is
    /// ignored by design. A word out of the vocabulary is an error in its slot only.
    fn embed_batch(&self, occurrences: &[Occurrence], _pooling: Pooling) -> Result<Vec<Result<Embedding>>> {
        Ok(occurrences.iter().map(|occ| self.lookup(occ.word()).map(StaticVector::into_embedding)).collect())
    }

    fn sentence_embedder(&self) -> Option<&dyn SentenceEmbedder> {
        Some(self)
    }

    fn vocabulary(&self) -> Option<&dyn Vocabulary> {
        Some(self)
    }
}

impl Vocabulary for StaticEngine {
    fn lookup(&self, word: &str) -> Result<StaticVector> {
        StaticEngine::lookup(self, word)
    }

    fn neighbors(&self, word: &str, k: usize) -> Result<Vec<Neighbor>> {
        StaticEngine::neighbors(self, word, k)
    }
}

impl SentenceEmbedder for StaticEngine {
    /// The other words are those of the sentence the engine has a vector for, found as
    /// [`StaticEngine::lookup`] finds them.
    fn embed_in_context(&self, occurrences: &[Occurrence], pooling: Pooling) -> Result<Vec<Result<SentenceVectors>>> {
        let targets = self.embed_batch(occurrences, pooling)?;
        Ok(occurrences
            .iter()
            .zip(targets)
            .map(|(occ, target)| {
                let words = crate::engine::context_words(occ)
                    .into_iter()
                    .filter_map(|span| {
                        let found = self.lookup(&occ.sentence()[span.clone()]).ok()?;
                        Some((span, LayerVectors::new(vec![found.vector])))
                    })
                    .collect();
                Ok(SentenceVectors { target: target?, words })
            })
            .collect())
    }
}

impl StaticVector {
    /// As the one-layer [`Embedding`] the [`Embedder`] trait returns; the piece is the
    /// vocabulary entry used (marked when the vector was composed from subwords).
    pub fn into_embedding(self) -> Embedding {
        let piece = match self.source {
            LookupSource::Subwords => format!("{} (from subwords)", self.word),
            LookupSource::Exact | LookupSource::Lowercased => self.word,
        };
        Embedding::new(LayerVectors::new(vec![self.vector]), vec![piece])
    }
}

/// `query` scaled to unit length, or `None` when its length is zero or not finite.
fn unit_length(query: &[f32]) -> Option<Vec<f32>> {
    let norm = query.iter().map(|v| v * v).sum::<f32>().sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| query.iter().map(|v| v / norm).collect())
}
