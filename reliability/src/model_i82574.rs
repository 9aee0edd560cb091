//! Fuzz harness: the 82574L model driven by arbitrary config/BAR accesses, clock advances,
//! resets, fault plans and DMA windows with arbitrary contents.
//!
//! The model is used through the [`PciDevice`] trait, the way any backend uses it, with
//! every value the trait allows (any offset, any BAR, any size 1/2/4). DMA windows are
//! mapped in the model's IOMMU over the middle of a larger block whose first and last page
//! are guards that are never mapped.
//!
//! Invariants: no panic; guard pages untouched (the model never reaches memory it was not
//! given); memory of read-only windows untouched; the IOMMU's window count matches the
//! windows mapped.

use crate::{Violation, violation};
use arbitrary::{Arbitrary, Unstructured};
use nicqual_backends::emulated::host_region;
use nicqual_hw::i82574 as r;
use nicqual_model::i82574::{Config, I82574};
use nicqual_model::net::{L4, ipv4_frame, ipv6_frame};
use nicqual_model::{FaultKind, FaultPlan, PciDevice, Perm};
use nicqual_pci::dma::DmaMemory;

const PAGE: usize = 4096;
const SLOTS: usize = 4;
const MAX_OPS: usize = 64;

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Size {
    B1,
    B2,
    B4,
}

impl Size {
    fn bytes(self) -> u8 {
        match self {
            Size::B1 => 1,
            Size::B2 => 2,
            Size::B4 => 4,
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    CfgRead {
        off: u16,
        size: Size,
    },
    CfgWrite {
        off: u16,
        size: Size,
        val: u32,
    },
    BarRead {
        bar: u8,
        off: u32,
    },
    BarWrite {
        bar: u8,
        off: u32,
        val: u32,
    },
    /// Read a named register (denser coverage than raw offsets).
    RegRead {
        reg: u16,
    },
    /// Write a named register.
    RegWrite {
        reg: u16,
        val: u32,
    },
    /// Write a value that looks like an IOVA inside window `slot` into a named register
    /// (ring bases), so the model reaches DMA.
    RegIova {
        reg: u16,
        slot: u8,
        off: u16,
    },
    Advance {
        ns: u32,
    },
    Reset,
    TakeInterrupts,
    Map {
        slot: u8,
        iova_page: u16,
        pages: u8,
        perm: u8,
    },
    Unmap {
        slot: u8,
    },
    Poke {
        slot: u8,
        off: u16,
        bytes: Vec<u8>,
    },
    Faults {
        seed: u64,
        kind: u8,
        arg: u16,
        prob: u8,
        at_ns: u32,
    },
    Cable {
        plugged: bool,
    },
    /// Program queue 0's (or, `q1`, queue 1's) RX (or TX) ring over window `slot` and
    /// enable it, control bits from the fuzzer: reaches the ring paths in a few bytes.
    Ring {
        tx: bool,
        q1: bool,
        slot: u8,
        len_descs: u8,
        head: u8,
        tail: u8,
        ctl: u32,
    },
    /// Move queue 0's (or queue 1's) tail.
    Tail {
        tx: bool,
        q1: bool,
        tail: u16,
    },
    /// RSS set-up: MRQC, RXCSUM (PCSD decides), RFCTL, one RETA value for every entry
    /// register, the key from a seed; then TARC0/TARC1.
    Rss {
        mrqc: u32,
        rxcsum: u32,
        rfctl: u32,
        reta: u32,
        key_seed: u32,
        tarc: [u32; 2],
    },
    /// An IPv4 or IPv6 frame (extension header bytes `ext` after next-header `ext_nh` for
    /// IPv6) with protocol from `l4`, cut to `cut` bytes when that is shorter: reaches the
    /// RSS parser and hash with well-formed and truncated headers.
    ReceiveIp {
        v6: bool,
        l4: u8,
        src: [u8; 16],
        ports: u32,
        frag: u16,
        ext_nh: u8,
        ext: Vec<u8>,
        cut: u16,
    },
    /// A frame arrives from the wire.
    Receive {
        frame: Vec<u8>,
        has_fcs: bool,
    },
    /// Any step of the clock, up to the end of time (what a qtest client's
    /// `clock_step 18446744073709551615` does).
    AdvanceFar {
        ns: u64,
    },
    /// The clock set to any time (`clock_set`): forward only.
    ClockSet {
        ns: u64,
    },
}

struct Window {
    mem: DmaMemory,
    iova: u64,
    pages: usize,
    perm: Perm,
    /// Copy of a read-only window's contents, to prove the device never wrote it.
    ro_copy: Option<Vec<u8>>,
}

fn snapshot(mem: &DmaMemory) -> Vec<u8> {
    let mut v = vec![0u8; mem.len()];
    let _ = mem.read(0, &mut v);
    v
}

fn named(reg: u16) -> u32 {
    let names = r::named_registers();
    names.get(usize::from(reg) % names.len().max(1)).map(|(o, _)| *o).unwrap_or(r::CTRL)
}

/// Run one input.
pub fn run(data: &[u8]) -> Result<(), Violation> {
    let mut u = Unstructured::new(data);
    let ops: Vec<Op> = crate::decode_ops(&mut u, MAX_OPS);
    run_ops(&ops)
}

/// Run a decoded op list (also used by the property tests).
pub fn run_ops(ops: &[Op]) -> Result<(), Violation> {
    let mut windows: Vec<Option<Window>> = (0..SLOTS).map(|_| None).collect();
    let mut guards: Vec<(DmaMemory, usize, Vec<u8>)> = Vec::new();
    let mut dev = I82574::new(Config { link_up_delay_ns: 1_000_000, ..Config::default() });
    for op in ops {
        match op {
            Op::CfgRead { off, size } => {
                dev.config_read(off % 4096, size.bytes());
            }
            Op::CfgWrite { off, size, val } => dev.config_write(off % 4096, size.bytes(), *val),
            Op::BarRead { bar, off } => {
                dev.bar_read32(bar % 8, u64::from(*off));
            }
            Op::BarWrite { bar, off, val } => dev.bar_write32(bar % 8, u64::from(*off), *val),
            Op::RegRead { reg } => {
                dev.bar_read32(r::BAR_REGS, u64::from(named(*reg)));
            }
            Op::RegWrite { reg, val } => dev.bar_write32(r::BAR_REGS, u64::from(named(*reg)), *val),
            Op::RegIova { reg, slot, off } => {
                let iova = match windows.get(usize::from(*slot) % SLOTS).and_then(|w| w.as_ref()) {
                    Some(w) => w.iova + u64::from(*off) % (w.pages * PAGE) as u64,
                    None => u64::from(*off),
                };
                dev.bar_write32(r::BAR_REGS, u64::from(named(*reg)), iova as u32);
            }
            Op::Advance { ns } => dev.advance(u64::from(*ns)),
            Op::Reset => dev.function_reset(),
            Op::TakeInterrupts => {
                dev.take_interrupts();
            }
            Op::Map { slot, iova_page, pages, perm } => {
                let i = usize::from(*slot) % SLOTS;
                if windows.get(i).is_some_and(|w| w.is_some()) {
                    continue;
                }
                let pages = usize::from(pages % 8) + 1;
                let mem = DmaMemory::alloc((pages + 2) * PAGE).map_err(|e| violation(e.to_string()))?;
                let perm = match perm % 3 {
                    0 => Perm::READ,
                    1 => Perm::WRITE,
                    _ => Perm::READ_WRITE,
                };
                let iova = u64::from(*iova_page) * PAGE as u64;
                // Pages 1..=pages of `mem`; pages 0 and pages+1 are guards the device must
                // never reach. The window holds its own clone of the block.
                let region = mem
                    .slice(PAGE, pages * PAGE)
                    .map(|s| host_region(&s))
                    .ok_or_else(|| violation(format!("no {pages}-page slice of a {}-byte block", mem.len())))?;
                let mapped = dev.iommu().map(iova, region, perm).is_ok();
                if mapped {
                    let ro_copy = (!perm.write).then(|| snapshot(&mem));
                    if let Some(w) = windows.get_mut(i) {
                        *w = Some(Window { mem, iova, pages, perm, ro_copy });
                    }
                }
            }
            Op::Unmap { slot } => {
                let i = usize::from(*slot) % SLOTS;
                if let Some(w) = windows.get_mut(i).and_then(|w| w.take()) {
                    dev.iommu().unmap(w.iova).map_err(|e| violation(format!("unmap of a live window: {e}")))?;
                    check_window(&w)?;
                    guards.push((w.mem.clone(), w.pages, snapshot(&w.mem)));
                }
            }
            Op::Poke { slot, off, bytes } => {
                if let Some(Some(w)) = windows.get_mut(usize::from(*slot) % SLOTS) {
                    let span = (w.pages * PAGE).saturating_sub(bytes.len()).max(1);
                    let at = PAGE + usize::from(*off) % span;
                    let _ = w.mem.write(at, bytes);
                    if let Some(c) = &mut w.ro_copy
                        && let Some(dst) = c.get_mut(at..at + bytes.len())
                    {
                        dst.copy_from_slice(bytes);
                    }
                }
            }
            Op::Faults { seed, kind, arg, prob, at_ns } => {
                let kind = match kind % 4 {
                    0 => FaultKind::LoseVector { vector: arg % 8 },
                    1 => FaultKind::CorruptIvar { entry: (*arg % 8) as u8 },
                    2 => FaultKind::DropIrq { vector: arg % 8, probability: f64::from(*prob) / 255.0 },
                    _ => FaultKind::SurpriseRemoval,
                };
                dev.arm_faults(FaultPlan::new(*seed).with(kind, u64::from(*at_ns)));
            }
            Op::Cable { plugged } => dev.set_cable(*plugged),
            Op::Ring { tx, q1, slot, len_descs, head, tail, ctl } => {
                let (iova, bytes) = match windows.get(usize::from(*slot) % SLOTS).and_then(|w| w.as_ref()) {
                    Some(w) => (w.iova, (w.pages * PAGE) as u32),
                    None => (0, PAGE as u32),
                };
                // Descriptor count a multiple of 8 (RDLEN/TDLEN are 128-byte units), at
                // most what the window holds, sometimes more (the fuzzer decides).
                let len = (u32::from(*len_descs) + 1) * 128;
                let len = if len_descs & 0x80 == 0 { len.min(bytes) } else { len };
                let q = u32::from(*q1);
                let (bal, bah, l, h, t, ctl_reg, en) = if *tx {
                    (r::tdbal(q), r::tdbah(q), r::tdlen(q), r::tdh(q), r::tdt(q), r::TCTL, r::TCTL_EN)
                } else {
                    (r::rdbal(q), r::rdbah(q), r::rdlen(q), r::rdh(q), r::rdt(q), r::RCTL, r::RCTL_EN)
                };
                let w = |d: &mut I82574, o: u32, v: u32| d.bar_write32(r::BAR_REGS, u64::from(o), v);
                w(&mut dev, bal, iova as u32);
                w(&mut dev, bah, (iova >> 32) as u32);
                w(&mut dev, l, len);
                w(&mut dev, h, u32::from(*head));
                w(&mut dev, t, u32::from(*tail));
                w(&mut dev, ctl_reg, ctl | en);
            }
            Op::Tail { tx, q1, tail } => {
                let q = u32::from(*q1);
                let o = if *tx { r::tdt(q) } else { r::rdt(q) };
                dev.bar_write32(r::BAR_REGS, u64::from(o), u32::from(*tail));
            }
            Op::Receive { frame, has_fcs } => {
                dev.receive_frame(frame, *has_fcs);
            }
            Op::Rss { mrqc, rxcsum, rfctl, reta, key_seed, tarc } => {
                let w = |d: &mut I82574, o: u32, v: u32| d.bar_write32(r::BAR_REGS, u64::from(o), v);
                for n in 0..r::RSSRK_LEN {
                    w(&mut dev, r::RSSRK + 4 * n, key_seed.rotate_left(n).wrapping_mul(0x9E37_79B9));
                }
                for n in 0..r::RETA_LEN {
                    w(&mut dev, r::RETA + 4 * n, reta.rotate_left(n));
                }
                w(&mut dev, r::MRQC, *mrqc);
                w(&mut dev, r::RXCSUM, *rxcsum);
                w(&mut dev, r::RFCTL, *rfctl);
                w(&mut dev, r::tarc(0), tarc[0]);
                w(&mut dev, r::tarc(1), tarc[1]);
            }
            Op::ReceiveIp { v6, l4, src, ports, frag, ext_nh, ext, cut } => {
                let (sport, dport) = ((*ports >> 16) as u16, *ports as u16);
                let l4 = match l4 % 3 {
                    0 => L4::Tcp { sport, dport },
                    1 => L4::Udp { sport, dport },
                    _ => L4::None,
                };
                let dst = src.map(|b| b.rotate_left(3));
                let mut f = if *v6 {
                    let ext: Vec<(u8, Vec<u8>)> = if ext.is_empty() { vec![] } else { vec![(*ext_nh, ext.clone())] };
                    ipv6_frame(*src, dst, &ext, l4, 16)
                } else {
                    let a = |x: &[u8; 16]| [x[0], x[1], x[2], x[3]];
                    ipv4_frame(a(src), a(&dst), *frag, *frag, l4, 16)
                };
                f.truncate(usize::from(*cut).max(14));
                dev.receive_frame(&f, false);
            }
            Op::AdvanceFar { ns } => dev.advance(*ns),
            Op::ClockSet { ns } => {
                let now = dev.now_ns();
                dev.advance(ns.saturating_sub(now));
            }
        }
        let live = windows.iter().flatten().count();
        if dev.iommu().window_count() != live {
            return Err(violation(format!(
                "IOMMU holds {} windows, harness mapped {live}",
                dev.iommu().window_count()
            )));
        }
    }
    drop(dev);
    for w in windows.iter().flatten() {
        check_window(w)?;
    }
    for (mem, pages, before) in &guards {
        // Unmapped (or never mapped) memory: the device must not have touched it since.
        if snapshot(mem) != *before {
            return Err(violation(format!("memory of an unmapped {pages}-page window changed after unmap")));
        }
    }
    Ok(())
}

fn check_window(w: &Window) -> Result<(), Violation> {
    let now = snapshot(&w.mem);
    let end = PAGE * (w.pages + 1);
    if now.get(..PAGE).is_some_and(|g| g.iter().any(|&b| b != 0))
        || now.get(end..).is_some_and(|g| g.iter().any(|&b| b != 0))
    {
        return Err(violation(format!("guard page around window {:#x}+{} pages was written", w.iova, w.pages)));
    }
    if let Some(c) = &w.ro_copy
        && *c != now
    {
        return Err(violation(format!("read-only window {:#x} ({:?}) was written by the device", w.iova, w.perm)));
    }
    Ok(())
}
