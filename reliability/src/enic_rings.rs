//! Fuzz harness: the Cisco VIC (enic) ring model (`device-model/src/enic.rs`) and the enic
//! driver (`driver/nics/src/enic/`) against an adapter that misbehaves.
//!
//! The fuzzer picks the adapter's configured MTU (any value), the interface MTU, the ring
//! size, the driver policy (nicqual's, or the early 2.6.3x driver it models) and the platform
//! (direct DMA, or a Xen dom0 bouncing through a small SWIOTLB pool), then runs a sequence of:
//! transmits of any length (looped back by the adapter), frames from the wire, completions
//! written by the adapter with any index, length, flags and colour, the adapter's own receive
//! faults (overrun, over-length, span, unposted index), register reads and writes anywhere in
//! BAR0 (ring bases, sizes, indices, CQ cursors), device writes anywhere in IOVA space, surprise
//! removal, TX/RX service (on pair 0, or on any WQ/RQ pair the driver brought up), armed
//! device faults (`hostile-completion:N` corrupting one
//! field of the N-th completion, `lose-vector:N`), devcmds written raw, interrupt waits, and
//! (in the setup) one resource table entry rewritten before bring-up.
//!
//! Invariants: no panic. For nicqual's driver: no device write ever lands in the guard after
//! a receive buffer (`overrun_landed` stays 0: the streaming window per posted buffer stops it), no
//! delivered frame is longer than the posted buffer, no more buffers outstanding than ring
//! entries on any RQ, every error typed with a non-empty message; and while the adapter behaves
//! (no fault, no injected completion, no register write, no stray DMA), the frames the driver
//! delivers on each RQ are, in order, a subsequence of the frames sent on the WQ of the
//! same number (and, on RQ 0, received from the wire), byte for byte.

use crate::{Violation, violation};
use arbitrary::{Arbitrary, Unstructured};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_hw::enic::{self as hw, CqEnetRqDesc, RqCompletion};
use nicqual_model::enic::{BAR0_LEN, DEVCMD_BASE, EnicDevice, EnicFault, EnicFaultPlan, INTR_COUNT};
use nicqual_model::{Fault, FaultKind, FaultPlan};
use nicqual_nics::enic::{Enic, Platform, Policy};
use std::collections::VecDeque;

const MAX_OPS: usize = 64;
/// A device write aimed "near" lands within this many bytes above the driver's ring block
/// (`Enic::dma_base`: rings, then the buffer windows the DMA API hands out above them).
const NEAR_SPAN: u64 = 4 << 20;

#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    Send {
        len: u16,
        fill: u8,
    },
    Wire {
        len: u16,
        fill: u8,
    },
    PollRx,
    PollTx,
    /// A receive completion at CQ 0's tail with these fields; `color` false writes the
    /// colour the driver expects (a fresh entry), true the other (a stale one).
    Completion {
        index: u16,
        q: u16,
        sop: bool,
        eop: bool,
        bytes: u16,
        truncated: bool,
        fcs_ok: bool,
        ty: u8,
        stale: bool,
    },
    Fault {
        kind: u8,
    },
    RegWrite {
        off: u32,
        value: u32,
    },
    RegRead {
        off: u32,
    },
    DevWrite {
        near: bool,
        addr: u64,
        bytes: Vec<u8>,
    },
    Remove,
    /// Arm `hostile-completion:nth` (seeded) on the device.
    Hostile {
        nth: u8,
        seed: u64,
    },
    /// Arm `lose-vector:vector` (vector taken modulo the device's).
    LoseVector {
        vector: u8,
    },
    /// A raw devcmd: arguments, then the command word.
    Devcmd {
        cmd: u32,
        a0: u64,
    },
    /// Wait for the RX or TX vector (bounded).
    WaitIrq {
        tx: bool,
    },
    /// Transmit on WQ `pair` (modulo the pairs brought up); it loops back to RQ `pair`.
    SendOn {
        pair: u8,
        len: u16,
        fill: u8,
    },
    /// Service RQ `pair`'s CQ (modulo the pairs brought up).
    PollRxOn {
        pair: u8,
    },
}

#[derive(Debug, Clone, Arbitrary)]
pub struct Setup {
    adapter_mtu: u16,
    mtu: u16,
    entries: u8,
    early: bool,
    xen: bool,
    pool_slots: u16,
    /// Rewrite resource table entry `entry % 8` before bring-up (type, BAR, offset, count).
    table: Option<(u8, u8, u8, u32, u32)>,
}

/// Run one input.
pub fn run(data: &[u8]) -> Result<(), Violation> {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else { return Ok(()) };
    let ops: Vec<Op> = crate::decode_ops(&mut u, MAX_OPS);
    run_ops(&setup, &ops).map(drop)
}

/// A frame of `len` bytes of `fill` whose first four bytes (when it has them) number it.
fn numbered(seq: &mut u32, len: u16, fill: u8) -> Vec<u8> {
    let mut f = vec![fill; usize::from(len)];
    *seq += 1;
    for (d, s) in f.iter_mut().zip(seq.to_be_bytes()) {
        *d = s;
    }
    f
}

/// Queue `frame` as expected back on RQ `q`.
fn push(expected: &mut [VecDeque<Vec<u8>>], q: u32, frame: Vec<u8>) {
    if let Some(x) = expected.get_mut(q as usize) {
        x.push_back(frame);
    }
}

fn typed(what: &str, e: &dyn std::fmt::Display) -> Result<(), Violation> {
    if e.to_string().trim().is_empty() {
        return Err(violation(format!("{what}: error with an empty message")));
    }
    Ok(())
}

/// Run a decoded setup and op list; returns how many delivered frames were checked against
/// what was sent (byte for byte, in order).
pub fn run_ops(setup: &Setup, ops: &[Op]) -> Result<usize, Violation> {
    let policy = if setup.early { Policy::Early } else { Policy::Nicqual };
    let platform = if setup.xen {
        Platform::XenDom0 { pool_slots: 32 + usize::from(setup.pool_slots % 512) }
    } else {
        Platform::Direct
    };
    // Mostly valid ring sizes (64 or 96 entries), now and then a refused one.
    let entries = match setup.entries % 8 {
        0 => u32::from(setup.entries),
        1..=4 => 64,
        _ => 96,
    };
    let mut dev = EnicDevice::new(u32::from(setup.adapter_mtu), EnicFaultPlan::none());
    if let Some((entry, ty, bar, off, count)) = setup.table {
        let _ = dev.set_resource(usize::from(entry % 8), ty, bar, off, count);
    }
    let mut e =
        match Enic::new(EmulatedBackend::new(dev, "model:enic"), policy, platform, u32::from(setup.mtu), entries) {
            Ok((e, _)) => e,
            Err(err) => return typed("bring-up", &err).map(|()| 0),
        };
    let nicqual = policy == Policy::Nicqual;
    let mut honest = true;
    let pairs = e.pairs().max(1);
    // Per RQ: what may come back on it, in order.
    let mut expected: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); pairs as usize];
    let mut out = Vec::new();
    let mut polled = 0u32;
    let mut seq = 0u32;
    let mut verified = 0;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Send { len, fill } => {
                let frame = numbered(&mut seq, *len, *fill);
                match e.send(&frame) {
                    Ok(()) => push(&mut expected, 0, frame),
                    Err(err) => typed(&format!("op {i} send"), &err)?,
                }
            }
            Op::SendOn { pair, len, fill } => {
                let q = u32::from(*pair) % pairs;
                let frame = numbered(&mut seq, *len, *fill);
                match e.send_on(q, &frame) {
                    Ok(()) => push(&mut expected, q, frame),
                    Err(err) => typed(&format!("op {i} send on pair {q}"), &err)?,
                }
            }
            Op::PollRxOn { pair } => {
                polled = u32::from(*pair) % pairs;
                out.clear();
                if let Err(err) = e.poll_rx_on(polled, &mut out) {
                    typed(&format!("op {i} poll pair {polled}"), &err)?;
                }
            }
            Op::Wire { len, fill } => {
                let frame = numbered(&mut seq, *len, *fill);
                let _ = e.backend_mut().device_mut().receive(&frame);
                push(&mut expected, 0, frame);
            }
            Op::PollRx => {
                polled = 0;
                out.clear();
                e.poll_rx(&mut out);
            }
            Op::PollTx => e.poll_tx(),
            Op::Completion { index, q, sop, eop, bytes, truncated, fcs_ok, ty, stale } => {
                honest = false;
                let fresh = e.backend().device().cq_tail_color(0);
                let c = RqCompletion {
                    completed_index: *index,
                    q_number: *q,
                    sop: *sop,
                    eop: *eop,
                    bytes_written: *bytes,
                    truncated: *truncated,
                    fcs_ok: *fcs_ok,
                    ty: if *ty < 0x80 { hw::CQ_DESC_TYPE_RQ_ENET } else { *ty & 0x7F },
                    color: fresh != *stale,
                };
                let _ = e.backend_mut().device_mut().inject_rq_completion(CqEnetRqDesc::new(c));
            }
            Op::Fault { kind } => {
                honest = false;
                if let Some(f) = EnicFault::ALL.get(usize::from(*kind) % EnicFault::ALL.len()) {
                    e.backend_mut().device_mut().force_next(*f);
                }
            }
            Op::RegWrite { off, value } => {
                honest = false;
                e.backend_mut().device_mut().reg_write32(u64::from(*off) % (BAR0_LEN + 0x100), *value);
            }
            Op::RegRead { off } => {
                let _ = e.backend_mut().device_mut().reg_read32(u64::from(*off) % (BAR0_LEN + 0x100));
            }
            Op::DevWrite { near, addr, bytes } => {
                honest = false;
                let a = if *near { e.dma_base() + addr % NEAR_SPAN } else { *addr };
                let dev = e.backend_mut().device_mut();
                let now = dev.now_ns();
                let _ = dev.iommu().write(a, bytes, now);
            }
            Op::Remove => {
                honest = false;
                e.backend_mut().device_mut().surprise_remove();
            }
            Op::Hostile { nth, seed } => {
                honest = false;
                let mut plan = FaultPlan::new(*seed);
                plan.faults.push(Fault { kind: FaultKind::HostileCompletion { nth: u32::from(*nth) }, at_ns: 0 });
                e.backend_mut().device_mut().arm_faults(plan);
            }
            Op::LoseVector { vector } => {
                let v = u16::from(*vector) % INTR_COUNT as u16;
                e.backend_mut().device_mut().arm_faults(FaultPlan::new(0).lose_vector(v));
            }
            Op::Devcmd { cmd, a0 } => {
                honest = false;
                let d = e.backend_mut().device_mut();
                d.reg_write32(DEVCMD_BASE + hw::DEVCMD_ARGS, *a0 as u32);
                d.reg_write32(DEVCMD_BASE + hw::DEVCMD_ARGS + 4, (*a0 >> 32) as u32);
                d.reg_write32(DEVCMD_BASE + hw::DEVCMD_CMD, *cmd);
            }
            Op::WaitIrq { tx } => {
                let _ = e.wait_irq(*tx, 20_000);
            }
        }
        if !nicqual {
            continue;
        }
        if e.stats.overrun_landed != 0 {
            return Err(violation(format!(
                "op {i}: {} device writes landed in a receive buffer's guard",
                e.stats.overrun_landed
            )));
        }
        for q in 0..pairs {
            let held = e.rx_outstanding_on(q).unwrap_or(0);
            if held > entries {
                return Err(violation(format!("op {i}: {held} receive buffers outstanding on RQ {q}")));
            }
        }
        for f in &out {
            if f.len() > e.buf_len() as usize {
                return Err(violation(format!(
                    "op {i}: delivered {} bytes from a {}-byte buffer",
                    f.len(),
                    e.buf_len()
                )));
            }
            if honest {
                // In order: skip frames the adapter or driver dropped, then it must match.
                let Some(exp) = expected.get_mut(polled as usize) else { continue };
                match exp.iter().position(|x| x == f) {
                    Some(p) => {
                        exp.drain(..=p);
                        verified += 1;
                    }
                    None => {
                        return Err(violation(format!(
                            "op {i}: RQ {polled} delivered a {}-byte frame not sent on its WQ (or out of order)",
                            f.len()
                        )));
                    }
                }
            }
        }
        out.clear();
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(early: bool, xen: bool) -> Setup {
        Setup { adapter_mtu: 9000, mtu: 9000, entries: 1, early, xen, pool_slots: 500, table: None }
    }

    /// `DevWrite { near: true }` aims at the driver's own mappings: the ring block at
    /// `dma_base` is mapped, so such a write reaches memory instead of an IOMMU fault.
    #[test]
    fn near_device_writes_reach_the_drivers_mappings() {
        let dev = EnicDevice::new(9000, EnicFaultPlan::none());
        let backend = EmulatedBackend::new(dev, "model:enic");
        let (mut e, _) = Enic::new(backend, Policy::Nicqual, Platform::Direct, 9000, 64).unwrap();
        let base = e.dma_base();
        let d = e.backend_mut().device_mut();
        let now = d.now_ns();
        assert!(d.iommu().write(base + 64, &[0u8; 16], now).is_ok());
        assert!(d.dma_faults().is_empty());
    }

    #[test]
    fn an_honest_adapter_delivers_what_was_sent_and_the_check_sees_it() {
        let mut ops = Vec::new();
        for (k, len) in [60u16, 1514, 4000, 9018].into_iter().enumerate() {
            ops.push(Op::Send { len, fill: k as u8 });
            ops.push(Op::Wire { len, fill: 0x80 | k as u8 });
            ops.push(Op::PollRx);
        }
        for xen in [false, true] {
            assert_eq!(run_ops(&setup(false, xen), &ops).unwrap(), 8, "xen {xen}");
        }
        // Frames sent on pairs 1..3 come back on their own RQ and are checked there; on
        // pair 0's RQ nothing of theirs appears.
        let mut ops = Vec::new();
        for pair in 0..4u8 {
            ops.push(Op::SendOn { pair, len: 200 + u16::from(pair), fill: pair });
            ops.push(Op::SendOn { pair, len: 300, fill: pair });
            ops.push(Op::PollRx);
            ops.push(Op::PollRxOn { pair });
        }
        assert_eq!(run_ops(&setup(false, false), &ops).unwrap(), 8);
    }

    #[test]
    fn hostile_completions_and_register_writes_are_survived() {
        let ops = vec![
            Op::Send { len: 1514, fill: 1 },
            Op::Completion {
                index: 63,
                q: 0,
                sop: true,
                eop: true,
                bytes: 0xFFFF,
                truncated: false,
                fcs_ok: true,
                ty: 0,
                stale: false,
            },
            Op::Fault { kind: 0 },
            Op::Send { len: 9018, fill: 2 },
            Op::RegWrite { off: 0x2000, value: 0x4000_0100 },
            Op::DevWrite { near: true, addr: 0x1_0000, bytes: vec![0xFF; 64] },
            Op::PollRx,
            Op::PollTx,
            Op::Remove,
            Op::Send { len: 60, fill: 3 },
            Op::PollRx,
        ];
        let armed = vec![
            Op::Hostile { nth: 1, seed: 7 },
            Op::LoseVector { vector: 0 },
            Op::Send { len: 1514, fill: 1 },
            Op::WaitIrq { tx: false },
            Op::Send { len: 60, fill: 2 },
            Op::PollRx,
            Op::Devcmd { cmd: nicqual_hw::enic::CMD_DISABLE, a0: 0 },
            Op::Send { len: 60, fill: 3 },
            Op::PollRx,
        ];
        for early in [false, true] {
            assert!(run_ops(&setup(early, false), &armed).is_ok(), "early {early}");
        }
        // A broken resource table is refused at bring-up with a typed error.
        let mut broken = setup(false, false);
        broken.table = Some((1, hw::RES_TYPE_WQ, 0, 0xFF, u32::MAX));
        assert_eq!(run_ops(&broken, &ops).unwrap(), 0);
        for early in [false, true] {
            assert!(run_ops(&setup(early, false), &ops).is_ok(), "early {early}");
        }
    }
}
