//! `convert --quantize int8`: vecshift's int8 static vectors, against numpy's quantization of
//! the same rows and numpy's exact top-k over the dequantized matrix
//! (tests/fixtures/static/make_int8_reference.py), and read back as another static model.

mod common;

use std::path::{Path, PathBuf};

use ndarray::Array2;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use vecshift::static_vectors::{INT8_FORMAT, quantize_int8};
use vecshift::{Embedder, StaticEngine, VectorFormat};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/static").join(name)
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("int8_reference.json")).unwrap()).unwrap()
}

/// The raw rows of tiny.w2v.txt, as written (the values numpy quantized).
fn raw_rows() -> Array2<f32> {
    let text = std::fs::read_to_string(fixture("tiny.w2v.txt")).unwrap();
    let mut lines = text.lines();
    let dims: usize = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let values: Vec<f32> = lines.flat_map(|line| line.split(' ').skip(1).map(|v| v.parse::<f32>().unwrap()).collect::<Vec<_>>()).collect();
    Array2::from_shape_vec((values.len() / dims, dims), values).unwrap()
}

fn codes_of(reference: &Value) -> Vec<Vec<i8>> {
    reference["codes"].as_array().unwrap().iter().map(|row| row.as_array().unwrap().iter().map(|c| c.as_i64().unwrap() as i8).collect()).collect()
}

/// The codes and scales of an int8 file, read with the safetensors crate.
fn read_file(path: &Path) -> (Vec<Vec<i8>>, Vec<f32>, Vec<String>) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(header.metadata().as_ref().unwrap()["format"], INT8_FORMAT);
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let codes = tensors.tensor("codes").unwrap();
    assert_eq!(codes.dtype(), Dtype::I8);
    let dims = codes.shape()[1];
    let codes = codes.data().chunks(dims).map(|row| row.iter().map(|&b| b as i8).collect()).collect();
    let scales = tensors.tensor("scales").unwrap();
    assert_eq!(scales.dtype(), Dtype::F32);
    let scales = scales.data().chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let words = String::from_utf8(tensors.tensor("words").unwrap().data().to_vec()).unwrap();
    (codes, scales, words.split('\n').map(str::to_owned).collect())
}

#[test]
fn codes_and_scales_equal_numpys() {
    let reference = reference();
    let (codes, scales) = quantize_int8(raw_rows().view());
    assert_eq!(codes.nrows(), reference["rows"].as_u64().unwrap() as usize);
    let want = codes_of(&reference);
    for (row, want) in want.iter().enumerate() {
        assert_eq!(codes.row(row).to_vec(), *want, "codes of row {row}");
    }
    for (row, (got, want)) in scales.iter().zip(reference["scales"].as_array().unwrap()).enumerate() {
        assert_eq!(*got, want.as_f64().unwrap() as f32, "scale of row {row}");
    }
    for (row, want) in reference["dequantized_first_rows"].as_array().unwrap().iter().enumerate() {
        let got: Vec<f32> = codes.row(row).iter().map(|&c| scales[row] * f32::from(c)).collect();
        let want: Vec<f32> = want.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(got, want, "dequantized row {row}");
    }
}

#[test]
fn a_converted_file_holds_numpys_codes_and_its_neighbours_are_numpys_exact_top_k() {
    let reference = reference();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.int8");
    let original = StaticEngine::open(fixture("tiny.w2v.txt")).unwrap();
    original.write_int8(&out).unwrap();
    // The rows the engine holds (unit rows times norms) quantize to numpy's codes of the raw rows.
    let (codes, scales, words) = read_file(&out);
    assert_eq!(codes, codes_of(&reference));
    assert_eq!(words, original.words());
    for (got, want) in scales.iter().zip(reference["scales"].as_array().unwrap()) {
        let want = want.as_f64().unwrap() as f32;
        assert!((got - want).abs() <= want * 1e-6, "scale {got} vs numpy's {want}");
    }
    let int8 = StaticEngine::open(&out).unwrap();
    assert_eq!((int8.format(), int8.name(), int8.dims()), (VectorFormat::Int8, "tiny.int8", 16));
    let k = reference["k"].as_u64().unwrap() as usize;
    for (word, want) in reference["neighbors"].as_object().unwrap() {
        let found = int8.neighbors(word, k).unwrap();
        let want: Vec<(&str, f64)> = want.as_array().unwrap().iter().map(|n| (n[0].as_str().unwrap(), n[1].as_f64().unwrap())).collect();
        assert_eq!(found.iter().map(|n| n.word.as_str()).collect::<Vec<_>>(), want.iter().map(|n| n.0).collect::<Vec<_>>(), "neighbours of {word}");
        for (n, (_, cosine)) in found.iter().zip(&want) {
            assert!((f64::from(n.cosine) - cosine).abs() < 1e-5, "{word} -> {}: {} vs numpy's {cosine}", n.word, n.cosine);
        }
        // The same answers from the batch search (what eval runs) as from one query.
        let query = int8.lookup(word).unwrap().vector;
        let row = int8.word_index(word).unwrap();
        let batch = int8.nearest_batch(&[query], k, &[vec![row]], None);
        assert_eq!(batch[0].iter().map(|(r, _)| int8.word(*r)).collect::<Vec<_>>(), want.iter().map(|n| n.0).collect::<Vec<_>>());
    }
}

#[test]
fn lookups_round_trip_within_half_a_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.safetensors");
    let input = fixture("tiny.w2v.bin");
    let report = common::json(&["--json", "convert", "--quantize", "int8", input.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(report["quantize"], "int8");
    assert!(report["index"].is_null());
    let bytes = std::fs::metadata(&out).unwrap().len();
    assert_eq!(report["bytes"], bytes);
    assert_eq!(report["input_bytes"], std::fs::metadata(&input).unwrap().len());
    let original = StaticEngine::open(&input).unwrap();
    // 16 codes + a 4-byte scale per word instead of 64 bytes of f32.
    assert!(bytes < (original.vocab_len() * (16 + 4) + 4096) as u64 + original.words().iter().map(|w| w.len() as u64 + 1).sum::<u64>());
    let (_, scales, _) = read_file(&out);
    let int8 = StaticEngine::open(&out).unwrap();
    assert_eq!(int8.words(), original.words());
    for (word, scale) in original.words().iter().zip(&scales) {
        let (a, b) = (original.lookup(word).unwrap().vector, int8.lookup(word).unwrap().vector);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= scale / 2.0 * (1.0 + 1e-5), "{word}: {x} vs {y}, step {scale}");
        }
    }
    // Unit rows and norms: the finalfusion form, as eval and a conversion back to f32 read it.
    let row = int8.word_index("king").unwrap();
    let norm = int8.embeddings().norms().unwrap()[row];
    let unit = int8.matrix().row(row).to_vec();
    let vector = int8.lookup("king").unwrap().vector;
    assert!(unit.iter().zip(&vector).all(|(u, v)| (u * norm - v).abs() < 1e-6), "{unit:?} * {norm} vs {vector:?}");
    // Back to finalfusion: the same vectors.
    let back = dir.path().join("back.fifu");
    common::json(&["--json", "convert", out.to_str().unwrap(), back.to_str().unwrap()]);
    let back = StaticEngine::open(&back).unwrap();
    for word in ["king", "Paris", "café"] {
        let (a, b) = (back.lookup(word).unwrap().vector, int8.lookup(word).unwrap().vector);
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6), "{word}");
    }
}

#[test]
fn the_int8_file_is_found_by_content_and_compared_like_any_static_model() {
    let dir = tempfile::tempdir().unwrap();
    // No telling extension: the content says what it is.
    let out = dir.path().join("vectors.bin");
    let input = fixture("tiny.w2v.txt");
    StaticEngine::open(&input).unwrap().write_int8(&out).unwrap();
    assert_eq!(VectorFormat::detect(&out).unwrap(), VectorFormat::Int8);
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    let found = common::json(&["--json", "--vectors", o, "neighbors", "king", "-k", "3"]);
    assert!(found.to_string().contains("nephew"), "{found}");
    // Beside the original in one run, under its label.
    let pairs = dir.path().join("pairs.txt");
    std::fs::write(&pairs, "king queen 9\napple banana 8\nred house 2\nman woman 7\nwalk swim 5\n").unwrap();
    let out = common::vecshift(&["--vectors", i, "--vectors", &format!("small={o}"), "eval", "wordsim", "--static-only", pairs.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("static tiny.w2v.txt") && text.contains("static small"), "{text}");
}

/// `bytes` (an int8 file) rewritten in the version 1 layout: no `order` tensor, version "1".
fn as_version_1(bytes: &[u8]) -> Vec<u8> {
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    metadata.insert("version".to_owned(), "1".to_owned());
    let tensors = SafeTensors::deserialize(bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors.tensors().into_iter().filter(|(name, _)| name != "order").collect();
    assert_eq!(kept.len(), 3);
    safetensors::serialize(kept, Some(metadata)).unwrap()
}

#[test]
fn version_2_files_list_the_rows_by_word_and_version_1_files_still_give_the_same_answers() {
    let reference = reference();
    let dir = tempfile::tempdir().unwrap();
    let (v2, v1) = (dir.path().join("tiny.v2"), dir.path().join("tiny.v1"));
    let original = StaticEngine::open(fixture("tiny.w2v.txt")).unwrap();
    original.write_int8(&v2).unwrap();
    let bytes = std::fs::read(&v2).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(header.metadata().as_ref().unwrap()["version"], "2");
    // `order` lists every row once, by the words' bytes.
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let order = tensors.tensor("order").unwrap();
    assert_eq!(order.dtype(), Dtype::U32);
    let order: Vec<usize> = order.data().chunks(4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize).collect();
    let words = original.words();
    let mut want: Vec<usize> = (0..words.len()).collect();
    want.sort_by_key(|&row| words[row].as_bytes());
    assert_eq!(order, want);
    std::fs::write(&v1, as_version_1(&bytes)).unwrap();
    let (new, old) = (StaticEngine::open(&v2).unwrap(), StaticEngine::open(&v1).unwrap());
    assert_eq!(old.words(), words);
    for (row, word) in words.iter().enumerate() {
        assert_eq!((new.word_index(word), old.word_index(word)), (Some(row), Some(row)), "{word}");
        assert_eq!(new.lookup(word).unwrap().vector, old.lookup(word).unwrap().vector, "{word}");
    }
    for missing in ["", "kin", "kings", "zzzz", "\u{10ffff}"] {
        assert_eq!((new.word_index(missing), old.word_index(missing)), (None, None), "{missing:?}");
    }
    let k = reference["k"].as_u64().unwrap() as usize;
    for (word, want) in reference["neighbors"].as_object().unwrap() {
        let want: Vec<&str> = want.as_array().unwrap().iter().map(|n| n[0].as_str().unwrap()).collect();
        for engine in [&new, &old] {
            let found = engine.neighbors(word, k).unwrap();
            assert_eq!(found.iter().map(|n| n.word.as_str()).collect::<Vec<_>>(), want, "neighbours of {word} in {}", engine.name());
        }
    }
}
