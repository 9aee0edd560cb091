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
}
