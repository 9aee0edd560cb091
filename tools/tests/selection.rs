//! Check selection and repetition from the outside: `--list-checks`, `--check`/`--skip`
//! globs (brackets literal), set-up steps that run unreported, `--repeat` (a check passes
//! only if it passed every time).

use std::process::Command;

fn record(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let path = std::env::temp_dir().join(format!("nicqual-sel-{}-{}.json", std::process::id(), args.join("_").len()));
    let mut a: Vec<&str> = args.to_vec();
    let p = path.to_str().unwrap().to_string();
    a.extend(["--quiet", "--json", &p]);
    let o = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(&a).output().unwrap();
    let v = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    (o.status.code(), v)
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn list_select_skip_and_nothing_selected() {
    let o = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(["qualify", "--list-checks"]).output().unwrap();
    let listed: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect();
    let (code, full) = record(&["qualify"]);
    assert_eq!(code, Some(0));
    assert_eq!(listed, names(&full), "--list-checks names exactly what a run reports");

    let (code, v) = record(&["qualify", "--check", "vector[*]", "--skip", "vector[Other]"]);
    assert_eq!(code, Some(0));
    assert_eq!(names(&v), ["vector[RxQ0]", "vector[RxQ1]", "vector[TxQ0]", "vector[TxQ1]"]);

    // recovery needs the vector checks and the watchdog to find the lost vector: they run,
    // unreported, and recovery fails exactly as in the full run.
    let (code, v) = record(&["qualify", "--check", "recovery", "--fault", "lose-vector:1"]);
    assert_eq!(code, Some(1));
    assert_eq!(names(&v), ["recovery"]);
    assert_eq!(v["checks"][0]["result"], "fail");
    assert!(v["checks"][0]["detail"].as_str().unwrap().contains("vector 1 (IVAR entry TxQ0)"));

    let o = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(["qualify", "--check", "nomatch*"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "selecting nothing is not a PASS");
}

#[test]
fn repeat_fails_a_check_that_does_not_pass_every_time() {
    let (code, v) = record(&["qualify", "--repeat", "3", "--check", "vector[*]"]);
    assert_eq!(code, Some(0));
    let rxq0 = &v["checks"][0];
    assert_eq!(rxq0["result"], "pass");
    assert!(rxq0["detail"].as_str().unwrap().contains("passed all 3 runs"), "{rxq0}");
    let (code, v) =
        record(&["qualify", "--repeat", "3", "--check", "vector[RxQ0]", "--fault", "drop-irq:0:0.3", "--seed", "4"]);
    assert_eq!(code, Some(1));
    let d = v["checks"][0]["detail"].as_str().unwrap();
    assert_eq!(v["checks"][0]["result"], "fail");
    assert!(d.contains("of 3 runs"), "{d}");
}
