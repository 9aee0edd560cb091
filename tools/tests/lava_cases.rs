//! `--lava` from the outside: a faulted run's LAVA test cases, executed by `sh` against a
//! stand-in `lava-test-case` that records its arguments, name every check once (mapped to
//! LAVA's character set), fail the lost vector's checks, and carry the measurements; a
//! stored record re-renders to the same script.

use std::path::Path;
use std::process::Command;

fn nicqual(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nicqual")).args(args).output().expect("run nicqual")
}

#[test]
fn lost_vector_run_as_lava_test_cases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    let out = nicqual(&[
        "qualify",
        "--quiet",
        "--queues",
        "1",
        "--fault",
        "lose-vector:1",
        "--json",
        &p("run.json"),
        "--lava",
        &p("cases.sh"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let script = std::fs::read_to_string(d.join("cases.sh")).unwrap();
    // `report --lava -` on the stored record prints the same script.
    let again = nicqual(&["report", &p("run.json"), "--lava", "-"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), script);

    // Run it as a LAVA test shell would, with lava-test-case recording its arguments.
    let bin = d.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("lava-test-case");
    std::fs::write(&fake, format!("#!/bin/sh\necho \"$*\" >> {}\n", p("calls"))).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let st = Command::new("sh").arg("-ec").arg(format!(". {}", p("cases.sh"))).env("PATH", path).status().unwrap();
    assert!(st.success());
    let calls = std::fs::read_to_string(Path::new(&p("calls"))).unwrap();
    let cases: Vec<(String, String)> = calls
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(v.get(1), Some(&"--result"), "{l}");
            (v[0].to_string(), v[2].to_string())
        })
        .collect();
    let result_of = |n: &str| cases.iter().find(|c| c.0 == n).map(|c| c.1.as_str());

    let rec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("run.json")).unwrap()).unwrap();
    let checks = rec["checks"].as_array().unwrap();
    for c in checks {
        let name = nicqual_report::lava::case_name(c["name"].as_str().unwrap());
        let want = match c["result"].as_str().unwrap() {
            "pass" | "xfail" => "pass",
            "na" => "skip",
            _ => "fail",
        };
        assert_eq!(result_of(&name), Some(want), "{name}");
        for m in c["measurements"].as_array().into_iter().flatten() {
            let mname = format!("{name}.{}", m["name"].as_str().unwrap());
            let line = calls.lines().find(|l| l.starts_with(&format!("{mname} "))).unwrap_or_else(|| panic!("{mname}"));
            assert!(line.contains(&format!("--measurement {}", m["value"].as_f64().unwrap())), "{line}");
        }
    }
    // Every case name is unique and in LAVA's character set.
    let mut names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))), "{names:?}");
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len());
    // The lost vector (1, serving TxQ0) is named by the failing cases; the others pass.
    assert_eq!(result_of("vector-TxQ0"), Some("fail"));
    assert_eq!(result_of("msix-table-1"), Some("fail"));
    assert_eq!(result_of("vector-RxQ0"), Some("pass"));
    assert_eq!(result_of("vector-Other"), Some("pass"));
    assert_eq!(result_of("nicqual-verdict"), Some("fail"));
    assert_eq!(cases.last().map(|c| c.0.as_str()), Some("nicqual-verdict"));
}
