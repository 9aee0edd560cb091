//! `esxi-lost-vector`: seed 004, the 82574L under ESX/ESXi, which "uses or touches all of
//! the IVAR table, 0-4", losing the MSI-X vector behind IVAR entry 4 (the report's "IVAR
//! entry 5", counting from 1: Other, the link and management causes).
//!
//! Both drivers run the two-queue-pair plan on the emulated 82574L (every IVAR entry valid,
//! five vectors: RxQ0→0, RxQ1→1, TxQ0→2, TxQ1→3, Other→4). The loss is a model fault,
//! seeded: `lose-vector:4` (vector 4's messages never arrive and its MSI-X table entry
//! reads all-ones) or, intermittently, `drop-irq:4:0.05` (5 % of its messages vanish). The
//! link is then taken down and up [`FLAPS`] times by pulling the model's cable.
//!
//! * **The field's driver** (as the report describes ESX's e1000: interrupt-driven only, no
//!   check of its vectors) learns of link changes only from its Other handler. What it sees
//!   is counted against what the model's link did; the causes left pending in ICR are read
//!   without side effects; the diagnostic test writes 0x5a5a5a5a into each MSI-X table
//!   entry and reads it back.
//! * **nicqual's driver** reads its MSI-X table back and probes each vector
//!   ([`I82574::probe_vector`]), names the entry and vector, re-programs, and when the
//!   vector still loses messages polls the Other causes; link changes are then seen by that
//!   poller. Every wait it makes is bounded.
//!
//! Nothing here decides an outcome: the numbers come from the model running the drivers.

use super::Scenario;
use super::story::{Platform, Story, check, expect_field_failure, print_checks, record};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_hw::i82574::{self as r, Icr, IvarEntry, Status};
use nicqual_hw::pci;
use nicqual_model::FaultPlan;
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_nics::DriverError;
use nicqual_nics::i82574::{I82574, Options, Recovery};
use nicqual_pci::{Backend, CheckReport};
use nicqual_report as rep;
use std::io::Write;

pub const NAME: &str = "esxi-lost-vector";
pub const SUMMARY: &str = "82574L with all five IVAR entries in use (ESX/ESXi): the Other vector (IVAR entry 4) lost, for good or intermittently";

pub const SCENARIO: Scenario = Scenario {
    name: NAME,
    summary: SUMMARY,
    run,
    no_wire: Some("the scenario's traffic is interrupts and link changes (the cable is pulled), not frames"),
};

/// The vector behind IVAR entry 4 (Other) in the two-queue-pair plan.
pub const OTHER_VECTOR: u16 = 4;
/// Link down/up cycles per run.
pub const FLAPS: u32 = 50;
/// Cable out this long, then in; the model brings the link up after its own delay.
pub const UNPLUGGED_NS: u64 = 20_000_000;
/// How often a driver looks (the field's interrupt handler loop, nicqual's poller).
pub const LOOK_EVERY_NS: u64 = 1_000_000;
/// Loss rate of the intermittent variant.
pub const DROP_P: f64 = 0.05;
/// The pattern ESXi's diagnostic wrote and expected back.
pub const PATTERN: u32 = 0x5a5a_5a5a;

/// How the vector is lost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// No fault (to show the failure comes from the fault, not from the harness).
    None,
    /// `lose-vector:4`.
    Lost,
    /// `drop-irq:4:P`.
    Intermittent(f64),
}

impl Loss {
    fn plan(self, seed: u64) -> FaultPlan {
        match self {
            Loss::None => FaultPlan::new(seed),
            Loss::Lost => FaultPlan::new(seed).lose_vector(OTHER_VECTOR),
            Loss::Intermittent(p) => FaultPlan::new(seed).drop_irq(OTHER_VECTOR, p),
        }
    }

    fn label(self) -> String {
        match self {
            Loss::None => "healthy".into(),
            Loss::Lost => format!("lose-vector:{OTHER_VECTOR}"),
            Loss::Intermittent(p) => format!("drop-irq:{OTHER_VECTOR}:{p}"),
        }
    }
}

type Drv = I82574<EmulatedBackend<Model>>;

fn up(loss: Loss, seed: u64) -> Result<Drv, DriverError> {
    let b = EmulatedBackend::new(Model::new(Config::default()), "model:i82574l");
    let mut d = I82574::attach(b, Options { queue_pairs: 2, ..Options::default() })?;
    d.backend_mut().device_mut().arm_faults(loss.plan(seed));
    d.bring_up()?;
    Ok(d)
}

/// Link changes the model made and those a driver saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCount {
    pub made: u32,
    pub seen: u32,
    /// The driver still believed the link up when it had been down for a whole unplug.
    pub stale_up: u32,
}

/// Pull and replug the cable `FLAPS` times; `look` is the driver's way of learning the link
/// state (returns `Some(lu)` when it learned something). Counts changes seen.
fn flap(
    d: &mut Drv,
    look: &mut dyn FnMut(&mut Drv) -> Result<Option<bool>, DriverError>,
) -> Result<LinkCount, DriverError> {
    let mut c = LinkCount::default();
    let mut believed = true;
    let mut learn = |d: &mut Drv, c: &mut LinkCount, believed: &mut bool| -> Result<(), DriverError> {
        if let Some(lu) = look(d)?
            && lu != *believed
        {
            *believed = lu;
            c.seen += 1;
        }
        Ok(())
    };
    let settle = Config::default().link_up_delay_ns + 20_000_000;
    for _ in 0..FLAPS {
        d.backend_mut().device_mut().set_cable(false);
        c.made += 1;
        for _ in 0..UNPLUGGED_NS / LOOK_EVERY_NS {
            d.backend_mut().wait(LOOK_EVERY_NS);
            learn(d, &mut c, &mut believed)?;
        }
        if believed {
            c.stale_up += 1;
        }
        d.backend_mut().device_mut().set_cable(true);
        c.made += 1;
        for _ in 0..settle / LOOK_EVERY_NS {
            d.backend_mut().wait(LOOK_EVERY_NS);
            learn(d, &mut c, &mut believed)?;
        }
    }
    Ok(c)
}

/// What the field's driver went through.
#[derive(Debug, Clone)]
pub struct Field {
    pub link: LinkCount,
    /// ICR as the model holds it after the first unplug (read without side effects), and
    /// messages vector 4 delivered by then.
    pub icr_pending: u32,
    pub other_deliveries: u64,
    /// MSI-X table entries whose Message Data did not read back the pattern: (vector, read).
    pub diag_mismatch: Vec<(u16, u32)>,
    /// An interrupt test waiting for one Other message: delivered within 1 s of virtual time?
    pub irq_test_answered: bool,
}

/// The field's driver: interrupt-driven only. Its Other handler (Linux's and, as far as the
/// report shows, ESX's: reading ICR) is the only way it learns of link changes.
pub fn field(loss: Loss, seed: u64) -> Result<Field, DriverError> {
    let mut d = up(loss, seed)?;
    d.drain_notifiers()?;
    d.clear_other_icr();
    // One unplug, then look at what the device holds.
    let before = d.counters.deliveries.get(OTHER_VECTOR as usize).copied().unwrap_or(0);
    d.backend_mut().device_mut().set_cable(false);
    d.backend_mut().wait(UNPLUGGED_NS);
    d.drain_notifiers()?;
    let icr_pending = d.backend().device().peek(r::ICR);
    let other_deliveries =
        d.counters.deliveries.get(OTHER_VECTOR as usize).copied().unwrap_or(0).saturating_sub(before);
    d.backend_mut().device_mut().set_cable(true);
    d.backend_mut().wait(Config::default().link_up_delay_ns + 20_000_000);
    d.drain_notifiers()?;
    d.clear_other_icr();
    let link = flap(&mut d, &mut |d| {
        d.drain_notifiers()?;
        if d.other_icr() & Icr::LSC.bits() == 0 {
            return Ok(None);
        }
        d.clear_other_icr();
        Ok(Some(d.read(r::STATUS)? & Status::LU.bits() != 0))
    })?;
    // The diagnostic (ethtool-style) test over the MSI-X table: write the pattern into each
    // entry's Message Data, read it back, restore. Inference: which register ESXi's test
    // read is not in the report; the MSI-X table entry of the lost vector is the one that
    // reads all-ones on a device that otherwise answers.
    let mut diag_mismatch = Vec::new();
    for v in 0..d.vectors() {
        let off = r::MSIX_TABLE_OFFSET + u64::from(v) * pci::MSIX_ENTRY_SIZE + pci::MSIX_ENTRY_DATA;
        let b = d.backend_mut();
        let saved = b.read32(r::BAR_MSIX, off);
        b.write32(r::BAR_MSIX, off, PATTERN);
        let got = b.read32(r::BAR_MSIX, off);
        b.write32(r::BAR_MSIX, off, saved);
        if got != PATTERN {
            diag_mismatch.push((v, got));
        }
    }
    // The interrupt test: raise an Other cause and wait for its message (the field's waited
    // without a bound; here the wait is cut at 1 s of virtual time).
    d.drain_notifiers()?;
    d.write(r::ICS, Icr::LSC.bits())?;
    let mut irq_test_answered = false;
    for _ in 0..1000 {
        d.backend_mut().wait(LOOK_EVERY_NS);
        if d.drain_notifiers()?.contains(&OTHER_VECTOR) {
            irq_test_answered = true;
            break;
        }
    }
    d.shutdown();
    Ok(Field { link, icr_pending, other_deliveries, diag_mismatch, irq_test_answered })
}

/// What nicqual's driver did.
#[derive(Debug, Clone)]
pub struct Nicqual {
    /// The first detector that named vector 4 / entry Other, and when (virtual ns after
    /// bring-up).
    pub named_by: Option<String>,
    pub named_after_ns: Option<u64>,
    /// The liveness probe run on Other.
    pub probes: String,
    pub probe_lost: u32,
    pub recovery: String,
    pub polled: bool,
    pub link: LinkCount,
    /// Longest single look at the device during the link run, and longest wait for one
    /// interrupt message (virtual ns): no lock-up.
    pub longest_look_ns: u64,
    pub longest_irq_wait_ns: u64,
    /// Other causes served by the poller.
    pub polled_services: u64,
}

/// nicqual's driver: read back, probe, name, recover or poll, and keep seeing the link.
pub fn nicqual(loss: Loss, seed: u64) -> Result<Nicqual, DriverError> {
    let mut d = up(loss, seed)?;
    let t_up = d.backend().now_ns();
    let (mut named_by, mut named_after_ns) = (None, None);
    if let Err(e @ DriverError::VectorLost { vector: OTHER_VECTOR, entry: IvarEntry::Other, .. }) =
        d.check_msix_entry(OTHER_VECTOR)
    {
        named_by = Some(format!("MSI-X table read-back: {e}"));
        named_after_ns = Some(d.backend().now_ns() - t_up);
    }
    let l = d.probe_vector(IvarEntry::Other, d.options().liveness_rounds)?;
    if named_by.is_none()
        && let (Some(why), Some(t)) = (&l.first_loss, l.first_loss_ns)
    {
        named_by = Some(format!("liveness probe: MSI-X vector {} (IVAR entry {}) lost: {why}", l.vector, l.entry));
        named_after_ns = Some(t + d.options().irq_bound_ns - t_up);
    }
    let (recovery, polled) = if l.all_delivered() {
        ("nothing to recover: every probe delivered".to_string(), false)
    } else {
        match d.recover(IvarEntry::Other)? {
            Recovery::Reprogrammed { after, .. } => {
                (format!("recovered by re-programming ({})", after.summary()), false)
            }
            Recovery::Polling { verified, after, .. } => (
                format!(
                    "degraded: polling Other (vector 4 still loses messages after re-programming: {}; poller {})",
                    after.summary(),
                    if verified { "verified" } else { "NOT verified" }
                ),
                verified,
            ),
        }
    };
    d.drain_notifiers()?;
    d.clear_other_icr();
    let mut longest_look_ns = 0;
    let link = flap(&mut d, &mut |d| {
        let t = d.backend().now_ns();
        d.drain_notifiers()?;
        // Polled Other causes (LSC among them) are read and acknowledged by the poller;
        // delivered ones by the Other handler.
        let lsc = d.poll_causes()?.contains(Icr::LSC) || d.other_icr() & Icr::LSC.bits() != 0;
        d.clear_other_icr();
        let lu = d.read(r::STATUS)? & Status::LU.bits() != 0;
        longest_look_ns = longest_look_ns.max(d.backend().now_ns() - t);
        Ok(lsc.then_some(lu))
    })?;
    let polled_services = d.counters.polled_services;
    let bound = d.options().irq_bound_ns;
    let longest_irq_wait_ns = d.irq_log.events.iter().map(|e| e.latency_ns.unwrap_or(bound)).max().unwrap_or(0);
    d.shutdown();
    Ok(Nicqual {
        named_by,
        named_after_ns,
        probes: l.summary(),
        probe_lost: l.lost(),
        recovery,
        polled,
        link,
        longest_look_ns,
        longest_irq_wait_ns,
        polled_services,
    })
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The checks of one loss variant.
fn checks_for(loss: Loss, seed: u64, tag: &str) -> Result<(Vec<CheckReport>, Field, Nicqual), DriverError> {
    let f = field(loss, seed)?;
    let n = nicqual(loss, seed)?;
    let mut c = Vec::new();
    c.push(expect_field_failure(check(
        &format!("field[{tag}]: link changes"),
        f.link.seen == f.link.made,
        format!(
            "interrupt-driven driver saw {}/{} link changes; believed the link up through {} of {} unplugs",
            f.link.seen, f.link.made, f.link.stale_up, FLAPS
        ),
    )));
    if loss == Loss::Lost {
        let pending = Icr::LSC.bits() | Icr::OTHER.bits();
        c.push(expect_field_failure(check(
            &format!("field[{tag}]: Other delivered"),
            f.icr_pending & pending != pending || f.other_deliveries > 0,
            format!(
                "after an unplug ICR={:#010x} (LSC and OTHER pending) with {} message(s) on vector {OTHER_VECTOR}",
                f.icr_pending, f.other_deliveries
            ),
        )));
        let diag = f.diag_mismatch.iter().map(|(v, got)| format!("entry {v} read {got:#010x}")).collect::<Vec<_>>();
        c.push(expect_field_failure(check(
            &format!("field[{tag}]: diagnostic"),
            f.diag_mismatch.is_empty(),
            format!(
                "wrote {PATTERN:#010x} into each MSI-X table entry's Message Data: {}",
                if diag.is_empty() { "all read back".to_string() } else { diag.join(", ") }
            ),
        )));
        c.push(expect_field_failure(check(
            &format!("field[{tag}]: interrupt test"),
            f.irq_test_answered,
            format!(
                "Other raised by ICS: {} within 1 s (an unbounded wait, as the field's, would not have returned)",
                if f.irq_test_answered { "delivered" } else { "no message on vector 4" }
            ),
        )));
    }
    let named = n.named_by.clone().unwrap_or_else(|| "never named".into());
    let within = n.named_after_ns.is_some_and(|t| t <= 10_000_000);
    c.push(check(
        &format!("nicqual[{tag}]: named"),
        n.named_by.is_some() && (loss != Loss::Lost || within),
        format!(
            "after {} ms of virtual time: {named}; liveness {}",
            n.named_after_ns.map_or("-".into(), |t| format!("{:.1}", ms(t))),
            n.probes
        ),
    ));
    c.push(check(&format!("nicqual[{tag}]: recovery"), n.polled, n.recovery.clone()));
    c.push(check(
        &format!("nicqual[{tag}]: link changes"),
        n.link.seen == n.link.made && n.link.stale_up == 0,
        format!(
            "{}/{} link changes seen ({} Other cause reads by the poller); never believed the link up while unplugged: {}",
            n.link.seen,
            n.link.made,
            n.polled_services,
            n.link.stale_up == 0
        ),
    ));
    c.push(check(
        &format!("nicqual[{tag}]: no lock-up"),
        n.longest_look_ns.max(n.longest_irq_wait_ns) <= Options::default().irq_bound_ns,
        format!(
            "every call returned: the longest wait for an interrupt message took {:.1} ms (the bound: {} ms), the longest look during the link run {:.3} ms",
            ms(n.longest_irq_wait_ns),
            Options::default().irq_bound_ns / 1_000_000,
            ms(n.longest_look_ns),
        ),
    ));
    Ok((c, f, n))
}

pub fn run(seed: u64, out: &mut dyn Write) -> std::io::Result<rep::RunRecord> {
    let started = rep::now_rfc3339();
    let wall = std::time::Instant::now();
    let err = |e: DriverError| std::io::Error::other(e.to_string());
    let (mut checks, f, n) = checks_for(Loss::Lost, seed, "lost").map_err(err)?;
    let (c2, f2, n2) = checks_for(Loss::Intermittent(DROP_P), seed, "drop").map_err(err)?;
    checks.extend(c2);
    let story = Story {
        field: "An 82574L under ESX/ESXi, whose e1000 driver \"uses or touches all of the IVAR table, 0-4\",\n\
             lost the MSI-X vector of \"IVAR entry 5\" (entry 4 counting from 0: Other, the link and\n\
             management causes). Interrupts did nothing, the driver never noticed, link changes went\n\
             unseen (HA/FT useless), and ethtool's diagnostic reported 0xffffffff where it expected\n\
             0x5a5a5a5a before the PCPU locked up."
            .to_string(),
        here: format!(
            "Both drivers run two queue pairs: IVAR 0x800cba98, every entry valid, five vectors.\n\
             Vector 4 lost ({}): the field's interrupt-driven driver saw {}/{} link changes; after an\n\
             unplug ICR held {:#010x} with {} message(s) on vector 4; the MSI-X table test read {}.\n\
             Intermittent ({}): it saw {}/{} link changes. (In the model a message is sent on a new\n\
             ICR & IMS edge: once a dropped message leaves LSC pending in ICR, later link changes\n\
             raise no new edge until something reads ICR, so one drop blinds the handler.)",
            Loss::Lost.label(),
            f.link.seen,
            f.link.made,
            f.icr_pending,
            f.other_deliveries,
            f.diag_mismatch.iter().map(|(v, g)| format!("{g:#010x} at entry {v}")).collect::<Vec<_>>().join(", "),
            Loss::Intermittent(DROP_P).label(),
            f2.link.seen,
            f2.link.made,
        ),
        nicqual: format!(
            "Lost: {} (after {:.1} ms); {}; {}/{} link changes seen by polling the Other causes.\n\
             Intermittent: liveness {}; {}; {}/{} link changes seen.",
            n.named_by.as_deref().unwrap_or("not named"),
            n.named_after_ns.map_or(f64::NAN, ms),
            n.recovery,
            n.link.seen,
            n.link.made,
            n2.probes,
            n2.recovery,
            n2.link.seen,
            n2.link.made,
        ),
        change: "Qualify the configuration you deploy: `nicqual qualify --queues 2` checks every IVAR entry\n\
                 and vector (150 probes each), so a lost or lossy Other vector fails before production.\n\
                 In the driver: read the MSI-X table back, keep the pending-cause watchdog on, poll the\n\
                 Other causes (and STATUS.LU) when their vector is lost, and bound every wait of a\n\
                 diagnostic (an interrupt test that waits forever is the PCPU lock-up)."
            .to_string(),
    };
    writeln!(out, "scenario {NAME} (seed {seed})\n")?;
    story.print(out)?;
    print_checks(out, &checks)?;
    let platform = Platform {
        backend: "emulated 82574L (two queue pairs)",
        spec: "model:i82574l",
        device: "Intel 82574L (model)",
        driver: "nicqual-nics i82574 (queue_pairs = 2)",
    };
    Ok(record(NAME, seed, &platform, &checks, 0, started, wall))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_fault_the_field_driver_sees_every_link_change() {
        // The failure comes from the lost vector in the model, not from the harness.
        let f = field(Loss::None, 1).unwrap();
        assert_eq!((f.link.seen, f.link.made, f.link.stale_up), (2 * FLAPS, 2 * FLAPS, 0), "{f:?}");
        assert!(f.diag_mismatch.is_empty() && f.irq_test_answered && f.other_deliveries > 0, "{f:?}");
        let n = nicqual(Loss::None, 1).unwrap();
        assert!(n.named_by.is_none() && n.probe_lost == 0 && !n.polled, "{n:?}");
        assert_eq!(n.link.seen, n.link.made);
    }

    #[test]
    fn a_lost_other_vector_hides_link_changes_from_the_field_driver_but_not_from_nicqual() {
        let f = field(Loss::Lost, 1).unwrap();
        assert_eq!(f.link.seen, 0, "{f:?}");
        assert_eq!(f.diag_mismatch, [(OTHER_VECTOR, 0xffff_ffff)]);
        assert!(f.icr_pending & Icr::LSC.bits() != 0 && f.other_deliveries == 0 && !f.irq_test_answered);
        let n = nicqual(Loss::Lost, 1).unwrap();
        assert!(n.named_after_ns.is_some_and(|t| t <= 10_000_000), "{n:?}");
        assert!(n.named_by.as_deref().is_some_and(|s| s.contains("vector 4 (IVAR entry Other)")), "{n:?}");
        assert!(n.polled && n.link.seen == n.link.made && n.link.stale_up == 0, "{n:?}");
    }

    #[test]
    fn intermittent_loss_is_caught_by_the_probes_and_polled() {
        for seed in 1..=3 {
            let n = nicqual(Loss::Intermittent(DROP_P), seed).unwrap();
            assert!(n.probe_lost > 0 && n.polled, "seed {seed}: {n:?}");
            assert_eq!(n.link.seen, n.link.made, "seed {seed}: {n:?}");
        }
    }
}
