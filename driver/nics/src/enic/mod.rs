//! Cisco VIC (enic) driver on any [`Backend`] (BAR0 registers, DMA through the DMA API of
//! `nicqual-dma`, MSI-X through the backend's notifiers).
//!
//! Bring-up follows Linux's `vnic_dev.c` / `enic_main.c`: the BAR0 resource table is walked
//! (bounded) and every entry validated (type, BAR, `offset + count * stride` inside the BAR)
//! before any block is touched; the devcmd channel opens and initialises the vNIC
//! (`CMD_OPEN`/`CMD_OPEN_STATUS`, `CMD_INIT`/`CMD_INIT_STATUS`, each wait bounded), reads the
//! adapter's MTU (`CMD_DEV_SPEC` of `vnic_enet_config.mtu`) and MAC (`CMD_GET_MAC_ADDR`),
//! then the queues are programmed and the vNIC enabled (`CMD_ENABLE_WAIT`). The driver
//! brings up n WQ/RQ pairs ([`EnicOptions::pairs`]; by default all the table carries) laid
//! out as Linux's `enic_set_intr_mode` does: RQ q on CQ q, WQ q on CQ n + q, and under
//! MSI-X one vector per CQ of the same number, then error (2n) and notify (2n + 1). Each
//! pair has its own rings, buffers, colour-bit cursors ([`cursor::CqCursor`]), counters
//! ([`PairStats`]) and interrupts, whose credits it returns (with unmask) after each
//! service pass of that CQ; a completion naming another queue than the one its CQ serves
//! is refused by name. Without MSI-X it polls. TX goes on a chosen pair
//! ([`Enic::send_on`]), RX is polled per pair ([`Enic::poll_rx_on`]); the unsuffixed calls
//! use pair 0. [`Enic::close`] disables, closes, unmaps what it holds, frees the rings
//! and the buffer region, and gives the backend back with the DMA API's balance
//! (`dma-mappings-balanced`).
//!
//! Memory ([`Buffers`]): the rings are one coherent allocation (`dma_alloc_coherent`); the
//! buffers one region whose parts are mapped either per buffer while the device holds it
//! (`Streaming`, Linux's `pci_map_single` per RX buffer and per transmitted frame) or
//! once for the whole region (`Pool`). [`Enic::census`] says what holds mappings now.
//!
//! Defence ([`Policy::Nicqual`]):
//! * the vNIC MTU is read from the adapter and compared with the interface MTU before any
//!   buffer is posted: above the adapter's (or `ENIC_MAX_MTU`) is refused, below it is
//!   reported (the adapter will deliver frames larger than the interface expects);
//! * receive buffers are `mtu + VLAN_ETH_HLEN`; with streaming buffers (the default) each
//!   is mapped as its own window of exactly the posted length, so a device write past it
//!   is blocked by the IOMMU and reported; with pool buffers it lands in the 64 guard
//!   bytes after the buffer and is counted (`overrun_landed`), never in the neighbour;
//! * every completion is checked — colour (ownership) first, then type, queue, index,
//!   sop/eop, truncation, length against the posted buffer and the MTU — before a byte of
//!   the buffer is read ([`validate`]); refused frames are dropped and counted per reason.
//!
//! [`Policy::Early`] reproduces the 2.6.3x driver for comparison: `mtu + ETH_HLEN` buffers,
//! pool buffers by default (one window: a Xen dom0 without an IOMMU translates nothing), and completions trusted after the colour and the
//! truncated bit. What that driver would have done wrong is counted, not done: the Rust
//! code never reads past a buffer.

pub mod cursor;
pub mod validate;

use crate::backend::Backend;
use crate::dmamap::{Coherent, CpuBuffer, DmaApi, DmaError, DmaMapping, DmaPlatform, DmaStats};
use crate::health::CheckReport;
use crate::swiotlb::{DeviceName, DmaDirection};
use cursor::{CqCursor, ring};
use nicqual_hw::enic::{self as hw, CqDesc, CqEnetRqDesc, RqEnetDesc, WqEnetDesc};
use nicqual_pci::BackendError;
use validate::{CompletionError, RqState, TxCompletionError};
use zerocopy::{FromBytes, IntoBytes};

/// How the driver treats the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Validate everything; IOMMU window per buffer.
    Nicqual,
    /// Early enic (2.6.3x): short buffers, no IOMMU, trusted completions.
    Early,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Nicqual => "enic nicqual",
            Policy::Early => "enic early (2.6.3x)",
        }
    }

    /// Receive buffer length for `mtu`.
    pub fn buf_len(self, mtu: u32) -> u32 {
        match self {
            Policy::Nicqual => hw::rx_buf_len(mtu),
            Policy::Early => hw::rx_buf_len_early(mtu),
        }
    }
}

/// How buffers are mapped through the DMA API (rings are one coherent allocation either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Buffers {
    /// Linux's way (`enic_rq_alloc_buf` / `enic_queue_wq_skb`): each RX buffer is mapped
    /// from-device when it is posted, as its own window of exactly the posted length, and
    /// unmapped when its completion is reclaimed; each transmitted frame is mapped
    /// to-device until its WQ completion. A device write past a buffer is blocked by the
    /// IOMMU.
    Streaming,
    /// A userspace driver's way: every RX and TX buffer sits in one region mapped once, so
    /// the datapath maps nothing. A device write past a buffer lands in its guard bytes
    /// (counted as `overrun_landed`), not in the IOMMU.
    Pool,
}

/// Bring-up options ([`Enic::with_options`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EnicOptions {
    pub policy: Policy,
    pub platform: Platform,
    /// Interface MTU.
    pub mtu: u32,
    /// Entries per ring (a multiple of 32, 64..=4096).
    pub entries: u32,
    pub buffers: Buffers,
    /// MSI-X per CQ (credits returned per service pass); off: poll mode (no interrupt
    /// control block programmed, no message sent; the caller polls, as DPDK's PMD does).
    pub interrupts: bool,
    /// WQ/RQ pairs to bring up. `None`: every pair the resource table carries
    /// ([`Resources::max_pairs`]), with interrupts on bounded by the pairs its interrupt
    /// control blocks serve with MSI-X ([`Resources::msix_pairs`]). `Some(n)` above what
    /// the table carries is refused ([`EnicError::TooManyPairs`]).
    pub pairs: Option<u32>,
}

impl EnicOptions {
    /// Nicqual maps streaming (a window per buffer) and brings up every pair; early enic
    /// gets one window for everything (a Xen dom0 without IOMMU translates nothing) and one
    /// pair, as the 2.6.3x drivers had on this vNIC: their `enic_set_intr_mode` took
    /// n = `ARRAY_SIZE(enic->rq)` RQs only when the vNIC listed that many, else one RQ and
    /// one WQ, and `ENIC_RQ_MAX` was 1 in some versions (enic.h 2.1.1.13) and 8 in others
    /// (1.3.1.1-pp): one pair on a vNIC listing 4 RQs either way (copies of enic.h and
    /// enic_main.c found by search, not pinned to a kernel tag).
    pub fn new(policy: Policy, platform: Platform, mtu: u32, entries: u32) -> Self {
        let (buffers, pairs) = match policy {
            Policy::Nicqual => (Buffers::Streaming, None),
            Policy::Early => (Buffers::Pool, Some(1)),
        };
        EnicOptions { policy, platform, mtu, entries, buffers, interrupts: true, pairs }
    }

    /// Bring up `pairs` WQ/RQ pairs (`None`: all the table carries).
    pub fn pairs(self, pairs: Option<u32>) -> Self {
        EnicOptions { pairs, ..self }
    }

    pub fn buffers(self, buffers: Buffers) -> Self {
        EnicOptions { buffers, ..self }
    }

    pub fn interrupts(self, interrupts: bool) -> Self {
        EnicOptions { interrupts, ..self }
    }
}

/// What the driver holds now, summed over every WQ/RQ pair: posted buffers, frames in
/// flight and the DMA API's live mappings (streaming: one per posted RX buffer and per
/// frame in flight; pool: the one region mapping).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EnicCensus {
    pub rx_posted: u32,
    pub rx_mapped: usize,
    pub tx_in_flight: u32,
    pub tx_mapped: usize,
    /// Region mappings (pool mode's buffer region, streaming mode's overflow buffer).
    pub region_mapped: usize,
    pub coherent: usize,
    pub live_mappings: usize,
}

/// What stands between the device and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Platform {
    /// Buffers are DMA'd directly (an IOMMU or a bare-metal kernel): nothing bounces.
    Direct,
    /// A classic Xen dom0 without an IOMMU: a buffer spanning pages is not machine-
    /// contiguous and bounces through a SWIOTLB pool of `pool_slots` 2-KiB slots
    /// (`swiotlb-xen`; 4 MiB = 2048 slots is the classic dom0 default under 1 GiB of RAM).
    /// Slot accounting and the failure are the SWIOTLB model's; the data copy is elided.
    XenDom0 { pool_slots: usize },
}

impl Platform {
    pub fn name(self) -> String {
        match self {
            Platform::Direct => "direct DMA".into(),
            Platform::XenDom0 { pool_slots } => {
                format!("Xen dom0, {} MiB SWIOTLB", (pool_slots * crate::swiotlb::IO_TLB_SIZE) >> 20)
            }
        }
    }
}

/// Headroom the kernel puts before a receive buffer's data (NET_SKB_PAD + NET_IP_ALIGN):
/// with it, a buffer of more than 4096 - 66 bytes spans two pages.
pub const RX_HEADROOM: u32 = 66;

/// Bring-up and transmit errors.
#[derive(Debug, thiserror::Error)]
pub enum EnicError {
    #[error("resource table at BAR0 0x0 reads {found:#010x}: the device is gone")]
    DeviceGone { found: u32 },
    #[error("resource table at BAR0 0x0: magic {found:#010x} is not 'vnic' ({:#010x})", hw::VNIC_RES_MAGIC)]
    BadMagic { found: u32 },
    #[error("resource table lists no {what} (type {ty})")]
    MissingResource { what: &'static str, ty: u8 },
    #[error(
        "resource table entry {entry} ({what}): {count} at BAR{bar} {offset:#x} ({len:#x} bytes) lies outside the {limit:#x}-byte BAR"
    )]
    ResourceOutOfRange { entry: u64, what: &'static str, bar: u8, offset: u64, count: u32, len: u64, limit: u64 },
    #[error("resource table entry {entry} ({what}) names BAR{bar}, which the function does not have")]
    ResourceBadBar { entry: u64, what: &'static str, bar: u8 },
    #[error("resource table has no end-of-list within {max} entries")]
    ResourceTableUnterminated { max: u64 },
    #[error("devcmd {cmd:#010x}: the previous command is still busy (status {status:#x} at BAR0 {offset:#x})")]
    DevcmdBusy { cmd: u32, status: u32, offset: u64 },
    #[error("devcmd {cmd:#010x} failed: STAT_ERROR with error {code} in args[0]")]
    DevcmdFailed { cmd: u32, code: u64 },
    #[error("devcmd {cmd:#010x}: still busy after {waited_ns} ns")]
    DevcmdTimeout { cmd: u32, waited_ns: u64 },
    #[error("{what}: still in progress after {waited_ns} ns")]
    BringUpTimeout { what: &'static str, waited_ns: u64 },
    #[error("adapter MTU {mtu} (CMD_DEV_SPEC vnic_enet_config.mtu) is outside {min}..=65535")]
    AdapterMtu { mtu: u32, min: u32 },
    #[error("interface MTU {mtu} is outside {min}..={max} (ENIC_MAX_MTU)")]
    MtuUnsupported { mtu: u32, min: u32, max: u32 },
    #[error(
        "interface MTU ({host}) set higher than port MTU ({adapter}): frames above {adapter} would be dropped by the adapter"
    )]
    MtuAboveAdapter { host: u32, adapter: u32 },
    #[error("ring of {entries} entries: must be a multiple of {align} in {min}..={max}")]
    BadRingSize { entries: u32, align: u32, min: u32, max: u32 },
    #[error("DMA memory: {0}")]
    Dma(#[from] BackendError),
    #[error("DMA API, {what}: {source}")]
    Map {
        what: &'static str,
        #[source]
        source: DmaError,
    },
    #[error("frame of {len} bytes exceeds MTU {mtu} + {hdr}")]
    TxTooLong { len: usize, mtu: u32, hdr: u32 },
    #[error("TX buffer of {len} bytes: mapping failed: {why}")]
    TxMapFailed { len: usize, why: String },
    #[error("WQ{wq} full ({entries} entries outstanding)")]
    TxRingFull { wq: u32, entries: u32 },
    #[error("{queue}{q} error_status {status:#x} (register {offset:#x}): the adapter stopped the queue")]
    QueueError { queue: &'static str, q: u32, status: u32, offset: u64 },
    #[error("no WQ/RQ pair {q}: the driver brought up {pairs}")]
    NoSuchPair { q: u32, pairs: u32 },
    #[error(
        "{asked} WQ/RQ pair(s) asked for; the resource table carries {max} ({wq} WQ, {rq} RQ, {cq} CQ: one CQ per RQ and per WQ, at most {MAX_PAIRS})"
    )]
    TooManyPairs { asked: u32, max: u32, wq: u32, rq: u32, cq: u32 },
}

/// What the driver counted.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct EnicStats {
    pub tx_frames: u64,
    pub tx_completions: u64,
    /// WQ completions refused (bad type / queue / index).
    pub tx_bad_completions: u64,
    pub rx_delivered: u64,
    pub rx_bytes: u64,
    /// Drops per [`validate::REASONS`] entry.
    pub rx_dropped: [u64; validate::REASONS.len()],
    /// Posted buffers the adapter skipped (completed a later index first).
    pub rx_skipped: u64,
    /// Guard bytes after a buffer found overwritten: the device wrote past the posted
    /// length and nothing stopped it.
    pub overrun_landed: u64,
    /// Early policy: completions that would have made the driver read past its buffer
    /// (`skb_put(bytes_written)` with bytes_written > the buffer).
    pub would_read_past_buffer: u64,
    /// Early policy: completions naming an index never posted, which the old service loop
    /// would have walked into (an unposted, stale buffer handed up).
    pub would_use_unposted: u64,
    /// Early policy: frames handed up although they were only part of a spanning frame.
    pub partial_delivered: u64,
    /// Bounce mappings that failed (RX posts and TX sends).
    pub map_failures: u64,
    /// Early policy: buffers posted / frames sent at the shared overflow buffer after a
    /// failed mapping (no `dma_mapping_error` check).
    pub overflow_posted: u64,
    /// RX buffers not posted because the bounce pool could not take them (nicqual).
    pub rx_not_posted: u64,
    /// TX frames refused because their bounce mapping failed (nicqual).
    pub tx_map_refused: u64,
    /// MSI-X messages seen on the RX and TX vectors, and credits returned.
    pub rx_irqs: u64,
    pub tx_irqs: u64,
    pub credits_returned: u64,
    /// Completion entries written with the previous lap's colour while the next entry is
    /// fresh (the adapter wrote the stale one last and out of turn): skipped.
    pub stale_colour: u64,
}

impl EnicStats {
    pub fn dropped_total(&self) -> u64 {
        self.rx_dropped.iter().sum()
    }

    /// Drops for `reason` (one of [`validate::REASONS`]).
    pub fn dropped(&self, reason: &str) -> u64 {
        validate::REASONS.iter().position(|r| *r == reason).and_then(|i| self.rx_dropped.get(i)).copied().unwrap_or(0)
    }

    fn count_drop(&mut self, e: &CompletionError) {
        if let Some(c) =
            validate::REASONS.iter().position(|r| *r == e.reason()).and_then(|i| self.rx_dropped.get_mut(i))
        {
            *c += 1;
        }
    }
}

/// Guard bytes after each receive buffer (filled with [`GUARD_BYTE`]).
const GUARD: usize = 64;
const GUARD_BYTE: u8 = 0xA5;

/// Most WQ/RQ pairs the driver brings up (`ENIC_WQ_MAX` / `ENIC_RQ_MAX` of Linux's enic.h
/// from 2.6.3x to 4.x: 8). Bounds every per-pair allocation whatever the table says.
pub const MAX_PAIRS: u32 = 8;

/// Where things live: per pair, its four rings in the coherent ring block (RQ, the RQ's
/// CQ, the WQ's CQ, WQ) and its RX buffers (each followed by its guard) then its TX
/// buffers in the buffer region; the overflow buffer after every pair's buffers.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Bytes of one ring (entries x 16, aligned).
    ring: usize,
    rings: usize,
    rx_stride: usize,
    tx_stride: usize,
    /// Bytes of one pair's buffers.
    pair_bufs: usize,
    /// The shared overflow buffer old kernels returned for a failed bounce mapping.
    overflow: usize,
    total: usize,
}

impl Layout {
    fn new(entries: u32, buf_len: u32, tx_len: u32, pairs: u32) -> Layout {
        let ring = (entries as usize * 16).next_multiple_of(hw::RING_BASE_ALIGN as usize);
        let rx_stride = (buf_len as usize + GUARD).next_multiple_of(64);
        let tx_stride = (tx_len as usize).next_multiple_of(64);
        let pair_bufs = (rx_stride + tx_stride) * entries as usize;
        let overflow = pair_bufs * pairs as usize;
        Layout {
            ring,
            rings: 4 * ring * pairs as usize,
            rx_stride,
            tx_stride,
            pair_bufs,
            overflow,
            total: overflow + crate::swiotlb::OVERFLOW_BYTES,
        }
    }
}

/// What the resource table lists (BAR0 offsets of instance 0, and counts), validated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Resources {
    pub devcmd: u64,
    pub wq: u64,
    pub wq_count: u32,
    pub rq: u64,
    pub rq_count: u32,
    pub cq: u64,
    pub cq_count: u32,
    /// Interrupt control blocks (absent: no interrupts).
    pub intr: Option<u64>,
    pub intr_count: u32,
    /// Entries walked before end-of-list.
    pub entries: u64,
}

impl Resources {
    /// Pairs the table can carry as Linux's enic lays them out (`enic_set_intr_mode`):
    /// n RQs, n WQs and 2n CQs (RQ q on CQ q, WQ q on CQ n + q), at most [`MAX_PAIRS`].
    /// MSI-X needs 2n + 2 interrupt control blocks besides ([`Resources::msix_pairs`]).
    pub fn max_pairs(&self) -> u32 {
        self.wq_count.min(self.rq_count).min(self.cq_count / 2).min(MAX_PAIRS)
    }

    /// Pairs the interrupt control blocks can serve with MSI-X: one vector per RQ, one per
    /// WQ, then the error and the notify vector (n + m + 2 in `enic_set_intr_mode`).
    pub fn msix_pairs(&self) -> u32 {
        if self.intr.is_none() { 0 } else { self.intr_count.saturating_sub(2) / 2 }
    }

    fn cq_block(&self, i: u32) -> u64 {
        self.cq + u64::from(i) * hw::VNIC_RES_STRIDE
    }

    fn intr_block(&self, i: u32) -> Option<u64> {
        self.intr.map(|b| b + u64::from(i) * hw::VNIC_RES_STRIDE)
    }

    fn wq_block(&self, q: u32) -> u64 {
        self.wq + u64::from(q) * hw::VNIC_RES_STRIDE
    }

    fn rq_block(&self, q: u32) -> u64 {
        self.rq + u64::from(q) * hw::VNIC_RES_STRIDE
    }
}

/// How the driver learns of completions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IrqMode {
    /// One MSI-X vector per CQ (with n pairs: RQ q's CQ on vector q, WQ q's on n + q, then
    /// error and notify: `vectors` = 2n + 2), credits returned after each service pass.
    Msix { vectors: u16 },
    /// No MSI-X (the backend or device has none, or too few INTR_CTRL): the driver polls.
    Polled { why: String },
}

/// What one WQ/RQ pair counted (the [`EnicStats`] totals are the sums over the pairs, plus
/// what belongs to no pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PairStats {
    pub tx_frames: u64,
    pub tx_completions: u64,
    /// WQ completions refused on this pair's CQ (any reason, stale colour included).
    pub tx_bad_completions: u64,
    pub rx_delivered: u64,
    pub rx_bytes: u64,
    /// Receive completions refused (every reason).
    pub rx_refused: u64,
    /// MSI-X messages seen on the pair's RX and TX vectors.
    pub rx_irqs: u64,
    pub tx_irqs: u64,
    /// Credits returned on the RX and TX CQs' interrupts.
    pub rx_credits_returned: u64,
    pub tx_credits_returned: u64,
}

/// One WQ/RQ pair: its blocks, rings, buffers, cursors and counters. Each pair's ring
/// arithmetic is its own; nothing is shared between pairs but the backend and the DMA API.
#[derive(Debug, Default)]
struct Pair {
    q: u32,
    /// CQ (and, under MSI-X, interrupt) of RQ q and of WQ q.
    rx_cq: u32,
    tx_cq: u32,
    /// BAR0 offsets of RQ q's and WQ q's control blocks.
    rq: u64,
    wq: u64,
    /// Offsets in the ring block.
    rq_ring: usize,
    cq_rx_ring: usize,
    cq_tx_ring: usize,
    wq_ring: usize,
    /// Offsets in the buffer region.
    rx_bufs: usize,
    tx_bufs: usize,
    rq_to_clean: u32,
    rq_outstanding: u32,
    rq_posted: u32,
    cq_rx: CqCursor,
    cq_tx: CqCursor,
    wq_to_use: u32,
    wq_to_clean: u32,
    wq_outstanding: u32,
    /// Streaming mode: the mapping of the buffer each RQ / WQ slot holds.
    rq_dma: Vec<Option<DmaMapping>>,
    wq_dma: Vec<Option<DmaMapping>>,
    /// Bounce mapping held by each RQ / WQ slot (bus address), if any.
    rq_maps: Vec<Option<u64>>,
    wq_maps: Vec<Option<u64>>,
    stats: PairStats,
}

impl Pair {
    fn new(q: u32, n: u32, res: &Resources, lay: &Layout, entries: u32, cursor: CqCursor) -> Pair {
        let rings = 4 * lay.ring * q as usize;
        let bufs = lay.pair_bufs * q as usize;
        let slots = entries as usize;
        Pair {
            q,
            rx_cq: q,
            tx_cq: n + q,
            rq: res.rq_block(q),
            wq: res.wq_block(q),
            rq_ring: rings,
            cq_rx_ring: rings + lay.ring,
            cq_tx_ring: rings + 2 * lay.ring,
            wq_ring: rings + 3 * lay.ring,
            rx_bufs: bufs,
            tx_bufs: bufs + lay.rx_stride * slots,
            cq_rx: cursor,
            cq_tx: cursor,
            rq_dma: vec![None; slots],
            wq_dma: vec![None; slots],
            rq_maps: vec![None; slots],
            wq_maps: vec![None; slots],
            ..Pair::default()
        }
    }
}

/// The driver, owning the backend that reaches the vNIC.
#[derive(Debug)]
pub struct Enic<B: Backend> {
    b: B,
    dma: DmaApi,
    buffers: Buffers,
    /// Every pair's four rings (one coherent allocation).
    rings: Coherent,
    /// Every pair's RX buffers (each followed by its guard) and TX buffers, and the
    /// overflow buffer.
    bufs: CpuBuffer,
    /// Pool mode: the one mapping of `bufs`.
    bufs_map: Option<DmaMapping>,
    /// Streaming mode: the overflow buffer's mapping (early enic posts there after a
    /// failed bounce mapping).
    overflow_map: Option<DmaMapping>,
    pairs: Vec<Pair>,
    policy: Policy,
    res: Resources,
    mac: [u8; 6],
    irq: IrqMode,
    lay: Layout,
    entries: u32,
    mtu: u32,
    adapter_mtu: u32,
    buf_len: u32,
    platform: Platform,
    bounce: Option<crate::swiotlb::Swiotlb>,
    /// Bounce slots one receive buffer takes (0 when it does not bounce).
    rx_slots: usize,
    pub stats: EnicStats,
    /// Why each refused completion was refused (bounded; the counters keep the totals).
    pub drop_log: Vec<CompletionError>,
    /// Why each refused transmit completion was refused (bounded).
    pub tx_drop_log: Vec<TxCompletionError>,
    /// Receive copy buffer reused for every delivered frame.
    rx_scratch: Vec<u8>,
}

const DROP_LOG_CAP: usize = 64;
/// Devcmd polling: every [`DEVCMD_POLL_NS`], at most [`DEVCMD_POLLS`] times (Linux waits
/// up to 100 x 100 us in `_vnic_dev_cmd`; the model is far quicker).
const DEVCMD_POLL_NS: u64 = 1_000;
const DEVCMD_POLLS: u64 = 1_000;
/// Open/init status polling: every 10 us, at most 2 000 times (20 ms; Linux waits 2 s).
const OPEN_POLL_NS: u64 = 10_000;
const OPEN_POLLS: u64 = 2_000;

/// How many pairs to bring up: `asked` (refused above what the table carries) or, by
/// default, all the table carries, bounded with interrupts on by what its interrupt
/// control blocks serve with MSI-X (when they serve at least one pair).
fn choose_pairs(res: &Resources, asked: Option<u32>, interrupts: bool) -> Result<u32, EnicError> {
    let fit = res.max_pairs();
    match asked {
        Some(n) if n == 0 || n > fit => {
            Err(EnicError::TooManyPairs { asked: n, max: fit, wq: res.wq_count, rq: res.rq_count, cq: res.cq_count })
        }
        Some(n) => Ok(n),
        None => {
            let msix = res.msix_pairs();
            Ok(if interrupts && msix >= 1 { fit.min(msix) } else { fit })
        }
    }
}

impl<B: Backend> Enic<B> {
    /// Bring up the vNIC with `entries` per ring (a multiple of 32, 64..=4096) for an
    /// interface MTU of `mtu`. Returns the driver and, when the adapter's MTU differs
    /// from the interface's, a line saying so.
    pub fn new(
        b: B,
        policy: Policy,
        platform: Platform,
        mtu: u32,
        entries: u32,
    ) -> Result<(Enic<B>, Option<String>), EnicError> {
        Self::with_options(b, EnicOptions::new(policy, platform, mtu, entries))
    }

    /// [`Enic::new`] with the buffer mapping, interrupts and pairs chosen ([`EnicOptions`]).
    pub fn with_options(mut b: B, o: EnicOptions) -> Result<(Enic<B>, Option<String>), EnicError> {
        let EnicOptions { policy, platform, mtu, entries, buffers, interrupts, pairs } = o;
        let bad_size = EnicError::BadRingSize {
            entries,
            align: hw::RING_COUNT_ALIGN,
            min: hw::MIN_RQ_DESCS,
            max: hw::MAX_RQ_DESCS,
        };
        if !(hw::MIN_RQ_DESCS..=hw::MAX_RQ_DESCS).contains(&entries) || !entries.is_multiple_of(hw::RING_COUNT_ALIGN) {
            return Err(bad_size);
        }
        if !(hw::ENIC_MIN_MTU..=hw::ENIC_MAX_MTU).contains(&mtu) {
            return Err(EnicError::MtuUnsupported { mtu, min: hw::ENIC_MIN_MTU, max: hw::ENIC_MAX_MTU });
        }
        // Memory decoding and bus mastering (`pci_enable_device`, `pci_set_master`).
        let cmd = b.config_read(nicqual_hw::pci::COMMAND, 2)?;
        let on = u32::from(nicqual_hw::pci::COMMAND_MEMORY | nicqual_hw::pci::COMMAND_BUS_MASTER);
        b.config_write(nicqual_hw::pci::COMMAND, 2, (cmd & 0xFFFF) | on)?;
        let res = read_resources(&mut b)?;
        let n = choose_pairs(&res, pairs, interrupts)?;
        dev_open(&mut b, &res)?;
        let adapter_mtu = devcmd(&mut b, &res, hw::CMD_DEV_SPEC, [hw::ENET_CONFIG_MTU, 2])? as u32;
        if adapter_mtu < hw::ENIC_MIN_MTU {
            return Err(EnicError::AdapterMtu { mtu: adapter_mtu, min: hw::ENIC_MIN_MTU });
        }
        let mac_word = devcmd(&mut b, &res, hw::CMD_GET_MAC_ADDR, [0, 0])?.to_le_bytes();
        let mut mac = [0u8; 6];
        mac.copy_from_slice(mac_word.get(..6).unwrap_or(&[0; 6]));
        let note = match mtu.cmp(&adapter_mtu) {
            std::cmp::Ordering::Greater if policy == Policy::Nicqual => {
                return Err(EnicError::MtuAboveAdapter { host: mtu, adapter: adapter_mtu });
            }
            std::cmp::Ordering::Greater => Some(format!(
                "interface MTU ({mtu}) set higher than port MTU ({adapter_mtu}); continuing as early enic did"
            )),
            std::cmp::Ordering::Less => Some(format!(
                "vNIC MTU {adapter_mtu} (adapter) > interface MTU {mtu}: frames up to {} bytes will arrive; larger than {} are dropped and counted",
                hw::rx_buf_len(adapter_mtu),
                policy.buf_len(mtu)
            )),
            std::cmp::Ordering::Equal => None,
        };
        let buf_len = policy.buf_len(mtu);
        let lay = Layout::new(entries, buf_len, hw::rx_buf_len(mtu), n);
        // The DMA API on an IOMMU platform (the emulated device always sits behind one;
        // a Xen dom0's bounce accounting is `Platform::XenDom0`'s, below).
        let pages = (lay.total as u64).div_ceil(nicqual_dma::memory::PAGE_SIZE) + 64;
        let host = DmaPlatform::iommu(nicqual_dma::memory::HostMemory::native(pages)).shared();
        let mut dma = DmaApi::new(DeviceName::new("enic", b.info().name), host, u64::MAX);
        let rings = dma.alloc_coherent(&mut b, lay.rings).map_err(|source| EnicError::Map { what: "rings", source })?;
        let bufs = dma
            .alloc_buffer(&mut b, lay.total, nicqual_dma::memory::PAGE_SIZE)
            .map_err(|source| EnicError::Map { what: "buffer region", source })?;
        let bounce = match platform {
            Platform::Direct => None,
            Platform::XenDom0 { pool_slots } => Some(crate::swiotlb::Swiotlb::new(
                crate::swiotlb::SwiotlbConfig::with_slots(crate::swiotlb::Generation::ClassicXen, pool_slots),
            )),
        };
        let rx_slots = if bounce.is_some() && buf_len + RX_HEADROOM > crate::swiotlb::PAGE_SIZE as u32 {
            crate::swiotlb::nr_slots(buf_len as usize)
        } else {
            0
        };
        let cursor = CqCursor::new(entries).ok_or(bad_size)?;
        let pairs = (0..n).map(|q| Pair::new(q, n, &res, &lay, entries, cursor)).collect();
        let mut e = Enic {
            b,
            dma,
            buffers,
            rings,
            bufs,
            bufs_map: None,
            overflow_map: None,
            pairs,
            policy,
            res,
            mac,
            irq: IrqMode::Polled { why: "not set up yet".into() },
            lay,
            entries,
            mtu,
            adapter_mtu,
            buf_len,
            platform,
            bounce,
            rx_slots,
            stats: EnicStats::default(),
            drop_log: Vec::new(),
            tx_drop_log: Vec::new(),
            rx_scratch: Vec::with_capacity(buf_len as usize),
        };
        e.map_memory()?;
        e.irq = if interrupts {
            e.setup_msix()
        } else {
            IrqMode::Polled { why: "poll mode: interrupts off by option".into() }
        };
        for q in 0..n {
            e.with_pair(q, |e, p| {
                e.program_pair(p);
                for _ in 0..entries - 1 {
                    e.post_rx_buffer(p);
                }
                e.ring_rq_doorbell(p);
            });
        }
        devcmd(&mut e.b, &e.res, hw::CMD_ENABLE_WAIT, [0, 0])?;
        Ok((e, note))
    }

    /// Run `f` on pair `q`, taken out of the driver for the call (so that `f` has the
    /// driver and the pair at once); `None` when there is no such pair.
    fn with_pair<R>(&mut self, q: u32, f: impl FnOnce(&mut Self, &mut Pair) -> R) -> Option<R> {
        let mut p = std::mem::take(self.pairs.get_mut(q as usize)?);
        let r = f(self, &mut p);
        if let Some(slot) = self.pairs.get_mut(q as usize) {
            *slot = p;
        }
        Some(r)
    }

    fn no_pair(&self, q: u32) -> EnicError {
        EnicError::NoSuchPair { q, pairs: self.pairs.len() as u32 }
    }

    /// The resource table as the driver read and validated it.
    pub fn resources(&self) -> Resources {
        self.res
    }

    /// WQ/RQ pairs brought up (queues 0..pairs).
    pub fn pairs(&self) -> u32 {
        self.pairs.len() as u32
    }

    /// The CQs serving RQ `q` and WQ `q` (`enic_cq_rq`, `enic_cq_wq`: q and pairs + q).
    pub fn pair_cqs(&self, q: u32) -> Option<(u32, u32)> {
        self.pairs.get(q as usize).map(|p| (p.rx_cq, p.tx_cq))
    }

    /// What pair `q` counted.
    pub fn pair_stats(&self, q: u32) -> Option<PairStats> {
        self.pairs.get(q as usize).map(|p| p.stats)
    }

    /// The MAC address the adapter reported (`CMD_GET_MAC_ADDR`).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn irq_mode(&self) -> &IrqMode {
        &self.irq
    }

    /// MSI-X vectors of pair 0's RX and TX CQs (`None` when polling).
    pub fn vectors(&self) -> Option<(u16, u16)> {
        self.pair_vectors(0)
    }

    /// MSI-X vectors of pair `q`'s RX and TX CQs (`enic_msix_rq_intr`, `enic_msix_wq_intr`:
    /// the CQ's own number); `None` when polling or without that pair.
    pub fn pair_vectors(&self, q: u32) -> Option<(u16, u16)> {
        let p = self.pairs.get(q as usize)?;
        matches!(self.irq, IrqMode::Msix { .. }).then_some((p.rx_cq as u16, p.tx_cq as u16))
    }

    /// Credits outstanding on the interrupt of pair 0's RX (`tx` false) or TX CQ.
    pub fn intr_credits(&mut self, tx: bool) -> Option<u32> {
        self.intr_credits_on(0, tx)
    }

    /// Credits outstanding on the interrupt of pair `q`'s RX (`tx` false) or TX CQ, as the
    /// adapter reports them (`int_credits`); `None` without INTR_CTRL, without that pair
    /// or when the read is all-ones.
    pub fn intr_credits_on(&mut self, q: u32, tx: bool) -> Option<u32> {
        let p = self.pairs.get(q as usize)?;
        let o = self.res.intr_block(if tx { p.tx_cq } else { p.rx_cq })?;
        let v = self.b.read32(hw::BAR_REGS, o + hw::INTR_INT_CREDITS);
        (v != u32::MAX).then_some(v)
    }

    /// [`Enic::wait_irq_on`] for pair 0.
    pub fn wait_irq(&mut self, tx: bool, bound_ns: u64) -> u64 {
        self.wait_irq_on(0, tx, bound_ns)
    }

    /// Wait (up to `bound_ns`, in 1 us steps) for pair `q`'s RX (`tx` false) or TX vector's
    /// notifier; returns the signals seen (0 on timeout, without MSI-X or without that
    /// pair).
    pub fn wait_irq_on(&mut self, q: u32, tx: bool, bound_ns: u64) -> u64 {
        let Some((rx, txv)) = self.pair_vectors(q) else { return 0 };
        let v = if tx { txv } else { rx };
        for _ in 0..bound_ns.div_ceil(1_000).max(1) {
            let n = self.b.notifier(v).map_or(0, |n| n.take());
            if n > 0 {
                let ps = self.pairs.get_mut(q as usize).map(|p| &mut p.stats);
                if tx {
                    self.stats.tx_irqs += n;
                    if let Some(s) = ps {
                        s.tx_irqs += n;
                    }
                } else {
                    self.stats.rx_irqs += n;
                    if let Some(s) = ps {
                        s.rx_irqs += n;
                    }
                }
                return n;
            }
            self.b.wait(1_000);
        }
        0
    }

    /// Ask the backend for Linux's MSI-X layout over the pairs (n RQ vectors, n WQ
    /// vectors, error, notify: 2n + 2) and program the RQ and WQ vectors' INTR_CTRL blocks
    /// (mask on assertion, no coalescing, unmasked); the error and notify blocks are left
    /// masked (the driver services neither). Falls back to polling, saying why.
    fn setup_msix(&mut self) -> IrqMode {
        let n = self.pairs();
        let need = 2 * n + 2;
        if self.res.intr.is_none() || self.res.intr_count < need {
            return IrqMode::Polled {
                why: format!(
                    "{} interrupt control block(s); {n} pair(s) need {need} (one per RQ, one per WQ, error, notify)",
                    self.res.intr_count
                ),
            };
        }
        let vectors = need as u16;
        if let Err(e) = self.b.msix_enable(vectors) {
            return IrqMode::Polled { why: e.to_string() };
        }
        for i in 0..need {
            let Some(o) = self.res.intr_block(i) else { continue };
            if i < 2 * n {
                self.b.write32(hw::BAR_REGS, o + hw::INTR_COALESCING_TIMER, 0);
                self.b.write32(hw::BAR_REGS, o + hw::INTR_MASK_ON_ASSERTION, 1);
                self.b.write32(hw::BAR_REGS, o + hw::INTR_INT_CREDIT_RETURN, hw::INTR_CREDITS_MASK | hw::INTR_UNMASK);
                self.b.write32(hw::BAR_REGS, o + hw::INTR_MASK, 0);
            } else {
                self.b.write32(hw::BAR_REGS, o + hw::INTR_MASK, 1);
            }
        }
        IrqMode::Msix { vectors }
    }

    /// Give back `n` credits on CQ `cq`'s interrupt and unmask it (`vnic_intr_return_credits`
    /// with unmask and timer reset), as the end of a service pass does. Returns the
    /// credits given back (0 when polling).
    fn return_credits(&mut self, cq: u32, n: u32) -> u64 {
        if !matches!(self.irq, IrqMode::Msix { .. }) {
            return 0;
        }
        let Some(o) = self.res.intr_block(cq) else { return 0 };
        let v = (n.min(hw::INTR_CREDITS_MASK)) | hw::INTR_UNMASK | hw::INTR_RESET_TIMER;
        self.b.write32(hw::BAR_REGS, o + hw::INTR_INT_CREDIT_RETURN, v);
        self.stats.credits_returned += u64::from(n);
        u64::from(n)
    }

    /// Tear down: disable the vNIC and every pair's queues (`CMD_DISABLE`), close it,
    /// release MSI-X, unmap every buffer the driver holds and free the rings and the buffer
    /// region through the DMA API, and return the backend (whose `live_mappings()` is then
    /// 0 and `msix_vectors()` 0) with the DMA API's balance (`dma-mappings-balanced`: fails
    /// when the API had to unmap something the driver's own bookkeeping missed). A device
    /// that is gone gets no register write.
    pub fn close(mut self) -> (CheckReport, B) {
        let gone = self.b.read32(hw::BAR_REGS, 0) == u32::MAX;
        if !gone {
            let _ = devcmd(&mut self.b, &self.res, hw::CMD_DISABLE, [0, 0]);
            for p in &self.pairs {
                for o in [p.wq, p.rq] {
                    self.b.write32(hw::BAR_REGS, o + hw::Q_ENABLE, 0);
                }
                for i in [p.rx_cq, p.tx_cq] {
                    let o = self.res.cq_block(i);
                    self.b.write32(hw::BAR_REGS, o + hw::CQ_INTERRUPT_ENABLE, 0);
                }
            }
            let _ = devcmd(&mut self.b, &self.res, hw::CMD_CLOSE, [0, 0]);
        }
        let _ = self.b.msix_disable();
        let mut held = Vec::new();
        for p in &mut self.pairs {
            held.extend(std::mem::take(&mut p.rq_dma).into_iter().chain(std::mem::take(&mut p.wq_dma)).flatten());
        }
        for m in held.into_iter().chain(self.bufs_map.take()).chain(self.overflow_map.take()) {
            let _ = self.dma.unmap(&mut self.b, m);
        }
        let _ = self.dma.free_coherent(&mut self.b, self.rings.clone());
        let _ = self.dma.free_buffer(self.bufs.clone());
        let report = self.dma.teardown(&mut self.b);
        (report, self.b)
    }

    /// [`Enic::close`] without the report.
    pub fn shutdown(self) -> B {
        self.close().1
    }

    /// Device address of the ring block: the start of the driver's DMA space (the buffer
    /// region or the streaming windows are mapped above it).
    pub fn dma_base(&self) -> u64 {
        self.rings.dma_addr
    }

    /// How buffers are mapped.
    pub fn buffers(&self) -> Buffers {
        self.buffers
    }

    /// The DMA API's totals and high-water marks.
    pub fn dma_stats(&self) -> DmaStats {
        self.dma.stats()
    }

    /// What holds buffers and mappings now, over every pair.
    pub fn census(&self) -> EnicCensus {
        let st = self.dma.stats();
        let mut c = EnicCensus {
            region_mapped: usize::from(self.bufs_map.is_some()) + usize::from(self.overflow_map.is_some()),
            coherent: st.coherent_live,
            live_mappings: st.live_mappings,
            ..EnicCensus::default()
        };
        for p in &self.pairs {
            c.rx_posted += p.rq_outstanding;
            c.rx_mapped += p.rq_dma.iter().flatten().count();
            c.tx_in_flight += p.wq_outstanding;
            c.tx_mapped += p.wq_dma.iter().flatten().count();
        }
        c
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    pub fn adapter_mtu(&self) -> u32 {
        self.adapter_mtu
    }

    /// Receive buffer length posted.
    pub fn buf_len(&self) -> u32 {
        self.buf_len
    }

    /// The backend (for an emulated device: the model, for fault injection and inspection).
    pub fn backend(&self) -> &B {
        &self.b
    }

    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.b
    }

    /// Device DMA the IOMMU blocked so far, where the backend can see it.
    pub fn dma_faults(&self) -> Option<u64> {
        self.b.dma_faults()
    }

    /// Pool mode: map the whole buffer region once. Streaming mode: map the overflow buffer
    /// (early enic only: where it posts after a failed bounce mapping).
    fn map_memory(&mut self) -> Result<(), EnicError> {
        let bidi = DmaDirection::Bidirectional;
        match self.buffers {
            Buffers::Pool => {
                let m = self
                    .dma
                    .map_single(&mut self.b, &self.bufs, 0, self.lay.total, bidi)
                    .map_err(|source| EnicError::Map { what: "buffer region", source })?;
                self.bufs_map = Some(m);
            }
            Buffers::Streaming if self.policy == Policy::Early => {
                let len = crate::swiotlb::OVERFLOW_BYTES;
                let m = self
                    .map_buf(self.lay.overflow, len, bidi)
                    .map_err(|source| EnicError::Map { what: "overflow buffer", source })?;
                self.overflow_map = m.1;
            }
            Buffers::Streaming => {}
        }
        Ok(())
    }

    /// Device address of `off` in the ring block.
    fn ring_addr(&self, off: usize) -> u64 {
        self.rings.dma_addr + off as u64
    }

    /// Device address of the overflow buffer (0 when it is not mapped: never posted then).
    fn overflow_addr(&self) -> u64 {
        match (self.bufs_map, self.overflow_map) {
            (Some(m), _) => m.dma_addr + self.lay.overflow as u64,
            (None, Some(m)) => m.dma_addr,
            (None, None) => 0,
        }
    }

    /// The device address of `len` bytes at `off` of the buffer region: in pool mode inside
    /// the region's mapping; in streaming mode a new mapping of exactly that part for `dir`
    /// (returned, for the slot to hold until it is unmapped).
    ///
    /// Inlined (the pool case is an addition; returning the pair through memory from a
    /// call stalled the transmit path on the reload), the streaming case out of line.
    #[inline(always)]
    fn map_buf(&mut self, off: usize, len: usize, dir: DmaDirection) -> Result<(u64, Option<DmaMapping>), DmaError> {
        if let Some(m) = self.bufs_map {
            return Ok((m.dma_addr + off as u64, None));
        }
        self.map_buf_streaming(off, len, dir)
    }

    #[inline(never)]
    fn map_buf_streaming(
        &mut self,
        off: usize,
        len: usize,
        dir: DmaDirection,
    ) -> Result<(u64, Option<DmaMapping>), DmaError> {
        let mem = self.bufs.mem.slice(off, len).ok_or(DmaError::OutOfBounds { off, len, buf_len: self.bufs.len })?;
        let part = CpuBuffer { mem, phys: self.bufs.phys + off as u64, len };
        let m = self.dma.map_single(&mut self.b, &part, 0, len, dir)?;
        Ok((m.dma_addr, Some(m)))
    }

    /// Unmap a slot's streaming mapping, if it holds one.
    fn unmap_buf(&mut self, m: Option<DmaMapping>) {
        if let Some(m) = m {
            let _ = self.dma.unmap(&mut self.b, m);
        }
    }

    /// Program pair `p`'s two CQs (RQ q's on CQ q, WQ q's on CQ pairs + q, each
    /// interrupting on the vector of its own number) and its RQ and WQ.
    fn program_pair(&mut self, p: &Pair) {
        let n = self.entries;
        let msix = matches!(self.irq, IrqMode::Msix { .. });
        for (i, ring) in [(p.rx_cq, p.cq_rx_ring), (p.tx_cq, p.cq_tx_ring)] {
            let o = self.res.cq_block(i);
            let base = self.ring_addr(ring);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_RING_BASE, base as u32);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_RING_BASE_HI, (base >> 32) as u32);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_RING_SIZE, n);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_COLOR_ENABLE, 1);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_HEAD, 0);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_TAIL, 0);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_TAIL_COLOR, 1);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_ENTRY_ENABLE, 1);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_INTERRUPT_OFFSET, i);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_INTERRUPT_ENABLE, u32::from(msix));
        }
        for (o, ring, cq) in [(p.rq, p.rq_ring, p.rx_cq), (p.wq, p.wq_ring, p.tx_cq)] {
            let base = self.ring_addr(ring);
            self.b.write32(hw::BAR_REGS, o + hw::Q_RING_BASE, base as u32);
            self.b.write32(hw::BAR_REGS, o + hw::Q_RING_BASE_HI, (base >> 32) as u32);
            self.b.write32(hw::BAR_REGS, o + hw::Q_RING_SIZE, n);
            self.b.write32(hw::BAR_REGS, o + hw::Q_FETCH_INDEX, 0);
            self.b.write32(hw::BAR_REGS, o + hw::Q_POSTED_INDEX, 0);
            self.b.write32(hw::BAR_REGS, o + hw::Q_CQ_INDEX, cq);
            self.b.write32(hw::BAR_REGS, o + hw::Q_ENABLE, 1);
        }
    }

    fn rx_buf(&self, p: &Pair, i: u32) -> usize {
        p.rx_bufs + i as usize * self.lay.rx_stride
    }

    fn tx_buf(&self, p: &Pair, i: u32) -> usize {
        p.tx_bufs + i as usize * self.lay.tx_stride
    }

    /// Post a fresh buffer at the pair's RQ's next slot (guard refilled). On a bounce
    /// platform the buffer is mapped first: nicqual leaves the slot unposted when the pool
    /// cannot take it (keeping room for one transmit), early enic posts whatever the map
    /// returned.
    fn post_rx_buffer(&mut self, p: &mut Pair) {
        let i = p.rq_posted;
        let off = self.rx_buf(p, i);
        let (mut addr, dm) = match self.map_buf(off, self.buf_len as usize, DmaDirection::FromDevice) {
            Ok(x) => x,
            Err(_) => {
                self.stats.map_failures += 1;
                self.stats.rx_not_posted += 1;
                return;
            }
        };
        if self.rx_slots > 0 {
            let room = if self.policy == Policy::Nicqual { hw::rx_buf_len(self.mtu) as usize } else { 0 };
            match self.bounce_map(addr, self.buf_len as usize, room) {
                Ok(tlb) => {
                    if let Some(m) = p.rq_maps.get_mut(i as usize) {
                        *m = tlb;
                    }
                }
                Err(_) if self.policy == Policy::Nicqual => {
                    self.unmap_buf(dm);
                    self.stats.rx_not_posted += 1;
                    return;
                }
                Err(_) => {
                    self.stats.overflow_posted += 1;
                    addr = self.overflow_addr();
                }
            }
        }
        if let Some(old) = p.rq_dma.get_mut(i as usize).map(|s| std::mem::replace(s, dm)) {
            self.unmap_buf(old);
        }
        let _ = self.bufs.mem.write_bulk(off + self.buf_len as usize, &[GUARD_BYTE; GUARD]);
        let d = RqEnetDesc::new(addr, self.buf_len as u16, hw::RQ_ENET_TYPE_ONLY_SOP);
        let _ = self.rings.mem.write_bulk(p.rq_ring + i as usize * 16, d.as_bytes());
        p.rq_posted = ring::add(i, 1, self.entries);
        p.rq_outstanding += 1;
    }

    /// Bounce-map `len` bytes of the buffer the device sees at `addr`. With `keep_room`, a mapping that
    /// would leave no free run of `keep_room` bytes is given back and refused (nicqual keeps
    /// room for one transmit). Returns the pool address to release on unmap; the device
    /// keeps using the buffer's own IOVA (the bounce copy is elided).
    fn bounce_map(&mut self, orig: u64, len: usize, keep_room: usize) -> Result<Option<u64>, String> {
        let Some(pool) = self.bounce.as_mut() else { return Ok(None) };
        let dev = crate::swiotlb::DeviceName::new("enic", "0000:0b:00.0");
        let dir = crate::swiotlb::DmaDirection::FromDevice;
        let r = match pool.alloc(&dev, orig, len, dir, crate::swiotlb::MapKind::Single, 0) {
            Ok(m) if keep_room > 0 && pool.largest_free_run() < crate::swiotlb::nr_slots(keep_room) => {
                let _ = pool.free(m.tlb_addr);
                Err(format!("mapping {len} bytes would leave no {keep_room}-byte run for transmit"))
            }
            Ok(m) => Ok(Some(m.tlb_addr)),
            Err(e) => Err(e.to_string()),
        };
        if r.is_err() {
            self.stats.map_failures += 1;
        }
        r
    }

    fn bounce_unmap(&mut self, bus: Option<u64>) {
        if let (Some(pool), Some(b)) = (self.bounce.as_mut(), bus) {
            let _ = pool.free(b);
        }
    }

    /// The SWIOTLB model's log (the kernel's messages), when the platform bounces.
    pub fn bounce_log(&self) -> &[String] {
        self.bounce.as_ref().map_or(&[], |p| p.log())
    }

    /// Bounce slots in use now and at most, when the platform bounces.
    pub fn bounce_usage(&self) -> Option<(usize, usize, usize)> {
        self.bounce.as_ref().map(|p| {
            let s = p.stats();
            (s.used, s.used_hiwater, s.nslabs)
        })
    }

    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// RX buffers the adapter holds on RQ 0.
    pub fn rx_outstanding(&self) -> u32 {
        self.rx_outstanding_on(0).unwrap_or(0)
    }

    /// RX buffers the adapter holds on RQ `q`.
    pub fn rx_outstanding_on(&self, q: u32) -> Option<u32> {
        self.pairs.get(q as usize).map(|p| p.rq_outstanding)
    }

    /// Publish posted buffers: `wmb(); posted_index`.
    fn ring_rq_doorbell(&mut self, p: &Pair) {
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.b.write32(hw::BAR_REGS, p.rq + hw::Q_POSTED_INDEX, p.rq_posted);
    }

    /// [`Enic::send_on`] on pair 0.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), EnicError> {
        self.send_on(0, frame)
    }

    /// Transmit one frame on WQ `q` (one descriptor, completion requested), then collect
    /// WQ `q`'s completions. The adapter sends synchronously and loops the frame back to
    /// RQ `q`.
    pub fn send_on(&mut self, q: u32, frame: &[u8]) -> Result<(), EnicError> {
        self.with_pair(q, |e, p| {
            e.poll_tx_pair(p);
            e.queue_tx(p, frame)?;
            e.ring_wq_doorbell(p)?;
            e.poll_tx_pair(p);
            Ok(())
        })
        .unwrap_or_else(|| Err(self.no_pair(q)))
    }

    /// [`Enic::send_batch_on`] on pair 0.
    pub fn send_batch(&mut self, frame: &[u8], n: u32) -> Result<u32, EnicError> {
        self.send_batch_on(0, frame, n)
    }

    /// Transmit up to `n` copies of `frame` on WQ `q` with one doorbell (the batched hot
    /// path: no allocation, one descriptor and one buffer copy per frame), then collect the
    /// WQ's completions. Returns the frames queued (fewer when the WQ fills).
    pub fn send_batch_on(&mut self, q: u32, frame: &[u8], n: u32) -> Result<u32, EnicError> {
        self.with_pair(q, |e, p| {
            e.poll_tx_pair(p);
            let mut queued = 0;
            while queued < n {
                match e.queue_tx(p, frame) {
                    Ok(()) => queued += 1,
                    Err(EnicError::TxRingFull { .. }) if queued > 0 => break,
                    Err(err) => return Err(err),
                }
            }
            e.ring_wq_doorbell(p)?;
            e.poll_tx_pair(p);
            Ok(queued)
        })
        .unwrap_or_else(|| Err(self.no_pair(q)))
    }

    /// Publish queued WQ descriptors (`wmb(); posted_index`) and check the WQ's error status.
    fn ring_wq_doorbell(&mut self, p: &Pair) -> Result<(), EnicError> {
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.b.write32(hw::BAR_REGS, p.wq + hw::Q_POSTED_INDEX, p.wq_to_use);
        let status = self.b.read32(hw::BAR_REGS, p.wq + hw::WQ_ERROR_STATUS);
        if status != 0 {
            return Err(EnicError::QueueError { queue: "WQ", q: p.q, status, offset: p.wq + hw::WQ_ERROR_STATUS });
        }
        Ok(())
    }

    /// Write one frame into the pair's next WQ slot's buffer and its descriptor (not yet
    /// published).
    fn queue_tx(&mut self, p: &mut Pair, frame: &[u8]) -> Result<(), EnicError> {
        let max = (self.mtu + hw::VLAN_ETH_HLEN) as usize;
        if frame.len() > max || frame.is_empty() {
            return Err(EnicError::TxTooLong { len: frame.len(), mtu: self.mtu, hdr: hw::VLAN_ETH_HLEN });
        }
        if p.wq_outstanding + 1 >= self.entries {
            return Err(EnicError::TxRingFull { wq: p.q, entries: p.wq_outstanding });
        }
        let i = p.wq_to_use;
        let off = self.tx_buf(p, i);
        let _ = self.bufs.mem.write_bulk(off, frame);
        let (mut addr, dm) = match self.map_buf(off, frame.len(), DmaDirection::ToDevice) {
            Ok(x) => x,
            Err(e) => {
                self.stats.map_failures += 1;
                self.stats.tx_map_refused += 1;
                return Err(EnicError::TxMapFailed { len: frame.len(), why: e.to_string() });
            }
        };
        if self.bounce.is_some() && frame.len() as u32 + RX_HEADROOM > crate::swiotlb::PAGE_SIZE as u32 {
            match self.bounce_map(addr, frame.len(), 0) {
                Ok(tlb) => {
                    if let Some(m) = p.wq_maps.get_mut(i as usize) {
                        *m = tlb;
                    }
                }
                Err(e) if self.policy == Policy::Nicqual => {
                    self.unmap_buf(dm);
                    self.stats.tx_map_refused += 1;
                    return Err(EnicError::TxMapFailed { len: frame.len(), why: e });
                }
                Err(_) => {
                    // No dma_mapping_error check: the adapter reads the overflow buffer.
                    self.stats.overflow_posted += 1;
                    addr = self.overflow_addr();
                }
            }
        }
        if let Some(old) = p.wq_dma.get_mut(i as usize).map(|s| std::mem::replace(s, dm)) {
            self.unmap_buf(old);
        }
        let d = WqEnetDesc::packet(addr, frame.len() as u16);
        let _ = self.rings.mem.write_bulk(p.wq_ring + i as usize * 16, d.as_bytes());
        p.wq_to_use = ring::add(i, 1, self.entries);
        p.wq_outstanding += 1;
        p.stats.tx_frames += 1;
        self.stats.tx_frames += 1;
        Ok(())
    }

    /// Read CQ entry `idx` of completion queue at `ring`: colour byte first, then (after an
    /// acquire fence, the `rmb()`) the rest. `None` when not fresh for `cursor`.
    fn read_cq(&self, ring: usize, cursor: CqCursor) -> Option<[u8; 16]> {
        let off = ring + cursor.index() as usize * 16;
        let mut tc = [0u8; 1];
        self.rings.mem.read(off + hw::CQ_TYPE_COLOR_OFFSET, &mut tc)?;
        let fresh = tc.first().is_some_and(|b| cursor.is_new(b & hw::CQ_DESC_COLOR != 0));
        if !fresh {
            return None;
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        let mut raw = [0u8; 16];
        self.rings.mem.read_bulk(off, &mut raw)?;
        Some(raw)
    }

    /// The entry at `cursor` is not fresh but the one after it is: the adapter wrote the
    /// entry at `cursor` with the previous lap's colour (it writes in order, so the later
    /// entry proves the earlier one was written).
    /// Also when the adapter's `cq_tail` (validated: inside the ring) has moved past the
    /// cursor although the entry there is not fresh: the adapter wrote it, with the wrong
    /// colour, and no later entry may come to prove it.
    fn stale_entry(&mut self, ring: usize, cq: u32, cursor: CqCursor) -> bool {
        let mut next = cursor;
        next.consume();
        if self.read_cq(ring, next).is_some() {
            return true;
        }
        let tail = self.b.read32(hw::BAR_REGS, self.res.cq_block(cq) + hw::CQ_TAIL);
        tail < self.entries && tail != cursor.index()
    }

    /// Collect pair 0's WQ completions.
    pub fn poll_tx(&mut self) {
        let _ = self.poll_tx_on(0);
    }

    /// Collect WQ `q`'s completions: free every descriptor through `completed_index`.
    pub fn poll_tx_on(&mut self, q: u32) -> Result<(), EnicError> {
        self.with_pair(q, |e, p| e.poll_tx_pair(p)).ok_or_else(|| self.no_pair(q))
    }

    fn poll_tx_pair(&mut self, p: &mut Pair) {
        let mut work = 0u32;
        let (cq, wq) = (p.tx_cq as u16, p.q as u16);
        for _ in 0..self.entries {
            let entry = p.cq_tx.index();
            let Some(raw) = self.read_cq(p.cq_tx_ring, p.cq_tx) else {
                if self.stale_entry(p.cq_tx_ring, p.tx_cq, p.cq_tx) {
                    self.stats.stale_colour += 1;
                    p.stats.tx_bad_completions += 1;
                    self.log_tx(TxCompletionError::StaleColour { cq, wq, entry });
                    p.cq_tx.consume();
                    work += 1;
                    continue;
                }
                break;
            };
            p.cq_tx.consume();
            work += 1;
            let Ok(c) = CqDesc::read_from_bytes(&raw) else { break };
            let idx = u32::from(c.completed_index());
            let dist = if idx < self.entries { ring::dist(idx, p.wq_to_clean, self.entries) } else { u32::MAX };
            let bad = if c.ty() != hw::CQ_DESC_TYPE_WQ_ENET {
                Some(TxCompletionError::BadType { cq, wq, entry, ty: c.ty() })
            } else if c.q_number() != wq {
                Some(TxCompletionError::BadQueue { cq, wq, entry, q: c.q_number() })
            } else if dist >= p.wq_outstanding {
                Some(TxCompletionError::IndexNotPosted {
                    cq,
                    wq,
                    entry,
                    index: c.completed_index(),
                    to_clean: p.wq_to_clean,
                    outstanding: p.wq_outstanding,
                })
            } else {
                None
            };
            if let Some(e) = bad {
                self.stats.tx_bad_completions += 1;
                p.stats.tx_bad_completions += 1;
                self.log_tx(e);
                continue;
            }
            for k in 0..=dist {
                let slot = ring::add(p.wq_to_clean, k, self.entries);
                let m = p.wq_maps.get_mut(slot as usize).and_then(Option::take);
                self.bounce_unmap(m);
                let d = p.wq_dma.get_mut(slot as usize).and_then(Option::take);
                self.unmap_buf(d);
            }
            p.wq_outstanding -= dist + 1;
            p.wq_to_clean = ring::add(idx, 1, self.entries);
            self.stats.tx_completions += 1;
            p.stats.tx_completions += 1;
        }
        p.stats.tx_credits_returned += self.return_credits(p.tx_cq, work);
    }

    fn log_tx(&mut self, e: TxCompletionError) {
        if self.tx_drop_log.len() < DROP_LOG_CAP {
            self.tx_drop_log.push(e);
        }
    }

    fn log_rx(&mut self, p: &mut Pair, e: CompletionError) {
        self.stats.count_drop(&e);
        p.stats.rx_refused += 1;
        if self.drop_log.len() < DROP_LOG_CAP {
            self.drop_log.push(e);
        }
    }

    /// Service pair 0's receive CQ ([`Enic::poll_rx_on`]).
    pub fn poll_rx(&mut self, out: &mut Vec<Vec<u8>>) -> usize {
        self.poll_rx_with(&mut |f| out.push(f.to_vec()))
    }

    /// As [`Enic::poll_rx`], handing each good frame to `deliver` as a slice of the driver's
    /// own scratch buffer (no allocation per frame). Returns frames delivered.
    pub fn poll_rx_with(&mut self, deliver: &mut dyn FnMut(&[u8])) -> usize {
        self.poll_rx_with_on(0, deliver).unwrap_or(0)
    }

    /// Service RQ `q`'s CQ: deliver good frames to `out`, drop and count the rest, repost
    /// buffers, return the CQ's credits. Returns frames delivered.
    pub fn poll_rx_on(&mut self, q: u32, out: &mut Vec<Vec<u8>>) -> Result<usize, EnicError> {
        self.poll_rx_with_on(q, &mut |f| out.push(f.to_vec()))
    }

    /// As [`Enic::poll_rx_on`], handing each good frame to `deliver` as a slice of the
    /// driver's scratch buffer.
    pub fn poll_rx_with_on(&mut self, q: u32, deliver: &mut dyn FnMut(&[u8])) -> Result<usize, EnicError> {
        self.with_pair(q, |e, p| e.poll_rx_pair(p, deliver)).ok_or_else(|| self.no_pair(q))
    }

    fn poll_rx_pair(&mut self, p: &mut Pair, deliver: &mut dyn FnMut(&[u8])) -> usize {
        let before = p.stats.rx_delivered;
        // Where the adapter's fetch pointer is; all-ones or out of range means it cannot
        // be trusted, and then no completion names a fetched buffer.
        let fetch = self.b.read32(hw::BAR_REGS, p.rq + hw::Q_FETCH_INDEX);
        let fetch = if fetch < self.entries { fetch } else { p.rq_to_clean };
        let mut work = 0u32;
        for _ in 0..self.entries {
            let entry = p.cq_rx.index();
            let Some(raw) = self.read_cq(p.cq_rx_ring, p.cq_rx) else {
                if self.policy == Policy::Nicqual && self.stale_entry(p.cq_rx_ring, p.rx_cq, p.cq_rx) {
                    self.stats.stale_colour += 1;
                    self.log_rx(p, CompletionError::StaleColour { cq: p.rx_cq as u16, entry });
                    p.cq_rx.consume();
                    work += 1;
                    continue;
                }
                break;
            };
            p.cq_rx.consume();
            work += 1;
            let Ok(d) = CqEnetRqDesc::read_from_bytes(&raw) else { break };
            let c = d.decode();
            match self.policy {
                Policy::Nicqual => self.rx_nicqual(p, &c, entry, fetch, deliver),
                Policy::Early => self.rx_early(p, &c, deliver),
            }
        }
        self.ring_rq_doorbell(p);
        p.stats.rx_credits_returned += self.return_credits(p.rx_cq, work);
        (p.stats.rx_delivered - before) as usize
    }

    /// Copy `len` bytes of the pair's RX buffer `index` into the scratch buffer and hand
    /// them over.
    fn deliver(&mut self, p: &mut Pair, index: u32, len: usize, counted: u32, deliver: &mut dyn FnMut(&[u8])) {
        let mut buf = std::mem::take(&mut self.rx_scratch);
        buf.resize(len, 0);
        if self.bufs.mem.read_bulk(self.rx_buf(p, index), &mut buf).is_some() {
            self.stats.rx_delivered += 1;
            self.stats.rx_bytes += u64::from(counted);
            p.stats.rx_delivered += 1;
            p.stats.rx_bytes += u64::from(counted);
            deliver(&buf);
        }
        self.rx_scratch = buf;
    }

    fn rq_state(&self, p: &Pair, fetch_index: u32) -> RqState {
        RqState {
            size: self.entries,
            to_clean: p.rq_to_clean,
            outstanding: p.rq_outstanding,
            fetch_index,
            q: p.q as u16,
            mtu: self.mtu,
        }
    }

    /// Reclaim the pair's buffers `to_clean..=index` (earlier ones were skipped) and repost
    /// as many.
    fn reclaim_through(&mut self, p: &mut Pair, dist: u32) {
        for _ in 0..=dist {
            let i = p.rq_to_clean;
            self.check_guard(p, i);
            let m = p.rq_maps.get_mut(i as usize).and_then(Option::take);
            self.bounce_unmap(m);
            let d = p.rq_dma.get_mut(i as usize).and_then(Option::take);
            self.unmap_buf(d);
            p.rq_to_clean = ring::add(i, 1, self.entries);
            p.rq_outstanding = p.rq_outstanding.saturating_sub(1);
            self.post_rx_buffer(p);
        }
        self.stats.rx_skipped += u64::from(dist);
    }

    /// Count guard bytes after the pair's buffer `i` that no longer hold the guard pattern.
    fn check_guard(&mut self, p: &Pair, i: u32) {
        let mut g = [0u8; GUARD];
        if self.bufs.mem.read_bulk(self.rx_buf(p, i) + self.buf_len as usize, &mut g).is_some()
            && g.iter().any(|&b| b != GUARD_BYTE)
        {
            self.stats.overrun_landed += 1;
        }
    }

    fn rx_nicqual(&mut self, p: &mut Pair, c: &hw::RqCompletion, entry: u32, fetch: u32, out: &mut dyn FnMut(&[u8])) {
        let st = self.rq_state(p, fetch);
        let buf_len = self.buf_len;
        match validate::check(c, entry, st, |_| buf_len) {
            Ok(a) => {
                self.deliver(p, a.index, a.len as usize, a.len, out);
                self.reclaim_through(p, a.skipped);
            }
            Err(e) => {
                if e.names_posted_buffer() {
                    let idx = u32::from(c.completed_index);
                    let dist = ring::dist(idx, p.rq_to_clean, self.entries);
                    self.reclaim_through(p, dist);
                }
                self.log_rx(p, e);
            }
        }
    }

    /// The 2.6.3x receive path: walk `to_clean` through `completed_index` (whatever it
    /// says), drop truncated frames, `skb_put(bytes_written)` the rest.
    fn rx_early(&mut self, p: &mut Pair, c: &hw::RqCompletion, out: &mut dyn FnMut(&[u8])) {
        let idx = ring::wrap(u32::from(c.completed_index), self.entries);
        let dist = ring::dist(idx, p.rq_to_clean, self.entries);
        if u32::from(c.completed_index) >= self.entries || dist >= p.rq_outstanding {
            // The old loop would walk into buffers it never posted (or stale ones).
            self.stats.would_use_unposted += 1;
            return;
        }
        if c.truncated || c.bytes_written == 0 {
            let e =
                CompletionError::Truncated { rq: p.q as u16, index: c.completed_index, bytes_written: c.bytes_written };
            self.stats.count_drop(&e);
            p.stats.rx_refused += 1;
            self.reclaim_through(p, dist);
            return;
        }
        let n = u32::from(c.bytes_written);
        if n > self.buf_len {
            self.stats.would_read_past_buffer += 1;
        }
        if !(c.sop && c.eop) {
            self.stats.partial_delivered += 1;
        }
        self.deliver(p, idx, n.min(self.buf_len) as usize, n, out);
        self.reclaim_through(p, dist);
    }
}

/// Walk the BAR0 resource table (bounded by [`hw::RES_TABLE_MAX_ENTRIES`]) and validate
/// every entry the driver uses, as `vnic_dev_discover_res` does: the BAR must exist and
/// `offset + count * stride` (per [`hw::res_len`]) must lie inside it. Types the driver does
/// not use are skipped.
pub fn read_resources<B: Backend>(b: &mut B) -> Result<Resources, EnicError> {
    let magic = b.read32(hw::BAR_REGS, 0);
    if magic == u32::MAX {
        return Err(EnicError::DeviceGone { found: magic });
    }
    if magic != hw::VNIC_RES_MAGIC {
        return Err(EnicError::BadMagic { found: magic });
    }
    let mut r = Resources::default();
    let (mut devcmd, mut wq, mut rq, mut cq) = (None, None, None, None);
    let mut terminated = false;
    for i in 0..hw::RES_TABLE_MAX_ENTRIES {
        let o = hw::RES_HDR_LEN + i * hw::RES_ENTRY_LEN;
        let w = b.read32(hw::BAR_REGS, o);
        if w == u32::MAX {
            return Err(EnicError::DeviceGone { found: w });
        }
        let (ty, bar) = ((w & 0xFF) as u8, ((w >> 8) & 0xFF) as u8);
        if ty == hw::RES_TYPE_EOL {
            r.entries = i;
            terminated = true;
            break;
        }
        let what = match ty {
            hw::RES_TYPE_DEVCMD => "DEVCMD",
            hw::RES_TYPE_WQ => "WQ",
            hw::RES_TYPE_RQ => "RQ",
            hw::RES_TYPE_CQ => "CQ",
            hw::RES_TYPE_INTR_CTRL => "INTR_CTRL",
            _ => continue,
        };
        let offset = u64::from(b.read32(hw::BAR_REGS, o + 4));
        let count = b.read32(hw::BAR_REGS, o + 8);
        let limit = b.bar_len(bar).ok_or(EnicError::ResourceBadBar { entry: i, what, bar })?;
        let len = hw::res_len(ty, count).unwrap_or(0);
        if bar != hw::BAR_REGS || offset.checked_add(len).is_none_or(|end| end > limit) {
            return Err(EnicError::ResourceOutOfRange { entry: i, what, bar, offset, count, len, limit });
        }
        match ty {
            hw::RES_TYPE_DEVCMD if count >= hw::DEVCMD_LEN as u32 => devcmd = Some(offset),
            hw::RES_TYPE_WQ => wq = Some((offset, count)),
            hw::RES_TYPE_RQ => rq = Some((offset, count)),
            hw::RES_TYPE_CQ => cq = Some((offset, count)),
            hw::RES_TYPE_INTR_CTRL if count > 0 => {
                r.intr = Some(offset);
                r.intr_count = count;
            }
            _ => {}
        }
    }
    if !terminated {
        return Err(EnicError::ResourceTableUnterminated { max: hw::RES_TABLE_MAX_ENTRIES });
    }
    let need = |v: Option<(u64, u32)>, what: &'static str, ty: u8, min: u32| {
        v.filter(|(_, n)| *n >= min).ok_or(EnicError::MissingResource { what, ty })
    };
    r.devcmd = devcmd.ok_or(EnicError::MissingResource { what: "DEVCMD", ty: hw::RES_TYPE_DEVCMD })?;
    (r.wq, r.wq_count) = need(wq, "WQ", hw::RES_TYPE_WQ, 1)?;
    (r.rq, r.rq_count) = need(rq, "RQ", hw::RES_TYPE_RQ, 1)?;
    // One CQ per RQ and per WQ: at least two for one pair.
    (r.cq, r.cq_count) = need(cq, "CQs for RQ 0 and WQ 0", hw::RES_TYPE_CQ, 2)?;
    Ok(r)
}

/// Issue devcmd `cmd` with `args[0..2]` and, unless it is a no-wait command, wait (bounded)
/// for `STAT_BUSY` to clear; returns `args[0]` afterwards (a read command's result). As
/// `_vnic_dev_cmd`: a busy channel is refused, all-ones is a device that is gone, and
/// `STAT_ERROR` carries the error code in `args[0]`.
pub fn devcmd<B: Backend>(b: &mut B, res: &Resources, cmd: u32, args: [u64; 2]) -> Result<u64, EnicError> {
    let st = res.devcmd + hw::DEVCMD_STATUS;
    let status = b.read32(hw::BAR_REGS, st);
    if status == u32::MAX {
        return Err(EnicError::DeviceGone { found: status });
    }
    if status & hw::STAT_BUSY != 0 {
        return Err(EnicError::DevcmdBusy { cmd, status, offset: st });
    }
    for (k, a) in args.into_iter().enumerate() {
        let o = res.devcmd + hw::DEVCMD_ARGS + 8 * k as u64;
        b.write32(hw::BAR_REGS, o, a as u32);
        b.write32(hw::BAR_REGS, o + 4, (a >> 32) as u32);
    }
    std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
    b.write32(hw::BAR_REGS, res.devcmd + hw::DEVCMD_CMD, cmd);
    if hw::cmd_nowait(cmd) {
        return Ok(0);
    }
    for n in 0..=DEVCMD_POLLS {
        let status = b.read32(hw::BAR_REGS, st);
        if status == u32::MAX {
            return Err(EnicError::DeviceGone { found: status });
        }
        if status & hw::STAT_BUSY == 0 {
            let a0 = res.devcmd + hw::DEVCMD_ARGS;
            let lo = u64::from(b.read32(hw::BAR_REGS, a0));
            let v = lo | u64::from(b.read32(hw::BAR_REGS, a0 + 4)) << 32;
            if status & hw::STAT_ERROR != 0 {
                return Err(EnicError::DevcmdFailed { cmd, code: v });
            }
            return Ok(v);
        }
        if n < DEVCMD_POLLS {
            b.wait(DEVCMD_POLL_NS);
        }
    }
    Err(EnicError::DevcmdTimeout { cmd, waited_ns: DEVCMD_POLLS * DEVCMD_POLL_NS })
}

/// `vnic_dev_open` then `vnic_dev_init`: each issued, then its status command polled until
/// it says done (`args[0]` = 0), bounded.
fn dev_open<B: Backend>(b: &mut B, res: &Resources) -> Result<(), EnicError> {
    for (start, status, what) in
        [(hw::CMD_OPEN, hw::CMD_OPEN_STATUS, "CMD_OPEN"), (hw::CMD_INIT, hw::CMD_INIT_STATUS, "CMD_INIT")]
    {
        devcmd(b, res, start, [0, 0])?;
        let mut done = false;
        for _ in 0..OPEN_POLLS {
            // The no-wait start command may still hold the channel busy.
            b.wait(OPEN_POLL_NS);
            match devcmd(b, res, status, [0, 0]) {
                Ok(0) => {
                    done = true;
                    break;
                }
                Ok(_) | Err(EnicError::DevcmdBusy { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if !done {
            return Err(EnicError::BringUpTimeout { what, waited_ns: OPEN_POLLS * OPEN_POLL_NS });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
