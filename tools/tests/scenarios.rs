//! `nicqual scenario` from the outside: the Xen scenarios' accounts and the key numbers in
//! their run records.

use std::process::{Command, Output};

fn nicqual(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nicqual")).args(args).output().expect("run nicqual")
}

fn run_json(name: &str, seed: u64) -> (Output, serde_json::Value) {
    let (out, v, html) = run_json_html(name, seed);
    assert!(html.contains("<html"), "nicqual report renders the scenario's record");
    (out, v)
}

/// Run a scenario with `--json`, then render that record with `nicqual report --html`.
fn run_json_html(name: &str, seed: u64) -> (Output, serde_json::Value, String) {
    let dir = std::env::temp_dir().join(format!("nicqual-scn-{}-{name}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("result.json");
    let out = nicqual(&["scenario", "run", name, "--seed", &seed.to_string(), "--json", json.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let html = dir.join("report.html");
    let rendered = nicqual(&["report", json.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    let html = std::fs::read_to_string(&html).unwrap_or_default();
    assert_eq!(rendered.status.code(), Some(0), "{}", String::from_utf8_lossy(&rendered.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    (out, v, html)
}

fn check<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name}"))
}

fn measured(c: &serde_json::Value, name: &str) -> f64 {
    c["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["value"].as_f64())
        .unwrap_or_else(|| panic!("no measurement {name} in {c}"))
}

#[test]
fn list_names_the_xen_scenarios() {
    let out = nicqual(&["scenario", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("netfront-resume") && text.contains("dom0-memory-squeeze"), "{text}");
    assert!(text.contains("bnx2x-swiotlb-jumbo"), "{text}");
}

#[test]
fn netfront_resume_key_numbers() {
    let (out, v) = run_json("netfront-resume", 3);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "What the field saw:",
        "What happened here:",
        "What nicqual did:",
        "What to change:",
        "first hypervisor error: \"(XEN) grant_table.c:1145:d0 destination frame ffffffff invalid.\"",
        "first guest error: \"netfront: rx->offset: 0, size: 4294967295\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(v["schema"], "nicqual.run/3");
    assert_eq!(v["kind"], "scenario:netfront-resume");
    assert_eq!(v["seed"], 3);
    assert_eq!(check(&v, "netfront-resume.before-save")["result"], "pass");
    let l = check(&v, "netfront-resume.legacy-order");
    assert_eq!(l["result"], "xfail", "the legacy order reproduces the field failure: expected");
    assert_eq!(measured(l, "rx_after_delivered"), 0.0);
    assert!(measured(l, "invalid_frame_errors") > 0.0);
    assert!(measured(l, "size_all_ones_lines") > 0.0);
    let n = check(&v, "netfront-resume.nicqual-order");
    assert_eq!(n["result"], "pass");
    assert_eq!(measured(n, "invalid_frame_errors"), 0.0);
    assert_eq!(measured(n, "rx_after_lost"), 0.0);
    assert_eq!(measured(n, "rx_after_delivered"), 400.0);
    assert_eq!(measured(n, "reclaimed_rx"), 256.0);
    // Same seed, same checks.
    let (_, again) = run_json("netfront-resume", 3);
    assert_eq!(v["checks"], again["checks"]);
}

#[test]
fn dom0_memory_squeeze_key_numbers() {
    let (out, v) = run_json("dom0-memory-squeeze", 1);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "What the field saw:",
        "<KERN_WARNING> xen_net: Memory squeeze in netback driver.",
        "What nicqual did:",
        "request-rx-copy",
        "What to change:",
        "dom0_mem=256000",
        "[inference]",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(v["kind"], "scenario:dom0-memory-squeeze");
    let field = check(&v, "dom0-memory-squeeze.flip");
    assert_eq!(field["result"], "xfail");
    assert_eq!(measured(field, "guests_started"), 14.0);
    assert!(measured(field, "kept_network") < 14.0, "{field}");
    assert!(measured(field, "squeezes") >= measured(field, "squeeze_lines"));
    // Every squeeze line the record carries was printed by the flipping run, at a virtual
    // time within the run, at KERN_WARNING.
    let lines = v["timelines"]["kernel_log"]["lines"].as_array().expect("kernel_log timeline");
    let squeezes: Vec<_> = lines.iter().filter(|l| l["text"] == "xen_net: Memory squeeze in netback driver.").collect();
    assert_eq!(squeezes.len() as f64, measured(field, "squeeze_lines"));
    for l in &squeezes {
        assert_eq!((l["source"].as_str(), l["level"].as_str()), (Some("dom0 (flip)"), Some("KERN_WARNING")));
        let t = l["t_ns"].as_u64().unwrap();
        assert!(t as f64 >= measured(field, "first_squeeze") && t < 40_000_000_000, "{l}");
    }
    for name in ["dom0-memory-squeeze.flip-dom0-mem", "dom0-memory-squeeze.copy"] {
        let c = check(&v, name);
        assert_eq!(c["result"], "pass", "{c}");
        assert_eq!(measured(c, "kept_network"), 14.0);
        assert_eq!(measured(c, "squeezes"), 0.0);
        assert_eq!(measured(c, "delivered"), measured(c, "sent"));
    }
    let (_, again) = run_json("dom0-memory-squeeze", 1);
    assert_eq!(v["checks"], again["checks"]);
    // Another seed, another run: the numbers come from the models, not from constants.
    let (_, other) = run_json("dom0-memory-squeeze", 2);
    assert_ne!(v["checks"], other["checks"]);
}

#[test]
fn bnx2x_swiotlb_jumbo_key_numbers() {
    let (out, v, html) = run_json_html("bnx2x-swiotlb-jumbo", 1);
    assert!(html.contains("id=\"plot-bounce-pool\""), "the report plots bounce-pool occupancy");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for needle in [
        "What the field saw:",
        "after ring fill: 8152 rx buffers posted (4 queues x 1019 per port), ",
        "steady state (",
        "first \"Out of SW-IOMMU space\" at t = ",
        "during a link pause (",
        "PCI-DMA: Out of SW-IOMMU space for ",
        "Kernel panic - not syncing: DMA: Random memory could be DMA read",
        "TPA off: bnx2x_mtu_allows_gro(9000) is false",
        "GRO on: exhausted (the same mappings, step for step, as GRO off)",
        "this contradicts the field's fix",
        "[inference]",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(v["schema"], "nicqual.run/3");
    assert_eq!(v["kind"], "scenario:bnx2x-swiotlb-jumbo");
    assert_eq!(v["seed"], 1);
    let off = check(&v, "bnx2x-swiotlb-jumbo.gro-off-64mib");
    assert_eq!(off["result"], "xfail");
    let at = measured(off, "exhausted_at_ms");
    let steady = measured(off, "steady_slots");
    assert!(steady > 0.2 * 32768.0 && steady < 0.5 * 32768.0, "{steady}");
    assert!(measured(off, "peak_slots") > 0.8 * 32768.0);
    // GRO on at MTU 9000: TPA stays off, the same mappings, the same exhaustion.
    let on = check(&v, "bnx2x-swiotlb-jumbo.gro-on-64mib");
    assert_eq!(on["result"], "xfail");
    assert_eq!(measured(on, "exhausted_at_ms"), at);
    // 128 MiB: later, or not within the window.
    let big = check(&v, "bnx2x-swiotlb-jumbo.gro-off-128mib");
    match big["result"].as_str() {
        Some("pass") => assert!(measured(big, "peak_slots") < 65536.0),
        Some("xfail") => assert!(measured(big, "exhausted_at_ms") > at),
        other => panic!("{other:?}: {big}"),
    }
    assert_eq!(check(&v, "swiotlb-preflight")["result"], "xfail", "the qualification check predicts it");
    for name in [
        "bnx2x-swiotlb-jumbo.preflight-never-misses",
        "bnx2x-swiotlb-jumbo.no-panic",
        "bnx2x-swiotlb-jumbo.slots-accounted",
        "bnx2x-swiotlb-jumbo.steady-state",
    ] {
        assert_eq!(check(&v, name)["result"], "pass", "{name}");
    }
    let pool = &v["timelines"]["bounce_pool"];
    assert_eq!(pool["slots_total"], 32768);
    assert!(pool["samples"].as_array().unwrap().len() > 10);
    let exhausted = pool["exhausted"]["detail"].as_str().unwrap();
    assert!(exhausted.starts_with("PCI-DMA: Out of SW-IOMMU space for "), "{exhausted}");
}

/// Every scenario's field variants are expected failures: the run passes (exit 0) and the
/// record says which checks reproduced the field failure; KTAP marks them `# XFAIL` and
/// JUnit does not count them as failures.
#[test]
fn field_variants_are_expected_failures_and_the_run_passes() {
    let dir = std::env::temp_dir().join(format!("nicqual-scn-xfail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["netfront-resume", "dom0-memory-squeeze", "bnx2x-swiotlb-jumbo", "enic-jumbo"] {
        let json = dir.join(format!("{name}.json"));
        let out = nicqual(&["scenario", "run", name, "--json", json.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["verdict"], "pass", "{name}");
        let xfail = v["summary"]["xfail"].as_u64().unwrap();
        assert!(xfail >= 1, "{name}: the field failure is reproduced as an expected failure");
        let ktap = dir.join(format!("{name}.ktap"));
        let junit = dir.join(format!("{name}.xml"));
        let r = nicqual(&[
            "report",
            json.to_str().unwrap(),
            "--ktap",
            ktap.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&r.stderr));
        let k = std::fs::read_to_string(&ktap).unwrap();
        assert_eq!(k.matches(" # XFAIL ").count() as u64, xfail, "{k}");
        assert!(k.contains(&format!("xfail:{xfail} ")), "{k}");
        let x = std::fs::read_to_string(&junit).unwrap();
        assert!(x.contains(r#"failures="0""#), "{x}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
