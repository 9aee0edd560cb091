//! KTAP version 1, laid out as kselftest prints it: header, plan, `# ` diagnostics before
//! each failing result, one result line per check, `# SKIP` for checks that do not apply,
//! and the kselftest totals line.

use crate::record::{Outcome, RunRecord};
use std::fmt::Write;

/// KTAP has one line per result: keep a text on one line and free of `#`, which would
/// start a directive. Every character that could end or break a line for some reader
/// (C0/C1 controls including VT, FF and NEL, U+2028, U+2029) becomes a space.
pub fn one_line(s: &str) -> String {
    crate::printable(s).replace('#', "no.")
}

/// Render `rec` as KTAP v1.
pub fn render(rec: &RunRecord) -> String {
    let mut out = String::new();
    let s = &rec.summary;
    let _ = writeln!(out, "KTAP version 1");
    let _ = writeln!(
        out,
        "# nicqual {} {} on {} (seed {})",
        one_line(&rec.kind),
        one_line(&rec.device.spec),
        rec.backend.kind,
        rec.seed
    );
    let _ = writeln!(out, "1..{}", rec.checks.len());
    for (i, c) in rec.checks.iter().enumerate() {
        let n = i + 1;
        let name = one_line(&c.name);
        match c.result {
            Outcome::Pass => {
                let _ = writeln!(out, "ok {n} {name}");
            }
            Outcome::Na => {
                let _ = writeln!(out, "ok {n} {name} # SKIP {}", one_line(&c.detail));
            }
            Outcome::Xfail => {
                let _ = writeln!(out, "ok {n} {name} # XFAIL {}", one_line(&c.detail));
            }
            Outcome::Fail | Outcome::Error => {
                let _ = writeln!(out, "# {name}: {}", one_line(&c.detail));
                for sub in &c.subjects {
                    let _ = writeln!(out, "# {name}: involves {}", one_line(&sub.to_string()));
                }
                if let Some(a) = &c.action {
                    let _ = writeln!(out, "# {name}: action: {}", one_line(a));
                }
                if c.result == Outcome::Error {
                    let _ = writeln!(out, "not ok {n} {name} # ERROR could not be carried out");
                } else {
                    let _ = writeln!(out, "not ok {n} {name}");
                }
            }
        }
    }
    if let Some(r) = &rec.replay {
        let _ = writeln!(out, "# replay: {}", one_line(r));
    }
    let _ = writeln!(
        out,
        "# Totals: pass:{} fail:{} xfail:{} xpass:0 skip:{} error:{}",
        s.pass, s.fail, s.xfail, s.na, s.error
    );
    out
}
