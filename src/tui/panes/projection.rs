//! A 2-D PCA scatter of the occurrence vectors at the chosen layer, coloured by sense (or by
//! sentence), with the static vectors, which all fall on one point, for contrast.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::Paragraph;
use ratatui::widgets::canvas::{Canvas, Points};

use super::{Groups, block, message, waiting};
use crate::tui::analysis::StaticSide;
use crate::tui::app::App;
use crate::tui::layout::Pane;
use crate::tui::theme::Theme;

/// Axis bounds around the points (the origin included), with a margin for the labels.
fn bounds(values: impl Iterator<Item = f64>) -> [f64; 2] {
    let (low, high) = values.fold((0f64, 0f64), |(l, h), v| (l.min(v), h.max(v)));
    let margin = ((high - low) * 0.12).max(1e-6);
    [low - margin, high + margin]
}

/// Draws the pane.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = Theme { color: app.color };
    let Some(pca) = app.analysis.projection.as_ref().filter(|_| waiting(app).is_none()) else {
        frame.render_widget(block(format!(" {} ", Pane::Projection.title()), theme), area);
        return message(frame, area, waiting(app).unwrap_or_default(), theme.dim());
    };
    let share = |c: usize| pca.explained_variance_ratio.get(c).map_or(0.0, |r| r * 100.0);
    let title = format!(
        " {} · PCA of BERT layer {} · PC1 {:.0}%, PC2 {:.0}% of the variance ",
        Pane::Projection.title(),
        app.layer,
        share(0),
        share(1)
    );
    let block = block(title, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [plot, legend] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);

    let groups = Groups::of(app);
    let point = |p: &Vec<f32>| (f64::from(p[0]), f64::from(*p.get(1).unwrap_or(&0.0)));
    let coords: Vec<(f64, f64)> = pca.projections.iter().map(point).collect();
    let static_point = match &app.analysis.statics {
        StaticSide::Ready { projection, .. } => projection.projections.first().map(point),
        _ => None,
    };
    let x = bounds(coords.iter().map(|c| c.0).chain(static_point.map(|s| s.0)));
    let y = bounds(coords.iter().map(|c| c.1).chain(static_point.map(|s| s.1)));
    let per_group: Vec<(usize, Vec<(f64, f64)>)> = (0..groups.names.len())
        .map(|g| {
            let members = app.analysis.rows.iter().zip(&coords).filter(|(e, _)| groups.of_entry[**e] == g);
            (g, members.map(|(_, c)| *c).collect())
        })
        .collect();
    let canvas = Canvas::default().marker(Marker::Braille).x_bounds(x).y_bounds(y).paint(|ctx| {
        for (g, points) in &per_group {
            ctx.draw(&Points::new(points, theme.group(*g)));
        }
        ctx.layer();
        if let Some((sx, sy)) = static_point {
            ctx.print(sx, sy, Span::styled("◆static", theme.statics()));
        }
        for (&entry, &(px, py)) in app.analysis.rows.iter().zip(&coords) {
            let style = if entry == app.selected { theme.selected() } else { theme.group_style(groups.of_entry[entry]) };
            ctx.print(px, py, Span::styled((entry + 1).to_string(), style));
        }
    });
    frame.render_widget(canvas, plot);

    let labelled = app.entries.iter().any(|e| e.sense.is_some());
    let mut spans: Vec<Span> = Vec::new();
    if labelled {
        for (g, name) in groups.names.iter().enumerate() {
            let members: Vec<String> = app
                .analysis
                .rows
                .iter()
                .filter(|&&e| groups.of_entry[e] == g)
                .map(|e| (e + 1).to_string())
                .collect();
            if !members.is_empty() {
                spans.push(Span::styled(format!("■ {name} {} ", members.join(",")), theme.group_style(g)));
            }
        }
    } else {
        spans.push(Span::raw("numbers are sentences "));
    }
    let n = app.analysis.rows.len();
    spans.push(Span::styled(format!(" ◆ static: all {n} in one point"), theme.statics()));
    frame.render_widget(Paragraph::new(super::fit(spans, legend.width)).style(Style::new()), legend);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_include_origin_and_margin() {
        let [low, high] = bounds([1.0, 3.0].into_iter());
        assert!(low < 0.0 && high > 3.0);
        let [low, high] = bounds(std::iter::empty());
        assert!(low < 0.0 && high > 0.0);
    }
}
