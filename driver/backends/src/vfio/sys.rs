//! The VFIO ioctls, as thin checked wrappers over `libc::ioctl`.
//!
//! Structures come from `vfio-bindings` (bindgen output of `linux/vfio.h`). The request
//! numbers are C macros there, so they are computed here: every VFIO ioctl is
//! `_IO(VFIO_TYPE, VFIO_BASE + n)` — no direction or size bits, the structure carries its own
//! `argsz` — which is `(VFIO_TYPE << 8) | (VFIO_BASE + n)`.

use super::error::VfioError;
use std::os::fd::{AsRawFd, BorrowedFd};
use vfio_bindings::bindings::vfio as b;

pub use b::{
    vfio_device_info, vfio_group_status, vfio_iommu_type1_dma_map, vfio_iommu_type1_dma_unmap, vfio_iommu_type1_info,
    vfio_irq_info, vfio_irq_set, vfio_region_info,
};

const fn io(nr: u32) -> u64 {
    ((b::VFIO_TYPE as u64) << 8) | (b::VFIO_BASE + nr) as u64
}

/// One VFIO ioctl: its request number and the name errors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ioctl {
    pub name: &'static str,
    pub request: u64,
}

macro_rules! vfio_ioctls {
    ($($name:ident = $nr:expr;)*) => {
        $(pub const $name: Ioctl = Ioctl { name: stringify!($name), request: io($nr) };)*
    };
}

vfio_ioctls! {
    VFIO_GET_API_VERSION = 0;
    VFIO_CHECK_EXTENSION = 1;
    VFIO_SET_IOMMU = 2;
    VFIO_GROUP_GET_STATUS = 3;
    VFIO_GROUP_SET_CONTAINER = 4;
    VFIO_GROUP_UNSET_CONTAINER = 5;
    VFIO_GROUP_GET_DEVICE_FD = 6;
    VFIO_DEVICE_GET_INFO = 7;
    VFIO_DEVICE_GET_REGION_INFO = 8;
    VFIO_DEVICE_GET_IRQ_INFO = 9;
    VFIO_DEVICE_SET_IRQS = 10;
    VFIO_DEVICE_RESET = 11;
    VFIO_IOMMU_GET_INFO = 12;
    VFIO_IOMMU_MAP_DMA = 13;
    VFIO_IOMMU_UNMAP_DMA = 14;
}

pub use b::{
    VFIO_API_VERSION, VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE,
    VFIO_GROUP_FLAGS_VIABLE, VFIO_IOMMU_INFO_CAPS, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, VFIO_IRQ_INFO_EVENTFD,
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_NOIOMMU_IOMMU,
    VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE, VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU,
};

fn fail(ioctl: Ioctl, target: &str) -> VfioError {
    VfioError::Ioctl { ioctl: ioctl.name, target: target.to_string(), source: std::io::Error::last_os_error() }
}

/// An ioctl whose argument is an integer (or none). Returns the non-negative result.
pub fn ioctl_val(fd: BorrowedFd<'_>, ioctl: Ioctl, arg: libc::c_ulong, target: &str) -> Result<i32, VfioError> {
    // SAFETY: `fd` is a live descriptor for the call's duration (BorrowedFd); the request is
    // one of the VFIO ioctls whose argument is passed by value (an integer), so the kernel
    // dereferences no pointer of ours.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), ioctl.request as _, arg) };
    if r < 0 { Err(fail(ioctl, target)) } else { Ok(r) }
}

/// An ioctl whose argument is a pointer to `T` (which starts with its own `argsz`).
///
/// # Safety
/// `ioctl` must be a request whose argument is a `T` (or a `T` followed by `extra` bytes
/// that the caller owns contiguously after it): the kernel reads and writes through it.
pub unsafe fn ioctl_ptr<T>(fd: BorrowedFd<'_>, ioctl: Ioctl, arg: *mut T, target: &str) -> Result<i32, VfioError> {
    // SAFETY: the caller guarantees `arg` points to a live, writable argument of the layout
    // this request expects; `fd` is live for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), ioctl.request as _, arg) };
    if r < 0 { Err(fail(ioctl, target)) } else { Ok(r) }
}

/// `argsz` of a fixed-size VFIO structure.
pub const fn argsz<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

/// Build a `vfio_irq_set` with `fds.len()` eventfds (or none) as a u32-aligned buffer:
/// the header followed by the `i32` descriptors (`data[]` in the C structure).
pub fn irq_set_buf(flags: u32, index: u32, start: u32, count: u32, fds: &[i32]) -> Vec<u32> {
    // The header is five u32s (argsz, flags, index, start, count): 20 bytes.
    let total = std::mem::size_of::<vfio_irq_set>() + 4 * fds.len();
    let mut buf = vec![total as u32, flags, index, start, count];
    buf.extend(fds.iter().map(|fd| *fd as u32));
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_match_linux_uapi() {
        // _IO(';', 100) and friends, as the kernel's vfio.h defines them.
        assert_eq!(VFIO_GET_API_VERSION.request, 0x3B64);
        assert_eq!(VFIO_GROUP_GET_DEVICE_FD.request, 0x3B6A);
        assert_eq!(VFIO_DEVICE_SET_IRQS.request, 0x3B6E);
        assert_eq!(VFIO_IOMMU_MAP_DMA.request, 0x3B71);
        assert_eq!(VFIO_IOMMU_UNMAP_DMA.request, 0x3B72);
    }

    #[test]
    fn irq_set_layout() {
        let b = irq_set_buf(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 2, 0, 3, &[7, 8, -1]);
        assert_eq!(b[0], 20 + 12);
        assert_eq!(b[2], VFIO_PCI_MSIX_IRQ_INDEX);
        assert_eq!(&b[5..8], &[7, 8, u32::MAX]);
        assert_eq!(std::mem::offset_of!(vfio_irq_set, data), 20);
    }

    #[test]
    fn ioctl_on_a_non_vfio_fd_names_the_ioctl() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let e = ioctl_val(std::os::fd::AsFd::as_fd(&f), VFIO_GET_API_VERSION, 0, "/dev/null").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("VFIO_GET_API_VERSION") && s.contains("/dev/null"), "{s}");
    }
}
