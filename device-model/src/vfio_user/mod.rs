//! A vfio-user server for any [`PciDevice`]: QEMU's `vfio-user-pci` (QEMU ≥ 10.1) or any
//! other vfio-user client puts the model into a virtual machine as a PCI function, so an
//! unmodified guest kernel driver runs against it (`nicqual serve-vfio-user`).
//!
//! Written from the protocol specification (QEMU `docs/interop/vfio-user.rst`); what QEMU
//! 11.1's client insists on was checked against its sources (`hw/vfio-user/proxy.c`
//! `vfio_user_validate_version`: the VERSION reply must carry a NUL-terminated capability
//! object; `hw/vfio-user/device.c` `vfio_user_device_io_set_irqs`: eventfds go in chunks of
//! `max_msg_fds`, and a chunk of "no descriptor" entries is sent with no descriptors, which
//! de-assigns them).
//!
//! What is served:
//! * **VERSION** 0.0 with `max_msg_fds` [`MAX_FDS`], `max_data_xfer_size` [`MAX_XFER`],
//!   `pgsizes` 4 KiB and `max_dma_maps` [`MAX_DMA_MAPS`]. It must come first, once.
//! * **DEVICE_GET_INFO**: a resettable PCI device with the 9 VFIO PCI regions and 5 IRQ
//!   indices. **GET_REGION_INFO**: BAR0..BAR5 as the model sizes them (`bar_len`), ROM and
//!   VGA empty, config space (index 7) 256 bytes. No region is mmappable: every access is a
//!   message, so the model sees each one.
//! * **REGION_READ/WRITE** (≤ [`MAX_XFER`] bytes, inside the region): config space in
//!   naturally aligned 4/2/1-byte pieces; BARs through the model's 32-bit accessors, a
//!   narrower read shifted out of its dword and a narrower write widened to the aligned
//!   dword with zero fill (what QEMU does for a device whose ops take exactly 4 bytes).
//! * **DMA_MAP/UNMAP**: a region that comes with a descriptor is mmapped (shared) and
//!   becomes a window of the model's IOMMU with the region's permissions, so the device's
//!   DMA reaches guest RAM directly; one without a descriptor (QEMU's ROM/BIOS ranges) is
//!   recorded but not mapped, so device DMA there is blocked and logged by the IOMMU like
//!   any stray access. A map that overlaps an existing one fails with `EEXIST`.
//! * **GET_IRQ_INFO / SET_IRQS**: INTx (count 1, maskable, automasked), MSI (the count the
//!   MSI capability offers), MSI-X (the table size), error and request (count 1, never
//!   fired). Eventfds are signalled on the device's interrupts; the client's MASK/UNMASK
//!   (DATA_NONE/BOOL) hold and release them, and DATA_NONE/BOOL TRIGGER signals on demand.
//! * **DEVICE_RESET**: the model's function reset.
//!
//! MSI-X: the client emulates the MSI-X table and PBA itself (QEMU never forwards the
//! guest's table writes), so the server programs the model's own table: entry *v* gets the
//! interrupt-window address and data *v*, unmasked, when vector *v* gets an eventfd. A
//! message the model sends with data *v* then signals eventfd *v*. Faults inside the model
//! (a lost vector, a corrupted IVAR entry) therefore decide which eventfd fires, or none.
//!
//! INTx follows VFIO's level semantics: when the model's line is high and the index
//! unmasked, the eventfd is signalled and the index masks itself; the client unmasks
//! after the guest's end of interrupt, and a line still high signals again.
//!
//! Time: the model's virtual clock follows the host's monotonic clock ([`Clock::RealTime`])
//! while a guest runs; the serve loop wakes at the model's next deadline (at most every
//! [`TICK_MS`] ms) to fire its timers and deliver what they raise.
//!
//! Hostile-client posture (as for the qtest server): nothing a client sends can panic the
//! server or make it allocate beyond [`MAX_MSG`] per message; every refusal is an error
//! reply with a real errno (`EINVAL`, `E2BIG`, `EEXIST`, `ENOENT`, `ENOTSUP`, …) and the
//! server carries on. A header announcing a size out of bounds cannot be skipped (the
//! stream has no other framing), so it is answered and the connection closed. A message
//! whose body does not arrive within [`BODY_TIMEOUT`] closes the connection. Descriptors:
//! at most [`MAX_FDS`] per message, exactly as many as the command takes (an eventfd per
//! vector, or none to de-assign; one memory descriptor per DMA map), each checked before
//! use: eventfds must be eventfds (made non-blocking, so signalling never stalls the
//! server); DMA memory must be a memfd sealed against shrinking (`F_SEAL_SHRINK`, which
//! QEMU's `memory-backend-memfd` sets by default) and at least as long as the mapped
//! range, so no client can make a device access fault the server with SIGBUS.
//! On disconnect every DMA window and interrupt descriptor of the client is dropped; the
//! device keeps its state (the specification's rule).

pub mod proto;
mod sock;

use crate::{HostRegion, PciDevice, Perm};
use memmap2::{MmapOptions, MmapRaw};
use nicqual_hw::pci;
pub use proto::{MAX_DMA_MAPS, MAX_FDS, MAX_MSG, MAX_XFER};
use proto::{ProtoError, Request, errno, vfio};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Size of the config region served (conventional config space; QEMU reads it whole).
pub const CONFIG_LEN: u64 = 256;
/// Longest wait for the rest of a message once its first byte arrived.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the serve loop sleeps between looks at the model's timers, ms.
pub const TICK_MS: i32 = 2;
/// Page size of DMA maps (advertised as `pgsizes`).
pub const PAGE: u64 = 4096;

/// How the model's virtual clock moves while serving.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// With the host's monotonic clock, from `epoch` (the model's time then was `base_ns`).
    RealTime { epoch: Instant, base_ns: u64 },
    /// Only when the owner advances the device (tests, fuzzing: deterministic).
    Manual,
}

/// What the server counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub messages: u64,
    /// Messages answered with an error reply.
    pub refused: u64,
    pub dma_maps: u64,
    pub dma_unmaps: u64,
    /// Eventfd signals sent (all IRQ indices).
    pub signals: u64,
    /// Interrupts the device raised with no eventfd to carry them (vector not set up).
    pub undelivered: u64,
    /// Interrupts held because the client masked the vector (delivered on unmask).
    pub held: u64,
    /// Messages with data naming no vector of the enabled mode.
    pub stray_messages: u64,
}

#[derive(Debug)]
struct DmaEntry {
    size: u64,
    /// Mapped into the device's IOMMU (the region came with a descriptor).
    in_iommu: bool,
}

#[derive(Debug, Default)]
struct IrqIndex {
    fds: Vec<Option<OwnedFd>>,
    masked: Vec<bool>,
    pending: Vec<bool>,
}

impl IrqIndex {
    fn new(count: u32) -> IrqIndex {
        let n = count as usize;
        IrqIndex { fds: (0..n).map(|_| None).collect(), masked: vec![false; n], pending: vec![false; n] }
    }
}

/// Where the device's MSI and MSI-X capabilities are, read from its config space once.
#[derive(Debug, Clone, Copy, Default)]
struct Caps {
    msi: Option<u16>,
    msix: Option<u16>,
    msi_count: u32,
    msix_count: u32,
    /// MSI-X table: BAR and offset.
    msix_table: (u8, u64),
    intx: bool,
}

fn read_caps<D: PciDevice>(dev: &mut D) -> Caps {
    let mut c = Caps { intx: dev.config_read(pci::INTERRUPT_PIN, 1) != 0, ..Caps::default() };
    if dev.config_read(pci::STATUS, 2) as u16 & pci::STATUS_CAP_LIST == 0 {
        return c;
    }
    let mut at = dev.config_read(pci::CAPABILITIES_PTR, 1) as u16 & 0xFC;
    // At most 48 capabilities fit in 192 bytes: the walk ends even on a looped list.
    for _ in 0..48 {
        if !(0x40..0x100).contains(&at) {
            break;
        }
        match dev.config_read(at, 1) as u8 {
            pci::CAP_ID_MSI if c.msi.is_none() => {
                let ctrl = dev.config_read(at + 2, 2);
                c.msi = Some(at);
                c.msi_count = 1 << ((ctrl >> 1) & 7).min(5);
            }
            pci::CAP_ID_MSIX if c.msix.is_none() => {
                let ctrl = dev.config_read(at + pci::MSIX_MSG_CTRL, 2) as u16;
                let table = dev.config_read(at + pci::MSIX_TABLE, 4);
                c.msix = Some(at);
                c.msix_count = (ctrl & pci::MSIX_CTRL_TABLE_SIZE_MASK) as u32 + 1;
                c.msix_table = ((table & pci::MSIX_BIR_MASK) as u8, (table & !pci::MSIX_BIR_MASK) as u64);
            }
            _ => {}
        }
        at = dev.config_read(at + 1, 1) as u16 & 0xFC;
    }
    c
}

/// A PCI device model behind the vfio-user protocol.
pub struct VfioUserServer<D: PciDevice> {
    dev: D,
    caps: Caps,
    clock: Clock,
    negotiated: bool,
    maps: BTreeMap<u64, DmaEntry>,
    irqs: [IrqIndex; vfio::PCI_NUM_IRQS as usize],
    pub stats: Stats,
}

type Res<T> = Result<T, ProtoError>;

fn einval(what: impl Into<String>) -> ProtoError {
    ProtoError::new(errno::EINVAL, what)
}

impl<D: PciDevice> VfioUserServer<D> {
    pub fn new(mut dev: D, clock: Clock) -> Self {
        let caps = read_caps(&mut dev);
        let irqs = [
            IrqIndex::new(caps.intx as u32),
            IrqIndex::new(caps.msi_count),
            IrqIndex::new(caps.msix_count),
            IrqIndex::new(1),
            IrqIndex::new(1),
        ];
        VfioUserServer { dev, caps, clock, negotiated: false, maps: BTreeMap::new(), irqs, stats: Stats::default() }
    }

    /// Serve with the model's clock following the host's from now.
    pub fn real_time(dev: D) -> Self {
        let base_ns = dev.now_ns();
        Self::new(dev, Clock::RealTime { epoch: Instant::now(), base_ns })
    }

    pub fn device(&self) -> &D {
        &self.dev
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// DMA regions the client has mapped (with and without descriptors).
    pub fn dma_map_count(&self) -> usize {
        self.maps.len()
    }

    /// Number of interrupts of IRQ index `index` (0 when the index does not exist).
    pub fn irq_count(&self, index: u32) -> u32 {
        self.irqs.get(index as usize).map_or(0, |i| i.fds.len() as u32)
    }

    // ---- the connection -----------------------------------------------------------------

    /// Serve one connection until the client closes it; the client's DMA windows and
    /// eventfds are dropped when it goes, whatever the reason.
    pub fn serve(&mut self, stream: UnixStream) -> std::io::Result<()> {
        let r = self.serve_inner(&stream);
        self.disconnect();
        r
    }

    fn serve_inner(&mut self, stream: &UnixStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(BODY_TIMEOUT))?;
        let mut w = stream;
        loop {
            let readable = sock::wait_readable(stream, self.poll_timeout_ms())?;
            self.pump();
            if !readable {
                continue;
            }
            match sock::read_message(stream)? {
                sock::Read::Closed => return Ok(()),
                sock::Read::BadSize(h, e) => {
                    self.stats.messages += 1;
                    self.stats.refused += 1;
                    tracing::warn!(target: "nicqual::vfio_user", "closing: {e}");
                    w.write_all(&proto::error_reply(&h, e.errno))?;
                    return Ok(());
                }
                sock::Read::Message(m) => {
                    let reply = if m.fds_overflow {
                        self.stats.messages += 1;
                        self.refuse(
                            &m.header,
                            ProtoError::new(errno::EINVAL, format!("more than {MAX_FDS} descriptors with one message")),
                        )
                    } else {
                        self.handle(&m.header, &m.payload, m.fds)
                    };
                    if let Some(r) = reply {
                        w.write_all(&r)?;
                    }
                }
            }
        }
    }

    /// Wait until the model's next timer (bounded by [`TICK_MS`]).
    fn poll_timeout_ms(&self) -> i32 {
        let now = self.dev.now_ns();
        match self.dev.next_deadline_ns() {
            Some(d) => (d.saturating_sub(now).div_ceil(1_000_000)).min(TICK_MS as u64) as i32,
            None => TICK_MS,
        }
    }

    /// Bring the model's clock to now (real-time mode) and deliver what it raised.
    pub fn pump(&mut self) {
        if let Clock::RealTime { epoch, base_ns } = self.clock {
            let target = base_ns.saturating_add(u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX));
            let now = self.dev.now_ns();
            if target > now {
                self.dev.advance(target - now);
            }
        }
        self.deliver();
    }

    /// The client went away: its memory and descriptors go; the device stays as it is.
    pub fn disconnect(&mut self) {
        for (addr, e) in std::mem::take(&mut self.maps) {
            if e.in_iommu {
                let _ = self.dev.iommu().unmap(addr);
            }
        }
        for irq in &mut self.irqs {
            *irq = IrqIndex::new(irq.fds.len() as u32);
        }
        self.negotiated = false;
    }

    /// Answer one message (already framed). `None` when the message asked for no reply.
    pub fn handle(&mut self, h: &proto::Header, payload: &[u8], fds: Vec<OwnedFd>) -> Option<Vec<u8>> {
        self.stats.messages += 1;
        let r = proto::decode(h, payload).and_then(|req| self.dispatch(h, req, fds));
        self.deliver();
        let out = match r {
            Ok(p) => proto::reply(h, &p),
            Err(e) => return self.refuse(h, e),
        };
        (!h.no_reply()).then_some(out)
    }

    fn refuse(&mut self, h: &proto::Header, e: ProtoError) -> Option<Vec<u8>> {
        self.stats.refused += 1;
        tracing::debug!(target: "nicqual::vfio_user", "message {} (command {}): {e}", h.id, h.cmd);
        (!h.no_reply()).then(|| proto::error_reply(h, e.errno))
    }

    fn dispatch(&mut self, h: &proto::Header, req: Request<'_>, fds: Vec<OwnedFd>) -> Res<Vec<u8>> {
        let takes_fds = matches!(req, Request::DmaMap { .. } | Request::SetIrqs { .. });
        if !takes_fds && !fds.is_empty() {
            return Err(einval(format!("command {} takes no descriptors, {} sent", h.cmd, fds.len())));
        }
        if !self.negotiated && !matches!(req, Request::Version { .. }) {
            return Err(einval(format!("command {} before VERSION", h.cmd)));
        }
        let p = proto::Payload::default();
        match req {
            Request::Version { major, minor: _, caps } => {
                if self.negotiated {
                    return Err(einval("VERSION: already negotiated"));
                }
                if major != 0 {
                    return Err(ProtoError::new(errno::ENOTSUP, format!("VERSION: major {major} (only 0 is served)")));
                }
                if let Some(c) = caps {
                    match serde_json::from_str::<serde_json::Value>(c) {
                        Ok(serde_json::Value::Object(_)) => {}
                        _ => return Err(einval("VERSION: capabilities are not a JSON object")),
                    }
                }
                self.negotiated = true;
                let json = format!(
                    "{{\"capabilities\":{{\"max_msg_fds\":{MAX_FDS},\"max_data_xfer_size\":{MAX_XFER},\"pgsizes\":{PAGE},\"max_dma_maps\":{MAX_DMA_MAPS}}}}}"
                );
                Ok(p.u16(0).u16(0).bytes(json.as_bytes()).bytes(&[0]).0)
            }
            Request::GetInfo { argsz } => {
                if argsz < 16 {
                    return Err(einval(format!("DEVICE_GET_INFO: argsz {argsz} < 16")));
                }
                let flags = vfio::DEVICE_FLAGS_RESET | vfio::DEVICE_FLAGS_PCI;
                Ok(p.u32(16).u32(flags).u32(vfio::PCI_NUM_REGIONS).u32(vfio::PCI_NUM_IRQS).0)
            }
            Request::GetRegionInfo { argsz, index } => {
                if argsz < 32 {
                    return Err(einval(format!("DEVICE_GET_REGION_INFO: argsz {argsz} < 32")));
                }
                if index >= vfio::PCI_NUM_REGIONS {
                    return Err(einval(format!("DEVICE_GET_REGION_INFO: region {index} (the device has 9)")));
                }
                let size = self.region_len(index);
                let flags = if size > 0 { vfio::REGION_INFO_FLAG_READ | vfio::REGION_INFO_FLAG_WRITE } else { 0 };
                Ok(p.u32(32).u32(flags).u32(index).u32(0).u64(size).u64(0).0)
            }
            Request::GetIrqInfo { argsz, index } => {
                if argsz < 16 {
                    return Err(einval(format!("DEVICE_GET_IRQ_INFO: argsz {argsz} < 16")));
                }
                let flags = match index {
                    vfio::PCI_INTX_IRQ_INDEX => {
                        vfio::IRQ_INFO_EVENTFD | vfio::IRQ_INFO_MASKABLE | vfio::IRQ_INFO_AUTOMASKED
                    }
                    vfio::PCI_MSI_IRQ_INDEX | vfio::PCI_MSIX_IRQ_INDEX => {
                        vfio::IRQ_INFO_EVENTFD | vfio::IRQ_INFO_NORESIZE
                    }
                    vfio::PCI_ERR_IRQ_INDEX | vfio::PCI_REQ_IRQ_INDEX => vfio::IRQ_INFO_EVENTFD,
                    _ => return Err(einval(format!("DEVICE_GET_IRQ_INFO: index {index} (the device has 5)"))),
                };
                Ok(p.u32(16).u32(flags).u32(index).u32(self.irq_count(index)).0)
            }
            Request::SetIrqs { flags, index, start, count, bools } => {
                self.set_irqs(flags, index, start, count, bools, fds)?;
                Ok(Vec::new())
            }
            Request::RegionRead { offset, region, count } => {
                let data = self.region_read(region, offset, count)?;
                Ok(p.u64(offset).u32(region).u32(count).bytes(&data).0)
            }
            Request::RegionWrite { offset, region, data } => {
                self.region_write(region, offset, data)?;
                Ok(p.u64(offset).u32(region).u32(data.len() as u32).0)
            }
            Request::DmaMap { flags, offset, address, size } => {
                self.dma_map(flags, offset, address, size, fds)?;
                Ok(Vec::new())
            }
            Request::DmaUnmap { argsz, flags, address, size } => {
                self.dma_unmap(flags, address, size)?;
                Ok(p.u32(argsz.min(24)).u32(flags).u64(address).u64(size).0)
            }
            Request::Reset => {
                self.dev.function_reset();
                for irq in &mut self.irqs {
                    irq.masked.iter_mut().for_each(|m| *m = false);
                    irq.pending.iter_mut().for_each(|m| *m = false);
                }
                let vectors: Vec<u32> = (0..self.caps.msix_count)
                    .filter(|&v| {
                        self.irqs[vfio::PCI_MSIX_IRQ_INDEX as usize].fds.get(v as usize).is_some_and(Option::is_some)
                    })
                    .collect();
                for v in vectors {
                    self.program_msix(v);
                }
                Ok(Vec::new())
            }
        }
    }

    // ---- regions ------------------------------------------------------------------------

    fn region_len(&self, index: u32) -> u64 {
        match index {
            0..=5 => self.dev.bar_len(index as u8).unwrap_or(0),
            vfio::PCI_CONFIG_REGION_INDEX => CONFIG_LEN,
            _ => 0,
        }
    }

    /// Check `offset..offset+count` lies in region `region`.
    fn check_range(&self, what: &str, region: u32, offset: u64, count: u64) -> Res<()> {
        if region >= vfio::PCI_NUM_REGIONS {
            return Err(einval(format!("{what}: region {region} (the device has 9)")));
        }
        let len = self.region_len(region);
        match offset.checked_add(count) {
            Some(end) if end <= len => Ok(()),
            _ => {
                Err(einval(format!("{what}: region {region} offset {offset:#x} + {count} is past its end ({len:#x})")))
            }
        }
    }

    fn region_read(&mut self, region: u32, offset: u64, count: u32) -> Res<Vec<u8>> {
        self.check_range("REGION_READ", region, offset, count as u64)?;
        let mut out = Vec::with_capacity(count as usize);
        let end = offset + count as u64;
        let mut at = offset;
        while at < end {
            let left = end - at;
            if region == vfio::PCI_CONFIG_REGION_INDEX {
                let size = piece(at, left);
                let v = self.dev.config_read(at as u16, size as u8);
                out.extend_from_slice(v.to_le_bytes().get(..size as usize).unwrap_or_default());
                at += size;
            } else {
                let shift = at & 3;
                let n = (4 - shift).min(left);
                let v = self.dev.bar_read32(region as u8, at - shift) >> (8 * shift as u32);
                out.extend_from_slice(v.to_le_bytes().get(..n as usize).unwrap_or_default());
                at += n;
            }
        }
        Ok(out)
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> Res<()> {
        self.check_range("REGION_WRITE", region, offset, data.len() as u64)?;
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let left = rest.len() as u64;
            let n = if region == vfio::PCI_CONFIG_REGION_INDEX {
                let size = piece(at, left);
                self.dev.config_write(at as u16, size as u8, le(rest.get(..size as usize).unwrap_or_default()));
                size
            } else {
                let shift = at & 3;
                let n = (4 - shift).min(left);
                let v = le(rest.get(..n as usize).unwrap_or_default()) << (8 * shift as u32);
                self.dev.bar_write32(region as u8, at - shift, v);
                n
            };
            at += n;
            rest = rest.get(n as usize..).unwrap_or_default();
        }
        Ok(())
    }

    // ---- DMA ----------------------------------------------------------------------------

    fn dma_map(&mut self, flags: u32, offset: u64, address: u64, size: u64, mut fds: Vec<OwnedFd>) -> Res<()> {
        let rw = vfio::DMA_MAP_FLAG_READ | vfio::DMA_MAP_FLAG_WRITE;
        if flags & !rw != 0 || flags & vfio::DMA_MAP_FLAG_READ == 0 {
            return Err(einval(format!("DMA_MAP: flags {flags:#x} (readable, optionally writeable)")));
        }
        let end = address.checked_add(size).filter(|_| size > 0);
        let Some(end) = end else {
            return Err(einval(format!("DMA_MAP: range {address:#x}+{size:#x} is empty or wraps")));
        };
        if !address.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) || !offset.is_multiple_of(PAGE) {
            return Err(einval(format!(
                "DMA_MAP: address {address:#x}, size {size:#x} and offset {offset:#x} must be 4 KiB aligned"
            )));
        }
        if fds.len() > 1 {
            return Err(einval(format!("DMA_MAP: {} descriptors (0 or 1)", fds.len())));
        }
        if let Some((&start, e)) = self.maps.range(..end).next_back()
            && start + e.size > address
        {
            return Err(ProtoError::new(
                errno::EEXIST,
                format!("DMA_MAP: {address:#x}+{size:#x} overlaps the map at {start:#x}+{:#x}", e.size),
            ));
        }
        if self.maps.len() >= MAX_DMA_MAPS {
            return Err(ProtoError::new(errno::ENOSPC, format!("DMA_MAP: {MAX_DMA_MAPS} maps already")));
        }
        let in_iommu = match fds.pop() {
            None => false,
            Some(fd) => {
                let writable = flags & vfio::DMA_MAP_FLAG_WRITE != 0;
                let region = map_client_memory(fd, offset, size, writable)?;
                let perm = if writable { Perm::READ_WRITE } else { Perm::READ };
                self.dev
                    .iommu()
                    .map(address, region, perm)
                    .map_err(|e| ProtoError::new(errno::EEXIST, format!("DMA_MAP: IOMMU: {e}")))?;
                true
            }
        };
        self.maps.insert(address, DmaEntry { size, in_iommu });
        self.stats.dma_maps += 1;
        Ok(())
    }

    fn dma_unmap(&mut self, flags: u32, address: u64, size: u64) -> Res<()> {
        if flags & vfio::DMA_UNMAP_FLAG_GET_DIRTY_BITMAP != 0 {
            return Err(ProtoError::new(errno::ENOTSUP, "DMA_UNMAP: dirty page tracking is not served"));
        }
        if flags & !vfio::DMA_UNMAP_FLAG_ALL != 0 {
            return Err(einval(format!("DMA_UNMAP: flags {flags:#x}")));
        }
        let victims: Vec<u64> = if flags & vfio::DMA_UNMAP_FLAG_ALL != 0 {
            self.maps.keys().copied().collect()
        } else {
            let end = address
                .checked_add(size)
                .filter(|_| size > 0)
                .ok_or_else(|| einval(format!("DMA_UNMAP: range {address:#x}+{size:#x} is empty or wraps")))?;
            // Maps that start before `end` and end after `address` touch the range; each
            // must lie wholly inside it (an exact match, or whole maps a larger range covers).
            let mut v = Vec::new();
            for (&start, e) in self.maps.range(..end).rev() {
                if start + e.size <= address {
                    break;
                }
                if start < address || start + e.size > end {
                    return Err(einval(format!(
                        "DMA_UNMAP: {address:#x}+{size:#x} cuts the map at {start:#x}+{:#x}",
                        e.size
                    )));
                }
                v.push(start);
            }
            if v.is_empty() {
                return Err(ProtoError::new(
                    errno::ENOENT,
                    format!("DMA_UNMAP: nothing mapped at {address:#x}+{size:#x}"),
                ));
            }
            v
        };
        for a in victims {
            if let Some(e) = self.maps.remove(&a)
                && e.in_iommu
            {
                let _ = self.dev.iommu().unmap(a);
            }
            self.stats.dma_unmaps += 1;
        }
        Ok(())
    }

    // ---- interrupts ---------------------------------------------------------------------

    fn set_irqs(&mut self, flags: u32, index: u32, start: u32, count: u32, bools: &[u8], fds: Vec<OwnedFd>) -> Res<()> {
        let n = self.irq_count(index);
        if index >= vfio::PCI_NUM_IRQS {
            return Err(einval(format!("DEVICE_SET_IRQS: index {index} (the device has 5)")));
        }
        let data = flags & (vfio::IRQ_SET_DATA_NONE | vfio::IRQ_SET_DATA_BOOL | vfio::IRQ_SET_DATA_EVENTFD);
        let action = flags & (vfio::IRQ_SET_ACTION_MASK | vfio::IRQ_SET_ACTION_UNMASK | vfio::IRQ_SET_ACTION_TRIGGER);
        let irq = self.irqs.get_mut(index as usize).ok_or_else(|| einval("DEVICE_SET_IRQS: index"))?;
        // count 0 with DATA_NONE and TRIGGER: tear the whole index down.
        if data == vfio::IRQ_SET_DATA_NONE && action == vfio::IRQ_SET_ACTION_TRIGGER && count == 0 {
            if !fds.is_empty() || start != 0 {
                return Err(einval("DEVICE_SET_IRQS: disabling an index takes start 0 and no descriptors"));
            }
            *irq = IrqIndex::new(n);
            return Ok(());
        }
        let end = start.checked_add(count).filter(|&e| e <= n && count > 0);
        let Some(end) = end else {
            return Err(einval(format!("DEVICE_SET_IRQS: vectors {start}+{count} of index {index} (it has {n})")));
        };
        let range = start as usize..end as usize;
        if data == vfio::IRQ_SET_DATA_EVENTFD {
            if action != vfio::IRQ_SET_ACTION_TRIGGER {
                return Err(ProtoError::new(errno::ENOTSUP, "DEVICE_SET_IRQS: mask/unmask eventfds are not served"));
            }
            if fds.is_empty() {
                for i in range {
                    if let Some(slot) = irq.fds.get_mut(i) {
                        *slot = None;
                    }
                }
                return Ok(());
            }
            if fds.len() != count as usize {
                return Err(einval(format!("DEVICE_SET_IRQS: count {count} but {} descriptors", fds.len())));
            }
            for fd in &fds {
                sock::check_eventfd(fd)?;
            }
            for (i, fd) in range.clone().zip(fds) {
                if let Some(slot) = irq.fds.get_mut(i) {
                    *slot = Some(fd);
                }
            }
            if index == vfio::PCI_MSIX_IRQ_INDEX {
                for v in range {
                    self.program_msix(v as u32);
                }
            }
            return Ok(());
        }
        if !fds.is_empty() {
            return Err(einval(format!("DEVICE_SET_IRQS: {} descriptors with DATA_NONE/BOOL", fds.len())));
        }
        for (k, i) in range.enumerate() {
            if data == vfio::IRQ_SET_DATA_BOOL && bools.get(k).copied().unwrap_or(0) == 0 {
                continue;
            }
            match action {
                vfio::IRQ_SET_ACTION_MASK => {
                    if let Some(m) = irq.masked.get_mut(i) {
                        *m = true;
                    }
                }
                vfio::IRQ_SET_ACTION_UNMASK => {
                    if let Some(m) = irq.masked.get_mut(i) {
                        *m = false;
                    }
                    if irq.pending.get(i).copied().unwrap_or(false) {
                        if let Some(p) = irq.pending.get_mut(i) {
                            *p = false;
                        }
                        Self::fire(&mut self.stats, irq, i);
                    }
                }
                _ => Self::fire(&mut self.stats, irq, i),
            }
        }
        Ok(())
    }

    /// Point the model's MSI-X table entry `v` at the interrupt window with data `v`,
    /// unmasked (the client keeps the guest's table; see the module documentation).
    fn program_msix(&mut self, v: u32) {
        let (bar, base) = self.caps.msix_table;
        let e = base + v as u64 * pci::MSIX_ENTRY_SIZE;
        self.dev.bar_write32(bar, e + pci::MSIX_ENTRY_ADDR_LO, pci::MSI_ADDRESS_BASE as u32);
        self.dev.bar_write32(bar, e + pci::MSIX_ENTRY_ADDR_HI, 0);
        self.dev.bar_write32(bar, e + pci::MSIX_ENTRY_DATA, v);
        self.dev.bar_write32(bar, e + pci::MSIX_ENTRY_VECTOR_CTRL, 0);
    }

    fn fire(stats: &mut Stats, irq: &mut IrqIndex, i: usize) {
        match irq.fds.get(i).and_then(Option::as_ref) {
            Some(fd) => match sock::signal(fd) {
                Ok(()) => stats.signals += 1,
                Err(e) => {
                    stats.undelivered += 1;
                    tracing::warn!(target: "nicqual::vfio_user", "signalling an eventfd: {e}");
                }
            },
            None => stats.undelivered += 1,
        }
    }

    fn raise(&mut self, index: u32, v: usize) {
        let Some(irq) = self.irqs.get_mut(index as usize) else { return };
        if v >= irq.fds.len() {
            self.stats.stray_messages += 1;
            return;
        }
        if irq.masked.get(v).copied().unwrap_or(false) {
            if let Some(p) = irq.pending.get_mut(v) {
                *p = true;
            }
            self.stats.held += 1;
            return;
        }
        Self::fire(&mut self.stats, irq, v);
    }

    fn cap_enabled(&mut self, cap: Option<u16>, ctrl_off: u16, bit: u16) -> bool {
        cap.is_some_and(|c| self.dev.config_read(c + ctrl_off, 2) as u16 & bit != 0)
    }

    /// Hand what the device raised to the client's eventfds.
    fn deliver(&mut self) {
        let msgs = self.dev.take_interrupts();
        if !msgs.is_empty() {
            let msix = self.cap_enabled(self.caps.msix, pci::MSIX_MSG_CTRL, pci::MSIX_CTRL_ENABLE);
            let msi = self.cap_enabled(self.caps.msi, 2, 1);
            for m in msgs {
                if msix {
                    self.raise(vfio::PCI_MSIX_IRQ_INDEX, m.data as usize);
                } else if msi {
                    // Multiple-message MSI: the vector is in the low bits of the data.
                    let n = self.irq_count(vfio::PCI_MSI_IRQ_INDEX).max(1);
                    self.raise(vfio::PCI_MSI_IRQ_INDEX, (m.data % n) as usize);
                } else {
                    self.stats.stray_messages += 1;
                }
            }
        }
        let intx = &self.irqs[vfio::PCI_INTX_IRQ_INDEX as usize];
        let armed = intx.fds.first().is_some_and(Option::is_some) && !intx.masked.first().copied().unwrap_or(true);
        if armed && self.dev.intx_level() {
            let irq = &mut self.irqs[vfio::PCI_INTX_IRQ_INDEX as usize];
            // Automasked: the client unmasks after the guest's end of interrupt.
            if let Some(m) = irq.masked.first_mut() {
                *m = true;
            }
            Self::fire(&mut self.stats, irq, 0);
        }
    }
}

/// Largest naturally aligned config access (4, 2 or 1 bytes) at `at` within `left` bytes.
fn piece(at: u64, left: u64) -> u64 {
    if at.is_multiple_of(4) && left >= 4 {
        4
    } else if at.is_multiple_of(2) && left >= 2 {
        2
    } else {
        1
    }
}

fn le(b: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    for (d, s) in w.iter_mut().zip(b) {
        *d = *s;
    }
    u32::from_le_bytes(w)
}

/// mmap `size` bytes at `offset` of the client's memory descriptor as a region the IOMMU
/// can map. Refused unless the descriptor is a memfd sealed against shrinking and long
/// enough, so a later truncation cannot turn a device access into SIGBUS.
fn map_client_memory(fd: OwnedFd, offset: u64, size: u64, writable: bool) -> Res<HostRegion> {
    let seals = sock::seals(&fd)
        .ok_or_else(|| ProtoError::new(errno::EPERM, "DMA_MAP: the descriptor is not a memfd (cannot be sealed)"))?;
    if seals & libc::F_SEAL_SHRINK == 0 {
        return Err(ProtoError::new(
            errno::EPERM,
            "DMA_MAP: the memfd is not sealed against shrinking (F_SEAL_SHRINK)",
        ));
    }
    let file = std::fs::File::from(fd);
    let have = file.metadata().map_err(|e| ProtoError::new(errno::EBADF, format!("DMA_MAP: fstat: {e}")))?.len();
    if offset.checked_add(size).is_none_or(|e| e > have) {
        return Err(einval(format!(
            "DMA_MAP: offset {offset:#x} + size {size:#x} is past the memfd's end ({have:#x})"
        )));
    }
    let len = usize::try_from(size).map_err(|_| ProtoError::new(errno::ENOMEM, "DMA_MAP: size"))?;
    let mut o = MmapOptions::new();
    o.offset(offset).len(len);
    let map: MmapRaw = if writable { o.map_raw(&file) } else { o.map_raw_read_only(&file) }
        .map_err(|e| ProtoError::new(errno::EFAULT, format!("DMA_MAP: mmap: {e}")))?;
    // SAFETY: `map` covers `len` bytes, mapped shared from a memfd sealed against shrinking
    // and at least `offset + len` long (checked above), so every byte stays backed for as
    // long as the mapping lives, and the region owns the mapping. A read-only mapping is
    // mapped only with Perm::READ, and the IOMMU writes through a window only when its
    // permissions allow writes, so nothing writes to it. The memory is reached only by raw
    // copies (the IOMMU's); the client process writes it from outside this program, which
    // HostRegion allows (memory shared with another process is I/O to us). The server is
    // not Send (its device holds the IOMMU), so no other thread of ours reaches it.
    Ok(unsafe { HostRegion::new(map.as_mut_ptr(), len, map) })
}

#[cfg(test)]
mod tests;
