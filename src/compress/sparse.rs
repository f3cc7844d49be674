//! Sparse storage of pruned weights: a bitmap of the elements that are not zero and those
//! elements alone, used when that is smaller than the dense tensor.
//!
//! A tensor `X` `[rows, cols]` is stored as `X.mask` (U8 `[ceil(rows·cols / 8)]`: bit `i % 8` of
//! byte `i / 8` set when row-major element `i` is kept) and `X.kept` (`X`'s dtype, `[kept]`: the
//! kept elements in row-major order); the file's metadata key `vecshift.sparse` maps each such `X`
//! to its dense shape. An element is "zero" when all its bytes are 0 (+0.0, or the integer 0), so
//! the dense tensor comes back bit for bit. For f16 weights the bitmap pays for itself above 1/16
//! zeros, for f32 above 1/32, for int8 above 1/8.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use safetensors::Dtype;
use safetensors::tensor::{TensorView, View};

/// The suffix of a sparse tensor's bitmap.
pub const MASK: &str = "mask";
/// The suffix of a sparse tensor's kept elements.
pub const KEPT: &str = "kept";

/// One tensor as stored: name, dtype, shape and little-endian bytes.
pub type Encoded = (String, Dtype, Vec<usize>, Vec<u8>);

/// A tensor's dtype, shape and length without its data: given to the safetensors crate, it
/// yields the header the crate would write, so that sizes are known before anything is written.
pub(crate) struct SizeOnly {
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) len: usize,
}

impl View for SizeOnly {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&[])
    }
    fn data_len(&self) -> usize {
        self.len
    }
}

/// The bitmap and the kept elements of a dense tensor, or `None` when they are not smaller.
pub fn compact((name, dtype, _, bytes): &Encoded) -> Option<[Encoded; 2]> {
    let size = dtype.bitsize() / 8;
    if size == 0 {
        return None;
    }
    let n = bytes.len() / size;
    let mut mask = vec![0u8; n.div_ceil(8)];
    let mut kept = Vec::new();
    for (i, element) in bytes.chunks_exact(size).enumerate() {
        if element.iter().any(|&b| b != 0) {
            mask[i / 8] |= 1 << (i % 8);
            kept.extend_from_slice(element);
        }
    }
    if mask.len() + kept.len() >= bytes.len() {
        return None;
    }
    let count = kept.len() / size;
    Some([(format!("{name}.{MASK}"), Dtype::U8, vec![mask.len()], mask), (format!("{name}.{KEPT}"), *dtype, vec![count], kept)])
}

/// The dense tensors of a file's sparse ones (`sparse` is its `vecshift.sparse` metadata), or
/// the reason they cannot be rebuilt.
pub fn expand(views: &HashMap<String, TensorView>, sparse: Option<&str>) -> Result<Vec<Encoded>, String> {
    let Some(sparse) = sparse else { return Ok(Vec::new()) };
    let shapes: BTreeMap<String, Vec<usize>> =
        serde_json::from_str(sparse).map_err(|e| format!("metadata vecshift.sparse is not a map of tensor to shape: {e}"))?;
    let mut dense = Vec::with_capacity(shapes.len());
    for (name, shape) in shapes {
        let part = |suffix: &str| {
            views.get(&format!("{name}.{suffix}")).ok_or_else(|| format!("{name}.{suffix} is missing (the file is not a complete vecshift compress output)"))
        };
        let (mask, kept) = (part(MASK)?, part(KEPT)?);
        let size = kept.dtype().bitsize() / 8;
        let n: usize = shape.iter().product();
        let set: usize = mask.data().iter().map(|b| b.count_ones() as usize).sum();
        if size == 0 || mask.data().len() != n.div_ceil(8) || set * size != kept.data().len() {
            return Err(format!("{name}: its bitmap and kept elements do not fit its shape {shape:?}"));
        }
        let mut bytes = vec![0u8; n * size];
        let mut from = kept.data().chunks_exact(size);
        for (i, element) in bytes.chunks_exact_mut(size).enumerate() {
            if mask.data()[i / 8] >> (i % 8) & 1 == 1 {
                element.copy_from_slice(from.next().expect("counted above"));
            }
        }
        dense.push((name, kept.dtype(), shape, bytes));
    }
    Ok(dense)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_round_trips_bit_for_bit() {
        let values: Vec<f32> = (0..40).map(|i| if i % 3 == 0 { (i as f32 - 20.0) * 0.5 } else { 0.0 }).collect();
        let dense: Encoded = ("w".into(), Dtype::F32, vec![5, 8], values.iter().flat_map(|x| x.to_le_bytes()).collect());
        let [mask, kept] = compact(&dense).expect("two thirds are zero");
        assert_eq!(mask.3.len(), 5);
        assert_eq!(kept.2, vec![14]);
        let views: HashMap<String, TensorView> =
            [&mask, &kept].iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
        let back = expand(&views, Some(r#"{"w": [5, 8]}"#)).unwrap();
        assert_eq!(back, vec![dense]);
        let full: Encoded = ("w".into(), Dtype::F32, vec![2], [1.0f32, -0.0].iter().flat_map(|x| x.to_le_bytes()).collect());
        assert!(compact(&full).is_none(), "-0.0 is kept, and a dense tensor stays dense");
    }
}
