//! The HTML report: one self-contained page (inline CSS and SVG, no script, no network;
//! a Content-Security-Policy forbids any fetch). Verdict and failures with what to do come
//! first, so they fit the first screen; then the plots whose data the run recorded; then
//! every check; then how the run was made.
//!
//! Element ids other tools and tests rely on: `verdict`, `failures`, `plots`,
//! `plot-irq-latency`, `plot-bounce-pool`, `plot-jumbo`, `plot-throughput`, `checks`, `run`.

use crate::record::{Check, Outcome, RunRecord, Verdict};
use crate::svg;
use std::fmt::Write;

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#212121;background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:12px 20px 40px}
header.verdict{padding:10px 20px;color:#fff;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header.pass{background:#2e7d32} header.fail{background:#c62828} header.error{background:#ef6c00}
header h1{margin:0;font-size:28px;letter-spacing:1px}
header .what{font-size:15px} header .counts{font-size:15px;font-weight:600}
.replay{font:12px ui-monospace,monospace;background:#fff3f3;border:1px solid #ef9a9a;padding:4px 8px;margin:8px 0;overflow-wrap:anywhere}
h2{font-size:17px;margin:14px 0 6px}
ol.failures{list-style:none;margin:0;padding:0}
li.failure{background:#fff;border:1px solid #e0e0e0;border-left:6px solid #c62828;border-radius:4px;padding:6px 10px;margin:0 0 6px}
li.failure.error{border-left-color:#ef6c00}
.fhead{display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
.check{font:600 14px ui-monospace,monospace}
.badge{font-size:11px;font-weight:700;color:#fff;border-radius:3px;padding:1px 6px}
.b-pass{background:#2e7d32}.b-fail{background:#c62828}.b-na{background:#9e9e9e}.b-error{background:#ef6c00}.b-xfail{background:#9e9e9e}
.subject{font-size:12px;background:#fff8e1;border:1px solid #ffcc80;border-radius:10px;padding:0 8px;white-space:nowrap}
.action{margin-top:3px}.action b{color:#b71c1c}
.seen{margin-top:2px;font-size:12px;color:#555;overflow-wrap:anywhere}
.ok{background:#e8f5e9;border:1px solid #a5d6a7;padding:8px 12px;border-radius:4px}
figure{margin:0 0 14px;background:#fff;border:1px solid #e0e0e0;border-radius:4px;padding:8px 10px;display:inline-block;vertical-align:top;margin-right:12px}
figcaption{font-weight:600;margin-bottom:4px}
figure p{margin:4px 0 0;font-size:12px;color:#555;max-width:720px}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-size:12px}
td.t{white-space:nowrap;text-align:right;font-variant-numeric:tabular-nums}
td.d{font-size:13px;overflow-wrap:anywhere}
tr.r-fail td:first-child{border-left:4px solid #c62828}tr.r-error td:first-child{border-left:4px solid #ef6c00}
.m{font-size:12px;color:#37474f}
dl.run{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}
dl.run dt{font-weight:600}dl.run dd{margin:0;overflow-wrap:anywhere}
pre{background:#f5f5f5;padding:6px;margin:0;white-space:pre-wrap;font-size:12px}
"#;

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} us", ns as f64 / 1e3)
    }
}

fn badge(o: Outcome) -> String {
    let label = match o {
        Outcome::Na => "N/A".to_string(),
        o => o.as_str().to_uppercase(),
    };
    format!(r#"<span class="badge b-{}">{label}</span>"#, o.as_str())
}

fn failure_item(out: &mut String, c: &Check) {
    let _ = write!(
        out,
        r#"<li class="failure {}" data-check="{}"><div class="fhead">{} <span class="check">{}</span>"#,
        c.result.as_str(),
        esc(&c.name),
        badge(c.result),
        esc(&c.name)
    );
    for s in &c.subjects {
        let _ = write!(out, r#" <span class="subject">{}</span>"#, esc(&s.to_string()));
    }
    out.push_str("</div>");
    let action = c.action.as_deref().unwrap_or("Read the detail below; no specific advice is recorded for this check.");
    let _ = write!(out, r#"<div class="action"><b>What to do:</b> {}</div>"#, esc(action));
    let _ = write!(out, r#"<div class="seen"><b>Seen:</b> {}</div></li>"#, esc(&c.detail));
}

/// Render `rec` as one self-contained HTML page.
pub fn render(rec: &RunRecord) -> String {
    let s = &rec.summary;
    let verdict = match rec.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Error => "ERROR",
    };
    let dev = &rec.device;
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    o.push_str(r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">"#);
    o.push_str(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#);
    let _ = write!(
        o,
        "<title>nicqual {verdict}: {} {}</title><style>{CSS}</style></head><body>",
        esc(&rec.kind),
        esc(&dev.spec)
    );

    // Verdict line.
    let ident = format!(
        "{}{} {}:{} · {} backend",
        dev.name.as_deref().map(|n| format!("{n} ")).unwrap_or_default(),
        dev.spec,
        dev.vendor_id,
        dev.device_id,
        rec.backend.kind
    );
    let _ = write!(
        o,
        r#"<header id="verdict" class="verdict {}" data-verdict="{}"><h1>{verdict}</h1><span class="what">nicqual {} · {}</span><span class="counts">{} passed · {} failed · {} n/a · {} errors{}</span><span class="what">seed {} · {} {}</span></header><main>"#,
        rec.verdict.as_str(),
        rec.verdict.as_str(),
        esc(&rec.kind),
        esc(&ident),
        s.pass,
        s.fail,
        s.na,
        s.error,
        if s.xfail > 0 { format!(" · {} expected failures", s.xfail) } else { String::new() },
        rec.seed,
        fmt_ns(rec.duration_ns),
        if rec.backend.virtual_time { "virtual" } else { "device clock" }
    );

    // Failures first, with what to do.
    let failures: Vec<&Check> = rec.failures().collect();
    o.push_str(r#"<section id="failures">"#);
    if failures.is_empty() {
        let _ = write!(
            o,
            r#"<div class="ok">No check failed: {} passed, {} not applicable (listed below with the reason).</div>"#,
            s.pass, s.na
        );
    } else {
        let _ = write!(
            o,
            "<h2>{} check{} failed — what to do</h2>",
            failures.len(),
            if failures.len() == 1 { "" } else { "s" }
        );
        if let Some(r) = &rec.replay {
            let _ = write!(o, r#"<div class="replay">replay exactly: {}</div>"#, esc(r));
        }
        o.push_str(r#"<ol class="failures">"#);
        for c in &failures {
            failure_item(&mut o, c);
        }
        o.push_str("</ol>");
    }
    o.push_str("</section>");

    // Plots, only those with data.
    let t = &rec.timelines;
    if !t.is_empty() {
        o.push_str(r#"<section id="plots"><h2>Plots</h2>"#);
        if let Some(i) = &t.interrupts {
            let lost: usize = i.vectors.iter().map(|v| v.lost_at_ns.len()).sum();
            let got: usize = i.vectors.iter().map(|v| v.deliveries.len()).sum();
            let _ = write!(
                o,
                r#"<figure id="plot-irq-latency"><figcaption>Interrupt delivery latency per MSI-X vector</figcaption>{}<p>{got} delivered, {lost} lost (raised but never arrived within the bound{}).</p></figure>"#,
                svg::interrupt_latency(i),
                i.bound_ns.map(|b| format!(" of {}", fmt_ns(b))).unwrap_or_default()
            );
        }
        if let Some(p) = &t.bounce_pool {
            let note = match &p.exhausted {
                Some(e) => format!("Exhausted at {}: {}", fmt_ns(e.t_ns), esc(&e.detail)),
                None => format!(
                    "Never exhausted; peak {} of {} slots.",
                    p.samples.iter().map(|s| s.used).max().unwrap_or(0),
                    p.slots_total
                ),
            };
            let _ = write!(
                o,
                r#"<figure id="plot-bounce-pool"><figcaption>Bounce-pool occupancy over time</figcaption>{}<p>{note}</p></figure>"#,
                svg::bounce_pool(p)
            );
        }
        if let Some(m) = &t.jumbo {
            let _ = write!(
                o,
                r#"<figure id="plot-jumbo"><figcaption>Jumbo frames: MTU × verdict</figcaption>{}</figure>"#,
                svg::jumbo(m)
            );
        }
        if let Some(tp) = &t.throughput {
            let _ = write!(
                o,
                r#"<figure id="plot-throughput"><figcaption>Throughput per frame size{}</figcaption>{}</figure>"#,
                if tp.clock.is_empty() { String::new() } else { format!(" ({} clock)", esc(&tp.clock)) },
                svg::throughput(tp)
            );
        }
        if let Some(k) = &t.kernel_log {
            o.push_str(r#"<figure id="kernel-log"><figcaption>Kernel log (virtual time)</figcaption><pre>"#);
            for l in &k.lines {
                let _ = writeln!(o, "[{}] {} {}: {}", fmt_ns(l.t_ns), esc(&l.level), esc(&l.source), esc(&l.text));
            }
            o.push_str("</pre></figure>");
        }
        o.push_str("</section>");
    }

    // Every check.
    o.push_str(r#"<section id="checks"><h2>All checks</h2><table><thead><tr><th>check</th><th>result</th><th>time</th><th>detail</th></tr></thead><tbody>"#);
    for c in &rec.checks {
        let _ = write!(
            o,
            r#"<tr class="r-{}" data-check="{}"><td class="check">{}</td><td>{}</td><td class="t">{}</td><td class="d">{}"#,
            c.result.as_str(),
            esc(&c.name),
            esc(&c.name),
            badge(c.result),
            fmt_ns(c.duration_ns),
            esc(&c.detail)
        );
        if !c.measurements.is_empty() {
            let ms: Vec<String> = c
                .measurements
                .iter()
                .map(|m| format!("{} = {} {}", esc(&m.name), trim_num(m.value), esc(&m.unit)))
                .collect();
            let _ = write!(o, r#"<div class="m">{}</div>"#, ms.join(" · "));
        }
        o.push_str("</td></tr>");
    }
    o.push_str("</tbody></table></section>");

    // How the run was made.
    o.push_str(r#"<section id="run"><h2>Run</h2><dl class="run">"#);
    let mut row = |k: &str, v: String| {
        let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
    };
    row("tool", format!("{} {} (record {})", rec.tool.name, rec.tool.version, rec.schema));
    row("command", rec.command.clone());
    if let Some(t) = &rec.started_at {
        row("started", t.clone());
    }
    row(
        "host",
        format!(
            "{} ({} {} {}, {} CPUs)",
            rec.host.hostname, rec.host.os, rec.host.kernel, rec.host.arch, rec.host.cpus
        ),
    );
    row(
        "backend",
        format!(
            "{} {}{}",
            rec.backend.kind,
            rec.backend.name,
            if rec.backend.virtual_time { ", virtual time" } else { "" }
        ),
    );
    row(
        "device",
        format!(
            "{} PCI {}:{} subsystem {}:{}{}{}",
            dev.spec,
            dev.vendor_id,
            dev.device_id,
            dev.subsystem_vendor_id,
            dev.subsystem_id,
            dev.revision.map(|r| format!(" rev {r}")).unwrap_or_default(),
            dev.pci_address.as_deref().map(|a| format!(" at {a}")).unwrap_or_default()
        ),
    );
    row("MAC", dev.mac.clone().unwrap_or_else(|| "not read".into()));
    row(
        "driver",
        format!(
            "{}{}",
            dev.driver,
            dev.kernel_driver.as_deref().map(|k| format!(" (kernel: {k})")).unwrap_or_default()
        ),
    );
    row("seed", rec.seed.to_string());
    row("duration", format!("{} on the device clock, {} wall", fmt_ns(rec.duration_ns), fmt_ns(rec.wall_ns)));
    let plan = serde_json::to_string_pretty(&rec.fault_plan).unwrap_or_default();
    let _ = write!(o, "<dt>fault plan</dt><dd><pre>{}</pre></dd>", esc(&plan));
    o.push_str("</dl></section></main></body></html>\n");
    o
}

fn trim_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.3}") }
}
