//! A checkpoint's tensors in memory, the variants' transforms on them, and their storage.
//!
//! Every transform runs on f32 values ("fake" quantization: quantize, then dequantize), so
//! every architecture runs a variant unchanged. A variant whose last step sets a precision or a
//! rank is also *stored* that way by [`Checkpoint::write`]; the tensor names of that storage:
//!
//! | variant   | tensors for a weight matrix `W` `[out, in]`                                        |
//! |-----------|------------------------------------------------------------------------------------|
//! | f16, bf16 | `W` as F16 / BF16 (every floating-point tensor; transformers loads these)        |
//! | int8      | `W.int8` I8 `[out, in]`, `W.scale` F32 `[out]`: `W = int8 · scale`               |
//! | int8-asym | `W.int8` I8, `W.scale` F32 `[out]`, `W.zero` I8 `[out]`: `W = (int8 - zero) · scale` |
//! | int4:gN   | `W.int4` U8 `[out, ceil(in/2)]` (even column in the low nibble, as q + 8), `W.scale` F32 `[out, in/N]` |
//! | rank:R    | `W.lr_u` F32 `[out, R]` (U·Σ), `W.lr_v` F32 `[R, in]` (Vᵀ): `W = lr_u · lr_v`     |
//!
//! `prune-neurons:P` and `drop-layers` store smaller matrices and fewer layers (and say so in
//! `config.json`). After a magnitude prune (`prune:P` anywhere in the chain), a weight matrix
//! (or the `W.int8` of int8) whose zeros pay for it is stored sparse: a bitmap and the kept
//! values (see [`sparse`]).
//!
//! The file's metadata holds `"vecshift.variant"` (the canonical label) beside `"format": "pt"`,
//! `"vecshift.original_bytes"` (the source's safetensors bytes), `"vecshift.tensor_bytes"` (the
//! stored tensor data) and, if any, `"vecshift.sparse"` (the sparse tensors' dense shapes).
//! A sharded source (`model.safetensors.index.json`) is read from all its shards; the output is
//! one `model.safetensors`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use half::{bf16, f16};
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde_json::Value;

use super::names::Layout;
use super::quant;
use super::sparse::{self, Encoded};
use super::variant::{Step, Variant};
use crate::error::{Error, Result};

/// The metadata key holding a compressed checkpoint's variant.
pub const VARIANT_KEY: &str = "vecshift.variant";

/// The metadata key holding the bytes of the checkpoint a compressed one was made from.
pub const ORIGINAL_BYTES_KEY: &str = "vecshift.original_bytes";

/// The metadata key holding the bytes of a compressed checkpoint's tensor data (the file less
/// its header).
pub const TENSOR_BYTES_KEY: &str = "vecshift.tensor_bytes";

/// The metadata key naming the tensors stored sparse, with their dense shapes (see [`sparse`]).
pub const SPARSE_KEY: &str = "vecshift.sparse";


/// How a tensor is (or would be) stored.
#[derive(Clone, Debug)]
enum Stored {
    /// Plain floating point of this dtype (F32, F16 or BF16).
    Float(Dtype),
    /// Not floating point (an I64 `position_ids`, ...): kept byte for byte, not used by the model.
    Raw(Dtype, Vec<u8>),
    Int8 { q: Vec<i8>, scales: Vec<f32> },
    Int8Asym { q: Vec<i8>, scales: Vec<f32>, zeros: Vec<i8> },
    Int4 { q: Vec<i8>, scales: Vec<f32>, group: usize },
    LowRank { u: Vec<f32>, v: Vec<f32>, rank: usize },
}

/// One tensor: the f32 values the model uses and how they are stored.
#[derive(Clone, Debug)]
struct Weight {
    shape: Vec<usize>,
    data: Vec<f32>,
    stored: Stored,
}

impl Weight {
    /// `[rows, cols]` of a matrix as `[outputs, inputs]`.
    fn out_in(&self, transposed: bool) -> (usize, usize) {
        match transposed {
            false => (self.shape[0], self.shape[1]),
            true => (self.shape[1], self.shape[0]),
        }
    }
}

/// A checkpoint's config and tensors, ready to be transformed, stored or built into a model.
pub struct Checkpoint {
    config: serde_json::Map<String, Value>,
    tensors: BTreeMap<String, Weight>,
    layout: &'static Layout,
    variant: Option<Variant>,
    /// Bytes of the safetensors file(s) the checkpoint was first read from.
    original_bytes: u64,
}

fn model_error(path: &Path, reason: String) -> Error {
    Error::Model { path: path.to_owned(), reason }
}

/// The `variant` key of a safetensors file's metadata, read from its header only.
pub fn stored_variant(weights: &Path) -> Result<Option<String>> {
    use std::io::Read;
    let mut file = std::fs::File::open(weights).map_err(|e| Error::io(weights, e))?;
    let mut len = [0u8; 8];
    if file.read_exact(&mut len).is_err() {
        return Ok(None);
    }
    let len = u64::from_le_bytes(len);
    if len > 100_000_000 {
        return Ok(None);
    }
    let mut header = vec![0u8; len as usize];
    if file.read_exact(&mut header).is_err() {
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__")]
        metadata: Option<HashMap<String, String>>,
    }
    Ok(serde_json::from_slice::<Header>(&header).ok().and_then(|h| h.metadata).and_then(|mut m| m.remove(VARIANT_KEY)))
}

fn to_f32(view: &TensorView) -> Option<Vec<f32>> {
    let bytes = view.data();
    Some(match view.dtype() {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        _ => return None,
    })
}

fn to_i8(view: &TensorView) -> Vec<i8> {
    view.data().iter().map(|&b| b as i8).collect()
}

impl Checkpoint {
    /// Reads `config.json` and a safetensors file, unpacking the storage of a compressed one.
    pub fn read(config: &Path, weights: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(config).map_err(|e| Error::io(config, e))?;
        let config: serde_json::Map<String, Value> = serde_json::from_str(&text)
            .map_err(|e| model_error(config, format!("config.json is not a JSON object: {e}")))?;
        let model_type = config.get("model_type").and_then(Value::as_str).unwrap_or("");
        let layout = Layout::of(model_type).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "variants know the layers of {}, not of model_type {model_type:?}",
                super::names::LAYOUTS.iter().map(|l| l.model_type).collect::<Vec<_>>().join(", ")
            ))
        })?;
        // A sharded checkpoint's tensors are read from every shard its index names.
        let files = crate::source::weight_files(weights)?;
        let mut maps = Vec::with_capacity(files.len());
        let mut original_bytes = 0;
        for path in &files {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            // SAFETY: the file is only read, and vecshift does not modify it while mapped.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
            original_bytes += map.len() as u64;
            maps.push((path, map));
        }
        let mut metadata = HashMap::new();
        let mut views: HashMap<String, TensorView> = HashMap::new();
        for (path, map) in &maps {
            let st = SafeTensors::deserialize(map).map_err(|e| model_error(path, format!("not a safetensors file: {e}")))?;
            let (_, header) = SafeTensors::read_metadata(map).map_err(|e| model_error(path, e.to_string()))?;
            metadata.extend(header.metadata().clone().unwrap_or_default());
            views.extend(st.tensors());
        }
        let variant = match metadata.get(VARIANT_KEY) {
            Some(label) => Some(label.parse::<Variant>().map_err(|e| model_error(weights, format!("{VARIANT_KEY}: {e}")))?),
            None => None,
        };
        let original_bytes = metadata.get(ORIGINAL_BYTES_KEY).and_then(|b| b.parse().ok()).unwrap_or(original_bytes);
        let dense = sparse::expand(&views, metadata.get(SPARSE_KEY).map(String::as_str)).map_err(|reason| model_error(weights, reason))?;
        for (name, dtype, shape, bytes) in &dense {
            views.remove(&format!("{name}.{}", sparse::MASK));
            views.remove(&format!("{name}.{}", sparse::KEPT));
            let view = TensorView::new(*dtype, shape.clone(), bytes).map_err(|e| model_error(weights, format!("{name}: {e}")))?;
            views.insert(name.clone(), view);
        }
        let missing = |name: &str| model_error(weights, format!("{name} is missing (the file is not a complete vecshift compress output)"));
        let mut tensors = BTreeMap::new();
        for (name, view) in &views {
            let shape = view.shape().to_vec();
            let weight = if let Some(base) = name.strip_suffix(".int8") {
                let scales = to_f32(views.get(&format!("{base}.scale")).ok_or_else(|| missing(&format!("{base}.scale")))?).unwrap_or_default();
                let q = to_i8(view);
                let cols = *shape.last().unwrap_or(&1);
                let (data, stored) = match views.get(&format!("{base}.zero")) {
                    Some(zeros) => {
                        let zeros = to_i8(zeros);
                        (quant::dequantize_rows(&q, &scales, Some(&zeros), cols), Stored::Int8Asym { q, scales, zeros })
                    }
                    None => (quant::dequantize_rows(&q, &scales, None, cols), Stored::Int8 { q, scales }),
                };
                (base.to_owned(), Weight { shape, data, stored })
            } else if let Some(base) = name.strip_suffix(".int4") {
                let scales = to_f32(views.get(&format!("{base}.scale")).ok_or_else(|| missing(&format!("{base}.scale")))?).unwrap_or_default();
                let [rows, _] = shape[..] else { return Err(model_error(weights, format!("{name} is not a matrix"))) };
                let groups_per_row = scales.len() / rows.max(1);
                let group = stored_group(&variant).unwrap_or(super::variant::DEFAULT_INT4_GROUP);
                let cols = groups_per_row * group;
                let q = quant::unpack_int4(view.data(), rows, cols);
                let data = quant::dequantize_groups(&q, &scales, group);
                (base.to_owned(), Weight { shape: vec![rows, cols], data, stored: Stored::Int4 { q, scales, group } })
            } else if let Some(base) = name.strip_suffix(".lr_u") {
                let u = to_f32(view).unwrap_or_default();
                let v_view = views.get(&format!("{base}.lr_v")).ok_or_else(|| missing(&format!("{base}.lr_v")))?;
                let v = to_f32(v_view).unwrap_or_default();
                let (rows, rank, cols) = (shape[0], shape[1], v_view.shape()[1]);
                let data = low_rank_product(&u, &v, rows, rank, cols);
                (base.to_owned(), Weight { shape: vec![rows, cols], data, stored: Stored::LowRank { u, v, rank } })
            } else if [".scale", ".zero", ".lr_v"].iter().any(|s| name.ends_with(s))
                && [".int8", ".int4", ".lr_u"].iter().any(|p| views.contains_key(&format!("{}{p}", &name[..name.rfind('.').unwrap_or(0)])))
            {
                continue;
            } else {
                match to_f32(view) {
                    Some(data) => (name.clone(), Weight { shape, data, stored: Stored::Float(view.dtype()) }),
                    None => (name.clone(), Weight { shape, data: Vec::new(), stored: Stored::Raw(view.dtype(), view.data().to_vec()) }),
                }
            };
            tensors.insert(weight.0, weight.1);
        }
        Ok(Checkpoint { config, tensors, layout, variant, original_bytes })
    }

    /// The variant the checkpoint went through (the one recorded in a compressed file, then any
    /// applied since), or `None` for an original.
    pub fn variant(&self) -> Option<&Variant> {
        self.variant.as_ref()
    }

    /// `config.json`, as changed by the variant (fewer layers, narrower feed-forward blocks).
    pub fn config_json(&self) -> String {
        serde_json::to_string_pretty(&self.config).expect("a JSON map serializes")
    }

    /// Bytes of the `model.safetensors` that [`Checkpoint::write`] writes (header included).
    pub fn bytes(&self) -> u64 {
        let mut shapes = Vec::new();
        let mut sparse = BTreeMap::new();
        for (name, w) in &self.tensors {
            for (name, dtype, shape, bytes) in self.encode(name, w, &mut sparse) {
                shapes.push((name, sparse::SizeOnly { dtype, shape, len: bytes.len() }));
            }
        }
        let data: u64 = shapes.iter().map(|(_, v)| v.len as u64).sum();
        // The header as the safetensors crate writes it: serialized without the data.
        let header = safetensors::serialize(shapes, Some(self.metadata(data, &sparse))).map_or(0, |h| h.len() as u64);
        header + data
    }

    /// Bytes of the safetensors file(s) the checkpoint was first read from (recorded in a
    /// compressed checkpoint's metadata).
    pub fn original_bytes(&self) -> u64 {
        self.original_bytes
    }

    /// The file's metadata: format, variant, sizes, sparse tensors.
    fn metadata(&self, tensor_bytes: u64, sparse: &BTreeMap<String, Vec<usize>>) -> HashMap<String, String> {
        let mut metadata = HashMap::from([
            ("format".to_owned(), "pt".to_owned()),
            (ORIGINAL_BYTES_KEY.to_owned(), self.original_bytes.to_string()),
            (TENSOR_BYTES_KEY.to_owned(), tensor_bytes.to_string()),
        ]);
        if let Some(variant) = &self.variant {
            metadata.insert(VARIANT_KEY.to_owned(), variant.to_string());
        }
        if !sparse.is_empty() {
            metadata.insert(SPARSE_KEY.to_owned(), serde_json::to_string(sparse).expect("a map of shapes serializes"));
        }
        metadata
    }

    /// Whether weights may be stored sparse: only after magnitude pruning, so that a plain
    /// f16/bf16 file stays one transformers loads.
    fn sparse_storage(&self) -> bool {
        self.variant.as_ref().is_some_and(|v| v.steps().iter().any(|s| matches!(s, Step::Prune(_))))
    }

    /// The tensors that store `w`; payloads that pay for it go sparse (recorded in `sparse`).
    fn encode(&self, name: &str, w: &Weight, sparse: &mut BTreeMap<String, Vec<usize>>) -> Vec<Encoded> {
        let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let i8_bytes = |v: &[i8]| v.iter().map(|&x| x as u8).collect::<Vec<u8>>();
        let rows = w.shape[0];
        let mut out: Vec<Encoded> = Vec::new();
        // The matrix itself (the one tensor that pruning fills with zeros).
        let payload = match &w.stored {
            Stored::Float(Dtype::F16) => (name.to_owned(), Dtype::F16, w.shape.clone(), w.data.iter().flat_map(|x| f16::from_f32(*x).to_le_bytes()).collect()),
            Stored::Float(Dtype::BF16) => (name.to_owned(), Dtype::BF16, w.shape.clone(), w.data.iter().flat_map(|x| bf16::from_f32(*x).to_le_bytes()).collect()),
            Stored::Float(_) => (name.to_owned(), Dtype::F32, w.shape.clone(), f32_bytes(&w.data)),
            Stored::Raw(dtype, bytes) => (name.to_owned(), *dtype, w.shape.clone(), bytes.clone()),
            Stored::Int8 { q, .. } | Stored::Int8Asym { q, .. } => (format!("{name}.int8"), Dtype::I8, w.shape.clone(), i8_bytes(q)),
            Stored::Int4 { q, .. } => {
                let cols = w.shape[1];
                (format!("{name}.int4"), Dtype::U8, vec![rows, cols.div_ceil(2)], quant::pack_int4(q, cols))
            }
            Stored::LowRank { u, rank, .. } => (format!("{name}.lr_u"), Dtype::F32, vec![rows, *rank], f32_bytes(u)),
        };
        // Int8-asym's pruned weights are its zero points, not 0, and int4's are packed: dense.
        let sparse_ok = self.sparse_storage() && matches!(w.stored, Stored::Float(_) | Stored::Int8 { .. }) && w.shape.len() == 2;
        match sparse_ok.then(|| sparse::compact(&payload)).flatten() {
            Some([mask, kept]) => {
                sparse.insert(payload.0.clone(), payload.2.clone());
                out.extend([mask, kept]);
            }
            None => out.push(payload),
        }
        match &w.stored {
            Stored::Int8 { scales, .. } => out.push((format!("{name}.scale"), Dtype::F32, vec![rows], f32_bytes(scales))),
            Stored::Int8Asym { scales, zeros, .. } => {
                out.push((format!("{name}.scale"), Dtype::F32, vec![rows], f32_bytes(scales)));
                out.push((format!("{name}.zero"), Dtype::I8, vec![rows], i8_bytes(zeros)));
            }
            Stored::Int4 { scales, group, .. } => {
                out.push((format!("{name}.scale"), Dtype::F32, vec![rows, w.shape[1] / group], f32_bytes(scales)))
            }
            Stored::LowRank { v, rank, .. } => out.push((format!("{name}.lr_v"), Dtype::F32, vec![*rank, w.shape[1]], f32_bytes(v))),
            _ => {}
        }
        out
    }

    /// Number of layers, from the config.
    fn num_layers(&self) -> usize {
        self.config.get(self.layout.layers_key).and_then(Value::as_u64).unwrap_or(0) as usize
    }

    /// Applies `variant`'s steps in order. Steps before the last run as f32 transforms; a last
    /// step that sets a precision or a rank also sets the storage.
    pub fn apply(&mut self, variant: &Variant) -> Result<()> {
        let steps = variant.steps();
        for (i, step) in steps.iter().enumerate() {
            let last = i + 1 == steps.len();
            // The storage of an earlier step does not survive a later one.
            for w in self.tensors.values_mut() {
                if !matches!(w.stored, Stored::Float(_) | Stored::Raw(..)) {
                    w.stored = Stored::Float(Dtype::F32);
                }
            }
            self.apply_step(step, last)?;
        }
        self.variant = Some(match self.variant.take() {
            Some(before) => {
                let mut all = before.steps().to_vec();
                all.extend(steps.iter().cloned());
                Variant::new(all)?
            }
            None => variant.clone(),
        });
        Ok(())
    }

    /// The names of the 2-D tensors inside layers (the weight matrices the variants change).
    fn layer_matrices(&self) -> Vec<String> {
        self.tensors
            .iter()
            .filter(|(name, w)| w.shape.len() == 2 && matches!(w.stored, Stored::Float(_)) && self.layout.split(name).is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn apply_step(&mut self, step: &Step, last: bool) -> Result<()> {
        let transposed = self.layout.transposed;
        match step {
            Step::F16 | Step::Bf16 => {
                let dtype = if *step == Step::F16 { Dtype::F16 } else { Dtype::BF16 };
                self.tensors.values_mut().filter(|w| matches!(w.stored, Stored::Float(_))).for_each(|w| {
                    for x in &mut w.data {
                        *x = if dtype == Dtype::F16 { f16::from_f32(*x).to_f32() } else { bf16::from_f32(*x).to_f32() };
                    }
                    if last {
                        w.stored = Stored::Float(dtype);
                    }
                });
            }
            Step::Int8 | Step::Int8Asym | Step::Int4 { .. } => {
                if let Step::Int4 { group } = step {
                    for name in self.layer_matrices() {
                        let (_, cols) = self.tensors[&name].out_in(transposed);
                        if !cols.is_multiple_of(*group) {
                            return Err(Error::InvalidArgument(format!(
                                "variant int4:g{group}: {name} has {cols} inputs, not a multiple of {group}; use a group that divides {cols} (e.g. int4:g{})",
                                gcd(cols, *group)
                            )));
                        }
                    }
                }
                self.for_each_matrix(|w, rows, cols| {
                    let stored = match step {
                        Step::Int8 => {
                            let (q, scales) = quant::int8_sym(w, cols);
                            Stored::Int8 { q, scales }
                        }
                        Step::Int8Asym => {
                            let (q, scales, zeros) = quant::int8_asym(w, cols);
                            Stored::Int8Asym { q, scales, zeros }
                        }
                        Step::Int4 { group } => {
                            let (q, scales) = quant::int4_groups(w, *group);
                            Stored::Int4 { q, scales, group: *group }
                        }
                        _ => unreachable!("only quantizers reach here"),
                    };
                    let _ = rows;
                    *w = decode(&stored, cols);
                    Ok(stored)
                }, last)?;
            }
            Step::Prune(share) => {
                self.for_each_matrix(|w, _, _| {
                    quant::prune_magnitude(w, *share);
                    Ok(Stored::Float(Dtype::F32))
                }, false)?;
            }
            Step::Rank(rank) => {
                let rank = *rank;
                self.for_each_matrix(|w, rows, cols| {
                    let r = rank.of(rows.min(cols), &format!("a {rows}x{cols} matrix"))?;
                    let (u, v) = truncated_svd(w, rows, cols, r);
                    *w = low_rank_product(&u, &v, rows, r, cols);
                    Ok(Stored::LowRank { u, v, rank: r })
                }, last)?;
            }
            Step::DropLayers(layers) => self.drop_layers(layers)?,
            Step::PruneNeurons(share) => self.prune_neurons(*share)?,
        }
        Ok(())
    }

    /// Runs `f` on every layer matrix as `[out, in]` rows (in parallel), keeping its storage
    /// when `keep_storage`.
    fn for_each_matrix(
        &mut self,
        f: impl Fn(&mut Vec<f32>, usize, usize) -> Result<Stored> + Sync,
        keep_storage: bool,
    ) -> Result<()> {
        let transposed = self.layout.transposed;
        let names = self.layer_matrices();
        let mut work: Vec<(String, Weight)> = names.into_iter().map(|n| {
            let w = self.tensors.remove(&n).expect("listed above");
            (n, w)
        }).collect();
        let results: Vec<Result<()>> = work
            .par_iter_mut()
            .map(|(_, w)| {
                let (rows, cols) = w.out_in(transposed);
                let mut data = if transposed { transpose(&w.data, w.shape[0], w.shape[1]) } else { std::mem::take(&mut w.data) };
                let stored = f(&mut data, rows, cols);
                w.data = if transposed { transpose(&data, rows, cols) } else { data };
                // Packed storage is written `[out, in]`; a transposed layout keeps f32 storage.
                if keep_storage && !transposed {
                    w.stored = stored?;
                } else {
                    stored?;
                }
                Ok(())
            })
            .collect();
        for (name, w) in work {
            self.tensors.insert(name, w);
        }
        results.into_iter().collect()
    }

    /// The tensors of every layer, by layer number and name relative to the layer.
    fn by_layer(&self) -> BTreeMap<(usize, String), String> {
        self.tensors
            .keys()
            .filter_map(|name| self.layout.split(name).map(|(layer, rest)| ((layer, rest.to_owned()), name.clone())))
            .collect()
    }

    fn drop_layers(&mut self, dropped: &[usize]) -> Result<()> {
        let n = self.num_layers();
        if let Some(bad) = dropped.iter().find(|&&i| i >= n) {
            return Err(Error::InvalidArgument(format!(
                "variant drop-layers: layer {bad} does not exist; the model has layers 0..={}",
                n.saturating_sub(1)
            )));
        }
        if dropped.len() >= n {
            return Err(Error::InvalidArgument(format!(
                "variant drop-layers: dropping all {n} layers leaves no model; keep at least one of 0..={}",
                n.saturating_sub(1)
            )));
        }
        let kept: Vec<usize> = (0..n).filter(|i| !dropped.contains(i)).collect();
        let by_layer = self.by_layer();
        let mut moved = BTreeMap::new();
        for ((layer, _), name) in &by_layer {
            let weight = self.tensors.remove(name).expect("listed above");
            if let Some(new) = kept.iter().position(|k| k == layer) {
                moved.insert(self.layout.rename(name, new).expect("a layer tensor"), weight);
            }
        }
        self.tensors.extend(moved);
        self.config.insert(self.layout.layers_key.to_owned(), Value::from(kept.len()));
        Ok(())
    }

    fn prune_neurons(&mut self, share: f64) -> Result<()> {
        let layout = self.layout;
        let by_layer = self.by_layer();
        let find = |layer: usize, rest: String| {
            by_layer.get(&(layer, rest.clone())).cloned().ok_or_else(|| {
                Error::InvalidArgument(format!("variant prune-neurons: layer {layer} has no tensor {rest}; the checkpoint does not follow the {} layout", layout.model_type))
            })
        };
        let mut width = None;
        for layer in 0..self.num_layers() {
            let ins = layout.ffn_in.iter().map(|p| find(layer, format!("{p}.weight"))).collect::<Result<Vec<_>>>()?;
            let in_biases: Vec<String> = layout.ffn_in.iter().filter_map(|p| by_layer.get(&(layer, format!("{p}.bias"))).cloned()).collect();
            let out = find(layer, format!("{}.weight", layout.ffn_out))?;
            // Neuron j is row j of each input projection and column j of the output projection
            // (the other way round for transposed layouts).
            let ffn = self.tensors[&ins[0]].out_in(layout.transposed).0;
            let mut norms = vec![0.0f64; ffn];
            for name in &ins {
                let w = &self.tensors[name];
                accumulate_norms(&w.data, w.shape[1], !layout.transposed, &mut norms);
            }
            let w = &self.tensors[&out];
            accumulate_norms(&w.data, w.shape[1], layout.transposed, &mut norms);
            let drop = (share * ffn as f64).round() as usize;
            if drop >= ffn {
                return Err(Error::InvalidArgument(format!(
                    "variant prune-neurons:{share}: it removes all {ffn} feed-forward neurons of layer {layer}; keep at least one with P < {:.4}",
                    (ffn as f64 - 0.5) / ffn as f64
                )));
            }
            let mut order: Vec<usize> = (0..ffn).collect();
            order.sort_by(|&a, &b| norms[a].total_cmp(&norms[b]).then(a.cmp(&b)));
            let mut keep: Vec<usize> = order[drop..].to_vec();
            keep.sort_unstable();
            for name in ins.iter().chain(&in_biases) {
                let w = self.tensors.get_mut(name).expect("found above");
                select(w, &keep, if w.shape.len() == 1 || !layout.transposed { 0 } else { 1 });
            }
            let w = self.tensors.get_mut(&out).expect("found above");
            select(w, &keep, if layout.transposed { 0 } else { 1 });
            width = Some(keep.len());
        }
        if let Some(width) = width {
            self.config.insert(layout.ffn_key.to_owned(), Value::from(width));
        }
        Ok(())
    }

    /// The tensors for candle (raw, non-float tensors left out) and the config they fit.
    pub fn into_var_builder(self, device: &Device) -> Result<(String, VarBuilder<'static>)> {
        let config = self.config_json();
        let mut map = HashMap::new();
        for (name, w) in self.tensors {
            if matches!(w.stored, Stored::Raw(..)) {
                continue;
            }
            let tensor = candle_core::Tensor::from_vec(w.data, w.shape, &Device::Cpu)
                .and_then(|t| t.to_device(device))
                .map_err(|e| Error::InvalidArgument(format!("tensor {name}: {}", crate::error::candle_message(&e))))?;
            map.insert(name, tensor);
        }
        Ok((config, VarBuilder::from_tensors(map, DType::F32, device)))
    }

    /// Writes `model.safetensors` and `config.json` into `dir` (through temporary files renamed
    /// into place, so that a failure leaves no half-written model).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut sparse = BTreeMap::new();
        let mut owned: Vec<Encoded> = Vec::new();
        for (name, w) in &self.tensors {
            owned.extend(self.encode(name, w, &mut sparse));
        }
        let data: u64 = owned.iter().map(|t| t.3.len() as u64).sum();
        let views = owned
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes).map(|v| (name.clone(), v)).map_err(|e| Error::InvalidArgument(format!("tensor {name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = self.metadata(data, &sparse);
        let target = dir.join("model.safetensors");
        let temp = dir.join(".model.safetensors.part");
        safetensors::serialize_to_file(views, Some(metadata), &temp).map_err(|e| Error::InvalidArgument(format!("cannot write {}: {e}", temp.display())))?;
        std::fs::rename(&temp, &target).map_err(|e| Error::io(&target, e))?;
        let config = dir.join("config.json");
        let temp = dir.join(".config.json.part");
        std::fs::write(&temp, self.config_json()).map_err(|e| Error::io(&temp, e))?;
        std::fs::rename(&temp, &config).map_err(|e| Error::io(&config, e))?;
        Ok(())
    }
}

/// The int4 group of a recorded variant's last step.
fn stored_group(variant: &Option<Variant>) -> Option<usize> {
    match variant.as_ref()?.steps().last()? {
        Step::Int4 { group } => Some(*group),
        _ => None,
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn decode(stored: &Stored, cols: usize) -> Vec<f32> {
    match stored {
        Stored::Int8 { q, scales } => quant::dequantize_rows(q, scales, None, cols),
        Stored::Int8Asym { q, scales, zeros } => quant::dequantize_rows(q, scales, Some(zeros), cols),
        Stored::Int4 { q, scales, group } => quant::dequantize_groups(q, scales, *group),
        _ => unreachable!("only quantized storage is decoded"),
    }
}

fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// Adds the squares of each neuron's weights to `norms`: rows of `[neurons, cols]` when
/// `rows_are_neurons`, else columns of `[_, width]`.
fn accumulate_norms(data: &[f32], width: usize, rows_are_neurons: bool, norms: &mut [f64]) {
    for (r, row) in data.chunks(width).enumerate() {
        for (c, &x) in row.iter().enumerate() {
            norms[if rows_are_neurons { r } else { c }] += (x as f64) * (x as f64);
        }
    }
}

/// Keeps the entries `keep` along `axis` (0 or 1) of a vector or matrix.
fn select(w: &mut Weight, keep: &[usize], axis: usize) {
    if w.shape.len() == 1 {
        w.data = keep.iter().map(|&i| w.data[i]).collect();
        w.shape = vec![keep.len()];
    } else if axis == 0 {
        let cols = w.shape[1];
        w.data = keep.iter().flat_map(|&r| w.data[r * cols..(r + 1) * cols].to_vec()).collect();
        w.shape = vec![keep.len(), cols];
    } else {
        let cols = w.shape[1];
        w.data = w.data.chunks(cols).flat_map(|row| keep.iter().map(|&c| row[c]).collect::<Vec<_>>()).collect();
        w.shape = vec![w.shape[0], keep.len()];
    }
    w.stored = Stored::Float(match w.stored {
        Stored::Float(d) => d,
        _ => Dtype::F32,
    });
}

/// `U·Σ` `[rows, rank]` and `Vᵀ` `[rank, cols]` of the best rank-`rank` approximation of a
/// row-major `[rows, cols]` matrix (nalgebra's SVD in f64, largest singular values kept).
pub fn truncated_svd(w: &[f32], rows: usize, cols: usize, rank: usize) -> (Vec<f32>, Vec<f32>) {
    let m = nalgebra::DMatrix::<f64>::from_row_iterator(rows, cols, w.iter().map(|&x| x as f64));
    let svd = m.svd(true, true);
    let (u, vt) = (svd.u.expect("asked for U"), svd.v_t.expect("asked for Vt"));
    let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
    order.sort_by(|&a, &b| svd.singular_values[b].total_cmp(&svd.singular_values[a]));
    let order = &order[..rank];
    let mut us = Vec::with_capacity(rows * rank);
    for r in 0..rows {
        us.extend(order.iter().map(|&k| (u[(r, k)] * svd.singular_values[k]) as f32));
    }
    let mut v = Vec::with_capacity(rank * cols);
    for &k in order {
        v.extend((0..cols).map(|c| vt[(k, c)] as f32));
    }
    (us, v)
}

/// `u · v` for `u` `[rows, rank]` and `v` `[rank, cols]`, row-major.
pub fn low_rank_product(u: &[f32], v: &[f32], rows: usize, rank: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * cols];
    out.par_chunks_mut(cols).enumerate().for_each(|(r, row)| {
        for k in 0..rank {
            let a = u[r * rank + k];
            for (o, &b) in row.iter_mut().zip(&v[k * cols..(k + 1) * cols]) {
                *o += a * b;
            }
        }
    });
    out
}
