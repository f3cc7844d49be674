//! `vecshift compress`: a compressed copy of a contextual model, as a directory `--bert` loads.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;
use vecshift::ModelSource;
use vecshift::compress::{Checkpoint, Variant};

use super::GlobalArgs;
use super::output::print_json;

/// Arguments of `compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    /// The model: a directory (config.json, tokenizer.json, model.safetensors) or a Hugging Face id.
    #[arg(value_name = "DIR|HF_ID")]
    source: String,
    /// The variant (f16, bf16, int8, int8-asym, int4[:gN], prune:P, prune-neurons:P,
    /// drop-layers:I,J, rank:R, chained with +).
    #[arg(long, value_name = "V")]
    variant: String,
    /// The directory to write (must not exist yet; it appears only once complete).
    #[arg(long, short, value_name = "DIR")]
    output: PathBuf,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

/// Tokenizer files copied beside the weights when the source has them (transformers reads the
/// others; vecshift needs tokenizer.json only).
const TOKENIZER_FILES: &[&str] =
    &["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt"];

pub fn run(global: &GlobalArgs, args: CompressArgs) -> Result<()> {
    let variant = super::parse_variant(&args.variant)?;
    let out = &args.output;
    if out.exists() {
        bail!("-o {}: it already exists; name a new folder (compress does not overwrite)", out.display());
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!("-o {}: the folder {} does not exist", out.display(), parent.display());
    }
    let source = ModelSource::parse(&args.source)?;
    let files = source.resolve().with_context(|| format!("compress {}", args.source))?;
    // A sharded source counts all its shards.
    let original = files.weight_files()?.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    let mut checkpoint = Checkpoint::read(&files.config, &files.weights).with_context(|| format!("compress {}", args.source))?;
    checkpoint.apply(&variant).with_context(|| format!("compress {} --variant {variant}", args.source))?;

    // Written into a hidden folder beside the target and renamed: no half-written model.
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let temp = tempfile::Builder::new().prefix(&format!(".{name}.")).tempdir_in(&parent).context("creating a temporary folder")?;
    checkpoint.write(temp.path())?;
    for file in TOKENIZER_FILES {
        let from = files.dir.join(file);
        if from.is_file() {
            std::fs::copy(&from, temp.path().join(file)).with_context(|| format!("copying {}", from.display()))?;
        }
    }
    let written = std::fs::metadata(temp.path().join("model.safetensors")).map(|m| m.len()).unwrap_or(0);
    std::fs::rename(temp.path(), out).with_context(|| format!("moving the model to {}", out.display()))?;
    // The folder was renamed away; nothing is left for the guard to remove.
    let _ = temp.keep();
    report(global, &args.source, &variant, out, original, written)
}

fn report(global: &GlobalArgs, source: &str, variant: &Variant, out: &Path, original: u64, written: u64) -> Result<()> {
    if global.json {
        return print_json(&json!({
            "source": source, "variant": variant.to_string(), "output": out,
            "bytes": written, "original_bytes": original,
        }));
    }
    println!(
        "wrote {} (variant {}): model.safetensors {} bytes, was {} ({:.1}%)",
        out.display(),
        variant,
        written,
        original,
        100.0 * written as f64 / original.max(1) as f64
    );
    Ok(())
}
