//! Command-line parsing and the shared options; one module per subcommand.

mod analogy;
mod bench;
mod compare;
mod convert;
mod data;
mod embed;
mod eval;
pub mod logger;
mod neighbors;
pub mod output;
mod report;
pub mod sentences;
mod shell;
mod tui;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use vecshift::{BertEncoder, ModelSource, Pooling, StaticEngine, VectorFormat};

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
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// BERT model: a directory (config.json, tokenizer.json, model.safetensors) or a Hugging
    /// Face id such as sentence-transformers/all-MiniLM-L6-v2[@revision]. Default: the
    /// embedded all-MiniLM-L6-v2.
    #[arg(long, global = true, value_name = "DIR|HF_ID")]
    bert: Option<String>,
    /// Static vectors: word2vec (.bin/.txt), GloVe (.txt), fastText (.bin) or finalfusion
    /// (.fifu). Default: the embedded GloVe 6B 50d (100k words).
    #[arg(long, global = true, value_name = "PATH")]
    vectors: Option<PathBuf>,
    /// Format of --vectors when detection from the file is not wanted.
    #[arg(long, global = true, value_name = "FORMAT", value_parser = parse_format)]
    vectors_format: Option<VectorFormat>,
    /// How a word's WordPieces are pooled into one vector.
    #[arg(long, global = true, default_value = "mean", value_parser = parse_pooling)]
    pooling: Pooling,
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

impl GlobalArgs {
    fn load_static(&self) -> Result<StaticEngine> {
        match &self.vectors {
            Some(path) => StaticEngine::open(path, self.vectors_format)
                .with_context(|| format!("loading static vectors (--vectors {})", path.display())),
            None => {
                let path = data::default_vectors_path()?;
                StaticEngine::open(&path, Some(VectorFormat::Finalfusion)).with_context(|| {
                    format!("loading the default GloVe vectors {} (run `python3 data/fetch_data.py` to regenerate data/, or pass --vectors)", path.display())
                })
            }
        }
    }

    fn load_bert(&self) -> Result<BertEncoder> {
        let encoder = match &self.bert {
            Some(text) => {
                let source = ModelSource::parse(text)?;
                BertEncoder::load_source(&source).with_context(|| format!("loading the BERT model (--bert {text})"))?
            }
            None => {
                let dir = data::default_bert_dir()?;
                BertEncoder::load(&dir).with_context(|| {
                    format!("loading the default BERT model {} (run `python3 data/fetch_data.py` to regenerate data/, or pass --bert)", dir.display())
                })?
            }
        };
        Ok(encoder.with_pooling(self.pooling))
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
    /// Measure encoder and neighbour-search throughput.
    Bench(bench::BenchArgs),
    /// The terminal UI (also what plain `vecshift` opens): watch the vectors shift.
    Tui(tui::TuiArgs),
    /// Copy (or hard-link) the default models into the user data directory, checking their
    /// sha256 sums, so that an installed binary finds them without the source tree.
    InstallData(data::InstallArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(shell::CompletionsArgs),
    /// Print the man page (roff) on stdout.
    Man,
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
        Command::InstallData(args) => data::install(args),
        Command::Completions(args) => shell::completions(args),
        Command::Man => shell::man(),
    }
}
