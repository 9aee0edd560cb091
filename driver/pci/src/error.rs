//! Transport-neutral errors of backend calls. Each names the BAR, offset, IOVA or vector involved.

/// Errors of a backend call (the transport to the device, not the device's behaviour).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("BAR {bar} is not implemented by this device")]
    NoSuchBar { bar: u8 },
    #[error("config access at {offset:#x} (size {size}) is invalid")]
    BadConfigAccess { offset: u16, size: u8 },
    #[error("DMA allocation of {len} bytes failed: {why}")]
    DmaAlloc { len: usize, why: String },
    #[error("DMA map of {len:#x} bytes at IOVA {iova:#x} failed: {why}")]
    DmaMap { iova: u64, len: u64, why: String },
    #[error("DMA unmap at IOVA {iova:#x} failed: {why}")]
    DmaUnmap { iova: u64, why: String },
    #[error("MSI-X setup of {vectors} vectors failed: {why}")]
    Msix { vectors: u16, why: String },
    #[error("MSI-X vector {vector} does not exist (have {have})")]
    NoSuchVector { vector: u16, have: u16 },
    #[error("reset failed: {why}")]
    Reset { why: String },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// A failure of the transport underneath (Linux VFIO, a socket), with its own typed error.
    #[error(transparent)]
    Transport(Box<dyn std::error::Error + Send + Sync + 'static>),
    #[error("{program}: not found ({why}){hint}")]
    ProgramNotFound { program: String, why: String, hint: String },
    #[error("{program} exited ({status}) before serving qtest; its stderr: {stderr}")]
    ServerExited { program: String, status: String, stderr: String },
    #[error("qtest: {what}: {why}")]
    Qtest { what: String, why: String },
}
