//! One component per pane. Each builds a narrow view struct from `&App` (`view`), draws from
//! that alone (`render`) and, where the mouse can point into it, answers what is under a
//! position with the same geometry it draws with.

pub mod help;
pub mod layers;
pub mod models;
pub mod neighbours;
pub mod projection;
pub mod sentences;
pub mod similarity;
pub mod vector;

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::app::{App, Models};
use super::theme::Theme;
use super::worker::EngineInfo;

/// How panes name and paint one engine.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineLabel {
    /// Its position among the engines.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Its colour.
    pub style: Style,
    /// A static engine (one vector per word).
    pub fixed: bool,
    /// A decoder: each word sees only its left context.
    pub causal: bool,
}

/// The labels of every loaded engine: contextual engines in the BERT colours, static ones in
/// the static colours, each kind numbered in its own order.
pub fn engine_labels(engines: &[EngineInfo], theme: Theme) -> Vec<EngineLabel> {
    engines
        .iter()
        .enumerate()
        .map(|(index, e)| {
            let nth = engines[..index].iter().filter(|o| o.is_static() == e.is_static()).count();
            EngineLabel { index, name: e.name.clone(), style: theme.engine(e.is_static(), nth), fixed: e.is_static(), causal: e.causal }
        })
        .collect()
}

/// The note shown for a decoder.
pub const CAUSAL_NOTE: &str = "sees only the left context";

/// A bordered pane with a title.
pub fn block<'a>(title: impl Into<Line<'a>>, theme: Theme) -> Block<'a> {
    Block::bordered().title(title).border_style(theme.dim())
}

/// A centred message in place of a pane's content.
pub fn message(frame: &mut Frame, area: Rect, text: impl Into<String>, style: Style) {
    let lines = vec![Line::default(); (area.height / 2).saturating_sub(1) as usize];
    let mut lines: Vec<Line> = lines;
    lines.push(Line::styled(text.into(), style));
    frame.render_widget(Paragraph::new(lines).alignment(Alignment::Center).wrap(Wrap { trim: true }), area);
}

/// Why a pane has nothing to show yet, if it has nothing.
pub fn waiting(app: &App) -> Option<String> {
    if app.models == Models::Loading {
        return Some("loading models...".into());
    }
    if app.fitting() {
        return Some(format!("fitting {} per layer on {}...", app.postprocess, app.fitted_on()));
    }
    if app.analysis.comparable() {
        return None;
    }
    if app.encoding() > 0 {
        return Some(format!("encoding {} sentences...", app.encoding()));
    }
    Some(format!("add at least two sentences with {:?} (key a)", app.word))
}

/// The spans cut to `width` columns, with `…` where something was cut.
pub fn fit(spans: Vec<Span<'_>>, width: u16) -> Line<'_> {
    let width = width as usize;
    let total: usize = spans.iter().map(Span::width).sum();
    if total <= width {
        return Line::from(spans);
    }
    let mut room = width.saturating_sub(1);
    let mut kept = Vec::new();
    for span in spans {
        if room == 0 {
            break;
        }
        let mut text = String::new();
        for c in span.content.chars() {
            let w = Span::raw(String::from(c)).width();
            if w > room {
                room = 0;
                break;
            }
            room -= w;
            text.push(c);
        }
        kept.push(Span::styled(text, span.style));
    }
    let style = kept.last().map(|s: &Span| s.style).unwrap_or_default();
    if width > 0 {
        kept.push(Span::styled("…", style));
    }
    Line::from(kept)
}

/// The sentence's number as every pane shows it.
pub fn label(entry: usize) -> String {
    format!("S{}", entry + 1)
}

/// Colour groups: one per sense label when the sentences have labels, else one per
/// discovered cluster (the unclustered sentences in a last group), else one per sentence.
pub struct Groups {
    /// Group names, in order of first appearance.
    pub names: Vec<String>,
    /// The group of each entry.
    pub of_entry: Vec<usize>,
    /// The cluster of each entry, when the compared sentences were clustered.
    pub cluster: Vec<Option<usize>>,
}

impl Groups {
    /// Groups the app's sentences.
    pub fn of(app: &App) -> Self {
        let labelled = app.entries.iter().any(|e| e.sense.is_some());
        let mut cluster = vec![None; app.entries.len()];
        if let Some(c) = &app.analysis.clusters {
            for (&entry, &label) in app.analysis.rows.iter().zip(&c.labels) {
                cluster[entry] = Some(label);
            }
        }
        let mut names: Vec<String> = Vec::new();
        let of_entry = app
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let name = if labelled {
                    e.sense.clone().unwrap_or_else(|| "unlabelled".into())
                } else if app.analysis.clusters.is_some() {
                    cluster[i].map_or_else(|| "-".into(), |c| format!("C{}", c + 1))
                } else {
                    label(i)
                };
                names.iter().position(|n| *n == name).unwrap_or_else(|| {
                    names.push(name);
                    names.len() - 1
                })
            })
            .collect();
        Groups { names, of_entry, cluster }
    }
}

/// The clustering in a few words: "k = 3 clusters by silhouette 0.42 · ARI 0.61 vs the
/// senses", or why there is one cluster.
pub fn clusters_note(app: &App) -> Option<String> {
    let c = app.analysis.clusters.as_ref()?;
    let silhouette = c.silhouette.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.2}"));
    let mut note = if c.k > 1 {
        format!("k = {} clusters, silhouette {silhouette}", c.k)
    } else {
        format!("one cluster (best silhouette {silhouette} < {})", vecshift::senses::cluster::MIN_SILHOUETTE)
    };
    if let Some(ari) = app.analysis.ari {
        note.push_str(&format!(" · ARI {ari:.2} vs the senses"));
    }
    Some(note)
}

/// A sentence with the target word picked out.
pub fn highlighted<'a>(app: &'a App, entry: usize, theme: Theme) -> Vec<Span<'a>> {
    let e = &app.entries[entry];
    match &e.located {
        Ok(o) => vec![
            Span::raw(&e.text[..o.span().start]),
            Span::styled(&e.text[o.span()], theme.word()),
            Span::raw(&e.text[o.span().end..]),
        ],
        Err(_) => vec![Span::raw(e.text.as_str())],
    }
}
