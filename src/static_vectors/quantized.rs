//! Exact top-k search that reads an int8 copy of the matrix and scores only a few rows in f32.
//!
//! A query over 400,000 x 50 f32 rows reads 80 MB, more than the last-level cache holds, so a
//! plain scan is bound by memory bandwidth. The 8-bit copy (52 bytes per 50-dim row) is a
//! quarter of that and stays in cache between queries. Every 8-bit score comes with a
//! proven bound on its error, and a row is scored exactly, in f32, only when its upper bound
//! reaches the current k-th best exact score; so the result is the same top-k as a full f32
//! scan, not an approximation.
//!
//! The bound: a row `u` is stored as `s * c` (`s = max|u_i| / 127`, `c_i = round(u_i / s)`, so
//! `|u_i - s c_i| <= s / 2`) and the unit query `q` as `t * d` (`d_i` a small integer). Then
//! `|q.u - s t (c.d)| <= s |q|_1 / 2 + t s |c|_1 / 2`, both terms known before the scan (`|q|_1`
//! per query, `s |c|_1` per row).
//!
//! The codes are stored as `c + 128` (unsigned) and the query codes signed, the operand order
//! of x86's unsigned-by-signed byte products (`vpdpbusd`, `vpmaddubsw`); the offset adds
//! `128 * sum(d)` to every row's sum, one constant per query.
//!
//! The codes lie in tiles of [`TILE`] rows, [`GROUP`] components of each row side by side
//! (bytes `[tile][group][row][component]`, the layout of an AMX B tile): one 64-byte load holds
//! four components of sixteen rows, and one `vpdpbusd` adds their products with four query
//! codes into the sixteen rows' own lanes. A row-major copy needs a horizontal sum per row
//! and query instead, which cost more than the products themselves. A tile is also an AMX
//! operand as it lies, so a batch of queries multiplies sixteen queries by a tile at once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::search::Score;
use crate::simd::{dot, multiversion};

/// A min-heap of the best exact scores so far.
type Heap = BinaryHeap<Reverse<Score>>;

/// What a row's exact score is computed from, once its bound admits it.
#[derive(Clone, Copy)]
pub(crate) enum Exact<'a> {
    /// The f32 rows the codes were made from.
    Rows(ArrayView2<'a, f32>),
    /// The first rows of a [`QuantizedRows::from_codes`], each exactly `s * c`: the scores are
    /// exact over those (dequantized) rows.
    Codes(usize),
}

impl<'a> From<ArrayView2<'a, f32>> for Exact<'a> {
    fn from(matrix: ArrayView2<'a, f32>) -> Self {
        Exact::Rows(matrix)
    }
}

impl Exact<'_> {
    fn rows(&self) -> usize {
        match self {
            Exact::Rows(matrix) => matrix.nrows(),
            Exact::Codes(rows) => *rows,
        }
    }

    fn dims(&self, quantized: &QuantizedRows) -> usize {
        match self {
            Exact::Rows(matrix) => matrix.ncols(),
            Exact::Codes(_) => quantized.dims,
        }
    }

    /// The exact dot product of row `r` with `unit`.
    #[inline(always)]
    fn score(&self, quantized: &QuantizedRows, r: usize, unit: &[f32]) -> f32 {
        match self {
            Exact::Rows(matrix) => match matrix.row(r).to_slice() {
                Some(values) => dot(values, unit),
                None => matrix.row(r).iter().zip(unit).map(|(a, b)| a * b).sum(),
            },
            Exact::Codes(_) => quantized.scale[r] * quantized.stored(r).zip(unit).map(|(c, &u)| f32::from(i16::from(c) - OFFSET as i16) * u).sum::<f32>(),
        }
    }
}

/// Rows per tile: one i32 lane each of a 512-bit register.
const TILE: usize = 16;
/// Components per lane: the four byte products one `vpdpbusd` lane sums.
const GROUP: usize = 4;
/// Bytes of one component group of a tile: one 512-bit load.
const GROUP_BYTES: usize = TILE * GROUP;
/// Offset that makes a code unsigned.
const OFFSET: i32 = 128;
/// Slack added to every bound for the f32 rounding of the scores themselves (which is ~1e-6).
const MARGIN: f32 = 1e-4;
/// Below this many rows a query is not split across threads.
const PARALLEL_ROWS: usize = 65_536;
/// Rows per parallel task when a whole matrix is converted: 256 tiles.
const CONVERT_BLOCK: usize = 4096;

/// One cache line of codes. The copy is allocated in these so that every 64-byte load of a
/// component group is aligned: a load split across two lines cost 1.6 times as much.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

// SAFETY: 64 bytes with no padding, and every bit pattern is a valid `Line`.
unsafe impl bytemuck::Zeroable for Line {}
// SAFETY: as above; `Line` is `Copy` and `repr(C)`.
unsafe impl bytemuck::Pod for Line {}

/// The 8-bit copy of a matrix's rows, with what the error bounds need.
pub(crate) struct QuantizedRows {
    /// Components per row.
    dims: usize,
    /// Component groups per row: `dims / GROUP` rounded up (at least 1), padded with codes
    /// that meet zero query codes.
    groups: usize,
    /// The codes `c + 128` in tiles (see the module documentation), whole tiles: the rows past
    /// the last real one are padding. [`QuantizedRows::codes`] reads them as bytes.
    lines: Vec<Line>,
    /// Per row: the scale `s` (a row's value is `s * c`); zero for the padding rows.
    scale: Vec<f32>,
    /// Per row: `s * |c|_1`, for the query-side error term; zero for the padding rows.
    l1: Vec<f32>,
    /// The real rows (without the last tile's padding).
    rows: usize,
    /// The all-zero rows, in order.
    zero_rows: Vec<usize>,
}

impl QuantizedRows {
    /// The codes, as bytes.
    fn codes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.lines)
    }

    /// Bytes per tile.
    fn tile_bytes(&self) -> usize {
        self.groups * GROUP_BYTES
    }

    /// The `dims` stored codes `c + 128` of `row`, in component order.
    fn stored(&self, row: usize) -> impl Iterator<Item = u8> + '_ {
        let (codes, tile_bytes) = (self.codes(), self.tile_bytes());
        (0..self.dims).map(move |i| codes[tile_offset(row, i, tile_bytes)])
    }

    /// An all-padding copy of `rows` rows of `dims` components, every code `fill`.
    fn empty(rows: usize, dims: usize, fill: u8) -> Self {
        let groups = dims.div_ceil(GROUP).max(1);
        let padded = rows.div_ceil(TILE) * TILE;
        // Zeros come from the allocator as untouched pages (see `new`).
        let lines = padded * groups * GROUP / 64;
        let lines = if fill == 0 { bytemuck::zeroed_vec(lines) } else { vec![Line([fill; 64]); lines] };
        QuantizedRows { dims, groups, lines, scale: vec![0f32; padded], l1: vec![0f32; padded], rows, zero_rows: Vec::new() }
    }

    /// Quantizes every row of `matrix` (in parallel: this is a pass over the whole matrix).
    pub(crate) fn new(matrix: ArrayView2<f32>) -> Self {
        let (rows, dims) = matrix.dim();
        let values = matrix.as_standard_layout();
        let values = values.as_slice().expect("a standard-layout array is contiguous");
        // Zeros come from the allocator as untouched pages. Only the `dims` codes of finite,
        // non-zero rows are written: padding meets zero query codes, and the bound of a zero
        // (or non-finite) row does not depend on its codes, as its scale is 0 (or NaN).
        let mut quantized = QuantizedRows::empty(rows, dims, 0);
        let tile_bytes = quantized.tile_bytes();
        if dims > 0 && rows > 0 {
            values
                .par_chunks(CONVERT_BLOCK * dims)
                .zip(bytemuck::cast_slice_mut::<Line, u8>(&mut quantized.lines).par_chunks_mut(CONVERT_BLOCK / TILE * tile_bytes))
                .zip(quantized.scale.par_chunks_mut(CONVERT_BLOCK).zip(quantized.l1.par_chunks_mut(CONVERT_BLOCK)))
                .for_each(|((values, codes), (scale, l1))| quantize_dispatch(values, dims, codes, scale, l1));
        }
        quantized.find_zero_rows();
        quantized
    }

    /// The rows of stored codes `c` (row-major, `dims` per row), each taken as the unit vector
    /// `c / |c|`: an int8 file's rows, searched by cosine as they are, with no f32 matrix (see
    /// [`Exact::Codes`]). All-zero rows stay zero.
    pub(crate) fn from_codes(codes: &[i8], dims: usize) -> Self {
        let rows = codes.len().checked_div(dims).unwrap_or(0);
        let mut quantized = QuantizedRows::empty(rows, dims, OFFSET as u8);
        let tile_bytes = quantized.tile_bytes();
        if dims > 0 && rows > 0 {
            // In parallel: an int8 file is opened with this pass over all of its codes.
            codes[..rows * dims]
                .par_chunks(CONVERT_BLOCK * dims)
                .zip(bytemuck::cast_slice_mut::<Line, u8>(&mut quantized.lines).par_chunks_mut(CONVERT_BLOCK / TILE * tile_bytes))
                .zip(quantized.scale.par_chunks_mut(CONVERT_BLOCK).zip(quantized.l1.par_chunks_mut(CONVERT_BLOCK)))
                .for_each(|((codes, tiles), (scale, l1))| {
                    for (row, values) in codes.chunks_exact(dims).enumerate() {
                        for (i, &c) in values.iter().enumerate() {
                            tiles[tile_offset(row, i, tile_bytes)] = (i32::from(c) + OFFSET) as u8;
                        }
                        if let Some(s) = unit_scale(values, 1.0) {
                            scale[row] = s;
                            l1[row] = s * values.iter().map(|&c| i32::from(c).abs()).sum::<i32>() as f32;
                        }
                    }
                });
        }
        quantized.find_zero_rows();
        quantized
    }

    /// Lists the real rows whose scale is zero.
    fn find_zero_rows(&mut self) {
        self.zero_rows = self.scale[..self.rows].iter().enumerate().filter(|&(_, &s)| s == 0.0).map(|(row, _)| row).collect();
    }

    /// Makes `rows` all-zero rows, whatever their codes were.
    pub(crate) fn clear_rows(&mut self, rows: impl Iterator<Item = usize>) {
        let (tile_bytes, components) = (self.tile_bytes(), self.groups * GROUP);
        let codes: &mut [u8] = bytemuck::cast_slice_mut(&mut self.lines);
        for row in rows {
            if self.scale[row] != 0.0 {
                for i in 0..components {
                    codes[tile_offset(row, i, tile_bytes)] = OFFSET as u8;
                }
                (self.scale[row], self.l1[row]) = (0.0, 0.0);
            }
        }
        self.find_zero_rows();
    }

    /// The codes `c` of `row` (`dims` of them; zeros for a zero or non-finite row, whose codes
    /// [`QuantizedRows::new`] leaves unwritten).
    pub(crate) fn row_codes(&self, row: usize) -> impl Iterator<Item = i8> + '_ {
        let written = self.scale[row] > 0.0;
        self.stored(row).map(move |code| if written { (i32::from(code) - OFFSET) as i8 } else { 0 })
    }

    /// Per row, the scale `s` of its codes (`s * c` is the row).
    pub(crate) fn scales(&self) -> &[f32] {
        &self.scale[..self.rows]
    }

    /// The rows that are all zeros (whose cosine with anything is undefined).
    pub(crate) fn zero_rows(&self) -> &[usize] {
        &self.zero_rows
    }

    /// Number of rows.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }
}

/// Where component `i` of `row` lies in tiles of `tile_bytes` bytes.
#[inline(always)]
fn tile_offset(row: usize, i: usize, tile_bytes: usize) -> usize {
    (row / TILE) * tile_bytes + (i / GROUP) * GROUP_BYTES + (row % TILE) * GROUP + i % GROUP
}

/// Quantizes consecutive rows (`values.len() / dims` of them, from the start of a tile) into
/// `codes` (their tiles) as `c + 128`, their scales `s` and `s * |c|_1`.
#[inline(always)]
fn quantize_rows(values: &[f32], dims: usize, codes: &mut [u8], scale: &mut [f32], l1: &mut [f32]) {
    let tile_bytes = codes.len() / scale.len().div_ceil(TILE);
    // A row's codes are made side by side (a loop the compiler vectorises), then moved to
    // their tile four at a time.
    let mut row_codes = vec![0u8; tile_bytes / TILE];
    for (row, (scale, l1)) in scale.iter_mut().zip(l1.iter_mut()).take(values.len() / dims).enumerate() {
        let values = &values[row * dims..(row + 1) * dims];
        let max = max_abs(values);
        // A zero row keeps zero codes; a non-finite one gets a NaN scale, so that its bound
        // never admits it (as its NaN exact score never would).
        let finite = values.iter().fold(true, |ok, v| ok & v.is_finite());
        *scale = if finite { max / 127.0 } else { f32::NAN };
        if *scale > 0.0 {
            // Below max ~ 3.7e-37, 127 / max overflows to infinity and a zero component would
            // give 0 * inf = NaN: such rows divide by the scale instead (slower, and rare).
            let inverse = 127.0 / max;
            let tiny = !inverse.is_finite();
            let mut sum = 0i32;
            for (code, v) in row_codes.iter_mut().zip(values) {
                // Round half away from zero with a truncating conversion (`f32::round` is a
                // library call on baseline x86-64).
                let x = if tiny { v / *scale } else { v * inverse }.clamp(-127.0, 127.0);
                // SAFETY: |x + 0.5| <= 127.5: the row is finite and `x` is never NaN (a finite
                // value times a finite `inverse`, or over a positive scale), well inside i32.
                let c = unsafe { (x + 0.5f32.copysign(x)).to_int_unchecked::<i32>() };
                *code = (c + OFFSET) as u8;
                sum += c.abs();
            }
            *l1 = *scale * sum as f32;
            // The padding codes stay zero, as they meet zero query codes.
            for (group, four) in row_codes.chunks_exact(GROUP).enumerate() {
                let at = tile_offset(row, group * GROUP, tile_bytes);
                codes[at..at + GROUP].copy_from_slice(four);
            }
        }
    }
}

/// The largest magnitude in `values`, in eight independent lanes: a plain `fold(f32::max)`
/// is one serial dependency chain (NaN rules keep the compiler from reordering it).
#[inline(always)]
fn max_abs(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(0f32, |m, v| m.max(v.abs()));
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(v.abs());
        }
    }
    lanes.iter().fold(tail, |m, &v| m.max(v))
}

multiversion!(quantize_dispatch(values: &[f32], dims: usize, codes: &mut [u8], scale: &mut [f32], l1: &mut [f32]) => quantize_rows);

/// A unit query in the integer form the scan multiplies with.
struct Query<'a> {
    /// The unit query, for the exact scores.
    unit: &'a [f32],
    /// Integer codes `d`, a whole number of groups (padding zero).
    codes: Vec<i8>,
    /// The codes four by four, as the `i32` a group's products are broadcast from.
    words: Vec<i32>,
    /// `128 * sum(d)`: what the unsigned row codes add to every integer sum.
    offset: i32,
    /// The query's scale `t`.
    scale: f32,
    /// `|q|_1 / 2`, the row-side error term's factor.
    half_l1: f32,
}

impl<'a> Query<'a> {
    /// Quantizes `unit` to integers in `-limit..=limit`.
    fn new(unit: &'a [f32], groups: usize, limit: i8) -> Self {
        let limit = f32::from(limit);
        let max = unit.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = max / limit;
        let mut codes = vec![0i8; groups * GROUP];
        for (code, v) in codes.iter_mut().zip(unit) {
            *code = (v / scale).round().clamp(-limit, limit) as i8;
        }
        let offset = OFFSET * codes.iter().map(|&d| i32::from(d)).sum::<i32>();
        let half_l1 = unit.iter().map(|v| v.abs()).sum::<f32>() / 2.0;
        let words = codes.chunks_exact(GROUP).map(|d| i32::from_le_bytes([d[0] as u8, d[1] as u8, d[2] as u8, d[3] as u8])).collect();
        Query { unit, codes, words, offset, scale, half_l1 }
    }
}

/// The `k` rows of `matrix` with the highest cosine to the unit vector `unit`, best first, as
/// `(row, dot product)`; `exclude` rows are never returned. Ties keep the lower row first.
///
/// `quantized` must be [`QuantizedRows::new`] of the same `matrix` (or of a longer matrix whose
/// first rows these are). With `parallel`, large matrices are split across the rayon pool.
pub(crate) fn top_k<'m>(
    matrix: impl Into<Exact<'m>>,
    quantized: &QuantizedRows,
    unit: &[f32],
    k: usize,
    exclude: &[usize],
    parallel: bool,
) -> Vec<(usize, f32)> {
    top_k_with(Kernel::best(), matrix.into(), quantized, unit, k, exclude, parallel)
}

/// [`top_k`] without the 8-bit copy: every row scored in f32, the same scores and order.
///
/// For a lone query this is cheaper than building the copy first (a pass over the whole
/// matrix that also writes the codes). All-zero rows are skipped, as [`top_k`]'s callers
/// exclude [`QuantizedRows::zero_rows`].
pub(crate) fn top_k_f32(matrix: ArrayView2<f32>, unit: &[f32], k: usize, exclude: &[usize], parallel: bool) -> Vec<(usize, f32)> {
    let rows = matrix.nrows();
    assert!(unit.len() == matrix.ncols(), "the query does not match the matrix");
    if k == 0 || rows == 0 {
        return Vec::new();
    }
    let capacity = k + exclude.len();
    let threads = if parallel && rows >= PARALLEL_ROWS { rayon::current_num_threads() } else { 1 };
    let chunk = rows.div_ceil(threads);
    let scan_part = |part: usize| {
        let mut heap: Heap = BinaryHeap::with_capacity(capacity + 1);
        scan_f32_dispatch(matrix.slice(ndarray::s![part * chunk..((part + 1) * chunk).min(rows), ..]), part * chunk, unit, capacity, &mut heap);
        heap
    };
    let parts = rows.div_ceil(chunk);
    let heaps: Vec<Heap> = if parts == 1 { vec![scan_part(0)] } else { (0..parts).into_par_iter().map(scan_part).collect() };
    best_of(heaps.into_iter().flatten(), k, exclude)
}

/// Scores every row of `matrix` (row `first` of the whole matrix first) into `heap`, at most
/// `capacity` of them, skipping all-zero rows.
#[inline(always)]
fn scan_f32(matrix: ArrayView2<f32>, first: usize, unit: &[f32], capacity: usize, heap: &mut Heap) {
    for (i, row) in matrix.rows().into_iter().enumerate() {
        let exact = match row.to_slice() {
            Some(values) => dot(values, unit),
            None => row.iter().zip(unit).map(|(a, b)| a * b).sum(),
        };
        // Only a row whose score is exactly zero can be all zeros.
        if exact == 0.0 && row.iter().all(|&v| v == 0.0) {
            continue;
        }
        keep(heap, capacity, Score(exact, first + i));
    }
}

multiversion!(scan_f32_dispatch(matrix: ArrayView2<f32>, first: usize, unit: &[f32], capacity: usize, heap: &mut Heap) => scan_f32);

/// `1 / |c|`, the scale that makes the codes `c` a unit vector, or `None` for a zero row (all
/// codes zero, or a zero `file_scale`, which makes the vector zero whatever its codes).
#[inline]
pub(crate) fn unit_scale(codes: &[i8], file_scale: f32) -> Option<f32> {
    let squares: i64 = codes.iter().map(|&c| i64::from(c) * i64::from(c)).sum();
    (squares > 0 && file_scale != 0.0).then(|| (1.0 / (squares as f64).sqrt()) as f32)
}

/// [`top_k_f32`] over stored codes (row-major, `scales` the file's, see
/// [`QuantizedRows::from_codes`]): every row scored exactly as [`Exact::Codes`] scores it, so
/// the result is [`top_k`]'s, with no 8-bit copy made. Zero rows are no one's neighbours.
pub(crate) fn top_k_codes(codes: &[i8], scales: &[f32], unit: &[f32], k: usize, exclude: &[usize]) -> Vec<(usize, f32)> {
    let dims = unit.len();
    let rows = scales.len();
    assert!(codes.len() == rows * dims, "the query does not match the codes");
    if k == 0 || rows == 0 {
        return Vec::new();
    }
    let capacity = k + exclude.len();
    let threads = if rows >= PARALLEL_ROWS { rayon::current_num_threads() } else { 1 };
    let chunk = rows.div_ceil(threads);
    let scan_part = |part: usize| {
        let mut heap: Heap = BinaryHeap::with_capacity(capacity + 1);
        let first = part * chunk;
        for (i, row) in codes[first * dims..(first + chunk).min(rows) * dims].chunks_exact(dims).enumerate() {
            let Some(scale) = unit_scale(row, scales[first + i]) else { continue };
            // The sum of `Exact::Codes`, term for term, so the scores are the same floats.
            keep(&mut heap, capacity, Score(scale * row.iter().zip(unit).map(|(&c, &u)| f32::from(c) * u).sum::<f32>(), first + i));
        }
        heap
    };
    let parts = rows.div_ceil(chunk);
    let heaps: Vec<Heap> = if parts == 1 { vec![scan_part(0)] } else { (0..parts).into_par_iter().map(scan_part).collect() };
    best_of(heaps.into_iter().flatten(), k, exclude)
}

/// [`top_k`] with a given kernel.
fn top_k_with<'m>(
    kernel: Kernel,
    matrix: impl Into<Exact<'m>>,
    quantized: &QuantizedRows,
    unit: &[f32],
    k: usize,
    exclude: &[usize],
    parallel: bool,
) -> Vec<(usize, f32)> {
    let matrix = matrix.into();
    let rows = matrix.rows();
    assert!(rows <= quantized.rows() && unit.len() == matrix.dims(quantized), "quantized rows do not match the matrix");
    if k == 0 || rows == 0 {
        return Vec::new();
    }
    let query = kernel.query(unit, quantized.groups);
    let capacity = k + exclude.len();
    let threads = if parallel && rows >= PARALLEL_ROWS { rayon::current_num_threads() } else { 1 };
    // Whole tiles per part, so that every part starts at a tile.
    let chunk = rows.div_ceil(threads).div_ceil(TILE) * TILE;
    let scan_part = |part: usize| {
        let mut heap = BinaryHeap::with_capacity(capacity + 1);
        scan(kernel, matrix, quantized, &query, part * chunk..((part + 1) * chunk).min(rows), capacity, &mut heap);
        heap
    };
    let parts = rows.div_ceil(chunk);
    let heaps: Vec<Heap> = if parts == 1 { vec![scan_part(0)] } else { (0..parts).into_par_iter().map(scan_part).collect() };
    best_of(heaps.into_iter().flatten(), k, exclude)
}

/// The best `k` of the scores in `heap`, best first, skipping `exclude`.
fn best_of(heap: impl Iterator<Item = Reverse<Score>>, k: usize, exclude: &[usize]) -> Vec<(usize, f32)> {
    let mut best: Vec<Score> = heap.map(|r| r.0).filter(|s| !exclude.contains(&s.1)).collect();
    best.sort_by(|a, b| b.cmp(a));
    best.truncate(k);
    best.into_iter().map(|s| (s.1, s.0)).collect()
}

/// [`top_k`] for many unit queries at once (`None` finds nothing), `exclude[i]` for query `i`.
///
/// The rows are scanned in blocks that stay in the L2 cache while every query of a thread's
/// share passes over them, so the 8-bit matrix is read from memory once per share, not once
/// per query. With AMX, sixteen queries' sums with a tile of sixteen rows are one `tdpbsud`
/// (the same integers as `vpdpbusd`'s, so the same bounds and results).
pub(crate) fn top_k_batch<'m>(
    matrix: impl Into<Exact<'m>>,
    quantized: &QuantizedRows,
    units: &[Option<Vec<f32>>],
    k: usize,
    exclude: &[&[usize]],
) -> Vec<Vec<(usize, f32)>> {
    top_k_batch_with(Kernel::best(), matrix.into(), quantized, units, k, exclude)
}

/// [`top_k_batch`] with a given kernel.
fn top_k_batch_with(kernel: Kernel, matrix: Exact, quantized: &QuantizedRows, units: &[Option<Vec<f32>>], k: usize, exclude: &[&[usize]]) -> Vec<Vec<(usize, f32)>> {
    /// Bytes of codes per block: a block stays in L2 while every query passes over it.
    const BLOCK_BYTES: usize = 256 * 1024;
    let block = (BLOCK_BYTES / quantized.tile_bytes()).max(1) * TILE;
    let rows = matrix.rows();
    assert!(rows <= quantized.rows() && exclude.len() == units.len(), "quantized rows do not match the matrix");
    let share = units.len().div_ceil(rayon::current_num_threads()).max(1);
    let shares: Vec<Vec<Vec<(usize, f32)>>> = units
        .par_chunks(share)
        .zip(exclude.par_chunks(share))
        .map(|(units, exclude)| {
            let queries: Vec<Option<Query>> = units.iter().map(|u| u.as_ref().map(|u| kernel.query(u, quantized.groups))).collect();
            let capacity: Vec<usize> = exclude.iter().map(|e| k + e.len()).collect();
            let mut heaps: Vec<Heap> = capacity.iter().map(|c| BinaryHeap::with_capacity(c + 1)).collect();
            if k > 0 {
                match kernel {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `Kernel::Amx` is only chosen when AMX and AVX-512 were detected.
                    Kernel::Amx => unsafe { x86::scan_amx(matrix, quantized, &queries, &capacity, 0..rows, block, &mut heaps) },
                    _ => {
                        for start in (0..rows).step_by(block) {
                            let range = start..(start + block).min(rows);
                            for ((query, heap), &capacity) in queries.iter().zip(&mut heaps).zip(&capacity) {
                                if let Some(query) = query {
                                    scan(kernel, matrix, quantized, query, range.clone(), capacity, heap);
                                }
                            }
                        }
                    }
                }
            }
            heaps.into_iter().zip(exclude).map(|(heap, exclude)| best_of(heap.into_iter(), k, exclude)).collect()
        })
        .collect();
    shares.into_iter().flatten().collect()
}

/// The bound a row needs to be scored exactly: the k-th best score so far (`capacity` is k
/// plus the rows to exclude), less the margin; minus infinity until the heap is full.
#[inline(always)]
fn floor(heap: &Heap, capacity: usize) -> f32 {
    match heap.peek() {
        Some(worst) if heap.len() >= capacity => worst.0.0 - MARGIN,
        _ => f32::NEG_INFINITY,
    }
}

/// Keeps `score` in `heap` if it is among the best `capacity` so far.
#[inline(always)]
fn keep(heap: &mut Heap, capacity: usize, score: Score) {
    if heap.len() < capacity {
        heap.push(Reverse(score));
    } else if heap.peek().is_some_and(|worst| score > worst.0) {
        heap.pop();
        heap.push(Reverse(score));
    }
}

/// Scores exactly each row of `admitted & all` (bits over the rows from `first`; `all` the
/// rows that exist) into `heap`, and updates `threshold` to the new [`floor`]. Until the heap
/// is full every row of `all` goes in, NaN scores included (they sort lowest).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn offer(matrix: Exact, quantized: &QuantizedRows, unit: &[f32], first: usize, admitted: u32, all: u32, capacity: usize, heap: &mut Heap, threshold: &mut f32) {
    let mut admitted = if heap.len() < capacity { all } else { admitted & all };
    // Most tiles admit no row: they leave without reading the heap again.
    if admitted == 0 {
        return;
    }
    while admitted != 0 {
        let r = first + admitted.trailing_zeros() as usize;
        admitted &= admitted - 1;
        keep(heap, capacity, Score(matrix.score(quantized, r, unit), r));
    }
    *threshold = floor(heap, capacity);
}

/// Which byte dot product the scan uses.
#[derive(Clone, Copy, Debug)]
enum Kernel {
    /// Plain Rust, for any CPU.
    Portable,
    /// AVX2's `vpmaddubsw`.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512 VNNI's `vpdpbusd` on 512-bit registers: a tile's sixteen rows in one.
    #[cfg(target_arch = "x86_64")]
    Vnni,
    /// AMX's `tdpbsud` for batches: sixteen queries by a tile's sixteen rows in one; a
    /// single query takes [`Kernel::Vnni`]'s scan.
    #[cfg(target_arch = "x86_64")]
    Amx,
}

impl Kernel {
    /// The kernels this CPU can run, fastest first.
    fn available() -> Vec<Kernel> {
        let mut kernels = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                if has!("avx512f") && has!("avx512vnni") {
                    if crate::simd::amx::available() {
                        kernels.push(Kernel::Amx);
                    }
                    kernels.push(Kernel::Vnni);
                }
                kernels.push(Kernel::Avx2);
            }
        }
        kernels.push(Kernel::Portable);
        kernels
    }

    /// `unit` in the integer form this kernel multiplies with.
    fn query<'a>(self, unit: &'a [f32], groups: usize) -> Query<'a> {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => Query::new(unit, groups, x86::AVX2_LIMIT),
            _ => Query::new(unit, groups, 127),
        }
    }

    /// The fastest kernel this CPU can run (detected once).
    fn best() -> Kernel {
        static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| Kernel::available()[0])
    }
}

/// Scans `range` of the rows into `heap` (a min-heap of at most `capacity` exact scores), for
/// a query made by [`Kernel::query`] of the same kernel.
fn scan(
    kernel: Kernel,
    matrix: Exact,
    quantized: &QuantizedRows,
    query: &Query,
    range: std::ops::Range<usize>,
    capacity: usize,
    heap: &mut Heap,
) {
    match kernel {
        Kernel::Portable => scan_with(matrix, quantized, query, range, capacity, heap, portable_admit),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2(m: Exact, q: &QuantizedRows, query: &Query, r: std::ops::Range<usize>, c: usize, h: &mut Heap) {
                // SAFETY: `Kernel::Avx2` is only chosen when the features were detected.
                scan_with(m, q, query, r, c, h, |tile, query, scale, l1, floor| unsafe {
                    let (low, high) = x86::sums_avx2(tile, &query.words);
                    x86::admit_avx2(low, query, &scale[..8], &l1[..8], floor) | x86::admit_avx2(high, query, &scale[8..], &l1[8..], floor) << 8
                })
            }
            // SAFETY: as above.
            unsafe { avx2(matrix, quantized, query, range, capacity, heap) }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Vnni | Kernel::Amx => {
            #[target_feature(enable = "avx2,fma,avx512f,avx512vnni")]
            unsafe fn vnni(m: Exact, q: &QuantizedRows, query: &Query, r: std::ops::Range<usize>, c: usize, h: &mut Heap) {
                // SAFETY: `Kernel::Vnni` is only chosen when the features were detected.
                scan_with(m, q, query, r, c, h, |tile, query, scale, l1, floor| unsafe {
                    x86::admit_512(x86::sums_vnni(tile, &query.words), query, scale, l1, floor)
                })
            }
            // SAFETY: as above.
            unsafe { vnni(matrix, quantized, query, range, capacity, heap) }
        }
    }
}

/// The scan's body, generic over the kernel: `admit(tile, query, scales, l1s, floor)` returns a
/// bit for each of a tile's [`TILE`] rows whose upper bound reaches `floor`.
///
/// `range` must start at a tile.
#[inline(always)]
fn scan_with(
    matrix: Exact,
    quantized: &QuantizedRows,
    query: &Query,
    range: std::ops::Range<usize>,
    capacity: usize,
    heap: &mut Heap,
    admit: impl Fn(&[u8], &Query, &[f32], &[f32], f32) -> u32,
) {
    debug_assert!(range.start.is_multiple_of(TILE) && range.end <= quantized.rows);
    let tile_bytes = quantized.tile_bytes();
    let mut threshold = floor(heap, capacity);
    for row in range.clone().step_by(TILE) {
        let tile = row / TILE;
        // The last tile's padding rows have zero bounds; the mask drops them either way.
        let all = (1u32 << TILE.min(range.end - row)) - 1;
        let rows = row..row + TILE;
        let admitted = admit(&quantized.codes()[tile * tile_bytes..(tile + 1) * tile_bytes], query, &quantized.scale[rows.clone()], &quantized.l1[rows], threshold);
        offer(matrix, quantized, query.unit, row, admitted, all, capacity, heap, &mut threshold);
    }
}

/// The rows of a tile whose upper bound `s (t (sum - offset) + |q|_1 / 2) + t/2 s|c|_1`
/// reaches `floor`, as bits; NaN bounds (non-finite rows) never do.
fn portable_admit(tile: &[u8], query: &Query, scale: &[f32], l1: &[f32], floor: f32) -> u32 {
    let sums = portable_sums(tile, &query.codes);
    let mut admitted = 0;
    for (i, sum) in sums.iter().enumerate() {
        let upper = scale[i].mul_add(query.scale.mul_add((sum - query.offset) as f32, query.half_l1), query.scale * 0.5 * l1[i]);
        if upper >= floor {
            admitted |= 1 << i;
        }
    }
    admitted
}

/// The [`TILE`] sums `(c + 128) . d` of a tile's rows with the query codes `d`.
fn portable_sums(tile: &[u8], query: &[i8]) -> [i32; TILE] {
    let mut sums = [0i32; TILE];
    for (group, d) in tile.chunks_exact(GROUP_BYTES).zip(query.chunks_exact(GROUP)) {
        for (sum, c) in sums.iter_mut().zip(group.chunks_exact(GROUP)) {
            *sum += c.iter().zip(d).map(|(&c, &d)| i32::from(c) * i32::from(d)).sum::<i32>();
        }
    }
    sums
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Exact, GROUP_BYTES, Heap, Query, QuantizedRows, TILE, floor, offer};
    use crate::simd::amx::{self, Tiles};

    /// The largest query code for [`sums_avx2`]: `vpmaddubsw` saturates its pair sums at
    /// `i16::MAX`, and `2 * 255 * 63` is the largest that stays below it.
    pub(super) const AVX2_LIMIT: i8 = 63;

    /// A tile's sixteen sums with AVX-512 VNNI: one `vpdpbusd` per component group, each
    /// row in its own lane.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and VNNI; `tile` must hold `GROUP_BYTES` bytes per word
    /// of `query`.
    #[inline(always)]
    pub(super) unsafe fn sums_vnni(tile: &[u8], query: &[i32]) -> __m512i {
        debug_assert!(tile.len() >= query.len() * GROUP_BYTES);
        // SAFETY: as this function's contract.
        unsafe {
            // Two chains, so that consecutive products do not wait on each other's latency.
            let (mut even, mut odd) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            let pairs = query.chunks_exact(2);
            let last = pairs.remainder();
            let mut at = tile.as_ptr();
            for pair in pairs {
                even = _mm512_dpbusd_epi32(even, _mm512_loadu_si512(at.cast()), _mm512_set1_epi32(pair[0]));
                odd = _mm512_dpbusd_epi32(odd, _mm512_loadu_si512(at.add(GROUP_BYTES).cast()), _mm512_set1_epi32(pair[1]));
                at = at.add(2 * GROUP_BYTES);
            }
            if let [word] = last {
                even = _mm512_dpbusd_epi32(even, _mm512_loadu_si512(at.cast()), _mm512_set1_epi32(*word));
            }
            _mm512_add_epi32(even, odd)
        }
    }

    /// [`super::portable_admit`] for the sums of [`sums_vnni`]: all sixteen bounds at once.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `scale` and `l1` must hold sixteen values.
    #[inline(always)]
    pub(super) unsafe fn admit_512(sums: __m512i, query: &Query, scale: &[f32], l1: &[f32], floor: f32) -> u32 {
        debug_assert!(scale.len() >= 16 && l1.len() >= 16);
        unsafe {
            let sums = _mm512_sub_epi32(sums, _mm512_set1_epi32(query.offset));
            let dot = _mm512_fmadd_ps(_mm512_set1_ps(query.scale), _mm512_cvtepi32_ps(sums), _mm512_set1_ps(query.half_l1));
            let query_term = _mm512_mul_ps(_mm512_set1_ps(query.scale * 0.5), _mm512_loadu_ps(l1.as_ptr()));
            let upper = _mm512_fmadd_ps(_mm512_loadu_ps(scale.as_ptr()), dot, query_term);
            u32::from(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(upper, _mm512_set1_ps(floor)))
        }
    }

    /// [`super::top_k_batch`]'s scan of `range` with AMX: sixteen queries at a time against
    /// each tile of each block of `block` rows (a whole number of tiles), every query's heap
    /// kept as [`super::scan_with`] keeps it, from the same integer sums.
    ///
    /// # Safety
    /// AMX must be [`amx::available`] (which includes AVX-512F) and the CPU must have
    /// AVX-512 VNNI; `range` must start at a tile and end within `quantized`'s rows.
    #[target_feature(enable = "avx2,fma,avx512f,avx512vnni")]
    pub(super) unsafe fn scan_amx(
        matrix: Exact,
        quantized: &QuantizedRows,
        queries: &[Option<Query>],
        capacity: &[usize],
        range: std::ops::Range<usize>,
        block: usize,
        heaps: &mut [Heap],
    ) {
        debug_assert!(range.start.is_multiple_of(TILE) && range.end <= quantized.rows && block.is_multiple_of(TILE));
        const CODES: usize = amx::ROW_BYTES;
        let (blocks, rem) = (quantized.groups * 4 / CODES, quantized.groups % (CODES / 4));
        // Each query's codes padded with zeros to whole tile rows, sixteen queries per set
        // (the last set padded with zero queries, whose sums are never read).
        let stride = (quantized.groups * 4).div_ceil(CODES) * CODES;
        let live: Vec<(usize, &Query)> = queries.iter().enumerate().filter_map(|(i, query)| Some((i, query.as_ref()?))).collect();
        let sets: Vec<_> = live
            .chunks(TILE)
            .map(|set| {
                let mut codes = vec![0i8; TILE * stride];
                for (row, (_, query)) in codes.chunks_exact_mut(stride).zip(set) {
                    row[..query.codes.len()].copy_from_slice(&query.codes);
                }
                (set, codes)
            })
            .collect();
        let mut thresholds: Vec<f32> = heaps.iter().zip(capacity).map(|(heap, &capacity)| floor(heap, capacity)).collect();
        let tile_bytes = quantized.tile_bytes();
        // SAFETY: AMX is available (this function's contract).
        let tiles = unsafe { Tiles::configure_shapes(&amx::query_shapes(rem)) };
        // One tile's sums are read while the next tile's are computed: each tile's product is
        // started before the last one's bounds are checked, so that its latency overlaps them.
        let mut sums = [[[0i32; TILE]; TILE]; 2];
        let product = |tile: usize, codes: &[i8], sums: &mut [[i32; TILE]; TILE]| {
            let b = quantized.codes()[tile * tile_bytes..].as_ptr();
            // SAFETY: each query row holds `stride` codes, whole blocks and the last groups;
            // the tile holds `groups` groups of 64 bytes.
            unsafe {
                if tile.is_multiple_of(2) {
                    tiles.query_sums::<false>(codes.as_ptr(), stride, b, blocks, rem > 0, sums);
                } else {
                    tiles.query_sums::<true>(codes.as_ptr(), stride, b, blocks, rem > 0, sums);
                }
            }
        };
        for start in range.clone().step_by(block) {
            let end = (start + block).min(range.end);
            for (set, codes) in &sets {
                let first = start / TILE;
                product(first, codes, &mut sums[first % 2]);
                for row in (start..end).step_by(TILE) {
                    let tile = row / TILE;
                    if row + TILE < end {
                        product(tile + 1, codes, &mut sums[(tile + 1) % 2]);
                    }
                    let all = (1u32 << TILE.min(range.end - row)) - 1;
                    for (sums, &(i, query)) in sums[tile % 2].iter().zip(set.iter()) {
                        // SAFETY: AVX-512F (this function's contract); a tile's scales and
                        // l1s are sixteen values (the padding rows included).
                        let admitted = unsafe {
                            admit_512(_mm512_loadu_si512(sums.as_ptr().cast()), query, &quantized.scale[row..row + TILE], &quantized.l1[row..row + TILE], thresholds[i])
                        };
                        offer(matrix, quantized, query.unit, row, admitted, all, capacity[i], &mut heaps[i], &mut thresholds[i]);
                    }
                }
            }
        }
    }

    /// A tile's sixteen sums with AVX2, as two halves of eight rows: `vpmaddubsw` into i16
    /// pair sums, `vpmaddwd` by ones into each row's i32 lane.
    ///
    /// # Safety
    /// The CPU must support AVX2; as [`sums_vnni`] for the lengths; the query codes must lie
    /// within [`AVX2_LIMIT`].
    #[inline(always)]
    pub(super) unsafe fn sums_avx2(tile: &[u8], query: &[i32]) -> (__m256i, __m256i) {
        debug_assert!(tile.len() >= query.len() * GROUP_BYTES);
        // SAFETY: as this function's contract.
        unsafe {
            let ones = _mm256_set1_epi16(1);
            let (mut low, mut high) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            let mut at = tile.as_ptr();
            for &word in query {
                let d = _mm256_set1_epi32(word);
                let products = _mm256_maddubs_epi16(_mm256_loadu_si256(at.cast()), d);
                low = _mm256_add_epi32(low, _mm256_madd_epi16(products, ones));
                let products = _mm256_maddubs_epi16(_mm256_loadu_si256(at.add(32).cast()), d);
                high = _mm256_add_epi32(high, _mm256_madd_epi16(products, ones));
                at = at.add(GROUP_BYTES);
            }
            (low, high)
        }
    }

    /// [`super::portable_admit`] for eight rows' sums of [`sums_avx2`], in one vector.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `scale` and `l1` must hold eight values.
    #[inline(always)]
    pub(super) unsafe fn admit_avx2(sums: __m256i, query: &Query, scale: &[f32], l1: &[f32], floor: f32) -> u32 {
        debug_assert!(scale.len() >= 8 && l1.len() >= 8);
        unsafe {
            let sums = _mm256_sub_epi32(sums, _mm256_set1_epi32(query.offset));
            let dot = _mm256_fmadd_ps(_mm256_set1_ps(query.scale), _mm256_cvtepi32_ps(sums), _mm256_set1_ps(query.half_l1));
            let query_term = _mm256_mul_ps(_mm256_set1_ps(query.scale * 0.5), _mm256_loadu_ps(l1.as_ptr()));
            let upper = _mm256_fmadd_ps(_mm256_loadu_ps(scale.as_ptr()), dot, query_term);
            _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(upper, _mm256_set1_ps(floor))) as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// A full f32 scan with a sort: the reference the filtered search must equal.
    fn brute_force(matrix: &Array2<f32>, unit: &[f32], k: usize, exclude: &[usize]) -> Vec<(usize, f32)> {
        let mut all: Vec<Score> = matrix
            .rows()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !exclude.contains(i))
            .map(|(i, row)| Score(dot(row.as_slice().unwrap(), unit), i))
            .collect();
        all.sort_by(|a, b| b.cmp(a));
        all.into_iter().take(k).map(|s| (s.1, s.0)).collect()
    }

    fn unit_rows(rows: usize, dims: usize, seed: u64) -> Array2<f32> {
        let mut state = seed;
        let mut next = move || {
            // xorshift: reproducible without a dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut m = Array2::from_shape_fn((rows, dims), |_| next());
        for mut row in m.rows_mut() {
            let norm = row.dot(&row).sqrt();
            row /= norm;
        }
        m
    }

    #[test]
    fn equals_a_full_f32_scan() {
        for (rows, dims) in [(1, 3), (13, 50), (5000, 50), (3001, 300), (70_000, 20)] {
            let m = unit_rows(rows, dims, rows as u64 * 31 + dims as u64);
            let q = QuantizedRows::new(m.view());
            for (query_row, k) in [(0, 10), (rows / 2, 1), (rows - 1, 25)] {
                let unit = m.row(query_row).to_vec();
                for exclude in [vec![], vec![query_row]] {
                    for (kernel, parallel) in Kernel::available().into_iter().flat_map(|k| [(k, false), (k, true)]) {
                        let got = top_k_with(kernel, m.view(), &q, &unit, k, &exclude, parallel);
                        let want = brute_force(&m, &unit, k, &exclude);
                        assert_eq!(got, want, "{kernel:?}: {rows}x{dims} row {query_row} k {k}");
                    }
                    for parallel in [false, true] {
                        assert_eq!(top_k_f32(m.view(), &unit, k, &exclude, parallel), brute_force(&m, &unit, k, &exclude), "f32: {rows}x{dims}");
                    }
                }
            }
        }
    }

    #[test]
    fn near_ties_zero_rows_and_a_prefix_of_the_rows() {
        let mut m = unit_rows(200, 16, 7);
        // Rows that differ from the query by less than an 8-bit step: only exact scores order them.
        let base = m.row(3).to_owned();
        for (i, eps) in [(10usize, 1e-5f32), (11, 2e-5), (12, 0.0)] {
            let mut row = base.clone();
            row[0] += eps;
            let norm = row.dot(&row).sqrt();
            m.row_mut(i).assign(&(row / norm));
        }
        m.row_mut(20).fill(0.0);
        m.row_mut(21).fill(0.0);
        let q = QuantizedRows::new(m.view());
        assert_eq!(q.zero_rows(), [20, 21]);
        let unit = base.to_vec();
        let prefix = m.slice(ndarray::s![..100, ..]);
        for kernel in Kernel::available() {
            assert_eq!(top_k_with(kernel, m.view(), &q, &unit, 5, &[], false), brute_force(&m, &unit, 5, &[]));
            let want = brute_force(&prefix.to_owned(), &unit, 200, &[]);
            assert_eq!(top_k_with(kernel, prefix, &q, &unit, 200, &[], false), want);
        }
        // The f32 scan skips the zero rows that the 8-bit search's callers exclude.
        assert_eq!(top_k_f32(m.view(), &unit, 200, &[], false), brute_force(&m, &unit, 200, &[20, 21]));
        assert!(top_k(m.view(), &q, &unit, 0, &[], true).is_empty());
    }

    #[test]
    fn rows_too_small_for_the_reciprocal_of_their_largest_component() {
        // 127 / 1e-37 overflows to infinity, and 0 * inf is NaN: a zero component used to be
        // converted from NaN (i32::MIN, undefined behaviour) and the row's |c|_1 overflowed.
        let mut m = unit_rows(4, 4, 5);
        m.row_mut(1).assign(&ndarray::arr1(&[1e-37, 0.0, -5e-38, 0.0]));
        let q = QuantizedRows::new(m.view());
        let codes: Vec<u8> = q.stored(1).collect();
        assert_eq!((codes[0], codes[1], codes[3]), (128 + 127, 128, 128), "{codes:?}");
        // |c|_1 = 127 + 63.5 rounded one way or the other.
        assert!((q.l1[1] - 191.0 * q.scale[1]).abs() <= q.scale[1], "{} for scale {}", q.l1[1], q.scale[1]);
        let unit = m.row(0).to_vec();
        for kernel in Kernel::available() {
            assert_eq!(top_k_with(kernel, m.view(), &q, &unit, 4, &[], false), brute_force(&m, &unit, 4, &[]));
        }
    }

    #[test]
    fn codes_searched_as_they_are_equal_a_full_scan_of_their_unit_rows() {
        // The int8 file's rows: codes only, each row read as c / |c|; one all-zero row.
        let (rows, dims) = (3000, 50);
        let mut codes: Vec<i8> = unit_rows(rows, dims, 11).iter().map(|v| (v * 400.0).round().clamp(-127.0, 127.0) as i8).collect();
        codes[7 * dims..8 * dims].fill(0);
        let q = QuantizedRows::from_codes(&codes, dims);
        assert_eq!(q.zero_rows(), [7]);
        assert_eq!(q.row_codes(5).collect::<Vec<_>>(), codes[5 * dims..6 * dims]);
        let unit = Array2::from_shape_fn((rows, dims), |(r, i)| {
            let row = &codes[r * dims..(r + 1) * dims];
            let length = row.iter().map(|&c| f64::from(c).powi(2)).sum::<f64>().sqrt();
            if length == 0.0 { 0.0 } else { (f64::from(row[i]) / length) as f32 }
        });
        for query_row in [0, 1234, rows - 1] {
            let query = unit.row(query_row).to_vec();
            let want: Vec<usize> = brute_force(&unit, &query, 10, &[query_row, 7]).into_iter().map(|(r, _)| r).collect();
            for kernel in Kernel::available() {
                let got = top_k_with(kernel, Exact::Codes(rows), &q, &query, 10, &[query_row, 7], false);
                assert_eq!(got.iter().map(|(r, _)| *r).collect::<Vec<_>>(), want, "{kernel:?}");
                for (r, score) in got {
                    assert!((score - dot(unit.row(r).as_slice().unwrap(), &query)).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn batches_equal_a_full_f32_scan_with_every_kernel() {
        // Dimensions with only a short last group block (50), whole blocks of 64 codes only
        // (64), and both (100, 300); 37 queries, more than two AMX sets of sixteen, one of
        // them zero; rows not a whole number of tiles.
        for (rows, dims) in [(5003, 50), (2000, 64), (3001, 100), (1500, 300)] {
            let m = unit_rows(rows, dims, rows as u64 + 7 * dims as u64);
            let q = QuantizedRows::new(m.view());
            let units: Vec<Option<Vec<f32>>> = (0..37).map(|i| (i != 5).then(|| m.row(i * 97 % rows).to_vec())).collect();
            let excluded: Vec<Vec<usize>> = (0..37).map(|i| if i % 3 == 0 { vec![i * 97 % rows] } else { vec![] }).collect();
            let exclude: Vec<&[usize]> = excluded.iter().map(Vec::as_slice).collect();
            for kernel in Kernel::available() {
                let got = top_k_batch_with(kernel, m.view().into(), &q, &units, 10, &exclude);
                for (i, got) in got.iter().enumerate() {
                    let want = units[i].as_ref().map_or(vec![], |unit| brute_force(&m, unit, 10, &excluded[i]));
                    assert_eq!(*got, want, "{kernel:?}: {rows}x{dims} query {i}");
                }
                // The first rows only, as `nearest_batch`'s `restrict` passes them.
                let prefix = m.slice(ndarray::s![..rows / 2 + 3, ..]);
                let got = top_k_batch_with(kernel, prefix.into(), &q, &units[..3], 5, &exclude[..3]);
                for (i, got) in got.iter().enumerate() {
                    let unit = units[i].as_ref().unwrap();
                    assert_eq!(*got, brute_force(&prefix.to_owned(), unit, 5, &excluded[i]), "{kernel:?}: prefix, query {i}");
                }
            }
        }
    }

    #[test]
    fn simd_and_portable_kernels_agree() {
        // Three groups: the AVX-512 kernel's pairs and its odd one out.
        let groups = 3;
        let tile: Vec<u8> = (0..groups * GROUP_BYTES).map(|i| (i * 37 % 255 + 1) as u8).collect();
        let wide: Vec<i8> = (0..groups * GROUP).map(|i| (i * 7919 % 255) as i8).collect();
        let words = |codes: &[i8]| -> Vec<i32> { codes.chunks_exact(4).map(|d| i32::from_le_bytes([d[0] as u8, d[1] as u8, d[2] as u8, d[3] as u8])).collect() };
        let expected = portable_sums(&tile, &wide);
        // Row 5's components lie at byte 5 * 4 of each group.
        let row5: i32 = (0..groups * GROUP).map(|i| i32::from(tile[(i / GROUP) * GROUP_BYTES + 5 * GROUP + i % GROUP]) * i32::from(wide[i])).sum();
        assert_eq!(expected[5], row5);
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            use std::arch::x86_64::*;
            if has!("avx512f") && has!("avx512vnni") {
                let mut got = [0i32; TILE];
                // SAFETY: the features were detected; the tile holds a group per word.
                unsafe { _mm512_storeu_si512(got.as_mut_ptr().cast(), x86::sums_vnni(&tile, &words(&wide))) };
                assert_eq!(got, expected);
            }
            if has!("avx2") {
                let narrow: Vec<i8> = wide.iter().map(|&d| d.clamp(-x86::AVX2_LIMIT, x86::AVX2_LIMIT)).collect();
                let mut got = [0i32; TILE];
                // SAFETY: as above.
                unsafe {
                    let (low, high) = x86::sums_avx2(&tile, &words(&narrow));
                    _mm256_storeu_si256(got.as_mut_ptr().cast(), low);
                    _mm256_storeu_si256(got.as_mut_ptr().add(8).cast(), high);
                }
                assert_eq!(got, portable_sums(&tile, &narrow));
            }
        }
    }
}
