//! Cisco VIC (enic) driver on any [`Backend`] (BAR0 registers, DMA through the backend's
//! map/unmap): one WQ, one RQ, two CQs with colour-bit ownership ([`cursor::CqCursor`], the
//! driver's own), the vNIC MTU read from the adapter.
//!
//! Defence ([`Policy::Nicqual`]):
//! * the vNIC MTU is read from the adapter and compared with the interface MTU before any
//!   buffer is posted: above the adapter's (or `ENIC_MAX_MTU`) is refused, below it is
//!   reported (the adapter will deliver frames larger than the interface expects);
//! * receive buffers are `mtu + VLAN_ETH_HLEN` and each is mapped in the IOMMU as its own
//!   window of exactly the posted length, so a device write past it is blocked and
//!   reported, never landing in the neighbour;
//! * every completion is checked — colour (ownership) first, then type, queue, index,
//!   sop/eop, truncation, length against the posted buffer and the MTU — before a byte of
//!   the buffer is read ([`validate`]); refused frames are dropped and counted per reason.
//!
//! [`Policy::Early`] reproduces the 2.6.3x driver for comparison: `mtu + ETH_HLEN` buffers,
//! no IOMMU windows (as in a Xen dom0), and completions trusted after the colour and the
//! truncated bit. What that driver would have done wrong is counted, not done: the Rust
//! code never reads past a buffer.

pub mod cursor;
pub mod validate;

use crate::backend::{Backend, DmaPerm};
use crate::dma::DmaMemory;
use cursor::CqCursor;
use nicqual_hw::enic::{self as hw, CqDesc, CqEnetRqDesc, RqEnetDesc, WqEnetDesc};
use nicqual_pci::BackendError;
use validate::{CompletionError, RqState};
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
    #[error("resource {what} at BAR0 {offset:#x} lies outside the {limit:#x}-byte register window")]
    ResourceOutOfRange { what: &'static str, offset: u64, limit: u64 },
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
    #[error("IOMMU map of {what} at IOVA {iova:#x}: {why}")]
    Map { what: &'static str, iova: u64, why: String },
    #[error("frame of {len} bytes exceeds MTU {mtu} + {hdr}")]
    TxTooLong { len: usize, mtu: u32, hdr: u32 },
    #[error("TX buffer of {len} bytes: bounce mapping failed: {why}")]
    TxMapFailed { len: usize, why: String },
    #[error("WQ0 full ({entries} entries outstanding)")]
    TxRingFull { entries: u32 },
    #[error("{queue} error_status {status:#x} (register {offset:#x}): the adapter stopped the queue")]
    QueueError { queue: &'static str, status: u32, offset: u64 },
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
    pub rx_dropped: [u64; 9],
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

/// IOVA where the driver's DMA region starts.
const IOVA_BASE: u64 = 0x4000_0000;
/// Guard bytes after each receive buffer (filled with [`GUARD_BYTE`]).
const GUARD: usize = 64;
const GUARD_BYTE: u8 = 0xA5;
const CQ_RX: u32 = 0;
const CQ_TX: u32 = 1;

/// Where things live in the DMA region.
#[derive(Debug, Clone, Copy)]
struct Layout {
    rq_ring: usize,
    cq_rx: usize,
    cq_tx: usize,
    wq_ring: usize,
    rx_bufs: usize,
    rx_stride: usize,
    tx_bufs: usize,
    tx_stride: usize,
    /// The shared overflow buffer old kernels returned for a failed bounce mapping.
    overflow: usize,
    total: usize,
}

impl Layout {
    fn new(entries: u32, buf_len: u32, tx_len: u32) -> Layout {
        let ring = (entries as usize * 16).next_multiple_of(hw::RING_BASE_ALIGN as usize);
        let rx_stride = (buf_len as usize + GUARD).next_multiple_of(64);
        let tx_stride = (tx_len as usize).next_multiple_of(64);
        let rx_bufs = 4 * ring;
        let tx_bufs = rx_bufs + rx_stride * entries as usize;
        Layout {
            rq_ring: 0,
            cq_rx: ring,
            cq_tx: 2 * ring,
            wq_ring: 3 * ring,
            rx_bufs,
            rx_stride,
            tx_bufs,
            tx_stride,
            overflow: tx_bufs + tx_stride * entries as usize,
            total: tx_bufs + tx_stride * entries as usize + crate::swiotlb::OVERFLOW_BYTES,
        }
    }

    fn rx_buf(&self, i: u32) -> usize {
        self.rx_bufs + i as usize * self.rx_stride
    }

    fn tx_buf(&self, i: u32) -> usize {
        self.tx_bufs + i as usize * self.tx_stride
    }
}

/// BAR0 offsets found in the resource table.
#[derive(Debug, Clone, Copy)]
struct Resources {
    wq: u64,
    rq: u64,
    cq: u64,
    nic_cfg: u64,
}

/// The driver, owning the backend that reaches the vNIC.
#[derive(Debug)]
pub struct Enic<B: Backend> {
    b: B,
    mem: DmaMemory,
    /// IOVA of `mem`'s first byte (the backend's fixed IOVA where it has one).
    base_iova: u64,
    policy: Policy,
    res: Resources,
    lay: Layout,
    entries: u32,
    mtu: u32,
    adapter_mtu: u32,
    buf_len: u32,
    rq_to_clean: u32,
    rq_outstanding: u32,
    rq_posted: u32,
    cq_rx: CqCursor,
    cq_tx: CqCursor,
    wq_to_use: u32,
    wq_to_clean: u32,
    wq_outstanding: u32,
    platform: Platform,
    bounce: Option<crate::swiotlb::Swiotlb>,
    /// Bounce mapping held by each RQ / WQ slot (bus address), if any.
    rq_maps: Vec<Option<u64>>,
    wq_maps: Vec<Option<u64>>,
    /// Bounce slots one receive buffer takes (0 when it does not bounce).
    rx_slots: usize,
    pub stats: EnicStats,
    /// Why each refused completion was refused (bounded; the counters keep the totals).
    pub drop_log: Vec<CompletionError>,
}

const DROP_LOG_CAP: usize = 64;
/// Largest BAR0 offset the driver will touch.
const BAR0_LIMIT: u64 = 0x10_0000;

impl<B: Backend> Enic<B> {
    /// Bring up the vNIC with `entries` per ring (a multiple of 32, 64..=4096) for an
    /// interface MTU of `mtu`. Returns the driver and, when the adapter's MTU differs
    /// from the interface's, a line saying so.
    pub fn new(
        mut b: B,
        policy: Policy,
        platform: Platform,
        mtu: u32,
        entries: u32,
    ) -> Result<(Enic<B>, Option<String>), EnicError> {
        if !(hw::MIN_RQ_DESCS..=hw::MAX_RQ_DESCS).contains(&entries) || !entries.is_multiple_of(hw::RING_COUNT_ALIGN) {
            return Err(EnicError::BadRingSize {
                entries,
                align: hw::RING_COUNT_ALIGN,
                min: hw::MIN_RQ_DESCS,
                max: hw::MAX_RQ_DESCS,
            });
        }
        if !(hw::ENIC_MIN_MTU..=hw::ENIC_MAX_MTU).contains(&mtu) {
            return Err(EnicError::MtuUnsupported { mtu, min: hw::ENIC_MIN_MTU, max: hw::ENIC_MAX_MTU });
        }
        let res = read_resources(&mut b)?;
        let adapter_mtu = b.read32(hw::BAR_REGS, res.nic_cfg + hw::NIC_CFG_MTU);
        if adapter_mtu == u32::MAX {
            return Err(EnicError::DeviceGone { found: adapter_mtu });
        }
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
        let lay = Layout::new(entries, buf_len, hw::rx_buf_len(mtu));
        let mem = b.dma_alloc(lay.total)?;
        let base_iova = mem.fixed_iova().unwrap_or(IOVA_BASE);
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
        let mut e = Enic {
            b,
            mem,
            base_iova,
            policy,
            res,
            lay,
            entries,
            mtu,
            adapter_mtu,
            buf_len,
            rq_to_clean: 0,
            rq_outstanding: 0,
            rq_posted: 0,
            cq_rx: CqCursor::new(entries).ok_or(EnicError::BadRingSize {
                entries,
                align: hw::RING_COUNT_ALIGN,
                min: hw::MIN_RQ_DESCS,
                max: hw::MAX_RQ_DESCS,
            })?,
            cq_tx: CqCursor::new(entries).ok_or(EnicError::BadRingSize {
                entries,
                align: hw::RING_COUNT_ALIGN,
                min: hw::MIN_RQ_DESCS,
                max: hw::MAX_RQ_DESCS,
            })?,
            wq_to_use: 0,
            wq_to_clean: 0,
            wq_outstanding: 0,
            platform,
            bounce,
            rq_maps: vec![None; entries as usize],
            wq_maps: vec![None; entries as usize],
            rx_slots,
            stats: EnicStats::default(),
            drop_log: Vec::new(),
        };
        e.map_memory()?;
        e.program_queues();
        for _ in 0..entries - 1 {
            e.post_rx_buffer();
        }
        e.ring_rq_doorbell();
        Ok((e, note))
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

    /// Map `len` bytes at `off` of the DMA region at their IOVA with `perm`.
    fn map(&mut self, what: &'static str, off: usize, len: usize, perm: DmaPerm) -> Result<(), EnicError> {
        let iova = self.iova(off);
        let part =
            self.mem.slice(off, len).ok_or(EnicError::Map { what, iova, why: "outside the DMA region".into() })?;
        self.b.dma_map(&part, iova, perm).map_err(|e| EnicError::Map { what, iova, why: e.to_string() })
    }

    fn map_memory(&mut self) -> Result<(), EnicError> {
        match self.policy {
            Policy::Early => self.map("DMA region", 0, self.lay.total, DmaPerm::BIDIRECTIONAL),
            Policy::Nicqual => {
                self.map("rings", 0, self.lay.rx_bufs, DmaPerm::BIDIRECTIONAL)?;
                for i in 0..self.entries {
                    self.map("RX buffer", self.lay.rx_buf(i), self.buf_len as usize, DmaPerm::FROM_DEVICE)?;
                }
                self.map("TX buffers", self.lay.tx_bufs, self.lay.overflow - self.lay.tx_bufs, DmaPerm::TO_DEVICE)
            }
        }
    }

    fn iova(&self, off: usize) -> u64 {
        self.base_iova + off as u64
    }

    fn program_queues(&mut self) {
        let n = self.entries;
        for (i, ring) in [self.lay.cq_rx, self.lay.cq_tx].into_iter().enumerate() {
            let o = self.res.cq + i as u64 * hw::VNIC_RES_STRIDE;
            let base = self.iova(ring);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_RING_BASE, base as u32);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_RING_BASE_HI, (base >> 32) as u32);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_RING_SIZE, n);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_COLOR_ENABLE, 1);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_HEAD, 0);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_TAIL, 0);
            self.b.write32(hw::BAR_REGS, o + hw::CQ_TAIL_COLOR, 1);
        }
        for (o, ring, cq) in [(self.res.rq, self.lay.rq_ring, CQ_RX), (self.res.wq, self.lay.wq_ring, CQ_TX)] {
            let base = self.iova(ring);
            self.b.write32(hw::BAR_REGS, o + hw::Q_RING_BASE, base as u32);
            self.b.write32(hw::BAR_REGS, o + hw::Q_RING_BASE_HI, (base >> 32) as u32);
            self.b.write32(hw::BAR_REGS, o + hw::Q_RING_SIZE, n);
            self.b.write32(hw::BAR_REGS, o + hw::Q_FETCH_INDEX, 0);
            self.b.write32(hw::BAR_REGS, o + hw::Q_POSTED_INDEX, 0);
            self.b.write32(hw::BAR_REGS, o + hw::Q_CQ_INDEX, cq);
            self.b.write32(hw::BAR_REGS, o + hw::Q_ENABLE, 1);
        }
    }

    /// Post a fresh buffer at the RQ's next slot (guard refilled). On a bounce platform the
    /// buffer is mapped first: nicqual leaves the slot unposted when the pool cannot take it
    /// (keeping room for one transmit), early enic posts whatever the map returned.
    fn post_rx_buffer(&mut self) {
        let i = self.rq_posted;
        let off = self.lay.rx_buf(i);
        let mut addr = self.iova(off);
        if self.rx_slots > 0 {
            let room = if self.policy == Policy::Nicqual { hw::rx_buf_len(self.mtu) as usize } else { 0 };
            match self.bounce_map(off, self.buf_len as usize, room) {
                Ok(tlb) => {
                    if let Some(m) = self.rq_maps.get_mut(i as usize) {
                        *m = tlb;
                    }
                }
                Err(_) if self.policy == Policy::Nicqual => {
                    self.stats.rx_not_posted += 1;
                    return;
                }
                Err(_) => {
                    self.stats.overflow_posted += 1;
                    addr = self.iova(self.lay.overflow);
                }
            }
        }
        let _ = self.mem.write_bulk(off + self.buf_len as usize, &[GUARD_BYTE; GUARD]);
        let d = RqEnetDesc::new(addr, self.buf_len as u16, hw::RQ_ENET_TYPE_ONLY_SOP);
        let _ = self.mem.write(self.lay.rq_ring + i as usize * 16, d.as_bytes());
        self.rq_posted = (i + 1) % self.entries;
        self.rq_outstanding += 1;
    }

    /// Bounce-map `len` bytes of the buffer at `off`. With `keep_room`, a mapping that
    /// would leave no free run of `keep_room` bytes is given back and refused (nicqual keeps
    /// room for one transmit). Returns the pool address to release on unmap; the device
    /// keeps using the buffer's own IOVA (the bounce copy is elided).
    fn bounce_map(&mut self, off: usize, len: usize, keep_room: usize) -> Result<Option<u64>, String> {
        let Some(pool) = self.bounce.as_mut() else { return Ok(None) };
        let dev = crate::swiotlb::DeviceName::new("enic", "0000:0b:00.0");
        let dir = crate::swiotlb::DmaDirection::FromDevice;
        let orig = self.base_iova + off as u64;
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

    /// RX buffers the adapter holds.
    pub fn rx_outstanding(&self) -> u32 {
        self.rq_outstanding
    }

    /// Publish posted buffers: `wmb(); posted_index`.
    fn ring_rq_doorbell(&mut self) {
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.b.write32(hw::BAR_REGS, self.res.rq + hw::Q_POSTED_INDEX, self.rq_posted);
    }

    /// Transmit one frame (one WQ descriptor, completion requested), then collect WQ
    /// completions. The adapter sends synchronously and loops the frame back to the RQ.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), EnicError> {
        let max = (self.mtu + hw::VLAN_ETH_HLEN) as usize;
        if frame.len() > max || frame.is_empty() {
            return Err(EnicError::TxTooLong { len: frame.len(), mtu: self.mtu, hdr: hw::VLAN_ETH_HLEN });
        }
        self.poll_tx();
        if self.wq_outstanding + 1 >= self.entries {
            return Err(EnicError::TxRingFull { entries: self.wq_outstanding });
        }
        let i = self.wq_to_use;
        let off = self.lay.tx_buf(i);
        let _ = self.mem.write_bulk(off, frame);
        let mut addr = self.iova(off);
        if self.bounce.is_some() && frame.len() as u32 + RX_HEADROOM > crate::swiotlb::PAGE_SIZE as u32 {
            match self.bounce_map(off, frame.len(), 0) {
                Ok(tlb) => {
                    if let Some(m) = self.wq_maps.get_mut(i as usize) {
                        *m = tlb;
                    }
                }
                Err(e) if self.policy == Policy::Nicqual => {
                    self.stats.tx_map_refused += 1;
                    return Err(EnicError::TxMapFailed { len: frame.len(), why: e });
                }
                Err(_) => {
                    // No dma_mapping_error check: the adapter reads the overflow buffer.
                    self.stats.overflow_posted += 1;
                    addr = self.iova(self.lay.overflow);
                }
            }
        }
        let d = WqEnetDesc::packet(addr, frame.len() as u16);
        let _ = self.mem.write(self.lay.wq_ring + i as usize * 16, d.as_bytes());
        self.wq_to_use = (i + 1) % self.entries;
        self.wq_outstanding += 1;
        self.stats.tx_frames += 1;
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.b.write32(hw::BAR_REGS, self.res.wq + hw::Q_POSTED_INDEX, self.wq_to_use);
        let status = self.b.read32(hw::BAR_REGS, self.res.wq + hw::WQ_ERROR_STATUS);
        if status != 0 {
            return Err(EnicError::QueueError { queue: "WQ0", status, offset: self.res.wq + hw::WQ_ERROR_STATUS });
        }
        self.poll_tx();
        Ok(())
    }

    /// Read CQ entry `idx` of completion queue at `ring`: colour byte first, then (after an
    /// acquire fence, the `rmb()`) the rest. `None` when not fresh for `cursor`.
    fn read_cq(&self, ring: usize, cursor: CqCursor) -> Option<[u8; 16]> {
        let off = ring + cursor.index() as usize * 16;
        let mut tc = [0u8; 1];
        self.mem.read(off + hw::CQ_TYPE_COLOR_OFFSET, &mut tc)?;
        let fresh = tc.first().is_some_and(|b| cursor.is_new(b & hw::CQ_DESC_COLOR != 0));
        if !fresh {
            return None;
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        let mut raw = [0u8; 16];
        self.mem.read(off, &mut raw)?;
        Some(raw)
    }

    /// Collect WQ completions: free every descriptor through `completed_index`.
    pub fn poll_tx(&mut self) {
        for _ in 0..self.entries {
            let Some(raw) = self.read_cq(self.lay.cq_tx, self.cq_tx) else { break };
            self.cq_tx.consume();
            let Ok(c) = CqDesc::read_from_bytes(&raw) else { break };
            let idx = u32::from(c.completed_index());
            let dist =
                if idx < self.entries { (idx + self.entries - self.wq_to_clean) % self.entries } else { u32::MAX };
            if c.ty() != hw::CQ_DESC_TYPE_WQ_ENET || c.q_number() != 0 || dist >= self.wq_outstanding {
                self.stats.tx_bad_completions += 1;
                continue;
            }
            for k in 0..=dist {
                let slot = (self.wq_to_clean + k) % self.entries;
                let m = self.wq_maps.get_mut(slot as usize).and_then(Option::take);
                self.bounce_unmap(m);
            }
            self.wq_outstanding -= dist + 1;
            self.wq_to_clean = (idx + 1) % self.entries;
            self.stats.tx_completions += 1;
        }
    }

    /// Service the receive CQ: deliver good frames to `out`, drop and count the rest,
    /// repost buffers. Returns frames delivered.
    pub fn poll_rx(&mut self, out: &mut Vec<Vec<u8>>) -> usize {
        let before = out.len();
        // Where the adapter's fetch pointer is; all-ones or out of range means it cannot
        // be trusted, and then no completion names a fetched buffer.
        let fetch = self.b.read32(hw::BAR_REGS, self.res.rq + hw::Q_FETCH_INDEX);
        let fetch = if fetch < self.entries { fetch } else { self.rq_to_clean };
        for _ in 0..self.entries {
            let entry = self.cq_rx.index();
            let Some(raw) = self.read_cq(self.lay.cq_rx, self.cq_rx) else { break };
            self.cq_rx.consume();
            let Ok(d) = CqEnetRqDesc::read_from_bytes(&raw) else { break };
            let c = d.decode();
            match self.policy {
                Policy::Nicqual => self.rx_nicqual(&c, entry, fetch, out),
                Policy::Early => self.rx_early(&c, out),
            }
        }
        self.ring_rq_doorbell();
        out.len() - before
    }

    fn rq_state(&self, fetch_index: u32) -> RqState {
        RqState {
            size: self.entries,
            to_clean: self.rq_to_clean,
            outstanding: self.rq_outstanding,
            fetch_index,
            q: 0,
            mtu: self.mtu,
        }
    }

    /// Reclaim buffers `to_clean..=index` (earlier ones were skipped) and repost as many.
    fn reclaim_through(&mut self, dist: u32) {
        for _ in 0..=dist {
            let i = self.rq_to_clean;
            self.check_guard(i);
            let m = self.rq_maps.get_mut(i as usize).and_then(Option::take);
            self.bounce_unmap(m);
            self.rq_to_clean = (i + 1) % self.entries;
            self.rq_outstanding = self.rq_outstanding.saturating_sub(1);
            self.post_rx_buffer();
        }
        self.stats.rx_skipped += u64::from(dist);
    }

    /// Count guard bytes after buffer `i` that no longer hold the guard pattern.
    fn check_guard(&mut self, i: u32) {
        let mut g = [0u8; GUARD];
        if self.mem.read_bulk(self.lay.rx_buf(i) + self.buf_len as usize, &mut g).is_some()
            && g.iter().any(|&b| b != GUARD_BYTE)
        {
            self.stats.overrun_landed += 1;
        }
    }

    fn rx_nicqual(&mut self, c: &hw::RqCompletion, entry: u32, fetch: u32, out: &mut Vec<Vec<u8>>) {
        let st = self.rq_state(fetch);
        let buf_len = self.buf_len;
        match validate::check(c, entry, st, |_| buf_len) {
            Ok(a) => {
                let mut frame = vec![0u8; a.len as usize];
                if self.mem.read_bulk(self.lay.rx_buf(a.index), &mut frame).is_some() {
                    self.stats.rx_delivered += 1;
                    self.stats.rx_bytes += u64::from(a.len);
                    out.push(frame);
                }
                self.reclaim_through(a.skipped);
            }
            Err(e) => {
                self.stats.count_drop(&e);
                if e.names_posted_buffer() {
                    let idx = u32::from(c.completed_index);
                    let dist = (idx + self.entries - self.rq_to_clean) % self.entries;
                    self.reclaim_through(dist);
                }
                if self.drop_log.len() < DROP_LOG_CAP {
                    self.drop_log.push(e);
                }
            }
        }
    }

    /// The 2.6.3x receive path: walk `to_clean` through `completed_index` (whatever it
    /// says), drop truncated frames, `skb_put(bytes_written)` the rest.
    fn rx_early(&mut self, c: &hw::RqCompletion, out: &mut Vec<Vec<u8>>) {
        let idx = u32::from(c.completed_index) % self.entries;
        let dist = (idx + self.entries - self.rq_to_clean) % self.entries;
        if u32::from(c.completed_index) >= self.entries || dist >= self.rq_outstanding {
            // The old loop would walk into buffers it never posted (or stale ones).
            self.stats.would_use_unposted += 1;
            return;
        }
        if c.truncated || c.bytes_written == 0 {
            let e = CompletionError::Truncated { index: c.completed_index, bytes_written: c.bytes_written };
            self.stats.count_drop(&e);
            self.reclaim_through(dist);
            return;
        }
        let n = u32::from(c.bytes_written);
        if n > self.buf_len {
            self.stats.would_read_past_buffer += 1;
        }
        if !(c.sop && c.eop) {
            self.stats.partial_delivered += 1;
        }
        let mut frame = vec![0u8; n.min(self.buf_len) as usize];
        if self.mem.read_bulk(self.lay.rx_buf(idx), &mut frame).is_some() {
            self.stats.rx_delivered += 1;
            self.stats.rx_bytes += u64::from(n);
            out.push(frame);
        }
        self.reclaim_through(dist);
    }
}

/// Walk the BAR0 resource table (bounded) and find the blocks the driver needs.
fn read_resources<B: Backend>(b: &mut B) -> Result<Resources, EnicError> {
    let magic = b.read32(hw::BAR_REGS, 0);
    if magic == u32::MAX {
        return Err(EnicError::DeviceGone { found: magic });
    }
    if magic != hw::VNIC_RES_MAGIC {
        return Err(EnicError::BadMagic { found: magic });
    }
    let (mut wq, mut rq, mut cq, mut cfg) = (None, None, None, None);
    for i in 0..64u64 {
        let o = hw::RES_HDR_LEN + i * hw::RES_ENTRY_LEN;
        let ty = (b.read32(hw::BAR_REGS, o) & 0xFF) as u8;
        if ty == hw::RES_TYPE_EOL {
            break;
        }
        let off = u64::from(b.read32(hw::BAR_REGS, o + 4));
        let count = b.read32(hw::BAR_REGS, o + 8);
        let slot = match ty {
            hw::RES_TYPE_WQ => &mut wq,
            hw::RES_TYPE_RQ => &mut rq,
            hw::RES_TYPE_CQ if count >= 2 => &mut cq,
            hw::RES_TYPE_NIC_CFG => &mut cfg,
            _ => continue,
        };
        *slot = Some(off);
    }
    let need = |v: Option<u64>, what: &'static str, ty: u8, blocks: u64| -> Result<u64, EnicError> {
        let off = v.ok_or(EnicError::MissingResource { what, ty })?;
        if off + blocks * hw::VNIC_RES_STRIDE > BAR0_LIMIT {
            return Err(EnicError::ResourceOutOfRange { what, offset: off, limit: BAR0_LIMIT });
        }
        Ok(off)
    };
    Ok(Resources {
        wq: need(wq, "WQ", hw::RES_TYPE_WQ, 1)?,
        rq: need(rq, "RQ", hw::RES_TYPE_RQ, 1)?,
        cq: need(cq, "two CQs", hw::RES_TYPE_CQ, 2)?,
        nic_cfg: need(cfg, "NIC_CFG", hw::RES_TYPE_NIC_CFG, 1)?,
    })
}

#[cfg(test)]
mod tests;
