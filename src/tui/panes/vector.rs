//! The selected occurrence's vector in the selected engine at its layer, with the pieces that
//! were pooled for it (and a warning when the tokenizer did not know one), beside the same
//! occurrence in an engine of the other kind, dimension by dimension, with each one's cosine
//! to the mean of the other occurrences: the drift made visible.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::widgets::canvas::{Canvas, Line as Segment};

use super::{CAUSAL_NOTE, EngineLabel, block, engine_labels, fit, label, message, waiting};
use crate::tui::analysis::cosine_to_rest;
use crate::tui::app::App;
use crate::tui::layout::Pane;
use crate::tui::theme::Theme;

/// One engine's vector of the selected occurrence.
#[derive(Clone, Debug, PartialEq)]
pub struct Bars<'a> {
    /// The engine.
    pub engine: EngineLabel,
    /// Its layer.
    pub layer: usize,
    /// The vector.
    pub vector: &'a [f32],
    /// Cosine to the mean of the other compared occurrences.
    pub drift: Option<f32>,
    /// The pieces pooled into it.
    pub pieces: &'a [String],
    /// The pieces the tokenizer did not know.
    pub unknown: &'a [String],
}

/// What the pane draws.
#[derive(Clone, Debug, PartialEq)]
pub struct View<'a> {
    /// The selected sentence's label.
    pub selected: String,
    /// Why there is nothing to draw, if so.
    pub why_not: Option<String>,
    /// The selected engine's vector, then the contrast engine's (the first of the other kind).
    pub bars: Vec<Bars<'a>>,
    /// The WordNet synset guessed for the occurrence by the selected engine: (synset, cosine,
    /// gloss), or why there is none; None while it is computed.
    pub sense: Option<Result<(String, f32, String), String>>,
    /// Colours on or off.
    pub theme: Theme,
}

/// Builds the view.
pub fn view(app: &App) -> View<'_> {
    let theme = Theme { color: app.color };
    let sense = app.sense_guess().map(|r| r.as_ref().map(|g| (g.synset.clone(), g.cosine, g.gloss.clone())).map_err(Clone::clone));
    let mut view = View { selected: label(app.selected), why_not: waiting(app), bars: Vec::new(), sense, theme };
    if view.why_not.is_some() {
        return view;
    }
    let Some(position) = app.analysis.position(app.selected) else {
        view.why_not = Some(format!("{} is not compared", label(app.selected)));
        return view;
    };
    let labels = engine_labels(app.engines(), theme);
    let fixed = labels.get(app.engine).is_some_and(|e| e.fixed);
    let contrast = labels.iter().find(|e| e.fixed != fixed).map(|e| e.index);
    for engine in std::iter::once(app.engine).chain(contrast) {
        let Some(encoded) = app.vectors(engine, app.selected) else { continue };
        let layer = app.layer_of(engine).min(encoded.vectors.num_layers() - 1);
        let vectors = app.layer_vectors(engine, layer);
        // An engine left out of the comparison has no drift, only its vector.
        let drift = (vectors.len() == app.analysis.rows.len()).then(|| cosine_to_rest(&vectors, position)).flatten();
        view.bars.push(Bars {
            engine: labels[engine].clone(),
            layer,
            vector: &encoded.vectors.layers()[layer],
            drift,
            pieces: &encoded.pieces,
            unknown: &encoded.unknown,
        });
    }
    view
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// One bar per dimension, up for positive and down for negative values.
fn bars(frame: &mut Frame, area: Rect, title: Line, vector: &[f32], color: Color) {
    let [head, plot] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(fit(title.spans, head.width)), head);
    let peak = f64::from(vector.iter().fold(0f32, |m, v| m.max(v.abs()))).max(1e-6);
    let canvas = Canvas::default()
        .marker(Marker::Braille)
        .x_bounds([0.0, vector.len().saturating_sub(1).max(1) as f64])
        .y_bounds([-peak, peak])
        .paint(|ctx| {
            for (i, &v) in vector.iter().enumerate() {
                ctx.draw(&Segment::new(i as f64, 0.0, i as f64, f64::from(v), color));
            }
        });
    frame.render_widget(canvas, plot);
}

/// The pieces line: what was pooled, and a warning for unknown pieces.
fn pieces_line<'a>(b: &Bars<'a>, theme: Theme) -> Line<'a> {
    let what = if b.engine.fixed { "vocabulary entry" } else { "pieces pooled" };
    let mut spans = vec![Span::raw(format!("{what}: ")), Span::styled(b.pieces.join(" "), theme.word())];
    if !b.unknown.is_empty() {
        spans.push(Span::styled(
            format!("  ⚠ unknown to the tokenizer: {} (its vector says nothing about the word)", b.unknown.join(" ")),
            theme.error(),
        ));
    }
    if b.engine.causal {
        spans.push(Span::styled(format!("  · {CAUSAL_NOTE}"), theme.dim()));
    }
    Line::from(spans)
}

/// Draws the pane.
pub fn render(view: &View, frame: &mut Frame, area: Rect) {
    let theme = view.theme;
    let layer = view.bars.first().map_or(String::new(), |b| format!(" · layer {}", b.layer));
    let block = block(format!(" {} of {}{layer} ", Pane::Vector.title(), view.selected), theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(why) = &view.why_not {
        return message(frame, inner, why.clone(), theme.dim());
    }
    let fmt = |c: Option<f32>| c.filter(|c| !c.is_nan()).map_or("n/a".to_owned(), |c| format!("{c:.3}"));
    let [pieces, wordnet, first, second] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Fill(3), Constraint::Fill(2)]).areas(inner);
    if let Some(b) = view.bars.first() {
        frame.render_widget(Paragraph::new(fit(pieces_line(b, theme).spans, pieces.width)), pieces);
    }
    let sense = match &view.sense {
        None => vec![Span::styled("WordNet: guessing...", theme.dim())],
        Some(Ok((synset, cosine, gloss))) => vec![
            Span::raw("WordNet: "),
            Span::styled(synset.clone(), theme.key()),
            Span::raw(format!(" (cos {cosine:.2}): {gloss}")),
        ],
        Some(Err(why)) => vec![Span::styled(format!("WordNet: {why}"), theme.dim())],
    };
    frame.render_widget(Paragraph::new(fit(sense, wordnet.width)), wordnet);
    let color = |style: Style| style.fg.unwrap_or(Color::Reset);
    for (b, area) in view.bars.iter().zip([first, second]) {
        // The cosine to the mean of the other occurrences: how far this one drifted.
        let (layer, fixed) = if b.engine.fixed { (String::new(), " (fixed)") } else { (format!(" · layer {}", b.layer), "") };
        let title = Line::styled(
            format!(
                "{} · cos to the others' mean {}{fixed}{layer} · {} dims · norm {:.2}",
                b.engine.name,
                fmt(b.drift),
                b.vector.len(),
                norm(b.vector),
            ),
            b.engine.style,
        );
        bars(frame, area, title, b.vector, color(b.engine.style));
    }
    if view.bars.len() < 2 {
        message(frame, second, "no vector of this occurrence in an engine of the other kind", theme.dim());
    }
}
