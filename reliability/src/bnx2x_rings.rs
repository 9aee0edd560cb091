//! Fuzz harness: the bnx2x ring model (`device-model/src/bnx2x.rs`, the paged BD chains of
//! `device-model/src/ring.rs`) and the bnx2x port driver (`driver/nics/src/bnx2x.rs`) over the DMA
//! API, on an IOMMU or on a Xen dom0 with a small SWIOTLB pool.
//!
//! The fuzzer picks the platform (native memory behind an IOMMU, or Xen PV memory bouncing
//! through a pool of 128-512 slots of any kernel generation), the MTU and the ring sizes, then
//! runs a sequence of: frames received into the buffer at the rx consumer (and the CQE the
//! firmware writes for them, optionally with one field overwritten by the fuzzer), raw
//! CQEs, device writes and reads at any address (through the IOMMU), BD fetches from a
//! paged chain laid over any pages, config and BAR accesses (doorbells), transmits of
//! linear and fragmented skbs of any size, completions in any order.
//!
//! Invariants: no panic; a refused CQE leaves the rx ring as it was (posted count kept); the
//! rx ring never holds more buffers than it has BDs; every DMA error is typed with a
//! non-empty message; bounce-pool use never exceeds the pool; after close the DMA API
//! reports no leak (mapped == unmapped), the pool is empty and the backend holds no window.

use crate::{Violation, violation};
use arbitrary::{Arbitrary, Unstructured};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_dma::dmamap::{DmaApi, DmaPlatform};
use nicqual_dma::memory::HostMemory;
use nicqual_dma::swiotlb::{DeviceName, Generation, SwiotlbConfig};
use nicqual_hw::bnx2x::{self as hw, FastPathRxCqe, RxBd};
use nicqual_model::PciDevice;
use nicqual_model::bnx2x::Bnx2xDevice;
use nicqual_model::ring::{DescRing, RingLayout};
use nicqual_nics::bnx2x::{Bnx2xPort, PortConfig, PortCounters, RxOutcome, TxOutcome, TxSkb};
use nicqual_pci::Backend;
use nicqual_pci::health::CheckResult;
use zerocopy::FromBytes;

const MAX_OPS: usize = 48;
const CQE_LEN: usize = size_of::<FastPathRxCqe>();

type Port = Bnx2xPort<EmulatedBackend<Bnx2xDevice>>;

/// Host memory of 16 MiB (native, Xen PV with every page scattered), built once per
/// thread: building the Xen frame map is most of a run's cost otherwise.
const MEMORY_PAGES: u64 = 1 << 12;
thread_local! {
    static MEMORY: (HostMemory, HostMemory) =
        (HostMemory::native(MEMORY_PAGES), HostMemory::xen_pv(MEMORY_PAGES, 1, 7));
}

#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// A frame of `len` bytes arrives into the buffer at the rx consumer; the firmware's
    /// CQE goes to the driver, with field `field` (if any) overwritten by `value`.
    Rx {
        len: u16,
        fill: u8,
        field: Option<u8>,
        value: u16,
    },
    /// A CQE made of raw bytes (the device wrote garbage to the completion queue).
    RawCqe {
        raw: Vec<u8>,
    },
    /// Transmit a linear part of `linear` bytes and page fragments of the given sizes.
    Tx {
        queue: u8,
        linear: u16,
        frags: Vec<u16>,
    },
    /// Complete the in-flight packet at this position.
    TxDone {
        pos: u8,
    },
    /// The device writes `bytes` at `addr` (relative to the rx consumer's buffer if `near`).
    DevWrite {
        near: bool,
        addr: u64,
        bytes: Vec<u8>,
    },
    /// The device reads `len` bytes of transmit data at `addr`.
    DevRead {
        near: bool,
        addr: u64,
        len: u16,
    },
    /// The device fetches BD `index` of a paged rx BD chain over these pages.
    ChainFetch {
        near: bool,
        pages: Vec<u64>,
        per_page: u8,
        slots: u16,
        index: u32,
    },
    Config {
        write: bool,
        offset: u16,
        size: u8,
        value: u32,
    },
    Bar {
        write: bool,
        bar: u8,
        offset: u32,
        value: u32,
    },
    Advance {
        ns: u32,
    },
}

/// Platform and port shape, from the input's first bytes.
#[derive(Debug, Clone, Arbitrary)]
pub struct Setup {
    xen: bool,
    generation: u8,
    pool_slots: u16,
    mtu_pick: u8,
    raw_mtu: u16,
    rx_bds: u8,
    tx_queues: u8,
    tx_bds: u16,
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

/// Run a decoded setup and op list; returns the port's counters at close.
pub fn run_ops(setup: &Setup, ops: &[Op]) -> Result<PortCounters, Violation> {
    let mtu = match setup.mtu_pick % 4 {
        0 => 1500,
        1 => 9000,
        2 => 9600,
        _ => u32::from(setup.raw_mtu % 9700).max(46),
    };
    // One to four 128-slot segments (the pool is whole segments).
    let pool_slots = 128 * (1 + usize::from(setup.pool_slots % 4));
    let memory = MEMORY.with(|m| if setup.xen { m.1.clone() } else { m.0.clone() });
    let platform = if setup.xen {
        DmaPlatform::swiotlb(memory, SwiotlbConfig::with_slots(generation(setup.generation), pool_slots))
            .map_err(|e| violation(format!("pool of {pool_slots} slots: {e}")))?
    } else {
        DmaPlatform::iommu(memory)
    }
    .shared();
    let cfg = PortConfig {
        mtu,
        rx_bds: 1 + u32::from(setup.rx_bds % 32),
        tx_queues: 1 + u32::from(setup.tx_queues % 4),
        tx_bds_per_queue: u32::from(setup.tx_bds % 512),
    };
    let backend = EmulatedBackend::new(Bnx2xDevice::new(), "model:bnx2x");
    let dma = DmaApi::new(DeviceName::new("bnx2x", "0000:04:00.0"), platform.clone(), u64::MAX);
    let mut port = match Bnx2xPort::open(backend, dma, cfg.clone()) {
        Ok(p) => p,
        Err(e) => return check_msg("open", &e).map(|()| PortCounters::default()),
    };
    let rx_bds = cfg.rx_bds as usize;
    let pool_total = platform.borrow().pool().map(|p| p.config().nslabs);
    for (i, op) in ops.iter().enumerate() {
        apply(&mut port, op, i)?;
        if port.rx_posted() > rx_bds {
            return Err(violation(format!("op {i}: {} rx buffers posted on a {rx_bds}-BD ring", port.rx_posted())));
        }
        if let (Some(total), Some(st)) = (pool_total, platform.borrow().pool_stats())
            && st.used > total
        {
            return Err(violation(format!("op {i}: pool reports {} of {total} slots used", st.used)));
        }
    }
    let counters = port.counters;
    let (report, backend) = port.close();
    if report.result != CheckResult::Pass {
        return Err(violation(format!("close: {:?} ({})", report.result, report.detail)));
    }
    if let Some(st) = platform.borrow().pool_stats()
        && (st.used != 0 || st.live_mappings != 0)
    {
        return Err(violation(format!(
            "after close the pool holds {} slots in {} mappings",
            st.used, st.live_mappings
        )));
    }
    if backend.live_mappings() != 0 {
        return Err(violation(format!("after close the backend holds {} DMA windows", backend.live_mappings())));
    }
    Ok(counters)
}

/// An address the device aims at: near the buffer at the rx consumer, or anywhere.
fn target(port: &Port, near: bool, addr: u64) -> u64 {
    match (near, port.rx_head_addr()) {
        (true, Some(head)) => head.wrapping_add(addr % 0x4000).wrapping_sub(0x1000),
        _ => addr,
    }
}

fn apply(port: &mut Port, op: &Op, i: usize) -> Result<(), Violation> {
    match op {
        Op::Rx { len, fill, field, value } => {
            let Some(addr) = port.rx_head_addr() else {
                return match port.rx_complete(&FastPathRxCqe::default()) {
                    RxOutcome::Empty => Ok(()),
                    other => Err(violation(format!("op {i}: CQE on an empty ring gave {other:?}"))),
                };
            };
            let frame = vec![*fill; usize::from(*len)];
            let mtu = port.config().mtu;
            let Ok(mut cqe) = port.backend.device_mut().receive(addr, &frame, mtu) else { return Ok(()) };
            if let Some(f) = field {
                let v = *value;
                match f % 6 {
                    0 => cqe.type_error_flags = v as u8,
                    1 => cqe.placement_offset = v as u8,
                    2 => cqe.pkt_len_or_gro_seg_len.set(v),
                    3 => cqe.len_on_bd.set(v),
                    4 => cqe.marker.set(u32::from(v) | 0xFFFF_0000),
                    _ => cqe.status_flags = v as u8,
                }
            }
            complete(port, &cqe, i)
        }
        Op::RawCqe { raw } => {
            let mut bytes = [0u8; CQE_LEN];
            for (d, s) in bytes.iter_mut().zip(raw) {
                *d = *s;
            }
            let Ok(cqe) = FastPathRxCqe::read_from_bytes(&bytes) else { return Ok(()) };
            complete(port, &cqe, i)
        }
        Op::Tx { queue, linear, frags } => {
            let skb = TxSkb {
                linear: usize::from(*linear),
                frags: frags.iter().take(hw::MAX_SKB_FRAGS as usize + 2).map(|&f| usize::from(f)).collect(),
            };
            match port.tx_submit(usize::from(*queue), &skb) {
                TxOutcome::Dropped(e) => check_msg(&format!("op {i} tx"), &e),
                _ => Ok(()),
            }
        }
        Op::TxDone { pos } => {
            let n = port.tx_in_flight();
            let done = port.tx_complete(usize::from(*pos));
            if done != (usize::from(*pos) < n) {
                return Err(violation(format!("op {i}: tx_complete({pos}) = {done} with {n} in flight")));
            }
            Ok(())
        }
        Op::DevWrite { near, addr, bytes } => {
            let a = target(port, *near, *addr);
            let dev = port.backend.device_mut();
            let now = dev.now_ns();
            let _ = dev.iommu().write(a, bytes, now);
            Ok(())
        }
        Op::DevRead { near, addr, len } => {
            let a = target(port, *near, *addr);
            let _ = port.backend.device_mut().fetch_tx(a, usize::from(*len));
            Ok(())
        }
        Op::ChainFetch { near, pages, per_page, slots, index } => {
            let pages: Vec<u64> = pages.iter().take(8).map(|&p| target(port, *near, p)).collect();
            let layout = RingLayout::Paged { pages, per_page: u32::from(*per_page) };
            if let Ok(ring) = DescRing::<RxBd>::new("rx BD chain", layout, u32::from(*slots)) {
                let dev = port.backend.device_mut();
                let now = dev.now_ns();
                if let Err(e) = ring.fetch(dev.iommu(), *index, now) {
                    check_msg(&format!("op {i} BD fetch"), &e)?;
                }
            }
            Ok(())
        }
        Op::Config { write, offset, size, value } => {
            let size = [1u8, 2, 4].get(usize::from(*size % 3)).copied().unwrap_or(4);
            if *write {
                let _ = port.backend.config_write(*offset, size, *value);
            } else {
                let _ = port.backend.config_read(*offset, size);
            }
            Ok(())
        }
        Op::Bar { write, bar, offset, value } => {
            let dev = port.backend.device_mut();
            let off = u64::from(*offset);
            if *write {
                dev.bar_write32(*bar % 6, off, *value);
            } else {
                let _ = dev.bar_read32(*bar % 6, off);
            }
            Ok(())
        }
        Op::Advance { ns } => {
            port.backend.device_mut().advance(u64::from(*ns));
            Ok(())
        }
    }
}

fn complete(port: &mut Port, cqe: &FastPathRxCqe, i: usize) -> Result<(), Violation> {
    let before = port.rx_posted();
    match port.rx_complete(cqe) {
        RxOutcome::BadCqe(e) => {
            check_msg(&format!("op {i} CQE"), &e)?;
            if port.rx_posted() != before {
                return Err(violation(format!(
                    "op {i}: a refused CQE changed the rx ring from {before} to {} buffers ({e})",
                    port.rx_posted()
                )));
            }
            Ok(())
        }
        RxOutcome::Dropped(e) => check_msg(&format!("op {i} rx refill"), &e),
        RxOutcome::Delivered { len } => {
            if usize::from(len) > port.config().rx_buf_size() {
                return Err(violation(format!(
                    "op {i}: delivered {len} bytes from a {}-byte buffer",
                    port.config().rx_buf_size()
                )));
            }
            Ok(())
        }
        RxOutcome::Empty => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(xen: bool, pool_slots: u16) -> Setup {
        Setup { xen, generation: 0, pool_slots, mtu_pick: 1, raw_mtu: 0, rx_bds: 7, tx_queues: 0, tx_bds: 200 }
    }

    #[test]
    fn good_frames_are_delivered_and_hostile_cqes_refused_on_both_platforms() {
        let ops = vec![
            Op::Rx { len: 9000, fill: 1, field: None, value: 0 },
            Op::Rx { len: 60, fill: 2, field: Some(3), value: 0xFFFF },
            Op::RawCqe { raw: vec![0xFF; 64] },
            Op::Tx { queue: 0, linear: 25158, frags: vec![] },
            Op::Tx { queue: 0, linear: 128, frags: vec![4096; 6] },
            Op::TxDone { pos: 1 },
            Op::DevWrite { near: true, addr: 0x3000, bytes: vec![0xEE; 256] },
            Op::Rx { len: 1514, fill: 3, field: None, value: 0 },
        ];
        for xen in [false, true] {
            let c = run_ops(&setup(xen, 400), &ops).unwrap();
            assert_eq!((c.rx_frames, c.rx_bad_cqe, c.tx_packets), (2, 2, 2), "xen {xen}: {c:?}");
        }
    }

    #[test]
    fn an_exhausted_pool_drops_and_close_still_balances() {
        // One 128-slot segment, page-aligned 5-slot rx buffers: 21 fit and the 30-BD ring is
        // left 9 short; neither a 25158-byte linear skb (13 slots) nor an rx refill fits.
        let ops = vec![
            Op::Tx { queue: 0, linear: 25158, frags: vec![] },
            Op::Rx { len: 9000, fill: 1, field: None, value: 0 },
        ];
        let c = run_ops(&Setup { rx_bds: 29, ..setup(true, 0) }, &ops).unwrap();
        assert_eq!((c.rx_ring_short, c.tx_map_errors, c.rx_map_errors, c.rx_frames), (9, 1, 1, 0), "{c:?}");
    }
}
