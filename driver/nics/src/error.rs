//! Typed errors of the NIC drivers. Each names the register, vector, offset or address involved.

use nicqual_hw::i82574::IvarEntry;
use nicqual_pci::BackendError;

/// Errors the driver reports about the device.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("device gone: {reg} ({offset:#07x}) read 0xffffffff and STATUS reads 0xffffffff too")]
    DeviceGone { reg: &'static str, offset: u32 },
    #[error("{reg} ({offset:#07x}): wrote {wrote:#010x}, read 0xffffffff: device gone (STATUS reads 0xffffffff too)")]
    GoneDuringPatternTest { reg: &'static str, offset: u32, wrote: u32 },
    #[error("{reg} ({offset:#07x}): wrote {wrote:#010x}, read {read:#010x} (writable mask {mask:#010x})")]
    RegisterMismatch { reg: &'static str, offset: u32, wrote: u32, read: u32, mask: u32 },
    #[error("PCI config {offset:#04x}: identity {vendor:04x}:{device:04x} is not a supported device")]
    WrongDevice { offset: u16, vendor: u16, device: u16 },
    #[error("EEPROM word {word:#x}: EERD never reported DONE (last EERD={eerd:#010x})")]
    EepromTimeout { word: u16, eerd: u32 },
    #[error("EEPROM checksum: words 0x00..=0x3f sum to {sum:#06x}, expected 0xbaba")]
    EepromChecksum { sum: u16 },
    #[error("CTRL ({offset:#07x}): RST still set after {waited_ns} ns (CTRL={ctrl:#010x})")]
    ResetTimeout { offset: u32, ctrl: u32, waited_ns: u64 },
    #[error("link did not come up within {waited_ns} ns (STATUS={status:#010x})")]
    LinkTimeout { status: u32, waited_ns: u64 },
    #[error("MDIC ({offset:#07x}): PHY register {phy_reg} {what} (MDIC={mdic:#010x})")]
    Mdic { offset: u32, phy_reg: u32, what: &'static str, mdic: u32 },
    #[error("MSI-X vector {vector} (IVAR entry {entry}) lost: {why}")]
    VectorLost { vector: u16, entry: IvarEntry, why: String },
    #[error("IVAR ({offset:#07x}) entry {entry}: wrote {wrote:#x}, read back {read:#x}")]
    IvarMismatch { offset: u32, entry: IvarEntry, wrote: u32, read: u32 },
    #[error("MSI-X table entry {vector} (BAR3 {offset:#06x}): {field} reads {read:#010x}, expected {expected:#010x}")]
    MsixEntryMismatch { vector: u16, offset: u64, field: &'static str, read: u32, expected: u32 },
    #[error("driver is not up (call bring_up first)")]
    NotUp,
    #[error("unsupported configuration: {what}")]
    Unsupported { what: String },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Datapath(#[from] crate::i82574::datapath::DatapathError),
}

impl DriverError {
    /// True when the device is gone and nothing more can be done with it.
    pub fn is_device_gone(&self) -> bool {
        matches!(self, DriverError::DeviceGone { .. } | DriverError::GoneDuringPatternTest { .. })
    }
}
