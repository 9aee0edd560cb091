//! Memory of a Xen host at page-count level, for the memory-squeeze scenario: Xen's free
//! heap, dom0's reservation and what uses it, the balloon driver, and guests started by the
//! toolstack out of the heap.
//!
//! Rules (the model's; the scenario prints them):
//!
//! * dom0 boots with all host memory but Xen's own, or with `dom0_mem=` and the rest in
//!   Xen's heap. Its kernel keeps a fixed amount plus 1/64 of its boot memory (the
//!   `struct page` array and hash tables are sized for the boot memory and are not given
//!   back when dom0 shrinks) — [model rule].
//! * Starting a guest needs its pages in Xen's heap. The toolstack lowers dom0's balloon
//!   target by what is missing; the balloon driver gives free dom0 pages to Xen at once,
//!   and while it is still behind its target it takes every page dom0 frees before anyone
//!   else can allocate it ([model rule]: the balloon worker allocates with reclaim and
//!   retries; an atomic allocation cannot wait).
//! * A driver's atomic order-0 allocation succeeds only from a free page; otherwise it
//!   fails, and the first failure of each burst logs the 2.6.18-era kernel line
//!   `swapper: page allocation failure. order:0, mode:0x20` (mm/page_alloc.c; 0x20 is
//!   `GFP_ATOMIC`, `swapper` the task a softirq interrupted).
//! * Other dom0 work can take free pages for a while (a backup job, a tool) and give them
//!   back: [`XenMemory::hog`] / [`XenMemory::release_hog`].

use super::flip::{FlipMemory, FrameHeap};
use nicqual_hw::xen_netif::PAGE_SIZE;

/// Pages per MiB.
pub const PAGES_PER_MIB: u64 = (1 << 20) / PAGE_SIZE as u64;

/// The kernel's allocation-failure line (2.6.18 `__alloc_pages`, order 0, `GFP_ATOMIC`).
pub const ALLOC_FAILURE_LINE: &str = "swapper: page allocation failure. order:0, mode:0x20";

/// How a host is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemoryConfig {
    pub host_pages: u64,
    /// Memory Xen keeps for itself.
    pub xen_pages: u64,
    /// `dom0_mem=` on Xen's command line; `None` = dom0 starts with everything.
    pub dom0_mem_pages: Option<u64>,
    /// dom0 kernel and user space, independent of boot memory.
    pub dom0_fixed_pages: u64,
}

/// Why a page could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    #[error("no free page in dom0 (balloon {debt} pages behind target)")]
    NoFreePage { debt: u64 },
    #[error("guest of {need} pages does not fit: Xen's heap has {heap} free pages")]
    HeapTooSmall { need: u64, heap: u64 },
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemStats {
    pub allocs: u64,
    pub alloc_failures: u64,
    /// Pages the balloon gave to Xen.
    pub ballooned_out: u64,
    /// Of those, pages taken as a driver freed them.
    pub taken_on_free: u64,
    pub guests_started: u64,
    /// Frames dom0 got from Xen's heap by `XENMEM_increase_reservation` (netback's cache).
    pub frames_in: u64,
    /// Frames dom0 transferred to guests (flips).
    pub frames_flipped: u64,
    /// Pages guests gave back to Xen's heap (flipping front ends posting buffers).
    pub guest_pages_given: u64,
}

/// A host's memory: Xen's heap, dom0, guests.
#[derive(Debug, Clone)]
pub struct XenMemory {
    cfg: MemoryConfig,
    heap_free: u64,
    dom0_pages: u64,
    dom0_boot_pages: u64,
    kernel_pages: u64,
    /// Pages drivers hold (allocated through [`XenMemory::alloc_page`]).
    driver_pages: u64,
    /// Pages other dom0 work holds for now.
    hog_pages: u64,
    /// Pages the balloon still has to give back to reach its target.
    debt: u64,
    guests: Vec<u64>,
    failing: bool,
    log: Vec<(u64, String)>,
    log_total: u64,
    pub stats: MemStats,
}

const LOG_CAP: usize = 1024;

impl XenMemory {
    pub fn new(cfg: MemoryConfig) -> Self {
        let usable = cfg.host_pages.saturating_sub(cfg.xen_pages);
        let dom0 = cfg.dom0_mem_pages.map_or(usable, |m| m.min(usable));
        let kernel = (cfg.dom0_fixed_pages + dom0 / 64).min(dom0);
        XenMemory {
            cfg,
            heap_free: usable - dom0,
            dom0_pages: dom0,
            dom0_boot_pages: dom0,
            kernel_pages: kernel,
            driver_pages: 0,
            hog_pages: 0,
            debt: 0,
            guests: Vec::new(),
            failing: false,
            log: Vec::new(),
            log_total: 0,
            stats: MemStats::default(),
        }
    }

    pub fn config(&self) -> MemoryConfig {
        self.cfg
    }

    fn say(&mut self, now_ns: u64, text: String) {
        self.log_total += 1;
        if self.log.len() < LOG_CAP {
            self.log.push((now_ns, text));
        }
    }

    /// dom0's kernel log lines of the memory side, with their times.
    pub fn log(&self) -> &[(u64, String)] {
        &self.log
    }

    pub fn heap_free(&self) -> u64 {
        self.heap_free
    }

    pub fn dom0_pages(&self) -> u64 {
        self.dom0_pages
    }

    pub fn dom0_boot_pages(&self) -> u64 {
        self.dom0_boot_pages
    }

    pub fn kernel_pages(&self) -> u64 {
        self.kernel_pages
    }

    pub fn driver_pages(&self) -> u64 {
        self.driver_pages
    }

    /// Free dom0 pages.
    pub fn free_pages(&self) -> u64 {
        self.dom0_pages.saturating_sub(self.kernel_pages + self.driver_pages + self.hog_pages)
    }

    /// Pages the balloon still owes Xen.
    pub fn balloon_debt(&self) -> u64 {
        self.debt
    }

    /// What dom0 can hand out now without taking anything back: free pages less what the
    /// balloon is still waiting for (`MemAvailable` less the balloon's outstanding target).
    pub fn available_pages(&self) -> u64 {
        self.free_pages().saturating_sub(self.debt)
    }

    pub fn guests(&self) -> usize {
        self.guests.len()
    }

    fn pay_debt(&mut self) -> u64 {
        let n = self.debt.min(self.free_pages());
        self.debt -= n;
        self.dom0_pages -= n;
        self.heap_free += n;
        self.stats.ballooned_out += n;
        n
    }

    /// Lower (or raise) dom0's balloon target to `pages`. Free pages go to Xen at once;
    /// the rest is owed.
    pub fn set_dom0_target(&mut self, pages: u64) {
        if pages >= self.dom0_pages {
            self.debt = 0;
            let up = (pages - self.dom0_pages).min(self.heap_free);
            self.heap_free -= up;
            self.dom0_pages += up;
        } else {
            self.debt = self.dom0_pages - pages;
            self.pay_debt();
        }
    }

    /// dom0's balloon target (its reservation once the balloon has caught up).
    pub fn dom0_target(&self) -> u64 {
        self.dom0_pages - self.debt
    }

    /// The toolstack (`xm create`): if Xen's heap lacks `pages`, lower dom0's target by
    /// what is missing (once; the balloon then works towards it). Returns true once the
    /// guest is started.
    pub fn try_start_guest(&mut self, pages: u64, now_ns: u64) -> bool {
        if self.heap_free >= pages {
            self.heap_free -= pages;
            self.guests.push(pages);
            self.stats.guests_started += 1;
            self.say(now_ns, format!("xend: guest {} started ({} MiB)", self.guests.len(), pages / PAGES_PER_MIB));
            return true;
        }
        let missing = pages - self.heap_free;
        if self.debt < missing {
            let target = self.dom0_pages.saturating_sub(missing);
            self.set_dom0_target(target);
            if self.heap_free >= pages {
                return self.try_start_guest(pages, now_ns);
            }
        }
        false
    }

    /// A driver's atomic order-0 allocation.
    pub fn alloc_page(&mut self, now_ns: u64) -> Result<(), MemError> {
        if self.free_pages() > self.debt {
            self.driver_pages += 1;
            self.stats.allocs += 1;
            self.failing = false;
            Ok(())
        } else {
            self.stats.alloc_failures += 1;
            if !self.failing {
                self.failing = true;
                self.say(now_ns, ALLOC_FAILURE_LINE.to_string());
            }
            Err(MemError::NoFreePage { debt: self.debt })
        }
    }

    /// A driver frees a page. A balloon behind its target takes it.
    pub fn free_page(&mut self) {
        if self.driver_pages == 0 {
            return;
        }
        self.driver_pages -= 1;
        if self.debt > 0 {
            self.stats.taken_on_free += self.pay_debt();
        }
    }

    /// Other dom0 work takes up to `pages` free pages; returns how many it got.
    pub fn hog(&mut self, pages: u64) -> u64 {
        let n = pages.min(self.free_pages().saturating_sub(self.debt));
        self.hog_pages += n;
        n
    }

    /// That work ends and frees its pages (a balloon behind target takes them first).
    pub fn release_hog(&mut self) {
        self.hog_pages = 0;
        if self.debt > 0 {
            self.pay_debt();
        }
    }
}

/// dom0's frame cache (netback) fills from Xen's heap; a flip moves one of dom0's frames to
/// a guest; a flipping guest's posted buffers go back to the heap. Frames in the cache count
/// as a driver's pages (they are not free for dom0's allocator).
impl FrameHeap<()> for XenMemory {
    fn increase_reservation(&mut self, want: usize) -> Vec<()> {
        let n = (want as u64).min(self.heap_free);
        self.heap_free -= n;
        self.dom0_pages += n;
        self.driver_pages += n;
        self.stats.frames_in += n;
        vec![(); n as usize]
    }
}

impl FlipMemory for XenMemory {
    fn transfer_to_guest(&mut self) {
        if self.driver_pages > 0 && self.dom0_pages > 0 {
            self.driver_pages -= 1;
            self.dom0_pages -= 1;
            self.stats.frames_flipped += 1;
        }
    }

    fn guest_gave(&mut self, pages: u64) {
        self.heap_free = self.heap_free.saturating_add(pages);
        self.stats.guest_pages_given += pages;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dom0: Option<u64>) -> MemoryConfig {
        MemoryConfig { host_pages: 100_000, xen_pages: 1_000, dom0_mem_pages: dom0, dom0_fixed_pages: 10_000 }
    }

    #[test]
    fn dom0_mem_leaves_the_rest_in_the_heap_and_boot_memory_sizes_the_kernel() {
        let all = XenMemory::new(cfg(None));
        assert_eq!((all.dom0_pages(), all.heap_free()), (99_000, 0));
        assert_eq!(all.kernel_pages(), 10_000 + 99_000 / 64);
        let capped = XenMemory::new(cfg(Some(20_000)));
        assert_eq!((capped.dom0_pages(), capped.heap_free()), (20_000, 79_000));
        assert_eq!(capped.kernel_pages(), 10_000 + 20_000 / 64);
    }

    #[test]
    fn starting_a_guest_balloons_dom0_and_a_short_balloon_takes_freed_pages() {
        let mut m = XenMemory::new(cfg(None));
        let free0 = m.free_pages();
        assert!(m.try_start_guest(50_000, 0));
        assert_eq!(m.free_pages(), free0 - 50_000);
        // Drivers take all but 100 free pages.
        let held = m.free_pages() - 100;
        for _ in 0..held {
            m.alloc_page(0).unwrap();
        }
        // A guest that needs 300 more than dom0 has free: the balloon owes 200.
        assert!(!m.try_start_guest(400, 1));
        assert_eq!(m.balloon_debt(), 300);
        assert_eq!(m.alloc_page(2), Err(MemError::NoFreePage { debt: 300 }));
        assert_eq!(m.log().last().map(|l| l.1.as_str()), Some(ALLOC_FAILURE_LINE));
        for _ in 0..300 {
            m.free_page();
        }
        assert_eq!(m.balloon_debt(), 0);
        assert_eq!(m.stats.taken_on_free, 300);
        assert!(m.try_start_guest(400, 3));
        assert_eq!(m.guests(), 2);
    }

    #[test]
    fn a_hog_takes_only_what_is_free_and_gives_it_back() {
        let mut m = XenMemory::new(cfg(Some(20_000)));
        let free = m.free_pages();
        assert_eq!(m.hog(free + 5), free);
        assert!(m.alloc_page(0).is_err());
        m.release_hog();
        assert!(m.alloc_page(1).is_ok());
        assert_eq!(m.stats.alloc_failures, 1);
    }
}
