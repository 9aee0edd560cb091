//! The implementations of the backend contract ([`nicqual_pci::Backend`]):
//!
//! * [`emulated::EmulatedBackend`] — an in-process device model (feature `emulated`);
//! * [`qtest::QtestBackend`] — QEMU's own device (or `nicqual serve-qtest`) over QEMU's
//!   qtest socket (feature `qtest`);
//! * [`vfio::VfioBackend`] — a real function through Linux VFIO (`/dev/vfio`);
//! * [`hostile::HostileBackend`] — a device whose every read and DMA write-back a script
//!   decides (feature `hostile`; tests and fuzzing);
//! * [`xen::GuestPort`] — the emulated Xen guest platform netfront runs on (`emulated`).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

#[cfg(feature = "emulated")]
pub mod emulated;
#[cfg(any(test, feature = "hostile"))]
pub mod hostile;
#[cfg(feature = "qtest")]
pub mod qtest;
pub mod vfio;
#[cfg(feature = "emulated")]
pub mod xen;

pub(crate) use nicqual_pci::{backend, dma, error, eventfd, mmio};
