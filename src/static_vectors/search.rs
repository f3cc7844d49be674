//! Exact top-k cosine search over unit-length rows.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use ndarray::ArrayView2;
use serde::Serialize;

use crate::simd::{dot, multiversion};

/// A word and its cosine similarity to a query.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Neighbor {
    /// The neighbouring word.
    pub word: String,
    /// Cosine similarity to the query.
    pub cosine: f32,
}

/// Orders f32 scores totally so they can live in a heap (NaN sorts lowest).
#[derive(Clone, Copy, PartialEq)]
struct Score(f32, usize);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |s: &Score| if s.0.is_nan() { f32::NEG_INFINITY } else { s.0 };
        key(self).total_cmp(&key(other)).then(other.1.cmp(&self.1))
    }
}

/// `scores[i]` = row `i` of the row-major `matrix` (rows as long as `query`) dot `query`.
#[inline(always)]
fn score_rows(scores: &mut [f32], matrix: &[f32], query: &[f32]) {
    for (s, row) in scores.iter_mut().zip(matrix.chunks_exact(query.len())) {
        *s = dot(row, query);
    }
}

multiversion!(score_dispatch(scores: &mut [f32], matrix: &[f32], query: &[f32]) => score_rows);

/// The `k` rows of `matrix` (unit length) with the highest cosine to `query`, best first.
///
/// `query` need not be unit length; the scores are divided by its norm. Ties keep file
/// order (the more frequent word first), as gensim does.
pub fn top_k(matrix: ArrayView2<f32>, query: &[f32], k: usize, exclude: &[usize]) -> Vec<(usize, f32)> {
    let norm = query.iter().map(|v| v * v).sum::<f32>().sqrt();
    if k == 0 || norm == 0.0 {
        return Vec::new();
    }
    let dims = matrix.ncols();
    let mut scores = vec![0f32; matrix.nrows()];
    match matrix.as_slice() {
        Some(rows) => score_dispatch(&mut scores, rows, query),
        None => scores.iter_mut().zip(matrix.rows()).for_each(|(s, row)| *s = row.dot(&ndarray::ArrayView1::from(query))),
    }
    debug_assert!(dims == query.len());
    // A min-heap of the best k so far: one pass, no sort of the whole vocabulary.
    let mut heap: BinaryHeap<Reverse<Score>> = BinaryHeap::with_capacity(k + exclude.len() + 1);
    for (idx, &dot) in scores.iter().enumerate() {
        let score = Score(dot / norm, idx);
        if heap.len() < k + exclude.len() {
            heap.push(Reverse(score));
        } else if heap.peek().is_some_and(|worst| score > worst.0) {
            heap.pop();
            heap.push(Reverse(score));
        }
    }
    let mut best: Vec<Score> = heap.into_iter().map(|r| r.0).filter(|s| !exclude.contains(&s.1)).collect();
    best.sort_by(|a, b| b.cmp(a));
    best.truncate(k);
    best.into_iter().map(|s| (s.1, s.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn finds_best_rows_in_order_and_skips_excluded() {
        let m = array![[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]];
        let found = top_k(m.view(), &[2.0, 0.0], 2, &[]);
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), [0, 3]);
        assert!((found[1].1 - 0.8).abs() < 1e-6);
        let found = top_k(m.view(), &[1.0, 0.0], 3, &[0]);
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), [3, 2, 1]);
        assert!(top_k(m.view(), &[0.0, 0.0], 3, &[]).is_empty());
    }
}
