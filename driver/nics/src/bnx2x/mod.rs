//! Broadcom NetXtreme II (bnx2x) driver over the backend contract and the DMA API
//! ([`Bnx2x`]), with the SWIOTLB preflight for bnx2x port groups ([`preflight`]).
//!
//! # Public contract (what a caller, e.g. a scenario, can rely on)
//!
//! * **Rings per fast-path queue** ([`Bnx2xConfig`]): an RX BD chain of `rx_bd_pages`
//!   pages (510 BDs a page; `rx_bd_pages * 510 - 2` posted), an RCQ of `8 * rx_bd_pages`
//!   pages (63 CQEs a page, Linux's `CQE_BD_REL`), with TPA an SGE chain of `sge_pages`
//!   pages (510 a page, all posted), a TX BD chain of `tx_bd_pages` pages (255 a page; a
//!   packet takes 2 BDs — start and parse — plus one per fragment). Page counts are powers
//!   of two; `rx_ring_size` / `sge_ring_size` post fewer (like `ethtool -G rx`). Ring
//!   pages and the status block are one coherent allocation per queue.
//! * **MTU → buffer size**: every RX buffer is [`rx_buf_size`]`(mtu)` bytes (Linux
//!   `bnx2x_set_rx_buf_size`: 1920 at MTU 1500, 9472 at 9000), of which the device may fill
//!   `rx_buf_size - BNX2X_FW_RX_ALIGN_END` from the mapping start (placement offset
//!   included); SGE buffers are one 4 KiB page.
//! * **TPA** (`tpa: true`): TCP segments are coalesced by the device into SGE pages; the
//!   driver delivers each aggregation as one packet (first frame + SGE bytes) and reposts the
//!   SGE pages. With `tpa: false` the queue has no SGE chain and a TPA CQE is refused.
//! * **What is mapped when** ([`BufferMode`]):
//!   - `Streaming` (Linux's behaviour): each RX buffer is allocated (`rx_buf_size +
//!     NET_SKB_PAD`, power-of-two aligned like a kmalloc slab object) and mapped
//!     from-device at open (`bnx2x_alloc_rx_data`) and held while posted; on receive a
//!     replacement is mapped *before* the filled buffer is unmapped (a failed mapping drops
//!     the frame and reposts the buffer). A TPA start moves the BD buffer into its
//!     aggregation (held until the TPA end). Each SGE page is mapped from-device while
//!     posted (`bnx2x_alloc_rx_sge`). A transmitted packet maps its linear part and each
//!     fragment to-device in [`Bnx2x::xmit`] (`bnx2x_start_xmit`) and unmaps them when the
//!     status block reports it sent (`bnx2x_free_tx_pkt`).
//!   - `Pool` (a userspace driver's way, one IOVA-contiguous region): rings, status block,
//!     RX buffers, SGE pages and TX buffers of a queue sit in the queue's one coherent
//!     allocation; nothing is mapped or unmapped on the datapath; received data is copied
//!     out and the buffer reposted, transmitted data copied in.
//! * **Counters of live mappings**: [`Bnx2x::census`] says what holds mappings now (posted
//!   RX buffers, buffers held by open aggregations, SGE pages, packets in flight and their
//!   mappings, coherent allocations); `dma().stats()` has the DMA API's totals and
//!   high-water marks. [`Bnx2x::close`] unmaps everything and reports the balance (0 left).
//!
//! Everything read from the device is validated as hostile input: identity, register
//! reads (all-ones = gone), status block indices (RCQ producer within what was posted, TX
//! consumer within the packets in flight), every CQE (`cqe.rs`). A queue that saw a bad
//! value stops with the typed error ([`Bnx2xError`]); nothing panics.

mod census;
mod cqe;
mod gso;
pub mod preflight;
mod ring;

pub use census::{BounceCensus, Holder};
pub use cqe::{Cqe, RingCqeError};
pub use gso::Gso;
pub use nicqual_hw::bnx2x::rx_buf_size;
pub use ring::Chain;

use crate::backend::{Backend, BackendInfo};
use crate::dmamap::{Coherent, CpuBuffer, DmaApi, DmaError, DmaMapping, DmaStats};
use crate::health::CheckReport;
use crate::swiotlb::DmaDirection;
use nicqual_hw::bnx2x::{self as hw, HcStatusBlockE2, SpStatusBlock};
use nicqual_hw::pci;
use nicqual_pci::BackendError;
use serde::Serialize;
use zerocopy::IntoBytes;

/// How buffers are mapped (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BufferMode {
    Streaming,
    Pool,
}

/// Port configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bnx2xConfig {
    pub mtu: u32,
    /// Fast-path queues to bring up (1..=the device's).
    pub queues: usize,
    pub rx_bd_pages: u16,
    pub tx_bd_pages: u16,
    /// SGE pages (TPA only).
    pub sge_pages: u16,
    pub tpa: bool,
    /// SGE pages one aggregation may use (1..=8, `max_sges_for_packet`).
    pub max_sges: u8,
    /// RX BDs to post per queue (`ethtool -G rx`, Linux's `bp->rx_ring_size`); 0 = the
    /// whole ring (`rx_bd_pages * 510 - 2`), larger values are capped to it.
    pub rx_ring_size: usize,
    /// SGE pages to post per queue with TPA; 0 = the whole SGE ring.
    pub sge_ring_size: usize,
    pub buffers: BufferMode,
    /// Interrupt mode: IGU enabled per status block, MSI-X per vector. Off: poll mode (no
    /// messages; the caller polls).
    pub interrupts: bool,
    /// A queue with packets in flight whose TX consumer does not move for this long is
    /// reported (`bnx2x_tx_timeout`).
    pub tx_timeout_ns: u64,
}

impl Bnx2xConfig {
    /// Small rings (1 RX page, 1 TX page, 1 SGE page), one queue, pool buffers, interrupts.
    pub fn new(mtu: u32) -> Self {
        Bnx2xConfig {
            mtu,
            queues: 1,
            rx_bd_pages: 1,
            tx_bd_pages: 1,
            sge_pages: 1,
            tpa: false,
            max_sges: hw::U_ETH_SGL_SIZE as u8,
            rx_ring_size: 0,
            sge_ring_size: 0,
            buffers: BufferMode::Pool,
            interrupts: true,
            tx_timeout_ns: 5_000_000_000,
        }
    }

    /// Linux's defaults: 4078 RX BDs (8 pages), 16 TX pages, streaming mappings.
    pub fn linux(mtu: u32, queues: usize) -> Self {
        Bnx2xConfig {
            queues,
            rx_bd_pages: hw::NUM_RX_RINGS,
            tx_bd_pages: hw::NUM_TX_RINGS,
            sge_pages: hw::NUM_RX_SGE_PAGES,
            buffers: BufferMode::Streaming,
            ..Bnx2xConfig::new(mtu)
        }
    }

    fn check(&self) -> Result<(), Bnx2xError> {
        let bad = |why: String| Err(Bnx2xError::Config { why });
        let rx = Chain::rx_bd(self.rx_bd_pages);
        let rcq = Chain::rcq(self.rx_bd_pages.saturating_mul(hw::CQE_BD_REL));
        if !(rx.valid() && rcq.valid() && Chain::tx(self.tx_bd_pages).valid()) {
            return bad(format!(
                "ring pages rx {} tx {}: powers of two, rx <= 8, tx <= 128",
                self.rx_bd_pages, self.tx_bd_pages
            ));
        }
        if self.tpa && !Chain::sge(self.sge_pages).valid() {
            return bad(format!("sge_pages {} must be a power of two <= 64", self.sge_pages));
        }
        if self.tpa && !(1..=hw::U_ETH_SGL_SIZE as u8).contains(&self.max_sges) {
            return bad(format!("max_sges {} outside 1..=8", self.max_sges));
        }
        if !(68..=hw::ETH_MAX_JUMBO_PACKET_SIZE - hw::ETH_OVERHEAD).contains(&self.mtu) {
            return bad(format!("MTU {} outside 68..={}", self.mtu, hw::ETH_MAX_JUMBO_PACKET_SIZE - hw::ETH_OVERHEAD));
        }
        if !(1..=hw::MAX_FP_QUEUES).contains(&self.queues) {
            return bad(format!("queues {} outside 1..={}", self.queues, hw::MAX_FP_QUEUES));
        }
        Ok(())
    }

    /// Largest frame the MTU allows (`mtu + ETH_OVERHEAD`).
    pub fn max_frame(&self) -> usize {
        (self.mtu + hw::ETH_OVERHEAD) as usize
    }

    /// Bytes the device may write into one RX buffer from its start.
    pub fn bd_buf_len(&self) -> u32 {
        rx_buf_size(self.mtu) - hw::FW_RX_ALIGN_END
    }

    /// RX BDs posted per queue.
    pub fn rx_posted(&self) -> usize {
        let full = Chain::rx_bd(self.rx_bd_pages).usable() - 2;
        if self.rx_ring_size == 0 { full } else { self.rx_ring_size.min(full) }
    }

    /// SGE pages posted per queue (0 without TPA).
    pub fn sge_posted(&self) -> usize {
        let full = Chain::sge(self.sge_pages).usable();
        match (self.tpa, self.sge_ring_size) {
            (false, _) => 0,
            (true, 0) => full,
            (true, n) => n.min(full),
        }
    }
}

/// Errors of the driver; each names the queue, register, index or field involved.
#[derive(Debug, thiserror::Error)]
pub enum Bnx2xError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Dma(#[from] DmaError),
    #[error("bad configuration: {why}")]
    Config { why: String },
    #[error("not a bnx2x function: vendor {vendor:#06x} device {device:#06x}")]
    NotBnx2x { vendor: u16, device: u16 },
    #[error("device gone: {what} read all-ones")]
    DeviceGone { what: String },
    #[error("MSI-X: {why}")]
    Msix { why: String },
    #[error("MSI-X vector {vector}: table entry reads {value:#010x} (vector lost)")]
    VectorLost { vector: u16, value: u32 },
    #[error("queue {queue}: client setup failed, Q_STATUS {status:#010x}")]
    QueueSetup { queue: usize, status: u32 },
    #[error("queue {queue}: CQE at RCQ index {index}: {error}")]
    Cqe { queue: usize, index: u16, error: RingCqeError },
    #[error("queue {queue}: status block {field} = {value} is past what was posted ({bound} from {from})")]
    StatusBlock { queue: usize, field: &'static str, value: u16, from: u16, bound: usize },
    #[error("queue {queue}: TX timeout: {in_flight} packets in flight, consumer stuck at {cons} for {waited_ns} ns")]
    TxTimeout { queue: usize, in_flight: u16, cons: u16, waited_ns: u64 },
    #[error("queue {queue}: stopped after an earlier error: {first}")]
    QueueFailed { queue: usize, first: String },
    #[error("queue {queue}: frame of {len} bytes outside {min}..={max}")]
    FrameLength { queue: usize, len: usize, min: usize, max: usize },
    #[error("queue {queue} does not exist (queues 0..{queues})")]
    NoQueue { queue: usize, queues: usize },
}

/// Identity read from config space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub vendor: u16,
    pub device: u16,
}

impl Identity {
    pub fn part(&self) -> &'static str {
        match self.device {
            hw::PCI_DEVICE_57711 => "BCM57711",
            hw::PCI_DEVICE_57712 => "BCM57712",
            hw::PCI_DEVICE_57810 => "BCM57810",
            _ => "unknown",
        }
    }
}

/// Per-queue counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_tpa_aggregations: u64,
    pub rx_tpa_sge_pages: u64,
    /// Frames dropped because a replacement buffer could not be mapped.
    pub rx_map_errors: u64,
    pub rx_bad_cqe: u64,
    pub tx_packets: u64,
    pub tx_completed: u64,
    pub tx_busy: u64,
    pub tx_map_errors: u64,
    pub interrupts: u64,
}

/// What holds DMA mappings right now (streaming mode; in pool mode everything is inside
/// the `coherent` allocations and the other counts are buffers, not mappings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MappingCensus {
    pub rx_bd_buffers: usize,
    pub tpa_held: usize,
    pub sge_pages: usize,
    pub tx_packets: usize,
    pub tx_mappings: usize,
    pub coherent: usize,
    /// Streaming mappings live in the DMA API (sum of the above in streaming mode).
    pub live_mappings: usize,
}

/// A delivered packet's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// TCP segments coalesced into it (1 for a plain frame).
    pub segments: u16,
    /// SGE pages it came in (0 for a plain frame).
    pub sge_pages: u16,
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollResult {
    pub rx: usize,
    pub tx_completed: usize,
}

/// Outcome of a transmit.
#[derive(Debug)]
pub enum XmitOutcome {
    Queued,
    /// Too few BDs free: try again after completions.
    Busy,
    /// A mapping failed: the packet was dropped (counted).
    Dropped(DmaError),
}

/// One RX buffer or SGE page.
#[derive(Debug)]
enum RxBuf {
    /// Offset of the buffer in the queue's coherent block.
    Pool { off: usize },
    /// A streaming mapping; `data_off` is where the mapping starts in the CPU buffer.
    Mapped { buf: CpuBuffer, map: DmaMapping, data_off: usize },
}

/// One transmitted packet until completion.
#[derive(Debug, Default)]
struct TxPkt {
    nbd: u16,
    parts: Vec<(CpuBuffer, DmaMapping)>,
}

/// An open TPA aggregation (driver side).
#[derive(Debug)]
struct Agg {
    buf: Option<RxBuf>,
    len_on_bd: u16,
    placement: u8,
}

/// Byte layout of a queue's coherent block.
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    rx: usize,
    rcq: usize,
    sge: usize,
    tx: usize,
    sb: usize,
    rx_pool: usize,
    sge_pool: usize,
    tx_pool: usize,
    len: usize,
}

struct FpQueue {
    mem: Coherent,
    lay: Layout,
    rx: Chain,
    rcq: Chain,
    sge: Chain,
    tx: Chain,
    bd_prod: u16,
    bd_cons: u16,
    rcq_cons: u16,
    cqe_prod: u16,
    sge_prod: u16,
    sge_cons: u16,
    rx_slots: Vec<Option<RxBuf>>,
    sge_slots: Vec<Option<RxBuf>>,
    aggs: Vec<Option<Agg>>,
    /// Pool mode: free RX buffer offsets (spares for TPA starts).
    rx_free: Vec<usize>,
    tx_bd_prod: u16,
    tx_bd_cons: u16,
    tx_pkt_prod: u16,
    tx_pkt_cons: u16,
    tx_pkts: Vec<TxPkt>,
    tx_buf_size: usize,
    tx_progress_ns: u64,
    sb_running: u16,
    failed: Option<String>,
    counters: QueueCounters,
}

/// The driver.
pub struct Bnx2x<B: Backend> {
    ctx: Ctx<B>,
    identity: Identity,
    msix: Option<nicqual_pci::caps::MsixLayout>,
    dsb: Option<Coherent>,
    spq_prod: u16,
    queues: Vec<FpQueue>,
}

/// What the queue-level code needs besides the queue itself.
struct Ctx<B: Backend> {
    backend: B,
    dma: DmaApi,
    cfg: Bnx2xConfig,
    /// Scratch for received data: [`SCRATCH_LEN`] bytes, allocated once (a packet is
    /// copied into its first bytes and handed out as that prefix).
    scratch: Vec<u8>,
}

/// Bytes of the receive scratch: the longest packet a CQE can describe (u16 lengths).
const SCRATCH_LEN: usize = u16::MAX as usize + 1;

/// Most TPA aggregations a queue can name (`MAX_AGG_QS`).
const MAX_AGGS: usize = hw::MAX_AGG_QS as usize;

fn page_align(x: usize) -> usize {
    x.div_ceil(hw::BCM_PAGE_SIZE) * hw::BCM_PAGE_SIZE
}

impl<B: Backend> Bnx2x<B> {
    /// Check the identity, enable MSI-X (1 + queues vectors), start the function with its
    /// default status block and bring up every queue.
    pub fn attach(backend: B, dma: DmaApi, cfg: Bnx2xConfig) -> Result<Self, Bnx2xError> {
        Self::try_attach(backend, dma, cfg).map_err(|(e, _)| e)
    }

    /// [`Bnx2x::attach`], handing the backend back when it fails (everything the attempt
    /// mapped is unmapped first).
    pub fn try_attach(mut backend: B, dma: DmaApi, cfg: Bnx2xConfig) -> Result<Self, (Bnx2xError, B)> {
        match Self::probe(&mut backend, &cfg) {
            Ok((identity, msix)) => Self::start(backend, dma, cfg, identity, msix),
            Err(e) => Err((e, backend)),
        }
    }

    /// Identity, bus mastering, MSI-X.
    fn probe(
        backend: &mut B,
        cfg: &Bnx2xConfig,
    ) -> Result<(Identity, Option<nicqual_pci::caps::MsixLayout>), Bnx2xError> {
        cfg.check()?;
        let vendor = backend.config_read(pci::VENDOR_ID, 2)? as u16;
        let device = backend.config_read(pci::DEVICE_ID, 2)? as u16;
        if vendor == 0xFFFF {
            return Err(Bnx2xError::DeviceGone { what: "vendor id".into() });
        }
        if vendor != hw::PCI_VENDOR_BROADCOM
            || ![hw::PCI_DEVICE_57810, hw::PCI_DEVICE_57711, hw::PCI_DEVICE_57712].contains(&device)
        {
            return Err(Bnx2xError::NotBnx2x { vendor, device });
        }
        let cmd = backend.config_read(pci::COMMAND, 2)?;
        backend.config_write(
            pci::COMMAND,
            2,
            cmd | u32::from(pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER | pci::COMMAND_INTX_DISABLE),
        )?;
        let msix = nicqual_pci::caps::msix_layout(|o, s| backend.config_read(o, s))?;
        let vectors = 1 + cfg.queues as u16;
        match msix {
            Some(l) if l.size >= vectors => backend.msix_enable(vectors)?,
            Some(l) => {
                return Err(Bnx2xError::Msix { why: format!("{vectors} vectors needed, table has {}", l.size) });
            }
            None => return Err(Bnx2xError::Msix { why: "no MSI-X capability".into() }),
        }
        Ok((Identity { vendor, device }, msix))
    }

    fn start(
        mut backend: B,
        mut dma: DmaApi,
        cfg: Bnx2xConfig,
        identity: Identity,
        msix: Option<nicqual_pci::caps::MsixLayout>,
    ) -> Result<Self, (Bnx2xError, B)> {
        if let Err(e) = dma.attach(&mut backend) {
            let _ = backend.msix_disable();
            return Err((e.into(), backend));
        }
        let mut d = Bnx2x {
            ctx: Ctx { backend, dma, cfg, scratch: vec![0; SCRATCH_LEN] },
            identity,
            msix,
            dsb: None,
            spq_prod: 0,
            queues: Vec::new(),
        };
        let dsb = match d.ctx.dma.alloc_coherent(&mut d.ctx.backend, hw::BCM_PAGE_SIZE) {
            Ok(m) => m,
            Err(e) => return Err((e.into(), d.close().1)),
        };
        d.ctx.backend.write32(0, hw::DSB_ADDR_LO, dsb.dma_addr as u32);
        d.ctx.backend.write32(0, hw::DSB_ADDR_HI, (dsb.dma_addr >> 32) as u32);
        d.dsb = Some(dsb);
        let st = d.ctx.backend.read32(0, hw::FUNC_STATUS);
        if st == u32::MAX {
            return Err((Bnx2xError::DeviceGone { what: "FUNC_STATUS".into() }, d.close().1));
        }
        for q in 0..d.ctx.cfg.queues {
            match d.ctx.open_queue(q) {
                Ok(fq) => d.queues.push(fq),
                Err(e) => {
                    // Leave nothing mapped behind.
                    return Err((e, d.close().1));
                }
            }
        }
        if d.ctx.cfg.interrupts {
            for sb in 0..=d.ctx.cfg.queues {
                d.igu(sb, 0, false, hw::igu::INT_ENABLE);
            }
        }
        Ok(d)
    }

    pub fn identity(&self) -> Identity {
        self.identity
    }

    pub fn config(&self) -> &Bnx2xConfig {
        &self.ctx.cfg
    }

    pub fn backend(&self) -> &B {
        &self.ctx.backend
    }

    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.ctx.backend
    }

    pub fn backend_info(&self) -> BackendInfo {
        self.ctx.backend.info()
    }

    pub fn dma(&self) -> &DmaApi {
        &self.ctx.dma
    }

    pub fn dma_stats(&self) -> DmaStats {
        self.ctx.dma.stats()
    }

    pub fn counters(&self, q: usize) -> Option<QueueCounters> {
        self.queues.get(q).map(|x| x.counters)
    }

    /// The first error that stopped queue `q`, if any.
    pub fn queue_error(&self, q: usize) -> Option<&str> {
        self.queues.get(q).and_then(|x| x.failed.as_deref())
    }

    /// True when config space reads all-ones.
    pub fn is_gone(&mut self) -> bool {
        self.ctx.backend.config_read(pci::VENDOR_ID, 2).map_or(true, |v| v == 0xFFFF)
    }

    fn igu(&mut self, sb: usize, index: u16, update: bool, mode: u32) {
        self.ctx.backend.write32(0, hw::IGU_ACK + sb as u64 * hw::IGU_ACK_STRIDE, hw::igu::ack(index, update, mode));
    }

    // ---- bring-up -------------------------------------------------------------------------

    /// Halt every queue, unmap and free everything, disable MSI-X; report the DMA balance
    /// (`dma-mappings-balanced`: every streaming mapping unmapped by the driver).
    pub fn close(mut self) -> (CheckReport, B) {
        for q in 0..self.queues.len() {
            self.ctx.backend.write32(0, hw::queue_reg(q, hw::Q_ENABLE), 0);
        }
        for fq in std::mem::take(&mut self.queues) {
            self.ctx.release_queue(fq);
        }
        if let Some(d) = self.dsb.take() {
            self.ctx.backend.write32(0, hw::DSB_ADDR_LO, 0);
            self.ctx.backend.write32(0, hw::DSB_ADDR_HI, 0);
            let _ = self.ctx.dma.free_coherent(&mut self.ctx.backend, d);
        }
        let _ = self.ctx.backend.msix_disable();
        let r = self.ctx.dma.teardown(&mut self.ctx.backend);
        (r, self.ctx.backend)
    }

    /// What holds buffers and mappings now.
    pub fn census(&self) -> MappingCensus {
        let mut c = MappingCensus { coherent: self.ctx.dma.stats().coherent_live, ..Default::default() };
        for fq in &self.queues {
            c.rx_bd_buffers += fq.rx_slots.iter().flatten().count();
            c.sge_pages += fq.sge_slots.iter().flatten().count();
            c.tpa_held += fq.aggs.iter().flatten().filter(|a| a.buf.is_some()).count();
            c.tx_packets += usize::from(fq.tx_pkt_prod.wrapping_sub(fq.tx_pkt_cons));
            c.tx_mappings += fq.tx_pkts.iter().map(|p| p.parts.len()).sum::<usize>();
        }
        c.live_mappings = self.ctx.dma.stats().live_mappings;
        c
    }

    /// Packets in flight on queue `q`.
    pub fn tx_in_flight(&self, q: usize) -> usize {
        self.queues.get(q).map_or(0, |f| usize::from(f.tx_pkt_prod.wrapping_sub(f.tx_pkt_cons)))
    }

    // ---- interrupts -----------------------------------------------------------------------

    /// Read MSI-X table entry `v` (where the backend lets the driver): all-ones means the
    /// vector is lost. `None` when the table is not the driver's to read.
    pub fn check_msix_entry(&mut self, v: u16) -> Result<Option<(u64, u32)>, Bnx2xError> {
        let Some(l) = self.msix else { return Err(Bnx2xError::Msix { why: "no MSI-X capability".into() }) };
        if !self.ctx.backend.info().msix_table_access {
            return Ok(None);
        }
        let Some(e) = l.entry(v) else {
            return Err(Bnx2xError::Msix { why: format!("vector {v} outside the {}-entry table", l.size) });
        };
        let lo = self.ctx.backend.read32(l.table_bir, e + pci::MSIX_ENTRY_ADDR_LO);
        let hi = self.ctx.backend.read32(l.table_bir, e + pci::MSIX_ENTRY_ADDR_HI);
        let data = self.ctx.backend.read32(l.table_bir, e + pci::MSIX_ENTRY_DATA);
        if lo == u32::MAX && hi == u32::MAX && data == u32::MAX {
            return Err(Bnx2xError::VectorLost { vector: v, value: lo });
        }
        Ok(Some((u64::from(hi) << 32 | u64::from(lo), data)))
    }

    /// Vectors whose notifier fired since the last call (each drained).
    pub fn drain_vectors(&mut self) -> Vec<u16> {
        (0..self.ctx.backend.msix_vectors())
            .filter(|&v| self.ctx.backend.notifier(v).is_some_and(|n| n.take() > 0))
            .collect()
    }

    /// Wait up to `ns` for vector `v`; true when it fired.
    pub fn wait_vector(&mut self, v: u16, ns: u64) -> bool {
        let step = (ns / 16).max(1);
        let mut waited = 0;
        loop {
            if self.ctx.backend.notifier(v).is_some_and(|n| n.take() > 0) {
                if let Some(fq) = usize::from(v).checked_sub(1).and_then(|q| self.queues.get_mut(q)) {
                    fq.counters.interrupts += 1;
                }
                return true;
            }
            if waited >= ns {
                return false;
            }
            self.ctx.backend.wait(step);
            waited += step;
        }
    }

    /// Post one slow-path request (a NOP ramrod standing in for the SPQ) and return the
    /// event-queue index the default status block then reports.
    pub fn slow_path_nop(&mut self) -> Result<u16, Bnx2xError> {
        self.spq_prod = self.spq_prod.wrapping_add(1);
        self.ctx.backend.write32(0, hw::SPQ_PROD, u32::from(self.spq_prod));
        let Some(dsb) = &self.dsb else { return Err(Bnx2xError::Config { why: "no default status block".into() }) };
        let mut sb = SpStatusBlock::default();
        dsb.mem.read(0, sb.as_mut_bytes());
        let eq = sb.sp_index_values.get(hw::HC_SP_INDEX_EQ_CONS).map_or(0, |v| v.get());
        if self.ctx.cfg.interrupts {
            self.igu(0, sb.running_index.get(), true, hw::igu::INT_ENABLE);
        }
        Ok(eq)
    }

    // ---- datapath -------------------------------------------------------------------------

    /// Queue `q`, unless it stopped on an error.
    fn live_queue(queues: &mut [FpQueue], q: usize) -> Result<&mut FpQueue, Bnx2xError> {
        let n = queues.len();
        let fq = queues.get_mut(q).ok_or(Bnx2xError::NoQueue { queue: q, queues: n })?;
        if let Some(first) = &fq.failed {
            return Err(Bnx2xError::QueueFailed { queue: q, first: first.clone() });
        }
        Ok(fq)
    }

    /// Queue a packet on `q`: `parts[0]` is the linear part, the rest fragments. Streaming
    /// mode maps each part (`bnx2x_start_xmit`); pool mode copies them into the packet's
    /// buffer. The device sees it at the next [`Bnx2x::doorbell`].
    pub fn xmit(&mut self, q: usize, parts: &[&[u8]]) -> Result<XmitOutcome, Bnx2xError> {
        let fq = Self::live_queue(&mut self.queues, q)?;
        self.ctx.xmit_inner(q, fq, parts, None)
    }

    /// Ring queue `q`'s TX doorbell with its BD producer.
    pub fn doorbell(&mut self, q: usize) -> Result<(), Bnx2xError> {
        let prod = self
            .queues
            .get(q)
            .map(|f| f.tx_bd_prod)
            .ok_or(Bnx2xError::NoQueue { queue: q, queues: self.queues.len() })?;
        // `doorbell_set_prod`: header (DB_TYPE), zero, then the producer in the high half.
        let v = u32::from(hw::DOORBELL_HDR_DB_TYPE) | u32::from(prod) << 16;
        self.ctx.backend.write32(2, hw::DOORBELL + q as u64 * hw::DOORBELL_STRIDE, v);
        Ok(())
    }

    /// NAPI-style poll of queue `q`: deliver up to `budget` received packets to `sink`,
    /// reclaim transmitted packets, repost buffers, write the producers and (interrupt
    /// mode) re-enable the status block's interrupt with the index seen.
    pub fn poll<F: FnMut(&[u8], RxMeta)>(
        &mut self,
        q: usize,
        budget: usize,
        mut sink: F,
    ) -> Result<PollResult, Bnx2xError> {
        let fq = Self::live_queue(&mut self.queues, q)?;
        let r = self.ctx.poll_inner(q, fq, budget, &mut sink);
        if let Err(e) = &r {
            fq.failed = Some(e.to_string());
            if matches!(e, Bnx2xError::Cqe { .. }) {
                fq.counters.rx_bad_cqe += 1;
            }
        }
        let running = fq.sb_running;
        if r.is_ok() && self.ctx.cfg.interrupts {
            self.igu(q + 1, running, true, hw::igu::INT_ENABLE);
        }
        r
    }
}

impl<B: Backend> Ctx<B> {
    fn open_queue(&mut self, q: usize) -> Result<FpQueue, Bnx2xError> {
        let cfg = self.cfg.clone();
        let rx = Chain::rx_bd(cfg.rx_bd_pages);
        let rcq = Chain::rcq(cfg.rx_bd_pages * hw::CQE_BD_REL);
        let sge = Chain::sge(if cfg.tpa { cfg.sge_pages } else { 1 });
        let tx = Chain::tx(cfg.tx_bd_pages);
        let pkt_slots = (tx.usable() / 2).next_power_of_two();
        let buf = rx_buf_size(cfg.mtu) as usize;
        let tx_buf_size = cfg.max_frame().div_ceil(64) * 64;
        let pool = cfg.buffers == BufferMode::Pool;
        let spares = if cfg.tpa { MAX_AGGS } else { 0 };
        let mut lay = Layout { rx: 0, ..Layout::default() };
        lay.rcq = lay.rx + rx.bytes();
        lay.sge = lay.rcq + rcq.bytes();
        lay.tx = lay.sge + if cfg.tpa { sge.bytes() } else { 0 };
        lay.sb = lay.tx + tx.bytes();
        lay.rx_pool = lay.sb + hw::BCM_PAGE_SIZE;
        let rx_pool_len = if pool { (cfg.rx_posted() + spares) * buf } else { 0 };
        lay.sge_pool = page_align(lay.rx_pool + rx_pool_len);
        let sge_pool_len = if pool { cfg.sge_posted() * hw::SGE_PAGE_SIZE } else { 0 };
        lay.tx_pool = lay.sge_pool + sge_pool_len;
        lay.len = page_align(lay.tx_pool + if pool { pkt_slots * tx_buf_size } else { 0 });
        let mem = self.dma.alloc_coherent(&mut self.backend, lay.len)?;
        let mut fq = FpQueue {
            mem,
            lay,
            rx,
            rcq,
            sge,
            tx,
            bd_prod: 0,
            bd_cons: 0,
            rcq_cons: 0,
            cqe_prod: 0,
            sge_prod: 0,
            sge_cons: 0,
            rx_slots: (0..rx.total()).map(|_| None).collect(),
            sge_slots: (0..if cfg.tpa { sge.total() } else { 0 }).map(|_| None).collect(),
            aggs: (0..MAX_AGGS).map(|_| None).collect(),
            rx_free: Vec::new(),
            tx_bd_prod: 0,
            tx_bd_cons: 0,
            tx_pkt_prod: 0,
            tx_pkt_cons: 0,
            tx_pkts: (0..pkt_slots).map(|_| TxPkt::default()).collect(),
            tx_buf_size,
            tx_progress_ns: 0,
            sb_running: 0,
            failed: None,
            counters: QueueCounters::default(),
        };
        let base = fq.mem.dma_addr;
        // Next-page links: the last slot(s) of each page point at the next page.
        let mut links = vec![(lay.rx, rx), (lay.rcq, rcq), (lay.tx, tx)];
        if cfg.tpa {
            links.push((lay.sge, sge));
        }
        for (off, ch) in links {
            for p in 0..ch.pages as usize {
                let next = base + (off + ((p + 1) % ch.pages as usize) * hw::BCM_PAGE_SIZE) as u64;
                let _ = fq.mem.mem.write(off + ch.link_offset(p), &next.to_le_bytes());
            }
        }
        // CQEs start not-written (marker all-ones), as `BNX2X_SEED_CQE` does.
        for p in 0..rcq.pages as usize {
            for i in 0..(rcq.per_page - rcq.link_slots) as usize {
                let at = lay.rcq + p * hw::BCM_PAGE_SIZE + i * hw::RCQ_CQE_SIZE + 60;
                let _ = fq.mem.mem.write(at, &hw::CQE_MARKER_UNUSED.to_le_bytes());
            }
        }
        if pool {
            fq.rx_free = (0..cfg.rx_posted() + spares).rev().map(|i| lay.rx_pool + i * buf).collect();
        }
        if let Err(e) = self.fill_rings(&mut fq) {
            self.release_queue(fq);
            return Err(e);
        }
        // The device may write every CQE but one ahead of the consumer.
        for _ in 0..rcq.usable() - 1 {
            fq.cqe_prod = rcq.next(fq.cqe_prod);
        }
        let reg = |r: u64| hw::queue_reg(q, r);
        let b = &mut self.backend;
        for (lo, hi, addr) in [
            (hw::Q_RX_BD_LO, hw::Q_RX_BD_HI, base + lay.rx as u64),
            (hw::Q_RCQ_LO, hw::Q_RCQ_HI, base + lay.rcq as u64),
            (hw::Q_SGE_LO, hw::Q_SGE_HI, if cfg.tpa { base + lay.sge as u64 } else { 0 }),
            (hw::Q_TX_BD_LO, hw::Q_TX_BD_HI, base + lay.tx as u64),
            (hw::Q_SB_LO, hw::Q_SB_HI, base + lay.sb as u64),
        ] {
            b.write32(0, reg(lo), addr as u32);
            b.write32(0, reg(hi), (addr >> 32) as u32);
        }
        b.write32(0, reg(hw::Q_BD_BUF_LEN), cfg.bd_buf_len());
        b.write32(0, reg(hw::Q_MTU), cfg.mtu);
        b.write32(0, reg(hw::Q_TPA), u32::from(cfg.tpa) | u32::from(cfg.max_sges) << 8);
        b.write32(0, reg(hw::Q_ENABLE), 1);
        let st = b.read32(0, reg(hw::Q_STATUS));
        if st == u32::MAX {
            self.release_queue(fq);
            return Err(Bnx2xError::DeviceGone { what: "Q_STATUS".into() });
        }
        if st & hw::Q_STATUS_UP == 0 || st & hw::Q_STATUS_ERROR != 0 {
            self.release_queue(fq);
            return Err(Bnx2xError::QueueSetup { queue: q, status: st });
        }
        fq.tx_progress_ns = self.backend.now_ns();
        write_prods(&mut self.backend, q, &fq);
        Ok(fq)
    }

    /// Post every RX buffer (and SGE page with TPA).
    fn fill_rings(&mut self, fq: &mut FpQueue) -> Result<(), Bnx2xError> {
        for _ in 0..self.cfg.rx_posted() {
            let b = self.new_rx_buf(fq)?;
            self.repost(fq, b);
        }
        if self.cfg.tpa {
            for i in 0..self.cfg.sge_posted() {
                let b = self.new_sge(fq, i)?;
                self.repost_sge(fq, b);
            }
        }
        Ok(())
    }

    fn new_rx_buf(&mut self, fq: &mut FpQueue) -> Result<RxBuf, Bnx2xError> {
        match self.cfg.buffers {
            BufferMode::Pool => fq
                .rx_free
                .pop()
                .map(|off| RxBuf::Pool { off })
                .ok_or_else(|| Bnx2xError::Config { why: "RX pool empty".into() }),
            BufferMode::Streaming => {
                let size = rx_buf_size(self.cfg.mtu) as usize;
                let len = size + hw::NET_SKB_PAD as usize;
                let buf = self.dma.alloc_buffer(&mut self.backend, len, (len as u64).next_power_of_two())?;
                let pad = hw::NET_SKB_PAD as usize;
                match self.dma.map_single(&mut self.backend, &buf, pad, size, DmaDirection::FromDevice) {
                    Ok(map) => Ok(RxBuf::Mapped { buf, map, data_off: pad }),
                    Err(e) => {
                        let _ = self.dma.free_buffer(buf);
                        Err(e.into())
                    }
                }
            }
        }
    }

    /// SGE page number `i` (pool mode: its fixed page; streaming: a fresh mapped page).
    fn new_sge(&mut self, fq: &FpQueue, i: usize) -> Result<RxBuf, Bnx2xError> {
        match self.cfg.buffers {
            BufferMode::Pool => Ok(RxBuf::Pool { off: fq.lay.sge_pool + i * hw::SGE_PAGE_SIZE }),
            BufferMode::Streaming => {
                let n = hw::SGE_PAGE_SIZE;
                let buf = self.dma.alloc_buffer(&mut self.backend, n, n as u64)?;
                match self.dma.map_single(&mut self.backend, &buf, 0, n, DmaDirection::FromDevice) {
                    Ok(map) => Ok(RxBuf::Mapped { buf, map, data_off: 0 }),
                    Err(e) => {
                        let _ = self.dma.free_buffer(buf);
                        Err(e.into())
                    }
                }
            }
        }
    }

    fn drop_buf(&mut self, fq_rx_free: &mut Vec<usize>, b: RxBuf) {
        match b {
            RxBuf::Pool { off } => fq_rx_free.push(off),
            RxBuf::Mapped { buf, map, .. } => {
                let _ = self.dma.unmap(&mut self.backend, map);
                let _ = self.dma.free_buffer(buf);
            }
        }
    }

    fn release_queue(&mut self, mut fq: FpQueue) {
        let mut free = std::mem::take(&mut fq.rx_free);
        let bufs: Vec<RxBuf> = fq
            .rx_slots
            .iter_mut()
            .chain(fq.sge_slots.iter_mut())
            .filter_map(Option::take)
            .chain(fq.aggs.iter_mut().filter_map(|a| a.take().and_then(|a| a.buf)))
            .collect();
        for b in bufs {
            self.drop_buf(&mut free, b);
        }
        for p in fq.tx_pkts.iter_mut() {
            for (buf, m) in p.parts.drain(..) {
                let _ = self.dma.unmap(&mut self.backend, m);
                let _ = self.dma.free_buffer(buf);
            }
        }
        let _ = self.dma.free_coherent(&mut self.backend, fq.mem);
    }

    fn xmit_inner(
        &mut self,
        q: usize,
        fq: &mut FpQueue,
        parts: &[&[u8]],
        gso: Option<Gso>,
    ) -> Result<XmitOutcome, Bnx2xError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let max = if gso.is_some() { gso::GSO_MAX } else { self.cfg.max_frame() };
        if !(usize::from(cqe::ETH_HLEN)..=max).contains(&len) || parts.first().is_none_or(|p| p.is_empty()) {
            return Err(Bnx2xError::FrameLength { queue: q, len, min: usize::from(cqe::ETH_HLEN), max });
        }
        let pool = self.cfg.buffers == BufferMode::Pool;
        let frags = if pool { 0 } else { parts.iter().skip(1).filter(|p| !p.is_empty()).count() };
        let nbd = 2 + frags as u16;
        if usize::from(nbd) > usize::from(hw::MAX_FETCH_BD) {
            return Err(Bnx2xError::FrameLength {
                queue: q,
                len: frags,
                min: 0,
                max: usize::from(hw::MAX_FETCH_BD) - 2,
            });
        }
        let used = fq.tx.distance(fq.tx_bd_prod, fq.tx_bd_cons);
        let in_flight = usize::from(fq.tx_pkt_prod.wrapping_sub(fq.tx_pkt_cons));
        if used + usize::from(nbd) + 1 > fq.tx.usable() || in_flight + 1 >= fq.tx_pkts.len() {
            fq.counters.tx_busy += 1;
            return Ok(XmitOutcome::Busy);
        }
        let pslot = usize::from(fq.tx_pkt_prod) & (fq.tx_pkts.len() - 1);
        // (address, bytes) of the start BD and of each data BD.
        let mut bds: [(u64, u16); hw::MAX_FETCH_BD as usize] = [(0, 0); hw::MAX_FETCH_BD as usize];
        let mut mapped: Vec<(CpuBuffer, DmaMapping)> = Vec::new();
        if pool {
            let off = fq.lay.tx_pool + pslot * fq.tx_buf_size;
            let mut at = off;
            for p in parts {
                fq.mem.mem.write_bulk(at, p);
                at += p.len();
            }
            if let Some(b) = bds.first_mut() {
                *b = (fq.mem.dma_addr + off as u64, len as u16);
            }
        } else {
            mapped.reserve(parts.len());
            for (i, p) in parts.iter().filter(|p| !p.is_empty()).enumerate() {
                // The linear part sits in a kmalloc object after headroom; fragments are pages.
                let (off, alloc, align) = if i == 0 {
                    let a = p.len() + 64;
                    (64, a, (a as u64).next_power_of_two())
                } else {
                    (0, p.len(), hw::BCM_PAGE_SIZE as u64)
                };
                let r = self.dma.alloc_buffer(&mut self.backend, alloc, align).and_then(|buf| {
                    buf.mem.write_bulk(off, p);
                    match self.dma.map_single(&mut self.backend, &buf, off, p.len(), DmaDirection::ToDevice) {
                        Ok(m) => Ok((buf, m)),
                        Err(e) => {
                            let _ = self.dma.free_buffer(buf);
                            Err(e)
                        }
                    }
                });
                match r {
                    Ok((buf, m)) => {
                        if let Some(b) = bds.get_mut(i) {
                            *b = (m.dma_addr, p.len() as u16);
                        }
                        mapped.push((buf, m));
                    }
                    Err(e) => {
                        for (buf, m) in mapped {
                            let _ = self.dma.unmap(&mut self.backend, m);
                            let _ = self.dma.free_buffer(buf);
                        }
                        fq.counters.tx_map_errors += 1;
                        return Ok(XmitOutcome::Dropped(e));
                    }
                }
            }
        }
        // BDs composed in registers and stored as words (ring::bd; layouts tested there).
        let (addr, n) = bds.first().copied().unwrap_or_default();
        let flags = hw::TX_BD_FLAGS_START_BD | gso.map_or(0, |_| hw::TX_BD_FLAGS_SW_LSO);
        let tx = fq.tx;
        let mut prod = fq.tx_bd_prod;
        let start = ring::bd::start(addr, nbd, n, flags, hw::TX_START_BD_HDR_NBDS);
        fq.mem.mem.write_words(fq.lay.tx + tx.offset(tx.slot(prod)), &start);
        prod = tx.next(prod);
        fq.mem.mem.write_words(fq.lay.tx + tx.offset(tx.slot(prod)), &ring::bd::parse_e2(gso::parsing_data(gso)));
        prod = tx.next(prod);
        for (i, &(addr, n)) in bds.iter().enumerate().skip(1).take(frags) {
            let total = if i == 1 { len as u16 } else { 0 };
            fq.mem.mem.write_words(fq.lay.tx + tx.offset(tx.slot(prod)), &ring::bd::data(addr, total, n));
            prod = tx.next(prod);
        }
        fq.tx_bd_prod = prod;
        if let Some(p) = fq.tx_pkts.get_mut(pslot) {
            *p = TxPkt { nbd, parts: mapped };
        }
        if fq.tx_pkt_prod == fq.tx_pkt_cons {
            fq.tx_progress_ns = self.backend.now_ns();
        }
        fq.tx_pkt_prod = fq.tx_pkt_prod.wrapping_add(1);
        fq.counters.tx_packets += 1;
        Ok(XmitOutcome::Queued)
    }

    fn poll_inner(
        &mut self,
        q: usize,
        fq: &mut FpQueue,
        budget: usize,
        sink: &mut dyn FnMut(&[u8], RxMeta),
    ) -> Result<PollResult, Bnx2xError> {
        let mut sb = HcStatusBlockE2::default();
        fq.mem.mem.read_bulk(fq.lay.sb, sb.as_mut_bytes());
        fq.sb_running = sb.running_index.get(hw::SM_RX_ID).map_or(0, |v| v.get());
        let rcq = fq.rcq;
        let raw_rx = sb.index_values.get(hw::HC_INDEX_ETH_RX_CQ_CONS).map_or(0, |v| v.get());
        let hw_cons = rcq.skip_link(raw_rx);
        let room = rcq.distance(fq.cqe_prod, fq.rcq_cons);
        let ready = rcq.distance(hw_cons, fq.rcq_cons);
        if ready > room {
            return Err(Bnx2xError::StatusBlock {
                queue: q,
                field: "rx_cons_sb",
                value: raw_rx,
                from: fq.rcq_cons,
                bound: room,
            });
        }
        let mut res = PollResult::default();
        while fq.rcq_cons != hw_cons && res.rx < budget {
            let at = fq.lay.rcq + rcq.offset(rcq.slot(fq.rcq_cons));
            let mut raw = [0u8; hw::RCQ_CQE_SIZE];
            fq.mem.mem.read_bulk(at, &mut raw);
            let index = fq.rcq_cons;
            let got = self.rx_one(fq, &raw).map_err(|error| Bnx2xError::Cqe { queue: q, index, error })?;
            if let Some((n, meta)) = got {
                if let Some(d) = self.scratch.get(..n) {
                    sink(d, meta);
                }
                res.rx += 1;
            }
            fq.mem.mem.write_bulk(at + 60, &hw::CQE_MARKER_UNUSED.to_le_bytes());
            fq.rcq_cons = rcq.next(fq.rcq_cons);
            fq.cqe_prod = rcq.next(fq.cqe_prod);
        }
        write_prods(&mut self.backend, q, fq);
        // TX completions: the consumer counts packets, within those in flight.
        let hw_tx = sb.index_values.get(hw::HC_INDEX_ETH_TX_CQ_CONS_COS0).map_or(0, |v| v.get());
        let done = hw_tx.wrapping_sub(fq.tx_pkt_cons);
        let in_flight = fq.tx_pkt_prod.wrapping_sub(fq.tx_pkt_cons);
        if done > in_flight {
            return Err(Bnx2xError::StatusBlock {
                queue: q,
                field: "tx_cons_sb",
                value: hw_tx,
                from: fq.tx_pkt_cons,
                bound: usize::from(in_flight),
            });
        }
        for _ in 0..done {
            let slot = usize::from(fq.tx_pkt_cons) & (fq.tx_pkts.len() - 1);
            let p = fq.tx_pkts.get_mut(slot).map(std::mem::take).unwrap_or_default();
            for _ in 0..p.nbd {
                fq.tx_bd_cons = fq.tx.next(fq.tx_bd_cons);
            }
            for (buf, m) in p.parts {
                let _ = self.dma.unmap(&mut self.backend, m);
                let _ = self.dma.free_buffer(buf);
            }
            fq.tx_pkt_cons = fq.tx_pkt_cons.wrapping_add(1);
            fq.counters.tx_completed += 1;
            res.tx_completed += 1;
        }
        let now = self.backend.now_ns();
        if done > 0 || fq.tx_pkt_prod == fq.tx_pkt_cons {
            fq.tx_progress_ns = now;
        } else if now.saturating_sub(fq.tx_progress_ns) > self.cfg.tx_timeout_ns {
            return Err(Bnx2xError::TxTimeout {
                queue: q,
                in_flight,
                cons: fq.tx_pkt_cons,
                waited_ns: now - fq.tx_progress_ns,
            });
        }
        Ok(res)
    }

    /// Handle one CQE; `Some((bytes in scratch, meta))` when a packet is ready.
    fn rx_one(
        &mut self,
        fq: &mut FpQueue,
        raw: &[u8; hw::RCQ_CQE_SIZE],
    ) -> Result<Option<(usize, RxMeta)>, RingCqeError> {
        let max_frame = self.cfg.max_frame().min(usize::from(u16::MAX)) as u16;
        let buf_len = self.cfg.bd_buf_len();
        match cqe::classify(raw, self.cfg.tpa)? {
            Cqe::FastPath(c) if self.cfg.buffers == BufferMode::Pool => {
                // Pool mode reuses the buffer in place (Linux's `bnx2x_reuse_rx_data`): the
                // data is copied out, the same buffer goes to the producer slot.
                if fq.bd_cons == fq.bd_prod {
                    return Err(RingCqeError::NoBufferPosted { bd_prod: fq.bd_prod });
                }
                let len = cqe::check_bd_lengths(c, max_frame, buf_len)?;
                let (cs, ps) = (fq.rx.slot(fq.bd_cons), fq.rx.slot(fq.bd_prod));
                let Some(&Some(RxBuf::Pool { off })) = fq.rx_slots.get(cs) else {
                    return Err(RingCqeError::NoBufferPosted { bd_prod: fq.bd_prod });
                };
                let n = usize::from(len);
                if let Some(dst) = self.scratch.get_mut(..n)
                    && fq.mem.mem.read_bulk(off + usize::from(c.placement_offset), dst).is_none()
                {
                    dst.fill(0);
                }
                write_addr(&fq.mem, fq.lay.rx + fq.rx.offset(ps), fq.mem.dma_addr + off as u64);
                if ps < fq.rx_slots.len() {
                    fq.rx_slots.swap(cs, ps);
                }
                // Both loaded before either is stored (adjacent u16s: a store then a load of
                // the pair would stall store forwarding).
                let (cons, prod) = (fq.rx.next(fq.bd_cons), fq.rx.next(fq.bd_prod));
                fq.bd_cons = cons;
                fq.bd_prod = prod;
                fq.counters.rx_packets += 1;
                fq.counters.rx_bytes += n as u64;
                Ok(Some((n, RxMeta { segments: 1, sge_pages: 0 })))
            }
            Cqe::FastPath(c) => {
                let (len, old) = take_bd(fq, c, max_frame, buf_len)?;
                let Some(old) = old else { return Err(RingCqeError::NoBufferPosted { bd_prod: fq.bd_prod }) };
                let n = usize::from(len);
                let placement = usize::from(c.placement_offset);
                match self.cfg.buffers {
                    // Copy the data out before the buffer goes back on the ring.
                    BufferMode::Pool => {
                        self.read_buf(fq, &old, placement, 0, n);
                        self.repost(fq, old);
                    }
                    // A replacement mapped first; the filled buffer is read, then unmapped.
                    BufferMode::Streaming => match self.new_rx_buf(fq) {
                        Ok(fresh) => {
                            self.read_buf(fq, &old, placement, 0, n);
                            let mut free = Vec::new();
                            self.drop_buf(&mut free, old);
                            self.repost(fq, fresh);
                        }
                        Err(_) => {
                            fq.counters.rx_map_errors += 1;
                            self.repost(fq, old);
                            return Ok(None);
                        }
                    },
                }
                fq.counters.rx_packets += 1;
                fq.counters.rx_bytes += n as u64;
                Ok(Some((n, RxMeta { segments: 1, sge_pages: 0 })))
            }
            Cqe::TpaStart(c) => {
                let agg = c.queue_index;
                if usize::from(agg) >= MAX_AGGS {
                    return Err(RingCqeError::AggOutOfRange { agg, max: MAX_AGGS as u8 });
                }
                if fq.aggs.get(usize::from(agg)).is_some_and(Option::is_some) {
                    return Err(RingCqeError::AggAlreadyOpen { agg });
                }
                let (len_on_bd, old) = take_bd(fq, c, max_frame, buf_len)?;
                // The BD's buffer goes to the aggregation; a spare takes its ring place.
                let held = match self.new_rx_buf(fq) {
                    Ok(n) => {
                        self.repost(fq, n);
                        old
                    }
                    Err(_) => {
                        fq.counters.rx_map_errors += 1;
                        if let Some(o) = old {
                            self.repost(fq, o);
                        }
                        None
                    }
                };
                if let Some(a) = fq.aggs.get_mut(usize::from(agg)) {
                    *a = Some(Agg { buf: held, len_on_bd, placement: c.placement_offset });
                }
                Ok(None)
            }
            Cqe::TpaEnd(c) => {
                let agg = c.queue_index;
                if usize::from(agg) >= MAX_AGGS {
                    return Err(RingCqeError::AggOutOfRange { agg, max: MAX_AGGS as u8 });
                }
                let Some(a) = fq.aggs.get(usize::from(agg)).and_then(Option::as_ref) else {
                    return Err(RingCqeError::TpaEndWithoutStart { agg });
                };
                let (len_on_bd, placement) = (a.len_on_bd, a.placement);
                let pkt_len = c.pkt_len.get();
                let pages = cqe::sge_pages_for(pkt_len, len_on_bd, usize::from(self.cfg.max_sges))?;
                let posted = fq.sge.distance(fq.sge_prod, fq.sge_cons);
                if pages > posted {
                    return Err(RingCqeError::SgeShort { pages, posted });
                }
                let mut expected = fq.sge_cons;
                for (pos, e) in c.sgl.iter().take(pages).enumerate() {
                    if e.get() != expected {
                        return Err(RingCqeError::SgeNotPosted { pos, index: e.get(), expected });
                    }
                    expected = fq.sge.next(expected);
                }
                // Valid: assemble first buffer + SGE bytes.
                let agg_state = fq.aggs.get_mut(usize::from(agg)).and_then(Option::take);
                let total = usize::from(pkt_len);
                let held = agg_state.and_then(|a| a.buf);
                let complete = held.is_some();
                if let Some(b) = &held {
                    self.read_buf(fq, b, usize::from(placement), 0, usize::from(len_on_bd));
                }
                let mut at = usize::from(len_on_bd);
                for _ in 0..pages {
                    let s = fq.sge.slot(fq.sge_cons);
                    let page = fq.sge_slots.get_mut(s).and_then(Option::take);
                    fq.sge_cons = fq.sge.next(fq.sge_cons);
                    let n = (total - at).min(hw::SGE_PAGE_SIZE);
                    if let Some(p) = page {
                        // Streaming: a fresh page first, then unmap the filled one.
                        let next = match self.cfg.buffers {
                            BufferMode::Pool => None,
                            BufferMode::Streaming => self.new_sge(fq, 0).ok(),
                        };
                        self.read_buf(fq, &p, 0, at, n);
                        match next {
                            Some(nx) => {
                                let mut free = Vec::new();
                                self.drop_buf(&mut free, p);
                                self.repost_sge(fq, nx);
                            }
                            None => self.repost_sge(fq, p),
                        }
                    } else if let Some(d) = self.scratch.get_mut(at..at + n) {
                        d.fill(0);
                    }
                    at += n;
                }
                if let Some(b) = held {
                    let mut free = std::mem::take(&mut fq.rx_free);
                    self.drop_buf(&mut free, b);
                    fq.rx_free = free;
                }
                fq.counters.rx_tpa_aggregations += 1;
                fq.counters.rx_tpa_sge_pages += pages as u64;
                if !complete {
                    return Ok(None);
                }
                fq.counters.rx_packets += 1;
                fq.counters.rx_bytes += total as u64;
                Ok(Some((total, RxMeta { segments: c.num_of_coalesced_segs.get(), sge_pages: pages as u16 })))
            }
        }
    }

    /// Copy `n` bytes at `off` of buffer `b` into `scratch[at..]` (syncing for the CPU).
    fn read_buf(&mut self, fq: &FpQueue, b: &RxBuf, off: usize, at: usize, n: usize) {
        let Some(dst) = self.scratch.get_mut(at..at + n) else { return };
        let copied = match b {
            RxBuf::Pool { off: base } => fq.mem.mem.read_bulk(base + off, dst),
            RxBuf::Mapped { buf, map, data_off } => {
                let _ = self.dma.sync_for_cpu(map);
                buf.mem.read_bulk(data_off + off, dst)
            }
        };
        if copied.is_none() {
            // Never stale bytes of an earlier packet.
            dst.fill(0);
        }
    }

    /// Post `b` at the RX BD producer.
    #[inline]
    fn repost(&mut self, fq: &mut FpQueue, b: RxBuf) {
        let s = fq.rx.slot(fq.bd_prod);
        write_addr(&fq.mem, fq.lay.rx + fq.rx.offset(s), buf_dma(&fq.mem, &b));
        if let Some(slot) = fq.rx_slots.get_mut(s) {
            *slot = Some(b);
        }
        fq.bd_prod = fq.rx.next(fq.bd_prod);
    }

    fn repost_sge(&mut self, fq: &mut FpQueue, b: RxBuf) {
        let s = fq.sge.slot(fq.sge_prod);
        write_addr(&fq.mem, fq.lay.sge + fq.sge.offset(s), buf_dma(&fq.mem, &b));
        if let Some(slot) = fq.sge_slots.get_mut(s) {
            *slot = Some(b);
        }
        fq.sge_prod = fq.sge.next(fq.sge_prod);
    }
}

/// Check a BD-completing CQE's lengths and take the buffer at the BD consumer.
#[inline(always)]
fn take_bd(
    fq: &mut FpQueue,
    c: &hw::FastPathRxCqe,
    max_frame: u16,
    buf_len: u32,
) -> Result<(u16, Option<RxBuf>), RingCqeError> {
    if fq.bd_cons == fq.bd_prod {
        return Err(RingCqeError::NoBufferPosted { bd_prod: fq.bd_prod });
    }
    let len = cqe::check_bd_lengths(c, max_frame, buf_len)?;
    let s = fq.rx.slot(fq.bd_cons);
    let old = fq.rx_slots.get_mut(s).and_then(Option::take);
    fq.bd_cons = fq.rx.next(fq.bd_cons);
    Ok((len, old))
}

fn buf_dma(mem: &Coherent, b: &RxBuf) -> u64 {
    match b {
        RxBuf::Pool { off } => mem.dma_addr + *off as u64,
        RxBuf::Mapped { map, .. } => map.dma_addr,
    }
}

fn write_addr(mem: &Coherent, off: usize, addr: u64) {
    mem.mem.write_bulk(off, &addr.to_le_bytes());
}

/// `bnx2x_update_rx_prod`: the producers as two dwords.
fn write_prods<B: Backend>(b: &mut B, q: usize, fq: &FpQueue) {
    let mut p = hw::RxProducers::default();
    p.cqe_prod.set(fq.cqe_prod);
    p.bd_prod.set(fq.bd_prod);
    p.sge_prod.set(fq.sge_prod);
    let lo = u32::from(p.cqe_prod.get()) | u32::from(p.bd_prod.get()) << 16;
    let hi = u32::from(p.sge_prod.get());
    b.write32(0, hw::RX_PRODS_HI + q as u64 * hw::RX_PRODS_HI_STRIDE, hi);
    b.write32(0, hw::RX_PRODS_LO + q as u64 * hw::RX_PRODS_STRIDE, lo);
}
