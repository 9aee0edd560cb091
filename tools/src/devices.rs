//! Which devices `--device` can name.

use nicqual_hw::i82574 as r;

/// A device spec as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The emulated Intel 82574L.
    ModelI82574,
    /// A real function through Linux VFIO: `vfio:0000:00:04.0`.
    Vfio(String),
    /// QEMU's own 82574L model (`-device e1000e`), driven over qtest.
    QemuE1000e,
    /// The same on QEMU 11.1 from the Debian forky root, on its virtual clock.
    Qemu11E1000e,
    /// The emulated bnx2x function with this PCI device id (57810 by default; 57711 and
    /// 57712 as `model:bnx2x:57711`, `model:bnx2x:57712`).
    ModelBnx2x(u16),
    /// The emulated Cisco VIC vNIC (1137:0043; `model:enic-vf` presents the VF id 0071).
    ModelEnic { vf: bool },
}

/// The bnx2x model.
pub const MODEL_BNX2X: &str = "model:bnx2x";

pub const DEFAULT_DEVICE: &str = "model:i82574l";
/// QEMU's e1000e, over qtest.
pub const QEMU_E1000E: &str = "qemu:e1000e";
/// QEMU 11.1's e1000e (Debian forky root), over qtest with the qtest accelerator.
pub const QEMU11_E1000E: &str = "qemu11:e1000e";

impl DeviceSpec {
    /// For a QEMU device: how to start it, and its documented deviations as qualify options.
    pub fn qemu(&self) -> Option<(nicqual_backends::qtest::QemuConfig, nicqual_qualify::deviations::DeviceOptions)> {
        use nicqual_qualify::deviations as dev;
        match self {
            DeviceSpec::QemuE1000e => Some((Default::default(), dev::qemu_e1000e_options())),
            DeviceSpec::Qemu11E1000e => {
                Some((nicqual_backends::qtest::QemuConfig::qemu11(), dev::qemu11_e1000e_options()))
            }
            _ => None,
        }
    }
}
/// The emulated Cisco VIC vNIC.
pub const MODEL_ENIC: &str = "model:enic";

impl std::str::FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "model:i82574l" | "model:i82574" | "model:82574l" | "model:e1000e" => Ok(DeviceSpec::ModelI82574),
            v if v.starts_with("vfio:") => v[5..]
                .parse::<nicqual_backends::vfio::PciAddr>()
                .map(|a| DeviceSpec::Vfio(a.to_string()))
                .map_err(|e| e.to_string()),
            "qemu:e1000e" | "qemu:82574l" | "qemu:i82574l" => Ok(DeviceSpec::QemuE1000e),
            "qemu11:e1000e" | "qemu11:82574l" | "qemu11:i82574l" => Ok(DeviceSpec::Qemu11E1000e),
            "model:bnx2x" | "model:bnx2x:57810" => Ok(DeviceSpec::ModelBnx2x(nicqual_hw::bnx2x::PCI_DEVICE_57810)),
            "model:bnx2x:57711" => Ok(DeviceSpec::ModelBnx2x(nicqual_hw::bnx2x::PCI_DEVICE_57711)),
            "model:bnx2x:57712" => Ok(DeviceSpec::ModelBnx2x(nicqual_hw::bnx2x::PCI_DEVICE_57712)),
            "model:enic" | "model:vic" => Ok(DeviceSpec::ModelEnic { vf: false }),
            "model:enic-vf" => Ok(DeviceSpec::ModelEnic { vf: true }),
            _ => Err(format!("unknown device {s:?}; `nicqual devices` lists what can be driven")),
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::ModelI82574 => f.write_str(DEFAULT_DEVICE),
            DeviceSpec::Vfio(a) => write!(f, "vfio:{a}"),
            DeviceSpec::QemuE1000e => f.write_str(QEMU_E1000E),
            DeviceSpec::Qemu11E1000e => f.write_str(QEMU11_E1000E),
            DeviceSpec::ModelBnx2x(nicqual_hw::bnx2x::PCI_DEVICE_57711) => write!(f, "{MODEL_BNX2X}:57711"),
            DeviceSpec::ModelBnx2x(nicqual_hw::bnx2x::PCI_DEVICE_57712) => write!(f, "{MODEL_BNX2X}:57712"),
            DeviceSpec::ModelBnx2x(_) => f.write_str(MODEL_BNX2X),
            DeviceSpec::ModelEnic { vf: false } => f.write_str(MODEL_ENIC),
            DeviceSpec::ModelEnic { vf: true } => f.write_str("model:enic-vf"),
        }
    }
}

pub fn list() {
    println!("{:<16} {:<10} {:<10} description", "device", "backend", "pci id");
    println!(
        "{:<16} {:<10} {:<10} Intel 82574L, register-level model (interrupt block, MSI-X, EEPROM, PHY), virtual time",
        DEFAULT_DEVICE,
        "emulated",
        format!("{:04x}:{:04x}", r::VENDOR_ID, r::DEVICE_ID)
    );
    println!(
        "{:<16} {:<10} {:<10} QEMU's own 82574L model (-device e1000e) over qtest, real time; QEMU from ${} or PATH",
        QEMU_E1000E,
        "qtest",
        format!("{:04x}:{:04x}", r::VENDOR_ID, r::DEVICE_ID),
        nicqual_backends::qtest::QEMU_ENV
    );
    println!(
        "{:<16} {:<10} {:<10} QEMU 11.1's e1000e (Debian forky root, scripts/forky-root.sh) over qtest, virtual time",
        QEMU11_E1000E,
        "qtest",
        format!("{:04x}:{:04x}", r::VENDOR_ID, r::DEVICE_ID)
    );
    println!(
        "{:<16} {:<10} {:<10} Broadcom BCM57810 (bnx2x), ring-level model: BD/SGE/RCQ/TX chains, TPA, status blocks, MSI-X, virtual time; :57711 / :57712 for those ids",
        MODEL_BNX2X,
        "emulated",
        format!("{:04x}:{:04x}", nicqual_hw::bnx2x::PCI_VENDOR_BROADCOM, nicqual_hw::bnx2x::PCI_DEVICE_57810),
    );
    println!(
        "{:<16} {:<10} {:<10} Cisco VIC vNIC, register-level model (resource table, devcmd, WQ/RQ/CQ, INTR_CTRL, MSI-X), virtual time; model:enic-vf is the VF ({:04x})",
        MODEL_ENIC,
        "emulated",
        format!("{:04x}:{:04x}", nicqual_hw::enic::PCI_VENDOR_ID_CISCO, nicqual_hw::enic::PCI_DEVICE_ID_CISCO_VIC_ENET),
        nicqual_hw::enic::PCI_DEVICE_ID_CISCO_VIC_ENET_VF
    );
}
