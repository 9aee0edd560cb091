//! PCI configuration space: 4 KiB of bytes with a per-byte writable mask, BAR sizing, and
//! a capability-list builder.

use nicqual_hw::pci;

pub const CONFIG_SPACE_LEN: usize = 4096;

/// Kind of a BAR, for sizing and the low flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    Mem32,
    Io,
}

#[derive(Debug, Clone)]
pub struct ConfigSpace {
    data: Vec<u8>,
    wmask: Vec<u8>,
    bars: [Option<(BarKind, u64)>; 6],
    last_cap: Option<u16>,
}

impl ConfigSpace {
    pub fn new(vendor: u16, device: u16, class_rev: u32, subsys_vendor: u16, subsys: u16) -> Self {
        let mut c = ConfigSpace {
            data: vec![0; CONFIG_SPACE_LEN],
            wmask: vec![0; CONFIG_SPACE_LEN],
            bars: [None; 6],
            last_cap: None,
        };
        c.set16(pci::VENDOR_ID, vendor);
        c.set16(pci::DEVICE_ID, device);
        c.set32(pci::REVISION_CLASS, class_rev);
        c.set16(pci::SUBSYSTEM_VENDOR_ID, subsys_vendor);
        c.set16(pci::SUBSYSTEM_ID, subsys);
        c.set_wmask16(
            pci::COMMAND,
            pci::COMMAND_IO | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER | pci::COMMAND_INTX_DISABLE,
        );
        c.data[pci::INTERRUPT_PIN as usize] = 1;
        c.wmask[pci::INTERRUPT_LINE as usize] = 0xFF;
        c
    }

    pub fn get8(&self, off: u16) -> u8 {
        self.data[off as usize % CONFIG_SPACE_LEN]
    }

    pub fn get16(&self, off: u16) -> u16 {
        u16::from_le_bytes([self.get8(off), self.get8(off.wrapping_add(1))])
    }

    pub fn get32(&self, off: u16) -> u32 {
        u32::from_le_bytes([self.get8(off), self.get8(off + 1), self.get8(off + 2), self.get8(off + 3)])
    }

    pub fn set16(&mut self, off: u16, v: u16) {
        self.data[off as usize..off as usize + 2].copy_from_slice(&v.to_le_bytes());
    }

    pub fn set32(&mut self, off: u16, v: u32) {
        self.data[off as usize..off as usize + 4].copy_from_slice(&v.to_le_bytes());
    }

    pub fn set_wmask16(&mut self, off: u16, m: u16) {
        self.wmask[off as usize..off as usize + 2].copy_from_slice(&m.to_le_bytes());
    }

    pub fn command(&self) -> u16 {
        self.get16(pci::COMMAND)
    }

    /// Declare BAR `n` of `kind` and power-of-two `size`.
    pub fn add_bar(&mut self, n: u8, kind: BarKind, size: u64) {
        self.bars[n as usize] = Some((kind, size));
        let flags = if kind == BarKind::Io { 1 } else { 0 };
        self.set32(pci::bar(n), flags);
    }

    /// Append a standard capability of `id` at `off` with `len` bytes; returns `off`.
    pub fn add_cap(&mut self, id: u8, off: u16, len: u16) -> u16 {
        match self.last_cap {
            None => {
                self.data[pci::CAPABILITIES_PTR as usize] = off as u8;
                let st = self.get16(pci::STATUS) | pci::STATUS_CAP_LIST;
                self.set16(pci::STATUS, st);
            }
            Some(prev) => self.data[prev as usize + 1] = off as u8,
        }
        self.data[off as usize] = id;
        self.data[off as usize + 1] = 0;
        debug_assert!(len >= 2);
        self.last_cap = Some(off);
        off
    }

    /// Append an extended capability (offset >= 0x100).
    pub fn add_ext_cap(&mut self, id: u16, version: u8, off: u16, next: u16) {
        let hdr = id as u32 | (version as u32) << 16 | (next as u32) << 20;
        self.set32(off, hdr);
    }

    /// Make `mask` bits of the byte at `off` writable.
    pub fn set_wmask8(&mut self, off: u16, mask: u8) {
        self.wmask[off as usize] = mask;
    }

    /// Guest read of `size` bytes.
    pub fn read(&self, off: u16, size: u8) -> u32 {
        let mut v = 0u32;
        for i in 0..size.min(4) as u16 {
            v |= (self.get8(off.wrapping_add(i)) as u32) << (8 * i);
        }
        v
    }

    /// Guest write of `size` bytes, honouring the writable mask and BAR sizing.
    pub fn write(&mut self, off: u16, size: u8, value: u32) {
        let bar_base = pci::bar(0);
        if (bar_base..bar_base + 24).contains(&off) {
            // BARs take whole-dword writes; narrower ones are merged first.
            let n = ((off - bar_base) / 4) as u8;
            let aligned = bar_base + 4 * n as u16;
            let mut cur = self.get32(aligned).to_le_bytes();
            for i in 0..size.min(4) as u16 {
                let idx = (off - aligned + i) as usize;
                if idx < 4 {
                    cur[idx] = (value >> (8 * i)) as u8;
                }
            }
            self.write_bar(n, u32::from_le_bytes(cur));
            return;
        }
        for i in 0..size.min(4) as u16 {
            let o = off.wrapping_add(i) as usize % CONFIG_SPACE_LEN;
            let b = (value >> (8 * i)) as u8;
            self.data[o] = (self.data[o] & !self.wmask[o]) | (b & self.wmask[o]);
        }
    }

    fn write_bar(&mut self, n: u8, value: u32) {
        let Some((kind, size)) = self.bars[n as usize] else {
            return;
        };
        let (flag_mask, flags) = match kind {
            BarKind::Io => (0x3, 1),
            BarKind::Mem32 => (0xF, 0),
        };
        let addr_mask = !(size as u32 - 1) & !flag_mask;
        self.set32(pci::bar(n), (value & addr_mask) | flags);
    }

    /// Current base address of BAR `n` (flag bits stripped).
    pub fn bar_base(&self, n: u8) -> u64 {
        match self.bars[n as usize] {
            Some((BarKind::Io, _)) => (self.get32(pci::bar(n)) & !0x3) as u64,
            Some((BarKind::Mem32, _)) => (self.get32(pci::bar(n)) & !0xF) as u64,
            None => 0,
        }
    }

    pub fn bar_size(&self, n: u8) -> Option<u64> {
        self.bars.get(n as usize).copied().flatten().map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_sizing_reads_back_size_mask() {
        let mut c = ConfigSpace::new(0x8086, 0x10D3, 0x0200_0000, 0x8086, 0);
        c.add_bar(0, BarKind::Mem32, 128 * 1024);
        c.add_bar(2, BarKind::Io, 32);
        c.write(pci::bar(0), 4, 0xFFFF_FFFF);
        assert_eq!(c.read(pci::bar(0), 4), 0xFFFE_0000);
        c.write(pci::bar(2), 4, 0xFFFF_FFFF);
        assert_eq!(c.read(pci::bar(2), 4), 0xFFFF_FFE1);
        c.write(pci::bar(0), 4, 0xE000_0000);
        assert_eq!(c.bar_base(0), 0xE000_0000);
        // Read-only identity survives writes.
        c.write(0, 4, 0);
        assert_eq!(c.read(0, 4), 0x10D3_8086);
    }
}
