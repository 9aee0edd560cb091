use super::validate::{self, Accepted, CompletionError, RqState};
use super::*;
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_hw::enic::RqCompletion;
use nicqual_model::enic::{EnicDevice, EnicFault, EnicFaultPlan};

type Dev = EmulatedBackend<EnicDevice>;

fn emu(d: EnicDevice) -> Dev {
    EmulatedBackend::new(d, "model:enic")
}
use proptest::prelude::*;

const N: u32 = 64;

fn up(adapter_mtu: u32, policy: Policy, mtu: u32) -> Enic<Dev> {
    let dev = EnicDevice::new(adapter_mtu, EnicFaultPlan::none());
    Enic::new(emu(dev), policy, Platform::Direct, mtu, N).unwrap().0
}

fn frame(len: usize, tag: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(tag)).collect()
}

/// A completion the driver would accept for RQ index `index`, `len` bytes.
fn good(index: u16, len: u16) -> RqCompletion {
    RqCompletion {
        completed_index: index,
        q_number: 0,
        sop: true,
        eop: true,
        bytes_written: len,
        truncated: false,
        fcs_ok: true,
        ty: hw::CQ_DESC_TYPE_RQ_ENET,
        color: false,
    }
}

/// Write `c` at CQ0's tail with the colour the driver expects next.
fn inject(e: &mut Enic<Dev>, c: RqCompletion) {
    let color = e.backend().device().cq_tail_color(0);
    e.backend_mut().device_mut().inject_rq_completion(CqEnetRqDesc::new(RqCompletion { color, ..c })).unwrap();
}

#[test]
fn loopback_delivers_every_size_intact_at_mtu_9000() {
    let mut e = up(9000, Policy::Nicqual, 9000);
    let mut out = Vec::new();
    for (k, len) in [60usize, 1514, 1518, 4096, 9014, 9018].into_iter().enumerate() {
        let f = frame(len, k as u8);
        e.send(&f).unwrap();
        assert_eq!(e.poll_rx(&mut out), 1, "{len}-byte frame");
        assert_eq!(out.last().unwrap(), &f);
    }
    assert_eq!(e.stats.tx_completions, 6);
    assert_eq!((e.stats.dropped_total(), e.stats.overrun_landed), (0, 0));
    assert!(e.backend().device().dma_faults().is_empty());
    // Many laps of the rings: colour flips on both CQs keep working.
    for k in 0..(3 * N) {
        let f = frame(100, k as u8);
        e.send(&f).unwrap();
        assert_eq!(e.poll_rx(&mut out), 1, "frame {k}");
    }
    assert_eq!(e.stats.rx_delivered, 6 + 3 * u64::from(N));
}

#[test]
fn early_buffers_are_four_bytes_short_for_tagged_jumbo_frames() {
    let mut e = up(9000, Policy::Early, 9000);
    assert_eq!(e.buf_len(), 9014);
    let mut out = Vec::new();
    e.send(&frame(9018, 1)).unwrap();
    assert_eq!(e.poll_rx(&mut out), 0);
    assert_eq!(e.stats.dropped("truncated"), 1);
    assert_eq!(e.backend().device().stats.rx_truncated, 1);
}

#[test]
fn overrun_is_blocked_by_the_iommu_and_dropped_with_a_reason() {
    let mut e = up(9000, Policy::Nicqual, 1500);
    let mut out = Vec::new();
    e.backend_mut().device_mut().force_next(EnicFault::Overrun);
    // A peer at MTU 9000 on the same segment: the adapter (vNIC MTU 9000) accepts it.
    e.backend_mut().device_mut().receive(&frame(9018, 3));
    assert_eq!(e.poll_rx(&mut out), 0);
    assert_eq!(e.stats.dropped("over-posted-length"), 1);
    assert_eq!(e.backend().device().dma_faults().len(), 1, "the write past the 1518-byte window was blocked");
    assert_eq!(e.backend().device().dma_faults()[0].len, 9018);
    assert_eq!(e.stats.overrun_landed, 0);
    assert!(matches!(e.drop_log[0], CompletionError::OverPosted { bytes_written: 9018, posted: 1518, .. }));
    // The ring keeps working.
    e.send(&frame(1514, 4)).unwrap();
    assert_eq!(e.poll_rx(&mut out), 1);
}

#[test]
fn without_an_iommu_the_same_overrun_lands_past_the_buffer() {
    let mut e = up(9000, Policy::Early, 1500);
    let mut out = Vec::new();
    e.backend_mut().device_mut().force_next(EnicFault::Overrun);
    e.backend_mut().device_mut().receive(&frame(1600, 3));
    e.poll_rx(&mut out);
    assert_eq!(e.stats.overrun_landed, 1, "guard bytes after the 1514-byte buffer overwritten");
    assert_eq!(e.stats.would_read_past_buffer, 1);
    assert!(e.backend().device().dma_faults().is_empty());
}

#[test]
fn mtu_disagreement_is_refused_or_reported() {
    let dev = EnicDevice::new(1500, EnicFaultPlan::none());
    let err = Enic::new(emu(dev), Policy::Nicqual, Platform::Direct, 9000, N).unwrap_err();
    assert_eq!(
        err.to_string(),
        "interface MTU (9000) set higher than port MTU (1500): frames above 1500 would be dropped by the adapter"
    );
    let (_, note) =
        Enic::new(emu(EnicDevice::new(9000, EnicFaultPlan::none())), Policy::Nicqual, Platform::Direct, 1500, N)
            .unwrap();
    assert!(note.unwrap().contains("vNIC MTU 9000 (adapter) > interface MTU 1500"));
    let err = Enic::new(emu(EnicDevice::new(9000, EnicFaultPlan::none())), Policy::Nicqual, Platform::Direct, 9001, N)
        .unwrap_err();
    assert!(matches!(err, EnicError::MtuUnsupported { mtu: 9001, .. }));
    let mut gone = EnicDevice::new(9000, EnicFaultPlan::none());
    gone.surprise_remove();
    assert!(matches!(
        Enic::new(emu(gone), Policy::Nicqual, Platform::Direct, 1500, N),
        Err(EnicError::DeviceGone { .. })
    ));
}

/// Forged completions (the adapter fetched nothing): refused whole, nothing reclaimed,
/// and a good frame afterwards still arrives.
#[test]
fn forged_completions_are_refused_and_the_ring_keeps_working() {
    let cases: [(&str, RqCompletion); 5] = [
        ("bad-type", RqCompletion { ty: hw::CQ_DESC_TYPE_WQ_ENET, ..good(0, 100) }),
        ("bad-queue", RqCompletion { q_number: 7, ..good(0, 100) }),
        ("index-not-posted", good(4000, 100)),
        ("index-not-posted", good((N - 1) as u16, 100)),
        ("not-fetched", good(0, 100)),
    ];
    for (reason, c) in cases {
        let mut e = up(1500, Policy::Nicqual, 1500);
        let mut out = Vec::new();
        inject(&mut e, c);
        assert_eq!(e.poll_rx(&mut out), 0, "{reason}: {c:?}");
        assert_eq!((e.stats.dropped(reason), e.stats.dropped_total()), (1, 1), "{reason}");
        assert_eq!(e.drop_log[0].reason(), reason);
        let f = frame(1514, 9);
        e.send(&f).unwrap();
        assert_eq!(e.poll_rx(&mut out), 1, "ring still works after {reason}");
        assert_eq!(out[0], f);
    }
}

/// One hostile value per field of a completion for a buffer the adapter did take.
#[test]
fn hostile_field_of_a_fetched_buffer_is_refused_with_its_reason() {
    // RQ of 64, buffers 10..20 held by the adapter, 10..15 fetched, MTU 1500, posted 1518.
    let st = RqState { size: 64, to_clean: 10, outstanding: 10, fetch_index: 15, q: 0, mtu: 1500 };
    let cases: [(&str, RqCompletion); 11] = [
        ("bad-type", RqCompletion { ty: 0, ..good(10, 100) }),
        ("bad-type", RqCompletion { ty: 0xF, ..good(10, 100) }),
        ("bad-queue", RqCompletion { q_number: 0x3FF, ..good(10, 100) }),
        ("index-not-posted", good(9, 100)),
        ("index-not-posted", good(0xFFF, 100)),
        ("not-fetched", good(15, 100)),
        ("spans-buffers", RqCompletion { sop: false, ..good(11, 100) }),
        ("spans-buffers", RqCompletion { eop: false, ..good(11, 100) }),
        ("truncated", RqCompletion { truncated: true, ..good(12, 1518) }),
        ("empty", good(13, 0)),
        ("over-posted-length", good(14, 1519)),
    ];
    for (reason, c) in cases {
        let e = validate::check(&c, 3, st, |_| 1518).unwrap_err();
        assert_eq!(e.reason(), reason, "{c:?}: {e}");
    }
    assert_eq!(validate::check(&good(14, 1518), 3, st, |_| 1518), Ok(Accepted { index: 14, skipped: 4, len: 1518 }));
}

#[test]
fn adapter_faults_are_dropped_with_their_reasons() {
    let cases = [
        (EnicFault::Span, "spans-buffers", 2),
        (EnicFault::OverLength, "over-posted-length", 1),
        (EnicFault::UnpostedIndex, "", 1),
    ];
    for (fault, reason, n) in cases {
        let mut e = up(1500, Policy::Nicqual, 1500);
        let mut out = Vec::new();
        e.backend_mut().device_mut().force_next(fault);
        e.send(&frame(1000, 2)).unwrap();
        assert_eq!(e.poll_rx(&mut out), 0, "{fault:?}");
        if reason.is_empty() {
            let bad = e.stats.dropped("index-not-posted") + e.stats.dropped("not-fetched");
            assert_eq!(bad, 1, "{fault:?}: {:?}", e.drop_log);
        } else {
            assert_eq!(e.stats.dropped(reason), n, "{fault:?}: {:?}", e.drop_log);
        }
        // The adapter's buffer behind an unposted-index completion is reclaimed as skipped
        // by the next good completion.
        let f = frame(1514, 9);
        e.send(&f).unwrap();
        assert_eq!(e.poll_rx(&mut out), 1, "{fault:?}");
        assert_eq!(out[0], f);
        assert_eq!(e.stats.rx_skipped, u64::from(fault == EnicFault::UnpostedIndex));
    }
}

#[test]
fn a_completion_with_the_previous_colour_is_not_consumed() {
    let mut e = up(1500, Policy::Nicqual, 1500);
    let stale = !e.backend().device().cq_tail_color(0);
    e.backend_mut()
        .device_mut()
        .inject_rq_completion(CqEnetRqDesc::new(RqCompletion { color: stale, ..good(0, 100) }))
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(e.poll_rx(&mut out), 0);
    // Never read as a completion; but the adapter's cq_tail moved past it, so it is known
    // to be an entry written with the wrong colour, skipped and counted as that alone.
    assert_eq!((e.stats.dropped_total(), e.stats.dropped("stale-colour")), (1, 1));
    assert_eq!(e.stats.rx_delivered, 0);
    // The next real frame is delivered; the buffer the stale entry named was not consumed.
    e.send(&frame(100, 1)).unwrap();
    assert_eq!(e.poll_rx(&mut out), 1);
}

#[test]
fn validation_checks_mtu_and_skips() {
    let st = RqState { size: 64, to_clean: 60, outstanding: 10, fetch_index: 4, q: 0, mtu: 1500 };
    // Index 2 is 6 past to_clean 60 (wrapping): inside the window, 6 skipped.
    assert_eq!(validate::check(&good(2, 100), 0, st, |_| 2000), Ok(Accepted { index: 2, skipped: 6, len: 100 }));
    assert!(matches!(validate::check(&good(6, 100), 0, st, |_| 2000), Err(CompletionError::IndexNotPosted { .. })));
    // A buffer posted larger than the MTU needs: the MTU bound still holds.
    assert!(matches!(validate::check(&good(60, 1519), 0, st, |_| 2000), Err(CompletionError::OverMtu { .. })));
}

/// On RQ 2's CQ only q_number 2 is accepted; every other queue is refused, naming the CQ,
/// the queue the completion claimed and the one the CQ serves, and the RQ of every
/// field-level refusal.
#[test]
fn validation_names_the_queue_of_every_refusal() {
    let st = RqState { size: 64, to_clean: 0, outstanding: 10, fetch_index: 5, q: 2, mtu: 1500 };
    let on2 = |c: RqCompletion| RqCompletion { q_number: 2, ..c };
    assert_eq!(validate::check(&on2(good(0, 100)), 7, st, |_| 2000).map(|a| a.index), Ok(0));
    for q in [0u16, 1, 3, 1023] {
        let e = validate::check(&RqCompletion { q_number: q, ..good(0, 100) }, 7, st, |_| 2000).unwrap_err();
        assert_eq!(e, CompletionError::BadQueue { cq: 2, entry: 7, q });
        assert_eq!(e.to_string(), format!("CQ2 entry 7: q_number {q} names RQ{q}, but this CQ serves RQ2"));
    }
    let e = validate::check(&on2(good(1, 1600)), 8, st, |_| 1518).unwrap_err();
    assert!(e.to_string().starts_with("RQ2[1]: bytes_written 1600 exceeds"), "{e}");
    let e = validate::check(&on2(good(9, 100)), 9, st, |_| 1518).unwrap_err();
    assert!(e.to_string().starts_with("CQ2 entry 9: completed_index 9 names a buffer RQ2 has not fetched"), "{e}");
}

#[test]
fn seeded_fault_plan_never_delivers_a_wrong_frame_under_nicqual() {
    let plan = EnicFaultPlan { seed: 7, per_mille: 300, kinds: EnicFault::ALL.to_vec() };
    let dev = EnicDevice::new(9000, plan);
    let (mut e, _) = Enic::new(emu(dev), Policy::Nicqual, Platform::Direct, 9000, N).unwrap();
    let mut out = Vec::new();
    let mut sent = Vec::new();
    for k in 0..400usize {
        let f = frame(60 + (k * 577) % 8958, k as u8);
        e.send(&f).unwrap();
        e.poll_rx(&mut out);
        sent.push(f);
    }
    assert!(e.stats.dropped_total() > 0 && out.len() > 200);
    for f in &out {
        assert!(sent.contains(f), "a delivered frame is one that was sent, byte for byte");
    }
    assert_eq!(e.stats.overrun_landed, 0);
    assert_eq!(e.stats.rx_delivered as usize, out.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    /// Arbitrary completion bytes (fresh colour) never panic, never deliver more than the
    /// posted buffer, and never leave the driver unable to receive.
    #[test]
    fn arbitrary_completions_are_harmless(raws in prop::collection::vec(prop::array::uniform16(any::<u8>()), 1..20)) {
        let mut e = up(1500, Policy::Nicqual, 1500);
        let mut out = Vec::new();
        for raw in raws {
            let mut d = CqEnetRqDesc::read_from_bytes(&raw).unwrap();
            let color = e.backend().device().cq_tail_color(0);
            d.type_color = (d.type_color & !hw::CQ_DESC_COLOR) | if color { hw::CQ_DESC_COLOR } else { 0 };
            e.backend_mut().device_mut().inject_rq_completion(d).unwrap();
            e.poll_rx(&mut out);
        }
        prop_assert!(out.iter().all(|f| f.len() <= e.buf_len() as usize));
        let f = frame(1000, 1);
        e.send(&f).unwrap();
        let mut got = Vec::new();
        e.poll_rx(&mut got);
        prop_assert_eq!(got.last(), Some(&f));
    }
}

/// The field hypothesis on a Xen dom0: 9014-byte buffers span pages and bounce; a 4 MiB
/// pool cannot take a ring of them. Early enic posts the overflow buffer and hands up
/// frames it never received; nicqual posts fewer buffers and loses nothing it accepted.
#[test]
fn bounce_pool_exhaustion_corrupts_early_enic_and_shortens_nicqual_ring() {
    let xen = Platform::XenDom0 { pool_slots: 2048 };
    let run = |policy| {
        let dev = EnicDevice::new(9000, EnicFaultPlan::none());
        let (mut e, _) = Enic::new(emu(dev), policy, xen, 9000, 512).unwrap();
        let mut out = Vec::new();
        let mut sent = Vec::new();
        for k in 0..600usize {
            let f = frame(9014 - (k % 7), k as u8);
            if e.send(&f).is_ok() {
                sent.push(f);
            }
            e.poll_rx(&mut out);
        }
        let corrupt = out.iter().filter(|f| !sent.contains(f)).count();
        (e, out.len(), corrupt)
    };
    let (early, _, corrupt) = run(Policy::Early);
    assert!(early.stats.overflow_posted > 0 && early.stats.map_failures > 0);
    assert!(corrupt > 0, "frames handed up that were never sent");
    assert!(early.bounce_log().iter().any(|l| l.starts_with("PCI-DMA: Out of SW-IOMMU space for 9014 bytes")));
    let (nq, delivered, corrupt) = run(Policy::Nicqual);
    assert_eq!(corrupt, 0);
    assert_eq!((nq.stats.overflow_posted, nq.stats.tx_map_refused), (0, 0));
    assert!(nq.stats.rx_not_posted > 0 && nq.rx_outstanding() < 511);
    assert_eq!(delivered, 600);
    // At MTU 1500 nothing bounces.
    let (e, _) = Enic::new(emu(EnicDevice::new(9000, EnicFaultPlan::none())), Policy::Early, xen, 1500, 512).unwrap();
    assert_eq!(e.bounce_usage(), Some((0, 0, 2048)));
}

/// Streaming: each posted RX buffer and each frame in flight holds one DMA API mapping,
/// which the model's IOMMU sees as its own window; close unmaps them all itself.
#[test]
fn streaming_holds_one_mapping_per_posted_buffer_and_closes_balanced() {
    let mut e = up(9000, Policy::Nicqual, 1500);
    assert_eq!(e.buffers(), Buffers::Streaming);
    let c = e.census();
    // Every pair posts a ring less one.
    let posted = e.pairs() * (N - 1);
    assert_eq!((c.rx_posted, c.rx_mapped, c.tx_mapped), (posted, posted as usize, 0));
    assert_eq!(c.live_mappings, c.rx_mapped + c.tx_mapped + c.region_mapped);
    assert_eq!(e.backend().live_mappings(), c.live_mappings + c.coherent);
    let mut out = Vec::new();
    for k in 0..(2 * N + 3) {
        e.send(&frame(60 + k as usize, k as u8)).unwrap();
        assert_eq!(e.poll_rx(&mut out), 1, "frame {k}");
        let c = e.census();
        assert_eq!(c.rx_mapped, c.rx_posted as usize, "frame {k}");
        assert_eq!(c.tx_mapped, c.tx_in_flight as usize, "frame {k}");
        assert_eq!(c.live_mappings, c.rx_mapped + c.tx_mapped, "frame {k}");
    }
    let s = e.dma_stats();
    // Bring-up posts N - 1 per pair; every delivered frame reposts one; every sent frame
    // maps one.
    assert_eq!(s.maps, u64::from(posted) + 2 * u64::from(2 * N + 3));
    let (r, b) = e.close();
    assert_eq!(r.result, nicqual_pci::CheckResult::Pass, "{}", r.detail);
    assert_eq!((b.live_mappings(), b.msix_vectors()), (0, 0));
}

/// Pool: one mapping for every buffer, nothing mapped on the datapath; an overrun lands in
/// the guard (counted), the IOMMU sees nothing.
#[test]
fn pool_maps_the_buffer_region_once() {
    let dev = EnicDevice::new(9000, EnicFaultPlan::none());
    let o = EnicOptions::new(Policy::Nicqual, Platform::Direct, 1500, N).buffers(Buffers::Pool);
    let (mut e, _) = Enic::with_options(emu(dev), o).unwrap();
    assert_eq!(e.backend().live_mappings(), 2, "ring block and buffer region");
    let mut out = Vec::new();
    for k in 0..(2 * N) {
        let f = frame(1514, k as u8);
        e.send(&f).unwrap();
        assert_eq!(e.poll_rx(&mut out), 1);
        assert_eq!(out.last(), Some(&f));
    }
    let c = e.census();
    assert_eq!((c.rx_mapped, c.tx_mapped, c.region_mapped, c.live_mappings), (0, 0, 1, 1));
    assert_eq!(e.dma_stats().maps, 1);
    e.backend_mut().device_mut().force_next(EnicFault::Overrun);
    e.backend_mut().device_mut().receive(&frame(1600, 3));
    e.poll_rx(&mut out);
    assert_eq!(e.stats.overrun_landed, 1);
    assert_eq!(e.stats.dropped("over-posted-length"), 1);
    assert!(e.backend().device().dma_faults().is_empty());
    let (r, b) = e.close();
    assert_eq!(r.result, nicqual_pci::CheckResult::Pass, "{}", r.detail);
    assert_eq!(b.live_mappings(), 0);
}

/// Poll mode: no vector asked for, no credit returned, traffic still validated and
/// delivered.
#[test]
fn poll_mode_asks_for_no_vector() {
    let dev = EnicDevice::new(9000, EnicFaultPlan::none());
    let o = EnicOptions::new(Policy::Nicqual, Platform::Direct, 1500, N).interrupts(false);
    let (mut e, _) = Enic::with_options(emu(dev), o).unwrap();
    assert!(matches!(e.irq_mode(), IrqMode::Polled { .. }));
    assert_eq!((e.vectors(), e.backend().msix_vectors()), (None, 0));
    let mut out = Vec::new();
    for k in 0..N {
        e.send(&frame(200, k as u8)).unwrap();
        assert_eq!(e.poll_rx(&mut out), 1);
    }
    assert_eq!((e.stats.credits_returned, e.stats.rx_delivered), (0, u64::from(N)));
}
