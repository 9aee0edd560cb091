//! Datapath tests of the 82574L model: one named test per behaviour the module docs claim.

use super::*;
use crate::iommu::{HostRegion, Perm};
use crate::wire::{Cable, Direction, WireFaults};
use nicqual_hw::i82574_desc::{self as d, ExtRxRead, ExtRxWb, LegacyRxDesc, TxDesc};
use zerocopy::{FromBytes, IntoBytes};

const IOVA: u64 = 0x10_0000;
const MEM: usize = 1 << 20;
const TX_RING: usize = 0;
const RX_RING: usize = 0x1000;
const TX_BUF: usize = 0x1_0000;
const RX_BUF: usize = 0x4_0000;
const RING: u32 = 64;

/// A device and the memory it may DMA into (the IOMMU window shares it).
struct Rig {
    dev: I82574,
    mem: HostRegion,
    rx_bsize: usize,
    tx_tail: u32,
    rx_tail: u32,
}

pub(super) fn w(d: &mut I82574, off: u32, v: u32) {
    d.bar_write32(r::BAR_REGS, off as u64, v);
}

pub(super) fn rd(d: &mut I82574, off: u32) -> u32 {
    d.bar_read32(r::BAR_REGS, off as u64)
}

impl Rig {
    /// Device up (link up, bus master), rings programmed, no RX descriptors posted yet.
    fn new(rctl_extra: u32, rx_bsize: usize) -> Rig {
        let mut dev = I82574::new(Config::default());
        dev.config_write(pci::COMMAND, 2, (pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER) as u32);
        dev.advance(DEFAULT_LINK_UP_DELAY_NS);
        let mem = HostRegion::zeroed(MEM);
        dev.iommu().map(IOVA, mem.clone(), Perm::READ_WRITE).unwrap();
        let ring_len = RING * 16;
        w(&mut dev, r::tdbal(0), (IOVA as usize + TX_RING) as u32);
        w(&mut dev, r::tdlen(0), ring_len);
        w(&mut dev, r::rdbal(0), (IOVA as usize + RX_RING) as u32);
        w(&mut dev, r::rdlen(0), ring_len);
        w(&mut dev, r::RFCTL, r::RFCTL_EXTEN);
        w(&mut dev, r::TCTL, r::TCTL_EN | r::TCTL_PSP);
        let bs = d::rctl_bsize_bits(rx_bsize).unwrap();
        w(&mut dev, r::RCTL, r::RCTL_EN | r::RCTL_BAM | r::RCTL_SECRC | bs | rctl_extra);
        Rig { dev, mem, rx_bsize, tx_tail: 0, rx_tail: 0 }
    }

    fn mem_write(&mut self, off: usize, b: &[u8]) {
        self.mem.write(off, b).unwrap();
    }

    /// Post `n` extended RX descriptors.
    fn post_rx(&mut self, n: u32) {
        for _ in 0..n {
            let i = self.rx_tail as usize;
            let desc =
                ExtRxRead { buffer_addr: (IOVA + (RX_BUF + i * self.rx_bsize) as u64).into(), reserved: 0.into() };
            self.mem_write(RX_RING + 16 * i, desc.as_bytes());
            self.rx_tail = (self.rx_tail + 1) % RING;
        }
        w(&mut self.dev, r::rdt(0), self.rx_tail);
    }

    /// Queue one frame as a legacy descriptor (RS|EOP|IFCS) and ring the doorbell.
    fn send(&mut self, frame: &[u8]) {
        let i = self.tx_tail as usize;
        let buf = TX_BUF + i * 0x4000;
        self.mem_write(buf, frame);
        let desc =
            TxDesc::legacy(IOVA + buf as u64, frame.len() as u16, d::TXD_CMD_EOP | d::TXD_CMD_RS | d::TXD_CMD_IFCS);
        self.mem_write(TX_RING + 16 * i, desc.as_bytes());
        self.tx_tail = (self.tx_tail + 1) % RING;
        w(&mut self.dev, r::tdt(0), self.tx_tail);
    }

    fn rx_wb(&self, i: u32) -> ExtRxWb {
        let o = RX_RING + 16 * i as usize;
        ExtRxWb::read_from_bytes(&self.mem.read_vec(o, 16).unwrap()).unwrap()
    }

    fn rx_buf(&self, i: u32, len: usize) -> Vec<u8> {
        let o = RX_BUF + i as usize * self.rx_bsize;
        self.mem.read_vec(o, len).unwrap()
    }
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    f[..6].copy_from_slice(&[0xFF; 6]); // broadcast: passes the filter with BAM
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    f
}

#[test]
fn mac_loopback_delivers_the_frame_intact_and_counts_it() {
    let mut g = Rig::new(r::RCTL_LBM_MAC, 2048);
    g.post_rx(8);
    let f = frame(128, 1);
    g.send(&f);
    let wb = g.rx_wb(0);
    assert!(wb.dd() && wb.eop());
    assert_eq!(wb.length.get() as usize, 128, "SECRC strips the FCS");
    assert_eq!(g.rx_buf(0, 128), &f[..]);
    assert_eq!(rd(&mut g.dev, r::rdh(0)), 1);
    assert_eq!(rd(&mut g.dev, r::tdh(0)), 1);
    // TX descriptor DD written back (RS set).
    assert_eq!(g.mem.read_vec(TX_RING + 12, 1).unwrap()[0] & 1, 1);
    assert_eq!(rd(&mut g.dev, r::GPTC), 1);
    assert_eq!(rd(&mut g.dev, r::GPRC), 1);
    assert_eq!(rd(&mut g.dev, r::BPRC), 1);
    assert_eq!(rd(&mut g.dev, r::GPRC), 0, "statistics clear on read");
    assert_eq!(rd(&mut g.dev, r::GORCL), 132, "octets include the FCS");
    assert_eq!(rd(&mut g.dev, r::GORCH), 0);
    assert_eq!(rd(&mut g.dev, r::GORCL), 0, "reading the high half clears both");
    let icr = rd(&mut g.dev, r::ICR);
    assert_ne!(icr & Icr::RXT0.bits(), 0);
    assert_ne!(icr & Icr::TXDW.bits(), 0);
    assert_ne!(icr & Icr::TXQE.bits(), 0);
}

#[test]
fn short_frame_is_padded_and_sizes_are_policed() {
    let mut g = Rig::new(r::RCTL_LBM_MAC, 2048);
    g.post_rx(8);
    g.send(&frame(42, 2));
    assert_eq!(g.rx_wb(0).length.get(), 60, "TCTL.PSP pads to 60");
    // 1600 bytes without LPE: oversize, dropped, ROC counted.
    g.send(&frame(1600, 3));
    assert_eq!(rd(&mut g.dev, r::ROC), 1);
    assert_eq!(rd(&mut g.dev, r::rdh(0)), 1);
}

#[test]
fn jumbo_frame_with_lpe_spans_descriptors_with_eop_on_the_last() {
    let mut g = Rig::new(r::RCTL_LBM_MAC | r::RCTL_LPE, 4096);
    g.post_rx(8);
    let f = frame(9018, 4);
    g.send(&f);
    let lens: Vec<u16> = (0..3).map(|i| g.rx_wb(i).length.get()).collect();
    assert_eq!(lens, [4096, 4096, 826]);
    assert!(!g.rx_wb(0).eop() && !g.rx_wb(1).eop() && g.rx_wb(2).eop());
    let mut got = Vec::new();
    for i in 0..3 {
        got.extend_from_slice(&g.rx_buf(i, lens[i as usize] as usize));
    }
    assert_eq!(got, f);
    assert_eq!(rd(&mut g.dev, r::GPRC), 1);
    // Above the chip's jumbo limit: dropped even with LPE.
    g.send(&frame(MAX_JUMBO_FRAME, 5));
    assert_eq!(rd(&mut g.dev, r::ROC), 1);
}

#[test]
fn no_descriptors_buffers_then_misses_with_rxo_and_recovers() {
    let mut g = Rig::new(r::RCTL_LBM_MAC, 2048);
    // PBA RX = 20 KiB at reset: 13 frames of 1514 (+4 FCS... stripped: 1514) fit.
    for i in 0..20 {
        g.send(&frame(1514, i));
    }
    let buffered = g.dev.rx_buffered_frames();
    assert_eq!(buffered, 20 * 1024 / 1514);
    assert_eq!(rd(&mut g.dev, r::RNBC), 20);
    assert_eq!(rd(&mut g.dev, r::MPC), (20 - buffered) as u32);
    assert_ne!(rd(&mut g.dev, r::ICR) & Icr::RXO.bits(), 0);
    // Posting descriptors drains the packet buffer in order.
    g.post_rx(32);
    assert_eq!(g.dev.rx_buffered_frames(), 0);
    assert_eq!(rd(&mut g.dev, r::rdh(0)), buffered as u32);
    assert_eq!(g.rx_buf(0, 1514), &frame(1514, 0)[..]);
    assert_eq!(g.rx_buf(buffered as u32 - 1, 1514), &frame(1514, buffered as u8 - 1)[..]);
    // And traffic flows again.
    g.send(&frame(100, 99));
    assert_eq!(rd(&mut g.dev, r::rdh(0)), buffered as u32 + 1);
}

#[test]
fn blocked_descriptor_dma_is_counted_and_stops_the_queue() {
    let mut g = Rig::new(r::RCTL_LBM_MAC, 2048);
    w(&mut g.dev, r::tdbal(0), 0x9000_0000); // nothing mapped there
    g.send(&frame(64, 0));
    assert_eq!(rd(&mut g.dev, r::tdh(0)), 0);
    assert_eq!(g.dev.datapath_counters().tx_desc_dma_faults, 1);
    assert!(g.dev.dma_faults_total() >= 1);
    // A tail outside the ring is refused, not followed.
    w(&mut g.dev, r::tdt(0), 5000);
    assert_eq!(g.dev.datapath_counters().tx_bad_ring, 1);
}

#[test]
fn rdtr_delays_rxt0_on_the_virtual_clock() {
    let mut g = Rig::new(r::RCTL_LBM_MAC, 2048);
    w(&mut g.dev, r::RDTR, 100); // 102.4 us
    g.post_rx(8);
    let _ = rd(&mut g.dev, r::ICR);
    g.send(&frame(64, 0));
    assert_eq!(rd(&mut g.dev, r::ICS) & Icr::RXT0.bits(), 0);
    g.dev.advance(100 * 1024 - 1);
    assert_eq!(rd(&mut g.dev, r::ICS) & Icr::RXT0.bits(), 0);
    g.dev.advance(1);
    assert_ne!(rd(&mut g.dev, r::ICS) & Icr::RXT0.bits(), 0);
}

#[test]
fn context_and_data_descriptors_insert_checksums_the_receiver_verifies() {
    let mut g = Rig::new(r::RCTL_LBM_MAC, 2048);
    g.post_rx(4);
    // UDP/IPv4 frame with zeroed IP checksum and the pseudo-header sum in the UDP field.
    let mut f = vec![0u8; 14 + 20 + 8 + 40];
    f[..6].copy_from_slice(&[0xFF; 6]);
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&(68u16).to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[38..40].copy_from_slice(&48u16.to_be_bytes());
    let pseudo = crate::net::fold(crate::net::ones_sum(&f[26..34], 0) + 17 + 48);
    f[40..42].copy_from_slice(&pseudo.to_be_bytes());
    let ctx = d::TxContextDesc {
        ipcss: 14,
        ipcso: 24,
        ipcse: 33.into(),
        tucss: 34,
        tucso: 40,
        tucse: 0.into(),
        cmd_and_length: (d::TXD_CMD_DEXT | d::TXD_CMD_IP).into(),
        ..Default::default()
    };
    g.mem_write(TX_RING, ctx.as_bytes());
    g.mem_write(TX_BUF, &f);
    let data = TxDesc::data(
        IOVA + TX_BUF as u64,
        f.len() as u32,
        d::TXD_CMD_EOP | d::TXD_CMD_IFCS | d::TXD_CMD_RS,
        d::TXD_POPTS_IXSM | d::TXD_POPTS_TXSM,
    );
    g.mem_write(TX_RING + 16, data.as_bytes());
    w(&mut g.dev, r::tdt(0), 2);
    let wb = g.rx_wb(0);
    let st = wb.status_error.get();
    assert_eq!(st & (d::RXD_STAT_IPCS | d::RXD_STAT_UDPCS), d::RXD_STAT_IPCS | d::RXD_STAT_UDPCS, "{st:#x}");
    assert_eq!(st & (d::RXDEXT_ERR_IPE | d::RXDEXT_ERR_TCPE), 0);
    assert_eq!(crate::net::rx_check(&g.rx_buf(0, f.len())).udp, Some(true));
}

#[test]
fn legacy_rx_descriptors_when_exten_is_clear() {
    let mut g = Rig::new(r::RCTL_LBM_MAC, 2048);
    w(&mut g.dev, r::RFCTL, 0);
    w(&mut g.dev, r::RCTL, r::RCTL_EN | r::RCTL_LBM_MAC | r::RCTL_BAM); // FCS kept
    g.post_rx(2);
    g.send(&frame(80, 7));
    let l = LegacyRxDesc::read_from_bytes(&g.mem.read_vec(RX_RING, 16).unwrap()).unwrap();
    assert_eq!(l.length.get(), 84, "FCS delivered without SECRC");
    assert_eq!(l.status & 3, 3);
    assert_eq!(l.buffer_addr.get(), IOVA + RX_BUF as u64, "address preserved in legacy write-back");
    assert!(crate::wire::fcs_ok(&g.rx_buf(0, 84)));
}

#[test]
fn cable_carries_frames_between_two_devices_and_crc_errors_are_counted() {
    let mut a = Rig::new(0, 2048);
    let mut b = Rig::new(0, 2048);
    let cable = Cable::new();
    let (ea, eb) = cable.ends();
    a.dev.connect(ea);
    b.dev.connect(eb);
    b.post_rx(32);
    let f = frame(200, 9);
    a.send(&f);
    let _ = rd(&mut b.dev, r::STATUS); // b picks the frame up at its next access
    assert_eq!(b.rx_buf(0, 200), &f[..]);
    cable.set_faults(Direction::AToB, WireFaults { seed: 1, corrupt: 1.0, ..Default::default() });
    a.send(&f);
    let _ = rd(&mut b.dev, r::STATUS);
    assert_eq!(rd(&mut b.dev, r::CRCERRS), 1);
    assert_eq!(rd(&mut b.dev, r::rdh(0)), 1, "a corrupted frame is not delivered");
    assert_eq!(cable.stats(Direction::AToB).corrupted, 1);
}

#[test]
fn address_filter_drops_foreign_unicast_without_upe() {
    let mut g = Rig::new(r::RCTL_LBM_MAC, 2048);
    g.post_rx(4);
    let mut f = frame(64, 0);
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    g.send(&f);
    assert_eq!(g.dev.datapath_counters().rx_filtered, 1);
    f[..6].copy_from_slice(&Config::default().mac);
    g.send(&f);
    assert_eq!(g.dev.datapath_counters().rx_frames, 1, "own address (RAL0/RAH0) accepted");
}
