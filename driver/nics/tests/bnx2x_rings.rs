//! The bnx2x driver ([`Bnx2x`]) against the bnx2x device model over the emulated backend:
//! each side keeps its own ring arithmetic (the driver's `Chain`, the model's chain
//! cursors that follow next-page pointers read from the rings), so a page-boundary or wrap
//! bug on either side shows up as lost, repeated or corrupted data.

use nicqual_backends::emulated::EmulatedBackend;
use nicqual_dma::dmamap::{DmaApi, DmaPlatform};
use nicqual_dma::memory::HostMemory;
use nicqual_dma::swiotlb::{DeviceName, Generation, SwiotlbConfig};
use nicqual_model::FaultPlan;
use nicqual_model::bnx2x::{Bnx2xDevice, Config};
use nicqual_nics::bnx2x::{Bnx2x, Bnx2xConfig, Bnx2xError, BufferMode, RingCqeError, XmitOutcome};
use nicqual_pci::backend::Backend;
use nicqual_pci::health::CheckResult;

type Drv = Bnx2x<EmulatedBackend<Bnx2xDevice>>;

fn attach(cfg: Bnx2xConfig) -> Drv {
    let dev = Bnx2xDevice::with_config(Config { queues: cfg.queues.max(2), ..Config::default() });
    let b = EmulatedBackend::new(dev, "model:bnx2x");
    let p = DmaPlatform::iommu(HostMemory::native(1 << 20)).shared();
    let dma = DmaApi::new(DeviceName::new("bnx2x", "0000:04:00.0"), p, u64::MAX);
    Bnx2x::attach(b, dma, cfg).expect("attach")
}

/// A seeded frame: Ethernet header (IPv4 ethertype 0x88B5, not TCP) and a payload that
/// names its sequence number.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[12] = 0x88;
    f[13] = 0xB5;
    for (i, b) in f.iter_mut().enumerate().skip(14) {
        *b = (seq as usize * 131 + i * 7) as u8;
    }
    f[14..18].copy_from_slice(&seq.to_le_bytes());
    f
}

/// Send `n` frames on queue `q` in batches, poll them back, check every byte.
fn loopback(d: &mut Drv, q: usize, n: u32, len: impl Fn(u32) -> usize, batch: u32) -> u64 {
    let mut got = Vec::new();
    let mut seq = 0;
    while seq < n {
        let end = (seq + batch).min(n);
        for s in seq..end {
            let f = frame(s, len(s));
            assert!(matches!(d.xmit(q, &[&f]).unwrap(), XmitOutcome::Queued), "frame {s}");
        }
        d.doorbell(q).unwrap();
        d.poll(q, 1024, |data, meta| {
            assert_eq!(meta.segments, 1);
            got.push(data.to_vec());
        })
        .unwrap();
        seq = end;
    }
    assert_eq!(got.len(), n as usize);
    for (s, g) in got.iter().enumerate() {
        assert_eq!(g, &frame(s as u32, len(s as u32)), "frame {s} differs");
    }
    got.iter().map(|g| g.len() as u64).sum()
}

#[test]
fn pool_mode_loopback_across_many_page_boundaries() {
    let cfg = Bnx2xConfig { rx_bd_pages: 2, tx_bd_pages: 2, interrupts: false, ..Bnx2xConfig::new(1500) };
    let mut d = attach(cfg);
    // 3000 frames: the RX chain (1020 slots) wraps ~3 times, the RCQ (16 pages of 63)
    // crosses ~47 page links, the TX chain (2 pages, 2 BDs a frame) ~23.
    let bytes = loopback(&mut d, 0, 3000, |s| 60 + (s as usize * 37) % 1454, 40);
    let c = d.counters(0).unwrap();
    assert_eq!((c.rx_packets, c.tx_packets, c.tx_completed, c.rx_bytes), (3000, 3000, 3000, bytes));
    assert_eq!(d.tx_in_flight(0), 0);
    let census = d.census();
    assert_eq!((census.rx_bd_buffers, census.live_mappings, census.coherent), (1018, 0, 2));
    let (report, b) = d.close();
    assert_eq!(report.result, CheckResult::Pass, "{}", report.detail);
    assert_eq!(b.live_mappings(), 0);
}

#[test]
fn streaming_mode_maps_per_buffer_and_unmaps_everything() {
    let cfg = Bnx2xConfig { interrupts: false, buffers: BufferMode::Streaming, ..Bnx2xConfig::new(9000) };
    let mut d = attach(cfg);
    let posted = d.config().rx_posted();
    assert_eq!(d.census().live_mappings, posted, "one mapping per posted RX buffer");
    // Jumbo frames, with fragments on TX (start BD + data BDs).
    let f = frame(7, 9014);
    let (a, rest) = f.split_at(1000);
    let (b, c) = rest.split_at(4096);
    assert!(matches!(d.xmit(0, &[a, b, c]).unwrap(), XmitOutcome::Queued));
    let census = d.census();
    assert_eq!((census.tx_packets, census.tx_mappings, census.live_mappings), (1, 3, posted + 3));
    d.doorbell(0).unwrap();
    let mut got = Vec::new();
    d.poll(0, 64, |data, _| got.push(data.to_vec())).unwrap();
    assert_eq!(got, vec![f]);
    assert_eq!(d.census().live_mappings, posted, "TX unmapped at completion; the RX buffer replaced");
    let bytes = loopback(&mut d, 0, 700, |s| 9000 - (s as usize % 300), 16);
    assert!(bytes > 6_000_000);
    let (report, b) = d.close();
    assert_eq!(report.result, CheckResult::Pass, "{}", report.detail);
    assert_eq!(b.live_mappings(), 0);
}

#[test]
fn streaming_on_a_full_bounce_pool_drops_and_stays_balanced() {
    // Xen PV memory: every multi-page buffer bounces; a 1 MiB pool holds ~100 of them.
    let mem = HostMemory::xen_pv(1 << 16, 1, 5);
    let p = DmaPlatform::swiotlb(mem, SwiotlbConfig::with_mib(Generation::ClassicXen, 4)).unwrap().shared();
    let dma = DmaApi::new(DeviceName::new("bnx2x", "0000:04:00.0"), p.clone(), u64::MAX);
    let b = EmulatedBackend::new(Bnx2xDevice::new(), "model:bnx2x");
    let cfg = Bnx2xConfig { interrupts: false, buffers: BufferMode::Streaming, ..Bnx2xConfig::new(9000) };
    match Bnx2x::attach(b, dma, cfg) {
        Err(Bnx2xError::Dma(e)) => assert!(e.is_pool_full(), "{e}"),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("510 jumbo buffers cannot fit a 4 MiB pool"),
    }
    assert_eq!(p.borrow().pool_stats().unwrap().used, 0, "a failed open leaves nothing mapped");
}

fn tcp_segment(seq: u32, payload: &[u8], flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 20];
    f[12] = 0x08;
    f[14] = 0x45;
    let tot = (40 + payload.len()) as u16;
    f[16..18].copy_from_slice(&tot.to_be_bytes());
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&40000u16.to_be_bytes());
    f[36..38].copy_from_slice(&5201u16.to_be_bytes());
    f[38..42].copy_from_slice(&seq.to_be_bytes());
    f[46] = 5 << 4;
    f[47] = flags;
    f.extend_from_slice(payload);
    f
}

#[test]
fn tpa_coalesces_a_flow_byte_exact_and_reclaims_sge_pages() {
    for mode in [BufferMode::Pool, BufferMode::Streaming] {
        let cfg = Bnx2xConfig { tpa: true, interrupts: false, buffers: mode, ..Bnx2xConfig::new(1500) };
        let mut d = attach(cfg);
        let sges = d.census().sge_pages;
        let stream: Vec<u8> = (0..400_000u32).map(|i| (i.wrapping_mul(2654435761u32) >> 13) as u8).collect();
        let mut got: Vec<(Vec<u8>, u16, u16)> = Vec::new();
        let mut seq = 1000u32;
        let mut off = 0;
        // Bursts of 1448-byte segments; the last of each burst has PSH.
        for burst in 0..30 {
            let n = 3 + burst % 9;
            for k in 0..n {
                let len = 1448.min(stream.len() - off);
                let psh = if k == n - 1 { 0x08 } else { 0 };
                let f = tcp_segment(seq, &stream[off..off + len], 0x10 | psh);
                assert!(matches!(d.xmit(0, &[&f]).unwrap(), XmitOutcome::Queued));
                seq = seq.wrapping_add(len as u32);
                off += len;
            }
            d.doorbell(0).unwrap();
            d.poll(0, 64, |data, meta| got.push((data.to_vec(), meta.segments, meta.sge_pages))).unwrap();
        }
        // Each burst is one aggregation: headers of its first segment, then every payload.
        assert_eq!(got.len(), 30, "{mode:?}");
        let mut at = 0;
        for (i, (pkt, segs, pages)) in got.iter().enumerate() {
            let n = 3 + i % 9;
            assert_eq!(usize::from(*segs), n, "{mode:?} aggregation {i}");
            let payload = &pkt[54..];
            assert_eq!(payload, &stream[at..at + payload.len()], "{mode:?} aggregation {i} payload");
            assert_eq!(usize::from(*pages), (payload.len() - 1448).div_ceil(4096));
            at += payload.len();
        }
        assert_eq!(at, off);
        let c = d.counters(0).unwrap();
        assert_eq!(c.rx_tpa_aggregations, 30);
        let census = d.census();
        assert_eq!((census.sge_pages, census.tpa_held), (sges, 0), "SGE pages reposted, no aggregation held");
        let (report, b) = d.close();
        assert_eq!(report.result, CheckResult::Pass, "{mode:?}: {}", report.detail);
        assert_eq!(b.live_mappings(), 0);
    }
}

/// Run traffic on queue 0 with the 4th completion hostile (seeded pick); return the error
/// and how many packets were delivered before it. Queue 1 must still work afterwards.
fn hostile_run(seed: u64, tpa: bool) -> (Bnx2xError, usize) {
    let cfg = Bnx2xConfig { queues: 2, tpa, interrupts: false, ..Bnx2xConfig::new(1500) };
    let mut d = attach(cfg);
    let mut plan = FaultPlan::new(seed);
    plan.extend("hostile-completion:3".parse().unwrap());
    d.backend_mut().device_mut().arm_faults(plan);
    if tpa {
        // Three bursts of two segments: CQEs start, end, start, end(hostile), ...
        for b in 0..3u32 {
            for k in 0..2u32 {
                let f = tcp_segment(1 + (b * 2 + k) * 1000, &[b as u8; 1000], if k == 1 { 0x18 } else { 0x10 });
                d.xmit(0, &[&f]).unwrap();
            }
            d.doorbell(0).unwrap();
        }
    } else {
        for s in 0..6 {
            d.xmit(0, &[&frame(s, 200)]).unwrap();
        }
        d.doorbell(0).unwrap();
    }
    let mut n = 0;
    let err = d.poll(0, 64, |_, _| n += 1).unwrap_err();
    assert!(matches!(err, Bnx2xError::Cqe { queue: 0, index: 3, .. }), "seed {seed}: {err}");
    assert!(matches!(d.poll(0, 64, |_, _| ()), Err(Bnx2xError::QueueFailed { queue: 0, .. })));
    let f = frame(99, 300);
    d.xmit(1, &[&f]).unwrap();
    d.doorbell(1).unwrap();
    let mut got = Vec::new();
    d.poll(1, 8, |data, _| got.push(data.to_vec())).unwrap();
    assert_eq!(got, vec![f], "seed {seed}: queue 1 unaffected");
    let (report, b) = d.close();
    assert_eq!(report.result, CheckResult::Pass, "seed {seed}: {}", report.detail);
    assert_eq!(b.live_mappings(), 0);
    (err, n)
}

#[test]
fn every_hostile_cqe_kind_is_refused_by_name_and_stops_only_its_queue() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..30u64 {
        for tpa in [false, true] {
            let (err, delivered) = hostile_run(seed, tpa);
            assert_eq!(delivered, if tpa { 1 } else { 3 }, "seed {seed}: everything before the hostile CQE");
            let Bnx2xError::Cqe { error, .. } = err else { unreachable!() };
            let kind = match error {
                RingCqeError::BadLength { .. } | RingCqeError::SgeCount { .. } => "length over the buffer",
                RingCqeError::TpaEndWithoutStart { .. } | RingCqeError::TpaOff { .. } => "TPA end without start",
                RingCqeError::SgeNotPosted { .. } | RingCqeError::SgeShort { .. } => "SGE not posted",
                RingCqeError::AggOutOfRange { .. } => "aggregation id out of range",
                RingCqeError::AllOnes => "all-ones",
                other => panic!("seed {seed}: unexpected {other}"),
            };
            seen.insert(kind);
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}

#[test]
fn stalled_tx_consumer_is_a_timeout_not_a_hang() {
    let cfg = Bnx2xConfig { interrupts: false, tx_timeout_ns: 1_000_000, ..Bnx2xConfig::new(1500) };
    let mut d = attach(cfg);
    d.backend_mut().device_mut().arm_faults("stall-consumer:0".parse().unwrap());
    let f = frame(1, 100);
    d.xmit(0, &[&f]).unwrap();
    d.doorbell(0).unwrap();
    let mut got = 0;
    d.poll(0, 8, |_, _| got += 1).unwrap();
    assert_eq!((got, d.tx_in_flight(0)), (1, 1), "received, but the completion is never reported");
    d.backend_mut().wait(2_000_000);
    let e = d.poll(0, 8, |_, _| ()).unwrap_err();
    assert!(matches!(e, Bnx2xError::TxTimeout { queue: 0, in_flight: 1, .. }), "{e}");
    let (report, _) = d.close();
    assert_eq!(report.result, CheckResult::Pass, "{}", report.detail);
}

#[test]
fn each_fast_path_queue_interrupts_on_its_own_vector_and_a_lost_one_is_seen() {
    let cfg = Bnx2xConfig { queues: 2, ..Bnx2xConfig::new(1500) };
    let mut d = attach(cfg);
    d.drain_vectors();
    assert_eq!(d.slow_path_nop().unwrap(), 1);
    assert!(d.wait_vector(0, 1000), "slow path on vector 0");
    for q in 0..2 {
        let f = frame(q as u32, 128);
        d.xmit(q, &[&f]).unwrap();
        d.doorbell(q).unwrap();
        assert_eq!(d.drain_vectors(), vec![q as u16 + 1]);
        d.poll(q, 8, |_, _| ()).unwrap();
    }
    d.backend_mut().device_mut().arm_faults("lose-vector:2".parse().unwrap());
    assert!(matches!(d.check_msix_entry(2), Err(Bnx2xError::VectorLost { vector: 2, .. })));
    assert!(d.check_msix_entry(1).unwrap().is_some());
    let f = frame(5, 128);
    d.xmit(1, &[&f]).unwrap();
    d.doorbell(1).unwrap();
    assert!(!d.wait_vector(2, 100_000), "no message on the lost vector");
    let mut n = 0;
    d.poll(1, 8, |_, _| n += 1).unwrap();
    assert_eq!(n, 1, "the work is there; only the interrupt is missing");
    let (report, _) = d.close();
    assert_eq!(report.result, CheckResult::Pass);
}

#[test]
fn surprise_removal_is_seen_and_close_still_balances() {
    let mut d = attach(Bnx2xConfig { interrupts: false, ..Bnx2xConfig::new(1500) });
    assert!(!d.is_gone());
    d.backend_mut().device_mut().arm_faults("surprise-removal".parse().unwrap());
    assert!(d.is_gone());
    let f = frame(1, 100);
    d.xmit(0, &[&f]).unwrap();
    d.doorbell(0).unwrap();
    assert_eq!(d.poll(0, 8, |_, _| ()).unwrap().rx, 0);
    let (report, b) = d.close();
    assert_eq!(report.result, CheckResult::Pass);
    assert_eq!(b.live_mappings(), 0);
}
