//! `--json` with no FILE writes the run record on standard output (the table then goes to
//! standard error), exactly as `--json -` does: the form the issues' acceptance lines use.

use std::process::Command;

#[test]
fn bare_json_flag_prints_the_record_on_stdout() {
    for device in ["model:bnx2x", "model:enic"] {
        let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
            .args(["qualify", "--device", device, "--json"])
            .output()
            .expect("run nicqual");
        assert_eq!(out.status.code(), Some(0), "{device}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON record");
        assert_eq!(v["schema"], "nicqual.run/3", "{device}");
        let checks = v["checks"].as_array().unwrap();
        assert!(checks.len() > 5, "{device}: {}", checks.len());
        assert!(checks.iter().all(|c| c["result"] != "fail"), "{device}");
    }
    // A bare --json and another output on stdout clash, as two `-` do.
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["qualify", "--device", "model:bnx2x", "--json", "--ktap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
