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
    let b = r.driver.unwrap().shutdown();
    assert_eq!((b.live_mappings(), b.msix_vectors()), (0, 0));
    r.checks.into_iter().map(|c| (c.name, c.result)).collect()
}

fn failed(r: &[(String, CheckResult)]) -> Vec<&str> {
    r.iter().filter(|(_, x)| *x == CheckResult::Fail).map(|(n, _)| n.as_str()).collect()
}

#[test]
fn a_healthy_vnic_passes_every_check() {
    let r = run(None, 1);
    assert_eq!(r.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), CHECKS);
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

#[test]
fn a_lost_vector_fails_the_interrupt_checks_alone() {
    assert_eq!(failed(&run(Some("lose-vector:0"), 1)), ["interrupts", "lost-vector"]);
    // A vector the driver does not use is still found in the table.
    assert_eq!(failed(&run(Some("lose-vector:7"), 1)), ["lost-vector"]);
}
