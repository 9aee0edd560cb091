//! The VFIO side of the command line: `nicqual devices` (real PCI NICs), `nicqual bind`,
//! `nicqual unbind`, and opening `vfio:ADDR` for `qualify`.

use crate::qualify::{Args, qualify_on};
use nicqual_backends::vfio::sysfs;
use nicqual_backends::vfio::{Host, PciAddr, VfioBackend, VfioError, Viability};
use nicqual_hw::pci;
use nicqual_model::FaultPlan;
use nicqual_nics::i82574::{I82574, Options};
use nicqual_pci::{Backend, CheckReport, CheckResult};
use nicqual_qualify::deviations::DeviceOptions;
use nicqual_qualify::vfio_probe as probe;
use std::path::PathBuf;
use std::process::ExitCode;

/// Deliberate driver bugs (hidden `--inject-bug`), each of which a qualification run must
/// catch and report rather than hang on.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Hand the device a buffer address at an IOVA that was never mapped.
    DmaUnmappedIova,
}

/// Where the kernel's interfaces are (tests point these at a fake tree).
#[derive(clap::Args, Debug, Clone)]
pub struct HostArgs {
    /// sysfs root.
    #[arg(long, default_value = "/sys", hide = true)]
    sysfs_root: PathBuf,
    /// /dev root.
    #[arg(long, default_value = "/dev", hide = true)]
    dev_root: PathBuf,
    /// Where `bind` remembers each function's original driver for `unbind`.
    #[arg(long, default_value = "/run/nicqual", hide = true)]
    state_dir: PathBuf,
    /// procfs root (`bind` reads the routing tables there).
    #[arg(long, default_value = "/proc", hide = true)]
    proc_root: PathBuf,
}

impl HostArgs {
    pub fn host(&self) -> Host {
        Host::with_root(&self.sysfs_root, &self.dev_root, &self.state_dir).with_proc(&self.proc_root)
    }
}

impl Default for HostArgs {
    fn default() -> Self {
        HostArgs {
            sysfs_root: "/sys".into(),
            dev_root: "/dev".into(),
            state_dir: "/run/nicqual".into(),
            proc_root: "/proc".into(),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct AddrArgs {
    /// PCI address of the function (DDDD:BB:DD.F, as `nicqual devices` lists it).
    addr: String,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(clap::Args, Debug)]
pub struct BindArgs {
    #[command(flatten)]
    target: AddrArgs,
    /// Bind even a function nicqual refuses (its interface up or routed, not a network
    /// controller, a host bridge); the reasons overridden are printed.
    #[arg(long)]
    force: bool,
}

fn fmt_limit(v: u64) -> String {
    if v == u64::MAX { "unlimited".into() } else { format!("{} KiB", v / 1024) }
}

/// Print the real PCI network functions and what VFIO needs for each.
pub fn list(host: &Host) {
    let groups = host.sys.join("kernel/iommu_groups");
    let iommu = if host.iommu_enabled() {
        "enabled".to_string()
    } else if host.noiommu_mode() {
        "NO-IOMMU mode (unsafe; nicqual refuses such groups)".to_string()
    } else {
        format!(
            "disabled ({} empty): enable VT-d/AMD-Vi and boot with intel_iommu=on or amd_iommu=on",
            groups.display()
        )
    };
    let memlock = sysfs::memlock_limit();
    println!("\nreal PCI network functions (VFIO):");
    println!(
        "  IOMMU: {iommu}; vfio-pci: {}; RLIMIT_MEMLOCK: {}{}",
        if host.vfio_pci_loaded() { "loaded" } else { "not loaded (modprobe vfio-pci)" },
        fmt_limit(memlock),
        if sysfs::has_ipc_lock() { " (CAP_IPC_LOCK: not enforced)" } else { "" }
    );
    let funcs = match host.pci_functions() {
        Ok(f) => f,
        Err(e) => {
            println!("  cannot list PCI functions: {e}");
            return;
        }
    };
    let nics: Vec<_> = funcs.iter().filter(|f| f.is_network() || f.driver.as_deref() == Some("vfio-pci")).collect();
    if nics.is_empty() {
        println!("  (none)");
        return;
    }
    println!("  {:<14} {:<10} {:<10} {:<6} {:<11} next step", "address", "pci id", "driver", "group", "viable");
    for f in nics {
        let viab = host.viability(f);
        let (v, note) = match &viab {
            Viability::Viable => ("yes", String::new()),
            Viability::NoGroup => ("no group", "IOMMU off for it".to_string()),
            Viability::NotViable(b) => (
                "no",
                format!(
                    "also bind: {}",
                    b.iter().map(|b| format!("{} ({})", b.addr, b.driver)).collect::<Vec<_>>().join(", ")
                ),
            ),
        };
        let next = if f.driver.as_deref() == Some("vfio-pci") {
            if matches!(viab, Viability::Viable) { format!("nicqual qualify --device vfio:{}", f.addr) } else { note }
        } else if note.is_empty() {
            format!("nicqual bind {}", f.addr)
        } else {
            note
        };
        println!(
            "  {:<14} {:<10} {:<10} {:<6} {:<11} {next}",
            f.addr,
            format!("{:04x}:{:04x}", f.vendor, f.device),
            f.driver_name(),
            f.iommu_group.map_or("-".to_string(), |g| g.to_string()),
            v
        );
    }
    let iommufd = host.dev.join("iommu").exists();
    println!(
        "  iommufd: {}",
        if iommufd {
            "/dev/iommu present (the container interface is used)"
        } else {
            "no /dev/iommu (kernel < 6.6 or IOMMUFD off): container interface"
        }
    );
}

fn parse(addr: &str) -> Result<PciAddr, ExitCode> {
    addr.parse().map_err(|e: VfioError| {
        eprintln!("nicqual: {e}");
        ExitCode::from(2)
    })
}

/// Exit codes of `bind` and `unbind`: 0 done, 1 the kernel did not do what was asked (a
/// failed bind is rolled back), 2 usage or refused (a refusal, a bad state file, a function
/// nicqual did not bind, a malformed address), 3 environment (no sysfs, no such function,
/// vfio-pci not loaded, IOMMU off, permission denied), as the table in `--help`.
fn bind_exit(e: &VfioError) -> ExitCode {
    let env = |s: &std::io::Error| {
        matches!(s.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem)
    };
    let code = match e {
        VfioError::Refused { .. }
        | VfioError::BadStateFile { .. }
        | VfioError::NotBoundByNicqual { .. }
        | VfioError::BadAddress { .. } => 2,
        VfioError::NoDevice { .. }
        | VfioError::VfioPciMissing { .. }
        | VfioError::Permission { .. }
        | VfioError::IommuDisabled { .. } => 3,
        VfioError::Sysfs { source, .. } | VfioError::Open { source, .. } if env(source) => 3,
        // The routing table unreadable: procfs is not there.
        VfioError::Sysfs { path, .. } if path.ends_with("net/route") => 3,
        _ => 1,
    };
    ExitCode::from(code)
}

/// The sysfs tree bind and unbind work on, or exit 3 when it is not there.
fn sysfs_host(h: &HostArgs) -> Result<Host, ExitCode> {
    let host = h.host();
    let devs = host.sys.join("bus/pci/devices");
    if devs.is_dir() {
        Ok(host)
    } else {
        eprintln!("nicqual: no sysfs PCI tree at {} (is sysfs mounted?)", devs.display());
        Err(ExitCode::from(3))
    }
}

pub fn bind(a: BindArgs) -> ExitCode {
    let (addr, host) = match parse(&a.target.addr).and_then(|addr| Ok((addr, sysfs_host(&a.target.host)?))) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let f = match host.function(&addr) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nicqual: bind {addr}: {e}");
            return bind_exit(&e);
        }
    };
    if a.force && f.driver.as_deref() != Some("vfio-pci") {
        match host.bind_refusals(&f) {
            Ok(r) => r.iter().for_each(|r| eprintln!("nicqual: --force: overriding: {r}")),
            Err(e) => eprintln!("nicqual: --force: could not check whether {addr} is safe to bind: {e}"),
        }
    }
    match host.bind(&addr, a.force) {
        Ok(b) => {
            let group = host.function(&addr).ok().and_then(|f| f.iommu_group);
            let was = if b.already { "already" } else { b.previous.as_deref().unwrap_or("unbound") };
            println!(
                "{addr}: bound to vfio-pci (was {was}); IOMMU group {}",
                group.map_or("-".into(), |g| g.to_string())
            );
            if let Some(g) = group {
                let f = host.function(&addr).ok();
                if let Some(Viability::NotViable(b)) = f.as_ref().map(|f| host.viability(f)) {
                    let others: Vec<String> = b.iter().map(|b| format!("{} ({})", b.addr, b.driver)).collect();
                    println!("note: group {g} is not viable until these are bound too: {}", others.join(", "));
                }
                let dev = host.group_dev(g);
                check_dev_access(&dev);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nicqual: bind {addr}: {e}");
            match &e {
                VfioError::BindRolledBack { cause, .. } if bind_exit(cause) == ExitCode::from(3) => ExitCode::from(3),
                e => bind_exit(e),
            }
        }
    }
}

fn check_dev_access(dev: &std::path::Path) {
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        let e = VfioError::open(dev, e);
        println!("note: {e}");
    }
}

pub fn unbind(a: AddrArgs) -> ExitCode {
    let (addr, host) = match parse(&a.addr).and_then(|addr| Ok((addr, sysfs_host(&a.host)?))) {
        Ok(x) => x,
        Err(c) => return c,
    };
    match host.unbind(&addr) {
        Ok(now) => {
            println!("{addr}: released from vfio-pci; now bound to {}", now.as_deref().unwrap_or("(no driver)"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nicqual: unbind {addr}: {e}");
            bind_exit(&e)
        }
    }
}

/// Interrupt bounds for real devices: a message crosses the host's interrupt path (and,
/// under an emulator, a vCPU scheduling delay), so the bound is wider than on the model.
/// QEMU's e1000e (subsystem 8086:0000, as QEMU presents it) gets QEMU's known quirks.
pub fn real_device_options(qemu_e1000e: bool) -> DeviceOptions {
    let base = if qemu_e1000e { nicqual_qualify::deviations::qemu_e1000e_options() } else { DeviceOptions::default() };
    DeviceOptions { driver: Options { irq_bound_ns: 200_000_000, poll_step_ns: 100_000, ..base.driver }, ..base }
}

/// `nicqual qualify --device vfio:ADDR`.
pub fn qualify(addr: &str, a: &Args, plan: FaultPlan, quiet: bool) -> ExitCode {
    let spec = format!("vfio:{addr}");
    if a.has_faults() {
        eprintln!(
            "nicqual: fault plans are injected into the emulated device; {spec} is a real function, whose own faults are what qualify measures"
        );
        return ExitCode::from(2);
    }
    let addr = match parse(addr) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let mut backend = match VfioBackend::open(&a.host.host(), &addr) {
        Ok(b) => b,
        // No such function, no IOMMU, not bound to vfio-pci, permissions: the environment
        // stopped the run, not the device (exit 3, a record with verdict `error`).
        Err(e) => return crate::qualify::could_not_run(&spec, "vfio", a, &plan, format!("{spec}: {e}")),
    };
    let subsys = (
        backend.config_read(pci::SUBSYSTEM_VENDOR_ID, 2).unwrap_or(0),
        backend.config_read(pci::SUBSYSTEM_ID, 2).unwrap_or(0),
    );
    let qemu = subsys == (0x8086, 0);
    let mut setup = backend.setup().summary();
    if qemu {
        setup.push_str("; subsystem 8086:0000 = QEMU's e1000e: its known register quirks are skipped");
    }
    let bug = a.inject_bug;
    let reports = vec![
        CheckReport::new("vfio-setup", CheckResult::Pass, setup),
        CheckReport::new(
            "fault-injection",
            CheckResult::Na,
            "faults are injected into the emulated device only; a real function is qualified as it is",
        ),
    ];
    qualify_on(
        backend,
        &spec,
        a,
        plan,
        quiet,
        real_device_options(qemu),
        move |_| reports,
        move |drv| {
            let mut v = vec![dma_check(drv, bug)];
            v.push(iommu_fault_check(drv.backend()));
            v
        },
    )
}

/// `dma-tx`: one frame through a one-descriptor ring at the driver's IOVAs; the IOMMU must
/// translate the descriptor fetch, the buffer read and the write-back, and log no fault.
fn dma_check(drv: &mut I82574<VfioBackend>, bug: Option<Bug>) -> CheckReport {
    let wrong = (bug == Some(Bug::DmaUnmappedIova)).then_some(probe::UNMAPPED_IOVA);
    if wrong.is_some() {
        tracing::warn!(target: "nicqual::vfio", "deliberate bug: the TX descriptor points at unmapped IOVA {:#x}", probe::UNMAPPED_IOVA);
    }
    let p = match probe::tx_probe(drv, wrong, 200_000_000, 500_000_000) {
        Ok(p) => p,
        Err(e) => return CheckReport::new("dma-tx", CheckResult::Fail, e.to_string()),
    };
    let faults = drv.backend().iommu_faults().unwrap_or_default();
    let where_ = format!(
        "ring at IOVA {:#x}, buffer at IOVA {:#x}{}",
        probe::RING_IOVA,
        p.buf_iova,
        if wrong.is_some() { " (deliberately unmapped)" } else { "" }
    );
    match (p.new_faults, p.written_back) {
        (Some(n), _) if n > 0 => CheckReport::new(
            "dma-tx",
            CheckResult::Fail,
            format!(
                "the IOMMU blocked {n} DMA(s) by the device ({where_}): {}",
                faults.last().map_or("(no log line)", String::as_str)
            ),
        ),
        (_, false) => CheckReport::new(
            "dma-tx",
            CheckResult::Fail,
            format!(
                "descriptor not written back (no DD) within {} ms; TDH={} ({where_})",
                p.waited_ns / 1_000_000,
                p.tdh
            ),
        ),
        (n, true) => CheckReport::new(
            "dma-tx",
            CheckResult::Pass,
            format!(
                "{}-byte frame sent, descriptor written back with DD in {} us, TDH={}; {where_}; {}",
                probe::FRAME_LEN,
                p.waited_ns / 1000,
                p.tdh,
                if n.is_some() { "no IOMMU fault logged" } else { "IOMMU faults not visible (kernel log unreadable)" }
            ),
        )
        .measure("writeback_latency", p.waited_ns as f64 / 1000.0, "us"),
    }
}

/// Every DMA the IOMMU blocked during the run is a failure (the kernel logged it).
fn iommu_fault_check(b: &VfioBackend) -> CheckReport {
    match b.iommu_faults() {
        None => CheckReport::new("iommu-faults", CheckResult::Na, "kernel log not readable (needs root or CAP_SYSLOG)"),
        Some(f) if f.is_empty() => CheckReport::new(
            "iommu-faults",
            CheckResult::Pass,
            format!("the kernel logged no IOMMU fault for {} during the run", b.setup().addr),
        ),
        Some(f) => CheckReport::new(
            "iommu-faults",
            CheckResult::Fail,
            format!(
                "{} IOMMU fault(s) for {}: {}",
                f.len(),
                b.setup().addr,
                f.iter().take(3).cloned().collect::<Vec<_>>().join(" | ")
            ),
        ),
    }
}
