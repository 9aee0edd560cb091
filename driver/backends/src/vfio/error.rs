//! What can go wrong setting up or driving a function through VFIO, each error naming the
//! ioctl, path, region or IOVA involved, and what to do about it where there is a fix.

use std::path::PathBuf;

/// A device in the same IOMMU group that keeps the group from being viable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub addr: String,
    pub driver: String,
}

fn list(b: &[Blocker]) -> String {
    b.iter().map(|b| format!("{} (bound to {})", b.addr, b.driver)).collect::<Vec<_>>().join(", ")
}

/// Why `nicqual bind` will not touch a function (the rules dpdk-devbind applies); each
/// names the function, its class and what was found. `--force` overrides them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{addr} has class {class:#08x}, a host bridge (0x0600xx): unbinding it would take the PCI root of the machine away"
    )]
    HostBridge { addr: String, class: u32 },
    #[error("{addr} has class {class:#08x} ({}), not a network controller (0x02xxxx)", class_name(*class))]
    NotNetwork { addr: String, class: u32 },
    #[error(
        "{addr} (class {class:#08x}) has its network interface {ifname} up ({found}); you may be logged in through it: bring it down first (ip link set {ifname} down)"
    )]
    InterfaceUp { addr: String, class: u32, ifname: String, found: String },
    #[error(
        "{addr} (class {class:#08x}) has its network interface {ifname} carrying {} route(s) ({}); remove them first (ip route flush dev {ifname}; ip -6 route flush dev {ifname})",
        routes.len(),
        routes.join(", ")
    )]
    InterfaceRouted { addr: String, class: u32, ifname: String, routes: Vec<String> },
}

/// A rough name for a PCI class code, for the refusal messages.
pub fn class_name(class: u32) -> &'static str {
    match class >> 8 {
        0x0100 => "SCSI controller",
        0x0101 => "IDE controller",
        0x0104 => "RAID controller",
        0x0106 => "SATA controller",
        0x0108 => "NVMe controller",
        c if c >> 8 == 0x01 => "storage controller",
        c if c >> 8 == 0x03 => "display controller",
        c if c >> 8 == 0x04 => "multimedia controller",
        c if c >> 8 == 0x05 => "memory controller",
        0x0600 => "host bridge",
        0x0601 => "ISA bridge",
        0x0604 => "PCI-to-PCI bridge",
        c if c >> 8 == 0x06 => "bridge",
        0x0c03 => "USB controller",
        0x0c05 => "SMBus controller",
        c if c >> 8 == 0x0c => "serial bus controller",
        _ => "not a network class",
    }
}

/// What rolling back a failed `bind` achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollback {
    /// driver_override is as it was and the function is back on its original driver (or
    /// unbound, as it was).
    Restored { driver: Option<String> },
    /// Something could not be put back: the function is on `now`, `want` was expected,
    /// and these steps failed.
    Incomplete { now: String, want: String, errors: Vec<String> },
}

impl std::fmt::Display for Rollback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rollback::Restored { driver: Some(d) } => {
                write!(f, "rolled back: driver_override restored, bound to {d} again")
            }
            Rollback::Restored { driver: None } => {
                write!(f, "rolled back: driver_override restored, left without a driver as before")
            }
            Rollback::Incomplete { now, want, errors } => write!(
                f,
                "ROLLBACK INCOMPLETE: bound to {now}, expected {want}{}{}; restore by hand: echo > .../driver_override, then echo ADDR > /sys/bus/pci/drivers/{want}/bind",
                if errors.is_empty() { "" } else { "; failed: " },
                errors.join("; ")
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VfioError {
    #[error("{ioctl} on {target} failed: {source}")]
    Ioctl { ioctl: &'static str, target: String, source: std::io::Error },
    #[error("{}: {source}{}", path.display(), if hint.is_empty() { String::new() } else { format!(" ({hint})") })]
    Open { path: PathBuf, source: std::io::Error, hint: String },
    #[error("{}: permission denied; run as root, or give your user access: chown $USER {} (and raise RLIMIT_MEMLOCK)", path.display(), path.display())]
    Permission { path: PathBuf },
    #[error(
        "the IOMMU is disabled ({} is empty): enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on (Intel) or amd_iommu=on (AMD)",
        groups.display()
    )]
    IommuDisabled { groups: PathBuf },
    #[error(
        "{addr} is in IOMMU group {group}, which runs in unsafe no-IOMMU mode (/dev/vfio/noiommu-{group}): DMA is not isolated, so nicqual refuses it; boot with the IOMMU enabled"
    )]
    NoIommuMode { addr: String, group: u32 },
    #[error("{addr}: no such PCI function under {}", sys.display())]
    NoDevice { addr: String, sys: PathBuf },
    #[error("{addr:?} is not a PCI address (expected DDDD:BB:DD.F, e.g. 0000:00:04.0)")]
    BadAddress { addr: String },
    #[error("{addr} has no IOMMU group (is the IOMMU enabled for it?)")]
    NoGroup { addr: String },
    #[error(
        "IOMMU group {group} of {addr} is not viable: every device in it must be bound to vfio-pci or unbound; other devices: {}; bind them too (nicqual bind ADDR)",
        list(blockers)
    )]
    GroupNotViable { addr: String, group: u32, blockers: Vec<Blocker> },
    #[error("{addr} is bound to {driver}, not vfio-pci: run `nicqual bind {addr}` first")]
    NotBound { addr: String, driver: String },
    #[error("vfio-pci is not loaded ({} missing): modprobe vfio-pci", path.display())]
    VfioPciMissing { path: PathBuf },
    #[error(
        "RLIMIT_MEMLOCK is {have} bytes but {need} bytes must be locked for DMA (VFIO_IOMMU_MAP_DMA pins them): run `ulimit -l {}` (KiB) or more, or run as root",
        need.div_ceil(1024)
    )]
    Memlock { need: u64, have: u64 },
    #[error("VFIO API version {got}, expected {}", super::sys::VFIO_API_VERSION)]
    ApiVersion { got: i32 },
    #[error("the VFIO container supports no usable IOMMU type (neither TYPE1v2 nor TYPE1)")]
    NoIommuType,
    #[error("region {region}: {why}")]
    Region { region: String, why: String },
    #[error("IOVA {iova:#x} (+{len:#x}): {why}")]
    Iova { iova: u64, len: u64, why: String },
    #[error("{addr}: after {step}, the device is bound to {now}, expected {want}")]
    BindFailed { addr: String, step: &'static str, now: String, want: String },
    #[error("{}: {source}", path.display())]
    Sysfs { path: PathBuf, source: std::io::Error },
    #[error("refused: {}; --force overrides", refusals.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Refused { refusals: Vec<Refusal> },
    #[error("{addr}: bind failed: {cause}; {rollback}")]
    BindRolledBack { addr: String, cause: Box<VfioError>, rollback: Rollback },
    #[error("state file {}: {why}; nothing changed (remove the file if nicqual did not write it)", path.display())]
    BadStateFile { path: PathBuf, why: String },
    #[error(
        "{addr} was not bound by nicqual (no {}): nothing changed; it is bound to {driver}",
        state.display()
    )]
    NotBoundByNicqual { addr: String, driver: String, state: PathBuf },
}

impl VfioError {
    /// Classify a failed open of `path`: permission, missing node (with a hint), or other.
    pub fn open(path: impl Into<PathBuf>, source: std::io::Error) -> VfioError {
        let path = path.into();
        match source.kind() {
            std::io::ErrorKind::PermissionDenied => VfioError::Permission { path },
            std::io::ErrorKind::NotFound => {
                let hint = if path.to_string_lossy().contains("/vfio/") {
                    "is vfio-pci loaded and the device bound? `nicqual devices`, `nicqual bind ADDR`".to_string()
                } else {
                    String::new()
                };
                VfioError::Open { path, source, hint }
            }
            _ => VfioError::Open { path, source, hint: String::new() },
        }
    }
}

impl From<VfioError> for nicqual_pci::BackendError {
    fn from(e: VfioError) -> Self {
        nicqual_pci::BackendError::Transport(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_to_do() {
        let e = VfioError::Memlock { need: 4 << 20, have: 65536 };
        assert!(e.to_string().contains("ulimit -l 4096"), "{e}");
        let e = VfioError::GroupNotViable {
            addr: "0000:00:04.0".into(),
            group: 7,
            blockers: vec![Blocker { addr: "0000:00:04.1".into(), driver: "e1000e".into() }],
        };
        assert!(e.to_string().contains("0000:00:04.1 (bound to e1000e)"), "{e}");
        let e = VfioError::open("/dev/vfio/3", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(matches!(e, VfioError::Permission { .. }));
        assert!(e.to_string().contains("chown $USER /dev/vfio/3"), "{e}");
    }
}
