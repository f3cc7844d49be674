//! `vecshift compare --postprocess` and `vecshift report --postprocess` against transformers on
//! the embedded MiniLM and numpy / scikit-learn (tests/fixtures/senses/postprocess_reference.json,
//! written by make_postprocess_reference.py beside it).

mod common;

use std::path::Path;

use common::json;
use serde_json::Value;

fn path(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative).to_string_lossy().into_owned()
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(path("tests/fixtures/senses/postprocess_reference.json")).unwrap()).unwrap()
}

/// candle's and torch's vectors differ by a few 1e-6; the cosines of corrected vectors by less
/// than this.
const TOLERANCE: f64 = 2e-4;

fn close(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_f64().unwrap_or_else(|| panic!("{what}: {got}")), want.as_f64().unwrap());
    assert!((g - w).abs() <= TOLERANCE, "{what}: {g} vs {w}");
}

#[test]
fn compare_corrects_the_contextual_vectors_as_numpy_does() {
    let bank = path("data/sentences/bank.tsv");
    let corpus = path("tests/fixtures/senses/fit_corpus.txt");
    let cases = reference()["compare"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 6);
    for case in &cases {
        let method = case["postprocess"].as_str().unwrap();
        let mut args = vec!["compare", "--sentences", &bank, "--json", "--postprocess", method];
        let on_corpus = case["fit"] == "fit_corpus.txt";
        if on_corpus {
            args.extend(["--fit", corpus.as_str()]);
        }
        let got = json(&args);
        assert_eq!(got["postprocess"], method);
        if on_corpus {
            let fit = got["fit"].as_str().unwrap();
            assert!(fit.ends_with("fit_corpus.txt (30 occurrences)"), "{fit}");
        } else {
            assert!(got["fit"].is_null());
        }
        for (layer, want) in case["mean_similarity"].as_array().unwrap().iter().enumerate() {
            let what = format!("{method} fitted on {} layer {layer}", case["fit"]);
            close(&got["contextual"]["layers"][layer]["mean_similarity"], want, &what);
        }
        // The static side is left as it is: one vector for every sentence.
        assert_eq!(got["static"]["mean_similarity"], 1.0);
    }
    // Without --postprocess nothing changes, and the JSON says so.
    let raw = json(&["compare", "--sentences", &bank, "--json"]);
    assert_eq!(raw["postprocess"], "none");
    assert!(raw["fit"].is_null());
}

#[test]
fn report_measures_each_correction_as_numpy_does() {
    let input = path("tests/fixtures/senses/postprocess_report.tsv");
    let got = json(&["report", &input, "--json", "-q", "--postprocess", "none,center,all-but-the-top:2,standardize"]);
    let want = reference()["report"].as_array().unwrap().clone();
    let sections = got["postprocess"].as_array().unwrap();
    assert_eq!(sections.len(), want.len());
    for (g, w) in sections.iter().zip(&want) {
        let method = w["method"].as_str().unwrap();
        assert_eq!(g["method"], method);
        assert_eq!(g["fit"], "sampled occurrences (27)");
        for (gl, wl) in g["layers"].as_array().unwrap().iter().zip(w["layers"].as_array().unwrap()) {
            for key in ["self_similarity", "anisotropy_baseline", "adjusted_self_similarity"] {
                close(&gl[key], &wl[key], &format!("{method} layer {} {key}", wl["layer"]));
            }
        }
        for (gw, ww) in g["words"].as_array().unwrap().iter().zip(w["words"].as_array().unwrap()) {
            assert_eq!(gw["word"], ww["word"]);
            for (layer, (a, b)) in gw["self_similarity"].as_array().unwrap().iter().zip(ww["self_similarity"].as_array().unwrap()).enumerate() {
                close(a, b, &format!("{method} {} layer {layer}", ww["word"]));
            }
        }
    }
    // Every occurrence is in the sample here, so "none" equals the raw measures of the report.
    for (raw, summary) in sections[0]["layers"].as_array().unwrap().iter().zip(got["summary"]["layers"].as_array().unwrap()) {
        for key in ["self_similarity", "anisotropy_baseline", "adjusted_self_similarity"] {
            let (a, b) = (raw[key].as_f64().unwrap(), summary[key].as_f64().unwrap());
            assert!((a - b).abs() < 1e-9, "{key}: {a} vs {b}");
        }
    }
    // A report without --postprocess has no such section; Markdown and HTML show the table.
    assert!(json(&["report", &input, "--json", "-q"]).get("postprocess").is_none());
    let md = common::vecshift(&["report", &input, "-q", "--postprocess", "none,center", "--format", "md"]);
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.contains("## Anisotropy corrections") && md.contains("| layer | none | center |"), "{md}");
    let center = &sections[1]["layers"][6];
    let cell = format!("{:.3} ({:.3})", center["self_similarity"].as_f64().unwrap(), center["adjusted_self_similarity"].as_f64().unwrap());
    assert!(md.lines().any(|l| l.starts_with("| 6 |") && l.ends_with(&format!("| {cell} |"))), "{cell} in {md}");
    let html = common::vecshift(&["report", &input, "-q", "--postprocess", "none,center", "--format", "html"]);
    let html = String::from_utf8(html.stdout).unwrap();
    assert!(html.contains("<h2>Anisotropy corrections</h2>") && html.contains(&format!("<td>{cell}</td>")));
}
