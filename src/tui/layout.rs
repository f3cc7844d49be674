//! Where each pane goes for a terminal size. Drawing and mouse hit-testing both use this, so
//! a click always lands on what is drawn there.

use ratatui::layout::{Constraint, Layout, Rect};

/// The panes besides the sentence list; on small terminals they are tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    /// BERT and static cosine heatmaps.
    Similarity,
    /// Mean similarity per layer.
    Layers,
    /// Nearest occurrences and static neighbours.
    Neighbours,
    /// PCA scatter.
    Projection,
    /// The selected vector against the static one.
    Vector,
    /// Model-to-model similarity (CKA) of the engines.
    Models,
}

/// Tab order.
pub const PANES: [Pane; 6] = [Pane::Similarity, Pane::Layers, Pane::Neighbours, Pane::Projection, Pane::Vector, Pane::Models];

impl Pane {
    /// The tab and border title.
    pub fn title(self) -> &'static str {
        match self {
            Pane::Similarity => "Similarity",
            Pane::Layers => "Layers",
            Pane::Neighbours => "Neighbours",
            Pane::Projection => "Projection",
            Pane::Vector => "Vector",
            Pane::Models => "Models",
        }
    }

    /// Position in [`PANES`].
    pub fn index(self) -> usize {
        PANES.iter().position(|&p| p == self).unwrap_or(0)
    }
}

/// The smallest size the UI draws in; below it a message asks for more room.
pub const MIN_SIZE: (u16, u16) = (60, 16);

/// From this size on every pane is shown at once.
pub const WIDE_SIZE: (u16, u16) = (140, 40);

/// The screen, cut into panes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Areas {
    /// Title line.
    pub header: Rect,
    /// Status line (messages, keys, input prompt).
    pub status: Rect,
    /// The sentence list.
    pub sentences: Rect,
    /// The tab bar (small terminals only).
    pub tabs: Option<Rect>,
    /// The panes that are visible.
    pub panes: Vec<(Pane, Rect)>,
    /// Set when the terminal is below [`MIN_SIZE`]; nothing but a message is drawn then.
    pub too_small: bool,
}

impl Areas {
    /// The area of a pane, if it is visible.
    pub fn pane(&self, pane: Pane) -> Option<Rect> {
        self.panes.iter().find(|(p, _)| *p == pane).map(|(_, r)| *r)
    }
}

/// Lays out a screen of `size` showing `sentences` sentences, with `tab` as the visible tab
/// when not everything fits, `maps` heatmaps (static ones that are all 1.00 do not count) and
/// `engines` engines in the models pane.
pub fn areas(size: Rect, sentences: usize, tab: Pane, maps: u16, engines: u16) -> Areas {
    if size.width < MIN_SIZE.0 || size.height < MIN_SIZE.1 {
        return Areas { header: size, too_small: true, ..Areas::default() };
    }
    let [header, body, status] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(size);
    let rows = sentences.max(1) as u16;
    if size.width >= WIDE_SIZE.0 && size.height >= WIDE_SIZE.1 {
        // The heatmaps need a header row, a legend and the borders beside one row per sentence.
        let top = (rows + 5).clamp(10, body.height * 2 / 5);
        let [top_row, middle_row, bottom_row] =
            Layout::vertical([Constraint::Length(top), Constraint::Fill(1), Constraint::Fill(1)]).areas(body);
        // One or two heatmaps of 4-column cells (".87") with row labels, a gap and borders;
        // the sentences take the rest.
        let least = if maps == 1 { size.width * 30 / 100 } else { size.width * 45 / 100 };
        // One map leaves room in its title line for the note that replaces the static one.
        let wanted = if maps == 1 { rows * 4 + 24 } else { rows * 4 * maps + 8 };
        let heatmaps = wanted.clamp(least, size.width * 65 / 100);
        let [sentences, similarity] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(heatmaps)]).areas(top_row);
        let [layers, projection] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(middle_row);
        // The CKA matrix: engine names, a 6-column cell per engine, the borders.
        let models = (26 + 6 * engines.max(2)).min(size.width / 3);
        let [neighbours, vector, models] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1), Constraint::Length(models)]).areas(bottom_row);
        return Areas {
            header,
            status,
            sentences,
            tabs: None,
            panes: vec![
                (Pane::Similarity, similarity),
                (Pane::Layers, layers),
                (Pane::Neighbours, neighbours),
                (Pane::Projection, projection),
                (Pane::Vector, vector),
                (Pane::Models, models),
            ],
            too_small: false,
        };
    }
    let list = (rows + 2).clamp(3, body.height / 3);
    let [sentences, tabs, pane] =
        Layout::vertical([Constraint::Length(list), Constraint::Length(1), Constraint::Min(0)]).areas(body);
    Areas { header, status, sentences, tabs: Some(tabs), panes: vec![(tab, pane)], too_small: false }
}

/// The tab bar's labels, each with its start column relative to the bar.
pub fn tab_labels() -> Vec<(u16, String)> {
    let mut x = 0;
    PANES
        .iter()
        .enumerate()
        .map(|(i, pane)| {
            let label = format!(" {} {} ", i + 1, pane.title());
            let start = x;
            x += label.chars().count() as u16 + 1;
            (start, label)
        })
        .collect()
}

/// The tab under column `x` of the bar.
pub fn tab_at(bar: Rect, x: u16) -> Option<Pane> {
    let column = x.checked_sub(bar.x)?;
    tab_labels()
        .into_iter()
        .zip(PANES)
        .find(|((start, label), _)| column >= *start && column < start + label.chars().count() as u16)
        .map(|(_, pane)| pane)
}

/// The first item shown in a list of `len` items with `visible` rows so that `selected` is
/// on screen (the selection sticks to the bottom edge when scrolling down).
pub fn scroll_offset(selected: usize, len: usize, visible: usize) -> usize {
    if visible == 0 || len <= visible {
        return 0;
    }
    selected.saturating_sub(visible - 1).min(len - visible)
}

/// Whether a point is inside a rectangle.
pub fn contains(area: Rect, x: u16, y: u16) -> bool {
    x >= area.x && x < area.right() && y >= area.y && y < area.bottom()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_shows_everything_small_shows_tabs() {
        let wide = areas(Rect::new(0, 0, 160, 48), 9, Pane::Layers, 2, 2);
        assert_eq!(wide.panes.len(), 6);
        assert!(wide.tabs.is_none());
        let small = areas(Rect::new(0, 0, 80, 24), 9, Pane::Layers, 2, 2);
        assert_eq!(small.panes.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [Pane::Layers]);
        assert!(small.tabs.is_some());
        // Nothing overlaps and everything is on screen.
        let mut all = vec![small.header, small.status, small.sentences, small.tabs.unwrap(), small.panes[0].1];
        all.extend(wide.panes.iter().map(|(_, r)| *r));
        for r in &all {
            assert!(r.bottom() <= 48 && r.right() <= 160);
        }
        assert_eq!(small.sentences.height + small.panes[0].1.height + 3, 24);
        assert!(areas(Rect::new(0, 0, 40, 10), 9, Pane::Layers, 2, 2).too_small);
        // With the static heatmap collapsed the sentences get the room it leaves.
        let one = areas(Rect::new(0, 0, 140, 40), 9, Pane::Layers, 1, 2);
        let two = areas(Rect::new(0, 0, 140, 40), 9, Pane::Layers, 2, 2);
        assert!(one.sentences.width >= 78 && one.sentences.width > two.sentences.width + 15, "{one:?}");
    }

    #[test]
    fn tab_hits_and_scrolling() {
        let bar = Rect::new(1, 5, 78, 1);
        assert_eq!(tab_at(bar, 1), Some(Pane::Similarity));
        let (start, _) = tab_labels()[2];
        assert_eq!(tab_at(bar, 1 + start), Some(Pane::Neighbours));
        assert_eq!(tab_at(bar, 0), None);
        let (start, label) = tab_labels().pop().unwrap();
        assert_eq!(tab_at(bar, 1 + start), Some(Pane::Models));
        assert_eq!(tab_at(bar, 1 + start + label.chars().count() as u16), None);
        assert_eq!(scroll_offset(0, 9, 5), 0);
        assert_eq!(scroll_offset(4, 9, 5), 0);
        assert_eq!(scroll_offset(5, 9, 5), 1);
        assert_eq!(scroll_offset(8, 9, 5), 4);
        assert_eq!(scroll_offset(8, 3, 5), 0);
    }
}
