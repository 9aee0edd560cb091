//! A Broadcom NetXtreme II (bnx2x) function at DMA-ring level: PCI identity, the register
//! and doorbell BARs, and the IOMMU every device access goes through. Received frames are
//! written into the buffer a given rx BD points at, through the IOMMU, as the firmware
//! does (up to the firmware buffer length, at the placement offset); transmitted data is
//! read back the same way.
//!
//! Fidelity: what the DMA layer sees (which addresses the device reads and writes, how
//! many bytes), not the chip's firmware or the storm processors.

use crate::config::{BarKind, ConfigSpace};
use crate::iommu::{DmaFault, Iommu};
use crate::{MsiMessage, PciDevice};
use nicqual_hw::bnx2x::{self as hw, FastPathRxCqe};
use nicqual_hw::regs;

/// BAR sizes: BAR0 registers, BAR2 doorbells (both memory).
pub const BAR0_LEN: u64 = 0x80_0000;
pub const BAR2_LEN: u64 = 0x80_0000;

/// The device.
#[derive(Debug)]
pub struct Bnx2xDevice {
    config: ConfigSpace,
    iommu: Iommu,
    now_ns: u64,
    /// Last TX producer written per connection id (doorbell BAR2 + 8 * cid).
    tx_doorbells: Vec<u16>,
    pub frames_written: u64,
    pub bytes_read: u64,
}

impl Default for Bnx2xDevice {
    fn default() -> Self {
        Self::new()
    }
}

impl Bnx2xDevice {
    pub fn new() -> Self {
        let mut config = ConfigSpace::new(
            hw::PCI_VENDOR_BROADCOM,
            hw::PCI_DEVICE_57810,
            0x0200_0010,
            hw::PCI_VENDOR_BROADCOM,
            0x1006,
        );
        config.add_bar(0, BarKind::Mem32, BAR0_LEN);
        config.add_bar(2, BarKind::Mem32, BAR2_LEN);
        Bnx2xDevice {
            config,
            iommu: Iommu::new(),
            now_ns: 0,
            tx_doorbells: vec![0; hw::DOORBELL_CIDS as usize],
            frames_written: 0,
            bytes_read: 0,
        }
    }

    /// Receive a frame into the buffer at `bd_addr`: the firmware writes at most
    /// `rx_fw_buf_len(mtu)` bytes at `placement_offset`. Returns the bytes written.
    pub fn receive_into(
        &mut self,
        bd_addr: u64,
        placement_offset: u8,
        frame: &[u8],
        mtu: u32,
    ) -> Result<usize, DmaFault> {
        let n = frame.len().min(hw::rx_fw_buf_len(mtu) as usize);
        let data = frame.get(..n).unwrap_or(frame);
        self.iommu.write(bd_addr + placement_offset as u64, data, self.now_ns)?;
        self.frames_written += 1;
        Ok(n)
    }

    /// Receive `frame` into the buffer whose DMA address the rx BD holds and return the
    /// fast-path CQE the firmware writes for it (placement offset 66: the 64-byte alignment
    /// start plus the 2-byte IP alignment pad).
    pub fn receive(&mut self, bd_addr: u64, frame: &[u8], mtu: u32) -> Result<FastPathRxCqe, DmaFault> {
        let placement = (hw::FW_RX_ALIGN_START + hw::IP_HEADER_ALIGNMENT_PADDING) as u8;
        let n = self.receive_into(bd_addr, placement, frame, mtu)? as u16;
        let mut cqe = FastPathRxCqe {
            type_error_flags: hw::CQE_TYPE_FAST_PATH,
            placement_offset: placement,
            ..FastPathRxCqe::default()
        };
        cqe.pkt_len_or_gro_seg_len.set(n);
        cqe.len_on_bd.set(n);
        cqe.marker.set(0);
        Ok(cqe)
    }

    /// Read `len` bytes of a transmit buffer at `addr` (the device fetching a BD's data).
    pub fn fetch_tx(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, DmaFault> {
        let mut v = vec![0u8; len];
        self.iommu.read(addr, &mut v, self.now_ns)?;
        self.bytes_read += len as u64;
        Ok(v)
    }

    /// Last producer rung on the TX doorbell of `cid`.
    pub fn tx_doorbell(&self, cid: usize) -> Option<u16> {
        self.tx_doorbells.get(cid).copied()
    }
}

impl PciDevice for Bnx2xDevice {
    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        self.config.read(offset, size)
    }
    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        self.config.write(offset, size, value)
    }
    fn bar_len(&self, bar: u8) -> Option<u64> {
        self.config.bar_size(bar)
    }
    fn bar_read32(&mut self, _bar: u8, _offset: u64) -> u32 {
        0
    }
    fn bar_write32(&mut self, bar: u8, offset: u64, value: u32) {
        // A doorbell of the table's range; its index is the connection id.
        let doorbell = u32::try_from(offset).ok().and_then(|o| regs::by_offset(hw::DOORBELL_REGISTERS, o));
        if bar == 2
            && let Some(db) = doorbell
            && value as u8 & hw::DOORBELL_HDR_DB_TYPE != 0
            && let Some(p) = self.tx_doorbells.get_mut(db.index as usize)
        {
            *p = (value >> 16) as u16;
        }
    }
    fn advance(&mut self, ns: u64) {
        self.now_ns += ns;
    }
    fn now_ns(&self) -> u64 {
        self.now_ns
    }
    fn function_reset(&mut self) {
        self.iommu.unmap_all();
        self.tx_doorbells.fill(0);
    }
    fn take_interrupts(&mut self) -> Vec<MsiMessage> {
        Vec::new()
    }
    fn iommu(&mut self) -> &mut Iommu {
        &mut self.iommu
    }
    fn dma_faults_total(&self) -> u64 {
        self.iommu.faults_total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doorbells_are_the_tables_and_nothing_else() {
        let mut d = Bnx2xDevice::new();
        let ring = |prod: u32| (prod << 16) | u32::from(hw::DOORBELL_HDR_DB_TYPE);
        d.bar_write32(2, 3 * hw::DOORBELL_STRIDE, ring(17));
        assert_eq!(d.tx_doorbell(3), Some(17));
        // Between doorbells, past the last one, on BAR0, or without DB_TYPE: ignored.
        d.bar_write32(2, 3 * hw::DOORBELL_STRIDE + 4, ring(5));
        d.bar_write32(2, hw::DOORBELL_CIDS * hw::DOORBELL_STRIDE, ring(5));
        d.bar_write32(0, 3 * hw::DOORBELL_STRIDE, ring(5));
        d.bar_write32(2, 3 * hw::DOORBELL_STRIDE, 5 << 16);
        assert_eq!(d.tx_doorbell(3), Some(17));
        assert_eq!(d.tx_doorbell(hw::DOORBELL_CIDS as usize), None);
        assert_eq!((0..hw::DOORBELL_CIDS as usize).filter_map(|c| d.tx_doorbell(c)).filter(|p| *p != 0).count(), 1);
    }
}
