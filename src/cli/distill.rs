//! `vecshift distill`: static vectors from a contextual model, each word's mean contextual
//! vector over a corpus.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};
use serde_json::json;
use vecshift::compress::distill::{DistillOptions, Distiller, tokenizer_lowercases};
use vecshift::{Embedder, LayerSelection};

use super::GlobalArgs;
use super::output::{check_writable, print_json, write_atomically};

/// Arguments of `distill`.
#[derive(Debug, Args)]
pub struct DistillArgs {
    /// The corpus: plain text, one sentence per line (blank lines skipped); `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    corpus: PathBuf,
    /// The layer to distill: a number (0 = embeddings output, -1 = the last), a range whose
    /// layers are averaged (4..=6) or all.
    #[arg(long, value_name = "L", allow_hyphen_values = true)]
    layer: String,
    /// The finalfusion file to write (it appears only once complete).
    #[arg(long, short, value_name = "OUT.fifu")]
    output: PathBuf,
    /// Leave out words seen fewer times than this.
    #[arg(long, value_name = "N", default_value_t = 1)]
    min_count: usize,
    /// Read at most this many lines of the corpus.
    #[arg(long, value_name = "N")]
    max_sentences: Option<usize>,
    /// Keep words as written even when the model's tokenizer lowercases (default: lowercase
    /// them exactly when it does).
    #[arg(long)]
    keep_case: bool,
    /// Sentences read and encoded per step (the model sorts each step by length and encodes
    /// 32 at a time).
    #[arg(long, value_name = "N", default_value_t = 256)]
    batch: usize,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    pub bert: super::BertArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

pub fn run(global: &GlobalArgs, args: DistillArgs) -> Result<()> {
    if global.bert.len() > 1 || global.variants.len() > 1 {
        bail!("distill takes one --bert and at most one --variant (the model to distill); run it once per model");
    }
    if args.batch == 0 {
        bail!("--batch 0: give 1 or more sentences per step");
    }
    if args.max_sentences == Some(0) {
        bail!("--max-sentences 0: give 1 or more, or leave it out to read the whole corpus");
    }
    let layers: LayerSelection = args.layer.parse().context("--layer")?;
    check_writable(&args.output)?;
    let (reader, size): (Box<dyn BufRead>, Option<u64>) = if args.corpus.as_os_str() == "-" {
        (Box::new(BufReader::new(std::io::stdin())), None)
    } else {
        let file = File::open(&args.corpus).with_context(|| format!("--corpus {}: cannot open it", args.corpus.display()))?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            bail!("--corpus {}: it is a folder; name a text file, one sentence per line", args.corpus.display());
        }
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::new(file)), size)
    };

    // With a --variant, the variant is what is distilled (it follows its original).
    let engine = global.load_contextual_engines()?.pop().expect("one engine at least");
    let lowercase = !args.keep_case && tokenizer_lowercases(engine.tokenizer());
    let pooling = global.pooling_for(&engine);
    let options = DistillOptions::new(layers.clone()).pooling(pooling).min_count(args.min_count).lowercase(lowercase);
    let mut distiller = Distiller::new(&engine, options).with_context(|| format!("--layer {} of {}", args.layer, engine.name()))?;

    let bar = progress_bar(args.quiet, size);
    let mut reader = Counting { inner: reader, read: 0 };
    let mut batch = Vec::with_capacity(args.batch);
    let mut lines = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        let done = args.max_sentences.is_some_and(|max| lines >= max)
            || reader.read_line(&mut line).with_context(|| format!("reading --corpus {} (line {})", args.corpus.display(), lines + 1))? == 0;
        if !done {
            lines += 1;
            batch.push(line.trim_end_matches(['\n', '\r']).to_owned());
        }
        if batch.len() >= args.batch || (done && !batch.is_empty()) {
            distiller.add(&batch).with_context(|| format!("distilling {} (before line {})", engine.name(), lines + 1))?;
            batch.clear();
            bar.set_position(reader.read);
            bar.set_message(format!("{lines} sentences, {} words", distiller.words_seen()));
        }
        if done {
            break;
        }
    }
    bar.finish_and_clear();

    let distilled = distiller.finish().with_context(|| format!("--corpus {}", args.corpus.display()))?;
    write_atomically(&args.output, |temp| {
        let mut out = std::io::BufWriter::new(File::create(temp).with_context(|| format!("writing {}", temp.display()))?);
        distilled.write_finalfusion(&mut out)?;
        out.into_inner().map_err(|e| e.into_error()).and_then(|f| f.sync_all()).with_context(|| format!("writing {}", args.output.display()))
    })?;
    let words = distilled.counts.len();
    let stats = distilled.stats;
    if global.json {
        return print_json(&json!({
            "corpus": args.corpus, "model": engine.name(), "layer": layers.to_string(), "pooling": pooling,
            "lowercase": lowercase, "min_count": args.min_count, "output": args.output,
            "words": words, "words_seen": distilled.words_seen, "dims": engine.dims(), "stats": stats,
        }));
    }
    println!(
        "wrote {} ({words} words x {} dims; {} of layer {layers}, {pooling} pooling, {}): {} occurrences in {} sentences",
        args.output.display(),
        engine.dims(),
        engine.name(),
        if lowercase { "lowercased" } else { "case kept" },
        stats.occurrences,
        stats.sentences - stats.sentences_skipped,
    );
    if distilled.words_seen > words {
        println!("{} words seen fewer than {} times left out", distilled.words_seen - words, args.min_count);
    }
    if stats.occurrences_skipped > 0 {
        log::warn!(
            "{} word occurrences were not embedded (beyond the model's {} positions, or no pieces)",
            stats.occurrences_skipped,
            engine.max_positions().unwrap_or(0)
        );
    }
    Ok(())
}

/// A reader that counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: BufRead> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.read += amount as u64;
        self.inner.consume(amount);
    }
}

/// A bar over the corpus's bytes (a spinner for stdin), on stderr when it is a terminal.
fn progress_bar(quiet: bool, size: Option<u64>) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match size {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes}  {msg}  ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner()
            .with_style(ProgressStyle::with_template("{spinner} {elapsed_precise} {bytes}  {msg}").expect("valid template")),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.with_finish(ProgressFinish::AndClear)
}
