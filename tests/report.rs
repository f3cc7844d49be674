//! `vecshift report` against an independent numpy/transformers reference, and its formats,
//! streaming input, bad rows and atomic output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use vecshift::{BertEncoder, Embedder, Occurrence, Pooling};

const FIXTURE: &str = "tests/fixtures/report/fixture.tsv";
const TOLERANCE: f64 = 1e-5;

fn vecshift(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vecshift"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // The program may stop reading early (on an error), so a broken pipe here is fine.
    let _ = input.write_all(stdin.unwrap_or("").as_bytes());
    drop(input);
    child.wait_with_output().unwrap()
}

fn report_json(args: &[&str], stdin: Option<&str>) -> Value {
    let out = vecshift(args, stdin);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fails_with(args: &[&str], stdin: Option<&str>, needles: &[&str]) {
    let out = vecshift(args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout on error");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{args:?}: one error line, got: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    for needle in needles {
        assert!(errors[0].contains(needle), "{args:?}: {needle:?} missing from: {stderr}");
    }
}

const MEASURES: [&str; 8] = [
    "self_similarity",
    "anisotropy_baseline",
    "adjusted_self_similarity",
    "intra_sentence_similarity",
    "first_pc_variance",
    "within_sense",
    "between_sense",
    "nn_sense_accuracy",
];

/// Every measure of `got` equals `want` within the tolerance; `null` only where `want` is `null`.
fn assert_measures(what: &str, got: &Value, want: &Value) {
    assert_eq!(got["layer"], want["layer"], "{what}");
    for key in MEASURES {
        match (got.get(key), want.get(key)) {
            (None, None) => {}
            (Some(g), Some(w)) if w.is_null() => assert!(g.is_null(), "{what} {key}: got {g}, reference null"),
            (Some(g), Some(w)) => {
                let (g, w) = (g.as_f64().unwrap_or(f64::NAN), w.as_f64().unwrap());
                assert!((g - w).abs() < TOLERANCE, "{what} {key}: got {g}, reference {w}");
            }
            (g, w) => panic!("{what} {key}: got {g:?}, reference {w:?}"),
        }
    }
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string("tests/fixtures/report/reference.json").unwrap()).unwrap()
}

#[test]
fn measures_match_the_numpy_reference() {
    let reference = reference();
    let got = report_json(&["report", FIXTURE, "--format", "json", "--quiet"], None);
    let skipped: Vec<&Value> = got["skipped"].as_array().unwrap().iter().map(|b| &b["line"]).collect();
    let want_skipped: Vec<&Value> = reference["skipped_lines"].as_array().unwrap().iter().collect();
    assert_eq!(skipped, want_skipped);
    assert!(got["skipped"].as_array().unwrap().iter().all(|b| !b["reason"].as_str().unwrap().is_empty()));

    let (words, want_words) = (got["words"].as_array().unwrap(), reference["words"].as_array().unwrap());
    assert_eq!(words.len(), want_words.len());
    for (word, want) in words.iter().zip(want_words) {
        let name = want["word"].as_str().unwrap();
        assert_eq!(word["word"], want["word"]);
        assert_eq!(word["occurrences"], want["occurrences"], "{name}");
        assert_eq!(word["sampled"], want["occurrences"], "{name}: all occurrences fit the sample");
        assert_eq!(word.get("senses").cloned().unwrap_or(serde_json::json!({})), want["senses"], "{name}");
        let (layers, want_layers) = (word["layers"].as_array().unwrap(), want["layers"].as_array().unwrap());
        assert_eq!(layers.len(), 7, "{name}: MiniLM has 7 hidden states");
        for (layer, want_layer) in layers.iter().zip(want_layers) {
            assert_measures(&format!("{name} layer {}", want_layer["layer"]), layer, want_layer);
        }
        if want["static"].is_null() {
            assert!(word["static"].is_null(), "{name} has no GloVe vector");
        } else {
            assert_measures(&format!("{name} static"), &word["static"], &want["static"]);
        }
    }
    for (layer, want) in got["summary"]["layers"].as_array().unwrap().iter().zip(reference["summary"]["layers"].as_array().unwrap()) {
        assert_measures(&format!("summary layer {}", want["layer"]), layer, want);
    }
    assert_measures("summary static", &got["summary"]["static"], &reference["summary"]["static"]);
    assert_eq!(got["summary"]["words"], 4);
    assert_eq!(got["occurrences"], 19);
}

#[test]
fn the_sample_cap_bounds_only_the_sampled_measures() {
    let full = report_json(&["report", FIXTURE, "--format", "json", "-q"], None);
    let capped = report_json(&["report", FIXTURE, "--format", "json", "-q", "--max-per-word", "2"], None);
    assert_eq!(capped["max_per_word"], 2);
    for (word, whole) in capped["words"].as_array().unwrap().iter().zip(full["words"].as_array().unwrap()) {
        assert_eq!(word["occurrences"], whole["occurrences"]);
        assert_eq!(word["sampled"], 2, "{}", word["word"]);
        for (layer, whole_layer) in word["layers"].as_array().unwrap().iter().zip(whole["layers"].as_array().unwrap()) {
            for key in ["self_similarity", "anisotropy_baseline", "intra_sentence_similarity"] {
                assert_eq!(layer[key], whole_layer[key], "{key} uses every occurrence");
            }
            // Two points: the first principal component is the line through them. At layer 0
            // (token plus position embeddings) two occurrences at the same position coincide.
            match layer["first_pc_variance"].as_f64() {
                Some(share) => assert!((share - 1.0).abs() < 1e-6, "{share}"),
                None => assert_eq!(layer["layer"], 0, "{}", word["word"]),
            }
        }
    }
    let out = vecshift(&["report", FIXTURE, "-q", "--max-per-word", "1"], None);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--max-per-word"));
}

#[test]
fn all_words_of_a_sentence_come_from_one_pass_equal_to_embed_batch() {
    let bert = BertEncoder::load_default().unwrap();
    let sentence = "After the storm, the river rose right up to the edge of the bank.";
    let target = Occurrence::find("bank", sentence).unwrap();
    let words: Vec<_> = ["river", "After", "the", "edge", "bank"]
        .iter()
        .map(|w| {
            let start = sentence.find(w).unwrap();
            start..start + w.len()
        })
        .collect();
    let tokenized = bert.tokenize_with_words(&target, &words).unwrap();
    let spans: Vec<_> = tokenized.words.iter().map(|(span, _)| span.clone()).collect();
    assert_eq!(spans, words[..4], "the word overlapping the target is left out");
    let all = bert.embed_all_words(std::slice::from_ref(&tokenized), Pooling::Mean).unwrap().pop().unwrap();

    let alone: Vec<Occurrence> = std::iter::once(target.clone())
        .chain(spans.iter().map(|s| Occurrence::locate("", sentence, &vecshift::Locator::Span(s.clone())).unwrap()))
        .collect();
    let expected: Vec<_> = bert.embed_batch(&alone, Pooling::Mean).unwrap().into_iter().map(|r| r.unwrap().vectors).collect();
    let got = std::iter::once(&all.target.vectors).chain(all.words.iter().map(|(_, v)| v));
    for (occurrence, (got, want)) in alone.iter().zip(got.zip(&expected)) {
        for (layer, (g, w)) in got.layers().iter().zip(want.layers()).enumerate() {
            let diff = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(diff < 1e-4, "{:?} layer {layer}: max difference {diff}", occurrence.word());
        }
    }
}

#[test]
fn words_in_a_long_sentence_map_into_the_encoded_window() {
    let bert = BertEncoder::load_default().unwrap();
    let filler: String = (0..700).map(|i| format!("w{i} ")).collect();
    let sentence = format!("{filler}the bank is here {filler}");
    let target = Occurrence::find("bank", &sentence).unwrap();
    let words: Vec<_> = {
        let mut start = 0;
        sentence
            .split(' ')
            .map(|w| {
                let span = start..start + w.len();
                start += w.len() + 1;
                span
            })
            .filter(|s| !s.is_empty())
            .collect()
    };
    let tokenized = bert.tokenize_with_words(&target, &words).unwrap();
    assert!(tokenized.target.windowed_from.is_some());
    assert!(tokenized.words.len() > 100 && tokenized.words.len() < words.len(), "only the window's words");
    let tokenizer = bert.tokenizer();
    for (span, pieces) in &tokenized.words {
        let alone = tokenizer.encode(&sentence[span.clone()], false).unwrap();
        assert_eq!(&tokenized.target.ids[pieces.clone()], alone.get_ids(), "{:?}", &sentence[span.clone()]);
    }
}

#[test]
fn every_output_format() {
    let args = |format: &'static str| vec!["report", FIXTURE, "-q", "--format", format];
    let csv_out = vecshift(&args("csv"), None);
    assert!(csv_out.status.success());
    let mut reader = csv::Reader::from_reader(csv_out.stdout.as_slice());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "word");
    assert!(MEASURES.iter().all(|m| headers.iter().any(|h| h == *m)), "{headers:?}");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // 4 words and the summary, 7 layers each, plus a static row except for the word GloVe lacks.
    assert_eq!(rows.len(), 5 * 7 + 4);
    assert_eq!(rows.iter().filter(|r| r[0].is_empty()).count(), 8, "summary rows have an empty word");

    let jsonl = vecshift(&args("jsonl"), None);
    let lines: Vec<Value> = String::from_utf8(jsonl.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["word"], "bank");
    assert!(lines[4]["summary"]["layers"].is_array() && lines[4]["skipped"].is_array());

    let md = String::from_utf8(vecshift(&args("md"), None).stdout).unwrap();
    assert!(md.contains("## Summary") && md.contains("## bat: 4 occurrences (animal 2, sports 2)"), "{md}");
    assert!(md.contains("| static |") && md.contains("- line 10: empty line"));

    let html = String::from_utf8(vecshift(&args("html"), None).stdout).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    // Summary, word heatmap, word curves, senses; per word layer 0 and the last layer. The
    // static heatmaps would be all 1.00: a note stands for each (GloVe lacks one word).
    // And the CKA heatmap of the two engines.
    assert_eq!(html.matches("<svg").count(), 4 + 4 * 2 + 1);
    assert_eq!(html.matches("static: every pairwise cosine is 1.00").count(), 3);
    assert!(!html.contains("<script") && !html.contains("src=\"http") && !html.contains("<link"), "self-contained");
    assert!(html.contains("Sense separation"));
}

#[test]
fn clusters_and_sentences_in_markdown_csv_and_html() {
    let report = report_json(&["report", FIXTURE, "-q", "--json"], None);
    let words = report["words"].as_array().unwrap();
    let word = |name: &str| words.iter().find(|w| w["word"] == name).unwrap();

    // CSV: k, silhouette and ARI of every word, engine and layer, as in the JSON.
    let csv_out = vecshift(&["report", FIXTURE, "-q", "--format", "csv"], None);
    let mut reader = csv::Reader::from_reader(csv_out.stdout.as_slice());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name} in {headers:?}"));
    let (k, silhouette, ari) = (column("clusters_k"), column("clusters_silhouette"), column("clusters_ari"));
    let mut checked = 0;
    for row in reader.records().map(Result::unwrap) {
        if row[0].is_empty() {
            assert!(row[k].is_empty() && row[silhouette].is_empty(), "the summary has no clusters: {row:?}");
            continue;
        }
        let w = word(&row[0]);
        let m = if &row[1] == "static" { &w["static"] } else { &w["layers"][row[2].parse::<usize>().unwrap()] };
        let c = &m["clusters"];
        assert_eq!(row[k].parse::<u64>().unwrap(), c["k"].as_u64().unwrap(), "{row:?}");
        for (cell, value) in [(&row[silhouette], &c["silhouette"]), (&row[ari], &c["ari"])] {
            match value.as_f64() {
                Some(v) => assert!((cell.parse::<f64>().unwrap() - v).abs() < 1e-12, "{row:?}"),
                None => assert!(cell.is_empty(), "{row:?}"),
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 4 * 7 + 3, "every word's layers and static rows (GloVe lacks one word)");

    // Markdown: the columns, each layer's values, and the sentences numbered as the heatmap rows.
    let md = String::from_utf8(vecshift(&["report", FIXTURE, "-q", "--format", "md"], None).stdout).unwrap();
    let section = |heading: &str| md.split("\n## ").find(|s| s.starts_with(heading)).unwrap_or_else(|| panic!("{heading} in {md}")).to_owned();
    let bank = section("bank:");
    assert!(bank.contains("| clusters k | silhouette | ARI |"), "{bank}");
    for layer in 0..7 {
        let c = &word("bank")["layers"][layer]["clusters"];
        let cells = format!("| {} | {:.3} | {:.3} |", c["k"], c["silhouette"].as_f64().unwrap(), c["ari"].as_f64().unwrap());
        assert!(bank.lines().any(|l| l.starts_with(&format!("| {layer} |")) && l.ends_with(&cells)), "{cells} in {bank}");
    }
    // Grouped by sense (finance before river), each in input order.
    assert!(bank.contains(&format!("- S1: {FIXTURE} line 2 [finance]: I need to stop at the bank before it closes to deposit this check.")), "{bank}");
    assert!(bank.contains(&format!("- S5: {FIXTURE} line 6 [river]: We spread a blanket on the grassy bank and watched the ducks drift by.")));
    let unlabelled = section("flimbertok:");
    assert!(unlabelled.contains("| clusters k | silhouette |") && !unlabelled.contains("ARI"), "no labels, no ARI: {unlabelled}");
    assert!(unlabelled.contains(&format!("- S2: {FIXTURE} line 22: Nobody knew where the flimbertok came from, not even the zorbliquat.")));

    // HTML: the same columns; each heatmap row label carries its sentence as a tooltip, and the
    // sentences are listed.
    let html = String::from_utf8(vecshift(&["report", FIXTURE, "-q", "--format", "html"], None).stdout).unwrap();
    assert!(html.contains("<th>clusters k</th><th>silhouette</th><th>ARI</th>"));
    let s1 = format!("{FIXTURE} line 2 [finance]: I need to stop at the bank before it closes to deposit this check.");
    assert_eq!(html.matches(&format!("<title>{s1}</title>S1 finance\n</text>")).count(), 2, "layer 0 and the last layer");
    // bank 8, bat 4 (one row lacks the whole word), plant 4, flimbertok 3 occurrences.
    assert_eq!(html.matches("</title>S").count(), 2 * (8 + 4 + 4 + 3), "every row of every drawn heatmap");
    assert!(html.contains(&format!("<li value=\"1\">S1: {s1}</li>")));
    // The mean over words is drawn (and shown in the legend) thicker than a word's curve and in
    // its own solid style, not dashed like a static line.
    assert!(html.contains("stroke=\"#000000\" stroke-width=\"4\""));
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn output_file_replaced_only_when_complete() {
    let dir = temp_dir();
    let target = dir.path().join("report.html");
    std::fs::write(&target, "old report").unwrap();
    fails_with(&["report", "tests/fixtures/report/missing.tsv", "-o", target.to_str().unwrap()], None, &["missing.tsv"]);
    fails_with(&["report", FIXTURE, "--strict", "-o", target.to_str().unwrap()], None, &["line 10", "empty line", "--strict"]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old report");

    let out = vecshift(&["report", FIXTURE, "-o", target.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped 4 bad line(s)") && stderr.contains("line 15:"), "{stderr}");
    assert!(std::fs::read_to_string(&target).unwrap().contains("<svg"), "format from the extension");
    assert_eq!(files_in(dir.path()), std::slice::from_ref(&target), "no temporary file left");

    fails_with(&["report", FIXTURE, "-o", dir.path().join("nope/r.json").to_str().unwrap()], None, &["nope", "does not exist"]);
}

#[test]
fn stdin_text_jsonl_and_wic_inputs() {
    let text = "The bank by the river.\nA bat and a bank.\nNothing to see.\n";
    let v = report_json(&["report", "--json", "-w", "bank,bat", "-q"], Some(text));
    let words: Vec<(&str, u64)> =
        v["words"].as_array().unwrap().iter().map(|w| (w["word"].as_str().unwrap(), w["occurrences"].as_u64().unwrap())).collect();
    assert_eq!(words, [("bank", 2), ("bat", 1)]);
    assert_eq!(v["input"]["format"], "text");
    assert_eq!(v["skipped"][0]["line"], 3);

    let jsonl = concat!(
        r#"{"word": "bank", "sentence": "The bank and the bank.", "span": [17, 21], "sense": "a"}"#, "\n",
        r#"{"word": "bank", "sentence": "The river bank.", "sense": "b"}"#, "\n",
        "{broken\n",
    );
    let v = report_json(&["report", "-", "--input-format", "jsonl", "--json", "-q"], Some(jsonl));
    assert_eq!(v["words"][0]["occurrences"], 2);
    assert_eq!(v["words"][0]["senses"], serde_json::json!({"a": 1, "b": 1}));
    assert!(v["skipped"][0]["reason"].as_str().unwrap().contains("JSON"));

    // A span on a space gives BERT no WordPieces: found only when the chunk is embedded, yet
    // --strict still stops at it rather than at the later broken line.
    let no_pieces = concat!(r#"{"word": "x", "sentence": "The bank.", "span": [3, 4]}"#, "\n", "{broken\n");
    let v = report_json(&["report", "-", "--input-format", "jsonl", "--json", "-q"], Some(&format!("{jsonl}{no_pieces}")));
    let reasons: Vec<(u64, &str)> =
        v["skipped"].as_array().unwrap().iter().map(|b| (b["line"].as_u64().unwrap(), b["reason"].as_str().unwrap())).collect();
    assert_eq!(reasons.iter().map(|r| r.0).collect::<Vec<_>>(), [3, 4, 5]);
    assert!(reasons[1].1.contains("WordPieces"), "{reasons:?}");
    fails_with(&["report", "-", "--input-format", "jsonl", "--strict"], Some(no_pieces), &["line 1:", "WordPieces"]);

    let dir = temp_dir();
    let wic = dir.path().join("tiny.data.txt");
    std::fs::write(&wic, "board\tN\t2-2\tRoom and board .\tHe nailed boards across the windows .\nbank\tN\t1-4\tThe bank .\tWe sat by the bank .\n").unwrap();
    let v = report_json(&["report", wic.to_str().unwrap(), "--format", "json", "-q"], None);
    assert_eq!(v["input"]["format"], "wic");
    assert_eq!(v["occurrences"], 4);
    assert!(v["words"].as_array().unwrap().iter().all(|w| w["occurrences"] == 2));
}

#[test]
fn bad_input_is_one_clear_error() {
    fails_with(&["report", "Cargo.toml"], None, &["Cargo.toml", "--input-format"]);
    fails_with(&["report", "-", "--input-format", "text"], Some("a b c\n"), &["--word"]);
    fails_with(&["report", "-", "--input-format", "tsv"], Some("bank\tno target\n\n"), &["no usable lines", "line 1"]);
    fails_with(&["report", "-", "--input-format", "xml"], Some(""), &["xml"]);
    fails_with(&["report", FIXTURE, "--format", "pdf"], None, &["pdf"]);
    // A report keys its engines by name: two alike are refused before any work.
    fails_with(
        &["report", FIXTURE, "--bert", "x=tests/fixtures/tiny_bert/f32_noprefix", "--vectors", "x=data/glove-6B-50d/glove.6B.50d.100k.fifu"],
        None,
        &["two engines are named \"x\"", "NAME=SOURCE"],
    );
}

/// The engines of the model-to-model reference (tests/fixtures/report/make_models_reference.py).
const TWO_TINY_BERTS: [&str; 4] =
    ["--bert", "tiny=tests/fixtures/tiny_bert/f32_noprefix", "--bert", "tinybf16=tests/fixtures/tiny_bert/bf16_prefix"];

#[test]
fn model_to_model_measures_match_numpy() {
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/report/models_reference.json").unwrap()).unwrap();
    let mut args = vec!["report", FIXTURE, "--json", "-q"];
    args.extend(TWO_TINY_BERTS);
    let got = report_json(&args, None);

    // Every engine, in order (contextual first), with its own measures per word; the top-level
    // keys stay those of the first contextual and the first static engine.
    let engines = got["engines"].as_array().unwrap();
    let names: Vec<&str> = engines.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["tiny", "tinybf16", "glove.6B.50d.100k.fifu"]);
    assert_eq!(engines.iter().map(|e| e["kind"].as_str().unwrap()).collect::<Vec<_>>(), ["contextual", "contextual", "static"]);
    assert_eq!(engines[0]["architecture"], "bert");
    assert_eq!(got["models"]["bert"]["name"], "tiny");
    for (i, word) in got["words"].as_array().unwrap().iter().enumerate() {
        assert_eq!(engines[0]["words"][i]["word"], word["word"]);
        assert_eq!(engines[0]["words"][i]["layers"], word["layers"]);
        assert_eq!(engines[0]["words"][i]["layers"].as_array().unwrap().len(), 3, "the tiny BERT has 3 hidden states");
        match word["static"].is_null() {
            true => assert_eq!(engines[2]["words"][i]["layers"], serde_json::json!([])),
            false => assert_eq!(engines[2]["words"][i]["layers"][0], word["static"]),
        }
    }
    assert_eq!(engines[0]["summary"], got["summary"]["layers"]);
    assert_ne!(engines[0]["words"][0]["layers"], engines[1]["words"][0]["layers"], "f32 and bf16 weights differ");

    let close = |what: &str, g: &Value, w: &Value| {
        let (g, w) = (g.as_f64().unwrap_or(f64::NAN), w.as_f64().unwrap());
        assert!((g - w).abs() < TOLERANCE, "{what}: got {g}, numpy {w}");
    };
    let want_cka = reference["cka"].as_array().unwrap();
    assert_eq!(got["cka"].as_array().unwrap().len(), want_cka.len(), "one matrix per pair of engines");
    for (g, w) in got["cka"].as_array().unwrap().iter().zip(want_cka) {
        let pair = format!("{} vs {}", w["a"], w["b"]);
        assert_eq!((&g["a"], &g["b"], &g["n"]), (&w["a"], &w["b"], &w["n"]), "{pair}");
        let (rows, want_rows) = (g["matrix"].as_array().unwrap(), w["matrix"].as_array().unwrap());
        assert_eq!(rows.len(), want_rows.len(), "{pair}: a row per layer of a");
        for (i, (row, want_row)) in rows.iter().zip(want_rows).enumerate() {
            assert_eq!(row.as_array().unwrap().len(), want_row.as_array().unwrap().len(), "{pair}: a column per layer of b");
            for (j, (v, want)) in row.as_array().unwrap().iter().zip(want_row.as_array().unwrap()).enumerate() {
                close(&format!("{pair} cka[{i}][{j}]"), v, want);
            }
        }
    }
    let want_overlap = reference["neighbour_overlap"].as_array().unwrap();
    assert_eq!(got["neighbour_overlap"].as_array().unwrap().len(), want_overlap.len());
    for (g, w) in got["neighbour_overlap"].as_array().unwrap().iter().zip(want_overlap) {
        let what = format!("{} L{} vs {} L{}", w["a"], w["layer_a"], w["b"], w["layer_b"]);
        for key in ["a", "b", "layer_a", "layer_b", "k", "n"] {
            assert_eq!(g[key], w[key], "{what} {key}");
        }
        close(&format!("{what} overlap"), &g["overlap"], &w["overlap"]);
    }

    // The other formats: a CKA table per pair in Markdown, a heatmap per pair in HTML, and the
    // second BERT's rows in the per-word tables and the CSV.
    let output = |format: &str| {
        let mut args = vec!["report", FIXTURE, "-q", "--format", format];
        args.extend(TWO_TINY_BERTS);
        String::from_utf8(vecshift(&args, None).stdout).unwrap()
    };
    let md = output("md");
    assert!(md.contains("### Linear CKA: tiny (rows) vs tinybf16 (columns), 19 occurrences"), "{md}");
    assert!(md.contains("### Linear CKA: tiny (rows) vs glove.6B.50d.100k.fifu (columns), 16 occurrences"), "{md}");
    assert!(md.contains("| tinybf16 2 |") && md.contains("| 2 | 0.748 | 0.856 | 1.000 |"), "{md}");
    let html = output("html");
    assert_eq!(html.matches("CKA: ").count(), 3, "one heatmap per pair of engines");
    let csv = output("csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let column = reader.headers().unwrap().iter().position(|h| h == "model").expect("a model column");
    let models: Vec<String> = reader.records().map(|r| r.unwrap()[column].to_owned()).collect();
    // 4 words and the summary; 3 layers per BERT, one static row except for the word GloVe lacks.
    assert_eq!(models.iter().filter(|m| *m == "tinybf16").count(), 5 * 3);
    assert_eq!(models.len(), 5 * 3 * 2 + 4);
}

#[test]
fn each_word_lists_the_pieces_its_occurrences_were_pooled_from() {
    // The pieces are counted over every occurrence, as `embed` pools them one by one.
    let got = report_json(&["report", FIXTURE, "--format", "json", "--quiet"], None);
    let bert = BertEncoder::load_default().unwrap();
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let skipped: Vec<u64> = got["skipped"].as_array().unwrap().iter().map(|b| b["line"].as_u64().unwrap()).collect();
    for word in got["words"].as_array().unwrap() {
        let name = word["word"].as_str().unwrap();
        let mut want: Vec<(Vec<String>, usize)> = Vec::new();
        for (line, row) in text.lines().enumerate().skip(1) {
            let fields: Vec<&str> = row.split('\t').collect();
            if fields.first() != Some(&name) || skipped.contains(&(line as u64 + 1)) {
                continue;
            }
            let occurrence = Occurrence::find(name, fields[1]).unwrap();
            let pieces = bert.embed_batch(&[occurrence], Pooling::Mean).unwrap().pop().unwrap().unwrap().pieces;
            match want.iter_mut().find(|(p, _)| *p == pieces) {
                Some((_, n)) => *n += 1,
                None => want.push((pieces, 1)),
            }
        }
        let listed: Vec<(Vec<String>, usize)> = word["pieces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (serde_json::from_value(p["pieces"].clone()).unwrap(), p["count"].as_u64().unwrap() as usize))
            .collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        assert_eq!(listed, want, "{name}");
        assert_eq!(listed.iter().map(|(_, n)| n).sum::<usize>(), word["occurrences"].as_u64().unwrap() as usize, "{name}");
    }
    let made_up = got["words"].as_array().unwrap().iter().find(|w| w["word"] == "flimbertok").unwrap();
    assert!(made_up["pieces"][0]["pieces"].as_array().unwrap().len() > 1, "a made-up word is several WordPieces");
}

// ---------------------------------------------------------------------------------------------
// Compression variants (`--variant`)

const TINY: &str = "tests/fixtures/tiny_bert/f32_noprefix";
const VARIANTS: [&str; 2] = ["int8", "prune:0.3+int8"];

/// `1234567` as `1,234,567`, grouped from the right.
fn with_commas(n: u64) -> String {
    let digits: Vec<char> = n.to_string().chars().rev().collect();
    let groups: Vec<String> = digits.chunks(3).map(|c| c.iter().rev().collect()).collect();
    groups.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// A variant's layer of the JSON as the reports write it: layer, drift mean, min, p5 (four
/// decimals), the two deltas (signed) and the neighbour overlap (three decimals); `–` for null.
fn variant_layer_cells(layer: &Value) -> Vec<String> {
    let number = |key: &str, f: &dyn Fn(f64) -> String| layer[key].as_f64().map_or_else(|| "–".to_owned(), f);
    vec![
        layer["layer"].to_string(),
        number("drift_mean", &|v| format!("{v:.4}")),
        number("drift_min", &|v| format!("{v:.4}")),
        number("drift_p5", &|v| format!("{v:.4}")),
        number("self_similarity_delta", &|v| format!("{v:+.4}")),
        number("sense_separation_delta", &|v| format!("{v:+.4}")),
        number("neighbour_overlap", &|v| format!("{v:.3}")),
    ]
}

/// The points of an SVG `<polyline>`, in pixels.
fn polyline_points(element: &str) -> Vec<(f64, f64)> {
    let points = element.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
    points.split_whitespace().map(|p| p.split_once(',').map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap())).unwrap()).collect()
}

/// The CSV report's columns without variants, in their order: these, the [`MEASURES`], and
/// [`CSV_AFTER_MEASURES`].
const CSV_BEFORE_MEASURES: [&str; 5] = ["word", "engine", "layer", "occurrences", "sampled"];
const CSV_AFTER_MEASURES: [&str; 5] = ["clusters_k", "clusters_silhouette", "clusters_ari", "model", "pieces"];

fn plain_csv_columns() -> Vec<&'static str> {
    [&CSV_BEFORE_MEASURES[..], &MEASURES, &CSV_AFTER_MEASURES].concat()
}

/// A CSV report's header and rows.
fn csv_rows(csv: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    (headers, rows)
}

/// A CSV variant row holds the JSON's variant `v` at `layer`: every number parsed equals the
/// JSON's, an empty cell stands for `null`, and the measure columns of the other rows are empty.
/// `same_run`: both come from one report; else the speeds were measured again and the drift
/// may differ in the last bits (threads sum in another order).
fn assert_csv_variant_row(headers: &[String], row: &[String], v: &Value, layer: &Value, same_run: bool) {
    let cell = |name: &str| &row[headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name} in {headers:?}"))];
    assert_eq!((cell("word"), cell("engine"), cell("model")), (&String::new(), &"variant".to_owned(), &v["engine"].as_str().unwrap().to_owned()), "{row:?}");
    assert_eq!(cell("layer"), &layer["layer"].to_string(), "{row:?}");
    assert_eq!(cell("occurrences"), &v["occurrences"].to_string(), "{row:?}");
    for key in ["variant", "base"] {
        assert_eq!(cell(key), v[key].as_str().unwrap(), "{key}: {row:?}");
    }
    for key in ["bytes", "base_bytes"] {
        assert_eq!(cell(key).parse::<u64>().unwrap(), v[key].as_u64().unwrap(), "{key}: {row:?}");
    }
    for key in ["tokens_per_second", "base_tokens_per_second"] {
        let got: f64 = cell(key).parse().unwrap();
        if same_run {
            assert_eq!(got, v[key].as_f64().unwrap(), "{key}: {row:?}");
        } else {
            assert!(got > 0.0 && got.is_finite(), "{key}: {row:?}");
        }
    }
    for key in ["drift_mean", "drift_min", "drift_p5", "self_similarity_delta", "sense_separation_delta", "neighbour_overlap"] {
        match layer[key].as_f64() {
            Some(want) if same_run => assert_eq!(cell(key).parse::<f64>().unwrap(), want, "{key}: {row:?}"),
            Some(want) => assert!((cell(key).parse::<f64>().unwrap() - want).abs() < 1e-9, "{key}: {row:?} vs {want}"),
            None => assert!(cell(key).is_empty(), "{key}: {row:?}"),
        }
    }
    for key in MEASURES.iter().chain(&CSV_AFTER_MEASURES).filter(|&&k| k != "model") {
        assert!(cell(key).is_empty(), "{key}: {row:?}");
    }
}

/// One report, written as JSON and as CSV: each CSV variant row holds exactly the JSON's
/// values, the measured speeds included.
#[test]
fn csv_variant_rows_equal_the_json_of_the_same_report() {
    use vecshift::report::{InputFormat, InputInfo, RecordReader};
    let variants: Vec<vecshift::compress::Variant> = VARIANTS.iter().map(|v| v.parse().unwrap()).collect();
    let base = vecshift::ContextualEncoder::load(TINY).unwrap();
    let compressed: Vec<vecshift::ContextualEncoder> =
        variants.iter().map(|v| vecshift::ContextualEncoder::load_with(TINY, &vecshift::LoadOptions::default().name(format!("tiny·{v}")).variant(v.clone())).unwrap()).collect();
    let engines: Vec<&dyn Embedder> = std::iter::once(&base).chain(&compressed).map(|e| e as &dyn Embedder).collect();
    let mut analyzer = vecshift::Analyzer::with_engines(&engines, vecshift::ReportOptions::default()).unwrap();
    let reader = RecordReader::new(std::io::BufReader::new(std::fs::File::open(FIXTURE).unwrap()), InputFormat::Tsv, &[]).unwrap();
    let records: Vec<vecshift::report::Record> = reader.filter_map(|row| row.unwrap().ok()).flatten().collect();
    analyzer.add(&records).unwrap();
    let mut report = analyzer.finish(InputInfo { name: FIXTURE.to_owned(), format: InputFormat::Tsv, lines: 0 }, Vec::new());
    let occurrences: Vec<Occurrence> = records.iter().map(|r| r.occurrence.clone()).collect();
    let senses: Vec<Option<String>> = records.iter().map(|r| r.sense.clone()).collect();
    for (engine, variant) in compressed.iter().zip(&variants) {
        report.variants.push(vecshift::compress::drift::variant_drift(&base, engine, variant, &occurrences, &senses, base.default_pooling()).unwrap());
    }
    let written = |format| {
        let mut out = Vec::new();
        report.write(format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    // The JSON report's values as serde gives them to its writer: serde_json's parser does not
    // round every float correctly (0.9999999999999999 reads as 1.0), which would hide a
    // difference in the last bit.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&written(vecshift::report::OutputFormat::Json)).unwrap()["variants"].as_array().unwrap().len(), 2);
    let (headers, rows) = csv_rows(&written(vecshift::report::OutputFormat::Csv));
    let want: Vec<(&Value, &Value)> =
        json["variants"].as_array().unwrap().iter().flat_map(|v| v["layers"].as_array().unwrap().iter().map(move |l| (v, l))).collect();
    let got: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "variant").collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(want.len(), 2 * 3, "two variants of the tiny BERT's 3 hidden states");
    for (row, (v, layer)) in got.into_iter().zip(want) {
        assert_csv_variant_row(&headers, row, v, layer, true);
    }
}

#[test]
fn variants_in_markdown_and_html_match_the_json_and_compress() {
    let dir = temp_dir();
    let run = |format: &str| {
        let bert = format!("tiny={TINY}");
        let mut args = vec!["report", FIXTURE, "-q", "--bert", &bert, "--format", format];
        args.extend(VARIANTS.iter().flat_map(|v| ["--variant", v]));
        let out = vecshift(&args, None);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let json: Value = serde_json::from_str(&run("json")).unwrap();
    let variants = json["variants"].as_array().unwrap();
    assert_eq!(variants.iter().map(|v| v["variant"].as_str().unwrap()).collect::<Vec<_>>(), VARIANTS);
    for (v, label) in variants.iter().zip(VARIANTS) {
        // The bytes are those of the model.safetensors that `compress` writes for the variant.
        let out = dir.path().join(label.replace([':', '+'], "-"));
        let written = report_json(&["compress", TINY, "--variant", label, "-o", out.to_str().unwrap(), "--json"], None);
        assert_eq!(v["bytes"], written["bytes"], "{label}");
        assert_eq!(v["bytes"].as_u64().unwrap(), std::fs::metadata(out.join("model.safetensors")).unwrap().len());
        assert_eq!(v["base_bytes"], written["original_bytes"], "{label}");
        for key in ["tokens_per_second", "base_tokens_per_second"] {
            let speed = v[key].as_f64().unwrap();
            assert!(speed > 0.0 && speed.is_finite(), "{label} {key}: {speed}");
        }
        assert_eq!(v["layers"].as_array().unwrap().len(), 3, "the tiny BERT's 3 hidden states");
    }
    let last_mean = |v: &Value| v["layers"][2]["drift_mean"].as_f64().unwrap();
    assert!(last_mean(&variants[1]) < last_mean(&variants[0]) - 0.005, "pruning moves the vectors further than int8 alone");

    // The JSONL report carries them in its last line.
    let jsonl = run("jsonl");
    let rest: Value = serde_json::from_str(jsonl.lines().last().unwrap()).unwrap();
    assert_eq!(rest["variants"].as_array().unwrap().len(), 2);

    // Markdown: one overview row per variant (bytes, size, tokens/s, speed, last layer), then a
    // table per variant with a row per layer, as in the JSON.
    let md = run("md");
    let section = md.split("\n## ").find(|s| s.starts_with("Variants")).unwrap_or_else(|| panic!("no Variants section in {md}"));
    for v in variants {
        let label = v["variant"].as_str().unwrap();
        let (bytes, base_bytes) = (v["bytes"].as_u64().unwrap(), v["base_bytes"].as_u64().unwrap());
        let row = section.lines().find(|l| l.starts_with(&format!("| {label} |"))).unwrap_or_else(|| panic!("{label} in {section}"));
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells[1], with_commas(bytes), "{row}");
        assert_eq!(cells[2], format!("{:.2}×", bytes as f64 / base_bytes as f64), "{row}");
        let speed: f64 = cells[3].replace(',', "").parse().unwrap();
        assert!(speed > 0.0, "{row}");
        assert!(cells[4].ends_with('×'), "{row}");
        assert_eq!(cells[5], v["occurrences"].to_string());
        let last = variant_layer_cells(&v["layers"][2]);
        assert_eq!(cells[6..], [last[0].as_str(), &last[1], &last[3]], "{row}");
        let table = section.split("\n### ").find(|s| s.starts_with(&format!("{label}: "))).unwrap_or_else(|| panic!("{label} in {section}"));
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ") && l.chars().nth(2).is_some_and(|c| c.is_ascii_digit())).collect();
        let want: Vec<String> = v["layers"].as_array().unwrap().iter().map(|l| format!("| {} |", variant_layer_cells(l).join(" | "))).collect();
        assert_eq!(rows, want, "{label}");
    }

    // CSV: the rows of the other engines keep their columns, then a row per variant and layer
    // carries the JSON's values (all but the speeds, which this run measured again).
    let csv = run("csv");
    let (headers, rows) = csv_rows(&csv);
    assert_eq!(headers[..18], plain_csv_columns(), "the columns before the variants' stay as they were");
    let variant_rows: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "variant").collect();
    assert_eq!(variant_rows.len(), 2 * 3, "a row per variant and layer");
    for (row, (v, layer)) in variant_rows.iter().zip(variants.iter().flat_map(|v| v["layers"].as_array().unwrap().iter().map(move |l| (v, l)))) {
        assert_csv_variant_row(&headers, row, v, layer, false);
    }
    assert!(rows.iter().filter(|r| r[1] != "variant").all(|r| r[18..].iter().all(String::is_empty)), "the other rows leave the variant columns empty");
    let (plain_headers, _) = csv_rows(&String::from_utf8(vecshift(&["report", FIXTURE, "-q", "--bert", &format!("tiny={TINY}"), "--format", "csv"], None).stdout).unwrap());
    assert_eq!(plain_headers, plain_csv_columns(), "without variants the CSV has no variant columns");

    // HTML: the same tables, and the drift chart with one curve per variant.
    let html = run("html");
    let from = html.find("<h2 id=\"variants\">").expect("a Variants section");
    let part = &html[from..html[from..].find("<h2>").map_or(html.len(), |i| from + i)];
    for v in variants {
        let label = v["variant"].as_str().unwrap();
        assert!(part.contains(&format!("<tr><td>{label}</td><td>{}</td>", with_commas(v["bytes"].as_u64().unwrap()))), "{label}");
        for layer in v["layers"].as_array().unwrap() {
            let row: String = variant_layer_cells(layer).iter().map(|c| format!("<td>{c}</td>")).collect();
            assert!(part.contains(&format!("<tr>{row}</tr>")), "{label}: {row}");
        }
    }
    let chart = &part[part.find("<figure class=\"drift\">").unwrap()..part.find("</figure>").unwrap()];
    let polylines: Vec<&str> = chart.match_indices("<polyline").map(|(i, _)| &chart[i..i + chart[i..].find("/>").unwrap()]).collect();
    let stroke = |p: &str| p.split("stroke=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    // A curve has a point per layer; its legend sample is a level stroke of two points.
    let curves: Vec<&str> = polylines.iter().copied().filter(|p| polyline_points(p).len() == 3).collect();
    let samples: Vec<&str> = polylines
        .iter()
        .copied()
        .filter(|p| p.contains("stroke-width=\"2\"") && matches!(polyline_points(p)[..], [(_, a), (_, b)] if a == b))
        .collect();
    assert_eq!(curves.len(), 2, "one curve per variant: {chart}");
    assert_eq!(curves.iter().map(|p| stroke(p)).collect::<Vec<_>>(), samples.iter().map(|p| stroke(p)).collect::<Vec<_>>(), "a legend entry per curve, in its colour");
    assert_ne!(stroke(curves[0]), stroke(curves[1]));
    for v in variants {
        assert!(chart.contains(&format!("{} (", v["variant"].as_str().unwrap())), "the legend names {}", v["variant"]);
    }
    // The points follow the drift: left to right by layer, higher for a higher mean cosine.
    let mut points = Vec::new();
    for (curve, v) in curves.iter().zip(variants) {
        let drawn = polyline_points(curve);
        assert!(drawn.windows(2).all(|w| w[0].0 < w[1].0), "{curve}");
        points.extend(drawn.iter().zip(v["layers"].as_array().unwrap()).map(|(&(_, y), l)| (l["drift_mean"].as_f64().unwrap(), y)));
    }
    for &(a, ya) in &points {
        for &(b, yb) in &points {
            if a > b + 0.005 {
                assert!(ya < yb, "mean {a} drawn at y {ya}, below mean {b} at y {yb}");
            } else if a > b {
                assert!(ya <= yb, "mean {a} drawn at y {ya}, below mean {b} at y {yb}");
            }
        }
    }
}
