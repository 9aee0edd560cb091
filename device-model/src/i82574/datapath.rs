//! The 82574L datapath: transmit and receive descriptor rings, the wire port, MAC loopback,
//! the receive packet buffer, delay timers and statistics.
//!
//! Behaviour (facts: `shared/reference/i82574.md` §2, §4; QEMU e1000e_core.c):
//! * **TX** (two queues) runs synchronously on a TDT write (and on TCTL and TARC writes):
//!   a queue transmits only with TARC(q).ENABLE (bit 10; QEMU gates the same way); every
//!   descriptor from TDH to TDT is fetched through the IOMMU and decoded as legacy, context or data
//!   ([`nicqual_hw::i82574_desc::TxDesc::kind`]); buffers are gathered until EOP; checksum
//!   offload (legacy CMD.IC with CSO/CSS; data POPTS.IXSM/TXSM with the last context) is
//!   applied; short frames are padded to 60 bytes when TCTL.PSP is set; the FCS is appended
//!   when CMD.IFCS is set. DD is written back only for descriptors with RS (or with IVAR
//!   bit 31). Each queue gathers its own frame and keeps its own offload context. While
//!   both queues have work they take turns of TARC(q).COUNT frames (at least one), queue 0
//!   first (inference: the arbitration rule is not read from a datasheet table; QEMU runs
//!   each queue to its tail in turn). Causes per queue: TXDW (TXQ0 or TXQ1, by the queue
//!   that did the work, under MSI-X), delayed by TIDV/TADV when IDE is set; TXQE when the
//!   ring has drained.
//! * **Wire**: with RCTL.LBM = 01 (MAC loopback) a frame goes straight to this device's own
//!   receive path; otherwise it goes on the [`crate::wire::WireEnd`] if one is connected and
//!   the link is up, else it is discarded (counted in [`DatapathCounters::tx_no_link`]).
//! * **RX** (two queues): receiving needs RCTL.EN. A frame goes to queue 0 unless RSS
//!   chooses (MRQC.MRQE = 01 with RXCSUM.PCSD and extended descriptors; [`super::rss`]):
//!   then bit 7 of RETA entry `hash & 0x7F` names the queue, and the last descriptor's
//!   write-back carries the Toeplitz hash, the RSS type (MRQ bits 3:0) and the queue (MRQ
//!   bits 12:8). Extended write-backs also carry the packet type (status 19:16) and, with
//!   PCSD clear, the IPv4 identification with IPIDV (QEMU `e1000e_build_rx_metadata`). The FCS is checked (CRCERRS), then the size: below 64 bytes with FCS → RUC,
//!   above 1522 (or, with RCTL.LPE, above [`MAX_JUMBO_FRAME`] = 9234) → ROC, both dropped
//!   unless RCTL.SBP. Then the address filter (UPE/MPE/BAM, RAL/RAH with AV, MTA hash for
//!   MO = 00). A frame longer than one receive buffer (RCTL.BSIZE/BSEX) **spans** several
//!   descriptors with EOP on the last one — the datasheet behaviour, and the one the facts
//!   imply: Linux sizes 82574 jumbo buffers at 4096 bytes for any max frame above 2048
//!   (reference §4), so a 9018-byte frame can only arrive spread over three descriptors;
//!   QEMU's model writes across descriptors the same way. The FCS is stripped with
//!   RCTL.SECRC, else delivered and counted in the length.
//! * **Packet buffer**: a frame that finds too few descriptors waits in the receive packet
//!   buffer (its size is PBA's low half, in KiB: 20 KiB at reset) and RNBC counts it; when
//!   the buffer is full the frame is missed: MPC counts it and ICR.RXO is raised. Posting
//!   descriptors (RDT write) drains the buffer in order.
//! * **Causes**: RXT0 after RDTR (packet timer, restarted per frame) or RADV (absolute
//!   timer), both in 1.024 µs units on the virtual clock; RDTR = 0 means immediately;
//!   RDTR.FPD flushes. RXDMT0 when free descriptors fall to RCTL.RDMTS (1/2, 1/4, 1/8 of
//!   the ring). Under MSI-X the queue causes are RXQ0/RXQ1 (by the queue that received)
//!   and TXQ0/TXQ1 instead of RXT0/RXDMT0/TXDW, as QEMU models it; RXO is an Other cause.
//!   The packet buffer is one FIFO for both queues: a frame waiting for its queue's
//!   descriptors holds back the frames behind it, whatever their queue.
//! * **Descriptor DMA that the IOMMU blocks** stops the queue where it is (TDH/RDH are not
//!   advanced past the bad slot) and is counted; a blocked buffer write sets RXE in the
//!   descriptor's errors.

use super::I82574;
use super::rss::{self, Flow, L3};
use crate::net;
use crate::ring::{DescRing, HeadTail, RingError, RingLayout};
use crate::wire::{self, WireEnd};
use nicqual_hw::i82574::{self as r, Icr, RssType};
use nicqual_hw::i82574_desc::{self as d, ExtRxWb, LegacyRxDesc, TxDesc, TxKind};

/// Largest frame (with FCS) accepted with RCTL.LPE.
pub const MAX_JUMBO_FRAME: usize = d::MAX_JUMBO_FRAME;
/// Largest frame gathered on transmit before it is dropped as malformed (the legacy length
/// field is 16 bits; no 82574 frame can be longer).
pub const MAX_TX_FRAME: usize = 16 * 1024;
/// Timer units of RDTR/RADV/TIDV/TADV, ns.
pub const DELAY_UNIT_NS: u64 = 1024;
/// RDTR/TIDV bit 31: flush partial descriptor block.
pub const DELAY_FPD: u32 = nicqual_hw::i82574::fields::delay::FPD.mask();

/// What the datapath did, beyond the chip's own statistics registers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DatapathCounters {
    pub tx_frames: u64,
    pub tx_loopback: u64,
    pub tx_no_link: u64,
    /// Descriptor fetches the IOMMU blocked (queue stopped).
    pub tx_desc_dma_faults: u64,
    /// Buffer reads the IOMMU blocked (frame dropped).
    pub tx_buf_dma_faults: u64,
    /// Frames dropped for exceeding the model's 16 KiB transmit limit (`MAX_TX_FRAME`).
    pub tx_oversize: u64,
    /// Descriptors with a reserved DTYP.
    pub tx_reserved_desc: u64,
    /// TDH/TDT/TDLEN values that name no slot (queue not processed).
    pub tx_bad_ring: u64,
    pub rx_frames: u64,
    /// Frames dropped because RCTL.EN was clear.
    pub rx_disabled: u64,
    /// Frames the address filter rejected.
    pub rx_filtered: u64,
    pub rx_desc_dma_faults: u64,
    pub rx_buf_dma_faults: u64,
    /// RDH/RDT/RDLEN values that name no slot.
    pub rx_bad_ring: u64,
    /// Frames that waited in the packet buffer.
    pub rx_buffered: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct TxContext {
    ipcss: u8,
    ipcso: u8,
    ipcse: u16,
    tucss: u8,
    tucso: u8,
    tucse: u16,
}

/// A frame being gathered from one TX queue's descriptors.
#[derive(Debug, Default)]
struct TxGather {
    frame: Vec<u8>,
    /// A piece could not be read, or the frame grew too long: dropped at EOP.
    bad: bool,
}

/// What one transmit pass over a queue did, for its causes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TxPass {
    /// The queue was looked at (ring valid).
    ran: bool,
    /// A descriptor was written back (RS, or IVAR bit 31).
    reported: bool,
    /// One of those had IDE: the cause waits for TIDV/TADV.
    delayed: bool,
}

/// Datapath state that is not a register.
#[derive(Debug, Default)]
pub struct Datapath {
    pub(super) wire: Option<WireEnd>,
    /// Receive packet buffer (frames with FCS, waiting for descriptors).
    fifo: std::collections::VecDeque<Vec<u8>>,
    fifo_bytes: usize,
    spare: Vec<Vec<u8>>,
    /// The frame each TX queue is gathering (descriptors up to EOP).
    tx_frames: [TxGather; 2],
    tx_ctx: [TxContext; 2],
    rx_scratch: Vec<u8>,
    rx_pkt_timer: Option<u64>,
    rx_abs_timer: Option<u64>,
    /// Queues (bit q) whose receive cause waits for RDTR/RADV.
    rx_delayed: u8,
    tx_pkt_timer: [Option<u64>; 2],
    tx_abs_timer: [Option<u64>; 2],
    /// Re-entrancy guard: loopback delivery from inside TX processing.
    in_rx: bool,
    pub counters: DatapathCounters,
}

impl Datapath {
    /// CTRL.RST / power-on: rings, buffer and timers cleared; the wire stays plugged in.
    pub(super) fn reset(&mut self) {
        let wire = self.wire.take();
        let counters = std::mem::take(&mut self.counters);
        *self = Datapath { wire, counters, ..Datapath::default() };
    }

    pub(super) fn next_deadline(&self) -> Option<u64> {
        [self.rx_pkt_timer, self.rx_abs_timer]
            .into_iter()
            .chain(self.tx_pkt_timer)
            .chain(self.tx_abs_timer)
            .flatten()
            .min()
    }
}

/// Where a received frame goes and what its extended write-back says beyond status.
#[derive(Debug, Clone, Copy, Default)]
struct RxMeta {
    /// Receive queue (RSS; 0 without).
    queue: u32,
    /// MRQ dword: RSS type 3:0, queue 12:8.
    mrq: u32,
    /// RSS hash (PCSD set) or IPv4 identification (PCSD clear, IPIDV).
    rss_or_csum: u32,
    /// Extra status bits: packet type 19:16, IPIDV.
    status: u32,
}

/// Outcome of offering a frame to the receive path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxOutcome {
    Delivered,
    Buffered,
    Missed,
    CrcError,
    Undersize,
    Oversize,
    Filtered,
    Disabled,
    DmaFault,
}

/// The size-bucket counters of one direction: 64, 65-127, 128-255, 256-511, 512-1023,
/// 1024 and up (octets with FCS).
struct SizeCounters([u32; 6]);

impl SizeCounters {
    const RX: SizeCounters = SizeCounters([r::PRC64, r::PRC127, r::PRC255, r::PRC511, r::PRC1023, r::PRC1522]);
    const TX: SizeCounters = SizeCounters([r::PTC64, r::PTC127, r::PTC255, r::PTC511, r::PTC1023, r::PTC1522]);
}

/// The counter a frame of `octets` (with FCS) counts in.
fn size_bucket(c: SizeCounters, octets: usize) -> u32 {
    let [b64, b127, b255, b511, b1023, b1522] = c.0;
    match octets {
        ..=64 => b64,
        65..=127 => b127,
        128..=255 => b255,
        256..=511 => b511,
        512..=1023 => b1023,
        _ => b1522,
    }
}

impl I82574 {
    // ---- public datapath API ----------------------------------------------------------

    /// Plug this device's port into one end of a cable.
    pub fn connect(&mut self, end: WireEnd) {
        self.dp.wire = Some(end);
    }

    /// Unplug the port from its cable.
    pub fn disconnect(&mut self) -> Option<WireEnd> {
        self.dp.wire.take()
    }

    pub fn datapath_counters(&self) -> &DatapathCounters {
        &self.dp.counters
    }

    /// Frames waiting in the receive packet buffer.
    pub fn rx_buffered_frames(&self) -> usize {
        self.dp.fifo.len()
    }

    // ---- helpers ------------------------------------------------------------------------

    fn stat_add(&mut self, off: u32, n: u32) {
        self.set_reg(off, self.reg(off).saturating_add(n));
    }

    /// Add to a 64-bit low/high statistics pair.
    fn stat_add64(&mut self, lo: u32, n: u64) {
        let v = ((self.reg(lo + 4) as u64) << 32 | self.reg(lo) as u64).saturating_add(n);
        self.set_reg(lo, v as u32);
        self.set_reg(lo + 4, (v >> 32) as u32);
    }

    fn loopback(&self) -> bool {
        self.reg(r::RCTL) & (0b11 << r::RCTL_LBM_SHIFT) == r::RCTL_LBM_MAC
    }

    fn ring_geom(&self, len_reg: u32) -> Option<HeadTail> {
        HeadTail::new((self.reg(len_reg) & 0x000F_FF80) / d::DESC_LEN as u32)
    }

    fn ring_base(&self, lo: u32, hi: u32) -> u64 {
        (self.reg(hi) as u64) << 32 | (self.reg(lo) & !0xF) as u64
    }

    // ---- transmit -----------------------------------------------------------------------

    /// True when TX queue `q` may send (TARC(q).ENABLE) and has descriptors from TDH to TDT.
    fn tx_has_work(&self, q: u32) -> bool {
        self.reg(r::tarc(q)) & r::TARC_ENABLE != 0 && self.reg(r::tdh(q)) != self.reg(r::tdt(q))
    }

    /// Frames queue `q` sends per turn while the other queue also has work: TARC(q).COUNT,
    /// at least one (inference: the datasheet table for COUNT is not at hand; QEMU sends
    /// each queue's whole ring in turn and does not arbitrate).
    fn tx_turn_frames(&self, q: u32) -> u32 {
        (self.reg(r::tarc(q)) & r::TARC_COUNT_MASK).max(1)
    }

    /// TX queue `q` is enabled and its ring registers name slots.
    fn tx_ring_ok(&self, q: u32) -> bool {
        self.reg(r::tarc(q)) & r::TARC_ENABLE != 0
            && self
                .ring_geom(r::tdlen(q))
                .is_some_and(|g| g.in_range(self.reg(r::tdh(q))) && g.in_range(self.reg(r::tdt(q))))
    }

    /// Run the transmit DMA engine after a write to TDT(q), TARC(q) (`touched` = that
    /// queue) or TCTL (both): every enabled queue with work is processed from TDH to TDT.
    /// While both queues have work they take turns of [`Self::tx_turn_frames`] frames each,
    /// queue 0 first; a queue alone runs to its tail. Once the engine stops, each queue
    /// that ran or was touched raises its write-back cause (TXQ0/TXQ1 under MSI-X, TXDW
    /// otherwise) if a descriptor was reported, and TXQE if it is empty.
    pub(super) fn tx_kick(&mut self, touched: [bool; 2]) {
        if self.reg(r::TCTL) & r::TCTL_EN == 0 {
            return;
        }
        let mut pass = [TxPass::default(); 2];
        for (q, p) in (0..r::QUEUES).zip(pass.iter_mut()) {
            p.ran = touched.get(q as usize).copied().unwrap_or(false) && self.tx_ring_ok(q);
        }
        // Bounded: every turn either moves a head toward its tail (which does not change
        // while the engine runs) or ends the loop.
        loop {
            let busy = [self.tx_has_work(0), self.tx_has_work(1)];
            let progress = match busy {
                [false, false] => break,
                [true, false] => self.tx_process(0, u32::MAX, &mut pass[0]),
                [false, true] => self.tx_process(1, u32::MAX, &mut pass[1]),
                [true, true] => {
                    let a = self.tx_process(0, self.tx_turn_frames(0), &mut pass[0]);
                    let b = self.tx_process(1, self.tx_turn_frames(1), &mut pass[1]);
                    a || b
                }
            };
            if !progress {
                break;
            }
        }
        for (q, p) in (0..r::QUEUES).zip(pass) {
            self.tx_pass_causes(q, p);
        }
    }

    /// Raise what a pass over TX queue `q` earned.
    fn tx_pass_causes(&mut self, q: u32, p: TxPass) {
        if !p.ran {
            return;
        }
        if p.reported {
            let tidv = (self.reg(r::TIDV) & 0xFFFF) as u64;
            if p.delayed && tidv > 0 {
                let qi = q as usize & 1;
                self.dp.tx_pkt_timer[qi] = Some(self.clock.after(tidv.saturating_mul(DELAY_UNIT_NS)));
                let tadv = (self.reg(r::TADV) & 0xFFFF) as u64;
                if tadv > 0 && self.dp.tx_abs_timer[qi].is_none() {
                    self.dp.tx_abs_timer[qi] = Some(self.clock.after(tadv.saturating_mul(DELAY_UNIT_NS)));
                }
            } else {
                self.raise_tx_cause(q);
            }
        }
        if self.reg(r::tdh(q)) == self.reg(r::tdt(q)) {
            self.set_interrupt_cause(Icr::TXQE.bits());
        }
    }

    /// Process TX queue `q` from TDH toward TDT, stopping after `max_frames` frames (at a
    /// frame boundary). True when TDH moved.
    fn tx_process(&mut self, q: u32, max_frames: u32, pass: &mut TxPass) -> bool {
        let Some(geom) = self.ring_geom(r::tdlen(q)) else { return false };
        let (start, tail) = (self.reg(r::tdh(q)), self.reg(r::tdt(q)));
        if !geom.in_range(start) || !geom.in_range(tail) {
            self.dp.counters.tx_bad_ring += 1;
            return false;
        }
        let name = if q == 0 { "TX0" } else { "TX1" };
        let Ok(ring) = DescRing::<TxDesc>::new(
            name,
            RingLayout::Contiguous { base: self.ring_base(r::tdbal(q), r::tdbah(q)) },
            geom.size(),
        ) else {
            self.dp.counters.tx_bad_ring += 1;
            return false;
        };
        pass.ran = true;
        let qi = q as usize & 1;
        let every_wb = self.reg(r::IVAR) & r::IVAR_TX_INT_EVERY_WB != 0;
        let mut head = start;
        let mut frames = 0u32;
        let (mut reported, mut delayed) = (false, false);
        while head != tail && frames < max_frames {
            let now = self.clock.now_ns();
            let desc = match ring.fetch(&mut self.iommu, head, now) {
                Ok(v) => v,
                Err(e) => {
                    self.dp.counters.tx_desc_dma_faults += 1;
                    tracing::debug!(target: "nicqual::i82574", "{e}");
                    break;
                }
            };
            let cmd = desc.cmd();
            match desc.kind() {
                TxKind::Context => {
                    let c = desc.as_context();
                    if let Some(ctx) = self.dp.tx_ctx.get_mut(qi) {
                        *ctx = TxContext {
                            ipcss: c.ipcss,
                            ipcso: c.ipcso,
                            ipcse: c.ipcse.get(),
                            tucss: c.tucss,
                            tucso: c.tucso,
                            tucse: c.tucse.get(),
                        };
                    }
                }
                TxKind::Reserved(_) => self.dp.counters.tx_reserved_desc += 1,
                kind @ (TxKind::Legacy | TxKind::Data) => {
                    let len = if kind == TxKind::Legacy {
                        (desc.lower.get() & 0xFFFF) as usize
                    } else {
                        (desc.lower.get() & d::TXD_DTALEN_MASK) as usize
                    };
                    self.tx_gather(qi, desc.addr.get(), len, now);
                    if cmd & d::TXD_CMD_EOP != 0 {
                        self.tx_finish(qi, &desc, kind);
                        frames += 1;
                    }
                }
            }
            if cmd & (d::TXD_CMD_RS | d::TXD_CMD_RPS) != 0 || every_wb {
                let status = [(desc.upper.get() as u8 & 0xF0) | d::TXD_STAT_DD as u8];
                if let Err(e) = ring.write_bytes(&mut self.iommu, head, d::TXD_STATUS_OFFSET, &status, now) {
                    self.dp.counters.tx_desc_dma_faults += 1;
                    tracing::debug!(target: "nicqual::i82574", "{e}");
                }
                reported = true;
                delayed |= cmd & d::TXD_CMD_IDE != 0;
            }
            head = geom.next(head);
            self.set_reg(r::tdh(q), head);
        }
        pass.reported |= reported;
        pass.delayed |= delayed;
        head != start
    }

    fn raise_tx_cause(&mut self, q: u32) {
        let c = if self.msix_enabled() { if q == 0 { Icr::TXQ0 } else { Icr::TXQ1 } } else { Icr::TXDW };
        self.set_interrupt_cause(c.bits());
    }

    /// Append `len` bytes at `addr` to the frame TX queue `qi` is gathering.
    fn tx_gather(&mut self, qi: usize, addr: u64, len: usize, now: u64) {
        let g = &mut self.dp.tx_frames[qi & 1];
        if g.bad || len == 0 {
            return;
        }
        let start = g.frame.len();
        if start + len > MAX_TX_FRAME {
            g.bad = true;
            self.dp.counters.tx_oversize += 1;
            return;
        }
        g.frame.resize(start + len, 0);
        let Some(dst) = g.frame.get_mut(start..) else { return };
        if let Err(f) = self.iommu.read(addr, dst, now) {
            g.bad = true;
            self.dp.counters.tx_buf_dma_faults += 1;
            tracing::debug!(target: "nicqual::i82574", "TX buffer: {f}");
        }
    }

    fn tx_finish(&mut self, qi: usize, desc: &TxDesc, kind: TxKind) {
        let g = &mut self.dp.tx_frames[qi & 1];
        let mut frame = std::mem::take(&mut g.frame);
        let bad = std::mem::replace(&mut g.bad, false);
        if !bad && !frame.is_empty() {
            let cmd = desc.cmd();
            match kind {
                TxKind::Legacy if cmd & d::TXD_CMD_IC != 0 => {
                    let l = desc.as_legacy();
                    net::insert_checksum(&mut frame, l.css as usize, l.cso as usize, 0);
                }
                TxKind::Data => {
                    let popts = desc.upper.get();
                    let ctx = self.dp.tx_ctx.get(qi).copied().unwrap_or_default();
                    if popts & d::TXD_POPTS_IXSM != 0 {
                        net::insert_checksum(&mut frame, ctx.ipcss as usize, ctx.ipcso as usize, ctx.ipcse as usize);
                    }
                    if popts & d::TXD_POPTS_TXSM != 0 {
                        net::insert_checksum(&mut frame, ctx.tucss as usize, ctx.tucso as usize, ctx.tucse as usize);
                    }
                }
                _ => {}
            }
            if self.reg(r::TCTL) & r::TCTL_PSP != 0 && frame.len() < d::MIN_FRAME {
                frame.resize(d::MIN_FRAME, 0);
            }
            let payload_len = frame.len();
            let loopback = self.loopback();
            // PHY loopback (BMCR bit 14; Linux's `ethtool -t` loopback test on a copper
            // 82574) turns the frame around after the MAC: it comes back as the wire would
            // carry it, FCS and all, and the receive path checks it like any frame.
            let phy_loopback = !loopback && self.phy.loopback();
            // MAC loopback hands the frame to the receive path inside the MAC, where no
            // wire can corrupt it: the FCS is neither appended here nor checked there (the
            // receive path computes it only if it must deliver it, RCTL.SECRC clear).
            if cmd & d::TXD_CMD_IFCS != 0 && !loopback {
                let f = wire::fcs(&frame);
                frame.extend_from_slice(&f);
            }
            let octets = payload_len + wire::FCS_LEN;
            self.stat_add(r::GPTC, 1);
            self.stat_add(r::TPT, 1);
            self.stat_add64(r::GOTCL, octets as u64);
            self.stat_add64(r::TOTL, octets as u64);
            self.stat_add(size_bucket(SizeCounters::TX, octets), 1);
            match frame.first() {
                Some(b) if frame.get(..6) == Some(&[0xFF; 6]) && *b == 0xFF => self.stat_add(r::BPTC, 1),
                Some(b) if b & 1 != 0 => self.stat_add(r::MPTC, 1),
                _ => {}
            }
            self.dp.counters.tx_frames += 1;
            let now = self.clock.now_ns();
            if loopback {
                self.dp.counters.tx_loopback += 1;
                self.receive_frame(&frame, false);
            } else if phy_loopback {
                self.dp.counters.tx_loopback += 1;
                self.receive_frame(&frame, true);
            } else if let (Some(w), true) = (&self.dp.wire, self.link_up) {
                w.send(&frame, now);
            } else {
                self.dp.counters.tx_no_link += 1;
            }
        }
        frame.clear();
        self.dp.tx_frames[qi & 1].frame = frame;
    }

    // ---- receive ------------------------------------------------------------------------

    /// Take every frame waiting on the wire.
    pub(super) fn poll_wire(&mut self) {
        let Some(w) = self.dp.wire.clone() else { return };
        let mut buf = std::mem::take(&mut self.dp.rx_scratch);
        // Bounded: at most one queue's worth per poll.
        for _ in 0..wire::DEFAULT_QUEUE_FRAMES {
            if !w.recv_into(&mut buf) {
                break;
            }
            self.receive_frame(&buf, true);
        }
        self.dp.rx_scratch = buf;
    }

    /// Offer a frame to the receive path. `has_fcs`: its last four bytes are the FCS.
    pub fn receive_frame(&mut self, frame: &[u8], has_fcs: bool) -> RxOutcome {
        let rctl = self.reg(r::RCTL);
        if rctl & r::RCTL_EN == 0 {
            self.dp.counters.rx_disabled += 1;
            return RxOutcome::Disabled;
        }
        let sbp = rctl & r::RCTL_SBP != 0;
        let mut crc_bad = false;
        let (data, wire_len) = if has_fcs {
            let n = frame.len().saturating_sub(wire::FCS_LEN);
            if !wire::fcs_ok(frame) {
                self.stat_add(r::CRCERRS, 1);
                crc_bad = true;
                if !sbp {
                    return RxOutcome::CrcError;
                }
            }
            (frame.get(..n).unwrap_or_default(), frame.len())
        } else {
            (frame, frame.len() + wire::FCS_LEN)
        };
        self.stat_add(r::TPR, 1);
        self.stat_add64(r::TORL, wire_len as u64);
        let max = if rctl & r::RCTL_LPE != 0 { MAX_JUMBO_FRAME } else { d::MAX_STD_FRAME };
        if wire_len < d::MIN_FRAME + wire::FCS_LEN && !sbp {
            self.stat_add(r::RUC, 1);
            return RxOutcome::Undersize;
        }
        if wire_len > max && !sbp {
            self.stat_add(r::ROC, 1);
            return RxOutcome::Oversize;
        }
        if !self.address_match(data, rctl) {
            self.dp.counters.rx_filtered += 1;
            return RxOutcome::Filtered;
        }
        // What goes to host memory: the frame, plus the FCS unless SECRC strips it.
        let keep_fcs = rctl & r::RCTL_SECRC == 0;
        // With SECRC set and nothing waiting, memory gets exactly `data`: place it from here
        // instead of staging a copy (the copy is only needed to append an FCS or to wait).
        let direct = !keep_fcs && self.dp.fifo.is_empty();
        if direct && let Some(o) = self.rx_place(data, data.len(), crc_bad) {
            return o;
        }
        let mut buf = self.dp.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        if keep_fcs {
            if has_fcs {
                buf.extend_from_slice(frame.get(data.len()..).unwrap_or_default());
            } else {
                buf.extend_from_slice(&wire::fcs(data));
            }
        }
        let outcome = if !direct && self.dp.fifo.is_empty() { self.rx_place(&buf, data.len(), crc_bad) } else { None };
        match outcome {
            Some(o) => {
                self.recycle(buf);
                o
            }
            None => {
                // No descriptors (or earlier frames waiting): into the packet buffer.
                self.stat_add(r::RNBC, 1);
                let cap = ((self.reg(r::PBA) & 0xFFFF) as usize) * 1024;
                if self.dp.fifo_bytes + buf.len() > cap {
                    self.recycle(buf);
                    self.stat_add(r::MPC, 1);
                    self.set_interrupt_cause(Icr::RXO.bits());
                    RxOutcome::Missed
                } else {
                    self.dp.fifo_bytes += buf.len();
                    self.dp.fifo.push_back(buf);
                    self.dp.counters.rx_buffered += 1;
                    RxOutcome::Buffered
                }
            }
        }
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.dp.spare.len() < 64 {
            self.dp.spare.push(buf);
        }
    }

    /// Move waiting frames from the packet buffer into newly posted descriptors.
    pub(super) fn rx_drain(&mut self) {
        if self.dp.in_rx || self.reg(r::RCTL) & r::RCTL_EN == 0 {
            return;
        }
        while let Some(buf) = self.dp.fifo.pop_front() {
            let keep_fcs = self.reg(r::RCTL) & r::RCTL_SECRC == 0;
            let data_len = if keep_fcs { buf.len().saturating_sub(wire::FCS_LEN) } else { buf.len() };
            match self.rx_place(&buf, data_len, false) {
                Some(_) => {
                    self.dp.fifo_bytes = self.dp.fifo_bytes.saturating_sub(buf.len());
                    self.recycle(buf);
                }
                None => {
                    self.dp.fifo.push_front(buf);
                    break;
                }
            }
        }
    }

    fn address_match(&self, data: &[u8], rctl: u32) -> bool {
        let Some(da) = data.get(..6) else { return false };
        if da == [0xFF; 6] {
            return rctl & r::RCTL_BAM != 0 || rctl & r::RCTL_MPE != 0;
        }
        if da[0] & 1 != 0 {
            if rctl & r::RCTL_MPE != 0 {
                return true;
            }
            // MO = 00: hash = DA bits 47:36.
            let hash = ((da[4] as u32 >> 4) | (da[5] as u32) << 4) & 0xFFF;
            return self.reg(r::MTA + 4 * (hash >> 5)) & (1 << (hash & 31)) != 0;
        }
        if rctl & r::RCTL_UPE != 0 {
            return true;
        }
        (0..16).any(|n| {
            let hi = self.reg(r::rah(n));
            let lo = self.reg(r::ral(n));
            hi & r::RAH_AV != 0 && da[..4] == lo.to_le_bytes() && da[4..6] == hi.to_le_bytes()[..2]
        })
    }

    /// Write `buf` (what goes to memory; `data_len` bytes of it are the frame proper) into
    /// RX queue 0. `None`: not enough descriptors now (nothing written).
    fn rx_place(&mut self, buf: &[u8], data_len: usize, crc_bad: bool) -> Option<RxOutcome> {
        let ext = self.reg(r::RFCTL) & r::RFCTL_EXTEN != 0;
        let meta = if ext { self.rx_meta(buf.get(..data_len).unwrap_or_default()) } else { RxMeta::default() };
        let q = meta.queue;
        let geom = self.ring_geom(r::rdlen(q))?;
        let (head, tail) = (self.reg(r::rdh(q)), self.reg(r::rdt(q)));
        let Some(avail) = geom.pending(head, tail) else {
            self.dp.counters.rx_bad_ring += 1;
            return None;
        };
        let rctl = self.reg(r::RCTL);
        let bsize = d::rx_buffer_size(rctl);
        let needed = buf.len().div_ceil(bsize).max(1);
        if (avail as usize) < needed {
            return None;
        }
        let ring = DescRing::<LegacyRxDesc>::new(
            if q == 0 { "RX0" } else { "RX1" },
            RingLayout::Contiguous { base: self.ring_base(r::rdbal(q), r::rdbah(q)) },
            geom.size(),
        )
        .ok()?;
        let csum = self.rx_csum(buf.get(..data_len).unwrap_or_default());
        let mut idx = head;
        let mut off = 0usize;
        let mut outcome = RxOutcome::Delivered;
        self.dp.in_rx = true;
        loop {
            let now = self.clock.now_ns();
            let desc = match ring.fetch(&mut self.iommu, idx, now) {
                Ok(v) => v,
                Err(e) => {
                    self.rx_desc_fault(&e);
                    outcome = RxOutcome::DmaFault;
                    break;
                }
            };
            let chunk = bsize.min(buf.len() - off);
            let last = off + chunk >= buf.len();
            let mut rxe = false;
            if let Some(src) = buf.get(off..off + chunk)
                && let Err(f) = self.iommu.write(desc.buffer_addr.get(), src, now)
            {
                rxe = true;
                self.dp.counters.rx_buf_dma_faults += 1;
                tracing::debug!(target: "nicqual::i82574", "RX buffer: {f}");
            }
            let mut status = d::RXD_STAT_DD;
            if last {
                status |= d::RXD_STAT_EOP | csum.0;
            }
            let wb = if ext {
                let mut err = if rxe { d::RXDEXT_ERR_RXE } else { 0 };
                if crc_bad {
                    err |= d::RXDEXT_ERR_CE;
                }
                let (mut mrq, mut rss_or_csum) = (0, 0);
                if last {
                    err |= csum.1 | meta.status;
                    (mrq, rss_or_csum) = (meta.mrq, meta.rss_or_csum);
                }
                let e = ExtRxWb {
                    mrq: mrq.into(),
                    rss_or_csum: rss_or_csum.into(),
                    status_error: (status | err).into(),
                    length: (chunk as u16).into(),
                    ..Default::default()
                };
                let w: LegacyRxDesc = zerocopy::transmute!(e);
                (w, d::RXD_EXT_STATUS_OFFSET..d::RXD_EXT_STATUS_OFFSET + 4)
            } else {
                let mut errors = if rxe { d::RXD_ERR_RXE } else { 0 };
                if crc_bad {
                    errors |= d::RXD_ERR_CE;
                }
                if last {
                    errors |= (csum.1 >> 24) as u8;
                }
                let l = LegacyRxDesc {
                    buffer_addr: desc.buffer_addr,
                    length: (chunk as u16).into(),
                    csum: 0.into(),
                    status: status as u8,
                    errors,
                    special: 0.into(),
                };
                (l, d::RXD_LEGACY_STATUS_OFFSET..d::RXD_LEGACY_STATUS_OFFSET + 2)
            };
            if let Err(e) = ring.write_back_ordered(&mut self.iommu, idx, &wb.0, wb.1, now) {
                self.rx_desc_fault(&e);
                outcome = RxOutcome::DmaFault;
                break;
            }
            off += chunk;
            idx = geom.next(idx);
            if last {
                break;
            }
        }
        self.set_reg(r::rdh(q), idx);
        if outcome == RxOutcome::Delivered {
            let wire_len = data_len + wire::FCS_LEN;
            self.stat_add(r::GPRC, 1);
            self.stat_add64(r::GORCL, wire_len as u64);
            self.stat_add(size_bucket(SizeCounters::RX, wire_len), 1);
            match buf.first() {
                Some(_) if buf.get(..6) == Some(&[0xFF; 6]) => self.stat_add(r::BPRC, 1),
                Some(b) if b & 1 != 0 => self.stat_add(r::MPRC, 1),
                _ => {}
            }
            self.dp.counters.rx_frames += 1;
        }
        self.rx_causes(q, geom, idx, tail);
        self.dp.in_rx = false;
        Some(outcome)
    }

    fn rx_desc_fault(&mut self, e: &RingError) {
        self.dp.counters.rx_desc_dma_faults += 1;
        tracing::debug!(target: "nicqual::i82574", "{e}");
    }

    /// RX checksum offload: (status bits, error bits in extended positions).
    fn rx_csum(&self, frame: &[u8]) -> (u32, u32) {
        let rxcsum = self.reg(r::RXCSUM);
        let (ipofld, tuofld) = (rxcsum & d::RXCSUM_IPOFLD != 0, rxcsum & d::RXCSUM_TUOFLD != 0);
        if !ipofld && !tuofld {
            return (d::RXD_STAT_IXSM, 0);
        }
        let c = net::rx_check(frame);
        let (mut st, mut err) = (0, 0);
        if ipofld && let Some(ok) = c.ip {
            st |= d::RXD_STAT_IPCS;
            if !ok {
                err |= d::RXDEXT_ERR_IPE;
            }
        }
        if tuofld {
            if let Some(ok) = c.tcp {
                st |= d::RXD_STAT_TCPCS;
                if !ok {
                    err |= d::RXDEXT_ERR_TCPE;
                }
            }
            if let Some(ok) = c.udp {
                st |= d::RXD_STAT_TCPCS | d::RXD_STAT_UDPCS;
                if !ok {
                    err |= d::RXDEXT_ERR_TCPE;
                }
            }
        }
        // Offload on but nothing to check (not IPv4, a fragment): IPCS/TCPCS clear already
        // say "not checked", so IXSM stays clear (docs/CONFORMANCE.md row 14).
        (st, err)
    }

    fn rx_causes(&mut self, q: u32, geom: HeadTail, head: u32, tail: u32) {
        let rdtr = self.reg(r::RDTR) & 0xFFFF;
        let radv = self.reg(r::RADV) & 0xFFFF;
        self.dp.rx_delayed |= 1 << (q & 1);
        if rdtr == 0 && self.dp.rx_delayed == 1 << (q & 1) {
            // Nothing else waits: this queue's cause alone, now.
            self.dp.rx_delayed = 0;
            self.dp.rx_pkt_timer = None;
            self.dp.rx_abs_timer = None;
            let c = if self.msix_enabled() { Self::rxq_cause(q) } else { Icr::RXT0 };
            self.set_interrupt_cause(c.bits());
        } else if rdtr == 0 {
            self.raise_rx_cause();
        } else {
            self.dp.rx_pkt_timer = Some(self.clock.after(u64::from(rdtr).saturating_mul(DELAY_UNIT_NS)));
            if radv > 0 && self.dp.rx_abs_timer.is_none() {
                self.dp.rx_abs_timer = Some(self.clock.after(u64::from(radv).saturating_mul(DELAY_UNIT_NS)));
            }
        }
        let rdmts = (self.reg(r::RCTL) >> r::RCTL_RDMTS_SHIFT) & 0b11;
        let threshold = geom.size() >> (rdmts + 1).min(3);
        if geom.pending(head, tail).is_some_and(|free| free <= threshold) {
            let c = if self.msix_enabled() { Self::rxq_cause(q) } else { Icr::RXDMT0 };
            self.set_interrupt_cause(c.bits());
        }
    }

    /// The MSI-X cause of receive queue `q`.
    fn rxq_cause(q: u32) -> Icr {
        if q == 0 { Icr::RXQ0 } else { Icr::RXQ1 }
    }

    /// Raise the receive cause of every queue that has written back since the last one:
    /// RXQ0/RXQ1 by queue under MSI-X, RXT0 otherwise.
    fn raise_rx_cause(&mut self) {
        self.dp.rx_pkt_timer = None;
        self.dp.rx_abs_timer = None;
        let queues = std::mem::take(&mut self.dp.rx_delayed);
        let c = match (self.msix_enabled(), queues) {
            (false, _) => Icr::RXT0,
            (true, 0) => Icr::empty(),
            (true, 1) => Icr::RXQ0,
            (true, 2) => Icr::RXQ1,
            (true, _) => Icr::RXQ0 | Icr::RXQ1,
        };
        self.set_interrupt_cause(c.bits());
    }

    /// RSS enabled: MRQC.MRQE = 01 with RXCSUM.PCSD and extended descriptors (the
    /// write-back's hash field exists only then; QEMU `e1000e_rss_enabled`).
    fn rss_enabled(&self) -> bool {
        self.reg(r::MRQC) & r::MRQC_MRQE_MASK == r::MRQC_MRQE_RSS
            && self.reg(r::RXCSUM) & r::RXCSUM_PCSD != 0
            && self.reg(r::RFCTL) & r::RFCTL_EXTEN != 0
    }

    /// Queue and extended write-back fields of `frame` (extended descriptors only).
    fn rx_meta(&self, frame: &[u8]) -> RxMeta {
        // Neither IP nor a VLAN tag: queue 0, packet type MAC, nothing to parse.
        if !Flow::may_be_ip(frame) {
            return RxMeta::default();
        }
        let flow = Flow::parse(frame);
        let pkt_type = flow.packet_type(self.reg(r::RFCTL) & r::RFCTL_IPV6_DIS != 0);
        let mut m = RxMeta { status: pkt_type << d::RXDEXT_PKT_TYPE_SHIFT, ..RxMeta::default() };
        if self.reg(r::RXCSUM) & r::RXCSUM_PCSD == 0 {
            // The hash dword carries the IPv4 identification instead (IPIDV).
            if let L3::V4 { id, .. } = flow.l3 {
                m.status |= d::RXDEXT_STAT_IPIDV;
                m.rss_or_csum = u32::from(id);
            }
            return m;
        }
        if !self.rss_enabled() {
            return m;
        }
        let ty = flow.rss_type(self.reg(r::MRQC), self.reg(r::RFCTL));
        if ty != RssType::None {
            let key = rss::key_from_regs((0..r::RSSRK_LEN).map(|n| self.reg(r::RSSRK + 4 * n)));
            let hash = flow.rss_hash(ty, &key);
            m.queue = rss::reta_queue(|n| self.reg(r::RETA + 4 * n), hash);
            m.rss_or_csum = hash;
        }
        m.mrq = ty as u32 | m.queue << r::MRQ_QUEUE_SHIFT;
        m
    }

    /// Fire datapath timers that are due.
    pub(super) fn dp_fire_timers(&mut self) {
        let now = self.clock.now_ns();
        let due = |t: Option<u64>| t.is_some_and(|t| now >= t);
        if due(self.dp.rx_pkt_timer) || due(self.dp.rx_abs_timer) {
            self.raise_rx_cause();
        }
        for q in 0..2 {
            if due(self.dp.tx_pkt_timer[q]) || due(self.dp.tx_abs_timer[q]) {
                self.dp.tx_pkt_timer[q] = None;
                self.dp.tx_abs_timer[q] = None;
                self.raise_tx_cause(q as u32);
            }
        }
    }

    /// RDTR/TIDV writes: FPD flushes the pending delayed interrupt now.
    pub(super) fn delay_reg_write(&mut self, off: u32, val: u32) {
        self.set_reg(off, val & Self::write_mask(off));
        if val & DELAY_FPD != 0 {
            if off == r::RDTR && (self.dp.rx_pkt_timer.is_some() || self.dp.rx_abs_timer.is_some()) {
                self.raise_rx_cause();
            } else if off == r::TIDV {
                for q in 0..2 {
                    if self.dp.tx_pkt_timer[q].take().is_some() {
                        self.dp.tx_abs_timer[q] = None;
                        self.raise_tx_cause(q as u32);
                    }
                }
            }
        }
    }
}
