//! nicqual's NIC drivers, each generic over the backend contract ([`nicqual_pci::Backend`])
//! and each owning its ring arithmetic: [`i82574`] (Intel 82574L), [`enic`] (Cisco VIC),
//! [`bnx2x`] (Broadcom 57xxx).
//!
//! No driver here depends on the device models (`nicqual-model` is a dev-dependency only,
//! enforced by `reliability/tests/driver_lints.rs`): a wrap or colour bug on either side is
//! caught by tests that run one against the other.
//!
//! The driver never trusts the device: every register value is validated before use, and a
//! read of 0xffffffff confirmed by STATUS is [`error::DriverError::DeviceGone`]. Non-test
//! code may not unwrap, expect, index or panic (lints below).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod bnx2x;
pub mod enic;
pub mod error;
pub mod i82574;

pub use error::DriverError;
pub(crate) use nicqual_dma::{dmamap, mempool, swiotlb};
pub(crate) use nicqual_pci::{backend, dma, health};
