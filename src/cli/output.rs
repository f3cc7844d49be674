//! Writing results: JSON to stdout, and files that appear only when complete.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use vecshift::{Locator, Occurrence};

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) -> Result<()> {
    print_json_as(value, true)
}

/// Prints a value as JSON on stdout, indented or on one line.
pub fn print_json_as(value: &impl Serialize, pretty: bool) -> Result<()> {
    // Buffered: stdout's own buffer flushes at every line, a system call per line of JSON.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if pretty {
        serde_json::to_writer_pretty(&mut out, value)
    } else {
        serde_json::to_writer(&mut out, value)
    }
    .context("writing JSON to stdout")?;
    writeln!(out).and_then(|()| out.flush()).context("writing JSON to stdout")?;
    Ok(())
}

/// " (\"xyz\" is not in the vocabulary: its vector is built from subwords)" for the words a
/// fastText model answers from subwords, with a note on stderr (also for JSON); else nothing.
pub fn from_subwords(engine: &vecshift::StaticEngine, words: &[&str]) -> String {
    let built: Vec<String> = words
        .iter()
        .filter(|w| engine.lookup(w).is_ok_and(|v| v.source == vecshift::LookupSource::Subwords))
        .map(|w| format!("{w:?}"))
        .collect();
    if built.is_empty() {
        return String::new();
    }
    let (verb, pronoun) = if built.len() == 1 { ("is", "its vector is") } else { ("are", "their vectors are") };
    let text = format!("{} {verb} not in the vocabulary: {pronoun} built from subwords", built.join(", "));
    log::info!("{text}");
    format!(" ({text})")
}

/// What every temporary file of [`write_atomically`] ends with.
const TEMP_SUFFIX: &str = ".vecshift-tmp";

/// Writes a file through a temporary sibling that is renamed into place when complete, so a
/// failed or interrupted write never leaves a half file under the final name.
///
/// The temporary file is hidden and named after the target and this process,
/// `.NAME.PID.RANDOM.vecshift-tmp`, so that concurrent writers to the same path each have
/// their own (the last rename wins, and the file is always one writer's whole output). A
/// writer killed before it could clean up (SIGKILL) leaves its temporary file behind; the
/// next write to the same path removes those whose process is gone.
pub fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!("cannot write {}: the folder {} does not exist", path.display(), dir.display());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    remove_stale_temporaries(dir, &name);
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.{}.", std::process::id()))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    write(temp.path())?;
    // Temporary files are created owner-only; the result should have the permissions of the
    // file it replaces, or the usual rw-r--r-- of a new file.
    let permissions = match std::fs::metadata(path) {
        Ok(existing) => existing.permissions(),
        Err(_) => std::os::unix::fs::PermissionsExt::from_mode(0o644),
    };
    std::fs::set_permissions(temp.path(), permissions)
        .with_context(|| format!("cannot set the permissions of {}", temp.path().display()))?;
    temp.persist(path).with_context(|| format!("cannot move the finished file to {}", path.display()))?;
    Ok(())
}

/// Removes the temporary files that killed writers of `dir/name` left behind: those whose
/// process no longer runs. Files of live writers, and anything not named like ours, stay.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(pid, _)| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if pid > 0 && !process_alive(pid) && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a process with this id runs (or may run: one we may not signal counts as alive).
fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Where the target word is in the sentence(s), when a plain search is not what is wanted.
#[derive(Debug, Args)]
pub struct LocateArgs {
    /// Take the N-th whole-word match of the word (counting from 1).
    #[arg(long, value_name = "N", default_value_t = 1)]
    occurrence: usize,
    /// Explicit span of the word: UTF-8 byte offsets START..END (half-open).
    #[arg(long, value_name = "START..END", value_parser = parse_span, conflicts_with_all = ["token_index"])]
    span: Option<std::ops::Range<usize>>,
    /// The word is the N-th whitespace-separated token (from 0), as WiC gives it.
    #[arg(long, value_name = "N")]
    token_index: Option<usize>,
}

impl LocateArgs {
    /// The locator these options describe.
    pub fn locator(&self) -> Locator {
        match (&self.span, self.token_index) {
            (Some(span), _) => Locator::Span(span.clone()),
            (None, Some(index)) => Locator::TokenIndex(index),
            (None, None) => Locator::Search { nth: self.occurrence },
        }
    }

    /// Finds `word` in `sentence`. What `--span` or `--token-index` takes must be the word
    /// (they do not replace it); a token's surrounding punctuation is left out, with a note.
    pub fn occurrence(&self, sentence: &str, word: &str) -> Result<Occurrence> {
        let locator = self.locator();
        let occurrence = Occurrence::locate(word, sentence, &locator)?;
        let option = match (&self.span, self.token_index) {
            (Some(span), _) => format!("--span {}..{}", span.start, span.end),
            (None, Some(index)) => format!("--token-index {index}"),
            (None, None) => return Ok(occurrence),
        };
        let taken = occurrence.word();
        let whole = vecshift::occurrence::find_all(taken, word);
        if whole.len() != 1 || whole[0] != (0..taken.len()) {
            anyhow::bail!(
                "{option} takes {taken:?} from {:?}, which is not --word {word:?}; give the word's own position, or the word that is there",
                clip(sentence, 80)
            );
        }
        if let Locator::TokenIndex(index) = locator
            && let Some(token) = sentence.split_whitespace().nth(index)
            && token != taken
        {
            log::info!("{option} is the token {token:?}; took {taken:?} without the punctuation around it");
        }
        Ok(occurrence)
    }
}

/// `text` cut to at most `max` characters, with `…` where it was cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

fn parse_span(s: &str) -> Result<std::ops::Range<usize>, String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("expected START..END, got {s:?}"))?;
    let start = a.trim().parse().map_err(|_| format!("bad start offset {a:?}"))?;
    let end = b.trim().parse().map_err(|_| format!("bad end offset {b:?}"))?;
    Ok(start..end)
}

/// Formats a vector's first components for a table: `[0.123, -0.456, ... ]`.
pub fn preview(vector: &[f32], count: usize) -> String {
    let shown: Vec<String> = vector.iter().take(count).map(|v| format!("{v:+.3}")).collect();
    let more = if vector.len() > count { ", ..." } else { "" };
    format!("[{}{more}]", shown.join(", "))
}

/// Formats a cosine for a table; undefined values (zero vectors) show as `n/a`.
pub fn fmt_cos(value: f32) -> String {
    if value.is_nan() { "  n/a".into() } else { format!("{value:5.3}") }
}

/// Checks, before any work is done, that `path` can become an output file: it is not a folder
/// and its folder exists. (The write itself can still fail, e.g. for lack of permission.)
pub fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.is_dir() {
        anyhow::bail!("cannot write {}: it is a folder; name a file to write", path.display());
    }
    if !dir.is_dir() {
        let problem = if dir.exists() { "is a file, not a folder" } else { "does not exist" };
        anyhow::bail!("cannot write {}: the folder {} {problem}", path.display(), dir.display());
    }
    Ok(())
}

/// Warns when an engine's vector of `occurrence` (at `place`, e.g. "sentence 3") says less than it
/// seems: the sentence was cut to a window, or the word became the tokenizer's unknown token.
pub fn warn_about_embedding(engine: &dyn vecshift::Embedder, found: &vecshift::Embedding, occurrence: &vecshift::Occurrence, place: &str) {
    if let Some(total) = found.windowed_from {
        log::warn!(
            "{}: {place} has {total} tokens, longer than the model's {} positions: encoded a window of it around {:?}",
            engine.name(),
            engine.max_positions().unwrap_or_default(),
            occurrence.word()
        );
    }
    if found.has_unknown() {
        log::warn!(
            "{}: {place}: {:?} became the unknown token {:?}, so its vector says little about the word",
            engine.name(),
            occurrence.word(),
            found.unknown
        );
    }
}
