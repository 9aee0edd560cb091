//! Host memory as the DMA layer sees it: guest-physical pages backed by machine frames.
//!
//! * **Native**: machine address = physical address; every physically contiguous buffer is
//!   machine-contiguous.
//! * **Xen PV dom0**: the p2m table maps each page frame (pfn) to a machine frame (mfn) the
//!   hypervisor chose. They come in extents, shuffled, so consecutive pfns are consecutive
//!   mfns only inside an extent. swiotlb-xen (`range_straddles_page_boundary`) uses a buffer
//!   directly only if it lies within one page, or every page's mfn follows the previous
//!   one; anything else must bounce.
//!
//! Memory can shrink (and grow back) at run time, as ballooning does: [`HostMemory::shrink`]
//! takes free pages away (their p2m entries become invalid), [`HostMemory::grow`] gives
//! pages back with fresh machine frames (on Xen scattered ones). Allocation fails with a
//! typed [`MemError`] when no free range is left; nothing here panics.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// CPU page size.
pub const PAGE_SIZE: u64 = 4096;
/// p2m entry of a page that has no machine frame (x86 `INVALID_P2M_ENTRY`).
pub const INVALID_MFN: u64 = u64::MAX;

/// Which memory model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryKind {
    Native,
    XenPv,
}

/// Errors of allocation and ballooning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    #[error("out of memory: no free {pages}-page range aligned to {align_pages} pages ({free} pages free)")]
    OutOfMemory { pages: u64, align_pages: u64, free: u64 },
    #[error("physical range {phys:#x}+{len:#x} was not allocated")]
    NotAllocated { phys: u64, len: u64 },
    #[error("cannot shrink by {want} pages: only {free} pages are free")]
    ShrinkTooFar { want: u64, free: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Free,
    Used,
    /// Given back to the hypervisor (no machine frame).
    Ballooned,
}

/// Page-frame state and the p2m table.
#[derive(Debug, Clone)]
pub struct HostMemory {
    kind: MemoryKind,
    p2m: Vec<u64>,
    pages: Vec<Page>,
    free: u64,
    ballooned: u64,
    /// Next-fit hint for allocation.
    hint: usize,
    /// Next machine frame handed out when ballooning back in.
    next_mfn: u64,
    rng: ChaCha8Rng,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemStats {
    pub kind: MemoryKind,
    pub total_pages: u64,
    pub free_pages: u64,
    pub used_pages: u64,
    pub ballooned_pages: u64,
}

impl HostMemory {
    /// `pages` pages, machine address = physical address.
    pub fn native(pages: u64) -> Self {
        Self::build(MemoryKind::Native, (0..pages).collect(), 0)
    }

    /// `pages` pages of a Xen PV dom0: machine frames come in runs (extents) whose lengths
    /// are drawn uniformly from `1..=2*extent_pages-1` (mean `extent_pages`; 1 = every page
    /// scattered), placed in shuffled order, seeded. Frames start at 1 GiB. A buffer that
    /// crosses a run boundary is not machine-contiguous.
    pub fn xen_pv(pages: u64, extent_pages: u64, seed: u64) -> Self {
        let extent = extent_pages.max(1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let base_mfn = (1u64 << 30) / PAGE_SIZE;
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut pfn = 0;
        while pfn < pages {
            let len = rng.random_range(1..=2 * extent - 1).min(pages - pfn);
            runs.push((pfn, len));
            pfn += len;
        }
        // Machine placement: the runs in shuffled order, one free frame between runs so that
        // neighbours in machine space are never neighbours in pfn space by accident.
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.shuffle(&mut rng);
        let mut p2m = vec![INVALID_MFN; pages as usize];
        let mut mfn = base_mfn;
        for k in order {
            if let Some(&(start, len)) = runs.get(k) {
                for i in 0..len {
                    if let Some(e) = p2m.get_mut((start + i) as usize) {
                        *e = mfn + i;
                    }
                }
                mfn += len + 1;
            }
        }
        let mut m = Self::build(MemoryKind::XenPv, p2m, seed);
        m.rng = rng;
        m
    }

    fn build(kind: MemoryKind, p2m: Vec<u64>, seed: u64) -> Self {
        let n = p2m.len();
        let next_mfn = p2m.iter().copied().max().map_or(0, |m| m + 1);
        HostMemory {
            kind,
            p2m,
            pages: vec![Page::Free; n],
            free: n as u64,
            ballooned: 0,
            hint: 0,
            next_mfn,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6d65_6d6f),
        }
    }

    pub fn kind(&self) -> MemoryKind {
        self.kind
    }

    pub fn stats(&self) -> MemStats {
        let total = self.pages.len() as u64;
        MemStats {
            kind: self.kind,
            total_pages: total,
            free_pages: self.free,
            used_pages: total - self.free - self.ballooned,
            ballooned_pages: self.ballooned,
        }
    }

    /// Machine frame of `pfn`, `None` if out of range or ballooned out.
    pub fn pfn_to_mfn(&self, pfn: u64) -> Option<u64> {
        self.p2m.get(pfn as usize).copied().filter(|&m| m != INVALID_MFN)
    }

    /// Machine address of physical address `phys`.
    pub fn phys_to_machine(&self, phys: u64) -> Option<u64> {
        Some(self.pfn_to_mfn(phys / PAGE_SIZE)? * PAGE_SIZE + phys % PAGE_SIZE)
    }

    /// swiotlb-xen's test, inverted: true when `phys..phys+len` is machine-contiguous (a
    /// buffer inside one page always is; a longer one needs consecutive mfns throughout).
    pub fn is_machine_contiguous(&self, phys: u64, len: u64) -> bool {
        let offset = phys % PAGE_SIZE;
        let Some(mfn0) = self.pfn_to_mfn(phys / PAGE_SIZE) else { return false };
        if offset + len <= PAGE_SIZE {
            return true;
        }
        let pages = (offset + len).div_ceil(PAGE_SIZE);
        (1..pages).all(|i| self.pfn_to_mfn(phys / PAGE_SIZE + i) == Some(mfn0 + i))
    }

    /// True when a device with `dma_mask` cannot use `phys..phys+len` directly: on Xen it
    /// is not machine-contiguous, or (anywhere) it lies above the mask (`dma_capable`).
    pub fn needs_bounce(&self, phys: u64, len: u64, dma_mask: u64) -> bool {
        let capable = |p: u64| {
            self.phys_to_machine(p).is_some_and(|m| m.checked_add(len.saturating_sub(1)).is_some_and(|e| e <= dma_mask))
        };
        match self.kind {
            MemoryKind::Native => !capable(phys),
            MemoryKind::XenPv => !self.is_machine_contiguous(phys, len) || !capable(phys),
        }
    }

    /// Allocate `len` bytes (whole pages) at a physical address aligned to `align` bytes
    /// (a power of two, at least a page): the page allocator under `kmalloc`/`alloc_pages`.
    pub fn alloc(&mut self, len: u64, align: u64) -> Result<u64, MemError> {
        let pages = len.max(1).div_ceil(PAGE_SIZE);
        let align_pages = (align / PAGE_SIZE).max(1).next_power_of_two();
        let n = self.pages.len();
        let err = MemError::OutOfMemory { pages, align_pages, free: self.free };
        if pages > self.free {
            return Err(err);
        }
        let align_up = |i: usize| i.div_ceil(align_pages as usize) * align_pages as usize;
        let mut start = align_up(self.hint);
        let mut wrapped = false;
        loop {
            if start + pages as usize > n {
                if wrapped {
                    return Err(err);
                }
                wrapped = true;
                start = 0;
                continue;
            }
            if wrapped && start >= self.hint {
                return Err(err);
            }
            match self.pages.get(start..start + pages as usize) {
                Some(run) => match run.iter().rposition(|p| *p != Page::Free) {
                    None => break,
                    Some(bad) => start = align_up(start + bad + 1),
                },
                None => return Err(err),
            }
        }
        if let Some(run) = self.pages.get_mut(start..start + pages as usize) {
            run.fill(Page::Used);
        }
        self.free -= pages;
        self.hint = start + pages as usize;
        Ok(start as u64 * PAGE_SIZE)
    }

    /// Free what [`HostMemory::alloc`] returned.
    pub fn free(&mut self, phys: u64, len: u64) -> Result<(), MemError> {
        let pages = len.max(1).div_ceil(PAGE_SIZE) as usize;
        let start = (phys / PAGE_SIZE) as usize;
        let err = MemError::NotAllocated { phys, len };
        let run = self.pages.get_mut(start..start.checked_add(pages).ok_or(err.clone())?).ok_or(err.clone())?;
        if !phys.is_multiple_of(PAGE_SIZE) || run.iter().any(|p| *p != Page::Used) {
            return Err(err);
        }
        run.fill(Page::Free);
        self.free += pages as u64;
        Ok(())
    }

    /// Balloon out `pages` free pages (picked at random, seeded): memory available to this
    /// domain shrinks at run time. Their p2m entries become invalid.
    pub fn shrink(&mut self, pages: u64) -> Result<(), MemError> {
        if pages > self.free {
            return Err(MemError::ShrinkTooFar { want: pages, free: self.free });
        }
        let mut free: Vec<usize> =
            self.pages.iter().enumerate().filter(|(_, p)| **p == Page::Free).map(|(i, _)| i).collect();
        free.shuffle(&mut self.rng);
        for &i in free.iter().take(pages as usize) {
            if let (Some(p), Some(m)) = (self.pages.get_mut(i), self.p2m.get_mut(i)) {
                *p = Page::Ballooned;
                *m = INVALID_MFN;
            }
        }
        self.free -= pages;
        self.ballooned += pages;
        Ok(())
    }

    /// Balloon `pages` pages back in (fewer if fewer are out). Native memory gets its own
    /// frames back; Xen hands out whatever frames it has, here fresh scattered ones.
    /// Returns the number of pages added.
    pub fn grow(&mut self, pages: u64) -> u64 {
        let mut added = 0;
        let candidates: Vec<usize> =
            self.pages.iter().enumerate().filter(|(_, p)| **p == Page::Ballooned).map(|(i, _)| i).collect();
        for i in candidates.into_iter().take(pages as usize) {
            let mfn = match self.kind {
                MemoryKind::Native => i as u64,
                MemoryKind::XenPv => {
                    // Leave a gap so the new frame is not contiguous with the last one.
                    self.next_mfn += 1 + self.rng.random_range(0..4u64);
                    self.next_mfn
                }
            };
            if let (Some(p), Some(m)) = (self.pages.get_mut(i), self.p2m.get_mut(i)) {
                *p = Page::Free;
                *m = mfn;
                added += 1;
            }
        }
        self.free += added;
        self.ballooned -= added;
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_is_contiguous_and_capable_below_the_mask() {
        let m = HostMemory::native(1024);
        assert!(m.is_machine_contiguous(4000, 20_000));
        assert!(!m.needs_bounce(0x1000, 9472, u64::MAX));
        // A 32-bit device and memory above 4 GiB would bounce; here everything is low.
        assert!(m.needs_bounce(0x1000, 4096, 0xfff));
    }

    #[test]
    fn xen_multi_page_buffers_bounce_unless_frames_are_consecutive() {
        // Fully scattered: any buffer crossing a page boundary bounces.
        let m = HostMemory::xen_pv(4096, 1, 7);
        assert!(!m.needs_bounce(0x2000, 4096, u64::MAX), "a whole page never bounces");
        assert!(!m.needs_bounce(0x2040, 1984, u64::MAX), "inside one page never bounces");
        assert!(m.needs_bounce(0x2040, 4096, u64::MAX), "crosses into a scattered page");
        // Runs of 16 pages on average: some 3-page buffers cross a run boundary, most do not.
        let m = HostMemory::xen_pv(4096, 16, 7);
        let bouncing = (0..1000u64).filter(|k| m.needs_bounce(k * 16384 + 64, 9472, u64::MAX)).count();
        assert!((50..250).contains(&bouncing), "about 2/16 of them: {bouncing}");
        // Deterministic per seed.
        let again = HostMemory::xen_pv(4096, 16, 7);
        assert_eq!(
            (0..4096).map(|p| m.pfn_to_mfn(p)).collect::<Vec<_>>(),
            (0..4096).map(|p| again.pfn_to_mfn(p)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn alloc_aligns_frees_and_fails_typed() {
        let mut m = HostMemory::native(16);
        let a = m.alloc(9536, 16384).unwrap();
        assert_eq!((a % 16384, m.stats().used_pages), (0, 3));
        let b = m.alloc(4096, 4096).unwrap();
        assert_eq!(b, 3 * 4096);
        assert!(matches!(m.alloc(16 * 4096, 4096), Err(MemError::OutOfMemory { .. })));
        m.free(a, 9536).unwrap();
        assert!(matches!(m.free(a, 9536), Err(MemError::NotAllocated { .. })), "double free");
        assert_eq!(m.stats().free_pages, 15);
    }

    #[test]
    fn memory_shrinks_and_grows_at_run_time() {
        let mut m = HostMemory::xen_pv(64, 64, 1);
        let a = m.alloc(8 * 4096, 4096).unwrap();
        let frames = |m: &HostMemory| (0..8).map(|i| m.pfn_to_mfn(a / 4096 + i)).collect::<Vec<_>>();
        let before = frames(&m);
        m.shrink(50).unwrap();
        let s = m.stats();
        assert_eq!((s.free_pages, s.used_pages, s.ballooned_pages), (6, 8, 50));
        assert!(m.shrink(7).is_err());
        assert!(m.alloc(8 * 4096, 4096).is_err(), "no 8-page run left");
        // Allocated pages keep their frames.
        assert_eq!(frames(&m), before);
        assert!(before.iter().all(Option::is_some));
        assert_eq!(m.grow(100), 50);
        assert_eq!(m.stats().free_pages, 56);
        // Ballooned-back frames are scattered: a formerly contiguous extent is broken up.
        let broken = (0..63u64).filter(|&p| m.pfn_to_mfn(p + 1) != m.pfn_to_mfn(p).map(|x| x + 1)).count();
        assert!(broken > 10, "{broken}");
    }
}
