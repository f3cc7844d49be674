//! Sense discovery without labels: deterministic clustering of one word's occurrence vectors by
//! cosine, the number of clusters chosen by silhouette, and the adjusted Rand index to compare a
//! clustering with sense labels.
//!
//! Both methods are deterministic (no random start), so the same vectors always give the same
//! clusters, and they agree with scikit-learn's `AgglomerativeClustering(metric="cosine",
//! linkage="average")` and `KMeans(init=<the same farthest-first centres>, n_init=1)`.

use serde::Serialize;

/// Below this best silhouette the occurrences are taken as one sense (k = 1).
///
/// Kaufman & Rousseeuw (1990, *Finding Groups in Data*, ch. 2) read an average silhouette
/// under 0.25 as "no substantial structure"; the same cut decides here whether a split into
/// k >= 2 clusters is real or whether the word's occurrences do not separate.
pub const MIN_SILHOUETTE: f64 = 0.25;

/// The largest k tried by [`choose_k`] unless told otherwise.
pub const DEFAULT_MAX_K: usize = 8;

/// How occurrences are grouped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Agglomerative clustering with average linkage (UPGMA) on cosine distances.
    #[default]
    Average,
    /// Lloyd's k-means on the unit-length vectors (spherical in effect), started from
    /// farthest-first centres: the occurrence nearest the mean, then repeatedly the one farthest
    /// from every centre chosen so far.
    KMeans,
}

impl std::str::FromStr for Method {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "average" | "agglomerative" => Ok(Method::Average),
            "kmeans" | "k-means" => Ok(Method::KMeans),
            _ => Err(crate::Error::InvalidArgument(format!("unknown clustering method {s:?}: expected average or kmeans"))),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Average => "average",
            Method::KMeans => "kmeans",
        })
    }
}

/// A clustering of occurrences with the number of clusters chosen by silhouette.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Clustering {
    /// Number of clusters (1 when the occurrences do not separate).
    pub k: usize,
    /// The cluster of each occurrence, numbered 0.. in order of first appearance.
    pub labels: Vec<usize>,
    /// The best mean silhouette (cosine distance) over the splits tried (k >= 2): the
    /// chosen partition's when `k >= 2`, the one that fell below [`MIN_SILHOUETTE`] when `k == 1`;
    /// `None` with fewer than three occurrences (no split can be scored).
    pub silhouette: Option<f64>,
}

/// Pairwise cosine distances `1 - cos`, clipped to `[0, 2]` with a zero diagonal (as
/// scikit-learn's `cosine_distances`). A zero vector is at distance 1 from everything.
pub fn cosine_distances<V: AsRef<[f32]>>(vectors: &[V]) -> Vec<Vec<f64>> {
    let units: Vec<Vec<f64>> = vectors.iter().map(|v| unit(v.as_ref())).collect();
    let n = units.len();
    let mut d = vec![vec![0.0; n]; n];
    let rows: Vec<&[f64]> = units.iter().map(Vec::as_slice).collect();
    // Every dot product once, in the order the plain sum takes.
    let gram = crate::analysis::gram_in_order(&rows);
    for i in 0..n {
        for j in i + 1..n {
            let dot = match &gram {
                Some(gram) => gram[i * n + j],
                None => units[i].iter().zip(&units[j]).map(|(a, b)| a * b).sum(),
            };
            d[i][j] = (1.0 - dot).clamp(0.0, 2.0);
            d[j][i] = d[i][j];
        }
    }
    d
}

fn unit(v: &[f32]) -> Vec<f64> {
    let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    v.iter().map(|&x| if norm > 0.0 { f64::from(x) / norm } else { 0.0 }).collect()
}

/// Cuts an average-linkage dendrogram of `distances` into `k` clusters.
pub fn agglomerative(distances: &[Vec<f64>], k: usize) -> Vec<usize> {
    cut(&average_linkage(distances), distances.len(), k)
}

/// The average-linkage dendrogram of `distances`, to be [`cut`] at any number of clusters.
fn average_linkage(distances: &[Vec<f64>]) -> kodama::Dendrogram<f64> {
    let n = distances.len();
    let mut condensed: Vec<f64> = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).map(|(i, j)| distances[i][j]).collect();
    kodama::linkage(&mut condensed, n, kodama::Method::Average)
}

/// The `k` clusters of `n` points that a dendrogram's first `n - k` merges leave.
fn cut(dendrogram: &kodama::Dendrogram<f64>, n: usize, k: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let k = k.clamp(1, n);
    // Step s creates cluster n + s; replay the first n - k merges with a union-find.
    let mut parent: Vec<usize> = (0..2 * n).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (s, step) in dendrogram.steps().iter().take(n - k).enumerate() {
        let (a, b) = (root(&mut parent, step.cluster1), root(&mut parent, step.cluster2));
        parent[a] = n + s;
        parent[b] = n + s;
    }
    canonical((0..n).map(|i| root(&mut parent, i)).collect())
}

/// Farthest-first centres on the unit vectors: the point nearest the mean first, then each time
/// the point whose nearest chosen centre is farthest (lowest index among ties). Returns indices.
pub fn farthest_first<V: AsRef<[f32]>>(vectors: &[V], k: usize) -> Vec<usize> {
    let units: Vec<Vec<f64>> = vectors.iter().map(|v| unit(v.as_ref())).collect();
    farthest_first_units(&units, k)
}

fn farthest_first_units(units: &[Vec<f64>], k: usize) -> Vec<usize> {
    let n = units.len();
    if n == 0 || k == 0 {
        return Vec::new();
    }
    let d = units[0].len();
    let mut mean = vec![0.0; d];
    for u in units {
        mean.iter_mut().zip(u).for_each(|(m, x)| *m += x / n as f64);
    }
    let first = argmin((0..n).map(|i| squared_distance(&units[i], &mean)));
    let mut centres = vec![first];
    let mut nearest: Vec<f64> = units.iter().map(|u| squared_distance(u, &units[first])).collect();
    while centres.len() < k.min(n) {
        let next = argmin(nearest.iter().map(|&x| -x));
        centres.push(next);
        for (i, u) in units.iter().enumerate() {
            nearest[i] = nearest[i].min(squared_distance(u, &units[next]));
        }
    }
    centres
}

/// Lloyd's k-means on the unit-length vectors from [`farthest_first`] centres, until no label
/// changes (at most 300 iterations). A cluster that empties keeps its previous centre.
pub fn kmeans<V: AsRef<[f32]>>(vectors: &[V], k: usize) -> Vec<usize> {
    let units: Vec<Vec<f64>> = vectors.iter().map(|v| unit(v.as_ref())).collect();
    let n = units.len();
    if n == 0 {
        return Vec::new();
    }
    let mut centres: Vec<Vec<f64>> = farthest_first_units(&units, k.clamp(1, n)).into_iter().map(|i| units[i].clone()).collect();
    let mut labels = vec![usize::MAX; n];
    for _ in 0..300 {
        let next: Vec<usize> = units.iter().map(|u| argmin(centres.iter().map(|c| squared_distance(u, c)))).collect();
        if next == labels {
            break;
        }
        labels = next;
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<&Vec<f64>> = units.iter().zip(&labels).filter(|&(_, &l)| l == c).map(|(u, _)| u).collect();
            if members.is_empty() {
                continue;
            }
            centre.iter_mut().for_each(|x| *x = 0.0);
            for m in &members {
                centre.iter_mut().zip(m.iter()).for_each(|(x, y)| *x += y / members.len() as f64);
            }
        }
    }
    canonical(labels)
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Index of the smallest value, the first among equals.
fn argmin(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::INFINITY);
    for (i, v) in values.enumerate() {
        if v < best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Renumbers labels 0.. in order of first appearance, so equal partitions have equal labels.
pub fn canonical(labels: Vec<usize>) -> Vec<usize> {
    let mut map = std::collections::HashMap::new();
    labels.into_iter().map(|l| { let next = map.len(); *map.entry(l).or_insert(next) }).collect()
}

/// The mean silhouette coefficient over all points, from a distance matrix, as scikit-learn's
/// `silhouette_score(metric="precomputed")`: a point alone in its cluster scores 0. `None`
/// unless 2 <= number of clusters <= n - 1 (where it is undefined).
pub fn silhouette(distances: &[Vec<f64>], labels: &[usize]) -> Option<f64> {
    let n = labels.len();
    let k = labels.iter().copied().max().map_or(0, |m| m + 1);
    let sizes: Vec<usize> = (0..k).map(|c| labels.iter().filter(|&&l| l == c).count()).collect();
    let used = sizes.iter().filter(|&&s| s > 0).count();
    if used < 2 || used > n - 1 {
        return None;
    }
    let mut total = 0.0;
    for i in 0..n {
        let mut sums = vec![0.0; k];
        for j in 0..n {
            sums[labels[j]] += distances[i][j];
        }
        let own = labels[i];
        if sizes[own] == 1 {
            continue;
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = (0..k).filter(|&c| c != own && sizes[c] > 0).map(|c| sums[c] / sizes[c] as f64).fold(f64::INFINITY, f64::min);
        let s = (b - a) / a.max(b);
        total += if s.is_finite() { s } else { 0.0 };
    }
    Some(total / n as f64)
}

/// The adjusted Rand index between two labelings of the same items (Hubert & Arabie 1985), as
/// scikit-learn's `adjusted_rand_score`: 1 for identical partitions (also when both put every
/// item together, or every item apart), about 0 for chance agreement.
pub fn adjusted_rand_index<A: Eq + std::hash::Hash, B: Eq + std::hash::Hash>(a: &[A], b: &[B]) -> f64 {
    assert_eq!(a.len(), b.len(), "the two labelings must cover the same items");
    let n = a.len() as f64;
    let mut joint = std::collections::HashMap::new();
    let mut rows = std::collections::HashMap::new();
    let mut cols = std::collections::HashMap::new();
    for (x, y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_insert(0f64) += 1.0;
        *rows.entry(x).or_insert(0f64) += 1.0;
        *cols.entry(y).or_insert(0f64) += 1.0;
    }
    // The pair confusion matrix, as sklearn.metrics.cluster.pair_confusion_matrix.
    let sum_squares: f64 = joint.values().map(|c| c * c).sum();
    let row_squares: f64 = rows.values().map(|c| c * c).sum();
    let col_squares: f64 = cols.values().map(|c| c * c).sum();
    let tp = sum_squares - n;
    let fp = row_squares - sum_squares;
    let fn_ = col_squares - sum_squares;
    let tn = n * n - fp - fn_ - sum_squares;
    if fn_ == 0.0 && fp == 0.0 {
        return 1.0;
    }
    2.0 * (tp * tn - fn_ * fp) / ((tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn))
}

/// Clusters `vectors` into exactly `k` groups with `method`.
pub fn cluster<V: AsRef<[f32]>>(vectors: &[V], method: Method, k: usize) -> Vec<usize> {
    match method {
        Method::Average => agglomerative(&cosine_distances(vectors), k),
        Method::KMeans => kmeans(vectors, k),
    }
}

/// Clusters `vectors` with k = 2..=`max_k` (at most n - 1) and keeps the k with the highest
/// silhouette (the smallest k among equals); when that silhouette is below
/// [`MIN_SILHOUETTE`], or there are fewer than three occurrences, the answer is k = 1.
pub fn choose_k<V: AsRef<[f32]>>(vectors: &[V], method: Method, max_k: usize) -> Clustering {
    let n = vectors.len();
    let distances = cosine_distances(vectors);
    // One dendrogram, cut at every k.
    let dendrogram = (method == Method::Average && n >= 3).then(|| average_linkage(&distances));
    let mut best: Option<(f64, usize, Vec<usize>)> = None;
    for k in 2..=max_k.min(n.saturating_sub(1)) {
        let labels = match (method, &dendrogram) {
            (Method::Average, Some(dendrogram)) => cut(dendrogram, n, k),
            (Method::Average, None) => agglomerative(&distances, k),
            (Method::KMeans, _) => kmeans(vectors, k),
        };
        let Some(s) = silhouette(&distances, &labels) else { continue };
        if best.as_ref().is_none_or(|(b, _, _)| s > *b) {
            best = Some((s, k, labels));
        }
    }
    match best {
        Some((s, k, labels)) if s >= MIN_SILHOUETTE => Clustering { k, labels, silhouette: Some(s) },
        other => Clustering { k: 1.min(n), labels: vec![0; n], silhouette: other.map(|(s, _, _)| s) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ari_edge_cases_match_sklearn_conventions() {
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &["a", "a", "b", "b"]), 1.0);
        assert_eq!(adjusted_rand_index(&[0, 0, 0], &[1, 1, 1]), 1.0);
        assert_eq!(adjusted_rand_index(&[0, 1, 2], &[5, 6, 7]), 1.0);
        // sklearn: adjusted_rand_score([0, 0, 1, 1], [0, 1, 0, 1]) == -0.5
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]) + 0.5).abs() < 1e-12);
    }

    #[test]
    fn too_few_occurrences_are_one_sense() {
        let two = [vec![1.0f32, 0.0], vec![0.0, 1.0]];
        assert_eq!(choose_k(&two, Method::Average, 4), Clustering { k: 1, labels: vec![0, 0], silhouette: None });
        assert_eq!(choose_k::<Vec<f32>>(&[], Method::KMeans, 4), Clustering { k: 0, labels: vec![], silhouette: None });
    }
}
