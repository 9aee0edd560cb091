//! Netfront against the emulated host: normal traffic, refusal, resume audits, and a
//! hostile back end corrupting each response field in turn.

use nicqual_backends::xen::GuestPort;
use nicqual_hw::xen_netif::RxMode;
use nicqual_model::xen::{HostVersion, ResponseFault, XenHost};
use nicqual_xen::XenGuest;
use nicqual_xen::netfront::{Netfront, NetfrontConfig, NetfrontError, ResumeOrder, RxPreference};

const GUEST: u16 = 4;

fn host(v: HostVersion) -> XenHost {
    let mut h = XenHost::new(v, 4096, 0x2000, GUEST);
    h.boot_guest(1024).unwrap();
    h
}

fn pkt(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i as usize * 7 + k) as u8).collect()
}

/// Push `n` packets each way; return (received, sent on the wire).
fn exchange(h: &mut XenHost, nf: &mut Netfront, n: u32) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut got, mut wire) = (Vec::new(), Vec::new());
    for i in 0..n {
        h.netback.queue_rx(pkt(i, 60 + (i as usize * 97) % 1400));
        let mut g = GuestPort::new(h);
        nf.send(&mut g, pkt(i + 1000, 100)).unwrap();
        g.notify();
        nf.poll(&mut g);
        got.extend(nf.take_received());
        wire.extend(h.netback.take_wire());
    }
    (got, wire)
}

fn nicqual_copy(target: u32) -> Netfront {
    Netfront::new(NetfrontConfig { order: ResumeOrder::Nicqual, preference: RxPreference::CopyOnly, rx_target: target })
}

#[test]
fn copy_and_flip_paths_deliver_every_packet_intact() {
    for (v, pref, mode) in [
        (HostVersion::MAINLINE, RxPreference::CopyOnly, RxMode::Copy),
        (HostVersion::RHEL_5_3, RxPreference::PreferFlip, RxMode::Flip),
        (HostVersion::RHEL_5_4, RxPreference::PreferFlip, RxMode::Copy),
    ] {
        let mut h = host(v);
        let mut nf = Netfront::new(NetfrontConfig { order: ResumeOrder::Nicqual, preference: pref, rx_target: 64 });
        assert_eq!(nf.connect(&mut GuestPort::new(&mut h)).unwrap(), mode);
        let (got, wire) = exchange(&mut h, &mut nf, 300);
        assert_eq!(got.len(), 300, "{mode:?}");
        for (i, p) in got.iter().enumerate() {
            assert_eq!(*p, pkt(i as u32, 60 + (i * 97) % 1400));
        }
        assert_eq!(wire.len(), 300);
        assert_eq!(nf.rx_posted(), 64, "the ring is refilled");
        assert!(nf.errors().is_empty());
    }
}

#[test]
fn copy_only_frontend_refuses_a_backend_without_copy() {
    let mut h = host(HostVersion::MAINLINE);
    let dir = h.netback.backend_dir();
    h.store.remove(&format!("{dir}/feature-rx-copy"));
    let mut nf = nicqual_copy(16);
    let e = nf.connect(&mut GuestPort::new(&mut h)).unwrap_err();
    assert_eq!(e, NetfrontError::Refused { why: "backend does not support copying receive path".into() });
    assert!(!h.netback.is_connected());
}

#[test]
fn nicqual_resume_never_publishes_a_frame_it_cannot_back() {
    // Flip on 5.3, then restore on a 5.4 host whose heap cannot re-back the flipped pages.
    let mut a = host(HostVersion::RHEL_5_3);
    let mut nf = Netfront::new(NetfrontConfig {
        order: ResumeOrder::Nicqual,
        preference: RxPreference::PreferFlip,
        rx_target: 32,
    });
    nf.connect(&mut GuestPort::new(&mut a)).unwrap();
    let saved = a.save_guest().unwrap();
    assert_eq!(saved.unbacked_pages(), 32);
    let backed = saved.pages.len() - saved.unbacked_pages();
    let mut b = XenHost::new(HostVersion::RHEL_5_4, backed as u64 + 1, 0x9000, GUEST);
    b.restore_guest(saved).unwrap();
    assert_eq!(b.hv.heap_free(), 0);
    nf.resume(&mut GuestPort::new(&mut b)).unwrap();
    assert_eq!(nf.stats.reclaimed_rx, 32);
    assert_eq!(nf.stats.rebacked_pages, 0, "no frame to back them with");
    // Whatever was posted names a real frame: a packet never meets frame ffffffff.
    b.netback.queue_rx(pkt(1, 200));
    let mut g = GuestPort::new(&mut b);
    g.notify();
    nf.poll(&mut g);
    assert!(b.hv.console().iter().all(|l| !l.text.contains("ffffffff")), "{:?}", b.hv.console());
    assert_eq!(b.netback.stats.rx_errors, 0);
}

#[test]
fn legacy_resume_publishes_the_stale_frames() {
    let mut a = host(HostVersion::RHEL_5_3);
    let mut nf = Netfront::new(NetfrontConfig {
        order: ResumeOrder::Legacy,
        preference: RxPreference::PreferFlip,
        rx_target: 32,
    });
    nf.connect(&mut GuestPort::new(&mut a)).unwrap();
    let saved = a.save_guest().unwrap();
    let mut b = XenHost::new(HostVersion::RHEL_5_4, 4096, 0x9000, GUEST);
    b.restore_guest(saved).unwrap();
    assert_eq!(nf.resume(&mut GuestPort::new(&mut b)).unwrap(), RxMode::Copy);
    b.netback.queue_rx(pkt(1, 200));
    let mut g = GuestPort::new(&mut b);
    g.notify();
    nf.poll(&mut g);
    assert_eq!(b.hv.console()[0].text, "(XEN) grant_table.c:1145:d0 destination frame ffffffff invalid.");
    assert_eq!(nf.log().last().unwrap().text, "netfront: rx->offset: 0, size: 4294967295");
    assert!(matches!(nf.errors()[0], NetfrontError::RxStatus { status: -1, .. }));
    assert_eq!(nf.stats.rx_packets, 0);
}

/// Run traffic with `fault` armed, then without; the front end must survive, count, and
/// (nicqual order) carry on once the back end behaves.
fn hostile(fault: ResponseFault) -> Netfront {
    hostile_with(fault, true)
}

fn hostile_with(fault: ResponseFault, expect_recovery: bool) -> Netfront {
    let mut h = host(HostVersion::MAINLINE);
    let mut nf = nicqual_copy(16);
    nf.connect(&mut GuestPort::new(&mut h)).unwrap();
    h.netback.set_fault(Some(fault));
    let _ = exchange(&mut h, &mut nf, 40);
    h.netback.set_fault(None);
    nf.stats.rx_packets = 0;
    let (got, wire) = exchange(&mut h, &mut nf, 20);
    if expect_recovery {
        assert!(got.len() >= 10, "{fault:?}: traffic resumed ({} received)", got.len());
        assert!(!wire.is_empty());
    }
    nf
}

#[test]
fn hostile_rx_id_out_of_range() {
    let nf = hostile(ResponseFault::RxId { id: 300 });
    assert!(nf.stats.bad_ids >= 40);
    assert!(nf.errors().contains(&NetfrontError::BadRxId { id: 300, why: "outside the ring" }));
}

#[test]
fn hostile_rx_id_never_posted() {
    let nf = hostile(ResponseFault::RxId { id: 200 });
    assert!(nf.stats.bad_ids >= 40);
    assert!(matches!(nf.errors()[0], NetfrontError::BadRxId { id: 200, .. }));
}

#[test]
fn hostile_rx_status_negative_is_an_error_not_a_length() {
    let nf = hostile(ResponseFault::RxStatus { status: -1 });
    assert!(nf.stats.rx_status_errors >= 40);
    assert!(nf.log().iter().any(|l| l.text == "netfront: rx->offset: 0, size: 4294967295"));
    let e = nf.errors()[0].to_string();
    assert!(e.contains("status -1") && e.contains("4294967295") && e.contains("not a length"), "{e}");
    assert!(nf.stats.requeued_regranted >= 40);
}

#[test]
fn hostile_rx_status_larger_than_the_page() {
    let nf = hostile(ResponseFault::RxStatus { status: 5000 });
    assert!(nf.stats.rx_oversize >= 40);
    assert!(matches!(nf.errors()[0], NetfrontError::RxOversize { size: 5000, .. }));
}

#[test]
fn hostile_rx_offset_past_the_page() {
    let nf = hostile(ResponseFault::RxOffset { offset: 4000 });
    assert!(nf.stats.rx_oversize >= 1);
    assert!(matches!(nf.errors()[0], NetfrontError::RxOversize { offset: 4000, .. }));
}

#[test]
fn hostile_duplicate_responses() {
    // Writing two responses per request leaves the back end's own indices wrong for good;
    // the front end cannot repair that, but it must notice and never read past what it
    // published.
    let nf = hostile_with(ResponseFault::RxDuplicate, false);
    assert!(nf.stats.bad_ids >= 1, "the second copy names an id no longer outstanding");
}

#[test]
fn hostile_rsp_prod_runaway() {
    // Beyond every published request: caught by the producer check; nicqual reconnects and
    // never reads a slot the back end did not write.
    let nf = hostile(ResponseFault::RxRspProdRunaway { extra: 100_000 });
    assert!(nf.stats.ring_runaway >= 1);
    assert!(nf.stats.reconnects >= 1);
    assert!(matches!(nf.errors()[0], NetfrontError::RingRunaway { ring: "rx", .. }));
    assert_eq!(nf.stats.rx_runts, 0);
    assert!(!nf.is_broken());
    // One too far, within what was published: the extra slot still holds our own request,
    // which reads as a response of size gref >> 16 = 0: a runt, dropped and re-posted.
    let nf = hostile(ResponseFault::RxRspProdRunaway { extra: 1 });
    assert!(nf.stats.rx_runts >= 1);
    assert!(nf.errors().iter().any(|e| matches!(e, NetfrontError::RxRunt { .. })), "{:?}", &nf.errors()[..3]);
    // Legacy: the device is given up, as hardened Linux netfront does.
    let mut h = host(HostVersion::MAINLINE);
    let mut nf =
        Netfront::new(NetfrontConfig { order: ResumeOrder::Legacy, preference: RxPreference::CopyOnly, rx_target: 16 });
    nf.connect(&mut GuestPort::new(&mut h)).unwrap();
    h.netback.set_fault(Some(ResponseFault::RxRspProdRunaway { extra: 100_000 }));
    let _ = exchange(&mut h, &mut nf, 5);
    assert!(nf.is_broken());
    assert!(nf.log().iter().any(|l| l.text == "netfront: device eth0 marked broken"));
}

#[test]
fn hostile_tx_id_and_status() {
    let nf = hostile(ResponseFault::TxId { id: 999 });
    assert!(nf.errors().iter().any(|e| matches!(e, NetfrontError::BadTxId { id: 999, .. })));
    let nf = hostile(ResponseFault::TxStatus { status: -1 });
    assert!(nf.stats.tx_errors >= 40);
}

#[test]
fn hostile_rx_status_runt() {
    let nf = hostile(ResponseFault::RxStatus { status: 3 });
    assert!(nf.stats.rx_runts >= 40);
    assert!(matches!(nf.errors()[0], NetfrontError::RxRunt { size: 3, .. }));
}

#[test]
fn hostile_rx_flags_not_negotiated() {
    let flags = nicqual_hw::xen_netif::rxf::MORE_DATA | nicqual_hw::xen_netif::rxf::EXTRA_INFO;
    let nf = hostile(ResponseFault::RxFlags { flags });
    assert!(nf.stats.rx_bad_flags >= 40);
    assert!(matches!(nf.errors()[0], NetfrontError::RxFlags { flags: f, .. } if f == flags));
    assert_eq!(nf.stats.rx_status_errors, 0);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn fault() -> impl Strategy<Value = ResponseFault> {
        prop_oneof![
            any::<u16>().prop_map(|id| ResponseFault::RxId { id }),
            any::<i16>().prop_map(|status| ResponseFault::RxStatus { status }),
            any::<u16>().prop_map(|offset| ResponseFault::RxOffset { offset }),
            any::<u16>().prop_map(|flags| ResponseFault::RxFlags { flags }),
            Just(ResponseFault::RxDuplicate),
            any::<u32>().prop_map(|extra| ResponseFault::RxRspProdRunaway { extra }),
            any::<u16>().prop_map(|id| ResponseFault::TxId { id }),
            any::<i16>().prop_map(|status| ResponseFault::TxStatus { status }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Any value in any response field: no panic, never more packets than were sent,
        /// every packet within an Ethernet header and a page, and — unless the back end
        /// lies about the length itself — every packet handed up is one it queued.
        #[test]
        fn any_response_field_value_is_survived(f in fault()) {
            let mut h = host(HostVersion::MAINLINE);
            let mut nf = nicqual_copy(16);
            nf.connect(&mut GuestPort::new(&mut h)).unwrap();
            h.netback.set_fault(Some(f));
            let (got, _) = exchange(&mut h, &mut nf, 24);
            prop_assert!(got.len() <= 24);
            let lies_about_length = matches!(f, ResponseFault::RxStatus { .. } | ResponseFault::RxOffset { .. });
            for p in &got {
                prop_assert!(p.len() >= 14 && p.len() <= 4096);
                if !lies_about_length {
                    prop_assert!((0..24).any(|i| *p == pkt(i, 60 + (i as usize * 97) % 1400)));
                }
            }
        }
    }
}
