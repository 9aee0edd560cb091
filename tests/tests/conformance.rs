//! Differential conformance: every case on our 82574L model and on QEMU's e1000e. Each
//! must agree, or differ exactly as docs/CONFORMANCE.md documents (and a documented
//! difference that no longer shows is an error too, so the document stays true).
//! Needs qemu-system-x86 (`make deps`).

use nicqual_tests::conformance::{Verdict, cases, run_case, table};
use nicqual_tests::{fresh_model, fresh_qemu};

#[test]
fn every_case_agrees_or_differs_as_documented() {
    let cases = cases();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    let rows: Vec<_> = cases.iter().map(|c| run_case(c, &mut fresh_model, &mut fresh_qemu)).collect();
    let text = table(&rows);
    let bad: Vec<_> = rows.iter().filter(|r| !r.verdict.ok()).map(|r| r.name).collect();
    assert!(bad.is_empty(), "cases not agreeing and not documented: {bad:?}\n{text}");
    let agree = rows.iter().filter(|r| r.verdict == Verdict::Agree).count();
    assert!(agree >= 90, "{agree} agreements\n{text}");
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
