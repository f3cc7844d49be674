//! One file per architecture, chosen by `config.json`'s `model_type` as candle-transformers and
//! transformers do.
//!
//! Each architecture is a plain struct with `load(vb, &config)` and `forward`, written after
//! candle-transformers' model of the same name but returning every hidden state (candle's
//! return only the last), with the layers of `contextual::nn` (BERT's fused CPU kernels, the
//! decoders' causal attention). Adding one is a file
//! here, a row in [`ARCHITECTURES`] and a fixture generator beside its fidelity test.

pub mod bert;
pub mod gpt2;
pub mod llama;
mod distilbert;
mod electra;
mod roberta;

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

/// A transformer that returns the embeddings output and the output of every layer.
pub trait ContextualModel: Send + Sync {
    /// Runs the model on `[batch, seq]` u32 token ids and attention mask (1 = token,
    /// 0 = padding). Returns `num_hidden_layers + 1` tensors of `[batch, seq, hidden]`, the
    /// embeddings output first. Rows of padding tokens are not meaningful.
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Vec<Tensor>>;
}

/// What the architecture-independent pipeline needs to know of a loaded model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// The `model_type` it was loaded as (`bert`, ...).
    pub architecture: &'static str,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of transformer layers (hidden states returned = this + 1).
    pub num_hidden_layers: usize,
    /// Most tokens, special tokens included, one sequence may have.
    pub max_positions: usize,
    /// Size of the embedding table.
    pub vocab_size: usize,
    /// Token id that pads a batch.
    pub pad_token_id: u32,
    /// A decoder: each token sees only the tokens to its left.
    pub causal: bool,
}

/// A loaded model and what the pipeline needs to know of it.
pub type Loaded = (Box<dyn ContextualModel>, ModelInfo);

/// One supported `model_type` and how to load it.
pub struct Architecture {
    /// The `model_type` value of `config.json`.
    pub model_type: &'static str,
    /// Parses `config.json` and loads the weights; errors are plain text for [`crate::Error::Model`].
    load: fn(&str, VarBuilder) -> std::result::Result<Loaded, String>,
}

/// Every supported architecture.
pub const ARCHITECTURES: &[Architecture] = &[
    Architecture { model_type: "bert", load: bert::load },
    Architecture { model_type: "gpt2", load: gpt2::load },
    Architecture { model_type: "llama", load: llama::load_llama },
    Architecture { model_type: "qwen2", load: llama::load_qwen2 },
    Architecture { model_type: "mistral", load: llama::load_mistral },
    Architecture { model_type: "roberta", load: roberta::load_roberta },
    Architecture { model_type: "xlm-roberta", load: roberta::load_xlm_roberta },
    Architecture { model_type: "distilbert", load: distilbert::load },
    Architecture { model_type: "electra", load: electra::load },
];

/// The supported `model_type`s, for messages.
pub fn supported_model_types() -> String {
    ARCHITECTURES.iter().map(|a| a.model_type).collect::<Vec<_>>().join(", ")
}

/// Loads the architecture `config.json` names. A `model_type` that is not supported is refused
/// rather than loaded as another architecture: its position ids or layer order would differ and
/// the vectors would be silently wrong.
pub fn load(config_json: &str, vb: VarBuilder) -> std::result::Result<Loaded, String> {
    #[derive(Deserialize)]
    struct ModelType {
        model_type: Option<String>,
    }
    let model_type = serde_json::from_str::<ModelType>(config_json)
        .map_err(|e| format!("config.json is not valid JSON: {e}"))?
        .model_type
        .ok_or_else(|| format!("config.json has no \"model_type\"; supported: {}", supported_model_types()))?;
    let architecture = ARCHITECTURES.iter().find(|a| a.model_type == model_type).ok_or_else(|| {
        format!("model_type {model_type:?} is not supported; supported: {}", supported_model_types())
    })?;
    (architecture.load)(config_json, vb)
}
