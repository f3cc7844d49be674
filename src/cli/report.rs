//! `vecshift report`: similarity measures per word and layer over many sentences, streamed.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{HumanCount, ProgressBar, ProgressFinish, ProgressState, ProgressStyle};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use vecshift::Embedder;
use vecshift::report::partial::open_shard;
use vecshift::report::{
    Analyzer, BadRow, Corrections, DEFAULT_MAX_PER_WORD, InputFormat, InputId, InputInfo, OutputFormat, Partial, RecordReader, Report, ReportOptions, Shard,
};

use vecshift::analysis::postprocess::Postprocess;

use super::GlobalArgs;
use super::output::{check_writable, write_atomically};

/// Arguments of `report`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: Option<ReportCommand>,
    /// Input: plain text (one sentence per line), TSV `word<TAB>sentence[<TAB>sense]`, JSONL
    /// `{"word", "sentence", "span"?, "sense"?}` or WiC data; `-` or nothing reads stdin.
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,
    /// Target word (repeat or separate with commas). Needed for plain text; for the other
    /// formats it keeps only these words.
    #[arg(long, short, value_delimiter = ',')]
    word: Vec<String>,
    /// text, tsv, jsonl or wic. Default: from the file name (.txt, .tsv, .jsonl, WiC's .data.txt);
    /// stdin is text with --word, else tsv.
    #[arg(long, value_name = "FORMAT", value_parser = parse_input_format)]
    input_format: Option<InputFormat>,
    /// json, jsonl, csv, md or html. Default: from --output's extension, else json with --json, else md.
    #[arg(long, short, value_name = "FORMAT", value_parser = parse_output_format)]
    format: Option<OutputFormat>,
    /// Write the report to this file (it replaces the old one only once complete). Default: stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Occurrence vectors kept per word for first-PC variance and the sense measures (a
    /// reproducible uniform sample when a word has more); the other measures use all occurrences.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PER_WORD)]
    max_per_word: usize,
    /// Stop with an error at the first bad line instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// No progress bar and no closing note.
    #[arg(long, short)]
    quiet: bool,
    /// Occurrences embedded per step; BERT sorts each step by length and encodes 32 at a time.
    #[arg(long, value_name = "N", default_value_t = 256)]
    chunk: usize,
    /// Process only shard I of N (I from 0 to N-1): the lines starting in the I-th N-th of the
    /// file's bytes. Needs --partial; `report merge` combines the parts.
    #[arg(long, value_name = "I/N", value_parser = parse_shard, requires = "partial")]
    shard: Option<Shard>,
    /// Write the mergeable state (sums and samples; versioned, checksummed) to this file
    /// instead of a report (by convention NAME.vspart).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["output", "format"])]
    partial: Option<PathBuf>,
    /// Also measure what anisotropy corrections do to self-similarity per layer (comma-separated:
    /// none, center, all-but-the-top:D, whiten, standardize): each is fitted per layer on the
    /// sampled occurrences of all words (or on --fit) and applied before the cosines, over the
    /// sample. A "postprocess" section in JSON, a table in Markdown and HTML (not in CSV); the
    /// other measures stay raw, and the static vectors are not corrected. Not with --partial.
    #[arg(long, value_delimiter = ',', value_name = "LIST", conflicts_with = "partial")]
    postprocess: Vec<Postprocess>,
    #[command(flatten)]
    fit: super::postprocess::FitArgs,
    #[command(flatten)]
    pub bert: super::BertArgs,
    #[command(flatten)]
    pub vectors: super::VectorArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Combine the partial reports (--partial) of every shard of one input into the report a
    /// single process gives for the whole input.
    Merge(MergeArgs),
}

/// Arguments of `report merge`.
#[derive(Debug, Args)]
struct MergeArgs {
    /// The partial reports, one per shard, in any order.
    #[arg(required = true, value_name = "PART")]
    parts: Vec<PathBuf>,
    #[command(flatten)]
    json: super::JsonArgs,
    /// json, jsonl, csv, md or html. Default: from --output's extension, else json with --json, else md.
    #[arg(long, short, value_name = "FORMAT", value_parser = parse_output_format)]
    format: Option<OutputFormat>,
    /// Write the report to this file (it replaces the old one only once complete). Default: stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// As `report --postprocess`: what anisotropy corrections do to self-similarity per layer,
    /// measured over the merged sample (the one-process sample), so the "postprocess" section
    /// equals the one-process report's.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    postprocess: Vec<Postprocess>,
    /// --fit is embedded by the first contextual model, given before `report` as for the shards
    /// (`vecshift --bert DIR report merge ...`; default the embedded MiniLM): it must be the
    /// parts' first contextual engine.
    #[command(flatten)]
    fit: super::postprocess::FitArgs,
    /// No closing note.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    s.parse().map_err(|e: vecshift::Error| e.to_string())
}

fn parse_input_format(s: &str) -> Result<InputFormat, String> {
    s.parse().map_err(|e: vecshift::Error| e.to_string())
}

fn parse_output_format(s: &str) -> Result<OutputFormat, String> {
    s.parse().map_err(|e: vecshift::Error| e.to_string())
}

/// The input file, unless it is stdin.
fn input_path(args: &ReportArgs) -> Option<&Path> {
    args.input.as_deref().filter(|p| p.as_os_str() != "-")
}

/// The output file, unless it is stdout.
fn output_file(output: Option<&Path>) -> Option<&Path> {
    output.filter(|p| p.as_os_str() != "-")
}

/// The report's format: `--format`, else from the file name, else JSON with `--json`, else Markdown.
/// The report's format: `--format`, else `-o`'s extension, else JSON with `--json`, else
/// Markdown. Options that contradict each other, and an extension that names no format, are
/// refused rather than one of them silently winning.
fn output_format(format: Option<OutputFormat>, output: Option<&Path>, json: bool) -> Result<OutputFormat> {
    let extension = output.and_then(|p| p.extension()).map(|e| e.to_string_lossy().into_owned());
    let from_extension = match (&extension, output) {
        (Some(extension), Some(path)) => match OutputFormat::from_path(path) {
            Some(found) => Some(found),
            None if format.is_none() => bail!(
                "-o {}: .{extension} is not a report format (json, jsonl, csv, md, html); change the extension or pass --format",
                path.display()
            ),
            None => None,
        },
        _ => None,
    };
    let is_json = |f: OutputFormat| matches!(f, OutputFormat::Json | OutputFormat::Jsonl);
    if let (Some(given), Some(implied), Some(path)) = (format, from_extension, output)
        && given != implied
    {
        bail!("--format {} contradicts -o {} ({}); make them agree", given.name(), path.display(), implied.name());
    }
    let chosen = format.or(from_extension);
    if let Some(chosen) = chosen.filter(|&f| json && !is_json(f)) {
        bail!("--json contradicts the {} format asked for (--format or -o's extension); leave one of them out", chosen.name());
    }
    Ok(chosen.unwrap_or(if json { OutputFormat::Json } else { OutputFormat::Md }))
}

/// Lines in a file, for the progress bar's length and ETA (a quick pass before the slow one).
fn count_lines(path: &Path) -> Option<u64> {
    let mut reader = BufReader::new(File::open(path).ok()?);
    let mut lines = 0;
    loop {
        let buffer = reader.fill_buf().ok()?;
        if buffer.is_empty() {
            return Some(lines);
        }
        lines += buffer.iter().filter(|&&b| b == b'\n').count() as u64;
        let consumed = buffer.len();
        reader.consume(consumed);
    }
}

fn progress_bar(quiet: bool, path: Option<&Path>) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{:.0} lines/s", state.per_sec());
    };
    let bar = match path.and_then(count_lines) {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} lines  {rate}  ETA {eta}")
                .expect("valid template")
                .with_key("rate", rate)
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {human_pos} lines  {rate}")
                .expect("valid template")
                .with_key("rate", rate),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    // An error ends the run early: the bar must not be left half drawn above it.
    bar.with_finish(ProgressFinish::AndClear)
}

/// How long the reading loop has, after SIGINT or SIGTERM, to stop by itself at the end of a
/// chunk before the watcher thread stops the process (a long chunk, or stdin awaiting input).
const GRACE: Duration = Duration::from_secs(2);

/// Ctrl-C (SIGINT) and `kill` (SIGTERM) during a report.
///
/// Nothing is written before the report is complete, so a stop loses only the work done:
/// the reading loop checks [`Interrupts::signal`] at every line and stops with a message
/// saying how far it got, the output file is left as it was, and the exit status is
/// 128 + the signal (130 for Ctrl-C, 143 for SIGTERM). When the loop does not get there
/// within [`GRACE`], or on a second signal, the watcher thread stops the process itself,
/// except while the finished report is being written: the writer then checks the flag
/// before its rename, and its temporary file is removed.
struct Interrupts {
    shared: Arc<Shared>,
}

struct Shared {
    /// The first signal received, or 0.
    signal: AtomicI32,
    /// Input lines read so far.
    lines: AtomicU64,
    /// Set once the output is being written; the watcher does not stop the process then.
    writing: Mutex<bool>,
    input: Option<PathBuf>,
    output: Option<PathBuf>,
}

impl Interrupts {
    /// Catches SIGINT and SIGTERM from now on; `bar` is cleared before the message.
    fn watch(input: Option<&Path>, output: Option<&Path>, bar: ProgressBar) -> Result<Self> {
        let shared = Arc::new(Shared {
            signal: AtomicI32::new(0),
            lines: AtomicU64::new(0),
            writing: Mutex::new(false),
            input: input.map(Path::to_owned),
            output: output.map(Path::to_owned),
        });
        let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot catch SIGINT and SIGTERM")?;
        let watcher = Arc::clone(&shared);
        std::thread::Builder::new().name("vecshift-signals".into()).spawn(move || {
            let Some(first) = signals.forever().next() else { return };
            watcher.signal.store(first, Ordering::SeqCst);
            let deadline = Instant::now() + GRACE;
            loop {
                std::thread::sleep(Duration::from_millis(50));
                let again = signals.pending().next().is_some();
                if again || Instant::now() >= deadline {
                    // Held until the exit, so that no write can start in between.
                    let writing = watcher.writing.lock().unwrap_or_else(|e| e.into_inner());
                    if !*writing {
                        bar.finish_and_clear();
                        watcher.exit(first);
                    }
                }
            }
        })?;
        Ok(Interrupts { shared })
    }

    /// The signal that asks to stop, if one came.
    fn signal(&self) -> Option<i32> {
        Some(self.shared.signal.load(Ordering::SeqCst)).filter(|&s| s != 0)
    }

    /// Records progress for the message.
    fn lines_read(&self, lines: usize) {
        self.shared.lines.store(lines as u64, Ordering::SeqCst);
    }

    /// From here on the output is being written and the watcher leaves the stop to the writer.
    fn start_writing(&self) {
        *self.shared.writing.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// Stops the process if a signal came.
    fn stop_if_asked(&self, bar: &ProgressBar) {
        if let Some(signal) = self.signal() {
            bar.finish_and_clear();
            self.shared.exit(signal);
        }
    }
}

impl Shared {
    /// Says how far the run got and exits with 128 + the signal.
    fn exit(&self, signal: i32) -> ! {
        let lines = self.lines.load(Ordering::SeqCst);
        let of = match self.input.as_deref() {
            Some(path) => count_lines(path).map(|total| format!(" of {}", HumanCount(total))).unwrap_or_default(),
            None => " of stdin".into(),
        };
        let kept = match &self.output {
            Some(path) => format!("{} left unchanged", path.display()),
            None => "no report written".into(),
        };
        let name = if signal == SIGINT { "Ctrl-C (SIGINT)" } else { "SIGTERM" };
        eprintln!("interrupted by {name} after {} lines{of}; {kept}", HumanCount(lines));
        std::process::exit(128 + signal)
    }
}

fn strict_error(bad: &BadRow) -> anyhow::Error {
    anyhow::anyhow!("{bad} (stopped by --strict; without it, bad lines are skipped and listed)")
}

pub fn run(global: &GlobalArgs, args: ReportArgs) -> Result<()> {
    if let Some(ReportCommand::Merge(merge_args)) = args.command {
        return merge(global, merge_args);
    }
    if args.max_per_word < 2 {
        bail!("--max-per-word must be at least 2 (pairs of occurrences are compared)");
    }
    if args.chunk == 0 {
        bail!("--chunk must be at least 1");
    }
    if args.fit.fit.is_some() && args.postprocess.iter().all(|&p| p == Postprocess::None) {
        bail!("--fit is the corpus that --postprocess corrections are fitted on; add --postprocess (e.g. --postprocess none,center,whiten)");
    }
    let path = input_path(&args);
    if let Some(path) = path.filter(|p| p.is_dir()) {
        bail!("the input {} is a folder; name a text, TSV, JSONL or WiC file", path.display());
    }
    let name = path.map_or_else(|| "stdin".to_owned(), |p| p.display().to_string());
    let format = match (args.input_format, path) {
        (Some(format), _) => format,
        (None, Some(path)) => InputFormat::from_path(path).with_context(|| {
            format!("cannot tell the format of {} from its name; pass --input-format text, tsv, jsonl or wic", path.display())
        })?,
        (None, None) if args.word.is_empty() => InputFormat::Tsv,
        (None, None) => InputFormat::Text,
    };
    let output = output_file(args.output.as_deref());
    let output_format = output_format(args.format, output, global.json)?;
    // A shard's state goes to --partial; the whole input as one part when only that is given.
    let sharded = match (&args.partial, path) {
        (None, _) => None,
        (Some(_), None) => bail!("--shard and --partial need the input as a file (each worker reads its own part of it), not stdin"),
        (Some(partial), Some(path)) => {
            let shard = args.shard.unwrap_or(Shard::WHOLE);
            let id = InputId::of_file(path, &name, format, &args.word)?;
            Some((partial.as_path(), shard, id))
        }
    };
    // Fail before the long run, not after it.
    if let Some(path) = output.or(sharded.as_ref().map(|s| s.0)) {
        check_writable(path)?;
    }

    let (input, range): (Box<dyn BufRead>, _) = match (path, &sharded) {
        (Some(path), Some((_, shard, _))) => {
            let (reader, range) = open_shard(path, *shard).with_context(|| format!("cannot read shard {shard} of {}", path.display()))?;
            (Box::new(reader), range)
        }
        (Some(path), None) => {
            let file = File::open(path).with_context(|| format!("cannot open the input file {}", path.display()))?;
            (Box::new(BufReader::new(file)), 0..0)
        }
        (None, _) => {
            if std::io::stdin().is_terminal() {
                eprintln!("reading sentences from stdin (end with Ctrl-D)");
            }
            (Box::new(std::io::stdin().lock()), 0..0)
        }
    };
    let mut reader = RecordReader::new(input, format, &args.word)?.starting_at(range.start);
    // A shard's bar counts its own lines, which only a pass over the whole file would number.
    let bar = progress_bar(args.quiet, path.filter(|_| sharded.is_none()));
    let interrupts = Interrupts::watch(path, output.or(sharded.as_ref().map(|s| s.0)), bar.clone())?;
    if sharded.is_some() && !global.variants.is_empty() {
        bail!("--variant does not work with --partial yet; run the report of variants in one process");
    }
    // Every engine, in the order of the command line: contextual ones first, as --bert and
    // --vectors are listed in --help.
    let statics = global.load_static_engines()?;
    let contextuals = global.load_contextual_engines()?;
    let engines: Vec<&dyn Embedder> =
        contextuals.iter().map(|e| e as &dyn Embedder).chain(statics.iter().map(|e| e as &dyn Embedder)).collect();
    let options = ReportOptions { max_per_word: args.max_per_word, pooling: global.pooling };
    // --fit is embedded by the first contextual engine, whose self-similarity the corrections change.
    let corrections = Corrections { methods: args.postprocess.clone(), fit: args.fit.vectors(&contextuals[0])? };
    let mut analyzer = Analyzer::with_engines(&engines, options)?.corrections(corrections);
    // The variants' drift is measured on the first occurrences of each word, up to --max-per-word.
    let mut drift_sample: Vec<vecshift::report::Record> = Vec::new();
    let mut per_word: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut skipped = Vec::new();
    let mut chunk = Vec::with_capacity(args.chunk);
    let mut flush = |chunk: &mut Vec<vecshift::report::Record>, skipped: &mut Vec<BadRow>| -> Result<()> {
        if !global.variants.is_empty() {
            for record in chunk.iter() {
                let count = per_word.entry(record.word.to_lowercase()).or_default();
                if *count < args.max_per_word && drift_sample.len() < MAX_DRIFT_SAMPLE {
                    *count += 1;
                    drift_sample.push(record.clone());
                }
            }
        }
        let bad = analyzer.add(chunk)?;
        if let (true, Some(first)) = (args.strict, bad.first()) {
            return Err(strict_error(first));
        }
        skipped.extend(bad);
        chunk.clear();
        Ok(())
    };
    while let Some(row) = reader.next() {
        interrupts.stop_if_asked(&bar);
        match row.with_context(|| format!("reading {name}"))? {
            Ok(records) => chunk.extend(records),
            Err(bad) if args.strict => {
                // An earlier line of the pending chunk may be bad too (BERT finds some): it comes first.
                flush(&mut chunk, &mut skipped)?;
                return Err(strict_error(&bad));
            }
            Err(bad) => skipped.push(bad),
        }
        if chunk.len() >= args.chunk {
            flush(&mut chunk, &mut skipped)?;
            let lines = reader.lines_read();
            bar.set_position(lines as u64);
            interrupts.lines_read(lines);
            log::debug!("report: {} lines read", HumanCount(lines as u64));
        }
    }
    flush(&mut chunk, &mut skipped)?;
    interrupts.lines_read(reader.lines_read());
    interrupts.stop_if_asked(&bar);
    bar.finish_and_clear();

    let lines = reader.lines_read();
    if let Some((partial_path, shard, id)) = sharded {
        // An empty shard is no error: others may hold every usable line.
        let bad = skipped.len();
        let part = analyzer.into_partial(id, shard, range, lines, skipped);
        if bad > 0 {
            eprintln!("warning: skipped {bad} bad line(s) of shard {shard} (the merged report lists them under \"skipped\" with their line numbers in {name})");
        }
        let what = format!("shard {shard} of {name}");
        write_output(partial_path, &what, |file| part.write_to(file).map_err(Into::into), Some(&interrupts), &bar)?;
        if !args.quiet {
            let size = std::fs::metadata(partial_path).map(|m| m.len()).unwrap_or_default();
            eprintln!(
                "wrote {} (shard {shard}: {lines} lines, {} words, {} occurrences, {bad} skipped; {})",
                partial_path.display(),
                part.word_count(),
                part.occurrences,
                indicatif::HumanBytes(size)
            );
        }
        return Ok(());
    }
    if analyzer.occurrences() == 0 {
        bail!("{}", no_usable_lines(&name, lines, &skipped));
    }
    let mut report = analyzer.finish(InputInfo { name: name.clone(), format, lines }, skipped);
    let occurrences: Vec<vecshift::Occurrence> = drift_sample.iter().map(|r| r.occurrence.clone()).collect();
    let senses: Vec<Option<String>> = drift_sample.iter().map(|r| r.sense.clone()).collect();
    for (engine, base, variant) in global.variant_pairs(contextuals.len()).into_iter().filter(|(_, base, _)| *base == 0) {
        let pooling = global.pooling_for(&contextuals[base]);
        report.variants.push(
            vecshift::compress::variant_drift(&contextuals[base], &contextuals[engine], &variant, &occurrences, &senses, pooling)
                .with_context(|| format!("drift of {}", contextuals[engine].name()))?,
        );
    }
    deliver(&report, output, output_format, args.quiet, Some(&interrupts), &bar)
}

/// Most occurrences the variants' drift is measured on (each is embedded once more per engine).
const MAX_DRIFT_SAMPLE: usize = 2000;

/// The error for an input without a single usable line.
fn no_usable_lines(name: &str, lines: usize, skipped: &[BadRow]) -> String {
    let first = skipped.first().map(|b| format!(" (first: {b})")).unwrap_or_default();
    format!("{name} has no usable lines: {lines} read, {} skipped{first}", skipped.len())
}

/// `report merge`: the report of the whole input from the parts of its shards.
fn merge(global: &GlobalArgs, args: MergeArgs) -> Result<()> {
    if !global.variants.is_empty() {
        bail!("--variant does not work with report merge: the parts (--partial) hold no variant measures; run the report of variants in one process");
    }
    let output = output_file(args.output.as_deref());
    let format = output_format(args.format, output, global.json || args.json.json)?;
    if let Some(path) = output {
        check_writable(path)?;
    }
    if args.fit.fit.is_some() && args.postprocess.iter().all(|&p| p == Postprocess::None) {
        bail!("--fit is the corpus that --postprocess corrections are fitted on; add --postprocess (e.g. --postprocess none,center,whiten)");
    }
    let mut parts = Vec::with_capacity(args.parts.len());
    for path in &args.parts {
        parts.push(Partial::read_file(path)?);
    }
    let fit = match &args.fit.fit {
        None => None,
        Some(_) => {
            let engine = global.load_bert()?;
            let theirs = parts[0].engines.iter().find(|e| e.kind == vecshift::EngineKind::Contextual).map(|e| e.name.clone()).unwrap_or_default();
            if engine.name() != theirs {
                bail!(
                    "--fit is embedded by {}, but the parts were made with {theirs}: give their model before `report` (vecshift --bert {theirs} report merge ...)",
                    engine.name()
                );
            }
            args.fit.vectors(&engine)?
        }
    };
    let corrections = Corrections { methods: args.postprocess.clone(), fit };
    let report = vecshift::report::merge_with(parts, &corrections)?;
    if report.occurrences == 0 {
        bail!("{}", no_usable_lines(&report.input.name, report.input.lines, &report.skipped));
    }
    deliver(&report, output, format, args.quiet, None, &ProgressBar::hidden())
}

/// Warns about skipped lines, then writes the report to `output` (through a temporary file) or
/// stdout.
fn deliver(report: &Report, output: Option<&Path>, format: OutputFormat, quiet: bool, interrupts: Option<&Interrupts>, bar: &ProgressBar) -> Result<()> {
    let name = &report.input.name;
    if !report.skipped.is_empty() {
        let shown: Vec<String> = report.skipped.iter().take(5).map(ToString::to_string).collect();
        let more = if report.skipped.len() > 5 { "; ..." } else { "" };
        eprintln!(
            "warning: skipped {} bad line(s) of {name}: {}{more} (all are listed under \"skipped\" in the report)",
            report.skipped.len(),
            shown.join("; ")
        );
    }
    match output {
        Some(path) => {
            write_output(path, "the report", |file| report.write(format, file).map_err(Into::into), interrupts, bar)?;
            if !quiet {
                let count = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
                eprintln!(
                    "wrote {} ({}, {}, {} skipped)",
                    path.display(),
                    count(report.words.len(), "word"),
                    count(report.occurrences, "occurrence"),
                    count(report.skipped.len(), "line")
                );
            }
        }
        None => {
            if let Some(interrupts) = interrupts {
                interrupts.stop_if_asked(bar);
            }
            // Buffered: stdout's own buffer flushes at every line, a system call per line.
            let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            report.write(format, &mut out).and_then(|()| out.flush()).context("writing the report to stdout")?;
        }
    }
    Ok(())
}

/// Writes a file through [`write_atomically`]; a signal during the write leaves the old file.
fn write_output(
    path: &Path,
    what: &str,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
    interrupts: Option<&Interrupts>,
    bar: &ProgressBar,
) -> Result<()> {
    if let Some(interrupts) = interrupts {
        interrupts.stop_if_asked(bar);
        interrupts.start_writing();
        interrupts.stop_if_asked(bar);
    }
    let written = write_atomically(path, |temp| {
        let mut file = BufWriter::new(File::create(temp).with_context(|| format!("cannot create {}", temp.display()))?);
        write(&mut file).and_then(|()| Ok(file.flush()?)).with_context(|| format!("writing {what} to {}", path.display()))?;
        // A signal during the write: the temporary file is removed, the old one stays.
        match interrupts.and_then(Interrupts::signal) {
            Some(_) => bail!("interrupted"),
            None => Ok(()),
        }
    });
    if let Some(interrupts) = interrupts {
        interrupts.stop_if_asked(bar);
    }
    written
}
