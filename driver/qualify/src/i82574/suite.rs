//! The qualification suite for the 82574L: a superset of Linux e1000e's offline self-test
//! (`ethtool -t`: register, EEPROM, interrupt, loopback, link), run the same way on every
//! backend. Each check yields a [`CheckReport`]; once the device is found gone, the rest are
//! reported as not run and nothing more touches it.

use super::datapath::{self, LOOPBACK_SIZES};
use super::rss;
use super::{Selection, SuiteOptions};
use nicqual_hw::i82574::{self as r, IvarEntry};
use nicqual_nics::DriverError;
use nicqual_nics::i82574::{I82574, Recovery, routes_for};
use nicqual_pci::{Backend, CheckReport, CheckResult};
use std::collections::BTreeSet;

/// Names of the checks, in the order they run (`*` = one per vector or IVAR entry).
pub const SUITE: &[&str] = &[
    "pci-identity",
    "register-pattern",
    "eeprom",
    "reset",
    "msix-setup",
    "link",
    "msix-table[*]",
    "ivar[*]",
    "vector[*]",
    "irq-watchdog",
    "recovery",
    "loopback[*]",
    "rss-spread",
    "rss-hash",
    "rss-loopback",
    "statistics",
    "rx-overrun",
    "link-change[Other]",
    "link-change[polling]",
];

type Outcome = Result<CheckReport, DriverError>;

/// Name prefix of the checks of a queue-pair group: none for Linux's one-pair plan (three
/// vectors; the names every earlier record uses), `q2:` for the two-pair plan (five vectors,
/// every IVAR entry). The record keeps one flat list of checks; the prefix is the group.
pub fn group_prefix(queue_pairs: u8) -> &'static str {
    if queue_pairs == 2 { "q2:" } else { "" }
}

/// Every check of Linux's one-queue-pair group, in run order.
pub fn check_names() -> Vec<String> {
    check_names_for(1)
}

/// Every check of the group for `queue_pairs` by name (with its prefix), in run order
/// (`*` expanded for that vector plan, the IVAR entries and the loopback sizes).
pub fn check_names_for(queue_pairs: u8) -> Vec<String> {
    let prefix = group_prefix(queue_pairs);
    let mut v = Vec::new();
    for c in SUITE {
        match *c {
            "msix-table[*]" => v.extend(routes_for(queue_pairs).iter().map(|(_, n)| format!("msix-table[{n}]"))),
            "ivar[*]" => v.extend(IvarEntry::ALL.iter().map(|e| format!("ivar[{e}]"))),
            "vector[*]" => v.extend(IvarEntry::ALL.iter().map(|e| format!("vector[{e}]"))),
            "loopback[*]" => v.extend(LOOPBACK_SIZES.iter().map(|s| format!("loopback[{s}]"))),
            c if TWO_PAIR_ONLY.contains(&c) && queue_pairs != 2 => {}
            c => v.push(c.to_string()),
        }
    }
    v.into_iter().map(|n| format!("{prefix}{n}")).collect()
}

/// A liveness report with its counts, loss rate and 95 % interval as measurements.
fn liveness_measures(rep: CheckReport, l: &nicqual_nics::i82574::Liveness) -> CheckReport {
    // Rounded to 1e-3 of the unit: the record is re-read and re-rendered (`nicqual report`),
    // and short decimals survive the JSON round trip exactly.
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    let (lo, hi) = l.loss_ci95();
    rep.measure("raised", f64::from(l.raised), "probes")
        .measure("delivered", f64::from(l.delivered), "probes")
        .measure("loss_rate", r(l.loss_rate() * 100.0), "%")
        .measure("loss_ci95_low", r(lo * 100.0), "%")
        .measure("loss_ci95_high", r(hi * 100.0), "%")
        .measure("latency_mean", r(l.latency_mean_ns() / 1000.0), "us")
        .measure("latency_max", r(l.latency_max_ns as f64 / 1000.0), "us")
}

/// Checks only the two-queue-pair group has (RSS needs receive queue 1).
const TWO_PAIR_ONLY: [&str; 3] = ["rss-spread", "rss-hash", "rss-loopback"];

/// Set-up steps the checks after them rely on.
const SETUP: [&str; 3] = ["reset", "msix-setup", "link"];

/// Must the check `name` (of the group with `prefix` and check list `names`) run under
/// `sel`? Selected checks, and the steps a selected check relies on (see
/// [`SuiteOptions::select`]).
fn needed(sel: &Selection, prefix: &str, names: &[String], name: &str) -> bool {
    if sel.wants(name) {
        return true;
    }
    let later = |after: &str| names.iter().skip_while(|n| *n != after).skip(1).any(|n| sel.wants(n));
    let short = name.strip_prefix(prefix).unwrap_or(name);
    (SETUP.contains(&short) && later(name))
        || ((short.starts_with("vector[") || short == "irq-watchdog") && sel.wants(&format!("{prefix}recovery")))
}

struct Runner<'a> {
    reports: Vec<CheckReport>,
    select: &'a Selection,
    /// The group's name prefix and its checks (with the prefix).
    prefix: &'static str,
    names: Vec<String>,
    /// Called with each report as it is made (progress display).
    on_check: &'a mut dyn FnMut(&CheckReport),
    stopped: Option<String>,
    lost: BTreeSet<IvarEntry>,
}

impl Runner<'_> {
    fn run<B: Backend>(&mut self, drv: &mut I82574<B>, name: &str, f: impl FnOnce(&mut I82574<B>) -> Outcome) {
        let name = &format!("{}{name}", self.prefix);
        if !self.select.is_all() && !needed(self.select, self.prefix, &self.names, name) {
            return;
        }
        if let Some(why) = &self.stopped {
            let rep = CheckReport::new(name, CheckResult::Na, format!("not run: {why}"));
            (self.on_check)(&rep);
            self.reports.push(rep);
            return;
        }
        let t0 = drv.backend().now_ns();
        let mut rep = match f(drv) {
            Ok(mut rep) => {
                rep.name = name.to_string();
                rep
            }
            Err(e) => {
                if e.is_device_gone() {
                    self.stopped = Some(format!("device gone (found by {name}); driver stopped, resources released"));
                }
                if let DriverError::VectorLost { entry, .. } = &e {
                    self.lost.insert(*entry);
                }
                CheckReport::new(name, CheckResult::Fail, e.to_string())
            }
        };
        rep.duration_ns = drv.backend().now_ns().saturating_sub(t0);
        tracing::info!(target: "nicqual::check", "{name}: {} {}", rep.result.as_str(), rep.detail);
        (self.on_check)(&rep);
        self.reports.push(rep);
    }
}

fn pass(detail: impl Into<String>) -> Outcome {
    Ok(CheckReport::new("", CheckResult::Pass, detail))
}

fn na(detail: impl Into<String>) -> Outcome {
    Ok(CheckReport::new("", CheckResult::Na, detail))
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Run every check of the suite against the attached device `drv`.
pub fn run_suite<B: Backend>(drv: &mut I82574<B>, opts: &SuiteOptions) -> Vec<CheckReport> {
    run_suite_with(drv, opts, &mut |_| {})
}

/// [`run_suite`], calling `on_check` with each check's report as soon as it is made.
pub fn run_suite_with<B: Backend>(
    drv: &mut I82574<B>,
    opts: &SuiteOptions,
    on_check: &mut dyn FnMut(&CheckReport),
) -> Vec<CheckReport> {
    let qp = drv.queue_pairs();
    let prefix = group_prefix(qp);
    let mut run = Runner {
        reports: Vec::new(),
        select: &opts.select,
        prefix,
        names: check_names_for(qp),
        on_check,
        stopped: None,
        lost: BTreeSet::new(),
    };
    let plan = drv.plan();
    let id = drv.identity();
    run.run(drv, "pci-identity", |_| {
        pass(format!(
            "{:04x}:{:04x} (82574L) rev {} subsystem {:04x}:{:04x}",
            id.vendor, id.device, id.revision, id.subsys_vendor, id.subsys
        ))
    });
    run.run(drv, "register-pattern", |d| {
        let skip: Vec<u32> = opts.pattern_skip.iter().map(|(o, _)| *o).collect();
        let n = d.register_pattern_test(&skip)?;
        let skipped: Vec<String> = opts
            .pattern_skip
            .iter()
            .map(|(o, why)| format!("{} ({o:#07x}) not tested: {why}", r::reg_name(*o).unwrap_or("?")))
            .collect();
        pass(format!(
            "{n} registers x {} patterns (0x5a5a5a5a, 0xa5a5a5a5, 0, 0xffffffff) read back within their writable masks{}",
            r::PATTERNS.len(),
            if skipped.is_empty() { String::new() } else { format!("; {}", skipped.join("; ")) }
        ))
    });
    run.run(drv, "eeprom", |d| {
        let (mac, sum) = d.read_mac()?;
        pass(format!("64 words read through EERD, checksum {sum:#06x}, MAC {}", fmt_mac(mac)))
    });
    run.run(drv, "reset", |d| {
        let took = d.reset()?;
        let (ivar, ims, eiac) = (d.read(r::IVAR)?, d.read(r::IMS)?, d.read(r::EIAC)?);
        if ivar | ims | eiac != 0
            && let Some(why) = &opts.reset_keeps_interrupt_setup
        {
            return Ok(CheckReport::new(
                "",
                CheckResult::Na,
                format!(
                    "after CTRL.RST: IVAR={ivar:#010x} IMS={ims:#010x} EIAC={eiac:#010x} survived ({why}): reset clearing not shown"
                ),
            ));
        }
        if ivar | ims | eiac != 0 {
            return Ok(CheckReport::new(
                "",
                CheckResult::Fail,
                format!("after CTRL.RST: IVAR={ivar:#010x} IMS={ims:#010x} EIAC={eiac:#010x}, expected all 0"),
            ));
        }
        Ok(CheckReport::new(
            "",
            CheckResult::Pass,
            format!("CTRL.RST self-cleared in {} us; IVAR, IMS, EIAC cleared", took / 1000),
        )
        .measure("reset_time", took as f64 / 1000.0, "us"))
    });
    run.run(drv, "msix-setup", |d| {
        d.setup_msix()?;
        let (ivar, ims, eiac) = (d.read(r::IVAR)?, d.read(r::IMS)?, d.read(r::EIAC)?);
        let how = if d.queue_pairs() == 2 {
            let routes: Vec<String> = d.plan().iter().map(|(e, v)| format!("{e}->{v}")).collect();
            format!(
                "two queue pairs, every IVAR entry valid: {}; RSS key and RETA programmed and read back",
                routes.join(", ")
            )
        } else {
            "as Linux e1000e".to_string()
        };
        pass(format!("{} vectors enabled; IVAR={ivar:#010x} EIAC={eiac:#010x} IMS={ims:#010x} ({how})", d.vectors()))
    });
    run.run(drv, "link", |d| {
        let (st, waited) = d.wait_link()?;
        let bmsr = d.phy_read(r::PHY_STATUS)?;
        if bmsr & r::PHY_STATUS_LINK_UP == 0 {
            return Ok(CheckReport::new(
                "",
                CheckResult::Fail,
                format!("STATUS.LU set but PHY BMSR={bmsr:#06x} says link down"),
            ));
        }
        let speed = match (st >> r::STATUS_SPEED_SHIFT) & 3 {
            0 => 10,
            1 => 100,
            _ => 1000,
        };
        Ok(CheckReport::new(
            "",
            CheckResult::Pass,
            format!(
                "link up after {} ms, {speed} Mb/s {} duplex; STATUS={st:#010x} BMSR={bmsr:#06x}",
                waited / 1_000_000,
                if st & 1 != 0 { "full" } else { "half" }
            ),
        )
        .measure("link_time", waited as f64 / 1e6, "ms"))
    });
    for &(entry, v) in plan {
        run.run(drv, &format!("msix-table[{v}]"), |d| match d.check_msix_entry(v)? {
            Some((addr, data)) => pass(format!(
                "vector {v} (serves IVAR {entry}): address {addr:#x}, data {data:#x}, {}",
                if d.backend().msix_masked_delivery() {
                    "masked by the backend (delivery observed through the PBA)"
                } else {
                    "unmasked"
                }
            )),
            None => na("the kernel owns the MSI-X table on this backend: not read, never written"),
        });
    }
    for entry in IvarEntry::ALL {
        run.run(drv, &format!("ivar[{entry}]"), |d| {
            let nib = d.check_ivar_entry(entry)?;
            match r::ivar_vector(nib << entry.shift(), entry) {
                Some(v) => pass(format!("{entry} -> vector {v} (valid), read back as written")),
                None => pass(format!("{entry} unused (not valid), read back as written")),
            }
        });
    }
    for entry in IvarEntry::ALL {
        let rounds = drv.options().liveness_rounds.max(1);
        run.run(drv, &format!("vector[{entry}]"), |d| {
            if d.route(entry).is_none() {
                return na(format!("{entry} is not routed (one queue pair, as Linux e1000e)"));
            }
            let l = d.probe_vector(entry, rounds)?;
            let cause = if entry == IvarEntry::Other {
                "LSC (folded into OTHER)".to_string()
            } else {
                entry.name().to_uppercase()
            };
            if let Some(first) = &l.first_loss {
                let lost = DriverError::VectorLost {
                    vector: l.vector,
                    entry,
                    why: format!("{cause} raised by ICS: {}; first loss: {first}", l.summary()),
                };
                return Ok(liveness_measures(CheckReport::new("", CheckResult::Fail, lost.to_string()), &l));
            }
            Ok(liveness_measures(
                CheckReport::new(
                    "",
                    CheckResult::Pass,
                    format!(
                        "{cause} raised by ICS: {} on vector {}, max latency {} us",
                        l.summary(),
                        l.vector,
                        l.latency_max_ns / 1000
                    ),
                ),
                &l,
            ))
        });
    }
    run.run(drv, "irq-watchdog", |d| {
        // Let every vector go quiet for longer than the watchdog period, then run it.
        let period = 2_000_000_000;
        d.backend_mut().wait(period);
        d.drain_notifiers()?;
        let lost = d.watchdog(period / 2)?;
        if lost.is_empty() {
            return pass(format!(
                "every routed vector answered a software-raised cause after {} s quiet",
                period / 1_000_000_000
            ));
        }
        let mut detail = Vec::new();
        for e in lost {
            detail.push(e.to_string());
        }
        Ok(CheckReport::new("", CheckResult::Fail, format!("pending cause without delivery: {}", detail.join("; "))))
    });
    // Vectors found lost by their liveness check or by the watchdog.
    for rep in &run.reports {
        for entry in IvarEntry::ALL {
            if rep.name == format!("{prefix}vector[{entry}]") && rep.result == CheckResult::Fail {
                run.lost.insert(entry);
            }
        }
        if rep.name == format!("{prefix}irq-watchdog") && rep.result == CheckResult::Fail {
            for &(entry, _) in plan {
                if rep.detail.contains(&format!("(IVAR entry {entry})")) {
                    run.lost.insert(entry);
                }
            }
        }
    }
    let lost: Vec<IvarEntry> = run.lost.iter().copied().collect();
    run.run(drv, "recovery", |d| {
        if lost.is_empty() {
            return exercise_recovery(d);
        }
        let mut degraded = Vec::new();
        let mut notes = Vec::new();
        for entry in &lost {
            match d.recover(*entry)? {
                Recovery::Reprogrammed { entry, vector, after } => notes.push(format!(
                    "vector {vector} ({entry}) recovered: after re-programming IVAR and the MSI-X entry a fresh run of probes lost nothing ({})",
                    after.summary()
                )),
                Recovery::Polling { entry, vector, verified, after } => {
                    degraded.push(entry.to_string());
                    notes.push(format!(
                        "vector {vector} (IVAR entry {entry}) still loses messages after re-programming ({}); {entry} causes are now polled (poller {})",
                        after.summary(),
                        if verified { "verified" } else { "NOT verified" }
                    ))
                }
            }
        }
        if degraded.is_empty() {
            return Ok(CheckReport::new("", CheckResult::Pass, notes.join("; ")));
        }
        Ok(CheckReport::new(
            "",
            CheckResult::Fail,
            format!("degraded: polling {}: {}", degraded.join(", "), notes.join("; ")),
        ))
    });
    // Datapath checks (datapath.rs): none waits on a queue vector.
    for size in LOOPBACK_SIZES {
        run.run(drv, &format!("loopback[{size}]"), |d| datapath::check_loopback(d, size));
    }
    if qp == 2 {
        run.run(drv, "rss-spread", rss::check_spread);
        run.run(drv, "rss-hash", rss::check_hash);
        run.run(drv, "rss-loopback", rss::check_loopback);
    }
    run.run(drv, "statistics", |d| datapath::check_statistics(d, opts));
    run.run(drv, "rx-overrun", |d| datapath::check_rx_overrun(d, opts));
    run.run(drv, "link-change[Other]", |d| datapath::check_link_change(d, true));
    run.run(drv, "link-change[polling]", |d| datapath::check_link_change(d, false));
    if !drv.is_gone() {
        let _ = datapath::end_datapath_checks(drv);
    }
    // Steps that ran only because a selected check relies on them are not reported.
    let mut reports = run.reports;
    reports.retain(|r| opts.select.wants(&r.name));
    reports
}

/// `recovery` on a device that lost no vector: break one on purpose from the driver's side
/// (set the Mask bit of its MSI-X table entry, a register the driver owns), require the
/// driver's own liveness detection to see the loss, then run the driver's recovery, which
/// re-arms the entry and passes only if a full fresh probe run on that vector loses nothing.
/// The vector chosen is the Other entry's (the one seed 004 lost).
fn exercise_recovery<B: Backend>(d: &mut I82574<B>) -> Outcome {
    let entry = IvarEntry::Other;
    let Some(vector) = d.route(entry) else {
        return na("the Other entry is not routed: no vector to exercise recovery on");
    };
    if d.backend_mut().msix_vectors() <= vector {
        return na(format!("vector {vector} is not enabled: cannot break it to exercise recovery"));
    }
    d.backend_mut().msix_mask(vector, true)?;
    // Detection must see the break: a short probe run on the masked vector.
    let seen = d.probe_vector(entry, BREAK_PROBES)?;
    if seen.all_delivered() {
        d.backend_mut().msix_mask(vector, false)?;
        return Ok(CheckReport::new(
            "",
            CheckResult::Fail,
            format!(
                "vector {vector} ({entry}) masked in its MSI-X table entry still delivered every probe ({}): \
                 the loss detection cannot be exercised",
                seen.summary()
            ),
        ));
    }
    match d.recover(entry)? {
        Recovery::Reprogrammed { vector, after, .. } => Ok(CheckReport::new(
            "",
            CheckResult::Pass,
            format!(
                "recovery exercised on vector {vector} ({entry}): masked in its MSI-X table entry, detection saw {}; \
                 after re-programming IVAR and the MSI-X entry a fresh run lost nothing ({})",
                seen.summary(),
                after.summary()
            ),
        )),
        Recovery::Polling { vector, verified, after, .. } => Ok(CheckReport::new(
            "",
            CheckResult::Fail,
            format!(
                "degraded: polling {entry}: vector {vector}, broken on purpose (masked), still loses messages after \
                 re-programming ({}); {entry} causes are now polled (poller {})",
                after.summary(),
                if verified { "verified" } else { "NOT verified" }
            ),
        )),
    }
}

/// Probes sent to a vector broken on purpose: enough for detection to see the loss.
const BREAK_PROBES: u32 = 3;
