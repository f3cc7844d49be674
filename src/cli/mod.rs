//! Command-line parsing and the shared options; one module per subcommand.

mod analogy;
mod bench;
mod compare;
mod compress;
mod convert;
mod data;
mod distill;
mod embed;
mod eval;
pub mod logger;
mod neighbors;
pub mod output;
mod postprocess;
mod report;
mod senses;
pub mod sentences;
mod shell;
mod tui;

use std::path::Path;

use anyhow::{Context, Result};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use vecshift::compress::Variant;
use vecshift::{ContextualEncoder, Embedder, LoadOptions, ModelSource, OpenOptions, Pooling, StaticEngine, VectorFormat};

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

/// The model options, for the subcommands that encode sentences. (Every subcommand flattens
/// the option groups it acts on, so that its --help lists only those.)
#[derive(Clone, Debug, Default, Args)]
pub struct BertArgs {
    /// Contextual model: a directory (config.json, tokenizer.json, model.safetensors) or a
    /// Hugging Face id such as sentence-transformers/all-MiniLM-L6-v2[@revision]. Repeatable,
    /// order kept; NAME=SOURCE gives the engine a short label. Default: the embedded
    /// all-MiniLM-L6-v2.
    #[arg(long, value_name = "[NAME=]DIR|HF_ID", help_heading = "Model options")]
    bert: Vec<String>,
    /// How a word's pieces are pooled into one vector [default: mean; last for decoders, whose
    /// last piece alone has seen the whole word].
    #[arg(long, value_name = "POOLING", value_parser = pooling_values(), help_heading = "Model options")]
    pooling: Option<Pooling>,
    /// Where contextual models run: cpu, cuda, cuda:N or metal (GPUs need a build with the cuda
    /// or metal feature). Default: $VECSHIFT_DEVICE, else cpu.
    #[arg(long, value_name = "DEVICE", help_heading = "Model options")]
    device: Option<String>,
    /// Compression variant: for every contextual engine, one more engine labelled NAME·V with
    /// its weights transformed (f16, bf16, int8, int8-asym, int4[:gN], prune:P,
    /// prune-neurons:P, drop-layers:I,J, rank:R, chained with +). Repeatable.
    #[arg(long, value_name = "V", help_heading = "Model options")]
    variant: Vec<String>,
}

/// A `--variant`, parsed after clap so that a bad one is one `error:` line.
pub(crate) fn parse_variant(text: &str) -> Result<Variant> {
    Ok(text.parse::<Variant>()?)
}

/// The static-vector options, for the subcommands that read static vectors.
#[derive(Clone, Debug, Default, Args)]
pub struct VectorArgs {
    /// Static vectors: word2vec (.bin/.txt), GloVe (.txt), fastText (.bin), finalfusion (.fifu)
    /// or vecshift's int8 (`convert --quantize int8`). Repeatable, order kept; NAME=PATH gives the engine a short label. Default: the
    /// embedded GloVe 6B 50d (100k words).
    #[arg(long, value_name = "[NAME=]PATH", help_heading = "Model options")]
    vectors: Vec<String>,
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
    bert: Vec<String>,
    vectors: Vec<String>,
    vectors_format: Option<VectorFormat>,
    pooling: Option<Pooling>,
    device: Option<String>,
    variants: Vec<Variant>,
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
        PossibleValue::new("int8").aliases(["vecshift-int8", "safetensors"]),
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
            unused(!self.bert.bert.is_empty(), "--bert")?;
            unused(self.bert.pooling.is_some(), "--pooling")?;
            unused(self.bert.device.is_some(), "--device")?;
            unused(!self.bert.variant.is_empty(), "--variant")?;
        }
        if vectors.is_none() {
            unused(!self.vectors.vectors.is_empty(), "--vectors")?;
            unused(self.vectors.vectors_format.is_some(), "--vectors-format")?;
        }
        if json.is_none() {
            unused(self.json, "--json")?;
        }
        let bert = bert.cloned().unwrap_or_default();
        let vectors = vectors.cloned().unwrap_or_default();
        // A list given after the subcommand replaces the one given before it.
        let or_before = |after: Vec<String>, before: &Vec<String>| if after.is_empty() { before.clone() } else { after };
        Ok(GlobalArgs {
            bert: or_before(bert.bert, &self.bert.bert),
            vectors: or_before(vectors.vectors, &self.vectors.vectors),
            vectors_format: vectors.vectors_format.or(self.vectors.vectors_format),
            pooling: bert.pooling.or(self.bert.pooling),
            device: bert.device.or_else(|| self.bert.device.clone()),
            variants: or_before(bert.variant, &self.bert.variant).iter().map(|v| parse_variant(v)).collect::<Result<_>>()?,
            json: json.is_some_and(|j| j.json) || self.json,
        })
    }
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
            let path = data::default_vectors_path()?;
            let options = OpenOptions::default().format(VectorFormat::Finalfusion);
            return Ok(vec![StaticEngine::open_with(&path, &options).with_context(|| {
                format!("loading the default GloVe vectors {} (run `python3 data/fetch_data.py` to regenerate data/, or pass --vectors)", path.display())
            })?]);
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

    /// Every contextual engine asked for (the embedded MiniLM when none), in order, uniquely
    /// named; after each, one engine per `--variant`, labelled `NAME·V`.
    fn load_contextual_engines(&self) -> Result<Vec<ContextualEncoder>> {
        let options = self.load_options()?;
        if self.bert.is_empty() {
            let dir = data::default_bert_dir()?;
            let load = |options: &LoadOptions| {
                ContextualEncoder::load_with(&dir, options).with_context(|| {
                    format!("loading the default BERT model {} (run `python3 data/fetch_data.py` to regenerate data/, or pass --bert)", dir.display())
                })
            };
            let base = load(&options)?;
            let mut engines = Vec::with_capacity(1 + self.variants.len());
            for variant in &self.variants {
                let name = format!("{}·{variant}", base.name());
                engines.push(load(&options.clone().name(name).variant(variant.clone())).with_context(|| format!("--variant {variant}"))?);
            }
            engines.insert(0, base);
            return Ok(engines);
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
        let mut engines = Vec::new();
        for ((_, text, source), name) in sources.into_iter().zip(names) {
            for variant in std::iter::once(None).chain(self.variants.iter().map(Some)) {
                let options = match variant {
                    None => options.clone().name(name.clone()),
                    Some(v) => options.clone().name(format!("{name}·{v}")).variant(v.clone()),
                };
                let what = variant.map(|v| format!(" --variant {v}")).unwrap_or_default();
                engines.push(
                    ContextualEncoder::load_source(&source, &options).with_context(|| format!("loading the model (--bert {text}{what})"))?,
                );
            }
        }
        Ok(engines)
    }

    /// `(variant engine, its original, the variant)` for the engines of
    /// [`load_contextual_engines`](Self::load_contextual_engines): each original is followed by
    /// one engine per `--variant`.
    fn variant_pairs(&self, engines: usize) -> Vec<(usize, usize, Variant)> {
        let stride = 1 + self.variants.len();
        (0..engines / stride)
            .flat_map(|b| self.variants.iter().enumerate().map(move |(j, v)| (b * stride + 1 + j, b * stride, v.clone())))
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
    /// Convert word2vec / GloVe / fastText vectors to finalfusion (memory-mapped, fast to open),
    /// or quantized: finalfusion's pq:M or vecshift's int8.
    Convert(convert::ConvertArgs),
    /// Write the vocabulary index FILE.idx of a finalfusion file, so that it opens without
    /// building a hash map of its words (`convert` writes one too).
    Index(convert::IndexArgs),
    /// Write a compressed copy of a contextual model (quantized, pruned, fewer layers, lower
    /// rank) as a directory that --bert loads again.
    Compress(compress::CompressArgs),
    /// Static vectors distilled from a contextual model: each word's mean vector over a corpus.
    Distill(distill::DistillArgs),
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
    /// Copy (or hard-link) the default models into the user data directory, checking their
    /// sha256 sums, so that an installed binary finds them without the source tree.
    InstallData(data::InstallArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(shell::CompletionsArgs),
    /// Print the man page (roff) on stdout.
    Man,
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
        Command::Compress(args) => compress::run(&b.options("compress", None, None, Some(&args.json))?, args),
        Command::Convert(args) => convert::run(&b.options("convert", None, None, Some(&args.json))?, args),
        Command::Index(args) => convert::run_index(&b.options("index", None, None, Some(&args.json))?, args),
        Command::Distill(args) => distill::run(&b.options("distill", Some(&args.bert), None, Some(&args.json))?, args),
        Command::Eval(args) => eval::run(b, args),
        Command::Report(args) => report::run(&b.options("report", Some(&args.bert), Some(&args.vectors), Some(&args.json))?, args),
        Command::Bench(args) => bench::run(b, args),
        Command::Senses(args) => senses::run(&b.options("senses", Some(&args.bert), None, Some(&args.json))?, args),
        Command::InstallData(args) => data::install(args),
        Command::Completions(args) => shell::completions(args),
        Command::Man => shell::man(),
    }
}
