//! Bad input, through the real binary: broken vector files and checkpoints, awkward sentence
//! files and paths. Each must give one clear `error:` line (with `RUST_BACKTRACE=1`: no
//! backtrace, no panic) and a non-zero status, and leave no half-written output; input that
//! vecshift can handle (BOM, CRLF, NFD, zero-width characters, right-to-left text, emoji, very
//! long sentences) must give the right answer. Every fixture is generated in a temporary folder.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{fails_with, fails_with_env, json, vecshift};
use serde_json::Value;

const TINY_GLOVE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/static/tiny.glove.txt");
const TINY_W2V_BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/static/tiny.w2v.bin");
const TINY_FASTTEXT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/static/tiny.fasttext.bin");
const TINY_BERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny_bert");
const GLOVE_FIFU: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/glove-6B-50d/glove.6B.50d.100k.fifu");

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Writes `bytes` to `dir/name` and returns the path as a string for the command line.
fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The binary succeeded; its stderr holds only `warning:` lines, which contain every needle.
fn succeeds_warning(out: &Output, args: &[&str], needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    assert!(stderr.lines().all(|l| l.starts_with("warning: ")), "{args:?}: only warnings expected: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{args:?}: {needle:?} missing from the warnings: {stderr}");
    }
}

/// Succeeds with JSON on stdout, warnings allowed (each checked for the needles).
fn json_warning(args: &[&str], needles: &[&str]) -> Value {
    let out = vecshift(args);
    succeeds_warning(&out, args, needles);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The files in a folder, sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// A word2vec binary file: the header, then `word ` and little-endian f32s for each entry.
fn w2v_binary(rows: &str, entries: &[(&[u8], &[f32])]) -> Vec<u8> {
    let mut bytes = format!("{rows}\n").into_bytes();
    for (word, vector) in entries {
        bytes.extend_from_slice(word);
        bytes.push(b' ');
        vector.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
        bytes.push(b'\n');
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// Static vector files

/// A vector file: its name, its bytes, the `--vectors-format` given, what the error must say.
type VectorCase = (&'static str, Vec<u8>, Option<&'static str>, &'static [&'static str]);

#[test]
fn broken_vector_files_are_one_line_errors() {
    let dir = temp();
    let d = dir.path();
    let good_bin = w2v_binary("2 3", &[(b"king", &[1.0, 2.0, 3.0]), (b"queen", &[1.0, 2.5, 3.0])]);
    let huge_word = [b'w'; 60];
    let cases: Vec<VectorCase> = vec![
        ("empty.txt", Vec::new(), None, &["empty.txt", "the file is empty"]),
        ("empty.bin", Vec::new(), Some("word2vec"), &["empty.bin", "the file is empty"]),
        ("empty.w2v.txt", Vec::new(), Some("word2vec-text"), &["the file is empty"]),
        ("empty.glove.txt", Vec::new(), Some("glove"), &["no word vectors"]),
        // Truncated inside the header line: no newline, nothing after it.
        ("cut_in_header.bin", b"10 5".to_vec(), None, &["10 words of 5 dimensions", "cannot fit", "truncated"]),
        ("cut_header_field.txt", b"30".to_vec(), None, &["not recognised", "--vectors-format"]),
        // Text formats cut in the middle of a vector or of a word.
        ("cut_mid_vector.txt", b"2 4\nking 1 2 3 4\nqueen 1 2".to_vec(), None, &["line 3 has 2 components", "truncated"]),
        ("cut_mid_word.txt", b"2 4\nking 1 2 3 4\nque".to_vec(), None, &["line 3 has 0 components", "truncated"]),
        ("cut_mid_vector.glove.txt", b"king 1 2 3 4\nqueen 1 2".to_vec(), None, &["line 2 has 2 components", "truncated"]),
        // Binary cut in the middle of a vector, and of a word (long words keep it past the size check).
        ("cut_mid_vector.bin", good_bin[..good_bin.len() - 6].to_vec(), None, &["ends inside entry 2", "truncated"]),
        (
            "cut_mid_word.bin",
            [w2v_binary("2 3", &[(&huge_word, &[1.0, 2.0, 3.0])]), b"que".to_vec()].concat(),
            None,
            &["ends inside entry 2"],
        ),
        // Headers that claim more than the file holds are refused before anything is allocated.
        ("too_many_rows.txt", b"1000000000 300\nking 1 2 3\n".to_vec(), None, &["1000000000 words", "cannot fit"]),
        ("too_many_dims.bin", w2v_binary("2 100000000", &[(b"king", &[1.0])]), None, &["100000000 dimensions", "cannot fit"]),
        ("too_many_rows.bin", w2v_binary("18446744073709551615 3", &[(b"king", &[1.0, 2.0, 3.0])]), None, &["cannot fit"]),
        ("fewer_rows.txt", b"3 2\nking 1 2\nqueen 3 4\n".to_vec(), None, &["declares 3 words but the file holds 2"]),
        ("zero_header.txt", b"0 0\n".to_vec(), None, &["0 words of 0 dimensions"]),
        ("duplicate.txt", b"king 1 2\nqueen 2 3\nking 3 4\n".to_vec(), None, &["\"king\" appears twice", "entry 3"]),
        ("nan.txt", b"king 1 NaN\nqueen 2 3\n".to_vec(), None, &["non-finite", "NaN", "entry 1"]),
        ("inf.bin", w2v_binary("1 2", &[(b"king", &[f32::INFINITY, 1.0])]), None, &["non-finite", "inf"]),
        ("neg_inf.txt", b"king 1 -inf\n".to_vec(), None, &["non-finite"]),
        // A word that is not UTF-8: the error names the line (text) or the entry (binary).
        ("latin1_first.txt", b"caf\xe9 1 2\nking 2 3\n".to_vec(), None, &["line 1 is not valid UTF-8"]),
        ("latin1_later.txt", b"king 1 2\ncaf\xe9 2 3\n".to_vec(), None, &["line 2 is not valid UTF-8"]),
        ("latin1.bin", w2v_binary("2 2", &[(b"king", &[1.0, 2.0]), (b"caf\xe9", &[2.0, 3.0])]), None, &["entry 2 is not valid UTF-8"]),
        ("prose.txt", b"Call me Ishmael. Some years ago\n".to_vec(), None, &["not recognised", "--vectors-format"]),
    ];
    for (name, bytes, format, needles) in &cases {
        let path = write(d, name, bytes);
        let mut args = vec!["--vectors", path.as_str()];
        if let Some(format) = format {
            args.extend(["--vectors-format", format]);
        }
        args.extend(["neighbors", "king"]);
        let mut needles = needles.to_vec();
        needles.push(*name);
        fails_with(&args, &needles);
    }
    // Truncated binary models of the other formats: the reader's complaint, on one line.
    let cut_fasttext = write(d, "cut.fasttext.bin", &std::fs::read(TINY_FASTTEXT).unwrap()[..100]);
    fails_with(&["--vectors", &cut_fasttext, "neighbors", "king"], &["cut.fasttext.bin"]);
    let cut_fifu = write(d, "cut.fifu", &std::fs::read(GLOVE_FIFU).unwrap()[..5000]);
    fails_with(&["--vectors", &cut_fifu, "neighbors", "king"], &["cut.fifu"]);
}

#[test]
fn a_wrong_vectors_format_says_what_the_file_looks_like() {
    let cases = [
        (TINY_GLOVE, "word2vec", "glove"),
        (TINY_GLOVE, "word2vec-text", "glove"),
        (TINY_W2V_BIN, "glove", "word2vec"),
        (TINY_W2V_BIN, "word2vec-text", "word2vec"),
        (GLOVE_FIFU, "glove", "finalfusion"),
        (GLOVE_FIFU, "word2vec", "finalfusion"),
        (TINY_GLOVE, "fasttext", "glove"),
        (TINY_W2V_BIN, "finalfusion", "word2vec"),
    ];
    for (file, named, actual) in cases {
        let hint = format!("looks like {actual}: pass --vectors-format {actual}");
        fails_with(&["--vectors", file, "--vectors-format", named, "neighbors", "king"], &[&format!("read as {named}"), &hint]);
    }
}

#[test]
fn windows_line_endings_load_in_both_text_formats() {
    let dir = temp();
    let w2v = write(dir.path(), "crlf.w2v.txt", "3 2\r\nking 1 0\r\nqueen 0.9 0.1\r\napple 0 1\r\n");
    let glove = write(dir.path(), "crlf.glove.txt", "king 1 0\r\nqueen 0.9 0.1\r\napple 0 1\r\n");
    for file in [&w2v, &glove] {
        let v = json(&["--vectors", file, "neighbors", "--json", "king", "-k", "2"]);
        assert_eq!(v[0]["word"], "queen", "{file}: {v}");
        assert_eq!(v[1]["word"], "apple", "no word keeps a \\r: {v}");
    }
}

#[test]
fn zero_vectors_have_no_cosine_and_say_so() {
    let dir = temp();
    let file = write(dir.path(), "zero.txt", "king 1 0 0\nqueen 0.9 0.1 0\nvoid 0 0 0\nman 0.5 0.5 0.1\nwoman 0.4 0.6 0.1\n");
    let v = ["--vectors", file.as_str()];
    // As the query: an error that says why, not NaN.
    fails_with(&[&v[..], &["neighbors", "void"]].concat(), &["\"void\"", "all zeros", "undefined"]);
    fails_with(&[&v[..], &["analogy", "man", "void", "woman"]].concat(), &["\"void\"", "all zeros", "undefined"]);
    // As a candidate: never anyone's neighbour (its cosine is undefined, not 0).
    let neighbours = json(&[&v[..], &["neighbors", "--json", "king", "-k", "10"]].concat());
    let words: Vec<&str> = neighbours.as_array().unwrap().iter().map(|n| n["word"].as_str().unwrap()).collect();
    assert_eq!(words, ["queen", "man", "woman"], "{neighbours}");
    let answers = json(&[&v[..], &["analogy", "--json", "man", "king", "woman", "-k", "10"]].concat());
    assert!(answers.as_array().unwrap().iter().all(|a| a["word"] != "void" && a["cosine"].as_f64().unwrap().is_finite()), "{answers}");
    let table = vecshift(&[&v[..], &["neighbors", "king"]].concat());
    assert!(!text(&table.stdout).contains("NaN") && !text(&table.stdout).contains("void"), "{}", text(&table.stdout));
    // compare: a warning, `null` cosines in JSON, `n/a` in the table; BERT is unaffected.
    let args = [&v[..], &["compare", "--json", "-w", "void", "-s", "the void here", "-s", "a void there"]].concat();
    let out = json_warning(&args, &["\"void\"", "all zeros", "undefined"]);
    assert!(out["static"]["matrix"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap()).all(Value::is_null), "{out}");
    assert!(out["static"]["mean_similarity"].is_null());
    assert!(out["contextual"]["layers"][6]["mean_similarity"].as_f64().unwrap() > 0.5);
    let args = [&v[..], &["compare", "-w", "void", "-s", "the void here", "-s", "a void there"]].concat();
    let out = vecshift(&args);
    succeeds_warning(&out, &args, &["all zeros"]);
    let table = text(&out.stdout);
    assert!(table.contains("mean cosine   n/a") && !table.contains("NaN"), "{table}");
}

// ---------------------------------------------------------------------------------------------
// BERT checkpoints

/// A copy of the tiny f32 checkpoint in a temporary folder, to break.
fn tiny_checkpoint() -> (tempfile::TempDir, PathBuf) {
    let dir = temp();
    let model = dir.path().join("tiny");
    std::fs::create_dir(&model).unwrap();
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(Path::new(TINY_BERT).join("f32_noprefix").join(file), model.join(file)).unwrap();
    }
    (dir, model)
}

fn embed_with(model: &Path) -> Vec<String> {
    ["--bert", model.to_str().unwrap(), "--vectors", TINY_GLOVE, "embed", "-w", "bank", "-s", "the bank"].map(String::from).to_vec()
}

fn bert_fails(model: &Path, needles: &[&str]) {
    let args = embed_with(model);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails_with(&args, needles);
}

/// Rewrites a field of the checkpoint's config.json.
fn set_config(model: &Path, key: &str, value: Value) {
    let path = model.join("config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config[key] = value;
    std::fs::write(path, config.to_string()).unwrap();
}

/// A copy of a tiny decoder checkpoint of tests/fixtures/decoders in a temporary folder, to break.
fn decoder_checkpoint(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = temp();
    let model = dir.path().join(name);
    std::fs::create_dir(&model).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decoders").join(name);
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(fixture.join(file), model.join(file)).unwrap();
    }
    (dir, model)
}

#[test]
fn broken_decoder_checkpoints_are_one_line_errors() {
    let cases: [(&str, &str, Value, &[&str]); 7] = [
        ("llama", "num_key_value_heads", 3.into(), &["config.json", "not a multiple of num_key_value_heads 3"]),
        ("llama", "rope_parameters", serde_json::json!({"rope_type": "yarn", "factor": 4.0}), &["rope type \"yarn\" is not supported", "llama3"]),
        ("llama", "rope_parameters", serde_json::json!({"rope_type": "llama3", "factor": 8.0}), &["rope type \"llama3\" needs \"low_freq_factor\""]),
        ("qwen2", "hidden_act", "gelu".into(), &["config.json", "hidden_act", "silu"]),
        ("mistral", "num_hidden_layers", 4.into(), &["layers.3", "weights do not match config.json"]),
        ("gpt2", "n_head", 5.into(), &["config.json", "not divisible by n_head 5"]),
        ("gpt2", "n_inner", 65.into(), &["shape mismatch", "c_fc.weight"]),
    ];
    for (name, key, value, needles) in cases {
        let (_dir, model) = decoder_checkpoint(name);
        set_config(&model, key, value);
        bert_fails(&model, needles);
    }
}

#[test]
fn the_tiny_checkpoint_copy_works() {
    let (_dir, model) = tiny_checkpoint();
    let args = embed_with(&model);
    let v = json(&[&args.iter().map(String::as_str).collect::<Vec<_>>()[..], &["--json"]].concat());
    assert_eq!(v["contextual"]["layers"].as_array().unwrap().len(), 3);
}

#[test]
fn broken_checkpoints_are_one_line_errors_without_backtraces() {
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        let (_dir, model) = tiny_checkpoint();
        std::fs::remove_file(model.join(file)).unwrap();
        bert_fails(&model, &["tiny", &format!("missing {file}")]);
    }
    // Candle errors carry a captured backtrace under RUST_BACKTRACE=1 (which the helper sets):
    // it must not reach the user.
    let cases: [(&str, Value, &[&str]); 7] = [
        ("num_hidden_layers", 3.into(), &["encoder.layer.2", "weights do not match config.json"]),
        ("intermediate_size", 65.into(), &["shape mismatch", "output.dense.weight", "[32, 65]"]),
        ("hidden_size", 64.into(), &["shape mismatch"]),
        ("hidden_act", "swish".into(), &["config.json", "swish", "gelu"]),
        ("position_embedding_type", "relative_key".into(), &["config.json", "relative_key", "absolute"]),
        ("vocab_size", 10.into(), &["tokenizer.json has 87 tokens", "only 10", "another model"]),
        ("num_attention_heads", 5.into(), &["not divisible by num_attention_heads 5"]),
    ];
    for (key, value, needles) in cases {
        let (_dir, model) = tiny_checkpoint();
        set_config(&model, key, value);
        bert_fails(&model, needles);
    }
    let (_dir, model) = tiny_checkpoint();
    std::fs::write(model.join("config.json"), "{\"hidden_size\": 32,").unwrap();
    bert_fails(&model, &["config.json is not valid JSON"]);
    let (_dir, model) = tiny_checkpoint();
    let path = model.join("config.json");
    let config = std::fs::read_to_string(&path).unwrap().replace("\"hidden_size\": 32,", "");
    std::fs::write(&path, config).unwrap();
    bert_fails(&model, &["missing field `hidden_size`"]);
    let (_dir, model) = tiny_checkpoint();
    std::fs::write(model.join("tokenizer.json"), "not json").unwrap();
    bert_fails(&model, &["cannot read tokenizer.json"]);
    // Weights cut short, emptied, or not safetensors at all.
    let (_dir, model) = tiny_checkpoint();
    let weights = std::fs::read(model.join("model.safetensors")).unwrap();
    std::fs::write(model.join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
    bert_fails(&model, &["model.safetensors", "not fully covered"]);
    std::fs::write(model.join("model.safetensors"), b"").unwrap();
    bert_fails(&model, &["model.safetensors", "header too small"]);
    // A header claiming a terabyte of tensors in a tiny file: refused, nothing allocated.
    let header = br#"{"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[1000000000,300],"data_offsets":[0,1200000000000]}}"#;
    let mut lying = (header.len() as u64).to_le_bytes().to_vec();
    lying.extend_from_slice(header);
    std::fs::write(model.join("model.safetensors"), lying).unwrap();
    bert_fails(&model, &["model.safetensors"]);
}

#[test]
fn pickled_weights_are_refused_with_the_conversion_and_never_opened() {
    let (_dir, model) = tiny_checkpoint();
    std::fs::remove_file(model.join("model.safetensors")).unwrap();
    // A pickle that would run a shell command if it were ever unpickled; vecshift must refuse
    // before reading it, and say how to convert.
    let marker = model.join("pwned");
    let pickle = format!("cos\nsystem\n(S'touch {}'\ntR.", marker.display());
    std::fs::write(model.join("pytorch_model.bin"), pickle).unwrap();
    bert_fails(&model, &["pytorch_model.bin", "pickle", "save_pretrained", "safe_serialization=True"]);
    assert!(!marker.exists());
}

#[test]
fn sharded_checkpoints_with_a_broken_index_are_one_line_errors() {
    let sharded = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoders/xlm-roberta");
    let copy = || {
        let dir = temp();
        let model = dir.path().join("sharded");
        std::fs::create_dir(&model).unwrap();
        for entry in std::fs::read_dir(&sharded).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
        }
        (dir, model)
    };
    let (_dir, model) = copy();
    std::fs::remove_file(model.join("model-00002-of-00003.safetensors")).unwrap();
    bert_fails(&model, &["model.safetensors.index.json", "names the shard model-00002-of-00003.safetensors", "missing"]);
    let (_dir, model) = copy();
    std::fs::write(model.join("model.safetensors.index.json"), r#"{"weight_map": {"a": "../elsewhere.safetensors"}}"#).unwrap();
    bert_fails(&model, &["model.safetensors.index.json", "../elsewhere.safetensors", "file names beside the index"]);
    std::fs::write(model.join("model.safetensors.index.json"), "[1, 2]").unwrap();
    bert_fails(&model, &["model.safetensors.index.json", "is not a safetensors index"]);
    std::fs::write(model.join("model.safetensors.index.json"), r#"{"weight_map": {}}"#).unwrap();
    bert_fails(&model, &["model.safetensors.index.json", "names no shard"]);
    // A model_type that is not supported is refused, never loaded as another architecture.
    let (_dir, model) = copy();
    set_config(&model, "model_type", "deberta-v2".into());
    bert_fails(&model, &["\"deberta-v2\" is not supported", "roberta", "xlm-roberta", "distilbert", "electra"]);
}

#[test]
fn model_paths_that_are_not_model_folders() {
    let dir = temp();
    let file = write(dir.path(), "config.json", "{}");
    fails_with(&["--bert", &file, "embed", "-w", "a", "-s", "a"], &["config.json", "is a file", "pass the directory"]);
    let missing = dir.path().join("no-model");
    fails_with(&["--bert", missing.to_str().unwrap(), "embed", "-w", "a", "-s", "a"], &["no-model", "no such directory"]);
    fails_with(&["--bert", "not a model!", "embed", "-w", "a", "-s", "a"], &["not a model!", "Hugging Face model id"]);
}

// ---------------------------------------------------------------------------------------------
// Sentence input: compare, embed, report

#[test]
fn sentence_files_without_sentences_or_not_text() {
    let dir = temp();
    let d = dir.path();
    let compare = |file: &str, needles: &[&str]| fails_with(&["compare", "-w", "bank", "--sentences", file], needles);
    compare(&write(d, "empty.txt", ""), &["empty.txt", "no sentences"]);
    compare(&write(d, "blank.txt", "\n  \n\r\n\t\n"), &["blank.txt", "no sentences"]);
    compare(&write(d, "bom_only.txt", "\u{feff}\r\n"), &["bom_only.txt", "no sentences"]);
    compare(&write(d, "nul.txt", b"The bank.\nThe river\0 bank.\n"), &["nul.txt line 2", "NUL byte", "UTF-8"]);
    compare(&write(d, "latin1.txt", b"The bank.\nThe caf\xe9 by the bank.\n"), &["latin1.txt line 2", "not UTF-8", "column 8", "save the file as UTF-8"]);
    let utf16: Vec<u8> = [0xff, 0xfe].into_iter().chain("The bank.\nA bank.\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
    compare(&write(d, "utf16.txt", utf16), &["utf16.txt", "UTF-16", "UTF-8"]);
    // A sentence without the word: skipped with a warning naming the file and line, or with
    // --strict the one error.
    let absent = write(d, "absent.txt", "The bank.\nNothing here.\nA bank.\n");
    let args = ["compare", "-w", "bank", "--sentences", &absent];
    succeeds_warning(&vecshift(&args), &args, &["absent.txt line 2", "\"bank\"", "Nothing here.", "skipped"]);
    fails_with(&[&args[..], &["--strict"]].concat(), &["absent.txt line 2", "\"bank\"", "Nothing here.", "--strict"]);
    let inside = write(d, "inside.txt", "The bank.\nI went banking.\n");
    fails_with(&["compare", "-w", "bank", "--strict", "--sentences", &inside], &["inside.txt line 2", "whole word", "banking"]);
    compare(&write(d, "one.txt", "The bank.\n"), &["at least two sentences"]);
    fails_with(&["embed", "-w", "bank", "-s", ""], &["\"bank\"", "does not occur"]);
    fails_with(&["embed", "-w", "", "-s", "the bank"], &["does not occur"]);
    fails_with(&["embed", "-w", "bank", "-s", "I went banking, not to the bankers."], &["whole word"]);
}

#[test]
fn a_bom_and_windows_line_endings_are_stripped() {
    let dir = temp();
    let file = write(dir.path(), "bom.tsv", "\u{feff}bank\tThe bank is open.\tfinance\r\nbank\tThe river bank.\triver\r\n");
    let v = json(&["compare", "--json", "--sentences", &file]);
    assert_eq!(v["word"], "bank", "the BOM is not part of the first word");
    assert_eq!(v["sentences"], serde_json::json!(["The bank is open.", "The river bank."]));
    assert_eq!(v["spans"], serde_json::json!([[4, 8], [10, 14]]));
    assert_eq!(v["senses"], serde_json::json!(["finance", "river"]), "no \\r in the last column");
    let plain = write(dir.path(), "bom.txt", "\u{feff}Bank holidays.\r\nThe bank.\r\n");
    let v = json(&["compare", "--json", "-w", "bank", "--sentences", &plain]);
    assert_eq!(v["spans"], serde_json::json!([[0, 4], [4, 8]]), "found at the very start, after the BOM");
}

#[test]
fn nfc_and_nfd_spellings_find_each_other() {
    let (nfc, nfd) = ("caf\u{e9}", "cafe\u{301}");
    let dir = temp();
    let file = write(dir.path(), "cafe.txt", format!("I love this {nfc} a lot.\nThe {nfd} was closed.\n"));
    for word in [nfc, nfd] {
        let v = json(&["compare", "--json", "-w", word, "--sentences", &file]);
        assert_eq!(v["spans"], serde_json::json!([[12, 17], [4, 10]]), "{word:?}");
        // GloVe has the composed "café": the decomposed spelling finds it too.
        assert!(v["static"]["matrix"][0][1].as_f64().unwrap() > 0.9999, "{word:?}: {}", v["static"]);
    }
    let v = json(&["embed", "--json", "-w", nfc, "-s", &format!("Un {nfd} noir.")]);
    assert_eq!((v["word"].as_str().unwrap(), &v["span"]), (nfd, &serde_json::json!([3, 9])));
    assert_eq!(v["static"]["entry"], nfc);
    fails_with(&["embed", "-w", "cafe", "-s", &format!("Un {nfd} noir.")], &["does not occur"]);
}

#[test]
fn zero_width_characters_inside_or_next_to_the_word() {
    let sentences = [
        ("The bank\u{200b} is open.", [4, 8]),          // zero-width space after: left out of the span
        ("The \u{200b}bank is open.", [7, 11]),         // before
        ("The ban\u{200d}k is closed.", [4, 11]),       // zero-width joiner inside: skipped, spanned
        ("A bank\u{200d} here.", [2, 6]),               // a joiner after the word belongs to it for UAX #29
        ("The ban\u{200b}k and more.", [4, 11]),        // zero-width space inside
        ("Soft-hyphenated ban\u{ad}k.", [16, 22]),      // soft hyphen inside
    ];
    let mut args = vec!["compare", "--json", "-w", "bank"];
    sentences.iter().for_each(|(s, _)| args.extend(["-s", s]));
    let v = json(&args);
    let spans: Vec<[u64; 2]> = sentences.iter().map(|(_, span)| [span[0], span[1]]).collect();
    assert_eq!(v["spans"], serde_json::json!(spans));
    // The static vector is found for every spelling.
    assert!(v["static"]["matrix"][0].as_array().unwrap().iter().all(|c| c.as_f64().unwrap() > 0.9999), "{}", v["static"]);
    fails_with(&["embed", "-w", "bank", "-s", "The bank\u{200d}ing sector."], &["does not occur"]);
    fails_with(&["embed", "-w", "\u{200b}", "-s", "a \u{200b} b"], &["does not occur"]);
}

#[test]
fn right_to_left_text_and_emoji() {
    let arabic = "ذهبت إلى bank اليوم.";
    let hebrew = "הלכתי ל bank היום.";
    let emoji = "🏦bank🏦 is open.";
    let emoji2 = "The 👍 bank 👍 rocks.";
    let v = json(&["compare", "--json", "-w", "bank", "-s", arabic, "-s", hebrew, "-s", emoji, "-s", emoji2]);
    assert_eq!(v["spans"], serde_json::json!([[16, 20], [14, 18], [4, 8], [9, 13]]));
    assert_eq!(v["contextual"]["layers"].as_array().unwrap().len(), 7);
    // An Arabic target in an Arabic sentence: found, encoded; GloVe (English) lacks it, with a warning.
    let target = "بنك";
    let v = json_warning(&["embed", "--json", "-w", target, "-s", "ذهبت إلى بنك كبير"], &[target, "not in the vocabulary"]);
    assert_eq!((v["word"].as_str().unwrap(), &v["span"]), (target, &serde_json::json!([16, 22])));
    assert!(v["static"].is_null());
    assert_eq!(v["contextual"]["layers"].as_array().unwrap().len(), 7);
    // Emoji are not part of a word: the ZWJ of an emoji sequence next to the word does not join it.
    let v = json(&["embed", "--json", "-w", "bank", "-s", "👩\u{200d}💻bank👩\u{200d}💻"]);
    assert_eq!(v["span"], serde_json::json!([11, 15]));
}

#[test]
fn very_long_sentences_are_windowed_with_a_warning() {
    // 10,000 words (far more than MiniLM's 512 positions).
    let words: String = (0..5000).map(|i| format!("w{i} ")).collect();
    let long = format!("{words}the bank is here {words}");
    let v = json_warning(&["embed", "--json", "-w", "bank", "-s", &long], &["longer than", "512 positions", "window", "\"bank\""]);
    assert_eq!(v["span"][0].as_u64().unwrap() as usize, words.len() + 4);
    assert_eq!(v["contextual"]["layers"].as_array().unwrap().len(), 7);

    // A 1 MB single line in a sentences file, the word at its very end.
    let dir = temp();
    let line = "lorem ipsum dolor sit amet ".repeat(38_000);
    assert!(line.len() > 1_000_000);
    let file = write(dir.path(), "long.txt", format!("{line}bank\nThe river bank.\n"));
    let v = json_warning(&["compare", "--json", "-w", "bank", "--sentences", &file], &["window"]);
    assert_eq!(v["spans"][0], serde_json::json!([line.len(), line.len() + 4]));
    let last = v["contextual"]["layers"][6]["matrix"][0][1].as_f64().unwrap();
    assert!(last.is_finite() && last < 1.0);
    // An error about such a sentence stays short.
    let out = vecshift(&["compare", "--strict", "-w", "castle", "--sentences", &file]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success() && stderr.len() < 400 && stderr.contains("characters)"), "{}", &stderr[..stderr.len().min(600)]);
}

#[test]
fn report_inputs_that_are_empty_broken_or_odd() {
    let dir = temp();
    let d = dir.path();
    fn report<'a>(file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        [&["report", file, "-q"][..], extra].concat()
    }
    let empty = write(d, "empty.txt", "");
    fails_with(&report(&empty, &["-w", "bank"]), &["empty.txt has no usable lines", "0 read"]);
    let blank = write(d, "blank.txt", "\n\r\n   \n");
    fails_with(&report(&blank, &["-w", "bank"]), &["blank.txt has no usable lines", "3 read", "line 1: empty line"]);
    let absent = write(d, "absent.txt", "The river.\nI went banking.\n");
    fails_with(&report(&absent, &["-w", "bank"]), &["no usable lines", "line 1", "\"bank\""]);
    let utf16: Vec<u8> = [0xff, 0xfe].into_iter().chain("bank\tThe bank.\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
    let utf16 = write(d, "utf16.tsv", utf16);
    fails_with(&report(&utf16, &[]), &["no usable lines", "line 1: the input is UTF-16", "UTF-8"]);

    // BOM, CRLF, a NUL byte, a line that is not UTF-8, a word only inside another word: the good
    // lines are used, the others skipped and named.
    let mixed = write(
        d,
        "mixed.tsv",
        [
            &b"\xef\xbb\xbfbank\tThe bank is open.\tfinance\r\n"[..],
            b"bank\tThe river bank.\triver\r\n",
            b"bank\tThe bank\0 vault.\tfinance\r\n",
            b"bank\tThe caf\xe9 bank.\r\n",
            b"bank\tI went banking.\r\n",
            b"bank\tA bank loan.\tfinance\r\n",
        ]
        .concat(),
    );
    let out = vecshift(&report(&mixed, &["--json"]));
    succeeds_warning(&out, &["report", &mixed], &["skipped 3 bad line(s)", "line 3: a NUL byte", "line 4: not valid UTF-8"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["words"][0]["word"], "bank", "the BOM is stripped");
    assert_eq!(v["words"][0]["occurrences"], 3);
    assert_eq!(v["words"][0]["senses"], serde_json::json!({"finance": 2, "river": 1}), "no \\r in the senses");
    let skipped: Vec<u64> = v["skipped"].as_array().unwrap().iter().map(|s| s["line"].as_u64().unwrap()).collect();
    assert_eq!(skipped, [3, 4, 5]);
    assert!(v["skipped"][2]["reason"].as_str().unwrap().contains("banking"));
    // --strict stops at the first, naming it.
    fails_with(&report(&mixed, &["--strict"]), &["line 3", "NUL byte", "--strict"]);

    // A 1 MB line: windowed, with the warning.
    let line = "lorem ipsum dolor sit amet ".repeat(38_000);
    let long = write(d, "long.txt", format!("{line}bank\nThe river bank.\n"));
    let out = vecshift(&report(&long, &["-w", "bank", "--json"]));
    succeeds_warning(&out, &["report", &long], &["window"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["words"][0]["occurrences"], 2);
}

// ---------------------------------------------------------------------------------------------
// Paths

#[test]
fn anisotropy_corrections_without_what_they_need() {
    let dir = temp();
    let d = dir.path();
    let bank = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sentences/bank.tsv");
    let missing = d.join("missing.txt");
    let missing = missing.to_str().unwrap();
    let one_line = write(d, "one.txt", "Just one sentence here\n\n");
    fails_with(&["compare", "--sentences", bank, "--fit", one_line.as_str()], &["--fit", "add --postprocess"]);
    fails_with(&["report", bank, "--fit", one_line.as_str(), "--postprocess", "none"], &["--fit", "add --postprocess"]);
    fails_with(&["compare", "--sentences", bank, "--postprocess", "center", "--fit", missing], &["missing.txt", "--fit corpus"]);
    fails_with(&["compare", "--sentences", bank, "--postprocess", "center", "--fit", one_line.as_str()], &["one.txt", "fewer than two sentences"]);
    let out_file = d.join("out.md");
    fails_with(&["report", bank, "--postprocess", "whiten", "--fit", one_line.as_str(), "-o", out_file.to_str().unwrap()], &["one.txt", "fewer than two sentences"]);
    for args in [&["compare", "--sentences", bank, "--postprocess", "pca"][..], &["report", bank, "--postprocess", "center,pca"]] {
        let out = vecshift(args);
        assert!(!out.status.success() && out.stdout.is_empty());
        assert!(text(&out.stderr).contains("all-but-the-top:D"), "{}", text(&out.stderr));
    }
    // The corrections need the sampled vectors, which a partial report of one shard lacks.
    let part = d.join("p.vspart");
    let out = vecshift(&["report", bank, "--postprocess", "center", "--partial", part.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out.stderr).contains("--partial"), "{}", text(&out.stderr));
    assert_eq!(files_in(d), [PathBuf::from(&one_line)], "nothing written");
}

#[test]
fn the_terminal_ui_refuses_a_bad_correction_before_it_opens() {
    let dir = temp();
    let d = dir.path();
    let missing = d.join("missing.txt");
    let one_line = write(d, "one.txt", "Just one sentence here\n\n");
    for args in [&["--postprocess", "pca"][..], &["tui", "--postprocess", "all-but-the-top:0"], &["--word", "bank", "--postprocess", "abtt:x"]] {
        let out = vecshift(args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success() && out.stdout.is_empty(), "{args:?}");
        assert!(stderr.starts_with("error: ") && stderr.contains("--postprocess") && stderr.contains("all-but-the-top:D"), "{args:?}: {stderr}");
    }
    // Checked before the screen opens (here, before it says that stdout is no terminal).
    fails_with(&["tui", "--postprocess", "whiten", "--fit", missing.to_str().unwrap()], &["missing.txt", "--fit corpus"]);
    fails_with(&["--fit", one_line.as_str()], &["one.txt", "fewer than two sentences"]);
    fails_with(&["--postprocess", "whiten", "compare", "--sentences", "x.tsv"], &["--postprocess", "after the subcommand"]);
}

#[test]
fn missing_files_and_folders_where_files_belong() {
    let dir = temp();
    let d = dir.path();
    let folder = d.to_str().unwrap();
    let missing = d.join("missing.txt");
    let missing = missing.to_str().unwrap();
    let sentences = write(d, "s.txt", "The bank.\nThe river bank.\n");

    fails_with(&["--vectors", missing, "neighbors", "king"], &["missing.txt", "No such file"]);
    fails_with(&["--vectors", folder, "neighbors", "king"], &[folder, "directory, not a word-vector file"]);
    fails_with(&["--vectors", folder, "--vectors-format", "glove", "neighbors", "king"], &["directory, not a word-vector file"]);
    fails_with(&["compare", "-w", "bank", "--sentences", folder], &[folder, "is a folder"]);
    fails_with(&["report", folder, "-w", "bank"], &[folder, "is a folder"]);
    fails_with(&["report", missing, "-w", "bank"], &["missing.txt", "No such file"]);
    fails_with(&["convert", missing, &format!("{folder}/out.fifu")], &["missing.txt", "No such file"]);
    fails_with(&["eval", "wordsim", missing, "--static-only"], &["missing.txt"]);
    fails_with(&["eval", "wordsim", folder, "--static-only"], &[folder]);
    // No error quotes the same cause twice ("Is a directory: Is a directory").
    let out = vecshift(&["convert", folder, &format!("{folder}/out.fifu")]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success() && stderr.matches("directory").count() == 1, "{stderr}");
    assert_eq!(files_in(d), [PathBuf::from(&sentences)], "nothing written");
}

#[test]
fn output_paths_that_cannot_be_written_leave_nothing_behind() {
    let dir = temp();
    let d = dir.path();
    let sentences = write(d, "s.txt", "The bank.\nThe river bank.\n");
    let vectors = write(d, "v.txt", "king 1 0\nqueen 0.9 0.1\n");
    let a_file = write(d, "a-file", "not a folder");
    let report = |out: &str| vec!["report".to_owned(), sentences.clone(), "-w".into(), "bank".into(), "-q".into(), "-o".into(), out.to_owned()];
    let convert = |out: &str| vec!["convert".to_owned(), vectors.clone(), out.to_owned()];
    let cases: [(String, &[&str]); 4] = [
        (format!("{}/missing-folder/out.json", d.display()), &["missing-folder", "does not exist"]),
        (format!("{a_file}/out.json"), &["a-file", "is a file, not a folder"]),
        (d.to_str().unwrap().to_owned(), &["is a folder; name a file"]),
        // Root cannot create files in /proc either: a permission case that holds in CI.
        ("/proc/vecshift-bad-input-test.json".to_owned(), &["/proc", "cannot create a temporary file"]),
    ];
    let before = files_in(d);
    for (out, needles) in &cases {
        for args in [report(out), convert(out)] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            fails_with(&args, needles);
        }
        assert!(!Path::new(out).is_file(), "{out}");
    }
    assert_eq!(files_in(d), before, "no temporary or partial files");
    assert_eq!(std::fs::read_to_string(&a_file).unwrap(), "not a folder");
}

/// A device that cannot be used: a build without CUDA asked for it, a CUDA build with no such GPU
/// (or none at all, or no driver), a name that is no device. One line naming the setting and
/// the way out, from every command that loads the encoder, and no report file.
#[test]
fn unusable_devices_are_one_line_errors() {
    let dir = temp();
    let d = dir.path();
    let sentences = write(d, "bank.tsv", "bank\tWe sat on the river bank.\n");
    let out = d.join("report.json");
    let out = out.to_str().unwrap();
    let commands: [&[&str]; 3] = [
        &["--vectors", TINY_W2V_BIN, "embed", "-w", "bank", "-s", "We sat on the river bank."],
        &["--vectors", TINY_W2V_BIN, "report", &sentences, "-q", "-o", out],
        &["bench", "encode", "--sentences", &sentences, "--repeat", "1"],
    ];
    let cases: [(&str, &[&str]); 3] = [
        // 99: no machine has that many GPUs, so this fails on a CUDA build with a GPU too.
        ("cuda:99", &["VECSHIFT_DEVICE=cuda:99", "VECSHIFT_DEVICE=cpu"]),
        ("cuda:first", &["VECSHIFT_DEVICE=cuda:first", "expected cuda or cuda:N"]),
        ("tpu", &["VECSHIFT_DEVICE=tpu", "expected cpu, cuda, cuda:N or metal"]),
    ];
    for (device, needles) in cases {
        for args in commands {
            fails_with_env(args, &[("VECSHIFT_DEVICE", device)], needles);
        }
    }
    assert!(!Path::new(out).exists(), "no report written");
}

/// Runs the binary as the unprivileged user `nobody` when the tests run as root (who reads and
/// writes through any permission bits); `None`, with a note, when that is not possible here.
fn run_unprivileged(args: &[&str]) -> Option<Output> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_vecshift"));
    command.args(args).env("RUST_BACKTRACE", "1");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        command.uid(65534).gid(65534);
    }
    match command.output() {
        Ok(out) if out.status.code() == Some(126) || text(&out.stderr).contains("ermission denied (os error 13)") && !text(&out.stderr).starts_with("error: ") => {
            eprintln!("note: skipped a permission case: the binary cannot run as nobody here");
            None
        }
        Ok(out) => Some(out),
        Err(e) => {
            eprintln!("note: skipped a permission case: cannot run as nobody ({e})");
            None
        }
    }
}

#[test]
fn unreadable_inputs_and_unwritable_folders() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = write(d, "secret.txt", "The bank.\nThe river bank.\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let locked = d.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let readable = write(d, "ok.txt", "The bank.\nThe river bank.\n");
    std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let target = locked.join("report.json");

    let check = |args: &[&str], needles: &[&str]| {
        let Some(out) = run_unprivileged(args) else { return };
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: ") && !stderr.contains("panicked"), "{stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{args:?}: {needle:?} missing from {stderr}");
        }
    };
    check(&["compare", "-w", "bank", "--sentences", &secret], &["secret.txt", "Permission denied"]);
    check(&["report", &secret, "-w", "bank"], &["secret.txt", "Permission denied"]);
    check(&["--vectors", &secret, "neighbors", "bank"], &["secret.txt", "Permission denied"]);
    check(&["report", &readable, "-w", "bank", "-q", "-o", target.to_str().unwrap()], &["locked", "Permission denied"]);
    assert!(files_in(&locked).is_empty(), "nothing left in the locked folder");
}

// ---------------------------------------------------------------------------------------------
// Compression variants

#[test]
fn bad_variants_are_one_line_errors_naming_the_valid_range() {
    let (dir, model) = tiny_checkpoint();
    let m = model.to_str().unwrap();
    for (variant, needles) in [
        ("int3", &["unknown variant", "int4[:gN]"][..]),
        ("prune:1.5", &["[0,1)"]),
        ("rank:99", &["rank:1..=32"]),
        ("drop-layers:7", &["layer 7 does not exist", "0..=1"]),
        ("int4:g5", &["not a multiple of 5"]),
        ("int4:g0", &["N >= 1"]),
        ("rank:0", &["R >= 1", "(0,1]"]),
        ("prune-neurons:1", &["[0,1)"]),
        ("prune-neurons:0.999", &["all 64 feed-forward neurons", "P < 0.9922"]),
        ("prune:0.3+", &["unknown variant", "joined with +"]),
    ] {
        fails_with(&["--bert", m, "--vectors", TINY_GLOVE, "embed", "-w", "bank", "-s", "the bank", "--variant", variant], needles);
    }
    let out = dir.path().join("small");
    let o = out.to_str().unwrap();
    fails_with(&["compress", m, "--variant", "rank:99", "-o", o], &["rank:1..=32"]);
    assert!(!out.exists());
    std::fs::create_dir(&out).unwrap();
    fails_with(&["compress", m, "--variant", "int8", "-o", o], &["already exists"]);
    // Nothing half-written beside the target.
    assert_eq!(files_in(dir.path()), vec![out.clone(), model.clone()]);
}

/// A partial report holds no variant measures: `--variant` is refused with `--partial` and by
/// `report merge`, before anything is written.
#[test]
fn variants_are_refused_by_sharded_reports() {
    let dir = temp();
    let part = dir.path().join("shard.vspart");
    let p = part.to_str().unwrap();
    let tiny = format!("{TINY_BERT}/f32_noprefix");
    let input = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/report/fixture.tsv");
    fails_with(&["report", input, "--bert", &tiny, "--variant", "int8", "--partial", p, "-q"], &["--variant", "--partial", "one process"]);
    assert!(files_in(dir.path()).is_empty(), "no part written");
    assert!(vecshift(&["report", input, "--bert", &tiny, "--partial", p, "-q"]).status.success());
    fails_with(&["--variant", "int8", "report", "merge", p, "-q"], &["--variant", "report merge", "one process"]);
}

#[test]
fn bad_quantization_schemes_are_one_line_errors() {
    let dir = temp();
    let d = dir.path();
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/static/tiny.w2v.bin");
    let input = input.to_str().unwrap();
    let out = d.join("out.fifu");
    let out = out.to_str().unwrap();
    // tiny.w2v.bin has 16 dimensions.
    fails_with(&["convert", "--quantize", "pq:7", input, out], &["pq:7", "divides the 16 dimensions", "1, 2, 4, 8, 16"]);
    fails_with(&["convert", "--quantize", "pq:0", input, out], &["--quantize", "pq:0", "above 0"]);
    fails_with(&["convert", "--quantize", "pq:x", input, out], &["--quantize", "pq:x"]);
    fails_with(&["convert", "--quantize", "int4", input, out], &["--quantize", "unknown quantization \"int4\"", "pq:M"]);
    fails_with(&["convert", "--quantize", "int9", input, out], &["--quantize", "unknown quantization \"int9\"", "int8", "pq:M"]);
    // int8 holds one row per word: a subword model's unknown words would lose their vectors.
    let fasttext = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/static/tiny.fasttext.bin");
    fails_with(&["convert", "--quantize", "int8", fasttext.to_str().unwrap(), out], &["tiny.fasttext.bin", "subword model", "pq:M"]);
    assert!(files_in(d).is_empty(), "nothing written");
}

#[test]
fn damaged_int8_vector_files_are_one_line_errors() {
    let dir = temp();
    let d = dir.path();
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/static/tiny.w2v.bin");
    let good = d.join("good.int8");
    let report = json(&["--json", "convert", "--quantize", "int8", input.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(report["quantize"], "int8");
    let bytes = std::fs::read(&good).unwrap();
    let neighbors = |path: &str, needles: &[&str]| fails_with(&["--vectors", path, "neighbors", "king"], needles);
    // Cut anywhere: in the header, in the codes, before the last byte.
    for cut in [4, 12, bytes.len() / 2, bytes.len() - 1] {
        let cut_file = write(d, &format!("cut{cut}.int8"), &bytes[..cut]);
        let needles: &[&str] = if cut < 8 { &[&cut_file] } else { &[&cut_file, "truncated or damaged", "--quantize int8"] };
        neighbors(&cut_file, needles);
    }
    // A header that lies about the codes' shape.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let at = text.find("\"shape\":[311,16]").expect("the codes' shape in the header");
    let mut lying = bytes.clone();
    lying[at..at + 16].copy_from_slice(b"\"shape\":[311,15]");
    neighbors(&write(d, "lying.int8", &lying), &["lying.int8", "truncated or damaged"]);
    // Another safetensors file (a model's, say) is not taken for vectors.
    let mut other = bytes.clone();
    let at = text.find("vecshift-static-int8").unwrap();
    other[at..at + 8].copy_from_slice(b"someone-");
    neighbors(&write(d, "model.safetensors", &other), &["model.safetensors", "not vecshift's int8 word vectors", "--quantize int8"]);
    // A word order that is not sorted (two rows swapped), or one that misses rows, would make
    // lookups miss: the file is refused. So is a version this vecshift does not know.
    let rewritten = |order: &dyn Fn(&mut Vec<u8>), version: &str| {
        let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut data = tensors.tensor("order").unwrap().data().to_vec();
        order(&mut data);
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let mut metadata = header.metadata().clone().unwrap();
        metadata.insert("version".to_owned(), version.to_owned());
        let views = tensors.tensors().into_iter().map(|(name, view)| {
            let view = if name == "order" { safetensors::tensor::TensorView::new(view.dtype(), vec![data.len() / 4], &data).unwrap() } else { view };
            (name, view)
        });
        safetensors::serialize(views.collect::<Vec<_>>(), Some(metadata)).unwrap()
    };
    let swapped = rewritten(&|order| order[..8].rotate_left(4), "2");
    neighbors(&write(d, "swapped.int8", &swapped), &["swapped.int8", "word order is not sorted"]);
    let short = rewritten(&|order| order.truncate(order.len() - 4), "2");
    neighbors(&write(d, "short.int8", &short), &["short.int8", "word order does not list its 311 rows"]);
    let future = rewritten(&|_| {}, "3");
    neighbors(&write(d, "future.int8", &future), &["future.int8", "version 3", "upgrade vecshift"]);
    // Named as the wrong format, the error says what the file looks like.
    fails_with(&["--vectors", good.to_str().unwrap(), "--vectors-format", "glove", "neighbors", "king"], &["looks like int8"]);
    fails_with(&["--vectors", input.to_str().unwrap(), "--vectors-format", "int8", "neighbors", "king"], &["tiny.w2v.bin", "looks like word2vec"]);
}

#[test]
fn distill_refuses_what_it_cannot_distill_and_writes_nothing() {
    let (dir, model) = tiny_checkpoint();
    let m = model.to_str().unwrap();
    let d = dir.path();
    let corpus = write(d, "corpus.txt", "the bank of the river\nthe bank\n");
    let blank = write(d, "blank.txt", "\n  \n...\n");
    let out = d.join("out.fifu");
    let o = out.to_str().unwrap();
    let distill = |extra: &[&str], needles: &[&str]| {
        fails_with(&[&["distill", "--bert", m, "-o", o][..], extra].concat(), needles);
    };
    distill(&["--corpus", &corpus, "--layer", "7"], &["layer selection 7 does not exist", "0..=2"]);
    distill(&["--corpus", &corpus, "--layer", "top"], &["--layer", "invalid layer \"top\""]);
    distill(&["--corpus", &d.join("missing.txt").to_string_lossy(), "--layer", "1"], &["missing.txt", "cannot open"]);
    distill(&["--corpus", d.to_str().unwrap(), "--layer", "1"], &["is a folder"]);
    distill(&["--corpus", &blank, "--layer", "1"], &["no word vectors"]);
    distill(&["--corpus", &corpus, "--layer", "1", "--min-count", "4"], &["--min-count", "occurs 3 times"]);
    distill(&["--corpus", &corpus, "--layer", "1", "--max-sentences", "0"], &["--max-sentences 0"]);
    fails_with(&["distill", "--bert", m, "--corpus", &corpus, "--layer", "1", "-o", &d.join("no/out.fifu").to_string_lossy()], &["does not exist"]);
    assert!(!out.exists());
    assert_eq!(files_in(d).len(), 3, "only the model and the two corpora: {:?}", files_in(d));
}
