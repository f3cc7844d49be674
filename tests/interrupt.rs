//! Stopping a real `vecshift report` run: Ctrl-C (SIGINT), SIGTERM and SIGKILL in the middle
//! leave the previous output file as it was and no temporary file; two runs writing the same
//! output at once leave one whole report, never a mix.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vecshift");

/// What the output file holds before the run that is stopped.
const PREVIOUS: &str = "{\"previous\": \"report\"}\n";

/// Long enough for a cold start of the release binary on a busy machine.
const PATIENCE: Duration = Duration::from_secs(120);

/// `lines` sentences with "bank" in them, in `dir/name`.
fn sentences(dir: &Path, name: &str, word: &str, lines: usize) -> PathBuf {
    let places = ["river", "city", "old town", "harbour", "hill", "market", "station", "school"];
    let text: String = (0..lines)
        .map(|i| format!("We met at the {word} near the {} on day {i}.\n", places[i % places.len()]))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A report run with debug notes on stderr, so that the test sees when encoding has begun.
struct Run {
    child: Child,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Run {
    fn start(input: &Path, word: &str, output: &Path) -> Run {
        let mut child = Command::new(BIN)
            .args(["report", "--word", word, "--chunk", "64"])
            .arg(input)
            .arg("--output")
            .arg(output)
            .env("VECSHIFT_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        Run { child, stderr, seen: Vec::new() }
    }

    /// Waits until the run has encoded its first chunks.
    fn wait_until_encoding(&mut self) {
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            match self.stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let done = line.contains("lines read");
                    self.seen.push(line);
                    if done {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the run ended early: {:?}", self.seen),
            }
        }
        panic!("the run never started encoding: {:?}", self.seen);
    }

    fn signal(&self, signal: i32) {
        // SAFETY: sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, signal) }, 0);
    }

    /// Waits for the exit; returns the status and everything it wrote on stderr.
    fn finish(mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < PATIENCE, "the run did not stop");
            std::thread::sleep(Duration::from_millis(50));
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(line) = self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.seen.push(line);
        }
        (status, self.seen.join("\n"))
    }
}

/// Starts a report on 6,000 lines, stops it with `signal` once it is encoding, and checks that
/// the previous output is untouched and nothing else is left in its folder.
fn stop_a_run(signal: i32) -> (ExitStatus, String) {
    let inputs = tempfile::tempdir().unwrap();
    let input = sentences(inputs.path(), "big.txt", "bank", 6000);
    let outputs = tempfile::tempdir().unwrap();
    let output = outputs.path().join("report.json");
    std::fs::write(&output, PREVIOUS).unwrap();

    let mut run = Run::start(&input, "bank", &output);
    run.wait_until_encoding();
    let started = Instant::now();
    run.signal(signal);
    let (status, stderr) = run.finish();
    eprintln!("stopped {:.2} s after the signal", started.elapsed().as_secs_f64());

    assert_eq!(std::fs::read_to_string(&output).unwrap(), PREVIOUS, "the previous output changed; stderr: {stderr}");
    assert_eq!(listing(outputs.path()), ["report.json"], "a temporary file was left behind");
    (status, stderr)
}

/// The closing message: how far it got, out of how many lines, and the file left unchanged.
fn assert_says_how_far(stderr: &str, signal_name: &str) {
    let message = stderr.lines().find(|l| l.starts_with("interrupted")).unwrap_or_else(|| panic!("no message: {stderr}"));
    assert!(message.contains(signal_name), "{message}");
    assert!(message.contains(" lines of 6,000;"), "{message}");
    assert!(message.contains("report.json left unchanged"), "{message}");
    let read: usize = message.split(" after ").nth(1).unwrap().split(' ').next().unwrap().replace(',', "").parse().unwrap();
    assert!(read > 0 && read < 6000, "{message}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn ctrl_c_leaves_the_previous_output_and_says_how_far_it_got() {
    let (status, stderr) = stop_a_run(libc::SIGINT);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_says_how_far(&stderr, "Ctrl-C (SIGINT)");
}

#[test]
fn sigterm_leaves_the_previous_output_and_says_how_far_it_got() {
    let (status, stderr) = stop_a_run(libc::SIGTERM);
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert_says_how_far(&stderr, "SIGTERM");
}

#[test]
fn sigkill_leaves_the_previous_output() {
    use std::os::unix::process::ExitStatusExt;
    let (status, stderr) = stop_a_run(libc::SIGKILL);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{stderr}");
}

#[test]
fn temporary_files_of_killed_writers_are_removed_by_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let input = sentences(dir.path(), "small.txt", "bank", 20);
    let output = dir.path().join("out.json");
    // A writer that is gone (its process has exited), one that still runs (this test), and a
    // file that only looks alike: only the first goes.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let stale = format!(".out.json.{}.AbC123.vecshift-tmp", gone.id());
    let live = format!(".out.json.{}.XyZ789.vecshift-tmp", std::process::id());
    let other = format!(".other.json.{}.AbC123.vecshift-tmp", gone.id());
    for name in [&stale, &live, &other] {
        std::fs::write(dir.path().join(name), "half a report").unwrap();
    }
    let out = Command::new(BIN).args(["report", "-q", "--word", "bank"]).arg(&input).arg("-o").arg(&output).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let mut want = vec![live, other, "out.json".to_owned(), "small.txt".to_owned()];
    want.sort();
    assert_eq!(listing(dir.path()), want);
}

#[test]
fn two_runs_writing_one_output_leave_one_whole_report() {
    let inputs = tempfile::tempdir().unwrap();
    let a = sentences(inputs.path(), "a.txt", "bank", 400);
    let b = sentences(inputs.path(), "b.txt", "spring", 400);
    let outputs = tempfile::tempdir().unwrap();
    let shared = outputs.path().join("report.json");
    std::fs::write(&shared, PREVIOUS).unwrap();

    let runs = [Run::start(&a, "bank", &shared), Run::start(&b, "spring", &shared)];
    for run in runs {
        let (status, stderr) = run.finish();
        assert!(status.success(), "{stderr}");
    }
    let result = std::fs::read_to_string(&shared).unwrap();
    let parsed: Value = serde_json::from_str(&result).unwrap_or_else(|e| panic!("not one JSON document ({e}): {result}"));
    assert_eq!(listing(outputs.path()), ["report.json"], "a temporary file was left behind");

    // Each run alone, for the whole outputs to compare with.
    let whole = |input: &Path, word: &str| {
        let path = inputs.path().join(format!("{word}.json"));
        let out = Command::new(BIN).args(["report", "-q", "--chunk", "64", "--word", word]).arg(input).arg("-o").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(path).unwrap()
    };
    let (whole_a, whole_b) = (whole(&a, "bank"), whole(&b, "spring"));
    assert!(result == whole_a || result == whole_b, "the file is neither run's whole report: {result}");
    let word = parsed["words"][0]["word"].as_str().unwrap();
    assert!(word == "bank" || word == "spring", "{word}");
}
