//! Exit status 2 for every input nicqual cannot act on: bounds, empty selections and fault
//! plans that would let a run pass that nothing earned. Each is refused before anything
//! runs, with a message naming what was wrong.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(args).output().expect("run nicqual");
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn out_of_bounds_durations_and_counts_are_usage_errors() {
    for (args, says) in [
        (&["bench", "--seconds", "inf"][..], "--seconds"),
        (&["bench", "--seconds", "NaN"], "--seconds"),
        (&["bench", "--seconds", "1e300"], "--seconds"),
        (&["bench", "--seconds", "0"], "--seconds"),
        (&["soak", "--duration", "0s"], "longer than zero"),
        (&["soak", "--duration", "1000000h"], "longer than"),
        (&["soak", "--duration", "10"], "--duration"),
        (&["soak", "--rounds", "0"], "--rounds"),
    ] {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn fault_plans_that_cannot_apply_are_refused() {
    let dir = std::env::temp_dir().join(format!("nicqual-exit-codes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let misspelt = dir.join("misspelt.toml");
    std::fs::write(&misspelt, "seed = 3\nfaults = [{ kind = \"lose-vector\", vector = 1 }]\n").unwrap();
    let (code, err) = run(&["qualify", "--quiet", "--faults", misspelt.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("faults"), "names the key: {err}");
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "seed = 3\n").unwrap();
    let (code, err) = run(&["qualify", "--quiet", "--faults", empty.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["qualify", "--quiet", "--faults", "/dev/zero"]);
    assert_eq!(code, Some(2), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cases from the outside: a fault that cannot apply is 2 (nothing runs), a run
/// the environment stopped is 3 with a record whose verdict is `error`.
#[test]
fn faults_that_cannot_apply_are_2_and_runs_the_environment_stopped_are_3() {
    for args in [
        &["qualify", "--quiet", "--fault", "lose-vector:99"][..],
        &["qualify", "--quiet", "--fault", "drop-irq:99:0.5"],
        &["qualify", "--quiet", "--fault", "corrupt-ivar:7"],
        &["qualify", "--quiet", "--device", "qemu:e1000e", "--fault", "lose-vector:1"],
        &["qualify", "--quiet", "--inject-bug", "dma-unmapped-iova"],
    ] {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
    }
    let dir = std::env::temp_dir().join(format!("nicqual-exit-3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("r.json");
    let (code, err) = run(&["qualify", "--quiet", "--device", "vfio:0000:99:00.0", "--json", json.to_str().unwrap()]);
    assert_eq!(code, Some(3), "{err}");
    let rec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rec["verdict"], "error");
    assert_eq!(rec["checks"][0]["name"], "environment");
    assert!(rec["checks"][0]["detail"].as_str().unwrap().contains("0000:99:00.0"));
    // Re-rendering that record keeps its exit status.
    let (code, err) = run(&["report", json.to_str().unwrap(), "--ktap", dir.join("k").to_str().unwrap()]);
    assert_eq!(code, Some(3), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_lists_the_exit_codes() {
    let o = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(["qualify", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    for line in ["0  everything", "1  the device failed", "2  usage or input", "3  could not run"] {
        assert!(text.contains(line), "{text}");
    }
}

/// Every scenario's model today moves traffic without an Ethernet wire (shared rings,
/// adapter loopback, counted sizes): `--pcap` is refused with the reason, never ignored.
#[test]
fn scenario_pcap_without_a_wire_is_refused() {
    for name in ["netfront-resume", "dom0-memory-squeeze", "bnx2x-swiotlb-jumbo", "enic-jumbo"] {
        let (code, err) = run(&["scenario", "run", name, "--pcap", "/tmp/nicqual-never.pcap"]);
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(err.contains("has no wire to capture"), "{err}");
    }
    assert!(!std::path::Path::new("/tmp/nicqual-never.pcap").exists());
}
