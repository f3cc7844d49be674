//! `vecshift convert`: any supported static format to finalfusion.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use vecshift::{Embedder, OpenOptions, StaticEngine, VectorFormat};

use super::GlobalArgs;
use super::output::{check_writable, print_json, write_atomically};

/// Arguments of `convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The file to read.
    input: PathBuf,
    /// The finalfusion file to write (replaced only once complete).
    output: PathBuf,
    /// Format of the input; detected from the file when left out.
    #[arg(long, alias = "vectors-format", value_parser = super::format_values(), ignore_case = true)]
    from: Option<VectorFormat>,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

pub fn run(global: &GlobalArgs, args: ConvertArgs) -> Result<()> {
    check_writable(&args.output)?;
    let options = OpenOptions::default().format(args.from);
    let engine = StaticEngine::open_with(&args.input, &options)
        .with_context(|| format!("converting {}", args.input.display()))?;
    write_atomically(&args.output, |temp| Ok(engine.write_finalfusion(temp)?))?;
    if global.json {
        return print_json(&json!({
            "input": args.input, "format": engine.format().name(), "output": args.output,
            "words": engine.vocab_len(), "dims": engine.dims(),
        }));
    }
    println!(
        "wrote {} ({} words x {} dims, from {})",
        args.output.display(), engine.vocab_len(), engine.dims(), engine.format()
    );
    Ok(())
}
