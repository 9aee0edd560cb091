//! Building the run record (crate `nicqual-report`, schema in docs/REPORT.md) from what
//! the driver and the backend report.

use crate::advice;
use nicqual_hw::i82574::IvarEntry;
use nicqual_nics::i82574::Identity;
use nicqual_pci::backend::{BackendInfo, BackendKind};
use nicqual_pci::health::IrqLog;
use nicqual_pci::{CheckReport, CheckResult};
use nicqual_report as rep;

pub fn outcome(r: CheckResult) -> rep::Outcome {
    match r {
        CheckResult::Pass => rep::Outcome::Pass,
        CheckResult::Fail => rep::Outcome::Fail,
        CheckResult::Na => rep::Outcome::Na,
        CheckResult::Error => rep::Outcome::Error,
        CheckResult::Xfail => rep::Outcome::Xfail,
    }
}

/// A driver check report as a record check, with the registers / vectors it involves and,
/// for failures, what to do.
pub fn check(c: &CheckReport) -> rep::Check {
    let mut out = rep::Check::new(c.name.clone(), outcome(c.result), c.detail.clone());
    out.duration_ns = c.duration_ns;
    out.measurements = c
        .measurements
        .iter()
        .map(|m| rep::Measurement { name: m.name.clone(), value: m.value, unit: m.unit.to_string() })
        .collect();
    advice::annotate(&mut out);
    out
}

pub fn backend(info: &BackendInfo) -> rep::BackendInfo {
    rep::BackendInfo {
        kind: match info.kind {
            BackendKind::Emulated => "emulated",
            BackendKind::Vfio => "vfio",
            BackendKind::Qtest => "qtest",
        }
        .to_string(),
        name: info.name.clone(),
        virtual_time: info.virtual_time,
        msix_table_access: info.msix_table_access,
    }
}

/// Device identity for the record: PCI ids as read at attach, MAC from the EEPROM, and
/// which drivers were in use (on VFIO the kernel side is `vfio-pci`, and the backend's name
/// is the function's PCI address), the NVM version (EEPROM word 0x05, shown as ethtool's
/// `firmware-version` prints it: major.minor-build) and the PCIe link.
pub fn device(
    spec: &str,
    info: &BackendInfo,
    id: Identity,
    mac: Option<[u8; 6]>,
    nvm_word5: Option<u16>,
    pci_link: Option<String>,
) -> rep::Device {
    let vfio = info.kind == BackendKind::Vfio;
    rep::Device {
        spec: spec.to_string(),
        name: Some(
            match info.kind {
                BackendKind::Qtest => "Intel 82574L (QEMU e1000e model)",
                BackendKind::Emulated => "Intel 82574L (nicqual model)",
                BackendKind::Vfio => "Intel 82574L",
            }
            .into(),
        ),
        pci_address: spec.strip_prefix("vfio:").map(str::to_string).or_else(|| vfio.then(|| info.name.clone())),
        vendor_id: format!("{:04x}", id.vendor),
        device_id: format!("{:04x}", id.device),
        subsystem_vendor_id: format!("{:04x}", id.subsys_vendor),
        subsystem_id: format!("{:04x}", id.subsys),
        revision: Some(id.revision),
        mac: mac.map(fmt_mac),
        driver: "nicqual-nics i82574".into(),
        kernel_driver: vfio.then(|| "vfio-pci".to_string()),
        nvm_version: nvm_word5.map(|v| format!("{}.{}-{}", v >> 12, (v >> 4) & 0xFF, v & 0xF)),
        pci_link,
    }
}

pub fn fmt_mac(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Per-vector interrupt deliveries from the driver's log; `routes` says what each vector
/// serves.
pub fn interrupts(log: &IrqLog, routes: &[(IvarEntry, u16)], bound_ns: u64) -> Option<rep::InterruptTimeline> {
    if log.events.is_empty() {
        return None;
    }
    let mut vectors: Vec<rep::VectorTrace> = routes
        .iter()
        .map(|(e, v)| rep::VectorTrace { vector: *v, serves: Some(e.name().to_string()), ..Default::default() })
        .collect();
    for ev in &log.events {
        let i = match vectors.iter().position(|t| t.vector == ev.vector) {
            Some(i) => i,
            None => {
                vectors.push(rep::VectorTrace { vector: ev.vector, ..Default::default() });
                vectors.len() - 1
            }
        };
        match ev.latency_ns {
            Some(l) => vectors[i].deliveries.push(rep::Delivery { t_ns: ev.t_ns, latency_ns: l }),
            None => vectors[i].lost_at_ns.push(ev.t_ns),
        }
    }
    vectors.sort_by_key(|t| t.vector);
    Some(rep::InterruptTimeline { bound_ns: Some(bound_ns), vectors })
}
