//! A BERT encoder that returns every hidden state, not only the last.
//!
//! candle-transformers' `BertModel` returns the last layer only; vecshift needs the
//! embeddings output and each layer's output, so the (small) model is written out here in
//! the same shape: plain structs with `load(vb, &config)` and `forward`.
//!
//! RoBERTa, XLM-RoBERTa, DistilBERT and ELECTRA share BERT's post-norm layer; they load this
//! model with their own `Layout` (tensor names, first position id, token types, a projection
//! of narrower embeddings) rather than copies of it.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder, embedding, layer_norm, linear};

use serde::Deserialize;

use super::{ContextualModel, ModelInfo};
use crate::contextual::nn::{Dense, Mask, add_norm_params, fused_add_norm, kernels};

/// The activation between the two feed-forward projections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenAct {
    /// Exact GELU with erf (`"gelu"` in transformers).
    Gelu,
    /// GELU's tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    #[serde(alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluNew,
    /// ReLU.
    Relu,
}

/// Only absolute position embeddings are implemented (BERT, MiniLM, most derivatives).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionEmbeddingType {
    /// Learned absolute position embeddings.
    #[default]
    Absolute,
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}

fn default_type_vocab_size() -> usize {
    2
}

/// The fields of a Hugging Face BERT `config.json` that the encoder uses.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Size of the WordPiece vocabulary.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    pub hidden_act: HiddenAct,
    /// Longest input, in tokens, that has a position embedding.
    pub max_position_embeddings: usize,
    /// Number of segment (token type) embeddings.
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    /// Epsilon of every layer norm.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Padding token id.
    #[serde(default)]
    pub pad_token_id: u32,
    /// Kind of position embeddings.
    #[serde(default)]
    pub position_embedding_type: PositionEmbeddingType,
}

impl BertConfig {
    /// Checks the invariants the encoder relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.max_position_embeddings < 3 {
            return Err(format!("max_position_embeddings {} is too small", self.max_position_embeddings));
        }
        Ok(())
    }
}

/// Where an architecture with BERT's layers keeps its tensors, and how its embeddings differ
/// from BERT's.
#[derive(Clone, Copy, Debug)]
pub(super) struct Layout {
    /// The stack of layers: `encoder.layer` (BERT) or `transformer.layer` (DistilBERT).
    pub layers: &'static str,
    /// Tensor names inside one layer.
    pub names: &'static LayerNames,
    /// Width of the embedding tables; ELECTRA's may be narrower than the hidden states, and an
    /// `embeddings_project` layer then widens them.
    pub embedding_size: usize,
    /// The first position id: 0, or RoBERTa's `padding_idx + 1`.
    pub position_offset: usize,
    /// Whether there is a token type (segment) table (DistilBERT has none).
    pub token_types: bool,
}

impl Layout {
    /// BERT's own layout.
    pub fn bert(config: &BertConfig) -> Self {
        Layout { layers: "encoder.layer", names: &BERT_NAMES, embedding_size: config.hidden_size, position_offset: 0, token_types: true }
    }
}

/// The names of one layer's tensors, relative to the layer.
#[derive(Debug)]
pub(super) struct LayerNames {
    pub query: &'static str,
    pub key: &'static str,
    pub value: &'static str,
    pub attention_output: &'static str,
    pub attention_norm: &'static str,
    pub intermediate: &'static str,
    pub output: &'static str,
    pub output_norm: &'static str,
}

/// BERT's names (RoBERTa, XLM-RoBERTa and ELECTRA use them too).
pub(super) const BERT_NAMES: LayerNames = LayerNames {
    query: "attention.self.query",
    key: "attention.self.key",
    value: "attention.self.value",
    attention_output: "attention.output.dense",
    attention_norm: "attention.output.LayerNorm",
    intermediate: "intermediate.dense",
    output: "output.dense",
    output_norm: "output.LayerNorm",
};

/// Token, position and segment embeddings, summed and normalised.
pub struct BertEmbeddings {
    word: Embedding,
    position: Embedding,
    token_type: Option<Embedding>,
    norm: LayerNorm,
    position_offset: usize,
    /// Position plus segment-0 embeddings (`[max_positions, hidden]`) and the layer norm, for
    /// the CPU's fused add-and-normalise kernel (every sentence is in segment 0).
    fused: Option<(Tensor, kernels::AddNorm)>,
}

impl BertEmbeddings {
    /// Loads the `embeddings.*` tensors.
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        Self::load_with(vb, config, &Layout::bert(config))
    }

    fn load_with(vb: VarBuilder, config: &BertConfig, layout: &Layout) -> Result<Self> {
        let width = layout.embedding_size;
        let position = embedding(config.max_position_embeddings, width, vb.pp("position_embeddings"))?;
        let token_type = match layout.token_types {
            true => Some(embedding(config.type_vocab_size, width, vb.pp("token_type_embeddings"))?),
            false => None,
        };
        let norm = layer_norm(width, config.layer_norm_eps, vb.pp("LayerNorm"))?;
        let fused = match vb.device().is_cpu() {
            true => {
                let positions = position.embeddings().narrow(0, layout.position_offset, config.max_position_embeddings - layout.position_offset)?;
                let added = match &token_type {
                    Some(token_type) => positions.broadcast_add(&token_type.embeddings().narrow(0, 0, 1)?)?,
                    None => positions,
                };
                Some((added, add_norm_params(vec![0.0; width], &norm, config.layer_norm_eps)?))
            }
            false => None,
        };
        Ok(BertEmbeddings {
            word: embedding(config.vocab_size, width, vb.pp("word_embeddings"))?,
            position,
            token_type,
            norm,
            position_offset: layout.position_offset,
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
        // Padding sits at the end of each row, so every real token's position is its index
        // plus the offset (RoBERTa's cumulative count of non-padding tokens gives the same).
        let offset = self.position_offset as u32;
        let positions = Tensor::arange(offset, offset + seq_len as u32, input_ids.device())?;
        let mut summed = words.broadcast_add(&self.position.forward(&positions)?)?;
        if let Some(token_type) = &self.token_type {
            // Single sentences only: every token is in segment 0.
            summed = summed.add(&token_type.forward(&input_ids.zeros_like()?)?)?;
        }
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
    fn load(vb: VarBuilder, config: &BertConfig, names: &LayerNames) -> Result<Self> {
        let hidden = config.hidden_size;
        let output = Dense::load(hidden, hidden, vb.pp(names.attention_output))?;
        let norm = layer_norm(hidden, config.layer_norm_eps, vb.pp(names.attention_norm))?;
        let parts = [names.query, names.key, names.value].map(|name| linear(hidden, hidden, vb.pp(name)));
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
            add_norm: fused_add_norm(&output, &norm, config.layer_norm_eps)?,
            output,
            norm,
            heads: config.num_attention_heads,
            head_dim: hidden / config.num_attention_heads,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Mask) -> Result<Tensor> {
        let qkv = self.qkv.forward(xs)?;
        let context = match mask {
            Mask::Packed(packing) => kernels::fused_attention(&qkv, &packing.starts, self.heads)?,
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
    fn load(vb: VarBuilder, config: &BertConfig, names: &LayerNames) -> Result<Self> {
        let output = Dense::load(config.intermediate_size, config.hidden_size, vb.pp(names.output))?;
        let norm = layer_norm(config.hidden_size, config.layer_norm_eps, vb.pp(names.output_norm))?;
        Ok(BertLayer {
            attention: BertAttention::load(vb.clone(), config, names)?,
            intermediate: Dense::load(config.hidden_size, config.intermediate_size, vb.pp(names.intermediate))?,
            add_norm: fused_add_norm(&output, &norm, config.layer_norm_eps)?,
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
    /// ELECTRA's `embeddings_project`, from narrower embeddings to the hidden width.
    project: Option<Dense>,
    layers: Vec<BertLayer>,
}

impl BertModel {
    /// Loads `embeddings.*` and `encoder.layer.N.*` from `vb` (already past any `bert.` prefix).
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        Self::load_with(vb, config, &Layout::bert(config))
    }

    fn load_with(vb: VarBuilder, config: &BertConfig, layout: &Layout) -> Result<Self> {
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(vb.pp(layout.layers).pp(i), config, layout.names))
            .collect::<Result<_>>()?;
        let project = match layout.embedding_size == config.hidden_size {
            true => None,
            false => Some(Dense::load(layout.embedding_size, config.hidden_size, vb.pp("embeddings_project"))?),
        };
        Ok(BertModel { embeddings: BertEmbeddings::load_with(vb.pp("embeddings"), config, layout)?, project, layers })
    }

    /// Number of encoder layers (hidden states returned = this + 1).
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Runs the encoder.
    ///
    /// `input_ids` and `attention_mask` are `[batch, seq]` u32 (mask 1 = token, 0 = padding).
    /// Returns `num_layers() + 1` tensors of `[batch, seq, hidden]`: the embeddings output,
    /// then the output of each layer. Rows of padding tokens are not meaningful: on the CPU the
    /// layers never compute them (they are zero).
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Vec<Tensor>> {
        let mask = Mask::new(attention_mask)?;
        let mut hidden = Vec::with_capacity(self.layers.len() + 1);
        let embedded = self.embeddings.forward(input_ids)?;
        let embedded = match &self.project {
            Some(project) => project.forward(&embedded)?,
            None => embedded,
        };
        // On the CPU the layers see only the real tokens, packed; each state is unpacked for pooling.
        let packing = match &mask {
            Mask::Packed(packing) => Some(packing),
            Mask::Bias(_) => None,
        };
        let mut xs = match packing {
            Some(packing) => packing.gather(&embedded)?,
            None => embedded.clone(),
        };
        hidden.push(embedded);
        for layer in &self.layers {
            xs = layer.forward(&xs, &mask)?;
            hidden.push(match packing {
                Some(packing) => packing.scatter(&xs)?,
                None => xs.clone(),
            });
        }
        Ok(hidden)
    }
}

impl ContextualModel for BertModel {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Vec<Tensor>> {
        BertModel::forward(self, input_ids, attention_mask)
    }
}

/// Reads a BERT `config.json` and loads the weights, with or without the `bert.` prefix that
/// checkpoints saved from task models (`BertForMaskedLM`, ...) carry.
pub(super) fn load(config_json: &str, vb: VarBuilder) -> std::result::Result<super::Loaded, String> {
    let config = parse_config(config_json, "BERT")?;
    load_layout(&config, vb, ("bert", "bert"), &Layout::bert(&config))
}

/// Parses a `config.json` of BERT's fields (RoBERTa, XLM-RoBERTa and ELECTRA write the same ones).
pub(super) fn parse_config(config_json: &str, what: &str) -> std::result::Result<BertConfig, String> {
    let config: BertConfig =
        serde_json::from_str(config_json).map_err(|e| format!("config.json is not a supported {what} config: {e}"))?;
    config.validate().map_err(|e| format!("config.json: {e}"))?;
    Ok(config)
}

/// Loads a model of BERT's layers laid out as `layout`, with or without the `prefix` (`bert`,
/// `roberta`, ...) that checkpoints of task models (`...ForMaskedLM`) put before every name.
pub(super) fn load_layout(
    config: &BertConfig,
    vb: VarBuilder,
    (architecture, prefix): (&'static str, &str),
    layout: &Layout,
) -> std::result::Result<super::Loaded, String> {
    let vb = if vb.contains_tensor(&format!("{prefix}.embeddings.word_embeddings.weight")) { vb.pp(prefix) } else { vb };
    let max_positions = config.max_position_embeddings.saturating_sub(layout.position_offset);
    if max_positions < 3 {
        return Err(format!(
            "config.json: max_position_embeddings {} leaves {max_positions} positions after the padding id",
            config.max_position_embeddings
        ));
    }
    let model = BertModel::load_with(vb, config, layout)
        .map_err(|e| format!("weights do not match config.json: {}", crate::error::candle_message(&e)))?;
    let info = ModelInfo {
        architecture,
        hidden_size: config.hidden_size,
        num_hidden_layers: config.num_hidden_layers,
        max_positions,
        vocab_size: config.vocab_size,
        pad_token_id: config.pad_token_id,
        causal: false,
    };
    Ok((Box::new(model), info))
}
