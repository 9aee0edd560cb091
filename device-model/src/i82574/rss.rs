//! Receive-side scaling of the 82574L: what a received frame is (IPv4/IPv6, TCP/UDP,
//! fragment, extension headers), which RSS hash type MRQC selects for it, the Toeplitz
//! hash over the 40-byte RSSRK key, and the queue RETA names.
//!
//! Facts (QEMU `hw/net/e1000e_core.c` `e1000e_rss_get_hash_type` / `e1000e_rss_parse_packet`,
//! `e1000x_regs.h`, `net/net_rx_pkt.c` `net_rx_pkt_calc_rss_hash`; the Toeplitz function
//! and its input order as Microsoft's RSS specification defines them):
//! * RSS runs when MRQC.MRQE = 01 and the write-back can carry the hash: RXCSUM.PCSD set
//!   and extended descriptors (RFCTL.EXTEN). Otherwise every frame goes to queue 0.
//! * Hash type, first that applies: IPv4 — TCP/IPv4 (not a fragment, TCP, MRQC bit 16),
//!   else IPv4 (bit 17). IPv6 — unless RFCTL.IPV6_EX_DIS and the frame has extension
//!   headers, or RFCTL.NEW_IPV6_EXT_DIS and it carries a home address option or a type 2
//!   routing header: TCP/IPv6 (not a fragment, TCP, bit 18), else IPv6Ex (bit 19); then
//!   IPv6 (bit 20). Anything else: no hash, queue 0, type 0.
//! * Hash input, in network byte order: source address, destination address, then source
//!   and destination port for the TCP types. For IPv6Ex and TCP/IPv6 the home address
//!   option's address replaces the source and a type 2 routing header's address the
//!   destination when present (QEMU hashes TCP/IPv6 as its "TCP/IPv6 Ex" type).
//! * Queue: bit 7 of RETA entry `hash & 0x7F` (entries are bytes, four per register).

use nicqual_hw::i82574::{self as r, RssType};
use nicqual_hw::i82574_desc as d;

const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// IPv6 extension headers walked to find the upper layer (hop-by-hop, routing, fragment,
/// destination options, authentication).
const NH_HOP: u8 = 0;
const NH_ROUTING: u8 = 43;
const NH_FRAGMENT: u8 = 44;
const NH_AUTH: u8 = 51;
const NH_DEST_OPTS: u8 = 60;
/// Destination option carrying the mobile node's home address (RFC 6275).
const OPT_HOME_ADDRESS: u8 = 0xC9;
/// Extension headers looked at before giving up on finding the upper layer.
const MAX_EXT_HEADERS: usize = 8;

/// Layer 3 of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L3 {
    #[default]
    Other,
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        id: u16,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        /// Any extension header present.
        ext: bool,
        /// Home address option's address (replaces the source for the Ex hashes).
        home: Option<[u8; 16]>,
        /// Type 2 routing header's address (replaces the destination for the Ex hashes).
        route2: Option<[u8; 16]>,
    },
}

/// What the receive path needs to know of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flow {
    pub l3: L3,
    /// A fragment (IPv4 MF or offset, an IPv6 fragment header).
    pub fragment: bool,
    /// Upper-layer protocol, when the header is whole in the frame and not a fragment
    /// past the first.
    pub tcp: bool,
    pub udp: bool,
    /// Source and destination port (TCP or UDP).
    pub ports: [u8; 4],
}

impl Flow {
    /// False when the frame's EtherType is neither IPv4, IPv6 nor an 802.1Q tag: nothing
    /// for [`Flow::parse`] to find (the receive path's fast way past non-IP frames).
    #[inline]
    pub fn may_be_ip(frame: &[u8]) -> bool {
        matches!(be16(frame, 12), Some(ETHERTYPE_IPV4 | ETHERTYPE_IPV6 | ETHERTYPE_VLAN))
    }

    /// Parse an Ethernet frame (no FCS); one 802.1Q tag is skipped. Malformed or short
    /// headers leave what they cannot show at its default.
    pub fn parse(frame: &[u8]) -> Flow {
        let mut f = Flow::default();
        let mut off = 12;
        let mut et = be16(frame, off);
        if et == Some(ETHERTYPE_VLAN) {
            off += 4;
            et = be16(frame, off);
        }
        let l3 = off + 2;
        match et {
            Some(ETHERTYPE_IPV4) => f.parse_v4(frame.get(l3..).unwrap_or_default()),
            Some(ETHERTYPE_IPV6) => f.parse_v6(frame.get(l3..).unwrap_or_default()),
            _ => {}
        }
        f
    }

    fn parse_v4(&mut self, ip: &[u8]) {
        let Some(&vihl) = ip.first() else { return };
        let ihl = usize::from(vihl & 0xF) * 4;
        if vihl >> 4 != 4 || ihl < 20 || ip.len() < ihl {
            return;
        }
        let (Some(src), Some(dst)) = (arr::<4>(ip, 12), arr::<4>(ip, 16)) else { return };
        self.l3 = L3::V4 { src, dst, id: be16(ip, 4).unwrap_or(0) };
        let frag = be16(ip, 6).unwrap_or(0);
        self.fragment = frag & 0x3FFF != 0;
        if frag & 0x1FFF == 0 {
            self.upper(ip.get(9).copied().unwrap_or(0), ip.get(ihl..).unwrap_or_default());
        }
    }

    fn parse_v6(&mut self, ip: &[u8]) {
        if ip.first().is_none_or(|b| b >> 4 != 6) || ip.len() < 40 {
            return;
        }
        let (Some(src), Some(dst)) = (arr::<16>(ip, 8), arr::<16>(ip, 24)) else { return };
        let (mut ext, mut home, mut route2) = (false, None, None);
        let mut nh = ip.get(6).copied().unwrap_or(0);
        let mut off = 40;
        let mut first_fragment = true;
        for _ in 0..MAX_EXT_HEADERS {
            let Some(h) = ip.get(off..) else { break };
            let len = match nh {
                NH_HOP | NH_ROUTING | NH_DEST_OPTS => (usize::from(h.get(1).copied().unwrap_or(0)) + 1) * 8,
                NH_FRAGMENT => 8,
                NH_AUTH => (usize::from(h.get(1).copied().unwrap_or(0)) + 2) * 4,
                _ => break,
            };
            let Some(h) = h.get(..len) else { break };
            ext = true;
            match nh {
                NH_ROUTING if h.get(2) == Some(&2) && h.get(3) == Some(&1) && len == 24 => route2 = arr::<16>(h, 8),
                NH_DEST_OPTS => home = home.or_else(|| home_address(h.get(2..).unwrap_or_default())),
                NH_FRAGMENT => {
                    self.fragment = true;
                    first_fragment = be16(h, 2).unwrap_or(0) & 0xFFF8 == 0;
                }
                _ => {}
            }
            nh = h.first().copied().unwrap_or(0);
            off += len;
        }
        self.l3 = L3::V6 { src, dst, ext, home, route2 };
        if first_fragment {
            self.upper(nh, ip.get(off..).unwrap_or_default());
        }
    }

    fn upper(&mut self, proto: u8, l4: &[u8]) {
        let whole = match proto {
            IPPROTO_TCP => l4.len() >= 20,
            IPPROTO_UDP => l4.len() >= 8,
            _ => false,
        };
        if whole && let Some(p) = arr::<4>(l4, 0) {
            self.tcp = proto == IPPROTO_TCP;
            self.udp = proto == IPPROTO_UDP;
            self.ports = p;
        }
    }

    /// Packet type of the extended write-back (status 19:16); `ipv6_dis` (RFCTL.IPV6_DIS)
    /// reports IPv6 frames as MAC only, as QEMU's `e1000e_build_rx_metadata` does.
    pub fn packet_type(&self, ipv6_dis: bool) -> u32 {
        let l4 = self.tcp || self.udp;
        match self.l3 {
            L3::V4 { .. } if l4 => d::RXD_PKT_IP4_XDP,
            L3::V4 { .. } => d::RXD_PKT_IP4,
            L3::V6 { .. } if ipv6_dis => d::RXD_PKT_MAC,
            L3::V6 { .. } if l4 => d::RXD_PKT_IP6_XDP,
            L3::V6 { .. } => d::RXD_PKT_IP6,
            L3::Other => d::RXD_PKT_MAC,
        }
    }

    /// The hash type MRQC and RFCTL select for this frame.
    pub fn rss_type(&self, mrqc: u32, rfctl: u32) -> RssType {
        match self.l3 {
            L3::V4 { .. } => {
                if !self.fragment && self.tcp && mrqc & r::MRQC_TCP_IPV4 != 0 {
                    RssType::Ipv4Tcp
                } else if mrqc & r::MRQC_IPV4 != 0 {
                    RssType::Ipv4
                } else {
                    RssType::None
                }
            }
            L3::V6 { ext, home, route2, .. } => {
                let ex_ok = (rfctl & r::RFCTL_IPV6_EX_DIS == 0 || !ext)
                    && (rfctl & r::RFCTL_NEW_IPV6_EXT_DIS == 0 || (home.is_none() && route2.is_none()));
                if ex_ok && !self.fragment && self.tcp && mrqc & r::MRQC_TCP_IPV6 != 0 {
                    RssType::Ipv6Tcp
                } else if ex_ok && mrqc & r::MRQC_IPV6_EX != 0 {
                    RssType::Ipv6Ex
                } else if mrqc & r::MRQC_IPV6 != 0 {
                    RssType::Ipv6
                } else {
                    RssType::None
                }
            }
            L3::Other => RssType::None,
        }
    }

    /// The Toeplitz hash of this frame for hash type `ty` under `key` (0 for no type).
    pub fn rss_hash(&self, ty: RssType, key: &[u8; r::RSS_KEY_LEN]) -> u32 {
        let mut input = [0u8; 36];
        let n = match (self.l3, ty) {
            (L3::V4 { src, dst, .. }, RssType::Ipv4 | RssType::Ipv4Tcp) => {
                input[..4].copy_from_slice(&src);
                input[4..8].copy_from_slice(&dst);
                if ty == RssType::Ipv4Tcp {
                    input[8..12].copy_from_slice(&self.ports);
                    12
                } else {
                    8
                }
            }
            (L3::V6 { src, dst, home, route2, .. }, RssType::Ipv6 | RssType::Ipv6Ex | RssType::Ipv6Tcp) => {
                let ex = ty != RssType::Ipv6;
                input[..16].copy_from_slice(&if ex { home.unwrap_or(src) } else { src });
                input[16..32].copy_from_slice(&if ex { route2.unwrap_or(dst) } else { dst });
                if ty == RssType::Ipv6Tcp {
                    input[32..36].copy_from_slice(&self.ports);
                    36
                } else {
                    32
                }
            }
            _ => return 0,
        };
        toeplitz(key, input.get(..n).unwrap_or_default())
    }
}

/// The Toeplitz hash of `input` under `key` (Microsoft RSS specification): for every
/// set bit of the input, most significant first, XOR in the 32 key bits starting at that
/// bit's position. Input past `8 * key.len() - 32` bits contributes nothing.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let mut result = 0u32;
    // The 32-bit key window at the current input bit, and the key bits still to shift in.
    let mut window = key.iter().take(4).fold(0u32, |w, &b| w << 8 | u32::from(b));
    let mut next = key.iter().skip(4);
    for &byte in input {
        let incoming = next.next().copied().unwrap_or(0);
        for bit in (0..8).rev() {
            if byte & (1 << bit) != 0 {
                result ^= window;
            }
            window = window << 1 | u32::from(incoming >> bit & 1);
        }
    }
    result
}

/// The key RSSRK0..9 hold: byte `4n + k` is bits `8k+7:8k` of RSSRK\[n\].
pub fn key_from_regs(regs: impl Iterator<Item = u32>) -> [u8; r::RSS_KEY_LEN] {
    let mut key = [0u8; r::RSS_KEY_LEN];
    for (chunk, v) in key.chunks_exact_mut(4).zip(regs) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    key
}

/// The queue RETA sends `hash` to: bit 7 of entry `hash & 0x7F`, where entry `4n + k` is
/// bits `8k+7:8k` of RETA\[n\].
pub fn reta_queue(reta_reg: impl Fn(u32) -> u32, hash: u32) -> u32 {
    let idx = hash & r::RETA_INDEX_MASK;
    let entry = (reta_reg(idx / 4) >> (8 * (idx % 4))) as u8;
    u32::from(entry & r::RETA_QUEUE_BIT != 0)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

fn arr<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at + N).and_then(|s| s.try_into().ok())
}

/// The Home Address option's address among destination options `opts` (TLV encoded).
fn home_address(mut opts: &[u8]) -> Option<[u8; 16]> {
    while let Some(&t) = opts.first() {
        if t == 0 {
            opts = opts.get(1..)?; // Pad1
            continue;
        }
        let len = usize::from(*opts.get(1)?);
        if t == OPT_HOME_ADDRESS && len == 16 {
            return arr::<16>(opts, 2);
        }
        opts = opts.get(2 + len..)?;
    }
    None
}
