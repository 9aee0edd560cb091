//! The qtest backend against QEMU's own 82574L (`-device e1000e`): PCI set-up, shared
//! guest RAM as DMA memory (IOVA = guest-physical address), MSI-X observed through the
//! PBA, the driver's bring-up, and no QEMU process left behind. Needs qemu-system-x86
//! (`make deps`); without it every test fails with the command to install it.

use nicqual_backends::qtest::{QemuConfig, QtestBackend, Target};
use nicqual_hw::i82574::{self as r, Icr, IvarEntry};
use nicqual_nics::i82574::I82574;
use nicqual_pci::{Backend, BackendError, BackendKind, DmaPerm};
use nicqual_qualify::deviations::qemu_e1000e_options;
use std::path::PathBuf;

fn qemu() -> QtestBackend {
    QtestBackend::spawn(Target::Qemu(QemuConfig::default())).unwrap_or_else(|e| panic!("cannot start QEMU: {e}"))
}

/// True while a process with this pid exists and still mentions `dir` on its command line.
fn alive(pid: u32, dir: &std::path::Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
        .unwrap_or(false)
}

#[test]
fn pci_setup_bars_and_identity() {
    let mut b = qemu();
    let info = b.info();
    assert_eq!(info.kind, BackendKind::Qtest);
    assert!(!info.virtual_time, "Debian's QEMU has no qtest accelerator: time must be real");
    assert_eq!(b.config_read(0, 2).unwrap(), r::VENDOR_ID as u32);
    assert_eq!(b.config_read(2, 2).unwrap(), r::DEVICE_ID as u32);
    assert_eq!(b.bar_len(r::BAR_REGS), Some(r::BAR_REGS_LEN));
    assert_eq!(b.bar_len(r::BAR_MSIX), Some(r::BAR_MSIX_LEN));
    assert_eq!(b.bar_len(4), None);
    // The backend assigned BAR0 and enabled decode: STATUS answers with link up.
    assert_eq!(b.bar_address(r::BAR_REGS), Some(0xE000_0000));
    let status = b.read32(r::BAR_REGS, r::STATUS as u64);
    assert_ne!(status, u32::MAX);
    assert_ne!(status & 2, 0, "STATUS.LU: {status:#x}");
    // Out-of-range accesses never reach QEMU and read as all-ones.
    assert_eq!(b.read32(r::BAR_REGS, r::BAR_REGS_LEN), u32::MAX);
    assert!(matches!(b.config_read(0x100, 4), Err(BackendError::BadConfigAccess { .. })));
}

#[test]
fn dma_memory_is_guest_ram_at_its_guest_physical_address() {
    let mut b = qemu();
    let free0 = b.dma_free_bytes();
    let m = b.dma_alloc(100).unwrap();
    assert_eq!(m.len(), 4096);
    let gpa = m.fixed_iova().expect("qtest DMA memory has a fixed IOVA");
    assert!(gpa >= nicqual_backends::qtest::DMA_POOL_START);
    // Driver writes are what the guest (and so the device) sees, and the other way round.
    m.write_u32(8, 0xC0FF_EE11).unwrap();
    let rep = b.raw(&format!("readl {:#x}", gpa + 8)).unwrap();
    assert_eq!(rep, "0x00000000c0ffee11");
    b.raw(&format!("writel {:#x} 0x12345678", gpa + 16)).unwrap();
    assert_eq!(m.read_u32(16), Some(0x1234_5678));
    // IOVA = GPA: any other IOVA is refused with a typed error naming it.
    match b.dma_map(&m, gpa + 4096, DmaPerm::BIDIRECTIONAL) {
        Err(BackendError::DmaMap { iova, .. }) => assert_eq!(iova, gpa + 4096),
        other => panic!("{other:?}"),
    }
    b.dma_map(&m, gpa, DmaPerm::BIDIRECTIONAL).unwrap();
    assert_eq!(b.live_mappings(), 1);
    b.dma_unmap(gpa).unwrap();
    assert_eq!(b.live_mappings(), 0);
    assert_eq!(b.dma_free_bytes(), free0 - 4096);
    drop(m);
    assert_eq!(b.dma_free_bytes(), free0, "freed windows go back to the pool");
}

#[test]
fn msix_delivery_is_observed_through_the_pba() {
    let mut b = qemu();
    b.msix_enable(3).unwrap();
    b.write32(r::BAR_REGS, r::IVAR as u64, 0x800A_0908);
    b.write32(r::BAR_REGS, r::IMS as u64, (Icr::RXQ0 | Icr::TXQ0).bits());
    b.write32(r::BAR_REGS, r::ICS as u64, Icr::TXQ0.bits());
    let t0 = b.now_ns();
    while b.notifier(1).is_some_and(|n| !n.poll(0)) && b.now_ns() - t0 < 2_000_000_000 {
        b.wait(1_000_000);
    }
    assert_eq!(b.notifier(1).unwrap().take(), 1, "TXQ0 routed to vector 1 must signal it");
    assert_eq!(b.notifier(0).unwrap().take(), 0);
    // The table entry stays masked (that is how the message is observed) and the pending
    // bit was consumed.
    let ctrl = b.read32(r::BAR_MSIX, r::MSIX_TABLE_OFFSET + 16 + 12);
    assert_eq!(ctrl & 1, 1);
    assert_eq!(b.read32(r::BAR_MSIX, r::MSIX_PBA_OFFSET) & 2, 0);
    // A vector the driver masked is held pending and delivered on unmask.
    b.msix_mask(0, true).unwrap();
    b.write32(r::BAR_REGS, r::ICS as u64, Icr::RXQ0.bits());
    b.wait(20_000_000);
    assert_eq!(b.notifier(0).unwrap().take(), 0);
    b.msix_mask(0, false).unwrap();
    b.wait(20_000_000);
    assert_eq!(b.notifier(0).unwrap().take(), 1);
    assert!(matches!(b.msix_mask(7, true), Err(BackendError::NoSuchVector { vector: 7, have: 3 })));
}

#[test]
fn driver_brings_up_qemus_82574l_and_each_vector_answers() {
    let b = qemu();
    let mut d = I82574::attach(b, qemu_e1000e_options().driver).unwrap();
    d.bring_up().unwrap();
    assert_eq!(d.mac(), Some([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
    assert_eq!(d.read(r::IVAR).unwrap(), 0x800A_0908);
    for entry in [IvarEntry::RxQ0, IvarEntry::TxQ0, IvarEntry::Other] {
        d.fire_and_wait(entry).unwrap_or_else(|e| panic!("{entry}: {e}"));
    }
    let b = d.shutdown();
    assert_eq!(b.msix_vectors(), 0);
}

#[test]
fn qemu_is_killed_on_drop_and_nothing_is_left_behind() {
    let b = qemu();
    let pid = b.server_pid().unwrap();
    let dir: PathBuf = b.work_dir().unwrap().to_path_buf();
    assert!(alive(pid, &dir));
    assert!(dir.join("guest-ram").exists());
    drop(b);
    assert!(!alive(pid, &dir), "QEMU (pid {pid}) survived the backend");
    assert!(!dir.exists(), "temp dir {} left behind", dir.display());
}

#[test]
fn missing_qemu_is_a_typed_error_naming_the_fix() {
    let cfg = QemuConfig { binary: "/nonexistent/qemu-system-x86_64".into(), ..Default::default() };
    let e = QtestBackend::spawn(Target::Qemu(cfg)).unwrap_err();
    assert!(matches!(e, BackendError::ProgramNotFound { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("/nonexistent/qemu-system-x86_64"), "{msg}");
    assert!(msg.contains("apt-get install -y qemu-system-x86"), "{msg}");
    assert!(msg.contains("NICQUAL_QEMU"), "{msg}");
}

#[test]
fn a_server_that_exits_at_once_is_reported_with_its_stderr() {
    // QEMU refuses an unknown device: the error carries QEMU's own words.
    let cfg = QemuConfig { device: "no-such-nic".into(), ..Default::default() };
    let e = QtestBackend::spawn(Target::Qemu(cfg)).unwrap_err();
    match &e {
        BackendError::ServerExited { stderr, .. } => assert!(stderr.contains("no-such-nic"), "{e}"),
        other => panic!("{other}"),
    }
}

/// The driver's datapath (rings, mempool, write-back validation) on QEMU's e1000e in MAC
/// loopback: every frame sent comes back intact, standard and jumbo, no write-back refused.
#[test]
fn driver_datapath_loops_frames_through_qemus_mac() {
    use nicqual_nics::i82574::datapath::DatapathConfig;
    use std::collections::VecDeque;
    // A 9018-byte frame in a 16 KiB entry goes out as three page pieces (tx_batch splits
    // at 4 KiB IOVA pages), so 16 jumbo frames need 48 of the ring's 63 usable slots.
    for (size, cfg) in [
        (64usize, DatapathConfig { ring_size: 64, pool_entries: 256, ..Default::default() }),
        (1514, DatapathConfig { ring_size: 64, pool_entries: 256, ..Default::default() }),
        (9018, DatapathConfig { ring_size: 64, pool_entries: 128, ..DatapathConfig::jumbo() }),
    ] {
        let mut d = I82574::attach(qemu(), qemu_e1000e_options().driver).unwrap();
        d.bring_up().unwrap();
        d.setup_datapath(DatapathConfig { loopback: true, ..cfg }).unwrap();
        let frame: Vec<u8> = (0..size)
            .map(|i| match i {
                0..6 => 0xFF,
                6..12 => [0x52, 0x54, 0x00, 0x12, 0x34, 0x56][i - 6],
                12 => 0x88,
                13 => 0xB5,
                _ => (i as u8).wrapping_mul(7),
            })
            .collect();
        let mut txq = VecDeque::new();
        for _ in 0..16 {
            let dp = d.datapath_mut().unwrap();
            let mut p = dp.pool_mut().alloc().unwrap();
            dp.pool().write(&mut p, &frame).unwrap();
            txq.push_back(p);
        }
        let sent = d.tx_batch(0, &mut txq).unwrap();
        assert_eq!(sent, 16, "{size} B");
        let mut got = Vec::new();
        // QEMU processes TDT writes synchronously; a few bounded rounds collect everything.
        for _ in 0..50 {
            d.rx_batch(0, &mut got, 64).unwrap();
            if got.len() >= 16 {
                break;
            }
            d.backend_mut().wait(1_000_000);
        }
        assert_eq!(got.len(), 16, "{size} B frames back");
        let dp = d.datapath_mut().unwrap();
        for p in got.drain(..) {
            assert_eq!(dp.pool().to_vec(&p).unwrap(), frame, "{size} B frame intact");
            dp.pool_mut().free(p);
        }
        assert_eq!(dp.counters.wb_errors(), 0, "{size} B: {:?}", dp.recent_errors().collect::<Vec<_>>());
        let b = d.shutdown();
        assert_eq!(b.live_mappings(), 0);
    }
}

/// Frames on QEMU's real wire: the backend owns the other end of the NIC's socket netdev.
/// What the driver transmits comes out of the socket; what is written into it arrives
/// through the driver's RX ring.
#[test]
fn frames_cross_the_socket_netdev_the_backend_owns() {
    use nicqual_nics::i82574::datapath::DatapathConfig;
    use std::collections::VecDeque;
    use std::time::Duration;
    let mut d = I82574::attach(qemu(), qemu_e1000e_options().driver).unwrap();
    assert!(d.backend().has_wire());
    d.bring_up().unwrap();
    d.setup_datapath(DatapathConfig { ring_size: 64, pool_entries: 256, ..Default::default() }).unwrap();
    let frame = |n: usize, seed: u8| -> Vec<u8> {
        let mut f = vec![0xFF; 6];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, seed, 0x88, 0xB5]);
        f.extend((0..n - 14).map(|i| (i as u8).wrapping_add(seed)));
        f
    };
    // Out: the driver sends, the socket receives, byte for byte.
    let out: Vec<Vec<u8>> = (0..4).map(|k| frame(60 + 400 * k, k as u8)).collect();
    let mut txq = VecDeque::new();
    for f in &out {
        let dp = d.datapath_mut().unwrap();
        let mut p = dp.pool_mut().alloc().unwrap();
        dp.pool().write(&mut p, f).unwrap();
        txq.push_back(p);
    }
    assert_eq!(d.tx_batch(0, &mut txq).unwrap(), 4);
    for f in &out {
        let got = d.backend_mut().wire_recv(Duration::from_secs(2)).unwrap().expect("a frame on the wire");
        assert_eq!(&got, f);
    }
    assert_eq!(d.backend_mut().wire_recv(Duration::from_millis(20)).unwrap(), None, "nothing more was sent");
    // In: frames written into the socket reach the RX ring intact.
    let inbound: Vec<Vec<u8>> = (0..4).map(|k| frame(64 + 300 * k, 0x40 + k as u8)).collect();
    for f in &inbound {
        d.backend_mut().wire_send(f).unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..200 {
        d.rx_batch(0, &mut got, 64).unwrap();
        if got.len() >= inbound.len() {
            break;
        }
        d.backend_mut().wait(1_000_000);
    }
    let dp = d.datapath_mut().unwrap();
    let frames: Vec<Vec<u8>> = got.iter().map(|p| dp.pool().to_vec(p).unwrap()).collect();
    assert_eq!(frames, inbound);
    assert_eq!(dp.counters.wb_errors(), 0);
}

/// QEMU 7.2's CTRL.RST keeps the interrupt set-up (CONFORMANCE row 8). With IVAR programmed
/// before the suite (as Linux's e1000e leaves it before a bind), the reset check says so,
/// not applicable with the values, under QEMU's options, and fails under the datasheet's.
#[test]
fn reset_check_on_qemu_with_ivar_already_programmed() {
    use nicqual_qualify::i82574::{Selection, SuiteOptions, run_suite};
    let only_reset = Selection { check: vec!["reset".into()], skip: vec![] };
    let mut d = I82574::attach(qemu(), qemu_e1000e_options().driver).unwrap();
    d.write(nicqual_hw::i82574::IVAR, 0x800A_0908).unwrap();
    let opts = SuiteOptions { select: only_reset.clone(), ..qemu_e1000e_options().suite };
    let r = run_suite(&mut d, &opts);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].result, nicqual_pci::CheckResult::Na, "{}", r[0].detail);
    assert!(r[0].detail.contains("IVAR=0x800a0908") && r[0].detail.contains("CONFORMANCE.md row 8"), "{}", r[0].detail);
    d.write(nicqual_hw::i82574::IVAR, 0x800A_0908).unwrap();
    let strict = SuiteOptions { select: only_reset, ..SuiteOptions::default() };
    assert_eq!(run_suite(&mut d, &strict)[0].result, nicqual_pci::CheckResult::Fail);
    d.shutdown();
}
