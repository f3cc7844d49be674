//! The terminal UI (`vecshift`, `vecshift tui`): one word's BERT vectors shifting across
//! sentences and layers beside its fixed static vector.
//!
//! The Elm Architecture: [`app::App`] is the state, [`app::App::update`] the only place it
//! changes and `App::render` (in `ui`) draws it. The models live on a worker thread
//! ([`worker`]) so the screen never waits for them; terminal events and worker replies
//! reach the loop below through one channel.
//!
//! The terminal is given back on quit (`q`, or `Ctrl-C`, which raw mode delivers as a key),
//! on a failed model load, on a panic, and on SIGINT, SIGTERM or SIGHUP sent from outside
//! (`kill`), after which the exit status is 128 + the signal.
//!
//! Test only: `VECSHIFT_TUI_TEST_PANIC=draw` makes the UI panic while drawing the first frame
//! after a key press, and `=update` while handling the first key, so that tests/tui_pty.rs can
//! check that a panic gives the terminal back. Any other value, or none, does nothing.

mod analysis;
// The sentence-file reader is shared with `compare`; the UI reaches it under its old name.
pub(crate) use crate::cli::sentences;
pub mod app;
mod commands;
mod layout;
mod panes;
mod report;
mod terminal;
mod theme;
mod ui;
pub mod worker;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use crossterm::event::{self, Event};
use ratatui::layout::Rect;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use app::{App, Effect, Msg, Start};
use terminal::Screen;
use worker::Loader;

/// How often the progress indicator moves while something runs.
const TICK: Duration = Duration::from_millis(120);

/// Whether colour is wanted (`NO_COLOR` unset or empty).
pub fn color_wanted() -> bool {
    theme::Theme::from_env().color
}

/// Runs the UI until the user quits. A failed model load ends it with that error, after the
/// terminal has been restored.
pub fn run(start: Start, load: Loader) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "the terminal UI needs a terminal, and standard output is not one; in scripts use `vecshift compare --sentences FILE` (add --json for machine-readable output)"
        );
    }
    // Library warnings go to stderr, which would scribble over the screen; the UI shows its own.
    let log_level = log::max_level();
    log::set_max_level(log::LevelFilter::Off);
    let stopped = Arc::new(AtomicI32::new(0));
    let result = run_screen(start, load, &stopped);
    log::set_max_level(log_level);
    // The screen is restored by now; a signal from outside ends the process as it asked.
    let signal = stopped.load(Ordering::SeqCst);
    if signal != 0 {
        let name = match signal {
            SIGINT => "SIGINT",
            SIGTERM => "SIGTERM",
            _ => "SIGHUP",
        };
        eprintln!("interrupted by {name}");
        std::process::exit(128 + signal);
    }
    result
}

/// Where the test-only panic fires (see the module documentation).
#[derive(Clone, Copy, PartialEq, Eq)]
enum TestPanic {
    Draw,
    Update,
}

/// The test-only panic asked for with `VECSHIFT_TUI_TEST_PANIC`; only the exact values
/// `draw` and `update` count.
fn test_panic() -> Option<TestPanic> {
    match std::env::var("VECSHIFT_TUI_TEST_PANIC").as_deref() {
        Ok("draw") => Some(TestPanic::Draw),
        Ok("update") => Some(TestPanic::Update),
        _ => None,
    }
}

/// Runs the UI; a SIGINT, SIGTERM or SIGHUP ends it (the terminal restored) and is stored in
/// `stopped`.
fn run_screen(start: Start, load: Loader, stopped: &Arc<AtomicI32>) -> Result<()> {
    let (messages, inbox) = mpsc::channel::<Msg>();
    // Raw mode turns Ctrl-C into a key, but `kill` still sends signals: catch them, so that
    // the loop below ends and the terminal is given back before the process goes.
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    {
        let messages = messages.clone();
        let stopped = Arc::clone(stopped);
        std::thread::Builder::new().name("vecshift-signals".into()).spawn(move || {
            if let Some(signal) = signals.forever().next() {
                stopped.store(signal, Ordering::SeqCst);
                // Wakes the loop, which then sees `stopped`.
                let _ = messages.send(Msg::Tick);
            }
        })?;
    }
    let test_panic = test_panic();
    let mut pressed = false;
    let worker = {
        let messages = messages.clone();
        worker::spawn(load, move |response| {
            let _ = messages.send(Msg::Worker(response));
        })
    };
    let mut screen = Screen::enter()?;
    std::thread::Builder::new().name("vecshift-input".into()).spawn(move || {
        while let Ok(event) = event::read() {
            let msg = match event {
                Event::Key(key) => Msg::Key(key),
                Event::Mouse(mouse) => Msg::Mouse(mouse),
                Event::Resize(width, height) => Msg::Resize(width, height),
                _ => continue,
            };
            if messages.send(msg).is_err() {
                break;
            }
        }
    })?;
    let size = screen.terminal.size()?;
    let mut app = App::new(start, Rect::new(0, 0, size.width, size.height));
    let mut queue = VecDeque::new();
    loop {
        // After a panic on the worker thread the hook has already given the terminal back;
        // drawing then would scribble on the shell until the worker's last word arrives.
        if terminal::active() {
            screen.terminal.draw(|frame| {
                if pressed && test_panic == Some(TestPanic::Draw) {
                    panic!("test panic while drawing (VECSHIFT_TUI_TEST_PANIC=draw)");
                }
                app.render(frame)
            })?;
        }
        let first = if app.busy() {
            match inbox.recv_timeout(TICK) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => Msg::Tick,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match inbox.recv() {
                Ok(msg) => msg,
                Err(_) => break,
            }
        };
        // Take everything that is already waiting before drawing again, so a burst of
        // keys or replies costs one frame.
        queue.push_back(first);
        queue.extend(inbox.try_iter());
        while let Some(msg) = queue.pop_front() {
            if let Msg::Key(_) = msg {
                if test_panic == Some(TestPanic::Update) {
                    panic!("test panic while handling a key (VECSHIFT_TUI_TEST_PANIC=update)");
                }
                pressed = true;
            }
            for effect in app.update(msg) {
                match effect {
                    Effect::Send(request) => {
                        if worker.send(request).is_err() {
                            bail!("the encoding worker stopped unexpectedly");
                        }
                    }
                    Effect::ReadFile(path) => {
                        let result = sentences::read(&path).map_err(|e| format!("{e:#}"));
                        queue.push_back(Msg::FileRead { path, result });
                    }
                    Effect::Save(report, format) => {
                        let result = std::env::current_dir()
                            .map_err(anyhow::Error::from)
                            .and_then(|dir| report::save(&report, format, &dir))
                            .map_err(|e| format!("{e:#}"));
                        queue.push_back(Msg::Saved(result));
                    }
                }
            }
        }
        if app.should_quit() || stopped.load(Ordering::SeqCst) != 0 {
            break;
        }
    }
    drop(screen);
    match app.fatal() {
        Some(error) => Err(anyhow!("{error}")),
        None => Ok(()),
    }
}
