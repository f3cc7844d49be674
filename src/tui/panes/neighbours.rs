//! For the selected sentence: the other occurrences nearest to it by the selected engine's
//! cosine (the other engines' cosines beside each), and the word's nearest neighbours in a
//! static vocabulary (the selected engine's, else the first static engine's).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use vecshift::Neighbor;

use super::{EngineLabel, Groups, block, engine_labels, fit, highlighted, label, message, waiting};
use crate::tui::app::{App, RowState};
use crate::tui::layout::Pane;
use crate::tui::theme::Theme;

/// One nearest occurrence.
#[derive(Clone, Debug, PartialEq)]
pub struct Near<'a> {
    /// Its entry.
    pub entry: usize,
    /// The cosine of each engine in [`View::engines`] (None: the engine is left out).
    pub cosines: Vec<Option<f32>>,
    /// Its sense label and colour.
    pub sense: Option<(&'a str, Style)>,
    /// The sentence with the word picked out.
    pub text: Vec<Span<'a>>,
}

/// A vocabulary's neighbours of the word: `None` while they are looked up.
pub type Answer<'a> = Option<&'a Result<Vec<Neighbor>, String>>;

/// What the pane draws.
#[derive(Clone, Debug, PartialEq)]
pub struct View<'a> {
    /// The selected sentence's label.
    pub selected: String,
    /// The selected engine's layer.
    pub layer: usize,
    /// Why there is nothing to rank, if so.
    pub why_not: Option<String>,
    /// The engines of the cosine columns, the selected one first.
    pub engines: Vec<EngineLabel>,
    /// The other occurrences, nearest first by the first engine.
    pub nearest: Vec<Near<'a>>,
    /// The target word.
    pub word: &'a str,
    /// The vocabulary searched, and its answer (None: not back yet).
    pub vocabulary: Option<(String, Answer<'a>)>,
    /// Colours on or off.
    pub theme: Theme,
}

/// The other compared occurrences by descending cosine to `position` in the selected
/// engine at its layer: (position among the compared rows, cosine).
pub fn nearest(app: &App, position: usize) -> Vec<(usize, f32)> {
    let Some(stats) = app.layer_stats() else { return Vec::new() };
    let mut others: Vec<(usize, f32)> =
        stats.matrix[position].iter().enumerate().filter(|&(j, _)| j != position).map(|(j, &c)| (j, c)).collect();
    others.sort_by(|a, b| b.1.total_cmp(&a.1));
    others
}

/// Builds the view.
pub fn view(app: &App) -> View<'_> {
    let theme = Theme { color: app.color };
    let labels = engine_labels(app.engines(), theme);
    let engines: Vec<EngineLabel> =
        labels.iter().filter(|e| e.index == app.engine).chain(labels.iter().filter(|e| e.index != app.engine)).cloned().collect();
    let vocabulary = app.vocabulary_engine().map(|e| (labels[e].name.clone(), app.static_neighbours()));
    let mut view = View {
        selected: label(app.selected),
        layer: app.layer(),
        why_not: waiting(app),
        engines,
        nearest: Vec::new(),
        word: &app.word,
        vocabulary,
        theme,
    };
    if view.why_not.is_some() {
        return view;
    }
    let Some(position) = app.analysis.position(app.selected) else {
        let why = match app.row_state(app.selected) {
            RowState::NoWord(reason) | RowState::Failed(reason) => reason.to_owned(),
            _ => "still encoding".to_owned(),
        };
        view.why_not = Some(format!("{} is not compared: {why}", label(app.selected)));
        return view;
    };
    let groups = Groups::of(app);
    let rows: Vec<Option<&Vec<f32>>> = view.engines.iter().map(|e| app.stats_of(e.index).map(|s| &s.matrix[position])).collect();
    view.nearest = nearest(app, position)
        .into_iter()
        .map(|(j, _)| {
            let entry = app.analysis.rows[j];
            Near {
                entry,
                cosines: rows.iter().map(|r| r.map(|r| r[j])).collect(),
                sense: app.entries[entry].sense.as_deref().map(|s| (s, theme.group_style(groups.of_entry[entry]))),
                text: highlighted(app, entry, theme),
            }
        })
        .collect();
    view
}

/// Draws the pane.
pub fn render(view: &View, frame: &mut Frame, area: Rect) {
    let theme = view.theme;
    let title = format!(" {} of {} · layer {} ", Pane::Neighbours.title(), view.selected, view.layer);
    let block = block(title, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [left, _, right] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(1), Constraint::Length(28)]).areas(inner);
    render_vocabulary(view, frame, right);
    if let Some(why) = &view.why_not {
        return message(frame, left, why.clone(), theme.dim());
    }
    // As many cosine columns as leave the sentences 24 columns.
    let columns = view.engines.len().min((left.width.saturating_sub(24) / 7).max(1) as usize);
    let mut head = Vec::new();
    for e in &view.engines[..columns] {
        let short: String = e.name.chars().take(6).collect();
        head.push(Span::styled(format!("{short:>6}"), e.style));
        head.push(Span::raw(" "));
    }
    head.push(Span::raw(" nearest other occurrences"));
    let mut lines = vec![fit(head, left.width)];
    for near in view.nearest.iter().take(left.height.saturating_sub(1) as usize) {
        let mut spans = Vec::new();
        for (i, cos) in near.cosines[..columns].iter().enumerate() {
            let text = cos.map_or("   n/a".to_owned(), |c| format!("{c:>6.3}"));
            // The ranking engine's cosine in the heatmap colours.
            let style = match cos {
                Some(c) if i == 0 => theme.heat(*c),
                _ => Style::new(),
            };
            spans.push(Span::styled(text, style));
            spans.push(Span::raw(" "));
        }
        spans.push(Span::raw(format!("{:>3} ", label(near.entry))));
        if let Some((sense, style)) = near.sense {
            spans.push(Span::styled(format!("[{sense}] "), style));
        }
        spans.extend(near.text.iter().cloned());
        lines.push(fit(spans, left.width));
    }
    frame.render_widget(Paragraph::new(lines), left);
}

fn render_vocabulary(view: &View, frame: &mut Frame, area: Rect) {
    let theme = view.theme;
    let Some((name, answer)) = &view.vocabulary else {
        return frame.render_widget(Paragraph::new(Line::styled("no static vocabulary loaded", theme.dim())), area);
    };
    let mut lines = vec![Line::styled(format!("{name} neighbours of {:?}", view.word), theme.statics())];
    match answer {
        None => lines.push(Line::styled("looking up...", theme.dim())),
        Some(Err(reason)) => lines.push(Line::styled(reason.clone(), theme.error())),
        Some(Ok(neighbours)) => {
            for (k, n) in neighbours.iter().enumerate().take(area.height.saturating_sub(1) as usize) {
                lines.push(Line::raw(format!("{:>2}. {:<14} {:.3}", k + 1, n.word, n.cosine)));
            }
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }), area);
}
