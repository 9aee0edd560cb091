//! Reading `nicqual bench --json` output (schema [`BENCH_SCHEMA`]) as a run record, so
//! `nicqual report BENCH.json --html out.html` plots throughput per frame size.
//!
//! Each result row becomes one check (`bench.<mode>[<frame_size>]`: pass when nothing was
//! lost and no write-back was refused) with its rates as measurements, and one point of the
//! throughput timeline (one series per NIC and batch size).

use crate::record::*;
use serde::Deserialize;

/// Schema `nicqual bench --json` writes.
pub const BENCH_SCHEMA: &str = "nicqual.bench/1";

#[derive(Deserialize)]
struct Bench {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    command: String,
    #[serde(default)]
    host: Option<Host>,
    #[serde(default)]
    results: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    #[serde(default)]
    nic: String,
    frame_size: u32,
    #[serde(default)]
    batch: u32,
    mpps: f64,
    gbps: f64,
    #[serde(default)]
    packets: u64,
    #[serde(default)]
    seconds: f64,
    #[serde(default)]
    lost: u64,
    #[serde(default)]
    wb_errors: u64,
}

/// Convert a bench document to a run record (`kind: bench`).
pub fn from_bench(v: serde_json::Value, path: &str) -> Result<RunRecord, ReadError> {
    let b: Bench = serde_json::from_value(v).map_err(|source| ReadError::Json { path: path.into(), source })?;
    let mode = if b.mode.is_empty() { "bench".to_string() } else { b.mode.clone() };
    let mut series: Vec<ThroughputSeries> = Vec::new();
    let mut checks = Vec::new();
    for r in &b.results {
        let name = format!("{} {mode}, batch {}", r.nic, r.batch);
        let point =
            ThroughputPoint { frame_bytes: r.frame_size, packets_per_s: r.mpps * 1e6, bits_per_s: r.gbps * 1e9 };
        match series.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push(point),
            None => series.push(ThroughputSeries { name, points: vec![point] }),
        }
        let ok = r.lost == 0 && r.wb_errors == 0;
        let mut c = Check::new(
            format!("bench.{mode}[{}]", r.frame_size),
            if ok { Outcome::Pass } else { Outcome::Fail },
            format!(
                "{} B frames: {:.3} Mpps, {:.3} Gbit/s over {:.2} s; {} lost, {} write-backs refused",
                r.frame_size, r.mpps, r.gbps, r.seconds, r.lost, r.wb_errors
            ),
        )
        .measure("rate", r.mpps, "Mpps")
        .measure("throughput", r.gbps, "Gbit/s")
        .measure("packets", r.packets as f64, "packets")
        .measure("lost", r.lost as f64, "packets");
        c.duration_ns = (r.seconds * 1e9) as u64;
        c.group = Some("bench".into());
        checks.push(c);
    }
    let nic = b.results.first().map(|r| r.nic.clone()).unwrap_or_default();
    let mut rec = RunRecord {
        schema: SCHEMA.to_string(),
        kind: "bench".into(),
        tool: Tool { name: "nicqual".into(), version: String::new(), commit: None },
        host: b.host.unwrap_or_default(),
        command: b.command,
        started_at: None,
        backend: BackendInfo {
            kind: "emulated".into(),
            name: nic.clone(),
            virtual_time: false,
            msix_table_access: false,
        },
        device: Device { spec: nic, driver: "nicqual-nics".into(), ..Device::default() },
        seed: 0,
        fault_plan: serde_json::Value::Null,
        verdict: Verdict::Pass,
        summary: Summary::default(),
        duration_ns: checks.iter().map(|c| c.duration_ns).sum(),
        checks,
        wall_ns: 0,
        replay: None,
        timelines: Timelines { throughput: Some(Throughput { clock: "wall".into(), series }), ..Timelines::default() },
    };
    rec.settle();
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_rows_become_checks_and_a_throughput_series() {
        let v = serde_json::json!({
            "schema": BENCH_SCHEMA, "kind": "bench", "mode": "loopback", "command": "nicqual bench",
            "host": {"hostname": "h", "os": "linux", "kernel": "6.12", "arch": "x86_64", "cpus": 2},
            "results": [
                {"nic": "model:i82574l", "frame_size": 64, "batch": 32, "mpps": 1.5, "gbps": 0.768,
                 "packets": 3000000, "seconds": 2.0, "lost": 0, "wb_errors": 0},
                {"nic": "model:i82574l", "frame_size": 1514, "batch": 32, "mpps": 0.5, "gbps": 6.056,
                 "packets": 1000000, "seconds": 2.0, "lost": 3, "wb_errors": 0}
            ]
        });
        let r = RunRecord::from_json(&v.to_string(), "b.json").unwrap();
        assert_eq!(r.kind, "bench");
        assert_eq!((r.summary.pass, r.summary.fail), (1, 1));
        let t = r.timelines.throughput.unwrap();
        assert_eq!(t.series.len(), 1);
        assert_eq!(t.series[0].points[1].frame_bytes, 1514);
        assert_eq!(t.series[0].points[1].bits_per_s, 6.056e9);
        assert_eq!(r.host.hostname, "h");
    }
}
