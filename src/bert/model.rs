//! A BERT encoder that returns every hidden state, not only the last.
//!
//! candle-transformers' `BertModel` returns the last layer only; vecshift needs the
//! embeddings output and each layer's output, so the (small) model is written out here in
//! the same shape: plain structs with `load(vb, &config)` and `forward`.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder, embedding, layer_norm, linear};

use super::config::{BertConfig, HiddenAct};
use super::half_weights::PackedF16;
use super::kernels;

/// A dense layer: its weight in one computing form (see [`Weight`]) and its bias.
struct Dense {
    weight: Weight,
    bias: Option<Tensor>,
    /// The bias as a plain vector (zeros when there is none), for the fused CPU kernels.
    bias_values: Vec<f32>,
}

/// A dense layer's weight, in the one form its device computes with.
enum Weight {
    /// `[in, out]` row-major, for candle's matrix product. Checkpoints store `[out, in]`;
    /// multiplying by its transpose view makes gemm gather the weight element by element on
    /// every call (a tenth of the encoder's time), so it is transposed once at load.
    Transposed(Tensor),
    /// f16 panels, on CPUs with the kernel when every weight is exactly an f16 value.
    Packed(PackedF16),
}

impl Dense {
    fn load(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        let layer = linear(in_dim, out_dim, vb)?;
        Self::from_parts(layer.weight(), layer.bias())
    }

    /// From a checkpoint-layout `[out, in]` weight and an optional `[out]` bias.
    fn from_parts(weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let (out_dim, in_dim) = weight.dims2()?;
        let bias_values = match bias {
            Some(b) => b.to_vec1::<f32>()?,
            None => vec![0.0; out_dim],
        };
        let packed = match weight.device().is_cpu() && weight.dtype() == DType::F32 {
            true => PackedF16::pack(&weight.flatten_all()?.to_vec1::<f32>()?, out_dim, in_dim),
            false => None,
        };
        let weight = match packed {
            Some(packed) => Weight::Packed(packed),
            None => Weight::Transposed(weight.t()?.contiguous()?),
        };
        Ok(Dense { weight, bias: bias.cloned(), bias_values })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if let Weight::Packed(weight) = &self.weight {
            return weight.forward(xs, self.bias.as_ref().map(|_| self.bias_values.as_slice()), false);
        }
        let ys = self.matmul(xs)?;
        match &self.bias {
            Some(bias) => ys.broadcast_add(bias),
            None => Ok(ys),
        }
    }

    /// The product with the weight only; the caller adds the bias (fused into its next step).
    fn matmul(&self, xs: &Tensor) -> Result<Tensor> {
        match &self.weight {
            Weight::Packed(weight) => weight.forward(xs, None, false),
            Weight::Transposed(weight_t) => {
                let (batch, seq, in_dim) = xs.dims3()?;
                xs.reshape((batch * seq, in_dim))?.matmul(weight_t)?.reshape((batch, seq, ()))
            }
        }
    }

    /// `GELU(xs W + b)` with transformers' exact (erf) GELU: fused on the CPU.
    fn forward_gelu_erf(&self, xs: &Tensor) -> Result<Tensor> {
        match &self.weight {
            Weight::Packed(weight) => weight.forward(xs, Some(&self.bias_values), true),
            Weight::Transposed(_) if xs.device().is_cpu() => kernels::bias_gelu_erf(&self.matmul(xs)?, &self.bias_values),
            Weight::Transposed(_) => self.forward(xs)?.gelu_erf(),
        }
    }

    /// `LayerNorm(xs W + b + residual)`: fused on the CPU, candle's ops elsewhere.
    fn forward_add_norm(&self, xs: &Tensor, residual: &Tensor, norm: &LayerNorm, fused: &kernels::AddNorm) -> Result<Tensor> {
        if xs.device().is_cpu() {
            kernels::add_norm(&self.matmul(xs)?, residual, fused)
        } else {
            norm.forward(&(self.forward(xs)? + residual)?)
        }
    }
}

/// Token, position and segment embeddings, summed and normalised.
pub struct BertEmbeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    /// Position plus segment-0 embeddings (`[max_positions, hidden]`) and the layer norm, for
    /// the CPU's fused add-and-normalise kernel (every sentence is in segment 0).
    fused: Option<(Tensor, kernels::AddNorm)>,
}

impl BertEmbeddings {
    /// Loads the `embeddings.*` tensors.
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        let position = embedding(config.max_position_embeddings, config.hidden_size, vb.pp("position_embeddings"))?;
        let token_type = embedding(config.type_vocab_size, config.hidden_size, vb.pp("token_type_embeddings"))?;
        let norm = layer_norm(config.hidden_size, config.layer_norm_eps, vb.pp("LayerNorm"))?;
        let fused = match vb.device().is_cpu() {
            true => {
                let segment0 = token_type.embeddings().narrow(0, 0, 1)?;
                let params = add_norm_params(vec![0.0; config.hidden_size], &norm, config)?;
                Some((position.embeddings().broadcast_add(&segment0)?, params))
            }
            false => None,
        };
        Ok(BertEmbeddings {
            word: embedding(config.vocab_size, config.hidden_size, vb.pp("word_embeddings"))?,
            position,
            token_type,
            norm,
            fused,
        })
    }

    /// `input_ids`: `[batch, seq]` u32; returns `[batch, seq, hidden]`.
    pub fn forward(&self, input_ids: &Tensor) -> Result<Tensor> {
        let (batch, seq_len) = input_ids.dims2()?;
        let words = self.word.forward(input_ids)?;
        if let Some((position_segment, params)) = &self.fused {
            let hidden = position_segment.dim(1)?;
            let added = position_segment.narrow(0, 0, seq_len)?.unsqueeze(0)?.broadcast_as((batch, seq_len, hidden))?;
            return kernels::add_norm(&words, &added, params);
        }
        let positions = Tensor::arange(0u32, seq_len as u32, input_ids.device())?;
        // Single sentences only: every token is in segment 0.
        let segments = input_ids.zeros_like()?;
        let summed = words.broadcast_add(&self.position.forward(&positions)?)?.add(&self.token_type.forward(&segments)?)?;
        self.norm.forward(&summed)
    }
}

/// Multi-head self-attention with its output projection and residual norm.
struct BertAttention {
    /// Query, key and value projections side by side: one matrix product instead of three.
    qkv: Dense,
    output: Dense,
    norm: LayerNorm,
    add_norm: kernels::AddNorm,
    heads: usize,
    head_dim: usize,
}

impl BertAttention {
    fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        let hidden = config.hidden_size;
        let this = vb.pp("self");
        let output = Dense::load(hidden, hidden, vb.pp("output").pp("dense"))?;
        let norm = layer_norm(hidden, config.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?;
        let parts = ["query", "key", "value"].map(|name| linear(hidden, hidden, this.pp(name)));
        // The three projections become one matrix product.
        let [q, k, v] = parts;
        let (q, k, v) = (q?, k?, v?);
        let weight = Tensor::cat(&[q.weight(), k.weight(), v.weight()], 0)?;
        let bias = match (q.bias(), k.bias(), v.bias()) {
            (Some(qb), Some(kb), Some(vb)) => Some(Tensor::cat(&[qb, kb, vb], 0)?),
            _ => None,
        };
        Ok(BertAttention {
            qkv: Dense::from_parts(&weight, bias.as_ref())?,
            add_norm: fused_add_norm(&output, &norm, config)?,
            output,
            norm,
            heads: config.num_attention_heads,
            head_dim: hidden / config.num_attention_heads,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Mask) -> Result<Tensor> {
        let qkv = self.qkv.forward(xs)?;
        let context = match mask {
            Mask::Tokens(real) => kernels::fused_attention(&qkv, real.clone(), self.heads)?,
            Mask::Bias(bias) => self.attention_with_tensors(&qkv, bias)?,
        };
        self.output.forward_add_norm(&context, xs, &self.norm, &self.add_norm)
    }

    /// The same attention with candle's general ops, for devices without the fused kernel.
    /// `bias`: `[batch, 1, 1, seq]`, 0 for real tokens and the lowest f32 for padding.
    fn attention_with_tensors(&self, qkv: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (batch, seq, triple) = qkv.dims3()?;
        let hidden = triple / 3;
        let split = |i: usize| {
            qkv.narrow(2, i * hidden, hidden)?.reshape((batch, seq, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        probs.matmul(&v)?.transpose(1, 2)?.reshape((batch, seq, hidden))
    }
}

/// The fused kernel's copy of a dense layer's bias and the layer norm that follows it.
fn fused_add_norm(dense: &Dense, norm: &LayerNorm, config: &BertConfig) -> Result<kernels::AddNorm> {
    add_norm_params(dense.bias_values.clone(), norm, config)
}

/// A layer norm's parameters as plain vectors, with the bias added before it.
fn add_norm_params(bias: Vec<f32>, norm: &LayerNorm, config: &BertConfig) -> Result<kernels::AddNorm> {
    let width = bias.len();
    Ok(kernels::AddNorm {
        bias,
        gamma: norm.weight().to_vec1::<f32>()?,
        beta: match norm.bias() {
            Some(beta) => beta.to_vec1::<f32>()?,
            None => vec![0.0; width],
        },
        eps: config.layer_norm_eps as f32,
    })
}

/// Which tokens attention may look at, in the form the device's attention code takes.
enum Mask {
    /// Per token of `[batch, seq]`: true for real tokens (the CPU's fused kernel).
    Tokens(Vec<bool>),
    /// An additive `[batch, 1, 1, seq]` bias (candle's general ops on other devices).
    Bias(Tensor),
}

/// One transformer layer: attention, then the feed-forward block.
struct BertLayer {
    attention: BertAttention,
    intermediate: Dense,
    output: Dense,
    norm: LayerNorm,
    add_norm: kernels::AddNorm,
    act: HiddenAct,
}

impl BertLayer {
    fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        let output = Dense::load(config.intermediate_size, config.hidden_size, vb.pp("output").pp("dense"))?;
        let norm = layer_norm(config.hidden_size, config.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?;
        Ok(BertLayer {
            attention: BertAttention::load(vb.pp("attention"), config)?,
            intermediate: Dense::load(config.hidden_size, config.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            add_norm: fused_add_norm(&output, &norm, config)?,
            output,
            norm,
            act: config.hidden_act,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Mask) -> Result<Tensor> {
        let attended = self.attention.forward(xs, mask)?;
        let inner = match self.act {
            HiddenAct::Gelu => self.intermediate.forward_gelu_erf(&attended)?,
            HiddenAct::GeluNew => self.intermediate.forward(&attended)?.gelu()?,
            HiddenAct::Relu => self.intermediate.forward(&attended)?.relu()?,
        };
        self.output.forward_add_norm(&inner, &attended, &self.norm, &self.add_norm)
    }
}

/// The BERT encoder: embeddings and a stack of layers, with every hidden state returned.
pub struct BertModel {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
}

impl BertModel {
    /// Loads `embeddings.*` and `encoder.layer.N.*` from `vb` (already past any `bert.` prefix).
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(vb.pp("encoder").pp("layer").pp(i), config))
            .collect::<Result<_>>()?;
        Ok(BertModel { embeddings: BertEmbeddings::load(vb.pp("embeddings"), config)?, layers })
    }

    /// Number of encoder layers (hidden states returned = this + 1).
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Runs the encoder.
    ///
    /// `input_ids` and `attention_mask` are `[batch, seq]` u32 (mask 1 = token, 0 = padding).
    /// Returns `num_layers() + 1` tensors of `[batch, seq, hidden]`: the embeddings output,
    /// then the output of each layer. Rows of padding tokens are not meaningful (on the CPU
    /// no attention is computed for them at all).
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Vec<Tensor>> {
        let mask = if input_ids.device().is_cpu() {
            let real = attention_mask.flatten_all()?.to_vec1::<u32>()?.into_iter().map(|m| m != 0).collect();
            Mask::Tokens(real)
        } else {
            // The same additive mask transformers builds: padding keys get the lowest f32.
            let bias = (attention_mask.to_dtype(DType::F32)?.affine(-1.0, 1.0)? * f64::from(f32::MIN))?;
            Mask::Bias(bias.unsqueeze(1)?.unsqueeze(1)?)
        };
        let mut hidden = Vec::with_capacity(self.layers.len() + 1);
        hidden.push(self.embeddings.forward(input_ids)?);
        for layer in &self.layers {
            let next = layer.forward(hidden.last().expect("embeddings pushed first"), &mask)?;
            hidden.push(next);
        }
        Ok(hidden)
    }
}
