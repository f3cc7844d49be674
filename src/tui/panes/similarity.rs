//! Two heatmaps side by side at the chosen layer: BERT's pairwise cosines, which move, and
//! the static ones, which are all 1.00; values printed in the cells and a colour scale below.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{block, label, message, waiting};
use crate::tui::analysis::StaticSide;
use crate::tui::app::App;
use crate::tui::layout::{Pane, scroll_offset};
use crate::tui::theme::Theme;

/// Widest cell: a space and "0.873".
const MAX_CELL: usize = 6;

/// Columns between the two heatmaps.
const GAP: usize = 2;

/// How both heatmaps fit the pane: one cell width and one window of rows and columns, so
/// that their rows line up (the right one borrows the left one's row labels).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Grid {
    label: usize,
    cell: usize,
    rows: std::ops::Range<usize>,
    columns: std::ops::Range<usize>,
}

impl Grid {
    /// Fits `maps` (1 or 2) `n` x `n` heatmaps into `inner` (a title line and a header line
    /// come first), keeping `selected` (a position among the compared rows) in view.
    fn fit(inner: Rect, n: usize, selected: usize, widest_label: usize, maps: usize) -> Grid {
        let label = widest_label + 1;
        let free = (inner.width as usize).saturating_sub(label + GAP * (maps - 1));
        let cell = (free / (maps * n.max(1))).clamp(2, MAX_CELL);
        let visible_columns = (free / maps / cell).min(n);
        let visible_rows = (inner.height as usize).saturating_sub(3).min(n);
        let row0 = scroll_offset(selected, n, visible_rows);
        let column0 = scroll_offset(selected, n, visible_columns);
        Grid { label, cell, rows: row0..row0 + visible_rows, columns: column0..column0 + visible_columns }
    }

    /// The left heatmap (with row labels), the right one, and the legend line. With one map
    /// the left one spans the pane (its title line has room for the static note) and the
    /// right one is empty.
    fn areas(&self, inner: Rect, maps: usize) -> (Rect, Rect, Rect) {
        let width = (self.columns.len() * self.cell) as u16;
        let [heatmaps, legend] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
        if maps == 1 {
            return (heatmaps, Rect { width: 0, ..heatmaps }, legend);
        }
        let left = Rect { width: (self.label as u16 + width).min(heatmaps.width), ..heatmaps };
        let right_x = (left.right() + GAP as u16).min(heatmaps.right());
        let right = Rect { x: right_x, width: heatmaps.right().saturating_sub(right_x), ..heatmaps };
        (left, right, legend)
    }
}

fn inner(area: Rect) -> Rect {
    Rect::new(area.x + 1, area.y + 1, area.width.saturating_sub(2), area.height.saturating_sub(2))
}

fn grid(app: &App, inner: Rect) -> Grid {
    let widest = app.analysis.rows.iter().map(|&i| label(i).len()).max().unwrap_or(2);
    let selected = app.analysis.position(app.selected).unwrap_or(0);
    Grid::fit(inner, app.analysis.rows.len(), selected, widest, maps(app))
}

/// How many heatmaps are drawn: one when the static one would be all 1.00 (a line says so
/// instead, and BERT's gets the room), else two.
pub fn maps(app: &App) -> usize {
    if app.analysis.static_flat() { 1 } else { 2 }
}

/// The title, long when it fits and short when not.
fn title<'a>(long: String, short: String, rest: String, style: Style, width: u16) -> Line<'a> {
    let name = if long.chars().count() + rest.chars().count() <= width as usize { long } else { short };
    Line::from(vec![Span::styled(name, style), Span::raw(rest)])
}

/// Draws the pane.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = Theme { color: app.color };
    frame.render_widget(block(format!(" {} · layer {} ", Pane::Similarity.title(), app.layer), theme), area);
    let inner = inner(area);
    if let Some(why) = waiting(app) {
        return message(frame, inner, why, theme.dim());
    }
    let grid = grid(app, inner);
    let (left, right, legend) = grid.areas(inner, maps(app));
    let labels: Vec<String> = app.analysis.rows.iter().map(|&i| label(i)).collect();
    let selected = app.analysis.position(app.selected).unwrap_or(0);
    let info = app.info().expect("waiting() is None only once the models are loaded");
    if let Some(stats) = app.layer_stats() {
        let mut head = title(format!("BERT {} ", info.bert), "BERT ".into(), format!("· mean {:.3}", stats.mean), theme.bert(), left.width);
        if maps(app) == 1 {
            // The static heatmap would be all 1.00: one note says so in its place.
            let room = (left.width as usize).saturating_sub(head.width());
            let notes = [
                format!("   static {}: every cosine 1.00 (one vector for every sentence)", info.statics),
                "   static: every cosine 1.00 (one vector for every sentence)".into(),
                "   static: all 1.00".into(),
            ];
            let note = notes.iter().find(|n| n.chars().count() <= room).unwrap_or(&notes[2]);
            head.spans.push(Span::styled(note.clone(), theme.statics()));
            head = super::fit(head.spans, left.width);
        }
        heatmap(frame, left, head, &stats.matrix, &labels, &grid, selected, true, theme);
    }
    match &app.analysis.statics {
        StaticSide::Ready { .. } if maps(app) == 1 => {}
        StaticSide::Ready { stats, .. } => {
            let rest = format!("· mean {:.3}, fixed", stats.mean);
            let head = title(format!("static {} ", info.statics), "static ".into(), rest, theme.statics(), right.width);
            heatmap(frame, right, head, &stats.matrix, &labels, &grid, selected, false, theme);
        }
        StaticSide::Missing(reason) => message(frame, right, format!("static: {reason}"), theme.error()),
        StaticSide::Pending => message(frame, right, "looking up the static vectors...", theme.dim()),
    }
    let spans: Vec<Span> = theme.legend().into_iter().map(|(text, style)| Span::styled(text, style)).collect();
    frame.render_widget(Paragraph::new(Line::from(spans)).centered(), legend);
}

#[allow(clippy::too_many_arguments)]
fn heatmap(
    frame: &mut Frame,
    area: Rect,
    title: Line,
    matrix: &[Vec<f32>],
    labels: &[String],
    grid: &Grid,
    selected: usize,
    row_labels: bool,
    theme: Theme,
) {
    let pick = |i: usize| if i == selected { theme.selected() } else { Style::new() };
    let label_width = if row_labels { grid.label } else { 0 };
    let mut lines = vec![title];
    let mut header = vec![Span::raw(" ".repeat(label_width))];
    for j in grid.columns.clone() {
        // Column heads lose their "S" when the cell is narrow: the numbers still line up.
        let head = if labels[j].len() < grid.cell { labels[j].clone() } else { labels[j][1..].to_owned() };
        header.push(Span::styled(format!("{head:>width$}", width = grid.cell), pick(j)));
    }
    lines.push(Line::from(header));
    for i in grid.rows.clone() {
        let mut row = vec![Span::styled(format!("{:<label_width$}", if row_labels { labels[i].as_str() } else { "" }), pick(i))];
        for j in grid.columns.clone() {
            let value = matrix[i][j];
            // A blank column before each value keeps neighbouring numbers apart.
            row.push(Span::styled(format!(" {}", theme.heat_text(value, grid.cell - 1)), theme.heat(value)));
        }
        lines.push(Line::from(row));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// The entry whose heatmap row is at screen row `y`, if any.
pub fn entry_at(app: &App, area: Rect, y: u16) -> Option<usize> {
    let inner = inner(area);
    let grid = grid(app, inner);
    let row = (y.checked_sub(inner.y + 2)? as usize) + grid.rows.start;
    grid.rows.contains(&row).then(|| app.analysis.rows[row])
}
