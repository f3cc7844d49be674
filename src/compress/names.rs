//! Where each architecture keeps its layers and feed-forward weights: the structural
//! transforms (`prune-neurons`, `drop-layers`) need the names; the others need only to know
//! which tensors belong to a layer. Adding an architecture = one row in [`LAYOUTS`].

/// How one architecture names its layer tensors and the config keys that size them.
#[derive(Debug)]
pub struct Layout {
    /// `config.json`'s `model_type`.
    pub model_type: &'static str,
    /// What precedes a layer's number in a tensor name (`encoder.layer.` in
    /// `bert.encoder.layer.3.attention.self.query.weight`).
    pub layer_prefix: &'static str,
    /// Feed-forward input projections, relative to the layer (their rows are the neurons).
    pub ffn_in: &'static [&'static str],
    /// Feed-forward output projection, relative to the layer (its columns are the neurons).
    pub ffn_out: &'static str,
    /// The config key holding the number of layers.
    pub layers_key: &'static str,
    /// The config key holding the feed-forward width.
    pub ffn_key: &'static str,
    /// Weights stored `[inputs, outputs]` (GPT-2's Conv1D) rather than `[outputs, inputs]`.
    pub transposed: bool,
}

/// BERT's names, shared by the encoders that copied them.
const fn bert_like(model_type: &'static str) -> Layout {
    Layout {
        model_type,
        layer_prefix: "encoder.layer.",
        ffn_in: &["intermediate.dense"],
        ffn_out: "output.dense",
        layers_key: "num_hidden_layers",
        ffn_key: "intermediate_size",
        transposed: false,
    }
}

/// Llama's names, shared by its descendants.
const fn llama_like(model_type: &'static str) -> Layout {
    Layout {
        model_type,
        layer_prefix: "layers.",
        ffn_in: &["mlp.gate_proj", "mlp.up_proj"],
        ffn_out: "mlp.down_proj",
        layers_key: "num_hidden_layers",
        ffn_key: "intermediate_size",
        transposed: false,
    }
}

/// Every architecture whose checkpoints the variants know how to cut.
pub const LAYOUTS: &[Layout] = &[
    bert_like("bert"),
    bert_like("roberta"),
    bert_like("xlm-roberta"),
    bert_like("electra"),
    Layout {
        model_type: "distilbert",
        layer_prefix: "transformer.layer.",
        ffn_in: &["ffn.lin1"],
        ffn_out: "ffn.lin2",
        layers_key: "n_layers",
        ffn_key: "hidden_dim",
        transposed: false,
    },
    Layout {
        model_type: "gpt2",
        layer_prefix: "h.",
        ffn_in: &["mlp.c_fc"],
        ffn_out: "mlp.c_proj",
        layers_key: "n_layer",
        ffn_key: "n_inner",
        transposed: true,
    },
    llama_like("llama"),
    llama_like("qwen2"),
    llama_like("mistral"),
];

impl Layout {
    /// The layout of `model_type`, or `None` when the variants do not know it.
    pub fn of(model_type: &str) -> Option<&'static Layout> {
        LAYOUTS.iter().find(|l| l.model_type == model_type)
    }

    /// `(layer, rest)` of a tensor inside a layer: `(3, "attention.self.query.weight")`.
    pub fn split<'a>(&self, name: &'a str) -> Option<(usize, &'a str)> {
        let mut from = 0;
        while let Some(at) = name[from..].find(self.layer_prefix) {
            let start = from + at;
            // The prefix must start the name or follow a dot (`h.` must not match `branch.`).
            if start == 0 || name.as_bytes()[start - 1] == b'.' {
                let after = &name[start + self.layer_prefix.len()..];
                if let Some((number, rest)) = after.split_once('.')
                    && let Ok(layer) = number.parse()
                {
                    return Some((layer, rest));
                }
            }
            from = start + 1;
        }
        None
    }

    /// The name of layer `layer`'s tensor `rest`, in the spelling `like` (a tensor of any
    /// layer) uses.
    pub fn rename(&self, like: &str, layer: usize) -> Option<String> {
        let (old, rest) = self.split(like)?;
        let head = &like[..like.len() - rest.len() - 1 - old.to_string().len()];
        Some(format!("{head}{layer}.{rest}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_rename() {
        let bert = Layout::of("bert").unwrap();
        assert_eq!(bert.split("bert.encoder.layer.11.output.dense.weight"), Some((11, "output.dense.weight")));
        assert_eq!(bert.split("embeddings.word_embeddings.weight"), None);
        assert_eq!(bert.rename("bert.encoder.layer.11.output.dense.weight", 4).unwrap(), "bert.encoder.layer.4.output.dense.weight");
        let gpt2 = Layout::of("gpt2").unwrap();
        assert_eq!(gpt2.split("h.0.mlp.c_fc.weight"), Some((0, "mlp.c_fc.weight")));
        assert_eq!(gpt2.split("transformer.h.2.attn.c_attn.weight"), Some((2, "attn.c_attn.weight")));
        assert_eq!(gpt2.split("branch.3.x"), None);
    }
}
