//! The run record (JSON). Its `checks` array, and each item's `name`, `result` and
//! `detail`, are stable: later versions add fields, never rename these.

use nicqual_driver::CheckReport;
use nicqual_driver::backend::BackendInfo;
use nicqual_model::FaultPlan;
use serde::Serialize;

pub const SCHEMA: &str = "nicqual.run/1";

#[derive(Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Device {
    pub spec: String,
    pub vendor_id: String,
    pub device_id: String,
    pub subsystem: String,
    pub mac: Option<String>,
    pub driver: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub na: usize,
    pub error: usize,
}

#[derive(Debug, Serialize)]
pub struct RunRecord {
    pub schema: &'static str,
    pub tool: Tool,
    pub host: String,
    pub command: String,
    pub backend: BackendInfo,
    pub device: Device,
    pub seed: u64,
    pub fault_plan: FaultPlan,
    pub verdict: &'static str,
    pub summary: Summary,
    pub checks: Vec<CheckReport>,
    pub duration_ns: u64,
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
