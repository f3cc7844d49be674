//! RoBERTa and XLM-RoBERTa: BERT's layers with position ids that start after the padding id.
//!
//! transformers numbers a token's position `padding_idx + 1 + index`, so a checkpoint with 514
//! position embeddings and `padding_idx` 1 takes 512 tokens. The config has BERT's fields
//! (candle-transformers' `xlm_roberta::Config` has them too, but its model returns only the last
//! layer); the layers are [`super::bert`]'s, with the fused CPU kernels.

use candle_nn::VarBuilder;

use super::Loaded;
use super::bert::{Layout, load_layout, parse_config};

/// `model_type` `roberta`: weights with or without the `roberta.` prefix.
pub(super) fn load_roberta(config_json: &str, vb: VarBuilder) -> Result<Loaded, String> {
    load(config_json, vb, "roberta", "RoBERTa")
}

/// `model_type` `xlm-roberta`: the same model; transformers' task models prefix it `roberta.` too.
pub(super) fn load_xlm_roberta(config_json: &str, vb: VarBuilder) -> Result<Loaded, String> {
    load(config_json, vb, "xlm-roberta", "XLM-RoBERTa")
}

fn load(config_json: &str, vb: VarBuilder, architecture: &'static str, what: &str) -> Result<Loaded, String> {
    let config = parse_config(config_json, what)?;
    let layout = Layout { position_offset: config.pad_token_id as usize + 1, ..Layout::bert(&config) };
    load_layout(&config, vb, (architecture, "roberta"), &layout)
}
