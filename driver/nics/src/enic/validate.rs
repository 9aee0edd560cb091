//! Receive-completion validation: everything the driver checks about a completion before
//! it reads a byte of the buffer the completion names. Pure functions over the decoded
//! completion and the driver's own record of what it posted, so each hostile field has a
//! test of its own.

use super::cursor::ring;
use nicqual_hw::enic::{self as hw, RqCompletion};

/// Why a receive completion was refused. Every variant names the completion queue (or
/// the RQ, which is served by the CQ of the same number), the RQ index the completion
/// claimed and the field at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompletionError {
    #[error("CQ{cq} entry {entry}: type {ty} is not an RQ completion (3)")]
    BadType { cq: u16, entry: u32, ty: u8 },
    #[error("CQ{cq} entry {entry}: q_number {q} names RQ{q}, but this CQ serves RQ{cq}")]
    BadQueue { cq: u16, entry: u32, q: u16 },
    #[error(
        "CQ{cq} entry {entry}: completed_index {index} was never posted on RQ{cq} (outstanding: {outstanding} from RQ index {to_clean})"
    )]
    IndexNotPosted { cq: u16, entry: u32, index: u16, to_clean: u32, outstanding: u32 },
    #[error(
        "CQ{cq} entry {entry}: completed_index {index} names a buffer RQ{cq} has not fetched (fetch_index {fetch_index})"
    )]
    NotFetched { cq: u16, entry: u32, index: u16, fetch_index: u32 },
    #[error("RQ{rq}[{index}]: completion without sop: the frame spans buffers the driver posted as ONLY_SOP")]
    NotSop { rq: u16, index: u16 },
    #[error("RQ{rq}[{index}]: completion without eop: the frame continues in a buffer the driver did not expect")]
    NotEop { rq: u16, index: u16 },
    #[error(
        "RQ{rq}[{index}]: truncated by the adapter after {bytes_written} bytes (frame longer than the posted buffer)"
    )]
    Truncated { rq: u16, index: u16, bytes_written: u16 },
    #[error("RQ{rq}[{index}]: bytes_written is 0")]
    Empty { rq: u16, index: u16 },
    #[error("RQ{rq}[{index}]: bytes_written {bytes_written} exceeds the posted buffer of {posted} bytes")]
    OverPosted { rq: u16, index: u16, bytes_written: u16, posted: u32 },
    #[error("RQ{rq}[{index}]: frame of {bytes_written} bytes is larger than MTU {mtu} + {hdr} allows")]
    OverMtu { rq: u16, index: u16, bytes_written: u16, mtu: u32, hdr: u32 },
    #[error(
        "CQ{cq} entry {entry}: written with the previous lap's colour (a later entry is fresh, or cq_tail has passed it)"
    )]
    StaleColour { cq: u16, entry: u32 },
}

/// Why a transmit completion was refused: each names the CQ and the WQ it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxCompletionError {
    #[error("CQ{cq} (WQ{wq}) entry {entry}: type {ty} is not a WQ completion (0)")]
    BadType { cq: u16, wq: u16, entry: u32, ty: u8 },
    #[error("CQ{cq} (WQ{wq}) entry {entry}: q_number {q} names WQ{q}, but this CQ serves WQ{wq}")]
    BadQueue { cq: u16, wq: u16, entry: u32, q: u16 },
    #[error(
        "CQ{cq} (WQ{wq}) entry {entry}: completed_index {index} was never posted (outstanding: {outstanding} from WQ index {to_clean})"
    )]
    IndexNotPosted { cq: u16, wq: u16, entry: u32, index: u16, to_clean: u32, outstanding: u32 },
    #[error(
        "CQ{cq} (WQ{wq}) entry {entry}: written with the previous lap's colour (a later entry is fresh, or cq_tail has passed it)"
    )]
    StaleColour { cq: u16, wq: u16, entry: u32 },
}

impl CompletionError {
    /// Short stable reason, the key of the drop counters.
    pub fn reason(&self) -> &'static str {
        match self {
            CompletionError::BadType { .. } => "bad-type",
            CompletionError::BadQueue { .. } => "bad-queue",
            CompletionError::IndexNotPosted { .. } => "index-not-posted",
            CompletionError::NotFetched { .. } => "not-fetched",
            CompletionError::NotSop { .. } | CompletionError::NotEop { .. } => "spans-buffers",
            CompletionError::Truncated { .. } => "truncated",
            CompletionError::Empty { .. } => "empty",
            CompletionError::OverPosted { .. } => "over-posted-length",
            CompletionError::OverMtu { .. } => "over-mtu",
            CompletionError::StaleColour { .. } => "stale-colour",
        }
    }

    /// True when the completion names a buffer this driver posted (that buffer is then
    /// reclaimed and reposted); false when the entry is ignored whole.
    pub fn names_posted_buffer(&self) -> bool {
        !matches!(
            self,
            CompletionError::BadType { .. }
                | CompletionError::BadQueue { .. }
                | CompletionError::IndexNotPosted { .. }
                | CompletionError::NotFetched { .. }
                | CompletionError::StaleColour { .. }
        )
    }
}

/// Every drop reason, in report order.
pub const REASONS: [&str; 10] = [
    "bad-type",
    "bad-queue",
    "index-not-posted",
    "not-fetched",
    "spans-buffers",
    "truncated",
    "empty",
    "over-posted-length",
    "over-mtu",
    "stale-colour",
];

/// What the driver knows of its receive ring when a completion arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RqState {
    /// RQ ring entries.
    pub size: u32,
    /// Oldest buffer the adapter holds.
    pub to_clean: u32,
    /// Buffers the adapter holds, from `to_clean` on.
    pub outstanding: u32,
    /// The adapter's `fetch_index` (read once per service pass): buffers from `to_clean`
    /// up to it have been taken by the adapter; later ones it cannot have completed.
    pub fetch_index: u32,
    /// RQ number this CQ serves (and the CQ's own number: RQ `q` completes on CQ `q`).
    pub q: u16,
    /// Interface MTU.
    pub mtu: u32,
}

/// A completion that passed: the RQ index, how many earlier posted buffers the adapter
/// skipped, and the bytes to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub index: u32,
    pub skipped: u32,
    pub len: u32,
}

/// Check completion `c` (CQ entry `entry`, already known fresh by its colour) against the
/// ring state and the length posted at its index (`posted_len(index)`). The colour is the
/// ownership check and is done by the caller before anything else is read.
pub fn check(
    c: &RqCompletion,
    entry: u32,
    st: RqState,
    posted_len: impl Fn(u32) -> u32,
) -> Result<Accepted, CompletionError> {
    if c.ty != hw::CQ_DESC_TYPE_RQ_ENET {
        return Err(CompletionError::BadType { cq: st.q, entry, ty: c.ty });
    }
    if c.q_number != st.q {
        return Err(CompletionError::BadQueue { cq: st.q, entry, q: c.q_number });
    }
    let index = u32::from(c.completed_index);
    // Distance from the oldest outstanding buffer; only indices inside the outstanding
    // window name buffers the adapter holds (earlier ones it skipped).
    let dist = if index < st.size { ring::dist(index, st.to_clean, st.size) } else { u32::MAX };
    if dist >= st.outstanding {
        return Err(CompletionError::IndexNotPosted {
            cq: st.q,
            entry,
            index: c.completed_index,
            to_clean: st.to_clean,
            outstanding: st.outstanding,
        });
    }
    let fetched = ring::dist(st.fetch_index, st.to_clean, st.size);
    if dist >= fetched {
        return Err(CompletionError::NotFetched {
            cq: st.q,
            entry,
            index: c.completed_index,
            fetch_index: st.fetch_index,
        });
    }
    let (i, rq) = (c.completed_index, st.q);
    if !c.sop {
        return Err(CompletionError::NotSop { rq, index: i });
    }
    if !c.eop {
        return Err(CompletionError::NotEop { rq, index: i });
    }
    if c.truncated {
        return Err(CompletionError::Truncated { rq, index: i, bytes_written: c.bytes_written });
    }
    if c.bytes_written == 0 {
        return Err(CompletionError::Empty { rq, index: i });
    }
    let posted = posted_len(index);
    if u32::from(c.bytes_written) > posted {
        return Err(CompletionError::OverPosted { rq, index: i, bytes_written: c.bytes_written, posted });
    }
    if u32::from(c.bytes_written) > st.mtu + hw::VLAN_ETH_HLEN {
        return Err(CompletionError::OverMtu {
            rq,
            index: i,
            bytes_written: c.bytes_written,
            mtu: st.mtu,
            hdr: hw::VLAN_ETH_HLEN,
        });
    }
    Ok(Accepted { index, skipped: dist, len: u32::from(c.bytes_written) })
}
