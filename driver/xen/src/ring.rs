//! The front end's own shared-ring index arithmetic (the request/response ring of
//! `xen/interface/io/ring.h`, as a front end uses it).
//!
//! Deliberately not shared with the back-end model in `nicqual-model`: each side keeps its
//! own arithmetic, and the differential tests run one against the other, so a wrap bug on
//! either side shows as a disagreement instead of being shared by producer, consumer and
//! test alike.
//!
//! Indices are free-running `u32` counters; a slot is the index modulo the ring size (a
//! power of two). Every distance is a wrapping subtraction of two counters, which is right
//! across the 2^32 wrap as long as the true distance is below 2^32.

/// A front end's view of one shared ring of `size` slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontRing {
    /// `size - 1`; `size` is a power of two.
    mask: u32,
}

impl FrontRing {
    /// A ring of `size` slots; `None` unless `size` is a non-zero power of two.
    pub const fn new(size: u32) -> Option<FrontRing> {
        if size != 0 && size & (size - 1) == 0 { Some(FrontRing { mask: size - 1 }) } else { None }
    }

    /// Slots in the ring.
    pub const fn size(self) -> u32 {
        self.mask + 1
    }

    /// Slot a free-running index lands in.
    pub const fn slot(self, idx: u32) -> u32 {
        idx & self.mask
    }

    /// Requests that may still be produced: ring size minus the requests whose responses
    /// have not been consumed. `None` when the counters claim more outstanding requests
    /// than the ring holds (a corrupt or hostile ring).
    pub const fn free_requests(self, req_prod_pvt: u32, rsp_cons: u32) -> Option<u32> {
        let outstanding = req_prod_pvt.wrapping_sub(rsp_cons);
        self.size().checked_sub(outstanding)
    }

    /// Responses waiting to be consumed, never more than one lap (a back end that moves
    /// `rsp_prod` arbitrarily cannot make the front end read a slot twice in one call).
    pub const fn unconsumed_responses(self, rsp_prod: u32, rsp_cons: u32) -> u32 {
        let waiting = rsp_prod.wrapping_sub(rsp_cons);
        if waiting > self.size() { self.size() } else { waiting }
    }

    /// After moving a producer from `old` to `new`, must the other side be notified? Yes
    /// when its event index lies in `(old, new]`, measured backwards from `new` so that the
    /// counters' wrap does not matter.
    pub const fn need_notify(old: u32, new: u32, event: u32) -> bool {
        let since_event = new.wrapping_sub(event);
        let pushed = new.wrapping_sub(old);
        since_event < pushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_slots() {
        assert!(FrontRing::new(0).is_none());
        assert!(FrontRing::new(6).is_none());
        let r = FrontRing::new(256).unwrap();
        assert_eq!((r.size(), r.slot(257), r.slot(u32::MAX)), (256, 1, 255));
    }

    #[test]
    fn counters_across_the_wrap() {
        let r = FrontRing::new(8).unwrap();
        assert_eq!(r.free_requests(3, u32::MAX - 2), Some(2));
        assert_eq!(r.free_requests(10, 1), None);
        assert_eq!(r.unconsumed_responses(2, u32::MAX), 3);
        assert_eq!(r.unconsumed_responses(100, 0), 8);
        assert!(FrontRing::need_notify(u32::MAX, 1, 0));
        assert!(!FrontRing::need_notify(1, 3, 5));
        assert!(FrontRing::need_notify(1, 3, 3));
        assert!(!FrontRing::need_notify(1, 3, 1));
    }
}
