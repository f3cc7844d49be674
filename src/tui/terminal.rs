//! Entering and leaving the full-screen mode, so that the terminal is given back as it was
//! on quit, on error and on panic.

use std::io::{Stdout, stdout};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use crossterm::cursor::Show;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// The terminal in full-screen mode; dropping it restores the terminal.
pub struct Screen {
    /// The ratatui terminal to draw on.
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

static HOOK: Once = Once::new();

/// Whether full-screen mode is on. Leaving the alternate screen twice is not harmless: the
/// second time moves the cursor back to where it was on entering, over the shell's lines.
static ACTIVE: AtomicBool = AtomicBool::new(false);

impl Screen {
    /// Switches to raw mode, the alternate screen and mouse reporting.
    pub fn enter() -> Result<Self> {
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                // The worker reports its panics through its channel, and the UI then ends
                // cleanly; a report printed here would land on the full screen.
                if std::thread::current().name() == Some(super::worker::THREAD_NAME) {
                    return;
                }
                // Restore first, then report: the report must land on the normal screen.
                restore();
                previous(info);
            }));
        });
        enable_raw_mode().context("cannot switch the terminal to raw mode")?;
        ACTIVE.store(true, Ordering::SeqCst);
        let screen = Screen {
            // From here on, an error drops `screen` or `restore` runs, so the terminal comes back.
            terminal: Terminal::new(CrosstermBackend::new(stdout())).context("cannot open the terminal")?,
        };
        execute!(stdout(), EnterAlternateScreen, EnableMouseCapture).context("cannot enter full-screen mode")?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Whether the screen is in full-screen mode (a panic hook may have left it).
pub fn active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

/// Leaves full-screen mode, once; does nothing when it was never entered or already left.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), DisableMouseCapture, LeaveAlternateScreen, Show);
}
