//! Vector liveness over many probes: how many software-raised causes a vector delivered,
//! the loss rate and its 95 % confidence interval.
//!
//! How many probes: a vector that loses a fraction `p` of its messages delivers all of `N`
//! independent probes with probability `(1 - p)^N`. For `p = 0.05` to be caught with 99 %
//! probability, `0.95^N <= 0.01`, so `N >= ln 0.01 / ln 0.95 = 89.8`, i.e. at least 90. The
//! driver's default is [`DEFAULT_PROBES`] = 150: `0.95^150 = 4.6e-4`, so over 100 seeded runs
//! of a 5 %-lossy vector about 0.05 are expected to pass (the acceptance asks for at most 1).
//! A healthy vector loses nothing, so any loss is a failure: no false alarm is possible on a
//! device that delivers every message within the bound.

use nicqual_hw::i82574::IvarEntry;

/// Probes per vector in the liveness check (see the module documentation for the arithmetic).
pub const DEFAULT_PROBES: u32 = 150;
/// Probes per quiet vector in one run of the pending-cause watchdog.
pub const DEFAULT_WATCHDOG_WINDOW: u32 = 32;

/// What a run of probes on one vector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    pub entry: IvarEntry,
    pub vector: u16,
    /// Causes raised by ICS.
    pub raised: u32,
    /// Of those, delivered on `vector` within the bound.
    pub delivered: u32,
    /// Largest and summed delivery latency of the delivered ones, ns.
    pub latency_max_ns: u64,
    pub latency_sum_ns: u64,
    /// Why the first lost probe was lost (no message, or a message on another vector).
    pub first_loss: Option<String>,
    /// Backend time of the first loss, ns.
    pub first_loss_ns: Option<u64>,
}

impl Liveness {
    pub(crate) fn new(entry: IvarEntry, vector: u16) -> Self {
        Liveness {
            entry,
            vector,
            raised: 0,
            delivered: 0,
            latency_max_ns: 0,
            latency_sum_ns: 0,
            first_loss: None,
            first_loss_ns: None,
        }
    }

    /// Probes that were not delivered.
    pub fn lost(&self) -> u32 {
        self.raised.saturating_sub(self.delivered)
    }

    /// Did every probe arrive?
    pub fn all_delivered(&self) -> bool {
        self.raised > 0 && self.lost() == 0
    }

    /// Measured loss rate (0 when nothing was raised).
    pub fn loss_rate(&self) -> f64 {
        if self.raised == 0 { 0.0 } else { f64::from(self.lost()) / f64::from(self.raised) }
    }

    /// 95 % confidence interval of the loss rate (Wilson score interval).
    pub fn loss_ci95(&self) -> (f64, f64) {
        wilson95(self.lost(), self.raised)
    }

    /// Mean latency of the delivered probes, ns.
    pub fn latency_mean_ns(&self) -> f64 {
        if self.delivered == 0 { 0.0 } else { self.latency_sum_ns as f64 / f64::from(self.delivered) }
    }

    /// "148/150 delivered, loss 1.3 % (95 % CI 0.4-4.7 %)".
    pub fn summary(&self) -> String {
        let (lo, hi) = self.loss_ci95();
        format!(
            "{}/{} delivered, loss {:.1} % (95 % CI {:.1}-{:.1} %)",
            self.delivered,
            self.raised,
            self.loss_rate() * 100.0,
            lo * 100.0,
            hi * 100.0
        )
    }
}

/// Wilson score interval at 95 % (z = 1.959964) for `k` events in `n` trials; (0, 1) for
/// `n = 0`. Wilson rather than the normal approximation: it stays inside [0, 1] and is not
/// zero-width at k = 0 (0/150 gives 0-2.5 %, the "rule of three" region).
pub fn wilson95(k: u32, n: u32) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let (k, n) = (f64::from(k.min(n)), f64::from(n));
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At k = 0 (k = n) the bound is exactly 0 (1); the subtraction leaves rounding dust.
    let lo = if k == 0.0 { 0.0 } else { (centre - half).max(0.0) };
    let hi = if k == n { 1.0 } else { (centre + half).min(1.0) };
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe, "Two-sided confidence intervals for the single proportion: comparison
        // of seven methods", Statistics in Medicine 17 (1998), Table II, method 3 (Wilson
        // score, no continuity correction), to the four places printed there.
        let close = |(lo, hi): (f64, f64), (a, b): (f64, f64)| (lo - a).abs() < 5e-5 && (hi - b).abs() < 5e-5;
        assert!(close(wilson95(81, 263), (0.2553, 0.3662)), "{:?}", wilson95(81, 263));
        assert!(close(wilson95(15, 148), (0.0624, 0.1605)), "{:?}", wilson95(15, 148));
        assert!(close(wilson95(0, 20), (0.0, 0.1611)), "{:?}", wilson95(0, 20));
        assert!(close(wilson95(1, 29), (0.0061, 0.1718)), "{:?}", wilson95(1, 29));
        assert_eq!(wilson95(3, 0), (0.0, 1.0));
    }

    #[test]
    fn default_probes_catch_five_percent_loss_with_margin() {
        // 0.95^N <= 0.01 needs N >= 90; the default keeps the expected misses over 100
        // seeded runs well under one.
        assert!(0.95f64.powi(89) > 0.01 && 0.95f64.powi(90) <= 0.01);
        assert!(100.0 * 0.95f64.powi(DEFAULT_PROBES as i32) < 0.1);
    }
}
