//! The shared ring mechanism every NIC model uses.
//!
//! Two halves, kept apart so each can be tested on its own:
//!
//! * **Index arithmetic**, pure and allocation-free:
//!   - [`HeadTail`] — a ring of N slots addressed by head/tail registers modulo N, as the
//!     Intel e1000e family uses them (hardware owns `head..tail`, empty when equal);
//!   - [`PagedIndex`] — free-running u16 indices over a chain of pages whose last slot(s)
//!     hold the next-page pointer and must be skipped (bnx2x BD chains, `NEXT_RX_IDX` etc.);
//!   - [`ColorCursor`] — a completion-queue cursor whose colour bit flips on every wrap
//!     (Cisco enic CQs: hardware writes the colour last, software consumes while the colour
//!     is the one it expects);
//!   - [`SharedRing`] — Xen-style request/response rings with free-running u32
//!     producer/consumer indices and event indices for notification suppression.
//! * **Descriptor access through the IOMMU**: [`DescRing<D>`] fetches a descriptor type `D`
//!   (a `zerocopy` type with little-endian fields, 16 bytes for the 82574L) from guest memory
//!   and writes it back, always through [`Iommu`]. A blocked access is a typed
//!   [`RingError::Dma`] naming the ring, the slot and the fault; the model decides what the
//!   chip does about it (stop the queue, count, raise an error cause).
//!
//! Nothing here panics on any input: sizes are validated at construction, indices are
//! checked on every access.

use crate::iommu::{DmaDir, DmaFault, Iommu};
use std::marker::PhantomData;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Errors of ring construction and descriptor access.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The device's descriptor DMA was blocked by the IOMMU.
    #[error("{ring}: descriptor {index} at IOVA {iova:#x}: {fault}")]
    Dma { ring: &'static str, index: u32, iova: u64, fault: DmaFault },
    /// A slot index outside the ring (a bad head/tail value, or a hostile index).
    #[error("{ring}: index {index} is outside the ring of {size} slots")]
    IndexOutOfRange { ring: &'static str, index: u32, size: u32 },
    /// The ring's geometry cannot work (zero size, not a power of two where one is needed,
    /// address arithmetic that overflows).
    #[error("{ring}: bad geometry: {why}")]
    BadGeometry { ring: &'static str, why: &'static str },
}

// ---- index arithmetic ---------------------------------------------------------------------

/// Head/tail ring of `size` slots (Intel e1000/e1000e/igb/ixgbe style).
///
/// Hardware owns the slots `head..tail` (cyclically) and advances head as it consumes them;
/// software owns `tail..head` and advances tail to publish. `head == tail` means hardware
/// owns nothing; software therefore never fills the last slot (at most `size - 1` posted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadTail {
    size: u32,
}

impl HeadTail {
    /// A ring of `size` slots; `size` must be at least 2.
    pub const fn new(size: u32) -> Option<HeadTail> {
        if size >= 2 { Some(HeadTail { size }) } else { None }
    }

    pub const fn size(self) -> u32 {
        self.size
    }

    /// True when `i` names a slot.
    pub const fn in_range(self, i: u32) -> bool {
        i < self.size
    }

    /// The slot after `i` (wrapping). `i` must be in range; out-of-range input yields a
    /// value reduced modulo the size, never a panic.
    pub const fn next(self, i: u32) -> u32 {
        self.add(i, 1)
    }

    /// `i + n` modulo the size.
    pub const fn add(self, i: u32, n: u32) -> u32 {
        ((i as u64 + n as u64) % self.size as u64) as u32
    }

    /// Slots hardware owns (`tail - head` modulo size); `None` if either is out of range.
    pub const fn pending(self, head: u32, tail: u32) -> Option<u32> {
        if head >= self.size || tail >= self.size {
            return None;
        }
        Some(if tail >= head { tail - head } else { self.size - head + tail })
    }

    /// Slots software may still post (size - 1 - pending); `None` if out of range.
    pub const fn free(self, head: u32, tail: u32) -> Option<u32> {
        match self.pending(head, tail) {
            Some(p) => Some(self.size - 1 - p),
            None => None,
        }
    }

    /// True when slot `i` is currently owned by hardware (in `head..tail` cyclically).
    pub const fn hw_owns(self, head: u32, tail: u32, i: u32) -> bool {
        match (self.pending(head, tail), self.pending(head, i)) {
            (Some(p), Some(d)) => d < p,
            _ => false,
        }
    }
}

/// Free-running u16 index over a paged chain (bnx2x style).
///
/// The ring is `pages` pages of `per_page` slots (both powers of two, total ≤ 65536). The
/// last `link_slots` slots of every page hold the next-page pointer and are never used
/// for data: [`PagedIndex::next`] skips them, exactly like bnx2x's `NEXT_TX_IDX`
/// (256/page, 1 link slot), `NEXT_RX_IDX`/`NEXT_SGE_IDX` (512/page, 2) and `NEXT_RCQ_IDX`
/// (64/page, 1). Indices run freely over u16 and are masked with [`PagedIndex::slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagedIndex {
    per_page: u16,
    link_slots: u16,
    pages: u16,
}

impl PagedIndex {
    /// `per_page` and `pages` powers of two, `per_page * pages <= 65536`,
    /// `link_slots < per_page`.
    pub const fn new(per_page: u16, link_slots: u16, pages: u16) -> Option<PagedIndex> {
        if !per_page.is_power_of_two() || !pages.is_power_of_two() || link_slots >= per_page {
            return None;
        }
        if per_page as u32 * pages as u32 > 65536 {
            return None;
        }
        Some(PagedIndex { per_page, link_slots, pages })
    }

    pub const fn per_page(self) -> u16 {
        self.per_page
    }

    pub const fn link_slots(self) -> u16 {
        self.link_slots
    }

    pub const fn pages(self) -> u16 {
        self.pages
    }

    /// Total slots including link slots.
    pub const fn total(self) -> u32 {
        self.per_page as u32 * self.pages as u32
    }

    /// Data slots (bnx2x's `*_AVAIL` before its own reserve).
    pub const fn usable(self) -> u32 {
        (self.per_page - self.link_slots) as u32 * self.pages as u32
    }

    /// Ring slot of a free-running index (`x & (total - 1)`).
    pub const fn slot(self, x: u16) -> u32 {
        (x as u32) & (self.total() - 1)
    }

    /// Page of a slot.
    pub const fn page_of(self, slot: u32) -> u32 {
        slot / self.per_page as u32
    }

    /// True when the slot within its page is one of the link slots.
    pub const fn is_link_slot(self, slot: u32) -> bool {
        (slot % self.per_page as u32) >= (self.per_page - self.link_slots) as u32
    }

    /// First link slot of `page` (where the next-page pointer is written).
    pub const fn link_slot(self, page: u32) -> u32 {
        page * self.per_page as u32 + (self.per_page - self.link_slots) as u32
    }

    /// Page the link of `page` points to (the last page points back to page 0).
    pub const fn next_page(self, page: u32) -> u32 {
        (page + 1) % self.pages as u32
    }

    /// Next free-running index, skipping link slots.
    pub const fn next(self, x: u16) -> u16 {
        let n = x.wrapping_add(1);
        if n & (self.per_page - 1) == self.per_page - self.link_slots { n.wrapping_add(self.link_slots) } else { n }
    }

    /// `n` data steps from `x`.
    pub fn advance(self, mut x: u16, n: u32) -> u16 {
        let per = (self.per_page - self.link_slots) as u32;
        // Whole pages first, then single steps: O(per_page) at most.
        let whole = n / per;
        x = x.wrapping_add((whole as u16).wrapping_mul(self.per_page));
        for _ in 0..n % per {
            x = self.next(x);
        }
        x
    }

    /// Data slots between `cons` and `prod` (both produced by [`PagedIndex::next`]):
    /// the raw distance minus the link slots crossed.
    pub const fn used(self, prod: u16, cons: u16) -> u32 {
        let raw = prod.wrapping_sub(cons) as u32;
        let pages_in_u16 = 65536 / self.per_page as u32;
        let crossed = ((prod / self.per_page) as u32 + pages_in_u16 - (cons / self.per_page) as u32) % pages_in_u16;
        raw - crossed * self.link_slots as u32
    }
}

/// A completion-queue cursor with a colour (phase) bit that flips on every wrap.
///
/// The producer writes each entry with its cursor's colour, then advances. The consumer's
/// cursor holds the colour it expects of a fresh entry; an entry with any other colour
/// has not been written on this lap. Both cursors start with the same colour (enic: the
/// hardware's `cq_tail_color = 1`; the driver's `last_color = 0`, i.e. it expects 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColorCursor {
    index: u32,
    size: u32,
    color: bool,
}

impl ColorCursor {
    /// Cursor at slot 0 of a ring of `size` (≥ 1) entries with starting `color`.
    pub const fn new(size: u32, color: bool) -> Option<ColorCursor> {
        if size == 0 { None } else { Some(ColorCursor { index: 0, size, color }) }
    }

    /// Cursor at slot `index` with `color` (a producer resuming from its tail/tail-colour
    /// registers); `None` when `index` is outside the ring.
    pub const fn at(size: u32, index: u32, color: bool) -> Option<ColorCursor> {
        if index >= size { None } else { Some(ColorCursor { index, size, color }) }
    }

    pub const fn index(self) -> u32 {
        self.index
    }

    pub const fn color(self) -> bool {
        self.color
    }

    pub const fn size(self) -> u32 {
        self.size
    }

    /// Move to the next entry; the colour flips when the index wraps to 0.
    pub fn advance(&mut self) {
        self.index += 1;
        if self.index == self.size {
            self.index = 0;
            self.color = !self.color;
        }
    }

    /// Consumer side: is an entry with colour `c` (at this cursor) fresh?
    pub const fn is_fresh(self, c: bool) -> bool {
        c == self.color
    }
}

/// Xen-style shared request/response ring arithmetic (`xen/interface/io/ring.h`).
///
/// Indices are free-running u32 and masked by `size - 1` (size a power of two). The
/// frontend produces requests (`req_prod`) and consumes responses (`rsp_cons`); the
/// backend consumes requests (`req_cons`) and produces responses (`rsp_prod`). Each side
/// publishes an event index saying when it wants to be notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedRing {
    size: u32,
}

impl SharedRing {
    /// `size` must be a power of two.
    pub const fn new(size: u32) -> Option<SharedRing> {
        if size.is_power_of_two() { Some(SharedRing { size }) } else { None }
    }

    /// Size a ring fills in a shared page: `rounddown_pow2((page - header) / entry)`.
    pub const fn size_for_page(page: u32, header: u32, entry: u32) -> Option<SharedRing> {
        if entry == 0 || page <= header {
            return None;
        }
        let n = (page - header) / entry;
        if n == 0 {
            return None;
        }
        SharedRing::new(1 << (31 - n.leading_zeros()))
    }

    pub const fn size(self) -> u32 {
        self.size
    }

    /// Slot of a free-running index.
    pub const fn slot(self, idx: u32) -> u32 {
        idx & (self.size - 1)
    }

    /// Frontend: request slots still free (`RING_FREE_REQUESTS`). `None` when the indices
    /// claim more outstanding requests than the ring holds (a corrupt or hostile ring).
    pub const fn free_requests(self, req_prod_pvt: u32, rsp_cons: u32) -> Option<u32> {
        let used = req_prod_pvt.wrapping_sub(rsp_cons);
        if used > self.size { None } else { Some(self.size - used) }
    }

    /// Backend: requests it may consume now (`RING_HAS_UNCONSUMED_REQUESTS`), bounded by
    /// the ring size so a hostile `req_prod` cannot make it read more than one lap.
    pub const fn unconsumed_requests(self, req_prod: u32, req_cons: u32, rsp_prod_pvt: u32) -> u32 {
        let req = req_prod.wrapping_sub(req_cons);
        let rsp = self.size.wrapping_sub(req_cons.wrapping_sub(rsp_prod_pvt));
        let n = if req < rsp { req } else { rsp };
        if n > self.size { self.size } else { n }
    }

    /// Frontend: responses waiting (`RING_HAS_UNCONSUMED_RESPONSES`), bounded by the size.
    pub const fn unconsumed_responses(self, rsp_prod: u32, rsp_cons: u32) -> u32 {
        let n = rsp_prod.wrapping_sub(rsp_cons);
        if n > self.size { self.size } else { n }
    }

    /// Backend: has the frontend pushed requests beyond what responses allow
    /// (`RING_REQUEST_CONS_OVERFLOW`)?
    pub const fn request_cons_overflow(self, req_cons: u32, rsp_prod_pvt: u32) -> bool {
        req_cons.wrapping_sub(rsp_prod_pvt) >= self.size
    }

    /// Does moving a producer from `old` to `new` cross the other side's `event` index
    /// (`RING_PUSH_*_AND_CHECK_NOTIFY`)? Wrap-safe.
    pub const fn need_notify(old: u32, new: u32, event: u32) -> bool {
        new.wrapping_sub(event) < new.wrapping_sub(old)
    }
}

// ---- descriptor access through the IOMMU --------------------------------------------------

/// Where the slots of a ring live in IO virtual address space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingLayout {
    /// One contiguous block (82574L: base from xDBAL/xDBAH).
    Contiguous { base: u64 },
    /// Pages of `per_page` slots each at the given IOVAs, in chain order (bnx2x).
    Paged { pages: Vec<u64>, per_page: u32 },
}

/// A ring of descriptors of type `D` in device-visible memory. The model fetches and writes
/// back descriptors only through here, and so only through the IOMMU.
#[derive(Debug, Clone)]
pub struct DescRing<D> {
    name: &'static str,
    layout: RingLayout,
    slots: u32,
    _d: PhantomData<fn() -> D>,
}

impl<D> DescRing<D>
where
    D: FromBytes + IntoBytes + KnownLayout + Immutable,
{
    /// Size of one descriptor in bytes.
    pub const DESC_LEN: usize = size_of::<D>();

    /// A ring of `slots` descriptors laid out by `layout`. `name` appears in every error.
    #[inline]
    pub fn new(name: &'static str, layout: RingLayout, slots: u32) -> Result<Self, RingError> {
        let bad = |why| RingError::BadGeometry { ring: name, why };
        if slots == 0 || Self::DESC_LEN == 0 {
            return Err(bad("no slots"));
        }
        match &layout {
            RingLayout::Contiguous { base } => {
                (slots as u64)
                    .checked_mul(Self::DESC_LEN as u64)
                    .and_then(|l| base.checked_add(l))
                    .ok_or(bad("ring extends past the end of the IOVA space"))?;
            }
            RingLayout::Paged { pages, per_page } => {
                if *per_page == 0 || pages.len() as u64 * *per_page as u64 != slots as u64 {
                    return Err(bad("pages * per_page != slots"));
                }
                for p in pages {
                    (*per_page as u64)
                        .checked_mul(Self::DESC_LEN as u64)
                        .and_then(|l| p.checked_add(l))
                        .ok_or(bad("page extends past the end of the IOVA space"))?;
                }
            }
        }
        Ok(DescRing { name, layout, slots, _d: PhantomData })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn slots(&self) -> u32 {
        self.slots
    }

    pub fn layout(&self) -> &RingLayout {
        &self.layout
    }

    /// IOVA of slot `index`.
    #[inline]
    pub fn addr(&self, index: u32) -> Result<u64, RingError> {
        if index >= self.slots {
            return Err(RingError::IndexOutOfRange { ring: self.name, index, size: self.slots });
        }
        let len = Self::DESC_LEN as u64;
        // No overflow: `new` checked that the last byte of every page/block is addressable.
        Ok(match &self.layout {
            RingLayout::Contiguous { base } => base + index as u64 * len,
            RingLayout::Paged { pages, per_page } => {
                let page = pages.get((index / per_page) as usize).copied().unwrap_or_default();
                page + (index % per_page) as u64 * len
            }
        })
    }

    /// Fetch descriptor `index` (device reads it through the IOMMU).
    #[inline(always)]
    pub fn fetch(&self, iommu: &mut Iommu, index: u32, now_ns: u64) -> Result<D, RingError> {
        let iova = self.addr(index)?;
        let mut d = D::new_zeroed();
        iommu.read(iova, d.as_mut_bytes(), now_ns).map_err(|fault| RingError::Dma {
            ring: self.name,
            index,
            iova,
            fault,
        })?;
        Ok(d)
    }

    /// Write descriptor `index` back whole (device writes through the IOMMU).
    pub fn write_back(&self, iommu: &mut Iommu, index: u32, desc: &D, now_ns: u64) -> Result<(), RingError> {
        self.write_bytes(iommu, index, 0, desc.as_bytes(), now_ns)
    }

    /// Write descriptor `index` back with the bytes in `last` (typically the status field
    /// holding DD) written after everything else, as the hardware orders it: software that
    /// sees DD then sees the whole descriptor.
    #[inline(always)]
    pub fn write_back_ordered(
        &self,
        iommu: &mut Iommu,
        index: u32,
        desc: &D,
        last: std::ops::Range<usize>,
        now_ns: u64,
    ) -> Result<(), RingError> {
        let b = desc.as_bytes();
        let (Some(head), Some(mid), Some(tail)) = (b.get(..last.start), b.get(last.clone()), b.get(last.end..)) else {
            return Err(RingError::BadGeometry { ring: self.name, why: "write-back split outside the descriptor" });
        };
        // The model runs inside the driver's own calls, so nothing can look at the
        // descriptor between the parts: when one window takes the whole descriptor, one copy
        // has the same outcome. Across windows (or with DMA blocked) the parts go one by one, in
        // order, stopping at the first fault.
        let iova = self.addr(index)?;
        if iommu.write_if_cached(iova, b) {
            return Ok(());
        }
        if iommu.in_one_window(iova, b.len(), DmaDir::Write) {
            return self.write_bytes(iommu, index, 0, b, now_ns);
        }
        self.write_bytes(iommu, index, 0, head, now_ns)?;
        self.write_bytes(iommu, index, last.end, tail, now_ns)?;
        self.write_bytes(iommu, index, last.start, mid, now_ns)
    }

    /// Write `data` at byte `offset` inside descriptor `index`.
    #[inline(always)]
    pub fn write_bytes(
        &self,
        iommu: &mut Iommu,
        index: u32,
        offset: usize,
        data: &[u8],
        now_ns: u64,
    ) -> Result<(), RingError> {
        if data.is_empty() {
            return Ok(());
        }
        if offset.checked_add(data.len()).is_none_or(|e| e > Self::DESC_LEN) {
            return Err(RingError::BadGeometry { ring: self.name, why: "write outside the descriptor" });
        }
        let iova = self.addr(index)? + offset as u64;
        iommu.write(iova, data, now_ns).map_err(|fault| RingError::Dma { ring: self.name, index, iova, fault })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iommu::{FaultReason, HostRegion, Perm};
    use proptest::prelude::*;
    use zerocopy::FromZeros;
    use zerocopy::little_endian::{U32, U64};

    #[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
    #[repr(C)]
    struct Desc {
        addr: U64,
        len: U32,
        status: U32,
    }

    // ---- HeadTail ----
    proptest! {
        #[test]
        fn headtail_pending_plus_free_is_size_minus_one(size in 2u32..70000, h in 0u32..70000, t in 0u32..70000) {
            let r = HeadTail::new(size).unwrap();
            let (h, t) = (h % size, t % size);
            prop_assert_eq!(r.pending(h, t).unwrap() + r.free(h, t).unwrap(), size - 1);
        }

        #[test]
        fn headtail_add_is_repeated_next(size in 2u32..5000, i in 0u32..5000, n in 0u32..12000) {
            let r = HeadTail::new(size).unwrap();
            let i = i % size;
            let mut x = i;
            for _ in 0..n { x = r.next(x); }
            prop_assert_eq!(r.add(i, n), x);
            prop_assert!(r.in_range(x));
        }

        #[test]
        fn headtail_posting_n_makes_exactly_n_owned(size in 2u32..600, h in 0u32..600, n in 0u32..600) {
            let r = HeadTail::new(size).unwrap();
            let h = h % size;
            let n = n % size;
            let t = r.add(h, n);
            prop_assert_eq!(r.pending(h, t), Some(n));
            let owned = (0..size).filter(|&i| r.hw_owns(h, t, i)).count() as u32;
            prop_assert_eq!(owned, n);
            prop_assert!(!r.hw_owns(h, t, t));
        }

        #[test]
        fn headtail_rejects_out_of_range(size in 2u32..1000, bad in 0u32..u32::MAX) {
            let r = HeadTail::new(size).unwrap();
            let bad = bad.max(size);
            prop_assert_eq!(r.pending(bad, 0), None);
            prop_assert_eq!(r.pending(0, bad), None);
            prop_assert!(!r.hw_owns(0, size - 1, bad));
        }
    }

    // ---- PagedIndex ----
    #[test]
    fn paged_next_matches_bnx2x_macros() {
        // NEXT_TX_IDX: +2 when (x & 255) == 254.
        let tx = PagedIndex::new(256, 1, 16).unwrap();
        // NEXT_RX_IDX: +3 when (x & 511) == 509.
        let rx = PagedIndex::new(512, 2, 8).unwrap();
        // NEXT_RCQ_IDX: +2 when (x & 63) == 62.
        let rcq = PagedIndex::new(64, 1, 64).unwrap();
        for x in 0..=u16::MAX {
            let want_tx = if x & 255 == 254 { x.wrapping_add(2) } else { x.wrapping_add(1) };
            let want_rx = if x & 511 == 509 { x.wrapping_add(3) } else { x.wrapping_add(1) };
            let want_rcq = if x & 63 == 62 { x.wrapping_add(2) } else { x.wrapping_add(1) };
            assert_eq!(tx.next(x), want_tx, "tx {x}");
            assert_eq!(rx.next(x), want_rx, "rx {x}");
            assert_eq!(rcq.next(x), want_rcq, "rcq {x}");
        }
        // MAX_RX_AVAIL = 4078 = usable - 2 (bnx2x reserves two); MAX_TX_AVAIL likewise.
        assert_eq!(rx.usable(), 4080);
        assert_eq!(tx.usable(), 4080);
        assert_eq!(rcq.usable(), 4032);
        assert_eq!(rx.link_slot(0), 510);
        assert_eq!(rx.next_page(7), 0);
    }

    proptest! {
        #[test]
        fn paged_next_never_lands_on_a_link_slot(per_exp in 2u32..10, link in 1u16..3, pages_exp in 0u32..5, x in any::<u16>()) {
            let per = 1u16 << per_exp;
            prop_assume!(link < per);
            let g = PagedIndex::new(per, link, 1 << pages_exp).unwrap();
            // Indices produced by `next` are data slots; start from one.
            let x = if g.is_link_slot(g.slot(x)) { (x | (per - 1)).wrapping_add(1) } else { x };
            prop_assert!(!g.is_link_slot(g.slot(g.next(x))));
        }

        #[test]
        fn paged_used_counts_data_steps(per_exp in 2u32..10, link in 1u16..3, pages_exp in 0u32..5, start in any::<u16>(), n in 0u32..3000) {
            let per = 1u16 << per_exp;
            prop_assume!(link < per);
            let g = PagedIndex::new(per, link, 1 << pages_exp).unwrap();
            // Start from a valid data index.
            let start = if g.is_link_slot(g.slot(start)) { (start | (per - 1)).wrapping_add(1) } else { start };
            let n = n % g.usable().max(1);
            let end = g.advance(start, n);
            let mut step = start;
            for _ in 0..n { step = g.next(step); }
            prop_assert_eq!(end, step);
            prop_assert_eq!(g.used(end, start), n);
        }
    }

    #[test]
    fn paged_rejects_bad_geometry() {
        assert!(PagedIndex::new(100, 1, 4).is_none());
        assert!(PagedIndex::new(256, 256, 4).is_none());
        assert!(PagedIndex::new(4096, 1, 32).is_none());
        assert!(PagedIndex::new(256, 1, 3).is_none());
    }

    // ---- ColorCursor ----
    proptest! {
        #[test]
        fn color_flips_once_per_lap(size in 1u32..300, steps in 0u32..3000) {
            let mut c = ColorCursor::new(size, true).unwrap();
            for _ in 0..steps { c.advance(); }
            prop_assert_eq!(c.index(), steps % size);
            prop_assert_eq!(c.color(), (steps / size) % 2 == 0);
        }

        #[test]
        fn consumer_sees_exactly_what_producer_wrote(size in 1u32..64, rounds in proptest::collection::vec(0u32..80, 1..20)) {
            // Producer writes entries (value = sequence number, with its colour); the consumer
            // drains after each burst. Bursts never exceed the ring.
            let mut ring = vec![(false, 0u32); size as usize];
            let mut prod = ColorCursor::new(size, true).unwrap();
            let mut cons = ColorCursor::new(size, true).unwrap();
            let (mut seq, mut got) = (0u32, 0u32);
            for burst in rounds {
                for _ in 0..burst.min(size) {
                    ring[prod.index() as usize] = (prod.color(), seq);
                    seq += 1;
                    prod.advance();
                }
                while cons.is_fresh(ring[cons.index() as usize].0) {
                    prop_assert_eq!(ring[cons.index() as usize].1, got);
                    got += 1;
                    cons.advance();
                }
                prop_assert_eq!(got, seq);
            }
        }
    }

    // ---- SharedRing ----
    #[test]
    fn xen_ring_sizes() {
        // 64-byte sring header; RX entries 8 B and TX entries 12 B both give 256.
        assert_eq!(SharedRing::size_for_page(4096, 64, 8).unwrap().size(), 256);
        assert_eq!(SharedRing::size_for_page(4096, 64, 12).unwrap().size(), 256);
        assert!(SharedRing::new(255).is_none());
        assert!(SharedRing::size_for_page(64, 64, 8).is_none());
    }

    proptest! {
        #[test]
        fn xen_need_notify_iff_event_crossed(old in any::<u32>(), delta in 0u32..1000, ev_off in 0u32..2000) {
            let new = old.wrapping_add(delta);
            let event = old.wrapping_add(ev_off);
            // The other side asked to be woken when the producer passes `event`
            // (i.e. event in (old, new]).
            let crossed = ev_off >= 1 && ev_off <= delta;
            prop_assert_eq!(SharedRing::need_notify(old, new, event), crossed);
        }

        #[test]
        fn xen_counts_are_bounded(size_exp in 0u32..12, a in any::<u32>(), b in any::<u32>(), c in any::<u32>()) {
            let r = SharedRing::new(1 << size_exp).unwrap();
            prop_assert!(r.unconsumed_requests(a, b, c) <= r.size());
            prop_assert!(r.unconsumed_responses(a, b) <= r.size());
            prop_assert!(r.slot(a) < r.size());
            if let Some(f) = r.free_requests(a, b) { prop_assert!(f <= r.size()); }
        }

        #[test]
        fn xen_free_plus_outstanding(size_exp in 0u32..12, cons in any::<u32>(), out in 0u32..4096) {
            let r = SharedRing::new(1 << size_exp).unwrap();
            let out = out % (r.size() + 1);
            prop_assert_eq!(r.free_requests(cons.wrapping_add(out), cons), Some(r.size() - out));
        }
    }

    // ---- DescRing through the IOMMU ----
    fn mapped(len: usize, perm: Perm) -> (HostRegion, Iommu) {
        let mem = HostRegion::zeroed(len);
        let mut io = Iommu::new();
        io.map(0x10_0000, mem.clone(), perm).unwrap();
        (mem, io)
    }

    #[test]
    fn fetch_and_write_back_go_through_the_iommu() {
        let (mem, mut io) = mapped(4096, Perm::READ_WRITE);
        let ring = DescRing::<Desc>::new("test", RingLayout::Contiguous { base: 0x10_0000 }, 8).unwrap();
        let d = Desc { addr: U64::new(0xdead_beef), len: U32::new(60), status: U32::new(1) };
        ring.write_back_ordered(&mut io, 3, &d, 12..16, 9).unwrap();
        assert_eq!(ring.fetch(&mut io, 3, 10).unwrap(), d);
        assert_eq!(ring.addr(3).unwrap(), 0x10_0000 + 3 * 16);
        let e = ring.fetch(&mut io, 8, 10).unwrap_err();
        assert_eq!(e, RingError::IndexOutOfRange { ring: "test", index: 8, size: 8 });
        drop(io);
        assert_eq!(mem.read_vec(48, 8).unwrap(), 0xdead_beefu64.to_le_bytes());
        assert_eq!(mem.read_vec(60, 4).unwrap(), 1u32.to_le_bytes());
    }

    #[test]
    fn ordered_write_back_is_whole_in_one_window_and_in_order_across_windows() {
        let desc = Desc { addr: 0x1122_3344_5566_7788.into(), len: 0x99AA_BBCC.into(), status: 0xDDEE_FF01.into() };
        // One window: one copy, the same bytes as the parts would give.
        let (mem, mut io) = mapped(32, Perm::READ_WRITE);
        let ring = DescRing::<Desc>::new("rx0", RingLayout::Contiguous { base: 0x10_0000 }, 2).unwrap();
        ring.write_back_ordered(&mut io, 1, &desc, 12..14, 3).unwrap();
        assert_eq!(mem.read_vec(16, 16).as_deref(), Some(desc.as_bytes()));
        assert_eq!(io.faults_total(), 0);
        drop(io);
        // Bytes 0..12 writable, 12..16 read-only: the first part lands, the tail part is
        // blocked, and the status part (written last) never does.
        let (a, b) = (HostRegion::zeroed(12), HostRegion::zeroed(4));
        let mut io = Iommu::new();
        io.map(0x20_0000, a.clone(), Perm::READ_WRITE).unwrap();
        io.map(0x20_000C, b.clone(), Perm::READ).unwrap();
        let ring = DescRing::<Desc>::new("rx0", RingLayout::Contiguous { base: 0x20_0000 }, 1).unwrap();
        let e = ring.write_back_ordered(&mut io, 0, &desc, 12..14, 4).unwrap_err();
        assert!(matches!(e, RingError::Dma { iova: 0x20_000E, fault, .. } if fault.reason == FaultReason::Permission));
        drop(io);
        assert_eq!(a.to_vec(), desc.as_bytes().get(..12).unwrap());
        assert_eq!(b.to_vec(), [0; 4]);
    }

    #[test]
    fn blocked_dma_is_a_typed_error_naming_ring_and_slot() {
        let (_mem, mut io) = mapped(64, Perm::READ);
        let ring = DescRing::<Desc>::new("rx0", RingLayout::Contiguous { base: 0x10_0000 }, 8).unwrap();
        // Slot 4 is past the 64-byte window.
        match ring.fetch(&mut io, 4, 5).unwrap_err() {
            RingError::Dma { ring, index, iova, fault } => {
                assert_eq!((ring, index, iova), ("rx0", 4, 0x10_0040));
                assert_eq!(fault.reason, FaultReason::NotMapped);
            }
            e => panic!("unexpected {e:?}"),
        }
        // Write-back into a read-only window.
        let e = ring.write_back(&mut io, 0, &Desc::new_zeroed(), 6).unwrap_err();
        assert!(matches!(e, RingError::Dma { fault, .. } if fault.reason == FaultReason::Permission));
        assert_eq!(io.faults_total(), 2);
    }

    #[test]
    fn paged_layout_addresses_each_page() {
        let ring =
            DescRing::<Desc>::new("bd", RingLayout::Paged { pages: vec![0x8000, 0x2000], per_page: 256 }, 512).unwrap();
        assert_eq!(ring.addr(0).unwrap(), 0x8000);
        assert_eq!(ring.addr(255).unwrap(), 0x8000 + 255 * 16);
        assert_eq!(ring.addr(256).unwrap(), 0x2000);
        assert!(DescRing::<Desc>::new("bd", RingLayout::Paged { pages: vec![0], per_page: 256 }, 512).is_err());
        assert!(DescRing::<Desc>::new("x", RingLayout::Contiguous { base: u64::MAX - 8 }, 1).is_err());
    }
}
