//! `nicqual serve-qtest`: our 82574L model behind QEMU's qtest protocol. The SAME client
//! (the qtest backend, and a raw command script) drives QEMU's e1000e and our model
//! unchanged. Needs qemu-system-x86 for the QEMU half (`make deps`).

use nicqual_backends::qtest::{QemuConfig, QtestBackend, Target};
use nicqual_hw::i82574::{self as r, IvarEntry};
use nicqual_nics::i82574::{I82574, Options};
use nicqual_pci::{Backend, CheckResult};
use nicqual_qualify::deviations::qemu_e1000e_options;
use nicqual_qualify::i82574::{SuiteOptions, run_suite};
use nicqual_tests::conformance::{cases, run_case};
use std::time::Duration;

fn served(args: &[&str]) -> QtestBackend {
    let mut a = vec!["serve-qtest".to_string()];
    a.extend(args.iter().map(|s| s.to_string()));
    QtestBackend::spawn(Target::Server {
        program: env!("CARGO_BIN_EXE_nicqual").into(),
        args: a,
        slot: 4,
        ram_mib: 64,
        start_timeout: Duration::from_secs(20),
    })
    .unwrap_or_else(|e| panic!("cannot start serve-qtest: {e}"))
}

fn qemu() -> QtestBackend {
    QtestBackend::spawn(Target::Qemu(QemuConfig::default())).unwrap_or_else(|e| panic!("cannot start QEMU: {e}"))
}

/// One client routine, written once: the driver's bring-up, the MAC from the EEPROM, and a
/// message on each vector Linux uses.
fn drive(b: QtestBackend, opts: Options) -> (String, QtestBackend) {
    let mut d = I82574::attach(b, opts).unwrap();
    d.bring_up().unwrap();
    let mac = d.mac().unwrap();
    let ivar = d.read(r::IVAR).unwrap();
    for entry in [IvarEntry::RxQ0, IvarEntry::TxQ0, IvarEntry::Other] {
        d.fire_and_wait(entry).unwrap_or_else(|e| panic!("{entry}: {e}"));
    }
    (format!("mac={mac:02x?} ivar={ivar:#010x}"), d.shutdown())
}

#[test]
fn the_same_client_drives_qemu_and_our_model() {
    let (ours, b) = drive(served(&[]), Options::default());
    assert!(b.info().virtual_time, "serve-qtest answers clock_step: time is virtual");
    assert!(b.stats.messages >= 3, "messages seen through the PBA: {}", b.stats.messages);
    let (theirs, q) = drive(qemu(), qemu_e1000e_options().driver);
    assert!(!q.info().virtual_time);
    assert_eq!(ours, theirs);
}

#[test]
fn the_whole_suite_passes_over_serve_qtest() {
    let mut d = I82574::attach(served(&[]), Options::default()).unwrap();
    let reports = run_suite(&mut d, &SuiteOptions::default());
    let bad: Vec<_> = reports.iter().filter(|r| !matches!(r.result, CheckResult::Pass | CheckResult::Na)).collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(reports.iter().filter(|r| r.result == CheckResult::Pass).count() >= 10);
}

#[test]
fn a_fault_given_to_serve_qtest_reaches_the_client() {
    let mut d = I82574::attach(served(&["--fault", "lose-vector:1"]), Options::default()).unwrap();
    let reports = run_suite(&mut d, &SuiteOptions::default());
    // The lost entry reads all-ones through the wire. (Its pending bit still shows in the
    // PBA, which is how a qtest client sees messages, so here the table read-back is what
    // catches it: docs/CONFORMANCE.md, "The qtest backend's limits".)
    let t = reports.iter().find(|r| r.name == "msix-table[1]").expect("msix-table[1] row");
    assert_eq!(t.result, CheckResult::Fail, "{t:?}");
    assert!(t.detail.contains("0xffffffff"), "{t:?}");
    let ok = reports.iter().filter(|r| r.name.starts_with("msix-table") && r.result == CheckResult::Pass).count();
    assert_eq!(ok, 2, "the other two entries are intact");
}

/// A raw command script (what any qtest client sends) gets QEMU's answers, word for word,
/// from both servers wherever both machines agree (identity, guest RAM, unassigned space).
#[test]
fn a_raw_script_gets_the_same_replies_from_both() {
    let script = [
        "outl 0xcf8 0x80000000",
        "inl 0xcfc",
        "inw 0xcfe",
        "outl 0xcf8 0x80002000",
        "inl 0xcfc",
        "inb 0xcfd",
        "outl 0xcf8 0x80002008",
        "inl 0xcfc",
        "outl 0xcf8 0x80002800",
        "inl 0xcfc",
        "writel 0x200000 0x12345678",
        "readq 0x200000",
        "readw 0x200002",
        "read 0x200000 6",
        "b64read 0x200000 8",
        "write 0x200000 4 0xab",
        "read 0x200000 4",
        "memset 0x200000 3 0x11",
        "readl 0x200000",
        "b64write 0x200000 4 AQIDBA==",
        "read 0x200000 4",
        "writeq 0x200010 0x1122334455667788",
        "readq 0x200010",
        "readl 0xfe000000",
        "inb 0x5000",
        "inl 0x5000",
        "endianness",
        "no_such_command 1",
    ];
    let mut ours = served(&[]);
    let mut theirs = qemu();
    for cmd in script {
        let o = ours.raw_reply(cmd).unwrap();
        let t = theirs.raw_reply(cmd).unwrap();
        assert_eq!(o, t, "`{cmd}`");
    }
    // Where the two differ by design: QEMU 7.2 (no qtest accelerator) refuses clock_step.
    assert_eq!(theirs.raw_reply("clock_step 10").unwrap(), "FAIL Unknown command 'clock_step'");
    assert!(ours.raw_reply("clock_step 10").unwrap().starts_with("OK "));
}

/// Every conformance case gives the same observation through serve-qtest as on the
/// in-process model: the wire adds nothing and loses nothing.
#[test]
fn every_conformance_case_is_identical_through_the_wire() {
    let mut fresh_served = || Ok(Box::new(served(&[])) as Box<dyn Backend>);
    for c in cases() {
        let row = run_case(&c, &mut nicqual_tests::fresh_model, &mut fresh_served);
        assert_eq!(row.ours, row.theirs, "{}: in-process vs serve-qtest", c.name);
    }
}

#[test]
fn serve_qtest_is_gone_after_the_client_and_refuses_other_devices() {
    let b = served(&[]);
    let pid = b.server_pid().unwrap();
    drop(b);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "serve-qtest (pid {pid}) survived");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["serve-qtest", "--socket", "/tmp/nicqual-never.sock", "--device", "qemu:e1000e"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("emulated devices only"));
}

/// `serve-qtest --device model:bnx2x`: the qtest client reads 14e4:168e from config space,
/// sizes the BARs (writing all-ones and reading the mask back, as firmware does) and finds
/// the MSI-X capability with one vector for the default status block and one per queue.
#[test]
fn serve_qtest_serves_the_bnx2x_model() {
    use nicqual_hw::bnx2x as bh;
    use nicqual_hw::pci;
    let mut b = served(&["--device", "model:bnx2x"]);
    assert_eq!(b.config_read(pci::VENDOR_ID, 2).unwrap(), u32::from(bh::PCI_VENDOR_BROADCOM));
    assert_eq!(b.config_read(pci::DEVICE_ID, 2).unwrap(), u32::from(bh::PCI_DEVICE_57810));
    let mut sizes = Vec::new();
    for bar in [0u8, 2, 4] {
        let off = pci::bar(bar);
        let orig = b.config_read(off, 4).unwrap();
        b.config_write(off, 4, 0xFFFF_FFFF).unwrap();
        let mask = b.config_read(off, 4).unwrap() & !0xF;
        b.config_write(off, 4, orig).unwrap();
        sizes.push(u64::from(!mask) + 1);
    }
    assert_eq!(sizes, [0x80_0000, 0x80_0000, bh::BAR_MSIX_LEN]);
    let l = nicqual_pci::caps::msix_layout(|o, s| b.config_read(o, s)).unwrap().expect("MSI-X capability");
    assert_eq!((l.size, l.table_bir, l.table_off, l.pba_bir), (bh::MSIX_VECTORS, bh::BAR_MSIX, 0, bh::BAR_MSIX));
    let mut b57711 = served(&["--device", "model:bnx2x:57711"]);
    assert_eq!(b57711.config_read(pci::DEVICE_ID, 2).unwrap(), u32::from(bh::PCI_DEVICE_57711));
}
