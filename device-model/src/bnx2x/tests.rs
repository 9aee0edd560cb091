use super::*;
use crate::HostRegion;
use crate::iommu::Perm;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn identity_bars_and_msix_capability() {
    for id in [hw::PCI_DEVICE_57810, hw::PCI_DEVICE_57711, hw::PCI_DEVICE_57712] {
        let mut d = Bnx2xDevice::with_config(Config { device_id: id, queues: 4 });
        assert_eq!(d.config_read(pci::VENDOR_ID, 2), u32::from(hw::PCI_VENDOR_BROADCOM));
        assert_eq!(d.config_read(pci::DEVICE_ID, 2), u32::from(id));
        assert_eq!(
            (d.bar_len(0), d.bar_len(2), d.bar_len(4)),
            (Some(BAR0_LEN), Some(BAR2_LEN), Some(hw::BAR_MSIX_LEN))
        );
        assert_eq!(d.config_read(CAP_MSIX, 1), u32::from(pci::CAP_ID_MSIX));
        let ctrl = d.config_read(CAP_MSIX + pci::MSIX_MSG_CTRL, 2) as u16;
        assert_eq!((ctrl & pci::MSIX_CTRL_TABLE_SIZE_MASK) + 1, hw::MSIX_VECTORS);
        assert_eq!(d.config_read(CAP_MSIX + pci::MSIX_TABLE, 4) & pci::MSIX_BIR_MASK, u32::from(hw::BAR_MSIX));
    }
}

#[test]
fn doorbells_are_the_tables_and_nothing_else() {
    let mut d = Bnx2xDevice::new();
    // No queue is set up: a doorbell is recorded but nothing is fetched.
    let ring = |prod: u32| (prod << 16) | u32::from(hw::DOORBELL_HDR_DB_TYPE);
    d.bar_write32(2, hw::DOORBELL_STRIDE, ring(17));
    assert_eq!(d.queues[1].tx_prod, 17);
    d.bar_write32(2, hw::DOORBELL_STRIDE + 4, ring(5));
    d.bar_write32(2, hw::DOORBELL_CIDS * hw::DOORBELL_STRIDE, ring(5));
    d.bar_write32(2, hw::DOORBELL_STRIDE, 5 << 16);
    assert_eq!(d.queues[1].tx_prod, 17);
    assert_eq!(d.stats.tx_packets, 0);
}

/// Any BAR write of any value, at any offset, in any order: no panic, no DMA outside
/// what is mapped (none is), and reads stay answerable.
#[test]
fn random_bar_traffic_never_panics() {
    let seed = 0x5EED_0018;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut d = Bnx2xDevice::with_config(Config { queues: 8, ..Config::default() });
    d.iommu().map(0x10_0000, HostRegion::zeroed(64 * 1024), Perm::READ_WRITE).unwrap();
    let hot: Vec<u64> = [hw::RX_PRODS_LO, hw::RX_PRODS_HI, hw::IGU_ACK, hw::DSB_ADDR_LO, hw::SPQ_PROD]
        .into_iter()
        .chain((0..16).map(|r| hw::queue_reg(rng.random_range(0..9), r * 4)))
        .collect();
    for _ in 0..200_000 {
        let bar = [0u8, 2, 4, 1][rng.random_range(0..4)];
        let off = if rng.random_bool(0.7) {
            hot[rng.random_range(0..hot.len())] + 8 * rng.random_range(0..10u64)
        } else {
            rng.random::<u64>() % (BAR0_LEN + 64)
        };
        let v: u32 = if rng.random_bool(0.5) { rng.random() } else { 0x10_0000 + rng.random_range(0..0x1_0000) };
        if rng.random_bool(0.8) {
            d.bar_write32(bar, off, v);
        } else {
            let _ = d.bar_read32(bar, off);
        }
    }
    let _ = seed;
}
