//! Intel 82574L (PCI 8086:10D3): register offsets in BAR0, their bits, the MSI-X layout
//! in BAR3, EEPROM words and PHY registers. Offsets and names as the datasheet (and the
//! Linux e1000e / QEMU e1000e headers, which copy it) give them.

pub mod fields;

use crate::regs::{self, Found, registers};

pub const VENDOR_ID: u16 = 0x8086;
pub const DEVICE_ID: u16 = 0x10D3;
/// 82574LA shares the MAC type.
pub const DEVICE_ID_82574LA: u16 = 0x10F6;

/// BAR0: memory-mapped register file.
pub const BAR_REGS: u8 = 0;
pub const BAR_REGS_LEN: u64 = 128 * 1024;
/// BAR1: flash window (the driver never uses it).
pub const BAR_FLASH: u8 = 1;
pub const BAR_FLASH_LEN: u64 = 128 * 1024;
/// BAR2: I/O port window (IOADDR/IODATA).
pub const BAR_IO: u8 = 2;
pub const BAR_IO_LEN: u64 = 32;
/// BAR3: MSI-X table and pending-bit array.
pub const BAR_MSIX: u8 = 3;
pub const BAR_MSIX_LEN: u64 = 16 * 1024;
pub const MSIX_TABLE_OFFSET: u64 = 0x0000;
pub const MSIX_PBA_OFFSET: u64 = 0x2000;
pub const MSIX_VECTORS: u16 = 5;

/// Configuration-space capability offsets of the 82574L as QEMU lays them out.
pub const CAP_MSIX: u16 = 0xA0;
pub const CAP_PM: u16 = 0xC8;
pub const CAP_MSI: u16 = 0xD0;
pub const CAP_PCIE: u16 = 0xE0;
pub const EXT_CAP_AER: u16 = 0x100;
pub const EXT_CAP_DSN: u16 = 0x140;

pub use fields::{Ctrl, CtrlExt, Icr, Status};
use fields::{
    ctrl, ctrl_ext, delay, eecd, eerd, icr, itr, ivar, mdic, mrqc, pba, psrctl, rah, rctl, rfctl, ring_len, rxcsum,
    rxdctl, status, swsm, tarc, tctl, timinca, tipg, txdctl,
};

registers! {
    /// The BAR0 register file: every register driver, model, pattern test and dump use,
    /// with datasheet names and titles (Intel 82574 GbE Controller Family datasheet,
    /// chapter 10), access, writable mask (bits that read back what was written; the
    /// masks Linux e1000e's `e1000_reg_test` uses for the pattern-test registers), reset
    /// value where the device (as modelled) has a non-zero or known one, and fields.
    /// Offsets not declared here are not modelled (they read 0 and ignore writes).
    pub static REGISTERS: u32;

    // ---- General --------------------------------------------------------------------
    reg CTRL = 0x00000, "Device Control", Rw, mask 0xFFFF_FFFF, reset 0x0014_0241, fields ctrl;
    /// A second view of CTRL (writes through it reach CTRL).
    reg CTRL_DUP = 0x00004, "Device Control (duplicate)", Ro, mask 0, fields ctrl;
    reg STATUS = 0x00008, "Device Status", Ro, mask 0, fields status;
    /// PRES and AUTO_RD read 1 (an EEPROM is present and its words were loaded at reset);
    /// the driver polls AUTO_RD after CTRL.RST (Linux e1000e `e1000e_get_auto_rd_done`).
    reg EECD = 0x00010, "EEPROM/Flash Control", Rw, mask 0xFFFF_FCFF, reset 0x0000_0300, fields eecd;
    reg EERD = 0x00014, "EEPROM Read", Rw, mask 0xFFFF_FFFF, fields eerd;
    reg CTRL_EXT = 0x00018, "Extended Device Control", Rw, mask 0xFFFF_FFFF, fields ctrl_ext;
    reg MDIC = 0x00020, "MDI Control", Rw, mask 0xFFFF_FFFF, reset mdic::READY.mask(), fields mdic;
    reg FCAL = 0x00028, "Flow Control Address Low", Rw, mask 0xFFFF_FFFF, pattern 1;
    reg FCAH = 0x0002C, "Flow Control Address High", Rw, mask 0x0000_FFFF, pattern 1;
    reg FCT = 0x00030, "Flow Control Type", Rw, mask 0x0000_FFFF, pattern 1;
    reg VET = 0x00038, "VLAN EtherType", Rw, mask 0x0000_FFFF, reset 0x8100, pattern 1;
    /// Flow-control timer and SerDes words (Linux e1000e `e1000_reg_test` writes FCTTV
    /// and TXCW; `e1000e_set_fc_watermarks` writes FCTTV). RXCW reads 0 on a copper part.
    reg FCTTV = 0x00170, "Flow Control Transmit Timer Value", Rw, mask 0x0000_FFFF;
    reg TXCW = 0x00178, "Transmit Configuration Word", Rw, mask 0xC000_FFFF;
    reg RXCW = 0x00180, "Receive Configuration Word", Ro, mask 0;

    // ---- Interrupts -----------------------------------------------------------------
    /// Read-to-clear (as the interrupt mode rules say) and write-1-to-clear.
    reg ICR = 0x000C0, "Interrupt Cause Read", Rc, mask 0, fields icr;
    reg ITR = 0x000C4, "Interrupt Throttling Rate", Rw, mask 0x0000_FFFF, fields itr;
    /// Writes raise causes; reads return ICR (as QEMU's e1000e answers).
    reg ICS = 0x000C8, "Interrupt Cause Set", Rw, mask 0xFFFF_FFFF, fields icr;
    reg IMS = 0x000D0, "Interrupt Mask Set/Read", Rw, mask Icr::IMS_VALID.bits(), fields icr;
    reg IMC = 0x000D8, "Interrupt Mask Clear", Wo, mask 0xFFFF_FFFF, fields icr;
    /// Extended Interrupt Auto Clear (82574-specific address).
    reg EIAC = 0x000DC, "Extended Interrupt Auto Clear", Rw, mask 0xFFFF_FFFF, fields icr;
    reg IAM = 0x000E0, "Interrupt Acknowledge Auto Mask", Rw, mask 0xFFFF_FFFF, fields icr;
    reg IVAR = 0x000E4, "Interrupt Vector Allocation", Rw, mask 0xFFFF_FFFF, fields ivar;
    /// Low-power-idle (EEE) control: the 82574L has no Energy Efficient Ethernet, so this
    /// reads 0 and ignores writes; Linux e1000e reads it for a message when the device is
    /// shut down (`e1000e_flush_lpic`).
    reg LPIC = 0x000FC, "Low Power Idle Control", Ro, mask 0;
    /// EITR for MSI-X vector `n` (n = 0..4).
    regs EITR(EITR0, EITR1, EITR2, EITR3, EITR4) = fn eitr(u16) 0x000E8 step 4,
        "Extended Interrupt Throttle", Rw, mask 0x0000_FFFF, fields itr;

    // ---- Receive / transmit control -------------------------------------------------
    reg RCTL = 0x00100, "Receive Control", Rw, mask 0xFFFF_FFFF, fields rctl;
    reg TCTL = 0x00400, "Transmit Control", Rw, mask 0xFFFF_FFFF, fields tctl;
    reg TIPG = 0x00410, "Transmit IPG", Rw, mask 0x3FFF_FFFF, reset 0x0060_2008, pattern 1, fields tipg;
    /// Adaptive IFS throttle (Linux e1000e `e1000e_reset_adaptive` writes it; the model
    /// sends back to back, so the value has no effect).
    reg AIT = 0x00458, "Adaptive IFS Throttle", Rw, mask 0x0000_FFFF;
    reg LEDCTL = 0x00E00, "LED Control", Rw, mask 0xFFFF_FFFF, reset 0x0706_8302;
    reg EXTCNF_CTRL = 0x00F00, "Extended Configuration Control", Rw, mask 0xFFFF_FFFF;
    /// PHY OEM bits (LPLU in D0 / non-D0; Linux e1000e `e1000_set_d0_lplu_state_82574`).
    reg POEMB = 0x00F10, "PHY OEM Bits", Rw, mask 0xFFFF_FFFF;
    /// Survives CTRL.RST.
    reg PBA = 0x01000, "Packet Buffer Allocation", Rw, mask 0xFFFF_FFFF, reset 0x0014_0014, fields pba;
    /// Survives CTRL.RST.
    reg PBS = 0x01008, "Packet Buffer Size", Rw, mask 0xFFFF_FFFF;
    /// Manageability EEPROM control: CFG_DONE for port 0 reads 1 (configuration done).
    reg EEMNGCTL = 0x01010, "MNG EEPROM Control", Ro, mask 0, reset 0x0004_0000;
    reg EEWR = 0x0102C, "EEPROM Write", Rw, mask 0xFFFF_FFFF, fields eerd;
    reg PSRCTL = 0x02170, "Packet Split Receive Control", Rw, mask 0xFFFF_FFFF, fields psrctl;
    /// Flow-control receive thresholds (Linux e1000e `e1000e_set_fc_watermarks`; the
    /// register test writes FCRTH with mask 0xFFF8).
    reg FCRTL = 0x02160, "Flow Control Receive Threshold Low", Rw, mask 0x8000_FFF8;
    reg FCRTH = 0x02168, "Flow Control Receive Threshold High", Rw, mask 0x0000_FFF8;

    // ---- Receive queues (q = 0, 1) --------------------------------------------------
    regs RDBAL(RDBAL0, RDBAL1) = fn rdbal(u32) 0x02800 step 0x100,
        "Receive Descriptor Base Address Low", Rw, mask 0xFFFF_FFF0, pattern 1;
    regs RDBAH(RDBAH0, RDBAH1) = fn rdbah(u32) 0x02804 step 0x100,
        "Receive Descriptor Base Address High", Rw, mask 0xFFFF_FFFF, pattern 1;
    regs RDLEN(RDLEN0, RDLEN1) = fn rdlen(u32) 0x02808 step 0x100,
        "Receive Descriptor Length", Rw, mask 0x000F_FF80, pattern 1, fields ring_len;
    regs RDH(RDH0, RDH1) = fn rdh(u32) 0x02810 step 0x100, "Receive Descriptor Head", Rw, mask 0x0000_FFFF, pattern 1;
    regs RDT(RDT0, RDT1) = fn rdt(u32) 0x02818 step 0x100, "Receive Descriptor Tail", Rw, mask 0x0000_FFFF, pattern 1;
    reg RDTR = 0x02820, "Receive Interrupt Packet Delay Timer", Rw, mask 0x0000_FFFF, pattern 1, fields delay;
    regs RXDCTL(RXDCTL0, RXDCTL1) = fn rxdctl(u32) 0x02828 step 0x100,
        "Receive Descriptor Control", Rw, mask 0xFFFF_FFFF, reset 0x0001_0000, fields rxdctl;
    reg RADV = 0x0282C, "Receive Interrupt Absolute Delay Timer", Rw, mask 0x0000_FFFF;
    reg RSRPD = 0x02C00, "Receive Small Packet Detect Interrupt", Rw, mask 0xFFFF_FFFF;
    reg RAID = 0x02C08, "Receive ACK Interrupt Delay", Rw, mask 0xFFFF_FFFF;

    // ---- Transmit queues (q = 0, 1) -------------------------------------------------
    regs TDBAL(TDBAL0, TDBAL1) = fn tdbal(u32) 0x03800 step 0x100,
        "Transmit Descriptor Base Address Low", Rw, mask 0xFFFF_FFF0, pattern 1;
    regs TDBAH(TDBAH0, TDBAH1) = fn tdbah(u32) 0x03804 step 0x100,
        "Transmit Descriptor Base Address High", Rw, mask 0xFFFF_FFFF, pattern 1;
    regs TDLEN(TDLEN0, TDLEN1) = fn tdlen(u32) 0x03808 step 0x100,
        "Transmit Descriptor Length", Rw, mask 0x000F_FF80, pattern 1, fields ring_len;
    regs TDH(TDH0, TDH1) = fn tdh(u32) 0x03810 step 0x100, "Transmit Descriptor Head", Rw, mask 0x0000_FFFF, pattern 1;
    regs TDT(TDT0, TDT1) = fn tdt(u32) 0x03818 step 0x100, "Transmit Descriptor Tail", Rw, mask 0x0000_FFFF, pattern 1;
    reg TIDV = 0x03820, "Transmit Interrupt Delay Value", Rw, mask 0x0000_FFFF, pattern 1, fields delay;
    regs TXDCTL(TXDCTL0, TXDCTL1) = fn txdctl(u32) 0x03828 step 0x100,
        "Transmit Descriptor Control", Rw, mask 0xFFFF_FFFF, reset 0x0001_0000, fields txdctl;
    reg TADV = 0x0382C, "Transmit Absolute Interrupt Delay Value", Rw, mask 0x0000_FFFF;
    regs TARC(TARC0, TARC1) = fn tarc(u32) 0x03840 step 0x100,
        "Transmit Arbitration Count", Rw, mask 0xFFFF_FFFF, reset 0x0000_0400, fields tarc;

    // ---- Statistics: read-to-clear; a 64-bit counter clears when its high half is read
    reg CRCERRS = 0x04000, "CRC Error Count", Rc, mask 0;
    reg ALGNERRC = 0x04004, "Alignment Error Count", Rc, mask 0;
    reg SYMERRS = 0x04008, "Symbol Error Count", Rc, mask 0;
    reg RXERRC = 0x0400C, "Receive Error Count", Rc, mask 0;
    reg MPC = 0x04010, "Missed Packets Count", Rc, mask 0;
    reg SCC = 0x04014, "Single Collision Count", Rc, mask 0;
    reg ECOL = 0x04018, "Excessive Collisions Count", Rc, mask 0;
    reg MCC = 0x0401C, "Multiple Collision Count", Rc, mask 0;
    reg LATECOL = 0x04020, "Late Collisions Count", Rc, mask 0;
    reg COLC = 0x04028, "Collision Count", Rc, mask 0;
    reg DC = 0x04030, "Defer Count", Rc, mask 0;
    reg TNCRS = 0x04034, "Transmit with No CRS", Rc, mask 0;
    reg SEC = 0x04038, "Sequence Error Count", Rc, mask 0;
    reg CEXTERR = 0x0403C, "Carrier Extension Error Count", Rc, mask 0;
    reg RLEC = 0x04040, "Receive Length Error Count", Rc, mask 0;
    reg XONRXC = 0x04048, "XON Received Count", Rc, mask 0;
    reg XONTXC = 0x0404C, "XON Transmitted Count", Rc, mask 0;
    reg XOFFRXC = 0x04050, "XOFF Received Count", Rc, mask 0;
    reg XOFFTXC = 0x04054, "XOFF Transmitted Count", Rc, mask 0;
    reg FCRUC = 0x04058, "FC Received Unsupported Count", Rc, mask 0;
    reg PRC64 = 0x0405C, "Packets Received (64 Bytes) Count", Rc, mask 0;
    reg PRC127 = 0x04060, "Packets Received (65-127 Bytes) Count", Rc, mask 0;
    reg PRC255 = 0x04064, "Packets Received (128-255 Bytes) Count", Rc, mask 0;
    reg PRC511 = 0x04068, "Packets Received (256-511 Bytes) Count", Rc, mask 0;
    reg PRC1023 = 0x0406C, "Packets Received (512-1023 Bytes) Count", Rc, mask 0;
    reg PRC1522 = 0x04070, "Packets Received (1024-Max Bytes) Count", Rc, mask 0;
    reg GPRC = 0x04074, "Good Packets Received Count", Rc, mask 0;
    reg BPRC = 0x04078, "Broadcast Packets Received Count", Rc, mask 0;
    reg MPRC = 0x0407C, "Multicast Packets Received Count", Rc, mask 0;
    reg GPTC = 0x04080, "Good Packets Transmitted Count", Rc, mask 0;
    /// Read without side effect; cleared with GORCH.
    reg GORCL = 0x04088, "Good Octets Received Count Low", Ro, mask 0;
    reg GORCH = 0x0408C, "Good Octets Received Count High", Rc, mask 0;
    /// Read without side effect; cleared with GOTCH.
    reg GOTCL = 0x04090, "Good Octets Transmitted Count Low", Ro, mask 0;
    reg GOTCH = 0x04094, "Good Octets Transmitted Count High", Rc, mask 0;
    reg RNBC = 0x040A0, "Receive No Buffers Count", Rc, mask 0;
    reg RUC = 0x040A4, "Receive Undersize Count", Rc, mask 0;
    reg RFC = 0x040A8, "Receive Fragment Count", Rc, mask 0;
    reg ROC = 0x040AC, "Receive Oversize Count", Rc, mask 0;
    reg RJC = 0x040B0, "Receive Jabber Count", Rc, mask 0;
    reg MGTPRC = 0x040B4, "Management Packets Received Count", Rc, mask 0;
    reg MGTPDC = 0x040B8, "Management Packets Dropped Count", Rc, mask 0;
    reg MGTPTC = 0x040BC, "Management Packets Transmitted Count", Rc, mask 0;
    /// Read without side effect; cleared with TORH.
    reg TORL = 0x040C0, "Total Octets Received Low", Ro, mask 0;
    reg TORH = 0x040C4, "Total Octets Received High", Rc, mask 0;
    /// Read without side effect; cleared with TOTH.
    reg TOTL = 0x040C8, "Total Octets Transmitted Low", Ro, mask 0;
    reg TOTH = 0x040CC, "Total Octets Transmitted High", Rc, mask 0;
    reg TPR = 0x040D0, "Total Packets Received", Rc, mask 0;
    reg TPT = 0x040D4, "Total Packets Transmitted", Rc, mask 0;
    reg PTC64 = 0x040D8, "Packets Transmitted (64 Bytes) Count", Rc, mask 0;
    reg PTC127 = 0x040DC, "Packets Transmitted (65-127 Bytes) Count", Rc, mask 0;
    reg PTC255 = 0x040E0, "Packets Transmitted (128-255 Bytes) Count", Rc, mask 0;
    reg PTC511 = 0x040E4, "Packets Transmitted (256-511 Bytes) Count", Rc, mask 0;
    reg PTC1023 = 0x040E8, "Packets Transmitted (512-1023 Bytes) Count", Rc, mask 0;
    reg PTC1522 = 0x040EC, "Packets Transmitted (1024-Max Bytes) Count", Rc, mask 0;
    reg MPTC = 0x040F0, "Multicast Packets Transmitted Count", Rc, mask 0;
    reg BPTC = 0x040F4, "Broadcast Packets Transmitted Count", Rc, mask 0;
    reg TSCTC = 0x040F8, "TCP Segmentation Context Transmitted Count", Rc, mask 0;
    reg TSCTFC = 0x040FC, "TCP Segmentation Context Transmit Fail Count", Rc, mask 0;
    reg IAC = 0x04100, "Interrupt Assertion Count", Rc, mask 0;
    reg ICRXPTC = 0x04104, "Interrupt Cause Rx Packet Timer Expire Count", Rc, mask 0;
    reg ICRXATC = 0x04108, "Interrupt Cause Rx Absolute Timer Expire Count", Rc, mask 0;
    reg ICTXPTC = 0x0410C, "Interrupt Cause Tx Packet Timer Expire Count", Rc, mask 0;
    reg ICTXATC = 0x04110, "Interrupt Cause Tx Absolute Timer Expire Count", Rc, mask 0;
    reg ICTXQEC = 0x04118, "Interrupt Cause Tx Queue Empty Count", Rc, mask 0;
    reg ICTXQMTC = 0x0411C, "Interrupt Cause Tx Queue Minimum Threshold Count", Rc, mask 0;
    reg ICRXDMTC = 0x04120, "Interrupt Cause Rx Descriptor Minimum Threshold Count", Rc, mask 0;
    reg ICRXOC = 0x04124, "Interrupt Cause Receiver Overrun Count", Rc, mask 0;

    // ---- Receive filtering and offloads ---------------------------------------------
    reg RXCSUM = 0x05000, "Receive Checksum Control", Rw, mask 0xFFFF_FFFF, reset 0x0000_0300, fields rxcsum;
    reg RFCTL = 0x05008, "Receive Filter Control", Rw, mask 0xFFFF_FFFF, fields rfctl;
    array MTA[MTA_LEN = 128, MTA_STRIDE = 4] = 0x05200, "Multicast Table Array", Rw, mask 0xFFFF_FFFF, pattern 2;
    /// Receive address low, entries 0..15 (entry 0 loaded from the EEPROM).
    regs RAL(RAL0, RAL1, RAL2, RAL3, RAL4, RAL5, RAL6, RAL7, RAL8, RAL9, RAL10, RAL11, RAL12, RAL13, RAL14, RAL15)
        = fn ral(u32) 0x05400 step 8, "Receive Address Low", Rw, mask 0xFFFF_FFFF, pattern 1;
    /// Receive address high, entries 0..15 (entry 0 loaded from the EEPROM).
    regs RAH(RAH0, RAH1, RAH2, RAH3, RAH4, RAH5, RAH6, RAH7, RAH8, RAH9, RAH10, RAH11, RAH12, RAH13, RAH14, RAH15)
        = fn rah(u32) 0x05404 step 8, "Receive Address High", Rw, mask 0x8003_FFFF, pattern 1, fields rah;
    array VFTA[VFTA_LEN = 128, VFTA_STRIDE = 4] = 0x05600, "VLAN Filter Table Array", Rw, mask 0xFFFF_FFFF;

    // ---- Wake-up, management, PCIe, semaphores ---------------------------------------
    reg WUC = 0x05800, "Wake Up Control", Rw, mask 0xFFFF_FFFF;
    reg WUFC = 0x05808, "Wake Up Filter Control", Rw, mask 0xFFFF_FFFF;
    /// Write-1-to-clear wake-up status (no wake event is ever recorded by the model).
    reg WUS = 0x05810, "Wake Up Status", W1c, mask 0xFFFF_FFFF;
    reg MRQC = 0x05818, "Multiple Receive Queues Command", Rw, mask 0xFFFF_FFFF, fields mrqc;
    reg MANC = 0x05820, "Management Control", Rw, mask 0xFFFF_FFFF;
    reg MANC2H = 0x05860, "Management Control To Host", Rw, mask 0xFFFF_FFFF;
    reg GCR = 0x05B00, "PCIe Control", Rw, mask 0xFFFF_FFFF;
    reg SWSM = 0x05B50, "Software Semaphore", Rw, mask 0xFFFF_FFFF, fields swsm;
    reg FWSM = 0x05B54, "Firmware Semaphore", Rw, mask 0xFFFF_FFFF;
    reg SW_FW_SYNC = 0x05B5C, "Software-Firmware Synchronization", Rw, mask 0xFFFF_FFFF;
    reg GCR2 = 0x05B64, "PCIe Control 2", Rw, mask 0xFFFF_FFFF;
    /// Writing 1 to bit n clears the MSI-X PBA bit of vector n.
    reg PBACLR = 0x05B68, "MSI-X PBA Clear", Rw, mask 0xFFFF_FFFF;

    // ---- Receive-side scaling ---------------------------------------------------------
    /// Redirection table: 128 one-byte entries, four per register, entry 4n in bits 7:0 of
    /// RETA\[n\]; bit 7 of an entry is the receive queue (QEMU `e1000x_regs.h`
    /// `E1000_RSS_QUEUE`: `(entry & BIT(7)) >> 7`), indexed by the hash's low 7 bits.
    array RETA[RETA_LEN = 32, RETA_STRIDE = 4] = 0x05C00, "Redirection Table", Rw, mask 0xFFFF_FFFF;
    /// RSS random key: 40 bytes, byte 4n in bits 7:0 of RSSRK\[n\] (the key as bytes in
    /// register order, as Linux e1000e `e1000e_setup_rss_hash` writes it).
    array RSSRK[RSSRK_LEN = 10, RSSRK_STRIDE = 4] = 0x05C80, "RSS Random Key", Rw, mask 0xFFFF_FFFF;

    // ---- IEEE 1588 time sync (Linux e1000e `e1000e_config_hwtstamp`, `e1000e_cc_read`)
    /// SYSTIM counts on the virtual clock: `ns * INCVALUE / (INCPERIOD * 16)`, as QEMU's
    /// `e1000x_timestamp` computes it; the model latches nothing.
    reg SYSTIML = 0x0B600, "System Time Low", Ro, mask 0;
    reg SYSTIMH = 0x0B604, "System Time High", Ro, mask 0;
    reg TIMINCA = 0x0B608, "Increment Attributes", Rw, mask 0xFFFF_FFFF, fields timinca;
    /// VALID (bit 0) is read-only: the model takes no timestamps, so it stays 0.
    reg TSYNCTXCTL = 0x0B614, "Tx Time Sync Control", Rw, mask 0x0000_0010;
    reg TXSTMPL = 0x0B618, "Tx Timestamp Low", Ro, mask 0;
    reg TXSTMPH = 0x0B61C, "Tx Timestamp High", Ro, mask 0;
    reg TSYNCRXCTL = 0x0B620, "Rx Time Sync Control", Rw, mask 0x0000_003E;
    reg RXSTMPL = 0x0B624, "Rx Timestamp Low", Ro, mask 0;
    reg RXSTMPH = 0x0B628, "Rx Timestamp High", Ro, mask 0;
    reg RXMTRL = 0x0B634, "Rx Time Sync Message Type", Rw, mask 0xFFFF_FFFF;
    reg RXUDP = 0x0B638, "Rx Time Sync UDP Port", Rw, mask 0x0000_FFFF;
}

/// The register instance at BAR0 `offset`.
pub fn register(offset: u32) -> Option<Found> {
    regs::by_offset(REGISTERS, offset)
}

/// The register instance called `name` (`CTRL`, `RDT0`, `MTA[3]`).
pub fn register_named(name: &str) -> Option<Found> {
    regs::by_name(REGISTERS, name)
}

/// Every register instance with a name of its own — single registers and the named
/// instances of small arrays (`EITR4`, `RAL0`), not the MTA/VFTA ranges — in table order,
/// as (offset, name).
pub fn named_registers() -> &'static [(u32, &'static str)] {
    static NAMED: std::sync::OnceLock<Vec<(u32, &'static str)>> = std::sync::OnceLock::new();
    NAMED.get_or_init(|| {
        REGISTERS
            .iter()
            .filter(|d| !matches!(d.shape, regs::Shape::Indexed { .. }))
            .flat_map(|d| d.instances().map(move |(i, o)| (o, d.static_name(i))))
            .collect()
    })
}

/// Datasheet name of a BAR0 register offset, for messages: the register's name, an
/// array instance's own name (`EITR4`, `RAL0`), or `MTA[]` / `VFTA[]` inside those arrays.
pub fn reg_name(offset: u32) -> Option<&'static str> {
    register(offset).map(|f| f.static_name())
}

pub const RAH_AV: u32 = rah::AV.mask();
pub const STATUS_SPEED_SHIFT: u32 = status::SPEED.shift();
pub const STATUS_SPEED_1000: u32 = 0b10;

impl Icr {
    /// Causes that, under MSI-X, reach a vector only through ICR.OTHER.
    pub const OTHER_CAUSES: Icr =
        Icr::LSC.union(Icr::RXO).union(Icr::MDAC).union(Icr::SRPD).union(Icr::ACK).union(Icr::MNG);
    /// The five causes IVAR routes to MSI-X vectors.
    pub const MSIX_ROUTED: Icr = Icr::RXQ0.union(Icr::RXQ1).union(Icr::TXQ0).union(Icr::TXQ1).union(Icr::OTHER);
    /// Bits IMS keeps of a write (0x01F782D7).
    pub const IMS_VALID: Icr = Icr::TXDW
        .union(Icr::TXQE)
        .union(Icr::LSC)
        .union(Icr::RXDMT0)
        .union(Icr::RXO)
        .union(Icr::RXT0)
        .union(Icr::MDAC)
        .union(Icr::TXD_LOW)
        .union(Icr::SRPD)
        .union(Icr::ACK)
        .union(Icr::MNG)
        .union(Icr::MSIX_ROUTED);
}

/// One of the five IVAR entries. The discriminant is the entry index (bit position / 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IvarEntry {
    RxQ0 = 0,
    RxQ1 = 1,
    TxQ0 = 2,
    TxQ1 = 3,
    Other = 4,
}

impl IvarEntry {
    pub const ALL: [IvarEntry; 5] =
        [IvarEntry::RxQ0, IvarEntry::RxQ1, IvarEntry::TxQ0, IvarEntry::TxQ1, IvarEntry::Other];

    pub const fn index(self) -> u32 {
        self as u32
    }

    pub const fn from_index(i: u32) -> Option<IvarEntry> {
        match i {
            0 => Some(IvarEntry::RxQ0),
            1 => Some(IvarEntry::RxQ1),
            2 => Some(IvarEntry::TxQ0),
            3 => Some(IvarEntry::TxQ1),
            4 => Some(IvarEntry::Other),
            _ => None,
        }
    }

    /// Bit shift of this entry's nibble inside IVAR.
    pub const fn shift(self) -> u32 {
        4 * self as u32
    }

    /// The ICR cause this entry routes.
    pub const fn cause(self) -> Icr {
        match self {
            IvarEntry::RxQ0 => Icr::RXQ0,
            IvarEntry::RxQ1 => Icr::RXQ1,
            IvarEntry::TxQ0 => Icr::TXQ0,
            IvarEntry::TxQ1 => Icr::TXQ1,
            IvarEntry::Other => Icr::OTHER,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            IvarEntry::RxQ0 => "RxQ0",
            IvarEntry::RxQ1 => "RxQ1",
            IvarEntry::TxQ0 => "TxQ0",
            IvarEntry::TxQ1 => "TxQ1",
            IvarEntry::Other => "Other",
        }
    }
}

impl std::fmt::Display for IvarEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// IVAR entry: bits 2:0 MSI-X vector, bit 3 valid.
pub const IVAR_VECTOR_MASK: u32 = 0x7;
pub const IVAR_INT_ALLOC_VALID: u32 = 0x8;
/// IVAR bit 31: TX interrupt on every descriptor write-back.
pub const IVAR_TX_INT_EVERY_WB: u32 = ivar::TX_INT_EVERY_WB.mask();

/// Decode one IVAR entry: `Some(vector)` when valid.
pub const fn ivar_vector(ivar: u32, entry: IvarEntry) -> Option<u16> {
    let nib = (ivar >> entry.shift()) & 0xF;
    if nib & IVAR_INT_ALLOC_VALID != 0 { Some((nib & IVAR_VECTOR_MASK) as u16) } else { None }
}

/// Encode one valid IVAR entry routing `entry` to `vector`.
pub const fn ivar_entry(entry: IvarEntry, vector: u16) -> u32 {
    ((vector as u32 & IVAR_VECTOR_MASK) | IVAR_INT_ALLOC_VALID) << entry.shift()
}

/// EERD (82574 layout).
pub const EERD_START: u32 = eerd::START.mask();
pub const EERD_DONE: u32 = eerd::DONE.mask();
pub const EERD_ADDR_SHIFT: u32 = eerd::ADDR.shift();
pub const EERD_ADDR_MASK: u32 = eerd::ADDR.mask() >> EERD_ADDR_SHIFT;
pub const EERD_DATA_SHIFT: u32 = eerd::DATA.shift();
/// EEPROM words 0..=2 hold the MAC address; words 0..=0x3F sum to this.
pub const EEPROM_CHECKSUM_WORD: u16 = 0x3F;
pub const EEPROM_SUM: u16 = 0xBABA;
pub const EEPROM_WORDS: usize = 64;

/// MDIC (PHY access).
pub const MDIC_DATA_MASK: u32 = mdic::DATA.mask();
pub const MDIC_REGADD_SHIFT: u32 = mdic::REGADD.shift();
pub const MDIC_PHYADD_SHIFT: u32 = mdic::PHYADD.shift();
pub const MDIC_OP_WRITE: u32 = mdic::OP_WRITE.mask();
pub const MDIC_OP_READ: u32 = mdic::OP_READ.mask();
pub const MDIC_READY: u32 = mdic::READY.mask();
pub const MDIC_INT_EN: u32 = mdic::INT_EN.mask();
pub const MDIC_ERROR: u32 = mdic::ERROR.mask();
/// The internal PHY answers at address 1.
pub const PHY_ADDR: u32 = 1;

/// PHY registers (IEEE 802.3 clause 22).
pub const PHY_CTRL: u32 = 0;
pub const PHY_STATUS: u32 = 1;
pub const PHY_ID1: u32 = 2;
pub const PHY_ID2: u32 = 3;
pub const PHY_STATUS_LINK_UP: u16 = 1 << 2;
/// PHY control (BMCR, IEEE 802.3 clause 22) bits: reset (self-clearing), auto-negotiation
/// enable, restart auto-negotiation (self-clearing).
pub const PHY_CTRL_RESET: u16 = 1 << 15;
pub const PHY_CTRL_AUTONEG_ENABLE: u16 = 1 << 12;
pub const PHY_CTRL_RESTART_AUTONEG: u16 = 1 << 9;
pub const PHY_STATUS_AUTONEG_COMPLETE: u16 = 1 << 5;
/// BME1000 PHY identifier (ID1, ID2).
pub const PHY_ID: (u16, u16) = (0x0141, 0x0CB1);
/// Clause-22 registers past the identifier (IEEE 802.3 clause 22; Linux `mii.h` names
/// them ADVERTISE, LPA, EXPANSION, CTRL1000, STAT1000, ESTATUS).
pub const PHY_AUTONEG_ADV: u32 = 4;
pub const PHY_LP_ABILITY: u32 = 5;
pub const PHY_AUTONEG_EXP: u32 = 6;
pub const PHY_NEXT_PAGE_TX: u32 = 7;
pub const PHY_LP_NEXT_PAGE: u32 = 8;
pub const PHY_1000T_CTRL: u32 = 9;
pub const PHY_1000T_STATUS: u32 = 10;
pub const PHY_EXT_STATUS: u32 = 15;
/// BMCR power down and loopback.
pub const PHY_CTRL_POWER_DOWN: u16 = 1 << 11;
pub const PHY_CTRL_LOOPBACK: u16 = 1 << 14;
/// The BM PHY's page select register; registers above 15 are per page (Linux e1000e
/// `phy.c` `e1000e_read_phy_reg_bm2`: `BM_PHY_PAGE_SELECT` 22, `MAX_PHY_MULTI_PAGE_REG`
/// 0xF; the page number is written unshifted).
pub const PHY_PAGE_SELECT: u32 = 22;
pub const PHY_MAX_UNPAGED: u32 = 15;
/// Page-0 registers of the M88-style BM PHY (Linux e1000e `phy.h`/`defines.h`:
/// `M88E1000_PHY_SPEC_CTRL` 0x10, `M88E1000_PHY_SPEC_STATUS` 0x11,
/// `E1000_RECEIVE_ERROR_COUNTER` 0x15, `IGP02E1000_PHY_POWER_MGMT` 0x19).
pub const PHY_SPEC_CTRL: u32 = 16;
pub const PHY_SPEC_STATUS: u32 = 17;
pub const PHY_RX_ERROR_COUNTER: u32 = 21;
pub const PHY_POWER_MGMT: u32 = 25;
/// PHY specific status bits (`M88E1000_PSSR_*`): speed 1000 (15:14 = 10), full duplex,
/// speed and duplex resolved, real-time link.
pub const PHY_SSR_SPEED_1000: u16 = 0x8000;
pub const PHY_SSR_FULL_DUPLEX: u16 = 0x2000;
pub const PHY_SSR_RESOLVED: u16 = 0x0800;
pub const PHY_SSR_LINK: u16 = 0x0400;
/// Pages whose registers 16..31 Linux e1000e touches on an 82574: 0, 2 (MAC interface
/// speed, register 21), 769 and 776 (loopback test: force duplex and link, early link).
pub const PHY_PAGES: [u16; 4] = [0, 2, 769, 776];

/// RCTL bits.
pub const RCTL_EN: u32 = rctl::EN.mask();
pub const RCTL_SBP: u32 = rctl::SBP.mask();
pub const RCTL_UPE: u32 = rctl::UPE.mask();
pub const RCTL_MPE: u32 = rctl::MPE.mask();
pub const RCTL_LPE: u32 = rctl::LPE.mask();
pub const RCTL_LBM_SHIFT: u32 = rctl::LBM.shift();
pub const RCTL_LBM_MAC: u32 = 0b01 << RCTL_LBM_SHIFT;
pub const RCTL_RDMTS_SHIFT: u32 = rctl::RDMTS.shift();
pub const RCTL_DTYP_SHIFT: u32 = rctl::DTYP.shift();
/// RCTL.DTYP = 01: packet-split receive descriptors (with RFCTL.EXTEN).
pub const RCTL_DTYP_PS: u32 = 0b01 << RCTL_DTYP_SHIFT;
/// PSRCTL buffer sizes: BSIZE0 bits 6:0 in 128-byte units, BSIZE1-3 bits 13:8, 21:16,
/// 29:24 in KiB.
pub const PSRCTL_BSIZE0_UNIT: usize = 128;
pub const PSRCTL_BSIZE1_SHIFT: u32 = psrctl::BSIZE1.shift();
pub const RCTL_BAM: u32 = rctl::BAM.mask();
pub const RCTL_BSIZE_SHIFT: u32 = rctl::BSIZE.shift();
pub const RCTL_BSEX: u32 = rctl::BSEX.mask();
pub const RCTL_SECRC: u32 = rctl::SECRC.mask();
/// TCTL bits.
pub const TCTL_EN: u32 = tctl::EN.mask();
pub const TCTL_PSP: u32 = tctl::PSP.mask();
/// RFCTL bits.
pub const RFCTL_ACK_DIS: u32 = rfctl::ACK_DIS.mask();
pub const RFCTL_EXTEN: u32 = rfctl::EXTEN.mask();
pub const RFCTL_IPV6_DIS: u32 = rfctl::IPV6_DIS.mask();
pub const RFCTL_IPV6_EX_DIS: u32 = rfctl::IPV6_EX_DIS.mask();
pub const RFCTL_NEW_IPV6_EXT_DIS: u32 = rfctl::NEW_IPV6_EXT_DIS.mask();
/// RXCSUM.PCSD: the extended write-back carries the RSS hash instead of IP ID/checksum.
pub const RXCSUM_PCSD: u32 = rxcsum::PCSD.mask();

/// TARC: transmit queue enable, arbitration count.
pub const TARC_ENABLE: u32 = tarc::ENABLE.mask();
pub const TARC_COUNT_MASK: u32 = tarc::COUNT.mask();

/// Number of receive and transmit queues.
pub const QUEUES: u32 = 2;

/// MRQC.MRQE = 01: RSS (multiple receive queues by hash).
pub const MRQC_MRQE_RSS: u32 = 0b01;
pub const MRQC_MRQE_MASK: u32 = mrqc::MRQE.mask();
pub const MRQC_TCP_IPV4: u32 = mrqc::TCP_IPV4.mask();
pub const MRQC_IPV4: u32 = mrqc::IPV4.mask();
pub const MRQC_TCP_IPV6: u32 = mrqc::TCP_IPV6.mask();
pub const MRQC_IPV6_EX: u32 = mrqc::IPV6_EX.mask();
pub const MRQC_IPV6: u32 = mrqc::IPV6.mask();
/// Bytes of the RSS key (RSSRK0..9).
pub const RSS_KEY_LEN: usize = 40;
/// Entries of the redirection table (one byte each) and the hash bits that index it.
pub const RETA_ENTRIES: usize = 128;
pub const RETA_INDEX_MASK: u32 = RETA_ENTRIES as u32 - 1;
/// Bit of a RETA entry that selects the queue.
pub const RETA_QUEUE_BIT: u8 = 0x80;

/// RSS type written in the extended write-back's MRQ dword (bits 3:0), as QEMU's e1000e
/// numbers them (`E1000_MRQ_RSS_TYPE_*` in `e1000x_regs.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RssType {
    None = 0,
    Ipv4Tcp = 1,
    Ipv4 = 2,
    Ipv6Tcp = 3,
    Ipv6Ex = 4,
    Ipv6 = 5,
}

/// Extended write-back MRQ dword: RSS type bits 3:0, queue bits 12:8 (QEMU
/// `e1000e_build_rx_metadata`: `type | queue << 8`).
pub const MRQ_QUEUE_SHIFT: u32 = 8;

/// One register of the ethtool-style pattern test: offset, name, and the bits that are
/// writable (read back what was written) on the 82574L.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternReg {
    pub offset: u32,
    pub name: &'static str,
    pub mask: u32,
}

/// Registers the register pattern test touches, in table order, with their writable
/// masks: the [`REGISTERS`] entries flagged for the test (Linux e1000e `e1000_reg_test`
/// uses the same set and masks), the first `pattern` instances of each.
pub fn pattern_regs() -> impl Iterator<Item = PatternReg> {
    REGISTERS.iter().flat_map(|d| {
        d.instances().take(d.pattern as usize).map(move |(i, offset)| PatternReg {
            offset,
            name: d.static_name(i),
            mask: d.mask,
        })
    })
}

/// The patterns written by the register test, in order.
pub const PATTERNS: [u32; 4] = [0x5A5A_5A5A, 0xA5A5_A5A5, 0x0000_0000, 0xFFFF_FFFF];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivar_encoding_matches_linux_value() {
        let v = ivar_entry(IvarEntry::RxQ0, 0)
            | ivar_entry(IvarEntry::TxQ0, 1)
            | ivar_entry(IvarEntry::Other, 2)
            | IVAR_TX_INT_EVERY_WB;
        assert_eq!(v, 0x800A_0908);
        assert_eq!(ivar_vector(v, IvarEntry::TxQ0), Some(1));
        assert_eq!(ivar_vector(v, IvarEntry::RxQ1), None);
    }

    #[test]
    fn cause_masks_match_datasheet_values() {
        assert_eq!(Icr::OTHER_CAUSES.bits(), 0x0007_0244);
        assert_eq!(Icr::IMS_VALID.bits(), 0x01F7_82D7);
        assert_eq!(Icr::MSIX_ROUTED.bits(), 0x01F0_0000);
    }

    #[test]
    fn register_names_resolve() {
        assert_eq!(reg_name(FCAL), Some("FCAL"));
        assert_eq!(reg_name(eitr(4)), Some("EITR4"));
        assert_eq!(reg_name(MTA + 8), Some("MTA[]"));
        assert_eq!(reg_name(ral(3)), Some("RAL3"));
        assert_eq!(reg_name(VFTA + 4 * (VFTA_LEN - 1)), Some("VFTA[]"));
        assert_eq!(reg_name(VFTA - 4), None);
        assert_eq!(reg_name(0x7FFC), None);
        assert_eq!(reg_name(CTRL + 2), None);
    }
}
