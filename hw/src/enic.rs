//! Cisco VIC (enic) facts: BAR0 resource table, WQ/RQ/CQ control blocks, descriptor
//! formats (16 bytes each, little-endian) and the jumbo-frame limits, as Linux
//! `drivers/net/ethernet/cisco/enic/` declares them (`vnic_resource.h`, `vnic_wq.h`,
//! `vnic_rq.h`, `vnic_cq.h`, `wq_enet_desc.h`, `rq_enet_desc.h`, `cq_enet_desc.h`,
//! `cq_desc.h`, `enic.h`, `vnic_intr.h`, `vnic_devcmd.h`, `vnic_enet.h`); see
//! `shared/reference/rings-dma.md` §2.

use crate::regs::{RegisterDesc, registers};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Cisco's PCI vendor id and the VIC Ethernet vNIC device id (`PCI_DEVICE_ID_CISCO_VIC_ENET`).
pub const PCI_VENDOR_CISCO: u16 = 0x1137;
pub const PCI_DEVICE_VIC_ENET: u16 = 0x0043;

// ---- BAR0 resource table ------------------------------------------------------------------

/// Resource table header magic (`VNIC_RES_MAGIC`, "vnic").
pub const VNIC_RES_MAGIC: u32 = 0x766E_6963;
/// Management vNICs carry this magic instead (`MGMTVNIC_MAGIC`, "MGMT").
pub const MGMTVNIC_MAGIC: u32 = 0x544D_474D;
pub const VNIC_RES_VERSION: u32 = 0;
/// Header: magic u32, version u32.
pub const RES_HDR_LEN: u64 = 8;
/// Entry: type u8, bar u8, `pad[2]`, bar_offset u32, count u32.
pub const RES_ENTRY_LEN: u64 = 12;
/// Each WQ/RQ/CQ/INTR_CTRL instance sits this far after the previous one.
pub const VNIC_RES_STRIDE: u64 = 128;

/// PCI vendor id of Cisco Systems.
pub const PCI_VENDOR_ID_CISCO: u16 = 0x1137;
/// PCI device id of the VIC Ethernet NIC (`PCI_DEVICE_ID_CISCO_VIC_ENET`, enic_main.c).
pub const PCI_DEVICE_ID_CISCO_VIC_ENET: u16 = 0x0043;
/// PCI device id of the VIC Ethernet NIC virtual function (`PCI_DEVICE_ID_CISCO_VIC_ENET_VF`).
pub const PCI_DEVICE_ID_CISCO_VIC_ENET_VF: u16 = 0x0071;
/// BAR holding the vNIC resource header and the control blocks.
pub const BAR_REGS: u8 = 0;

/// Resource types (`enum vnic_res_type`).
pub const RES_TYPE_EOL: u8 = 0;
pub const RES_TYPE_WQ: u8 = 1;
pub const RES_TYPE_RQ: u8 = 2;
pub const RES_TYPE_CQ: u8 = 3;
pub const RES_TYPE_NIC_CFG: u8 = 5;
pub const RES_TYPE_INTR_CTRL: u8 = 10;
/// The MSI-X table and pending-bit array (`RES_TYPE_INTR_TABLE`, `RES_TYPE_INTR_PBA`).
pub const RES_TYPE_INTR_TABLE: u8 = 11;
pub const RES_TYPE_INTR_PBA: u8 = 12;
/// The devcmd window (`RES_TYPE_DEVCMD`).
pub const RES_TYPE_DEVCMD: u8 = 16;
/// Entries a bounded table walk reads at most (`RES_TYPE_MAX` is far below this).
pub const RES_TABLE_MAX_ENTRIES: u64 = 64;

/// What a resource of type `ty` with `count` instances occupies in its BAR, as Linux's
/// `vnic_dev_discover_res` sizes it: WQ/RQ/CQ/INTR_CTRL are `count` blocks of
/// [`VNIC_RES_STRIDE`]; DEVCMD and the legacy PBA are `count` bytes; the MSI-X table is
/// `count` 16-byte entries and the PBA `count` bits (rounded to 8 bytes). `None` for a
/// type the driver skips.
pub const fn res_len(ty: u8, count: u32) -> Option<u64> {
    let n = count as u64;
    match ty {
        RES_TYPE_WQ | RES_TYPE_RQ | RES_TYPE_CQ | RES_TYPE_INTR_CTRL => Some(n * VNIC_RES_STRIDE),
        RES_TYPE_DEVCMD => Some(n),
        RES_TYPE_INTR_TABLE => Some(n * 16),
        RES_TYPE_INTR_PBA => Some(n.div_ceil(64) * 8),
        _ => None,
    }
}

// ---- control blocks (every u32 followed by a pad: byte offsets) ---------------------------
//
// Each block is its own register space: offsets are relative to the block's BAR0 offset
// (from the resource table; instance `i` of a type sits `i * VNIC_RES_STRIDE` further).
// WQ and RQ share the layout of `QUEUE_REGISTERS` and add their own tail registers.

registers! {
    /// `vnic_wq_ctrl` and, up to `fetch_index`, `vnic_rq_ctrl`: the registers both queue
    /// types share.
    pub static QUEUE_REGISTERS: u64;
    /// 64-bit ring base; accessed as two dwords (the high one at [`Q_RING_BASE_HI`]).
    reg Q_RING_BASE = 0x00, "ring_base", Rw, mask 0xFFFF_FFFF;
    reg Q_RING_SIZE = 0x08, "ring_size", Rw, mask 0xFFFF_FFFF;
    reg Q_POSTED_INDEX = 0x10, "posted_index", Rw, mask 0xFFFF_FFFF;
    reg Q_CQ_INDEX = 0x18, "cq_index", Rw, mask 0xFFFF_FFFF;
    reg Q_ENABLE = 0x20, "enable", Rw, mask 0x1;
    reg Q_RUNNING = 0x28, "running", Ro, mask 0;
    reg Q_FETCH_INDEX = 0x30, "fetch_index", Rw, mask 0xFFFF_FFFF;
}

registers! {
    /// `vnic_wq_ctrl` past the shared part.
    pub static WQ_REGISTERS: u64;
    reg WQ_ERROR_STATUS = 0x50, "error_status", Ro, mask 0;
}

registers! {
    /// `vnic_rq_ctrl` past the shared part.
    pub static RQ_REGISTERS: u64;
    reg RQ_ERROR_STATUS = 0x48, "error_status", Ro, mask 0;
    reg RQ_DROPPED_PACKET_COUNT = 0x50, "dropped_packet_count", Ro, mask 0;
}

registers! {
    /// `vnic_cq_ctrl`.
    pub static CQ_REGISTERS: u64;
    /// 64-bit ring base; accessed as two dwords (the high one at [`CQ_RING_BASE_HI`]).
    reg CQ_RING_BASE = 0x00, "ring_base", Rw, mask 0xFFFF_FFFF;
    reg CQ_RING_SIZE = 0x08, "ring_size", Rw, mask 0xFFFF_FFFF;
    reg CQ_FLOW_CONTROL_ENABLE = 0x10, "flow_control_enable", Rw, mask 0x1;
    reg CQ_COLOR_ENABLE = 0x18, "color_enable", Rw, mask 0x1;
    reg CQ_HEAD = 0x20, "cq_head", Rw, mask 0xFFFF_FFFF;
    reg CQ_TAIL = 0x28, "cq_tail", Rw, mask 0xFFFF_FFFF;
    reg CQ_TAIL_COLOR = 0x30, "cq_tail_color", Rw, mask 0x1;
    reg CQ_INTERRUPT_ENABLE = 0x38, "interrupt_enable", Rw, mask 0x1;
    /// Write a completion entry to the ring for each completion (`cq_entry_enable`).
    reg CQ_ENTRY_ENABLE = 0x40, "cq_entry_enable", Rw, mask 0x1;
    reg CQ_MESSAGE_ENABLE = 0x48, "cq_message_enable", Rw, mask 0x1;
    /// Which interrupt (INTR_CTRL instance and MSI-X vector) the CQ asserts.
    reg CQ_INTERRUPT_OFFSET = 0x50, "interrupt_offset", Rw, mask 0xFFFF_FFFF;
}

registers! {
    /// `vnic_intr_ctrl`: one per interrupt.
    pub static INTR_REGISTERS: u64;
    /// Coalescing timer in the adapter's units (the model: microseconds).
    reg INTR_COALESCING_TIMER = 0x00, "coalescing_timer", Rw, mask 0xFFFF;
    reg INTR_COALESCING_VALUE = 0x08, "coalescing_value", Rw, mask 0xFFFF;
    reg INTR_COALESCING_TYPE = 0x10, "coalescing_type", Rw, mask 0x3;
    /// Set the mask when the interrupt is asserted (MSI-X mode: Linux sets it).
    reg INTR_MASK_ON_ASSERTION = 0x18, "mask_on_assertion", Rw, mask 0x1;
    reg INTR_MASK = 0x20, "mask", Rw, mask 0x1;
    /// Events not yet returned by the driver.
    reg INTR_INT_CREDITS = 0x28, "int_credits", Ro, mask 0;
    /// Bits 0-15 credits to return, bit 16 unmask, bit 17 reset the coalescing timer.
    reg INTR_INT_CREDIT_RETURN = 0x30, "int_credit_return", Wo, mask 0x3_FFFF;
}

/// `int_credit_return`: credits in bits 0-15 (`VNIC_INTR_UNMASK_SHIFT` 16,
/// `VNIC_INTR_RESET_TIMER_SHIFT` 17).
pub const INTR_CREDITS_MASK: u32 = 0xFFFF;
pub const INTR_UNMASK: u32 = 1 << 16;
pub const INTR_RESET_TIMER: u32 = 1 << 17;

registers! {
    /// `struct vnic_devcmd`: status, command, then `VNIC_DEVCMD_NARGS` 64-bit arguments.
    pub static DEVCMD_REGISTERS: u64;
    reg DEVCMD_STATUS = 0x00, "status", Ro, mask 0;
    reg DEVCMD_CMD = 0x04, "cmd", Rw, mask 0xFFFF_FFFF;
    array DEVCMD_ARGS[DEVCMD_ARGS_LEN = 30, DEVCMD_ARGS_STRIDE = 4] = 0x08, "args (dwords)", Rw, mask 0xFFFF_FFFF;
}

/// `VNIC_DEVCMD_NARGS`.
pub const DEVCMD_NARGS: usize = 15;
/// Bytes of the devcmd window.
pub const DEVCMD_LEN: u64 = DEVCMD_ARGS + DEVCMD_ARGS_LEN * DEVCMD_ARGS_STRIDE;
/// `enum vnic_devcmd_status`.
pub const STAT_BUSY: u32 = 1 << 0;
pub const STAT_ERROR: u32 = 1 << 1;

/// Devcmd encoding (`_CMDCF`): number bits 0-13, vNIC type bits 14-23, flags 24-29,
/// direction 30-31.
pub const CMD_DIR_WRITE: u32 = 1;
pub const CMD_DIR_READ: u32 = 2;
pub const CMD_DIR_RW: u32 = 3;
pub const CMD_FLAGS_NOWAIT: u32 = 1;
pub const CMD_VTYPE_ENET: u32 = 1;
pub const CMD_VTYPE_FC: u32 = 2;
pub const CMD_VTYPE_ALL: u32 = 7;

/// `_CMDCF(dir, flags, vtype, nr)`.
pub const fn cmdcf(dir: u32, flags: u32, vtype: u32, nr: u32) -> u32 {
    (dir << 30) | (flags << 24) | (vtype << 14) | nr
}

/// A devcmd's number (`_CMD_N`), direction (`_CMD_DIR`) and no-wait flag.
pub const fn cmd_n(cmd: u32) -> u32 {
    cmd & 0x3FFF
}
pub const fn cmd_dir(cmd: u32) -> u32 {
    (cmd >> 30) & 3
}
pub const fn cmd_nowait(cmd: u32) -> bool {
    (cmd >> 24) & 0x3F & CMD_FLAGS_NOWAIT != 0
}

/// The commands a driver needs at bring-up (`enum vnic_devcmd_cmd`).
pub const CMD_DEV_SPEC: u32 = cmdcf(CMD_DIR_RW, 0, CMD_VTYPE_ALL, 2);
pub const CMD_GET_MAC_ADDR: u32 = cmdcf(CMD_DIR_READ, 0, CMD_VTYPE_ENET | CMD_VTYPE_FC, 9);
pub const CMD_OPEN: u32 = cmdcf(CMD_DIR_WRITE, CMD_FLAGS_NOWAIT, CMD_VTYPE_ALL, 23);
pub const CMD_OPEN_STATUS: u32 = cmdcf(CMD_DIR_READ, 0, CMD_VTYPE_ALL, 24);
pub const CMD_CLOSE: u32 = cmdcf(0, 0, CMD_VTYPE_ALL, 25);
pub const CMD_ENABLE: u32 = cmdcf(CMD_DIR_WRITE, CMD_FLAGS_NOWAIT, CMD_VTYPE_ALL, 28);
pub const CMD_ENABLE_WAIT: u32 = cmdcf(CMD_DIR_WRITE, 0, CMD_VTYPE_ALL, 28);
pub const CMD_DISABLE: u32 = cmdcf(0, 0, CMD_VTYPE_ALL, 29);
pub const CMD_INIT_STATUS: u32 = cmdcf(CMD_DIR_READ, 0, CMD_VTYPE_ALL, 31);
pub const CMD_DEINIT: u32 = cmdcf(0, CMD_FLAGS_NOWAIT, CMD_VTYPE_ALL, 34);
pub const CMD_INIT: u32 = cmdcf(CMD_DIR_WRITE, CMD_FLAGS_NOWAIT, CMD_VTYPE_ALL, 35);

/// `enum vnic_devcmd_error` (in `args[0]` when `STAT_ERROR` is set).
pub const ERR_EINVAL: u64 = 1;
pub const ERR_EBUSY: u64 = 4;
pub const ERR_ECMDUNKNOWN: u64 = 5;
pub const ERR_EBADSTATE: u64 = 6;

/// `struct vnic_enet_config` (what `CMD_DEV_SPEC` reads, by offset and size): flags u32,
/// wq_desc_count u32, rq_desc_count u32, mtu u16, ...
pub const ENET_CONFIG_WQ_DESC_COUNT: u64 = 4;
pub const ENET_CONFIG_RQ_DESC_COUNT: u64 = 8;
pub const ENET_CONFIG_MTU: u64 = 12;
/// Bytes of `vnic_enet_config` the model serves (through `num_arfs`).
pub const ENET_CONFIG_LEN: usize = 46;

/// High dword of the 64-bit queue ring base.
pub const Q_RING_BASE_HI: u64 = Q_RING_BASE + 4;
/// High dword of the 64-bit completion-queue ring base.
pub const CQ_RING_BASE_HI: u64 = CQ_RING_BASE + 4;

/// The register spaces of the control blocks, each as the tables that make it up.
pub fn register_spaces() -> [(&'static str, Vec<&'static [RegisterDesc]>); 5] {
    [
        ("WQ", vec![QUEUE_REGISTERS, WQ_REGISTERS]),
        ("RQ", vec![QUEUE_REGISTERS, RQ_REGISTERS]),
        ("CQ", vec![CQ_REGISTERS]),
        ("INTR_CTRL", vec![INTR_REGISTERS]),
        ("DEVCMD", vec![DEVCMD_REGISTERS]),
    ]
}

// ---- rings and limits ---------------------------------------------------------------------

/// Descriptor rings: base aligned to 512, entry count a multiple of 32, one slot unused.
pub const RING_BASE_ALIGN: u64 = 512;
pub const RING_COUNT_ALIGN: u32 = 32;
/// Driver limits on WQ/RQ entries.
pub const MIN_WQ_DESCS: u32 = 64;
pub const MAX_WQ_DESCS: u32 = 4096;
pub const MIN_RQ_DESCS: u32 = 64;
pub const MAX_RQ_DESCS: u32 = 4096;
/// Largest MTU the enic driver accepts (`ENIC_MAX_MTU`); default 1500.
pub const ENIC_MAX_MTU: u32 = 9000;
pub const ENIC_MIN_MTU: u32 = 68;
pub const ETH_HLEN: u32 = 14;
/// Ethernet header plus an 802.1Q tag: mainline's receive buffer is `mtu + VLAN_ETH_HLEN`.
pub const VLAN_ETH_HLEN: u32 = 18;
/// Shortest frame on the wire without FCS.
pub const MIN_FRAME: u32 = 60;
/// Width of the length fields (`rq_enet_desc` len, `bytes_written`): 14 bits.
pub const LEN_MASK: u16 = 0x3FFF;
/// Completion index width (`completed_index`): 12 bits.
pub const COMPLETED_INDEX_MASK: u16 = 0x0FFF;
/// Queue number width (`q_number`): 10 bits.
pub const Q_NUMBER_MASK: u16 = 0x03FF;

// ---- work queue descriptor ----------------------------------------------------------------

/// `wq_enet_desc`: one transmit buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct WqEnetDesc {
    pub address: U64,
    /// Bits 0-13: length (16384 encodes as 0).
    pub length: U16,
    /// Bit 1 loopback, bits 2-15 mss.
    pub mss_loopback: U16,
    /// Bits 0-9 hdr_len, 10-11 offload mode, 12 eop, 13 cq_entry, 14 fcoe, 15 vlan_insert.
    pub header_length_flags: U16,
    pub vlan_tag: U16,
}

pub const WQ_ENET_FLAGS_EOP: u16 = 1 << 12;
pub const WQ_ENET_FLAGS_CQ_ENTRY: u16 = 1 << 13;
pub const WQ_ENET_FLAGS_VLAN_TAG_INSERT: u16 = 1 << 15;

impl WqEnetDesc {
    /// A single-buffer packet with a completion requested (`cq_entry = eop`, as Linux sets it).
    pub fn packet(address: u64, len: u16) -> WqEnetDesc {
        WqEnetDesc {
            address: address.into(),
            length: (len & LEN_MASK).into(),
            mss_loopback: 0.into(),
            header_length_flags: (WQ_ENET_FLAGS_EOP | WQ_ENET_FLAGS_CQ_ENTRY).into(),
            vlan_tag: 0.into(),
        }
    }

    /// Buffer length; the 14-bit field holds 0 for a full 16384-byte chunk.
    pub fn buf_len(&self) -> u32 {
        match self.length.get() & LEN_MASK {
            0 => 16384,
            n => u32::from(n),
        }
    }

    pub fn eop(&self) -> bool {
        self.header_length_flags.get() & WQ_ENET_FLAGS_EOP != 0
    }

    pub fn cq_entry(&self) -> bool {
        self.header_length_flags.get() & WQ_ENET_FLAGS_CQ_ENTRY != 0
    }
}

// ---- receive queue descriptor -------------------------------------------------------------

/// `rq_enet_desc`: one posted receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RqEnetDesc {
    pub address: U64,
    /// Bits 0-13 length, 14-15 type.
    pub length_type: U16,
    pub reserved: [u8; 6],
}

/// `RQ_ENET_TYPE_ONLY_SOP`: the buffer holds a whole packet (Linux always posts this).
pub const RQ_ENET_TYPE_ONLY_SOP: u16 = 0;
/// `RQ_ENET_TYPE_NOT_SOP`: a continuation buffer.
pub const RQ_ENET_TYPE_NOT_SOP: u16 = 1;

impl RqEnetDesc {
    pub fn new(address: u64, len: u16, ty: u16) -> RqEnetDesc {
        RqEnetDesc { address: address.into(), length_type: ((len & LEN_MASK) | (ty << 14)).into(), reserved: [0; 6] }
    }

    pub fn buf_len(&self) -> u16 {
        self.length_type.get() & LEN_MASK
    }

    pub fn ty(&self) -> u16 {
        self.length_type.get() >> 14
    }
}

// ---- completion descriptors ---------------------------------------------------------------

/// Completion types (`CQ_DESC_TYPE_*`).
pub const CQ_DESC_TYPE_WQ_ENET: u8 = 0;
pub const CQ_DESC_TYPE_RQ_ENET: u8 = 3;
/// Byte 15 of every completion: type bits 0-3, colour bit 7.
pub const CQ_DESC_TYPE_MASK: u8 = 0x0F;
pub const CQ_DESC_COLOR: u8 = 1 << 7;
/// Offset of the `type_color` byte: hardware writes it last.
pub const CQ_TYPE_COLOR_OFFSET: usize = 15;

/// `cq_desc` / `cq_enet_wq_desc`: the generic completion (WQ completions use this form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct CqDesc {
    pub completed_index: U16,
    pub q_number: U16,
    pub reserved: [u8; 11],
    pub type_color: u8,
}

impl CqDesc {
    pub fn new(ty: u8, q: u16, completed_index: u16, color: bool) -> CqDesc {
        CqDesc {
            completed_index: (completed_index & COMPLETED_INDEX_MASK).into(),
            q_number: (q & Q_NUMBER_MASK).into(),
            reserved: [0; 11],
            type_color: (ty & CQ_DESC_TYPE_MASK) | if color { CQ_DESC_COLOR } else { 0 },
        }
    }

    pub fn completed_index(&self) -> u16 {
        self.completed_index.get() & COMPLETED_INDEX_MASK
    }

    pub fn q_number(&self) -> u16 {
        self.q_number.get() & Q_NUMBER_MASK
    }

    pub fn ty(&self) -> u8 {
        self.type_color & CQ_DESC_TYPE_MASK
    }

    pub fn color(&self) -> bool {
        self.type_color & CQ_DESC_COLOR != 0
    }
}

/// `cq_enet_rq_desc`: a receive completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct CqEnetRqDesc {
    /// Bits 0-11 completed_index, 12 ingress_port, 13 fcoe, 14 eop, 15 sop.
    pub completed_index_flags: U16,
    /// Bits 0-9 q_number, 10-13 rss_type, 14 csum_not_calc.
    pub q_number_rss_type_flags: U16,
    pub rss_hash: U32,
    /// Bits 0-13 bytes_written, 14 truncated, 15 vlan_stripped.
    pub bytes_written_flags: U16,
    pub vlan: U16,
    pub checksum_fcoe: U16,
    /// tcp_udp_csum_ok b0, udp b1, tcp b2, ipv4_csum_ok b3, ipv6 b4, ipv4 b5, ipv4_frag b6,
    /// fcs_ok b7.
    pub flags: u8,
    pub type_color: u8,
}

pub const CQ_ENET_RQ_DESC_FLAGS_EOP: u16 = 1 << 14;
pub const CQ_ENET_RQ_DESC_FLAGS_SOP: u16 = 1 << 15;
pub const CQ_ENET_RQ_DESC_FLAGS_TRUNCATED: u16 = 1 << 14;
pub const CQ_ENET_RQ_DESC_FLAGS_VLAN_STRIPPED: u16 = 1 << 15;
pub const CQ_ENET_RQ_DESC_FLAGS_FCS_OK: u8 = 1 << 7;

/// What a receive completion says, decoded (no validation: that is the driver's job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RqCompletion {
    pub completed_index: u16,
    pub q_number: u16,
    pub sop: bool,
    pub eop: bool,
    pub bytes_written: u16,
    pub truncated: bool,
    pub fcs_ok: bool,
    pub ty: u8,
    pub color: bool,
}

impl CqEnetRqDesc {
    pub fn new(c: RqCompletion) -> CqEnetRqDesc {
        let mut ci = c.completed_index & COMPLETED_INDEX_MASK;
        if c.sop {
            ci |= CQ_ENET_RQ_DESC_FLAGS_SOP;
        }
        if c.eop {
            ci |= CQ_ENET_RQ_DESC_FLAGS_EOP;
        }
        let mut bw = c.bytes_written & LEN_MASK;
        if c.truncated {
            bw |= CQ_ENET_RQ_DESC_FLAGS_TRUNCATED;
        }
        CqEnetRqDesc {
            completed_index_flags: ci.into(),
            q_number_rss_type_flags: (c.q_number & Q_NUMBER_MASK).into(),
            rss_hash: 0.into(),
            bytes_written_flags: bw.into(),
            vlan: 0.into(),
            checksum_fcoe: 0.into(),
            flags: if c.fcs_ok { CQ_ENET_RQ_DESC_FLAGS_FCS_OK } else { 0 },
            type_color: (c.ty & CQ_DESC_TYPE_MASK) | if c.color { CQ_DESC_COLOR } else { 0 },
        }
    }

    pub fn decode(&self) -> RqCompletion {
        let ci = self.completed_index_flags.get();
        let bw = self.bytes_written_flags.get();
        RqCompletion {
            completed_index: ci & COMPLETED_INDEX_MASK,
            q_number: self.q_number_rss_type_flags.get() & Q_NUMBER_MASK,
            sop: ci & CQ_ENET_RQ_DESC_FLAGS_SOP != 0,
            eop: ci & CQ_ENET_RQ_DESC_FLAGS_EOP != 0,
            bytes_written: bw & LEN_MASK,
            truncated: bw & CQ_ENET_RQ_DESC_FLAGS_TRUNCATED != 0,
            fcs_ok: self.flags & CQ_ENET_RQ_DESC_FLAGS_FCS_OK != 0,
            ty: self.type_color & CQ_DESC_TYPE_MASK,
            color: self.type_color & CQ_DESC_COLOR != 0,
        }
    }
}

/// Receive buffer length mainline enic posts for `mtu` (`mtu + VLAN_ETH_HLEN`).
pub const fn rx_buf_len(mtu: u32) -> u32 {
    mtu + VLAN_ETH_HLEN
}

/// Receive buffer length early enic (2.6.3x) posted: `mtu + ETH_HLEN`, no room for a tag.
pub const fn rx_buf_len_early(mtu: u32) -> u32 {
    mtu + ETH_HLEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_16_bytes_with_type_color_last() {
        assert_eq!(size_of::<WqEnetDesc>(), 16);
        assert_eq!(size_of::<RqEnetDesc>(), 16);
        assert_eq!(size_of::<CqDesc>(), 16);
        assert_eq!(size_of::<CqEnetRqDesc>(), 16);
        let c = CqDesc::new(CQ_DESC_TYPE_WQ_ENET, 0, 5, true);
        assert_eq!(c.as_bytes()[CQ_TYPE_COLOR_OFFSET], 0x80);
    }

    #[test]
    fn rq_completion_round_trips_and_masks_fields() {
        let c = RqCompletion {
            completed_index: 0x0ABC,
            q_number: 0x3FF,
            sop: true,
            eop: false,
            bytes_written: 9018,
            truncated: true,
            fcs_ok: true,
            ty: CQ_DESC_TYPE_RQ_ENET,
            color: true,
        };
        let d = CqEnetRqDesc::new(c);
        assert_eq!(d.decode(), c);
        let b = d.as_bytes();
        assert_eq!(u16::from_le_bytes([b[8], b[9]]) & LEN_MASK, 9018);
        assert_eq!(b[15], 0x83);
        // Over-wide inputs are masked to the field widths, not spilled into flags.
        let wide = CqEnetRqDesc::new(RqCompletion { completed_index: 0xFFFF, bytes_written: 0xFFFF, ..c });
        assert_eq!(wide.decode().completed_index, 0x0FFF);
        assert_eq!(wide.decode().bytes_written, 0x3FFF);
        assert!(wide.decode().sop && !wide.decode().eop);
    }

    #[test]
    fn wq_length_zero_means_16k_and_flags_decode() {
        let d = WqEnetDesc::packet(0x1000, 1514);
        assert_eq!(d.buf_len(), 1514);
        assert!(d.eop() && d.cq_entry());
        let full = WqEnetDesc::packet(0x1000, 0);
        assert_eq!(full.buf_len(), 16384);
        let r = RqEnetDesc::new(0x2000, 9018, RQ_ENET_TYPE_ONLY_SOP);
        assert_eq!((r.buf_len(), r.ty()), (9018, RQ_ENET_TYPE_ONLY_SOP));
        assert_eq!(rx_buf_len(9000) - rx_buf_len_early(9000), 4);
    }
}
