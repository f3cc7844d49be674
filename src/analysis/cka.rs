//! Model-to-model similarity over the same occurrences: linear CKA and nearest-neighbour overlap.
//!
//! Both compare two sets of vectors whose rows are the same occurrences in the same order
//! (engine A's and engine B's vectors of one sample of words in sentences), so they work
//! across engines of different widths and kinds.
//!
//! Linear CKA follows Kornblith et al. 2019, "Similarity of Neural Network Representations
//! Revisited". The default, [`linear_cka`], uses the unbiased HSIC estimator (Song et al. 2012),
//! as Kornblith et al.'s `feature_space_linear_cka(..., debiased=True)` does: the plain estimator
//! is biased upwards for the small samples a report draws (a few hundred occurrences of
//! 384-768 dimensions), where even unrelated representations score well above zero.
//!
//! The computation stays in feature space (`Xᵀ Y`, `d_a x d_b`) rather than building `n x n`
//! Gram matrices, so memory does not grow with the square of the sample.

use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{Array1, Array2, Axis};
use rayon::prelude::*;

use super::cosine64;
use super::dots::{self, Interleaved, LANES, QUERIES};

use crate::engine::LayerVectors;

/// One layer's vectors of a sample, centred and summarised for CKA against other layers.
///
/// Preparing once and comparing many times is what [`cka_matrix`] does: with `L_a` and `L_b`
/// layers it centres `L_a + L_b` matrices, not `L_a x L_b`.
#[derive(Clone, Debug)]
pub struct CkaInput {
    centred: Array2<f64>,
    row_squares: Array1<f64>,
    squared_norm: f64,
    /// `‖XᵀX‖²_F`, the numerator of CKA of the layer with itself.
    self_product: f64,
}

impl CkaInput {
    /// Centres `rows` (one vector per occurrence, all the same length); `None` when there are
    /// no rows or the rows have no dimensions or different lengths.
    pub fn new<R: AsRef<[f32]>>(rows: &[R]) -> Option<CkaInput> {
        let n = rows.len();
        let d = rows.first()?.as_ref().len();
        if d == 0 || rows.iter().any(|r| r.as_ref().len() != d) {
            return None;
        }
        let mut x = Array2::<f64>::zeros((n, d));
        for (mut row, r) in x.axis_iter_mut(Axis(0)).zip(rows) {
            for (dst, &src) in row.iter_mut().zip(r.as_ref()) {
                *dst = f64::from(src);
            }
        }
        let mean = x.mean_axis(Axis(0))?;
        x -= &mean;
        let row_squares = x.map_axis(Axis(1), |row| row.dot(&row));
        let squared_norm = row_squares.sum();
        let self_product = frobenius_squared(&x.t().dot(&x));
        Some(CkaInput { centred: x, row_squares, squared_norm, self_product })
    }

    /// Number of occurrences.
    pub fn len(&self) -> usize {
        self.centred.nrows()
    }

    /// Whether there are no occurrences.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Linear CKA with `other` (the same occurrences in the same order), debiased or not.
    ///
    /// `None` when the sample is too small (fewer than 4 occurrences debiased, 2 plain), when
    /// the two inputs hold different numbers of occurrences, or when either side does not vary
    /// (a static engine over occurrences of a single word gives every row the same vector:
    /// similarity to it is undefined, not zero).
    pub fn cka(&self, other: &CkaInput, debiased: bool) -> Option<f64> {
        let n = self.len();
        if n != other.len() || n < if debiased { 4 } else { 2 } {
            return None;
        }
        let cross = frobenius_squared(&self.centred.t().dot(&other.centred));
        let (xy, xx, yy) = if debiased {
            (
                self.debias(cross, other),
                self.debias(self.self_product, self),
                other.debias(other.self_product, other),
            )
        } else {
            (cross, self.self_product, other.self_product)
        };
        let denominator = (xx * yy).sqrt();
        if xx <= 0.0 || yy <= 0.0 || xx.is_nan() || yy.is_nan() || !denominator.is_finite() {
            return None;
        }
        Some(xy / denominator)
    }

    /// The unbiased HSIC estimate (up to a factor shared by numerator and denominator) from
    /// `‖XᵀY‖²_F`: Kornblith et al.'s `_debiased_dot_product_similarity_helper`.
    fn debias(&self, product: f64, other: &CkaInput) -> f64 {
        let n = self.len() as f64;
        product - n / (n - 2.0) * self.row_squares.dot(&other.row_squares)
            + self.squared_norm * other.squared_norm / ((n - 1.0) * (n - 2.0))
    }
}

fn frobenius_squared(m: &Array2<f64>) -> f64 {
    m.iter().map(|v| v * v).sum()
}

/// Debiased linear CKA between two representations of the same occurrences (rows in the same
/// order); in `[-something small, 1]`, 1 for representations equal up to rotation and scale.
///
/// `None` when it is undefined: fewer than 4 rows, different row counts, or a side that does
/// not vary.
pub fn linear_cka<X: AsRef<[f32]>, Y: AsRef<[f32]>>(x: &[X], y: &[Y]) -> Option<f64> {
    CkaInput::new(x)?.cka(&CkaInput::new(y)?, true)
}

/// Linear CKA with the plain (biased) HSIC estimator, as most papers before 2021 report it.
pub fn linear_cka_biased<X: AsRef<[f32]>, Y: AsRef<[f32]>>(x: &[X], y: &[Y]) -> Option<f64> {
    CkaInput::new(x)?.cka(&CkaInput::new(y)?, false)
}

/// Debiased linear CKA between every layer of `a` and every layer of `b`: `matrix[i][j]`
/// compares layer `i` of `a` with layer `j` of `b`. `a[k]` and `b[k]` are the two engines'
/// vectors of occurrence `k`.
///
/// Empty when the two samples differ in length; an entry is `None` where CKA is undefined
/// (see [`linear_cka`]).
pub fn cka_matrix(a: &[LayerVectors], b: &[LayerVectors]) -> Vec<Vec<Option<f64>>> {
    if a.len() != b.len() {
        return Vec::new();
    }
    let prepare = |side: &[LayerVectors]| -> Vec<Option<CkaInput>> {
        let layers = side.iter().map(LayerVectors::num_layers).min().unwrap_or(0);
        (0..layers)
            .map(|l| {
                let rows: Vec<&[f32]> = side.iter().filter_map(|v| v.layer(l)).collect();
                CkaInput::new(&rows)
            })
            .collect()
    };
    let (a, b) = (prepare(a), prepare(b));
    a.iter()
        .map(|x| {
            b.iter()
                .map(|y| match (x, y) {
                    (Some(x), Some(y)) => x.cka(y, true),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// The `k` nearest other rows of each row by cosine (in f64), nearest first; ties go to the
/// lower index so the result does not depend on sort stability.
///
/// The same cosines as [`cosine64`], bit for bit (f32 products are exact in f64, and each sum
/// runs in the same order), but with each row's norm computed once, the dot products of four
/// rows with eight others side by side (a vector register's lanes, see `analysis::dots`), in
/// parallel, each pair once (up to 2,048 rows, whose cosines it keeps: 32 MB at most), and only
/// the `k` nearest sorted: a report's 2,000 occurrences used to take seconds per layer here.
/// Rows of different lengths fall back to each pair's own `cosine64`.
pub fn nearest_neighbours<R: AsRef<[f32]> + Sync>(rows: &[R], k: usize) -> Vec<Vec<usize>> {
    nearest_neighbours_upto(rows, k, SYMMETRIC_ROWS)
}

/// [`nearest_neighbours`], keeping all cosines up to `symmetric_rows` rows.
fn nearest_neighbours_upto<R: AsRef<[f32]> + Sync>(rows: &[R], k: usize, symmetric_rows: usize) -> Vec<Vec<usize>> {
    let n = rows.len();
    let score = |c: f64| if c.is_nan() { f64::NEG_INFINITY } else { c };
    let refs: Vec<&[f32]> = rows.iter().map(AsRef::as_ref).collect();
    let Some(interleaved) = Interleaved::new(&refs) else {
        // Rows of different lengths (never in a report): each pair's own cosine.
        return (0..n).into_par_iter().map(|i| top((0..n).filter(|&j| j != i).map(|j| (score(cosine64(refs[i], refs[j])), j)), k)).collect();
    };
    let roots: Vec<f64> = interleaved.squares(0.0).into_iter().map(f64::sqrt).collect();
    let blocks = || interleaved.blocks().enumerate();
    // A zero row has a zero dot product too: 0 / 0, like `cosine64`'s NaN, ranked last.
    let cosine = |i: usize, j: usize, dot: f64| score(dot / (roots[i] * roots[j]));
    let dots_of = |group: &[f64], block: &[f64]| {
        let mut dots = [[0f64; LANES]; QUERIES];
        dots::group_dots(group, block, &mut dots);
        dots
    };
    if n <= symmetric_rows {
        // Each pair once: the cosine of rows i and j is the cosine of j and i bit for bit (the
        // same products, summed in the same order), so a group scores only the rows from its
        // own first on and also gives each later row its cosine. Every entry is written by one
        // group: (i, j) by the group of the smaller of the two.
        let matrix: Vec<AtomicU64> = (0..n * n).map(|_| AtomicU64::new(0)).collect();
        (0..n.div_ceil(QUERIES)).into_par_iter().for_each(|g| {
            let first = g * QUERIES;
            let group = interleaved.group(first);
            let last = n.min(first + QUERIES);
            for (b, block) in blocks().skip(first / LANES) {
                let dots = dots_of(&group, block);
                for (i, dots) in (first..last).zip(&dots) {
                    for (j, &dot) in (b * LANES..n.min((b + 1) * LANES)).zip(dots) {
                        if j < first || j == i {
                            continue;
                        }
                        let c = cosine(i, j, dot).to_bits();
                        matrix[i * n + j].store(c, Ordering::Relaxed);
                        if j >= last {
                            matrix[j * n + i].store(c, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
        return (0..n)
            .into_par_iter()
            .map(|i| top((0..n).filter(|&j| j != i).map(|j| (f64::from_bits(matrix[i * n + j].load(Ordering::Relaxed)), j)), k))
            .collect();
    }
    let groups: Vec<Vec<Vec<usize>>> = (0..n.div_ceil(QUERIES))
        .into_par_iter()
        .map(|g| {
            let first = g * QUERIES;
            let group = interleaved.group(first);
            let mut scored: Vec<Vec<(f64, usize)>> = vec![Vec::with_capacity(n); n.min(first + QUERIES) - first];
            for (b, block) in blocks() {
                let dots = dots_of(&group, block);
                for ((i, dots), scored) in (first..).zip(&dots).zip(scored.iter_mut()) {
                    for (j, &dot) in (b * LANES..n.min((b + 1) * LANES)).zip(dots) {
                        if j != i {
                            scored.push((cosine(i, j, dot), j));
                        }
                    }
                }
            }
            scored.into_iter().map(|scored| top(scored.into_iter(), k)).collect()
        })
        .collect();
    groups.into_iter().flatten().collect()
}

/// The indices of the `k` best of `scored` (cosine, index), nearest first: the higher cosine
/// ([`f64::total_cmp`]), then the lower index. The order is total, so the `k` best are one set
/// however they come; a candidate that does not beat the `k`-th so far costs one comparison.
fn top(scored: impl Iterator<Item = (f64, usize)>, k: usize) -> Vec<usize> {
    let before = |p: &(f64, usize), q: &(f64, usize)| q.0.total_cmp(&p.0).then(p.1.cmp(&q.1));
    let mut best: Vec<(f64, usize)> = Vec::with_capacity(k + 1);
    for candidate in scored {
        if best.len() == k && (k == 0 || before(&best[k - 1], &candidate).is_lt()) {
            continue;
        }
        let at = best.partition_point(|kept| before(kept, &candidate).is_lt());
        best.insert(at, candidate);
        best.truncate(k);
    }
    best.into_iter().map(|(_, j)| j).collect()
}

/// Rows up to which [`nearest_neighbours`] keeps all cosines (8 bytes each: 32 MB at most) and
/// computes each pair once; a report compares at most 2,000 occurrences.
const SYMMETRIC_ROWS: usize = 2048;

/// Share of each occurrence's `k` nearest other occurrences (by cosine) that `x` and `y` agree
/// on, averaged over occurrences: 1 when both representations rank every neighbourhood alike.
///
/// `k` is capped at `n - 1`. `None` with fewer than two rows, different row counts or `k = 0`.
pub fn neighbour_overlap<X: AsRef<[f32]> + Sync, Y: AsRef<[f32]> + Sync>(x: &[X], y: &[Y], k: usize) -> Option<f64> {
    let n = x.len();
    if n != y.len() || n < 2 || k == 0 {
        return None;
    }
    let k = k.min(n - 1);
    Some(shared_neighbours(&nearest_neighbours(x, k), &nearest_neighbours(y, k)))
}

/// [`neighbour_overlap`] from the neighbour lists of [`nearest_neighbours`] (the same `k` and
/// rows on both sides, at least one row): to reuse one side's lists against several others.
pub fn shared_neighbours(x: &[Vec<usize>], y: &[Vec<usize>]) -> f64 {
    let shared: usize = x.iter().zip(y).map(|(a, b)| a.iter().filter(|j| b.contains(j)).count()).sum();
    let listed: usize = x.iter().map(Vec::len).sum();
    shared as f64 / listed as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(seed: u64, n: usize, d: usize) -> Vec<Vec<f32>> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect()).collect()
    }

    #[test]
    fn invariant_to_rotation_scale_and_shift() {
        let x = rows(1, 30, 5);
        // A permutation of dimensions with sign flips is orthogonal; scale and shift on top.
        let y: Vec<Vec<f32>> = x.iter().map(|r| vec![-3.0 * r[2] + 1.0, 3.0 * r[0], 3.0 * r[4], -3.0 * r[1], 3.0 * r[3] - 2.0]).collect();
        assert!((linear_cka(&x, &y).unwrap() - 1.0).abs() < 1e-9);
        assert!((linear_cka_biased(&x, &y).unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(neighbour_overlap(&x, &x, 5), Some(1.0));
    }

    #[test]
    fn nearest_neighbours_rank_as_cosine64_does_with_and_without_the_matrix() {
        // Duplicated and zero rows give ties and NaN cosines; 37 rows leave partial groups and blocks.
        let mut x = rows(4, 33, 7);
        x.extend([x[3].clone(), x[3].clone(), vec![0.0; 7], x[30].iter().map(|v| v * 2.0).collect()]);
        let k = 6;
        let want: Vec<Vec<usize>> = (0..x.len())
            .map(|i| {
                let mut scored: Vec<(f64, usize)> = (0..x.len()).filter(|&j| j != i).map(|j| ({ let c = crate::analysis::cosine64(&x[i], &x[j]); if c.is_nan() { f64::NEG_INFINITY } else { c } }, j)).collect();
                scored.sort_by(|p, q| q.0.total_cmp(&p.0).then(p.1.cmp(&q.1)));
                scored.into_iter().take(k).map(|(_, j)| j).collect()
            })
            .collect();
        assert_eq!(nearest_neighbours_upto(&x, k, usize::MAX), want, "each pair once");
        assert_eq!(nearest_neighbours_upto(&x, k, 0), want, "every pair");
    }

    #[test]
    fn undefined_cases_are_none() {
        let x = rows(2, 3, 4);
        assert_eq!(linear_cka(&x, &x), None, "debiased needs 4 rows");
        let constant = vec![vec![1.0f32, 2.0]; 10];
        assert_eq!(linear_cka(&rows(3, 10, 2), &constant), None);
        assert_eq!(neighbour_overlap(&x, &x, 0), None);
        assert!(cka_matrix(&[], &[LayerVectors::new(vec![vec![1.0]])]).is_empty());
    }
}
