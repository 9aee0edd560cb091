//! What the Xen scenarios share: the four-part story they print, and the run record they
//! return (`kind: scenario:NAME`, checks with measurements, as `qualify` writes).

use nicqual_pci::{CheckReport, CheckResult};
use nicqual_qualify::record;
use nicqual_report as rep;
use std::io::Write;

/// The four parts of a scenario's account.
#[derive(Debug, Clone)]
pub struct Story {
    pub field: String,
    pub here: String,
    pub nicqual: String,
    pub change: String,
}

impl Story {
    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for (title, text) in [
            ("What the field saw", &self.field),
            ("What happened here", &self.here),
            ("What nicqual did", &self.nicqual),
            ("What to change", &self.change),
        ] {
            writeln!(out, "{title}:")?;
            for line in text.lines() {
                writeln!(out, "  {line}")?;
            }
            writeln!(out)?;
        }
        Ok(())
    }
}

/// A check that passes when `ok`.
pub fn check(name: &str, ok: bool, detail: String) -> CheckReport {
    CheckReport::new(name, if ok { CheckResult::Pass } else { CheckResult::Fail }, detail)
}

/// The check of a variant built to reproduce the field failure (the naive driver, the old
/// kernel, the field's configuration): failing as the field did is an expected failure
/// (`xfail`), which does not fail the run. If it does *not* fail, the model contradicts the
/// field report: that is reported as a failure of the run, saying so, never passed over.
pub fn expect_field_failure(mut c: CheckReport) -> CheckReport {
    match c.result {
        CheckResult::Fail => c.result = CheckResult::Xfail,
        CheckResult::Pass => {
            c.result = CheckResult::Fail;
            c.detail = format!("expected the field failure, but this run did not reproduce it: {}", c.detail);
        }
        CheckResult::Na | CheckResult::Error | CheckResult::Xfail => {}
    }
    c
}

/// Print the checks as a verdict table.
pub fn print_checks(out: &mut dyn Write, checks: &[CheckReport]) -> std::io::Result<()> {
    for c in checks {
        let (name, detail) = (rep::printable(&c.name), rep::printable(&c.detail));
        writeln!(out, "{name:<34} {:<5} {detail}", c.result.as_str().to_uppercase())?;
    }
    Ok(())
}

/// What the record says about the emulated platform a Xen scenario ran on.
pub struct Platform {
    pub backend: &'static str,
    pub spec: &'static str,
    pub device: &'static str,
    pub driver: &'static str,
}

/// The run record of a scenario on the emulated Xen platform.
pub fn record(
    name: &str,
    seed: u64,
    platform: &Platform,
    checks: &[CheckReport],
    duration_ns: u64,
    started: String,
    wall: std::time::Instant,
) -> rep::RunRecord {
    let checks: Vec<rep::Check> = checks.iter().map(record::check).collect();
    let summary = rep::Summary::of(&checks);
    let mut rec = rep::RunRecord {
        schema: rep::SCHEMA.to_string(),
        kind: format!("scenario:{name}"),
        tool: rep::Tool::this(),
        host: rep::Host::this(),
        command: String::new(),
        started_at: Some(started),
        backend: rep::BackendInfo {
            kind: "emulated".into(),
            name: platform.backend.into(),
            virtual_time: true,
            msix_table_access: false,
        },
        device: rep::Device {
            spec: platform.spec.into(),
            name: Some(platform.device.into()),
            driver: platform.driver.into(),
            ..Default::default()
        },
        seed,
        fault_plan: serde_json::Value::Null,
        verdict: summary.verdict(),
        summary,
        checks,
        duration_ns,
        wall_ns: wall.elapsed().as_nanos() as u64,
        replay: Some(format!("nicqual scenario run {name} --seed {seed}")),
        timelines: rep::Timelines::default(),
    };
    rec.settle();
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_variant_that_does_not_fail_fails_the_run() {
        let x = expect_field_failure(check("v", false, "ran out".into()));
        assert_eq!((x.result, x.detail.as_str()), (CheckResult::Xfail, "ran out"));
        let p = expect_field_failure(check("v", true, "no exhaustion".into()));
        assert_eq!(p.result, CheckResult::Fail);
        assert!(p.detail.starts_with("expected the field failure, but this run did not reproduce it"), "{}", p.detail);
        let n = expect_field_failure(CheckReport::new("v", CheckResult::Na, "n/a"));
        assert_eq!(n.result, CheckResult::Na);
    }
}
