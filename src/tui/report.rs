//! The save key: the comparison on screen as a JSON file (the shape of `vecshift compare
//! --json`) or a Markdown report, written atomically into the current directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use vecshift::Pooling;

use super::analysis::Side;
use super::app::App;
use crate::cli::output::write_atomically;

/// The file format of a saved report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// Same keys as `vecshift compare --json`.
    Json,
    /// A human-readable report.
    Markdown,
}

impl ReportFormat {
    fn extension(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Markdown => "md",
        }
    }
}

/// The static side as `compare --json` writes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StaticJson {
    /// Model name.
    pub model: String,
    /// Pairwise cosines.
    pub matrix: Vec<Vec<f32>>,
    /// Mean off-diagonal cosine.
    pub mean_similarity: f32,
}

/// One BERT layer as `compare --json` writes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerJson {
    /// Layer index (0 = embeddings output).
    pub layer: usize,
    /// Pairwise cosines.
    pub matrix: Vec<Vec<f32>>,
    /// Mean off-diagonal cosine.
    pub mean_similarity: f32,
}

/// The contextual side as `compare --json` writes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContextualJson {
    /// Model name.
    pub model: String,
    /// WordPiece pooling.
    pub pooling: Pooling,
    /// Every layer.
    pub layers: Vec<LayerJson>,
}

/// One engine as `compare --json` lists it under `engines`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EngineJson {
    /// The engine's name.
    pub name: String,
    /// Static or contextual.
    pub kind: vecshift::EngineKind,
    /// Architecture or file format.
    pub architecture: String,
    /// Every layer (a static engine has one).
    pub layers: Vec<LayerJson>,
}

/// A saved comparison: the compared sentences only (those with the word and with vectors).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The target word.
    pub word: String,
    /// The compared sentences.
    pub sentences: Vec<String>,
    /// The word's byte span in each.
    pub spans: Vec<[usize; 2]>,
    /// Sense labels, when known.
    pub senses: Vec<Option<String>>,
    /// The static comparison, unless a word has no static vector.
    #[serde(rename = "static")]
    pub static_: Option<StaticJson>,
    /// The contextual comparison.
    pub contextual: ContextualJson,
    /// Every engine, static first, as `compare --json` lists them.
    pub engines: Vec<EngineJson>,
    /// The anisotropy correction applied to the contextual vectors before the cosines
    /// (`none`, `center`, `all-but-the-top:D`, `whiten`, `standardize`), as `compare --json`.
    pub postprocess: String,
    /// What it was fitted on: `null` for the compared occurrences themselves (or no
    /// correction), else the `--fit` corpus with its size.
    pub fit: Option<String>,
    /// Each engine's layer on screen (in `engines` order), whose matrix the Markdown report
    /// prints.
    #[serde(skip)]
    pub shown_layers: Vec<usize>,
    /// Sentences left out of the comparison, for the Markdown report.
    #[serde(skip)]
    pub left_out: Vec<(String, String)>,
}

impl Report {
    /// The comparison the UI shows; an error says why there is nothing to save yet.
    pub fn build(app: &App) -> Result<Report, String> {
        let info = app.info().ok_or("the models are still loading; save when the numbers are on screen")?;
        if app.encoding() > 0 {
            return Err(format!("{} sentences are still encoding; save when they are done", app.encoding()));
        }
        let analysis = &app.analysis;
        if !analysis.comparable() {
            return Err(format!("fewer than two sentences contain {:?}: nothing to compare yet", app.word));
        }
        let occurrences: Vec<_> = analysis.rows.iter().filter_map(|&i| app.entries[i].located.as_ref().ok()).collect();
        let layers_json = |layers: &[crate::tui::analysis::LayerStats]| -> Vec<LayerJson> {
            layers.iter().enumerate().map(|(layer, s)| LayerJson { layer, matrix: s.matrix.clone(), mean_similarity: s.mean }).collect()
        };
        // As `compare --json`: static engines first, then contextual ones, each in order; an
        // engine left out (a word without a static vector) is not listed.
        let mut statics = Vec::new();
        let mut contextuals = Vec::new();
        for (index, (engine, side)) in info.engines.iter().zip(&analysis.engines).enumerate() {
            let layers = match side {
                Side::Ready(layers) => layers_json(layers),
                Side::Missing(_) => continue,
                Side::Pending => return Err(format!("{} is still encoding; save in a moment", engine.name)),
            };
            let shown = app.layer_of(index).min(layers.len().saturating_sub(1));
            let json = EngineJson { name: engine.name.clone(), kind: engine.kind, architecture: engine.architecture.clone(), layers };
            if engine.is_static() { statics.push((json, shown)) } else { contextuals.push((json, shown)) }
        }
        let static_ = statics.first().map(|(s, _)| StaticJson {
            model: s.name.clone(),
            matrix: s.layers[0].matrix.clone(),
            mean_similarity: s.layers[0].mean_similarity,
        });
        let (first, _) = contextuals.first().ok_or("no contextual engine is loaded: nothing to save in the compare --json shape")?;
        let contextual = ContextualJson { model: first.name.clone(), pooling: app.pooling, layers: first.layers.clone() };
        let left_out = (0..app.entries.len())
            .filter(|i| !analysis.rows.contains(i))
            .map(|i| {
                let reason = match app.row_state(i) {
                    super::app::RowState::NoWord(r) | super::app::RowState::Failed(r) => r.to_owned(),
                    _ => "not encoded".to_owned(),
                };
                (app.entries[i].text.clone(), reason)
            })
            .collect();
        let (engines, shown_layers) = statics.into_iter().chain(contextuals).unzip();
        Ok(Report {
            word: app.word.clone(),
            sentences: occurrences.iter().map(|o| o.sentence().to_owned()).collect(),
            spans: occurrences.iter().map(|o| [o.span().start, o.span().end]).collect(),
            senses: analysis.rows.iter().map(|&i| app.entries[i].sense.clone()).collect(),
            static_,
            contextual,
            engines,
            postprocess: app.postprocess.to_string(),
            fit: app.fit.clone().filter(|_| app.postprocess != vecshift::analysis::postprocess::Postprocess::None),
            shown_layers,
            left_out,
        })
    }

    /// The Markdown report: every engine, as the JSON lists them.
    pub fn markdown(&self) -> String {
        let cos = |v: f32| if v.is_nan() { "n/a".to_owned() } else { format!("{v:.3}") };
        let n = self.sentences.len();
        let contextual = |e: &&EngineJson| e.kind == vecshift::EngineKind::Contextual;
        let mut md = String::new();
        let _ = writeln!(md, "# vecshift: {:?} in {n} sentences\n", self.word);
        for engine in self.engines.iter().filter(contextual) {
            let _ = writeln!(md, "- contextual: {} ({}, {} pooling); layer 0 is the embeddings output", engine.name, engine.architecture, self.contextual.pooling);
        }
        if self.postprocess != "none" {
            let on = self.fit.clone().unwrap_or_else(|| format!("the {n} occurrences compared"));
            let _ = writeln!(md, "- contextual vectors corrected: {}, fitted per layer on {on} (static vectors as they are)", self.postprocess);
        }
        let statics: Vec<&EngineJson> = self.engines.iter().filter(|e| e.kind == vecshift::EngineKind::Static).collect();
        for s in &statics {
            let _ = writeln!(md, "- static: {}: one vector for every sentence, mean cosine {}", s.name, cos(s.layers[0].mean_similarity));
        }
        if statics.is_empty() {
            md.push_str("- static: the word has no static vector, so the static side is left out\n");
        }
        // One column per engine; engines of different depths share the layer index.
        md.push_str("\n## Mean cosine between the sentences, per layer\n\n| layer |");
        for engine in &self.engines {
            let _ = write!(md, " {} |", engine.name.replace('|', "\\|"));
        }
        md.push_str("\n|---:|");
        md.push_str(&"---:|".repeat(self.engines.len()));
        md.push('\n');
        let depth = self.engines.iter().filter(contextual).map(|e| e.layers.len()).max().unwrap_or(1);
        for layer in 0..depth {
            let _ = write!(md, "| {layer} |");
            for engine in &self.engines {
                let value = match engine.kind {
                    vecshift::EngineKind::Static => engine.layers.first(),
                    vecshift::EngineKind::Contextual => engine.layers.get(layer),
                };
                let _ = write!(md, " {} |", value.map_or(String::new(), |l| cos(l.mean_similarity)));
            }
            md.push('\n');
        }
        for (engine, &shown) in self.engines.iter().zip(&self.shown_layers).filter(|(e, _)| contextual(e)) {
            let Some(shown) = engine.layers.get(shown) else { continue };
            let _ = write!(md, "\n## Pairwise cosines at layer {} ({})\n\n|   |", shown.layer, engine.name);
            for j in 0..n {
                let _ = write!(md, " S{} |", j + 1);
            }
            md.push_str("\n|---|");
            md.push_str(&"---:|".repeat(n));
            md.push('\n');
            for (i, row) in shown.matrix.iter().enumerate() {
                let _ = write!(md, "| S{} |", i + 1);
                for v in row {
                    let _ = write!(md, " {} |", cos(*v));
                }
                md.push('\n');
            }
        }
        md.push_str("\n## Sentences\n\n|   | sense | sentence |\n|---|---|---|\n");
        for (i, ((sentence, span), sense)) in self.sentences.iter().zip(&self.spans).zip(&self.senses).enumerate() {
            let marked = format!("{}**{}**{}", &sentence[..span[0]], &sentence[span[0]..span[1]], &sentence[span[1]..]);
            let _ = writeln!(md, "| S{} | {} | {} |", i + 1, sense.as_deref().unwrap_or(""), marked.replace('|', "\\|"));
        }
        if !self.left_out.is_empty() {
            md.push_str("\nLeft out:\n\n");
            for (sentence, reason) in &self.left_out {
                let _ = writeln!(md, "- {sentence} ({reason})");
            }
        }
        md
    }
}

/// A file name that says what is in it and is not taken yet: `vecshift-bank-mean.json`,
/// then `vecshift-bank-mean-2.json`, ...
pub fn free_name(dir: &Path, report: &Report, format: ReportFormat) -> PathBuf {
    let word: String =
        report.word.chars().map(|c| if c.is_alphanumeric() || c == '-' { c } else { '_' }).take(40).collect();
    let stem = format!("vecshift-{word}-{}", report.contextual.pooling);
    let ext = format.extension();
    (1..)
        .map(|n| if n == 1 { dir.join(format!("{stem}.{ext}")) } else { dir.join(format!("{stem}-{n}.{ext}")) })
        .find(|p| !p.exists())
        .expect("some numbered name is free")
}

/// Writes the report into `dir` under a fresh name; returns the path.
pub fn save(report: &Report, format: ReportFormat, dir: &Path) -> Result<PathBuf> {
    let path = free_name(dir, report, format);
    let text = match format {
        ReportFormat::Json => serde_json::to_string_pretty(report).context("serialising the report")? + "\n",
        ReportFormat::Markdown => report.markdown(),
    };
    write_atomically(&path, |temp| std::fs::write(temp, &text).with_context(|| format!("cannot write {}", temp.display())))?;
    Ok(path)
}
