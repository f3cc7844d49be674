//! Model-to-model measures of a report: how alike two engines' representations of the same
//! occurrences are, layer by layer.
//!
//! Both measures run over the same rows: the sampled occurrences of every word (at most
//! [`CKA_OCCURRENCES`] of them, those with the smallest sample keys, so the choice does not
//! depend on the input's order or sharding), in report order, keeping those that both engines
//! have a vector for (a static engine lacks some words).
//!
//! - [`Cka`]: linear centred kernel alignment (Kornblith et al. 2019) with the debiased HSIC
//!   estimator (Song et al. 2012), between every layer of one engine and every layer of the
//!   other. 1 means the two sets of vectors are the same up to rotation and isotropic scaling.
//! - [`NeighbourOverlap`]: for each occurrence, the share of its `k` nearest other occurrences
//!   (by cosine) that both engines name, averaged over the occurrences, with `k` =
//!   [`NEIGHBOURS`] or `n - 1` when fewer rows. The layer pairs: each layer of the engine with
//!   fewer layers against the other engine's layer at the same relative depth (`i / (L - 1)`,
//!   so embeddings output against embeddings output and last layer against last layer); a
//!   static engine's one layer against every layer of the other engine.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use super::{EngineInfo, WordState};

use crate::analysis::cka::{self, CkaInput};

/// Most occurrences the model-to-model measures use: the neighbour overlap compares every pair
/// of them, and CKA costs `n x d_a x d_b` per pair of layers.
pub const CKA_OCCURRENCES: usize = 2000;

/// Neighbours compared per occurrence by [`NeighbourOverlap`] (fewer when there are fewer rows).
pub const NEIGHBOURS: usize = 10;

/// Linear CKA between the layers of two engines.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cka {
    /// The first engine's name.
    pub a: String,
    /// The second engine's name.
    pub b: String,
    /// Occurrences compared (rows with a vector from both engines).
    pub n: usize,
    /// `matrix[i][j]`: CKA between layer `i` of `a` and layer `j` of `b`; `null` when undefined
    /// (fewer than four rows, or a layer whose vectors do not vary).
    pub matrix: Vec<Vec<Option<f64>>>,
}

/// The nearest-neighbour agreement of two engines at one pair of layers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NeighbourOverlap {
    /// The first engine's name.
    pub a: String,
    /// The second engine's name.
    pub b: String,
    /// The layer of `a`.
    pub layer_a: usize,
    /// The layer of `b`.
    pub layer_b: usize,
    /// Neighbours compared per occurrence.
    pub k: usize,
    /// Occurrences compared.
    pub n: usize,
    /// Mean over the occurrences of the share of their `k` nearest neighbours that both
    /// engines name; `null` with fewer than two rows.
    pub overlap: Option<f64>,
}

/// The layer pairs [`NeighbourOverlap`] is computed at, for engines of `a` and `b` layers.
pub(crate) fn layer_pairs(a: usize, b: usize) -> Vec<(usize, usize)> {
    match (a, b) {
        (0, _) | (_, 0) => Vec::new(),
        (1, _) => (0..b).map(|j| (0, j)).collect(),
        (_, 1) => (0..a).map(|i| (i, 0)).collect(),
        _ => {
            let (short, long) = (a.min(b), a.max(b));
            (0..short)
                .map(|i| {
                    // Round half up, in integers: i * (long - 1) / (short - 1).
                    let j = (2 * i * (long - 1) + (short - 1)) / (2 * (short - 1));
                    if a <= b { (i, j) } else { (j, i) }
                })
                .collect()
        }
    }
}

/// The rows: (word, index into its sample) of the sampled occurrences with the smallest keys,
/// at most [`CKA_OCCURRENCES`], in report order.
fn rows(state: &[WordState]) -> Vec<(usize, usize)> {
    let mut all: Vec<(u64, usize, usize)> =
        state.iter().enumerate().flat_map(|(w, s)| s.sample_keys().enumerate().map(move |(i, key)| (key, w, i))).collect();
    if all.len() > CKA_OCCURRENCES {
        all.select_nth_unstable(CKA_OCCURRENCES);
        all.truncate(CKA_OCCURRENCES);
    }
    let mut rows: Vec<(usize, usize)> = all.into_iter().map(|(_, w, i)| (w, i)).collect();
    rows.sort_unstable();
    rows
}

/// Per layer of engine `e`, the vectors of `rows` (all engines' rows: `None` where `e` has none).
fn vectors<'a>(state: &'a [WordState], rows: &[(usize, usize)], e: usize, layers: usize) -> Vec<Vec<Option<&'a [f32]>>> {
    (0..layers).map(|l| rows.iter().map(|&(w, i)| state[w].vector(e, i, l)).collect()).collect()
}

/// The CKA matrices and neighbour overlaps of every pair of engines (each pair once, in the
/// order the engines are given).
pub(crate) fn compare(engines: &[EngineInfo], state: &[WordState]) -> (Vec<Cka>, Vec<NeighbourOverlap>) {
    let rows = rows(state);
    let by_engine: Vec<Vec<Vec<Option<&[f32]>>>> =
        engines.iter().enumerate().map(|(e, info)| vectors(state, &rows, e, info.layers)).collect();
    let mut ckas = Vec::new();
    let mut overlaps = Vec::new();
    for a in 0..engines.len() {
        for b in a + 1..engines.len() {
            // Rows both engines have, the same for every layer.
            let both: Vec<usize> = (0..rows.len()).filter(|&r| by_engine[a][0][r].is_some() && by_engine[b][0][r].is_some()).collect();
            let take = |e: usize, l: usize| -> Vec<&[f32]> { both.iter().map(|&r| by_engine[e][l][r].expect("kept rows have vectors")).collect() };
            let (xs, ys): (Vec<_>, Vec<_>) = ((0..engines[a].layers).map(|l| take(a, l)).collect(), (0..engines[b].layers).map(|l| take(b, l)).collect());
            let n = both.len();
            // Each layer centred once (in parallel: each is one thread's matrix product),
            // compared with every layer of the other engine.
            let (prepared_a, prepared_b): (Vec<_>, Vec<_>) =
                (xs.par_iter().map(|x| CkaInput::new(x)).collect(), ys.par_iter().map(|y| CkaInput::new(y)).collect());
            let matrix = prepared_a
                .iter()
                .map(|x| prepared_b.iter().map(|y| x.as_ref().zip(y.as_ref()).and_then(|(x, y)| x.cka(y, true)).filter(|v| v.is_finite())).collect())
                .collect();
            ckas.push(Cka { a: engines[a].name.clone(), b: engines[b].name.clone(), n, matrix });
            let k = NEIGHBOURS.min(n.saturating_sub(1));
            // A layer paired with several of the other engine's (a static engine's one layer
            // with every contextual layer) has its neighbour lists computed once.
            let (mut lists_a, mut lists_b) = (BTreeMap::new(), BTreeMap::new());
            for (la, lb) in layer_pairs(engines[a].layers, engines[b].layers) {
                let overlap = match n >= 2 && k > 0 {
                    true => {
                        let x = lists_a.entry(la).or_insert_with(|| cka::nearest_neighbours(&xs[la], k));
                        let y = lists_b.entry(lb).or_insert_with(|| cka::nearest_neighbours(&ys[lb], k));
                        Some(cka::shared_neighbours(x, y)).filter(|v| v.is_finite())
                    }
                    false => None,
                };
                overlaps.push(NeighbourOverlap { a: engines[a].name.clone(), b: engines[b].name.clone(), layer_a: la, layer_b: lb, k, n, overlap });
            }
        }
    }
    (ckas, overlaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_pairs_match_relative_depth() {
        assert_eq!(layer_pairs(7, 7), (0..7).map(|i| (i, i)).collect::<Vec<_>>());
        assert_eq!(layer_pairs(3, 7), vec![(0, 0), (1, 3), (2, 6)]);
        assert_eq!(layer_pairs(7, 3), vec![(0, 0), (3, 1), (6, 2)]);
        assert_eq!(layer_pairs(4, 13), vec![(0, 0), (1, 4), (2, 8), (3, 12)]);
        assert_eq!(layer_pairs(1, 3), vec![(0, 0), (0, 1), (0, 2)]);
        assert_eq!(layer_pairs(3, 1), vec![(0, 0), (1, 0), (2, 0)]);
        assert_eq!(layer_pairs(1, 1), vec![(0, 0)]);
    }
}
