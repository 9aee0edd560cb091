use super::*;
use crate::iommu::{HostRegion, Perm};

/// Guest memory for a test: rings and buffers in one block mapped at IOVA 0x10_0000.
struct Mem {
    buf: HostRegion,
}

const IOVA: u64 = 0x10_0000;
const RQ_RING: u64 = IOVA;
const CQ0_RING: u64 = IOVA + 0x400;
const CQ1_RING: u64 = IOVA + 0x800;
const WQ_RING: u64 = IOVA + 0xC00;
const BUFS: u64 = IOVA + 0x1000;
const N: u32 = 4;

fn setup(mem: &mut Mem, plan: EnicFaultPlan, buf_len: u16) -> EnicDevice {
    let mut d = EnicDevice::new(9000, plan);
    d.iommu().map(IOVA, mem.buf.clone(), Perm::READ_WRITE).unwrap();
    for (i, base) in [CQ0_RING, CQ1_RING].into_iter().enumerate() {
        let o = CQ_BASE + i as u64 * hw::VNIC_RES_STRIDE;
        d.reg_write32(o + hw::CQ_RING_BASE, base as u32);
        d.reg_write32(o + hw::CQ_RING_SIZE, N);
        d.reg_write32(o + hw::CQ_COLOR_ENABLE, 1);
        d.reg_write32(o + hw::CQ_TAIL_COLOR, 1);
    }
    d.reg_write32(RQ_BASE + hw::Q_RING_BASE, RQ_RING as u32);
    d.reg_write32(RQ_BASE + hw::Q_RING_SIZE, N);
    d.reg_write32(RQ_BASE + hw::Q_ENABLE, 1);
    d.reg_write32(WQ_BASE + hw::Q_RING_BASE, WQ_RING as u32);
    d.reg_write32(WQ_BASE + hw::Q_RING_SIZE, N);
    d.reg_write32(WQ_BASE + hw::Q_CQ_INDEX, 1);
    d.reg_write32(WQ_BASE + hw::Q_ENABLE, 1);
    for i in 0..N as usize {
        let r = RqEnetDesc::new(BUFS + i as u64 * 0x4000, buf_len, hw::RQ_ENET_TYPE_ONLY_SOP);
        let o = (RQ_RING - IOVA) as usize + i * 16;
        mem.buf.write(o, zerocopy::IntoBytes::as_bytes(&r)).unwrap();
    }
    d
}

fn cq0(mem: &Mem, i: usize) -> RqCompletion {
    let o = (CQ0_RING - IOVA) as usize + i * 16;
    <CqEnetRqDesc as zerocopy::FromBytes>::read_from_bytes(&mem.buf.read_vec(o, 16).unwrap()).unwrap().decode()
}

#[test]
fn resource_table_lists_the_blocks_and_mtu_is_reported() {
    let mut d = EnicDevice::new(1500, EnicFaultPlan::none());
    assert_eq!(d.reg_read32(0), hw::VNIC_RES_MAGIC);
    assert_eq!(d.reg_read32(hw::RES_HDR_LEN), u32::from(hw::RES_TYPE_WQ));
    assert_eq!(d.reg_read32(hw::RES_HDR_LEN + 4), WQ_BASE as u32);
    assert_eq!(d.reg_read32(hw::RES_HDR_LEN + 2 * hw::RES_ENTRY_LEN + 8), 2);
    assert_eq!(d.reg_read32(hw::RES_HDR_LEN + 4 * hw::RES_ENTRY_LEN), 0, "end of list");
    assert_eq!(d.reg_read32(NIC_CFG_BASE + hw::NIC_CFG_MTU), 1500);
    d.surprise_remove();
    assert_eq!(d.reg_read32(RQ_BASE + hw::Q_FETCH_INDEX), u32::MAX);
}

#[test]
fn completion_colour_flips_on_every_wrap() {
    let mut mem = Mem { buf: HostRegion::zeroed(0x20000) };
    let mut d = setup(&mut mem, EnicFaultPlan::none(), 2000);
    let mut colors = Vec::new();
    for lap in 0..3u32 {
        // Post N-1 buffers (one slot stays unused), receive them, repost.
        for k in 0..N - 1 {
            let posted = (d.reg_read32(RQ_BASE + hw::Q_FETCH_INDEX) + 1) % N;
            d.reg_write32(RQ_BASE + hw::Q_POSTED_INDEX, posted);
            assert_eq!(d.receive(&[lap as u8; 100]), RxFate::Written, "lap {lap} frame {k}");
            let tail = d.reg_read32(CQ_BASE + hw::CQ_TAIL) as usize;
            colors.push(cq0(&mem, (tail + N as usize - 1) % N as usize).color);
        }
    }
    // 9 completions over a 4-entry CQ: colour 1 for entries 0-3, 0 for 4-7, 1 again at 8.
    assert_eq!(colors, [true, true, true, true, false, false, false, false, true]);
}

#[test]
fn honest_adapter_truncates_to_the_posted_length_and_overrun_is_blocked_by_the_iommu() {
    let mut mem = Mem { buf: HostRegion::zeroed(0x20000) };
    let mut d = setup(&mut mem, EnicFaultPlan::none(), 1518);
    d.reg_write32(RQ_BASE + hw::Q_POSTED_INDEX, 3);
    assert_eq!(d.receive(&[7; 1522]), RxFate::Written);
    let c = cq0(&mem, 0);
    assert!(c.truncated && c.bytes_written == 1518 && c.sop && c.eop);
    // Map buffer 1 exactly, as a defending driver does: an overrun cannot pass its end.
    d.iommu().unmap(IOVA).unwrap();
    let b1 = (BUFS - IOVA) as usize + 0x4000;
    d.iommu().map(BUFS + 0x4000, mem.buf.slice(b1, 1518).unwrap(), Perm::WRITE).unwrap();
    d.iommu().map(RQ_RING, mem.buf.slice(0, 0x1000).unwrap(), Perm::READ_WRITE).unwrap();
    d.force_next(EnicFault::Overrun);
    assert_eq!(d.receive(&[9; 1522]), RxFate::Blocked);
    assert_eq!(cq0(&mem, 1).bytes_written, 1522, "the hostile completion still claims the full frame");
    assert!(mem.buf.read_vec(b1, 1518).unwrap().iter().all(|&b| b == 0), "a blocked write writes nothing");
    assert_eq!(d.dma_faults().len(), 1);
    assert_eq!(d.stats.faults_injected[0], 1);
}

#[test]
fn oversize_for_the_vnic_mtu_and_no_buffer_are_dropped_and_counted() {
    let mut mem = Mem { buf: HostRegion::zeroed(0x20000) };
    let mut d = setup(&mut mem, EnicFaultPlan::none(), 9018);
    d.reg_write32(RQ_BASE + hw::Q_POSTED_INDEX, 1);
    assert_eq!(d.receive(&[0; 9019]), RxFate::Dropped);
    assert_eq!(d.receive(&[0; 9018]), RxFate::Written);
    assert_eq!(d.receive(&[0; 60]), RxFate::Dropped);
    assert_eq!((d.stats.rx_oversize_dropped, d.stats.rx_no_buffer), (1, 1));
    assert_eq!(d.reg_read32(RQ_BASE + hw::RQ_DROPPED_PACKET_COUNT), 2);
    // A posted index outside the ring stops the queue instead of being used.
    d.reg_write32(RQ_BASE + hw::Q_POSTED_INDEX, N + 5);
    assert_eq!(d.reg_read32(RQ_BASE + hw::RQ_ERROR_STATUS), 1);
    assert_eq!(d.reg_read32(RQ_BASE + hw::Q_ENABLE), 0);
}

#[test]
fn transmit_loops_back_and_completes_on_the_wq_cq() {
    let mut mem = Mem { buf: HostRegion::zeroed(0x20000) };
    let mut d = setup(&mut mem, EnicFaultPlan::none(), 2000);
    d.reg_write32(RQ_BASE + hw::Q_POSTED_INDEX, 3);
    let tx = (BUFS - IOVA) as usize + 0xC000;
    mem.buf.write(tx, &[0xAB; 64]).unwrap();
    let w = WqEnetDesc::packet(BUFS + 0xC000, 64);
    let o = (WQ_RING - IOVA) as usize;
    mem.buf.write(o, zerocopy::IntoBytes::as_bytes(&w)).unwrap();
    d.reg_write32(WQ_BASE + hw::Q_POSTED_INDEX, 1);
    assert_eq!(d.reg_read32(WQ_BASE + hw::Q_FETCH_INDEX), 1);
    let wc =
        <CqDesc as zerocopy::FromBytes>::read_from_bytes(&mem.buf.read_vec((CQ1_RING - IOVA) as usize, 16).unwrap())
            .unwrap();
    assert_eq!((wc.ty(), wc.completed_index(), wc.color()), (hw::CQ_DESC_TYPE_WQ_ENET, 0, true));
    let rx = (BUFS - IOVA) as usize;
    assert_eq!(mem.buf.read_vec(rx, 64).unwrap(), [0xAB; 64]);
    assert_eq!(cq0(&mem, 0).bytes_written, 64);
}
