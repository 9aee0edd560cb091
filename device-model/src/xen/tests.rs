use super::*;
use nicqual_hw::xen_netif::{DOM0, gtf};
use zerocopy::little_endian::U16;

const GUEST: DomId = 3;

fn hv() -> Hypervisor {
    let mut hv = Hypervisor::new(HostVersion::RHEL_5_4, 64, 0x500);
    hv.create_domain(GUEST, 16).unwrap();
    hv
}

fn grant(hv: &mut Hypervisor, gref: GrantRef, flags: u16, dom: DomId, frame: Mfn) {
    let e = GrantEntryV1 { flags: U16::new(flags), domid: U16::new(dom), frame: U32::new(frame) };
    hv.gnttab_write(GUEST, gref, e).unwrap();
}

#[test]
fn copy_into_a_grant_of_frame_ffffffff_fails_with_xens_message() {
    let mut hv = hv();
    grant(&mut hv, 10, gtf::PERMIT_ACCESS, DOM0, INVALID_FRAME);
    let src = hv.alloc_backend_frame(DOM0).unwrap();
    hv.set_now(42);
    let st = hv.grant_copy(
        DOM0,
        CopyPtr::Local { mfn: src, offset: 0 },
        CopyPtr::Gref { dom: GUEST, gref: 10, offset: 0 },
        60,
    );
    assert_eq!(st, gntst::GENERAL_ERROR);
    assert_eq!(hv.console()[0].text, "(XEN) grant_table.c:1145:d0 destination frame ffffffff invalid.");
    assert_eq!(hv.console()[0].at_ns, 42);
    assert_eq!(hv.stats.copies_failed, 1);
}

#[test]
fn copy_checks_reference_domain_and_permission() {
    let mut hv = hv();
    let pfn = hv.alloc_page(GUEST).unwrap();
    let mfn = hv.pfn_to_mfn(GUEST, pfn);
    let src = hv.alloc_backend_frame(DOM0).unwrap();
    hv.frame_write(src, 0, b"hello");
    let dst = |gref| CopyPtr::Gref { dom: GUEST, gref, offset: 100 };
    let local = CopyPtr::Local { mfn: src, offset: 0 };
    assert_eq!(hv.grant_copy(DOM0, local, dst(GRANT_TABLE_ENTRIES), 5), gntst::BAD_GNTREF);
    grant(&mut hv, 11, gtf::PERMIT_ACCESS, 9, mfn);
    assert_eq!(hv.grant_copy(DOM0, local, dst(11), 5), gntst::GENERAL_ERROR, "granted to another domain");
    grant(&mut hv, 12, gtf::PERMIT_ACCESS | gtf::READONLY, DOM0, mfn);
    assert_eq!(hv.grant_copy(DOM0, local, dst(12), 5), gntst::PERMISSION_DENIED);
    grant(&mut hv, 13, gtf::PERMIT_ACCESS, DOM0, mfn);
    assert_eq!(
        hv.grant_copy(DOM0, local, CopyPtr::Gref { dom: GUEST, gref: 13, offset: 4094 }, 5),
        gntst::BAD_COPY_ARG
    );
    assert_eq!(hv.grant_copy(DOM0, local, dst(13), 5), gntst::OKAY);
    let mut b = [0u8; 5];
    hv.page_read(GUEST, pfn, 100, &mut b).unwrap();
    assert_eq!(&b, b"hello");
}

#[test]
fn transfer_moves_the_frame_and_completes_the_grant() {
    let mut hv = hv();
    let pfn = hv.alloc_page(GUEST).unwrap();
    let heap = hv.heap_free();
    hv.decrease_reservation(GUEST, pfn).unwrap();
    assert_eq!(hv.heap_free(), heap + 1);
    assert_eq!(hv.pfn_to_mfn(GUEST, pfn), INVALID_FRAME);
    assert!(hv.page_read(GUEST, pfn, 0, &mut [0u8; 1]).is_err(), "an unbacked page cannot be read");
    grant(&mut hv, 20, gtf::ACCEPT_TRANSFER, DOM0, pfn);
    let m = hv.alloc_backend_frame(DOM0).unwrap();
    hv.frame_write(m, 0, b"pkt");
    assert_eq!(hv.grant_transfer(DOM0, m, GUEST, 20), gntst::OKAY);
    let e = hv.gnttab_read(GUEST, 20).unwrap();
    assert_eq!(e.frame.get(), m);
    assert_eq!(
        e.flags.get() & (gtf::TRANSFER_COMMITTED | gtf::TRANSFER_COMPLETED),
        gtf::TRANSFER_COMMITTED | gtf::TRANSFER_COMPLETED
    );
    hv.set_p2m(GUEST, pfn, m).unwrap();
    let mut b = [0u8; 3];
    hv.page_read(GUEST, pfn, 0, &mut b).unwrap();
    assert_eq!(&b, b"pkt");
    // A second transfer through a used-up grant of the wrong type is refused.
    let m2 = hv.alloc_backend_frame(DOM0).unwrap();
    grant(&mut hv, 21, gtf::PERMIT_ACCESS, DOM0, 0);
    assert_eq!(hv.grant_transfer(DOM0, m2, GUEST, 21), gntst::GENERAL_ERROR);
}

#[test]
fn restore_renumbers_frames_keeps_holes_and_wipes_grants() {
    let mut a = Hypervisor::new(HostVersion::RHEL_5_3, 64, 0x500);
    a.create_domain(GUEST, 8).unwrap();
    let p = a.alloc_page(GUEST).unwrap();
    a.page_write(GUEST, p, 0, b"kept").unwrap();
    let q = a.alloc_page(GUEST).unwrap();
    a.decrease_reservation(GUEST, q).unwrap();
    let old = a.pfn_to_mfn(GUEST, p);
    grant(&mut a, 30, gtf::PERMIT_ACCESS, DOM0, old);
    let (pages, free) = a.save_domain(GUEST).unwrap();
    assert_eq!(a.heap_free(), 64, "every frame went back to host A's heap");
    let mut b = Hypervisor::new(HostVersion::RHEL_5_4, 64, 0x9000);
    b.restore_domain(GUEST, pages, free).unwrap();
    assert_ne!(b.pfn_to_mfn(GUEST, p), old);
    assert_eq!(b.pfn_to_mfn(GUEST, q), INVALID_FRAME);
    let mut buf = [0u8; 4];
    b.page_read(GUEST, p, 0, &mut buf).unwrap();
    assert_eq!(&buf, b"kept");
    assert_eq!(b.gnttab_read(GUEST, 30).unwrap(), GrantEntryV1::default());
}

#[test]
fn mainline_netback_refuses_a_flip_only_frontend() {
    let mut host = XenHost::new(HostVersion::MAINLINE, 64, 0x100, GUEST);
    host.boot_guest(8).unwrap();
    let fe = host.netback.frontend_dir();
    let pfn = host.hv.alloc_page(GUEST).unwrap();
    let mfn = host.hv.pfn_to_mfn(GUEST, pfn);
    grant(&mut host.hv, 8, gtf::PERMIT_ACCESS, DOM0, mfn);
    host.store.write(&format!("{fe}/tx-ring-ref"), 8);
    host.store.write(&format!("{fe}/rx-ring-ref"), 8);
    host.store.write(&format!("{fe}/request-rx-copy"), 0);
    let XenHost { hv, store, netback, .. } = &mut host;
    assert_eq!(netback.connect(hv, store), Err(netback::ConnectError::NoRxMode));
    assert_eq!(host.store.read(&format!("{}/feature-rx-flip", host.netback.backend_dir())), Some("0"));
    let old = XenHost::new(HostVersion::RHEL_5_3, 64, 0x100, GUEST);
    assert_eq!(old.store.read(&format!("{}/feature-rx-flip", old.netback.backend_dir())), None);
}

#[test]
fn flipping_netback_squeezes_when_the_heap_is_empty_and_its_timer_retries() {
    use nicqual_hw::xen_netif::{RxRequest, sring};
    use zerocopy::IntoBytes;
    // Heap: the guest's 8 pages and the back end's staging page, nothing more.
    let mut host = XenHost::new(HostVersion::RHEL_5_3, 1 + 8, 0x100, GUEST);
    host.boot_guest(8).unwrap();
    let fe = host.netback.frontend_dir();
    let (tx, rx, buf) = (host.hv.alloc_page(GUEST).unwrap(), host.hv.alloc_page(GUEST).unwrap(), 7);
    let (tx_mfn, rx_mfn) = (host.hv.pfn_to_mfn(GUEST, tx), host.hv.pfn_to_mfn(GUEST, rx));
    grant(&mut host.hv, 1, gtf::PERMIT_ACCESS, DOM0, tx_mfn);
    grant(&mut host.hv, 2, gtf::PERMIT_ACCESS, DOM0, rx_mfn);
    grant(&mut host.hv, 3, gtf::ACCEPT_TRANSFER, DOM0, buf);
    host.store.write(&format!("{fe}/tx-ring-ref"), 1);
    host.store.write(&format!("{fe}/rx-ring-ref"), 2);
    host.store.write(&format!("{fe}/request-rx-copy"), 0);
    let XenHost { hv, store, netback, .. } = &mut host;
    assert_eq!(netback.connect(hv, store), Ok(RxMode::Flip));
    // One receive request posted for transfer.
    let req = RxRequest { id: U16::new(5), pad: U16::new(0), gref: U32::new(3) };
    hv.page_write(GUEST, rx, sring::ENTRIES, req.as_bytes()).unwrap();
    hv.page_write(GUEST, rx, sring::REQ_PROD, &1u32.to_le_bytes()).unwrap();
    assert_eq!(hv.heap_free(), 0);
    netback.queue_rx(vec![0xab; 60]);
    netback.kick(hv, 5_000);
    let sq = netback.squeeze_state();
    assert_eq!(sq.squeeze_lines().map(|l| (l.at_ns, l.level)).collect::<Vec<_>>(), vec![(5_000, "KERN_WARNING")]);
    assert_eq!((sq.squeezes, sq.timer_ns), (1, Some(5_000 + netback::SQUEEZE_BACKOFF_NS)));
    assert_eq!(netback.log(), ["xen_net: Memory squeeze in netback driver."]);
    // A kick with no new packet while the timer is pending does not retry.
    netback.kick(hv, 6_000);
    assert_eq!((netback.squeeze_state().squeezes, netback.rx_queued()), (1, 1));
    // Memory comes back (another domain went away); the timer's expiry retries and flips.
    hv.release_heap(1);
    netback.kick(hv, 5_000 + netback::SQUEEZE_BACKOFF_NS);
    assert_eq!((netback.stats.rx_packets, netback.rx_queued(), netback.squeeze_state().squeezes), (1, 0, 1));
}
