//! Ctrl-C (SIGINT) in the long-running commands: the run stops at the next safe point and
//! still reports what it measured.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn interrupt_after(args: &[&str], after: Duration) -> (Option<i32>, String, String, Duration) {
    let child = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nicqual");
    std::thread::sleep(after);
    let t0 = Instant::now();
    let st = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(st.success());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t0.elapsed(),
    )
}

#[test]
fn soak_stops_on_ctrl_c_and_reports() {
    let (code, out, err, took) =
        interrupt_after(&["soak", "--duration", "10min", "--seed", "3"], Duration::from_secs(2));
    assert!(took < Duration::from_secs(30), "stopped promptly ({took:?})");
    assert!(err.contains("interrupted"), "{err}");
    assert!(out.contains("unaccounted"), "the counts are still printed: {out}");
    assert_eq!(code, Some(0), "what ran is all accounted for: {out}\n{err}");
}

#[test]
fn bench_stops_on_ctrl_c_and_prints_what_it_measured() {
    let (code, out, err, took) =
        interrupt_after(&["bench", "--frame-size", "64,1514", "--seconds", "600"], Duration::from_secs(2));
    assert!(took < Duration::from_secs(30), "stopped promptly ({took:?})");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.lines().any(|l| l.starts_with("model:") && l.contains(" 64 ")), "{out}");
    assert!(err.contains("i82574l 1514 B and later not measured"), "{err}");
}
