//! The vocabulary index sidecar (`FILE.fifu.idx`): a file opened through it answers exactly as
//! the same file read by finalfusion (hash map built at open), which tests/static_engine.rs
//! checks against gensim; a sidecar that does not match its file is ignored.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use vecshift::static_vectors::{index_path, write_index};
use vecshift::{Embedder, OpenOptions, StaticEngine};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/static").join(name)
}

fn embedded() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/glove-6B-50d/glove.6B.50d.100k.fifu")
}

/// The tiny word2vec fixture as finalfusion in `dir`, with its index.
fn indexed_fixture(dir: &Path) -> PathBuf {
    let fifu = dir.join("tiny.fifu");
    StaticEngine::open(fixture("tiny.w2v.bin")).unwrap().write_finalfusion(&fifu).unwrap();
    write_index(&fifu, &index_path(&fifu)).unwrap();
    fifu
}

/// The same file under another name with no sidecar, so that finalfusion reads it (the
/// engine named as the original, which error messages name).
fn without_index(file: &Path, dir: &Path) -> StaticEngine {
    let link = dir.join("plain.fifu");
    std::os::unix::fs::symlink(file, &link).unwrap();
    let name = file.file_name().unwrap().to_str().unwrap();
    StaticEngine::open_with(&link, &OpenOptions::default().name(name)).unwrap()
}

/// Every kind of answer both engines give, compared: lookups (exact, lowercase fallback,
/// decomposed accents, unknown), neighbours by the f32 first search and by the 8-bit later
/// ones, analogies and batched searches.
fn assert_same_answers(indexed: &StaticEngine, plain: &StaticEngine, probes: &[&str]) {
    assert!(indexed.is_indexed() && !plain.is_indexed());
    assert_eq!(indexed.vocab_len(), plain.vocab_len());
    assert_eq!(indexed.dims(), plain.dims());
    assert_eq!(indexed.matrix(), plain.matrix());
    for row in [0, 1, plain.vocab_len() / 2, plain.vocab_len() - 1] {
        assert_eq!(indexed.word(row), plain.words()[row]);
    }
    let step = (plain.vocab_len() / 500).max(1);
    let words: Vec<String> = plain.words().iter().step_by(step).cloned().collect();
    let mut asked: Vec<String> = probes.iter().map(|w| w.to_string()).collect();
    asked.extend(words.iter().flat_map(|w| [w.clone(), w.to_uppercase(), format!("{w}\u{301}"), format!("{w}zzqx")]));
    for word in &asked {
        match (indexed.lookup(word), plain.lookup(word)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{word}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{word}"),
            (a, b) => panic!("{word}: {a:?} vs {b:?}"),
        }
        assert_eq!(indexed.word_index(word), plain.word_index(word), "{word}");
    }
    // The first search of each engine scans f32 rows, the later ones the 8-bit copy.
    for word in probes.iter().copied().chain(words.iter().take(40).map(String::as_str)) {
        let (a, b) = (indexed.neighbors(word, 10), plain.neighbors(word, 10));
        assert_eq!(a.map_err(|e| e.to_string()), b.map_err(|e| e.to_string()), "neighbours of {word}");
    }
    let [a, b, c] = [&words[1], &words[2], &words[3]].map(String::as_str);
    assert_eq!(indexed.analogy(a, b, c, 5).unwrap(), plain.analogy(a, b, c, 5).unwrap());
    let queries: Vec<Vec<f32>> = words.iter().take(20).map(|w| plain.lookup(w).unwrap().vector).collect();
    assert_eq!(indexed.nearest_batch(&queries, 7, &[vec![0]], Some(plain.vocab_len() / 2)), plain.nearest_batch(&queries, 7, &[vec![0]], Some(plain.vocab_len() / 2)));
    assert_eq!(indexed.words(), plain.words());
    use finalfusion::vocab::Vocab;
    assert_eq!(indexed.embeddings().vocab().words(), plain.embeddings().vocab().words());
}

#[test]
fn the_embedded_file_opens_through_its_index_with_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let indexed = StaticEngine::open(embedded()).unwrap();
    let plain = without_index(&embedded(), dir.path());
    assert_same_answers(&indexed, &plain, &["bank", "Bank", "BANK", "café", "cafe\u{301}", "naïve", "the", ",", "zzzzqqq"]);
}

#[test]
fn a_fixture_opens_through_its_index_with_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let fifu = indexed_fixture(dir.path());
    let indexed = StaticEngine::open(&fifu).unwrap();
    let plain = without_index(&fifu, dir.path());
    assert_same_answers(&indexed, &plain, &["king", "King", "Zürich", "zürich", "café", "cafe\u{301}", "unknownword"]);
    // And gensim's answers (tests/static_engine.rs checks the plain path against them too).
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap();
    for case in reference["w2v"]["neighbors"].as_array().unwrap() {
        let word = case["word"].as_str().unwrap();
        let expected: Vec<&str> = case["topn"].as_array().unwrap().iter().map(|e| e[0].as_str().unwrap()).collect();
        let fresh = StaticEngine::open(&fifu).unwrap();
        for found in [fresh.neighbors(word, expected.len()).unwrap(), fresh.neighbors(word, expected.len()).unwrap()] {
            assert_eq!(found.iter().map(|n| n.word.as_str()).collect::<Vec<_>>(), expected, "{word}");
        }
    }
}

#[test]
fn a_sidecar_that_does_not_match_its_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let fifu = indexed_fixture(dir.path());
    let index = std::fs::read(index_path(&fifu)).unwrap();
    // Damaged: one byte of the row table flipped (the sidecar's own checksum catches it).
    let mut damaged = index.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    std::fs::write(index_path(&fifu), &damaged).unwrap();
    assert!(!StaticEngine::open(&fifu).unwrap().is_indexed());
    // Stale: the file rewritten with another vocabulary of the same size, the old sidecar kept.
    std::fs::write(index_path(&fifu), &index).unwrap();
    assert!(StaticEngine::open(&fifu).unwrap().is_indexed());
    let mut bytes = std::fs::read(&fifu).unwrap();
    let at = bytes.windows(8).position(|w| w == b"\x04\0\0\0king").unwrap() + 4;
    bytes[at..at + 4].copy_from_slice(b"kong");
    std::fs::write(&fifu, &bytes).unwrap();
    let engine = StaticEngine::open(&fifu).unwrap();
    assert!(!engine.is_indexed());
    assert!(engine.lookup("kong").is_ok() && engine.lookup("king").is_err());
}

#[test]
fn subword_models_are_not_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let fifu = dir.path().join("ft.fifu");
    StaticEngine::open(fixture("tiny.fasttext.bin")).unwrap().write_finalfusion(&fifu).unwrap();
    let err = write_index(&fifu, &index_path(&fifu)).unwrap_err().to_string();
    assert!(err.contains("simple vocabulary"), "{err}");
}

#[test]
fn convert_writes_the_index_and_index_rewrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.fifu");
    let report = common::json(&["--json", "convert", fixture("tiny.w2v.txt").to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(report["index"].as_str().map(PathBuf::from), Some(index_path(&out)));
    assert!(StaticEngine::open(&out).unwrap().is_indexed());
    std::fs::remove_file(index_path(&out)).unwrap();
    assert!(!StaticEngine::open(&out).unwrap().is_indexed());
    let report = common::json(&["--json", "index", out.to_str().unwrap()]);
    assert_eq!(report["words"], StaticEngine::open(&out).unwrap().vocab_len());
    assert!(StaticEngine::open(&out).unwrap().is_indexed());
    // The committed sidecar of the embedded file is the one `index` writes.
    let copy = dir.path().join("embedded.fifu");
    std::os::unix::fs::symlink(embedded(), &copy).unwrap();
    common::json(&["--json", "index", copy.to_str().unwrap()]);
    assert_eq!(std::fs::read(index_path(&copy)).unwrap(), std::fs::read(index_path(&embedded())).unwrap());
}
