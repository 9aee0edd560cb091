//! `nicqual qualify --device model:enic`, from the outside: exit status, the JSON record
//! (schema nicqual.run/3), and which checks fail under which fault.

use std::process::{Command, Output};

fn run(args: &[&str]) -> (Output, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("nicqual-enic-{}-{}", std::process::id(), args.join("_")));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("run.json");
    let mut a = vec!["qualify", "--device", "model:enic"];
    a.extend(args);
    let js = json.display().to_string();
    a.extend(["--json", &js]);
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(&a).output().expect("run nicqual");
    let v = std::fs::read_to_string(&json).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (out, v)
}

fn failed(v: &serde_json::Value) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["result"] == "fail")
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn healthy_vnic_exits_0_with_every_check_passed() {
    let (out, v) = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(v["schema"], "nicqual.run/3");
    assert_eq!((v["device"]["vendor_id"].as_str(), v["device"]["device_id"].as_str()), (Some("1137"), Some("0043")));
    let checks = v["checks"].as_array().unwrap();
    // 9 checks, one per WQ/RQ pair (4), teardown.
    assert_eq!(checks.len(), 14);
    assert!(checks.iter().all(|c| c["result"] == "pass"), "{checks:#?}");
    for q in 0..4 {
        let c = checks.iter().find(|c| c["name"] == format!("pair[{q}]").as_str()).unwrap();
        let m = c["measurements"].as_array().unwrap();
        let get = |n: &str| m.iter().find(|x| x["name"] == n).and_then(|x| x["value"].as_f64());
        assert_eq!((get("rx_irqs"), get("tx_irqs")), (Some(8.0), Some(8.0)), "pair {q}: {c:#}");
        assert_eq!(get("credits_returned"), Some(16.0), "pair {q}: {c:#}");
    }
}

#[test]
fn faults_fail_exactly_the_checks_they_concern() {
    let (out, v) = run(&["--fault", "hostile-completion:25"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(failed(&v), ["hostile-completions"]);
    let (out, v) = run(&["--fault", "lose-vector:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(failed(&v), ["interrupts", "lost-vector", "pair[0]"]);
    // Vector 6 is WQ 2's (4 RQ vectors first): pair 2 fails, named, and no other pair.
    let (out, v) = run(&["--fault", "lose-vector:6"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(failed(&v), ["lost-vector", "pair[2]"]);
    let pair2 = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "pair[2]").unwrap();
    assert!(pair2["detail"].as_str().unwrap().contains("vector 6 (WQ2's) silent"), "{pair2:#}");
    // The error vector (8) belongs to no pair.
    let (out, v) = run(&["--fault", "lose-vector:8"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(failed(&v), ["lost-vector"]);
}

#[test]
fn faults_that_cannot_apply_are_refused() {
    for f in ["corrupt-ivar:1", "lose-vector:10", "stall-consumer:4"] {
        let (out, _) = run(&["--fault", f]);
        assert_eq!(out.status.code(), Some(2), "{f}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
