//! `nicqual scenario`: the registry and the bnx2x-swiotlb-jumbo run record.

use std::process::Command;

fn nicqual() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nicqual"))
}

#[test]
fn list_names_the_scenario_and_unknown_names_are_refused() {
    let out = nicqual().args(["scenario", "list"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("bnx2x-swiotlb-jumbo"));
    let out = nicqual().args(["scenario", "run", "no-such"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bnx2x_swiotlb_jumbo_prints_the_account_and_writes_the_record() {
    let dir = std::env::temp_dir().join(format!("nicqual-scn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("run.json");
    let out = nicqual()
        .args(["--quiet", "scenario", "run", "bnx2x-swiotlb-jumbo", "--seed", "1", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "first \"Out of SW-IOMMU space\" at packet ",
        "PCI-DMA: Out of SW-IOMMU space for ",
        "would have panicked here: packet ",
        "Kernel panic - not syncing: DMA: Random memory could be DMA read",
        "nicqual's driver instead:",
        "GRO on: no exhaustion over 40000 packets",
        "x later, not never",
        "recommendation: enable GRO",
        "[inference]",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["kind"], "scenario:bnx2x-swiotlb-jumbo");
    assert_eq!(v["seed"], 1);
    let checks = v["checks"].as_array().unwrap();
    let result =
        |name: &str| checks.iter().find(|c| c["name"] == name).map(|c| c["result"].as_str().unwrap().to_string());
    assert_eq!(result("swiotlb-preflight").as_deref(), Some("fail"));
    assert_eq!(result("bnx2x-swiotlb-jumbo.gro-off-64mib").as_deref(), Some("fail"));
    assert_eq!(result("bnx2x-swiotlb-jumbo.gro-on-64mib").as_deref(), Some("pass"));
    assert_eq!(result("bnx2x-swiotlb-jumbo.gro-off-128mib").as_deref(), Some("fail"));
    assert_eq!(result("dma-mappings-balanced[gro-off-64mib]").as_deref(), Some("pass"));
    let pool = &v["timelines"]["bounce_pool"];
    assert_eq!(pool["slots_total"], 32768);
    assert!(pool["samples"].as_array().unwrap().len() > 10);
    let exhausted = pool["exhausted"]["detail"].as_str().unwrap();
    assert!(exhausted.starts_with("PCI-DMA: Out of SW-IOMMU space for "), "{exhausted}");
    let _ = std::fs::remove_dir_all(&dir);
}
