//! The 82574L driver: attach, reset, EEPROM, PHY, MSI-X bring-up as Linux e1000e does it,
//! interrupt handling, and the detectors (all-ones, vector liveness, pending-cause
//! watchdog) with recovery (re-program, then fall back to polling).
//!
//! The qualification suite that exercises these detectors lives above the driver, in
//! `nicqual-qualify` (`nicqual_qualify::i82574`).

pub mod datapath;
pub mod liveness;
pub mod rss;

pub use liveness::{DEFAULT_PROBES, DEFAULT_WATCHDOG_WINDOW, Liveness, wilson95};

use crate::backend::Backend;
use crate::error::DriverError;
use crate::health::{HealthCounters, IrqEvent, IrqLog};
use nicqual_hw::i82574::{self as r, Ctrl, CtrlExt, Icr, IvarEntry, Status};
use nicqual_hw::pci;

/// Bounds on every wait the driver does. All in ns on the backend's clock.
#[derive(Debug, Clone)]
pub struct Options {
    /// CTRL.RST must self-clear within this.
    pub reset_timeout_ns: u64,
    /// EERD / MDIC must report done within this.
    pub access_timeout_ns: u64,
    /// Link must come up within this.
    pub link_timeout_ns: u64,
    /// An interrupt must arrive within this after its cause is raised.
    pub irq_bound_ns: u64,
    /// Granularity of waits.
    pub poll_step_ns: u64,
    /// Software-raised interrupts per vector in the liveness check, and in the fresh run
    /// that decides whether recovery worked ([`liveness`] gives the arithmetic).
    pub liveness_rounds: u32,
    /// Software-raised interrupts per quiet vector in one run of the watchdog.
    pub watchdog_window: u32,
    /// Interrupt rate Linux programs into EITR (ints/s); 0 = no throttling.
    pub itr_ints_per_s: u32,
    /// Queue pairs: 1 (Linux e1000e's plan, [`LINUX_ROUTES`], three vectors) or 2
    /// ([`TWO_QUEUE_ROUTES`], five vectors, RSS key and table programmed). Anything else
    /// is refused at attach.
    pub queue_pairs: u8,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reset_timeout_ns: 10_000_000,
            access_timeout_ns: 1_000_000,
            link_timeout_ns: 5_000_000_000,
            irq_bound_ns: 10_000_000,
            poll_step_ns: 50_000,
            liveness_rounds: DEFAULT_PROBES,
            watchdog_window: DEFAULT_WATCHDOG_WINDOW,
            itr_ints_per_s: 20_000,
            queue_pairs: 1,
        }
    }
}

/// Vector plan as Linux e1000e sets it up: RxQ0, TxQ0 and Other each on their own vector.
pub const LINUX_ROUTES: [(IvarEntry, u16); 3] = [(IvarEntry::RxQ0, 0), (IvarEntry::TxQ0, 1), (IvarEntry::Other, 2)];
/// MSI-X vectors the driver asks for with one queue pair.
pub const VECTORS: u16 = 3;
/// Vector plan with two queue pairs, the mode seed 004 failed in ("ESX/ESXi uses or touches
/// all of the IVAR table, 0-4"): every IVAR entry valid, each on its own MSI-X vector —
/// RxQ0→0, RxQ1→1, TxQ0→2, TxQ1→3, Other→4.
pub const TWO_QUEUE_ROUTES: [(IvarEntry, u16); 5] =
    [(IvarEntry::RxQ0, 0), (IvarEntry::RxQ1, 1), (IvarEntry::TxQ0, 2), (IvarEntry::TxQ1, 3), (IvarEntry::Other, 4)];

/// The vector plan for `queue_pairs` (1 or 2).
pub fn routes_for(queue_pairs: u8) -> &'static [(IvarEntry, u16)] {
    if queue_pairs == 2 { &TWO_QUEUE_ROUTES } else { &LINUX_ROUTES }
}

/// Identity read at attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    pub vendor: u16,
    pub device: u16,
    pub subsys_vendor: u16,
    pub subsys: u16,
    pub revision: u8,
}

/// What recovery of a lost vector achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Re-programming IVAR and the vector brought it back: a full fresh probe run
    /// (`after`) delivered every message.
    Reprogrammed { entry: IvarEntry, vector: u16, after: Liveness },
    /// The vector still lost messages in the fresh probe run after re-programming
    /// (`after`, with the measured loss); the entry's causes are now polled. `verified`: a
    /// software-raised cause was seen by the poller.
    Polling { entry: IvarEntry, vector: u16, verified: bool, after: Liveness },
}

pub struct I82574<B: Backend> {
    b: B,
    opts: Options,
    identity: Identity,
    mac: Option<[u8; 6]>,
    gone: bool,
    /// IVAR entry -> vector, as programmed (index = entry index).
    routes: [Option<u16>; 5],
    ivar_written: u32,
    eiac_mask: u32,
    msix_on: bool,
    /// Entries whose causes are served by polling.
    polled: Vec<IvarEntry>,
    last_delivery_ns: Vec<u64>,
    pub counters: HealthCounters,
    /// Rings and packet pool, once `setup_datapath` ran (datapath.rs).
    dp: Option<datapath::Datapath>,
    /// Every software-raised cause with its delivery latency or loss (bounded).
    pub irq_log: IrqLog,
    /// Other causes the Other-vector handler has read from ICR (accumulated; checks
    /// clear it to see which causes a vector delivered).
    other_icr: u32,
}

impl<B: Backend> I82574<B> {
    /// Probe the function: check its identity, enable memory decode and bus mastering.
    pub fn attach(mut b: B, opts: Options) -> Result<Self, DriverError> {
        if !(1..=2).contains(&opts.queue_pairs) {
            return Err(DriverError::Unsupported {
                what: format!("{} queue pairs (the 82574L has 1 or 2)", opts.queue_pairs),
            });
        }
        let vendor = b.config_read(pci::VENDOR_ID, 2)? as u16;
        let device = b.config_read(pci::DEVICE_ID, 2)? as u16;
        if vendor == 0xFFFF && device == 0xFFFF {
            return Err(DriverError::DeviceGone { reg: "PCI VENDOR_ID", offset: pci::VENDOR_ID as u32 });
        }
        if vendor != r::VENDOR_ID || !(device == r::DEVICE_ID || device == r::DEVICE_ID_82574LA) {
            return Err(DriverError::WrongDevice { offset: pci::VENDOR_ID, vendor, device });
        }
        let identity = Identity {
            vendor,
            device,
            subsys_vendor: b.config_read(pci::SUBSYSTEM_VENDOR_ID, 2)? as u16,
            subsys: b.config_read(pci::SUBSYSTEM_ID, 2)? as u16,
            revision: b.config_read(pci::REVISION_CLASS, 1)? as u8,
        };
        let cmd = b.config_read(pci::COMMAND, 2)? as u16;
        b.config_write(pci::COMMAND, 2, (cmd | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER) as u32)?;
        if b.bar_len(r::BAR_REGS).is_none_or(|l| l < r::BAR_REGS_LEN) {
            return Err(nicqual_pci::BackendError::NoSuchBar { bar: r::BAR_REGS }.into());
        }
        Ok(I82574 {
            b,
            opts,
            identity,
            mac: None,
            gone: false,
            routes: [None; 5],
            ivar_written: 0,
            eiac_mask: 0,
            msix_on: false,
            polled: Vec::new(),
            last_delivery_ns: Vec::new(),
            counters: HealthCounters::default(),
            dp: None,
            irq_log: IrqLog::default(),
            other_icr: 0,
        })
    }

    /// The backend the driver runs on.
    pub fn backend(&self) -> &B {
        &self.b
    }

    /// The backend, mutably (waits on its clock, fault arming, removal in tests).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.b
    }

    /// PCI identity read at attach.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// The MAC address, once `read_mac` (or `bring_up`) read it from the EEPROM.
    pub fn mac(&self) -> Option<[u8; 6]> {
        self.mac
    }

    /// The options the driver was attached with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The device was found gone (STATUS read all-ones); nothing touches it any more.
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// IVAR entries whose causes are served by polling (recovery gave their vector up).
    pub fn polled_entries(&self) -> &[IvarEntry] {
        &self.polled
    }

    /// Other causes the Other-vector handler has read from ICR since the last
    /// [`clear_other_icr`](Self::clear_other_icr).
    pub fn other_icr(&self) -> u32 {
        self.other_icr
    }

    /// Forget the Other causes seen so far (to see which causes the next messages deliver).
    pub fn clear_other_icr(&mut self) {
        self.other_icr = 0;
    }

    /// The vector plan the driver runs: (IVAR entry, MSI-X vector) pairs.
    pub fn plan(&self) -> &'static [(IvarEntry, u16)] {
        routes_for(self.opts.queue_pairs)
    }

    /// MSI-X vectors the plan uses.
    pub fn vectors(&self) -> u16 {
        self.plan().len() as u16
    }

    /// Queue pairs the driver runs (1 or 2).
    pub fn queue_pairs(&self) -> u8 {
        self.opts.queue_pairs
    }

    /// The vector IVAR entry `entry` was programmed to route to.
    pub fn route(&self, entry: IvarEntry) -> Option<u16> {
        self.routes.get(entry.index() as usize).copied().flatten()
    }

    fn gone_error(&self, offset: u32) -> DriverError {
        DriverError::DeviceGone { reg: r::reg_name(offset).unwrap_or("BAR0"), offset }
    }

    /// Read a BAR0 register. A read of all-ones is checked against STATUS (which can never
    /// legitimately be all-ones): if STATUS is all-ones too, the device is gone and every
    /// later access fails fast without touching it.
    pub fn read(&mut self, reg: u32) -> Result<u32, DriverError> {
        if self.gone {
            return Err(self.gone_error(reg));
        }
        let v = self.b.read32(r::BAR_REGS, reg as u64);
        if v == u32::MAX {
            self.counters.all_ones_reads += 1;
            let status = if reg == r::STATUS { v } else { self.b.read32(r::BAR_REGS, r::STATUS as u64) };
            if status == u32::MAX {
                self.gone = true;
                tracing::warn!(target: "nicqual::driver", "{} read 0xffffffff: device gone", r::reg_name(reg).unwrap_or("?"));
                return Err(self.gone_error(reg));
            }
        }
        Ok(v)
    }

    /// Write a BAR0 register (nothing is written to a device known to be gone).
    pub fn write(&mut self, reg: u32, v: u32) -> Result<(), DriverError> {
        if self.gone {
            return Err(self.gone_error(reg));
        }
        self.b.write32(r::BAR_REGS, reg as u64, v);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DriverError> {
        self.read(r::STATUS).map(|_| ())
    }

    /// Wait (bounded) until `done(value of reg)`; returns the last value and time waited.
    fn wait_for(
        &mut self,
        reg: u32,
        bound_ns: u64,
        step_ns: u64,
        done: impl Fn(u32) -> bool,
    ) -> Result<(u32, u64, bool), DriverError> {
        let t0 = self.b.now_ns();
        let max_iter = bound_ns / step_ns.max(1) + 2;
        let mut v = self.read(reg)?;
        for _ in 0..max_iter {
            if done(v) {
                return Ok((v, self.b.now_ns() - t0, true));
            }
            if self.b.now_ns() - t0 >= bound_ns {
                break;
            }
            self.b.wait(step_ns);
            v = self.read(reg)?;
        }
        Ok((v, self.b.now_ns() - t0, done(v)))
    }

    /// Write the ethtool patterns into each register of [`r::pattern_regs`] and read back
    /// within its writable mask, except the registers at the offsets in `skip`. Returns the
    /// number of registers tested.
    pub fn register_pattern_test(&mut self, skip: &[u32]) -> Result<usize, DriverError> {
        let mut tested = 0;
        for reg in r::pattern_regs() {
            if skip.contains(&reg.offset) {
                continue;
            }
            tested += 1;
            if self.gone {
                return Err(self.gone_error(reg.offset));
            }
            // Saved raw: an all-ones value is judged after the first pattern, not here.
            let saved = self.b.read32(r::BAR_REGS, reg.offset as u64);
            for p in r::PATTERNS {
                self.write(reg.offset, p & reg.mask)?;
                let got = self.b.read32(r::BAR_REGS, reg.offset as u64);
                if got == u32::MAX && p & reg.mask != u32::MAX {
                    self.counters.all_ones_reads += 1;
                    if self.b.read32(r::BAR_REGS, r::STATUS as u64) == u32::MAX {
                        self.gone = true;
                        return Err(DriverError::GoneDuringPatternTest { reg: reg.name, offset: reg.offset, wrote: p });
                    }
                }
                if got & reg.mask != p & reg.mask {
                    return Err(DriverError::RegisterMismatch {
                        reg: reg.name,
                        offset: reg.offset,
                        wrote: p,
                        read: got,
                        mask: reg.mask,
                    });
                }
            }
            self.write(reg.offset, saved)?;
        }
        Ok(tested)
    }

    /// Global reset (CTRL.RST), bounded wait for it to self-clear, then mask everything.
    /// Returns the time the reset took.
    pub fn reset(&mut self) -> Result<u64, DriverError> {
        self.write(r::IMC, u32::MAX)?;
        let ctrl = self.read(r::CTRL)?;
        self.write(r::CTRL, ctrl | Ctrl::RST.bits())?;
        self.b.wait(1_000);
        let (ctrl, waited, ok) =
            self.wait_for(r::CTRL, self.opts.reset_timeout_ns, self.opts.poll_step_ns, |c| c & Ctrl::RST.bits() == 0)?;
        if !ok {
            return Err(DriverError::ResetTimeout { offset: r::CTRL, ctrl, waited_ns: waited });
        }
        self.write(r::IMC, u32::MAX)?;
        self.read(r::ICR)?;
        // CTRL.RST cleared IVAR, IMS and EIAC: routes must be programmed again.
        self.routes = [None; 5];
        Ok(waited + 1_000)
    }

    /// Read one EEPROM word through EERD.
    pub fn read_eeprom(&mut self, word: u16) -> Result<u16, DriverError> {
        self.write(r::EERD, ((word as u32) << r::EERD_ADDR_SHIFT) | r::EERD_START)?;
        let (v, _, ok) = self.wait_for(r::EERD, self.opts.access_timeout_ns, 1_000, |v| v & r::EERD_DONE != 0)?;
        if !ok {
            return Err(DriverError::EepromTimeout { word, eerd: v });
        }
        Ok((v >> r::EERD_DATA_SHIFT) as u16)
    }

    /// Read the MAC address and verify the EEPROM checksum (words 0..=0x3F sum to 0xBABA).
    pub fn read_mac(&mut self) -> Result<([u8; 6], u16), DriverError> {
        let mut sum = 0u16;
        let mut words = [0u16; 3];
        for w in 0..=r::EEPROM_CHECKSUM_WORD {
            let v = self.read_eeprom(w)?;
            if let Some(slot) = words.get_mut(w as usize) {
                *slot = v;
            }
            sum = sum.wrapping_add(v);
        }
        if sum != r::EEPROM_SUM {
            return Err(DriverError::EepromChecksum { sum });
        }
        let mut mac = [0u8; 6];
        for (pair, w) in mac.chunks_exact_mut(2).zip(words.iter()) {
            pair.copy_from_slice(&w.to_le_bytes());
        }
        self.mac = Some(mac);
        Ok((mac, sum))
    }

    /// Read a PHY register through MDIC.
    pub fn phy_read(&mut self, phy_reg: u32) -> Result<u16, DriverError> {
        let mdic = self.mdic_transact(r::MDIC_OP_READ, phy_reg, 0)?;
        Ok((mdic & r::MDIC_DATA_MASK) as u16)
    }

    /// Write a PHY register through MDIC.
    pub fn phy_write(&mut self, phy_reg: u32, value: u16) -> Result<(), DriverError> {
        self.mdic_transact(r::MDIC_OP_WRITE, phy_reg, value).map(|_| ())
    }

    /// One MDIC transaction: issue `op` for `phy_reg` (with `data` for a write), wait bounded for
    /// READY, and refuse an ERROR completion. Returns the completed MDIC value.
    fn mdic_transact(&mut self, op: u32, phy_reg: u32, data: u16) -> Result<u32, DriverError> {
        self.write(
            r::MDIC,
            op | (r::PHY_ADDR << r::MDIC_PHYADD_SHIFT) | ((phy_reg & 0x1F) << r::MDIC_REGADD_SHIFT) | data as u32,
        )?;
        let (v, _, ok) = self.wait_for(r::MDIC, self.opts.access_timeout_ns, 1_000, |v| v & r::MDIC_READY != 0)?;
        if !ok {
            return Err(DriverError::Mdic { offset: r::MDIC, phy_reg, what: "never became READY", mdic: v });
        }
        if v & r::MDIC_ERROR != 0 {
            return Err(DriverError::Mdic { offset: r::MDIC, phy_reg, what: "returned ERROR", mdic: v });
        }
        Ok(v)
    }

    /// Bounded wait for STATUS.LU. Returns (STATUS, time waited).
    pub fn wait_link(&mut self) -> Result<(u32, u64), DriverError> {
        let (st, waited, ok) =
            self.wait_for(r::STATUS, self.opts.link_timeout_ns, 10_000_000, |s| s & Status::LU.bits() != 0)?;
        if !ok {
            return Err(DriverError::LinkTimeout { status: st, waited_ns: waited });
        }
        Ok((st, waited))
    }

    /// Enable MSI-X and program the interrupt block as Linux e1000e does (configure_msix +
    /// irq_enable): IVAR 0x800A0908, EITR, CTRL_EXT (PBA_CLR | EIAME, IAME clear),
    /// EIAC = RXQ0|TXQ0, IMS = RXQ0|TXQ0|OTHER|other causes. With two queue pairs: five
    /// vectors, IVAR with all five entries valid ([`TWO_QUEUE_ROUTES`]: 0x800CBA98 with
    /// TX_INT_EVERY_WB), RxQ1/TxQ1 in EIAC and IMS too, and the RSS key and redirection
    /// table ([`setup_rss`](Self::setup_rss)).
    pub fn setup_msix(&mut self) -> Result<(), DriverError> {
        let vectors = self.vectors();
        if !self.msix_on {
            self.b.msix_enable(vectors)?;
            self.msix_on = true;
            self.last_delivery_ns = vec![self.b.now_ns(); vectors as usize];
            self.counters.deliveries = vec![0; vectors as usize];
        }
        let rfctl = self.read(r::RFCTL)?;
        self.write(r::RFCTL, rfctl | r::RFCTL_ACK_DIS)?;
        let itr = if self.opts.itr_ints_per_s == 0 {
            0
        } else {
            (1_000_000_000 / (self.opts.itr_ints_per_s as u64 * 256)) as u32
        };
        for v in 0..vectors {
            self.write(r::eitr(v), itr)?;
        }
        self.program_ivar()?;
        if self.opts.queue_pairs == 2 {
            self.setup_rss()?;
        }
        let ext = CtrlExt::from_bits_retain(self.read(r::CTRL_EXT)?);
        let ext = (ext - CtrlExt::IAME) | CtrlExt::PBA_CLR | CtrlExt::EIAME;
        self.write(r::CTRL_EXT, ext.bits())?;
        self.irq_enable()?;
        self.flush()
    }

    /// Program the RSS key (RSSRK0..9, [`rss::KEY`]) and the redirection table (RETA0..31,
    /// [`rss::reta`]: entries alternate between queue 0 and 1) and read both back. MRQC
    /// (which turns RSS on) is left to the datapath ([`setup_datapath`](Self::setup_datapath)
    /// writes it, with RXCSUM.PCSD, together with receive ring 1): steering frames to
    /// receive queue 1 is only safe once that queue's ring exists.
    pub fn setup_rss(&mut self) -> Result<(), DriverError> {
        let table = rss::reta(self.opts.queue_pairs);
        let regs = rss::words(&rss::KEY)
            .enumerate()
            .map(|(i, w)| (r::RSSRK + 4 * i as u32, w, "RSSRK"))
            .chain(rss::words(&table).enumerate().map(|(i, w)| (r::RETA + 4 * i as u32, w, "RETA")))
            .collect::<Vec<_>>();
        for &(off, w, _) in &regs {
            self.write(off, w)?;
        }
        for (off, w, name) in regs {
            let got = self.read(off)?;
            if got != w {
                return Err(DriverError::RegisterMismatch {
                    reg: name,
                    offset: off,
                    wrote: w,
                    read: got,
                    mask: u32::MAX,
                });
            }
        }
        Ok(())
    }

    /// The redirection table the driver programs (for checks that predict the queue).
    pub fn rss_table(&self) -> [u8; r::RETA_ENTRIES] {
        rss::reta(self.opts.queue_pairs)
    }

    fn program_ivar(&mut self) -> Result<(), DriverError> {
        let mut ivar = r::IVAR_TX_INT_EVERY_WB;
        self.routes = [None; 5];
        for &(entry, v) in self.plan() {
            ivar |= r::ivar_entry(entry, v);
            if let Some(slot) = self.routes.get_mut(entry.index() as usize) {
                *slot = Some(v);
            }
        }
        self.ivar_written = ivar;
        self.write(r::IVAR, ivar)
    }

    /// IMS/EIAC for the causes not served by polling.
    fn irq_enable(&mut self) -> Result<(), DriverError> {
        let polled: u32 = self.polled.iter().fold(0, |a, e| a | e.cause().bits());
        let queues: u32 =
            self.plan().iter().filter(|(e, _)| *e != IvarEntry::Other).fold(0, |a, (e, _)| a | e.cause().bits());
        self.eiac_mask = queues & !polled;
        self.write(r::EIAC, self.eiac_mask & Icr::MSIX_ROUTED.bits())?;
        let ims = (self.eiac_mask | Icr::OTHER.bits() | Icr::OTHER_CAUSES.bits()) & !polled;
        self.write(r::IMS, ims)?;
        if polled != 0 {
            self.write(r::IMC, polled)?;
        }
        Ok(())
    }

    /// Mask all interrupts (Linux e1000_irq_disable).
    pub fn irq_disable(&mut self) -> Result<(), DriverError> {
        self.write(r::IMC, u32::MAX)?;
        self.write(r::EIAC, 0)?;
        self.flush()
    }

    /// Reset, read the MAC, enable MSI-X, wait for link.
    pub fn bring_up(&mut self) -> Result<(), DriverError> {
        self.reset()?;
        self.read_mac()?;
        self.setup_msix()?;
        self.wait_link()?;
        Ok(())
    }

    /// What the interrupt handler of `vector` does after a message (Linux's handlers):
    /// re-arm the auto-masked queue cause; for Other, read ICR and re-enable Other causes.
    pub fn service_vector(&mut self, vector: u16) -> Result<(), DriverError> {
        if let Some(c) = self.counters.deliveries.get_mut(vector as usize) {
            *c += 1;
        }
        if let Some(t) = self.last_delivery_ns.get_mut(vector as usize) {
            *t = self.b.now_ns();
        }
        for &(entry, v) in self.plan() {
            if v != vector || self.polled.contains(&entry) {
                continue;
            }
            match entry {
                IvarEntry::Other => {
                    let icr = self.read(r::ICR)?;
                    self.other_icr |= icr;
                    // Acknowledge the Other causes seen (write-1-to-clear) rather than rely
                    // on read-to-clear, whose conditions in MSI-X mode differ between parts
                    // and models (QEMU 7.2 never clears ICR on read while IMS != 0 and
                    // IAME = 0, and then sends no further Other message): docs/CONFORMANCE.md.
                    let seen = icr & (Icr::OTHER | Icr::OTHER_CAUSES).bits();
                    if seen != 0 {
                        self.write(r::ICR, seen)?;
                    }
                    // Queue causes consumed by this read are raised again (Linux does the same).
                    if icr & self.eiac_mask != 0 {
                        self.write(r::ICS, icr & self.eiac_mask)?;
                    }
                    self.write(r::IMS, (Icr::OTHER | Icr::OTHER_CAUSES).bits())?;
                }
                e => self.write(r::IMS, e.cause().bits())?,
            }
        }
        Ok(())
    }

    /// Take every pending notifier, servicing each vector; returns vectors that fired.
    pub fn drain_notifiers(&mut self) -> Result<Vec<u16>, DriverError> {
        let mut fired = Vec::new();
        for v in 0..self.b.msix_vectors() {
            if self.b.notifier(v).is_some_and(|n| n.take() > 0) {
                fired.push(v);
                self.service_vector(v)?;
            }
        }
        Ok(fired)
    }

    /// Raise `entry`'s cause by ICS and wait (bounded) for a message on its vector.
    /// Returns the latency. A message only on another vector is a misroute.
    pub fn fire_and_wait(&mut self, entry: IvarEntry) -> Result<u64, DriverError> {
        let t_ns = self.b.now_ns();
        let res = self.fire_and_wait_once(entry);
        if let Some(vector) = self.route(entry) {
            let latency_ns = match &res {
                Ok(ns) => Some(*ns),
                Err(DriverError::VectorLost { .. }) => None,
                Err(_) => return res,
            };
            self.irq_log.push(IrqEvent { vector, entry: entry.index() as u8, t_ns, latency_ns });
        }
        res
    }

    fn fire_and_wait_once(&mut self, entry: IvarEntry) -> Result<u64, DriverError> {
        let vector = self.route(entry).ok_or(DriverError::NotUp)?;
        self.drain_notifiers()?;
        let cause = entry.cause().bits();
        let t0 = self.b.now_ns();
        self.write(r::ICS, if entry == IvarEntry::Other { Icr::LSC.bits() } else { cause })?;
        let max_iter = self.opts.irq_bound_ns / self.opts.poll_step_ns.max(1) + 2;
        // Messages on other vectors while waiting. They are judged only once the bound has
        // passed without one on `vector`: a late message of an earlier cause (seen on QEMU
        // under load: TXQ0's arriving while Other was awaited) must not turn a delivery
        // that follows a moment later into a misroute.
        let (mut others, mut first_other) = (0u64, None);
        for _ in 0..max_iter {
            let fired = self.drain_notifiers()?;
            for &v in fired.iter().filter(|&&v| v != vector) {
                others += 1;
                first_other = first_other.or(Some(v));
            }
            if fired.contains(&vector) {
                // Messages on other vectors as well are spurious, not a misroute: the cause
                // did reach its own vector (a misroute is the "instead" case below).
                self.counters.spurious_messages += others;
                return Ok(self.b.now_ns() - t0);
            }
            if self.b.now_ns() - t0 >= self.opts.irq_bound_ns {
                break;
            }
            self.b.wait(self.opts.poll_step_ns);
        }
        if let Some(other) = first_other {
            self.rearm(entry)?;
            return Err(DriverError::VectorLost {
                vector,
                entry,
                why: format!(
                    "{} raised by ICS arrived on vector {other} instead (IVAR={:#010x})",
                    entry,
                    self.read(r::IVAR)?
                ),
            });
        }
        // No message: first make sure the device itself still answers.
        self.read(r::STATUS)?;
        let pending = self.read_pba();
        self.rearm(entry)?;
        Err(DriverError::VectorLost {
            vector,
            entry,
            why: format!(
                "{} raised by ICS, unmasked in IMS, no message on vector {vector} within {} us{}",
                entry,
                self.opts.irq_bound_ns / 1000,
                match pending {
                    Some(p) => format!(" (PBA={p:#x})"),
                    None => String::new(),
                }
            ),
        })
    }

    /// After a lost interrupt: clear the cause and enable it again, so one loss does not
    /// leave the cause masked forever.
    fn rearm(&mut self, entry: IvarEntry) -> Result<(), DriverError> {
        let cause = match entry {
            IvarEntry::Other => (Icr::OTHER | Icr::OTHER_CAUSES).bits(),
            e => e.cause().bits(),
        };
        self.write(r::ICR, cause)?;
        if !self.polled.contains(&entry) {
            self.write(r::IMS, cause)?;
        }
        Ok(())
    }

    /// PBA dword, where the backend lets the driver read the MSI-X BAR.
    pub fn read_pba(&mut self) -> Option<u32> {
        if !self.b.info().msix_table_access || self.gone {
            return None;
        }
        Some(self.b.read32(r::BAR_MSIX, r::MSIX_PBA_OFFSET)).filter(|&p| p != u32::MAX)
    }

    /// Read back MSI-X table entry `vector` and check it is programmed and unmasked.
    /// Returns `Ok(None)` where the backend does not give the driver the table.
    pub fn check_msix_entry(&mut self, vector: u16) -> Result<Option<(u64, u32)>, DriverError> {
        // A device known to be gone is not touched again (found by fuzzing: this read BAR3
        // four times before noticing).
        if self.gone {
            return Err(self.gone_error(r::STATUS));
        }
        if !self.b.info().msix_table_access {
            return Ok(None);
        }
        let base = r::MSIX_TABLE_OFFSET + vector as u64 * pci::MSIX_ENTRY_SIZE;
        let lo = self.b.read32(r::BAR_MSIX, base + pci::MSIX_ENTRY_ADDR_LO);
        let hi = self.b.read32(r::BAR_MSIX, base + pci::MSIX_ENTRY_ADDR_HI);
        let data = self.b.read32(r::BAR_MSIX, base + pci::MSIX_ENTRY_DATA);
        let ctrl = self.b.read32(r::BAR_MSIX, base + pci::MSIX_ENTRY_VECTOR_CTRL);
        let entry = self.plan().iter().find(|(_, v)| *v == vector).map(|(e, _)| *e).unwrap_or(IvarEntry::Other);
        if [lo, hi, data, ctrl].contains(&u32::MAX) {
            // All-ones: is the whole device gone, or just this vector?
            self.read(r::STATUS)?;
            let (field, read) = if lo == u32::MAX {
                ("Msg Addr Lo", lo)
            } else if data == u32::MAX {
                ("Msg Data", data)
            } else {
                ("Vector Control", ctrl)
            };
            return Err(DriverError::VectorLost {
                vector,
                entry,
                why: format!(
                    "MSI-X table entry {vector} (BAR3 {base:#06x}) {field} reads {read:#010x} while the device answers: the entry is gone"
                ),
            });
        }
        if (lo as u64) & pci::MSI_ADDRESS_MASK != pci::MSI_ADDRESS_BASE || hi != 0 {
            return Err(DriverError::MsixEntryMismatch {
                vector,
                offset: base,
                field: "Msg Addr",
                read: lo,
                expected: pci::MSI_ADDRESS_BASE as u32,
            });
        }
        // A backend that observes delivery through the PBA keeps the entry masked itself.
        if ctrl & pci::MSIX_ENTRY_CTRL_MASKBIT != 0 && !self.b.msix_masked_delivery() {
            return Err(DriverError::MsixEntryMismatch {
                vector,
                offset: base + pci::MSIX_ENTRY_VECTOR_CTRL,
                field: "Vector Control (masked)",
                read: ctrl,
                expected: 0,
            });
        }
        Ok(Some(((hi as u64) << 32 | lo as u64, data)))
    }

    /// Read IVAR back and compare entry `entry` with what was written.
    pub fn check_ivar_entry(&mut self, entry: IvarEntry) -> Result<u32, DriverError> {
        let ivar = self.read(r::IVAR)?;
        let want = (self.ivar_written >> entry.shift()) & 0xF;
        let got = (ivar >> entry.shift()) & 0xF;
        if want != got {
            return Err(DriverError::IvarMismatch { offset: r::IVAR, entry, wrote: want, read: got });
        }
        Ok(got)
    }

    /// Raise `entry`'s cause `rounds` times (each waited for, bounded) and count what its
    /// vector delivered. Losses are counted, not returned; other errors (device gone) are.
    pub fn probe_vector(&mut self, entry: IvarEntry, rounds: u32) -> Result<Liveness, DriverError> {
        let vector = self.route(entry).ok_or(DriverError::NotUp)?;
        let mut l = Liveness::new(entry, vector);
        for _ in 0..rounds {
            l.raised += 1;
            let t = self.b.now_ns();
            match self.fire_and_wait(entry) {
                Ok(ns) => {
                    l.delivered += 1;
                    l.latency_max_ns = l.latency_max_ns.max(ns);
                    l.latency_sum_ns = l.latency_sum_ns.saturating_add(ns);
                }
                Err(DriverError::VectorLost { why, .. }) => {
                    l.first_loss.get_or_insert(why);
                    l.first_loss_ns.get_or_insert(t);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(l)
    }

    /// Pending-cause-without-delivery watchdog. For every routed vector that has been quiet
    /// for longer than `quiet_ns`, raise its cause in software (as Linux's watchdog does for
    /// RxQ0) with the cause unmasked in IMS, over a window of
    /// [`Options::watchdog_window`] probes, and require every one delivered within the
    /// bound. A vector that lost any is reported lost with the count.
    pub fn watchdog(&mut self, quiet_ns: u64) -> Result<Vec<DriverError>, DriverError> {
        self.drain_notifiers()?;
        let now = self.b.now_ns();
        let mut lost = Vec::new();
        for &(entry, v) in self.plan() {
            if self.polled.contains(&entry) || self.route(entry) != Some(v) {
                continue;
            }
            let last = self.last_delivery_ns.get(v as usize).copied().unwrap_or(0);
            if now.saturating_sub(last) < quiet_ns {
                continue;
            }
            let l = self.probe_vector(entry, self.opts.watchdog_window.max(1))?;
            if !l.all_delivered() {
                self.counters.watchdog_lost += 1;
                lost.push(DriverError::VectorLost {
                    vector: v,
                    entry,
                    why: format!("watchdog window: {}; first loss: {}", l.summary(), l.first_loss.unwrap_or_default()),
                });
            }
        }
        Ok(lost)
    }

    /// Recover a lost vector: re-program IVAR, re-arm the MSI-X entry, check again; if it
    /// stays lost, serve its causes by polling (and check the poller sees them).
    pub fn recover(&mut self, entry: IvarEntry) -> Result<Recovery, DriverError> {
        let vector = self.route(entry).ok_or(DriverError::NotUp)?;
        self.counters.reprogram_attempts += 1;
        // Give the vector another chance even if it was polled before.
        self.polled.retain(|e| *e != entry);
        self.program_ivar()?;
        if self.b.msix_vectors() > vector {
            self.b.msix_mask(vector, true)?;
            self.b.msix_mask(vector, false)?;
        }
        self.irq_enable()?;
        // Recovered only if a full fresh probe run loses nothing: one lucky message while
        // an intermittent fault is still active proves nothing.
        let ivar_ok = self.check_ivar_entry(entry).is_ok();
        let after = self.probe_vector(entry, self.opts.liveness_rounds.max(1))?;
        if ivar_ok && after.all_delivered() {
            return Ok(Recovery::Reprogrammed { entry, vector, after });
        }
        tracing::warn!(target: "nicqual::driver", "vector {vector} ({entry}) stays lost: polling its causes");
        if !self.polled.contains(&entry) {
            self.polled.push(entry);
        }
        self.irq_enable()?;
        // Verify the fallback: a raised cause must be seen by the poller.
        let cause = if entry == IvarEntry::Other { Icr::LSC } else { entry.cause() };
        self.write(r::ICS, cause.bits())?;
        let seen = self.poll_causes()?;
        let check = if entry == IvarEntry::Other { Icr::OTHER_CAUSES | Icr::OTHER } else { entry.cause() };
        Ok(Recovery::Polling { entry, vector, verified: seen.intersects(check), after })
    }

    /// Serve polled entries: read ICR, acknowledge (write-1-to-clear) their causes.
    pub fn poll_causes(&mut self) -> Result<Icr, DriverError> {
        if self.polled.is_empty() {
            return Ok(Icr::empty());
        }
        let icr = Icr::from_bits_truncate(self.read(r::ICR)?);
        let mut mine = Icr::empty();
        for e in &self.polled {
            mine |= match e {
                IvarEntry::Other => Icr::OTHER | Icr::OTHER_CAUSES,
                e => e.cause(),
            };
        }
        let seen = icr & mine;
        if !seen.is_empty() {
            self.counters.polled_services += 1;
            self.write(r::ICR, seen.bits())?;
        }
        Ok(seen)
    }

    /// Quiesce and release: mask interrupts, disable MSI-X. Safe on a gone device (no
    /// register access is attempted then). Returns the backend.
    pub fn shutdown(mut self) -> B {
        let _ = self.teardown_datapath();
        if !self.gone {
            let _ = self.irq_disable();
        }
        if self.msix_on {
            let _ = self.b.msix_disable();
        }
        self.b
    }
}
