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
use nicqual_model::{HostRegion, PciDevice, Perm};
use std::collections::BTreeMap;

/// The device-side view of `mem`: a region over its bytes that holds a clone of it, so the
/// memory stays allocated for as long as any IOMMU window maps the region, whoever holds
/// that IOMMU by then.
pub fn host_region(mem: &DmaMemory) -> HostRegion {
    // SAFETY: `mem.as_ptr()..+mem.len()` lies inside the block's mapping (an anonymous
    // read-write mmap, or a read-write window of shared guest RAM), which every clone keeps
    // mapped, and the region holds a clone. `DmaMemory` never hands out a reference to its
    // bytes: it only copies in and out (volatile or memcpy), as the region does. It is
    // neither `Send` nor `Sync`, so all its clones — every Rust access to these bytes — stay
    // on this thread; the only other writer a block can have is outside this program (QEMU
    // writing guest RAM, a real device's DMA), which is I/O to us.
    unsafe { HostRegion::new(mem.as_ptr(), mem.len(), mem.clone()) }
}

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
    notifiers: Notifiers,
    /// What is mapped where (the IOMMU windows hold their own clones of the memory).
    mapped: BTreeMap<u64, DmaMemory>,
    /// Messages whose data matched no enabled vector.
    pub stray_messages: u64,
    /// With [`EmulatedBackend::time_device`]: wall-clock ns spent in the device model
    /// (register and config handlers, DMA map/unmap into its IOMMU, time advance) and in
    /// delivering its interrupts: the emulation's share of a run.
    device_ns: Option<u64>,
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

/// Eventfds no backend uses any more, kept per thread for the next `msix_enable`.
const SPARE_NOTIFIERS: usize = 64;

thread_local! {
    static SPARE_FDS: std::cell::RefCell<Vec<EventFd>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The vectors' eventfds. Cleared or dropped, they go to a per-thread spare list and the
/// next `msix_enable` takes them from there, drained: bringing an emulated device up per
/// test or fuzz input then costs no eventfd creation and close (two syscalls each).
#[derive(Default)]
struct Notifiers(Vec<EventFd>);

impl Notifiers {
    /// A spare eventfd with its counter read to zero, or a new one.
    fn fresh() -> std::io::Result<EventFd> {
        let spare = SPARE_FDS.try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop())).ok().flatten();
        match spare {
            Some(fd) => {
                fd.take();
                Ok(fd)
            }
            None => EventFd::new(),
        }
    }

    fn clear(&mut self) {
        let fds = std::mem::take(&mut self.0);
        let _ = SPARE_FDS.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                let room = SPARE_NOTIFIERS.saturating_sub(s.len());
                s.extend(fds.into_iter().take(room));
            }
        });
    }

    fn get(&self, v: usize) -> Option<&EventFd> {
        self.0.get(v)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

impl Drop for Notifiers {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<D: PciDevice> EmulatedBackend<D> {
    /// Wrap `dev`, assigning its BARs like firmware would.
    pub fn new(mut dev: D, name: impl Into<String>) -> Self {
        assign_bars(&mut dev);
        EmulatedBackend {
            dev,
            name: name.into(),
            notifiers: Notifiers::default(),
            mapped: BTreeMap::new(),
            stray_messages: 0,
            device_ns: None,
        }
    }

    /// Start accounting the time spent inside the device model (from 0). Costs two clock
    /// reads per backend call; a benchmark uses it to split a run's CPU time between the
    /// emulation and the driver.
    pub fn time_device(&mut self) {
        self.device_ns = Some(0);
    }

    /// Nanoseconds spent in the device model since [`EmulatedBackend::time_device`]
    /// (`None` when not accounting).
    pub fn device_ns(&self) -> Option<u64> {
        self.device_ns
    }

    /// Run `f` (a call into the device), adding its duration when accounting.
    #[inline(always)]
    fn in_device<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        if self.device_ns.is_none() {
            return f(self);
        }
        let t = std::time::Instant::now();
        let r = f(self);
        let d = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.device_ns = self.device_ns.map(|n| n.saturating_add(d));
        r
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
        Ok(self.in_device(|b| b.dev.config_read(offset, size)))
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) -> Result<(), BackendError> {
        if !matches!(size, 1 | 2 | 4) || offset as usize + size as usize > 4096 {
            return Err(BackendError::BadConfigAccess { offset, size });
        }
        self.in_device(|b| {
            b.dev.config_write(offset, size, value);
            b.pump();
        });
        Ok(())
    }

    fn bar_len(&self, bar: u8) -> Option<u64> {
        self.dev.bar_len(bar)
    }

    fn read32(&mut self, bar: u8, offset: u64) -> u32 {
        self.in_device(|b| {
            let v = b.dev.bar_read32(bar, offset);
            b.pump();
            v
        })
    }

    fn write32(&mut self, bar: u8, offset: u64, value: u32) {
        self.in_device(|b| {
            b.dev.bar_write32(bar, offset, value);
            b.pump();
        })
    }

    fn dma_map(&mut self, mem: &DmaMemory, iova: u64, perm: DmaPerm) -> Result<(), BackendError> {
        let p = Perm { read: perm.device_reads, write: perm.device_writes };
        let len = mem.len() as u64;
        self.in_device(|b| b.dev.iommu().map(iova, host_region(mem), p)).map_err(|e| BackendError::DmaMap {
            iova,
            len,
            why: e.to_string(),
        })?;
        self.mapped.insert(iova, mem.clone());
        Ok(())
    }

    fn dma_unmap(&mut self, iova: u64) -> Result<(), BackendError> {
        self.in_device(|b| b.dev.iommu().unmap(iova))
            .map_err(|e| BackendError::DmaUnmap { iova, why: e.to_string() })?;
        self.mapped.remove(&iova);
        Ok(())
    }

    fn msix_enable(&mut self, vectors: u16) -> Result<(), BackendError> {
        let (cap, bir, table, size) = self.msix_table()?;
        if vectors == 0 || vectors > size {
            return Err(BackendError::Msix { vectors, why: format!("device has {size} vectors") });
        }
        self.notifiers.clear();
        for _ in 0..vectors {
            let fd = Notifiers::fresh().map_err(|e| BackendError::Io { what: "eventfd".into(), source: e })?;
            self.notifiers.0.push(fd);
        }
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
        self.in_device(|b| {
            b.dev.advance(ns);
            b.pump();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nicqual_model::Iommu;
    use nicqual_model::i82574::{Config, I82574};

    /// A reused notifier starts at zero: a signal left pending on a retired eventfd never
    /// reaches the next backend that takes it.
    #[test]
    fn reused_notifiers_are_drained() {
        let mut a = EmulatedBackend::new(I82574::new(Config::default()), "a");
        a.msix_enable(3).unwrap();
        for v in 0..3 {
            a.notifier(v).unwrap().signal().unwrap();
        }
        drop(a);
        let mut b = EmulatedBackend::new(I82574::new(Config::default()), "b");
        b.msix_enable(3).unwrap();
        for v in 0..3 {
            assert_eq!(b.notifier(v).unwrap().take(), 0, "vector {v}");
        }
        b.notifier(1).unwrap().signal().unwrap();
        b.msix_disable().unwrap();
        assert_eq!(b.msix_vectors(), 0);
        b.msix_enable(2).unwrap();
        assert!((0..2).all(|v| b.notifier(v).unwrap().take() == 0));
    }

    /// Device time is accounted only once asked for, and only grows with calls into it.
    #[test]
    fn device_time_accounts_calls_into_the_model() {
        let mut b = EmulatedBackend::new(I82574::new(Config::default()), "t");
        b.read32(0, 0x8);
        assert_eq!(b.device_ns(), None);
        b.time_device();
        assert_eq!(b.device_ns(), Some(0));
        let mut last = 0;
        for i in 0..1000 {
            b.write32(0, 0x3818, i % 256);
            b.read32(0, 0x3818);
        }
        let n = b.device_ns().unwrap();
        assert!(n > last, "2000 register accesses took {n} ns of device time");
        last = n;
        b.wait(1_000_000);
        assert!(b.device_ns().unwrap() >= last);
    }

    /// The misuse the raw-pointer IOMMU allowed from safe code: move the IOMMU out of the
    /// device behind the backend, drop the backend and every `DmaMemory` handle, then DMA
    /// through the stolen IOMMU. The window holds its own clone of the block, so the
    /// access reaches memory that is still allocated (the driver's bytes are still there)
    /// instead of freed memory.
    #[test]
    fn a_stolen_iommu_keeps_the_mapped_memory_alive() {
        let mut b = EmulatedBackend::new(I82574::new(Config::default()), "steal");
        let mem = DmaMemory::alloc(8192).unwrap();
        mem.write(0x100, b"driver").unwrap();
        b.dma_map(&mem, 0x10_0000, DmaPerm::BIDIRECTIONAL).unwrap();
        assert_eq!(mem.holders(), 3, "the driver, the backend's table and the IOMMU window");
        let mut stolen = std::mem::replace(b.device_mut().iommu(), Iommu::new());
        drop(b);
        assert_eq!(mem.holders(), 2, "the stolen window still holds the block");
        drop(mem);
        let mut got = [0u8; 6];
        stolen.read(0x10_0100, &mut got, 0).unwrap();
        assert_eq!(&got, b"driver");
        stolen.write(0x10_1FF0, &[0x5A; 16], 1).unwrap();
        let mut back = [0u8; 16];
        stolen.read(0x10_1FF0, &mut back, 2).unwrap();
        assert_eq!(back, [0x5A; 16]);
        assert_eq!(stolen.faults_total(), 0);
    }

    #[test]
    fn unmap_releases_the_windows_hold_on_the_memory() {
        let mut b = EmulatedBackend::new(I82574::new(Config::default()), "unmap");
        let mem = DmaMemory::alloc(4096).unwrap();
        b.dma_map(&mem, 0x20_0000, DmaPerm::TO_DEVICE).unwrap();
        assert_eq!((mem.holders(), b.device_mut().iommu().window_count()), (3, 1));
        b.dma_unmap(0x20_0000).unwrap();
        assert_eq!((mem.holders(), b.device_mut().iommu().window_count()), (1, 0));
    }
}
