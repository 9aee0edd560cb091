//! The IOMMU model in front of every device model.
//!
//! A driver maps windows of its own memory at IO virtual addresses with read and/or write
//! permission; the device reaches memory only through [`Iommu::read`] and [`Iommu::write`].
//! An access outside every window, or against its permission, is blocked and recorded as a
//! [`DmaFault`] — the model's equivalent of a DMAR fault record — and the device sees an
//! error, never undefined memory.

use std::collections::BTreeMap;

/// Device access permissions of a window (the VFIO_DMA_MAP_FLAG_READ/WRITE pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Perm {
    /// The device may read (driver-to-device data).
    pub read: bool,
    /// The device may write (device-to-driver data).
    pub write: bool,
}

impl Perm {
    pub const READ: Perm = Perm { read: true, write: false };
    pub const WRITE: Perm = Perm { read: false, write: true };
    pub const READ_WRITE: Perm = Perm { read: true, write: true };

    /// Whether this permission lets the device access memory in direction `dir`.
    #[inline]
    pub fn allows(self, dir: DmaDir) -> bool {
        match dir {
            DmaDir::Read => self.read,
            DmaDir::Write => self.write,
        }
    }
}

/// Direction of a device DMA access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DmaDir {
    /// Device reads memory.
    Read,
    /// Device writes memory.
    Write,
}

/// Why an access was blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FaultReason {
    /// No window covers the address.
    NotMapped,
    /// A window covers it but does not grant this direction.
    Permission,
}

/// One blocked device access, like a DMAR fault record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("DMA fault: device {dir:?} of {len} bytes at IOVA {iova:#x} blocked ({reason:?}) at t={at_ns} ns")]
pub struct DmaFault {
    pub iova: u64,
    pub len: usize,
    pub dir: DmaDir,
    pub reason: FaultReason,
    pub at_ns: u64,
}

/// Errors of the driver-facing map/unmap calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("IOVA window {iova:#x}+{len:#x} overlaps an existing window at {existing:#x}")]
    Overlap { iova: u64, len: u64, existing: u64 },
    #[error("IOVA window {iova:#x}+{len:#x} is empty or wraps the address space")]
    BadRange { iova: u64, len: u64 },
    #[error("no window starts at IOVA {iova:#x}")]
    NotMapped { iova: u64 },
}

#[derive(Debug)]
struct Window {
    len: u64,
    host: *mut u8,
    perm: Perm,
}

/// Host chunks an access resolved to.
enum Chunks {
    One(*mut u8, usize),
    Many(Vec<(*mut u8, usize)>),
}

impl Chunks {
    fn iter(&self) -> impl Iterator<Item = (*mut u8, usize)> + '_ {
        let (one, many) = match self {
            Chunks::One(p, n) => (Some((*p, *n)), &[][..]),
            Chunks::Many(v) => (None, &v[..]),
        };
        one.into_iter().chain(many.iter().copied())
    }
}

/// Fault records kept; older ones are counted but dropped.
const FAULT_LOG_CAP: usize = 4096;

#[derive(Debug, Default)]
pub struct Iommu {
    windows: BTreeMap<u64, Window>,
    /// The window the last translation used (start, len, host, perm): a datapath touches
    /// one mapped region over and over, so this saves the tree walk on almost every access.
    /// Cleared whenever the set of windows changes.
    last: std::cell::Cell<Option<(u64, u64, *mut u8, Perm)>>,
    faults: Vec<DmaFault>,
    faults_total: u64,
    /// A device that is gone (surprise removal) does no DMA at all.
    blocked: bool,
}

impl Iommu {
    pub fn new() -> Self {
        Self::default()
    }

    /// Map `len` bytes of host memory at `host` to `iova`.
    ///
    /// # Safety
    /// `host..host+len` must stay valid for reads and writes, and must not be freed, until
    /// the window is removed with [`Iommu::unmap`] or the IOMMU is dropped. The device
    /// writes it at any register access while mapped (like real DMA), so the caller must
    /// not hold Rust references into it across device accesses.
    pub unsafe fn map(&mut self, iova: u64, host: *mut u8, len: u64, perm: Perm) -> Result<(), MapError> {
        let end = iova.checked_add(len).filter(|_| len > 0).ok_or(MapError::BadRange { iova, len })?;
        if let Some((&start, w)) = self.windows.range(..end).next_back()
            && start + w.len > iova
        {
            return Err(MapError::Overlap { iova, len, existing: start });
        }
        self.last.set(None);
        self.windows.insert(iova, Window { len, host, perm });
        Ok(())
    }

    /// Remove the window that starts at `iova`; returns its length.
    pub fn unmap(&mut self, iova: u64) -> Result<u64, MapError> {
        self.last.set(None);
        self.windows.remove(&iova).map(|w| w.len).ok_or(MapError::NotMapped { iova })
    }

    /// Remove every window (device reset by its owner, teardown).
    pub fn unmap_all(&mut self) {
        self.last.set(None);
        self.windows.clear();
    }

    pub fn window_count(&self) -> usize {
        self.windows.len()
    }

    /// Stop all DMA (the device is gone).
    pub fn set_blocked(&mut self, blocked: bool) {
        self.blocked = blocked;
    }

    /// Fault records (at most the last few thousand) and the total count.
    pub fn faults(&self) -> &[DmaFault] {
        &self.faults
    }

    pub fn faults_total(&self) -> u64 {
        self.faults_total
    }

    pub fn take_faults(&mut self) -> Vec<DmaFault> {
        std::mem::take(&mut self.faults)
    }

    /// Host address of `len` bytes at `iova` when they all lie in the window translated last
    /// and it allows `dir`: the common case (a driver's rings and buffers in one window),
    /// answered without the window map.
    #[inline]
    fn cached(&self, iova: u64, len: usize, dir: DmaDir) -> Option<*mut u8> {
        let (start, wlen, host, perm) = self.last.get()?;
        let off = iova.checked_sub(start)?;
        if !perm.allows(dir) || off.checked_add(len as u64).is_none_or(|end| end > wlen) {
            return None;
        }
        // SAFETY: the cached window is still mapped (every change to the windows clears the
        // cache) and `off + len <= wlen`, so the pointer stays inside the host range the
        // mapper vouched for in `map`.
        Some(unsafe { host.add(off as usize) })
    }

    /// Whether a `dir` access of `len` bytes at `iova` would succeed inside one window (no
    /// fault is recorded either way).
    pub fn in_one_window(&self, iova: u64, len: usize, dir: DmaDir) -> bool {
        !self.blocked && matches!(self.translate(iova, len, dir), Ok(Chunks::One(..)))
    }

    /// Resolve `iova..iova+len` to host chunks, all-or-nothing. The common case (one
    /// window covers the access) allocates nothing.
    fn translate(&self, iova: u64, len: usize, dir: DmaDir) -> Result<Chunks, FaultReason> {
        let allows = |p: Perm| p.allows(dir);
        if let Some(p) = self.cached(iova, len, dir) {
            return Ok(Chunks::One(p, len));
        }
        let mut chunks = Chunks::Many(Vec::new());
        let mut addr = iova;
        let mut left = len as u64;
        while left > 0 {
            let (&start, w) = self.windows.range(..=addr).next_back().ok_or(FaultReason::NotMapped)?;
            let off = addr - start;
            if off >= w.len {
                return Err(FaultReason::NotMapped);
            }
            if !allows(w.perm) {
                return Err(FaultReason::Permission);
            }
            self.last.set(Some((start, w.len, w.host, w.perm)));
            let n = (w.len - off).min(left);
            // SAFETY: off < w.len, so the result stays inside the window the mapper
            // promised valid (Iommu::map's contract).
            let p = unsafe { w.host.add(off as usize) };
            if n == len as u64 {
                return Ok(Chunks::One(p, n as usize));
            }
            if let Chunks::Many(v) = &mut chunks {
                v.push((p, n as usize));
            }
            addr = match addr.checked_add(n) {
                Some(a) => a,
                None if n == left => addr,
                None => return Err(FaultReason::NotMapped),
            };
            left -= n;
        }
        Ok(chunks)
    }

    fn record(&mut self, iova: u64, len: usize, dir: DmaDir, reason: FaultReason, at_ns: u64) -> DmaFault {
        let f = DmaFault { iova, len, dir, reason, at_ns };
        self.faults_total += 1;
        if self.faults.len() < FAULT_LOG_CAP {
            self.faults.push(f);
        }
        tracing::debug!(target: "nicqual::iommu", "{f}");
        f
    }

    /// Device reads `buf.len()` bytes at `iova`.
    #[inline]
    pub fn read(&mut self, iova: u64, buf: &mut [u8], at_ns: u64) -> Result<(), DmaFault> {
        if !self.blocked
            && let Some(p) = self.cached(iova, buf.len(), DmaDir::Read)
        {
            // SAFETY: p..p+len lies in a mapped readable window (`cached`), valid per the map
            // contract; `buf` is Rust-owned, so the two cannot overlap.
            unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
            return Ok(());
        }
        self.read_slow(iova, buf, at_ns)
    }

    /// `read` outside the last window used, or with DMA blocked.
    #[inline(never)]
    fn read_slow(&mut self, iova: u64, buf: &mut [u8], at_ns: u64) -> Result<(), DmaFault> {
        if self.blocked {
            return Err(DmaFault { iova, len: buf.len(), dir: DmaDir::Read, reason: FaultReason::NotMapped, at_ns });
        }
        match self.translate(iova, buf.len(), DmaDir::Read) {
            Ok(chunks) => {
                let mut done = 0;
                for (p, n) in chunks.iter() {
                    // SAFETY: p..p+n lies in a mapped window (translate), valid per the
                    // map contract; buf[done..done+n] is in bounds because the chunk sizes
                    // sum to buf.len(); the regions cannot overlap (buf is Rust-owned).
                    unsafe { std::ptr::copy_nonoverlapping(p, buf[done..].as_mut_ptr(), n) };
                    done += n;
                }
                Ok(())
            }
            Err(r) => Err(self.record(iova, buf.len(), DmaDir::Read, r, at_ns)),
        }
    }

    /// Device writes `data` at `iova`.
    #[inline]
    pub fn write(&mut self, iova: u64, data: &[u8], at_ns: u64) -> Result<(), DmaFault> {
        if !self.blocked
            && let Some(p) = self.cached(iova, data.len(), DmaDir::Write)
        {
            // SAFETY: as in `read`'s fast path, with the copy in the other direction.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
            return Ok(());
        }
        self.write_slow(iova, data, at_ns)
    }

    /// `write` outside the last window used, or with DMA blocked.
    #[inline(never)]
    fn write_slow(&mut self, iova: u64, data: &[u8], at_ns: u64) -> Result<(), DmaFault> {
        if self.blocked {
            return Err(DmaFault { iova, len: data.len(), dir: DmaDir::Write, reason: FaultReason::NotMapped, at_ns });
        }
        match self.translate(iova, data.len(), DmaDir::Write) {
            Ok(chunks) => {
                let mut done = 0;
                for (p, n) in chunks.iter() {
                    // SAFETY: as in `read`, with the copy in the other direction.
                    unsafe { std::ptr::copy_nonoverlapping(data[done..].as_ptr(), p, n) };
                    done += n;
                }
                Ok(())
            }
            Err(r) => Err(self.record(iova, data.len(), DmaDir::Write, r, at_ns)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_inside_window_copies_and_outside_faults() {
        let mut mem = vec![0u8; 64];
        let mut io = Iommu::new();
        // SAFETY: `mem` outlives `io` in this test and is not referenced during accesses.
        unsafe { io.map(0x1000, mem.as_mut_ptr(), 64, Perm::READ_WRITE).unwrap() };
        io.write(0x1008, &[1, 2, 3], 5).unwrap();
        let mut b = [0u8; 3];
        io.read(0x1008, &mut b, 5).unwrap();
        assert_eq!(b, [1, 2, 3]);
        let f = io.write(0x1040, &[0], 7).unwrap_err();
        assert_eq!((f.iova, f.reason, f.at_ns), (0x1040, FaultReason::NotMapped, 7));
        let f = io.read(0x103F, &mut [0u8; 2], 8).unwrap_err();
        assert_eq!(f.reason, FaultReason::NotMapped, "straddling the window end is blocked");
        assert_eq!(io.faults_total(), 2);
        drop(io);
        assert_eq!(mem[8..11], [1, 2, 3]);
    }

    #[test]
    fn permission_is_enforced_per_direction() {
        let mut mem = vec![0u8; 16];
        let mut io = Iommu::new();
        // SAFETY: `mem` outlives `io`.
        unsafe { io.map(0, mem.as_mut_ptr(), 16, Perm::READ).unwrap() };
        assert_eq!(io.write(0, &[1], 0).unwrap_err().reason, FaultReason::Permission);
        assert!(io.read(0, &mut [0u8; 16], 0).is_ok());
    }

    #[test]
    fn overlapping_windows_are_refused() {
        let mut mem = vec![0u8; 32];
        let mut io = Iommu::new();
        // SAFETY: `mem` outlives `io`.
        unsafe {
            io.map(0x100, mem.as_mut_ptr(), 16, Perm::READ).unwrap();
            assert!(matches!(io.map(0x108, mem.as_mut_ptr(), 16, Perm::READ), Err(MapError::Overlap { .. })));
            io.map(0x110, mem.as_mut_ptr().add(16), 16, Perm::READ).unwrap();
        }
        // An access spanning two adjacent windows is served from both.
        assert!(io.read(0x10C, &mut [0u8; 8], 0).is_ok());
    }
}
