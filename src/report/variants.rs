//! The report's section on compression variants (`--variant`): per variant its size and speed
//! beside its original's and its drift per layer ([`crate::compress::VariantDrift`]), as
//! tables shared by the Markdown and the HTML report.

use std::io::{self, Write};

use super::Report;
use crate::compress::{LayerDrift, VariantDrift};

/// What the section shows and how it was measured.
pub(super) const NOTE: &str = "Each variant against its original, over the same sampled occurrences (each word's first, up to \
--max-per-word, 2000 at most): drift = cosine between an occurrence's original and variant vector (mean, min, 5th percentile); \
self-similarity and sense-separation Δ = variant minus original; overlap@10 = share of each occurrence's 10 nearest \
occurrences both name. A layer is the original's layer the variant's stands for. Bytes: the weights as vecshift compress \
stores them. Tokens/s: real (non-padding) tokens per second of wall clock embedding these sentences, each engine timed \
separately in this one process, so only the ratio to the original means something.";

/// The columns of [`overview`].
pub(super) const OVERVIEW_COLUMNS: [&str; 9] =
    ["variant", "bytes", "size", "tokens/s", "speed", "occurrences", "last layer", "drift mean", "drift p5"];

/// The columns of [`layer_table`].
pub(super) const LAYER_COLUMNS: [&str; 7] = ["layer", "drift mean", "drift min", "drift p5", "self-sim Δ", "sense-sep Δ", "overlap@10"];

/// `1234567` as `1,234,567`.
pub(super) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part / whole` as `0.77×`; `–` without a whole.
pub(super) fn ratio(part: f64, whole: f64) -> String {
    if whole > 0.0 && part.is_finite() { format!("{:.2}×", part / whole) } else { "–".to_owned() }
}

/// A cosine: four decimals, since f16 and int8 drift in the third.
pub(super) fn cosine(v: f64) -> String {
    format!("{v:.4}")
}

fn delta(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:+.4}"))
}

/// One row per variant: its label, bytes and size relative to the original's, tokens/s and
/// speed relative to the original's, occurrences, and the drift at its last layer.
pub(super) fn overview(report: &Report) -> Vec<[String; 9]> {
    report
        .variants
        .iter()
        .map(|v| {
            let last = v.layers.last();
            [
                v.variant.clone(),
                grouped(v.bytes),
                ratio(v.bytes as f64, v.base_bytes as f64),
                grouped(v.tokens_per_second.round() as u64),
                ratio(v.tokens_per_second, v.base_tokens_per_second),
                v.occurrences.to_string(),
                last.map_or_else(|| "–".to_owned(), |l| l.layer.to_string()),
                last.map_or_else(|| "–".to_owned(), |l| cosine(l.drift_mean)),
                last.map_or_else(|| "–".to_owned(), |l| cosine(l.drift_p5)),
            ]
        })
        .collect()
}

/// What a variant is measured against, with the original's bytes and speed:
/// `tiny·int8 against tiny (2,000 bytes, 1,234 tokens/s)`.
pub(super) fn heading(v: &VariantDrift) -> String {
    format!(
        "{} against {} ({} bytes, {} tokens/s)",
        v.engine,
        v.base,
        grouped(v.base_bytes),
        grouped(v.base_tokens_per_second.round() as u64)
    )
}

/// A variant's row per layer, in [`LAYER_COLUMNS`].
pub(super) fn layer_table(v: &VariantDrift) -> Vec<[String; 7]> {
    v.layers.iter().map(layer_row).collect()
}

fn layer_row(l: &LayerDrift) -> [String; 7] {
    [
        l.layer.to_string(),
        cosine(l.drift_mean),
        cosine(l.drift_min),
        cosine(l.drift_p5),
        delta(l.self_similarity_delta),
        delta(l.sense_separation_delta),
        l.neighbour_overlap.map_or_else(|| "–".to_owned(), |o| format!("{o:.3}")),
    ]
}

fn markdown_rows<const N: usize>(out: &mut dyn Write, titles: &[&str; N], rows: &[[String; N]]) -> io::Result<()> {
    writeln!(out, "| {} |", titles.join(" | "))?;
    writeln!(out, "|---|{}", "---:|".repeat(N - 1))?;
    for row in rows {
        writeln!(out, "| {} |", row.join(" | "))?;
    }
    Ok(())
}

/// The Markdown section; nothing without variants.
pub(super) fn write_markdown(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    if report.variants.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "## Variants: drift from the original per layer")?;
    writeln!(out)?;
    writeln!(out, "{NOTE}")?;
    writeln!(out)?;
    markdown_rows(out, &OVERVIEW_COLUMNS, &overview(report))?;
    for v in &report.variants {
        writeln!(out)?;
        writeln!(out, "### {}: {}", v.variant, heading(v))?;
        writeln!(out)?;
        markdown_rows(out, &LAYER_COLUMNS, &layer_table(v))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped_in_threes() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(45_441_944), "45,441,944");
        assert_eq!(grouped(100_000), "100,000");
    }
}
