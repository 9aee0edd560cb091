//! The datapath against the emulated 82574L: loopback integrity, and one test per hostile
//! write-back (each must be a counted, typed error — never a panic or an OOB access).

use super::*;
use crate::i82574::{Options, rss};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_model::{FaultPlan, PciDevice};

type Drv = I82574<EmulatedBackend<Model>>;

fn up(cfg: DatapathConfig) -> Drv {
    let b = EmulatedBackend::new(Model::new(Config::default()), "model:i82574l");
    let mut d = I82574::attach(b, Options::default()).unwrap();
    d.bring_up().unwrap();
    d.setup_datapath(cfg).unwrap();
    d
}

fn loopback(ring: u32) -> DatapathConfig {
    DatapathConfig { ring_size: ring, pool_entries: 4 * ring, loopback: true, ..Default::default() }
}

fn frame(len: usize, seq: u32) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i as u32 ^ seq.wrapping_mul(2654435761)) as u8).collect();
    f[..6].copy_from_slice(&[0xFF; 6]);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    f
}

fn send(d: &mut Drv, frames: &[Vec<u8>]) -> usize {
    let mut q = VecDeque::new();
    for f in frames {
        let dp = d.datapath_mut().unwrap();
        let mut p = dp.pool_mut().alloc().unwrap();
        dp.pool().write(&mut p, f).unwrap();
        q.push_back(p);
    }
    let n = d.tx_batch(0, &mut q).unwrap();
    for p in q {
        d.datapath_mut().unwrap().pool_mut().free(p);
    }
    n
}

fn recv_all(d: &mut Drv) -> Vec<Vec<u8>> {
    let mut pkts = Vec::new();
    while d.rx_batch(0, &mut pkts, 32).unwrap() > 0 {}
    let dp = d.datapath_mut().unwrap();
    pkts.into_iter()
        .map(|p| {
            let v = dp.pool().to_vec(&p).unwrap();
            dp.pool_mut().free(p);
            v
        })
        .collect()
}

/// The device writes `bytes` into RX slot `slot` (a DMA write through its IOMMU) and, when
/// `consume`, moves its own RDH past it, as a device that wrote the slot would.
fn device_writes_rx_at(d: &mut Drv, slot: u32, bytes: &[u8], consume: bool) {
    let iova = d.datapath().unwrap().config().iova + slot as u64 * 16;
    let dev = d.backend_mut().device_mut();
    let now = dev.now_ns();
    dev.iommu().write(iova, bytes, now).unwrap();
    if consume {
        dev.bar_write32(0, r::rdh(0) as u64, slot + 1);
    }
}

fn device_writes_rx(d: &mut Drv, slot: u32, bytes: &[u8]) {
    device_writes_rx_at(d, slot, bytes, true);
}

fn wb(len: u16, status: u32, mrq: u32) -> [u8; 16] {
    let w = ExtRxWb { mrq: mrq.into(), status_error: status.into(), length: len.into(), ..Default::default() };
    let mut b = [0u8; 16];
    b.copy_from_slice(w.as_bytes());
    b
}

#[test]
fn loopback_frames_arrive_intact_in_order() {
    let mut d = up(loopback(64));
    let frames: Vec<_> = (0..200u32).map(|i| frame(60 + (i as usize * 7) % 1455, i)).collect();
    let mut got = Vec::new();
    for chunk in frames.chunks(16) {
        assert_eq!(send(&mut d, chunk), chunk.len());
        got.extend(recv_all(&mut d));
    }
    assert_eq!(got, frames);
    let c = &d.datapath().unwrap().counters;
    assert_eq!((c.tx_packets, c.rx_packets, c.wb_errors()), (200, 200, 0));
    d.tx_clean().unwrap();
    let dp = d.datapath().unwrap();
    assert_eq!(dp.tx_in_flight(), 0);
    assert_eq!(dp.pool().available() as u32, dp.pool().capacity() - dp.rx_posted(), "no buffer leaked");
}

#[test]
fn jumbo_9018_with_lpe_arrives_intact() {
    let mut d = up(DatapathConfig { loopback: true, ring_size: 64, pool_entries: 256, ..DatapathConfig::jumbo() });
    let f = frame(9018, 1);
    send(&mut d, std::slice::from_ref(&f));
    assert_eq!(recv_all(&mut d), vec![f]);
}

#[test]
fn setup_refuses_buffers_smaller_than_the_largest_frame() {
    let b = EmulatedBackend::new(Model::new(Config::default()), "m");
    let mut d = I82574::attach(b, Options::default()).unwrap();
    let e = d.setup_datapath(DatapathConfig { jumbo: true, buf_size: 4096, ..Default::default() }).unwrap_err();
    assert!(matches!(e, DriverError::Datapath(DatapathError::Config { .. })), "{e}");
    assert_eq!(d.backend().live_mappings(), 0);
}

#[test]
fn hostile_length_0xffff_is_counted_not_trusted() {
    let mut d = up(loopback(64));
    device_writes_rx(&mut d, 0, &wb(0xFFFF, d::RXD_STAT_DD | d::RXD_STAT_EOP, 0));
    let mut out = Vec::new();
    assert_eq!(d.rx_batch(0, &mut out, 32).unwrap(), 0);
    let dp = d.datapath().unwrap();
    assert_eq!(dp.counters.wb_length, 1);
    assert!(matches!(
        dp.recent_errors().last(),
        Some(WriteBackError::LengthExceedsBuffer { slot: 0, len: 0xFFFF, buf: 2048, .. })
    ));
    // The slot's buffer went back to the pool and was reposted; traffic still flows.
    assert_eq!(dp.rx_posted(), 63);
    let f = frame(300, 3);
    send(&mut d, std::slice::from_ref(&f));
    assert_eq!(recv_all(&mut d), vec![f]);
}

#[test]
fn hostile_out_of_range_queue_index_is_counted() {
    let mut d = up(loopback(64));
    device_writes_rx(&mut d, 0, &wb(64, d::RXD_STAT_DD | d::RXD_STAT_EOP, 31 << 8));
    let mut out = Vec::new();
    assert_eq!(d.rx_batch(0, &mut out, 32).unwrap(), 0);
    let dp = d.datapath().unwrap();
    assert_eq!(dp.counters.wb_queue, 1);
    assert!(matches!(dp.recent_errors().last(), Some(WriteBackError::QueueOutOfRange { queue: 31, .. })));
    // And a head register outside the ring is refused the same way.
    d.backend_mut().device_mut().bar_write32(0, r::rdh(0) as u64, 5000);
    assert_eq!(d.read_head(true).unwrap(), None);
    assert_eq!(d.datapath().unwrap().counters.head_out_of_range, 1);
}

#[test]
fn hostile_dd_on_unposted_slot_is_counted() {
    let mut d = up(loopback(64));
    // 63 of 64 slots are posted; slot 63 (the tail) holds no buffer.
    assert_eq!(d.datapath().unwrap().rx_posted(), 63);
    device_writes_rx_at(&mut d, 63, &wb(64, d::RXD_STAT_DD | d::RXD_STAT_EOP, 0), false);
    let mut out = Vec::new();
    assert_eq!(d.rx_batch(0, &mut out, 32).unwrap(), 0);
    let dp = d.datapath().unwrap();
    assert_eq!(dp.counters.wb_dd_unposted, 1);
    assert!(matches!(dp.recent_errors().last(), Some(WriteBackError::DdOnUnposted { slot: 63, .. })));
    assert_eq!(out.len(), 0, "nothing handed to the caller from an unposted slot");
}

#[test]
fn hostile_zero_length_span_and_frame_errors_are_counted() {
    let mut d = up(loopback(64));
    device_writes_rx(&mut d, 0, &wb(0, d::RXD_STAT_DD | d::RXD_STAT_EOP, 0));
    device_writes_rx(&mut d, 1, &wb(100, d::RXD_STAT_DD, 0));
    device_writes_rx(&mut d, 2, &wb(100, d::RXD_STAT_DD | d::RXD_STAT_EOP | d::RXDEXT_ERR_CE, 0));
    let mut out = Vec::new();
    assert_eq!(d.rx_batch(0, &mut out, 32).unwrap(), 0);
    let c = &d.datapath().unwrap().counters;
    assert_eq!((c.wb_zero_length, c.wb_span, c.wb_frame_error), (1, 1, 1));
}

#[test]
fn all_ones_descriptor_is_counted_or_device_gone() {
    let mut d = up(loopback(64));
    device_writes_rx(&mut d, 0, &[0xFF; 16]);
    let mut out = Vec::new();
    assert_eq!(d.rx_batch(0, &mut out, 32).unwrap(), 0);
    assert_eq!(d.datapath().unwrap().counters.wb_all_ones, 1);
    // Now the device really goes away: the same read is a DeviceGone error.
    device_writes_rx(&mut d, 1, &[0xFF; 16]);
    d.backend_mut().device_mut().arm_faults(FaultPlan::new(0).surprise_removal_at(0));
    let e = d.rx_batch(0, &mut out, 32).unwrap_err();
    assert!(e.is_device_gone(), "{e}");
}

#[test]
fn refill_waits_for_buffers_and_never_publishes_an_empty_slot() {
    let mut d = up(DatapathConfig { ring_size: 64, pool_entries: 64, loopback: true, ..Default::default() });
    assert_eq!(d.read(r::rdt(0)).unwrap(), 63);
    // Every posted descriptor points into the pool.
    let dp = d.datapath().unwrap();
    let pool_lo = dp.pool().iova_of(0);
    let pool_hi = dp.pool().iova_of(63);
    for slot in 0..63 {
        let a = dp.mem.read_u32(slot * 16).unwrap() as u64;
        assert!((pool_lo..=pool_hi).contains(&a), "slot {slot} -> {a:#x}");
    }
    // Send on the one spare buffer and keep what arrives: the pool is empty, so the
    // consumed slot is not refilled and RDT does not move.
    let f = frame(100, 0);
    send(&mut d, std::slice::from_ref(&f));
    let mut kept = Vec::new();
    assert_eq!(d.rx_batch(0, &mut kept, 32).unwrap(), 1);
    assert!(d.datapath().unwrap().counters.rx_refill_deferred > 0);
    assert_eq!(d.datapath().unwrap().rx_posted(), 62);
    assert_eq!(d.read(r::rdt(0)).unwrap(), 63);
    // Buffers come back: the next batch refills and only then publishes.
    d.tx_clean().unwrap();
    let dp = d.datapath_mut().unwrap();
    for p in kept.drain(..) {
        dp.pool_mut().free(p);
    }
    assert_eq!(d.rx_batch(0, &mut kept, 32).unwrap(), 0);
    assert_eq!(d.datapath().unwrap().rx_posted(), 63);
    assert_eq!(d.read(r::rdt(0)).unwrap(), 0, "slot 63 posted, tail wraps to 0");
}

#[test]
fn tx_refuses_empty_and_oversize_packets() {
    let mut d = up(loopback(64));
    let dp = d.datapath_mut().unwrap();
    let p = dp.pool_mut().alloc().unwrap();
    let mut q = VecDeque::from([p]);
    assert_eq!(d.tx_batch(0, &mut q).unwrap(), 0);
    assert_eq!(d.datapath().unwrap().counters.tx_bad_packet, 1);
    assert!(matches!(d.tx_batch(1, &mut q), Err(DriverError::Datapath(DatapathError::NoSuchQueue { queue: 1 }))));
}

#[test]
fn jumbo_tx_buffers_are_cut_at_page_boundaries_one_descriptor_per_piece() {
    let mut d = up(DatapathConfig { loopback: true, ring_size: 64, pool_entries: 256, ..DatapathConfig::jumbo() });
    let f = frame(9018, 2);
    send(&mut d, std::slice::from_ref(&f));
    // 16 KiB entries are page aligned: 9018 bytes = pages of 4096 + 4096 + 826.
    let dp = d.datapath().unwrap();
    let ring_bytes = (64 * 16usize).div_ceil(4096) * 4096;
    let lens: Vec<u32> = (0..4).map(|s| dp.mem.read_u32(ring_bytes + s * 16 + 8).unwrap() & 0xFFFF).collect();
    assert_eq!(lens, [4096, 4096, 826, 0]);
    let eop: Vec<bool> =
        (0..3).map(|s| dp.mem.read_u32(ring_bytes + s * 16 + 8).unwrap() & d::TXD_CMD_EOP != 0).collect();
    assert_eq!(eop, [false, false, true]);
    assert_eq!(recv_all(&mut d), vec![f], "the model gathers the pieces into one frame");
    d.tx_clean().unwrap();
    let dp = d.datapath().unwrap();
    assert_eq!(dp.tx_in_flight(), 0);
    assert_eq!(dp.pool().available() as u32, dp.pool().capacity() - dp.rx_posted(), "buffer freed once, at EOP");
}

fn up_two_pairs() -> Drv {
    let b = EmulatedBackend::new(Model::new(Config::default()), "model:i82574l");
    let mut d = I82574::attach(b, Options { queue_pairs: 2, ..Options::default() }).unwrap();
    d.bring_up().unwrap();
    d.setup_datapath(loopback(32)).unwrap();
    d
}

/// Two queue pairs: both receive rings posted, MRQC and PCSD on; IPv4/TCP frames of 64
/// seeded flows come back on the queue the driver's RETA names, each with the hash and
/// type the driver's own Toeplitz predicts.
#[test]
fn two_queue_pairs_receive_on_both_rings_with_the_drivers_hash() {
    use nicqual_model::net::{L4, ipv4_frame};
    let mut d = up_two_pairs();
    assert_eq!(d.read(r::MRQC).unwrap(), MRQC_RSS);
    assert_ne!(d.read(r::RXCSUM).unwrap() & r::RXCSUM_PCSD, 0);
    let dp = d.datapath().unwrap();
    assert_eq!((dp.rx_queues(), dp.rx_posted_on(0), dp.rx_posted_on(1)), (2, 31, 31));
    let table = d.rss_table();
    let mut per_queue = [0u32; 2];
    for i in 0..64u16 {
        let (src, dst, sport, dport) = ([10, 0, (i >> 8) as u8, i as u8], [10, 1, 2, 3], 1024 + i * 7, 80);
        let f = ipv4_frame(src, dst, i, 0, L4::Tcp { sport, dport }, 32);
        let hash = rss::toeplitz(&rss::KEY, &rss::input_v4(src, dst, Some((sport, dport))));
        let want_q = rss::queue_of(&table, hash);
        assert_eq!(send(&mut d, std::slice::from_ref(&f)), 1);
        let (mut pkts, mut meta) = (Vec::new(), Vec::new());
        for q in 0..2 {
            while d.rx_batch_meta(q, &mut pkts, &mut meta, 8).unwrap() > 0 {}
        }
        assert_eq!(meta.len(), 1, "flow {i}: one frame back");
        let m = meta[0];
        assert_eq!((m.queue, m.rss_type, m.hash), (u16::from(want_q), r::RssType::Ipv4Tcp as u8, hash), "flow {i}");
        assert_eq!(d.datapath().unwrap().pool().to_vec(&pkts[0]).unwrap(), f);
        per_queue[m.queue as usize] += 1;
        d.datapath_mut().unwrap().pool_mut().free(pkts.pop().unwrap());
    }
    assert!(per_queue[0] > 0 && per_queue[1] > 0, "{per_queue:?}");
    assert_eq!(d.datapath().unwrap().counters.wb_errors(), 0);
}

/// A write-back whose RSS type the driver did not enable (or any type with RSS off) is a
/// counted, typed refusal.
#[test]
fn hostile_rss_type_is_refused() {
    let mut d = up(loopback(64));
    device_writes_rx(&mut d, 0, &wb(64, d::RXD_STAT_DD | d::RXD_STAT_EOP, r::RssType::Ipv4 as u32));
    let mut out = Vec::new();
    assert_eq!(d.rx_batch(0, &mut out, 32).unwrap(), 0);
    assert_eq!(d.datapath().unwrap().counters.wb_rss_type, 1);
    let mut d = up_two_pairs();
    device_writes_rx(&mut d, 0, &wb(64, d::RXD_STAT_DD | d::RXD_STAT_EOP, r::RssType::Ipv6Ex as u32));
    assert_eq!(d.rx_batch(0, &mut out, 32).unwrap(), 0);
    let dp = d.datapath().unwrap();
    assert_eq!(dp.counters.wb_rss_type, 1);
    assert!(matches!(dp.recent_errors().last(), Some(WriteBackError::RssType { rss_type: 4, .. })));
    assert!(matches!(d.rx_batch(2, &mut out, 1), Err(DriverError::Datapath(DatapathError::NoSuchQueue { queue: 2 }))));
}

/// RxQ0 → vector 0, RxQ1 → vector 1: a frame RSS steers to a queue raises that queue's
/// cause on its own vector, and servicing the vector re-arms it for the next frame.
#[test]
fn each_receive_queue_signals_on_its_own_vector() {
    use nicqual_model::net::{L4, ipv4_frame};
    let mut d = up_two_pairs();
    let table = d.rss_table();
    // The first flows steered to each queue, by the driver's own prediction.
    let flow = |want: u8| {
        (0..1000u16)
            .map(|i| ([10, 9, (i >> 8) as u8, i as u8], [10, 1, 2, 3], 4000 + i))
            .find(|&(s, t, p)| {
                rss::queue_of(&table, rss::toeplitz(&rss::KEY, &rss::input_v4(s, t, Some((p, 80))))) == want
            })
            .map(|(s, t, p)| ipv4_frame(s, t, 1, 0, L4::Tcp { sport: p, dport: 80 }, 16))
            .unwrap()
    };
    d.drain_notifiers().unwrap();
    for want in [1u16, 0, 1] {
        assert_eq!(send(&mut d, &[flow(want as u8)]), 1);
        d.backend_mut().wait(1_000_000);
        let fired = d.drain_notifiers().unwrap();
        let (mut pkts, mut meta) = (Vec::new(), Vec::new());
        while d.rx_batch_meta(want, &mut pkts, &mut meta, 8).unwrap() > 0 {}
        assert_eq!(meta.len(), 1, "queue {want}");
        assert!(fired.contains(&want), "queue {want}: vectors fired {fired:?}");
        for p in pkts {
            d.datapath_mut().unwrap().pool_mut().free(p);
        }
    }
}
