//! The IOMMU model in front of every device model.
//!
//! A driver maps windows of its own memory at IO virtual addresses with read and/or write
//! permission; the device reaches memory only through [`Iommu::read`] and [`Iommu::write`].
//! An access outside every window, or against its permission, is blocked and recorded as a
//! [`DmaFault`] — the model's equivalent of a DMAR fault record — and the device sees an
//! error, never undefined memory.
//!
//! A window maps a [`HostRegion`], which owns (or shares) the memory it points into, so
//! whoever holds the [`Iommu`] — its device, or code that moved it out with
//! `std::mem::replace` — can only ever reach memory that is still allocated. Building a
//! region over foreign memory is the one `unsafe` step ([`HostRegion::new`]); mapping,
//! unmapping and device access are safe.

use std::alloc::Layout;
use std::any::Any;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::rc::Rc;

/// Device access permissions of a window (the VFIO_DMA_MAP_FLAG_READ/WRITE pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Perm {
    /// The device may read (driver-to-device data).
    pub read: bool,
    /// The device may write (device-to-driver data).
    pub write: bool,
}

impl Perm {
    pub const READ: Perm = Perm { read: true, write: false };
    pub const WRITE: Perm = Perm { read: false, write: true };
    pub const READ_WRITE: Perm = Perm { read: true, write: true };

    /// Whether this permission lets the device access memory in direction `dir`.
    #[inline]
    pub fn allows(self, dir: DmaDir) -> bool {
        match dir {
            DmaDir::Read => self.read,
            DmaDir::Write => self.write,
        }
    }
}

/// Direction of a device DMA access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DmaDir {
    /// Device reads memory.
    Read,
    /// Device writes memory.
    Write,
}

/// Why an access was blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FaultReason {
    /// No window covers the address.
    NotMapped,
    /// A window covers it but does not grant this direction.
    Permission,
}

/// One blocked device access, like a DMAR fault record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("DMA fault: device {dir:?} of {len} bytes at IOVA {iova:#x} blocked ({reason:?}) at t={at_ns} ns")]
pub struct DmaFault {
    pub iova: u64,
    pub len: usize,
    pub dir: DmaDir,
    pub reason: FaultReason,
    pub at_ns: u64,
}

/// Errors of the driver-facing map/unmap calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("IOVA window {iova:#x}+{len:#x} overlaps an existing window at {existing:#x}")]
    Overlap { iova: u64, len: u64, existing: u64 },
    #[error("IOVA window {iova:#x}+{len:#x} is empty or wraps the address space")]
    BadRange { iova: u64, len: u64 },
    #[error("no window starts at IOVA {iova:#x}")]
    NotMapped { iova: u64 },
}

/// Host memory a window maps: a pointer, a length, and the owner that keeps the memory
/// alive.
///
/// A region never hands out a Rust reference to its bytes: the device model (through
/// [`Iommu::read`] / [`Iommu::write`]) and the copy helpers here only copy in and out, since
/// device DMA may land at any register access. Cloning a region (or [`HostRegion::slice`])
/// shares the memory and its owner; the memory is released only when the last region and
/// every other holder of the owner are gone, so a window can never outlive what it points
/// into, whoever ends up holding the [`Iommu`].
///
/// A region is neither `Send` nor `Sync`: every access through regions that share memory
/// happens on the thread that built them, one copy after another, so no two of them can race.
///
/// A raw pointer is not a region: mapping one takes an `unsafe` constructor with a promise
/// about its lifetime.
///
/// ```compile_fail,E0133
/// use nicqual_model::iommu::{HostRegion, Iommu, Perm};
/// let mut mem = vec![0u8; 64];
/// // Refused: building a region from foreign memory is an unsafe promise.
/// let r = HostRegion::new(mem.as_mut_ptr(), 64, ());
/// Iommu::new().map(0x1000, r, Perm::READ_WRITE).unwrap();
/// ```
pub struct HostRegion {
    ptr: *mut u8,
    len: usize,
    /// Keeps the memory valid for as long as any region (or window) uses it.
    owner: Rc<dyn Any>,
}

impl std::fmt::Debug for HostRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostRegion").field("ptr", &self.ptr).field("len", &self.len).finish_non_exhaustive()
    }
}

impl Clone for HostRegion {
    fn clone(&self) -> Self {
        HostRegion { ptr: self.ptr, len: self.len, owner: Rc::clone(&self.owner) }
    }
}

/// Zeroed heap memory a [`HostRegion`] owns (page-aligned, like the DMA memory a driver
/// maps). Only ever reached through the raw pointer, never through a reference.
struct HeapBlock {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Drop for HeapBlock {
    fn drop(&mut self) {
        if self.layout.size() != 0 {
            // SAFETY: `ptr` came from `alloc_zeroed(layout)` with this same non-zero-size
            // layout (HostRegion::zeroed) and is freed only here, once.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
        }
    }
}

/// Alignment of [`HostRegion::zeroed`] memory: a page, as DMA memory is.
const ZEROED_ALIGN: usize = 4096;

impl HostRegion {
    /// A region over `len` bytes at `ptr` that some `owner` keeps alive.
    ///
    /// # Safety
    /// For as long as `owner` lives (the region keeps it until the last clone or slice is
    /// dropped):
    /// * `ptr` is non-null and `ptr..ptr+len` lies in one allocation (or mapping), valid
    ///   for reads and writes, and is not freed or unmapped;
    /// * nothing reads or writes it through a Rust reference, only by raw copies (the
    ///   device writes it at any register access, like real DMA);
    /// * no other thread accesses it through Rust code while a region over it exists
    ///   (regions are not `Send`; an owner that can be shared across threads must not be
    ///   used to reach the memory from elsewhere). Writers outside the Rust program — the
    ///   device of a real function, another process sharing the mapping — are allowed: to
    ///   this program they are memory-mapped I/O, reached only by copies.
    pub unsafe fn new<O: 'static>(ptr: *mut u8, len: usize, owner: O) -> HostRegion {
        HostRegion { ptr, len, owner: Rc::new(owner) }
    }

    /// `len` zeroed bytes of page-aligned heap memory that the region owns: what a test or
    /// harness maps when no driver allocator is involved. Panics (like `vec![0; len]`)
    /// only when `len` is too large to allocate.
    pub fn zeroed(len: usize) -> HostRegion {
        let layout = match Layout::from_size_align(len, ZEROED_ALIGN) {
            Ok(l) => l,
            Err(_) => panic!("HostRegion::zeroed: {len} bytes is too large"),
        };
        let ptr = if len == 0 {
            // No allocation for an empty region; a dangling, aligned pointer is never
            // dereferenced (every access is bounds-checked against len 0).
            NonNull::<u8>::dangling()
        } else {
            // SAFETY: the layout has a non-zero size (checked just above).
            let p = unsafe { std::alloc::alloc_zeroed(layout) };
            match NonNull::new(p) {
                Some(p) => p,
                None => std::alloc::handle_alloc_error(layout),
            }
        };
        let block = HeapBlock { ptr, layout };
        // SAFETY: `block` owns `len` bytes at `ptr`, freed only when it drops (after the
        // last region holding it); the allocation is private to the block, so nothing else
        // references it or reaches it from another thread.
        unsafe { HostRegion::new(ptr.as_ptr(), len, block) }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `len` bytes at `off` of this region, sharing its memory and owner (a driver maps one
    /// buffer of a larger allocation this way). `None` when the range is not inside.
    pub fn slice(&self, off: usize, len: usize) -> Option<HostRegion> {
        if off.checked_add(len)? > self.len {
            return None;
        }
        // `wrapping_add` keeps this safe; off <= self.len, so the pointer stays inside (or
        // one past the end of) the region's memory.
        Some(HostRegion { ptr: self.ptr.wrapping_add(off), len, owner: Rc::clone(&self.owner) })
    }

    /// Copy `buf.len()` bytes out at `off`; `None` (nothing copied) if out of bounds.
    pub fn read(&self, off: usize, buf: &mut [u8]) -> Option<()> {
        if off.checked_add(buf.len())? > self.len {
            return None;
        }
        // SAFETY: off..off+buf.len() lies inside the region (checked), valid while the owner
        // lives (`new`'s contract); `buf` is a Rust reference, so it cannot point into the
        // region's memory, which is never referenced; no other thread touches it.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), buf.as_mut_ptr(), buf.len()) };
        Some(())
    }

    /// Copy `data` in at `off`; `None` (nothing copied) if out of bounds.
    pub fn write(&self, off: usize, data: &[u8]) -> Option<()> {
        if off.checked_add(data.len())? > self.len {
            return None;
        }
        // SAFETY: as in `read`, copying in the other direction; the memory is writable.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(off), data.len()) };
        Some(())
    }

    /// `len` bytes at `off`, copied out; `None` if out of bounds.
    pub fn read_vec(&self, off: usize, len: usize) -> Option<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read(off, &mut v)?;
        Some(v)
    }

    /// The whole region, copied out.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len];
        // Cannot fail: 0 + len <= len.
        let _ = self.read(0, &mut v);
        v
    }
}

#[derive(Debug)]
struct Window {
    region: HostRegion,
    perm: Perm,
}

impl Window {
    #[inline]
    fn len(&self) -> u64 {
        self.region.len as u64
    }
}

/// Host chunks an access resolved to.
enum Chunks {
    One(*mut u8, usize),
    Many(Vec<(*mut u8, usize)>),
}

impl Chunks {
    fn iter(&self) -> impl Iterator<Item = (*mut u8, usize)> + '_ {
        let (one, many) = match self {
            Chunks::One(p, n) => (Some((*p, *n)), &[][..]),
            Chunks::Many(v) => (None, &v[..]),
        };
        one.into_iter().chain(many.iter().copied())
    }
}

/// Fault records kept; older ones are counted but dropped.
const FAULT_LOG_CAP: usize = 4096;

/// Windows the translation cache remembers.
const RECENT_WINDOWS: usize = 4;

/// A cached window: where it starts, its length, its host memory and permission. An
/// empty entry has length 0 (no window is empty, `map` refuses it), so it matches nothing.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Hit {
    start: u64,
    len: u64,
    host: *mut u8,
    perm: Perm,
}

impl Hit {
    const EMPTY: Hit = Hit { start: 0, len: 0, host: std::ptr::null_mut(), perm: Perm { read: false, write: false } };
}

impl Default for Hit {
    fn default() -> Self {
        Hit::EMPTY
    }
}

#[derive(Debug, Default)]
pub struct Iommu {
    windows: BTreeMap<u64, Window>,
    /// Windows recent translations used (filled round-robin on misses): a datapath touches a
    /// few mapped regions over and over (a ring window, a buffer window, a completion
    /// window), so this saves the tree walk on almost every access. Cleared whenever the
    /// set of windows changes.
    recent: [Cell<Hit>; RECENT_WINDOWS],
    /// Cache entry the next window found in the map replaces (round-robin).
    next_slot: Cell<usize>,
    faults: Vec<DmaFault>,
    faults_total: u64,
    /// A device that is gone (surprise removal) does no DMA at all.
    blocked: bool,
}

impl Iommu {
    pub fn new() -> Self {
        Self::default()
    }

    /// Map `region` at `iova`: the device may then access its bytes with `perm`. The window
    /// keeps the region (and so its memory) until it is unmapped or the IOMMU is dropped.
    pub fn map(&mut self, iova: u64, region: HostRegion, perm: Perm) -> Result<(), MapError> {
        let len = region.len as u64;
        let end = iova.checked_add(len).filter(|_| len > 0).ok_or(MapError::BadRange { iova, len })?;
        if let Some((&start, w)) = self.windows.range(..end).next_back()
            && start + w.len() > iova
        {
            return Err(MapError::Overlap { iova, len, existing: start });
        }
        self.forget();
        self.windows.insert(iova, Window { region, perm });
        Ok(())
    }

    /// Remove the window that starts at `iova`; returns its length.
    pub fn unmap(&mut self, iova: u64) -> Result<u64, MapError> {
        self.forget();
        self.windows.remove(&iova).map(|w| w.len()).ok_or(MapError::NotMapped { iova })
    }

    /// Remove every window (device reset by its owner, teardown).
    pub fn unmap_all(&mut self) {
        self.forget();
        self.windows.clear();
    }

    pub fn window_count(&self) -> usize {
        self.windows.len()
    }

    /// Stop all DMA (the device is gone).
    pub fn set_blocked(&mut self, blocked: bool) {
        self.blocked = blocked;
    }

    /// Fault records (at most the last few thousand) and the total count.
    pub fn faults(&self) -> &[DmaFault] {
        &self.faults
    }

    pub fn faults_total(&self) -> u64 {
        self.faults_total
    }

    pub fn take_faults(&mut self) -> Vec<DmaFault> {
        std::mem::take(&mut self.faults)
    }

    /// Empty the translation cache (the set of windows changed).
    fn forget(&self) {
        for c in &self.recent {
            c.set(Hit::EMPTY);
        }
    }

    /// Remember `hit` (a window just found in the map) in the next cache entry round-robin,
    /// unless it is already cached. Hits never reorder the cache: a datapath alternating
    /// between two windows would otherwise rewrite it on every access.
    #[inline]
    fn remember(&self, hit: Hit) {
        if self.recent.iter().any(|c| c.get().len != 0 && c.get().start == hit.start) {
            return;
        }
        let i = self.next_slot.get() % RECENT_WINDOWS;
        self.next_slot.set(i + 1);
        if let Some(c) = self.recent.get(i) {
            c.set(hit);
        }
    }

    /// Host address of `len` bytes at `iova` when they all lie in one of the windows
    /// translated recently and it allows `dir`: the common case (a driver's rings and
    /// buffers in a few windows), answered without the window map and without writing.
    #[inline(always)]
    fn cached(&self, iova: u64, len: usize, dir: DmaDir) -> Option<*mut u8> {
        for c in &self.recent {
            let h = c.get();
            let off = iova.wrapping_sub(h.start);
            if off >= h.len {
                continue;
            }
            if !h.perm.allows(dir) || off.checked_add(len as u64).is_none_or(|end| end > h.len) {
                return None;
            }
            // SAFETY: a cached window with a non-zero length (`off < h.len`) is one still
            // mapped (every change to the windows empties the cache, `forget`), so its
            // region and the memory it owns are alive; `off + len <= h.len`, so the
            // pointer stays inside that region.
            return Some(unsafe { h.host.add(off as usize) });
        }
        None
    }

    /// Whether a `dir` access of `len` bytes at `iova` would succeed inside one window (no
    /// fault is recorded either way).
    pub fn in_one_window(&self, iova: u64, len: usize, dir: DmaDir) -> bool {
        !self.blocked && matches!(self.translate(iova, len, dir), Ok(Chunks::One(..)))
    }

    /// Resolve `iova..iova+len` to host chunks, all-or-nothing. The common case (one
    /// window covers the access) allocates nothing.
    fn translate(&self, iova: u64, len: usize, dir: DmaDir) -> Result<Chunks, FaultReason> {
        let allows = |p: Perm| p.allows(dir);
        if let Some(p) = self.cached(iova, len, dir) {
            return Ok(Chunks::One(p, len));
        }
        let mut chunks = Chunks::Many(Vec::new());
        let mut addr = iova;
        let mut left = len as u64;
        while left > 0 {
            let (&start, w) = self.windows.range(..=addr).next_back().ok_or(FaultReason::NotMapped)?;
            let off = addr - start;
            let wlen = w.len();
            if off >= wlen {
                return Err(FaultReason::NotMapped);
            }
            if !allows(w.perm) {
                return Err(FaultReason::Permission);
            }
            let host = w.region.ptr;
            self.remember(Hit { start, len: wlen, host, perm: w.perm });
            let n = (wlen - off).min(left);
            // SAFETY: off < wlen, so the result stays inside the window's region, whose
            // memory the window keeps alive (HostRegion::new's contract).
            let p = unsafe { host.add(off as usize) };
            if n == len as u64 {
                return Ok(Chunks::One(p, n as usize));
            }
            if let Chunks::Many(v) = &mut chunks {
                v.push((p, n as usize));
            }
            addr = match addr.checked_add(n) {
                Some(a) => a,
                None if n == left => addr,
                None => return Err(FaultReason::NotMapped),
            };
            left -= n;
        }
        Ok(chunks)
    }

    fn record(&mut self, iova: u64, len: usize, dir: DmaDir, reason: FaultReason, at_ns: u64) -> DmaFault {
        let f = DmaFault { iova, len, dir, reason, at_ns };
        self.faults_total += 1;
        if self.faults.len() < FAULT_LOG_CAP {
            self.faults.push(f);
        }
        tracing::debug!(target: "nicqual::iommu", "{f}");
        f
    }

    /// Device reads `buf.len()` bytes at `iova`.
    #[inline(always)]
    pub fn read(&mut self, iova: u64, buf: &mut [u8], at_ns: u64) -> Result<(), DmaFault> {
        if !self.blocked
            && let Some(p) = self.cached(iova, buf.len(), DmaDir::Read)
        {
            // SAFETY: p..p+len lies in a mapped readable window (`cached`), whose region keeps
            // the memory valid; `buf` is a Rust reference and region memory is never
            // referenced (HostRegion::new's contract), so the two cannot overlap.
            unsafe { copy_bytes(p, buf.as_mut_ptr(), buf.len()) };
            return Ok(());
        }
        self.read_slow(iova, buf, at_ns)
    }

    /// `read` outside the windows cached, or with DMA blocked.
    #[inline(never)]
    fn read_slow(&mut self, iova: u64, buf: &mut [u8], at_ns: u64) -> Result<(), DmaFault> {
        if self.blocked {
            return Err(DmaFault { iova, len: buf.len(), dir: DmaDir::Read, reason: FaultReason::NotMapped, at_ns });
        }
        match self.translate(iova, buf.len(), DmaDir::Read) {
            Ok(chunks) => {
                let mut done = 0;
                for (p, n) in chunks.iter() {
                    // SAFETY: p..p+n lies in a mapped window (translate), whose region keeps
                    // the memory valid; buf[done..done+n] is in bounds because the chunk
                    // sizes sum to buf.len(); they cannot overlap (region memory is never
                    // referenced, `buf` is a reference).
                    unsafe { std::ptr::copy_nonoverlapping(p, buf[done..].as_mut_ptr(), n) };
                    done += n;
                }
                Ok(())
            }
            Err(r) => Err(self.record(iova, buf.len(), DmaDir::Read, r, at_ns)),
        }
    }

    /// Device writes `data` at `iova`.
    #[inline(always)]
    pub fn write(&mut self, iova: u64, data: &[u8], at_ns: u64) -> Result<(), DmaFault> {
        if !self.blocked
            && let Some(p) = self.cached(iova, data.len(), DmaDir::Write)
        {
            // SAFETY: as in `read`'s fast path, with the copy in the other direction.
            unsafe { copy_bytes(data.as_ptr(), p, data.len()) };
            return Ok(());
        }
        self.write_slow(iova, data, at_ns)
    }

    /// Device writes `words` at `iova` as little-endian 64-bit words (a descriptor the
    /// model composed in registers): one 8-byte store per word when the range is in a
    /// cached window, so no wider reload of narrow stores (no store-forwarding stall);
    /// otherwise exactly what [`Iommu::write`] does with the same bytes.
    #[inline(always)]
    pub fn write_words<const N: usize>(&mut self, iova: u64, words: &[u64; N], at_ns: u64) -> Result<(), DmaFault> {
        if self.write_words_if_cached(iova, words) {
            return Ok(());
        }
        const { assert!(N <= 64, "write_words: at most 64 words (512 bytes)") };
        let mut bytes = [0u8; 512];
        let b = &mut bytes[..N * 8];
        for (d, w) in b.chunks_exact_mut(8).zip(words) {
            d.copy_from_slice(&w.to_le_bytes());
        }
        self.write_slow(iova, b, at_ns)
    }

    /// [`Iommu::write_words`]'s fast path alone: true when the words were stored (the range
    /// lies in one cached window that allows writes); false, nothing written and no fault
    /// recorded, otherwise.
    #[inline(always)]
    pub fn write_words_if_cached<const N: usize>(&mut self, iova: u64, words: &[u64; N]) -> bool {
        if self.blocked {
            return false;
        }
        let Some(p) = self.cached(iova, N * 8, DmaDir::Write) else { return false };
        // SAFETY: p..p+8N lies in a mapped writable window (`cached`), whose region keeps
        // the memory valid; region memory is never referenced, so nothing aliases it.
        unsafe { store_words(p, words) };
        true
    }

    /// Write `data` at `iova` when the whole range lies in one cached window that allows
    /// it (true: written); false, with nothing written and no fault recorded, otherwise.
    #[inline(always)]
    pub fn write_if_cached(&mut self, iova: u64, data: &[u8]) -> bool {
        if self.blocked {
            return false;
        }
        let Some(p) = self.cached(iova, data.len(), DmaDir::Write) else { return false };
        // SAFETY: as in `write`'s fast path.
        unsafe { copy_bytes(data.as_ptr(), p, data.len()) };
        true
    }

    /// `write` outside the windows cached, or with DMA blocked.
    #[inline(never)]
    fn write_slow(&mut self, iova: u64, data: &[u8], at_ns: u64) -> Result<(), DmaFault> {
        if self.blocked {
            return Err(DmaFault { iova, len: data.len(), dir: DmaDir::Write, reason: FaultReason::NotMapped, at_ns });
        }
        match self.translate(iova, data.len(), DmaDir::Write) {
            Ok(chunks) => {
                let mut done = 0;
                for (p, n) in chunks.iter() {
                    // SAFETY: as in `read`, with the copy in the other direction.
                    unsafe { std::ptr::copy_nonoverlapping(data[done..].as_ptr(), p, n) };
                    done += n;
                }
                Ok(())
            }
            Err(r) => Err(self.record(iova, data.len(), DmaDir::Write, r, at_ns)),
        }
    }
}

/// Copy `n` bytes from `src` to `dst` inline: up to 64 bytes as two possibly overlapping
/// loads and two stores of the largest power-of-two width not above `n` (a descriptor or a
/// minimum-size frame costs no call into `memmove`), longer copies as `copy_nonoverlapping`.
///
/// # Safety
/// As for `copy_nonoverlapping`: `src..src+n` valid for reads, `dst..dst+n` valid for
/// writes, the two not overlapping (and, here, neither referenced by Rust).
#[inline(always)]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: in each arm, every load lies in src..src+n and every store in dst..dst+n (the
    // second pair starts at n - width >= 0 and ends at n); unaligned accesses; all loads of
    // an arm happen before its stores, and the ranges do not overlap (caller).
    unsafe {
        if n > 64 {
            std::ptr::copy_nonoverlapping(src, dst, n);
        } else if n >= 32 {
            let (a, b) =
                (src.cast::<[u128; 2]>().read_unaligned(), src.add(n - 32).cast::<[u128; 2]>().read_unaligned());
            dst.cast::<[u128; 2]>().write_unaligned(a);
            dst.add(n - 32).cast::<[u128; 2]>().write_unaligned(b);
        } else if n >= 16 {
            let (a, b) = (src.cast::<u128>().read_unaligned(), src.add(n - 16).cast::<u128>().read_unaligned());
            dst.cast::<u128>().write_unaligned(a);
            dst.add(n - 16).cast::<u128>().write_unaligned(b);
        } else if n >= 8 {
            let (a, b) = (src.cast::<u64>().read_unaligned(), src.add(n - 8).cast::<u64>().read_unaligned());
            dst.cast::<u64>().write_unaligned(a);
            dst.add(n - 8).cast::<u64>().write_unaligned(b);
        } else if n >= 4 {
            let (a, b) = (src.cast::<u32>().read_unaligned(), src.add(n - 4).cast::<u32>().read_unaligned());
            dst.cast::<u32>().write_unaligned(a);
            dst.add(n - 4).cast::<u32>().write_unaligned(b);
        } else {
            std::ptr::copy_nonoverlapping(src, dst, n);
        }
    }
}

/// Store `words` little-endian at `p`, one 8-byte store each: volatile when `p` is 8-byte
/// aligned (so the compiler neither merges the stores nor reloads the words wider than
/// they were written), plain unaligned stores otherwise.
///
/// # Safety
/// `p..p + 8 * words.len()` must be valid for writes and referenced by nothing.
#[inline(always)]
pub(crate) unsafe fn store_words(p: *mut u8, words: &[u64]) {
    let aligned = (p as usize).is_multiple_of(8);
    for (i, w) in words.iter().enumerate() {
        // SAFETY: word i's 8 bytes lie inside the range the caller vouches for; the volatile
        // store is only used when the address is 8-byte aligned.
        unsafe {
            let d = p.add(8 * i).cast::<u64>();
            if aligned { d.write_volatile(w.to_le()) } else { d.write_unaligned(w.to_le()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_inside_window_copies_and_outside_faults() {
        let mem = HostRegion::zeroed(64);
        let mut io = Iommu::new();
        io.map(0x1000, mem.clone(), Perm::READ_WRITE).unwrap();
        io.write(0x1008, &[1, 2, 3], 5).unwrap();
        let mut b = [0u8; 3];
        io.read(0x1008, &mut b, 5).unwrap();
        assert_eq!(b, [1, 2, 3]);
        let f = io.write(0x1040, &[0], 7).unwrap_err();
        assert_eq!((f.iova, f.reason, f.at_ns), (0x1040, FaultReason::NotMapped, 7));
        let f = io.read(0x103F, &mut [0u8; 2], 8).unwrap_err();
        assert_eq!(f.reason, FaultReason::NotMapped, "straddling the window end is blocked");
        assert_eq!(io.faults_total(), 2);
        drop(io);
        assert_eq!(mem.read_vec(8, 3).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn permission_is_enforced_per_direction() {
        let mut io = Iommu::new();
        io.map(0, HostRegion::zeroed(16), Perm::READ).unwrap();
        assert_eq!(io.write(0, &[1], 0).unwrap_err().reason, FaultReason::Permission);
        assert!(io.read(0, &mut [0u8; 16], 0).is_ok());
    }

    #[test]
    fn overlapping_windows_are_refused() {
        let mem = HostRegion::zeroed(32);
        mem.write(12, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let mut io = Iommu::new();
        io.map(0x100, mem.slice(0, 16).unwrap(), Perm::READ).unwrap();
        let e = io.map(0x108, mem.slice(0, 16).unwrap(), Perm::READ).unwrap_err();
        assert_eq!(e, MapError::Overlap { iova: 0x108, len: 16, existing: 0x100 });
        assert_eq!(io.map(0, HostRegion::zeroed(0), Perm::READ), Err(MapError::BadRange { iova: 0, len: 0 }));
        io.map(0x110, mem.slice(16, 16).unwrap(), Perm::READ).unwrap();
        // An access spanning two adjacent windows is served from both.
        let mut b = [0u8; 8];
        io.read(0x10C, &mut b, 0).unwrap();
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn region_copies_and_slices_are_bounds_checked() {
        let r = HostRegion::zeroed(4096);
        assert_eq!((r.len(), r.is_empty()), (4096, false));
        assert!(r.write(4095, &[9]).is_some() && r.write(4095, &[9, 9]).is_none());
        assert!(r.write(usize::MAX, &[1]).is_none() && r.read(usize::MAX, &mut [0]).is_none());
        let s = r.slice(4000, 96).unwrap();
        assert_eq!(s.read_vec(95, 1).unwrap(), [9]);
        assert!(r.slice(4000, 97).is_none() && r.slice(usize::MAX, 2).is_none());
        assert!(r.slice(4096, 0).unwrap().is_empty());
        assert_eq!(r.to_vec().iter().map(|&b| b as usize).sum::<usize>(), 9);
    }

    /// The translation cache never outlives a window: after an unmap the address faults,
    /// after a re-map at the same IOVA the new memory is reached, and permission and bounds
    /// are checked on a cache hit as on a miss.
    #[test]
    fn translation_cache_follows_map_and_unmap() {
        let (a, b) = (HostRegion::zeroed(64), HostRegion::zeroed(64));
        a.write(0, &[0xAA; 64]).unwrap();
        b.write(0, &[0xBB; 64]).unwrap();
        let mut io = Iommu::new();
        io.map(0x1000, a.clone(), Perm::READ).unwrap();
        let mut x = [0u8; 4];
        io.read(0x1000, &mut x, 0).unwrap();
        assert_eq!(x, [0xAA; 4]);
        assert_eq!(io.write(0x1000, &[1], 0).unwrap_err().reason, FaultReason::Permission, "hit, wrong direction");
        assert_eq!(io.read(0x103E, &mut x, 0).unwrap_err().reason, FaultReason::NotMapped, "hit, past the end");
        io.unmap(0x1000).unwrap();
        assert_eq!(io.read(0x1000, &mut x, 0).unwrap_err().reason, FaultReason::NotMapped);
        io.map(0x1000, b.clone(), Perm::READ_WRITE).unwrap();
        io.read(0x1000, &mut x, 0).unwrap();
        assert_eq!(x, [0xBB; 4], "the re-mapped memory, not the old window's");
        io.unmap_all();
        assert_eq!(io.read(0x1000, &mut x, 0).unwrap_err().reason, FaultReason::NotMapped);
        assert_eq!(a.read_vec(0, 1).unwrap(), [0xAA]);
    }

    /// The inline copy moves exactly `n` bytes for every size around its width steps.
    #[test]
    fn copy_bytes_moves_exactly_n_bytes() {
        for n in 0..=130usize {
            let src: Vec<u8> = (0..n).map(|i| i as u8 ^ 0x5A).collect();
            let mut dst = vec![0xEEu8; n + 16];
            // SAFETY: src has n bytes, dst n + 16; distinct allocations.
            unsafe { copy_bytes(src.as_ptr(), dst.as_mut_ptr().add(8), n) };
            assert_eq!(&dst[8..8 + n], &src[..], "n = {n}");
            assert!(dst[..8].iter().chain(&dst[8 + n..]).all(|&b| b == 0xEE), "n = {n}: wrote outside");
        }
    }

    /// `write_words` stores the same bytes as `write` would, in a cached window, across
    /// two windows (the uncached path) and at an unaligned address, and faults the same.
    #[test]
    fn write_words_matches_write() {
        let (a, b) = (HostRegion::zeroed(64), HostRegion::zeroed(64));
        let mut io = Iommu::new();
        io.map(0x1000, a.clone(), Perm::READ_WRITE).unwrap();
        io.map(0x1040, b.clone(), Perm::READ_WRITE).unwrap();
        let w = [0x0807_0605_0403_0201u64, 0x100F_0E0D_0C0B_0A09];
        let bytes: Vec<u8> = (1..=16).collect();
        io.read(0x1000, &mut [0u8; 1], 0).unwrap();
        io.write_words(0x1000, &w, 0).unwrap();
        assert_eq!(a.read_vec(0, 16).unwrap(), bytes);
        io.write_words(0x1013, &w, 0).unwrap();
        assert_eq!(a.read_vec(0x13, 16).unwrap(), bytes, "unaligned");
        io.write_words(0x1038, &w, 0).unwrap();
        assert_eq!(a.read_vec(0x38, 8).unwrap(), bytes[..8]);
        assert_eq!(b.read_vec(0, 8).unwrap(), bytes[8..], "across two windows");
        let f = io.write_words(0x1078, &w, 0).unwrap_err();
        assert_eq!((f.iova, f.len, f.reason), (0x1078, 16, FaultReason::NotMapped));
        assert_eq!(b.read_vec(0x38, 8).unwrap(), [0; 8], "all or nothing");
    }

    /// More windows in use than the cache holds, visited round-robin and at random: every
    /// access reaches its own window's memory, whichever entries the cache evicted.
    #[test]
    fn translation_cache_serves_many_windows() {
        let n = RECENT_WINDOWS * 3;
        let regions: Vec<HostRegion> = (0..n).map(|_| HostRegion::zeroed(256)).collect();
        let mut io = Iommu::new();
        for (i, r) in regions.iter().enumerate() {
            r.write(0, &[i as u8; 256]).unwrap();
            io.map(0x10_000 * (i as u64 + 1), r.clone(), Perm::READ_WRITE).unwrap();
        }
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for step in 0..4 * n * n {
            let i = if step % 2 == 0 {
                step / 2 % n
            } else {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % n as u64) as usize
            };
            let off = (step * 7 % 200) as u64;
            let mut x = [0u8; 8];
            io.read(0x10_000 * (i as u64 + 1) + off, &mut x, 0).unwrap();
            assert_eq!(x, [i as u8; 8], "step {step}: window {i}");
            io.write(0x10_000 * (i as u64 + 1) + 248, &[i as u8; 8], 0).unwrap();
        }
        assert_eq!(io.faults_total(), 0);
        // A gap between windows faults even with its neighbours cached.
        assert_eq!(io.read(0x10_000 + 256, &mut [0u8; 1], 0).unwrap_err().reason, FaultReason::NotMapped);
    }

    /// The misuse the old raw-pointer `map` allowed from safe code: take the IOMMU away
    /// from the device that owns it, let every other holder of the memory go, then DMA
    /// through it. The window owns its memory, so the access lands in memory that is
    /// still allocated (the slot the device wrote is read back) instead of freed memory.
    #[test]
    fn a_stolen_iommu_keeps_its_windows_memory_alive() {
        use crate::PciDevice;
        let mut dev = crate::bnx2x::Bnx2xDevice::new();
        dev.iommu().map(0x4000, HostRegion::zeroed(256), Perm::READ_WRITE).unwrap();
        let mut stolen = std::mem::replace(dev.iommu(), Iommu::new());
        drop(dev);
        stolen.write(0x40F0, &[0xA5; 16], 1).unwrap();
        let mut back = [0u8; 16];
        stolen.read(0x40F0, &mut back, 2).unwrap();
        assert_eq!(back, [0xA5; 16]);
        assert_eq!(stolen.faults_total(), 0);
    }
}
