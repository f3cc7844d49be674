//! The checks of the fuzz targets (see `fuzz_targets/` and `README.md`), one function per
//! target. `tests/fuzz_regressions.rs` includes this file to replay the crashes found.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use vecshift::eval::wic::WicSet;
use vecshift::occurrence::find_all;
use vecshift::report::{InputFormat, RecordReader};
use vecshift::{Embedder, Locator, Occurrence, StaticEngine, VectorFormat};

mod fold;
use fold::folded;

/// The binary's run-time data lookup, which `sentences` uses to find bundled example sets: here
/// only the source tree's data/ (its own tests open the bundled sets); the fuzz targets read
/// only the inputs they are given.
mod data {
    pub fn find(relative: &str) -> Option<std::path::PathBuf> {
        let path = vecshift::source::source_tree_data_dir().join(relative);
        path.exists().then_some(path)
    }
}

/// The strict sentence reader of `compare` and the UI, which lives in the binary.
#[path = "../../src/cli/sentences.rs"]
#[allow(dead_code)]
mod sentences;

/// Every target, by name.
pub const TARGETS: [&str; 10] = [
    "occurrence",
    "input_text",
    "input_tsv",
    "input_jsonl",
    "input_wic",
    "vectors_word2vec_bin",
    "vectors_word2vec_text",
    "vectors_glove",
    "vectors_finalfusion",
    "vectors_fasttext",
];

/// Runs the checks of `target` on one input; panics on a failed check.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "occurrence" => occurrence(data),
        "input_text" => input_text(data),
        "input_tsv" => input_tsv(data),
        "input_jsonl" => {
            let (words, file) = words_and_file(data);
            check_records(file, InputFormat::Jsonl, &words);
        }
        "input_wic" => input_wic(data),
        "vectors_word2vec_bin" => check_vectors(data, VectorFormat::Word2VecBinary),
        "vectors_word2vec_text" => check_vectors(data, VectorFormat::Word2VecText),
        "vectors_glove" => check_vectors(data, VectorFormat::Glove),
        "vectors_finalfusion" => check_vectors(data, VectorFormat::Finalfusion),
        "vectors_fasttext" => check_vectors(data, VectorFormat::FastText),
        _ => panic!("unknown fuzz target {target:?}"),
    }
}

/// What the occurrence target decodes its bytes into.
#[derive(Arbitrary, Debug)]
struct OccurrenceInput<'a> {
    sentence: &'a str,
    word: &'a str,
    nth: u8,
    start: u16,
    end: u16,
    token: u8,
}

/// The occurrence finder, every `Locator` kind: found spans are ordered, lie on character
/// boundaries and slice back to the word (ignoring case); nothing panics.
pub fn occurrence(data: &[u8]) {
    // Decoded the way libFuzzer's `fuzz_target!(|input: T| ...)` decodes.
    let Ok(input) = OccurrenceInput::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let OccurrenceInput { sentence, word, .. } = input;
    let all = find_all(sentence, word);
    let mut after = 0;
    for span in &all {
        assert!(after <= span.start && span.start < span.end, "{all:?}");
        let found = sentence.get(span.clone()).expect("a span on character boundaries");
        assert_eq!(folded(found), folded(word.trim()), "{span:?}");
        after = span.end;
    }

    let nth = usize::from(input.nth);
    match Occurrence::locate(word, sentence, &Locator::Search { nth }) {
        Ok(occ) => {
            assert_eq!(Some(&occ.span()), all.get(nth.wrapping_sub(1)));
            assert_eq!(folded(occ.word()), folded(word.trim()));
        }
        Err(_) => assert!(nth == 0 || nth > all.len()),
    }

    let span = usize::from(input.start)..usize::from(input.end);
    match Occurrence::locate(word, sentence, &Locator::Span(span.clone())) {
        Ok(occ) => {
            assert_eq!(occ.span(), span);
            assert!(!occ.word().is_empty());
        }
        Err(_) => assert!(span.is_empty() || sentence.get(span).is_none()),
    }

    let token = usize::from(input.token);
    match Occurrence::locate(word, sentence, &Locator::TokenIndex(token)) {
        Ok(occ) => assert_eq!(Some(occ.word()), sentence.split_whitespace().nth(token)),
        Err(_) => assert!(sentence.split_whitespace().nth(token).is_none()),
    }
}

/// Plain text: the report's `RecordReader` and the strict reader of `compare`/the UI. The
/// first input line holds the tab-separated target words.
pub fn input_text(data: &[u8]) {
    let (words, file) = words_and_file(data);
    check_records(file, InputFormat::Text, &words);
    if let Ok(text) = std::str::from_utf8(file)
        && let Ok(rows) = sentences::parse("fuzz", text)
    {
        assert!(rows.iter().all(|row| !row.text.trim().is_empty()));
    }
}

/// TSV: the report's `RecordReader` and the strict reader of `compare`/the UI. The first
/// input line holds the tab-separated word filter.
pub fn input_tsv(data: &[u8]) {
    let (words, file) = words_and_file(data);
    check_records(file, InputFormat::Tsv, &words);
    if let Ok(text) = std::str::from_utf8(file)
        && let Ok(rows) = sentences::parse("fuzz", text)
    {
        for row in rows {
            assert!(!row.text.trim().is_empty());
            assert!(row.word.is_none_or(|w| !w.is_empty()));
        }
    }
}

/// WiC: the report's `RecordReader`, and the evaluation's `WicSet::read` with a gold file
/// (the input after a NUL byte). The first input line holds the tab-separated word filter.
pub fn input_wic(data: &[u8]) {
    let (words, file) = words_and_file(data);
    let (file, gold) = match file.iter().position(|&b| b == 0) {
        Some(nul) => (&file[..nul], &file[nul + 1..]),
        None => (file, &b""[..]),
    };
    check_records(file, InputFormat::Wic, &words);

    let (data_path, gold_path) = (scratch("data.txt"), scratch("gold.txt"));
    std::fs::File::create(&data_path).and_then(|mut f| f.write_all(file)).expect("write the scratch file");
    std::fs::File::create(&gold_path).and_then(|mut f| f.write_all(gold)).expect("write the scratch file");
    let read = WicSet::read(&data_path, &gold_path);
    let _ = (std::fs::remove_file(&data_path), std::fs::remove_file(&gold_path));
    if let Ok(set) = read {
        assert_eq!(set.labels().len(), set.pairs.len());
        for pair in &set.pairs {
            let _ = (pair.first.word(), pair.second.word());
        }
    }
}

/// The system allocator, counting per thread the bytes allocated now and their peak (so
/// that other threads, test threads say, do not disturb a measurement).
struct Counting;

thread_local! {
    // Signed: a block freed on another thread than the one that allocated it counts there.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: thread-local storage is gone while a thread shuts down.
    let _ = LIVE.try_with(|live| {
        live.set(live.get().wrapping_add(delta));
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it had allocated at once on this
/// thread (beyond what was live before).
pub fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let result = f();
    (result, PEAK.with(Cell::get).saturating_sub(before) as usize)
}

/// A per-process scratch file the file-reading targets write each input to: in memory
/// (`/dev/shm`) where there is one, as writing to a busy disk is most of an execution's time.
fn scratch(ext: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { shm.to_owned() } else { std::env::temp_dir() };
    dir.join(format!("vecshift-fuzz-{}.{ext}", std::process::id()))
}

/// Fixed cost of opening a vector file whatever its size: the 1 MiB read buffer and friends.
const ALLOCATION_SLACK: usize = 8 << 20;
/// Heap bytes allowed per byte of file: words become `String`s in a `Vec` and a `HashSet`,
/// text components become `f32`s, vectors are normalised into a copy.
const ALLOCATION_PER_BYTE: usize = 64;

/// Opens `data` as a vector file of `format`: it must give `Ok` or `Err` without panicking,
/// allocate in proportion to its size, and a model it accepts must answer queries.
fn check_vectors(data: &[u8], format: VectorFormat) {
    let path = scratch(format.name());
    std::fs::File::create(&path).and_then(|mut f| f.write_all(data)).expect("write the scratch file");
    let (opened, peak) = peak_allocation(|| StaticEngine::open_with(&path, &vecshift::OpenOptions::default().format(format)).ok());
    // A finalfusion engine keeps the file mapped, which outlives the name.
    let _ = std::fs::remove_file(&path);
    assert!(
        peak <= ALLOCATION_SLACK + ALLOCATION_PER_BYTE * data.len(),
        "opening {} bytes allocated {peak} bytes at once",
        data.len()
    );
    let Some(engine) = opened else { return };
    let dims = engine.dims();
    assert!(engine.vocab_len() > 0, "an accepted file holds words");
    let words: Vec<String> = engine.words().iter().take(3).cloned().collect();
    for word in words.iter().map(String::as_str).chain(["zzqx-unknown", "É", ""]) {
        if let Ok(found) = engine.lookup(word) {
            assert_eq!(found.vector.len(), dims, "{word:?}");
        }
        // Zero or unknown vectors give an error, never a panic.
        let _ = engine.neighbors(word, 3);
    }
    if let [a, b, c, ..] = &words[..] {
        let _ = engine.analogy(a, b, c, 2);
    }
    let occurrence = vecshift::Occurrence::find(&words[0], &words[0]);
    if let Ok(occurrence) = occurrence {
        let _ = engine.embed_batch(&[occurrence], vecshift::Pooling::Mean);
    }
}

/// Splits the input into a first line (tab-separated target words) and the file.
fn words_and_file(data: &[u8]) -> (Vec<String>, &[u8]) {
    let (first, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &data[data.len()..]),
    };
    let words = String::from_utf8_lossy(first).split('\t').map(str::to_owned).filter(|w| !w.is_empty()).collect();
    (words, rest)
}

/// Reads `file` as `format` with a [`RecordReader`]: every row is a record or a bad row,
/// numbered in order, and every record's span lies on character boundaries of its sentence.
fn check_records(file: &[u8], format: InputFormat, words: &[String]) {
    let Ok(reader) = RecordReader::new(file, format, words) else {
        assert!(format == InputFormat::Text && words.iter().all(|w| w.trim().is_empty()));
        return;
    };
    let lines = file.split(|&b| b == b'\n').count();
    let mut expected_line = 0;
    for row in reader {
        let row = row.expect("reading from memory cannot fail");
        expected_line += 1;
        assert!(expected_line <= lines);
        match row {
            Ok(records) => {
                for record in records {
                    assert_eq!(record.line, expected_line);
                    let occurrence = &record.occurrence;
                    assert!(occurrence.span().start < occurrence.span().end, "{occurrence:?}");
                    assert!(occurrence.sentence().get(occurrence.span()).is_some(), "{occurrence:?}");
                    let _ = occurrence.word();
                }
            }
            Err(bad) => {
                assert_eq!(bad.line, expected_line);
                assert!(!bad.reason.is_empty());
            }
        }
    }
}
