//! `vecshift convert`: any supported static format to finalfusion (or to vecshift's int8 file);
//! `vecshift index`: the vocabulary index sidecar of a finalfusion file.

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
    /// The file to write, finalfusion (a safetensors file with `--quantize int8`); replaced only
    /// once complete.
    output: PathBuf,
    /// Format of the input; detected from the file when left out.
    #[arg(long, alias = "vectors-format", value_parser = super::format_values(), ignore_case = true)]
    from: Option<VectorFormat>,
    /// Store the rows quantized: `pq:M`, product-quantized, M one-byte codes per row (M must
    /// divide the dimensions; finalfusion's quantized storage, readable by any finalfusion
    /// reader); `int8`, one byte per component and a scale per word (vecshift's safetensors file).
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
        Some(Quantize::Pq(subquantizers)) => Ok(engine.write_finalfusion_pq(temp, subquantizers)?),
        Some(Quantize::Int8) => Ok(engine.write_int8(temp)?),
        None => Ok(engine.write_finalfusion(temp)?),
    })?;
    // Subword models have no simple vocabulary to index, quantized files no f32 rows to map.
    let indexed = !args.no_index && !engine.has_subwords() && quantize.is_none();
    if indexed {
        write_index(&args.output)?;
    }
    let index = indexed.then_some(index);
    let size = |path: &Path| std::fs::metadata(path).with_context(|| format!("cannot read the size of {}", path.display())).map(|m| m.len());
    let (bytes, input_bytes) = (size(&args.output)?, size(&args.input)?);
    let ratio = bytes as f64 / input_bytes.max(1) as f64;
    if global.json {
        return print_json(&json!({
            "input": args.input, "format": engine.format().name(), "output": args.output,
            "words": engine.vocab_len(), "dims": engine.dims(), "index": index,
            "quantize": quantize.map(|q| q.to_string()),
            "bytes": bytes, "input_bytes": input_bytes, "ratio": ratio,
        }));
    }
    println!(
        "wrote {} ({} words x {} dims, from {}{}; {} bytes, {ratio:.3} of the input's {input_bytes}){}",
        args.output.display(), engine.vocab_len(), engine.dims(), engine.format(),
        quantize.map(|q| format!(", quantized {q}")).unwrap_or_default(), bytes,
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

/// A `--quantize` scheme.
#[derive(Clone, Copy, Debug)]
enum Quantize {
    /// Product quantization with this many subquantizers.
    Pq(usize),
    /// One byte per component and a scale per word.
    Int8,
}

impl std::fmt::Display for Quantize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quantize::Pq(m) => write!(f, "pq:{m}"),
            Quantize::Int8 => f.write_str("int8"),
        }
    }
}

/// `pq:M` or `int8`.
fn parse_quantize(text: &str) -> std::result::Result<Quantize, String> {
    if text == "int8" {
        return Ok(Quantize::Int8);
    }
    let number = text.strip_prefix("pq:").ok_or_else(|| format!("unknown quantization {text:?}; expected int8 (one byte per component) or pq:M (M one-byte subquantizers per row, dividing the dimensions)"))?;
    let m = number.parse::<usize>().ok().filter(|&m| m > 0).ok_or_else(|| format!("pq:{number} needs M, a whole number of subquantizers above 0 that divides the dimensions"))?;
    Ok(Quantize::Pq(m))
}
