use super::*;
use crate::dmamap::DmaPlatform;
use crate::health::CheckResult;
use crate::swiotlb::{DeviceName, Generation, SwiotlbConfig};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_dma::memory::HostMemory;
use nicqual_model::bnx2x::Bnx2xDevice;

type Port = Bnx2xPort<EmulatedBackend<Bnx2xDevice>>;

fn good_cqe(len: u16) -> FastPathRxCqe {
    let mut c = FastPathRxCqe { placement_offset: 66, ..FastPathRxCqe::default() };
    c.pkt_len_or_gro_seg_len.set(len);
    c.len_on_bd.set(len);
    c
}

#[test]
fn hostile_cqes_are_refused_with_the_field_named() {
    let mtu = 9000;
    assert_eq!(validate_cqe(&good_cqe(9030), mtu, false).unwrap().len, 9030);
    let mut c = good_cqe(100);
    c.marker.set(hw::CQE_MARKER_UNUSED);
    assert!(matches!(validate_cqe(&c, mtu, false), Err(CqeError::NotReady { marker: 0xFFFF_FFFF })));
    let mut c = good_cqe(100);
    c.type_error_flags = hw::CQE_TYPE_TPA_STOP;
    assert!(matches!(validate_cqe(&c, mtu, false), Err(CqeError::UnexpectedType { cqe_type: 3, .. })));
    assert!(matches!(validate_cqe(&good_cqe(0xFFFF), mtu, false), Err(CqeError::AllOnes { .. })));
    assert!(matches!(validate_cqe(&good_cqe(9031), mtu, false), Err(CqeError::BadLength { max: 9030, .. })));
    assert!(matches!(validate_cqe(&good_cqe(1531), 1500, false), Err(CqeError::BadLength { .. })));
    assert!(matches!(validate_cqe(&good_cqe(3), mtu, false), Err(CqeError::BadLength { min: 14, .. })));
    let mut c = good_cqe(100);
    c.len_on_bd.set(101);
    assert!(matches!(validate_cqe(&c, mtu, false), Err(CqeError::LenOnBd { .. })));
    let mut c = good_cqe(9030);
    c.placement_offset = 200;
    let e = validate_cqe(&c, mtu, false).unwrap_err();
    assert!(e.to_string().contains("placement_offset 200 + len_on_bd 9030 overruns the 9152 bytes"), "{e}");
    let mut c = good_cqe(100);
    c.type_error_flags = hw::CQE_PHY_DECODE_ERR;
    assert!(validate_cqe(&c, mtu, false).unwrap().phy_error);
}

fn port(platform: &crate::dmamap::SharedPlatform, bdf: &str, cfg: PortConfig) -> Port {
    let b = EmulatedBackend::new(Bnx2xDevice::new(), format!("model:bnx2x:{bdf}"));
    let dma = DmaApi::new(DeviceName::new("bnx2x", bdf), platform.clone(), u64::MAX);
    Bnx2xPort::open(b, dma, cfg).unwrap()
}

#[test]
fn jumbo_rx_on_xen_bounces_and_delivers_the_device_bytes() {
    let mem = HostMemory::xen_pv(1 << 16, 1, 5);
    let p = DmaPlatform::swiotlb(mem, SwiotlbConfig::with_mib(Generation::ClassicXen, 4)).unwrap().shared();
    let cfg = PortConfig { rx_bds: 64, ..PortConfig::linux_default(9000, 1) };
    let mut port = port(&p, "0000:04:00.0", cfg);
    assert_eq!(port.rx_posted(), 64);
    assert_eq!(p.borrow().pool_stats().unwrap().used, 64 * 5, "every 9472-byte rx buffer bounces");
    let frame: Vec<u8> = (0..9000u32).map(|i| i as u8).collect();
    let addr = port.rx_head_addr().unwrap();
    let cqe = port.backend.device_mut().receive(addr, &frame, 9000).unwrap();
    assert!(matches!(port.rx_complete(&cqe), RxOutcome::Delivered { len: 9000 }));
    assert_eq!(port.counters.rx_frames, 1);
    // A hostile CQE never reaches the buffer bookkeeping.
    let mut bad = cqe;
    bad.len_on_bd.set(9999);
    assert!(matches!(port.rx_complete(&bad), RxOutcome::BadCqe(CqeError::LenOnBd { .. })));
    assert_eq!((port.rx_posted(), port.counters.rx_bad_cqe), (64, 1));
    // tx: a linear 25158-byte skb bounces (13 slots), a fragment-built one does not.
    let before = p.borrow().pool_stats().unwrap().used;
    assert!(matches!(port.tx_submit(0, &TxSkb { linear: 25158, frags: vec![] }), TxOutcome::Sent));
    assert_eq!(p.borrow().pool_stats().unwrap().used, before + 13);
    assert!(matches!(port.tx_submit(0, &TxSkb { linear: 128, frags: vec![4096; 6] }), TxOutcome::Sent));
    assert_eq!(p.borrow().pool_stats().unwrap().used, before + 13, "page fragments never bounce");
    assert!(port.tx_complete(0));
    assert!(port.tx_complete(0));
    let (r, b) = port.close();
    assert_eq!(r.result, CheckResult::Pass, "{}", r.detail);
    assert_eq!(b.live_mappings(), 0);
    assert_eq!(p.borrow().pool_stats().unwrap().used, 0);
}

#[test]
fn exhaustion_drops_one_packet_and_keeps_the_ring_full() {
    let mem = HostMemory::xen_pv(1 << 16, 1, 5);
    // One segment: 21 five-slot rx buffers fit, then the pool is out.
    let p = DmaPlatform::swiotlb(mem, SwiotlbConfig::with_slots(Generation::ClassicXen, 128)).unwrap().shared();
    let cfg = PortConfig { rx_bds: 30, ..PortConfig::linux_default(9000, 1) };
    let mut port = port(&p, "0000:04:00.1", cfg);
    assert_eq!((port.rx_posted(), port.counters.rx_ring_short), (21, 9), "ring left short, not a crash");
    let addr = port.rx_head_addr().unwrap();
    let cqe = port.backend.device_mut().receive(addr, &[0xAB; 1500], 9000).unwrap();
    match port.rx_complete(&cqe) {
        RxOutcome::Dropped(e) => assert!(e.is_pool_full(), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!((port.rx_posted(), port.counters.rx_map_errors), (21, 1));
    match port.tx_submit(0, &TxSkb { linear: 33302, frags: vec![] }) {
        TxOutcome::Dropped(DmaError::Swiotlb(crate::swiotlb::SwiotlbError::Full { action, .. })) => {
            assert_eq!(
                action,
                crate::swiotlb::OldKernelAction::Panic { message: "DMA: Random memory could be DMA read".into() }
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(port.counters.tx_map_errors, 1);
    let (r, _) = port.close();
    assert_eq!(r.result, CheckResult::Pass, "{}", r.detail);
}
