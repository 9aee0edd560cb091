//! Intel 82576 (igb) interrupt block: the registers the QEMU 11.1 igb probe touches
//! (groundwork for a second Intel family; there is no igb model or driver yet). Offsets and
//! bits as Linux names them (drivers/net/ethernet/intel/igb/e1000_regs.h and
//! e1000_defines.h); the IVAR layout as igb_main.c's `igb_assign_vector` and
//! `igb_configure_msix` use it for the 82576.

/// 82576 PCI device ID (vendor 8086).
pub const DEVICE_ID: u16 = 0x10C9;
/// BAR 0: the register space.
pub const BAR_REGS: u8 = 0;

/// General Purpose Interrupt Enable.
pub const GPIE: u32 = 0x01514;
/// Extended Interrupt Cause Set (write-only).
pub const EICS: u32 = 0x01520;
/// Extended Interrupt Mask Set/Read.
pub const EIMS: u32 = 0x01524;
/// Extended Interrupt Mask Clear (write-only).
pub const EIMC: u32 = 0x01528;
/// Extended Interrupt Auto Clear.
pub const EIAC: u32 = 0x0152C;
/// Extended Interrupt Auto Mask.
pub const EIAM: u32 = 0x01530;
/// Extended Interrupt Cause Read.
pub const EICR: u32 = 0x01580;
/// Interrupt Vector Allocation, an array of [`IVAR_COUNT`] registers.
pub const IVAR0: u32 = 0x01700;
/// IVAR registers on the 82576: register `q & 7` holds queues `q` and `q + 8`.
pub const IVAR_COUNT: u32 = 8;
/// IVAR of the "other" causes (byte 1) and the TCP timer (byte 0).
pub const IVAR_MISC: u32 = 0x01740;
/// Valid bit of an IVAR byte (the vector number is bits 4:0).
pub const IVAR_VALID: u32 = 0x80;

/// IVAR register `n`.
pub const fn ivar(n: u32) -> u32 {
    IVAR0 + 4 * n
}

/// Extended Interrupt Throttle register of vector `n`.
pub const fn eitr(n: u32) -> u32 {
    0x01680 + 4 * n
}

/// Bit offset of RX queue `q`'s byte in register `ivar(q & 7)` (82576: 0 or 16).
pub const fn ivar_rx_shift(q: u32) -> u32 {
    (q & 8) << 1
}

/// Bit offset of TX queue `q`'s byte in register `ivar(q & 7)` (82576: 8 or 24).
pub const fn ivar_tx_shift(q: u32) -> u32 {
    ((q & 8) << 1) + 8
}

/// GPIE.NSICR: non-selective interrupt clear on read of EICR.
pub const GPIE_NSICR: u32 = 1 << 0;
/// GPIE.MSIX_MODE: EICR bits are MSI-X vectors.
pub const GPIE_MSIX_MODE: u32 = 1 << 4;
/// GPIE.EIAME: extended interrupt auto-mask enable (EIAM applies).
pub const GPIE_EIAME: u32 = 1 << 30;
/// GPIE.PBA_SUPPORT: MSI-X pending bits.
pub const GPIE_PBA: u32 = 1 << 31;
/// What Linux igb writes to GPIE for MSI-X (`igb_configure_msix`).
pub const GPIE_LINUX_MSIX: u32 = GPIE_MSIX_MODE | GPIE_PBA | GPIE_EIAME | GPIE_NSICR;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivar_layout_is_column_major_over_eight_registers() {
        assert_eq!((ivar(0), ivar(7), IVAR_MISC), (0x1700, 0x171C, 0x1740));
        assert_eq!((ivar_rx_shift(3), ivar_tx_shift(3)), (0, 8));
        assert_eq!((ivar_rx_shift(11), ivar_tx_shift(11)), (16, 24));
        assert_eq!(eitr(9), 0x16A4);
    }
}
