//! ELECTRA's discriminator: BERT's layers after embeddings that may be narrower than the hidden
//! states (`embedding_size`), widened by `embeddings_project`.
//!
//! candle-transformers has no ELECTRA; the config is BERT's plus `embedding_size`, and the
//! layers are [`super::bert`]'s, with the fused CPU kernels. As in transformers, hidden state 0
//! is the projected embeddings output (the first layer's input).

use candle_nn::VarBuilder;
use serde::Deserialize;

use super::Loaded;
use super::bert::{Layout, load_layout, parse_config};

/// `model_type` `electra`: an `ElectraModel` checkpoint, or a discriminator saved with the
/// `electra.` prefix (`ElectraForPreTraining`); a generator's head is ignored.
pub(super) fn load(config_json: &str, vb: VarBuilder) -> Result<Loaded, String> {
    #[derive(Deserialize)]
    struct EmbeddingSize {
        embedding_size: Option<usize>,
    }
    let config = parse_config(config_json, "ELECTRA")?;
    let embedding_size = serde_json::from_str::<EmbeddingSize>(config_json)
        .map_err(|e| format!("config.json is not a supported ELECTRA config: {e}"))?
        .embedding_size
        .unwrap_or(config.hidden_size);
    let layout = Layout { embedding_size, ..Layout::bert(&config) };
    load_layout(&config, vb, ("electra", "electra"), &layout)
}
