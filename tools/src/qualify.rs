//! `nicqual qualify`: attach the driver, arm the fault plan, run the suite, tear down,
//! print the table, write the record, exit 0 only if nothing failed.

use crate::devices::{DEFAULT_DEVICE, DeviceSpec};
use crate::output::Outputs;
use crate::progress::Progress;
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_backends::qtest::{QtestBackend, Target};
use nicqual_hw::i82574::IvarEntry;
use nicqual_model::FaultPlan;
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_nics::i82574::I82574;
use nicqual_pci::{Backend, CheckReport, CheckResult};
use nicqual_qualify::deviations::DeviceOptions;
use nicqual_qualify::i82574::{Selection, check_names_for, group_prefix, merge_repeats, run_suite_with};
use nicqual_qualify::record;
use nicqual_report as rep;
use std::path::PathBuf;
use std::process::ExitCode;

/// Default seed of fault plans and traffic (printed with every run).
pub const DEFAULT_SEED: u64 = 1;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Device to qualify (`nicqual devices` lists them).
    #[arg(long, default_value = DEFAULT_DEVICE)]
    pub(crate) device: DeviceSpec,
    /// Fault plan file (TOML, or JSON by extension).
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Fault shorthand, repeatable: lose-vector:N, corrupt-ivar:K, drop-irq:N:P,
    /// surprise-removal; each optionally @T (virtual time after attach: 5ms, 20us).
    #[arg(long = "fault", value_name = "SPEC")]
    fault: Vec<FaultPlan>,
    /// Seed for the fault plan (overrides the file's).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    pub(crate) out: Outputs,
    #[command(flatten)]
    pub host: crate::vfio_cli::HostArgs,
    /// Deliberate driver bug, to prove the run catches it (vfio: `dma-unmapped-iova`).
    #[arg(long, hide = true)]
    pub inject_bug: Option<crate::vfio_cli::Bug>,
    /// List the checks this device gets, in run order, and exit (with --lava: as the LAVA
    /// case names a run reports).
    #[arg(long)]
    list_checks: bool,
    /// Run only the checks matching GLOB (`*`, `?`; brackets are literal), repeatable. The
    /// set-up steps a selected check relies on still run, unreported.
    #[arg(long = "check", value_name = "GLOB")]
    pub(crate) check: Vec<String>,
    /// Leave out the checks matching GLOB, repeatable.
    #[arg(long = "skip", value_name = "GLOB")]
    pub(crate) skip: Vec<String>,
    /// Run the suite N times on the attached device; a check passes only if it passed every
    /// time (flaky = fail, with the counts).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) repeat: u32,
    /// Write the frames on the device's wire to FILE (pcap, opens in tshark): on the model,
    /// what its port sends (MAC loopback traffic never reaches the port); on QEMU, both
    /// directions of the socket netdev. Not available on a real function (capture on its
    /// link partner).
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: Option<PathBuf>,
    /// Run only one queue-pair group: 1 = Linux e1000e's plan (one pair, three vectors:
    /// RxQ0, TxQ0, Other), 2 = two pairs (five vectors, every IVAR entry, RSS key and table;
    /// its checks are prefixed `q2:`). Both run by default, in that order.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    queues: Option<u8>,
}

/// The `--pcap` file of a QEMU run, created before the run (so a bad path is a usage
/// error, not a lost run) and shared with the backend's wire capture.
type Tap = std::rc::Rc<std::cell::RefCell<nicqual_model::wire::PcapTap>>;

fn pcap_clashes(a: &Args) -> Option<String> {
    let p = a.pcap.as_ref()?;
    a.out.files().contains(&p).then(|| format!("--pcap {} is also a report output", p.display()))
}

/// What faults can target on the 82574L: its five MSI-X vectors and IVAR entries.
pub(crate) fn i82574_fault_target() -> nicqual_model::faults::FaultTarget {
    nicqual_model::faults::FaultTarget {
        msix_vectors: nicqual_hw::i82574::MSIX_VECTORS,
        ivar_entries: IvarEntry::ALL.len() as u8,
        completions: false,
        consumer_queues: 0,
    }
}

/// Say how many frames the `--pcap` file holds (or why it could not be finished).
fn say_pcap(p: &std::path::Path, r: std::io::Result<u64>) {
    match r {
        Ok(n) => eprintln!("nicqual: {n} frame(s) on the wire written to {}", p.display()),
        Err(e) => eprintln!("nicqual: --pcap {}: {e}", p.display()),
    }
}

/// Every check `spec` gets, in run order: per queue-pair group the suite and its teardown,
/// the device's own checks (on the last group's driver) before the last teardown.
fn all_checks(device: &DeviceSpec, groups: &[u8]) -> Vec<String> {
    if let DeviceSpec::ModelEnic { .. } = device {
        // The driver brings up every pair the model's resource table lists.
        let mut v = nicqual_qualify::enic::check_names(nicqual_model::enic::QUEUES as u32);
        v.push("teardown".into());
        return v;
    }
    let extra: &[&str] = match device {
        DeviceSpec::ModelI82574 | DeviceSpec::ModelEnic { .. } => &[],
        DeviceSpec::QemuE1000e | DeviceSpec::Qemu11E1000e => &["wire[socket]", "fault-injection"],
        DeviceSpec::Vfio(_) => &["dma-tx", "iommu-faults", "vfio-setup", "fault-injection"],
        DeviceSpec::ModelBnx2x(_) => return crate::qualify_bnx2x::all_checks(),
    };
    let mut v = Vec::new();
    for (i, &q) in groups.iter().enumerate() {
        v.extend(check_names_for(q));
        if i + 1 == groups.len() {
            v.extend(extra.iter().map(|s| s.to_string()));
        }
        v.push(format!("{}teardown", group_prefix(q)));
    }
    v
}

impl Args {
    /// Fault plans were given (they can only be injected into an emulated device).
    pub fn has_faults(&self) -> bool {
        self.faults.is_some() || !self.fault.is_empty()
    }

    /// The queue-pair groups to run, in order (`--queues`, else both).
    pub fn groups(&self) -> Vec<u8> {
        match self.queues {
            Some(q) => vec![q],
            None => vec![1, 2],
        }
    }
}

fn build_plan(a: &Args) -> Result<FaultPlan, String> {
    plan_from(a.faults.as_deref(), &a.fault, a.seed)
}

/// The fault plan of `--faults FILE`, `--fault SPEC`… and `--seed N`.
pub(crate) fn plan_from(
    file: Option<&std::path::Path>,
    specs: &[FaultPlan],
    seed: Option<u64>,
) -> Result<FaultPlan, String> {
    let mut plan = match file {
        Some(p) => FaultPlan::load(p).map_err(|e| e.to_string())?,
        None => FaultPlan::new(DEFAULT_SEED),
    };
    for f in specs {
        plan.extend(f.clone());
    }
    if let Some(s) = seed {
        plan.seed = s;
    }
    Ok(plan)
}

pub fn run(a: Args, quiet: bool) -> ExitCode {
    if let Err(e) = a.out.validate() {
        eprintln!("nicqual: {e}");
        return ExitCode::from(2);
    }
    let plan = match build_plan(&a) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nicqual: {e}");
            return ExitCode::from(2);
        }
    };
    let spec = a.device.to_string();
    let select = Selection { check: a.check.clone(), skip: a.skip.clone() };
    let names = all_checks(&a.device, &a.groups());
    if a.list_checks {
        let wanted = names.iter().filter(|n| select.wants(n)).map(String::as_str);
        // With --lava: the LAVA case names the run would report (docs/LAB.md).
        let list: Vec<String> =
            if a.out.lava.is_some() { rep::lava::case_names(wanted) } else { wanted.map(str::to_string).collect() };
        for n in list {
            println!("{n}");
        }
        return ExitCode::SUCCESS;
    }
    if !names.iter().any(|n| select.wants(n)) {
        eprintln!("nicqual: no check of {spec} matches --check/--skip (list them with --list-checks)");
        return ExitCode::from(2);
    }
    if a.pcap.is_some() && matches!(a.device, DeviceSpec::Vfio(_)) {
        eprintln!("nicqual: --pcap: a real function's wire is not visible to nicqual; capture on its link partner");
        return ExitCode::from(2);
    }
    if a.inject_bug.is_some() && !matches!(a.device, DeviceSpec::Vfio(_)) {
        eprintln!("nicqual: --inject-bug applies to vfio devices only, not {spec}");
        return ExitCode::from(2);
    }
    match a.device {
        DeviceSpec::ModelI82574 => {
            // Refuse what cannot apply: a vector or IVAR entry the 82574L does not have.
            if let Err(e) = plan.validate_for(i82574_fault_target()) {
                eprintln!("nicqual: fault plan for {spec}: {e}");
                return ExitCode::from(2);
            }
            let mut model = Model::new(Config::default());
            // With --pcap the port is on a cable to nobody, tapped: what the device puts on
            // its wire (MAC loopback traffic never gets there).
            let cable = nicqual_model::wire::Cable::new();
            if let Some(p) = &a.pcap {
                if let Some(e) = pcap_clashes(&a) {
                    eprintln!("nicqual: {e}");
                    return ExitCode::from(2);
                }
                if let Err(e) = cable.tap(nicqual_model::wire::Direction::AToB, p) {
                    eprintln!("nicqual: --pcap {}: {e}", p.display());
                    return ExitCode::from(2);
                }
                model.connect(cable.ends().0);
            }
            let backend = EmulatedBackend::new(model, spec.clone());
            let armed = plan.clone();
            // Fault times count from the moment the driver attached.
            let code = qualify_on(
                backend,
                &spec,
                &a,
                plan,
                quiet,
                DeviceOptions::default(),
                move |b| {
                    b.device_mut().arm_faults(armed);
                    Vec::new()
                },
                |_| Vec::new(),
            );
            if let Some(p) = &a.pcap {
                say_pcap(p, cable.close_tap(nicqual_model::wire::Direction::AToB));
            }
            code
        }
        DeviceSpec::QemuE1000e | DeviceSpec::Qemu11E1000e => {
            let (qemu, options) = a.device.qemu().unwrap_or_default();
            // QEMU's model cannot be made to misbehave: a fault asked for is refused (it
            // would let the run pass without the fault), and the row says so.
            if a.has_faults() {
                eprintln!(
                    "nicqual: {spec} takes no fault plan (QEMU's e1000e cannot be made to misbehave); faults apply to model:i82574l"
                );
                return ExitCode::from(2);
            }
            let na = vec![CheckReport::new(
                "fault-injection",
                CheckResult::Na,
                "QEMU's e1000e cannot be made to misbehave: fault plans apply to model:i82574l only",
            )];
            let tap: Option<Tap> = match &a.pcap {
                None => None,
                Some(p) => {
                    if let Some(e) = pcap_clashes(&a) {
                        eprintln!("nicqual: {e}");
                        return ExitCode::from(2);
                    }
                    match nicqual_model::wire::PcapTap::create(p) {
                        Ok(t) => Some(std::rc::Rc::new(std::cell::RefCell::new(t))),
                        Err(e) => {
                            eprintln!("nicqual: --pcap {}: {e}", p.display());
                            return ExitCode::from(2);
                        }
                    }
                }
            };
            let spawned = QtestBackend::spawn(Target::Qemu(qemu)).map(|mut b| {
                if let Some(t) = &tap {
                    let t = std::rc::Rc::clone(t);
                    b.set_wire_capture(Box::new(move |frame, ns| {
                        let _ = t.borrow_mut().record(frame, ns);
                    }));
                }
                b
            });
            let code = match spawned {
                Ok(b) => qualify_on(
                    b,
                    &spec,
                    &a,
                    plan,
                    quiet,
                    options,
                    move |_| na,
                    |d| {
                        // Frames through the port, with the backend as link partner.
                        vec![nicqual_qualify::wire_socket::wire_check(d)]
                    },
                ),
                Err(e) => could_not_run(&spec, "qtest", &a, &plan, format!("cannot start {spec}: {e}")),
            };
            if let (Some(p), Some(t)) = (&a.pcap, tap) {
                let finished = std::rc::Rc::try_unwrap(t)
                    .map_err(|_| std::io::Error::other("still held by the backend"))
                    .and_then(|t| t.into_inner().finish());
                say_pcap(p, finished);
            }
            code
        }
        DeviceSpec::Vfio(ref addr) => crate::vfio_cli::qualify(addr, &a, plan, quiet),
        DeviceSpec::ModelBnx2x(id) => crate::qualify_bnx2x::run(id, &spec, &a, plan, quiet),
        DeviceSpec::ModelEnic { vf } => qualify_enic(&a, &spec, plan, quiet, vf),
    }
}

/// `qualify --device model:enic`: the enic suite (`nicqual_qualify::enic`) on the emulated
/// vNIC (adapter MTU 9000, as a jumbo UCS adapter policy sets it), then teardown, the
/// table and the record, as for the 82574L.
fn qualify_enic(a: &Args, spec: &str, plan: FaultPlan, quiet: bool, vf: bool) -> ExitCode {
    use nicqual_model::enic::{EnicConfig, EnicDevice, EnicFaultPlan};
    if let Err(e) = plan.validate_for(EnicDevice::fault_target()) {
        eprintln!("nicqual: fault plan for {spec}: {e}");
        return ExitCode::from(2);
    }
    if plan.faults.iter().any(|f| matches!(f.kind, nicqual_model::FaultKind::StallConsumer { .. })) {
        // The model freezes a WQ's fetch_index, but the enic driver never reads it (it
        // frees WQ slots from completions): no check could see the fault act.
        eprintln!(
            "nicqual: fault plan for {spec}: stall-consumer freezes a WQ fetch_index no enic check reads; refused"
        );
        return ExitCode::from(2);
    }
    if a.pcap.is_some() {
        eprintln!("nicqual: --pcap: {spec}'s traffic stays in the adapter's loopback, nothing reaches a wire");
        return ExitCode::from(2);
    }
    if a.repeat > 1 {
        eprintln!("nicqual: --repeat applies to the 82574L suite; {spec} runs its suite once");
        return ExitCode::from(2);
    }
    let select = Selection { check: a.check.clone(), skip: a.skip.clone() };
    let dev =
        EnicDevice::with_config(EnicConfig { vnic_mtu: 9000, vf, ..EnicConfig::default() }, EnicFaultPlan::none());
    let mut backend = EmulatedBackend::new(dev, spec.to_string());
    let info = backend.info();
    let mut id = [0u32; 4];
    for (v, off) in id.iter_mut().zip([0u16, 0x2C, 0x08, 0x04]) {
        *v = backend.config_read(off, 4).unwrap_or(u32::MAX);
    }
    let started_at = rep::now_rfc3339();
    let t0 = std::time::Instant::now();
    let to_stdout = !a.out.uses_stdout();
    let say = |line: String| {
        if to_stdout { println!("{line}") } else { eprintln!("{line}") }
    };
    let progress = Progress::new(
        nicqual_qualify::enic::check_names(nicqual_model::enic::QUEUES as u32).len() as u64 + 2,
        "qualify",
        quiet,
    );
    progress.step("attach");
    let armed = plan.clone();
    let run = nicqual_qualify::enic::run_suite(
        backend,
        &select,
        move |b| b.device_mut().arm_faults(armed),
        |n| {
            progress.step(n);
            progress.inc();
        },
    );
    let run = match run {
        Ok(r) => r,
        Err(e) => {
            progress.finish();
            eprintln!("nicqual: attach to {spec} failed: {e}");
            return ExitCode::from(1);
        }
    };
    let mut checks = run.checks;
    progress.step("teardown");
    let (mac, t_end) = match run.driver {
        Some(mut drv) => {
            let mac = drv.mac();
            let gone = drv.backend_mut().read32(nicqual_hw::enic::BAR_REGS, 0) == u32::MAX;
            let t_end = drv.backend().now_ns();
            let (balance, backend) = drv.close();
            let mut closes = run.closes;
            closes.push(balance);
            if select.wants("teardown") {
                checks.push(nicqual_qualify::enic::teardown(teardown_check(&backend, gone, "teardown"), &closes));
            }
            (Some(mac), t_end)
        }
        None => {
            if select.wants("teardown") {
                checks.push(CheckReport::new(
                    "teardown",
                    CheckResult::Na,
                    "a re-attach failed and released the backend with it: nothing left to tear down",
                ));
            }
            (None, 0)
        }
    };
    progress.inc();
    progress.finish();
    let checks: Vec<rep::Check> = checks.iter().map(record::check).collect();
    let summary = rep::Summary::of(&checks);
    let verdict = summary.verdict();
    let device = rep::Device {
        spec: spec.into(),
        name: Some(format!("Cisco VIC vNIC{} (nicqual model)", if vf { " VF" } else { "" })),
        vendor_id: format!("{:04x}", id[0] & 0xFFFF),
        device_id: format!("{:04x}", id[0] >> 16),
        subsystem_vendor_id: format!("{:04x}", id[1] & 0xFFFF),
        subsystem_id: format!("{:04x}", id[1] >> 16),
        revision: Some((id[2] & 0xFF) as u8),
        mac: mac.map(record::fmt_mac),
        driver: "nicqual-nics enic".into(),
        ..Default::default()
    };
    let mut rec = run_record(started_at, record::backend(&info), device, &plan, checks);
    rec.duration_ns = t_end;
    rec.wall_ns = t0.elapsed().as_nanos() as u64;
    rec.replay = (verdict != rep::Verdict::Pass).then(|| format!("nicqual {}", replay_args(a, plan.seed)));
    let written = a.out.write(&rec);
    print_outcome(&rec, info.virtual_time, t0, &say);
    if let Err(e) = written {
        eprintln!("nicqual: {e}");
        return ExitCode::from(2);
    }
    ExitCode::from(rec.verdict.exit_code())
}

/// A qualify run record for `checks` (summary and verdict derived from them).
pub(crate) fn run_record(
    started_at: String,
    backend: rep::BackendInfo,
    device: rep::Device,
    plan: &FaultPlan,
    checks: Vec<rep::Check>,
) -> rep::RunRecord {
    let summary = rep::Summary::of(&checks);
    rep::RunRecord {
        schema: rep::SCHEMA.to_string(),
        kind: "qualify".into(),
        tool: rep::Tool::this(),
        host: rep::Host::this(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started_at: Some(started_at),
        backend,
        device,
        seed: plan.seed,
        fault_plan: serde_json::to_value(plan).unwrap_or_default(),
        verdict: summary.verdict(),
        summary,
        checks,
        duration_ns: 0,
        wall_ns: 0,
        replay: None,
        timelines: rep::Timelines::default(),
    }
}

/// The run could not be carried out (the environment, not the device: QEMU missing, no
/// IOMMU, no such function, permissions): say why, write the record with verdict `error`
/// where one was asked for, exit 3.
pub(crate) fn could_not_run(spec: &str, kind: &str, a: &Args, plan: &FaultPlan, why: String) -> ExitCode {
    eprintln!("nicqual: {why}");
    let checks = vec![record::check(&CheckReport::new("environment", CheckResult::Error, why))];
    let backend =
        rep::BackendInfo { kind: kind.into(), name: spec.into(), virtual_time: false, msix_table_access: false };
    let device = rep::Device { spec: spec.into(), ..Default::default() };
    let rec = run_record(rep::now_rfc3339(), backend, device, plan, checks);
    if let Err(e) = a.out.write(&rec) {
        eprintln!("nicqual: {e}");
    }
    ExitCode::from(rep::Verdict::Error.exit_code())
}

/// Attach the driver to `backend` with `opts.driver`, let `arm` inject faults (it returns
/// reports for checks the backend cannot run), run the suite with `opts.suite`, let `extra`
/// run backend-specific checks on the attached driver, tear down, report. Generic over the
/// backend: the same code drives every kind of device.
#[allow(clippy::too_many_arguments)]
pub(crate) fn qualify_on<B: Backend>(
    backend: B,
    spec: &str,
    a: &Args,
    plan: FaultPlan,
    quiet: bool,
    mut opts: DeviceOptions,
    arm: impl FnOnce(&mut B) -> Vec<CheckReport>,
    extra: impl FnOnce(&mut I82574<B>) -> Vec<CheckReport>,
) -> ExitCode {
    let select = Selection { check: a.check.clone(), skip: a.skip.clone() };
    opts.suite.select = select.clone();
    let groups = a.groups();
    let info = backend.info();
    let started_at = rep::now_rfc3339();
    let t0 = std::time::Instant::now();
    // Table and messages go to stderr when a report owns stdout (`--ktap`, `--json -`).
    let to_stdout = !a.out.uses_stdout();
    let say = |line: String| {
        if to_stdout { println!("{line}") } else { eprintln!("{line}") }
    };
    // Steps: per group attach, its checks (each repeat) and teardown; then the reports.
    let steps: u64 = groups.iter().map(|&q| check_names_for(q).len() as u64 * u64::from(a.repeat) + 2).sum();
    let progress = Progress::new(steps + 1, "qualify", quiet);
    if !quiet && !progress.is_visible() {
        eprintln!(
            "nicqual: qualifying {spec} (seed {}, {} fault{})",
            plan.seed,
            plan.faults.len(),
            if plan.faults.len() == 1 { "" } else { "s" }
        );
    }
    let (mut arm, mut extra) = (Some(arm), Some(extra));
    let mut backend = Some(backend);
    let mut checks = Vec::new();
    let mut not_applicable = Vec::new();
    let mut t_start = None;
    let mut interrupts = None;
    let (mut id, mut mac, mut nvm, mut pci_link, mut gone) = (None, None, None, None, false);
    for (gi, &q) in groups.iter().enumerate() {
        let prefix = group_prefix(q);
        let last = gi + 1 == groups.len();
        let Some(b) = backend.take() else { break };
        if gone {
            // The device went away in an earlier group: this group's checks did not run.
            let why = "not run: the device was gone in an earlier group";
            checks.extend(
                check_names_for(q)
                    .into_iter()
                    .chain([format!("{prefix}teardown")])
                    .filter(|n| select.wants(n))
                    .map(|n| CheckReport::new(n, CheckResult::Na, why)),
            );
            backend = Some(b);
            continue;
        }
        progress.step("attach");
        let mut dopts = opts.driver.clone();
        dopts.queue_pairs = q;
        let mut drv = match I82574::attach(b, dopts) {
            Ok(d) => d,
            Err(e) => {
                progress.finish();
                eprintln!("nicqual: attach to {spec} ({q} queue pair(s)) failed: {e}");
                return ExitCode::from(1);
            }
        };
        progress.inc();
        // Faults are armed once, at the first attach (their times count from there).
        if let Some(arm) = arm.take() {
            not_applicable = arm(drv.backend_mut());
        }
        t_start.get_or_insert(drv.backend().now_ns());
        progress.step("checks");
        let mut runs = Vec::new();
        for _ in 0..a.repeat {
            runs.push(run_suite_with(&mut drv, &opts.suite, &mut |c| {
                progress.step(&c.name);
                progress.inc();
            }));
        }
        checks.extend(if a.repeat > 1 { merge_repeats(runs) } else { runs.into_iter().flatten().collect() });
        if last {
            // The device's own checks (QEMU's wire, VFIO's DMA probe) run only when one of
            // them is selected, on the last group's driver.
            if let Some(extra) = extra.take()
                && ["wire[socket]", "dma-tx", "iommu-faults"].iter().any(|n| select.wants(n))
            {
                checks.extend(extra(&mut drv).into_iter().filter(|c| select.wants(&c.name)));
            }
            checks.extend(std::mem::take(&mut not_applicable).into_iter().filter(|c| select.wants(&c.name)));
        }
        id = Some(drv.identity());
        mac = drv.mac().or(mac);
        gone = drv.is_gone();
        // What the record says about the part: its NVM version and its PCIe link.
        if !gone {
            nvm = drv.read_eeprom(0x05).ok().or(nvm);
            pci_link = nicqual_pci::caps::pcie_link(|off, size| drv.backend_mut().config_read(off, size))
                .ok()
                .flatten()
                .or(pci_link);
        }
        // The interrupt timeline of the record is the first group's (vector numbers mean
        // different entries in the two plans).
        if interrupts.is_none() {
            interrupts = record::interrupts(&drv.irq_log, drv.plan(), drv.options().irq_bound_ns);
        }
        progress.step("teardown");
        let b = drv.shutdown();
        if select.wants(&format!("{prefix}teardown")) {
            checks.push(teardown_check(&b, gone, &format!("{prefix}teardown")));
        }
        progress.inc();
        backend = Some(b);
    }
    let Some(id) = id else {
        progress.finish();
        eprintln!("nicqual: no queue-pair group ran on {spec}");
        return ExitCode::from(2);
    };
    let t_end = backend.as_ref().map_or(0, |b| b.now_ns()).saturating_sub(t_start.unwrap_or(0));
    progress.step("reports");

    let mut checks: Vec<rep::Check> = checks.iter().map(record::check).collect();
    // Each suite check names its queue-pair group in `group` too (the device's own checks
    // belong to neither).
    let linux: Vec<String> = check_names_for(1).into_iter().chain(["teardown".to_string()]).collect();
    for c in &mut checks {
        if c.name.starts_with(group_prefix(2)) {
            c.group = Some("queues=2".into());
        } else if linux.contains(&c.name) {
            c.group = Some("queues=1".into());
        }
    }
    let summary = rep::Summary::of(&checks);
    let verdict = summary.verdict();
    let ok = verdict == rep::Verdict::Pass;
    let replay = (!ok).then(|| format!("nicqual {}", replay_args(a, plan.seed)));
    let mut rec = run_record(
        started_at,
        record::backend(&info),
        record::device(spec, &info, id, mac, nvm, pci_link),
        &plan,
        checks,
    );
    rec.duration_ns = t_end;
    rec.wall_ns = t0.elapsed().as_nanos() as u64;
    rec.replay = replay;
    rec.timelines = rep::Timelines { interrupts, ..Default::default() };
    finish_run(&rec, a, progress, info.virtual_time, t0, &say)
}

/// Write the record's outputs, print the outcome, and exit with the verdict's code (2 if
/// an output could not be written).
pub(crate) fn finish_run(
    rec: &rep::RunRecord,
    a: &Args,
    progress: Progress,
    virtual_time: bool,
    t0: std::time::Instant,
    say: &impl Fn(String),
) -> ExitCode {
    let written = a.out.write(rec);
    progress.inc();
    progress.finish();
    print_outcome(rec, virtual_time, t0, say);
    if let Err(e) = written {
        eprintln!("nicqual: {e}");
        return ExitCode::from(2);
    }
    ExitCode::from(rec.verdict.exit_code())
}

/// The command line that replays this run exactly (same seed).
pub(crate) fn replay_args(a: &Args, seed: u64) -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if a.seed.is_some() {
        return args.join(" ");
    }
    let mut v = args;
    let pos = v.iter().position(|s| s == "qualify").map_or(v.len(), |p| p + 1);
    v.insert(pos, format!("--seed {seed}"));
    v.join(" ")
}

pub(crate) fn teardown_check<B: Backend>(b: &B, gone: bool, name: &str) -> CheckReport {
    let maps = b.live_mappings();
    let msix = b.msix_vectors();
    let faults = b.dma_faults().map_or(String::new(), |f| format!(", {f} DMA fault(s) recorded by the IOMMU"));
    let result = if maps == 0 && msix == 0 { CheckResult::Pass } else { CheckResult::Fail };
    CheckReport::new(
        name,
        result,
        format!(
            "{}MSI-X {}, {maps} DMA mapping(s) left{faults}",
            if gone { "device gone: no register touched; " } else { "interrupts masked; " },
            if msix == 0 { "disabled" } else { "still enabled" }
        ),
    )
}

/// The table, the verdict line and the replay command of a finished run.
pub(crate) fn print_outcome(rec: &rep::RunRecord, virtual_time: bool, t0: std::time::Instant, say: &impl Fn(String)) {
    print_table(&rec.checks, say);
    let s = &rec.summary;
    say(format!(
        "\n{}: {} passed, {} failed, {} not applicable, {} errors; seed {}; {:.1} ms {}, {:.1} ms wall",
        rec.verdict.as_str().to_uppercase(),
        s.pass,
        s.fail,
        s.na,
        s.error,
        rec.seed,
        rec.duration_ns as f64 / 1e6,
        if virtual_time { "virtual" } else { "device clock" },
        t0.elapsed().as_secs_f64() * 1e3
    ));
    if let Some(r) = &rec.replay {
        say(format!("replay: {r}"));
    }
}

pub(crate) fn print_table(checks: &[rep::Check], say: &impl Fn(String)) {
    let w = checks.iter().map(|c| c.name.len()).max().unwrap_or(5).max(5);
    say(format!("{:<w$}  {:<6} {:>10}  detail", "check", "result", "time"));
    say("-".repeat(w + 30));
    for c in checks {
        let t = if c.duration_ns >= 1_000_000 {
            format!("{:.1} ms", c.duration_ns as f64 / 1e6)
        } else {
            format!("{:.1} us", c.duration_ns as f64 / 1e3)
        };
        // Names and details come from devices and the command line: one line each, always.
        let (name, detail) = (rep::printable(&c.name), rep::printable(&c.detail));
        say(format!("{name:<w$}  {:<6} {t:>10}  {detail}", c.result.as_str().to_uppercase()));
    }
}
