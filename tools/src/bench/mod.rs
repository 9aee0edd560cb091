//! `nicqual bench`: measurements, not tests (no pass/fail, nothing here runs in `make test`).
//!
//! Each mode lives in its own file; this module holds the shared arguments and dispatch.
//! Modes: loopback throughput of the emulated 82574L datapath (the default, `loopback.rs`);
//! per-register-operation cost of each backend (`--backend-latency`, `backend_latency.rs`);
//! SWIOTLB map+unmap cost by pool occupancy (`--swiotlb`, `swiotlb.rs`).

mod backend_latency;
mod bnx2x;
mod loopback;
mod swiotlb;

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Frame sizes for the loopback throughput mode, in bytes the driver queues (the MAC
    /// appends the 4-byte FCS); comma-separated.
    #[arg(long = "frame-size", value_delimiter = ',', default_values_t = [64usize, 1514, 9018])]
    pub frame_sizes: Vec<usize>,
    /// NICs whose loopback to measure, comma-separated or repeated: `i82574l` (the
    /// emulated 82574L in MAC loopback), `bnx2x` (the emulated BCM57810 in MAC loopback),
    /// `enic` (the emulated VIC vNIC, whose adapter loops WQ 0 back to RQ 0). Rows of every NIC go to the same table and JSON.
    #[arg(long = "nic", value_delimiter = ',', default_values_t = ["i82574l".to_string()])]
    pub nics: Vec<String>,
    /// Packets per rx_batch / tx_batch call.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Seconds measured per frame size (after a short warm-up); more than 0, at most 3600.
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
    pub seconds: f64,
    /// Write the results as JSON (`-` = stdout); loopback, --backend-latency and --swiotlb.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Cost of one register read, register write and config read on each backend
    /// (emulated, serve-qtest, QEMU over qtest); `--seconds` is split across the operations.
    #[arg(long)]
    pub backend_latency: bool,
    /// SWIOTLB map+unmap cost at 10/50/90 % pool occupancy.
    #[arg(long)]
    pub swiotlb: bool,
    /// With --swiotlb: fewer iterations (a smoke run, not a measurement).
    #[arg(long)]
    pub quick: bool,
    /// Loopback mode: also account the time spent inside the emulated device (two clock
    /// reads per register access) and report the emulation's share and the packet rate it
    /// alone sustains, apart from the driver's work. Loopback mode only (refused with
    /// --backend-latency and --swiotlb).
    #[arg(long, conflicts_with_all = ["backend_latency", "swiotlb"])]
    pub split: bool,
}

/// Longest measurement `--seconds` accepts per frame size or operation.
const MAX_SECONDS: f64 = 3600.0;

/// `--seconds`: a finite number of seconds in (0, [`MAX_SECONDS`]] (`inf`, `NaN` and
/// `1e300` are usage errors, not a run for ever or a panic converting them to a duration).
fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= MAX_SECONDS {
        Ok(v)
    } else {
        Err(format!("`{s}`: give a number of seconds above 0 and at most {MAX_SECONDS}"))
    }
}

pub fn run(a: Args) -> ExitCode {
    // Ctrl-C ends the current measurement early and skips the rest; what was measured is
    // still printed and written.
    crate::interrupt::install();
    if a.backend_latency {
        return backend_latency::run(&a);
    }
    if a.swiotlb {
        return swiotlb::run(a.quick, a.json.as_deref());
    }
    loopback::run(&a)
}

/// Write a bench record as pretty JSON to `path` (`-` = stdout).
pub(crate) fn write_json(path: &std::path::Path, v: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())? + "\n";
    if path.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
