//! [`VfioBackend`]: a PCI function driven through Linux VFIO (container + group, type1
//! IOMMU), behind the same [`Backend`] interface as the emulated device.

use super::error::VfioError;
use super::kmsg::KmsgWatch;
use super::sys::{self, Ioctl};
use super::sysfs::{self, Host, IommufdStatus, PciAddr, Viability};
use crate::backend::{Backend, BackendInfo, BackendKind, DmaPerm};
use crate::dma::DmaMemory;
use crate::error::BackendError;
use crate::eventfd::EventFd;
use crate::mmio::MmioRegion;
use memmap2::{MmapOptions, MmapRaw};
use nicqual_hw::pci;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::time::Instant;

/// Which IOMMU driver the container uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum IommuType {
    Type1v2,
    Type1,
}

impl IommuType {
    fn raw(self) -> u32 {
        match self {
            IommuType::Type1v2 => sys::VFIO_TYPE1v2_IOMMU,
            IommuType::Type1 => sys::VFIO_TYPE1_IOMMU,
        }
    }
}

/// A device region (BAR or config space) as VFIO_DEVICE_GET_REGION_INFO describes it.
#[derive(Debug)]
struct Region {
    index: u32,
    size: u64,
    /// Offset of the region in the device fd (for pread/pwrite and mmap).
    offset: u64,
    flags: u32,
    /// Kept for its lifetime: `mmio` points into it.
    map: Option<(MmioRegion, MmapRaw)>,
}

impl Region {
    fn name(&self) -> String {
        if self.index == sys::VFIO_PCI_CONFIG_REGION_INDEX { "config".into() } else { format!("BAR{}", self.index) }
    }
}

/// What the backend set up, for the run record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VfioSetup {
    pub addr: String,
    pub group: u32,
    pub iommu: IommuType,
    /// IOMMU page sizes the container supports (bitmap).
    pub iova_pgsizes: u64,
    /// Usable IOVA ranges (inclusive), when the kernel reports them.
    pub iova_ranges: Vec<(u64, u64)>,
    pub iommufd: IommufdStatus,
    /// `(region name, size, mmap'd)` for each implemented BAR.
    pub bars: Vec<(String, u64, bool)>,
    pub msix_vectors: u32,
    pub reset_supported: bool,
}

impl VfioSetup {
    pub fn summary(&self) -> String {
        let bars: Vec<String> = self
            .bars
            .iter()
            .map(|(n, s, m)| {
                let size = if *s >= 1024 { format!("{} KiB", s / 1024) } else { format!("{s} B") };
                format!("{n} {size} {}", if *m { "mmap" } else { "pread/pwrite" })
            })
            .collect();
        let iommufd = match (&self.iommufd.cdev, self.iommufd.dev_iommu) {
            (Some(c), true) => format!("iommufd available ({c}), container used"),
            (_, true) => "/dev/iommu present but no VFIO cdev for this device: container".to_string(),
            _ => "no /dev/iommu or VFIO cdev (kernel < 6.6 or IOMMUFD off): legacy container".to_string(),
        };
        format!(
            "group {} opened, container {:?}; {iommufd}; {}; MSI-X {} vectors; reset {}",
            self.group,
            self.iommu,
            bars.join(", "),
            self.msix_vectors,
            if self.reset_supported { "supported" } else { "not supported" }
        )
    }
}

/// A PCI function owned through VFIO. Field order is drop order: BAR mappings go first,
/// then the device fd, the group, and last the container.
pub struct VfioBackend {
    regions: Vec<Option<Region>>,
    notifiers: Vec<EventFd>,
    mapped: BTreeMap<u64, DmaMemory>,
    device: File,
    group: File,
    container: File,
    setup: VfioSetup,
    locked: u64,
    huge_allocs: u64,
    small_allocs: u64,
    t0: Instant,
    kmsg: RefCell<KmsgWatch>,
}

fn open_rw(path: &std::path::Path) -> Result<File, VfioError> {
    std::fs::OpenOptions::new().read(true).write(true).open(path).map_err(|e| VfioError::open(path, e))
}

impl VfioBackend {
    /// Open `addr` through VFIO: check it is ready (IOMMU on, bound to vfio-pci, group
    /// viable), set up the container and IOMMU, get the device and map its BARs.
    pub fn open(host: &Host, addr: &PciAddr) -> Result<VfioBackend, VfioError> {
        let (_, group_id) = host.check_ready(addr)?;
        let cpath = host.dev.join("vfio/vfio");
        let container = open_rw(&cpath)?;
        let ctarget = cpath.display().to_string();
        let v = sys::ioctl_val(container.as_fd(), sys::VFIO_GET_API_VERSION, 0, &ctarget)?;
        if v != sys::VFIO_API_VERSION as i32 {
            return Err(VfioError::ApiVersion { got: v });
        }
        let has =
            |t: u32| sys::ioctl_val(container.as_fd(), sys::VFIO_CHECK_EXTENSION, t as _, &ctarget).unwrap_or(0) > 0;
        let iommu = if has(sys::VFIO_TYPE1v2_IOMMU) {
            IommuType::Type1v2
        } else if has(sys::VFIO_TYPE1_IOMMU) {
            IommuType::Type1
        } else {
            return Err(VfioError::NoIommuType);
        };

        let gpath = host.group_dev(group_id);
        let group = open_rw(&gpath)?;
        let gtarget = gpath.display().to_string();
        let mut status = sys::vfio_group_status { argsz: sys::argsz::<sys::vfio_group_status>(), flags: 0 };
        // SAFETY: VFIO_GROUP_GET_STATUS takes a vfio_group_status, which `status` is.
        unsafe { sys::ioctl_ptr(group.as_fd(), sys::VFIO_GROUP_GET_STATUS, &mut status, &gtarget) }?;
        if status.flags & sys::VFIO_GROUP_FLAGS_VIABLE == 0 {
            let f = host.function(addr)?;
            let blockers = match host.viability(&f) {
                Viability::NotViable(b) => b,
                _ => Vec::new(),
            };
            return Err(VfioError::GroupNotViable { addr: addr.to_string(), group: group_id, blockers });
        }
        let mut cfd: i32 = container.as_raw_fd();
        // SAFETY: VFIO_GROUP_SET_CONTAINER takes a pointer to an int holding the container fd.
        unsafe { sys::ioctl_ptr(group.as_fd(), sys::VFIO_GROUP_SET_CONTAINER, &mut cfd, &gtarget) }?;
        sys::ioctl_val(container.as_fd(), sys::VFIO_SET_IOMMU, iommu.raw() as _, &ctarget)?;
        let (iova_pgsizes, iova_ranges) = iommu_info(&container, &ctarget)?;

        let name =
            std::ffi::CString::new(addr.as_str()).map_err(|_| VfioError::BadAddress { addr: addr.to_string() })?;
        // SAFETY: VFIO_GROUP_GET_DEVICE_FD takes a NUL-terminated device name, which `name`
        // owns for the call; the kernel only reads it.
        let dfd = unsafe {
            sys::ioctl_ptr(group.as_fd(), sys::VFIO_GROUP_GET_DEVICE_FD, name.as_ptr() as *mut u8, &gtarget)
        }?;
        // SAFETY: on success the ioctl returned a new descriptor that nothing else owns.
        let device = File::from(unsafe { OwnedFd::from_raw_fd(dfd) });
        let dtarget = format!("{addr} (device fd)");
        let mut info = sys::vfio_device_info { argsz: sys::argsz::<sys::vfio_device_info>(), ..Default::default() };
        // SAFETY: VFIO_DEVICE_GET_INFO takes a vfio_device_info (argsz set to its size).
        unsafe { sys::ioctl_ptr(device.as_fd(), sys::VFIO_DEVICE_GET_INFO, &mut info, &dtarget) }?;
        if info.flags & sys::VFIO_DEVICE_FLAGS_PCI == 0 {
            return Err(VfioError::Region {
                region: "device".into(),
                why: "VFIO says this is not a PCI device".into(),
            });
        }

        let mut regions = Vec::new();
        let mut bars = Vec::new();
        for index in 0..=sys::VFIO_PCI_CONFIG_REGION_INDEX.min(info.num_regions.saturating_sub(1)) {
            let mut ri =
                sys::vfio_region_info { argsz: sys::argsz::<sys::vfio_region_info>(), index, ..Default::default() };
            // SAFETY: VFIO_DEVICE_GET_REGION_INFO takes a vfio_region_info; argsz is its size
            // (the kernel fills no capability chain beyond argsz).
            let r = unsafe { sys::ioctl_ptr(device.as_fd(), sys::VFIO_DEVICE_GET_REGION_INFO, &mut ri, &dtarget) };
            if r.is_err() || ri.size == 0 {
                regions.push(None);
                continue;
            }
            let mut reg = Region { index, size: ri.size, offset: ri.offset, flags: ri.flags, map: None };
            let is_bar = index < 6;
            if is_bar && reg.flags & sys::VFIO_REGION_INFO_FLAG_MMAP != 0 && reg.size <= 1 << 30 {
                match MmapOptions::new().offset(reg.offset).len(reg.size as usize).map_raw(&device) {
                    Ok(m) => {
                        // SAFETY: `m` maps `size` bytes of the BAR and is stored next to the
                        // MmioRegion in `reg.map`, so it outlives every access through it.
                        let mmio = unsafe { MmioRegion::new(m.as_mut_ptr(), m.len()) };
                        reg.map = Some((mmio, m));
                    }
                    Err(e) => {
                        tracing::warn!(target: "nicqual::vfio", "{}: mmap failed ({e}); using pread/pwrite", reg.name())
                    }
                }
            }
            if is_bar {
                bars.push((reg.name(), reg.size, reg.map.is_some()));
            }
            regions.push(Some(reg));
        }
        if regions.get(sys::VFIO_PCI_CONFIG_REGION_INDEX as usize).is_none_or(|r| r.is_none()) {
            return Err(VfioError::Region {
                region: "config".into(),
                why: "VFIO reports no config space region".into(),
            });
        }
        let mut irq = sys::vfio_irq_info {
            argsz: sys::argsz::<sys::vfio_irq_info>(),
            index: sys::VFIO_PCI_MSIX_IRQ_INDEX,
            ..Default::default()
        };
        // SAFETY: VFIO_DEVICE_GET_IRQ_INFO takes a vfio_irq_info.
        let msix_vectors =
            match unsafe { sys::ioctl_ptr(device.as_fd(), sys::VFIO_DEVICE_GET_IRQ_INFO, &mut irq, &dtarget) } {
                Ok(_) if irq.flags & sys::VFIO_IRQ_INFO_EVENTFD != 0 => irq.count,
                _ => 0,
            };
        let setup = VfioSetup {
            addr: addr.to_string(),
            group: group_id,
            iommu,
            iova_pgsizes,
            iova_ranges,
            iommufd: host.iommufd_status(addr),
            bars,
            msix_vectors,
            reset_supported: info.flags & sys::VFIO_DEVICE_FLAGS_RESET != 0,
        };
        tracing::info!(target: "nicqual::vfio", "{addr}: {}", setup.summary());
        Ok(VfioBackend {
            regions,
            notifiers: Vec::new(),
            mapped: BTreeMap::new(),
            device,
            group,
            container,
            setup,
            locked: 0,
            huge_allocs: 0,
            small_allocs: 0,
            t0: Instant::now(),
            kmsg: RefCell::new(KmsgWatch::open(addr.bdf())),
        })
    }

    pub fn setup(&self) -> &VfioSetup {
        &self.setup
    }

    /// DMA blocks allocated from huge pages and from 4 KiB pages so far.
    pub fn dma_page_use(&self) -> (u64, u64) {
        (self.huge_allocs, self.small_allocs)
    }

    /// IOMMU fault lines the kernel logged for this function since it was opened
    /// (`None` when the kernel log is not readable).
    pub fn iommu_faults(&self) -> Option<Vec<String>> {
        self.kmsg.borrow_mut().faults().map(|f| f.to_vec())
    }

    /// Set or clear Bus Master Enable in the command register.
    pub fn set_bus_master(&mut self, on: bool) -> Result<(), BackendError> {
        let cmd = self.config_read(pci::COMMAND, 2)? as u16;
        let cmd = if on { cmd | pci::COMMAND_BUS_MASTER } else { cmd & !pci::COMMAND_BUS_MASTER };
        self.config_write(pci::COMMAND, 2, cmd as u32)
    }

    fn region(&self, index: u32) -> Option<&Region> {
        self.regions.get(index as usize)?.as_ref()
    }

    fn region_read(&self, index: u32, off: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        let r = self.region(index).ok_or(BackendError::NoSuchBar { bar: index as u8 })?;
        if off.checked_add(buf.len() as u64).is_none_or(|end| end > r.size)
            || r.flags & sys::VFIO_REGION_INFO_FLAG_READ == 0
        {
            return Err(VfioError::Region {
                region: r.name(),
                why: format!(
                    "read of {} bytes at {off:#x} outside the region or not readable (size {:#x})",
                    buf.len(),
                    r.size
                ),
            }
            .into());
        }
        self.device
            .read_exact_at(buf, r.offset + off)
            .map_err(|e| BackendError::Io { what: format!("pread {} at {off:#x}", r.name()), source: e })
    }

    fn region_write(&self, index: u32, off: u64, data: &[u8]) -> Result<(), BackendError> {
        let r = self.region(index).ok_or(BackendError::NoSuchBar { bar: index as u8 })?;
        if off.checked_add(data.len() as u64).is_none_or(|end| end > r.size)
            || r.flags & sys::VFIO_REGION_INFO_FLAG_WRITE == 0
        {
            return Err(VfioError::Region {
                region: r.name(),
                why: format!(
                    "write of {} bytes at {off:#x} outside the region or not writable (size {:#x})",
                    data.len(),
                    r.size
                ),
            }
            .into());
        }
        self.device
            .write_all_at(data, r.offset + off)
            .map_err(|e| BackendError::Io { what: format!("pwrite {} at {off:#x}", r.name()), source: e })
    }

    fn set_irqs(&self, flags: u32, start: u32, count: u32, fds: &[i32]) -> Result<(), VfioError> {
        let mut buf = sys::irq_set_buf(flags, sys::VFIO_PCI_MSIX_IRQ_INDEX, start, count, fds);
        let target = format!("{} MSI-X vectors {start}..{}", self.setup.addr, start + count);
        // SAFETY: VFIO_DEVICE_SET_IRQS takes a vfio_irq_set followed by `count` i32 fds (or
        // none for DATA_NONE); `buf` holds exactly that, u32-aligned, argsz = its length.
        unsafe { sys::ioctl_ptr(self.device.as_fd(), sys::VFIO_DEVICE_SET_IRQS, buf.as_mut_ptr(), &target) }?;
        Ok(())
    }

    fn check_iova(&self, iova: u64, len: u64) -> Result<(), VfioError> {
        let page = if self.setup.iova_pgsizes == 0 { 4096 } else { 1u64 << self.setup.iova_pgsizes.trailing_zeros() };
        let err = |why: String| VfioError::Iova { iova, len, why };
        if !iova.is_multiple_of(page) || !len.is_multiple_of(page) || len == 0 {
            return Err(err(format!("not aligned to the IOMMU page size {page:#x}")));
        }
        let end = iova.checked_add(len - 1).ok_or_else(|| err("wraps around".into()))?;
        if !self.setup.iova_ranges.is_empty() && !self.setup.iova_ranges.iter().any(|&(s, e)| iova >= s && end <= e) {
            return Err(err(format!("outside the usable IOVA ranges {:x?}", self.setup.iova_ranges)));
        }
        if let Some((&other, m)) = self.mapped.range(..=end).next_back()
            && other + m.len() as u64 > iova
        {
            return Err(err(format!("overlaps the mapping at {other:#x}")));
        }
        Ok(())
    }
}

/// VFIO_IOMMU_GET_INFO: page sizes and (type1 cap chain) usable IOVA ranges.
fn iommu_info(container: &File, target: &str) -> Result<(u64, Vec<(u64, u64)>), VfioError> {
    let hdr = std::mem::size_of::<sys::vfio_iommu_type1_info>();
    let mut buf = vec![0u64; hdr / 8];
    for _ in 0..2 {
        let len = buf.len() * 8;
        let p = buf.as_mut_ptr() as *mut sys::vfio_iommu_type1_info;
        // SAFETY: `buf` is 8-aligned and at least size_of::<vfio_iommu_type1_info>() bytes;
        // we write the header's argsz through the pointer before the kernel sees it.
        unsafe { (*p).argsz = len as u32 };
        // SAFETY: VFIO_IOMMU_GET_INFO takes a vfio_iommu_type1_info followed by up to
        // argsz - header bytes of capability chain, all inside `buf`.
        unsafe { sys::ioctl_ptr(container.as_fd(), sys::VFIO_IOMMU_GET_INFO, p, target) }?;
        // SAFETY: the kernel filled the header; `p` is valid as above.
        let want = unsafe { (*p).argsz } as usize;
        if want <= len || want > 1 << 20 {
            break;
        }
        buf.resize(want.div_ceil(8), 0);
    }
    let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_le_bytes()).collect();
    Ok(parse_iommu_info(&bytes))
}

/// Parse a vfio_iommu_type1_info and its capability chain (bounds-checked: the chain is
/// kernel input and is walked at most 16 steps).
pub fn parse_iommu_info(b: &[u8]) -> (u64, Vec<(u64, u64)>) {
    let u32_at = |o: usize| b.get(o..o + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap_or_default()));
    let u64_at = |o: usize| b.get(o..o + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap_or_default()));
    let flags = u32_at(4).unwrap_or(0);
    let pgsizes = u64_at(8).unwrap_or(0);
    let mut ranges = Vec::new();
    if flags & sys::VFIO_IOMMU_INFO_CAPS == 0 {
        return (pgsizes, ranges);
    }
    let mut off = u32_at(16).unwrap_or(0) as usize;
    for _ in 0..16 {
        if off == 0 || off + 8 > b.len() {
            break;
        }
        let id = u32_at(off).unwrap_or(0) & 0xFFFF;
        let next = u32_at(off + 4).unwrap_or(0) as usize;
        if id == sys::VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE {
            let n = u32_at(off + 8).unwrap_or(0).min(64) as usize;
            for i in 0..n {
                let o = off + 16 + 16 * i;
                if let (Some(s), Some(e)) = (u64_at(o), u64_at(o + 8)) {
                    ranges.push((s, e));
                }
            }
        }
        if next <= off {
            break;
        }
        off = next;
    }
    (pgsizes, ranges)
}

impl Backend for VfioBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: BackendKind::Vfio,
            name: self.setup.addr.clone(),
            // The kernel programs the MSI-X table for VFIO_DEVICE_SET_IRQS; the driver never
            // reads or writes it here.
            msix_table_access: false,
            virtual_time: false,
        }
    }

    fn config_read(&mut self, offset: u16, size: u8) -> Result<u32, BackendError> {
        if !matches!(size, 1 | 2 | 4) || offset as usize + size as usize > 4096 {
            return Err(BackendError::BadConfigAccess { offset, size });
        }
        let mut b = [0u8; 4];
        let part = b.get_mut(..size as usize).ok_or(BackendError::BadConfigAccess { offset, size })?;
        self.region_read(sys::VFIO_PCI_CONFIG_REGION_INDEX, offset as u64, part)?;
        Ok(u32::from_le_bytes(b))
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) -> Result<(), BackendError> {
        if !matches!(size, 1 | 2 | 4) || offset as usize + size as usize > 4096 {
            return Err(BackendError::BadConfigAccess { offset, size });
        }
        let bytes = value.to_le_bytes();
        let part = bytes.get(..size as usize).ok_or(BackendError::BadConfigAccess { offset, size })?;
        self.region_write(sys::VFIO_PCI_CONFIG_REGION_INDEX, offset as u64, part)
    }

    fn bar_len(&self, bar: u8) -> Option<u64> {
        if bar >= 6 {
            return None;
        }
        self.region(bar as u32).map(|r| r.size)
    }

    fn read32(&mut self, bar: u8, offset: u64) -> u32 {
        if bar >= 6 {
            return u32::MAX;
        }
        match self.region(bar as u32) {
            Some(Region { map: Some((mmio, _)), .. }) => mmio.read32(offset),
            Some(_) if offset.is_multiple_of(4) => {
                let mut b = [0u8; 4];
                match self.region_read(bar as u32, offset, &mut b) {
                    Ok(()) => u32::from_le_bytes(b),
                    Err(_) => u32::MAX,
                }
            }
            _ => u32::MAX,
        }
    }

    fn write32(&mut self, bar: u8, offset: u64, value: u32) {
        if bar >= 6 {
            return;
        }
        match self.region(bar as u32) {
            Some(Region { map: Some((mmio, _)), .. }) => mmio.write32(offset, value),
            Some(_) if offset.is_multiple_of(4) => {
                if let Err(e) = self.region_write(bar as u32, offset, &value.to_le_bytes()) {
                    tracing::warn!(target: "nicqual::vfio", "BAR{bar} write at {offset:#x} dropped: {e}");
                }
            }
            _ => {}
        }
    }

    /// Huge pages (2 MiB) when the system has free ones and the block is at least that
    /// big, else 4 KiB pages.
    fn dma_alloc(&mut self, len: usize) -> Result<DmaMemory, BackendError> {
        if len >= 2 << 20
            && let Ok(m) = DmaMemory::alloc_huge(len)
        {
            self.huge_allocs += 1;
            return Ok(m);
        }
        self.small_allocs += 1;
        DmaMemory::alloc(len)
    }

    fn dma_map(&mut self, mem: &DmaMemory, iova: u64, perm: DmaPerm) -> Result<(), BackendError> {
        let len = mem.len() as u64;
        self.check_iova(iova, len)?;
        let limit = sysfs::memlock_limit();
        let need = self.locked + len;
        if need > limit && !sysfs::has_ipc_lock() {
            return Err(VfioError::Memlock { need, have: limit }.into());
        }
        let mut flags = 0;
        if perm.device_reads {
            flags |= sys::VFIO_DMA_MAP_FLAG_READ;
        }
        if perm.device_writes {
            flags |= sys::VFIO_DMA_MAP_FLAG_WRITE;
        }
        let mut m = sys::vfio_iommu_type1_dma_map {
            argsz: sys::argsz::<sys::vfio_iommu_type1_dma_map>(),
            flags,
            vaddr: mem.as_ptr() as u64,
            iova,
            size: len,
        };
        let target = format!("IOVA {iova:#x} (+{len:#x})");
        // SAFETY: VFIO_IOMMU_MAP_DMA takes a vfio_iommu_type1_dma_map. The memory at vaddr
        // is a live mapping of `len` bytes; a clone of `mem` is kept in `self.mapped` until
        // the IOVA is unmapped (dma_unmap or drop), so the device can never reach memory
        // that was freed. The kernel pins the pages for as long as they are mapped.
        let r = unsafe { sys::ioctl_ptr(self.container.as_fd(), sys::VFIO_IOMMU_MAP_DMA, &mut m, &target) };
        match r {
            Ok(_) => {}
            Err(VfioError::Ioctl { source, .. }) if source.raw_os_error() == Some(libc::ENOMEM) => {
                return Err(VfioError::Memlock { need, have: limit }.into());
            }
            Err(e) => return Err(e.into()),
        }
        self.locked = need;
        self.mapped.insert(iova, mem.clone());
        Ok(())
    }

    fn dma_unmap(&mut self, iova: u64) -> Result<(), BackendError> {
        let Some(mem) = self.mapped.get(&iova) else {
            return Err(BackendError::DmaUnmap { iova, why: "no mapping starts there".into() });
        };
        let len = mem.len() as u64;
        let mut u = sys::vfio_iommu_type1_dma_unmap {
            argsz: sys::argsz::<sys::vfio_iommu_type1_dma_unmap>(),
            flags: 0,
            iova,
            size: len,
            ..Default::default()
        };
        let target = format!("IOVA {iova:#x} (+{len:#x})");
        // SAFETY: VFIO_IOMMU_UNMAP_DMA takes a vfio_iommu_type1_dma_unmap (the kernel
        // writes back the size it unmapped).
        unsafe { sys::ioctl_ptr(self.container.as_fd(), sys::VFIO_IOMMU_UNMAP_DMA, &mut u, &target) }?;
        if u.size != len {
            return Err(VfioError::Iova { iova, len, why: format!("the kernel unmapped {:#x} bytes", u.size) }.into());
        }
        // Only now, with the IOMMU entry gone, may the memory be released.
        self.mapped.remove(&iova);
        self.locked = self.locked.saturating_sub(len);
        Ok(())
    }

    fn msix_enable(&mut self, vectors: u16) -> Result<(), BackendError> {
        if vectors == 0 || vectors as u32 > self.setup.msix_vectors {
            return Err(BackendError::Msix {
                vectors,
                why: format!("VFIO offers {} MSI-X vectors", self.setup.msix_vectors),
            });
        }
        let mut fds = Vec::with_capacity(vectors as usize);
        for _ in 0..vectors {
            fds.push(EventFd::new().map_err(|e| BackendError::Io { what: "eventfd".into(), source: e })?);
        }
        let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
        self.set_irqs(sys::VFIO_IRQ_SET_DATA_EVENTFD | sys::VFIO_IRQ_SET_ACTION_TRIGGER, 0, vectors as u32, &raw)
            .map_err(|e| BackendError::Msix { vectors, why: e.to_string() })?;
        self.notifiers = fds;
        Ok(())
    }

    fn msix_disable(&mut self) -> Result<(), BackendError> {
        if self.notifiers.is_empty() {
            return Ok(());
        }
        let r = self.set_irqs(sys::VFIO_IRQ_SET_DATA_NONE | sys::VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, &[]);
        self.notifiers.clear();
        r.map_err(|e| BackendError::Msix { vectors: 0, why: e.to_string() })
    }

    /// VFIO's PCI MSI-X index has no mask/unmask action, so masking a vector detaches its
    /// eventfd (the kernel frees and masks the vector) and unmasking attaches it again
    /// (the kernel re-programs the table entry).
    fn msix_mask(&mut self, vector: u16, masked: bool) -> Result<(), BackendError> {
        let have = self.notifiers.len() as u16;
        let Some(n) = self.notifiers.get(vector as usize) else {
            return Err(BackendError::NoSuchVector { vector, have });
        };
        let fd = if masked { -1 } else { n.as_raw_fd() };
        self.set_irqs(sys::VFIO_IRQ_SET_DATA_EVENTFD | sys::VFIO_IRQ_SET_ACTION_TRIGGER, vector as u32, 1, &[fd])
            .map_err(|e| BackendError::Msix { vectors: vector + 1, why: e.to_string() })?;
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
        self.kmsg.borrow_mut().faults().map(|f| f.len() as u64)
    }

    fn reset(&mut self) -> Result<(), BackendError> {
        if !self.setup.reset_supported {
            return Err(BackendError::Reset { why: format!("{}: VFIO reports no reset method", self.setup.addr) });
        }
        let _ = self.msix_disable();
        let target = self.setup.addr.clone();
        sys::ioctl_val(self.device.as_fd(), sys::VFIO_DEVICE_RESET, 0, &target)
            .map_err(|e| BackendError::Reset { why: e.to_string() })?;
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Sleep up to `ns`, returning early when a notifier that was quiet at entry is
    /// signalled (a notifier already pending does not cut the wait short, so bounded
    /// polling loops keep their real-time bound).
    fn wait(&mut self, ns: u64) {
        let mut fds: Vec<libc::pollfd> = self
            .notifiers
            .iter()
            .filter(|n| !n.poll(0))
            .map(|n| libc::pollfd { fd: n.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        let ts = libc::timespec { tv_sec: (ns / 1_000_000_000) as _, tv_nsec: (ns % 1_000_000_000) as _ };
        // SAFETY: `fds` is a live array of fds.len() pollfds (possibly empty: then ppoll
        // just sleeps); `ts` lives across the call; no signal mask is passed.
        unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as _, &ts, std::ptr::null()) };
    }
}

impl Drop for VfioBackend {
    /// Quiesce and give everything back: interrupts off, bus mastering off (so the
    /// device cannot DMA any more), then every IOVA unmapped before its memory is freed.
    fn drop(&mut self) {
        let _ = self.msix_disable();
        let _ = self.set_bus_master(false);
        let iovas: Vec<u64> = self.mapped.keys().copied().collect();
        for iova in iovas {
            if let Err(e) = self.dma_unmap(iova) {
                tracing::warn!(target: "nicqual::vfio", "teardown: {e}");
            }
        }
        let _ = &self.group;
    }
}

/// Ioctls the backend issues, for docs and error tables.
pub const IOCTLS_USED: &[Ioctl] = &[
    sys::VFIO_GET_API_VERSION,
    sys::VFIO_CHECK_EXTENSION,
    sys::VFIO_SET_IOMMU,
    sys::VFIO_GROUP_GET_STATUS,
    sys::VFIO_GROUP_SET_CONTAINER,
    sys::VFIO_GROUP_GET_DEVICE_FD,
    sys::VFIO_DEVICE_GET_INFO,
    sys::VFIO_DEVICE_GET_REGION_INFO,
    sys::VFIO_DEVICE_GET_IRQ_INFO,
    sys::VFIO_DEVICE_SET_IRQS,
    sys::VFIO_DEVICE_RESET,
    sys::VFIO_IOMMU_GET_INFO,
    sys::VFIO_IOMMU_MAP_DMA,
    sys::VFIO_IOMMU_UNMAP_DMA,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iommu_info_cap_chain_is_parsed_and_bounded() {
        // header: argsz, flags=CAPS, pgsizes, cap_offset=24, pad; cap at 24: id 1, version 1,
        // next 0, nr_iovas 2, reserved, ranges.
        let mut b = Vec::new();
        b.extend(64u32.to_le_bytes());
        b.extend(sys::VFIO_IOMMU_INFO_CAPS.to_le_bytes());
        b.extend(0x4020_1000u64.to_le_bytes());
        b.extend(24u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(2u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        for (s, e) in [(0u64, 0xfedf_ffffu64), (0xfef0_0000, 0xffff_ffff_ffff)] {
            b.extend(s.to_le_bytes());
            b.extend(e.to_le_bytes());
        }
        let (pg, r) = parse_iommu_info(&b);
        assert_eq!(pg, 0x4020_1000);
        assert_eq!(r, vec![(0, 0xfedf_ffff), (0xfef0_0000, 0xffff_ffff_ffff)]);
        // A chain claiming more ranges than the buffer holds, or looping, stays in bounds.
        let mut evil = b.clone();
        evil[32..36].copy_from_slice(&1000u32.to_le_bytes());
        evil[28..32].copy_from_slice(&24u32.to_le_bytes());
        let (_, r) = parse_iommu_info(&evil);
        assert_eq!(r.len(), 2);
        assert_eq!(parse_iommu_info(&[1, 2, 3]), (0, vec![]));
    }

    #[test]
    fn open_reports_what_is_missing() {
        let t = super::super::sysfs::tests::FakeTree::new();
        t.function("0000:00:04.0", 0x020000, Some("vfio-pci"), Some(3));
        let a: PciAddr = "0000:00:04.0".parse().unwrap();
        // Ready by sysfs, but the fake /dev has no container node.
        let e = VfioBackend::open(&t.host, &a).err().unwrap();
        let s = e.to_string();
        assert!(s.contains("dev/vfio/vfio") && s.contains("vfio-pci loaded"), "{s}");
    }
}
