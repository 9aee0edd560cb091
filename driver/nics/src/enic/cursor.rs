//! The driver's own completion-queue cursor (the `to_clean` index and `last_color` of
//! Linux's `vnic_cq`), kept apart from the model's producer cursor so that a wrap or colour
//! bug on either side shows up in the differential tests instead of being shared.
//!
//! The adapter writes each completion with its current colour and flips that colour every
//! time its tail wraps. The driver remembers the colour of the previous lap
//! (`last_color`): an entry whose colour differs from it is new. The adapter starts with
//! colour 1 and the driver with `last_color` 0.

/// Consumer position in a colour-bit completion ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqCursor {
    to_clean: u32,
    entries: u32,
    last_color: bool,
}

/// A one-slot ring at slot 0 expecting colour 1: a placeholder, not a usable cursor for
/// a real ring (use [`CqCursor::new`]).
impl Default for CqCursor {
    fn default() -> Self {
        CqCursor { to_clean: 0, entries: 1, last_color: false }
    }
}

impl CqCursor {
    /// Slot 0 of a ring of `entries` (>= 1) completions, expecting colour 1 first (the
    /// adapter's reset `cq_tail_color`). `None` for an empty ring.
    pub const fn new(entries: u32) -> Option<CqCursor> {
        if entries == 0 { None } else { Some(CqCursor { to_clean: 0, entries, last_color: false }) }
    }

    /// The slot the next completion is read from.
    pub const fn index(self) -> u32 {
        self.to_clean
    }

    /// Is a completion carrying colour bit `color` (at [`CqCursor::index`]) new?
    pub const fn is_new(self, color: bool) -> bool {
        color != self.last_color
    }

    /// The colour a new completion at the cursor carries.
    pub const fn expected_color(self) -> bool {
        !self.last_color
    }

    /// Step past the completion just consumed; at the end of the ring go back to slot 0
    /// and remember that this lap's colour is now the old one.
    pub fn consume(&mut self) {
        if self.to_clean + 1 >= self.entries {
            self.to_clean = 0;
            self.last_color = !self.last_color;
        } else {
            self.to_clean += 1;
        }
    }
}

/// Index arithmetic on a ring of `n` entries (`n` is a multiple of 32 in 64..=4096, not
/// necessarily a power of two) without a division when the operands are already indices,
/// which is every time but for a hostile completion's index: `x % n` costs ~25 cycles, and
/// the datapath did it several times per frame.
pub mod ring {
    /// `x % n` (0 on an empty ring).
    #[inline(always)]
    pub fn wrap(x: u32, n: u32) -> u32 {
        if x < n { x } else { x.checked_rem(n).unwrap_or(0) }
    }

    /// `(i + k) % n`.
    #[inline(always)]
    pub fn add(i: u32, k: u32, n: u32) -> u32 {
        let s = wrap(i, n) + wrap(k, n);
        if s >= n { s - n } else { s }
    }

    /// Entries from `from` forward to `to`: `(to - from) mod n` of the reduced indices.
    #[inline(always)]
    pub fn dist(to: u32, from: u32, n: u32) -> u32 {
        let (t, f) = (wrap(to, n), wrap(from, n));
        if t >= f { t - f } else { t + n - f }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Equal to the division forms the driver used, over every index pair of a few ring
        /// sizes and for indices past the ring (hostile).
        #[test]
        fn ring_arithmetic_matches_the_division_forms() {
            for n in [64u32, 96, 2048, 4096] {
                for a in (0..n + 70).chain([u32::MAX - 3, u32::MAX]) {
                    for b in [0, 1, n / 2, n - 1] {
                        assert_eq!(wrap(a, n), a % n);
                        assert_eq!(add(b, a.min(n), n), (b + a.min(n)) % n, "{b} + {a} on {n}");
                        assert_eq!(dist(a, b, n), (a % n + n - b) % n, "{a} - {b} on {n}");
                    }
                }
            }
            assert_eq!((wrap(5, 0), add(1, 1, 0), dist(3, 1, 0)), (0, 0, 0));
        }
    }
}
