//! Colours, or their absence: with `NO_COLOR` set every style falls back to plain text and
//! modifiers (bold, underline, reverse), which the convention allows.

use ratatui::style::{Color, Modifier, Style};

/// Viridis at ten steps: ordered in lightness, readable for colour-blind people, and still
/// ordered when a terminal maps it to 256 colours.
const RAMP: [(u8, u8, u8); 10] = [
    (68, 1, 84),
    (72, 40, 120),
    (62, 74, 137),
    (49, 104, 142),
    (38, 130, 142),
    (31, 158, 137),
    (53, 183, 121),
    (109, 205, 89),
    (180, 222, 44),
    (253, 231, 37),
];

/// Shades for heatmap cells too narrow for a number, when there is no colour.
const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];

/// Distinct colours for sense labels (or sentences when there are none).
const GROUPS: [Color; 8] =
    [Color::Cyan, Color::Yellow, Color::Magenta, Color::Green, Color::LightRed, Color::LightBlue, Color::White, Color::Red];

/// Colours of contextual engines after the first (which is [`Theme::bert`]'s).
const CONTEXTUAL: [Color; 4] = [Color::LightMagenta, Color::LightBlue, Color::LightRed, Color::Magenta];

/// Colours of static engines after the first (which is [`Theme::statics`]'s).
const STATIC: [Color; 4] = [Color::LightCyan, Color::LightGreen, Color::Cyan, Color::Green];

/// How the UI paints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    /// False when `NO_COLOR` is set.
    pub color: bool,
}

impl Theme {
    /// Reads `NO_COLOR` (set and not empty means no colour, as <https://no-color.org> says).
    pub fn from_env() -> Self {
        Theme { color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) }
    }

    fn fg(&self, color: Color) -> Style {
        if self.color { Style::new().fg(color) } else { Style::new() }
    }

    /// The ramp step of a cosine (clamped to `[0, 1]`).
    pub fn step(value: f32) -> usize {
        (value.clamp(0.0, 1.0) * (RAMP.len() - 1) as f32).round() as usize
    }

    /// A heatmap cell for `value`.
    pub fn heat(&self, value: f32) -> Style {
        if !self.color || value.is_nan() {
            return Style::new();
        }
        let step = Self::step(value);
        let (r, g, b) = RAMP[step];
        let text = if step >= 5 { Color::Black } else { Color::White };
        Style::new().bg(Color::Rgb(r, g, b)).fg(text)
    }

    /// A cosine in at most `width` columns, right-aligned: as many digits as fit (0.873,
    /// 0.87, .87, .9), a shade when no digit fits and there is no colour, else blank.
    pub fn heat_text(&self, value: f32, width: usize) -> String {
        if value.is_nan() {
            return format!("{:>width$}", if width >= 3 { "n/a" } else { "?" });
        }
        let strip = |s: String| s.replacen("0.", ".", 1);
        let candidates = [
            format!("{value:.3}"),
            format!("{value:.2}"),
            strip(format!("{value:.2}")),
            format!("{value:.1}"),
            strip(format!("{value:.1}")),
            format!("{value:.0}"),
        ];
        let text = match candidates.into_iter().find(|c| c.chars().count() <= width) {
            Some(text) if width >= 2 => text,
            _ if self.color => String::new(),
            _ => SHADES[(value.clamp(0.0, 1.0) * (SHADES.len() - 1) as f32).round() as usize].to_string(),
        };
        format!("{text:>width$}")
    }

    /// The colour scale under the heatmaps, as (text, style) pieces.
    pub fn legend(&self) -> Vec<(String, Style)> {
        let mut pieces = vec![("0.0 ".to_owned(), Style::new())];
        if self.color {
            for (r, g, b) in RAMP {
                pieces.push(("  ".into(), Style::new().bg(Color::Rgb(r, g, b))));
            }
        } else {
            pieces.push((SHADES.iter().flat_map(|&c| [c, c]).collect(), Style::new()));
        }
        pieces.push((" 1.0".into(), Style::new()));
        pieces
    }

    /// The colour of group `i` (a sense label or a sentence).
    pub fn group(&self, i: usize) -> Color {
        if self.color { GROUPS[i % GROUPS.len()] } else { Color::Reset }
    }

    /// Text in the colour of group `i`.
    pub fn group_style(&self, i: usize) -> Style {
        self.fg(GROUPS[i % GROUPS.len()])
    }

    /// The target word inside a sentence.
    pub fn word(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    /// The selected row.
    pub fn selected(&self) -> Style {
        if self.color { Style::new().bg(Color::DarkGray) } else { Style::new().add_modifier(Modifier::REVERSED) }
    }

    /// Titles and labels that name the static model.
    pub fn statics(&self) -> Style {
        self.fg(Color::LightCyan)
    }

    /// The `nth` engine of its kind (static or contextual).
    pub fn engine(&self, fixed: bool, nth: usize) -> Style {
        let colors = if fixed { &STATIC } else { &CONTEXTUAL };
        self.fg(colors[nth % colors.len()])
    }

    /// Secondary text.
    pub fn dim(&self) -> Style {
        self.fg(Color::DarkGray)
    }

    /// Errors and warnings.
    pub fn error(&self) -> Style {
        self.fg(Color::LightRed).add_modifier(Modifier::BOLD)
    }

    /// Key names in hints and help.
    pub fn key(&self) -> Style {
        self.fg(Color::LightYellow).add_modifier(Modifier::BOLD)
    }

    /// The border of the focused or highlighted pane.
    pub fn accent(&self) -> Style {
        self.fg(Color::LightGreen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_texts_fit_their_width() {
        let theme = Theme { color: true };
        for width in 1..8 {
            for value in [0.0, 0.05, 0.873, 0.996, 1.0, -0.25, -1.0, f32::NAN] {
                let text = theme.heat_text(value, width);
                assert!(text.chars().count() <= width.max(1), "{value} in {width}: {text:?}");
            }
        }
        assert_eq!(theme.heat_text(0.873, 6), " 0.873");
        assert_eq!(theme.heat_text(0.873, 4), "0.87");
        assert_eq!(theme.heat_text(0.873, 3), ".87");
        assert_eq!(theme.heat_text(1.0, 3), "1.0");
        assert_eq!(theme.heat_text(-0.26, 3), "-.3");
        assert_eq!(theme.heat_text(-1.0, 3), " -1");
        assert_eq!(theme.heat_text(0.5, 1), " ", "no room for digits: colour alone");
        assert_eq!(theme.heat_text(0.91, 2), ".9");
        let plain = Theme { color: false };
        assert_eq!(plain.heat_text(1.0, 1), "█");
        assert_eq!(plain.heat_text(-1.0, 1), " ", "negative: the lightest shade");
        assert_eq!(plain.heat(0.5), Style::new());
    }

    #[test]
    fn ramp_is_ordered_and_clamped() {
        assert_eq!(Theme::step(-0.5), 0);
        assert_eq!(Theme::step(0.0), 0);
        assert_eq!(Theme::step(1.0), 9);
        assert_eq!(Theme::step(7.0), 9);
        let lightness: Vec<u32> = RAMP.iter().map(|&(r, g, b)| 299 * r as u32 + 587 * g as u32 + 114 * b as u32).collect();
        assert!(lightness.windows(2).all(|w| w[0] < w[1]), "{lightness:?}");
    }
}
