//! IOMMU faults as the kernel logs them. A DMA the IOMMU blocks is invisible to the driver
//! (the device just reads garbage or its write vanishes); the kernel's fault handler logs
//! it. The VFIO backend follows /dev/kmsg from the moment it opened the device and counts
//! the fault lines that name its function.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

/// Is `msg` an IOMMU fault line for requester `bdf` (`BB:DD.F`)?
///
/// Intel VT-d (drivers/iommu/intel/dmar.c): `DMAR: [DMA Read NO_PASID] Request device
/// [00:04.0] fault addr 0x... [fault reason 0x06] PTE Read access is not set` (older
/// kernels: `[DMA Read] Request device [00:04.0] PASID ...`). AMD-Vi: `... Event logged
/// [IO_PAGE_FAULT device=00:04.0 domain=... address=...]` (or `vfio-pci 0000:00:04.0:
/// AMD-Vi: Event logged [IO_PAGE_FAULT ...]`).
pub fn is_fault_line(msg: &str, bdf: &str) -> bool {
    let vtd = msg.contains("DMAR") && msg.contains("fault addr") && msg.contains(&format!("[{bdf}]"));
    let amd = msg.contains("IO_PAGE_FAULT") && msg.contains(bdf);
    vtd || amd
}

/// The message part of one /dev/kmsg record (`prio,seq,usec,flags;message\n...`).
pub fn record_message(rec: &str) -> &str {
    let body = rec.split_once(';').map_or(rec, |(_, m)| m);
    body.lines().next().unwrap_or("")
}

#[derive(Debug)]
pub struct KmsgWatch {
    file: Option<File>,
    bdf: String,
    faults: Vec<String>,
}

impl KmsgWatch {
    /// Follow the kernel log from now on for faults of `bdf`. Without access to /dev/kmsg
    /// (it needs CAP_SYSLOG or root) the watch reports `None`.
    pub fn open(bdf: &str) -> KmsgWatch {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .and_then(|mut f| f.seek(SeekFrom::End(0)).map(|_| f))
            .ok();
        KmsgWatch { file, bdf: bdf.to_string(), faults: Vec::new() }
    }

    /// Read what the kernel logged since the last call.
    pub fn poll(&mut self) {
        let Some(f) = self.file.as_mut() else { return };
        let mut buf = vec![0u8; 8192];
        // Bounded: at most this many records per call.
        for _ in 0..4096 {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
                    let msg = record_message(&rec);
                    if is_fault_line(msg, &self.bdf) && self.faults.len() < 1024 {
                        self.faults.push(msg.to_string());
                    }
                }
                // EPIPE: records were overwritten before we read them; go on with the next.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
    }

    /// Fault lines seen so far, `None` when the log cannot be read.
    pub fn faults(&mut self) -> Option<&[String]> {
        self.poll();
        self.file.as_ref()?;
        Some(&self.faults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_vtd_and_amd_fault_lines_for_this_device_only() {
        let vtd = "DMAR: [DMA Read NO_PASID] Request device [00:04.0] fault addr 0x10100000 [fault reason 0x06] PTE Read access is not set";
        assert!(is_fault_line(vtd, "00:04.0"));
        assert!(!is_fault_line(vtd, "00:05.0"));
        let old = "DMAR: [DMA Write] Request device [00:04.0] PASID ffffffff fault addr 1000 [fault reason 05] PTE Write access is not set";
        assert!(is_fault_line(old, "00:04.0"));
        let amd =
            "vfio-pci 0000:03:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000e address=0xdead0000 flags=0x0020]";
        assert!(is_fault_line(amd, "03:00.0"));
        assert!(!is_fault_line("DMAR: DRHD: handling fault status reg 2", "00:04.0"));
    }

    #[test]
    fn kmsg_records_are_split() {
        assert_eq!(record_message("3,812,9021,-;DMAR: x\n SUBSYSTEM=pci\n"), "DMAR: x");
        assert_eq!(record_message("no header"), "no header");
    }
}
