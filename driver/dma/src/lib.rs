//! The DMA platform a driver maps its buffers through: the DMA API ([`dmamap`]) with a
//! direct-IOVA or SWIOTLB ([`swiotlb`]) path, host and Xen memory ([`memory`]), the packet
//! buffer pool ([`mempool`]) and the exhaustion predictor ([`preflight`]). Nothing here
//! knows a particular NIC: drivers describe their mappings in [`preflight::MapClass`]es.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod dmamap;
pub mod memory;
pub mod mempool;
pub mod preflight;
pub mod swiotlb;

pub(crate) use nicqual_pci::{backend, dma, error, health};
