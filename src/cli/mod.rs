//! Command-line parsing and the shared options; one module per subcommand.

mod analogy;
mod bench;
mod compare;
mod convert;
mod embed;
mod eval;
pub mod logger;
mod neighbors;
pub mod output;
mod report;
mod senses;
pub mod sentences;
mod tui;

use std::path::Path;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use vecshift::{ContextualEncoder, Embedder, LoadOptions, ModelSource, OpenOptions, Pooling, StaticEngine, VectorFormat};

/// Compare a word's static vectors (Word2Vec, GloVe, fastText, finalfusion) with its
/// contextual BERT vectors across sentences and layers.
#[derive(Debug, Parser)]
#[command(name = "vecshift", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Without a subcommand, the terminal UI opens (same options as `vecshift tui`).
    #[command(flatten)]
    tui: tui::TuiArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Options every subcommand accepts.
#[derive(Clone, Debug, Args)]
pub struct GlobalArgs {
    /// Contextual model: a directory (config.json, tokenizer.json, model.safetensors) or a
    /// Hugging Face id such as sentence-transformers/all-MiniLM-L6-v2[@revision]. Repeatable,
    /// order kept; NAME=SOURCE gives the engine a short label. Default: the embedded
    /// all-MiniLM-L6-v2.
    #[arg(long, global = true, value_name = "[NAME=]DIR|HF_ID")]
    bert: Vec<String>,
    /// Static vectors: word2vec (.bin/.txt), GloVe (.txt), fastText (.bin) or finalfusion
    /// (.fifu). Repeatable, order kept; NAME=PATH gives the engine a short label. Default: the
    /// embedded GloVe 6B 50d (100k words).
    #[arg(long, global = true, value_name = "[NAME=]PATH")]
    vectors: Vec<String>,
    /// Format of --vectors when detection from the file is not wanted.
    #[arg(long, global = true, value_name = "FORMAT", value_parser = parse_format)]
    vectors_format: Option<VectorFormat>,
    /// How a word's pieces are pooled into one vector: mean, first or last. Default: mean
    /// (last for decoders, whose last piece alone has seen the whole word).
    #[arg(long, global = true, value_parser = parse_pooling)]
    pooling: Option<Pooling>,
    /// Where contextual models run: cpu, cuda, cuda:N or metal (GPUs need a build with the
    /// cuda or metal feature). Default: $VECSHIFT_DEVICE, else cpu.
    #[arg(long, global = true, value_name = "DEVICE")]
    device: Option<String>,
    /// Machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

fn parse_format(s: &str) -> Result<VectorFormat, String> {
    s.parse().map_err(|e: vecshift::Error| e.to_string())
}

fn parse_pooling(s: &str) -> Result<Pooling, String> {
    s.parse().map_err(|e: vecshift::Error| e.to_string())
}

/// `NAME=SOURCE` into its label and source; a plain source has no label. A `=` inside a path
/// is kept when the part before it is not a plain label.
fn split_label(text: &str) -> (Option<&str>, &str) {
    match text.split_once('=') {
        Some((name, source))
            if !name.is_empty() && !source.is_empty() && name.chars().all(|c| c.is_alphanumeric() || "-_.·+:".contains(c)) =>
        {
            (Some(name), source)
        }
        _ => (None, text),
    }
}

/// Labels made unique: a repeated name gets `#2`, `#3`, ... in order.
fn unique_names(names: &mut [String]) {
    for i in 1..names.len() {
        let count = names[..i].iter().filter(|n| **n == names[i]).count();
        if count > 0 {
            names[i] = format!("{}#{}", names[i], count + 1);
        }
    }
}

impl GlobalArgs {
    /// The device to load contextual models on: `--device`, else `VECSHIFT_DEVICE`, else the CPU.
    fn load_options(&self) -> Result<LoadOptions> {
        let (text, origin) = match &self.device {
            Some(device) => (device.clone(), "--device"),
            None => (std::env::var("VECSHIFT_DEVICE").unwrap_or_default(), "VECSHIFT_DEVICE"),
        };
        let device = vecshift::contextual::parse_device(&text)
            .with_context(|| format!("{origin}={text} (or {origin}=cpu to run on the processor)"))?;
        Ok(LoadOptions::default().device(device))
    }

    /// Every static engine asked for (the embedded GloVe when none), in order, uniquely named.
    fn load_static_engines(&self) -> Result<Vec<StaticEngine>> {
        if self.vectors.is_empty() {
            return Ok(vec![StaticEngine::open_default().context(
                "loading the embedded GloVe vectors (run `python3 data/fetch_data.py` to regenerate data/, or pass --vectors)",
            )?]);
        }
        let mut names: Vec<String> = self
            .vectors
            .iter()
            .map(|text| {
                let (label, path) = split_label(text);
                label.map(str::to_owned).unwrap_or_else(|| {
                    Path::new(path).file_name().map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned())
                })
            })
            .collect();
        unique_names(&mut names);
        self.vectors
            .iter()
            .zip(names)
            .map(|(text, name)| {
                let (_, path) = split_label(text);
                let options = OpenOptions::default().format(self.vectors_format).name(name);
                StaticEngine::open_with(path, &options).with_context(|| format!("loading static vectors (--vectors {path})"))
            })
            .collect()
    }

    /// Every contextual engine asked for (the embedded MiniLM when none), in order, uniquely named.
    fn load_contextual_engines(&self) -> Result<Vec<ContextualEncoder>> {
        let options = self.load_options()?;
        if self.bert.is_empty() {
            let dir = vecshift::source::default_bert_dir();
            return Ok(vec![ContextualEncoder::load_with(dir, &options).context(
                "loading the embedded BERT model (run `python3 data/fetch_data.py` to regenerate data/, or pass --bert)",
            )?]);
        }
        let sources = self
            .bert
            .iter()
            .map(|text| {
                let (label, source) = split_label(text);
                Ok((label, source, ModelSource::parse(source)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut names: Vec<String> =
            sources.iter().map(|(label, _, source)| label.map_or_else(|| source.to_string(), str::to_owned)).collect();
        unique_names(&mut names);
        sources
            .into_iter()
            .zip(names)
            .map(|((_, text, source), name)| {
                ContextualEncoder::load_source(&source, &options.clone().name(name))
                    .with_context(|| format!("loading the model (--bert {text})"))
            })
            .collect()
    }

    /// The first static engine.
    fn load_static(&self) -> Result<StaticEngine> {
        Ok(self.load_static_engines()?.swap_remove(0))
    }

    /// The first contextual engine.
    fn load_bert(&self) -> Result<ContextualEncoder> {
        Ok(self.load_contextual_engines()?.swap_remove(0))
    }

    /// The pooling to use with `engine`: `--pooling`, else the engine's own default.
    fn pooling_for(&self, engine: &dyn Embedder) -> Pooling {
        self.pooling.unwrap_or_else(|| engine.default_pooling())
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The static vector and the BERT vector of every layer for one word in one sentence.
    Embed(embed::EmbedArgs),
    /// Pairwise cosines of one word across sentences, per BERT layer, beside the static ones.
    Compare(compare::CompareArgs),
    /// Nearest neighbours of a word in the static vectors.
    #[command(alias = "neighbours")]
    Neighbors(neighbors::NeighborsArgs),
    /// A is to B as C is to ? (3CosAdd over the static vectors).
    Analogy(analogy::AnalogyArgs),
    /// Convert word2vec / GloVe / fastText vectors to finalfusion (memory-mapped, fast to open).
    Convert(convert::ConvertArgs),
    /// Evaluate the models on published test sets: word similarity, analogies, WiC.
    Eval(eval::EvalArgs),
    /// Similarity measures per word and layer over many sentences, as JSON, CSV, Markdown or HTML.
    Report(report::ReportArgs),
    /// Name each occurrence's sense from WordNet (nearest synset example) and group the occurrences by clustering.
    Senses(senses::SensesArgs),
    /// Measure encoder and neighbour-search throughput.
    Bench(bench::BenchArgs),
    /// The terminal UI (also what plain `vecshift` opens): watch the vectors shift.
    Tui(tui::TuiArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else { return tui::run(&cli.global, cli.tui) };
    cli.tui.only_without_subcommand()?;
    match command {
        Command::Tui(args) => tui::run(&cli.global, args),
        Command::Embed(args) => embed::run(&cli.global, args),
        Command::Compare(args) => compare::run(&cli.global, args),
        Command::Neighbors(args) => neighbors::run(&cli.global, args),
        Command::Analogy(args) => analogy::run(&cli.global, args),
        Command::Convert(args) => convert::run(&cli.global, args),
        Command::Eval(args) => eval::run(&cli.global, args),
        Command::Report(args) => report::run(&cli.global, args),
        Command::Bench(args) => bench::run(&cli.global, args),
        Command::Senses(args) => senses::run(&cli.global, args),
    }
}
