//! Anisotropy corrections applied to vectors before cosines are taken.
//!
//! Contextual vectors share a few dominant directions, so any two of them have a high cosine
//! (Ethayarajh 2019). Each correction is fitted on a set of vectors (the occurrences at hand, or
//! a separate corpus) and then applied to every vector:
//!
//! - `center`: subtract the mean;
//! - `all-but-the-top:D`: subtract the mean and the projections on the top `D` principal
//!   components (Mu & Viswanath 2018);
//! - `whiten`: subtract the mean and rotate and scale so the covariance becomes the identity,
//!   `x' = (x - mu) U diag(1/sqrt(s))` with `U, s` the eigenvectors and eigenvalues of the
//!   covariance (Su et al. 2021; the covariance divides by n - 1 as numpy's `np.cov`). Directions
//!   with an eigenvalue below 1e-9 of the largest are dropped: with fewer vectors than dimensions
//!   the covariance is singular and those directions carry only rounding noise;
//! - `standardize`: subtract the mean and divide each dimension by its standard deviation
//!   (Timkey & van Schijndel 2021, against "rogue dimensions"); a dimension whose variance is
//!   below 1e-9 of the largest (constant up to rounding) is left unscaled.

use crate::engine::LayerVectors;
use crate::error::{Error, Result};

/// Which correction to apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Postprocess {
    /// Raw vectors.
    #[default]
    None,
    /// Subtract the mean.
    Center,
    /// Subtract the mean and the top `D` principal components.
    AllButTheTop(usize),
    /// Decorrelate and scale every direction to unit variance.
    Whiten,
    /// Scale every dimension to unit variance after centring.
    Standardize,
}

impl std::str::FromStr for Postprocess {
    type Err = Error;

    /// Parses `none`, `center`, `all-but-the-top:D` (or `abtt:D`), `whiten`, `standardize`.
    fn from_str(s: &str) -> Result<Self> {
        let invalid = || {
            Error::InvalidArgument(format!(
                "unknown postprocessing {s:?}: expected none, center, all-but-the-top:D (D a positive number), whiten or standardize"
            ))
        };
        match s.trim() {
            "none" => Ok(Postprocess::None),
            "center" | "centre" => Ok(Postprocess::Center),
            "whiten" => Ok(Postprocess::Whiten),
            "standardize" | "standardise" => Ok(Postprocess::Standardize),
            other => {
                let d = other.strip_prefix("all-but-the-top:").or_else(|| other.strip_prefix("abtt:")).ok_or_else(invalid)?;
                match d.parse() {
                    Ok(d) if d > 0 => Ok(Postprocess::AllButTheTop(d)),
                    _ => Err(invalid()),
                }
            }
        }
    }
}

impl std::fmt::Display for Postprocess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Postprocess::None => f.write_str("none"),
            Postprocess::Center => f.write_str("center"),
            Postprocess::AllButTheTop(d) => write!(f, "all-but-the-top:{d}"),
            Postprocess::Whiten => f.write_str("whiten"),
            Postprocess::Standardize => f.write_str("standardize"),
        }
    }
}

/// A correction fitted on a set of vectors, ready to [`apply`](Fitted::apply).
#[derive(Clone, Debug)]
pub struct Fitted {
    mean: Vec<f64>,
    op: Op,
}

#[derive(Clone, Debug)]
enum Op {
    Identity,
    Center,
    /// Remove these orthonormal directions.
    Remove(Vec<Vec<f64>>),
    /// Project on these directions, each already divided by the square root of its variance.
    Project(Vec<Vec<f64>>),
    /// Divide each dimension by this.
    Scale(Vec<f64>),
}

impl Postprocess {
    /// Fits the correction on `vectors` (all the same length). `None` needs nothing; the others
    /// need at least two vectors.
    pub fn fit<V: AsRef<[f32]>>(&self, vectors: &[V]) -> Result<Fitted> {
        let d = vectors.first().map_or(0, |v| v.as_ref().len());
        if *self == Postprocess::None {
            return Ok(Fitted { mean: vec![0.0; d], op: Op::Identity });
        }
        let n = vectors.len();
        if n < 2 {
            return Err(Error::InvalidArgument(format!("postprocessing {self} needs at least two vectors to fit on, got {n}")));
        }
        let mut mean = vec![0.0; d];
        for v in vectors {
            mean.iter_mut().zip(v.as_ref()).for_each(|(m, &x)| *m += f64::from(x) / n as f64);
        }
        let centred = || vectors.iter().map(|v| v.as_ref().iter().zip(&mean).map(|(&x, m)| f64::from(x) - m).collect::<Vec<f64>>());
        let op = match *self {
            Postprocess::None => Op::Identity,
            Postprocess::Center => Op::Center,
            Postprocess::Standardize => {
                let mut var = vec![0.0; d];
                for row in centred() {
                    var.iter_mut().zip(&row).for_each(|(v, x)| *v += x * x / n as f64);
                }
                // A dimension that is constant up to rounding (a LayerNorm weight of 0 makes one;
                // the mean over a word's pieces then varies in its last bit) would be blown up
                // to unit variance from pure rounding noise: it is left unscaled, as an exactly
                // constant one is, with the same relative cut as whitening's.
                let largest = var.iter().copied().fold(0.0, f64::max);
                Op::Scale(var.into_iter().map(|v| if v > largest * 1e-9 && v > 0.0 { v.sqrt() } else { 1.0 }).collect())
            }
            Postprocess::AllButTheTop(_) | Postprocess::Whiten => {
                let mut cov = vec![vec![0.0; d]; d];
                for row in centred() {
                    for i in 0..d {
                        let ri = row[i] / (n - 1) as f64;
                        for j in i..d {
                            cov[i][j] += ri * row[j];
                        }
                    }
                }
                for i in 1..d {
                    let (upper, lower) = cov.split_at_mut(i);
                    for (j, row) in upper.iter().enumerate() {
                        lower[0][j] = row[i];
                    }
                }
                let (values, vectors) = symmetric_eigen(cov);
                match *self {
                    Postprocess::AllButTheTop(k) => Op::Remove(vectors.into_iter().take(k).collect()),
                    _ => {
                        let largest = values.first().copied().unwrap_or(0.0);
                        Op::Project(
                            values
                                .iter()
                                .zip(vectors)
                                .take_while(|&(&v, _)| v > largest * 1e-9 && v > 0.0)
                                .map(|(&v, u)| u.into_iter().map(|x| x / v.sqrt()).collect())
                                .collect(),
                        )
                    }
                }
            }
        };
        Ok(Fitted { mean, op })
    }
}

impl Fitted {
    /// The corrected vector (whitening may return fewer dimensions: one per kept direction).
    pub fn apply(&self, vector: &[f32]) -> Vec<f32> {
        if let Op::Identity = self.op {
            return vector.to_vec();
        }
        let x: Vec<f64> = vector.iter().zip(&self.mean).map(|(&v, m)| f64::from(v) - m).collect();
        let out = match &self.op {
            Op::Identity | Op::Center => x,
            Op::Scale(scale) => x.iter().zip(scale).map(|(v, s)| v / s).collect(),
            Op::Remove(directions) => {
                let mut out = x.clone();
                for u in directions {
                    let p: f64 = u.iter().zip(&x).map(|(a, b)| a * b).sum();
                    out.iter_mut().zip(u).for_each(|(o, a)| *o -= p * a);
                }
                out
            }
            Op::Project(directions) => directions.iter().map(|u| u.iter().zip(&x).map(|(a, b)| a * b).sum()).collect(),
        };
        out.into_iter().map(|v| v as f32).collect()
    }

    /// [`apply`](Fitted::apply) to each vector.
    pub fn apply_all<V: AsRef<[f32]>>(&self, vectors: &[V]) -> Vec<Vec<f32>> {
        vectors.iter().map(|v| self.apply(v.as_ref())).collect()
    }
}

impl Postprocess {
    /// Fits the correction per layer on the vectors of `fit_on` at that layer and applies it to
    /// each of `vectors` there (`fit_on` may be `vectors` themselves). Every [`LayerVectors`]
    /// needs the same layers.
    pub fn correct_layers(&self, vectors: &[LayerVectors], fit_on: &[LayerVectors]) -> Result<Vec<LayerVectors>> {
        if *self == Postprocess::None {
            return Ok(vectors.to_vec());
        }
        let layers = vectors.first().map_or(0, LayerVectors::num_layers);
        let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::with_capacity(layers); vectors.len()];
        for layer in 0..layers {
            let fitted = self.fit(&fit_on.iter().filter_map(|v| v.layer(layer)).collect::<Vec<_>>())?;
            for (corrected, v) in out.iter_mut().zip(vectors) {
                corrected.push(fitted.apply(&v.layers()[layer]));
            }
        }
        Ok(out.into_iter().map(LayerVectors::new).collect())
    }
}

/// Occurrences to fit a correction on, from a corpus of sentences (one per line, blank lines
/// skipped): one word per sentence, the `(i mod n)`-th Unicode word of the `i`-th sentence of `n`
/// words, so that every position in a sentence is sampled and no sentence is encoded twice; at
/// most `max` of them.
pub fn corpus_occurrences(text: &str, max: usize) -> Vec<crate::occurrence::Occurrence> {
    use unicode_segmentation::UnicodeSegmentation;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .filter_map(|(i, line)| {
            let words: Vec<(usize, &str)> = line.unicode_word_indices().collect();
            let (start, word) = *words.get(i % words.len().max(1))?;
            crate::occurrence::Occurrence::new(line, start..start + word.len()).ok()
        })
        .take(max)
        .collect()
}

/// Eigenvalues (largest first) and unit eigenvectors of a symmetric matrix, by cyclic Jacobi
/// rotations: slower than Householder + QL, but short, and exact to rounding for the few
/// hundred dimensions of word vectors.
fn symmetric_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    // v[i] is the i-th eigenvector (stored as rows of V^T).
    let mut v: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    let scale: f64 = a.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i][j] * a[i][j]).sum();
        if off.sqrt() <= 1e-15 * scale.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p][q];
                if apq.abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (ap, aq) = (std::mem::take(&mut a[p]), std::mem::take(&mut a[q]));
                a[p] = ap.iter().zip(&aq).map(|(x, y)| c * x - s * y).collect();
                a[q] = ap.iter().zip(&aq).map(|(x, y)| s * x + c * y).collect();
                let (vp, vq) = (std::mem::take(&mut v[p]), std::mem::take(&mut v[q]));
                v[p] = vp.iter().zip(&vq).map(|(x, y)| c * x - s * y).collect();
                v[q] = vp.iter().zip(&vq).map(|(x, y)| s * x + c * y).collect();
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    (order.iter().map(|&i| a[i][i]).collect(), order.iter().map(|&i| v[i].clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in ["none", "center", "all-but-the-top:3", "whiten", "standardize"] {
            assert_eq!(s.parse::<Postprocess>().unwrap().to_string(), s);
        }
        assert_eq!("abtt:2".parse::<Postprocess>().unwrap(), Postprocess::AllButTheTop(2));
        assert!("all-but-the-top:0".parse::<Postprocess>().is_err());
        assert!("pca".parse::<Postprocess>().is_err());
    }

    #[test]
    fn eigen_reconstructs_the_matrix() {
        let m = vec![vec![4.0, 1.0, 0.5], vec![1.0, 3.0, 0.2], vec![0.5, 0.2, 1.0]];
        let (values, vectors) = symmetric_eigen(m.clone());
        assert!(values.windows(2).all(|w| w[0] >= w[1]));
        for i in 0..3 {
            for j in 0..3 {
                let r: f64 = (0..3).map(|k| values[k] * vectors[k][i] * vectors[k][j]).sum();
                assert!((r - m[i][j]).abs() < 1e-12, "{r} vs {}", m[i][j]);
            }
        }
    }
}
