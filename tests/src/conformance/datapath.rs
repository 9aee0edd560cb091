//! Conformance cases for the rings: head/tail behaviour and the descriptor write-back of
//! each TX format (legacy, context + data) and RX format (legacy, extended, packet split).
//! Frames go round through MAC loopback (RCTL.LBM = 01), which both models implement, so
//! no wire is needed. Each case reports registers and raw descriptor dwords as text.

use super::{Case, rd, regs, wr};
use nicqual_hw::i82574::{self as r};
use nicqual_hw::i82574_desc::{self as desc, TxDesc};
use nicqual_pci::dma::DmaMemory;
use nicqual_pci::{Backend, DmaPerm};
use std::fmt::Write;
use zerocopy::IntoBytes;

/// Descriptors per ring (TDLEN/RDLEN = 128 bytes, the smallest ring).
const RING: u32 = 8;
const TX_RING: usize = 0x0000;
const RX_RING: usize = 0x1000;
const TX_BUF: usize = 0x2000;
const RX_BUF: usize = 0x8000;
/// Spacing of the buffers (every RX buffer holds the largest 2048-byte BSIZE).
const BUF: usize = 0x800;
const MEM: usize = 0x10000;

/// DMA memory with both rings and their buffers, mapped at its IOVA.
struct Rig {
    mem: DmaMemory,
    iova: u64,
}

impl Rig {
    fn at(&self, off: usize) -> u64 {
        self.iova + off as u64
    }

    /// Dwords of a 16-byte descriptor.
    fn desc(&self, ring: usize, i: u32) -> String {
        let base = ring + 16 * i as usize;
        let d: Vec<String> =
            (0..4).map(|k| format!("{:08x}", self.mem.read_u32(base + 4 * k).unwrap_or(u32::MAX))).collect();
        d.join(".")
    }

    /// True when RX buffer `i` starts with `data`.
    fn rx_holds(&self, i: usize, data: &[u8]) -> bool {
        let mut got = vec![0u8; data.len()];
        self.mem.read(RX_BUF + i * BUF, &mut got).is_some() && got == data
    }
}

/// Link up, rings set up (empty), receiver on in MAC loopback with `rctl` added, FCS
/// stripped (SECRC: QEMU appends a zero FCS where ours appends the real one), `rfctl`.
fn rig(b: &mut dyn Backend, rctl: u32, rfctl: u32) -> Result<Rig, String> {
    b.wait(150_000_000); // link up on both models
    rd(b, r::ICR);
    let mem = b.dma_alloc(MEM).map_err(|e| format!("dma_alloc: {e}"))?;
    let iova = mem.fixed_iova().unwrap_or(0x0100_0000);
    b.dma_map(&mem, iova, DmaPerm::BIDIRECTIONAL).map_err(|e| format!("dma_map: {e}"))?;
    let rig = Rig { mem, iova };
    wr(b, r::tdbal(0), rig.at(TX_RING) as u32);
    wr(b, r::tdbah(0), (rig.at(TX_RING) >> 32) as u32);
    wr(b, r::tdlen(0), RING * desc::DESC_LEN as u32);
    wr(b, r::tdh(0), 0);
    wr(b, r::tdt(0), 0);
    wr(b, r::TCTL, r::TCTL_EN | r::TCTL_PSP);
    wr(b, r::rdbal(0), rig.at(RX_RING) as u32);
    wr(b, r::rdbah(0), (rig.at(RX_RING) >> 32) as u32);
    wr(b, r::rdlen(0), RING * desc::DESC_LEN as u32);
    wr(b, r::rdh(0), 0);
    wr(b, r::rdt(0), 0);
    wr(b, r::RFCTL, rfctl);
    wr(b, r::RCTL, r::RCTL_EN | r::RCTL_LBM_MAC | r::RCTL_BAM | r::RCTL_UPE | r::RCTL_SECRC | rctl);
    Ok(rig)
}

/// Post RX descriptors `from..to` (mod ring) in read format, buffer i for slot i (the
/// legacy and extended read formats agree: address, then 8 bytes the device overwrites),
/// then write RDT.
fn post_rx(b: &mut dyn Backend, rig: &Rig, from: u32, to: u32) {
    let mut i = from;
    for _ in 0..RING {
        if i == to {
            break;
        }
        let slot = RX_RING + 16 * i as usize;
        let buf = rig.at(RX_BUF + i as usize * BUF);
        let _ = rig.mem.write(slot, buf.as_bytes());
        let _ = rig.mem.write(slot + 8, 0u64.as_bytes());
        i = (i + 1) % RING;
    }
    wr(b, r::rdt(0), to);
}

/// A broadcast frame of `len` bytes (no FCS) with a recognisable payload.
fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f = vec![0xFFu8; 6];
    f.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x88, 0xB5]);
    let mut x = seed;
    while f.len() < len {
        x = x.wrapping_mul(31).wrapping_add(7);
        f.push(x);
    }
    f.truncate(len);
    f
}

/// A broadcast IPv4/UDP frame with correct IP and UDP checksums (`bad_ip`: IP checksum
/// off by one).
fn udp_frame(payload: usize, bad_ip: bool) -> Vec<u8> {
    use nicqual_model::net;
    let mut f = vec![0xFFu8; 6];
    f.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x00]);
    let total = (20 + 8 + payload) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, net::IPPROTO_UDP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let c = net::checksum(&ip).wrapping_add(bad_ip as u16);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut udp = vec![0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0];
    udp[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    udp.extend((0..payload).map(|i| i as u8));
    let mut pseudo = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, net::IPPROTO_UDP];
    pseudo.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    let uc = !net::fold(net::ones_sum(&udp, net::ones_sum(&pseudo, 0)));
    udp[6..8].copy_from_slice(&if uc == 0 { 0xFFFF } else { uc }.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&udp);
    f
}

/// Queue `frame` in TX slot `slot` with a legacy descriptor (`cmd`) and write TDT.
fn send(b: &mut dyn Backend, rig: &Rig, slot: u32, frame: &[u8], cmd: u32) {
    let buf = TX_BUF + slot as usize * BUF;
    let _ = rig.mem.write(buf, frame);
    let d = TxDesc::legacy(rig.at(buf), frame.len() as u16, cmd);
    let _ = rig.mem.write(TX_RING + 16 * slot as usize, d.as_bytes());
    wr(b, r::tdt(0), (slot + 1) % RING);
}

const SEND: u32 = desc::TXD_CMD_EOP | desc::TXD_CMD_IFCS | desc::TXD_CMD_RS;

fn heads(b: &mut dyn Backend) -> String {
    regs(b, &[("TDH", r::tdh(0)), ("RDH", r::rdh(0))])
}

fn finish(b: &mut dyn Backend, rig: Rig, mut out: String) -> String {
    let _ = write!(out, " GPRC={} GPTC={}", rd(b, r::GPRC), rd(b, r::GPTC));
    wr(b, r::RCTL, 0);
    wr(b, r::TCTL, 0);
    let _ = b.dma_unmap(rig.iova);
    out
}

macro_rules! with_rig {
    ($b:expr, $rctl:expr, $rfctl:expr, |$rig:ident| $body:block) => {
        match rig($b, $rctl, $rfctl) {
            Ok($rig) => {
                let out: String = $body;
                finish($b, $rig, out)
            }
            Err(e) => e,
        }
    };
}

/// One IPv4/UDP frame into a legacy descriptor with RXCSUM = `rxcsum`.
fn rx_udp(b: &mut dyn Backend, rxcsum: u32, bad_ip: bool) -> String {
    with_rig!(b, 0, 0, |rig| {
        wr(b, r::RXCSUM, rxcsum);
        post_rx(b, &rig, 0, 4);
        let f = udp_frame(40, bad_ip);
        send(b, &rig, 0, &f, SEND);
        format!("{} rx0={} data={}", heads(b), rig.desc(RX_RING, 0), rig.rx_holds(0, &f))
    })
}

/// One frame into one receive descriptor of the format `rctl`/`rfctl` select.
fn rx_one(b: &mut dyn Backend, rctl: u32, rfctl: u32, len: usize) -> String {
    with_rig!(b, rctl, rfctl, |rig| {
        post_rx(b, &rig, 0, 4);
        let f = frame(len, 1);
        send(b, &rig, 0, &f, SEND);
        format!("{} rx0={} data={}", heads(b), rig.desc(RX_RING, 0), rig.rx_holds(0, &f))
    })
}

/// Every ring case, in table order.
pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "tx.multi-descriptor-frame",
            "a frame in 3 legacy descriptors, RS on the last: one frame, DD only there",
            |b| {
                with_rig!(b, 0, 0, |rig| {
                    post_rx(b, &rig, 0, 4);
                    let f = frame(300, 2);
                    let parts = [&f[..100], &f[100..200], &f[200..]];
                    for (i, p) in parts.iter().enumerate() {
                        let buf = TX_BUF + i * BUF;
                        let _ = rig.mem.write(buf, p);
                        let cmd = if i == 2 { SEND } else { desc::TXD_CMD_IFCS };
                        let d = TxDesc::legacy(rig.at(buf), p.len() as u16, cmd);
                        let _ = rig.mem.write(TX_RING + 16 * i, d.as_bytes());
                    }
                    wr(b, r::tdt(0), 3);
                    let dd: Vec<String> = (0..3).map(|i| rig.desc(TX_RING, i)).collect();
                    format!(
                        "{} tx={} rx0={} data={}",
                        heads(b),
                        dd.join(" "),
                        rig.desc(RX_RING, 0),
                        rig.rx_holds(0, &f)
                    )
                })
            }
        ),
        case!("tx.ring-wraps", "TDH=TDT=6, four frames: the head wraps to 2", |b| {
            with_rig!(b, 0, 0, |rig| {
                post_rx(b, &rig, 0, 7);
                wr(b, r::TCTL, 0);
                wr(b, r::tdh(0), 6);
                wr(b, r::tdt(0), 6);
                wr(b, r::TCTL, r::TCTL_EN | r::TCTL_PSP);
                for (k, slot) in [6u32, 7, 0, 1].into_iter().enumerate() {
                    send(b, &rig, slot, &frame(64, k as u8), SEND);
                }
                let dd: Vec<String> = [6, 7, 0, 1].iter().map(|i| rig.desc(TX_RING, *i)).collect();
                format!("{} TDT={} tx={}", heads(b), rd(b, r::tdt(0)), dd.join(" "))
            })
        }),
        case!("tx.context-data-writeback", "context descriptor + data descriptor, both with RS", |b| {
            with_rig!(b, 0, 0, |rig| {
                post_rx(b, &rig, 0, 4);
                let f = frame(128, 3);
                let _ = rig.mem.write(TX_BUF, &f);
                let ctx = desc::TxContextDesc {
                    cmd_and_length: (desc::TXD_CMD_DEXT | desc::TXD_DTYP_CONTEXT | desc::TXD_CMD_RS).into(),
                    ..Default::default()
                };
                let _ = rig.mem.write(TX_RING, ctx.as_bytes());
                let data = TxDesc::data(rig.at(TX_BUF), f.len() as u32, SEND, 0);
                let _ = rig.mem.write(TX_RING + 16, data.as_bytes());
                wr(b, r::tdt(0), 2);
                format!(
                    "{} ctx={} data={} rx0={} frame={}",
                    heads(b),
                    rig.desc(TX_RING, 0),
                    rig.desc(TX_RING, 1),
                    rig.desc(RX_RING, 0),
                    rig.rx_holds(0, &f)
                )
            })
        }),
        case!("tx.data-without-rs", "data descriptor without RS: sent, no DD", |b| {
            with_rig!(b, 0, 0, |rig| {
                post_rx(b, &rig, 0, 4);
                let f = frame(64, 4);
                let _ = rig.mem.write(TX_BUF, &f);
                let data = TxDesc::data(rig.at(TX_BUF), f.len() as u32, desc::TXD_CMD_EOP | desc::TXD_CMD_IFCS, 0);
                let _ = rig.mem.write(TX_RING, data.as_bytes());
                wr(b, r::tdt(0), 1);
                format!("{} data={} rx-data={}", heads(b), rig.desc(TX_RING, 0), rig.rx_holds(0, &f))
            })
        }),
        case!("rx.legacy-writeback", "legacy RX descriptor after a 100-byte frame", |b| rx_one(b, 0, 0, 100)),
        case!("rx.extended-writeback", "extended RX descriptor (RFCTL.EXTEN) after a 100-byte frame", |b| {
            rx_one(b, 0, r::RFCTL_EXTEN, 100)
        }),
        case!("rx.checksum-ipv4-udp", "IPv4/UDP frame, RXCSUM IPOFLD|TUOFLD: IPCS, TCPCS|UDPCS, no errors", |b| {
            rx_udp(b, desc::RXCSUM_IPOFLD | desc::RXCSUM_TUOFLD, false)
        }),
        case!("rx.checksum-bad-ip-header", "IPv4/UDP frame with a wrong IP header checksum: IPE", |b| {
            rx_udp(b, desc::RXCSUM_IPOFLD | desc::RXCSUM_TUOFLD, true)
        }),
        case!(
            "rx.checksum-offload-off",
            "IPv4/UDP frame with RXCSUM = 0: no checksum indication",
            known = "row 14",
            |b| rx_udp(b, 0, false)
        ),
        case!("rx.legacy-short-frame-padded", "a 42-byte frame is padded to 60 (TCTL.PSP) on the way", |b| rx_one(
            b, 0, 0, 42
        )),
        case!("rx.spans-descriptors", "a 600-byte frame over 256-byte buffers: 3 descriptors, EOP on the last", |b| {
            with_rig!(b, 0b11 << r::RCTL_BSIZE_SHIFT, 0, |rig| {
                post_rx(b, &rig, 0, 5);
                let f = frame(600, 5);
                send(b, &rig, 0, &f, SEND);
                let d: Vec<String> = (0..4).map(|i| rig.desc(RX_RING, i)).collect();
                format!("{} rx={} first={}", heads(b), d.join(" "), rig.rx_holds(0, &f[..256]))
            })
        }),
        case!(
            "rx.head-stops-at-tail",
            "2 descriptors posted, 3 frames: RDH stops at RDT; posting more takes the third",
            known = "row 13",
            |b| {
                with_rig!(b, 0, 0, |rig| {
                    post_rx(b, &rig, 0, 2);
                    for k in 0..3u32 {
                        send(b, &rig, k, &frame(64, 10 + k as u8), SEND);
                    }
                    let held = format!("{} GPRC={}", heads(b), rd(b, r::GPRC));
                    post_rx(b, &rig, 2, 4);
                    let third = rig.rx_holds(2, &frame(64, 12));
                    format!("held: {held}; after RDT=4: {} third={third}", heads(b))
                })
            }
        ),
        case!("rx.ring-wraps", "RDH=RDT=6, four frames: the head wraps to 2", |b| {
            with_rig!(b, 0, 0, |rig| {
                wr(b, r::RCTL, 0);
                wr(b, r::rdh(0), 6);
                wr(b, r::rdt(0), 6);
                wr(b, r::RCTL, r::RCTL_EN | r::RCTL_LBM_MAC | r::RCTL_BAM | r::RCTL_UPE | r::RCTL_SECRC);
                post_rx(b, &rig, 6, 3);
                for k in 0..4u32 {
                    send(b, &rig, k, &frame(64, 20 + k as u8), SEND);
                }
                let st: Vec<String> = [6, 7, 0, 1]
                    .iter()
                    .map(|i| rig.desc(RX_RING, *i).rsplit('.').next().unwrap_or("").to_string())
                    .collect();
                format!("{} status={} last={}", heads(b), st.join(","), rig.rx_holds(1, &frame(64, 23)))
            })
        }),
        case!("rx.disabled-receiver", "RCTL.EN clear: the looped frame is not received", |b| {
            with_rig!(b, 0, 0, |rig| {
                post_rx(b, &rig, 0, 4);
                wr(b, r::RCTL, r::RCTL_LBM_MAC | r::RCTL_BAM | r::RCTL_SECRC);
                send(b, &rig, 0, &frame(64, 6), SEND);
                format!("{} rx0={}", heads(b), rig.desc(RX_RING, 0))
            })
        }),
        case!("rx.interrupt-cause", "INTx: RXT0 raised after a frame with RDTR=0", |b| {
            with_rig!(b, 0, 0, |rig| {
                post_rx(b, &rig, 0, 4);
                rd(b, r::ICR);
                send(b, &rig, 0, &frame(64, 7), SEND);
                format!("ICR={:#010x}", rd(b, r::ICR) & (r::Icr::RXT0 | r::Icr::TXDW).bits())
            })
        }),
        case!(
            "rx.packet-split-writeback",
            "packet-split RX descriptor (RCTL.DTYP=01, EXTEN) after a 100-byte frame",
            known = "row 12",
            |b| {
                with_rig!(b, r::RCTL_DTYP_PS, r::RFCTL_EXTEN, |rig| {
                    wr(b, r::PSRCTL, 2 | 2 << r::PSRCTL_BSIZE1_SHIFT);
                    // Packet-split read format: four buffer addresses (header, then 3 data);
                    // the descriptor is 32 bytes, so the 128-byte ring holds 4 of them.
                    for i in 0..4usize {
                        for k in 0..4usize {
                            let a = rig.at(RX_BUF + (i * 4 + k) * 0x400);
                            let _ = rig.mem.write(RX_RING + 32 * i + 8 * k, a.as_bytes());
                        }
                    }
                    wr(b, r::rdt(0), 2);
                    let f = frame(100, 8);
                    send(b, &rig, 0, &f, SEND);
                    let mut hdr = vec![0u8; 100];
                    let _ = rig.mem.read(RX_BUF, &mut hdr);
                    let mut d1 = vec![0u8; 100];
                    let _ = rig.mem.read(RX_BUF + 0x400, &mut d1);
                    format!(
                        "{} rx0={}.{} in-buf0={} in-buf1={}",
                        heads(b),
                        rig.desc(RX_RING, 0),
                        rig.desc(RX_RING, 1),
                        hdr == f,
                        d1 == f
                    )
                })
            }
        ),
    ]
}
