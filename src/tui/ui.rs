//! Drawing the whole screen from the state; nothing here changes it.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::{App, Mode, Models, Notice};
use super::commands;
use super::layout::{self, MIN_SIZE, Pane};
use super::panes::{self, sentences::SPINNER};
use super::theme::Theme;

impl App {
    /// Draws the UI into `frame`.
    pub fn render(&self, frame: &mut Frame) {
        let theme = Theme { color: self.color };
        let areas = self.areas_in(frame.area());
        if areas.too_small {
            let text = format!(
                "vecshift needs a terminal of at least {}x{} (this one is {}x{}); enlarge it, or press q to quit",
                MIN_SIZE.0,
                MIN_SIZE.1,
                frame.area().width,
                frame.area().height
            );
            return panes::message(frame, frame.area(), text, theme.error());
        }
        self.header(frame, areas.header, theme);
        panes::sentences::render(self, frame, areas.sentences);
        if let Some(bar) = areas.tabs {
            let mut spans = Vec::new();
            for ((_, text), pane) in layout::tab_labels().into_iter().zip(layout::PANES) {
                let style = if pane == self.tab { theme.selected() } else { theme.dim() };
                spans.push(Span::styled(text, style));
                spans.push(Span::raw(" "));
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), bar);
        }
        for &(pane, area) in &areas.panes {
            match pane {
                Pane::Similarity => panes::similarity::render(&panes::similarity::view(self), frame, area),
                Pane::Layers => panes::layers::render(&panes::layers::view(self), frame, area),
                Pane::Neighbours => panes::neighbours::render(&panes::neighbours::view(self), frame, area),
                Pane::Projection => panes::projection::render(&panes::projection::view(self), frame, area),
                Pane::Vector => panes::vector::render(&panes::vector::view(self), frame, area),
                Pane::Models => panes::models::render(&panes::models::view(self), frame, area),
            }
        }
        self.status(frame, areas.status, theme);
        if self.mode == Mode::Help {
            panes::help::render(frame, frame.area(), theme);
        }
    }

    fn header(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let mut spans = vec![Span::styled(" vecshift ", theme.key()), Span::styled(format!("{:?} ", self.word), theme.word())];
        // Most important first: a narrow terminal cuts the end.
        match self.selected_engine() {
            Some(engine) => {
                spans.push(Span::raw(format!("· layer {} of 0-{} · {} pooling · ", self.layer(), engine.layers - 1, self.pooling)));
                // Every engine, the selected one marked.
                for label in panes::engine_labels(self.engines(), theme) {
                    let mark = if label.index == self.engine && self.engines().len() > 1 { "▶" } else { "" };
                    let kind = if label.fixed { "static" } else { "BERT" };
                    spans.push(Span::styled(format!("{mark}{kind} {} ", label.name), label.style));
                }
            }
            None => spans.push(Span::raw(format!("· {} pooling ", self.pooling))),
        }
        let spinner = SPINNER[self.tick % SPINNER.len()];
        let activity = if self.models == Models::Loading {
            Span::styled(format!("{spinner} loading models "), theme.key())
        } else if self.encoding() > 0 {
            Span::styled(format!("{spinner} encoding {} ({}) ", self.encoding(), self.pooling), theme.key())
        } else {
            Span::styled(" ? help ", theme.dim())
        };
        let width = activity.width() as u16;
        let left = Rect { width: area.width.saturating_sub(width), ..area };
        frame.render_widget(Paragraph::new(panes::fit(spans, left.width)), left);
        let right = Rect { x: area.right().saturating_sub(width), width: width.min(area.width), ..area };
        frame.render_widget(Paragraph::new(Line::from(activity)), right);
    }

    fn status(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        if let Mode::Input(input) = &self.mode {
            let prompt = format!("{}> ", input.purpose.prompt());
            let hint = "   Enter: done, Esc: cancel";
            // Keep the cursor on screen: tui-input scrolls the text to it.
            let room = (area.width as usize).saturating_sub(prompt.chars().count() + 1);
            let scroll = input.field.visual_scroll(room);
            let shown: String = input.text().chars().skip(scroll).collect();
            let line = Line::from(vec![Span::styled(prompt.clone(), theme.key()), Span::raw(shown), Span::styled(hint, theme.dim())]);
            frame.render_widget(Paragraph::new(panes::fit(line.spans, area.width)), area);
            let x = area.x + (prompt.chars().count() + input.field.visual_cursor().saturating_sub(scroll)) as u16;
            frame.set_cursor_position(Position::new(x.min(area.right().saturating_sub(1)), area.y));
            return;
        }
        if let Mode::Confirm(confirm) = &self.mode {
            let spans = vec![Span::styled(confirm.question.clone(), theme.key())];
            frame.render_widget(Paragraph::new(panes::fit(spans, area.width)), area);
            return;
        }
        // The active correction stays in sight: every cosine on screen depends on it.
        let mut spans = Vec::new();
        if self.postprocess != vecshift::analysis::postprocess::Postprocess::None {
            let on = if self.fit.is_some() { " (fit: corpus)" } else { "" };
            spans.push(Span::styled(format!("[{}{on}]", self.postprocess), theme.key()));
            spans.push(Span::raw(" "));
        }
        let taken: usize = spans.iter().map(Span::width).sum();
        let line = match &self.notice {
            Some(Notice::Info(text)) => {
                spans.push(Span::raw(text.clone()));
                panes::fit(spans, area.width)
            }
            Some(Notice::Error(text)) => {
                spans.push(Span::styled(text.clone(), theme.error()));
                panes::fit(spans, area.width)
            }
            None => {
                for (key, what) in commands::hints((area.width as usize).saturating_sub(taken)) {
                    spans.push(Span::styled(key, theme.key()));
                    spans.push(Span::raw(format!(" {what}  ")));
                }
                Line::from(spans)
            }
        };
        frame.render_widget(Paragraph::new(line), area);
    }
}
