//! `nicqual scenario run enic-jumbo` from the outside: the account, the matrix in the run
//! record, and the key numbers.

use std::process::Command;

fn run(seed: u64) -> (String, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("nicqual-enic-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["scenario", "run", "enic-jumbo", "--seed", &seed.to_string(), "--json", json.to_str().unwrap()])
        .output()
        .expect("run nicqual");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (String::from_utf8(out.stdout).unwrap(), v)
}

fn check<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name}"))
}

fn measured(c: &serde_json::Value, name: &str) -> f64 {
    c["measurements"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap()["value"].as_f64().unwrap()
}

fn verdict(v: &serde_json::Value, mtu: u64, variant: &str) -> String {
    let cells = v["timelines"]["jumbo"]["cells"].as_array().unwrap();
    let c = cells.iter().find(|c| c["mtu"] == mtu && c["variant"] == variant).unwrap();
    c["verdict"].as_str().unwrap().to_string()
}

#[test]
fn enic_jumbo_key_numbers() {
    let (text, v) = run(1);
    for needle in [
        "What the field saw:",
        "What happened here:",
        "What nicqual did:",
        "What to change:",
        "64 MiB for the assumed 64 GiB host",
        "is not reproduced by an honest adapter",
        "The model contradicts the field's trace for the linear receive path",
        "Jumbo support matrix (adapter vNIC MTU 9000):",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(v["schema"], "nicqual.run/3");
    assert_eq!(v["kind"], "scenario:enic-jumbo");
    assert_eq!(v["seed"], 1);
    // 8 MTUs x 4 columns.
    assert_eq!(v["timelines"]["jumbo"]["cells"].as_array().unwrap().len(), 32);
    assert_eq!(verdict(&v, 1500, "early enic, Xen dom0"), "supported");
    assert_eq!(verdict(&v, 9000, "early enic, Xen dom0"), "supported", "the classic pool has room");
    assert_eq!(verdict(&v, 9000, "early enic, bad adapter"), "unsafe");
    assert_eq!(verdict(&v, 9000, "nicqual, Xen dom0"), "supported");
    assert_eq!(verdict(&v, 9000, "nicqual, bad adapter"), "supported");
    assert_eq!(verdict(&v, 9001, "nicqual, Xen dom0"), "unsupported");
    let early = check(&v, "enic-jumbo.early-xen-dom0");
    assert_eq!(early["result"], "pass", "honest adapter, 64 MiB pool: not the field's failure");
    assert_eq!((measured(early, "overflow_posted"), measured(early, "map_failures")), (0.0, 0.0));
    let early_bad = check(&v, "enic-jumbo.early-bad-adapter");
    assert!(early_bad["action"].as_str().unwrap().contains("MTU 1500"));
    let nq = check(&v, "enic-jumbo.nicqual-xen-dom0");
    assert_eq!(nq["result"], "pass");
    assert_eq!((measured(nq, "corrupt_frames"), measured(nq, "overflow_posted")), (0.0, 0.0));
    let bad = check(&v, "enic-jumbo.nicqual-bad-adapter");
    assert_eq!(bad["result"], "pass");
    assert!(measured(bad, "adapter_faults") > 0.0 && measured(bad, "refused_completions") > 0.0);
    assert_eq!((measured(bad, "corrupt_frames"), measured(bad, "overrun_landed")), (0.0, 0.0));
    assert_eq!(check(&v, "enic-jumbo.early-bad-adapter")["result"], "xfail");
    assert_eq!(check(&v, "enic-jumbo.mtu-disagreement")["result"], "pass");
    // The crash path per MTU and column: nothing past the data on the honest adapter or
    // under nicqual; the early driver with the misbehaving adapter reads past it or stops at
    // skb_over_panic.
    for c in [early, nq, bad] {
        for m in [1500, 9000] {
            assert_eq!(measured(c, &format!("oob_copies_mtu{m}")), 0.0, "{c}");
            assert_eq!(measured(c, &format!("skb_over_panics_mtu{m}")), 0.0, "{c}");
        }
    }
    assert!(measured(early_bad, "oob_copies") + measured(early_bad, "skb_over_panics") > 0.0, "{early_bad}");
    if measured(early_bad, "oob_copies") > 0.0 {
        assert!(early_bad["detail"].as_str().unwrap().contains(" first at 0x"), "{early_bad}");
    }
}

#[test]
fn enic_jumbo_is_deterministic_for_a_seed() {
    let strip = |mut v: serde_json::Value| {
        for k in ["host", "started_at", "wall_ns", "command"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    let (_, a) = run(4);
    let (_, b) = run(4);
    assert_eq!(strip(a.clone()), strip(b));
    let (_, c) = run(5);
    assert_ne!(strip(a)["timelines"], strip(c)["timelines"], "another seed, other traffic");
}

#[test]
fn report_renders_the_jumbo_matrix() {
    let (_, v) = run(1);
    let dir = std::env::temp_dir().join(format!("nicqual-enic-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("r.json");
    std::fs::write(&json, v.to_string()).unwrap();
    let html = dir.join("r.html");
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["report", json.to_str().unwrap(), "--html", html.to_str().unwrap()])
        .output()
        .unwrap();
    // The early driver's checks are expected failures: the record passes.
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("id=\"plot-jumbo\""));
    assert!(page.contains(">UNSAFE<") && page.contains(">SUPPORTED<") && page.contains(">UNSUPPORTED<"));
    let _ = std::fs::remove_dir_all(&dir);
}
