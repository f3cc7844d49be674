//! `vecshift eval wsd`, `eval wic --postprocess` and `vecshift senses` end to end, against
//! transformers on the embedded MiniLM (tests/fixtures/senses/bert_reference.json, written by
//! make_bert_reference.py beside it) and NLTK's WordNet (tests/fixtures/wordnet/reference.json).

mod common;

use std::path::Path;

use common::{fails_with, json};
use serde_json::Value;

fn path(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative).to_string_lossy().into_owned()
}

fn read_json(relative: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path(relative)).unwrap()).unwrap()
}

fn close(got: &Value, want: &Value, tol: f64, what: &str) {
    let (g, w) = (got.as_f64().unwrap_or_else(|| panic!("{what}: {got}")), want.as_f64().unwrap());
    assert!((g - w).abs() <= tol, "{what}: {g} vs {w}");
}

fn compare_layers(got: &Value, want: &Value, what: &str) {
    // Layer 0 (the embeddings output) gives a word nearly the same vector in every sentence (only
    // the position embeddings differ), so its nearest neighbours are decided by differences at the
    // level of float rounding between candle and torch: compared from layer 1 on.
    for (g, w) in got.as_array().unwrap().iter().zip(want.as_array().unwrap()).skip(1) {
        assert_eq!(g["layer"], w["layer"]);
        for key in ["accuracy", "macro_f1", "centroid_accuracy", "centroid_macro_f1"] {
            close(&g[key], &w[key], 1e-9, &format!("{what} layer {} {key}", w["layer"]));
        }
    }
}

#[test]
fn wsd_on_the_bundled_set_equals_transformers_and_sklearn() {
    let got = json(&["eval", "wsd", "--json", &path("data/wsd")]);
    let want = &read_json("tests/fixtures/senses/bert_reference.json")["wsd"];
    let words = got["words"].as_array().unwrap();
    assert_eq!(words.len(), want["words"].as_array().unwrap().len());
    for (g, w) in words.iter().zip(want["words"].as_array().unwrap()) {
        assert_eq!(g["word"], w["word"]);
        assert_eq!(g["n_test"], w["n_test"]);
        assert_eq!(g["n_train"], w["n_train"]);
        close(&g["majority_baseline"], &w["majority_baseline"], 1e-12, "majority");
        compare_layers(&g["layers"], &w["layers"], g["word"].as_str().unwrap());
    }
    compare_layers(&got["layers"], &want["layers"], "all words");
    close(&got["majority_baseline"], &want["majority_baseline"], 1e-12, "majority over words");
    assert!(got["static_note"].as_str().unwrap().contains("most frequent training sense"));
    assert_eq!(got["variants"].as_array().unwrap().len(), 0);
}

#[test]
fn wic_corrections_equal_numpy_on_transformers_vectors() {
    let fixture = |name: &str| path(&format!("tests/fixtures/eval/wic_sample/{name}"));
    let got = json(&[
        "eval", "wic", "--json", &fixture("test.data.txt"), &fixture("test.gold.txt"), "--train", &fixture("train.data.txt"),
        &fixture("train.gold.txt"), "--postprocess", "none,center,all-but-the-top:2,standardize", "--layers", "3..=6",
    ]);
    assert_eq!(got["postprocess"], "none");
    let reference = read_json("tests/fixtures/senses/bert_reference.json");
    // Whitening 24 vectors in 384 dimensions leaves every pair nearly orthogonal (cosines within
    // rounding of -1/63): thresholds there are decided by rounding, so they are not checked here.
    let want: Vec<&Value> = reference["wic_variants"].as_array().unwrap().iter().filter(|v| v["postprocess"] != "whiten").collect();
    let variants = got["variants"].as_array().unwrap();
    assert_eq!(variants.len(), want.len());
    for (g, w) in variants.iter().zip(want) {
        let what = format!("layers {} {}", w["layers"], w["postprocess"]);
        assert_eq!((&g["layers"], &g["postprocess"]), (&w["layers"], &w["postprocess"]));
        close(&g["threshold"], &w["threshold"], 1e-4, &what);
        close(&g["accuracy"], &w["accuracy"], 1e-9, &what);
    }
    // The per-layer table is the first correction's.
    for layer in got["layers"].as_array().unwrap() {
        let v = variants.iter().find(|v| v["layers"].as_str().and_then(|l| l.parse::<u64>().ok()) == layer["layer"].as_u64() && v["postprocess"] == "none").unwrap();
        assert_eq!(layer["accuracy"], v["accuracy"]);
    }
}

#[test]
fn senses_names_each_sentence_with_a_wordnet_synset() {
    let got = json(&["senses", "bank", "--sentences", &path("data/sentences/bank.tsv"), "--json"]);
    let nltk = read_json("tests/fixtures/wordnet/reference.json");
    let synsets = nltk["bank"].as_array().unwrap();
    let items = got.as_array().unwrap();
    assert_eq!(items.len(), 9);
    let tsv = std::fs::read_to_string(path("data/sentences/bank.tsv")).unwrap();
    for (item, line) in items.iter().zip(tsv.lines()) {
        assert_eq!(item["sentence"], line.split('\t').nth(1).unwrap());
        let synset = synsets.iter().find(|s| s["name"] == item["synset"]).unwrap_or_else(|| panic!("{item}"));
        assert_eq!(item["gloss"], synset["definition"]);
        assert_eq!(item["id"], format!("{:08}-{}", synset["offset"].as_u64().unwrap(), synset["pos"].as_str().unwrap()));
        let c = item["cosine"].as_f64().unwrap();
        assert!(c > 0.0 && c <= 1.0, "{item}");
        assert!(item["cluster"].as_u64().unwrap() < 9);
    }
}

#[test]
fn senses_and_wsd_bad_input_is_one_line() {
    fails_with(&["senses", "qwertyuiop", "-s", "A qwertyuiop here."], &["no synsets", "qwertyuiop", "--wordnet"]);
    fails_with(&["senses", "bank", "-s", "No such word here."], &["sentence 1"]);
    fails_with(&["senses", "bank", "-s", "The bank.", "--wordnet", &path("src")], &["index.noun", "wordnet-base"]);
    fails_with(&["eval", "wsd", &path("src")], &["test.data.txt"]);
    fails_with(&["eval", "wsd", "a", "b"], &["TRAIN_DATA TRAIN_GOLD TEST_DATA TEST_GOLD"]);
    let out = common::vecshift(&["eval", "wsd", &path("data/wsd"), "--postprocess", "pca"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("all-but-the-top:D"));
}

#[test]
fn report_has_clusters_per_word_and_layer() {
    let got = json(&["report", &path("data/sentences/bank.tsv"), "--json", "-q"]);
    let word = &got["words"][0];
    let layers = word["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 7);
    for layer in layers {
        let c = &layer["clusters"];
        let k = c["k"].as_u64().unwrap();
        assert!((1..=8).contains(&k), "{c}");
        let silhouette = c["silhouette"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&silhouette));
        // k = 1 exactly when no split reaches the threshold.
        assert_eq!(k == 1, silhouette < 0.25, "{c}");
        let ari = c["ari"].as_f64().unwrap();
        if k == 1 {
            assert_eq!(ari, 0.0, "one cluster against three senses agrees by chance only");
        } else {
            assert!((-1.0..=1.0).contains(&ari));
        }
    }
    // GloVe gives all nine occurrences one vector: nothing to split.
    assert_eq!(word["static"]["clusters"]["k"], 1);
    assert!(got["summary"]["layers"][0].get("clusters").is_none(), "clusters are per word");
    // Without sense labels there is no ARI.
    let plain = tempfile::tempdir().unwrap();
    let text = plain.path().join("bank.txt");
    std::fs::write(&text, "The bank closed.\nA river bank.\nThe bank of lights.\n").unwrap();
    let got = json(&["report", &text.to_string_lossy(), "--word", "bank", "--json", "-q"]);
    let c = &got["words"][0]["layers"][6]["clusters"];
    assert!(c.get("k").is_some() && c.get("ari").is_none(), "{c}");
}
