//! Every engine's pairwise cosines at its layer, one heatmap each: side by side when they fit
//! (a grid), else the selected engine's alone with `n` to cycle. A static engine's heatmap,
//! all 1.00, collapses into one line; values are printed in the cells, a colour scale below.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{CAUSAL_NOTE, EngineLabel, block, engine_labels, fit, label, message, waiting};
use crate::tui::analysis::Side;
use crate::tui::app::App;
use crate::tui::layout::{Pane, scroll_offset};
use crate::tui::theme::Theme;

/// Widest cell: a space and "0.873".
const MAX_CELL: usize = 6;

/// Narrowest cell that still prints a value (".87" with its blank is 4; "1.0" is 3).
const GRID_CELL: usize = 3;

/// Columns between two heatmaps.
const GAP: usize = 2;

/// One engine's heatmap.
#[derive(Clone, Debug, PartialEq)]
pub struct Map<'a> {
    /// The engine.
    pub engine: EngineLabel,
    /// Its layer at the chosen depth.
    pub layer: usize,
    /// Pairwise cosines over the compared sentences.
    pub matrix: &'a [Vec<f32>],
    /// Their mean off the diagonal.
    pub mean: f32,
}

/// What the pane draws.
#[derive(Clone, Debug, PartialEq)]
pub struct View<'a> {
    /// Why there is nothing to draw yet.
    pub waiting: Option<String>,
    /// The selected engine's layer, for the title.
    pub layer: usize,
    /// Row and column labels (S1, S2, ...) of the compared sentences.
    pub labels: Vec<String>,
    /// The selected sentence's position among them.
    pub selected: usize,
    /// The heatmaps, in engine order.
    pub maps: Vec<Map<'a>>,
    /// Which of `maps` is drawn when they do not all fit: the selected engine's.
    pub current: usize,
    /// One line each in place of a heatmap: engines whose cosines are all 1.00, and engines
    /// that are left out or still looking up.
    pub notes: Vec<(String, Style)>,
    /// Colours on or off.
    pub theme: Theme,
}

/// Builds the view.
pub fn view(app: &App) -> View<'_> {
    let theme = Theme { color: app.color };
    let labels: Vec<EngineLabel> = engine_labels(app.engines(), theme);
    let mut maps = Vec::new();
    let mut flat = Vec::new();
    let mut notes = Vec::new();
    for (engine, side) in labels.iter().zip(&app.analysis.engines) {
        match side {
            _ if app.analysis.flat(engine.index) => flat.push(engine),
            Side::Ready(layers) => {
                let layer = app.layer_of(engine.index).min(layers.len() - 1);
                let stats = &layers[layer];
                maps.push(Map { engine: engine.clone(), layer, matrix: &stats.matrix, mean: stats.mean });
            }
            Side::Missing(reason) => notes.push((format!("{}: left out ({reason})", engine.name), theme.error())),
            Side::Pending => notes.push((format!("{}: looking up...", engine.name), theme.dim())),
        }
    }
    if !flat.is_empty() {
        let names: Vec<&str> = flat.iter().map(|e| e.name.as_str()).collect();
        let note = format!("static {}: every cosine 1.00 (one vector for every sentence)", names.join(", "));
        notes.insert(0, (note, flat[0].style));
    }
    let current = maps.iter().position(|m| m.engine.index == app.engine).unwrap_or(0);
    View {
        waiting: waiting(app),
        layer: app.layer(),
        labels: app.analysis.rows.iter().map(|&i| label(i)).collect(),
        selected: app.analysis.position(app.selected).unwrap_or(0),
        maps,
        current,
        notes,
        theme,
    }
}

/// How many heatmaps the layout should make room for.
pub fn maps(app: &App) -> usize {
    let engines = app.analysis.engines.len();
    (0..engines).filter(|&e| matches!(app.analysis.engines[e], Side::Ready(_)) && !app.analysis.flat(e)).count().max(1)
}

/// How the heatmaps fit the pane: one cell width and one window of rows and columns, so
/// that their rows line up (only the first borrows row labels).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Grid {
    label: usize,
    cell: usize,
    rows: std::ops::Range<usize>,
    columns: std::ops::Range<usize>,
    /// How many maps are drawn side by side (1 when they do not all fit).
    shown: usize,
}

impl Grid {
    /// Fits `maps` `n` x `n` heatmaps into `area` (a title line and a header line come
    /// first), keeping `selected` (a position among the compared rows) in view. All of them
    /// side by side when every value still prints and every column shows, else one.
    fn fit(area: Rect, n: usize, selected: usize, widest_label: usize, maps: usize) -> Grid {
        let label = widest_label + 1;
        let layout = |shown: usize| {
            let free = (area.width as usize).saturating_sub(label + GAP * (shown - 1));
            let cell = (free / (shown * n.max(1))).clamp(2, MAX_CELL);
            let visible_columns = (free / shown / cell).min(n);
            (cell, visible_columns)
        };
        let all = layout(maps.max(1));
        let (shown, (cell, visible_columns)) =
            if maps > 1 && (all.0 < GRID_CELL || all.1 < n) { (1, layout(1)) } else { (maps.max(1), all) };
        let visible_rows = (area.height as usize).saturating_sub(2).min(n);
        let row0 = scroll_offset(selected, n, visible_rows);
        let column0 = scroll_offset(selected, n, visible_columns);
        Grid { label, cell, rows: row0..row0 + visible_rows, columns: column0..column0 + visible_columns, shown }
    }

    /// The area of the `i`-th map drawn side by side (the first with the row labels).
    fn map_area(&self, area: Rect, i: usize) -> Rect {
        let width = (self.columns.len() * self.cell) as u16;
        if self.shown == 1 {
            return area;
        }
        let first = self.label as u16 + width;
        let x = if i == 0 { area.x } else { area.x + first + (i as u16 - 1) * (width + GAP as u16) + GAP as u16 };
        let x = x.min(area.right());
        let w = if i == 0 { first } else { width };
        Rect { x, width: w.min(area.right() - x), ..area }
    }
}

/// The parts of the pane: note lines, the heatmaps, the legend.
fn parts(inner: Rect, notes: usize) -> (Rect, Rect, Rect) {
    let [notes, maps, legend] =
        Layout::vertical([Constraint::Length(notes as u16), Constraint::Min(0), Constraint::Length(1)]).areas(inner);
    (notes, maps, legend)
}

fn inner(area: Rect) -> Rect {
    Rect::new(area.x + 1, area.y + 1, area.width.saturating_sub(2), area.height.saturating_sub(2))
}

fn grid(view: &View, maps: Rect) -> Grid {
    let widest = view.labels.iter().map(String::len).max().unwrap_or(2);
    Grid::fit(maps, view.labels.len(), view.selected, widest, view.maps.len())
}

/// The maps drawn, with their index in `view.maps`.
fn drawn<'v, 'a>(view: &'v View<'a>, grid: &Grid) -> Vec<(usize, &'v Map<'a>)> {
    if grid.shown == view.maps.len() {
        view.maps.iter().enumerate().collect()
    } else {
        view.maps.iter().enumerate().skip(view.current).take(1).collect()
    }
}

/// Draws the pane.
pub fn render(view: &View, frame: &mut Frame, area: Rect) {
    let theme = view.theme;
    frame.render_widget(block(format!(" {} · layer {} ", Pane::Similarity.title(), view.layer), theme), area);
    let inner = inner(area);
    if let Some(why) = &view.waiting {
        return message(frame, inner, why.clone(), theme.dim());
    }
    let (notes, maps, legend) = parts(inner, view.notes.len());
    let lines: Vec<Line> = view.notes.iter().map(|(text, style)| fit(vec![Span::styled(text.clone(), *style)], notes.width)).collect();
    frame.render_widget(Paragraph::new(lines), notes);
    let grid = grid(view, maps);
    let cycling = grid.shown < view.maps.len();
    for (slot, (i, map)) in drawn(view, &grid).into_iter().enumerate() {
        let area = grid.map_area(maps, slot);
        let mut name_style = map.engine.style;
        if map.engine.index == view.maps.get(view.current).map_or(usize::MAX, |m| m.engine.index) && view.maps.len() > 1 {
            name_style = name_style.add_modifier(Modifier::UNDERLINED);
        }
        let mut rest = format!(" · mean {:.3}", map.mean);
        if map.layer != view.layer {
            rest = format!(" · layer {}{rest}", map.layer);
        }
        if cycling {
            rest.push_str(&format!(" · {}/{} (n: next)", i + 1, view.maps.len()));
        }
        if map.engine.causal {
            rest.push_str(&format!(" · {CAUSAL_NOTE}"));
        }
        let name = if map.engine.name.chars().count() + rest.chars().count() <= area.width as usize {
            map.engine.name.clone()
        } else {
            map.engine.name.chars().take((area.width as usize).saturating_sub(rest.chars().count()).max(4)).collect()
        };
        let head = fit(vec![Span::styled(name, name_style), Span::raw(rest)], area.width);
        heatmap(frame, area, head, map.matrix, &view.labels, &grid, view.selected, slot == 0, theme);
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

/// What is under screen position (`x`, `y`): the engine whose heatmap it is and the entry
/// whose row it is, each if any.
pub fn hit(app: &App, area: Rect, x: u16, y: u16) -> (Option<usize>, Option<usize>) {
    let view = view(app);
    if view.waiting.is_some() {
        return (None, None);
    }
    let (_, maps, _) = parts(inner(area), view.notes.len());
    let grid = grid(&view, maps);
    let drawn = drawn(&view, &grid);
    let engine = drawn
        .iter()
        .enumerate()
        .find(|(slot, _)| crate::tui::layout::contains(grid.map_area(maps, *slot), x, y))
        .map(|(_, (_, map))| map.engine.index);
    let row = y.checked_sub(maps.y + 2).map(|r| r as usize + grid.rows.start).filter(|r| grid.rows.contains(r));
    (engine, row.map(|r| app.analysis.rows[r]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_when_every_value_prints_else_one_map() {
        let area = Rect::new(0, 0, 78, 12);
        let two = Grid::fit(area, 9, 0, 2, 2);
        assert_eq!((two.shown, two.columns.len()), (2, 9), "{two:?}");
        assert!(two.cell >= GRID_CELL);
        // Side by side, the maps do not overlap and stay inside the pane.
        let (a, b) = (two.map_area(area, 0), two.map_area(area, 1));
        assert!(a.right() < b.x && b.right() <= area.right(), "{a:?} {b:?}");
        let four = Grid::fit(area, 9, 0, 2, 4);
        assert_eq!((four.shown, four.columns.len()), (1, 9), "four maps of 9 columns do not fit 78 columns: {four:?}");
        assert_eq!(four.map_area(area, 0), area);
        let rows = Grid::fit(Rect::new(0, 0, 78, 6), 9, 8, 2, 1);
        assert_eq!(rows.rows, 5..9, "the selected row stays in view");
    }
}
