//! A Cisco VIC (enic) vNIC at ring level: the BAR0 resource table, one work queue, one
//! receive queue and two completion queues with their control blocks (`posted_index`,
//! `fetch_index`, CQ tail and colour), the vNIC's configured MTU as the adapter reports
//! it, and the IOMMU every device access goes through.
//!
//! Rings use the shared mechanism ([`crate::ring`]): descriptors are fetched and completions
//! written through [`DescRing`], completion queues produce with a [`ColorCursor`] whose
//! colour flips on every wrap, and the colour byte is written last.
//!
//! Transmitted packets loop back into the receive queue (the adapter's internal switch), so
//! a run can check integrity end to end; [`EnicDevice::receive`] delivers frames from the
//! wire (a peer whose MTU may differ from the host's). A seeded [`EnicFaultPlan`] makes the
//! adapter misbehave the ways the driver must survive: writing past the posted buffer,
//! reporting more bytes than it posted, spanning buffers, completing an index never posted.
//!
//! Fidelity: what the driver sees of the rings and DMA, not the VIC firmware, devcmds,
//! interrupts or offloads. Nothing here panics on driver or plan input.

use crate::config::{BarKind, ConfigSpace};
use crate::iommu::{DmaFault, Iommu};
use crate::ring::{ColorCursor, DescRing, RingError, RingLayout};
use crate::{MsiMessage, PciDevice};
use nicqual_hw::enic::{self as hw, CqDesc, CqEnetRqDesc, RqCompletion, RqEnetDesc, WqEnetDesc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// BAR0 offsets of the blocks the resource table lists.
pub const WQ_BASE: u64 = 0x1000;
pub const RQ_BASE: u64 = 0x2000;
pub const CQ_BASE: u64 = 0x3000;
pub const NIC_CFG_BASE: u64 = 0x4000;
pub const BAR0_LEN: u64 = 0x5000;
/// BAR0 as sized in config space (a power of two holding every block).
pub const BAR0_SIZE: u64 = 0x8000;
/// Completion queues: CQ 0 serves the RQ, CQ 1 the WQ (as Linux enic assigns them).
pub const CQ_COUNT: usize = 2;
/// Largest frame the model assembles from WQ buffers.
const MAX_TX_FRAME: usize = 16384;

/// Ways the adapter misbehaves on receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnicFault {
    /// Ignore the posted length: DMA the whole frame and report its full length.
    Overrun,
    /// Write the frame within the buffer but report `bytes_written` past the posted length.
    OverLength,
    /// Split the frame over this buffer and the next (sop without eop, then eop without sop)
    /// although the driver posted ONLY_SOP buffers.
    Span,
    /// Complete an RQ index the driver never posted (the data goes to the real buffer).
    UnpostedIndex,
}

impl EnicFault {
    pub const ALL: [EnicFault; 4] =
        [EnicFault::Overrun, EnicFault::OverLength, EnicFault::Span, EnicFault::UnpostedIndex];

    pub fn name(self) -> &'static str {
        match self {
            EnicFault::Overrun => "overrun",
            EnicFault::OverLength => "over-length",
            EnicFault::Span => "span",
            EnicFault::UnpostedIndex => "unposted-index",
        }
    }
}

/// Seeded misbehaviour: each received frame draws a fault with probability
/// `per_mille / 1000`, uniformly among `kinds`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnicFaultPlan {
    pub seed: u64,
    pub per_mille: u32,
    pub kinds: Vec<EnicFault>,
}

impl EnicFaultPlan {
    pub fn none() -> Self {
        EnicFaultPlan { seed: 0, per_mille: 0, kinds: Vec::new() }
    }
}

/// What the adapter counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct EnicDeviceStats {
    pub tx_frames: u64,
    pub rx_frames: u64,
    /// Frames larger than the vNIC MTU (+ VLAN header) dropped at the port.
    pub rx_oversize_dropped: u64,
    /// Frames dropped for want of a posted buffer (`dropped_packet_count`).
    pub rx_no_buffer: u64,
    /// Frames cut to the posted length (`truncated` set).
    pub rx_truncated: u64,
    /// Device DMA the IOMMU blocked.
    pub dma_blocked: u64,
    /// Faults of the plan acted out, per kind (order of [`EnicFault::ALL`]).
    pub faults_injected: [u64; 4],
}

/// A WQ or RQ control block.
#[derive(Debug, Clone, Copy, Default)]
struct QueueCtrl {
    ring_base: u64,
    ring_size: u32,
    posted_index: u32,
    cq_index: u32,
    enable: bool,
    fetch_index: u32,
    error_status: u32,
    dropped: u32,
}

/// A CQ control block with the producer cursor.
#[derive(Debug, Clone, Copy, Default)]
struct CqCtrl {
    ring_base: u64,
    ring_size: u32,
    color_enable: bool,
    head: u32,
    tail: u32,
    tail_color: bool,
}

/// The vNIC.
#[derive(Debug)]
pub struct EnicDevice {
    cfg: ConfigSpace,
    iommu: Iommu,
    now_ns: u64,
    vnic_mtu: u32,
    wq: QueueCtrl,
    rq: QueueCtrl,
    cq: [CqCtrl; CQ_COUNT],
    plan: EnicFaultPlan,
    rng: ChaCha8Rng,
    forced: Option<EnicFault>,
    /// Surprise removal: every register reads all-ones, no DMA.
    gone: bool,
    pub stats: EnicDeviceStats,
}

impl EnicDevice {
    /// A vNIC whose configured MTU (UCSM/CIMC) is `vnic_mtu`.
    pub fn new(vnic_mtu: u32, plan: EnicFaultPlan) -> EnicDevice {
        let rng = ChaCha8Rng::seed_from_u64(plan.seed);
        let mut cfg = ConfigSpace::new(
            hw::PCI_VENDOR_ID_CISCO,
            hw::PCI_DEVICE_ID_CISCO_VIC_ENET,
            0x0200_0000,
            hw::PCI_VENDOR_ID_CISCO,
            0x0000,
        );
        cfg.add_bar(hw::BAR_REGS, BarKind::Mem32, BAR0_SIZE);
        EnicDevice {
            cfg,
            iommu: Iommu::new(),
            now_ns: 0,
            vnic_mtu,
            wq: QueueCtrl::default(),
            rq: QueueCtrl::default(),
            cq: [CqCtrl::default(); CQ_COUNT],
            plan,
            rng,
            forced: None,
            gone: false,
            stats: EnicDeviceStats::default(),
        }
    }

    pub fn iommu(&mut self) -> &mut Iommu {
        &mut self.iommu
    }

    pub fn vnic_mtu(&self) -> u32 {
        self.vnic_mtu
    }

    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// The next received frame acts out `f` regardless of the plan (tests).
    pub fn force_next(&mut self, f: EnicFault) {
        self.forced = Some(f);
    }

    /// The function disappears (reads all-ones, no DMA).
    pub fn surprise_remove(&mut self) {
        self.gone = true;
        self.iommu.set_blocked(true);
    }

    // ---- registers ------------------------------------------------------------------------

    /// 32-bit read of BAR0.
    pub fn reg_read32(&mut self, off: u64) -> u32 {
        if self.gone {
            return u32::MAX;
        }
        if off < WQ_BASE {
            return resource_table_read(off);
        }
        if (NIC_CFG_BASE..NIC_CFG_BASE + hw::VNIC_RES_STRIDE).contains(&off) {
            return if off - NIC_CFG_BASE == hw::NIC_CFG_MTU { self.vnic_mtu } else { 0 };
        }
        if let Some((is_wq, r)) = self.queue_at(off) {
            let q = if is_wq { &self.wq } else { &self.rq };
            return match (is_wq, r) {
                (_, hw::Q_RING_BASE) => q.ring_base as u32,
                (_, hw::Q_RING_BASE_HI) => (q.ring_base >> 32) as u32,
                (_, hw::Q_RING_SIZE) => q.ring_size,
                (_, hw::Q_POSTED_INDEX) => q.posted_index,
                (_, hw::Q_CQ_INDEX) => q.cq_index,
                (_, hw::Q_ENABLE | hw::Q_RUNNING) => u32::from(q.enable),
                (_, hw::Q_FETCH_INDEX) => q.fetch_index,
                (true, hw::WQ_ERROR_STATUS) | (false, hw::RQ_ERROR_STATUS) => q.error_status,
                (false, hw::RQ_DROPPED_PACKET_COUNT) => q.dropped,
                _ => 0,
            };
        }
        if let Some((i, r)) = cq_at(off)
            && let Some(c) = self.cq.get(i)
        {
            return match r {
                hw::CQ_RING_BASE => c.ring_base as u32,
                hw::CQ_RING_BASE_HI => (c.ring_base >> 32) as u32,
                hw::CQ_RING_SIZE => c.ring_size,
                hw::CQ_COLOR_ENABLE => u32::from(c.color_enable),
                hw::CQ_HEAD => c.head,
                hw::CQ_TAIL => c.tail,
                hw::CQ_TAIL_COLOR => u32::from(c.tail_color),
                _ => 0,
            };
        }
        0
    }

    /// 32-bit write of BAR0. Writing a WQ's `posted_index` makes the adapter fetch and send
    /// (synchronously); writing an RQ's publishes buffers.
    pub fn reg_write32(&mut self, off: u64, v: u32) {
        if self.gone {
            return;
        }
        if let Some((is_wq, r)) = self.queue_at(off) {
            let q = if is_wq { &mut self.wq } else { &mut self.rq };
            match r {
                hw::Q_RING_BASE => q.ring_base = (q.ring_base & !0xFFFF_FFFF) | u64::from(v),
                hw::Q_RING_BASE_HI => q.ring_base = (q.ring_base & 0xFFFF_FFFF) | (u64::from(v) << 32),
                hw::Q_RING_SIZE => q.ring_size = v,
                hw::Q_POSTED_INDEX => {
                    if v >= q.ring_size {
                        // A posted index outside the ring: the adapter flags an error and
                        // stops the queue rather than fetch from it.
                        q.error_status = 1;
                        q.enable = false;
                    } else {
                        q.posted_index = v;
                    }
                }
                hw::Q_CQ_INDEX => q.cq_index = v,
                hw::Q_ENABLE => q.enable = v & 1 != 0,
                hw::Q_FETCH_INDEX => q.fetch_index = if v < q.ring_size { v } else { 0 },
                _ => {}
            }
            if is_wq && r == hw::Q_POSTED_INDEX {
                self.run_wq();
            }
            return;
        }
        if let Some((i, r)) = cq_at(off)
            && let Some(c) = self.cq.get_mut(i)
        {
            match r {
                hw::CQ_RING_BASE => c.ring_base = (c.ring_base & !0xFFFF_FFFF) | u64::from(v),
                hw::CQ_RING_BASE_HI => c.ring_base = (c.ring_base & 0xFFFF_FFFF) | (u64::from(v) << 32),
                hw::CQ_RING_SIZE => c.ring_size = v,
                hw::CQ_COLOR_ENABLE => c.color_enable = v & 1 != 0,
                hw::CQ_HEAD => c.head = v,
                hw::CQ_TAIL => c.tail = v,
                hw::CQ_TAIL_COLOR => c.tail_color = v & 1 != 0,
                _ => {}
            }
        }
    }

    /// (is the WQ, offset in the block) for a WQ/RQ register.
    fn queue_at(&self, off: u64) -> Option<(bool, u64)> {
        if (WQ_BASE..WQ_BASE + hw::VNIC_RES_STRIDE).contains(&off) {
            Some((true, off - WQ_BASE))
        } else if (RQ_BASE..RQ_BASE + hw::VNIC_RES_STRIDE).contains(&off) {
            Some((false, off - RQ_BASE))
        } else {
            None
        }
    }

    // ---- transmit -------------------------------------------------------------------------

    /// Fetch WQ descriptors from `fetch_index` up to `posted_index`, assemble packets, loop
    /// them back into the RQ and complete them on the WQ's CQ.
    fn run_wq(&mut self) {
        if !self.wq.enable || self.wq.ring_size == 0 {
            return;
        }
        let Ok(ring) =
            DescRing::<WqEnetDesc>::new("WQ0", RingLayout::Contiguous { base: self.wq.ring_base }, self.wq.ring_size)
        else {
            self.wq.error_status = 1;
            return;
        };
        let mut frame = Vec::new();
        // At most one lap, whatever the indices say.
        for _ in 0..self.wq.ring_size {
            if self.wq.fetch_index == self.wq.posted_index {
                break;
            }
            let idx = self.wq.fetch_index;
            let desc = match ring.fetch(&mut self.iommu, idx, self.now_ns) {
                Ok(d) => d,
                Err(_) => {
                    self.stats.dma_blocked += 1;
                    self.wq.error_status = 1;
                    self.wq.enable = false;
                    return;
                }
            };
            let len = desc.buf_len() as usize;
            let start = frame.len();
            if start + len > MAX_TX_FRAME {
                self.wq.error_status = 1;
                self.wq.enable = false;
                return;
            }
            frame.resize(start + len, 0);
            let slice = frame.get_mut(start..).unwrap_or_default();
            if self.iommu.read(desc.address.get(), slice, self.now_ns).is_err() {
                self.stats.dma_blocked += 1;
                self.wq.error_status = 1;
                self.wq.enable = false;
                return;
            }
            self.wq.fetch_index = (idx + 1) % self.wq.ring_size;
            if desc.eop() {
                self.stats.tx_frames += 1;
                self.now_ns += wire_ns(frame.len());
                let f = std::mem::take(&mut frame);
                if desc.cq_entry() {
                    let cq = self.wq.cq_index as usize;
                    let c = CqDesc::new(hw::CQ_DESC_TYPE_WQ_ENET, 0, idx as u16, false);
                    let _ = self.complete(cq, c);
                }
                self.receive(&f);
            }
        }
    }

    // ---- receive --------------------------------------------------------------------------

    /// A frame arrives from the wire (or the loopback). Returns what happened to it.
    pub fn receive(&mut self, frame: &[u8]) -> RxFate {
        if self.gone || !self.rq.enable || self.rq.ring_size == 0 {
            return RxFate::Dropped;
        }
        self.stats.rx_frames += 1;
        if frame.len() as u64 > u64::from(self.vnic_mtu) + u64::from(hw::VLAN_ETH_HLEN) {
            self.stats.rx_oversize_dropped += 1;
            self.rq.dropped = self.rq.dropped.wrapping_add(1);
            return RxFate::Dropped;
        }
        let Some(idx) = self.take_rq_buffer() else {
            self.stats.rx_no_buffer += 1;
            self.rq.dropped = self.rq.dropped.wrapping_add(1);
            return RxFate::Dropped;
        };
        let Ok(ring) =
            DescRing::<RqEnetDesc>::new("RQ0", RingLayout::Contiguous { base: self.rq.ring_base }, self.rq.ring_size)
        else {
            return RxFate::Dropped;
        };
        let desc = match ring.fetch(&mut self.iommu, idx, self.now_ns) {
            Ok(d) => d,
            Err(_) => {
                self.stats.dma_blocked += 1;
                self.rq.error_status = 1;
                return RxFate::Dropped;
            }
        };
        let fault = self.draw_fault();
        if let Some(f) = fault
            && let Some(n) = EnicFault::ALL.iter().position(|k| *k == f)
            && let Some(c) = self.stats.faults_injected.get_mut(n)
        {
            *c += 1;
        }
        let posted = usize::from(desc.buf_len());
        let addr = desc.address.get();
        let cq = self.rq.cq_index as usize;
        let base = RqCompletion {
            completed_index: idx as u16,
            q_number: 0,
            sop: true,
            eop: true,
            bytes_written: 0,
            truncated: false,
            fcs_ok: true,
            ty: hw::CQ_DESC_TYPE_RQ_ENET,
            color: false,
        };
        let fate = match fault {
            Some(EnicFault::Overrun) => {
                let blocked = self.dma(addr, frame);
                self.complete_rq(cq, RqCompletion { bytes_written: frame.len() as u16, ..base });
                if blocked { RxFate::Blocked } else { RxFate::Written }
            }
            Some(EnicFault::OverLength) => {
                let n = frame.len().min(posted);
                let blocked = self.dma(addr, frame.get(..n).unwrap_or_default());
                let claim = (posted + 1 + self.rng.random_range(0..64usize)).min(usize::from(hw::LEN_MASK));
                self.complete_rq(cq, RqCompletion { bytes_written: claim as u16, ..base });
                if blocked { RxFate::Blocked } else { RxFate::Written }
            }
            Some(EnicFault::Span) => {
                let half = (frame.len() / 2).min(posted);
                let blocked = self.dma(addr, frame.get(..half).unwrap_or_default());
                self.complete_rq(cq, RqCompletion { bytes_written: half as u16, eop: false, ..base });
                if let Some(next) = self.take_rq_buffer()
                    && let Ok(d2) = ring.fetch(&mut self.iommu, next, self.now_ns)
                {
                    let rest = frame.get(half..).unwrap_or_default();
                    let rest = rest.get(..rest.len().min(usize::from(d2.buf_len()))).unwrap_or_default();
                    let _ = self.dma(d2.address.get(), rest);
                    self.complete_rq(
                        cq,
                        RqCompletion {
                            completed_index: next as u16,
                            bytes_written: rest.len() as u16,
                            sop: false,
                            ..base
                        },
                    );
                }
                if blocked { RxFate::Blocked } else { RxFate::Written }
            }
            Some(EnicFault::UnpostedIndex) => {
                let n = frame.len().min(posted);
                let blocked = self.dma(addr, frame.get(..n).unwrap_or_default());
                // An index never posted: beyond the ring (the 12-bit field allows it) or
                // the one slot the driver keeps empty (the posted index itself).
                let size = self.rq.ring_size;
                let bogus = if self.rng.random_bool(0.5) && size < 4096 {
                    size + self.rng.random_range(0..4096 - size)
                } else {
                    self.rq.posted_index
                };
                self.complete_rq(
                    cq,
                    RqCompletion {
                        completed_index: bogus as u16,
                        bytes_written: n as u16,
                        truncated: n < frame.len(),
                        ..base
                    },
                );
                if blocked { RxFate::Blocked } else { RxFate::Written }
            }
            None => {
                let n = frame.len().min(posted);
                if n < frame.len() {
                    self.stats.rx_truncated += 1;
                }
                let blocked = self.dma(addr, frame.get(..n).unwrap_or_default());
                self.complete_rq(cq, RqCompletion { bytes_written: n as u16, truncated: n < frame.len(), ..base });
                if blocked { RxFate::Blocked } else { RxFate::Written }
            }
        };
        self.now_ns += wire_ns(frame.len());
        fate
    }

    /// The RQ buffer at `fetch_index`, if the driver has posted one; advances the fetch index.
    fn take_rq_buffer(&mut self) -> Option<u32> {
        if self.rq.fetch_index == self.rq.posted_index || self.rq.ring_size == 0 {
            return None;
        }
        let idx = self.rq.fetch_index;
        self.rq.fetch_index = (idx + 1) % self.rq.ring_size;
        Some(idx)
    }

    fn draw_fault(&mut self) -> Option<EnicFault> {
        if let Some(f) = self.forced.take() {
            return Some(f);
        }
        if self.plan.per_mille == 0 || self.plan.kinds.is_empty() {
            return None;
        }
        if self.rng.random_range(0..1000u32) >= self.plan.per_mille {
            return None;
        }
        let i = self.rng.random_range(0..self.plan.kinds.len());
        self.plan.kinds.get(i).copied()
    }

    /// Device write of frame data; true when the IOMMU blocked it.
    fn dma(&mut self, addr: u64, data: &[u8]) -> bool {
        match self.iommu.write(addr, data, self.now_ns) {
            Ok(()) => false,
            Err(_) => {
                self.stats.dma_blocked += 1;
                true
            }
        }
    }

    fn complete_rq(&mut self, cq: usize, c: RqCompletion) {
        let _ = self.complete(cq, CqEnetRqDesc::new(c));
    }

    /// Write a completion at CQ `cq`'s tail with the tail colour (colour byte last), then
    /// advance the tail; the colour flips when the tail wraps.
    fn complete<D>(&mut self, cq: usize, mut desc: D) -> Result<(), RingError>
    where
        D: zerocopy::FromBytes + zerocopy::IntoBytes + zerocopy::KnownLayout + zerocopy::Immutable,
    {
        let Some(c) = self.cq.get(cq).copied() else {
            return Err(RingError::IndexOutOfRange { ring: "CQ", index: cq as u32, size: CQ_COUNT as u32 });
        };
        let cursor = ColorCursor::at(c.ring_size, c.tail, c.tail_color)
            .ok_or(RingError::BadGeometry { ring: "CQ", why: "tail outside the ring" })?;
        if let Some(b) = desc.as_mut_bytes().get_mut(hw::CQ_TYPE_COLOR_OFFSET) {
            let color = cursor.color() && c.color_enable;
            *b = (*b & !hw::CQ_DESC_COLOR) | if color { hw::CQ_DESC_COLOR } else { 0 };
        }
        let ring = DescRing::<D>::new("CQ", RingLayout::Contiguous { base: c.ring_base }, c.ring_size)?;
        let last = hw::CQ_TYPE_COLOR_OFFSET..hw::CQ_TYPE_COLOR_OFFSET + 1;
        let r = ring.write_back_ordered(&mut self.iommu, cursor.index(), &desc, last, self.now_ns);
        if r.is_err() {
            self.stats.dma_blocked += 1;
        }
        let mut next = cursor;
        next.advance();
        if let Some(cm) = self.cq.get_mut(cq) {
            cm.tail = next.index();
            cm.tail_color = next.color();
        }
        r
    }

    /// Write a raw receive completion at CQ 0's tail exactly as given (its colour byte
    /// included), then advance the tail: a hostile adapter for tests.
    pub fn inject_rq_completion(&mut self, raw: CqEnetRqDesc) -> Result<(), RingError> {
        let c = self.cq.first().copied().unwrap_or_default();
        let ring = DescRing::<CqEnetRqDesc>::new("CQ0", RingLayout::Contiguous { base: c.ring_base }, c.ring_size)?;
        let index = if c.tail < c.ring_size { c.tail } else { 0 };
        ring.write_back(&mut self.iommu, index, &raw, self.now_ns)?;
        if let Some(mut cur) = ColorCursor::at(c.ring_size, index, c.tail_color) {
            cur.advance();
            if let Some(cm) = self.cq.first_mut() {
                cm.tail = cur.index();
                cm.tail_color = cur.color();
            }
        }
        Ok(())
    }

    /// The colour the adapter writes on CQ `cq`'s next completion.
    pub fn cq_tail_color(&self, cq: usize) -> bool {
        self.cq.get(cq).is_some_and(|c| c.tail_color)
    }

    pub fn dma_faults(&self) -> &[DmaFault] {
        self.iommu.faults()
    }
}

/// The vNIC as a PCI function: config space with BAR0 (resource table and control blocks).
/// No interrupts are modelled yet (no MSI-X capability: a driver asking for vectors is told
/// so); the adapter works synchronously inside register writes.
impl PciDevice for EnicDevice {
    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        if self.gone {
            return if size >= 4 { u32::MAX } else { (1u32 << (8 * u32::from(size))) - 1 };
        }
        self.cfg.read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        if !self.gone {
            self.cfg.write(offset, size, value);
        }
    }

    fn bar_len(&self, bar: u8) -> Option<u64> {
        self.cfg.bar_size(bar)
    }

    fn bar_read32(&mut self, bar: u8, offset: u64) -> u32 {
        if bar != hw::BAR_REGS || offset >= BAR0_SIZE || !offset.is_multiple_of(4) {
            return u32::MAX;
        }
        self.reg_read32(offset)
    }

    fn bar_write32(&mut self, bar: u8, offset: u64, value: u32) {
        if bar == hw::BAR_REGS && offset < BAR0_SIZE && offset.is_multiple_of(4) {
            self.reg_write32(offset, value);
        }
    }

    fn advance(&mut self, ns: u64) {
        self.now_ns = self.now_ns.saturating_add(ns);
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn function_reset(&mut self) {
        let plan = self.plan.clone();
        let iommu = std::mem::take(&mut self.iommu);
        let (now, mtu, gone, stats) = (self.now_ns, self.vnic_mtu, self.gone, self.stats);
        *self = EnicDevice::new(mtu, plan);
        self.iommu = iommu;
        self.now_ns = now;
        self.gone = gone;
        self.stats = stats;
    }

    fn take_interrupts(&mut self) -> Vec<MsiMessage> {
        Vec::new()
    }

    fn iommu(&mut self) -> &mut Iommu {
        &mut self.iommu
    }

    fn dma_faults_total(&self) -> u64 {
        self.iommu.faults_total()
    }
}

/// What became of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxFate {
    /// Written to a buffer and completed.
    Written,
    /// Completed, but the IOMMU blocked the data write.
    Blocked,
    /// Dropped by the adapter (MTU, no buffer, queue disabled).
    Dropped,
}

/// Serialization time at 10 Gbit/s with preamble, FCS and inter-frame gap (24 bytes).
fn wire_ns(len: usize) -> u64 {
    ((len as u64 + 24) * 8).div_ceil(10)
}

/// The resource table: header, then WQ, RQ, CQ (2), NIC_CFG entries, then end-of-list.
fn resource_table_read(off: u64) -> u32 {
    const ENTRIES: [(u8, u64, u32); 4] = [
        (hw::RES_TYPE_WQ, WQ_BASE, 1),
        (hw::RES_TYPE_RQ, RQ_BASE, 1),
        (hw::RES_TYPE_CQ, CQ_BASE, CQ_COUNT as u32),
        (hw::RES_TYPE_NIC_CFG, NIC_CFG_BASE, 1),
    ];
    match off {
        0 => hw::VNIC_RES_MAGIC,
        4 => hw::VNIC_RES_VERSION,
        _ => {
            let rel = off.wrapping_sub(hw::RES_HDR_LEN);
            let (i, field) = ((rel / hw::RES_ENTRY_LEN) as usize, rel % hw::RES_ENTRY_LEN);
            match (ENTRIES.get(i), field) {
                (Some((ty, _, _)), 0) => u32::from(*ty), // type u8, bar 0, pad
                (Some((_, o, _)), 4) => *o as u32,
                (Some((_, _, n)), 8) => *n,
                _ => u32::from(hw::RES_TYPE_EOL),
            }
        }
    }
}

/// (CQ number, offset in its block) for a CQ register.
fn cq_at(off: u64) -> Option<(usize, u64)> {
    let rel = off.checked_sub(CQ_BASE)?;
    let i = rel / hw::VNIC_RES_STRIDE;
    (i < CQ_COUNT as u64).then_some((i as usize, rel % hw::VNIC_RES_STRIDE))
}

#[cfg(test)]
mod tests;
