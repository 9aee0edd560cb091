//! `nicqual scenario`: the field failures as runnable, seeded scenarios.
//!
//! One file per scenario; each exports a [`Scenario`] and is listed in [`SCENARIOS`].
//! `scenario run NAME [--seed N] [--json FILE]` prints the scenario's account and, with
//! `--json`, writes a run record (`kind: scenario:NAME`, the same `checks` array as
//! `qualify`, plus timelines).

pub mod bnx2x_swiotlb_jumbo;
pub mod dom0_memory_squeeze;
pub mod enic_jumbo;
pub mod netfront_resume;
pub mod story;
pub mod traffic;

use nicqual_report as rep;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Default traffic seed.
pub const DEFAULT_SEED: u64 = 1;

/// A runnable scenario.
pub struct Scenario {
    pub name: &'static str,
    /// One line for `scenario list`.
    pub summary: &'static str,
    /// Run with `seed`, writing the human account to `out`; returns the run record.
    pub run: fn(seed: u64, out: &mut dyn Write) -> std::io::Result<rep::RunRecord>,
}

/// Every scenario, in `scenario list` order.
pub const SCENARIOS: &[&Scenario] = &[
    &netfront_resume::SCENARIO,
    &dom0_memory_squeeze::SCENARIO,
    &bnx2x_swiotlb_jumbo::SCENARIO,
    &enic_jumbo::SCENARIO,
];

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// List the scenarios.
    List,
    /// Run one scenario.
    Run {
        name: String,
        /// Traffic / fault seed (printed; the same seed replays the same run).
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
        /// Write the run record (JSON) to FILE (`-` for stdout).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().copied().find(|s| s.name == name)
}

pub fn run(a: Args) -> ExitCode {
    match a.cmd {
        Cmd::List => {
            for s in SCENARIOS {
                println!("{:<24} {}", s.name, s.summary);
            }
            ExitCode::SUCCESS
        }
        Cmd::Run { name, seed, json } => {
            let Some(s) = find(&name) else {
                let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
                eprintln!("nicqual: no scenario {name:?} (have: {})", names.join(", "));
                return ExitCode::from(2);
            };
            let to_stdout = json.as_deref().is_some_and(|p| p.as_os_str() == "-");
            let result =
                if to_stdout { (s.run)(seed, &mut std::io::stderr()) } else { (s.run)(seed, &mut std::io::stdout()) };
            let mut rec = match result {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("nicqual: scenario {name}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            rec.command = std::env::args().collect::<Vec<_>>().join(" ");
            if let Some(path) = json {
                let text = rec.to_json();
                let written =
                    if to_stdout { std::io::stdout().write_all(text.as_bytes()) } else { std::fs::write(&path, text) };
                if let Err(e) = written {
                    eprintln!("nicqual: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
    }
}
