//! dom0's receive buffers for its vifs (the back end's copy path): one ring of posted
//! page-sized buffers per vif, each buffer a dom0 page. A packet for a vif consumes a
//! buffer and the ring is refilled at once; the page itself is freed later, when the
//! batched copy into the guests has run ([`RxPoolConfig::free_batch`] packets at a time).
//! So a refill competes with every other ring (and the balloon) for the pages a batch
//! frees, and refill is greedy: a short ring takes all it can up to its depth.
//!
//! Two sizing policies:
//!
//! * [`Sizing::Boot`] — the field's: each ring's depth is fixed when the driver loads,
//!   from dom0's memory at boot (`boot pages / 64` shared by [`RxPoolConfig::max_vifs`],
//!   at most the ring size), and a ring is refilled only when one of its buffers completes.
//!   An allocation failure leaves the ring short; a ring that runs empty gets no more
//!   completions and so is never refilled: the guest behind it is unreachable until the
//!   driver is reloaded.
//! * [`Sizing::Adaptive`] — nicqual's: the depth is recomputed from the memory available
//!   now whenever it changes (`(held + free - balloon debt) / 2`, split over the vifs, at
//!   least 1; evaluated when told the balloon target moved, and every
//!   [`RxPoolConfig::check_period_ns`]), surplus buffers are released at once, and a
//!   failed refill arms a retry timer
//!   with exponential back-off ([`RxPoolConfig::backoff_min_ns`] doubling up to
//!   [`RxPoolConfig::backoff_max_ns`]), so no ring stays empty for ever.
//!
//! Ring indices are the shared ring mechanism ([`FrontRing`]); the memory is reached
//! only through [`PageSource`].

use crate::ring::FrontRing;
use nicqual_hw::xen_netif as nif;

/// A page allocator as the back end sees dom0's (atomic, order 0).
pub trait PageSource {
    /// Allocate one page; `Err` carries the reason as the allocator reports it.
    fn alloc_page(&mut self, now_ns: u64) -> Result<(), String>;
    /// Free one page the driver held.
    fn free_page(&mut self);
    /// Free pages less what the system wants back (a balloon behind its target); negative
    /// when it wants back more than is free.
    fn headroom(&self) -> i64;
    /// dom0's memory when it booted, pages.
    fn boot_pages(&self) -> u64;
}

/// How ring depth is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sizing {
    Boot,
    Adaptive,
}

impl Sizing {
    pub fn as_str(self) -> &'static str {
        match self {
            Sizing::Boot => "boot",
            Sizing::Adaptive => "adaptive",
        }
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RxPoolConfig {
    pub sizing: Sizing,
    /// Deepest ring (the shared ring's size).
    pub max_depth: u32,
    /// Vifs the boot-time budget is shared by.
    pub max_vifs: u32,
    pub backoff_min_ns: u64,
    pub backoff_max_ns: u64,
    /// Pages of consumed buffers are freed this many at a time.
    pub free_batch: u32,
    /// Adaptive: how often free memory is looked at without a balloon event.
    pub check_period_ns: u64,
}

impl RxPoolConfig {
    pub fn new(sizing: Sizing) -> Self {
        RxPoolConfig {
            sizing,
            max_depth: nif::RX_RING_SIZE,
            max_vifs: 16,
            backoff_min_ns: 1_000_000,
            backoff_max_ns: 1_000_000_000,
            free_batch: 64,
            check_period_ns: 100_000_000,
        }
    }
}

/// Counters of one vif's ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct VifStats {
    pub delivered: u64,
    /// Packets that found the ring empty.
    pub dropped_no_buffer: u64,
    pub alloc_failures: u64,
    /// Refills run by the retry timer.
    pub retries: u64,
    /// Times the ring ran empty.
    pub empty_events: u64,
    /// Longest time the ring stayed empty (ns; an empty ring at the end counts to then).
    pub max_empty_ns: u64,
}

#[derive(Debug, Clone)]
struct VifRing {
    ring: FrontRing,
    req_prod_pvt: u32,
    rsp_cons: u32,
    depth: u32,
    retry_at: Option<u64>,
    backoff_ns: u64,
    empty_since: Option<u64>,
    stats: VifStats,
}

impl VifRing {
    fn posted(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }
}

/// Totals over all vifs, and what sizing decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    pub resizes: u64,
    /// Buffers given back because the depth went down.
    pub released: u64,
    pub alloc_failures: u64,
    pub retries: u64,
}

/// The back end's receive buffers of every vif.
#[derive(Debug, Clone)]
pub struct RxPools {
    cfg: RxPoolConfig,
    ring: FrontRing,
    vifs: Vec<VifRing>,
    depth: u32,
    /// Pages the last sizing was based on.
    basis: i64,
    /// Consumed buffers whose pages are not freed yet.
    pending_free: u32,
    next_check_ns: u64,
    log: Vec<(u64, String)>,
    pub stats: PoolStats,
}

const LOG_CAP: usize = 512;

/// The ring arithmetic of a 256-entry ring.
// Evaluated at compile time: a non-power-of-two size fails the build, never a run.
#[allow(clippy::panic)]
const RING: FrontRing = match FrontRing::new(nif::RX_RING_SIZE) {
    Some(r) => r,
    None => panic!("RX_RING_SIZE is not a power of two"),
};

impl RxPools {
    /// Load the driver on dom0 with `boot_pages` of memory.
    pub fn new(cfg: RxPoolConfig, boot_pages: u64) -> Self {
        let max_depth = cfg.max_depth.clamp(1, RING.size());
        let cfg = RxPoolConfig { max_depth, max_vifs: cfg.max_vifs.max(1), ..cfg };
        let boot = boot_pages / 64 / u64::from(cfg.max_vifs);
        RxPools {
            cfg,
            ring: RING,
            vifs: Vec::new(),
            depth: boot.clamp(1, u64::from(max_depth)) as u32,
            basis: i64::try_from(boot_pages).unwrap_or(i64::MAX),
            pending_free: 0,
            next_check_ns: 0,
            log: Vec::new(),
            stats: PoolStats::default(),
        }
    }

    pub fn config(&self) -> RxPoolConfig {
        self.cfg
    }

    /// Current target depth of every ring.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    pub fn vifs(&self) -> usize {
        self.vifs.len()
    }

    /// Buffers posted on vif `v`'s ring.
    pub fn posted(&self, v: usize) -> u32 {
        self.vifs.get(v).map_or(0, VifRing::posted)
    }

    /// Pages the pools hold.
    pub fn held(&self) -> u64 {
        self.vifs.iter().map(|r| u64::from(r.posted())).sum()
    }

    pub fn vif_stats(&self, v: usize) -> Option<VifStats> {
        self.vifs.get(v).map(|r| r.stats)
    }

    /// Rings with no buffer.
    pub fn empty_rings(&self) -> usize {
        self.vifs.iter().filter(|r| r.posted() == 0).count()
    }

    /// The driver's log lines with their times.
    pub fn log(&self) -> &[(u64, String)] {
        &self.log
    }

    fn say(&mut self, now_ns: u64, text: String) {
        if self.log.len() < LOG_CAP {
            self.log.push((now_ns, text));
        }
    }

    /// Longest empty stretch of vif `v` up to `now_ns`.
    pub fn max_empty_ns(&self, v: usize, now_ns: u64) -> u64 {
        self.vifs.get(v).map_or(0, |r| {
            let open = r.empty_since.map_or(0, |t| now_ns.saturating_sub(t));
            r.stats.max_empty_ns.max(open)
        })
    }

    /// A new vif connected: size (adaptive: re-share the memory) and fill its ring.
    pub fn add_vif(&mut self, mem: &mut impl PageSource, now_ns: u64) -> usize {
        let backoff_ns = self.cfg.backoff_min_ns;
        self.vifs.push(VifRing {
            ring: self.ring,
            req_prod_pvt: 0,
            rsp_cons: 0,
            depth: self.depth,
            retry_at: None,
            backoff_ns,
            empty_since: Some(now_ns),
            stats: VifStats::default(),
        });
        let v = self.vifs.len() - 1;
        if self.cfg.sizing == Sizing::Adaptive {
            self.resize(mem, now_ns, true);
        }
        self.refill(mem, v, now_ns);
        v
    }

    /// Adaptive: the depth the memory available now allows.
    fn adaptive_depth(&self, basis: i64) -> u32 {
        let n = i64::try_from(self.vifs.len().max(1)).unwrap_or(i64::MAX);
        let per = basis.max(0) / 2 / n;
        per.clamp(1, i64::from(self.cfg.max_depth)) as u32
    }

    fn basis(&self, mem: &impl PageSource) -> i64 {
        let ours = self.held() + u64::from(self.pending_free);
        i64::try_from(ours).unwrap_or(i64::MAX).saturating_add(mem.headroom())
    }

    /// Adaptive: recompute the depth from memory available now; give back surplus
    /// buffers. `force` re-shares even when memory did not change (a vif came or went).
    fn resize(&mut self, mem: &mut impl PageSource, now_ns: u64, force: bool) {
        let basis = self.basis(mem);
        // Hostile page sources report any headroom: compare without overflowing.
        let moved = basis.abs_diff(self.basis);
        if !force && moved <= (self.basis.unsigned_abs() / 16).max(16) {
            return;
        }
        let old = self.depth;
        let new = self.adaptive_depth(basis);
        self.basis = basis;
        if new == old {
            return;
        }
        self.depth = new;
        self.stats.resizes += 1;
        let mut released = 0u64;
        for r in &mut self.vifs {
            r.depth = new;
            while r.posted() > new {
                r.req_prod_pvt = r.req_prod_pvt.wrapping_sub(1);
                mem.free_page();
                released += 1;
            }
        }
        self.stats.released += released;
        let n = self.vifs.len();
        self.say(
            now_ns,
            format!(
                "nicqual-netback: {basis} pages for rx buffers: depth {old} -> {new} on {n} vifs, {released} buffers released"
            ),
        );
    }

    /// Post buffers on vif `v` up to its depth. Returns buffers posted.
    fn refill(&mut self, mem: &mut impl PageSource, v: usize, now_ns: u64) -> u32 {
        let (sizing, min, max) = (self.cfg.sizing, self.cfg.backoff_min_ns, self.cfg.backoff_max_ns);
        let Some(r) = self.vifs.get_mut(v) else { return 0 };
        let mut posted = 0;
        let mut failure = None;
        while r.posted() < r.depth && r.ring.free_requests(r.req_prod_pvt, r.rsp_cons).unwrap_or(0) > 0 {
            match mem.alloc_page(now_ns) {
                Ok(()) => {
                    r.req_prod_pvt = r.req_prod_pvt.wrapping_add(1);
                    posted += 1;
                }
                Err(why) => {
                    r.stats.alloc_failures += 1;
                    failure = Some(why);
                    break;
                }
            }
        }
        if posted > 0
            && let Some(since) = r.empty_since.take()
        {
            r.stats.max_empty_ns = r.stats.max_empty_ns.max(now_ns.saturating_sub(since));
        }
        let mut line = None;
        match failure {
            None => {
                r.retry_at = None;
                r.backoff_ns = min;
            }
            Some(why) => {
                self.stats.alloc_failures += 1;
                if sizing == Sizing::Adaptive && r.retry_at.is_none() {
                    // First failure of a streak: say so once, then retry with back-off.
                    line = Some(format!(
                        "nicqual-netback: vif{v}: rx refill failed ({why}); {}/{} posted, retrying from {} ms",
                        r.posted(),
                        r.depth,
                        r.backoff_ns / 1_000_000
                    ));
                }
                if sizing == Sizing::Adaptive {
                    r.retry_at = Some(now_ns.saturating_add(r.backoff_ns));
                    r.backoff_ns = r.backoff_ns.saturating_mul(2).min(max);
                }
            }
        }
        if r.posted() == 0 && r.empty_since.is_none() {
            r.empty_since = Some(now_ns);
            r.stats.empty_events += 1;
        }
        if let Some(l) = line {
            self.say(now_ns, l);
        }
        posted
    }

    /// A packet for vif `v`: consume a buffer, hand the page back once copied, refill.
    /// False when the ring had no buffer (the packet is dropped).
    pub fn receive(&mut self, mem: &mut impl PageSource, v: usize, now_ns: u64) -> bool {
        let Some(r) = self.vifs.get_mut(v) else { return false };
        if r.posted() == 0 {
            r.stats.dropped_no_buffer += 1;
            return false;
        }
        r.rsp_cons = r.rsp_cons.wrapping_add(1);
        r.stats.delivered += 1;
        if r.posted() == 0 && r.empty_since.is_none() {
            r.empty_since = Some(now_ns);
            r.stats.empty_events += 1;
        }
        // Completion-driven refill (both policies), before the page is freed.
        self.refill(mem, v, now_ns);
        self.pending_free += 1;
        if self.pending_free >= self.cfg.free_batch {
            self.flush(mem);
        }
        true
    }

    /// The batched copy ran: free the pages of every consumed buffer.
    pub fn flush(&mut self, mem: &mut impl PageSource) {
        for _ in 0..std::mem::take(&mut self.pending_free) {
            mem.free_page();
        }
    }

    /// Adaptive: the balloon target moved (a xenstore watch fired); re-size now.
    pub fn memory_changed(&mut self, mem: &mut impl PageSource, now_ns: u64) {
        if self.cfg.sizing == Sizing::Adaptive {
            self.resize(mem, now_ns, false);
        }
    }

    /// Timers: adaptive re-sizing when memory moved, and refill retries that are due.
    pub fn tick(&mut self, mem: &mut impl PageSource, now_ns: u64) {
        if self.cfg.sizing != Sizing::Adaptive {
            return;
        }
        if now_ns >= self.next_check_ns {
            self.next_check_ns = now_ns.saturating_add(self.cfg.check_period_ns);
            self.resize(mem, now_ns, false);
        }
        for v in 0..self.vifs.len() {
            let due = self.vifs.get(v).and_then(|r| r.retry_at).is_some_and(|t| t <= now_ns);
            if due {
                self.stats.retries += 1;
                if let Some(r) = self.vifs.get_mut(v) {
                    r.stats.retries += 1;
                }
                let was_empty = self.vifs.get(v).and_then(|r| r.empty_since);
                if self.refill(mem, v, now_ns) > 0
                    && let Some(since) = was_empty
                {
                    let ms = now_ns.saturating_sub(since) as f64 / 1e6;
                    self.say(now_ns, format!("nicqual-netback: vif{v}: rx ring refilled after {ms:.1} ms empty"));
                }
            }
        }
    }

    /// One line for the report.
    pub fn report_line(&self, now_ns: u64) -> String {
        let longest = (0..self.vifs.len()).map(|v| self.max_empty_ns(v, now_ns)).max().unwrap_or(0);
        format!(
            "rx pools ({} sizing): {} vifs at depth {} of {}, {} buffers held; {} allocation failures, {} timed retries, \
             {} resizes ({} buffers released); {} rings empty now, longest empty stretch {:.1} ms",
            self.cfg.sizing.as_str(),
            self.vifs.len(),
            self.depth,
            self.cfg.max_depth,
            self.held(),
            self.stats.alloc_failures,
            self.stats.retries,
            self.stats.resizes,
            self.stats.released,
            self.empty_rings(),
            longest as f64 / 1e6
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page source with `free` pages and an optional debt.
    struct Fake {
        free: u64,
        debt: u64,
        boot: u64,
        allocs: u64,
        fails: u64,
    }

    impl Fake {
        fn new(free: u64) -> Self {
            Fake { free, debt: 0, boot: 1 << 20, allocs: 0, fails: 0 }
        }
    }

    impl PageSource for Fake {
        fn alloc_page(&mut self, _now: u64) -> Result<(), String> {
            if self.free > self.debt {
                self.free -= 1;
                self.allocs += 1;
                Ok(())
            } else {
                self.fails += 1;
                Err("no page".into())
            }
        }
        fn free_page(&mut self) {
            self.free += 1;
        }
        fn headroom(&self) -> i64 {
            self.free as i64 - self.debt as i64
        }
        fn boot_pages(&self) -> u64 {
            self.boot
        }
    }

    fn cfg(sizing: Sizing) -> RxPoolConfig {
        RxPoolConfig { free_batch: 1, ..RxPoolConfig::new(sizing) }
    }

    #[test]
    fn boot_sizing_uses_boot_memory_and_an_empty_ring_never_refills() {
        let mut mem = Fake::new(300);
        let mut p = RxPools::new(cfg(Sizing::Boot), mem.boot_pages());
        assert_eq!(p.depth(), 256, "1 GiB of boot memory / 64 / 16 vifs is more than a ring");
        p.add_vif(&mut mem, 0);
        assert_eq!(p.posted(0), 256);
        // Memory is gone: each packet consumes a buffer, refill fails before the page is freed,
        // and the freed page is taken elsewhere.
        mem.free = 0;
        for t in 0..256 {
            assert!(p.receive(&mut mem, 0, t));
            mem.free = 0;
        }
        assert_eq!(p.posted(0), 0);
        // Memory comes back, but nothing refills the empty ring: no completions, no timer.
        mem.free = 10_000;
        for t in 300..2_000u64 {
            p.tick(&mut mem, t * 1_000_000);
            assert!(!p.receive(&mut mem, 0, t * 1_000_000));
        }
        assert_eq!(p.posted(0), 0);
        assert_eq!(p.empty_rings(), 1);
        assert!(p.vif_stats(0).unwrap().dropped_no_buffer > 1000);
    }

    #[test]
    fn adaptive_retries_with_backoff_and_refills_an_empty_ring_without_completions() {
        let mut mem = Fake::new(40);
        let mut p = RxPools::new(cfg(Sizing::Adaptive), mem.boot_pages());
        p.add_vif(&mut mem, 0);
        assert_eq!(p.depth(), 20, "half of the 40 pages available");
        mem.free = 0;
        for t in 0..20 {
            p.receive(&mut mem, 0, t);
            mem.free = 0;
        }
        assert_eq!(p.posted(0), 0);
        // Timer retries back off: 1, 2, 4, ... ms, capped at 1 s.
        let mut now = 20;
        let mut retries_before = 0;
        for _ in 0..4_000 {
            now += 1_000_000;
            p.tick(&mut mem, now);
            mem.free = 0;
        }
        let s = p.vif_stats(0).unwrap();
        assert!(s.retries > retries_before && s.retries < 20, "{} retries in 4 s with back-off", s.retries);
        retries_before = s.retries;
        // Memory returns: the next retry refills the ring with no packet arriving.
        mem.free = 1_000;
        for _ in 0..1_100 {
            now += 1_000_000;
            p.tick(&mut mem, now);
        }
        assert!(p.posted(0) > 0);
        assert!(p.vif_stats(0).unwrap().retries > retries_before);
        assert!(p.log().iter().any(|l| l.1.contains("rx ring refilled after")));
        assert_eq!(p.empty_rings(), 0);
    }

    #[test]
    fn adaptive_depth_follows_memory_and_releases_surplus() {
        let mut mem = Fake::new(10_000);
        let mut p = RxPools::new(cfg(Sizing::Adaptive), mem.boot_pages());
        for _ in 0..4 {
            p.add_vif(&mut mem, 0);
        }
        assert_eq!(p.depth(), 256);
        assert_eq!(p.held(), 1024);
        // The balloon wants back all but 200 pages of what the pools hold and what is free.
        mem.debt = mem.free + 1024 - 200;
        p.memory_changed(&mut mem, 1);
        assert_eq!(p.depth(), 25, "200 / 2 / 4");
        assert_eq!(p.held(), 100);
        assert_eq!(p.stats.released, 924);
    }

    #[test]
    fn hostile_page_sources_and_indices_never_panic() {
        for (free, debt, boot) in [(0, 0, 0), (0, u64::MAX / 2, u64::MAX), (u64::MAX / 2, 0, 1), (5, 5, 64 * 16)] {
            for sizing in [Sizing::Boot, Sizing::Adaptive] {
                let mut mem = Fake { free, debt, boot, allocs: 0, fails: 0 };
                let mut p = RxPools::new(cfg(sizing), mem.boot_pages());
                assert!((1..=256).contains(&p.depth()));
                let v = p.add_vif(&mut mem, 0);
                assert!(p.posted(v) <= 256);
                assert!(!p.receive(&mut mem, 99, 1), "unknown vif");
                for t in 0..600 {
                    p.receive(&mut mem, v, t * 1_000_000);
                    p.tick(&mut mem, t * 1_000_000);
                }
                assert!(p.posted(v) <= 256);
                let _ = p.report_line(u64::MAX);
                assert_eq!(p.vif_stats(99), None);
                assert_eq!(p.max_empty_ns(99, 5), 0);
            }
        }
    }
}
