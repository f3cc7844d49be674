//! Checkpoint variants (f32 / f16 / bf16 weights, with and without the `bert.` prefix) on
//! tiny random models, against transformers' outputs for each
//! (`tests/fixtures/tiny_bert/reference.json`, written by `make_tiny_bert.py`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use common::case_occurrence as occurrence;
use vecshift::{BertEncoder, Embedder, Occurrence, Pooling, cosine};

mod common;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_bert")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("reference.json")).unwrap()).unwrap()
}

#[test]
fn every_weight_variant_matches_transformers() {
    let reference = reference();
    let variants = reference["variants"].as_object().unwrap();
    assert_eq!(variants.len(), 3);
    for (name, variant) in variants {
        let cases = variant["cases"].as_array().unwrap();
        let occurrences: Vec<Occurrence> = cases.iter().map(occurrence).collect();
        for (pooling, key) in [(Pooling::Mean, "mean"), (Pooling::First, "first"), (Pooling::Last, "last")] {
            let bert = BertEncoder::load(root().join(name)).unwrap();
            assert_eq!(bert.num_layers(), 3);
            assert_eq!(bert.dims(), 32);
            let got: Vec<_> = bert.embed_batch(&occurrences, pooling).unwrap().into_iter().map(|r| r.unwrap().vectors).collect();
            for (case, vectors) in cases.iter().zip(&got) {
                let tokens = bert.tokenize(&occurrence(case)).unwrap();
                let ids: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
                assert_eq!(tokens.ids, ids, "{name}: {}", case["sentence"]);
                for (layer, expected) in case[key].as_array().unwrap().iter().enumerate() {
                    let expected: Vec<f32> = expected.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
                    let actual = vectors.layer(layer).unwrap();
                    let diff = actual.iter().zip(&expected).map(|(a, e)| (a - e).abs()).fold(0f32, f32::max);
                    assert!(cosine(actual, &expected) >= 0.99999, "{name} {key} layer {layer}: {}", case["sentence"]);
                    assert!(diff <= 1e-4, "{name} {key} layer {layer}: diff {diff}");
                }
            }
        }
    }
}

#[test]
fn sentences_longer_than_the_positions_are_windowed_not_cut() {
    // max_position_embeddings is 64 here, so 100 words must be windowed.
    let bert = BertEncoder::load(root().join("f32_noprefix")).unwrap();
    let before = "the old man sat by the river . ".repeat(12);
    let sentence = format!("{before}she was walking to the bank . {before}");
    let occ = Occurrence::find("bank", &sentence).unwrap();
    let tokens = bert.tokenize(&occ).unwrap();
    assert!(tokens.windowed_from.unwrap() > 64);
    assert_eq!(tokens.ids.len(), 64);
    let bank = bert.tokenizer().token_to_id("bank").unwrap();
    assert_eq!(tokens.ids[tokens.word_tokens.clone()], [bank]);
    // The window is centred: plenty of context on both sides.
    assert!(tokens.word_tokens.start > 20 && tokens.word_tokens.start < 44, "{:?}", tokens.word_tokens);

    // The same window encoded on its own gives the same vectors: nothing else leaks in.
    let windowed = bert.embed(&occ, Pooling::Mean).unwrap().vectors;
    let direct = bert.encode_tokenized(&[tokens], Pooling::Mean).unwrap().pop().unwrap();
    assert_eq!(windowed, direct);
}

#[test]
fn pickle_only_checkpoints_are_refused() {
    let err = BertEncoder::load(root().join("pickle_only")).err().unwrap().to_string();
    assert!(err.contains("pickle") && err.contains("pytorch_model.bin"), "{err}");
}

#[test]
fn broken_checkpoints_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("f32_noprefix");
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(src.join(file), dir.path().join(file)).unwrap();
    }
    let config = std::fs::read_to_string(src.join("config.json")).unwrap();
    let with = |from: &str, to: &str| std::fs::write(dir.path().join("config.json"), config.replace(from, to)).unwrap();

    with("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"swish\"");
    let err = BertEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(err.contains("config.json") && err.contains("swish"), "{err}");

    with("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
    let err = BertEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(err.contains("encoder.layer.2"), "names the missing tensor: {err}");

    // Loading another architecture's checkpoint as BERT would give silently wrong vectors (RoBERTa's
    // position ids start after the padding index): an unsupported model_type is refused.
    for other in ["deberta-v2", "t5", "my_model"] {
        with("\"model_type\": \"bert\"", &format!("\"model_type\": \"{other}\""));
        let err = BertEncoder::load(dir.path()).err().unwrap().to_string();
        assert!(err.contains(&format!("model_type \"{other}\" is not supported")) && err.contains("supported: bert"), "{err}");
    }
    with("\"model_type\": \"bert\",", "");
    let err = BertEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(err.contains("no \"model_type\""), "{err}");

    with("\"intermediate_size\": 64", "\"intermediate_size\": 65");
    let err = BertEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(err.contains("shape"), "{err}");

    with("\"max_position_embeddings\": 64", "\"max_position_embeddings\": 64, \"position_embedding_type\": \"relative_key\"");
    let err = BertEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(err.contains("relative_key"), "{err}");

    std::fs::write(dir.path().join("config.json"), &config).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), b"not safetensors").unwrap();
    let err = BertEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}
