//! What a compression variant changes in an evaluation: per layer, its score minus its
//! original's (Spearman for word similarity, accuracy for WiC).

use serde::Serialize;

/// One variant engine against its original.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VariantDeltas<L> {
    /// The variant engine (`NAME·V`).
    pub engine: String,
    /// The original engine.
    pub base: String,
    /// The variant (`int8`, `prune:0.3+int8`, ...).
    pub variant: String,
    /// One entry per layer of the variant, under the original's layer it stands for.
    pub layers: Vec<L>,
}

/// The change in Spearman correlation of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SpearmanDelta {
    /// The original's layer (0 = embeddings output).
    pub layer: usize,
    /// Variant minus original; `None` when either is undefined.
    pub spearman_delta: Option<f64>,
}

/// The change in WiC accuracy of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AccuracyDelta {
    /// The original's layer (0 = embeddings output).
    pub layer: usize,
    /// Variant minus original; `None` when either is undefined.
    pub accuracy_delta: Option<f64>,
}

/// Per layer of the variant, `(the original's layer, variant score - original score)`.
/// `layer_map[i]` is the original's layer that the variant's layer `i` stands for (the identity
/// unless layers were dropped; see [`Variant::layer_map`](crate::compress::Variant::layer_map)).
pub fn layer_deltas(base: &[Option<f64>], variant: &[Option<f64>], layer_map: &[usize]) -> Vec<(usize, Option<f64>)> {
    variant
        .iter()
        .enumerate()
        .filter_map(|(i, &v)| {
            let b = *layer_map.get(i)?;
            Some((b, v.zip(base.get(b).copied().flatten()).map(|(v, b)| v - b)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_layer_compares_with_the_layer_it_stands_for() {
        let base = [Some(0.5), Some(0.6), None, Some(0.8)];
        let variant = [Some(0.5), Some(0.7), Some(0.9)];
        let got = layer_deltas(&base, &variant, &[0, 1, 3]);
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].0, got[1].0, got[2].0), (0, 1, 3));
        assert_eq!(got[0].1, Some(0.0));
        assert!((got[1].1.unwrap() - 0.1).abs() < 1e-12 && (got[2].1.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(layer_deltas(&base, &[None, Some(0.1), Some(0.1)], &[0, 2, 3])[..2], [(0, None), (2, None)]);
    }
}
