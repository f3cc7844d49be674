//! The `vecshift` command line.

mod cli;
mod tui;

use std::process::ExitCode;

/// Keeps memory that was freed for the next allocation rather than returning it to the system.
///
/// Each layer of a batch allocates result buffers of a few MB. glibc served those above its
/// mmap threshold with fresh mappings, and gave memory at the top of the heap back once freed,
/// so every buffer's pages were faulted in and zeroed by the kernel again: about 6% of a
/// batched encoding's time. Allocations up to 64 MB now come from the heap, which keeps up to
/// 256 MB freed; the peak memory is unchanged.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's thresholds; called before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

fn main() -> ExitCode {
    // Like other Unix tools, stop quietly when the reader of our output goes away
    // (`vecshift compare --json | head`); Rust would otherwise report or panic on EPIPE.
    #[cfg(unix)]
    // SAFETY: called first, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // candle works out its thread count again at every matrix product, reading /proc/cpuinfo
    // each time (~30 reads per encoded sentence, a tenth of a short sentence's time) unless
    // RAYON_NUM_THREADS is set: set it once to the count it would find.
    if std::env::var("RAYON_NUM_THREADS").ok().and_then(|n| n.parse::<usize>().ok()).is_none_or(|n| n == 0) {
        let threads = candle_core::utils::get_num_threads();
        // SAFETY: called before any other thread exists.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
    keep_freed_memory();
    cli::logger::install();
    // A panic is a bug, but the user still gets one line rather than a backtrace dump.
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload().downcast_ref::<String>().map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error{place}: {message} (please report this)");
    }));
    let args = cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, outermost first, like anyhow's `{:#}`, but without
/// what would break the line or repeat it: a cause whose text its parent already ends with
/// (an I/O error a library error quotes) is left out, and of a message that runs over several
/// lines (candle appends a captured backtrace under `RUST_BACKTRACE=1`) only the first is kept.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        let text = text.lines().next().unwrap_or_default().trim_end();
        if text.is_empty() || line.ends_with(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line
}
