//! The terminal UI (`vecshift`, `vecshift tui`): one word's BERT vectors shifting across
//! sentences and layers beside its fixed static vector.
//!
//! The Elm Architecture: [`app::App`] is the state, [`app::App::update`] the only place it
//! changes and `App::render` (in `ui`) draws it. The models live on a worker thread
//! ([`worker`]) so the screen never waits for them; terminal events and worker replies
//! reach the loop below through one channel.

mod analysis;
// The sentence-file reader is shared with `compare`; the UI reaches it under its old name.
pub(crate) use crate::cli::sentences;
pub mod app;
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
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use crossterm::event::{self, Event};
use ratatui::layout::Rect;

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
    let result = run_screen(start, load);
    log::set_max_level(log_level);
    result
}

fn run_screen(start: Start, load: Loader) -> Result<()> {
    let (messages, inbox) = mpsc::channel::<Msg>();
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
            screen.terminal.draw(|frame| app.render(frame))?;
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
        if app.should_quit() {
            break;
        }
    }
    drop(screen);
    match app.fatal() {
        Some(error) => Err(anyhow!("{error}")),
        None => Ok(()),
    }
}
