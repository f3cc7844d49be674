//! Running the `vecshift` binary from integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Runs the binary; errors must stay one line even when a backtrace is asked for.
pub fn vecshift(args: &[&str]) -> Output {
    vecshift_env(args, &[])
}

/// [`vecshift`] with more environment variables.
pub fn vecshift_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vecshift"));
    command.args(args).env("RUST_BACKTRACE", "1").envs(env.iter().copied());
    command.output().unwrap()
}

/// Runs the binary, which must succeed, and parses its stdout as JSON.
#[allow(dead_code)] // not every test binary parses JSON
pub fn json(args: &[&str]) -> Value {
    let out = vecshift(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs the binary, which must fail with one `error:` line containing every needle.
#[allow(dead_code)] // not every test binary checks errors
pub fn fails_with(args: &[&str], needles: &[&str]) {
    fails_with_env(args, &[], needles);
}

/// [`fails_with`] with more environment variables.
#[allow(dead_code)] // not every test binary checks errors
pub fn fails_with_env(args: &[&str], env: &[(&str, &str)], needles: &[&str]) {
    let out = vecshift_env(args, env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout on error");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line, got: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("backtrace") && !stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{args:?}: {needle:?} missing from: {stderr}");
    }
}

/// A few hundred labelled sentences: the example sets three times over (so every word has at
/// least 27 occurrences, more than a small --max-per-word keeps), with bad lines among them.
/// Returns the file, its line count and the numbers of its bad lines.
#[allow(dead_code)] // for the tests of sharded reports
pub fn sentences_input(dir: &Path) -> (PathBuf, usize, Vec<u64>) {
    let mut sets: Vec<PathBuf> = std::fs::read_dir("data/sentences").unwrap().map(|e| e.unwrap().path()).collect();
    sets.retain(|p| p.extension().is_some_and(|e| e == "tsv"));
    sets.sort();
    let mut text = String::from("word\tsentence\tsense\n");
    let mut bad = Vec::new();
    for round in 0..3 {
        for (i, set) in sets.iter().enumerate() {
            text.push_str(&std::fs::read_to_string(set).unwrap());
            if i == 4 {
                text.push_str(if round == 1 { "\n" } else { "bank\tThis line has no target word.\tfinance\n" });
                bad.push(text.lines().count() as u64);
            }
        }
    }
    let path = dir.join("sentences.tsv");
    std::fs::write(&path, &text).unwrap();
    (path, text.lines().count(), bad)
}

/// Asserts two reports equal: numbers within 1e-6, everything else exactly.
#[allow(dead_code)] // for the tests of sharded reports
pub fn assert_same(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "keys at {at}");
            x.iter().for_each(|(k, v)| assert_same(v, &y[k], &format!("{at}.{k}")));
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "length at {at}");
            x.iter().zip(y).enumerate().for_each(|(i, (v, w))| assert_same(v, w, &format!("{at}[{i}]")));
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-6, "{at}: {x} vs {y}");
        }
        _ => assert_eq!(a, b, "at {at}"),
    }
}

/// The occurrence a reference fixture's case names: its `sentence` and the UTF-8 byte `span`
/// of the word.
#[allow(dead_code)] // for the fidelity tests against transformers
pub fn case_occurrence(case: &Value) -> vecshift::Occurrence {
    let span = case["span"].as_array().unwrap();
    let span = span[0].as_u64().unwrap() as usize..span[1].as_u64().unwrap() as usize;
    vecshift::Occurrence::locate("", case["sentence"].as_str().unwrap(), &vecshift::Locator::Span(span)).unwrap()
}
