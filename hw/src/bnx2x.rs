//! Broadcom NetXtreme II (bnx2x) ring-level facts: ring geometry, buffer sizing by MTU, and
//! the descriptor/completion formats as `zerocopy` types (little-endian).
//!
//! Sources: Linux `drivers/net/ethernet/broadcom/bnx2x/bnx2x.h` (ring geometry, index
//! helpers, rx buffer sizing), `bnx2x_hsi.h` (BD and CQE layouts), `bnx2x_cmn.c`
//! (`bnx2x_start_xmit`, `bnx2x_set_rx_buf_size`, `bnx2x_mtu_allows_gro`); see
//! `shared/reference/rings-dma.md` §1. Fidelity: descriptor rings, not the whole chip.

use crate::regs::registers;
use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// PCI identity: Broadcom, BCM57810 (one of the bnx2x parts).
pub const PCI_VENDOR_BROADCOM: u16 = 0x14e4;
pub const PCI_DEVICE_57810: u16 = 0x168e;

/// Ring pages are 4 KiB (`BCM_PAGE_SIZE`).
pub const BCM_PAGE_SIZE: usize = 4096;

/// TX BDs: 16 bytes, 256 per page, the last one of each page is the next-page pointer.
pub const TX_BD_SIZE: usize = 16;
pub const TX_DESC_CNT: u16 = 256;
pub const NUM_TX_RINGS: u16 = 16;
pub const NEXT_PAGE_TX_DESC_CNT: u16 = 1;
/// Usable TX BDs (`MAX_TX_AVAIL`).
pub const MAX_TX_AVAIL: u16 = 4078;

/// RX BDs: 8 bytes, 512 per page; the last two slots hold a 16-byte next-page pointer.
pub const RX_BD_SIZE: usize = 8;
pub const RX_DESC_CNT: u16 = 512;
pub const NUM_RX_RINGS: u16 = 8;
pub const NEXT_PAGE_RX_DESC_CNT: u16 = 2;
/// Usable RX BDs (`MAX_RX_AVAIL`), shared between the rx queues of a port by default.
pub const MAX_RX_AVAIL: u16 = 4078;

/// SGEs (TPA pages): 8 bytes, 512 per page, two next-page slots, 2 pages.
pub const RX_SGE_CNT: u16 = 512;
pub const NUM_RX_SGE_PAGES: u16 = 2;
pub const NEXT_PAGE_SGE_DESC_CNT: u16 = 2;
pub const MAX_RX_SGE_CNT: u16 = 1020;

/// RCQ: 64-byte CQEs, 64 per page, the last one is the next-page pointer; 8 pages per RX BD
/// page (`CQE_BD_REL`).
pub const RCQ_CQE_SIZE: usize = 64;
pub const RCQ_DESC_CNT: u16 = 64;
pub const NEXT_PAGE_RCQ_DESC_CNT: u16 = 1;
pub const CQE_BD_REL: u16 = 8;
pub const NUM_RCQ_RINGS: u16 = NUM_RX_RINGS * CQE_BD_REL;

/// BDs the hardware fetches per packet at most (`MAX_FETCH_BD`).
pub const MAX_FETCH_BD: u16 = 13;
/// Rx copy-break at MTU > 1500 (`RX_COPY_THRESH`).
pub const RX_COPY_THRESH: u16 = 92;
/// TPA aggregations per queue on E1H/E2 (`MAX_AGG_QS`).
pub const MAX_AGG_QS: u16 = 64;
/// `ETH_OVERHEAD`: Ethernet header, VLAN tag, FCS and slack.
pub const ETH_OVERHEAD: u32 = 30;
pub const ETH_MAX_JUMBO_PACKET_SIZE: u32 = 9600;
pub const ETH_MAX_TPA_HEADER_SIZE: u32 = 72;
/// `MAX_SKB_FRAGS` with 4 KiB pages.
pub const MAX_SKB_FRAGS: u32 = 17;
/// SGL entries in a fast-path CQE.
pub const U_ETH_SGL_SIZE: usize = 8;
/// `NET_SKB_PAD` on x86_64 (the driver maps `data + NET_SKB_PAD`).
pub const NET_SKB_PAD: u32 = 64;
/// `BNX2X_FW_RX_ALIGN_START` (cache line, x86).
pub const FW_RX_ALIGN_START: u32 = 64;
/// `IP_HEADER_ALIGNMENT_PADDING`.
pub const IP_HEADER_ALIGNMENT_PADDING: u32 = 2;
/// `sizeof(struct skb_shared_info)` on x86_64 (derived; 320 bytes).
pub const SKB_SHARED_INFO: u32 = 320;

/// `SKB_DATA_ALIGN`: round up to the 64-byte cache line.
pub const fn skb_data_align(x: u32) -> u32 {
    x.div_ceil(64) * 64
}

/// `BNX2X_FW_RX_ALIGN_END`: `max(64, SKB_DATA_ALIGN(sizeof(skb_shared_info)))`.
pub const FW_RX_ALIGN_END: u32 =
    if skb_data_align(SKB_SHARED_INFO) > 64 { skb_data_align(SKB_SHARED_INFO) } else { 64 };

/// Rx buffer size for `mtu` (`bnx2x_set_rx_buf_size`): 1920 at MTU 1500, 9472 at MTU 9000.
/// This is also the length each rx buffer is DMA-mapped with.
pub const fn rx_buf_size(mtu: u32) -> u32 {
    skb_data_align(FW_RX_ALIGN_START + IP_HEADER_ALIGNMENT_PADDING + ETH_OVERHEAD + mtu + FW_RX_ALIGN_END)
}

/// Bytes the firmware may write into one rx buffer: `rx_buf_size - 64 - ALIGN_END - 2`.
pub const fn rx_fw_buf_len(mtu: u32) -> u32 {
    rx_buf_size(mtu) - FW_RX_ALIGN_START - FW_RX_ALIGN_END - IP_HEADER_ALIGNMENT_PADDING
}

/// True when the rx buffer is a page fragment (`rx_buf_size + NET_SKB_PAD <= PAGE_SIZE`);
/// otherwise it is `kmalloc(rx_buf_size + NET_SKB_PAD)`, several pages long.
pub const fn rx_buf_is_page_frag(mtu: u32) -> bool {
    rx_buf_size(mtu) + NET_SKB_PAD <= BCM_PAGE_SIZE as u32
}

/// `bnx2x_mtu_allows_gro`: hardware GRO (TPA in GRO mode) needs `mtu <= 4096` and
/// `8 * (4096 / (mtu - 72)) <= MAX_SKB_FRAGS`; false at MTU 9000.
pub const fn mtu_allows_gro(mtu: u32) -> bool {
    if mtu <= ETH_MAX_TPA_HEADER_SIZE || mtu > BCM_PAGE_SIZE as u32 {
        return false;
    }
    let fpp = BCM_PAGE_SIZE as u32 / (mtu - ETH_MAX_TPA_HEADER_SIZE);
    fpp * 8 <= MAX_SKB_FRAGS
}

// ---- index helpers (free-running u16, skipping next-page slots) ----------------------------

/// `NEXT_TX_IDX`: +2 at the last usable BD of a page.
pub const fn next_tx_idx(x: u16) -> u16 {
    if x & (TX_DESC_CNT - 1) == TX_DESC_CNT - 1 - NEXT_PAGE_TX_DESC_CNT { x.wrapping_add(2) } else { x.wrapping_add(1) }
}
/// `NEXT_RX_IDX`/`NEXT_SGE_IDX`: +3 at the last usable BD of a page.
pub const fn next_rx_idx(x: u16) -> u16 {
    if x & (RX_DESC_CNT - 1) == RX_DESC_CNT - 1 - NEXT_PAGE_RX_DESC_CNT { x.wrapping_add(3) } else { x.wrapping_add(1) }
}
/// `NEXT_RCQ_IDX`: +2 at the last usable CQE of a page.
pub const fn next_rcq_idx(x: u16) -> u16 {
    if x & (RCQ_DESC_CNT - 1) == RCQ_DESC_CNT - 1 - NEXT_PAGE_RCQ_DESC_CNT {
        x.wrapping_add(2)
    } else {
        x.wrapping_add(1)
    }
}
/// Ring masks (`TX_BD`, `RX_BD`, `RCQ_BD` = `& 4095`; `RX_SGE` = `& 1023`).
pub const TX_BD_MASK: u16 = TX_DESC_CNT * NUM_TX_RINGS - 1;
pub const RX_BD_MASK: u16 = RX_DESC_CNT * NUM_RX_RINGS - 1;
pub const RCQ_BD_MASK: u16 = 4095;
pub const RX_SGE_MASK: u16 = RX_SGE_CNT * NUM_RX_SGE_PAGES - 1;

// ---- transmit BDs ------------------------------------------------------------------------

/// `eth_tx_start_bd` (16 B): the first BD of a packet, carrying the linear part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TxStartBd {
    pub addr_lo: U32,
    pub addr_hi: U32,
    /// BDs of this packet including parse and split BDs, not next-page BDs.
    pub nbd: U16,
    /// Bytes in this BD.
    pub nbytes: U16,
    pub vlan_or_ethertype: U16,
    pub bd_flags: u8,
    pub general_data: u8,
}

/// `eth_tx_start_bd.bd_flags` bits (mainline firmware).
pub const TX_BD_FLAGS_IP_CSUM: u8 = 1 << 0;
pub const TX_BD_FLAGS_L4_CSUM: u8 = 1 << 1;
pub const TX_BD_FLAGS_START_BD: u8 = 1 << 4;
pub const TX_BD_FLAGS_IS_UDP: u8 = 1 << 5;
pub const TX_BD_FLAGS_SW_LSO: u8 = 1 << 6;
pub const TX_BD_FLAGS_IPV6: u8 = 1 << 7;
/// `general_data`: HDR_NBDS in bits 0-2 (set to 1).
pub const TX_START_BD_HDR_NBDS: u8 = 1;

/// `eth_tx_bd` (16 B): a data BD (one per fragment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TxDataBd {
    pub addr_lo: U32,
    pub addr_hi: U32,
    /// Whole packet length; first data BD only.
    pub total_pkt_bytes: U16,
    pub nbytes: U16,
    pub rsvd: [u8; 4],
}

/// `eth_tx_parse_bd_e2` (16 B): MACs (or tunnel data) then `parsing_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TxParseBdE2 {
    pub data: [U16; 6],
    pub parsing_data: U32,
}

/// `parsing_data` fields: L4 header start (16-bit words) b0-10, TCP header length (dwords)
/// b11-14, IPv6 ext b15, LSO MSS b16-29, address type b30-31.
pub const PARSE_L4_HDR_START_SHIFT: u32 = 0;
pub const PARSE_TCP_HDR_LEN_SHIFT: u32 = 11;
pub const PARSE_LSO_MSS_SHIFT: u32 = 16;
pub const PARSE_LSO_MSS_MASK: u32 = 0x3fff;

/// `eth_tx_next_bd` (16 B): the last BD of each TX page points at the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TxNextBd {
    pub addr_lo: U32,
    pub addr_hi: U32,
    pub reserved: [u8; 8],
}

// ---- receive BDs and completions ---------------------------------------------------------

/// `eth_rx_bd` / `eth_rx_sge` (8 B): just an address; the firmware writes up to the buffer
/// size configured for the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RxBd {
    pub addr_lo: U32,
    pub addr_hi: U32,
}

/// The 16-byte next-page pointer occupying the last two RX BD (or SGE) slots of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RxNextBd {
    pub addr_lo: U32,
    pub addr_hi: U32,
    pub reserved: [u8; 8],
}

/// `eth_fast_path_rx_cqe` (64 B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FastPathRxCqe {
    /// TYPE b0-1, SGL_RAW b2, PHY_DECODE_ERR b3, IP_BAD_XSUM b4, L4_BAD_XSUM b5, PTP b6.
    pub type_error_flags: u8,
    /// RSS type b0-2, RSS b3, BCAST b4, MAC_MATCH b5, IP/L4 not validated b6/b7.
    pub status_flags: u8,
    /// TPA aggregation id.
    pub queue_index: u8,
    /// Start of packet data relative to the BD's DMA address.
    pub placement_offset: u8,
    pub rss_hash: U32,
    pub vlan_tag: U16,
    pub pkt_len_or_gro_seg_len: U16,
    pub len_on_bd: U16,
    pub pars_flags: U16,
    pub sgl: [U16; U_ETH_SGL_SIZE],
    pub reserved: [u8; 28],
    /// 0 when the firmware has written the CQE; the driver re-seeds it with all-ones.
    pub marker: U32,
}

impl Default for FastPathRxCqe {
    fn default() -> Self {
        FastPathRxCqe::new_zeroed()
    }
}

/// CQE type (`type_error_flags` b0-1).
pub const CQE_TYPE_MASK: u8 = 0x3;
pub const CQE_TYPE_FAST_PATH: u8 = 0;
pub const CQE_TYPE_RAMROD: u8 = 1;
pub const CQE_TYPE_TPA_START: u8 = 2;
pub const CQE_TYPE_TPA_STOP: u8 = 3;
pub const CQE_SGL_RAW: u8 = 1 << 2;
pub const CQE_PHY_DECODE_ERR: u8 = 1 << 3;
pub const CQE_IP_BAD_XSUM: u8 = 1 << 4;
pub const CQE_L4_BAD_XSUM: u8 = 1 << 5;
/// Value the driver writes into `marker` after consuming a CQE.
pub const CQE_MARKER_UNUSED: u32 = 0xFFFF_FFFF;

/// The 64-byte next-page pointer in the last CQE slot of an RCQ page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RxCqeNextPage {
    pub addr_lo: U32,
    pub addr_hi: U32,
    pub reserved: [u8; 56],
}

// ---- producers, doorbells, status block --------------------------------------------------

/// Rx producers (`ustorm_eth_rx_producers`), written as two u32s after a write barrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RxProducers {
    pub cqe_prod: U16,
    pub bd_prod: U16,
    pub sge_prod: U16,
    pub reserved: U16,
}

/// TX doorbell (`doorbell_set_prod`): a u32 written to BAR2 + `8 * cid`: header byte
/// (DB_TYPE b1 = 1 for a producer update), zero, then the free-running BD producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TxDoorbell {
    pub header: u8,
    pub zero_fill1: u8,
    pub prod: U16,
}

pub const DOORBELL_HDR_DB_TYPE: u8 = 1 << 1;

registers! {
    /// BAR2, the doorbell space: one doorbell per connection id (`DOORBELL_STRIDE` apart).
    /// The model keeps `DOORBELL_CIDS` of them; BAR0 has no register the model or driver
    /// uses.
    pub static DOORBELL_REGISTERS: u64;
    /// TX doorbell of connection `cid` ([`TxDoorbell`]).
    array DOORBELL[DOORBELL_CIDS = 64, DOORBELL_STRIDE = 8] = 0x0, "doorbell_set_prod", Wo, mask 0xFFFF_00FF;
}

/// The consumer indices the device writes into host memory (the fast-path part of the
/// status block the driver reads as `*tx_cons_sb` / `*rx_cons_sb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct StatusBlockIndices {
    pub rx_cons_sb: U16,
    pub tx_cons_sb: U16,
    /// Incremented by the device on every update.
    pub running_index: U16,
    pub reserved: U16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_firmware_layouts() {
        assert_eq!(size_of::<TxStartBd>(), TX_BD_SIZE);
        assert_eq!(size_of::<TxDataBd>(), TX_BD_SIZE);
        assert_eq!(size_of::<TxParseBdE2>(), TX_BD_SIZE);
        assert_eq!(size_of::<TxNextBd>(), TX_BD_SIZE);
        assert_eq!(size_of::<RxBd>(), RX_BD_SIZE);
        assert_eq!(size_of::<RxNextBd>(), 2 * RX_BD_SIZE);
        assert_eq!(size_of::<FastPathRxCqe>(), RCQ_CQE_SIZE);
        assert_eq!(size_of::<RxCqeNextPage>(), RCQ_CQE_SIZE);
        assert_eq!(std::mem::offset_of!(FastPathRxCqe, pkt_len_or_gro_seg_len), 10);
        assert_eq!(std::mem::offset_of!(FastPathRxCqe, sgl), 16);
        assert_eq!(std::mem::offset_of!(FastPathRxCqe, marker), 60);
        assert_eq!(std::mem::offset_of!(TxStartBd, nbd), 8);
        assert_eq!(std::mem::offset_of!(TxStartBd, bd_flags), 14);
    }

    #[test]
    fn rx_buffer_size_follows_linux() {
        assert_eq!(FW_RX_ALIGN_END, 320);
        assert_eq!(rx_buf_size(1500), 1920);
        assert_eq!(rx_buf_size(9000), 9472);
        assert_eq!(rx_fw_buf_len(9000), 9086);
        assert!(rx_buf_is_page_frag(1500));
        assert!(!rx_buf_is_page_frag(9000));
        assert!(mtu_allows_gro(1500));
        assert!(!mtu_allows_gro(9000));
    }

    #[test]
    fn index_helpers_skip_next_page_slots() {
        assert_eq!(next_tx_idx(253), 254);
        assert_eq!(next_tx_idx(254), 256);
        assert_eq!(next_rx_idx(509), 512);
        assert_eq!(next_rx_idx(510), 511);
        assert_eq!(next_rcq_idx(62), 64);
        // Usable entries: pages * (per page - next-page slots) - the driver's reserve.
        let usable_rx = (0..NUM_RX_RINGS as u32 * RX_DESC_CNT as u32)
            .filter(|i| (i % RX_DESC_CNT as u32) < (RX_DESC_CNT - NEXT_PAGE_RX_DESC_CNT) as u32)
            .count();
        assert_eq!(usable_rx, 4080);
        assert_eq!(MAX_RX_AVAIL as usize, usable_rx - 2);
    }
}
