//! The 82574L register file as a table for dumps (`nicqual regs`, like `ethtool -d`):
//! every BAR0 register of [`REG_NAMES`] plus the arrays, with how a read
//! behaves and the bit fields to decode. Bit positions come from the same datasheet facts
//! as the bitflags above; flag registers reuse those bitflags instead of repeating them.

use super::*;

/// How reading a register behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read/write.
    Rw,
    /// Read-only.
    Ro,
    /// Write-only: reads return nothing meaningful; a dump does not read it.
    Wo,
    /// A read clears it (statistics, ICR): a dump reads it only when asked to.
    ReadClears,
}

/// A bit field: bits `lsb ..= lsb + width - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub lsb: u8,
    pub width: u8,
}

impl Field {
    pub const fn new(name: &'static str, lsb: u8, width: u8) -> Field {
        Field { name, lsb, width }
    }

    pub const fn mask(&self) -> u32 {
        if self.width >= 32 { u32::MAX } else { ((1u32 << self.width) - 1) << self.lsb }
    }

    pub const fn get(&self, value: u32) -> u32 {
        (value & self.mask()) >> self.lsb
    }

    /// Field from a (contiguous) bit mask.
    pub fn from_mask(name: &'static str, mask: u32) -> Field {
        Field { name, lsb: mask.trailing_zeros() as u8, width: mask.count_ones() as u8 }
    }
}

/// One register of the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegInfo {
    pub offset: u32,
    pub name: String,
    pub access: Access,
    pub fields: Vec<Field>,
}

const F: fn(&'static str, u8, u8) -> Field = Field::new;

fn flags<I: IntoIterator<Item = (&'static str, u32)>>(it: I) -> Vec<Field> {
    it.into_iter().map(|(n, m)| Field::from_mask(n, m)).collect()
}

fn ring_ctl(tx: bool) -> Vec<Field> {
    let mut v = vec![F("PTHRESH", 0, 6), F("HTHRESH", 8, 6), F("WTHRESH", 16, 6)];
    if tx {
        v.push(F("COUNT_DESC", 22, 1));
    }
    v.push(F("GRAN", 24, 1));
    v
}

/// Access of the register at `offset`.
pub fn access(offset: u32) -> Access {
    match offset {
        STATUS | CTRL_DUP => Access::Ro,
        IMC => Access::Wo,
        ICR => Access::ReadClears,
        o if (CRCERRS..=0x0412C).contains(&o) && !matches!(o, GORCL | GOTCL | TORL | TOTL) => Access::ReadClears,
        _ => Access::Rw,
    }
}

/// Bit fields of the register at `offset` (empty: shown as a plain value).
pub fn fields(offset: u32) -> Vec<Field> {
    let icr = || flags(Icr::all().iter_names().map(|(n, f)| (n, f.bits())));
    match offset {
        CTRL | CTRL_DUP => flags(Ctrl::all().iter_names().map(|(n, f)| (n, f.bits()))),
        STATUS => flags(Status::all().iter_names().map(|(n, f)| (n, f.bits()))),
        CTRL_EXT => flags(CtrlExt::all().iter_names().map(|(n, f)| (n, f.bits()))),
        ICR | ICS | IMS | IAM | EIAC => icr(),
        IVAR => {
            let mut v: Vec<Field> = Vec::new();
            for e in IvarEntry::ALL {
                v.push(Field::new(e.name(), e.shift() as u8, 4));
            }
            v.push(Field::from_mask("TX_INT_EVERY_WB", IVAR_TX_INT_EVERY_WB));
            v
        }
        ITR => vec![F("INTERVAL", 0, 16)],
        o if (eitr(0)..=eitr(4)).contains(&o) => vec![F("INTERVAL", 0, 16)],
        EERD | EEWR => vec![
            Field::from_mask("START", EERD_START),
            Field::from_mask("DONE", EERD_DONE),
            Field::new("ADDR", EERD_ADDR_SHIFT as u8, 14),
            Field::new("DATA", EERD_DATA_SHIFT as u8, 16),
        ],
        MDIC => vec![
            Field::from_mask("DATA", MDIC_DATA_MASK),
            Field::new("REGADD", MDIC_REGADD_SHIFT as u8, 5),
            Field::new("PHYADD", MDIC_PHYADD_SHIFT as u8, 5),
            Field::from_mask("OP_WRITE", MDIC_OP_WRITE),
            Field::from_mask("OP_READ", MDIC_OP_READ),
            Field::from_mask("READY", MDIC_READY),
            Field::from_mask("INT_EN", MDIC_INT_EN),
            Field::from_mask("ERROR", MDIC_ERROR),
        ],
        RCTL => vec![
            Field::from_mask("EN", RCTL_EN),
            Field::from_mask("SBP", RCTL_SBP),
            Field::from_mask("UPE", RCTL_UPE),
            Field::from_mask("MPE", RCTL_MPE),
            Field::from_mask("LPE", RCTL_LPE),
            Field::new("LBM", RCTL_LBM_SHIFT as u8, 2),
            Field::new("RDMTS", RCTL_RDMTS_SHIFT as u8, 2),
            Field::new("DTYP", RCTL_DTYP_SHIFT as u8, 2),
            F("MO", 12, 2),
            Field::from_mask("BAM", RCTL_BAM),
            Field::new("BSIZE", RCTL_BSIZE_SHIFT as u8, 2),
            F("VFE", 18, 1),
            F("CFIEN", 19, 1),
            F("CFI", 20, 1),
            F("DPF", 22, 1),
            F("PMCF", 23, 1),
            Field::from_mask("BSEX", RCTL_BSEX),
            Field::from_mask("SECRC", RCTL_SECRC),
            F("FLXBUF", 27, 4),
        ],
        TCTL => vec![
            Field::from_mask("EN", TCTL_EN),
            Field::from_mask("PSP", TCTL_PSP),
            F("CT", 4, 8),
            F("COLD", 12, 10),
            F("SWXOFF", 22, 1),
            F("RTLC", 24, 1),
            F("MULR", 28, 1),
        ],
        TIPG => vec![F("IPGT", 0, 10), F("IPGR1", 10, 10), F("IPGR2", 20, 10)],
        PBA => vec![F("RXA_KB", 0, 16), F("TXA_KB", 16, 16)],
        PSRCTL => vec![F("BSIZE0", 0, 7), F("BSIZE1", 8, 6), F("BSIZE2", 16, 6), F("BSIZE3", 24, 6)],
        RXCSUM => vec![F("PCSS", 0, 8), F("IPOFLD", 8, 1), F("TUOFLD", 9, 1), F("IPPCSE", 12, 1), F("PCSD", 13, 1)],
        RFCTL => vec![
            F("ISCSI_DIS", 0, 1),
            F("NFSW_DIS", 6, 1),
            F("NFSR_DIS", 7, 1),
            F("IPV6_DIS", 10, 1),
            F("IPV6_XSUM_DIS", 11, 1),
            Field::from_mask("ACK_DIS", RFCTL_ACK_DIS),
            F("ACK_DATA_DIS", 13, 1),
            F("IPFRSP_DIS", 14, 1),
            Field::from_mask("EXTEN", RFCTL_EXTEN),
            F("IPV6_EX_DIS", 16, 1),
            F("NEW_IPV6_EXT_DIS", 17, 1),
        ],
        RDTR | TIDV => vec![F("DELAY", 0, 16), F("FPD", 31, 1)],
        SWSM => vec![F("SMBI", 0, 1), F("SWESMBI", 1, 1), F("DRV_LOAD", 3, 1)],
        o if o == rxdctl(0) || o == rxdctl(1) => ring_ctl(false),
        o if o == txdctl(0) || o == txdctl(1) => ring_ctl(true),
        o if o == rdlen(0) || o == rdlen(1) || o == tdlen(0) || o == tdlen(1) => vec![F("LEN_BYTES", 0, 20)],
        o if (0x05400..0x05480).contains(&o) && o % 8 == 4 => {
            vec![F("RAH", 0, 16), F("ASEL", 16, 2), Field::from_mask("AV", RAH_AV)]
        }
        _ => Vec::new(),
    }
}

/// Every register a dump shows, in offset order: the named ones, RAL/RAH 0..15, MTA and
/// VFTA (128 dwords each).
pub fn dump_layout() -> Vec<RegInfo> {
    let mut v: Vec<RegInfo> = REG_NAMES
        .iter()
        .map(|(o, n)| RegInfo { offset: *o, name: (*n).to_string(), access: access(*o), fields: fields(*o) })
        .collect();
    for n in 0..16 {
        for (o, name) in [(ral(n), format!("RAL{n}")), (rah(n), format!("RAH{n}"))] {
            if !v.iter().any(|r| r.offset == o) {
                v.push(RegInfo { offset: o, name, access: Access::Rw, fields: fields(o) });
            }
        }
    }
    for i in 0..MTA_LEN {
        v.push(RegInfo { offset: MTA + 4 * i, name: format!("MTA[{i}]"), access: Access::Rw, fields: Vec::new() });
    }
    for i in 0..128 {
        v.push(RegInfo { offset: VFTA + 4 * i, name: format!("VFTA[{i}]"), access: Access::Rw, fields: Vec::new() });
    }
    v.sort_by_key(|r| r.offset);
    v.dedup_by_key(|r| r.offset);
    v
}

/// The decoded fields of `value`: (field, its value), every field listed.
pub fn decode(fields: &[Field], value: u32) -> Vec<(Field, u32)> {
    fields.iter().map(|f| (*f, f.get(value))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_registers_reuse_the_bitflags() {
        let f = fields(CTRL);
        let spd = f.iter().find(|f| f.name == "SPD_SEL").unwrap();
        assert_eq!((spd.lsb, spd.width), (8, 2));
        assert_eq!(f.iter().find(|f| f.name == "RST").unwrap().lsb, 26);
        let ivar = fields(IVAR);
        assert_eq!(ivar.iter().find(|f| f.name == "TxQ0").unwrap().get(0x800A_0908), 0x9);
        assert_eq!(fields(STATUS).iter().find(|f| f.name == "SPEED").unwrap().get(0x80283), 2);
    }

    #[test]
    fn fields_fit_in_32_bits_and_do_not_overlap() {
        for r in dump_layout() {
            let mut seen = 0u32;
            for f in &r.fields {
                assert!(f.width >= 1 && f.lsb as u32 + f.width as u32 <= 32, "{} {}", r.name, f.name);
                // CTRL/STATUS flags are disjoint as declared; so must every table be.
                assert_eq!(seen & f.mask(), 0, "{} {} overlaps", r.name, f.name);
                seen |= f.mask();
            }
        }
    }

    #[test]
    fn layout_covers_every_named_register_once() {
        let l = dump_layout();
        for (o, n) in REG_NAMES {
            assert_eq!(l.iter().filter(|r| r.offset == *o).count(), 1, "{n}");
        }
        assert_eq!(l.iter().filter(|r| r.name.starts_with("MTA[")).count(), 128);
        assert_eq!(access(ICR), Access::ReadClears);
        assert_eq!(access(GORCL), Access::Rw);
        assert_eq!(access(GORCH), Access::ReadClears);
        assert_eq!(access(IMC), Access::Wo);
    }
}
