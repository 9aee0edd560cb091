//! Linux e1000e's own register sequences for an 82574L, replayed against the model: probe,
//! reset, NVM and PHY access, link bring-up, statistics, the register dump, and the four
//! `ethtool -t` offline tests (register, EEPROM, interrupt, loopback) plus the link test.
//! Each helper follows the driver function it is named after (drivers/net/ethernet/intel/
//! e1000e: `82571.c`, `mac.c`, `nvm.c`, `phy.c`, `netdev.c`, `ethtool.c`); the values are
//! the driver's (its `defines.h`/`regs.h`), the code is ours. The end of every test checks
//! the register-touch log: a healthy run must not reach anything the model lacks.

use super::*;
use crate::iommu::{HostRegion, Perm};
use crate::touch::Touch;
use nicqual_hw::i82574_desc::{self as d, TxDesc};
use zerocopy::IntoBytes;

const IOVA: u64 = 0x20_0000;
const MEM: usize = 2 << 20;
const TX_RING: usize = 0;
const RX_RING: usize = 0x1_0000;
const TX_BUF: usize = 0x2_0000;
const RX_BUF: usize = 0x8_0000;
/// `E1000_DEFAULT_TXD` / `E1000_DEFAULT_RXD`.
const TEST_RING: u32 = 256;

/// Linux `defines.h` bits the sequences use.
const SWSM_SMBI: u32 = 1 << 0;
const EECD_AUTO_RD: u32 = 1 << 9;
const EECD_SIZE_EX_MASK: u32 = 0x7800;
const EXTCNF_CTRL_MDIO_SW_OWNERSHIP: u32 = 1 << 5;
const CTRL_SLU: u32 = 1 << 6;
const CTRL_FRCSPD: u32 = 1 << 11;
const CTRL_FRCDPX: u32 = 1 << 12;
const CTRL_SPD_1000: u32 = 1 << 9;
const CTRL_FD: u32 = 1 << 0;
const CTRL_EXT_DRV_LOAD: u32 = 1 << 28;
const TSYNCTXCTL_ENABLED: u32 = 1 << 4;
const TSYNCRXCTL_ENABLED: u32 = 1 << 4;
const TSYNCRXCTL_TYPE_MASK: u32 = 0xE;
const MII_CR_POWER_DOWN: u16 = 1 << 11;
const BMCR_LOOPBACK: u16 = 1 << 14;

/// A device, the guest memory its IOMMU maps, and what the driver would keep.
struct Linux {
    dev: I82574,
    mem: HostRegion,
}

impl Linux {
    fn new() -> Linux {
        let mut dev = I82574::new(Config::default());
        dev.config_write(pci::COMMAND, 2, (pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER) as u32);
        let mem = HostRegion::zeroed(MEM);
        dev.iommu().map(IOVA, mem.clone(), Perm::READ_WRITE).expect("map guest memory");
        Linux { dev, mem }
    }

    fn er32(&mut self, off: u32) -> u32 {
        self.dev.bar_read32(r::BAR_REGS, off.into())
    }

    fn ew32(&mut self, off: u32, v: u32) {
        self.dev.bar_write32(r::BAR_REGS, off.into(), v);
    }

    fn msleep(&mut self, ms: u64) {
        self.dev.advance(ms * 1_000_000);
    }

    // ---- semaphores, NVM, PHY -----------------------------------------------------------

    /// `e1000_get_hw_semaphore_82573`: set EXTCNF_CTRL.MDIO_SW_OWNERSHIP until it latches.
    fn acquire(&mut self) {
        let mut v = self.er32(r::EXTCNF_CTRL);
        for _ in 0..200 {
            v |= EXTCNF_CTRL_MDIO_SW_OWNERSHIP;
            self.ew32(r::EXTCNF_CTRL, v);
            v = self.er32(r::EXTCNF_CTRL);
            if v & EXTCNF_CTRL_MDIO_SW_OWNERSHIP != 0 {
                return;
            }
        }
        panic!("Driver can't access the PHY (EXTCNF_CTRL.MDIO_SW_OWNERSHIP never latched)");
    }

    fn release(&mut self) {
        let v = self.er32(r::EXTCNF_CTRL) & !EXTCNF_CTRL_MDIO_SW_OWNERSHIP;
        self.ew32(r::EXTCNF_CTRL, v);
    }

    /// `e1000e_read_nvm_eerd`, one word.
    fn read_nvm(&mut self, word: u32) -> u16 {
        self.ew32(r::EERD, (word << r::EERD_ADDR_SHIFT) | r::EERD_START);
        let v = self.er32(r::EERD);
        assert_ne!(v & r::EERD_DONE, 0, "EERD word {word:#x} not done");
        (v >> r::EERD_DATA_SHIFT) as u16
    }

    /// `e1000e_read_phy_reg_mdic` / `_write_`: one MDIC transaction, with the driver's
    /// checks (ready, no error, the register echoed).
    fn mdic(&mut self, reg: u32, write: Option<u16>) -> u16 {
        let op = if write.is_some() { r::MDIC_OP_WRITE } else { r::MDIC_OP_READ };
        let cmd =
            u32::from(write.unwrap_or(0)) | reg << r::MDIC_REGADD_SHIFT | r::PHY_ADDR << r::MDIC_PHYADD_SHIFT | op;
        self.ew32(r::MDIC, cmd);
        let v = self.er32(r::MDIC);
        assert_ne!(v & r::MDIC_READY, 0, "MDI read did not complete");
        assert_eq!(v & r::MDIC_ERROR, 0, "MDI Error");
        assert_eq!((v >> r::MDIC_REGADD_SHIFT) & 0x1F, reg, "MDI offset error");
        v as u16
    }

    /// `e1000e_read_phy_reg_bm2` (acquire, page select above register 15, read, release);
    /// `offset` is `PHY_REG(page, reg)` = page << 5 | reg.
    fn rphy(&mut self, offset: u32) -> u16 {
        self.acquire();
        if offset > r::PHY_MAX_UNPAGED {
            self.mdic(r::PHY_PAGE_SELECT, Some((offset >> 5) as u16));
        }
        let v = self.mdic(offset & 0x1F, None);
        self.release();
        v
    }

    fn wphy(&mut self, offset: u32, data: u16) {
        self.acquire();
        if offset > r::PHY_MAX_UNPAGED {
            self.mdic(r::PHY_PAGE_SELECT, Some((offset >> 5) as u16));
        }
        self.mdic(offset & 0x1F, Some(data));
        self.release();
    }

    /// `e1000e_phy_sw_reset` (the BM PHY's `commit`).
    fn phy_commit(&mut self) {
        let v = self.rphy(r::PHY_CTRL);
        self.wphy(r::PHY_CTRL, v | r::PHY_CTRL_RESET);
    }

    // ---- probe and reset ----------------------------------------------------------------

    /// `e1000_get_variants_82571` for an 82574: MAC, NVM and PHY parameters.
    fn get_variants(&mut self) {
        let swsm = self.er32(r::SWSM);
        self.ew32(r::SWSM, swsm & !SWSM_SMBI);
        let eecd = self.er32(r::EECD);
        assert_ne!((eecd >> 15) & 3, 3, "no flash NVM on this part");
        let size_shift = ((eecd & EECD_SIZE_EX_MASK) >> 11) + 6;
        assert_eq!(1usize << size_shift, r::EEPROM_WORDS, "NVM word size");
        let id = u32::from(self.rphy(r::PHY_ID1)) << 16 | u32::from(self.rphy(r::PHY_ID2));
        assert_eq!(id, 0x0141_0CB1, "BME1000_E_PHY_ID_R2");
    }

    /// `e1000_reset_hw_82571`.
    fn reset_hw(&mut self) {
        // e1000e_disable_pcie_master
        let ctrl = self.er32(r::CTRL);
        self.ew32(r::CTRL, ctrl | Ctrl::GIO_MASTER_DISABLE.bits());
        assert_eq!(self.er32(r::STATUS) & Status::GIO_MASTER_ENABLE.bits(), 0, "Master requests are pending");
        self.ew32(r::IMC, u32::MAX);
        self.ew32(r::RCTL, 0);
        let tctl = self.er32(r::TCTL);
        self.ew32(r::TCTL, tctl & !r::TCTL_EN);
        self.msleep(10);
        self.acquire();
        let ctrl = self.er32(r::CTRL);
        self.ew32(r::CTRL, ctrl | Ctrl::RST.bits());
        self.release();
        // e1000e_get_auto_rd_done
        assert_ne!(self.er32(r::EECD) & EECD_AUTO_RD, 0, "Auto read by HW from NVM has not completed");
        self.msleep(25);
        self.ew32(r::IMC, u32::MAX);
        self.er32(r::ICR);
    }

    /// `e1000_clear_hw_cntrs_82571` (with `e1000e_clear_hw_cntrs_base`).
    fn clear_hw_cntrs(&mut self) {
        for off in (r::CRCERRS..=r::ICRXOC).step_by(4) {
            if r::register(off).is_some() {
                self.er32(off);
            }
        }
    }

    /// `e1000e_copper_link_setup_m88` for the BM PHY, then `e1000e_setup_copper_link`.
    fn setup_copper_link(&mut self) {
        let ctrl = self.er32(r::CTRL);
        self.ew32(r::CTRL, (ctrl | CTRL_SLU) & !(CTRL_FRCSPD | CTRL_FRCDPX));
        let mut pscr = self.rphy(r::PHY_SPEC_CTRL);
        pscr &= !0x0060; // auto MDI/MDI-X
        pscr |= 0x0060;
        pscr &= !0x0002; // polarity reversal enabled
        pscr &= !0x0800; // downshift off, commit, then on (BME1000 R2)
        self.wphy(r::PHY_SPEC_CTRL, pscr);
        self.phy_commit();
        pscr |= 0x0800;
        self.wphy(r::PHY_SPEC_CTRL, pscr);
        self.wphy(29, 0x0003);
        self.wphy(30, 0x0000);
        self.phy_commit();
        // e1000_phy_setup_autoneg + e1000_copper_link_autoneg
        let adv = self.rphy(r::PHY_AUTONEG_ADV);
        let ctrl1000 = self.rphy(r::PHY_1000T_CTRL);
        self.wphy(r::PHY_AUTONEG_ADV, adv | 0x0DE0);
        self.wphy(r::PHY_1000T_CTRL, ctrl1000 | 0x0200);
        let bmcr = self.rphy(r::PHY_CTRL);
        self.wphy(r::PHY_CTRL, bmcr | r::PHY_CTRL_AUTONEG_ENABLE | r::PHY_CTRL_RESTART_AUTONEG);
        // e1000e_phy_has_link_generic: not yet (autonegotiation takes its time).
        self.phy_has_link();
    }

    /// `e1000e_phy_has_link_generic`: BMSR read twice (latched-low link bit).
    fn phy_has_link(&mut self) -> bool {
        self.rphy(r::PHY_STATUS);
        self.rphy(r::PHY_STATUS) & r::PHY_STATUS_LINK_UP != 0
    }

    /// `e1000_init_hw_82571` (with `e1000_initialize_hw_bits_82571` and the generic
    /// link setup).
    fn init_hw(&mut self) {
        for q in 0..2 {
            let v = self.er32(r::txdctl(q));
            self.ew32(r::txdctl(q), v | 1 << 22);
        }
        let tarc = self.er32(r::tarc(0));
        self.ew32(r::tarc(0), (tarc & !(0xF << 27)) | 1 << 26);
        let ctrl = self.er32(r::CTRL);
        self.ew32(r::CTRL, ctrl & !(1 << 29));
        let ext = self.er32(r::CTRL_EXT);
        self.ew32(r::CTRL_EXT, (ext & !(1 << 23)) | 1 << 22);
        let rfctl = self.er32(r::RFCTL);
        self.ew32(r::RFCTL, rfctl | r::RFCTL_IPV6_EX_DIS | r::RFCTL_NEW_IPV6_EXT_DIS);
        let gcr = self.er32(r::GCR);
        self.ew32(r::GCR, gcr | 1 << 22);
        let gcr2 = self.er32(r::GCR2);
        self.ew32(r::GCR2, gcr2 | 1);
        // e1000e_id_led_init_generic
        self.read_nvm(4);
        self.er32(r::LEDCTL);
        for i in 0..r::VFTA_LEN {
            self.ew32(r::VFTA + 4 * i, 0);
        }
        // e1000e_init_rx_addrs: RAR0 from the NVM-loaded address, the others cleared.
        for i in 1..15 {
            self.ew32(r::ral(i), 0);
            self.ew32(r::rah(i), 0);
        }
        for i in 0..r::MTA_LEN {
            self.ew32(r::MTA + 4 * i, 0);
        }
        // e1000e_setup_link_generic: flow control addresses, then watermarks.
        self.ew32(r::FCT, 0x8808);
        self.ew32(r::FCAH, 0x0100);
        self.ew32(r::FCAL, 0x00C2_8001);
        self.setup_copper_link();
        self.ew32(r::FCTTV, 0xFFFF);
        self.ew32(r::FCRTL, 0x8000_4C00);
        self.ew32(r::FCRTH, 0x5000);
        let txdctl = self.er32(r::txdctl(0));
        self.ew32(r::txdctl(0), (txdctl & !0x003F_0000) | 0x0141_0000);
        let gcr = self.er32(r::GCR);
        self.ew32(r::GCR, gcr | 1 << 22);
        self.clear_hw_cntrs();
    }

    /// `e1000e_config_hwtstamp` (time stamping off) and `e1000e_systim_reset`.
    fn config_hwtstamp(&mut self) {
        self.ew32(r::TIMINCA, 1 << 24 | 40);
        let tx = self.er32(r::TSYNCTXCTL) & !TSYNCTXCTL_ENABLED;
        self.ew32(r::TSYNCTXCTL, tx);
        assert_eq!(self.er32(r::TSYNCTXCTL) & TSYNCTXCTL_ENABLED, 0, "Timesync Tx Control register not set");
        let rx = self.er32(r::TSYNCRXCTL) & !(TSYNCRXCTL_ENABLED | TSYNCRXCTL_TYPE_MASK);
        self.ew32(r::TSYNCRXCTL, rx);
        assert_eq!(self.er32(r::TSYNCRXCTL) & (TSYNCRXCTL_ENABLED | TSYNCRXCTL_TYPE_MASK), 0);
        self.ew32(r::RXMTRL, 0);
        self.ew32(r::RXUDP, 0);
        self.er32(r::RXSTMPH);
        self.er32(r::TXSTMPH);
        // e1000e_cc_read
        self.er32(r::SYSTIML);
        self.er32(r::SYSTIMH);
    }

    /// `e1000e_get_phy_info_m88` (as `e1000_get_phy_info` calls it after a reset).
    fn get_phy_info(&mut self) {
        if !self.phy_has_link() {
            return;
        }
        self.rphy(r::PHY_SPEC_STATUS);
        self.rphy(r::PHY_SPEC_CTRL);
        self.rphy(r::PHY_1000T_STATUS);
    }

    /// `e1000e_reset` (interface up, or under test: the PHY stays powered).
    fn e1000e_reset(&mut self, power_down: bool) {
        self.ew32(r::PBA, 32);
        self.reset_hw();
        let ext = self.er32(r::CTRL_EXT);
        self.ew32(r::CTRL_EXT, ext | CTRL_EXT_DRV_LOAD);
        self.ew32(r::WUC, 0);
        self.init_hw();
        self.ew32(r::VET, 0x8100);
        // e1000e_reset_adaptive
        self.ew32(r::AIT, 0);
        self.config_hwtstamp();
        if power_down {
            // e1000_power_down_phy_copper_82571: no manageability (NVM word 0x0F).
            assert_eq!(self.read_nvm(0x0F) & 0x6000, 0);
            let bmcr = self.rphy(r::PHY_CTRL);
            self.wphy(r::PHY_CTRL, bmcr | MII_CR_POWER_DOWN);
        }
        self.get_phy_info();
        // Smart power down off (page 0 register 25).
        let pm = self.rphy(r::PHY_POWER_MGMT);
        self.wphy(r::PHY_POWER_MGMT, pm & !0x0001);
    }

    /// `e1000_probe`, up to the end of its reset.
    fn probe(&mut self) {
        self.get_variants();
        self.reset_hw();
        let sum = (0..=u32::from(r::EEPROM_CHECKSUM_WORD)).fold(0u16, |s, w| s.wrapping_add(self.read_nvm(w)));
        assert_eq!(sum, r::EEPROM_SUM, "The NVM Checksum Is Not Valid");
        let (lo, hi) = (self.er32(r::ral(0)), self.er32(r::rah(0)));
        let mac = [lo as u8, (lo >> 8) as u8, (lo >> 16) as u8, (lo >> 24) as u8, hi as u8, (hi >> 8) as u8];
        assert_eq!(mac, Config::default().mac);
        for w in [0x24, 5, 8, 9] {
            self.read_nvm(w);
        }
        self.e1000e_reset(true);
        assert!(!self.dev.link_up, "the PHY is powered down until the interface opens");
    }

    /// `e1000_open` up to link: PHY power up, reset, then the watchdog's link check.
    fn open_and_link(&mut self) {
        let bmcr = self.rphy(r::PHY_CTRL);
        self.wphy(r::PHY_CTRL, bmcr & !MII_CR_POWER_DOWN);
        self.e1000e_reset(false);
        for _ in 0..45 {
            if self.phy_has_link() {
                break;
            }
            self.msleep(100);
        }
        // e1000e_check_for_copper_link: downshift, flow-control resolution.
        assert!(self.phy_has_link(), "Unable to establish link");
        self.rphy(r::PHY_SPEC_STATUS);
        let bmsr = self.rphy(r::PHY_STATUS);
        assert_ne!(bmsr & r::PHY_STATUS_AUTONEG_COMPLETE, 0, "Copper PHY and Auto Neg has not completed");
        self.rphy(r::PHY_AUTONEG_ADV);
        let lpa = self.rphy(r::PHY_LP_ABILITY);
        assert_ne!(lpa & 0x0400, 0, "the partner offers pause");
        let status = self.er32(r::STATUS);
        assert_ne!(status & Status::LU.bits(), 0);
        assert_eq!(status & 0xC0, 0x80, "1000 Mb/s");
        assert_ne!(status & Status::FD.bits(), 0);
        // e1000_phy_read_status (watchdog, link up)
        for reg in [0, 1, 4, 5, 6, 9, 10, 15] {
            self.rphy(reg);
        }
    }

    /// One watchdog pass: `e1000_check_phy_82574`, `e1000e_update_stats`.
    fn watchdog(&mut self) {
        assert_ne!(self.rphy(r::PHY_RX_ERROR_COUNTER), 0xFFFF, "PHY hang");
        self.rphy(r::PHY_1000T_STATUS);
        for off in [
            r::CRCERRS,
            r::GPRC,
            r::GORCL,
            r::GORCH,
            r::BPRC,
            r::MPRC,
            r::ROC,
            r::MPC,
            r::XONRXC,
            r::XONTXC,
            r::XOFFRXC,
            r::XOFFTXC,
            r::GPTC,
            r::GOTCL,
            r::GOTCH,
            r::RNBC,
            r::RUC,
            r::MPTC,
            r::BPTC,
            r::TPT,
            r::ALGNERRC,
            r::RXERRC,
            r::CEXTERR,
            r::TSCTC,
            r::TSCTFC,
        ] {
            self.er32(off);
        }
    }

    /// `e1000_get_regs` (`ethtool -d`).
    fn get_regs(&mut self) -> Vec<u32> {
        let mut v: Vec<u32> = [
            r::CTRL,
            r::STATUS,
            r::RCTL,
            r::rdlen(0),
            r::rdh(0),
            r::rdt(0),
            r::RDTR,
            r::TCTL,
            r::tdlen(0),
            r::tdh(0),
            r::tdt(0),
            r::TIDV,
        ]
        .into_iter()
        .map(|o| self.er32(o))
        .collect();
        v.push(u32::from(self.rphy(r::PHY_1000T_STATUS)));
        v
    }

    // ---- ethtool -t ---------------------------------------------------------------------

    /// `e1000_reg_test` for an 82574 (not ICH): 0 = pass, else the register that failed.
    fn reg_test(&mut self) -> Result<(), String> {
        let toggle = 0x7FFF_F033;
        let before = self.er32(r::STATUS);
        let value = self.er32(r::STATUS) & toggle;
        self.ew32(r::STATUS, toggle);
        let after = self.er32(r::STATUS) & toggle;
        if value != after {
            return Err(format!("failed STATUS register test got: {after:#010x} expected: {value:#010x}"));
        }
        self.ew32(r::STATUS, before);
        let pattern = [
            (r::FCAL, 0xFFFF_FFFF, 0xFFFF_FFFF),
            (r::FCAH, 0x0000_FFFF, 0xFFFF_FFFF),
            (r::FCT, 0x0000_FFFF, 0xFFFF_FFFF),
            (r::VET, 0x0000_FFFF, 0xFFFF_FFFF),
            (r::RDTR, 0x0000_FFFF, 0xFFFF_FFFF),
            (r::rdbah(0), 0xFFFF_FFFF, 0xFFFF_FFFF),
            (r::rdlen(0), 0x000F_FF80, 0x000F_FFFF),
            (r::rdh(0), 0x0000_FFFF, 0x0000_FFFF),
            (r::rdt(0), 0x0000_FFFF, 0x0000_FFFF),
            (r::FCRTH, 0x0000_FFF8, 0x0000_FFF8),
            (r::FCTTV, 0x0000_FFFF, 0x0000_FFFF),
            (r::TIPG, 0x3FFF_FFFF, 0x3FFF_FFFF),
            (r::tdbah(0), 0xFFFF_FFFF, 0xFFFF_FFFF),
            (r::tdlen(0), 0x000F_FF80, 0x000F_FFFF),
        ];
        for (reg, mask, write) in pattern {
            self.pattern(reg, mask, write)?;
        }
        self.set_and_check(r::RCTL, 0xFFFF_FFFF, 0)?;
        let before = 0x06DF_B3FE;
        self.set_and_check(r::RCTL, before, 0x003F_FFFB)?;
        self.set_and_check(r::TCTL, 0xFFFF_FFFF, 0)?;
        self.set_and_check(r::RCTL, before, 0xFFFF_FFFF)?;
        self.pattern(r::rdbal(0), 0xFFFF_FFF0, 0xFFFF_FFFF)?;
        self.pattern(r::TXCW, 0xC000_FFFF, 0x0000_FFFF)?;
        self.pattern(r::tdbal(0), 0xFFFF_FFF0, 0xFFFF_FFFF)?;
        self.pattern(r::TIDV, 0x0000_FFFF, 0x0000_FFFF)?;
        for i in 0..15 {
            self.pattern(r::rah(i), 0x8003_FFFF, 0xFFFF_FFFF)?;
        }
        for i in 0..r::MTA_LEN {
            self.pattern(r::MTA + 4 * i, 0xFFFF_FFFF, 0xFFFF_FFFF)?;
        }
        Ok(())
    }

    fn pattern(&mut self, reg: u32, mask: u32, write: u32) -> Result<(), String> {
        for p in r::PATTERNS {
            self.ew32(reg, p & write);
            let val = self.er32(reg);
            if val != p & write & mask {
                return Err(format!(
                    "pattern test failed (reg {reg:#07X}): got {val:#010X} expected {:#010X}",
                    p & write & mask
                ));
            }
        }
        Ok(())
    }

    fn set_and_check(&mut self, reg: u32, mask: u32, write: u32) -> Result<(), String> {
        self.ew32(reg, write & mask);
        let val = self.er32(reg);
        if write & mask != val & mask {
            return Err(format!(
                "set/check test failed (reg {reg:#07X}): got {:#010X} expected {:#010X}",
                val & mask,
                write & mask
            ));
        }
        Ok(())
    }

    /// `e1000_eeprom_test`.
    fn eeprom_test(&mut self) -> Result<(), String> {
        let sum = (0..=u32::from(r::EEPROM_CHECKSUM_WORD)).fold(0u16, |s, w| s.wrapping_add(self.read_nvm(w)));
        if sum == r::EEPROM_SUM { Ok(()) } else { Err(format!("checksum {sum:#06x}")) }
    }

    /// The test's interrupt handler: when the INTx line is asserted, read ICR.
    fn service_intx(&mut self, test_icr: &mut u32) {
        if self.dev.intx_asserted() {
            *test_icr |= self.er32(r::ICR);
        }
    }

    /// `e1000_intr_test`, unshared legacy interrupt: Err(code) as the driver reports it.
    fn intr_test(&mut self) -> Result<(), String> {
        self.ew32(r::IMC, u32::MAX);
        for i in 0..10 {
            let mask = 1u32 << i;
            let mut test_icr = 0;
            self.ew32(r::IMC, mask);
            self.ew32(r::ICS, mask);
            self.service_intx(&mut test_icr);
            if test_icr & mask != 0 {
                return Err(format!("3 (bit {i} interrupted while masked)"));
            }
            let mut test_icr = 0;
            self.ew32(r::IMS, mask);
            self.ew32(r::ICS, mask);
            self.service_intx(&mut test_icr);
            if test_icr & mask == 0 {
                return Err(format!("4 (bit {i} did not interrupt while enabled)"));
            }
            let mut test_icr = 0;
            self.ew32(r::IMC, !mask & 0x7FFF);
            self.ew32(r::ICS, !mask & 0x7FFF);
            self.service_intx(&mut test_icr);
            if test_icr != 0 {
                return Err(format!("5 (other causes interrupted while masked: {test_icr:#x})"));
            }
        }
        self.ew32(r::IMC, u32::MAX);
        Ok(())
    }

    /// `e1000_setup_desc_rings` + `e1000_integrated_phy_loopback` (BM PHY) +
    /// `e1000_run_loopback_test` + `e1000_loopback_cleanup`.
    fn loopback_test(&mut self) -> Result<(), String> {
        let n = TEST_RING as usize;
        // TX ring: 256 legacy descriptors, 1024-byte buffers, EOP | IFCS | RS.
        self.ew32(r::tdbal(0), (IOVA as usize + TX_RING) as u32);
        self.ew32(r::tdbah(0), 0);
        self.ew32(r::tdlen(0), TEST_RING * 16);
        self.ew32(r::tdh(0), 0);
        self.ew32(r::tdt(0), 0);
        self.ew32(r::TCTL, r::TCTL_PSP | r::TCTL_EN | 1 << 28 | 0x0F << 4 | 0x3F << 12);
        for i in 0..n {
            let buf = IOVA + (TX_BUF + i * 1024) as u64;
            let desc = TxDesc::legacy(buf, 1024, d::TXD_CMD_EOP | d::TXD_CMD_IFCS | d::TXD_CMD_RS);
            self.mem.write(TX_RING + 16 * i, desc.as_bytes()).ok_or("guest memory out of range")?;
        }
        // RX ring: 256 descriptors with 2048-byte buffers (FLAG2_NO_DISABLE_RX: RCTL stays).
        self.ew32(r::rdbal(0), (IOVA as usize + RX_RING) as u32);
        self.ew32(r::rdbah(0), 0);
        self.ew32(r::rdlen(0), TEST_RING * 16);
        self.ew32(r::rdh(0), 0);
        self.ew32(r::rdt(0), 0);
        let rctl = r::RCTL_EN | r::RCTL_BAM | r::RCTL_UPE | r::RCTL_MPE | r::RCTL_LPE | r::RCTL_SBP | r::RCTL_SECRC;
        self.ew32(r::RCTL, rctl);
        for i in 0..n {
            let buf = IOVA + (RX_BUF + i * 2048) as u64;
            self.mem.write(RX_RING + 16 * i, &buf.to_le_bytes()).ok_or("guest memory out of range")?;
            self.mem.write(RX_BUF + i * 2048, &[0u8; 2048]).ok_or("guest memory out of range")?;
        }
        // BM PHY loopback set-up.
        let v = self.rphy(2 << 5 | 21);
        self.wphy(2 << 5 | 21, (v & !7) | 6);
        self.phy_commit();
        self.msleep(1);
        let v = self.rphy(769 << 5 | 16);
        self.wphy(769 << 5 | 16, v | 0x000C);
        let v = self.rphy(776 << 5 | 16);
        self.wphy(776 << 5 | 16, v | 0x0040);
        let v = self.rphy(769 << 5 | 16);
        self.wphy(769 << 5 | 16, v | 0x0040);
        let v = self.rphy(769 << 5 | 20);
        self.wphy(769 << 5 | 20, v | 0x0400);
        self.wphy(r::PHY_CTRL, 0x4140);
        self.msleep(250);
        let mut ctrl = self.er32(r::CTRL) & !Ctrl::SPD_SEL.bits();
        ctrl |= CTRL_FRCSPD | CTRL_FRCDPX | CTRL_SPD_1000 | CTRL_FD;
        if self.er32(r::STATUS) & Status::FD.bits() == 0 {
            ctrl |= Ctrl::ILOS.bits() | CTRL_SLU;
        }
        self.ew32(r::CTRL, ctrl);
        // Run: 64 frames a round, wrapping the rings (lc = 256 / 64 * 2 + 1 rounds + 1).
        let result = self.run_loopback();
        // Cleanup.
        let rctl = self.er32(r::RCTL) & !(0b11 << r::RCTL_LBM_SHIFT);
        self.ew32(r::RCTL, rctl);
        let bmcr = self.rphy(r::PHY_CTRL);
        if bmcr & BMCR_LOOPBACK != 0 {
            self.wphy(r::PHY_CTRL, bmcr & !BMCR_LOOPBACK);
            self.phy_commit();
        }
        result
    }

    fn run_loopback(&mut self) -> Result<(), String> {
        let n = TEST_RING as usize;
        self.ew32(r::rdt(0), TEST_RING - 1);
        let lc = (n / 64) * 2 + 1;
        let (mut k, mut l) = (0usize, 0usize);
        for round in 0..=lc {
            for _ in 0..64 {
                let mut f = vec![0xFFu8; 1024];
                f[512..1023].fill(0xAA);
                f[512 + 10] = 0xBE;
                f[512 + 12] = 0xAF;
                self.mem.write(TX_BUF + k * 1024, &f).ok_or("guest memory out of range")?;
                k = (k + 1) % n;
            }
            self.ew32(r::tdt(0), k as u32);
            self.msleep(200);
            let mut good = 0;
            // The driver's 20-jiffy receive window, as a bound on slots looked at.
            for _ in 0..2 * n {
                let b = self.mem.read_vec(RX_BUF + l * 2048, 1024).ok_or("guest memory out of range")?;
                if b.get(3) == Some(&0xFF) && b.get(512 + 10) == Some(&0xBE) && b.get(512 + 12) == Some(&0xAF) {
                    good += 1;
                }
                l = (l + 1) % n;
                if good == 64 {
                    break;
                }
            }
            if good != 64 {
                return Err(format!("13 (round {round}: {good} of 64 frames came back)"));
            }
        }
        Ok(())
    }

    /// `e1000_link_test` after a reset that waits for autonegotiation.
    fn link_test(&mut self) -> Result<(), String> {
        for _ in 0..45 {
            if self.rphy(r::PHY_STATUS) & r::PHY_STATUS_AUTONEG_COMPLETE != 0 {
                break;
            }
            self.msleep(100);
        }
        self.phy_has_link();
        self.msleep(5000);
        if self.er32(r::STATUS) & Status::LU.bits() == 0 { Err("1 (no link)".into()) } else { Ok(()) }
    }

    /// `e1000_diag_test` offline: the five results in ethtool's order.
    fn diag_test(&mut self) -> [Result<(), String>; 5] {
        let reg = self.reg_test();
        self.e1000e_reset(false);
        let eeprom = self.eeprom_test();
        self.e1000e_reset(false);
        let intr = self.intr_test();
        self.e1000e_reset(false);
        let lb = self.loopback_test();
        self.e1000e_reset(false);
        let link = self.link_test();
        self.e1000e_reset(false);
        [reg, eeprom, intr, lb, link]
    }

    fn touches(&self) -> Vec<Touch> {
        self.dev.touches().entries().to_vec()
    }
}

#[test]
fn linux_probe_open_watchdog_and_register_dump_touch_only_modelled_registers() {
    let mut l = Linux::new();
    l.probe();
    l.open_and_link();
    l.watchdog();
    let regs = l.get_regs();
    assert_ne!(regs[1] & Status::LU.bits(), 0, "ethtool -d shows the link up");
    // e1000e_flush_lpic at shutdown.
    assert_eq!(l.er32(r::LPIC), 0, "no EEE on the 82574L");
    assert!(l.dev.touches().is_empty(), "unmodelled accesses: {:#?}", l.touches());
}

#[test]
fn ethtool_offline_self_test_passes_every_test_on_the_healthy_model() {
    let mut l = Linux::new();
    l.probe();
    l.open_and_link();
    let results = l.diag_test();
    let names = ["Register test", "Eeprom test", "Interrupt test", "Loopback test", "Link test"];
    for (name, res) in names.iter().zip(&results) {
        assert!(res.is_ok(), "{name} (offline) failed: {res:?}");
    }
    assert!(l.dev.datapath_counters().tx_loopback >= 640, "{:?}", l.dev.datapath_counters());
    assert!(l.dev.touches().is_empty(), "unmodelled accesses: {:#?}", l.touches());
}

#[test]
fn register_test_reports_seed_004_symptom_on_a_removed_device() {
    let mut l = Linux::new();
    l.probe();
    l.dev.arm_faults(FaultPlan::new(0).surprise_removal_at(0));
    let err = l.reg_test().expect_err("a removed device reads all-ones");
    // STATUS reads all-ones both times, so the first failing step is the FCAL pattern.
    assert!(err.contains("got 0xFFFFFFFF expected 0x5A5A5A5A"), "{err}");
}

#[test]
fn interrupt_test_needs_bits_3_5_and_8_to_interrupt() {
    // With QEMU's IMS mask the test stops at bit 3 (result 4); the model keeps those bits.
    let mut l = Linux::new();
    l.probe();
    assert_eq!(l.intr_test(), Ok(()));
    l.ew32(r::IMS, u32::MAX);
    assert_eq!(l.er32(r::IMS) & 0x128, 0x128);
}

#[test]
fn unmodelled_accesses_are_logged_with_name_offset_value_and_direction() {
    let mut d = I82574::new(Config::default());
    // SWSM2 (0x5B58) is an 82571/82572 register: no table entry on this part.
    d.bar_write32(r::BAR_REGS, 0x5B58, 1);
    assert_eq!(d.bar_read32(r::BAR_REGS, 0x5B58), 0);
    // The flash BAR has nothing behind it.
    d.bar_read32(r::BAR_FLASH, r::BAR_FLASH_LEN / 2);
    // A PHY page the model does not know.
    let mdic =
        |reg: u32, op: u32, data: u32| data | reg << r::MDIC_REGADD_SHIFT | r::PHY_ADDR << r::MDIC_PHYADD_SHIFT | op;
    d.bar_write32(r::BAR_REGS, r::MDIC.into(), mdic(r::PHY_PAGE_SELECT, r::MDIC_OP_WRITE, 800));
    d.bar_write32(r::BAR_REGS, r::MDIC.into(), mdic(17, r::MDIC_OP_READ, 0));
    let lines: Vec<String> = d.touches().entries().iter().map(|t| t.to_string()).collect();
    assert_eq!(
        lines,
        [
            "BAR0 0x05b58 write 0x00000001",
            "BAR0 0x05b58 read 0x00000000",
            "BAR1 0x10000 read 0x00000000",
            "PHY page 800 0x00011 read 0x00000000",
        ]
    );
    assert_eq!(d.touch_log().map(|l| l.entries().len()), Some(4));
    // A function reset keeps the log: it describes the whole session.
    d.function_reset();
    assert_eq!(d.touches().entries().len(), 4);
}

#[test]
fn phy_power_down_drops_the_link_until_power_up() {
    let mut l = Linux::new();
    l.probe();
    l.msleep(500);
    assert!(!l.dev.link_up, "powered-down PHY keeps the link down");
    l.open_and_link();
    assert!(l.dev.link_up);
}

#[test]
fn systim_counts_on_the_virtual_clock_with_timinca() {
    let mut l = Linux::new();
    l.ew32(r::TIMINCA, 2 << 24 | 64);
    let t0 = l.dev.now_ns();
    l.msleep(1);
    let t = u64::from(l.er32(r::SYSTIMH)) << 32 | u64::from(l.er32(r::SYSTIML));
    assert_eq!(t, (t0 + 1_000_000) * 64 / 32);
}
