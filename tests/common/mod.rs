//! Running the `vecshift` binary from integration tests.

use std::process::{Command, Output};

use serde_json::Value;

/// Runs the binary; errors must stay one line even when a backtrace is asked for.
pub fn vecshift(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vecshift")).args(args).env("RUST_BACKTRACE", "1").output().unwrap()
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
    let out = vecshift(args);
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
