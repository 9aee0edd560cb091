//! The 82574L's internal PHY (BME1000, ID 0141:0CB1) as the MAC reaches it through MDIC.
//!
//! Facts (Linux e1000e `phy.c` / `82571.c`, IEEE 802.3 clause 22): registers 0..15 are
//! the clause-22 set and do not depend on the page; registers 16..31 are per page, the
//! page chosen by writing register 22 ([`r::PHY_PAGE_SELECT`]). The model keeps the pages
//! Linux touches on an 82574 ([`r::PHY_PAGES`]); an access to any other page, or to a
//! clause-22 register the PHY does not have (11..14), is reported as unmodelled and lands
//! in the register-touch log.
//!
//! Behaviour: BMCR reset and restart-autonegotiation self-clear and restart the link;
//! power down (BMCR bit 11) takes the link down until it is cleared; loopback (BMCR bit
//! 14) turns transmitted frames around inside the PHY (the datapath asks
//! [`Phy::loopback`]). BMSR, the link partner's ability, 1000BASE-T status and the
//! PHY-specific status follow the link the MAC model owns; the link partner is a generic
//! autonegotiating 10/100/1000 full-duplex port with symmetric pause (inference: the
//! values of a partner's ability words are not in the driver; any compliant partner
//! gives the same resolution, 1000 Mb/s full duplex).

use nicqual_hw::i82574 as r;

/// Registers 16..31 of one page.
type Page = [u16; 16];

/// What a PHY register write asks of the MAC model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PhyEffect {
    /// Nothing beyond storing the value.
    None,
    /// Reset or restart autonegotiation: the link drops and negotiates again.
    Renegotiate,
    /// Power down: the link drops and stays down.
    PowerDown,
    /// Power up after a power down: the link negotiates again.
    PowerUp,
}

/// Not a register this PHY model has: (page, register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unmodelled {
    pub page: u16,
    pub reg: u32,
}

#[derive(Debug, Clone)]
pub(super) struct Phy {
    /// Clause-22 registers 0..15 (1, 2, 3, 5, 6, 8, 10, 15 are computed or read-only).
    ieee: [u16; 16],
    /// Register 22: the page registers 16..31 refer to.
    page: u16,
    /// Registers 16..31 of each page in [`r::PHY_PAGES`], same order.
    pages: [Page; r::PHY_PAGES.len()],
}

/// BMSR without link and autonegotiation-complete: 100/10 full and half duplex, extended
/// status, preamble suppression, autonegotiation ability, extended capabilities.
const BMSR_BASE: u16 = 0x7949;
/// Link partner ability after autonegotiation: ACK, pause, 100/10 full and half duplex,
/// IEEE 802.3 selector.
const PARTNER_ABILITY: u16 = 0x45E1;
/// 1000BASE-T status with a link: local and remote receivers OK, partner 1000 full duplex.
const STAT1000_LINK: u16 = 0x3800;
/// Extended status: 1000BASE-T full and half duplex.
const ESTATUS: u16 = 0x3000;

impl Default for Phy {
    fn default() -> Self {
        let mut ieee = [0u16; 16];
        ieee[r::PHY_CTRL as usize] = 0x1140; // autonegotiation enabled, 1000 Mb/s, full duplex
        ieee[r::PHY_AUTONEG_ADV as usize] = 0x0DE1;
        ieee[r::PHY_NEXT_PAGE_TX as usize] = 0x2001;
        ieee[r::PHY_1000T_CTRL as usize] = 0x0300;
        let mut pages = [[0u16; 16]; r::PHY_PAGES.len()];
        // Page 0 register 16 (PHY specific control): automatic MDI/MDI-X crossover.
        pages[0][0] = 0x0060;
        // Page 2 register 21 (MAC interface control): default MAC speed 1000 Mb/s (the
        // field Linux's loopback setup rewrites to 6).
        pages[1][5] = 0x0006;
        Phy { ieee, page: 0, pages }
    }
}

impl Phy {
    /// PHY loopback (BMCR bit 14).
    pub fn loopback(&self) -> bool {
        self.ieee[r::PHY_CTRL as usize] & r::PHY_CTRL_LOOPBACK != 0
    }

    /// Powered down (BMCR bit 11): no link.
    pub fn powered_down(&self) -> bool {
        self.ieee[r::PHY_CTRL as usize] & r::PHY_CTRL_POWER_DOWN != 0
    }

    fn page_regs(&self) -> Option<&Page> {
        r::PHY_PAGES.iter().position(|p| *p == self.page).and_then(|i| self.pages.get(i))
    }

    fn page_regs_mut(&mut self) -> Option<&mut Page> {
        r::PHY_PAGES.iter().position(|p| *p == self.page).and_then(|i| self.pages.get_mut(i))
    }

    /// Read register `reg` (0..31) given the current link state.
    pub fn read(&self, reg: u32, link: bool) -> Result<u16, Unmodelled> {
        let unmodelled = Unmodelled { page: self.page, reg };
        match reg {
            r::PHY_STATUS => {
                let up = r::PHY_STATUS_LINK_UP | r::PHY_STATUS_AUTONEG_COMPLETE;
                Ok(BMSR_BASE | if link { up } else { 0 })
            }
            r::PHY_ID1 => Ok(r::PHY_ID.0),
            r::PHY_ID2 => Ok(r::PHY_ID.1),
            r::PHY_LP_ABILITY => Ok(if link { PARTNER_ABILITY } else { 0 }),
            // Expansion: the partner is able to autonegotiate.
            r::PHY_AUTONEG_EXP => Ok(u16::from(link)),
            r::PHY_LP_NEXT_PAGE => Ok(0),
            r::PHY_1000T_STATUS => Ok(if link { STAT1000_LINK } else { 0 }),
            r::PHY_EXT_STATUS => Ok(ESTATUS),
            0 | 4 | 7 | 9 => self.ieee.get(reg as usize).copied().ok_or(unmodelled),
            r::PHY_PAGE_SELECT => Ok(self.page),
            r::PHY_SPEC_STATUS if self.page == 0 => Ok(if link {
                r::PHY_SSR_SPEED_1000 | r::PHY_SSR_FULL_DUPLEX | r::PHY_SSR_RESOLVED | r::PHY_SSR_LINK
            } else {
                0
            }),
            // The receive error counter: the model's wire has no symbol errors.
            r::PHY_RX_ERROR_COUNTER if self.page == 0 => Ok(0),
            16..=31 => {
                let i = (reg - 16) as usize;
                self.page_regs().and_then(|p| p.get(i)).copied().ok_or(unmodelled)
            }
            _ => Err(unmodelled),
        }
    }

    /// Write register `reg` (0..31).
    pub fn write(&mut self, reg: u32, data: u16) -> Result<PhyEffect, Unmodelled> {
        let unmodelled = Unmodelled { page: self.page, reg };
        match reg {
            r::PHY_CTRL => {
                let was_down = self.powered_down();
                let reset = data & r::PHY_CTRL_RESET != 0;
                let restart = data & (r::PHY_CTRL_RESTART_AUTONEG | r::PHY_CTRL_AUTONEG_ENABLE)
                    == r::PHY_CTRL_RESTART_AUTONEG | r::PHY_CTRL_AUTONEG_ENABLE;
                // Reset and restart self-clear.
                self.ieee[0] = data & !(r::PHY_CTRL_RESET | r::PHY_CTRL_RESTART_AUTONEG);
                Ok(match (was_down, self.powered_down()) {
                    (_, true) => PhyEffect::PowerDown,
                    (true, false) => PhyEffect::PowerUp,
                    (false, false) if reset || restart => PhyEffect::Renegotiate,
                    _ => PhyEffect::None,
                })
            }
            4 | 7 | 9 => {
                if let Some(v) = self.ieee.get_mut(reg as usize) {
                    *v = data;
                }
                Ok(PhyEffect::None)
            }
            // Read-only clause-22 registers ignore writes.
            r::PHY_STATUS | r::PHY_ID1 | r::PHY_ID2 | 5 | 6 | 8 | 10 | 15 => Ok(PhyEffect::None),
            r::PHY_PAGE_SELECT => {
                self.page = data;
                Ok(PhyEffect::None)
            }
            r::PHY_SPEC_STATUS | r::PHY_RX_ERROR_COUNTER if self.page == 0 => Ok(PhyEffect::None),
            16..=31 => {
                let i = (reg - 16) as usize;
                let slot = self.page_regs_mut().and_then(|p| p.get_mut(i)).ok_or(unmodelled)?;
                *slot = data;
                Ok(PhyEffect::None)
            }
            _ => Err(unmodelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_their_own_registers_and_unknown_pages_are_unmodelled() {
        let mut phy = Phy::default();
        // Linux's BM loopback setup: page 769 register 16, page 2 register 21.
        assert_eq!(phy.write(r::PHY_PAGE_SELECT, 769), Ok(PhyEffect::None));
        assert_eq!(phy.write(16, 0x000C), Ok(PhyEffect::None));
        assert_eq!(phy.write(r::PHY_PAGE_SELECT, 2), Ok(PhyEffect::None));
        assert_eq!(phy.read(21, true), Ok(0x0006));
        assert_eq!(phy.read(16, true), Ok(0));
        phy.write(r::PHY_PAGE_SELECT, 769).ok();
        assert_eq!(phy.read(16, true), Ok(0x000C));
        // Clause-22 registers do not depend on the page.
        assert_eq!(phy.read(r::PHY_ID2, true), Ok(r::PHY_ID.1));
        phy.write(r::PHY_PAGE_SELECT, 5).ok();
        assert_eq!(phy.read(16, true), Err(Unmodelled { page: 5, reg: 16 }));
        assert_eq!(phy.write(20, 1), Err(Unmodelled { page: 5, reg: 20 }));
        assert_eq!(phy.read(12, true), Err(Unmodelled { page: 5, reg: 12 }));
    }

    #[test]
    fn bmcr_power_down_loopback_and_reset() {
        let mut phy = Phy::default();
        assert_eq!(phy.write(0, 0x1140 | r::PHY_CTRL_POWER_DOWN), Ok(PhyEffect::PowerDown));
        assert!(phy.powered_down());
        assert_eq!(phy.write(0, 0x1140), Ok(PhyEffect::PowerUp));
        assert_eq!(phy.write(0, 0x9140), Ok(PhyEffect::Renegotiate));
        assert_eq!(phy.read(0, false), Ok(0x1140), "reset self-clears");
        assert_eq!(phy.write(0, 0x4140), Ok(PhyEffect::None));
        assert!(phy.loopback());
        let bmsr = phy.read(r::PHY_STATUS, true).unwrap_or(0);
        assert_ne!(bmsr & r::PHY_STATUS_LINK_UP, 0);
        assert_eq!(phy.read(r::PHY_STATUS, false).map(|v| v & r::PHY_STATUS_LINK_UP), Ok(0));
    }
}
