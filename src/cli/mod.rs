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
pub mod sentences;
mod tui;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use vecshift::{BertEncoder, ModelSource, Pooling, StaticEngine, VectorFormat};

/// Compare a word's static vectors (Word2Vec, GloVe, fastText, finalfusion) with its
/// contextual BERT vectors across sentences and layers.
#[derive(Debug, Parser)]
#[command(name = "vecshift", version, about, long_about = None)]
pub struct Cli {
    /// Without a subcommand, the terminal UI opens (same options as `vecshift tui`). Its model
    /// options may also stand before a subcommand that takes them.
    #[command(flatten)]
    tui: tui::TuiArgs,
    /// `--json` before the subcommand, as older versions took it (hidden: it belongs after).
    #[arg(long, hide = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The BERT options, for the subcommands that encode sentences. (Every subcommand flattens
/// the option groups it acts on, so that its --help lists only those.)
#[derive(Clone, Debug, Default, Args)]
pub struct BertArgs {
    /// BERT model: a directory (config.json, tokenizer.json, model.safetensors) or a Hugging
    /// Face id such as sentence-transformers/all-MiniLM-L6-v2[@revision]. Default: the
    /// embedded all-MiniLM-L6-v2.
    #[arg(long, value_name = "DIR|HF_ID", help_heading = "Model options")]
    bert: Option<String>,
    /// How a word's WordPieces are pooled into one vector [default: mean].
    #[arg(long, value_name = "POOLING", value_parser = pooling_values(), help_heading = "Model options")]
    pooling: Option<Pooling>,
}

/// The static-vector options, for the subcommands that read static vectors.
#[derive(Clone, Debug, Default, Args)]
pub struct VectorArgs {
    /// Static vectors: word2vec (.bin/.txt), GloVe (.txt), fastText (.bin) or finalfusion
    /// (.fifu). Default: the embedded GloVe 6B 50d (100k words).
    #[arg(long, value_name = "PATH", help_heading = "Model options")]
    vectors: Option<PathBuf>,
    /// Format of --vectors when detection from the file is not wanted.
    #[arg(long, value_name = "FORMAT", value_parser = format_values(), ignore_case = true, help_heading = "Model options")]
    vectors_format: Option<VectorFormat>,
}

/// `--json`, for the subcommands that can print JSON.
#[derive(Clone, Debug, Default, Args)]
pub struct JsonArgs {
    /// Machine-readable JSON on stdout instead of tables.
    #[arg(long, help_heading = "Output options")]
    json: bool,
}

/// The options in force for one subcommand: its own, else those given before it.
#[derive(Clone, Debug, Default)]
pub struct GlobalArgs {
    bert: Option<String>,
    vectors: Option<PathBuf>,
    vectors_format: Option<VectorFormat>,
    pooling: Pooling,
    json: bool,
}

/// The `--pooling` values, listed in --help.
fn pooling_values() -> impl TypedValueParser<Value = Pooling> {
    PossibleValuesParser::new(["mean", "first", "last"]).try_map(|s| s.parse::<Pooling>().map_err(|e| e.to_string()))
}

/// The `--vectors-format` values (and the other spellings they have always accepted).
fn format_values() -> impl TypedValueParser<Value = VectorFormat> {
    PossibleValuesParser::new([
        PossibleValue::new("finalfusion").alias("fifu"),
        PossibleValue::new("word2vec").aliases(["word2vec-binary", "w2v", "bin"]),
        PossibleValue::new("word2vec-text").aliases(["text", "word2vec-txt", "textdims"]),
        PossibleValue::new("glove").aliases(["glove-text", "txt"]),
        PossibleValue::new("fasttext"),
    ])
    .try_map(|s| s.parse::<VectorFormat>().map_err(|e| e.to_string()))
}

/// The model and output options given before the subcommand.
pub struct Before {
    bert: BertArgs,
    vectors: VectorArgs,
    json: bool,
}

impl Before {
    /// The options of `command`, with those given before it (`vecshift --bert X compare ...`)
    /// where it has none of its own. An option before a subcommand that does nothing with it
    /// is an error rather than silently ignored.
    fn options(&self, command: &str, bert: Option<&BertArgs>, vectors: Option<&VectorArgs>, json: Option<&JsonArgs>) -> Result<GlobalArgs> {
        let unused = |given: bool, option: &str| {
            if given {
                anyhow::bail!("{option} does nothing for `vecshift {command}`; leave it out (each subcommand's --help lists its options)");
            }
            Ok(())
        };
        if bert.is_none() {
            unused(self.bert.bert.is_some(), "--bert")?;
            unused(self.bert.pooling.is_some(), "--pooling")?;
        }
        if vectors.is_none() {
            unused(self.vectors.vectors.is_some(), "--vectors")?;
            unused(self.vectors.vectors_format.is_some(), "--vectors-format")?;
        }
        if json.is_none() {
            unused(self.json, "--json")?;
        }
        let bert = bert.cloned().unwrap_or_default();
        let vectors = vectors.cloned().unwrap_or_default();
        Ok(GlobalArgs {
            bert: bert.bert.or_else(|| self.bert.bert.clone()),
            vectors: vectors.vectors.or_else(|| self.vectors.vectors.clone()),
            vectors_format: vectors.vectors_format.or(self.vectors.vectors_format),
            pooling: bert.pooling.or(self.bert.pooling).unwrap_or_default(),
            json: json.is_some_and(|j| j.json) || self.json,
        })
    }
}

impl GlobalArgs {
    fn load_static(&self) -> Result<StaticEngine> {
        match &self.vectors {
            Some(path) => StaticEngine::open(path, self.vectors_format)
                .with_context(|| format!("loading static vectors (--vectors {})", path.display())),
            None => StaticEngine::open_default().context(
                "loading the embedded GloVe vectors (run `python3 data/fetch_data.py` to regenerate data/, or pass --vectors)",
            ),
        }
    }

    fn load_bert(&self) -> Result<BertEncoder> {
        let encoder = match &self.bert {
            Some(text) => {
                let source = ModelSource::parse(text)?;
                BertEncoder::load_source(&source).with_context(|| format!("loading the BERT model (--bert {text})"))?
            }
            None => BertEncoder::load_default().context(
                "loading the embedded BERT model (run `python3 data/fetch_data.py` to regenerate data/, or pass --bert)",
            )?,
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
}

/// Parses the command line; exits with clap's message (or a plainer one) when it is wrong.
pub fn parse() -> Cli {
    use clap::CommandFactory;
    Cli::try_parse().unwrap_or_else(|error| {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let command = Cli::command();
        let names: Vec<&str> = command.get_subcommands().flat_map(|c| std::iter::once(c.get_name()).chain(c.get_all_aliases())).collect();
        if error.use_stderr() && tui::misplaced(&args, &names) {
            eprintln!("error: {}", tui::MISPLACED);
            std::process::exit(2);
        }
        error.exit()
    })
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let before = Before { bert: cli.tui.bert.clone(), vectors: cli.tui.vectors.clone(), json: cli.json };
    let Some(command) = cli.command else {
        return tui::run(&before.options("tui", Some(&BertArgs::default()), Some(&VectorArgs::default()), None)?, cli.tui);
    };
    cli.tui.only_without_subcommand()?;
    let b = &before;
    match command {
        Command::Tui(args) => tui::run(&b.options("tui", Some(&args.bert), Some(&args.vectors), None)?, args),
        Command::Embed(args) => embed::run(&b.options("embed", Some(&args.bert), Some(&args.vectors), Some(&args.json))?, args),
        Command::Compare(args) => compare::run(&b.options("compare", Some(&args.bert), Some(&args.vectors), Some(&args.json))?, args),
        Command::Neighbors(args) => neighbors::run(&b.options("neighbors", None, Some(&args.vectors), Some(&args.json))?, args),
        Command::Analogy(args) => analogy::run(&b.options("analogy", None, Some(&args.vectors), Some(&args.json))?, args),
        Command::Convert(args) => convert::run(&b.options("convert", None, None, Some(&args.json))?, args),
        Command::Eval(args) => eval::run(b, args),
        Command::Report(args) => report::run(&b.options("report", Some(&args.bert), Some(&args.vectors), Some(&args.json))?, args),
        Command::Bench(args) => bench::run(b, args),
    }
}
