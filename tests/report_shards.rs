//! Sharded reports: `report --shard I/N --partial FILE` on each part of an input, then
//! `report merge`, give the report of one process over the whole input; parts that do not
//! belong together are refused with one line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_same, fails_with, sentences_input, vecshift};
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    let out = vecshift(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn shard(input: &Path, index: usize, count: usize, dir: &Path, extra: &[&str]) -> PathBuf {
    let stem = input.file_stem().unwrap().to_string_lossy();
    let part = dir.join(format!("{stem}-{index}-of-{count}{}.vspart", extra.join("").replace(['-', '/', '.'], "")));
    let spec = format!("{index}/{count}");
    let mut args = vec!["report", input.to_str().unwrap(), "--shard", &spec, "--partial", part.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    run(&args);
    part
}

#[test]
fn merged_shards_equal_one_process_for_1_2_and_7_shards() {
    let dir = tempfile::tempdir().unwrap();
    let (input, lines, bad) = sentences_input(dir.path());
    assert!(lines > 300);
    let name = input.to_str().unwrap();
    for (count, extra) in [(1, &["--max-per-word", "5"][..]), (2, &[][..]), (7, &["--max-per-word", "5"][..])] {
        let mut args = vec!["report", name, "--json", "--quiet"];
        args.extend_from_slice(extra);
        let single: Value = serde_json::from_slice(&run(&args).stdout).unwrap();
        // Shards run in reverse and are merged in a shuffled order: neither matters.
        let mut parts: Vec<PathBuf> = (0..count).rev().map(|i| shard(&input, i, count, dir.path(), extra)).collect();
        parts.rotate_left(count / 2);
        let out = dir.path().join(format!("merged-{count}.json"));
        let mut merge = vec!["report", "merge", "-o", out.to_str().unwrap(), "--quiet"];
        merge.extend(parts.iter().map(|p| p.to_str().unwrap()));
        run(&merge);
        let merged: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_same(&single, &merged, &format!("{count} shards"));

        // The comparison has teeth: the sample is a strict subset when capped, and bad lines
        // keep their line numbers in the whole input.
        let words = merged["words"].as_array().unwrap();
        assert_eq!(words.len(), 12);
        for word in words {
            let occurrences = word["occurrences"].as_u64().unwrap();
            let sampled = if extra.is_empty() { occurrences } else { 5 };
            assert!(occurrences >= 27 && word["sampled"] == sampled, "{count} shards: {} {occurrences} {}", word["word"], word["sampled"]);
        }
        let skipped: Vec<u64> = merged["skipped"].as_array().unwrap().iter().map(|b| b["line"].as_u64().unwrap()).collect();
        assert_eq!(skipped, bad, "{count} shards");
        assert_eq!(merged["input"]["lines"], lines);
    }
}

/// A small input and its two shards, for the refusals.
struct Parts {
    dir: tempfile::TempDir,
    input: PathBuf,
    first: PathBuf,
    second: PathBuf,
}

fn two_parts() -> Parts {
    let dir = tempfile::tempdir().unwrap();
    let all = std::fs::read_to_string("data/sentences/bank.tsv").unwrap() + &std::fs::read_to_string("data/sentences/bat.tsv").unwrap();
    let input = dir.path().join("small.tsv");
    std::fs::write(&input, &all).unwrap();
    let first = shard(&input, 0, 2, dir.path(), &[]);
    let second = shard(&input, 1, 2, dir.path(), &[]);
    Parts { dir, input, first, second }
}

fn merge_fails(parts: &[&Path], needles: &[&str]) {
    let mut args = vec!["report", "merge", "--json"];
    args.extend(parts.iter().map(|p| p.to_str().unwrap()));
    fails_with(&args, needles);
}

#[test]
fn merge_refuses_parts_that_do_not_belong_together() {
    let p = two_parts();
    let (first, second) = (p.first.as_path(), p.second.as_path());
    let json: Value = serde_json::from_slice(&run(&["report", "merge", "--json", second.to_str().unwrap(), first.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(json["occurrences"], 18);

    // Another input: the file changed between the shards (same name and size), another file.
    let other_dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(&p.input).unwrap();
    std::fs::write(&p.input, original.replace("bank", "BANK")).unwrap();
    let other_contents = shard(&p.input, 1, 2, other_dir.path(), &[]);
    std::fs::write(&p.input, original).unwrap();
    let moved = p.dir.path().join("renamed.tsv");
    std::fs::copy(&p.input, &moved).unwrap();
    let other_name = shard(&moved, 1, 2, other_dir.path(), &[]);
    merge_fails(&[first, &other_contents], &["another input", "same name and size but other contents"]);
    merge_fails(&[first, &other_name], &["another input", "renamed.tsv"]);
    // Other engines, other settings, another split.
    let glove = "tests/fixtures/static/tiny.glove.txt";
    merge_fails(&[first, &shard(&p.input, 1, 2, p.dir.path(), &["--vectors", glove])], &["made with BERT", "tiny.glove.txt"]);
    merge_fails(&[first, &shard(&p.input, 1, 2, p.dir.path(), &["--pooling", "first"])], &["first pooling", "mean pooling"]);
    merge_fails(&[first, &shard(&p.input, 1, 2, p.dir.path(), &["--max-per-word", "3"])], &["--max-per-word 3"]);
    merge_fails(&[first, &shard(&p.input, 1, 2, p.dir.path(), &["--word", "bat"])], &["--word [\"bat\"]"]);
    merge_fails(&[first, &shard(&p.input, 2, 3, p.dir.path(), &[])], &["shard 2/3", "of 2"]);
    // The same shard twice, a shard missing.
    merge_fails(&[first, first, second], &["shard 0/2 is given twice"]);
    merge_fails(&[second], &["shard 0/2 is missing", "all 2 parts"]);
}

/// Rewrites a part's payload (and its checksum, so that only the change shows).
fn rewrite(part: &Path, to: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    use sha2::Digest;
    let mut bytes = std::fs::read(part).unwrap();
    let header = 14 + 4 + 8 + 32;
    let mut payload = bytes.split_off(header);
    change(&mut payload);
    bytes[18..26].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes[26..58].copy_from_slice(&sha2::Sha256::digest(&payload));
    bytes.extend(payload);
    std::fs::write(to, bytes).unwrap();
}

#[test]
fn merge_refuses_other_versions_and_damaged_parts() {
    let p = two_parts();
    let (first, second) = (p.first.as_path(), p.second.as_path());
    let bytes = std::fs::read(second).unwrap();
    let at = |name: &str| p.dir.path().join(name);

    // Another vecshift version: the first field of the payload is the version string.
    let version = env!("CARGO_PKG_VERSION");
    rewrite(second, &at("version.vspart"), |payload| {
        assert_eq!(&payload[1..1 + version.len()], version.as_bytes());
        payload[1..1 + version.len()].copy_from_slice(&"9".repeat(version.len()).into_bytes());
    });
    merge_fails(&[first, &at("version.vspart")], &["version.vspart", "made by vecshift 9", &format!("by vecshift {version}")]);

    // Another file-format version.
    let mut other = bytes.clone();
    other[14] = 99;
    std::fs::write(at("format.vspart"), &other).unwrap();
    merge_fails(&[first, &at("format.vspart")], &["format.vspart", "format version 99", "reads version 3"]);

    // A flipped byte, a cut-off file, something else entirely.
    let mut damaged = bytes.clone();
    let last = damaged.len() - 100;
    damaged[last] ^= 0x55;
    std::fs::write(at("damaged.vspart"), &damaged).unwrap();
    merge_fails(&[first, &at("damaged.vspart")], &["damaged.vspart", "checksum"]);
    std::fs::write(at("cut.vspart"), &bytes[..bytes.len() / 2]).unwrap();
    merge_fails(&[first, &at("cut.vspart")], &["cut.vspart", "truncated"]);
    merge_fails(&[first, &p.input], &["small.tsv", "not a vecshift partial report"]);
    merge_fails(&[first, &at("missing.vspart")], &["missing.vspart"]);
}

#[test]
fn shards_need_a_file_and_an_empty_shard_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("two.tsv");
    std::fs::write(&input, "bank\tThe bank approved my loan.\nbank\tWe sat on the river bank.\n").unwrap();
    // Four shards of two lines: two are empty, and the merge still equals one process.
    let parts: Vec<PathBuf> = (0..4).map(|i| shard(&input, i, 4, dir.path(), &[])).collect();
    let mut merge = vec!["report", "merge", "--json"];
    merge.extend(parts.iter().map(|p| p.to_str().unwrap()));
    let merged: Value = serde_json::from_slice(&run(&merge).stdout).unwrap();
    let single: Value = serde_json::from_slice(&run(&["report", input.to_str().unwrap(), "--json"]).stdout).unwrap();
    assert_same(&single, &merged, "4 shards of 2 lines");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vecshift"))
        .args(["report", "--shard", "0/2", "--partial", dir.path().join("x.vspart").to_str().unwrap()])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.starts_with("error: ") && stderr.contains("not stdin"), "{stderr}");
    assert!(!dir.path().join("x.vspart").exists());
}

#[test]
fn merge_measures_the_corrections_as_one_process_does() {
    let p = two_parts();
    let (first, second) = (p.first.to_str().unwrap(), p.second.to_str().unwrap());
    let corpus = p.dir.path().join("corpus.txt");
    let text = std::fs::read_to_string("data/sentences/spring.tsv").unwrap() + &std::fs::read_to_string("data/sentences/bass.tsv").unwrap();
    std::fs::write(&corpus, text.lines().filter_map(|l| l.split('\t').nth(1)).collect::<Vec<_>>().join("\n")).unwrap();
    let corpus = corpus.to_str().unwrap();
    let input = p.input.to_str().unwrap();
    for corrections in [&["--postprocess", "none,center,all-but-the-top:2,standardize"][..], &["--postprocess", "center,whiten", "--fit", corpus]] {
        let mut one = vec!["report", input, "--json", "--quiet"];
        one.extend_from_slice(corrections);
        let single: Value = serde_json::from_slice(&run(&one).stdout).unwrap();
        let mut merge = vec!["report", "merge", "--json", "--quiet", second, first];
        merge.extend_from_slice(corrections);
        let merged: Value = serde_json::from_slice(&run(&merge).stdout).unwrap();
        let sections = single["postprocess"].as_array().unwrap();
        assert_eq!(sections.len(), corrections[1].split(',').count(), "{corrections:?}");
        assert!(sections.iter().all(|s| s["layers"].as_array().unwrap().iter().all(|l| l["self_similarity"].is_f64())), "{corrections:?}: measured");
        assert_same(&single["postprocess"], &merged["postprocess"], &format!("{corrections:?}"));
        // Everything else is the merge it always was.
        assert_same(&single["words"], &merged["words"], "words");
    }
    // Without --postprocess there is no section, as before; --fit alone is refused.
    let plain: Value = serde_json::from_slice(&run(&["report", "merge", "--json", "--quiet", first, second]).stdout).unwrap();
    assert_eq!(plain["postprocess"].as_array().map(Vec::len).unwrap_or(0), 0);
    fails_with(&["report", "merge", "--json", first, second, "--fit", corpus], &["--fit", "add --postprocess"]);
}
