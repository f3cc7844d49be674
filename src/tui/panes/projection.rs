//! A 2-D PCA scatter of the selected engine's occurrence vectors at its layer, coloured by
//! sense label (or, without labels, by discovered cluster); a static engine's vectors all
//! fall on one point.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::Paragraph;
use ratatui::widgets::canvas::{Canvas, Points};

use super::{CAUSAL_NOTE, EngineLabel, Groups, block, clusters_note, engine_labels, fit, message, waiting};
use crate::tui::app::App;
use crate::tui::layout::Pane;
use crate::tui::theme::Theme;

/// One point of the scatter.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Its entry (the number drawn is entry + 1).
    pub entry: usize,
    /// PC1, PC2.
    pub at: (f64, f64),
    /// Its group (sense or cluster).
    pub group: usize,
}

/// What the pane draws.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Why there is nothing to draw yet.
    pub waiting: Option<String>,
    /// The selected engine.
    pub engine: Option<EngineLabel>,
    /// Its layer.
    pub layer: usize,
    /// Share of the variance on PC1 and PC2, in percent.
    pub shares: (f32, f32),
    /// The points.
    pub points: Vec<Point>,
    /// The selected entry.
    pub selected: usize,
    /// Group names and colours, in group order.
    pub groups: Vec<(String, Color, Style)>,
    /// Whether the groups are sense labels or clusters (else sentences).
    pub labelled: bool,
    /// The clustering (k, silhouette, ARI) in a few words.
    pub clusters: Option<String>,
    /// Whether the groups are sense labels (else clusters or sentences).
    pub senses: bool,
    /// Colours on or off.
    pub theme: Theme,
}

/// Builds the view.
pub fn view(app: &App) -> View {
    let theme = Theme { color: app.color };
    let engine = engine_labels(app.engines(), theme).into_iter().nth(app.engine);
    let groups = Groups::of(app);
    let mut view = View {
        waiting: waiting(app),
        engine,
        layer: app.layer(),
        shares: (0.0, 0.0),
        points: Vec::new(),
        selected: app.selected,
        groups: groups.names.iter().enumerate().map(|(g, n)| (n.clone(), theme.group(g), theme.group_style(g))).collect(),
        labelled: app.entries.iter().any(|e| e.sense.is_some()) || app.analysis.clusters.is_some(),
        clusters: clusters_note(app),
        senses: app.entries.iter().any(|e| e.sense.is_some()),
        theme,
    };
    let Some(pca) = app.analysis.projection.as_ref() else {
        view.waiting.get_or_insert_with(|| "no projection".into());
        return view;
    };
    let share = |c: usize| pca.explained_variance_ratio.get(c).map_or(0.0, |r| r * 100.0);
    view.shares = (share(0), share(1));
    view.points = app
        .analysis
        .rows
        .iter()
        .zip(&pca.projections)
        .map(|(&entry, p)| Point { entry, at: (f64::from(p[0]), f64::from(*p.get(1).unwrap_or(&0.0))), group: groups.of_entry[entry] })
        .collect();
    view
}

/// Axis bounds around the points (the origin included), with a margin for the labels.
fn bounds(values: impl Iterator<Item = f64>) -> [f64; 2] {
    let (low, high) = values.fold((0f64, 0f64), |(l, h), v| (l.min(v), h.max(v)));
    let margin = ((high - low) * 0.12).max(1e-6);
    [low - margin, high + margin]
}

/// Draws the pane.
pub fn render(view: &View, frame: &mut Frame, area: Rect) {
    let theme = view.theme;
    let Some(engine) = view.engine.as_ref().filter(|_| view.waiting.is_none()) else {
        frame.render_widget(block(format!(" {} ", Pane::Projection.title()), theme), area);
        return message(frame, area, view.waiting.clone().unwrap_or_default(), theme.dim());
    };
    let title = vec![
        Span::raw(format!(" {} · PCA of ", Pane::Projection.title())),
        Span::styled(engine.name.clone(), engine.style),
        Span::raw(format!(" layer {} · PC1 {:.0}%, PC2 {:.0}% of the variance ", view.layer, view.shares.0, view.shares.1)),
    ];
    let block = block(fit(title, area.width.saturating_sub(2)), theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let notes = u16::from(view.clusters.is_some());
    let [plot, legend, note] = Layout::vertical([Constraint::Min(0), Constraint::Length(1), Constraint::Length(notes)]).areas(inner);
    let x = bounds(view.points.iter().map(|p| p.at.0));
    let y = bounds(view.points.iter().map(|p| p.at.1));
    let per_group: Vec<(Color, Vec<(f64, f64)>)> = view
        .groups
        .iter()
        .enumerate()
        .map(|(g, (_, color, _))| (*color, view.points.iter().filter(|p| p.group == g).map(|p| p.at).collect()))
        .collect();
    let canvas = Canvas::default().marker(Marker::Braille).x_bounds(x).y_bounds(y).paint(|ctx| {
        for (color, points) in &per_group {
            ctx.draw(&Points::new(points, *color));
        }
        ctx.layer();
        for p in &view.points {
            let style = if p.entry == view.selected { theme.selected() } else { view.groups.get(p.group).map_or(Style::new(), |g| g.2) };
            ctx.print(p.at.0, p.at.1, Span::styled((p.entry + 1).to_string(), style));
        }
    });
    frame.render_widget(canvas, plot);

    let mut spans: Vec<Span> = Vec::new();
    if view.labelled {
        for (g, (name, _, style)) in view.groups.iter().enumerate() {
            let members: Vec<String> = view.points.iter().filter(|p| p.group == g).map(|p| (p.entry + 1).to_string()).collect();
            if !members.is_empty() {
                spans.push(Span::styled(format!("■ {name} {} ", members.join(",")), *style));
            }
        }
    } else {
        spans.push(Span::raw("numbers are sentences "));
    }

    if engine.fixed {
        spans.push(Span::styled(format!(" ◆ static: all {} in one point", view.points.len()), engine.style));
    }
    if engine.causal {
        spans.push(Span::styled(format!(" · {} {CAUSAL_NOTE}", engine.name), theme.dim()));
    }
    frame.render_widget(Paragraph::new(fit(spans, legend.width)).style(Style::new()), legend);
    if let Some(text) = &view.clusters {
        let what = if view.senses { "clustered: " } else { "colours are clusters: " };
        frame.render_widget(Paragraph::new(fit(vec![Span::styled(format!("{what}{text}"), theme.dim())], note.width)), note);
    }
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
