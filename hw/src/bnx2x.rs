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
/// BCM57711 and BCM57712 (the seed's parts; Linux `bnx2x_main.c` `bnx2x_pci_tbl`:
/// `PCI_DEVICE_ID_NX2_57711` 0x164f, `PCI_DEVICE_ID_NX2_57712` 0x1662).
pub const PCI_DEVICE_57711: u16 = 0x164f;
pub const PCI_DEVICE_57712: u16 = 0x1662;

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
    /// The model keeps `DOORBELL_CIDS` of them; connection id `q` is fast-path queue `q`.
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

// ---- TPA end, status blocks, BAR0 and BAR4 -----------------------------------------------

/// `eth_end_agg_rx_cqe` (64 B, `bnx2x_hsi.h`): the CQE that closes a TPA aggregation.
/// `pkt_len` is the whole coalesced packet; the bytes past the start CQE's `len_on_bd`
/// are in the SGE pages listed in `sgl` (indices into the SGE ring, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct EndAggRxCqe {
    pub type_error_flags: u8,
    pub reserved1: u8,
    /// Aggregation id (the TPA bin), as in the start CQE.
    pub queue_index: u8,
    pub reserved2: u8,
    pub timestamp_delta: U32,
    pub num_of_coalesced_segs: U16,
    pub pkt_len: U16,
    pub pure_ack_count: u8,
    pub reserved3: u8,
    pub reserved4: U16,
    pub sgl: [U16; U_ETH_SGL_SIZE],
    pub reserved5: [U32; 7],
    pub marker: U32,
}

impl Default for EndAggRxCqe {
    fn default() -> Self {
        EndAggRxCqe::new_zeroed()
    }
}

/// SGE buffers are one 4 KiB page each (`SGE_PAGE_SIZE` with `PAGES_PER_SGE` 1).
pub const SGE_PAGE_SIZE: usize = 4096;
/// Largest packet a TPA aggregation may grow to (the IP total length field).
pub const TPA_MAX_AGG_LEN: usize = 65535;

/// `host_hc_status_block_e2` (64 B): the fast-path status block of one queue, written by
/// the device. `index_values[HC_INDEX_ETH_RX_CQ_CONS]` is the RCQ producer as the
/// driver sees it (`fp->rx_cons_sb`), `index_values[HC_INDEX_ETH_TX_CQ_CONS_COS0]` the
/// count of transmitted packets (`txdata->tx_cons_sb`), `running_index[SM_RX_ID]` moves on
/// every update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct HcStatusBlockE2 {
    pub index_values: [U16; HC_SB_MAX_INDICES_E2],
    pub running_index: [U16; HC_SB_MAX_SM],
    pub rsrv: [U32; 11],
}

/// `HC_SB_MAX_INDICES_E2`, `HC_SB_MAX_SM` (`bnx2x_hsi.h`).
pub const HC_SB_MAX_INDICES_E2: usize = 8;
pub const HC_SB_MAX_SM: usize = 2;
/// Status block indices (`bnx2x.h`: `HC_INDEX_ETH_RX_CQ_CONS`, `HC_INDEX_ETH_TX_CQ_CONS_COS0`).
pub const HC_INDEX_ETH_RX_CQ_CONS: usize = 1;
pub const HC_INDEX_ETH_TX_CQ_CONS_COS0: usize = 5;
/// `SM_RX_ID` (the running index of the rx state machine).
pub const SM_RX_ID: usize = 0;

/// The default (slow-path) status block, `host_sp_status_block` reduced to what the model
/// reports (a documented simplification): attention bits and their ack, the slow-path
/// index of the event queue (`HC_SP_INDEX_EQ_CONS`, moved by each completed slow-path
/// request) and the running index. 64 bytes, like the fast-path block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct SpStatusBlock {
    pub attn_bits: U32,
    pub attn_bits_ack: U32,
    pub sp_index_values: [U16; 16],
    pub running_index: U16,
    pub rsrv: [u8; 22],
}

/// `HC_SP_INDEX_EQ_CONS`.
pub const HC_SP_INDEX_EQ_CONS: usize = 7;

/// `igu_regular.sb_id_and_flags` (the IGU acknowledge a driver writes per status block,
/// `bnx2x_igu_ack_sb_gen`): the index it has seen, whether to update it, and the interrupt
/// mode to leave the block in.
pub mod igu {
    pub const SB_INDEX_MASK: u32 = 0x000F_FFFF;
    pub const UPDATE_INDEX: u32 = 1 << 20;
    pub const SEGMENT_ACCESS: u32 = 1 << 21;
    pub const INTERRUPT_MODE_SHIFT: u32 = 27;
    pub const INTERRUPT_MODE_MASK: u32 = 0x3 << INTERRUPT_MODE_SHIFT;
    /// `IGU_INT_ENABLE`, `IGU_INT_DISABLE`, `IGU_INT_NOP` (`bnx2x.h`).
    pub const INT_ENABLE: u32 = 0;
    pub const INT_DISABLE: u32 = 1;
    pub const INT_NOP: u32 = 2;

    /// The dword the driver writes.
    pub const fn ack(index: u16, update: bool, mode: u32) -> u32 {
        (index as u32) | if update { UPDATE_INDEX } else { 0 } | ((mode & 0x3) << INTERRUPT_MODE_SHIFT)
    }
}

/// Fast-path queues the model offers at most (MSI-X vectors: one default + one per queue).
pub const MAX_FP_QUEUES: usize = 8;
/// MSI-X table size of the model: the default status block's vector 0, then one per
/// fast-path queue (`bnx2x_enable_msix`: `msix_table[0]` is the slow path, then one per
/// ETH queue).
pub const MSIX_VECTORS: u16 = MAX_FP_QUEUES as u16 + 1;
/// BAR4 holds the MSI-X table (offset 0) and PBA, as on the 57712/578xx (`lspci`: "Vector
/// table: BAR=4 offset=00000000, PBA: BAR=4 offset=00001000").
pub const BAR_MSIX: u8 = 4;
pub const BAR_MSIX_LEN: u64 = 0x1_0000;
pub const MSIX_TABLE_OFFSET: u64 = 0;
pub const MSIX_PBA_OFFSET: u64 = 0x1000;

/// The queue-setup block of queue `q` in BAR0 starts at `QUEUE_BLOCK_BASE + q *
/// QUEUE_BLOCK_STRIDE`; its registers ([`QUEUE_REGISTERS`]) are relative to that.
pub const QUEUE_BLOCK_BASE: u64 = 0x50_0000;
pub const QUEUE_BLOCK_STRIDE: u64 = 0x400;

/// BAR0 offset of a queue-setup register of queue `q`.
pub const fn queue_reg(q: usize, reg: u64) -> u64 {
    QUEUE_BLOCK_BASE + q as u64 * QUEUE_BLOCK_STRIDE + reg
}

registers! {
    /// BAR0 registers the model and driver use. The rx producers sit in USTORM internal
    /// memory (`BAR_USTRORM_INTMEM` 0x400000, `bnx2x_reg.h`); their real offset per queue
    /// (`USTORM_RX_PRODS_E2_OFFSET`, from the firmware's IRO table) is firmware data the
    /// model does not have, so it uses `BAR_USTRORM_INTMEM + 8 * q` with the fields of
    /// `ustorm_eth_rx_producers`, written as two dwords like `bnx2x_update_rx_prod`. The IGU
    /// acknowledge is where `bnx2x_igu_ack_sb_gen` writes it (`BAR_IGU_INTMEM` 0x440000 +
    /// (`IGU_CMD_INT_ACK_BASE` 0x400 + sb) * 8); status block 0 is the default one, 1 + q
    /// queue q's. `SPQ_PROD` is the model's own: a write posts one slow-path request, which
    /// the device completes on the default status block (standing for the SPQ and its
    /// event-queue completion).
    pub static BAR0_REGISTERS: u64;
    /// `cqe_prod` (b0-15) and `bd_prod` (b16-31) of queue q.
    array RX_PRODS_LO[RX_PRODS_QUEUES = 8, RX_PRODS_STRIDE = 8] = 0x40_0000, "ustorm_eth_rx_producers[0]", Wo, mask 0xFFFF_FFFF;
    /// `sge_prod` (b0-15) of queue q.
    array RX_PRODS_HI[RX_PRODS_HI_QUEUES = 8, RX_PRODS_HI_STRIDE = 8] = 0x40_0004, "ustorm_eth_rx_producers[1]", Wo, mask 0x0000_FFFF;
    /// `igu_regular` acknowledge of status block sb.
    array IGU_ACK[IGU_SBS = 9, IGU_ACK_STRIDE = 8] = 0x44_2000, "igu_regular", Wo, mask 0x1BFF_FFFF;
    /// Where the device writes the default status block (64-bit, two dwords).
    reg DSB_ADDR_LO = 0x45_0000, "def_sb_addr_lo", Rw, mask 0xFFFF_FFC0;
    reg DSB_ADDR_HI = 0x45_0004, "def_sb_addr_hi", Rw, mask 0xFFFF_FFFF;
    /// Slow-path request producer (model's own).
    reg SPQ_PROD = 0x45_0008, "spq_prod", Rw, mask 0xFFFF;
    /// Device state: b0 function started, b1 fatal error, b8-15 last queue error code.
    reg FUNC_STATUS = 0x45_000C, "func_status", Ro, mask 0;
}

registers! {
    /// One queue's setup block (model's own; it stands for the CLIENT_SETUP ramrod's
    /// `client_init_ramrod_data`: ring page bases, status block address, MTU, buffer sizes,
    /// TPA enable and SGE count). Offsets relative to [`queue_reg`]'s block.
    pub static QUEUE_REGISTERS: u64;
    reg Q_RX_BD_LO = 0x00, "rx_bd_page_base_lo", Rw, mask 0xFFFF_F000;
    reg Q_RX_BD_HI = 0x04, "rx_bd_page_base_hi", Rw, mask 0xFFFF_FFFF;
    reg Q_RCQ_LO = 0x08, "cqe_page_base_lo", Rw, mask 0xFFFF_F000;
    reg Q_RCQ_HI = 0x0C, "cqe_page_base_hi", Rw, mask 0xFFFF_FFFF;
    reg Q_SGE_LO = 0x10, "sge_page_base_lo", Rw, mask 0xFFFF_F000;
    reg Q_SGE_HI = 0x14, "sge_page_base_hi", Rw, mask 0xFFFF_FFFF;
    reg Q_TX_BD_LO = 0x18, "tx_bd_page_base_lo", Rw, mask 0xFFFF_F000;
    reg Q_TX_BD_HI = 0x1C, "tx_bd_page_base_hi", Rw, mask 0xFFFF_FFFF;
    reg Q_SB_LO = 0x20, "host_sb_addr_lo", Rw, mask 0xFFFF_FFC0;
    reg Q_SB_HI = 0x24, "host_sb_addr_hi", Rw, mask 0xFFFF_FFFF;
    /// Bytes the device may place in one rx BD buffer from the mapping start
    /// (`max_bytes_on_bd`; placement offset included).
    reg Q_BD_BUF_LEN = 0x28, "max_bytes_on_bd", Rw, mask 0xFFFF;
    reg Q_MTU = 0x2C, "mtu", Rw, mask 0xFFFF;
    /// b0 TPA enable, b8-11 `max_sges_for_packet` (1..=8).
    reg Q_TPA = 0x30, "tpa_en", Rw, mask 0x0F01;
    /// Write 1: client setup (the device resets its cursors to 0 and starts); 0: halt.
    reg Q_ENABLE = 0x34, "client_setup", Rw, mask 0x1;
    /// b0 up, b1 error; b8-15 error code ([`QueueErrorCode`]).
    reg Q_STATUS = 0x38, "client_status", Ro, mask 0;
}

/// The register spaces of the model, each as the tables that make it up.
pub fn register_spaces() -> [(&'static str, Vec<&'static [crate::regs::RegisterDesc]>); 3] {
    [("BAR0", vec![BAR0_REGISTERS]), ("BAR0 queue block", vec![QUEUE_REGISTERS]), ("BAR2", vec![DOORBELL_REGISTERS])]
}

/// Why the device stopped a queue (`Q_STATUS` b8-15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum QueueErrorCode {
    None = 0,
    /// A ring or buffer access was blocked by the IOMMU.
    Dma = 1,
    /// A TX BD chain broke the rules (no START_BD flag, nbd out of range, bad length).
    TxBd = 2,
    /// A next-page pointer that is not page aligned.
    NextPage = 3,
    /// A setup register out of range (buffer length, MTU, SGE count).
    Setup = 4,
}

impl QueueErrorCode {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::Dma,
            2 => Self::TxBd,
            3 => Self::NextPage,
            4 => Self::Setup,
            _ => return None,
        })
    }
}

/// `Q_STATUS` bits.
pub const Q_STATUS_UP: u32 = 1 << 0;
pub const Q_STATUS_ERROR: u32 = 1 << 1;
pub const Q_STATUS_CODE_SHIFT: u32 = 8;
/// `FUNC_STATUS` bits.
pub const FUNC_STATUS_STARTED: u32 = 1 << 0;

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
        assert_eq!(size_of::<EndAggRxCqe>(), RCQ_CQE_SIZE);
        assert_eq!(std::mem::offset_of!(EndAggRxCqe, pkt_len), 10);
        assert_eq!(std::mem::offset_of!(EndAggRxCqe, sgl), 16);
        assert_eq!(std::mem::offset_of!(EndAggRxCqe, marker), 60);
        assert_eq!(size_of::<HcStatusBlockE2>(), 64);
        assert_eq!(size_of::<SpStatusBlock>(), 64);
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
