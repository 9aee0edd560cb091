//! The emulated backend: an in-process device model behind the VFIO-shaped interface.
//!
//! It plays the parts the kernel plays for VFIO: it assigns BAR addresses, programs the
//! MSI-X table when the driver asks for vectors (address 0xFEE00000, its own data values)
//! and turns each message the device sends into a signal on that vector's eventfd. DMA
//! mappings go into the device's IOMMU model. Everything is synchronous; `wait` advances
//! the device's virtual clock.

use crate::backend::{Backend, BackendInfo, BackendKind, DmaPerm};
use crate::dma::DmaMemory;
use crate::error::BackendError;
use crate::eventfd::EventFd;
use nicqual_hw::pci;
use nicqual_model::{PciDevice, Perm};
use std::collections::BTreeMap;

/// Message data the emulated "kernel" gives vector `v`.
const MSI_DATA_BASE: u32 = 0x40;

/// Give every BAR an address, as firmware would: memory BARs naturally aligned from
/// 0xE0000000, I/O BARs from 0xC000.
fn assign_bars<D: PciDevice>(dev: &mut D) {
    let mut base: u64 = 0xE000_0000;
    for bar in 0..6u8 {
        if let Some(len) = dev.bar_len(bar) {
            if dev.config_read(pci::bar(bar), 4) & 1 == 1 {
                dev.config_write(pci::bar(bar), 4, 0xC000 + 0x100 * bar as u32);
            } else {
                base = base.div_ceil(len) * len;
                dev.config_write(pci::bar(bar), 4, base as u32);
                base += len;
            }
        }
    }
}

pub struct EmulatedBackend<D: PciDevice> {
    dev: D,
    name: String,
    notifiers: Vec<EventFd>,
    mapped: BTreeMap<u64, DmaMemory>,
    /// Messages whose data matched no enabled vector.
    pub stray_messages: u64,
}

impl<D: PciDevice> std::fmt::Debug for EmulatedBackend<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatedBackend")
            .field("name", &self.name)
            .field("vectors", &self.notifiers.len())
            .field("mappings", &self.mapped.len())
            .field("stray_messages", &self.stray_messages)
            .finish_non_exhaustive()
    }
}

impl<D: PciDevice> EmulatedBackend<D> {
    /// Wrap `dev`, assigning its BARs like firmware would.
    pub fn new(mut dev: D, name: impl Into<String>) -> Self {
        assign_bars(&mut dev);
        EmulatedBackend { dev, name: name.into(), notifiers: Vec::new(), mapped: BTreeMap::new(), stray_messages: 0 }
    }

    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The device model, for fault injection and inspection (emulation only).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Live DMA mappings.
    pub fn mappings(&self) -> usize {
        self.mapped.len()
    }

    fn pump(&mut self) {
        for m in self.dev.take_interrupts() {
            let v = m.data.wrapping_sub(MSI_DATA_BASE) as usize;
            match self.notifiers.get(v) {
                Some(n) if m.data >= MSI_DATA_BASE => {
                    let _ = n.signal();
                }
                _ => self.stray_messages += 1,
            }
        }
    }

    fn msix_table(&mut self) -> Result<(u16, u8, u64, u16), BackendError> {
        let dev = &mut self.dev;
        let l =
            nicqual_pci::caps::msix_layout(|off, size| Ok::<u32, std::convert::Infallible>(dev.config_read(off, size)))
                .unwrap_or(None)
                .ok_or(BackendError::Msix { vectors: 0, why: "device has no MSI-X capability".into() })?;
        Ok((l.cap, l.table_bir, l.table_off, l.size))
    }
}

impl<D: PciDevice> Backend for EmulatedBackend<D> {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: BackendKind::Emulated,
            name: self.name.clone(),
            msix_table_access: true,
            virtual_time: true,
        }
    }

    fn config_read(&mut self, offset: u16, size: u8) -> Result<u32, BackendError> {
        if !matches!(size, 1 | 2 | 4) || offset as usize + size as usize > 4096 {
            return Err(BackendError::BadConfigAccess { offset, size });
        }
        Ok(self.dev.config_read(offset, size))
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) -> Result<(), BackendError> {
        if !matches!(size, 1 | 2 | 4) || offset as usize + size as usize > 4096 {
            return Err(BackendError::BadConfigAccess { offset, size });
        }
        self.dev.config_write(offset, size, value);
        self.pump();
        Ok(())
    }

    fn bar_len(&self, bar: u8) -> Option<u64> {
        self.dev.bar_len(bar)
    }

    fn read32(&mut self, bar: u8, offset: u64) -> u32 {
        let v = self.dev.bar_read32(bar, offset);
        self.pump();
        v
    }

    fn write32(&mut self, bar: u8, offset: u64, value: u32) {
        self.dev.bar_write32(bar, offset, value);
        self.pump();
    }

    fn dma_map(&mut self, mem: &DmaMemory, iova: u64, perm: DmaPerm) -> Result<(), BackendError> {
        let p = Perm { read: perm.device_reads, write: perm.device_writes };
        let len = mem.len() as u64;
        // SAFETY: `mem` is an anonymous mapping of `len` bytes; we keep a clone of it in
        // `self.mapped` until the window is unmapped (dma_unmap) or the backend is dropped
        // (the IOMMU inside `dev` is dropped with it), so the window never outlives the
        // memory. The driver only touches the memory by volatile copies, never references.
        unsafe { self.dev.iommu().map(iova, mem.as_ptr(), len, p) }.map_err(|e| BackendError::DmaMap {
            iova,
            len,
            why: e.to_string(),
        })?;
        self.mapped.insert(iova, mem.clone());
        Ok(())
    }

    fn dma_unmap(&mut self, iova: u64) -> Result<(), BackendError> {
        self.dev.iommu().unmap(iova).map_err(|e| BackendError::DmaUnmap { iova, why: e.to_string() })?;
        self.mapped.remove(&iova);
        Ok(())
    }

    fn msix_enable(&mut self, vectors: u16) -> Result<(), BackendError> {
        let (cap, bir, table, size) = self.msix_table()?;
        if vectors == 0 || vectors > size {
            return Err(BackendError::Msix { vectors, why: format!("device has {size} vectors") });
        }
        let mut fds = Vec::with_capacity(vectors as usize);
        for _ in 0..vectors {
            fds.push(EventFd::new().map_err(|e| BackendError::Io { what: "eventfd".into(), source: e })?);
        }
        self.notifiers = fds;
        for v in 0..size as u64 {
            let e = table + v * pci::MSIX_ENTRY_SIZE;
            if v < vectors as u64 {
                self.dev.bar_write32(bir, e + pci::MSIX_ENTRY_ADDR_LO, pci::MSI_ADDRESS_BASE as u32);
                self.dev.bar_write32(bir, e + pci::MSIX_ENTRY_ADDR_HI, 0);
                self.dev.bar_write32(bir, e + pci::MSIX_ENTRY_DATA, MSI_DATA_BASE + v as u32);
                self.dev.bar_write32(bir, e + pci::MSIX_ENTRY_VECTOR_CTRL, 0);
            } else {
                self.dev.bar_write32(bir, e + pci::MSIX_ENTRY_VECTOR_CTRL, pci::MSIX_ENTRY_CTRL_MASKBIT);
            }
        }
        self.dev.config_write(cap + pci::MSIX_MSG_CTRL, 2, pci::MSIX_CTRL_ENABLE as u32);
        self.pump();
        Ok(())
    }

    fn msix_disable(&mut self) -> Result<(), BackendError> {
        if let Ok((cap, ..)) = self.msix_table() {
            self.dev.config_write(cap + pci::MSIX_MSG_CTRL, 2, 0);
        }
        self.notifiers.clear();
        Ok(())
    }

    fn msix_mask(&mut self, vector: u16, masked: bool) -> Result<(), BackendError> {
        let have = self.notifiers.len() as u16;
        if vector >= have {
            return Err(BackendError::NoSuchVector { vector, have });
        }
        let (_, bir, table, _) = self.msix_table()?;
        let e = table + vector as u64 * pci::MSIX_ENTRY_SIZE;
        self.dev.bar_write32(bir, e + pci::MSIX_ENTRY_VECTOR_CTRL, masked as u32);
        self.pump();
        Ok(())
    }

    fn notifier(&self, vector: u16) -> Option<&EventFd> {
        self.notifiers.get(vector as usize)
    }

    fn msix_vectors(&self) -> u16 {
        self.notifiers.len() as u16
    }

    fn live_mappings(&self) -> usize {
        self.mapped.len()
    }

    fn dma_faults(&self) -> Option<u64> {
        Some(self.dev.dma_faults_total())
    }

    fn reset(&mut self) -> Result<(), BackendError> {
        self.dev.function_reset();
        self.notifiers.clear();
        // BAR addresses are lost by a function reset; assign them again.
        assign_bars(&mut self.dev);
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.dev.now_ns()
    }

    fn wait(&mut self, ns: u64) {
        self.dev.advance(ns);
        self.pump();
    }
}
