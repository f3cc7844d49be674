//! Mean cosine between the sentences per layer, every engine on one relative-depth axis
//! (0 = embeddings output, 1 = last layer): contextual curves, static flat lines, and the
//! chosen depth marked.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};

use super::{EngineLabel, block, engine_labels, fit, message, waiting};
use crate::tui::analysis::Side;
use crate::tui::app::App;
use crate::tui::layout::Pane;
use crate::tui::theme::Theme;

/// Width of the y-axis labels ("0.50"), which sets where the plot starts.
const Y_LABEL: u16 = 4;

/// One engine's curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// The engine.
    pub engine: EngineLabel,
    /// (relative depth, mean cosine) per layer; a static engine's one value spans 0 to 1.
    pub points: Vec<(f64, f64)>,
    /// The mean at the engine's layer nearest the chosen depth, and that layer.
    pub current: (usize, f32),
}

/// What the pane draws.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Why there is nothing to draw yet.
    pub waiting: Option<String>,
    /// The chosen depth.
    pub depth: f64,
    /// The selected engine's layer.
    pub layer: usize,
    /// One curve per engine with numbers.
    pub curves: Vec<Curve>,
    /// Colours on or off.
    pub theme: Theme,
}

/// Builds the view.
pub fn view(app: &App) -> View {
    let theme = Theme { color: app.color };
    let labels = engine_labels(app.engines(), theme);
    let mut curves = Vec::new();
    for (engine, side) in labels.into_iter().zip(&app.analysis.engines) {
        let Side::Ready(layers) = side else { continue };
        let last = layers.len().saturating_sub(1);
        let mut points: Vec<(f64, f64)> = layers
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.mean.is_nan())
            .map(|(l, s)| (if last == 0 { 0.0 } else { l as f64 / last as f64 }, f64::from(s.mean)))
            .collect();
        if last == 0 && let Some(&(_, m)) = points.first() {
            points.push((1.0, m));
        }
        let layer = app.layer_of(engine.index).min(last);
        curves.push(Curve { current: (layer, layers[layer].mean), engine, points });
    }
    View { waiting: waiting(app), depth: app.depth, layer: app.layer(), curves, theme }
}

/// The y range: from a tenth below the lowest mean up to 1.
fn y_bounds(means: &[f32]) -> [f64; 2] {
    let low = means.iter().filter(|v| !v.is_nan()).fold(1f32, |m, &v| m.min(v));
    let low = ((f64::from(low) - 0.05) * 10.0).floor() / 10.0;
    [low.clamp(-1.0, 0.9), 1.0]
}

/// The marker of the `i`-th curve: static engines dotted, contextual ones in braille, a
/// second and third contextual engine in other dots so that they differ without colour.
fn marker(curve: &Curve, nth_contextual: usize) -> (Marker, &'static str) {
    if curve.engine.fixed {
        return (Marker::Dot, "•• ");
    }
    match nth_contextual {
        0 => (Marker::Braille, "⠤⠤ "),
        1 => (Marker::HalfBlock, "▄▄ "),
        _ => (Marker::Block, "██ "),
    }
}

/// Draws the pane.
pub fn render(view: &View, frame: &mut Frame, area: Rect) {
    let theme = view.theme;
    if view.waiting.is_some() || view.curves.is_empty() {
        frame.render_widget(block(format!(" {} ", Pane::Layers.title()), theme), area);
        return message(frame, area, view.waiting.clone().unwrap_or_default(), theme.dim());
    }
    let mut title = vec![Span::raw(format!(" {} · mean cosine between sentences · layer {}: ", Pane::Layers.title(), view.layer))];
    for (i, c) in view.curves.iter().enumerate() {
        if i > 0 {
            title.push(Span::raw(" vs "));
        }
        title.push(Span::styled(format!("{} {:.3}", c.engine.name, c.current.1), c.engine.style));
    }
    title.push(Span::raw(" "));
    let title = fit(title, area.width.saturating_sub(2));
    let means: Vec<f32> = view.curves.iter().flat_map(|c| c.points.iter().map(|p| p.1 as f32)).collect();
    let [low, high] = y_bounds(&means);
    let marker_line = [(view.depth, low), (view.depth, high)];
    let mut datasets = vec![Dataset::default().marker(Marker::Braille).graph_type(GraphType::Line).style(theme.accent()).data(&marker_line)];
    let mut nth = 0;
    let mut keys = Vec::new();
    // Static lines first, so that the contextual curves are drawn over them.
    let order: Vec<&Curve> = view.curves.iter().filter(|c| c.engine.fixed).chain(view.curves.iter().filter(|c| !c.engine.fixed)).collect();
    for curve in order {
        let (m, key) = marker(curve, nth);
        if !curve.engine.fixed {
            nth += 1;
        }
        keys.push((key, curve));
        datasets.push(Dataset::default().marker(m).graph_type(GraphType::Line).style(curve.engine.style).data(&curve.points));
    }
    let x_labels = vec![Line::from("0 emb"), Line::from("0.5"), Line::from("1 last")];
    let y_labels =
        vec![Line::from(format!("{low:.2}")), Line::from(format!("{:.2}", (low + high) / 2.0)), Line::from(format!("{high:.2}"))];
    let block = block(title, theme);
    let [plot, legend] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(block.inner(area));
    frame.render_widget(block, area);
    // The legend goes under the plot: inside it, it would hide the curve on small screens.
    let chart = Chart::new(datasets)
        .x_axis(Axis::default().title("depth").bounds([0.0, 1.0]).labels(x_labels).style(theme.dim()))
        .y_axis(Axis::default().bounds([low, high]).labels(y_labels).style(theme.dim()))
        .legend_position(None);
    frame.render_widget(chart, plot);
    // With the engine names when they fit, else their numbers, and cut with … as a last resort.
    let key = |named: bool| {
        let mut spans = Vec::new();
        for (i, (mark, curve)) in keys.iter().enumerate() {
            spans.push(Span::styled(*mark, curve.engine.style));
            let name = if named { curve.engine.name.clone() } else { format!("E{}", curve.engine.index + 1) };
            spans.push(Span::raw(if i + 1 < keys.len() { format!("{name}  ") } else { format!("{name} ") }));
        }
        spans.push(Span::styled("⢸ ", theme.accent()));
        spans.push(Span::raw("chosen depth (← →)"));
        spans
    };
    let named = key(true);
    let spans = if Line::from(named.clone()).width() <= legend.width as usize { named } else { key(false) };
    frame.render_widget(Paragraph::new(fit(spans, legend.width)), legend);
}

/// The relative depth under screen column `x`, if it is over the plot.
pub fn depth_at(area: Rect, x: u16) -> Option<f64> {
    // The plot starts right of the border, the y labels and the axis line.
    let start = area.x + 1 + Y_LABEL + 1;
    let width = area.width.saturating_sub(2 + Y_LABEL + 1);
    let column = x.checked_sub(start).filter(|&c| c < width)?;
    Some(f64::from(column) / f64::from(width.saturating_sub(1).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_range_covers_the_lowest_mean() {
        assert_eq!(y_bounds(&[0.62, 0.9, 1.0]), [0.5, 1.0]);
        assert_eq!(y_bounds(&[0.97, 1.0]), [0.9, 1.0]);
        assert_eq!(y_bounds(&[f32::NAN, 0.31]), [0.2, 1.0]);
        assert_eq!(y_bounds(&[-3.0]), [-1.0, 1.0]);
    }

    #[test]
    fn depth_runs_from_the_left_to_the_right_edge_of_the_plot() {
        let area = Rect::new(10, 0, 60, 12);
        assert_eq!(depth_at(area, 10 + 6), Some(0.0));
        assert_eq!(depth_at(area, 10 + 60 - 2), Some(1.0));
        assert_eq!(depth_at(area, 10), None, "the y labels");
    }
}
