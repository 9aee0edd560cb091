//! `nicqual scenario`: the field failures as runnable, seeded scenarios.
//!
//! One file per scenario; each exposes `NAME`, `SUMMARY` and `run(seed) -> Report`, and has
//! one line in [`all`]. A report carries the story (what the field saw, what happened here,
//! what nicqual did, what to change), checks with their numbers, scenario-specific data and
//! optional timelines. It is printed as text and, with `--json FILE`, written as a run
//! record (crate `nicqual-report`, schema `nicqual.run/2`, `kind: scenario:<name>`, the same
//! `checks` array as `qualify`, `timelines` for the plots) with two extra keys, `story` and
//! `result`; `nicqual report FILE --html` renders it like any run.

pub mod bnx2x_swiotlb_jumbo;
pub mod netfront_resume;
pub mod traffic;

use crate::record;
use nicqual_driver::{CheckReport, CheckResult};
use nicqual_report as rep;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Seed used when none is given.
pub const DEFAULT_SEED: u64 = 1;

/// The four parts of a scenario's story.
#[derive(Debug, Clone, Serialize)]
pub struct Story {
    pub field: String,
    pub here: String,
    pub nicqual: String,
    pub change: String,
}

/// What a scenario run produced.
#[derive(Debug)]
pub struct Report {
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
    /// Timelines for the report's plots (e.g. bounce-pool occupancy).
    pub timelines: rep::Timelines,
    /// What was driven (defaults: an emulated model named after the scenario).
    pub backend: rep::BackendInfo,
    pub device: rep::Device,
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
            kind: format!("scenario:{scenario}"),
            scenario,
            seed,
            verdict: if pass { "pass" } else { "fail" },
            story,
            checks,
            result,
            duration_ns,
            replay: format!("nicqual scenario run {scenario} --seed {seed}"),
            timelines: rep::Timelines::default(),
            backend: rep::BackendInfo {
                kind: "emulated".into(),
                name: format!("scenario:{scenario}"),
                virtual_time: true,
                msix_table_access: false,
            },
            device: rep::Device { spec: format!("scenario:{scenario}"), ..Default::default() },
        }
    }

    pub fn with_timelines(mut self, t: rep::Timelines) -> Report {
        self.timelines = t;
        self
    }

    pub fn with_device(mut self, backend: rep::BackendInfo, device: rep::Device) -> Report {
        self.backend = backend;
        self.device = device;
        self
    }

    /// The run record (`command`, `started_at` and `wall_ns` are the caller's to fill).
    pub fn to_record(&self) -> rep::RunRecord {
        let checks: Vec<rep::Check> = self.checks.iter().map(record::check).collect();
        let summary = rep::Summary::of(&checks);
        rep::RunRecord {
            schema: rep::SCHEMA.to_string(),
            kind: self.kind.clone(),
            tool: rep::Tool { name: "nicqual".into(), version: env!("CARGO_PKG_VERSION").into() },
            host: rep::Host::this(),
            command: String::new(),
            started_at: None,
            backend: self.backend.clone(),
            device: self.device.clone(),
            seed: self.seed,
            fault_plan: serde_json::Value::Null,
            verdict: summary.verdict(),
            summary,
            checks,
            duration_ns: self.duration_ns,
            wall_ns: 0,
            replay: Some(self.replay.clone()),
            timelines: self.timelines.clone(),
        }
    }

    /// The JSON written by `--json`: the run record plus `story` and `result`.
    pub fn to_json(&self, rec: &rep::RunRecord) -> String {
        let mut v = serde_json::to_value(rec).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("story".into(), serde_json::to_value(&self.story).unwrap_or_default());
            o.insert("result".into(), self.result.clone());
        }
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
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
    vec![
        Scenario { name: netfront_resume::NAME, summary: netfront_resume::SUMMARY, run: netfront_resume::run },
        Scenario {
            name: bnx2x_swiotlb_jumbo::NAME,
            summary: bnx2x_swiotlb_jumbo::SUMMARY,
            run: bnx2x_swiotlb_jumbo::run,
        },
    ]
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
            let started = rep::now_rfc3339();
            let wall = std::time::Instant::now();
            let report = (s.run)(a.seed);
            print_report(&report, quiet);
            if let Some(p) = &a.json {
                let mut rec = report.to_record();
                rec.command = std::env::args().collect::<Vec<_>>().join(" ");
                rec.started_at = Some(started);
                rec.wall_ns = wall.elapsed().as_nanos() as u64;
                if let Err(e) = std::fs::write(p, report.to_json(&rec)) {
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
