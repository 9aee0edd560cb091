//! The register-touch log: every access a device model received for something it does
//! not implement (an offset no register table declares, a PHY page the model does not
//! know, a BAR the device has no behaviour behind). A driver that runs "cleanly" against
//! a model can still be relying on registers that silently read 0; this log is how a run
//! shows it. A guest run with Linux's own driver should leave it empty.
//!
//! The log is bounded: accesses are folded per (space, offset, direction) into one entry
//! with a count and the first and last value, at most [`TouchLog::MAX_ENTRIES`] entries;
//! accesses to further distinct places are only counted ([`TouchLog::dropped`]).

use std::fmt;

/// Where an unimplemented access landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum TouchSpace {
    /// PCI configuration space.
    Config,
    /// A memory or I/O BAR (offset inside it).
    Bar(u8),
    /// A PHY register reached through the MAC's MDIO interface (`offset` is the register
    /// number on this page).
    Phy { page: u16 },
}

impl fmt::Display for TouchSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TouchSpace::Config => f.write_str("config"),
            TouchSpace::Bar(b) => write!(f, "BAR{b}"),
            TouchSpace::Phy { page } => write!(f, "PHY page {page}"),
        }
    }
}

/// All accesses to one unimplemented place in one direction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Touch {
    pub space: TouchSpace,
    pub offset: u64,
    /// Datasheet name, when a table knows the offset (a named register with no behaviour
    /// in the model) — `None` for offsets no table declares.
    pub name: Option<&'static str>,
    pub write: bool,
    /// Value of the first access (written, or what the model answered).
    pub first_value: u32,
    /// Value of the latest access.
    pub last_value: u32,
    pub count: u64,
}

impl fmt::Display for Touch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.write { "write" } else { "read" };
        write!(f, "{} {:#07x}", self.space, self.offset)?;
        if let Some(n) = self.name {
            write!(f, " {n}")?;
        }
        write!(f, " {dir} {:#010x}", self.first_value)?;
        if self.count > 1 {
            write!(f, " (x{}, last {:#010x})", self.count, self.last_value)?;
        }
        Ok(())
    }
}

/// A bounded log of [`Touch`] entries.
#[derive(Debug, Clone, Default)]
pub struct TouchLog {
    entries: Vec<Touch>,
    dropped: u64,
}

impl TouchLog {
    /// Distinct (space, offset, direction) entries kept.
    pub const MAX_ENTRIES: usize = 256;

    /// Record one access.
    pub fn record(&mut self, space: TouchSpace, offset: u64, name: Option<&'static str>, write: bool, value: u32) {
        if let Some(t) = self.entries.iter_mut().find(|t| t.space == space && t.offset == offset && t.write == write) {
            t.count = t.count.saturating_add(1);
            t.last_value = value;
            return;
        }
        if self.entries.len() >= Self::MAX_ENTRIES {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        tracing::debug!(target: "nicqual::touch", "unimplemented {space} {offset:#x} {} {value:#010x}", if write { "write" } else { "read" });
        self.entries.push(Touch { space, offset, name, write, first_value: value, last_value: value, count: 1 });
    }

    /// The entries, in the order the places were first touched.
    pub fn entries(&self) -> &[Touch] {
        &self.entries
    }

    /// Accesses to places beyond [`Self::MAX_ENTRIES`] (counted, not kept).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.dropped == 0
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.dropped = 0;
    }

    /// One line: "touch log: empty", or the number of places and accesses.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "touch log: empty (every access reached modelled behaviour)".into();
        }
        let accesses: u64 = self.entries.iter().map(|t| t.count).fold(self.dropped, u64::saturating_add);
        format!(
            "touch log: {} unimplemented place(s), {accesses} access(es){}",
            self.entries.len(),
            if self.dropped > 0 { format!(" ({} beyond the kept entries)", self.dropped) } else { String::new() }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_repeats_and_bounds_distinct_places() {
        let mut log = TouchLog::default();
        log.record(TouchSpace::Bar(0), 0x5B58, None, true, 1);
        log.record(TouchSpace::Bar(0), 0x5B58, None, true, 3);
        log.record(TouchSpace::Bar(0), 0x5B58, None, false, 0);
        assert_eq!(log.entries().len(), 2);
        assert_eq!(log.entries()[0].count, 2);
        assert_eq!(log.entries()[0].last_value, 3);
        assert_eq!(log.entries()[0].to_string(), "BAR0 0x05b58 write 0x00000001 (x2, last 0x00000003)");
        for off in 0..(TouchLog::MAX_ENTRIES as u64 + 10) {
            log.record(TouchSpace::Phy { page: 9 }, off, None, false, 0);
        }
        assert_eq!(log.entries().len(), TouchLog::MAX_ENTRIES);
        assert_eq!(log.dropped(), 12);
        assert!(log.summary().contains("beyond the kept entries"), "{}", log.summary());
        log.clear();
        assert!(log.is_empty());
    }
}
