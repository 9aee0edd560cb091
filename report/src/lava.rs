//! LAVA test cases: a POSIX shell script of `lava-test-case` calls, one per check and one
//! per measurement, for a LAVA test shell to source (lava/nicqual-qualify.yaml,
//! docs/LAB.md). The script is the whole interface: nothing in it comes from the record
//! unsanitised, so a stored record (`nicqual report RUN.json --lava -`) cannot inject a
//! command.
//!
//! * Case names: LAVA's dispatcher splits a result signal on whitespace and each field on
//!   `=` (lava_dispatcher/actions/test/shell.py, `handle_testcase`), and names its test
//!   definitions with `[-_a-zA-Z0-9.]` (lava_common/schemas/test/definition.py); case names
//!   keep to that set. A name is mapped by [`case_name`]
//!   (`:` → `.`, `[` → `-`, `]` dropped, anything else outside that set → `_`, at most
//!   [`MAX_NAME`] characters). Two checks that map to the same name are told apart by a
//!   `-2`, `-3`... suffix in run order.
//! * Results: pass → `pass`, na → `skip`, fail and error → `fail` (an error leaves no verdict
//!   on the device, and the run did not pass), xfail → `pass` (a scenario variant failing as
//!   the field did is what it is for).
//! * Measurements: each becomes its own case `CHECK.MEASUREMENT` carrying the check's result,
//!   `--measurement VALUE --units UNIT`; a value that is not finite is left out (a comment
//!   says so), as LAVA stores decimals.
//! * The run: a last case `nicqual-verdict`, pass only when the run's verdict is pass.

use crate::record::{Outcome, RunRecord};
use std::collections::BTreeSet;
use std::fmt::Write;

/// Longest case name written (lava-server's `TestCase.name` is documented as at most 100
/// characters: lava_results_app/models.py).
pub const MAX_NAME: usize = 100;
/// The case that carries the run's verdict.
pub const VERDICT_CASE: &str = "nicqual-verdict";

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// The LAVA case name of a check name (before de-duplication): `vector[TxQ0]` →
/// `vector-TxQ0`, `q2:rss-spread` → `q2.rss-spread`, `loopback[60]` → `loopback-60`.
pub fn case_name(check: &str) -> String {
    let mut s: String = check
        .chars()
        .filter_map(|c| match c {
            ':' => Some('.'),
            '[' => Some('-'),
            ']' => None,
            c if allowed(c) => Some(c),
            _ => Some('_'),
        })
        .collect();
    if s.is_empty() {
        s.push_str("check");
    }
    s.chars().take(MAX_NAME).collect()
}

/// A unit as LAVA shows it: the characters of [`case_name`] plus `%` and `/`.
fn unit(u: &str) -> String {
    u.chars().filter(|c| allowed(*c) || matches!(c, '%' | '/')).take(MAX_NAME).collect()
}

/// The LAVA result of a check's outcome.
pub fn result(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass | Outcome::Xfail => "pass",
        Outcome::Na => "skip",
        Outcome::Fail | Outcome::Error => "fail",
    }
}

/// Case names already given out; a clash gets the first free `-N` suffix.
#[derive(Default)]
struct Names(BTreeSet<String>);

impl Names {
    fn unique(&mut self, base: String) -> String {
        let mut name = base.clone();
        let mut n = 2u64;
        while self.0.contains(&name) {
            let suffix = format!("-{n}");
            let keep = MAX_NAME.saturating_sub(suffix.len());
            name = format!("{}{suffix}", base.chars().take(keep).collect::<String>());
            n += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

/// The LAVA case names of `checks` in run order, as [`render`] gives them out (clashes
/// told apart by suffix): what a job reports for a device, before it runs.
pub fn case_names<'a>(checks: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names = Names::default();
    names.0.insert(VERDICT_CASE.to_string());
    checks.into_iter().map(|c| names.unique(case_name(c))).collect()
}

/// Render `rec` as the script of `lava-test-case` calls.
pub fn render(rec: &RunRecord) -> String {
    let mut out = String::new();
    let one = crate::ktap::one_line;
    let _ = writeln!(out, "# nicqual {} {}: LAVA test cases (docs/LAB.md)", one(&rec.kind), one(&rec.device.spec));
    let mut names = Names::default();
    names.0.insert(VERDICT_CASE.to_string());
    for c in &rec.checks {
        let name = names.unique(case_name(&c.name));
        let res = result(c.result);
        let _ = writeln!(out, "# {}: {}", one(&c.name), one(&c.detail));
        let _ = writeln!(out, "lava-test-case {name} --result {res}");
        for m in &c.measurements {
            let mname = names.unique(case_name(&format!("{name}.{}", m.name)));
            if !m.value.is_finite() {
                let _ = writeln!(out, "# {mname}: value {} left out (not a finite number)", m.value);
                continue;
            }
            let u = unit(&m.unit);
            let units = if u.is_empty() { String::new() } else { format!(" --units {u}") };
            let _ = writeln!(out, "lava-test-case {mname} --result {res} --measurement {}{units}", m.value);
        }
    }
    let verdict = if rec.verdict == crate::Verdict::Pass { "pass" } else { "fail" };
    let _ = writeln!(out, "# verdict {}: {}", rec.verdict.as_str(), rec.summary.total());
    let _ = writeln!(out, "lava-test-case {VERDICT_CASE} --result {verdict}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Check, test_record as rec};

    #[test]
    fn names_map_to_lavas_character_set() {
        assert_eq!(case_name("vector[TxQ0]"), "vector-TxQ0");
        assert_eq!(case_name("q2:vector[RxQ1]"), "q2.vector-RxQ1");
        assert_eq!(case_name("loopback[9018]"), "loopback-9018");
        assert_eq!(case_name("wire[socket]"), "wire-socket");
        assert_eq!(case_name("a b=c;$(x)"), "a_b_c___x_");
        assert_eq!(case_name(""), "check");
        assert_eq!(case_name(&"x".repeat(300)).len(), MAX_NAME);
        for n in ["vector[TxQ0]", "é\n`rm -rf`", "a'b\"c"] {
            assert!(case_name(n).chars().all(allowed), "{n}");
        }
    }

    #[test]
    fn one_case_per_check_and_measurement_then_the_verdict() {
        let r = rec(vec![
            Check::new("vector[TxQ0]", Outcome::Fail, "lost\nrm -rf /").measure("latency_max", 50.0, "us"),
            Check::new("vector-TxQ0", Outcome::Pass, ""),
            Check::new("msix-table[0]", Outcome::Na, "kernel owns the table"),
            Check::new("x", Outcome::Error, "").measure("nan", f64::NAN, "us").measure("rate", 2.5, "% $x"),
        ]);
        let s = render(&r);
        let calls: Vec<&str> = s.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            calls,
            [
                "lava-test-case vector-TxQ0 --result fail",
                "lava-test-case vector-TxQ0.latency_max --result fail --measurement 50 --units us",
                "lava-test-case vector-TxQ0-2 --result pass",
                "lava-test-case msix-table-0 --result skip",
                "lava-test-case x --result fail",
                "lava-test-case x.rate --result fail --measurement 2.5 --units %x",
                "lava-test-case nicqual-verdict --result fail",
            ]
        );
        // A detail's line break stays inside its comment.
        assert!(s.lines().all(|l| l.starts_with('#') || l.starts_with("lava-test-case ")), "{s}");
    }

    #[test]
    fn a_check_named_like_the_verdict_case_is_renamed() {
        let s = render(&rec(vec![Check::new("nicqual-verdict", Outcome::Pass, "")]));
        assert!(s.contains("lava-test-case nicqual-verdict-2 --result pass"), "{s}");
        assert!(s.ends_with("lava-test-case nicqual-verdict --result pass\n"), "{s}");
        assert_eq!(case_names(["nicqual-verdict", "a[1]", "a-1"]), ["nicqual-verdict-2", "a-1", "a-1-2"]);
    }
}
