//! The nicqual device contract: everything a NIC driver needs to reach a PCI function,
//! and nothing about any particular NIC.
//!
//! Driver code talks to a PCI function only through [`backend::Backend`], a small interface
//! shaped like Linux VFIO: configuration space, BARs as 32-bit register I/O, DMA memory
//! mapped at IO virtual addresses with permissions, one eventfd notifier per MSI-X vector,
//! and reset. The implementations live in `nicqual-backends` (emulated device, qtest,
//! VFIO, hostile); the NIC drivers in `nicqual-nics` are generic over this trait
//! (`I82574<B: Backend>`), never `dyn`.
//!
//! Non-test code here may not unwrap, expect, index or panic: every value that can come
//! from a device goes through `get()`, checked arithmetic and typed errors (lints below).

#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod backend;
pub mod caps;
pub mod dma;
pub mod error;
pub mod eventfd;
pub mod health;
pub mod mmio;

pub use backend::{Backend, BackendInfo, BackendKind, DmaPerm};
pub use error::BackendError;
pub use health::{CheckReport, CheckResult};
