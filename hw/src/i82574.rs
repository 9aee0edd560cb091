//! Intel 82574L (PCI 8086:10D3): register offsets in BAR0, their bits, the MSI-X layout
//! in BAR3, EEPROM words and PHY registers. Offsets and names as the datasheet (and the
//! Linux e1000e / QEMU e1000e headers, which copy it) give them.

use bitflags::bitflags;

pub mod fields;

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

// ---- General ----------------------------------------------------------------------------
pub const CTRL: u32 = 0x00000;
pub const CTRL_DUP: u32 = 0x00004;
pub const STATUS: u32 = 0x00008;
pub const EECD: u32 = 0x00010;
pub const EERD: u32 = 0x00014;
pub const CTRL_EXT: u32 = 0x00018;
pub const MDIC: u32 = 0x00020;
pub const FCAL: u32 = 0x00028;
pub const FCAH: u32 = 0x0002C;
pub const FCT: u32 = 0x00030;
pub const VET: u32 = 0x00038;
pub const LEDCTL: u32 = 0x00E00;
pub const EXTCNF_CTRL: u32 = 0x00F00;
pub const PBA: u32 = 0x01000;
pub const PBS: u32 = 0x01008;
pub const EEWR: u32 = 0x0102C;
pub const GCR: u32 = 0x05B00;
pub const SWSM: u32 = 0x05B50;
pub const FWSM: u32 = 0x05B54;
pub const SW_FW_SYNC: u32 = 0x05B5C;
pub const GCR2: u32 = 0x05B64;
pub const PBACLR: u32 = 0x05B68;

// ---- Interrupts -------------------------------------------------------------------------
pub const ICR: u32 = 0x000C0;
pub const ITR: u32 = 0x000C4;
pub const ICS: u32 = 0x000C8;
pub const IMS: u32 = 0x000D0;
pub const IMC: u32 = 0x000D8;
/// Extended Interrupt Auto Clear (82574-specific address).
pub const EIAC: u32 = 0x000DC;
pub const IAM: u32 = 0x000E0;
pub const IVAR: u32 = 0x000E4;
/// EITR for MSI-X vector `n` (n = 0..4).
pub const fn eitr(n: u16) -> u32 {
    0x000E8 + 4 * n as u32
}

// ---- Receive ----------------------------------------------------------------------------
pub const RCTL: u32 = 0x00100;
pub const RDTR: u32 = 0x02820;
pub const RADV: u32 = 0x0282C;
pub const RSRPD: u32 = 0x02C00;
pub const RAID: u32 = 0x02C08;
pub const PSRCTL: u32 = 0x02170;
pub const RXCSUM: u32 = 0x05000;
pub const RFCTL: u32 = 0x05008;
pub const MTA: u32 = 0x05200;
pub const MTA_LEN: u32 = 128;
pub const VFTA: u32 = 0x05600;
pub const WUC: u32 = 0x05800;
pub const MRQC: u32 = 0x05818;
pub const MANC: u32 = 0x05820;
/// Receive address low/high, entries 0..15.
pub const fn ral(n: u32) -> u32 {
    0x05400 + 8 * n
}
pub const fn rah(n: u32) -> u32 {
    0x05404 + 8 * n
}
pub const RAH_AV: u32 = 1 << 31;

/// Receive queue `q` (0 or 1) registers.
pub const fn rdbal(q: u32) -> u32 {
    0x02800 + 0x100 * q
}
pub const fn rdbah(q: u32) -> u32 {
    0x02804 + 0x100 * q
}
pub const fn rdlen(q: u32) -> u32 {
    0x02808 + 0x100 * q
}
pub const fn rdh(q: u32) -> u32 {
    0x02810 + 0x100 * q
}
pub const fn rdt(q: u32) -> u32 {
    0x02818 + 0x100 * q
}
pub const fn rxdctl(q: u32) -> u32 {
    0x02828 + 0x100 * q
}

// ---- Transmit ---------------------------------------------------------------------------
pub const TCTL: u32 = 0x00400;
pub const TIPG: u32 = 0x00410;
pub const TIDV: u32 = 0x03820;
pub const TADV: u32 = 0x0382C;
pub const fn tdbal(q: u32) -> u32 {
    0x03800 + 0x100 * q
}
pub const fn tdbah(q: u32) -> u32 {
    0x03804 + 0x100 * q
}
pub const fn tdlen(q: u32) -> u32 {
    0x03808 + 0x100 * q
}
pub const fn tdh(q: u32) -> u32 {
    0x03810 + 0x100 * q
}
pub const fn tdt(q: u32) -> u32 {
    0x03818 + 0x100 * q
}
pub const fn txdctl(q: u32) -> u32 {
    0x03828 + 0x100 * q
}
pub const fn tarc(q: u32) -> u32 {
    0x03840 + 0x100 * q
}

// ---- Statistics (read-to-clear) ---------------------------------------------------------
pub const CRCERRS: u32 = 0x04000;
pub const MPC: u32 = 0x04010;
pub const GPRC: u32 = 0x04074;
pub const BPRC: u32 = 0x04078;
pub const MPRC: u32 = 0x0407C;
pub const GPTC: u32 = 0x04080;
pub const GORCL: u32 = 0x04088;
pub const GORCH: u32 = 0x0408C;
pub const GOTCL: u32 = 0x04090;
pub const GOTCH: u32 = 0x04094;
pub const RNBC: u32 = 0x040A0;
pub const RUC: u32 = 0x040A4;
pub const ROC: u32 = 0x040AC;
pub const TORL: u32 = 0x040C0;
pub const TORH: u32 = 0x040C4;
pub const TOTL: u32 = 0x040C8;
pub const TOTH: u32 = 0x040CC;
pub const TPR: u32 = 0x040D0;
pub const TPT: u32 = 0x040D4;
pub const MPTC: u32 = 0x040F0;
pub const BPTC: u32 = 0x040F4;
pub const TSCTC: u32 = 0x040F8;
pub const IAC: u32 = 0x04100;

bitflags! {
    /// CTRL (0x00000).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Ctrl: u32 {
        const FD = 1 << 0;
        const GIO_MASTER_DISABLE = 1 << 2;
        const LRST = 1 << 3;
        const ASDE = 1 << 5;
        const SLU = 1 << 6;
        const ILOS = 1 << 7;
        const SPD_SEL = 0b11 << 8;
        const FRCSPD = 1 << 11;
        const FRCDPX = 1 << 12;
        const SWDPIN0 = 1 << 18;
        const ADVD3WUC = 1 << 20;
        const RST = 1 << 26;
        const RFCE = 1 << 27;
        const TFCE = 1 << 28;
        const VME = 1 << 30;
        const PHY_RST = 1 << 31;
    }
}

bitflags! {
    /// STATUS (0x00008), read-only.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Status: u32 {
        const FD = 1 << 0;
        const LU = 1 << 1;
        const FUNC = 0b11 << 2;
        const TXOFF = 1 << 4;
        const SPEED = 0b11 << 6;
        /// ASDV = 1000 Mb/s; Linux reads it as LAN_INIT_DONE.
        const ASDV_1000 = 1 << 9;
        const PHYRA = 1 << 10;
        const GIO_MASTER_ENABLE = 1 << 19;
    }
}
pub const STATUS_SPEED_SHIFT: u32 = 6;
pub const STATUS_SPEED_1000: u32 = 0b10;

bitflags! {
    /// CTRL_EXT (0x00018).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct CtrlExt: u32 {
        const ASDCHK = 1 << 12;
        const EE_RST = 1 << 13;
        const SPD_BYPS = 1 << 15;
        const RO_DIS = 1 << 17;
        const DMA_DYN_CLK_EN = 1 << 19;
        const TXLSFLOW = 1 << 22;
        /// Extended Interrupt Auto Mask Enable: a routed MSI-X cause clears its IAM bit.
        const EIAME = 1 << 24;
        /// Interrupt Acknowledge Auto-Mask Enable.
        const IAME = 1 << 27;
        const DRV_LOAD = 1 << 28;
        const INT_TIMERS_CLEAR_ENA = 1 << 29;
        /// MSI-X PBA support: IMS writes clear the PBA bit of the mapped vector.
        const PBA_CLR = 1 << 31;
    }
}

bitflags! {
    /// Interrupt cause bits, shared by ICR, ICS, IMS, IMC, IAM and EIAC.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Icr: u32 {
        const TXDW = 1 << 0;
        const TXQE = 1 << 1;
        const LSC = 1 << 2;
        const RXSEQ = 1 << 3;
        const RXDMT0 = 1 << 4;
        const RXO = 1 << 6;
        const RXT0 = 1 << 7;
        const MDAC = 1 << 9;
        const TXD_LOW = 1 << 15;
        const SRPD = 1 << 16;
        const ACK = 1 << 17;
        const MNG = 1 << 18;
        const RXQ0 = 1 << 20;
        const RXQ1 = 1 << 21;
        const TXQ0 = 1 << 22;
        const TXQ1 = 1 << 23;
        const OTHER = 1 << 24;
        const INT_ASSERTED = 1 << 31;
    }
}

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
pub const IVAR_TX_INT_EVERY_WB: u32 = 1 << 31;

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
pub const EERD_START: u32 = 1 << 0;
pub const EERD_DONE: u32 = 1 << 1;
pub const EERD_ADDR_SHIFT: u32 = 2;
pub const EERD_ADDR_MASK: u32 = 0x3FFF;
pub const EERD_DATA_SHIFT: u32 = 16;
/// EEPROM words 0..=2 hold the MAC address; words 0..=0x3F sum to this.
pub const EEPROM_CHECKSUM_WORD: u16 = 0x3F;
pub const EEPROM_SUM: u16 = 0xBABA;
pub const EEPROM_WORDS: usize = 64;

/// MDIC (PHY access).
pub const MDIC_DATA_MASK: u32 = 0xFFFF;
pub const MDIC_REGADD_SHIFT: u32 = 16;
pub const MDIC_PHYADD_SHIFT: u32 = 21;
pub const MDIC_OP_WRITE: u32 = 1 << 26;
pub const MDIC_OP_READ: u32 = 1 << 27;
pub const MDIC_READY: u32 = 1 << 28;
pub const MDIC_INT_EN: u32 = 1 << 29;
pub const MDIC_ERROR: u32 = 1 << 30;
/// The internal PHY answers at address 1.
pub const PHY_ADDR: u32 = 1;

/// PHY registers (IEEE 802.3 clause 22).
pub const PHY_CTRL: u32 = 0;
pub const PHY_STATUS: u32 = 1;
pub const PHY_ID1: u32 = 2;
pub const PHY_ID2: u32 = 3;
pub const PHY_STATUS_LINK_UP: u16 = 1 << 2;
pub const PHY_STATUS_AUTONEG_COMPLETE: u16 = 1 << 5;
/// BME1000 PHY identifier (ID1, ID2).
pub const PHY_ID: (u16, u16) = (0x0141, 0x0CB1);

/// RCTL bits.
pub const RCTL_EN: u32 = 1 << 1;
pub const RCTL_SBP: u32 = 1 << 2;
pub const RCTL_UPE: u32 = 1 << 3;
pub const RCTL_MPE: u32 = 1 << 4;
pub const RCTL_LPE: u32 = 1 << 5;
pub const RCTL_LBM_SHIFT: u32 = 6;
pub const RCTL_LBM_MAC: u32 = 0b01 << 6;
pub const RCTL_RDMTS_SHIFT: u32 = 8;
pub const RCTL_DTYP_SHIFT: u32 = 10;
/// RCTL.DTYP = 01: packet-split receive descriptors (with RFCTL.EXTEN).
pub const RCTL_DTYP_PS: u32 = 0b01 << RCTL_DTYP_SHIFT;
/// PSRCTL buffer sizes: BSIZE0 bits 6:0 in 128-byte units, BSIZE1-3 bits 13:8, 21:16,
/// 29:24 in KiB.
pub const PSRCTL_BSIZE0_UNIT: usize = 128;
pub const PSRCTL_BSIZE1_SHIFT: u32 = 8;
pub const RCTL_BAM: u32 = 1 << 15;
pub const RCTL_BSIZE_SHIFT: u32 = 16;
pub const RCTL_BSEX: u32 = 1 << 25;
pub const RCTL_SECRC: u32 = 1 << 26;
/// TCTL bits.
pub const TCTL_EN: u32 = 1 << 1;
pub const TCTL_PSP: u32 = 1 << 3;
/// RFCTL bits.
pub const RFCTL_ACK_DIS: u32 = 1 << 12;
pub const RFCTL_EXTEN: u32 = 1 << 15;

/// One register of the ethtool-style pattern test: offset, name, and the bits that are
/// writable (read back what was written) on the 82574L.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternReg {
    pub offset: u32,
    pub name: &'static str,
    pub mask: u32,
}

/// Registers the register pattern test touches, in the order it touches them, with their
/// writable masks (Linux e1000e `e1000_reg_test` uses the same set and masks).
pub const PATTERN_REGS: &[PatternReg] = &[
    PatternReg { offset: FCAL, name: "FCAL", mask: 0xFFFF_FFFF },
    PatternReg { offset: FCAH, name: "FCAH", mask: 0x0000_FFFF },
    PatternReg { offset: FCT, name: "FCT", mask: 0x0000_FFFF },
    PatternReg { offset: VET, name: "VET", mask: 0x0000_FFFF },
    PatternReg { offset: rdbal(0), name: "RDBAL", mask: 0xFFFF_FFF0 },
    PatternReg { offset: rdbah(0), name: "RDBAH", mask: 0xFFFF_FFFF },
    PatternReg { offset: rdlen(0), name: "RDLEN", mask: 0x000F_FF80 },
    PatternReg { offset: rdh(0), name: "RDH", mask: 0x0000_FFFF },
    PatternReg { offset: rdt(0), name: "RDT", mask: 0x0000_FFFF },
    PatternReg { offset: RDTR, name: "RDTR", mask: 0x0000_FFFF },
    PatternReg { offset: tdbal(0), name: "TDBAL", mask: 0xFFFF_FFF0 },
    PatternReg { offset: tdbah(0), name: "TDBAH", mask: 0xFFFF_FFFF },
    PatternReg { offset: tdlen(0), name: "TDLEN", mask: 0x000F_FF80 },
    PatternReg { offset: tdh(0), name: "TDH", mask: 0x0000_FFFF },
    PatternReg { offset: tdt(0), name: "TDT", mask: 0x0000_FFFF },
    PatternReg { offset: TIDV, name: "TIDV", mask: 0x0000_FFFF },
    PatternReg { offset: TIPG, name: "TIPG", mask: 0x3FFF_FFFF },
    PatternReg { offset: ral(0), name: "RAL0", mask: 0xFFFF_FFFF },
    PatternReg { offset: rah(0), name: "RAH0", mask: 0x8003_FFFF },
    PatternReg { offset: MTA, name: "MTA[0]", mask: 0xFFFF_FFFF },
    PatternReg { offset: MTA + 4, name: "MTA[1]", mask: 0xFFFF_FFFF },
];

/// The patterns written by the register test, in order.
pub const PATTERNS: [u32; 4] = [0x5A5A_5A5A, 0xA5A5_A5A5, 0x0000_0000, 0xFFFF_FFFF];

/// Datasheet name of a BAR0 register offset, for messages and register dumps.
pub fn reg_name(offset: u32) -> Option<&'static str> {
    REG_NAMES.iter().find(|(o, _)| *o == offset).map(|(_, n)| *n).or_else(|| {
        if (MTA..MTA + 4 * MTA_LEN).contains(&offset) {
            Some("MTA[]")
        } else if (0x05400..0x05480).contains(&offset) {
            Some(if offset.is_multiple_of(8) { "RAL[]" } else { "RAH[]" })
        } else if (VFTA..VFTA + 0x200).contains(&offset) {
            Some("VFTA[]")
        } else {
            None
        }
    })
}

/// Named BAR0 registers (single instances; arrays are resolved by [`reg_name`]).
pub const REG_NAMES: &[(u32, &str)] = &[
    (CTRL, "CTRL"),
    (CTRL_DUP, "CTRL_DUP"),
    (STATUS, "STATUS"),
    (EECD, "EECD"),
    (EERD, "EERD"),
    (CTRL_EXT, "CTRL_EXT"),
    (MDIC, "MDIC"),
    (FCAL, "FCAL"),
    (FCAH, "FCAH"),
    (FCT, "FCT"),
    (VET, "VET"),
    (ICR, "ICR"),
    (ITR, "ITR"),
    (ICS, "ICS"),
    (IMS, "IMS"),
    (IMC, "IMC"),
    (EIAC, "EIAC"),
    (IAM, "IAM"),
    (IVAR, "IVAR"),
    (eitr(0), "EITR0"),
    (eitr(1), "EITR1"),
    (eitr(2), "EITR2"),
    (eitr(3), "EITR3"),
    (eitr(4), "EITR4"),
    (RCTL, "RCTL"),
    (TCTL, "TCTL"),
    (TIPG, "TIPG"),
    (LEDCTL, "LEDCTL"),
    (EXTCNF_CTRL, "EXTCNF_CTRL"),
    (PBA, "PBA"),
    (PBS, "PBS"),
    (EEWR, "EEWR"),
    (PSRCTL, "PSRCTL"),
    (rdbal(0), "RDBAL0"),
    (rdbah(0), "RDBAH0"),
    (rdlen(0), "RDLEN0"),
    (rdh(0), "RDH0"),
    (rdt(0), "RDT0"),
    (RDTR, "RDTR"),
    (rxdctl(0), "RXDCTL0"),
    (RADV, "RADV"),
    (rdbal(1), "RDBAL1"),
    (rdbah(1), "RDBAH1"),
    (rdlen(1), "RDLEN1"),
    (rdh(1), "RDH1"),
    (rdt(1), "RDT1"),
    (rxdctl(1), "RXDCTL1"),
    (RSRPD, "RSRPD"),
    (RAID, "RAID"),
    (tdbal(0), "TDBAL0"),
    (tdbah(0), "TDBAH0"),
    (tdlen(0), "TDLEN0"),
    (tdh(0), "TDH0"),
    (tdt(0), "TDT0"),
    (TIDV, "TIDV"),
    (txdctl(0), "TXDCTL0"),
    (TADV, "TADV"),
    (tarc(0), "TARC0"),
    (tdbal(1), "TDBAL1"),
    (tdbah(1), "TDBAH1"),
    (tdlen(1), "TDLEN1"),
    (tdh(1), "TDH1"),
    (tdt(1), "TDT1"),
    (txdctl(1), "TXDCTL1"),
    (tarc(1), "TARC1"),
    (CRCERRS, "CRCERRS"),
    (MPC, "MPC"),
    (GPRC, "GPRC"),
    (BPRC, "BPRC"),
    (MPRC, "MPRC"),
    (GPTC, "GPTC"),
    (GORCL, "GORCL"),
    (GORCH, "GORCH"),
    (GOTCL, "GOTCL"),
    (GOTCH, "GOTCH"),
    (RNBC, "RNBC"),
    (RUC, "RUC"),
    (ROC, "ROC"),
    (TORL, "TORL"),
    (TORH, "TORH"),
    (TOTL, "TOTL"),
    (TOTH, "TOTH"),
    (TPR, "TPR"),
    (TPT, "TPT"),
    (MPTC, "MPTC"),
    (BPTC, "BPTC"),
    (TSCTC, "TSCTC"),
    (IAC, "IAC"),
    (RXCSUM, "RXCSUM"),
    (RFCTL, "RFCTL"),
    (WUC, "WUC"),
    (MRQC, "MRQC"),
    (MANC, "MANC"),
    (GCR, "GCR"),
    (SWSM, "SWSM"),
    (FWSM, "FWSM"),
    (SW_FW_SYNC, "SW_FW_SYNC"),
    (GCR2, "GCR2"),
    (PBACLR, "PBACLR"),
];

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
        assert_eq!(reg_name(0x28), Some("FCAL"));
        assert_eq!(reg_name(eitr(4)), Some("EITR4"));
        assert_eq!(reg_name(MTA + 8), Some("MTA[]"));
        assert_eq!(reg_name(0x7FFC), None);
    }
}
