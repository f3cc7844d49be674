//! `vecshift distill` against transformers: `tests/fixtures/distill/reference.json`, written by
//! `make_reference.py` there, holds each word's mean contextual vector over `corpus.txt`
//! (BertModel on the embedded all-MiniLM-L6-v2) and the word counts.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use vecshift::compress::distill::{DistillOptions, Distiller};
use vecshift::{ContextualEncoder, Embedder, StaticEngine, cosine};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/distill").join(name)
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap()
}

/// The reference's words and counts, most frequent first.
fn counts(reference: &Value) -> Vec<(String, usize)> {
    reference["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_u64().unwrap() as usize))
        .collect()
}

/// Each reference word's vector at `layer` against the engine's, by cosine and by length.
fn check_vectors(engine: &StaticEngine, reference: &Value, layer: &str) {
    for (word, want) in reference["layers"][layer].as_object().unwrap() {
        let want: Vec<f32> = want.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let got = engine.lookup(word).unwrap_or_else(|e| panic!("{word}: {e}")).vector;
        let c = cosine(&got, &want);
        assert!(c >= 0.99999, "layer {layer} {word:?}: cosine {c}");
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm(&got) / norm(&want) - 1.0).abs() < 1e-4, "layer {layer} {word:?}: length");
    }
}

#[test]
fn distilled_vectors_are_the_mean_over_occurrences_as_transformers_computes_them() {
    let reference = reference();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("minilm-l3.fifu");
    let corpus = fixture("corpus.txt");
    let summary = common::json(&["distill", "--corpus", corpus.to_str().unwrap(), "--layer", "3", "-o", out.to_str().unwrap(), "--json"]);
    let counts = counts(&reference);
    assert_eq!(summary["words"], counts.len());
    assert_eq!(summary["lowercase"], true, "MiniLM's tokenizer lowercases");
    assert_eq!(summary["stats"]["occurrences"], counts.iter().map(|c| c.1).sum::<usize>());
    assert_eq!(summary["stats"]["sentences"], 11);
    assert_eq!(summary["stats"]["sentences_skipped"], 2, "a blank line and one of punctuation only");

    let engine = StaticEngine::open(&out).unwrap();
    let words: Vec<&str> = counts.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(engine.words(), words, "most frequent first, ties in the order first seen");
    check_vectors(&engine, &reference, "3");
    assert!(std::fs::read_dir(dir.path()).unwrap().count() == 1, "no temporary file left");

    // The distilled file is a static engine like any other: eval wordsim scores it, with the
    // cosines of the reference's vectors.
    let pairs = dir.path().join("pairs.tsv");
    std::fs::write(&pairs, "bank\triver\t6.0\nbank\tthe\t1.0\nbat\triver\t2.0\nrising\triver\t7.0\nof\tthe\t5.0\n").unwrap();
    let eval = common::json(&["eval", "wordsim", pairs.to_str().unwrap(), "--vectors", out.to_str().unwrap(), "--static-only", "--per-pair", "--json"]);
    assert_eq!(eval[0]["pairs_used"], 5);
    let vector = |w: &str| -> Vec<f32> { reference["layers"]["3"][w].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect() };
    for pair in eval[0]["pairs"].as_array().unwrap() {
        let (a, b) = (pair["word1"].as_str().unwrap(), pair["word2"].as_str().unwrap());
        let want = cosine(&vector(a), &vector(b));
        assert!((pair["cosine"].as_f64().unwrap() - f64::from(want)).abs() < 1e-5, "{a} {b}: {pair} vs {want}");
    }
}

#[test]
fn the_library_distills_any_sentence_embedder_and_keeps_frequent_words() {
    let reference = reference();
    let bert = ContextualEncoder::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/all-MiniLM-L6-v2")).unwrap();
    let options = DistillOptions::new("-1".parse().unwrap()).lowercase(true).min_count(2);
    let corpus = std::fs::read_to_string(fixture("corpus.txt")).unwrap();
    let sentences = corpus.lines().map(str::to_owned);
    let mut batches = 0;
    let distilled = vecshift::compress::distill::distill(&bert, sentences, options, 4, |_| batches += 1).unwrap();
    assert_eq!(batches, 3, "11 lines in batches of 4");
    let frequent: Vec<(String, usize)> = counts(&reference).into_iter().filter(|c| c.1 >= 2).collect();
    assert_eq!(distilled.counts, frequent.iter().map(|c| c.1).collect::<Vec<_>>());
    assert_eq!(distilled.words_seen, counts(&reference).len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("last.fifu");
    distilled.write_finalfusion(&mut std::fs::File::create(&path).unwrap()).unwrap();
    let engine = StaticEngine::open(&path).unwrap();
    assert_eq!(engine.words(), frequent.iter().map(|c| c.0.as_str()).collect::<Vec<_>>());
    assert_eq!(engine.dims(), bert.dims());
    // Layer 6 (-1) of the words kept; the rarer ones are left out.
    for (word, want) in reference["layers"]["6"].as_object().unwrap() {
        let want: Vec<f32> = want.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        match frequent.iter().any(|c| c.0 == *word) {
            true => assert!(cosine(&engine.lookup(word).unwrap().vector, &want) >= 0.99999, "{word}"),
            false => assert!(engine.lookup(word).is_err(), "{word} occurs once"),
        }
    }

    // Without lowercasing, "The" and "the" are two words; a missing layer is refused.
    let cased = DistillOptions::new("3".parse().unwrap());
    let mut distiller = Distiller::new(&bert, cased).unwrap();
    distiller.add(&["The bank and the river.".to_owned()]).unwrap();
    assert_eq!(distiller.finish().unwrap().counts, [1, 1, 1, 1, 1]);
    assert!(Distiller::new(&bert, DistillOptions::new("7".parse().unwrap())).is_err());
}
