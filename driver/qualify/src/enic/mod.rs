//! The enic (Cisco VIC vNIC) qualification suite, above the driver: [`run_suite`] attaches
//! [`Enic`] to a backend, lets the caller arm faults, and runs one [`CheckReport`] per
//! check through the driver's API — resource discovery, the devcmd channel, WQ/RQ/CQ
//! bring-up, colour wrap over several laps, interrupts and credits per CQ, the MSI-X
//! table (a lost vector), one `pair[q]` check per WQ/RQ pair the driver brought up (its
//! control blocks, its traffic, its two vectors and its credits), the jumbo matrix per
//! interface MTU (the driver re-attached at each), and completions the driver refused
//! (hostile completions).
//!
//! Accounting: a frame sent is either delivered byte-exact, in order, or its receive
//! completion was refused by the driver's validation; the datapath checks fail on a loss
//! the driver cannot explain or a wrong frame, and the refusals themselves are the
//! `hostile-completions` check's finding. So an armed `hostile-completion:N` fails that
//! check alone, and `lose-vector:N` fails `lost-vector`, `interrupts` when N is pair 0's
//! RX vector, and the `pair[q]` check of the pair whose RX (N = q) or TX (N = pairs + q)
//! vector it is; no other pair's.

use crate::i82574::Selection;
use nicqual_hw::enic as hw;
use nicqual_hw::pci;
use nicqual_nics::enic::{self, Enic, EnicError, Platform, Policy};
use nicqual_pci::{Backend, CheckReport, CheckResult};

/// The checks that do not depend on the pair count, in run order (`teardown` is the
/// caller's); [`check_names`] has them all.
pub const CHECKS: [&str; 9] = [
    "resources",
    "devcmd",
    "rings",
    "colour-wrap",
    "interrupts",
    "lost-vector",
    "jumbo[1500]",
    "jumbo[9000]",
    "hostile-completions",
];
/// Every check for a driver with `pairs` WQ/RQ pairs, in run order: [`CHECKS`] with one
/// `pair[q]` per pair after `lost-vector`.
pub fn check_names(pairs: u32) -> Vec<String> {
    let mut v = Vec::new();
    for c in CHECKS {
        v.push(c.to_string());
        if c == "lost-vector" {
            v.extend((0..pairs).map(|q| format!("pair[{q}]")));
        }
    }
    v
}

/// Frames each `pair[q]` check sends on its pair.
pub const PAIR_FRAMES: u32 = 8;

/// Interface MTUs of the jumbo matrix (the driver is re-attached at each).
pub const JUMBO_MTUS: [u32; 2] = [1500, 9000];
/// Ring entries the suite brings the driver up with.
pub const ENTRIES: u32 = 64;
/// Interface MTU of the first attach.
pub const FIRST_MTU: u32 = 1500;
/// How long the suite waits for an interrupt (virtual or device time).
pub const IRQ_BOUND_NS: u64 = 100_000;

/// What the suite leaves: its reports and the attached driver (for teardown); `None` when
/// a re-attach failed (the backend went with the failed attach).
#[derive(Debug)]
pub struct SuiteRun<B: Backend> {
    pub checks: Vec<CheckReport>,
    pub driver: Option<Enic<B>>,
    /// The DMA API's balance at each close the suite did (the re-attaches of the jumbo
    /// matrix); the caller adds the last one's ([`teardown`]).
    pub closes: Vec<CheckReport>,
}

/// The `teardown` check's DMA part: `base` (MSI-X disabled, nothing left mapped in the
/// backend) fails too when any close of the driver left streaming or coherent mappings
/// for the DMA API to unmap (its `dma-mappings-balanced` report), the driver's own
/// bookkeeping having missed them.
pub fn teardown(base: CheckReport, closes: &[CheckReport]) -> CheckReport {
    let leaky: Vec<&CheckReport> = closes.iter().filter(|c| c.result != CheckResult::Pass).collect();
    let leaked: f64 =
        closes.iter().flat_map(|c| &c.measurements).filter(|m| m.name == "leaked_mappings").map(|m| m.value).sum();
    let mut r = base;
    if closes.is_empty() {
        r.detail += "; no close of the driver was accounted";
        return r;
    }
    if leaky.is_empty() {
        let last = closes.last().map_or(String::new(), |c| c.detail.clone());
        r.detail += &format!("; DMA API balanced at all {} close(s) (last: {last})", closes.len());
    } else {
        r.result = CheckResult::Fail;
        let first = leaky.first().map_or(String::new(), |c| c.detail.clone());
        r.detail += &format!("; DMA API: {} of {} close(s) left mappings ({first})", leaky.len(), closes.len());
    }
    r.measure("leaked_mappings", leaked, "mappings")
}

/// Completions the driver refused so far (receive drops, transmit refusals, stale
/// colours), and the receive refusals alone (those lose a frame).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Refused {
    all: u64,
    rx: u64,
}

fn refused<B: Backend>(e: &Enic<B>) -> Refused {
    let s = &e.stats;
    let rx_stale = s.dropped("stale-colour");
    let rx = s.dropped_total();
    Refused { all: rx + s.tx_bad_completions + s.stale_colour.saturating_sub(rx_stale), rx }
}

/// Refusals and their reasons over the whole run (accumulated across re-attaches).
#[derive(Debug, Default)]
struct Ledger {
    refused: u64,
    /// Completions the driver processed (accepted or refused).
    seen: u64,
    reasons: Vec<String>,
}

impl Ledger {
    fn take<B: Backend>(&mut self, e: &Enic<B>) {
        self.refused += refused(e).all;
        self.seen += refused(e).all + e.stats.rx_delivered + e.stats.tx_completions;
        for r in e.drop_log.iter().map(|x| x.to_string()).chain(e.tx_drop_log.iter().map(|x| x.to_string())) {
            if self.reasons.len() < 8 {
                self.reasons.push(r);
            }
        }
    }
}

/// A numbered test frame: sequence number in the first 4 bytes, a pattern after.
fn frame(len: usize, seq: u32) -> Vec<u8> {
    let s = seq.to_be_bytes();
    (0..len)
        .map(|i| match s.get(i) {
            Some(b) => *b,
            None => (i as u8).wrapping_mul(31).wrapping_add(seq as u8),
        })
        .collect()
}

/// What a burst of traffic showed.
#[derive(Debug, Default)]
struct Traffic {
    sent: u64,
    intact: u64,
    wrong: u64,
    send_errors: Vec<String>,
    /// Frames neither delivered nor accounted for by a refused receive completion.
    unexplained: u64,
}

impl Traffic {
    fn ok(&self) -> bool {
        self.wrong == 0 && self.unexplained == 0 && self.send_errors.is_empty()
    }

    /// Match each frame in `out` (drained) against the oldest frames `sent`: found, it and
    /// every earlier one (lost) leave `sent`; not found, it is wrong or out of order.
    fn match_delivered(&mut self, sent: &mut std::collections::VecDeque<Vec<u8>>, out: &mut Vec<Vec<u8>>) {
        for got in out.drain(..) {
            match sent.iter().position(|x| *x == got) {
                Some(p) => {
                    sent.drain(..=p);
                    self.intact += 1;
                }
                None => self.wrong += 1,
            }
        }
    }

    fn summary(&self) -> String {
        let mut s = format!("{} of {} frames back intact", self.intact, self.sent);
        if self.wrong > 0 {
            s += &format!(", {} wrong or out of order", self.wrong);
        }
        if self.unexplained > 0 {
            s += &format!(", {} lost with no refused completion to explain it", self.unexplained);
        }
        if let Some(e) = self.send_errors.first() {
            s += &format!(", {} send error(s), first: {e}", self.send_errors.len());
        }
        s
    }
}

/// Send `n` frames of `sizes` (cycled) on pair 0 in bursts of `burst`, servicing RX after
/// each burst; check every delivered frame against what was sent, in order.
fn traffic<B: Backend>(e: &mut Enic<B>, seq: &mut u32, n: u32, sizes: &[usize], burst: u32) -> Traffic {
    let before = refused(e);
    let mut t = Traffic::default();
    let mut sent = std::collections::VecDeque::new();
    let mut out = Vec::new();
    let burst = burst.clamp(1, ENTRIES - 1);
    for k in 0..n {
        let len = sizes.get(k as usize % sizes.len().max(1)).copied().unwrap_or(60);
        let f = frame(len, *seq);
        *seq = seq.wrapping_add(1);
        match e.send(&f) {
            Ok(()) => {
                t.sent += 1;
                sent.push_back(f);
            }
            Err(err) => t.send_errors.push(err.to_string()),
        }
        if (k + 1) % burst == 0 || k + 1 == n {
            e.poll_rx(&mut out);
            t.match_delivered(&mut sent, &mut out);
        }
    }
    let explained = refused(e).rx - before.rx;
    t.unexplained = (t.sent - t.intact).saturating_sub(explained);
    t
}

fn report(name: &str, ok: bool, detail: String) -> CheckReport {
    CheckReport::new(name, if ok { CheckResult::Pass } else { CheckResult::Fail }, detail)
}

/// Attach at [`FIRST_MTU`], let `arm` inject faults, run the selected checks. `Err` when
/// the first attach fails (with the backend's error text).
pub fn run_suite<B: Backend>(
    b: B,
    select: &Selection,
    arm: impl FnOnce(&mut B),
    mut on_check: impl FnMut(&str),
) -> Result<SuiteRun<B>, EnicError> {
    let (mut e, note) = Enic::new(b, Policy::Nicqual, Platform::Direct, FIRST_MTU, ENTRIES)?;
    arm(e.backend_mut());
    let mut checks = Vec::new();
    let mut ledger = Ledger::default();
    let mut closes = Vec::new();
    let mut seq = 0u32;
    let mut want = |n: &str| {
        let w = select.wants(n);
        if w {
            on_check(n);
        }
        w
    };
    // Each check's duration: device time from the end of the previous one.
    let mut t_prev = e.backend().now_ns();
    let mut stamp = |checks: &mut Vec<CheckReport>, now: u64| {
        if let Some(c) = checks.last_mut()
            && c.duration_ns == 0
        {
            c.duration_ns = now.saturating_sub(t_prev);
        }
        t_prev = now;
    };
    let res = e.resources();
    if want("resources") {
        let detail = format!(
            "{} entries, all inside their BAR: DEVCMD at {:#x}; {} WQ at {:#x}; {} RQ at {:#x}; {} CQ at {:#x}; {} INTR_CTRL{}",
            res.entries,
            res.devcmd,
            res.wq_count,
            res.wq,
            res.rq_count,
            res.rq,
            res.cq_count,
            res.cq,
            res.intr_count,
            res.intr.map_or(String::new(), |o| format!(" at {o:#x}"))
        );
        checks.push(report("resources", true, detail));
        stamp(&mut checks, e.backend().now_ns());
    }
    if want("devcmd") {
        let mtu = enic::devcmd(e.backend_mut(), &res, hw::CMD_DEV_SPEC, [hw::ENET_CONFIG_MTU, 2]);
        let mac = enic::devcmd(e.backend_mut(), &res, hw::CMD_GET_MAC_ADDR, [0, 0]);
        let r = match (mtu, mac) {
            (Ok(m), Ok(a)) => {
                let same_mac = a.to_le_bytes().get(..6) == Some(&e.mac()[..]);
                let ok = m == u64::from(e.adapter_mtu()) && same_mac;
                report(
                    "devcmd",
                    ok,
                    format!(
                        "open, init, enable done; CMD_DEV_SPEC mtu {m} (at bring-up {}), MAC {}{}{}",
                        e.adapter_mtu(),
                        crate::record::fmt_mac(e.mac()),
                        if same_mac { "" } else { " (read back differently)" },
                        note.map_or(String::new(), |n| format!("; {n}"))
                    ),
                )
            }
            (Err(x), _) | (_, Err(x)) => report("devcmd", false, x.to_string()),
        };
        checks.push(r);
        stamp(&mut checks, e.backend().now_ns());
    }
    if want("rings") {
        let mut bad = Vec::new();
        let wq0_cq = e.pair_cqs(0).map_or(0, |(_, tx)| tx);
        let tx_cq = res.cq + u64::from(wq0_cq) * hw::VNIC_RES_STRIDE;
        let regs = [
            ("WQ0 ring_size", res.wq + hw::Q_RING_SIZE, ENTRIES),
            ("WQ0 enable", res.wq + hw::Q_ENABLE, 1),
            ("RQ0 ring_size", res.rq + hw::Q_RING_SIZE, ENTRIES),
            ("RQ0 enable", res.rq + hw::Q_ENABLE, 1),
            ("WQ0 cq_index", res.wq + hw::Q_CQ_INDEX, wq0_cq),
            ("CQ0 ring_size", res.cq + hw::CQ_RING_SIZE, ENTRIES),
            ("CQ0 color_enable", res.cq + hw::CQ_COLOR_ENABLE, 1),
            ("CQ0 cq_entry_enable", res.cq + hw::CQ_ENTRY_ENABLE, 1),
            ("WQ0's CQ ring_size", tx_cq + hw::CQ_RING_SIZE, ENTRIES),
        ];
        for (name, off, want) in regs {
            let v = e.backend_mut().read32(hw::BAR_REGS, off);
            if v != want {
                bad.push(format!("{name} (BAR0 {off:#x}) reads {v:#x}, programmed {want:#x}"));
            }
        }
        let t = traffic(&mut e, &mut seq, 4, &[60, 1514], 4);
        let ok = bad.is_empty() && t.ok();
        let detail = if bad.is_empty() { format!("control blocks read back; {}", t.summary()) } else { bad.join("; ") };
        checks.push(report("rings", ok, detail));
        stamp(&mut checks, e.backend().now_ns());
    }
    if want("colour-wrap") {
        let laps = 3;
        let n = laps * ENTRIES + 5;
        let t = traffic(&mut e, &mut seq, n, &[60, 128, 1514, 700], ENTRIES / 2);
        let detail = format!("{}; {n} completions per CQ over {ENTRIES}-entry rings ({laps}+ laps)", t.summary());
        checks.push(report("colour-wrap", t.ok(), detail).measure("frames", t.sent as f64, "frames"));
        stamp(&mut checks, e.backend().now_ns());
    }
    if want("interrupts") {
        checks.push(interrupts_check(&mut e, &mut seq));
        stamp(&mut checks, e.backend().now_ns());
    }
    if want("lost-vector") {
        checks.push(lost_vector_check(&mut e, &mut seq));
        stamp(&mut checks, e.backend().now_ns());
    }
    for q in 0..e.pairs() {
        if want(&format!("pair[{q}]")) {
            checks.push(pair_check(&mut e, q, &mut seq));
            stamp(&mut checks, e.backend().now_ns());
        }
    }
    let mut cur = Some(e);
    for mtu in JUMBO_MTUS {
        let name = format!("jumbo[{mtu}]");
        let Some(mut e) = cur.take() else {
            if want(&name) {
                checks.push(CheckReport::new(&name, CheckResult::Na, "not run: an earlier re-attach failed"));
            }
            continue;
        };
        if !want(&name) {
            cur = Some(e);
            continue;
        }
        if e.backend_mut().read32(hw::BAR_REGS, 0) == u32::MAX {
            checks.push(report(&name, false, "the function is gone (BAR0 reads all-ones): not re-attached".into()));
            stamp(&mut checks, e.backend().now_ns());
            cur = Some(e);
            continue;
        }
        ledger.take(&e);
        let (balance, b) = e.close();
        closes.push(balance);
        match Enic::new(b, Policy::Nicqual, Platform::Direct, mtu, ENTRIES) {
            Ok((mut e, note)) => {
                let sizes = [60, (mtu + hw::ETH_HLEN) as usize, (mtu + hw::VLAN_ETH_HLEN) as usize];
                let t = traffic(&mut e, &mut seq, 24, &sizes, 6);
                let detail = format!(
                    "interface MTU {mtu} on a vNIC of MTU {}: buffers {} bytes; sizes {:?}: {}{}",
                    e.adapter_mtu(),
                    e.buf_len(),
                    sizes,
                    t.summary(),
                    note.map_or(String::new(), |n| format!("; {n}"))
                );
                checks.push(report(&name, t.ok(), detail));
                stamp(&mut checks, e.backend().now_ns());
                cur = Some(e);
            }
            Err(err) => {
                // The backend went with the failed attach: nothing left to tear down.
                checks.push(report(&name, false, format!("re-attach at MTU {mtu}: {err}")));
            }
        }
    }
    if let Some(e) = &cur {
        ledger.take(e);
    }
    let now = cur.as_ref().map_or(0, |e| e.backend().now_ns());
    if want("hostile-completions") && ledger.seen == 0 {
        checks.push(CheckReport::new(
            "hostile-completions",
            CheckResult::Na,
            "no completion reached the driver: nothing was validated",
        ));
    } else if want("hostile-completions") {
        let detail = if ledger.refused == 0 {
            "every completion passed validation (type, queue, index, sop/eop, truncated, bytes_written, colour)"
                .to_string()
        } else {
            format!("{} completion(s) refused: {}", ledger.refused, ledger.reasons.join("; "))
        };
        checks.push(report("hostile-completions", ledger.refused == 0, detail).measure(
            "refused",
            ledger.refused as f64,
            "completions",
        ));
        stamp(&mut checks, now);
    }
    Ok(SuiteRun { checks, driver: cur, closes })
}

/// Per frame: the RX vector fires within [`IRQ_BOUND_NS`], the adapter holds one credit,
/// servicing returns it; TX credits are returned by `send`'s own service.
fn interrupts_check<B: Backend>(e: &mut Enic<B>, seq: &mut u32) -> CheckReport {
    let Some((rx, tx)) = e.vectors() else {
        let why = match e.irq_mode() {
            enic::IrqMode::Polled { why } => why.clone(),
            enic::IrqMode::Msix { .. } => String::new(),
        };
        return CheckReport::new("interrupts", CheckResult::Na, format!("no MSI-X: the driver polls ({why})"));
    };
    let n = 32u32;
    let (mut silent, mut bad_credits) = (0u32, Vec::new());
    let mut out = Vec::new();
    for k in 0..n {
        if let Err(err) = e.send(&frame(200, *seq)) {
            return report("interrupts", false, format!("frame {k}: {err}"));
        }
        *seq = seq.wrapping_add(1);
        if e.wait_irq(false, IRQ_BOUND_NS) == 0 {
            silent += 1;
        }
        let before = e.intr_credits(false);
        e.poll_rx(&mut out);
        let after = (e.intr_credits(false), e.intr_credits(true));
        if (before.is_none_or(|c| c == 0) || after != (Some(0), Some(0))) && bad_credits.len() < 3 {
            bad_credits.push(format!(
                "frame {k}: RX credits {before:?} before service, {:?} after; TX {:?}",
                after.0, after.1
            ));
        }
    }
    let ok = silent == 0 && bad_credits.is_empty();
    let mut detail = format!(
        "RX CQ on vector {rx}, TX CQ on vector {tx}: {} of {n} frames interrupted within {} us",
        n - silent,
        IRQ_BOUND_NS / 1000
    );
    if bad_credits.is_empty() {
        detail += "; one credit per completion, returned to 0 by each service";
    }
    if !bad_credits.is_empty() {
        detail = format!("{detail} — not so: {}", bad_credits.join("; "));
    }
    report("interrupts", ok, detail).measure("silent", f64::from(silent), "frames")
}

/// Pair `q` on its own: its control blocks read back as programmed (RQ q on CQ q, WQ q on
/// CQ pairs + q, each CQ interrupting on the vector of its number); [`PAIR_FRAMES`] frames
/// sent on WQ q come back on RQ q intact and in order, none on another RQ, a loss only
/// where the driver refused a completion of this pair; under MSI-X each frame interrupts
/// on the pair's RX and its TX vector within [`IRQ_BOUND_NS`], the RX CQ holds a credit
/// before its service and both CQs hold none after.
fn pair_check<B: Backend>(e: &mut Enic<B>, q: u32, seq: &mut u32) -> CheckReport {
    let name = format!("pair[{q}]");
    let Some((rx_cq, tx_cq)) = e.pair_cqs(q) else {
        return CheckReport::new(&name, CheckResult::Na, format!("the driver brought up {} pair(s)", e.pairs()));
    };
    let res = e.resources();
    let at = |base: u64, i: u32| base + u64::from(i) * hw::VNIC_RES_STRIDE;
    let (rq, wq, crx, ctx) = (at(res.rq, q), at(res.wq, q), at(res.cq, rx_cq), at(res.cq, tx_cq));
    let vectors = e.pair_vectors(q);
    let mut regs = vec![
        (format!("RQ{q} ring_size"), rq + hw::Q_RING_SIZE, ENTRIES),
        (format!("RQ{q} enable"), rq + hw::Q_ENABLE, 1),
        (format!("RQ{q} cq_index"), rq + hw::Q_CQ_INDEX, rx_cq),
        (format!("WQ{q} ring_size"), wq + hw::Q_RING_SIZE, ENTRIES),
        (format!("WQ{q} enable"), wq + hw::Q_ENABLE, 1),
        (format!("WQ{q} cq_index"), wq + hw::Q_CQ_INDEX, tx_cq),
        (format!("CQ{rx_cq} ring_size"), crx + hw::CQ_RING_SIZE, ENTRIES),
        (format!("CQ{tx_cq} ring_size"), ctx + hw::CQ_RING_SIZE, ENTRIES),
    ];
    if vectors.is_some() {
        regs.push((format!("CQ{rx_cq} interrupt_offset"), crx + hw::CQ_INTERRUPT_OFFSET, rx_cq));
        regs.push((format!("CQ{tx_cq} interrupt_offset"), ctx + hw::CQ_INTERRUPT_OFFSET, tx_cq));
    }
    let mut bad = Vec::new();
    for (what, off, want) in regs {
        let v = e.backend_mut().read32(hw::BAR_REGS, off);
        if v != want {
            bad.push(format!("{what} (BAR0 {off:#x}) reads {v:#x}, programmed {want:#x}"));
        }
    }
    let at_start = e.pair_stats(q).unwrap_or_default();
    let mut t = Traffic::default();
    let (mut rx_heard, mut tx_heard, mut strays) = (0u32, 0u32, 0u64);
    let mut credits = Vec::new();
    let mut sent = std::collections::VecDeque::new();
    let mut out = Vec::new();
    for k in 0..PAIR_FRAMES {
        let f = frame(64 + 100 * q as usize + k as usize, *seq);
        *seq = seq.wrapping_add(1);
        match e.send_on(q, &f) {
            Ok(()) => {
                t.sent += 1;
                sent.push_back(f);
            }
            Err(err) => t.send_errors.push(err.to_string()),
        }
        let before = if vectors.is_some() {
            rx_heard += u32::from(e.wait_irq_on(q, false, IRQ_BOUND_NS) > 0);
            tx_heard += u32::from(e.wait_irq_on(q, true, IRQ_BOUND_NS) > 0);
            e.intr_credits_on(q, false)
        } else {
            None
        };
        for other in (0..e.pairs()).filter(|o| *o != q) {
            strays += e.poll_rx_on(other, &mut Vec::new()).map_or(0, |n| n as u64);
        }
        let _ = e.poll_rx_on(q, &mut out);
        t.match_delivered(&mut sent, &mut out);
        if vectors.is_some() {
            let after = (e.intr_credits_on(q, false), e.intr_credits_on(q, true));
            if (before.is_none_or(|c| c == 0) || after != (Some(0), Some(0))) && credits.len() < 3 {
                credits.push(format!(
                    "frame {k}: CQ{rx_cq} credits {before:?} before service, {:?} after; CQ{tx_cq} {:?}",
                    after.0, after.1
                ));
            }
        }
    }
    let at_end = e.pair_stats(q).unwrap_or_default();
    let explained = at_end.rx_refused - at_start.rx_refused;
    let credits_returned = (at_end.rx_credits_returned + at_end.tx_credits_returned)
        - (at_start.rx_credits_returned + at_start.tx_credits_returned);
    t.unexplained = (t.sent - t.intact).saturating_sub(explained);
    let mut detail = format!("RQ{q} on CQ{rx_cq}, WQ{q} on CQ{tx_cq}: {}", t.summary());
    if strays > 0 {
        detail += &format!(", {strays} frame(s) came back on another RQ");
    }
    let mut ok = bad.is_empty() && t.ok() && strays == 0;
    match vectors {
        Some((rv, tv)) => {
            detail += &format!(
                "; vector {rv} (CQ{rx_cq}) interrupted {rx_heard} and vector {tv} (CQ{tx_cq}) {tx_heard} of {PAIR_FRAMES} frames within {} us",
                IRQ_BOUND_NS / 1000
            );
            for (v, heard, queue) in [(rv, rx_heard, format!("RQ{q}")), (tv, tx_heard, format!("WQ{q}"))] {
                if heard < PAIR_FRAMES {
                    ok = false;
                    detail += &format!("; vector {v} ({queue}'s) silent for {} frame(s)", PAIR_FRAMES - heard);
                }
            }
            if credits.is_empty() {
                detail += "; credits returned to 0 by each service";
            } else {
                ok = false;
                detail += &format!("; credits not so: {}", credits.join("; "));
            }
        }
        None => {
            let why = match e.irq_mode() {
                enic::IrqMode::Polled { why } => why.clone(),
                enic::IrqMode::Msix { .. } => String::new(),
            };
            detail += &format!("; vectors and credits not checked: the driver polls ({why})");
        }
    }
    if !bad.is_empty() {
        detail = format!("{detail}; {}", bad.join("; "));
    }
    report(&name, ok, detail)
        .measure("frames", t.sent as f64, "frames")
        .measure("rx_irqs", f64::from(rx_heard), "frames")
        .measure("tx_irqs", f64::from(tx_heard), "frames")
        .measure("credits_returned", credits_returned as f64, "credits")
}

/// Every MSI-X table entry reads back (a lost vector's reads all-ones), and each vector the
/// driver uses delivers a message when its CQ completes.
fn lost_vector_check<B: Backend>(e: &mut Enic<B>, seq: &mut u32) -> CheckReport {
    if !e.backend().info().msix_table_access {
        return CheckReport::new(
            "lost-vector",
            CheckResult::Na,
            "the backend does not let the driver read the MSI-X table",
        );
    }
    let layout = nicqual_pci::caps::msix_layout(|o, s| e.backend_mut().config_read(o, s)).ok().flatten();
    let Some(l) = layout else {
        let gone = e.backend_mut().config_read(pci::VENDOR_ID, 2).is_ok_and(|v| v == 0xFFFF);
        if gone {
            return report("lost-vector", false, "the function is gone: config space reads all-ones".into());
        }
        return CheckReport::new("lost-vector", CheckResult::Na, "the function has no MSI-X capability");
    };
    let mut lost = Vec::new();
    for v in 0..l.size {
        let base = l.table_off + u64::from(v) * pci::MSIX_ENTRY_SIZE;
        let words: Vec<u32> = [pci::MSIX_ENTRY_ADDR_LO, pci::MSIX_ENTRY_DATA, pci::MSIX_ENTRY_VECTOR_CTRL]
            .into_iter()
            .map(|f| e.backend_mut().read32(l.table_bir, base + f))
            .collect();
        if words.iter().all(|w| *w == u32::MAX) {
            lost.push(format!("vector {v}: table entry reads all-ones"));
        }
    }
    if let Some((rx, _)) = e.vectors() {
        let mut out = Vec::new();
        let mut heard = 0;
        for _ in 0..4 {
            if e.send(&frame(100, *seq)).is_ok() {
                *seq = seq.wrapping_add(1);
                heard += u32::from(e.wait_irq(false, IRQ_BOUND_NS) > 0);
                e.poll_rx(&mut out);
            }
        }
        if heard == 0 {
            lost.push(format!("vector {rx}: 4 RX completions credited, no message"));
        }
    }
    let detail = if lost.is_empty() {
        format!("{} table entries read back; the RX vector delivered", l.size)
    } else {
        lost.join("; ")
    };
    report("lost-vector", lost.is_empty(), detail)
}

#[cfg(test)]
mod tests;
