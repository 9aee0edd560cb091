//! nicqual's userspace NIC driver core.
//!
//! Driver code talks to a PCI function only through [`backend::Backend`], a small interface
//! shaped like Linux VFIO: configuration space, BARs as 32-bit register I/O, DMA memory
//! mapped at IO virtual addresses with permissions, one eventfd notifier per MSI-X vector,
//! and reset. The same driver code runs on every implementation:
//!
//! * [`emulated::EmulatedBackend`] — an in-process device model (feature `emulated`);
//! * [`qtest::QtestBackend`] — QEMU's own device (or any qtest server) over QEMU's qtest
//!   socket (feature `qtest`);
//! * [`vfio::VfioBackend`] — a real function through Linux VFIO (`/dev/vfio`).
//!
//! Hot paths are generic over the backend (`I82574<B: Backend>`), never `dyn`.
//!
//! The driver never trusts the device: every register value is validated before use, and a
//! read of 0xffffffff confirmed by STATUS is [`error::DriverError::DeviceGone`].
//!
//! Non-test driver code may not unwrap, expect, index or panic: every value that can come
//! from a device goes through `get()`, checked arithmetic and typed errors (lints below).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod backend;
pub mod bnx2x;
pub mod dma;
pub mod dmamap;
#[cfg(feature = "emulated")]
pub mod emulated;
#[cfg(feature = "emulated")]
pub mod enic;
pub mod error;
pub mod eventfd;
pub mod health;
#[cfg(any(test, feature = "hostile"))]
pub mod hostile;
pub mod i82574;
pub mod memory;
pub mod mempool;
pub mod mmio;
pub mod preflight;
#[cfg(feature = "qtest")]
pub mod qtest;
pub mod swiotlb;
pub mod vfio;
#[cfg(feature = "emulated")]
pub mod xen;

pub use backend::{Backend, BackendInfo, BackendKind, DmaPerm};
pub use error::{BackendError, DriverError};
pub use health::{CheckReport, CheckResult};
