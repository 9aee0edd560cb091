//! MSI-X table and pending-bit array, shared by every device model that has MSI-X.
//!
//! Reset state (PCI spec, and QEMU hw/pci/msix.c): address and data zero, every entry
//! masked, PBA clear, Enable and Function Mask off. A message for a masked vector (entry or
//! function mask) sets its PBA bit and is sent when the vector is unmasked. PBA is read-only.

use nicqual_hw::pci;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsixEntry {
    pub addr_lo: u32,
    pub addr_hi: u32,
    pub data: u32,
    pub ctrl: u32,
}

impl MsixEntry {
    pub fn address(&self) -> u64 {
        (self.addr_hi as u64) << 32 | self.addr_lo as u64
    }

    pub fn masked(&self) -> bool {
        self.ctrl & pci::MSIX_ENTRY_CTRL_MASKBIT != 0
    }
}

/// What a notify or unmask produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsixOutcome {
    /// Send this message now.
    Send { vector: u16, address: u64, data: u32 },
    /// Held in the PBA.
    Pending,
    /// MSI-X is not enabled: nothing happens.
    Disabled,
}

#[derive(Debug, Clone)]
pub struct Msix {
    entries: Vec<MsixEntry>,
    pba: u64,
    pub enabled: bool,
    pub function_mask: bool,
}

impl Msix {
    pub fn new(vectors: u16) -> Self {
        let mut m = Msix {
            entries: vec![MsixEntry::default(); vectors as usize],
            pba: 0,
            enabled: false,
            function_mask: false,
        };
        m.reset();
        m
    }

    pub fn reset(&mut self) {
        for e in &mut self.entries {
            *e = MsixEntry { ctrl: pci::MSIX_ENTRY_CTRL_MASKBIT, ..Default::default() };
        }
        self.pba = 0;
        self.enabled = false;
        self.function_mask = false;
    }

    pub fn vectors(&self) -> u16 {
        self.entries.len() as u16
    }

    pub fn entry(&self, v: u16) -> Option<&MsixEntry> {
        self.entries.get(v as usize)
    }

    pub fn pba(&self) -> u64 {
        self.pba
    }

    pub fn is_pending(&self, v: u16) -> bool {
        v < 64 && self.pba & (1 << v) != 0
    }

    pub fn clear_pending(&mut self, v: u16) {
        if v < 64 {
            self.pba &= !(1 << v);
        }
    }

    fn vector_masked(&self, v: u16) -> bool {
        self.function_mask || self.entries.get(v as usize).is_none_or(|e| e.masked())
    }

    /// The device wants to signal vector `v`.
    pub fn notify(&mut self, v: u16) -> MsixOutcome {
        if !self.enabled || v >= self.vectors() {
            return MsixOutcome::Disabled;
        }
        if self.vector_masked(v) {
            self.pba |= 1 << v;
            return MsixOutcome::Pending;
        }
        let e = self.entries[v as usize];
        MsixOutcome::Send { vector: v, address: e.address(), data: e.data }
    }

    /// Messages released by a mask change (pending vectors that are now unmasked).
    pub fn release_unmasked(&mut self) -> Vec<MsixOutcome> {
        let mut out = Vec::new();
        if !self.enabled {
            return out;
        }
        for v in 0..self.vectors() {
            if self.is_pending(v) && !self.vector_masked(v) {
                self.clear_pending(v);
                let e = self.entries[v as usize];
                out.push(MsixOutcome::Send { vector: v, address: e.address(), data: e.data });
            }
        }
        out
    }

    /// 32-bit read of the table at `off` (relative to the table start).
    pub fn table_read(&self, off: u64) -> u32 {
        let (v, field) = ((off / pci::MSIX_ENTRY_SIZE) as usize, off % pci::MSIX_ENTRY_SIZE);
        let Some(e) = self.entries.get(v) else { return 0 };
        match field {
            pci::MSIX_ENTRY_ADDR_LO => e.addr_lo,
            pci::MSIX_ENTRY_ADDR_HI => e.addr_hi,
            pci::MSIX_ENTRY_DATA => e.data,
            pci::MSIX_ENTRY_VECTOR_CTRL => e.ctrl,
            _ => 0,
        }
    }

    /// 32-bit write of the table; returns messages released by an unmask.
    pub fn table_write(&mut self, off: u64, value: u32) -> Vec<MsixOutcome> {
        let (v, field) = ((off / pci::MSIX_ENTRY_SIZE) as usize, off % pci::MSIX_ENTRY_SIZE);
        let Some(e) = self.entries.get_mut(v) else { return Vec::new() };
        match field {
            pci::MSIX_ENTRY_ADDR_LO => e.addr_lo = value & !0x3,
            pci::MSIX_ENTRY_ADDR_HI => e.addr_hi = value,
            pci::MSIX_ENTRY_DATA => e.data = value,
            pci::MSIX_ENTRY_VECTOR_CTRL => {
                e.ctrl = value & pci::MSIX_ENTRY_CTRL_MASKBIT;
                return self.release_unmasked();
            }
            _ => {}
        }
        Vec::new()
    }

    /// 32-bit read of the PBA at `off` (relative to the PBA start).
    pub fn pba_read(&self, off: u64) -> u32 {
        match off {
            0 => self.pba as u32,
            4 => (self.pba >> 32) as u32,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_vector_pends_and_fires_on_unmask() {
        let mut m = Msix::new(5);
        m.enabled = true;
        m.table_write(16, 0xFEE0_0000);
        m.table_write(16 + 8, 0x41);
        assert_eq!(m.notify(1), MsixOutcome::Pending);
        assert_eq!(m.pba_read(0), 0b10);
        let out = m.table_write(16 + 12, 0);
        assert_eq!(out, vec![MsixOutcome::Send { vector: 1, address: 0xFEE0_0000, data: 0x41 }]);
        assert_eq!(m.pba_read(0), 0);
    }

    #[test]
    fn function_mask_holds_every_vector() {
        let mut m = Msix::new(5);
        m.enabled = true;
        m.table_write(12, 0);
        m.function_mask = true;
        assert_eq!(m.notify(0), MsixOutcome::Pending);
        m.function_mask = false;
        assert_eq!(m.release_unmasked().len(), 1);
    }

    #[test]
    fn disabled_msix_sends_nothing() {
        let mut m = Msix::new(5);
        assert_eq!(m.notify(0), MsixOutcome::Disabled);
        assert_eq!(m.pba(), 0);
    }
}
