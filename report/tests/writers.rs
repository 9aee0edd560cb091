//! The writers against a record with failures, n/a, an error and every timeline.

use nicqual_report::*;

fn sample() -> RunRecord {
    let mut checks = vec![
        Check::new("pci-identity", Outcome::Pass, "8086:10d3").measure("t", 1.5, "us"),
        Check::new("vector[TxQ0]", Outcome::Fail, "MSI-X vector 1 (IVAR entry TxQ0) lost: 0/8 delivered <&>"),
        Check::new("vector[RxQ1]", Outcome::Na, "RxQ1 is not routed # one queue pair"),
        Check::new("eeprom", Outcome::Error, "transport: \"qtest\" socket closed"),
    ];
    checks[1].subjects = vec![Subject::vector(1), Subject::register("IVAR", 0xe4)];
    checks[1].action = Some("re-program IVAR & the MSI-X entry".into());
    checks[1].duration_ns = 80_000_000;
    let mut rec = RunRecord {
        schema: SCHEMA.into(),
        kind: "qualify".into(),
        tool: Tool { name: "nicqual".into(), version: "0.1.0".into(), commit: None },
        host: Host {
            hostname: "lab<1>".into(),
            os: "linux".into(),
            kernel: "6.1".into(),
            arch: "x86_64".into(),
            cpus: 2,
        },
        command: "nicqual qualify --fault lose-vector:1".into(),
        started_at: Some(rfc3339(0)),
        backend: BackendInfo {
            kind: "emulated".into(),
            name: "model:i82574l".into(),
            virtual_time: true,
            msix_table_access: true,
        },
        device: Device {
            spec: "model:i82574l".into(),
            name: Some("Intel 82574L".into()),
            vendor_id: "8086".into(),
            device_id: "10d3".into(),
            subsystem_vendor_id: "8086".into(),
            subsystem_id: "0000".into(),
            mac: Some("52:54:00:12:34:56".into()),
            driver: "nicqual-driver i82574".into(),
            ..Device::default()
        },
        seed: 1,
        fault_plan: serde_json::json!({"seed": 1, "fault": [{"kind": "lose-vector", "vector": 1, "at_ns": 0}]}),
        verdict: Verdict::Pass,
        summary: Summary::default(),
        checks,
        duration_ns: 2_200_000_000,
        wall_ns: 3_000_000,
        replay: Some("nicqual qualify --seed 1 --fault lose-vector:1".into()),
        timelines: Timelines {
            interrupts: Some(InterruptTimeline {
                bound_ns: Some(10_000_000),
                vectors: vec![
                    VectorTrace {
                        vector: 0,
                        serves: Some("RxQ0".into()),
                        deliveries: vec![Delivery { t_ns: 5, latency_ns: 50_000 }],
                        lost_at_ns: vec![],
                    },
                    VectorTrace { vector: 1, serves: Some("TxQ0".into()), deliveries: vec![], lost_at_ns: vec![7, 9] },
                ],
            }),
            bounce_pool: Some(BouncePoolTimeline {
                slots_total: 32768,
                slot_bytes: 2048,
                samples: vec![
                    PoolSample { t_ns: 0, used: 0 },
                    PoolSample { t_ns: 1_000_000, used: 30000 },
                    PoolSample { t_ns: 2_000_000, used: 32768 },
                ],
                exhausted: Some(Exhaustion {
                    t_ns: 2_000_000,
                    requested_slots: Some(5),
                    detail: "Out of SW-IOMMU space".into(),
                }),
                predicted_slots: Some(40000),
            }),
            jumbo: Some(JumboMatrix {
                cells: vec![
                    JumboCell {
                        mtu: 1500,
                        variant: "naive".into(),
                        result: Outcome::Pass,
                        detail: String::new(),
                        verdict: None,
                    },
                    JumboCell {
                        mtu: 9000,
                        variant: "naive".into(),
                        result: Outcome::Fail,
                        detail: "fragmented".into(),
                        verdict: Some("unsafe".into()),
                    },
                    JumboCell {
                        mtu: 9000,
                        variant: "nicqual".into(),
                        result: Outcome::Pass,
                        detail: String::new(),
                        verdict: None,
                    },
                ],
            }),
            kernel_log: None,
            throughput: Some(Throughput {
                clock: "virtual".into(),
                series: vec![ThroughputSeries {
                    name: "tx".into(),
                    points: vec![
                        ThroughputPoint { frame_bytes: 64, packets_per_s: 1.4e6, bits_per_s: 0.7e9 },
                        ThroughputPoint { frame_bytes: 1518, packets_per_s: 8.1e4, bits_per_s: 0.98e9 },
                    ],
                }],
            }),
        },
    };
    rec.settle();
    rec
}

#[test]
fn settle_counts_and_decides() {
    let r = sample();
    assert_eq!((r.summary.pass, r.summary.fail, r.summary.na, r.summary.error), (1, 1, 1, 1));
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.failures().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["vector[TxQ0]", "eeprom"]);
}

#[test]
fn json_round_trips_and_v1_records_still_read() {
    let r = sample();
    let back = RunRecord::from_json(&r.to_json(), "mem").unwrap();
    assert_eq!(back, r);
    let v1 = r#"{"schema":"nicqual.run/1","tool":{"name":"nicqual","version":"0.1.0"},"host":"box","command":"nicqual qualify",
      "backend":{"kind":"emulated","name":"model:i82574l","msix_table_access":true,"virtual_time":true},
      "device":{"spec":"model:i82574l","vendor_id":"8086","device_id":"10d3","subsystem":"8086:0000","mac":null,"driver":"nicqual-driver i82574"},
      "seed":1,"fault_plan":{"seed":1,"fault":[]},"verdict":"pass","summary":{"pass":1,"fail":0,"na":0,"error":0},
      "checks":[{"name":"reset","result":"pass","detail":"ok","duration_ns":5,"measurements":[{"name":"reset_time","value":1.0,"unit":"us"}]}],
      "duration_ns":5}"#;
    let old = RunRecord::from_json(v1, "v1").unwrap();
    assert_eq!(old.host.hostname, "box");
    assert_eq!(old.checks[0].measurements[0].unit, "us");
    assert!(RunRecord::from_json(r#"{"schema":"other/9"}"#, "x").unwrap_err().to_string().contains("other/9"));
}

#[test]
fn junit_has_the_common_shape_and_escapes() {
    let r = sample();
    let xml = junit::render(&r);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("4"));
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(suite.tag_name().name(), "testsuite");
    assert_eq!(suite.attribute("failures"), Some("1"));
    assert_eq!(suite.attribute("errors"), Some("1"));
    assert_eq!(suite.attribute("skipped"), Some("1"));
    assert_eq!(suite.attribute("hostname"), Some("lab<1>"));
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), r.checks.len());
    for (case, check) in cases.iter().zip(&r.checks) {
        assert_eq!(case.attribute("name"), Some(check.name.as_str()));
        assert!(case.attribute("classname").is_some() && case.attribute("time").unwrap().parse::<f64>().is_ok());
        let kids: Vec<&str> = case.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
        let want: &[&str] = match check.result {
            Outcome::Pass | Outcome::Xfail => &["system-out"],
            Outcome::Fail => &["failure", "system-out"],
            Outcome::Na => &["skipped", "system-out"],
            Outcome::Error => &["error", "system-out"],
        };
        assert_eq!(kids, want, "{}", check.name);
    }
    let failure = cases[1].children().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(failure.attribute("message"), Some(r.checks[1].detail.as_str()));
    let body = failure.text().unwrap();
    assert!(body.contains("action: re-program IVAR & the MSI-X entry"), "{body}");
    assert!(body.contains("MSI-X vector 1"), "{body}");
    let out = cases[0].children().find(|n| n.has_tag_name("system-out")).unwrap().text().unwrap();
    assert!(out.contains("t = 1.5 us"), "measurements in system-out: {out}");
    let seed = suite.descendants().find(|n| n.attribute("name") == Some("seed")).unwrap();
    assert_eq!(seed.attribute("value"), Some("1"));
}

#[test]
fn ktap_has_plan_results_and_totals() {
    let r = sample();
    let k = ktap::render(&r);
    let lines: Vec<&str> = k.lines().collect();
    assert_eq!(lines[0], "KTAP version 1");
    assert!(lines.contains(&"1..4"));
    let results: Vec<&str> =
        lines.iter().copied().filter(|l| l.starts_with("ok ") || l.starts_with("not ok ")).collect();
    assert_eq!(
        results,
        [
            "ok 1 pci-identity",
            "not ok 2 vector[TxQ0]",
            "ok 3 vector[RxQ1] # SKIP RxQ1 is not routed no. one queue pair",
            "not ok 4 eeprom # ERROR could not be carried out",
        ]
    );
    assert!(lines.iter().any(|l| l.starts_with("# vector[TxQ0]: action: re-program IVAR")));
    assert_eq!(*lines.last().unwrap(), "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:1");
    // Every non-result line is a diagnostic, the version or the plan.
    for l in &lines {
        assert!(
            l.starts_with("ok ")
                || l.starts_with("not ok ")
                || l.starts_with("# ")
                || *l == "KTAP version 1"
                || *l == "1..4",
            "{l}"
        );
    }
}

#[test]
fn html_is_self_contained_with_failures_first_and_every_plot() {
    let r = sample();
    let h = html::render(&r);
    for id in [
        "verdict",
        "failures",
        "plots",
        "plot-irq-latency",
        "plot-bounce-pool",
        "plot-jumbo",
        "plot-throughput",
        "checks",
        "run",
    ] {
        assert!(h.contains(&format!("id=\"{id}\"")), "missing #{id}");
    }
    assert!(!h.contains("<script"), "no script");
    assert!(!h.contains("src=") && !h.contains("href="), "no external resource");
    assert!(h.contains("default-src 'none'"));
    // Failures come before the plots and the full table.
    let f = h.find("id=\"failures\"").unwrap();
    assert!(f < h.find("id=\"plots\"").unwrap() && f < h.find("id=\"checks\"").unwrap());
    assert!(h.contains("MSI-X vector 1") && h.contains("re-program IVAR &amp; the MSI-X entry"));
    assert!(h.contains("exhausted at 2 ms"), "exhaustion marked");
    assert!(h.contains("2 lost"), "lost interrupts marked");
    assert!(h.contains("lost: 0/8 delivered &lt;&amp;&gt;"), "escaped");
}

#[test]
fn html_renders_only_the_plots_with_data() {
    let mut r = sample();
    r.timelines = Timelines::default();
    r.checks.retain(|c| c.result == Outcome::Pass);
    r.replay = None;
    r.settle();
    let h = html::render(&r);
    assert!(!h.contains("id=\"plots\"") && !h.contains("<svg"));
    assert!(h.contains("data-verdict=\"pass\"") && h.contains("No check failed"));
    r.timelines.jumbo = sample().timelines.jumbo;
    let h = html::render(&r);
    assert!(h.contains("id=\"plot-jumbo\"") && !h.contains("id=\"plot-bounce-pool\""));
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
}

/// Readers never trust a stored verdict or summary: a record whose checks fail but which
/// says "pass" is refused, naming what was stored and what the checks give.
#[test]
fn a_record_whose_verdict_contradicts_its_checks_is_refused() {
    let r = sample();
    let mut v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    v["verdict"] = "pass".into();
    let e = RunRecord::from_json(&v.to_string(), "forged.json").unwrap_err().to_string();
    assert!(e.contains("forged.json") && e.contains("verdict is pass") && e.contains("give fail"), "{e}");
    let mut v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    v["summary"]["fail"] = 0.into();
    let e = RunRecord::from_json(&v.to_string(), "forged.json").unwrap_err().to_string();
    assert!(
        e.contains("summary is pass 1 fail 0 na 1 error 1") && e.contains("give pass 1 fail 1 na 1 error 1"),
        "{e}"
    );
}

#[test]
fn oversized_inputs_are_cut_off_not_read_whole() {
    let e = RunRecord::load(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(e, ReadError::TooLarge { limit: MAX_RECORD_BYTES, .. }), "{e}");
}

/// Text fields come from the command line, devices and files: none of them may forge a KTAP
/// line or make the JUnit document ill-formed.
#[test]
fn hostile_text_cannot_forge_ktap_lines_or_break_xml() {
    let mut r = sample();
    let nasty = "model:x\nok 99 forged\r\u{b}\u{c}\u{85}\u{2028}ok 98 forged\u{2029}\u{fffe}\u{ffff}\u{1}\u{1b}[31m";
    r.device.spec = nasty.into();
    r.kind = format!("qualify{nasty}");
    r.checks[1].detail = nasty.into();
    r.checks[0].name = format!("pci{nasty}");
    r.replay = Some(nasty.into());
    let k = ktap::render(&r);
    let plans = k.lines().filter(|l| l.starts_with("1..")).count();
    assert_eq!(plans, 1, "{k}");
    assert_eq!(k.lines().filter(|l| l.starts_with("ok ") || l.starts_with("not ok ")).count(), r.checks.len(), "{k}");
    assert!(!k.chars().any(|c| c.is_control() && c != '\n' || matches!(c, '\u{2028}' | '\u{2029}')), "{k:?}");
    let x = junit::render(&r);
    roxmltree::Document::parse(&x).unwrap();
    assert!(!x.contains('\u{fffe}') && !x.contains('\u{ffff}'));
    assert_eq!(printable("a\u{85}b\u{2028}c\td"), "a b c d");
}

/// The jumbo plot is linear in the cells: every cell with its own MTU and variant used to
/// draw the whole MTU x variant grid.
#[test]
fn jumbo_plot_is_linear_in_the_cells() {
    let cell = |i: u32| JumboCell {
        mtu: 1000 + i,
        variant: format!("v{i}"),
        result: Outcome::Pass,
        detail: String::new(),
        verdict: None,
    };
    let small = svg::jumbo(&JumboMatrix { cells: (0..100).map(cell).collect() }).len();
    let big = svg::jumbo(&JumboMatrix { cells: (0..2000).map(cell).collect() }).len();
    assert!(big < small * 25, "100 cells: {small} B, 2000 cells: {big} B");
    let dup = JumboMatrix { cells: vec![cell(1), cell(1)] };
    assert_eq!(svg::jumbo(&dup).matches("<g class=\"cell").count(), 1);
}
