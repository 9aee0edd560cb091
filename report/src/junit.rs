//! JUnit XML as CI systems ingest it (Jenkins, GitLab, LAVA): `testsuites` > `testsuite` >
//! `testcase`, with `failure`, `error` or `skipped` children; one testcase per check.

use crate::record::{Outcome, RunRecord};
use std::fmt::Write;

/// Is `c` a character XML 1.0 allows in a document (the `Char` production)?
fn xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escape text for XML content and attribute values. Characters XML 1.0 forbids (C0
/// controls other than tab/LF/CR, U+FFFE, U+FFFF) become U+FFFD, so any text yields a
/// well-formed document.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' => o.push_str("&#10;"),
            '\t' | '\r' => o.push(' '),
            c if !xml_char(c) => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

fn secs(ns: u64) -> String {
    format!("{:.6}", ns as f64 / 1e9)
}

/// Render `rec` as a JUnit XML document.
pub fn render(rec: &RunRecord) -> String {
    let s = &rec.summary;
    let suite = format!("nicqual.{}.{}", rec.kind, rec.device.spec);
    let classname = format!("nicqual.{}", rec.device.spec.replace(':', "."));
    let mut x = String::new();
    let _ = writeln!(x, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        x,
        r#"<testsuites name="nicqual" tests="{}" failures="{}" errors="{}" skipped="{}" time="{}">"#,
        s.total(),
        s.fail,
        s.error,
        s.na,
        secs(rec.duration_ns)
    );
    let _ = writeln!(
        x,
        r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}" skipped="{}" time="{}" hostname="{}"{}>"#,
        xml_escape(&suite),
        s.total(),
        s.fail,
        s.error,
        s.na,
        secs(rec.duration_ns),
        xml_escape(&rec.host.hostname),
        rec.started_at
            .as_ref()
            .map_or(String::new(), |t| format!(r#" timestamp="{}""#, xml_escape(t.trim_end_matches('Z'))))
    );
    let _ = writeln!(x, "    <properties>");
    let mut props: Vec<(&str, String)> = vec![
        ("schema", rec.schema.clone()),
        ("tool.version", rec.tool.version.clone()),
        ("backend", rec.backend.kind.clone()),
        ("device", rec.device.spec.clone()),
        ("pci.id", format!("{}:{}", rec.device.vendor_id, rec.device.device_id)),
        ("pci.subsystem", format!("{}:{}", rec.device.subsystem_vendor_id, rec.device.subsystem_id)),
        ("driver", rec.device.driver.clone()),
        ("seed", rec.seed.to_string()),
        ("fault_plan", rec.fault_plan.to_string()),
        ("verdict", rec.verdict.as_str().to_string()),
    ];
    if let Some(m) = &rec.device.mac {
        props.push(("mac", m.clone()));
    }
    if let Some(r) = &rec.replay {
        props.push(("replay", r.clone()));
    }
    for (k, v) in props {
        let _ = writeln!(x, r#"      <property name="{k}" value="{}"/>"#, xml_escape(&v));
    }
    let _ = writeln!(x, "    </properties>");
    for c in &rec.checks {
        let open = format!(
            r#"    <testcase name="{}" classname="{}" time="{}""#,
            xml_escape(&c.name),
            xml_escape(&classname),
            secs(c.duration_ns)
        );
        let _ = writeln!(x, "{open}>");
        match c.result {
            // An expected failure is not a failure of the run: a passing testcase whose
            // output says what failed as the field did.
            Outcome::Pass | Outcome::Xfail => {}
            Outcome::Na => {
                let _ = writeln!(x, r#"      <skipped message="{}"/>"#, xml_escape(&c.detail));
            }
            Outcome::Fail | Outcome::Error => {
                let tag = if c.result == Outcome::Fail { "failure" } else { "error" };
                let mut body = c.detail.clone();
                for sub in &c.subjects {
                    body.push_str(&format!("\ninvolves: {sub}"));
                }
                if let Some(a) = &c.action {
                    body.push_str(&format!("\naction: {a}"));
                }
                if let Some(r) = &rec.replay {
                    body.push_str(&format!("\nreplay: {r}"));
                }
                let _ = writeln!(
                    x,
                    r#"      <{tag} message="{}" type="{}">{}</{tag}>"#,
                    xml_escape(&c.detail),
                    c.result.as_str(),
                    xml_escape(&body)
                );
            }
        }
        // What was seen and measured, for every check (CI systems show it per testcase).
        let mut out = c.detail.clone();
        for m in &c.measurements {
            out.push_str(&format!("\n{} = {} {}", m.name, m.value, m.unit));
        }
        let _ = writeln!(x, "      <system-out>{}</system-out>", xml_escape(&out));
        let _ = writeln!(x, "    </testcase>");
    }
    let _ = writeln!(x, "  </testsuite>");
    let _ = writeln!(x, "</testsuites>");
    x
}
