//! `nicqual diff` from the outside: a healthy run against a lost-vector run is a regression
//! (exit 1) naming exactly the checks that changed; the other way round is not.

use std::process::Command;

fn nicqual(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nicqual")).args(args).output().expect("run nicqual")
}

#[test]
fn healthy_against_lost_vector_lists_the_four_changed_checks() {
    let dir = std::env::temp_dir().join(format!("nicqual-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (h, l) = (dir.join("healthy.json"), dir.join("lost.json"));
    assert_eq!(nicqual(&["qualify", "--quiet", "--queues", "1", "--json", h.to_str().unwrap()]).status.code(), Some(0));
    let lost = ["qualify", "--quiet", "--queues", "1", "--fault", "lose-vector:1", "--json", l.to_str().unwrap()];
    assert_eq!(nicqual(&lost).status.code(), Some(1));
    let o = nicqual(&["diff", h.to_str().unwrap(), l.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let regressions: Vec<&str> =
        text.lines().filter(|l| l.ends_with("REGRESSION")).map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(regressions, ["msix-table[1]", "vector[TxQ0]", "irq-watchdog", "recovery"], "{text}");
    let back = nicqual(&["diff", l.to_str().unwrap(), h.to_str().unwrap()]);
    assert_eq!(back.status.code(), Some(0), "recovering is not a regression");
    let same = nicqual(&["diff", h.to_str().unwrap(), h.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&same.stdout).contains("no check changed result"));
    assert_eq!(nicqual(&["diff", h.to_str().unwrap(), "/dev/zero"]).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
