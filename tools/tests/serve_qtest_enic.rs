//! `nicqual serve-qtest --device model:enic`: a qtest client (the qtest backend of
//! nicqual-backends) sees the Cisco VIC in config space and the vNIC resource header and
//! table in BAR0, and the enic driver runs over the wire unchanged.

use nicqual_backends::qtest::{QtestBackend, Target};
use nicqual_hw::enic as hw;
use nicqual_nics::enic::{Enic, Platform, Policy, read_resources};
use nicqual_pci::Backend;
use std::time::Duration;

fn served(device: &str) -> QtestBackend {
    QtestBackend::spawn(Target::Server {
        program: env!("CARGO_BIN_EXE_nicqual").into(),
        args: vec!["serve-qtest".into(), "--device".into(), device.into()],
        slot: 4,
        ram_mib: 64,
        start_timeout: Duration::from_secs(20),
    })
    .unwrap_or_else(|e| panic!("cannot start serve-qtest: {e}"))
}

#[test]
fn a_qtest_client_sees_1137_0043_and_the_resource_header() {
    let mut b = served("model:enic");
    assert_eq!(b.config_read(0, 4).unwrap(), 0x0043_1137);
    assert_eq!(b.read32(hw::BAR_REGS, 0), hw::VNIC_RES_MAGIC);
    assert_eq!(b.read32(hw::BAR_REGS, 4), hw::VNIC_RES_VERSION);
    let r = read_resources(&mut b).unwrap();
    assert_eq!((r.wq_count, r.rq_count, r.cq_count), (4, 4, 8));
    let mut vf = served("model:enic-vf");
    assert_eq!(vf.config_read(0, 4).unwrap(), 0x0071_1137);
}

#[test]
fn the_enic_driver_loops_frames_back_over_qtest() {
    let (mut e, _) = Enic::new(served("model:enic"), Policy::Nicqual, Platform::Direct, 1500, 64).unwrap();
    let mut out = Vec::new();
    for k in 0..8u8 {
        let f = vec![k; 300];
        e.send(&f).unwrap();
        assert_eq!(e.poll_rx(&mut out), 1, "frame {k}");
        assert_eq!(out.last(), Some(&f));
    }
    assert_eq!(e.adapter_mtu(), 9000);
    let b = e.shutdown();
    assert_eq!(b.live_mappings(), 0);
}
