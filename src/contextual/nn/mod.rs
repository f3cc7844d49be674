//! Building blocks shared by the architectures in [`super::models`]: a dense layer that keeps
//! its weight in the form the device computes fastest with (packed f32 or f16 panels, int8
//! panels for weights quantized per output feature, or a transposed f32 matrix), the fused CPU
//! kernels, and the attention mask in the form each device's attention code takes.

pub(crate) mod decoder;
pub(crate) mod int8;
pub(crate) mod kernels;
pub(crate) mod pages;
pub(crate) mod panels;
pub(crate) mod split;
pub(crate) mod team;

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{LayerNorm, VarBuilder, linear};

use int8::PackedInt8;
use panels::{Packed, PackedWeight};

/// A dense layer: its weight in one computing form (see [`Weight`]) and its bias.
pub(crate) struct Dense {
    weight: Weight,
    bias: Option<Tensor>,
    /// The bias as a plain vector (zeros when there is none), for the fused CPU kernels.
    pub(crate) bias_values: Vec<f32>,
}

/// A dense layer's weight, in the one form its device computes with.
enum Weight {
    /// `[in, out]` row-major, for candle's matrix product. Checkpoints store `[out, in]`;
    /// multiplying by its transpose view makes gemm gather the weight element by element on
    /// every call (a tenth of the encoder's time), so it is transposed once at load.
    Transposed(Tensor),
    /// f32 or f16 panels (f16 when every weight is exactly an f16 value), on CPUs with the kernel.
    Packed(Packed),
    /// int8 panels with per-token int8 activations, when every row of the weight is exactly
    /// `scale * q` with integers `|q| <= 127`: the `int8` variant, run as int8.
    Int8(PackedInt8),
}

impl Dense {
    pub(crate) fn load(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        let layer = linear(in_dim, out_dim, vb)?;
        Self::from_parts(layer.weight(), layer.bias())
    }

    /// From a checkpoint-layout `[out, in]` weight and an optional `[out]` bias.
    pub(crate) fn from_parts(weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let (out_dim, in_dim) = weight.dims2()?;
        let bias_values = match bias {
            Some(b) => b.to_vec1::<f32>()?,
            None => vec![0.0; out_dim],
        };
        let weight = match weight.device().is_cpu() && weight.dtype() == DType::F32 {
            true => {
                let values = weight.flatten_all()?.to_vec1::<f32>()?;
                match PackedInt8::pack(&values, out_dim, in_dim) {
                    Some(int8) => Weight::Int8(int8),
                    None => match Packed::pack(&values, out_dim, in_dim) {
                        Some(packed) => Weight::Packed(packed),
                        None => Weight::Transposed(weight.t()?.contiguous()?),
                    },
                }
            }
            false => Weight::Transposed(weight.t()?.contiguous()?),
        };
        Ok(Dense { weight, bias: bias.cloned(), bias_values })
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let bias = self.bias.as_ref().map(|_| self.bias_values.as_slice());
        match &self.weight {
            Weight::Packed(weight) => return weight.forward(xs, bias, false),
            Weight::Int8(weight) => return weight.forward(xs, bias, false),
            Weight::Transposed(_) => {}
        }
        let ys = self.matmul(xs)?;
        match &self.bias {
            Some(bias) => ys.broadcast_add(bias),
            None => Ok(ys),
        }
    }

    /// The product with the weight only; the caller adds the bias (fused into its next step).
    pub(crate) fn matmul(&self, xs: &Tensor) -> Result<Tensor> {
        match &self.weight {
            Weight::Packed(weight) => weight.forward(xs, None, false),
            Weight::Int8(weight) => weight.forward(xs, None, false),
            Weight::Transposed(weight_t) => {
                let (batch, seq, in_dim) = xs.dims3()?;
                xs.reshape((batch * seq, in_dim))?.matmul(weight_t)?.reshape((batch, seq, ()))
            }
        }
    }

    /// `GELU(xs W + b)` with transformers' exact (erf) GELU: fused on the CPU.
    pub(crate) fn forward_gelu_erf(&self, xs: &Tensor) -> Result<Tensor> {
        match &self.weight {
            Weight::Packed(weight) => weight.forward(xs, Some(&self.bias_values), true),
            Weight::Int8(weight) => weight.forward(xs, Some(&self.bias_values), true),
            Weight::Transposed(_) if xs.device().is_cpu() => kernels::bias_gelu_erf(&self.matmul(xs)?, &self.bias_values),
            Weight::Transposed(_) => self.forward(xs)?.gelu_erf(),
        }
    }

    /// `LayerNorm(xs W + b + residual)`: fused on the CPU, candle's ops elsewhere.
    pub(crate) fn forward_add_norm(&self, xs: &Tensor, residual: &Tensor, norm: &LayerNorm, fused: &kernels::AddNorm) -> Result<Tensor> {
        if xs.device().is_cpu() {
            kernels::add_norm(&self.matmul(xs)?, residual, fused)
        } else {
            norm.forward(&(self.forward(xs)? + residual)?)
        }
    }
}

/// The fused kernel's copy of a dense layer's bias and the layer norm that follows it.
pub(crate) fn fused_add_norm(dense: &Dense, norm: &LayerNorm, eps: f64) -> Result<kernels::AddNorm> {
    add_norm_params(dense.bias_values.clone(), norm, eps)
}

/// A layer norm's parameters as plain vectors, with the bias added before it.
pub(crate) fn add_norm_params(bias: Vec<f32>, norm: &LayerNorm, eps: f64) -> Result<kernels::AddNorm> {
    let width = bias.len();
    Ok(kernels::AddNorm {
        bias,
        gamma: norm.weight().to_vec1::<f32>()?,
        beta: match norm.bias() {
            Some(beta) => beta.to_vec1::<f32>()?,
            None => vec![0.0; width],
        },
        eps: eps as f32,
    })
}

/// Which tokens attention may look at, in the form the device's attention code takes.
pub(crate) enum Mask {
    /// The CPU's fused kernels: padding dropped, each sentence's real tokens side by side.
    Packed(Packing),
    /// An additive `[batch, 1, 1, seq]` bias (candle's general ops on other devices).
    Bias(Tensor),
}

impl Mask {
    /// From a `[batch, seq]` u32 attention mask (1 = token, 0 = padding): the packing of the real
    /// tokens on the CPU (its kernels never see padding), transformers' additive bias elsewhere.
    pub(crate) fn new(attention_mask: &Tensor) -> Result<Self> {
        if attention_mask.device().is_cpu() {
            let (batch, seq) = attention_mask.dims2()?;
            let real = attention_mask.flatten_all()?.to_vec1::<u32>()?.into_iter().map(|m| m != 0).collect::<Vec<_>>();
            Ok(Mask::Packed(Packing::new(&real, batch, seq)))
        } else {
            // The same additive mask transformers builds: padding keys get the lowest f32.
            let bias = (attention_mask.to_dtype(DType::F32)?.affine(-1.0, 1.0)? * f64::from(f32::MIN))?;
            Ok(Mask::Bias(bias.unsqueeze(1)?.unsqueeze(1)?))
        }
    }
}

/// Where each sentence's real tokens go once padding is dropped.
///
/// A batch in file order is about a third padding; the dense layers, a token at a time, would
/// compute all of it. Packed, they see `[1, tokens, width]` with only real tokens, and attention
/// keeps each sentence to its own span. A token's values are the same either way: every kernel
/// computes each row on its own.
pub(crate) struct Packing {
    batch: usize,
    seq: usize,
    /// The `[batch * seq]` grid index of each real token, sentence by sentence.
    rows: Vec<u32>,
    /// Sentence `b`'s tokens are packed rows `starts[b]..starts[b + 1]`.
    pub(crate) starts: Vec<usize>,
}

impl Packing {
    /// From per-token flags of a `[batch, seq]` grid (true = real token).
    pub(crate) fn new(real: &[bool], batch: usize, seq: usize) -> Self {
        let mut rows = Vec::with_capacity(real.len());
        let mut starts = Vec::with_capacity(batch + 1);
        for b in 0..batch {
            starts.push(rows.len());
            rows.extend((b * seq..(b + 1) * seq).filter(|&i| real[i]).map(|i| i as u32));
        }
        starts.push(rows.len());
        Packing { batch, seq, rows, starts }
    }

    /// No padding at all: packing is a reshape.
    fn is_dense(&self) -> bool {
        self.rows.len() == self.batch * self.seq
    }

    /// `[batch, seq, width]` to `[1, tokens, width]`, real tokens only.
    pub(crate) fn gather(&self, xs: &Tensor) -> Result<Tensor> {
        let width = xs.dim(candle_core::D::Minus1)?;
        let grid = xs.reshape((self.batch * self.seq, width))?;
        let packed = match self.is_dense() {
            true => grid,
            false => grid.index_select(&Tensor::new(self.rows.as_slice(), xs.device())?, 0)?,
        };
        packed.reshape((1, self.rows.len(), width))
    }

    /// `[1, tokens, width]` back to `[batch, seq, width]`; padding rows are zero.
    pub(crate) fn scatter(&self, xs: &Tensor) -> Result<Tensor> {
        let width = xs.dim(candle_core::D::Minus1)?;
        if self.is_dense() {
            return xs.reshape((self.batch, self.seq, width));
        }
        let xs = xs.contiguous()?;
        let (storage, layout) = xs.storage_and_layout();
        let (candle_core::Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) else {
            candle_core::bail!("packed hidden states are an f32 tensor on the CPU")
        };
        let packed = &cpu.as_slice::<f32>()?[start..end];
        // Sentence by sentence on the team, each value written once: a copy of the whole
        // tensor, a zeroed grid and then the copy into it, for each of the hidden states, had
        // been a serial stretch of every pass while the other threads waited.
        let mut grid = Vec::with_capacity(self.batch * self.seq * width);
        let mut sentences: Vec<_> = grid.spare_capacity_mut()[..self.batch * self.seq * width].chunks_exact_mut(self.seq * width).enumerate().collect();
        team::for_each_mut(&mut sentences, |(b, sentence)| {
            let (mut next, end) = (self.starts[*b], self.starts[*b + 1]);
            for (position, row) in sentence.chunks_exact_mut(width).enumerate() {
                if next < end && self.rows[next] as usize == *b * self.seq + position {
                    for (slot, &value) in row.iter_mut().zip(&packed[next * width..(next + 1) * width]) {
                        slot.write(value);
                    }
                    next += 1;
                } else {
                    row.iter_mut().for_each(|slot| _ = slot.write(0.0));
                }
            }
        });
        drop(sentences);
        // SAFETY: the sentences' chunks cover the grid, and every row of each was written.
        unsafe { grid.set_len(self.batch * self.seq * width) };
        Tensor::from_vec(grid, (self.batch, self.seq, width), xs.device())
    }
}
