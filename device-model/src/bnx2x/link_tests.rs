use super::*;

fn link(rate_bps: u64, pauses: PausePlan) -> Link {
    Link::new(LinkConfig { rate_bps, pauses }).unwrap()
}

#[test]
fn a_packets_completion_is_its_wire_time_at_the_rate() {
    let mut l = link(10_000_000_000, PausePlan::NONE);
    // A 9014-byte frame: 9038 bytes on the wire = 7230.4 ns at 10 Gb/s (rounded up).
    let (segs, bytes) = Lso::wire(None, 9014);
    assert_eq!((segs, bytes), (1, 9038));
    let t1 = l.send(1_000, 0, segs, bytes);
    assert_eq!(t1, 1_000 + 7_231);
    // Back to back: the next one starts when the first has left.
    let t2 = l.send(1_000, 1, 1, Lso::wire(None, 60).1);
    assert_eq!(t2, t1 + 68, "84 bytes at 10 Gb/s = 67.2 ns");
    assert_eq!(l.pop_done(t1 - 1), None);
    assert_eq!(l.pop_done(t1), Some(0));
    assert_eq!(l.pop_done(t2 - 1), None);
    assert_eq!(l.pop_done(t2), Some(1));
    // A short frame is padded to 60 bytes; an idle link starts at once.
    assert_eq!(Lso::wire(None, 20).1, 84);
    assert_eq!(l.send(50_000, 0, 1, 84), 50_068);
    // The rate scales it: 1 Gb/s is ten times longer.
    let mut slow = link(1_000_000_000, PausePlan::NONE);
    assert_eq!(slow.send(0, 0, 1, 9038), 72_304);
}

#[test]
fn an_lso_packet_is_its_segments_each_with_the_headers() {
    let l = Lso { l4: 34, hdr: 66, mss: 8948 };
    // 25 158 bytes: 25 092 of payload = 2 full segments of 8948 + 7196.
    let (segs, bytes) = Lso::wire(Some(l), 25_158);
    assert_eq!(segs, 3);
    assert_eq!(bytes, 2 * (66 + 8948 + 24) + (66 + 7196 + 24));
    // Parsed from what the driver writes: flags and parsing_data.
    let parsing = (34 / 2) << hw::PARSE_L4_HDR_START_SHIFT
        | (32 / 4) << hw::PARSE_TCP_HDR_LEN_SHIFT
        | 8948 << hw::PARSE_LSO_MSS_SHIFT;
    let got = Lso::parse(hw::TX_BD_FLAGS_START_BD | hw::TX_BD_FLAGS_SW_LSO, parsing, 25_158, 9000);
    assert_eq!(got, Ok(Some(l)));
    assert_eq!(Lso::parse(hw::TX_BD_FLAGS_START_BD, parsing, 25_158, 9000), Ok(None));
    // Hostile values: MSS 0 or above the MTU, headers outside the packet.
    let lso = hw::TX_BD_FLAGS_SW_LSO;
    assert_eq!(Lso::parse(lso, parsing & 0xFFFF, 25_158, 9000), Err(QueueErrorCode::TxBd));
    assert_eq!(Lso::parse(lso, parsing, 25_158, 1500), Err(QueueErrorCode::TxBd));
    assert_eq!(Lso::parse(lso, parsing, 66, 9000), Err(QueueErrorCode::TxBd));
    assert_eq!(Lso::parse(lso, u32::MAX, 65_535, 9000), Err(QueueErrorCode::TxBd));
}

#[test]
fn nothing_completes_during_a_pause() {
    let plan = PausePlan { seed: 7, per_s: 60.0, mean_frames: 1.5 };
    let mut l = link(10_000_000_000, plan);
    assert_eq!(l.pause_frame_ns(), 3_355_392, "0xFFFF x 512 bit times at 10 Gb/s");
    // Offer a 9000-byte frame every 10 us for 200 ms; every completion is outside the
    // pauses (a frame already on the wire when a pause starts finishes: at most one
    // frame's time into it).
    let frame_ns = l.wire_ns(Lso::wire(None, 9014).1);
    let mut done = Vec::new();
    for k in 0..20_000u64 {
        done.push(l.send(k * 10_000, 0, 1, 9038));
    }
    let pauses = l.pauses().to_vec();
    assert!(
        pauses.len() > 4,
        "{} pauses: {pauses:?}, episodes {}, last done {:?}",
        pauses.len(),
        l.stats.pause_episodes,
        done.last()
    );
    assert!(pauses.windows(2).all(|w| w[0].1 < w[1].0), "sorted and disjoint");
    for &t in &done {
        let inside = pauses.iter().find(|&&(s, e)| t > s + frame_ns && t < e);
        assert!(inside.is_none(), "completion at {t} inside pause {inside:?}");
    }
    // Each pause left a gap: no completion between its start + one frame and its end.
    for &(s, e) in &pauses {
        assert!(!done.iter().any(|&t| t > s + frame_ns && t < e));
    }
    assert!(l.stats.paused_ns > 0);
    // Seeded: the same plan gives the same schedule, another seed another.
    let mut again = link(10_000_000_000, plan);
    let _ = again.pause_at(200_000_000);
    let settled = again.pauses().len() - 1;
    assert_eq!(again.pauses()[..settled], pauses[..settled]);
    let mut other = link(10_000_000_000, PausePlan { seed: 8, ..plan });
    let _ = other.pause_at(200_000_000);
    assert_ne!(other.pauses(), again.pauses());
}

#[test]
fn without_pauses_the_transmitter_runs_at_the_rate() {
    let mut l = link(10_000_000_000, PausePlan::NONE);
    // Offered 2x the rate: completions are one wire time apart, not the offer's spacing.
    let mut last = 0;
    for k in 0..1000u64 {
        let t = l.send(k * 3_600, 0, 1, 9038);
        if k > 0 {
            assert_eq!(t - last, 7_231, "packet {k}");
        }
        last = t;
    }
    assert_eq!(l.in_flight(), 1000);
    assert!(l.pause_at(last).is_none() && l.pauses().is_empty());
}

#[test]
fn bad_link_configurations_are_refused() {
    let p = PausePlan::NONE;
    assert_eq!(Link::new(LinkConfig { rate_bps: 0, pauses: p }).err(), Some(LinkError::Rate(0)));
    let bad = PausePlan { per_s: f64::NAN, ..p };
    assert!(Link::new(LinkConfig { rate_bps: 1, pauses: bad }).is_err());
    let bad = PausePlan { per_s: 1.0, mean_frames: 0.5, ..p };
    assert!(Link::new(LinkConfig { rate_bps: 1, pauses: bad }).is_err());
}

/// Any clock, however far it jumps, and the slowest link: bounded work, no overflow.
#[test]
fn extreme_clocks_and_rates_stay_bounded() {
    let plan = PausePlan { seed: 3, per_s: MAX_PAUSES_PER_S, mean_frames: f64::from(MAX_PAUSE_FRAMES) };
    let mut slow = link(1, plan);
    let t = slow.send(u64::MAX - 10, 0, 1, 65_535);
    assert_eq!(t, u64::MAX);
    assert!(slow.pauses().len() <= MAX_KEPT_PAUSES);
    let mut fast = link(400_000_000_000, plan);
    for k in 0..5u64 {
        let _ = fast.send(k * (u64::MAX / 5), 1, 1, 84);
    }
    assert!(fast.pauses().len() <= MAX_KEPT_PAUSES);
    assert!(fast.pop_done(u64::MAX).is_some());
}
