//! A BERT encoder that returns every hidden state, not only the last.
//!
//! candle-transformers' `BertModel` returns the last layer only; vecshift needs the
//! embeddings output and each layer's output, so the (small) model is written out here in
//! the same shape: plain structs with `load(vb, &config)` and `forward`.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder, embedding, layer_norm, linear};

use super::config::{BertConfig, HiddenAct};

/// Token, position and segment embeddings, summed and normalised.
pub struct BertEmbeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
}

impl BertEmbeddings {
    /// Loads the `embeddings.*` tensors.
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        Ok(BertEmbeddings {
            word: embedding(config.vocab_size, config.hidden_size, vb.pp("word_embeddings"))?,
            position: embedding(config.max_position_embeddings, config.hidden_size, vb.pp("position_embeddings"))?,
            token_type: embedding(config.type_vocab_size, config.hidden_size, vb.pp("token_type_embeddings"))?,
            norm: layer_norm(config.hidden_size, config.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    /// `input_ids`: `[batch, seq]` u32; returns `[batch, seq, hidden]`.
    pub fn forward(&self, input_ids: &Tensor) -> Result<Tensor> {
        let seq_len = input_ids.dim(1)?;
        let positions = Tensor::arange(0u32, seq_len as u32, input_ids.device())?;
        // Single sentences only: every token is in segment 0.
        let segments = input_ids.zeros_like()?;
        let summed = self
            .word
            .forward(input_ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .add(&self.token_type.forward(&segments)?)?;
        self.norm.forward(&summed)
    }
}

/// Multi-head self-attention with its output projection and residual norm.
struct BertAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    norm: LayerNorm,
    heads: usize,
    head_dim: usize,
}

impl BertAttention {
    fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        let hidden = config.hidden_size;
        let this = vb.pp("self");
        Ok(BertAttention {
            query: linear(hidden, hidden, this.pp("query"))?,
            key: linear(hidden, hidden, this.pp("key"))?,
            value: linear(hidden, hidden, this.pp("value"))?,
            output: linear(hidden, hidden, vb.pp("output").pp("dense"))?,
            norm: layer_norm(hidden, config.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            heads: config.num_attention_heads,
            head_dim: hidden / config.num_attention_heads,
        })
    }

    /// `mask_bias`: `[batch, 1, 1, seq]`, 0 for real tokens and a large negative for padding.
    fn forward(&self, xs: &Tensor, mask_bias: &Tensor) -> Result<Tensor> {
        let (batch, seq, hidden) = xs.dims3()?;
        let split = |t: Tensor| t.reshape((batch, seq, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous();
        let q = split(self.query.forward(xs)?)?;
        let k = split(self.key.forward(xs)?)?;
        let v = split(self.value.forward(xs)?)?;
        let scale = (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?.contiguous()?)? / scale)?.broadcast_add(mask_bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((batch, seq, hidden))?;
        self.norm.forward(&(self.output.forward(&context)? + xs)?)
    }
}

/// One transformer layer: attention, then the feed-forward block.
struct BertLayer {
    attention: BertAttention,
    intermediate: Linear,
    output: Linear,
    norm: LayerNorm,
    act: HiddenAct,
}

impl BertLayer {
    fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        Ok(BertLayer {
            attention: BertAttention::load(vb.pp("attention"), config)?,
            intermediate: linear(config.hidden_size, config.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            output: linear(config.intermediate_size, config.hidden_size, vb.pp("output").pp("dense"))?,
            norm: layer_norm(config.hidden_size, config.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            act: config.hidden_act,
        })
    }

    fn forward(&self, xs: &Tensor, mask_bias: &Tensor) -> Result<Tensor> {
        let attended = self.attention.forward(xs, mask_bias)?;
        let inner = self.intermediate.forward(&attended)?;
        let inner = match self.act {
            HiddenAct::Gelu => inner.gelu_erf()?,
            HiddenAct::GeluNew => inner.gelu()?,
            HiddenAct::Relu => inner.relu()?,
        };
        self.norm.forward(&(self.output.forward(&inner)? + attended)?)
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
    /// then the output of each layer.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Vec<Tensor>> {
        // The same additive mask transformers builds: padding keys get the lowest f32.
        let mask_bias = ((attention_mask.to_dtype(DType::F32)?.affine(-1.0, 1.0)? * f64::from(f32::MIN))?)
            .unsqueeze(1)?
            .unsqueeze(1)?;
        let mut hidden = Vec::with_capacity(self.layers.len() + 1);
        hidden.push(self.embeddings.forward(input_ids)?);
        for layer in &self.layers {
            let next = layer.forward(hidden.last().expect("embeddings pushed first"), &mask_bias)?;
            hidden.push(next);
        }
        Ok(hidden)
    }
}
