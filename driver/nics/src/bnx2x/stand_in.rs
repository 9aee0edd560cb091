//! The stand-in bnx2x port (buffers in a `VecDeque`, CQEs handed in by the caller), kept
//! only for the seed-001 scenario until it runs on [`super::Bnx2x`]; new code uses that.
//!
//! bnx2x port driver at DMA-ring level, over the DMA API.
//!
//! What it keeps from Linux `bnx2x_cmn.c`: rx buffers of `rx_buf_size(mtu)` bytes, kmalloc'd
//! (`rx_buf_size + NET_SKB_PAD`, a power-of-two slab object) and mapped from `data +
//! NET_SKB_PAD` for the device; on receive a replacement is allocated and mapped *before* the
//! filled buffer is unmapped, so a failed mapping drops the frame and leaves the ring full;
//! transmit maps the linear part (start BD) and each fragment (data BDs), needs a parse BD,
//! and stops the queue with fewer than `MAX_SKB_FRAGS + 4` BDs free.
//!
//! What it does instead of what old kernels did: a failed mapping is a typed error counted
//! per direction (`rx_map_errors`, `tx_map_errors`); nothing ever DMAs into a shared
//! overflow buffer, nothing panics. Every completion is validated ([`validate_cqe`]) before
//! its length or offset is used.

use crate::backend::Backend;
use crate::dmamap::{CpuBuffer, DmaApi, DmaError, DmaMapping};
use crate::health::CheckReport;
use crate::swiotlb::DmaDirection;
use nicqual_hw::bnx2x::{self as hw, FastPathRxCqe};
use serde::Serialize;
use std::collections::VecDeque;

/// Ethernet header length (the shortest frame a CQE may report).
const ETH_HLEN: u16 = 14;

/// Why a CQE was refused. Each names the field and the bound it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CqeError {
    #[error("CQE not written yet (marker {marker:#010x})")]
    NotReady { marker: u32 },
    #[error("CQE type {cqe_type} unexpected here (fast path 0{})", if *.tpa { ", TPA start 2 / stop 3" } else { "" })]
    UnexpectedType { cqe_type: u8, tpa: bool },
    #[error("CQE pkt_len {pkt_len:#06x} is all-ones: device gone or not written")]
    AllOnes { pkt_len: u16 },
    #[error("CQE pkt_len {pkt_len} outside {min}..={max} for MTU {mtu}")]
    BadLength { pkt_len: u16, min: u16, max: u16, mtu: u32 },
    #[error("CQE len_on_bd {len_on_bd} exceeds pkt_len {pkt_len}")]
    LenOnBd { len_on_bd: u16, pkt_len: u16 },
    #[error(
        "CQE placement_offset {placement_offset} + len_on_bd {len_on_bd} overruns the {buf_len} bytes the firmware may use"
    )]
    Overrun { placement_offset: u8, len_on_bd: u16, buf_len: u32 },
}

/// A completion that passed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxCompletion {
    pub placement_offset: u8,
    pub len: u16,
    /// The firmware flagged a PHY decode error: drop the frame (the only error flag Linux
    /// drops on).
    pub phy_error: bool,
}

/// Validate a fast-path CQE against the buffer it completes (`mtu` sets both the largest
/// legal frame and the firmware buffer length). Never trusts a field before checking it.
pub fn validate_cqe(cqe: &FastPathRxCqe, mtu: u32, tpa: bool) -> Result<RxCompletion, CqeError> {
    let marker = cqe.marker.get();
    if marker != 0 {
        return Err(CqeError::NotReady { marker });
    }
    let cqe_type = cqe.type_error_flags & hw::CQE_TYPE_MASK;
    if cqe_type != hw::CQE_TYPE_FAST_PATH {
        return Err(CqeError::UnexpectedType { cqe_type, tpa });
    }
    let pkt_len = cqe.pkt_len_or_gro_seg_len.get();
    if pkt_len == 0xFFFF {
        return Err(CqeError::AllOnes { pkt_len });
    }
    let max = (mtu + hw::ETH_OVERHEAD).min(u16::MAX as u32) as u16;
    if !(ETH_HLEN..=max).contains(&pkt_len) {
        return Err(CqeError::BadLength { pkt_len, min: ETH_HLEN, max, mtu });
    }
    let len_on_bd = cqe.len_on_bd.get();
    if len_on_bd > pkt_len {
        return Err(CqeError::LenOnBd { len_on_bd, pkt_len });
    }
    // The firmware writes from the mapping start + placement offset and must stay clear of
    // the tail the driver reserves for skb_shared_info.
    let buf_len = hw::rx_buf_size(mtu) - hw::FW_RX_ALIGN_END;
    if cqe.placement_offset as u32 + len_on_bd as u32 > buf_len {
        return Err(CqeError::Overrun { placement_offset: cqe.placement_offset, len_on_bd, buf_len });
    }
    Ok(RxCompletion {
        placement_offset: cqe.placement_offset,
        len: len_on_bd,
        phy_error: cqe.type_error_flags & hw::CQE_PHY_DECODE_ERR != 0,
    })
}

/// Port configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortConfig {
    pub mtu: u32,
    pub rx_bds: u32,
    pub tx_queues: u32,
    pub tx_bds_per_queue: u32,
}

impl PortConfig {
    /// Linux defaults at `mtu`: 4078 rx BDs, 4078 tx BDs per queue.
    pub fn linux_default(mtu: u32, tx_queues: u32) -> Self {
        PortConfig { mtu, rx_bds: hw::MAX_RX_AVAIL as u32, tx_queues, tx_bds_per_queue: hw::MAX_TX_AVAIL as u32 }
    }

    pub fn rx_buf_size(&self) -> usize {
        hw::rx_buf_size(self.mtu) as usize
    }

    /// The rx buffer's allocation: `kmalloc(rx_buf_size + NET_SKB_PAD)` comes from a
    /// power-of-two slab, so the object is aligned to its size class.
    pub fn rx_alloc(&self) -> (usize, u64) {
        let len = self.rx_buf_size() + hw::NET_SKB_PAD as usize;
        (len, (len as u64).next_power_of_two().max(64))
    }
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortCounters {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Frames dropped because the replacement buffer could not be mapped (the filled buffer
    /// went back on the ring).
    pub rx_map_errors: u64,
    pub rx_bad_cqe: u64,
    pub rx_phy_errors: u64,
    /// Buffers missing from the ring after open.
    pub rx_ring_short: u64,
    pub tx_packets: u64,
    pub tx_map_errors: u64,
    /// Submissions refused because the queue was stopped.
    pub tx_busy: u64,
}

struct RxSlot {
    buf: CpuBuffer,
    map: DmaMapping,
}

/// One transmit packet in flight.
struct TxPacket {
    queue: usize,
    bds: u32,
    parts: Vec<(CpuBuffer, DmaMapping)>,
}

/// A transmit request: the linear part and page fragments, like an skb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxSkb {
    /// Bytes in the linear (kmalloc'd) part.
    pub linear: usize,
    /// Fragment lengths (each within one page).
    pub frags: Vec<usize>,
}

impl TxSkb {
    pub fn len(&self) -> usize {
        self.linear + self.frags.iter().sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Outcome of a transmit submission.
#[derive(Debug)]
pub enum TxOutcome {
    Sent,
    /// Queue stopped: too few BDs free.
    Busy,
    /// A mapping failed: the packet was dropped and counted (what an old kernel would have
    /// done is in the error).
    Dropped(DmaError),
}

/// Outcome of a receive.
#[derive(Debug)]
pub enum RxOutcome {
    Delivered {
        len: u16,
    },
    /// The replacement could not be mapped: frame dropped, buffer reposted.
    Dropped(DmaError),
    BadCqe(CqeError),
    Empty,
}

/// One bnx2x port's rings, as the DMA layer sees them.
pub struct Bnx2xPort<B: Backend> {
    pub backend: B,
    pub dma: DmaApi,
    cfg: PortConfig,
    rx: VecDeque<RxSlot>,
    tx: VecDeque<TxPacket>,
    tx_bds_used: Vec<u32>,
    pub counters: PortCounters,
}

impl<B: Backend> Bnx2xPort<B> {
    /// Bring the rings up: allocate and map every rx buffer. A mapping failure leaves the
    /// ring short (counted), like "was only able to allocate N rx skbs".
    pub fn open(mut backend: B, mut dma: DmaApi, cfg: PortConfig) -> Result<Self, DmaError> {
        dma.attach(&mut backend)?;
        let mut port = Bnx2xPort {
            backend,
            dma,
            rx: VecDeque::with_capacity(cfg.rx_bds as usize),
            tx: VecDeque::new(),
            tx_bds_used: vec![0; cfg.tx_queues.max(1) as usize],
            cfg,
            counters: PortCounters::default(),
        };
        for _ in 0..port.cfg.rx_bds {
            match port.new_rx_buffer() {
                Ok(slot) => port.rx.push_back(slot),
                Err(e) if e.is_pool_full() => {
                    port.counters.rx_ring_short = port.cfg.rx_bds as u64 - port.rx.len() as u64;
                    tracing::warn!(
                        target: "nicqual::bnx2x",
                        "{}: was only able to allocate {} rx skbs on queue[0]",
                        port.dma.device().bdf,
                        port.rx.len()
                    );
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(port)
    }

    pub fn config(&self) -> &PortConfig {
        &self.cfg
    }

    fn new_rx_buffer(&mut self) -> Result<RxSlot, DmaError> {
        let (len, align) = self.cfg.rx_alloc();
        let buf = self.dma.alloc_buffer(&mut self.backend, len, align)?;
        let pad = hw::NET_SKB_PAD as usize;
        match self.dma.map_single(&mut self.backend, &buf, pad, self.cfg.rx_buf_size(), DmaDirection::FromDevice) {
            Ok(map) => Ok(RxSlot { buf, map }),
            Err(e) => {
                let _ = self.dma.free_buffer(buf);
                Err(e)
            }
        }
    }

    /// Rx buffers posted.
    pub fn rx_posted(&self) -> usize {
        self.rx.len()
    }

    /// Device address of the buffer at the rx consumer (what the rx BD holds).
    pub fn rx_head_addr(&self) -> Option<u64> {
        self.rx.front().map(|s| s.map.dma_addr)
    }

    /// Process the completion for the buffer at the consumer. The device has written the
    /// frame into it; `cqe` is what it wrote to the completion queue.
    pub fn rx_complete(&mut self, cqe: &FastPathRxCqe) -> RxOutcome {
        let Some(head) = self.rx.pop_front() else { return RxOutcome::Empty };
        let done = match validate_cqe(cqe, self.cfg.mtu, false) {
            Ok(d) => d,
            Err(e) => {
                self.counters.rx_bad_cqe += 1;
                self.rx.push_back(head);
                return RxOutcome::BadCqe(e);
            }
        };
        if done.phy_error {
            self.counters.rx_phy_errors += 1;
            self.rx.push_back(head);
            return RxOutcome::Delivered { len: 0 };
        }
        // Replacement first: if it cannot be mapped, the filled buffer goes back on the ring.
        match self.new_rx_buffer() {
            Ok(fresh) => {
                self.rx.push_back(fresh);
                let _ = self.dma.unmap(&mut self.backend, head.map);
                let _ = self.dma.free_buffer(head.buf);
                self.counters.rx_frames += 1;
                self.counters.rx_bytes += done.len as u64;
                RxOutcome::Delivered { len: done.len }
            }
            Err(e) => {
                self.counters.rx_map_errors += 1;
                self.rx.push_back(head);
                RxOutcome::Dropped(e)
            }
        }
    }

    /// BDs a packet needs: start + parse + one per fragment.
    fn bds_for(skb: &TxSkb) -> u32 {
        2 + skb.frags.len() as u32
    }

    /// Queue `skb` on `queue`: map the linear part and every fragment; on any failure undo
    /// the mappings made so far and drop the packet.
    pub fn tx_submit(&mut self, queue: usize, skb: &TxSkb) -> TxOutcome {
        let q = queue % self.tx_bds_used.len();
        let need = Self::bds_for(skb);
        let stop_at = hw::MAX_SKB_FRAGS + 4;
        let used = self.tx_bds_used.get(q).copied().unwrap_or(u32::MAX);
        if self.cfg.tx_bds_per_queue.saturating_sub(used) < need + stop_at {
            self.counters.tx_busy += 1;
            return TxOutcome::Busy;
        }
        let mut parts: Vec<(CpuBuffer, DmaMapping)> = Vec::with_capacity(1 + skb.frags.len());
        let pieces = std::iter::once((skb.linear, true)).chain(skb.frags.iter().map(|&f| (f, false)));
        for (len, linear) in pieces {
            if len == 0 {
                continue;
            }
            // Linear data sits in a kmalloc object after headroom; fragments are pages.
            let (off, alloc, align) = if linear {
                let a = len + 64;
                (64, a, (a as u64).next_power_of_two().max(64))
            } else {
                (0, len, 4096)
            };
            let r = self.dma.alloc_buffer(&mut self.backend, alloc, align).and_then(|buf| {
                match self.dma.map_single(&mut self.backend, &buf, off, len, DmaDirection::ToDevice) {
                    Ok(m) => Ok((buf, m)),
                    Err(e) => {
                        let _ = self.dma.free_buffer(buf);
                        Err(e)
                    }
                }
            });
            match r {
                Ok(p) => parts.push(p),
                Err(e) => {
                    for (buf, m) in parts {
                        let _ = self.dma.unmap(&mut self.backend, m);
                        let _ = self.dma.free_buffer(buf);
                    }
                    self.counters.tx_map_errors += 1;
                    return TxOutcome::Dropped(e);
                }
            }
        }
        if let Some(u) = self.tx_bds_used.get_mut(q) {
            *u += need;
        }
        self.tx.push_back(TxPacket { queue: q, bds: need, parts });
        self.counters.tx_packets += 1;
        TxOutcome::Sent
    }

    /// Packets in flight.
    pub fn tx_in_flight(&self) -> usize {
        self.tx.len()
    }

    /// Complete the in-flight packet at position `i` (0 = oldest): unmap and free it.
    pub fn tx_complete(&mut self, i: usize) -> bool {
        let Some(p) = self.tx.remove(i) else { return false };
        if let Some(u) = self.tx_bds_used.get_mut(p.queue) {
            *u = u.saturating_sub(p.bds);
        }
        for (buf, m) in p.parts {
            let _ = self.dma.unmap(&mut self.backend, m);
            let _ = self.dma.free_buffer(buf);
        }
        true
    }

    /// Close: complete every transmit, unmap every rx buffer, and report the DMA balance.
    pub fn close(mut self) -> (CheckReport, B) {
        while self.tx_complete(0) {}
        while let Some(s) = self.rx.pop_front() {
            let _ = self.dma.unmap(&mut self.backend, s.map);
            let _ = self.dma.free_buffer(s.buf);
        }
        let r = self.dma.teardown(&mut self.backend);
        (r, self.backend)
    }
}

#[cfg(test)]
#[path = "stand_in_tests.rs"]
mod tests;
