//! Reading static word-vector files: format detection and validating readers.
//!
//! word2vec and GloVe files are parsed here rather than by finalfusion's readers because
//! those trust the file: they allocate whatever the header claims and panic on duplicate
//! words. Here the header is checked against the file size first, and every problem
//! becomes an [`Error::VectorFile`] that names the line.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use finalfusion::norms::NdNorms;
use finalfusion::storage::{NdArray, StorageViewWrap};
use finalfusion::storage::Storage;
use finalfusion::subword::Indexer;
use finalfusion::vocab::{SimpleVocab, SubwordVocab, Vocab, VocabWrap};
use finalfusion::compat::fasttext::ReadFastText;
use finalfusion::embeddings::Embeddings;
use finalfusion::io::MmapEmbeddings;
use ndarray::{Array1, Array2, Axis};

use crate::error::{Error, Result};

/// The finalfusion storage and vocabulary every static model is held in.
pub type StaticEmbeddings = Embeddings<VocabWrap, StorageViewWrap>;

const FASTTEXT_MAGIC: u32 = 793_712_314;
const FINALFUSION_MAGIC: &[u8; 4] = b"FiFu";

/// The static word-vector file formats vecshift reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VectorFormat {
    /// finalfusion (`.fifu`), memory-mapped.
    Finalfusion,
    /// word2vec binary: a "count dims" header line, then words followed by raw little-endian f32s.
    Word2VecBinary,
    /// word2vec text: a "count dims" header line, then one word and its components per line.
    Word2VecText,
    /// GloVe text: one word and its components per line, no header.
    Glove,
    /// fastText `.bin` models; unknown words get vectors from their character n-grams.
    FastText,
    /// vecshift's int8 vectors (`convert --quantize int8`): a safetensors file of one byte per
    /// component and a scale per word.
    Int8,
}

impl VectorFormat {
    /// Every format, in the order they are listed to users.
    pub const ALL: [VectorFormat; 6] = [
        VectorFormat::Finalfusion,
        VectorFormat::Word2VecBinary,
        VectorFormat::Word2VecText,
        VectorFormat::Glove,
        VectorFormat::FastText,
        VectorFormat::Int8,
    ];

    /// The name used on the command line (`--vectors-format`).
    pub fn name(self) -> &'static str {
        match self {
            VectorFormat::Finalfusion => "finalfusion",
            VectorFormat::Word2VecBinary => "word2vec",
            VectorFormat::Word2VecText => "word2vec-text",
            VectorFormat::Glove => "glove",
            VectorFormat::FastText => "fasttext",
            VectorFormat::Int8 => "int8",
        }
    }

    /// Guesses the format of a file from its first bytes.
    pub fn detect(path: &Path) -> Result<VectorFormat> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(file_error(path, "this is a directory, not a word-vector file"));
        }
        let mut head = Vec::with_capacity(64 * 1024);
        (&mut file).take(64 * 1024).read_to_end(&mut head).map_err(|e| Error::io(path, e))?;
        detect_bytes(&head).ok_or_else(|| Error::VectorFile {
            path: path.to_owned(),
            reason: if head.is_empty() {
                "the file is empty".into()
            } else {
                format!(
                    "the format is not recognised (expected one of: {}); name it with --vectors-format",
                    VectorFormat::ALL.map(VectorFormat::name).join(", ")
                )
            },
        })
    }
}

impl std::fmt::Display for VectorFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for VectorFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.to_ascii_lowercase();
        let found = match s.as_str() {
            "fifu" => Some(VectorFormat::Finalfusion),
            "word2vec-binary" | "w2v" | "bin" => Some(VectorFormat::Word2VecBinary),
            "text" | "word2vec-txt" | "textdims" => Some(VectorFormat::Word2VecText),
            "glove-text" | "txt" => Some(VectorFormat::Glove),
            "vecshift-int8" | "safetensors" => Some(VectorFormat::Int8),
            _ => VectorFormat::ALL.into_iter().find(|f| f.name() == s),
        };
        found.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "unknown vector format {s:?}; expected one of: {}",
                VectorFormat::ALL.map(VectorFormat::name).join(", ")
            ))
        })
    }
}

fn detect_bytes(head: &[u8]) -> Option<VectorFormat> {
    if head.starts_with(FINALFUSION_MAGIC) {
        return Some(VectorFormat::Finalfusion);
    }
    if head.len() >= 4 && u32::from_le_bytes(head[..4].try_into().ok()?) == FASTTEXT_MAGIC || is_old_fasttext(head) {
        return Some(VectorFormat::FastText);
    }
    // Any safetensors file: one that is not vecshift's int8 vectors is then refused as such.
    if super::int8::looks_like_safetensors(head) {
        return Some(VectorFormat::Int8);
    }
    // A file of one line (a header and nothing else, say) has no newline.
    let first_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    // Lossy, so that a word that is not UTF-8 on the first line is reported by the reader,
    // with its line number, rather than making the whole format unrecognisable.
    let first = String::from_utf8_lossy(&head[..first_end]);
    let first = first.as_ref();
    if let Some((_, dims)) = parse_header(first) {
        // Text or binary: the rest of the first entry's line parses as `dims` floats only in text.
        let rest = head.get(first_end + 1..).unwrap_or_default();
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut fields = line.split_ascii_whitespace();
        let is_text = fields.next().is_some() && fields.filter(|f| f.parse::<f32>().is_ok()).count() == dims;
        return Some(if is_text { VectorFormat::Word2VecText } else { VectorFormat::Word2VecBinary });
    }
    let mut fields = first.split_ascii_whitespace();
    fields.next()?;
    let mut count = 0;
    for field in fields {
        field.parse::<f32>().ok()?;
        count += 1;
    }
    (count > 0).then_some(VectorFormat::Glove)
}

fn parse_header(line: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_ascii_whitespace();
    let rows = fields.next()?.parse().ok()?;
    let dims = fields.next()?.parse().ok()?;
    fields.next().is_none().then_some((rows, dims))
}

fn read_as(path: &Path, format: VectorFormat) -> Result<StaticEmbeddings> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(file_error(path, "this is a directory, not a word-vector file"));
    }
    let mut reader = BufReader::with_capacity(1 << 20, file);
    match format {
        VectorFormat::Finalfusion => {
            check_finalfusion_layout(path, &mut reader)?;
            reader.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
            let embeddings = match without_panics(path, || Embeddings::mmap_embeddings(&mut reader))? {
                Ok(embeddings) => embeddings,
                // Product-quantized storage (`convert --quantize pq:M`) has no f32 rows to map.
                Err(error) => match read_quantized(path, &mut reader)? {
                    Some(embeddings) => embeddings,
                    None => return Err(file_error(path, format!("not a usable finalfusion file: {error}"))),
                },
            };
            check_loaded(path, &embeddings)?;
            Ok(embeddings)
        }
        VectorFormat::FastText => {
            let layout = check_fasttext_layout(path, &mut reader)?;
            reader.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
            let embeddings = match layout {
                Some(FastTextLayout { old: true, matrix_start }) => {
                    let mut upgraded = upgrade_old_fasttext(path, &mut reader, matrix_start)?;
                    without_panics(path, || Embeddings::read_fasttext(&mut upgraded))?
                }
                _ => without_panics(path, || Embeddings::read_fasttext(&mut reader))?,
            }
            .map_err(|e| file_error(path, format!("not a usable fastText .bin model: {e}")))?;
            let (metadata, vocab, storage, norms) = embeddings.into_parts();
            let embeddings = Embeddings::new(metadata, vocab.into(), StorageViewWrap::NdArray(storage), norms.unwrap_or_else(|| unreachable!("fastText reader always computes norms")));
            check_loaded(path, &embeddings)?;
            Ok(embeddings)
        }
        VectorFormat::Int8 => Err(file_error(path, "an int8 vector file has no finalfusion form to read (open it with StaticEngine::open)")),
        VectorFormat::Word2VecBinary => read_word2vec_binary(path, &mut reader),
        VectorFormat::Word2VecText => read_text(path, &mut reader, true),
        VectorFormat::Glove => read_text(path, &mut reader, false),
    }
}

/// Reads a finalfusion file with product-quantized storage, every row reconstructed and made
/// unit length again (its length goes into the norm, so that a word's vector is what
/// finalfusion reconstructs); `None` when the file has another storage.
fn read_quantized(path: &Path, reader: &mut BufReader<File>) -> Result<Option<StaticEmbeddings>> {
    use finalfusion::storage::StorageWrap;
    reader.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
    let Ok(embeddings) = without_panics(path, || Embeddings::<VocabWrap, StorageWrap>::mmap_embeddings(reader))? else {
        return Ok(None);
    };
    let (metadata, vocab, storage, norms) = embeddings.into_parts();
    if !matches!(storage, StorageWrap::QuantizedArray(_) | StorageWrap::MmapQuantizedArray(_)) {
        return Ok(None);
    }
    let rows: Vec<usize> = (0..storage.shape().0).collect();
    let mut matrix = storage.embeddings(&rows);
    let words = vocab.words_len();
    let mut norms: Array1<f32> = norms.map_or_else(|| Array1::ones(words), |n| n.view().to_owned());
    for (row, mut values) in matrix.axis_iter_mut(Axis(0)).enumerate() {
        let length = values.dot(&values).sqrt();
        if length > 0.0 {
            values /= length;
            if let Some(norm) = norms.get_mut(row) {
                *norm *= length;
            }
        }
    }
    Ok(Some(Embeddings::new(metadata, vocab, StorageViewWrap::NdArray(NdArray::new(matrix)), NdNorms::new(norms))))
}

/// Reads a static word-vector file of the given format.
///
/// When that fails and the file looks like another format (the user named the wrong one),
/// the error says which.
pub fn read(path: &Path, format: VectorFormat) -> Result<StaticEmbeddings> {
    read_as(path, format).map_err(|error| wrong_format(path, format, error))
}

/// Reads an int8 vector file, saying so when the file looks like another format.
pub(super) fn read_int8(path: &Path) -> Result<super::int8::Int8File> {
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(file_error(path, "this is a directory, not a word-vector file"));
    }
    super::int8::Int8File::open(path).map_err(|error| wrong_format(path, VectorFormat::Int8, error))
}

/// `error`, with a hint when the file read as `format` looks like another format.
fn wrong_format(path: &Path, format: VectorFormat, error: Error) -> Error {
    match (error, VectorFormat::detect(path)) {
        (Error::VectorFile { path, reason }, Ok(detected)) if detected != format => Error::VectorFile {
            path,
            reason: format!("{reason} (read as {format}, but the file looks like {detected}: pass --vectors-format {detected} or leave it out)"),
        },
        (error, _) => error,
    }
}

fn file_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::VectorFile { path: path.to_owned(), reason: reason.into() }
}

/// Runs a finalfusion reader, turning a panic inside it into an error about the file.
fn without_panics<T>(path: &Path, read: impl FnOnce() -> T) -> Result<T> {
    crate::panic_guard::catch(read).map_err(|message| file_error(path, format!("the file is malformed ({message})")))
}

/// Walks a binary file's layout, checking each declared count against the bytes left.
struct Layout<'a, R> {
    path: &'a Path,
    reader: &'a mut R,
    pos: u64,
    size: u64,
}

impl<'a, R: BufRead + Seek> Layout<'a, R> {
    fn new(path: &'a Path, reader: &'a mut R) -> Result<Self> {
        let size = reader.seek(SeekFrom::End(0)).map_err(|e| Error::io(path, e))?;
        reader.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
        Ok(Layout { path, reader, pos: 0, size })
    }

    fn left(&self) -> u64 {
        self.size - self.pos
    }

    fn truncated(&self, what: &str) -> Error {
        file_error(self.path, format!("the file ends before {what} that it declares at byte {} (truncated file?)", self.pos))
    }

    /// Fails unless `bytes` more bytes (for `what`; `None` for more than `u64::MAX`) are in
    /// the file.
    fn need(&self, bytes: Option<u64>, what: &str) -> Result<u64> {
        bytes.filter(|&bytes| bytes <= self.left()).ok_or_else(|| self.truncated(what))
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        self.need(Some(N as u64), what)?;
        let mut buf = [0; N];
        self.reader.read_exact(&mut buf).map_err(|e| Error::io(self.path, e))?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        self.bytes(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        self.bytes(what).map(u64::from_le_bytes)
    }

    fn skip(&mut self, bytes: Option<u64>, what: &str) -> Result<()> {
        let bytes = self.need(bytes, what)?;
        let offset = i64::try_from(bytes).map_err(|_| self.truncated(what))?;
        self.reader.seek_relative(offset).map_err(|e| Error::io(self.path, e))?;
        self.pos += bytes;
        Ok(())
    }

    /// Skips `count` strings of a finalfusion vocabulary, each a `u32` length and its bytes,
    /// with `extra` bytes after each.
    fn strings(&mut self, count: u64, extra: u64, what: &str) -> Result<()> {
        // Each entry takes at least 4 + extra bytes: refuse an impossible count at once.
        self.need(count.checked_mul(4 + extra), what)?;
        for _ in 0..count {
            let len = self.u32(what)?;
            self.skip(Some(u64::from(len) + extra), what)?;
        }
        Ok(())
    }

    /// Skips a fastText string: bytes up to a NUL.
    fn c_string(&mut self, what: &str) -> Result<()> {
        let skipped = self.reader.skip_until(0).map_err(|e| Error::io(self.path, e))? as u64;
        self.pos += skipped;
        if skipped == 0 {
            return Err(self.truncated(what));
        }
        Ok(())
    }

    /// Skips the padding finalfusion puts before `f32` data (always 1 to 4 bytes).
    fn padding(&mut self, what: &str) -> Result<()> {
        self.skip(Some(4 - self.pos % 4), what)
    }
}

/// finalfusion chunk identifiers.
mod chunk {
    pub const SIMPLE_VOCAB: u32 = 1;
    pub const ND_ARRAY: u32 = 2;
    pub const BUCKET_SUBWORD_VOCAB: u32 = 3;
    pub const METADATA: u32 = 5;
    pub const ND_NORMS: u32 = 6;
    pub const FASTTEXT_SUBWORD_VOCAB: u32 = 7;
    pub const EXPLICIT_SUBWORD_VOCAB: u32 = 8;
    pub const FLORET_SUBWORD_VOCAB: u32 = 9;
}

/// Checks a finalfusion file's chunks against its size, in the order finalfusion reads them.
///
/// finalfusion allocates whatever counts the file declares, and memory-maps the matrix
/// without checking that the file holds it (reading a truncated one would crash the
/// process). Anything that is not about sizes (magic, version, chunk types) is left to
/// finalfusion to report.
fn check_finalfusion_layout(path: &Path, reader: &mut (impl BufRead + Seek)) -> Result<()> {
    let mut file = Layout::new(path, reader)?;
    if file.left() < 12 || &file.bytes::<4>("the magic")? != FINALFUSION_MAGIC {
        return Ok(());
    }
    file.u32("the version")?;
    let chunks = file.u32("the number of chunks")?;
    file.need(u64::from(chunks).checked_mul(4), "the chunk list")?;
    let first = if chunks > 0 { file.u32("the chunk list")? } else { return Ok(()) };
    file.skip(Some(u64::from(chunks - 1) * 4), "the chunk list")?;
    if first == chunk::METADATA {
        file.u32("the metadata chunk")?;
        let len = file.u64("the metadata chunk")?;
        file.skip(Some(len), "the metadata")?;
    }

    let vocab = file.u32("the vocabulary chunk")?;
    file.u64("the vocabulary chunk")?;
    let (words, buckets) = match vocab {
        chunk::SIMPLE_VOCAB => {
            let words = file.u64("the vocabulary")?;
            file.strings(words, 0, "the vocabulary's words")?;
            (words, None)
        }
        chunk::BUCKET_SUBWORD_VOCAB | chunk::FASTTEXT_SUBWORD_VOCAB => {
            let words = file.u64("the vocabulary")?;
            check_ngram_lengths(path, file.u32("the vocabulary")?, file.u32("the vocabulary")?)?;
            let buckets = file.u32("the vocabulary")?;
            let buckets = if vocab == chunk::FASTTEXT_SUBWORD_VOCAB {
                u64::from(buckets)
            } else if buckets < 64 {
                1 << buckets
            } else {
                return Err(file_error(path, format!("the subword vocabulary declares 2^{buckets} buckets (at most 2^63)")));
            };
            if buckets == 0 || buckets > i32::MAX as u64 && vocab == chunk::FASTTEXT_SUBWORD_VOCAB {
                return Err(file_error(path, format!("the subword vocabulary declares {buckets} buckets (1 to 2^31-1 are usable)")));
            }
            file.strings(words, 0, "the vocabulary's words")?;
            (words, Some(buckets))
        }
        chunk::EXPLICIT_SUBWORD_VOCAB => {
            let words = file.u64("the vocabulary")?;
            let ngrams = file.u64("the vocabulary")?;
            check_ngram_lengths(path, file.u32("the vocabulary")?, file.u32("the vocabulary")?)?;
            file.strings(words, 0, "the vocabulary's words")?;
            file.strings(ngrams, 8, "the vocabulary's n-grams")?;
            (words, None)
        }
        chunk::FLORET_SUBWORD_VOCAB => {
            check_ngram_lengths(path, file.u32("the vocabulary")?, file.u32("the vocabulary")?)?;
            file.skip(Some(16), "the vocabulary")?;
            file.strings(2, 0, "the vocabulary's word markers")?;
            (0, None)
        }
        _ => return Ok(()),
    };

    if file.u32("the embedding matrix chunk")? != chunk::ND_ARRAY {
        return Ok(());
    }
    file.u64("the embedding matrix chunk")?;
    let rows = file.u64("the embedding matrix")?;
    let cols = file.u32("the embedding matrix")?;
    file.u32("the embedding matrix")?;
    file.padding("the embedding matrix")?;
    file.skip(rows.checked_mul(u64::from(cols)).and_then(|n| n.checked_mul(4)), &format!("the {rows} x {cols} embedding matrix"))?;
    if let Some(buckets) = buckets
        && words.checked_add(buckets) != Some(rows)
    {
        return Err(file_error(path, format!("the embedding matrix has {rows} rows but the vocabulary needs {words} words + {buckets} subword buckets")));
    }

    // Norms are optional, and finalfusion ignores a norms chunk it cannot read.
    if file.left() >= 24 && file.u32("the norms chunk")? == chunk::ND_NORMS {
        file.u64("the norms chunk")?;
        let len = file.u64("the norms")?;
        file.u32("the norms")?;
        file.padding("the norms")?;
        file.skip(len.checked_mul(4), &format!("the {len} norms"))?;
    }
    Ok(())
}

/// The longest subword n-grams accepted. fastText's default is 6; a word of `len` characters
/// has about `len * max_n` n-grams of up to `max_n` bytes to hash, so an unbounded `max_n` lets
/// a 3 kB file with one long word take seconds to open (the cost grows with the cube of the
/// word's length).
const MAX_NGRAM_LENGTH: u32 = 64;

/// Subword vocabularies need n-grams of 1 to [`MAX_NGRAM_LENGTH`] characters, `min_n <= max_n`.
fn check_ngram_lengths(path: &Path, min_n: u32, max_n: u32) -> Result<()> {
    if min_n == 0 || min_n > max_n {
        return Err(file_error(path, format!(
            "the subword n-gram lengths {min_n}..={max_n} are unusable (1 <= min <= max is needed; a model without subwords is not supported)"
        )));
    }
    if max_n > MAX_NGRAM_LENGTH {
        return Err(file_error(path, format!(
            "the subword n-grams are up to {max_n} characters long; at most {MAX_NGRAM_LENGTH} are supported (fastText's default is 6)"
        )));
    }
    Ok(())
}

/// Where a fastText model's parts are, as far as reading it needs.
struct FastTextLayout {
    /// The model predates the magic number (see [`is_old_fasttext`]).
    old: bool,
    /// Offset of the input matrix (of the quantization flag before it, in the current format).
    matrix_start: u64,
}

/// Settings offsets and sizes shared by both fastText layouts: twelve `i32` settings and `t`.
const FASTTEXT_SETTINGS: usize = 12 * 4 + 8;
/// The dictionary's three `i32` counts and its `i64` token count.
const FASTTEXT_DICT_COUNTS: usize = 3 * 4 + 8;

/// Whether `head` starts like a fastText model written before fastText added its magic number
/// and version (releases before 2017, e.g. the first wiki.*.bin models): the settings come
/// first. gensim reads these; so does vecshift, by checking that every setting is plausible.
fn is_old_fasttext(head: &[u8]) -> bool {
    let Some(settings) = head.get(..FASTTEXT_SETTINGS) else { return false };
    let int = |k: usize| i32::from_le_bytes(settings[4 * k..4 * k + 4].try_into().expect("4 bytes"));
    let t = f64::from_le_bytes(settings[48..56].try_into().expect("8 bytes"));
    let [dim, ws, epoch, min_count, neg, word_ngrams, loss, model, bucket, min_n, max_n, lr_update_rate] = std::array::from_fn(int);
    (1..=100_000).contains(&dim)
        && (1..=1_000).contains(&ws)
        && (1..=100_000).contains(&epoch)
        && min_count >= 0
        && neg >= 0
        && (1..=10).contains(&word_ngrams)
        && (1..=4).contains(&loss) // hs, ns, softmax, one-vs-all
        && (1..=3).contains(&model) // cbow, skipgram, supervised
        && bucket >= 0
        && (0..=100).contains(&min_n)
        && (0..=100).contains(&max_n)
        && lr_update_rate > 0
        && (0.0..1.0).contains(&t)
}

/// A reader that presents a pre-magic fastText model in the current layout, which is what
/// finalfusion reads: the magic and version go in front, an empty prune index (`-1`) after the
/// dictionary counts and a "not quantized" flag before the matrix. Only the header and
/// dictionary are held in memory; the matrix is read from the file.
fn upgrade_old_fasttext<'r, R: BufRead>(path: &Path, reader: &'r mut R, matrix_start: u64) -> Result<std::io::Chain<std::io::Cursor<Vec<u8>>, &'r mut R>> {
    let len = usize::try_from(matrix_start).map_err(|_| file_error(path, "the vocabulary is too large to read"))?;
    let mut old = vec![0; len];
    reader.read_exact(&mut old).map_err(|e| Error::io(path, e))?;
    let (counts_end, entries) = old.split_at(FASTTEXT_SETTINGS + FASTTEXT_DICT_COUNTS);
    let mut upgraded = Vec::with_capacity(len + 17);
    upgraded.extend_from_slice(&FASTTEXT_MAGIC.to_le_bytes());
    upgraded.extend_from_slice(&FASTTEXT_CURRENT_VERSION.to_le_bytes());
    upgraded.extend_from_slice(counts_end);
    upgraded.extend_from_slice(&(-1i64).to_le_bytes());
    upgraded.extend_from_slice(entries);
    upgraded.push(0);
    Ok(std::io::Cursor::new(upgraded).chain(reader))
}

/// The fastText format version finalfusion reads.
const FASTTEXT_CURRENT_VERSION: u32 = 12;

/// Checks a fastText `.bin` model's declared sizes against the file before finalfusion reads
/// it: finalfusion allocates the vocabulary and matrix the header declares. `None` when the
/// file is no fastText model at all (finalfusion's reader then says what it expected).
fn check_fasttext_layout(path: &Path, reader: &mut (impl BufRead + Seek)) -> Result<Option<FastTextLayout>> {
    let mut head = [0u8; FASTTEXT_SETTINGS];
    let read = reader.read(&mut head).map_err(|e| Error::io(path, e))?;
    let old = read == head.len() && u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) != FASTTEXT_MAGIC && is_old_fasttext(&head);
    let mut file = Layout::new(path, reader)?;
    if !old {
        if file.left() < 8 || file.u32("the magic")? != FASTTEXT_MAGIC {
            return Ok(None);
        }
        file.u32("the version")?;
    }
    let dims = file.u32("the model settings")?;
    file.skip(Some(28), "the model settings")?;
    let buckets = file.u32("the model settings")?;
    let (min_n, max_n) = (file.u32("the model settings")?, file.u32("the model settings")?);
    file.skip(Some(12), "the model settings")?;
    let words = file.u32("the vocabulary")?;
    file.skip(Some(4), "the vocabulary")?;
    if file.u32("the vocabulary")? != 0 {
        return Ok(None); // a supervised model, which finalfusion refuses
    }
    // The token count, and in the current layout the prune index size.
    file.skip(Some(if old { 8 } else { 16 }), "the vocabulary")?;
    // Each entry: the word, a NUL, its count (u64) and its type (u8).
    file.need(u64::from(words).checked_mul(10), &format!("the {words} vocabulary entries"))?;
    for _ in 0..words {
        file.c_string("a vocabulary entry")?;
        file.skip(Some(9), "a vocabulary entry")?;
    }
    let matrix_start = file.pos;
    if !old {
        file.skip(Some(1), "the quantization flag")?;
    }
    let rows = file.u64("the embedding matrix")?;
    let cols = file.u64("the embedding matrix")?;
    file.need(rows.checked_mul(cols).and_then(|n| n.checked_mul(4)), &format!("the {rows} x {cols} embedding matrix"))?;
    if dims == 0 || cols != u64::from(dims) {
        return Err(file_error(path, format!("the model declares {dims} dimensions but its matrix has {cols} columns")));
    }
    check_ngram_lengths(path, min_n, max_n)?;
    if buckets == 0 || buckets > i32::MAX as u32 {
        return Err(file_error(path, format!("the model declares {buckets} subword buckets (1 to 2^31-1 are usable)")));
    }
    if u64::from(words) + u64::from(buckets) != rows {
        return Err(file_error(path, format!("the embedding matrix has {rows} rows but the model needs {words} words + {buckets} subword buckets")));
    }
    Ok(Some(FastTextLayout { old, matrix_start }))
}

/// Checks what finalfusion read for what lookups rely on: words, a matrix row for each word
/// and subword bucket, a norm for each word.
fn check_loaded(path: &Path, embeddings: &StaticEmbeddings) -> Result<()> {
    fn subwords<I: Indexer>(vocab: &SubwordVocab<I>) -> (u64, u32, u32) {
        (vocab.indexer().upper_bound(), vocab.min_n(), vocab.max_n())
    }
    let vocab = embeddings.vocab();
    let words = vocab.words_len();
    let (buckets, ngrams) = match vocab {
        VocabWrap::SimpleVocab(_) => (0, None),
        VocabWrap::ExplicitSubwordVocab(v) => (subwords(v).0, Some((subwords(v).1, subwords(v).2))),
        VocabWrap::FastTextSubwordVocab(v) => (subwords(v).0, Some((subwords(v).1, subwords(v).2))),
        VocabWrap::FloretSubwordVocab(v) => (subwords(v).0, Some((subwords(v).1, subwords(v).2))),
        VocabWrap::BucketSubwordVocab(v) => (subwords(v).0, Some((subwords(v).1, subwords(v).2))),
    };
    if let Some((min_n, max_n)) = ngrams {
        check_ngram_lengths(path, min_n, max_n)?;
    }
    let (rows, dims) = embeddings.storage().shape();
    if words == 0 {
        return Err(file_error(path, "the file holds no word vectors"));
    }
    if dims == 0 {
        return Err(file_error(path, "the vectors have 0 dimensions"));
    }
    if (words as u64).checked_add(buckets) != Some(rows as u64) {
        return Err(file_error(path, format!("the embedding matrix has {rows} rows but the vocabulary needs {words} words + {buckets} subwords")));
    }
    if let Some(norms) = embeddings.norms()
        && norms.len() != words
    {
        return Err(file_error(path, format!("the file has {} norms for {words} words", norms.len())));
    }
    Ok(())
}

/// Words and vectors as they are read, before they become finalfusion embeddings.
struct Collected {
    path: PathBuf,
    words: Vec<String>,
    seen: HashSet<String>,
    data: Vec<f32>,
    dims: usize,
}

impl Collected {
    fn new(path: &Path, rows: usize, dims: usize) -> Self {
        Collected {
            path: path.to_owned(),
            words: Vec::with_capacity(rows),
            seen: HashSet::with_capacity(rows),
            data: Vec::with_capacity(rows * dims),
            dims,
        }
    }

    fn push(&mut self, word: String, vector: &[f32], line: usize) -> Result<()> {
        if let Some(bad) = vector.iter().position(|v| !v.is_finite()) {
            return Err(file_error(
                &self.path,
                format!("entry {line} ({word:?}) has a non-finite component {} at position {bad}", vector[bad]),
            ));
        }
        if !self.seen.insert(word.clone()) {
            return Err(file_error(&self.path, format!("the word {word:?} appears twice (again at entry {line}); each word may have one vector")));
        }
        self.words.push(word);
        self.data.extend_from_slice(vector);
        Ok(())
    }

    fn finish(self) -> Result<StaticEmbeddings> {
        if self.words.is_empty() {
            return Err(file_error(&self.path, "the file holds no word vectors"));
        }
        let mut matrix = Array2::from_shape_vec((self.words.len(), self.dims), self.data)
            .map_err(|e| file_error(&self.path, e.to_string()))?;
        let norms: Array1<f32> = matrix.axis_iter_mut(Axis(0)).map(|mut row| {
            let norm = row.dot(&row).sqrt();
            // Zero vectors stay zero: their cosine is undefined and reported as such later.
            if norm > 0.0 {
                row /= norm;
            }
            norm
        }).collect();
        Ok(Embeddings::new(
            None,
            VocabWrap::SimpleVocab(SimpleVocab::new(self.words)),
            StorageViewWrap::NdArray(NdArray::new(matrix)),
            NdNorms::new(norms),
        ))
    }
}

fn read_header(path: &Path, reader: &mut impl BufRead, bytes_per_component: u64) -> Result<(usize, usize)> {
    let mut line = Vec::new();
    reader.by_ref().take(1024).read_until(b'\n', &mut line).map_err(|e| Error::io(path, e))?;
    if line.is_empty() {
        return Err(file_error(path, "the file is empty"));
    }
    let text = std::str::from_utf8(&line).unwrap_or_default();
    let (rows, dims) = parse_header(text).ok_or_else(|| {
        let shown: String = String::from_utf8_lossy(&line).trim_end().chars().take(60).collect();
        file_error(path, format!("the first line should be the header \"<count> <dims>\" but begins {shown:?}"))
    })?;
    if rows == 0 || dims == 0 {
        return Err(file_error(path, format!("the header declares {rows} words of {dims} dimensions")));
    }
    let size = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    // Each vector needs at least this many bytes; refuse before allocating for a lying header.
    let needed = (rows as u64).saturating_mul(dims as u64).saturating_mul(bytes_per_component);
    if needed > size {
        return Err(file_error(
            path,
            format!("the header declares {rows} words of {dims} dimensions, which cannot fit in the file's {size} bytes (truncated file or wrong header?)"),
        ));
    }
    Ok((rows, dims))
}

fn read_word2vec_binary(path: &Path, reader: &mut BufReader<File>) -> Result<StaticEmbeddings> {
    let (rows, dims) = read_header(path, reader, 4)?;
    let mut collected = Collected::new(path, rows, dims);
    let mut word = Vec::new();
    let mut vector = vec![0f32; dims];
    let mut raw = vec![0u8; dims * 4];
    for entry in 1..=rows {
        word.clear();
        let truncated = || file_error(path, format!("the file ends inside entry {entry} of the {rows} its header declares (truncated download?)"));
        reader.read_until(b' ', &mut word).map_err(|e| Error::io(path, e))?;
        if word.pop() != Some(b' ') {
            return Err(truncated());
        }
        // word2vec writes a newline after each vector; some writers omit it.
        let text = std::str::from_utf8(word.trim_ascii_start()).map_err(|_| {
            file_error(path, format!("the word of entry {entry} is not valid UTF-8 ({:?})", String::from_utf8_lossy(&word)))
        })?;
        reader.read_exact(&mut raw).map_err(|_| truncated())?;
        for (v, bytes) in vector.iter_mut().zip(raw.chunks_exact(4)) {
            *v = f32::from_le_bytes(bytes.try_into().expect("chunks of 4"));
        }
        collected.push(text.to_owned(), &vector, entry)?;
    }
    collected.finish()
}

fn read_text(path: &Path, reader: &mut BufReader<File>, has_header: bool) -> Result<StaticEmbeddings> {
    let (rows, mut dims) = if has_header { read_header(path, reader, 2)? } else { (0, 0) };
    let first_line = usize::from(has_header) + 1;
    if !has_header {
        // Size the buffers from the file: GloVe has no header to say how many rows there are.
        reader.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
    }
    let mut collected: Option<Collected> = None;
    let mut line = Vec::new();
    let mut vector = Vec::new();
    for number in first_line.. {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(|e| Error::io(path, e))? == 0 {
            break;
        }
        let text = std::str::from_utf8(&line).map_err(|_| {
            file_error(path, format!("line {number} is not valid UTF-8 ({:?})", String::from_utf8_lossy(&line).chars().take(40).collect::<String>()))
        })?;
        let mut fields = text.split_ascii_whitespace();
        let Some(word) = fields.next() else { continue };
        vector.clear();
        for field in fields {
            let value = field.parse::<f32>().map_err(|_| {
                file_error(path, format!("line {number}: {field:?} is not a number (is this really a {} file?)", if has_header { "word2vec text" } else { "GloVe text" }))
            })?;
            vector.push(value);
        }
        if dims == 0 {
            dims = vector.len();
        }
        if vector.len() != dims || dims == 0 {
            let cut = if line.ends_with(b"\n") { "" } else { " (it is the last line and has no newline: truncated file?)" };
            return Err(file_error(path, format!("line {number} has {} components where {dims} were expected{cut}", vector.len())));
        }
        collected.get_or_insert_with(|| Collected::new(path, rows, dims)).push(word.to_owned(), &vector, number)?;
    }
    let collected = collected.ok_or_else(|| file_error(path, "the file holds no word vectors"))?;
    if has_header && collected.words.len() != rows {
        return Err(file_error(path, format!("the header declares {rows} words but the file holds {}", collected.words.len())));
    }
    collected.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_from_bytes() {
        assert_eq!(detect_bytes(b"FiFu\x01\x00"), Some(VectorFormat::Finalfusion));
        assert_eq!(detect_bytes(&FASTTEXT_MAGIC.to_le_bytes()), Some(VectorFormat::FastText));
        assert_eq!(detect_bytes(b"2 3\nthe 0.1 0.2 0.3\n"), Some(VectorFormat::Word2VecText));
        assert_eq!(detect_bytes(b"2 3\nthe \x00\x00\x80\x3f\x00\x00\x00\x00\x00\x00\x00\x40"), Some(VectorFormat::Word2VecBinary));
        assert_eq!(detect_bytes(b"the 0.1 -0.2 3e-5\n"), Some(VectorFormat::Glove));
        assert_eq!(detect_bytes(b"Call me Ishmael. Some years ago\n"), None);
        assert_eq!(detect_bytes(b"\x40\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\""), Some(VectorFormat::Int8));
        assert_eq!(detect_bytes(b"\x40\x00\x00\x00\x00\x00\x00\x00[1, 2]"), None);
    }

    #[test]
    fn format_names_round_trip() {
        for format in VectorFormat::ALL {
            assert_eq!(format.name().parse::<VectorFormat>().unwrap(), format);
        }
        assert!("parquet".parse::<VectorFormat>().is_err());
    }
}
