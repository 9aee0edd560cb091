//! `nicqual scenario`: the field failures as runnable, seeded scenarios.
//!
//! One file per scenario; each exposes `NAME`, `SUMMARY` and `run(seed) -> Report`. A
//! report carries the story (what the field saw, what happened here, what nicqual did,
//! what to change), checks with their numbers, and scenario-specific data, printed as text
//! and written as JSON with `--json`.

pub mod netfront_resume;
pub mod traffic;

use nicqual_driver::{CheckReport, CheckResult};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Seed used when none is given.
pub const DEFAULT_SEED: u64 = 1;

/// Schema of the JSON a scenario writes.
pub const SCHEMA: &str = "nicqual.scenario/1";

/// The four parts of a scenario's story.
#[derive(Debug, Clone, Serialize)]
pub struct Story {
    pub field: String,
    pub here: String,
    pub nicqual: String,
    pub change: String,
}

/// What a scenario run produced.
#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    /// `scenario:<name>`.
    pub kind: String,
    pub scenario: &'static str,
    pub seed: u64,
    pub verdict: &'static str,
    pub story: Story,
    pub checks: Vec<CheckReport>,
    /// Scenario-specific numbers (stable keys; see each scenario's docs).
    pub result: serde_json::Value,
    /// Virtual time the scenario covered, ns.
    pub duration_ns: u64,
    pub replay: String,
}

impl Report {
    pub fn new(
        scenario: &'static str,
        seed: u64,
        story: Story,
        checks: Vec<CheckReport>,
        result: serde_json::Value,
        duration_ns: u64,
    ) -> Report {
        let pass = checks.iter().all(|c| matches!(c.result, CheckResult::Pass | CheckResult::Na));
        Report {
            schema: SCHEMA,
            kind: format!("scenario:{scenario}"),
            scenario,
            seed,
            verdict: if pass { "pass" } else { "fail" },
            story,
            checks,
            result,
            duration_ns,
            replay: format!("nicqual scenario run {scenario} --seed {seed}"),
        }
    }

    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }
}

/// A registered scenario.
pub struct Scenario {
    pub name: &'static str,
    pub summary: &'static str,
    pub run: fn(u64) -> Report,
}

/// Every scenario, in the order `scenario list` prints them.
pub fn all() -> Vec<Scenario> {
    vec![Scenario { name: netfront_resume::NAME, summary: netfront_resume::SUMMARY, run: netfront_resume::run }]
}

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// List the scenarios.
    List,
    /// Run one scenario.
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Scenario name (`nicqual scenario list`).
    pub name: String,
    /// Seed of the scenario's traffic and host layout.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Write the result (JSON) here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn main(cmd: Cmd, quiet: bool) -> ExitCode {
    match cmd {
        Cmd::List => {
            for s in all() {
                println!("{:<22} {}", s.name, s.summary);
            }
            ExitCode::SUCCESS
        }
        Cmd::Run(a) => {
            let Some(s) = all().into_iter().find(|s| s.name == a.name) else {
                let names: Vec<&str> = all().iter().map(|s| s.name).collect();
                eprintln!("nicqual: no scenario {:?}; try one of: {}", a.name, names.join(", "));
                return ExitCode::from(2);
            };
            let report = (s.run)(a.seed);
            print_report(&report, quiet);
            if let Some(p) = &a.json {
                let text = serde_json::to_string_pretty(&report).expect("report serialises");
                if let Err(e) = std::fs::write(p, text + "\n") {
                    eprintln!("nicqual: writing {}: {e}", p.display());
                    return ExitCode::from(2);
                }
            }
            if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
    }
}

fn print_report(r: &Report, quiet: bool) {
    if !quiet {
        println!("scenario {} (seed {})", r.scenario, r.seed);
        println!();
        for (title, text) in [
            ("What the field saw", &r.story.field),
            ("What happened here", &r.story.here),
            ("What nicqual did", &r.story.nicqual),
            ("What to change", &r.story.change),
        ] {
            println!("{title}:");
            for line in text.lines() {
                println!("  {line}");
            }
            println!();
        }
    }
    for c in &r.checks {
        println!("{:<28} {:<5} {}", c.name, c.result.as_str().to_uppercase(), c.detail);
    }
    println!("{}: scenario {} seed {}", r.verdict.to_uppercase(), r.scenario, r.seed);
    if !r.passed() {
        println!("replay: {}", r.replay);
    }
}

/// A check that passes when `ok`.
pub fn check(name: &str, ok: bool, detail: String) -> CheckReport {
    CheckReport::new(name, if ok { CheckResult::Pass } else { CheckResult::Fail }, detail)
}
