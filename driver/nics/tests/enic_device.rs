//! The enic driver against the enic PCI device model: resource discovery and its
//! validation, devcmd bring-up, interrupts and credits per CQ, hostile completions, a lost
//! vector, and a balanced teardown. Each side keeps its own arithmetic; these tests run one
//! against the other. Deterministic: fault plans are seeded and the seed is in every
//! failure message.

use nicqual_backends::emulated::EmulatedBackend;
use nicqual_hw::enic as hw;
use nicqual_model::FaultPlan;
use nicqual_model::enic::{EnicConfig, EnicDevice, EnicFaultPlan, HostileField, INTR_COUNT, QUEUES};
use nicqual_nics::enic::{Enic, EnicError, IrqMode, Platform, Policy};
use nicqual_pci::Backend;

type Dev = EmulatedBackend<EnicDevice>;

fn backend(d: EnicDevice) -> Dev {
    EmulatedBackend::new(d, "model:enic")
}

fn up(adapter_mtu: u32) -> Enic<Dev> {
    Enic::new(backend(EnicDevice::new(adapter_mtu, EnicFaultPlan::none())), Policy::Nicqual, Platform::Direct, 1500, 64)
        .unwrap()
        .0
}

fn frame(len: usize, seq: u32) -> Vec<u8> {
    let s = seq.to_le_bytes();
    (0..len).map(|i| (i as u8).wrapping_mul(29) ^ s[i % 4]).collect()
}

#[test]
fn bring_up_discovers_the_table_runs_the_devcmds_and_enables_the_vnic() {
    let cfg = EnicConfig { vnic_mtu: 9000, mac: [2, 0, 0, 0xAB, 0xCD, 0xEF], vf: true };
    let dev = EnicDevice::with_config(cfg, EnicFaultPlan::none());
    let (e, note) = Enic::new(backend(dev), Policy::Nicqual, Platform::Direct, 9000, 64).unwrap();
    assert_eq!(note, None);
    let r = e.resources();
    assert_eq!((r.wq_count, r.rq_count, r.cq_count, r.intr_count), (4, 4, 8, INTR_COUNT as u32));
    assert_eq!(e.pairs(), QUEUES as u32, "every pair the table lists");
    assert_eq!(e.pair_cqs(0), Some((0, QUEUES as u32)), "WQ 0 completes on the CQ after the RQs'");
    assert_eq!((e.mac(), e.adapter_mtu()), (cfg.mac, 9000));
    assert_eq!(e.irq_mode(), &IrqMode::Msix { vectors: 2 * QUEUES as u16 + 2 }, "RQs, WQs, error, notify");
    let d = e.backend().device();
    assert!(d.is_enabled());
    assert!(d.stats.devcmds >= 7 && d.stats.devcmd_errors == 0, "{:?}", d.stats);
}

#[test]
fn a_table_entry_outside_its_bar_or_naming_a_missing_bar_is_refused_before_use() {
    type Entry = (u8, u8, u32, u32);
    let cases: [(Entry, &str); 5] = [
        ((hw::RES_TYPE_WQ, 0, 0x7FF0, 4), "outside"),
        ((hw::RES_TYPE_CQ, 0, 0x3000, 0x0100_0000), "outside"),
        ((hw::RES_TYPE_INTR_CTRL, 0, u32::MAX, 1), "outside"),
        ((hw::RES_TYPE_RQ, 4, 0x2000, 4), "BAR4"),
        ((hw::RES_TYPE_DEVCMD, 0, 0x800, 8), "DEVCMD"),
    ];
    for (entry, want) in cases {
        let mut d = EnicDevice::new(1500, EnicFaultPlan::none());
        // Replace the entry of the same type (DEVCMD is entry 0, WQ 1, RQ 2, CQ 3, INTR 4).
        let slot = match entry.0 {
            hw::RES_TYPE_DEVCMD => 0,
            hw::RES_TYPE_WQ => 1,
            hw::RES_TYPE_RQ => 2,
            hw::RES_TYPE_CQ => 3,
            _ => 4,
        };
        d.set_resource(slot, entry.0, entry.1, entry.2, entry.3).unwrap();
        let err = Enic::new(backend(d), Policy::Nicqual, Platform::Direct, 1500, 64).expect_err("refused");
        let msg = err.to_string();
        assert!(msg.contains(want), "{entry:?}: {msg}");
        assert!(matches!(
            err,
            EnicError::ResourceOutOfRange { .. } | EnicError::ResourceBadBar { .. } | EnicError::MissingResource { .. }
        ));
    }
    // Entries of types the driver does not use are skipped, wherever they point.
    let mut d = EnicDevice::new(1500, EnicFaultPlan::none());
    for i in 7..16 {
        d.set_resource(i, 99, 7, u32::MAX, u32::MAX).unwrap();
    }
    let e = Enic::new(backend(d), Policy::Nicqual, Platform::Direct, 1500, 64).unwrap().0;
    assert_eq!(e.resources().entries, 16);
}

#[test]
fn each_cq_interrupts_on_its_vector_and_credits_return_to_zero() {
    let mut e = up(1500);
    let mut out = Vec::new();
    for k in 0..200u32 {
        e.send(&frame(200, k)).unwrap();
        assert!(e.wait_irq(false, 10_000) >= 1, "frame {k}: no RX interrupt");
        assert_eq!(e.intr_credits(false), Some(1), "frame {k}: one completion, one credit");
        assert_eq!(e.poll_rx(&mut out), 1);
        assert_eq!(e.intr_credits(false), Some(0), "frame {k}: credits returned");
        // TX completions were collected (and their credits returned) inside send.
        assert_eq!(e.intr_credits(true), Some(0));
    }
    assert_eq!(out.len(), 200);
    assert!(e.stats.tx_irqs == 0 && e.stats.rx_irqs >= 200);
    assert_eq!(e.stats.credits_returned, 400);
}

#[test]
fn a_lost_vector_is_seen_as_no_interrupt_while_polling_still_works() {
    let mut e = up(1500);
    e.backend_mut().device_mut().arm_faults("lose-vector:0".parse().unwrap());
    let mut out = Vec::new();
    e.send(&frame(100, 1)).unwrap();
    assert_eq!(e.wait_irq(false, 100_000), 0);
    assert_eq!(e.intr_credits(false), Some(1), "the adapter counted the event");
    assert_eq!(e.poll_rx(&mut out), 1);
    assert!(e.backend().device().stats.msix_lost >= 1);
}

#[test]
fn a_hostile_completion_is_refused_for_the_field_it_corrupts_and_nothing_wrong_is_delivered() {
    let mut fields = std::collections::BTreeSet::new();
    for seed in 0..48u64 {
        let mut e = up(1500);
        let mut plan: FaultPlan = format!("hostile-completion:{}", seed % 6).parse().unwrap();
        plan.seed = seed;
        e.backend_mut().device_mut().arm_faults(plan);
        let (mut out, mut sent) = (Vec::new(), Vec::new());
        for k in 0..12u32 {
            let f = frame(300, k);
            e.send(&f).unwrap();
            sent.push(f);
            e.poll_rx(&mut out);
        }
        let h = e.backend().device().hostile_completions().to_vec();
        assert_eq!(h.len(), 1, "seed {seed}");
        fields.insert(h[0].field.name());
        let refused = e.stats.dropped_total() + e.stats.tx_bad_completions + e.stats.stale_colour;
        let want = match h[0].field {
            HostileField::Type => "type",
            HostileField::Queue => "q_number",
            HostileField::Index => "never posted",
            HostileField::SopEop => "without",
            HostileField::Truncated => "truncated",
            HostileField::BytesWritten => "exceeds the posted buffer",
            HostileField::Colour => "previous lap's colour",
        };
        let logged: Vec<String> =
            e.drop_log.iter().map(|x| x.to_string()).chain(e.tx_drop_log.iter().map(|x| x.to_string())).collect();
        assert!(refused >= 1, "seed {seed}: {:?} not refused", h[0]);
        assert!(logged.iter().any(|l| l.contains(want)), "seed {seed}: {:?} logged as {logged:?}", h[0]);
        for f in &out {
            assert!(sent.contains(f), "seed {seed}: delivered a frame never sent");
        }
        assert!(out.len() >= 11, "seed {seed}: {} of 12 delivered", out.len());
        // The rings keep working afterwards.
        let f = frame(64, 99);
        e.send(&f).unwrap();
        out.clear();
        e.poll_rx(&mut out);
        assert_eq!(out, vec![f], "seed {seed}");
    }
    assert!(fields.len() >= 6, "48 seeds picked only {fields:?}");
}

#[test]
fn shutdown_disables_closes_and_leaves_no_mapping_or_vector() {
    let mut e = up(1500);
    let mut out = Vec::new();
    for k in 0..100 {
        e.send(&frame(1500, k)).unwrap();
        e.poll_rx(&mut out);
    }
    let mappings = e.backend().live_mappings();
    assert!(mappings > 60, "one window per RX buffer: {mappings}");
    let mut b = e.shutdown();
    assert_eq!((b.live_mappings(), b.msix_vectors()), (0, 0));
    assert!(!b.device().is_enabled());
    assert_eq!(b.device_mut().iommu().window_count(), 0);
    // Gone under the driver: no register write, still balanced.
    let mut e = up(1500);
    e.backend_mut().device_mut().surprise_remove();
    let b = e.shutdown();
    assert_eq!((b.live_mappings(), b.msix_vectors()), (0, 0));
}

/// Every pair the table lists comes up with its own CQs and vectors (Linux's layout: RQ q
/// on CQ and vector q, WQ q on n + q); a frame sent on WQ q comes back on RQ q alone, its
/// vectors fire and its credits return, and each pair counts its own traffic.
#[test]
fn every_pair_moves_its_own_traffic_on_its_own_cqs_vectors_and_credits() {
    let mut e = up(1500);
    let n = e.pairs();
    assert_eq!(n, QUEUES as u32);
    assert_eq!(e.census().rx_posted, n * 63, "every RQ posted a ring less one");
    let mut out = Vec::new();
    for q in 0..n {
        assert_eq!(e.pair_cqs(q), Some((q, n + q)));
        assert_eq!(e.pair_vectors(q), Some((q as u16, (n + q) as u16)));
        assert_eq!(e.rx_outstanding_on(q), Some(63));
        for k in 0..3 {
            let f = frame(100 + 10 * q as usize, 16 * q + k);
            e.send_on(q, &f).unwrap();
            assert!(e.wait_irq_on(q, false, 10_000) >= 1, "pair {q}: no RX interrupt");
            assert_eq!(e.intr_credits_on(q, false), Some(1), "pair {q}: one completion, one credit");
            for other in (0..n).filter(|o| *o != q) {
                assert_eq!(e.poll_rx_on(other, &mut out).unwrap(), 0, "pair {q}'s frame on RQ {other}");
                assert_eq!(e.intr_credits_on(other, false), Some(0));
            }
            assert_eq!(e.poll_rx_on(q, &mut out).unwrap(), 1, "pair {q}");
            assert_eq!(out.pop(), Some(f));
            assert_eq!((e.intr_credits_on(q, false), e.intr_credits_on(q, true)), (Some(0), Some(0)));
        }
    }
    for q in 0..n {
        let s = e.pair_stats(q).unwrap();
        assert_eq!((s.tx_frames, s.tx_completions, s.rx_delivered, s.rx_refused), (3, 3, 3, 0), "pair {q}");
        assert_eq!((s.rx_credits_returned, s.tx_credits_returned), (3, 3), "pair {q}");
        assert!(s.rx_irqs >= 3, "pair {q}: {s:?}");
    }
    assert_eq!(e.stats.rx_delivered, 3 * u64::from(n));
    assert!(matches!(e.send_on(n, &frame(60, 0)), Err(EnicError::NoSuchPair { q, pairs }) if q == n && pairs == n));
    assert!(e.poll_rx_on(n, &mut out).is_err());
    let (r, b) = e.close();
    assert_eq!(r.result, nicqual_pci::CheckResult::Pass, "{}", r.detail);
    assert_eq!((b.live_mappings(), b.msix_vectors()), (0, 0));
}

/// The pair count is an option bounded by the table: fewer pairs move the WQs' CQs and
/// vectors down (WQ q on n + q); more than the table carries, or none, is refused.
#[test]
fn the_pair_count_is_chosen_and_bounded_by_the_table() {
    use nicqual_nics::enic::EnicOptions;
    let opts = |pairs| EnicOptions::new(Policy::Nicqual, Platform::Direct, 1500, 64).pairs(pairs);
    let dev = || backend(EnicDevice::new(1500, EnicFaultPlan::none()));
    let (mut e, _) = Enic::with_options(dev(), opts(Some(2))).unwrap();
    assert_eq!((e.pairs(), e.pair_cqs(1)), (2, Some((1, 3))));
    assert_eq!(e.irq_mode(), &IrqMode::Msix { vectors: 6 });
    let f = frame(300, 7);
    e.send_on(1, &f).unwrap();
    let mut out = Vec::new();
    assert_eq!(e.poll_rx_on(1, &mut out).unwrap(), 1);
    assert_eq!(out, vec![f]);
    assert_eq!(e.backend_mut().read32(hw::BAR_REGS, 0x1000 + hw::VNIC_RES_STRIDE + hw::Q_CQ_INDEX), 3);
    for bad in [0, QUEUES as u32 + 1] {
        let err = Enic::with_options(dev(), opts(Some(bad))).expect_err("refused");
        assert!(matches!(err, EnicError::TooManyPairs { max: 4, .. }), "{bad}: {err}");
    }
    // Five interrupt control blocks serve one pair with MSI-X (RQ, WQ, error, notify):
    // by default the driver brings up one; asked for four it polls, saying why.
    let short = || {
        let mut d = EnicDevice::new(1500, EnicFaultPlan::none());
        d.set_resource(4, hw::RES_TYPE_INTR_CTRL, 0, nicqual_model::enic::INTR_BASE as u32, 5).unwrap();
        backend(d)
    };
    let (e, _) = Enic::with_options(short(), opts(None)).unwrap();
    assert_eq!((e.pairs(), e.irq_mode()), (1, &IrqMode::Msix { vectors: 4 }));
    let (e, _) = Enic::with_options(short(), opts(Some(4))).unwrap();
    assert!(matches!(e.irq_mode(), IrqMode::Polled { why } if why.contains("4 pair(s) need 10")), "{:?}", e.irq_mode());
}

/// A completion on RQ 0's CQ naming another RQ is refused by name and consumes nothing
/// of either pair; a lost vector silences exactly the pair it belongs to.
#[test]
fn a_completion_naming_another_queue_is_refused_and_a_lost_vector_silences_one_pair() {
    use nicqual_hw::enic::{CqEnetRqDesc, RqCompletion};
    let mut e = up(1500);
    // What the adapter writes for RQ 2's first buffer, but on RQ 0's CQ (slot 0 of CQ 0
    // after it, with the colour the driver expects there).
    let (sop, eop, truncated, fcs_ok) = (true, true, false, true);
    let (completed_index, q_number, bytes_written, ty) = (0, 2, 100, hw::CQ_DESC_TYPE_RQ_ENET);
    let color = e.backend().device().cq_tail_color(0);
    let c = RqCompletion { completed_index, q_number, sop, eop, bytes_written, truncated, fcs_ok, ty, color };
    e.backend_mut().device_mut().inject_rq_completion(CqEnetRqDesc::new(c)).unwrap();
    let mut out = Vec::new();
    assert_eq!(e.poll_rx(&mut out), 0);
    let msg = e.drop_log.last().map(|x| x.to_string()).unwrap_or_default();
    assert!(msg.contains("CQ0 entry 0: q_number 2 names RQ2, but this CQ serves RQ0"), "{msg}");
    assert_eq!((e.stats.dropped("bad-queue"), e.pair_stats(0).unwrap().rx_refused), (1, 1));
    assert_eq!((e.rx_outstanding_on(0), e.rx_outstanding_on(2)), (Some(63), Some(63)));
    // Vector 6 is WQ 2's (QUEUES + 2): pair 2's TX interrupt is lost, nobody else's.
    e.backend_mut().device_mut().arm_faults("lose-vector:6".parse().unwrap());
    for q in 0..e.pairs() {
        let f = frame(200, q);
        e.send_on(q, &f).unwrap();
        let heard = (e.wait_irq_on(q, false, 10_000), e.wait_irq_on(q, true, 10_000));
        if q == 2 {
            assert_eq!(heard.1, 0, "pair 2's TX vector is lost");
        } else {
            assert!(heard.1 >= 1, "pair {q}: {heard:?}");
        }
        assert!(heard.0 >= 1, "pair {q}: {heard:?}");
        assert_eq!(e.poll_rx_on(q, &mut out).unwrap(), 1);
    }
}

/// A transmit completion on WQ 1's CQ naming WQ 3 is refused by name, counted on pair 1
/// alone, and frees nothing.
#[test]
fn a_transmit_completion_naming_another_wq_is_refused_on_its_pair() {
    let mut e = up(1500);
    let (_, cq) = e.pair_cqs(1).unwrap();
    assert_eq!(cq, QUEUES as u32 + 1);
    let r = e.resources();
    let o = r.cq + u64::from(cq) * hw::VNIC_RES_STRIDE;
    let base = u64::from(e.backend_mut().read32(hw::BAR_REGS, o + hw::CQ_RING_BASE))
        | u64::from(e.backend_mut().read32(hw::BAR_REGS, o + hw::CQ_RING_BASE_HI)) << 32;
    // Slot 0 of CQ 5 with the first lap's colour, as the adapter would write it, but for WQ 3.
    let forged = hw::CqDesc::new(hw::CQ_DESC_TYPE_WQ_ENET, 3, 0, true);
    let d = e.backend_mut().device_mut();
    let now = d.now_ns();
    d.iommu().write(base, zerocopy::IntoBytes::as_bytes(&forged), now).unwrap();
    // The adapter's tail moves past it, as its own write would have moved it.
    e.backend_mut().write32(hw::BAR_REGS, o + hw::CQ_TAIL, 1);
    e.poll_tx_on(1).unwrap();
    let msg = e.tx_drop_log.last().map(|x| x.to_string()).unwrap_or_default();
    assert!(msg.contains("CQ5 (WQ1) entry 0: q_number 3 names WQ3, but this CQ serves WQ1"), "{msg}");
    assert_eq!(e.pair_stats(1).map(|s| (s.tx_bad_completions, s.tx_completions)), Some((1, 0)));
    assert_eq!(e.pair_stats(3).map(|s| s.tx_bad_completions), Some(0));
    assert_eq!(e.stats.tx_bad_completions, 1);
}
