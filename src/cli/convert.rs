//! `vecshift convert`: any supported static format to finalfusion; `vecshift index`: the
//! vocabulary index sidecar of a finalfusion file.

use std::path::{Path, PathBuf};

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
    /// Store the rows product-quantized: `pq:M`, M one-byte codes per row (M must divide the
    /// dimensions; finalfusion's quantized storage, readable by any finalfusion reader).
    #[arg(long, value_name = "SCHEME")]
    quantize: Option<String>,
    /// Do not write the vocabulary index OUTPUT.idx beside the output (see `vecshift index`).
    #[arg(long)]
    no_index: bool,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

/// Arguments of `index`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The finalfusion file (simple vocabulary, f32 matrix) to index; FILE.idx is written.
    file: PathBuf,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

pub fn run(global: &GlobalArgs, args: ConvertArgs) -> Result<()> {
    let quantize = args.quantize.as_deref().map(parse_quantize).transpose().map_err(|e| anyhow::anyhow!("--quantize: {e}"))?;
    check_writable(&args.output)?;
    let options = OpenOptions::default().format(args.from);
    let engine = StaticEngine::open_with(&args.input, &options)
        .with_context(|| format!("converting {}", args.input.display()))?;
    let index = vecshift::static_vectors::index_path(&args.output);
    // An index left from an earlier output would not match the new one (it would be ignored,
    // but it has no business staying).
    remove_if_present(&index)?;
    write_atomically(&args.output, |temp| match quantize {
        Some(subquantizers) => Ok(engine.write_finalfusion_pq(temp, subquantizers)?),
        None => Ok(engine.write_finalfusion(temp)?),
    })?;
    // Subword models have no simple vocabulary to index, quantized files no f32 rows to map.
    let indexed = !args.no_index && !engine.has_subwords() && quantize.is_none();
    if indexed {
        write_index(&args.output)?;
    }
    let index = indexed.then_some(index);
    if global.json {
        return print_json(&json!({
            "input": args.input, "format": engine.format().name(), "output": args.output,
            "words": engine.vocab_len(), "dims": engine.dims(), "index": index,
            "quantize": quantize.map(|m| format!("pq:{m}")),
        }));
    }
    println!(
        "wrote {} ({} words x {} dims, from {}){}",
        args.output.display(), engine.vocab_len(), engine.dims(), engine.format(),
        index.map(|i| format!(" and its vocabulary index {}", i.display())).unwrap_or_default()
    );
    Ok(())
}

pub fn run_index(global: &GlobalArgs, args: IndexArgs) -> Result<()> {
    // Opening it checks the file as every command does, with the same messages.
    let engine = StaticEngine::open_with(&args.file, &OpenOptions::default().format(VectorFormat::Finalfusion))
        .with_context(|| format!("indexing {}", args.file.display()))?;
    let index = write_index(&args.file)?;
    if global.json {
        return print_json(&json!({ "file": args.file, "index": index, "words": engine.vocab_len() }));
    }
    println!("wrote {} ({} words)", index.display(), engine.vocab_len());
    Ok(())
}

/// Writes `FILE.idx` for the finalfusion file `file`, through a temporary file.
fn write_index(file: &Path) -> Result<PathBuf> {
    let index = vecshift::static_vectors::index_path(file);
    check_writable(&index)?;
    write_atomically(&index, |temp| Ok(vecshift::static_vectors::write_index(file, temp)?))?;
    Ok(index)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| format!("cannot remove the stale {}", path.display())),
        _ => Ok(()),
    }
}

/// `pq:M` as its number of subquantizers M.
fn parse_quantize(text: &str) -> std::result::Result<usize, String> {
    let number = text.strip_prefix("pq:").ok_or_else(|| format!("unknown quantization {text:?}; expected pq:M (M one-byte subquantizers per row, dividing the dimensions)"))?;
    number.parse::<usize>().ok().filter(|&m| m > 0).ok_or_else(|| format!("pq:{number} needs M, a whole number of subquantizers above 0 that divides the dimensions"))
}
