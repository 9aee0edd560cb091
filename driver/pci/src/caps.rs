//! PCI capability list walk and MSI-X layout decoding, written once for every backend and
//! driver. Configuration space is read through a caller's function (a `PciDevice`, a
//! qtest socket, a VFIO region: whatever the caller has), so nothing here is tied to a
//! transport. The device is not trusted: the walk is bounded, pointers below 0x40 or into
//! a loop end it, and all-ones reads (a device that is gone) find nothing.

use nicqual_hw::pci;

/// Most capabilities followed before the walk gives up (a hostile list may loop): the 192
/// bytes above the header hold at most 48 four-byte capabilities.
pub const MAX_CAPS: usize = 48;

/// Offset of the first capability with `id` in the standard list, if any. `read(offset,
/// size)` reads `size` (1, 2 or 4) bytes of configuration space; a read error ends the walk
/// with that error.
pub fn find<E>(mut read: impl FnMut(u16, u8) -> Result<u32, E>, id: u8) -> Result<Option<u16>, E> {
    let status = read(pci::STATUS, 2)?;
    if status == 0xFFFF || status as u16 & pci::STATUS_CAP_LIST == 0 {
        return Ok(None);
    }
    let mut off = read(pci::CAPABILITIES_PTR, 1)? as u16 & 0xFC;
    for _ in 0..MAX_CAPS {
        if off < 0x40 {
            return Ok(None);
        }
        if read(off, 1)? as u8 == id {
            return Ok(Some(off));
        }
        off = read(off + 1, 1)? as u16 & 0xFC;
    }
    Ok(None)
}

/// Where a function's MSI-X table and PBA live (from its MSI-X capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixLayout {
    /// Configuration-space offset of the capability.
    pub cap: u16,
    /// Table entries (vectors), 1..=2048.
    pub size: u16,
    /// BAR holding the table.
    pub table_bir: u8,
    /// Offset of the table in that BAR.
    pub table_off: u64,
    /// BAR holding the pending-bit array.
    pub pba_bir: u8,
    /// Offset of the PBA in that BAR.
    pub pba_off: u64,
}

impl MsixLayout {
    /// BAR offset of vector `v`'s table entry, when `v` is in the table.
    pub fn entry(&self, v: u16) -> Option<u64> {
        (v < self.size).then(|| self.table_off + u64::from(v) * pci::MSIX_ENTRY_SIZE)
    }
}

/// Decode the MSI-X capability, if the function has one.
pub fn msix_layout<E>(mut read: impl FnMut(u16, u8) -> Result<u32, E>) -> Result<Option<MsixLayout>, E> {
    let Some(cap) = find(&mut read, pci::CAP_ID_MSIX)? else { return Ok(None) };
    let ctrl = read(cap + pci::MSIX_MSG_CTRL, 2)? as u16;
    let t = read(cap + pci::MSIX_TABLE, 4)?;
    let p = read(cap + pci::MSIX_PBA, 4)?;
    Ok(Some(MsixLayout {
        cap,
        size: (ctrl & pci::MSIX_CTRL_TABLE_SIZE_MASK) + 1,
        table_bir: (t & pci::MSIX_BIR_MASK) as u8,
        table_off: u64::from(t & !pci::MSIX_BIR_MASK),
        pba_bir: (p & pci::MSIX_BIR_MASK) as u8,
        pba_off: u64::from(p & !pci::MSIX_BIR_MASK),
    }))
}

/// The PCI Express link as the function reports it (Link Status in its PCIe capability):
/// `x1 Gen1 (2.5 GT/s), Link Status 0x0011`. `None` without a PCIe capability or with a status that reads as
/// all-ones.
pub fn pcie_link<E>(mut read: impl FnMut(u16, u8) -> Result<u32, E>) -> Result<Option<String>, E> {
    let Some(cap) = find(&mut read, pci::CAP_ID_PCIE)? else { return Ok(None) };
    let status = read(cap + 0x12, 2)? as u16;
    if status == 0xFFFF {
        return Ok(None);
    }
    let width = (status >> 4) & 0x3F;
    let speed = match status & 0xF {
        1 => "Gen1 (2.5 GT/s)",
        2 => "Gen2 (5 GT/s)",
        3 => "Gen3 (8 GT/s)",
        4 => "Gen4 (16 GT/s)",
        5 => "Gen5 (32 GT/s)",
        _ => "speed not reported",
    };
    Ok(Some(format!("x{width} {speed}, Link Status {status:#06x}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config space as bytes, read little-endian like a device.
    fn space(bytes: &[(u16, u8)]) -> impl FnMut(u16, u8) -> Result<u32, ()> + use<> {
        let mut c = vec![0u8; 256];
        for &(o, v) in bytes {
            c[o as usize] = v;
        }
        move |off, size| Ok((0..size as usize).map(|i| u32::from(c[(off as usize + i) % 256]) << (8 * i)).sum())
    }

    #[test]
    fn walks_the_list_and_decodes_msix() {
        // STATUS.CAP_LIST, list at 0x40: PM -> MSI-X at 0x50 (5 vectors, table BAR3+0, PBA BAR3+0x2000).
        let read = space(&[
            (0x06, 0x10),
            (0x34, 0x40),
            (0x40, pci::CAP_ID_PM),
            (0x41, 0x50),
            (0x50, pci::CAP_ID_MSIX),
            (0x52, 4),
            (0x54, 3),
            (0x58, 3),
            (0x59, 0x20),
        ]);
        let l = msix_layout(read).unwrap().unwrap();
        assert_eq!((l.cap, l.size, l.table_bir, l.table_off, l.pba_bir, l.pba_off), (0x50, 5, 3, 0, 3, 0x2000));
        assert_eq!((l.entry(4), l.entry(5)), (Some(64), None));
    }

    #[test]
    fn hostile_lists_end() {
        // A loop: 0x40 -> 0x40 -> ...
        let read = space(&[(0x06, 0x10), (0x34, 0x40), (0x40, 0x09), (0x41, 0x40)]);
        assert_eq!(find(read, pci::CAP_ID_MSIX), Ok(None));
        // A pointer into the header.
        assert_eq!(find(space(&[(0x06, 0x10), (0x34, 0x10)]), pci::CAP_ID_MSIX), Ok(None));
        // A function that is gone (all-ones).
        assert_eq!(find(|_, _| Ok::<u32, ()>(u32::MAX), pci::CAP_ID_MSIX), Ok(None));
        assert_eq!(pcie_link(|_, _| Ok::<u32, ()>(u32::MAX)), Ok(None));
    }
}
