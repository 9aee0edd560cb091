//! Register tables: every register of a register space declared once, with its offset,
//! datasheet name, access, writable mask, reset value and bit fields.
//!
//! `registers!` declares a space. From one declaration per register it generates the
//! offset constant (or, for a register array, its accessor function) that driver and model
//! code use by name, and one [`RegisterDesc`] in the space's table. `fields!` declares the
//! bit fields of a register (and, for flag registers, the `bitflags` type) that a table
//! entry refers to. Everything that needs a fact about a register — the model's writable
//! masks and reset values, the driver's register pattern test, `nicqual regs` — reads the
//! table; nothing repeats an offset.
//!
//! Arrays are declared once with their stride: either with a name per instance
//! (`RDBAL0`, `RDBAL1`; small arrays whose instances the datasheet and the dump name
//! individually) or as an indexed range (`MTA[0]` .. `MTA[127]`).

/// What a read and a write of a register do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read/write: bits in the writable mask hold what was written.
    Rw,
    /// Read-only: writes are ignored.
    Ro,
    /// Read-to-clear (statistics, ICR): a read returns the value and clears it.
    Rc,
    /// Write-1-to-clear: writing a 1 clears that bit.
    W1c,
    /// Write-only: reads return nothing meaningful.
    Wo,
}

impl Access {
    /// True when a read has a side effect (clears the register).
    pub const fn read_clears(self) -> bool {
        matches!(self, Access::Rc)
    }

    /// True when a write stores (part of) the value written.
    pub const fn stores_writes(self) -> bool {
        matches!(self, Access::Rw | Access::Wo)
    }
}

/// A bit field: bits `lsb ..= lsb + width - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldDesc {
    pub name: &'static str,
    pub lsb: u8,
    pub width: u8,
}

impl FieldDesc {
    /// The field of bits `hi ..= lo` (datasheet notation `[hi:lo]`).
    pub const fn bits(name: &'static str, hi: u8, lo: u8) -> FieldDesc {
        FieldDesc { name, lsb: lo, width: hi - lo + 1 }
    }

    /// The field's bits in place.
    pub const fn mask(&self) -> u32 {
        if self.width >= 32 { u32::MAX } else { ((1u32 << self.width) - 1) << self.lsb }
    }

    /// The field's value in `value`, shifted down.
    pub const fn get(&self, value: u32) -> u32 {
        (value & self.mask()) >> self.lsb
    }

    /// Bit position of the field's least significant bit, as a shift count.
    pub const fn shift(&self) -> u32 {
        self.lsb as u32
    }
}

/// How a table entry's instances are laid out and named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One register.
    Single,
    /// Instance `i` sits at `offset + i * stride` and is called `names[i]` (`RDBAL0`).
    Named { stride: u32, names: &'static [&'static str] },
    /// `count` instances at `offset + i * stride`, called `NAME[i]`; `any` names them all
    /// (`MTA[]`) where one static name is needed.
    Indexed { stride: u32, count: u32, any: &'static str },
}

/// One declared register (or register array).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterDesc {
    /// Datasheet mnemonic (for arrays the array's name: `RDBAL`, `MTA`).
    pub name: &'static str,
    /// Datasheet title.
    pub title: &'static str,
    /// Offset of the register (of instance 0 for arrays) in its space.
    pub offset: u32,
    pub shape: Shape,
    pub access: Access,
    /// Bits a write stores (read back what was written).
    pub mask: u32,
    /// Value after reset, where the datasheet (or the modelled device) gives one.
    pub reset: Option<u32>,
    pub fields: &'static [FieldDesc],
    /// How many instances (from 0) the register pattern test writes; 0: not tested.
    pub pattern: u32,
}

impl RegisterDesc {
    /// Number of instances (1 for a single register).
    pub const fn count(&self) -> u32 {
        match self.shape {
            Shape::Single => 1,
            Shape::Named { names, .. } => names.len() as u32,
            Shape::Indexed { count, .. } => count,
        }
    }

    const fn stride(&self) -> u32 {
        match self.shape {
            Shape::Single => 0,
            Shape::Named { stride, .. } | Shape::Indexed { stride, .. } => stride,
        }
    }

    /// Offset of instance `i`, if there is one.
    pub const fn offset_of(&self, i: u32) -> Option<u32> {
        if i < self.count() { Some(self.offset + i * self.stride()) } else { None }
    }

    /// The instance at `offset`, if `offset` is one of this entry's registers.
    pub const fn index_of(&self, offset: u32) -> Option<u32> {
        if offset < self.offset {
            return None;
        }
        let rel = offset - self.offset;
        let stride = self.stride();
        if stride == 0 {
            return if rel == 0 { Some(0) } else { None };
        }
        if !rel.is_multiple_of(stride) || rel / stride >= self.count() { None } else { Some(rel / stride) }
    }

    /// A static name for instance `i`: its own name, or `NAME[]` for an indexed array.
    pub fn static_name(&self, i: u32) -> &'static str {
        match self.shape {
            Shape::Single => self.name,
            Shape::Named { names, .. } => names.get(i as usize).copied().unwrap_or(self.name),
            Shape::Indexed { any, .. } => any,
        }
    }

    /// The full name of instance `i`: `CTRL`, `RDBAL1`, `MTA[7]`.
    pub fn instance_name(&self, i: u32) -> String {
        match self.shape {
            Shape::Indexed { .. } => format!("{}[{i}]", self.name),
            _ => self.static_name(i).to_string(),
        }
    }

    /// Every instance: (index, offset).
    pub fn instances(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..self.count()).filter_map(|i| self.offset_of(i).map(|o| (i, o)))
    }
}

/// One register instance found in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub desc: &'static RegisterDesc,
    pub index: u32,
    pub offset: u32,
}

impl Found {
    pub fn static_name(&self) -> &'static str {
        self.desc.static_name(self.index)
    }
}

/// The register instance at `offset` in `table`.
pub fn by_offset(table: &'static [RegisterDesc], offset: u32) -> Option<Found> {
    table.iter().find_map(|desc| desc.index_of(offset).map(|index| Found { desc, index, offset }))
}

/// The register instance called `name` in `table`: a single register's name, an instance
/// name (`RDT0`) or `NAME[i]` of an indexed array.
pub fn by_name(table: &'static [RegisterDesc], name: &str) -> Option<Found> {
    table.iter().find_map(|desc| {
        let index = match desc.shape {
            Shape::Single => (desc.name == name).then_some(0),
            Shape::Named { names, .. } => names.iter().position(|n| *n == name).map(|i| i as u32),
            Shape::Indexed { .. } => name
                .strip_prefix(desc.name)
                .and_then(|s| s.strip_prefix('['))
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u32>().ok()),
        }?;
        desc.offset_of(index).map(|offset| Found { desc, index, offset })
    })
}

/// Every register instance of the tables of one space, as (offset, name); for the
/// uniqueness checks and dumps.
pub fn all_instances<'a>(tables: &'a [&'static [RegisterDesc]]) -> impl Iterator<Item = (u32, String)> + 'a {
    tables.iter().flat_map(|t| t.iter()).flat_map(|d| d.instances().map(move |(i, o)| (o, d.instance_name(i))))
}

/// `[lo, hi][0]`-style helper for [`fields!`]: the low bit of `[hi]` or `[hi:lo]`.
#[doc(hidden)]
pub const fn lsb_of(bits: &[u8]) -> u8 {
    match bits {
        [hi] => *hi,
        [_, lo] => *lo,
        _ => 0,
    }
}

/// Declares the bit fields of a register as a module of [`FieldDesc`] constants plus
/// `FIELDS` (in declaration order); `as flags Name` also declares a `bitflags` type whose
/// flags are the same fields.
///
/// ```ignore
/// fields! { pub mod rctl { EN [1], LBM [7:6] } }
/// fields! { pub mod ctrl as flags Ctrl { FD [0], SPD_SEL [9:8] } }
/// ```
macro_rules! fields {
    ($(#[$($m:tt)*])* pub mod $module:ident as flags $flags:ident {
        $($(#[$($fm:tt)*])* $f:ident [$hi:literal $(: $lo:literal)?]),* $(,)?
    }) => {
        $crate::regs::fields! { $(#[$($m)*])* pub mod $module { $($(#[$($fm)*])* $f [$hi $(: $lo)?]),* } }
        bitflags::bitflags! {
            $(#[$($m)*])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub struct $flags: u32 {
                $($(#[$($fm)*])* const $f = $module::$f.mask();)*
            }
        }
    };
    ($(#[$m:meta])* pub mod $module:ident {
        $($(#[$fm:meta])* $f:ident [$hi:literal $(: $lo:literal)?]),* $(,)?
    }) => {
        $(#[$m])*
        #[allow(non_upper_case_globals)]
        pub mod $module {
            use $crate::regs::FieldDesc;
            $(
                $(#[$fm])*
                pub const $f: FieldDesc =
                    FieldDesc::bits(stringify!($f), $hi, $crate::regs::lsb_of(&[$hi $(, $lo)?]));
            )*
            /// Every field, in declaration order.
            pub const FIELDS: &[FieldDesc] = &[$($f),*];
        }
    };
}
pub(crate) use fields;

/// Declares a register space: one entry per register (or register array), ended by `;`.
///
/// ```ignore
/// registers! {
///     /// The table.
///     pub static REGISTERS: u32;
///     /// Single register: `pub const CTRL: u32`.
///     reg CTRL = 0x00000, "Device Control", Rw, mask 0xFFFF_FFFF, reset 0x0014_0241, fields ctrl;
///     /// Named instances: `pub const fn rdbal(n: u32) -> u32`.
///     regs RDBAL(RDBAL0, RDBAL1) = fn rdbal(u32) 0x02800 step 0x100, "...", Rw, mask 0xFFFF_FFF0, pattern 1;
///     /// Indexed array: `pub const MTA: u32`, `pub const MTA_LEN: u32`, `pub const MTA_STRIDE: u32`.
///     array MTA[MTA_LEN = 128, MTA_STRIDE = 4] = 0x05200, "Multicast Table Array", Rw, mask 0xFFFF_FFFF;
/// }
/// ```
///
/// The type after the table name is the type of the generated offset constants. Optional
/// parts, in this order: `reset <value>`, `pattern <instances>`, `fields <module>` (a
/// module declared with [`fields!`]).
macro_rules! registers {
    ($(#[$m:meta])* $vis:vis static $table:ident : $ty:ty; $($body:tt)*) => {
        $crate::regs::registers!(@munch ($(#[$m])* $vis $table $ty) [] $($body)*);
    };
    (@munch ($(#[$m:meta])* $vis:vis $table:ident $ty:ty) [$($descs:tt)*]) => {
        $(#[$m])*
        $vis static $table: &[$crate::regs::RegisterDesc] = &[$($descs)*];
    };
    (@munch ($($hdr:tt)*) [$($descs:tt)*]
        $(#[$doc:meta])*
        reg $name:ident = $off:literal, $title:literal, $access:ident, mask $mask:expr
        $(, reset $reset:expr)? $(, pattern $pat:literal)? $(, fields $fields:ident)?;
        $($tail:tt)*
    ) => {
        $(#[$doc])*
        pub const $name: $crate::regs::registers!(@ty $($hdr)*) = $off;
        $crate::regs::registers!(@munch ($($hdr)*) [$($descs)*
            $crate::regs::registers!(@desc $name, $title, $off, $crate::regs::Shape::Single, $access, $mask,
                [$($reset)?], [$($pat)?], [$($fields)?]),
        ] $($tail)*);
    };
    (@munch ($($hdr:tt)*) [$($descs:tt)*]
        $(#[$doc:meta])*
        regs $name:ident ($($inst:ident),+) = fn $func:ident ($idx:ty) $off:literal step $stride:literal,
        $title:literal, $access:ident, mask $mask:expr
        $(, reset $reset:expr)? $(, pattern $pat:literal)? $(, fields $fields:ident)?;
        $($tail:tt)*
    ) => {
        $(#[$doc])*
        #[allow(clippy::unnecessary_cast)]
        pub const fn $func(n: $idx) -> $crate::regs::registers!(@ty $($hdr)*) {
            $off + $stride * n as $crate::regs::registers!(@ty $($hdr)*)
        }
        $crate::regs::registers!(@munch ($($hdr)*) [$($descs)*
            $crate::regs::registers!(@desc $name, $title, $off, $crate::regs::Shape::Named { stride: $stride, names: &[$(stringify!($inst)),+] }, $access, $mask,
                [$($reset)?], [$($pat)?], [$($fields)?]),
        ] $($tail)*);
    };
    (@munch ($($hdr:tt)*) [$($descs:tt)*]
        $(#[$doc:meta])*
        array $name:ident [$len:ident = $count:literal, $stride_name:ident = $stride:literal] = $off:literal,
        $title:literal, $access:ident, mask $mask:expr
        $(, reset $reset:expr)? $(, pattern $pat:literal)? $(, fields $fields:ident)?;
        $($tail:tt)*
    ) => {
        $(#[$doc])*
        pub const $name: $crate::regs::registers!(@ty $($hdr)*) = $off;
        /// Number of instances of the array.
        pub const $len: $crate::regs::registers!(@ty $($hdr)*) = $count;
        /// Distance between instances of the array.
        pub const $stride_name: $crate::regs::registers!(@ty $($hdr)*) = $stride;
        $crate::regs::registers!(@munch ($($hdr)*) [$($descs)*
            $crate::regs::registers!(@desc $name, $title, $off, $crate::regs::Shape::Indexed {
                    stride: $stride,
                    count: $count,
                    any: concat!(stringify!($name), "[]"),
                }, $access, $mask,
                [$($reset)?], [$($pat)?], [$($fields)?]),
        ] $($tail)*);
    };
    (@desc $name:ident, $title:literal, $off:literal, $shape:expr, $access:ident, $mask:expr,
        [$($reset:expr)?], [$($pat:literal)?], [$($fields:ident)?]) => {
        $crate::regs::RegisterDesc {
            name: stringify!($name),
            title: $title,
            offset: $off,
            shape: $shape,
            access: $crate::regs::Access::$access,
            mask: $mask,
            reset: $crate::regs::registers!(@opt $($reset)?),
            fields: $crate::regs::registers!(@fields $($fields)?),
            pattern: $crate::regs::registers!(@pat $($pat)?),
        }
    };
    (@ty $(#[$m:meta])* $vis:vis $table:ident $ty:ty) => { $ty };
    (@opt) => { None };
    (@opt $e:expr) => { Some($e) };
    (@pat) => { 0 };
    (@pat $e:literal) => { $e };
    (@fields) => { &[] };
    (@fields $f:ident) => { $f::FIELDS };
}
pub(crate) use registers;

#[cfg(test)]
mod tests {
    use super::*;

    fields! { pub mod demo { LOW [0], MID [7:4], TOP [31] } }

    registers! {
        static DEMO: u64;
        reg A = 0x10, "A", Rw, mask 0xFF, reset 3, pattern 1, fields demo;
        regs B(B0, B1) = fn b(u16) 0x100 step 0x20, "B", Ro, mask 0;
        array C[C_LEN = 4, C_STRIDE = 4] = 0x200, "C", Rc, mask 0;
    }

    #[test]
    fn macro_generates_constants_and_table() {
        assert_eq!((A, b(1), C, C_LEN, C_STRIDE), (0x10u64, 0x120u64, 0x200u64, 4u64, 4u64));
        assert_eq!(DEMO.len(), 3);
        assert_eq!(DEMO[0].fields, demo::FIELDS);
        assert_eq!((demo::MID.lsb, demo::MID.width, demo::MID.mask()), (4, 4, 0xF0));
        assert_eq!(demo::TOP.mask(), 0x8000_0000);
        assert_eq!((DEMO[0].reset, DEMO[0].pattern, DEMO[1].reset, DEMO[1].pattern), (Some(3), 1, None, 0));
    }

    #[test]
    fn lookups_resolve_instances_and_nothing_else() {
        let f = by_offset(DEMO, 0x120).map(|f| (f.desc.name, f.index, f.static_name()));
        assert_eq!(f, Some(("B", 1, "B1")));
        assert_eq!(by_offset(DEMO, 0x140), None);
        assert_eq!(by_offset(DEMO, 0x110), None);
        assert_eq!(by_offset(DEMO, 0x20C).map(|f| (f.index, f.static_name())), Some((3, "C[]")));
        assert_eq!(by_offset(DEMO, 0x210), None);
        assert_eq!(by_name(DEMO, "C[2]").map(|f| f.offset), Some(0x208));
        assert_eq!(by_name(DEMO, "C[4]"), None);
        assert_eq!(by_name(DEMO, "B0").map(|f| f.offset), Some(0x100));
        assert_eq!(by_name(DEMO, "A").map(|f| f.offset), Some(0x10));
        assert_eq!(DEMO[2].instance_name(1), "C[1]");
        assert_eq!(all_instances(&[DEMO]).count(), 7);
    }
}
