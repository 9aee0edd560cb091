use super::*;
use crate::HostRegion;
use crate::iommu::Perm;
use nicqual_hw::bnx2x::FastPathRxCqe;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zerocopy::FromBytes;

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

/// The device follows the next-page pointers it reads from the ring, wherever the pages
/// are: an RX BD chain of two pages far apart (A → B → A) and a one-page RCQ linked to
/// itself, driven by hand (no driver), across both BD page links and many RCQ laps.
#[test]
fn rx_chain_pages_anywhere_are_followed_through_their_links() {
    let mut d = Bnx2xDevice::with_config(Config { queues: 1, ..Config::default() });
    let (page_a, page_b, rcq, sb, tx, bufs) =
        (0x10_0000u64, 0x50_0000u64, 0x20_0000u64, 0x30_0000u64, 0x40_0000u64, 0x100_0000u64);
    let mem = |len| HostRegion::zeroed(len);
    let (ra, rb, rr, rs, rt) = (mem(4096), mem(4096), mem(4096), mem(4096), mem(4096));
    let buf_len = 256usize;
    let rbufs = mem(2048 * buf_len);
    for (at, r) in [(page_a, &ra), (page_b, &rb), (rcq, &rr), (sb, &rs), (tx, &rt), (bufs, &rbufs)] {
        d.iommu().map(at, r.clone(), Perm::READ_WRITE).unwrap();
    }
    // Links: A's slots 510/511 point to B, B's to A; RCQ slot 63 to itself; TX slot 255 to itself.
    ra.write(510 * 8, &page_b.to_le_bytes()).unwrap();
    rb.write(510 * 8, &page_a.to_le_bytes()).unwrap();
    rr.write(63 * 64, &rcq.to_le_bytes()).unwrap();
    rt.write(255 * 16, &tx.to_le_bytes()).unwrap();
    // BD i (data index) -> buffer i; 1020 data slots over the two pages.
    for i in 0..1020u64 {
        let (page, slot) = if i < 510 { (&ra, i) } else { (&rb, i - 510) };
        page.write(slot as usize * 8, &(bufs + i * buf_len as u64).to_le_bytes()).unwrap();
    }
    let reg = |r| hw::queue_reg(0, r);
    for (r, v) in [
        (hw::Q_RX_BD_LO, page_a as u32),
        (hw::Q_RCQ_LO, rcq as u32),
        (hw::Q_TX_BD_LO, tx as u32),
        (hw::Q_SB_LO, sb as u32),
        (hw::Q_BD_BUF_LEN, buf_len as u32),
        (hw::Q_MTU, 1500),
        (hw::Q_ENABLE, 1),
    ] {
        d.bar_write32(0, reg(r), v);
    }
    assert_eq!(d.bar_read32(0, reg(hw::Q_STATUS)) & hw::Q_STATUS_UP, hw::Q_STATUS_UP);
    // The driver side, by hand: free-running indices that skip the link slots.
    let rx_next = |x: u16| if (x + 1) & 511 == 510 { x + 3 } else { x + 1 };
    let rcq_next = |x: u16| if (x + 1) & 63 == 63 { x + 2 } else { x + 1 };
    let mut bd_prod = 0u16;
    for _ in 0..1019 {
        bd_prod = rx_next(bd_prod);
    }
    let (mut cqe_prod, mut rcq_cons, mut frames) = (0u16, 0u16, 0u32);
    for round in 0..30u32 {
        for _ in 0..40 {
            cqe_prod = rcq_next(cqe_prod);
        }
        d.bar_write32(0, hw::RX_PRODS_LO, u32::from(cqe_prod) | u32::from(bd_prod) << 16);
        for k in 0..40u32 {
            let n = frames + k;
            let f: Vec<u8> = (0..100u32).map(|i| (n * 7 + i) as u8).collect();
            assert!(d.receive_frame(0, &f), "round {round} frame {k}");
        }
        // Frame n landed in buffer n mod 1020 (placement 66) and its CQE says so.
        for k in 0..40u32 {
            let n = frames + k;
            let mut got = [0u8; 100];
            rbufs.read((n % 1020) as usize * buf_len + 66, &mut got).unwrap();
            assert_eq!(got[..4], [(n * 7) as u8, (n * 7 + 1) as u8, (n * 7 + 2) as u8, (n * 7 + 3) as u8], "frame {n}");
            let slot = usize::from(rcq_cons & 63);
            let cqe = FastPathRxCqe::read_from_bytes(&rr.read_vec(slot * 64, 64).unwrap()).unwrap();
            assert_eq!((cqe.len_on_bd.get(), cqe.marker.get()), (100, 0), "CQE of frame {n}");
            rcq_cons = rcq_next(rcq_cons);
            // The buffer goes back on the ring (same slot order: BD i keeps buffer i).
            bd_prod = rx_next(bd_prod);
        }
        frames += 40;
    }
    // 1200 frames: the BD chain went A -> B -> A (1020 data slots), the RCQ round its own
    // link 19 times.
    let sbv = HcStatusBlockE2::read_from_bytes(&rs.read_vec(0, 64).unwrap()).unwrap();
    assert_eq!(sbv.index_values[hw::HC_INDEX_ETH_RX_CQ_CONS].get() & 63, rcq_cons & 63);
    assert_eq!(d.stats.rx_frames, 1200);
}

#[test]
fn composed_fast_path_cqe_matches_the_struct_layout() {
    use zerocopy::IntoBytes;
    let mut c = FastPathRxCqe {
        type_error_flags: hw::CQE_TYPE_TPA_START,
        queue_index: 7,
        placement_offset: 10,
        ..Default::default()
    };
    c.pkt_len_or_gro_seg_len.set(1514);
    c.len_on_bd.set(1514);
    let words = super::fast_path_cqe(hw::CQE_TYPE_TPA_START, 7, 10, 1514);
    let mut raw = [0u8; 64];
    for (d, w) in raw.chunks_exact_mut(8).zip(&words) {
        d.copy_from_slice(&w.to_le_bytes());
    }
    assert_eq!(&raw[..], c.as_bytes());
    assert_eq!(super::cqe_words(c.as_bytes()), words);
}
