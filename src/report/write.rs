//! A [`Report`] as JSON, JSONL, CSV, Markdown or HTML.

use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

use serde::Serialize;

use super::{LayerMetrics, Report, WordReport};
use crate::engine::EngineKind;
use crate::error::{Error, Result};

/// The output formats of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One JSON document: `words`, `summary`, `skipped` and the settings.
    Json,
    /// One line per word (the objects of `words`), then one line with everything else.
    Jsonl,
    /// One row per word, engine and layer (`engine` is `bert` for a contextual engine or
    /// `static`, `model` the engine's name); rows with an empty `word` are the summary over words.
    /// With compression variants, the rows of `variants` follow (`engine` is `variant`, one row
    /// per variant and layer) and every row gains their columns at the end, named as the JSON
    /// keys (see [`crate::compress::VariantDrift`]). The model-to-model section is in the other
    /// formats.
    Csv,
    /// Markdown tables.
    Md,
    /// One self-contained HTML page with inline SVG charts.
    Html,
}

impl OutputFormat {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Json => "json",
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::Csv => "csv",
            OutputFormat::Md => "md",
            OutputFormat::Html => "html",
        }
    }

    /// Guesses the format from a file name's extension.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        extension.parse().ok()
    }
}

impl FromStr for OutputFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(OutputFormat::Json),
            "jsonl" | "ndjson" => Ok(OutputFormat::Jsonl),
            "csv" => Ok(OutputFormat::Csv),
            "md" | "markdown" => Ok(OutputFormat::Md),
            "html" | "htm" => Ok(OutputFormat::Html),
            _ => Err(Error::InvalidArgument(format!("unknown output format {s:?}; expected json, jsonl, csv, md or html"))),
        }
    }
}

impl Report {
    /// Writes the report in `format`.
    pub fn write(&self, format: OutputFormat, out: &mut dyn Write) -> io::Result<()> {
        match format {
            OutputFormat::Json => {
                serde_json::to_writer_pretty(&mut *out, self)?;
                writeln!(out)
            }
            OutputFormat::Jsonl => self.write_jsonl(out),
            OutputFormat::Csv => self.write_csv(out),
            OutputFormat::Md => self.write_markdown(out),
            OutputFormat::Html => super::html::write(self, out),
        }
    }

    fn write_jsonl(&self, out: &mut dyn Write) -> io::Result<()> {
        /// A word's line: its measures as in `words`, and every engine's.
        #[derive(Serialize)]
        struct WordLine<'a> {
            #[serde(flatten)]
            word: &'a WordReport,
            engines: Vec<EngineWordLine<'a>>,
        }
        #[derive(Serialize)]
        struct EngineWordLine<'a> {
            name: &'a str,
            #[serde(flatten)]
            measures: &'a super::EngineWord,
        }
        for (i, word) in self.words.iter().enumerate() {
            let engines = self.engines.iter().map(|e| EngineWordLine { name: &e.info.name, measures: &e.words[i] }).collect();
            serde_json::to_writer(&mut *out, &WordLine { word, engines })?;
            writeln!(out)?;
        }
        #[derive(Serialize)]
        struct Rest<'a> {
            input: &'a super::InputInfo,
            models: &'a super::Models,
            max_per_word: usize,
            occurrences: usize,
            summary: &'a super::Summary,
            skipped: &'a [super::BadRow],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            postprocess: &'a [super::CorrectionReport],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            variants: &'a [crate::compress::VariantDrift],
            engines: Vec<EngineSummary<'a>>,
            cka: &'a [super::Cka],
            neighbour_overlap: &'a [super::NeighbourOverlap],
        }
        /// An engine without its per-word measures, which the lines before have.
        #[derive(Serialize)]
        struct EngineSummary<'a> {
            #[serde(flatten)]
            info: &'a super::EngineInfo,
            summary: &'a [LayerMetrics],
        }
        let rest = Rest {
            input: &self.input,
            models: &self.models,
            max_per_word: self.max_per_word,
            occurrences: self.occurrences,
            summary: &self.summary,
            skipped: &self.skipped,
            postprocess: &self.postprocess,
            variants: &self.variants,
            engines: self.engines.iter().map(|e| EngineSummary { info: &e.info, summary: &e.summary }).collect(),
            cka: &self.cka,
            neighbour_overlap: &self.neighbour_overlap,
        };
        serde_json::to_writer(&mut *out, &rest)?;
        writeln!(out)
    }

    fn write_csv<'a>(&'a self, out: &mut dyn Write) -> io::Result<()> {
        #[derive(Serialize)]
        struct CsvRow<'a> {
            word: &'a str,
            engine: &'static str,
            layer: usize,
            occurrences: usize,
            sampled: usize,
            self_similarity: Option<f64>,
            anisotropy_baseline: Option<f64>,
            adjusted_self_similarity: Option<f64>,
            intra_sentence_similarity: Option<f64>,
            first_pc_variance: Option<f64>,
            within_sense: Option<f64>,
            between_sense: Option<f64>,
            nn_sense_accuracy: Option<f64>,
            clusters_k: Option<usize>,
            clusters_silhouette: Option<f64>,
            clusters_ari: Option<f64>,
            model: &'a str,
            /// The word's pieces (see [`WordReport::pieces`]); empty on the summary rows.
            pieces: String,
        }
        fn row<'a>(word: &'a str, (engine, model): (&'static str, &'a str), occurrences: usize, sampled: usize, pieces: String, m: &LayerMetrics) -> CsvRow<'a> {
            let s = m.senses.clone().unwrap_or_default();
            CsvRow {
                word,
                engine,
                layer: m.layer,
                occurrences,
                sampled,
                self_similarity: m.self_similarity,
                anisotropy_baseline: m.anisotropy_baseline,
                adjusted_self_similarity: m.adjusted_self_similarity,
                intra_sentence_similarity: m.intra_sentence_similarity,
                first_pc_variance: m.first_pc_variance,
                within_sense: s.within_sense,
                between_sense: s.between_sense,
                nn_sense_accuracy: s.nn_sense_accuracy,
                clusters_k: m.clusters.as_ref().map(|c| c.k),
                clusters_silhouette: m.clusters.as_ref().and_then(|c| c.silhouette),
                clusters_ari: m.clusters.as_ref().and_then(|c| c.ari),
                model,
                pieces,
            }
        }
        /// The columns of a variant row, after the measure columns: empty on the other rows.
        #[derive(Default, Serialize)]
        struct VariantColumns<'a> {
            variant: Option<&'a str>,
            base: Option<&'a str>,
            bytes: Option<u64>,
            base_bytes: Option<u64>,
            tokens_per_second: Option<f64>,
            base_tokens_per_second: Option<f64>,
            drift_mean: Option<f64>,
            drift_min: Option<f64>,
            drift_p5: Option<f64>,
            self_similarity_delta: Option<f64>,
            sense_separation_delta: Option<f64>,
            neighbour_overlap: Option<f64>,
        }
        // Without variants the columns stay as they always were: a report's CSV gains columns only
        // when it has something to put in them.
        let no_variant: &[VariantColumns] = if self.variants.is_empty() { &[] } else { &[VariantColumns::default()] };
        let mut writer = csv::Writer::from_writer(out);
        let sampled: usize = self.words.iter().map(|w| w.sampled).sum();
        let engine = |e: &'a super::EngineReport| {
            let kind = if e.info.kind == crate::engine::EngineKind::Static { "static" } else { "bert" };
            (kind, e.info.name.as_str())
        };
        let groups = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.word.as_str(), w.occurrences, w.sampled, Some(i)))
            .chain([("", self.occurrences, sampled, None)]);
        for (word, occurrences, sampled, index) in groups {
            for e in &self.engines {
                let layers = match index {
                    Some(i) => &e.words[i].layers,
                    // An engine that has no vector for any word has no summary either.
                    None if e.words.iter().all(|w| w.layers.is_empty()) => continue,
                    None => &e.summary,
                };
                let pieces = index.map(|i| pieces_label(&self.words[i])).unwrap_or_default();
                for m in layers {
                    writer.serialize((row(word, engine(e), occurrences, sampled, pieces.clone(), m), no_variant)).map_err(io::Error::other)?;
                }
            }
        }
        for v in &self.variants {
            for l in &v.layers {
                // Over every word's sampled occurrences, as a summary row: no word, no pieces.
                let measures = row("", ("variant", &v.engine), v.occurrences, v.occurrences, String::new(), &LayerMetrics { layer: l.layer, ..LayerMetrics::default() });
                let columns = VariantColumns {
                    variant: Some(&v.variant),
                    base: Some(&v.base),
                    bytes: Some(v.bytes),
                    base_bytes: Some(v.base_bytes),
                    tokens_per_second: Some(v.tokens_per_second),
                    base_tokens_per_second: Some(v.base_tokens_per_second),
                    drift_mean: Some(l.drift_mean),
                    drift_min: Some(l.drift_min),
                    drift_p5: Some(l.drift_p5),
                    self_similarity_delta: l.self_similarity_delta,
                    sense_separation_delta: l.sense_separation_delta,
                    neighbour_overlap: l.neighbour_overlap,
                };
                writer.serialize((measures, [columns])).map_err(io::Error::other)?;
            }
        }
        writer.flush()
    }

    fn write_markdown(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "# vecshift report: {}", self.input.name)?;
        writeln!(out)?;
        for line in self.about() {
            writeln!(out, "- {line}")?;
        }
        writeln!(out)?;
        writeln!(out, "## Summary: mean over words")?;
        writeln!(out)?;
        markdown_table(out, &self.table_rows(None))?;
        if !self.postprocess.is_empty() {
            writeln!(out)?;
            writeln!(out, "## Anisotropy corrections: self-similarity per layer, mean over words")?;
            writeln!(out)?;
            writeln!(out, "{}", corrections_note(self))?;
            writeln!(out)?;
            let (titles, rows) = corrections_table(self);
            writeln!(out, "| layer | {} |", titles.join(" | "))?;
            writeln!(out, "|---|{}", "---:|".repeat(titles.len()))?;
            for (layer, values) in rows {
                writeln!(out, "| {layer} | {} |", values.join(" | "))?;
            }
        }
        super::variants::write_markdown(self, out)?;
        for (i, word) in self.words.iter().enumerate() {
            writeln!(out)?;
            writeln!(out, "## {}", word_heading(word))?;
            writeln!(out)?;
            markdown_table(out, &self.table_rows(Some(i)))?;
            if !word.examples.is_empty() {
                writeln!(out)?;
                let first = if word.examples.len() < word.occurrences { format!("the first {} sampled, ", word.examples.len()) } else { String::new() };
                writeln!(out, "Sentences ({first}grouped by sense; S1, S2... are the rows of the HTML report's heatmaps):")?;
                writeln!(out)?;
                for (i, example) in word.examples.iter().enumerate() {
                    writeln!(out, "- S{}: {}", i + 1, example_text(self, example).replace('\n', " "))?;
                }
            }
        }
        self.write_model_to_model(out)?;
        if !self.skipped.is_empty() {
            writeln!(out)?;
            writeln!(out, "## Skipped lines")?;
            writeln!(out)?;
            for bad in &self.skipped {
                writeln!(out, "- line {}: {}", bad.line, bad.reason.replace('\n', " "))?;
            }
        }
        Ok(())
    }
}

impl Report {
    /// The rows of a measure table, of one word (its index) or of the means over words (`None`):
    /// the first contextual engine's layers by number, the first static engine as `static`,
    /// then each other engine's layers as `NAME LAYER` (a static one as `NAME`).
    pub(super) fn table_rows(&self, word: Option<usize>) -> Vec<(String, &LayerMetrics)> {
        let first_contextual = self.engines.iter().position(|e| e.info.kind == EngineKind::Contextual);
        let first_static = self.engines.iter().position(|e| e.info.kind == EngineKind::Static);
        let (layers, static_) = match word {
            Some(i) => (&self.words[i].layers, self.words[i].static_.as_ref()),
            None => (&self.summary.layers, self.summary.static_.as_ref()),
        };
        let mut rows: Vec<(String, &LayerMetrics)> =
            layers.iter().map(|m| (m.layer.to_string(), m)).chain(static_.map(|m| ("static".to_owned(), m))).collect();
        for (_, engine) in self.engines.iter().enumerate().filter(|&(e, _)| Some(e) != first_contextual && Some(e) != first_static) {
            let layers = match word {
                Some(i) => &engine.words[i].layers,
                None if engine.words.iter().all(|w| w.layers.is_empty()) => continue,
                None => &engine.summary,
            };
            rows.extend(layers.iter().map(|m| {
                let label = match engine.info.kind {
                    EngineKind::Static => engine.info.name.clone(),
                    EngineKind::Contextual => format!("{} {}", engine.info.name, m.layer),
                };
                (label, m)
            }));
        }
        rows
    }

    /// The model-to-model section: per pair of engines its CKA matrix, then the neighbour
    /// overlaps.
    fn write_model_to_model(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.cka.is_empty() {
            return Ok(());
        }
        writeln!(out)?;
        writeln!(out, "## Model to model")?;
        writeln!(out)?;
        writeln!(out, "{}", MODEL_TO_MODEL_NOTE)?;
        for cka in &self.cka {
            writeln!(out)?;
            writeln!(out, "### Linear CKA: {} (rows) vs {} (columns), {}", cka.a, cka.b, count(cka.n, "occurrence"))?;
            writeln!(out)?;
            let columns = cka.matrix.first().map_or(0, Vec::len);
            let header: Vec<String> = (0..columns).map(|j| format!("{j}")).collect();
            writeln!(out, "| layer | {} |", header.join(" | "))?;
            writeln!(out, "|---|{}", "---:|".repeat(columns))?;
            for (i, row) in cka.matrix.iter().enumerate() {
                let values: Vec<String> = row.iter().map(|&v| fmt(v)).collect();
                writeln!(out, "| {i} | {} |", values.join(" | "))?;
            }
        }
        if !self.neighbour_overlap.is_empty() {
            writeln!(out)?;
            writeln!(out, "### Nearest-neighbour overlap")?;
            writeln!(out)?;
            writeln!(out, "| a | layer | b | layer | k | n | overlap |")?;
            writeln!(out, "|---|---:|---|---:|---:|---:|---:|")?;
            for o in &self.neighbour_overlap {
                writeln!(out, "| {} | {} | {} | {} | {} | {} | {} |", o.a, o.layer_a, o.b, o.layer_b, o.k, o.n, fmt(o.overlap))?;
            }
        }
        Ok(())
    }

    /// What the report was made from, one line each: the models, the input, the sample cap.
    pub(super) fn about(&self) -> Vec<String> {
        let bert = &self.models.bert;
        let static_name = self.models.static_.as_ref().map_or("none".to_owned(), |s| format!("{} ({} dims)", s.name, s.dims));
        let mut lines = vec![
            format!("BERT: {} ({} layers incl. the embeddings output as layer 0, {} dims, {} pooling)", bert.name, bert.layers, bert.dims, bert.pooling),
            format!("static: {static_name}, shown as one layer"),
            format!(
                "input: {} ({}), {}, {} of {}, {} skipped",
                self.input.name,
                self.input.format,
                count(self.input.lines, "line"),
                count(self.occurrences, "occurrence"),
                count(self.words.len(), "word"),
                count(self.skipped.len(), "line"),
            ),
            format!("first-PC variance and the sense measures use at most {} sampled occurrences per word; the other measures use all", self.max_per_word),
        ];
        if self.engines.len() > 2 || self.models.static_.is_none() && self.engines.len() > 1 {
            let each: Vec<String> = self
                .engines
                .iter()
                .map(|e| match e.info.pooling {
                    Some(pooling) => format!("{} ({}, {} layers, {} dims, {pooling} pooling)", e.info.name, e.info.architecture, e.info.layers, e.info.dims),
                    None => format!("{} (static, {} dims)", e.info.name, e.info.dims),
                })
                .collect();
            lines.insert(2, format!("all engines: {}", each.join(", ")));
        }
        lines
    }
}

/// What the corrections table shows and how it was made.
pub(super) fn corrections_note(report: &Report) -> String {
    let fits: Vec<String> = report.postprocess.iter().map(|c| format!("{}: {}", c.method, c.fit)).collect();
    format!(
        "Each correction is fitted per layer and applied before the cosines; self-similarity (adjusted: minus the anisotropy baseline, in parentheses) over each word's sampled occurrences (at most {}). Fitted on: {}. The static engine is not corrected (one vector per word stays one vector).",
        report.max_per_word,
        fits.join("; ")
    )
}

/// The corrections table: a column per correction, a row per layer, cells `self-sim (adjusted)`.
pub(super) fn corrections_table(report: &Report) -> (Vec<String>, Vec<(usize, Vec<String>)>) {
    let titles = report.postprocess.iter().map(|c| c.method.clone()).collect();
    let rows = (0..report.models.bert.layers)
        .map(|layer| {
            let cells = report
                .postprocess
                .iter()
                .map(|c| {
                    let m = c.layers.get(layer);
                    format!("{} ({})", fmt(m.and_then(|m| m.self_similarity)), fmt(m.and_then(|m| m.adjusted_self_similarity)))
                })
                .collect();
            (layer, cells)
        })
        .collect();
    (titles, rows)
}

/// Where an example is and what it says: `bank.tsv line 4 [river]: We sat on the bank.`
/// (`line 4` for stdin).
pub(super) fn example_text(report: &Report, example: &super::Example) -> String {
    let place = match report.input.name.as_str() {
        "stdin" | "-" | "" => format!("line {}", example.line),
        name => format!("{name} line {}", example.line),
    };
    let sense = example.sense.as_ref().map(|s| format!(" [{s}]")).unwrap_or_default();
    format!("{place}{sense}: {}", example.sentence)
}
/// What the model-to-model measures are, for the Markdown and HTML reports.
pub(super) const MODEL_TO_MODEL_NOTE: &str = "Linear CKA (Kornblith et al. 2019, debiased HSIC): how alike two engines' vectors \
of the same sampled occurrences are, layer by layer; 1 = the same up to rotation and scale. Nearest-neighbour overlap: \
the share of each occurrence's k nearest other occurrences (by cosine) that both engines name, at matching relative depth.";

/// "1 line", "2 lines".
pub(super) fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// "bank: 9 occurrences (finance 4, river 5)", with the sample size when it is smaller.
pub(super) fn word_heading(word: &WordReport) -> String {
    let mut heading = format!("{}: {}", word.word, count(word.occurrences, "occurrence"));
    if word.sampled < word.occurrences {
        heading += &format!(", {} sampled", word.sampled);
    }
    if !word.senses.is_empty() {
        let senses: Vec<String> = word.senses.iter().map(|(s, n)| format!("{s} {n}")).collect();
        heading += &format!(" ({})", senses.join(", "));
    }
    if !word.pieces.is_empty() {
        heading += &format!("; pieces: {}", pieces_label(word));
    }
    heading
}

/// "Ġbank ×7, bank ×2": each way the word was split, with its count when not every occurrence.
pub(super) fn pieces_label(word: &WordReport) -> String {
    word.pieces.iter().map(|p| p.label(word.occurrences)).collect::<Vec<_>>().join(", ")
}

/// The column titles of the measure tables, and each measure of a row.
pub(super) const COLUMNS: [&str; 8] =
    ["self-sim", "baseline", "adjusted", "intra-sent", "1st PC var", "within sense", "between sense", "1-NN sense acc"];

pub(super) fn cells(m: &LayerMetrics) -> [Option<f64>; 8] {
    let s = m.senses.clone().unwrap_or_default();
    [
        m.self_similarity,
        m.anisotropy_baseline,
        m.adjusted_self_similarity,
        m.intra_sentence_similarity,
        m.first_pc_variance,
        s.within_sense,
        s.between_sense,
        s.nn_sense_accuracy,
    ]
}

pub(super) fn fmt(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.3}"))
}

/// A measure table: the column titles after "layer", and per row (see [`Report::table_rows`])
/// its name and formatted cells. The sense columns appear when a row has sense labels,
/// the cluster columns (k, silhouette, and ARI with labels) when a row has clusters.
pub(super) fn table(rows: &[(String, &LayerMetrics)]) -> (Vec<&'static str>, Vec<(String, Vec<String>)>) {
    let all = || rows.iter().map(|(_, m)| *m);
    let shown = if all().any(|m| m.senses.is_some()) { COLUMNS.len() } else { 5 };
    let clusters = all().any(|m| m.clusters.is_some());
    let ari = all().any(|m| m.clusters.as_ref().is_some_and(|c| c.ari.is_some()));
    let mut titles = COLUMNS[..shown].to_vec();
    if clusters {
        titles.extend(["clusters k", "silhouette"]);
        if ari {
            titles.push("ARI");
        }
    }
    let rows = rows
        .iter()
        .map(|(name, m)| {
            let mut values: Vec<String> = cells(m)[..shown].iter().map(|&v| fmt(v)).collect();
            if clusters {
                let c = m.clusters.as_ref();
                values.push(c.map_or_else(|| "–".to_owned(), |c| c.k.to_string()));
                values.push(fmt(c.and_then(|c| c.silhouette)));
                if ari {
                    values.push(fmt(c.and_then(|c| c.ari)));
                }
            }
            (name.clone(), values)
        })
        .collect();
    (titles, rows)
}

fn markdown_table(out: &mut dyn Write, rows: &[(String, &LayerMetrics)]) -> io::Result<()> {
    let (titles, rows) = table(rows);
    writeln!(out, "| layer | {} |", titles.join(" | "))?;
    writeln!(out, "|---|{}", "---:|".repeat(titles.len()))?;
    for (name, values) in rows {
        writeln!(out, "| {name} | {} |", values.join(" | "))?;
    }
    Ok(())
}
