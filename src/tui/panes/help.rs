//! The `?` overlay: every key and mouse action.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::block;
use crate::tui::theme::Theme;

/// Every key the UI knows, with what it does.
pub const KEYS: &[(&str, &str)] = &[
    ("← → / h l", "previous / next layer (every pane follows)"),
    ("Home End", "first / last layer"),
    ("↑ ↓ / k j", "select a sentence (PgUp PgDn: by 5)"),
    ("p", "pooling of the word's pieces: mean, first, last"),
    ("a", "add a sentence"),
    ("e", "edit the selected sentence"),
    ("d Del", "delete the selected sentence"),
    ("w", "change the target word"),
    ("o", "open a sentences file (text or TSV)"),
    ("s / S", "save the comparison as JSON / Markdown"),
    ("Tab 1-5", "switch pane (small terminals)"),
    ("mouse", "click a sentence, heatmap row, tab or layer; wheel"),
    ("Esc", "cancel typing; clear the message"),
    ("?", "this help"),
    ("q Ctrl-C", "quit"),
];

/// Draws the overlay in the middle of `area`.
pub fn render(frame: &mut Frame, area: Rect, theme: Theme) {
    // A key column of 12, a space, the description, and the borders.
    let width = KEYS.iter().map(|(_, d)| d.chars().count()).max().unwrap_or(40) as u16 + 12 + 1 + 2;
    let height = KEYS.len() as u16 + 4;
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))]).flex(Flex::Center).areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width.min(area.width))]).flex(Flex::Center).areas(row);
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(key, what)| Line::from(vec![Span::styled(format!(" {key:>10} "), theme.key()), Span::raw(format!(" {what}"))]))
        .collect();
    lines.push(Line::default());
    lines.push(Line::styled(" any of Esc ? q Enter closes this", theme.dim()));
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block(" Keys ", theme)), popup);
}
