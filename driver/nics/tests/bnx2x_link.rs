//! The bnx2x driver against the model with a link (`Bnx2xDevice::set_link`): TX
//! completions reach the driver when the wire has sent the packet, not at the doorbell;
//! nothing completes while the link partner pauses the link; LSO packets go out as their
//! segments (and come back as them in loopback).

use nicqual_backends::emulated::EmulatedBackend;
use nicqual_dma::dmamap::{DmaApi, DmaPlatform};
use nicqual_dma::memory::HostMemory;
use nicqual_dma::swiotlb::DeviceName;
use nicqual_model::bnx2x::{Bnx2xDevice, Config, LinkConfig, PausePlan};
use nicqual_nics::bnx2x::{Bnx2x, Bnx2xConfig, BufferMode, Gso, XmitOutcome};
use nicqual_pci::backend::Backend;
use nicqual_pci::health::CheckResult;

type Drv = Bnx2x<EmulatedBackend<Bnx2xDevice>>;

fn attach(link: Option<LinkConfig>) -> Drv {
    let mut dev = Bnx2xDevice::with_config(Config { queues: 2, ..Config::default() });
    if let Some(l) = link {
        dev.set_link(l).unwrap();
    }
    let b = EmulatedBackend::new(dev, "model:bnx2x");
    let p = DmaPlatform::iommu(HostMemory::native(1 << 20)).shared();
    let dma = DmaApi::new(DeviceName::new("bnx2x", "0000:04:00.0"), p, u64::MAX);
    let cfg = Bnx2xConfig { interrupts: false, buffers: BufferMode::Streaming, ..Bnx2xConfig::new(9000) };
    Bnx2x::attach(b, dma, cfg).unwrap()
}

/// An IPv4/TCP packet (20-byte IP, 32-byte TCP header) of `len` bytes, payload seeded.
fn tcp_packet(len: usize, seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&40000u16.to_be_bytes());
    f[36..38].copy_from_slice(&3260u16.to_be_bytes());
    f[38..42].copy_from_slice(&seq.to_be_bytes());
    f[46] = 8 << 4;
    f[47] = 0x18; // ACK | PSH
    for (i, b) in f.iter_mut().enumerate().skip(66) {
        *b = (i * 13 + 7) as u8;
    }
    f
}

const GSO: Gso = Gso { mss: 8948, l4_offset: 34, tcp_hdr_len: 32 };

fn completed(d: &mut Drv) -> usize {
    d.poll(0, 256, |_, _| {}).unwrap().tx_completed
}

#[test]
fn a_completion_arrives_when_the_wire_has_sent_the_packet() {
    let mut d = attach(Some(LinkConfig::TEN_GBE));
    let t0 = d.backend().now_ns();
    let f = tcp_packet(9014, 1);
    assert!(matches!(d.xmit(0, &[&f]).unwrap(), XmitOutcome::Queued));
    d.doorbell(0).unwrap();
    assert_eq!(completed(&mut d), 0, "not at the doorbell");
    // 9014 + 24 bytes at 10 Gb/s: 7230.4 ns, rounded up.
    d.backend_mut().wait(7_230);
    assert_eq!(completed(&mut d), 0, "1 ns early");
    assert_eq!(d.bounce_census().tx.mappings, 1, "the TX mapping is held until the completion");
    d.backend_mut().wait(1);
    assert_eq!(completed(&mut d), 1);
    assert_eq!(d.backend().now_ns() - t0, 7_231);
    assert_eq!(d.bounce_census().tx.mappings, 0);
    // An LSO packet of 25 158 bytes: 3 segments with the headers each.
    let g = tcp_packet(25_158, 2);
    assert!(matches!(d.xmit_gso(0, &[&g], GSO).unwrap(), XmitOutcome::Queued));
    d.doorbell(0).unwrap();
    let wire = 2 * (66 + 8948 + 24) + (66 + 7196 + 24);
    let ns = (wire as u64 * 8).div_ceil(10);
    d.backend_mut().wait(ns - 1);
    assert_eq!(completed(&mut d), 0);
    d.backend_mut().wait(1);
    assert_eq!(completed(&mut d), 1);
    let l = d.backend().device().link().unwrap().stats;
    assert_eq!((l.packets, l.frames, l.wire_bytes), (2, 4, 9038 + wire as u64));
    assert_eq!(d.backend().device().stats.rx_frames, 0, "on a link nothing is looped back");
    let (r, _) = d.close();
    assert_eq!(r.result, CheckResult::Pass, "{}", r.detail);
}

#[test]
fn nothing_completes_while_the_link_is_paused() {
    let seed = 11;
    let pauses = PausePlan { seed, per_s: 100.0, mean_frames: 2.0 };
    let mut d = attach(Some(LinkConfig { pauses, ..LinkConfig::TEN_GBE }));
    let f = tcp_packet(9014, 3);
    // Offer one jumbo frame every 20 us for 100 ms; poll every 20 us.
    let mut done_at = Vec::new();
    for _ in 0..5_000 {
        if let XmitOutcome::Queued = d.xmit(0, &[&f]).unwrap() {
            d.doorbell(0).unwrap();
        }
        d.backend_mut().wait(20_000);
        let n = completed(&mut d);
        done_at.extend(std::iter::repeat_n(d.backend().now_ns(), n));
    }
    let link = d.backend().device().link().unwrap();
    let ps = link.pauses().to_vec();
    assert!(ps.len() >= 3, "seed {seed}: {ps:?}");
    // One poll period after the pause starts (a frame on the wire finishes) to its end:
    // no completion reached the driver.
    for &(s, e) in &ps {
        let n = done_at.iter().filter(|&&t| t > s + 40_000 && t < e).count();
        assert_eq!(n, 0, "seed {seed}: {n} completions inside pause {s}..{e}");
    }
    // Outside the pauses completions keep coming.
    assert!(done_at.len() > 3_000, "seed {seed}: {}", done_at.len());
    let (r, _) = d.close();
    assert_eq!(r.result, CheckResult::Pass, "{}", r.detail);
}

#[test]
fn in_loopback_an_lso_packet_comes_back_as_its_segments() {
    let mut d = attach(None);
    let g = tcp_packet(25_158, 1000);
    assert!(matches!(d.xmit_gso(0, &[&g[..4000], &g[4000..]], GSO).unwrap(), XmitOutcome::Queued));
    d.doorbell(0).unwrap();
    let mut got = Vec::new();
    let r = d.poll(0, 64, |data, _| got.push(data.to_vec())).unwrap();
    assert_eq!(r.tx_completed, 1);
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), vec![66 + 8948, 66 + 8948, 66 + 7196]);
    let mut payload = Vec::new();
    for (i, s) in got.iter().enumerate() {
        let seq = u32::from_be_bytes([s[38], s[39], s[40], s[41]]);
        assert_eq!(seq, 1000 + (i * 8948) as u32, "segment {i}");
        assert_eq!(usize::from(u16::from_be_bytes([s[16], s[17]])), s.len() - 14);
        assert_eq!(s[47] & 0x08 != 0, i == 2, "PSH on the last segment only");
        payload.extend_from_slice(&s[66..]);
    }
    assert_eq!(payload, g[66..], "payload byte-exact");
    // Hostile LSO requests are refused by the driver before anything is mapped.
    for bad in [Gso { mss: 0, ..GSO }, Gso { mss: 9001, ..GSO }, Gso { tcp_hdr_len: 7, ..GSO }] {
        assert!(d.xmit_gso(0, &[&g], bad).is_err(), "{bad:?}");
    }
    assert_eq!(d.bounce_census().tx.mappings, 0);
    let (r, _) = d.close();
    assert_eq!(r.result, CheckResult::Pass, "{}", r.detail);
}
