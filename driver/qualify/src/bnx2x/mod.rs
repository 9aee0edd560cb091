//! The bnx2x qualification suite: identity and MSI-X, ring bring-up, RX/TX across
//! next-page boundaries, TPA integrity, jumbo loopback, interrupts per fast-path vector,
//! lost-vector detection, DMA balance at teardown, device presence.
//!
//! Each datapath check attaches the driver afresh on the same backend (the rings it needs:
//! TPA on or off, MTU 1500 or 9000, pool or streaming buffers), runs its traffic in MAC
//! loopback, checks every byte, and closes the driver; the close's DMA balance feeds
//! `dma-mappings-balanced`. So a fault that breaks one completion (`hostile-cqe:N`) fails
//! the check whose traffic carried it, and the others still run on a clean attach; the
//! device (and its armed fault plan) is the same throughout.

use crate::i82574::Selection;
use nicqual_dma::dmamap::{DmaApi, SharedPlatform};
use nicqual_dma::swiotlb::DeviceName;
use nicqual_nics::bnx2x::{Bnx2x, Bnx2xConfig, Bnx2xError, BufferMode, XmitOutcome};
use nicqual_pci::{Backend, CheckReport, CheckResult};

/// Check names in run order (`[*]` expands per vector or queue).
pub const SUITE: &[&str] = &[
    "identity",
    "msix-table[*]",
    "ring-bring-up",
    "rx-tx-pages",
    "tpa-integrity",
    "jumbo-loopback",
    "interrupts[*]",
    "lost-vector",
    "dma-mappings-balanced",
    "device-present",
];

/// Suite options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fast-path queues to use (vectors: 1 + queues).
    pub queues: usize,
    /// Frames of the RX/TX page-boundary check.
    pub frames: u32,
    /// Which checks are reported (the others still run: later checks build on them).
    pub select: Selection,
}

impl Default for Options {
    fn default() -> Self {
        Options { queues: 2, frames: 3000, select: Selection::default() }
    }
}

/// Every check name for `queues` queues, in run order.
pub fn check_names(queues: usize) -> Vec<String> {
    let mut v = Vec::new();
    for c in SUITE {
        match *c {
            "msix-table[*]" => v.extend((0..=queues).map(|i| format!("msix-table[{i}]"))),
            "interrupts[*]" => {
                v.push("interrupts[default]".into());
                v.extend((0..queues).map(|q| format!("interrupts[q{q}]")));
            }
            c => v.push(c.to_string()),
        }
    }
    v
}

/// What the suite learnt about the device, for the record.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub vendor: u16,
    pub device: u16,
    pub part: &'static str,
    pub gone: bool,
}

struct Runner<'a, B: Backend> {
    backend: Option<B>,
    platform: SharedPlatform,
    opts: Options,
    reports: Vec<CheckReport>,
    on_check: &'a mut dyn FnMut(&CheckReport),
    /// Close reports of every attach (for `dma-mappings-balanced`).
    closes: Vec<(String, CheckReport)>,
    /// Per vector: status block moves that should have interrupted, messages seen.
    irq: Vec<(u64, u64)>,
}

impl<B: Backend> Runner<'_, B> {
    fn push(&mut self, name: &str, result: CheckResult, detail: String, t0: u64) {
        if !self.opts.select.wants(name) {
            return;
        }
        let now = self.backend.as_ref().map_or(t0, |b| b.now_ns());
        let mut r = CheckReport::new(name, result, detail);
        r.duration_ns = now.saturating_sub(t0);
        (self.on_check)(&r);
        self.reports.push(r);
    }

    fn now(&self) -> u64 {
        self.backend.as_ref().map_or(0, |b| b.now_ns())
    }

    /// Attach with `cfg`, run `f`, close; the result of `f` (or the attach error).
    fn with_driver<T>(
        &mut self,
        what: &str,
        cfg: Bnx2xConfig,
        f: impl FnOnce(&mut Bnx2x<B>) -> Result<T, String>,
    ) -> Result<T, String> {
        let Some(b) = self.backend.take() else { return Err("backend lost by an earlier check".into()) };
        let dma = DmaApi::new(DeviceName::new("bnx2x", "qualify"), self.platform.clone(), u64::MAX);
        let mut d = match Bnx2x::try_attach(b, dma, cfg) {
            Ok(d) => d,
            Err((e, b)) => {
                self.backend = Some(b);
                return Err(format!("attach: {e}"));
            }
        };
        let r = f(&mut d);
        let (report, b) = d.close();
        self.backend = Some(b);
        self.closes.push((what.to_string(), report));
        r
    }
}

/// Send `frames` (each as `parts`) on queue `q` in batches, poll everything back, return the
/// packets received.
fn exchange<B: Backend>(
    d: &mut Bnx2x<B>,
    q: usize,
    frames: &[Vec<u8>],
    split: &[usize],
    batch: usize,
) -> Result<Vec<(Vec<u8>, u16)>, String> {
    let mut got = Vec::with_capacity(frames.len());
    for chunk in frames.chunks(batch.max(1)) {
        for f in chunk {
            let mut parts: Vec<&[u8]> = Vec::new();
            let mut rest: &[u8] = f;
            for &n in split {
                let (a, b) = rest.split_at(n.min(rest.len()));
                parts.push(a);
                rest = b;
            }
            parts.push(rest);
            parts.retain(|p| !p.is_empty());
            match d.xmit(q, &parts).map_err(|e| e.to_string())? {
                XmitOutcome::Queued => {}
                XmitOutcome::Busy => {
                    return Err(format!("queue {q}: TX ring busy with {} in flight", d.tx_in_flight(q)));
                }
                XmitOutcome::Dropped(e) => return Err(format!("queue {q}: TX mapping failed: {e}")),
            }
        }
        d.doorbell(q).map_err(|e| e.to_string())?;
        poll_until_done(d, q, &mut got)?;
    }
    Ok(got)
}

/// Poll queue `q` until nothing is in flight (or the driver's TX timeout says why not).
fn poll_until_done<B: Backend>(d: &mut Bnx2x<B>, q: usize, got: &mut Vec<(Vec<u8>, u16)>) -> Result<(), String> {
    let timeout = d.config().tx_timeout_ns;
    for _ in 0..4 {
        d.poll(q, 4096, |data, meta| got.push((data.to_vec(), meta.segments))).map_err(|e| e.to_string())?;
        if d.tx_in_flight(q) == 0 {
            return Ok(());
        }
        d.backend_mut().wait(timeout / 2 + 1);
    }
    Err(format!("queue {q}: {} packets never completed", d.tx_in_flight(q)))
}

/// A seeded non-IP frame (ethertype 0x88B5) naming its sequence number.
pub fn test_frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len.max(18)).map(|i| (seq as usize * 131 + i * 7) as u8).collect();
    for (d, s) in f.iter_mut().zip([0xFF; 12].iter().chain([0x88, 0xB5].iter()).chain(seq.to_le_bytes().iter())) {
        *d = *s;
    }
    f
}

/// An IPv4/TCP segment (no options) with `payload`.
pub fn tcp_segment(seq: u32, payload: &[u8], flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; 54];
    let mut put = |at: usize, b: &[u8]| {
        if let Some(d) = f.get_mut(at..at + b.len()) {
            d.copy_from_slice(b);
        }
    };
    put(12, &[0x08, 0x00, 0x45]);
    put(16, &((40 + payload.len()) as u16).to_be_bytes());
    put(23, &[6]);
    put(26, &[10, 0, 0, 1, 10, 0, 0, 2, 0x9c, 0x40, 0x14, 0x51]);
    put(38, &seq.to_be_bytes());
    put(46, &[0x50, flags]);
    f.extend_from_slice(payload);
    f
}

fn compare(sent: &[Vec<u8>], got: &[(Vec<u8>, u16)]) -> Result<(), String> {
    if got.len() != sent.len() {
        return Err(format!("{} frames sent, {} received", sent.len(), got.len()));
    }
    match sent.iter().zip(got).position(|(s, (g, _))| s != g) {
        Some(i) => Err(format!("frame {i} differs ({} bytes sent, {} received)", sent[i].len(), got[i].0.len())),
        None => Ok(()),
    }
}

/// Run the suite on `backend` (whose device has any fault plan armed already). Returns
/// the reports, the backend (every attach hands it back; `None` would be a suite bug), and
/// what was seen of the device.
pub fn run_suite<B: Backend>(
    backend: B,
    platform: SharedPlatform,
    opts: Options,
    on_check: &mut dyn FnMut(&CheckReport),
) -> (Vec<CheckReport>, Option<B>, Seen) {
    let queues = opts.queues;
    let mut r = Runner {
        backend: Some(backend),
        platform,
        opts,
        reports: Vec::new(),
        on_check,
        closes: Vec::new(),
        irq: vec![(0, 0); queues + 1],
    };
    let mut seen = Seen::default();
    let base = Bnx2xConfig { queues, interrupts: false, tx_timeout_ns: 2_000_000, ..Bnx2xConfig::new(1500) };

    // identity + msix-table[v]
    let t0 = r.now();
    let id = r.with_driver("identity", Bnx2xConfig { interrupts: true, ..base.clone() }, |d| {
        let id = d.identity();
        let entries: Vec<Result<Option<(u64, u32)>, Bnx2xError>> =
            (0..=queues as u16).map(|v| d.check_msix_entry(v)).collect();
        Ok((id, d.backend_info().msix_table_access, entries))
    });
    match id {
        Ok((id, access, entries)) => {
            seen.vendor = id.vendor;
            seen.device = id.device;
            seen.part = id.part();
            r.push(
                "identity",
                CheckResult::Pass,
                format!(
                    "{:04x}:{:04x} {}; MSI-X enabled with {} vectors (default status block + {queues} fast-path)",
                    id.vendor,
                    id.device,
                    id.part(),
                    queues + 1
                ),
                t0,
            );
            for (v, e) in entries.into_iter().enumerate() {
                let name = format!("msix-table[{v}]");
                match e {
                    Ok(Some((addr, data))) => {
                        r.push(&name, CheckResult::Pass, format!("address {addr:#x}, data {data:#x}"), t0)
                    }
                    Ok(None) if !access => r.push(
                        &name,
                        CheckResult::Na,
                        "the MSI-X table is the kernel's on this backend (not readable by the driver)".into(),
                        t0,
                    ),
                    Ok(None) => r.push(&name, CheckResult::Error, "no entry".into(), t0),
                    Err(e) => r.push(&name, CheckResult::Fail, e.to_string(), t0),
                }
            }
        }
        Err(e) => {
            r.push("identity", CheckResult::Fail, e.clone(), t0);
            for v in 0..=queues {
                r.push(&format!("msix-table[{v}]"), CheckResult::Error, format!("no driver: {e}"), t0);
            }
        }
    }

    // ring-bring-up: Linux-shaped rings on every queue, TPA on, streaming buffers.
    let t0 = r.now();
    let cfg = Bnx2xConfig {
        rx_bd_pages: 2,
        tx_bd_pages: 2,
        sge_pages: 1,
        tpa: true,
        buffers: BufferMode::Streaming,
        ..base.clone()
    };
    let posted = cfg.rx_posted();
    let res = r.with_driver("ring-bring-up", cfg, |d| {
        let c = d.census();
        let want_rx = posted * queues;
        if c.rx_bd_buffers != want_rx || c.live_mappings != c.rx_bd_buffers + c.sge_pages {
            return Err(format!(
                "{} RX buffers posted (want {want_rx}), {} SGE pages, {} streaming mappings",
                c.rx_bd_buffers, c.sge_pages, c.live_mappings
            ));
        }
        Ok(format!(
            "{queues} queues up: {} RX BDs ({posted} each, 2 pages), {} SGE pages, RCQ 16 pages, TX 2 pages; {} streaming mappings, {} coherent blocks",
            c.rx_bd_buffers, c.sge_pages, c.live_mappings, c.coherent
        ))
    });
    push_result(&mut r, "ring-bring-up", res, t0);

    // rx-tx-pages: many frames through small rings, byte-exact.
    let t0 = r.now();
    let n = r.opts.frames;
    let cfg = Bnx2xConfig { rx_bd_pages: 2, tx_bd_pages: 2, ..base.clone() };
    let res = r.with_driver("rx-tx-pages", cfg, |d| {
        let frames: Vec<Vec<u8>> = (0..n).map(|s| test_frame(s, 60 + (s as usize * 37) % 1454)).collect();
        let got = exchange(d, 0, &frames, &[], 40)?;
        compare(&frames, &got)?;
        let rx_laps = f64::from(n) / (2.0 * 510.0);
        let rcq_pages = n / 63;
        let tx_pages = 2 * n / 255;
        Ok(format!(
            "{n} frames byte-exact: RX chain (2 pages) wrapped {rx_laps:.1} times, {rcq_pages} RCQ and {tx_pages} TX next-page links crossed"
        ))
    });
    push_result(&mut r, "rx-tx-pages", res, t0);

    // tpa-integrity: TCP bursts coalesced; payload byte-exact; SGE pages back on the ring.
    let t0 = r.now();
    let cfg = Bnx2xConfig { tpa: true, buffers: BufferMode::Streaming, ..base.clone() };
    let res = r.with_driver("tpa-integrity", cfg, |d| {
        let sges = d.census().sge_pages;
        let stream: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let (mut off, mut seq, mut frames) = (0usize, 1u32, Vec::new());
        let mut bursts = Vec::new();
        for b in 0..16 {
            let segs = 2 + b % 8;
            bursts.push(segs);
            for k in 0..segs {
                let len = 1448.min(stream.len() - off);
                let f = tcp_segment(seq, &stream[off..off + len], if k == segs - 1 { 0x18 } else { 0x10 });
                frames.push(f);
                seq = seq.wrapping_add(len as u32);
                off += len;
            }
        }
        let mut got = Vec::new();
        let mut at = 0;
        for &segs in &bursts {
            let chunk = &frames[at..at + segs];
            at += segs;
            got.extend(exchange(d, 0, chunk, &[], segs)?);
        }
        if got.len() != bursts.len() {
            return Err(format!("{} bursts sent, {} aggregations received", bursts.len(), got.len()));
        }
        let mut pos = 0;
        for (i, ((pkt, segs), want)) in got.iter().zip(&bursts).enumerate() {
            let payload = pkt.get(54..).unwrap_or_default();
            if usize::from(*segs) != *want || stream.get(pos..pos + payload.len()) != Some(payload) {
                return Err(format!(
                    "aggregation {i}: {segs} segments (want {want}), payload {} bytes not byte-exact at stream offset {pos}",
                    payload.len()
                ));
            }
            pos += payload.len();
        }
        let c = d.census();
        if c.sge_pages != sges || c.tpa_held != 0 {
            return Err(format!("{} of {sges} SGE pages back on the ring, {} aggregations still held", c.sge_pages, c.tpa_held));
        }
        let agg = d.counters(0).unwrap_or_default();
        Ok(format!(
            "{} segments in {} aggregations, {pos} payload bytes byte-exact, {} SGE pages used and all {sges} reposted",
            frames.len(),
            agg.rx_tpa_aggregations,
            agg.rx_tpa_sge_pages
        ))
    });
    push_result(&mut r, "tpa-integrity", res, t0);

    // jumbo-loopback: MTU 9000, streaming, fragmented TX.
    let t0 = r.now();
    let cfg = Bnx2xConfig { buffers: BufferMode::Streaming, ..Bnx2xConfig { mtu: 9000, ..base.clone() } };
    let res = r.with_driver("jumbo-loopback", cfg, |d| {
        let frames: Vec<Vec<u8>> = (0..300u32).map(|s| test_frame(s, 9014 - (s as usize * 13) % 600)).collect();
        let got = exchange(d, 0, &frames, &[1514, 4096], 8)?;
        compare(&frames, &got)?;
        Ok(format!(
            "{} frames of up to 9014 bytes (linear + 2 page fragments on TX) byte-exact; RX buffers {} bytes",
            frames.len(),
            nicqual_nics::bnx2x::rx_buf_size(9000)
        ))
    });
    push_result(&mut r, "jumbo-loopback", res, t0);

    // interrupts[default], interrupts[qN]; lost-vector from the counts.
    let t0 = r.now();
    let res = r.with_driver("interrupts", Bnx2xConfig { interrupts: true, ..base.clone() }, |d| {
        let _ = d.drain_vectors();
        // Per vector: (status block moves, messages), or why the traffic failed.
        let mut out: Vec<Result<(u64, u64), String>> = Vec::new();
        out.push(d.slow_path_nop().map(|_| (1, u64::from(d.wait_vector(0, 1_000_000)))).map_err(|e| e.to_string()));
        for q in 0..queues {
            let mut counts = (0u64, 0u64);
            let mut failed = None;
            for k in 0..4u32 {
                if let Err(e) = exchange_no_poll(d, q, &test_frame(k, 128)) {
                    failed = Some(e);
                    break;
                }
                counts.0 += 1;
                counts.1 += u64::from(d.wait_vector(q as u16 + 1, 1_000_000));
                if let Err(e) = poll_until_done(d, q, &mut Vec::new()) {
                    failed = Some(e);
                    break;
                }
            }
            out.push(failed.map_or(Ok(counts), Err));
        }
        Ok(out)
    });
    let per_vector = match res {
        Ok(v) => v,
        Err(e) => vec![Err(e); queues + 1],
    };
    for (v, res) in per_vector.into_iter().enumerate() {
        let name = if v == 0 { "interrupts[default]".to_string() } else { format!("interrupts[q{}]", v - 1) };
        let what = if v == 0 { "slow-path completion" } else { "fast-path status block update" };
        match res {
            Ok((moved, msgs)) => {
                if let Some(x) = r.irq.get_mut(v) {
                    *x = (moved, msgs);
                }
                let detail = format!("vector {v}: {msgs} message(s) for {moved} {what}(s)");
                r.push(&name, if msgs == moved { CheckResult::Pass } else { CheckResult::Fail }, detail, t0);
            }
            Err(e) => r.push(&name, CheckResult::Fail, e, t0),
        }
    }
    let lost: Vec<String> = r
        .irq
        .iter()
        .enumerate()
        .filter(|(_, (moved, msgs))| *moved > 0 && msgs == &0)
        .map(|(v, (moved, _))| format!("vector {v} lost: status block moved {moved} time(s), no message"))
        .collect();
    let t0 = r.now();
    if lost.is_empty() {
        r.push(
            "lost-vector",
            CheckResult::Pass,
            format!("every vector (0..={queues}) delivered a message for each status block update"),
            t0,
        );
    } else {
        r.push("lost-vector", CheckResult::Fail, lost.join("; "), t0);
    }

    // dma-mappings-balanced: a last streaming run, then every close of the suite.
    let t0 = r.now();
    let cfg = Bnx2xConfig { buffers: BufferMode::Streaming, tpa: true, ..base.clone() };
    let extra = r.with_driver("dma-mappings-balanced", cfg, |d| {
        let frames: Vec<Vec<u8>> = (0..64u32).map(|s| test_frame(s, 200 + s as usize)).collect();
        exchange(d, 0, &frames, &[100], 16).map(|_| d.dma_stats().maps)
    });
    let bad: Vec<String> = r
        .closes
        .iter()
        .filter(|(_, c)| c.result != CheckResult::Pass)
        .map(|(w, c)| format!("{w}: {}", c.detail))
        .collect();
    let attaches = r.closes.len();
    match (bad.is_empty(), extra) {
        (true, Ok(maps)) => r.push(
            "dma-mappings-balanced",
            CheckResult::Pass,
            format!("{attaches} attach/close cycles, every mapping unmapped by the driver ({maps} in the last)"),
            t0,
        ),
        (true, Err(e)) => r.push("dma-mappings-balanced", CheckResult::Error, format!("traffic: {e}"), t0),
        (false, _) => r.push("dma-mappings-balanced", CheckResult::Fail, bad.join("; "), t0),
    }

    // device-present.
    let t0 = r.now();
    let vendor = r.backend.as_mut().map(|b| b.config_read(nicqual_hw::pci::VENDOR_ID, 2));
    match vendor {
        Some(Ok(0xFFFF)) | Some(Err(_)) | None => {
            seen.gone = true;
            r.push("device-present", CheckResult::Fail, "device gone: config space reads all-ones".into(), t0);
        }
        Some(Ok(v)) => r.push("device-present", CheckResult::Pass, format!("vendor id {v:04x} still reads"), t0),
    }
    let reports = std::mem::take(&mut r.reports);
    (reports, r.backend.take(), seen)
}

/// Queue one frame and ring the doorbell, without polling.
fn exchange_no_poll<B: Backend>(d: &mut Bnx2x<B>, q: usize, f: &[u8]) -> Result<(), String> {
    d.xmit(q, &[f]).map_err(|e| e.to_string())?;
    d.doorbell(q).map_err(|e| e.to_string())
}

fn push_result<B: Backend>(r: &mut Runner<'_, B>, name: &str, res: Result<String, String>, t0: u64) {
    match res {
        Ok(d) => r.push(name, CheckResult::Pass, d, t0),
        Err(e) => r.push(name, CheckResult::Fail, e, t0),
    }
}

#[cfg(test)]
mod tests;
