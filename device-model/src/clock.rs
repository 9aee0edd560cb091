//! The virtual clock. Time only moves when the caller advances it.

/// Nanoseconds of virtual time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VirtualClock {
    now_ns: u64,
}

impl VirtualClock {
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Move to `t` if it is later than now (time never goes back).
    pub fn advance_to(&mut self, t: u64) {
        if t > self.now_ns {
            self.now_ns = t;
        }
    }

    pub fn advance(&mut self, ns: u64) {
        self.now_ns = self.now_ns.saturating_add(ns);
    }

    /// The virtual time `ns` from now: what every timer of every model arms itself with.
    /// Saturates at the end of time (u64::MAX ns) instead of overflowing, so a client that
    /// steps the clock to the end (`clock_step 18446744073709551615`) and then arms a timer
    /// gets a timer that never fires, not a crash.
    pub fn after(&self, ns: u64) -> u64 {
        self.now_ns.saturating_add(ns)
    }
}

#[cfg(test)]
mod tests {
    use super::VirtualClock;

    #[test]
    fn time_saturates_at_the_end() {
        let mut c = VirtualClock::default();
        c.advance(u64::MAX - 5);
        assert_eq!(c.after(10), u64::MAX);
        c.advance(u64::MAX);
        assert_eq!((c.now_ns(), c.after(u64::MAX)), (u64::MAX, u64::MAX));
        c.advance_to(3);
        assert_eq!(c.now_ns(), u64::MAX, "time never goes back");
    }
}
