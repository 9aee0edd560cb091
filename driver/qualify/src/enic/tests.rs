use super::*;
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_model::FaultPlan;
use nicqual_model::enic::{EnicConfig, EnicDevice, EnicFaultPlan};

fn run(faults: Option<&str>, seed: u64) -> Vec<(String, CheckResult)> {
    let dev = EnicDevice::with_config(EnicConfig { vnic_mtu: 9000, ..EnicConfig::default() }, EnicFaultPlan::none());
    let plan = faults.map(|f| {
        let mut p: FaultPlan = f.parse().unwrap();
        p.seed = seed;
        p
    });
    let r = run_suite(
        EmulatedBackend::new(dev, "model:enic"),
        &Selection::default(),
        |b| {
            if let Some(p) = plan {
                b.device_mut().arm_faults(p);
            }
        },
        |_| {},
    )
    .unwrap();
    let (balance, b) = r.driver.unwrap().close();
    assert_eq!((b.live_mappings(), b.msix_vectors()), (0, 0));
    assert_eq!(r.closes.len(), JUMBO_MTUS.len(), "one close per re-attach");
    for c in r.closes.iter().chain([&balance]) {
        assert_eq!(c.result, CheckResult::Pass, "{}", c.detail);
    }
    r.checks.into_iter().map(|c| (c.name, c.result)).collect()
}

fn failed(r: &[(String, CheckResult)]) -> Vec<&str> {
    r.iter().filter(|(_, x)| *x == CheckResult::Fail).map(|(n, _)| n.as_str()).collect()
}

#[test]
fn a_healthy_vnic_passes_every_check() {
    let r = run(None, 1);
    let names = check_names(nicqual_model::enic::QUEUES as u32);
    assert_eq!(r.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(), names);
    assert!(names.contains(&"pair[3]".to_string()), "one check per pair: {names:?}");
    assert!(r.iter().all(|(_, x)| *x == CheckResult::Pass), "{r:?}");
}

#[test]
fn a_hostile_completion_fails_that_check_alone_whatever_field_and_entry() {
    for seed in 0..24u64 {
        let spec = format!("hostile-completion:{}", seed * 13 % 400);
        let r = run(Some(&spec), seed);
        assert_eq!(failed(&r), ["hostile-completions"], "{spec} seed {seed}: {r:?}");
    }
}

/// The per-pair checks run after ~470 completions (rings, colour-wrap, interrupts,
/// lost-vector): a hostile completion there, on any pair, is still that check's finding
/// alone.
#[test]
fn a_hostile_completion_during_the_pair_checks_fails_only_hostile_completions() {
    let mut cqs = std::collections::BTreeSet::new();
    for nth in (440..560u32).step_by(7) {
        let spec = format!("hostile-completion:{nth}");
        let r = run(Some(&spec), u64::from(nth));
        assert_eq!(failed(&r), ["hostile-completions"], "{spec} seed {nth}: {r:?}");
        cqs.extend(hostile_cqs(&spec, u64::from(nth)));
    }
    // Some of them landed on the other pairs' CQs (1-3 for RX, 5-7 for TX).
    assert!(cqs.iter().any(|c| ![0, 4].contains(c)), "only pair 0's CQs hit: {cqs:?}");
}

/// The CQs the armed hostile completion landed on.
fn hostile_cqs(spec: &str, seed: u64) -> Vec<u32> {
    let dev = EnicDevice::with_config(EnicConfig { vnic_mtu: 9000, ..EnicConfig::default() }, EnicFaultPlan::none());
    let mut p: FaultPlan = spec.parse().unwrap();
    p.seed = seed;
    let r = run_suite(
        EmulatedBackend::new(dev, "model:enic"),
        &Selection::default(),
        |b| b.device_mut().arm_faults(p),
        |_| {},
    )
    .unwrap();
    let d = r.driver.unwrap();
    d.backend().device().hostile_completions().iter().map(|h| h.cq).collect()
}

#[test]
fn a_lost_vector_fails_the_interrupt_checks_and_exactly_its_pair() {
    let n = nicqual_model::enic::QUEUES as u16;
    assert_eq!(failed(&run(Some("lose-vector:0"), 1)), ["interrupts", "lost-vector", "pair[0]"]);
    // Every pair's RX vector (q) and TX vector (n + q): that pair's check fails, no other.
    for v in 1..2 * n {
        let q = v % n;
        let want = ["lost-vector".to_string(), format!("pair[{q}]")];
        assert_eq!(failed(&run(Some(&format!("lose-vector:{v}")), 1)), want, "lose-vector:{v}");
    }
    // The error and notify vectors belong to no pair: found in the table alone.
    for v in [2 * n, 2 * n + 1] {
        assert_eq!(failed(&run(Some(&format!("lose-vector:{v}")), 1)), ["lost-vector"], "lose-vector:{v}");
    }
}

#[test]
fn a_lost_vector_is_named_with_its_queue_in_the_pair_check() {
    let dev = EnicDevice::with_config(EnicConfig { vnic_mtu: 9000, ..EnicConfig::default() }, EnicFaultPlan::none());
    let r = run_suite(
        EmulatedBackend::new(dev, "model:enic"),
        &Selection::default(),
        |b| b.device_mut().arm_faults("lose-vector:6".parse().unwrap()),
        |_| {},
    )
    .unwrap();
    let c = r.checks.iter().find(|c| c.name == "pair[2]").unwrap();
    assert!(c.detail.contains("vector 6 (WQ2's) silent for 8 frame(s)"), "{}", c.detail);
    let ok = r.checks.iter().find(|c| c.name == "pair[1]").unwrap();
    assert_eq!(ok.result, CheckResult::Pass, "{}", ok.detail);
    assert!(ok.detail.contains("vector 1 (CQ1) interrupted 8 and vector 5 (CQ5) 8 of 8 frames"), "{}", ok.detail);
}

#[test]
fn teardown_fails_when_a_close_left_mappings_for_the_dma_api() {
    let base =
        || CheckReport::new("teardown", CheckResult::Pass, "interrupts masked; MSI-X disabled, 0 DMA mapping(s) left");
    let ok = CheckReport::new("dma-mappings-balanced", CheckResult::Pass, "65 mapped, 65 unmapped").measure(
        "leaked_mappings",
        0.0,
        "mappings",
    );
    let leak = CheckReport::new("dma-mappings-balanced", CheckResult::Fail, "LEAK: 2 streaming mappings").measure(
        "leaked_mappings",
        2.0,
        "mappings",
    );
    assert_eq!(teardown(base(), &[ok.clone(), ok.clone()]).result, CheckResult::Pass);
    let r = teardown(base(), &[ok.clone(), leak]);
    assert_eq!(r.result, CheckResult::Fail);
    assert!(r.detail.contains("1 of 2 close(s) left mappings"), "{}", r.detail);
    assert_eq!(r.measurements.last().map(|m| m.value), Some(2.0));
    // No close accounted: the DMA part cannot pass on nothing; the base result stands, said so.
    assert!(teardown(base(), &[]).detail.contains("no close"));
}
