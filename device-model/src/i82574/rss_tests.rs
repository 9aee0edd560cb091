//! RSS of the 82574L model: the Toeplitz hash against Microsoft's published verification
//! vectors, hash type selection, and frames spread over the two receive queues as RETA
//! says, with hash, type and queue in the write-back and RXQ1 on its own vector.

use super::datapath_tests::{rd, w};
use super::queue_tests::{Rig, tagged};
use super::rss::{Flow, key_from_regs, reta_queue, toeplitz};
use super::*;
use crate::net::{L4, ipv4_frame, ipv6_frame};
use nicqual_hw::i82574::RssType;
use nicqual_hw::i82574_desc as d;

/// The key of Microsoft's "Verifying the RSS Hash Calculation" (Windows driver docs,
/// network/verifying-the-rss-hash-calculation).
const MS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b,
    0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac,
    0x01, 0xfa,
];

/// One row of that page: (destination, destination port, source, source port, hash of
/// the addresses, hash of addresses and ports).
type Row<const N: usize> = ([u8; N], u16, [u8; N], u16, u32, u32);

/// IPv4 rows: the IPv4 and IPv4 with TCP columns.
const MS_IPV4: [Row<4>; 5] = [
    ([161, 142, 100, 80], 1766, [66, 9, 149, 187], 2794, 0x323e8fc2, 0x51ccc178),
    ([65, 69, 140, 83], 4739, [199, 92, 111, 2], 14230, 0xd718262a, 0xc626b0ea),
    ([12, 22, 207, 184], 38024, [24, 19, 198, 95], 12898, 0xd2d0a5de, 0x5c2b394a),
    ([209, 142, 163, 6], 2217, [38, 27, 205, 30], 48228, 0x82989176, 0xafc7327f),
    ([202, 188, 127, 2], 1303, [153, 39, 163, 191], 44251, 0x5d1809c5, 0x10e828a2),
];

/// IPv6 rows: destination 3ffe:2501:200:3::1, ff02::1, fe80::200:f8ff:fe21:67cf;
/// source 3ffe:2501:200:1fff::7, 3ffe:501:8::260:97ff:fe40:efab,
/// 3ffe:1900:4545:3:200:f8ff:fe21:67cf.
const MS_IPV6: [Row<16>; 3] = [
    (
        [0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 0x01],
        1766,
        [0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x07],
        2794,
        0x2cc18cd5,
        0x40207d3d,
    ),
    (
        [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01],
        4739,
        [0x3f, 0xfe, 0x05, 0x01, 0x00, 0x08, 0, 0, 0x02, 0x60, 0x97, 0xff, 0xfe, 0x40, 0xef, 0xab],
        14230,
        0x0f0c461c,
        0xdde51bbf,
    ),
    (
        [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0xf8, 0xff, 0xfe, 0x21, 0x67, 0xcf],
        38024,
        [0x3f, 0xfe, 0x19, 0x00, 0x45, 0x45, 0x00, 0x03, 0x02, 0x00, 0xf8, 0xff, 0xfe, 0x21, 0x67, 0xcf],
        44251,
        0x4b61e985,
        0x02d1feef,
    ),
];

const MRQC_ALL: u32 =
    r::MRQC_MRQE_RSS | r::MRQC_TCP_IPV4 | r::MRQC_IPV4 | r::MRQC_TCP_IPV6 | r::MRQC_IPV6_EX | r::MRQC_IPV6;

/// Each row's two hashes from the raw Toeplitz input (source, destination, ports).
fn check_rows<const N: usize>(rows: &[Row<N>]) {
    for (dst, dport, src, sport, h2, h4) in rows {
        let mut input = [*src, *dst].concat();
        assert_eq!(toeplitz(&MS_KEY, &input), *h2, "{src:x?} -> {dst:x?}");
        input.extend_from_slice(&sport.to_be_bytes());
        input.extend_from_slice(&dport.to_be_bytes());
        assert_eq!(toeplitz(&MS_KEY, &input), *h4, "{src:x?}:{sport} -> {dst:x?}:{dport}");
    }
}

#[test]
fn toeplitz_matches_the_published_ipv4_vectors() {
    check_rows(&MS_IPV4);
}

#[test]
fn toeplitz_matches_the_published_ipv6_vectors() {
    check_rows(&MS_IPV6);
}

#[test]
fn frames_parse_to_the_published_hashes_by_type() {
    for (dst, dport, src, sport, h2, h4) in MS_IPV4 {
        let f = Flow::parse(&ipv4_frame(src, dst, 1, 0, L4::Tcp { sport, dport }, 10));
        assert_eq!(f.rss_type(MRQC_ALL, 0), RssType::Ipv4Tcp);
        assert_eq!(f.rss_hash(RssType::Ipv4Tcp, &MS_KEY), h4);
        assert_eq!(f.rss_type(MRQC_ALL & !r::MRQC_TCP_IPV4, 0), RssType::Ipv4, "TCP hashing off");
        assert_eq!(f.rss_hash(RssType::Ipv4, &MS_KEY), h2);
        let udp = Flow::parse(&ipv4_frame(src, dst, 1, 0, L4::Udp { sport, dport }, 10));
        assert_eq!(udp.rss_type(MRQC_ALL, 0), RssType::Ipv4, "the 82574L hashes no UDP ports");
        assert_eq!(udp.rss_hash(RssType::Ipv4, &MS_KEY), h2);
    }
    for (dst, dport, src, sport, h2, h4) in MS_IPV6 {
        let f = Flow::parse(&ipv6_frame(src, dst, &[], L4::Tcp { sport, dport }, 10));
        assert_eq!(f.rss_type(MRQC_ALL, 0), RssType::Ipv6Tcp);
        assert_eq!(f.rss_hash(RssType::Ipv6Tcp, &MS_KEY), h4);
        let plain = Flow::parse(&ipv6_frame(src, dst, &[], L4::None, 10));
        assert_eq!(plain.rss_type(MRQC_ALL, 0), RssType::Ipv6Ex, "Ex before plain IPv6");
        assert_eq!(plain.rss_type(MRQC_ALL & !r::MRQC_IPV6_EX, 0), RssType::Ipv6);
        // Without extension headers the Ex hash covers the same addresses.
        assert_eq!(plain.rss_hash(RssType::Ipv6Ex, &MS_KEY), h2);
        assert_eq!(plain.rss_hash(RssType::Ipv6, &MS_KEY), h2);
    }
}

#[test]
fn fragments_and_extension_headers_choose_the_type_as_documented() {
    let (dst, dport, src, sport, h2, _) = MS_IPV4[0];
    // IPv4 first fragment (MF): ports present but not hashed.
    let frag = Flow::parse(&ipv4_frame(src, dst, 1, 0x2000, L4::Tcp { sport, dport }, 10));
    assert!(frag.fragment);
    assert_eq!(frag.rss_type(MRQC_ALL, 0), RssType::Ipv4);
    assert_eq!(frag.rss_hash(RssType::Ipv4, &MS_KEY), h2);
    assert_eq!(Flow::parse(&tagged(64, 1)).rss_type(MRQC_ALL, 0), RssType::None, "not IP");

    let (dst6, dport6, src6, sport6, h2_6, h4_6) = MS_IPV6[0];
    // A hop-by-hop header (8 bytes of padding options) before TCP.
    let hop = (0u8, vec![0, 0, 1, 4, 0, 0, 0, 0]);
    let f = Flow::parse(&ipv6_frame(src6, dst6, &[hop], L4::Tcp { sport: sport6, dport: dport6 }, 10));
    assert!(f.tcp);
    assert_eq!(f.rss_type(MRQC_ALL, 0), RssType::Ipv6Tcp);
    assert_eq!(f.rss_hash(RssType::Ipv6Tcp, &MS_KEY), h4_6, "extension headers skipped");
    assert_eq!(f.rss_type(MRQC_ALL, r::RFCTL_IPV6_EX_DIS), RssType::Ipv6, "IPV6_EX_DIS with extension headers");
    // A home address option replaces the source in the Ex hashes only.
    let home = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];
    let mut opts = vec![0u8, 2, 0, 0, 0xC9, 16];
    opts.extend_from_slice(&home);
    let h = Flow::parse(&ipv6_frame(src6, dst6, &[(60, opts)], L4::None, 10));
    assert_eq!(h.rss_hash(RssType::Ipv6, &MS_KEY), h2_6);
    assert_eq!(h.rss_hash(RssType::Ipv6Ex, &MS_KEY), toeplitz(&MS_KEY, &[home, dst6].concat()));
    assert_eq!(h.rss_type(MRQC_ALL, r::RFCTL_NEW_IPV6_EXT_DIS), RssType::Ipv6);
}

#[test]
fn key_and_table_byte_order() {
    let regs: Vec<u32> = MS_KEY.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(key_from_regs(regs.into_iter()), MS_KEY);
    // Entry 5 is bits 15:8 of RETA[1].
    let reta = |n: u32| if n == 1 { 0x0000_8000 } else { 0 };
    assert_eq!(reta_queue(reta, 5), 1);
    assert_eq!(reta_queue(reta, 5 + 128), 1, "only the low 7 bits index");
    assert_eq!(reta_queue(reta, 4), 0);
}

/// RSS on with the Microsoft key, RETA entries alternating queues (odd entries queue 1),
/// MSI-X with all five IVAR entries on their own vectors.
fn rss_rig() -> Rig {
    let mut rig = Rig::new();
    rig.msix_all_five();
    for (n, c) in MS_KEY.chunks(4).enumerate() {
        w(&mut rig.dev, r::RSSRK + 4 * n as u32, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    }
    for n in 0..r::RETA_LEN {
        w(&mut rig.dev, r::RETA + 4 * n, 0x8000_8000);
    }
    w(&mut rig.dev, r::MRQC, MRQC_ALL);
    w(&mut rig.dev, r::RXCSUM, r::RXCSUM_PCSD | d::RXCSUM_IPOFLD | d::RXCSUM_TUOFLD);
    rig.post_rx(0, 8);
    rig.post_rx(1, 8);
    rig.vectors();
    rig
}

#[test]
fn rss_spreads_flows_as_reta_says_with_hash_type_and_queue_in_the_write_back() {
    let mut rig = rss_rig();
    let mut next = [0u32; 2];
    for (dst, dport, src, sport, _, h4) in MS_IPV4 {
        let f = ipv4_frame(src, dst, 7, 0, L4::Tcp { sport, dport }, 30);
        rig.queue_tx(0, &f, true);
        let q = h4 & 1; // odd RETA entries (index = hash & 0x7F) name queue 1
        let i = next[q as usize];
        next[q as usize] += 1;
        let wb = rig.rx_wb(q, i);
        assert!(wb.dd() && wb.eop(), "flow {src:?}:{sport} in queue {q} slot {i}");
        assert_eq!(wb.rss_or_csum.get(), h4, "hash in the write-back");
        assert_eq!(wb.mrq.get(), RssType::Ipv4Tcp as u32 | q << r::MRQ_QUEUE_SHIFT);
        assert_eq!(wb.status_error.get() >> d::RXDEXT_PKT_TYPE_SHIFT & 0xF, d::RXD_PKT_IP4_XDP);
        assert_eq!(rig.rx_buf(q, i, f.len()), f);
    }
    assert!(next[0] > 0 && next[1] > 0, "the five flows use both queues: {next:?}");
    assert_eq!(rd(&mut rig.dev, r::rdh(0)), next[0]);
    assert_eq!(rd(&mut rig.dev, r::rdh(1)), next[1]);
    let v = rig.vectors();
    assert!(v.contains(&0) && v.contains(&1), "RxQ0 -> vector 0 and RxQ1 -> vector 1: {v:?}");
}

#[test]
fn ipv6_flows_hash_like_the_published_vectors_in_the_model() {
    let mut rig = rss_rig();
    let mut next = [0u32; 2];
    for (dst, dport, src, sport, h2, h4) in MS_IPV6 {
        for (l4, h, ty) in [(L4::Tcp { sport, dport }, h4, RssType::Ipv6Tcp), (L4::None, h2, RssType::Ipv6Ex)] {
            rig.queue_tx(0, &ipv6_frame(src, dst, &[], l4, 20), true);
            let q = h & 1;
            let wb = rig.rx_wb(q, next[q as usize]);
            next[q as usize] += 1;
            assert_eq!((wb.rss_or_csum.get(), wb.mrq.get()), (h, ty as u32 | q << r::MRQ_QUEUE_SHIFT));
        }
    }
}

#[test]
fn queue_1_receive_raises_rxq1_only() {
    let mut rig = rss_rig();
    // A flow whose TCP hash is odd: RETA sends it to queue 1.
    let (dst, dport, src, sport, _, h4) = *MS_IPV4.iter().find(|v| v.5 & 1 == 1).unwrap();
    rd(&mut rig.dev, r::ICR);
    rig.vectors();
    rig.queue_tx(0, &ipv4_frame(src, dst, 1, 0, L4::Tcp { sport, dport }, 30), true);
    assert_eq!(rig.rx_wb(1, 0).rss_or_csum.get(), h4);
    let v = rig.vectors();
    assert!(v.contains(&1) && !v.contains(&0), "RxQ1 -> vector 1, RxQ0's vector quiet: {v:?}");
    assert_eq!(rd(&mut rig.dev, r::ICS) & (Icr::RXQ0 | Icr::RXQ1).bits(), Icr::RXQ1.bits());
}

#[test]
fn without_pcsd_no_rss_and_the_write_back_carries_the_ip_id() {
    let mut rig = rss_rig();
    w(&mut rig.dev, r::RXCSUM, d::RXCSUM_IPOFLD | d::RXCSUM_TUOFLD);
    for (dst, dport, src, sport, ..) in MS_IPV4 {
        rig.queue_tx(0, &ipv4_frame(src, dst, 0x1234, 0, L4::Tcp { sport, dport }, 30), true);
    }
    assert_eq!((rd(&mut rig.dev, r::rdh(0)), rd(&mut rig.dev, r::rdh(1))), (5, 0), "all to queue 0");
    let wb = rig.rx_wb(0, 0);
    assert_eq!(wb.mrq.get(), 0);
    assert_eq!(wb.rss_or_csum.get(), 0x1234);
    assert_ne!(wb.status_error.get() & d::RXDEXT_STAT_IPIDV, 0);
}

#[test]
fn mrqc_disabled_sends_everything_to_queue_0_with_no_hash() {
    let mut rig = rss_rig();
    w(&mut rig.dev, r::MRQC, MRQC_ALL & !r::MRQC_MRQE_MASK);
    let (dst, dport, src, sport, ..) = *MS_IPV4.iter().find(|v| v.5 & 1 == 1).unwrap();
    rig.queue_tx(0, &ipv4_frame(src, dst, 1, 0, L4::Tcp { sport, dport }, 30), true);
    let wb = rig.rx_wb(0, 0);
    assert!(wb.dd());
    assert_eq!((wb.mrq.get(), wb.rss_or_csum.get()), (0, 0));
    assert_eq!(rd(&mut rig.dev, r::rdh(1)), 0);
}
