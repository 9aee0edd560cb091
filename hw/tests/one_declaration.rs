//! Registers are declared once.
//!
//! What this test enforces, exactly:
//!
//! 1. **Tables are consistent.** In every register space — the 82574L BAR0
//!    ([`i82574::REGISTERS`]), each enic control block (WQ = shared queue part + WQ tail,
//!    RQ = shared part + RQ tail, CQ, INTR_CTRL, DEVCMD; offsets relative to the block) and the bnx2x
//!    doorbell BAR — no two register instances share an offset, no two share a name,
//!    every offset is dword aligned, and every register's fields fit in 32 bits without
//!    overlapping. The 82574L's pattern-test registers are writable and their masks are the
//!    table's.
//!
//! 2. **No offset is declared outside a table.** In the NIC sources listed in [`SCANNED`]
//!    (comments, string literals and the `registers!` invocations themselves removed
//!    first), no `const NAME: u32 = 0x…` (82574L) or `const NAME: u64 = 0x…` (enic, bnx2x)
//!    declares a value that is a register offset of that NIC's tables (except the few
//!    constants in [`NOT_OFFSETS`], bits and codes whose value merely equals an offset).
//!
//! 3. **No offset literal is used as a register address.** In the same sources, a hex
//!    literal whose value is a register offset of that NIC may not appear where a register
//!    address goes: as the address argument of a register accessor ([`ADDRESS_ARGS`]:
//!    `read(off)`, `write(off, v)`, `set_reg(off, v)`, `read32(bar, off)`, `rd(dev, off)`,
//!    ...), as a match-arm pattern (`0x00 =>`), compared against with `==`/`!=`, or as a
//!    range bound (`0x05400..`). For the enic and bnx2x, whose block-relative offsets are
//!    small numbers, `base + 0x…` counts as an address too. Values written into registers
//!    (masks, patterns, reset values) are in none of these positions and are not flagged.
//!
//! A hit names the file, line, literal and the register(s) it equals: use the generated
//! constant (or accessor function) instead, or declare the register in its table.

use nicqual_hw::regs::{self, Access, RegisterDesc};
use nicqual_hw::{bnx2x, enic, i82574};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Which NIC's offsets apply to which sources (paths relative to the workspace root).
const SCANNED: &[(Nic, &[&str])] = &[
    (
        Nic::I82574,
        &[
            "hw/src/i82574.rs",
            "hw/src/i82574",
            "hw/src/i82574_desc.rs",
            "device-model/src/i82574",
            "driver/nics/src/i82574",
            "driver/qualify/src/i82574",
            "tools/src/regs.rs",
        ],
    ),
    (Nic::Enic, &["hw/src/enic.rs", "device-model/src/enic.rs", "device-model/src/enic", "driver/nics/src/enic"]),
    (Nic::Bnx2x, &["hw/src/bnx2x.rs", "device-model/src/bnx2x", "driver/nics/src/bnx2x"]),
];

/// Constants whose hex value happens to equal a register offset but that are not offsets,
/// with what they are. Rule 2 exempts exactly these names.
const NOT_OFFSETS: &[(&str, &str)] = &[
    ("IVAR_INT_ALLOC_VALID", "bit 3 of an IVAR entry"),
    ("TXD_DTYP_CONTEXT", "transmit descriptor type 0 (context descriptor)"),
];

/// Register accessors and the index of their address argument.
const ADDRESS_ARGS: &[(&str, usize)] = &[
    ("read", 0),
    ("write", 0),
    ("reg", 0),
    ("set_reg", 0),
    ("peek", 0),
    ("reg_read", 0),
    ("reg_write", 0),
    ("reg_name", 0),
    ("register", 0),
    ("write_mask", 0),
    ("delay_reg_write", 0),
    ("wait_for", 0),
    ("reg_read32", 0),
    ("reg_write32", 0),
    ("read32", 1),
    ("write32", 1),
    ("bar_read32", 1),
    ("bar_write32", 1),
    ("rd", 1),
    ("w", 1),
    ("wr", 1),
    ("set", 1),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nic {
    I82574,
    Enic,
    Bnx2x,
}

impl Nic {
    /// The register spaces of the NIC, each as the tables that make it up.
    fn spaces(self) -> Vec<(String, Vec<&'static [RegisterDesc]>)> {
        match self {
            Nic::I82574 => vec![("82574L BAR0".into(), vec![i82574::REGISTERS])],
            Nic::Enic => enic::register_spaces().into_iter().map(|(n, t)| (format!("enic {n}"), t)).collect(),
            Nic::Bnx2x => bnx2x::register_spaces().into_iter().map(|(n, t)| (format!("bnx2x {n}"), t)).collect(),
        }
    }

    /// Offset -> names of the registers there, over all spaces of the NIC.
    fn offsets(self) -> BTreeMap<u64, Vec<String>> {
        let mut m: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for (space, tables) in self.spaces() {
            for (o, n) in regs::all_instances(&tables) {
                m.entry(u64::from(o)).or_default().push(format!("{space} {n}"));
            }
        }
        if self == Nic::Enic {
            // The high dwords of the 64-bit ring bases are addresses too.
            m.entry(enic::Q_RING_BASE_HI).or_default().push("enic ring_base (high dword)".into());
        }
        m
    }

    fn const_type(self) -> &'static str {
        match self {
            Nic::I82574 => "u32",
            Nic::Enic | Nic::Bnx2x => "u64",
        }
    }
}

#[test]
fn every_space_has_unique_offsets_and_names() {
    for nic in [Nic::I82574, Nic::Enic, Nic::Bnx2x] {
        for (space, tables) in nic.spaces() {
            let mut offsets = HashSet::new();
            let mut names = HashSet::new();
            for (o, n) in regs::all_instances(&tables) {
                assert!(offsets.insert(o), "{space}: offset {o:#07x} ({n}) declared twice");
                assert!(names.insert(n.clone()), "{space}: {n} declared twice");
                assert_eq!(o % 4, 0, "{space}: {n} at {o:#x} is not dword aligned");
            }
            assert!(!offsets.is_empty(), "{space} declares nothing");
        }
    }
}

#[test]
fn fields_fit_and_do_not_overlap() {
    for nic in [Nic::I82574, Nic::Enic, Nic::Bnx2x] {
        for (space, tables) in nic.spaces() {
            for d in tables.iter().flat_map(|t| t.iter()) {
                let mut seen = 0u32;
                for f in d.fields {
                    assert!(
                        f.width >= 1 && u32::from(f.lsb) + u32::from(f.width) <= 32,
                        "{space} {} {}",
                        d.name,
                        f.name
                    );
                    assert_eq!(seen & f.mask(), 0, "{space} {}.{} overlaps another field", d.name, f.name);
                    seen |= f.mask();
                }
                if d.access == Access::Ro || d.access == Access::Rc {
                    assert_eq!(d.mask, 0, "{space} {} cannot be written but has a writable mask", d.name);
                }
            }
        }
    }
}

#[test]
fn pattern_registers_come_from_the_table() {
    let pattern: Vec<_> = i82574::pattern_regs().collect();
    // The e1000e reg_test set: 19 registers (queue 0 of the rings, RAL0/RAH0, MTA[0..2]).
    assert_eq!(pattern.len(), 21);
    for p in &pattern {
        let f = i82574::register(p.offset).expect("pattern register in the table");
        assert_eq!((f.desc.mask, f.desc.access, f.static_name()), (p.mask, Access::Rw, p.name));
        assert_ne!(p.mask, 0, "{}", p.name);
    }
    let rah0 = pattern.iter().find(|p| p.offset == i82574::rah(0)).expect("RAH0 tested");
    assert_eq!((rah0.name, rah0.mask), ("RAH0", 0x8003_FFFF));
    assert_eq!(pattern.iter().filter(|p| p.name == "MTA[]").count(), 2);
}

#[test]
fn flag_types_are_the_declared_fields() {
    use i82574::fields::{ctrl, icr};
    assert_eq!(i82574::Ctrl::SPD_SEL.bits(), ctrl::SPD_SEL.mask());
    assert_eq!(i82574::Ctrl::all().bits(), ctrl::FIELDS.iter().fold(0, |a, f| a | f.mask()));
    assert_eq!(i82574::Icr::all().iter_names().count(), icr::FIELDS.len());
    let ctrl = i82574::register(i82574::CTRL).expect("CTRL");
    assert_eq!((ctrl.desc.reset, ctrl.desc.fields), (Some(0x0014_0241), ctrl::FIELDS));
}

// ---- source scan ---------------------------------------------------------------------------

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("hw/ has a parent").to_path_buf()
}

fn rust_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(p).expect("readable dir").map(|e| e.expect("dir entry").path()).collect();
        entries.sort();
        for e in entries {
            rust_files(&e, out);
        }
    } else if p.extension().is_some_and(|e| e == "rs") {
        out.push(p.to_path_buf());
    }
}

/// The source with comments, string/char literals and `registers!` bodies blanked out
/// (newlines kept, so line numbers stay right).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank = |c: u8| if c == b'\n' { b'\n' } else { b' ' };
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            while i < b.len() && !b[i..].starts_with(b"*/") {
                out.push(blank(b[i]));
                i += 1;
            }
            out.extend_from_slice(b"  ");
            i = (i + 2).min(b.len());
        } else if b[i] == b'r' && (b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#")) && !ident_before(b, i) {
            let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            let start = i;
            i += 2 + hashes;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i = (i + close.len()).min(b.len());
            out.extend(b[start..i].iter().map(|c| blank(*c)));
        } else if b[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    out.push(b' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(b' ');
            i += 1;
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            out.extend_from_slice(b"   ");
            i += 3;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            let end = b[i + 2..].iter().position(|c| *c == b'\'').map_or(b.len(), |p| i + 3 + p);
            out.extend(b[i..end].iter().map(|c| blank(*c)));
            i = end;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let mut s = String::from_utf8(out).expect("ascii blanks keep utf-8");
    // Blank the tables themselves.
    while let Some(start) = s.find("registers! {") {
        let open = start + "registers! ".len();
        let mut depth = 0usize;
        let mut end = s.len();
        for (k, c) in s[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let blanked: String = s[start..end].chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect();
        s.replace_range(start..end, &blanked);
    }
    s
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Every hex literal: (byte position, end position, value).
fn hex_literals(s: &str) -> Vec<(usize, usize, u64)> {
    let b = s.as_bytes();
    let mut v = Vec::new();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'0' && (b[i + 1] == b'x' || b[i + 1] == b'X') && !ident_before(b, i) {
            let mut j = i + 2;
            while j < b.len() && (b[j].is_ascii_hexdigit() || b[j] == b'_') {
                j += 1;
            }
            let digits: String = s[i + 2..j].chars().filter(|c| *c != '_').collect();
            let mut end = j;
            while end < b.len() && is_ident(b[end]) {
                end += 1; // type suffix
            }
            if let Ok(val) = u64::from_str_radix(&digits, 16) {
                v.push((i, end, val));
            }
            i = end;
        } else {
            i += 1;
        }
    }
    v
}

/// If the literal at `pos` is an argument of a call, (callee name, argument index).
fn call_argument(s: &str, pos: usize) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let mut depth = 0i32;
    let mut commas = 0usize;
    let mut i = pos;
    while i > 0 {
        i -= 1;
        match b[i] {
            b')' | b']' | b'}' => depth += 1,
            b'[' | b'{' if depth == 0 => return None,
            b'(' if depth == 0 => {
                let mut k = i;
                while k > 0 && b[k - 1] == b' ' {
                    k -= 1;
                }
                let end = k;
                while k > 0 && is_ident(b[k - 1]) {
                    k -= 1;
                }
                return (k < end).then(|| (s[k..end].to_string(), commas));
            }
            b'(' | b'[' | b'{' => depth -= 1,
            b',' if depth == 0 => commas += 1,
            b';' if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// Why the literal at `start..end` sits where a register address goes, if it does.
fn address_context(nic: Nic, s: &str, start: usize, end: usize) -> Option<String> {
    let before = s[..start].trim_end();
    let line_rest = s[end..].split('\n').next().unwrap_or("").trim_start();
    if let Some((f, arg)) = call_argument(s, start)
        && ADDRESS_ARGS.contains(&(f.as_str(), arg))
    {
        return Some(format!("address argument of {f}()"));
    }
    let rest = line_rest.trim_start_matches([')', ' ']);
    if rest.starts_with("=>") || (rest.starts_with('|') && rest.contains("=>")) {
        return Some("match-arm pattern".into());
    }
    if before.ends_with("==") || before.ends_with("!=") {
        return Some("compared with ==/!=".into());
    }
    if line_rest.starts_with("..") || before.ends_with("..") || before.ends_with("..=") {
        return Some("range bound".into());
    }
    if nic != Nic::I82574 && before.ends_with('+') {
        return Some("added to a block base".into());
    }
    None
}

/// `const NAME: <ty> = 0x…;` outside the tables, with the literal's position.
fn const_declaration(s: &str, start: usize, ty: &str) -> Option<String> {
    let line_start = s[..start].rfind('\n').map_or(0, |p| p + 1);
    let head = s[line_start..start].trim();
    let rest = head.strip_prefix("pub ").unwrap_or(head).trim_start();
    let rest = rest.strip_prefix("const ")?;
    let (name, after) = rest.split_once(':')?;
    let name = name.trim();
    (after.trim().strip_suffix('=')?.trim() == ty && !NOT_OFFSETS.iter().any(|(n, _)| *n == name))
        .then(|| name.to_string())
}

#[test]
fn no_register_offset_is_declared_or_used_outside_the_tables() {
    let root = workspace_root();
    let mut hits = Vec::new();
    let mut scanned = 0;
    for (nic, paths) in SCANNED {
        let offsets = nic.offsets();
        let mut files = Vec::new();
        for p in *paths {
            let path = root.join(p);
            assert!(path.exists(), "{p} is listed for the scan but does not exist");
            rust_files(&path, &mut files);
        }
        for file in files {
            let src = std::fs::read_to_string(&file).expect("readable source");
            let code = code_only(&src);
            scanned += 1;
            for (start, end, val) in hex_literals(&code) {
                let Some(names) = offsets.get(&val) else { continue };
                let why = const_declaration(&code, start, nic.const_type())
                    .map(|n| format!("declares {n} outside the register table"))
                    .or_else(|| address_context(*nic, &code, start, end));
                if let Some(why) = why {
                    let line = code[..start].matches('\n').count() + 1;
                    let rel = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
                    hits.push(format!(
                        "{rel}:{line}: {} ({why}) is the offset of {}",
                        &code[start..end],
                        names.join(", ")
                    ));
                }
            }
        }
    }
    assert!(scanned >= 15, "scanned only {scanned} files");
    assert!(hits.is_empty(), "register offsets outside the tables:\n{}", hits.join("\n"));
}

#[test]
fn the_scan_flags_what_it_should_and_nothing_else() {
    let flagged = |nic: Nic, src: &str| -> Vec<String> {
        let code = code_only(src);
        let offsets = nic.offsets();
        hex_literals(&code)
            .into_iter()
            .filter(|(_, _, v)| offsets.contains_key(v))
            .filter_map(|(s, e, _)| {
                const_declaration(&code, s, nic.const_type()).or_else(|| address_context(nic, &code, s, e))
            })
            .collect()
    };
    let i = Nic::I82574;
    assert_eq!(flagged(i, "pub const FCAL: u32 = 0x00028;").len(), 1);
    assert_eq!(flagged(i, "let v = self.read(0x00008)?;").len(), 1);
    assert_eq!(flagged(i, "b.read32(r::BAR_REGS, 0x000C0);").len(), 1);
    assert_eq!(flagged(i, "match off {\n    0x00100 => {}\n}").len(), 1);
    assert_eq!(flagged(i, "if (0x05400..0x05480).contains(&o) {}").len(), 1);
    assert_eq!(flagged(i, "if off == 0x00400 {}").len(), 1);
    // Values, masks, comments, strings and the tables themselves are not addresses.
    assert!(flagged(i, "self.write(r::IVAR, 0x8)?; w(&mut d, r::IVAR, 0x00008);").is_empty());
    assert!(flagged(i, "let m = v & 0x0000_FFFF; // read(0x00008)\nlet s = \"read(0x00008)\";").is_empty());
    assert!(flagged(i, "registers! {\n    static T: u32;\n    reg X = 0x00008, \"x\", Rw, mask 0;\n}").is_empty());
    let e = Nic::Enic;
    assert_eq!(flagged(e, "match r { 0x00 => 1, 0x04 => 2, _ => 0 }").len(), 2);
    assert_eq!(flagged(e, "b.write32(hw::BAR_REGS, o + 0x10, 0);").len(), 1);
    assert!(flagged(e, "pub const VNIC_RES_MAGIC: u32 = 0x766E_6963;").is_empty());
}
