use super::*;
use nicqual_dma::swiotlb::{OVERFLOW_BYTES, nr_slots};

/// The field traffic over a short window.
fn short(duration_ms: u64, pauses_per_s: f64, pause_mean_frames: f64) -> Traffic {
    Traffic { duration_ns: duration_ms * 1_000_000, pauses_per_s, pause_mean_frames, ..Traffic::FIELD }
}

/// Long pauses early: every seed's links pause within the window, long enough to exhaust
/// 64 MiB.
fn bursty(duration_ms: u64) -> Traffic {
    short(duration_ms, 30.0, 30.0)
}

fn run(seed: u64, spec: RunSpec, t: &Traffic) -> RunResult {
    simulate(seed, spec, t).unwrap_or_else(|e| panic!("seed {seed}: {e}"))
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
    assert!(draws.iter().all(|&d| (60..=65_535).contains(&d)));
    let mean = draws.iter().sum::<usize>() as f64 / draws.len() as f64;
    assert!((mean / mix.mean() - 1.0).abs() < 0.02, "sample mean {mean} vs {}", mix.mean());
    let inside = draws.iter().filter(|&&d| (14_654..=33_302).contains(&d)).count() as f64 / draws.len() as f64;
    assert!(inside > 0.85, "{inside}");
}

/// Without pauses: the slots are the drivers' posted rx buffers (by the driver's size rule)
/// and the tx packets in flight, every sample adds up to the pool's count, and the
/// occupancy settles (no trend).
#[test]
fn without_pauses_the_slots_are_rx_posted_plus_tx_in_flight_at_a_steady_state() {
    let seed = 5;
    let r = run(seed, RUNS[0], &short(120, 0.0, 1.0));
    assert!(r.pauses.is_empty() && r.paused_ns == 0);
    assert!(r.first_failure.is_none(), "seed {seed}: the steady state alone fits: {:?}", r.first_failure);
    // At open: every queue posted MAX_RX_AVAIL / queues buffers of rx_buf_size(9000) = 9472
    // bytes; the bounced ones take 5 slots each; nothing else holds slots.
    let o = r.at_open;
    assert_eq!(hw::rx_buf_size(MTU), 9472);
    assert_eq!(o.rx_bd.mappings, 2 * QUEUES * (usize::from(hw::MAX_RX_AVAIL) / QUEUES));
    assert_eq!(o.rx_bd.slots, o.rx_bd.bounced * nr_slots(9472), "seed {seed}");
    assert_eq!((o.sge.mappings, o.tpa_held.mappings, o.tx.mappings), (0, 0, 0));
    // The bounced share agrees with the memory model's scatter fraction for those buffers.
    let expect = scattered_fraction(seed) * o.rx_bd.mappings as f64;
    assert!((o.rx_bd.bounced as f64 / expect - 1.0).abs() < 0.1, "seed {seed}: {} vs {expect:.0}", o.rx_bd.bounced);
    assert_eq!(r.unaccounted_samples, 0, "seed {seed}");
    assert!(r.samples.len() >= 100);
    for s in &r.samples {
        assert_eq!(s.holders.slots(), s.used, "seed {seed} at {} ns", s.t_ns);
        assert_eq!(s.holders.rx_bd.mappings, o.rx_bd.mappings, "the rings stay full");
        assert_eq!(s.holders.tx.mappings, s.holders.tx_packets, "one mapping per linear skb");
        assert_eq!(s.holders.sge.slots, 0, "TPA is off: no SGE page is mapped");
    }
    assert!(r.samples.iter().any(|s| s.holders.tx.slots > 0), "some tx skbs bounce");
    let st = r.steady;
    assert!(st.samples > 90, "{st:?}");
    assert!(st.drift.abs() < 0.02 * r.nslabs as f64, "seed {seed}: {st:?}");
    assert!(st.mean_rx_slots > 10.0 * st.mean_tx_slots, "rx posted dominate the steady state: {st:?}");
    // The model's links carried the offered load as LSO segments.
    assert!(r.tx_sent > 5_000 && r.rx_frames > 2_000, "{} tx, {} rx", r.tx_sent, r.rx_frames);
    assert!(r.wire_frames > 2 * r.tx_sent, "{} frames for {} skbs", r.wire_frames, r.tx_sent);
    assert!(r.teardown.iter().all(|c| c.result == CheckResult::Pass), "no mapping leaked");
}

/// In a long pause the tx packets in flight (mapped at xmit, not completed by the model
/// while paused) fill the pool: the first failure falls inside a pause, the holders at
/// that moment are the rx rings as at open plus tx in flight, and the old kernel's rule
/// comes from the SWIOTLB model: overflow buffer up to 32 KiB, panic above.
#[test]
fn a_long_pause_exhausts_the_pool_with_tx_in_flight() {
    let mut times = Vec::new();
    for seed in [1, 3] {
        let r = run(seed, RUNS[0], &bursty(150));
        let f = r.first_failure.as_ref().unwrap_or_else(|| panic!("seed {seed}: no exhaustion"));
        let (start, len) = f.pause.unwrap_or_else(|| panic!("seed {seed}: failure outside a pause: {f:?}"));
        assert!(f.t_ns >= start && f.t_ns < start + len);
        assert_eq!(f.what, "tx linear skb");
        assert!(f.line.starts_with("PCI-DMA: Out of SW-IOMMU space for "), "{}", f.line);
        // Who held the slots: the pool's count at the failure is exactly the drivers' rx
        // buffers and tx packets in flight; the rx share is what the rings held at open
        // (within the buffers replaced since), tx the rest.
        let h = f.holders;
        assert_eq!(h.slots(), f.used, "seed {seed}: {h:?}");
        assert_eq!((h.sge.slots, h.tpa_held.slots), (0, 0));
        assert!((h.rx_bd.slots as f64 / r.at_open.rx_bd.slots as f64 - 1.0).abs() < 0.05, "seed {seed}: {h:?}");
        assert!(h.tx.slots > h.rx_bd.slots / 2, "seed {seed}: {h:?}");
        assert!(h.tx_packets > 1_000, "seed {seed}: {h:?}");
        assert!(f.nslots > f.largest_free_run);
        // The rule, failure by failure.
        assert!(!r.tx_failed.is_empty());
        for &(size, panic) in &r.tx_failed {
            assert_eq!(panic, size > OVERFLOW_BYTES, "seed {seed}: {size} bytes");
        }
        assert_eq!(r.tx_overflow_frames, r.tx_failed.iter().filter(|x| !x.1).count() as u64);
        if let Some(p) = &r.first_panic {
            assert!(p.size > OVERFLOW_BYTES);
            assert_eq!(r.tx_failed.iter().position(|x| x.1), r.tx_failed.iter().position(|x| x.0 > OVERFLOW_BYTES));
        }
        assert_eq!(r.failures, r.tx_map_errors + r.rx_map_errors, "seed {seed}");
        assert!(r.teardown.iter().all(|c| c.result == CheckResult::Pass), "seed {seed}: balanced after failures");
        times.push(f.t_ns);
    }
    assert_ne!(times[0], times[1], "the exhaustion time moves with the seed");
}

#[test]
fn a_pool_of_128_mib_exhausts_later_or_not_at_all() {
    let seed = 1;
    let t = bursty(150);
    let small = run(seed, RUNS[0], &t);
    let f = small.first_failure.as_ref().unwrap_or_else(|| panic!("seed {seed}: no exhaustion"));
    let big = run(seed, RUNS[2], &Traffic { duration_ns: small.duration_ns, ..t });
    assert!(big.first_failure.as_ref().is_none_or(|g| g.t_ns > f.t_ns), "seed {seed}");
    assert!(big.steady.mean_used * 4.0 < big.nslabs as f64, "{:?}", big.steady);
    assert_eq!(big.at_open, small.at_open, "the same memory bounces the same buffers");
}

#[test]
fn gro_on_at_mtu_9000_changes_nothing_the_driver_maps_and_the_numbers_move_with_the_seed() {
    assert!(!tpa_for(true) && !tpa_for(false), "bnx2x_mtu_allows_gro(9000) is false");
    assert_eq!(driver_config(true), driver_config(false), "the same ring configuration");
    let t = short(60, 20.0, 4.0);
    let off = run(4, RUNS[0], &t);
    let on = run(4, RUNS[1], &t);
    assert!(!on.tpa);
    let used = |r: &RunResult| r.samples.iter().map(|s| s.used).collect::<Vec<_>>();
    assert_eq!(used(&off), used(&on));
    assert_eq!(off.at_open, on.at_open);
    assert_eq!(off.pauses, on.pauses);
    // Another seed: another p2m (other buffers bounce), other traffic, other pauses.
    let other = run(5, RUNS[0], &t);
    assert_ne!(used(&off), used(&other), "seeds 4 and 5");
    assert_ne!(off.at_open.rx_bd.bounced, other.at_open.rx_bd.bounced);
    assert_ne!(off.pauses, other.pauses);
}

/// With TPA forced on (which `bnx2x_mtu_allows_gro(9000)` forbids in Linux), the ring
/// driver's SGE pages are single pages that never bounce: mappings, no slots; the rx BD
/// buffers hold the same slots as without TPA, and the census adds up to the pool.
#[test]
fn forced_tpa_sge_pages_add_mappings_but_no_slots() {
    let seed = 7;
    let open = |tpa: bool| {
        let p = platform(seed, 64).unwrap();
        let cfg = Bnx2xConfig { tpa, ..driver_config(false) };
        let ports = open_ports(&p, &cfg, PausePlan::NONE).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let c = census(&ports);
        let used = p.borrow().pool_stats().map_or(0, |s| s.used);
        for port in ports {
            let (r, _) = port.close();
            assert_eq!(r.result, CheckResult::Pass, "{}", r.detail);
        }
        (c, used)
    };
    let (plain, used_plain) = open(false);
    let (tpa, used_tpa) = open(true);
    assert_eq!((plain.sge.mappings, used_plain), (0, plain.slots()));
    assert!(tpa.sge.mappings > 0, "TPA posts SGE pages: {tpa:?}");
    assert_eq!((tpa.sge.bounced, tpa.sge.slots), (0, 0), "seed {seed}");
    // The same rx buffers; which of them bounce shifts a little because the SGE pages are
    // allocated between the queues' buffers (other addresses on the same p2m).
    assert_eq!(tpa.rx_bd.mappings, plain.rx_bd.mappings);
    let (a, b) = (tpa.rx_bd.bounced as f64, plain.rx_bd.bounced as f64);
    assert!((a / b - 1.0).abs() < 0.02, "seed {seed}: {a} vs {b} bounced rx buffers");
    assert_eq!(used_tpa, tpa.slots());
}
