//! Tests of the 82574L's second queue pair: TX queue 1 as a working ring, TARC enable and
//! arbitration, per-queue interrupt causes routed through every IVAR entry.

use super::datapath_tests::{rd, w};
use super::*;
use crate::iommu::{HostRegion, Perm};
use nicqual_hw::i82574_desc::{self as d, ExtRxRead, ExtRxWb, TxDesc};
use zerocopy::{FromBytes, IntoBytes};

const IOVA: u64 = 0x10_0000;
const MEM: usize = 1 << 20;
/// Ring and buffer areas per queue: `AREA * q` apart.
const AREA: usize = 0x4_0000;
const TX_RING: usize = 0;
const RX_RING: usize = 0x1000;
const TX_BUF: usize = 0x2000;
const RX_BUF: usize = 0x2_0000;
const BUF: usize = 0x800;
const RING: u32 = 16;
const MSI_ADDR: u32 = 0xFEE0_0000;
/// Every IVAR entry valid, each cause on a vector of its own: RxQ0 -> 0, RxQ1 -> 1,
/// TxQ0 -> 2, TxQ1 -> 3, Other -> 4.
pub(super) const IVAR_ALL_FIVE: u32 = 0x000C_BA98;

/// A device in MAC loopback with both queue pairs' rings programmed (empty), extended RX
/// descriptors, 2 KiB buffers, FCS stripped.
pub(super) struct Rig {
    pub(super) dev: I82574,
    mem: HostRegion,
    tx_tail: [u32; 2],
    rx_tail: [u32; 2],
}

impl Rig {
    pub(super) fn new() -> Rig {
        let mut dev = I82574::new(Config::default());
        dev.config_write(pci::COMMAND, 2, (pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER) as u32);
        dev.advance(DEFAULT_LINK_UP_DELAY_NS);
        let mem = HostRegion::zeroed(MEM);
        dev.iommu().map(IOVA, mem.clone(), Perm::READ_WRITE).unwrap();
        for q in 0..2u32 {
            let base = IOVA + (AREA * q as usize) as u64;
            w(&mut dev, r::tdbal(q), (base + TX_RING as u64) as u32);
            w(&mut dev, r::tdlen(q), RING * 16);
            w(&mut dev, r::rdbal(q), (base + RX_RING as u64) as u32);
            w(&mut dev, r::rdlen(q), RING * 16);
        }
        w(&mut dev, r::RFCTL, r::RFCTL_EXTEN);
        w(&mut dev, r::TCTL, r::TCTL_EN | r::TCTL_PSP);
        w(&mut dev, r::RCTL, r::RCTL_EN | r::RCTL_BAM | r::RCTL_SECRC | r::RCTL_LBM_MAC);
        rd(&mut dev, r::ICR);
        Rig { dev, mem, tx_tail: [0; 2], rx_tail: [0; 2] }
    }

    /// MSI-X on, every vector unmasked (data = vector), every IVAR entry on its own vector,
    /// every routed cause enabled.
    pub(super) fn msix_all_five(&mut self) {
        for v in 0..5u64 {
            self.dev.bar_write32(r::BAR_MSIX, v * 16, MSI_ADDR);
            self.dev.bar_write32(r::BAR_MSIX, v * 16 + 8, v as u32);
            self.dev.bar_write32(r::BAR_MSIX, v * 16 + 12, 0);
        }
        self.dev.config_write(r::CAP_MSIX + 2, 2, pci::MSIX_CTRL_ENABLE as u32);
        w(&mut self.dev, r::IVAR, IVAR_ALL_FIVE);
        w(&mut self.dev, r::IMS, Icr::MSIX_ROUTED.bits());
    }

    fn at(q: u32, off: usize) -> usize {
        AREA * q as usize + off
    }

    pub(super) fn post_rx(&mut self, q: u32, n: u32) {
        for _ in 0..n {
            let i = self.rx_tail[q as usize] as usize;
            let buf = IOVA + Self::at(q, RX_BUF + i * BUF) as u64;
            let desc = ExtRxRead { buffer_addr: buf.into(), reserved: 0.into() };
            self.mem.write(Self::at(q, RX_RING + 16 * i), desc.as_bytes()).unwrap();
            self.rx_tail[q as usize] = (i as u32 + 1) % RING;
        }
        w(&mut self.dev, r::rdt(q), self.rx_tail[q as usize]);
    }

    /// Write a frame into TX queue `q`'s next slot (RS|EOP|IFCS); ring the doorbell if
    /// `doorbell`.
    pub(super) fn queue_tx(&mut self, q: u32, frame: &[u8], doorbell: bool) {
        let i = self.tx_tail[q as usize] as usize;
        let buf = Self::at(q, TX_BUF + i * BUF);
        self.mem.write(buf, frame).unwrap();
        let desc =
            TxDesc::legacy(IOVA + buf as u64, frame.len() as u16, d::TXD_CMD_EOP | d::TXD_CMD_RS | d::TXD_CMD_IFCS);
        self.mem.write(Self::at(q, TX_RING + 16 * i), desc.as_bytes()).unwrap();
        self.tx_tail[q as usize] = (i as u32 + 1) % RING;
        if doorbell {
            w(&mut self.dev, r::tdt(q), self.tx_tail[q as usize]);
        }
    }

    pub(super) fn tx_dd(&self, q: u32, i: u32) -> bool {
        let mut b = [0u8; 16];
        self.mem.read(Self::at(q, TX_RING + 16 * i as usize), &mut b).unwrap();
        TxDesc::read_from_bytes(&b).unwrap().dd()
    }

    pub(super) fn rx_wb(&self, q: u32, i: u32) -> ExtRxWb {
        let mut b = [0u8; 16];
        self.mem.read(Self::at(q, RX_RING + 16 * i as usize), &mut b).unwrap();
        ExtRxWb::read_from_bytes(&b).unwrap()
    }

    pub(super) fn rx_buf(&self, q: u32, i: u32, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.mem.read(Self::at(q, RX_BUF + i as usize * BUF), &mut b).unwrap();
        b
    }

    pub(super) fn vectors(&mut self) -> Vec<u32> {
        self.dev.take_interrupts().iter().map(|m| m.data).collect()
    }
}

/// A broadcast frame of `len` bytes; byte 14 is `tag` (which frame it is).
pub(super) fn tagged(len: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![0xFFu8; 6];
    f.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x88, 0xB5, tag]);
    f.resize(len, tag ^ 0x5A);
    f
}

#[test]
fn ivar_all_five_routes_each_entry_to_its_own_vector() {
    for e in IvarEntry::ALL {
        assert_eq!(r::ivar_vector(IVAR_ALL_FIVE, e), Some(e.index() as u16), "{e}");
    }
}

#[test]
fn tx_queue_1_sends_and_raises_txq1_on_its_vector() {
    let mut rig = Rig::new();
    rig.msix_all_five();
    rig.post_rx(0, 4);
    rig.vectors();
    let f = tagged(100, 1);
    rig.queue_tx(1, &f, true);
    assert_eq!(rd(&mut rig.dev, r::tdh(1)), 1, "TX queue 1's head moved");
    assert_eq!(rd(&mut rig.dev, r::tdh(0)), 0, "queue 0 untouched");
    assert!(rig.tx_dd(1, 0), "DD written back in queue 1's ring");
    assert_eq!(rig.rx_buf(0, 0, f.len()), f, "looped back intact (no RSS: RX queue 0)");
    let v = rig.vectors();
    assert!(v.contains(&3), "TxQ1 -> vector 3: {v:?}");
    assert!(!v.contains(&2), "TxQ0's vector stays quiet: {v:?}");
    assert!(v.contains(&0), "RxQ0 -> vector 0 for the looped frame: {v:?}");
    assert_eq!(rd(&mut rig.dev, r::ICS) & (Icr::TXQ0 | Icr::TXQ1).bits(), Icr::TXQ1.bits());
}

#[test]
fn tx_queue_0_raises_txq0_only() {
    let mut rig = Rig::new();
    rig.msix_all_five();
    rig.post_rx(0, 4);
    rig.vectors();
    rig.queue_tx(0, &tagged(80, 2), true);
    let v = rig.vectors();
    assert!(v.contains(&2) && !v.contains(&3), "TxQ0 -> vector 2 only: {v:?}");
    assert_eq!(rd(&mut rig.dev, r::ICS) & (Icr::TXQ0 | Icr::TXQ1).bits(), Icr::TXQ0.bits());
}

#[test]
fn tarc_enable_clear_holds_the_queue_and_setting_it_releases_the_work() {
    let mut rig = Rig::new();
    rig.post_rx(0, 4);
    let tarc = rd(&mut rig.dev, r::tarc(1));
    w(&mut rig.dev, r::tarc(1), tarc & !r::TARC_ENABLE);
    rig.queue_tx(1, &tagged(64, 3), true);
    assert_eq!(rd(&mut rig.dev, r::tdh(1)), 0, "queue disabled by TARC1: nothing sent");
    assert_eq!(rig.dev.datapath_counters().tx_frames, 0);
    w(&mut rig.dev, r::tarc(1), tarc | r::TARC_ENABLE);
    assert_eq!(rd(&mut rig.dev, r::tdh(1)), 1, "enabling the queue lets its waiting frame go");
    assert_eq!(rig.dev.datapath_counters().tx_frames, 1);
}

#[test]
fn both_queues_with_work_take_turns_of_tarc_count_frames() {
    let mut rig = Rig::new();
    rig.post_rx(0, 12);
    // Both queues loaded while the transmitter is off, then TCTL.EN: the arbiter decides.
    w(&mut rig.dev, r::TCTL, 0);
    for k in 0..4u8 {
        rig.queue_tx(0, &tagged(64, 0x10 + k), false);
        rig.queue_tx(1, &tagged(64, 0x20 + k), false);
    }
    w(&mut rig.dev, r::tdt(0), 4);
    w(&mut rig.dev, r::tdt(1), 4);
    w(&mut rig.dev, r::tarc(0), r::TARC_ENABLE | 2);
    w(&mut rig.dev, r::tarc(1), r::TARC_ENABLE | 1);
    w(&mut rig.dev, r::TCTL, r::TCTL_EN | r::TCTL_PSP);
    let order: Vec<u8> = (0..8).map(|i| rig.rx_buf(0, i, 15)[14]).collect();
    // Queue 0 sends 2 per turn, queue 1 sends 1; once queue 0 is empty queue 1 runs alone.
    assert_eq!(order, vec![0x10, 0x11, 0x20, 0x12, 0x13, 0x21, 0x22, 0x23]);
    assert_eq!((rd(&mut rig.dev, r::tdh(0)), rd(&mut rig.dev, r::tdh(1))), (4, 4));
}

#[test]
fn a_partial_frame_on_one_queue_does_not_mix_with_the_other_queue() {
    let mut rig = Rig::new();
    rig.post_rx(0, 4);
    // Queue 0: first half of a frame (no EOP), tail after it.
    let f0 = tagged(200, 0x30);
    let buf = Rig::at(0, TX_BUF);
    rig.mem.write(buf, &f0).unwrap();
    let first = TxDesc::legacy(IOVA + buf as u64, 100, d::TXD_CMD_IFCS);
    rig.mem.write(Rig::at(0, TX_RING), first.as_bytes()).unwrap();
    w(&mut rig.dev, r::tdt(0), 1);
    // Queue 1: a whole frame.
    let f1 = tagged(90, 0x31);
    rig.queue_tx(1, &f1, true);
    assert_eq!(rig.rx_buf(0, 0, f1.len()), f1, "queue 1's frame alone");
    // Queue 0's second half completes its own frame.
    let second = TxDesc::legacy(IOVA + buf as u64 + 100, 100, d::TXD_CMD_EOP | d::TXD_CMD_IFCS | d::TXD_CMD_RS);
    rig.mem.write(Rig::at(0, TX_RING + 16), second.as_bytes()).unwrap();
    w(&mut rig.dev, r::tdt(0), 2);
    assert_eq!(rig.rx_buf(0, 1, f0.len()), f0, "queue 0's frame whole");
    assert_eq!(rig.rx_wb(0, 1).length.get() as usize, f0.len());
}
