//! `nicqual scenario` from the outside: the list, and each scenario's key numbers in its
//! JSON result.

use std::process::{Command, Output};

fn nicqual(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nicqual")).args(args).output().expect("run nicqual")
}

fn run_json(name: &str, seed: u64) -> (Output, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("nicqual-scn-{}-{name}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("result.json");
    let out = nicqual(&["scenario", "run", name, "--seed", &seed.to_string(), "--json", json.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (out, v)
}

#[test]
fn list_names_every_scenario() {
    let out = nicqual(&["scenario", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("netfront-resume"), "{text}");
}

#[test]
fn unknown_scenario_is_a_usage_error() {
    let out = nicqual(&["scenario", "run", "no-such-thing"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn netfront_resume_key_numbers() {
    let (out, v) = run_json("netfront-resume", 3);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("What the field saw:") && text.contains("What to change:"));
    assert_eq!(v["kind"], "scenario:netfront-resume");
    assert_eq!(v["seed"], 3);
    assert_eq!(v["verdict"], "pass");
    let l = &v["result"]["legacy"];
    assert_eq!(l["mode_before"], "flip");
    assert_eq!(l["mode_after"], "copy");
    assert_eq!(l["first_guest_error"]["text"], "netfront: rx->offset: 0, size: 4294967295");
    assert_eq!(l["first_hypervisor_error"]["text"], "(XEN) grant_table.c:1145:d0 destination frame ffffffff invalid.");
    assert_eq!(l["rx_after"]["delivered"], 0);
    assert!(l["invalid_frame_errors"].as_u64().unwrap() > 0);
    let n = &v["result"]["nicqual"];
    assert_eq!(n["invalid_frame_errors"], 0);
    assert_eq!(n["rx_after"]["lost"], 0);
    assert_eq!(n["rx_after"]["delivered"], n["rx_after"]["sent"]);
    assert_eq!(n["netfront"]["reclaimed_rx"], 256);
    // Same seed, same result.
    let (_, again) = run_json("netfront-resume", 3);
    assert_eq!(v["result"], again["result"]);
}
