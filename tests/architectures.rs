//! The encoder architectures beside BERT (RoBERTa, XLM-RoBERTa, DistilBERT, ELECTRA) against
//! Hugging Face transformers on tiny random checkpoints with each architecture's real tokenizer
//! type (`tests/fixtures/encoders/reference.json`, written by `make_encoders.py` beside it):
//! token ids, the word's pieces, unknown-piece warnings, windowing and every layer's vector.

use std::path::{Path, PathBuf};

use serde_json::Value;
use common::case_occurrence as occurrence;
use vecshift::{ContextualEncoder, Embedder, LayerVectors, ModelSource, Occurrence, Pooling, cosine};

mod common;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoders")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("reference.json")).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

/// Worst cosine and worst max abs difference over every layer of every case.
fn fidelity(expected: &Value, got: &LayerVectors, what: &str) -> (f32, f32) {
    let layers = expected.as_array().unwrap();
    assert_eq!(got.num_layers(), layers.len(), "{what}");
    let mut worst = (1f32, 0f32);
    for (layer, e) in layers.iter().enumerate() {
        let e: Vec<f32> = e.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let a = got.layer(layer).unwrap();
        let c = cosine(a, &e);
        let diff = a.iter().zip(&e).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(c >= 0.99999, "{what} layer {layer}: cosine {c}");
        assert!(diff <= 1e-4, "{what} layer {layer}: max abs diff {diff}");
        worst = (worst.0.min(c), worst.1.max(diff));
    }
    worst
}

#[test]
fn the_fixture_covers_every_tokenizer_convention() {
    let reference = reference();
    let archs = reference["architectures"].as_object().unwrap();
    let types: Vec<&str> = archs.values().map(|a| a["model_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["distilbert", "electra", "roberta", "xlm-roberta", "xlm-roberta"]);
    let pieces = |arch: &str| -> Vec<String> { archs[arch]["cases"].as_array().unwrap().iter().flat_map(|c| strings(&c["pieces"])).collect() };
    assert!(pieces("roberta").iter().any(|p| p == "Ġbank"), "byte-level BPE's leading space");
    assert!(pieces("xlm-roberta").iter().any(|p| p == "▁bank"), "SentencePiece's ▁");
    assert!(pieces("distilbert").iter().any(|p| p.starts_with("##")), "WordPiece's ##");
    assert!(pieces("xlm-roberta-bytes").iter().any(|p| p == "<0xF0>"), "SentencePiece's byte fallback");
    assert!(archs.values().any(|a| a["sharded"] == true), "a sharded checkpoint");
    for (name, arch) in archs {
        let cases = arch["cases"].as_array().unwrap();
        assert!(cases.iter().any(|c| c["windowed_from"].is_u64()), "{name}: a windowed sentence");
        assert!(cases.iter().any(|c| c["pieces"].as_array().unwrap().len() > 1), "{name}: a word of several pieces");
        assert!(cases.iter().any(|c| !c["sentence"].as_str().unwrap().is_ascii()), "{name}: CJK and emoji");
    }
}

#[test]
fn every_architecture_matches_transformers_on_every_layer() {
    let reference = reference();
    let mut report = Vec::new();
    for (name, arch) in reference["architectures"].as_object().unwrap() {
        let dir = root().join(name);
        let encoder = ContextualEncoder::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(encoder.architecture(), arch["model_type"].as_str().unwrap());
        assert_eq!(encoder.num_layers() as u64, arch["num_layers"].as_u64().unwrap(), "{name}");
        assert_eq!(encoder.dims() as u64, arch["hidden_size"].as_u64().unwrap(), "{name}");
        assert_eq!(encoder.max_positions().map(|m| m as u64), arch["max_positions"].as_u64(), "{name}");
        let cases = arch["cases"].as_array().unwrap();
        let occurrences: Vec<Occurrence> = cases.iter().map(occurrence).collect();
        let embeddings = encoder.embed_batch(&occurrences, Pooling::Mean).unwrap();
        let mut worst = (1f32, 0f32);
        for ((case, occ), embedding) in cases.iter().zip(&occurrences).zip(embeddings) {
            let what = format!("{name} {:?}", case["note"].as_str().unwrap());
            let embedding = embedding.unwrap_or_else(|e| panic!("{what}: {e}"));
            let tokens = encoder.tokenize(occ).unwrap();
            let ids: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            assert_eq!(tokens.ids, ids, "{what}");
            let positions: Vec<usize> = case["word_token_indices"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            assert_eq!(tokens.word_tokens.clone().collect::<Vec<_>>(), positions, "{what}");
            assert_eq!(embedding.pieces, strings(&case["pieces"]), "{what}: the pooled pieces are the real tokens");
            assert_eq!(embedding.unknown, strings(&case["unknown"]), "{what}: unknown pieces are reported");
            assert_eq!(embedding.windowed_from.map(|w| w as u64), case["windowed_from"].as_u64(), "{what}");
            let (c, d) = fidelity(&case["mean"], &embedding.vectors, &what);
            worst = (worst.0.min(c), worst.1.max(d));
        }
        report.push(format!("{name}: worst cosine {:.7} (1 - cos = {:.1e}), worst max abs diff {:.2e}", worst.0, 1.0 - worst.0, worst.1));
    }
    eprintln!("fidelity vs transformers:\n  {}", report.join("\n  "));
}

#[test]
fn a_word_the_tokenizer_cannot_represent_is_flagged_not_silent() {
    // The emoji is [UNK] for WordPiece and <unk> for the Unigram model; byte-level BPE and
    // byte fallback have a piece for every byte, so nothing is unknown there.
    let cases = [("distilbert", "[UNK]"), ("electra", "[UNK]"), ("xlm-roberta", "<unk>"), ("roberta", ""), ("xlm-roberta-bytes", "")];
    for (name, unknown) in cases {
        let encoder = ContextualEncoder::load(root().join(name)).unwrap();
        let found = encoder.embed(&Occurrence::find("🦀", "I love 🦀 crabs.").unwrap(), Pooling::Mean).unwrap();
        assert_eq!(found.has_unknown(), !unknown.is_empty(), "{name}: {found:?}");
        if !unknown.is_empty() {
            assert!(found.unknown.iter().all(|p| p == unknown) && found.pieces.contains(&unknown.to_owned()), "{name}: {:?}", found.unknown);
        }
        // A word the tokenizer knows is not flagged.
        let bank = encoder.embed(&Occurrence::find("bank", "We sat on the river bank.").unwrap(), Pooling::Mean).unwrap();
        assert!(!bank.has_unknown(), "{name}: {bank:?}");
    }
}

#[test]
fn roberta_positions_start_after_the_padding_id() {
    // 34 position embeddings with padding_idx 1: positions 2..=33, so 32 tokens; a window of
    // 33 would index past the table, one of 31 would waste a position.
    let roberta = ContextualEncoder::load(root().join("roberta")).unwrap();
    assert_eq!(roberta.max_positions(), Some(32));
    let sentence = format!("{} we watched the bank today . {}", "the old man sat by the water . ".repeat(6), "the old man sat by the water . ".repeat(6));
    let tokens = roberta.tokenize(&Occurrence::find("bank", &sentence).unwrap()).unwrap();
    assert!(tokens.windowed_from.unwrap() > 32);
    assert_eq!(tokens.ids.len(), 32);
    assert_eq!(tokens.pieces, ["Ġbank"]);
}

#[test]
fn a_sharded_checkpoint_loads_from_its_index_and_as_a_source() {
    let dir = root().join("xlm-roberta");
    assert!(!dir.join("model.safetensors").exists() && dir.join("model.safetensors.index.json").is_file());
    let files = ModelSource::parse(dir.to_str().unwrap()).unwrap().resolve().unwrap();
    let shards = files.weight_files().unwrap();
    assert!(shards.len() > 1, "{shards:?}");
    assert!(shards.iter().all(|s| s.parent() == Some(dir.as_path()) && s.is_file()), "{shards:?}");
}
