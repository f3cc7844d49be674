//! GPT-2: a decoder (each token sees only the tokens to its left), pre-norm layers, learned
//! absolute positions, byte-level BPE.
//!
//! candle-transformers has no GPT-2 model (and its decoders return only the last hidden state),
//! so the small model is written out here. The hidden states are those of transformers'
//! `output_hidden_states`: the embeddings output, each block's output, and for the last one the
//! output of the final norm `ln_f` (transformers replaces the last block's output by it).

use candle_core::{Module, Result, Tensor};
use candle_nn::{Activation, Embedding, LayerNorm, VarBuilder, embedding, layer_norm};
use serde::Deserialize;

use super::{ContextualModel, ModelInfo};
use crate::contextual::nn::Dense;
use crate::contextual::nn::decoder::{attend, causal_bias, split_heads};

fn default_activation() -> Activation {
    Activation::NewGelu
}

fn default_layer_norm_epsilon() -> f64 {
    1e-5
}

fn default_true() -> bool {
    true
}

/// The fields of a Hugging Face GPT-2 `config.json` that the model uses.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Gpt2Config {
    /// Size of the BPE vocabulary.
    pub vocab_size: usize,
    /// Number of learned positions (the longest input).
    pub n_positions: usize,
    /// Width of every hidden state.
    pub n_embd: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// Width of the feed-forward layer (default `4 * n_embd`).
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// Feed-forward activation (`gelu_new`, GELU's tanh approximation, in GPT-2).
    #[serde(default = "default_activation")]
    pub activation_function: Activation,
    /// Epsilon of every layer norm.
    #[serde(default = "default_layer_norm_epsilon")]
    pub layer_norm_epsilon: f64,
    /// Divide attention scores by `sqrt(head_dim)`.
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    /// Also divide them by the block's index + 1.
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Padding token id (GPT-2 has none; the end-of-text token pads then).
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// End-of-text token id.
    #[serde(default)]
    pub eos_token_id: Option<u32>,
}

impl Gpt2Config {
    /// Checks the invariants the model relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.n_head == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!("n_embd {} is not divisible by n_head {}", self.n_embd, self.n_head));
        }
        if self.n_positions < 2 {
            return Err(format!("n_positions {} is too small", self.n_positions));
        }
        Ok(())
    }
}

/// A GPT-2 `Conv1D` layer: the same product as a linear layer but its weight is stored
/// transposed, `[in, out]`.
fn conv1d(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Dense> {
    let weight = vb.get((in_dim, out_dim), "weight")?;
    let bias = vb.get(out_dim, "bias")?;
    Dense::from_parts(&weight.t()?.contiguous()?, Some(&bias))
}

/// Causal self-attention: one projection to queries, keys and values, one back.
struct Gpt2Attention {
    c_attn: Dense,
    c_proj: Dense,
    heads: usize,
    scale: f64,
}

impl Gpt2Attention {
    fn load(vb: VarBuilder, config: &Gpt2Config, layer: usize) -> Result<Self> {
        let hidden = config.n_embd;
        let mut scale = if config.scale_attn_weights { 1.0 / ((hidden / config.n_head) as f64).sqrt() } else { 1.0 };
        if config.scale_attn_by_inverse_layer_idx {
            scale /= (layer + 1) as f64;
        }
        Ok(Gpt2Attention {
            c_attn: conv1d(hidden, 3 * hidden, vb.pp("c_attn"))?,
            c_proj: conv1d(hidden, hidden, vb.pp("c_proj"))?,
            heads: config.n_head,
            scale,
        })
    }

    fn forward(&self, xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let qkv = self.c_attn.forward(xs)?;
        let hidden = qkv.dim(2)? / 3;
        let part = |i: usize| split_heads(&qkv.narrow(2, i * hidden, hidden)?, self.heads);
        let context = attend(&part(0)?, &part(1)?, &part(2)?, bias, self.scale)?;
        self.c_proj.forward(&context)
    }
}

/// One pre-norm block: `x + attn(ln_1(x))`, then `h + mlp(ln_2(h))`.
struct Gpt2Block {
    ln_1: LayerNorm,
    attn: Gpt2Attention,
    ln_2: LayerNorm,
    c_fc: Dense,
    c_proj: Dense,
    act: Activation,
}

impl Gpt2Block {
    fn load(vb: VarBuilder, config: &Gpt2Config, layer: usize) -> Result<Self> {
        let hidden = config.n_embd;
        let inner = config.n_inner.unwrap_or(4 * hidden);
        Ok(Gpt2Block {
            ln_1: layer_norm(hidden, config.layer_norm_epsilon, vb.pp("ln_1"))?,
            attn: Gpt2Attention::load(vb.pp("attn"), config, layer)?,
            ln_2: layer_norm(hidden, config.layer_norm_epsilon, vb.pp("ln_2"))?,
            c_fc: conv1d(hidden, inner, vb.pp("mlp").pp("c_fc"))?,
            c_proj: conv1d(inner, hidden, vb.pp("mlp").pp("c_proj"))?,
            act: config.activation_function,
        })
    }

    fn forward(&self, xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let attended = (xs + self.attn.forward(&self.ln_1.forward(xs)?, bias)?)?;
        let inner = self.act.forward(&self.c_fc.forward(&self.ln_2.forward(&attended)?)?)?;
        attended + self.c_proj.forward(&inner)?
    }
}

/// GPT-2 without its language-model head, with every hidden state returned.
pub struct Gpt2Model {
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<Gpt2Block>,
    ln_f: LayerNorm,
}

impl Gpt2Model {
    /// Loads `wte`, `wpe`, `h.N.*` and `ln_f` from `vb` (already past any `transformer.` prefix).
    pub fn load(vb: VarBuilder, config: &Gpt2Config) -> Result<Self> {
        let blocks = (0..config.n_layer).map(|i| Gpt2Block::load(vb.pp("h").pp(i), config, i)).collect::<Result<_>>()?;
        Ok(Gpt2Model {
            wte: embedding(config.vocab_size, config.n_embd, vb.pp("wte"))?,
            wpe: embedding(config.n_positions, config.n_embd, vb.pp("wpe"))?,
            blocks,
            ln_f: layer_norm(config.n_embd, config.layer_norm_epsilon, vb.pp("ln_f"))?,
        })
    }

    /// Runs the model on `[batch, seq]` u32 ids and mask (1 = token, 0 = padding, on the right).
    /// Returns `n_layer + 1` tensors of `[batch, seq, n_embd]`: the embeddings output, the
    /// output of each block, the last one passed through `ln_f` as transformers returns it.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Vec<Tensor>> {
        let seq = input_ids.dim(1)?;
        let positions = Tensor::arange(0u32, seq as u32, input_ids.device())?;
        let bias = causal_bias(attention_mask)?;
        let mut hidden = Vec::with_capacity(self.blocks.len() + 1);
        hidden.push(self.wte.forward(input_ids)?.broadcast_add(&self.wpe.forward(&positions)?)?);
        for block in &self.blocks {
            let next = block.forward(hidden.last().expect("embeddings pushed first"), &bias)?;
            hidden.push(next);
        }
        let last = hidden.pop().expect("embeddings pushed first");
        hidden.push(self.ln_f.forward(&last)?);
        Ok(hidden)
    }
}

impl ContextualModel for Gpt2Model {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Vec<Tensor>> {
        Gpt2Model::forward(self, input_ids, attention_mask)
    }
}

/// Reads a GPT-2 `config.json` and loads the weights, with or without the `transformer.` prefix
/// of `GPT2LMHeadModel` checkpoints (the head itself is not needed).
pub(super) fn load(config_json: &str, vb: VarBuilder) -> std::result::Result<super::Loaded, String> {
    let config: Gpt2Config =
        serde_json::from_str(config_json).map_err(|e| format!("config.json is not a supported GPT-2 config: {e}"))?;
    config.validate().map_err(|e| format!("config.json: {e}"))?;
    let vb = if vb.contains_tensor("transformer.wte.weight") { vb.pp("transformer") } else { vb };
    let model = Gpt2Model::load(vb, &config)
        .map_err(|e| format!("weights do not match config.json: {}", crate::error::candle_message(&e)))?;
    let info = ModelInfo {
        architecture: "gpt2",
        hidden_size: config.n_embd,
        num_hidden_layers: config.n_layer,
        max_positions: config.n_positions,
        vocab_size: config.vocab_size,
        // Padding never reaches a real token (causal mask, padded on the right): any id does.
        pad_token_id: config.pad_token_id.or(config.eos_token_id).filter(|&id| (id as usize) < config.vocab_size).unwrap_or(0),
        causal: true,
    };
    Ok((Box::new(model), info))
}
