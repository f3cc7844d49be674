//! The static engine against gensim's reading of the same files
//! (`tests/fixtures/static/reference.json`, written by `make_static_fixtures.py`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use vecshift::{Embedder, EngineKind, Error, LookupSource, Occurrence, OpenOptions, Pooling, StaticEngine, VectorFormat};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/static").join(name)
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn assert_close(actual: &[f32], expected: &[f32], tol: f32, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= tol, "{what}[{i}]: {a} vs gensim {e}");
    }
}

const W2V_FILES: [(&str, VectorFormat); 3] = [
    ("tiny.w2v.bin", VectorFormat::Word2VecBinary),
    ("tiny.w2v.txt", VectorFormat::Word2VecText),
    ("tiny.glove.txt", VectorFormat::Glove),
];

#[test]
fn detects_every_format() {
    for (file, format) in W2V_FILES {
        assert_eq!(VectorFormat::detect(&fixture(file)).unwrap(), format, "{file}");
    }
    assert_eq!(VectorFormat::detect(&fixture("tiny.fasttext.bin")).unwrap(), VectorFormat::FastText);
}

#[test]
fn word2vec_and_glove_vectors_equal_gensims() {
    let reference = reference();
    let w2v = &reference["w2v"];
    for (file, _) in W2V_FILES {
        let engine = StaticEngine::open(fixture(file)).unwrap();
        assert_eq!(engine.vocab_len(), w2v["n_words"].as_u64().unwrap() as usize, "{file}");
        assert_eq!(engine.dims(), w2v["dims"].as_u64().unwrap() as usize);
        assert_eq!(engine.kind(), EngineKind::Static);
        assert_eq!(engine.num_layers(), 1);
        for (word, vector) in w2v["vectors"].as_object().unwrap() {
            let found = engine.lookup(word).unwrap();
            assert_eq!(found.source, LookupSource::Exact);
            assert_close(&found.vector, &floats(vector), 1e-6, &format!("{file} {word}"));
        }
    }
}

#[test]
fn neighbours_and_analogies_equal_gensims() {
    let reference = reference();
    let w2v = &reference["w2v"];
    for (file, _) in W2V_FILES {
        let engine = StaticEngine::open(fixture(file)).unwrap();
        for case in w2v["neighbors"].as_array().unwrap() {
            let word = case["word"].as_str().unwrap();
            let expected = case["topn"].as_array().unwrap();
            let found = engine.neighbors(word, expected.len()).unwrap();
            for (f, e) in found.iter().zip(expected) {
                assert_eq!(f.word, e[0].as_str().unwrap(), "{file}: neighbours of {word}");
                assert!((f.cosine - e[1].as_f64().unwrap() as f32).abs() < 1e-5);
            }
            assert!(found.iter().all(|n| n.word != word), "the query word is excluded");
        }
        for case in w2v["analogies"].as_array().unwrap() {
            let [a, b, c] = ["a", "b", "c"].map(|k| case[k].as_str().unwrap());
            let expected = case["topn"].as_array().unwrap();
            let found = engine.analogy(a, b, c, expected.len()).unwrap();
            for (f, e) in found.iter().zip(expected) {
                assert_eq!(f.word, e[0].as_str().unwrap(), "{file}: {a}:{b}::{c}:?");
                assert!((f.cosine - e[1].as_f64().unwrap() as f32).abs() < 1e-5);
            }
        }
    }
}

#[test]
fn lookup_falls_back_to_lowercase_but_prefers_the_exact_form() {
    let engine = StaticEngine::open(fixture("tiny.w2v.bin")).unwrap();
    let house = engine.lookup("House").unwrap();
    assert_eq!((house.word.as_str(), house.source), ("house", LookupSource::Lowercased));
    assert_eq!(house.vector, engine.lookup("house").unwrap().vector);
    // "Apple" and "apple" are different words; the exact form wins.
    assert_ne!(engine.lookup("Apple").unwrap().vector, engine.lookup("apple").unwrap().vector);
    // "berlin" is absent and there are no subwords to fall back on.
    let err = engine.lookup("berlin").unwrap_err();
    assert!(matches!(err, Error::UnknownWord { has_subwords: false, .. }), "{err}");
    assert!(err.to_string().contains("berlin") && err.to_string().contains("tiny.w2v.bin"));
}

#[test]
fn fasttext_composes_unknown_words_from_subwords_like_gensim() {
    let reference = reference();
    let ft = &reference["fasttext"];
    let engine = StaticEngine::open(fixture("tiny.fasttext.bin")).unwrap();
    assert!(engine.has_subwords());
    for (word, vector) in ft["in_vocab"].as_object().unwrap() {
        let found = engine.lookup(word).unwrap();
        assert_eq!(found.source, LookupSource::Exact, "{word}");
        assert_close(&found.vector, &floats(vector), 1e-5, word);
    }
    for (word, vector) in ft["oov"].as_object().unwrap() {
        let found = engine.lookup(word).unwrap();
        assert_eq!(found.source, LookupSource::Subwords, "{word}");
        assert_close(&found.vector, &floats(vector), 1e-5, word);
    }
    for case in ft["neighbors"].as_array().unwrap() {
        let word = case["word"].as_str().unwrap();
        let expected: Vec<&str> = case["topn"].as_array().unwrap().iter().map(|e| e[0].as_str().unwrap()).collect();
        let found: Vec<String> = engine.neighbors(word, expected.len()).unwrap().into_iter().map(|n| n.word).collect();
        assert_eq!(found, expected, "fastText neighbours of {word}");
    }
}

#[test]
fn reads_fasttext_models_from_before_the_magic_number_like_gensim() {
    let text = std::fs::read_to_string(fixture("old_fasttext_reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let path = fixture("tiny.fasttext-old.bin");
    assert_eq!(VectorFormat::detect(&path).unwrap(), VectorFormat::FastText);
    let engine = StaticEngine::open(&path).unwrap();
    assert!(engine.has_subwords());
    assert_eq!(engine.dims(), reference["dims"].as_u64().unwrap() as usize);
    for (key, source) in [("in_vocab", LookupSource::Exact), ("oov", LookupSource::Subwords)] {
        let words = reference[key].as_object().unwrap();
        assert!(!words.is_empty(), "{key}");
        for (word, vector) in words {
            let found = engine.lookup(word).unwrap();
            assert_eq!(found.source, source, "{word}");
            assert_close(&found.vector, &floats(vector), 1e-6, word);
        }
    }
    for case in reference["neighbors"].as_array().unwrap() {
        let word = case["word"].as_str().unwrap();
        let expected: Vec<&str> = case["topn"].as_array().unwrap().iter().map(|e| e[0].as_str().unwrap()).collect();
        let found: Vec<String> = engine.neighbors(word, expected.len()).unwrap().into_iter().map(|n| n.word).collect();
        assert_eq!(found, expected, "neighbours of {word} in the old layout");
    }
}

#[test]
fn every_sentence_gets_the_same_static_vector() {
    let engine = StaticEngine::open(fixture("tiny.w2v.txt")).unwrap();
    let occurrences = [
        Occurrence::find("king", "The king spoke.").unwrap(),
        Occurrence::find("king", "A KING, at last!").unwrap(),
    ];
    let vectors: Vec<_> = engine.embed_batch(&occurrences, Pooling::Mean).unwrap().into_iter().map(|r| r.unwrap().vectors).collect();
    assert_eq!(vectors[0], vectors[1]);
    assert_eq!(vectors[0].layer(0).unwrap(), engine.lookup("king").unwrap().vector.as_slice());
}

#[test]
fn converts_to_finalfusion_and_mmaps_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.fifu");
    let original = StaticEngine::open(fixture("tiny.w2v.bin")).unwrap();
    original.write_finalfusion(&out).unwrap();
    let converted = StaticEngine::open(&out).unwrap();
    assert_eq!(converted.format(), VectorFormat::Finalfusion);
    assert_eq!(converted.words(), original.words());
    for word in ["king", "Zürich", "café"] {
        assert_close(&converted.lookup(word).unwrap().vector, &original.lookup(word).unwrap().vector, 1e-6, word);
    }
}

#[test]
fn windows_line_endings_load() {
    let engine = StaticEngine::open(fixture("broken/crlf.glove.txt")).unwrap();
    assert_eq!(engine.vocab_len(), 6);
    assert_eq!(engine.dims(), 16);
    assert!(engine.words().iter().all(|w| !w.contains('\r')));
}

#[test]
fn zero_vectors_load_but_their_cosine_is_reported_undefined() {
    let engine = StaticEngine::open_with(fixture("broken/zero_vector.txt"), &OpenOptions::default().format(VectorFormat::Glove)).unwrap();
    assert_eq!(engine.lookup("void").unwrap().vector, vec![0.0; engine.dims()]);
    let err = engine.neighbors("void", 2).unwrap_err().to_string();
    assert!(err.contains("void") && err.contains("undefined"), "{err}");
    assert!(engine.neighbors("cat", 2).unwrap().iter().all(|n| n.cosine.is_finite() || n.word == "void"));
}

#[test]
fn broken_files_are_errors_that_name_the_file_and_the_problem() {
    let cases: [(&str, Option<VectorFormat>, &str); 10] = [
        ("empty.txt", None, "empty"),
        ("empty.txt", Some(VectorFormat::Glove), "no word vectors"),
        ("duplicate_words.txt", None, "twice"),
        ("nan.txt", None, "non-finite"),
        ("inf.txt", None, "non-finite"),
        ("ragged.txt", None, "components"),
        ("header_too_big.w2v.txt", None, "cannot fit"),
        ("header_too_big.w2v.bin", None, "cannot fit"),
        ("truncated.w2v.bin", None, "truncated"),
        ("non_utf8.txt", None, "UTF-8"),
    ];
    for (file, format, needle) in cases {
        let path = fixture(&format!("broken/{file}"));
        let err = match StaticEngine::open_with(&path, &OpenOptions::default().format(format)) {
            Ok(_) => panic!("{file} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(file), "{file}: error does not name the file: {err}");
        assert!(err.contains(needle), "{file}: expected {needle:?} in: {err}");
    }
    // Long words make the file big enough to pass the header size check, so the read itself must notice.
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.bin");
    let mut bytes = b"2 3\n".to_vec();
    bytes.extend_from_slice(&[b'w'; 40]);
    bytes.extend_from_slice(b" \x00\x00\x80\x3f\x00\x00\x80\x3f\x00\x00\x80\x3f\nsecond \x00\x00");
    std::fs::write(&cut, bytes).unwrap();
    let err = StaticEngine::open_with(&cut, &OpenOptions::default().format(VectorFormat::Word2VecBinary)).err().unwrap().to_string();
    assert!(err.contains("ends inside entry 2"), "{err}");

    let err = StaticEngine::open(fixture("broken/not_vectors.txt")).err().unwrap().to_string();
    assert!(err.contains("--vectors-format"), "{err}");
    let err = StaticEngine::open_with(fixture("broken/not_vectors.txt"), &OpenOptions::default().format(VectorFormat::FastText)).err().unwrap().to_string();
    assert!(err.contains("fastText"), "{err}");
    let err = StaticEngine::open_with(fixture("tiny.w2v.txt"), &OpenOptions::default().format(VectorFormat::Finalfusion)).err().unwrap().to_string();
    assert!(err.contains("finalfusion"), "{err}");
    let err = StaticEngine::open(fixture("no-such-file.bin")).err().unwrap().to_string();
    assert!(err.contains("no-such-file.bin"), "{err}");
}
