//! Qualification checks, above the drivers: what `nicqual qualify` runs against a device.
//!
//! * [`wire_socket`] — `wire[socket]`: frames through QEMU's socket netdev (qtest only);
//! * [`deviations`] — QEMU e1000e's known deviations, as check options;
//! * [`record`], [`advice`] — check reports into run records, with what to do first;
//! * [`vfio_probe`] — the VFIO probe checks (IOMMU faults on unmapped IOVAs).

pub mod advice;
pub mod deviations;
pub mod record;
pub mod vfio_probe;
pub mod wire_socket;
