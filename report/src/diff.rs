//! Comparing two run records of the same kind (`nicqual diff OLD.json NEW.json`): which
//! checks changed result, which measurements moved beyond a tolerance, and whether the new
//! run is a regression (a check that got worse).

use crate::record::{Outcome, RunRecord};
use std::collections::HashMap;

/// How one check's result changed between the runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultChange {
    pub check: String,
    /// `None`: the check is not in that run.
    pub old: Option<Outcome>,
    pub new: Option<Outcome>,
}

impl ResultChange {
    /// Worse: a check that passed (or did not apply, or was expected to fail) now fails or
    /// errors, or a check that passed is gone, or a new check fails.
    pub fn is_regression(&self) -> bool {
        let bad = |o: Option<Outcome>| o.is_some_and(Outcome::is_bad);
        match (self.old, self.new) {
            (old, new) if bad(new) => !bad(old),
            (Some(Outcome::Pass), None) => true,
            _ => false,
        }
    }
}

/// A measurement that moved by more than the tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved {
    pub check: String,
    pub name: String,
    pub unit: String,
    pub old: f64,
    pub new: f64,
}

impl Moved {
    /// Relative change, `new/old - 1` (infinite when `old` is 0 and `new` is not).
    pub fn change(&self) -> f64 {
        if self.old == 0.0 { if self.new == 0.0 { 0.0 } else { f64::INFINITY } } else { self.new / self.old - 1.0 }
    }
}

/// What changed between two runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diff {
    pub results: Vec<ResultChange>,
    pub measurements: Vec<Moved>,
}

impl Diff {
    pub fn regressions(&self) -> impl Iterator<Item = &ResultChange> {
        self.results.iter().filter(|c| c.is_regression())
    }
}

/// Compare `old` with `new`: every check whose result differs (in `new`'s order, then
/// checks only `old` has), and every measurement present in both whose relative change
/// exceeds `tolerance` (0.10 = 10 %). Linear in the records' size.
pub fn diff(old: &RunRecord, new: &RunRecord, tolerance: f64) -> Diff {
    let before: HashMap<&str, &crate::record::Check> = old.checks.iter().map(|c| (c.name.as_str(), c)).collect();
    let after: HashMap<&str, &crate::record::Check> = new.checks.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut d = Diff::default();
    for c in &new.checks {
        let o = before.get(c.name.as_str());
        if o.map(|o| o.result) != Some(c.result) {
            d.results.push(ResultChange { check: c.name.clone(), old: o.map(|o| o.result), new: Some(c.result) });
        }
        let Some(o) = o else { continue };
        let was: HashMap<&str, &crate::record::Measurement> =
            o.measurements.iter().map(|m| (m.name.as_str(), m)).collect();
        for m in &c.measurements {
            let Some(p) = was.get(m.name.as_str()) else { continue };
            let moved =
                Moved { check: c.name.clone(), name: m.name.clone(), unit: m.unit.clone(), old: p.value, new: m.value };
            if moved.change().abs() > tolerance {
                d.measurements.push(moved);
            }
        }
    }
    for c in &old.checks {
        if !after.contains_key(c.name.as_str()) {
            d.results.push(ResultChange { check: c.name.clone(), old: Some(c.result), new: None });
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Check, test_record as rec};

    #[test]
    fn changed_results_regressions_and_moved_measurements() {
        let old = rec(vec![
            Check::new("a", Outcome::Pass, "").measure("lat", 10.0, "us"),
            Check::new("b", Outcome::Pass, ""),
            Check::new("c", Outcome::Fail, ""),
            Check::new("gone", Outcome::Pass, ""),
        ]);
        let new = rec(vec![
            Check::new("a", Outcome::Pass, "").measure("lat", 12.0, "us"),
            Check::new("b", Outcome::Fail, ""),
            Check::new("c", Outcome::Pass, ""),
            Check::new("fresh", Outcome::Error, ""),
        ]);
        let d = diff(&old, &new, 0.1);
        let names: Vec<&str> = d.results.iter().map(|c| c.check.as_str()).collect();
        assert_eq!(names, ["b", "c", "fresh", "gone"]);
        let reg: Vec<&str> = d.regressions().map(|c| c.check.as_str()).collect();
        assert_eq!(reg, ["b", "fresh", "gone"], "c improved");
        assert_eq!(d.measurements.len(), 1);
        assert!((d.measurements[0].change() - 0.2).abs() < 1e-9);
        assert!(diff(&old, &new, 0.25).measurements.is_empty());
        assert!(diff(&new, &new, 0.0).results.is_empty());
    }
}
