//! `convert --quantize pq:M`: finalfusion's product-quantized storage, read back as another
//! static model; its vectors stay close to the original's, as close as a scikit-learn PQ of the
//! same rows (tests/fixtures/static/make_pq_reference.py) less a margin.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use vecshift::{StaticEngine, VectorFormat};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/static").join(name)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn product_quantized_vectors_stay_as_close_as_scikit_learns() {
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(fixture("pq_reference.json")).unwrap()).unwrap();
    let original = StaticEngine::open(fixture("tiny.w2v.bin")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for case in reference["pq"].as_array().unwrap() {
        let m = case["m"].as_u64().unwrap() as usize;
        let out = dir.path().join(format!("pq{m}.fifu"));
        original.write_finalfusion_pq(&out, m).unwrap();
        let quantized = StaticEngine::open(&out).unwrap();
        assert_eq!(quantized.format(), VectorFormat::Finalfusion);
        assert_eq!(quantized.words(), original.words(), "pq:{m}: the same vocabulary");
        let cosines: Vec<f64> = original
            .words()
            .iter()
            .map(|w| cosine(&quantized.lookup(w).unwrap().vector, &original.lookup(w).unwrap().vector))
            .collect();
        let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
        let bound = case["bound"].as_f64().unwrap();
        assert!(mean >= bound, "pq:{m}: mean cosine to the original {mean} below scikit-learn's bound {bound}");
        // Neighbour searches work on the reconstructed rows, and the query word is excluded.
        let found = quantized.neighbors("king", 10).unwrap();
        assert!(found.len() == 10 && found.iter().all(|n| n.word != "king" && n.cosine <= 1.0 + 1e-5));
        // M bytes per row instead of 4 * dims.
        let f32_file = dir.path().join("f32.fifu");
        original.write_finalfusion(&f32_file).unwrap();
        assert!(std::fs::metadata(&out).unwrap().len() < std::fs::metadata(&f32_file).unwrap().len());
    }
}

#[test]
fn convert_quantizes_and_writes_no_index() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("tiny.w2v.txt");
    let [a, b] = ["a.fifu", "b.fifu"].map(|n| dir.path().join(n));
    for out in [&a, &b] {
        let report = common::json(&["--json", "convert", "--quantize", "pq:4", input.to_str().unwrap(), out.to_str().unwrap()]);
        assert_eq!(report["quantize"], "pq:4");
        assert!(report["index"].is_null());
    }
    // Both load with the same vocabulary (k-means runs in parallel, so the codes may differ).
    assert_eq!(StaticEngine::open(&a).unwrap().words(), StaticEngine::open(&b).unwrap().words());
    assert!(!vecshift::static_vectors::index_path(&a).exists());
}
