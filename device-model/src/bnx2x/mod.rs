//! A Broadcom NetXtreme II 10 GbE function (bnx2x: BCM57810 by default, 57711/57712 as
//! options) at ring level: config space with the register BAR (BAR0), the doorbell BAR
//! (BAR2) and the MSI-X BAR (BAR4); per fast-path queue an RX BD chain, an SGE chain, an
//! RCQ and a TX BD chain in host memory, followed through their next-page entries; a
//! fast-path status block per queue and a default (slow-path) one, written by device DMA;
//! an IGU-style acknowledge per status block; MSI-X (vector 0 the default status block,
//! vector 1 + q queue q); TPA (per-queue aggregation bins coalescing TCP segments into SGE
//! pages); MAC loopback. Every device access to host memory goes through the IOMMU model.
//!
//! Layouts are Linux's (`bnx2x_hsi.h`, `bnx2x.h`; see `nicqual_hw::bnx2x`). What the real
//! chip keeps in firmware memory — ring bases and sizes from the CLIENT_SETUP ramrod, the
//! USTORM producers' IRO offset — sits in documented registers of the model's own
//! (`nicqual_hw::bnx2x::BAR0_REGISTERS`, `QUEUE_REGISTERS`).
//!
//! Ring rules the device follows (and the driver must match):
//! * indices are free-running u16 over chains of 4 KiB pages; the last 2 slots of an RX
//!   BD or SGE page and the last CQE of an RCQ page and the last BD of a TX page hold the
//!   next-page address, which the device reads from the ring itself when it gets there;
//! * the device consumes RX BDs up to `bd_prod`, SGEs up to `sge_prod`, writes CQEs while
//!   its RCQ index differs from `cqe_prod` (the driver keeps one lap minus one ahead), and
//!   fetches TX BDs up to the doorbell's producer;
//! * MAC loopback: a frame sent on queue q comes back on RX queue q;
//! * TPA (queue setup `tpa_en`): a TCP segment with payload opens an aggregation bin for
//!   its flow (TPA start CQE, the whole frame in the BD buffer); following in-sequence
//!   segments of the flow without PSH/FIN/SYN/RST/URG append their payload to SGE pages
//!   (filled in order, 4 KiB each); the bin closes (TPA end CQE: total length, segment
//!   count, SGE list) on PSH, on a segment out of sequence, when the next segment would not
//!   fit `max_sges_for_packet` pages or 64 KiB, and at the end of each doorbell's batch
//!   (standing for the coalescing timer).
//!
//! Nothing here panics on driver input: every BAR write of any value is validated, ring
//! walks are bounded, a broken chain stops the queue with an error code in `Q_STATUS`.

use crate::config::{BarKind, ConfigSpace};
use crate::faults::{FaultPlan, FaultState, FaultTarget};
use crate::iommu::Iommu;
use crate::msix::{Msix, MsixOutcome};
use crate::{MsiMessage, PciDevice};
use nicqual_hw::bnx2x::{self as hw, EndAggRxCqe, HcStatusBlockE2, QueueErrorCode, SpStatusBlock};
use nicqual_hw::{pci, regs};
use zerocopy::IntoBytes;

mod link;
pub use link::{Link, LinkConfig, LinkError, LinkStats, PausePlan};

/// BAR sizes: BAR0 registers, BAR2 doorbells (8 MiB each, as on the 578xx), BAR4 MSI-X.
pub const BAR0_LEN: u64 = 0x80_0000;
pub const BAR2_LEN: u64 = 0x80_0000;
/// Config-space offset of the MSI-X capability.
pub const CAP_MSIX: u16 = 0xA0;
/// Config-space offset of the PCI Express capability.
pub const CAP_PCIE: u16 = 0xAC;
/// TPA aggregation bins per queue the model keeps.
pub const TPA_BINS: usize = 16;
/// Largest frame the TX path assembles (jumbo 9600 + VLAN Ethernet header + slack).
pub const MAX_TX_FRAME: usize = 9728;
/// Packets one doorbell may make the device fetch at most (bounds the walk).
const MAX_TX_PER_DOORBELL: usize = 4096;

/// Model options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// PCI device id: [`hw::PCI_DEVICE_57810`] (default), [`hw::PCI_DEVICE_57711`] or
    /// [`hw::PCI_DEVICE_57712`].
    pub device_id: u16,
    /// Fast-path queues (1..=[`hw::MAX_FP_QUEUES`]).
    pub queues: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { device_id: hw::PCI_DEVICE_57810, queues: 2 }
    }
}

/// What the device counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Bnx2xStats {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Frames dropped: no BD posted, or no RCQ room.
    pub rx_no_buffer: u64,
    /// Frames larger than the queue's MTU or its BD buffer.
    pub rx_oversize: u64,
    /// Frames arriving on a queue that is not set up.
    pub rx_queue_down: u64,
    pub tpa_starts: u64,
    pub tpa_ends: u64,
    pub tpa_segments_coalesced: u64,
    pub sge_pages_used: u64,
    pub status_block_writes: u64,
    pub msix_sent: u64,
    pub msix_pended: u64,
    /// Messages the fault plan swallowed.
    pub msix_lost: u64,
    /// Device DMA the IOMMU blocked.
    pub dma_blocked: u64,
    pub hostile_cqes: u64,
    pub slow_path_completions: u64,
}

/// Slot geometry of one kind of chain.
#[derive(Debug, Clone, Copy)]
struct Kind {
    per_page: u16,
    link_slots: u16,
    entry: u64,
}

const RX_BD: Kind =
    Kind { per_page: hw::RX_DESC_CNT, link_slots: hw::NEXT_PAGE_RX_DESC_CNT, entry: hw::RX_BD_SIZE as u64 };
const SGE: Kind =
    Kind { per_page: hw::RX_SGE_CNT, link_slots: hw::NEXT_PAGE_SGE_DESC_CNT, entry: hw::RX_BD_SIZE as u64 };
const RCQ: Kind =
    Kind { per_page: hw::RCQ_DESC_CNT, link_slots: hw::NEXT_PAGE_RCQ_DESC_CNT, entry: hw::RCQ_CQE_SIZE as u64 };
const TX_BD: Kind =
    Kind { per_page: hw::TX_DESC_CNT, link_slots: hw::NEXT_PAGE_TX_DESC_CNT, entry: hw::TX_BD_SIZE as u64 };

impl Kind {
    /// `x` moved past a link slot (the index the driver would use).
    #[inline]
    fn norm(self, x: u16) -> u16 {
        if x & (self.per_page - 1) >= self.per_page - self.link_slots { x.wrapping_add(self.link_slots) } else { x }
    }
}

/// The device's cursor on a chain: its free-running index and the page it is on.
#[derive(Debug, Clone, Copy, Default)]
struct Chain {
    base: u64,
    page: u64,
    idx: u16,
}

impl Chain {
    fn reset(&mut self) {
        self.page = self.base;
        self.idx = 0;
    }

    /// Host address of the slot at the cursor, following the next-page pointer (read from
    /// the ring) when the cursor sits on a link slot.
    #[inline(always)]
    fn addr(&mut self, k: Kind, iommu: &mut Iommu, now: u64) -> Result<u64, QueueErrorCode> {
        let in_page = self.idx & (k.per_page - 1);
        if in_page >= k.per_page - k.link_slots {
            self.follow_link(k, in_page, iommu, now)?;
        }
        Ok(self.page + u64::from(self.idx & (k.per_page - 1)) * k.entry)
    }

    /// The cursor sits on a link slot: read the next-page address from the ring and move
    /// to index 0 of that page.
    #[cold]
    #[inline(never)]
    fn follow_link(&mut self, k: Kind, in_page: u16, iommu: &mut Iommu, now: u64) -> Result<(), QueueErrorCode> {
        let link_at = self.page + u64::from(k.per_page - k.link_slots) * k.entry;
        let mut b = [0u8; 8];
        iommu.read(link_at, &mut b, now).map_err(|_| QueueErrorCode::Dma)?;
        let next = u64::from_le_bytes(b);
        if !next.is_multiple_of(hw::BCM_PAGE_SIZE as u64) {
            return Err(QueueErrorCode::NextPage);
        }
        self.page = next;
        self.idx = self.idx.wrapping_add(k.per_page - in_page);
        Ok(())
    }

    /// Adopt `c`'s cursor (page and index), field by field: a whole-struct copy of a
    /// cursor whose 16-bit index was just stored would reload it as part of a wider word,
    /// which the CPU cannot forward from the narrow store (a stall on every descriptor).
    #[inline(always)]
    fn take_cursor(&mut self, c: &Chain) {
        self.page = c.page;
        self.idx = c.idx;
    }

    #[inline]
    fn step(&mut self) {
        self.idx = self.idx.wrapping_add(1);
    }

    /// True when the cursor has reached `prod` (the driver's index, never on a link slot).
    #[inline]
    fn at(&self, k: Kind, prod: u16) -> bool {
        k.norm(self.idx) == prod
    }
}

/// TCP flow of an aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flow {
    src: u32,
    dst: u32,
    ports: u32,
}

/// One open TPA aggregation.
#[derive(Debug, Clone, Copy)]
struct Bin {
    flow: Flow,
    next_seq: u32,
    total: u32,
    segs: u16,
    sgl: [u16; hw::U_ETH_SGL_SIZE],
    nsge: u8,
    /// Host address and fill of the SGE page being filled.
    page: u64,
    fill: u32,
    /// The end CQE could not be written yet (no RCQ room).
    closing: bool,
}

/// One fast-path queue.
#[derive(Debug, Clone, Default)]
struct Queue {
    rx_bd: Chain,
    rcq: Chain,
    sge: Chain,
    tx: Chain,
    sb_addr: u64,
    bd_buf_len: u32,
    mtu: u32,
    tpa: bool,
    max_sges: u8,
    up: bool,
    error: Option<QueueErrorCode>,
    bd_prod: u16,
    cqe_prod: u16,
    sge_prod: u16,
    tx_prod: u16,
    /// Packets transmitted (what the status block reports unless stalled).
    tx_done: u16,
    /// What the status block last said for TX (frozen by `stall-consumer`).
    tx_reported: u16,
    running: u16,
    dirty: bool,
    igu_enabled: bool,
    igu_acked: u16,
    bins: [Option<Bin>; TPA_BINS],
}

/// Parsed TCP/IPv4 segment: flow, sequence, flags, payload range in the frame.
#[derive(Debug, Clone, Copy)]
struct TcpSeg {
    flow: Flow,
    seq: u32,
    flags: u8,
    payload: (usize, usize),
}

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_URG: u8 = 0x20;

fn parse_tcp(f: &[u8]) -> Option<TcpSeg> {
    let g = |i: usize| f.get(i).copied();
    if u16::from_be_bytes([g(12)?, g(13)?]) != 0x0800 {
        return None;
    }
    let ip = 14;
    let ihl = usize::from(g(ip)? & 0x0F) * 4;
    if g(ip)? >> 4 != 4 || ihl < 20 || g(ip + 9)? != 6 {
        return None;
    }
    let tot = usize::from(u16::from_be_bytes([g(ip + 2)?, g(ip + 3)?]));
    let end = ip + tot;
    let tcp = ip + ihl;
    let doff = usize::from(g(tcp + 12)? >> 4) * 4;
    if end > f.len() || doff < 20 || tcp + doff > end {
        return None;
    }
    let be32 = |i: usize| Some(u32::from_be_bytes([g(i)?, g(i + 1)?, g(i + 2)?, g(i + 3)?]));
    Some(TcpSeg {
        flow: Flow { src: be32(ip + 12)?, dst: be32(ip + 16)?, ports: be32(tcp)? },
        seq: be32(tcp + 4)?,
        flags: g(tcp + 13)?,
        payload: (tcp + doff, end),
    })
}

/// Serialization time at 10 Gbit/s with preamble, FCS and inter-frame gap (24 bytes).
fn wire_ns(len: usize) -> u64 {
    ((len as u64 + 24) * 8).div_ceil(10)
}

/// The device.
#[derive(Debug)]
pub struct Bnx2xDevice {
    config: Config,
    cfg: ConfigSpace,
    iommu: Iommu,
    now_ns: u64,
    msix: Msix,
    faults: FaultState,
    delivered: Vec<MsiMessage>,
    queues: Vec<Queue>,
    dsb_addr: u64,
    spq_prod: u16,
    sp_done: u16,
    sp_running: u16,
    dsb_igu_enabled: bool,
    dsb_igu_acked: u16,
    /// Stored BAR0 registers (the Rw ones) for read-back.
    queue_regs: Vec<[u32; 16]>,
    /// TX scratch: the frame being assembled in its first `frame_len` bytes (allocated
    /// once at the larger of [`MAX_TX_FRAME`] and an LSO packet's limit, no per-frame allocation or zeroing).
    frame: Vec<u8>,
    frame_len: usize,
    pub stats: Bnx2xStats,
    /// Frames the device wrote into RX buffers.
    pub frames_written: u64,
    /// The link (`None`: MAC loopback); see `link.rs`.
    link: Option<Box<link::Link>>,
    /// Largest packet the TX path assembles now (LSO or not).
    tx_limit: usize,
}

impl Default for Bnx2xDevice {
    fn default() -> Self {
        Self::new()
    }
}

impl Bnx2xDevice {
    /// A BCM57810 with two fast-path queues.
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A device with `config` (queues clamped to 1..=[`hw::MAX_FP_QUEUES`]).
    pub fn with_config(mut config: Config) -> Self {
        config.queues = config.queues.clamp(1, hw::MAX_FP_QUEUES);
        let mut cfg =
            ConfigSpace::new(hw::PCI_VENDOR_BROADCOM, config.device_id, 0x0200_0010, hw::PCI_VENDOR_BROADCOM, 0x1006);
        cfg.add_bar(0, BarKind::Mem32, BAR0_LEN);
        cfg.add_bar(2, BarKind::Mem32, BAR2_LEN);
        cfg.add_bar(hw::BAR_MSIX, BarKind::Mem32, hw::BAR_MSIX_LEN);
        let msix = cfg.add_cap(pci::CAP_ID_MSIX, CAP_MSIX, 12);
        cfg.set16(msix + pci::MSIX_MSG_CTRL, hw::MSIX_VECTORS - 1);
        cfg.set_wmask8(msix + pci::MSIX_MSG_CTRL + 1, 0xC0); // Enable, Function Mask
        cfg.set32(msix + pci::MSIX_TABLE, hw::MSIX_TABLE_OFFSET as u32 | u32::from(hw::BAR_MSIX));
        cfg.set32(msix + pci::MSIX_PBA, hw::MSIX_PBA_OFFSET as u32 | u32::from(hw::BAR_MSIX));
        let pcie = cfg.add_cap(pci::CAP_ID_PCIE, CAP_PCIE, 0x3C);
        cfg.set16(pcie + 2, 0x0002); // version 2, endpoint
        let queues = config.queues;
        Bnx2xDevice {
            config,
            cfg,
            iommu: Iommu::new(),
            now_ns: 0,
            msix: Msix::new(hw::MSIX_VECTORS),
            faults: FaultState::default(),
            delivered: Vec::new(),
            queues: vec![Queue::default(); queues],
            dsb_addr: 0,
            spq_prod: 0,
            sp_done: 0,
            sp_running: 0,
            dsb_igu_enabled: false,
            dsb_igu_acked: 0,
            queue_regs: vec![[0; 16]; queues],
            frame: vec![0; MAX_TX_FRAME.max(link::LSO_MAX)],
            frame_len: 0,
            stats: Bnx2xStats::default(),
            frames_written: 0,
            link: None,
            tx_limit: MAX_TX_FRAME,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Fast-path queues.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// Arm a fault plan now (its times count from here).
    pub fn arm_faults(&mut self, plan: FaultPlan) {
        self.faults = FaultState::new(plan);
        self.faults.arm(self.now_ns);
    }

    pub fn fault_state(&self) -> &FaultState {
        &self.faults
    }

    /// What a fault plan may break on this device.
    pub fn fault_target(&self) -> FaultTarget {
        FaultTarget {
            msix_vectors: hw::MSIX_VECTORS,
            ivar_entries: 0,
            completions: true,
            consumer_queues: self.queues.len() as u16,
        }
    }

    pub fn msix(&self) -> &Msix {
        &self.msix
    }

    fn removed(&self) -> bool {
        self.faults.removed(self.now_ns)
    }

    /// Whether queue `q` is set up and running.
    pub fn queue_up(&self, q: usize) -> bool {
        self.queues.get(q).is_some_and(|x| x.up)
    }

    /// Open TPA bins on queue `q`.
    pub fn open_bins(&self, q: usize) -> usize {
        self.queues.get(q).map_or(0, |x| x.bins.iter().flatten().count())
    }

    // ---- registers ------------------------------------------------------------------------

    fn bar0_read(&mut self, off: u64) -> u32 {
        if off == hw::FUNC_STATUS {
            return if self.dsb_addr != 0 { hw::FUNC_STATUS_STARTED } else { 0 };
        }
        if off == hw::DSB_ADDR_LO {
            return self.dsb_addr as u32;
        }
        if off == hw::DSB_ADDR_HI {
            return (self.dsb_addr >> 32) as u32;
        }
        if off == hw::SPQ_PROD {
            return u32::from(self.spq_prod);
        }
        if let Some((q, r)) = self.queue_reg_at(off) {
            if r == hw::Q_STATUS {
                let Some(qu) = self.queues.get(q) else { return 0 };
                let code = qu.error.map_or(0, |c| c as u32);
                return (u32::from(qu.up) * hw::Q_STATUS_UP)
                    | (u32::from(qu.error.is_some()) * hw::Q_STATUS_ERROR)
                    | (code << hw::Q_STATUS_CODE_SHIFT);
            }
            return self.queue_regs.get(q).and_then(|a| a.get((r / 4) as usize)).copied().unwrap_or(0);
        }
        0
    }

    /// (queue, block-relative offset) of a queue-setup register.
    fn queue_reg_at(&self, off: u64) -> Option<(usize, u64)> {
        let rel = off.checked_sub(hw::QUEUE_BLOCK_BASE)?;
        let q = (rel / hw::QUEUE_BLOCK_STRIDE) as usize;
        let r = rel % hw::QUEUE_BLOCK_STRIDE;
        let known = regs::by_offset(hw::QUEUE_REGISTERS, r as u32).is_some();
        (q < self.queues.len() && known).then_some((q, r))
    }

    fn bar0_write(&mut self, off: u64, v: u32) {
        let o32 = u32::try_from(off).ok();
        if let Some(d) = o32.and_then(|o| regs::by_offset(hw::BAR0_REGISTERS, o)) {
            let i = d.index as usize;
            match u64::from(d.desc.offset) {
                hw::RX_PRODS_LO => {
                    if let Some(q) = self.queues.get_mut(i) {
                        q.cqe_prod = v as u16;
                        q.bd_prod = (v >> 16) as u16;
                    }
                    self.flush_closing(i);
                }
                hw::RX_PRODS_HI => {
                    if let Some(q) = self.queues.get_mut(i) {
                        q.sge_prod = v as u16;
                    }
                }
                hw::IGU_ACK => self.igu_ack(i, v),
                hw::DSB_ADDR_LO => self.dsb_addr = (self.dsb_addr & !0xFFFF_FFFF) | u64::from(v & 0xFFFF_FFC0),
                hw::DSB_ADDR_HI => self.dsb_addr = (self.dsb_addr & 0xFFFF_FFFF) | (u64::from(v) << 32),
                hw::SPQ_PROD => self.slow_path(v as u16),
                _ => {}
            }
            return;
        }
        let Some((q, r)) = self.queue_reg_at(off) else { return };
        let Some(desc) = regs::by_offset(hw::QUEUE_REGISTERS, r as u32) else { return };
        if !desc.desc.access.stores_writes() {
            return;
        }
        let v = v & desc.desc.mask;
        if let Some(slot) = self.queue_regs.get_mut(q).and_then(|a| a.get_mut((r / 4) as usize)) {
            *slot = v;
        }
        if r == hw::Q_ENABLE {
            if v & 1 != 0 { self.client_setup(q) } else { self.client_halt(q) }
        }
    }

    fn qreg(&self, q: usize, r: u64) -> u32 {
        self.queue_regs.get(q).and_then(|a| a.get((r / 4) as usize)).copied().unwrap_or(0)
    }

    fn qreg64(&self, q: usize, lo: u64, hi: u64) -> u64 {
        u64::from(self.qreg(q, lo)) | u64::from(self.qreg(q, hi)) << 32
    }

    /// CLIENT_SETUP: take the bases and sizes, reset every cursor to index 0 of page 0.
    fn client_setup(&mut self, q: usize) {
        let rx = self.qreg64(q, hw::Q_RX_BD_LO, hw::Q_RX_BD_HI);
        let rcq = self.qreg64(q, hw::Q_RCQ_LO, hw::Q_RCQ_HI);
        let sge = self.qreg64(q, hw::Q_SGE_LO, hw::Q_SGE_HI);
        let tx = self.qreg64(q, hw::Q_TX_BD_LO, hw::Q_TX_BD_HI);
        let sb = self.qreg64(q, hw::Q_SB_LO, hw::Q_SB_HI);
        let buf = self.qreg(q, hw::Q_BD_BUF_LEN);
        let mtu = self.qreg(q, hw::Q_MTU);
        let tpa = self.qreg(q, hw::Q_TPA);
        let max_sges = ((tpa >> 8) & 0xF) as u8;
        let tpa_on = tpa & 1 != 0;
        let bad = buf <= hw::FW_RX_ALIGN_START + hw::IP_HEADER_ALIGNMENT_PADDING
            || !(46..=hw::ETH_MAX_JUMBO_PACKET_SIZE).contains(&mtu)
            || (tpa_on && !(1..=hw::U_ETH_SGL_SIZE as u8).contains(&max_sges))
            || rx == 0
            || rcq == 0
            || tx == 0
            || sb == 0;
        let Some(qu) = self.queues.get_mut(q) else { return };
        *qu = Queue { sb_addr: sb, bd_buf_len: buf, mtu, tpa: tpa_on, max_sges, ..Queue::default() };
        qu.rx_bd.base = rx;
        qu.rcq.base = rcq;
        qu.sge.base = sge;
        qu.tx.base = tx;
        for c in [&mut qu.rx_bd, &mut qu.rcq, &mut qu.sge, &mut qu.tx] {
            c.reset();
        }
        if bad {
            qu.error = Some(QueueErrorCode::Setup);
        } else {
            qu.up = true;
        }
    }

    fn client_halt(&mut self, q: usize) {
        if let Some(qu) = self.queues.get_mut(q) {
            qu.up = false;
            qu.bins = [None; TPA_BINS];
        }
    }

    fn queue_error(&mut self, q: usize, e: QueueErrorCode) {
        if e == QueueErrorCode::Dma {
            self.stats.dma_blocked += 1;
        }
        if let Some(qu) = self.queues.get_mut(q) {
            qu.error = Some(e);
            qu.up = false;
        }
    }

    /// `igu_regular` write for status block `sb` (0 default, 1 + q fast path).
    fn igu_ack(&mut self, sb: usize, v: u32) {
        let mode = (v & hw::igu::INTERRUPT_MODE_MASK) >> hw::igu::INTERRUPT_MODE_SHIFT;
        let update = v & hw::igu::UPDATE_INDEX != 0;
        let index = (v & hw::igu::SB_INDEX_MASK) as u16;
        let (enabled, acked, running) = if sb == 0 {
            (&mut self.dsb_igu_enabled, &mut self.dsb_igu_acked, self.sp_running)
        } else {
            let Some(q) = self.queues.get_mut(sb - 1) else { return };
            (&mut q.igu_enabled, &mut q.igu_acked, q.running)
        };
        if update {
            *acked = index;
        }
        match mode {
            hw::igu::INT_ENABLE => *enabled = true,
            hw::igu::INT_DISABLE => *enabled = false,
            _ => {}
        }
        // The IGU re-fires when the block moved past what the driver acknowledged.
        if mode == hw::igu::INT_ENABLE && *acked != running {
            self.notify(sb as u16);
        }
    }

    /// A slow-path request (SPQ producer write): completed at once on the default status
    /// block.
    fn slow_path(&mut self, prod: u16) {
        self.spq_prod = prod;
        if self.dsb_addr == 0 {
            return;
        }
        self.sp_done = prod;
        self.sp_running = self.sp_running.wrapping_add(1);
        self.stats.slow_path_completions += 1;
        let mut sb = SpStatusBlock::default();
        if let Some(i) = sb.sp_index_values.get_mut(hw::HC_SP_INDEX_EQ_CONS) {
            i.set(self.sp_done);
        }
        sb.running_index.set(self.sp_running);
        if self.iommu.write(self.dsb_addr, sb.as_bytes(), self.now_ns).is_err() {
            self.stats.dma_blocked += 1;
            return;
        }
        if self.dsb_igu_enabled {
            self.notify(0);
        }
    }

    // ---- interrupts -----------------------------------------------------------------------

    fn notify(&mut self, vector: u16) {
        match self.msix.notify(vector) {
            MsixOutcome::Send { vector, address, data } => self.send(vector, address, data),
            MsixOutcome::Pending => self.stats.msix_pended += 1,
            MsixOutcome::Disabled => {}
        }
    }

    fn send(&mut self, vector: u16, address: u64, data: u32) {
        if self.removed() {
            return;
        }
        if self.faults.swallow_message(vector, self.now_ns) {
            self.stats.msix_lost += 1;
            return;
        }
        if self.cfg.command() & pci::COMMAND_BUS_MASTER == 0 {
            return;
        }
        self.stats.msix_sent += 1;
        if address & pci::MSI_ADDRESS_MASK == pci::MSI_ADDRESS_BASE {
            self.delivered.push(MsiMessage { address, data, at_ns: self.now_ns });
        } else if self.iommu.write(address, &data.to_le_bytes(), self.now_ns).is_err() {
            self.stats.dma_blocked += 1;
        }
    }

    fn release(&mut self, out: Vec<MsixOutcome>) {
        for o in out {
            if let MsixOutcome::Send { vector, address, data } = o {
                self.send(vector, address, data);
            }
        }
    }

    fn msix_bar_read(&self, off: u64) -> u32 {
        let table_len = u64::from(hw::MSIX_VECTORS) * pci::MSIX_ENTRY_SIZE;
        if (hw::MSIX_TABLE_OFFSET..hw::MSIX_TABLE_OFFSET + table_len).contains(&off) {
            let rel = off - hw::MSIX_TABLE_OFFSET;
            if self.faults.vector_lost((rel / pci::MSIX_ENTRY_SIZE) as u16, self.now_ns) {
                return u32::MAX;
            }
            self.msix.table_read(rel)
        } else if (hw::MSIX_PBA_OFFSET..hw::MSIX_PBA_OFFSET + 8).contains(&off) {
            self.msix.pba_read(off - hw::MSIX_PBA_OFFSET)
        } else {
            0
        }
    }

    fn msix_bar_write(&mut self, off: u64, v: u32) {
        let table_len = u64::from(hw::MSIX_VECTORS) * pci::MSIX_ENTRY_SIZE;
        if (hw::MSIX_TABLE_OFFSET..hw::MSIX_TABLE_OFFSET + table_len).contains(&off) {
            let out = self.msix.table_write(off - hw::MSIX_TABLE_OFFSET, v);
            self.release(out);
        }
    }

    fn sync_msix_control(&mut self) {
        let ctrl = self.cfg.get16(CAP_MSIX + pci::MSIX_MSG_CTRL);
        self.msix.enabled = ctrl & pci::MSIX_CTRL_ENABLE != 0;
        self.msix.function_mask = ctrl & pci::MSIX_CTRL_FUNCTION_MASK != 0;
        let out = self.msix.release_unmasked();
        self.release(out);
    }

    // ---- status blocks --------------------------------------------------------------------

    /// Write queue `q`'s status block if anything changed, and interrupt if the IGU lets it.
    fn update_sb(&mut self, q: usize) {
        let now = self.now_ns;
        let stalled = self.faults.consumer_stalled(q as u16, now);
        let Some(qu) = self.queues.get_mut(q) else { return };
        if !qu.dirty || qu.sb_addr == 0 {
            return;
        }
        qu.dirty = false;
        if !stalled {
            qu.tx_reported = qu.tx_done;
        }
        qu.running = qu.running.wrapping_add(1);
        let mut sb = HcStatusBlockE2::default();
        if let Some(i) = sb.index_values.get_mut(hw::HC_INDEX_ETH_RX_CQ_CONS) {
            i.set(qu.rcq.idx);
        }
        if let Some(i) = sb.index_values.get_mut(hw::HC_INDEX_ETH_TX_CQ_CONS_COS0) {
            i.set(qu.tx_reported);
        }
        if let Some(i) = sb.running_index.get_mut(hw::SM_RX_ID) {
            i.set(qu.running);
        }
        let (addr, irq) = (qu.sb_addr, qu.igu_enabled);
        self.stats.status_block_writes += 1;
        if self.iommu.write(addr, sb.as_bytes(), now).is_err() {
            self.stats.dma_blocked += 1;
            return;
        }
        if irq {
            self.notify(q as u16 + 1);
        }
    }

    // ---- transmit -------------------------------------------------------------------------

    /// TX doorbell of queue `q` with BD producer `prod`: fetch and send every packet up to
    /// it, loop each back into RX queue `q`, then close the batch's aggregations and report.
    fn doorbell(&mut self, q: usize, prod: u16) {
        let Some(qu) = self.queues.get_mut(q) else { return };
        qu.tx_prod = prod;
        if !qu.up {
            return;
        }
        for _ in 0..MAX_TX_PER_DOORBELL {
            let Some(qu) = self.queues.get(q) else { return };
            if !qu.up || qu.tx.at(TX_BD, qu.tx_prod) {
                break;
            }
            match self.fetch_packet(q) {
                Ok(lso) => self.tx_fetched(q, lso),
                Err(e) => {
                    self.queue_error(q, e);
                    break;
                }
            }
        }
        self.close_all_bins(q);
        self.update_sb(q);
    }

    /// Fetch one packet's BD chain into `self.frame`; its LSO parameters, if it asks for
    /// LSO (returned, not stored: a value kept in `self` between the two calls would be
    /// reloaded wider than it was stored, a store-forwarding stall per packet).
    fn fetch_packet(&mut self, q: usize) -> Result<Option<link::Lso>, QueueErrorCode> {
        let now = self.now_ns;
        let Some(qu) = self.queues.get_mut(q) else { return Err(QueueErrorCode::Setup) };
        let mut chain = qu.tx;
        let a = chain.addr(TX_BD, &mut self.iommu, now)?;
        let mut start = hw::TxStartBd::default();
        self.iommu.read(a, start.as_mut_bytes(), now).map_err(|_| QueueErrorCode::Dma)?;
        let nbd = start.nbd.get();
        if start.bd_flags & hw::TX_BD_FLAGS_START_BD == 0 || !(2..=hw::MAX_FETCH_BD).contains(&nbd) {
            return Err(QueueErrorCode::TxBd);
        }
        self.tx_limit = if start.bd_flags & hw::TX_BD_FLAGS_SW_LSO != 0 { link::LSO_MAX } else { MAX_TX_FRAME };
        self.frame_len = 0;
        self.gather(start.addr_lo.get(), start.addr_hi.get(), start.nbytes.get())?;
        // The parse BD: read (it must be reachable), contents not needed for loopback.
        chain.step();
        let a = chain.addr(TX_BD, &mut self.iommu, now)?;
        let mut parse = hw::TxParseBdE2::default();
        self.iommu.read(a, parse.as_mut_bytes(), now).map_err(|_| QueueErrorCode::Dma)?;
        for _ in 2..nbd {
            chain.step();
            let a = chain.addr(TX_BD, &mut self.iommu, now)?;
            let mut d = hw::TxDataBd::default();
            self.iommu.read(a, d.as_mut_bytes(), now).map_err(|_| QueueErrorCode::Dma)?;
            self.gather(d.addr_lo.get(), d.addr_hi.get(), d.nbytes.get())?;
        }
        let mtu = self.queues.get(q).map_or(0, |x| x.mtu);
        let lso = link::Lso::parse(start.bd_flags, parse.parsing_data.get(), self.frame_len, mtu)?;
        chain.step();
        if let Some(qu) = self.queues.get_mut(q) {
            qu.tx.take_cursor(&chain);
        }
        Ok(lso)
    }

    /// Append `n` bytes at the BD's address to the frame.
    #[inline]
    fn gather(&mut self, lo: u32, hi: u32, n: u16) -> Result<(), QueueErrorCode> {
        let n = usize::from(n);
        let start = self.frame_len;
        let Some(dst) = self.frame.get_mut(start..start + n).filter(|_| n > 0 && start + n <= self.tx_limit) else {
            return Err(QueueErrorCode::TxBd);
        };
        let addr = u64::from(hi) << 32 | u64::from(lo);
        self.iommu.read(addr, dst, self.now_ns).map_err(|_| QueueErrorCode::Dma)?;
        self.frame_len = start + n;
        Ok(())
    }

    // ---- receive --------------------------------------------------------------------------

    /// A frame arrives for RX queue `q` (from the wire, or the loopback). Returns whether
    /// it was placed (false: dropped and counted).
    pub fn receive_frame(&mut self, q: usize, frame: &[u8]) -> bool {
        if self.removed() {
            return false;
        }
        let placed = self.rx_frame(q, frame);
        self.update_sb(q);
        placed
    }

    /// End of a receive burst from the wire: close open aggregations and report.
    pub fn flush(&mut self, q: usize) {
        self.close_all_bins(q);
        self.update_sb(q);
    }

    fn rx_frame(&mut self, q: usize, frame: &[u8]) -> bool {
        let Some(qu) = self.queues.get(q) else { return false };
        if !qu.up {
            self.stats.rx_queue_down += 1;
            return false;
        }
        if frame.len() > (qu.mtu + hw::ETH_OVERHEAD) as usize {
            self.stats.rx_oversize += 1;
            return false;
        }
        if qu.tpa
            && let Some(seg) = parse_tcp(frame)
        {
            return self.rx_tpa(q, frame, seg);
        }
        self.rx_plain(q, frame, hw::CQE_TYPE_FAST_PATH, 0)
    }

    /// Place `frame` in the next BD buffer and complete it with a fast-path (or TPA start)
    /// CQE naming aggregation `bin`.
    fn rx_plain(&mut self, q: usize, frame: &[u8], cqe_type: u8, bin: u8) -> bool {
        let now = self.now_ns;
        let placement = (hw::FW_RX_ALIGN_START + hw::IP_HEADER_ALIGNMENT_PADDING) as u8;
        let Some(qu) = self.queues.get_mut(q) else { return false };
        if frame.len() + usize::from(placement) > qu.bd_buf_len as usize {
            self.stats.rx_oversize += 1;
            return false;
        }
        if qu.rx_bd.at(RX_BD, qu.bd_prod) || qu.rcq.at(RCQ, qu.cqe_prod) {
            self.stats.rx_no_buffer += 1;
            return false;
        }
        let mut bd = qu.rx_bd;
        let r = bd.addr(RX_BD, &mut self.iommu, now).and_then(|a| {
            let mut b = [0u8; 8];
            self.iommu.read(a, &mut b, now).map(|()| u64::from_le_bytes(b)).map_err(|_| QueueErrorCode::Dma)
        });
        let buf = match r {
            Ok(b) => b,
            Err(e) => {
                self.queue_error(q, e);
                return false;
            }
        };
        bd.step();
        if let Some(qu) = self.queues.get_mut(q) {
            qu.rx_bd.take_cursor(&bd);
        }
        // The BD's address is whatever the ring holds: one that wraps past the end of the
        // address space reaches no window, like any other blocked write.
        let at = buf.checked_add(u64::from(placement));
        if at.is_none_or(|a| self.iommu.write(a, frame, now).is_err()) {
            // The data write was blocked; the firmware still completes the BD.
            self.stats.dma_blocked += 1;
        }
        self.stats.rx_frames += 1;
        self.stats.rx_bytes += frame.len() as u64;
        self.frames_written += 1;
        self.write_cqe(q, fast_path_cqe(cqe_type, bin, placement, frame.len() as u16))
    }

    fn rx_tpa(&mut self, q: usize, frame: &[u8], seg: TcpSeg) -> bool {
        let (p0, p1) = seg.payload;
        let payload = frame.get(p0..p1).unwrap_or_default();
        let plain = seg.flags & (TCP_FIN | TCP_SYN | TCP_RST | TCP_URG) != 0 || payload.is_empty();
        let open = self.queues.get(q).and_then(|qu| qu.bins.iter().position(|b| b.is_some_and(|b| b.flow == seg.flow)));
        if let Some(i) = open {
            let fits = self.queues.get(q).and_then(|qu| qu.bins.get(i).copied().flatten()).is_some_and(|b| {
                let room_pages = u32::from(self.queues.get(q).map_or(0, |qu| qu.max_sges)) - u32::from(b.nsge);
                let room = room_pages * hw::SGE_PAGE_SIZE as u32
                    + if b.nsge > 0 { hw::SGE_PAGE_SIZE as u32 - b.fill } else { 0 };
                b.next_seq == seg.seq
                    && !b.closing
                    && b.total as usize + payload.len() <= hw::TPA_MAX_AGG_LEN
                    && payload.len() as u32 <= room
            });
            if fits && !plain {
                if self.tpa_append(q, i, payload) {
                    if seg.flags & TCP_PSH != 0 {
                        self.close_bin(q, i);
                    }
                    return true;
                }
                return false;
            }
            self.close_bin(q, i);
        }
        if plain {
            return self.rx_plain(q, frame, hw::CQE_TYPE_FAST_PATH, 0);
        }
        // Open a bin: a free one, and room for the start and the end CQE.
        let Some(qu) = self.queues.get(q) else { return false };
        let Some(free) = qu.bins.iter().position(Option::is_none) else {
            return self.rx_plain(q, frame, hw::CQE_TYPE_FAST_PATH, 0);
        };
        let mut probe = qu.rcq;
        probe.idx = RCQ.norm(probe.idx).wrapping_add(1);
        if probe.at(RCQ, qu.cqe_prod) {
            self.stats.rx_no_buffer += 1;
            return false;
        }
        if !self.rx_plain(q, frame, hw::CQE_TYPE_TPA_START, free as u8) {
            return false;
        }
        self.stats.tpa_starts += 1;
        if let Some(slot) = self.queues.get_mut(q).and_then(|qu| qu.bins.get_mut(free)) {
            *slot = Some(Bin {
                flow: seg.flow,
                next_seq: seg.seq.wrapping_add(payload.len() as u32),
                total: frame.len() as u32,
                segs: 1,
                sgl: [0; hw::U_ETH_SGL_SIZE],
                nsge: 0,
                page: 0,
                fill: 0,
                closing: false,
            });
        }
        if seg.flags & TCP_PSH != 0 {
            self.close_bin(q, free);
        }
        true
    }

    /// Append `payload` to bin `i`'s SGE pages (taking new pages from the SGE ring).
    fn tpa_append(&mut self, q: usize, i: usize, mut payload: &[u8]) -> bool {
        let now = self.now_ns;
        let Some(qu) = self.queues.get_mut(q) else { return false };
        let Some(Some(mut bin)) = qu.bins.get(i).copied() else { return false };
        let mut sge = qu.sge;
        let sge_prod = qu.sge_prod;
        let total_before = bin.total;
        while !payload.is_empty() {
            if bin.nsge == 0 || bin.fill as usize == hw::SGE_PAGE_SIZE {
                if sge.at(SGE, sge_prod) || usize::from(bin.nsge) >= hw::U_ETH_SGL_SIZE {
                    // No SGE page posted: the segment is dropped, the bin closes as it is.
                    self.stats.rx_no_buffer += 1;
                    if let Some(qu) = self.queues.get_mut(q) {
                        qu.sge.take_cursor(&sge);
                        if let Some(b) = qu.bins.get_mut(i) {
                            *b = Some(Bin { total: total_before, ..bin });
                        }
                    }
                    self.close_bin(q, i);
                    return false;
                }
                let page = match sge.addr(SGE, &mut self.iommu, now).and_then(|a| {
                    let mut b = [0u8; 8];
                    self.iommu.read(a, &mut b, now).map(|()| u64::from_le_bytes(b)).map_err(|_| QueueErrorCode::Dma)
                }) {
                    Ok(p) => p,
                    Err(e) => {
                        self.queue_error(q, e);
                        return false;
                    }
                };
                if let Some(s) = bin.sgl.get_mut(usize::from(bin.nsge)) {
                    *s = SGE.norm(sge.idx);
                }
                sge.step();
                bin.nsge += 1;
                bin.page = page;
                bin.fill = 0;
                self.stats.sge_pages_used += 1;
            }
            let n = payload.len().min(hw::SGE_PAGE_SIZE - bin.fill as usize);
            let (chunk, rest) = payload.split_at(n);
            // The SGE page address came from the ring: one wrapping the address space is blocked.
            let at = bin.page.checked_add(u64::from(bin.fill));
            if at.is_none_or(|a| self.iommu.write(a, chunk, now).is_err()) {
                self.stats.dma_blocked += 1;
            }
            bin.fill += n as u32;
            bin.total += n as u32;
            payload = rest;
        }
        bin.segs = bin.segs.saturating_add(1);
        bin.next_seq = bin.next_seq.wrapping_add(bin.total - total_before);
        self.stats.tpa_segments_coalesced += 1;
        self.stats.rx_frames += 1;
        if let Some(qu) = self.queues.get_mut(q) {
            qu.sge.take_cursor(&sge);
            if let Some(b) = qu.bins.get_mut(i) {
                *b = Some(bin);
            }
        }
        true
    }

    /// Write bin `i`'s TPA end CQE and free the bin (or mark it closing if the RCQ is full).
    fn close_bin(&mut self, q: usize, i: usize) {
        let Some(qu) = self.queues.get_mut(q) else { return };
        let Some(Some(bin)) = qu.bins.get(i).copied() else { return };
        if qu.rcq.at(RCQ, qu.cqe_prod) {
            if let Some(b) = qu.bins.get_mut(i) {
                *b = Some(Bin { closing: true, ..bin });
            }
            return;
        }
        let mut cqe =
            EndAggRxCqe { type_error_flags: hw::CQE_TYPE_TPA_STOP, queue_index: i as u8, ..Default::default() };
        cqe.num_of_coalesced_segs.set(bin.segs);
        cqe.pkt_len.set(bin.total as u16);
        for (d, s) in cqe.sgl.iter_mut().zip(bin.sgl.iter()).take(usize::from(bin.nsge)) {
            d.set(*s);
        }
        if let Some(b) = qu.bins.get_mut(i) {
            *b = None;
        }
        self.stats.tpa_ends += 1;
        self.write_cqe(q, cqe_words(cqe.as_bytes()));
    }

    fn close_all_bins(&mut self, q: usize) {
        for i in 0..TPA_BINS {
            if self.queues.get(q).is_some_and(|qu| qu.bins.get(i).is_some_and(Option::is_some)) {
                self.close_bin(q, i);
            }
        }
    }

    /// Retry end CQEs that found the RCQ full (after the driver moved `cqe_prod`).
    fn flush_closing(&mut self, q: usize) {
        let pending: Vec<usize> = match self.queues.get(q) {
            Some(qu) if qu.bins.iter().any(|b| b.is_some_and(|b| b.closing)) => {
                qu.bins.iter().enumerate().filter(|(_, b)| b.is_some_and(|b| b.closing)).map(|(i, _)| i).collect()
            }
            _ => return,
        };
        for i in pending {
            self.close_bin(q, i);
        }
        self.update_sb(q);
    }

    /// Write one CQE (64 bytes, marker 0) at the RCQ cursor, the plan may corrupt it first.
    fn write_cqe(&mut self, q: usize, mut cqe: [u64; CQE_WORDS]) -> bool {
        let now = self.now_ns;
        if let Some(pick) = self.faults.next_completion(now) {
            self.stats.hostile_cqes += 1;
            let mut raw = [0u8; hw::RCQ_CQE_SIZE];
            for (d, w) in raw.chunks_exact_mut(8).zip(&cqe) {
                d.copy_from_slice(&w.to_le_bytes());
            }
            corrupt_cqe(&mut raw, pick);
            cqe = cqe_words(&raw);
        }
        let Some(qu) = self.queues.get_mut(q) else { return false };
        let mut rcq = qu.rcq;
        let a = match rcq.addr(RCQ, &mut self.iommu, now) {
            Ok(a) => a,
            Err(e) => {
                self.queue_error(q, e);
                return false;
            }
        };
        rcq.step();
        if let Some(qu) = self.queues.get_mut(q) {
            qu.rcq.take_cursor(&rcq);
            qu.dirty = true;
        }
        if self.iommu.write_words(a, &cqe, now).is_err() {
            self.stats.dma_blocked += 1;
            return false;
        }
        true
    }
}

/// A CQE as the little-endian 64-bit words the device stores.
const CQE_WORDS: usize = hw::RCQ_CQE_SIZE / 8;

/// The words of a 64-byte CQE given as bytes (the rare kinds: TPA end, corrupted).
fn cqe_words(raw: &[u8]) -> [u64; CQE_WORDS] {
    let mut w = [0u64; CQE_WORDS];
    for (d, c) in w.iter_mut().zip(raw.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        *d = u64::from_le_bytes(b);
    }
    w
}

/// A fast-path (or TPA start) CQE composed in registers: `eth_fast_path_rx_cqe` with
/// `type_error_flags` (byte 0), `queue_index` (2), `placement_offset` (3),
/// `pkt_len_or_gro_seg_len` (bytes 10-11) and `len_on_bd` (12-13) set, everything else
/// 0 (marker included: the entry is written). The per-frame path, so no byte staging.
#[inline(always)]
fn fast_path_cqe(cqe_type: u8, bin: u8, placement: u8, len: u16) -> [u64; CQE_WORDS] {
    let w0 = u64::from(cqe_type) | u64::from(bin) << 16 | u64::from(placement) << 24;
    let w1 = u64::from(len) << 16 | u64::from(len) << 32;
    [w0, w1, 0, 0, 0, 0, 0, 0]
}

/// Corrupt one field of a CQE the way `pick` says (hostile-completion): a length past any
/// buffer, a TPA end for an aggregation never started, an SGE list naming pages never
/// posted, an aggregation id out of range, or all-ones. The marker stays 0, so the entry
/// looks written.
fn corrupt_cqe(cqe: &mut [u8], pick: u32) {
    fn set16(cqe: &mut [u8], off: usize, v: u16) {
        if let Some(b) = cqe.get_mut(off..off + 2) {
            b.copy_from_slice(&v.to_le_bytes());
        }
    }
    match pick % 5 {
        0 => {
            // pkt_len and len_on_bd past the largest buffer (offsets 10 and 12 of the
            // fast-path CQE; 10 is also the end CQE's pkt_len).
            set16(cqe, 10, 0xF000 | (pick >> 8) as u16);
            set16(cqe, 12, 0xF000 | (pick >> 8) as u16);
        }
        1 => {
            // A TPA end for aggregation id 0x3F (never started by the model's 16 bins).
            if let Some(b) = cqe.get_mut(0) {
                *b = (*b & !hw::CQE_TYPE_MASK) | hw::CQE_TYPE_TPA_STOP;
            }
            if let Some(b) = cqe.get_mut(2) {
                *b = 0x3F;
            }
        }
        2 => {
            // A TPA end whose SGE list names pages far beyond anything posted.
            if let Some(b) = cqe.get_mut(0) {
                *b = (*b & !hw::CQE_TYPE_MASK) | hw::CQE_TYPE_TPA_STOP;
            }
            set16(cqe, 10, 9000);
            for k in 0..hw::U_ETH_SGL_SIZE {
                set16(cqe, 16 + 2 * k, 0x8000 | (pick as u16 & 0x7FFF).wrapping_add(k as u16));
            }
        }
        3 => {
            // A TPA start on an aggregation id past MAX_AGG_QS.
            if let Some(b) = cqe.get_mut(0) {
                *b = (*b & !hw::CQE_TYPE_MASK) | hw::CQE_TYPE_TPA_START;
            }
            if let Some(b) = cqe.get_mut(2) {
                *b = 0xC0 | (pick >> 16) as u8;
            }
        }
        _ => {
            let n = cqe.len().saturating_sub(4);
            if let Some(b) = cqe.get_mut(..n) {
                b.fill(0xFF);
            }
        }
    }
}

impl PciDevice for Bnx2xDevice {
    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        if self.removed() {
            return if size >= 4 { u32::MAX } else { (1u32 << (8 * u32::from(size))) - 1 };
        }
        self.cfg.read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        if self.removed() {
            return;
        }
        self.cfg.write(offset, size, value);
        let ctl = CAP_MSIX + pci::MSIX_MSG_CTRL;
        if offset <= ctl + 1 && offset + u16::from(size) > ctl {
            self.sync_msix_control();
        }
    }

    fn bar_len(&self, bar: u8) -> Option<u64> {
        self.cfg.bar_size(bar)
    }

    fn bar_read32(&mut self, bar: u8, offset: u64) -> u32 {
        if self.removed() {
            self.iommu.set_blocked(true);
            return u32::MAX;
        }
        if !offset.is_multiple_of(4) {
            return u32::MAX;
        }
        match bar {
            0 if offset < BAR0_LEN => self.bar0_read(offset),
            b if b == hw::BAR_MSIX && offset < hw::BAR_MSIX_LEN => self.msix_bar_read(offset),
            _ => 0,
        }
    }

    fn bar_write32(&mut self, bar: u8, offset: u64, value: u32) {
        if self.removed() {
            self.iommu.set_blocked(true);
            return;
        }
        if !offset.is_multiple_of(4) {
            return;
        }
        match bar {
            0 if offset < BAR0_LEN => self.bar0_write(offset, value),
            2 => {
                let db = u32::try_from(offset).ok().and_then(|o| regs::by_offset(hw::DOORBELL_REGISTERS, o));
                if let Some(db) = db
                    && value as u8 & hw::DOORBELL_HDR_DB_TYPE != 0
                {
                    self.doorbell(db.index as usize, (value >> 16) as u16);
                }
            }
            b if b == hw::BAR_MSIX && offset < hw::BAR_MSIX_LEN => self.msix_bar_write(offset, value),
            _ => {}
        }
    }

    fn advance(&mut self, ns: u64) {
        self.now_ns = self.now_ns.saturating_add(ns);
        if self.removed() {
            self.iommu.set_blocked(true);
        }
        if self.link.is_some() {
            self.link_advance();
        }
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn function_reset(&mut self) {
        let faults = std::mem::take(&mut self.faults);
        let iommu = std::mem::take(&mut self.iommu);
        let (now, stats, config) = (self.now_ns, self.stats, self.config.clone());
        let link = self.link.take().map(|mut l| {
            l.reset(now);
            l
        });
        *self = Bnx2xDevice::with_config(config);
        self.link = link;
        self.iommu = iommu;
        self.faults = faults;
        self.now_ns = now;
        self.stats = stats;
    }

    fn take_interrupts(&mut self) -> Vec<MsiMessage> {
        std::mem::take(&mut self.delivered)
    }

    fn iommu(&mut self) -> &mut Iommu {
        &mut self.iommu
    }

    fn dma_faults_total(&self) -> u64 {
        self.iommu.faults_total()
    }
}

#[cfg(test)]
mod tests;
