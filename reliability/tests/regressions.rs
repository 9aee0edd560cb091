//! Replays every saved fuzz input (fuzz/regressions/<target>/*, fuzz/corpus/<target>/*)
//! through the same harness the fuzz target runs, under plain `cargo test`.

use nicqual_reliability::HARNESSES;
use std::path::PathBuf;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz").join(kind).join(target);
    let mut v: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for (target, run) in HARNESSES {
        for p in inputs(kind, target) {
            let data = std::fs::read(&p).unwrap();
            // A panic here names the input through the test's output; print it first.
            eprintln!("replay {}", p.display());
            if let Err(v) = run(&data) {
                panic!("{}: {v}", p.display());
            }
            n += 1;
        }
    }
    n
}

#[test]
fn every_regression_input_passes() {
    let n = replay("regressions");
    assert!(n > 0, "fuzz/regressions holds no input: the regression set is missing");
}

#[test]
fn every_corpus_seed_passes() {
    let n = replay("corpus");
    assert!(n >= HARNESSES.len(), "each fuzz target needs at least one corpus seed (found {n})");
}
