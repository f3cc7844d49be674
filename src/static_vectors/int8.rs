//! int8 static vectors (`vecshift convert IN OUT --quantize int8`): every word's vector stored
//! as one byte per component and one scale, in a safetensors file.
//!
//! A row `u` (the word's vector as [`StaticEngine::lookup`] returns it, norm included) is
//! stored symmetric per row: `s = max|u_i| / 127` and `c_i = round(u_i * (127 / max|u_i|))`,
//! rounded half away from zero in f32, so `c_i` lies in `-127..=127` and `|u_i - s c_i| <= s / 2`.
//! This is the scheme of the 8-bit copy the neighbour search scans (`quantized.rs`), and its
//! code makes the rows. An all-zero row has `s = 0` and zero codes.
//!
//! The file is [safetensors](https://github.com/huggingface/safetensors) (numpy, PyTorch and
//! every safetensors reader open it), with three tensors and string metadata:
//!
//! | tensor | dtype | shape | what |
//! |---|---|---|---|
//! | `codes` | I8 | `[words, dims]` | the codes `c`, row `i` for word `i` |
//! | `scales` | F32 | `[words]` | the scales `s`: word `i`'s vector is `scales[i] * codes[i]` |
//! | `words` | U8 | `[bytes]` | the words in row order, UTF-8, joined by `\n` |
//! | `order` | U32 | `[words]` | the rows sorted by their words' UTF-8 bytes |
//!
//! Metadata: `format` = `vecshift-static-int8`, `version` = `2`, `words` and `dims` (decimal).
//! `order` makes a lookup a binary search over the words as they lie in the memory-mapped file,
//! so opening builds no map of the words; version 1 files, which lack it, are read too (the
//! order is then sorted at open).
//! There is no separate norms tensor: the rows are stored with their lengths (finalfusion's
//! unit rows times its norms), so `scales[i] * codes[i]` is what the f32 file's lookup returns,
//! up to quantization, and the norm is that vector's length. In Python:
//!
//! ```python
//! from safetensors.numpy import load_file
//! t = load_file("glove.int8.safetensors")
//! vectors = t["codes"].astype("float32") * t["scales"][:, None]
//! words = bytes(t["words"]).decode("utf-8").split("\n")
//! ```
//!
//! Subword (fastText) models are refused: their unknown words are built from n-gram rows that
//! this format does not hold (`--quantize pq:M` keeps them).
//!
//! Neighbour searches on an int8 file read the codes directly (no f32 matrix is made): the
//! 8-bit search's bounds select rows and their exact cosines are computed from the codes, so the
//! results are the exact top-k over the dequantized rows.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use memmap2::Mmap;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::StaticEngine;
use super::quantized::{self, QuantizedRows};
use crate::error::{Error, Result};

/// The metadata `format` of vecshift's int8 vector files.
pub const INT8_FORMAT: &str = "vecshift-static-int8";
/// The metadata `version` written; `1` (no `order` tensor) is read too.
const VERSION: &str = "2";
/// safetensors' limit on the header's size.
const MAX_HEADER: u64 = 100_000_000;

/// Per-row symmetric int8 quantization of `matrix`: the codes `c` (`[rows, dims]`) and the
/// scales `s` (`[rows]`), each row being `s * c` up to `s / 2` per component (see the module
/// documentation). A row with a non-finite component gets a NaN scale and zero codes.
///
/// ```
/// let m = ndarray::arr2(&[[0.5f32, -1.0, 0.25], [0.0, 0.0, 0.0]]);
/// let (codes, scales) = vecshift::static_vectors::quantize_int8(m.view());
/// assert_eq!(codes.row(0).to_vec(), [64, -127, 32]);
/// assert_eq!(scales[0], 1.0 / 127.0);
/// assert_eq!((codes.row(1).to_vec(), scales[1]), (vec![0, 0, 0], 0.0));
/// ```
pub fn quantize_int8(matrix: ArrayView2<'_, f32>) -> (Array2<i8>, Array1<f32>) {
    let rows = QuantizedRows::new(matrix);
    let codes = (0..matrix.nrows()).flat_map(|row| rows.row_codes(row)).collect();
    let codes = Array2::from_shape_vec(matrix.dim(), codes).expect("one code per component");
    (codes, Array1::from(rows.scales().to_vec()))
}

/// A loaded int8 file: its words, and its codes in the form the neighbour search scans.
pub(crate) struct Int8File {
    /// The file, memory-mapped: the words are read where they lie.
    map: Mmap,
    /// Where the `words` tensor (valid UTF-8) lies in `map`.
    text: Range<usize>,
    /// Where each word starts in the text, then one past the text's end: word `i` is
    /// `starts[i]..starts[i + 1] - 1` (its newline left out).
    starts: Vec<usize>,
    /// The rows in the byte order of their words (the file's `order`, or sorted at open for a
    /// version 1 file): a lookup is a binary search.
    sorted: Vec<u32>,
    /// The words as strings, made when [`Int8File::words`] is first asked.
    words: OnceLock<Vec<String>>,
    /// Where the `codes` tensor lies in `map`.
    codes: Range<usize>,
    /// Components per vector.
    dims: usize,
    /// The codes as the 8-bit search scans them (each row read as the unit vector `c / |c|`:
    /// cosines need no length), made on the first call of [`Int8File::codes`]; the first
    /// search reads the mapped codes instead, as a single query does not win this copy back.
    rows: OnceLock<QuantizedRows>,
    /// The file's scales: word `i`'s vector is `scales[i] * c`.
    scales: Vec<f32>,
    /// The dequantized rows made unit length, for the callers that want an f32 matrix.
    unit: OnceLock<Array2<f32>>,
}

fn file_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::VectorFile { path: path.to_owned(), reason: reason.into() }
}

/// Where `part`, a slice of `whole`, lies in it.
fn range_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// Whether `head` (a file's first bytes) starts like a safetensors file: a little-endian `u64`
/// header length that safetensors allows, then the header's JSON object.
pub(crate) fn looks_like_safetensors(head: &[u8]) -> bool {
    let Some(length) = head.get(..8) else { return false };
    let length = u64::from_le_bytes(length.try_into().expect("8 bytes"));
    (2..=MAX_HEADER).contains(&length) && head.get(8) == Some(&b'{')
}

impl Int8File {
    /// Memory-maps and checks an int8 vector file.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is only read. Changing a file while it is mapped is undefined
        // behaviour; the memory-mapped finalfusion files (`index.rs`) make the same assumption.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let bytes: &[u8] = &map;
        let damaged = |e: safetensors::SafeTensorError| {
            file_error(path, format!("not a readable int8 vector file ({e}: truncated or damaged?); write it again with `vecshift convert IN OUT --quantize int8`"))
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(damaged)?;
        let metadata = header.metadata().clone().unwrap_or_default();
        if metadata.get("format").map(String::as_str) != Some(INT8_FORMAT) {
            return Err(file_error(
                path,
                format!("a safetensors file, but not vecshift's int8 word vectors (its metadata has no format \"{INT8_FORMAT}\"); write one with `vecshift convert IN OUT --quantize int8`"),
            ));
        }
        let version = metadata.get("version").map_or("1", String::as_str);
        if version != "1" && version != VERSION {
            return Err(file_error(path, format!("int8 vector file version {version}, but this vecshift reads versions 1 and {VERSION} (upgrade vecshift)")));
        }
        let tensors = SafeTensors::deserialize(bytes).map_err(damaged)?;
        let tensor = |name: &str, dtype: Dtype, rank: usize| -> Result<TensorView<'_>> {
            let view = tensors.tensor(name).map_err(|_| file_error(path, format!("the int8 vector file has no tensor {name:?} (damaged file?)")))?;
            if view.dtype() != dtype || view.shape().len() != rank {
                return Err(file_error(path, format!("the tensor {name:?} is {:?} {:?}, not {dtype:?} of rank {rank} (damaged file?)", view.dtype(), view.shape())));
            }
            Ok(view)
        };
        let (codes, scales, words) = (tensor("codes", Dtype::I8, 2)?, tensor("scales", Dtype::F32, 1)?, tensor("words", Dtype::U8, 1)?);
        let (count, dims) = (codes.shape()[0], codes.shape()[1]);
        if count == 0 {
            return Err(file_error(path, "the file holds no word vectors"));
        }
        if dims == 0 {
            return Err(file_error(path, "the vectors have 0 dimensions"));
        }
        if scales.shape()[0] != count {
            return Err(file_error(path, format!("the file has {} scales for {count} rows of codes (damaged file?)", scales.shape()[0])));
        }
        let text = std::str::from_utf8(words.data()).map_err(|e| file_error(path, format!("the words are not valid UTF-8 ({e}; damaged file?)")))?.as_bytes();
        let mut starts = Vec::with_capacity(count + 1);
        starts.push(0);
        starts.extend(memchr::memchr_iter(b'\n', text).map(|at| at + 1));
        starts.push(text.len() + 1);
        if starts.len() - 1 != count {
            return Err(file_error(path, format!("the file has {} words for {count} rows of codes (damaged file?)", starts.len() - 1)));
        }
        let word = |row: usize| &text[starts[row]..starts[row + 1] - 1];
        let sorted: Vec<u32> = if version == "1" {
            let mut sorted: Vec<u32> = (0..count as u32).collect();
            sorted.sort_unstable_by(|&a, &b| word(a as usize).cmp(word(b as usize)).then(a.cmp(&b)));
            sorted
        } else {
            let order = tensor("order", Dtype::U32, 1)?;
            let sorted: Vec<u32> = order.data().chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
            if sorted.len() != count || sorted.iter().any(|&row| row as usize >= count) {
                return Err(file_error(path, format!("the file's word order does not list its {count} rows (damaged file?)")));
            }
            sorted
        };
        // Strictly increasing words: no word twice, and (with `count` rows below `count`) every
        // row once, so the binary search finds every word.
        for pair in sorted.windows(2) {
            let (a, b) = (pair[0] as usize, pair[1] as usize);
            match word(a).cmp(word(b)) {
                Ordering::Less => {}
                Ordering::Equal => {
                    let text = String::from_utf8_lossy(word(a));
                    return Err(file_error(path, format!("the word {text:?} appears twice (again in row {}); each word may have one vector", a.max(b))));
                }
                Ordering::Greater => return Err(file_error(path, "the file's word order is not sorted (damaged file?)")),
            }
        }
        let scales: Vec<f32> = scales.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        if let Some(row) = scales.iter().position(|s| !s.is_finite() || *s < 0.0) {
            return Err(file_error(path, format!("the scale of {:?} (row {row}) is {}, not a finite number >= 0 (damaged file?)", String::from_utf8_lossy(word(row)), scales[row])));
        }
        let (text, codes) = (range_in(bytes, text), range_in(bytes, codes.data()));
        Ok(Int8File { map, text, starts, sorted, words: OnceLock::new(), codes, dims, rows: OnceLock::new(), scales, unit: OnceLock::new() })
    }

    /// The row of `word`, as written.
    pub(crate) fn find(&self, word: &str) -> Option<usize> {
        let text = &self.map[self.text.clone()];
        let at = self.sorted.binary_search_by(|&row| text[self.starts[row as usize]..self.starts[row as usize + 1] - 1].cmp(word.as_bytes())).ok()?;
        Some(self.sorted[at] as usize)
    }

    /// Number of words (and rows).
    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The word of `row`.
    pub(crate) fn word(&self, row: usize) -> &str {
        let bytes = &self.map[self.text.clone()][self.starts[row]..self.starts[row + 1] - 1];
        std::str::from_utf8(bytes).expect("the text was checked at open and is split at newlines")
    }

    /// The words, in row order, made on the first call.
    pub(crate) fn words(&self) -> &[String] {
        self.words.get_or_init(|| (0..self.len()).map(|row| self.word(row).to_owned()).collect())
    }

    /// Components per vector.
    pub(crate) fn dims(&self) -> usize {
        self.dims
    }

    /// The codes as stored, row-major.
    pub(crate) fn raw_codes(&self) -> &[i8] {
        bytemuck::cast_slice(&self.map[self.codes.clone()])
    }

    /// The file's scales: word `i`'s vector is `scales[i] * c`.
    pub(crate) fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// The codes as the 8-bit search scans them, made on the first call.
    pub(crate) fn codes(&self) -> &QuantizedRows {
        self.rows.get_or_init(|| {
            let mut rows = QuantizedRows::from_codes(self.raw_codes(), self.dims);
            // A zero scale makes a zero vector, whatever its codes: the search must see it so too.
            rows.clear_rows(self.scales.iter().enumerate().filter(|&(_, s)| *s == 0.0).map(|(row, _)| row));
            rows
        })
    }

    /// The stored codes of `row` (a zero scale's codes are read as they are: its vector is
    /// zero anyway).
    fn row_codes(&self, row: usize) -> &[i8] {
        &self.raw_codes()[row * self.dims..(row + 1) * self.dims]
    }

    /// Word `row`'s vector, `s * c`.
    pub(crate) fn vector(&self, row: usize) -> Vec<f32> {
        let scale = self.scales[row];
        self.row_codes(row).iter().map(|&c| scale * f32::from(c)).collect()
    }

    /// The length of word `row`'s vector.
    pub(crate) fn norm(&self, row: usize) -> f32 {
        let squares: i64 = self.row_codes(row).iter().map(|&c| i64::from(c) * i64::from(c)).sum();
        self.scales[row] * (squares as f64).sqrt() as f32
    }

    /// The vectors made unit length (zero rows stay zero), made on the first call.
    pub(crate) fn unit_rows(&self) -> ArrayView2<'_, f32> {
        self.unit
            .get_or_init(|| {
                let mut unit = Array2::zeros((self.len(), self.dims()));
                for (row, mut values) in unit.axis_iter_mut(Axis(0)).enumerate() {
                    // The search's `1 / |c|`, so these rows are the ones it scores.
                    let Some(scale) = quantized::unit_scale(self.row_codes(row), self.scales[row]) else { continue };
                    for (v, &c) in values.iter_mut().zip(self.row_codes(row)) {
                        *v = scale * f32::from(c);
                    }
                }
                unit
            })
            .view()
    }
}

impl StaticEngine {
    /// Writes the vectors as an int8 file, which [`StaticEngine::open`] reads back as another
    /// static model: a safetensors file with an I8 tensor `codes` `[words, dims]`, an F32
    /// tensor `scales` `[words]` (word `i`'s vector is `scales[i] * codes[i]`, each component
    /// within `scales[i] / 2` of this engine's; see [`quantize_int8`]), a U8 tensor `words`
    /// (the words, UTF-8, joined by newlines), a U32 tensor `order` (the rows sorted by their
    /// words' bytes, which lets the file be opened without building a map of its words) and the
    /// metadata `format` = [`INT8_FORMAT`], `version` = `2`, `words` and `dims`.
    ///
    /// Subword models are refused: the file holds the words' rows only. The file is written
    /// at `path` directly; write to a temporary file and rename it for an atomic result.
    pub fn write_int8(&self, path: &Path) -> Result<()> {
        if self.has_subwords() {
            return Err(Error::InvalidArgument(format!(
                "--quantize int8 keeps one vector per word, but {} is a subword model whose unknown words need its n-gram rows; use --quantize pq:M, which keeps them",
                self.path().display()
            )));
        }
        let words = self.words();
        if let Some(word) = words.iter().find(|w| w.contains('\n')) {
            return Err(Error::InvalidArgument(format!("the word {word:?} of {} holds a newline, which the int8 file's word list cannot store", self.path().display())));
        }
        let dims = self.vectors.dims();
        let mut vectors = Array2::zeros((words.len(), dims));
        for (row, mut values) in vectors.axis_iter_mut(Axis(0)).enumerate() {
            values.assign(&ndarray::ArrayView1::from(&self.vectors.word_vector(row)));
        }
        let (codes, scales) = quantize_int8(vectors.view());
        if let Some(row) = scales.iter().position(|s| !s.is_finite()) {
            return Err(Error::InvalidArgument(format!("the vector of {:?} in {} is not finite, so it has no int8 form", words[row], self.path().display())));
        }
        let codes: Vec<i8> = codes.into_iter().collect();
        let scales: Vec<u8> = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
        let text = words.join("\n").into_bytes();
        let rows = u32::try_from(words.len()).map_err(|_| Error::InvalidArgument(format!("{} holds {} words, more than an int8 file's {} rows", self.path().display(), words.len(), u32::MAX)))?;
        let mut order: Vec<u32> = (0..rows).collect();
        order.sort_unstable_by(|&a, &b| words[a as usize].as_bytes().cmp(words[b as usize].as_bytes()));
        let order: Vec<u8> = order.iter().flat_map(|row| row.to_le_bytes()).collect();
        let tensor = |dtype, shape: Vec<usize>, data| TensorView::new(dtype, shape, data).map_err(|e| Error::InvalidArgument(format!("cannot make the int8 tensors: {e}")));
        let tensors = [
            ("codes", tensor(Dtype::I8, vec![words.len(), dims], bytemuck::cast_slice(&codes))?),
            ("scales", tensor(Dtype::F32, vec![words.len()], &scales)?),
            ("words", tensor(Dtype::U8, vec![text.len()], &text)?),
            ("order", tensor(Dtype::U32, vec![words.len()], &order)?),
        ];
        let metadata = HashMap::from([
            ("format".to_owned(), INT8_FORMAT.to_owned()),
            ("version".to_owned(), VERSION.to_owned()),
            ("words".to_owned(), words.len().to_string()),
            ("dims".to_owned(), dims.to_string()),
        ]);
        let bytes = safetensors::serialize(tensors, Some(metadata)).map_err(|e| Error::InvalidArgument(format!("cannot write {}: {e}", path.display())))?;
        let mut file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        std::io::Write::write_all(&mut file, &bytes).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))
    }
}
