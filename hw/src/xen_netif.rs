//! Xen paravirtual network interface facts: the shared-ring page, netif request and
//! response layouts, grant-table entries and status codes, xenstore keys.
//!
//! Sources: Xen `include/public/io/{ring.h,netif.h}` and `include/public/grant_table.h`
//! (the same headers Linux carries under `include/xen/interface/`). All fields are
//! little-endian (x86 guests).

use zerocopy::little_endian::{I16, U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Page size of a PV guest and of every grant.
pub const PAGE_SIZE: usize = 4096;

/// Byte offsets in a shared-ring page (`struct *_sring` of ring.h).
pub mod sring {
    /// Producer index of requests (front end writes).
    pub const REQ_PROD: usize = 0;
    /// Back end wants an event when `req_prod` passes this.
    pub const REQ_EVENT: usize = 4;
    /// Producer index of responses (back end writes).
    pub const RSP_PROD: usize = 8;
    /// Front end wants an event when `rsp_prod` passes this.
    pub const RSP_EVENT: usize = 12;
    /// Entries (a union of request and response) start here.
    pub const ENTRIES: usize = 64;
}

/// Number of entries of a shared ring whose union entry is `entry_len` bytes:
/// the largest power of two that fits in the page after the header (`__RING_SIZE`).
pub const fn ring_entries(entry_len: usize) -> u32 {
    let n = (PAGE_SIZE - sring::ENTRIES) / entry_len;
    if n == 0 { 0 } else { 1 << (usize::BITS - 1 - n.leading_zeros()) }
}

/// `netif_tx_request` (12 bytes). In the first slot of a packet `size` is the whole packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TxRequest {
    pub gref: U32,
    pub offset: U16,
    pub flags: U16,
    pub id: U16,
    pub size: U16,
}

/// `netif_tx_response` (4 bytes; the ring slot is 12, shared with the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TxResponse {
    pub id: U16,
    pub status: I16,
}

/// `netif_rx_request` (8 bytes). `id` is echoed back in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RxRequest {
    pub id: U16,
    pub pad: U16,
    pub gref: U32,
}

/// `netif_rx_response` (8 bytes). `status` >= 0 is the byte count; < 0 is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RxResponse {
    pub id: U16,
    pub offset: U16,
    pub flags: U16,
    pub status: I16,
}

/// Ring slot size of the TX ring (request and response share a slot).
pub const TX_SLOT_LEN: usize = 12;
/// Ring slot size of the RX ring.
pub const RX_SLOT_LEN: usize = 8;
/// `NET_TX_RING_SIZE` for a 4 KiB page.
pub const TX_RING_SIZE: u32 = ring_entries(TX_SLOT_LEN);
/// `NET_RX_RING_SIZE` for a 4 KiB page.
pub const RX_RING_SIZE: u32 = ring_entries(RX_SLOT_LEN);

const _: () = {
    assert!(size_of::<TxRequest>() == TX_SLOT_LEN);
    assert!(size_of::<TxResponse>() <= TX_SLOT_LEN);
    assert!(size_of::<RxRequest>() == RX_SLOT_LEN);
    assert!(size_of::<RxResponse>() == RX_SLOT_LEN);
    assert!(TX_RING_SIZE == 256 && RX_RING_SIZE == 256);
};

/// `NETTXF_*` flags of a TX request.
pub mod txf {
    pub const CSUM_BLANK: u16 = 1 << 0;
    pub const DATA_VALIDATED: u16 = 1 << 1;
    pub const MORE_DATA: u16 = 1 << 2;
    pub const EXTRA_INFO: u16 = 1 << 3;
}

/// `NETRXF_*` flags of an RX response.
pub mod rxf {
    pub const DATA_VALIDATED: u16 = 1 << 0;
    pub const CSUM_BLANK: u16 = 1 << 1;
    pub const MORE_DATA: u16 = 1 << 2;
    pub const EXTRA_INFO: u16 = 1 << 3;
    pub const GSO_PREFIX: u16 = 1 << 4;
}

/// `NETIF_RSP_*` response status codes.
pub mod rsp {
    pub const DROPPED: i16 = -2;
    pub const ERROR: i16 = -1;
    pub const OKAY: i16 = 0;
    /// Padding response for an extra-info slot.
    pub const NULL: i16 = 1;
}

/// `XEN_NETIF_NR_SLOTS_MIN`: slots a back end must accept for one packet.
pub const NR_SLOTS_MIN: u32 = 18;
/// Bytes of an Ethernet header (`ETH_HLEN`): no received frame can be shorter.
pub const ETH_HLEN: u16 = 14;

/// Netfront's `NET_RX_SLOTS_MIN` (`XEN_NETIF_NR_SLOTS_MIN + 1`).
pub const NET_RX_SLOTS_MIN: u32 = 19;
/// Largest packet a TX request can describe (`size` is 16 bits).
pub const MAX_TX_SIZE: u32 = 0xFFFF;

/// How received packets reach a front end's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxMode {
    /// The back end copies into pages the front end granted (`request-rx-copy=1`).
    Copy,
    /// The back end transfers whole pages to the front end (`GNTTABOP_transfer`).
    Flip,
}

impl RxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RxMode::Copy => "copy",
            RxMode::Flip => "flip",
        }
    }
}

/// A grant reference (index into a domain's grant table).
pub type GrantRef = u32;
/// Linux's `INVALID_GRANT_REF`.
pub const INVALID_GRANT_REF: GrantRef = u32::MAX;
/// x86 `INVALID_P2M_ENTRY` (~0UL) as it appears in a 32-bit grant frame field.
pub const INVALID_FRAME: u32 = u32::MAX;
/// A domain id.
pub type DomId = u16;
/// The control domain.
pub const DOM0: DomId = 0;

/// `grant_entry_v1` (8 bytes, 512 per 4 KiB grant frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct GrantEntryV1 {
    pub flags: U16,
    pub domid: U16,
    pub frame: U32,
}

/// Grant entries per grant-table frame.
pub const GRANT_ENTRIES_PER_FRAME: usize = PAGE_SIZE / size_of::<GrantEntryV1>();

/// `GTF_*` grant-entry flags.
pub mod gtf {
    pub const INVALID: u16 = 0;
    pub const PERMIT_ACCESS: u16 = 1;
    pub const ACCEPT_TRANSFER: u16 = 2;
    pub const TRANSITIVE: u16 = 3;
    pub const TYPE_MASK: u16 = 3;
    pub const READONLY: u16 = 1 << 2;
    pub const READING: u16 = 1 << 3;
    pub const WRITING: u16 = 1 << 4;
    /// Accept-transfer sub-flags (share bit positions with the access flags).
    pub const TRANSFER_COMMITTED: u16 = 1 << 2;
    pub const TRANSFER_COMPLETED: u16 = 1 << 3;
}

/// `GNTCOPY_*` flags of a `gnttab_copy` operand.
pub mod gntcopy {
    pub const SOURCE_GREF: u16 = 1 << 0;
    pub const DEST_GREF: u16 = 1 << 1;
}

/// `GNTST_*` grant-operation status codes.
pub mod gntst {
    pub const OKAY: i16 = 0;
    pub const GENERAL_ERROR: i16 = -1;
    pub const BAD_DOMAIN: i16 = -2;
    pub const BAD_GNTREF: i16 = -3;
    pub const BAD_HANDLE: i16 = -4;
    pub const BAD_VIRT_ADDR: i16 = -5;
    pub const BAD_DEV_ADDR: i16 = -6;
    pub const NO_DEVICE_SPACE: i16 = -7;
    pub const PERMISSION_DENIED: i16 = -8;
    pub const BAD_PAGE: i16 = -9;
    pub const BAD_COPY_ARG: i16 = -10;
}

/// xenstore keys of the vif protocol (relative to the front- or back-end directory).
pub mod xs {
    /// Back end: it can copy into granted pages.
    pub const FEATURE_RX_COPY: &str = "feature-rx-copy";
    /// Back end: it can flip (transfer) pages. Absent means "yes" to old front ends.
    pub const FEATURE_RX_FLIP: &str = "feature-rx-flip";
    /// Back end: scatter-gather (needed for MTU above 1500).
    pub const FEATURE_SG: &str = "feature-sg";
    /// Front end: it wants the copying receive path.
    pub const REQUEST_RX_COPY: &str = "request-rx-copy";
    pub const TX_RING_REF: &str = "tx-ring-ref";
    pub const RX_RING_REF: &str = "rx-ring-ref";
    pub const EVENT_CHANNEL: &str = "event-channel";
    pub const STATE: &str = "state";
}

/// `XenbusState` values written under `state`.
pub mod xenbus_state {
    pub const UNKNOWN: u32 = 0;
    pub const INITIALISING: u32 = 1;
    pub const INIT_WAIT: u32 = 2;
    pub const INITIALISED: u32 = 3;
    pub const CONNECTED: u32 = 4;
    pub const CLOSING: u32 = 5;
    pub const CLOSED: u32 = 6;
    pub const RECONFIGURING: u32 = 7;
    pub const RECONFIGURED: u32 = 8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_follow_the_header_formula() {
        assert_eq!(ring_entries(8), 256);
        assert_eq!(ring_entries(12), 256);
        assert_eq!(ring_entries(16), 128);
        assert_eq!(ring_entries(4096), 0);
    }

    #[test]
    fn status_minus_one_is_the_all_ones_size() {
        let r = RxResponse { status: I16::new(rsp::ERROR), ..Default::default() };
        assert_eq!(r.status.get() as u16 as u32, 0xffff);
        assert_eq!(r.status.get() as i32 as u32, 4_294_967_295);
        assert_eq!(r.as_bytes()[6..8], [0xff, 0xff]);
    }
}
