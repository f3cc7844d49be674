//! The trait every embedding engine implements, and the per-layer vectors it returns.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::occurrence::Occurrence;

/// Whether an engine gives every occurrence of a word the same vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// One vector per word type (Word2Vec, GloVe, fastText, finalfusion).
    Static,
    /// One vector per occurrence, depending on the sentence (BERT).
    Contextual,
}

/// The vectors of one occurrence, one per layer.
///
/// Layer 0 of a BERT encoder is the embeddings output, layer `i` the output of encoder
/// layer `i`. A static engine has exactly one layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct LayerVectors {
    layers: Vec<Vec<f32>>,
}

impl LayerVectors {
    /// Wraps per-layer vectors; all layers must have the same, non-zero length.
    pub fn new(layers: Vec<Vec<f32>>) -> Self {
        debug_assert!(layers.windows(2).all(|w| w[0].len() == w[1].len()));
        LayerVectors { layers }
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The vector of one layer, if it exists.
    pub fn layer(&self, layer: usize) -> Option<&[f32]> {
        self.layers.get(layer).map(Vec::as_slice)
    }

    /// All layers, index 0 first.
    pub fn layers(&self) -> &[Vec<f32>] {
        &self.layers
    }

    /// Reduces the layers to one vector as `selection` says.
    pub fn select(&self, selection: &LayerSelection) -> Result<Vec<f32>> {
        let range = selection.range(self.num_layers())?;
        let count = range.len() as f32;
        let mut mean = vec![0.0; self.layers[0].len()];
        for layer in &self.layers[range] {
            for (m, v) in mean.iter_mut().zip(layer) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= count);
        Ok(mean)
    }

    /// Unwraps the per-layer vectors.
    pub fn into_inner(self) -> Vec<Vec<f32>> {
        self.layers
    }
}

/// Which layer(s) to reduce an occurrence's [`LayerVectors`] to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSelection {
    /// One layer; negative values count from the last layer (-1 = last).
    Layer(isize),
    /// The mean of an inclusive range of layers.
    Mean {
        /// First layer of the range.
        first: usize,
        /// Last layer of the range (inclusive).
        last: usize,
    },
    /// The mean of all layers.
    All,
}

impl LayerSelection {
    /// The half-open range of layer indices this selection covers in a model with `num_layers` layers.
    pub fn range(&self, num_layers: usize) -> Result<std::ops::Range<usize>> {
        let out_of_range = || {
            Error::InvalidArgument(format!(
                "layer selection {self} does not exist: the model has layers 0..={}",
                num_layers.saturating_sub(1)
            ))
        };
        match *self {
            LayerSelection::Layer(layer) => {
                let index = if layer < 0 { num_layers as isize + layer } else { layer };
                if (0..num_layers as isize).contains(&index) {
                    Ok(index as usize..index as usize + 1)
                } else {
                    Err(out_of_range())
                }
            }
            LayerSelection::Mean { first, last } if first <= last && last < num_layers => Ok(first..last + 1),
            LayerSelection::Mean { .. } => Err(out_of_range()),
            LayerSelection::All => Ok(0..num_layers),
        }
    }
}

impl std::fmt::Display for LayerSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerSelection::Layer(layer) => write!(f, "{layer}"),
            LayerSelection::Mean { first, last } => write!(f, "{first}..={last}"),
            LayerSelection::All => f.write_str("all"),
        }
    }
}

impl std::str::FromStr for LayerSelection {
    type Err = Error;

    /// Parses `7`, `-1` (last), `4..=6` / `4-6` (mean of a range) or `all`.
    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidArgument(format!("invalid layer {s:?}: expected a number (e.g. 6 or -1 for the last), a range (e.g. 4..=6) or \"all\""));
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(LayerSelection::All);
        }
        if let Some((a, b)) = s.split_once("..=").or_else(|| s.split_once('-').filter(|(a, _)| !a.is_empty())) {
            let first = a.trim().parse().map_err(|_| invalid())?;
            let last = b.trim().parse().map_err(|_| invalid())?;
            return Ok(LayerSelection::Mean { first, last });
        }
        s.parse().map(LayerSelection::Layer).map_err(|_| invalid())
    }
}

/// An engine that turns occurrences of words into per-layer vectors.
///
/// Object-safe, so engines of different kinds can sit in one `Vec<Box<dyn Embedder>>`:
///
/// ```no_run
/// use vecshift::{BertEncoder, Embedder, Occurrence, StaticEngine};
/// let engines: Vec<Box<dyn Embedder>> = vec![
///     Box::new(StaticEngine::open_default()?),
///     Box::new(BertEncoder::load_default()?),
/// ];
/// let occ = Occurrence::find("The bank approved my loan.", "bank")?;
/// for engine in &engines {
///     let vectors = engine.embed(&occ)?;
///     println!("{}: {} layer(s) of {} dims", engine.name(), vectors.num_layers(), engine.dims());
/// }
/// # Ok::<(), vecshift::Error>(())
/// ```
pub trait Embedder: Send + Sync {
    /// A human-readable name of the model (e.g. its directory or file name).
    fn name(&self) -> &str;

    /// Length of each vector.
    fn dims(&self) -> usize;

    /// Number of layers each occurrence gets vectors for.
    fn num_layers(&self) -> usize;

    /// Static or contextual.
    fn kind(&self) -> EngineKind;

    /// Embeds many occurrences at once; the result has one entry per occurrence, in order.
    fn embed_batch(&self, occurrences: &[Occurrence]) -> Result<Vec<LayerVectors>>;

    /// Embeds one occurrence.
    fn embed(&self, occurrence: &Occurrence) -> Result<LayerVectors> {
        let mut batch = self.embed_batch(std::slice::from_ref(occurrence))?;
        Ok(batch.pop().expect("embed_batch returns one result per occurrence"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_selection_parses_and_reduces() {
        let v = LayerVectors::new(vec![vec![0.0, 2.0], vec![2.0, 4.0], vec![4.0, 6.0]]);
        assert_eq!(v.select(&"-1".parse().unwrap()).unwrap(), [4.0, 6.0]);
        assert_eq!(v.select(&"1..=2".parse().unwrap()).unwrap(), [3.0, 5.0]);
        assert_eq!(v.select(&"0-1".parse().unwrap()).unwrap(), [1.0, 3.0]);
        assert_eq!(v.select(&"all".parse().unwrap()).unwrap(), [2.0, 4.0]);
        assert!(v.select(&LayerSelection::Layer(3)).is_err());
        assert!(v.select(&LayerSelection::Layer(-4)).is_err());
        assert!(v.select(&LayerSelection::Mean { first: 2, last: 1 }).is_err());
        assert!("x".parse::<LayerSelection>().is_err());
    }
}
