//! Ctrl-C for the long-running commands (`soak`, `bench`): the first one asks the run to
//! stop at the next safe point, which still reports and writes what was measured; a second
//! one ends the process at once (exit 130, as a shell reports SIGINT).

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first Ctrl-C.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Install the handler (once per process; later calls do nothing).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nnicqual: interrupted; stopping at the next safe point (Ctrl-C again to quit now)");
    });
}

/// Has Ctrl-C been pressed?
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}
