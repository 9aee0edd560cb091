//! `nicqual diff OLD.json NEW.json`: what changed between two run records (checks that
//! changed result, measurements that moved beyond a tolerance). Exit 1 when the new run is
//! a regression (a check got worse), 0 otherwise, 2 for unreadable or mismatched records.

use nicqual_report::{RunRecord, diff::diff, printable};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The earlier run record (written by --json).
    old: PathBuf,
    /// The later run record.
    new: PathBuf,
    /// Relative change of a measurement worth listing, in percent.
    #[arg(long, default_value_t = 10.0, value_parser = parse_percent)]
    tolerance: f64,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().trim_end_matches('%').parse().map_err(|_| format!("`{s}` is not a percentage"))?;
    if v.is_finite() && (0.0..=1e6).contains(&v) { Ok(v) } else { Err(format!("`{s}`: give 0..=1000000 %")) }
}

fn outcome(o: Option<nicqual_report::Outcome>) -> String {
    o.map_or("absent".into(), |o| o.as_str().to_uppercase())
}

pub fn run(a: Args) -> ExitCode {
    let load = |p: &PathBuf| RunRecord::load(p).map_err(|e| e.to_string());
    let (old, new) = match (load(&a.old), load(&a.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("nicqual: {e}");
            return ExitCode::from(2);
        }
    };
    if old.kind != new.kind {
        eprintln!("nicqual: cannot compare a {} record with a {} record", printable(&old.kind), printable(&new.kind));
        return ExitCode::from(2);
    }
    let d = diff(&old, &new, a.tolerance / 100.0);
    println!(
        "{} {} (seed {}) -> {} (seed {})",
        printable(&new.kind),
        printable(&new.device.spec),
        old.seed,
        new.verdict.as_str().to_uppercase(),
        new.seed
    );
    if d.results.is_empty() {
        println!("no check changed result");
    } else {
        let w = d.results.iter().map(|c| c.check.len()).max().unwrap_or(5).max(5);
        println!("{:<w$}  {:<6} -> {:<6}", "check", "old", "new");
        for c in &d.results {
            let mark = if c.is_regression() { "  REGRESSION" } else { "" };
            println!("{:<w$}  {:<6} -> {:<6}{mark}", printable(&c.check), outcome(c.old), outcome(c.new));
        }
    }
    for m in &d.measurements {
        println!(
            "{} {}: {} -> {} {} ({:+.1} %)",
            printable(&m.check),
            printable(&m.name),
            m.old,
            m.new,
            printable(&m.unit),
            m.change() * 100.0
        );
    }
    let regressions = d.regressions().count();
    println!(
        "{} check(s) changed result, {regressions} regression(s); {} measurement(s) moved more than {} %",
        d.results.len(),
        d.measurements.len(),
        a.tolerance
    );
    if regressions > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
