//! Opening a finalfusion file without building its vocabulary: a memory-mapped file and a
//! prebuilt index beside it.
//!
//! finalfusion reads a simple vocabulary into a `HashMap` of every word, which costs more than
//! everything else of opening a file together (most of the 20-30 ms of the embedded 100,000
//! words, and it grows with the vocabulary). The index sidecar (`FILE.fifu.idx`, written by
//! `vecshift convert` and `vecshift index`) holds what that map gives, ready to be memory-mapped:
//! where each word starts in the file (row to word) and the rows in byte order of their words
//! (word to row, by binary search). Opening then costs a few page faults and two checksums,
//! whatever the vocabulary's size.
//!
//! The sidecar's layout (little-endian):
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `VSVOCIDX` |
//! | 4 | version (1) |
//! | 4 | CRC-32 of everything after this field |
//! | 8 | the finalfusion file's size |
//! | 8 | offset of the vocabulary's first word (its `u32` length) in the file |
//! | 8 | bytes from there to the end of the last word |
//! | 8 | number of words `n` |
//! | 4 | CRC-32 of those vocabulary bytes |
//! | 4 | zero |
//! | 4 `n` | per row, the offset of its word's length from the vocabulary's first word |
//! | 4 `n` | the rows, sorted by their words' bytes |
//!
//! The stamp (file size, vocabulary position and CRC-32) ties the sidecar to the vocabulary it
//! was built from: a sidecar that does not match is ignored and the file is read the usual way.
//! Only files with a simple vocabulary (no subwords), an f32 matrix and norms whose sizes all
//! check out are opened this way; anything else, or any doubt, falls back to finalfusion.

use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use ndarray::{ArrayView1, ArrayView2};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"VSVOCIDX";
const VERSION: u32 = 1;
/// Bytes before the two tables.
const HEADER: usize = 56;

/// finalfusion chunk identifiers and the f32 type id.
const SIMPLE_VOCAB: u32 = 1;
const ND_ARRAY: u32 = 2;
const METADATA: u32 = 5;
const ND_NORMS: u32 = 6;
const F32_TYPE: u32 = 10;

/// The sidecar index of a finalfusion file: the file's name with `.idx` appended.
pub fn index_path(fifu: &Path) -> PathBuf {
    let mut name = fifu.as_os_str().to_owned();
    name.push(".idx");
    PathBuf::from(name)
}

/// Where the parts of a finalfusion file with a simple vocabulary lie, all checked to be
/// inside the file.
struct Layout {
    /// From the first word's length to the end of the last word.
    vocab: Range<usize>,
    words: usize,
    /// The f32 rows (4-byte aligned in the file, as finalfusion pads them).
    matrix: Range<usize>,
    dims: usize,
    /// The norms' f32s, when the file has a norms chunk of one per word.
    norms: Option<Range<usize>>,
}

/// A little-endian cursor over a byte slice that answers `None` past its end.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn usize(&mut self) -> Option<usize> {
        self.u64().and_then(|v| usize::try_from(v).ok())
    }

    /// Skips finalfusion's padding before f32 data (1 to 4 bytes, from the file's start).
    fn pad(&mut self) -> Option<()> {
        self.take(4 - self.pos % 4).map(|_| ())
    }

    /// `count` f32s, as a byte range.
    fn f32s(&mut self, count: usize) -> Option<Range<usize>> {
        let start = self.pos;
        self.take(count.checked_mul(4)?)?;
        Some(start..self.pos)
    }
}

impl Layout {
    /// Parses the chunks of `file`; `None` for anything but (metadata,) a simple vocabulary, an
    /// f32 matrix of one row per word and, optionally, norms of one per word. The vocabulary's
    /// words are skipped by the chunk's declared length, so this costs the same for any size.
    fn parse(file: &[u8]) -> Option<Layout> {
        let mut at = Cursor { bytes: file, pos: 0 };
        if at.take(4)? != b"FiFu" || at.u32()? != 0 {
            return None;
        }
        let chunks = at.u32()? as usize;
        let ids: Vec<u32> = (0..chunks).map(|_| at.u32()).collect::<Option<_>>()?;
        let ids = match ids.as_slice() {
            [METADATA, rest @ ..] => {
                (at.u32()? == METADATA).then_some(())?;
                let len = at.usize()?;
                at.take(len)?;
                rest
            }
            ids => ids,
        };
        if !matches!(ids, [SIMPLE_VOCAB, ND_ARRAY] | [SIMPLE_VOCAB, ND_ARRAY, ND_NORMS]) {
            return None;
        }
        (at.u32()? == SIMPLE_VOCAB).then_some(())?;
        let chunk_len = at.usize()?;
        let chunk_end = at.pos.checked_add(chunk_len)?;
        let words = at.usize()?;
        let vocab = at.pos..chunk_end;
        at.take(chunk_end.checked_sub(at.pos)?)?;

        (at.u32()? == ND_ARRAY).then_some(())?;
        at.u64()?;
        let rows = at.usize()?;
        let dims = at.u32()? as usize;
        (at.u32()? == F32_TYPE && rows == words && words > 0 && dims > 0).then_some(())?;
        at.pad()?;
        let matrix = at.f32s(rows.checked_mul(dims)?)?;

        // finalfusion reads a norms chunk after the matrix whether the header lists it or not.
        // Anything doubtful about one (finalfusion may ignore it or refuse the file) is left
        // to finalfusion's reader.
        let mut rest = Cursor { bytes: file, pos: at.pos };
        let norms = if rest.u32() == Some(ND_NORMS) {
            rest.u64()?;
            (rest.usize()? == words && rest.u32()? == F32_TYPE).then_some(())?;
            rest.pad()?;
            Some(rest.f32s(words)?)
        } else {
            None
        };
        Some(Layout { vocab, words, matrix, dims, norms })
    }

    /// The offset (from the vocabulary's start) of every word, checked to lie inside the
    /// vocabulary and to be UTF-8, as finalfusion's reader requires; `None` otherwise.
    fn word_offsets(&self, file: &[u8]) -> Option<Vec<u32>> {
        let vocab = file.get(self.vocab.clone())?;
        u32::try_from(vocab.len()).ok()?;
        let mut at = Cursor { bytes: vocab, pos: 0 };
        let mut offsets = Vec::with_capacity(self.words);
        for _ in 0..self.words {
            offsets.push(at.pos as u32);
            let len = at.u32()? as usize;
            std::str::from_utf8(at.take(len)?).ok()?;
        }
        (at.pos == vocab.len()).then_some(offsets)
    }
}

/// The word that starts at `offset` in `vocab` (its `u32` length, then its bytes).
fn word_at(vocab: &[u8], offset: usize) -> &[u8] {
    let mut at = Cursor { bytes: vocab, pos: offset };
    at.u32().and_then(|len| at.take(len as usize)).unwrap_or_default()
}

fn u32_at(bytes: &[u8], index: usize) -> usize {
    bytes.get(4 * index..4 * index + 4).map_or(usize::MAX, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
}

fn map(file: &File) -> Option<Mmap> {
    // SAFETY: the maps are only read. Changing a file while it is mapped is undefined
    // behaviour; finalfusion's own memory-mapped storage makes the same assumption.
    unsafe { Mmap::map(file) }.ok()
}

/// A finalfusion file opened through its index: the file and the index memory-mapped.
pub(crate) struct MappedFile {
    file: Mmap,
    index: Mmap,
    vocab: Range<usize>,
    words: usize,
    matrix: Range<usize>,
    dims: usize,
    norms: Option<Range<usize>>,
}

impl MappedFile {
    /// Opens `path` through its index sidecar; `None` when there is none, or it does not
    /// match the file, or the file is not one the index serves (see the module's notes).
    pub(crate) fn open(path: &Path) -> Option<MappedFile> {
        // Little-endian f32s are viewed in place; elsewhere finalfusion converts them.
        if cfg!(target_endian = "big") {
            return None;
        }
        let index = map(&File::open(index_path(path)).ok()?)?;
        let file = map(&File::open(path).ok()?)?;
        let layout = Layout::parse(&file)?;
        let mut head = Cursor { bytes: &index, pos: 0 };
        let stamp_ok = head.take(8)? == MAGIC
            && head.u32()? == VERSION
            && head.u32()? == crc32fast::hash(index.get(16..)?)
            && head.usize()? == file.len()
            && head.usize()? == layout.vocab.start
            && head.usize()? == layout.vocab.len()
            && head.usize()? == layout.words
            && head.u32()? == crc32fast::hash(file.get(layout.vocab.clone())?)
            && index.len() == HEADER.checked_add(layout.words.checked_mul(8)?)?;
        // The f32 views need 4-byte alignment, which finalfusion's padding gives in the file.
        let aligned = (file.as_ptr() as usize).is_multiple_of(4);
        (stamp_ok && aligned).then_some(MappedFile {
            file,
            index,
            vocab: layout.vocab,
            words: layout.words,
            matrix: layout.matrix,
            dims: layout.dims,
            norms: layout.norms,
        })
    }

    /// Number of words (and rows).
    pub(crate) fn words_len(&self) -> usize {
        self.words
    }

    /// The rows, one per word.
    pub(crate) fn matrix(&self) -> ArrayView2<'_, f32> {
        let values: &[f32] = bytemuck::cast_slice(&self.file[self.matrix.clone()]);
        ArrayView2::from_shape((self.words, self.dims), values).expect("the layout checked the matrix size")
    }

    /// The norms of the rows, when the file has them.
    pub(crate) fn norms(&self) -> Option<ArrayView1<'_, f32>> {
        self.norms.clone().map(|range| ArrayView1::from(bytemuck::cast_slice::<u8, f32>(&self.file[range])))
    }

    fn vocab(&self) -> &[u8] {
        &self.file[self.vocab.clone()]
    }

    /// The word of `row` (`row < words_len()`).
    pub(crate) fn word(&self, row: usize) -> &str {
        let offset = u32_at(&self.index[HEADER..], row);
        // The vocabulary was checked to be UTF-8 when the index was built, and its CRC-32 at open.
        std::str::from_utf8(word_at(self.vocab(), offset)).unwrap_or_default()
    }

    /// The row of `word`, by binary search over the rows in byte order of their words.
    pub(crate) fn find(&self, word: &str) -> Option<usize> {
        let sorted = &self.index[HEADER + 4 * self.words..];
        let (mut low, mut high) = (0, self.words);
        while low < high {
            let mid = low + (high - low) / 2;
            let row = u32_at(sorted, mid);
            match self.word(row.min(self.words - 1)).as_bytes().cmp(word.as_bytes()) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                // A found row is checked, so a damaged index can only miss a word.
                std::cmp::Ordering::Equal => return (row < self.words).then_some(row),
            }
        }
        None
    }
}

/// Writes the index sidecar of the finalfusion file `fifu` to `out`.
///
/// Fails when the file is not a finalfusion file with a simple vocabulary (no subwords), an
/// f32 matrix and matching norms, or when a word appears twice.
pub fn write_index(fifu: &Path, out: &Path) -> Result<()> {
    let unusable = |why: &str| Error::VectorFile { path: fifu.to_owned(), reason: format!("cannot index it: {why}") };
    let file = map(&File::open(fifu).map_err(|e| Error::io(fifu, e))?).ok_or_else(|| unusable("it cannot be memory-mapped"))?;
    let layout = Layout::parse(&file).ok_or_else(|| {
        unusable("only finalfusion files with a simple vocabulary (no subwords), an f32 matrix of one row per word and norms are indexed")
    })?;
    let offsets = layout.word_offsets(&file).ok_or_else(|| unusable("its vocabulary is malformed"))?;
    let vocab = &file[layout.vocab.clone()];
    let mut sorted: Vec<u32> = (0..layout.words as u32).collect();
    sorted.sort_unstable_by(|&a, &b| word_at(vocab, offsets[a as usize] as usize).cmp(word_at(vocab, offsets[b as usize] as usize)));
    if let Some(pair) = sorted.windows(2).find(|p| word_at(vocab, offsets[p[0] as usize] as usize) == word_at(vocab, offsets[p[1] as usize] as usize)) {
        let word = String::from_utf8_lossy(word_at(vocab, offsets[pair[0] as usize] as usize));
        return Err(unusable(&format!("the word {word:?} appears twice")));
    }
    let mut body = Vec::with_capacity(HEADER - 16 + 8 * layout.words);
    for value in [file.len(), layout.vocab.start, layout.vocab.len(), layout.words] {
        body.extend_from_slice(&(value as u64).to_le_bytes());
    }
    body.extend_from_slice(&crc32fast::hash(vocab).to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    for value in offsets.iter().chain(&sorted) {
        body.extend_from_slice(&value.to_le_bytes());
    }
    let mut bytes = Vec::with_capacity(16 + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    let mut output = File::create(out).map_err(|e| Error::io(out, e))?;
    output.write_all(&bytes).and_then(|()| output.sync_all()).map_err(|e| Error::io(out, e))
}
