use super::*;

/// The field traffic over a short window.
fn short(duration_ms: u64, pauses_per_s: f64, pause_mean_quanta: f64) -> Traffic {
    Traffic { duration_ns: duration_ms * 1_000_000, pauses_per_s, pause_mean_quanta, ..Traffic::FIELD }
}

#[test]
fn the_size_mix_is_the_log_normal_of_the_field_log() {
    let mix = SizeMix::field();
    let logs: Vec<f64> = FIELD_TX_SIZES.iter().map(|&s| (s as f64).ln()).collect();
    let mu = logs.iter().sum::<f64>() / 18.0;
    assert!((mix.mu - mu).abs() < 1e-12);
    // Geometric mean inside the field's range; spread about a quarter in log terms.
    assert!((14_654.0..33_302.0).contains(&mix.mu.exp()), "{mix:?}");
    assert!((0.2..0.3).contains(&mix.sigma), "{mix:?}");
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let draws: Vec<usize> = (0..20_000).map(|_| mix.sample(&mut rng)).collect();
    assert!(draws.iter().all(|&d| (60..=65_536).contains(&d)));
    let mean = draws.iter().sum::<usize>() as f64 / draws.len() as f64;
    assert!((mean / mix.mean() - 1.0).abs() < 0.02, "sample mean {mean} vs {}", mix.mean());
    let inside = draws.iter().filter(|&&d| (14_654..=33_302).contains(&d)).count() as f64 / draws.len() as f64;
    assert!(inside > 0.85, "{inside}");
}

#[test]
fn pauses_are_whole_quanta_sorted_and_merged() {
    assert_eq!(PAUSE_QUANTUM_NS, 3_355_392);
    let t = short(2_000, 5.0, 6.0);
    let p = pause_schedule(3, &t);
    assert!(!p.is_empty());
    assert!(p.windows(2).all(|w| w[0].1 < w[1].0), "sorted, disjoint: {p:?}");
    assert_eq!(p, pause_schedule(3, &t), "seeded");
    let (s, e) = p[0];
    assert_eq!(pause_at(&p, s), Some((s, e)));
    assert_eq!(pause_at(&p, e), None, "a pause ends at its end");
    assert!(pause_schedule(3, &short(2_000, 0.0, 6.0)).is_empty());
    // A 9014-byte frame takes 7.23 us at 10 Gb/s (with FCS, preamble and gap).
    assert_eq!(wire_ns(9014), 7_230);
    // A 2-segment TSO skb repeats its headers once.
    assert_eq!(wire_ns(MSS + SEG_HEADERS + 1), ((MSS + 2 * SEG_HEADERS + 1 + 2 * WIRE_OVERHEAD) * 8 / 10) as u64);
}

#[test]
fn the_slots_are_the_drivers_rx_posted_and_tx_in_flight_mappings() {
    let seed = 5;
    let r = simulate(seed, RUNS[0], &short(60, 0.0, 1.0)).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    // At open: every posted rx buffer is mapped with the driver's rx_buf_size; the bounced
    // ones take 5 slots each; nothing else holds slots.
    let o = r.at_open;
    assert_eq!(o.rx_posted, 2 * hw::MAX_RX_AVAIL as usize);
    assert_eq!(hw::rx_buf_size(MTU), 9472);
    assert_eq!(o.rx_slots, o.rx_bounced * nr_slots(9472), "seed {seed}");
    assert_eq!((o.sge_slots, o.tx_slots, o.tx_in_flight, o.other_slots), (0, 0, 0, 0));
    // The bounced share agrees with the preflight's scatter fraction for those buffers.
    let expect = scattered_fraction(seed) * o.rx_posted as f64;
    assert!((o.rx_bounced as f64 / expect - 1.0).abs() < 0.1, "seed {seed}: {} vs {expect:.0}", o.rx_bounced);
    // Under traffic every sample adds up, rx stays the posted ring, tx is what is in flight.
    assert_eq!(r.unaccounted_samples, 0, "seed {seed}");
    assert!(r.samples.len() >= 50);
    for s in &r.samples {
        assert_eq!(s.holders.slots(), s.used, "seed {seed} at {} ns", s.t_ns);
        assert_eq!(s.holders.rx_posted, o.rx_posted, "the ring stays full");
        assert!(s.holders.tx_bounced <= s.holders.tx_in_flight);
        assert_eq!(s.holders.sge_slots, 0, "TPA is off: no SGE page is mapped");
    }
    assert!(r.samples.iter().any(|s| s.holders.tx_slots > 0), "some tx skbs bounce");
    assert!(r.tx_sent > 1000 && r.rx_frames > 500, "{} tx, {} rx", r.tx_sent, r.rx_frames);
    assert!(r.teardown.iter().all(|c| c.result == CheckResult::Pass), "no mapping leaked");
}

#[test]
fn without_bursts_the_pool_holds_a_steady_state_a_long_pause_exhausts_it() {
    let seed = 1;
    let calm = simulate(seed, RUNS[0], &short(100, 0.0, 1.0)).unwrap();
    assert!(calm.first_failure.is_none(), "seed {seed}: steady state alone: {:?}", calm.first_failure);
    let st = calm.steady;
    assert!(st.samples > 80, "{st:?}");
    assert!(st.drift.abs() < 0.02 * calm.nslabs as f64, "seed {seed}: {st:?}");
    assert!(st.mean_rx_slots > 10.0 * st.mean_tx_slots, "rx posted dominate the steady state: {st:?}");

    // The same traffic with link pauses averaging 20 ms: the tx in flight grow while
    // paused, the rx share does not move, and the first failure falls inside a pause.
    let bursty = simulate(seed, RUNS[0], &short(400, 8.0, 6.0)).unwrap();
    let f = bursty.first_failure.as_ref().unwrap_or_else(|| panic!("seed {seed}: no exhaustion"));
    let (start, len) = f.pause.unwrap_or_else(|| panic!("seed {seed}: failure outside a pause: {f:?}"));
    assert!(f.t_ns >= start && f.t_ns < start + len);
    assert_eq!(f.what, "tx linear skb");
    assert!(f.line.starts_with("PCI-DMA: Out of SW-IOMMU space for "), "{}", f.line);
    assert!(bursty.peak.tx_slots > bursty.peak.rx_slots / 2, "{:?}", bursty.peak);
    assert!((bursty.peak.rx_slots as f64 / bursty.at_open.rx_slots as f64 - 1.0).abs() < 0.05, "{:?}", bursty.peak);
    // The old kernel's rule: small ones got the overflow buffer, big ones panicked.
    assert!(bursty.tx_overflow_frames > 0);
    assert!(bursty.first_panic.as_ref().is_none_or(|p| p.size > 32 * 1024));
    assert_eq!(bursty.failures, bursty.tx_map_errors + bursty.rx_map_errors);

    // 128 MiB over the same traffic and pauses (up to where the 64 MiB run stopped):
    // exhausts later or not at all.
    let big = simulate(seed, RUNS[2], &Traffic { duration_ns: bursty.duration_ns, ..short(400, 8.0, 6.0) }).unwrap();
    assert!(big.first_failure.as_ref().is_none_or(|g| g.t_ns > f.t_ns), "seed {seed}");
    assert!(big.steady.mean_used * 2.0 < big.nslabs as f64);
}

#[test]
fn gro_on_at_mtu_9000_changes_nothing_the_driver_maps() {
    assert!(!tpa_for(true) && !tpa_for(false), "bnx2x_mtu_allows_gro(9000) is false");
    let t = short(80, 8.0, 6.0);
    let off = simulate(4, RUNS[0], &t).unwrap();
    let on = simulate(4, RUNS[1], &t).unwrap();
    assert!(!on.tpa);
    let used = |r: &RunResult| r.samples.iter().map(|s| s.used).collect::<Vec<_>>();
    assert_eq!(used(&off), used(&on));
    assert_eq!(off.at_open, on.at_open);
    assert_eq!(off.first_failure.map(|f| f.t_ns), on.first_failure.map(|f| f.t_ns));
    // The preflight is asked about the same ring configuration.
    assert_eq!(field_config(true, 0.3), field_config(false, 0.3));
}

#[test]
fn the_numbers_move_with_the_seed_and_repeat_with_it() {
    let t = short(60, 0.0, 1.0);
    let a = simulate(1, RUNS[0], &t).unwrap();
    let again = simulate(1, RUNS[0], &t).unwrap();
    let b = simulate(2, RUNS[0], &t).unwrap();
    let used = |r: &RunResult| r.samples.iter().map(|s| s.used).collect::<Vec<_>>();
    assert_eq!(used(&a), used(&again), "seed 1 twice");
    assert_ne!(used(&a), used(&b), "seeds 1 and 2");
    assert_ne!(a.at_open.rx_bounced, b.at_open.rx_bounced, "a different p2m bounces different buffers");
    assert_ne!(pause_schedule(1, &Traffic::FIELD), pause_schedule(2, &Traffic::FIELD));
}

/// The ring driver (`Bnx2x`, streaming mappings like Linux) on the same platform and seed:
/// its posted rx buffers hold the same bounce slots as the port driver this scenario runs;
/// with TPA forced on (which `bnx2x_mtu_allows_gro(9000)` forbids in Linux), its SGE pages
/// are single pages that never bounce, so they add mappings but no slots.
#[test]
fn the_ring_drivers_rx_rings_hold_the_same_slots() {
    use nicqual_model::bnx2x::Config;
    use nicqual_nics::bnx2x::{Bnx2x, Bnx2xConfig};
    let seed = 7;
    let pool_used = |p: &SharedPlatform| p.borrow().pool_stats().map_or(0, |s| s.used);
    let ring_driver = |tpa: bool| {
        let p = platform(seed, 64).unwrap();
        let b = EmulatedBackend::new(Bnx2xDevice::with_config(Config::default()), "model:bnx2x");
        let dma = DmaApi::new(DeviceName::new("bnx2x", PORTS[0]), p.clone(), u64::MAX);
        let cfg = Bnx2xConfig { tpa, interrupts: false, ..Bnx2xConfig::linux(MTU, 1) };
        let d = Bnx2x::attach(b, dma, cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let census = d.census();
        let bounced_rx =
            d.dma().leaks().iter().filter(|m| m.bounced && m.dir == DmaDirection::FromDevice && m.len == 9472).count();
        let used = pool_used(&p);
        let (report, _) = d.close();
        assert_eq!(report.result, CheckResult::Pass, "{}", report.detail);
        (census, bounced_rx, used)
    };
    let p = platform(seed, 64).unwrap();
    let b = EmulatedBackend::new(Bnx2xDevice::new(), "model:bnx2x");
    let dma = DmaApi::new(DeviceName::new("bnx2x", PORTS[0]), p.clone(), u64::MAX);
    let port = Bnx2xPort::open(b, dma, PortConfig::linux_default(MTU, TX_QUEUES)).unwrap();
    let mine = holders(std::slice::from_ref(&port));
    let mine_used = pool_used(&p);
    let _ = port.close();

    let (census, bounced, used) = ring_driver(false);
    assert_eq!(census.rx_bd_buffers, mine.rx_posted, "seed {seed}: posted rx buffers");
    assert_eq!(bounced, mine.rx_bounced, "seed {seed}: the same buffers bounce");
    assert_eq!(used, mine_used, "seed {seed}");
    assert_eq!(census.sge_pages, 0);

    let (census, bounced_tpa, used_tpa) = ring_driver(true);
    assert!(census.sge_pages > 0, "TPA posts SGE pages: {census:?}");
    assert_eq!((bounced_tpa, used_tpa), (bounced, used), "seed {seed}: SGE pages take no slots");
}
