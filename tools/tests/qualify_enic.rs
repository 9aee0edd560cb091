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
    assert_eq!(checks.len(), 10);
    assert!(checks.iter().all(|c| c["result"] == "pass"), "{checks:#?}");
}

#[test]
fn faults_fail_exactly_the_checks_they_concern() {
    let (out, v) = run(&["--fault", "hostile-completion:25"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(failed(&v), ["hostile-completions"]);
    let (out, v) = run(&["--fault", "lose-vector:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(failed(&v), ["interrupts", "lost-vector"]);
    let (out, v) = run(&["--fault", "lose-vector:6"]);
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
