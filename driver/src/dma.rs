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
