//! Mean cosine between the sentences per layer: the BERT curve against the static flat line,
//! with the chosen layer marked.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType};

use super::{block, message, waiting};
use crate::tui::analysis::StaticSide;
use crate::tui::app::App;
use crate::tui::layout::Pane;
use crate::tui::theme::Theme;

/// Width of the y-axis labels ("0.50"), which sets where the plot starts.
const Y_LABEL: u16 = 4;

/// The y range: from a tenth below the lowest mean up to 1.
fn y_bounds(means: &[f32]) -> [f64; 2] {
    let low = means.iter().filter(|v| !v.is_nan()).fold(1f32, |m, &v| m.min(v));
    let low = ((f64::from(low) - 0.05) * 10.0).floor() / 10.0;
    [low.clamp(-1.0, 0.9), 1.0]
}

/// Draws the pane.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = Theme { color: app.color };
    let Some(stats) = app.layer_stats().filter(|_| waiting(app).is_none()) else {
        frame.render_widget(block(format!(" {} ", Pane::Layers.title()), theme), area);
        return message(frame, area, waiting(app).unwrap_or_default(), theme.dim());
    };
    let static_mean = match &app.analysis.statics {
        StaticSide::Ready { stats, .. } => Some(stats.mean),
        _ => None,
    };
    let title = Line::from(vec![
        Span::raw(format!(" {} · mean cosine between sentences · layer {}: ", Pane::Layers.title(), app.layer)),
        Span::styled(format!("BERT {:.3}", stats.mean), theme.bert()),
        Span::raw(" vs "),
        Span::styled(static_mean.map_or("static n/a".into(), |m| format!("static {m:.3}")), theme.statics()),
        Span::raw(" "),
    ]);
    let means: Vec<f32> = app.analysis.layers.iter().map(|s| s.mean).collect();
    let last = means.len().saturating_sub(1) as f64;
    let curve: Vec<(f64, f64)> =
        means.iter().enumerate().filter(|(_, m)| !m.is_nan()).map(|(l, &m)| (l as f64, f64::from(m))).collect();
    let [low, high] = y_bounds(&means.iter().copied().chain(static_mean).collect::<Vec<_>>());
    let flat: Vec<(f64, f64)> = static_mean.map(|m| vec![(0.0, f64::from(m)), (last, f64::from(m))]).unwrap_or_default();
    let marker = [(app.layer as f64, low), (app.layer as f64, high)];
    let datasets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.accent())
            .data(&marker),
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Line)
            .style(theme.statics())
            .data(&flat),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.bert())
            .data(&curve),
    ];
    let middle = ((last / 2.0).round()) as usize;
    let x_labels = vec![Line::from("0"), Line::from(middle.to_string()), Line::from(format!("{}", last as usize))];
    let y_labels = vec![
        Line::from(format!("{low:.2}")),
        Line::from(format!("{:.2}", (low + high) / 2.0)),
        Line::from(format!("{high:.2}")),
    ];
    let block = block(title, theme);
    let [plot, legend] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(block.inner(area));
    frame.render_widget(block, area);
    // The legend goes under the plot: inside it, it would hide the curve on small screens.
    let chart = Chart::new(datasets)
        .x_axis(Axis::default().title("layer").bounds([0.0, last.max(1.0)]).labels(x_labels).style(theme.dim()))
        .y_axis(Axis::default().bounds([low, high]).labels(y_labels).style(theme.dim()))
        .legend_position(None);
    frame.render_widget(chart, plot);
    // With the model names when they fit, else without, and cut with … as a last resort.
    let key = |bert: &str, statics: &str| {
        vec![
            Span::styled("⠤⠤ ", theme.bert()),
            Span::raw(format!("BERT {bert} ")),
            Span::styled("•• ", theme.statics()),
            Span::raw(format!("static {statics} ")),
            Span::styled("⢸ ", theme.accent()),
            Span::raw("chosen layer (← →)"),
        ]
    };
    let named = key(app.info().map_or("", |i| i.bert.as_str()), app.info().map_or("", |i| i.statics.as_str()));
    let spans = if Line::from(named.clone()).width() <= legend.width as usize { named } else { key("", "") };
    frame.render_widget(ratatui::widgets::Paragraph::new(super::fit(spans, legend.width)), legend);
}

/// The layer whose x position is nearest to screen column `x`, if it is over the plot.
pub fn layer_at(app: &App, area: Rect, x: u16) -> Option<usize> {
    let layers = app.analysis.layers.len();
    if layers < 2 {
        return None;
    }
    // The plot starts right of the border, the y labels and the axis line.
    let start = area.x + 1 + Y_LABEL + 1;
    let width = area.width.saturating_sub(2 + Y_LABEL + 1);
    let column = x.checked_sub(start).filter(|&c| c < width)?;
    let fraction = f64::from(column) / f64::from(width.saturating_sub(1).max(1));
    Some(((fraction * (layers - 1) as f64).round() as usize).min(layers - 1))
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
}
