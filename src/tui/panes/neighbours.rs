//! For the selected sentence: the other occurrences nearest to it in BERT space (each with
//! its static cosine beside it, always the same), and the word's static nearest neighbours
//! in the vocabulary.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Groups, block, highlighted, label, message, waiting};
use crate::tui::analysis::StaticSide;
use crate::tui::app::{App, RowState};
use crate::tui::layout::Pane;
use crate::tui::theme::Theme;

/// The other compared occurrences by descending BERT cosine to `position` at the chosen
/// layer: (position among the compared rows, cosine).
pub fn nearest(app: &App, position: usize) -> Vec<(usize, f32)> {
    let Some(stats) = app.layer_stats() else { return Vec::new() };
    let mut others: Vec<(usize, f32)> =
        stats.matrix[position].iter().enumerate().filter(|&(j, _)| j != position).map(|(j, &c)| (j, c)).collect();
    others.sort_by(|a, b| b.1.total_cmp(&a.1));
    others
}

/// Draws the pane.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = Theme { color: app.color };
    let title = format!(" {} of {} · layer {} ", Pane::Neighbours.title(), label(app.selected), app.layer);
    let block = block(title, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [left, _, right] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(1), Constraint::Length(28)]).areas(inner);
    render_static(app, frame, right, theme);
    if let Some(why) = waiting(app) {
        return message(frame, left, why, theme.dim());
    }
    let Some(position) = app.analysis.position(app.selected) else {
        let why = match app.row_state(app.selected) {
            RowState::NoWord(reason) | RowState::Failed(reason) => reason.to_owned(),
            _ => "still encoding".to_owned(),
        };
        return message(frame, left, format!("{} is not compared: {why}", label(app.selected)), theme.dim());
    };
    let static_row = match &app.analysis.statics {
        StaticSide::Ready { stats, .. } => Some(&stats.matrix[position]),
        _ => None,
    };
    let groups = Groups::of(app);
    let mut lines = vec![Line::from(vec![
        Span::styled(" BERT", theme.bert()),
        Span::raw(" "),
        Span::styled("static", theme.statics()),
        Span::raw("  nearest other occurrences"),
    ])];
    for (j, cos) in nearest(app, position).into_iter().take(left.height.saturating_sub(1) as usize) {
        let entry = app.analysis.rows[j];
        let static_cos = static_row.map_or("   n/a".into(), |row| format!("{:>6.3}", row[j]));
        let mut spans = vec![
            Span::styled(format!("{cos:>5.3}"), theme.heat(cos)),
            Span::raw(static_cos),
            Span::raw(format!(" {:>3} ", label(entry))),
        ];
        if let Some(sense) = &app.entries[entry].sense {
            spans.push(Span::styled(format!("[{sense}] "), theme.group_style(groups.of_entry[entry])));
        }
        spans.extend(highlighted(app, entry, theme));
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), left);
}

fn render_static(app: &App, frame: &mut Frame, area: Rect, theme: Theme) {
    let mut lines = vec![Line::styled(format!("static neighbours of {:?}", app.word), theme.statics())];
    match app.static_neighbours() {
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
