//! Similarity measures over occurrence vectors.

/// Cosine similarity; `NaN` when either vector is all zeros (the cosine is undefined there).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += f64::from(x) * f64::from(y);
        na += f64::from(x) * f64::from(x);
        nb += f64::from(y) * f64::from(y);
    }
    if na == 0.0 || nb == 0.0 {
        return f32::NAN;
    }
    (dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0) as f32
}

/// The matrix of pairwise cosines between `vectors`.
pub fn cosine_matrix<V: AsRef<[f32]>>(vectors: &[V]) -> Vec<Vec<f32>> {
    let n = vectors.len();
    let mut matrix = vec![vec![0f32; n]; n];
    for i in 0..n {
        for j in i..n {
            let c = cosine(vectors[i].as_ref(), vectors[j].as_ref());
            matrix[i][j] = c;
            matrix[j][i] = c;
        }
    }
    matrix
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
