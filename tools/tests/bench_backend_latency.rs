//! `nicqual bench --backend-latency` from the outside: one row per backend and operation,
//! each with a positive cost, and no server process left behind. No timing is asserted
//! (figures belong in docs/PERFORMANCE.md). Needs qemu-system-x86 (`make deps`).

use std::process::Command;

#[test]
fn backend_latency_prints_every_backend_and_operation() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("lat.json");
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["bench", "--backend-latency", "--seconds", "0.03", "--json"])
        .arg(&json)
        .output()
        .expect("run nicqual bench");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("ns/op"), "{table}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["mode"], "backend-latency");
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 9, "3 backends x 3 operations: {rows:?}");
    for b in ["emulated", "serve-qtest", "QEMU"] {
        assert_eq!(rows.iter().filter(|r| r["backend"].as_str().unwrap().contains(b)).count(), 3, "{b}");
    }
    for r in rows {
        assert!(r["ns_per_op"].as_f64().unwrap() > 0.0 && r["ops"].as_u64().unwrap() >= 64, "{r}");
    }
    assert!(v["errors"].as_array().unwrap().is_empty());
}
