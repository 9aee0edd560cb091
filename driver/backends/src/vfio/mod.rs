//! Real hardware through Linux VFIO.
//!
//! * [`sysfs`]: what the kernel says about PCI functions and IOMMU groups, and binding a
//!   function to vfio-pci and back (roots configurable, so tests use a fake tree);
//! * [`sys`]: the VFIO ioctls over `vfio-bindings` structures and `libc::ioctl`;
//! * [`VfioBackend`]: the [`nicqual_pci::Backend`] implementation — container + group with the
//!   type1 IOMMU, BARs mmap'd (pread/pwrite where a region cannot be), DMA memory mapped
//!   at the driver's IOVAs, MSI-X as one eventfd per vector, reset;
//! * [`kmsg`]: IOMMU faults the kernel logs for the function, so a blocked DMA shows up in
//!   the run instead of as silent corruption.
//!
//! Why `vfio-bindings` + `libc` rather than `vfio-ioctls`: the latter is built around a
//! VMM's needs (KVM device fds, its own memory-region types, vmm-sys-util) and hides the
//! ioctl sequence this backend has to report on step by step; the ioctls used here are 14
//! fixed-layout calls, so thin wrappers that name each ioctl in their errors are less code
//! than adapting to it. The iommufd/cdev interface (Linux >= 6.6) is detected and reported
//! ([`sysfs::IommufdStatus`]); the container path is used because it works on every kernel
//! VFIO supports, including the Debian 6.1 kernel of the CI guest.

mod backend;
pub mod error;
pub mod kmsg;
pub mod sys;
pub mod sysfs;

pub use backend::{IOCTLS_USED, IommuType, VfioBackend, VfioSetup, parse_iommu_info};
pub use error::{Blocker, Refusal, Rollback, VfioError};
pub use sysfs::{BindState, Bound, Host, PciAddr, PciFunction, Viability};
