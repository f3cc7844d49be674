//! `--fit FILE` and `--fit-max N`: the corpus that anisotropy corrections are fitted on, shared by
//! `eval wic`, `eval wsd`, `compare`, `report` and the terminal UI.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use clap::builder::RangedU64ValueParser;
use vecshift::analysis::postprocess;
use vecshift::{Embedder, LayerVectors, Occurrence};

/// Where the corrections are fitted.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// Fit the corrections on this corpus (one sentence per line; one word of each sentence, at
    /// most --fit-max) instead of the occurrences at hand.
    #[arg(long, value_name = "FILE")]
    pub fit: Option<PathBuf>,
    /// Sentences of --fit used at most.
    #[arg(long, default_value_t = 5000, value_parser = RangedU64ValueParser::<usize>::new().range(2..))]
    pub fit_max: usize,
}

impl Default for FitArgs {
    fn default() -> Self {
        FitArgs { fit: None, fit_max: 5000 }
    }
}

impl FitArgs {
    /// The --fit corpus's occurrences (one word per sentence), named by its path, when given.
    pub fn occurrences(&self) -> Result<Option<(String, Vec<Occurrence>)>> {
        let Some(path) = &self.fit else { return Ok(None) };
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the --fit corpus {}", path.display()))?;
        let occurrences = postprocess::corpus_occurrences(&text, self.fit_max);
        if occurrences.len() < 2 {
            anyhow::bail!("the --fit corpus {} has fewer than two sentences with words; give one sentence per line", path.display());
        }
        Ok(Some((path.display().to_string(), occurrences)))
    }

    /// The --fit corpus embedded by `engine`, named by its path and size, when given.
    pub fn vectors(&self, engine: &dyn Embedder) -> Result<Option<(String, Vec<LayerVectors>)>> {
        let Some((name, occurrences)) = self.occurrences()? else { return Ok(None) };
        let vectors = engine.embed_vectors(&occurrences, engine.default_pooling()).context("embedding the --fit corpus")?;
        Ok(Some((name, vectors)))
    }
}
