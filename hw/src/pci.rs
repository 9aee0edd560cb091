//! PCI configuration space layout (PCI Local Bus 3.0 / PCIe base spec) and the MSI-X
//! capability and table layout.

pub const VENDOR_ID: u16 = 0x00;
pub const DEVICE_ID: u16 = 0x02;
pub const COMMAND: u16 = 0x04;
pub const STATUS: u16 = 0x06;
pub const REVISION_CLASS: u16 = 0x08;
pub const HEADER_TYPE: u16 = 0x0E;
pub const BAR0: u16 = 0x10;
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x2C;
pub const SUBSYSTEM_ID: u16 = 0x2E;
pub const CAPABILITIES_PTR: u16 = 0x34;
pub const INTERRUPT_LINE: u16 = 0x3C;
pub const INTERRUPT_PIN: u16 = 0x3D;

/// Offset of BAR `n` in configuration space.
pub const fn bar(n: u8) -> u16 {
    BAR0 + 4 * n as u16
}

/// COMMAND register bits.
pub const COMMAND_IO: u16 = 1 << 0;
pub const COMMAND_MEMORY: u16 = 1 << 1;
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// STATUS register: capabilities list present.
pub const STATUS_CAP_LIST: u16 = 1 << 4;

/// Capability IDs.
pub const CAP_ID_PM: u8 = 0x01;
pub const CAP_ID_MSI: u8 = 0x05;
pub const CAP_ID_PCIE: u8 = 0x10;
pub const CAP_ID_MSIX: u8 = 0x11;

/// Extended capability IDs (PCIe, config offset >= 0x100).
pub const EXT_CAP_ID_AER: u16 = 0x0001;
pub const EXT_CAP_ID_DSN: u16 = 0x0003;

/// MSI-X capability: Message Control at cap+2.
pub const MSIX_MSG_CTRL: u16 = 2;
/// MSI-X capability: Table Offset / BIR at cap+4.
pub const MSIX_TABLE: u16 = 4;
/// MSI-X capability: PBA Offset / BIR at cap+8.
pub const MSIX_PBA: u16 = 8;
pub const MSIX_CTRL_TABLE_SIZE_MASK: u16 = 0x07FF;
pub const MSIX_CTRL_FUNCTION_MASK: u16 = 1 << 14;
pub const MSIX_CTRL_ENABLE: u16 = 1 << 15;
pub const MSIX_BIR_MASK: u32 = 0x7;

/// MSI-X table entry layout (16 bytes per entry).
pub const MSIX_ENTRY_SIZE: u64 = 16;
pub const MSIX_ENTRY_ADDR_LO: u64 = 0;
pub const MSIX_ENTRY_ADDR_HI: u64 = 4;
pub const MSIX_ENTRY_DATA: u64 = 8;
pub const MSIX_ENTRY_VECTOR_CTRL: u64 = 12;
pub const MSIX_ENTRY_CTRL_MASKBIT: u32 = 1;

/// x86 MSI address window (writes here are interrupt messages, not memory).
pub const MSI_ADDRESS_BASE: u64 = 0xFEE0_0000;
pub const MSI_ADDRESS_MASK: u64 = 0xFFF0_0000;

/// Configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2): the dword I/O port that
/// takes `CONFIG_ENABLE | bus << 16 | devfn << 8 | register`, and the data window.
pub const CONFIG_ADDRESS_PORT: u16 = 0xCF8;
pub const CONFIG_DATA_PORT: u16 = 0xCFC;
pub const CONFIG_ENABLE: u32 = 1 << 31;

/// The host bridge at 00:00.0 of QEMU's q35 machine (Intel 82Q35 MCH), vendor/device dword
/// as QEMU 7.2 answers it, and its class code (base class 06, subclass 00: host bridge).
pub const Q35_HOST_BRIDGE_ID: u32 = 0x29C0_8086;
pub const CLASS_HOST_BRIDGE: u32 = 0x06_0000;
