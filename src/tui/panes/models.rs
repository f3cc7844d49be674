//! Model against model: debiased linear CKA (Kornblith et al. 2019) between every two
//! engines, each at its layer nearest the chosen depth, over every word of the compared
//! sentences (computed on the worker thread). 1 = the same representation up to rotation and
//! scale. Below it, each engine's size and measured speed (a variant's also relative to its
//! original's), and each compression variant's drift from its original per layer: the cosine
//! between the two vectors of the same occurrence (mean, min, 5th percentile).

use vecshift::compress::drift::LayerDrift;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use indicatif::{HumanBytes, HumanCount};
use ratatui::widgets::Paragraph;

use super::{CAUSAL_NOTE, EngineLabel, block, engine_labels, fit, message, waiting};
use crate::tui::app::App;
use crate::tui::layout::Pane;
use crate::tui::theme::Theme;

/// Width of one matrix cell: a blank and "0.873".
const CELL: usize = 6;

/// The tokens a CKA matrix is computed over, and the matrix (`None`: undefined).
pub type Matrix = (usize, Vec<Vec<Option<f64>>>);

/// What the pane draws.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Why there is nothing to draw yet.
    pub waiting: Option<String>,
    /// The engines, each with its layer.
    pub engines: Vec<(EngineLabel, usize)>,
    /// The tokens the matrix is computed over, and the matrix; `Err` says why there is none.
    pub cka: Option<Result<Matrix, String>>,
    /// Each variant, its original and its drift per layer (or why there is none).
    pub drift: Vec<(EngineLabel, EngineLabel, Result<Vec<LayerDrift>, String>)>,
    /// Each engine's size and speed, in engine order.
    pub costs: Vec<Cost>,
    /// Colours on or off.
    pub theme: Theme,
}

/// What an engine takes: the bytes of its weights and its speed.
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    /// The engine.
    pub engine: EngineLabel,
    /// Bytes of its weights, where known (a contextual engine).
    pub bytes: Option<u64>,
    /// Real tokens per second over the compared sentences.
    pub speed: Speed,
    /// For a compression variant, its original's position in [`View::costs`].
    pub base: Option<usize>,
}

/// An engine's measured speed.
#[derive(Clone, Debug, PartialEq)]
pub enum Speed {
    /// Being measured (or waiting for the sentences to be encoded first).
    Waiting,
    /// Nothing to measure: the engine has no tokens (a static one looks words up).
    None,
    /// Tokens per second.
    Measured(f64),
    /// Why it could not be measured.
    Failed(String),
}

/// Builds the view.
pub fn view(app: &App) -> View {
    let theme = Theme { color: app.color };
    let engines: Vec<(EngineLabel, usize)> =
        engine_labels(app.engines(), theme).into_iter().map(|e| { let layer = app.layer_of(e.index); (e, layer) }).collect();
    let waiting = waiting(app).or_else(|| (engines.len() < 2).then(|| "one engine: nothing to compare it with (--bert / --vectors)".into()));
    let cka = app.cka().map(|r| r.as_ref().map(|c| (c.tokens, c.matrix.clone())).map_err(Clone::clone));
    let labels = engine_labels(app.engines(), theme);
    let drift = app
        .analysis
        .drift
        .iter()
        .filter_map(|d| Some((labels.get(d.engine)?.clone(), labels.get(d.base)?.clone(), d.layers.clone())))
        .collect();
    let speeds = app.speeds();
    let costs = labels
        .iter()
        .zip(app.engines())
        .map(|(label, info)| Cost {
            engine: label.clone(),
            bytes: info.bytes,
            speed: match speeds.map(|s| s.get(label.index).cloned().flatten()) {
                _ if info.bytes.is_none() => Speed::None,
                None => Speed::Waiting,
                Some(None) => Speed::None,
                Some(Some(Ok(v))) => Speed::Measured(v),
                Some(Some(Err(why))) => Speed::Failed(why),
            },
            base: info.variant.as_ref().map(|v| v.base),
        })
        .collect();
    View { waiting, engines, cka, drift, costs, theme }
}

/// Draws the pane.
pub fn render(view: &View, frame: &mut Frame, area: Rect) {
    let theme = view.theme;
    let tokens = match &view.cka {
        Some(Ok((tokens, _))) => format!(" over {tokens} words"),
        _ => String::new(),
    };
    let block = block(format!(" {} · CKA{tokens} ", Pane::Models.title()), theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(why) = &view.waiting {
        return message(frame, inner, why.clone(), theme.dim());
    }
    let matrix = match &view.cka {
        None if view.drift.is_empty() => return message(frame, inner, "comparing the engines over every word...", theme.dim()),
        Some(Err(why)) if view.drift.is_empty() => return message(frame, inner, why.clone(), theme.error()),
        Some(Ok((_, matrix))) => matrix.clone(),
        None | Some(Err(_)) => Vec::new(),
    };
    // Row labels: "E1 name L6", cut so that the cells fit.
    let room = (inner.width as usize).saturating_sub(CELL * view.engines.len()).max(4);
    let mut lines = Vec::new();
    let mut header = vec![Span::raw(" ".repeat(room))];
    for (e, _) in &view.engines {
        header.push(Span::styled(format!("{:>CELL$}", format!("E{}", e.index + 1)), e.style));
    }
    lines.push(Line::from(header));
    for (a, (e, layer)) in view.engines.iter().enumerate() {
        let name = format!("E{} {} L{layer}", e.index + 1, e.name);
        let name = if name.chars().count() > room - 1 {
            let keep = room.saturating_sub(1 + 1 + format!(" L{layer}").len());
            let cut: String = format!("E{} {}", e.index + 1, e.name).chars().take(keep).collect();
            format!("{cut}… L{layer}")
        } else {
            name
        };
        let mut row = vec![Span::styled(format!("{name:<room$}"), e.style)];
        for value in &matrix[a] {
            let (text, style) = match value {
                Some(v) => (theme.heat_text(*v as f32, CELL - 1), theme.heat(*v as f32)),
                None => (format!("{:>w$}", "n/a", w = CELL - 1), Style::new()),
            };
            row.push(Span::styled(format!(" {text}"), style));
        }
        lines.push(Line::from(row));
    }
    lines.push(Line::default());
    let notes = [
        "1 = the same geometry up to rotation and scale".to_owned(),
        "each engine at its layer nearest the depth (← →)".to_owned(),
    ];
    for note in notes {
        lines.push(fit(vec![Span::styled(note, theme.dim())], inner.width));
    }
    for (e, _) in view.engines.iter().filter(|(e, _)| e.causal) {
        lines.push(fit(vec![Span::styled(format!("E{} {} {CAUSAL_NOTE}", e.index + 1, e.name), theme.dim())], inner.width));
    }
    match &view.cka {
        None => lines.insert(1, Line::styled("comparing the engines over every word...", theme.dim())),
        Some(Err(why)) => lines.insert(1, Line::styled(why.clone(), theme.error())),
        Some(Ok(_)) => {}
    }
    lines.extend(cost_lines(view, inner.width));
    lines.extend(drift_lines(view, inner.width));
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Widths of the cost columns: size, its ratio to the original's, tokens/s, its ratio.
const COST_COLUMNS: [usize; 4] = [10, 7, 9, 7];

/// Each engine's size and tokens/s (a variant's also relative to its original's), one line each.
fn cost_lines(view: &View, width: u16) -> Vec<Line<'static>> {
    let theme = view.theme;
    if view.costs.iter().all(|c| c.bytes.is_none() && c.speed == Speed::None) {
        return Vec::new();
    }
    let [size, mut size_ratio, speed, mut speed_ratio] = COST_COLUMNS;
    // The ratio columns only when there is a variant to compare with its original.
    if view.costs.iter().all(|c| c.base.is_none()) {
        (size_ratio, speed_ratio) = (0, 0);
    }
    let room = (width as usize).saturating_sub(size + size_ratio + speed + speed_ratio).max(6);
    let mut lines = vec![
        Line::default(),
        fit(vec![Span::styled("size, tokens/s on these sentences", theme.dim())], width),
        fit(vec![Span::styled(format!("{:room$}{:>size$}{:>size_ratio$}{:>speed$}{:>speed_ratio$}", "", "size", if size_ratio > 0 { "×orig" } else { "" }, "tokens/s", if speed_ratio > 0 { "×orig" } else { "" }), theme.dim())], width),
    ];
    let tokens_per_second = |c: &Cost| match c.speed {
        Speed::Measured(v) => Some(v),
        _ => None,
    };
    for c in &view.costs {
        let base = c.base.and_then(|b| view.costs.get(b));
        let name: String = format!("E{} {}", c.engine.index + 1, c.engine.name);
        let name = if name.chars().count() >= room { format!("{}…", name.chars().take(room.saturating_sub(2)).collect::<String>()) } else { name };
        let bytes = c.bytes.map_or_else(|| "–".to_owned(), |b| HumanBytes(b).to_string());
        let per_second = match &c.speed {
            Speed::Waiting => "…".to_owned(),
            Speed::None => "–".to_owned(),
            Speed::Measured(v) => HumanCount(v.round() as u64).to_string(),
            Speed::Failed(_) => "n/a".to_owned(),
        };
        let ratio = |part: Option<f64>, whole: Option<f64>| match (part, whole) {
            (Some(part), Some(whole)) if whole > 0.0 => format!("{:.2}×", part / whole),
            _ => String::new(),
        };
        let bytes_ratio = ratio(c.bytes.map(|b| b as f64), base.and_then(|b| b.bytes).map(|b| b as f64));
        let speed_ratio_text = ratio(tokens_per_second(c), base.and_then(tokens_per_second));
        lines.push(fit(
            vec![
                Span::styled(format!("{name:<room$}"), c.engine.style),
                Span::raw(format!("{bytes:>size$}{bytes_ratio:>size_ratio$}{per_second:>speed$}{speed_ratio_text:>speed_ratio$}")),
            ],
            width,
        ));
        if let Speed::Failed(why) = &c.speed {
            lines.push(fit(vec![Span::styled(why.clone(), theme.error())], width));
        }
    }
    lines
}

/// Each variant's drift from its original, one line per layer.
fn drift_lines(view: &View, width: u16) -> Vec<Line<'static>> {
    let theme = view.theme;
    let mut lines = Vec::new();
    for (variant, base, layers) in &view.drift {
        lines.push(Line::default());
        let title = format!("drift of E{} {} from E{} {}: cosine of each occurrence's two vectors", variant.index + 1, variant.name, base.index + 1, base.name);
        lines.push(fit(vec![Span::styled(title, variant.style)], width));
        match layers {
            Err(why) => lines.push(fit(vec![Span::styled(why.clone(), theme.error())], width)),
            Ok(layers) => {
                lines.push(Line::styled(format!("{:>6} {:>7} {:>7} {:>7}", "layer", "mean", "min", "p5"), theme.dim()));
                for l in layers {
                    // Four decimals: f16 and int8 drift in the third.
                    let cell = |v: f64| Span::styled(format!(" {v:>7.4}"), theme.heat(v as f32));
                    lines.push(Line::from(vec![
                        Span::raw(format!("{:>6}", format!("L{}", l.layer))),
                        cell(l.drift_mean),
                        cell(l.drift_min),
                        cell(l.drift_p5),
                    ]));
                }
            }
        }
    }
    lines
}
