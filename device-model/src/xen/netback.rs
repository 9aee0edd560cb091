//! The network back end (netback) in dom0, at shared-ring and grant level.
//!
//! It maps the front end's TX and RX ring pages through their grants, consumes TX
//! requests (copying each packet out of the guest's granted page with `GNTTABOP_copy`),
//! and delivers packets for the guest by consuming RX requests:
//!
//! * **copy** (`request-rx-copy=1`): `GNTTABOP_copy` into the page the request's grant
//!   names; a failed copy (for instance a grant whose frame is `ffffffff`) becomes a
//!   response with `status = -1`, as mainline netback writes `op->status`;
//! * **flip** (classic netback): the packet goes into a fresh dom0 frame that is then
//!   transferred to the guest (`GNTTABOP_transfer`). Each flip costs dom0 a frame from
//!   Xen's heap, taken through a cache of [`MAX_MFN_ALLOC`] frames (`check_mfn`); when the
//!   heap cannot refill it, netback logs `xen_net: Memory squeeze in netback driver.`
//!   (rate-limited), keeps the packet queued and arms its one-second timer; a packet
//!   queued since, or the timer, retries. The mechanism and its sources: [`super::flip`].
//!
//! Index arithmetic is the shared [`SharedRing`] mechanism.

use super::flip::{FrameHeap, MfnCache, SqueezeState};
pub use super::flip::{MAX_MFN_ALLOC, SQUEEZE_BACKOFF_NS};
use super::{CopyPtr, Hypervisor, Mfn, XenStore, store};
use crate::ring::SharedRing;
pub use nicqual_hw::xen_netif::RxMode;
use nicqual_hw::xen_netif::{
    self as nif, DomId, GrantRef, PAGE_SIZE, RX_SLOT_LEN, RxRequest, RxResponse, TX_SLOT_LEN, TxRequest, TxResponse,
    gntst, rsp, sring, xenbus_state, xs,
};
use std::collections::VecDeque;
use zerocopy::little_endian::{I16, U16};
use zerocopy::{FromBytes, IntoBytes};

/// Packets netback queues for a guest whose RX ring is empty before dropping
/// (`netif_queue_length` default in classic netback is 32; \[inference\] the scenario only
/// needs a bound).
pub const RX_QUEUE_LIMIT: usize = 256;

/// Hostile or broken responses the back end can write (tests of the front end's defence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFault {
    /// RX response id replaced by `id` (out of range or never posted).
    RxId { id: u16 },
    /// RX response status forced to `status` (negative = error, large = oversized).
    RxStatus { status: i16 },
    /// RX response offset forced to `offset` (offset + size beyond the page).
    RxOffset { offset: u16 },
    /// RX response flags forced to `flags` (e.g. more_data / extra_info nobody negotiated).
    RxFlags { flags: u16 },
    /// Every RX response is written twice (a duplicated id).
    RxDuplicate,
    /// `rsp_prod` is advanced by `extra` beyond the responses actually written.
    RxRspProdRunaway { extra: u32 },
    /// TX response id replaced by `id`.
    TxId { id: u16 },
    /// TX response status forced.
    TxStatus { status: i16 },
}

/// Counters of the back end.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetbackStats {
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub rx_packets: u64,
    /// RX responses with a negative status (failed copy or transfer).
    pub rx_errors: u64,
    /// Packets dropped because the guest's queue overflowed.
    pub rx_dropped: u64,
    /// `Memory squeeze in netback driver.` events.
    pub squeezes: u64,
    /// Event-channel notifications sent to the front end.
    pub notifications: u64,
    /// Front-end kicks received.
    pub kicks: u64,
}

#[derive(Debug, Clone, Copy)]
struct Rings {
    tx_mfn: Mfn,
    rx_mfn: Mfn,
    tx_gref: GrantRef,
    rx_gref: GrantRef,
}

/// Why the back end refused to connect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("{key}: missing or malformed in {dir}")]
    MissingKey { dir: String, key: &'static str },
    #[error("ring grant {gref} of d{dom} could not be mapped (GNTST {status})")]
    RingMap { dom: DomId, gref: GrantRef, status: i16 },
    #[error("frontend does not support rx-copy and this host cannot flip")]
    NoRxMode,
}

/// The back end of one vif.
#[derive(Debug)]
pub struct Netback {
    backend: DomId,
    frontend: DomId,
    vif: u32,
    rings: Option<Rings>,
    mode: RxMode,
    ring: SharedRing,
    tx_req_cons: u32,
    tx_rsp_prod_pvt: u32,
    rx_req_cons: u32,
    rx_rsp_prod_pvt: u32,
    rx_queue: VecDeque<Vec<u8>>,
    wire: Vec<Vec<u8>>,
    flip_cache: MfnCache<Mfn>,
    /// dom0's own bounce page for copies (allocated once, like netback's pre-allocated pages).
    staging: Option<Mfn>,
    squeeze: SqueezeState,
    /// A packet was queued since the last run (`netif_be_start_xmit` schedules the tasklet).
    rx_scheduled: bool,
    log: Vec<String>,
    fault: Option<ResponseFault>,
    pub stats: NetbackStats,
}

impl Netback {
    pub fn new(backend: DomId, frontend: DomId, vif: u32) -> Self {
        Netback {
            backend,
            frontend,
            vif,
            rings: None,
            mode: RxMode::Copy,
            ring: SharedRing::new(nif::RX_RING_SIZE).expect("256 is a power of two"),
            tx_req_cons: 0,
            tx_rsp_prod_pvt: 0,
            rx_req_cons: 0,
            rx_rsp_prod_pvt: 0,
            rx_queue: VecDeque::new(),
            wire: Vec::new(),
            flip_cache: MfnCache::default(),
            staging: None,
            squeeze: SqueezeState::default(),
            rx_scheduled: false,
            log: Vec::new(),
            fault: None,
            stats: NetbackStats::default(),
        }
    }

    pub fn backend_dir(&self) -> String {
        store::backend_dir(self.backend, self.frontend, self.vif)
    }

    pub fn frontend_dir(&self) -> String {
        store::frontend_dir(self.frontend, self.vif)
    }

    /// Advertise this host's features (what netback writes at probe).
    pub fn advertise(&self, st: &mut XenStore, version: &super::HostVersion) {
        let dir = self.backend_dir();
        st.write(&format!("{dir}/{}", xs::FEATURE_RX_COPY), 1);
        match version.advertise_rx_flip {
            Some(v) => st.write(&format!("{dir}/{}", xs::FEATURE_RX_FLIP), u32::from(v)),
            None => st.remove(&format!("{dir}/{}", xs::FEATURE_RX_FLIP)),
        }
        st.write(&format!("{dir}/{}", xs::FEATURE_SG), 1);
        st.write(&format!("{dir}/{}", xs::STATE), xenbus_state::INIT_WAIT);
    }

    pub fn mode(&self) -> RxMode {
        self.mode
    }

    pub fn is_connected(&self) -> bool {
        self.rings.is_some()
    }

    /// dom0 kernel log lines of this back end.
    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// The squeezes: failed flip allocations, the rate-limited lines with their times, the
    /// timer.
    pub fn squeeze_state(&self) -> &SqueezeState {
        &self.squeeze
    }

    /// Packets the guest sent, in order.
    pub fn take_wire(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.wire)
    }

    /// Packets waiting for RX requests.
    pub fn rx_queued(&self) -> usize {
        self.rx_queue.len()
    }

    pub fn set_fault(&mut self, f: Option<ResponseFault>) {
        self.fault = f;
    }

    /// Allocate dom0's staging page now (at back-end load); false if the heap is empty.
    pub fn prepare(&mut self, hv: &mut Hypervisor) -> bool {
        if self.staging.is_none() {
            self.staging = hv.alloc_backend_frame(self.backend);
        }
        self.staging.is_some()
    }

    /// Frames held in the flip cache.
    pub fn flip_cache_len(&self) -> usize {
        self.flip_cache.len()
    }

    /// Connect to the front end: read its ring references and rx mode, map the rings.
    pub fn connect(&mut self, hv: &mut Hypervisor, st: &mut XenStore) -> Result<RxMode, ConnectError> {
        self.disconnect(hv);
        let fe = self.frontend_dir();
        let key = |st: &XenStore, k: &'static str| {
            st.read_u32(&format!("{fe}/{k}")).ok_or(ConnectError::MissingKey { dir: fe.clone(), key: k })
        };
        let tx_gref = key(st, xs::TX_RING_REF)?;
        let rx_gref = key(st, xs::RX_RING_REF)?;
        let copy = st.read_u32(&format!("{fe}/{}", xs::REQUEST_RX_COPY)) == Some(1);
        let mode = match (copy, hv.version().can_flip) {
            (true, _) => RxMode::Copy,
            (false, true) => RxMode::Flip,
            (false, false) => {
                self.log.push(format!("netback: vif{}.{}: frontend does not support rx-copy", self.frontend, self.vif));
                return Err(ConnectError::NoRxMode);
            }
        };
        let map = |hv: &mut Hypervisor, gref| {
            hv.grant_map(self.backend, self.frontend, gref).map_err(|status| ConnectError::RingMap {
                dom: self.frontend,
                gref,
                status,
            })
        };
        let tx_mfn = map(hv, tx_gref)?;
        let rx_mfn = match map(hv, rx_gref) {
            Ok(m) => m,
            Err(e) => {
                hv.grant_unmap(self.frontend, tx_gref);
                return Err(e);
            }
        };
        self.rings = Some(Rings { tx_mfn, rx_mfn, tx_gref, rx_gref });
        self.mode = mode;
        // A fresh connection starts from the indices the front end initialised.
        self.tx_req_cons = 0;
        self.tx_rsp_prod_pvt = 0;
        self.rx_req_cons = 0;
        self.rx_rsp_prod_pvt = 0;
        st.write(&format!("{}/{}", self.backend_dir(), xs::STATE), xenbus_state::CONNECTED);
        Ok(mode)
    }

    /// Drop the ring mappings (front end closing, or the domain went away).
    pub fn disconnect(&mut self, hv: &mut Hypervisor) {
        if let Some(r) = self.rings.take() {
            hv.grant_unmap(self.frontend, r.tx_gref);
            hv.grant_unmap(self.frontend, r.rx_gref);
        }
        for m in self.flip_cache.drain() {
            hv.free_backend_frame(m);
        }
    }

    /// A packet from the wire (or another guest) for this vif.
    pub fn queue_rx(&mut self, pkt: Vec<u8>) {
        if self.rx_queue.len() >= RX_QUEUE_LIMIT {
            self.stats.rx_dropped += 1;
        } else {
            self.rx_queue.push_back(pkt);
            self.rx_scheduled = true;
        }
    }

    fn rd32(hv: &Hypervisor, mfn: Mfn, off: usize) -> u32 {
        let mut b = [0u8; 4];
        if hv.frame_read(mfn, off, &mut b) { u32::from_le_bytes(b) } else { 0 }
    }

    fn wr32(hv: &mut Hypervisor, mfn: Mfn, off: usize, v: u32) {
        hv.frame_write(mfn, off, &v.to_le_bytes());
    }

    /// The front end kicked the event channel (or a timer fired): do all the work there is.
    /// Returns true when the front end should be notified.
    pub fn kick(&mut self, hv: &mut Hypervisor, now_ns: u64) -> bool {
        self.stats.kicks += 1;
        let Some(r) = self.rings else { return false };
        let tx = self.process_tx(hv, r);
        let rx = self.process_rx(hv, r, now_ns);
        let notify = tx || rx;
        if notify {
            self.stats.notifications += 1;
        }
        notify
    }

    fn process_tx(&mut self, hv: &mut Hypervisor, r: Rings) -> bool {
        let req_prod = Self::rd32(hv, r.tx_mfn, sring::REQ_PROD);
        let n = self.ring.unconsumed_requests(req_prod, self.tx_req_cons, self.tx_rsp_prod_pvt);
        if n == 0 {
            return false;
        }
        for _ in 0..n {
            let slot = self.ring.slot(self.tx_req_cons) as usize;
            let mut b = [0u8; TX_SLOT_LEN];
            hv.frame_read(r.tx_mfn, sring::ENTRIES + slot * TX_SLOT_LEN, &mut b);
            self.tx_req_cons = self.tx_req_cons.wrapping_add(1);
            let req = TxRequest::read_from_bytes(&b).expect("slot is 12 bytes");
            let (off, size) = (req.offset.get(), req.size.get());
            let mut status = rsp::OKAY;
            if usize::from(off) + usize::from(size) > PAGE_SIZE || size == 0 {
                status = rsp::ERROR;
            } else {
                let mut page = vec![0u8; usize::from(size)];
                self.prepare(hv);
                match self.staging {
                    Some(mfn) => {
                        let st = hv.grant_copy(
                            self.backend,
                            CopyPtr::Gref { dom: self.frontend, gref: req.gref.get(), offset: off },
                            CopyPtr::Local { mfn, offset: 0 },
                            size,
                        );
                        if st == gntst::OKAY {
                            hv.frame_read(mfn, 0, &mut page);
                            self.wire.push(page);
                        } else {
                            status = rsp::ERROR;
                        }
                    }
                    None => status = rsp::DROPPED,
                }
            }
            if status == rsp::OKAY {
                self.stats.tx_packets += 1;
            } else {
                self.stats.tx_errors += 1;
            }
            let mut resp = TxResponse { id: req.id, status: I16::new(status) };
            match self.fault {
                Some(ResponseFault::TxId { id }) => resp.id = U16::new(id),
                Some(ResponseFault::TxStatus { status }) => resp.status = I16::new(status),
                _ => {}
            }
            let slot = self.ring.slot(self.tx_rsp_prod_pvt) as usize;
            hv.frame_write(r.tx_mfn, sring::ENTRIES + slot * TX_SLOT_LEN, resp.as_bytes());
            self.tx_rsp_prod_pvt = self.tx_rsp_prod_pvt.wrapping_add(1);
        }
        self.push_responses(hv, r.tx_mfn, self.tx_rsp_prod_pvt, 0)
    }

    /// Publish `new` as rsp_prod; true when the front end asked to be told.
    fn push_responses(&mut self, hv: &mut Hypervisor, mfn: Mfn, new: u32, extra: u32) -> bool {
        let old = Self::rd32(hv, mfn, sring::RSP_PROD);
        let new = new.wrapping_add(extra);
        Self::wr32(hv, mfn, sring::RSP_PROD, new);
        let event = Self::rd32(hv, mfn, sring::RSP_EVENT);
        SharedRing::need_notify(old, new, event)
    }

    /// Take a frame for a flip: from the cache, refilled from Xen's heap (`check_mfn`).
    fn take_flip_frame(&mut self, hv: &mut Hypervisor) -> Option<Mfn> {
        let mut heap = Dom0Heap { hv, dom: self.backend };
        if self.flip_cache.check(&mut heap, 1) { self.flip_cache.take() } else { None }
    }

    fn process_rx(&mut self, hv: &mut Hypervisor, r: Rings, now_ns: u64) -> bool {
        // After a squeeze the tasklet runs again only for a newly queued packet or when
        // `net_timer` expires (`net_alarm`).
        let timer = self.squeeze.fire_timer(now_ns);
        if self.squeeze.timer_pending(now_ns) && !self.rx_scheduled && !timer {
            return false;
        }
        self.rx_scheduled = false;
        let mut wrote = 0u32;
        while let Some(pkt) = self.rx_queue.pop_front() {
            let req_prod = Self::rd32(hv, r.rx_mfn, sring::REQ_PROD);
            if self.ring.unconsumed_requests(req_prod, self.rx_req_cons, self.rx_rsp_prod_pvt) == 0 {
                self.rx_queue.push_front(pkt);
                break;
            }
            let mut flip_frame = None;
            if self.mode == RxMode::Flip {
                match self.take_flip_frame(hv) {
                    Some(m) => flip_frame = Some(m),
                    None => {
                        // Classic netback: print (rate-limited), arm the 1 s timer, requeue
                        // at the head, stop.
                        self.stats.squeezes += 1;
                        let before = self.squeeze.log.len();
                        self.squeeze.squeeze(now_ns);
                        self.log.extend(self.squeeze.log.iter().skip(before).map(|l| l.text.clone()));
                        self.rx_queue.push_front(pkt);
                        break;
                    }
                }
            }
            let slot = self.ring.slot(self.rx_req_cons) as usize;
            let mut b = [0u8; RX_SLOT_LEN];
            hv.frame_read(r.rx_mfn, sring::ENTRIES + slot * RX_SLOT_LEN, &mut b);
            self.rx_req_cons = self.rx_req_cons.wrapping_add(1);
            let req = RxRequest::read_from_bytes(&b).expect("slot is 8 bytes");
            let len = pkt.len().min(PAGE_SIZE) as u16;
            let status = match flip_frame {
                None => {
                    // Copy: stage the packet in a dom0 frame, then copy into the grant.
                    self.prepare(hv);
                    match self.staging {
                        Some(tmp) => {
                            hv.frame_write(tmp, 0, &pkt[..usize::from(len)]);
                            let st = hv.grant_copy(
                                self.backend,
                                CopyPtr::Local { mfn: tmp, offset: 0 },
                                CopyPtr::Gref { dom: self.frontend, gref: req.gref.get(), offset: 0 },
                                len,
                            );
                            if st == gntst::OKAY { len as i16 } else { st }
                        }
                        None => rsp::DROPPED,
                    }
                }
                Some(mfn) => {
                    hv.frame_write(mfn, 0, &pkt[..usize::from(len)]);
                    let st = hv.grant_transfer(self.backend, mfn, self.frontend, req.gref.get());
                    if st == gntst::OKAY {
                        len as i16
                    } else {
                        hv.free_backend_frame(mfn);
                        rsp::ERROR
                    }
                }
            };
            if status < 0 {
                self.stats.rx_errors += 1;
            } else {
                self.stats.rx_packets += 1;
            }
            let mut resp = RxResponse { id: req.id, offset: U16::new(0), flags: U16::new(0), status: I16::new(status) };
            match self.fault {
                Some(ResponseFault::RxId { id }) => resp.id = U16::new(id),
                Some(ResponseFault::RxStatus { status }) => resp.status = I16::new(status),
                Some(ResponseFault::RxOffset { offset }) => resp.offset = U16::new(offset),
                Some(ResponseFault::RxFlags { flags }) => resp.flags = U16::new(flags),
                _ => {}
            }
            let copies = if self.fault == Some(ResponseFault::RxDuplicate) { 2 } else { 1 };
            for _ in 0..copies {
                let slot = self.ring.slot(self.rx_rsp_prod_pvt) as usize;
                hv.frame_write(r.rx_mfn, sring::ENTRIES + slot * RX_SLOT_LEN, resp.as_bytes());
                self.rx_rsp_prod_pvt = self.rx_rsp_prod_pvt.wrapping_add(1);
                wrote += 1;
            }
        }
        if wrote == 0 {
            return false;
        }
        let extra = match self.fault {
            Some(ResponseFault::RxRspProdRunaway { extra }) => extra,
            _ => 0,
        };
        self.push_responses(hv, r.rx_mfn, self.rx_rsp_prod_pvt, extra)
    }
}

/// Xen's heap as `XENMEM_increase_reservation` gives it to the back-end domain.
struct Dom0Heap<'a> {
    hv: &'a mut Hypervisor,
    dom: DomId,
}

impl FrameHeap<Mfn> for Dom0Heap<'_> {
    fn increase_reservation(&mut self, want: usize) -> Vec<Mfn> {
        (0..want).map_while(|_| self.hv.alloc_backend_frame(self.dom)).collect()
    }
}
