//! Receive completions as hostile input: every field of a CQE is checked against what the
//! driver posted before it is used. Each refusal names the field and the bound it broke.

use nicqual_hw::bnx2x::{self as hw, EndAggRxCqe, FastPathRxCqe};
use zerocopy::FromBytes;

/// Ethernet header length (the shortest frame a CQE may report).
pub const ETH_HLEN: u16 = 14;

/// Why a CQE was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingCqeError {
    #[error("CQE not written (marker {marker:#010x}) although the status block reports it done")]
    NotReady { marker: u32 },
    #[error("CQE is all-ones (device gone, or garbage)")]
    AllOnes,
    #[error("CQE type {cqe_type} is not a receive completion")]
    UnexpectedType { cqe_type: u8 },
    #[error("TPA CQE (type {cqe_type}) on a queue with TPA off")]
    TpaOff { cqe_type: u8 },
    #[error("CQE pkt_len {pkt_len} outside {min}..={max}")]
    BadLength { pkt_len: u16, min: u16, max: u16 },
    #[error("CQE len_on_bd {len_on_bd} differs from pkt_len {pkt_len} (one BD per frame)")]
    LenOnBd { len_on_bd: u16, pkt_len: u16 },
    #[error("CQE placement_offset {placement_offset} + len_on_bd {len_on_bd} overruns the {buf_len}-byte buffer")]
    Overrun { placement_offset: u8, len_on_bd: u16, buf_len: u32 },
    #[error("CQE completes an RX BD but none is posted (bd_cons == bd_prod {bd_prod})")]
    NoBufferPosted { bd_prod: u16 },
    #[error("TPA aggregation id {agg} out of range (0..{max})")]
    AggOutOfRange { agg: u8, max: u8 },
    #[error("TPA start on aggregation {agg}, which is already open")]
    AggAlreadyOpen { agg: u8 },
    #[error("TPA end on aggregation {agg}, which was never started")]
    TpaEndWithoutStart { agg: u8 },
    #[error("TPA end pkt_len {pkt_len} below the start's len_on_bd {len_on_bd} or above {max}")]
    TpaLength { pkt_len: u16, len_on_bd: u16, max: u16 },
    #[error("TPA end needs {pages} SGE pages for {bytes} bytes; at most {max} allowed")]
    SgeCount { pages: usize, bytes: usize, max: usize },
    #[error("TPA end SGE list entry {pos} names index {index}; the next posted SGE is {expected}")]
    SgeNotPosted { pos: usize, index: u16, expected: u16 },
    #[error("TPA end lists {pages} SGE pages but only {posted} are posted")]
    SgeShort { pages: usize, posted: usize },
}

/// A CQE sorted by type: a typed view of the 64 bytes read (no copy).
#[derive(Debug, Clone, Copy)]
pub enum Cqe<'a> {
    FastPath(&'a FastPathRxCqe),
    TpaStart(&'a FastPathRxCqe),
    TpaEnd(&'a EndAggRxCqe),
}

/// First checks of a raw 64-byte CQE: written, not all-ones, a known receive type.
pub fn classify(raw: &[u8; hw::RCQ_CQE_SIZE], tpa: bool) -> Result<Cqe<'_>, RingCqeError> {
    let fp = FastPathRxCqe::ref_from_bytes(raw).map_err(|_| RingCqeError::AllOnes)?;
    let marker = fp.marker.get();
    if marker != 0 {
        return Err(RingCqeError::NotReady { marker });
    }
    if raw.get(..hw::RCQ_CQE_SIZE - 4).is_some_and(|b| b.iter().all(|&x| x == 0xFF)) {
        return Err(RingCqeError::AllOnes);
    }
    let cqe_type = fp.type_error_flags & hw::CQE_TYPE_MASK;
    match cqe_type {
        hw::CQE_TYPE_FAST_PATH => Ok(Cqe::FastPath(fp)),
        hw::CQE_TYPE_TPA_START | hw::CQE_TYPE_TPA_STOP if !tpa => Err(RingCqeError::TpaOff { cqe_type }),
        hw::CQE_TYPE_TPA_START => Ok(Cqe::TpaStart(fp)),
        hw::CQE_TYPE_TPA_STOP => {
            EndAggRxCqe::ref_from_bytes(raw).map(Cqe::TpaEnd).map_err(|_| RingCqeError::UnexpectedType { cqe_type })
        }
        _ => Err(RingCqeError::UnexpectedType { cqe_type }),
    }
}

/// A fast-path or TPA-start CQE's lengths against the buffer: `max_frame` is the largest
/// frame the MTU allows, `buf_len` the bytes the device may use from the mapping start.
pub fn check_bd_lengths(cqe: &FastPathRxCqe, max_frame: u16, buf_len: u32) -> Result<u16, RingCqeError> {
    let pkt_len = cqe.pkt_len_or_gro_seg_len.get();
    if !(ETH_HLEN..=max_frame).contains(&pkt_len) {
        return Err(RingCqeError::BadLength { pkt_len, min: ETH_HLEN, max: max_frame });
    }
    let len_on_bd = cqe.len_on_bd.get();
    if len_on_bd != pkt_len {
        return Err(RingCqeError::LenOnBd { len_on_bd, pkt_len });
    }
    if u32::from(cqe.placement_offset) + u32::from(len_on_bd) > buf_len {
        return Err(RingCqeError::Overrun { placement_offset: cqe.placement_offset, len_on_bd, buf_len });
    }
    Ok(len_on_bd)
}

/// SGE pages a TPA end needs for the bytes past the start's BD.
pub fn sge_pages_for(pkt_len: u16, len_on_bd: u16, max_sges: usize) -> Result<usize, RingCqeError> {
    let max = hw::TPA_MAX_AGG_LEN as u16;
    if pkt_len < len_on_bd {
        return Err(RingCqeError::TpaLength { pkt_len, len_on_bd, max });
    }
    let bytes = usize::from(pkt_len - len_on_bd);
    let pages = bytes.div_ceil(hw::SGE_PAGE_SIZE);
    if pages > max_sges.min(hw::U_ETH_SGL_SIZE) {
        return Err(RingCqeError::SgeCount { pages, bytes, max: max_sges.min(hw::U_ETH_SGL_SIZE) });
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    fn raw(c: &FastPathRxCqe) -> [u8; 64] {
        let mut r = [0u8; 64];
        r.copy_from_slice(c.as_bytes());
        r
    }

    #[test]
    fn each_hostile_field_is_refused_by_name() {
        let mut c = FastPathRxCqe { placement_offset: 66, ..Default::default() };
        c.pkt_len_or_gro_seg_len.set(100);
        c.len_on_bd.set(100);
        assert!(matches!(classify(&raw(&c), false), Ok(Cqe::FastPath(_))));
        assert_eq!(check_bd_lengths(&c, 1530, 1600), Ok(100));
        c.len_on_bd.set(0xF000);
        c.pkt_len_or_gro_seg_len.set(0xF000);
        assert!(matches!(check_bd_lengths(&c, 1530, 1600), Err(RingCqeError::BadLength { .. })));
        c.pkt_len_or_gro_seg_len.set(1530);
        c.len_on_bd.set(1530);
        c.placement_offset = 100;
        assert!(matches!(check_bd_lengths(&c, 1530, 1600), Err(RingCqeError::Overrun { .. })));
        let mut ones = [0xFFu8; 64];
        ones[60..].fill(0);
        assert_eq!(classify(&ones, true).unwrap_err(), RingCqeError::AllOnes);
        let mut t = c;
        t.type_error_flags = hw::CQE_TYPE_TPA_STOP;
        assert_eq!(classify(&raw(&t), false).unwrap_err(), RingCqeError::TpaOff { cqe_type: 3 });
        t.marker.set(hw::CQE_MARKER_UNUSED);
        assert!(matches!(classify(&raw(&t), true), Err(RingCqeError::NotReady { .. })));
        t.type_error_flags = hw::CQE_TYPE_RAMROD;
        t.marker.set(0);
        assert_eq!(classify(&raw(&t), true).unwrap_err(), RingCqeError::UnexpectedType { cqe_type: 1 });
        assert_eq!(sge_pages_for(100 + 8192, 100, 8), Ok(2));
        assert!(matches!(sge_pages_for(50, 100, 8), Err(RingCqeError::TpaLength { .. })));
        assert!(matches!(sge_pages_for(60000, 100, 2), Err(RingCqeError::SgeCount { pages: 15, .. })));
    }
}
