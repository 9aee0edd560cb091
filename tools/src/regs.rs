//! `nicqual regs`: every 82574L register with its name and decoded fields, like
//! `ethtool -d` prints for e1000e; `--raw` for offset/value pairs only. Register names,
//! access and fields come from the one register table, `nicqual_hw::i82574::REGISTERS`.
//!
//! A function whose configuration space or STATUS reads all-ones is gone (or not
//! answering): the dump says so on its first line and prints no register values.

use crate::devices::{DEFAULT_DEVICE, DeviceSpec};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_backends::qtest::{QtestBackend, Target};
use nicqual_hw::i82574::{self as r, IvarEntry};
use nicqual_hw::pci;
use nicqual_hw::regs::{Access, FieldDesc};
use nicqual_model::FaultPlan;
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_nics::i82574::{I82574, Options};
use nicqual_pci::Backend;
use std::fmt::Write;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Device to dump (`nicqual devices` lists them).
    #[arg(long, default_value = DEFAULT_DEVICE)]
    device: DeviceSpec,
    /// Offset and value only, one register per line.
    #[arg(long)]
    raw: bool,
    /// Bring the device up first (reset, MSI-X, link) as `qualify` does, then dump.
    #[arg(long)]
    up: bool,
    /// Fault shorthand for the emulated device (as `qualify --fault`), armed before the dump.
    #[arg(long = "fault", value_name = "SPEC")]
    fault: Vec<FaultPlan>,
    /// Also read the read-to-clear registers (statistics, ICR), clearing them. Without it
    /// they are listed but not read: a dump must not change the device.
    #[arg(long)]
    clear: bool,
}

pub fn run(a: Args) -> ExitCode {
    let mut plan = FaultPlan::new(crate::qualify::DEFAULT_SEED);
    for f in &a.fault {
        plan.extend(f.clone());
    }
    let spec = a.device.to_string();
    match a.device {
        DeviceSpec::ModelI82574 => {
            let b = EmulatedBackend::new(Model::new(Config::default()), spec.clone());
            dump_device(b, Options::default(), &spec, &a, move |b| b.device_mut().arm_faults(plan))
        }
        DeviceSpec::Vfio(ref addr) => {
            if !a.fault.is_empty() {
                eprintln!("nicqual: {spec} is a real function: fault plans apply to model:i82574l");
                return ExitCode::from(2);
            }
            let host = crate::vfio_cli::HostArgs::default().host();
            let opened = addr
                .parse()
                .map_err(|e: nicqual_backends::vfio::VfioError| e)
                .and_then(|a| nicqual_backends::vfio::VfioBackend::open(&host, &a));
            match opened {
                Ok(b) => dump_device(b, Options::default(), &spec, &a, |_| {}),
                Err(e) => {
                    eprintln!("nicqual: {spec}: {e}");
                    ExitCode::from(3)
                }
            }
        }
        DeviceSpec::ModelEnic { .. } => {
            eprintln!("nicqual: regs dumps the 82574L's registers; {spec} has none of them");
            ExitCode::from(2)
        }
        DeviceSpec::ModelBnx2x(_) => {
            eprintln!("nicqual: regs dumps the 82574L register file; {spec} is not one");
            ExitCode::from(2)
        }
        DeviceSpec::QemuE1000e | DeviceSpec::Qemu11E1000e => {
            let (qemu, options) = a.device.qemu().unwrap_or_default();
            if !a.fault.is_empty() {
                eprintln!("nicqual: {spec} takes no fault plan (QEMU's model is not ours)");
                return ExitCode::from(2);
            }
            match QtestBackend::spawn(Target::Qemu(qemu)) {
                Ok(b) => dump_device(b, options.driver, &spec, &a, |_| {}),
                Err(e) => {
                    eprintln!("nicqual: cannot start {spec}: {e}");
                    ExitCode::from(3)
                }
            }
        }
    }
}

/// Attach the driver (and bring the device up with `--up`), let `arm` inject faults, dump
/// the registers, then the PHY registers (through MDIC) and configuration space. A function
/// that reads all-ones is dumped as such without attaching.
fn dump_device<B: Backend>(mut b: B, opts: Options, spec: &str, a: &Args, arm: impl FnOnce(&mut B)) -> ExitCode {
    if b.config_read(pci::VENDOR_ID, 2).unwrap_or(0xFFFF) == 0xFFFF {
        arm(&mut b);
        let (text, _) = dump(&mut b, spec, a.raw, a.clear);
        print!("{text}");
        return ExitCode::from(1);
    }
    let mut drv = match I82574::attach(b, opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("nicqual: attach to {spec} failed: {e}");
            return ExitCode::from(1);
        }
    };
    if a.up
        && let Err(e) = drv.bring_up()
    {
        eprintln!("nicqual: bring-up of {spec} failed: {e}; dumping as it is");
    }
    arm(drv.backend_mut());
    let (mut text, ok) = dump(drv.backend_mut(), spec, a.raw, a.clear);
    if ok && !a.raw {
        text.push_str(&phy_dump(|reg| drv.phy_read(reg).map_err(|e| e.to_string())));
        text.push_str(&config_dump(drv.backend_mut()));
    }
    print!("{text}");
    drv.shutdown();
    if ok { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Names of the clause-22 PHY registers (IEEE 802.3 22.2.4); 16..=31 are the PHY's own.
const PHY_NAMES: [&str; 16] = [
    "BMCR", "BMSR", "PHYID1", "PHYID2", "ANAR", "ANLPAR", "ANER", "ANNPTR", "ANLPRNP", "GBCR", "GBSR", "", "", "", "",
    "GBESR",
];

/// The PHY's registers 0..=31 (page 0) as read through MDIC.
fn phy_dump(mut read: impl FnMut(u32) -> Result<u16, String>) -> String {
    let mut o = String::from("\nPHY (address 1, through MDIC):\n");
    for reg in 0..32u32 {
        let name = PHY_NAMES.get(reg as usize).copied().filter(|n| !n.is_empty()).unwrap_or("");
        match read(reg) {
            Ok(v) => {
                let _ = writeln!(o, "  {reg:2} {name:<8} 0x{v:04x}");
            }
            Err(e) => {
                let _ = writeln!(o, "  {reg:2} {name:<8} not read: {e}");
                break;
            }
        }
    }
    o
}

/// Configuration space (256 bytes) as `lspci -xxx` prints it.
fn config_dump<B: Backend>(b: &mut B) -> String {
    let mut o = String::from("\nPCI configuration space:\n");
    for row in 0..16u16 {
        let _ = write!(o, "{:02x}:", row * 16);
        for dw in 0..4u16 {
            let off = row * 16 + dw * 4;
            match b.config_read(off, 4) {
                Ok(v) => {
                    for byte in v.to_le_bytes() {
                        let _ = write!(o, " {byte:02x}");
                    }
                }
                Err(_) => o.push_str(" ?? ?? ?? ??"),
            }
        }
        o.push('\n');
    }
    o
}

/// One register instance of the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegInfo {
    pub offset: u32,
    /// Instance name: `CTRL`, `RDBAL1`, `MTA[7]`.
    pub name: String,
    pub access: Access,
    pub fields: &'static [FieldDesc],
}

/// Every register instance of the table, in offset order.
pub fn dump_layout() -> Vec<RegInfo> {
    let mut v: Vec<RegInfo> = r::REGISTERS
        .iter()
        .flat_map(|d| {
            d.instances().map(move |(i, offset)| RegInfo {
                offset,
                name: d.instance_name(i),
                access: d.access,
                fields: d.fields,
            })
        })
        .collect();
    v.sort_by_key(|r| r.offset);
    v
}

/// Dump every register of an 82574L behind `b`. Returns the text and false when the
/// device reads all-ones (then the text says so and holds no register values).
pub fn dump<B: Backend>(b: &mut B, spec: &str, raw: bool, clear: bool) -> (String, bool) {
    let mut o = String::new();
    let vendor = b.config_read(pci::VENDOR_ID, 2).unwrap_or(0xFFFF);
    let device = b.config_read(pci::DEVICE_ID, 2).unwrap_or(0xFFFF);
    let gone_cfg = vendor == 0xFFFF && device == 0xFFFF;
    if !gone_cfg {
        let cmd = b.config_read(pci::COMMAND, 2).unwrap_or(0) as u16;
        if cmd & pci::COMMAND_MEMORY == 0 {
            let _ = b.config_write(pci::COMMAND, 2, u32::from(cmd | pci::COMMAND_MEMORY));
        }
    }
    let status = if gone_cfg { u32::MAX } else { b.read32(r::BAR_REGS, u64::from(r::STATUS)) };
    if gone_cfg || status == u32::MAX {
        let _ = writeln!(
            o,
            "nicqual regs: {spec} reads all-ones (PCI ID {vendor:04x}:{device:04x}, STATUS {status:#010x}): \
             the device is gone or not answering; no register values shown"
        );
        return (o, false);
    }
    let sub_v = b.config_read(pci::SUBSYSTEM_VENDOR_ID, 2).unwrap_or(0);
    let sub = b.config_read(pci::SUBSYSTEM_ID, 2).unwrap_or(0);
    let rev = b.config_read(pci::REVISION_CLASS, 1).unwrap_or(0);
    let _ = writeln!(
        o,
        "nicqual regs: {spec}  PCI {vendor:04x}:{device:04x} subsystem {sub_v:04x}:{sub:04x} rev {rev}{}",
        if vendor as u16 == r::VENDOR_ID && (device as u16 == r::DEVICE_ID || device as u16 == r::DEVICE_ID_82574LA) {
            " (Intel 82574L)"
        } else {
            " (not an 82574L: decoding as one anyway)"
        }
    );
    let layout = dump_layout();
    let mut all_ones = 0usize;
    let mut read = 0usize;
    let mut values: Vec<(RegInfo, Option<u32>)> = Vec::with_capacity(layout.len());
    for reg in layout {
        let readable = reg.access != Access::Wo && (reg.access != Access::Rc || clear);
        let v = readable.then(|| b.read32(r::BAR_REGS, u64::from(reg.offset)));
        if let Some(v) = v {
            read += 1;
            all_ones += usize::from(v == u32::MAX);
        }
        values.push((reg, v));
    }
    // STATUS answered, but everything else all-ones: the device went away during the dump.
    if read > 8 && all_ones + 1 >= read {
        let mut head = String::new();
        let _ = writeln!(
            head,
            "nicqual regs: {spec}: {all_ones} of {read} registers read all-ones: the device stopped answering during the dump; values are not trustworthy"
        );
        o.insert_str(0, &head);
    }
    if raw {
        for (reg, v) in &values {
            match v {
                Some(v) => {
                    let _ = writeln!(o, "0x{:05x} 0x{v:08x}", reg.offset);
                }
                None => {
                    let _ = writeln!(o, "0x{:05x} ----------", reg.offset);
                }
            }
        }
        return (o, all_ones + 1 < read);
    }
    let mut i = 0;
    while i < values.len() {
        let (reg, v) = &values[i];
        // Arrays without fields (MTA, VFTA): eight per line.
        if let Some(base) = reg.name.strip_suffix(']').and_then(|n| n.split_once('[')).map(|(b, _)| b) {
            let group: Vec<&(RegInfo, Option<u32>)> =
                values[i..].iter().take(8).take_while(|(g, _)| g.name.starts_with(&format!("{base}["))).collect();
            let last = &group[group.len() - 1].0;
            let first_i = reg.name.trim_start_matches(base);
            let last_i = last.name.trim_start_matches(base);
            let words: Vec<String> =
                group.iter().map(|(_, v)| v.map_or("--------".into(), |v| format!("{v:08x}"))).collect();
            let _ = writeln!(
                o,
                "0x{:05x}: {:<13} {}",
                reg.offset,
                format!("{base}{}..{}", first_i.trim_end_matches(']'), last_i.trim_start_matches('[')),
                words.join(" ")
            );
            i += group.len();
            continue;
        }
        let tag = match reg.access {
            Access::Rw => "",
            Access::Ro => "  (read-only)",
            Access::Wo => "  (write-only: not read)",
            Access::Rc if clear => "  (read clears)",
            Access::Rc => "  (read clears: not read; --clear reads it)",
            Access::W1c => "  (write 1 to clear)",
        };
        match v {
            Some(v) => {
                let _ = writeln!(o, "0x{:05x}: {:<13} 0x{v:08x}{tag}", reg.offset, reg.name);
                for line in field_lines(reg, *v) {
                    let _ = writeln!(o, "          {line}");
                }
            }
            None => {
                let _ = writeln!(o, "0x{:05x}: {:<13} ----------{tag}", reg.offset, reg.name);
            }
        }
        i += 1;
    }
    (o, all_ones + 1 < read)
}

fn bits(f: &FieldDesc) -> String {
    if f.width == 1 { format!("[{}]", f.lsb) } else { format!("[{}:{}]", f.lsb + f.width - 1, f.lsb) }
}

/// Decoded fields of one register value, with meanings where the field has one.
fn field_lines(reg: &RegInfo, v: u32) -> Vec<String> {
    reg.fields
        .iter()
        .map(|f| (*f, f.get(v)))
        .map(|(f, x)| {
            let meaning = meaning(reg.offset, &f, x);
            let val = if f.width == 1 { x.to_string() } else { format!("{x:#x}") };
            format!("{:<20} {:<8} {val}{}", f.name, bits(&f), meaning.map(|m| format!("  ({m})")).unwrap_or_default())
        })
        .collect()
}

fn meaning(offset: u32, f: &FieldDesc, x: u32) -> Option<String> {
    match (offset, f.name) {
        (r::IVAR, n) if f.width == 4 => {
            let e = IvarEntry::ALL.into_iter().find(|e| e.name() == n)?;
            Some(match r::ivar_vector(x << e.shift(), e) {
                Some(vec) => format!("valid, MSI-X vector {vec}"),
                None => "not routed".into(),
            })
        }
        (r::STATUS, "SPEED") | (r::CTRL, "SPD_SEL") => {
            Some(["10 Mb/s", "100 Mb/s", "1000 Mb/s", "1000 Mb/s"][x as usize & 3].into())
        }
        (r::STATUS, "LU") => Some(if x == 1 { "link up" } else { "link down" }.into()),
        (r::STATUS, "FD") => Some(if x == 1 { "full duplex" } else { "half duplex" }.into()),
        (o, "INTERVAL") if o == r::ITR || (r::eitr(0)..=r::eitr(4)).contains(&o) => {
            (x != 0).then(|| format!("{} ns, {} interrupts/s max", x * 256, 1_000_000_000 / (u64::from(x) * 256)))
        }
        (r::RCTL, "BSIZE") => None,
        (_, "LEN_BYTES") => Some(format!("{} descriptors", x / 16)),
        (r::EERD, "ADDR") | (r::EEWR, "ADDR") => Some(format!("word {x:#x}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> EmulatedBackend<Model> {
        EmulatedBackend::new(Model::new(Config::default()), "model:i82574l")
    }

    #[test]
    fn dump_names_every_register_and_decodes_fields() {
        let (text, ok) = dump(&mut model(), "model:i82574l", false, false);
        assert!(ok);
        for (o, n) in r::named_registers() {
            assert!(text.contains(&format!("0x{o:05x}: {n:<13} ")), "{n} missing:\n{text}");
        }
        assert!(text.contains("0x05200: MTA[0..7]"), "{text}");
        assert!(text.lines().any(|l| l.trim_start().starts_with("RST ") && l.contains("[26]")));
        assert!(text.contains("(write-only: not read)"));
    }

    #[test]
    fn raw_is_offset_value_pairs() {
        let (text, ok) = dump(&mut model(), "model:i82574l", true, true);
        assert!(ok);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines.len(), dump_layout().len());
        let status = lines.iter().find(|l| l.starts_with("0x00008 ")).unwrap();
        let v = u32::from_str_radix(status.trim_start_matches("0x00008 0x"), 16).unwrap();
        assert_ne!(v, u32::MAX);
    }

    #[test]
    fn all_ones_device_says_so_first_and_dumps_nothing() {
        let mut b = model();
        b.device_mut().arm_faults("surprise-removal".parse().unwrap());
        let (text, ok) = dump(&mut b, "model:i82574l", false, false);
        assert!(!ok);
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("nicqual regs: model:i82574l reads all-ones"), "{text}");
    }

    /// A dump changes nothing: read-to-clear registers are listed, not read, unless
    /// `--clear` asks for it.
    #[test]
    fn read_to_clear_registers_are_read_only_with_clear() {
        let mut b = model();
        let cmd = b.config_read(pci::COMMAND, 2).unwrap();
        b.config_write(pci::COMMAND, 2, cmd | u32::from(pci::COMMAND_MEMORY)).unwrap();
        b.write32(r::BAR_REGS, u64::from(r::ICS), 1 << 24);
        let (text, ok) = dump(&mut b, "model:i82574l", false, false);
        assert!(ok && text.contains("(read clears: not read; --clear reads it)"), "{text}");
        assert_ne!(b.read32(r::BAR_REGS, u64::from(r::ICR)), 0, "the cause survived the dump");
        b.write32(r::BAR_REGS, u64::from(r::ICS), 1 << 24);
        let _ = dump(&mut b, "model:i82574l", false, true);
        assert_eq!(b.read32(r::BAR_REGS, u64::from(r::ICR)), 0, "--clear read (and so cleared) ICR");
    }

    #[test]
    fn phy_and_config_sections() {
        let mut b = model();
        let cfg = config_dump(&mut b);
        assert!(cfg.lines().nth(2).unwrap().starts_with("00: 86 80 d3 10"), "{cfg}");
        assert_eq!(cfg.lines().count(), 18, "blank line, title, 16 rows");
        let phy = phy_dump(|reg| if reg < 3 { Ok(reg as u16) } else { Err("MDIC timeout".into()) });
        assert!(phy.contains(" 1 BMSR     0x0001") && phy.contains(" 3 PHYID2   not read: MDIC timeout"), "{phy}");
    }
}
