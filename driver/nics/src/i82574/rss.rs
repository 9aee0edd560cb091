//! Receive-side scaling as the driver programs and predicts it: the 40-byte key (RSSRK),
//! the 128-entry redirection table (RETA), and the driver's own Toeplitz hash, so a check
//! can compare the hash the device wrote back with the one the driver expects.
//!
//! The Toeplitz function and its input (source address, destination address, then source
//! and destination port for the TCP hash types, all in network byte order) are as
//! Microsoft's "Verifying the RSS Hash Calculation" defines them; the key below is the
//! one that page verifies with (Linux e1000e uses a random key; any key works here, this
//! one makes the hashes checkable by hand). Queue selection: bit 7 of RETA entry
//! `hash & 0x7F` (82574L datasheet, RETA; QEMU `e1000x_regs.h` `E1000_RSS_QUEUE`).

use nicqual_hw::i82574 as r;

/// The RSS key the driver programs (Microsoft's verification key).
pub const KEY: [u8; r::RSS_KEY_LEN] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b,
    0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac,
    0x01, 0xfa,
];

/// Toeplitz hash of `input` under `key`: for every set bit of the input (most significant
/// first), XOR in the 32 key bits starting at that bit's position. Inputs longer than the
/// key allows (key bits − 32 = 288 bits = 36 bytes for a 40-byte key) use only their first
/// 36 bytes — every RSS input (at most 36 bytes: two IPv6 addresses and two ports) fits.
pub fn toeplitz(key: &[u8; r::RSS_KEY_LEN], input: &[u8]) -> u32 {
    let max = r::RSS_KEY_LEN - 4;
    // The 32-bit window of the key at bit position 0, then shifted in one key bit at a time.
    let mut window = u32::from_be_bytes(key.first_chunk::<4>().copied().unwrap_or_default());
    let mut hash = 0u32;
    for (i, byte) in input.iter().take(max).enumerate() {
        // The key byte whose bits enter the window while this input byte is consumed.
        let next = key.get(i + 4).copied().unwrap_or(0);
        for bit in (0..8).rev() {
            if byte >> bit & 1 == 1 {
                hash ^= window;
            }
            window = window << 1 | u32::from(next >> bit & 1);
        }
    }
    hash
}

/// Hash input of an IPv4 flow: source, destination, and with `ports` the source and
/// destination port (the TCP/IPv4 hash type).
pub fn input_v4(src: [u8; 4], dst: [u8; 4], ports: Option<(u16, u16)>) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    if let Some((sp, dp)) = ports {
        v.extend_from_slice(&sp.to_be_bytes());
        v.extend_from_slice(&dp.to_be_bytes());
    }
    v
}

/// Hash input of an IPv6 flow (as [`input_v4`]).
pub fn input_v6(src: [u8; 16], dst: [u8; 16], ports: Option<(u16, u16)>) -> Vec<u8> {
    let mut v = Vec::with_capacity(36);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    if let Some((sp, dp)) = ports {
        v.extend_from_slice(&sp.to_be_bytes());
        v.extend_from_slice(&dp.to_be_bytes());
    }
    v
}

/// The redirection table the driver programs for `queues` receive queues: entries
/// alternate between the queues (Linux e1000e spreads them the same way), as bytes in
/// table order.
pub fn reta(queues: u8) -> [u8; r::RETA_ENTRIES] {
    let mut t = [0u8; r::RETA_ENTRIES];
    for (i, e) in t.iter_mut().enumerate() {
        if queues > 1 && i % 2 == 1 {
            *e = r::RETA_QUEUE_BIT;
        }
    }
    t
}

/// The receive queue `table` sends a frame with RSS hash `hash` to.
pub fn queue_of(table: &[u8; r::RETA_ENTRIES], hash: u32) -> u8 {
    let e = table.get((hash & r::RETA_INDEX_MASK) as usize).copied().unwrap_or(0);
    u8::from(e & r::RETA_QUEUE_BIT != 0)
}

/// Register values of a byte table: byte 4n in bits 7:0 of word n.
pub fn words(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes.chunks(4).map(|c| c.iter().rev().fold(0u32, |w, b| w << 8 | u32::from(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> [u8; 4] {
        s.parse::<std::net::Ipv4Addr>().unwrap().octets()
    }
    fn v6(s: &str) -> [u8; 16] {
        s.parse::<std::net::Ipv6Addr>().unwrap().octets()
    }

    /// Microsoft, "Verifying the RSS Hash Calculation" (RSS documentation, Windows
    /// drivers): destination, source, and the expected IPv4-only and TCP/IPv4 hashes.
    #[test]
    fn toeplitz_matches_microsofts_ipv4_verification_vectors() {
        let cases = [
            ("161.142.100.80", 1766, "66.9.149.187", 2794, 0x323e8fc2, 0x51ccc178),
            ("65.69.140.83", 4739, "199.92.111.2", 14230, 0xd718262a, 0xc626b0ea),
            ("12.22.207.184", 38024, "24.19.198.95", 12898, 0xd2d0a5de, 0x5c2b394a),
            ("209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xafc7327f),
            ("202.188.127.2", 1303, "153.39.163.191", 44251, 0x5d1809c5, 0x10e828a2),
        ];
        for (dst, dp, src, sp, ip, tcp) in cases {
            assert_eq!(toeplitz(&KEY, &input_v4(v4(src), v4(dst), None)), ip, "{src} -> {dst}");
            assert_eq!(toeplitz(&KEY, &input_v4(v4(src), v4(dst), Some((sp, dp)))), tcp, "{src}:{sp} -> {dst}:{dp}");
        }
    }

    /// The same page's IPv6 vectors.
    #[test]
    fn toeplitz_matches_microsofts_ipv6_verification_vectors() {
        let cases = [
            ("3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2cc18cd5, 0x40207d3d),
            ("ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0f0c461c, 0xdde51bbf),
            ("fe80::200:f8ff:fe21:67cf", 38024, "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251, 0x4b61e985, 0x02d1feef),
        ];
        for (dst, dp, src, sp, ip, tcp) in cases {
            assert_eq!(toeplitz(&KEY, &input_v6(v6(src), v6(dst), None)), ip, "{src} -> {dst}");
            assert_eq!(toeplitz(&KEY, &input_v6(v6(src), v6(dst), Some((sp, dp)))), tcp, "{src}:{sp} -> {dst}:{dp}");
        }
    }

    #[test]
    fn reta_alternates_queues_and_packs_little_endian() {
        let t = reta(2);
        assert_eq!((queue_of(&t, 0x100), queue_of(&t, 0x101), queue_of(&t, 0x7f)), (0, 1, 1));
        assert!(reta(1).iter().all(|e| *e == 0));
        let w: Vec<u32> = words(&t).collect();
        assert_eq!(w.len(), r::RETA_LEN as usize);
        assert_eq!(w[0], 0x8000_8000);
        let k: Vec<u32> = words(&KEY).collect();
        assert_eq!(k[0], 0xda56_5a6d);
    }
}
