//! Sharded reports: one shard of the input per worker, each writing a [`Partial`] report, and
//! [`merge`] combining them into the report one process would give for the whole input.
//!
//! A [`Shard`] `I/N` reads the bytes from the first line start at or after `size * I / N` up to
//! the first at or after `size * (I + 1) / N`, so every line belongs to exactly one shard and a
//! worker reads only its own part of the file (plus the end of the line before it). A partial
//! report holds, per word and layer, the running sums and the sample of at most
//! `max_per_word` occurrences; the sample keeps the occurrences with the smallest keys of a
//! fixed hash of where and what they are, so the merged sample is exactly the one-process
//! sample. Sums are added in another order than one process adds them, so merged measures
//! equal the one-process ones to rounding (about 1e-12 relative).
//!
//! The file: the magic bytes `VECSHIFT-PART\n`, the format version (u32, little-endian), the
//! payload's length (u64) and SHA-256, then the payload in [postcard](https://docs.rs/postcard)
//! (a compact serde encoding: vectors as raw little-endian floats, counts as varints). JSON
//! would take about three times the bytes for the sampled vectors, which are nearly all of it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{BadRow, EngineInfo, InputFormat, InputInfo, Models, Report, WordState, build_report};
use crate::error::{Error, Result};

/// The version of the partial-report file format this build writes and reads (3: any number of
/// engines, each with its sums and sampled vectors).
pub const FORMAT_VERSION: u32 = 3;

/// What every partial report starts with.
const MAGIC: &[u8; 14] = b"VECSHIFT-PART\n";

/// Bytes of the input's start and end that go into its [`InputId::fingerprint`].
const FINGERPRINT_BYTES: u64 = 64 * 1024;

/// Shard `index` of `count` (`index` from 0, as Slurm array and Kubernetes indexed-job task
/// indices count); written and parsed as `I/N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 0 to `count - 1`.
    pub index: usize,
    /// How many shards the input is cut into.
    pub count: usize,
}

impl Shard {
    /// The whole input as one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// The byte range of the input (of `size` bytes) that this shard reads: whole lines, from
    /// the first line start at or after `size * I / N` to the first at or after
    /// `size * (I + 1) / N`. Only the bytes around the two cut points are read.
    pub fn byte_range(&self, input: &mut (impl Read + Seek), size: u64) -> std::io::Result<Range<u64>> {
        let cut = |i: usize| (u128::from(size) * i as u128 / self.count as u128) as u64;
        let start = line_start_at_or_after(input, size, cut(self.index))?;
        let end = line_start_at_or_after(input, size, cut(self.index + 1))?;
        Ok(start..end.max(start))
    }
}

/// The first line start at or after `position`: the position itself when the byte before it
/// ends a line, else just after the next newline (or the end of the input).
fn line_start_at_or_after(input: &mut (impl Read + Seek), size: u64, position: u64) -> std::io::Result<u64> {
    if position == 0 || position >= size {
        return Ok(position.min(size));
    }
    input.seek(SeekFrom::Start(position - 1))?;
    let mut reader = BufReader::new(input);
    let mut skipped = Vec::new();
    let read = reader.read_until(b'\n', &mut skipped)?;
    Ok(position - 1 + read as u64)
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidArgument(format!("{s:?} is not a shard: expected I/N with 0 <= I < N, e.g. 0/4 for the first of four"));
        let (index, count) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (index.trim().parse().map_err(|_| bad())?, count.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The input of a sharded report, as every part must share it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputId {
    /// The input's name as the report shows it (the path as given).
    pub name: String,
    /// How it is read.
    pub format: InputFormat,
    /// The words it is limited to (`--word`), as given.
    pub words: Vec<String>,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 (hex) of the size and the first and last 64 KiB: tells different files apart
    /// without any worker reading the whole file.
    pub fingerprint: String,
}

impl InputId {
    /// Identifies the file at `path`, shown as `name`.
    pub fn of_file(path: &Path, name: &str, format: InputFormat, words: &[String]) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut hasher = Sha256::new();
        hasher.update(size.to_le_bytes());
        let mut buffer = Vec::new();
        for start in [0, size.saturating_sub(FINGERPRINT_BYTES)] {
            buffer.clear();
            file.seek(SeekFrom::Start(start)).map_err(|e| Error::io(path, e))?;
            (&mut file).take(FINGERPRINT_BYTES).read_to_end(&mut buffer).map_err(|e| Error::io(path, e))?;
            hasher.update(&buffer);
        }
        Ok(InputId { name: name.to_owned(), format, words: words.to_vec(), size, fingerprint: hex(&hasher.finalize()) })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens shard `shard` of the file at `path`: a reader over exactly its bytes, and where they
/// are in the file (pass `range.start` to [`RecordReader::starting_at`](super::RecordReader::starting_at)).
pub fn open_shard(path: &Path, shard: Shard) -> Result<(impl BufRead + use<>, Range<u64>)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let range = shard.byte_range(&mut file, size).map_err(|e| Error::io(path, e))?;
    file.seek(SeekFrom::Start(range.start)).map_err(|e| Error::io(path, e))?;
    Ok((BufReader::new(file.take(range.end - range.start)), range))
}

/// The mergeable state of a report over one shard of its input.
#[derive(Serialize, Deserialize)]
pub struct Partial {
    /// The vecshift version that wrote it; parts of different versions are not merged.
    pub vecshift: String,
    /// The input.
    pub input: InputId,
    /// Which shard.
    pub shard: Shard,
    /// The shard's bytes in the input.
    pub range: Range<u64>,
    /// Lines in the shard.
    pub lines: usize,
    /// The first contextual and the first static engine.
    pub models: Models,
    /// Every engine, in order.
    pub engines: Vec<EngineInfo>,
    /// The cap on sampled vectors per word.
    pub max_per_word: usize,
    /// Occurrences analysed in the shard.
    pub occurrences: usize,
    pub(crate) words: Vec<WordState>,
    /// The shard's bad rows, numbered from the shard's first line.
    pub skipped: Vec<BadRow>,
    /// The file it was read from, for messages.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Partial {
    #[allow(clippy::too_many_arguments)] // the fields of a plain record
    pub(crate) fn new(
        input: InputId,
        shard: Shard,
        range: Range<u64>,
        lines: usize,
        engines: Vec<EngineInfo>,
        max_per_word: usize,
        occurrences: usize,
        words: Vec<WordState>,
        skipped: Vec<BadRow>,
    ) -> Self {
        let vecshift = env!("CARGO_PKG_VERSION").to_owned();
        let models = Models::of(&engines);
        Partial { vecshift, input, shard, range, lines, models, engines, max_per_word, occurrences, words, skipped, source: None }
    }

    /// Writes the file format described in the [module documentation](self).
    pub fn write_to(&self, out: &mut impl Write) -> Result<()> {
        let payload = postcard::to_stdvec(self).map_err(|e| Error::InvalidArgument(format!("cannot encode the partial report: {e}")))?;
        let io = |e| Error::io("<partial report>", e);
        out.write_all(MAGIC).map_err(io)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes()).map_err(io)?;
        out.write_all(&(payload.len() as u64).to_le_bytes()).map_err(io)?;
        out.write_all(&Sha256::digest(&payload)).map_err(io)?;
        out.write_all(&payload).map_err(io)
    }

    /// Reads a partial report file, checking its format version, length and checksum.
    pub fn read_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |reason: String| Error::Partial { path: path.to_owned(), reason };
        let header = MAGIC.len() + 4 + 8 + 32;
        if bytes.len() < header || !bytes.starts_with(MAGIC) {
            return Err(bad("not a vecshift partial report; make one with `vecshift report INPUT --shard I/N --partial FILE`".into()));
        }
        let field = |at: usize, len: usize| &bytes[MAGIC.len() + at..MAGIC.len() + at + len];
        let version = u32::from_le_bytes(field(0, 4).try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "partial-report format version {version}, but this vecshift ({}) reads version {FORMAT_VERSION}; make every part and merge with one vecshift version",
                env!("CARGO_PKG_VERSION")
            )));
        }
        let length = u64::from_le_bytes(field(4, 8).try_into().expect("8 bytes"));
        let payload = &bytes[header..];
        if payload.len() as u64 != length {
            return Err(bad(format!("truncated or padded: {} bytes of data where its header says {length}; make this shard again", payload.len())));
        }
        if Sha256::digest(payload).as_slice() != field(12, 32) {
            return Err(bad("damaged: the SHA-256 checksum of its data does not match; make this shard again".into()));
        }
        let mut partial: Partial =
            postcard::from_bytes(payload).map_err(|e| bad(format!("damaged: cannot decode its data ({e}); make this shard again")))?;
        if !partial.engines.iter().any(|e| e.kind == crate::engine::EngineKind::Contextual) {
            return Err(bad("damaged: it names no contextual engine; make this shard again".into()));
        }
        if let Some(word) = partial.words.iter().find(|w| !w.has_layers(&partial.engines)) {
            return Err(bad(format!("damaged: the state of {:?} does not have the layers of its engines; make this shard again", word.word())));
        }
        partial.source = Some(path.to_owned());
        Ok(partial)
    }

    /// Words seen in the shard.
    pub fn word_count(&self) -> usize {
        self.words.len()
    }

    /// The file name for messages.
    fn label(&self) -> String {
        self.source.as_ref().map_or_else(|| format!("shard {}", self.shard), |p| p.display().to_string())
    }
}

/// Combines the partial reports of every shard of one input into the report one process would
/// have written for the whole input; the parts may come in any order. Parts of different
/// inputs, engines, settings or vecshift versions, a shard given twice and a missing shard are
/// errors naming the files.
pub fn merge(parts: Vec<Partial>) -> Result<Report> {
    merge_with(parts, &super::Corrections::default())
}

/// [`merge`], also measuring what anisotropy corrections do (the report's `postprocess`
/// section) over the merged sample, which is the one-process sample, as
/// [`Analyzer::corrections`](super::Analyzer::corrections) does in one process. A `fit` corpus
/// must be embedded by the parts' first contextual engine.
pub fn merge_with(mut parts: Vec<Partial>, corrections: &super::Corrections) -> Result<Report> {
    let Some(first) = parts.first() else {
        return Err(Error::InvalidArgument("nothing to merge: name the partial reports (.vspart files)".into()));
    };
    for part in &parts[1..] {
        if let Some(reason) = mismatch(first, part) {
            return Err(Error::Partial { path: part.source.clone().unwrap_or_default(), reason });
        }
    }
    parts.sort_by_key(|p| p.shard.index);
    let count = parts[0].shard.count;
    if let Some(pair) = parts.windows(2).find(|pair| pair[0].shard.index == pair[1].shard.index) {
        return Err(Error::InvalidArgument(format!("shard {} is given twice: {} and {}", pair[0].shard, pair[0].label(), pair[1].label())));
    }
    if let Some(missing) = (0..count).find(|&i| parts.get(i).is_none_or(|p| p.shard.index != i)) {
        return Err(Error::InvalidArgument(format!(
            "shard {missing}/{count} is missing: merge needs all {count} parts of {} ({} given)",
            parts[0].input.name,
            parts.len()
        )));
    }
    let mut expected_start = 0;
    for part in &parts {
        if part.range.start != expected_start {
            return Err(Error::Partial { path: part.source.clone().unwrap_or_default(), reason: format!("its bytes start at {} where the shard before it ended at {expected_start}", part.range.start) });
        }
        expected_start = part.range.end;
    }

    let head = &parts[0];
    let (input_id, engines, max_per_word) = (head.input.clone(), head.engines.clone(), head.max_per_word);
    let mut words: Vec<WordState> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let (mut lines, mut occurrences, mut skipped) = (0, 0, Vec::new());
    // Parts in input order, and each part's words in order of first appearance: the first part
    // where a word appears places it, as one process would.
    for part in parts {
        for mut state in part.words {
            match index.get(state.word()) {
                Some(&i) => WordState::absorb(&mut words[i], state, lines, max_per_word),
                None => {
                    state.shift_lines(lines);
                    index.insert(state.word().to_owned(), words.len());
                    words.push(state);
                }
            }
        }
        skipped.extend(part.skipped.into_iter().map(|b| BadRow { line: b.line + lines, ..b }));
        lines += part.lines;
        occurrences += part.occurrences;
    }
    let input = InputInfo { name: input_id.name, format: input_id.format, lines };
    if let Some((name, corpus)) = &corrections.fit {
        let layers = engines.iter().find(|e| e.kind == crate::engine::EngineKind::Contextual).map_or(0, |e| e.layers);
        if let Some(v) = corpus.iter().find(|v| v.num_layers() != layers) {
            return Err(Error::InvalidArgument(format!(
                "the --fit corpus {name} has {} layers per vector, the parts' first contextual engine {layers}: embed it with the parts' model",
                v.num_layers()
            )));
        }
    }
    Ok(build_report(input, engines, max_per_word, occurrences, words, skipped, corrections))
}

/// Why `part` cannot be merged with `first`, in one line, if it cannot.
fn mismatch(first: &Partial, part: &Partial) -> Option<String> {
    let (a, b) = (&first.input, &part.input);
    let other = first.label();
    if part.vecshift != first.vecshift {
        return Some(format!("made by vecshift {}, but {other} by vecshift {}; make every part with one version", part.vecshift, first.vecshift));
    }
    if (&b.name, b.size, &b.fingerprint) != (&a.name, a.size, &a.fingerprint) {
        return Some(format!(
            "a shard of another input than {other}: {} ({} bytes) against {} ({} bytes{})",
            b.name,
            b.size,
            a.name,
            a.size,
            if (&b.name, b.size) == (&a.name, a.size) { ", same name and size but other contents" } else { "" }
        ));
    }
    if (b.format, &b.words) != (a.format, &a.words) {
        return Some(format!(
            "its input was read as {} with --word {:?}, but {other}'s as {} with --word {:?}",
            b.format, b.words, a.format, a.words
        ));
    }
    if part.engines != first.engines {
        let describe = |engines: &[EngineInfo]| {
            let each: Vec<String> = engines
                .iter()
                .map(|e| match e.pooling {
                    Some(pooling) => format!("{} {} ({} layers, {} dims, {pooling} pooling)", e.architecture.to_uppercase(), e.name, e.layers, e.dims),
                    None => format!("static {} ({} dims)", e.name, e.dims),
                })
                .collect();
            each.join(", ")
        };
        return Some(format!("made with {}, but {other} with {}", describe(&part.engines), describe(&first.engines)));
    }
    if part.max_per_word != first.max_per_word {
        return Some(format!("made with --max-per-word {}, but {other} with {}", part.max_per_word, first.max_per_word));
    }
    if part.shard.count != first.shard.count {
        return Some(format!("shard {} of a split into {}, but {other} is shard {} of {}", part.shard, part.shard.count, first.shard, first.shard.count));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cut_at_line_starts_and_cover_the_input() {
        let text = "one\ntwo two\n\nthree three three\nfour\nfive";
        for count in 1..=12 {
            let mut pieces = Vec::new();
            let mut end = 0;
            for index in 0..count {
                let range = Shard { index, count }.byte_range(&mut std::io::Cursor::new(text), text.len() as u64).unwrap();
                assert_eq!(range.start, end, "{index}/{count}: shards follow each other");
                assert!(range.start == 0 || text.as_bytes()[range.start as usize - 1] == b'\n', "{index}/{count} starts a line");
                end = range.end;
                pieces.push(&text[range.start as usize..range.end as usize]);
            }
            assert_eq!(end, text.len() as u64);
            assert_eq!(pieces.concat(), text, "{count} shards");
        }
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/7".parse::<Shard>().unwrap(), Shard { index: 2, count: 7 });
        assert_eq!(Shard { index: 0, count: 1 }.to_string(), "0/1");
        for bad in ["7/7", "1/0", "1", "-1/3", "a/b", "1/2/3"] {
            assert!(bad.parse::<Shard>().unwrap_err().to_string().contains("I/N"), "{bad}");
        }
    }
}
