//! The DMA mapping API: streaming map/unmap/sync and coherent allocations, over any
//! [`Backend`], with every mapping accounted.
//!
//! Two strategies, as in Linux:
//!
//! * **IOMMU** ([`DmaPlatform::iommu`]): every mapping gets its own IOVA window in the
//!   backend (VFIO_DMA_MAP); nothing is copied.
//! * **SWIOTLB** ([`DmaPlatform::swiotlb`]): no IOMMU translates for the device, so a buffer
//!   the device cannot reach as it is (on Xen PV: not machine-contiguous; anywhere: above the
//!   DMA mask) is bounced through the [`Swiotlb`] pool, with copies in the direction the
//!   mapping says. Buffers that need no bounce are used in place. The pool itself is one
//!   device-visible window at its bus address.
//!
//! Modelling note: the emulated platform always has an IOMMU model in front of the device,
//! so a buffer used "in place" under the SWIOTLB strategy still gets an IOVA window; the
//! decision to bounce is taken from the [`HostMemory`] model, as swiotlb-xen takes it.
//!
//! Several devices (the two ports of a bonded NIC) share one platform — one pool, one
//! memory — through [`SharedPlatform`]. Each device's [`DmaApi`] keeps its own accounting:
//! live mappings, bytes, high-water marks; [`DmaApi::teardown`] unmaps whatever is left and
//! reports it as a leak.

use crate::backend::{Backend, DmaPerm};
use crate::dma::DmaMemory;
use crate::error::BackendError;
use crate::health::{CheckReport, CheckResult};
use crate::memory::{HostMemory, MemError, PAGE_SIZE};
use crate::swiotlb::{
    ByteStore, DeviceName, DmaDirection, MapKind, Swiotlb, SwiotlbConfig, SwiotlbError, SwiotlbStats,
};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// First IOVA handed out for direct windows (above any pool address used here).
const IOVA_BASE: u64 = 0x10_0000_0000;

impl ByteStore for DmaMemory {
    fn byte_len(&self) -> usize {
        self.len()
    }
    fn store(&mut self, off: usize, data: &[u8]) -> bool {
        self.write_bulk(off, data).is_some()
    }
    fn load(&self, off: usize, out: &mut [u8]) -> bool {
        self.read_bulk(off, out).is_some()
    }
}

/// Errors of the DMA API. Each names the device address, offset or size involved.
#[derive(Debug, thiserror::Error)]
pub enum DmaError {
    #[error(transparent)]
    Swiotlb(#[from] SwiotlbError),
    #[error(transparent)]
    Memory(#[from] MemError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("no live mapping at DMA address {dma_addr:#x}")]
    NotMapped { dma_addr: u64 },
    #[error("mapping {off}+{len} is outside the {buf_len}-byte buffer")]
    OutOfBounds { off: usize, len: usize, buf_len: usize },
    #[error("zero-length mapping")]
    ZeroLength,
}

impl DmaError {
    /// True when the failure is bounce-pool exhaustion (the caller may retry later).
    pub fn is_pool_full(&self) -> bool {
        matches!(self, DmaError::Swiotlb(SwiotlbError::Full { .. }))
    }
}

/// What stands between devices and memory.
#[derive(Debug)]
pub struct DmaPlatform {
    pub memory: HostMemory,
    swiotlb: Option<Swiotlb<DmaMemory>>,
    next_iova: u64,
}

/// One platform shared by several devices.
pub type SharedPlatform = Rc<RefCell<DmaPlatform>>;

impl DmaPlatform {
    /// Every mapping through an IOMMU window.
    pub fn iommu(memory: HostMemory) -> Self {
        DmaPlatform { memory, swiotlb: None, next_iova: IOVA_BASE }
    }

    /// No IOMMU: bounce through a SWIOTLB pool of `cfg` when the memory model says so.
    pub fn swiotlb(memory: HostMemory, cfg: SwiotlbConfig) -> Result<Self, DmaError> {
        let store = DmaMemory::alloc(cfg.bytes())?;
        Ok(DmaPlatform { memory, swiotlb: Some(Swiotlb::with_store(cfg, store)), next_iova: IOVA_BASE })
    }

    pub fn shared(self) -> SharedPlatform {
        Rc::new(RefCell::new(self))
    }

    /// The bounce pool, if this platform has one.
    pub fn pool(&self) -> Option<&Swiotlb<DmaMemory>> {
        self.swiotlb.as_ref()
    }

    pub fn pool_mut(&mut self) -> Option<&mut Swiotlb<DmaMemory>> {
        self.swiotlb.as_mut()
    }

    pub fn pool_stats(&self) -> Option<SwiotlbStats> {
        self.swiotlb.as_ref().map(|p| p.stats())
    }

    fn take_iova(&mut self, len: usize) -> u64 {
        let iova = self.next_iova;
        self.next_iova += (len as u64).div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE + PAGE_SIZE;
        iova
    }
}

/// CPU memory a driver maps for DMA: host bytes plus their physical address in the memory
/// model.
#[derive(Debug, Clone)]
pub struct CpuBuffer {
    pub mem: DmaMemory,
    pub phys: u64,
    pub len: usize,
}

/// A live streaming mapping (the `dma_addr_t` plus what unmap needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DmaMapping {
    pub dma_addr: u64,
    pub len: usize,
    pub dir: DmaDirection,
    /// Served from the bounce pool.
    pub bounced: bool,
}

/// A coherent allocation (`dma_alloc_coherent`).
#[derive(Debug, Clone)]
pub struct Coherent {
    pub mem: DmaMemory,
    pub dma_addr: u64,
}

#[derive(Debug, Clone, Copy)]
enum How {
    Window { iova: u64 },
    Bounce { tlb_addr: u64 },
}

#[derive(Debug, Clone)]
struct Live {
    buf: CpuBuffer,
    off: usize,
    len: usize,
    dir: DmaDirection,
    how: How,
}

/// Per-device accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DmaStats {
    pub live_mappings: usize,
    pub live_bytes: usize,
    pub hiwater_mappings: usize,
    pub hiwater_bytes: usize,
    pub maps: u64,
    pub unmaps: u64,
    pub map_errors: u64,
    pub bounced_maps: u64,
    pub coherent_live: usize,
    pub coherent_bytes: usize,
}

/// A live mapping left at teardown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leak {
    pub dma_addr: u64,
    pub len: usize,
    pub dir: DmaDirection,
    pub bounced: bool,
}

fn perm(dir: DmaDirection) -> DmaPerm {
    match dir {
        DmaDirection::ToDevice => DmaPerm::TO_DEVICE,
        DmaDirection::FromDevice => DmaPerm::FROM_DEVICE,
        DmaDirection::Bidirectional => DmaPerm::BIDIRECTIONAL,
    }
}

/// One device's view of the DMA API.
#[derive(Debug)]
pub struct DmaApi {
    dev: DeviceName,
    platform: SharedPlatform,
    dma_mask: u64,
    /// CPU the caller runs on (picks the SWIOTLB area on 6.x).
    pub cpu: usize,
    live: BTreeMap<u64, Live>,
    coherent: BTreeMap<u64, usize>,
    stats: DmaStats,
    pool_window: Option<u64>,
}

impl DmaApi {
    /// `dev` with a `dma_mask` (`u64::MAX` for 64-bit DMA) on `platform`.
    pub fn new(dev: DeviceName, platform: SharedPlatform, dma_mask: u64) -> Self {
        DmaApi {
            dev,
            platform,
            dma_mask,
            cpu: 0,
            live: BTreeMap::new(),
            coherent: BTreeMap::new(),
            stats: DmaStats::default(),
            pool_window: None,
        }
    }

    pub fn device(&self) -> &DeviceName {
        &self.dev
    }

    pub fn platform(&self) -> &SharedPlatform {
        &self.platform
    }

    pub fn stats(&self) -> DmaStats {
        self.stats
    }

    /// Make the bounce pool visible to this device (once; no-op on an IOMMU platform).
    pub fn attach<B: Backend>(&mut self, b: &mut B) -> Result<(), DmaError> {
        if self.pool_window.is_some() {
            return Ok(());
        }
        let p = self.platform.borrow();
        if let Some(pool) = p.pool() {
            let start = pool.config().start;
            b.dma_map(pool.store(), start, DmaPerm::BIDIRECTIONAL)?;
            self.pool_window = Some(start);
        }
        Ok(())
    }

    /// Allocate a CPU buffer of `len` bytes aligned to `align` in the memory model
    /// (`kmalloc` of a 9536-byte object comes from a 16 KiB slab: `align` 16384).
    pub fn alloc_buffer<B: Backend>(&mut self, b: &mut B, len: usize, align: u64) -> Result<CpuBuffer, DmaError> {
        let phys = self.platform.borrow_mut().memory.alloc(len as u64, align)?;
        match b.dma_alloc(len) {
            Ok(mem) => Ok(CpuBuffer { mem, phys, len }),
            Err(e) => {
                let _ = self.platform.borrow_mut().memory.free(phys, len as u64);
                Err(e.into())
            }
        }
    }

    /// Give a CPU buffer's memory back.
    pub fn free_buffer(&mut self, buf: CpuBuffer) -> Result<(), DmaError> {
        self.platform.borrow_mut().memory.free(buf.phys, buf.len as u64)?;
        Ok(())
    }

    /// True if `buf[off..off+len]` would be bounced on this platform.
    pub fn would_bounce(&self, buf: &CpuBuffer, off: usize, len: usize) -> bool {
        let p = self.platform.borrow();
        p.pool().is_some() && p.memory.needs_bounce(buf.phys + off as u64, len as u64, self.dma_mask)
    }

    /// `dma_map_single`: map `buf[off..off+len]` for `dir`.
    pub fn map_single<B: Backend>(
        &mut self,
        b: &mut B,
        buf: &CpuBuffer,
        off: usize,
        len: usize,
        dir: DmaDirection,
    ) -> Result<DmaMapping, DmaError> {
        self.map(b, buf, off, len, dir, MapKind::Single)
    }

    /// Map one scatter-gather entry (`dma_map_sg`; old kernels never panicked here).
    pub fn map_sg_entry<B: Backend>(
        &mut self,
        b: &mut B,
        buf: &CpuBuffer,
        off: usize,
        len: usize,
        dir: DmaDirection,
    ) -> Result<DmaMapping, DmaError> {
        self.map(b, buf, off, len, dir, MapKind::Sg)
    }

    fn map<B: Backend>(
        &mut self,
        b: &mut B,
        buf: &CpuBuffer,
        off: usize,
        len: usize,
        dir: DmaDirection,
        kind: MapKind,
    ) -> Result<DmaMapping, DmaError> {
        let r = self.try_map(b, buf, off, len, dir, kind);
        if r.is_err() {
            self.stats.map_errors += 1;
        }
        r
    }

    fn try_map<B: Backend>(
        &mut self,
        b: &mut B,
        buf: &CpuBuffer,
        off: usize,
        len: usize,
        dir: DmaDirection,
        kind: MapKind,
    ) -> Result<DmaMapping, DmaError> {
        if len == 0 {
            return Err(DmaError::ZeroLength);
        }
        if off.checked_add(len).is_none_or(|e| e > buf.len || e > buf.mem.len()) {
            return Err(DmaError::OutOfBounds { off, len, buf_len: buf.len });
        }
        let (how, dma_addr) = if self.would_bounce(buf, off, len) {
            self.attach(b)?;
            let mut p = self.platform.borrow_mut();
            let pool = p.pool_mut().ok_or(DmaError::ZeroLength)?;
            let m = pool.map(&self.dev, &buf.mem, off, buf.phys + off as u64, len, dir, kind, self.cpu)?;
            (How::Bounce { tlb_addr: m.tlb_addr }, m.tlb_addr)
        } else {
            let iova = self.window_iova(&buf.mem);
            b.dma_map(&buf.mem, iova, perm(dir))?;
            (How::Window { iova }, iova + off as u64)
        };
        self.live.insert(dma_addr, Live { buf: buf.clone(), off, len, dir, how });
        let s = &mut self.stats;
        s.maps += 1;
        s.live_mappings += 1;
        s.live_bytes += len;
        s.hiwater_mappings = s.hiwater_mappings.max(s.live_mappings);
        s.hiwater_bytes = s.hiwater_bytes.max(s.live_bytes);
        let bounced = matches!(how, How::Bounce { .. });
        if bounced {
            s.bounced_maps += 1;
        }
        Ok(DmaMapping { dma_addr, len, dir, bounced })
    }

    /// Where a window for `mem` goes: its fixed IOVA when the backend decides it (qtest:
    /// guest-physical), else the next free range of the platform's IOVA space.
    fn window_iova(&self, mem: &DmaMemory) -> u64 {
        mem.fixed_iova().unwrap_or_else(|| self.platform.borrow_mut().take_iova(mem.len()))
    }

    fn live_entry(&self, m: &DmaMapping) -> Result<Live, DmaError> {
        self.live.get(&m.dma_addr).cloned().ok_or(DmaError::NotMapped { dma_addr: m.dma_addr })
    }

    /// `dma_sync_single_for_cpu`: make device writes visible to the CPU.
    pub fn sync_for_cpu(&mut self, m: &DmaMapping) -> Result<(), DmaError> {
        let mut l = self.live_entry(m)?;
        if let How::Bounce { tlb_addr } = l.how
            && let Some(pool) = self.platform.borrow_mut().pool_mut()
        {
            pool.sync_for_cpu(tlb_addr, &mut l.buf.mem, l.off, l.len, l.dir)?;
        }
        Ok(())
    }

    /// `dma_sync_single_for_device`: make CPU writes visible to the device.
    pub fn sync_for_device(&mut self, m: &DmaMapping) -> Result<(), DmaError> {
        let l = self.live_entry(m)?;
        if let How::Bounce { tlb_addr } = l.how
            && let Some(pool) = self.platform.borrow_mut().pool_mut()
        {
            pool.sync_for_device(tlb_addr, &l.buf.mem, l.off, l.len, l.dir)?;
        }
        Ok(())
    }

    /// `dma_unmap_single`: copy back (from-device / bidirectional bounces) and release.
    pub fn unmap<B: Backend>(&mut self, b: &mut B, m: DmaMapping) -> Result<(), DmaError> {
        let mut l = self.live.remove(&m.dma_addr).ok_or(DmaError::NotMapped { dma_addr: m.dma_addr })?;
        self.stats.unmaps += 1;
        self.stats.live_mappings -= 1;
        self.stats.live_bytes -= l.len;
        match l.how {
            How::Window { iova } => b.dma_unmap(iova)?,
            How::Bounce { tlb_addr } => {
                if let Some(pool) = self.platform.borrow_mut().pool_mut() {
                    pool.unmap(tlb_addr, &mut l.buf.mem, l.off, l.len, l.dir)?;
                }
            }
        }
        Ok(())
    }

    /// `dma_alloc_coherent`: memory both sides see without syncs. On Xen this is exchanged
    /// for machine-contiguous frames (`xen_create_contiguous_region`), never taken from the
    /// bounce pool, so it is always a direct window here.
    pub fn alloc_coherent<B: Backend>(&mut self, b: &mut B, len: usize) -> Result<Coherent, DmaError> {
        let mem = b.dma_alloc(len)?;
        let iova = self.window_iova(&mem);
        b.dma_map(&mem, iova, DmaPerm::BIDIRECTIONAL)?;
        self.coherent.insert(iova, mem.len());
        self.stats.coherent_live += 1;
        self.stats.coherent_bytes += mem.len();
        Ok(Coherent { mem, dma_addr: iova })
    }

    /// `dma_free_coherent`.
    pub fn free_coherent<B: Backend>(&mut self, b: &mut B, c: Coherent) -> Result<(), DmaError> {
        let len = self.coherent.remove(&c.dma_addr).ok_or(DmaError::NotMapped { dma_addr: c.dma_addr })?;
        self.stats.coherent_live -= 1;
        self.stats.coherent_bytes -= len;
        b.dma_unmap(c.dma_addr)?;
        Ok(())
    }

    /// Streaming mappings still live.
    pub fn leaks(&self) -> Vec<Leak> {
        self.live
            .iter()
            .map(|(&dma_addr, l)| Leak {
                dma_addr,
                len: l.len,
                dir: l.dir,
                bounced: matches!(l.how, How::Bounce { .. }),
            })
            .collect()
    }

    /// Unmap everything still live (streaming and coherent) and the pool window; report
    /// anything that had to be unmapped here as a leak (check `dma-mappings-balanced`).
    pub fn teardown<B: Backend>(&mut self, b: &mut B) -> CheckReport {
        let leaks = self.leaks();
        let coherent_left = self.coherent.len();
        let maps = self.stats.maps;
        let unmaps = self.stats.unmaps;
        for leak in &leaks {
            let m = DmaMapping { dma_addr: leak.dma_addr, len: leak.len, dir: leak.dir, bounced: leak.bounced };
            let _ = self.unmap(b, m);
        }
        for (iova, _) in std::mem::take(&mut self.coherent) {
            let _ = b.dma_unmap(iova);
        }
        if let Some(start) = self.pool_window.take() {
            let _ = b.dma_unmap(start);
        }
        let result = if leaks.is_empty() && coherent_left == 0 { CheckResult::Pass } else { CheckResult::Fail };
        let mut detail = format!(
            "{}: {maps} mapped, {unmaps} unmapped by the driver, high-water {} mappings / {} bytes",
            self.dev.bdf, self.stats.hiwater_mappings, self.stats.hiwater_bytes
        );
        if !leaks.is_empty() || coherent_left > 0 {
            let bytes: usize = leaks.iter().map(|l| l.len).sum();
            detail.push_str(&format!(
                "; LEAK: {} streaming mappings ({bytes} bytes, first at {:#x}) and {coherent_left} coherent allocations left at teardown",
                leaks.len(),
                leaks.first().map_or(0, |l| l.dma_addr)
            ));
        }
        CheckReport::new("dma-mappings-balanced", result, detail)
            .measure("leaked_mappings", leaks.len() as f64, "mappings")
            .measure("hiwater_mappings", self.stats.hiwater_mappings as f64, "mappings")
    }
}

#[cfg(test)]
mod tests;
