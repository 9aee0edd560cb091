//! Transport-neutral errors of backend calls. Each names the BAR, offset, IOVA or vector involved.

/// Errors of a backend call (the transport to the device, not the device's behaviour).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The device does not implement the BAR asked for (or it is too small for the driver).
    #[error("BAR {bar} is not implemented by this device")]
    NoSuchBar {
        /// BAR index (0..=5).
        bar: u8,
    },
    /// A configuration-space access the transport cannot carry out: a size other than 1,
    /// 2 or 4, or an offset past the end of configuration space.
    #[error("config access at {offset:#x} (size {size}) is invalid")]
    BadConfigAccess {
        /// Byte offset in configuration space.
        offset: u16,
        /// Access size in bytes.
        size: u8,
    },
    /// DMA memory could not be allocated (no memory, no huge pages, guest RAM exhausted).
    #[error("DMA allocation of {len} bytes failed: {why}")]
    DmaAlloc {
        /// Bytes asked for (after rounding to the allocation unit).
        len: usize,
        /// What the allocator said.
        why: String,
    },
    /// A mapping could not be made visible to the device (IOMMU refusal, overlap, an IOVA
    /// other than the block's fixed one).
    #[error("DMA map of {len:#x} bytes at IOVA {iova:#x} failed: {why}")]
    DmaMap {
        /// IO virtual address the mapping was to start at.
        iova: u64,
        /// Length of the mapping in bytes.
        len: u64,
        /// What the IOMMU or transport said.
        why: String,
    },
    /// A mapping could not be removed (typically: no mapping starts at that IOVA).
    #[error("DMA unmap at IOVA {iova:#x} failed: {why}")]
    DmaUnmap {
        /// IO virtual address the mapping was expected to start at.
        iova: u64,
        /// What the IOMMU or transport said.
        why: String,
    },
    /// MSI-X could not be enabled or disabled with that many vectors.
    #[error("MSI-X setup of {vectors} vectors failed: {why}")]
    Msix {
        /// Vectors asked for (0 when disabling).
        vectors: u16,
        /// What the transport said.
        why: String,
    },
    /// A vector number at or past the number of enabled vectors.
    #[error("MSI-X vector {vector} does not exist (have {have})")]
    NoSuchVector {
        /// Vector asked for.
        vector: u16,
        /// Vectors currently enabled.
        have: u16,
    },
    /// The function-level reset failed or is not supported by the transport.
    #[error("reset failed: {why}")]
    Reset {
        /// What the transport said.
        why: String,
    },
    /// An operating-system call failed.
    #[error("{what}: {source}")]
    Io {
        /// The call and what it was for (`pread BAR0 at 0x8`, `eventfd`).
        what: String,
        /// The error the operating system returned.
        source: std::io::Error,
    },
    /// A failure of the transport underneath (Linux VFIO, a socket), with its own typed error.
    #[error(transparent)]
    Transport(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A program the backend needs (QEMU, a qtest server) could not be started.
    #[error("{program}: not found ({why}){hint}")]
    ProgramNotFound {
        /// The program as the backend tried to run it.
        program: String,
        /// Why it could not be run.
        why: String,
        /// What to install or set, with its leading separator (may be empty).
        hint: String,
    },
    /// The server process ended before it answered on the qtest socket.
    #[error("{program} exited ({status}) before serving qtest; its stderr: {stderr}")]
    ServerExited {
        /// The program that was started.
        program: String,
        /// Its exit status, as the operating system reported it.
        status: String,
        /// What it wrote to standard error.
        stderr: String,
    },
    /// The qtest protocol failed: an unexpected answer, a broken socket, a bad request.
    #[error("qtest: {what}: {why}")]
    Qtest {
        /// The qtest command or step that failed.
        what: String,
        /// What went wrong.
        why: String,
    },
}
