//! The HTML report: one self-contained page, with charts drawn by plotters' SVG backend into
//! strings and inlined, so the file can be mailed or archived on its own.

use std::io::{self, Write};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use super::variants::{self, ratio};
use super::write::{MODEL_TO_MODEL_NOTE, corrections_note, corrections_table, count, example_text, fmt, table, word_heading};
use super::{Cka, HEATMAP_OCCURRENCES, Heatmap, LayerMetrics, Report, WordReport};

/// Words drawn as separate curves or heatmaps; more would be unreadable (the tables have all).
const PLOTTED_WORDS: usize = 12;
/// Rows of the word-by-layer heatmap.
const OVERVIEW_WORDS: usize = 40;
/// Skipped lines listed in the page (the JSON output lists all).
const LISTED_SKIPPED: usize = 200;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws into an in-memory SVG of `size` pixels.
fn svg(size: (u32, u32), draw: impl FnOnce(&Area) -> DrawResult) -> io::Result<String> {
    let mut buffer = String::new();
    {
        let root = SVGBackend::with_string(&mut buffer, size).into_drawing_area();
        let result = root.fill(&WHITE).map_err(Into::into).and_then(|()| draw(&root));
        result.and_then(|()| root.present().map_err(Into::into)).map_err(|e| io::Error::other(e.to_string()))?;
    }
    Ok(buffer)
}

/// A distinct colour per word.
fn palette(i: usize) -> RGBColor {
    let (r, g, b) = Palette99::pick(i).to_rgba().rgb();
    RGBColor(r, g, b)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Characters of a heatmap's row label; a longer one ends in `…` (its tooltip has the whole).
const LABEL_CHARS: usize = 18;

/// `text` cut to `max` characters, the last one `…` when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_owned() } else { text.chars().take(max - 1).chain(['…']).collect() }
}

/// Gives each row label of a heatmap drawn by plotters a `<title>` (the browser's tooltip):
/// plotters writes a label as `<text ...>\nLABEL\n</text>`, escaped as below, and the labels
/// (`S1 ...`, `S2 ...`) are unique, so each is found once.
fn with_tooltips(svg: String, labels: &[String], titles: &[String]) -> String {
    fn svg_escape(text: &str) -> String {
        escape(text).replace('\'', "&apos;")
    }
    labels.iter().zip(titles).fold(svg, |svg, (label, title)| {
        let drawn = format!(">\n{}\n</text>", svg_escape(&clip(label, LABEL_CHARS)));
        svg.replacen(&drawn, &format!(">\n<title>{}</title>{}\n</text>", svg_escape(title), svg_escape(&clip(label, LABEL_CHARS))), 1)
    })
}

/// One measure of a layer.
type Measure = fn(&LayerMetrics) -> Option<f64>;

/// The measures drawn as curves, with their colours.
fn curves() -> [(&'static str, RGBColor, Measure); 5] {
    [
        ("self-similarity", RGBColor(31, 119, 180), |m| m.self_similarity),
        ("anisotropy baseline", RGBColor(127, 127, 127), |m| m.anisotropy_baseline),
        ("adjusted self-similarity", RGBColor(44, 160, 44), |m| m.adjusted_self_similarity),
        ("intra-sentence similarity", RGBColor(255, 127, 14), |m| m.intra_sentence_similarity),
        ("first-PC variance", RGBColor(148, 103, 189), |m| m.first_pc_variance),
    ]
}

/// One curve over the layers: a name, a colour, the BERT points (solid) and the static
/// engine's value (dashed across all layers).
struct Curve {
    name: String,
    color: RGBColor,
    /// Stroke width: 2, or 4 for a mean over words, which the legend draws the same way so it
    /// is told apart from the words' curves and from the dashed static lines.
    width: u32,
    points: Vec<(usize, f64)>,
    static_value: Option<f64>,
}

impl Curve {
    fn new(
        name: impl Into<String>,
        color: RGBColor,
        layers: &[LayerMetrics],
        static_: Option<&LayerMetrics>,
        value: impl Fn(&LayerMetrics) -> Option<f64>,
    ) -> Self {
        let points = layers.iter().filter_map(|m| Some((m.layer, value(m)?))).collect();
        Curve { name: name.into(), color, width: 2, points, static_value: static_.and_then(value) }
    }

    /// Drawn thicker: a mean over the other curves.
    fn bold(self) -> Self {
        Curve { width: 4, ..self }
    }
}

/// Width of the legend column beside the plots.
const LEGEND_WIDTH: u32 = 230;

/// The values of a chart's curves.
fn values(curves: &[Curve]) -> impl Iterator<Item = f64> + '_ {
    curves.iter().flat_map(|c| c.points.iter().map(|p| p.1).chain(c.static_value))
}

/// A chart of curves over the layers; its y axis spans the values in tenths (and 0).
fn plot_layers(area: &Area, caption: &str, layers: usize, curves: &[Curve]) -> DrawResult {
    let lo = values(curves).fold(0f64, |lo, v| lo.min((v * 10.0).floor() / 10.0));
    let hi = values(curves).fold(lo + 0.1, |hi, v| hi.max((v * 10.0).ceil() / 10.0)) + 0.02;
    plot_layers_in(area, caption, layers, curves, lo..hi, None)
}

/// [`plot_layers`] over the y range given, with a y axis title when given.
fn plot_layers_in(area: &Area, caption: &str, layers: usize, curves: &[Curve], y: std::ops::Range<f64>, y_desc: Option<&str>) -> DrawResult {
    let last = layers.saturating_sub(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(if y_desc.is_some() { 64 } else { 48 })
        .build_cartesian_2d(-0.2..last + 0.2, y)?;
    let mut mesh = chart.configure_mesh();
    if let Some(y_desc) = y_desc {
        mesh.y_desc(y_desc);
    }
    mesh
        .x_desc("layer (0 = embeddings output)")
        .x_labels(layers.max(2))
        .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-9 { format!("{x:.0}") } else { String::new() })
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for curve in curves {
        let points: Vec<(f64, f64)> = curve.points.iter().map(|&(l, v)| (l as f64, v)).collect();
        chart.draw_series(LineSeries::new(points.iter().copied(), curve.color.stroke_width(curve.width)))?;
        chart.draw_series(points.iter().map(|&p| Circle::new(p, curve.width + 1, curve.color.filled())))?;
        if let Some(v) = curve.static_value {
            chart.draw_series(DashedLineSeries::new([(-0.2, v), (last + 0.2, v)], 6, 4, curve.color.stroke_width(curve.width)))?;
        }
    }
    Ok(())
}

/// The curves' names: a solid sample for the BERT curve and, on a row of its own, a dashed
/// one for the static value (so a curve with both is never read as static alone).
fn legend(area: &Area, curves: &[Curve]) -> DrawResult {
    let font = ("sans-serif", 13).into_font();
    let mut y = 50;
    for curve in curves {
        let style = curve.color.stroke_width(curve.width);
        if !curve.points.is_empty() {
            area.draw(&PathElement::new(vec![(4, y), (40, y)], style))?;
            area.draw(&Circle::new((22, y), curve.width + 1, curve.color.filled()))?;
            area.draw(&Text::new(curve.name.clone(), (52, y - 7), font.clone()))?;
            y += 19;
        }
        if curve.static_value.is_some() {
            for x in [4, 16, 28] {
                area.draw(&PathElement::new(vec![(x, y), (x + 8, y)], style))?;
            }
            let name = if curve.points.is_empty() { curve.name.clone() } else { format!("{}, static", curve.name) };
            area.draw(&Text::new(name, (52, y - 7), font.clone()))?;
            y += 19;
        }
    }
    // Only where a dashed line is drawn (not for the corrections or the variants).
    if curves.iter().any(|c| c.static_value.is_some()) {
        let note = font.color(&BLACK.mix(0.6));
        area.draw(&Text::new("solid: BERT, dashed: static", (4, y + 8), note))?;
    }
    Ok(())
}

/// The most frequent words, at most `count`, in report order.
fn top_words(report: &Report, count: usize, keep: impl Fn(&WordReport) -> bool) -> Vec<&WordReport> {
    let mut words: Vec<&WordReport> = report.words.iter().filter(|w| keep(w)).collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.occurrences));
    words.truncate(count);
    words
}

/// One or more charts side by side, with the legend of the last one's curves on the right.
fn charts(layers: usize, panels: &[(&str, Vec<Curve>)]) -> io::Result<String> {
    let width = 880 / panels.len() as u32;
    svg((880 + LEGEND_WIDTH, 430), |area| {
        let breaks: Vec<u32> = (1..=panels.len() as u32).map(|i| i * width).collect();
        let areas = area.split_by_breakpoints(breaks, [] as [u32; 0]);
        for ((caption, curves), panel) in panels.iter().zip(&areas) {
            plot_layers(panel, caption, layers, curves)?;
        }
        legend(&areas[panels.len()], &panels[panels.len() - 1].1)
    })
}

fn summary_chart(report: &Report) -> io::Result<String> {
    let summary = &report.summary;
    let curves: Vec<Curve> = curves()
        .into_iter()
        .map(|(name, color, value)| Curve::new(name, color, &summary.layers, summary.static_.as_ref(), value))
        .collect();
    charts(report.models.bert.layers, &[("Mean over words, per layer", curves)])
}

fn words_chart(report: &Report) -> io::Result<String> {
    let summary = &report.summary;
    let mut curves: Vec<Curve> = top_words(report, PLOTTED_WORDS, |_| true)
        .iter()
        .enumerate()
        .map(|(i, w)| Curve::new(w.word.clone(), palette(i), &w.layers, None, |m| m.self_similarity))
        .collect();
    let grey = RGBColor(127, 127, 127);
    curves.push(Curve::new("anisotropy baseline", grey, &summary.layers, summary.static_.as_ref(), |m| m.anisotropy_baseline));
    curves.push(Curve::new("static self-similarity", BLACK, &[], summary.static_.as_ref(), |m| m.self_similarity));
    charts(report.models.bert.layers, &[("Self-similarity per word", curves)])
}

/// Self-similarity and adjusted self-similarity per layer after each correction.
fn corrections_chart(report: &Report) -> io::Result<String> {
    let panel = |value: fn(&super::CorrectedLayer) -> Option<f64>| -> Vec<Curve> {
        report
            .postprocess
            .iter()
            .enumerate()
            .map(|(i, c)| Curve {
                name: c.method.clone(),
                color: palette(i),
                width: 2,
                points: c.layers.iter().filter_map(|m| Some((m.layer, value(m)?))).collect(),
                static_value: None,
            })
            .collect()
    };
    let panels = [
        ("Self-similarity after each correction", panel(|m| m.self_similarity)),
        ("Adjusted (minus the baseline)", panel(|m| m.adjusted_self_similarity)),
    ];
    charts(report.models.bert.layers, &panels)
}

fn sense_chart(report: &Report) -> io::Result<Option<String>> {
    let words = top_words(report, PLOTTED_WORDS, |w| !w.senses.is_empty());
    if words.is_empty() {
        return Ok(None);
    }
    let separation = |m: &LayerMetrics| {
        let s = m.senses.as_ref()?;
        Some(s.within_sense? - s.between_sense?)
    };
    let accuracy = |m: &LayerMetrics| m.senses.as_ref()?.nn_sense_accuracy;
    let panel = |value: &dyn Fn(&LayerMetrics) -> Option<f64>| {
        let summary = &report.summary;
        let mut curves: Vec<Curve> =
            words.iter().enumerate().map(|(i, w)| Curve::new(w.word.clone(), palette(i), &w.layers, None, value)).collect();
        curves.push(Curve::new("mean over words", BLACK, &summary.layers, summary.static_.as_ref(), value).bold());
        curves
    };
    let panels = [
        ("Within- minus between-sense cosine", panel(&separation)),
        ("Leave-one-out 1-NN sense accuracy", panel(&accuracy)),
    ];
    charts(report.models.bert.layers, &panels).map(Some)
}

/// The variants' mean cosine to the original per layer, one curve per variant (its size and
/// speed relative to the original's in the legend), on a y axis zoomed to the lowest mean:
/// f16 and int8 differ from 1 in the third decimal.
fn drift_chart(report: &Report) -> io::Result<String> {
    let curves: Vec<Curve> = report
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| Curve {
            name: format!("{} ({} bytes, {} tokens/s)", v.variant, ratio(v.bytes as f64, v.base_bytes as f64), ratio(v.tokens_per_second, v.base_tokens_per_second)),
            color: palette(i),
            width: 2,
            points: v.layers.iter().map(|l| (l.layer, l.drift_mean)).collect(),
            static_value: None,
        })
        .collect();
    let lowest = values(&curves).fold(1f64, f64::min);
    let step = 10f64.powf((1.0 - lowest).max(1e-4).log10().floor()).min(0.1);
    // Never on the bottom edge, even when every mean is a multiple of the step (1.0).
    let lo = ((lowest / step) - 1e-9).floor() * step;
    let width = 880 + DRIFT_LEGEND_WIDTH;
    svg((width, 430), |area| {
        let (plot, key) = area.split_horizontally(880);
        let caption = "Drift per layer: mean cosine to the original";
        plot_layers_in(&plot, caption, report.models.bert.layers, &curves, lo..1.0 + step / 10.0, Some("mean cosine to the original"))?;
        legend(&key, &curves)
    })
}

/// Width of the drift chart's legend, whose entries carry size and speed.
const DRIFT_LEGEND_WIDTH: u32 = 330;

/// A table of formatted cells under column titles.
fn text_table<const N: usize>(out: &mut dyn Write, titles: &[&str; N], rows: &[[String; N]]) -> io::Result<()> {
    let cells = |tag: &str, row: &mut dyn Iterator<Item = &str>| row.map(|c| format!("<{tag}>{}</{tag}>", escape(c))).collect::<String>();
    writeln!(out, "<table><tr>{}</tr>", cells("th", &mut titles.iter().copied()))?;
    for row in rows {
        writeln!(out, "<tr>{}</tr>", cells("td", &mut row.iter().map(String::as_str)))?;
    }
    writeln!(out, "</table>")
}

/// The variants: the drift chart, one row per variant with its bytes and tokens/s, and each
/// variant's drift per layer.
fn variants_section(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    if report.variants.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h2 id=\"variants\">Variants</h2>\n<p class=\"note\">{}</p>", escape(variants::NOTE))?;
    writeln!(out, "<figure class=\"drift\">{}</figure>", drift_chart(report)?)?;
    text_table(out, &variants::OVERVIEW_COLUMNS, &variants::overview(report))?;
    for v in &report.variants {
        writeln!(out, "<h3>{}: {}</h3>", escape(&v.variant), escape(&variants::heading(v)))?;
        text_table(out, &variants::LAYER_COLUMNS, &variants::layer_table(v))?;
    }
    Ok(())
}

/// A matrix of coloured cells with row and column labels and, when there is room, the values.
fn heatmap(
    area: &Area,
    caption: &str,
    rows: &[String],
    columns: &[String],
    values: &[Vec<Option<f64>>],
    scale: (f64, f64),
    label_area: u32,
) -> DrawResult {
    let (n_rows, n_cols) = (rows.len() as i32, columns.len() as i32);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(if n_cols > 12 { 10 } else { 28 })
        .y_label_area_size(label_area)
        .build_cartesian_2d((0..n_cols - 1).into_segmented(), (0..n_rows - 1).into_segmented())?;
    let label = |names: &[String], reverse: bool, v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) if (0..names.len() as i32).contains(i) => {
            let i = if reverse { names.len() as i32 - 1 - i } else { *i };
            clip(&names[i as usize], LABEL_CHARS)
        }
        _ => String::new(),
    };
    let small = n_rows > 20 || n_cols > 20;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(if n_cols > 12 { 0 } else { columns.len() + 1 })
        .y_labels(rows.len() + 1)
        .x_label_formatter(&|v| label(columns, false, v))
        .y_label_formatter(&|v| label(rows, true, v))
        .label_style(("sans-serif", if small { 9 } else { 12 }))
        .draw()?;
    let (lo, hi) = scale;
    let cell_text = n_cols <= 12 && n_rows <= 40;
    for (r, row) in values.iter().enumerate() {
        let y = n_rows - 1 - r as i32;
        for (c, value) in row.iter().enumerate() {
            let c = c as i32;
            let Some(v) = value else { continue };
            let h = if hi > lo { ((v - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 1.0 };
            let color = ViridisRGB.get_color(h as f32);
            chart.draw_series([Rectangle::new(
                [(SegmentValue::Exact(c), SegmentValue::Exact(y)), (SegmentValue::Exact(c + 1), SegmentValue::Exact(y + 1))],
                color.filled(),
            )])?;
            if cell_text {
                let ink = if h > 0.6 { &BLACK } else { &WHITE };
                let style = ("sans-serif", 11).into_font().color(ink).pos(plotters::style::text_anchor::Pos::new(plotters::style::text_anchor::HPos::Center, plotters::style::text_anchor::VPos::Center));
                chart.draw_series([Text::new(format!("{v:.2}"), (SegmentValue::CenterOf(c), SegmentValue::CenterOf(y)), style)])?;
            }
        }
    }
    Ok(())
}

fn overview_heatmap(report: &Report) -> io::Result<String> {
    let words = top_words(report, OVERVIEW_WORDS, |_| true);
    let mut columns: Vec<String> = (0..report.models.bert.layers).map(|l| format!("L{l}")).collect();
    let has_static = words.iter().any(|w| w.static_.is_some());
    if has_static {
        columns.push("static".into());
    }
    let rows: Vec<String> = words.iter().map(|w| w.word.clone()).collect();
    let values: Vec<Vec<Option<f64>>> = words
        .iter()
        .map(|w| {
            let mut row: Vec<Option<f64>> = w.layers.iter().map(|m| m.self_similarity).collect();
            if has_static {
                row.push(w.static_.as_ref().and_then(|m| m.self_similarity));
            }
            row
        })
        .collect();
    let lo = values.iter().flatten().flatten().fold(1f64, |a, &b| a.min(b));
    let height = 90 + 22 * rows.len() as u32;
    svg((900, height), |area| {
        heatmap(area, "Self-similarity per word and layer (colour: low = dark, 1 = yellow)", &rows, &columns, &values, (lo, 1.0), 140)
    })
}

/// Whether every cosine of a heatmap is 1 (the static engine's: one vector for every
/// sentence), which a note says better than a square of identical cells.
fn all_ones(heatmap: &Heatmap) -> bool {
    heatmap.matrix.iter().flatten().all(|&v| (v - 1.0).abs() < 5e-4)
}

/// The word's occurrence heatmaps, on one colour scale from the lowest cosine (returned) to 1;
/// those whose cosines are all 1 are left out (the caller notes them).
fn occurrence_heatmaps(report: &Report, word: &WordReport) -> io::Result<(f32, Vec<String>)> {
    let lo = word.heatmaps.iter().flat_map(|h| h.matrix.iter().flatten()).filter(|v| !v.is_nan()).fold(1f32, |a, &b| a.min(b));
    let maps = word
        .heatmaps
        .iter()
        .filter(|h| h.labels.len() >= 2 && !all_ones(h))
        .map(|h: &Heatmap| {
            let values: Vec<Vec<Option<f64>>> =
                h.matrix.iter().map(|row| row.iter().map(|&v| (!v.is_nan()).then_some(f64::from(v))).collect()).collect();
            let n = h.labels.len() as u32;
            let columns = vec![String::new(); n as usize];
            // Big enough cells for the values up to 12 occurrences, compact above.
            let cell = match n {
                ..=12 => 30,
                13..=24 => 16,
                _ => 10,
            };
            let size = 60 + cell * n;
            let label_area = 20 + 6 * h.labels.iter().map(|l| l.chars().count().min(LABEL_CHARS)).max().unwrap_or(0) as u32;
            let drawn = svg((size + label_area, size), |area| heatmap(area, &h.title, &h.labels, &columns, &values, (f64::from(lo), 1.0), label_area))?;
            let titles: Vec<String> = word.examples.iter().map(|e| example_text(report, e)).collect();
            Ok(with_tooltips(drawn, &h.labels, &titles))
        })
        .collect::<io::Result<_>>()?;
    Ok((lo, maps))
}

fn html_table(out: &mut dyn Write, rows: &[(String, &LayerMetrics)]) -> io::Result<()> {
    let (titles, rows) = table(rows);
    write!(out, "<table><tr><th>layer</th>")?;
    for c in &titles {
        write!(out, "<th>{c}</th>")?;
    }
    writeln!(out, "</tr>")?;
    for (name, values) in rows {
        write!(out, "<tr><td>{}</td>", escape(&name))?;
        for v in values {
            write!(out, "<td>{v}</td>")?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</table>")
}

/// A CKA matrix as a heatmap: rows the layers of engine `a`, columns those of `b`.
fn cka_heatmap(cka: &Cka) -> io::Result<String> {
    let rows: Vec<String> = (0..cka.matrix.len()).map(|l| format!("{} L{l}", cka.a)).collect();
    let n_columns = cka.matrix.first().map_or(0, Vec::len);
    let columns: Vec<String> = (0..n_columns).map(|l| format!("L{l}")).collect();
    let values = cka.matrix.clone();
    let lo = values.iter().flatten().flatten().fold(0f64, |a, &b| a.min(b));
    let label_area = 20 + 7 * rows.iter().map(|l| l.chars().count().min(18)).max().unwrap_or(0) as u32;
    let cell = if n_columns.max(rows.len()) > 12 { 22 } else { 40 };
    let (width, height) = (label_area + 40 + cell * n_columns as u32, 80 + cell * rows.len() as u32);
    let caption = format!("CKA: {} vs {} (columns)", cka.a, cka.b);
    svg((width.max(360), height), |area| heatmap(area, &caption, &rows, &columns, &values, (lo, 1.0), label_area))
}

/// The CKA heatmaps of every pair of engines and the table of neighbour overlaps.
fn model_to_model(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    if report.cka.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h2>Model to model</h2>\n<p class=\"note\">{}</p><div class=\"maps\">", escape(MODEL_TO_MODEL_NOTE))?;
    for cka in &report.cka {
        writeln!(out, "<figure>{}<figcaption class=\"note\">{}</figcaption></figure>", cka_heatmap(cka)?, count(cka.n, "occurrence"))?;
    }
    writeln!(out, "</div>")?;
    if !report.neighbour_overlap.is_empty() {
        writeln!(out, "<table><tr><th>a</th><th>layer</th><th>b</th><th>layer</th><th>k</th><th>n</th><th>overlap</th></tr>")?;
        for o in &report.neighbour_overlap {
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&o.a),
                o.layer_a,
                escape(&o.b),
                o.layer_b,
                o.k,
                o.n,
                fmt(o.overlap)
            )?;
        }
        writeln!(out, "</table>")?;
    }
    Ok(())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}\
th{background:#f3f3f3}td:first-child{text-align:left}svg{max-width:100%;height:auto}\
.maps{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}details{margin:.4em 0}summary{cursor:pointer;font-weight:600}\
.note{color:#555;font-size:.92em}ol.sentences{list-style:none;padding-left:1em;font-size:.92em}";

/// Writes the whole page.
pub(super) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let name = escape(&report.input.name);
    writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vecshift report: {name}</title><style>{STYLE}</style></head><body>")?;
    writeln!(out, "<h1>vecshift report: {name}</h1><ul>")?;
    for line in report.about() {
        writeln!(out, "<li>{}</li>", escape(&line))?;
    }
    writeln!(out, "</ul>")?;
    writeln!(out, "<p class=\"note\">Self-similarity: mean cosine between a word's occurrences. Anisotropy baseline: mean cosine between occurrences of different words (how similar any two vectors of the layer are). Adjusted = self-similarity minus baseline. Intra-sentence: mean cosine of the word to the other words of its sentence. A static vector is the same in every sentence, so its self-similarity is 1.</p>")?;

    writeln!(out, "<h2>Across words</h2>")?;
    writeln!(out, "{}", summary_chart(report)?)?;
    html_table(out, &report.table_rows(None))?;
    writeln!(out, "<h2>Per word</h2>")?;
    if report.words.len() > OVERVIEW_WORDS {
        writeln!(out, "<p class=\"note\">The charts show the {OVERVIEW_WORDS} (heatmap) and {PLOTTED_WORDS} (curves) most frequent words; the tables below have all {}.</p>", report.words.len())?;
    }
    writeln!(out, "{}", overview_heatmap(report)?)?;
    writeln!(out, "{}", words_chart(report)?)?;
    if !report.postprocess.is_empty() {
        writeln!(out, "<h2>Anisotropy corrections</h2>\n<p class=\"note\">{}</p>", escape(&corrections_note(report)))?;
        writeln!(out, "{}", corrections_chart(report)?)?;
        let (titles, rows) = corrections_table(report);
        write!(out, "<table><tr><th>layer</th>")?;
        for title in titles {
            write!(out, "<th>{}</th>", escape(&title))?;
        }
        writeln!(out, "</tr>")?;
        for (layer, cells) in rows {
            writeln!(out, "<tr><td>{layer}</td>{}</tr>", cells.iter().map(|c| format!("<td>{c}</td>")).collect::<String>())?;
        }
        writeln!(out, "</table>")?;
    }
    if let Some(chart) = sense_chart(report)? {
        writeln!(out, "<h2>Sense separation</h2>\n{chart}")?;
    }
    variants_section(report, out)?;

    writeln!(out, "<h2>Words</h2>")?;
    let with_maps: Vec<&str> = top_words(report, PLOTTED_WORDS, |_| true).iter().map(|w| w.word.as_str()).collect();
    for (i, word) in report.words.iter().enumerate() {
        let open = if with_maps.first() == Some(&word.word.as_str()) { " open" } else { "" };
        writeln!(out, "<details{open}><summary>{}</summary>", escape(&word_heading(word)))?;
        html_table(out, &report.table_rows(Some(i)))?;
        if with_maps.contains(&word.word.as_str()) {
            let (lo, maps) = occurrence_heatmaps(report, word)?;
            let flat: Vec<&str> = word.heatmaps.iter().filter(|h| h.labels.len() >= 2 && all_ones(h)).map(|h| h.title.as_str()).collect();
            if !flat.is_empty() {
                writeln!(out, "<p class=\"note\">{}: every pairwise cosine is 1.00 (one vector for every sentence), so no heatmap is drawn.</p>", escape(&flat.join(", ")))?;
            }
            if !maps.is_empty() {
                writeln!(out, "<p class=\"note\">Pairwise cosines of up to {HEATMAP_OCCURRENCES} sampled occurrences, grouped by sense; colour from {lo:.2} (dark) to 1.00 (yellow).</p><div class=\"maps\">")?;
                for map in maps {
                    writeln!(out, "{map}")?;
                }
                writeln!(out, "</div>")?;
            }
            if !word.examples.is_empty() {
                writeln!(out, "<p class=\"note\">The heatmaps' rows (hover a label for its sentence):</p><ol class=\"sentences\">")?;
                for (i, example) in word.examples.iter().enumerate() {
                    writeln!(out, "<li value=\"{}\">S{}: {}</li>", i + 1, i + 1, escape(&example_text(report, example)))?;
                }
                writeln!(out, "</ol>")?;
            }
        }
        writeln!(out, "</details>")?;
    }

    model_to_model(report, out)?;

    if !report.skipped.is_empty() {
        writeln!(out, "<h2>Skipped lines</h2><ul>")?;
        for bad in report.skipped.iter().take(LISTED_SKIPPED) {
            writeln!(out, "<li>line {}: {}</li>", bad.line, escape(&bad.reason))?;
        }
        if report.skipped.len() > LISTED_SKIPPED {
            writeln!(out, "<li>... and {} more (the JSON output lists them all)</li>", report.skipped.len() - LISTED_SKIPPED)?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "</body></html>")
}
