//! The qtest backend on QEMU 11.1 (Debian forky root, `-accel qtest`): the same PCI set-up
//! and MSI-X observation as on QEMU 7.2, but on QEMU's virtual clock, so waits are exact
//! and cost no wall time; and neither QEMU nor a mount is left behind. Needs the forky
//! root (`make deps`, or `bash scripts/forky-root.sh build`); without it every test fails
//! with that command.

use nicqual_backends::qtest::{QemuConfig, QtestBackend, Target, forky};
use nicqual_hw::i82574::{self as r, Icr, IvarEntry};
use nicqual_nics::i82574::{I82574, Options};
use nicqual_pci::{Backend, BackendKind};
use std::time::Instant;

fn qemu11() -> QtestBackend {
    QtestBackend::spawn(Target::Qemu(QemuConfig::qemu11())).unwrap_or_else(|e| panic!("cannot start QEMU 11: {e}"))
}

#[test]
fn qemu11_identity_on_virtual_time_with_exact_waits() {
    let mut b = qemu11();
    let info = b.info();
    assert_eq!(info.kind, BackendKind::Qtest);
    assert_eq!(info.name, "qemu11:e1000e");
    assert!(info.virtual_time, "QEMU 11 under the qtest accelerator steps a virtual clock");
    assert_eq!(b.config_read(0, 2).unwrap(), r::VENDOR_ID as u32);
    assert_eq!(b.config_read(2, 2).unwrap(), r::DEVICE_ID as u32);
    assert_eq!(b.bar_len(r::BAR_REGS), Some(r::BAR_REGS_LEN));
    assert_eq!(b.raw_reply("clock_step 0").unwrap(), "FAIL could not advance time", "QEMU refuses a 0 ns step");
    // A wait is one clock_step: exactly the time asked, whatever the host is doing, and
    // ten virtual seconds take far less than one real one.
    let t0 = b.now_ns();
    let wall = Instant::now();
    b.wait(1_000_000);
    assert_eq!(b.now_ns() - t0, 1_000_000);
    b.wait(0);
    assert_eq!(b.now_ns() - t0, 1_000_000, "a zero wait does not step");
    b.wait(10_000_000_000);
    assert_eq!(b.now_ns() - t0, 10_001_000_000);
    assert!(wall.elapsed().as_millis() < 1000, "virtual waits took {:?} of wall time", wall.elapsed());
    assert!(b.broken().is_none());
}

#[test]
fn qemu11_msix_message_is_seen_within_one_step() {
    let mut b = qemu11();
    b.msix_enable(3).unwrap();
    b.write32(r::BAR_REGS, r::IVAR as u64, 0x800A_0908);
    b.write32(r::BAR_REGS, r::IMS as u64, (Icr::RXQ0 | Icr::TXQ0).bits());
    b.write32(r::BAR_REGS, r::ICS as u64, Icr::TXQ0.bits());
    // No throttling programmed: the message is pending at once, seen at the first poll.
    b.wait(1_000);
    assert_eq!(b.notifier(1).unwrap().take(), 1, "TXQ0 routed to vector 1 must signal it");
    assert_eq!(b.notifier(0).unwrap().take(), 0);
    assert_eq!(b.read32(r::BAR_MSIX, r::MSIX_PBA_OFFSET) & 2, 0, "pending bit consumed");
}

#[test]
fn driver_brings_up_qemu11_with_the_datasheet_bounds() {
    // Default driver options: a 10 ms interrupt bound, no 200 ms real-time slack.
    let mut d = I82574::attach(qemu11(), Options::default()).unwrap();
    d.bring_up().unwrap();
    assert_eq!(d.mac(), Some([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
    for entry in [IvarEntry::RxQ0, IvarEntry::TxQ0, IvarEntry::Other] {
        d.fire_and_wait(entry).unwrap_or_else(|e| panic!("{entry}: {e}"));
    }
    let b = d.shutdown();
    assert_eq!(b.msix_vectors(), 0);
}

#[test]
fn qemu11_is_killed_on_drop_and_leaves_no_mount() {
    let b = qemu11();
    let pid = b.server_pid().unwrap();
    let dir = b.work_dir().unwrap().to_path_buf();
    let root = forky::root().unwrap().canonicalize().unwrap();
    // The PID we spawned is QEMU itself (every launcher step exec'd), chrooted into the
    // root, in a mount namespace of its own.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("qemu-system-x86_64"), "{}", exe.display());
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/root")).unwrap(), root);
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
    assert_ne!(ns(&pid.to_string()), ns("self"), "QEMU's mounts are private to it");
    drop(b);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "QEMU 11 (pid {pid}) survived the backend");
    assert!(!dir.exists(), "temp dir {} left behind", dir.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&*root.to_string_lossy()), "a mount under {} is left on the host", root.display());
}

#[test]
fn a_missing_root_names_the_command_that_builds_it() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/forky-root.sh");
    let out = std::process::Command::new("bash")
        .args([script, "run", "-version"])
        .env(forky::ROOT_ENV, "/nonexistent/nicqual-forky")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/nicqual-forky") && err.contains("forky-root.sh build"), "{err}");
}
