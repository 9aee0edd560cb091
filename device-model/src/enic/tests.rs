use super::*;
use crate::iommu::{HostRegion, Perm};
use nicqual_hw::pci;

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

/// Run devcmd `cmd` with `a0`, letting virtual time pass until it is no longer busy;
/// returns (status, args[0]).
fn devcmd(d: &mut EnicDevice, cmd: u32, a0: u64, a1: u64) -> (u32, u64) {
    for (k, v) in [a0 as u32, (a0 >> 32) as u32, a1 as u32, (a1 >> 32) as u32].into_iter().enumerate() {
        d.reg_write32(DEVCMD_BASE + hw::DEVCMD_ARGS + 4 * k as u64, v);
    }
    d.reg_write32(DEVCMD_BASE + hw::DEVCMD_CMD, cmd);
    assert_ne!(d.reg_read32(DEVCMD_BASE + hw::DEVCMD_STATUS) & hw::STAT_BUSY, 0, "busy right after the write");
    d.advance(DEVCMD_BUSY_NS);
    let st = d.reg_read32(DEVCMD_BASE + hw::DEVCMD_STATUS);
    let a0 = u64::from(d.reg_read32(DEVCMD_BASE + hw::DEVCMD_ARGS))
        | u64::from(d.reg_read32(DEVCMD_BASE + hw::DEVCMD_ARGS + 4)) << 32;
    (st, a0)
}

/// The bring-up sequence: open, init, enable (each waited for).
fn enable(d: &mut EnicDevice) {
    assert_eq!(devcmd(d, hw::CMD_OPEN, 0, 0).0, 0);
    d.advance(OPEN_NS);
    assert_eq!(devcmd(d, hw::CMD_OPEN_STATUS, 0, 0), (0, 0));
    assert_eq!(devcmd(d, hw::CMD_INIT, 0, 0).0, 0);
    d.advance(OPEN_NS);
    assert_eq!(devcmd(d, hw::CMD_INIT_STATUS, 0, 0), (0, 0));
    assert_eq!(devcmd(d, hw::CMD_ENABLE_WAIT, 0, 0).0, 0);
    assert!(d.is_enabled());
}

fn setup(mem: &mut Mem, plan: EnicFaultPlan, buf_len: u16) -> EnicDevice {
    let mut d = EnicDevice::new(9000, plan);
    d.iommu().map(IOVA, mem.buf.clone(), Perm::READ_WRITE).unwrap();
    enable(&mut d);
    for (i, base) in [CQ0_RING, CQ1_RING].into_iter().enumerate() {
        let o = CQ_BASE + i as u64 * hw::VNIC_RES_STRIDE;
        d.reg_write32(o + hw::CQ_RING_BASE, base as u32);
        d.reg_write32(o + hw::CQ_RING_SIZE, N);
        d.reg_write32(o + hw::CQ_COLOR_ENABLE, 1);
        d.reg_write32(o + hw::CQ_ENTRY_ENABLE, 1);
        d.reg_write32(o + hw::CQ_TAIL_COLOR, 1);
        d.reg_write32(o + hw::CQ_INTERRUPT_ENABLE, 1);
        d.reg_write32(o + hw::CQ_INTERRUPT_OFFSET, i as u32);
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
fn resource_table_lists_every_block_inside_bar0() {
    let mut d = EnicDevice::new(1500, EnicFaultPlan::none());
    assert_eq!(d.reg_read32(0), hw::VNIC_RES_MAGIC);
    assert_eq!(d.reg_read32(4), hw::VNIC_RES_VERSION);
    let mut seen = Vec::new();
    for i in 0..hw::RES_TABLE_MAX_ENTRIES {
        let o = hw::RES_HDR_LEN + i * hw::RES_ENTRY_LEN;
        let w = d.reg_read32(o);
        let (ty, bar) = ((w & 0xFF) as u8, (w >> 8) as u8);
        if ty == hw::RES_TYPE_EOL {
            break;
        }
        let (off, count) = (u64::from(d.reg_read32(o + 4)), d.reg_read32(o + 8));
        assert_eq!(bar, hw::BAR_REGS);
        assert!(off + hw::res_len(ty, count).unwrap() <= BAR0_LEN, "type {ty} at {off:#x}");
        seen.push((ty, off, count));
    }
    assert_eq!(seen, RESOURCES);
    assert_eq!(d.config_read(0, 4), 0x0043_1137);
    d.surprise_remove();
    assert_eq!(d.reg_read32(RQ_BASE + hw::Q_FETCH_INDEX), u32::MAX);
}

#[test]
fn devcmds_run_in_order_and_report_the_adapter_mtu_and_mac() {
    let mut d = EnicDevice::new(9000, EnicFaultPlan::none());
    // Init before open, enable before init: refused with ERR_EBADSTATE.
    assert_eq!(devcmd(&mut d, hw::CMD_INIT, 0, 0), (hw::STAT_ERROR, hw::ERR_EBADSTATE));
    assert_eq!(devcmd(&mut d, hw::CMD_OPEN, 0, 0).0, 0);
    assert_eq!(devcmd(&mut d, hw::CMD_OPEN_STATUS, 0, 0), (0, 1), "still opening");
    assert_eq!(devcmd(&mut d, hw::CMD_ENABLE_WAIT, 0, 0), (hw::STAT_ERROR, hw::ERR_EBADSTATE));
    d.advance(OPEN_NS);
    assert_eq!(devcmd(&mut d, hw::CMD_OPEN_STATUS, 0, 0), (0, 0));
    let mtu = devcmd(&mut d, hw::CMD_DEV_SPEC, hw::ENET_CONFIG_MTU, 2);
    assert_eq!(mtu, (0, 9000));
    assert_eq!(devcmd(&mut d, hw::CMD_DEV_SPEC, 45, 2).0, hw::STAT_ERROR, "past vnic_enet_config");
    assert_eq!(devcmd(&mut d, hw::CMD_DEV_SPEC, 0, 3).0, hw::STAT_ERROR, "size 3");
    let mac = devcmd(&mut d, hw::CMD_GET_MAC_ADDR, 0, 0).1.to_le_bytes();
    assert_eq!(mac[..6], EnicConfig::default().mac);
    assert_eq!(devcmd(&mut d, 0xFFFF_FFFF, 0, 0), (hw::STAT_ERROR, hw::ERR_ECMDUNKNOWN));
    // A command written while the previous one is busy is dropped and counted.
    d.reg_write32(DEVCMD_BASE + hw::DEVCMD_CMD, hw::CMD_DISABLE);
    d.reg_write32(DEVCMD_BASE + hw::DEVCMD_CMD, hw::CMD_CLOSE);
    assert_eq!((d.stats.devcmd_overrun, d.reg_read32(DEVCMD_BASE + hw::DEVCMD_CMD)), (1, hw::CMD_DISABLE));
}

#[test]
fn completions_credit_their_interrupt_which_masks_on_assertion_until_credits_return() {
    let mut mem = Mem { buf: HostRegion::zeroed(0x20000) };
    let mut d = setup(&mut mem, EnicFaultPlan::none(), 2000);
    d.config_write(pci::COMMAND, 2, u32::from(pci::COMMAND_BUS_MASTER | pci::COMMAND_MEMORY));
    d.config_write(CAP_MSIX + pci::MSIX_MSG_CTRL, 2, u32::from(pci::MSIX_CTRL_ENABLE));
    for v in 0..INTR_COUNT as u64 {
        let e = MSIX_TABLE_BASE + v * pci::MSIX_ENTRY_SIZE;
        d.reg_write32(e + pci::MSIX_ENTRY_ADDR_LO, pci::MSI_ADDRESS_BASE as u32);
        d.reg_write32(e + pci::MSIX_ENTRY_DATA, 0x40 + v as u32);
        d.reg_write32(e + pci::MSIX_ENTRY_VECTOR_CTRL, 0);
    }
    let i0 = INTR_BASE;
    d.reg_write32(i0 + hw::INTR_MASK_ON_ASSERTION, 1);
    d.reg_write32(RQ_BASE + hw::Q_POSTED_INDEX, 3);
    assert_eq!(d.receive(&[1; 100]), RxFate::Written);
    assert_eq!(d.receive(&[2; 100]), RxFate::Written);
    let m = d.take_interrupts();
    assert_eq!(m.iter().map(|m| m.data).collect::<Vec<_>>(), [0x40], "one message, then masked");
    assert_eq!(d.intr_state(0), Some((2, true)));
    // Return one credit and unmask: one still outstanding, so it asserts again.
    d.reg_write32(i0 + hw::INTR_INT_CREDIT_RETURN, 1 | hw::INTR_UNMASK | hw::INTR_RESET_TIMER);
    assert_eq!(d.take_interrupts().len(), 1);
    d.reg_write32(i0 + hw::INTR_INT_CREDIT_RETURN, 1 | hw::INTR_UNMASK);
    assert_eq!((d.take_interrupts().len(), d.intr_state(0)), (0, Some((0, false))));
    // A coalescing timer delays the message until the clock reaches it.
    d.reg_write32(i0 + hw::INTR_COALESCING_TIMER, 8);
    assert_eq!(d.receive(&[3; 100]), RxFate::Written);
    assert!(d.take_interrupts().is_empty());
    assert_eq!(d.next_deadline_ns(), Some(d.now_ns() - wire_ns(100) + 8_000));
    d.advance(8_000);
    assert_eq!(d.take_interrupts().len(), 1);
    // A lost vector: its table entry reads all-ones and its messages vanish.
    d.arm_faults("lose-vector:0".parse().unwrap());
    d.reg_write32(i0 + hw::INTR_COALESCING_TIMER, 0);
    d.reg_write32(i0 + hw::INTR_INT_CREDIT_RETURN, 1 | hw::INTR_UNMASK);
    assert_eq!(d.reg_read32(MSIX_TABLE_BASE), u32::MAX);
    assert_eq!(d.receive(&[4; 100]), RxFate::Dropped, "no buffer left: 3 posted");
    d.reg_write32(RQ_BASE + hw::Q_POSTED_INDEX, 0);
    assert_eq!(d.receive(&[4; 100]), RxFate::Written);
    assert!(d.take_interrupts().is_empty());
    assert_eq!(d.stats.msix_lost, 1);
}

#[test]
fn hostile_completion_corrupts_exactly_the_nth_entry() {
    for seed in 0..16u64 {
        let mut mem = Mem { buf: HostRegion::zeroed(0x20000) };
        let mut d = setup(&mut mem, EnicFaultPlan::none(), 2000);
        let mut plan: FaultPlan = "hostile-completion:1".parse().unwrap();
        plan.seed = seed;
        d.arm_faults(plan);
        d.reg_write32(RQ_BASE + hw::Q_POSTED_INDEX, 3);
        for k in 0..3u8 {
            assert_eq!(d.receive(&[k; 100]), RxFate::Written);
        }
        let honest = |i: u16| RqCompletion {
            completed_index: i,
            q_number: 0,
            sop: true,
            eop: true,
            bytes_written: 100,
            truncated: false,
            fcs_ok: true,
            ty: hw::CQ_DESC_TYPE_RQ_ENET,
            color: true,
        };
        assert_eq!(cq0(&mem, 0), honest(0), "seed {seed}");
        assert_eq!(cq0(&mem, 2), honest(2), "seed {seed}");
        let bad = cq0(&mem, 1);
        let h = d.hostile_completions();
        assert_eq!(h.len(), 1, "seed {seed}");
        assert_eq!((h[0].cq, h[0].slot), (0, 1));
        let good = honest(1);
        let changed = match h[0].field {
            HostileField::Type => bad.ty != good.ty,
            HostileField::Queue => bad.q_number != 0,
            HostileField::Index => u32::from(bad.completed_index) >= N,
            HostileField::SopEop => !(bad.sop && bad.eop),
            HostileField::Truncated => bad.truncated,
            HostileField::BytesWritten => bad.bytes_written > 2000,
            HostileField::Colour => !bad.color,
        };
        assert!(changed, "seed {seed}: {:?} not corrupted: {bad:?}", h[0].field);
        assert_ne!(bad, good);
    }
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
    // With the vNIC disabled nothing moves.
    devcmd(&mut d, hw::CMD_DISABLE, 0, 0);
    d.reg_write32(WQ_BASE + hw::Q_POSTED_INDEX, 2);
    assert_eq!(d.reg_read32(WQ_BASE + hw::Q_FETCH_INDEX), 1);
    let wc =
        <CqDesc as zerocopy::FromBytes>::read_from_bytes(&mem.buf.read_vec((CQ1_RING - IOVA) as usize, 16).unwrap())
            .unwrap();
    assert_eq!((wc.ty(), wc.completed_index(), wc.color()), (hw::CQ_DESC_TYPE_WQ_ENET, 0, true));
    let rx = (BUFS - IOVA) as usize;
    assert_eq!(mem.buf.read_vec(rx, 64).unwrap(), [0xAB; 64]);
    assert_eq!(cq0(&mem, 0).bytes_written, 64);
}

/// Every WQ loops back into the RQ of the same number: a frame sent on WQ q lands in RQ q's
/// buffer with its receive completion (q_number q) on the CQ RQ q names, its transmit
/// completion (q_number q) on the CQ WQ q names, and no other RQ fetches a buffer.
#[test]
fn each_wq_loops_back_into_the_rq_of_its_number() {
    let mem = Mem { buf: HostRegion::zeroed(0x20000) };
    let mut d = EnicDevice::new(9000, EnicFaultPlan::none());
    d.iommu().map(IOVA, mem.buf.clone(), Perm::READ_WRITE).unwrap();
    enable(&mut d);
    let n = QUEUES as u64;
    // Pair q's memory: RQ ring, RX CQ, TX CQ, WQ ring, RX buffer, TX buffer.
    let at = |q: u64, k: u64| IOVA + q * 0x2000 + k * 0x400;
    for q in 0..n {
        for (cq, ring) in [(q, at(q, 1)), (n + q, at(q, 2))] {
            let o = CQ_BASE + cq * hw::VNIC_RES_STRIDE;
            d.reg_write32(o + hw::CQ_RING_BASE, ring as u32);
            d.reg_write32(o + hw::CQ_RING_SIZE, N);
            d.reg_write32(o + hw::CQ_COLOR_ENABLE, 1);
            d.reg_write32(o + hw::CQ_ENTRY_ENABLE, 1);
            d.reg_write32(o + hw::CQ_TAIL_COLOR, 1);
        }
        for (base, ring, cq) in [(RQ_BASE, at(q, 0), q), (WQ_BASE, at(q, 3), n + q)] {
            let o = base + q * hw::VNIC_RES_STRIDE;
            d.reg_write32(o + hw::Q_RING_BASE, ring as u32);
            d.reg_write32(o + hw::Q_RING_SIZE, N);
            d.reg_write32(o + hw::Q_CQ_INDEX, cq as u32);
            d.reg_write32(o + hw::Q_ENABLE, 1);
        }
        let r = RqEnetDesc::new(at(q, 4), 0x400, hw::RQ_ENET_TYPE_ONLY_SOP);
        mem.buf.write((at(q, 0) - IOVA) as usize, zerocopy::IntoBytes::as_bytes(&r)).unwrap();
        d.reg_write32(RQ_BASE + q * hw::VNIC_RES_STRIDE + hw::Q_POSTED_INDEX, 1);
    }
    let q = 2;
    mem.buf.write((at(q, 5) - IOVA) as usize, &[0x5A; 80]).unwrap();
    let w = WqEnetDesc::packet(at(q, 5), 80);
    mem.buf.write((at(q, 3) - IOVA) as usize, zerocopy::IntoBytes::as_bytes(&w)).unwrap();
    d.reg_write32(WQ_BASE + q * hw::VNIC_RES_STRIDE + hw::Q_POSTED_INDEX, 1);
    assert_eq!(mem.buf.read_vec((at(q, 4) - IOVA) as usize, 80).unwrap(), [0x5A; 80]);
    let rc = <CqEnetRqDesc as zerocopy::FromBytes>::read_from_bytes(
        &mem.buf.read_vec((at(q, 1) - IOVA) as usize, 16).unwrap(),
    )
    .unwrap()
    .decode();
    assert_eq!((rc.q_number, rc.completed_index, rc.bytes_written, rc.color), (2, 0, 80, true));
    let wc =
        <CqDesc as zerocopy::FromBytes>::read_from_bytes(&mem.buf.read_vec((at(q, 2) - IOVA) as usize, 16).unwrap())
            .unwrap();
    assert_eq!((wc.ty(), wc.q_number(), wc.completed_index(), wc.color()), (hw::CQ_DESC_TYPE_WQ_ENET, 2, 0, true));
    for other in (0..n).filter(|o| *o != q) {
        let fetch = d.reg_read32(RQ_BASE + other * hw::VNIC_RES_STRIDE + hw::Q_FETCH_INDEX);
        assert_eq!(fetch, 0, "RQ {other} took a buffer for WQ {q}'s frame");
    }
    assert_eq!(d.reg_read32(RQ_BASE + q * hw::VNIC_RES_STRIDE + hw::Q_FETCH_INDEX), 1);
}

/// The completions the adapter composes in registers are byte for byte Linux's layouts
/// (`cq_enet_rq_desc`, `cq_desc`), for every flag combination.
#[test]
fn composed_completions_match_the_struct_layouts() {
    use nicqual_hw::enic::{CqDesc, CqEnetRqDesc, RqCompletion};
    use zerocopy::IntoBytes;
    let bytes = |w: [u64; 2]| w.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for bits in 0..32u32 {
        let c = RqCompletion {
            completed_index: 0x0ABC ^ bits as u16,
            q_number: 0x3FF - bits as u16,
            sop: bits & 1 != 0,
            eop: bits & 2 != 0,
            bytes_written: 0x3FFF - bits as u16 * 7,
            truncated: bits & 4 != 0,
            fcs_ok: bits & 8 != 0,
            ty: 1 + (bits as u8 & 3),
            color: bits & 16 != 0,
        };
        assert_eq!(bytes(super::rq_completion_words(c)), CqEnetRqDesc::new(c).as_bytes(), "{c:?}");
        let (q, i) = (bits as u16 * 3, 0x0FFF - bits as u16);
        let wq = CqDesc::new(nicqual_hw::enic::CQ_DESC_TYPE_WQ_ENET, q, i, false);
        assert_eq!(bytes(super::wq_completion_words(nicqual_hw::enic::CQ_DESC_TYPE_WQ_ENET, q, i)), wq.as_bytes());
        let b: [u8; 16] = CqEnetRqDesc::new(c).as_bytes().try_into().unwrap();
        assert_eq!(super::completion_words(&b), super::rq_completion_words(c));
    }
}
