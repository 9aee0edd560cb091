//! The fault soak: traffic between two emulated 82574Ls on a cable, driven by the nicqual
//! driver, under a seeded random fault plan, with every frame accounted for.
//!
//! Device A sends numbered frames (random lengths 60..=1514, random batch sizes) to device
//! B over a [`Cable`] whose A→B direction drops, corrupts (one bit) and truncates frames
//! with seeded probabilities. B runs interrupt-driven with a polling fallback: each round it
//! waits for its RxQ0 vector and, when the interrupt does not come (the plan drops
//! interrupts on that vector and, at a random time, loses a vector for good), finds the
//! frames by polling and counts the round as recovered. At the end B is surprise-removed
//! while A keeps sending; the driver must report the device gone (typed), and the frames
//! sent into the dead port are counted as stranded on the wire.
//!
//! Accounting: every sent frame is either delivered intact (B's driver got exactly the
//! bytes A sent, once) or dropped with a reason, each reason from its own evidence: the
//! wire's drop counter, B's CRCERRS/RUC/ROC/MPC statistics, the wire's queue at removal
//! and its overflow counter. `unaccounted` = sent − delivered − Σ reasons must be 0; a
//! frame delivered with wrong bytes or twice is a failure of its own.

use nicqual_backends::emulated::EmulatedBackend;
use nicqual_dma::mempool::Packet;
use nicqual_hw::i82574::{self as r, IvarEntry};
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_model::wire::{Cable, Direction, WireEnd, WireFaults};
use nicqual_model::{FaultKind, FaultPlan};
use nicqual_nics::DriverError;
use nicqual_nics::i82574::datapath::DatapathConfig;
use nicqual_nics::i82574::{I82574, Options};
use nicqual_pci::Backend;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

type Drv = I82574<EmulatedBackend<Model>>;

const MAC_A: [u8; 6] = [0x02, 0x6e, 0x71, 0x00, 0x00, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0x6e, 0x71, 0x00, 0x00, 0x0b];
const MIN_LEN: usize = 60;
const MAX_LEN: usize = 1514;
/// Frames A sends into the removed port at the end.
const AFTER_REMOVAL: u32 = 16;

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub seed: u64,
    /// Wall-clock time to keep sending (rounds are whole; the removal phase comes after).
    pub duration: Duration,
    /// Alternatively stop after this many rounds (whichever comes first).
    pub max_rounds: Option<u64>,
    /// Set from outside (Ctrl-C) to stop sending after the current round; the removal
    /// phase and the accounting still run, and the report says it was interrupted.
    pub stop: Option<&'static std::sync::atomic::AtomicBool>,
    /// Record the frames A puts on the cable (as sent, before the wire's faults; FCS
    /// stripped) into this pcap file (Ethernet, nanosecond timestamps on the virtual clock).
    pub pcap: Option<std::path::PathBuf>,
}

/// The fault plan the seed chose.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SoakPlan {
    pub wire: WireFaults,
    /// Probability each RX interrupt message of B is dropped.
    pub irq_drop: f64,
    /// B's vector that is lost for good, and when (virtual ns after arming).
    pub lost_vector: u16,
    pub lost_at_ns: u64,
}

/// Counts the soak prints; `unaccounted` must be 0.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SoakReport {
    /// Frames written to `--pcap`, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap_frames: Option<u64>,
    pub seed: u64,
    pub rounds: u64,
    pub sent: u64,
    pub delivered: u64,
    pub dropped_wire: u64,
    pub dropped_crc: u64,
    pub dropped_runt: u64,
    pub dropped_oversize: u64,
    pub dropped_missed: u64,
    pub dropped_wire_overflow: u64,
    pub stranded_at_removal: u64,
    pub unaccounted: i64,
    /// Frames delivered with bytes other than those sent, or a second time (must be 0).
    pub delivered_bad: u64,
    pub duplicates: u64,
    /// What the wire did (for cross-checks: corrupted + truncated frames fail the FCS).
    pub wire_corrupted: u64,
    pub wire_truncated: u64,
    pub rx_irq_rounds: u64,
    pub rx_poll_recovered_rounds: u64,
    pub removal_detected: bool,
    pub removal_error: String,
    pub leaked_mappings: usize,
    pub plan: Option<SoakPlan>,
}

impl SoakReport {
    pub fn ok(&self) -> bool {
        self.unaccounted == 0
            && self.delivered_bad == 0
            && self.duplicates == 0
            && self.removal_detected
            && self.leaked_mappings == 0
    }
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: [(&str, u64); 9] = [
            ("delivered intact", self.delivered),
            ("dropped: wire drop", self.dropped_wire),
            ("dropped: FCS error (CRCERRS; wire corruption/truncation)", self.dropped_crc),
            ("dropped: runt (RUC)", self.dropped_runt),
            ("dropped: oversize (ROC)", self.dropped_oversize),
            ("dropped: missed, no descriptors (MPC)", self.dropped_missed),
            ("dropped: wire queue overflow", self.dropped_wire_overflow),
            ("dropped: stranded on the wire at surprise removal", self.stranded_at_removal),
            ("delivered with wrong bytes or twice", self.delivered_bad + self.duplicates),
        ];
        writeln!(f, "soak: seed {} ({} rounds)", self.seed, self.rounds)?;
        if let Some(p) = &self.plan {
            writeln!(
                f,
                "plan: wire drop {:.4} corrupt {:.4} truncate {:.4}; RX irq drop {:.3}; vector {} lost at {} ns; surprise removal at the end",
                p.wire.drop, p.wire.corrupt, p.wire.truncate, p.irq_drop, p.lost_vector, p.lost_at_ns
            )?;
        }
        writeln!(f, "{:<58} {:>10}", "frames sent", self.sent)?;
        for (k, v) in rows {
            writeln!(f, "  {k:<56} {v:>10}")?;
        }
        writeln!(f, "{:<58} {:>10}", "unaccounted", self.unaccounted)?;
        writeln!(
            f,
            "wire: {} corrupted, {} truncated; RX rounds: {} by interrupt, {} recovered by polling (interrupt lost)",
            self.wire_corrupted, self.wire_truncated, self.rx_irq_rounds, self.rx_poll_recovered_rounds
        )?;
        writeln!(
            f,
            "surprise removal: {}; DMA windows left mapped after shutdown: {}",
            if self.removal_detected {
                format!("reported by the driver ({})", self.removal_error)
            } else {
                "NOT detected".into()
            },
            self.leaked_mappings
        )?;
        write!(f, "{}", if self.ok() { "PASS" } else { "FAIL" })
    }
}

/// Errors that stop a soak before it can account (setup failed, the driver failed on a
/// healthy device).
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("soak seed {seed}: {what}: {err}")]
    Driver { seed: u64, what: &'static str, err: DriverError },
    #[error("soak seed {seed}: {what}")]
    Harness { seed: u64, what: String },
    #[error("soak: pcap {path}: {err}")]
    Pcap { path: String, err: std::io::Error },
}

/// Frame `seq` of `len` bytes (no FCS), addressed A→B.
pub fn frame(len: usize, seq: u32) -> Vec<u8> {
    let mut f: Vec<u8> =
        (0..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq.wrapping_mul(7)) as u8).collect();
    for (dst, src) in
        f.iter_mut().zip(MAC_B.iter().chain(MAC_A.iter()).chain([0x88u8, 0xB5].iter()).chain(seq.to_be_bytes().iter()))
    {
        *dst = *src;
    }
    f
}

fn seq_of(f: &[u8]) -> Option<u32> {
    let b: [u8; 4] = f.get(14..18)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn device(mac: [u8; 6], end: WireEnd, seed: u64) -> Result<Drv, SoakError> {
    let mut model = Model::new(Config { mac, ..Config::default() });
    model.connect(end);
    let mut d = I82574::attach(EmulatedBackend::new(model, "model:i82574l"), Options::default())
        .map_err(|err| SoakError::Driver { seed, what: "attach", err })?;
    d.bring_up().map_err(|err| SoakError::Driver { seed, what: "bring-up", err })?;
    d.setup_datapath(DatapathConfig { ring_size: 256, pool_entries: 512, ..Default::default() })
        .map_err(|err| SoakError::Driver { seed, what: "datapath setup", err })?;
    Ok(d)
}

/// B's statistics registers are clear-on-read: add them up every round.
#[derive(Default)]
struct RxStats {
    crc: u64,
    runt: u64,
    oversize: u64,
    missed: u64,
}

impl RxStats {
    fn collect(&mut self, b: &mut Drv) -> Result<(), DriverError> {
        self.crc += u64::from(b.read(r::CRCERRS)?);
        self.runt += u64::from(b.read(r::RUC)?);
        self.oversize += u64::from(b.read(r::ROC)?);
        self.missed += u64::from(b.read(r::MPC)?);
        Ok(())
    }
}

/// Tracks which frames were sent and which arrived.
struct Ledger {
    lens: Vec<usize>,
    got: Vec<bool>,
    report: SoakReport,
}

impl Ledger {
    fn receive(&mut self, bytes: &[u8]) {
        let Some(seq) = seq_of(bytes) else {
            self.report.delivered_bad += 1;
            return;
        };
        let i = seq as usize;
        match (self.lens.get(i), self.got.get(i).copied()) {
            (Some(&len), Some(false)) if bytes == frame(len, seq).as_slice() => {
                if let Some(g) = self.got.get_mut(i) {
                    *g = true;
                }
                self.report.delivered += 1;
            }
            (Some(_), Some(true)) => self.report.duplicates += 1,
            _ => self.report.delivered_bad += 1,
        }
    }
}

/// A sends `n` fresh frames (lengths from `rng`); returns how many the TX ring took.
fn send(a: &mut Drv, ledger: &mut Ledger, rng: &mut ChaCha8Rng, n: u32, seed: u64) -> Result<u64, SoakError> {
    let drv = |what, err| SoakError::Driver { seed, what, err };
    a.tx_clean().map_err(|e| drv("A tx_clean", e))?;
    let mut q: VecDeque<Packet> = VecDeque::new();
    let first = ledger.lens.len() as u32;
    for k in 0..n {
        let len = rng.random_range(MIN_LEN..=MAX_LEN);
        let Some(dp) = a.datapath_mut() else { break };
        let Some(mut p) = dp.pool_mut().alloc() else { break };
        if dp.pool().write(&mut p, &frame(len, first + k)).is_none() {
            dp.pool_mut().free(p);
            return Err(SoakError::Harness { seed, what: format!("frame of {len} bytes does not fit a buffer") });
        }
        ledger.lens.push(len);
        ledger.got.push(false);
        q.push_back(p);
    }
    let took = a.tx_batch(0, &mut q).map_err(|e| drv("A tx_batch", e))?;
    // Frames the ring refused were never sent: forget them (their numbers are the last ones).
    let refused = q.len();
    if let Some(dp) = a.datapath_mut() {
        for p in q {
            dp.pool_mut().free(p);
        }
    }
    for _ in 0..refused {
        ledger.lens.pop();
        ledger.got.pop();
    }
    Ok(took as u64)
}

/// B drains its ring into the ledger; returns frames received.
fn drain(b: &mut Drv, ledger: &mut Ledger) -> Result<u64, DriverError> {
    let mut n = 0;
    loop {
        let mut pkts = Vec::new();
        let got = b.rx_batch(0, &mut pkts, 64)?;
        if let Some(dp) = b.datapath_mut() {
            for p in pkts {
                if let Some(bytes) = dp.pool().to_vec(&p) {
                    ledger.receive(&bytes);
                } else {
                    ledger.report.delivered_bad += 1;
                }
                dp.pool_mut().free(p);
            }
        }
        n += got as u64;
        if got == 0 {
            return Ok(n);
        }
    }
}

/// Run one soak.
pub fn run(cfg: &SoakConfig) -> Result<SoakReport, SoakError> {
    let seed = cfg.seed;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let drv = |what, err| SoakError::Driver { seed, what, err };
    let wire = WireFaults {
        seed: rng.random(),
        drop: rng.random_range(0.0..0.02),
        corrupt: rng.random_range(0.0..0.02),
        truncate: rng.random_range(0.0..0.01),
        duplicate: 0.0,
    };
    let cable = Cable::new();
    let (ea, eb) = cable.ends();
    let mut a = device(MAC_A, ea, seed)?;
    let mut b = device(MAC_B, eb, seed)?;
    cable.set_faults(Direction::AToB, wire);
    if let Some(p) = &cfg.pcap {
        cable.tap(Direction::AToB, p).map_err(|err| SoakError::Pcap { path: p.display().to_string(), err })?;
    }
    let rx_vec =
        b.route(IvarEntry::RxQ0).ok_or_else(|| SoakError::Harness { seed, what: "B has no RxQ0 vector".into() })?;
    let irq_drop = rng.random_range(0.0..0.3);
    let lost_vector = rng.random_range(0..nicqual_nics::i82574::VECTORS);
    let lost_at_ns = rng.random_range(0..2_000_000_000u64);
    let plan = FaultPlan::new(rng.random())
        .with(FaultKind::DropIrq { vector: rx_vec, probability: irq_drop }, 0)
        .with(FaultKind::LoseVector { vector: lost_vector }, lost_at_ns);
    b.backend_mut().device_mut().arm_faults(plan.clone());
    let mut ledger = Ledger {
        lens: Vec::new(),
        got: Vec::new(),
        report: SoakReport {
            seed,
            plan: Some(SoakPlan { wire, irq_drop, lost_vector, lost_at_ns }),
            ..Default::default()
        },
    };
    let mut stats = RxStats::default();
    let start = Instant::now();
    let mut rounds = 0u64;
    let stopped = || cfg.stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
    while start.elapsed() < cfg.duration && cfg.max_rounds.is_none_or(|m| rounds < m) && !stopped() {
        rounds += 1;
        let n = rng.random_range(1..=32);
        ledger.report.sent += send(&mut a, &mut ledger, &mut rng, n, seed)?;
        // The frames land in B at the end of the first wait (the model takes the wire when
        // time passes); the second lets B's delay timer and interrupt throttling expire.
        b.backend_mut().wait(rng.random_range(1_000..50_000));
        b.backend_mut().wait(200_000);
        let fired = b.drain_notifiers().map_err(|e| drv("B drain_notifiers", e))?;
        let got = drain(&mut b, &mut ledger).map_err(|e| drv("B rx_batch", e))?;
        if fired.contains(&rx_vec) {
            ledger.report.rx_irq_rounds += 1;
        } else if got > 0 {
            // The message was lost while the cause auto-masked itself: re-arm it as NAPI's
            // completion does, or the queue would stay silent for good.
            ledger.report.rx_poll_recovered_rounds += 1;
            b.service_vector(rx_vec).map_err(|e| drv("B re-arm RxQ0", e))?;
        }
        stats.collect(&mut b).map_err(|e| drv("B statistics", e))?;
    }
    // Everything on the wire reaches B, then B is drained and its counters final.
    b.backend_mut().wait(1_000_000);
    drain(&mut b, &mut ledger).map_err(|e| drv("B final rx_batch", e))?;
    stats.collect(&mut b).map_err(|e| drv("B statistics", e))?;
    // Surprise removal of B while A keeps sending.
    b.backend_mut().device_mut().arm_faults(plan.with(FaultKind::SurpriseRemoval, 0));
    ledger.report.sent += send(&mut a, &mut ledger, &mut rng, AFTER_REMOVAL, seed)?;
    a.backend_mut().wait(1_000_000);
    b.backend_mut().wait(1_000_000);
    let mut pkts = Vec::new();
    let after = b.rx_batch(0, &mut pkts, 64).and_then(|_| b.read(r::STATUS));
    if let Err(e) = &after {
        ledger.report.removal_detected = e.is_device_gone() && b.is_gone();
        ledger.report.removal_error = e.to_string();
    }
    if !pkts.is_empty() {
        return Err(SoakError::Harness { seed, what: format!("{} frames received from a removed device", pkts.len()) });
    }
    let ws = cable.stats(Direction::AToB);
    let pcap_frames = match &cfg.pcap {
        Some(p) => {
            let n = cable
                .close_tap(Direction::AToB)
                .map_err(|err| SoakError::Pcap { path: p.display().to_string(), err })?;
            if cable.tap_errors(Direction::AToB) > 0 {
                let err = std::io::Error::other(format!("{} frames not written", cable.tap_errors(Direction::AToB)));
                return Err(SoakError::Pcap { path: p.display().to_string(), err });
            }
            Some(n)
        }
        None => None,
    };
    let rep = &mut ledger.report;
    rep.pcap_frames = pcap_frames;
    rep.rounds = rounds;
    rep.dropped_wire = ws.dropped;
    rep.dropped_wire_overflow = ws.overflow;
    rep.wire_corrupted = ws.corrupted;
    rep.wire_truncated = ws.truncated;
    rep.dropped_crc = stats.crc;
    rep.dropped_runt = stats.runt;
    rep.dropped_oversize = stats.oversize;
    rep.dropped_missed = stats.missed;
    rep.stranded_at_removal = cable.queued(Direction::AToB) as u64;
    let reasons = rep.dropped_wire
        + rep.dropped_wire_overflow
        + rep.dropped_crc
        + rep.dropped_runt
        + rep.dropped_oversize
        + rep.dropped_missed
        + rep.stranded_at_removal;
    rep.unaccounted = rep.sent as i64 - rep.delivered as i64 - reasons as i64;
    let a_back = a.shutdown();
    let b_back = b.shutdown();
    rep.leaked_mappings = a_back.live_mappings() + b_back.live_mappings();
    Ok(ledger.report)
}

/// Longest soak the command line accepts (a week): a typo must not start a run for decades.
pub const MAX_SOAK: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parse a soak duration in nicqual's one duration syntax (`humantime`: `90s`, `2m`,
/// `250ms`, `1h 30m`; a unit is required); zero and more than [`MAX_SOAK`] are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("duration `{s}`: {e} (examples: 90s, 2m, 250ms, 1h 30m)"))?;
    if d.is_zero() {
        return Err(format!("duration `{s}`: must be longer than zero"));
    }
    if d > MAX_SOAK {
        return Err(format!("duration `{s}`: longer than {}", humantime::format_duration(MAX_SOAK)));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_soaks_account_for_every_frame() {
        for seed in [1u64, 2, 3, 0xdead_beef] {
            let rep = run(&SoakConfig {
                seed,
                duration: Duration::from_secs(3600),
                max_rounds: Some(300),
                stop: None,
                pcap: None,
            })
            .unwrap();
            assert!(rep.ok(), "seed {seed}:\n{rep}");
            assert!(rep.sent > 300, "seed {seed}: {rep}");
            assert!(rep.delivered > 0 && rep.delivered < rep.sent, "seed {seed}: faults must cost frames: {rep}");
            assert_eq!(rep.stranded_at_removal, u64::from(AFTER_REMOVAL), "seed {seed}: {rep}");
            // The FCS check catches what the wire damaged (a frame may be both corrupted and
            // truncated, and is then one FCS error).
            let fcs = rep.dropped_crc + rep.dropped_runt;
            assert!(fcs <= rep.wire_corrupted + rep.wire_truncated, "seed {seed}: {rep}");
            assert!(fcs >= rep.wire_corrupted.max(rep.wire_truncated), "seed {seed}: {rep}");
        }
    }

    #[test]
    fn lost_interrupts_are_recovered_by_polling() {
        let rep = run(&SoakConfig {
            seed: 7,
            duration: Duration::from_secs(3600),
            max_rounds: Some(400),
            stop: None,
            pcap: None,
        })
        .unwrap();
        assert!(rep.ok(), "{rep}");
        assert!(rep.rx_poll_recovered_rounds > 0, "{rep}");
        assert!(rep.rx_irq_rounds > 0, "interrupts work until the plan takes them: {rep}");
    }

    #[test]
    fn frames_carry_their_number() {
        for (len, seq) in [(60usize, 0u32), (1514, 0xfeed_f00d)] {
            let f = frame(len, seq);
            assert_eq!((f.len(), seq_of(&f)), (len, Some(seq)));
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("0s").unwrap_err().contains("longer than zero"));
        assert!(parse_duration("10").is_err(), "a unit is required");
        assert!(parse_duration("100000h").is_err());
    }
}
