//! nicqual's field failures as runnable, seeded scenarios: the workload, the platform it
//! runs on and the verdict, with the human account written to a caller's writer. The
//! command line (`nicqual scenario`) only parses arguments and writes files.
//!
//! One module per scenario; each exports a [`Scenario`] and is listed in [`SCENARIOS`].

pub mod bnx2x_swiotlb_jumbo;
pub mod dom0_memory_squeeze;
pub mod enic_jumbo;
pub mod esxi_lost_vector;
pub mod netfront_resume;
pub mod story;
pub mod traffic;

use nicqual_report as rep;
use std::io::Write;

/// Default traffic seed.
pub const DEFAULT_SEED: u64 = 1;

/// A runnable scenario.
pub struct Scenario {
    pub name: &'static str,
    /// One line for `scenario list`.
    pub summary: &'static str,
    /// Run with `seed`, writing the human account to `out`; returns the run record.
    pub run: fn(seed: u64, out: &mut dyn Write) -> std::io::Result<rep::RunRecord>,
    /// Where this scenario's traffic travels. `None`: on a wire a capture could record.
    /// `Some(why)`: there is no Ethernet wire in its model (shared rings, MAC loopback,
    /// counted sizes), so `--pcap` cannot apply and is refused with this reason.
    pub no_wire: Option<&'static str>,
}

/// Every scenario, in `scenario list` order.
pub const SCENARIOS: &[&Scenario] = &[
    &netfront_resume::SCENARIO,
    &dom0_memory_squeeze::SCENARIO,
    &bnx2x_swiotlb_jumbo::SCENARIO,
    &enic_jumbo::SCENARIO,
    &esxi_lost_vector::SCENARIO,
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().copied().find(|s| s.name == name)
}
