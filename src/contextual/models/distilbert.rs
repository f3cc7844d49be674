//! DistilBERT: BERT's post-norm layers under other names, no token types.
//!
//! candle-transformers' `distilbert::Config` keeps its fields private and its model returns only
//! the last layer, so the config is read here and the layers are [`super::bert`]'s, with the
//! fused CPU kernels.

use candle_nn::VarBuilder;
use serde::Deserialize;

use super::Loaded;
use super::bert::{BertConfig, HiddenAct, LayerNames, Layout, PositionEmbeddingType, load_layout};

/// The fields of a DistilBERT `config.json` that the encoder uses.
#[derive(Deserialize)]
struct DistilBertConfig {
    vocab_size: usize,
    dim: usize,
    n_layers: usize,
    n_heads: usize,
    hidden_dim: usize,
    activation: HiddenAct,
    max_position_embeddings: usize,
    #[serde(default)]
    pad_token_id: u32,
}

/// DistilBERT's names of BERT's tensors.
const NAMES: LayerNames = LayerNames {
    query: "attention.q_lin",
    key: "attention.k_lin",
    value: "attention.v_lin",
    attention_output: "attention.out_lin",
    attention_norm: "sa_layer_norm",
    intermediate: "ffn.lin1",
    output: "ffn.lin2",
    output_norm: "output_layer_norm",
};

/// `model_type` `distilbert`: weights with or without the `distilbert.` prefix. Sinusoidal
/// position embeddings (`sinusoidal_pos_embds`) are stored in the checkpoint like learned ones.
pub(super) fn load(config_json: &str, vb: VarBuilder) -> Result<Loaded, String> {
    let c: DistilBertConfig =
        serde_json::from_str(config_json).map_err(|e| format!("config.json is not a supported DistilBERT config: {e}"))?;
    let config = BertConfig {
        vocab_size: c.vocab_size,
        hidden_size: c.dim,
        num_hidden_layers: c.n_layers,
        num_attention_heads: c.n_heads,
        intermediate_size: c.hidden_dim,
        hidden_act: c.activation,
        max_position_embeddings: c.max_position_embeddings,
        type_vocab_size: 0,
        // transformers' DistilBERT fixes every layer norm's epsilon.
        layer_norm_eps: 1e-12,
        pad_token_id: c.pad_token_id,
        position_embedding_type: PositionEmbeddingType::Absolute,
    };
    config.validate().map_err(|e| format!("config.json: {e}"))?;
    let layout = Layout { layers: "transformer.layer", names: &NAMES, token_types: false, ..Layout::bert(&config) };
    load_layout(&config, vb, ("distilbert", "distilbert"), &layout)
}
