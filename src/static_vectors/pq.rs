//! Product quantization of a static model, in finalfusion's own quantized storage.
//!
//! `M` subquantizers each cut `dims / M` consecutive components out of every (unit-length)
//! row and replace them by the nearest of 256 centroids (k-means), so a row takes `M` bytes plus
//! its norm. Any finalfusion reader opens the result; vecshift reconstructs every row at open.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use finalfusion::embeddings::Quantize;
use finalfusion::io::WriteEmbeddings;
use finalfusion::storage::Storage;
use rand_chacha03::ChaChaRng;
use rand_chacha03::rand_core::SeedableRng;

use super::StaticEngine;
use crate::error::{Error, Result};

/// k-means iterations per subquantizer (finalfusion-utils' default).
const ITERATIONS: usize = 100;
/// The seed of the centroids' initial choice (the subquantizers train in parallel, so two
/// conversions may still differ slightly).
const SEED: u64 = 0x5eed;

impl StaticEngine {
    /// Writes the vectors as a finalfusion file with product-quantized storage of
    /// `subquantizers` bytes per row (256 centroids per subquantizer, fewer when the
    /// vocabulary has under 256 words).
    ///
    /// `subquantizers` must divide the dimensionality. Subword models are quantized too.
    pub fn write_finalfusion_pq(&self, path: &Path, subquantizers: usize) -> Result<()> {
        let dims = self.embeddings().storage().shape().1;
        if subquantizers == 0 || !dims.is_multiple_of(subquantizers) {
            return Err(Error::InvalidArgument(format!(
                "pq:{subquantizers} needs a number of subquantizers that divides the {dims} dimensions (one of: {})",
                (1..=dims).filter(|m| dims.is_multiple_of(*m)).map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
        let rows = self.embeddings().storage().shape().0;
        let bits = 8.min((rows as f64).log2().trunc() as u32).max(1);
        // The rows are unit length already (their norms are kept apart), so no normalising.
        let quantized = self
            .embeddings()
            .quantize_using::<reductive::pq::Pq<f32>, _>(subquantizers, bits, ITERATIONS, 1, false, ChaChaRng::seed_from_u64(SEED))
            .map_err(|e| Error::InvalidArgument(format!("cannot quantize {}: {e}", self.path().display())))?;
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut writer = BufWriter::new(file);
        quantized
            .write_embeddings(&mut writer)
            .map_err(|e| Error::VectorFile { path: path.to_owned(), reason: format!("cannot write finalfusion: {e}") })?;
        writer.into_inner().map_err(|e| Error::io(path, e.into_error()))?.sync_all().map_err(|e| Error::io(path, e))
    }
}
