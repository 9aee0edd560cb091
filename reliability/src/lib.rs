//! Reliability tooling for nicqual: the fuzz harnesses, the fault soak.
//!
//! Each harness is a plain function from bytes to `Result<(), Violation>`: the cargo-fuzz
//! targets in `fuzz/` call it and panic on a violation, and `tests/regressions.rs` replays
//! every file of `fuzz/regressions/<target>/` and `fuzz/corpus/<target>/` through the same
//! function under `cargo test`, so a finding stays fixed.

pub mod bnx2x_rings;
pub mod driver_hostile;
pub mod enic_rings;
pub mod model_i82574;
pub mod soak;
pub mod vfio_user_server;
pub mod xen_netback;

/// An invariant the harness checks was broken (a panic inside the code under test is a
/// violation too, reported by the fuzzer itself).
#[derive(Debug, thiserror::Error)]
#[error("invariant violated: {what}")]
pub struct Violation {
    pub what: String,
}

pub(crate) fn violation(what: impl Into<String>) -> Violation {
    Violation { what: what.into() }
}

/// Decode operations from the rest of the input until it runs out, an operation cannot be
/// decoded, or `max` are taken (the shape every op-list harness shares).
pub(crate) fn decode_ops<'a, T: arbitrary::Arbitrary<'a>>(u: &mut arbitrary::Unstructured<'a>, max: usize) -> Vec<T> {
    let mut ops = Vec::new();
    while ops.len() < max && !u.is_empty() {
        match T::arbitrary(u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}

pub type Harness = fn(&[u8]) -> Result<(), Violation>;

/// Harness names (= fuzz target names = corpus/regression directory names) and functions.
pub const HARNESSES: &[(&str, Harness)] = &[
    ("model_i82574", model_i82574::run),
    ("driver_hostile", driver_hostile::run),
    ("xen_netback", xen_netback::run),
    ("bnx2x_rings", bnx2x_rings::run),
    ("enic_rings", enic_rings::run),
    ("vfio_user_server", vfio_user_server::run),
];
