//! Decoders (GPT-2, Llama, Qwen2, Mistral) on tiny random checkpoints against transformers'
//! hidden states (`tests/fixtures/decoders/reference.json`, written by `make_decoders.py`): every
//! layer, last-piece and mean pooling. The sentences are encoded in one padded batch while the
//! reference ran each alone, so padding that leaked into a real token's vector would show.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vecshift::{ContextualEncoder, Embedder, Locator, Occurrence, Pooling, cosine};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decoders")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("reference.json")).unwrap()).unwrap()
}

fn occurrence(case: &Value) -> Occurrence {
    let span = case["span"].as_array().unwrap();
    let span = span[0].as_u64().unwrap() as usize..span[1].as_u64().unwrap() as usize;
    Occurrence::locate("", case["sentence"].as_str().unwrap(), &Locator::Span(span)).unwrap()
}

fn floats(value: &Value) -> Vec<f32> {
    value.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// Loads `dir`, checks the model against the reference cases of `name` for every layer and both
/// poolings, and returns the worst cosine and the largest absolute difference seen.
fn check(name: &str, dir: &Path, model: &Value) -> (f32, f32) {
    let encoder = ContextualEncoder::load(dir).unwrap();
    let layers = model["num_hidden_layers"].as_u64().unwrap() as usize + 1;
    assert_eq!(encoder.num_layers(), layers);
    assert_eq!(encoder.dims(), model["hidden_size"].as_u64().unwrap() as usize);
    assert!(encoder.is_causal(), "{name} is a decoder");
    assert_eq!(encoder.default_pooling(), Pooling::Last, "{name}: a decoder's word vector is its last piece's");
    let cases = model["cases"].as_array().unwrap();
    let occurrences: Vec<Occurrence> = cases.iter().map(occurrence).collect();
    let (mut worst_cosine, mut worst_diff) = (1f32, 0f32);
    for (pooling, key) in [(Pooling::Last, "last"), (Pooling::Mean, "mean")] {
        let got = encoder.embed_batch(&occurrences, pooling).unwrap();
        for (case, embedding) in cases.iter().zip(got) {
            let embedding = embedding.unwrap();
            let sentence = case["sentence"].as_str().unwrap();
            let tokens = encoder.tokenize(&occurrence(case)).unwrap();
            let ids: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            assert_eq!(tokens.ids, ids, "{name}: {sentence}");
            let indices: Vec<usize> =
                case["word_token_indices"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            assert_eq!(tokens.word_tokens.clone().collect::<Vec<_>>(), indices, "{name}: {sentence}");
            let pieces: Vec<&str> = case["word_pieces"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            assert_eq!(embedding.pieces, pieces, "{name}: {sentence}");
            assert!(embedding.unknown.is_empty(), "{name}: {sentence}");
            let expected = case[key].as_array().unwrap();
            assert_eq!(expected.len(), layers);
            for (layer, expected) in expected.iter().enumerate() {
                let expected = floats(expected);
                let actual = embedding.vectors.layer(layer).unwrap();
                let cos = cosine(actual, &expected);
                let diff = actual.iter().zip(&expected).map(|(a, e)| (a - e).abs()).fold(0f32, f32::max);
                assert!(cos >= 0.99999, "{name} {key} layer {layer}: cosine {cos} for {sentence}");
                assert!(diff <= 1e-4, "{name} {key} layer {layer}: max abs diff {diff} for {sentence}");
                worst_cosine = worst_cosine.min(cos);
                worst_diff = worst_diff.max(diff);
            }
        }
    }
    eprintln!("{name}: {layers} layers, worst cosine {worst_cosine:.7}, max abs diff {worst_diff:.2e}");
    (worst_cosine, worst_diff)
}

fn check_model(name: &str) {
    let reference = reference();
    let model = &reference["models"][name];
    check(name, &root().join(name), model);
}

#[test]
fn gpt2_matches_transformers() {
    check_model("gpt2");
}

#[test]
fn llama_with_grouped_query_attention_matches_transformers() {
    check_model("llama");
}

#[test]
fn qwen2_with_query_key_value_biases_matches_transformers() {
    check_model("qwen2");
}

#[test]
fn mistral_matches_transformers_and_windows_at_its_sliding_window() {
    check_model("mistral");
    // sliding_window 48 < max_position_embeddings 128: longer sentences are cut to a window of 48
    // tokens rather than masked differently from transformers.
    let encoder = ContextualEncoder::load(root().join("mistral")).unwrap();
    assert_eq!(encoder.max_positions(), Some(48));
    let filler = "the old man sat by the river . ".repeat(8);
    let occurrence = Occurrence::find("bank", &format!("{filler}she walked to the bank . {filler}")).unwrap();
    let tokens = encoder.tokenize(&occurrence).unwrap();
    assert_eq!(tokens.ids.len(), 48);
    assert!(tokens.windowed_from.unwrap() > 48);
}

#[test]
fn llama3_rope_scaling_matches_transformers() {
    // The llama weights under another config.json: its rope_parameters replaced.
    let reference = reference();
    let model = &reference["models"]["llama3_rope"];
    let dir = tempfile::tempdir().unwrap();
    for file in ["tokenizer.json", "model.safetensors"] {
        std::fs::copy(root().join("llama").join(file), dir.path().join(file)).unwrap();
    }
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(root().join("llama/config.json")).unwrap()).unwrap();
    for (key, value) in model["config_override"].as_object().unwrap() {
        config[key] = value.clone();
    }
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    check("llama3_rope", dir.path(), model);
}

#[test]
fn long_sentences_keep_the_left_context_of_a_decoder() {
    // A decoder's word depends only on what precedes it: the window ends with the word.
    let filler = "the old man sat by the river . ";
    let sentence = format!("{}she walked to the bank . {}", filler.repeat(20), filler.repeat(12));
    let occurrence = Occurrence::find("bank", &sentence).unwrap();
    for (name, positions, lead) in [("gpt2", 64, 0), ("llama", 128, 1)] {
        let encoder = ContextualEncoder::load(root().join(name)).unwrap();
        let tokens = encoder.tokenize(&occurrence).unwrap();
        assert!(tokens.windowed_from.unwrap() > positions, "{name}");
        assert_eq!(tokens.ids.len(), positions, "{name}");
        assert_eq!(tokens.word_tokens.end, positions, "{name}: {:?}", tokens.word_tokens);
        assert_eq!(tokens.ids[..lead], encoder.tokenize(&Occurrence::find("bank", "bank").unwrap()).unwrap().ids[..lead], "{name}");
    }
}

#[test]
fn gpt2_sees_only_the_left_context() {
    // Changing the words after the target leaves its vectors alone; changing those before does not.
    let encoder = ContextualEncoder::load(root().join("gpt2")).unwrap();
    let embed = |sentence: &str| encoder.embed(&Occurrence::find("bank", sentence).unwrap(), Pooling::Last).unwrap().vectors;
    let base = embed("we sat on the river bank and watched the water.");
    let after = embed("we sat on the river bank while the birds sang in the trees.");
    let before = embed("she walked to the old bank and watched the water.");
    let last = encoder.num_layers() - 1;
    for layer in 0..=last {
        // Equal up to the order of the sums (the products have other shapes).
        let diff = base.layer(layer).unwrap().iter().zip(after.layer(layer).unwrap()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff <= 1e-5, "layer {layer}: {diff}");
    }
    assert!(cosine(base.layer(last).unwrap(), before.layer(last).unwrap()) < 0.999);
}
