//! The 82574L driver datapath: one mapped DMA region holding both descriptor rings and a
//! fixed-size packet pool, batched receive and transmit, and validation of every
//! descriptor the device writes back.
//!
//! Layout of the region (one `DmaMemory`, mapped once, device read+write):
//! `[RX ring 0 | TX ring | RX ring 1 (two queue pairs) | packet pool]`, rings 4 KiB aligned.
//!
//! With two queue pairs ([`Options::queue_pairs`](super::Options)) both receive rings are
//! posted and RSS is on: MRQC.MRQE = RSS with the IPv4, TCP/IPv4, IPv6 and TCP/IPv6 hash
//! types, RXCSUM.PCSD (the write-back carries the hash), and the key and RETA
//! [`setup_rss`](super::I82574::setup_rss) programmed. Each write-back's RSS type must be
//! one the driver enabled, and its queue field the ring it was found in.
//!
//! Rules this code keeps:
//! * a descriptor is published (RDT/TDT written) only after its buffer came from the pool
//!   (whose memory is mapped for the lifetime of the datapath) and the descriptor was
//!   written; the tail is written once per batch;
//! * every write-back is validated before use: DD set, an all-ones descriptor means a lost
//!   device (confirmed by STATUS), length non-zero and not beyond the posted buffer, EOP
//!   set (buffers are sized for the largest frame, so the device has no reason to span),
//!   queue field naming this queue, no frame errors, and no DD on a slot the driver has not
//!   posted. Each violation is a counted, typed [`WriteBackError`]; none panics or indexes
//!   out of bounds, and the buffer goes back to the pool;
//! * consumed RX descriptors are zeroed, so a stale DD can never be read as new.

use super::I82574;
use crate::backend::{Backend, DmaPerm};
use crate::dma::DmaMemory;
use crate::error::DriverError;
use crate::mempool::{Mempool, Packet, PoolError};
use nicqual_hw::i82574::{self as r};
use nicqual_hw::i82574_desc::{self as d, ExtRxRead, ExtRxWb, TxDesc};
use std::collections::VecDeque;
use zerocopy::{FromBytes, IntoBytes};

/// TX descriptors cleaned per batch (ixy: TX_CLEAN_BATCH).
pub const TX_CLEAN_BATCH: u32 = 32;
/// TX buffers are cut at these IOVA boundaries (one descriptor per piece).
const TX_PAGE: u64 = 4096;
/// Typed write-back errors kept for reports (older ones are counted only).
const ERROR_LOG: usize = 32;

/// How to set the datapath up.
#[derive(Debug, Clone)]
pub struct DatapathConfig {
    /// Descriptors per ring (multiple of 8, 8..=4096).
    pub ring_size: u32,
    /// Packet buffers in the pool.
    pub pool_entries: u32,
    /// Bytes per buffer: 2048, 4096, 8192 or 16384 (RCTL.BSIZE/BSEX values).
    pub buf_size: usize,
    /// RCTL.LPE: accept frames up to the chip's 9234-byte maximum.
    pub jumbo: bool,
    /// RCTL.LBM = MAC loopback.
    pub loopback: bool,
    /// RCTL.UPE|MPE.
    pub promiscuous: bool,
    /// IOVA where the region is mapped.
    pub iova: u64,
    /// RDTR (1.024 µs units; 0 = interrupt per frame).
    pub rdtr: u32,
}

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            ring_size: 512,
            pool_entries: 2048,
            buf_size: 2048,
            jumbo: false,
            loopback: false,
            promiscuous: false,
            iova: 0x4000_0000,
            rdtr: 0,
        }
    }
}

impl DatapathConfig {
    /// Settings for frames up to the 82574L's jumbo maximum (16 KiB buffers, LPE).
    pub fn jumbo() -> Self {
        DatapathConfig { buf_size: 16384, jumbo: true, pool_entries: 1024, ..Default::default() }
    }
}

/// Setup errors of the datapath.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("datapath config: {why}")]
    Config { why: String },
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("datapath not set up (call setup_datapath first)")]
    NotSetUp,
    #[error("receive/transmit queue {queue} does not exist here")]
    NoSuchQueue { queue: u16 },
    #[error("DMA region offset {offset:#x} (+{len}) outside the {region:#x}-byte region")]
    Region { offset: usize, len: usize, region: usize },
}

/// A write-back the driver refused. Each names the ring, the slot and what was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub enum WriteBackError {
    #[error("{ring} slot {slot}: descriptor reads all-ones while STATUS does not (device misbehaving)")]
    AllOnes { ring: &'static str, slot: u32 },
    #[error("{ring} slot {slot}: length {len} exceeds the posted {buf}-byte buffer")]
    LengthExceedsBuffer { ring: &'static str, slot: u32, len: u32, buf: u32 },
    #[error("{ring} slot {slot}: length 0 with DD set")]
    ZeroLength { ring: &'static str, slot: u32 },
    #[error("{ring} slot {slot}: write-back names queue {queue}, expected {expected}")]
    QueueOutOfRange { ring: &'static str, slot: u32, queue: u32, expected: u32 },
    #[error("{ring} slot {slot}: DD set on a slot the driver has not posted")]
    DdOnUnposted { ring: &'static str, slot: u32 },
    #[error("{ring} slot {slot}: EOP clear although buffers hold the largest frame")]
    UnexpectedSpan { ring: &'static str, slot: u32 },
    #[error("{ring} slot {slot}: frame error bits {errors:#010x}")]
    FrameError { ring: &'static str, slot: u32, errors: u32 },
    #[error("{reg} reads {value}, outside the ring of {size}")]
    HeadOutOfRange { reg: &'static str, value: u32, size: u32 },
    #[error("{ring} slot {slot}: RSS type {rss_type} in the write-back's MRQ dword ({why})")]
    RssType { ring: &'static str, slot: u32, rss_type: u32, why: &'static str },
}

/// What an accepted receive write-back said besides the frame: the queue it names and, with
/// RSS on, the hash and its type (validated: a type the driver enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RxMeta {
    pub queue: u16,
    /// RSS type (MRQ bits 3:0; 0 = no hash: the frame matched no enabled hash type).
    pub rss_type: u8,
    /// The RSS hash (meaningful when `rss_type` is not 0).
    pub hash: u32,
}

/// The MRQC value the driver programs with two receive queues: RSS, hashing IPv4 and IPv6
/// with and without TCP ports (not the IPv6 extension-header type).
pub const MRQC_RSS: u32 = r::MRQC_MRQE_RSS | r::MRQC_TCP_IPV4 | r::MRQC_IPV4 | r::MRQC_TCP_IPV6 | r::MRQC_IPV6;

/// RSS types a write-back may carry under [`MRQC_RSS`] (hw `RssType` numbering).
const RSS_TYPES_ENABLED: [r::RssType; 5] =
    [r::RssType::None, r::RssType::Ipv4Tcp, r::RssType::Ipv4, r::RssType::Ipv6Tcp, r::RssType::Ipv6];

/// Counters of the datapath (all monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DatapathCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// RX refills deferred because the pool was empty.
    pub rx_refill_deferred: u64,
    /// TX packets refused (length 0 or beyond a buffer).
    pub tx_bad_packet: u64,
    pub wb_all_ones: u64,
    pub wb_length: u64,
    pub wb_zero_length: u64,
    pub wb_queue: u64,
    pub wb_dd_unposted: u64,
    pub wb_span: u64,
    pub wb_frame_error: u64,
    pub wb_rss_type: u64,
    pub head_out_of_range: u64,
}

impl DatapathCounters {
    /// All refused write-backs.
    pub fn wb_errors(&self) -> u64 {
        self.wb_all_ones
            + self.wb_length
            + self.wb_zero_length
            + self.wb_queue
            + self.wb_dd_unposted
            + self.wb_span
            + self.wb_frame_error
            + self.wb_rss_type
    }
}

#[derive(Debug)]
struct Ring {
    /// "RX0", "RX1", "TX0": names the ring in errors.
    name: &'static str,
    off: usize,
    size: u32,
    /// Next slot to clean (oldest in flight).
    clean: u32,
    /// Next slot to fill (== tail written to the device).
    tail: u32,
    /// Pool entry id held by each slot.
    bufs: Vec<Option<u32>>,
}

impl Ring {
    fn new(name: &'static str, off: usize, size: u32) -> Ring {
        Ring { name, off, size, clean: 0, tail: 0, bufs: vec![None; size as usize] }
    }

    fn next(&self, i: u32) -> u32 {
        if i + 1 >= self.size { 0 } else { i + 1 }
    }

    fn in_flight(&self) -> u32 {
        if self.tail >= self.clean { self.tail - self.clean } else { self.size - self.clean + self.tail }
    }

    fn desc_off(&self, slot: u32) -> usize {
        self.off + slot as usize * d::DESC_LEN
    }

    fn take(&mut self, slot: u32) -> Option<u32> {
        self.bufs.get_mut(slot as usize).and_then(Option::take)
    }

    fn put(&mut self, slot: u32, id: u32) {
        if let Some(b) = self.bufs.get_mut(slot as usize) {
            *b = Some(id);
        }
    }
}

/// Datapath state of one attached 82574L.
#[derive(Debug)]
pub struct Datapath {
    cfg: DatapathConfig,
    mem: DmaMemory,
    pool: Mempool,
    /// One ring per receive queue (index = queue).
    rx: Vec<Ring>,
    tx: Ring,
    /// MRQC programmed for RSS (two receive queues).
    rss: bool,
    pub counters: DatapathCounters,
    errors: VecDeque<WriteBackError>,
}

impl Datapath {
    /// The packet pool (read packets, write frames into buffers).
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// The packet pool, mutably (allocate and free buffers).
    pub fn pool_mut(&mut self) -> &mut Mempool {
        &mut self.pool
    }

    /// The configuration the datapath was set up with.
    pub fn config(&self) -> &DatapathConfig {
        &self.cfg
    }

    /// The most recent refused write-backs (oldest first).
    pub fn recent_errors(&self) -> impl Iterator<Item = &WriteBackError> {
        self.errors.iter()
    }

    /// RX slots currently posted to the device on receive queue 0.
    pub fn rx_posted(&self) -> u32 {
        self.rx_posted_on(0)
    }

    /// RX slots currently posted to the device on receive queue `queue` (0 if none).
    pub fn rx_posted_on(&self, queue: u16) -> u32 {
        self.rx.get(queue as usize).map_or(0, Ring::in_flight)
    }

    /// Receive queues with a posted ring (1, or 2 with RSS on).
    pub fn rx_queues(&self) -> u16 {
        self.rx.len() as u16
    }

    /// RSS is on: MRQC = [`MRQC_RSS`], RXCSUM.PCSD, both receive rings posted.
    pub fn rss_enabled(&self) -> bool {
        self.rss
    }

    /// TX descriptors not yet cleaned.
    pub fn tx_in_flight(&self) -> u32 {
        self.tx.in_flight()
    }

    fn note(&mut self, e: WriteBackError) {
        let c = &mut self.counters;
        match e {
            WriteBackError::AllOnes { .. } => c.wb_all_ones += 1,
            WriteBackError::LengthExceedsBuffer { .. } => c.wb_length += 1,
            WriteBackError::ZeroLength { .. } => c.wb_zero_length += 1,
            WriteBackError::QueueOutOfRange { .. } => c.wb_queue += 1,
            WriteBackError::DdOnUnposted { .. } => c.wb_dd_unposted += 1,
            WriteBackError::UnexpectedSpan { .. } => c.wb_span += 1,
            WriteBackError::FrameError { .. } => c.wb_frame_error += 1,
            WriteBackError::HeadOutOfRange { .. } => c.head_out_of_range += 1,
            WriteBackError::RssType { .. } => c.wb_rss_type += 1,
        }
        tracing::debug!(target: "nicqual::datapath", "{e}");
        if self.errors.len() >= ERROR_LOG {
            self.errors.pop_front();
        }
        self.errors.push_back(e);
    }

    fn read_desc(&self, off: usize) -> Option<[u8; 16]> {
        let mut b = [0u8; 16];
        self.mem.read_bulk(off, &mut b)?;
        Some(b)
    }

    /// Fill free slots of receive ring `queue` from the pool; returns the new tail if it
    /// moved.
    fn refill_rx(&mut self, queue: u16) -> Option<u32> {
        let Datapath { rx, pool, mem, counters, .. } = self;
        let ring = rx.get_mut(queue as usize)?;
        let start = ring.tail;
        while ring.in_flight() < ring.size - 1 {
            let Some(p) = pool.alloc() else {
                counters.rx_refill_deferred += 1;
                break;
            };
            let slot = ring.tail;
            let desc = ExtRxRead { buffer_addr: pool.iova_of(p.id()).into(), reserved: 0.into() };
            if mem.write_bulk(ring.desc_off(slot), desc.as_bytes()).is_none() {
                pool.free(p);
                break;
            }
            // The slot holds the entry id now; the handle is spent.
            ring.put(slot, p.id());
            ring.tail = ring.next(slot);
        }
        (ring.tail != start).then_some(ring.tail)
    }

    /// Look for DD on every slot of ring `queue` the driver has not posted: a device
    /// writing there is writing where no buffer was handed out.
    fn check_unposted(&mut self, queue: u16) {
        let Some(ring) = self.rx.get(queue as usize) else { return };
        let (name, unposted, mut slot) = (ring.name, ring.size - ring.in_flight(), ring.tail);
        let mut found = Vec::new();
        for _ in 0..unposted {
            let off = ring.desc_off(slot);
            if self.mem.read_u32(off + d::RXD_EXT_STATUS_OFFSET).is_some_and(|s| s & d::RXD_STAT_DD != 0) {
                found.push((slot, off));
            }
            slot = ring.next(slot);
        }
        for (slot, off) in found {
            self.note(WriteBackError::DdOnUnposted { ring: name, slot });
            let _ = self.mem.write_bulk(off, &[0u8; 16]);
        }
    }
}

impl<B: Backend> I82574<B> {
    /// The datapath, once set up.
    pub fn datapath(&self) -> Option<&Datapath> {
        self.dp.as_ref()
    }

    /// The datapath, mutably, once set up (its pool, for building and reading packets).
    pub fn datapath_mut(&mut self) -> Option<&mut Datapath> {
        self.dp.as_mut()
    }

    fn dp_mut(&mut self) -> Result<&mut Datapath, DriverError> {
        self.dp.as_mut().ok_or(DriverError::Datapath(DatapathError::NotSetUp))
    }

    /// Allocate and map the DMA region, program both rings and RCTL/TCTL, post RX buffers.
    pub fn setup_datapath(&mut self, cfg: DatapathConfig) -> Result<(), DriverError> {
        let bad = |why: &str| DriverError::Datapath(DatapathError::Config { why: why.into() });
        if !(8..=4096).contains(&cfg.ring_size) || !cfg.ring_size.is_multiple_of(8) {
            return Err(bad("ring_size must be a multiple of 8 in 8..=4096"));
        }
        let bsize_bits =
            d::rctl_bsize_bits(cfg.buf_size).ok_or_else(|| bad("buf_size must be 2048/4096/8192/16384"))?;
        if cfg.buf_size < 1024 {
            return Err(bad("buf_size below 1024"));
        }
        let max_frame = if cfg.jumbo { d::MAX_JUMBO_FRAME } else { d::MAX_STD_FRAME };
        if cfg.buf_size < max_frame {
            return Err(bad("buf_size must hold the largest frame (the driver does not chain RX buffers)"));
        }
        // Two queue pairs: receive queue 1 is posted too and RSS steers frames to it.
        let rx_queues: u16 = if self.opts.queue_pairs == 2 { 2 } else { 1 };
        if cfg.pool_entries < cfg.ring_size * u32::from(rx_queues) {
            return Err(bad("pool_entries must be at least ring_size for every receive ring"));
        }
        self.teardown_datapath()?;
        let ring_bytes = (cfg.ring_size as usize * d::DESC_LEN).div_ceil(4096) * 4096;
        let pool_off = (1 + rx_queues as usize) * ring_bytes;
        let total = pool_off + cfg.pool_entries as usize * cfg.buf_size;
        let mem = self.b.dma_alloc(total)?;
        // Backends whose memory has a fixed IOVA (qtest: guest RAM) decide it.
        let cfg = DatapathConfig { iova: mem.fixed_iova().unwrap_or(cfg.iova), ..cfg };
        self.b.dma_map(&mem, cfg.iova, DmaPerm::BIDIRECTIONAL)?;
        let pool = match Mempool::new(mem.clone(), pool_off, cfg.iova + pool_off as u64, cfg.buf_size, cfg.pool_entries)
        {
            Ok(p) => p,
            Err(e) => {
                let _ = self.b.dma_unmap(cfg.iova);
                return Err(DriverError::Datapath(e.into()));
            }
        };
        // Every failure from here on unmaps the region again (found by fuzzing: a device
        // gone mid-setup left the window mapped).
        if let Err(e) = self.program_rings(&cfg, ring_bytes, bsize_bits, rx_queues) {
            if !self.gone {
                let _ = self.write(r::RCTL, 0);
                let _ = self.write(r::TCTL, 0);
            }
            let _ = self.b.dma_unmap(cfg.iova);
            return Err(e);
        }
        let mut rx = vec![Ring::new("RX0", 0, cfg.ring_size)];
        if rx_queues == 2 {
            rx.push(Ring::new("RX1", 2 * ring_bytes, cfg.ring_size));
        }
        let mut dp = Datapath {
            rx,
            tx: Ring::new("TX0", ring_bytes, cfg.ring_size),
            rss: rx_queues == 2,
            cfg,
            mem,
            pool,
            counters: DatapathCounters::default(),
            errors: VecDeque::new(),
        };
        // Zero both rings (fresh anonymous memory is zero; a re-setup may not be).
        for off in (0..pool_off).step_by(16) {
            let _ = dp.mem.write_bulk(off, &[0u8; 16]);
        }
        let tails: Vec<(u16, Option<u32>)> = (0..rx_queues).map(|q| (q, dp.refill_rx(q))).collect();
        self.dp = Some(dp);
        for (q, tail) in tails {
            if let Some(t) = tail {
                self.write(r::rdt(u32::from(q)), t)?;
            }
        }
        Ok(())
    }

    /// Program the rings, the delay timers, RSS (two receive queues) and RCTL/TCTL for
    /// `cfg` (region already mapped).
    fn program_rings(
        &mut self,
        cfg: &DatapathConfig,
        ring_bytes: usize,
        bsize_bits: u32,
        rx_queues: u16,
    ) -> Result<(), DriverError> {
        let tx_iova = cfg.iova + ring_bytes as u64;
        let len = cfg.ring_size * d::DESC_LEN as u32;
        // Receiver and transmitter off while the rings are (re)programmed.
        self.write(r::RCTL, 0)?;
        self.write(r::TCTL, 0)?;
        self.write(r::tdbal(0), tx_iova as u32)?;
        self.write(r::tdbah(0), (tx_iova >> 32) as u32)?;
        self.write(r::tdlen(0), len)?;
        self.write(r::tdh(0), 0)?;
        self.write(r::tdt(0), 0)?;
        self.write(r::txdctl(0), d::TXDCTL_82574)?;
        self.write(r::TIDV, 8)?;
        self.write(r::TADV, 32)?;
        // Receive ring 0 at the start of the region, ring 1 after the TX ring.
        for q in 0..u32::from(rx_queues) {
            let rx_iova = if q == 0 { cfg.iova } else { cfg.iova + 2 * ring_bytes as u64 };
            self.write(r::rdbal(q), rx_iova as u32)?;
            self.write(r::rdbah(q), (rx_iova >> 32) as u32)?;
            self.write(r::rdlen(q), len)?;
            self.write(r::rdh(q), 0)?;
            self.write(r::rdt(q), 0)?;
            self.write(r::rxdctl(q), d::RXDCTL_82574)?;
        }
        self.write(r::RDTR, cfg.rdtr)?;
        self.write(r::RADV, 0)?;
        // RSS needs PCSD: the write-back's last dword then holds the hash (82574L
        // datasheet, RXCSUM.PCSD; QEMU `e1000e_build_rx_metadata`).
        let rss = rx_queues == 2;
        let pcsd = if rss { r::RXCSUM_PCSD } else { 0 };
        self.write(r::RXCSUM, d::RXCSUM_IPOFLD | d::RXCSUM_TUOFLD | pcsd)?;
        self.write(r::MRQC, if rss { MRQC_RSS } else { 0 })?;
        let rfctl = self.read(r::RFCTL)?;
        self.write(r::RFCTL, rfctl | r::RFCTL_EXTEN)?;
        self.write(r::TCTL, r::TCTL_EN | r::TCTL_PSP | d::TCTL_CT_DEFAULT | d::TCTL_COLD_FD)?;
        let mut rctl = r::RCTL_EN | r::RCTL_BAM | r::RCTL_SECRC | bsize_bits;
        if cfg.jumbo {
            rctl |= r::RCTL_LPE;
        }
        if cfg.loopback {
            rctl |= r::RCTL_LBM_MAC;
        }
        if cfg.promiscuous {
            rctl |= r::RCTL_UPE | r::RCTL_MPE;
        }
        self.write(r::RCTL, rctl)?;
        Ok(())
    }

    /// Stop RX/TX, give every buffer back, unmap the region.
    pub fn teardown_datapath(&mut self) -> Result<(), DriverError> {
        let Some(dp) = self.dp.take() else { return Ok(()) };
        // The region is unmapped even when stopping fails (found by fuzzing: a device gone
        // here left the window mapped); the IOMMU then blocks a device that kept running.
        let stopped = if self.gone { Ok(()) } else { self.write(r::RCTL, 0).and_then(|()| self.write(r::TCTL, 0)) };
        let unmapped = self.b.dma_unmap(dp.cfg.iova);
        stopped?;
        unmapped?;
        Ok(())
    }

    /// Receive up to `max` packets from `queue` into `out`; returns how many. Refused
    /// write-backs are counted (see [`Datapath::counters`]) and their buffers reposted.
    pub fn rx_batch(&mut self, queue: u16, out: &mut Vec<Packet>, max: usize) -> Result<usize, DriverError> {
        self.rx_batch_inner(queue, out, None, max)
    }

    /// [`rx_batch`](Self::rx_batch), pushing each accepted packet's [`RxMeta`] (queue, RSS
    /// type and hash from its write-back) to `meta` in step with `out`.
    pub fn rx_batch_meta(
        &mut self,
        queue: u16,
        out: &mut Vec<Packet>,
        meta: &mut Vec<RxMeta>,
        max: usize,
    ) -> Result<usize, DriverError> {
        self.rx_batch_inner(queue, out, Some(meta), max)
    }

    fn rx_batch_inner(
        &mut self,
        queue: u16,
        out: &mut Vec<Packet>,
        mut meta: Option<&mut Vec<RxMeta>>,
        max: usize,
    ) -> Result<usize, DriverError> {
        let no_queue = DriverError::Datapath(DatapathError::NoSuchQueue { queue });
        if queue >= self.dp_mut()?.rx_queues() {
            return Err(no_queue);
        }
        let mut got = 0usize;
        let mut lost = false;
        {
            let dp = self.dp_mut()?;
            let buf = dp.cfg.buf_size as u32;
            let rss = dp.rss;
            let Datapath { rx, mem, pool, .. } = &mut *dp;
            let Some(ring) = rx.get_mut(queue as usize) else { return Err(no_queue) };
            let name = ring.name;
            let mut refused = Vec::new();
            let mut rx_bytes = 0u64;
            while got < max && ring.in_flight() > 0 {
                let slot = ring.clean;
                let off = ring.desc_off(slot);
                let Some(status) = mem.read_u32(off + d::RXD_EXT_STATUS_OFFSET) else { break };
                if status & d::RXD_STAT_DD == 0 {
                    break;
                }
                let mut raw = [0u8; 16];
                if mem.read_bulk(off, &mut raw).is_none() {
                    break;
                }
                if raw == [0xFF; 16] {
                    lost = true;
                    break;
                }
                let wb = ExtRxWb::read_from_bytes(&raw).unwrap_or_default();
                let len = wb.length.get() as u32;
                let st = wb.status_error.get();
                let mrq = wb.mrq.get();
                let q = (mrq >> r::MRQ_QUEUE_SHIFT) & 0x1F;
                let rss_type = mrq & 0xF;
                let err = if q != queue as u32 {
                    Some(WriteBackError::QueueOutOfRange { ring: name, slot, queue: q, expected: queue as u32 })
                } else if len == 0 {
                    Some(WriteBackError::ZeroLength { ring: name, slot })
                } else if len > buf {
                    Some(WriteBackError::LengthExceedsBuffer { ring: name, slot, len, buf })
                } else if st & d::RXD_STAT_EOP == 0 {
                    Some(WriteBackError::UnexpectedSpan { ring: name, slot })
                } else if st & d::RXDEXT_ERR_FRAME_MASK != 0 {
                    Some(WriteBackError::FrameError { ring: name, slot, errors: st & 0xFF00_0000 })
                } else if !rss && rss_type != 0 {
                    Some(WriteBackError::RssType { ring: name, slot, rss_type, why: "RSS is off (MRQC 0)" })
                } else if !RSS_TYPES_ENABLED.iter().any(|t| *t as u32 == rss_type) {
                    Some(WriteBackError::RssType { ring: name, slot, rss_type, why: "not a hash type MRQC enables" })
                } else {
                    None
                };
                // Consumed either way: zero the slot so its DD can never be read again.
                let _ = mem.write_bulk(off, &[0u8; 16]);
                let id = ring.take(slot);
                ring.clean = ring.next(slot);
                match (err, id) {
                    (_, None) => refused.push(WriteBackError::DdOnUnposted { ring: name, slot }),
                    (Some(e), Some(id)) => {
                        refused.push(e);
                        pool.free_id(id);
                    }
                    (None, Some(id)) => match pool.handle(id, len as usize) {
                        Some(p) => {
                            rx_bytes += len as u64;
                            out.push(p);
                            if let Some(m) = meta.as_deref_mut() {
                                // Validated above: the type fits in four bits, the queue is ours.
                                m.push(RxMeta { queue, rss_type: rss_type as u8, hash: wb.rss_or_csum.get() });
                            }
                            got += 1;
                        }
                        None => pool.free_id(id),
                    },
                }
            }
            dp.counters.rx_packets += got as u64;
            dp.counters.rx_bytes += rx_bytes;
            for e in refused {
                dp.note(e);
            }
        }
        if lost {
            self.rx_all_ones(queue)?;
        }
        let tail = {
            let dp = self.dp_mut()?;
            dp.check_unposted(queue);
            dp.refill_rx(queue)
        };
        if let Some(t) = tail {
            self.write(r::rdt(u32::from(queue)), t)?;
        }
        Ok(got)
    }

    /// An all-ones RX descriptor on ring `queue`: a removed device reads all-ones
    /// everywhere, so ask STATUS. Gone → `DeviceGone` (from `read`); otherwise the
    /// descriptor itself is hostile: counted, slot zeroed, its buffer back to the pool.
    fn rx_all_ones(&mut self, queue: u16) -> Result<(), DriverError> {
        self.read(r::STATUS)?;
        let dp = self.dp_mut()?;
        let Datapath { rx, mem, pool, .. } = &mut *dp;
        let Some(ring) = rx.get_mut(queue as usize) else { return Ok(()) };
        let (name, slot) = (ring.name, ring.clean);
        let _ = mem.write_bulk(ring.desc_off(slot), &[0u8; 16]);
        if let Some(id) = ring.take(slot) {
            pool.free_id(id);
        }
        ring.clean = ring.next(slot);
        dp.note(WriteBackError::AllOnes { ring: name, slot });
        Ok(())
    }

    /// Free transmitted buffers, `TX_CLEAN_BATCH` descriptors at a time (the last, partial
    /// batch too, so a quiet queue drains fully). Returns descriptors cleaned.
    pub fn tx_clean(&mut self) -> Result<u32, DriverError> {
        let dp = self.dp_mut()?;
        let mut cleaned = 0;
        loop {
            let n = dp.tx.in_flight().min(TX_CLEAN_BATCH);
            if n == 0 {
                break;
            }
            let last = (dp.tx.clean + n - 1) % dp.tx.size;
            let off = dp.tx.desc_off(last);
            let Some(st) = dp.mem.read_u32(off + d::TXD_STATUS_OFFSET) else { break };
            if st & d::TXD_STAT_DD == 0 {
                break;
            }
            if st == u32::MAX && dp.read_desc(off) == Some([0xFF; 16]) {
                dp.note(WriteBackError::AllOnes { ring: "TX0", slot: last });
                break;
            }
            for _ in 0..n {
                let slot = dp.tx.clean;
                if let Some(id) = dp.tx.take(slot) {
                    dp.pool.free_id(id);
                }
                dp.tx.clean = dp.tx.next(slot);
            }
            cleaned += n;
        }
        Ok(cleaned)
    }

    /// Queue packets from the front of `pkts` for transmission on `queue`; returns how
    /// many were taken (the rest stay in `pkts`: the ring is full). Cleans first.
    ///
    /// A buffer that crosses a 4 KiB page boundary of its IOVA (jumbo frames) goes out as
    /// one descriptor per page piece, EOP on the last: the device then never needs one DMA
    /// to span two IOMMU pages (QEMU's e1000e drops such a TX buffer behind a vIOMMU,
    /// docs/CONFORMANCE.md). The buffer is held by the packet's last slot.
    pub fn tx_batch(&mut self, queue: u16, pkts: &mut VecDeque<Packet>) -> Result<usize, DriverError> {
        // The datapath transmits on queue 0 only (TX queue 1 is not posted).
        if queue != 0 {
            return Err(DriverError::Datapath(DatapathError::NoSuchQueue { queue }));
        }
        self.tx_clean()?;
        let dp = self.dp_mut()?;
        let cmd = d::TXD_CMD_IFCS | d::TXD_CMD_RS;
        let max_len = dp.pool.entry_size().min(d::MAX_TX_LEGACY_LEN);
        let mut sent = 0;
        while dp.tx.in_flight() < dp.tx.size - 1 {
            let Some(p) = pkts.pop_front() else { break };
            if p.is_empty() || p.len() > max_len {
                dp.counters.tx_bad_packet += 1;
                dp.pool.free(p);
                continue;
            }
            let iova = dp.pool.iova(&p);
            let end = iova + p.len() as u64;
            let pieces = ((end - 1) / TX_PAGE - iova / TX_PAGE + 1) as u32;
            if dp.tx.in_flight() + pieces > dp.tx.size - 1 {
                pkts.push_front(p);
                break;
            }
            let (mut addr, mut ok) = (iova, true);
            let mut slot = dp.tx.tail;
            while addr < end {
                let piece_end = ((addr / TX_PAGE + 1) * TX_PAGE).min(end);
                let eop = if piece_end == end { d::TXD_CMD_EOP } else { 0 };
                let desc = TxDesc::legacy(addr, (piece_end - addr) as u16, cmd | eop);
                if dp.mem.write_bulk(dp.tx.desc_off(slot), desc.as_bytes()).is_none() {
                    ok = false;
                    break;
                }
                addr = piece_end;
                if addr < end {
                    slot = dp.tx.next(slot);
                }
            }
            if !ok {
                pkts.push_front(p);
                break;
            }
            dp.counters.tx_packets += 1;
            dp.counters.tx_bytes += p.len() as u64;
            dp.tx.put(slot, p.id());
            dp.tx.tail = dp.tx.next(slot);
            sent += 1;
        }
        let tail = dp.tx.tail;
        if sent > 0 {
            self.write(r::tdt(0), tail)?;
        }
        Ok(sent)
    }

    /// Read RDH/TDH and check it names a slot (hostile or lost devices report anything).
    pub fn read_head(&mut self, rx: bool) -> Result<Option<u32>, DriverError> {
        let (reg, name) = if rx { (r::rdh(0), "RDH0") } else { (r::tdh(0), "TDH0") };
        let v = self.read(reg)?;
        let dp = self.dp_mut()?;
        let size = if rx { dp.rx.first().map_or(0, |r| r.size) } else { dp.tx.size };
        if v >= size {
            dp.note(WriteBackError::HeadOutOfRange { reg: name, value: v, size });
            return Ok(None);
        }
        Ok(Some(v))
    }
}

#[cfg(test)]
mod tests;
