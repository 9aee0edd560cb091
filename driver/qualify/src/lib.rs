//! Qualification checks, above the drivers: what `nicqual qualify` runs against a device.
//!
//! * [`i82574`] — the 82574L suite: self-test, interrupt and datapath checks, run through
//!   the driver's detector, diagnostic and datapath API;
//! * [`bnx2x`] — the bnx2x suite: rings, TPA, jumbo, interrupts per vector, DMA balance;
//! * [`enic`] — the enic suite: resources, devcmd, rings, colour wrap, interrupts and
//!   credits, MSI-X table, jumbo matrix, hostile completions;
//! * [`wire_socket`] — `wire[socket]`: frames through QEMU's socket netdev (qtest only);
//! * [`deviations`] — QEMU e1000e's known deviations, as driver and suite options;
//! * [`record`], [`advice`] — check reports into run records, with what to do first;
//! * [`vfio_probe`] — the VFIO probe checks (IOMMU faults on unmapped IOVAs).

pub mod advice;
pub mod bnx2x;
pub mod deviations;
pub mod enic;
pub mod i82574;
pub mod record;
pub mod vfio_probe;
pub mod wire_socket;
