//! `vecshift bench`: throughput of the encoder and of neighbour search, like llama-bench.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use vecshift::{Embedder, Occurrence, StaticEngine};

use super::{Before, GlobalArgs};
use super::output::print_json;

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Tokens per second of the BERT encoder (tokenization included, every hidden state computed).
    Encode(EncodeArgs),
    /// Time per top-k neighbour query over the static vectors.
    Neighbors(NeighborsArgs),
}

#[derive(Debug, Args)]
struct EncodeArgs {
    /// Sentences: one per line, TSV (sentence in column 2), or WiC data (both sentences).
    #[arg(long, value_name = "FILE")]
    sentences: PathBuf,
    /// Sentences per forward pass (1 = one at a time).
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Sort the sentences by length before batching (less padding).
    #[arg(long)]
    sort_by_length: bool,
    /// Use only the first N sentences.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Timed repetitions after one warm-up; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// CPU threads (default: RAYON_NUM_THREADS or all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also write, after the timed runs, the last layer's vector of every sentence's first word
    /// (in file order) as JSON `{"pieces": [n, ...], "vectors": [[...], ...]}`: what a benchmark
    /// compares with a peer's (`benches/peers.py` checks int8 fidelity with it).
    #[arg(long, value_name = "FILE")]
    vectors_out: Option<PathBuf>,
    #[command(flatten)]
    pub bert: super::BertArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

/// What `bench encode --vectors-out` writes.
#[derive(Serialize)]
struct FirstWordVectors {
    /// Pieces pooled into each vector.
    pieces: Vec<usize>,
    /// The last layer's vector of each sentence's first word.
    vectors: Vec<Vec<f32>>,
}

#[derive(Debug, Args)]
struct NeighborsArgs {
    /// The words to query, one per line.
    #[arg(long, value_name = "FILE")]
    words: PathBuf,
    /// Neighbours per query.
    #[arg(short, default_value_t = 10)]
    k: usize,
    /// Queries per batch for the batched timing (many words at once, as reports and `eval
    /// analogy` ask them).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// CPU threads (default: RAYON_NUM_THREADS or all cores).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    pub vectors: super::VectorArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

#[derive(Serialize)]
struct EncodeReport {
    model: String,
    sentences: usize,
    real_tokens: usize,
    batch: usize,
    sorted_by_length: bool,
    threads: usize,
    seconds: f64,
    tokens_per_s: f64,
    sentences_per_s: f64,
}

#[derive(Serialize)]
struct NeighborsReport {
    vectors: String,
    words: usize,
    queries: usize,
    k: usize,
    threads: usize,
    load_ms: f64,
    first_query_ms: f64,
    per_query_ms: f64,
    batch: usize,
    batch_per_query_ms: f64,
}

pub fn run(before: &Before, args: BenchArgs) -> Result<()> {
    match args.what {
        BenchCommand::Encode(a) => encode(&before.options("bench encode", Some(&a.bert), None, Some(&a.json))?, a),
        BenchCommand::Neighbors(a) => neighbors(&before.options("bench neighbors", None, Some(&a.vectors), Some(&a.json))?, a),
    }
}

/// Sets the worker-thread count before candle or rayon start their pools; returns the count in use.
fn threads(requested: Option<usize>) -> usize {
    if let Some(n) = requested {
        // SAFETY: called before any other thread exists (the engines are loaded afterwards).
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    candle_core::utils::get_num_threads()
}

fn read_sentences(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut sentences = Vec::new();
    for line in text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            [_, _, _, first, second] => sentences.extend([first.to_string(), second.to_string()]),
            [_, sentence, ..] => sentences.push(sentence.to_string()),
            _ => sentences.push(line.to_string()),
        }
    }
    if sentences.is_empty() {
        bail!("{} holds no sentences", path.display());
    }
    Ok(sentences)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn encode(global: &GlobalArgs, args: EncodeArgs) -> Result<()> {
    let threads = threads(args.threads);
    if args.batch == 0 || args.repeat == 0 {
        bail!("--batch and --repeat must be at least 1");
    }
    let mut sentences = read_sentences(&args.sentences)?;
    if let Some(limit) = args.limit {
        sentences.truncate(limit);
    }
    let bert = global.load_bert()?;
    // Every sentence's first word is the target: the encoder computes all layers either way.
    let occurrences: Vec<Occurrence> = sentences
        .iter()
        .filter_map(|s| Occurrence::locate("", s, &vecshift::Locator::TokenIndex(0)).ok())
        .collect();
    let mut real_tokens = 0;
    for occ in &occurrences {
        real_tokens += bert.tokenize(occ)?.ids.len();
    }
    let mut order: Vec<&Occurrence> = occurrences.iter().collect();
    if args.sort_by_length {
        order.sort_by_key(|o| o.sentence().len());
    }
    let batches: Vec<Vec<Occurrence>> = order.chunks(args.batch).map(|c| c.iter().map(|&o| o.clone()).collect()).collect();
    let pooling = global.pooling_for(&bert);
    let run_once = || -> Result<f64> {
        let start = Instant::now();
        for batch in &batches {
            std::hint::black_box(bert.embed_batch(batch, pooling)?);
        }
        Ok(start.elapsed().as_secs_f64())
    };
    run_once()?;
    let seconds = median((0..args.repeat).map(|_| run_once()).collect::<Result<Vec<_>>>()?);
    if let Some(path) = &args.vectors_out {
        let mut out = FirstWordVectors { pieces: Vec::new(), vectors: Vec::new() };
        for batch in occurrences.chunks(args.batch) {
            for embedding in bert.embed_batch(batch, pooling)? {
                let embedding = embedding?;
                out.pieces.push(embedding.pieces.len());
                out.vectors.push(embedding.vectors.layer(-1).context("the model returned no layers")?.to_vec());
            }
        }
        super::output::write_atomically(path, |temp| {
            std::fs::write(temp, serde_json::to_vec(&out)?).with_context(|| format!("cannot write {}", temp.display()))
        })?;
    }
    let report = EncodeReport {
        model: bert.name().into(),
        sentences: occurrences.len(),
        real_tokens,
        batch: args.batch,
        sorted_by_length: args.sort_by_length,
        threads,
        seconds,
        tokens_per_s: real_tokens as f64 / seconds,
        sentences_per_s: occurrences.len() as f64 / seconds,
    };
    if global.json {
        return print_json(&report);
    }
    println!("| model | sentences | real tokens | batch | sorted | threads | seconds | tokens/s | sentences/s |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {:.3} | {:.0} | {:.1} |",
        report.model, report.sentences, report.real_tokens, report.batch, report.sorted_by_length,
        report.threads, report.seconds, report.tokens_per_s, report.sentences_per_s
    );
    Ok(())
}

fn neighbors(global: &GlobalArgs, args: NeighborsArgs) -> Result<()> {
    let threads = threads(args.threads);
    let text = std::fs::read_to_string(&args.words).with_context(|| format!("cannot read {}", args.words.display()))?;
    let words: Vec<&str> = text.lines().map(str::trim).filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        bail!("{} holds no words", args.words.display());
    }
    let start = Instant::now();
    let engine: StaticEngine = global.load_static()?;
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    let known: Vec<&str> = words.iter().copied().filter(|w| engine.lookup(w).is_ok()).collect();
    if known.is_empty() {
        bail!("none of the words in {} is in the vocabulary", args.words.display());
    }
    let start = Instant::now();
    engine.neighbors(known[0], args.k)?;
    let first_query_ms = start.elapsed().as_secs_f64() * 1e3;
    let start = Instant::now();
    for word in &known {
        std::hint::black_box(engine.neighbors(word, args.k)?);
    }
    let per_query_ms = start.elapsed().as_secs_f64() * 1e3 / known.len() as f64;
    // The batched path takes vectors and row exclusions, as `eval analogy` passes them.
    let vectors: Vec<Vec<f32>> = known.iter().map(|w| Ok(engine.lookup(w)?.vector)).collect::<Result<_>>()?;
    let exclude: Vec<Vec<usize>> = known.iter().map(|w| engine.word_index(w).into_iter().collect()).collect();
    let batch = args.batch as usize;
    let start = Instant::now();
    for (queries, exclude) in vectors.chunks(batch).zip(exclude.chunks(batch)) {
        std::hint::black_box(engine.nearest_batch(queries, args.k, exclude, None));
    }
    let batch_per_query_ms = start.elapsed().as_secs_f64() * 1e3 / known.len() as f64;
    let report = NeighborsReport {
        vectors: engine.path().display().to_string(),
        words: words.len(),
        queries: known.len(),
        k: args.k,
        threads,
        load_ms,
        first_query_ms,
        per_query_ms,
        batch,
        batch_per_query_ms,
    };
    if global.json {
        return print_json(&report);
    }
    println!("| vectors | queries | k | threads | load ms | first query ms | per query ms | batch | per query ms, batched |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {:.2} | {:.3} | {:.3} | {} | {:.3} |",
        report.vectors,
        report.queries,
        report.k,
        report.threads,
        report.load_ms,
        report.first_query_ms,
        report.per_query_ms,
        report.batch,
        report.batch_per_query_ms
    );
    Ok(())
}
