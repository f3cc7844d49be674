//! The BERT encoder against Hugging Face transformers (PyTorch) on the same weights.
//!
//! `tests/fixtures/bert/minilm_reference.json` is written by `make_minilm_reference.py`
//! next to it, which runs transformers on the embedded `data/all-MiniLM-L6-v2`.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;
use vecshift::{BertEncoder, Embedder, EngineKind, Locator, Occurrence, Pooling, cosine};

fn reference() -> &'static Value {
    static REFERENCE: OnceLock<Value> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert/minilm_reference.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn encoder() -> &'static BertEncoder {
    static ENCODER: OnceLock<BertEncoder> = OnceLock::new();
    ENCODER.get_or_init(|| BertEncoder::load_default().expect("the embedded model loads"))
}

fn cases() -> &'static [Value] {
    reference()["cases"].as_array().unwrap()
}

fn occurrence(case: &Value) -> Occurrence {
    let span = case["span"].as_array().unwrap();
    let span = span[0].as_u64().unwrap() as usize..span[1].as_u64().unwrap() as usize;
    Occurrence::locate("", case["sentence"].as_str().unwrap(), &Locator::Span(span)).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[test]
fn reference_covers_what_the_fidelity_bound_is_about() {
    let cases = cases();
    assert!(cases.len() >= 10);
    assert!(cases.iter().any(|c| c["word_token_indices"].as_array().unwrap().len() > 1), "a multi-piece word");
    assert!(cases.iter().any(|c| !c["sentence"].as_str().unwrap().is_ascii()), "non-ASCII text");
    assert!(cases.iter().any(|c| {
        let sentence = c["sentence"].as_str().unwrap();
        let span = c["span"].as_array().unwrap();
        sentence[span[0].as_u64().unwrap() as usize..].starts_with(|ch: char| ch.is_uppercase())
    }), "a capitalised target");
    assert!(cases.iter().any(|c| c["input_ids"].as_array().unwrap().len() > 128), "longer than MiniLM's tokenizer padding");
}

#[test]
fn finder_agrees_with_the_reference_spans() {
    for case in cases() {
        let found = Occurrence::find(case["word"].as_str().unwrap(), case["sentence"].as_str().unwrap()).unwrap();
        assert_eq!(found, occurrence(case), "{}", case["sentence"]);
    }
}

#[test]
fn tokenization_matches_transformers() {
    let bert = encoder();
    for case in cases() {
        let tokens = bert.tokenize(&occurrence(case)).unwrap();
        let ids: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let pieces: Vec<usize> = case["word_token_indices"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(tokens.ids, ids, "{}", case["sentence"]);
        assert_eq!(tokens.word_tokens.clone().collect::<Vec<_>>(), pieces, "{}", case["sentence"]);
        assert_eq!(tokens.windowed_from, None);
    }
}

#[test]
fn every_layer_matches_pytorch_for_every_pooling() {
    assert_eq!(encoder().kind(), EngineKind::Contextual);
    assert_eq!(encoder().num_layers(), 7);
    assert_eq!(encoder().dims(), 384);
    let occurrences: Vec<Occurrence> = cases().iter().map(occurrence).collect();
    let mut worst_cos = 1f32;
    let mut worst_diff = 0f32;
    for (pooling, key) in [(Pooling::Mean, "mean"), (Pooling::First, "first"), (Pooling::Last, "last")] {
        // A fresh encoder per pooling would reload the weights; pooling is a cheap switch.
        let bert = encoder();
        let got: Vec<_> = bert.embed_batch(&occurrences, pooling).unwrap().into_iter().map(|r| r.unwrap().vectors).collect();
        for (case, vectors) in cases().iter().zip(&got) {
            let expected = case[key].as_array().unwrap();
            assert_eq!(vectors.num_layers(), expected.len());
            for (layer, e) in expected.iter().enumerate() {
                let e = floats(e);
                let a = vectors.layer(layer).unwrap();
                let c = cosine(a, &e);
                let diff = a.iter().zip(&e).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
                worst_cos = worst_cos.min(c);
                worst_diff = worst_diff.max(diff);
                assert!(c >= 0.99999, "{key} layer {layer} {:?}: cosine {c}", case["sentence"]);
                assert!(diff <= 1e-4, "{key} layer {layer} {:?}: max abs diff {diff}", case["sentence"]);
            }
        }
    }
    eprintln!("fidelity vs PyTorch: worst cosine {worst_cos}, worst max abs diff {worst_diff:e}");
}

#[test]
fn batched_equals_one_at_a_time() {
    let bert = encoder();
    let occurrences: Vec<Occurrence> = cases().iter().map(occurrence).collect();
    let batched: Vec<_> = bert.embed_batch(&occurrences, Pooling::Mean).unwrap().into_iter().map(|r| r.unwrap().vectors).collect();
    for (occ, b) in occurrences.iter().zip(&batched) {
        let single = bert.embed(occ, Pooling::Mean).unwrap().vectors;
        for (x, y) in single.layers().iter().flatten().zip(b.layers().iter().flatten()) {
            assert!((x - y).abs() <= 1e-5, "{:?}: {x} vs {y}", occ.sentence());
        }
    }
}

#[test]
fn long_sentences_are_windowed_around_the_target() {
    let bert = encoder();
    let filler = "the quick brown fox jumps over the lazy dog ".repeat(80);
    for (sentence, label) in [
        (format!("My bank {filler}"), "start"),
        (format!("{filler} then the bank closed {filler}"), "middle"),
        (format!("{filler} near the bank"), "end"),
    ] {
        let occ = Occurrence::find("bank", &sentence).unwrap();
        let tokens = bert.tokenize(&occ).unwrap();
        assert!(tokens.windowed_from.unwrap() > 512, "{label}");
        assert_eq!(tokens.ids.len(), 512, "{label}");
        let bank = bert.tokenizer().token_to_id("bank").unwrap();
        assert_eq!(tokens.ids[tokens.word_tokens.start], bank, "{label}: the window keeps the target");
        assert_eq!(tokens.ids[0], bert.tokenizer().token_to_id("[CLS]").unwrap());
        assert_eq!(tokens.ids[511], bert.tokenizer().token_to_id("[SEP]").unwrap());
        let vectors = bert.embed(&occ, Pooling::Mean).unwrap().vectors;
        assert!(vectors.layers().iter().flatten().all(|v| v.is_finite()));
    }
}
