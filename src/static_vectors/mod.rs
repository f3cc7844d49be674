//! The static engine: one vector per word, from word2vec, GloVe, fastText or finalfusion files.

mod batch;
mod formats;
mod search;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use finalfusion::storage::{Storage, StorageView};
use finalfusion::vocab::{Vocab, WordIndex};
use finalfusion::io::WriteEmbeddings;
use serde::Serialize;

pub use formats::{StaticEmbeddings, VectorFormat};
pub use search::Neighbor;

use crate::engine::{Embedder, EngineKind, LayerVectors};
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
    embeddings: StaticEmbeddings,
}

impl StaticEngine {
    /// Opens a vector file, detecting its format from its first bytes when `format` is `None`.
    pub fn open(path: impl AsRef<Path>, format: Option<VectorFormat>) -> Result<Self> {
        let path = path.as_ref();
        let format = match format {
            Some(format) => format,
            None => VectorFormat::detect(path)?,
        };
        let embeddings = formats::read(path, format)?;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Ok(StaticEngine { name, path: path.to_owned(), format, embeddings })
    }

    /// Opens the embedded default (GloVe 6B 50d, 100,000 most frequent words, finalfusion).
    pub fn open_default() -> Result<Self> {
        Self::open(crate::source::default_vectors_path(), Some(VectorFormat::Finalfusion))
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
        self.embeddings.vocab().words_len()
    }

    /// The vocabulary, in file order (usually most frequent first).
    pub fn words(&self) -> &[String] {
        self.embeddings.vocab().words()
    }

    /// Whether unknown words can get vectors from subwords.
    pub fn has_subwords(&self) -> bool {
        self.embeddings.vocab().vocab_len() > self.embeddings.vocab().words_len()
    }

    /// The underlying finalfusion embeddings (unit-length rows, with the original norms).
    pub fn embeddings(&self) -> &StaticEmbeddings {
        &self.embeddings
    }

    /// Looks a word up: the exact form, else its lowercase form, else its subwords.
    pub fn lookup(&self, word: &str) -> Result<StaticVector> {
        let (entry, index, source) = self.resolve(word)?;
        let vector = match index {
            WordIndex::Word(idx) => {
                let norm = self.embeddings.norms().map_or(1.0, |n| n[idx]);
                self.embeddings.storage().embedding(idx).iter().map(|v| v * norm).collect()
            }
            // fastText (and gensim) define an unknown word's vector as the mean of its n-gram vectors.
            WordIndex::Subword(indices) => {
                let rows = self.embeddings.storage().embeddings(&indices);
                (rows.sum_axis(ndarray::Axis(0)) / indices.len() as f32).to_vec()
            }
        };
        Ok(StaticVector { word: entry, source, vector })
    }

    /// Finds the vocabulary entry for `word` and how it was found.
    fn resolve(&self, word: &str) -> Result<(String, WordIndex, LookupSource)> {
        let vocab = self.embeddings.vocab();
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
    pub fn nearest(&self, query: &[f32], k: usize, exclude: &[&str]) -> Vec<Neighbor> {
        let vocab = self.embeddings.vocab();
        let mut excluded: Vec<usize> = exclude.iter().filter_map(|w| match vocab.idx(w) {
            Some(WordIndex::Word(idx)) => Some(idx),
            _ => None,
        }).collect();
        // A zero vector has no cosine with anything: it is no one's neighbour.
        if let Some(norms) = self.embeddings.norms() {
            excluded.extend(norms.iter().enumerate().filter(|&(_, &norm)| norm == 0.0).map(|(idx, _)| idx));
        }
        let matrix = self.embeddings.storage().view();
        let matrix = matrix.slice(ndarray::s![..vocab.words_len(), ..]);
        search::top_k(matrix, query, k, &excluded)
            .into_iter()
            .map(|(idx, cosine)| Neighbor { word: vocab.words()[idx].clone(), cosine })
            .collect()
    }

    /// Writes the vectors as a finalfusion file, the format that opens fastest (memory-mapped).
    pub fn write_finalfusion(&self, path: &Path) -> Result<()> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut writer = BufWriter::new(file);
        self.embeddings
            .write_embeddings(&mut writer)
            .map_err(|e| Error::VectorFile { path: path.to_owned(), reason: format!("cannot write finalfusion: {e}") })?;
        writer.into_inner().map_err(|e| Error::io(path, e.into_error()))?.sync_all().map_err(|e| Error::io(path, e))
    }
}

impl Embedder for StaticEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn dims(&self) -> usize {
        self.embeddings.dims()
    }

    fn num_layers(&self) -> usize {
        1
    }

    fn kind(&self) -> EngineKind {
        EngineKind::Static
    }

    /// Every occurrence of a word gets the same vector: the context is ignored by design.
    fn embed_batch(&self, occurrences: &[Occurrence]) -> Result<Vec<LayerVectors>> {
        occurrences
            .iter()
            .map(|occ| Ok(LayerVectors::new(vec![self.lookup(occ.word())?.vector])))
            .collect()
    }
}
