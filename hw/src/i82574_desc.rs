//! 82574L descriptor formats (all 16 bytes, little-endian), as `zerocopy` types shared by the
//! device model and the driver. Layouts: datasheet §3.2/§3.3 as Linux e1000e (`hw.h`) and
//! QEMU (`e1000x_regs.h`) declare them; see `shared/reference/i82574.md` §4.
//!
//! Transmit: one 16-byte slot is decoded by its `DEXT` bit (bit 29 of dword 2) and `DTYP`
//! (bits 23:20): `DEXT = 0` legacy, `DEXT = 1, DTYP = 0000` context, `DEXT = 1, DTYP = 0001`
//! data. [`TxDesc`] is the raw slot; [`TxDesc::kind`] decodes it, and the typed views
//! ([`LegacyTxDesc`], [`TxContextDesc`], [`TxDataDesc`]) convert from it without copying
//! logic of their own.
//!
//! Receive: legacy ([`LegacyRxDesc`], RFCTL.EXTEN = 0) or extended (RFCTL.EXTEN = 1): the
//! driver posts [`ExtRxRead`], the device overwrites the slot with [`ExtRxWb`].

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Size of every 82574L descriptor except packet split.
pub const DESC_LEN: usize = 16;
/// Ring lengths (xDLEN) are multiples of this many bytes (8 descriptors).
pub const RING_LEN_ALIGN: u32 = 128;
/// Ring bases (xDBAL) are 16-byte aligned.
pub const RING_BASE_ALIGN: u64 = 16;
/// Largest frame the 82574L accepts with RCTL.LPE (Linux `e1000_82574_info.max_hw_frame_size`,
/// DEFAULT_JUMBO = 9234 bytes including FCS).
pub const MAX_JUMBO_FRAME: usize = 9234;
/// Longest frame without LPE: 1518 + 4 bytes of VLAN tag (QEMU `e1000x_is_oversized`).
pub const MAX_STD_FRAME: usize = 1522;
/// Shortest frame on the wire without FCS; shorter frames are padded (counted RUC by QEMU).
pub const MIN_FRAME: usize = 60;
/// Length of the Ethernet FCS the device appends unless RCTL.SECRC strips it.
pub const FCS_LEN: usize = 4;
/// Largest TX data length one descriptor can carry (legacy length field is 16 bits; the
/// data descriptor's DTALEN is 20 bits).
pub const MAX_TX_LEGACY_LEN: usize = 0xFFFF;

// ---- transmit -----------------------------------------------------------------------------

/// Raw 16-byte TX descriptor slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TxDesc {
    /// Buffer address (legacy/data), or the packed IP/TCP checksum fields (context).
    pub addr: U64,
    /// Dword 2: length/CSO/CMD (legacy), DTALEN/DTYP/DCMD (data), PAYLEN/DTYP/TUCMD (context).
    pub lower: U32,
    /// Dword 3: STA/CSS/special (legacy), STA/POPTS/VLAN (data), STA/HDRLEN/MSS (context).
    pub upper: U32,
}

/// Command bits of dword 2 (legacy CMD byte = bits 31:24; same positions as DCMD/TUCMD).
pub const TXD_CMD_EOP: u32 = 1 << 24;
pub const TXD_CMD_IFCS: u32 = 1 << 25;
pub const TXD_CMD_IC: u32 = 1 << 26;
pub const TXD_CMD_TSE: u32 = 1 << 26;
pub const TXD_CMD_RS: u32 = 1 << 27;
/// Legacy only: report packet sent (historic; treated as RS).
pub const TXD_CMD_RPS: u32 = 1 << 28;
pub const TXD_CMD_DEXT: u32 = 1 << 29;
pub const TXD_CMD_VLE: u32 = 1 << 30;
pub const TXD_CMD_IDE: u32 = 1 << 31;
/// Context: TUCMD.TCP (bit 24) and TUCMD.IP (bit 25, IPv4).
pub const TXD_CMD_TCP: u32 = 1 << 24;
pub const TXD_CMD_IP: u32 = 1 << 25;
/// DTYP field of dword 2.
pub const TXD_DTYP_MASK: u32 = 0xF << 20;
pub const TXD_DTYP_CONTEXT: u32 = 0x0 << 20;
pub const TXD_DTYP_DATA: u32 = 0x1 << 20;
/// Data descriptor DTALEN (19:0); legacy length (15:0).
pub const TXD_DTALEN_MASK: u32 = 0x000F_FFFF;
/// Status bits of dword 3 (STA, bits 3:0).
pub const TXD_STAT_DD: u32 = 1 << 0;
pub const TXD_STAT_EC: u32 = 1 << 1;
pub const TXD_STAT_LC: u32 = 1 << 2;
pub const TXD_STAT_TU: u32 = 1 << 3;
/// Data descriptor POPTS (dword 3 bits 15:8): insert IP checksum, insert TCP/UDP checksum.
pub const TXD_POPTS_IXSM: u32 = 1 << 8;
pub const TXD_POPTS_TXSM: u32 = 1 << 9;
/// Byte offset of the status byte inside a TX descriptor (written last on write-back).
pub const TXD_STATUS_OFFSET: usize = 12;

/// Which format a TX slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    Legacy,
    Context,
    Data,
    /// DEXT set with a DTYP other than context/data: reserved.
    Reserved(u8),
}

impl TxDesc {
    pub fn kind(&self) -> TxKind {
        let l = self.lower.get();
        if l & TXD_CMD_DEXT == 0 {
            return TxKind::Legacy;
        }
        match l & TXD_DTYP_MASK {
            TXD_DTYP_CONTEXT => TxKind::Context,
            TXD_DTYP_DATA => TxKind::Data,
            d => TxKind::Reserved((d >> 20) as u8),
        }
    }

    /// Command bits (legacy CMD / DCMD / TUCMD), in their dword-2 positions.
    pub fn cmd(&self) -> u32 {
        self.lower.get() & 0xFF00_0000
    }

    pub fn dd(&self) -> bool {
        self.upper.get() & TXD_STAT_DD != 0
    }

    /// A legacy descriptor sending `len` bytes at `addr`.
    pub fn legacy(addr: u64, len: u16, cmd: u32) -> TxDesc {
        TxDesc {
            addr: U64::new(addr),
            lower: U32::new((cmd & 0xFF00_0000 & !TXD_CMD_DEXT) | len as u32),
            upper: 0.into(),
        }
    }

    /// A data descriptor (DEXT, DTYP = data) sending `len` bytes at `addr` with `popts`.
    pub fn data(addr: u64, len: u32, dcmd: u32, popts: u32) -> TxDesc {
        TxDesc {
            addr: U64::new(addr),
            lower: U32::new((dcmd & 0xFF00_0000) | TXD_CMD_DEXT | TXD_DTYP_DATA | (len & TXD_DTALEN_MASK)),
            upper: U32::new(popts & 0xFF00),
        }
    }

    pub fn as_legacy(&self) -> LegacyTxDesc {
        zerocopy::transmute!(*self)
    }

    pub fn as_context(&self) -> TxContextDesc {
        zerocopy::transmute!(*self)
    }

    pub fn as_data(&self) -> TxDataDesc {
        zerocopy::transmute!(*self)
    }
}

/// Legacy TX descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct LegacyTxDesc {
    pub buffer_addr: U64,
    pub length: U16,
    /// Checksum offset: where to insert the checksum (with CMD.IC).
    pub cso: u8,
    /// CMD: EOP b0, IFCS b1, IC b2, RS b3, RPS b4, DEXT b5 (0), VLE b6, IDE b7.
    pub cmd: u8,
    /// STA: DD b0, EC b1, LC b2, TU b3.
    pub status: u8,
    /// Checksum start.
    pub css: u8,
    pub special: U16,
}

/// TX context descriptor (DEXT = 1, DTYP = 0000): checksum offload parameters applying to
/// the data descriptors that follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TxContextDesc {
    /// IP checksum start, offset (where to write), end (inclusive; 0 = end of packet).
    pub ipcss: u8,
    pub ipcso: u8,
    pub ipcse: U16,
    /// TCP/UDP checksum start, offset, end.
    pub tucss: u8,
    pub tucso: u8,
    pub tucse: U16,
    /// PAYLEN 19:0, DTYP 23:20, TUCMD 31:24.
    pub cmd_and_length: U32,
    pub status: u8,
    pub hdr_len: u8,
    pub mss: U16,
}

/// TX data descriptor (DEXT = 1, DTYP = 0001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TxDataDesc {
    pub buffer_addr: U64,
    /// DTALEN 19:0, DTYP 23:20, DCMD 31:24.
    pub lower: U32,
    /// STA 3:0, POPTS 15:8, VLAN 31:16.
    pub upper: U32,
}

// ---- receive ------------------------------------------------------------------------------

/// Status bits (legacy status byte; extended status_error bits 7:0 use the same positions).
pub const RXD_STAT_DD: u32 = 1 << 0;
pub const RXD_STAT_EOP: u32 = 1 << 1;
pub const RXD_STAT_IXSM: u32 = 1 << 2;
pub const RXD_STAT_VP: u32 = 1 << 3;
pub const RXD_STAT_UDPCS: u32 = 1 << 4;
pub const RXD_STAT_TCPCS: u32 = 1 << 5;
pub const RXD_STAT_IPCS: u32 = 1 << 6;
pub const RXD_STAT_PIF: u32 = 1 << 7;
/// Legacy errors byte.
pub const RXD_ERR_CE: u8 = 1 << 0;
pub const RXD_ERR_SE: u8 = 1 << 1;
pub const RXD_ERR_SEQ: u8 = 1 << 2;
pub const RXD_ERR_CXE: u8 = 1 << 4;
pub const RXD_ERR_TCPE: u8 = 1 << 5;
pub const RXD_ERR_IPE: u8 = 1 << 6;
pub const RXD_ERR_RXE: u8 = 1 << 7;
/// Extended write-back status_error: IPIDV b9, UDPV b10, ACK b15, errors in 31:24.
pub const RXDEXT_STAT_IPIDV: u32 = 1 << 9;
/// Extended write-back packet type, status bits 19:16 (QEMU `E1000_RXD_PKT_TYPE`): MAC
/// only, IPv4, IPv4 with TCP/UDP, IPv6, IPv6 with TCP/UDP.
pub const RXDEXT_PKT_TYPE_SHIFT: u32 = 16;
pub const RXD_PKT_MAC: u32 = 0;
pub const RXD_PKT_IP4: u32 = 1;
pub const RXD_PKT_IP4_XDP: u32 = 2;
pub const RXD_PKT_IP6: u32 = 5;
pub const RXD_PKT_IP6_XDP: u32 = 6;
pub const RXDEXT_STAT_UDPV: u32 = 1 << 10;
pub const RXDEXT_STAT_ACK: u32 = 1 << 15;
pub const RXDEXT_ERR_CE: u32 = 1 << 24;
pub const RXDEXT_ERR_SE: u32 = 1 << 25;
pub const RXDEXT_ERR_SEQ: u32 = 1 << 26;
pub const RXDEXT_ERR_CXE: u32 = 1 << 28;
pub const RXDEXT_ERR_TCPE: u32 = 1 << 29;
pub const RXDEXT_ERR_IPE: u32 = 1 << 30;
pub const RXDEXT_ERR_RXE: u32 = 1 << 31;
/// Errors that make a frame bad (the driver drops it): CE, SE, SEQ, CXE, RXE.
pub const RXDEXT_ERR_FRAME_MASK: u32 = RXDEXT_ERR_CE | RXDEXT_ERR_SE | RXDEXT_ERR_SEQ | RXDEXT_ERR_CXE | RXDEXT_ERR_RXE;
/// Byte offset of the status byte (legacy) / status_error dword (extended), written last.
pub const RXD_LEGACY_STATUS_OFFSET: usize = 12;
pub const RXD_EXT_STATUS_OFFSET: usize = 8;

/// Legacy RX descriptor (read and write-back share the layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct LegacyRxDesc {
    pub buffer_addr: U64,
    pub length: U16,
    /// Packet checksum.
    pub csum: U16,
    pub status: u8,
    pub errors: u8,
    pub special: U16,
}

/// Extended RX descriptor, read format (what the driver posts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ExtRxRead {
    pub buffer_addr: U64,
    pub reserved: U64,
}

/// Extended RX descriptor, write-back format (what the device writes over the slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ExtRxWb {
    /// MRQ: RSS type 3:0, queue 12:8.
    pub mrq: U32,
    /// RSS hash, or IP ID 15:0 and packet checksum 31:16.
    pub rss_or_csum: U32,
    /// Status 19:0 (DD b0, EOP b1, ...), errors 31:24.
    pub status_error: U32,
    pub length: U16,
    pub vlan: U16,
}

impl ExtRxWb {
    pub fn dd(&self) -> bool {
        self.status_error.get() & RXD_STAT_DD != 0
    }

    pub fn eop(&self) -> bool {
        self.status_error.get() & RXD_STAT_EOP != 0
    }
}

/// RCTL.BSIZE/BSEX → receive buffer size in bytes (datasheet table; QEMU falls back to
/// 2048 for the reserved BSEX=1, BSIZE=00 combination).
pub const fn rx_buffer_size(rctl: u32) -> usize {
    let bsize = (rctl >> crate::i82574::RCTL_BSIZE_SHIFT) & 0b11;
    if rctl & crate::i82574::RCTL_BSEX != 0 {
        match bsize {
            0b01 => 16384,
            0b10 => 8192,
            0b11 => 4096,
            _ => 2048,
        }
    } else {
        match bsize {
            0b00 => 2048,
            0b01 => 1024,
            0b10 => 512,
            _ => 256,
        }
    }
}

/// RCTL bits selecting buffer size `size` (one of the table's values), or `None`.
pub const fn rctl_bsize_bits(size: usize) -> Option<u32> {
    let s = crate::i82574::RCTL_BSIZE_SHIFT;
    let bsex = crate::i82574::RCTL_BSEX;
    match size {
        2048 => Some(0),
        1024 => Some(0b01 << s),
        512 => Some(0b10 << s),
        256 => Some(0b11 << s),
        16384 => Some(bsex | 0b01 << s),
        8192 => Some(bsex | 0b10 << s),
        4096 => Some(bsex | 0b11 << s),
        _ => None,
    }
}

// ---- register values the datapath programs ------------------------------------------------

/// RXDCTL/TXDCTL as Linux e1000e programs them on the 82574 (FLAG2_DMA_BURST, e1000.h).
pub const RXDCTL_82574: u32 = 0x0104_0420;
pub const TXDCTL_82574: u32 = 0x0141_011F;
/// RXCSUM: IP and TCP/UDP checksum offload.
pub const RXCSUM_IPOFLD: u32 = 1 << 8;
pub const RXCSUM_TUOFLD: u32 = 1 << 9;
/// TCTL collision threshold (CT, bits 11:4) = 15 and full-duplex collision distance (COLD,
/// bits 21:12) = 63, the values Linux e1000e writes.
pub const TCTL_CT_DEFAULT: u32 = 0x0F << 4;
pub const TCTL_COLD_FD: u32 = 0x3F << 12;

const _: () = {
    assert!(size_of::<TxDesc>() == DESC_LEN);
    assert!(size_of::<LegacyTxDesc>() == DESC_LEN);
    assert!(size_of::<TxContextDesc>() == DESC_LEN);
    assert!(size_of::<TxDataDesc>() == DESC_LEN);
    assert!(size_of::<LegacyRxDesc>() == DESC_LEN);
    assert!(size_of::<ExtRxRead>() == DESC_LEN);
    assert!(size_of::<ExtRxWb>() == DESC_LEN);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qtest_tx_descriptor_decodes_as_data() {
        // QEMU's e1000e qtest writes lower = RS|EOP|DEXT|DTYP_D|64.
        let d = TxDesc::data(0x1000, 64, TXD_CMD_RS | TXD_CMD_EOP, 0);
        assert_eq!(d.lower.get(), 0x2910_0040);
        assert_eq!(d.kind(), TxKind::Data);
        assert_eq!(d.as_data().lower.get() & TXD_DTALEN_MASK, 64);
    }

    #[test]
    fn legacy_fields_sit_where_the_datasheet_puts_them() {
        let d = TxDesc::legacy(0x1122_3344_5566_7788, 1514, TXD_CMD_EOP | TXD_CMD_RS | TXD_CMD_IFCS);
        assert_eq!(d.kind(), TxKind::Legacy);
        let l = d.as_legacy();
        assert_eq!(l.length.get(), 1514);
        assert_eq!(l.cmd, 0b1011);
        let bytes = zerocopy::IntoBytes::as_bytes(&d);
        assert_eq!(bytes[0], 0x88);
        assert_eq!(bytes[11], 0b1011);
        let mut ctx = TxDesc { lower: U32::new(TXD_CMD_DEXT | TXD_CMD_IP), ..Default::default() };
        assert_eq!(ctx.kind(), TxKind::Context);
        ctx.lower = U32::new(TXD_CMD_DEXT | (3 << 20));
        assert_eq!(ctx.kind(), TxKind::Reserved(3));
    }

    #[test]
    fn extended_rx_write_back_layout() {
        let wb =
            ExtRxWb { status_error: U32::new(RXD_STAT_DD | RXD_STAT_EOP), length: U16::new(60), ..Default::default() };
        let b = zerocopy::IntoBytes::as_bytes(&wb);
        assert_eq!(b[RXD_EXT_STATUS_OFFSET], 3);
        assert_eq!(&b[12..14], &60u16.to_le_bytes());
        assert!(wb.dd() && wb.eop());
    }

    #[test]
    fn buffer_sizes_round_trip() {
        for s in [256, 512, 1024, 2048, 4096, 8192, 16384] {
            assert_eq!(rx_buffer_size(rctl_bsize_bits(s).unwrap()), s);
        }
        assert_eq!(rctl_bsize_bits(3000), None);
    }
}
