//! The `nicqual qualify` acceptance checks, from the outside: run the binary, read the
//! table, the JSON record and the exit status.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn nicqual(args: &[&str]) -> Output {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(args).output().expect("run nicqual");
    assert!(t0.elapsed() < Duration::from_secs(60), "nicqual {args:?} took {:?}", t0.elapsed());
    out
}

fn faults(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/faults").join(name).display().to_string()
}

fn record(args: &[&str]) -> (Output, serde_json::Value) {
    // Tests run concurrently and two may pass the same arguments: a directory per call.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "nicqual-test-{}-{n}-{}",
        std::process::id(),
        args.join("_").replace('/', "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("run.json");
    let mut a: Vec<&str> = args.to_vec();
    let js = json.display().to_string();
    a.extend(["--json", &js]);
    let out = nicqual(&a);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (out, v)
}

fn results(v: &serde_json::Value) -> Vec<(String, String, String)> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["result"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn healthy_model_passes_every_check() {
    let (out, v) = record(&["qualify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let r = results(&v);
    assert!(r.len() >= 20);
    for (name, result, detail) in &r {
        assert!(result == "pass" || result == "na", "{name}: {result} {detail}");
    }
    // The n/a ones are exactly the unrouted queue pair of Linux's plan; in the two-pair
    // group every IVAR entry and vector is checked.
    let na: Vec<&str> = r.iter().filter(|c| c.1 == "na").map(|c| c.0.as_str()).collect();
    assert_eq!(na, ["vector[RxQ1]", "vector[TxQ1]"]);
    // With no vector lost, recovery breaks the Other vector on purpose and earns its PASS:
    // detection sees the break, and a full fresh probe run after re-programming loses nothing.
    for (name, v) in [("recovery", 2), ("q2:recovery", 4)] {
        let c = r.iter().find(|c| c.0 == name).unwrap();
        assert!(
            c.1 == "pass"
                && c.2.starts_with(&format!("recovery exercised on vector {v} (Other)"))
                && c.2.contains("detection saw 0/3 delivered")
                && c.2.contains("fresh run lost nothing (150/150 delivered"),
            "{c:?}"
        );
    }
    for e in ["RxQ0", "RxQ1", "TxQ0", "TxQ1", "Other"] {
        let c = r.iter().find(|c| c.0 == format!("q2:vector[{e}]")).unwrap();
        assert!(c.1 == "pass" && c.2.contains("150/150 delivered"), "{c:?}");
    }
    for v in 0..5 {
        assert!(r.iter().any(|c| c.0 == format!("q2:msix-table[{v}]") && c.1 == "pass"), "vector {v}");
    }
    // Each check names its group in the record as well.
    for c in v["checks"].as_array().unwrap() {
        let want = if c["name"].as_str().unwrap().starts_with("q2:") { "queues=2" } else { "queues=1" };
        assert_eq!(c["group"], want, "{}", c["name"]);
    }
    assert_eq!(v["verdict"], "pass");
    assert_eq!(v["device"]["device_id"], "10d3");
}

#[test]
fn lost_vector_fails_exactly_its_dependents_and_names_vector_and_entry() {
    let f = faults("lose-vector-1.toml");
    let (out, v) = record(&["qualify", "--queues", "1", "--faults", &f]);
    assert_eq!(out.status.code(), Some(1));
    let failed: Vec<(String, String)> = results(&v).into_iter().filter(|c| c.1 == "fail").map(|c| (c.0, c.2)).collect();
    let names: Vec<&str> = failed.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["msix-table[1]", "vector[TxQ0]", "irq-watchdog", "recovery"]);
    for (name, detail) in &failed {
        assert!(detail.contains("vector 1"), "{name}: {detail}");
        assert!(detail.contains("TxQ0"), "{name}: {detail}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("replay: nicqual"), "a failing run prints how to replay it");
    assert!(stdout.contains("seed 1"));
}

#[test]
fn surprise_removal_is_reported_by_the_pattern_test_and_the_run_stops() {
    let f = faults("surprise-removal.toml");
    let (out, v) = record(&["qualify", "--queues", "1", "--faults", &f]);
    assert_eq!(out.status.code(), Some(1));
    let r = results(&v);
    let pat = r.iter().find(|c| c.0 == "register-pattern").unwrap();
    assert_eq!(pat.1, "fail");
    assert!(pat.2.contains("FCAL (0x00028): wrote 0x5a5a5a5a, read 0xffffffff"), "{}", pat.2);
    let after: Vec<_> = r.iter().skip_while(|c| c.0 != "register-pattern").skip(1).collect();
    let (teardown, rest) = after.split_last().unwrap();
    assert!(rest.iter().all(|c| c.1 == "na" && c.2.starts_with("not run: device gone")));
    assert_eq!(teardown.1, "pass", "resources released: {}", teardown.2);
}

#[test]
fn shorthand_faults_and_json_plans_work_and_replay_identically() {
    let f = faults("mixed.json");
    let (a, va) = record(&["qualify", "--faults", &f]);
    let (b, vb) = record(&["qualify", "--faults", &f]);
    assert_eq!(a.status.code(), Some(1));
    assert_eq!(results(&va), results(&vb), "same seed, same run");
    assert_eq!(va["seed"], 7);
    let ivar = results(&va).into_iter().find(|c| c.0 == "ivar[Other]").unwrap();
    assert_eq!(ivar.1, "fail");
    let _ = b;
    let (c, vc) = record(&["qualify", "--fault", "drop-irq:1:1.0", "--fault", "corrupt-ivar:RxQ1"]);
    assert_eq!(c.status.code(), Some(1));
    let failed: Vec<String> = results(&vc).into_iter().filter(|c| c.1 == "fail").map(|c| c.0).collect();
    assert!(failed.contains(&"vector[TxQ0]".to_string()), "{failed:?}");
    assert!(failed.contains(&"ivar[RxQ1]".to_string()), "{failed:?}");
}

#[test]
fn delayed_surprise_removal_stops_cleanly_mid_run() {
    let (out, v) = record(&["qualify", "--queues", "1", "--fault", "surprise-removal@150ms"]);
    assert_eq!(out.status.code(), Some(1));
    let r = results(&v);
    let first_fail = r.iter().find(|c| c.1 == "fail").unwrap();
    assert!(first_fail.2.contains("device gone"), "{first_fail:?}");
    assert_eq!(r.last().unwrap().1, "pass", "teardown");
}

#[test]
fn bad_fault_spec_is_a_usage_error() {
    let out = nicqual(&["qualify", "--fault", "lose-vector"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lose-vector"));
}

#[test]
fn devices_lists_the_emulated_82574l() {
    let out = nicqual(&["devices"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("model:i82574l") && s.contains("8086:10d3"), "{s}");
}

#[test]
fn datapath_checks_pass_on_the_healthy_model() {
    let (out, v) = record(&["qualify"]);
    assert!(out.status.success());
    let r = results(&v);
    let want = [
        "loopback[60]",
        "loopback[64]",
        "loopback[128]",
        "loopback[512]",
        "loopback[1514]",
        "loopback[9018]",
        "statistics",
        "rx-overrun",
        "link-change[Other]",
        "link-change[polling]",
    ];
    for name in want {
        let c = r.iter().find(|c| c.0 == name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(c.1, "pass", "{name}: {}", c.2);
    }
    let overrun = r.iter().find(|c| c.0 == "rx-overrun").unwrap();
    assert!(overrun.2.contains("RXO delivered on vector 2") && !overrun.2.contains("MPC=0 "), "{}", overrun.2);
    let lpe = r.iter().find(|c| c.0 == "loopback[9018]").unwrap();
    assert!(lpe.2.contains("LPE"), "{}", lpe.2);
}

#[test]
fn lost_other_vector_fails_link_change_through_it_but_polling_still_sees_the_link() {
    let (out, v) = record(&["qualify", "--queues", "1", "--fault", "lose-vector:2"]);
    assert_eq!(out.status.code(), Some(1));
    let r = results(&v);
    let failed: Vec<&str> = r.iter().filter(|c| c.1 == "fail").map(|c| c.0.as_str()).collect();
    assert_eq!(failed, ["msix-table[2]", "vector[Other]", "irq-watchdog", "recovery", "link-change[Other]"]);
    let via = r.iter().find(|c| c.0 == "link-change[Other]").unwrap();
    assert!(via.2.contains("no LSC arrived on vector 2"), "{}", via.2);
    let poll = r.iter().find(|c| c.0 == "link-change[polling]").unwrap();
    assert_eq!(poll.1, "pass", "{}", poll.2);
    // Datapath checks do not depend on the Other vector either (RXO is read from ICR).
    assert_eq!(r.iter().find(|c| c.0 == "rx-overrun").unwrap().1, "pass");
}

#[test]
fn two_queue_pairs_with_the_other_vector_lost_name_vector_4_and_entry_other() {
    let (out, v) = record(&["qualify", "--queues", "2", "--fault", "lose-vector:4"]);
    assert_eq!(out.status.code(), Some(1));
    let r = results(&v);
    assert!(r.iter().all(|c| c.0.starts_with("q2:")), "only the two-pair group ran");
    assert!(r.iter().all(|c| c.1 != "na"), "nothing not applicable: {r:?}");
    let failed: Vec<&str> = r.iter().filter(|c| c.1 == "fail").map(|c| c.0.as_str()).collect();
    assert_eq!(
        failed,
        ["q2:msix-table[4]", "q2:vector[Other]", "q2:irq-watchdog", "q2:recovery", "q2:link-change[Other]"]
    );
    for (name, _, detail) in r.iter().filter(|c| c.1 == "fail") {
        assert!(detail.contains("vector 4 (IVAR entry Other)"), "{name}: {detail}");
    }
    let rec = r.iter().find(|c| c.0 == "q2:recovery").unwrap();
    assert!(rec.2.starts_with("degraded: polling Other"), "{}", rec.2);
    // The same fault leaves Linux's three-vector plan untouched: vector 4 is not in it.
    let (out, v) = record(&["qualify", "--queues", "1", "--fault", "lose-vector:4"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", results(&v));
}

#[test]
fn a_device_gone_in_the_first_group_leaves_the_second_not_run() {
    let f = faults("surprise-removal.toml");
    let (out, v) = record(&["qualify", "--faults", &f]);
    assert_eq!(out.status.code(), Some(1));
    let r = results(&v);
    let q2: Vec<_> = r.iter().filter(|c| c.0.starts_with("q2:")).collect();
    assert!(!q2.is_empty() && q2.iter().all(|c| c.1 == "na" && c.2.contains("gone in an earlier group")), "{q2:?}");
}
