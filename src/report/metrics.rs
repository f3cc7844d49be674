//! The measures of a report, computed from running sums where that is exact and from a
//! bounded sample of occurrence vectors where pairs or a PCA are needed.

use serde::{Deserialize, Serialize};

use crate::analysis::{cosine_matrix, pca};

/// The measures of one word (or the mean over words) at one layer; `None` (JSON `null`) where a
/// measure is undefined, e.g. self-similarity with a single occurrence.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LayerMetrics {
    /// The layer: 0 is BERT's embeddings output; the static engine's one layer is 0.
    pub layer: usize,
    /// Mean pairwise cosine of the word's occurrences (Ethayarajh 2019), over all occurrences.
    pub self_similarity: Option<f64>,
    /// Mean cosine between occurrences of different words in this layer, over all pairs of all
    /// occurrences: the same for every word of a layer.
    pub anisotropy_baseline: Option<f64>,
    /// `self_similarity - anisotropy_baseline`.
    pub adjusted_self_similarity: Option<f64>,
    /// Mean over the word's occurrences of the mean cosine between the word and each other word
    /// of its sentence.
    pub intra_sentence_similarity: Option<f64>,
    /// Share of the variance of the (sampled) occurrence vectors explained by their first
    /// principal component (centred PCA).
    pub first_pc_variance: Option<f64>,
    /// Sense measures; present when the word's occurrences carry sense labels.
    #[serde(flatten)]
    pub senses: Option<SenseMetrics>,
    /// Senses found without labels: a clustering of the sampled occurrences (per word only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clusters: Option<ClusterMetrics>,
}

/// The clusters of a word's sampled occurrences at one layer, from
/// [`choose_k`](crate::senses::cluster::choose_k) with average linkage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterMetrics {
    /// Number of clusters (1 when the occurrences do not separate).
    pub k: usize,
    /// The best mean silhouette (cosine distance) over k >= 2 (`null` below three occurrences).
    pub silhouette: Option<f64>,
    /// Adjusted Rand index between the clusters and the sense labels, over the labelled
    /// occurrences; only with labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ari: Option<f64>,
}

/// Occurrences clustered at most per word and layer: the pairwise distances and the silhouettes
/// grow with the square of the count.
pub(crate) const CLUSTER_SAMPLE: usize = 300;

/// Clusters the first [`CLUSTER_SAMPLE`] of `vectors`; `senses` (one per vector, `None` when
/// unlabelled) give the adjusted Rand index when any is labelled.
pub(crate) fn cluster_metrics(vectors: &[&[f32]], senses: &[Option<u32>]) -> ClusterMetrics {
    use crate::senses::cluster;
    let n = vectors.len().min(CLUSTER_SAMPLE);
    let found = cluster::choose_k(&vectors[..n], cluster::Method::Average, cluster::DEFAULT_MAX_K);
    let (clusters, labels): (Vec<usize>, Vec<u32>) =
        found.labels.iter().zip(&senses[..n]).filter_map(|(&c, s)| Some((c, (*s)?))).unzip();
    ClusterMetrics {
        k: found.k,
        silhouette: found.silhouette,
        ari: (!labels.is_empty()).then(|| cluster::adjusted_rand_index(&clusters, &labels)),
    }
}

/// How well a layer separates the senses of a word, over its sampled, sense-labelled occurrences.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SenseMetrics {
    /// Mean cosine over pairs of occurrences with the same sense.
    pub within_sense: Option<f64>,
    /// Mean cosine over pairs of occurrences with different senses.
    pub between_sense: Option<f64>,
    /// Leave-one-out 1-nearest-neighbour (by cosine) sense accuracy; a tie for nearest counts
    /// as the share of the tied neighbours with the right sense (the expected accuracy of
    /// breaking the tie at random).
    pub nn_sense_accuracy: Option<f64>,
}

/// Cosines this close to the best count as a tie for the nearest neighbour.
const TIE: f32 = 1e-6;

/// Running sums over every occurrence of a word at one layer; the sums of two parts of the
/// input add up to those of the whole ([`Moments::merge`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Moments {
    /// Sum of the unit-length occurrence vectors.
    pub unit_sum: Vec<f64>,
    /// Occurrences with a non-zero vector.
    pub count: usize,
    pub intra_sum: f64,
    pub intra_count: usize,
}

impl Moments {
    pub fn add(&mut self, vector: &[f32], intra: Option<f64>) {
        let norm = vector.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
        if norm > 0.0 {
            if self.unit_sum.is_empty() {
                self.unit_sum = vec![0.0; vector.len()];
            }
            for (s, &x) in self.unit_sum.iter_mut().zip(vector) {
                *s += f64::from(x) / norm;
            }
            self.count += 1;
        }
        if let Some(intra) = intra {
            self.intra_sum += intra;
            self.intra_count += 1;
        }
    }

    /// Adds the sums of other occurrences of the same word.
    pub fn merge(&mut self, other: &Moments) {
        if self.unit_sum.is_empty() {
            self.unit_sum = other.unit_sum.clone();
        } else if !other.unit_sum.is_empty() {
            self.unit_sum.iter_mut().zip(&other.unit_sum).for_each(|(a, b)| *a += b);
        }
        self.count += other.count;
        self.intra_sum += other.intra_sum;
        self.intra_count += other.intra_count;
    }

    /// Mean pairwise cosine: with unit vectors `u`, the sum over pairs `i != j` of `u_i . u_j`
    /// is `|sum u|^2 - n`, so no pair needs to be visited.
    pub fn self_similarity(&self) -> Option<f64> {
        let n = self.count as f64;
        (self.count >= 2).then(|| (squared_norm(&self.unit_sum) - n) / (n * (n - 1.0)))
    }

    pub fn intra_sentence(&self) -> Option<f64> {
        (self.intra_count > 0).then(|| self.intra_sum / self.intra_count as f64)
    }
}

fn squared_norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum()
}

/// Mean cosine over all pairs of occurrences of different words, from each word's [`Moments`]:
/// `(|S|^2 - sum_w |S_w|^2) / (N^2 - sum_w n_w^2)` with `S_w` the sum of word `w`'s unit vectors.
pub(crate) fn anisotropy_baseline<'a>(words: impl Iterator<Item = &'a Moments>) -> Option<f64> {
    let mut total: Vec<f64> = Vec::new();
    let (mut within, mut n, mut within_pairs) = (0.0, 0.0, 0.0);
    for m in words.filter(|m| m.count > 0) {
        if total.is_empty() {
            total = vec![0.0; m.unit_sum.len()];
        }
        total.iter_mut().zip(&m.unit_sum).for_each(|(t, s)| *t += s);
        within += squared_norm(&m.unit_sum);
        n += m.count as f64;
        within_pairs += (m.count * m.count) as f64;
    }
    let pairs = n * n - within_pairs;
    (pairs > 0.0).then(|| (squared_norm(&total) - within) / pairs)
}

/// Mean cosine between `target` and each of `others`; zero vectors are left out.
pub(crate) fn intra_sentence(target: &[f32], others: impl Iterator<Item = impl AsRef<[f32]>>) -> Option<f64> {
    let others: Vec<_> = others.collect();
    let (sum, count) = crate::analysis::cosines64(target, &others)
        .into_iter()
        .map(|c| c.clamp(-1.0, 1.0) as f32)
        .filter(|c| !c.is_nan())
        .fold((0.0, 0usize), |(s, n), c| (s + f64::from(c), n + 1));
    (count > 0).then(|| sum / count as f64)
}

/// Variance share of the first principal component; `None` with fewer than two vectors or when
/// they are all (numerically) the same, as a static engine's vectors of one word are.
pub(crate) fn first_pc_variance(vectors: &[&[f32]]) -> Option<f64> {
    if vectors.len() < 2 {
        return None;
    }
    let d = vectors[0].len();
    let n = vectors.len() as f64;
    // Vector by vector (each input's sum still in vector order) rather than input by input
    // across all vectors.
    let mut mean = vec![-0.0f64; d];
    for v in vectors {
        mean.iter_mut().zip(*v).for_each(|(m, &x)| *m += f64::from(x));
    }
    mean.iter_mut().for_each(|m| *m /= n);
    // Only compared with each other, with a wide margin: summed in eight lanes.
    let lanes = |term: &dyn Fn(usize, f32) -> f64| -> f64 {
        let mut sums = [0f64; 8];
        for v in vectors {
            for (c, xs) in v.chunks(8).enumerate() {
                for (l, (sum, &x)) in sums.iter_mut().zip(xs).enumerate() {
                    *sum += term(c * 8 + l, x);
                }
            }
        }
        sums.iter().sum()
    };
    let spread = lanes(&|k, x| (f64::from(x) - mean[k]).powi(2));
    let scale = lanes(&|_, x| f64::from(x).powi(2));
    if spread <= 1e-12 * scale {
        return None;
    }
    pca(vectors, 1).explained_variance_ratio.first().map(|&r| f64::from(r))
}

/// Within-sense and between-sense cosines and 1-NN sense accuracy over labelled vectors.
pub(crate) fn sense_metrics(vectors: &[&[f32]], senses: &[u32]) -> SenseMetrics {
    let matrix = cosine_matrix(vectors);
    let n = vectors.len();
    let (mut within, mut between) = ((0.0, 0usize), (0.0, 0usize));
    for i in 0..n {
        for j in i + 1..n {
            let c = matrix[i][j];
            if c.is_nan() {
                continue;
            }
            let sum = if senses[i] == senses[j] { &mut within } else { &mut between };
            sum.0 += f64::from(c);
            sum.1 += 1;
        }
    }
    let mean = |(sum, count): (f64, usize)| (count > 0).then(|| sum / count as f64);
    let mut correct = 0.0;
    let mut scored = 0usize;
    for i in 0..n {
        let row = (0..n).filter(|&j| j != i && !matrix[i][j].is_nan());
        let Some(best) = row.clone().map(|j| matrix[i][j]).reduce(f32::max) else { continue };
        let (right, tied) = row
            .filter(|&j| matrix[i][j] >= best - TIE)
            .fold((0usize, 0usize), |(r, t), j| (r + usize::from(senses[j] == senses[i]), t + 1));
        correct += right as f64 / tied as f64;
        scored += 1;
    }
    SenseMetrics {
        within_sense: mean(within),
        between_sense: mean(between),
        nn_sense_accuracy: (scored > 0).then(|| correct / scored as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::cosine;

    fn moments(vectors: &[Vec<f32>]) -> Moments {
        let mut m = Moments::default();
        vectors.iter().for_each(|v| m.add(v, None));
        m
    }

    #[test]
    fn sums_equal_explicit_pairs() {
        let a = vec![vec![1.0, 0.0, 0.5], vec![0.2, 1.0, 0.0], vec![-1.0, 0.3, 2.0]];
        let b = vec![vec![0.0, 3.0, 1.0], vec![2.0, 2.0, -1.0]];
        let pairs = |xs: &[Vec<f32>], ys: &[Vec<f32>], same: bool| {
            let mut all = Vec::new();
            for (i, x) in xs.iter().enumerate() {
                for (j, y) in ys.iter().enumerate() {
                    if !same || i < j {
                        all.push(f64::from(cosine(x, y)));
                    }
                }
            }
            all.iter().sum::<f64>() / all.len() as f64
        };
        assert!((moments(&a).self_similarity().unwrap() - pairs(&a, &a, true)).abs() < 1e-6);
        let baseline = anisotropy_baseline([moments(&a), moments(&b)].iter()).unwrap();
        assert!((baseline - pairs(&a, &b, false)).abs() < 1e-6);
        assert_eq!(anisotropy_baseline([moments(&a)].iter()), None, "needs two words");
        assert_eq!(moments(&a[..1]).self_similarity(), None);
    }

    #[test]
    fn merged_sums_equal_the_sums_of_all() {
        let all = vec![vec![1.0, 0.0, 0.5], vec![0.2, 1.0, 0.0], vec![-1.0, 0.3, 2.0], vec![0.0, 0.0, 0.0]];
        let whole = moments(&all);
        let mut merged = moments(&[]);
        for part in [&all[..0], &all[..1], &all[1..3], &all[3..]] {
            merged.merge(&moments(part));
        }
        assert_eq!((merged.count, merged.intra_count), (whole.count, whole.intra_count));
        assert!(merged.unit_sum.iter().zip(&whole.unit_sum).all(|(a, b)| (a - b).abs() < 1e-12));
        assert_eq!(merged.self_similarity().map(|s| (s * 1e9).round()), whole.self_similarity().map(|s| (s * 1e9).round()));
    }

    #[test]
    fn senses_and_ties() {
        let v: Vec<Vec<f32>> = vec![vec![1.0, 0.0], vec![0.9, 0.1], vec![0.0, 1.0], vec![0.1, 0.9]];
        let refs: Vec<&[f32]> = v.iter().map(Vec::as_slice).collect();
        let m = sense_metrics(&refs, &[0, 0, 1, 1]);
        assert_eq!(m.nn_sense_accuracy, Some(1.0));
        assert!(m.within_sense.unwrap() > 0.99 && m.between_sense.unwrap() < 0.2);
        // Identical vectors: every neighbour ties, so accuracy is the share of same-sense others.
        let same: Vec<&[f32]> = vec![&[1.0, 1.0]; 4];
        let m = sense_metrics(&same, &[0, 0, 0, 1]);
        assert!((m.nn_sense_accuracy.unwrap() - (3.0 * (2.0 / 3.0) + 0.0) / 4.0).abs() < 1e-12);
        assert_eq!(first_pc_variance(&same), None);
    }

    #[test]
    fn intra_skips_zero_vectors() {
        let others = [vec![1.0, 0.0], vec![0.0, 0.0], vec![0.0, 1.0]];
        assert!((intra_sentence(&[1.0, 0.0], others.iter()).unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(intra_sentence(&[1.0, 0.0], std::iter::empty::<&[f32]>()), None);
    }
}
