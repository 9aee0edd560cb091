//! Differential conformance: every case on our 82574L model and on QEMU's e1000e, both
//! generations (7.2 from the host, 11.1 from the Debian forky root). Each must agree, or
//! differ exactly as docs/CONFORMANCE.md documents for that QEMU (and a documented
//! difference that no longer shows is an error too, so the document stays true).
//! Needs qemu-system-x86 and the forky root (`make deps`).

use nicqual_tests::conformance::{KNOWN_QEMU11, Row, Verdict, cases, run_case, run_case_qemu11, table};
use nicqual_tests::{fresh_model, fresh_qemu, fresh_qemu11};

#[test]
fn every_case_agrees_or_differs_as_documented() {
    let cases = cases();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    let rows: Vec<_> = cases.iter().map(|c| run_case(c, &mut fresh_model, &mut fresh_qemu)).collect();
    all_ok_or_documented(&rows, "QEMU 7.2", 90);
}

/// Every row agrees or differs as documented, and at least `min_agree` agree.
fn all_ok_or_documented(rows: &[Row], oracle: &str, min_agree: usize) {
    let text = table(rows);
    let bad: Vec<_> = rows.iter().filter(|r| !r.verdict.ok()).map(|r| r.name).collect();
    assert!(bad.is_empty(), "cases not agreeing with {oracle} and not documented: {bad:?}\n{text}");
    let agree = rows.iter().filter(|r| r.verdict == Verdict::Agree).count();
    assert!(agree >= min_agree, "{agree} agreements with {oracle}\n{text}");
}

#[test]
fn every_case_agrees_or_differs_as_documented_on_qemu11() {
    let rows: Vec<_> = cases().iter().map(|c| run_case_qemu11(c, &mut fresh_model, &mut fresh_qemu11)).collect();
    all_ok_or_documented(&rows, "QEMU 11.1", 90);
}

#[test]
fn qemu11_table_names_cases_and_rows_that_exist() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFORMANCE.md")).unwrap();
    let names: Vec<_> = cases().iter().map(|c| c.name).collect();
    for (case, row) in KNOWN_QEMU11 {
        assert!(names.contains(case), "KNOWN_QEMU11 names {case}, which is no case");
        let row = row.trim_start_matches("row ");
        assert!(doc.contains(&format!("| {row} |")), "{case}: {row} is not a row of docs/CONFORMANCE.md");
    }
}

#[test]
fn documented_differences_name_a_row_of_conformance_md() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFORMANCE.md")).unwrap();
    for c in cases() {
        if let Some(k) = c.known {
            let row = k.trim_start_matches("row ");
            assert!(doc.contains(&format!("| {row} |")), "{}: {k} is not a row of docs/CONFORMANCE.md", c.name);
        }
    }
}
