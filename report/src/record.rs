//! The run record: one JSON document per run, schema [`SCHEMA`] (docs/REPORT.md).
//!
//! Every writer (JSON, JUnit, KTAP, HTML) renders from this one type, so a stored record
//! re-renders to exactly what the run printed. Fields are only ever added; a reader of
//! `nicqual.run/3` also reads `nicqual.run/1` and `/2` records (missing fields take defaults).

use serde::{Deserialize, Serialize};

/// Schema written by this version (3: `verdict` can be `error`, `summary.xfail`).
pub const SCHEMA: &str = "nicqual.run/3";
/// Schemas this version reads.
pub const SCHEMAS_READ: &[&str] = &["nicqual.run/1", "nicqual.run/2", SCHEMA];

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// Not applicable here, or not run because an earlier finding made it meaningless.
    Na,
    /// The check could not be carried out (transport or setup error).
    Error,
    /// Expected failure: a scenario variant that reproduces a field failure by design
    /// (the naive driver, the old kernel) failed as the field did. Not a failure of the run.
    Xfail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Na => "na",
            Outcome::Error => "error",
            Outcome::Xfail => "xfail",
        }
    }

    /// Failed or errored: the run cannot pass.
    pub fn is_bad(self) -> bool {
        matches!(self, Outcome::Fail | Outcome::Error)
    }
}

/// Verdict of the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Everything that applied passed.
    Pass,
    /// The device failed at least one check.
    Fail,
    /// Nothing failed, but something could not be carried out (the environment: IOMMU off,
    /// QEMU missing, device not found, a transport error): no verdict on the device.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
        }
    }

    /// The exit status a command reports for this verdict: 0 pass, 1 the device failed a
    /// check, 3 could not run (2 is kept for usage and input errors).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Error => 3,
        }
    }
}

/// The program that wrote the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
    /// The git commit the tool was built from, when built from a checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl Tool {
    /// This build of nicqual: its version and the commit it was built from.
    pub fn this() -> Tool {
        Tool {
            name: "nicqual".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            commit: option_env!("NICQUAL_GIT_COMMIT").map(str::to_string),
        }
    }
}

/// The machine the run happened on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "HostRepr")]
pub struct Host {
    pub hostname: String,
    #[serde(default)]
    pub os: String,
    /// Kernel release (`uname -r`).
    #[serde(default)]
    pub kernel: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub cpus: u32,
}

/// `nicqual.run/1` stored the host as a bare hostname.
#[derive(Deserialize)]
#[serde(untagged)]
enum HostRepr {
    Name(String),
    Full {
        hostname: String,
        #[serde(default)]
        os: String,
        #[serde(default)]
        kernel: String,
        #[serde(default)]
        arch: String,
        #[serde(default)]
        cpus: u32,
    },
}

impl From<HostRepr> for Host {
    fn from(h: HostRepr) -> Self {
        match h {
            HostRepr::Name(hostname) => Host { hostname, ..Host::default() },
            HostRepr::Full { hostname, os, kernel, arch, cpus } => Host { hostname, os, kernel, arch, cpus },
        }
    }
}

impl Host {
    /// The machine this process runs on (Linux /proc; `unknown` where unreadable).
    pub fn this() -> Host {
        let read =
            |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into());
        Host {
            hostname: read("/proc/sys/kernel/hostname"),
            os: std::env::consts::OS.to_string(),
            kernel: read("/proc/sys/kernel/osrelease"),
            arch: std::env::consts::ARCH.to_string(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
        }
    }
}

/// How the device was driven.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `emulated`, `vfio`, `qtest`.
    pub kind: String,
    /// Device name as the backend knows it (`model:i82574l`, `0000:00:04.0`).
    pub name: String,
    /// True when time is virtual (durations are on the model's clock).
    #[serde(default)]
    pub virtual_time: bool,
    /// True when the driver could read the MSI-X table itself.
    #[serde(default)]
    pub msix_table_access: bool,
}

/// What was qualified.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Device {
    /// As given on the command line (`model:i82574l`, `vfio:0000:00:04.0`).
    pub spec: String,
    /// Marketing name, when known (`Intel 82574L`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// PCI address (domain:bus:dev.fn) for real devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_address: Option<String>,
    /// Four lowercase hex digits each.
    pub vendor_id: String,
    pub device_id: String,
    #[serde(default)]
    pub subsystem_vendor_id: String,
    #[serde(default)]
    pub subsystem_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u8>,
    /// As read from the device (EEPROM), `aa:bb:cc:dd:ee:ff`.
    #[serde(default)]
    pub mac: Option<String>,
    /// The driver that ran the checks (`nicqual-nics i82574`).
    pub driver: String,
    /// The kernel driver bound to the function during the run (`vfio-pci`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_driver: Option<String>,
    /// The device's NVM / firmware version where it has one (82574L: EEPROM word 0x05,
    /// as ethtool's `firmware-version` prints it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvm_version: Option<String>,
    /// The PCI Express link as the function reports it (`x1 Gen1 (2.5 GT/s)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_link: Option<String>,
}

/// A measured value with its unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

/// Kind of thing a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectKind {
    /// A device register (`offset` = BAR0 offset).
    Register,
    /// An MSI-X vector (`index`).
    Vector,
    /// An interrupt routing entry (IVAR entry on the 82574L; `index` = entry index).
    IvarEntry,
    /// An MSI-X table entry (`index`; `offset` = BAR3 offset).
    MsixEntry,
    /// A descriptor ring or queue.
    Queue,
    /// A DMA buffer or mapping (`offset` = IOVA).
    Buffer,
    /// A PCI configuration-space field (`offset` = config offset).
    Config,
    /// The whole device.
    Device,
}

impl SubjectKind {
    pub fn label(self) -> &'static str {
        match self {
            SubjectKind::Register => "register",
            SubjectKind::Vector => "vector",
            SubjectKind::IvarEntry => "IVAR entry",
            SubjectKind::MsixEntry => "MSI-X table entry",
            SubjectKind::Queue => "queue",
            SubjectKind::Buffer => "buffer",
            SubjectKind::Config => "config",
            SubjectKind::Device => "device",
        }
    }
}

/// A register, vector, entry or buffer a check's finding involves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub kind: SubjectKind,
    /// Human name (`IVAR`, `MSI-X vector 1`, `TxQ0`).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

impl Subject {
    pub fn register(name: impl Into<String>, offset: u64) -> Self {
        Subject { kind: SubjectKind::Register, name: name.into(), offset: Some(offset), index: None }
    }

    pub fn vector(index: u64) -> Self {
        Subject { kind: SubjectKind::Vector, name: format!("MSI-X vector {index}"), offset: None, index: Some(index) }
    }

    pub fn new(kind: SubjectKind, name: impl Into<String>) -> Self {
        Subject { kind, name: name.into(), offset: None, index: None }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.kind, self.offset) {
            (SubjectKind::Vector, _) => f.write_str(&self.name),
            (SubjectKind::Register, Some(o)) => write!(f, "register {} ({o:#07x})", self.name),
            (SubjectKind::MsixEntry, Some(o)) => write!(f, "{} (BAR3 {o:#06x})", self.name),
            (SubjectKind::Buffer, Some(o)) => write!(f, "buffer {} (IOVA {o:#x})", self.name),
            (SubjectKind::Config, Some(o)) => write!(f, "config {} ({o:#04x})", self.name),
            (k, _) => write!(f, "{} {}", k.label(), self.name),
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable name (`vector[TxQ0]`); the JUnit testcase and KTAP test name.
    pub name: String,
    pub result: Outcome,
    /// Why: what was seen (the reason for fail / na / error).
    pub detail: String,
    /// On the backend's clock (virtual for emulated devices).
    #[serde(default)]
    pub duration_ns: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    /// Registers, vectors, entries the finding involves (most specific first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<Subject>,
    /// What to do about a failure (filled for fail/error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Group the check belongs to (`interrupts`, `datapath`, ...), for grouping in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Check {
    pub fn new(name: impl Into<String>, result: Outcome, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            result,
            detail: detail.into(),
            duration_ns: 0,
            measurements: Vec::new(),
            subjects: Vec::new(),
            action: None,
            group: None,
        }
    }

    pub fn measure(mut self, name: impl Into<String>, value: f64, unit: impl Into<String>) -> Self {
        self.measurements.push(Measurement { name: name.into(), value, unit: unit.into() });
        self
    }
}

/// Counts per outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub na: usize,
    pub error: usize,
    /// Expected failures (scenario variants that reproduce the field failure by design).
    #[serde(default)]
    pub xfail: usize,
}

impl Summary {
    pub fn of(checks: &[Check]) -> Summary {
        let n = |o: Outcome| checks.iter().filter(|c| c.result == o).count();
        Summary {
            pass: n(Outcome::Pass),
            fail: n(Outcome::Fail),
            na: n(Outcome::Na),
            error: n(Outcome::Error),
            xfail: n(Outcome::Xfail),
        }
    }

    pub fn total(&self) -> usize {
        self.pass + self.fail + self.na + self.error + self.xfail
    }

    pub fn verdict(&self) -> Verdict {
        if self.fail > 0 {
            Verdict::Fail
        } else if self.error > 0 {
            Verdict::Error
        } else {
            Verdict::Pass
        }
    }
}

/// One interrupt that arrived: when the cause was raised, and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// When the cause was raised, ns on the backend's clock.
    pub t_ns: u64,
    pub latency_ns: u64,
}

/// Interrupt deliveries of one MSI-X vector.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VectorTrace {
    pub vector: u16,
    /// What the vector serves (`TxQ0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serves: Option<String>,
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
    /// Times (ns) at which a raised cause never arrived within the bound.
    #[serde(default)]
    pub lost_at_ns: Vec<u64>,
}

/// Per-vector interrupt deliveries with latency.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InterruptTimeline {
    /// The delivery bound the driver waited for, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_ns: Option<u64>,
    pub vectors: Vec<VectorTrace>,
}

/// Bounce-pool occupancy at one time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PoolSample {
    pub t_ns: u64,
    /// Slots in use.
    pub used: u64,
}

/// The moment the bounce pool could not satisfy a mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exhaustion {
    pub t_ns: u64,
    /// Slots the failed mapping asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_slots: Option<u64>,
    /// What happened (the typed error, the log line).
    pub detail: String,
}

/// SWIOTLB-style bounce-pool occupancy over time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BouncePoolTimeline {
    pub slots_total: u64,
    /// Bytes per slot (2048 on Linux).
    pub slot_bytes: u64,
    pub samples: Vec<PoolSample>,
    /// First failed mapping, if the pool ran out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhausted: Option<Exhaustion>,
    /// Slots the ring configuration needs, predicted before traffic started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_slots: Option<u64>,
}

/// One (MTU, variant) cell of the jumbo-frame matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JumboCell {
    pub mtu: u32,
    /// Column: driver / device / configuration (`enic naive`, `enic nicqual`).
    pub variant: String,
    pub result: Outcome,
    #[serde(default)]
    pub detail: String,
    /// The cell's own word for its verdict (`supported`, `unsafe`, `unsupported`), shown in
    /// place of the outcome when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}

/// MTU x variant verdicts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JumboMatrix {
    pub cells: Vec<JumboCell>,
}

impl JumboMatrix {
    /// Distinct MTUs, ascending.
    pub fn mtus(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.cells.iter().map(|c| c.mtu).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Distinct variants, in first-seen order.
    pub fn variants(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.cells.iter().map(|c| c.variant.as_str()).filter(|v| seen.insert(*v)).collect()
    }
}

/// Throughput at one frame size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThroughputPoint {
    pub frame_bytes: u32,
    pub packets_per_s: f64,
    pub bits_per_s: f64,
}

/// One curve of throughput against frame size.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ThroughputSeries {
    /// `tx`, `rx`, `loopback`, ...
    pub name: String,
    pub points: Vec<ThroughputPoint>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Throughput {
    /// Whose clock measured it: `virtual` (model) or `wall`.
    #[serde(default)]
    pub clock: String,
    pub series: Vec<ThroughputSeries>,
}

/// Kernel log lines a model printed, with the virtual time of each (a scenario's dom0
/// log: the lines the field report quotes, as the model emitted them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KernelLog {
    pub lines: Vec<LogLine>,
    /// Lines printed in all, including any not kept in `lines`.
    #[serde(default)]
    pub total: u64,
}

/// One kernel log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub t_ns: u64,
    /// Which run or component printed it.
    pub source: String,
    /// printk level (`KERN_WARNING`).
    pub level: String,
    pub text: String,
}

/// Optional timelines a run may carry; the HTML report plots those present.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Timelines {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupts: Option<InterruptTimeline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_pool: Option<BouncePoolTimeline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jumbo: Option<JumboMatrix>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_log: Option<KernelLog>,
}

impl Timelines {
    pub fn is_empty(&self) -> bool {
        self.interrupts.is_none()
            && self.bounce_pool.is_none()
            && self.jumbo.is_none()
            && self.throughput.is_none()
            && self.kernel_log.is_none()
    }
}

/// One run: what ran where, with which faults, and every check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: String,
    /// What kind of run: `qualify`, `scenario:<name>`, `bench`.
    #[serde(default = "default_kind")]
    pub kind: String,
    pub tool: Tool,
    pub host: Host,
    /// The command line as given.
    #[serde(default)]
    pub command: String,
    /// Start time, UTC, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub backend: BackendInfo,
    pub device: Device,
    pub seed: u64,
    /// The fault plan exactly as armed (FaultPlan's serde form: `seed`, `fault[]`).
    #[serde(default)]
    pub fault_plan: serde_json::Value,
    pub verdict: Verdict,
    pub summary: Summary,
    pub checks: Vec<Check>,
    /// Suite duration on the backend's clock.
    pub duration_ns: u64,
    /// Wall-clock time of the whole run.
    #[serde(default)]
    pub wall_ns: u64,
    /// Command that replays the run exactly (printed for failing runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
    #[serde(default, skip_serializing_if = "Timelines::is_empty")]
    pub timelines: Timelines,
}

fn default_kind() -> String {
    "qualify".into()
}

/// Errors reading a stored record.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a nicqual run record: {source}")]
    Json { path: String, source: serde_json::Error },
    #[error("{path}: schema {found:?} is not one this version reads ({expected})")]
    Schema { path: String, found: String, expected: String },
    #[error("{path}: larger than {limit} bytes; not a run record this tool reads")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: stored {field} is {stored} but its checks give {recomputed}; the record was edited or is corrupt")]
    Inconsistent { path: String, field: &'static str, stored: String, recomputed: String },
}

/// Largest record file [`RunRecord::load`] reads (a run record is kilobytes to a few MB).
pub const MAX_RECORD_BYTES: u64 = 64 << 20;

/// A minimal record holding `checks` (settled), for the writers' tests.
#[cfg(test)]
pub(crate) fn test_record(checks: Vec<Check>) -> RunRecord {
    let mut r: RunRecord = serde_json::from_value(serde_json::json!({
        "schema": SCHEMA, "tool": {"name": "nicqual", "version": "0"}, "host": "h",
        "backend": {"kind": "emulated", "name": "m"},
        "device": {"spec": "m", "vendor_id": "8086", "device_id": "10d3", "subsystem": "8086:0000", "mac": null, "driver": "d"},
        "seed": 1,
        "verdict": "pass", "summary": {"pass": 0, "fail": 0, "na": 0, "error": 0}, "checks": [],
        "duration_ns": 0
    }))
    .unwrap();
    r.checks = checks;
    r.settle();
    r
}

impl RunRecord {
    /// Recompute `summary` and `verdict` from `checks` (call after editing checks).
    pub fn settle(&mut self) {
        self.summary = Summary::of(&self.checks);
        self.verdict = self.summary.verdict();
    }

    /// Failed and errored checks, in run order.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.result.is_bad())
    }

    pub fn to_json(&self) -> String {
        // A record holds only strings, numbers and maps with string keys: encoding cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    pub fn from_json(text: &str, path: &str) -> Result<RunRecord, ReadError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|source| ReadError::Json { path: path.into(), source })?;
        let schema = v.get("schema").and_then(|s| s.as_str()).unwrap_or("").to_string();
        if schema == crate::bench::BENCH_SCHEMA {
            return crate::bench::from_bench(v, path);
        }
        if !SCHEMAS_READ.contains(&schema.as_str()) {
            return Err(ReadError::Schema { path: path.into(), found: schema, expected: SCHEMAS_READ.join(", ") });
        }
        let rec: RunRecord =
            serde_json::from_value(v).map_err(|source| ReadError::Json { path: path.into(), source })?;
        rec.check_consistent(path)?;
        Ok(rec)
    }

    /// A record's `summary` and `verdict` are derived data: they must be what its checks
    /// give. Readers never trust the stored ones; a mismatch is an error naming both.
    pub fn check_consistent(&self, path: &str) -> Result<(), ReadError> {
        let summary = Summary::of(&self.checks);
        let show = |s: &Summary| {
            let x = if s.xfail > 0 { format!(" xfail {}", s.xfail) } else { String::new() };
            format!("pass {} fail {} na {} error {}{x}", s.pass, s.fail, s.na, s.error)
        };
        if summary != self.summary {
            return Err(ReadError::Inconsistent {
                path: path.into(),
                field: "summary",
                stored: show(&self.summary),
                recomputed: show(&summary),
            });
        }
        let verdict = summary.verdict();
        // Before schema 3 an error without a failure was a `fail` verdict.
        let old_rule = self.schema != SCHEMA && verdict == Verdict::Error && self.verdict == Verdict::Fail;
        if verdict != self.verdict && !old_rule {
            return Err(ReadError::Inconsistent {
                path: path.into(),
                field: "verdict",
                stored: self.verdict.as_str().into(),
                recomputed: verdict.as_str().into(),
            });
        }
        Ok(())
    }

    /// Read a stored record: at most [`MAX_RECORD_BYTES`] (a device file such as
    /// `/dev/zero` is cut off there, not read until memory runs out), then parsed and
    /// checked with [`RunRecord::check_consistent`].
    pub fn load(path: &std::path::Path) -> Result<RunRecord, ReadError> {
        use std::io::Read;
        let p = path.display().to_string();
        let io = |source| ReadError::Io { path: p.clone(), source };
        let f = std::fs::File::open(path).map_err(io)?;
        let mut buf = Vec::new();
        f.take(MAX_RECORD_BYTES + 1).read_to_end(&mut buf).map_err(io)?;
        if buf.len() as u64 > MAX_RECORD_BYTES {
            return Err(ReadError::TooLarge { path: p, limit: MAX_RECORD_BYTES });
        }
        let text = String::from_utf8(buf).map_err(|e| ReadError::Io {
            path: p.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        RunRecord::from_json(&text, &p)
    }
}

/// Current UTC time as RFC 3339 (seconds), from the system clock.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Unix seconds to `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian; days-from-civil inverse).
pub fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
