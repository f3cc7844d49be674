//! Replays, without nightly or libFuzzer, every input that once failed a fuzz target
//! (`tests/fixtures/fuzz_regressions/<target>/`) and the targets' seed corpora
//! (`fuzz/corpus/<target>/seed-*`), through the targets' own checks (`fuzz/src/lib.rs`):
//! no panic, spans on character boundaries, allocation in proportion to a vector file's size.

#[path = "../fuzz/src/lib.rs"]
mod fuzz_support;

use std::path::{Path, PathBuf};

fn inputs(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable directory").path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && !n.starts_with('.')))
        .collect();
    files.sort();
    files
}

/// One test, so that inputs run one at a time and the allocation counts are this input's.
#[test]
fn fuzz_regressions_and_seeds_pass_the_fuzz_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failed = Vec::new();
    let mut replayed = 0;
    for target in fuzz_support::TARGETS {
        let regressions = inputs(&root.join("tests/fixtures/fuzz_regressions").join(target), "");
        let seeds = inputs(&root.join("fuzz/corpus").join(target), "seed-");
        assert!(!seeds.is_empty(), "{target} has no seed corpus");
        for file in regressions.iter().chain(&seeds) {
            let data = std::fs::read(file).unwrap();
            replayed += 1;
            if std::panic::catch_unwind(|| fuzz_support::run(target, &data)).is_err() {
                failed.push(file.strip_prefix(root).unwrap_or(file).display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "{} of {replayed} inputs fail their fuzz target's checks: {failed:#?}", failed.len());
}
