//! The HTML report in a real browser: headless Chromium (Debian `chromium`, installed by
//! `make deps`) loads reports written by the CLI, the DOM must hold the key elements, the
//! page must log no error (its CSP forbids every fetch, so any attempt would be logged),
//! and for a failing run the failed check, the vector/register involved and the action
//! must lie within the first 1280x800 screen. Screenshots are kept in
//! `target/nicqual-artifacts/` for people to look at.
//!
//! Chromium missing is a failure, not a skip: `make test` installs it first.

use nicqual_report as rep;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const W: u32 = 1280;
const H: u32 = 800;

fn artifacts() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/nicqual-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nicqual-html-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn nicqual(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nicqual")).args(args).output().expect("run nicqual")
}

fn chromium_bin() -> String {
    let bin = std::env::var("NICQUAL_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let found = Command::new("sh").arg("-c").arg(format!("command -v {bin}")).output().unwrap();
    assert!(
        found.status.success(),
        "headless Chromium ({bin}) is not installed: run `make deps` (Debian package chromium)"
    );
    bin
}

/// Run headless Chromium with `extra` args on `page`; bounded, whole process group killed
/// on timeout. Returns (stdout, stderr).
fn chromium(page: &Path, extra: &[String], profile: &Path) -> (String, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(chromium_bin());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--window-size={W},{H}"))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn().expect("start chromium");
    let pid = child.id();
    let out_h = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut v = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut v);
            v
        })
    });
    let err_h = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut v = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut v);
            v
        })
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if t0.elapsed() > Duration::from_secs(90) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever happened, nothing of this Chromium survives the test.
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
    let _ = child.wait();
    // Nothing of this Chromium is left (its helpers share the process group).
    for _ in 0..50 {
        let left = Command::new("pgrep").args(["-g", &pid.to_string()]).output().map(|o| o.stdout).unwrap_or_default();
        if left.is_empty() {
            break;
        }
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = Command::new("pgrep").args(["-g", &pid.to_string()]).output().map(|o| o.stdout).unwrap_or_default();
    assert!(left.is_empty(), "chromium processes left: {}", String::from_utf8_lossy(&left));
    let out = out_h.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
    let err = err_h.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
    assert!(status.is_some_and(|s| s.success()), "chromium failed or timed out on {}: {err}", page.display());
    (out, err)
}

/// Console messages Chromium logged for the page (script errors, CSP refusals, failed loads).
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE") || l.contains("Refused to") || l.contains("net::ERR_")).collect()
}

/// A copy of the report with a probe script that records, after layout, whether each
/// failure card's check name, subjects and action lie within the first screen. The copy's
/// CSP allows that inline script and still nothing from the network.
fn probe_copy(html: &str, dir: &Path) -> PathBuf {
    let probe = r#"<script>
window.addEventListener('load', function () {
  var h = window.innerHeight, out = [];
  document.querySelectorAll('#failures li.failure').forEach(function (li) {
    var below = function (sel) { var e = li.querySelector(sel); return !e || e.getBoundingClientRect().bottom > h; };
    out.push(li.dataset.check + '=' + (below('.check') || below('.subject') || below('.action') ? 'below' : 'first-screen'));
  });
  document.body.setAttribute('data-probe', out.join(';') + '|h=' + h);
});
</script></body>"#;
    let with_csp = html.replace(
        "default-src 'none'; style-src 'unsafe-inline'",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
    );
    assert_ne!(with_csp, html, "report carries the expected CSP");
    let p = dir.join("probe.html");
    std::fs::write(&p, with_csp.replace("</body>", probe)).unwrap();
    p
}

fn probe_result(dom: &str) -> String {
    let i = dom.find("data-probe=\"").expect("probe ran (no script error)") + 12;
    dom[i..i + dom[i..].find('"').unwrap()].to_string()
}

#[test]
fn failing_run_shows_check_vector_and_action_in_the_first_screen() {
    let dir = scratch("fail");
    let html = dir.join("r.html");
    let out =
        nicqual(&["qualify", "--quiet", "--queues", "1", "--fault", "lose-vector:1", "--html", html.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&html).unwrap();

    // The report as written: loads with no console error and no fetch; key elements there.
    let (dom, err) = chromium(&html, &["--dump-dom".into()], &dir.join("profile1"));
    assert!(console_errors(&err).is_empty(), "{:?}", console_errors(&err));
    for id in ["verdict", "failures", "plots", "plot-irq-latency", "checks", "run"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "#{id} missing from the rendered DOM");
    }
    assert!(dom.contains("data-verdict=\"fail\""));
    for absent in ["plot-bounce-pool", "plot-jumbo", "plot-throughput"] {
        assert!(!dom.contains(absent), "{absent}: no data, no plot");
    }
    let pat = "class=\"failure fail\" data-check=\"";
    let cards: Vec<&str> = dom.match_indices(pat).map(|(i, _)| &dom[i + pat.len()..]).collect();
    let names: Vec<&str> = cards.iter().map(|c| &c[..c.find('"').unwrap()]).collect();
    assert_eq!(names, ["msix-table[1]", "vector[TxQ0]", "irq-watchdog", "recovery"]);
    let first = &dom[dom.find("id=\"failures\"").unwrap()..dom.find("id=\"plots\"").unwrap()];
    assert!(first.contains("MSI-X vector 1") && first.contains("IVAR entry TxQ0") && first.contains("What to do:"));

    // Layout: every failure card's name, subjects and action within the first screen.
    let probe = probe_copy(&text, &dir);
    let (dom, err) = chromium(&probe, &["--dump-dom".into()], &dir.join("profile2"));
    assert!(console_errors(&err).is_empty(), "{:?}", console_errors(&err));
    let res = probe_result(&dom);
    // The viewport of a 1280x800 window (Chromium reserves part of it for its own UI).
    let h: u32 = res.rsplit("|h=").next().unwrap().parse().unwrap();
    assert!((600..=H).contains(&h), "{res}");
    let cards: Vec<&str> = res.split('|').next().unwrap().split(';').collect();
    assert_eq!(cards.len(), 4, "{res}");
    assert!(cards.iter().all(|c| c.ends_with("=first-screen")), "{res}");

    let shot = artifacts().join("report-lost-vector.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&html, &[format!("--screenshot={}", shot.display())], &dir.join("profile3"));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A record with every timeline (synthetic data in the shapes the scenarios write).
fn all_plots_record() -> rep::RunRecord {
    let mut checks = vec![
        rep::Check::new("swiotlb-predict", rep::Outcome::Fail, "ring needs 40960 slots, pool has 32768"),
        rep::Check::new("jumbo[9000]", rep::Outcome::Pass, "9000-byte frames intact"),
    ];
    checks[0].subjects = vec![rep::Subject::new(rep::SubjectKind::Buffer, "SWIOTLB pool")];
    checks[0].action = Some("Enable GRO or use 2 KiB rx buffers, or raise swiotlb= on the kernel command line".into());
    let samples = (0..=40).map(|i| rep::PoolSample { t_ns: i * 250_000, used: (i * 900).min(32768) }).collect();
    let mut rec = rep::RunRecord {
        schema: rep::SCHEMA.into(),
        kind: "scenario:synthetic".into(),
        tool: rep::Tool { name: "nicqual".into(), version: "test".into(), commit: None },
        host: rep::Host::this(),
        command: "synthetic".into(),
        started_at: None,
        backend: rep::BackendInfo {
            kind: "emulated".into(),
            name: "model".into(),
            virtual_time: true,
            msix_table_access: true,
        },
        device: rep::Device {
            spec: "model:synthetic".into(),
            vendor_id: "14e4".into(),
            device_id: "168e".into(),
            driver: "test".into(),
            ..Default::default()
        },
        seed: 3,
        fault_plan: serde_json::json!({"seed": 3, "fault": []}),
        verdict: rep::Verdict::Pass,
        summary: rep::Summary::default(),
        checks,
        duration_ns: 10_000_000,
        wall_ns: 1,
        replay: None,
        timelines: rep::Timelines {
            interrupts: Some(rep::InterruptTimeline {
                bound_ns: Some(100_000),
                vectors: (0..3)
                    .map(|v| rep::VectorTrace {
                        vector: v,
                        serves: None,
                        deliveries: (0..8)
                            .map(|k| rep::Delivery { t_ns: k * 1000, latency_ns: 20_000 + 5_000 * (k + u64::from(v)) })
                            .collect(),
                        lost_at_ns: if v == 1 { vec![5] } else { vec![] },
                    })
                    .collect(),
            }),
            bounce_pool: Some(rep::BouncePoolTimeline {
                slots_total: 32768,
                slot_bytes: 2048,
                samples,
                exhausted: Some(rep::Exhaustion {
                    t_ns: 9_250_000,
                    requested_slots: Some(5),
                    detail: "swiotlb buffer is full".into(),
                }),
                predicted_slots: Some(40960),
            }),
            jumbo: Some(rep::JumboMatrix {
                cells: [1500u32, 4000, 9000]
                    .iter()
                    .flat_map(|&mtu| {
                        [
                            rep::JumboCell {
                                mtu,
                                variant: "naive driver".into(),
                                result: if mtu > 4000 { rep::Outcome::Fail } else { rep::Outcome::Pass },
                                detail: String::new(),
                                verdict: Some(if mtu > 4000 { "unsafe" } else { "supported" }.into()),
                            },
                            rep::JumboCell {
                                mtu,
                                variant: "nicqual driver".into(),
                                result: rep::Outcome::Pass,
                                detail: String::new(),
                                verdict: None,
                            },
                        ]
                    })
                    .collect(),
            }),
            kernel_log: None,
            throughput: Some(rep::Throughput {
                clock: "virtual".into(),
                series: vec![rep::ThroughputSeries {
                    name: "tx".into(),
                    points: [64u32, 512, 1518, 9018]
                        .iter()
                        .map(|&f| rep::ThroughputPoint {
                            frame_bytes: f,
                            packets_per_s: 1e9 / ((f + 20) as f64 * 8.0),
                            bits_per_s: 1e9 * f as f64 / (f + 20) as f64,
                        })
                        .collect(),
                }],
            }),
        },
    };
    rec.settle();
    rec
}

#[test]
fn every_plot_renders_from_a_stored_record() {
    let dir = scratch("plots");
    let json = dir.join("run.json");
    std::fs::write(&json, all_plots_record().to_json()).unwrap();
    let html = dir.join("r.html");
    let out = nicqual(&["report", json.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let (dom, err) = chromium(&html, &["--dump-dom".into()], &dir.join("profile1"));
    assert!(console_errors(&err).is_empty(), "{:?}", console_errors(&err));
    for id in ["plot-irq-latency", "plot-bounce-pool", "pool-exhausted", "plot-jumbo", "plot-throughput"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "#{id} missing");
    }
    assert_eq!(dom.matches("class=\"delivery\"").count(), 24);
    // Only MTU 9000 with the naive driver fails.
    assert_eq!(dom.matches("class=\"cell fail\"").count(), 1);
    assert_eq!(dom.matches("class=\"cell pass\"").count(), 5);
    let shot = artifacts().join("report-all-plots.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&html, &[format!("--screenshot={}", shot.display()), format!("--window-size={W},2000")], &dir.join("p2"));
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
    let _ = std::fs::remove_dir_all(&dir);
}
