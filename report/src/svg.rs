//! Inline SVG plots for the HTML report: plain text, no scripts, no external resources.

use crate::html::esc;
use crate::record::{BouncePoolTimeline, InterruptTimeline, JumboMatrix, Outcome, Throughput};
use std::fmt::Write;

pub const PASS: &str = "#2e7d32";
pub const FAIL: &str = "#c62828";
pub const NA: &str = "#9e9e9e";
pub const ERROR: &str = "#ef6c00";
const SERIES: [&str; 5] = ["#1565c0", "#6a1b9a", "#00838f", "#ad1457", "#558b2f"];

pub fn outcome_color(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => PASS,
        Outcome::Fail => FAIL,
        Outcome::Na | Outcome::Xfail => NA,
        Outcome::Error => ERROR,
    }
}

/// A number formatted compactly for axis labels.
fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}").trim_end_matches('0').to_string()
    }
}

/// Up to ~`n` round tick values covering 0..=max.
fn ticks(max: f64, n: usize) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0];
    }
    let raw = max / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    (0..=n * 2).map(|i| i as f64 * step).take_while(|v| *v <= max * 1.0001).collect()
}

/// Plot frame: data coordinates to SVG pixels.
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x_max: f64,
    y_max: f64,
}

impl Frame {
    fn new(w: f64, h: f64, x_max: f64, y_max: f64) -> Frame {
        Frame {
            w,
            h,
            left: 64.0,
            right: 16.0,
            top: 16.0,
            bottom: 40.0,
            x_max: x_max.max(1e-12),
            y_max: y_max.max(1e-12),
        }
    }
    fn x(&self, v: f64) -> f64 {
        self.left + (v / self.x_max).clamp(0.0, 1.0) * (self.w - self.left - self.right)
    }
    fn y(&self, v: f64) -> f64 {
        self.h - self.bottom - (v / self.y_max).clamp(0.0, 1.0) * (self.h - self.top - self.bottom)
    }
    fn open(&self, out: &mut String, label: &str) {
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}" font-family="sans-serif" font-size="11">"#,
            self.w,
            self.h,
            self.w,
            self.h,
            esc(label)
        );
    }
    /// Y axis with gridlines and label; X axis line and label.
    fn axes(&self, out: &mut String, x_label: &str, y_label: &str, y_ticks: &[f64]) {
        for t in y_ticks {
            let y = self.y(*t);
            let _ = write!(
                out,
                r##"<line x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                self.left,
                self.w - self.right,
                self.left - 6.0,
                y + 4.0,
                num(*t)
            );
        }
        let _ = write!(
            out,
            r##"<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#424242"/><line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#424242"/>"##,
            l = self.left,
            r = self.w - self.right,
            t = self.top,
            b = self.h - self.bottom
        );
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            (self.left + self.w - self.right) / 2.0,
            self.h - 6.0,
            esc(x_label),
            (self.top + self.h - self.bottom) / 2.0,
            esc(y_label)
        );
    }
    fn x_tick(&self, out: &mut String, x: f64, label: &str) {
        let b = self.h - self.bottom;
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{}" stroke="#424242"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            b + 4.0,
            b + 16.0,
            esc(label)
        );
    }
}

/// Interrupt delivery latency per MSI-X vector: one column per vector, a dot per delivery,
/// a red cross per loss (drawn above the plot area, counted).
pub fn interrupt_latency(t: &InterruptTimeline) -> String {
    let n = t.vectors.len().max(1);
    let max_lat =
        t.vectors.iter().flat_map(|v| v.deliveries.iter()).map(|d| d.latency_ns as f64 / 1e3).fold(0.0, f64::max);
    let y_max = if max_lat > 0.0 { max_lat * 1.25 } else { t.bound_ns.map_or(1.0, |b| b as f64 / 1e3) };
    let w = (120.0 * n as f64 + 100.0).clamp(360.0, 760.0);
    let mut f = Frame::new(w, 260.0, n as f64, y_max);
    f.top = 36.0;
    let mut o = String::new();
    f.open(&mut o, "interrupt delivery latency per MSI-X vector");
    f.axes(&mut o, "MSI-X vector", "latency (us)", &ticks(y_max, 5));
    if let Some(b) = t.bound_ns {
        let bu = b as f64 / 1e3;
        if bu <= y_max {
            let y = f.y(bu);
            let _ = write!(
                o,
                r##"<line x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="{FAIL}" stroke-dasharray="4 3"/><text x="{}" y="{:.1}" text-anchor="end" fill="{FAIL}">bound {} us</text>"##,
                f.left,
                f.w - f.right,
                f.w - f.right,
                y - 3.0,
                num(bu)
            );
        }
        // Above the scale, the figure's caption states the bound instead.
    }
    for (i, v) in t.vectors.iter().enumerate() {
        let cx = f.x(i as f64 + 0.5);
        let band = (f.w - f.left - f.right) / n as f64;
        let label = match &v.serves {
            Some(s) => format!("{} ({s})", v.vector),
            None => v.vector.to_string(),
        };
        f.x_tick(&mut o, cx, &label);
        let k = v.deliveries.len().max(1) as f64;
        for (j, d) in v.deliveries.iter().enumerate() {
            let jitter = if k > 1.0 { (j as f64 / (k - 1.0) - 0.5) * band * 0.5 } else { 0.0 };
            let us = d.latency_ns as f64 / 1e3;
            let _ = write!(
                o,
                r#"<circle class="delivery" cx="{:.1}" cy="{:.1}" r="3.5" fill="{}" fill-opacity="0.75"><title>vector {} at {:.3} ms: {} us</title></circle>"#,
                cx + jitter,
                f.y(us),
                SERIES[0],
                v.vector,
                d.t_ns as f64 / 1e6,
                num(us)
            );
        }
        if !v.lost_at_ns.is_empty() {
            let y = f.top - 14.0;
            let _ = write!(
                o,
                r#"<g class="lost" stroke="{FAIL}" stroke-width="2.5"><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/></g><text x="{:.1}" y="{:.1}" fill="{FAIL}" font-weight="bold">{} lost</text>"#,
                cx - 5.0,
                y - 5.0,
                cx + 5.0,
                y + 5.0,
                cx - 5.0,
                y + 5.0,
                cx + 5.0,
                y - 5.0,
                cx + 9.0,
                y + 4.0,
                v.lost_at_ns.len()
            );
        }
        if v.deliveries.is_empty() && v.lost_at_ns.is_empty() {
            let _ = write!(
                o,
                r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" fill="{NA}">no data</text>"#,
                f.y(y_max / 2.0)
            );
        }
    }
    o.push_str("</svg>");
    o
}

/// Bounce-pool slots in use over time, pool size, prediction, and the exhaustion point.
pub fn bounce_pool(p: &BouncePoolTimeline) -> String {
    let t_end = p.samples.iter().map(|s| s.t_ns).chain(p.exhausted.as_ref().map(|e| e.t_ns)).max().unwrap_or(1).max(1)
        as f64
        / 1e6;
    let used_max = p.samples.iter().map(|s| s.used).max().unwrap_or(0);
    let y_max = (p.slots_total.max(used_max).max(p.predicted_slots.unwrap_or(0)) as f64 * 1.1).max(1.0);
    let f = Frame::new(720.0, 280.0, t_end, y_max);
    let mut o = String::new();
    f.open(&mut o, "bounce-pool occupancy over time");
    f.axes(&mut o, "time (ms)", "slots in use", &ticks(y_max, 5));
    for t in ticks(t_end, 6) {
        f.x_tick(&mut o, f.x(t), &num(t));
    }
    let hline = |o: &mut String, v: f64, color: &str, dash: &str, label: &str| {
        let y = f.y(v);
        let _ = write!(
            o,
            r#"<line x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="{color}" stroke-dasharray="{dash}"/><text x="{}" y="{:.1}" fill="{color}">{}</text>"#,
            f.left,
            f.w - f.right,
            f.left + 4.0,
            y - 4.0,
            esc(label)
        );
    };
    hline(
        &mut o,
        p.slots_total as f64,
        "#424242",
        "6 3",
        &format!("pool: {} slots of {} B", p.slots_total, p.slot_bytes),
    );
    if let Some(pr) = p.predicted_slots {
        hline(&mut o, pr as f64, ERROR, "2 3", &format!("predicted need: {pr} slots"));
    }
    // Step line: occupancy holds until the next sample.
    let mut pts = String::new();
    let mut prev: Option<f64> = None;
    for s in &p.samples {
        let x = f.x(s.t_ns as f64 / 1e6);
        let y = f.y(s.used as f64);
        if let Some(py) = prev {
            let _ = write!(pts, "{x:.1},{py:.1} ");
        }
        let _ = write!(pts, "{x:.1},{y:.1} ");
        prev = Some(y);
    }
    let _ = write!(
        o,
        r#"<polyline id="pool-occupancy" fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
        SERIES[0],
        pts.trim_end()
    );
    if let Some(e) = &p.exhausted {
        let x = f.x(e.t_ns as f64 / 1e6);
        let _ = write!(
            o,
            r#"<g id="pool-exhausted"><line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="{FAIL}" stroke-width="2"/><circle cx="{x:.1}" cy="{:.1}" r="5" fill="{FAIL}"/><text x="{:.1}" y="{}" fill="{FAIL}" font-weight="bold" text-anchor="{}">exhausted at {} ms</text><title>{}</title></g>"#,
            f.top,
            f.h - f.bottom,
            f.y(p.slots_total as f64),
            if x > f.w / 2.0 { x - 6.0 } else { x + 6.0 },
            f.top + 12.0,
            if x > f.w / 2.0 { "end" } else { "start" },
            num(e.t_ns as f64 / 1e6),
            esc(&e.detail)
        );
    }
    o.push_str("</svg>");
    o
}

/// MTU x variant grid, each cell colored by verdict. Linear in the number of cells: cells
/// are placed through an index of rows and columns (the first cell for a position wins),
/// and positions without a cell draw nothing.
pub fn jumbo(m: &JumboMatrix) -> String {
    let mtus = m.mtus();
    let vars = m.variants();
    let row: std::collections::HashMap<u32, usize> = mtus.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let col: std::collections::HashMap<&str, usize> = vars.iter().enumerate().map(|(j, v)| (*v, j)).collect();
    let mut placed = std::collections::HashSet::new();
    let (cw, ch, lw, th) = (170.0, 28.0, 80.0, 30.0);
    let w = lw + cw * vars.len().max(1) as f64 + 8.0;
    let h = th + ch * mtus.len().max(1) as f64 + 8.0;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="jumbo-frame matrix" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(o, r#"<text x="4" y="20" font-weight="bold">MTU</text>"#);
    for (j, v) in vars.iter().enumerate() {
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="20" text-anchor="middle" font-weight="bold">{}</text>"#,
            lw + cw * (j as f64 + 0.5),
            esc(v)
        );
    }
    for (i, mtu) in mtus.iter().enumerate() {
        let _ = write!(o, r#"<text x="4" y="{:.1}">{mtu}</text>"#, th + ch * i as f64 + 18.0);
    }
    for c in &m.cells {
        let (Some(&i), Some(&j)) = (row.get(&c.mtu), col.get(c.variant.as_str())) else { continue };
        if !placed.insert((i, j)) {
            continue;
        }
        let (x, y, mtu) = (lw + cw * j as f64, th + ch * i as f64, c.mtu);
        let _ = write!(
            o,
            r#"<g class="cell {}"><rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}" rx="3"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="white" font-weight="bold">{}</text><title>MTU {mtu}, {}: {}</title></g>"#,
            c.result.as_str(),
            x + 2.0,
            cw - 4.0,
            ch - 4.0,
            outcome_color(c.result),
            x + cw / 2.0,
            y + 17.0,
            esc(&c.verdict.as_deref().unwrap_or(c.result.as_str()).to_uppercase()),
            esc(&c.variant),
            esc(&c.detail)
        );
    }
    o.push_str("</svg>");
    o
}

/// Throughput (bit/s, scaled) against frame size, one line per series.
pub fn throughput(t: &Throughput) -> String {
    let pts = t.series.iter().flat_map(|s| s.points.iter());
    let max_bps = pts.clone().map(|p| p.bits_per_s).fold(0.0, f64::max);
    let (scale, unit) = if max_bps >= 1e9 {
        (1e9, "Gbit/s")
    } else if max_bps >= 1e6 {
        (1e6, "Mbit/s")
    } else {
        (1e3, "kbit/s")
    };
    let mut sizes: Vec<u32> = pts.map(|p| p.frame_bytes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let n = sizes.len().max(1);
    let y_max = (max_bps / scale * 1.2).max(1e-9);
    let f = Frame::new(720.0, 280.0, n as f64, y_max);
    let mut o = String::new();
    f.open(&mut o, "throughput per frame size");
    f.axes(&mut o, "frame size (bytes)", &format!("throughput ({unit})"), &ticks(y_max, 5));
    let xi = |fb: u32| f.x(sizes.iter().position(|s| *s == fb).unwrap_or(0) as f64 + 0.5);
    for s in &sizes {
        f.x_tick(&mut o, xi(*s), &s.to_string());
    }
    for (k, s) in t.series.iter().enumerate() {
        let color = SERIES[k % SERIES.len()];
        let mut sorted = s.points.clone();
        sorted.sort_by_key(|p| p.frame_bytes);
        let line: Vec<String> =
            sorted.iter().map(|p| format!("{:.1},{:.1}", xi(p.frame_bytes), f.y(p.bits_per_s / scale))).collect();
        let _ = write!(o, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, line.join(" "));
        for p in &sorted {
            let _ = write!(
                o,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{}: {} B frames, {} {unit}, {} pkt/s</title></circle>"#,
                xi(p.frame_bytes),
                f.y(p.bits_per_s / scale),
                esc(&s.name),
                p.frame_bytes,
                num(p.bits_per_s / scale),
                num(p.packets_per_s)
            );
        }
        let _ = write!(
            o,
            r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            f.w - f.right - 120.0,
            f.top + 4.0 + 16.0 * k as f64,
            f.w - f.right - 106.0,
            f.top + 13.0 + 16.0 * k as f64,
            esc(&s.name)
        );
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(100.0, 5), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let t = ticks(7.3, 5);
        assert_eq!(t[1], 2.0);
        assert!(*t.last().unwrap() <= 7.3);
        assert_eq!(ticks(0.0, 5), vec![0.0]);
    }
}
