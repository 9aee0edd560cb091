//! Report outputs from the outside: one `qualify` run writes JSON, JUnit, KTAP and HTML;
//! `report` re-renders a stored record identically; `regs` dumps registers; no progress
//! drawing when standard error is not a terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nicqual(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nicqual")).args(args).output().expect("run nicqual")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nicqual-reports-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Check a JUnit document's shape against the record; returns testcase names in order.
fn junit_cases(xml: &str, rec: &serde_json::Value) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).expect("JUnit is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(suites.len(), 1);
    assert!(suites.iter().all(|s| s.has_tag_name("testsuite")));
    let suite = suites[0];
    let sum = &rec["summary"];
    let total = ["pass", "fail", "na", "error"].iter().map(|k| sum[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(suite.attribute("tests").unwrap().parse::<u64>().unwrap(), total);
    assert_eq!(suite.attribute("failures").unwrap().parse::<u64>().unwrap(), sum["fail"].as_u64().unwrap());
    assert_eq!(suite.attribute("errors").unwrap().parse::<u64>().unwrap(), sum["error"].as_u64().unwrap());
    assert_eq!(suite.attribute("skipped").unwrap().parse::<u64>().unwrap(), sum["na"].as_u64().unwrap());
    let mut names = Vec::new();
    for (case, check) in suite.children().filter(|n| n.has_tag_name("testcase")).zip(rec["checks"].as_array().unwrap())
    {
        let name = case.attribute("name").unwrap();
        assert_eq!(name, check["name"].as_str().unwrap());
        assert!(case.attribute("classname").is_some());
        assert!(case.attribute("time").unwrap().parse::<f64>().is_ok());
        let kids: Vec<&str> = case.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
        let want: &[&str] = match check["result"].as_str().unwrap() {
            "pass" | "xfail" => &["system-out"],
            "fail" => &["failure", "system-out"],
            "na" => &["skipped", "system-out"],
            _ => &["error", "system-out"],
        };
        assert_eq!(kids, want, "{name}");
        if let Some(f) = case.children().find(|n| n.has_tag_name("failure")) {
            assert_eq!(f.attribute("message"), check["detail"].as_str());
            assert!(f.text().unwrap().contains("action: "), "{name}: failure says what to do");
        }
        names.push(name.to_string());
    }
    assert_eq!(names.len() as u64, total);
    names
}

/// Check KTAP text: version line, plan, numbered results, totals line matching the record.
fn check_ktap(k: &str, rec: &serde_json::Value) {
    let lines: Vec<&str> = k.lines().collect();
    assert_eq!(lines[0], "KTAP version 1");
    let checks = rec["checks"].as_array().unwrap();
    let plan = format!("1..{}", checks.len());
    assert_eq!(lines.iter().filter(|l| l.starts_with("1..")).collect::<Vec<_>>(), [&plan.as_str()]);
    let results: Vec<&str> =
        lines.iter().copied().filter(|l| l.starts_with("ok ") || l.starts_with("not ok ")).collect();
    assert_eq!(results.len(), checks.len());
    for (i, (line, c)) in results.iter().zip(checks).enumerate() {
        let name = c["name"].as_str().unwrap();
        let want = match c["result"].as_str().unwrap() {
            "pass" => format!("ok {} {name}", i + 1),
            "na" => format!("ok {} {name} # SKIP ", i + 1),
            "xfail" => format!("ok {} {name} # XFAIL ", i + 1),
            "fail" => format!("not ok {} {name}", i + 1),
            _ => format!("not ok {} {name} # ERROR", i + 1),
        };
        assert!(line.starts_with(&want), "{line} vs {want}");
    }
    let sum = &rec["summary"];
    assert_eq!(
        *lines.last().unwrap(),
        format!(
            "# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:{}",
            sum["pass"], sum["fail"], sum["na"], sum["error"]
        )
    );
}

#[test]
fn one_qualify_run_writes_json_junit_ktap_and_html() {
    let d = scratch("acceptance");
    let (json, xml, html) = (d.join("r.json"), d.join("r.xml"), d.join("r.html"));
    let out = nicqual(&["qualify", "--json", s(&json), "--junit", s(&xml), "--ktap", "--html", s(&html)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rec: serde_json::Value = serde_json::from_str(&read(&json)).unwrap();
    assert_eq!(rec["schema"], "nicqual.run/3");
    assert_eq!(rec["tool"]["commit"].as_str().map(str::len), Some(40), "the record names the commit it was built from");
    assert_eq!(rec["device"]["pci_link"], "x1 Gen1 (2.5 GT/s), Link Status 0x0011");
    assert!(rec["device"]["nvm_version"].is_string());
    assert_eq!(rec["verdict"], "pass");
    for k in ["tool", "host", "backend", "device", "seed", "fault_plan", "summary", "checks"] {
        assert!(!rec[k].is_null(), "record has {k}");
    }
    assert_eq!(rec["device"]["vendor_id"], "8086");
    assert_eq!(rec["device"]["subsystem_vendor_id"], "8086");
    assert_eq!(rec["device"]["driver"], "nicqual-nics i82574");
    assert_eq!(rec["backend"]["kind"], "emulated");
    assert!(rec["host"]["hostname"].is_string() && rec["tool"]["version"].is_string());
    junit_cases(&read(&xml), &rec);
    // --ktap without a file: KTAP owns stdout, the table went to stderr.
    let stdout = String::from_utf8_lossy(&out.stdout);
    check_ktap(&stdout, &rec);
    assert!(String::from_utf8_lossy(&out.stderr).contains("PASS: "), "table on stderr");
    let h = read(&html);
    assert!(
        h.contains("id=\"verdict\"") && h.contains("data-verdict=\"pass\"") && h.contains("id=\"plot-irq-latency\"")
    );
    // Every check the driver measured carries its unit.
    let reset = rec["checks"].as_array().unwrap().iter().find(|c| c["name"] == "reset").unwrap();
    assert_eq!(reset["measurements"][0]["unit"], "us");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn failing_run_record_names_vector_action_and_timeline() {
    let d = scratch("lost");
    let json = d.join("r.json");
    let xml = d.join("r.xml");
    let kt = d.join("r.ktap");
    let out =
        nicqual(&["qualify", "--fault", "lose-vector:1", "--json", s(&json), "--junit", s(&xml), "--ktap", s(&kt)]);
    assert_eq!(out.status.code(), Some(1));
    let rec: serde_json::Value = serde_json::from_str(&read(&json)).unwrap();
    let failed: Vec<&serde_json::Value> =
        rec["checks"].as_array().unwrap().iter().filter(|c| c["result"] == "fail").collect();
    assert!(!failed.is_empty());
    for c in &failed {
        let subs = c["subjects"].as_array().unwrap();
        assert!(subs.iter().any(|s| s["kind"] == "vector" && s["index"] == 1), "{}", c["name"]);
        assert!(c["action"].as_str().is_some_and(|a| !a.is_empty()), "{}", c["name"]);
    }
    assert!(rec["replay"].as_str().unwrap().contains("--seed 1"));
    // The interrupt timeline: vector 1 lost everything, vectors 0 and 2 delivered.
    let vecs = rec["timelines"]["interrupts"]["vectors"].as_array().unwrap();
    let v = |n: u64| vecs.iter().find(|t| t["vector"] == n).unwrap();
    assert!(v(1)["deliveries"].as_array().unwrap().is_empty());
    assert!(v(1)["lost_at_ns"].as_array().unwrap().len() >= 8);
    assert_eq!(v(1)["serves"], "TxQ0");
    for n in [0, 2] {
        assert!(v(n)["deliveries"].as_array().unwrap().len() >= 8);
        assert!(v(n)["lost_at_ns"].as_array().unwrap().is_empty());
    }
    junit_cases(&read(&xml), &rec);
    check_ktap(&read(&kt), &rec);
    assert!(read(&kt).contains("# vector[TxQ0]: involves MSI-X vector 1"));

    // Re-rendering the stored record gives the same JUnit and KTAP, and the run's verdict.
    let (xml2, html2) = (d.join("again.xml"), d.join("again.html"));
    let again = nicqual(&["report", s(&json), "--junit", s(&xml2), "--html", s(&html2), "--ktap"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(read(&xml2), read(&xml));
    assert_eq!(String::from_utf8_lossy(&again.stdout), read(&kt));
    assert!(read(&html2).contains("data-check=\"vector[TxQ0]\""));
    let json2 = nicqual(&["report", s(&json), "--json", "-"]);
    assert_eq!(String::from_utf8_lossy(&json2.stdout), read(&json));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn usage_errors_exit_2() {
    let out = nicqual(&["qualify", "--json", "-", "--ktap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard output"));
    assert_eq!(nicqual(&["report", "/nonexistent/run.json", "--ktap"]).status.code(), Some(2));
    let d = scratch("bad");
    let bad = d.join("bad.json");
    std::fs::write(&bad, r#"{"schema":"something/9"}"#).unwrap();
    let out = nicqual(&["report", s(&bad), "--ktap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("something/9"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn no_progress_drawing_without_a_terminal() {
    // Test processes' stderr is a pipe: nothing but log lines and the banner.
    let out = nicqual(&["qualify"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains('\r') && !err.contains("\x1b["), "{err:?}");
    let quiet = nicqual(&["qualify", "--quiet"]);
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    // RUST_LOG reaches tracing: one info line per check.
    let log =
        Command::new(env!("CARGO_BIN_EXE_nicqual")).args(["qualify"]).env("RUST_LOG", "nicqual=info").output().unwrap();
    let err = String::from_utf8_lossy(&log.stderr);
    assert!(err.lines().filter(|l| l.contains("INFO") && l.contains("nicqual::check")).count() >= 20, "{err}");
}

#[test]
fn regs_dumps_every_register_decoded_and_refuses_all_ones() {
    let out = nicqual(&["regs", "--up"]);
    assert!(out.status.success());
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.lines().next().unwrap().contains("8086:10d3"), "{t}");
    let ivar = t.lines().find(|l| l.starts_with("0x000e4: IVAR")).unwrap();
    assert!(ivar.ends_with("0x800a0908"), "{ivar}");
    assert!(t.contains("valid, MSI-X vector 1"), "IVAR decoded");
    assert!(t.lines().any(|l| l.trim_start().starts_with("LU ") && l.contains("link up")), "STATUS decoded");
    let raw = nicqual(&["regs", "--raw"]);
    let rt = String::from_utf8_lossy(&raw.stdout);
    assert!(rt.lines().skip(1).all(|l| l.starts_with("0x") && l.split(' ').count() == 2), "{rt}");
    let gone = nicqual(&["regs", "--fault", "surprise-removal"]);
    assert_eq!(gone.status.code(), Some(1));
    let g = String::from_utf8_lossy(&gone.stdout);
    assert!(g.lines().next().unwrap().contains("reads all-ones"), "{g}");
    assert_eq!(g.lines().count(), 1, "no garbage after the notice");
}

/// Run `nicqual args` on a pseudo-terminal (util-linux `script`); returns what it drew.
fn on_a_terminal(args: &str) -> String {
    let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_nicqual"));
    let out = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().expect("util-linux script");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn progress_bar_on_a_terminal_only_without_quiet() {
    // The bar has one step per check of the run record (each group's teardown included)
    // plus one attach per queue-pair group (two by default) and the reports: take the count
    // from the record rather than from this file.
    let rec = nicqual(&["qualify", "--quiet", "--json", "-"]);
    let rec: serde_json::Value = serde_json::from_slice(&rec.stdout).expect("run record on stdout");
    let checks = rec["checks"].as_array().map_or(0, Vec::len);
    assert!(checks > 20, "the record lists the suite's checks: {checks}");
    let steps = format!("/{} ", checks + 3);
    let drawn = on_a_terminal("qualify");
    // indicatif rate-limits redraws, so which steps get drawn is not fixed; the length is.
    assert!(drawn.contains("qualify [") && drawn.contains(&steps), "{steps} in {drawn:?}");
    assert!(drawn.contains("PASS: "), "the table follows");
    let quiet = on_a_terminal("qualify --quiet");
    assert!(!quiet.contains("qualify ["), "{quiet:?}");
    assert!(quiet.contains("PASS: "));
}

#[test]
fn report_plots_throughput_from_a_bench_record() {
    let dir = scratch("bench");
    let json = dir.join("b.json");
    let html = dir.join("b.html");
    // A short run: the figures do not matter here, only that the record carries them.
    let out = nicqual(&["bench", "--frame-size", "64,1514", "--seconds", "0.02", "--json", s(&json)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = nicqual(&["report", s(&json), "--html", s(&html), "--ktap"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ktap = String::from_utf8(out.stdout).unwrap();
    assert!(
        ktap.contains("1..2") && ktap.contains("ok 1 bench.loopback[64]") && ktap.contains("ok 2 bench.loopback[1514]")
    );
    let page = read(&html);
    assert!(page.contains("id=\"plot-throughput\""), "no throughput plot");
    assert!(page.contains("model:i82574l loopback, batch 32"));
}

/// Output files are checked before the run and written whole or not at all: two outputs on
/// one file, an output over the run's own input, and an unwritable directory are usage
/// errors (2) that change nothing; a record whose verdict contradicts its checks is refused.
#[test]
fn outputs_are_checked_before_the_run_and_never_clobber_inputs() {
    let d = scratch("safe-outputs");
    let x = d.join("x.json");
    let o = nicqual(&["qualify", "--quiet", "--json", s(&x), "--junit", s(&x)]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("both name"));
    assert!(!x.exists(), "nothing ran, nothing was written");

    let a = d.join("a.json");
    let o = nicqual(&["qualify", "--quiet", "--json", s(&a), "--html", "/nonexistent-nicqual-dir/r.html"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!a.exists(), "an unwritable output is found before the run, and a.json is not written");

    let r = d.join("r.json");
    let o = nicqual(&["qualify", "--quiet", "--json", s(&r)]);
    assert_eq!(o.status.code(), Some(0));
    let before = read(&r);
    let o = nicqual(&["report", s(&r), "--ktap", s(&r)]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read(&r), before, "report must not overwrite its own input");

    let mut v: serde_json::Value = serde_json::from_str(&before).unwrap();
    v["checks"][0]["result"] = "fail".into();
    let forged = d.join("forged.json");
    std::fs::write(&forged, v.to_string()).unwrap();
    let o = nicqual(&["report", s(&forged), "--ktap", s(&d.join("k.tap"))]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("its checks give"), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(&d);
}
