//! Datasheet facts, declared once and shared by both sides of the PCI bus.
//!
//! The drivers (`driver/`: `nicqual-nics`, `nicqual-xen`) and the device models (`nicqual-model`) are written
//! independently; what they must agree on — register offsets, bit positions, descriptor
//! layouts, PCI capability layout — lives here and nowhere else. Names follow the
//! datasheets (and Linux/QEMU headers, which use the datasheet names).

#![recursion_limit = "512"]

pub mod bnx2x;
pub mod enic;
pub mod i82574;
pub mod i82574_desc;
pub mod igb;
pub mod pci;
pub mod regs;
pub mod xen_netif;
