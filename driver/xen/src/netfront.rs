//! The network front end (netfront) of a PV guest, with two resume orders:
//!
//! * [`ResumeOrder::Legacy`] — what 2.6.18-era netfront did in `network_connect`: keep the
//!   RX buffers that were outstanding at save time, re-grant them in place with
//!   `pfn_to_mfn(pfn)` and publish them on the new ring, and only then allocate new buffers.
//!   A page a flipping front end had given to Xen has no machine frame on the new host, so
//!   its grant names frame `ffffffff`, and every copy into it fails.
//! * [`ResumeOrder::Nicqual`] — reclaim every outstanding request first; renegotiate the
//!   receive mode and refuse one the back end cannot serve; allocate, back and grant every
//!   buffer, read each grant entry back and audit it, and only then publish the requests.
//!
//! In both orders every response is validated before use: the id must name an outstanding
//! request, `status < 0` is an error (never a length: -1 printed as unsigned is the
//! field's `size: 4294967295`), and `offset + status` must fit in the page. The orders
//! differ in what they do about a failed buffer: legacy re-posts the same buffer and grant
//! (`xennet_move_rx_slot`), nicqual re-backs and re-grants it.

use super::{Pfn, PlatformError, XenGuest};
use crate::ring::FrontRing;
use nicqual_hw::xen_netif::{
    self as nif, DOM0, DomId, GrantEntryV1, GrantRef, INVALID_FRAME, PAGE_SIZE, RX_SLOT_LEN, RxMode, RxRequest,
    RxResponse, TX_SLOT_LEN, TxRequest, TxResponse, gtf, rsp, sring, xenbus_state, xs,
};
use std::collections::VecDeque;
use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, IntoBytes};

/// The ring arithmetic of both 256-entry rings.
// Evaluated at compile time: a non-power-of-two size fails the build, never a run.
#[allow(clippy::panic)]
const RING: FrontRing = match FrontRing::new(nif::RX_RING_SIZE) {
    Some(r) => r,
    None => panic!("RX_RING_SIZE is not a power of two"),
};
const _: () = assert!(nif::RX_RING_SIZE == nif::TX_RING_SIZE);
/// Number of request ids (one per ring slot).
const IDS: u16 = nif::RX_RING_SIZE as u16;

/// Grant references Linux keeps for the toolstack (`NR_RESERVED_ENTRIES`).
const RESERVED_GREFS: u32 = 8;

/// The order of work on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResumeOrder {
    /// Re-grant surviving buffers in place and publish them before allocating (the bug).
    Legacy,
    /// Reclaim, renegotiate, allocate + grant + audit, then publish.
    Nicqual,
}

/// How the front end picks a receive mode from the back end's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RxPreference {
    /// RHEL 4/5 guests: flip unless the back end says `feature-rx-flip=0` and offers copy.
    PreferFlip,
    /// Mainline: copy, or refuse to connect.
    CopyOnly,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct NetfrontConfig {
    pub order: ResumeOrder,
    pub preference: RxPreference,
    /// RX buffers kept posted (at most the ring size).
    pub rx_target: u32,
}

impl Default for NetfrontConfig {
    fn default() -> Self {
        NetfrontConfig { order: ResumeOrder::Nicqual, preference: RxPreference::CopyOnly, rx_target: nif::RX_RING_SIZE }
    }
}

/// Typed front-end errors. Each names the ring, id, grant or key involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetfrontError {
    #[error("rx response id {id}: {why}")]
    BadRxId { id: u16, why: &'static str },
    #[error("tx response id {id}: {why}")]
    BadTxId { id: u16, why: &'static str },
    #[error("rx response id {id}: status {status} is an error (as unsigned: {}), not a length", *status as i32 as u32)]
    RxStatus { id: u16, status: i16 },
    #[error(
        "rx response id {id}: flags {flags:#x} ask for more_data/extra_info, which this front end did not negotiate"
    )]
    RxFlags { id: u16, flags: u16 },
    #[error("rx response id {id}: size {size} is shorter than an Ethernet header ({} bytes)", nif::ETH_HLEN)]
    RxRunt { id: u16, size: u16 },
    #[error("rx response id {id}: offset {offset} + size {size} exceeds the {PAGE_SIZE}-byte page")]
    RxOversize { id: u16, offset: u16, size: u16 },
    #[error("{ring} ring: rsp_prod {rsp_prod} is {ahead} responses ahead of rsp_cons {rsp_cons} (ring of {size})")]
    RingRunaway { ring: &'static str, rsp_prod: u32, rsp_cons: u32, ahead: u32, size: u32 },
    #[error("grant {gref} for rx id {id} fails audit: {why}")]
    GrantAudit { gref: GrantRef, id: u16, why: String },
    #[error("back end cannot serve this front end: {why}")]
    Refused { why: String },
    #[error("no free grant reference (table of {entries})")]
    GrantsExhausted { entries: u32 },
    #[error("tx ring full ({size} requests outstanding)")]
    TxRingFull { size: u32 },
    #[error("packet of {len} bytes does not fit one page")]
    TxTooBig { len: usize },
    #[error("not connected")]
    NotConnected,
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

/// Counters (all monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetfrontStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    /// RX responses whose status was negative.
    pub rx_status_errors: u64,
    /// RX responses whose offset + size overran the page.
    pub rx_oversize: u64,
    /// RX responses with flags this front end did not negotiate (more_data, extra_info).
    pub rx_bad_flags: u64,
    /// RX responses shorter than an Ethernet header (a slot the back end never wrote reads as
    /// our own request: status = gref >> 16, usually 0).
    pub rx_runts: u64,
    /// Responses naming an id that is out of range or not outstanding.
    pub bad_ids: u64,
    /// Times the response producer ran more than a ring ahead.
    pub ring_runaway: u64,
    /// Requests reclaimed on resume.
    pub reclaimed_rx: u64,
    pub reclaimed_tx: u64,
    /// Reclaimed RX pages that had no machine frame and were backed again.
    pub rebacked_pages: u64,
    /// TX packets re-sent after resume (nicqual) or dropped (legacy).
    pub tx_resent: u64,
    pub tx_dropped_on_resume: u64,
    /// Grant entries that failed the audit before publishing.
    pub audit_rejects: u64,
    /// Failed buffers put back on the ring as they were (legacy `xennet_move_rx_slot`).
    pub requeued_as_is: u64,
    /// Failed buffers re-backed and re-granted before going back on the ring.
    pub requeued_regranted: u64,
    /// Posted buffers whose response never came back under their id, taken back.
    pub orphans_reclaimed: u64,
    /// RX buffers that could not be allocated (refill deferred).
    pub alloc_failures: u64,
    pub connects: u64,
    /// Reconnects after the back end's response producer ran past what was published.
    pub reconnects: u64,
}

/// One line of the guest's kernel log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    pub at_ns: u64,
    pub text: String,
}

#[derive(Debug, Clone, Copy)]
struct RxSlot {
    pfn: Pfn,
    gref: GrantRef,
    /// The request for this buffer is on the ring.
    posted: bool,
}

#[derive(Debug, Clone)]
struct TxSlot {
    pfn: Pfn,
    gref: GrantRef,
    pkt: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct RingPages {
    tx_pfn: Pfn,
    rx_pfn: Pfn,
    tx_gref: GrantRef,
    rx_gref: GrantRef,
}

/// The front end of vif 0.
#[derive(Debug)]
pub struct Netfront {
    cfg: NetfrontConfig,
    backend: DomId,
    ring: FrontRing,
    rings: Option<RingPages>,
    mode: Option<RxMode>,
    tx_req_prod_pvt: u32,
    tx_rsp_cons: u32,
    rx_req_prod_pvt: u32,
    rx_rsp_cons: u32,
    rx: Vec<Option<RxSlot>>,
    tx: Vec<Option<TxSlot>>,
    free_grefs: Vec<GrantRef>,
    grefs_total: u32,
    /// TX packets to (re)send before new ones.
    tx_backlog: VecDeque<Vec<u8>>,
    received: Vec<Vec<u8>>,
    log: Vec<LogLine>,
    errors: Vec<NetfrontError>,
    /// A response producer was caught lying: legacy stops using the device (as hardened
    /// Linux netfront does), nicqual reconnects.
    broken: bool,
    pub stats: NetfrontStats,
}

/// Errors kept for the report (older ones are counted in `stats`).
const ERROR_LOG_CAP: usize = 256;

impl Netfront {
    pub fn new(cfg: NetfrontConfig) -> Self {
        let ring = RING;
        Netfront {
            cfg: NetfrontConfig { rx_target: cfg.rx_target.clamp(1, nif::RX_RING_SIZE), ..cfg },
            backend: DOM0,
            ring,
            rings: None,
            mode: None,
            tx_req_prod_pvt: 0,
            tx_rsp_cons: 0,
            rx_req_prod_pvt: 0,
            rx_rsp_cons: 0,
            rx: vec![None; nif::RX_RING_SIZE as usize],
            tx: vec![None; nif::TX_RING_SIZE as usize],
            free_grefs: Vec::new(),
            grefs_total: 0,
            tx_backlog: VecDeque::new(),
            received: Vec::new(),
            log: Vec::new(),
            errors: Vec::new(),
            broken: false,
            stats: NetfrontStats::default(),
        }
    }

    pub fn config(&self) -> NetfrontConfig {
        self.cfg
    }

    pub fn mode(&self) -> Option<RxMode> {
        self.mode
    }

    pub fn log(&self) -> &[LogLine] {
        &self.log
    }

    pub fn errors(&self) -> &[NetfrontError] {
        &self.errors
    }

    /// True once the device was given up (legacy order after a lying back end).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Packets received since the last call.
    pub fn take_received(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.received)
    }

    /// RX requests currently on the ring.
    pub fn rx_posted(&self) -> u32 {
        self.rx.iter().flatten().filter(|s| s.posted).count() as u32
    }

    fn say(&mut self, g: &impl XenGuest, text: String) {
        if self.log.len() < 4096 {
            self.log.push(LogLine { at_ns: g.now_ns(), text });
        }
    }

    fn fail(&mut self, e: NetfrontError) {
        if self.errors.len() < ERROR_LOG_CAP {
            self.errors.push(e);
        }
    }

    fn fe_dir(g: &impl XenGuest) -> String {
        format!("/local/domain/{}/device/vif/0", g.domid())
    }

    fn be_dir(&self, g: &impl XenGuest) -> String {
        format!("/local/domain/{}/backend/vif/{}/0", self.backend, g.domid())
    }

    fn rx_get(&self, id: u16) -> Option<RxSlot> {
        self.rx.get(usize::from(id)).copied().flatten()
    }

    fn rx_set(&mut self, id: u16, v: Option<RxSlot>) {
        if let Some(e) = self.rx.get_mut(usize::from(id)) {
            *e = v;
        }
    }

    fn tx_take(&mut self, id: u16) -> Option<TxSlot> {
        self.tx.get_mut(usize::from(id)).and_then(Option::take)
    }

    // ----- grants -------------------------------------------------------------------------

    fn reset_grefs(&mut self, g: &impl XenGuest) {
        self.grefs_total = g.gnttab_entries();
        self.free_grefs = (RESERVED_GREFS..self.grefs_total).rev().collect();
    }

    fn claim_gref(&mut self) -> Result<GrantRef, NetfrontError> {
        self.free_grefs.pop().ok_or(NetfrontError::GrantsExhausted { entries: self.grefs_total })
    }

    fn release_gref(&mut self, gref: GrantRef) {
        if gref >= RESERVED_GREFS && gref < self.grefs_total && !self.free_grefs.contains(&gref) {
            self.free_grefs.push(gref);
        }
    }

    fn grant_access(&self, g: &mut impl XenGuest, gref: GrantRef, frame: u32, ro: bool) -> Result<(), NetfrontError> {
        let flags = gtf::PERMIT_ACCESS | if ro { gtf::READONLY } else { 0 };
        let e = GrantEntryV1 { flags: U16::new(flags), domid: U16::new(self.backend), frame: U32::new(frame) };
        Ok(g.gnttab_write(gref, e)?)
    }

    fn grant_transfer(&self, g: &mut impl XenGuest, gref: GrantRef, pfn: Pfn) -> Result<(), NetfrontError> {
        let e =
            GrantEntryV1 { flags: U16::new(gtf::ACCEPT_TRANSFER), domid: U16::new(self.backend), frame: U32::new(pfn) };
        Ok(g.gnttab_write(gref, e)?)
    }

    /// End foreign access; false if the back end still holds it ("Grant still in use").
    fn end_access(&mut self, g: &mut impl XenGuest, gref: GrantRef) -> bool {
        if g.gnttab_in_use(gref) {
            self.say(g, format!("netfront: Grant still in use by backend domain (gref {gref})"));
            return false;
        }
        let _ = g.gnttab_write(gref, GrantEntryV1::default());
        true
    }

    /// Read back the entry for RX buffer `id` and check it before the request is published.
    fn audit(&self, g: &impl XenGuest, id: u16, s: &RxSlot, mode: RxMode) -> Result<(), NetfrontError> {
        let bad = |why: String| NetfrontError::GrantAudit { gref: s.gref, id, why };
        let e = g.gnttab_read(s.gref)?;
        let (flags, domid, frame) = (e.flags.get(), e.domid.get(), e.frame.get());
        if domid != self.backend {
            return Err(bad(format!("granted to d{domid}, back end is d{}", self.backend)));
        }
        match mode {
            RxMode::Copy => {
                if flags & gtf::TYPE_MASK != gtf::PERMIT_ACCESS || flags & gtf::READONLY != 0 {
                    return Err(bad(format!("flags {flags:#x} are not writable permit-access")));
                }
                let mfn = g.pfn_to_mfn(s.pfn);
                if frame == INVALID_FRAME || mfn == INVALID_FRAME {
                    return Err(bad(format!("frame {frame:x} is not a machine frame (pfn {:#x})", s.pfn)));
                }
                if frame != mfn {
                    return Err(bad(format!("frame {frame:x} is stale: pfn {:#x} is now frame {mfn:x}", s.pfn)));
                }
            }
            RxMode::Flip => {
                if flags & gtf::TYPE_MASK != gtf::ACCEPT_TRANSFER {
                    return Err(bad(format!("flags {flags:#x} are not accept-transfer")));
                }
            }
        }
        Ok(())
    }

    // ----- connect / negotiate -------------------------------------------------------------

    /// Pick the receive mode from the back end's keys, or refuse.
    fn negotiate(&mut self, g: &impl XenGuest) -> Result<RxMode, NetfrontError> {
        let be = self.be_dir(g);
        let key = |k: &str| g.xs_read(&format!("{be}/{k}")).and_then(|v| v.trim().parse::<u32>().ok());
        let copy = key(xs::FEATURE_RX_COPY) == Some(1);
        let flip = key(xs::FEATURE_RX_FLIP);
        match self.cfg.preference {
            RxPreference::CopyOnly if copy => Ok(RxMode::Copy),
            RxPreference::CopyOnly => {
                Err(NetfrontError::Refused { why: "backend does not support copying receive path".into() })
            }
            // Absent feature-rx-flip means "flipping works" to these front ends.
            RxPreference::PreferFlip if flip != Some(0) => Ok(RxMode::Flip),
            RxPreference::PreferFlip if copy => Ok(RxMode::Copy),
            RxPreference::PreferFlip => {
                Err(NetfrontError::Refused { why: "backend offers neither rx-flip nor rx-copy".into() })
            }
        }
    }

    /// Allocate, initialise and grant fresh ring pages; write the front end's keys.
    fn setup_rings(&mut self, g: &mut impl XenGuest, mode: RxMode) -> Result<(), NetfrontError> {
        self.free_ring_pages(g);
        let mut ring_page = |this: &mut Self| -> Result<(Pfn, GrantRef), NetfrontError> {
            let pfn = g.alloc_page()?;
            g.page_write(pfn, 0, &[0u8; PAGE_SIZE])?;
            let gref = this.claim_gref()?;
            this.grant_access(g, gref, g.pfn_to_mfn(pfn), false)?;
            Ok((pfn, gref))
        };
        let (tx_pfn, tx_gref) = ring_page(self)?;
        let (rx_pfn, rx_gref) = ring_page(self)?;
        self.rings = Some(RingPages { tx_pfn, rx_pfn, tx_gref, rx_gref });
        self.tx_req_prod_pvt = 0;
        self.tx_rsp_cons = 0;
        self.rx_req_prod_pvt = 0;
        self.rx_rsp_cons = 0;
        // Ask to be told about the first response on each ring.
        for pfn in [tx_pfn, rx_pfn] {
            g.page_write(pfn, sring::RSP_EVENT, &1u32.to_le_bytes())?;
            g.page_write(pfn, sring::REQ_EVENT, &1u32.to_le_bytes())?;
        }
        let fe = Self::fe_dir(g);
        g.xs_write(&format!("{fe}/{}", xs::TX_RING_REF), &tx_gref.to_string());
        g.xs_write(&format!("{fe}/{}", xs::RX_RING_REF), &rx_gref.to_string());
        g.xs_write(&format!("{fe}/{}", xs::EVENT_CHANNEL), "1");
        g.xs_write(&format!("{fe}/{}", xs::REQUEST_RX_COPY), if mode == RxMode::Copy { "1" } else { "0" });
        self.mode = Some(mode);
        Ok(())
    }

    fn free_ring_pages(&mut self, g: &mut impl XenGuest) {
        if let Some(r) = self.rings.take() {
            for (pfn, gref) in [(r.tx_pfn, r.tx_gref), (r.rx_pfn, r.rx_gref)] {
                if self.end_access(g, gref) {
                    self.release_gref(gref);
                    g.free_page(pfn);
                }
            }
        }
    }

    /// First connect at boot.
    pub fn connect(&mut self, g: &mut impl XenGuest) -> Result<RxMode, NetfrontError> {
        self.reset_grefs(g);
        let mode = self.negotiate(g)?;
        self.setup_rings(g, mode)?;
        self.say(g, format!("netfront: device eth0 has {} receive path.", path_word(mode)));
        self.refill_rx(g);
        self.push_rx(g);
        g.switch_state(xenbus_state::CONNECTED)?;
        self.stats.connects += 1;
        g.notify();
        Ok(mode)
    }

    /// Resume after restore on (possibly) another host, in the configured order.
    pub fn resume(&mut self, g: &mut impl XenGuest) -> Result<RxMode, NetfrontError> {
        // The grant table did not survive the restore: every reference is free again, and
        // the ring pages will be replaced.
        self.reset_grefs(g);
        if let Some(r) = self.rings.take() {
            g.free_page(r.tx_pfn);
            g.free_page(r.rx_pfn);
        }
        match self.cfg.order {
            ResumeOrder::Legacy => self.resume_legacy(g),
            ResumeOrder::Nicqual => self.resume_nicqual(g),
        }
    }

    fn resume_legacy(&mut self, g: &mut impl XenGuest) -> Result<RxMode, NetfrontError> {
        let mode = self.negotiate(g)?;
        self.setup_rings(g, mode)?;
        self.say(g, format!("netfront: device eth0 has {} receive path.", path_word(mode)));
        // Step 1: pending TX buffers are dropped.
        for id in 0..IDS {
            if let Some(s) = self.tx_take(id) {
                self.stats.tx_dropped_on_resume += 1;
                g.free_page(s.pfn);
            }
        }
        // Step 2: rebuild the RX ring from the surviving buffers, re-granted in place with
        // whatever pfn_to_mfn says now, and publish them.
        for id in 0..IDS {
            let Some(mut s) = self.rx_get(id) else { continue };
            s.gref = self.claim_gref()?;
            match mode {
                RxMode::Flip => self.grant_transfer(g, s.gref, s.pfn)?,
                RxMode::Copy => self.grant_access(g, s.gref, g.pfn_to_mfn(s.pfn), false)?,
            }
            self.stats.reclaimed_rx += 1;
            s.posted = false;
            self.rx_set(id, Some(s));
            self.post_rx(g, id);
        }
        self.push_rx(g);
        // Step 3: only now allocate buffers for the empty slots.
        self.refill_rx(g);
        self.push_rx(g);
        g.switch_state(xenbus_state::CONNECTED)?;
        self.stats.connects += 1;
        g.notify();
        Ok(mode)
    }

    fn resume_nicqual(&mut self, g: &mut impl XenGuest) -> Result<RxMode, NetfrontError> {
        // 1. Reclaim every outstanding request. Pages without a machine frame (given to Xen
        //    under flipping, or lost in the restore) are backed again or released.
        for id in 0..IDS {
            let Some(mut s) = self.rx_get(id) else { continue };
            self.stats.reclaimed_rx += 1;
            s.posted = false;
            s.gref = nif::INVALID_GRANT_REF;
            if g.pfn_to_mfn(s.pfn) == INVALID_FRAME {
                match g.populate(s.pfn) {
                    Ok(_) => self.stats.rebacked_pages += 1,
                    Err(_) => {
                        self.rx_set(id, None);
                        continue;
                    }
                }
            }
            self.rx_set(id, Some(s));
        }
        for id in 0..IDS {
            if let Some(s) = self.tx_take(id) {
                self.stats.reclaimed_tx += 1;
                self.stats.tx_resent += 1;
                self.tx_backlog.push_front(s.pkt);
                g.free_page(s.pfn);
            }
        }
        // 2. Renegotiate; refuse what the back end cannot serve.
        let mode = match self.negotiate(g) {
            Ok(m) => m,
            Err(e) => {
                self.say(g, format!("netfront: {e}"));
                return Err(e);
            }
        };
        self.setup_rings(g, mode)?;
        self.say(g, format!("netfront: device eth0 has {} receive path.", path_word(mode)));
        // 3. Allocate, back and grant every buffer; audit each entry; then publish.
        for id in 0..IDS {
            if let Some(s) = self.rx_get(id) {
                self.regrant_rx(g, id, s.pfn, mode)?;
            }
        }
        self.refill_rx(g);
        self.push_rx(g);
        g.switch_state(xenbus_state::CONNECTED)?;
        self.stats.connects += 1;
        g.notify();
        self.flush_tx_backlog(g);
        Ok(mode)
    }

    // ----- RX -----------------------------------------------------------------------------

    /// Grant buffer `id` (page `pfn`) for `mode`, audit it, and write its request (not yet
    /// published). A page that fails the audit is replaced once.
    fn regrant_rx(&mut self, g: &mut impl XenGuest, id: u16, pfn: Pfn, mode: RxMode) -> Result<(), NetfrontError> {
        let mut pfn = pfn;
        for attempt in 0..2 {
            let gref = self.claim_gref()?;
            if mode == RxMode::Copy && g.pfn_to_mfn(pfn) == INVALID_FRAME {
                let _ = g.populate(pfn);
            }
            match mode {
                RxMode::Copy => self.grant_access(g, gref, g.pfn_to_mfn(pfn), false)?,
                RxMode::Flip => self.grant_transfer(g, gref, pfn)?,
            }
            let s = RxSlot { pfn, gref, posted: false };
            match self.audit(g, id, &s, mode) {
                Ok(()) => {
                    if mode == RxMode::Flip {
                        g.decrease_reservation(pfn)?;
                    }
                    self.rx_set(id, Some(s));
                    self.post_rx(g, id);
                    return Ok(());
                }
                Err(e) => {
                    self.stats.audit_rejects += 1;
                    self.fail(e);
                    let _ = self.end_access(g, gref);
                    self.release_gref(gref);
                    if attempt == 0 {
                        g.free_page(pfn);
                        pfn = g.alloc_page()?;
                    }
                }
            }
        }
        self.rx_set(id, None);
        g.free_page(pfn);
        Ok(())
    }

    /// Write the request of buffer `id` at `req_prod_pvt` (published by `push_rx`).
    fn post_rx(&mut self, g: &mut impl XenGuest, id: u16) {
        let (Some(r), Some(s)) = (self.rings, self.rx.get(usize::from(id)).copied().flatten()) else { return };
        let req = RxRequest { id: U16::new(id), pad: U16::new(0), gref: U32::new(s.gref) };
        let slot = self.ring.slot(self.rx_req_prod_pvt) as usize;
        if g.page_write(r.rx_pfn, sring::ENTRIES + slot * RX_SLOT_LEN, req.as_bytes()).is_ok() {
            self.rx_req_prod_pvt = self.rx_req_prod_pvt.wrapping_add(1);
            if let Some(Some(s)) = self.rx.get_mut(usize::from(id)) {
                s.posted = true;
            }
        }
    }

    /// Publish requests written so far; kick the back end if it asked.
    fn push_rx(&mut self, g: &mut impl XenGuest) {
        let Some(r) = self.rings else { return };
        let old = read_u32(g, r.rx_pfn, sring::REQ_PROD);
        let _ = g.page_write(r.rx_pfn, sring::REQ_PROD, &self.rx_req_prod_pvt.to_le_bytes());
        let event = read_u32(g, r.rx_pfn, sring::REQ_EVENT);
        if FrontRing::need_notify(old, self.rx_req_prod_pvt, event) {
            g.notify();
        }
    }

    /// Post new buffers for empty ids up to the target (`xennet_alloc_rx_buffers`).
    /// An allocation failure stops the refill; it is retried on the next poll.
    pub fn refill_rx(&mut self, g: &mut impl XenGuest) -> u32 {
        let Some(mode) = self.mode else { return 0 };
        let mut posted = 0;
        while self.rx_posted() < self.cfg.rx_target {
            let Some(id) = self.rx.iter().position(Option::is_none) else { break };
            let pfn = match g.alloc_page() {
                Ok(p) => p,
                Err(_) => {
                    self.stats.alloc_failures += 1;
                    break;
                }
            };
            match self.regrant_rx(g, id as u16, pfn, mode) {
                Ok(()) => posted += 1,
                Err(e) => {
                    self.fail(e);
                    break;
                }
            }
        }
        posted
    }

    /// Consume RX and TX responses, refill, flush pending sends. Returns packets received.
    pub fn poll(&mut self, g: &mut impl XenGuest) -> usize {
        if self.broken {
            return 0;
        }
        let n = self.poll_rx(g);
        if self.broken {
            return n;
        }
        self.poll_tx(g);
        if self.broken {
            return n;
        }
        self.refill_rx(g);
        self.push_rx(g);
        self.flush_tx_backlog(g);
        n
    }

    fn poll_rx(&mut self, g: &mut impl XenGuest) -> usize {
        let Some(r) = self.rings else { return 0 };
        let Some(mode) = self.mode else { return 0 };
        let rsp_prod = read_u32(g, r.rx_pfn, sring::RSP_PROD);
        let ahead = rsp_prod.wrapping_sub(self.rx_rsp_cons);
        // More responses than requests we published: the producer is not trustworthy.
        let outstanding = self.rx_req_prod_pvt.wrapping_sub(self.rx_rsp_cons);
        if ahead > outstanding {
            // The slots past what the back end wrote hold our own requests or an older
            // lap's responses: reading them would hand up pages nobody filled.
            let e = NetfrontError::RingRunaway {
                ring: "rx",
                rsp_prod,
                rsp_cons: self.rx_rsp_cons,
                ahead,
                size: self.ring.size(),
            };
            self.runaway(g, e);
            return 0;
        }
        let n = self.ring.unconsumed_responses(rsp_prod, self.rx_rsp_cons).min(outstanding);
        let mut got = 0;
        for _ in 0..n {
            let slot = self.ring.slot(self.rx_rsp_cons) as usize;
            let mut b = [0u8; RX_SLOT_LEN];
            let _ = g.page_read(r.rx_pfn, sring::ENTRIES + slot * RX_SLOT_LEN, &mut b);
            self.rx_rsp_cons = self.rx_rsp_cons.wrapping_add(1);
            let Ok(resp) = RxResponse::read_from_bytes(&b) else { continue };
            if self.handle_rx_response(g, resp, mode) {
                got += 1;
            }
        }
        self.reclaim_orphans(g, mode);
        // Ask for an event at the next response (RING_FINAL_CHECK_FOR_RESPONSES).
        let _ = g.page_write(r.rx_pfn, sring::RSP_EVENT, &self.rx_rsp_cons.wrapping_add(1).to_le_bytes());
        got
    }

    /// Validate one response; deliver its packet if good. True when a packet was received.
    fn handle_rx_response(&mut self, g: &mut impl XenGuest, resp: RxResponse, mode: RxMode) -> bool {
        let id = resp.id.get();
        let (offset, status, flags) = (resp.offset.get(), resp.status.get(), resp.flags.get());
        let slot = match self.rx.get(usize::from(id)) {
            None => {
                self.stats.bad_ids += 1;
                self.say(g, format!("netfront: Bad rx response id {id}."));
                self.fail(NetfrontError::BadRxId { id, why: "outside the ring" });
                return false;
            }
            Some(None) | Some(Some(RxSlot { posted: false, .. })) => {
                self.stats.bad_ids += 1;
                self.say(g, format!("netfront: Bad rx response id {id}."));
                self.fail(NetfrontError::BadRxId { id, why: "no request outstanding under this id" });
                return false;
            }
            Some(Some(s)) => *s,
        };
        // No feature-sg / GSO was requested: a packet is one slot, with no extra-info slot
        // behind it. Anything else would make us misparse the ring.
        if flags & (nif::rxf::MORE_DATA | nif::rxf::EXTRA_INFO) != 0 {
            self.stats.rx_bad_flags += 1;
            self.fail(NetfrontError::RxFlags { id, flags });
            self.recycle_failed(g, id, slot, mode);
            return false;
        }
        if status < 0 || usize::from(offset) + status as usize > PAGE_SIZE {
            // The old format string: "rx->offset: %x, size: %u" — status -1 prints as
            // 4294967295.
            self.say(g, format!("netfront: rx->offset: {offset:x}, size: {}", status as i32 as u32));
            let e = if status < 0 {
                self.stats.rx_status_errors += 1;
                NetfrontError::RxStatus { id, status }
            } else {
                self.stats.rx_oversize += 1;
                NetfrontError::RxOversize { id, offset, size: status as u16 }
            };
            self.fail(e);
            self.recycle_failed(g, id, slot, mode);
            return false;
        }
        if status < nif::ETH_HLEN as i16 {
            self.stats.rx_runts += 1;
            self.fail(NetfrontError::RxRunt { id, size: status as u16 });
            self.recycle_failed(g, id, slot, mode);
            return false;
        }
        let len = status as usize;
        let off = usize::from(offset);
        // Take the page back from the back end.
        match mode {
            RxMode::Copy => {
                if !self.end_access(g, slot.gref) {
                    // The back end still holds it: leave the buffer (and grant) alone.
                    self.rx_set(id, None);
                    return false;
                }
            }
            RxMode::Flip => {
                let e = g.gnttab_read(slot.gref).unwrap_or_default();
                let done = gtf::TRANSFER_COMMITTED | gtf::TRANSFER_COMPLETED;
                if e.flags.get() & done != done || g.set_p2m(slot.pfn, e.frame.get()).is_err() {
                    self.stats.rx_status_errors += 1;
                    self.fail(NetfrontError::RxStatus { id, status: rsp::ERROR });
                    self.recycle_failed(g, id, slot, mode);
                    return false;
                }
                let _ = g.gnttab_write(slot.gref, GrantEntryV1::default());
            }
        }
        self.release_gref(slot.gref);
        let mut data = vec![0u8; len];
        let ok = g.page_read(slot.pfn, off, &mut data).is_ok();
        self.rx_set(id, None);
        g.free_page(slot.pfn);
        if !ok {
            self.stats.rx_status_errors += 1;
            return false;
        }
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += len as u64;
        self.received.push(data);
        true
    }

    /// A buffer whose response failed goes back on the ring.
    fn recycle_failed(&mut self, g: &mut impl XenGuest, id: u16, slot: RxSlot, mode: RxMode) {
        match self.cfg.order {
            ResumeOrder::Legacy => {
                // xennet_move_rx_slot: same buffer, same grant, next request slot.
                self.stats.requeued_as_is += 1;
                if let Some(Some(s)) = self.rx.get_mut(usize::from(id)) {
                    s.posted = false;
                }
                self.post_rx(g, id);
            }
            ResumeOrder::Nicqual => {
                self.stats.requeued_regranted += 1;
                self.rebuild_slot(g, id, slot, mode);
            }
        }
    }

    /// Take buffer `id` back from the back end and post it again with a fresh grant.
    fn rebuild_slot(&mut self, g: &mut impl XenGuest, id: u16, slot: RxSlot, mode: RxMode) {
        if !self.end_access(g, slot.gref) {
            // Still mapped by the back end: leave page and grant to it, forget the slot.
            self.rx_set(id, None);
            return;
        }
        self.release_gref(slot.gref);
        self.rx_set(id, None);
        if let Err(e) = self.regrant_rx(g, id, slot.pfn, mode) {
            self.fail(e);
        }
    }

    /// Every request on the ring has been answered, yet some buffers are still marked
    /// posted: their responses were lost or named another id. Take them back (nicqual
    /// order) so the ring never stays empty.
    fn reclaim_orphans(&mut self, g: &mut impl XenGuest, mode: RxMode) {
        if self.cfg.order != ResumeOrder::Nicqual || self.rx_rsp_cons != self.rx_req_prod_pvt {
            return;
        }
        for id in 0..IDS {
            if let Some(s) = self.rx_get(id)
                && s.posted
            {
                self.stats.orphans_reclaimed += 1;
                self.rebuild_slot(g, id, s, mode);
            }
        }
    }

    /// A response producer ran past what was published: the ring cannot be trusted.
    fn runaway(&mut self, g: &mut impl XenGuest, e: NetfrontError) {
        self.stats.ring_runaway += 1;
        self.say(g, format!("netfront: {e}"));
        self.fail(e);
        match self.cfg.order {
            ResumeOrder::Legacy => {
                self.broken = true;
                self.say(g, "netfront: device eth0 marked broken".to_string());
            }
            ResumeOrder::Nicqual => {
                if let Err(e) = self.reconnect(g) {
                    self.broken = true;
                    self.say(g, format!("netfront: reconnect failed: {e}; device eth0 marked broken"));
                    self.fail(e);
                }
            }
        }
    }

    /// Tear the rings down and connect again on fresh ones, keeping the buffers: the back
    /// end disconnects first (so nothing is mapped), every grant is ended, then the resume
    /// path rebuilds (reclaim, renegotiate, grant + audit, publish).
    pub fn reconnect(&mut self, g: &mut impl XenGuest) -> Result<RxMode, NetfrontError> {
        self.stats.reconnects += 1;
        g.switch_state(xenbus_state::CLOSING)?;
        for id in 0..IDS {
            if let Some(s) = self.rx_get(id)
                && s.gref != nif::INVALID_GRANT_REF
            {
                let _ = self.end_access(g, s.gref);
            }
            if let Some(s) = self.tx.get(usize::from(id)).and_then(Option::as_ref) {
                let gref = s.gref;
                let _ = self.end_access(g, gref);
            }
        }
        self.free_ring_pages(g);
        self.resume(g)
    }

    // ----- TX -----------------------------------------------------------------------------

    /// Queue a packet for sending; it goes out now if the ring has room.
    pub fn send(&mut self, g: &mut impl XenGuest, pkt: Vec<u8>) -> Result<(), NetfrontError> {
        if pkt.is_empty() || pkt.len() > PAGE_SIZE {
            return Err(NetfrontError::TxTooBig { len: pkt.len() });
        }
        self.tx_backlog.push_back(pkt);
        self.flush_tx_backlog(g);
        Ok(())
    }

    /// Packets waiting to be sent.
    pub fn tx_backlog(&self) -> usize {
        self.tx_backlog.len()
    }

    fn flush_tx_backlog(&mut self, g: &mut impl XenGuest) {
        let Some(r) = self.rings else { return };
        let mut pushed = false;
        while let Some(pkt) = self.tx_backlog.pop_front() {
            match self.post_tx(g, r, &pkt) {
                Ok(()) => pushed = true,
                Err(_) => {
                    self.tx_backlog.push_front(pkt);
                    break;
                }
            }
        }
        if pushed {
            let old = read_u32(g, r.tx_pfn, sring::REQ_PROD);
            let _ = g.page_write(r.tx_pfn, sring::REQ_PROD, &self.tx_req_prod_pvt.to_le_bytes());
            let event = read_u32(g, r.tx_pfn, sring::REQ_EVENT);
            if FrontRing::need_notify(old, self.tx_req_prod_pvt, event) {
                g.notify();
            }
        }
    }

    fn post_tx(&mut self, g: &mut impl XenGuest, r: RingPages, pkt: &[u8]) -> Result<(), NetfrontError> {
        let size = self.ring.size();
        if self.ring.free_requests(self.tx_req_prod_pvt, self.tx_rsp_cons).unwrap_or(0) == 0 {
            return Err(NetfrontError::TxRingFull { size });
        }
        let id = self.tx.iter().position(Option::is_none).ok_or(NetfrontError::TxRingFull { size })?;
        let pfn = g.alloc_page()?;
        let gref = match self.claim_gref() {
            Ok(r) => r,
            Err(e) => {
                g.free_page(pfn);
                return Err(e);
            }
        };
        g.page_write(pfn, 0, pkt)?;
        self.grant_access(g, gref, g.pfn_to_mfn(pfn), true)?;
        let req = TxRequest {
            gref: U32::new(gref),
            offset: U16::new(0),
            flags: U16::new(0),
            id: U16::new(id as u16),
            size: U16::new(pkt.len() as u16),
        };
        let slot = self.ring.slot(self.tx_req_prod_pvt) as usize;
        g.page_write(r.tx_pfn, sring::ENTRIES + slot * TX_SLOT_LEN, req.as_bytes())?;
        self.tx_req_prod_pvt = self.tx_req_prod_pvt.wrapping_add(1);
        if let Some(e) = self.tx.get_mut(id) {
            *e = Some(TxSlot { pfn, gref, pkt: pkt.to_vec() });
        }
        Ok(())
    }

    fn poll_tx(&mut self, g: &mut impl XenGuest) {
        let Some(r) = self.rings else { return };
        let rsp_prod = read_u32(g, r.tx_pfn, sring::RSP_PROD);
        let outstanding = self.tx_req_prod_pvt.wrapping_sub(self.tx_rsp_cons);
        let ahead = rsp_prod.wrapping_sub(self.tx_rsp_cons);
        if ahead > outstanding {
            let e = NetfrontError::RingRunaway {
                ring: "tx",
                rsp_prod,
                rsp_cons: self.tx_rsp_cons,
                ahead,
                size: self.ring.size(),
            };
            self.runaway(g, e);
            return;
        }
        let n = self.ring.unconsumed_responses(rsp_prod, self.tx_rsp_cons).min(outstanding);
        for _ in 0..n {
            let slot = self.ring.slot(self.tx_rsp_cons) as usize;
            let mut b = [0u8; size_of::<TxResponse>()];
            let _ = g.page_read(r.tx_pfn, sring::ENTRIES + slot * TX_SLOT_LEN, &mut b);
            self.tx_rsp_cons = self.tx_rsp_cons.wrapping_add(1);
            let Ok(resp) = TxResponse::read_from_bytes(&b) else { continue };
            let id = resp.id.get();
            let Some(s) = self.tx.get(usize::from(id)).cloned().flatten() else {
                self.stats.bad_ids += 1;
                let why = if usize::from(id) >= self.tx.len() { "outside the ring" } else { "not outstanding" };
                self.fail(NetfrontError::BadTxId { id, why });
                continue;
            };
            if resp.status.get() == rsp::OKAY {
                self.stats.tx_packets += 1;
            } else {
                self.stats.tx_errors += 1;
            }
            if self.end_access(g, s.gref) {
                self.release_gref(s.gref);
                g.free_page(s.pfn);
                self.tx_take(id);
            }
        }
        let _ = g.page_write(r.tx_pfn, sring::RSP_EVENT, &self.tx_rsp_cons.wrapping_add(1).to_le_bytes());
    }
}

fn path_word(mode: RxMode) -> &'static str {
    match mode {
        RxMode::Copy => "copying",
        RxMode::Flip => "flipping",
    }
}

fn read_u32(g: &impl XenGuest, pfn: Pfn, off: usize) -> u32 {
    let mut b = [0u8; 4];
    match g.page_read(pfn, off, &mut b) {
        Ok(()) => u32::from_le_bytes(b),
        Err(_) => 0,
    }
}
