//! The `?` overlay: every key and mouse action.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::block;
use crate::tui::commands;
use crate::tui::theme::Theme;

/// Draws the overlay in the middle of `area`.
pub fn render(frame: &mut Frame, area: Rect, theme: Theme) {
    // A key column of 12, a space, the description, and the borders.
    let keys: Vec<(&str, &str)> = commands::help_lines().chain([("mouse", "click a sentence, heatmap row, tab or layer; wheel")]).collect();
    let width = keys.iter().map(|(_, d)| d.chars().count()).max().unwrap_or(40) as u16 + 12 + 1 + 2;
    let height = keys.len() as u16 + 4;
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))]).flex(Flex::Center).areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width.min(area.width))]).flex(Flex::Center).areas(row);
    let mut lines: Vec<Line> = keys
        .iter()
        .map(|(key, what)| Line::from(vec![Span::styled(format!(" {key:>10} "), theme.key()), Span::raw(format!(" {what}"))]))
        .collect();
    lines.push(Line::default());
    lines.push(Line::styled(" any of Esc ? q Enter closes this", theme.dim()));
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block(" Keys ", theme)), popup);
}
