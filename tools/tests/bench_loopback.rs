//! `nicqual bench` (loopback mode) from the outside: the table and the JSON record have the
//! documented shape and nothing was lost. No timing is asserted: figures vary per machine
//! (they belong in docs/PERFORMANCE.md, measured with the command written there).

use std::process::Command;

#[test]
fn bench_prints_a_table_and_writes_results_for_each_frame_size() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["bench", "--seconds", "0.02", "--frame-size", "64,9018", "--batch", "8", "--json"])
        .arg(&json)
        .output()
        .expect("run nicqual bench");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("Mpps") && table.contains("Gbit/s"), "{table}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = v["results"].as_array().unwrap();
    let sizes: Vec<u64> = results.iter().map(|r| r["frame_size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [64, 9018]);
    for r in results {
        assert_eq!(r["nic"], "model:i82574l");
        assert_eq!(r["batch"], 8);
        assert!(r["mpps"].as_f64().unwrap() > 0.0 && r["gbps"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["packets"].as_u64().unwrap() > 0);
        assert_eq!(r["lost"], 0, "loopback on the model loses nothing");
        assert_eq!(r["wb_errors"], 0);
    }
}

#[test]
fn bench_refuses_sizes_the_chip_cannot_carry() {
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(["bench", "--frame-size", "9500"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("9500"));
}

#[test]
fn enic_rows_go_into_the_same_json_as_the_82574l_rows() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["bench", "--nic", "i82574l,enic", "--seconds", "0.02", "--frame-size", "64,9000", "--json"])
        .arg(&json)
        .output()
        .expect("run nicqual bench");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows: Vec<(String, u64)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["nic"].as_str().unwrap().to_string(), r["frame_size"].as_u64().unwrap()))
        .collect();
    let want: Vec<(String, u64)> =
        [("model:i82574l", 64), ("model:i82574l", 9000), ("model:enic", 64), ("model:enic", 9000)]
            .into_iter()
            .map(|(n, s)| (n.to_string(), s))
            .collect();
    assert_eq!(rows, want);
    for r in v["results"].as_array().unwrap() {
        assert!(r["packets"].as_u64().unwrap() > 0, "{r}");
        assert_eq!((r["lost"].as_u64(), r["wb_errors"].as_u64()), (Some(0), Some(0)), "{r}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(["bench", "--nic", "tg3"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// `--split` accounts the time inside the device model: every row gets a device share
/// below the interval and a device-only rate above the end-to-end one; without it the
/// fields are null.
#[test]
fn split_reports_the_emulations_share_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["bench", "--nic", "i82574l,bnx2x,enic", "--seconds", "0.05", "--frame-size", "64", "--split", "--json"])
        .arg(&json)
        .output()
        .expect("run nicqual bench");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("device Mpps"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        let (ds, secs) = (r["device_seconds"].as_f64().unwrap(), r["seconds"].as_f64().unwrap());
        assert!(ds > 0.0 && ds < secs, "{r}");
        assert!(r["device_mpps"].as_f64().unwrap() > r["mpps"].as_f64().unwrap(), "{r}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["bench", "--nic", "bnx2x", "--seconds", "0.02", "--frame-size", "64", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["results"][0]["device_seconds"].is_null());
    // Modes without a device loop refuse it instead of ignoring it.
    for mode in ["--swiotlb", "--backend-latency"] {
        let out = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(["bench", mode, "--split"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{mode}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
