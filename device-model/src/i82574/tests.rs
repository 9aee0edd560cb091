//! One named test per interrupt rule of the 82574L, and one per fault kind.

use super::*;
use crate::faults::FaultPlan;

const MSI_ADDR: u32 = 0xFEE0_0000;

fn w(d: &mut I82574, off: u32, v: u32) {
    d.bar_write32(r::BAR_REGS, off as u64, v);
}

fn rd(d: &mut I82574, off: u32) -> u32 {
    d.bar_read32(r::BAR_REGS, off as u64)
}

/// Device with bus mastering on and no interrupt mode enabled (INTx).
fn intx_dev() -> I82574 {
    let mut d = I82574::new(Config::default());
    d.config_write(pci::COMMAND, 2, (pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER) as u32);
    d
}

/// Device in MSI-X mode, every table entry programmed (data = vector) and unmasked, and
/// IVAR as Linux writes it (RxQ0 -> 0, TxQ0 -> 1, Other -> 2).
fn msix_dev() -> I82574 {
    let mut d = intx_dev();
    for v in 0..5u64 {
        d.bar_write32(r::BAR_MSIX, v * 16, MSI_ADDR);
        d.bar_write32(r::BAR_MSIX, v * 16 + 8, v as u32);
        d.bar_write32(r::BAR_MSIX, v * 16 + 12, 0);
    }
    d.config_write(r::CAP_MSIX + 2, 2, pci::MSIX_CTRL_ENABLE as u32);
    w(&mut d, r::IVAR, 0x800A_0908);
    d
}

fn vectors(d: &mut I82574) -> Vec<u32> {
    d.take_interrupts().iter().map(|m| m.data).collect()
}

#[test]
fn icr_read_clears_all_causes_in_intx_mode() {
    let mut d = intx_dev();
    w(&mut d, r::ICS, Icr::RXT0.bits());
    assert_eq!(rd(&mut d, r::ICR), (Icr::RXT0 | Icr::INT_ASSERTED).bits());
    assert_eq!(rd(&mut d, r::ICR), 0);
}

#[test]
fn icr_read_clears_all_causes_in_msi_mode() {
    let mut d = intx_dev();
    d.config_write(r::CAP_MSI + 4, 4, MSI_ADDR);
    d.config_write(r::CAP_MSI + 12, 2, 0x30);
    d.config_write(r::CAP_MSI + 2, 2, 1);
    w(&mut d, r::IMS, Icr::RXT0.bits());
    w(&mut d, r::ICS, Icr::RXT0.bits() | Icr::LSC.bits());
    assert_eq!(vectors(&mut d), vec![0x30]);
    assert_ne!(rd(&mut d, r::ICR), 0);
    assert_eq!(rd(&mut d, r::ICR), 0);
}

#[test]
fn icr_read_clears_in_msix_mode_when_ims_is_zero() {
    let mut d = msix_dev();
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert_ne!(rd(&mut d, r::ICR), 0);
    assert_eq!(rd(&mut d, r::ICR), 0);
}

#[test]
fn icr_read_keeps_causes_when_only_disabled_causes_pending_in_msix_mode() {
    let mut d = msix_dev();
    w(&mut d, r::IMS, Icr::TXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    let want = (Icr::RXQ0 | Icr::INT_ASSERTED).bits();
    assert_eq!(rd(&mut d, r::ICR), want);
    assert_eq!(rd(&mut d, r::ICR), want, "SDM 13.3.27: read does not clear IMS-disabled causes");
}

#[test]
fn icr_read_clears_when_an_enabled_cause_is_pending_in_msix_mode() {
    let mut d = msix_dev();
    w(&mut d, r::IMS, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert_ne!(rd(&mut d, r::ICR), 0);
    assert_eq!(rd(&mut d, r::ICR), 0);
}

#[test]
fn icr_read_with_iame_masks_iam_causes() {
    let mut d = msix_dev();
    w(&mut d, r::CTRL_EXT, CtrlExt::IAME.bits());
    w(&mut d, r::IAM, Icr::RXQ0.bits());
    w(&mut d, r::IMS, (Icr::RXQ0 | Icr::TXQ0).bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    rd(&mut d, r::ICR);
    assert_eq!(rd(&mut d, r::IMS), Icr::TXQ0.bits());
}

#[test]
fn icr_write_is_write_one_to_clear() {
    let mut d = msix_dev();
    w(&mut d, r::ICS, (Icr::RXQ0 | Icr::TXQ0).bits());
    w(&mut d, r::ICR, Icr::RXQ0.bits());
    assert_eq!(d.peek(r::ICR), (Icr::TXQ0 | Icr::INT_ASSERTED).bits());
    w(&mut d, r::ICR, Icr::TXQ0.bits());
    assert_eq!(d.peek(r::ICR), 0, "INT_ASSERTED drops with the last cause");
}

#[test]
fn icr_write_of_other_clears_every_other_cause() {
    let mut d = msix_dev();
    w(&mut d, r::ICS, (Icr::LSC | Icr::MDAC).bits());
    assert!(d.peek(r::ICR) & Icr::OTHER.bits() != 0);
    w(&mut d, r::ICR, Icr::OTHER.bits());
    assert_eq!(d.peek(r::ICR), 0);
}

#[test]
fn ics_raises_causes_and_reads_back_as_icr_without_clearing() {
    let mut d = intx_dev();
    w(&mut d, r::ICS, Icr::TXDW.bits());
    assert_eq!(rd(&mut d, r::ICS), (Icr::TXDW | Icr::INT_ASSERTED).bits());
    assert_eq!(rd(&mut d, r::ICS), (Icr::TXDW | Icr::INT_ASSERTED).bits());
}

#[test]
fn ims_keeps_only_implemented_cause_bits() {
    let mut d = intx_dev();
    w(&mut d, r::IMS, 0xFFFF_FFFF);
    // QEMU's valid mask plus bits 3, 5 and 8, which Linux's interrupt self-test needs.
    assert_eq!(rd(&mut d, r::IMS), 0x01F7_82D7 | 0x128);
}

#[test]
fn imc_clears_ims_bits() {
    let mut d = intx_dev();
    w(&mut d, r::IMS, (Icr::RXT0 | Icr::LSC).bits());
    w(&mut d, r::IMC, Icr::LSC.bits());
    assert_eq!(rd(&mut d, r::IMS), Icr::RXT0.bits());
}

#[test]
fn ims_write_enabling_a_pending_cause_notifies() {
    let mut d = msix_dev();
    w(&mut d, r::ICS, Icr::TXQ0.bits());
    assert!(vectors(&mut d).is_empty(), "disabled cause sends nothing");
    w(&mut d, r::IMS, Icr::TXQ0.bits());
    assert_eq!(vectors(&mut d), vec![1]);
}

#[test]
fn notification_is_edge_triggered_and_pending_cause_does_not_refire() {
    let mut d = msix_dev();
    w(&mut d, r::IMS, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert_eq!(vectors(&mut d), vec![0], "second raise of a pending cause is not an edge");
    w(&mut d, r::ICR, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert_eq!(vectors(&mut d), vec![0]);
}

#[test]
fn eiac_auto_clears_icr_on_msix_delivery() {
    let mut d = msix_dev();
    w(&mut d, r::CTRL_EXT, CtrlExt::IAME.bits());
    w(&mut d, r::EIAC, Icr::RXQ0.bits());
    w(&mut d, r::IMS, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert_eq!(vectors(&mut d), vec![0]);
    assert_eq!(d.peek(r::ICR), 0);
    // Cleared, so the next raise is a new edge.
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert_eq!(vectors(&mut d), vec![0]);
}

#[test]
fn eiac_auto_masks_ims_when_iame_is_clear() {
    let mut d = msix_dev();
    w(&mut d, r::EIAC, Icr::RXQ0.bits());
    w(&mut d, r::IMS, (Icr::RXQ0 | Icr::TXQ0).bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert_eq!(rd(&mut d, r::IMS), Icr::TXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert_eq!(vectors(&mut d), vec![0], "masked until the driver re-arms IMS");
}

#[test]
fn eiac_auto_clear_happens_even_when_ivar_entry_is_invalid() {
    let mut d = msix_dev();
    w(&mut d, r::IVAR, 0x0000_0900); // RxQ0 invalid
    w(&mut d, r::EIAC, Icr::RXQ0.bits());
    w(&mut d, r::IMS, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert!(vectors(&mut d).is_empty());
    assert_eq!(d.peek(r::ICR), 0, "the event is consumed and lost");
    assert_eq!(d.counters.msix_invalid_route, 1);
}

#[test]
fn eiame_clears_the_iam_bit_of_a_routed_cause() {
    let mut d = msix_dev();
    w(&mut d, r::CTRL_EXT, CtrlExt::EIAME.bits());
    w(&mut d, r::IAM, (Icr::RXQ0 | Icr::TXQ0).bits());
    w(&mut d, r::IMS, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert_eq!(d.peek(r::IAM), Icr::TXQ0.bits());
}

#[test]
fn other_causes_fold_into_icr_other_under_msix() {
    let mut d = msix_dev();
    w(&mut d, r::IMS, Icr::OTHER.bits());
    w(&mut d, r::ICS, Icr::LSC.bits());
    assert_eq!(vectors(&mut d), vec![2]);
    assert_eq!(d.peek(r::ICR), (Icr::LSC | Icr::OTHER | Icr::INT_ASSERTED).bits());
}

#[test]
fn ivar_routes_every_entry_to_its_vector() {
    let mut d = msix_dev();
    let ivar = IvarEntry::ALL.iter().enumerate().fold(0, |a, (i, e)| a | r::ivar_entry(*e, 4 - i as u16));
    w(&mut d, r::IVAR, ivar);
    w(&mut d, r::EIAC, Icr::MSIX_ROUTED.bits());
    w(&mut d, r::CTRL_EXT, CtrlExt::IAME.bits());
    w(&mut d, r::IMS, Icr::MSIX_ROUTED.bits());
    for (i, e) in IvarEntry::ALL.iter().enumerate() {
        w(&mut d, r::ICS, e.cause().bits());
        assert_eq!(vectors(&mut d), vec![4 - i as u32], "{e}");
    }
}

#[test]
fn legacy_causes_never_reach_an_msix_vector_directly() {
    let mut d = msix_dev();
    w(&mut d, r::IMS, (Icr::RXT0 | Icr::TXDW).bits());
    w(&mut d, r::ICS, (Icr::RXT0 | Icr::TXDW).bits());
    assert!(vectors(&mut d).is_empty());
}

#[test]
fn masked_vector_sets_pba_and_fires_on_unmask() {
    let mut d = msix_dev();
    d.bar_write32(r::BAR_MSIX, 12, 1);
    w(&mut d, r::IMS, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert!(vectors(&mut d).is_empty());
    assert_eq!(d.bar_read32(r::BAR_MSIX, r::MSIX_PBA_OFFSET), 1);
    d.bar_write32(r::BAR_MSIX, r::MSIX_PBA_OFFSET, 0);
    assert_eq!(d.bar_read32(r::BAR_MSIX, r::MSIX_PBA_OFFSET), 1, "PBA writes are ignored");
    d.bar_write32(r::BAR_MSIX, 12, 0);
    assert_eq!(vectors(&mut d), vec![0]);
    assert_eq!(d.bar_read32(r::BAR_MSIX, r::MSIX_PBA_OFFSET), 0);
}

#[test]
fn pbaclr_clears_pending_bits() {
    let mut d = msix_dev();
    d.bar_write32(r::BAR_MSIX, 16 + 12, 1);
    w(&mut d, r::IMS, Icr::TXQ0.bits());
    w(&mut d, r::ICS, Icr::TXQ0.bits());
    assert_eq!(d.bar_read32(r::BAR_MSIX, r::MSIX_PBA_OFFSET), 0b10);
    w(&mut d, r::PBACLR, 0b10);
    assert_eq!(d.bar_read32(r::BAR_MSIX, r::MSIX_PBA_OFFSET), 0);
}

#[test]
fn ims_write_with_pba_clr_clears_the_mapped_vectors_pending_bit() {
    let mut d = msix_dev();
    w(&mut d, r::CTRL_EXT, CtrlExt::PBA_CLR.bits());
    d.bar_write32(r::BAR_MSIX, 16 + 12, 1);
    w(&mut d, r::IMS, Icr::TXQ0.bits());
    w(&mut d, r::ICS, Icr::TXQ0.bits());
    assert_eq!(d.bar_read32(r::BAR_MSIX, r::MSIX_PBA_OFFSET), 0b10);
    w(&mut d, r::IMS, Icr::TXQ0.bits());
    assert_eq!(d.bar_read32(r::BAR_MSIX, r::MSIX_PBA_OFFSET), 0);
}

#[test]
fn eitr_throttles_on_the_virtual_clock() {
    let mut d = msix_dev();
    w(&mut d, r::eitr(0), 1000); // 256 us
    w(&mut d, r::EIAC, Icr::RXQ0.bits());
    w(&mut d, r::CTRL_EXT, CtrlExt::IAME.bits());
    w(&mut d, r::IMS, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert_eq!(vectors(&mut d).len(), 1);
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert!(vectors(&mut d).is_empty(), "second message inside the interval is postponed");
    d.advance(255_000);
    assert!(vectors(&mut d).is_empty());
    d.advance(1_000);
    let m = d.take_interrupts();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].at_ns, 256_000, "fires exactly when the interval ends");
    assert_eq!(rd(&mut d, r::eitr(0)), 1000);
}

#[test]
fn ctrl_rst_clears_interrupt_registers_but_not_the_msix_table() {
    let mut d = msix_dev();
    w(&mut d, r::IMS, Icr::RXQ0.bits());
    w(&mut d, r::EIAC, Icr::RXQ0.bits());
    let ctrl = rd(&mut d, r::CTRL);
    w(&mut d, r::CTRL, ctrl | Ctrl::RST.bits());
    assert_eq!(rd(&mut d, r::CTRL) & Ctrl::RST.bits(), 0, "RST self-clears");
    for reg in [r::IVAR, r::IMS, r::EIAC, r::IAM] {
        assert_eq!(rd(&mut d, reg), 0, "{}", r::reg_name(reg).unwrap());
    }
    assert_eq!(d.bar_read32(r::BAR_MSIX, 16), MSI_ADDR);
    assert_eq!(rd(&mut d, r::PBA), 0x0014_0014);
}

#[test]
fn int_asserted_follows_any_pending_cause() {
    let mut d = intx_dev();
    w(&mut d, r::ICS, Icr::MDAC.bits());
    assert!(d.peek(r::ICR) & Icr::INT_ASSERTED.bits() != 0);
    w(&mut d, r::ICR, Icr::MDAC.bits());
    assert_eq!(d.peek(r::ICR), 0);
}

#[test]
fn intx_asserts_while_an_enabled_cause_is_pending() {
    let mut d = intx_dev();
    w(&mut d, r::IMS, Icr::LSC.bits());
    w(&mut d, r::ICS, Icr::LSC.bits());
    assert!(d.intx_asserted());
    rd(&mut d, r::ICR);
    assert!(!d.intx_asserted());
    assert_eq!(rd(&mut d, r::IAC), 1);
}

#[test]
fn eeprom_holds_mac_and_sums_to_baba() {
    let mut d = intx_dev();
    let mut sum = 0u16;
    let mut words = vec![];
    for a in 0..64u32 {
        w(&mut d, r::EERD, (a << r::EERD_ADDR_SHIFT) | r::EERD_START);
        let v = rd(&mut d, r::EERD);
        assert!(v & r::EERD_DONE != 0);
        let word = (v >> 16) as u16;
        words.push(word);
        sum = sum.wrapping_add(word);
    }
    assert_eq!(sum, r::EEPROM_SUM);
    assert_eq!(words[0..3], [0x5452, 0x1200, 0x5634]);
}

#[test]
fn mdic_reads_phy_link_and_rejects_other_phy_addresses() {
    let mut d = intx_dev();
    d.advance(DEFAULT_LINK_UP_DELAY_NS);
    w(
        &mut d,
        r::MDIC,
        r::MDIC_OP_READ | (r::PHY_ADDR << r::MDIC_PHYADD_SHIFT) | (r::PHY_STATUS << r::MDIC_REGADD_SHIFT),
    );
    let v = rd(&mut d, r::MDIC);
    assert!(v & r::MDIC_READY != 0 && v & r::MDIC_ERROR == 0);
    assert!(v as u16 & r::PHY_STATUS_LINK_UP != 0);
    w(&mut d, r::MDIC, r::MDIC_OP_READ | (2 << r::MDIC_PHYADD_SHIFT));
    assert!(rd(&mut d, r::MDIC) & r::MDIC_ERROR != 0);
}

#[test]
fn link_comes_up_after_autonegotiation_and_raises_lsc() {
    let mut d = intx_dev();
    assert_eq!(rd(&mut d, r::STATUS) & Status::LU.bits(), 0);
    d.advance(DEFAULT_LINK_UP_DELAY_NS - 1);
    assert_eq!(rd(&mut d, r::STATUS) & Status::LU.bits(), 0);
    d.advance(1);
    assert_eq!(rd(&mut d, r::STATUS), 0x0008_0283);
    assert!(rd(&mut d, r::ICR) & Icr::LSC.bits() != 0);
}

#[test]
fn bus_master_off_blocks_messages() {
    let mut d = msix_dev();
    d.config_write(pci::COMMAND, 2, pci::COMMAND_MEMORY as u32);
    w(&mut d, r::IMS, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert!(vectors(&mut d).is_empty());
    assert_eq!(d.counters.blocked_no_bus_master, 1);
}

#[test]
fn unmasked_unprogrammed_entry_writes_memory_through_the_iommu() {
    let mut d = intx_dev();
    d.bar_write32(r::BAR_MSIX, 12, 0); // unmask entry 0, address still 0
    d.config_write(r::CAP_MSIX + 2, 2, pci::MSIX_CTRL_ENABLE as u32);
    w(&mut d, r::IVAR, 0x8);
    w(&mut d, r::IMS, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert!(vectors(&mut d).is_empty());
    assert_eq!(d.iommu().faults()[0].iova, 0, "DMA write to address 0 blocked and recorded");
}

#[test]
fn fault_lose_vector_reads_all_ones_and_swallows_messages() {
    let mut d = msix_dev();
    d.arm_faults(FaultPlan::new(0).lose_vector(1));
    for off in 0..4 {
        assert_eq!(d.bar_read32(r::BAR_MSIX, 16 + 4 * off), 0xFFFF_FFFF);
    }
    assert_eq!(d.bar_read32(r::BAR_MSIX, 8), 0, "vector 0 intact");
    w(&mut d, r::IMS, (Icr::RXQ0 | Icr::TXQ0).bits());
    w(&mut d, r::ICS, (Icr::RXQ0 | Icr::TXQ0).bits());
    assert_eq!(vectors(&mut d), vec![0]);
    assert_eq!(d.fault_state().lost_messages, 1);
}

#[test]
fn fault_corrupt_ivar_changes_the_stored_entry() {
    let mut d = msix_dev();
    d.arm_faults(FaultPlan::new(3).corrupt_ivar(4));
    w(&mut d, r::IVAR, 0x800A_0908);
    let got = rd(&mut d, r::IVAR);
    assert_ne!(got, 0x800A_0908);
    assert_eq!((got ^ 0x800A_0908) & !0x000F_0000, 0);
}

#[test]
fn fault_drop_irq_drops_with_the_seeded_probability() {
    let run = |seed| {
        let mut d = msix_dev();
        d.arm_faults(FaultPlan::new(seed).drop_irq(0, 0.5));
        w(&mut d, r::IMS, Icr::RXQ0.bits());
        let mut got = 0;
        for _ in 0..100 {
            w(&mut d, r::ICS, Icr::RXQ0.bits());
            got += vectors(&mut d).len();
            w(&mut d, r::ICR, Icr::RXQ0.bits());
        }
        got
    };
    let n = run(11);
    assert_eq!(n, run(11), "same seed, same drops");
    assert!((25..75).contains(&n), "delivered {n} of 100 at p=0.5");
}

#[test]
fn fault_surprise_removal_reads_all_ones_and_drops_writes() {
    let mut d = msix_dev();
    d.arm_faults(FaultPlan::new(0).surprise_removal_at(1_000));
    assert_eq!(rd(&mut d, r::STATUS) & 1, 1);
    d.advance(1_000);
    assert_eq!(rd(&mut d, r::STATUS), 0xFFFF_FFFF);
    assert_eq!(d.config_read(0, 4), 0xFFFF_FFFF);
    assert_eq!(d.config_read(0, 2), 0xFFFF);
    w(&mut d, r::IMS, Icr::RXQ0.bits());
    w(&mut d, r::ICS, Icr::RXQ0.bits());
    assert!(vectors(&mut d).is_empty());
    assert_eq!(d.peek(r::IMS), 0, "writes dropped");
}

#[test]
fn unknown_offsets_read_zero_and_ignore_writes() {
    let mut d = intx_dev();
    w(&mut d, 0x7FFC, 0x1234);
    assert_eq!(rd(&mut d, 0x7FFC), 0);
}

#[test]
fn pattern_registers_keep_exactly_their_writable_bits() {
    let mut d = intx_dev();
    for reg in r::pattern_regs() {
        for p in r::PATTERNS {
            w(&mut d, reg.offset, p);
            assert_eq!(rd(&mut d, reg.offset), p & reg.mask, "{}", reg.name);
        }
    }
}
