//! A memory-mapped BAR: 32-bit volatile register access over an mmap'd region, as a real
//! device (VFIO region mmap) is driven. Offsets are bounds- and alignment-checked; an
//! out-of-range access reads all-ones (like an unsupported PCIe request) and writes nothing.
//!
//! No Rust reference into the region ever exists, not even internally: a `&u32` (or a
//! `&volatile_register::RW<u32>`) is dereferenceable, so the compiler may insert reads
//! through it, and a read of a read-to-clear register (the 82574L's ICR) changes the
//! device. Every access is one `read_volatile`/`write_volatile` through a raw pointer at a
//! checked offset.

/// A mapped BAR (or any register window) reached only through checked volatile 32-bit
/// accesses.
#[derive(Debug)]
pub struct MmioRegion {
    base: *mut u8,
    len: usize,
}

impl MmioRegion {
    /// A region over the `len` bytes at `base`.
    ///
    /// # Safety
    /// `base` must be 4-byte aligned (an mmap is page-aligned), and `base..base+len` must be a mapping of device registers (or plain memory) that stays
    /// valid for reads and writes for the life of the returned value, that nothing else
    /// frees meanwhile, and that nothing accesses through a Rust reference while the region
    /// exists.
    pub unsafe fn new(base: *mut u8, len: usize) -> MmioRegion {
        MmioRegion { base, len }
    }

    /// Length of the region in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a region of no bytes (every read is all-ones).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Raw pointer to the 32-bit register at `off`, when it is 4-aligned and inside.
    fn reg(&self, off: u64) -> Option<*mut u32> {
        let off = usize::try_from(off).ok()?;
        if off % 4 != 0 || off.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: off + 4 <= len, so the result stays inside the mapping `new` was promised
        // valid; `base` is 4-aligned (`new`'s contract) and so is `off`.
        Some(unsafe { self.base.add(off) }.cast::<u32>())
    }

    /// Volatile 32-bit read at `off`; all-ones when `off` is unaligned or outside.
    pub fn read32(&self, off: u64) -> u32 {
        match self.reg(off) {
            // SAFETY: `p` is an aligned pointer to 4 bytes inside the live mapping (`reg`);
            // one volatile load, no reference created.
            Some(p) => unsafe { p.read_volatile() },
            None => u32::MAX,
        }
    }

    /// Volatile 32-bit write at `off`; nothing when `off` is unaligned or outside.
    pub fn write32(&self, off: u64, v: u32) {
        if let Some(p) = self.reg(off) {
            // SAFETY: as in `read32`; one volatile store.
            unsafe { p.write_volatile(v) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_volatile_access() {
        let mut mem = vec![0u32; 4];
        // SAFETY: `mem` outlives the region and is only touched through it until the
        // region is dropped (the final comparison happens after its last use).
        let r = unsafe { MmioRegion::new(mem.as_mut_ptr().cast(), 16) };
        r.write32(4, 0x5A5A_5A5A);
        assert_eq!(r.read32(4), 0x5A5A_5A5A);
        assert_eq!(r.read32(16), u32::MAX);
        assert_eq!(r.read32(2), u32::MAX);
        assert_eq!(r.read32(u64::MAX), u32::MAX);
        r.write32(16, 1);
        assert_eq!(mem, [0, 0x5A5A_5A5A, 0, 0]);
    }
}
