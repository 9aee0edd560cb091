//! `nicqual scenario`: the field failures as runnable, seeded scenarios.
//!
//! The scenarios themselves live in `nicqual-scenarios`; this module parses arguments.
//! `scenario run NAME [--seed N] [--json FILE]` prints the scenario's account and, with
//! `--json`, writes a run record (`kind: scenario:NAME`, the same `checks` array as
//! `qualify`, plus timelines).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

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
        #[arg(long, default_value_t = nicqual_scenarios::DEFAULT_SEED)]
        seed: u64,
        /// Write the run record (JSON) to FILE (`-` for stdout).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write the frames on the scenario's wire to FILE (pcap). Refused, with the reason,
        /// for a scenario whose model has no wire.
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
    },
}

pub fn run(a: Args) -> ExitCode {
    match a.cmd {
        Cmd::List => {
            for s in nicqual_scenarios::SCENARIOS {
                println!("{:<24} {}", s.name, s.summary);
            }
            ExitCode::SUCCESS
        }
        Cmd::Run { name, seed, json, pcap } => {
            let Some(s) = nicqual_scenarios::find(&name) else {
                let names: Vec<&str> = nicqual_scenarios::SCENARIOS.iter().map(|s| s.name).collect();
                eprintln!("nicqual: no scenario {name:?} (have: {})", names.join(", "));
                return ExitCode::from(2);
            };
            // No scenario records a wire yet: an asked-for capture is refused with the reason,
            // never run without it.
            if let Some(p) = &pcap {
                let why = s.no_wire.unwrap_or("this scenario does not record its wire");
                eprintln!("nicqual: --pcap {}: scenario {name} has no wire to capture: {why}", p.display());
                return ExitCode::from(2);
            }
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
            // Variants that reproduce the field failure by design are expected failures
            // (xfail) and do not count; any other failed check is nicqual's, and fails.
            if rec.verdict == nicqual_report::Verdict::Pass { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
    }
}
