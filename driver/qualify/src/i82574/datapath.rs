//! Datapath qualification checks: loopback integrity per frame size, statistics against
//! what was sent, receive overrun and recovery, link changes seen through the Other vector
//! and through STATUS polling.
//!
//! None of them waits on a queue interrupt: completions are found by reading descriptors
//! (bounded polls), so a lost RxQ0/TxQ0 vector fails the vector checks, not these. Only
//! `link-change[Other]` depends on a vector — the one IVAR entry Other names.

use super::SuiteOptions;
use nicqual_dma::mempool::Packet;
use nicqual_hw::i82574::{self as r, Icr, IvarEntry, Status};
use nicqual_hw::i82574_desc as d;
use nicqual_nics::DriverError;
use nicqual_nics::i82574::I82574;
use nicqual_nics::i82574::datapath::DatapathConfig;
use nicqual_pci::{Backend, CheckReport, CheckResult};
use std::collections::VecDeque;

/// Frame sizes of the loopback integrity checks (bytes the driver queues; the MAC appends
/// the FCS). 9018 needs RCTL.LPE.
pub const LOOPBACK_SIZES: [usize; 6] = [60, 64, 128, 512, 1514, 9018];
/// Frames sent per loopback check.
const FRAMES: u32 = 16;
/// Descriptors per ring while checking (small, so an overrun is cheap to provoke).
const CHECK_RING: u32 = 32;
const CHECK_POOL: u32 = 128;
/// The experimental EtherType the check frames carry (IEEE 802 local experimental 1).
const ETHERTYPE: [u8; 2] = [0x88, 0xB5];

fn report(result: CheckResult, detail: impl Into<String>) -> CheckReport {
    CheckReport::new("", result, detail)
}

/// FNV-1a, 64-bit: printed for both sides when a frame differs (frames are compared byte for
/// byte).
pub(super) fn digest(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ x as u64).wrapping_mul(0x0100_0000_01b3))
}

/// A broadcast check frame of `len` bytes: header, then `seq`, then a pattern that differs
/// per frame and per size (xorshift), so a swapped or stale buffer cannot pass.
fn check_frame(len: usize, seq: u32, src: [u8; 6]) -> Vec<u8> {
    let mut x = (seq as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ len as u64;
    let mut f = vec![0u8; len];
    // Eight pattern bytes per xorshift step: the checks build thousands of jumbo frames and
    // a per-byte loop dominated the fuzzing harness's time.
    for chunk in f.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = x.to_le_bytes();
        chunk.copy_from_slice(word.get(..chunk.len()).unwrap_or(&word));
    }
    let head = [0xFFu8; 6].into_iter().chain(src).chain(ETHERTYPE).chain(seq.to_be_bytes());
    for (dst, b) in f.iter_mut().zip(head) {
        *dst = b;
    }
    f
}

/// Set the datapath up in MAC loopback for the checks (again only if its shape differs).
pub(super) fn ensure_loopback<B: Backend>(drv: &mut I82574<B>, jumbo: bool) -> Result<(), DriverError> {
    if drv.datapath().is_some_and(|dp| {
        let c = dp.config();
        c.loopback && c.jumbo == jumbo && c.ring_size == CHECK_RING
    }) {
        return Ok(());
    }
    let base = if jumbo { DatapathConfig::jumbo() } else { DatapathConfig::default() };
    drv.setup_datapath(DatapathConfig { ring_size: CHECK_RING, pool_entries: CHECK_POOL, loopback: true, ..base })
}

/// The source MAC of check frames: the device's, or a local one before it was read.
fn src_mac<B: Backend>(drv: &I82574<B>) -> [u8; 6] {
    drv.mac().unwrap_or([0x02, 0, 0, 0, 0, 1])
}

/// Queue `frames` for transmission, cleaning the TX ring as it fills (bounded waits).
/// Returns how many were queued.
pub(super) fn send_frames<B: Backend>(drv: &mut I82574<B>, frames: &[Vec<u8>]) -> Result<usize, DriverError> {
    let mut q: VecDeque<Packet> = VecDeque::new();
    let mut queued = 0;
    let mut idle = 0u64;
    let step = drv.options().poll_step_ns.max(1);
    let bound = drv.options().irq_bound_ns.max(step) * 10;
    for f in frames {
        let Some(dp) = drv.datapath_mut() else { break };
        let Some(mut p) = dp.pool_mut().alloc() else { break };
        if dp.pool().write(&mut p, f).is_none() {
            dp.pool_mut().free(p);
            break;
        }
        q.push_back(p);
    }
    while !q.is_empty() && idle * step <= bound {
        let n = drv.tx_batch(0, &mut q)?;
        queued += n;
        if n == 0 {
            idle += 1;
            drv.backend_mut().wait(step);
        }
    }
    if let Some(dp) = drv.datapath_mut() {
        for p in q {
            dp.pool_mut().free(p);
        }
    }
    Ok(queued)
}

/// Receive until `want` frames arrived or the bound passed; copies them out.
fn collect<B: Backend>(drv: &mut I82574<B>, want: usize, out: &mut Vec<Vec<u8>>) -> Result<(), DriverError> {
    let mut pkts = Vec::new();
    poll_rx(drv, want, out, |drv, out| {
        while drv.rx_batch(0, &mut pkts, 32)? > 0 {}
        if let Some(dp) = drv.datapath_mut() {
            for p in pkts.drain(..) {
                if let Some(v) = dp.pool().to_vec(&p) {
                    out.push(v);
                }
                dp.pool_mut().free(p);
            }
        }
        Ok(())
    })
}

/// Call `recv` (which appends what it received to `out`) until `out` holds `want` items or
/// ten interrupt bounds passed (bounded polls on the backend's clock); then clean TX.
pub(super) fn poll_rx<B: Backend, T>(
    drv: &mut I82574<B>,
    want: usize,
    out: &mut Vec<T>,
    mut recv: impl FnMut(&mut I82574<B>, &mut Vec<T>) -> Result<(), DriverError>,
) -> Result<(), DriverError> {
    let step = drv.options().poll_step_ns.max(1);
    let bound = drv.options().irq_bound_ns.max(step) * 10;
    let t0 = drv.backend().now_ns();
    loop {
        recv(drv, out)?;
        if out.len() >= want || drv.backend().now_ns().saturating_sub(t0) >= bound {
            break;
        }
        drv.backend_mut().wait(step);
    }
    drv.tx_clean()?;
    Ok(())
}

/// Throw away whatever waits in the RX ring (a check starts from an empty ring).
fn drain_rx<B: Backend>(drv: &mut I82574<B>) -> Result<usize, DriverError> {
    let mut junk = Vec::new();
    collect(drv, 0, &mut junk)?;
    Ok(junk.len())
}

/// Write-backs the datapath has refused so far.
fn wb_errors<B: Backend>(drv: &I82574<B>) -> u64 {
    drv.datapath().map_or(0, |dp| dp.counters.wb_errors())
}

/// Compare what came back with what was sent: `None` when identical, else why not.
fn compare(sent: &[Vec<u8>], got: &[Vec<u8>]) -> Option<String> {
    if got.len() != sent.len() {
        return Some(format!("{}/{} frames came back", got.len(), sent.len()));
    }
    for (i, (s, g)) in sent.iter().zip(got).enumerate() {
        if s.len() != g.len() {
            return Some(format!("frame {i}: sent {} bytes, received {}", s.len(), g.len()));
        }
        if s != g {
            let off = s.iter().zip(g.iter()).position(|(a, b)| a != b).unwrap_or(0);
            return Some(format!(
                "frame {i} ({} B): payload digest {:#018x} sent, {:#018x} received; first difference at byte {off}",
                s.len(),
                digest(s),
                digest(g)
            ));
        }
    }
    None
}

/// `loopback[size]`: frames of `size` bytes through MAC loopback, each compared end to
/// end byte for byte.
pub(super) fn check_loopback<B: Backend>(drv: &mut I82574<B>, size: usize) -> Result<CheckReport, DriverError> {
    let jumbo = size + d::FCS_LEN > d::MAX_STD_FRAME;
    ensure_loopback(drv, jumbo)?;
    drain_rx(drv)?;
    let wb0 = wb_errors(drv);
    let src = src_mac(drv);
    let frames: Vec<Vec<u8>> = (0..FRAMES).map(|i| check_frame(size, i, src)).collect();
    let queued = send_frames(drv, &frames)?;
    let mut got = Vec::new();
    collect(drv, queued, &mut got)?;
    let refused = wb_errors(drv) - wb0;
    if refused > 0 {
        let last = drv.datapath().and_then(|dp| dp.recent_errors().last().map(|e| e.to_string()));
        return Ok(report(
            CheckResult::Fail,
            format!("{refused} write-back(s) refused; last: {}", last.unwrap_or_default()),
        ));
    }
    if let Some(why) = compare(frames.get(..queued).unwrap_or_default(), &got) {
        return Ok(report(CheckResult::Fail, format!("{size} B through MAC loopback: {why}")));
    }
    if queued < frames.len() {
        return Ok(report(CheckResult::Fail, format!("only {queued}/{} frames could be queued", frames.len())));
    }
    Ok(report(
            CheckResult::Pass,
            format!(
                "{FRAMES}/{FRAMES} frames of {size} B came back through MAC loopback (RCTL.LBM) intact: length and every byte equal per frame{}",
                if jumbo { "; RCTL.LPE on, 16 KiB buffers" } else { "" }
            ),
        )
        .measure("frames", FRAMES as f64, "frames"))
}

/// Read a 64-bit statistics counter whose low half is at `lo`.
fn read64<B: Backend>(drv: &mut I82574<B>, lo: u32) -> Result<u64, DriverError> {
    // Low half first: reading the high half clears both (read-to-clear pair).
    let l = drv.read(lo)? as u64;
    let h = drv.read(lo + 4)? as u64;
    Ok(h << 32 | l)
}

/// `statistics`: the good/total packet and octet counters agree with the traffic, and
/// they are read-to-clear.
pub(super) fn check_statistics<B: Backend>(
    drv: &mut I82574<B>,
    opts: &SuiteOptions,
) -> Result<CheckReport, DriverError> {
    ensure_loopback(drv, false)?;
    drain_rx(drv)?;
    let c32 =
        [("GPTC", r::GPTC), ("TPT", r::TPT), ("BPTC", r::BPTC), ("GPRC", r::GPRC), ("TPR", r::TPR), ("BPRC", r::BPRC)];
    let c64 = [("GOTC", r::GOTCL), ("TOT", r::TOTL), ("GORC", r::GORCL), ("TOR", r::TORL)];
    // Clear (read-to-clear) before counting.
    for (_, reg) in c32 {
        drv.read(reg)?;
    }
    for (_, reg) in c64 {
        read64(drv, reg)?;
    }
    let src = src_mac(drv);
    let sizes = [60usize, 64, 100, 128, 256, 512, 1000, 1514];
    let frames: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| check_frame(n, i as u32, src)).collect();
    let queued = send_frames(drv, &frames)?;
    let mut got = Vec::new();
    collect(drv, queued, &mut got)?;
    if let Some(why) = compare(&frames, &got) {
        return Ok(report(CheckResult::Fail, format!("traffic for the statistics check: {why}")));
    }
    let n = frames.len() as u64;
    let octets: u64 = frames.iter().map(|f| (f.len() + d::FCS_LEN) as u64).sum();
    let quirk = opts.tx_octets_without_fcs.clone();
    let tx_octets = if quirk.is_some() { octets - n * d::FCS_LEN as u64 } else { octets };
    let mut bad = Vec::new();
    for (name, reg) in c32 {
        let v = drv.read(reg)? as u64;
        if v != n {
            bad.push(format!("{name}={v} (expected {n})"));
        }
    }
    for (name, reg) in c64 {
        let v = read64(drv, reg)?;
        let want = if reg == r::GOTCL || reg == r::TOTL { tx_octets } else { octets };
        if v != want {
            bad.push(format!("{name}={v} (expected {want})"));
        }
    }
    let again = drv.read(r::GPTC)?;
    if again != 0 {
        bad.push(format!("GPTC reads {again} right after being read (not read-to-clear)"));
    }
    if !bad.is_empty() {
        return Ok(report(
            CheckResult::Fail,
            format!("after {n} broadcast frames / {octets} octets: {}", bad.join(", ")),
        ));
    }
    Ok(report(
        CheckResult::Pass,
        format!(
            "{n} broadcast frames: GPTC TPT BPTC GPRC TPR BPRC = {n}; GORC TOR = {octets} octets (FCS included), GOTC TOT = {tx_octets}{}; read-to-clear",
            match &quirk {
                Some(why) => format!(" (known deviation: {why})"),
                None => String::new(),
            }
        ),
    ))
}

/// `rx-overrun`: fill the receive ring without servicing it; frames beyond the ring
/// and the packet buffer must be counted as missed (MPC) with ICR.RXO raised; after the
/// driver drains and refills, traffic must flow intact again.
pub(super) fn check_rx_overrun<B: Backend>(
    drv: &mut I82574<B>,
    opts: &SuiteOptions,
) -> Result<CheckReport, DriverError> {
    ensure_loopback(drv, false)?;
    drain_rx(drv)?;
    drv.drain_notifiers()?;
    drv.clear_other_icr();
    drv.read(r::MPC)?;
    drv.read(r::RNBC)?;
    let posted = drv.datapath().map_or(0, |dp| dp.rx_posted());
    let src = src_mac(drv);
    let burst = 3 * CHECK_RING as usize + 32;
    let frames: Vec<Vec<u8>> = (0..burst as u32).map(|i| check_frame(1514, 1000 + i, src)).collect();
    // Send in pool-sized pieces without receiving: the RX ring keeps its posted slots.
    let mut queued = 0;
    for chunk in frames.chunks(32) {
        queued += send_frames(drv, chunk)?;
    }
    let bound = drv.options().irq_bound_ns;
    drv.backend_mut().wait(bound);
    let mpc = drv.read(r::MPC)?;
    let rnbc = drv.read(r::RNBC)?;
    let icr = drv.read(r::ICR)?;
    let fired = drv.drain_notifiers()?;
    let rxo = (icr | drv.other_icr()) & Icr::RXO.bits() != 0;
    drv.write(r::ICR, (Icr::RXO | Icr::OTHER).bits())?;
    if !drv.polled_entries().contains(&IvarEntry::Other) {
        drv.write(r::IMS, (Icr::OTHER | Icr::OTHER_CAUSES).bits())?;
    }
    let other_v = drv.route(IvarEntry::Other);
    let via = match other_v {
        Some(v) if fired.contains(&v) => format!("delivered on vector {v} (Other)"),
        Some(v) => format!("no message on vector {v} (Other) — seen by reading ICR"),
        None => "seen by reading ICR".to_string(),
    };
    // Recovery: drain everything that waited, then fresh traffic must flow.
    let drained = drain_rx(drv)?;
    let fresh: Vec<Vec<u8>> = (0..8).map(|i| check_frame(512, 5000 + i, src)).collect();
    let q2 = send_frames(drv, &fresh)?;
    let mut got = Vec::new();
    collect(drv, q2, &mut got)?;
    let recovered = compare(&fresh, &got);
    let setup = format!(
        "{queued} frames of 1514 B into {posted} posted descriptors without servicing: MPC={mpc} missed, RNBC={rnbc}"
    );
    let result = if let (Some(why), 0, false, None) = (&opts.rx_overrun_unobservable, mpc, rxo, &recovered) {
        report(
            CheckResult::Na,
            format!(
                "{setup}, no RXO: {} frame(s) vanished uncounted, {drained} delivered after refilling, then 8/8 new frames arrived intact; overrun is not observable here (known deviation: {why})",
                queued.saturating_sub(drained)
            ),
        )
    } else if let (Some(why), 0, true, None) = (&opts.rx_overrun_uncounted, mpc, rxo, &recovered) {
        report(
            CheckResult::Na,
            format!(
                "{setup}, RXO {via}: the overrun was signalled but {} frame(s) vanished without MPC; {drained} delivered after refilling, then 8/8 new frames arrived intact (known deviation: {why})",
                queued.saturating_sub(drained)
            ),
        )
    } else if mpc == 0 {
        report(
            CheckResult::Fail,
            format!(
                "{setup}: the ring overflowed but no frame was counted as missed (ICR={icr:#010x}; {drained} frames delivered after refilling{})",
                recovered.map(|w| format!("; then {w}")).unwrap_or_default()
            ),
        )
    } else if !rxo {
        report(CheckResult::Fail, format!("{setup}, but ICR.RXO was never raised (ICR={icr:#010x})"))
    } else if let Some(why) = recovered {
        report(CheckResult::Fail, format!("{setup}, RXO {via}; after draining {drained} frames: {why}"))
    } else {
        report(
            CheckResult::Pass,
            format!("{setup}, RXO {via}; driver drained {drained} frames, refilled, and 8/8 new frames arrived intact"),
        )
    };
    Ok(result.measure("missed", mpc as f64, "frames"))
}

/// `link-change[Other]` (`via_vector`) and `link-change[polling]`: restart PHY
/// auto-negotiation (BMCR) so the link drops and comes back, and see both edges —
/// through LSC on the Other vector, or, with the Other causes masked as when that
/// vector is lost, by polling STATUS.LU alone.
pub(super) fn check_link_change<B: Backend>(drv: &mut I82574<B>, via_vector: bool) -> Result<CheckReport, DriverError> {
    let other = drv.route(IvarEntry::Other);
    if via_vector && other.is_none() {
        return Ok(report(CheckResult::Na, "IVAR entry Other is not routed"));
    }
    let polled = drv.polled_entries().contains(&IvarEntry::Other);
    drv.wait_link()?;
    drv.drain_notifiers()?;
    drv.clear_other_icr();
    let delivered0 = other.and_then(|v| drv.counters.deliveries.get(v as usize).copied()).unwrap_or(0);
    let other_causes = (Icr::OTHER | Icr::OTHER_CAUSES).bits();
    if !via_vector {
        drv.write(r::IMC, other_causes)?;
    }
    let bmcr = drv.phy_read(r::PHY_CTRL)?;
    let t0 = drv.backend().now_ns();
    drv.phy_write(r::PHY_CTRL, bmcr | r::PHY_CTRL_AUTONEG_ENABLE | r::PHY_CTRL_RESTART_AUTONEG)?;
    let (link_timeout_ns, irq_bound_ns, poll_step_ns) =
        (drv.options().link_timeout_ns, drv.options().irq_bound_ns, drv.options().poll_step_ns);
    let step = 10_000_000u64.min(link_timeout_ns.max(1));
    let (mut down_at, mut up_at) = (None, None);
    for _ in 0..link_timeout_ns / step + 2 {
        let lu = drv.read(r::STATUS)? & Status::LU.bits() != 0;
        let now = drv.backend().now_ns().saturating_sub(t0);
        if !lu && down_at.is_none() {
            down_at = Some(now);
        }
        if lu && down_at.is_some() {
            up_at = Some(now);
            break;
        }
        if via_vector {
            drv.drain_notifiers()?;
        }
        if now >= link_timeout_ns {
            break;
        }
        drv.backend_mut().wait(step);
    }
    // The LSC of the link coming back is raised with STATUS.LU: give it the delivery bound.
    if via_vector {
        let t1 = drv.backend().now_ns();
        while drv.other_icr() & Icr::LSC.bits() == 0 && drv.backend().now_ns().saturating_sub(t1) < irq_bound_ns {
            drv.drain_notifiers()?;
            drv.backend_mut().wait(poll_step_ns.max(1));
        }
        drv.drain_notifiers()?;
    } else {
        drv.write(r::ICR, other_causes)?;
        if !polled {
            drv.write(r::IMS, other_causes)?;
        }
    }
    let ms = |ns: u64| ns as f64 / 1e6;
    let (Some(down), Some(up)) = (down_at, up_at) else {
        let st = drv.read(r::STATUS)?;
        return Ok(report(
            CheckResult::Fail,
            match down_at {
                None => format!(
                    "PHY auto-negotiation restarted (BMCR {:#06x}) but STATUS.LU never went down within {} ms (STATUS={st:#010x})",
                    bmcr | r::PHY_CTRL_AUTONEG_ENABLE | r::PHY_CTRL_RESTART_AUTONEG,
                    link_timeout_ns / 1_000_000
                ),
                Some(d) => format!(
                    "link went down after {:.1} ms and did not come back within {} ms (STATUS={st:#010x})",
                    ms(d),
                    link_timeout_ns / 1_000_000
                ),
            },
        ));
    };
    let edges = format!("link down {:.1} ms and up {:.1} ms after restarting PHY auto-negotiation", ms(down), ms(up));
    if !via_vector {
        return Ok(report(
            CheckResult::Pass,
            format!(
                "Other causes masked (as when vector {} is lost): {edges}, both seen by polling STATUS.LU every {} ms",
                other.map_or("?".to_string(), |v| v.to_string()),
                step / 1_000_000
            ),
        )
        .measure("link_down_up", ms(up), "ms"));
    }
    let v = other.unwrap_or(0);
    let delivered = drv.counters.deliveries.get(v as usize).copied().unwrap_or(0).saturating_sub(delivered0);
    if polled || drv.other_icr() & Icr::LSC.bits() == 0 {
        return Ok(report(
            CheckResult::Fail,
            format!(
                "{edges}, but no LSC arrived on vector {v} (IVAR entry Other){}; {delivered} message(s) on it",
                if polled { ", which recovery gave up to polling" } else { "" }
            ),
        ));
    }
    Ok(report(
        CheckResult::Pass,
        format!("{edges}; LSC delivered on vector {v} (Other), {delivered} message(s), ICR read by its handler"),
    )
    .measure("link_down_up", ms(up), "ms"))
}

/// Release the checks' datapath (rings, pool, mapping).
pub(super) fn end_datapath_checks<B: Backend>(drv: &mut I82574<B>) -> Result<(), DriverError> {
    drv.teardown_datapath()
}
