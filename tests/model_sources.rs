//! Resolving models from local directories and from a Hugging Face cache laid out in a
//! temporary directory (no network is used).

use std::path::{Path, PathBuf};

use vecshift::source::{REQUIRED_FILES, default_bert_dir};
use vecshift::{BertEncoder, Embedder, Error, HubOptions, ModelSource};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Lays out `models--org--name/{refs/<ref>, snapshots/<commit>/<files>}` as hf-hub and the
/// Python tools write it, with the embedded MiniLM's files.
fn cache_with(files: &[&str], reference: &str) -> (tempfile::TempDir, PathBuf) {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--sentence-transformers--all-MiniLM-L6-v2");
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs").join(reference), COMMIT).unwrap();
    for file in files {
        std::os::unix::fs::symlink(default_bert_dir().join(file), snapshot.join(file)).unwrap();
    }
    let path = cache.path().to_owned();
    (cache, path)
}

fn offline(cache_dir: &Path) -> HubOptions {
    HubOptions { cache_dir: cache_dir.to_owned(), offline: true, endpoint: None, token: None }
}

#[test]
fn a_hub_id_resolves_from_a_warm_cache_without_network() {
    let (_guard, cache) = cache_with(&REQUIRED_FILES, "main");
    let source = ModelSource::parse("sentence-transformers/all-MiniLM-L6-v2").unwrap();
    let files = source.resolve_with(&offline(&cache)).unwrap();
    assert!(files.weights.starts_with(&cache) && files.weights.ends_with(format!("{COMMIT}/model.safetensors")));
    let bert = BertEncoder::load_files(&files, source.to_string(), &vecshift::LoadOptions::default()).unwrap();
    assert_eq!(bert.name(), "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(bert.num_layers(), 7);
}

#[test]
fn revisions_resolve_through_refs_or_as_commits() {
    let (_guard, cache) = cache_with(&REQUIRED_FILES, "v1.0");
    for text in ["sentence-transformers/all-MiniLM-L6-v2@v1.0", &format!("sentence-transformers/all-MiniLM-L6-v2@{COMMIT}")] {
        let files = ModelSource::parse(text).unwrap().resolve_with(&offline(&cache)).unwrap();
        assert!(files.config.is_file(), "{text}");
    }
    // `main` was never fetched into this cache.
    let err = ModelSource::parse("sentence-transformers/all-MiniLM-L6-v2").unwrap().resolve_with(&offline(&cache));
    assert!(err.is_err());
}

#[test]
fn a_cold_cache_offline_lists_the_missing_files_and_how_to_get_them() {
    let (_guard, cache) = cache_with(&["config.json"], "main");
    let err = ModelSource::parse("sentence-transformers/all-MiniLM-L6-v2").unwrap().resolve_with(&offline(&cache)).unwrap_err();
    match &err {
        Error::MissingModelFiles { missing, .. } => assert_eq!(missing, &["tokenizer.json", "model.safetensors"]),
        other => panic!("unexpected error {other}"),
    }
    let text = err.to_string();
    for needle in ["sentence-transformers/all-MiniLM-L6-v2", "tokenizer.json, model.safetensors", "HF_HUB_OFFLINE", "huggingface-cli download", "--bert DIR"] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
    assert!(text.contains(&cache.display().to_string()), "names the cache searched: {text}");
}

#[test]
fn an_unreachable_hub_is_an_error_with_the_reason_not_a_hang() {
    let cache = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback refuses connections at once.
    let options = HubOptions { cache_dir: cache.path().to_owned(), offline: false, endpoint: Some("http://127.0.0.1:9".into()), token: None };
    let err = ModelSource::parse("bert-base-uncased").unwrap().resolve_with(&options).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("bert-base-uncased") && text.contains("could not be downloaded"), "{text}");
    assert!(text.contains("config.json"), "{text}");
}

#[test]
fn local_directories_name_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let err = BertEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(err.contains("config.json, tokenizer.json, model.safetensors"), "{err}");

    let err = BertEncoder::load(dir.path().join("nope")).err().unwrap().to_string();
    assert!(err.contains("no such directory"), "{err}");

    let err = BertEncoder::load(default_bert_dir().join("config.json")).err().unwrap().to_string();
    assert!(err.contains("is a file"), "{err}");
}

#[test]
fn pickled_weights_are_refused_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(default_bert_dir().join(file), dir.path().join(file)).unwrap();
    }
    // Not even a valid pickle: vecshift must refuse before opening it.
    std::fs::write(dir.path().join("pytorch_model.bin"), b"\x80\x02cos\nsystem\n").unwrap();
    let err = BertEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(err.contains("pytorch_model.bin") && err.contains("pickle") && err.contains("safe_serialization"), "{err}");
}

#[test]
fn a_tokenizer_from_another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for file in REQUIRED_FILES {
        std::os::unix::fs::symlink(default_bert_dir().join(file), dir.path().join(file)).unwrap();
    }
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let config = std::fs::read_to_string(default_bert_dir().join("config.json")).unwrap();
    std::fs::write(dir.path().join("config.json"), config.replace("\"vocab_size\": 30522", "\"vocab_size\": 1000")).unwrap();
    let err = BertEncoder::load(dir.path()).err().unwrap().to_string();
    assert!(err.contains("30522 tokens") && err.contains("1000"), "{err}");
}
