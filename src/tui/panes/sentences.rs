//! The sentence list: number, state, sense label, and the sentence with the word picked out.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Groups, block, fit, highlighted, label};
use crate::tui::app::{App, RowState};
use crate::tui::layout::scroll_offset;
use crate::tui::theme::Theme;

/// Frames of the progress spinner.
pub const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Draws the list.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = Theme { color: app.color };
    let source = app.source.as_ref().and_then(|p| p.file_name()).map(|n| format!(" · {}", n.to_string_lossy()));
    let title = Line::from(vec![
        Span::raw(format!(" Sentences ({}) · ", app.entries.len())),
        Span::styled(format!("{:?}", app.word), theme.word()),
        Span::raw(format!("{} ", source.unwrap_or_default())),
    ]);
    let block = block(title, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.entries.is_empty() {
        let hint = format!("no sentences: press a to add one with {:?}, or o to open a file", app.word);
        frame.render_widget(Paragraph::new(Line::styled(hint, theme.dim())), inner);
        return;
    }
    let groups = Groups::of(app);
    let labelled = app.entries.iter().any(|e| e.sense.is_some());
    let offset = scroll_offset(app.selected, app.entries.len(), inner.height as usize);
    let lines: Vec<Line> = (offset..app.entries.len())
        .take(inner.height as usize)
        .map(|i| {
            let mut spans = vec![Span::raw(format!("{:>3} ", label(i)))];
            match app.row_state(i) {
                RowState::Ready { windowed: false } => spans.push(Span::raw("  ")),
                RowState::Ready { windowed: true } => spans.push(Span::styled("~ ", theme.dim())),
                RowState::Encoding => spans.push(Span::styled(format!("{} ", SPINNER[app.tick % SPINNER.len()]), theme.dim())),
                RowState::NoWord(reason) | RowState::Failed(reason) => {
                    spans.push(Span::styled(format!("✗ ({reason}) "), theme.error()));
                }
            }
            if labelled {
                let sense = app.entries[i].sense.as_deref().unwrap_or("-");
                spans.push(Span::styled(format!("[{sense}] "), theme.group_style(groups.of_entry[i])));
            }
            // The discovered cluster: the colour without labels, a tag beside them.
            if let Some(c) = groups.cluster[i] {
                let style = if labelled { theme.dim() } else { theme.group_style(groups.of_entry[i]) };
                spans.push(Span::styled(format!("C{} ", c + 1), style));
            }
            spans.extend(highlighted(app, i, theme));
            let line = fit(spans, inner.width);
            if i == app.selected { line.style(theme.selected()) } else { line }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The entry drawn at screen row `y`, if any.
pub fn entry_at(app: &App, area: Rect, y: u16) -> Option<usize> {
    let inner = Rect::new(area.x + 1, area.y + 1, area.width.saturating_sub(2), area.height.saturating_sub(2));
    let row = y.checked_sub(inner.y).filter(|&r| r < inner.height)? as usize;
    let entry = scroll_offset(app.selected, app.entries.len(), inner.height as usize) + row;
    (entry < app.entries.len()).then_some(entry)
}
