//! Large send (LSO/TSO): one packet of up to 64 KiB that the device cuts into MSS-sized
//! TCP segments on the wire. What the driver writes is Linux's (`bnx2x_start_xmit` with
//! `XMIT_GSO`): the start BD flag `ETH_TX_BD_FLAGS_SW_LSO`, and in the E2 parse BD's
//! `parsing_data` the MSS (`bnx2x_set_pbd_gso_e2`), the TCP header's start in 16-bit words
//! and its length in dwords (`bnx2x_set_pbd_csum_e2`). The mappings are the same as for any
//! packet: the linear part once, each fragment once, held until the completion.
//!
//! Simplification: Linux splits a linear part longer than the headers into a header BD and
//! a data BD over the same mapping (`bnx2x_tx_split`); here the linear part is one BD. This
//! changes the BD count by one per packet, not what is mapped.

use super::{Bnx2x, Bnx2xError, BufferMode, XmitOutcome};
use crate::backend::Backend;
use nicqual_hw::bnx2x as hw;

/// Largest LSO packet: the BDs' 16-bit byte counts (`total_pkt_bytes`).
pub(super) const GSO_MAX: usize = 65535;

/// One LSO request (Linux: `skb_shinfo(skb)->gso_size`, `skb_transport_offset`,
/// `tcp_hdrlen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gso {
    pub mss: u16,
    /// Start of the TCP header in the packet, bytes (even).
    pub l4_offset: u16,
    /// TCP header length, bytes (20..=60, a multiple of 4).
    pub tcp_hdr_len: u8,
}

impl Gso {
    /// All headers, bytes.
    pub fn hdr_len(&self) -> usize {
        usize::from(self.l4_offset) + usize::from(self.tcp_hdr_len)
    }

    fn check(&self, q: usize, linear: usize, mtu: u32) -> Result<(), Bnx2xError> {
        let bad = |why: String| Err(Bnx2xError::Config { why: format!("queue {q}: LSO {why}") });
        if self.mss == 0 || u32::from(self.mss) > mtu {
            return bad(format!("MSS {} outside 1..={mtu}", self.mss));
        }
        if !self.l4_offset.is_multiple_of(2) || !(34..=2 * 0x7FF).contains(&self.l4_offset) {
            return bad(format!("TCP header offset {} not even in 34..=4094", self.l4_offset));
        }
        if !self.tcp_hdr_len.is_multiple_of(4) || !(20..=60).contains(&self.tcp_hdr_len) {
            return bad(format!("TCP header length {} not a multiple of 4 in 20..=60", self.tcp_hdr_len));
        }
        if self.hdr_len() >= linear {
            return bad(format!("headers ({} bytes) not inside the {linear}-byte linear part", self.hdr_len()));
        }
        Ok(())
    }
}

/// The E2 parse BD's `parsing_data` for a packet (zero without LSO).
#[inline]
pub(super) fn parsing_data(gso: Option<Gso>) -> u32 {
    gso.map_or(0, |g| {
        (u32::from(g.l4_offset / 2) & 0x7FF) << hw::PARSE_L4_HDR_START_SHIFT
            | (u32::from(g.tcp_hdr_len / 4) & 0xF) << hw::PARSE_TCP_HDR_LEN_SHIFT
            | (u32::from(g.mss) & hw::PARSE_LSO_MSS_MASK) << hw::PARSE_LSO_MSS_SHIFT
    })
}

impl<B: Backend> Bnx2x<B> {
    /// Queue an LSO packet on `q` (streaming mode only): `parts[0]` is the linear part,
    /// holding the headers; the rest are fragments. Up to 64 KiB in all.
    pub fn xmit_gso(&mut self, q: usize, parts: &[&[u8]], gso: Gso) -> Result<XmitOutcome, Bnx2xError> {
        if self.ctx.cfg.buffers != BufferMode::Streaming {
            return Err(Bnx2xError::Config { why: format!("queue {q}: LSO needs streaming buffers") });
        }
        gso.check(q, parts.first().map_or(0, |p| p.len()), self.ctx.cfg.mtu)?;
        let fq = Self::live_queue(&mut self.queues, q)?;
        self.ctx.xmit_inner(q, fq, parts, Some(gso))
    }
}
