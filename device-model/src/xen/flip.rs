//! Classic netback's page-flipping receive path and the flipping netfront's refill, at
//! frame-count level: the mechanism behind `xen_net: Memory squeeze in netback driver.`
//!
//! Sources (facts carried over; the code here is nicqual's):
//!
//! * `drivers/xen/netback/netback.c` (linux-2.6-xen-sparse, Xen 3.0.x; the same block sits
//!   in linux-2.6.18-xen's `net_rx_action` behind `check_mfn`):
//!   - `alloc_mfn` / `check_mfn`: netback keeps a cache `mfn_list[MAX_MFN_ALLOC]` (64) of
//!     fresh machine frames; when it runs short it asks Xen for `MAX_MFN_ALLOC - alloc_index`
//!     frames with `XENMEM_increase_reservation`, which returns how many it could give
//!     (possibly fewer, possibly none);
//!   - `net_rx_action`: for each queued packet of a flipping receiver it needs one such frame
//!     (the packet's own page goes to the guest, the fresh frame takes its place in dom0).
//!     With none: `if (net_ratelimit()) WPRINTK("Memory squeeze in netback driver.\n");
//!     mod_timer(&net_timer, jiffies + HZ); skb_queue_head(&rx_queue, skb); break;` — the
//!     packet goes back to the head of the one queue all vifs share, and the tasklet stops;
//!   - `net_alarm` (the `net_timer` function) only reschedules the tasklet; so does
//!     `netif_be_start_xmit` for every packet it queues, which is why every new packet
//!     retries the allocation and why the line is rate-limited;
//!   - `netif_be_start_xmit` drops a packet when its vif has no receive request left that
//!     queued packets have not already claimed (`rx_req_cons_peek == req_prod`);
//!   - `common.h`: `WPRINTK(fmt, ...)` is `printk(KERN_WARNING "xen_net: " fmt, ...)`.
//! * `net/core/utils.c`: `net_ratelimit()` is `__printk_ratelimit(net_msg_cost = 5*HZ,
//!   net_msg_burst = 10)`; `kernel/printk.c` `__printk_ratelimit`: a token bucket that
//!   starts full (10 messages), refills one message per 5 s, and when it lets one through
//!   after refusing some prints `printk: N messages suppressed.` first (KERN_WARNING).
//! * `drivers/xen/netfront/netfront.c`:
//!   - `network_alloc_rx_buffers`: `batch_target = rx_target - outstanding`; buffers are
//!     posted only once the batch is at least `rx_target / 2`; the target doubles (up to
//!     `rx_max_target`) when fewer than `rx_target / 4` requests were left; a flipping
//!     front end gives every posted buffer's page back to Xen (`XENMEM_decrease_reservation`);
//!   - `netif_poll`: after a poll that left more than `3 * rx_target / 4` requests posted,
//!     the target drops by one (not below `rx_min_target`); defaults
//!     `RX_DFL_MIN_TARGET = 64`, `RX_MAX_TARGET = 256` (the ring size).
//!
//! So the frames netback flips into guests come from Xen's free heap, and they return to it
//! only as front ends post new buffers, in batches. Whatever else takes the heap's frames
//! (a guest the toolstack starts with memory it had dom0 balloon out) takes them from this
//! circulation.

use std::collections::VecDeque;

/// Frames netback caches (`MAX_MFN_ALLOC`).
pub const MAX_MFN_ALLOC: usize = 64;
/// Back-off after a squeeze: `mod_timer(&net_timer, jiffies + HZ)`, one second.
pub const SQUEEZE_BACKOFF_NS: u64 = 1_000_000_000;
/// The line, as `WPRINTK` prints it.
pub const SQUEEZE_LINE: &str = "xen_net: Memory squeeze in netback driver.";
/// Its printk level (`KERN_WARNING`).
pub const SQUEEZE_LEVEL: &str = "KERN_WARNING";
/// `net_msg_cost`: one message per 5 s (`5*HZ`).
pub const NET_MSG_COST_NS: u64 = 5_000_000_000;
/// `net_msg_burst`.
pub const NET_MSG_BURST: u64 = 10;
/// netfront's `RX_DFL_MIN_TARGET` and `RX_MAX_TARGET`.
pub const RX_DFL_MIN_TARGET: u32 = 64;
pub const RX_MAX_TARGET: u32 = 256;

/// Where netback's fresh frames come from: `XENMEM_increase_reservation` of up to `want`
/// order-0 frames for dom0, returning the frames Xen could give.
pub trait FrameHeap<F> {
    fn increase_reservation(&mut self, want: usize) -> Vec<F>;
}

/// netback's `mfn_list` / `alloc_index`.
#[derive(Debug, Clone)]
pub struct MfnCache<F> {
    frames: Vec<F>,
    /// `XENMEM_increase_reservation` calls and the frames they returned.
    pub refills: u64,
    pub refilled_frames: u64,
}

impl<F> Default for MfnCache<F> {
    fn default() -> Self {
        MfnCache { frames: Vec::new(), refills: 0, refilled_frames: 0 }
    }
}

impl<F> MfnCache<F> {
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// `check_mfn(nr)`: true when `nr` frames are cached, asking Xen for the rest of the
    /// cache first if not.
    pub fn check(&mut self, heap: &mut impl FrameHeap<F>, nr: usize) -> bool {
        if self.frames.len() >= nr {
            return true;
        }
        let got = heap.increase_reservation(MAX_MFN_ALLOC.saturating_sub(self.frames.len()));
        self.refills += 1;
        self.refilled_frames += got.len() as u64;
        self.frames.extend(got);
        self.frames.len() >= nr
    }

    /// `alloc_mfn()` after a successful check.
    pub fn take(&mut self) -> Option<F> {
        self.frames.pop()
    }

    /// Every cached frame (the back end going away gives them back).
    pub fn drain(&mut self) -> Vec<F> {
        std::mem::take(&mut self.frames)
    }
}

/// `net_ratelimit()`: `__printk_ratelimit(5*HZ, 10)` on virtual nanoseconds.
#[derive(Debug, Clone)]
pub struct NetRatelimit {
    toks: u64,
    last_ns: u64,
    missed: u64,
}

impl Default for NetRatelimit {
    fn default() -> Self {
        NetRatelimit { toks: NET_MSG_BURST * NET_MSG_COST_NS, last_ns: 0, missed: 0 }
    }
}

impl NetRatelimit {
    /// `Some(suppressed)` when a message may be printed now (after a `printk: N messages
    /// suppressed.` line if `suppressed > 0`); `None` when it is suppressed.
    pub fn allow(&mut self, now_ns: u64) -> Option<u64> {
        self.toks = self.toks.saturating_add(now_ns.saturating_sub(self.last_ns));
        self.last_ns = now_ns;
        self.toks = self.toks.min(NET_MSG_BURST * NET_MSG_COST_NS);
        if self.toks >= NET_MSG_COST_NS {
            self.toks -= NET_MSG_COST_NS;
            Some(std::mem::take(&mut self.missed))
        } else {
            self.missed += 1;
            None
        }
    }
}

/// One dom0 kernel line with the virtual time it was printed at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KernelLine {
    pub at_ns: u64,
    pub level: &'static str,
    pub text: String,
}

/// Lines kept per log (later ones are counted).
pub const LOG_CAP: usize = 4096;

/// A squeeze as it happened: the failed allocation, the rate limit, the timer.
#[derive(Debug, Clone, Default)]
pub struct SqueezeState {
    pub ratelimit: NetRatelimit,
    /// `net_timer`'s expiry when pending.
    pub timer_ns: Option<u64>,
    /// Allocations that failed (each a squeeze, printed or not).
    pub squeezes: u64,
    pub log: Vec<KernelLine>,
    pub log_total: u64,
}

impl SqueezeState {
    fn say(&mut self, at_ns: u64, text: String) {
        self.log_total += 1;
        if self.log.len() < LOG_CAP {
            self.log.push(KernelLine { at_ns, level: SQUEEZE_LEVEL, text });
        }
    }

    /// The allocation just failed at `now_ns`: print (rate-limited) and arm the timer.
    pub fn squeeze(&mut self, now_ns: u64) {
        self.squeezes += 1;
        if let Some(lost) = self.ratelimit.allow(now_ns) {
            if lost > 0 {
                self.say(now_ns, format!("printk: {lost} messages suppressed."));
            }
            self.say(now_ns, SQUEEZE_LINE.to_string());
        }
        self.timer_ns = Some(now_ns.saturating_add(SQUEEZE_BACKOFF_NS));
    }

    pub fn timer_pending(&self, now_ns: u64) -> bool {
        self.timer_ns.is_some_and(|t| t > now_ns)
    }

    /// The timer fires if due; true when it did (`net_alarm` schedules the tasklet).
    pub fn fire_timer(&mut self, now_ns: u64) -> bool {
        match self.timer_ns {
            Some(t) if t <= now_ns => {
                self.timer_ns = None;
                true
            }
            _ => false,
        }
    }

    /// Just the squeeze lines.
    pub fn squeeze_lines(&self) -> impl Iterator<Item = &KernelLine> {
        self.log.iter().filter(|l| l.text == SQUEEZE_LINE)
    }
}

/// A front end's receive side as netback and Xen see it (`netfront.c`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlipFront {
    /// `request-rx-copy=1`: buffers stay the guest's, netback copies into them.
    pub copy: bool,
    pub rx_target: u32,
    /// Requests posted and not yet answered.
    pub outstanding: u32,
    /// Buffers allocated and waiting to be posted (`rx_batch`).
    pub batch: u32,
    /// Pages given to Xen by posting (flip only).
    pub pages_given: u64,
    pub received: u64,
}

impl FlipFront {
    pub fn new(copy: bool) -> Self {
        FlipFront { copy, rx_target: RX_DFL_MIN_TARGET, outstanding: 0, batch: 0, pages_given: 0, received: 0 }
    }

    /// `network_alloc_rx_buffers`; returns the pages given to Xen's heap.
    pub fn alloc_rx_buffers(&mut self) -> u32 {
        let batch_target = self.rx_target.saturating_sub(self.outstanding);
        self.batch = self.batch.max(batch_target);
        if self.batch < self.rx_target / 2 {
            return 0;
        }
        if self.outstanding < self.rx_target / 4 {
            self.rx_target = (self.rx_target * 2).min(RX_MAX_TARGET);
        }
        let posted = std::mem::take(&mut self.batch).min(RX_MAX_TARGET - self.outstanding.min(RX_MAX_TARGET));
        self.outstanding += posted;
        if self.copy {
            0
        } else {
            self.pages_given += u64::from(posted);
            posted
        }
    }

    /// `netif_poll` after `n` responses; returns the pages its refill gave to Xen's heap.
    pub fn poll(&mut self, n: u32) -> u32 {
        self.outstanding = self.outstanding.saturating_sub(n);
        self.received += u64::from(n);
        if self.outstanding > 3 * self.rx_target / 4 {
            self.rx_target = (self.rx_target - 1).max(RX_DFL_MIN_TARGET);
        }
        self.alloc_rx_buffers()
    }
}

/// Per-vif counters of the back end.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VifRxStats {
    pub queued: u64,
    pub delivered: u64,
    /// Dropped in `netif_be_start_xmit`: no unclaimed receive request.
    pub dropped_no_request: u64,
    pub connected_ns: u64,
    pub last_delivery_ns: Option<u64>,
    /// Longest time between connecting or a delivery and the next delivery.
    pub longest_gap_ns: u64,
}

impl VifRxStats {
    /// Longest time without a delivery up to `now_ns` (counting the one still running).
    pub fn longest_outage_ns(&self, now_ns: u64) -> u64 {
        let open = now_ns.saturating_sub(self.last_delivery_ns.unwrap_or(self.connected_ns));
        self.longest_gap_ns.max(open)
    }
}

/// Where the flips' frames come from and go: Xen's heap as dom0 and the guests use it.
pub trait FlipMemory: FrameHeap<()> {
    /// dom0 transferred one frame to a guest (the packet's page).
    fn transfer_to_guest(&mut self);
    /// A guest gave `pages` to Xen (`XENMEM_decrease_reservation`).
    fn guest_gave(&mut self, pages: u64);
}

/// Classic netback's receive side for several vifs: one queue for all, one frame cache,
/// one timer (`net_rx_action`, `netif_be_start_xmit`, `net_alarm`).
#[derive(Debug, Clone, Default)]
pub struct ClassicRx {
    queue: VecDeque<usize>,
    /// Requests claimed by queued packets, per vif (`rx_req_cons_peek - req_cons`).
    claimed: Vec<u32>,
    pub fronts: Vec<FlipFront>,
    pub stats: Vec<VifRxStats>,
    pub cache: MfnCache<()>,
    pub squeeze: SqueezeState,
    /// Times `net_rx_action` ran.
    pub runs: u64,
}

impl ClassicRx {
    pub fn new() -> Self {
        Self::default()
    }

    /// A guest's front end connected and posted its first buffers.
    pub fn connect(&mut self, mem: &mut impl FlipMemory, copy: bool, now_ns: u64) -> usize {
        let mut f = FlipFront::new(copy);
        let given = f.alloc_rx_buffers();
        mem.guest_gave(u64::from(given));
        self.fronts.push(f);
        self.claimed.push(0);
        self.stats.push(VifRxStats { connected_ns: now_ns, ..VifRxStats::default() });
        self.fronts.len() - 1
    }

    pub fn vifs(&self) -> usize {
        self.fronts.len()
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// `netif_be_start_xmit`: a packet for vif `v`. Queued (and the tasklet run) or
    /// dropped; returns whether it was queued.
    pub fn start_xmit(&mut self, mem: &mut impl FlipMemory, v: usize, now_ns: u64) -> bool {
        let (Some(f), Some(c), Some(s)) = (self.fronts.get(v), self.claimed.get_mut(v), self.stats.get_mut(v)) else {
            return false;
        };
        if *c >= f.outstanding {
            s.dropped_no_request += 1;
            return false;
        }
        *c += 1;
        s.queued += 1;
        self.queue.push_back(v);
        self.rx_action(mem, now_ns);
        true
    }

    /// `net_timer` at `now_ns`: if due, `net_alarm` schedules the tasklet.
    pub fn timer(&mut self, mem: &mut impl FlipMemory, now_ns: u64) {
        if self.squeeze.fire_timer(now_ns) {
            self.rx_action(mem, now_ns);
        }
    }

    /// `net_rx_action`: deliver from the head of the queue until it is empty or a flip
    /// finds no frame; then the front ends poll their responses and refill.
    pub fn rx_action(&mut self, mem: &mut impl FlipMemory, now_ns: u64) {
        self.runs += 1;
        let mut answered = vec![0u32; self.fronts.len()];
        while let Some(&v) = self.queue.front() {
            let copy = self.fronts.get(v).is_none_or(|f| f.copy);
            if !copy {
                if !self.cache.check(mem, 1) {
                    self.squeeze.squeeze(now_ns);
                    break;
                }
                self.cache.take();
                mem.transfer_to_guest();
            }
            self.queue.pop_front();
            if let Some(c) = self.claimed.get_mut(v) {
                *c = c.saturating_sub(1);
            }
            if let Some(a) = answered.get_mut(v) {
                *a += 1;
            }
            if let Some(s) = self.stats.get_mut(v) {
                s.delivered += 1;
                let gap = now_ns.saturating_sub(s.last_delivery_ns.unwrap_or(s.connected_ns));
                s.longest_gap_ns = s.longest_gap_ns.max(gap);
                s.last_delivery_ns = Some(now_ns);
            }
        }
        for (f, n) in self.fronts.iter_mut().zip(answered) {
            if n > 0 {
                let given = f.poll(n);
                mem.guest_gave(u64::from(given));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heap of `free` frames.
    #[derive(Debug, Default)]
    struct Heap {
        free: u64,
        to_guests: u64,
    }

    impl FrameHeap<()> for Heap {
        fn increase_reservation(&mut self, want: usize) -> Vec<()> {
            let n = (want as u64).min(self.free);
            self.free -= n;
            vec![(); n as usize]
        }
    }

    impl FlipMemory for Heap {
        fn transfer_to_guest(&mut self) {
            self.to_guests += 1;
        }
        fn guest_gave(&mut self, pages: u64) {
            self.free += pages;
        }
    }

    #[test]
    fn the_cache_asks_for_what_it_lacks_and_takes_what_xen_has() {
        let mut heap = Heap { free: 10, ..Heap::default() };
        let mut c = MfnCache::default();
        assert!(c.check(&mut heap, 1));
        assert_eq!((c.len(), heap.free, c.refills), (10, 0, 1));
        assert!(c.check(&mut heap, 1), "cached frames need no hypercall");
        assert_eq!(c.refills, 1);
        for _ in 0..10 {
            c.take();
        }
        assert!(!c.check(&mut heap, 1));
        heap.free = 100;
        assert!(c.check(&mut heap, 1));
        assert_eq!((c.len(), heap.free), (MAX_MFN_ALLOC, 100 - MAX_MFN_ALLOC as u64));
    }

    #[test]
    fn net_ratelimit_lets_ten_through_then_one_per_five_seconds_and_counts_the_rest() {
        let mut r = NetRatelimit::default();
        let now = 1_000;
        for _ in 0..10 {
            assert_eq!(r.allow(now), Some(0));
        }
        assert_eq!(r.allow(now), None);
        assert_eq!(r.allow(now + NET_MSG_COST_NS - 1), None);
        assert_eq!(r.allow(now + NET_MSG_COST_NS), Some(2));
        assert_eq!(r.allow(now + NET_MSG_COST_NS), None);
    }

    #[test]
    fn netfront_posts_in_half_target_batches_and_gives_the_pages_only_when_flipping() {
        let mut f = FlipFront::new(false);
        // First fill: 64 posted with none outstanding (< 64/4), so the target doubles.
        assert_eq!(f.alloc_rx_buffers(), 64);
        assert_eq!((f.rx_target, f.outstanding), (128, 64));
        assert_eq!(f.poll(1), 65);
        assert_eq!(f.outstanding, 128);
        // A poll that leaves more than 3/4 of the target posted lowers it by one; 10 missing
        // is not worth a batch (< 127/2).
        assert_eq!(f.poll(10), 0);
        assert_eq!((f.rx_target, f.outstanding, f.batch), (127, 118, 9));
        assert_eq!(f.poll(60), 69);
        assert_eq!((f.outstanding, f.pages_given), (127, 64 + 65 + 69));
        // Down to 27 (< 127/4) when the refill runs: the target doubles for the next one.
        assert_eq!(f.poll(100), 100);
        assert_eq!((f.rx_target, f.outstanding), (254, 127));
        let mut c = FlipFront::new(true);
        assert_eq!(c.alloc_rx_buffers(), 0);
        assert_eq!((c.outstanding, c.pages_given), (64, 0));
    }

    #[test]
    fn an_empty_heap_squeezes_exactly_at_the_failed_allocation_and_the_timer_recovers() {
        let mut heap = Heap::default();
        let mut rx = ClassicRx::new();
        let v = rx.connect(&mut heap, false, 0);
        assert_eq!(heap.free, 64);
        // Something takes the heap (a guest being built).
        heap.free = 0;
        // No frame: the first packet squeezes at once, at its own time, and stays queued.
        assert!(rx.start_xmit(&mut heap, v, 7_000));
        assert_eq!(rx.squeeze.squeezes, 1);
        assert_eq!(rx.squeeze.log, vec![KernelLine { at_ns: 7_000, level: "KERN_WARNING", text: SQUEEZE_LINE.into() }]);
        assert_eq!(rx.squeeze.timer_ns, Some(7_000 + SQUEEZE_BACKOFF_NS));
        assert_eq!((rx.queued(), rx.stats[v].delivered), (1, 0));
        // The timer fires a second later, finds nothing, and re-arms.
        rx.timer(&mut heap, 7_000 + SQUEEZE_BACKOFF_NS);
        assert_eq!(rx.squeeze.squeezes, 2);
        assert_eq!(rx.squeeze.timer_ns, Some(7_000 + 2 * SQUEEZE_BACKOFF_NS));
        // Not due yet: nothing runs.
        let runs = rx.runs;
        rx.timer(&mut heap, 7_000 + 2 * SQUEEZE_BACKOFF_NS - 1);
        assert_eq!(rx.runs, runs);
        // Memory comes back; the next expiry delivers without any new packet.
        heap.free = 5;
        rx.timer(&mut heap, 7_000 + 2 * SQUEEZE_BACKOFF_NS);
        assert_eq!((rx.queued(), rx.stats[v].delivered, rx.squeeze.squeezes), (0, 1, 2));
        assert_eq!(rx.stats[v].last_delivery_ns, Some(7_000 + 2 * SQUEEZE_BACKOFF_NS));
        assert_eq!(rx.stats[v].longest_outage_ns(7_000 + 2 * SQUEEZE_BACKOFF_NS), 7_000 + 2 * SQUEEZE_BACKOFF_NS);
        assert_eq!((rx.cache.len(), heap.to_guests), (4, 1));
        assert_eq!(rx.squeeze.timer_ns, None);
    }

    #[test]
    fn a_squeeze_blocks_every_vif_behind_it_even_a_copying_one() {
        let mut heap = Heap::default();
        let mut rx = ClassicRx::new();
        let flip = rx.connect(&mut heap, false, 0);
        let copy = rx.connect(&mut heap, true, 0);
        heap.free = 0;
        rx.start_xmit(&mut heap, flip, 1);
        rx.start_xmit(&mut heap, copy, 2);
        assert_eq!((rx.stats[copy].delivered, rx.queued(), rx.squeeze.squeezes), (0, 2, 2));
        // Each new packet retried the allocation; the log has both (burst of 10).
        assert_eq!(rx.squeeze.squeeze_lines().map(|l| l.at_ns).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn start_xmit_drops_when_every_posted_request_is_claimed() {
        let mut heap = Heap::default();
        let mut rx = ClassicRx::new();
        let v = rx.connect(&mut heap, false, 0);
        heap.free = 0;
        for t in 0..64 {
            assert!(rx.start_xmit(&mut heap, v, t));
        }
        assert!(!rx.start_xmit(&mut heap, v, 64));
        assert_eq!(rx.stats[v].dropped_no_request, 1);
    }
}
