//! Driver DMA memory: page-aligned anonymous mappings the backend maps at an IOVA.
//!
//! The device may write this memory at any register access (that is what DMA is), so it is
//! never handed out as a Rust reference: all access is by copy, through bounds-checked
//! volatile reads and writes at an offset.

use crate::error::BackendError;
use memmap2::{MmapOptions, MmapRaw};
use std::sync::Arc;

/// A block of DMA-able memory. Cloning shares it; a backend keeps a clone for as long as
/// the block is mapped, so the device can never reach freed memory.
#[derive(Debug, Clone)]
pub struct DmaMemory {
    map: Arc<MmapRaw>,
}

impl DmaMemory {
    /// Allocate `len` bytes (rounded up to 4 KiB), zeroed.
    pub fn alloc(len: usize) -> Result<DmaMemory, BackendError> {
        let len = len.max(1).div_ceil(4096) * 4096;
        let m =
            MmapOptions::new().len(len).map_anon().map_err(|e| BackendError::DmaAlloc { len, why: e.to_string() })?;
        Ok(DmaMemory { map: Arc::new(MmapRaw::from(m)) })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Base pointer (for backends that hand it to an IOMMU).
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Number of holders (this block plus the backends that keep it mapped).
    pub fn holders(&self) -> usize {
        Arc::strong_count(&self.map)
    }

    fn check(&self, off: usize, n: usize) -> Option<()> {
        (off.checked_add(n)? <= self.len()).then_some(())
    }

    /// Copy `buf.len()` bytes out at `off`; `None` if out of bounds.
    pub fn read(&self, off: usize, buf: &mut [u8]) -> Option<()> {
        self.check(off, buf.len())?;
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: off+i < len (checked above); the mapping lives as long as self.
            // Volatile because the device may write concurrently with respect to the
            // compiler's view (inside any backend call).
            *b = unsafe { self.map.as_ptr().add(off + i).read_volatile() };
        }
        Some(())
    }

    /// Copy `data` in at `off`; `None` if out of bounds.
    pub fn write(&self, off: usize, data: &[u8]) -> Option<()> {
        self.check(off, data.len())?;
        for (i, b) in data.iter().enumerate() {
            // SAFETY: as in `read`; the mapping is writable (anonymous read-write).
            unsafe { self.map.as_mut_ptr().add(off + i).write_volatile(*b) };
        }
        Some(())
    }

    /// Copy `buf.len()` bytes out at `off` in one `memcpy` (the datapath's bulk copy);
    /// `None` if out of bounds. Ordering against the device: callers read the descriptor's
    /// DD/ownership word first ([`DmaMemory::read_u32`], volatile); the acquire fence here
    /// keeps this copy from being reordered before that read.
    pub fn read_bulk(&self, off: usize, buf: &mut [u8]) -> Option<()> {
        self.check(off, buf.len())?;
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        // SAFETY: off..off+len is inside the mapping (checked); the mapping lives as long as
        // self; `buf` is a distinct Rust allocation, so the ranges cannot overlap. The
        // memory is never referenced as a Rust object (only copied), and the device writes
        // it only inside backend calls (emulated) or as DMA ordered by the fence above.
        unsafe { std::ptr::copy_nonoverlapping(self.map.as_ptr().add(off), buf.as_mut_ptr(), buf.len()) };
        Some(())
    }

    /// Copy `data` in at `off` in one `memcpy`; a release fence orders it before any later
    /// doorbell (tail) write. `None` if out of bounds.
    pub fn write_bulk(&self, off: usize, data: &[u8]) -> Option<()> {
        self.check(off, data.len())?;
        // SAFETY: as in `read_bulk`, copying in the other direction; the mapping is writable.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.map.as_mut_ptr().add(off), data.len()) };
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        Some(())
    }

    pub fn read_u32(&self, off: usize) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(off, &mut b)?;
        Some(u32::from_le_bytes(b))
    }

    pub fn write_u32(&self, off: usize, v: u32) -> Option<()> {
        self.write(off, &v.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let m = DmaMemory::alloc(100).unwrap();
        assert_eq!(m.len(), 4096);
        assert!(m.write_u32(4092, 7).is_some());
        assert_eq!(m.read_u32(4092), Some(7));
        assert!(m.read_u32(4093).is_none());
        assert!(m.write(usize::MAX, &[1]).is_none());
    }
}
