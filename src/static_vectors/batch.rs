//! Many nearest-neighbour queries at once, as blocked matrix products.
//!
//! One query at a time reads the whole matrix once per query and computes each score with a
//! scalar loop; thousands of queries (an analogy test set) are far faster as `queries x
//! vocabulary` matrix products over cache-sized blocks, with the best `k` of each query kept in
//! a small sorted list while the block's scores stream past.

use finalfusion::storage::StorageView;
use finalfusion::vocab::Vocab;
use ndarray::{Array2, ArrayView2, Axis, s};
use rayon::prelude::*;

use super::StaticEngine;

/// Queries per block: one rayon task scores this many queries against the whole vocabulary.
const QUERY_BLOCK: usize = 64;
/// Vocabulary rows per block: the block (4096 x dims) and its scores stay in the L2 cache.
const VOCAB_BLOCK: usize = 4096;

impl StaticEngine {
    /// The `k` best vocabulary rows for each of many query vectors: `(row index, cosine)`,
    /// best first, like [`nearest`](Self::nearest) but for a whole batch.
    ///
    /// `queries` need not be unit length (a zero query finds nothing). `exclude[i]` lists row
    /// indices that query `i` must not return (the analogy's own words); it may be shorter than
    /// `queries`, missing entries excluding nothing. `restrict` searches only the first
    /// `restrict` rows (the most frequent words, in the usual file order), as gensim's
    /// `restrict_vocab` does. Equal scores keep file order (the more frequent word first).
    ///
    /// ```no_run
    /// use vecshift::StaticEngine;
    /// let glove = StaticEngine::open_default()?;
    /// let king = glove.lookup("king")?.vector;
    /// let paris = glove.lookup("paris")?.vector;
    /// let found = glove.nearest_batch(&[king, paris], 3, &[], Some(50_000));
    /// for (index, cosine) in &found[0] {
    ///     println!("{} {cosine:.3}", glove.words()[*index]);
    /// }
    /// # Ok::<(), vecshift::Error>(())
    /// ```
    pub fn nearest_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        exclude: &[Vec<usize>],
        restrict: Option<usize>,
    ) -> Vec<Vec<(usize, f32)>> {
        let rows = restrict.map_or(self.vocab_len(), |r| r.min(self.vocab_len()));
        let storage = self.embeddings().storage().view();
        let matrix = storage.slice(s![..rows, ..]);
        debug_assert_eq!(self.embeddings().vocab().words_len(), self.vocab_len());
        let dims = matrix.ncols();
        let unit: Vec<Option<Vec<f32>>> = queries
            .iter()
            .map(|q| {
                assert_eq!(q.len(), dims, "query length must equal the vectors' dimensionality");
                let norm = q.iter().map(|v| v * v).sum::<f32>().sqrt();
                (norm > 0.0 && norm.is_finite()).then(|| q.iter().map(|v| v / norm).collect())
            })
            .collect();
        let no_exclusions = Vec::new();
        let blocks: Vec<Vec<Vec<(usize, f32)>>> = unit
            .par_chunks(QUERY_BLOCK)
            .enumerate()
            .map(|(block, chunk)| {
                let first = block * QUERY_BLOCK;
                let excluded = (first..first + chunk.len()).map(|i| exclude.get(i).unwrap_or(&no_exclusions));
                let excluded: Vec<&Vec<usize>> = excluded.collect();
                search_block(matrix, chunk, &excluded, k)
            })
            .collect();
        blocks.into_iter().flatten().collect()
    }
}

/// The best `k` rows of `matrix` for each query of one block (`None` = a zero query).
fn search_block(matrix: ArrayView2<f32>, queries: &[Option<Vec<f32>>], exclude: &[&Vec<usize>], k: usize) -> Vec<Vec<(usize, f32)>> {
    let dims = matrix.ncols();
    let mut block = Array2::<f32>::zeros((queries.len(), dims));
    for (mut row, query) in block.rows_mut().into_iter().zip(queries) {
        if let Some(q) = query {
            row.assign(&ndarray::ArrayView1::from(q.as_slice()));
        }
    }
    let mut best: Vec<TopK> = queries.iter().map(|_| TopK::new(k)).collect();
    if k > 0 {
        for (chunk_index, chunk) in matrix.axis_chunks_iter(Axis(0), VOCAB_BLOCK).enumerate() {
            let offset = chunk_index * VOCAB_BLOCK;
            let scores = block.dot(&chunk.t());
            for ((scores, top), (query, excluded)) in scores.rows().into_iter().zip(&mut best).zip(queries.iter().zip(exclude)) {
                if query.is_none() {
                    continue;
                }
                for (i, &score) in scores.iter().enumerate() {
                    // Most scores fail this one comparison; only candidates pay for the rest.
                    if score > top.threshold() && !excluded.contains(&(offset + i)) {
                        top.insert(offset + i, score);
                    }
                }
            }
        }
    }
    best.into_iter().map(|t| t.items).collect()
}

/// The best `k` (index, score) pairs seen so far, sorted best first.
struct TopK {
    k: usize,
    items: Vec<(usize, f32)>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK { k, items: Vec::with_capacity(k + 1) }
    }

    /// The score a newcomer must beat; NaN never does.
    fn threshold(&self) -> f32 {
        if self.items.len() < self.k { f32::NEG_INFINITY } else { self.items[self.k - 1].1 }
    }

    /// Inserts after every equal score, so that with indices arriving in increasing order ties
    /// keep the lower index first.
    fn insert(&mut self, index: usize, score: f32) {
        let at = self.items.partition_point(|&(_, s)| s >= score);
        self.items.insert(at, (index, score));
        self.items.truncate(self.k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn blocks_agree_with_a_full_sort() {
        let m = array![[1.0f32, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6], [0.6, 0.8], [-1.0, 0.0]];
        let queries = vec![Some(vec![1.0, 0.0]), None, Some(vec![0.6, 0.8])];
        let ex0 = vec![0];
        let none = vec![];
        let found = search_block(m.view(), &queries, &[&ex0, &none, &none], 3);
        assert_eq!(found[0].iter().map(|f| f.0).collect::<Vec<_>>(), [3, 2, 4]);
        assert!(found[1].is_empty());
        // Rows 2 and 4 are equal: the earlier row comes first.
        assert_eq!(found[2].iter().map(|f| f.0).collect::<Vec<_>>(), [2, 4, 3]);
        assert!((found[2][2].1 - 0.96).abs() < 1e-6);
        assert!(search_block(m.view(), &queries, &[&none, &none, &none], 0).iter().all(Vec::is_empty));
    }
}
