//! Numbers derived from the cached vectors, computed in `update` (never while drawing) and
//! only when their inputs change.

use vecshift::compress::drift::LayerDrift;
use vecshift::senses::cluster::Clustering;
use vecshift::{Pca, cosine, cosine_matrix, mean_off_diagonal, pca};

/// One BERT layer's pairwise cosines over the compared sentences.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerStats {
    /// `matrix[i][j]`: cosine between the i-th and j-th compared occurrence.
    pub matrix: Vec<Vec<f32>>,
    /// Mean of the off-diagonal entries.
    pub mean: f32,
}

impl LayerStats {
    /// The statistics of one set of vectors.
    pub fn of<V: AsRef<[f32]>>(vectors: &[V]) -> Self {
        let matrix = cosine_matrix(vectors);
        LayerStats { mean: mean_off_diagonal(&matrix), matrix }
    }
}

/// One engine's side of the comparison.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Side {
    /// Some of its vectors have not come back yet.
    #[default]
    Pending,
    /// A compared word has no vector in it (a static vocabulary without the word); the
    /// engine is left out of the comparison, with this reason.
    Missing(String),
    /// Per layer, over the compared occurrences.
    Ready(Vec<LayerStats>),
}

/// Everything the panes draw that takes more than a lookup to get.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Analysis {
    /// Indices of the sentences that every contextual engine has vectors for, in list order:
    /// the compared set.
    pub rows: Vec<usize>,
    /// Per engine, over `rows`.
    pub engines: Vec<Side>,
    /// Per engine, the vectors of `rows` after the anisotropy correction; `None` where none
    /// applies (no correction, a static engine), and the raw vectors are taken.
    pub corrected: Vec<Option<Vec<vecshift::LayerVectors>>>,
    /// 2-D PCA of the selected engine's vectors at its layer.
    pub projection: Option<Pca>,
    /// The same vectors clustered (average link on cosine distances, k by silhouette), from
    /// three compared sentences on.
    pub clusters: Option<Clustering>,
    /// Adjusted Rand index between the clusters and the sense labels, when every compared
    /// sentence has one.
    pub ari: Option<f64>,
    /// Each compression variant against its original over the compared occurrences, per layer
    /// of the variant (raw vectors: the drift is the weights' doing, not a correction's).
    pub drift: Vec<Drift>,
}

/// One variant's drift from its original.
#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    /// The variant engine.
    pub engine: usize,
    /// Its original.
    pub base: usize,
    /// Per layer (`compress::drift`), or why there is none.
    pub layers: Result<Vec<LayerDrift>, String>,
}

impl Analysis {
    /// Whether an engine's heatmap would be all 1.00: the same vector for every compared
    /// sentence (a static engine's fixed vector per word, the point of the comparison).
    pub fn flat(&self, engine: usize) -> bool {
        match self.engines.get(engine) {
            Some(Side::Ready(layers)) => {
                layers.len() == 1 && layers[0].matrix.iter().flatten().all(|&v| (v - 1.0).abs() < 5e-4)
            }
            _ => false,
        }
    }

    /// Whether at least two sentences can be compared.
    pub fn comparable(&self) -> bool {
        self.rows.len() >= 2
    }

    /// The position of an entry among the compared rows.
    pub fn position(&self, entry: usize) -> Option<usize> {
        self.rows.iter().position(|&r| r == entry)
    }
}

/// The component-wise mean of `vectors`, except the one at `skip`; `None` when nothing is left.
pub fn mean_except<V: AsRef<[f32]>>(vectors: &[V], skip: usize) -> Option<Vec<f32>> {
    let others: Vec<&[f32]> =
        vectors.iter().enumerate().filter(|&(i, _)| i != skip).map(|(_, v)| v.as_ref()).collect();
    let first = others.first()?;
    let mut mean = vec![0f32; first.len()];
    for v in &others {
        for (m, x) in mean.iter_mut().zip(*v) {
            *m += x / others.len() as f32;
        }
    }
    Some(mean)
}

/// Cosine of `vectors[index]` with the mean of the others: how far one occurrence drifted
/// from the rest.
pub fn cosine_to_rest<V: AsRef<[f32]>>(vectors: &[V], index: usize) -> Option<f32> {
    let rest = mean_except(vectors, index)?;
    Some(cosine(vectors.get(index)?.as_ref(), &rest))
}

/// 2-D PCA of one layer's vectors.
pub fn project<V: AsRef<[f32]>>(vectors: &[V]) -> Option<Pca> {
    (vectors.len() >= 2).then(|| pca(vectors, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_from_the_rest() {
        let v = [vec![1.0, 0.0], vec![0.0, 1.0], vec![0.0, 3.0]];
        assert_eq!(mean_except(&v, 0).unwrap(), vec![0.0, 2.0]);
        assert_eq!(cosine_to_rest(&v, 0).unwrap(), 0.0);
        assert!((cosine_to_rest(&v, 1).unwrap() - (1.5f32 / (0.25f32 + 2.25).sqrt() / 1.0)).abs() < 1e-6);
        assert!(mean_except(&v[..1], 0).is_none());
    }
}
