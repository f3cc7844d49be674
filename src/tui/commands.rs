//! The one table of what keys do (gitui's `commands()` idea): the key handler looks keys up
//! here, the help overlay lists it, and the status line shows its hints, so the three can
//! never disagree.

use crossterm::event::KeyCode;

/// What a command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Previous layer.
    LayerDown,
    /// Next layer.
    LayerUp,
    /// Layer 0.
    FirstLayer,
    /// The last layer.
    LastLayer,
    /// Select the sentence above.
    Up,
    /// Select the sentence below.
    Down,
    /// Five sentences up.
    PageUp,
    /// Five sentences down.
    PageDown,
    /// Next pooling.
    Pooling,
    /// Select the next engine.
    NextEngine,
    /// Select the previous engine.
    PreviousEngine,
    /// Next anisotropy correction of the contextual vectors.
    Correction,
    /// Type a new sentence.
    Add,
    /// Edit the selected sentence.
    Edit,
    /// Delete the selected sentence.
    Delete,
    /// Undo the last add, edit or delete.
    Undo,
    /// Type a new target word.
    Word,
    /// Open a sentences file.
    Open,
    /// Save the comparison as JSON.
    SaveJson,
    /// Save the comparison as Markdown.
    SaveMarkdown,
    /// Next tab.
    NextTab,
    /// Previous tab.
    PreviousTab,
    /// The tab of the digit typed.
    TabNumber,
    /// Clear the message.
    ClearNotice,
    /// Open the help overlay.
    Help,
    /// Quit.
    Quit,
}

/// One command: the keys that run it, how help names them, and its hint on the status line.
#[derive(Clone, Copy, Debug)]
pub struct Command {
    /// The keys (in normal mode).
    pub keys: &'static [KeyCode],
    /// The keys as help shows them.
    pub shown: &'static str,
    /// What it does, for help.
    pub help: &'static str,
    /// The status-line hint (`key`, `word`) and its priority (1 = kept longest), if any.
    pub hint: Option<(&'static str, &'static str, u8)>,
    /// What it does, for the key handler.
    pub action: Action,
}

use KeyCode::{BackTab, Char, Delete, Down, End, Esc, Home, Left, PageDown, PageUp, Right, Tab, Up};

const fn command(
    keys: &'static [KeyCode],
    shown: &'static str,
    help: &'static str,
    hint: Option<(&'static str, &'static str, u8)>,
    action: Action,
) -> Command {
    Command { keys, shown, help, hint, action }
}

/// Every command, in the order help lists them and the status line shows their hints.
pub const COMMANDS: &[Command] = &[
    command(&[Left, Char('h')], "← → / h l", "previous / next layer (every pane follows)", Some(("←→", "layer", 3)), Action::LayerDown),
    command(&[Right, Char('l')], "", "", None, Action::LayerUp),
    command(&[Home], "Home End", "first / last layer (0 = embeddings output)", None, Action::FirstLayer),
    command(&[End], "", "", None, Action::LastLayer),
    command(&[Up, Char('k')], "↑ ↓ / k j", "select a sentence", Some(("↑↓", "sentence", 4)), Action::Up),
    command(&[Down, Char('j')], "", "", None, Action::Down),
    command(&[PageUp], "PgUp PgDn", "select a sentence 5 up / down", None, Action::PageUp),
    command(&[PageDown], "", "", None, Action::PageDown),
    command(&[Char('p')], "p", "pooling of the word's pieces: mean, first, last", Some(("p", "pooling", 8)), Action::Pooling),
    command(&[Char('n')], "n / N", "next / previous engine (the panes follow it)", Some(("n", "engine", 5)), Action::NextEngine),
    command(&[Char('N')], "", "", None, Action::PreviousEngine),
    command(
        &[Char('c')],
        "c",
        "correct cosines: center, abtt, whiten, standardize",
        Some(("c", "correct", 13)),
        Action::Correction,
    ),
    command(&[Char('a')], "a", "add a sentence", Some(("a", "add", 5)), Action::Add),
    command(&[Char('e')], "e", "edit the selected sentence", Some(("e", "edit", 9)), Action::Edit),
    command(&[Char('d'), Delete], "d Del", "delete the selected sentence", Some(("d", "delete", 7)), Action::Delete),
    command(&[Char('u')], "u", "undo the last add, edit or delete", Some(("u", "undo", 10)), Action::Undo),
    command(&[Char('w')], "w", "change the target word", Some(("w", "word", 6)), Action::Word),
    command(&[Char('o')], "o", "open a sentences file (text or TSV)", Some(("o", "open", 11)), Action::Open),
    command(&[Char('s')], "s / S", "save the comparison as JSON / Markdown", Some(("s", "save", 12)), Action::SaveJson),
    command(&[Char('S'), Char('m')], "", "", None, Action::SaveMarkdown),
    command(&[Tab], "Tab 1-6", "switch pane (small terminals)", None, Action::NextTab),
    command(&[BackTab], "", "", None, Action::PreviousTab),
    command(&[Char('1'), Char('2'), Char('3'), Char('4'), Char('5'), Char('6')], "", "", None, Action::TabNumber),
    command(&[Esc], "Esc", "cancel typing; clear the message", None, Action::ClearNotice),
    command(&[Char('?')], "?", "this help", Some(("?", "help", 1)), Action::Help),
    command(&[Char('q')], "q Ctrl-C", "quit", Some(("q", "quit", 2)), Action::Quit),
];

/// The command a key runs in normal mode.
pub fn find(code: KeyCode) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.keys.contains(&code))
}

/// The lines of the help overlay: (keys, what they do); commands listed under another's keys
/// (`j` under `k`) have no line of their own.
pub fn help_lines() -> impl Iterator<Item = (&'static str, &'static str)> {
    COMMANDS.iter().filter(|c| !c.shown.is_empty()).map(|c| (c.shown, c.help))
}

/// The status-line hints that fit in `width` columns, in table order: the lowest-priority
/// ones are dropped first, so "? help" and "q quit" stay to the last.
pub fn hints(width: usize) -> Vec<(&'static str, &'static str)> {
    let all: Vec<(&str, &str, u8)> = COMMANDS.iter().filter_map(|c| c.hint).collect();
    let cost = |(key, word, _): &(&str, &str, u8)| key.chars().count() + 1 + word.chars().count() + 2;
    let mut priorities: Vec<u8> = all.iter().map(|h| h.2).collect();
    priorities.sort_unstable();
    let mut kept = 0;
    for &limit in &priorities {
        let used: usize = all.iter().filter(|h| h.2 <= limit).map(cost).sum();
        if used > width {
            break;
        }
        kept = limit;
    }
    all.into_iter().filter(|h| h.2 <= kept).map(|(key, word, _)| (key, word)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_runs_one_command_and_help_lists_every_action_key() {
        let mut keys: Vec<KeyCode> = COMMANDS.iter().flat_map(|c| c.keys.iter().copied()).collect();
        let count = keys.len();
        keys.sort_by_key(|k| format!("{k:?}"));
        keys.dedup();
        assert_eq!(keys.len(), count, "a key bound twice");
        assert_eq!(find(Char('u')).map(|c| c.action), Some(Action::Undo));
        assert!(help_lines().any(|(keys, _)| keys == "u"));
    }

    #[test]
    fn hints_drop_the_least_important_first() {
        let all = hints(500);
        assert_eq!(all.len(), COMMANDS.iter().filter(|c| c.hint.is_some()).count());
        let narrow = hints(40);
        assert!(narrow.contains(&("?", "help")) && narrow.contains(&("q", "quit")), "{narrow:?}");
        assert!(!narrow.contains(&("s", "save")), "{narrow:?}");
        let width: usize = narrow.iter().map(|(k, w)| k.chars().count() + w.chars().count() + 3).sum();
        assert!(width <= 40, "{narrow:?}");
        assert_eq!(hints(5), Vec::<(&str, &str)>::new());
    }
}
