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
    assert_eq!(r.tx_cq(), QUEUES as u32, "WQ 0 completes on the CQ after the RQs'");
    assert_eq!((e.mac(), e.adapter_mtu()), (cfg.mac, 9000));
    assert_eq!(e.irq_mode(), &IrqMode::Msix { vectors: QUEUES as u16 + 1 });
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
