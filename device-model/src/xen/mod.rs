//! A Xen platform at shared-ring and grant level: machine frames, a guest's
//! pseudo-physical-to-machine map (p2m), grant tables with the hypervisor's grant
//! operations (copy, transfer, map) and their error messages, a xenstore-like key/value
//! store, the netback back end, and save/restore between host versions.
//!
//! The guest (netfront, in `nicqual-xen`) reaches this model only through the calls a
//! PV guest kernel makes: page allocation, its own grant-table entries, xenstore, event
//! channel notification, and memory-reservation hypercalls. The back end reaches guest
//! memory only through grant operations, so a stale or bogus grant is visible exactly
//! where Xen would see it.

pub mod balloon;
pub mod flip;
pub mod host;
pub mod netback;
pub mod store;

use nicqual_hw::xen_netif::{DomId, GrantEntryV1, GrantRef, INVALID_FRAME, PAGE_SIZE, gntst, gtf};
use std::collections::BTreeMap;
use zerocopy::little_endian::U32;

pub use host::{HostVersion, SavedGuest, XenHost};
pub use netback::{Netback, NetbackStats, ResponseFault, RxMode};
pub use store::XenStore;

/// A saved page: its contents, or None when it had no machine frame.
pub type SavedPage = Option<Box<[u8; PAGE_SIZE]>>;

/// A machine frame number as a 32-bit grant `frame` field holds it.
pub type Mfn = u32;
/// A guest pseudo-physical frame number.
pub type Pfn = u32;

/// Grant entries per guest grant table (4 frames of 512, enough for two 256-slot rings).
pub const GRANT_TABLE_ENTRIES: u32 = 2048;

/// Why a guest-side memory call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XenMemError {
    #[error("d{dom}: no such domain")]
    NoDomain { dom: DomId },
    #[error("d{dom}: pfn {pfn:#x} is outside the guest's {pages} pages")]
    PfnRange { dom: DomId, pfn: Pfn, pages: u32 },
    #[error("d{dom}: pfn {pfn:#x} has no machine frame (p2m entry {mfn:#x})")]
    NotBacked { dom: DomId, pfn: Pfn, mfn: Mfn },
    #[error("d{dom}: page access at offset {off} + {len} crosses the {PAGE_SIZE}-byte page")]
    PageBounds { dom: DomId, off: usize, len: usize },
    #[error("d{dom}: out of memory (no free page, Xen heap has {heap_free} frames)")]
    OutOfMemory { dom: DomId, heap_free: u64 },
    #[error("d{dom}: grant reference {gref} is outside the table of {entries}")]
    GrantRange { dom: DomId, gref: GrantRef, entries: u32 },
}

#[derive(Debug)]
struct Frame {
    owner: DomId,
    data: Box<[u8; PAGE_SIZE]>,
}

/// One domain's memory and grant table.
#[derive(Debug)]
pub struct Domain {
    /// pfn -> mfn; `INVALID_FRAME` where the page was given back to Xen.
    p2m: Vec<Mfn>,
    /// Backed pfns the guest kernel's allocator may hand out.
    free_pfns: Vec<Pfn>,
    /// The guest's shared grant table (v1 entries).
    gnttab: Vec<GrantEntryV1>,
    /// Pins the hypervisor holds on (gref) while a back end has it mapped.
    pins: BTreeMap<GrantRef, u32>,
}

impl Domain {
    pub fn pages(&self) -> u32 {
        self.p2m.len() as u32
    }

    pub fn free_pages(&self) -> usize {
        self.free_pfns.len()
    }
}

/// Counters of grant operations, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GrantStats {
    pub copies_ok: u64,
    pub copies_failed: u64,
    pub transfers_ok: u64,
    pub transfers_failed: u64,
    pub maps_ok: u64,
    pub maps_failed: u64,
}

/// The hypervisor: machine memory, domains, grant operations, the console (`xl dmesg`).
#[derive(Debug)]
pub struct Hypervisor {
    version: HostVersion,
    frames: BTreeMap<Mfn, Frame>,
    /// Free frames left in Xen's heap.
    heap_free: u64,
    next_mfn: Mfn,
    domains: BTreeMap<DomId, Domain>,
    console: Vec<ConsoleLine>,
    console_total: u64,
    now_ns: u64,
    pub stats: GrantStats,
}

/// One hypervisor console line with the virtual time it was logged at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsoleLine {
    pub at_ns: u64,
    pub text: String,
}

/// Console lines kept (older ones are counted, not stored).
const CONSOLE_CAP: usize = 4096;

/// One side of a `GNTTABOP_copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyPtr {
    /// A frame granted by domain `dom` under reference `gref` (GNTCOPY_*_gref).
    Gref { dom: DomId, gref: GrantRef, offset: u16 },
    /// A frame the calling domain owns.
    Local { mfn: Mfn, offset: u16 },
}

impl Hypervisor {
    /// A host whose Xen heap holds `heap_frames` free frames; machine frames are numbered
    /// from `mfn_base` (different hosts number them differently).
    pub fn new(version: HostVersion, heap_frames: u64, mfn_base: Mfn) -> Self {
        Hypervisor {
            version,
            frames: BTreeMap::new(),
            heap_free: heap_frames,
            next_mfn: mfn_base,
            domains: BTreeMap::new(),
            console: Vec::new(),
            console_total: 0,
            now_ns: 0,
            stats: GrantStats::default(),
        }
    }

    pub fn version(&self) -> &HostVersion {
        &self.version
    }

    /// Free frames in Xen's heap (what `xl info` calls free_memory, in pages).
    pub fn heap_free(&self) -> u64 {
        self.heap_free
    }

    /// Take `frames` out of the heap (another guest started, dom0 ballooned them away).
    /// Returns how many were actually taken.
    pub fn reserve_heap(&mut self, frames: u64) -> u64 {
        let n = frames.min(self.heap_free);
        self.heap_free -= n;
        n
    }

    /// Give `frames` back to the heap (a guest shut down).
    pub fn release_heap(&mut self, frames: u64) {
        self.heap_free = self.heap_free.saturating_add(frames);
    }

    /// Hypervisor console lines (`(XEN) ...`), oldest first, and the total ever logged.
    pub fn console(&self) -> &[ConsoleLine] {
        &self.console
    }

    pub fn console_total(&self) -> u64 {
        self.console_total
    }

    fn log(&mut self, text: String) {
        self.console_total += 1;
        if self.console.len() < CONSOLE_CAP {
            self.console.push(ConsoleLine { at_ns: self.now_ns, text });
        }
    }

    /// Set the time console lines are stamped with (the host's clock).
    pub fn set_now(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
    }

    fn alloc_frame(&mut self, owner: DomId) -> Option<Mfn> {
        if self.heap_free == 0 {
            return None;
        }
        self.heap_free -= 1;
        let mfn = self.next_mfn;
        self.next_mfn = self.next_mfn.wrapping_add(1);
        if self.next_mfn == INVALID_FRAME {
            self.next_mfn = 0x100;
        }
        self.frames.insert(mfn, Frame { owner, data: Box::new([0; PAGE_SIZE]) });
        Some(mfn)
    }

    fn free_frame(&mut self, mfn: Mfn) {
        if self.frames.remove(&mfn).is_some() {
            self.heap_free += 1;
        }
    }

    /// Create domain `dom` with `pages` backed pages from the heap. Fails if the heap is
    /// too small.
    pub fn create_domain(&mut self, dom: DomId, pages: u32) -> Result<(), XenMemError> {
        if self.heap_free < u64::from(pages) {
            return Err(XenMemError::OutOfMemory { dom, heap_free: self.heap_free });
        }
        let mut p2m = Vec::with_capacity(pages as usize);
        for _ in 0..pages {
            p2m.push(self.alloc_frame(dom).expect("heap checked above"));
        }
        let free_pfns = (0..pages).rev().collect();
        let gnttab = vec![GrantEntryV1::default(); GRANT_TABLE_ENTRIES as usize];
        self.domains.insert(dom, Domain { p2m, free_pfns, gnttab, pins: BTreeMap::new() });
        Ok(())
    }

    pub fn domain(&self, dom: DomId) -> Option<&Domain> {
        self.domains.get(&dom)
    }

    fn dom(&self, dom: DomId) -> Result<&Domain, XenMemError> {
        self.domains.get(&dom).ok_or(XenMemError::NoDomain { dom })
    }

    fn dom_mut(&mut self, dom: DomId) -> Result<&mut Domain, XenMemError> {
        self.domains.get_mut(&dom).ok_or(XenMemError::NoDomain { dom })
    }

    // ----- guest-kernel view -------------------------------------------------------------

    /// The guest kernel allocates a page (already backed by a machine frame).
    pub fn alloc_page(&mut self, dom: DomId) -> Result<Pfn, XenMemError> {
        let heap_free = self.heap_free;
        self.dom_mut(dom)?.free_pfns.pop().ok_or(XenMemError::OutOfMemory { dom, heap_free })
    }

    /// The guest kernel frees a page. An unbacked page is repopulated from the heap first
    /// when possible (otherwise it stays out of the allocator, as a ballooned page would).
    pub fn free_page(&mut self, dom: DomId, pfn: Pfn) -> Result<(), XenMemError> {
        let d = self.dom(dom)?;
        let pages = d.pages();
        let mfn = *d.p2m.get(pfn as usize).ok_or(XenMemError::PfnRange { dom, pfn, pages })?;
        if mfn == INVALID_FRAME && self.populate(dom, pfn).is_err() {
            return Ok(());
        }
        let d = self.dom_mut(dom)?;
        if !d.free_pfns.contains(&pfn) {
            d.free_pfns.push(pfn);
        }
        Ok(())
    }

    /// `pfn_to_mfn`: the p2m entry, `INVALID_FRAME` when the page has no machine frame.
    pub fn pfn_to_mfn(&self, dom: DomId, pfn: Pfn) -> Mfn {
        self.domains.get(&dom).and_then(|d| d.p2m.get(pfn as usize).copied()).unwrap_or(INVALID_FRAME)
    }

    /// Point `pfn` at `mfn` (mmu_update after a page transfer). The frame must be owned by
    /// `dom`.
    pub fn set_p2m(&mut self, dom: DomId, pfn: Pfn, mfn: Mfn) -> Result<(), XenMemError> {
        if self.frames.get(&mfn).is_none_or(|f| f.owner != dom) {
            return Err(XenMemError::NotBacked { dom, pfn, mfn });
        }
        let d = self.dom_mut(dom)?;
        let pages = d.pages();
        let e = d.p2m.get_mut(pfn as usize).ok_or(XenMemError::PfnRange { dom, pfn, pages })?;
        *e = mfn;
        Ok(())
    }

    /// `XENMEM_decrease_reservation` of one page: its frame goes back to Xen's heap and the
    /// p2m entry becomes invalid (what a flipping front end does with each posted buffer).
    pub fn decrease_reservation(&mut self, dom: DomId, pfn: Pfn) -> Result<Mfn, XenMemError> {
        let d = self.dom_mut(dom)?;
        let pages = d.pages();
        let e = d.p2m.get_mut(pfn as usize).ok_or(XenMemError::PfnRange { dom, pfn, pages })?;
        let mfn = std::mem::replace(e, INVALID_FRAME);
        if mfn == INVALID_FRAME {
            return Err(XenMemError::NotBacked { dom, pfn, mfn });
        }
        d.free_pfns.retain(|&p| p != pfn);
        self.free_frame(mfn);
        Ok(mfn)
    }

    /// `XENMEM_populate_physmap` of one page: give an unbacked pfn a fresh frame.
    pub fn populate(&mut self, dom: DomId, pfn: Pfn) -> Result<Mfn, XenMemError> {
        let d = self.dom(dom)?;
        let pages = d.pages();
        match d.p2m.get(pfn as usize) {
            None => return Err(XenMemError::PfnRange { dom, pfn, pages }),
            Some(&m) if m != INVALID_FRAME => return Ok(m),
            Some(_) => {}
        }
        let heap_free = self.heap_free;
        let mfn = self.alloc_frame(dom).ok_or(XenMemError::OutOfMemory { dom, heap_free })?;
        self.dom_mut(dom)?.p2m[pfn as usize] = mfn;
        Ok(mfn)
    }

    fn frame_of(&self, dom: DomId, pfn: Pfn) -> Result<Mfn, XenMemError> {
        let d = self.dom(dom)?;
        let mfn = *d.p2m.get(pfn as usize).ok_or(XenMemError::PfnRange { dom, pfn, pages: d.pages() })?;
        if self.frames.get(&mfn).is_none_or(|f| f.owner != dom) {
            return Err(XenMemError::NotBacked { dom, pfn, mfn });
        }
        Ok(mfn)
    }

    /// The guest reads its own page.
    pub fn page_read(&self, dom: DomId, pfn: Pfn, off: usize, buf: &mut [u8]) -> Result<(), XenMemError> {
        let mfn = self.frame_of(dom, pfn)?;
        let end = off.checked_add(buf.len()).filter(|&e| e <= PAGE_SIZE);
        let end = end.ok_or(XenMemError::PageBounds { dom, off, len: buf.len() })?;
        buf.copy_from_slice(&self.frames[&mfn].data[off..end]);
        Ok(())
    }

    /// The guest writes its own page.
    pub fn page_write(&mut self, dom: DomId, pfn: Pfn, off: usize, data: &[u8]) -> Result<(), XenMemError> {
        let mfn = self.frame_of(dom, pfn)?;
        let end = off.checked_add(data.len()).filter(|&e| e <= PAGE_SIZE);
        let end = end.ok_or(XenMemError::PageBounds { dom, off, len: data.len() })?;
        self.frames.get_mut(&mfn).expect("frame_of checked").data[off..end].copy_from_slice(data);
        Ok(())
    }

    /// The guest reads an entry of its own grant table (shared memory in a PV guest).
    pub fn gnttab_read(&self, dom: DomId, gref: GrantRef) -> Result<GrantEntryV1, XenMemError> {
        let d = self.dom(dom)?;
        d.gnttab.get(gref as usize).copied().ok_or(XenMemError::GrantRange { dom, gref, entries: GRANT_TABLE_ENTRIES })
    }

    /// The guest writes an entry of its own grant table.
    pub fn gnttab_write(&mut self, dom: DomId, gref: GrantRef, e: GrantEntryV1) -> Result<(), XenMemError> {
        let d = self.dom_mut(dom)?;
        let slot = d.gnttab.get_mut(gref as usize).ok_or(XenMemError::GrantRange {
            dom,
            gref,
            entries: GRANT_TABLE_ENTRIES,
        })?;
        *slot = e;
        Ok(())
    }

    /// True while a back end holds `gref` of `dom` mapped (end-access must fail then).
    pub fn gref_in_use(&self, dom: DomId, gref: GrantRef) -> bool {
        self.domains.get(&dom).is_some_and(|d| d.pins.get(&gref).is_some_and(|&n| n > 0))
    }

    // ----- back-end (hypercall) view ----------------------------------------------------

    /// `__acquire_grant_for_copy`: check `gref` of `granter` for use by `caller`, return
    /// the frame behind it or the GNTST code (logging what Xen logs).
    fn acquire_for_copy(&mut self, caller: DomId, granter: DomId, gref: GrantRef, dest: bool) -> Result<Mfn, i16> {
        let Some(d) = self.domains.get(&granter) else {
            self.log(format!("(XEN) grant_table.c:d{caller} copy from bad domain {granter}"));
            return Err(gntst::BAD_DOMAIN);
        };
        let Some(e) = d.gnttab.get(gref as usize).copied() else {
            self.log(format!("(XEN) grant_table.c:d{caller} Bad grant reference {gref}"));
            return Err(gntst::BAD_GNTREF);
        };
        let flags = e.flags.get();
        if flags & gtf::TYPE_MASK != gtf::PERMIT_ACCESS || e.domid.get() != caller {
            self.log(format!(
                "(XEN) grant_table.c:d{caller} Bad flags ({flags:x}) or dom ({}); expected d ({caller})",
                e.domid.get()
            ));
            return Err(gntst::GENERAL_ERROR);
        }
        if dest && flags & gtf::READONLY != 0 {
            return Err(gntst::PERMISSION_DENIED);
        }
        // A PV guest's grant names a machine frame directly (gmfn_to_mfn is the identity);
        // Xen only checks that it is a valid frame of the granting domain.
        let frame = e.frame.get();
        if self.frames.get(&frame).is_none_or(|f| f.owner != granter) {
            let which = if dest { "destination" } else { "source" };
            let line = self.version.grant_copy_line;
            self.log(format!("(XEN) grant_table.c:{line}:d{caller} {which} frame {frame:x} invalid."));
            return Err(gntst::GENERAL_ERROR);
        }
        Ok(frame)
    }

    /// `GNTTABOP_copy` issued by `caller`: copy `len` bytes from `src` to `dst`. Returns the
    /// GNTST status, as the hypercall writes it into the op.
    pub fn grant_copy(&mut self, caller: DomId, src: CopyPtr, dst: CopyPtr, len: u16) -> i16 {
        let status = self.grant_copy_inner(caller, src, dst, len);
        if status == gntst::OKAY {
            self.stats.copies_ok += 1;
        } else {
            self.stats.copies_failed += 1;
        }
        status
    }

    fn grant_copy_inner(&mut self, caller: DomId, src: CopyPtr, dst: CopyPtr, len: u16) -> i16 {
        let resolve = |hv: &mut Self, p: CopyPtr, dest: bool| -> Result<(Mfn, u16), i16> {
            match p {
                CopyPtr::Gref { dom, gref, offset } => Ok((hv.acquire_for_copy(caller, dom, gref, dest)?, offset)),
                CopyPtr::Local { mfn, offset } => match hv.frames.get(&mfn) {
                    Some(f) if f.owner == caller => Ok((mfn, offset)),
                    _ => Err(gntst::BAD_PAGE),
                },
            }
        };
        let (smfn, soff) = match resolve(self, src, false) {
            Ok(v) => v,
            Err(s) => return s,
        };
        let (dmfn, doff) = match resolve(self, dst, true) {
            Ok(v) => v,
            Err(s) => return s,
        };
        let (soff, doff, len) = (soff as usize, doff as usize, len as usize);
        if soff + len > PAGE_SIZE || doff + len > PAGE_SIZE {
            return gntst::BAD_COPY_ARG;
        }
        let data = self.frames[&smfn].data[soff..soff + len].to_vec();
        self.frames.get_mut(&dmfn).expect("resolved").data[doff..doff + len].copy_from_slice(&data);
        gntst::OKAY
    }

    /// `GNTTABOP_transfer` issued by `caller`: give its frame `mfn` to `dom` through the
    /// accept-transfer grant `gref`.
    pub fn grant_transfer(&mut self, caller: DomId, mfn: Mfn, dom: DomId, gref: GrantRef) -> i16 {
        let st = self.grant_transfer_inner(caller, mfn, dom, gref);
        if st == gntst::OKAY {
            self.stats.transfers_ok += 1;
        } else {
            self.stats.transfers_failed += 1;
        }
        st
    }

    fn grant_transfer_inner(&mut self, caller: DomId, mfn: Mfn, dom: DomId, gref: GrantRef) -> i16 {
        if self.frames.get(&mfn).is_none_or(|f| f.owner != caller) {
            self.log(format!("(XEN) grant_table.c:d{caller} gnttab_transfer: out-of-range or xen frame {mfn:x}"));
            return gntst::BAD_PAGE;
        }
        let Some(d) = self.domains.get_mut(&dom) else {
            return gntst::BAD_DOMAIN;
        };
        let Some(e) = d.gnttab.get_mut(gref as usize) else {
            return gntst::BAD_GNTREF;
        };
        let flags = e.flags.get();
        if flags & gtf::TYPE_MASK != gtf::ACCEPT_TRANSFER || e.domid.get() != caller {
            let dd = e.domid.get();
            self.log(format!("(XEN) grant_table.c:d{caller} Bad flags ({flags:x}) or dom ({dd}) for transfer"));
            return gntst::GENERAL_ERROR;
        }
        e.frame = U32::new(mfn);
        e.flags.set(flags | gtf::TRANSFER_COMMITTED | gtf::TRANSFER_COMPLETED);
        self.frames.get_mut(&mfn).expect("checked").owner = dom;
        gntst::OKAY
    }

    /// `GNTTABOP_map_grant_ref` issued by `caller` for a shared-ring page; pins the grant.
    pub fn grant_map(&mut self, caller: DomId, dom: DomId, gref: GrantRef) -> Result<Mfn, i16> {
        let r = self.acquire_for_copy(caller, dom, gref, true);
        match r {
            Ok(_) => {
                self.stats.maps_ok += 1;
                *self.domains.get_mut(&dom).expect("acquired").pins.entry(gref).or_default() += 1;
            }
            Err(_) => self.stats.maps_failed += 1,
        }
        r
    }

    /// `GNTTABOP_unmap_grant_ref`.
    pub fn grant_unmap(&mut self, dom: DomId, gref: GrantRef) {
        if let Some(d) = self.domains.get_mut(&dom)
            && let Some(n) = d.pins.get_mut(&gref)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                d.pins.remove(&gref);
            }
        }
    }

    /// Back-end access to a frame it mapped (a shared ring page).
    pub fn frame_read(&self, mfn: Mfn, off: usize, buf: &mut [u8]) -> bool {
        match (self.frames.get(&mfn), off.checked_add(buf.len())) {
            (Some(f), Some(end)) if end <= PAGE_SIZE => {
                buf.copy_from_slice(&f.data[off..end]);
                true
            }
            _ => false,
        }
    }

    /// Back-end write into a frame it mapped.
    pub fn frame_write(&mut self, mfn: Mfn, off: usize, data: &[u8]) -> bool {
        match (self.frames.get_mut(&mfn), off.checked_add(data.len())) {
            (Some(f), Some(end)) if end <= PAGE_SIZE => {
                f.data[off..end].copy_from_slice(data);
                true
            }
            _ => false,
        }
    }

    /// A frame for the back end's own use (dom0's page cache for flipping), from the heap.
    pub fn alloc_backend_frame(&mut self, dom: DomId) -> Option<Mfn> {
        self.alloc_frame(dom)
    }

    /// Return a back-end frame to the heap.
    pub fn free_backend_frame(&mut self, mfn: Mfn) {
        self.free_frame(mfn);
    }

    // ----- save / restore ---------------------------------------------------------------

    /// Save domain `dom`: page contents by pfn (None where unbacked). The domain and its
    /// frames are destroyed, as after `xm save`.
    pub fn save_domain(&mut self, dom: DomId) -> Result<(Vec<SavedPage>, Vec<Pfn>), XenMemError> {
        let d = self.domains.remove(&dom).ok_or(XenMemError::NoDomain { dom })?;
        let mut pages = Vec::with_capacity(d.p2m.len());
        for &mfn in &d.p2m {
            match self.frames.remove(&mfn) {
                Some(f) if f.owner == dom => {
                    self.heap_free += 1;
                    pages.push(Some(f.data));
                }
                Some(f) => {
                    self.frames.insert(mfn, f);
                    pages.push(None);
                }
                None => pages.push(None),
            }
        }
        // Frames the domain owned outside its p2m (transferred but not yet installed) go back
        // to the heap too.
        let orphans: Vec<Mfn> = self.frames.iter().filter(|(_, f)| f.owner == dom).map(|(&m, _)| m).collect();
        for m in orphans {
            self.free_frame(m);
        }
        Ok((pages, d.free_pfns))
    }

    /// Restore a saved domain on this host: every saved page gets a fresh machine frame
    /// (this host numbers frames differently); unbacked pages stay unbacked. The grant
    /// table starts empty, as on a real restore.
    pub fn restore_domain(
        &mut self,
        dom: DomId,
        pages: Vec<SavedPage>,
        free_pfns: Vec<Pfn>,
    ) -> Result<(), XenMemError> {
        let need = pages.iter().filter(|p| p.is_some()).count() as u64;
        if self.heap_free < need {
            return Err(XenMemError::OutOfMemory { dom, heap_free: self.heap_free });
        }
        let mut p2m = Vec::with_capacity(pages.len());
        for page in pages {
            match page {
                Some(data) => {
                    let mfn = self.alloc_frame(dom).expect("heap checked");
                    self.frames.get_mut(&mfn).expect("allocated").data = data;
                    p2m.push(mfn);
                }
                None => p2m.push(INVALID_FRAME),
            }
        }
        let gnttab = vec![GrantEntryV1::default(); GRANT_TABLE_ENTRIES as usize];
        self.domains.insert(dom, Domain { p2m, free_pfns, gnttab, pins: BTreeMap::new() });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
