//! Intel 82574L (8086:10D3) at register level.
//!
//! Interrupt semantics follow the datasheet as QEMU's e1000e models it (see
//! `shared/reference/i82574.md` §3): ICR read-to-clear rules per interrupt mode, IAM/IAME
//! auto-mask, EIAC auto-clear under MSI-X, edge-triggered notification, IVAR routing of the
//! five MSI-X causes, Other-cause folding into ICR.OTHER, ITR/EITR throttling on the virtual
//! clock, PBA clearing through PBACLR and IMS writes with CTRL_EXT.PBA_CLR.
//!
//! Registers come from the one table, [`nicqual_hw::i82574::REGISTERS`]: their reset values,
//! writable masks and access (read-to-clear statistics, read-only) are read from it; this
//! file keeps only behaviour (ICR/IMS/IMC interrupt rules, EERD/MDIC, self-clearing
//! CTRL.RST, the 64-bit counters cleared through their high half). Every offset not in
//! the table reads 0 and ignores writes, as QEMU does for unknown offsets. The flash BAR
//! reads 0. Registers without a behaviour of their own are plain storage: a write keeps
//! the bits of the table's writable mask.

use crate::clock::VirtualClock;
use crate::config::{BarKind, ConfigSpace};
use crate::faults::{FaultPlan, FaultState};
use crate::iommu::Iommu;
use crate::msix::{Msix, MsixOutcome};
use crate::touch::{TouchLog, TouchSpace};
use crate::{MsiMessage, PciDevice};
use nicqual_hw::i82574::{self as r, Ctrl, CtrlExt, Icr, IvarEntry, Status};
use nicqual_hw::pci;
use nicqual_hw::regs::Access;
use std::sync::LazyLock;

mod datapath;
mod phy;
pub mod rss;
pub use datapath::{DatapathCounters, MAX_JUMBO_FRAME, RxOutcome};

/// Words of the register file (128 KiB / 4).
const MAC_WORDS: usize = 0x8000;
/// Default time autonegotiation takes after reset, virtual ns.
pub const DEFAULT_LINK_UP_DELAY_NS: u64 = 100_000_000;

/// Construction options.
#[derive(Debug, Clone)]
pub struct Config {
    pub mac: [u8; 6],
    pub subsys_vendor: u16,
    pub subsys_id: u16,
    /// Time from reset to link up (autonegotiation), virtual ns.
    pub link_up_delay_ns: u64,
    /// Is a cable plugged in at all.
    pub cable: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            subsys_vendor: 0x8086,
            subsys_id: 0,
            link_up_delay_ns: DEFAULT_LINK_UP_DELAY_NS,
            cable: true,
        }
    }
}

/// What the model did, for tests and reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// MSI-X messages sent to the platform (before fault filtering).
    pub msix_sent: u64,
    /// Notifications that landed in the PBA.
    pub msix_pended: u64,
    /// Routed causes with an invalid IVAR entry (no message; QEMU traces "wrn_msix_invalid").
    pub msix_invalid_route: u64,
    /// Notifications postponed by ITR/EITR.
    pub throttled: u64,
    /// Messages lost because bus mastering was off.
    pub blocked_no_bus_master: u64,
    /// MSI messages sent (MSI mode).
    pub msi_sent: u64,
    /// INTx assertions.
    pub intx_assertions: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Throttle {
    next_ok_ns: u64,
    postponed: bool,
}

pub struct I82574 {
    cfg: ConfigSpace,
    mac: Vec<u32>,
    msix: Msix,
    clock: VirtualClock,
    iommu: Iommu,
    faults: FaultState,
    eeprom: [u16; r::EEPROM_WORDS],
    phy: phy::Phy,
    /// Throttles: index 0..5 = EITR per MSI-X vector, 5 = ITR (MSI/INTx).
    throttle: [Throttle; 6],
    link_up_at: Option<u64>,
    link_up: bool,
    io_addr: u32,
    intx_level: bool,
    delivered: Vec<MsiMessage>,
    options: Config,
    pub counters: Counters,
    /// Rings, wire port, packet buffer, delay timers (datapath.rs).
    dp: datapath::Datapath,
    /// Accesses to registers the model does not implement (kept across resets).
    touches: TouchLog,
}

const ITR_SLOT: usize = 5;

/// Bits IMS keeps of a write: the causes QEMU's e1000e keeps ([`Icr::IMS_VALID`],
/// 0x01F782D7) plus bits 3 (RXSEQ), 5 and 8. Inference: Linux e1000e's interrupt
/// self-test (`ethtool.c` `e1000_intr_test`) raises each of bits 0..9 through ICS with that
/// bit set in IMS and fails (result 4) unless an interrupt arrives; Intel runs that test on
/// 82574L boards, so the part must let those bits interrupt. QEMU's mask drops them, and
/// Linux's test fails there (docs/CONFORMANCE.md, "IMS keeps bits 3, 5 and 8").
const IMS_KEPT: u32 = Icr::IMS_VALID.bits() | Icr::RXSEQ.bits() | 1 << 5 | 1 << 8;

/// Per register word: (access, writable mask) from [`r::REGISTERS`], `None` where the
/// table declares nothing. Built once, so an access costs one index.
static REG_MAP: LazyLock<Vec<Option<(Access, u32)>>> = LazyLock::new(|| {
    let mut map = vec![None; MAC_WORDS];
    for d in r::REGISTERS {
        for (_, off) in d.instances() {
            if let Some(slot) = map.get_mut((off >> 2) as usize) {
                *slot = Some((d.access, d.mask));
            }
        }
    }
    map
});

/// Access and writable mask of the register at `off` (`None`: not a register).
fn reg_info(off: u32) -> Option<(Access, u32)> {
    REG_MAP.get((off >> 2) as usize).copied().flatten()
}

impl I82574 {
    pub fn new(options: Config) -> Self {
        let mut cfg =
            ConfigSpace::new(r::VENDOR_ID, r::DEVICE_ID, 0x0200_0000, options.subsys_vendor, options.subsys_id);
        cfg.add_bar(r::BAR_REGS, BarKind::Mem32, r::BAR_REGS_LEN);
        cfg.add_bar(r::BAR_FLASH, BarKind::Mem32, r::BAR_FLASH_LEN);
        cfg.add_bar(r::BAR_IO, BarKind::Io, r::BAR_IO_LEN);
        cfg.add_bar(r::BAR_MSIX, BarKind::Mem32, r::BAR_MSIX_LEN);
        cfg.set_wmask8(0x0C, 0xFF); // cache line size
        // Capability list as the real part (and QEMU) lists it: PM, MSI, PCIe, MSI-X.
        let pm = cfg.add_cap(pci::CAP_ID_PM, r::CAP_PM, 8);
        cfg.set16(pm + 2, 0x0022); // PMC: version 1.1 (bits 2:0 = 2), DSI (bit 5)
        cfg.set_wmask16(pm + 4, 0x0003); // PMCSR power state
        let msi = cfg.add_cap(pci::CAP_ID_MSI, r::CAP_MSI, 14);
        cfg.set16(msi + 2, 1 << 7); // 64-bit address, one vector, no per-vector mask
        cfg.set_wmask8(msi + 2, 0x01); // MSI enable
        for o in 4..14 {
            cfg.set_wmask8(msi + o, 0xFF);
        }
        let pcie = cfg.add_cap(pci::CAP_ID_PCIE, r::CAP_PCIE, 0x3C);
        cfg.set16(pcie + 2, 0x0001); // version 1, endpoint
        cfg.set32(pcie + 4, 0); // DevCap: no FLR (function-level reset not advertised)
        cfg.set_wmask16(pcie + 8, 0x7CFF); // DevCtl
        // LinkCap / LinkStatus: the 82574L is a PCIe x1 2.5 GT/s part, link trained.
        cfg.set32(pcie + 0x0C, 0x0000_0411);
        cfg.set16(pcie + 0x12, 0x0011);
        let msix = cfg.add_cap(pci::CAP_ID_MSIX, r::CAP_MSIX, 12);
        cfg.set16(msix + pci::MSIX_MSG_CTRL, r::MSIX_VECTORS - 1);
        cfg.set_wmask8(msix + pci::MSIX_MSG_CTRL + 1, 0xC0); // Enable, Function Mask
        cfg.set32(msix + pci::MSIX_TABLE, r::MSIX_TABLE_OFFSET as u32 | r::BAR_MSIX as u32);
        cfg.set32(msix + pci::MSIX_PBA, r::MSIX_PBA_OFFSET as u32 | r::BAR_MSIX as u32);
        cfg.add_ext_cap(pci::EXT_CAP_ID_AER, 1, r::EXT_CAP_AER, r::EXT_CAP_DSN);
        cfg.add_ext_cap(pci::EXT_CAP_ID_DSN, 1, r::EXT_CAP_DSN, 0);
        let m = options.mac;
        cfg.set32(r::EXT_CAP_DSN + 4, u32::from_le_bytes([m[5], m[4], m[3], 0xFE]));
        cfg.set32(r::EXT_CAP_DSN + 8, u32::from_le_bytes([0xFF, m[2], m[1], m[0]]));

        let mut dev = I82574 {
            cfg,
            mac: vec![0; MAC_WORDS],
            msix: Msix::new(r::MSIX_VECTORS),
            clock: VirtualClock::default(),
            iommu: Iommu::new(),
            faults: FaultState::default(),
            eeprom: [0; r::EEPROM_WORDS],
            phy: phy::Phy::default(),
            throttle: [Throttle::default(); 6],
            link_up_at: None,
            link_up: false,
            io_addr: 0,
            intx_level: false,
            delivered: Vec::new(),
            options,
            counters: Counters::default(),
            dp: datapath::Datapath::default(),
            touches: TouchLog::default(),
        };
        dev.build_eeprom();
        dev.mac_reset();
        dev
    }

    fn build_eeprom(&mut self) {
        let m = self.options.mac;
        let e = &mut self.eeprom;
        *e = [0; r::EEPROM_WORDS];
        e[0] = u16::from_le_bytes([m[0], m[1]]);
        e[1] = u16::from_le_bytes([m[2], m[3]]);
        e[2] = u16::from_le_bytes([m[4], m[5]]);
        // Word 4: ID LED settings, 0xF746 = "use the default LED modes" (Linux e1000e
        // `e1000_valid_led_default_82571`); word 5: image version, reported by the driver
        // as firmware version 1.8-4 (`e1000_get_drvinfo`). Both are the model's own
        // choices; every other word Linux reads (PBA number 8-9, init control 0x0F and
        // 0x24: no manageability, no wake-up) is 0.
        e[0x04] = 0xF746;
        e[0x05] = 0x1084;
        e[0x0B] = self.options.subsys_id;
        e[0x0C] = self.options.subsys_vendor;
        e[0x0D] = r::DEVICE_ID;
        e[0x0E] = r::VENDOR_ID;
        let sum = e[..r::EEPROM_CHECKSUM_WORD as usize].iter().fold(0u16, |a, w| a.wrapping_add(*w));
        e[r::EEPROM_CHECKSUM_WORD as usize] = r::EEPROM_SUM.wrapping_sub(sum);
    }

    /// Corrupt an EEPROM word (tests of the driver's checksum check).
    pub fn eeprom_poke(&mut self, word: usize, value: u16) {
        if let Some(w) = self.eeprom.get_mut(word) {
            *w = value;
        }
    }

    /// Power-on / CTRL.RST state of the MAC registers. PBA and PBS survive CTRL.RST.
    fn mac_reset(&mut self) {
        let pba = self.mac[(r::PBA >> 2) as usize];
        let pbs = self.mac[(r::PBS >> 2) as usize];
        self.mac.iter_mut().for_each(|w| *w = 0);
        let set = |mac: &mut Vec<u32>, off: u32, v: u32| mac[(off >> 2) as usize] = v;
        for d in r::REGISTERS {
            if let Some(v) = d.reset {
                d.instances().for_each(|(_, off)| set(&mut self.mac, off, v));
            }
        }
        if pba != 0 {
            set(&mut self.mac, r::PBA, pba);
        }
        set(&mut self.mac, r::PBS, pbs);
        let m = self.options.mac;
        set(&mut self.mac, r::ral(0), u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        set(&mut self.mac, r::rah(0), u32::from_le_bytes([m[4], m[5], 0, 0]) | r::RAH_AV);
        self.throttle = [Throttle::default(); 6];
        self.dp.reset();
        self.phy_reset();
        self.update_intx();
    }

    /// PHY back to its power-on registers; the link drops and negotiates again.
    fn phy_reset(&mut self) {
        self.phy = phy::Phy::default();
        self.set_link(false);
        self.schedule_link();
    }

    /// Start autonegotiation: the link comes up after the negotiation delay if a cable is
    /// plugged in and the PHY is powered.
    fn schedule_link(&mut self) {
        let can = self.options.cable && !self.phy.powered_down();
        self.link_up_at = can.then(|| self.clock.after(self.options.link_up_delay_ns));
    }

    /// Drop the link (raising LSC if it was up).
    fn drop_link(&mut self) {
        if self.link_up {
            self.set_link(false);
            self.set_interrupt_cause(Icr::LSC.bits());
        }
    }

    fn set_link(&mut self, up: bool) {
        self.link_up = up;
    }

    /// Arm a fault plan now; its times count from this moment.
    pub fn arm_faults(&mut self, plan: FaultPlan) {
        self.faults = FaultState::new(plan);
        self.faults.arm(self.clock.now_ns());
    }

    pub fn fault_state(&self) -> &FaultState {
        &self.faults
    }

    /// True once a surprise-removal fault holds.
    pub fn removed(&self) -> bool {
        self.faults.removed(self.clock.now_ns())
    }

    /// Unplug or plug the cable (LSC is raised on each change).
    pub fn set_cable(&mut self, plugged: bool) {
        self.options.cable = plugged;
        if plugged {
            self.schedule_link();
        } else {
            self.link_up_at = None;
            self.drop_link();
        }
    }

    pub fn msix(&self) -> &Msix {
        &self.msix
    }

    /// Raw register value, no side effects (for tests and dumps of the model itself).
    pub fn peek(&self, off: u32) -> u32 {
        self.mac.get((off >> 2) as usize).copied().unwrap_or(0)
    }

    fn reg(&self, off: u32) -> u32 {
        self.mac[(off >> 2) as usize]
    }

    fn set_reg(&mut self, off: u32, v: u32) {
        self.mac[(off >> 2) as usize] = v;
    }

    fn ctrl_ext(&self) -> CtrlExt {
        CtrlExt::from_bits_retain(self.reg(r::CTRL_EXT))
    }

    fn msix_enabled(&self) -> bool {
        self.msix.enabled
    }

    fn msi_enabled(&self) -> bool {
        self.cfg.get16(r::CAP_MSI + 2) & 1 != 0
    }

    fn status(&self) -> u32 {
        let mut s = Status::FD | Status::ASDV_1000;
        // GIO master requests stay enabled until the driver disables them through
        // CTRL.GIO_MASTER_DISABLE (Linux e1000e `e1000e_disable_pcie_master` polls for the
        // bit to clear; QEMU e1000e `e1000e_get_status` derives it the same way).
        if self.reg(r::CTRL) & Ctrl::GIO_MASTER_DISABLE.bits() == 0 {
            s |= Status::GIO_MASTER_ENABLE;
        }
        if self.link_up {
            s |= Status::LU;
            s = Status::from_bits_retain(s.bits() | r::STATUS_SPEED_1000 << r::STATUS_SPEED_SHIFT);
        }
        s.bits() | (self.reg(r::STATUS) & Status::PHYRA.bits())
    }

    // ---- interrupt block -------------------------------------------------------------

    fn update_int_asserted(&mut self) {
        let icr = self.reg(r::ICR) & !Icr::INT_ASSERTED.bits();
        let v = if icr != 0 { icr | Icr::INT_ASSERTED.bits() } else { icr };
        self.set_reg(r::ICR, v);
    }

    /// Raise `cause` bits (ICS write or a device event).
    pub fn set_interrupt_cause(&mut self, cause: u32) {
        let mut val = cause & !Icr::INT_ASSERTED.bits();
        if self.msix_enabled() && val & Icr::OTHER_CAUSES.bits() != 0 {
            val |= Icr::OTHER.bits();
        }
        let ims = self.reg(r::IMS);
        let before = self.reg(r::ICR) & ims;
        self.set_reg(r::ICR, self.reg(r::ICR) | val);
        self.update_int_asserted();
        let raised = self.reg(r::ICR) & ims & !before & !Icr::INT_ASSERTED.bits();
        self.notify(raised);
    }

    /// Send notifications for newly raised, enabled causes.
    fn notify(&mut self, raised: u32) {
        if raised == 0 {
            self.update_intx();
            return;
        }
        if self.msix_enabled() {
            for entry in IvarEntry::ALL {
                let cause = entry.cause().bits();
                if raised & cause != 0 {
                    self.msix_notify_one(entry, cause);
                }
            }
            self.update_int_asserted();
        } else if self.msi_enabled() {
            self.throttled_send(ITR_SLOT);
        } else {
            self.update_intx();
        }
    }

    fn msix_notify_one(&mut self, entry: IvarEntry, cause: u32) {
        match r::ivar_vector(self.reg(r::IVAR), entry) {
            Some(v) if v < r::MSIX_VECTORS => self.throttled_send(v as usize),
            _ => {
                self.counters.msix_invalid_route += 1;
                tracing::debug!(target: "nicqual::i82574", "cause {entry} has no valid IVAR route (IVAR={:#010x})", self.reg(r::IVAR));
            }
        }
        let ext = self.ctrl_ext();
        if ext.contains(CtrlExt::EIAME) {
            self.set_reg(r::IAM, self.reg(r::IAM) & !cause);
        }
        let eiac = self.reg(r::EIAC);
        self.set_reg(r::ICR, self.reg(r::ICR) & !(eiac & cause));
        if !ext.contains(CtrlExt::IAME) {
            self.set_reg(r::IMS, self.reg(r::IMS) & !(eiac & cause));
        }
    }

    fn throttle_interval_ns(&self, slot: usize) -> u64 {
        let reg = if slot == ITR_SLOT { self.reg(r::ITR) } else { self.reg(r::eitr(slot as u16)) };
        u64::from(r::fields::itr::INTERVAL.get(reg)) * 256
    }

    fn throttled_send(&mut self, slot: usize) {
        let now = self.clock.now_ns();
        let t = self.throttle[slot];
        if now < t.next_ok_ns {
            if !t.postponed {
                self.counters.throttled += 1;
            }
            self.throttle[slot].postponed = true;
            return;
        }
        self.throttle[slot] =
            Throttle { next_ok_ns: self.clock.after(self.throttle_interval_ns(slot)), postponed: false };
        if slot == ITR_SLOT {
            let addr = (self.cfg.get32(r::CAP_MSI + 8) as u64) << 32 | self.cfg.get32(r::CAP_MSI + 4) as u64;
            let data = self.cfg.get16(r::CAP_MSI + 12) as u32;
            self.counters.msi_sent += 1;
            self.send_message(None, addr, data);
        } else {
            match self.msix.notify(slot as u16) {
                MsixOutcome::Send { vector, address, data } => {
                    self.counters.msix_sent += 1;
                    self.send_message(Some(vector), address, data)
                }
                MsixOutcome::Pending => self.counters.msix_pended += 1,
                MsixOutcome::Disabled => {}
            }
        }
    }

    /// A message leaves the device: faults, bus mastering, then the interrupt window or memory.
    fn send_message(&mut self, vector: Option<u16>, address: u64, data: u32) {
        let now = self.clock.now_ns();
        if self.removed() {
            return;
        }
        if let Some(v) = vector
            && self.faults.swallow_message(v, now)
        {
            return;
        }
        if self.cfg.command() & pci::COMMAND_BUS_MASTER == 0 {
            self.counters.blocked_no_bus_master += 1;
            return;
        }
        if address & pci::MSI_ADDRESS_MASK == pci::MSI_ADDRESS_BASE {
            self.delivered.push(MsiMessage { address, data, at_ns: now });
        } else {
            // Not the interrupt window: an ordinary memory write, checked by the IOMMU.
            let _ = self.iommu.write(address, &data.to_le_bytes(), now);
        }
    }

    fn release(&mut self, outcomes: Vec<MsixOutcome>) {
        for o in outcomes {
            if let MsixOutcome::Send { vector, address, data } = o {
                self.counters.msix_sent += 1;
                self.send_message(Some(vector), address, data);
            }
        }
    }

    fn update_intx(&mut self) {
        let level = !self.msix_enabled()
            && !self.msi_enabled()
            && self.cfg.command() & pci::COMMAND_INTX_DISABLE == 0
            && self.reg(r::ICR) & self.reg(r::IMS) != 0;
        if level && !self.intx_level {
            self.counters.intx_assertions += 1;
            self.set_reg(r::IAC, self.reg(r::IAC).wrapping_add(1));
        }
        self.intx_level = level;
    }

    /// INTx line level (legacy mode).
    pub fn intx_asserted(&self) -> bool {
        self.intx_level
    }

    fn read_icr(&mut self) -> u32 {
        let ret = self.reg(r::ICR);
        let ims = self.reg(r::IMS);
        if !self.msix_enabled() || ims == 0 {
            self.set_reg(r::ICR, 0);
        } else if ret & Icr::INT_ASSERTED.bits() != 0 {
            if self.ctrl_ext().contains(CtrlExt::IAME) {
                self.set_reg(r::ICR, 0);
                self.set_reg(r::IMS, ims & !self.reg(r::IAM));
            }
            if ret & self.reg(r::IMS) != 0 {
                self.set_reg(r::ICR, 0);
            }
        }
        if !self.msix_enabled() && ret & Icr::INT_ASSERTED.bits() != 0 && self.ctrl_ext().contains(CtrlExt::IAME) {
            self.set_reg(r::IMS, ims & !self.reg(r::IAM));
        }
        self.update_intx();
        ret
    }

    fn write_icr(&mut self, val: u32) {
        if self.reg(r::ICR) & Icr::INT_ASSERTED.bits() != 0 && self.ctrl_ext().contains(CtrlExt::IAME) {
            self.set_reg(r::IMS, self.reg(r::IMS) & !self.reg(r::IAM));
        }
        let mut clear = val;
        if val & Icr::OTHER.bits() != 0 {
            clear |= Icr::OTHER_CAUSES.bits();
        }
        self.set_reg(r::ICR, self.reg(r::ICR) & !clear);
        self.update_int_asserted();
        self.update_intx();
    }

    fn write_ims(&mut self, val: u32) {
        let val = val & IMS_KEPT;
        if self.msix_enabled() && self.ctrl_ext().contains(CtrlExt::PBA_CLR) {
            for entry in IvarEntry::ALL {
                if val & entry.cause().bits() != 0
                    && let Some(v) = r::ivar_vector(self.reg(r::IVAR), entry)
                {
                    self.msix.clear_pending(v);
                }
            }
        }
        let before = self.reg(r::ICR) & self.reg(r::IMS);
        self.set_reg(r::IMS, self.reg(r::IMS) | val);
        // Newly enabled causes that are already pending fire now (edge on ICR & IMS).
        let raised = self.reg(r::ICR) & self.reg(r::IMS) & !before & !Icr::INT_ASSERTED.bits();
        self.notify(raised);
    }

    fn eerd_write(&mut self, val: u32) {
        if val & r::EERD_START == 0 {
            self.set_reg(r::EERD, val & !r::EERD_DONE);
            return;
        }
        let addr = (val >> r::EERD_ADDR_SHIFT) & r::EERD_ADDR_MASK;
        let data = self.eeprom.get(addr as usize).copied().unwrap_or(0) as u32;
        self.set_reg(r::EERD, (addr << r::EERD_ADDR_SHIFT) | r::EERD_DONE | (data << r::EERD_DATA_SHIFT));
    }

    /// EEWR: write one EEPROM word (Linux e1000e `e1000_write_nvm_eewr_82571`, which then
    /// rewrites the checksum word the same way).
    fn eewr_write(&mut self, val: u32) {
        if val & r::EERD_START != 0 {
            let addr = (val >> r::EERD_ADDR_SHIFT) & r::EERD_ADDR_MASK;
            match self.eeprom.get_mut(addr as usize) {
                Some(w) => *w = (val >> r::EERD_DATA_SHIFT) as u16,
                None => self.touches.record(TouchSpace::Bar(r::BAR_REGS), r::EEWR.into(), Some("EEWR"), true, val),
            }
        }
        self.set_reg(r::EEWR, (val & !r::EERD_START) | r::EERD_DONE);
    }

    fn mdic_write(&mut self, val: u32) {
        let phy = (val >> r::MDIC_PHYADD_SHIFT) & 0x1F;
        let reg = (val >> r::MDIC_REGADD_SHIFT) & 0x1F;
        let mut out = val & !(r::MDIC_READY | r::MDIC_ERROR);
        if phy != r::PHY_ADDR {
            out |= r::MDIC_ERROR;
        } else if val & r::MDIC_OP_READ != 0 {
            let data = match self.phy.read(reg, self.link_up) {
                Ok(v) => v,
                Err(u) => {
                    self.touches.record(TouchSpace::Phy { page: u.page }, u.reg.into(), None, false, 0);
                    0
                }
            };
            out = (out & !r::MDIC_DATA_MASK) | u32::from(data);
        } else if val & r::MDIC_OP_WRITE != 0 {
            let data = (val & r::MDIC_DATA_MASK) as u16;
            match self.phy.write(reg, data) {
                Ok(phy::PhyEffect::None) => {}
                // Reset or autonegotiation restart: the link drops and comes back after
                // negotiating; each change raises LSC.
                Ok(phy::PhyEffect::Renegotiate | phy::PhyEffect::PowerUp) => {
                    self.drop_link();
                    self.schedule_link();
                }
                Ok(phy::PhyEffect::PowerDown) => {
                    self.link_up_at = None;
                    self.drop_link();
                }
                Err(u) => {
                    self.touches.record(TouchSpace::Phy { page: u.page }, u.reg.into(), None, true, u32::from(data));
                }
            }
        }
        self.set_reg(r::MDIC, out | r::MDIC_READY);
        if val & r::MDIC_INT_EN != 0 {
            self.set_interrupt_cause(Icr::MDAC.bits());
        }
    }

    /// SYSTIM on the virtual clock: `ns * INCVALUE / (INCPERIOD * 16)` (QEMU
    /// `e1000x_timestamp`; an INCPERIOD of 0 counts as 1).
    fn systim(&self) -> u64 {
        let t = self.reg(r::TIMINCA);
        let inc = u128::from(r::fields::timinca::INCVALUE.get(t));
        let period = u128::from(r::fields::timinca::INCPERIOD.get(t).max(1));
        let v = u128::from(self.clock.now_ns()) * inc / (period * 16);
        v as u64
    }

    /// An access to a BAR0 offset the model has no register for.
    fn touch_bar0(&mut self, off: u32, write: bool, value: u32) {
        self.touches.record(TouchSpace::Bar(r::BAR_REGS), off.into(), r::reg_name(off), write, value);
    }

    /// The register-touch log: every access to a register, PHY register or BAR range the
    /// model does not implement.
    pub fn touches(&self) -> &TouchLog {
        &self.touches
    }

    /// Forget the touch log (a run that wants only its own accesses).
    pub fn clear_touches(&mut self) {
        self.touches.clear();
    }

    /// Writable mask of a register (from the table; 0 for an offset it does not declare).
    fn write_mask(off: u32) -> u32 {
        reg_info(off).map_or(0, |(_, mask)| mask)
    }

    fn reg_read(&mut self, off: u32) -> u32 {
        let off = off & !3;
        match off {
            r::CTRL | r::CTRL_DUP => self.reg(r::CTRL),
            r::STATUS => self.status(),
            r::ICR => self.read_icr(),
            r::ICS => self.reg(r::ICR),
            r::IMC => 0,
            r::SYSTIML => self.systim() as u32,
            r::SYSTIMH => (self.systim() >> 32) as u32,
            r::SWSM => {
                let v = self.reg(r::SWSM);
                self.set_reg(r::SWSM, v | 1);
                v
            }
            o => match reg_info(o) {
                Some((Access::Rc, _)) => {
                    let v = self.reg(o);
                    self.set_reg(o, 0);
                    // A 64-bit counter clears as a whole when its high half is read.
                    if matches!(o, r::GORCH | r::GOTCH | r::TORH | r::TOTH) {
                        self.set_reg(o - 4, 0);
                    }
                    v
                }
                Some(_) => self.reg(o),
                None => {
                    self.touch_bar0(o, false, 0);
                    0
                }
            },
        }
    }

    fn reg_write(&mut self, off: u32, val: u32) {
        let off = off & !3;
        match off {
            r::CTRL | r::CTRL_DUP => {
                if val & Ctrl::RST.bits() != 0 {
                    self.mac_reset();
                    self.set_reg(r::CTRL, val & !(Ctrl::RST.bits() | Ctrl::PHY_RST.bits()));
                } else {
                    self.set_reg(r::CTRL, val & !Ctrl::PHY_RST.bits());
                    if val & Ctrl::PHY_RST.bits() != 0 {
                        // PHY hardware reset (Linux e1000e `e1000e_phy_hw_reset_generic`):
                        // the PHY returns to its power-on registers and renegotiates;
                        // STATUS.PHYRA records that it was reset (as QEMU sets it).
                        self.drop_link();
                        self.phy_reset();
                        self.set_reg(r::STATUS, self.reg(r::STATUS) | Status::PHYRA.bits());
                    }
                }
            }
            // Only PHYRA can be cleared (write 0); the rest of STATUS is read-only.
            r::STATUS if val & Status::PHYRA.bits() == 0 => {
                self.set_reg(r::STATUS, self.reg(r::STATUS) & !Status::PHYRA.bits());
            }
            r::STATUS => {}
            r::EERD => self.eerd_write(val),
            r::EEWR => self.eewr_write(val),
            r::MDIC => self.mdic_write(val),
            r::CTRL_EXT => {
                self.set_reg(r::CTRL_EXT, val & !(CtrlExt::ASDCHK.bits() | CtrlExt::EE_RST.bits()));
            }
            r::ICR => self.write_icr(val),
            r::ICS => self.set_interrupt_cause(val),
            r::IMS => self.write_ims(val),
            r::IMC => {
                self.set_reg(r::IMS, self.reg(r::IMS) & !val);
                self.update_intx();
            }
            r::IVAR => {
                let stored = self.faults.filter_ivar_write(val, self.clock.now_ns());
                self.set_reg(r::IVAR, stored);
            }
            r::PBACLR => {
                for v in 0..r::MSIX_VECTORS {
                    if val & (1 << v) != 0 {
                        self.msix.clear_pending(v);
                    }
                }
            }
            // The transmit engine runs on a tail write, on TCTL and on TARC (which can
            // enable a queue that already has work).
            o if o == r::tdt(0) || o == r::tdt(1) || o == r::tarc(0) || o == r::tarc(1) => {
                self.set_reg(o, val & Self::write_mask(o));
                // A TARC write only lets a newly enabled queue's waiting work go.
                let touched = [o == r::tdt(0), o == r::tdt(1)];
                self.tx_kick(touched);
            }
            r::TCTL => {
                self.set_reg(r::TCTL, val);
                self.tx_kick([true, true]);
            }
            o if o == r::rdt(0) || o == r::rdt(1) => {
                self.set_reg(o, val & Self::write_mask(o));
                self.rx_drain();
            }
            r::RCTL => {
                self.set_reg(r::RCTL, val);
                self.rx_drain();
            }
            r::RDTR | r::TIDV => self.delay_reg_write(off, val),
            // Plain storage: the writable bits take the value, the others keep theirs;
            // read-only and read-to-clear registers ignore writes.
            o => match reg_info(o) {
                Some((access, mask)) if access.stores_writes() => {
                    self.set_reg(o, (self.reg(o) & !mask) | (val & mask));
                }
                Some(_) => {}
                None => self.touch_bar0(o, true, val),
            },
        }
    }

    /// True for offsets of the MSI-X BAR that hold the table or the PBA.
    fn msix_bar_modelled(off: u64) -> bool {
        let table_len = r::MSIX_VECTORS as u64 * pci::MSIX_ENTRY_SIZE;
        (r::MSIX_TABLE_OFFSET..r::MSIX_TABLE_OFFSET + table_len).contains(&off)
            || (r::MSIX_PBA_OFFSET..r::MSIX_PBA_OFFSET + 8).contains(&off)
    }

    fn msix_bar_read(&self, off: u64) -> u32 {
        let table_len = r::MSIX_VECTORS as u64 * pci::MSIX_ENTRY_SIZE;
        if (r::MSIX_TABLE_OFFSET..r::MSIX_TABLE_OFFSET + table_len).contains(&off) {
            let rel = off - r::MSIX_TABLE_OFFSET;
            let v = (rel / pci::MSIX_ENTRY_SIZE) as u16;
            if self.faults.vector_lost(v, self.clock.now_ns()) {
                return 0xFFFF_FFFF;
            }
            self.msix.table_read(rel)
        } else if (r::MSIX_PBA_OFFSET..r::MSIX_PBA_OFFSET + 8).contains(&off) {
            self.msix.pba_read(off - r::MSIX_PBA_OFFSET)
        } else {
            0
        }
    }

    fn msix_bar_write(&mut self, off: u64, val: u32) {
        let table_len = r::MSIX_VECTORS as u64 * pci::MSIX_ENTRY_SIZE;
        if (r::MSIX_TABLE_OFFSET..r::MSIX_TABLE_OFFSET + table_len).contains(&off) {
            let out = self.msix.table_write(off - r::MSIX_TABLE_OFFSET, val);
            self.release(out);
        }
        // PBA writes are ignored.
    }

    fn sync_msix_control(&mut self) {
        let ctrl = self.cfg.get16(r::CAP_MSIX + pci::MSIX_MSG_CTRL);
        let was = self.msix.enabled;
        self.msix.enabled = ctrl & pci::MSIX_CTRL_ENABLE != 0;
        self.msix.function_mask = ctrl & pci::MSIX_CTRL_FUNCTION_MASK != 0;
        if self.msix.enabled && !was {
            // Enabling MSI-X deasserts INTx.
            self.intx_level = false;
        }
        let out = self.msix.release_unmasked();
        self.release(out);
    }

    fn fire_timers(&mut self) {
        let now = self.clock.now_ns();
        if let Some(t) = self.link_up_at
            && now >= t
        {
            self.link_up_at = None;
            self.set_link(true);
            self.set_interrupt_cause(Icr::LSC.bits());
        }
        for slot in 0..self.throttle.len() {
            let t = self.throttle[slot];
            if t.postponed && now >= t.next_ok_ns {
                self.throttle[slot].postponed = false;
                self.throttled_send(slot);
            }
        }
        self.dp_fire_timers();
    }

    /// Earliest pending timer deadline, if any.
    fn next_deadline(&self) -> Option<u64> {
        let thr = self.throttle.iter().filter(|t| t.postponed).map(|t| t.next_ok_ns).min();
        [self.link_up_at, thr, self.dp.next_deadline()].into_iter().flatten().min()
    }
}

impl PciDevice for I82574 {
    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        if self.removed() {
            return if size >= 4 { u32::MAX } else { (1u32 << (8 * size as u32)) - 1 };
        }
        self.cfg.read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        if self.removed() {
            return;
        }
        self.cfg.write(offset, size, value);
        let ctl = r::CAP_MSIX + pci::MSIX_MSG_CTRL;
        if offset <= ctl + 1 && offset + size as u16 > ctl {
            self.sync_msix_control();
        }
        self.update_intx();
    }

    fn bar_len(&self, bar: u8) -> Option<u64> {
        self.cfg.bar_size(bar)
    }

    fn bar_read32(&mut self, bar: u8, offset: u64) -> u32 {
        if self.removed() {
            return u32::MAX;
        }
        if self.dp.wire.is_some() {
            self.poll_wire();
        }
        match bar {
            r::BAR_REGS if offset < r::BAR_REGS_LEN => self.reg_read(offset as u32),
            r::BAR_IO if offset == 0 => self.io_addr,
            r::BAR_IO if offset == 4 && self.io_addr < 0x1FFFF => self.reg_read(self.io_addr),
            r::BAR_MSIX if offset < r::BAR_MSIX_LEN && Self::msix_bar_modelled(offset) => self.msix_bar_read(offset),
            // The flash window, other I/O offsets, gaps of the MSI-X BAR: nothing modelled.
            _ => {
                self.touches.record(TouchSpace::Bar(bar), offset, None, false, 0);
                0
            }
        }
    }

    fn bar_write32(&mut self, bar: u8, offset: u64, value: u32) {
        if self.removed() {
            return;
        }
        if self.dp.wire.is_some() {
            self.poll_wire();
        }
        match bar {
            r::BAR_REGS if offset < r::BAR_REGS_LEN => self.reg_write(offset as u32, value),
            r::BAR_IO if offset == 0 => self.io_addr = value,
            r::BAR_IO if offset == 4 && self.io_addr < 0x1FFFF => self.reg_write(self.io_addr, value),
            r::BAR_MSIX if offset < r::BAR_MSIX_LEN && Self::msix_bar_modelled(offset) => {
                self.msix_bar_write(offset, value)
            }
            _ => self.touches.record(TouchSpace::Bar(bar), offset, None, true, value),
        }
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        self.next_deadline()
    }

    fn advance(&mut self, ns: u64) {
        let target = self.clock.now_ns().saturating_add(ns);
        // Step through deadlines in order so timers fire at their own time.
        for _ in 0..64 {
            match self.next_deadline() {
                Some(d) if d <= target => {
                    self.clock.advance_to(d);
                    self.fire_timers();
                }
                _ => break,
            }
        }
        self.clock.advance_to(target);
        self.fire_timers();
        if self.dp.wire.is_some() && !self.removed() {
            self.poll_wire();
        }
    }

    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    fn function_reset(&mut self) {
        let faults = std::mem::take(&mut self.faults);
        let clock = self.clock;
        let counters = std::mem::take(&mut self.counters);
        let mut iommu = std::mem::take(&mut self.iommu);
        let wire = self.dp.wire.take();
        let touches = std::mem::take(&mut self.touches);
        *self = I82574::new(self.options.clone());
        self.touches = touches;
        self.dp.wire = wire;
        std::mem::swap(&mut self.iommu, &mut iommu);
        self.faults = faults;
        self.clock = clock;
        self.counters = counters;
        self.link_up_at = self.options.cable.then(|| clock.after(self.options.link_up_delay_ns));
    }

    fn take_interrupts(&mut self) -> Vec<MsiMessage> {
        std::mem::take(&mut self.delivered)
    }

    fn iommu(&mut self) -> &mut Iommu {
        &mut self.iommu
    }

    fn dma_faults_total(&self) -> u64 {
        self.iommu.faults_total()
    }

    fn touch_log(&self) -> Option<&TouchLog> {
        Some(&self.touches)
    }

    fn intx_level(&self) -> bool {
        self.intx_level
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod datapath_tests;

#[cfg(test)]
mod queue_tests;

#[cfg(test)]
mod rss_tests;

#[cfg(test)]
mod linux_tests;
