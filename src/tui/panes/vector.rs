//! The selected occurrence's BERT vector at the chosen layer beside the word's static
//! vector, dimension by dimension, with each one's cosine to the mean of the other
//! occurrences: the drift made visible.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::widgets::canvas::{Canvas, Line as Segment};

use super::{block, label, message, waiting};
use crate::tui::analysis::{StaticSide, cosine_to_rest};
use crate::tui::app::App;
use crate::tui::layout::Pane;
use crate::tui::theme::Theme;

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// One bar per dimension, up for positive and down for negative values.
fn bars(frame: &mut Frame, area: Rect, title: Line, vector: &[f32], color: Color) {
    let [head, plot] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(title), head);
    let peak = f64::from(vector.iter().fold(0f32, |m, v| m.max(v.abs()))).max(1e-6);
    let canvas = Canvas::default()
        .marker(Marker::Braille)
        .x_bounds([0.0, vector.len().saturating_sub(1).max(1) as f64])
        .y_bounds([-peak, peak])
        .paint(|ctx| {
            for (i, &v) in vector.iter().enumerate() {
                ctx.draw(&Segment::new(i as f64, 0.0, i as f64, f64::from(v), color));
            }
        });
    frame.render_widget(canvas, plot);
}

/// Draws the pane.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = Theme { color: app.color };
    let title = format!(" {} of {} · layer {} ", Pane::Vector.title(), label(app.selected), app.layer);
    let block = block(title, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(why) = waiting(app) {
        return message(frame, inner, why, theme.dim());
    }
    let Some(position) = app.analysis.position(app.selected) else {
        return message(frame, inner, format!("{} is not compared", label(app.selected)), theme.dim());
    };
    let layer_vectors: Vec<&[f32]> =
        app.analysis.rows.iter().filter_map(|&i| app.vectors(i)).map(|e| &e.vectors.layers()[app.layer][..]).collect();
    let vector = layer_vectors[position];
    let others = app.analysis.rows.len() - 1;
    let bert_drift = cosine_to_rest(&layer_vectors, position);
    let (static_vector, static_drift) = match &app.analysis.statics {
        StaticSide::Ready { vectors, .. } => (Some(&vectors[position]), cosine_to_rest(vectors, position)),
        _ => (None, None),
    };
    let fmt = |c: Option<f32>| c.filter(|c| !c.is_nan()).map_or("n/a".to_owned(), |c| format!("{c:.3}"));
    let summary = Line::from(vec![
        Span::raw(format!("cos to the mean of the other {others}: ")),
        Span::styled(format!("BERT {}", fmt(bert_drift)), theme.bert()),
        Span::raw(" · "),
        Span::styled(format!("static {}", fmt(static_drift)), theme.statics()),
    ]);
    let [text, bert_area, static_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(3), Constraint::Fill(2)]).areas(inner);
    frame.render_widget(Paragraph::new(summary), text);
    let info = app.info().expect("waiting() is None only once the models are loaded");
    let bert_title = Line::styled(
        format!("BERT {} · {} dims · norm {:.2}", info.bert, vector.len(), norm(vector)),
        theme.bert(),
    );
    let color = |style: Style| style.fg.unwrap_or(Color::Reset);
    bars(frame, bert_area, bert_title, vector, color(theme.bert()));
    match static_vector {
        Some(v) => {
            let title = Line::styled(
                format!("static {} · {} dims · norm {:.2} · same in every sentence", info.statics, v.len(), norm(v)),
                theme.statics(),
            );
            bars(frame, static_area, title, v, color(theme.statics()));
        }
        None => message(frame, static_area, "no static vector for this word", theme.dim()),
    }
}
