//! A conformance-style probe of the 82576's interrupt block on QEMU 11.1's `igb`
//! (8086:10c9): named probes, each answering as text, as groundwork for a second Intel
//! family (per-queue IVAR, more vectors). There is no igb model to compare with yet: the
//! answers are recorded in docs/CONFORMANCE.md and the tests check the facts Linux's igb
//! driver relies on.

use crate::conformance::{rd, regs, wr};
use nicqual_backends::qtest::{QemuConfig, QtestBackend, Target};
use nicqual_hw::igb as g;
use nicqual_hw::pci;
use nicqual_pci::Backend;
use nicqual_pci::caps::MsixLayout;
use std::fmt::Write;

// Registers are in BAR 0 on both parts, so the 82574 cases' register helpers serve.
const _: () = assert!(g::BAR_REGS == nicqual_hw::i82574::BAR_REGS);

/// One probe: a name, what it asks, and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub name: &'static str,
    pub what: &'static str,
    pub answer: String,
}

/// A fresh QEMU 11.1 igb over qtest (Debian forky root, virtual time).
pub fn fresh_igb() -> Result<QtestBackend, String> {
    let cfg = QemuConfig { device: "igb".into(), ..QemuConfig::qemu11() };
    QtestBackend::spawn(Target::Qemu(cfg)).map_err(|e| e.to_string())
}

/// Write all-ones to `reg` and read it back.
fn ones(b: &mut dyn Backend, reg: u32) -> String {
    wr(b, reg, u32::MAX);
    format!("{:#010x}", rd(b, reg))
}

fn layout(b: &mut dyn Backend) -> Option<MsixLayout> {
    nicqual_pci::caps::msix_layout(|off, size| b.config_read(off, size)).ok().flatten()
}

/// MSI-X on with every table entry masked (delivery shows in the PBA), GPIE as Linux sets
/// it for MSI-X plus `gpie_extra`.
fn msix_masked(b: &mut dyn Backend, l: MsixLayout, gpie: u32) {
    for v in 0..u64::from(l.size) {
        let e = l.table_off + v * pci::MSIX_ENTRY_SIZE;
        b.write32(l.table_bir, e + pci::MSIX_ENTRY_VECTOR_CTRL, pci::MSIX_ENTRY_CTRL_MASKBIT);
        b.write32(l.table_bir, e + pci::MSIX_ENTRY_ADDR_LO, pci::MSI_ADDRESS_BASE as u32);
        b.write32(l.table_bir, e + pci::MSIX_ENTRY_ADDR_HI, 0);
        b.write32(l.table_bir, e + pci::MSIX_ENTRY_DATA, 0x40 + v as u32);
    }
    let _ = b.config_write(l.cap + pci::MSIX_MSG_CTRL, 2, pci::MSIX_CTRL_ENABLE as u32);
    wr(b, g::GPIE, gpie);
}

fn pba(b: &mut dyn Backend, l: MsixLayout) -> u32 {
    b.read32(l.pba_bir, l.pba_off)
}

type Run = fn(&mut dyn Backend, MsixLayout) -> String;

/// The probes, in table order.
pub fn probes() -> Vec<(&'static str, &'static str, Run)> {
    vec![
        ("igb.identity", "vendor:device, class", |b, _| {
            format!(
                "id={:#010x} class={:#010x}",
                b.config_read(0, 4).unwrap_or(u32::MAX),
                b.config_read(8, 4).unwrap_or(u32::MAX)
            )
        }),
        ("igb.msix-capability", "MSI-X table size (vectors), table and PBA BAR/offset", |_, l| {
            format!(
                "vectors={} table=BAR{}+{:#x} pba=BAR{}+{:#x}",
                l.size, l.table_bir, l.table_off, l.pba_bir, l.pba_off
            )
        }),
        ("igb.reset.interrupt-block", "EICR EIMS EIAC EIAM GPIE IVAR_MISC at power-on", |b, _| {
            regs(
                b,
                &[
                    ("EICR", g::EICR),
                    ("EIMS", g::EIMS),
                    ("EIAC", g::EIAC),
                    ("EIAM", g::EIAM),
                    ("GPIE", g::GPIE),
                    ("IVAR_MISC", g::IVAR_MISC),
                ],
            )
        }),
        ("igb.reset.ivar", "IVAR0-7 at power-on", |b, _| {
            (0..g::IVAR_COUNT).map(|n| format!("{:#010x}", rd(b, g::ivar(n)))).collect::<Vec<_>>().join(" ")
        }),
        ("igb.readback", "all-ones written to GPIE, EIAC, EIAM, IVAR0, IVAR7, IVAR_MISC, read back", |b, _| {
            [
                ("GPIE", g::GPIE),
                ("EIAC", g::EIAC),
                ("EIAM", g::EIAM),
                ("IVAR0", g::ivar(0)),
                ("IVAR7", g::ivar(7)),
                ("IVAR_MISC", g::IVAR_MISC),
            ]
            .iter()
            .map(|(n, r)| format!("{n}={}", ones(b, *r)))
            .collect::<Vec<_>>()
            .join(" ")
        }),
        ("igb.eims-valid-mask", "EIMS after writing all-ones, then after EIMC all-ones", |b, _| {
            let set = ones(b, g::EIMS);
            wr(b, g::EIMC, u32::MAX);
            format!("EIMS={set} after-EIMC={:#010x}", rd(b, g::EIMS))
        }),
        (
            "igb.ivar.per-queue",
            "RX0->v0 TX0->v1 RX8->v2 TX8->v3 in IVAR0 (column-major: queue q and q+8 share register q&7)",
            |b, _| {
                let v = [
                    (g::ivar_rx_shift(0), 0),
                    (g::ivar_tx_shift(0), 1),
                    (g::ivar_rx_shift(8), 2),
                    (g::ivar_tx_shift(8), 3),
                ]
                .iter()
                .fold(0u32, |a, (shift, vec)| a | ((g::IVAR_VALID | vec) << shift));
                wr(b, g::ivar(0), v);
                format!("wrote={v:#010x} read={:#010x}", rd(b, g::ivar(0)))
            },
        ),
        ("igb.eitr.last", "EITR of vector 9 (the last MSI-X vector) and 24 (past it): 0x7ffc written", |b, _| {
            wr(b, g::eitr(9), 0x7FFC);
            wr(b, g::eitr(24), 0x7FFC);
            format!("EITR9={:#010x} EITR24={:#010x}", rd(b, g::eitr(9)), rd(b, g::eitr(24)))
        }),
        ("igb.eics.msix-vector", "MSI-X mode: EIMS=bit 3, EICS=bit 3 -> vector 3 pending; EICR", |b, l| {
            msix_masked(b, l, g::GPIE_MSIX_MODE | g::GPIE_PBA);
            wr(b, g::EIMS, 1 << 3);
            wr(b, g::EICS, 1 << 3);
            format!("PBA={:#x} EICR={:#010x}", pba(b, l), rd(b, g::EICR))
        }),
        ("igb.eics.masked", "MSI-X mode: EIMS=0, EICS=bit 3 -> no message; EICR read twice (read-to-clear)", |b, l| {
            msix_masked(b, l, g::GPIE_MSIX_MODE | g::GPIE_PBA);
            wr(b, g::EICS, 1 << 3);
            let first = rd(b, g::EICR);
            format!("PBA={:#x} EICR={first:#010x} again={:#010x}", pba(b, l), rd(b, g::EICR))
        }),
        ("igb.eiac.auto-clear", "MSI-X mode: EIAC=bit 3: EICR bit 3 cleared once its message is sent", |b, l| {
            msix_masked(b, l, g::GPIE_MSIX_MODE | g::GPIE_PBA);
            wr(b, g::EIAC, 1 << 3);
            wr(b, g::EIMS, 1 << 3);
            wr(b, g::EICS, 1 << 3);
            let ics = rd(b, g::EIMS);
            format!("PBA={:#x} EIMS={ics:#010x} EICR={:#010x}", pba(b, l), rd(b, g::EICR))
        }),
        ("igb.eiam.auto-mask", "MSI-X mode, GPIE.EIAME, EIAM=bit 3: the message clears EIMS bit 3", |b, l| {
            msix_masked(b, l, g::GPIE_LINUX_MSIX);
            wr(b, g::EIAM, 1 << 3);
            wr(b, g::EIMS, (1 << 3) | (1 << 4));
            wr(b, g::EICS, 1 << 3);
            format!("PBA={:#x} EIMS={:#010x}", pba(b, l), rd(b, g::EIMS))
        }),
        ("igb.ivar-misc.other", "MSI-X mode: IVAR_MISC other->v9, EIMS=bit 9, ICS=LSC -> vector 9", |b, l| {
            msix_masked(b, l, g::GPIE_LINUX_MSIX);
            wr(b, g::IVAR_MISC, (g::IVAR_VALID | 9) << 8);
            wr(b, g::EIMS, 1 << 9);
            // IMS (0xD0) LSC, then ICS (0xC8) LSC: an "other" cause.
            wr(b, 0xD0, 1 << 2);
            wr(b, 0xC8, 1 << 2);
            format!("PBA={:#x}", pba(b, l))
        }),
    ]
}

/// Run every probe, each on a fresh igb from `fresh`.
pub fn run(fresh: &mut dyn FnMut() -> Result<QtestBackend, String>) -> Result<Vec<Probe>, String> {
    let mut out = Vec::new();
    for (name, what, f) in probes() {
        let mut b = fresh()?;
        let cmd = b.config_read(pci::COMMAND, 2).map_err(|e| e.to_string())?;
        b.config_write(pci::COMMAND, 2, cmd | (pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER) as u32)
            .map_err(|e| e.to_string())?;
        let l = layout(&mut b).ok_or_else(|| format!("{name}: the function has no MSI-X capability"))?;
        out.push(Probe { name, what, answer: f(&mut b, l) });
    }
    Ok(out)
}

/// The probes as a table.
pub fn table(rows: &[Probe]) -> String {
    let wn = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut s = format!("{:<wn$}  answer (QEMU 11.1 igb)\n", "probe");
    for r in rows {
        let _ = writeln!(s, "{:<wn$}  {}", r.name, r.answer);
    }
    s
}
