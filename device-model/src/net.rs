//! Internet checksums as NIC offload engines compute them (RFC 1071 ones' complement), and the
//! few Ethernet/IPv4 header facts the models need to check or insert them. All functions
//! take untrusted frames: short or malformed input yields `None`, never a panic.

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETH_HLEN: usize = 14;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// Ones' complement sum of `data` (16-bit big-endian words, odd byte padded), unfolded.
pub fn ones_sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [b] = chunks.remainder() {
        acc += (*b as u64) << 8;
    }
    acc
}

/// Fold a sum to 16 bits.
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

/// The Internet checksum of `data` (complement of the folded sum).
pub fn checksum(data: &[u8]) -> u16 {
    !fold(ones_sum(data, 0))
}

/// What an RX checksum engine found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxCsum {
    /// IPv4 header checksum checked; `Some(ok)`.
    pub ip: Option<bool>,
    /// TCP checksum checked.
    pub tcp: Option<bool>,
    /// UDP checksum checked (a zero UDP checksum is "none" and not checked).
    pub udp: Option<bool>,
}

/// Check the IPv4 header checksum and the TCP/UDP checksum of an untagged Ethernet frame
/// (without FCS). Non-IPv4 frames and fragments yield nothing checked.
pub fn rx_check(frame: &[u8]) -> RxCsum {
    let mut r = RxCsum::default();
    let Some(et) = frame.get(12..14) else { return r };
    if u16::from_be_bytes([et[0], et[1]]) != ETHERTYPE_IPV4 {
        return r;
    }
    let Some(ip) = frame.get(ETH_HLEN..) else { return r };
    let Some(&vihl) = ip.first() else { return r };
    let ihl = ((vihl & 0xF) as usize) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return r;
    }
    let Some(hdr) = ip.get(..ihl) else { return r };
    r.ip = Some(fold(ones_sum(hdr, 0)) == 0xFFFF);
    let total = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
    let frag = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3FFF;
    let Some(seg) = ip.get(ihl..total.max(ihl)) else { return r };
    if frag != 0 {
        return r;
    }
    let proto = hdr[9];
    let pseudo = |len: usize| {
        let mut acc = ones_sum(&hdr[12..20], 0);
        acc += proto as u64;
        acc + len as u64
    };
    match proto {
        IPPROTO_TCP if seg.len() >= 20 => r.tcp = Some(fold(ones_sum(seg, pseudo(seg.len()))) == 0xFFFF),
        // A zero UDP checksum means "none sent".
        IPPROTO_UDP if seg.len() >= 8 && (seg[6] != 0 || seg[7] != 0) => {
            r.udp = Some(fold(ones_sum(seg, pseudo(seg.len()))) == 0xFFFF)
        }
        _ => {}
    }
    r
}

/// TX checksum insertion as the offload engines do it: sum `frame[start..=end]` (`end` 0 =
/// to the end of the frame) and store the complement, big-endian, at `offset`. The driver
/// has pre-seeded the field (zero, or the pseudo-header sum for TCP/UDP). Out-of-range
/// parameters leave the frame untouched and return false.
pub fn insert_checksum(frame: &mut [u8], start: usize, offset: usize, end: usize) -> bool {
    let last = if end == 0 { frame.len().saturating_sub(1) } else { end.min(frame.len().saturating_sub(1)) };
    if start > last || offset.checked_add(2).is_none_or(|e| e > frame.len()) {
        return false;
    }
    let Some(span) = frame.get(start..=last) else { return false };
    let c = checksum(span);
    let c = c.to_be_bytes();
    frame[offset] = c[0];
    frame[offset + 1] = c[1];
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP/IPv4 frame with correct checksums.
    pub(crate) fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + payload.len()];
        f[12] = 0x08;
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        let total = (20 + 8 + payload.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[8] = 64;
        ip[9] = IPPROTO_UDP;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let c = checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let ulen = (8 + payload.len()) as u16;
        f[34..36].copy_from_slice(&1234u16.to_be_bytes());
        f[36..38].copy_from_slice(&5678u16.to_be_bytes());
        f[38..40].copy_from_slice(&ulen.to_be_bytes());
        f[42..].copy_from_slice(payload);
        // Seed with the pseudo-header sum, then let the "engine" finish.
        let mut acc = ones_sum(&f[26..34], 0) + IPPROTO_UDP as u64 + ulen as u64;
        acc = ones_sum(&f[34..], acc);
        let c = !fold(acc);
        f[40..42].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn good_frame_checks_and_a_flipped_bit_does_not() {
        let f = udp_frame(b"hello checksum");
        assert_eq!(rx_check(&f), RxCsum { ip: Some(true), tcp: None, udp: Some(true) });
        let mut g = f.clone();
        g[45] ^= 4;
        assert_eq!(rx_check(&g).udp, Some(false));
        let mut h = f.clone();
        h[22] ^= 1;
        assert_eq!(rx_check(&h).ip, Some(false));
        assert_eq!(rx_check(&f[..20]), RxCsum::default());
    }

    #[test]
    fn insertion_matches_a_correct_checksum() {
        let good = udp_frame(b"payload!");
        let mut f = good.clone();
        f[24] = 0;
        f[25] = 0;
        assert!(insert_checksum(&mut f, 14, 24, 33));
        assert_eq!(f, good);
        assert!(!insert_checksum(&mut f, 14, 4000, 0));
        assert!(!insert_checksum(&mut f, 500, 24, 0));
    }
}

/// Layer 4 of a frame built by [`ipv4_frame`] / [`ipv6_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP with flags SYN (no ACK), checksum filled in.
    Tcp { sport: u16, dport: u16 },
    /// UDP, checksum filled in.
    Udp { sport: u16, dport: u16 },
    /// No upper layer header (protocol 253, reserved for experiments), `payload` only.
    None,
}

fn l4_segment(l4: L4, payload: usize) -> (u8, Vec<u8>) {
    let data = (0..payload).map(|i| (i as u8).wrapping_mul(7));
    match l4 {
        L4::Tcp { sport, dport } => {
            let mut s = vec![0u8; 20];
            s[0..2].copy_from_slice(&sport.to_be_bytes());
            s[2..4].copy_from_slice(&dport.to_be_bytes());
            s[12] = 5 << 4;
            s[13] = 0x02;
            s[14..16].copy_from_slice(&0x4000u16.to_be_bytes());
            s.extend(data);
            (IPPROTO_TCP, s)
        }
        L4::Udp { sport, dport } => {
            let mut s = vec![0u8; 8];
            s[0..2].copy_from_slice(&sport.to_be_bytes());
            s[2..4].copy_from_slice(&dport.to_be_bytes());
            let len = (8 + payload) as u16;
            s[4..6].copy_from_slice(&len.to_be_bytes());
            s.extend(data);
            (IPPROTO_UDP, s)
        }
        L4::None => (253, data.collect()),
    }
}

/// Store the TCP/UDP checksum of `seg` given the pseudo-header sum `pseudo`.
fn fill_l4_checksum(proto: u8, seg: &mut [u8], pseudo: u64) {
    let at = match proto {
        IPPROTO_TCP => 16,
        IPPROTO_UDP => 6,
        _ => return,
    };
    let c = !fold(ones_sum(seg, pseudo));
    let c = if proto == IPPROTO_UDP && c == 0 { 0xFFFF } else { c };
    if let Some(f) = seg.get_mut(at..at + 2) {
        f.copy_from_slice(&c.to_be_bytes());
    }
}

/// A broadcast Ethernet frame carrying IPv4 from `src` to `dst` (header checksum right,
/// identification `id`, `frag` = flags/fragment-offset word) and `l4` with `payload`
/// bytes; TCP/UDP checksums filled in.
pub fn ipv4_frame(src: [u8; 4], dst: [u8; 4], id: u16, frag: u16, l4: L4, payload: usize) -> Vec<u8> {
    let (proto, mut seg) = l4_segment(l4, payload);
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + seg.len()) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let pseudo = ones_sum(&ip[12..20], 0) + u64::from(proto) + seg.len() as u64;
    fill_l4_checksum(proto, &mut seg, pseudo);
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&seg);
    f
}

/// A broadcast Ethernet frame carrying IPv6 from `src` to `dst`, the extension headers
/// `ext` (each `(next-header value of this header, its bytes)`, chained in order), and
/// `l4` with `payload` bytes; TCP/UDP checksums filled in (over `src`/`dst`).
pub fn ipv6_frame(src: [u8; 16], dst: [u8; 16], ext: &[(u8, Vec<u8>)], l4: L4, payload: usize) -> Vec<u8> {
    let (proto, mut seg) = l4_segment(l4, payload);
    let mut pseudo = ones_sum(&src, 0) + ones_sum(&dst, 0);
    pseudo += seg.len() as u64 + u64::from(proto);
    fill_l4_checksum(proto, &mut seg, pseudo);
    let mut chain = Vec::new();
    for (i, (_, bytes)) in ext.iter().enumerate() {
        let mut h = bytes.clone();
        if let Some(b) = h.first_mut() {
            *b = ext.get(i + 1).map_or(proto, |n| n.0);
        }
        chain.extend_from_slice(&h);
    }
    let first = ext.first().map_or(proto, |e| e.0);
    let mut ip = vec![0x60, 0, 0, 0, 0, 0, first, 64];
    ip[4..6].copy_from_slice(&((chain.len() + seg.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x86, 0xDD]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&chain);
    f.extend_from_slice(&seg);
    f
}
