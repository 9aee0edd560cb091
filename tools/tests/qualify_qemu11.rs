//! `nicqual qualify --device qemu11:e1000e`: the whole suite against QEMU 11.1's e1000e
//! (Debian forky root, `-accel qtest`) on its virtual clock, with the driver's datasheet
//! bounds. Needs the forky root (`make deps`); without it the run is an error naming the
//! command that builds it, never a skip.

use std::process::Command;

#[test]
fn qualify_passes_on_qemu11_with_virtual_time_and_fewer_deviations() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["qualify", "--device", "qemu11:e1000e", "--json", json.to_str().unwrap()])
        .output()
        .expect("run nicqual");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["verdict"], "pass");
    assert_eq!(v["backend"]["name"], "qemu11:e1000e");
    assert_eq!(v["backend"]["virtual_time"], true, "QEMU 11.1 under the qtest accelerator");
    let check = |name: &str| {
        let c = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name}"));
        (c["result"].as_str().unwrap_or("").to_string(), c["detail"].as_str().unwrap_or("").to_string())
    };
    // Fixed in 11.1: CTRL.RST resets the interrupt set-up, GOTC counts the FCS. Both checks
    // pass as on the datasheet, with no deviation named.
    for name in ["reset", "statistics"] {
        let (r, d) = check(name);
        assert_eq!(r, "pass", "{name}: {d}");
        assert!(!d.contains("known deviation"), "{name}: {d}");
    }
    let (_, d) = check("reset");
    assert!(d.contains("IVAR, IMS, EIAC cleared"), "{d}");
    // Still there: TIDV reads 0; an overrun raises RXO now but is not counted.
    let (r, d) = check("register-pattern");
    assert_eq!(r, "pass");
    assert!(d.contains("TIDV") && d.contains("QEMU 11.1"), "{d}");
    let (r, d) = check("rx-overrun");
    assert_eq!(r, "na", "{d}");
    assert!(d.contains("RXO delivered") && d.contains("QEMU 11.1"), "{d}");
    for name in ["vector[RxQ0]", "vector[TxQ0]", "vector[Other]", "link-change[Other]", "wire[socket]"] {
        assert_eq!(check(name).0, "pass", "{name}: {table}");
    }
    assert_eq!(v["summary"]["fail"], 0);
    assert_eq!(v["summary"]["error"], 0);
}

/// `conformance --json -`: every case carries both QEMUs' answers and verdicts; the
/// EEPROM-word cases differ from the model on both QEMUs exactly as row G2 documents.
#[test]
fn conformance_json_has_three_oracles() {
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["conformance", "--filter", "eerd.word-0", "--json", "-"])
        .output()
        .expect("run nicqual");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "nicqual.conformance/2");
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for c in cases {
        // Word 3 is blank on the model; word 5 is its image version (1.8-4).
        let ours = if c["name"] == "eerd.word-05" { "0x1084" } else { "0x0000" };
        assert_eq!(c["ours"], ours, "{c}");
        for (answer, verdict, documented) in
            [("qemu", "verdict", "documented"), ("qemu11", "verdict_qemu11", "documented_qemu11")]
        {
            assert_ne!(c[answer], c["ours"], "{c}");
            assert_eq!(c[verdict], "known-difference", "{c}");
            assert_eq!(c[documented], "row G2", "{c}");
        }
    }
    assert_eq!(v["summary"]["qemu11"]["unexplained"], 0);
    // The three-way table went to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("QEMU 11.1"));
}
