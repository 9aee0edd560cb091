//! Fuzz harness: the bnx2x device model (`device-model/src/bnx2x/`: BD/SGE/RCQ/TX chains
//! followed through their next-page entries, status blocks, IGU, MSI-X, TPA bins) and the
//! bnx2x driver ([`Bnx2x`], `driver/nics/src/bnx2x/`) over the DMA API, on an IOMMU or on a
//! Xen dom0 with a small SWIOTLB pool.
//!
//! The fuzzer picks the platform, MTU, ring pages, TPA, buffer mode (pool or streaming),
//! queues, interrupts and a fault plan (hostile completion N, stalled consumer, lost vector),
//! then runs a sequence of: transmits (plain frames or TCP segments, linear or fragmented),
//! doorbells, polls, frames from the wire, device DMA writes of any bytes into the status
//! block, the RCQ or the RX BD ring the driver set up (a hostile status block or CQE), BAR
//! and config writes of any value at any offset, time passing.
//!
//! Invariants: no panic; every error has a non-empty message; a delivered packet is never
//! longer than 64 KiB (TPA) or the MTU's largest frame (plain queue); after close the DMA
//! API reports no leak, the backend holds no window and the bounce pool is empty.

use crate::{Violation, violation};
use arbitrary::{Arbitrary, Unstructured};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_dma::dmamap::{DmaApi, DmaPlatform};
use nicqual_dma::memory::HostMemory;
use nicqual_dma::swiotlb::{DeviceName, Generation, SwiotlbConfig};
use nicqual_hw::bnx2x as hw;
use nicqual_model::bnx2x::{Bnx2xDevice, Config};
use nicqual_model::{FaultKind, FaultPlan, PciDevice};
use nicqual_nics::bnx2x::{Bnx2x, Bnx2xConfig, BufferMode, QueueCounters};
use nicqual_pci::Backend;
use nicqual_pci::health::CheckResult;

const MAX_OPS: usize = 48;

type Drv = Bnx2x<EmulatedBackend<Bnx2xDevice>>;

/// Host memory of 64 MiB (native, Xen PV with every page scattered), built once per thread.
const MEMORY_PAGES: u64 = 1 << 14;
thread_local! {
    static MEMORY: (HostMemory, HostMemory) =
        (HostMemory::native(MEMORY_PAGES), HostMemory::xen_pv(MEMORY_PAGES, 1, 7));
}

#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// Transmit on `queue`: a TCP segment (if `tcp`) or a plain frame of `len` bytes, split
    /// into fragments of the given sizes.
    Tx {
        queue: u8,
        len: u16,
        tcp: bool,
        seq: u16,
        flags: u8,
        frags: Vec<u16>,
    },
    Doorbell {
        queue: u8,
    },
    Poll {
        queue: u8,
        budget: u8,
    },
    /// A frame of `len` bytes arrives from the wire on `queue`.
    Wire {
        queue: u8,
        len: u16,
        fill: u8,
    },
    /// The device DMA-writes `bytes` at `off` into what queue `queue` set up: 0 status
    /// block, 1 RCQ, 2 RX BD ring, 3 SGE ring, 4 TX ring.
    DevWrite {
        queue: u8,
        target: u8,
        off: u16,
        bytes: Vec<u8>,
    },
    Bar {
        write: bool,
        bar: u8,
        offset: u32,
        value: u32,
    },
    Config {
        offset: u16,
        size: u8,
        value: u32,
    },
    Wait {
        ns: u32,
    },
}

/// Platform, port shape and faults, from the input's first bytes.
#[derive(Debug, Clone, Arbitrary)]
pub struct Setup {
    xen: bool,
    generation: u8,
    pool_mib: u8,
    mtu_pick: u8,
    raw_mtu: u16,
    rx_pages: u8,
    rx_ring: u8,
    tx_pages: u8,
    tpa: bool,
    max_sges: u8,
    streaming: bool,
    queues: u8,
    interrupts: bool,
    hostile: Option<u8>,
    stall: Option<u8>,
    lose: Option<u8>,
    seed: u64,
}

fn generation(i: u8) -> Generation {
    match i % 3 {
        0 => Generation::ClassicXen,
        1 => Generation::Legacy,
        _ => Generation::Modern,
    }
}

/// Run one input.
pub fn run(data: &[u8]) -> Result<(), Violation> {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else { return Ok(()) };
    let ops: Vec<Op> = crate::decode_ops(&mut u, MAX_OPS);
    run_ops(&setup, &ops).map(drop)
}

fn check_msg(what: &str, e: &dyn std::fmt::Display) -> Result<(), Violation> {
    if e.to_string().trim().is_empty() {
        return Err(violation(format!("{what}: error with an empty message")));
    }
    Ok(())
}

fn frame(len: usize, tcp: bool, seq: u16, flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; len.max(14)];
    let put = |f: &mut Vec<u8>, at: usize, b: &[u8]| {
        if let Some(d) = f.get_mut(at..at + b.len()) {
            d.copy_from_slice(b);
        }
    };
    if tcp && len >= 54 {
        put(&mut f, 12, &[0x08, 0x00, 0x45]);
        put(&mut f, 16, &((len - 14) as u16).to_be_bytes());
        put(&mut f, 23, &[6]);
        put(&mut f, 26, &[10, 0, 0, 1, 10, 0, 0, 2, 0x9c, 0x40, 0x14, 0x51]);
        put(&mut f, 38, &(u32::from(seq) * 1000).to_be_bytes());
        put(&mut f, 46, &[0x50, flags]);
    } else {
        put(&mut f, 12, &[0x88, 0xB5]);
    }
    // Payload byte i is 31 * i + seq (mod 256), i.e. 31 * (i + 223 * seq) since 223 is the
    // inverse of 31 mod 256: one copy out of a table instead of a loop over every byte
    // (which coverage instrumentation makes the most expensive part of an input).
    let shift = usize::from((seq as u8).wrapping_mul(223));
    if let (Some(d), Some(src)) = (f.get_mut(54..), PATTERN.get(54 + shift..len.max(14) + shift)) {
        d.copy_from_slice(src);
    }
    f
}

/// Byte i is 31 * i mod 256; longer than the largest frame by a period of 256.
const PATTERN: [u8; 10_240] = {
    let mut t = [0u8; 10_240];
    let mut i = 0;
    while i < t.len() {
        t[i] = (i as u8).wrapping_mul(31);
        i += 1;
    }
    t
};

/// Run a decoded setup and op list; returns the counters of queue 0 at close.
pub fn run_ops(setup: &Setup, ops: &[Op]) -> Result<QueueCounters, Violation> {
    let mtu = match setup.mtu_pick % 4 {
        0 => 1500,
        1 => 9000,
        2 => 4000,
        _ => u32::from(setup.raw_mtu % 9700).max(40),
    };
    let memory = MEMORY.with(|m| if setup.xen { m.1.clone() } else { m.0.clone() });
    let platform = if setup.xen {
        let mib = 4 + usize::from(setup.pool_mib % 16);
        DmaPlatform::swiotlb(memory, SwiotlbConfig::with_mib(generation(setup.generation), mib))
            .map_err(|e| violation(format!("pool of {mib} MiB: {e}")))?
    } else {
        DmaPlatform::iommu(memory)
    }
    .shared();
    let queues = 1 + usize::from(setup.queues % 3);
    let cfg = Bnx2xConfig {
        queues,
        rx_bd_pages: 1 << (setup.rx_pages % 2),
        tx_bd_pages: 1 << (setup.tx_pages % 2),
        tpa: setup.tpa,
        max_sges: setup.max_sges % 10,
        // Few posted buffers keep a run cheap (each streaming buffer is an allocation, a
        // mapping and, on Xen, three bounce pages to fault in); the chains still have their
        // full pages. At most 16 RX buffers and 16 SGE pages: an input of MAX_OPS ops can
        // still run either ring dry, and every posted buffer gets reused.
        rx_ring_size: 1 + usize::from(setup.rx_ring % 16),
        sge_ring_size: 1 + usize::from(setup.rx_ring / 16),
        buffers: if setup.streaming { BufferMode::Streaming } else { BufferMode::Pool },
        interrupts: setup.interrupts,
        tx_timeout_ns: 1_000_000,
        ..Bnx2xConfig::new(mtu)
    };
    let max_frame = cfg.max_frame();
    let backend =
        EmulatedBackend::new(Bnx2xDevice::with_config(Config { queues: 3, ..Config::default() }), "model:bnx2x");
    let dma = DmaApi::new(DeviceName::new("bnx2x", "0000:04:00.0"), platform.clone(), u64::MAX);
    let mut d = match Bnx2x::attach(backend, dma, cfg) {
        Ok(d) => d,
        Err(e) => {
            check_msg("attach", &e)?;
            return balanced_after_failed_attach(&platform).map(|()| QueueCounters::default());
        }
    };
    let mut plan = FaultPlan::new(setup.seed);
    if let Some(n) = setup.hostile {
        plan = plan.with(FaultKind::HostileCompletion { nth: u32::from(n % 64) }, 0);
    }
    if let Some(q) = setup.stall {
        plan = plan.with(FaultKind::StallConsumer { queue: u16::from(q % 3) }, 0);
    }
    if let Some(v) = setup.lose {
        plan = plan.lose_vector(u16::from(v % 4));
    }
    d.backend_mut().device_mut().arm_faults(plan);
    for (i, op) in ops.iter().enumerate() {
        step(&mut d, op, i, max_frame)?;
    }
    let counters = d.counters(0).unwrap_or_default();
    let (report, b) = d.close();
    if report.result != CheckResult::Pass {
        return Err(violation(format!("close: {}", report.detail)));
    }
    if b.live_mappings() != 0 {
        return Err(violation(format!("close: backend still holds {} windows", b.live_mappings())));
    }
    if let Some(s) = platform.borrow().pool_stats()
        && s.used != 0
    {
        return Err(violation(format!("close: {} bounce slots still used", s.used)));
    }
    Ok(counters)
}

fn balanced_after_failed_attach(platform: &nicqual_dma::dmamap::SharedPlatform) -> Result<(), Violation> {
    if let Some(s) = platform.borrow().pool_stats()
        && s.used != 0
    {
        return Err(violation(format!("failed attach left {} bounce slots used", s.used)));
    }
    Ok(())
}

fn step(d: &mut Drv, op: &Op, i: usize, max_frame: usize) -> Result<(), Violation> {
    match op {
        Op::Tx { queue, len, tcp, seq, flags, frags } => {
            let f = frame(usize::from(*len % 9800), *tcp, *seq, *flags);
            let mut parts: Vec<&[u8]> = Vec::new();
            let mut rest: &[u8] = &f;
            for &n in frags.iter().take(14) {
                let n = usize::from(n).min(rest.len());
                let (a, b) = rest.split_at(n);
                parts.push(a);
                rest = b;
            }
            parts.push(rest);
            parts.retain(|p| !p.is_empty());
            if let Err(e) = d.xmit(usize::from(*queue % 4), &parts) {
                check_msg(&format!("op {i} xmit"), &e)?;
            }
        }
        Op::Doorbell { queue } => {
            if let Err(e) = d.doorbell(usize::from(*queue % 4)) {
                check_msg(&format!("op {i} doorbell"), &e)?;
            }
        }
        Op::Poll { queue, budget } => {
            let q = usize::from(*queue % 4);
            let tpa = d.config().tpa;
            let mut bad = None;
            let r = d.poll(q, usize::from(*budget), |data, _| {
                let max = if tpa { hw::TPA_MAX_AGG_LEN } else { max_frame };
                if data.len() > max {
                    bad = Some(data.len());
                }
            });
            if let Some(n) = bad {
                return Err(violation(format!("op {i}: delivered {n} bytes (tpa {tpa}, max frame {max_frame})")));
            }
            if let Err(e) = r {
                check_msg(&format!("op {i} poll"), &e)?;
            }
        }
        Op::Wire { queue, len, fill } => {
            let f = vec![*fill; usize::from(*len % 9800)];
            d.backend_mut().device_mut().receive_frame(usize::from(*queue % 4), &f);
        }
        Op::DevWrite { queue, target, off, bytes } => {
            let q = usize::from(*queue % 3);
            let (lo, hi) = match target % 5 {
                0 => (hw::Q_SB_LO, hw::Q_SB_HI),
                1 => (hw::Q_RCQ_LO, hw::Q_RCQ_HI),
                2 => (hw::Q_RX_BD_LO, hw::Q_RX_BD_HI),
                3 => (hw::Q_SGE_LO, hw::Q_SGE_HI),
                _ => (hw::Q_TX_BD_LO, hw::Q_TX_BD_HI),
            };
            let b = d.backend_mut();
            let base =
                u64::from(b.read32(0, hw::queue_reg(q, lo))) | u64::from(b.read32(0, hw::queue_reg(q, hi))) << 32;
            let dev = b.device_mut();
            let now = dev.now_ns();
            let bytes = bytes.get(..bytes.len().min(256)).unwrap_or_default();
            let _ = dev.iommu().write(base + u64::from(*off), bytes, now);
        }
        Op::Bar { write, bar, offset, value } => {
            let (bar, off) = (*bar % 6, u64::from(*offset));
            if *write {
                d.backend_mut().write32(bar, off, *value);
            } else {
                let _ = d.backend_mut().read32(bar, off);
            }
        }
        Op::Config { offset, size, value } => {
            let size = [1u8, 2, 4].get(usize::from(*size % 3)).copied().unwrap_or(4);
            let _ = d.backend_mut().config_write(*offset, size, *value);
        }
        Op::Wait { ns } => d.backend_mut().wait(u64::from(*ns)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table-copied payload is the per-byte formula it replaced.
    #[test]
    fn frame_payload_matches_the_formula() {
        for (len, seq) in [(54usize, 0u16), (60, 1), (1514, 77), (9799, 0xFFFF), (9799, 300)] {
            let f = frame(len, seq % 2 == 0, seq, 0x10);
            assert_eq!(f.len(), len);
            for (i, b) in f.iter().enumerate().skip(54) {
                assert_eq!(*b, (i as u8).wrapping_mul(31).wrapping_add(seq as u8), "len {len} seq {seq} byte {i}");
            }
        }
    }

    fn setup(xen: bool, streaming: bool, tpa: bool) -> Setup {
        Setup {
            xen,
            generation: 0,
            pool_mib: 12,
            mtu_pick: 0,
            raw_mtu: 0,
            rx_pages: 0,
            rx_ring: 40,
            tx_pages: 0,
            tpa,
            max_sges: 8,
            streaming,
            queues: 1,
            interrupts: true,
            hostile: None,
            stall: None,
            lose: None,
            seed: 1,
        }
    }

    #[test]
    fn traffic_hostile_writes_and_faults_leave_the_dma_balanced() {
        let ops = vec![
            Op::Tx { queue: 0, len: 1400, tcp: true, seq: 1, flags: 0x10, frags: vec![] },
            Op::Tx { queue: 0, len: 1400, tcp: true, seq: 2, flags: 0x18, frags: vec![100, 200] },
            Op::Tx { queue: 0, len: 300, tcp: false, seq: 3, flags: 0, frags: vec![] },
            Op::Doorbell { queue: 0 },
            Op::Poll { queue: 0, budget: 16 },
            Op::Wire { queue: 1, len: 1514, fill: 7 },
            Op::Poll { queue: 1, budget: 16 },
            Op::DevWrite { queue: 0, target: 1, off: 0, bytes: vec![0xFF; 64] },
            Op::DevWrite { queue: 0, target: 0, off: 2, bytes: vec![0x7F, 0x7F] },
            Op::Tx { queue: 0, len: 60, tcp: false, seq: 4, flags: 0, frags: vec![] },
            Op::Doorbell { queue: 0 },
            Op::Poll { queue: 0, budget: 16 },
            Op::Bar { write: true, bar: 0, offset: hw::queue_reg(0, hw::Q_ENABLE) as u32, value: 0 },
            Op::Wait { ns: 5_000_000 },
            Op::Poll { queue: 1, budget: 16 },
        ];
        for xen in [false, true] {
            for streaming in [false, true] {
                for tpa in [false, true] {
                    let c = run_ops(&setup(xen, streaming, tpa), &ops).unwrap();
                    assert!(c.tx_packets >= 3, "xen {xen} streaming {streaming} tpa {tpa}: {c:?}");
                    assert!(c.rx_packets >= 1, "xen {xen} streaming {streaming} tpa {tpa}: {c:?}");
                }
            }
        }
        let mut hostile = setup(false, true, true);
        hostile.hostile = Some(0);
        hostile.stall = Some(0);
        hostile.lose = Some(1);
        run_ops(&hostile, &ops).unwrap();
    }
}
