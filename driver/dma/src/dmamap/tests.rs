use super::*;
use crate::swiotlb::{Generation, IO_TLB_SIZE};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_model::PciDevice;
use nicqual_model::i82574::{Config, I82574 as Model};

type B = EmulatedBackend<Model>;

fn backend() -> B {
    EmulatedBackend::new(Model::new(Config::default()), "model:i82574l")
}

fn dev(bdf: &str) -> DeviceName {
    DeviceName::new("bnx2x", bdf)
}

/// Xen dom0 memory with every page scattered, and a pool of `slots`.
fn xen(slots: usize) -> SharedPlatform {
    let mem = HostMemory::xen_pv(8192, 1, 3);
    DmaPlatform::swiotlb(mem, SwiotlbConfig::with_slots(Generation::ClassicXen, slots)).unwrap().shared()
}

fn device_read(b: &mut B, addr: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    b.device_mut().iommu().read(addr, &mut v, 0).unwrap();
    v
}

#[test]
fn iommu_strategy_maps_windows_and_never_bounces() {
    let mut b = backend();
    let p = DmaPlatform::iommu(HostMemory::xen_pv(1024, 1, 1)).shared();
    let mut api = DmaApi::new(dev("0000:04:00.0"), p, u64::MAX);
    let buf = api.alloc_buffer(&mut b, 9472, 16384).unwrap();
    buf.mem.write(100, b"hello").unwrap();
    let m = api.map_single(&mut b, &buf, 100, 9000, DmaDirection::ToDevice).unwrap();
    assert!(!m.bounced);
    assert_eq!(b.live_mappings(), 1);
    assert_eq!(device_read(&mut b, m.dma_addr, 5), b"hello");
    // A to-device window is read-only for the device.
    assert!(b.device_mut().iommu().write(m.dma_addr, &[0], 0).is_err());
    api.unmap(&mut b, m).unwrap();
    assert_eq!(b.live_mappings(), 0);
    let r = api.teardown(&mut b);
    assert_eq!(r.result, CheckResult::Pass, "{}", r.detail);
}

#[test]
fn xen_multi_page_buffers_bounce_with_copies_in_the_right_direction() {
    let mut b = backend();
    let mut api = DmaApi::new(dev("0000:04:00.0"), xen(1024), u64::MAX);
    // rx: 9472 bytes in a 16 KiB slab object, from the device.
    let rx = api.alloc_buffer(&mut b, 9536, 16384).unwrap();
    assert!(api.would_bounce(&rx, 64, 9472));
    let m = api.map_single(&mut b, &rx, 64, 9472, DmaDirection::FromDevice).unwrap();
    assert!(m.bounced);
    assert_eq!(m.dma_addr % PAGE_SIZE, 0, "multi-page bounce is page-aligned");
    let pool_used = api.platform().borrow().pool_stats().unwrap().used;
    assert_eq!(pool_used, 5);
    b.device_mut().iommu().write(m.dma_addr, b"frame", 0).unwrap();
    let mut seen = [0u8; 5];
    rx.mem.read(64, &mut seen).unwrap();
    assert_eq!(&seen, &[0; 5], "device data is not visible before a sync");
    api.sync_for_cpu(&m).unwrap();
    rx.mem.read(64, &mut seen).unwrap();
    assert_eq!(&seen, b"frame");
    api.unmap(&mut b, m).unwrap();
    // tx: a one-page fragment never bounces on Xen, a linear 25158-byte buffer does.
    let page = api.alloc_buffer(&mut b, 4096, 4096).unwrap();
    let frag = api.map_single(&mut b, &page, 0, 4096, DmaDirection::ToDevice).unwrap();
    assert!(!frag.bounced);
    let lin = api.alloc_buffer(&mut b, 25158, 32768).unwrap();
    lin.mem.write(0, b"payload").unwrap();
    let m = api.map_single(&mut b, &lin, 0, 25158, DmaDirection::ToDevice).unwrap();
    assert!(m.bounced);
    assert_eq!(device_read(&mut b, m.dma_addr, 7), b"payload", "copied in on map");
    assert_eq!(api.platform().borrow().pool_stats().unwrap().used, 13);
    api.unmap(&mut b, m).unwrap();
    api.unmap(&mut b, frag).unwrap();
    let s = api.stats();
    assert_eq!((s.maps, s.unmaps, s.bounced_maps, s.live_mappings), (3, 3, 2, 0));
    assert_eq!(s.hiwater_bytes, 4096 + 25158, "frag and linear buffer were live together");
    assert_eq!(api.teardown(&mut b).result, CheckResult::Pass);
    assert_eq!(b.live_mappings(), 0, "pool window removed at teardown");
}

#[test]
fn exhaustion_fails_one_mapping_and_is_counted() {
    let mut b = backend();
    let mut api = DmaApi::new(dev("0000:04:00.1"), xen(128), u64::MAX);
    let mut held = Vec::new();
    let mut failed = None;
    for _ in 0..30 {
        let buf = api.alloc_buffer(&mut b, 9536, 16384).unwrap();
        match api.map_single(&mut b, &buf, 64, 9472, DmaDirection::FromDevice) {
            Ok(m) => held.push(m),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    assert_eq!(held.len(), 21, "21 five-slot page-aligned maps per segment");
    let e = failed.unwrap();
    assert!(e.is_pool_full(), "{e}");
    assert_eq!(api.stats().map_errors, 1);
    let log = api.platform().borrow().pool().unwrap().log().to_vec();
    assert_eq!(log, ["PCI-DMA: Out of SW-IOMMU space for 9472 bytes at device 0000:04:00.1"]);
    // Leave one mapping live: teardown reports it.
    for m in held.drain(1..) {
        api.unmap(&mut b, m).unwrap();
    }
    let r = api.teardown(&mut b);
    assert_eq!(r.result, CheckResult::Fail);
    assert!(r.detail.contains("LEAK: 1 streaming mappings (9472 bytes"), "{}", r.detail);
    assert_eq!(b.live_mappings(), 0);
    assert_eq!(api.platform().borrow().pool_stats().unwrap().used, 0, "teardown returned the slots");
}

#[test]
fn two_ports_share_one_pool_and_misuse_is_typed() {
    let p = xen(256);
    let (mut b0, mut b1) = (backend(), backend());
    let mut a0 = DmaApi::new(dev("0000:04:00.0"), p.clone(), u64::MAX);
    let mut a1 = DmaApi::new(dev("0000:04:00.1"), p.clone(), u64::MAX);
    let x = a0.alloc_buffer(&mut b0, 100 * IO_TLB_SIZE, 4096).unwrap();
    let y = a1.alloc_buffer(&mut b1, 100 * IO_TLB_SIZE, 4096).unwrap();
    let mx = a0.map_single(&mut b0, &x, 0, x.len, DmaDirection::ToDevice).unwrap();
    let my = a1.map_single(&mut b1, &y, 0, y.len, DmaDirection::ToDevice).unwrap();
    assert_eq!(p.borrow().pool_stats().unwrap().used, 200);
    assert!(a0.map_single(&mut b0, &x, 0, 60 * IO_TLB_SIZE, DmaDirection::ToDevice).unwrap_err().is_pool_full());
    assert!(matches!(a0.unmap(&mut b0, my), Err(DmaError::NotMapped { .. })), "not this device's mapping");
    assert!(matches!(a0.map_single(&mut b0, &x, 1, x.len, DmaDirection::ToDevice), Err(DmaError::OutOfBounds { .. })));
    let c = a0.alloc_coherent(&mut b0, 4096).unwrap();
    assert_eq!(a0.stats().coherent_live, 1);
    a0.free_coherent(&mut b0, c).unwrap();
    a0.unmap(&mut b0, mx).unwrap();
    a1.unmap(&mut b1, my).unwrap();
    assert_eq!(a0.teardown(&mut b0).result, CheckResult::Pass);
    assert_eq!(a1.teardown(&mut b1).result, CheckResult::Pass);
    a0.free_buffer(x).unwrap();
    a1.free_buffer(y).unwrap();
}

#[test]
fn bidirectional_bounce_syncs_both_ways_and_a_coherent_leak_is_reported() {
    let mut b = backend();
    let mut api = DmaApi::new(dev("0000:04:00.0"), xen(256), u64::MAX);
    let buf = api.alloc_buffer(&mut b, 8192, 4096).unwrap();
    buf.mem.write(0, b"cpu1").unwrap();
    let m = api.map_single(&mut b, &buf, 0, 8192, DmaDirection::Bidirectional).unwrap();
    assert!(m.bounced, "two scattered pages");
    assert_eq!(device_read(&mut b, m.dma_addr, 4), b"cpu1", "copied in on map");
    // CPU -> device needs sync_for_device.
    buf.mem.write(0, b"cpu2").unwrap();
    assert_eq!(device_read(&mut b, m.dma_addr, 4), b"cpu1");
    api.sync_for_device(&m).unwrap();
    assert_eq!(device_read(&mut b, m.dma_addr, 4), b"cpu2");
    // Device -> CPU needs sync_for_cpu; unmap copies back too.
    b.device_mut().iommu().write(m.dma_addr, b"dev1", 0).unwrap();
    api.sync_for_cpu(&m).unwrap();
    let mut seen = [0u8; 4];
    buf.mem.read(0, &mut seen).unwrap();
    assert_eq!(&seen, b"dev1");
    b.device_mut().iommu().write(m.dma_addr + 4, b"dev2", 0).unwrap();
    api.unmap(&mut b, m).unwrap();
    buf.mem.read(4, &mut seen).unwrap();
    assert_eq!(&seen, b"dev2");
    // A coherent allocation is visible both ways without syncs, and one left behind is a leak.
    let c = api.alloc_coherent(&mut b, 4096).unwrap();
    c.mem.write(0, b"ring").unwrap();
    assert_eq!(device_read(&mut b, c.dma_addr, 4), b"ring");
    let r = api.teardown(&mut b);
    assert_eq!(r.result, CheckResult::Fail);
    assert!(r.detail.contains("0 streaming mappings") && r.detail.contains("1 coherent"), "{}", r.detail);
    assert_eq!(b.live_mappings(), 0, "teardown unmapped the coherent window");
}
