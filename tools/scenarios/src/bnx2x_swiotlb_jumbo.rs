//! Scenario `bnx2x-swiotlb-jumbo` (seed 001): a XenServer dom0 with a bonded pair of bnx2x
//! ports at MTU 9000 runs out of SWIOTLB space ("PCI-DMA: Out of SW-IOMMU space for 25158
//! bytes at device 0000:04:00.0", 18 such lines of 14 654–33 302 bytes over 1.5 h), then
//! panics from `bnx2x_start_xmit` ("Kernel panic - not syncing: DMA: Random memory could be
//! DMA read", 33 302 bytes).
//!
//! The pool's occupancy is never computed here. Two bnx2x functions of the device model
//! (`model:bnx2x`, 4 fast-path queues each) sit on 10 GbE links (the model's transmitter
//! drains the TX BD chains at the line rate on the virtual clock; the link partner's seeded
//! 802.3x PAUSE frames stop it), each driven by the ring driver
//! (`nicqual_nics::bnx2x::Bnx2x`, streaming mappings like Linux) through the DMA API on
//! the Xen PV memory model with the classic-Xen SWIOTLB. A stationary, seeded traffic
//! model offers it packets:
//!
//! * **rx**: every queue posts `MAX_RX_AVAIL / queues` buffers (Linux
//!   `bnx2x_alloc_fp_mem_at`), each `rx_buf_size(mtu)` bytes (`bnx2x_set_rx_buf_size`)
//!   mapped from-device while posted (`bnx2x_alloc_rx_data`); frames of the MTU arrive from
//!   the wire (Poisson) into the model, which DMAs them into the posted buffers and writes
//!   CQEs; the driver maps a replacement before it unmaps the filled buffer;
//! * **tx**: skbs from netback arrive in batches (Poisson batches, sizes from a log-normal
//!   fitted to the field log) on a queue; the driver maps each linear skb whole
//!   (`bnx2x_start_xmit`, LSO with the MSS of MTU 9000) and rings the doorbell; the model
//!   sends it at the link rate and reports it in the status block's TX consumer when the
//!   wire is done; the driver unmaps it at its next poll (every interrupt-coalescing
//!   period); a queue whose ring is full leaves the skbs in its qdisc (not mapped);
//! * nothing grows: the rates are constant, so the occupancy settles at a steady state (rx
//!   posted buffers that bounce + tx in flight at the offered load) and rises only in bursts
//!   (link pauses, during which tx skbs keep being mapped and none complete).
//!
//! Which mappings hold slots is read back from the drivers (`Bnx2x::bounce_census`: their
//! live mappings by holder) and checked against the pool's count at every sample. What an
//! old kernel did with a mapping the full pool refused (overflow buffer or panic) is the
//! SWIOTLB model's answer (`SwiotlbError::Full::action`).

use super::Scenario;
use super::story::{Platform, Story, check, expect_field_failure, print_checks, record};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_dma::dmamap::{DmaApi, DmaError, DmaPlatform, SharedPlatform};
use nicqual_dma::memory::HostMemory;
use nicqual_dma::swiotlb::{DeviceName, Generation, OldKernelAction, SwiotlbConfig, SwiotlbError};
use nicqual_hw::bnx2x as hw;
use nicqual_model::bnx2x::{Bnx2xDevice, Config as ModelConfig, LinkConfig, PausePlan};
use nicqual_nics::bnx2x::preflight::{Bnx2xDmaConfig, advice, preflight_check};
use nicqual_nics::bnx2x::{Bnx2x, Bnx2xConfig, BounceCensus, Gso, XmitOutcome};
use nicqual_pci::CheckReport;
use nicqual_pci::backend::Backend;
use nicqual_pci::health::CheckResult;
use nicqual_report as rep;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::fmt::Write;

pub const NAME: &str = "bnx2x-swiotlb-jumbo";

pub const SUMMARY: &str = "bnx2x MTU 9000 on Xen dom0: ring driver + model on 10 GbE links with seeded pauses; rx rings + tx in flight in the 64 MiB SWIOTLB; GRO off/on, 64/128 MiB";

pub const SCENARIO: Scenario = Scenario {
    name: NAME,
    summary: SUMMARY,
    run,
    no_wire: Some("the bnx2x model's link has no capture tap: frames to and from its link partner are not recorded"),
};

/// dom0 memory in pages (2 GiB).
const DOM0_PAGES: u64 = 1 << 19;
/// Mean p2m run length, pages (the Xen PV memory model's assumption).
const P2M_RUN_PAGES: u64 = 8;
const MTU: u32 = 9000;
const PORTS: [&str; 2] = ["0000:04:00.0", "0000:04:00.1"];
/// Fast-path queues per port (RSS; each an rx ring and a tx ring).
pub const QUEUES: usize = 4;
/// 10 GbE.
const LINK_BPS: u64 = 10_000_000_000;
/// Tx completions are serviced once per coalescing period (bnx2x `tx_ticks` default 50 us,
/// `bnx2x_init_bp`): the scenario polls every queue at this period.
const TX_COAL_NS: u64 = 50_000;
/// Qdisc backlog per tx queue while the driver's ring is full (`txqueuelen` 1000, one
/// pfifo per queue under `mq`); these skbs are not mapped yet.
const TXQUEUELEN: usize = 1000;
/// Failed tx mappings kept in [`RunResult::tx_failed`].
const MAX_LOGGED: usize = 10_000;
/// Occupancy sample interval.
const SAMPLE_NS: u64 = 1_000_000;
/// Virtual time run after the first failed mapping (the field log repeats for hours).
const TAIL_NS: u64 = 100_000_000;
/// Samples before this are the ring fill and the first queue build-up, not steady state.
const WARMUP_NS: u64 = 10_000_000;
/// After a pause ends the tx queued during it drains (at half the link's load, about as long
/// as the pause lasted); samples within the pause's length plus this are not steady state.
const DRAIN_NS: u64 = 10_000_000;
/// LSO of a TCP skb at MTU 9000: headers Ethernet 14 + IPv4 20 + TCP 32 (timestamps), MSS
/// 9000 - 20 - 32 = 8948.
pub const GSO: Gso = Gso { mss: 8948, l4_offset: 34, tcp_hdr_len: 32 };

/// The 18 failed mapping sizes in the seed's log, bytes (all from `bnx2x_start_xmit` on the
/// transmit path, per the panic's call trace for the last one).
pub const FIELD_TX_SIZES: [usize; 18] = [
    25158, 16918, 17574, 24086, 14654, 30714, 17062, 17014, 21954, 16918, 19034, 15910, 25206, 17014, 17578, 17062,
    19034, 33302,
];

/// The transmit size mix: a log-normal fitted to sizes by maximum likelihood (the mean and
/// sample standard deviation of their logarithms), cut to the skb sizes netback can build
/// (60 bytes to the 64 KiB GSO limit less one: the BDs' 16-bit byte counts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeMix {
    pub mu: f64,
    pub sigma: f64,
    pub min: usize,
    pub max: usize,
}

impl SizeMix {
    pub fn fit(sizes: &[usize]) -> SizeMix {
        let n = sizes.len().max(2) as f64;
        let logs: Vec<f64> = sizes.iter().map(|&s| (s.max(1) as f64).ln()).collect();
        let mu = logs.iter().sum::<f64>() / n;
        let var = logs.iter().map(|l| (l - mu) * (l - mu)).sum::<f64>() / (n - 1.0);
        SizeMix { mu, sigma: var.sqrt(), min: 60, max: 65_535 }
    }

    /// The field's mix.
    pub fn field() -> SizeMix {
        SizeMix::fit(&FIELD_TX_SIZES)
    }

    /// One size (Box-Muller on the seeded generator).
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        ((self.mu + self.sigma * z).exp().round() as usize).clamp(self.min, self.max)
    }

    /// Mean size (of the uncut log-normal).
    pub fn mean(&self) -> f64 {
        (self.mu + self.sigma * self.sigma / 2.0).exp()
    }
}

/// The traffic: constant rates, seeded draws. Every value is an input stated in the story.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    /// Offered transmit load per port (guests' storage writes through netback), Gb/s.
    pub tx_gbps_per_port: f64,
    /// Receive load per port (storage reads, frames of the MTU), Gb/s.
    pub rx_gbps_per_port: f64,
    /// Mean skbs per netback batch (geometric), at most `batch_max`.
    pub batch_mean: f64,
    pub batch_max: u32,
    /// Link-pause episodes per second (both ports: the storage array's congestion pauses the
    /// bond's links together).
    pub pauses_per_s: f64,
    /// Mean maximal PAUSE frames (0xFFFF quanta each) per episode (geometric).
    pub pause_mean_frames: f64,
    /// Virtual time simulated, ns.
    pub duration_ns: u64,
}

impl Traffic {
    /// The scenario's traffic (assumptions, see the story).
    pub const FIELD: Traffic = Traffic {
        tx_gbps_per_port: 5.0,
        rx_gbps_per_port: 1.0,
        batch_mean: 8.0,
        batch_max: 42,
        pauses_per_s: 4.0,
        pause_mean_frames: 8.0,
        duration_ns: 2_500_000_000,
    };

    /// The link partner's pauses for `seed` (the same plan on both links).
    pub fn pause_plan(&self, seed: u64) -> PausePlan {
        PausePlan { seed, per_s: self.pauses_per_s, mean_frames: self.pause_mean_frames.max(1.0) }
    }
}

/// One run's settings.
#[derive(Debug, Clone, Copy)]
pub struct RunSpec {
    pub label: &'static str,
    pub gro: bool,
    pub pool_mib: usize,
}

pub const RUNS: [RunSpec; 3] = [
    RunSpec { label: "gro-off-64mib", gro: false, pool_mib: 64 },
    RunSpec { label: "gro-on-64mib", gro: true, pool_mib: 64 },
    RunSpec { label: "gro-off-128mib", gro: false, pool_mib: 128 },
];

/// What the driver's ring configuration is with `gro`: TPA (what GRO turns on in bnx2x)
/// runs only when the MTU allows it (`bnx2x_mtu_allows_gro`).
pub fn tpa_for(gro: bool) -> bool {
    gro && hw::mtu_allows_gro(MTU)
}

/// The ring driver's configuration for one port (Linux defaults at MTU 9000).
pub fn driver_config(gro: bool) -> Bnx2xConfig {
    Bnx2xConfig {
        tpa: tpa_for(gro),
        interrupts: false,
        rx_ring_size: usize::from(hw::MAX_RX_AVAIL) / QUEUES,
        ..Bnx2xConfig::linux(MTU, QUEUES)
    }
}
/// One occupancy sample.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub t_ns: u64,
    /// `io_tlb_used`.
    pub used: usize,
    /// Both drivers' live mappings by holder.
    pub holders: BounceCensus,
    /// The links were paused at this instant.
    pub paused: bool,
    /// Skbs waiting in the qdiscs (not mapped).
    pub backlog: usize,
}

/// A failed mapping.
#[derive(Debug, Clone)]
pub struct Failure {
    pub t_ns: u64,
    pub port: &'static str,
    pub what: &'static str,
    pub size: usize,
    pub nslots: usize,
    pub used: usize,
    pub largest_free_run: usize,
    /// The kernel's log line.
    pub line: String,
    pub action: OldKernelAction,
    /// The link pause under way (start, length), if any: the burst that exhausted the pool.
    pub pause: Option<(u64, u64)>,
    /// Who held the pool's slots at that moment (both drivers).
    pub holders: BounceCensus,
}

/// Occupancy outside bursts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Steady {
    pub samples: usize,
    pub mean_used: f64,
    pub sd_used: f64,
    pub mean_rx_slots: f64,
    pub mean_tx_slots: f64,
    /// Mean of the second half minus mean of the first half, slots (a trend if large).
    pub drift: f64,
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub spec: RunSpec,
    pub tpa: bool,
    pub duration_ns: u64,
    pub nslabs: usize,
    pub samples: Vec<Sample>,
    pub steady: Steady,
    pub first_failure: Option<Failure>,
    pub first_panic: Option<Failure>,
    /// Failed mappings (the pool's count).
    pub failures: u64,
    /// Failed tx mappings an old kernel would have answered with the overflow buffer: frames
    /// sent with 32 KiB of shared garbage by a driver that did not check the mapping.
    pub tx_overflow_frames: u64,
    /// Each failed tx mapping (the first `MAX_LOGGED`): its size and whether the SWIOTLB
    /// model says an old kernel panicked on it (else: overflow buffer).
    pub tx_failed: Vec<(usize, bool)>,
    pub rx_map_errors: u64,
    pub tx_map_errors: u64,
    pub tx_sent: u64,
    pub tx_busy: u64,
    pub qdisc_drops: u64,
    pub rx_frames: u64,
    /// Frames the model dropped for want of a posted buffer.
    pub rx_no_buffer: u64,
    /// Frames the links put on the wire (LSO segments) and the time they held frames back.
    pub wire_frames: u64,
    pub paused_ns: u64,
    pub peak_used: usize,
    /// The holders at the peak.
    pub peak: BounceCensus,
    /// Holders after the rings were filled, before traffic.
    pub at_open: BounceCensus,
    /// Samples whose holders did not add up to the pool's count (expected: 0).
    pub unaccounted_samples: usize,
    pub pauses: Vec<(u64, u64)>,
    pub min_rx_posted: usize,
    pub teardown: Vec<CheckReport>,
}

fn platform(seed: u64, pool_mib: usize) -> std::io::Result<SharedPlatform> {
    let mem = HostMemory::xen_pv(DOM0_PAGES, P2M_RUN_PAGES, seed);
    DmaPlatform::swiotlb(mem, SwiotlbConfig::with_mib(Generation::ClassicXen, pool_mib))
        .map(DmaPlatform::shared)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Fraction of rx buffers (9472 bytes at offset 64 of a 16 KiB slab object) on this memory
/// that are not machine-contiguous: the bounce fraction the preflight is given.
pub fn scattered_fraction(seed: u64) -> f64 {
    let mem = HostMemory::xen_pv(DOM0_PAGES, P2M_RUN_PAGES, seed);
    let slots = DOM0_PAGES / 4;
    let len = hw::rx_buf_size(MTU) as u64;
    let n = (0..slots).filter(|k| mem.needs_bounce(k * 16384 + u64::from(hw::NET_SKB_PAD), len, u64::MAX)).count();
    n as f64 / slots as f64
}

/// Exponential gap with mean `mean_ns` (at least 1 ns).
fn exp_gap(rng: &mut ChaCha8Rng, mean_ns: f64) -> u64 {
    let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    ((-u.ln() * mean_ns) as u64).max(1)
}

/// Geometric draw with mean `mean` (>= 1), at most `max`.
fn geometric(rng: &mut ChaCha8Rng, mean: f64, max: u32) -> u32 {
    let p = 1.0 / mean.max(1.0);
    let mut n = 1;
    while n < max && !rng.random_bool(p) {
        n += 1;
    }
    n
}

/// The pause that covers `t`, if any.
fn pause_at(pauses: &[(u64, u64)], t: u64) -> Option<(u64, u64)> {
    let i = pauses.partition_point(|&(s, _)| s <= t);
    i.checked_sub(1).and_then(|i| pauses.get(i)).copied().filter(|&(_, e)| e > t)
}

type Port = Bnx2x<EmulatedBackend<Bnx2xDevice>>;

/// A TCP/IPv4 skb's bytes (headers as `GSO` says; the link partner does not parse the
/// payload), long enough for any size of the mix.
fn skb_template() -> Vec<u8> {
    let mut f = vec![0u8; 65_535];
    f[12] = 0x08;
    f[14] = 0x45;
    f[23] = 6;
    f[46] = (GSO.tcp_hdr_len / 4) << 4;
    f[47] = 0x10;
    f
}

/// Both drivers' holders.
pub fn census(ports: &[Port]) -> BounceCensus {
    ports.iter().fold(BounceCensus::default(), |acc, p| acc.plus(&p.bounce_census()))
}

/// One port's traffic state.
struct Lane {
    next_rx: u64,
    next_batch: u64,
    /// Per tx queue: skbs waiting in the qdisc (lengths).
    backlog: Vec<VecDeque<usize>>,
}

struct Sim<'a> {
    p: SharedPlatform,
    ports: Vec<Port>,
    lanes: Vec<Lane>,
    template: &'a [u8],
    r: RunResult,
    /// The pool's failure count already attributed.
    seen_failures: u64,
}

impl Sim<'_> {
    fn pool_used(&self) -> usize {
        self.p.borrow().pool_stats().map_or(0, |s| s.used)
    }

    /// The links' pauses so far (port 0's; both follow the same plan).
    fn pauses(&self) -> Vec<(u64, u64)> {
        self.ports.first().and_then(|p| p.backend().device().link()).map_or_else(Vec::new, |l| l.pauses().to_vec())
    }

    /// Advance port `pi`'s virtual clock to `t` (the model completes what the wire sent).
    fn clock_to(&mut self, pi: usize, t: u64) {
        if let Some(port) = self.ports.get_mut(pi) {
            let now = port.backend().now_ns();
            if t > now {
                port.backend_mut().wait(t - now);
            }
        }
    }

    fn failure(&mut self, e: Option<&DmaError>, t_ns: u64, pi: usize, what: &'static str) {
        let (line, stats) = {
            let pb = self.p.borrow();
            (pb.pool().and_then(|pool| pool.log().last().cloned()).unwrap_or_default(), pb.pool_stats())
        };
        let failures = stats.map_or(0, |s| s.failures);
        let new = failures.saturating_sub(self.seen_failures);
        self.seen_failures = failures;
        self.r.failures += new;
        let holders = census(&self.ports);
        let pauses = self.pauses();
        let f = match e {
            Some(DmaError::Swiotlb(SwiotlbError::Full { size, nslots, used, largest_free_run, action, .. })) => {
                Failure {
                    t_ns,
                    port: PORTS.get(pi).copied().unwrap_or("?"),
                    what,
                    size: *size,
                    nslots: *nslots,
                    used: *used,
                    largest_free_run: *largest_free_run,
                    line,
                    action: action.clone(),
                    pause: pause_at(&pauses, t_ns).map(|(s, e)| (s, e - s)),
                    holders,
                }
            }
            // A failure the driver absorbed (an rx replacement): the pool's log says what.
            _ => {
                let size = hw::rx_buf_size(MTU) as usize;
                Failure {
                    t_ns,
                    port: PORTS.get(pi).copied().unwrap_or("?"),
                    what,
                    size,
                    nslots: nicqual_dma::swiotlb::nr_slots(size),
                    used: self.pool_used(),
                    largest_free_run: 0,
                    line,
                    action: OldKernelAction::OverflowBuffer,
                    pause: pause_at(&pauses, t_ns).map(|(s, e)| (s, e - s)),
                    holders,
                }
            }
        };
        let panic = matches!(f.action, OldKernelAction::Panic { .. });
        if what == "tx linear skb" {
            if !panic {
                self.r.tx_overflow_frames += 1;
            }
            if self.r.tx_failed.len() < MAX_LOGGED {
                self.r.tx_failed.push((f.size, panic));
            }
        }
        if self.r.first_panic.is_none() && matches!(f.action, OldKernelAction::Panic { .. }) {
            self.r.first_panic = Some(f.clone());
        }
        if self.r.first_failure.is_none() {
            self.r.first_failure = Some(f);
        }
    }

    /// Hand an skb of `len` bytes to queue `q` of port `pi`; false when the ring is full.
    fn submit(&mut self, pi: usize, q: usize, now: u64, len: usize) -> bool {
        let template = self.template;
        let Some(port) = self.ports.get_mut(pi) else { return true };
        let Some(skb) = template.get(..len) else { return true };
        match port.xmit_gso(q, &[skb], GSO) {
            Ok(XmitOutcome::Queued) => {
                self.r.tx_sent += 1;
                true
            }
            Ok(XmitOutcome::Busy) => false,
            Ok(XmitOutcome::Dropped(e)) => {
                self.r.tx_map_errors += 1;
                self.failure(Some(&e), now, pi, "tx linear skb");
                true
            }
            // A refused request (a queue stopped on an error): dropped, counted.
            Err(_) => {
                self.r.qdisc_drops += 1;
                true
            }
        }
    }

    /// A batch from netback on queue `q`: straight to the driver unless the qdisc already
    /// holds some; then the doorbell.
    fn offer(&mut self, pi: usize, q: usize, now: u64, lens: &[usize]) {
        for &len in lens {
            let queued = self.lanes.get(pi).and_then(|l| l.backlog.get(q)).map_or(0, VecDeque::len);
            if queued == 0 && self.submit(pi, q, now, len) {
                continue;
            }
            match self.lanes.get_mut(pi).and_then(|l| l.backlog.get_mut(q)) {
                Some(b) if b.len() < TXQUEUELEN => b.push_back(len),
                _ => self.r.qdisc_drops += 1,
            }
        }
        if let Some(port) = self.ports.get_mut(pi) {
            let _ = port.doorbell(q);
        }
    }

    /// A frame from the wire for port `pi`, queue `q` (the model places it).
    fn receive(&mut self, pi: usize, q: usize, frame: &[u8]) {
        if let Some(port) = self.ports.get_mut(pi) {
            port.backend_mut().device_mut().receive_frame(q, frame);
        }
    }

    /// The coalescing period ended at `now`: poll every queue of port `pi` (rx delivered,
    /// tx the model reported sent reclaimed), then refill the rings from the qdiscs.
    fn service(&mut self, pi: usize, now: u64) {
        for q in 0..QUEUES {
            let Some(port) = self.ports.get_mut(pi) else { return };
            let before = port.counters(q).map_or(0, |c| c.rx_map_errors);
            let r = port.poll(q, 4096, |_, _| {});
            let after = port.counters(q).map_or(0, |c| c.rx_map_errors);
            if let Ok(r) = r {
                self.r.rx_frames += r.rx as u64;
            }
            if after > before {
                self.r.rx_map_errors += after - before;
                self.failure(None, now, pi, "rx buffer");
            }
            let mut sent = false;
            while let Some(len) = self.lanes.get(pi).and_then(|l| l.backlog.get(q)).and_then(|b| b.front().copied()) {
                if !self.submit(pi, q, now, len) {
                    self.r.tx_busy += 1;
                    break;
                }
                sent = true;
                if let Some(b) = self.lanes.get_mut(pi).and_then(|l| l.backlog.get_mut(q)) {
                    b.pop_front();
                }
            }
            if sent && let Some(port) = self.ports.get_mut(pi) {
                let _ = port.doorbell(q);
            }
        }
    }

    fn sample(&mut self, now: u64) {
        let used = self.pool_used();
        let h = census(&self.ports);
        if h.slots() != used {
            self.r.unaccounted_samples += 1;
        }
        let backlog = self.lanes.iter().flat_map(|l| l.backlog.iter()).map(VecDeque::len).sum();
        let paused = pause_at(&self.pauses(), now).is_some();
        self.r.samples.push(Sample { t_ns: now, used, holders: h, paused, backlog });
    }
}

/// Occupancy outside bursts: after warm-up, not during a pause or its drain (the pause's
/// length again, plus `DRAIN_NS`), before the first failure.
pub fn steady_state(samples: &[Sample], pauses: &[(u64, u64)], until_ns: u64) -> Steady {
    let calm: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.t_ns >= WARMUP_NS && s.t_ns < until_ns)
        .filter(|s| !pauses.iter().any(|&(a, e)| s.t_ns >= a && s.t_ns < e + (e - a) + DRAIN_NS))
        .collect();
    let n = calm.len();
    if n == 0 {
        return Steady::default();
    }
    let mean =
        |f: &dyn Fn(&Sample) -> f64, xs: &[&Sample]| xs.iter().map(|s| f(s)).sum::<f64>() / xs.len().max(1) as f64;
    let used = |s: &Sample| s.used as f64;
    let mean_used = mean(&used, &calm);
    let sd_used = (calm.iter().map(|s| (s.used as f64 - mean_used).powi(2)).sum::<f64>() / n as f64).sqrt();
    let (first, second) = calm.split_at(n / 2);
    Steady {
        samples: n,
        mean_used,
        sd_used,
        mean_rx_slots: mean(&|s: &Sample| s.holders.rx_bd.slots as f64, &calm),
        mean_tx_slots: mean(&|s: &Sample| s.holders.tx.slots as f64, &calm),
        drift: if first.is_empty() || second.is_empty() { 0.0 } else { mean(&used, second) - mean(&used, first) },
    }
}

/// Bring up both ports on `p`: the model on a 10 GbE link with the pause plan, the ring
/// driver with `cfg`.
fn open_ports(p: &SharedPlatform, cfg: &Bnx2xConfig, plan: PausePlan) -> std::io::Result<Vec<Port>> {
    let mut ports = Vec::new();
    for bdf in PORTS {
        let mut dev = Bnx2xDevice::with_config(ModelConfig { queues: QUEUES, ..ModelConfig::default() });
        dev.set_link(LinkConfig { rate_bps: LINK_BPS, pauses: plan })
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let b = EmulatedBackend::new(dev, format!("model:bnx2x:{bdf}"));
        let dma = DmaApi::new(DeviceName::new("bnx2x", bdf), p.clone(), u64::MAX);
        let port = Bnx2x::attach(b, dma, cfg.clone()).map_err(|e| std::io::Error::other(format!("{bdf}: {e}")))?;
        ports.push(port);
    }
    Ok(ports)
}

/// Run one configuration with `seed` over `traffic`.
pub fn simulate(seed: u64, spec: RunSpec, traffic: &Traffic) -> std::io::Result<RunResult> {
    let cfg = driver_config(spec.gro);
    let p = platform(seed, spec.pool_mib)?;
    let ports = open_ports(&p, &cfg, traffic.pause_plan(seed))?;
    let nslabs = p.borrow().pool().map_or(0, |x| x.config().nslabs);
    let mix = SizeMix::field();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7478_7278);
    let frame_len = MTU as usize + 14;
    let rx_mean_ns = frame_len as f64 * 8.0 * 1e9 / (traffic.rx_gbps_per_port.max(1e-3) * 1e9);
    let batch_bytes = mix.mean() * traffic.batch_mean;
    let batch_mean_ns = batch_bytes * 8.0 * 1e9 / (traffic.tx_gbps_per_port.max(1e-3) * 1e9);
    let lanes = (0..PORTS.len())
        .map(|_| Lane {
            next_rx: exp_gap(&mut rng, rx_mean_ns),
            next_batch: exp_gap(&mut rng, batch_mean_ns),
            backlog: vec![VecDeque::new(); QUEUES],
        })
        .collect();
    let at_open = census(&ports);
    let template = skb_template();
    let seen_failures = p.borrow().pool_stats().map_or(0, |s| s.failures);
    let mut sim = Sim {
        p: p.clone(),
        ports,
        lanes,
        template: &template,
        seen_failures,
        r: RunResult {
            spec,
            tpa: cfg.tpa,
            duration_ns: 0,
            nslabs,
            samples: Vec::new(),
            steady: Steady::default(),
            first_failure: None,
            first_panic: None,
            failures: 0,
            tx_overflow_frames: 0,
            tx_failed: Vec::new(),
            rx_map_errors: 0,
            tx_map_errors: 0,
            tx_sent: 0,
            tx_busy: 0,
            qdisc_drops: 0,
            rx_frames: 0,
            rx_no_buffer: 0,
            wire_frames: 0,
            paused_ns: 0,
            peak_used: 0,
            peak: BounceCensus::default(),
            at_open,
            unaccounted_samples: 0,
            pauses: Vec::new(),
            min_rx_posted: usize::MAX,
            teardown: Vec::new(),
        },
    };
    let frame = vec![0x5Au8; frame_len];
    let mut lens = Vec::new();
    let mut now = 0;
    let mut stop = traffic.duration_ns;
    while now < stop {
        let tick_end = now + TX_COAL_NS;
        for pi in 0..PORTS.len() {
            // Arrivals in this period, in time order per port.
            while let Some(l) = sim.lanes.get(pi) {
                let (rx_at, batch_at) = (l.next_rx, l.next_batch);
                if rx_at.min(batch_at) > tick_end {
                    break;
                }
                if rx_at <= batch_at {
                    sim.clock_to(pi, rx_at);
                    let q = rng.random_range(0..QUEUES);
                    sim.receive(pi, q, &frame);
                    if let Some(l) = sim.lanes.get_mut(pi) {
                        l.next_rx += exp_gap(&mut rng, rx_mean_ns);
                    }
                } else {
                    sim.clock_to(pi, batch_at);
                    let n = geometric(&mut rng, traffic.batch_mean, traffic.batch_max);
                    let q = rng.random_range(0..QUEUES);
                    lens.clear();
                    lens.extend((0..n).map(|_| mix.sample(&mut rng)));
                    sim.offer(pi, q, batch_at, &lens);
                    if let Some(l) = sim.lanes.get_mut(pi) {
                        l.next_batch += exp_gap(&mut rng, batch_mean_ns);
                    }
                }
            }
            sim.clock_to(pi, tick_end);
            sim.service(pi, tick_end);
        }
        now = tick_end;
        let used = sim.pool_used();
        if used > sim.r.peak_used {
            sim.r.peak_used = used;
            sim.r.peak = census(&sim.ports);
        }
        let posted = sim.ports.iter().map(|p| p.bounce_census().rx_bd.mappings).min().unwrap_or(0);
        sim.r.min_rx_posted = sim.r.min_rx_posted.min(posted);
        if now.is_multiple_of(SAMPLE_NS) {
            sim.sample(now);
        }
        if let Some(f) = &sim.r.first_failure {
            stop = stop.min(f.t_ns + TAIL_NS);
        }
    }
    let pauses = sim.pauses();
    let mut r = sim.r;
    r.duration_ns = now;
    r.pauses = pauses.into_iter().filter(|&(s, _)| s < now).collect();
    let until = r.first_failure.as_ref().map_or(u64::MAX, |f| f.t_ns);
    r.steady = steady_state(&r.samples, &r.pauses, until);
    for port in sim.ports {
        let dev = port.backend().device();
        r.rx_no_buffer += dev.stats.rx_no_buffer;
        if let Some(l) = dev.link() {
            r.wire_frames += l.stats.frames;
            r.paused_ns = r.paused_ns.max(l.stats.paused_ns);
        }
        let (check, _) = port.close();
        r.teardown.push(check);
    }
    Ok(r)
}

/// The preflight's view of the ring configuration with `gro` (the predictor decides from
/// the MTU whether GRO turns TPA on, as the driver does).
fn field_config(gro: bool, scattered: f64) -> Bnx2xDmaConfig {
    Bnx2xDmaConfig {
        gro,
        rx_bds_per_port: (QUEUES * driver_config(gro).rx_posted()) as u32,
        rx_queues: QUEUES as u32,
        tx_queues: QUEUES as u32,
        scattered_fraction: scattered,
        tx_linear_bytes: FIELD_TX_SIZES.iter().copied().max().unwrap_or(0),
        ..Bnx2xDmaConfig::field()
    }
}

/// The rx rings alone (no tx in flight): the steady state's floor, from the configuration.
fn rings_only(scattered: f64) -> Bnx2xDmaConfig {
    Bnx2xDmaConfig { tx_bds_per_queue: 0, ..field_config(false, scattered) }
}

/// One maximal PAUSE frame (0xFFFF quanta of 512 bit times) at the link rate, ns.
fn pause_frame_ns() -> u64 {
    0xFFFF * 512 * 1_000_000_000 / LINK_BPS
}

fn ms(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

// Writing to a String cannot fail; the `fmt::Result`s below are discarded with `.ok()`.

fn timeline(out: &mut String, r: &RunResult) {
    let rows = 14usize;
    let step = r.samples.len().div_ceil(rows).max(1);
    for s in r.samples.iter().step_by(step) {
        let pct = s.used as f64 * 100.0 / r.nslabs.max(1) as f64;
        let bar = "#".repeat((pct / 2.5).round() as usize);
        writeln!(
            out,
            "  t {:>7}  {:>6} slots {pct:>5.1}% (rx {:>5} + tx {:>5}, {:>4} tx in flight){}  {bar}",
            ms(s.t_ns),
            s.used,
            s.holders.rx_bd.slots,
            s.holders.tx.slots,
            s.holders.tx_packets,
            if s.paused { " paused" } else { "       " }
        )
        .ok();
    }
}

fn burst_of(f: &Failure) -> String {
    match f.pause {
        Some((start, len)) => format!(
            "during a link pause ({} long, started at {}: tx skbs kept being mapped and none completed)",
            ms(len),
            ms(start)
        ),
        None => "outside any link pause (from the steady state and a netback batch)".to_string(),
    }
}

/// One check per variant: fails when the pool ran out, with the key numbers as
/// measurements.
fn variant_check(r: &RunResult, baseline: Option<&RunResult>) -> CheckReport {
    let name = format!("{NAME}.{}", r.spec.label);
    let Some(f) = &r.first_failure else {
        let longest = r.pauses.iter().map(|&(s, e)| e - s).max().unwrap_or(0);
        return CheckReport::new(
            name,
            CheckResult::Pass,
            format!(
                "no SWIOTLB exhaustion over {}; peak {} of {} slots (longest link pause {})",
                ms(r.duration_ns),
                r.peak_used,
                r.nslabs,
                ms(longest)
            ),
        )
        .measure("simulated_ms", r.duration_ns as f64 / 1e6, "ms")
        .measure("peak_slots", r.peak_used as f64, "slots");
    };
    let mut detail = format!(
        "SWIOTLB exhausted at {} {}: {}; {} failed mappings handled without a crash",
        ms(f.t_ns),
        burst_of(f),
        f.line,
        r.failures
    );
    if let Some(pf) = &r.first_panic {
        detail.push_str(&format!("; an old kernel would have panicked at {} ({} bytes)", ms(pf.t_ns), pf.size));
    }
    let mut c = CheckReport::new(name, CheckResult::Fail, String::new())
        .measure("exhausted_at_ms", f.t_ns as f64 / 1e6, "ms")
        .measure("would_have_panicked_at_ms", r.first_panic.as_ref().map_or(0.0, |p| p.t_ns as f64 / 1e6), "ms")
        .measure("failed_mappings", r.failures as f64, "mappings")
        .measure("tx_overflow_frames", r.tx_overflow_frames as f64, "frames")
        .measure("steady_slots", r.steady.mean_used, "slots")
        .measure("peak_slots", r.peak_used as f64, "slots");
    if let Some(bf) = baseline.and_then(|b| b.first_failure.as_ref()) {
        let ratio = f.t_ns as f64 / bf.t_ns.max(1) as f64;
        detail.push_str(&format!(" ({ratio:.2}x the time to exhaustion with 64 MiB)"));
        c = c.measure("ratio_vs_64mib", ratio, "x");
    }
    c.detail = detail;
    c
}

/// A configuration the field reports as *not* failing (GRO on; 128 MiB "only delays"): an
/// exhaustion here is the model's result, stated as such, not hidden.
fn result_check(mut c: CheckReport, field_says: &str) -> CheckReport {
    if c.result == CheckResult::Fail {
        c.result = CheckResult::Xfail;
        c.detail = format!("{field_says}; this model exhausts too: {}", c.detail);
    }
    c
}

/// Runs with this many calm samples show whether the occupancy settles; fewer (an early
/// exhaustion) say nothing either way.
const STEADY_MIN_SAMPLES: usize = 20;

/// The occupancy settles: in every run with enough calm samples the two halves' means differ
/// by less than 5% of the pool, and at least one run has a long calm stretch (100 samples).
fn steady_check(results: &[RunResult]) -> CheckReport {
    let judged: Vec<&RunResult> = results.iter().filter(|r| r.steady.samples >= STEADY_MIN_SAMPLES).collect();
    let ok = judged.iter().all(|r| r.steady.drift.abs() < 0.05 * r.nslabs as f64)
        && judged.iter().any(|r| r.steady.samples >= 100);
    let detail = results
        .iter()
        .map(|r| {
            let s = r.steady;
            if s.samples < STEADY_MIN_SAMPLES {
                format!("{}: {} calm samples before exhaustion, too few to judge", r.spec.label, s.samples)
            } else {
                format!(
                    "{}: {:.0} +- {:.0} slots over {} calm samples, drift {:+.0}",
                    r.spec.label, s.mean_used, s.sd_used, s.samples, s.drift
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    check(&format!("{NAME}.steady-state"), ok, detail)
}

fn panic_message(f: &Failure) -> &str {
    match &f.action {
        OldKernelAction::Panic { message } => message.as_str(),
        _ => "",
    }
}

fn account_of_run(out: &mut String, r: &RunResult) {
    let s = r.spec;
    writeln!(
        out,
        "\n== {}: MTU {MTU}, GRO {} (TPA {}), swiotlb {} MiB ({} slots); {} simulated",
        s.label,
        if s.gro { "on" } else { "off" },
        if r.tpa { "on" } else { "off: bnx2x_mtu_allows_gro(9000) is false" },
        s.pool_mib,
        r.nslabs,
        ms(r.duration_ns)
    )
    .ok();
    let o = r.at_open;
    writeln!(
        out,
        "after ring fill: {} rx buffers posted ({} queues x {} per port), {} bounced holding {} slots; SGE pages {} ({})",
        o.rx_bd.mappings,
        QUEUES,
        driver_config(s.gro).rx_posted(),
        o.rx_bd.bounced,
        o.rx_bd.slots,
        o.sge.mappings,
        if r.tpa { "TPA on" } else { "no TPA" }
    )
    .ok();
    writeln!(out, "occupancy (slots used, and which live mappings of the driver hold them):").ok();
    timeline(out, r);
    let st = r.steady;
    writeln!(
        out,
        "steady state ({} samples outside pauses): {:.0} +- {:.0} slots ({:.1}% of the pool) = rx posted {:.0} + tx in flight {:.0}; drift {:+.0} slots between halves",
        st.samples,
        st.mean_used,
        st.sd_used,
        st.mean_used * 100.0 / r.nslabs.max(1) as f64,
        st.mean_rx_slots,
        st.mean_tx_slots,
        st.drift
    )
    .ok();
    let pk = r.peak;
    writeln!(
        out,
        "peak {} of {} slots: rx {} ({} bounced buffers) + tx {} ({} of {} skbs in flight bounced)",
        r.peak_used, r.nslabs, pk.rx_bd.slots, pk.rx_bd.bounced, pk.tx.slots, pk.tx.bounced, pk.tx_packets
    )
    .ok();
    writeln!(
        out,
        "traffic: {} tx skbs sent, {} rx frames; {} link pauses, longest {}; {} skbs dropped by the qdisc",
        r.tx_sent,
        r.rx_frames,
        r.pauses.len(),
        ms(r.pauses.iter().map(|&(a, e)| e - a).max().unwrap_or(0)),
        r.qdisc_drops
    )
    .ok();
    let Some(f) = &r.first_failure else {
        writeln!(out, "no exhaustion: every mapping succeeded").ok();
        return;
    };
    writeln!(
        out,
        "first \"Out of SW-IOMMU space\" at t = {}, {} on {}, {} slots asked, {} used, largest free run {}, {}:",
        ms(f.t_ns),
        f.what,
        f.port,
        f.nslots,
        f.used,
        f.largest_free_run,
        burst_of(f)
    )
    .ok();
    writeln!(out, "  {}", f.line).ok();
    writeln!(
        out,
        "  {} failed mappings in all; {} of them tx skbs <= 32 KiB: an old kernel handed those the shared overflow buffer (sent with garbage by a driver that did not check dma_mapping_error)",
        r.failures, r.tx_overflow_frames
    )
    .ok();
    match &r.first_panic {
        Some(pf) => writeln!(
            out,
            "would have panicked at t = {}: {} bytes on {} > 32 KiB: \"Kernel panic - not syncing: {}\"",
            ms(pf.t_ns),
            pf.size,
            pf.port,
            panic_message(pf)
        ),
        None => writeln!(out, "no single map above 32 KiB failed: an old kernel would not have panicked"),
    }
    .ok();
}

/// The whole scenario: three runs over the same seeded traffic, the account, the checks,
/// the run record (with the GRO-off 64 MiB bounce-pool timeline).
pub fn run(seed: u64, out: &mut dyn std::io::Write) -> std::io::Result<rep::RunRecord> {
    let started = rep::now_rfc3339();
    let wall = std::time::Instant::now();
    writeln!(out, "scenario {NAME} (seed {seed})\n")?;
    let traffic = Traffic::FIELD;
    let results = RUNS.iter().map(|&spec| simulate(seed, spec, &traffic)).collect::<std::io::Result<Vec<_>>>()?;
    let (Some(a), Some(b), Some(c)) = (results.first(), results.get(1), results.get(2)) else {
        return Err(std::io::Error::other("a run is missing"));
    };
    let scattered = scattered_fraction(seed);
    let pool64 = SwiotlbConfig::with_mib(Generation::ClassicXen, 64);
    let pool128 = SwiotlbConfig::with_mib(Generation::ClassicXen, 128);
    let pre_off = field_config(false, scattered);
    let pre_on = field_config(true, scattered);
    let predictions = [pre_off.predict(&pool64), pre_on.predict(&pool64), pre_off.predict(&pool128)];
    let floor = rings_only(scattered).predict(&pool64);
    let mix = SizeMix::field();

    let mut here = String::new();
    writeln!(
        here,
        "Platform: Xen PV dom0, 2 GiB, p2m in runs of {P2M_RUN_PAGES} pages on average: {:.1}% of {}-byte rx buffers \
         are not machine-contiguous and bounce (swiotlb-xen: range_straddles_page_boundary).",
        scattered * 100.0,
        hw::rx_buf_size(MTU)
    )
    .ok();
    writeln!(
        here,
        "Rings (the ring driver Bnx2x on the bnx2x device model, streaming mappings): 2 ports x {QUEUES} fast-path queues, \
         each {} rx buffers (MAX_RX_AVAIL / queues, bnx2x_alloc_fp_mem_at) of rx_buf_size {} (bnx2x_set_rx_buf_size at \
         MTU {MTU}) and a tx chain of {} pages; LSO skbs (MSS {}) mapped whole by xmit (bnx2x_start_xmit) until the \
         model's TX consumer reports them sent; classic-Xen SWIOTLB (2.6.32 allocator, messages, overflow/panic rule).",
        driver_config(false).rx_posted(),
        hw::rx_buf_size(MTU),
        hw::NUM_TX_RINGS,
        GSO.mss
    )
    .ok();
    writeln!(
        here,
        "Traffic (stationary, seeded): tx {} Gb/s per port from netback in batches of {} skbs on average (at most {}), \
         linear skbs sized log-normal(mu {:.3}, sigma {:.3}) fitted to the 18 field sizes (geometric mean {:.0} B, mean {:.0} B); \
         rx {} Gb/s per port of {}-byte frames; the model's links send at 10 Gb/s, completions serviced every {} us; \
         the link partner pauses both links {} times per second, {} maximal PAUSE frames ({}) per episode on average; \
         {} simulated.",
        traffic.tx_gbps_per_port,
        traffic.batch_mean,
        traffic.batch_max,
        mix.mu,
        mix.sigma,
        mix.mu.exp(),
        mix.mean(),
        traffic.rx_gbps_per_port,
        MTU + 14,
        TX_COAL_NS / 1000,
        traffic.pauses_per_s,
        traffic.pause_mean_frames,
        ms((traffic.pause_mean_frames * pause_frame_ns() as f64) as u64),
        ms(traffic.duration_ns)
    )
    .ok();
    writeln!(
        here,
        "What GRO changes here: nothing the driver maps. GRO in bnx2x is TPA in GRO mode, a receive feature, allowed only \
         when bnx2x_mtu_allows_gro(mtu) (mtu <= SGE page size): false at MTU {MTU}, so the rx rings, buffer sizes and \
         mappings are the same with GRO on; the transmit skbs come from netback and do not depend on the NIC's GRO \
         setting ([inference] from the bnx2x and netback code of that era)."
    )
    .ok();
    writeln!(here, "Preflight (from the ring configuration, before any traffic):").ok();
    writeln!(here, "  rx rings alone: {}", floor.message).ok();
    for (label, p) in ["GRO off, 64 MiB", "GRO on, 64 MiB", "GRO off, 128 MiB"].iter().zip(&predictions) {
        writeln!(here, "  {label}: {}", p.message).ok();
    }
    writeln!(here, "  advice for the field's configuration: {}", advice(&pre_off, &pool64).join("; ")).ok();
    for r in &results {
        account_of_run(&mut here, r);
    }
    writeln!(here, "\nSummary:").ok();
    match (&a.first_failure, &c.first_failure) {
        (Some(fa), Some(fc)) => writeln!(
            here,
            "  128 MiB exhausts at {} vs {} with 64 MiB ({:.2}x): later, not never",
            ms(fc.t_ns),
            ms(fa.t_ns),
            fc.t_ns as f64 / fa.t_ns.max(1) as f64
        ),
        (Some(fa), None) => writeln!(
            here,
            "  64 MiB exhausts at {}; 128 MiB did not within {} (its steady state is {:.1}% of the larger pool; a longer pause would be needed)",
            ms(fa.t_ns),
            ms(c.duration_ns),
            c.steady.mean_used * 100.0 / c.nslabs.max(1) as f64
        ),
        (None, _) => writeln!(here, "  64 MiB did not exhaust within {}", ms(a.duration_ns)),
    }
    .ok();
    let same = a.first_failure.as_ref().map(|f| f.t_ns) == b.first_failure.as_ref().map(|f| f.t_ns)
        && a.peak_used == b.peak_used;
    writeln!(
        here,
        "  GRO on: {} ({}): {}",
        if b.first_failure.is_some() { "exhausted" } else { "no exhaustion" },
        if same { "the same mappings, step for step, as GRO off" } else { "different from GRO off" },
        if b.first_failure.is_some() {
            "this contradicts the field's fix (enable GRO); the model finds no mechanism by which GRO on a bnx2x port at MTU 9000 \
             changes what the driver maps"
        } else {
            "nor did GRO off in this window"
        }
    )
    .ok();

    let mut nicqual = String::new();
    for r in &results {
        if r.first_failure.is_some() {
            writeln!(
                nicqual,
                "{}: nicqual's driver failed each such mapping with a typed error, dropped that packet and kept going \
                 ({} failed mappings: {} tx skbs dropped, {} rx frames dropped with their buffer reposted; at least {} rx \
                 buffers stayed posted per port).",
                r.spec.label, r.failures, r.tx_map_errors, r.rx_map_errors, r.min_rx_posted
            )
            .ok();
        }
        for t in &r.teardown {
            writeln!(nicqual, "{} teardown {}: {}", r.spec.label, t.result.as_str(), t.detail).ok();
        }
    }

    let change = "Recommendation: on this model, enabling GRO does not help at MTU 9000 (TPA stays off, the same buffers are \
                  mapped); the steady state here is the rx rings' bounced buffers, so what would lower it is MTU 1500 (rx \
                  buffers of 1920 B are page fragments that never bounce) or smaller rx rings (ethtool -G) - neither \
                  run here; raising swiotlb to 128 MiB moves the steady state away from the limit so that only longer \
                  pauses exhaust it. The swiotlb-preflight check predicts the worst case from the ring configuration \
                  before any traffic, and advises only changes its predictor says fit.\nSourced vs inferred: slot size, \
                  segment rule, alignment, messages, the overflow/panic rule (lib/swiotlb.c swiotlb_full, in the SWIOTLB \
                  model), rx_buf_size (bnx2x_set_rx_buf_size), MAX_RX_AVAIL shared by the rx queues \
                  (bnx2x_alloc_fp_mem_at, 3.x source; that 2.6.32 posted the same total is [inference]), per-buffer \
                  mappings (bnx2x_alloc_rx_data / bnx2x_alloc_rx_skb), the LSO fields (bnx2x_set_pbd_gso_e2), \
                  bnx2x_mtu_allows_gro, PAUSE quanta (802.3 Annex 31B), netback's linear skbs in NETBK_ALWAYS_COPY_SKB \
                  mode (netback.c net_tx_action) and dev_queue_xmit's linearization of frag_list skbs are from the \
                  sources; that the field's netback produced linear skbs this way, that 2.6.32's bnx2x_start_xmit did not \
                  check dma_mapping_error (so an overflow-buffer answer went out as garbage), the 4 queues per port, the \
                  traffic rates, batches and the link partner's pauses are [inference]/assumption."
        .to_string();
    let story = Story {
        field: "XenServer dom0 (2.6.32 classic Xen), bnx2x bonded pair for storage, MTU 9000, GRO off. For 1.5 h: \
                \"PCI-DMA: Out of SW-IOMMU space for 25158 bytes at device 0000:04:00.0\" (18 lines, 14 654-33 302 \
                bytes), then \"Kernel panic - not syncing: DMA: Random memory could be DMA read\" from swiotlb_full <- \
                swiotlb_map_page <- bnx2x_start_xmit <- ... <- netbk (33 302 bytes). Vendor's fix: enable GRO; \
                swiotlb=128 only delays it."
            .into(),
        here,
        nicqual,
        change,
    };

    let exhausted = |r: &RunResult| r.first_failure.is_some();
    let mut checks = vec![
        // The field's configuration: the predictor must flag it, and GRO off must run out.
        expect_field_failure(preflight_check(&pre_off, &pool64)),
        expect_field_failure(variant_check(a, None)),
        result_check(variant_check(b, None), "the field reports GRO on as the fix"),
        result_check(variant_check(c, Some(a)), "the field reports 128 MiB as only delaying it"),
        check(
            &format!("{NAME}.no-panic"),
            results.iter().all(|r| r.failures == r.rx_map_errors + r.tx_map_errors && r.min_rx_posted > 0),
            format!(
                "every failed mapping a typed error for that packet: {}; rx rings never empty (min posted {})",
                results.iter().map(|r| format!("{} {}", r.spec.label, r.failures)).collect::<Vec<_>>().join(", "),
                results.iter().map(|r| r.min_rx_posted).min().unwrap_or(0)
            ),
        ),
        check(
            &format!("{NAME}.slots-accounted"),
            results.iter().all(|r| r.unaccounted_samples == 0 && !r.samples.is_empty()),
            format!(
                "at every sample the pool's used slots = rx posted + SGE + tx in flight, from the drivers' live mappings ({})",
                results
                    .iter()
                    .map(|r| format!("{} {} samples, {} off", r.spec.label, r.samples.len(), r.unaccounted_samples))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        steady_check(&results),
        check(
            &format!("{NAME}.preflight-never-misses"),
            predictions.iter().zip(&results).all(|(p, r)| p.will_exhaust || !exhausted(r)),
            predictions
                .iter()
                .zip(&results)
                .map(|(p, r)| {
                    format!(
                        "{}: predicted {} at worst ({} slots of {}), simulated {}",
                        r.spec.label,
                        if p.will_exhaust { "exhaust" } else { "fits" },
                        p.demand_slots,
                        p.nslabs,
                        if exhausted(r) { "exhaust" } else { "fits" }
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
    ];
    for r in &results {
        for (t, port) in r.teardown.iter().zip(PORTS) {
            let mut t = t.clone();
            t.name = format!("{}[{} {port}]", t.name, r.spec.label);
            checks.push(t);
        }
    }

    let timeline = rep::BouncePoolTimeline {
        slots_total: a.nslabs as u64,
        slot_bytes: 2048,
        samples: a.samples.iter().map(|s| rep::PoolSample { t_ns: s.t_ns, used: s.used as u64 }).collect(),
        exhausted: a.first_failure.as_ref().map(|f| rep::Exhaustion {
            t_ns: f.t_ns,
            requested_slots: Some(f.nslots as u64),
            detail: format!("{} ({})", f.line, burst_of(f)),
        }),
        predicted_slots: predictions.first().map(|p| p.demand_slots),
    };
    story.print(out)?;
    print_checks(out, &checks)?;
    let duration = results.iter().map(|r| r.duration_ns).sum();
    let platform = Platform {
        backend: "model:bnx2x x2 (Xen PV dom0, classic-Xen SWIOTLB)",
        spec: "model:bnx2x",
        device: "Broadcom NetXtreme II BCM57810 (ring model)",
        driver: "nicqual-nics bnx2x",
    };
    let mut rec = record(NAME, seed, &platform, &checks, duration, started, wall);
    rec.device.pci_address = Some(PORTS.join(","));
    rec.device.vendor_id = format!("{:04x}", hw::PCI_VENDOR_BROADCOM);
    rec.device.device_id = format!("{:04x}", hw::PCI_DEVICE_57810);
    rec.timelines.bounce_pool = Some(timeline);
    writeln!(out, "{}: scenario {NAME} seed {seed}", if rec.verdict == rep::Verdict::Pass { "PASS" } else { "FAIL" })?;
    Ok(rec)
}

#[cfg(test)]
mod tests;
