//! A software IO TLB (bounce-buffer pool) that allocates, aligns, wraps, copies and fails the
//! way Linux's does.
//!
//! Facts (Linux `include/linux/swiotlb.h`, `kernel/dma/swiotlb.c` for 6.x, `lib/swiotlb.c`
//! for 2.6.32–4.x, classic Xen `lib/swiotlb-xen.c`):
//!
//! * a slot is 2 KiB (`IO_TLB_SHIFT` 11); a segment is 128 slots (256 KiB); no allocation
//!   crosses a segment, which also caps one mapping at 256 KiB;
//! * `list[i]` is the number of free contiguous slots from `i` to the end of its segment
//!   (0 = in use); allocation and release keep it exact, merging with free neighbours;
//! * the search is next-fit from a remembered index and wraps to the start of the pool (of
//!   the area, on 6.x);
//! * alignment: a 6.x mapping of `>= PAGE_SIZE` bytes is page-aligned (stride 2 slots); the
//!   old allocator page-aligns only mappings of `> PAGE_SIZE`;
//! * 6.x splits the pool into areas (one per CPU, power of two); a mapping only searches
//!   areas with enough unused slots, starting at `cpu & (nareas - 1)`;
//! * copies: map copies CPU→bounce (6.x always, to keep a partial device write from leaking
//!   stale pool data; old kernels only for to-device / bidirectional), sync-for-device copies
//!   CPU→bounce for to-device / bidirectional, sync-for-CPU and unmap copy bounce→CPU for
//!   from-device / bidirectional.
//!
//! What differs on purpose: exhaustion is a typed [`SwiotlbError::Full`] for that one mapping.
//! The message each kernel generation would have logged is produced exactly, and what an old
//! kernel would have done next (hand out the shared overflow buffer, or panic) is reported in
//! [`OldKernelAction`] instead of being done. Device `min_align_mask` (NVMe) is not modelled:
//! NICs do not set it.
//!
//! What differs for speed only: the bookkeeping. Instead of a `list[]` byte per slot that
//! every allocate and release renumbers (up to 127 slots), each segment keeps one 128-bit
//! in-use mask; `list[i]` is derived from it (the free bits from `i` up to the next used one),
//! allocate and release set or clear one bit range, and the search computes, per segment and
//! with a few shifts, the mask of slots where `nslots` free slots start, so it goes straight
//! to the next candidate that fits instead of testing each one. It returns exactly the slot
//! the kernel's loop returns (same visiting order, remembered-index update, wrap and 6.x
//! `checked` count). The kernels' plain loops are kept in the tests as the reference this is
//! checked against, step by step, on random allocate/release sequences.

use serde::Serialize;

/// log2 of the slot size.
pub const IO_TLB_SHIFT: u32 = 11;
/// Bytes per slot.
pub const IO_TLB_SIZE: usize = 1 << IO_TLB_SHIFT;
/// Slots per segment; no allocation crosses a segment.
pub const IO_TLB_SEGSIZE: usize = 128;
/// Largest single mapping: one whole segment (256 KiB).
pub const MAX_MAPPING_SIZE: usize = IO_TLB_SIZE * IO_TLB_SEGSIZE;
/// CPU page size (x86).
pub const PAGE_SIZE: usize = 4096;
/// Default pool: 64 MiB.
pub const DEFAULT_POOL_BYTES: usize = 64 << 20;
/// Fewest slots Linux accepts for a pool (1 MiB).
pub const IO_TLB_MIN_SLABS: usize = (1 << 20) >> IO_TLB_SHIFT;
/// Old kernels' shared overflow buffer; a failed single map up to this size got it instead of
/// a panic (`io_tlb_overflow`).
pub const OVERFLOW_BYTES: usize = 32 * 1024;
/// Default DMA segment boundary of a PCI device (`dma_get_seg_boundary`, 32-bit mask): 4 GiB.
pub const DEFAULT_SEG_BOUNDARY: u64 = 1 << 32;
/// Log lines kept; more are counted, not stored.
const LOG_CAP: usize = 1024;

/// Slots needed for `size` bytes (`nr_slots`).
pub const fn nr_slots(size: usize) -> usize {
    size.div_ceil(IO_TLB_SIZE)
}

/// Which kernel's allocator, wording and failure behaviour to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generation {
    /// Classic Xen dom0 kernels (2.6.18-xen, XenServer 2.6.32): one next-fit index,
    /// "PCI-DMA: Out of SW-IOMMU space ...", shared overflow buffer, panic above 32 KiB in a
    /// single map. `swiotlb=` is in MB.
    ClassicXen,
    /// Mainline/pvops `lib/swiotlb.c` (2.6.32–4.x): same allocator, "swiotlb buffer is full
    /// (sz: N bytes)" then "DMA: Out of SW-IOMMU space ...". `swiotlb=` is in slots.
    Legacy,
    /// Mainline 6.x `kernel/dma/swiotlb.c`: areas, page alignment from `>= PAGE_SIZE`,
    /// "swiotlb buffer is full (sz: ..), total .. (slots), used .. (slots)", the mapping returns
    /// `DMA_MAPPING_ERROR`. `swiotlb=` is `<slots>[,<nareas>]`.
    Modern,
}

impl Generation {
    fn old_allocator(self) -> bool {
        !matches!(self, Generation::Modern)
    }
}

/// `enum dma_data_direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DmaDirection {
    Bidirectional,
    ToDevice,
    FromDevice,
}

impl DmaDirection {
    fn cpu_to_bounce_on_sync(self) -> bool {
        matches!(self, DmaDirection::ToDevice | DmaDirection::Bidirectional)
    }
    fn bounce_to_cpu(self) -> bool {
        matches!(self, DmaDirection::FromDevice | DmaDirection::Bidirectional)
    }
}

/// How the mapping was requested: a single map (`dma_map_single`/`dma_map_page`, which old
/// kernels allowed to panic) or a scatter-gather entry (`dma_map_sg`, which never panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MapKind {
    Single,
    Sg,
}

/// The device a mapping is for, as the kernel names it in messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceName {
    /// Driver name (`bnx2x`), the `dev_warn` prefix.
    pub driver: String,
    /// Bus name (`0000:04:00.0`).
    pub bdf: String,
}

impl DeviceName {
    pub fn new(driver: impl Into<String>, bdf: impl Into<String>) -> Self {
        DeviceName { driver: driver.into(), bdf: bdf.into() }
    }
}

/// What the kernel of the configured generation would have done after the failed mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum OldKernelAction {
    /// 6.x: `DMA_MAPPING_ERROR`, the caller must check it.
    MappingError,
    /// Old kernels, single map up to 32 KiB or any sg entry: the shared 32 KiB overflow buffer
    /// is returned; a driver that does not call `dma_mapping_error` DMAs into it.
    OverflowBuffer,
    /// Old kernels, single map above 32 KiB: `panic(message)`.
    Panic { message: String },
}

/// Why a bounce mapping could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwiotlbError {
    #[error(
        "SWIOTLB full: no {nslots}-slot run for {size} bytes at device {device} (total {total} slots, used {used}, largest free run {largest_free_run}); old kernel: {action:?}"
    )]
    Full {
        device: String,
        size: usize,
        nslots: usize,
        total: usize,
        used: usize,
        largest_free_run: usize,
        action: OldKernelAction,
    },
    #[error("SWIOTLB: zero-length mapping at device {device}")]
    ZeroLength { device: String },
    #[error("SWIOTLB: address {tlb_addr:#x} is not the start of a live bounce mapping")]
    NotMapped { tlb_addr: u64 },
    #[error("SWIOTLB: {size} bytes at {tlb_addr:#x} exceed the {alloc_size}-byte bounce mapping")]
    SizeMismatch { tlb_addr: u64, size: usize, alloc_size: usize },
    #[error("SWIOTLB: original buffer at offset {offset} is shorter than {size} bytes")]
    ShortBuffer { offset: usize, size: usize },
    #[error("swiotlb={value}: {why}")]
    BadParam { value: String, why: &'static str },
}

/// Pool geometry and behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SwiotlbConfig {
    /// Slots in the pool (a multiple of 128).
    pub nslabs: usize,
    /// Areas (6.x only; 1 on old generations). A power of two.
    pub nareas: usize,
    pub generation: Generation,
    /// Machine/bus address of slot 0 (page aligned).
    pub start: u64,
    /// Device DMA segment boundary in bytes (power of two).
    pub seg_boundary: u64,
    /// Log each failure (6.x `DMA_ATTR_NO_WARN` off).
    pub warn: bool,
}

impl SwiotlbConfig {
    /// The default 64 MiB pool of `generation`, one area, at 1 GiB.
    pub fn default_for(generation: Generation) -> Self {
        Self::with_slots(generation, DEFAULT_POOL_BYTES / IO_TLB_SIZE)
    }

    /// A pool of `nslabs` slots, rounded up to whole segments.
    pub fn with_slots(generation: Generation, nslabs: usize) -> Self {
        let nslabs = nslabs.max(1).div_ceil(IO_TLB_SEGSIZE) * IO_TLB_SEGSIZE;
        SwiotlbConfig { nslabs, nareas: 1, generation, start: 1 << 30, seg_boundary: DEFAULT_SEG_BOUNDARY, warn: true }
    }

    /// A pool of `mib` MiB.
    pub fn with_mib(generation: Generation, mib: usize) -> Self {
        Self::with_slots(generation, (mib << 20) / IO_TLB_SIZE)
    }

    /// `nareas` areas (6.x): rounded up to a power of two, then reduced until each area has
    /// at least one segment, as `swiotlb_adjust_nareas`/`limit_nareas` do.
    pub fn areas(mut self, nareas: usize) -> Self {
        let mut n = nareas.max(1).next_power_of_two();
        if self.generation.old_allocator() {
            n = 1;
        }
        while n > 1 && self.nslabs < n * IO_TLB_SEGSIZE {
            n /= 2;
        }
        self.nareas = n;
        self
    }

    /// Parse the value of the `swiotlb=` kernel parameter the way `generation` reads it:
    /// classic Xen takes megabytes (`128`, `128,force`); mainline takes slots, rounded up to a
    /// multiple of 128 (`65536` = 128 MiB), 6.x optionally followed by `,<nareas>`.
    pub fn parse_cmdline(generation: Generation, value: &str) -> Result<Self, SwiotlbError> {
        let bad = |why| SwiotlbError::BadParam { value: value.to_string(), why };
        let mut parts = value.split(',');
        let first = parts.next().unwrap_or("");
        let n: usize = first.trim().parse().map_err(|_| bad("expected a number"))?;
        if n == 0 {
            return Err(bad("pool size must be positive"));
        }
        let mut cfg = match generation {
            Generation::ClassicXen => {
                let slots = n.checked_mul(1 << 20).ok_or(bad("too large"))? / IO_TLB_SIZE;
                Self::with_slots(generation, slots)
            }
            _ => Self::with_slots(generation, n),
        };
        if cfg.nslabs > (1 << 26) {
            return Err(bad("too large"));
        }
        for p in parts {
            match (generation, p.trim()) {
                (_, "force" | "noforce" | "off") => {}
                (Generation::Modern, a) => {
                    let areas: usize = a.parse().map_err(|_| bad("expected ,<nareas>, force or noforce"))?;
                    cfg = cfg.areas(areas);
                }
                _ => return Err(bad("unknown option")),
            }
        }
        Ok(cfg)
    }

    /// Pool size in bytes.
    pub fn bytes(&self) -> usize {
        self.nslabs * IO_TLB_SIZE
    }
}

/// Bytes a bounce copy reads or writes: the pool's backing store, or a CPU buffer.
pub trait ByteStore {
    fn byte_len(&self) -> usize;
    /// Copy `data` in at `off`; false if out of bounds.
    fn store(&mut self, off: usize, data: &[u8]) -> bool;
    /// Copy out at `off`; false if out of bounds.
    fn load(&self, off: usize, out: &mut [u8]) -> bool;
}

impl ByteStore for Vec<u8> {
    fn byte_len(&self) -> usize {
        self.len()
    }
    fn store(&mut self, off: usize, data: &[u8]) -> bool {
        match off.checked_add(data.len()).and_then(|end| self.get_mut(off..end)) {
            Some(d) => {
                d.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
    fn load(&self, off: usize, out: &mut [u8]) -> bool {
        match off.checked_add(out.len()).and_then(|end| self.get(off..end)) {
            Some(s) => {
                out.copy_from_slice(s);
                true
            }
            None => false,
        }
    }
}

/// Copy `len` bytes from `src@src_off` to `dst@dst_off`, in chunks.
fn copy_between(
    src: &dyn ByteStore,
    src_off: usize,
    dst: &mut dyn ByteStore,
    dst_off: usize,
    len: usize,
) -> Result<(), ()> {
    let mut buf = [0u8; 512];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len());
        let chunk = buf.get_mut(..n).ok_or(())?;
        if !src.load(src_off + done, chunk) || !dst.store(dst_off + done, chunk) {
            return Err(());
        }
        done += n;
    }
    Ok(())
}

/// One live bounce mapping, as handed to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TlbMapping {
    /// Bus address the device uses.
    pub tlb_addr: u64,
    /// First slot.
    pub index: usize,
    pub nslots: usize,
    pub size: usize,
}

/// Counters, like `/sys/kernel/debug/swiotlb/`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SwiotlbStats {
    pub nslabs: usize,
    /// `io_tlb_used`.
    pub used: usize,
    /// `io_tlb_used_hiwater`.
    pub used_hiwater: usize,
    pub live_mappings: usize,
    pub maps: u64,
    pub unmaps: u64,
    pub failures: u64,
    /// Failures an old kernel (classic Xen, legacy) answered with the shared overflow buffer
    /// (`io_tlb_overflow_buffer`): a single map of at most [`OVERFLOW_BYTES`], or any sg
    /// entry. A driver that did not check `dma_mapping_error` then DMA'd that frame from or
    /// into 32 KiB of shared garbage.
    pub overflow_handouts: u64,
    /// Failures an old kernel would have panicked on (single map above [`OVERFLOW_BYTES`]).
    pub would_panic: u64,
    pub bytes_bounced: u64,
}

/// Per-slot state (`struct io_tlb_slot` without `list`, plus a start-of-mapping mark).
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// First slot of a live mapping.
    head: bool,
    /// Bytes allocated from this slot to the end of the mapping.
    alloc_size: u32,
    /// Original (CPU) address, `u64::MAX` when free.
    orig_addr: u64,
}

#[derive(Debug, Clone, Copy)]
struct Area {
    used: usize,
    index: usize,
}

/// The bounce pool: slot bookkeeping, log lines, and (optionally) backing bytes.
#[derive(Debug)]
pub struct Swiotlb<S: ByteStore = Vec<u8>> {
    cfg: SwiotlbConfig,
    area_nslabs: usize,
    /// One mask per segment: bit `k` set = slot `segment * 128 + k` in use. Bits past the
    /// end of a pool that is not whole segments are set, so no run reaches them.
    in_use: Vec<u128>,
    slots: Vec<Slot>,
    areas: Vec<Area>,
    stats: SwiotlbStats,
    log: Vec<String>,
    log_dropped: u64,
    store: S,
}

/// Bytes of the default backing store: zero-filled, so untouched pages cost nothing.
impl Swiotlb<Vec<u8>> {
    /// A pool backed by host memory.
    pub fn new(cfg: SwiotlbConfig) -> Self {
        let bytes = cfg.bytes();
        Self::with_store(cfg, vec![0u8; bytes])
    }
}

impl<S: ByteStore> Swiotlb<S> {
    /// A pool whose bounce bytes live in `store` (at least `cfg.bytes()` long, or copies fail
    /// with a typed error).
    pub fn with_store(cfg: SwiotlbConfig, store: S) -> Self {
        // One area on the old allocators; at least one on 6.x (a hand-built config may say 0).
        let nareas = if cfg.generation.old_allocator() { 1 } else { cfg.nareas.max(1) };
        let cfg = SwiotlbConfig { nareas, ..cfg };
        let nslabs = cfg.nslabs;
        let in_use = (0..nslabs.div_ceil(IO_TLB_SEGSIZE))
            .map(|seg| !slot_mask(0, (nslabs - seg * IO_TLB_SEGSIZE).min(IO_TLB_SEGSIZE)))
            .collect();
        Swiotlb {
            area_nslabs: nslabs / cfg.nareas,
            in_use,
            slots: vec![Slot { head: false, alloc_size: 0, orig_addr: u64::MAX }; nslabs],
            areas: vec![Area { used: 0, index: 0 }; cfg.nareas],
            stats: SwiotlbStats { nslabs, ..Default::default() },
            log: Vec::new(),
            log_dropped: 0,
            cfg,
            store,
        }
    }

    pub fn config(&self) -> &SwiotlbConfig {
        &self.cfg
    }

    pub fn stats(&self) -> SwiotlbStats {
        self.stats
    }

    /// Reset the high-water mark (writing `io_tlb_used_hiwater`).
    pub fn reset_hiwater(&mut self) {
        self.stats.used_hiwater = self.stats.used;
    }

    /// The boot line 6.x prints: `software IO TLB: mapped [mem 0x..-0x..] (64MB)`.
    pub fn boot_line(&self) -> String {
        let end = self.cfg.start + self.cfg.bytes() as u64 - 1;
        format!("software IO TLB: mapped [mem {:#018x}-{:#018x}] ({}MB)", self.cfg.start, end, self.cfg.bytes() >> 20)
    }

    /// Messages logged so far (oldest first, at most a thousand kept).
    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// Take the log; returns the lines and how many were dropped for space.
    pub fn take_log(&mut self) -> (Vec<String>, u64) {
        (std::mem::take(&mut self.log), std::mem::take(&mut self.log_dropped))
    }

    fn push_log(&mut self, line: String) {
        tracing::debug!(target: "nicqual::swiotlb", "{line}");
        if self.log.len() < LOG_CAP {
            self.log.push(line);
        } else {
            self.log_dropped += 1;
        }
    }

    /// Bus address of slot `index`.
    pub fn slot_addr(&self, index: usize) -> u64 {
        self.cfg.start + ((index as u64) << IO_TLB_SHIFT)
    }

    /// True if `addr` lies inside the pool (`is_swiotlb_buffer`).
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.cfg.start && addr < self.cfg.start + self.cfg.bytes() as u64
    }

    /// The `list[]` value of slot `i` (free slots from `i` to its segment end).
    pub fn free_run_at(&self, i: usize) -> usize {
        if i >= self.cfg.nslabs {
            return 0;
        }
        let used = self.in_use.get(i / IO_TLB_SEGSIZE).map_or(!0, |&m| m >> (i % IO_TLB_SEGSIZE));
        (used.trailing_zeros() as usize).min(IO_TLB_SEGSIZE - i % IO_TLB_SEGSIZE)
    }

    /// The original (CPU) address a bus address inside the pool bounces for
    /// (`slots[].orig_addr`), or `None` if that slot is free.
    pub fn orig_addr(&self, tlb_addr: u64) -> Option<u64> {
        let off = tlb_addr.checked_sub(self.cfg.start)?;
        let slot = self.slots.get((off >> IO_TLB_SHIFT) as usize)?;
        (slot.orig_addr != u64::MAX).then(|| slot.orig_addr + (off & (IO_TLB_SIZE as u64 - 1)))
    }

    fn alloc_size_at(&self, i: usize) -> usize {
        self.slots.get(i).map_or(0, |s| s.alloc_size as usize)
    }

    /// Longest free run anywhere (a whole segment at most).
    pub fn largest_free_run(&self) -> usize {
        self.in_use.iter().map(|&m| longest_run(!m)).max().unwrap_or(0)
    }

    /// Backing store (for the device side of a bounce buffer).
    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// `iommu_is_span_boundary`: would `nslots` from slot `index` cross the device's DMA
    /// segment boundary?
    fn crosses_boundary(&self, index: usize, nslots: usize) -> bool {
        let max_slots = (self.cfg.seg_boundary >> IO_TLB_SHIFT).max(1) as usize;
        let shift = (self.cfg.start >> IO_TLB_SHIFT) as usize;
        let offset =
            if max_slots.is_power_of_two() { (shift + index) & (max_slots - 1) } else { (shift + index) % max_slots };
        offset + nslots > max_slots
    }

    /// The first slot `j` in `from..to` with `list[j] >= nslots` and `j + phase` a multiple
    /// of `stride` (1 or 2): the next candidate of a search, in slot order, that is not
    /// ruled out by its free run. One segment at a time: the slots where `nslots` free slots
    /// start, masked to the wanted alignment and range.
    fn next_candidate(&self, from: usize, to: usize, nslots: usize, stride: usize, phase: usize) -> Option<usize> {
        // Slot j of a segment (which starts at a multiple of 128) is wanted when j + phase is
        // a multiple of the stride.
        let aligned: u128 = match (stride, phase % 2) {
            (1, _) => !0,
            (_, 0) => 0x5555_5555_5555_5555_5555_5555_5555_5555,
            _ => 0xAAAA_AAAA_AAAA_AAAA_AAAA_AAAA_AAAA_AAAA,
        };
        let to = to.min(self.cfg.nslabs);
        let mut seg = from / IO_TLB_SEGSIZE;
        while seg * IO_TLB_SEGSIZE < to {
            let seg_start = seg * IO_TLB_SEGSIZE;
            let free = !self.in_use.get(seg).copied().unwrap_or(!0);
            if free != 0 {
                let mut fits = run_starts(free, nslots) & aligned;
                if from > seg_start {
                    fits &= !slot_mask(0, from - seg_start);
                }
                if to < seg_start + IO_TLB_SEGSIZE {
                    fits &= slot_mask(0, to - seg_start);
                }
                if fits != 0 {
                    return Some(seg_start + fits.trailing_zeros() as usize);
                }
            }
            seg += 1;
        }
        None
    }

    /// Round `n` up to a multiple of `stride` (a power of two).
    fn round_up(n: usize, stride: usize) -> usize {
        (n + stride - 1) & !(stride - 1)
    }

    /// Slot search of the old single-index allocator (`lib/swiotlb.c` `map_single`): the
    /// candidates are the multiples of the stride, visited from the remembered index (rounded
    /// up; 0 if that is past the end) to the end of the pool, then from 0 back up to it; the
    /// first one with `nslots` free that does not cross the device's segment boundary wins
    /// and the index moves past it (to 0 at the pool end).
    fn find_old(&mut self, size: usize, nslots: usize) -> Option<usize> {
        let nslabs = self.cfg.nslabs;
        let stride = if size > PAGE_SIZE { PAGE_SIZE / IO_TLB_SIZE } else { 1 };
        let area = *self.areas.first()?;
        let mut start = Self::round_up(area.index, stride);
        if start >= nslabs {
            start = 0;
        }
        let first_fit = |mut i: usize, hi: usize| {
            while let Some(j) = self.next_candidate(i, hi, nslots, stride, 0) {
                if !self.crosses_boundary(j, nslots) {
                    return Some(j);
                }
                i = j + stride;
            }
            None
        };
        let index = first_fit(start, nslabs).or_else(|| first_fit(0, start))?;
        self.areas.first_mut()?.index = if index + nslots < nslabs { index + nslots } else { 0 };
        Some(index)
    }

    /// Slot search of one 6.x area (`swiotlb_search_pool_area`): the kernel's loop, with its
    /// `checked` count and wrap to 0 at the area end, except that from a candidate without
    /// `nslots` free it advances to the next one that has them (or to the area end) in one
    /// step, counting every candidate in between, so where the loop stops and which slot it
    /// returns are the kernel's.
    fn find_in_area(&mut self, area_index: usize, size: usize, nslots: usize) -> Option<usize> {
        let area_nslabs = self.area_nslabs;
        let area = *self.areas.get(area_index)?;
        if nslots > area_nslabs - area.used {
            return None;
        }
        // No slot of a pool that does not start on a slot boundary is aligned: the kernel's
        // loop counts every slot and fails.
        if self.cfg.start & (IO_TLB_SIZE as u64 - 1) != 0 {
            return None;
        }
        let align_mask: u64 = if size >= PAGE_SIZE { (PAGE_SIZE - 1) as u64 } else { 0 } | (IO_TLB_SIZE - 1) as u64;
        let stride = ((align_mask >> IO_TLB_SHIFT) + 1) as usize;
        // Slot j is aligned when (start / IO_TLB_SIZE + j) is a multiple of the stride.
        let phase = (self.cfg.start >> IO_TLB_SHIFT) as usize & (stride - 1);
        let wrap = |i: usize| if i >= area_nslabs { 0 } else { i };
        let slot_base = area_index * area_nslabs;
        let mut index = area.index;
        let mut checked = 0;
        while checked < area_nslabs {
            let slot_index = slot_base + index;
            if self.slot_addr(slot_index) & align_mask != 0 {
                index = wrap(index + 1);
                checked += 1;
                continue;
            }
            let step = if self.free_run_at(slot_index) >= nslots {
                if !self.crosses_boundary(slot_index, nslots) {
                    self.areas.get_mut(area_index)?.index = wrap(index + nslots);
                    return Some(slot_index);
                }
                stride
            } else {
                // The loop would visit index + stride, + 2 * stride, ... and fail at each
                // until the next candidate with room; the step past the area end wraps to 0.
                let end = self
                    .next_candidate(slot_index, slot_base + area_nslabs, nslots, stride, phase)
                    .map_or(area_nslabs, |j| j - slot_base);
                Self::round_up(end - index, stride)
            };
            index = wrap(index + step);
            checked += step;
        }
        None
    }

    /// The area slot `index` belongs to.
    fn area_of(&self, index: usize) -> usize {
        if self.cfg.nareas == 1 { 0 } else { index / self.area_nslabs.max(1) }
    }

    /// Mark `nslots` from `index` used (the free counts of the run before it follow: they are
    /// derived from the in-use masks).
    fn take_slots(&mut self, index: usize, nslots: usize, size: usize, orig_addr: u64) {
        if let Some(m) = self.in_use.get_mut(index / IO_TLB_SEGSIZE) {
            *m |= slot_mask(index % IO_TLB_SEGSIZE, nslots);
        }
        if let Some(run) = self.slots.get_mut(index..index + nslots) {
            for (k, slot) in run.iter_mut().enumerate() {
                let off = k << IO_TLB_SHIFT;
                *slot = Slot {
                    head: k == 0,
                    alloc_size: (size - off.min(size)) as u32,
                    orig_addr: orig_addr.wrapping_add(off as u64),
                };
            }
        }
        let area = self.area_of(index);
        if let Some(area) = self.areas.get_mut(area) {
            area.used += nslots;
        }
        self.stats.used += nslots;
        self.stats.used_hiwater = self.stats.used_hiwater.max(self.stats.used);
        self.stats.live_mappings += 1;
        self.stats.maps += 1;
    }

    /// Return `nslots` from `index` (`swiotlb_release_slots`); merging with the free
    /// neighbours in the segment follows from the in-use mask.
    fn release_slots(&mut self, index: usize, nslots: usize) {
        if let Some(m) = self.in_use.get_mut(index / IO_TLB_SEGSIZE) {
            *m &= !slot_mask(index % IO_TLB_SEGSIZE, nslots);
        }
        if let Some(run) = self.slots.get_mut(index..index + nslots) {
            run.fill(Slot { head: false, alloc_size: 0, orig_addr: u64::MAX });
        }
        let area = self.area_of(index);
        if let Some(area) = self.areas.get_mut(area) {
            area.used -= nslots;
        }
        self.stats.used -= nslots;
        self.stats.live_mappings -= 1;
        self.stats.unmaps += 1;
    }

    /// Allocate slots for `size` bytes without copying (the bookkeeping half of a map).
    /// `cpu` picks the first area searched on 6.x.
    pub fn alloc(
        &mut self,
        dev: &DeviceName,
        orig_addr: u64,
        size: usize,
        dir: DmaDirection,
        kind: MapKind,
        cpu: usize,
    ) -> Result<TlbMapping, SwiotlbError> {
        if size == 0 {
            return Err(SwiotlbError::ZeroLength { device: dev.bdf.clone() });
        }
        let nslots = nr_slots(size);
        // A request beyond one segment can never be satisfied; the kernels search anyway and
        // fail the same way, so this takes the same failure path.
        let found = if nslots > IO_TLB_SEGSIZE {
            None
        } else if self.cfg.generation.old_allocator() {
            self.find_old(size, nslots)
        } else {
            let n = self.cfg.nareas;
            let start = cpu & (n - 1);
            (0..n).find_map(|k| self.find_in_area((start + k) % n, size, nslots))
        };
        match found {
            Some(index) => {
                self.take_slots(index, nslots, size, orig_addr);
                Ok(TlbMapping { tlb_addr: self.slot_addr(index), index, nslots, size })
            }
            None => Err(self.full(dev, size, nslots, dir, kind)),
        }
    }

    /// Build the failure, logging what the configured kernel logged.
    fn full(&mut self, dev: &DeviceName, size: usize, nslots: usize, dir: DmaDirection, kind: MapKind) -> SwiotlbError {
        self.stats.failures += 1;
        let (total, used) = (self.cfg.nslabs, self.stats.used);
        let old_action = || {
            if size <= OVERFLOW_BYTES || kind == MapKind::Sg {
                OldKernelAction::OverflowBuffer
            } else {
                OldKernelAction::Panic { message: panic_message(dir).to_string() }
            }
        };
        let action = match self.cfg.generation {
            Generation::ClassicXen => {
                self.push_log(format!("PCI-DMA: Out of SW-IOMMU space for {size} bytes at device {}", dev.bdf));
                old_action()
            }
            Generation::Legacy => {
                if self.cfg.warn {
                    self.push_log(format!("{} {}: swiotlb buffer is full (sz: {size} bytes)", dev.driver, dev.bdf));
                }
                self.push_log(format!("DMA: Out of SW-IOMMU space for {size} bytes at device {}", dev.bdf));
                old_action()
            }
            Generation::Modern => {
                if self.cfg.warn {
                    self.push_log(format!(
                        "{} {}: swiotlb buffer is full (sz: {size} bytes), total {total} (slots), used {used} (slots)",
                        dev.driver, dev.bdf
                    ));
                }
                OldKernelAction::MappingError
            }
        };
        match action {
            OldKernelAction::OverflowBuffer => self.stats.overflow_handouts += 1,
            OldKernelAction::Panic { .. } => self.stats.would_panic += 1,
            OldKernelAction::MappingError => {}
        }
        SwiotlbError::Full {
            device: dev.bdf.clone(),
            size,
            nslots,
            total,
            used,
            largest_free_run: self.largest_free_run(),
            action,
        }
    }

    fn live_head(&self, tlb_addr: u64) -> Result<usize, SwiotlbError> {
        if !self.contains(tlb_addr) || !(tlb_addr - self.cfg.start).is_multiple_of(IO_TLB_SIZE as u64) {
            return Err(SwiotlbError::NotMapped { tlb_addr });
        }
        let index = ((tlb_addr - self.cfg.start) >> IO_TLB_SHIFT) as usize;
        match self.slots.get(index) {
            Some(slot) if slot.head => Ok(index),
            _ => Err(SwiotlbError::NotMapped { tlb_addr }),
        }
    }

    /// Release the slots of the mapping at `tlb_addr` without copying.
    pub fn free(&mut self, tlb_addr: u64) -> Result<usize, SwiotlbError> {
        let index = self.live_head(tlb_addr)?;
        let nslots = nr_slots(self.alloc_size_at(index));
        self.release_slots(index, nslots);
        Ok(nslots)
    }

    fn check_size(&self, tlb_addr: u64, size: usize) -> Result<usize, SwiotlbError> {
        let index = self.live_head(tlb_addr)?;
        let alloc_size = self.alloc_size_at(index);
        if size > alloc_size {
            return Err(SwiotlbError::SizeMismatch { tlb_addr, size, alloc_size });
        }
        Ok(index)
    }

    fn copy_in(
        &mut self,
        index: usize,
        orig: &dyn ByteStore,
        orig_off: usize,
        size: usize,
    ) -> Result<(), SwiotlbError> {
        let off = index << IO_TLB_SHIFT;
        copy_between(orig, orig_off, &mut self.store, off, size)
            .map_err(|_| SwiotlbError::ShortBuffer { offset: orig_off, size })?;
        self.stats.bytes_bounced += size as u64;
        Ok(())
    }

    fn copy_out(
        &mut self,
        index: usize,
        orig: &mut dyn ByteStore,
        orig_off: usize,
        size: usize,
    ) -> Result<(), SwiotlbError> {
        let off = index << IO_TLB_SHIFT;
        copy_between(&self.store, off, orig, orig_off, size)
            .map_err(|_| SwiotlbError::ShortBuffer { offset: orig_off, size })?;
        self.stats.bytes_bounced += size as u64;
        Ok(())
    }

    /// `swiotlb_tbl_map_single`: allocate and copy the CPU buffer `orig[orig_off..+size]` in
    /// (6.x: always; old: to-device and bidirectional only).
    #[allow(clippy::too_many_arguments)]
    pub fn map(
        &mut self,
        dev: &DeviceName,
        orig: &dyn ByteStore,
        orig_off: usize,
        orig_addr: u64,
        size: usize,
        dir: DmaDirection,
        kind: MapKind,
        cpu: usize,
    ) -> Result<TlbMapping, SwiotlbError> {
        if orig_off.checked_add(size).is_none_or(|end| end > orig.byte_len()) {
            return Err(SwiotlbError::ShortBuffer { offset: orig_off, size });
        }
        let m = self.alloc(dev, orig_addr, size, dir, kind, cpu)?;
        let copy = self.cfg.generation == Generation::Modern || dir.cpu_to_bounce_on_sync();
        if copy && let Err(e) = self.copy_in(m.index, orig, orig_off, size) {
            let _ = self.free(m.tlb_addr);
            return Err(e);
        }
        Ok(m)
    }

    /// `swiotlb_sync_single_for_device`: CPU→bounce for to-device and bidirectional.
    pub fn sync_for_device(
        &mut self,
        tlb_addr: u64,
        orig: &dyn ByteStore,
        orig_off: usize,
        size: usize,
        dir: DmaDirection,
    ) -> Result<(), SwiotlbError> {
        let index = self.check_size(tlb_addr, size)?;
        if dir.cpu_to_bounce_on_sync() {
            self.copy_in(index, orig, orig_off, size)?;
        }
        Ok(())
    }

    /// `swiotlb_sync_single_for_cpu`: bounce→CPU for from-device and bidirectional.
    pub fn sync_for_cpu(
        &mut self,
        tlb_addr: u64,
        orig: &mut dyn ByteStore,
        orig_off: usize,
        size: usize,
        dir: DmaDirection,
    ) -> Result<(), SwiotlbError> {
        let index = self.check_size(tlb_addr, size)?;
        if dir.bounce_to_cpu() {
            self.copy_out(index, orig, orig_off, size)?;
        }
        Ok(())
    }

    /// `swiotlb_tbl_unmap_single`: bounce→CPU for from-device and bidirectional, then release.
    pub fn unmap(
        &mut self,
        tlb_addr: u64,
        orig: &mut dyn ByteStore,
        orig_off: usize,
        size: usize,
        dir: DmaDirection,
    ) -> Result<(), SwiotlbError> {
        let index = self.check_size(tlb_addr, size)?;
        let copied = if dir.bounce_to_cpu() { self.copy_out(index, orig, orig_off, size) } else { Ok(()) };
        self.free(tlb_addr)?;
        copied
    }
}

/// Bits `k..k + n` of a segment mask (`n` <= 128 - `k`).
fn slot_mask(k: usize, n: usize) -> u128 {
    let ones = if n >= IO_TLB_SEGSIZE { !0 } else { (1u128 << n) - 1 };
    ones.checked_shl(k as u32).unwrap_or(0)
}

/// The bits of `free` at which at least `n` (1..=128) set bits start, inside the 128: after
/// each step bit `k` is the AND of `free[k..k + have]`, and the step ANDs in the mask shifted
/// by at most `have`, so the ranges join; bits shifted in from above are 0, so no run
/// reaches past the segment.
#[inline]
fn run_starts(free: u128, n: usize) -> u128 {
    let mut m = free;
    let mut have = 1;
    while have < n && m != 0 {
        let s = have.min(n - have);
        m &= m >> s;
        have += s;
    }
    m
}

/// Length of the longest run of set bits (each step shortens every run by one).
fn longest_run(free: u128) -> usize {
    if free == !0 {
        return IO_TLB_SEGSIZE;
    }
    let mut m = free;
    let mut n = 0;
    while m != 0 {
        m &= m >> 1;
        n += 1;
    }
    n
}

/// The old kernels' panic text for a failed single map above 32 KiB.
pub fn panic_message(dir: DmaDirection) -> &'static str {
    match dir {
        DmaDirection::Bidirectional => "DMA: Random memory could be DMA accessed",
        DmaDirection::FromDevice => "DMA: Random memory could be DMA written",
        DmaDirection::ToDevice => "DMA: Random memory could be DMA read",
    }
}

#[cfg(test)]
mod tests;
