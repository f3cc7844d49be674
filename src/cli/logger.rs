//! Warnings from the library go to stderr as plain `warning: ...` lines.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            let label = match record.level() {
                Level::Error => "error",
                Level::Warn => "warning",
                _ => "note",
            };
            eprintln!("{label}: {}", record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger; `VECSHIFT_LOG=info` also shows notes such as downloads.
pub fn install() {
    let level = match std::env::var("VECSHIFT_LOG").as_deref() {
        Ok("error") => LevelFilter::Error,
        Ok("info") => LevelFilter::Info,
        Ok("debug") => LevelFilter::Debug,
        Ok("off") => LevelFilter::Off,
        _ => LevelFilter::Info,
    };
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(level);
    }
}
