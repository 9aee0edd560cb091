//! Progress for long runs: an indicatif bar on a terminal, nothing otherwise.
//!
//! Shown only when standard error is a terminal and `--quiet` was not given; in CI logs
//! and pipes it draws nothing. Logs go through `tracing` (`RUST_LOG=nicqual=info`).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// The bar being drawn, if any: log lines are written "under" it (see [`LogWriter`]).
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn active() -> Option<ProgressBar> {
    ACTIVE.lock().ok().and_then(|g| g.clone())
}

fn set_active(bar: Option<ProgressBar>) {
    if let Ok(mut g) = ACTIVE.lock() {
        *g = bar;
    }
}

/// `tracing` writer for standard error that lifts the progress bar while a log line is
/// written, so lines and bar do not mix.
pub struct LogWriter;

pub struct LogLine;

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match active() {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine
    }
}

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `len` steps; hidden unless stderr is a terminal and not `quiet`.
    pub fn new(len: u64, what: &str, quiet: bool) -> Progress {
        let visible = !quiet && std::io::stderr().is_terminal();
        Progress::with_target(len, what, visible)
    }

    fn with_target(len: u64, what: &str, visible: bool) -> Progress {
        let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(what.to_string());
        if visible {
            set_active(Some(bar.clone()));
        }
        Progress { bar }
    }

    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Start step `msg`.
    pub fn step(&self, msg: &str) {
        self.bar.set_message(msg.to_string());
        tracing::debug!(target: "nicqual::progress", "{msg}");
    }

    /// Step done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Remove the bar (the result table follows). Dropping it does the same.
    pub fn finish(self) {}
}

impl Drop for Progress {
    fn drop(&mut self) {
        set_active(None);
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_unless_asked_for_a_terminal() {
        // Test processes have no terminal on stderr in CI; quiet always hides.
        assert!(!Progress::new(3, "x", true).is_visible());
        assert!(!Progress::with_target(3, "x", false).is_visible());
        let p = Progress::with_target(3, "x", true);
        p.step("a");
        p.inc();
        p.finish();
    }
}
