//! Virtual PCI devices for nicqual, and the platform they sit on.
//!
//! Everything here is deterministic: devices run synchronously inside register accesses,
//! time is a [`clock::VirtualClock`] the caller advances, and every fault comes from a
//! seeded [`faults::FaultPlan`]. Devices never touch driver memory directly: all DMA
//! (including MSI messages that do not hit the interrupt window) goes through the
//! [`iommu::Iommu`], which blocks and records anything the driver did not map.

pub mod bnx2x;
pub mod clock;
pub mod config;
pub mod enic;
pub mod faults;
pub mod i82574;
pub mod iommu;
pub mod msix;
pub mod net;
pub mod qtest_server;
pub mod responder;
pub mod ring;
pub mod touch;
pub mod vfio_user;
pub mod wire;
pub mod xen;

pub use faults::{Fault, FaultKind, FaultPlan, FaultTarget};
pub use iommu::{DmaDir, DmaFault, HostRegion, Iommu, Perm};

/// An MSI/MSI-X message that reached the platform's interrupt window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiMessage {
    pub address: u64,
    pub data: u32,
    /// Virtual time of delivery, ns.
    pub at_ns: u64,
}

/// What any register-level PCI device model offers the emulated backend. All accesses are
/// synchronous; the device does its work (ring processing, interrupt raising) inside them.
pub trait PciDevice {
    /// Read `size` (1, 2 or 4) bytes of configuration space at `offset`.
    fn config_read(&mut self, offset: u16, size: u8) -> u32;
    /// Write `size` (1, 2 or 4) bytes of configuration space at `offset`.
    fn config_write(&mut self, offset: u16, size: u8, value: u32);
    /// Size of BAR `bar`, if implemented.
    fn bar_len(&self, bar: u8) -> Option<u64>;
    /// 32-bit read at `offset` inside BAR `bar`.
    fn bar_read32(&mut self, bar: u8, offset: u64) -> u32;
    /// 32-bit write at `offset` inside BAR `bar`.
    fn bar_write32(&mut self, bar: u8, offset: u64, value: u32);
    /// Advance the virtual clock by `ns`, firing timers that fall due.
    fn advance(&mut self, ns: u64);
    /// Current virtual time, ns.
    fn now_ns(&self) -> u64;
    /// Virtual time of the earliest pending timer, if the device has one (what a qtest
    /// `clock_step` without an argument steps to).
    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }
    /// PCI-level reset (what VFIO_DEVICE_RESET does): device back to power-on state.
    fn function_reset(&mut self);
    /// Interrupt messages delivered since the last call.
    fn take_interrupts(&mut self) -> Vec<MsiMessage>;
    /// The IOMMU in front of this device: the backend maps and unmaps the driver's memory
    /// here. Handing out `&mut Iommu` is sound whatever the caller does with it, even
    /// moving it out with `std::mem::replace` and outliving the device and its backend:
    /// every window owns the [`HostRegion`] it maps, so the memory stays allocated for as
    /// long as any IOMMU can reach it.
    fn iommu(&mut self) -> &mut Iommu;
    /// DMA accesses the IOMMU has blocked so far.
    fn dma_faults_total(&self) -> u64;
    /// The register-touch log (accesses to registers the model does not implement), if
    /// this model keeps one. `None` means "not kept", never "empty".
    fn touch_log(&self) -> Option<&touch::TouchLog> {
        None
    }
    /// Level of the legacy INTx line (what a vfio-user server forwards in INTx mode);
    /// devices without INTx keep the default, low.
    fn intx_level(&self) -> bool {
        false
    }
}
