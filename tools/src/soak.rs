//! `nicqual soak`: traffic between two emulated 82574Ls under a seeded random fault plan
//! (wire drop/corruption/truncation, dropped and lost interrupt vectors, surprise removal at
//! the end); prints where every frame went. Exit 1 when any frame is unaccounted for, was
//! delivered damaged or twice, or the removal went unnoticed. Logic: nicqual_reliability::soak.

use nicqual_reliability::soak::{SoakConfig, parse_duration, run as soak};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// How long to send (wall clock): 30s, 10m, 1h, 500ms.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: std::time::Duration,
    /// Seed of the fault plan and the traffic (a failing run prints it; rerun with it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many rounds even if time is left (deterministic length).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: Option<u64>,
    /// Print the counts as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the frames sent on the cable to FILE (pcap; opens in tshark/Wireshark).
    #[arg(long, value_name = "FILE")]
    pcap: Option<std::path::PathBuf>,
}

pub fn run(a: Args) -> ExitCode {
    crate::interrupt::install();
    let cfg = SoakConfig {
        seed: a.seed,
        duration: a.duration,
        max_rounds: a.rounds,
        stop: Some(&crate::interrupt::INTERRUPTED),
        pcap: a.pcap.clone(),
    };
    match soak(&cfg) {
        Ok(rep) => {
            if crate::interrupt::interrupted() {
                eprintln!("soak: interrupted after {} rounds; the counts below cover what ran", rep.rounds);
            }
            if a.json {
                match serde_json::to_string_pretty(&rep) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("soak: JSON: {e}"),
                }
            } else {
                println!("{rep}");
            }
            if rep.ok() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "soak FAILED with seed {} (rerun: nicqual soak --seed {} --rounds {})",
                    rep.seed, rep.seed, rep.rounds
                );
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("soak error: {e}");
            ExitCode::from(2)
        }
    }
}
