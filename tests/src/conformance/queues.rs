//! Conformance cases for the second queue pair and RSS: queue 1's rings (TX and RX),
//! MRQC/RETA/RSSRK read-back, the RSS hash, type and queue in the extended write-back for
//! known flows (IPv4, IPv4/TCP, IPv6, IPv6/TCP), queue selection by RETA, and the per-queue
//! interrupt causes (RXQ1, TXQ1) through IVAR. Frames go round through MAC loopback, as in
//! `datapath.rs`; each queue has its own rings and buffers in one DMA block.
//!
//! Flows use the key and addresses of Microsoft's RSS verification table, so the hashes in
//! both models' write-backs can also be read against the published values. RXCSUM keeps
//! IP checksum offload on and TCP/UDP offload off: neither model then reports IXSM
//! (row 14), and our model checks no IPv6 TCP/UDP checksums.

use super::{Case, msix_masked, pba, rd, regs, wr};
use nicqual_hw::i82574::{self as r, Icr, IvarEntry};
use nicqual_hw::i82574_desc::{self as desc, TxDesc};
use nicqual_model::net::{L4, ipv4_frame, ipv6_frame};
use nicqual_pci::dma::DmaMemory;
use nicqual_pci::{Backend, DmaPerm};
use std::fmt::Write;
use zerocopy::IntoBytes;

/// Descriptors per ring (the smallest ring, 128 bytes).
const RING: u32 = 8;
/// Per queue: TX ring, RX ring, then 8 TX and 8 RX buffers of 2 KiB.
const AREA: usize = 0x10000;
const TX_RING: usize = 0x0;
const RX_RING: usize = 0x1000;
const TX_BUF: usize = 0x2000;
const RX_BUF: usize = 0x8000;
const BUF: usize = 0x800;
const MEM: usize = 2 * AREA;

/// Microsoft's RSS verification key ("Verifying the RSS Hash Calculation").
const MS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b,
    0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac,
    0x01, 0xfa,
];
/// Source and destination of the table's first IPv4 row (66.9.149.187:2794 ->
/// 161.142.100.80:1766) and a few more of its rows, for spreading.
const V4_FLOWS: [([u8; 4], u16, [u8; 4], u16); 4] = [
    ([66, 9, 149, 187], 2794, [161, 142, 100, 80], 1766),
    ([199, 92, 111, 2], 14230, [65, 69, 140, 83], 4739),
    ([24, 19, 198, 95], 12898, [12, 22, 207, 184], 38024),
    ([38, 27, 205, 30], 48228, [209, 142, 163, 6], 2217),
];
/// The table's first IPv6 row: 3ffe:2501:200:1fff::7 port 2794 -> 3ffe:2501:200:3::1 port 1766.
const V6_SRC: [u8; 16] = [0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x07];
const V6_DST: [u8; 16] = [0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 0x01];

const MRQC_ALL: u32 =
    r::MRQC_MRQE_RSS | r::MRQC_TCP_IPV4 | r::MRQC_IPV4 | r::MRQC_TCP_IPV6 | r::MRQC_IPV6_EX | r::MRQC_IPV6;
const RXCSUM_RSS: u32 = r::RXCSUM_PCSD | desc::RXCSUM_IPOFLD;
/// RETA with every entry on queue 1, or odd entries on queue 1.
const RETA_ALL_Q1: u32 = 0x8080_8080;
const RETA_ODD_Q1: u32 = 0x8000_8000;
const SEND: u32 = desc::TXD_CMD_EOP | desc::TXD_CMD_IFCS | desc::TXD_CMD_RS;

struct Rig {
    mem: DmaMemory,
    iova: u64,
}

impl Rig {
    fn at(&self, q: u32, off: usize) -> u64 {
        self.iova + (AREA * q as usize + off) as u64
    }

    fn dwords(&self, q: u32, ring: usize, i: u32) -> String {
        let base = AREA * q as usize + ring + 16 * i as usize;
        let d: Vec<String> =
            (0..4).map(|k| format!("{:08x}", self.mem.read_u32(base + 4 * k).unwrap_or(u32::MAX))).collect();
        d.join(".")
    }

    fn rx_holds(&self, q: u32, i: u32, data: &[u8]) -> bool {
        let mut got = vec![0u8; data.len()];
        let off = AREA * q as usize + RX_BUF + i as usize * BUF;
        self.mem.read(off, &mut got).is_some() && got == data
    }
}

/// Link up; both queues' rings programmed (empty); extended RX descriptors; receiver on in
/// MAC loopback with the FCS stripped; transmitter on.
fn rig(b: &mut dyn Backend) -> Result<Rig, String> {
    b.wait(150_000_000);
    rd(b, r::ICR);
    let mem = b.dma_alloc(MEM).map_err(|e| format!("dma_alloc: {e}"))?;
    let iova = mem.fixed_iova().unwrap_or(0x0100_0000);
    b.dma_map(&mem, iova, DmaPerm::BIDIRECTIONAL).map_err(|e| format!("dma_map: {e}"))?;
    let rig = Rig { mem, iova };
    for q in 0..r::QUEUES {
        for (bal, bah, len, h, t, ring) in [
            (r::tdbal(q), r::tdbah(q), r::tdlen(q), r::tdh(q), r::tdt(q), TX_RING),
            (r::rdbal(q), r::rdbah(q), r::rdlen(q), r::rdh(q), r::rdt(q), RX_RING),
        ] {
            wr(b, bal, rig.at(q, ring) as u32);
            wr(b, bah, (rig.at(q, ring) >> 32) as u32);
            wr(b, len, RING * desc::DESC_LEN as u32);
            wr(b, h, 0);
            wr(b, t, 0);
        }
    }
    wr(b, r::RFCTL, r::RFCTL_EXTEN);
    wr(b, r::TCTL, r::TCTL_EN | r::TCTL_PSP);
    wr(b, r::RCTL, r::RCTL_EN | r::RCTL_LBM_MAC | r::RCTL_BAM | r::RCTL_UPE | r::RCTL_SECRC);
    Ok(rig)
}

/// RSS on: the verification key, every RETA register `reta`, MRQC `mrqc`, RXCSUM `rxcsum`.
fn rss(b: &mut dyn Backend, reta: u32, mrqc: u32, rxcsum: u32) {
    for (n, c) in MS_KEY.chunks(4).enumerate() {
        wr(b, r::RSSRK + 4 * n as u32, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    }
    for n in 0..r::RETA_LEN {
        wr(b, r::RETA + 4 * n, reta);
    }
    wr(b, r::MRQC, mrqc);
    wr(b, r::RXCSUM, rxcsum);
}

/// MSI-X on with every vector masked, every IVAR entry on its own vector (RxQ0 -> 0,
/// RxQ1 -> 1, TxQ0 -> 2, TxQ1 -> 3, Other -> 4), the five routed causes enabled.
fn msix_all_five(b: &mut dyn Backend) {
    msix_masked(b);
    let ivar = IvarEntry::ALL.iter().fold(0, |v, e| v | r::ivar_entry(*e, e.index() as u16));
    wr(b, r::IVAR, ivar);
    wr(b, r::IMS, Icr::MSIX_ROUTED.bits());
}

/// Post `n` extended RX descriptors on queue `q` from slot 0.
fn post(b: &mut dyn Backend, rig: &Rig, q: u32, n: u32) {
    for i in 0..n {
        let slot = AREA * q as usize + RX_RING + 16 * i as usize;
        let _ = rig.mem.write(slot, rig.at(q, RX_BUF + i as usize * BUF).as_bytes());
        let _ = rig.mem.write(slot + 8, 0u64.as_bytes());
    }
    wr(b, r::rdt(q), n);
}

/// Send `frame` from TX queue `q`'s slot `slot` (legacy descriptor, RS|EOP|IFCS).
fn send(b: &mut dyn Backend, rig: &Rig, q: u32, slot: u32, frame: &[u8]) {
    let buf = TX_BUF + slot as usize * BUF;
    let _ = rig.mem.write(AREA * q as usize + buf, frame);
    let d = TxDesc::legacy(rig.at(q, buf), frame.len() as u16, SEND);
    let _ = rig.mem.write(AREA * q as usize + TX_RING + 16 * slot as usize, d.as_bytes());
    wr(b, r::tdt(q), (slot + 1) % RING);
}

fn heads(b: &mut dyn Backend) -> String {
    regs(b, &[("TDH0", r::tdh(0)), ("TDH1", r::tdh(1)), ("RDH0", r::rdh(0)), ("RDH1", r::rdh(1))])
}

fn finish(b: &mut dyn Backend, rig: Rig, out: String) -> String {
    wr(b, r::RCTL, 0);
    wr(b, r::TCTL, 0);
    let _ = b.dma_unmap(rig.iova);
    out
}

macro_rules! with_rig {
    ($b:expr, |$rig:ident| $body:block) => {
        match rig($b) {
            Ok($rig) => {
                let out: String = $body;
                finish($b, $rig, out)
            }
            Err(e) => e,
        }
    };
}

fn tcp4(flow: usize) -> Vec<u8> {
    let (src, sport, dst, dport) = V4_FLOWS[flow % V4_FLOWS.len()];
    ipv4_frame(src, dst, 0x1234 + flow as u16, 0, L4::Tcp { sport, dport }, 40)
}

/// One frame through RSS (`mrqc`, RETA all on queue 1): where it landed and the
/// write-back of the descriptor it used.
fn rss_one(b: &mut dyn Backend, mrqc: u32, frame: &[u8]) -> String {
    with_rig!(b, |rig| {
        rss(b, RETA_ALL_Q1, mrqc, RXCSUM_RSS);
        post(b, &rig, 0, 4);
        post(b, &rig, 1, 4);
        send(b, &rig, 0, 0, frame);
        let q = u32::from(rd(b, r::rdh(1)) != 0);
        format!("{} rx{q}[0]={} data={}", heads(b), rig.dwords(q, RX_RING, 0), rig.rx_holds(q, 0, frame))
    })
}

/// MSI-X with all five IVAR entries routed; a frame from TX queue `txq` looped into RX
/// queue `rxq` (RSS with every RETA entry on queue 1 when `rxq` is 1): heads, the routed
/// causes left in ICR and the pending vectors.
fn queue_causes(b: &mut dyn Backend, rxq: u32, txq: u32) -> String {
    with_rig!(b, |rig| {
        msix_all_five(b);
        if rxq == 1 {
            rss(b, RETA_ALL_Q1, MRQC_ALL, RXCSUM_RSS);
        }
        post(b, &rig, rxq, 4);
        send(b, &rig, txq, 0, &tcp4(0));
        let routed = Icr::MSIX_ROUTED.bits();
        format!("{} ICS={:#010x} PBA={:#x}", heads(b), rd(b, r::ICS) & routed, pba(b))
    })
}

/// Every queue/RSS case, in table order.
pub fn cases() -> Vec<Case> {
    vec![
        // --- queue 1 registers ---
        case!("q1.ring-register-masks", "RDBAL1/RDLEN1/TDBAL1/TDLEN1 keep their valid bits, heads/tails 16", |b| {
            for reg in [r::rdbal(1), r::rdlen(1), r::tdbal(1), r::tdlen(1), r::rdh(1), r::rdt(1), r::tdh(1), r::tdt(1)]
            {
                wr(b, reg, u32::MAX);
            }
            regs(
                b,
                &[
                    ("RDBAL1", r::rdbal(1)),
                    ("RDLEN1", r::rdlen(1)),
                    ("TDBAL1", r::tdbal(1)),
                    ("TDLEN1", r::tdlen(1)),
                    ("RDH1", r::rdh(1)),
                    ("RDT1", r::rdt(1)),
                    ("TDH1", r::tdh(1)),
                    ("TDT1", r::tdt(1)),
                ],
            )
        }),
        case!("q1.descriptor-control-readback", "RXDCTL1 and TXDCTL1 read back what was written", |b| {
            wr(b, r::rxdctl(1), desc::RXDCTL_82574);
            wr(b, r::txdctl(1), desc::TXDCTL_82574);
            regs(b, &[("RXDCTL1", r::rxdctl(1)), ("TXDCTL1", r::txdctl(1))])
        }),
        case!("q1.rxdctl0-write-and-rxdctl1", "RXDCTL0 written alone: what RXDCTL1 reads", known = "row 21", |b| {
            wr(b, r::rxdctl(0), desc::RXDCTL_82574);
            regs(b, &[("RXDCTL0", r::rxdctl(0)), ("RXDCTL1", r::rxdctl(1))])
        }),
        // --- queue 1 rings ---
        case!("q1.tx-ring", "a frame sent from TX queue 1: TDH1 moves, DD in queue 1's ring, INTx TXDW", |b| {
            with_rig!(b, |rig| {
                post(b, &rig, 0, 4);
                rd(b, r::ICR);
                let f = tcp4(0);
                send(b, &rig, 1, 0, &f);
                format!(
                    "{} tx1[0]={} rx0-data={} ICR={:#010x} GPTC={}",
                    heads(b),
                    rig.dwords(1, TX_RING, 0),
                    rig.rx_holds(0, 0, &f),
                    rd(b, r::ICR) & (Icr::TXDW | Icr::TXQE | Icr::RXT0).bits(),
                    rd(b, r::GPTC)
                )
            })
        }),
        case!("q1.tx-both-queues", "one frame from each TX queue: both heads move, both frames received", |b| {
            with_rig!(b, |rig| {
                post(b, &rig, 0, 4);
                let (f0, f1) = (tcp4(0), tcp4(1));
                send(b, &rig, 0, 0, &f0);
                send(b, &rig, 1, 0, &f1);
                format!(
                    "{} rx0={} rx1={} GPRC={}",
                    heads(b),
                    rig.rx_holds(0, 0, &f0),
                    rig.rx_holds(0, 1, &f1),
                    rd(b, r::GPRC)
                )
            })
        }),
        case!("q1.tarc-enable-gates-tx", "TARC1 with ENABLE (bit 10) clear: TDT1 moves nothing", |b| {
            with_rig!(b, |rig| {
                post(b, &rig, 0, 4);
                wr(b, r::tarc(1), 0);
                send(b, &rig, 1, 0, &tcp4(0));
                format!("{} tx1[0]={} GPTC={}", heads(b), rig.dwords(1, TX_RING, 0), rd(b, r::GPTC))
            })
        }),
        case!(
            "q1.tx-arbitration",
            "four frames in each TX queue, then TCTL.EN: the order they come back in",
            known = "row 20",
            |b| {
                with_rig!(b, |rig| {
                    post(b, &rig, 0, RING - 1);
                    wr(b, r::TCTL, 0);
                    for k in 0..4u32 {
                        for q in 0..r::QUEUES {
                            let f = tcp4((2 * k + q) as usize);
                            let buf = TX_BUF + k as usize * BUF;
                            let _ = rig.mem.write(AREA * q as usize + buf, &f);
                            let d = TxDesc::legacy(rig.at(q, buf), f.len() as u16, SEND);
                            let _ = rig.mem.write(AREA * q as usize + TX_RING + 16 * k as usize, d.as_bytes());
                        }
                    }
                    wr(b, r::tdt(0), 4);
                    wr(b, r::tdt(1), 4);
                    wr(b, r::TCTL, r::TCTL_EN | r::TCTL_PSP);
                    let order: Vec<String> = (0..7u32)
                        .map(|i| {
                            (0..8).find(|&n| rig.rx_holds(0, i, &tcp4(n))).map_or("-".into(), |n| {
                                let (q, k) = (n % 2, n / 2);
                                format!("q{q}.{k}")
                            })
                        })
                        .collect();
                    format!("{} order={}", heads(b), order.join(","))
                })
            }
        ),
        case!("q1.rx-ring", "RSS with every RETA entry on queue 1: the frame lands in RX queue 1", |b| {
            rss_one(b, MRQC_ALL, &tcp4(0))
        }),
        // --- RSS registers ---
        case!("rss.mrqc-readback", "MRQC read-back of the RSS set-up and of all-ones", |b| {
            wr(b, r::MRQC, MRQC_ALL);
            let a = rd(b, r::MRQC);
            wr(b, r::MRQC, u32::MAX);
            format!("MRQC={a:#010x} then {:#010x}", rd(b, r::MRQC))
        }),
        case!("rss.reta-readback", "RETA[0], RETA[17], RETA[31] read back patterns", |b| {
            let list = [(0u32, 0x8000_8000u32), (17, 0x5A5A_A5A5), (31, u32::MAX)];
            for (n, v) in list {
                wr(b, r::RETA + 4 * n, v);
            }
            list.iter()
                .map(|(n, _)| format!("RETA[{n}]={:#010x}", rd(b, r::RETA + 4 * n)))
                .collect::<Vec<_>>()
                .join(" ")
        }),
        case!("rss.rssrk-readback", "RSSRK0-9 read back the 40-byte key", |b| {
            rss(b, 0, 0, 0);
            (0..r::RSSRK_LEN).map(|n| format!("{:08x}", rd(b, r::RSSRK + 4 * n))).collect::<Vec<_>>().join(".")
        }),
        // --- hash, type and queue in the write-back ---
        case!("rss.hash-ipv4", "IPv4 (no TCP) flow: hash of the addresses, type IPv4", |b| {
            let (src, _, dst, _) = V4_FLOWS[0];
            rss_one(b, MRQC_ALL, &ipv4_frame(src, dst, 1, 0, L4::None, 40))
        }),
        case!("rss.hash-ipv4-tcp", "IPv4/TCP flow: hash of addresses and ports, type TCP/IPv4", |b| {
            rss_one(b, MRQC_ALL, &tcp4(0))
        }),
        case!("rss.hash-ipv4-tcp-field-off", "IPv4/TCP flow with MRQC's TCP/IPv4 field clear: type IPv4", |b| {
            rss_one(b, MRQC_ALL & !r::MRQC_TCP_IPV4, &tcp4(0))
        }),
        case!("rss.hash-ipv4-udp", "IPv4/UDP flow: the 82574L hashes addresses only, type IPv4", |b| {
            let (src, sport, dst, dport) = V4_FLOWS[0];
            rss_one(b, MRQC_ALL, &ipv4_frame(src, dst, 1, 0, L4::Udp { sport, dport }, 40))
        }),
        case!("rss.hash-ipv6", "IPv6 (no TCP) flow: hash of the addresses, type IPv6Ex", |b| {
            rss_one(b, MRQC_ALL, &ipv6_frame(V6_SRC, V6_DST, &[], L4::None, 40))
        }),
        case!("rss.hash-ipv6-plain", "IPv6 flow with MRQC's IPv6Ex field clear: type IPv6", |b| {
            rss_one(b, MRQC_ALL & !r::MRQC_IPV6_EX, &ipv6_frame(V6_SRC, V6_DST, &[], L4::None, 40))
        }),
        case!("rss.hash-ipv6-tcp", "IPv6/TCP flow: hash of addresses and ports, type TCP/IPv6", |b| {
            rss_one(b, MRQC_ALL, &ipv6_frame(V6_SRC, V6_DST, &[], L4::Tcp { sport: 2794, dport: 1766 }, 40))
        }),
        case!("rss.non-ip-no-hash", "a non-IP frame with RSS on: queue 0, no hash, type 0", |b| {
            let mut f = vec![0xFFu8; 6];
            f.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x88, 0xB5]);
            f.resize(80, 0x3C);
            rss_one(b, MRQC_ALL, &f)
        }),
        case!("rss.queue-by-reta", "four flows, odd RETA entries on queue 1: each lands where RETA says", |b| {
            with_rig!(b, |rig| {
                rss(b, RETA_ODD_Q1, MRQC_ALL, RXCSUM_RSS);
                post(b, &rig, 0, 4);
                post(b, &rig, 1, 4);
                let mut s = String::new();
                for k in 0..V4_FLOWS.len() {
                    let before = [rd(b, r::rdh(0)), rd(b, r::rdh(1))];
                    send(b, &rig, 0, k as u32, &tcp4(k));
                    let q = u32::from(rd(b, r::rdh(1)) != before[1]);
                    let slot = before[q as usize];
                    let mrq = rig.mem.read_u32(AREA * q as usize + RX_RING + 16 * slot as usize).unwrap_or(0);
                    let hash = rig.mem.read_u32(AREA * q as usize + RX_RING + 16 * slot as usize + 4).unwrap_or(0);
                    let _ = write!(s, "flow{k}:q{q} mrq={mrq:#x} hash={hash:#010x} ");
                }
                s + &heads(b)
            })
        }),
        case!(
            "rss.pcsd-clear-ip-id",
            "MRQC on but RXCSUM.PCSD clear: no RSS, IP ID with IPIDV in the write-back",
            |b| {
                with_rig!(b, |rig| {
                    rss(b, RETA_ALL_Q1, MRQC_ALL, desc::RXCSUM_IPOFLD);
                    post(b, &rig, 0, 4);
                    post(b, &rig, 1, 4);
                    send(b, &rig, 0, 0, &tcp4(0));
                    format!("{} rx0[0]={}", heads(b), rig.dwords(0, RX_RING, 0))
                })
            }
        ),
        case!("rss.legacy-descriptors-no-rss", "MRQC and PCSD on with legacy descriptors: queue 0", |b| {
            with_rig!(b, |rig| {
                rss(b, RETA_ALL_Q1, MRQC_ALL, RXCSUM_RSS);
                wr(b, r::RFCTL, 0);
                post(b, &rig, 0, 4);
                post(b, &rig, 1, 4);
                send(b, &rig, 0, 0, &tcp4(0));
                format!("{} rx0[0]={}", heads(b), rig.dwords(0, RX_RING, 0))
            })
        }),
        // --- per-queue causes through IVAR ---
        case!(
            "ivar.txq1-cause-from-queue-1",
            "MSI-X, all five entries routed: TX queue 1 raises TXQ1 -> vector 3",
            |b| { queue_causes(b, 0, 1) }
        ),
        case!(
            "ivar.rxq1-cause-from-queue-1",
            "MSI-X, all five entries routed: RSS to queue 1 raises RXQ1 -> vector 1",
            |b| queue_causes(b, 1, 0)
        ),
        case!(
            "ivar.queue-1-pair",
            "MSI-X, all five routed: TX queue 1 into RX queue 1 pends vectors 1 and 3 only",
            |b| queue_causes(b, 1, 1)
        ),
    ]
}
