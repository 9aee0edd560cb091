//! Results of health checks: what every check reports, whatever backend ran it.

use serde::Serialize;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    /// The check ran and the device did what it must.
    Pass,
    /// The check ran and the device did not; the detail says what was seen.
    Fail,
    /// Not applicable here (or not run because an earlier failure made it meaningless).
    Na,
    /// The check could not be carried out (transport or setup error).
    Error,
    /// Expected failure: a scenario variant built to reproduce a field failure (the naive
    /// driver, the old kernel) failed as the field did.
    Xfail,
}

impl CheckResult {
    /// The lower-case name used in reports (`pass`, `fail`, `na`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckResult::Pass => "pass",
            CheckResult::Fail => "fail",
            CheckResult::Na => "na",
            CheckResult::Error => "error",
            CheckResult::Xfail => "xfail",
        }
    }
}

/// A measured value with its unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// What was measured (`frames`, `missed`).
    pub name: String,
    /// The value, in `unit`.
    pub value: f64,
    /// Unit of `value` (`frames`, `segments`, `slots`).
    pub unit: &'static str,
}

/// One check's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// The check's name as listed in the suite (`loopback[64]`, `irq-watchdog`).
    pub name: String,
    /// Its outcome.
    pub result: CheckResult,
    /// What was seen, in words: the evidence for the outcome.
    pub detail: String,
    /// Time the check took on the backend's clock (virtual for emulation), ns.
    pub duration_ns: u64,
    /// Numbers the check measured along the way (none for most checks).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
}

impl CheckReport {
    /// A report with no duration and no measurements yet.
    pub fn new(name: impl Into<String>, result: CheckResult, detail: impl Into<String>) -> Self {
        CheckReport { name: name.into(), result, detail: detail.into(), duration_ns: 0, measurements: Vec::new() }
    }

    /// Add a measurement (builder style).
    pub fn measure(mut self, name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        self.measurements.push(Measurement { name: name.into(), value, unit });
        self
    }
}

/// Counters the driver keeps about its device's health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealthCounters {
    /// Register reads that returned all-ones.
    pub all_ones_reads: u64,
    /// Interrupts received per vector.
    pub deliveries: Vec<u64>,
    /// Watchdog findings: causes pending without delivery.
    pub watchdog_lost: u64,
    /// Vector re-programming attempts.
    pub reprogram_attempts: u64,
    /// Causes served by polling after their vector was given up.
    pub polled_services: u64,
    /// Messages on another vector that arrived together with the expected one (no cause
    /// of theirs was raised; e.g. QEMU 7.2 re-fires a throttled vector when its EITR timer
    /// expires). Counted, not treated as a misroute.
    pub spurious_messages: u64,
}

/// One software-raised interrupt cause and what became of it (the per-vector delivery
/// timeline of a run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IrqEvent {
    /// MSI-X vector the cause is routed to.
    pub vector: u16,
    /// IVAR entry index (0 RxQ0 .. 4 Other) whose cause was raised.
    pub entry: u8,
    /// When the cause was raised, ns on the backend's clock.
    pub t_ns: u64,
    /// Time to delivery; `None` when it never arrived within the bound.
    pub latency_ns: Option<u64>,
}

/// Most events an [`IrqLog`] keeps (older ones are counted, not kept).
pub const IRQ_LOG_CAP: usize = 4096;

/// Bounded log of [`IrqEvent`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IrqLog {
    /// The events kept, oldest first (at most [`IRQ_LOG_CAP`]).
    pub events: Vec<IrqEvent>,
    /// Events not kept because the log was full.
    pub dropped: u64,
}

impl IrqLog {
    /// Keep `e`, or count it in `dropped` when the log is full.
    pub fn push(&mut self, e: IrqEvent) {
        if self.events.len() < IRQ_LOG_CAP {
            self.events.push(e);
        } else {
            self.dropped += 1;
        }
    }
}
