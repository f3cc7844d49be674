//! Dot products in f64, each summed in input order as a plain loop sums it, many side by side.
//!
//! A report's measures (cosines, Gram matrices, power iteration, neighbour lists) take millions
//! of dot products of a few hundred products each. One sum in order waits on each addition,
//! and a BLAS would reorder the sums. Here each sum keeps the plain loop's order, so the results
//! are [`cosine64`](super::cosine64)'s and `Iterator::sum`'s bit for bit (an f32 product is
//! exact in f64), while [`LANES`] rows run in the lanes of one vector register: the rows are
//! first interleaved, [`LANES`] at a time ([`Interleaved`]).
//!
//! `start` is the sum's first value: `0.0` for a loop of `+=` from zero (as `cosine64`), `-0.0`
//! for `Iterator::sum` (which starts there, so that an all `-0.0` sum stays `-0.0`).

use crate::simd::multiversion;

/// Rows summed side by side: one vector register of f64.
pub(crate) const LANES: usize = 8;
/// Rows whose dot products with a block of [`LANES`] rows [`group_dots`] takes together.
pub(crate) const QUERIES: usize = 4;

/// Rows of one length in f64, [`LANES`] at a time interleaved: block `b`, input `k`, lane `l`
/// at `(b * dim + k) * LANES + l`. The lanes past the last row hold zeros; rows of no inputs
/// still take a block of zeros per [`LANES`] rows, so that they have (zero) dot products.
pub(crate) struct Interleaved {
    values: Vec<f64>,
    rows: usize,
    dim: usize,
}

impl Interleaved {
    /// `None` unless every row has the same length.
    pub(crate) fn new<T: Copy + Into<f64>>(rows: &[&[T]]) -> Option<Interleaved> {
        let dim = rows.first().map_or(0, |r| r.len());
        if rows.iter().any(|r| r.len() != dim) {
            return None;
        }
        Some(Self::from_fn(rows.len(), dim, |j, k| rows[j][k].into()))
    }

    /// `rows` rows of `dim` inputs, input `k` of row `j` being `value(j, k)`: rows computed on
    /// the way (centred, scaled) without a copy of their own.
    pub(crate) fn from_fn(rows: usize, dim: usize, value: impl Fn(usize, usize) -> f64) -> Interleaved {
        let stride = dim.max(1);
        let mut values = vec![0f64; rows.div_ceil(LANES) * stride * LANES];
        // Column by column, so that the writes are contiguous.
        for (b, block) in values.chunks_exact_mut(stride * LANES).enumerate() {
            let lanes = (rows - b * LANES).min(LANES);
            for (k, column) in block.chunks_exact_mut(LANES).take(dim).enumerate() {
                for (l, slot) in column[..lanes].iter_mut().enumerate() {
                    *slot = value(b * LANES + l, k);
                }
            }
        }
        Interleaved { values, rows, dim }
    }

    /// The rows' length.
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// The blocks of [`LANES`] rows, in order.
    pub(crate) fn blocks(&self) -> std::slice::ChunksExact<'_, f64> {
        self.values.chunks_exact(self.dim.max(1) * LANES)
    }

    /// Rows `first..first + QUERIES` (fewer at the end: zeros), interleaved for [`group_dots`]:
    /// input `k` of query `q` at `k * QUERIES + q`.
    pub(crate) fn group(&self, first: usize) -> Vec<f64> {
        let mut group = vec![0f64; self.dim * QUERIES];
        for (q, row) in (first..self.rows.min(first + QUERIES)).enumerate() {
            let block = &self.values[row / LANES * self.dim.max(1) * LANES..];
            for k in 0..self.dim {
                group[k * QUERIES + q] = block[k * LANES + row % LANES];
            }
        }
        group
    }

    /// `x` (of length [`dim`](Self::dim)) with each row, each sum from `start` in input order.
    pub(crate) fn dots_with(&self, x: &[f64], start: f64) -> Vec<f64> {
        assert_eq!(x.len(), self.dim, "a query as long as the rows");
        let mut out = Vec::with_capacity(self.rows.next_multiple_of(LANES));
        for block in self.blocks() {
            let mut sums = [start; LANES];
            block_dots_dispatch(x, block, &mut sums);
            out.extend(sums);
        }
        out.truncate(self.rows);
        out
    }

    /// Each row with itself.
    pub(crate) fn squares(&self, start: f64) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.rows.next_multiple_of(LANES));
        for block in self.blocks() {
            let mut sums = [start; LANES];
            block_squares_dispatch(block, &mut sums);
            out.extend(sums);
        }
        out.truncate(self.rows);
        out
    }

    /// Every row with every row, row-major `rows x rows`: entry `(i, j)` equals `(j, i)` bit
    /// for bit (the same products in the same order), so each pair is summed once.
    pub(crate) fn gram(&self, start: f64) -> Vec<f64> {
        let n = self.rows;
        let mut matrix = vec![0f64; n * n];
        for first in (0..n).step_by(QUERIES) {
            let group = self.group(first);
            let last = n.min(first + QUERIES);
            for (b, block) in self.blocks().enumerate().skip(first / LANES) {
                let mut dots = [[start; LANES]; QUERIES];
                group_dots_dispatch(&group, block, &mut dots);
                for (i, dots) in (first..last).zip(&dots) {
                    for (j, &dot) in (b * LANES..n.min((b + 1) * LANES)).zip(dots).filter(|&(j, _)| j >= first) {
                        matrix[i * n + j] = dot;
                        matrix[j * n + i] = dot;
                    }
                }
            }
        }
        matrix
    }
}

/// `dots[q][l] += x_q · row l` of a group of [`QUERIES`] interleaved rows ([`Interleaved::group`])
/// and a block of [`LANES`] rows, each sum in input order. Every size is fixed, so the sums stay
/// in registers: one vector register per query.
#[inline(always)]
fn group_kernel(xs: &[f64], block: &[f64], dots: &mut [[f64; LANES]; QUERIES]) {
    let mut sums = *dots;
    for (x, column) in xs.chunks_exact(QUERIES).zip(block.chunks_exact(LANES)) {
        for (&v, sums) in x.iter().zip(sums.iter_mut()) {
            for (sum, &w) in sums.iter_mut().zip(column) {
                *sum += v * w;
            }
        }
    }
    *dots = sums;
}

multiversion!(avx512 group_dots_dispatch(xs: &[f64], block: &[f64], dots: &mut [[f64; LANES]; QUERIES]) => group_kernel);

/// [`group_kernel`] in the widest instructions the CPU has.
pub(crate) fn group_dots(xs: &[f64], block: &[f64], dots: &mut [[f64; LANES]; QUERIES]) {
    group_dots_dispatch(xs, block, dots);
}

/// `sums[l] += x · row l` of a block of [`LANES`] rows.
#[inline(always)]
fn block_dots(x: &[f64], block: &[f64], sums: &mut [f64; LANES]) {
    let mut s = *sums;
    for (&v, column) in x.iter().zip(block.chunks_exact(LANES)) {
        for (sum, &w) in s.iter_mut().zip(column) {
            *sum += v * w;
        }
    }
    *sums = s;
}

multiversion!(avx512 block_dots_dispatch(x: &[f64], block: &[f64], sums: &mut [f64; LANES]) => block_dots);

/// `sums[l] += row l · row l` of a block of [`LANES`] rows.
#[inline(always)]
fn block_squares(block: &[f64], sums: &mut [f64; LANES]) {
    let mut s = *sums;
    for column in block.chunks_exact(LANES) {
        for (sum, &w) in s.iter_mut().zip(column) {
            *sum += w * w;
        }
    }
    *sums = s;
}

multiversion!(avx512 block_squares_dispatch(block: &[f64], sums: &mut [f64; LANES]) => block_squares);

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(seed: u64, n: usize, d: usize) -> Vec<Vec<f32>> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect()).collect()
    }

    /// The plain loops these must equal bit for bit.
    fn plain(x: &[f32], y: &[f32], start: f64) -> f64 {
        let mut sum = start;
        for (&a, &b) in x.iter().zip(y) {
            sum += f64::from(a) * f64::from(b);
        }
        sum
    }

    #[test]
    fn every_sum_is_the_plain_loops_bit_for_bit() {
        // 13 rows: a partial block and a partial group; -0.0 sums from rows of zeros.
        let mut x = rows(9, 11, 37);
        x.push(vec![0.0; 37]);
        x.push(vec![-0.0; 37]);
        let refs: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
        let rows = Interleaved::new(&refs).expect("one length");
        for start in [0.0, -0.0] {
            let gram = rows.gram(start);
            let squares = rows.squares(start);
            let query: Vec<f64> = x[4].iter().map(|&v| f64::from(v)).collect();
            let dots = rows.dots_with(&query, start);
            for i in 0..x.len() {
                assert_eq!(squares[i].to_bits(), plain(&x[i], &x[i], start).to_bits());
                assert_eq!(dots[i].to_bits(), plain(&x[4], &x[i], start).to_bits());
                for j in 0..x.len() {
                    assert_eq!(gram[i * x.len() + j].to_bits(), plain(&x[i], &x[j], start).to_bits(), "({i}, {j}) from {start}");
                }
            }
        }
        let short = [&x[0][..3], &x[1][..]];
        assert!(Interleaved::new(&short).is_none(), "rows of different lengths");
    }
}
