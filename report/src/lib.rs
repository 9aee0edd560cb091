//! nicqual run records and their writers.
//!
//! A [`RunRecord`] is what one run found: tool, host, backend, device identity, seed and
//! fault plan, every check (result, reason, measurements, the registers and vectors
//! involved, what to do), and optional timelines (interrupt deliveries per vector,
//! bounce-pool occupancy, jumbo-frame matrix, throughput per frame size). Any code that
//! runs checks builds one; the writers render it:
//!
//! * JSON ([`RunRecord::to_json`], schema [`SCHEMA`], docs/REPORT.md),
//! * JUnit XML ([`junit::render`]),
//! * KTAP v1 as kselftest prints it ([`ktap::render`]),
//! * LAVA test cases, a script of `lava-test-case` calls ([`lava::render`]),
//! * one self-contained HTML page with inline SVG plots ([`html::render`]).
//!
//! This crate depends on nothing else of nicqual, so any crate can produce records.

pub mod bench;
pub mod diff;
pub mod html;
pub mod junit;
pub mod ktap;
pub mod lava;
pub mod record;
pub mod svg;

pub use record::*;

/// `s` with every character that can end or break a line on a terminal or in a line-based
/// format replaced by a space: C0 and C1 controls (tab, CR, LF, VT, FF, NEL, ESC, ...),
/// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR. Used for the terminal table and
/// KTAP, where a record's text fields must not forge lines.
pub fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') { ' ' } else { c }).collect()
}
