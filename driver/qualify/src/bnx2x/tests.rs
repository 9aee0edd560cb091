use super::*;
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_dma::dmamap::DmaPlatform;
use nicqual_dma::memory::HostMemory;
use nicqual_model::FaultPlan;
use nicqual_model::bnx2x::{Bnx2xDevice, Config};

/// Run the suite on a fresh model with `faults` armed; the names of the checks that did
/// not pass.
fn failing(faults: &str, seed: u64) -> Vec<String> {
    let mut dev = Bnx2xDevice::with_config(Config { queues: 2, ..Config::default() });
    let mut plan = FaultPlan::new(seed);
    if !faults.is_empty() {
        plan.extend(faults.parse().unwrap());
    }
    dev.arm_faults(plan);
    let b = EmulatedBackend::new(dev, "model:bnx2x");
    let platform = DmaPlatform::iommu(HostMemory::native(1 << 18)).shared();
    let opts = Options { frames: 600, ..Options::default() };
    let (reports, b, _) = run_suite(b, platform, opts, &mut |_| ());
    assert_eq!(reports.len(), check_names(2).len(), "every check reported");
    let b = b.expect("backend handed back");
    assert_eq!(b.live_mappings(), 0, "{faults}: nothing left mapped");
    reports.iter().filter(|r| r.result != CheckResult::Pass).map(|r| format!("{}: {}", r.name, r.detail)).collect()
}

fn names(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.split(':').next().unwrap_or("")).collect()
}

#[test]
fn healthy_model_passes_every_check() {
    assert_eq!(failing("", 1), Vec::<String>::new());
}

#[test]
fn a_lost_vector_fails_its_table_entry_its_interrupts_and_the_detector_only() {
    let f = failing("lose-vector:2", 1);
    assert_eq!(names(&f), ["msix-table[2]", "interrupts[q1]", "lost-vector"], "{f:#?}");
    let f = failing("lose-vector:0", 1);
    assert_eq!(names(&f), ["msix-table[0]", "interrupts[default]", "lost-vector"], "{f:#?}");
}

#[test]
fn a_hostile_completion_fails_the_check_that_carried_it_only() {
    // Completion 5 is in rx-tx-pages' traffic, 700 in tpa-integrity's (600 frames before
    // it), 800 in jumbo-loopback's.
    for (n, check) in [(5, "rx-tx-pages"), (605, "tpa-integrity"), (700, "jumbo-loopback")] {
        for seed in 1..4 {
            let f = failing(&format!("hostile-cqe:{n}"), seed);
            assert_eq!(names(&f), [check], "hostile-cqe:{n} seed {seed}: {f:#?}");
            assert!(f[0].contains("CQE at RCQ index"), "{f:?}");
        }
    }
}
