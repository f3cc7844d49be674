//! The `vecshift` binary on the embedded default models.

mod common;

use common::{fails_with, json, vecshift};
use serde_json::Value;

#[test]
fn embed_gives_the_static_vector_and_every_layer() {
    let v = json(&["embed", "--json", "--word", "bank", "--sentence", "The Bank approved my loan."]);
    assert_eq!(v["word"], "Bank");
    assert_eq!(v["sentence"], "The Bank approved my loan.");
    assert_eq!(v["span"], serde_json::json!([4, 8]));
    assert_eq!(v["static"]["dims"], 50);
    assert_eq!(v["static"]["vector"].as_array().unwrap().len(), 50);
    assert_eq!(v["static"]["lookup"], "lowercased");
    assert!(v["static"]["model"].as_str().unwrap().contains("glove"));
    assert_eq!(v["contextual"]["dims"], 384);
    let layers = v["contextual"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 7);
    assert!(layers.iter().all(|l| l.as_array().unwrap().len() == 384));
}

#[test]
fn embed_matches_the_library_and_glove() {
    // GloVe 6B's published vector for "the" begins 0.418 0.24968 -0.41242.
    let v = json(&["embed", "--json", "-w", "the", "-s", "the end"]);
    let head: Vec<f64> = v["static"]["vector"].as_array().unwrap()[..3].iter().map(|x| x.as_f64().unwrap()).collect();
    for (got, want) in head.iter().zip([0.418, 0.24968, -0.41242]) {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}

#[test]
fn embed_with_an_unknown_static_word_still_succeeds() {
    let out = vecshift(&["embed", "--json", "--word", "qwzxv", "--sentence", "I said qwzxv twice."]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["static"].is_null());
    assert_eq!(v["contextual"]["layers"].as_array().unwrap().len(), 7);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("warning:") && stderr.contains("qwzxv"), "{stderr}");
}

#[test]
fn embed_locators() {
    let v = json(&["embed", "--json", "-w", "bank", "-s", "bank to bank", "--occurrence", "2"]);
    assert_eq!(v["span"], serde_json::json!([8, 12]));
    let v = json(&["embed", "--json", "-w", "carried", "-s", "He carried the box", "--token-index", "1"]);
    assert_eq!(v["word"], "carried");
    let v = json(&["embed", "--json", "-w", "box", "-s", "He carried the box", "--span", "15..18"]);
    assert_eq!(v["word"], "box");
    // A token's punctuation is left out, and the note says what was taken.
    let out = vecshift(&["embed", "--json", "-w", "bank", "-s", "The Bank, by the river bank.", "--token-index", "5"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&v["word"], &v["span"]), (&serde_json::json!("bank"), &serde_json::json!([23, 27])));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"bank.\"; took \"bank\""));
    // A span or token that is not the word is an error showing both.
    fails_with(&["embed", "-w", "river", "-s", "The Bank, by the river bank.", "--span", "4..8"], &["--span 4..8", "\"Bank\"", "\"river\""]);
    fails_with(&["embed", "-w", "river", "-s", "The Bank, by the river bank.", "--token-index", "1"], &["--token-index 1", "\"Bank\"", "\"river\""]);
}

#[test]
fn embed_json_is_compact_unless_pretty() {
    let args = ["embed", "--json", "-w", "bank", "-s", "The bank."];
    let compact = vecshift(&args).stdout;
    assert_eq!(compact.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
    let pretty = vecshift(&[&args[..], &["--pretty"]].concat()).stdout;
    assert!(pretty.len() > compact.len() && pretty.starts_with(b"{\n"));
    let (a, b): (Value, Value) = (serde_json::from_slice(&compact).unwrap(), serde_json::from_slice(&pretty).unwrap());
    assert_eq!(a, b);
    // A long sentence is clipped in the table's header.
    let long = format!("The bank {}", "and so on ".repeat(200));
    let out = vecshift(&["embed", "-w", "bank", "-s", &long]);
    let header = String::from_utf8_lossy(&out.stdout).lines().next().unwrap().to_owned();
    assert!(header.chars().count() < 120 && header.contains('…'), "{header}");
}

#[test]
fn compare_keeps_the_rows_of_the_word_and_takes_the_bundled_set() {
    let dir = tempfile::tempdir().unwrap();
    let two = dir.path().join("two.tsv");
    let bank = std::fs::read_to_string("data/sentences/bank.tsv").unwrap();
    let bass = std::fs::read_to_string("data/sentences/bass.tsv").unwrap();
    std::fs::write(&two, format!("{bank}{bass}")).unwrap();
    let two = two.to_str().unwrap();
    let v = json(&["compare", "--json", "--sentences", two, "-w", "bass"]);
    assert_eq!((v["word"].as_str(), v["sentences"].as_array().unwrap().len()), (Some("bass"), bass.lines().count()));
    let only_bass = json(&["compare", "--json", "--sentences", "data/sentences/bass.tsv"]);
    assert_eq!(v["contextual"], only_bass["contextual"], "the same numbers as the bass file alone");
    fails_with(&["compare", "--sentences", two], &["\"bank\", \"bass\"", "--word"]);
    let spring = json(&["compare", "--json", "-w", "spring"]);
    assert_eq!(spring["sentences"].as_array().unwrap().len(), 9, "data/sentences/spring.tsv");
    fails_with(&["compare", "-w", "zebra"], &["no example set", "--sentences"]);
}

#[test]
fn usage_errors_and_help_per_subcommand() {
    let usage_error = |args: &[&str], needle: &str| {
        let out = vecshift(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.code() == Some(2) && stderr.starts_with("error: ") && stderr.contains(needle), "{args:?}: {stderr}");
    };
    usage_error(&["neighbors", "bank", "-k", "0"], "-k");
    usage_error(&["neighbors", ""], "WORD");
    usage_error(&["analogy", "man", "", "woman"], "B");
    fails_with(&["--word", "bank", "embed"], &["go after the subcommand"]);
    fails_with(&["--bert", "x", "neighbors", "bank"], &["--bert does nothing for `vecshift neighbors`"]);
    let help = |args: &[&str]| String::from_utf8(vecshift(args).stdout).unwrap();
    for command in ["neighbors", "analogy", "convert"] {
        let text = help(&[command, "--help"]);
        assert!(!text.contains("--bert") && !text.contains("--pooling"), "{command}: {text}");
    }
    assert!(!help(&["tui", "--help"]).contains("--json"));
    let compare = help(&["compare", "--help"]);
    assert!(compare.contains("Model options:") && compare.contains("[possible values: mean, first, last]"), "{compare}");
    assert!(compare.contains("[possible values: finalfusion, word2vec, word2vec-text, glove, fasttext, int8]"));
    assert!(help(&["analogy", "--help"]).contains("[default: 10]"));
    // Options before the subcommand still work where they act.
    let v = json(&["--json", "neighbors", "bank", "-k", "2"]);
    assert_eq!(v.as_array().unwrap().len(), 2);
}

#[test]
fn compare_shows_bert_moving_and_glove_fixed() {
    let v = json(&[
        "compare", "--json", "--word", "bank",
        "-s", "I deposited the cheque at the bank.",
        "-s", "The bank raised its interest rates.",
        "-s", "We had a picnic on the river bank.",
    ]);
    assert_eq!(v["word"], "bank");
    assert_eq!(v["sentences"].as_array().unwrap().len(), 3);
    let static_matrix = v["static"]["matrix"].as_array().unwrap();
    for row in static_matrix {
        for x in row.as_array().unwrap() {
            assert!((x.as_f64().unwrap() - 1.0).abs() < 1e-6);
        }
    }
    let layers = v["contextual"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 7);
    for (i, layer) in layers.iter().enumerate() {
        assert_eq!(layer["layer"], i);
        let m = layer["matrix"].as_array().unwrap();
        let cell = |a: usize, b: usize| m[a][b].as_f64().unwrap();
        assert!((cell(0, 0) - 1.0).abs() < 1e-5 && (cell(0, 1) - cell(1, 0)).abs() < 1e-6);
        let mean = (cell(0, 1) + cell(0, 2) + cell(1, 2)) / 3.0;
        assert!((layer["mean_similarity"].as_f64().unwrap() - mean).abs() < 1e-5);
    }
    // In the last layer the two money banks are closer to each other than to the river bank.
    let last = layers[6]["matrix"].as_array().unwrap();
    let c = |a: usize, b: usize| last[a][b].as_f64().unwrap();
    assert!(c(0, 1) > c(0, 2) && c(0, 1) > c(1, 2), "{last:?}");
    assert!(c(0, 2) < 0.99);
}

#[test]
fn compare_reads_the_curated_tsv_sets_and_prints_a_table_within_80_columns() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sentences/bank.tsv");
    let out = vecshift(&["compare", "--sentences", file]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("\"bank\"") && table.contains("[finance]") && table.contains("[river]"), "{table}");
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
    let v = json(&["compare", "--json", "--sentences", file]);
    assert_eq!(v["senses"].as_array().unwrap().len(), v["sentences"].as_array().unwrap().len());
}

#[test]
fn neighbors_and_analogy() {
    let v = json(&["neighbors", "--json", "france", "-k", "5"]);
    let words: Vec<&str> = v.as_array().unwrap().iter().map(|n| n["word"].as_str().unwrap()).collect();
    assert_eq!(words.len(), 5);
    assert!(!words.contains(&"france"));
    assert!(words.contains(&"french") || words.contains(&"belgium"), "{words:?}");
    assert!(v[0]["cosine"].as_f64().unwrap() >= v[4]["cosine"].as_f64().unwrap());
    let v = json(&["analogy", "--json", "man", "king", "woman", "-k", "3"]);
    assert_eq!(v[0]["word"], "queen");
}

#[test]
fn errors_are_one_clear_line() {
    fails_with(&["embed", "-w", "bank", "-s", "I went banking."], &["\"bank\"", "I went banking."]);
    fails_with(&["neighbors", "qwzxvq"], &["qwzxvq", "vocabulary"]);
    fails_with(&["--vectors", "/no/such/file.bin", "neighbors", "bank"], &["/no/such/file.bin"]);
    fails_with(&["--bert", "/no/such/dir", "embed", "-w", "a", "-s", "a b"], &["/no/such/dir"]);
    fails_with(&["compare", "--strict", "-w", "bank", "-s", "the bank", "-s", "no target here"], &["sentence 2", "no target here"]);
    fails_with(&["compare", "--sentences", "/no/such/sentences.txt", "-w", "x"], &["/no/such/sentences.txt"]);
    fails_with(&["embed", "-w", "bank", "-s", "bank", "--span", "0..99"], &["0..99"]);
}

#[test]
fn convert_writes_a_finalfusion_file_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.fifu");
    let input = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/static/tiny.glove.txt");
    let v = json(&["convert", "--json", input, out.to_str().unwrap()]);
    assert_eq!(v["words"], 311);
    assert_eq!(v["format"], "glove");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644, "a new file is readable by others, not left owner-only like its temporary");
    let n = json(&["--vectors", out.to_str().unwrap(), "neighbors", "--json", "king", "-k", "1"]);
    assert_eq!(n.as_array().unwrap().len(), 1);
    // A failed conversion leaves nothing behind.
    let bad = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/static/broken/nan.txt");
    let target = dir.path().join("bad.fifu");
    fails_with(&["convert", bad, target.to_str().unwrap()], &["nan.txt"]);
    assert!(!target.exists());
    // The converted file and its vocabulary index, nothing else.
    let mut left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["tiny.fifu", "tiny.fifu.idx"], "no temporary files left");
}

#[test]
fn report_refuses_unknown_extensions_and_contradictions() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let input = "data/sentences/bank.tsv";
    fails_with(&["report", input, "-o", &out("x.pdf")], &["x.pdf", ".pdf is not a report format", "--format"]);
    fails_with(&["report", input, "--json", "-f", "md"], &["--json", "md"]);
    fails_with(&["report", input, "--json", "-o", &out("x.md")], &["--json", "md"]);
    fails_with(&["report", input, "-f", "csv", "-o", &out("x.json")], &["--format csv", "x.json", "json"]);
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written");

    let html = out("bank.html");
    let run = vecshift(&["report", input, "-o", &html]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success() && stderr.contains("(1 word, 9 occurrences, 0 lines skipped)"), "{stderr}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("static: every pairwise cosine is 1.00"), "one note instead of the static heatmap");
    assert!(!page.contains(">static</text>"), "no all-1.00 heatmap drawn");
    assert!(page.contains("mean over words, static"), "the dashed legend entry names the static line");
}
