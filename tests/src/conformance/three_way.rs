//! Three oracles: every case on our model, QEMU 7.2 (host, real time) and QEMU 11.1
//! (Debian forky root, `-accel qtest`, virtual time). A case's `known` row documents its
//! difference with QEMU 7.2; [`KNOWN_QEMU11`] documents the differences that remain on
//! QEMU 11.1, by case name, so a case that 11.1 answers like the model needs no entry.

use super::{Case, Fresh, Row, Verdict, judge, run_side};
use std::fmt::Write;

/// Case name → row of docs/CONFORMANCE.md explaining QEMU 11.1's different answer. Every
/// other case must agree with the model on 11.1 (and a row listed here that agrees is
/// reported as stale, as for 7.2).
pub const KNOWN_QEMU11: &[(&str, &str)] = &[
    ("reset.queue-control", "row 10"),
    ("icr.asserted-bit", "row G3"),
    ("iam.iame-icr-read-masks", "row 9"),
    ("eiac.auto-clear", "row 11"),
    ("msix.table-readback", "row 4"),
    ("eerd.id-words", "row 5"),
    ("eerd.out-of-range", "row 6"),
    ("mdic.bmsr-link", "row 7"),
    ("rx.checksum-offload-off", "row 14"),
    ("rx.head-stops-at-tail", "row 13"),
    ("rx.packet-split-writeback", "row 12"),
    ("reset.status-at-time-0", "row G1"),
    ("eerd.word-03", "row G2"),
    ("eerd.word-05", "row G2"),
    ("q1.tx-arbitration", "row 20"),
    ("q1.rxdctl0-write-and-rxdctl1", "row 21"),
    ("ims.valid-mask", "row 22"),
    ("imc.clears-ims", "row 22"),
];

/// The documented QEMU 11.1 difference of `case`, if any.
pub fn known_qemu11(case: &str) -> Option<&'static str> {
    KNOWN_QEMU11.iter().find(|(n, _)| *n == case).map(|(_, k)| *k)
}

/// Result of one case on the three devices.
#[derive(Debug, Clone)]
pub struct Row3 {
    pub name: &'static str,
    pub ours: String,
    pub qemu72: String,
    pub qemu11: String,
    /// QEMU 7.2 against the model (documented by the case's `known`).
    pub v72: Verdict,
    /// QEMU 11.1 against the model (documented by [`KNOWN_QEMU11`]).
    pub v11: Verdict,
}

impl Row3 {
    /// Both comparisons acceptable (agree, or differ as documented).
    pub fn ok(&self) -> bool {
        self.v72.ok() && self.v11.ok()
    }
}

/// Run `case` on ours and on QEMU 11.1 only, judged by [`KNOWN_QEMU11`].
pub fn run_case_qemu11(case: &Case, ours: &mut Fresh, qemu11: &mut Fresh) -> Row {
    let (ours, theirs, verdict) = judge(&run_side(case, ours), run_side(case, qemu11), known_qemu11(case.name));
    Row { name: case.name, ours, theirs, verdict }
}

/// Run `case` once on a fresh device of each of the three and compare each QEMU with ours.
pub fn run_case3(case: &Case, ours: &mut Fresh, qemu72: &mut Fresh, qemu11: &mut Fresh) -> Row3 {
    let o = run_side(case, ours);
    let (t72, t11) = (run_side(case, qemu72), run_side(case, qemu11));
    let (ours_text, q72, v72) = judge(&o, t72, case.known);
    let (_, q11, v11) = judge(&o, t11, known_qemu11(case.name));
    Row3 { name: case.name, ours: ours_text, qemu72: q72, qemu11: q11, v72, v11 }
}

/// The three-way table: case, ours, QEMU 7.2, QEMU 11.1, and each QEMU's verdict.
pub fn table3(rows: &[Row3]) -> String {
    let wn = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let w = rows.iter().map(|r| r.ours.len().max(r.qemu72.len()).max(r.qemu11.len())).max().unwrap_or(4).clamp(9, 48);
    let mut s =
        format!("{:<wn$}  {:<w$}  {:<w$}  {:<w$}  7.2 / 11.1 verdict\n", "case", "ours", "QEMU 7.2", "QEMU 11.1");
    s.push_str(&"-".repeat(wn + 3 * w + 26));
    s.push('\n');
    for r in rows {
        let same = |t: &str| if t == r.ours { "=".to_string() } else { t.to_string() };
        let _ = writeln!(
            s,
            "{:<wn$}  {:<w$}  {:<w$}  {:<w$}  {} / {}",
            r.name,
            r.ours,
            same(&r.qemu72),
            same(&r.qemu11),
            r.v72.as_str(),
            r.v11.as_str()
        );
    }
    s.push_str("(\"=\": the same answer as ours)\n");
    s
}
