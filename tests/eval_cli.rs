//! `vecshift eval` end to end: the JSON keys, gensim's and transformers' numbers through the
//! binary, and one-line errors for bad input.
//!
//! References: tests/fixtures/eval/gensim_reference.json (gensim 4.4) and bert_reference.json
//! (Hugging Face transformers on the embedded all-MiniLM-L6-v2), each written by the script next to it.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, json, vecshift};
use serde_json::Value;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval").join(name).to_string_lossy().into_owned()
}

fn reference(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

fn close(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_f64().unwrap_or_else(|| panic!("{what}: {got}")), want.as_f64().unwrap());
    assert!((g - w).abs() < 1e-4, "{what}: {g} vs {w}");
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[test]
fn wordsim_json_equals_gensim_and_transformers() {
    let files = ["wordsim353.tsv", "simlex999.txt", "rg65.txt"].map(fixture);
    let mut args = vec!["eval", "wordsim", "--json"];
    args.extend(files.iter().map(String::as_str));
    let got = json(&args);
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), 3);
    let gensim = reference("gensim_reference.json");
    for (g, w) in got.iter().zip(gensim["word_pairs"].as_array().unwrap().iter().step_by(2)) {
        assert_eq!(keys(g), ["contextual", "engines", "file", "oov", "oov_pairs", "pairs_total", "pairs_used", "pearson", "spearman"]);
        assert_eq!(g["file"], w["file"]);
        assert_eq!(g["oov_pairs"].as_array().unwrap().len() as u64, w["oov"].as_u64().unwrap(), "the skipped pairs are named");
        for key in ["pairs_total", "pairs_used", "oov"] {
            assert_eq!(g[key], w[key], "{} {key}", w["file"]);
        }
        close(&g["pearson"], &w["pearson"], "pearson");
        close(&g["spearman"], &w["spearman"], "spearman");
        assert_eq!(g["contextual"].as_array().unwrap().len(), 7, "MiniLM: embeddings + 6 layers");
    }
    // RG-65: every pair is in GloVe, so BERT sees all 65, as the reference does.
    let bert = reference("bert_reference.json");
    let want = bert["wordsim"]["contextual"].as_array().unwrap();
    for (g, w) in got[2]["contextual"].as_array().unwrap().iter().zip(want) {
        assert_eq!(keys(g), ["layer", "pearson", "spearman"]);
        assert_eq!(g["layer"], w["layer"]);
        close(&g["pearson"], &w["pearson"], &format!("rg65 layer {}", w["layer"]));
        close(&g["spearman"], &w["spearman"], &format!("rg65 layer {}", w["layer"]));
    }
}

#[test]
fn wordsim_restricts_the_vocabulary_and_prints_a_table() {
    let rg65 = fixture("rg65.txt");
    let got = json(&["eval", "wordsim", "--json", "--static-only", "--restrict-vocab", "10000", &rg65]);
    let want = &reference("gensim_reference.json")["word_pairs"][5];
    assert_eq!(want["restrict_vocab"], 10000);
    assert_eq!(got[0]["pairs_used"], want["pairs_used"]);
    close(&got[0]["spearman"], &want["spearman"], "spearman");
    assert_eq!(got[0]["contextual"], serde_json::json!([]));

    let out = vecshift(&["eval", "wordsim", "--static-only", &rg65]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    let row = table.lines().find(|l| l.starts_with("rg65.txt")).unwrap();
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["rg65.txt", "65", "65", "0", "0.5570", "0.5946"]);
}

#[test]
fn per_pair_cosines_give_gensims_correlation() {
    let simlex = fixture("simlex999.txt");
    let got = json(&["eval", "wordsim", "--json", "--static-only", "--per-pair", &simlex]);
    let want = &reference("gensim_reference.json")["word_pairs"][2];
    assert_eq!(want["file"], "simlex999.txt");
    let pairs = got[0]["pairs"].as_array().unwrap();
    assert_eq!(pairs.len() as u64, want["pairs_used"].as_u64().unwrap());
    let column = |key: &str| pairs.iter().map(|p| p[key].as_f64().unwrap()).collect::<Vec<_>>();
    let (x, y) = (column("score"), column("cosine"));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&x), mean(&y));
    let cov: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sd = |v: &[f64], m: f64| v.iter().map(|a| (a - m).powi(2)).sum::<f64>().sqrt();
    close(&serde_json::json!(cov / (sd(&x, mx) * sd(&y, my))), &want["pearson"], "pearson from the listed pairs");
    let out = vecshift(&["eval", "wordsim", "--static-only", "--per-pair", &simlex]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("out of vocabulary (1): "), "{table}");
}

#[test]
fn analogy_json_has_the_issue_keys_and_gensims_counts() {
    let got = json(&["eval", "analogy", "--json", "--restrict-vocab", "10000", &fixture("analogy_sample.txt")]);
    let want = &reference("gensim_reference.json")["analogy_sample"][1];
    assert_eq!(want["restrict_vocab"], 10000);
    for key in ["sections", "semantic", "syntactic", "total"] {
        assert!(got.get(key).is_some(), "{key}");
    }
    for (g, w) in got["sections"].as_array().unwrap().iter().zip(want["sections"].as_array().unwrap()) {
        assert_eq!(keys(g), ["accuracy", "attempted", "correct", "name"]);
        assert_eq!((&g["name"], &g["correct"], &g["attempted"]), (&w["name"], &w["correct"], &w["attempted"]));
    }
    for key in ["semantic", "syntactic", "total"] {
        assert_eq!(keys(&got[key]), ["accuracy", "attempted", "correct"]);
        assert_eq!((&got[key]["correct"], &got[key]["attempted"]), (&want[key]["correct"], &want[key]["attempted"]), "{key}");
    }
    close(&got["total"]["accuracy"], &want["score"], "total accuracy");
    // A section where every question has an unknown word: nothing attempted, accuracy undefined.
    let rare = got["sections"].as_array().unwrap().iter().find(|s| s["name"] == "rare-words").unwrap();
    assert_eq!((&rare["attempted"], &rare["accuracy"]), (&serde_json::json!(0), &Value::Null));
}

#[test]
fn wic_with_a_training_split_equals_the_reference() {
    let (train_data, train_gold) = (fixture("wic_sample/train.data.txt"), fixture("wic_sample/train.gold.txt"));
    let got = json(&["eval", "wic", "--json", &fixture("wic_sample/test.data.txt"), &fixture("wic_sample/test.gold.txt"),
        "--train", &train_data, &train_gold]);
    let want = &reference("bert_reference.json")["wic"];
    assert_eq!(got["n"], want["n"]);
    assert_eq!(got["train_n"], want["train_n"]);
    compare_wic(&got, &want["with_train"]);
    assert!(got["static_note"].as_str().unwrap().contains("one vector"));
}

#[test]
fn wic_without_training_data_cross_validates() {
    let got = json(&["eval", "wic", "--json", &fixture("wic_sample/test.data.txt"), &fixture("wic_sample/test.gold.txt")]);
    let want = &reference("bert_reference.json")["wic"]["cross_validation"];
    assert_eq!(want["folds"], 5);
    assert_eq!(got["threshold_selection"], "5-fold cross-validation");
    assert_eq!(got["train_n"], Value::Null);
    compare_wic(&got, want);
}

fn compare_wic(got: &Value, want: &Value) {
    let layers = got["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 7);
    for (g, w) in layers.iter().zip(want["layers"].as_array().unwrap()) {
        assert_eq!(keys(g), ["accuracy", "layer", "threshold"]);
        assert_eq!(g["layer"], w["layer"]);
        close(&g["threshold"], &w["threshold"], &format!("layer {} threshold", w["layer"]));
        close(&g["accuracy"], &w["accuracy"], &format!("layer {} accuracy", w["layer"]));
    }
    close(&got["static_accuracy"], &want["static_accuracy"], "static accuracy");
    assert_eq!(got["static_accuracy"], 0.5, "a balanced set: chance");
}

#[test]
fn wic_table_says_why_the_static_engine_is_at_chance() {
    let out = vecshift(&["eval", "wic", &fixture("wic_sample/test.data.txt"), &fixture("wic_sample/test.gold.txt")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    let row = lines.iter().position(|l| l.trim_start().starts_with("static") && l.contains('%')).unwrap();
    assert!(lines[row].trim_end().ends_with("50.00%"), "the note is not inside the table: {}", lines[row]);
    let note = lines.iter().position(|l| l.starts_with("static: ") && l.contains("one vector")).unwrap();
    assert!(note > row, "the note comes below the table:\n{table}");
    assert_eq!(table.lines().filter(|l| l.trim_start().starts_with(char::is_numeric)).count(), 7, "{table}");
}

fn temp_file(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn bad_input_is_one_line_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: PathBuf| p.to_string_lossy().into_owned();

    fails_with(&["eval", "wordsim", "--static-only", "no/such/pairs.txt"], &["no/such/pairs.txt"]);
    let broken = s(temp_file(d, "broken.txt", b"tiger\tcat\t7.35\nbook paper\nold new 1.58\n"));
    fails_with(&["eval", "wordsim", "--static-only", &broken], &["broken.txt line 2", "three columns"]);
    let latin1 = s(temp_file(d, "latin1.txt", b"tiger cat 7.35\ncaf\xe9 bar 2.0\n"));
    fails_with(&["eval", "wordsim", "--static-only", &latin1], &["latin1.txt line 2", "UTF-8"]);
    let empty = s(temp_file(d, "empty.txt", b"# nothing\n"));
    fails_with(&["eval", "wordsim", "--static-only", &empty], &["empty.txt", "no word pairs"]);
    // A usage error is clap's (error line, then a pointer to --help).
    let out = vecshift(&["eval", "wordsim", "--restrict-vocab", "0", &fixture("rg65.txt")]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).starts_with("error: invalid value '0' for '--restrict-vocab"));

    let three = s(temp_file(d, "three.txt", b": family\nman woman king\n"));
    fails_with(&["eval", "analogy", &three], &["three.txt line 2", "four words"]);
    let headless = s(temp_file(d, "headless.txt", b"man woman king queen\n"));
    fails_with(&["eval", "analogy", &headless], &["headless.txt line 1", "section"]);

    let data = fixture("wic_sample/test.data.txt");
    let short_gold = s(temp_file(d, "short.gold.txt", b"T\nF\n"));
    fails_with(&["eval", "wic", &data, &short_gold], &["short.gold.txt", "12"]);
    let bad_gold = s(temp_file(d, "bad.gold.txt", format!("{}yes\n", "T\n".repeat(11)).as_bytes()));
    fails_with(&["eval", "wic", &data, &bad_gold], &["bad.gold.txt line 12", "T or F"]);
    let bad_index = s(temp_file(d, "idx.data.txt", b"bank\tN\t9-0\tThe bank .\tA bank .\n"));
    let one_gold = s(temp_file(d, "idx.gold.txt", b"T\n"));
    fails_with(&["eval", "wic", &bad_index, &one_gold], &["idx.data.txt line 1", "token index 9"]);
    let columns = s(temp_file(d, "cols.data.txt", b"bank\tN\t1-1\tThe bank .\n"));
    fails_with(&["eval", "wic", &columns, &one_gold], &["cols.data.txt line 1", "5 tab-separated columns"]);
}

const GLOVE: &str = "glove=data/glove-6B-50d/glove.6B.50d.100k.fifu";
const W2V: &str = "w2v=tests/fixtures/static/tiny.w2v.txt";
const MINILM: &str = "minilm=data/all-MiniLM-L6-v2";
const TINY_BERT: &str = "tinybert=tests/fixtures/tiny_bert/f32_noprefix";

/// The engine named `name` in a result's `engines`.
fn engine<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["engines"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("no engine {name} in {result}"))
}

#[test]
fn every_engine_is_scored_as_if_alone() {
    // wordsim: two static and two contextual engines. The first of each kind keeps the
    // top-level keys; each engine's numbers are those of a run with it alone, which the tests
    // above check against gensim and transformers.
    let rg65 = fixture("rg65.txt");
    let all = json(&["eval", "wordsim", "--json", &rg65, "--vectors", GLOVE, "--vectors", W2V, "--bert", TINY_BERT, "--bert", MINILM]);
    let all = &all[0];
    let names: Vec<&str> = all["engines"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["glove", "w2v", "tinybert", "minilm"]);
    let gensim = reference("gensim_reference.json")["word_pairs"][4].clone();
    assert_eq!(gensim["file"], "rg65.txt");
    close(&all["pearson"], &gensim["pearson"], "top-level: the first static engine");
    close(&engine(all, "glove")["layers"][0]["spearman"], &gensim["spearman"], "glove");
    assert_eq!(engine(all, "glove")["kind"], "static");
    let alone = json(&["eval", "wordsim", "--json", &rg65, "--vectors", W2V, "--static-only"]);
    assert_eq!(engine(all, "w2v")["pairs_used"], alone[0]["pairs_used"]);
    assert_eq!(engine(all, "w2v")["layers"][0]["pearson"], alone[0]["pearson"]);
    assert_ne!(engine(all, "w2v")["pairs_used"], engine(all, "glove")["pairs_used"], "each static engine scores its own pairs");
    let alone = json(&["eval", "wordsim", "--json", &rg65, "--vectors", GLOVE, "--bert", TINY_BERT]);
    assert_eq!(all["contextual"], alone[0]["contextual"], "top-level: the first contextual engine");
    assert_eq!(engine(all, "tinybert")["layers"], alone[0]["contextual"]);
    assert_eq!(engine(all, "tinybert")["architecture"], "bert");
    let bert = reference("bert_reference.json");
    let minilm = engine(all, "minilm")["layers"].as_array().unwrap();
    assert_eq!(minilm.len(), 7);
    for (g, w) in minilm.iter().zip(bert["wordsim"]["contextual"].as_array().unwrap()) {
        close(&g["spearman"], &w["spearman"], &format!("minilm rg65 layer {}", w["layer"]));
    }
    let table = String::from_utf8(vecshift(&["eval", "wordsim", &rg65, "--vectors", GLOVE, "--vectors", W2V, "--bert", TINY_BERT]).stdout).unwrap();
    for title in ["static glove (", "static w2v (", "tinybert per layer"] {
        assert!(table.contains(title), "{title:?} missing from:\n{table}");
    }

    // analogy: every static engine.
    let questions = fixture("analogy_sample.txt");
    let got = json(&["eval", "analogy", "--json", "--restrict-vocab", "10000", &questions, "--vectors", GLOVE, "--vectors", W2V]);
    let want = &reference("gensim_reference.json")["analogy_sample"][1];
    assert_eq!(got["total"]["correct"], want["total"]["correct"], "top-level: the first engine");
    assert_eq!(engine(&got, "glove")["total"], got["total"]);
    let alone = json(&["eval", "analogy", "--json", "--restrict-vocab", "10000", &questions, "--vectors", W2V]);
    assert_eq!(engine(&got, "w2v")["total"], alone["total"]);
    assert_eq!(engine(&got, "w2v")["sections"], alone["sections"]);

    // WiC: every contextual engine.
    let (data, gold) = (fixture("wic_sample/test.data.txt"), fixture("wic_sample/test.gold.txt"));
    let got = json(&["eval", "wic", "--json", &data, &gold, "--bert", MINILM, "--bert", TINY_BERT]);
    compare_wic(&got, &reference("bert_reference.json")["wic"]["cross_validation"]);
    compare_wic(engine(&got, "minilm"), &reference("bert_reference.json")["wic"]["cross_validation"]);
    let alone = json(&["eval", "wic", "--json", &data, &gold, "--bert", TINY_BERT]);
    assert_eq!(engine(&got, "tinybert")["layers"], alone["layers"]);
    assert_eq!(engine(&got, "tinybert")["layers"].as_array().unwrap().len(), 3);
}

#[test]
fn variant_deltas_are_the_difference_of_the_two_engines_scores() {
    // The engines' own scores are checked against gensim/transformers above; a variant's delta
    // is its score minus its original's, on the original's layer (drop-layers:0 shifts them).
    let rg65 = fixture("rg65.txt");
    let got = json(&["eval", "wordsim", "--json", &rg65, "--vectors", GLOVE, "--bert", TINY_BERT, "--variant", "int4", "--variant", "drop-layers:0"]);
    let r = &got[0];
    let variants = r["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    let spearman = |name: &str, layer: usize| engine(r, name)["layers"][layer]["spearman"].as_f64().unwrap();
    for (v, map) in variants.iter().zip([&[0, 1, 2][..], &[0, 2]]) {
        assert_eq!(v["base"], "tinybert");
        let name = v["engine"].as_str().unwrap();
        assert_eq!(name, format!("tinybert·{}", v["variant"].as_str().unwrap()));
        let layers = v["layers"].as_array().unwrap();
        assert_eq!(layers.iter().map(|l| l["layer"].as_u64().unwrap() as usize).collect::<Vec<_>>(), map);
        for (i, l) in layers.iter().enumerate() {
            let want = spearman(name, i) - spearman("tinybert", map[i]);
            assert!((l["spearman_delta"].as_f64().unwrap() - want).abs() < 1e-12, "{name} layer {i}");
        }
    }
    assert!(variants[0]["layers"].as_array().unwrap().iter().any(|l| l["spearman_delta"] != 0.0), "int4 moves something");
    let table = String::from_utf8(vecshift(&["eval", "wordsim", &rg65, "--vectors", GLOVE, "--bert", TINY_BERT, "--variant", "int4"]).stdout).unwrap();
    assert!(table.contains("tinybert·int4 against tinybert: change in Spearman per layer"), "{table}");

    let (data, gold) = (fixture("wic_sample/test.data.txt"), fixture("wic_sample/test.gold.txt"));
    let got = json(&["eval", "wic", "--json", &data, &gold, "--bert", TINY_BERT, "--variant", "int4"]);
    let deltas = &got["variant_deltas"][0];
    assert_eq!(deltas["engine"], "tinybert·int4");
    let accuracy = |name: &str, layer: usize| engine(&got, name)["layers"][layer]["accuracy"].as_f64().unwrap();
    for (i, l) in deltas["layers"].as_array().unwrap().iter().enumerate() {
        assert!((l["accuracy_delta"].as_f64().unwrap() - (accuracy("tinybert·int4", i) - accuracy("tinybert", i))).abs() < 1e-12);
    }
    assert_eq!(deltas["layers"].as_array().unwrap().len(), 3);
}
