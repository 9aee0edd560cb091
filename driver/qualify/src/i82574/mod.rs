//! The 82574L qualification suite, above the driver: [`run_suite`] drives an attached
//! [`I82574`](nicqual_nics::i82574::I82574) through its detector and diagnostic API
//! (register patterns, EEPROM, reset, MSI-X and IVAR read-back, vector liveness, the
//! pending-cause watchdog, recovery) and its datapath API (loopback, statistics, receive
//! overrun, link changes), one [`CheckReport`](nicqual_pci::CheckReport) per check.
//!
//! The suite's own options ([`SuiteOptions`]) carry the known deviations of a device model
//! that a check accounts for; the driver's options stay with the driver.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod datapath;
mod rss;
mod suite;

pub use datapath::LOOPBACK_SIZES;
pub use suite::{SUITE, check_names, check_names_for, group_prefix, run_suite, run_suite_with};

/// Which checks to run and report: `--check GLOB` (any of them; all when none is given)
/// minus `--skip GLOB`. Globs use `*` (any run of characters) and `?` (one character) only,
/// so the brackets of `vector[TxQ0]` are literal.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub check: Vec<String>,
    pub skip: Vec<String>,
}

impl Selection {
    /// Is the check called `name` selected?
    pub fn wants(&self, name: &str) -> bool {
        let hit = |globs: &[String]| globs.iter().any(|g| wildmatch::WildMatch::new(g).matches(name));
        (self.check.is_empty() || hit(&self.check)) && !hit(&self.skip)
    }

    /// True when every check is selected.
    pub fn is_all(&self) -> bool {
        self.check.is_empty() && self.skip.is_empty()
    }
}

/// Options of the qualification suite (not of the driver): the known deviations of a
/// device model that checks account for. The default expects the datasheet throughout.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    /// Registers left out of the register pattern test, each with the documented reason
    /// (a known deviation of the device model, e.g. QEMU 7.2's TIDV; docs/CONFORMANCE.md).
    /// Every skipped register is named in the check's result.
    pub pattern_skip: Vec<(u32, String)>,
    /// Known deviation: the device counts transmitted octets (GOTC, TOT) without the FCS,
    /// where the datasheet counts DA through CRC. `Some(reason)`: the statistics check
    /// expects that and names the reason in its result.
    pub tx_octets_without_fcs: Option<String>,
    /// Known deviation: receive overrun is not observable — a frame that finds no free
    /// descriptor is held or dropped outside the device model, with neither MPC nor RXO.
    /// `Some(reason)`: when the overrun check sees exactly that (and the driver still
    /// recovers) it reports not applicable with the numbers and the reason, not a failure.
    pub rx_overrun_unobservable: Option<String>,
    /// Known deviation: a frame for a full receive ring is dropped with ICR.RXO but not
    /// counted in MPC (the datasheet counts every frame missed for lack of descriptors).
    /// `Some(reason)`: when the overrun check sees exactly that (RXO, MPC 0, and the driver
    /// recovers) it reports not applicable with the numbers and the reason.
    pub rx_overrun_uncounted: Option<String>,
    /// Known deviation: CTRL.RST leaves the interrupt set-up (IVAR, EIAC, IMS) as it was.
    /// `Some(reason)`: when the reset check finds exactly that, it reports not applicable
    /// with the values and the reason, not a pass (nothing was shown cleared) and not a
    /// failure of the part.
    pub reset_keeps_interrupt_setup: Option<String>,
    /// The checks to run and report (all by default). The set-up steps other checks rely
    /// on (`reset`, `msix-setup`, `link`, and for `recovery` the vector checks and the
    /// watchdog that find what it recovers) run whenever something after them is selected;
    /// they are reported only when selected themselves.
    pub select: Selection,
}

/// Merge `runs` of the same suite (`--repeat N`) into one report per check: a check passes
/// only if it passed every time; one that passed some times and failed others is flaky,
/// which is a failure, with the counts. Results keep the first run's order; a check missing
/// from some runs (the device went away) counts those runs as not run.
pub fn merge_repeats(runs: Vec<Vec<nicqual_pci::CheckReport>>) -> Vec<nicqual_pci::CheckReport> {
    use nicqual_pci::{CheckReport, CheckResult};
    let n = runs.len();
    let mut order: Vec<String> = Vec::new();
    let mut by_name: std::collections::HashMap<String, Vec<CheckReport>> = std::collections::HashMap::new();
    for run in runs {
        for r in run {
            if !by_name.contains_key(&r.name) {
                order.push(r.name.clone());
            }
            by_name.entry(r.name.clone()).or_default().push(r);
        }
    }
    let mut out = Vec::with_capacity(order.len());
    for name in order {
        let Some(reps) = by_name.remove(&name) else { continue };
        let count = |r: CheckResult| reps.iter().filter(|x| x.result == r).count();
        let (pass, fail, error, na) =
            (count(CheckResult::Pass), count(CheckResult::Fail), count(CheckResult::Error), count(CheckResult::Na));
        let duration_ns = reps.iter().map(|r| r.duration_ns).fold(0u64, u64::saturating_add);
        let first_bad = reps.iter().find(|r| matches!(r.result, CheckResult::Fail | CheckResult::Error));
        let Some(last) = reps.last() else { continue };
        let mut merged = if let Some(bad) = first_bad {
            let what = if pass > 0 { "flaky" } else { "never passed" };
            let mut m = CheckReport::new(
                name.clone(),
                if fail > 0 || pass > 0 { CheckResult::Fail } else { CheckResult::Error },
                format!(
                    "{what}: passed {pass} of {n} runs, failed {fail}, errors {error}, not applicable {na}; first failure: {}",
                    bad.detail
                ),
            );
            m.measurements = bad.measurements.clone();
            m
        } else if pass > 0 && pass + na < n {
            // Passed where it ran, but did not run every time (the device went away).
            CheckReport::new(
                name.clone(),
                CheckResult::Fail,
                format!("ran in {} of {n} runs: {}", pass + na, last.detail),
            )
        } else {
            let mut m = last.clone();
            if pass > 0 {
                m.detail = format!("{} (passed all {n} runs)", last.detail);
            }
            m
        };
        merged.duration_ns = duration_ns;
        out.push(merged.measure("runs_passed", pass as f64, "runs"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nicqual_pci::{CheckReport, CheckResult};

    fn r(name: &str, res: CheckResult) -> CheckReport {
        CheckReport::new(name, res, format!("{name} {}", res.as_str()))
    }

    #[test]
    fn a_check_passes_a_repeat_only_if_it_passed_every_time() {
        use CheckResult::*;
        let runs = vec![
            vec![r("a", Pass), r("b", Pass), r("c", Na), r("d", Fail)],
            vec![r("a", Pass), r("b", Fail), r("c", Na), r("d", Fail)],
            vec![r("a", Pass), r("b", Pass), r("c", Na)],
        ];
        let m = merge_repeats(runs);
        let got: Vec<(&str, CheckResult)> = m.iter().map(|c| (c.name.as_str(), c.result)).collect();
        assert_eq!(got, [("a", Pass), ("b", Fail), ("c", Na), ("d", Fail)]);
        assert!(m[0].detail.contains("passed all 3 runs"));
        assert!(m[1].detail.starts_with("flaky: passed 2 of 3 runs, failed 1"), "{}", m[1].detail);
        assert!(m[3].detail.starts_with("never passed: passed 0 of 3 runs, failed 2"), "{}", m[3].detail);
    }

    #[test]
    fn selection_globs_take_brackets_literally() {
        let s = Selection { check: vec!["vector[*]".into(), "link".into()], skip: vec!["vector[Other]".into()] };
        assert!(
            s.wants("vector[TxQ0]") && s.wants("link") && !s.wants("vector[Other]") && !s.wants("link-change[Other]")
        );
        assert!(Selection::default().wants("anything") && Selection::default().is_all());
        let names = check_names();
        assert!(names.contains(&"msix-table[2]".to_string()) && names.contains(&"loopback[9018]".to_string()));
    }

    #[test]
    fn rss_checks_belong_to_the_two_pair_group_only() {
        let rss = |q: u8| check_names_for(q).into_iter().filter(|n| n.contains("rss-")).collect::<Vec<_>>();
        assert!(rss(1).is_empty(), "{:?}", rss(1));
        assert_eq!(rss(2), ["q2:rss-spread", "q2:rss-hash", "q2:rss-loopback"]);
    }
}
