//! `nicqual soak` end to end: a short deterministic soak passes with every frame accounted
//! for and prints the counts; a bad duration is a usage error.

use std::process::Command;

#[test]
fn short_soak_accounts_for_every_frame() {
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["--quiet", "soak", "--seed", "11", "--rounds", "300", "--duration", "10m"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let count = |key: &str| -> i64 {
        let line =
            text.lines().find(|l| l.trim_start().starts_with(key)).unwrap_or_else(|| panic!("no `{key}` in\n{text}"));
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert_eq!(count("unaccounted"), 0, "{text}");
    assert!(count("frames sent") > 300, "{text}");
    assert!(count("delivered intact") > 0, "{text}");
    assert!(text.contains("surprise removal: reported by the driver"), "{text}");
    assert!(text.trim_end().ends_with("PASS"), "{text}");

    let json = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["--quiet", "soak", "--seed", "11", "--rounds", "300", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["unaccounted"], 0);
    assert_eq!(v["sent"].as_i64(), Some(count("frames sent")), "same seed, same rounds, same traffic");
}

#[test]
fn bad_duration_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(["soak", "--duration", "5parsecs"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown time unit"));
}
