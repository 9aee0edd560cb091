//! The VFIO backend against real kernel VFIO: a Debian kernel booted under QEMU with an
//! emulated Intel IOMMU and two e1000e NICs (QEMU's 82574L) on one hub. The guest binds the
//! NICs to vfio-pci with `nicqual bind` (after checking that it refuses the second while its
//! interface is up), runs `nicqual qualify --device vfio:ADDR --json -`
//! on one and the deliberate unmapped-IOVA bug on the other, gives both back with
//! `nicqual unbind`, and prints its kernel log; this side reads it all off the serial
//! console and asserts on it.
//!
//! Boots a VM (about a minute of TCG on 2 cores), so it is `#[ignore]`d in the plain
//! `cargo test` run and run by `make test-vfio` (part of `make test`). Needs the Debian
//! packages `qemu-system-x86 linux-image-amd64 busybox-static` (`make deps`); without them
//! it fails with the command that installs them. `NICQUAL_QEMU`, `NICQUAL_GUEST_KERNEL`
//! (a vmlinuz whose modules are in /lib/modules/VERSION) override what is found.

mod guest;

use guest::{Console, INSTALL, VFIO_MODULES, Vm, guest_kernel, initramfs};
use nicqual_report::{Outcome, RunRecord};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on the whole guest run (boot, three qualification runs, power-off).
const GUEST_BOUND: Duration = Duration::from_secs(270);

/// Boot the guest and collect its console (bounded by [`GUEST_BOUND`]).
fn run_guest() -> Console {
    let nicqual = PathBuf::from(env!("CARGO_BIN_EXE_nicqual"));
    let (kernel, modules) = guest_kernel();
    let dir = tempfile::tempdir().expect("temp dir");
    let initrd = dir.path().join("initramfs.cpio");
    let image = initramfs(include_bytes!("vfio_guest/init.sh"), &nicqual, &modules, VFIO_MODULES);
    std::fs::write(&initrd, image).expect("write initramfs");
    let qemu = std::env::var("NICQUAL_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into());
    let t0 = Instant::now();
    let child = Command::new(&qemu)
        .args(["-accel", "tcg", "-M", "q35,kernel-irqchip=split", "-cpu", "max", "-m", "512", "-smp", "1"])
        .args(["-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio"])
        .args(["-device", "intel-iommu,intremap=on,caching-mode=on"])
        .args(["-netdev", "hubport,id=n0,hubid=0", "-netdev", "hubport,id=n1,hubid=0"])
        .args(["-device", "e1000e,netdev=n0,romfile=,mac=52:54:00:12:34:01,addr=04.0"])
        .args(["-device", "e1000e,netdev=n1,romfile=,mac=52:54:00:12:34:02,addr=05.0"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 intel_iommu=on no_timer_check quiet panic=-1 rdinit=/init"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {qemu}: {e}; {INSTALL}"));
    let mut vm = Vm(child);
    let lines = guest::collect(&mut vm, GUEST_BOUND, t0);
    drop(vm);
    let c = Console::parse(lines);
    eprintln!("vfio guest: {:.1} s wall; {}", t0.elapsed().as_secs_f64(), c.marks("boot").join(" "));
    if !c.done {
        c.fail(&format!(
            "the guest did not finish within {} s (QEMU killed); last block: {:?}",
            GUEST_BOUND.as_secs(),
            c.lines.iter().rev().find(|l| l.starts_with("@@NQ begin"))
        ));
    }
    c
}

fn check<'a>(c: &Console, rec: &'a RunRecord, name: &str) -> &'a nicqual_report::Check {
    rec.checks
        .iter()
        .find(|k| k.name == name)
        .unwrap_or_else(|| c.fail(&format!("{}: no check named `{name}`", rec.device.spec)))
}

#[test]
#[ignore = "boots a QEMU guest with an IOMMU (about a minute): run by `make test-vfio`"]
fn vfio_backend_in_a_guest_with_an_iommu() {
    let c = run_guest();
    // What a user would see, for the log of `make test-vfio`.
    for name in [
        "devices-before",
        "bind-up-0000:00:05.0.stderr",
        "bind-0000:00:04.0",
        "qualify.stderr",
        "bug.stderr",
        "unbind-0000:00:04.0",
    ] {
        if let Some((out, _)) = c.block(name) {
            let rc = c.block(name.trim_end_matches(".stderr")).and_then(|b| b.1);
            eprintln!("--- guest: {name} (exit {rc:?}) ---\n{}", out.trim_end());
        }
    }
    if let Some(e) = c.marks("error").first() {
        c.fail(&format!("guest set-up: {e}"));
    }

    // Binding: both NICs started on e1000e, went to vfio-pci, and came back to e1000e.
    let before = c.marks("nic");
    let nics: Vec<(String, String, String)> = before
        .iter()
        .filter_map(|l| {
            let v: Vec<&str> = l.split_whitespace().collect();
            Some((v.first()?.to_string(), v.get(1)?.to_string(), v.get(2)?.to_string()))
        })
        .collect();
    let addrs: Vec<&str> = nics.iter().filter(|n| n.1 == "before").map(|n| n.0.as_str()).collect();
    if addrs.len() != 2 {
        c.fail(&format!("expected two e1000e functions in the guest, found {nics:?}"));
    }
    for (a, when, drv) in &nics {
        if drv != "e1000e" {
            c.fail(&format!("{a} {when} nicqual: bound to {drv}, expected e1000e"));
        }
    }
    for a in &addrs {
        for step in ["bind", "unbind"] {
            match c.block(&format!("{step}-{a}")) {
                Some((_, Some(0))) => {}
                b => {
                    c.fail(&format!("nicqual {step} {a}: {b:?}, stderr: {:?}", c.block(&format!("{step}-{a}.stderr"))))
                }
            }
        }
    }
    // Bind safety: the second NIC, its interface up, was refused (exit 2) with a message
    // naming the function and the interface, and stayed on e1000e (checked above).
    let b = addrs.get(1).copied().unwrap_or_default();
    let ifname = c.marks("iface").iter().find_map(|l| l.strip_prefix(&format!("{b} ")).map(str::to_string));
    let ifname = ifname.filter(|i| i != "none").unwrap_or_else(|| c.fail(&format!("{b} has no network interface")));
    let refusal = c.block(&format!("bind-up-{b}.stderr")).map(|x| x.0.clone()).unwrap_or_default();
    match c.block(&format!("bind-up-{b}")) {
        Some((_, Some(2)))
            if refusal.contains("refused") && refusal.contains(b) && refusal.contains(&format!("{ifname} up")) => {}
        r => c.fail(&format!("nicqual bind {b} with {ifname} up: {r:?}, stderr: {refusal:?}")),
    }
    if !nics.iter().any(|n| n.0 == b && n.1 == "while-up") {
        c.fail(&format!("no driver mark for {b} after the refused bind: {nics:?}"));
    }
    let listed = c.block("devices-bound").map(|b| b.0.as_str()).unwrap_or_default();
    for a in &addrs {
        let row = listed.lines().find(|l| l.trim_start().starts_with(a)).unwrap_or_default();
        if !(row.contains("vfio-pci") && row.contains("yes") && row.contains(&format!("vfio:{a}"))) {
            c.fail(&format!("`nicqual devices` after bind lists {a} as {row:?}\n{listed}"));
        }
    }

    // The qualification run: every check passed or is not applicable with a reason.
    let (rec, rc) = c.record("qualify");
    for k in &rec.checks {
        match k.result {
            Outcome::Pass => {}
            Outcome::Na if !k.detail.is_empty() => {}
            _ => c.fail(&format!("check `{}` {:?} on {}: {}", k.name, k.result, rec.device.spec, k.detail)),
        }
    }
    if rc != 0 {
        c.fail(&format!("qualify exited {rc} though every check passed"));
    }
    assert_eq!(rec.backend.kind, "vfio", "{:?}", rec.backend);
    assert_eq!(rec.device.vendor_id, "8086");
    assert_eq!(rec.device.device_id, "10d3");
    // Per-vector MSI-X delivery through the kernel's eventfds: every entry the driver
    // routes (RxQ0, TxQ0, Other on three vectors, as Linux e1000e) must arrive on its own
    // vector; the second queue pair is not routed and must say so.
    for e in ["RxQ0", "TxQ0", "Other", "RxQ1", "TxQ1"] {
        let k = check(&c, &rec, &format!("vector[{e}]"));
        let unrouted = k.result == Outcome::Na && k.detail.contains("not routed") && e.ends_with('1');
        if k.result != Outcome::Pass && !unrouted {
            c.fail(&format!("vector[{e}] must be delivered on VFIO: {:?} {}", k.result, k.detail));
        }
    }
    // The two-queue-pair group (`q2:`): five vectors from the kernel, every IVAR entry
    // routed and each delivered on its own vector.
    for e in ["RxQ0", "RxQ1", "TxQ0", "TxQ1", "Other"] {
        let k = check(&c, &rec, &format!("q2:vector[{e}]"));
        if k.result != Outcome::Pass {
            c.fail(&format!("q2:vector[{e}] must be delivered on VFIO: {:?} {}", k.result, k.detail));
        }
    }
    // RSS over both receive queues through the IOMMU: frames of seeded flows on the queue
    // RETA names, the hash equal to the driver's Toeplitz, each queue's frames byte-exact.
    for name in ["q2:rss-spread", "q2:rss-hash", "q2:rss-loopback"] {
        let k = check(&c, &rec, name);
        if k.result != Outcome::Pass {
            c.fail(&format!("{name}: {:?} {}", k.result, k.detail));
        }
    }
    // The kernel owns the MSI-X table: never read or written on this backend.
    for k in rec.checks.iter().filter(|k| k.name.trim_start_matches("q2:").starts_with("msix-table")) {
        assert_eq!(k.result, Outcome::Na, "{}: {}", k.name, k.detail);
    }
    // DMA through the IOMMU, frames through the NIC (MAC loopback, every byte compared
    // per frame), and no fault logged for the function.
    for name in [
        "vfio-setup",
        "dma-tx",
        "loopback[60]",
        "loopback[1514]",
        "loopback[9018]",
        "statistics",
        "iommu-faults",
        "teardown",
    ] {
        let k = check(&c, &rec, name);
        if k.result != Outcome::Pass {
            c.fail(&format!("{name}: {:?} {}", k.result, k.detail));
        }
    }
    assert!(check(&c, &rec, "dma-tx").detail.contains("no IOMMU fault logged"));

    // The deliberate bug: the IOMMU blocks the DMA, the kernel logs it, the run reports it
    // (the guest ran on, so it did not hang) and exits 1.
    let (bug, rc) = c.record("bug");
    let b = bug.device.pci_address.clone().unwrap_or_default();
    assert_eq!(rc, 1, "the deliberate-bug run must fail");
    let dma = check(&c, &bug, "dma-tx");
    if dma.result != Outcome::Fail || !dma.detail.contains("IOMMU blocked") {
        c.fail(&format!("deliberate bug not reported as an IOMMU fault: dma-tx {:?} {}", dma.result, dma.detail));
    }
    let faults = check(&c, &bug, "iommu-faults");
    assert_eq!(faults.result, Outcome::Fail, "{}", faults.detail);
    let bdf = b.get(5..).unwrap_or_default();
    let log = c.block("dmesg").map(|d| d.0.as_str()).unwrap_or_default();
    assert!(
        log.lines().any(|l| l.contains("DMAR") && l.contains(&format!("[{bdf}]")) && l.contains("fault addr")),
        "no DMAR fault for {bdf} in the guest kernel log:\n{}",
        c.kernel_log_tail()
    );
    // Only the buggy function faulted.
    let clean = addrs.iter().find(|a| **a != b).and_then(|a| a.get(5..)).unwrap_or_default();
    assert!(!log.lines().any(|l| l.contains("DMAR") && l.contains(&format!("[{clean}]"))), "{log}");
}
