//! Differential conformance: named register-level cases, each run on a fresh device of
//! two independent 82574L models (ours, and QEMU's e1000e over qtest) through the same
//! [`Backend`] interface. A case returns what it observed as text; the two texts must be
//! equal, or the case names the documented disagreement (docs/CONFORMANCE.md) that
//! explains the difference.
//!
//! Register cases touch registers, configuration space and the MSI-X BAR; the ring cases
//! (`conformance/datapath.rs`) add DMA memory and send frames round through MAC loopback.
//! MSI-X vectors stay masked: delivery is read from the PBA (no CPU takes messages on
//! QEMU). Nothing here depends on timing, except where a case waits for the link, which
//! both models bring up.

use nicqual_hw::i82574::{self as r, CtrlExt, Icr, IvarEntry};
use nicqual_hw::i82574_desc::{self as desc, TxDesc};
use nicqual_hw::pci;
use nicqual_pci::{Backend, DmaPerm};
use std::fmt::Write;
use zerocopy::IntoBytes;

/// A fresh device to run one case on.
pub type Fresh<'a> = dyn FnMut() -> Result<Box<dyn Backend>, String> + 'a;

/// One case: a name, what it checks, and its probe.
pub struct Case {
    pub name: &'static str,
    pub what: &'static str,
    /// Row of docs/CONFORMANCE.md explaining an expected difference, if any.
    pub known: Option<&'static str>,
    pub run: fn(&mut dyn Backend) -> String,
}

/// Outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Agree,
    /// The difference documented in docs/CONFORMANCE.md (row given).
    Known(&'static str),
    /// A difference nobody explained: a bug in one of the models (or in the case).
    Differ,
    /// Documented as a difference, but both now agree: the document is stale.
    KnownButAgree(&'static str),
    /// One side could not run.
    Error(String),
}

impl Verdict {
    pub fn as_str(&self) -> String {
        match self {
            Verdict::Agree => "agree".into(),
            Verdict::Known(k) => format!("known difference ({k})"),
            Verdict::Differ => "DIFFER".into(),
            Verdict::KnownButAgree(k) => format!("agree, but documented as {k}: update docs/CONFORMANCE.md"),
            Verdict::Error(e) => format!("ERROR: {e}"),
        }
    }

    /// True when the verdict is acceptable (agree, or a documented difference).
    pub fn ok(&self) -> bool {
        matches!(self, Verdict::Agree | Verdict::Known(_))
    }
}

/// Result row of one case.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: &'static str,
    pub ours: String,
    pub theirs: String,
    pub verdict: Verdict,
}

/// Run `case` on a fresh device from each side and compare.
pub fn run_case(case: &Case, ours: &mut Fresh, theirs: &mut Fresh) -> Row {
    let o = run_side(case, ours);
    let (ours, theirs, verdict) = judge(&o, run_side(case, theirs), case.known);
    Row { name: case.name, ours, theirs, verdict }
}

/// `case` on a fresh device from `fresh` (the device is dropped, and a server killed, after).
fn run_side(case: &Case, fresh: &mut Fresh) -> Result<String, String> {
    let mut b = fresh()?;
    prepare(b.as_mut());
    Ok((case.run)(b.as_mut()))
}

/// Compare our answer with theirs: `known` is the row documenting their difference.
fn judge(
    o: &Result<String, String>,
    t: Result<String, String>,
    known: Option<&'static str>,
) -> (String, String, Verdict) {
    match (o, t) {
        (Ok(o), Ok(t)) => {
            let v = match (*o == t, known) {
                (true, None) => Verdict::Agree,
                (true, Some(k)) => Verdict::KnownButAgree(k),
                (false, Some(k)) => Verdict::Known(k),
                (false, None) => Verdict::Differ,
            };
            (o.clone(), t, v)
        }
        (o, t) => {
            let e = [o.as_ref().err(), t.as_ref().err()].into_iter().flatten().cloned().collect::<Vec<_>>().join("; ");
            (o.clone().unwrap_or_default(), t.unwrap_or_default(), Verdict::Error(e))
        }
    }
}

/// Firmware-like start: memory decode and bus mastering on.
fn prepare(b: &mut dyn Backend) {
    let cmd = b.config_read(pci::COMMAND, 2).unwrap_or(0);
    let _ = b.config_write(pci::COMMAND, 2, cmd | (pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER) as u32);
}

pub(crate) fn rd(b: &mut dyn Backend, reg: u32) -> u32 {
    b.read32(r::BAR_REGS, reg as u64)
}

pub(crate) fn wr(b: &mut dyn Backend, reg: u32, v: u32) {
    b.write32(r::BAR_REGS, reg as u64, v)
}

pub(crate) fn regs(b: &mut dyn Backend, list: &[(&str, u32)]) -> String {
    let mut s = String::new();
    for (n, o) in list {
        let _ = write!(s, "{n}={:#010x} ", rd(b, *o));
    }
    s.trim_end().to_string()
}

fn cfg(b: &mut dyn Backend, off: u16, size: u8) -> u32 {
    b.config_read(off, size).unwrap_or(u32::MAX)
}

/// Enable MSI-X with every vector masked, addresses in the x86 interrupt window.
fn msix_masked(b: &mut dyn Backend) {
    for v in 0..r::MSIX_VECTORS as u64 {
        let e = r::MSIX_TABLE_OFFSET + v * pci::MSIX_ENTRY_SIZE;
        b.write32(r::BAR_MSIX, e + pci::MSIX_ENTRY_VECTOR_CTRL, pci::MSIX_ENTRY_CTRL_MASKBIT);
        b.write32(r::BAR_MSIX, e + pci::MSIX_ENTRY_ADDR_LO, pci::MSI_ADDRESS_BASE as u32);
        b.write32(r::BAR_MSIX, e + pci::MSIX_ENTRY_ADDR_HI, 0);
        b.write32(r::BAR_MSIX, e + pci::MSIX_ENTRY_DATA, 0x40 + v as u32);
    }
    let _ = b.config_write(r::CAP_MSIX + pci::MSIX_MSG_CTRL, 2, pci::MSIX_CTRL_ENABLE as u32);
}

fn pba(b: &mut dyn Backend) -> u32 {
    b.read32(r::BAR_MSIX, r::MSIX_PBA_OFFSET)
}

fn eerd(b: &mut dyn Backend, word: u32) -> u32 {
    wr(b, r::EERD, (word << r::EERD_ADDR_SHIFT) | r::EERD_START);
    rd(b, r::EERD)
}

fn mdic(b: &mut dyn Backend, v: u32) -> u32 {
    wr(b, r::MDIC, v);
    rd(b, r::MDIC)
}

fn mdic_read(phy: u32, reg: u32) -> u32 {
    r::MDIC_OP_READ | (phy << r::MDIC_PHYADD_SHIFT) | (reg << r::MDIC_REGADD_SHIFT)
}

/// Route `entry` alone to `vector`, enable MSI-X masked, raise its cause, read the PBA.
fn route_and_raise(b: &mut dyn Backend, entry: IvarEntry, vector: u16) -> String {
    msix_masked(b);
    wr(b, r::IVAR, r::ivar_entry(entry, vector));
    let (cause, ims) = match entry {
        IvarEntry::Other => (Icr::LSC, Icr::LSC | Icr::OTHER),
        e => (e.cause(), e.cause()),
    };
    wr(b, r::IMS, ims.bits());
    wr(b, r::ICS, cause.bits());
    format!("PBA={:#x}", pba(b))
}

/// Send one 60-byte frame through a one-descriptor legacy TX ring with command bits
/// `cmd`; report head, the descriptor's dwords 2-3 after processing, ICR and counters.
fn tx_legacy(b: &mut dyn Backend, cmd: u32) -> String {
    b.wait(150_000_000); // link up on both models
    rd(b, r::ICR); // the link-up LSC of our model (QEMU's link is up from the start)
    let mem = match b.dma_alloc(8192) {
        Ok(m) => m,
        Err(e) => return format!("dma_alloc: {e}"),
    };
    let iova = mem.fixed_iova().unwrap_or(0x0100_0000);
    if let Err(e) = b.dma_map(&mem, iova, DmaPerm::BIDIRECTIONAL) {
        return format!("dma_map: {e}");
    }
    let mut frame = vec![0xFFu8; 6];
    frame.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x88, 0xB5]);
    frame.resize(desc::MIN_FRAME, 0xA5);
    let _ = mem.write(0x1000, &frame);
    let d = TxDesc { addr: (iova + 0x1000).into(), lower: (frame.len() as u32 | cmd).into(), upper: 0.into() };
    let _ = mem.write(0, d.as_bytes());
    wr(b, r::tdbal(0), iova as u32);
    wr(b, r::tdbah(0), (iova >> 32) as u32);
    wr(b, r::tdlen(0), desc::RING_LEN_ALIGN);
    wr(b, r::tdh(0), 0);
    wr(b, r::tdt(0), 0);
    wr(b, r::TCTL, r::TCTL_EN | r::TCTL_PSP);
    wr(b, r::tdt(0), 1);
    let lower = mem.read_u32(8).unwrap_or(u32::MAX);
    let upper = mem.read_u32(12).unwrap_or(u32::MAX);
    let out = format!(
        "TDH={} desc.lower={lower:#010x} desc.upper={upper:#010x} ICR={:#010x} GPTC={} TPT={}",
        rd(b, r::tdh(0)),
        rd(b, r::ICR),
        rd(b, r::GPTC),
        rd(b, r::TPT)
    );
    wr(b, r::TCTL, 0);
    let _ = b.dma_unmap(iova);
    out
}

macro_rules! case {
    ($name:expr, $what:expr, $f:expr) => {
        Case { name: $name, what: $what, known: None, run: $f }
    };
    ($name:expr, $what:expr, known = $k:expr, $f:expr) => {
        Case { name: $name, what: $what, known: Some($k), run: $f }
    };
}

mod datapath;
mod generations;
mod three_way;
pub use three_way::{KNOWN_QEMU11, Row3, known_qemu11, run_case_qemu11, run_case3, table3};
mod queues;

/// Every case, in table order.
pub fn cases() -> Vec<Case> {
    let mut all = vec![
        // --- PCI configuration space ---
        case!("cfg.identity", "vendor, device, revision/class, subsystem", |b| format!(
            "id={:#010x} class={:#010x} subsys={:#010x}",
            cfg(b, 0, 4),
            cfg(b, 8, 4),
            cfg(b, 0x2C, 4)
        )),
        case!("cfg.capability-list", "capability IDs and offsets in list order", |b| {
            let mut s = String::new();
            let mut off = cfg(b, pci::CAPABILITIES_PTR, 1) as u16;
            for _ in 0..16 {
                if off < 0x40 {
                    break;
                }
                let _ = write!(s, "{:#04x}@{off:#04x} ", cfg(b, off, 1));
                off = cfg(b, off + 1, 1) as u16 & 0xFC;
            }
            s.trim_end().to_string()
        }),
        case!("cfg.msix-capability", "MSI-X message control, table and PBA offset/BIR", |b| format!(
            "ctrl={:#06x} table={:#010x} pba={:#010x}",
            cfg(b, r::CAP_MSIX + pci::MSIX_MSG_CTRL, 2),
            cfg(b, r::CAP_MSIX + pci::MSIX_TABLE, 4),
            cfg(b, r::CAP_MSIX + pci::MSIX_PBA, 4)
        )),
        case!("cfg.bar-sizes", "length of each BAR", |b| (0..6u8)
            .map(|i| format!("bar{i}={}", b.bar_len(i).map_or("none".to_string(), |l| format!("{l:#x}"))))
            .collect::<Vec<_>>()
            .join(" ")),
        case!("cfg.msi-capability", "MSI message control (64-bit, one vector, no masking)", |b| format!(
            "ctrl={:#06x}",
            cfg(b, r::CAP_MSI + 2, 2)
        )),
        // --- reset values ---
        case!("reset.ctrl", "CTRL after power-on", |b| regs(b, &[("CTRL", r::CTRL)])),
        case!("reset.ctrl-ext", "CTRL_EXT after power-on", |b| regs(b, &[("CTRL_EXT", r::CTRL_EXT)])),
        case!("reset.status-link-up", "STATUS once the link is up (100 ms)", |b| {
            b.wait(150_000_000);
            regs(b, &[("STATUS", r::STATUS)])
        }),
        case!("reset.interrupt-block", "ICR, IMS, IAM, EIAC, IVAR after power-on", |b| regs(
            b,
            &[("IMS", r::IMS), ("IAM", r::IAM), ("EIAC", r::EIAC), ("IVAR", r::IVAR), ("ICR", r::ICR)]
        )),
        case!("reset.throttle", "ITR and EITR0-4 after power-on", |b| {
            let mut l = vec![("ITR", r::ITR)];
            let names = ["EITR0", "EITR1", "EITR2", "EITR3", "EITR4"];
            for (i, n) in names.iter().enumerate() {
                l.push((n, r::eitr(i as u16)));
            }
            regs(b, &l)
        }),
        case!("reset.rx-tx-control", "RCTL, TCTL, TIPG after power-on", |b| regs(
            b,
            &[("RCTL", r::RCTL), ("TCTL", r::TCTL), ("TIPG", r::TIPG)]
        )),
        case!("reset.rings", "ring base/length/head/tail registers after power-on", |b| regs(
            b,
            &[
                ("RDBAL", r::rdbal(0)),
                ("RDLEN", r::rdlen(0)),
                ("RDH", r::rdh(0)),
                ("RDT", r::rdt(0)),
                ("TDBAL", r::tdbal(0)),
                ("TDLEN", r::tdlen(0)),
                ("TDH", r::tdh(0)),
                ("TDT", r::tdt(0))
            ]
        )),
        case!("reset.queue-control", "RXDCTL, TXDCTL, TARC0", known = "row 10", |b| regs(
            b,
            &[("RXDCTL", r::rxdctl(0)), ("TXDCTL", r::txdctl(0)), ("TARC0", r::tarc(0))]
        )),
        case!("reset.misc", "VET, PBA, RXCSUM, RFCTL, MRQC", |b| regs(
            b,
            &[("VET", r::VET), ("PBA", r::PBA), ("RXCSUM", r::RXCSUM), ("RFCTL", r::RFCTL), ("MRQC", r::MRQC)]
        )),
        case!("reset.receive-address", "RAL0/RAH0 loaded from the EEPROM MAC", |b| regs(
            b,
            &[("RAL0", r::ral(0)), ("RAH0", r::rah(0))]
        )),
        case!("reset.msix-table", "MSI-X table entries and PBA after power-on", |b| {
            let mut s = String::new();
            for v in 0..r::MSIX_VECTORS as u64 {
                let e = r::MSIX_TABLE_OFFSET + v * pci::MSIX_ENTRY_SIZE;
                let _ = write!(
                    s,
                    "[{v}]={:#x},{:#x},{:#x},{:#x} ",
                    b.read32(r::BAR_MSIX, e),
                    b.read32(r::BAR_MSIX, e + 4),
                    b.read32(r::BAR_MSIX, e + 8),
                    b.read32(r::BAR_MSIX, e + 12)
                );
            }
            let _ = write!(s, "PBA={:#x}", pba(b));
            s
        }),
        case!("reset.statistics", "statistics counters start at zero", |b| regs(
            b,
            &[("GPRC", r::GPRC), ("GPTC", r::GPTC), ("TPR", r::TPR), ("TPT", r::TPT), ("MPC", r::MPC)]
        )),
        // --- ICR / ICS / IMS / IMC ---
        case!("icr.read-clears-with-ims-zero", "INTx: ICS=LSC, IMS=0, read ICR twice", |b| {
            wr(b, r::ICS, Icr::LSC.bits());
            let a = rd(b, r::ICR);
            format!("first={a:#010x} second={:#010x}", rd(b, r::ICR))
        }),
        case!("icr.read-clears-intx-enabled", "INTx: IMS=LSC, ICS=LSC, read ICR twice", |b| {
            wr(b, r::IMS, Icr::LSC.bits());
            wr(b, r::ICS, Icr::LSC.bits());
            let a = rd(b, r::ICR);
            format!("first={a:#010x} second={:#010x}", rd(b, r::ICR))
        }),
        case!(
            "icr.msix-read-with-ims",
            "MSI-X, IAME=0: IMS=LSC|OTHER, ICS=LSC, read ICR twice",
            known = "row 2",
            |b| {
                msix_masked(b);
                wr(b, r::IMS, (Icr::LSC | Icr::OTHER).bits());
                wr(b, r::ICS, Icr::LSC.bits());
                let a = rd(b, r::ICR);
                format!("first={a:#010x} second={:#010x}", rd(b, r::ICR))
            }
        ),
        case!("icr.write-1-to-clear", "ICS=TXDW|LSC, write ICR=TXDW, ICS mirrors what is left", |b| {
            wr(b, r::ICS, (Icr::TXDW | Icr::LSC).bits());
            wr(b, r::ICR, Icr::TXDW.bits());
            format!("ICS={:#010x}", rd(b, r::ICS))
        }),
        case!("icr.asserted-bit", "INT_ASSERTED set iff another ICR bit is", |b| {
            wr(b, r::ICS, Icr::RXT0.bits());
            let a = rd(b, r::ICS);
            wr(b, r::ICR, Icr::RXT0.bits());
            format!("after-ics={a:#010x} after-clear={:#010x}", rd(b, r::ICS))
        }),
        case!("ics.reads-as-icr", "ICS is readable and mirrors ICR without clearing it", |b| {
            wr(b, r::ICS, Icr::MDAC.bits());
            let a = rd(b, r::ICS);
            format!("ICS={a:#010x} ICS-again={:#010x}", rd(b, r::ICS))
        }),
        case!("ims.valid-mask", "IMS keeps only its valid bits of 0xffffffff", known = "row 22", |b| {
            wr(b, r::IMS, u32::MAX);
            regs(b, &[("IMS", r::IMS)])
        }),
        // --- what Linux e1000e polls at reset and reads for PTP (issue 23) ---
        case!("eecd.auto-read-done", "EECD after power-on: PRES and AUTO_RD (bits 8, 9) set", |b| {
            format!("EECD&0x300={:#x}", rd(b, r::EECD) & 0x300)
        }),
        case!(
            "status.gio-master-disable",
            "CTRL.GIO_MASTER_DISABLE clears STATUS.GIO_MASTER_ENABLE; clearing it sets it again",
            |b| {
                let bit = r::Status::GIO_MASTER_ENABLE.bits();
                let before = rd(b, r::STATUS) & bit;
                let ctrl = rd(b, r::CTRL);
                wr(b, r::CTRL, ctrl | r::Ctrl::GIO_MASTER_DISABLE.bits());
                let during = rd(b, r::STATUS) & bit;
                wr(b, r::CTRL, ctrl);
                format!("before={before:#x} disabled={during:#x} after={:#x}", rd(b, r::STATUS) & bit)
            }
        ),
        case!(
            "systim.counts-with-timinca",
            "TIMINCA=1<<24|16, 1 ms: SYSTIM advances by 1,000,000",
            known = "row 23",
            |b| {
                wr(b, r::TIMINCA, 1 << 24 | 16);
                let read = |b: &mut dyn Backend| u64::from(rd(b, r::SYSTIML)) | u64::from(rd(b, r::SYSTIMH)) << 32;
                let t0 = read(b);
                b.wait(1_000_000);
                format!("delta={}", read(b).wrapping_sub(t0))
            }
        ),
        case!("imc.clears-ims", "IMS=all, IMC=LSC|RXQ0", known = "row 22", |b| {
            wr(b, r::IMS, u32::MAX);
            wr(b, r::IMC, (Icr::LSC | Icr::RXQ0).bits());
            regs(b, &[("IMS", r::IMS)])
        }),
        case!("icr.msix-other-folding", "MSI-X: ICS=MDAC with IMS=MDAC sets ICR.OTHER", |b| {
            msix_masked(b);
            wr(b, r::IMS, Icr::MDAC.bits());
            wr(b, r::ICS, Icr::MDAC.bits());
            format!("ICS={:#010x}", rd(b, r::ICS))
        }),
        // --- IAM / EIAME / EIAC ---
        case!(
            "iam.iame-icr-read-masks",
            "INTx, CTRL_EXT.IAME, IAM=LSC: ICR read clears IMS bits",
            known = "row 9",
            |b| {
                let v = rd(b, r::CTRL_EXT);
                wr(b, r::CTRL_EXT, v | CtrlExt::IAME.bits());
                wr(b, r::IAM, Icr::LSC.bits());
                wr(b, r::IMS, (Icr::LSC | Icr::RXT0).bits());
                wr(b, r::ICS, Icr::LSC.bits());
                let icr = rd(b, r::ICR);
                format!("ICR={icr:#010x} IMS={:#010x}", rd(b, r::IMS))
            }
        ),
        case!("iam.eiame-msix-automask", "MSI-X, CTRL_EXT.EIAME, IAM=RXQ0: a message clears IMS.RXQ0", |b| {
            msix_masked(b);
            wr(b, r::IVAR, r::ivar_entry(IvarEntry::RxQ0, 0));
            let v = rd(b, r::CTRL_EXT);
            wr(b, r::CTRL_EXT, v | CtrlExt::EIAME.bits());
            wr(b, r::IAM, Icr::RXQ0.bits());
            wr(b, r::IMS, (Icr::RXQ0 | Icr::TXQ0).bits());
            wr(b, r::ICS, Icr::RXQ0.bits());
            format!("IMS={:#010x} PBA={:#x}", rd(b, r::IMS), pba(b))
        }),
        case!(
            "eiac.auto-clear",
            "MSI-X, EIAC=RXQ0: ICR.RXQ0 cleared once its message is sent",
            known = "row 11",
            |b| {
                msix_masked(b);
                wr(b, r::IVAR, r::ivar_entry(IvarEntry::RxQ0, 0));
                wr(b, r::EIAC, Icr::RXQ0.bits());
                wr(b, r::IMS, Icr::RXQ0.bits());
                wr(b, r::ICS, Icr::RXQ0.bits());
                format!("ICR={:#010x} PBA={:#x}", rd(b, r::ICR), pba(b))
            }
        ),
        case!("eiac.zero-keeps-cause", "MSI-X, EIAC=0: ICR.RXQ0 stays after its message", |b| {
            msix_masked(b);
            wr(b, r::IVAR, r::ivar_entry(IvarEntry::RxQ0, 0));
            wr(b, r::IMS, Icr::RXQ0.bits());
            wr(b, r::ICS, Icr::RXQ0.bits());
            format!("ICS={:#010x} PBA={:#x}", rd(b, r::ICS), pba(b))
        }),
        case!("eiac.readback", "EIAC read-back of 0xffffffff", |b| {
            wr(b, r::EIAC, u32::MAX);
            regs(b, &[("EIAC", r::EIAC)])
        }),
        // --- IVAR routing ---
        case!("ivar.readback", "IVAR stores what is written (0x800a0908, then all-ones)", |b| {
            wr(b, r::IVAR, 0x800A_0908);
            let a = rd(b, r::IVAR);
            wr(b, r::IVAR, u32::MAX);
            format!("IVAR={a:#010x} then {:#010x}", rd(b, r::IVAR))
        }),
        case!("ivar.route-rxq0", "RXQ0 routed to vector 3 pends vector 3", |b| route_and_raise(b, IvarEntry::RxQ0, 3)),
        case!("ivar.route-rxq1", "RXQ1 routed to vector 4 pends vector 4", |b| route_and_raise(b, IvarEntry::RxQ1, 4)),
        case!("ivar.route-txq0", "TXQ0 routed to vector 2 pends vector 2", |b| route_and_raise(b, IvarEntry::TxQ0, 2)),
        case!("ivar.route-txq1", "TXQ1 routed to vector 0 pends vector 0", |b| route_and_raise(b, IvarEntry::TxQ1, 0)),
        case!("ivar.route-other", "LSC (via OTHER) routed to vector 1 pends vector 1", |b| {
            route_and_raise(b, IvarEntry::Other, 1)
        }),
        case!("ivar.invalid-entry", "RXQ0 entry without the valid bit: no message", |b| {
            msix_masked(b);
            wr(b, r::IVAR, 2);
            wr(b, r::IMS, Icr::RXQ0.bits());
            wr(b, r::ICS, Icr::RXQ0.bits());
            format!("PBA={:#x} ICS={:#010x}", pba(b), rd(b, r::ICS))
        }),
        case!("ivar.masked-cause-no-message", "RXQ0 routed but not enabled in IMS: no message", |b| {
            msix_masked(b);
            wr(b, r::IVAR, r::ivar_entry(IvarEntry::RxQ0, 0));
            wr(b, r::ICS, Icr::RXQ0.bits());
            format!("PBA={:#x}", pba(b))
        }),
        // --- MSI-X mask / PBA ---
        case!("msix.pba-write-ignored", "PBA is read-only", |b| {
            msix_masked(b);
            b.write32(r::BAR_MSIX, r::MSIX_PBA_OFFSET, u32::MAX);
            format!("PBA={:#x}", pba(b))
        }),
        case!("msix.unmask-sends-pending", "pending vector 0 unmasked: PBA bit clears", |b| {
            route_and_raise(b, IvarEntry::RxQ0, 0);
            let before = pba(b);
            b.write32(r::BAR_MSIX, r::MSIX_TABLE_OFFSET + pci::MSIX_ENTRY_VECTOR_CTRL, 0);
            format!("before={before:#x} after={:#x}", pba(b))
        }),
        case!("msix.function-mask", "Function Mask holds a message in the PBA until cleared", |b| {
            msix_masked(b);
            b.write32(r::BAR_MSIX, r::MSIX_TABLE_OFFSET + pci::MSIX_ENTRY_VECTOR_CTRL, 0);
            let ctl = r::CAP_MSIX + pci::MSIX_MSG_CTRL;
            let _ = b.config_write(ctl, 2, (pci::MSIX_CTRL_ENABLE | pci::MSIX_CTRL_FUNCTION_MASK) as u32);
            wr(b, r::IVAR, r::ivar_entry(IvarEntry::RxQ0, 0));
            wr(b, r::IMS, Icr::RXQ0.bits());
            wr(b, r::ICS, Icr::RXQ0.bits());
            let held = pba(b);
            let _ = b.config_write(ctl, 2, pci::MSIX_CTRL_ENABLE as u32);
            format!("held={held:#x} released={:#x}", pba(b))
        }),
        case!("msix.table-readback", "table entry fields read back as written", known = "row 4", |b| {
            let e = r::MSIX_TABLE_OFFSET + 2 * pci::MSIX_ENTRY_SIZE;
            b.write32(r::BAR_MSIX, e, 0xFEE0_1000);
            b.write32(r::BAR_MSIX, e + 4, 0x1);
            b.write32(r::BAR_MSIX, e + 8, 0x4242);
            b.write32(r::BAR_MSIX, e + 12, 0xFFFF_FFFF);
            format!(
                "{:#x} {:#x} {:#x} {:#x}",
                b.read32(r::BAR_MSIX, e),
                b.read32(r::BAR_MSIX, e + 4),
                b.read32(r::BAR_MSIX, e + 8),
                b.read32(r::BAR_MSIX, e + 12)
            )
        }),
        case!("msix.pba-clr-on-ims-write", "CTRL_EXT.PBA_CLR: writing IMS.RXQ0 clears its pending bit", |b| {
            route_and_raise(b, IvarEntry::RxQ0, 0);
            let before = pba(b);
            let v = rd(b, r::CTRL_EXT);
            wr(b, r::CTRL_EXT, v | CtrlExt::PBA_CLR.bits());
            wr(b, r::IMS, Icr::RXQ0.bits());
            format!("before={before:#x} after={:#x}", pba(b))
        }),
        case!("msix.disabled-no-pba", "MSI-X disabled: a routed cause sets no PBA bit", |b| {
            wr(b, r::IVAR, r::ivar_entry(IvarEntry::RxQ0, 0));
            wr(b, r::IMS, Icr::RXQ0.bits());
            wr(b, r::ICS, Icr::RXQ0.bits());
            format!("PBA={:#x}", pba(b))
        }),
        // --- EEPROM via EERD ---
        case!("eerd.mac-words", "EERD words 0-2 (MAC) with DONE and address echoed", |b| format!(
            "{:#010x} {:#010x} {:#010x}",
            eerd(b, 0),
            eerd(b, 1),
            eerd(b, 2)
        )),
        case!("eerd.checksum", "words 0x00-0x3f sum to 0xbaba", |b| {
            let sum = (0..=0x3Fu32).fold(0u16, |a, w| a.wrapping_add((eerd(b, w) >> r::EERD_DATA_SHIFT) as u16));
            format!("sum={sum:#06x}")
        }),
        case!("eerd.id-words", "EEPROM words 0x0b-0x0e (subsystem, device, vendor)", known = "row 5", |b| (0x0B
            ..=0x0Eu32)
            .map(|w| format!("{:#06x}", eerd(b, w) >> r::EERD_DATA_SHIFT))
            .collect::<Vec<_>>()
            .join(" ")),
        case!("eerd.out-of-range", "EERD of word 0x40 (past the 64-word image)", known = "row 6", |b| format!(
            "EERD={:#010x}",
            eerd(b, 0x40)
        )),
        // --- PHY via MDIC ---
        case!("mdic.phy-id", "PHY ID1/ID2 through MDIC (READY set, data)", |b| format!(
            "{:#010x} {:#010x}",
            mdic(b, mdic_read(r::PHY_ADDR, r::PHY_ID1)),
            mdic(b, mdic_read(r::PHY_ADDR, r::PHY_ID2))
        )),
        case!("mdic.bmsr-link", "PHY BMSR once the link is up", known = "row 7", |b| {
            b.wait(150_000_000);
            format!("{:#010x}", mdic(b, mdic_read(r::PHY_ADDR, r::PHY_STATUS)))
        }),
        case!("mdic.wrong-phy-address", "MDIC read of PHY address 2: ERROR", |b| format!(
            "MDIC={:#010x}",
            mdic(b, mdic_read(2, r::PHY_ID1)) & (r::MDIC_ERROR | r::MDIC_READY)
        )),
        case!("mdic.write-then-read", "PHY register 4 (autoneg advertisement) write then read", |b| {
            mdic(b, r::MDIC_OP_WRITE | (r::PHY_ADDR << r::MDIC_PHYADD_SHIFT) | (4 << r::MDIC_REGADD_SHIFT) | 0x0DE1);
            format!("{:#010x}", mdic(b, mdic_read(r::PHY_ADDR, 4)))
        }),
        case!("mdic.int-en-raises-mdac", "MDIC with INT_EN raises ICR.MDAC", |b| {
            mdic(b, mdic_read(r::PHY_ADDR, r::PHY_ID1) | r::MDIC_INT_EN);
            format!("ICS={:#010x}", rd(b, r::ICS))
        }),
        // --- rings: head/tail ---
        case!("ring.length-and-base-masks", "RDLEN/TDLEN and RDBAL/TDBAL keep their valid bits", |b| {
            for reg in [r::rdlen(0), r::tdlen(0), r::rdbal(0), r::tdbal(0)] {
                wr(b, reg, u32::MAX);
            }
            regs(b, &[("RDLEN", r::rdlen(0)), ("TDLEN", r::tdlen(0)), ("RDBAL", r::rdbal(0)), ("TDBAL", r::tdbal(0))])
        }),
        case!("ring.head-tail-16-bit", "RDH/RDT/TDH/TDT keep 16 bits", |b| {
            for reg in [r::rdh(0), r::rdt(0), r::tdh(0), r::tdt(0)] {
                wr(b, reg, 0x0001_2345);
            }
            regs(b, &[("RDH", r::rdh(0)), ("RDT", r::rdt(0)), ("TDH", r::tdh(0)), ("TDT", r::tdt(0))])
        }),
        case!("ring.tail-while-disabled", "TDT/RDT written with TCTL/RCTL off: heads do not move", |b| {
            wr(b, r::tdlen(0), 0x1000);
            wr(b, r::rdlen(0), 0x1000);
            wr(b, r::tdt(0), 5);
            wr(b, r::rdt(0), 7);
            regs(b, &[("TDH", r::tdh(0)), ("TDT", r::tdt(0)), ("RDH", r::rdh(0)), ("RDT", r::rdt(0))])
        }),
        case!("ring.queue1-registers", "queue 1 base/length/head/tail read back", |b| {
            wr(b, r::tdbal(1), 0x1234_5670);
            wr(b, r::rdlen(1), 0x0000_0800);
            wr(b, r::tdh(1), 3);
            wr(b, r::rdt(1), 9);
            regs(b, &[("TDBAL1", r::tdbal(1)), ("RDLEN1", r::rdlen(1)), ("TDH1", r::tdh(1)), ("RDT1", r::rdt(1))])
        }),
        // --- control registers ---
        case!(
            "ctrl.rst-clears-interrupt-setup",
            "CTRL.RST clears IVAR, IMS, EIAC, IAM, and self-clears",
            known = "row 8",
            |b| {
                wr(b, r::IVAR, 0x800A_0908);
                wr(b, r::IMS, Icr::LSC.bits());
                wr(b, r::EIAC, Icr::RXQ0.bits());
                wr(b, r::IAM, 0xFF);
                let v = rd(b, r::CTRL);
                wr(b, r::CTRL, v | (1 << 26));
                b.wait(1_000_000);
                regs(b, &[("CTRL", r::CTRL), ("IVAR", r::IVAR), ("IMS", r::IMS), ("EIAC", r::EIAC), ("IAM", r::IAM)])
            }
        ),
        case!("ctrl-ext.self-clearing", "CTRL_EXT.ASDCHK and EE_RST read back 0", |b| {
            wr(b, r::CTRL_EXT, (CtrlExt::ASDCHK | CtrlExt::EE_RST | CtrlExt::DRV_LOAD).bits());
            regs(b, &[("CTRL_EXT", r::CTRL_EXT)])
        }),
        case!("itr.readback", "ITR and EITR0 read back the programmed interval", |b| {
            wr(b, r::ITR, 0x0001_00C3);
            wr(b, r::eitr(0), 0xC3);
            regs(b, &[("ITR", r::ITR), ("EITR0", r::eitr(0))])
        }),
        case!("status.write-ignored", "STATUS is read-only (write 0)", |b| {
            b.wait(150_000_000);
            let a = rd(b, r::STATUS);
            wr(b, r::STATUS, 0);
            format!("before={a:#010x} after={:#010x}", rd(b, r::STATUS))
        }),
        case!("rctl.readback", "RCTL stores a configuration (receiver off)", |b| {
            wr(b, r::RCTL, r::RCTL_UPE | r::RCTL_MPE | r::RCTL_BAM | r::RCTL_SECRC);
            regs(b, &[("RCTL", r::RCTL)])
        }),
        // --- descriptor write-back ---
        case!("tx.legacy-rs-writeback", "legacy TX descriptor with EOP|IFCS|RS: DD written back, head moves", |b| {
            tx_legacy(b, desc::TXD_CMD_EOP | desc::TXD_CMD_IFCS | desc::TXD_CMD_RS)
        }),
        case!("tx.legacy-no-rs", "legacy TX descriptor without RS: sent, no status written back", |b| {
            tx_legacy(b, desc::TXD_CMD_EOP | desc::TXD_CMD_IFCS)
        }),
        case!("io.window", "register access through the BAR2 I/O window (IOADDR/IODATA)", |b| {
            b.write32(r::BAR_IO, 0, r::VET);
            let vet = b.read32(r::BAR_IO, 4);
            b.write32(r::BAR_IO, 0, r::FCT);
            b.write32(r::BAR_IO, 4, 0x8808);
            format!("VET={vet:#010x} FCT={:#010x}", rd(b, r::FCT))
        }),
    ];
    all.extend(datapath::cases());
    all.extend(generations::cases());
    all.extend(queues::cases());
    all
}

/// Print rows as a table: case, ours, QEMU's, verdict.
pub fn table(rows: &[Row]) -> String {
    let wn = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let wo = rows.iter().map(|r| r.ours.len()).max().unwrap_or(4).clamp(4, 60);
    let mut s = format!("{:<wn$}  {:<wo$}  {:<wo$}  verdict\n", "case", "ours", "QEMU's");
    s.push_str(&"-".repeat(wn + 2 * wo + 16));
    s.push('\n');
    for r in rows {
        let _ = writeln!(s, "{:<wn$}  {:<wo$}  {:<wo$}  {}", r.name, r.ours, r.theirs, r.verdict.as_str());
    }
    s
}
