//! `vecshift::eval` on the embedded GloVe vectors against gensim 4.4's own evaluations
//! (tests/fixtures/eval/gensim_reference.json, written by make_gensim_reference.py next to it).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;
use vecshift::StaticEngine;
use vecshift::eval::analogy::{AnalogyResult, AnalogySet};
use vecshift::eval::wordsim::WordPairSet;
use vecshift::eval::{self, pearson, spearman};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval").join(name)
}

fn reference() -> &'static Value {
    static REF: OnceLock<Value> = OnceLock::new();
    REF.get_or_init(|| serde_json::from_str(&std::fs::read_to_string(fixture("gensim_reference.json")).unwrap()).unwrap())
}

fn glove() -> &'static StaticEngine {
    static GLOVE: OnceLock<StaticEngine> = OnceLock::new();
    GLOVE.get_or_init(|| StaticEngine::open_default().unwrap())
}

fn close(got: Option<f64>, want: &Value, what: &str) {
    let want = want.as_f64().unwrap();
    let got = got.unwrap_or_else(|| panic!("{what}: undefined, gensim has {want}"));
    assert!((got - want).abs() < 1e-4, "{what}: {got} vs gensim {want}");
}

#[test]
fn word_pairs_equal_gensims_evaluate_word_pairs() {
    let cases = reference()["word_pairs"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let restrict = case["restrict_vocab"].as_u64().unwrap() as usize;
        let set = WordPairSet::read(fixture(file)).unwrap();
        let r = eval::wordsim::evaluate(glove(), None, &set, Some(restrict)).unwrap();
        let what = format!("{file} restrict_vocab={restrict}");
        assert_eq!(r.file, file);
        assert_eq!(r.pairs_total as u64, case["pairs_total"].as_u64().unwrap(), "{what}");
        assert_eq!(r.oov as u64, case["oov"].as_u64().unwrap(), "{what}");
        assert_eq!(r.pairs_used as u64, case["pairs_used"].as_u64().unwrap(), "{what}");
        close(r.pearson, &case["pearson"], &what);
        close(r.spearman, &case["spearman"], &what);
        assert!(r.contextual.is_empty());
    }
}

#[test]
fn whole_vocabulary_is_the_default_and_equals_gensims_300000_on_100k_words() {
    let set = WordPairSet::read(fixture("wordsim353.tsv")).unwrap();
    let all = eval::wordsim::evaluate(glove(), None, &set, None).unwrap();
    let gensim = eval::wordsim::evaluate(glove(), None, &set, Some(300_000)).unwrap();
    assert_eq!(all, gensim);
    // Capitalised words ("Jerusalem", "FBI") are found through their lower-case GloVe entries.
    assert_eq!(all.oov, 0);
    assert!(set.pairs.iter().any(|p| p.first == "FBI"));
}

fn check_analogy(got: &AnalogyResult, want: &Value) {
    let what = format!("{} restrict_vocab={}", want["file"], want["restrict_vocab"]);
    let sections = want["sections"].as_array().unwrap();
    assert_eq!(got.sections.len(), sections.len(), "{what}");
    for (g, w) in got.sections.iter().zip(sections) {
        assert_eq!(g.name, w["name"].as_str().unwrap(), "{what}");
        assert_eq!(g.score.correct as u64, w["correct"].as_u64().unwrap(), "{what}: {}", g.name);
        assert_eq!(g.score.attempted as u64, w["attempted"].as_u64().unwrap(), "{what}: {}", g.name);
    }
    for (g, key) in [(&got.semantic, "semantic"), (&got.syntactic, "syntactic"), (&got.total, "total")] {
        assert_eq!(g.correct as u64, want[key]["correct"].as_u64().unwrap(), "{what}: {key}");
        assert_eq!(g.attempted as u64, want[key]["attempted"].as_u64().unwrap(), "{what}: {key}");
        let accuracy = g.correct as f64 / g.attempted as f64;
        assert!((g.accuracy.unwrap() - accuracy).abs() < 1e-12);
    }
    assert!((got.total.accuracy.unwrap() - want["score"].as_f64().unwrap()).abs() < 1e-4, "{what}");
}

#[test]
fn analogy_sample_equals_gensims_evaluate_word_analogies() {
    let set = AnalogySet::read(fixture("analogy_sample.txt")).unwrap();
    assert_eq!(set.len(), 52);
    for want in reference()["analogy_sample"].as_array().unwrap() {
        let restrict = want["restrict_vocab"].as_u64().unwrap() as usize;
        let got = eval::analogy::evaluate(glove(), &set, restrict);
        check_analogy(&got, want);
        assert_eq!(got.questions, 52);
        assert_eq!(got.oov, 52 - got.total.attempted);
        assert_eq!(got.restrict_vocab, restrict.min(100_000));
    }
}

/// The Google set is not vendored (licence unconfirmed): point VECSHIFT_GOOGLE_ANALOGY at
/// questions-words.txt and run `cargo test --release --test eval_static -- --ignored`.
#[test]
#[ignore = "needs VECSHIFT_GOOGLE_ANALOGY=/path/to/questions-words.txt"]
fn google_analogy_equals_gensim() {
    let path = std::env::var_os("VECSHIFT_GOOGLE_ANALOGY").expect("set VECSHIFT_GOOGLE_ANALOGY to questions-words.txt");
    let set = AnalogySet::read(&path).unwrap();
    assert_eq!(set.len(), 19_544);
    let stored = reference()["google_analogy"].as_array().expect("gensim_reference.json has the questions-words.txt numbers");
    for want in stored {
        let got = eval::analogy::evaluate(glove(), &set, want["restrict_vocab"].as_u64().unwrap() as usize);
        check_analogy(&got, want);
    }
}

#[test]
fn correlations_equal_scipy_with_ties() {
    for case in reference()["statistics"].as_array().unwrap() {
        let x: Vec<f64> = case["x"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let y: Vec<f64> = case["y"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert!((pearson(&x, &y).unwrap() - case["pearson"].as_f64().unwrap()).abs() < 1e-12, "{x:?} {y:?}");
        assert!((spearman(&x, &y).unwrap() - case["spearman"].as_f64().unwrap()).abs() < 1e-12, "{x:?} {y:?}");
    }
}

#[test]
fn batched_search_equals_one_query_at_a_time() {
    let glove = glove();
    let words = ["bank", "king", "paris", "running", "quickly", "the", "zebra", "microsoft", "blue", "seven"];
    let queries: Vec<Vec<f32>> = words.iter().map(|w| glove.lookup(w).unwrap().vector).collect();
    let exclude: Vec<Vec<usize>> = words.iter().map(|w| vec![glove.words().iter().position(|x| x == w).unwrap()]).collect();
    let batch = glove.nearest_batch(&queries, 10, &exclude, None);
    for ((word, query), found) in words.iter().zip(&queries).zip(&batch) {
        let single = glove.nearest(query, 10, &[*word]);
        let names: Vec<&str> = found.iter().map(|&(i, _)| glove.words()[i].as_str()).collect();
        assert_eq!(names, single.iter().map(|n| n.word.as_str()).collect::<Vec<_>>(), "{word}");
        for (&(_, c), n) in found.iter().zip(&single) {
            assert!((c - n.cosine).abs() < 1e-5, "{word}: {c} vs {}", n.cosine);
        }
    }
    // Restricted to the first 5,000 words: the unrestricted answers that lie in that range, in order.
    let restricted = glove.nearest_batch(&queries, 5, &exclude, Some(5_000));
    let wide = glove.nearest_batch(&queries, 2_000, &exclude, None);
    for (r, w) in restricted.iter().zip(&wide) {
        let expected: Vec<usize> = w.iter().map(|&(i, _)| i).filter(|&i| i < 5_000).take(5).collect();
        assert_eq!(r.iter().map(|&(i, _)| i).collect::<Vec<_>>(), expected);
    }
    // A zero query finds nothing; missing exclusion lists exclude nothing.
    let found = glove.nearest_batch(&[vec![0.0; 50], queries[0].clone()], 3, &[], None);
    assert!(found[0].is_empty());
    assert_eq!(glove.words()[found[1][0].0], "bank");
}

#[test]
fn readers_accept_the_common_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pairs.txt");
    std::fs::write(&file, "Word 1\tWord 2\tHuman (mean)\r\n# a comment\r\n\r\ntiger\tcat\t7.35\r\nold new 1.58\n").unwrap();
    let set = WordPairSet::read(&file).unwrap();
    let rows: Vec<(&str, &str, f64, usize)> = set.pairs.iter().map(|p| (p.first.as_str(), p.second.as_str(), p.score, p.line)).collect();
    assert_eq!(rows, [("tiger", "cat", 7.35, 4), ("old", "new", 1.58, 5)]);

    let file = dir.path().join("questions.txt");
    std::fs::write(&file, ": capital-world\nathens greece berlin germany\n\n: gram8-plural\nbanana bananas bird birds\n").unwrap();
    let set = AnalogySet::read(&file).unwrap();
    assert_eq!(set.sections.iter().map(|s| (s.name.as_str(), s.is_syntactic(), s.questions.len())).collect::<Vec<_>>(),
               [("capital-world", false, 1), ("gram8-plural", true, 1)]);
    assert_eq!(set.sections[1].questions[0].line, 5);
}
