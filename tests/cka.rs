//! Linear CKA and neighbour overlap against the numpy reference of
//! tests/fixtures/cka/make_cka_reference.py (Kornblith et al.'s Gram-matrix code, a different
//! route from vecshift's feature-space computation).

use serde::Deserialize;
use vecshift::LayerVectors;
use vecshift::analysis::cka::{cka_matrix, linear_cka, linear_cka_biased, neighbour_overlap};

#[derive(Deserialize)]
struct Reference {
    a: Vec<Vec<Vec<f32>>>,
    b: Vec<Vec<Vec<f32>>>,
    cka_debiased: Vec<Vec<f64>>,
    cka_biased: Vec<Vec<f64>>,
    k: usize,
    neighbour_overlap: Vec<Vec<f64>>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cka/cka_reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Per-occurrence layer vectors, as engines return them, from per-layer matrices.
fn by_occurrence(layers: &[Vec<Vec<f32>>]) -> Vec<LayerVectors> {
    (0..layers[0].len()).map(|i| LayerVectors::new(layers.iter().map(|l| l[i].clone()).collect())).collect()
}

#[test]
fn cka_matches_the_gram_matrix_reference() {
    let r = reference();
    for (i, x) in r.a.iter().enumerate() {
        for (j, y) in r.b.iter().enumerate() {
            let debiased = linear_cka(x, y).unwrap();
            let biased = linear_cka_biased(x, y).unwrap();
            assert!((debiased - r.cka_debiased[i][j]).abs() < 1e-6, "debiased a{i} b{j}: {debiased} vs {}", r.cka_debiased[i][j]);
            assert!((biased - r.cka_biased[i][j]).abs() < 1e-6, "biased a{i} b{j}: {biased} vs {}", r.cka_biased[i][j]);
        }
    }
}

#[test]
fn cka_matrix_compares_every_layer_pair() {
    let r = reference();
    let matrix = cka_matrix(&by_occurrence(&r.a), &by_occurrence(&r.b));
    assert_eq!(matrix.len(), r.a.len());
    for (row, expected) in matrix.iter().zip(&r.cka_debiased) {
        assert_eq!(row.len(), expected.len());
        for (got, want) in row.iter().zip(expected) {
            assert!((got.unwrap() - want).abs() < 1e-6, "{got:?} vs {want}");
        }
    }
}

#[test]
fn neighbour_overlap_matches_numpy() {
    let r = reference();
    for (i, x) in r.a.iter().enumerate() {
        for (j, y) in r.b.iter().enumerate() {
            let got = neighbour_overlap(x, y, r.k).unwrap();
            assert!((got - r.neighbour_overlap[i][j]).abs() < 1e-12, "a{i} b{j}: {got} vs {}", r.neighbour_overlap[i][j]);
        }
    }
}
