//! The one interface between driver code and a PCI function, shaped like Linux VFIO.

use crate::dma::DmaMemory;
use crate::error::BackendError;
use crate::eventfd::EventFd;

/// Which kind of backend drives the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// In-process device model, virtual time.
    Emulated,
    /// Linux VFIO, real hardware (or a device emulated by a hypervisor below the kernel).
    Vfio,
    /// QEMU's own device model driven over the qtest socket.
    Qtest,
}

/// What a backend says about itself.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendInfo {
    /// Which kind of backend this is.
    pub kind: BackendKind,
    /// Human-readable device name (`model:i82574l`, `0000:00:04.0`, ...).
    pub name: String,
    /// True when the driver may read (and program) the MSI-X table itself. On kernel VFIO
    /// the kernel owns the table: the driver must never write it there.
    pub msix_table_access: bool,
    /// True when time is virtual (waits cost no wall time).
    pub virtual_time: bool,
}

/// Device permission on a DMA mapping (VFIO_DMA_MAP_FLAG_READ / _WRITE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaPerm {
    /// The device may read the mapping (descriptors it fetches, frames it transmits).
    pub device_reads: bool,
    /// The device may write the mapping (write-backs, received frames).
    pub device_writes: bool,
}

impl DmaPerm {
    /// Device reads only (`DMA_TO_DEVICE`): transmit buffers.
    pub const TO_DEVICE: DmaPerm = DmaPerm { device_reads: true, device_writes: false };
    /// Device writes only (`DMA_FROM_DEVICE`): receive buffers.
    pub const FROM_DEVICE: DmaPerm = DmaPerm { device_reads: false, device_writes: true };
    /// Device reads and writes (`DMA_BIDIRECTIONAL`): descriptor rings.
    pub const BIDIRECTIONAL: DmaPerm = DmaPerm { device_reads: true, device_writes: true };
}

/// A PCI function as the driver sees it.
///
/// Register accesses are infallible at this level, as on real hardware: a read of a
/// function that is gone returns all-ones, and the driver validates what it reads.
pub trait Backend {
    /// What this backend is and what it allows (kind, name, MSI-X table access, clock).
    fn info(&self) -> BackendInfo;

    /// Read `size` (1, 2, 4) bytes of configuration space.
    fn config_read(&mut self, offset: u16, size: u8) -> Result<u32, BackendError>;
    /// Write `size` (1, 2, 4) bytes of configuration space.
    fn config_write(&mut self, offset: u16, size: u8, value: u32) -> Result<(), BackendError>;

    /// Length of BAR `bar`, if the device implements it.
    fn bar_len(&self, bar: u8) -> Option<u64>;
    /// 32-bit register read in BAR `bar`.
    fn read32(&mut self, bar: u8, offset: u64) -> u32;
    /// 32-bit register write in BAR `bar`.
    fn write32(&mut self, bar: u8, offset: u64, value: u32);

    /// Allocate DMA-able memory (not yet visible to the device).
    fn dma_alloc(&mut self, len: usize) -> Result<DmaMemory, BackendError> {
        DmaMemory::alloc(len)
    }
    /// Make `mem` visible to the device at `iova` with `perm`. The backend keeps `mem`
    /// alive until it is unmapped. When `mem.fixed_iova()` is `Some`, that is the only
    /// IOVA it can be mapped at (qtest: guest-physical address).
    fn dma_map(&mut self, mem: &DmaMemory, iova: u64, perm: DmaPerm) -> Result<(), BackendError>;
    /// Remove the mapping that starts at `iova`.
    fn dma_unmap(&mut self, iova: u64) -> Result<(), BackendError>;

    /// Enable MSI-X with `vectors` vectors, one eventfd notifier each, all unmasked.
    fn msix_enable(&mut self, vectors: u16) -> Result<(), BackendError>;
    /// Disable MSI-X and release the notifiers.
    fn msix_disable(&mut self) -> Result<(), BackendError>;
    /// Mask or unmask one vector.
    fn msix_mask(&mut self, vector: u16, masked: bool) -> Result<(), BackendError>;
    /// True when the backend keeps every vector masked in the MSI-X table and observes
    /// messages through the PBA pending bits instead (qtest: no CPU takes the message).
    /// The driver then expects the Mask bit set in the table.
    fn msix_masked_delivery(&self) -> bool {
        false
    }
    /// The notifier of `vector`, when MSI-X is enabled.
    fn notifier(&self, vector: u16) -> Option<&EventFd>;
    /// Number of vectors currently enabled.
    fn msix_vectors(&self) -> u16;

    /// DMA mappings currently live (teardown checks that this returns to 0).
    fn live_mappings(&self) -> usize;
    /// DMA accesses blocked by the IOMMU so far, where the backend can see them.
    fn dma_faults(&self) -> Option<u64> {
        None
    }

    /// Function-level reset (VFIO_DEVICE_RESET): device back to its power-on state.
    fn reset(&mut self) -> Result<(), BackendError>;

    /// Current time in ns (virtual for the emulated backend).
    fn now_ns(&self) -> u64;
    /// Let up to `ns` pass; may return early once an interrupt notifier has been
    /// signalled. Emulated: advances the virtual clock. Real: sleeps or polls.
    fn wait(&mut self, ns: u64);
}
