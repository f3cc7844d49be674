//! Similarity measures and projections over occurrence vectors.

pub mod cka;
mod dots;

use dots::Interleaved;
pub mod postprocess;

/// Cosine similarity; `NaN` when either vector is all zeros (the cosine is undefined there).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    cosine64(a, b).clamp(-1.0, 1.0) as f32
}

/// [`cosine`] in f64, unclamped: for rankings and measures that numpy computes in f64, where
/// rounding to f32 would tie neighbours that differ in the eighth digit.
pub fn cosine64(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += f64::from(x) * f64::from(y);
        na += f64::from(x) * f64::from(x);
        nb += f64::from(y) * f64::from(y);
    }
    cosine_of(dot, na, nb)
}

/// The cosine from a dot product and two squared norms, as [`cosine64`] finishes it.
fn cosine_of(dot: f64, na: f64, nb: f64) -> f64 {
    if na == 0.0 || nb == 0.0 {
        return f64::NAN;
    }
    dot / (na.sqrt() * nb.sqrt())
}

/// [`cosine64`] of `target` with each of `others`, bit for bit, with each norm computed once
/// and the sums of several others side by side.
pub fn cosines64<O: AsRef<[f32]>>(target: &[f32], others: &[O]) -> Vec<f64> {
    let rows: Vec<&[f32]> = others.iter().map(AsRef::as_ref).collect();
    match Interleaved::new(&rows).filter(|r| r.dim() == target.len()) {
        Some(rows) => {
            // Norms apart: with vectors of one length, the same sums as each pair's own.
            let norm = target.iter().fold(0f64, |s, &x| s + f64::from(x) * f64::from(x));
            let wide: Vec<f64> = target.iter().map(|&x| f64::from(x)).collect();
            rows.dots_with(&wide, 0.0).into_iter().zip(rows.squares(0.0)).map(|(dot, other)| cosine_of(dot, norm, other)).collect()
        }
        // cosine64's sums stop at the shorter vector: its norms depend on the pair.
        None => rows.iter().map(|o| cosine64(target, o)).collect(),
    }
}

/// Every row's dot product with every row (row-major), each summed in order as `Iterator::sum`
/// sums it, bit for bit; `None` unless the rows have one length.
pub(crate) fn gram_in_order(rows: &[&[f64]]) -> Option<Vec<f64>> {
    Some(Interleaved::new(rows)?.gram(-0.0))
}

/// The matrix of pairwise cosines between `vectors` ([`cosine`] of each pair).
pub fn cosine_matrix<V: AsRef<[f32]>>(vectors: &[V]) -> Vec<Vec<f32>> {
    let n = vectors.len();
    let rows: Vec<&[f32]> = vectors.iter().map(AsRef::as_ref).collect();
    // Every dot product once, norms on the diagonal: the same sums as each pair's own.
    let gram = Interleaved::new(&rows).map(|r| r.gram(0.0));
    let cosine = |i: usize, j: usize| match &gram {
        Some(g) => cosine_of(g[i * n + j], g[i * n + i], g[j * n + j]),
        None => cosine64(rows[i], rows[j]),
    };
    (0..n).map(|i| (0..n).map(|j| cosine(i.min(j), i.max(j)).clamp(-1.0, 1.0) as f32).collect()).collect()
}

/// The mean of the off-diagonal entries (each pair once); `NaN` with fewer than two rows.
pub fn mean_off_diagonal(matrix: &[Vec<f32>]) -> f32 {
    let n = matrix.len();
    if n < 2 {
        return f32::NAN;
    }
    let sum: f64 = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).map(|(i, j)| f64::from(matrix[i][j])).sum();
    (sum / (n * (n - 1) / 2) as f64) as f32
}

/// The leading principal components of a set of vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct Pca {
    /// Coordinates of each input vector on each component: `projections[i][c]`.
    pub projections: Vec<Vec<f32>>,
    /// Share of the total variance each component explains, in `[0, 1]`, largest first.
    pub explained_variance_ratio: Vec<f32>,
}

/// Principal component analysis of `vectors` (all the same length), keeping `k` components.
///
/// Works on the `n x n` Gram matrix of the centred vectors when there are fewer vectors than
/// dimensions (the common case: a few sentences of 384-dim vectors) and on the `d x d`
/// covariance otherwise, with power iteration and deflation; deterministic.
pub fn pca<V: AsRef<[f32]>>(vectors: &[V], k: usize) -> Pca {
    let n = vectors.len();
    let d = vectors.first().map_or(0, |v| v.as_ref().len());
    if n == 0 || d == 0 {
        return Pca { projections: vec![Vec::new(); n], explained_variance_ratio: Vec::new() };
    }
    let mut mean = vec![0f64; d];
    for v in vectors {
        for (m, &x) in mean.iter_mut().zip(v.as_ref()) {
            *m += f64::from(x) / n as f64;
        }
    }
    let use_gram = n <= d;
    let size = if use_gram { n } else { d };
    let rows: Vec<&[f32]> = vectors.iter().map(AsRef::as_ref).collect();
    // With the Gram matrix of rows of one length, the centred rows go straight into the
    // interleaved layout of its sums; otherwise they are kept for the loops below.
    let interleaved = (use_gram && rows.iter().all(|r| r.len() == d)).then(|| Interleaved::from_fn(n, d, |j, k| f64::from(rows[j][k]) - mean[k]));
    let centred: Vec<Vec<f64>> = match interleaved {
        Some(_) => Vec::new(),
        None => rows.iter().map(|v| v.iter().zip(&mean).map(|(&x, m)| f64::from(x) - m).collect()).collect(),
    };
    let mut matrix = match interleaved {
        Some(rows) => rows.gram(-0.0).chunks_exact(size).map(<[f64]>::to_vec).collect(),
        None => {
            let mut matrix = vec![vec![0f64; size]; size];
            for i in 0..size {
                for j in i..size {
                    let value = if use_gram {
                        centred[i].iter().zip(&centred[j]).map(|(a, b)| a * b).sum::<f64>()
                    } else {
                        centred.iter().map(|row| row[i] * row[j]).sum::<f64>()
                    };
                    matrix[i][j] = value;
                    matrix[j][i] = value;
                }
            }
            matrix
        }
    };
    let total: f64 = (0..size).map(|i| matrix[i][i]).sum();
    let k = k.min(size);
    let mut projections = vec![vec![0f32; k]; n];
    let mut ratios = Vec::with_capacity(k);
    for c in 0..k {
        let (value, vector) = power_iteration(&matrix, c);
        ratios.push(if total > 0.0 { (value.max(0.0) / total) as f32 } else { 0.0 });
        for (i, p) in projections.iter_mut().enumerate() {
            p[c] = if use_gram {
                // With the Gram matrix, the projection is the eigenvector scaled by sqrt(eigenvalue).
                (vector[i] * value.max(0.0).sqrt()) as f32
            } else {
                centred[i].iter().zip(&vector).map(|(a, b)| a * b).sum::<f64>() as f32
            };
        }
        for i in 0..size {
            for j in 0..size {
                matrix[i][j] -= value * vector[i] * vector[j];
            }
        }
    }
    Pca { projections, explained_variance_ratio: ratios }
}

/// The dominant eigenpair of a symmetric positive semi-definite matrix; `seed` varies the start.
fn power_iteration(matrix: &[Vec<f64>], seed: usize) -> (f64, Vec<f64>) {
    let size = matrix.len();
    let mut vector: Vec<f64> = (0..size).map(|i| 1.0 + ((i * 7 + seed * 13) % 11) as f64 / 11.0).collect();
    let mut value = 0.0;
    let rows = Interleaved::new(&matrix.iter().map(Vec::as_slice).collect::<Vec<_>>()).expect("a square matrix");
    for _ in 0..500 {
        let next = rows.dots_with(&vector, -0.0);
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return (0.0, vector);
        }
        let next: Vec<f64> = next.iter().map(|x| x / norm).collect();
        let change: f64 = next.iter().zip(&vector).map(|(a, b)| (a - b).abs()).sum();
        vector = next;
        value = norm;
        if change < 1e-12 {
            break;
        }
    }
    // A sign convention keeps results stable: the largest component is positive.
    let largest = vector.iter().cloned().fold(0f64, |m, x| if x.abs() > m.abs() { x } else { m });
    if largest < 0.0 {
        vector.iter_mut().for_each(|x| *x = -*x);
    }
    (value, vector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_main_axis_either_way_round() {
        // Points on the line y = 2x plus small noise on z: the first component explains nearly all.
        let points: Vec<Vec<f32>> = (0..6).map(|i| vec![i as f32, 2.0 * i as f32, if i % 2 == 0 { 0.01 } else { -0.01 }]).collect();
        let many = pca(&points, 2);
        assert!(many.explained_variance_ratio[0] > 0.999, "{:?}", many.explained_variance_ratio);
        let spread: Vec<f32> = many.projections.iter().map(|p| p[0]).collect();
        for w in spread.windows(2) {
            assert!(((w[1] - w[0]).abs() - 5f32.sqrt()).abs() < 1e-3, "evenly spaced along the line: {spread:?}");
        }
        // Fewer points than dimensions goes through the Gram matrix; same variance shares.
        let wide: Vec<Vec<f32>> = points.iter().map(|p| { let mut w = p.clone(); w.extend([0.0; 10]); w }).collect();
        let few = pca(&wide, 2);
        for (a, b) in few.explained_variance_ratio.iter().zip(&many.explained_variance_ratio) {
            assert!((a - b).abs() < 1e-4);
        }
        for (a, b) in few.projections.iter().zip(&many.projections) {
            assert!((a[0].abs() - b[0].abs()).abs() < 1e-3);
        }
    }

    #[test]
    fn cosine_basics() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(cosine(&[1.0, 2.0], &[-2.0, -4.0]), -1.0);
        assert!(cosine(&[0.0, 0.0], &[1.0, 1.0]).is_nan());
    }

    #[test]
    fn matrix_and_mean() {
        let m = cosine_matrix(&[vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]]);
        assert_eq!(m[0][1], 0.0);
        assert_eq!(m[1][0], 0.0);
        assert!((m[2][2] - 1.0).abs() < 1e-6);
        let expected = (0.0 + 2.0 * std::f32::consts::FRAC_1_SQRT_2) / 3.0;
        assert!((mean_off_diagonal(&m) - expected).abs() < 1e-6);
        assert!(mean_off_diagonal(&m[..1]).is_nan());
    }

    #[test]
    fn batched_cosines_are_each_pairs_own_bit_for_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        // 11 vectors (a partial block of eight), a zero one, a duplicate, a negated one.
        let mut x: Vec<Vec<f32>> = (0..11).map(|_| (0..29).map(|_| rng.random_range(-1.0..1.0)).collect()).collect();
        x.extend([vec![0.0; 29], x[2].clone(), x[3].iter().map(|v| -v).collect()]);
        let matrix = cosine_matrix(&x);
        for (i, a) in x.iter().enumerate() {
            let batched = cosines64(a, &x);
            for (j, b) in x.iter().enumerate() {
                assert_eq!(batched[j].to_bits(), cosine64(a, b).to_bits(), "cosines64 ({i}, {j})");
                assert_eq!(matrix[i][j].to_bits(), cosine(a, b).to_bits(), "cosine_matrix ({i}, {j})");
            }
        }
        // Vectors of different lengths: each pair's cosine64 over the shorter length.
        let ragged = [x[0][..5].to_vec(), x[1].clone()];
        assert_eq!(cosines64(&x[2], &ragged)[0].to_bits(), cosine64(&x[2], &ragged[0]).to_bits());
        assert_eq!(cosine_matrix(&ragged)[0][1].to_bits(), cosine(&ragged[0], &ragged[1]).to_bits());
    }
}
