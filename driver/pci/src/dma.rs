//! Driver DMA memory: page-aligned anonymous mappings the backend maps at an IOVA.
//!
//! The device may write this memory at any register access (that is what DMA is), so it is
//! never handed out as a Rust reference: all access is by copy, through bounds-checked
//! volatile reads and writes at an offset.

use crate::error::BackendError;
use memmap2::{MmapOptions, MmapRaw};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// Anonymous mappings of at most this many bytes are kept for reuse (per thread, at most
/// [`SPARE_MAX`] of them) when the last holder of their block drops it, instead of being
/// unmapped: a test or fuzz harness that brings a driver up per input then pays one
/// `memset` instead of a page fault per touched page and an `munmap`.
const SPARE_BYTES: usize = 4 << 20;
/// At most this many spare mappings per thread (a streaming datapath frees one receive
/// buffer per frame, so a burst of them should be reusable)...
const SPARE_MAX: usize = 128;
/// ...and at most this many bytes of them in all.
const SPARE_TOTAL: usize = 32 << 20;

thread_local! {
    /// Whole anonymous mappings no block uses any more (each the only `Arc` to its map).
    static SPARE: RefCell<Vec<Arc<MmapRaw>>> = const { RefCell::new(Vec::new()) };
}

/// The smallest spare mapping of at least `len` bytes, taken out of this thread's cache.
fn take_spare(len: usize) -> Option<Arc<MmapRaw>> {
    SPARE
        .try_with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            let i =
                s.iter().enumerate().filter(|(_, m)| m.len() >= len).min_by_key(|(_, m)| m.len()).map(|(i, _)| i)?;
            Some(s.swap_remove(i))
        })
        .ok()
        .flatten()
}

/// A block of DMA-able memory. Cloning shares it; a backend keeps a clone for as long as
/// the block is mapped, so the device can never reach freed memory.
///
/// Neither `Send` nor `Sync`. Its copies are plain (volatile or `memcpy`) loads and stores,
/// not atomics, so two threads copying through clones of one block at once would be a data
/// race; keeping every clone on the thread that allocated the block rules that out. The
/// driver and an emulated device run on that one thread, one call after another. What
/// remains concurrent is a writer outside this program — a real device's DMA (VFIO), QEMU
/// writing guest RAM (qtest) — which the Rust memory model does not see: to the driver it is
/// I/O, read only by copies and ordered by the descriptor protocol and the fences in
/// [`DmaMemory::read_bulk`] / [`DmaMemory::write_bulk`].
///
/// ```compile_fail,E0277
/// use nicqual_pci::dma::DmaMemory;
/// let m = DmaMemory::alloc(4096).unwrap();
/// let other = m.clone();
/// // Refused: a clone cannot cross to another thread and race this one's copies.
/// let t = std::thread::spawn(move || other.write_u32(0, 1));
/// m.write_u32(0, 2);
/// t.join().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct DmaMemory {
    block: Rc<Block>,
}

/// Called once when the last holder of a window drops it (returns the range to its pool).
type Release = Box<dyn FnOnce() + Send + Sync>;

/// The memory behind a [`DmaMemory`]: a whole anonymous mapping, or a window into a larger
/// shared mapping (guest RAM of a QEMU, where IOVA = guest-physical address).
struct Block {
    map: Arc<MmapRaw>,
    off: usize,
    len: usize,
    fixed_iova: Option<u64>,
    release: Option<Release>,
    /// Never read: held so that the block this one is a slice of stays alive (and its `release` deferred) for as
    /// long as the slice lives.
    _parent: Option<Rc<Block>>,
    /// The whole of a small anonymous mapping: given to the spare cache when dropped.
    recycle: bool,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("off", &self.off)
            .field("len", &self.len)
            .field("fixed_iova", &self.fixed_iova)
            .finish()
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(r) = self.release.take() {
            r();
        }
        // The last block over this map (slices hold their parent, so they are gone): the
        // cache's clone becomes the only one once this block's field drops.
        // No weak reference may exist either: one could be upgraded to reach the memory.
        if self.recycle && Arc::strong_count(&self.map) == 1 && Arc::weak_count(&self.map) == 0 {
            let map = Arc::clone(&self.map);
            let _ = SPARE.try_with(|s| {
                if let Ok(mut s) = s.try_borrow_mut()
                    && s.len() < SPARE_MAX
                    && s.iter().map(|m| m.len()).sum::<usize>() + map.len() <= SPARE_TOTAL
                {
                    s.push(map);
                }
            });
        }
    }
}

impl DmaMemory {
    /// A block that is the whole anonymous mapping `m` of `len` bytes.
    /// The whole anonymous mapping `m`; `spare` lets it go to the spare cache when dropped
    /// (small mappings of ordinary pages only: huge pages go back to the system).
    fn whole(m: memmap2::MmapMut, len: usize, spare: bool) -> DmaMemory {
        DmaMemory::anonymous(Arc::new(MmapRaw::from(m)), len, spare)
    }

    fn anonymous(map: Arc<MmapRaw>, len: usize, spare: bool) -> DmaMemory {
        let recycle = spare && map.len() <= SPARE_BYTES;
        DmaMemory {
            block: Rc::new(Block { map, off: 0, len, fixed_iova: None, release: None, _parent: None, recycle }),
        }
    }

    /// Allocate `len` bytes (rounded up to 4 KiB), zeroed: a spare mapping of this thread
    /// when one is large enough (zeroed here), else a fresh one.
    pub fn alloc(len: usize) -> Result<DmaMemory, BackendError> {
        let len = len.max(1).div_ceil(4096) * 4096;
        if len <= SPARE_BYTES
            && let Some(map) = take_spare(len)
        {
            // SAFETY: `map` is at least `len` bytes (take_spare's filter) and writable (an
            // anonymous read-write mapping). It was the whole of a block whose last holder
            // dropped it with no other `Arc` to the map left, and only the cache held it
            // since, so no DmaMemory covers any of its bytes and no reference into it exists.
            unsafe { std::ptr::write_bytes(map.as_mut_ptr(), 0, len) };
            return Ok(DmaMemory::anonymous(map, len, true));
        }
        let m =
            MmapOptions::new().len(len).map_anon().map_err(|e| BackendError::DmaAlloc { len, why: e.to_string() })?;
        Ok(DmaMemory::whole(m, len, true))
    }

    /// A zeroed window of `len` bytes at `off` inside `map`, which the device sees at
    /// `iova` and nowhere else. `release` runs when the last clone is dropped.
    ///
    /// # Safety
    /// No other live `DmaMemory` may cover any byte of `off..off+len` of `map` (the
    /// caller's allocator hands each range out once, and takes it back only in `release`).
    pub unsafe fn window(
        map: Arc<MmapRaw>,
        off: usize,
        len: usize,
        iova: u64,
        release: Release,
    ) -> Result<DmaMemory, BackendError> {
        if off.checked_add(len).is_none_or(|end| end > map.len()) || len == 0 {
            return Err(BackendError::DmaAlloc { len, why: format!("window {off:#x}+{len:#x} outside the region") });
        }
        let m = DmaMemory {
            block: Rc::new(Block {
                map,
                off,
                len,
                fixed_iova: Some(iova),
                release: Some(release),
                _parent: None,
                recycle: false,
            }),
        };
        // SAFETY: off+len <= map.len() (checked above), so the range is inside the live
        // mapping, which `m` keeps alive; the window belongs to no other DmaMemory (this
        // function's contract), and no reference into it exists.
        unsafe { std::ptr::write_bytes(m.as_ptr(), 0, len) };
        Ok(m)
    }

    /// Allocate `len` bytes (rounded up to 2 MiB) from 2 MiB huge pages, zeroed. Fails when
    /// the system has no free huge pages; callers fall back to [`DmaMemory::alloc`].
    pub fn alloc_huge(len: usize) -> Result<DmaMemory, BackendError> {
        const HUGE: usize = 2 << 20;
        let len = len.max(1).div_ceil(HUGE) * HUGE;
        let m = MmapOptions::new()
            .len(len)
            .huge(Some(21))
            .map_anon()
            .map_err(|e| BackendError::DmaAlloc { len, why: format!("2 MiB huge pages: {e}") })?;
        Ok(DmaMemory::whole(m, len, false))
    }

    /// A view of `len` bytes at `off` of this block that can be mapped on its own (at its
    /// own IOVA, with its own permissions), as a driver maps one buffer of a larger
    /// allocation. It shares the memory and keeps the whole block alive; its fixed IOVA, if
    /// the block has one, is the block's plus `off`. `None` when the range is empty or
    /// outside the block.
    pub fn slice(&self, off: usize, len: usize) -> Option<DmaMemory> {
        let end = off.checked_add(len)?;
        if len == 0 || end > self.block.len {
            return None;
        }
        let fixed_iova = match self.block.fixed_iova {
            Some(i) => Some(i.checked_add(u64::try_from(off).ok()?)?),
            None => None,
        };
        Some(DmaMemory {
            block: Rc::new(Block {
                map: Arc::clone(&self.block.map),
                off: self.block.off.checked_add(off)?,
                len,
                fixed_iova,
                release: None,
                _parent: Some(Rc::clone(&self.block)),
                recycle: false,
            }),
        })
    }

    /// Length in bytes (after rounding at allocation).
    #[inline]
    pub fn len(&self) -> usize {
        self.block.len
    }

    /// True for a block of no bytes (never the case for one this module made).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.block.len == 0
    }

    /// Base pointer (for backends that hand it to an IOMMU). Reaching memory through it is
    /// the caller's `unsafe` promise, which must match this type's: copies only, never a
    /// reference, from this thread, and only while a clone keeps the block alive.
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        // SAFETY: off <= map.len() by construction (window checks off+len), so the result
        // stays inside (or one past the end of) the mapping.
        unsafe { self.block.map.as_mut_ptr().add(self.block.off) }
    }

    /// The only IOVA this block can be mapped at, when the backend decides it (qtest:
    /// the block is guest RAM and its IOVA is its guest-physical address). `None`: the
    /// driver chooses.
    #[inline]
    pub fn fixed_iova(&self) -> Option<u64> {
        self.block.fixed_iova
    }

    /// Number of holders (this block plus the backends that keep it mapped).
    pub fn holders(&self) -> usize {
        Rc::strong_count(&self.block)
    }

    #[inline]
    fn check(&self, off: usize, n: usize) -> Option<()> {
        (off.checked_add(n)? <= self.len()).then_some(())
    }

    /// Copy `buf.len()` bytes out at `off`; `None` if out of bounds.
    #[inline]
    pub fn read(&self, off: usize, buf: &mut [u8]) -> Option<()> {
        self.check(off, buf.len())?;
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: off+i < len (checked above); the mapping lives as long as self.
            // Volatile because the device may write concurrently with respect to the
            // compiler's view (inside any backend call).
            *b = unsafe { self.as_ptr().add(off + i).read_volatile() };
        }
        Some(())
    }

    /// Copy `data` in at `off`; `None` if out of bounds.
    #[inline]
    pub fn write(&self, off: usize, data: &[u8]) -> Option<()> {
        self.check(off, data.len())?;
        for (i, b) in data.iter().enumerate() {
            // SAFETY: as in `read`; the mapping is writable (anonymous or shared read-write).
            unsafe { self.as_ptr().add(off + i).write_volatile(*b) };
        }
        Some(())
    }

    /// Copy `buf.len()` bytes out at `off` in one `memcpy` (the datapath's bulk copy);
    /// `None` if out of bounds. Ordering against the device: callers read the descriptor's
    /// DD/ownership word first ([`DmaMemory::read_u32`], volatile); the acquire fence here
    /// keeps this copy from being reordered before that read.
    #[inline]
    pub fn read_bulk(&self, off: usize, buf: &mut [u8]) -> Option<()> {
        self.check(off, buf.len())?;
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        // SAFETY: off..off+len is inside the mapping (checked); the mapping lives as long as
        // self; `buf` is a distinct Rust allocation, so the ranges cannot overlap. The
        // memory is never referenced as a Rust object (only copied), and the device writes
        // it only inside backend calls (emulated) or as DMA ordered by the fence above.
        unsafe { std::ptr::copy_nonoverlapping(self.as_ptr().add(off), buf.as_mut_ptr(), buf.len()) };
        Some(())
    }

    /// Copy `data` in at `off` in one `memcpy`; a release fence orders it before any later
    /// doorbell (tail) write. `None` if out of bounds.
    #[inline]
    pub fn write_bulk(&self, off: usize, data: &[u8]) -> Option<()> {
        self.check(off, data.len())?;
        // SAFETY: as in `read_bulk`, copying in the other direction; the mapping is writable.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_ptr().add(off), data.len()) };
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        Some(())
    }

    /// Store `words` at `off` as consecutive little-endian 64-bit words, one 8-byte store
    /// each (a descriptor composed in registers): unlike a `memcpy` of a descriptor built
    /// field by field on the stack, nothing wider than the stores that wrote it is
    /// reloaded, so no store-forwarding stall. A release fence orders the stores before
    /// any later doorbell write. `None` if out of bounds (nothing is written).
    #[inline]
    pub fn write_words(&self, off: usize, words: &[u64]) -> Option<()> {
        self.check(off, words.len().checked_mul(8)?)?;
        // SAFETY: add: off <= len (checked), inside the mapping.
        let base = unsafe { self.as_ptr().add(off) };
        // Volatile when aligned: the compiler must neither merge the stores into wider ones
        // nor reload the words wider than they were written.
        let aligned = (base as usize).is_multiple_of(8);
        for (i, w) in words.iter().enumerate() {
            // SAFETY: off + 8 * (i + 1) <= len (checked above for all words), so the 8
            // bytes lie inside the mapping, which lives as long as self; the volatile store
            // only at an 8-byte aligned address; no reference into the memory exists.
            unsafe {
                let d = base.add(8 * i).cast::<u64>();
                if aligned { d.write_volatile(w.to_le()) } else { d.write_unaligned(w.to_le()) }
            }
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        Some(())
    }

    /// Volatile little-endian 32-bit read at `off` (a descriptor's status word); `None` if
    /// out of bounds.
    #[inline]
    pub fn read_u32(&self, off: usize) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(off, &mut b)?;
        Some(u32::from_le_bytes(b))
    }

    /// Volatile little-endian 32-bit write at `off`; `None` if out of bounds.
    #[inline]
    pub fn write_u32(&self, off: usize, v: u32) -> Option<()> {
        self.write(off, &v.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recycled mapping comes back zeroed, and only once every block and slice over it
    /// is gone; a block still held is never handed out again.
    #[test]
    fn recycled_blocks_come_back_zeroed_and_only_when_unreachable() {
        let a = DmaMemory::alloc(12 << 10).unwrap();
        a.write(0, &[0xA5; 64]).unwrap();
        a.write((12 << 10) - 8, &[0x5A; 8]).unwrap();
        let part = a.slice(4096, 4096).unwrap();
        let ptr = a.as_ptr();
        drop(a);
        let b = DmaMemory::alloc(12 << 10).unwrap();
        assert_ne!(b.as_ptr(), ptr, "the slice still holds the first block");
        assert_eq!(part.len(), 4096);
        drop(part);
        let c = DmaMemory::alloc(12 << 10).unwrap();
        assert_eq!(c.as_ptr(), ptr, "reused once unreachable");
        let mut all = vec![0xEEu8; 12 << 10];
        c.read_bulk(0, &mut all).unwrap();
        assert!(all.iter().all(|&x| x == 0), "zeroed before reuse");
        let held = c.clone();
        drop(c);
        assert_ne!(DmaMemory::alloc(12 << 10).unwrap().as_ptr(), ptr, "a clone still holds it");
        assert_eq!(held.holders(), 1);
        // Larger blocks are left to the kernel: a fresh mapping, zeroed.
        let big = DmaMemory::alloc(64 << 10).unwrap();
        big.write(0, &[1; 8]).unwrap();
        drop(big);
        let again = DmaMemory::alloc(64 << 10).unwrap();
        let mut first = [0xEEu8; 8];
        again.read_bulk(0, &mut first).unwrap();
        assert_eq!(first, [0; 8]);
    }

    #[test]
    fn slices_share_memory_and_keep_it_alive() {
        let m = DmaMemory::alloc(8192).unwrap();
        let s = m.slice(4096, 100).unwrap();
        assert_eq!(s.len(), 100);
        assert!(m.slice(8000, 200).is_none() && m.slice(0, 0).is_none() && m.slice(usize::MAX, 2).is_none());
        drop(m);
        s.write_u32(96, 0xA5A5_5A5A).unwrap();
        assert_eq!(s.read_u32(96), Some(0xA5A5_5A5A));
        assert!(s.read_u32(97).is_none());
        let sub = s.slice(96, 4).unwrap();
        assert_eq!(sub.read_u32(0), Some(0xA5A5_5A5A));
    }

    #[test]
    fn bounds_are_checked() {
        let m = DmaMemory::alloc(100).unwrap();
        assert_eq!(m.len(), 4096);
        assert!(m.write_u32(4092, 7).is_some());
        assert_eq!(m.read_u32(4092), Some(7));
        assert!(m.read_u32(4093).is_none());
        assert!(m.write(usize::MAX, &[1]).is_none());
    }

    #[test]
    fn a_dropped_block_is_reused_zeroed_and_never_while_a_slice_lives() {
        let m = DmaMemory::alloc(3 * 4096).unwrap();
        let p = m.as_ptr();
        m.write_bulk(0, &[0xEE; 3 * 4096]).unwrap();
        let s = m.slice(4096, 64).unwrap();
        drop(m);
        // The slice still holds the block: a new allocation cannot get its memory.
        let other = DmaMemory::alloc(4096).unwrap();
        assert_ne!(other.as_ptr(), p);
        assert_eq!(s.read_u32(0), Some(0xEEEE_EEEE));
        drop(s);
        // Now free: the smaller request reuses it, zeroed, and sees only its own length.
        let again = DmaMemory::alloc(2 * 4096).unwrap();
        assert_eq!(again.as_ptr(), p);
        assert_eq!(again.len(), 2 * 4096);
        let mut b = vec![0xFFu8; 2 * 4096];
        again.read_bulk(0, &mut b).unwrap();
        assert!(b.iter().all(|&x| x == 0));
        assert!(again.read_u32(2 * 4096).is_none());
        drop(other);
    }
}
