//! `nicqual qualify --device model:bnx2x`: the bnx2x suite (`nicqual_qualify::bnx2x`) on the
//! emulated bnx2x function, with the same record, table and exit codes as the 82574L.

use crate::progress::Progress;
use crate::qualify::{Args, finish_run, replay_args, run_record, teardown_check};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_dma::dmamap::DmaPlatform;
use nicqual_dma::memory::HostMemory;
use nicqual_model::FaultPlan;
use nicqual_model::bnx2x::{Bnx2xDevice, Config};
use nicqual_pci::{Backend, CheckReport};
use nicqual_qualify::bnx2x::{Options, check_names, run_suite};
use nicqual_qualify::i82574::{Selection, merge_repeats};
use nicqual_qualify::record;
use nicqual_report as rep;
use std::process::ExitCode;

/// Fast-path queues the suite brings up.
const QUEUES: usize = 2;

/// Every check, in run order.
pub fn all_checks() -> Vec<String> {
    let mut v = check_names(QUEUES);
    v.push("teardown".into());
    v
}

pub fn run(device_id: u16, spec: &str, a: &Args, plan: FaultPlan, quiet: bool) -> ExitCode {
    if a.pcap.is_some() {
        eprintln!("nicqual: --pcap: the bnx2x model runs in MAC loopback; no frame reaches a wire");
        return ExitCode::from(2);
    }
    let mut model = Bnx2xDevice::with_config(Config { device_id, queues: QUEUES });
    // Refuse what cannot apply: a vector the run does not enable (the table has more
    // entries than the 1 + QUEUES vectors used), a queue or completion the device lacks.
    let target = nicqual_model::FaultTarget { msix_vectors: 1 + QUEUES as u16, ..model.fault_target() };
    if let Err(e) = plan.validate_for(target) {
        eprintln!("nicqual: fault plan for {spec}: {e}");
        return ExitCode::from(2);
    }
    model.arm_faults(plan.clone());
    let mut backend = EmulatedBackend::new(model, spec.to_string());
    let info = backend.info();
    let select = Selection { check: a.check.clone(), skip: a.skip.clone() };
    let opts = Options { queues: QUEUES, select: select.clone(), ..Options::default() };
    let started_at = rep::now_rfc3339();
    let t0 = std::time::Instant::now();
    let to_stdout = !a.out.uses_stdout();
    let say = |line: String| {
        if to_stdout { println!("{line}") } else { eprintln!("{line}") }
    };
    let names = check_names(QUEUES);
    let progress = Progress::new(names.len() as u64 * u64::from(a.repeat) + 2, "qualify", quiet);
    if !quiet && !progress.is_visible() {
        eprintln!("nicqual: qualifying {spec} (seed {}, {} fault(s))", plan.seed, plan.faults.len());
    }
    let t_start = backend.now_ns();
    let mut runs = Vec::new();
    let mut seen = Default::default();
    for _ in 0..a.repeat {
        // Host memory model for the DMA API (native: no bounce), behind the device's IOMMU.
        let platform = DmaPlatform::iommu(HostMemory::native(1 << 18)).shared();
        let (reports, b, s) = run_suite(backend, platform, opts.clone(), &mut |c| {
            progress.step(&c.name);
            progress.inc();
        });
        runs.push(reports);
        seen = s;
        match b {
            Some(b) => backend = b,
            None => {
                progress.finish();
                eprintln!("nicqual: {spec}: the suite lost the backend (a bug in the suite)");
                return ExitCode::from(rep::Verdict::Error.exit_code());
            }
        }
    }
    let mut checks: Vec<CheckReport> =
        if a.repeat > 1 { merge_repeats(runs) } else { runs.into_iter().flatten().collect() };
    let t_end = backend.now_ns().saturating_sub(t_start);
    progress.step("teardown");
    if select.wants("teardown") {
        let _ = backend.msix_disable();
        checks.push(teardown_check(&backend, seen.gone, "teardown"));
    }
    progress.inc();
    let checks: Vec<rep::Check> = checks.iter().map(record::check).collect();
    let summary = rep::Summary::of(&checks);
    let verdict = summary.verdict();
    let device = rep::Device {
        spec: spec.to_string(),
        name: Some(format!(
            "Broadcom {} (nicqual bnx2x model)",
            if seen.part.is_empty() { "bnx2x" } else { seen.part }
        )),
        vendor_id: format!("{:04x}", seen.vendor),
        device_id: format!("{:04x}", seen.device),
        driver: "nicqual-nics bnx2x".into(),
        ..Default::default()
    };
    let mut rec = run_record(started_at, record::backend(&info), device, &plan, checks);
    rec.duration_ns = t_end;
    rec.wall_ns = t0.elapsed().as_nanos() as u64;
    rec.replay = (verdict != rep::Verdict::Pass).then(|| format!("nicqual {}", replay_args(a, plan.seed)));
    finish_run(&rec, a, progress, info.virtual_time, t0, &say)
}
