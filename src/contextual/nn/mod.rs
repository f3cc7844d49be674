//! Building blocks shared by the architectures in [`super::models`]: a dense layer that keeps
//! its weight in the form the device computes fastest with (packed f32 or f16 panels, int8
//! panels for weights quantized per output feature, or a transposed f32 matrix), the fused CPU
//! kernels, and the attention mask in the form each device's attention code takes.

pub(crate) mod amx;
pub(crate) mod decoder;
pub(crate) mod int8;
pub(crate) mod kernels;
pub(crate) mod panels;
pub(crate) mod split;

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
    /// Per token of `[batch, seq]`: true for real tokens (the CPU's fused kernel).
    Tokens(Vec<bool>),
    /// An additive `[batch, 1, 1, seq]` bias (candle's general ops on other devices).
    Bias(Tensor),
}


impl Mask {
    /// From a `[batch, seq]` u32 attention mask (1 = token, 0 = padding): per-token flags on the
    /// CPU (the fused kernel skips padding entirely), transformers' additive bias elsewhere.
    pub(crate) fn new(attention_mask: &Tensor) -> Result<Self> {
        if attention_mask.device().is_cpu() {
            let real = attention_mask.flatten_all()?.to_vec1::<u32>()?.into_iter().map(|m| m != 0).collect();
            Ok(Mask::Tokens(real))
        } else {
            // The same additive mask transformers builds: padding keys get the lowest f32.
            let bias = (attention_mask.to_dtype(DType::F32)?.affine(-1.0, 1.0)? * f64::from(f32::MIN))?;
            Ok(Mask::Bias(bias.unsqueeze(1)?.unsqueeze(1)?))
        }
    }
}
