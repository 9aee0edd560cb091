//! vfio-user messages: the header, the requests this server accepts, and their decoding.
//!
//! Layouts follow the protocol specification (QEMU `docs/interop/vfio-user.rst`, sections
//! "Header" through "VFIO_USER_DEVICE_RESET"); the VFIO structures it reuses
//! (`vfio_region_info`, `vfio_irq_info`, `vfio_irq_set`) and their flag bits are those of
//! `<linux/vfio.h>`. All fields are little-endian (the host's byte order on x86, which the
//! specification prescribes). Decoding never trusts a size: every field is read with a
//! bounds check, and a message that is too short, too long or inconsistent is refused with
//! a typed [`ProtoError`] carrying the errno the reply reports.

/// Size of the header every message starts with.
pub const HEADER_LEN: usize = 16;
/// Largest data transfer in one REGION_READ/WRITE (advertised as `max_data_xfer_size`).
pub const MAX_XFER: usize = 64 << 10;
/// Largest message accepted: a REGION_WRITE of [`MAX_XFER`] bytes with its headers, or a
/// VERSION with a capability string of up to that size. Anything larger is refused
/// before a byte of its payload is buffered.
pub const MAX_MSG: usize = HEADER_LEN + 16 + MAX_XFER;
/// Most file descriptors accepted with one message (advertised as `max_msg_fds`).
pub const MAX_FDS: usize = 8;
/// Most DMA regions mapped at once (advertised as `max_dma_maps`).
pub const MAX_DMA_MAPS: usize = 1024;

/// Command numbers (specification, "Commands").
pub mod cmd {
    pub const VERSION: u16 = 1;
    pub const DMA_MAP: u16 = 2;
    pub const DMA_UNMAP: u16 = 3;
    pub const DEVICE_GET_INFO: u16 = 4;
    pub const DEVICE_GET_REGION_INFO: u16 = 5;
    pub const DEVICE_GET_REGION_IO_FDS: u16 = 6;
    pub const DEVICE_GET_IRQ_INFO: u16 = 7;
    pub const DEVICE_SET_IRQS: u16 = 8;
    pub const REGION_READ: u16 = 9;
    pub const REGION_WRITE: u16 = 10;
    pub const DMA_READ: u16 = 11;
    pub const DMA_WRITE: u16 = 12;
    pub const DEVICE_RESET: u16 = 13;
}

/// Header flag bits.
pub mod flags {
    pub const TYPE_MASK: u32 = 0xF;
    pub const TYPE_COMMAND: u32 = 0;
    pub const TYPE_REPLY: u32 = 1;
    pub const NO_REPLY: u32 = 1 << 4;
    pub const ERROR: u32 = 1 << 5;
}

/// `<linux/vfio.h>` constants the messages carry.
pub mod vfio {
    pub const DEVICE_FLAGS_RESET: u32 = 1 << 0;
    pub const DEVICE_FLAGS_PCI: u32 = 1 << 1;
    pub const REGION_INFO_FLAG_READ: u32 = 1 << 0;
    pub const REGION_INFO_FLAG_WRITE: u32 = 1 << 1;
    pub const IRQ_INFO_EVENTFD: u32 = 1 << 0;
    pub const IRQ_INFO_MASKABLE: u32 = 1 << 1;
    pub const IRQ_INFO_AUTOMASKED: u32 = 1 << 2;
    pub const IRQ_INFO_NORESIZE: u32 = 1 << 3;
    pub const IRQ_SET_DATA_NONE: u32 = 1 << 0;
    pub const IRQ_SET_DATA_BOOL: u32 = 1 << 1;
    pub const IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
    pub const IRQ_SET_ACTION_MASK: u32 = 1 << 3;
    pub const IRQ_SET_ACTION_UNMASK: u32 = 1 << 4;
    pub const IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
    pub const DMA_MAP_FLAG_READ: u32 = 1 << 0;
    pub const DMA_MAP_FLAG_WRITE: u32 = 1 << 1;
    pub const DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: u32 = 1 << 0;
    pub const DMA_UNMAP_FLAG_ALL: u32 = 1 << 1;
    /// VFIO PCI region indices (`VFIO_PCI_*_REGION_INDEX`): BAR0..BAR5 are 0..5.
    pub const PCI_ROM_REGION_INDEX: u32 = 6;
    pub const PCI_CONFIG_REGION_INDEX: u32 = 7;
    pub const PCI_VGA_REGION_INDEX: u32 = 8;
    pub const PCI_NUM_REGIONS: u32 = 9;
    /// VFIO PCI IRQ indices (`VFIO_PCI_*_IRQ_INDEX`).
    pub const PCI_INTX_IRQ_INDEX: u32 = 0;
    pub const PCI_MSI_IRQ_INDEX: u32 = 1;
    pub const PCI_MSIX_IRQ_INDEX: u32 = 2;
    pub const PCI_ERR_IRQ_INDEX: u32 = 3;
    pub const PCI_REQ_IRQ_INDEX: u32 = 4;
    pub const PCI_NUM_IRQS: u32 = 5;
}

/// errno values the replies carry (Linux, `asm-generic/errno-base.h` / `errno.h`).
pub mod errno {
    pub const ENOENT: u32 = 2;
    pub const EIO: u32 = 5;
    pub const EBADF: u32 = 9;
    pub const ENOMEM: u32 = 12;
    pub const EFAULT: u32 = 14;
    pub const EEXIST: u32 = 17;
    pub const EINVAL: u32 = 22;
    pub const ENOSPC: u32 = 28;
    pub const E2BIG: u32 = 7;
    pub const EPERM: u32 = 1;
    pub const ENOTSUP: u32 = 95;
    pub const EPROTO: u32 = 71;
}

/// A refused message: the errno for the reply and what was wrong, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (errno {errno})")]
pub struct ProtoError {
    pub errno: u32,
    pub what: String,
}

impl ProtoError {
    pub fn new(errno: u32, what: impl Into<String>) -> ProtoError {
        ProtoError { errno, what: what.into() }
    }
}

fn einval(what: impl Into<String>) -> ProtoError {
    ProtoError::new(errno::EINVAL, what)
}

/// The 16-byte message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub id: u16,
    pub cmd: u16,
    /// Whole message, header included.
    pub size: u32,
    pub flags: u32,
    pub error: u32,
}

impl Header {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        let mut r = Reader { b, at: 0 };
        // Fixed-size input: the reads cannot fail; defaults keep this total anyway.
        Header {
            id: r.u16().unwrap_or_default(),
            cmd: r.u16().unwrap_or_default(),
            size: r.u32().unwrap_or_default(),
            flags: r.u32().unwrap_or_default(),
            error: r.u32().unwrap_or_default(),
        }
    }

    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut o = [0u8; HEADER_LEN];
        let w = |o: &mut [u8; HEADER_LEN], at: usize, v: &[u8]| {
            if let Some(d) = o.get_mut(at..at + v.len()) {
                d.copy_from_slice(v);
            }
        };
        w(&mut o, 0, &self.id.to_le_bytes());
        w(&mut o, 2, &self.cmd.to_le_bytes());
        w(&mut o, 4, &self.size.to_le_bytes());
        w(&mut o, 8, &self.flags.to_le_bytes());
        w(&mut o, 12, &self.error.to_le_bytes());
        o
    }

    /// Payload length the header announces, checked against [`MAX_MSG`] and the header.
    pub fn payload_len(&self) -> Result<usize, ProtoError> {
        let size = self.size as usize;
        if size < HEADER_LEN {
            return Err(einval(format!("header: message size {size} is smaller than the header")));
        }
        if size > MAX_MSG {
            return Err(ProtoError::new(errno::E2BIG, format!("header: message size {size} exceeds {MAX_MSG}")));
        }
        Ok(size - HEADER_LEN)
    }

    pub fn no_reply(&self) -> bool {
        self.flags & flags::NO_REPLY != 0
    }
}

/// Bounds-checked little-endian reads.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).and_then(|s| s.try_into().ok()).map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4).and_then(|s| s.try_into().ok()).map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.bytes(8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes)
    }
    fn rest(&self) -> &'a [u8] {
        self.b.get(self.at..).unwrap_or_default()
    }
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    Version {
        major: u16,
        minor: u16,
        caps: Option<&'a str>,
    },
    DmaMap {
        flags: u32,
        offset: u64,
        address: u64,
        size: u64,
    },
    DmaUnmap {
        argsz: u32,
        flags: u32,
        address: u64,
        size: u64,
    },
    GetInfo {
        argsz: u32,
    },
    GetRegionInfo {
        argsz: u32,
        index: u32,
    },
    GetIrqInfo {
        argsz: u32,
        index: u32,
    },
    /// `bools` is the DATA_BOOL array (`count` bytes), empty otherwise.
    SetIrqs {
        flags: u32,
        index: u32,
        start: u32,
        count: u32,
        bools: &'a [u8],
    },
    RegionRead {
        offset: u64,
        region: u32,
        count: u32,
    },
    RegionWrite {
        offset: u64,
        region: u32,
        data: &'a [u8],
    },
    Reset,
}

fn short(what: &str, need: usize, have: usize) -> ProtoError {
    einval(format!("{what}: payload of {have} bytes, {need} needed"))
}

/// Decode the payload of a command message (the header was checked by
/// [`Header::payload_len`]). Commands this server does not serve are refused with
/// `ENOTSUP`; a reply or an unknown message type with `EINVAL`.
pub fn decode<'a>(h: &Header, p: &'a [u8]) -> Result<Request<'a>, ProtoError> {
    if h.flags & flags::TYPE_MASK != flags::TYPE_COMMAND {
        return Err(einval(format!("header: message type {} is not a command", h.flags & flags::TYPE_MASK)));
    }
    let mut r = Reader { b: p, at: 0 };
    let n = p.len();
    match h.cmd {
        cmd::VERSION => {
            let (Some(major), Some(minor)) = (r.u16(), r.u16()) else { return Err(short("VERSION", 4, n)) };
            let rest = r.rest();
            let caps = if rest.is_empty() {
                None
            } else {
                let Some((&0, text)) = rest.split_last() else {
                    return Err(einval("VERSION: capability string is not NUL-terminated"));
                };
                if text.contains(&0) {
                    return Err(einval("VERSION: NUL inside the capability string"));
                }
                Some(std::str::from_utf8(text).map_err(|_| einval("VERSION: capability string is not UTF-8"))?)
            };
            Ok(Request::Version { major, minor, caps })
        }
        cmd::DMA_MAP => {
            let (Some(argsz), Some(flags), Some(offset), Some(address), Some(size)) =
                (r.u32(), r.u32(), r.u64(), r.u64(), r.u64())
            else {
                return Err(short("DMA_MAP", 32, n));
            };
            if argsz < 32 {
                return Err(einval(format!("DMA_MAP: argsz {argsz} < 32")));
            }
            Ok(Request::DmaMap { flags, offset, address, size })
        }
        cmd::DMA_UNMAP => {
            let (Some(argsz), Some(flags), Some(address), Some(size)) = (r.u32(), r.u32(), r.u64(), r.u64()) else {
                return Err(short("DMA_UNMAP", 24, n));
            };
            Ok(Request::DmaUnmap { argsz, flags, address, size })
        }
        cmd::DEVICE_GET_INFO => {
            let Some(argsz) = r.u32() else { return Err(short("DEVICE_GET_INFO", 4, n)) };
            Ok(Request::GetInfo { argsz })
        }
        cmd::DEVICE_GET_REGION_INFO => {
            let (Some(argsz), Some(_flags), Some(index)) = (r.u32(), r.u32(), r.u32()) else {
                return Err(short("DEVICE_GET_REGION_INFO", 12, n));
            };
            Ok(Request::GetRegionInfo { argsz, index })
        }
        cmd::DEVICE_GET_IRQ_INFO => {
            let (Some(argsz), Some(_flags), Some(index)) = (r.u32(), r.u32(), r.u32()) else {
                return Err(short("DEVICE_GET_IRQ_INFO", 12, n));
            };
            Ok(Request::GetIrqInfo { argsz, index })
        }
        cmd::DEVICE_SET_IRQS => {
            let (Some(argsz), Some(flags), Some(index), Some(start), Some(count)) =
                (r.u32(), r.u32(), r.u32(), r.u32(), r.u32())
            else {
                return Err(short("DEVICE_SET_IRQS", 20, n));
            };
            if argsz < 20 {
                return Err(einval(format!("DEVICE_SET_IRQS: argsz {argsz} < 20")));
            }
            let data = flags & (vfio::IRQ_SET_DATA_NONE | vfio::IRQ_SET_DATA_BOOL | vfio::IRQ_SET_DATA_EVENTFD);
            let action =
                flags & (vfio::IRQ_SET_ACTION_MASK | vfio::IRQ_SET_ACTION_UNMASK | vfio::IRQ_SET_ACTION_TRIGGER);
            if data.count_ones() != 1 || action.count_ones() != 1 || flags & !(data | action) != 0 {
                return Err(einval(format!("DEVICE_SET_IRQS: flags {flags:#x} need one DATA and one ACTION bit")));
            }
            let bools = if data == vfio::IRQ_SET_DATA_BOOL {
                r.bytes(count as usize).ok_or_else(|| short("DEVICE_SET_IRQS (DATA_BOOL)", 20 + count as usize, n))?
            } else {
                &[]
            };
            Ok(Request::SetIrqs { flags, index, start, count, bools })
        }
        cmd::REGION_READ => {
            let (Some(offset), Some(region), Some(count)) = (r.u64(), r.u32(), r.u32()) else {
                return Err(short("REGION_READ", 16, n));
            };
            if count as usize > MAX_XFER {
                return Err(ProtoError::new(
                    errno::E2BIG,
                    format!("REGION_READ: count {count} exceeds max_data_xfer_size {MAX_XFER}"),
                ));
            }
            Ok(Request::RegionRead { offset, region, count })
        }
        cmd::REGION_WRITE => {
            let (Some(offset), Some(region), Some(count)) = (r.u64(), r.u32(), r.u32()) else {
                return Err(short("REGION_WRITE", 16, n));
            };
            let data = r.rest();
            if data.len() != count as usize {
                return Err(einval(format!("REGION_WRITE: count {count} but {} data bytes", data.len())));
            }
            Ok(Request::RegionWrite { offset, region, data })
        }
        cmd::DEVICE_RESET => Ok(Request::Reset),
        c @ (cmd::DEVICE_GET_REGION_IO_FDS | cmd::DMA_READ | cmd::DMA_WRITE) => {
            Err(ProtoError::new(errno::ENOTSUP, format!("command {c} is not served")))
        }
        c => Err(ProtoError::new(errno::ENOTSUP, format!("unknown command {c}"))),
    }
}

/// A reply message: header (Reply type, same id and command) and payload.
pub fn reply(req: &Header, payload: &[u8]) -> Vec<u8> {
    let size = HEADER_LEN + payload.len();
    let h = Header { id: req.id, cmd: req.cmd, size: size as u32, flags: flags::TYPE_REPLY, error: 0 };
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&h.to_bytes());
    out.extend_from_slice(payload);
    out
}

/// An error reply: header only, Error bit and the errno.
pub fn error_reply(req: &Header, errno: u32) -> Vec<u8> {
    let h = Header {
        id: req.id,
        cmd: req.cmd,
        size: HEADER_LEN as u32,
        flags: flags::TYPE_REPLY | flags::ERROR,
        error: errno,
    };
    h.to_bytes().to_vec()
}

/// Little-endian payload builder for replies.
#[derive(Default)]
pub struct Payload(pub Vec<u8>);

impl Payload {
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(cmd: u16, payload: usize) -> Header {
        Header { id: 7, cmd, size: (HEADER_LEN + payload) as u32, flags: 0, error: 0 }
    }

    #[test]
    fn header_round_trips_and_sizes_are_checked() {
        let h = Header { id: 0x1234, cmd: 9, size: 32, flags: flags::NO_REPLY, error: 5 };
        assert_eq!(Header::parse(&h.to_bytes()), h);
        assert_eq!(h.payload_len(), Ok(16));
        assert_eq!(Header { size: 15, ..h }.payload_len().unwrap_err().errno, errno::EINVAL);
        assert_eq!(Header { size: u32::MAX, ..h }.payload_len().unwrap_err().errno, errno::E2BIG);
    }

    #[test]
    fn short_and_inconsistent_payloads_are_refused() {
        assert_eq!(decode(&hdr(cmd::VERSION, 3), &[0, 0, 1]).unwrap_err().errno, errno::EINVAL);
        assert!(decode(&hdr(cmd::VERSION, 5), &[0, 0, 0, 0, b'{']).is_err(), "no NUL");
        assert_eq!(
            decode(&hdr(cmd::VERSION, 6), &[0, 0, 0, 0, b'x', 0]).unwrap(),
            Request::Version { major: 0, minor: 0, caps: Some("x") }
        );
        let mut rw = Payload::default().u64(0).u32(0).u32(8).bytes(&[1, 2, 3]).0;
        assert!(decode(&hdr(cmd::REGION_WRITE, rw.len()), &rw).is_err(), "count 8, 3 bytes");
        rw.truncate(10);
        assert!(decode(&hdr(cmd::REGION_WRITE, rw.len()), &rw).is_err());
        let rd = Payload::default().u64(0).u32(0).u32(u32::MAX).0;
        assert_eq!(decode(&hdr(cmd::REGION_READ, rd.len()), &rd).unwrap_err().errno, errno::E2BIG);
        let irq =
            Payload::default().u32(20).u32(vfio::IRQ_SET_DATA_BOOL | vfio::IRQ_SET_ACTION_MASK).u32(0).u32(0).u32(4).0;
        assert!(decode(&hdr(cmd::DEVICE_SET_IRQS, irq.len()), &irq).is_err(), "bool array missing");
        let two = Payload::default()
            .u32(20)
            .u32(vfio::IRQ_SET_DATA_NONE | vfio::IRQ_SET_DATA_EVENTFD | vfio::IRQ_SET_ACTION_MASK)
            .u32(0)
            .u32(0)
            .u32(1)
            .0;
        assert!(decode(&hdr(cmd::DEVICE_SET_IRQS, two.len()), &two).is_err(), "two DATA bits");
        assert_eq!(decode(&hdr(99, 0), &[]).unwrap_err().errno, errno::ENOTSUP);
        let reply_type = Header { flags: flags::TYPE_REPLY, ..hdr(cmd::DEVICE_RESET, 0) };
        assert_eq!(decode(&reply_type, &[]).unwrap_err().errno, errno::EINVAL);
    }

    #[test]
    fn error_replies_carry_the_errno() {
        let r = error_reply(&hdr(cmd::REGION_READ, 16), errno::EINVAL);
        let h = Header::parse(r.as_slice().try_into().unwrap());
        assert_eq!((h.id, h.cmd, h.size, h.flags, h.error), (7, cmd::REGION_READ, 16, 0x21, 22));
    }
}
