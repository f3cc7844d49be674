//! The Llama family of decoders: Llama, Qwen2 (biases on the query, key and value projections)
//! and Mistral (a sliding window), one model for the three `model_type`s. RMSNorm before each
//! half of a layer, rotary positions, grouped-query attention, SwiGLU feed-forward.
//!
//! candle-transformers' `llama`, `qwen2` and `mistral` models return only the last hidden state
//! (and hold a generation cache), and their config structs read `rope_theta` only at the top
//! level, where transformers >= 5 writes `rope_parameters.rope_theta` instead (candle's llama
//! config then silently falls back to 10000). So the config and the small model are written out
//! here, reusing candle's rotary kernel and `repeat_kv`. The hidden states are those of
//! transformers' `output_hidden_states`: the token embeddings, each layer's output, and for the
//! last one the output of the final norm. The language-model head is not needed, so tied and
//! untied embeddings load alike.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Activation, Embedding, RmsNorm, VarBuilder, embedding, rms_norm};
use candle_transformers::utils::repeat_kv;
use serde::Deserialize;

use super::{ContextualModel, ModelInfo};
use crate::contextual::nn::Dense;
use crate::contextual::nn::decoder::{attend, causal_bias, linear, split_heads};

/// Which member of the family a checkpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `model_type` `llama`.
    Llama,
    /// `model_type` `qwen2`: the query, key and value projections have biases.
    Qwen2,
    /// `model_type` `mistral`: attention looks back at most `sliding_window` tokens.
    Mistral,
}

impl Family {
    /// The `model_type` of `config.json`.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Mistral => "mistral",
        }
    }
}

/// Rotary-position parameters: transformers >= 5's `rope_parameters`, or the older `rope_scaling`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct RopeParameters {
    /// `default`, `linear` or `llama3`.
    #[serde(default)]
    pub rope_type: Option<String>,
    /// The same under its older name.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The base of the rotary frequencies (transformers >= 5 keeps it here).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// How much longer the context was made (`linear`, `llama3`).
    #[serde(default)]
    pub factor: Option<f64>,
    /// `llama3`: wavelengths above `original_max_position_embeddings / low_freq_factor` are scaled.
    #[serde(default)]
    pub low_freq_factor: Option<f64>,
    /// `llama3`: wavelengths below `original_max_position_embeddings / high_freq_factor` are kept.
    #[serde(default)]
    pub high_freq_factor: Option<f64>,
    /// `llama3`: the context length before the extension.
    #[serde(default)]
    pub original_max_position_embeddings: Option<f64>,
}

fn default_hidden_act() -> Activation {
    Activation::Silu
}

/// The fields of a Llama, Qwen2 or Mistral `config.json` that the model uses.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LlamaConfig {
    /// Size of the vocabulary.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Number of layers.
    pub num_hidden_layers: usize,
    /// Query heads per layer.
    pub num_attention_heads: usize,
    /// Key/value heads per layer (fewer than the query heads: grouped-query attention).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Width of one head (default `hidden_size / num_attention_heads`).
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Feed-forward gate activation (SiLU in the whole family).
    #[serde(default = "default_hidden_act")]
    pub hidden_act: Activation,
    /// Longest input the positions were trained for.
    pub max_position_embeddings: usize,
    /// Epsilon of every RMSNorm.
    pub rms_norm_eps: f64,
    /// The base of the rotary frequencies, where older configs keep it.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Rotary parameters as transformers >= 5 writes them.
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// Rotary scaling as older configs write it.
    #[serde(default)]
    pub rope_scaling: Option<RopeParameters>,
    /// Llama: biases on the four attention projections.
    #[serde(default)]
    pub attention_bias: bool,
    /// Llama: biases on the three feed-forward projections.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Mistral (and Qwen2 with `use_sliding_window`): how far back attention looks.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// Qwen2: whether `sliding_window` is used.
    #[serde(default)]
    pub use_sliding_window: Option<bool>,
    /// Padding token id (often none; any id pads a decoder's batch).
    #[serde(default)]
    pub pad_token_id: Option<u32>,
}

impl LlamaConfig {
    fn key_value_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// The rotary parameters, wherever the config keeps them.
    fn rope(&self) -> RopeParameters {
        let mut rope = self.rope_parameters.clone().or_else(|| self.rope_scaling.clone()).unwrap_or_default();
        rope.rope_theta = rope.rope_theta.or(self.rope_theta);
        rope
    }

    /// The longest input attention sees in full: past a sliding window, the pipeline cuts a
    /// window out of the sentence rather than this model masking distant tokens.
    fn max_positions(&self, family: Family) -> usize {
        let window = match family {
            Family::Mistral => self.sliding_window,
            Family::Qwen2 if self.use_sliding_window == Some(true) => self.sliding_window,
            _ => None,
        };
        window.map_or(self.max_position_embeddings, |w| w.min(self.max_position_embeddings))
    }

    /// The rotary frequencies, one per pair of a head's dimensions, as transformers computes
    /// them (in f32).
    pub fn inverse_frequencies(&self) -> std::result::Result<Vec<f32>, String> {
        let rope = self.rope();
        let theta = rope.rope_theta.unwrap_or(10_000.0) as f32;
        let dim = self.head_dim();
        let default: Vec<f32> = (0..dim).step_by(2).map(|i| 1.0 / theta.powf(i as f32 / dim as f32)).collect();
        let rope_type = rope.rope_type.as_deref().or(rope.kind.as_deref()).unwrap_or("default");
        let need = |value: Option<f64>, name: &str| {
            value.map(|v| v as f32).ok_or_else(|| format!("rope type {rope_type:?} needs {name:?}"))
        };
        match rope_type {
            "default" => Ok(default),
            "linear" => {
                let factor = need(rope.factor, "factor")?;
                Ok(default.into_iter().map(|f| f / factor).collect())
            }
            "llama3" => {
                let factor = need(rope.factor, "factor")?;
                let low = need(rope.low_freq_factor, "low_freq_factor")?;
                let high = need(rope.high_freq_factor, "high_freq_factor")?;
                let original = need(rope.original_max_position_embeddings, "original_max_position_embeddings")?;
                let (low_wavelen, high_wavelen) = (original / low, original / high);
                Ok(default
                    .into_iter()
                    .map(|f| {
                        let wavelen = 2.0 * std::f32::consts::PI / f;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / factor
                        } else {
                            let smooth = (original / wavelen - low) / (high - low);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect())
            }
            other => Err(format!("rope type {other:?} is not supported; supported: default, linear, llama3")),
        }
    }

    /// Checks the invariants the model relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let (heads, kv_heads) = (self.num_attention_heads, self.key_value_heads());
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(format!("num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"));
        }
        if self.head_dim() == 0 || !self.head_dim().is_multiple_of(2) {
            return Err(format!("head_dim {} must be even for rotary positions", self.head_dim()));
        }
        if !matches!(self.hidden_act, Activation::Silu | Activation::Swish) {
            return Err(format!("hidden_act {:?} is not supported; supported: silu", self.hidden_act));
        }
        self.inverse_frequencies().map(|_| ())
    }
}

/// Grouped-query self-attention with rotary positions.
struct Attention {
    q_proj: Dense,
    k_proj: Dense,
    v_proj: Dense,
    o_proj: Dense,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder, config: &LlamaConfig, family: Family) -> Result<Self> {
        let (hidden, heads, kv_heads, head_dim) =
            (config.hidden_size, config.num_attention_heads, config.key_value_heads(), config.head_dim());
        let qkv_bias = family == Family::Qwen2 || config.attention_bias;
        Ok(Attention {
            q_proj: linear(hidden, heads * head_dim, qkv_bias, vb.pp("q_proj"))?,
            k_proj: linear(hidden, kv_heads * head_dim, qkv_bias, vb.pp("k_proj"))?,
            v_proj: linear(hidden, kv_heads * head_dim, qkv_bias, vb.pp("v_proj"))?,
            o_proj: linear(heads * head_dim, hidden, config.attention_bias, vb.pp("o_proj"))?,
            heads,
            kv_heads,
            head_dim,
        })
    }

    fn forward(&self, xs: &Tensor, cos: &Tensor, sin: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let q = candle_nn::rotary_emb::rope(&split_heads(&self.q_proj.forward(xs)?, self.heads)?, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&split_heads(&self.k_proj.forward(xs)?, self.kv_heads)?, cos, sin)?;
        let v = split_heads(&self.v_proj.forward(xs)?, self.kv_heads)?;
        let groups = self.heads / self.kv_heads;
        let (k, v) = (repeat_kv(k, groups)?.contiguous()?, repeat_kv(v, groups)?.contiguous()?);
        let context = attend(&q, &k, &v, bias, 1.0 / (self.head_dim as f64).sqrt())?;
        self.o_proj.forward(&context)
    }
}

/// `down(silu(gate(x)) * up(x))`.
struct Mlp {
    gate_proj: Dense,
    up_proj: Dense,
    down_proj: Dense,
}

impl Mlp {
    fn load(vb: VarBuilder, config: &LlamaConfig) -> Result<Self> {
        let (hidden, inner, bias) = (config.hidden_size, config.intermediate_size, config.mlp_bias);
        Ok(Mlp {
            gate_proj: linear(hidden, inner, bias, vb.pp("gate_proj"))?,
            up_proj: linear(hidden, inner, bias, vb.pp("up_proj"))?,
            down_proj: linear(inner, hidden, bias, vb.pp("down_proj"))?,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let gated = (self.gate_proj.forward(xs)?.silu()? * self.up_proj.forward(xs)?)?;
        self.down_proj.forward(&gated)
    }
}

/// One pre-norm layer: `x + attn(norm(x))`, then `h + mlp(norm(h))`.
struct Layer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl Layer {
    fn load(vb: VarBuilder, config: &LlamaConfig, family: Family) -> Result<Self> {
        Ok(Layer {
            input_layernorm: rms_norm(config.hidden_size, config.rms_norm_eps, vb.pp("input_layernorm"))?,
            self_attn: Attention::load(vb.pp("self_attn"), config, family)?,
            post_attention_layernorm: rms_norm(config.hidden_size, config.rms_norm_eps, vb.pp("post_attention_layernorm"))?,
            mlp: Mlp::load(vb.pp("mlp"), config)?,
        })
    }

    fn forward(&self, xs: &Tensor, cos: &Tensor, sin: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let attended = (xs + self.self_attn.forward(&self.input_layernorm.forward(xs)?, cos, sin, bias)?)?;
        &attended + self.mlp.forward(&self.post_attention_layernorm.forward(&attended)?)?
    }
}

/// A Llama, Qwen2 or Mistral model without its language-model head, with every hidden state
/// returned.
pub struct LlamaModel {
    embed_tokens: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    /// `[1, head_dim / 2]` rotary frequencies.
    inverse_frequencies: Tensor,
}

impl LlamaModel {
    /// Loads `embed_tokens`, `layers.N.*` and `norm` from `vb` (already past any `model.` prefix).
    pub fn load(vb: VarBuilder, config: &LlamaConfig, family: Family) -> Result<Self> {
        let frequencies = config.inverse_frequencies().map_err(candle_core::Error::msg)?;
        let count = frequencies.len();
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp("layers").pp(i), config, family))
            .collect::<Result<_>>()?;
        Ok(LlamaModel {
            embed_tokens: embedding(config.vocab_size, config.hidden_size, vb.pp("embed_tokens"))?,
            layers,
            norm: rms_norm(config.hidden_size, config.rms_norm_eps, vb.pp("norm"))?,
            inverse_frequencies: Tensor::from_vec(frequencies, (1, count), vb.device())?,
        })
    }

    /// Runs the model on `[batch, seq]` u32 ids and mask (1 = token, 0 = padding, on the right).
    /// Returns `num_hidden_layers + 1` tensors of `[batch, seq, hidden]`: the token embeddings,
    /// the output of each layer, the last one passed through the final norm as transformers
    /// returns it.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Vec<Tensor>> {
        let seq = input_ids.dim(1)?;
        let positions = Tensor::arange(0u32, seq as u32, input_ids.device())?.to_dtype(DType::F32)?.reshape((seq, 1))?;
        let angles = positions.matmul(&self.inverse_frequencies)?;
        let (cos, sin) = (angles.cos()?, angles.sin()?);
        let bias = causal_bias(attention_mask)?;
        let mut hidden = Vec::with_capacity(self.layers.len() + 1);
        hidden.push(self.embed_tokens.forward(input_ids)?);
        for layer in &self.layers {
            let next = layer.forward(hidden.last().expect("embeddings pushed first"), &cos, &sin, &bias)?;
            hidden.push(next);
        }
        let last = hidden.pop().expect("embeddings pushed first");
        hidden.push(self.norm.forward(&last)?);
        Ok(hidden)
    }
}

impl ContextualModel for LlamaModel {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Vec<Tensor>> {
        LlamaModel::forward(self, input_ids, attention_mask)
    }
}

/// Reads the config of one family member and loads the weights, with or without the `model.`
/// prefix of `*ForCausalLM` checkpoints.
fn load_family(family: Family, config_json: &str, vb: VarBuilder) -> std::result::Result<super::Loaded, String> {
    let config: LlamaConfig = serde_json::from_str(config_json)
        .map_err(|e| format!("config.json is not a supported {} config: {e}", family.model_type()))?;
    config.validate().map_err(|e| format!("config.json: {e}"))?;
    let vb = if vb.contains_tensor("model.embed_tokens.weight") { vb.pp("model") } else { vb };
    let model = LlamaModel::load(vb, &config, family)
        .map_err(|e| format!("weights do not match config.json: {}", crate::error::candle_message(&e)))?;
    let info = ModelInfo {
        architecture: family.model_type(),
        hidden_size: config.hidden_size,
        num_hidden_layers: config.num_hidden_layers,
        max_positions: config.max_positions(family),
        vocab_size: config.vocab_size,
        // Padding never reaches a real token (causal mask, padded on the right): any id does.
        pad_token_id: config.pad_token_id.filter(|&id| (id as usize) < config.vocab_size).unwrap_or(0),
        causal: true,
    };
    Ok((Box::new(model), info))
}

pub(super) fn load_llama(config_json: &str, vb: VarBuilder) -> std::result::Result<super::Loaded, String> {
    load_family(Family::Llama, config_json, vb)
}

pub(super) fn load_qwen2(config_json: &str, vb: VarBuilder) -> std::result::Result<super::Loaded, String> {
    load_family(Family::Qwen2, config_json, vb)
}

pub(super) fn load_mistral(config_json: &str, vb: VarBuilder) -> std::result::Result<super::Loaded, String> {
    load_family(Family::Mistral, config_json, vb)
}
