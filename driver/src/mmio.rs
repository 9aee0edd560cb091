//! A memory-mapped BAR: 32-bit volatile register access over an mmap'd region, as a real
//! device (VFIO region mmap) is driven. Offsets are bounds- and alignment-checked; an
//! out-of-range access reads all-ones (like an unsupported PCIe request) and writes nothing.

use volatile_register::RW;

#[derive(Debug)]
pub struct MmioRegion {
    base: *mut u8,
    len: usize,
}

impl MmioRegion {
    /// # Safety
    /// `base..base+len` must be a mapping of device registers (or plain memory) that stays
    /// valid for the life of the returned value, and nothing else may free it meanwhile.
    pub unsafe fn new(base: *mut u8, len: usize) -> MmioRegion {
        MmioRegion { base, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn reg(&self, off: u64) -> Option<&RW<u32>> {
        let off = usize::try_from(off).ok()?;
        if off % 4 != 0 || off.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: off is 4-aligned and off+4 <= len, inside the mapping `new` was promised
        // valid; RW<u32> is a transparent wrapper over a u32 accessed only volatilely.
        Some(unsafe { &*(self.base.add(off) as *const RW<u32>) })
    }

    pub fn read32(&self, off: u64) -> u32 {
        self.reg(off).map(|r| r.read()).unwrap_or(u32::MAX)
    }

    pub fn write32(&self, off: u64, v: u32) {
        if let Some(r) = self.reg(off) {
            // SAFETY: a volatile store to a register inside the mapping (checked by `reg`).
            unsafe { r.write(v) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_volatile_access() {
        let mut mem = vec![0u32; 4];
        // SAFETY: `mem` outlives the region and is only touched through it.
        let r = unsafe { MmioRegion::new(mem.as_mut_ptr().cast(), 16) };
        r.write32(4, 0x5A5A_5A5A);
        assert_eq!(r.read32(4), 0x5A5A_5A5A);
        assert_eq!(r.read32(16), u32::MAX);
        assert_eq!(r.read32(2), u32::MAX);
        r.write32(16, 1);
        assert_eq!(mem, [0, 0x5A5A_5A5A, 0, 0]);
    }
}
