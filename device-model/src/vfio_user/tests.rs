//! The server against well-behaved and hostile clients: through `handle` (framed messages,
//! real eventfds and memfds) and through a socket (framing, descriptors, disconnects).

use super::proto::{Header, Payload, cmd, errno, flags, vfio};
use super::*;
use crate::i82574::{Config, I82574};
use std::os::fd::{AsRawFd, FromRawFd};

fn server() -> VfioUserServer<I82574> {
    let mut s = VfioUserServer::new(I82574::new(Config::default()), Clock::Manual);
    let r = s.handle(&hdr(cmd::VERSION, 4), &[0, 0, 0, 0], vec![]).unwrap();
    assert_eq!(reply_error(&r), 0, "VERSION");
    s
}

fn hdr(c: u16, payload: usize) -> Header {
    Header { id: 0x42, cmd: c, size: (proto::HEADER_LEN + payload) as u32, flags: 0, error: 0 }
}

/// Errno of a reply (0 when it is not an error), after checking its header.
fn reply_error(r: &[u8]) -> u32 {
    let h = Header::parse(r.get(..16).unwrap().try_into().unwrap());
    assert_eq!(h.size as usize, r.len(), "reply size field");
    assert_eq!(h.flags & flags::TYPE_MASK, flags::TYPE_REPLY);
    if h.flags & flags::ERROR != 0 {
        assert_eq!(r.len(), 16, "an error reply is the header alone");
        assert_ne!(h.error, 0, "an error reply carries an errno");
        h.error
    } else {
        0
    }
}

fn call(s: &mut VfioUserServer<I82574>, c: u16, p: &[u8], fds: Vec<OwnedFd>) -> (u32, Vec<u8>) {
    let r = s.handle(&hdr(c, p.len()), p, fds).expect("a reply");
    let e = reply_error(&r);
    (e, r.get(16..).unwrap_or_default().to_vec())
}

fn read(s: &mut VfioUserServer<I82574>, region: u32, off: u64, count: u32) -> Result<Vec<u8>, u32> {
    let (e, p) = call(s, cmd::REGION_READ, &Payload::default().u64(off).u32(region).u32(count).0, vec![]);
    if e != 0 { Err(e) } else { Ok(p.get(16..).unwrap().to_vec()) }
}

fn read32(s: &mut VfioUserServer<I82574>, region: u32, off: u64) -> u32 {
    u32::from_le_bytes(read(s, region, off, 4).unwrap().try_into().unwrap())
}

fn write(s: &mut VfioUserServer<I82574>, region: u32, off: u64, data: &[u8]) -> u32 {
    let p = Payload::default().u64(off).u32(region).u32(data.len() as u32).bytes(data).0;
    call(s, cmd::REGION_WRITE, &p, vec![]).0
}

fn write32(s: &mut VfioUserServer<I82574>, region: u32, off: u64, v: u32) {
    assert_eq!(write(s, region, off, &v.to_le_bytes()), 0);
}

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a new descriptor (checked) that we then own.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: fresh descriptor, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn dup(fd: &OwnedFd) -> OwnedFd {
    fd.try_clone().unwrap()
}

/// Count an eventfd accumulated (0 when it was never signalled).
fn drain(fd: &OwnedFd) -> u64 {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, no wait.
    if unsafe { libc::poll(&mut p, 1, 0) } <= 0 {
        return 0;
    }
    let mut b = [0u8; 8];
    // SAFETY: reads 8 bytes into a local buffer from a descriptor we own.
    let n = unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 8) };
    assert_eq!(n, 8);
    u64::from_ne_bytes(b)
}

/// A memfd of `len` bytes, sealed against shrinking when `seal`.
fn memfd(len: u64, seal: bool) -> OwnedFd {
    // SAFETY: memfd_create with a NUL-terminated name returns a new descriptor (checked).
    let fd = unsafe { libc::memfd_create(c"nq-test".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    assert!(fd >= 0);
    // SAFETY: fresh descriptor, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let f = std::fs::File::from(fd);
    f.set_len(len).unwrap();
    if seal {
        // SAFETY: fcntl F_ADD_SEALS on a descriptor we own.
        assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) }, 0);
    }
    f.into()
}

fn dma_map(address: u64, size: u64, offset: u64) -> Vec<u8> {
    let f = vfio::DMA_MAP_FLAG_READ | vfio::DMA_MAP_FLAG_WRITE;
    Payload::default().u32(32).u32(f).u64(offset).u64(address).u64(size).0
}

fn dma_unmap(address: u64, size: u64, flags: u32) -> Vec<u8> {
    Payload::default().u32(24).u32(flags).u64(address).u64(size).0
}

fn set_irqs(flags: u32, index: u32, start: u32, count: u32) -> Vec<u8> {
    Payload::default().u32(20).u32(flags).u32(index).u32(start).u32(count).0
}

const EVENTFD_TRIGGER: u32 = vfio::IRQ_SET_DATA_EVENTFD | vfio::IRQ_SET_ACTION_TRIGGER;

#[test]
fn negotiation_and_device_description() {
    let mut s = VfioUserServer::new(I82574::new(Config::default()), Clock::Manual);
    // Nothing before VERSION.
    assert_eq!(
        call(&mut s, cmd::DEVICE_GET_INFO, &Payload::default().u32(16).u32(0).u32(0).u32(0).0, vec![]).0,
        errno::EINVAL
    );
    assert_eq!(call(&mut s, cmd::VERSION, &[1, 0, 0, 0], vec![]).0, errno::ENOTSUP, "major 1");
    assert_eq!(call(&mut s, cmd::VERSION, b"\0\0\0\0[1]\0", vec![]).0, errno::EINVAL, "caps not an object");
    let caps = b"\0\0\0\0{\"capabilities\":{\"max_msg_fds\":16}}\0";
    let (e, p) = call(&mut s, cmd::VERSION, caps, vec![]);
    assert_eq!(e, 0);
    assert_eq!(p.get(..4).unwrap(), &[0, 0, 0, 0]);
    let json = std::str::from_utf8(p.get(4..p.len() - 1).unwrap()).unwrap();
    assert_eq!(p.last(), Some(&0), "NUL-terminated, as QEMU requires");
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["capabilities"]["max_msg_fds"], MAX_FDS);
    assert_eq!(v["capabilities"]["max_data_xfer_size"], MAX_XFER);
    assert_eq!(call(&mut s, cmd::VERSION, &[0, 0, 0, 0], vec![]).0, errno::EINVAL, "once");

    let (e, p) = call(&mut s, cmd::DEVICE_GET_INFO, &Payload::default().u32(16).u32(0).u32(0).u32(0).0, vec![]);
    assert_eq!(e, 0);
    assert_eq!(p, Payload::default().u32(16).u32(3).u32(9).u32(5).0);
    let region = |s: &mut VfioUserServer<I82574>, i: u32| {
        let (e, p) = call(
            s,
            cmd::DEVICE_GET_REGION_INFO,
            &Payload::default().u32(32).u32(0).u32(i).u32(0).u64(0).u64(0).0,
            vec![],
        );
        (e, u64::from_le_bytes(p.get(16..24).unwrap_or(&[0; 8]).try_into().unwrap()))
    };
    // The 82574L: BAR0 128 KiB, BAR1 flash, BAR2 I/O, BAR3 MSI-X 16 KiB; config 256.
    assert_eq!(region(&mut s, 0), (0, 128 << 10));
    assert!(region(&mut s, 1).1 > 0);
    assert_eq!(region(&mut s, 2), (0, 32));
    assert_eq!(region(&mut s, 3), (0, 16 << 10));
    assert_eq!(region(&mut s, 4), (0, 0));
    assert_eq!(region(&mut s, 7), (0, 256));
    assert_eq!(region(&mut s, 9).0, errno::EINVAL);
    let irq = |s: &mut VfioUserServer<I82574>, i: u32| {
        let (e, p) = call(s, cmd::DEVICE_GET_IRQ_INFO, &Payload::default().u32(16).u32(0).u32(i).u32(0).0, vec![]);
        (e, u32::from_le_bytes(p.get(12..16).unwrap_or(&[0; 4]).try_into().unwrap()))
    };
    assert_eq!(irq(&mut s, 0), (0, 1), "INTx: interrupt pin set");
    assert_eq!(irq(&mut s, 1), (0, 1), "MSI");
    assert_eq!(irq(&mut s, 2), (0, 5), "MSI-X: five vectors");
    assert_eq!(irq(&mut s, 3), (0, 1), "error index");
    assert_eq!(irq(&mut s, 5).0, errno::EINVAL);
}

#[test]
fn region_accesses_and_bounds() {
    let mut s = server();
    assert_eq!(read32(&mut s, 7, 0), 0x10D3_8086);
    assert_eq!(read(&mut s, 7, 0, 256).unwrap().len(), 256, "QEMU reads config space whole");
    assert_eq!(read(&mut s, 7, 1, 3).unwrap(), vec![0x80, 0xD3, 0x10], "unaligned pieces");
    assert_eq!(read(&mut s, 7, 250, 7), Err(errno::EINVAL), "past the end");
    assert_eq!(read(&mut s, 0, u64::MAX - 1, 4), Err(errno::EINVAL), "offset wraps");
    assert_eq!(read(&mut s, 4, 0, 4), Err(errno::EINVAL), "empty region");
    assert_eq!(read(&mut s, 9, 0, 4), Err(errno::EINVAL), "no such region");
    assert_eq!(read(&mut s, 0, 0, u32::MAX), Err(errno::E2BIG), "count over max_data_xfer_size");
    assert_eq!(write(&mut s, 0, 0x2_0000, &[0; 4]), errno::EINVAL, "BAR0 ends at 128 KiB");
    // CTRL_EXT.DRV_LOAD through one byte (widened with zeros), then read back whole.
    write32(&mut s, 0, 0x18, 0);
    assert_eq!(write(&mut s, 0, 0x1B, &[0x10]), 0);
    assert_eq!(read32(&mut s, 0, 0x18), 0x1000_0000);
    // An 8-byte access is two dwords.
    assert_eq!(read(&mut s, 0, 0x18, 8).unwrap().len(), 8);
    // Config write: command register.
    assert_eq!(write(&mut s, 7, 4, &[6, 0]), 0);
    assert_eq!(read(&mut s, 7, 4, 2).unwrap(), vec![6, 0]);
}

#[test]
fn unknown_commands_no_reply_and_stray_descriptors() {
    let mut s = server();
    assert_eq!(call(&mut s, 99, &[1, 2, 3], vec![]).0, errno::ENOTSUP);
    assert_eq!(call(&mut s, cmd::DMA_READ, &[], vec![]).0, errno::ENOTSUP);
    let h = Header { flags: flags::NO_REPLY, ..hdr(cmd::REGION_WRITE, 20) };
    let p = Payload::default().u64(0x18).u32(0).u32(4).u32(0x1000_0000).0;
    assert_eq!(s.handle(&h, &p, vec![]), None, "No_reply honoured");
    assert_eq!(read32(&mut s, 0, 0x18), 0x1000_0000);
    let h = Header { flags: flags::NO_REPLY, ..hdr(77, 0) };
    assert_eq!(s.handle(&h, &[], vec![]), None, "even for a refused command");
    let p = Payload::default().u64(0).u32(7).u32(4).0;
    assert_eq!(call(&mut s, cmd::REGION_READ, &p, vec![eventfd()]).0, errno::EINVAL, "descriptor with a read");
    assert_eq!(s.stats.refused, 4);
}

#[test]
fn dma_maps_feed_the_iommu_and_refuse_overlaps() {
    let mut s = server();
    let mem = memfd(1 << 20, true);
    assert_eq!(call(&mut s, cmd::DMA_MAP, &dma_map(0x10_0000, 0x8_0000, 0), vec![dup(&mem)]).0, 0);
    assert_eq!(s.device_mut().iommu().window_count(), 1);
    // The device reads what the client wrote at offset 0 of the memfd.
    let f = std::fs::File::from(dup(&mem));
    std::os::unix::fs::FileExt::write_at(&f, b"guest", 0).unwrap();
    let mut b = [0u8; 5];
    s.device_mut().iommu().read(0x10_0000, &mut b, 0).unwrap();
    assert_eq!(&b, b"guest");
    // Overlaps, with or without a descriptor.
    assert_eq!(call(&mut s, cmd::DMA_MAP, &dma_map(0x17_f000, 0x2000, 0), vec![dup(&mem)]).0, errno::EEXIST);
    assert_eq!(call(&mut s, cmd::DMA_MAP, &dma_map(0xf_f000, 0x2000, 0), vec![]).0, errno::EEXIST);
    // A ROM-like range without a descriptor: recorded, not in the IOMMU.
    assert_eq!(call(&mut s, cmd::DMA_MAP, &dma_map(0xfff0_0000, 0x1000, 0), vec![]).0, 0);
    assert_eq!((s.dma_map_count(), s.device_mut().iommu().window_count()), (2, 1));
    // Descriptors that are refused: unsealed, too short, two of them, not memory at all.
    assert_eq!(call(&mut s, cmd::DMA_MAP, &dma_map(0x20_0000, 0x1000, 0), vec![memfd(4096, false)]).0, errno::EPERM);
    assert_eq!(call(&mut s, cmd::DMA_MAP, &dma_map(0x20_0000, 0x2000, 0), vec![memfd(4096, true)]).0, errno::EINVAL);
    assert_eq!(call(&mut s, cmd::DMA_MAP, &dma_map(0x20_0000, 0x1000, 0), vec![dup(&mem), dup(&mem)]).0, errno::EINVAL);
    assert_eq!(call(&mut s, cmd::DMA_MAP, &dma_map(0x20_0000, 0x1000, 0), vec![eventfd()]).0, errno::EPERM);
    // Unaligned, empty, wrapping.
    assert_eq!(call(&mut s, cmd::DMA_MAP, &dma_map(0x20_0001, 0x1000, 0), vec![]).0, errno::EINVAL);
    assert_eq!(call(&mut s, cmd::DMA_MAP, &dma_map(0x20_0000, 0, 0), vec![]).0, errno::EINVAL);
    assert_eq!(call(&mut s, cmd::DMA_MAP, &dma_map(!0xfff, 0x2000, 0), vec![]).0, errno::EINVAL);
    // Unmaps: nothing there, cutting a map, exact, all.
    assert_eq!(call(&mut s, cmd::DMA_UNMAP, &dma_unmap(0x40_0000, 0x1000, 0), vec![]).0, errno::ENOENT);
    assert_eq!(call(&mut s, cmd::DMA_UNMAP, &dma_unmap(0x10_0000, 0x1000, 0), vec![]).0, errno::EINVAL);
    assert_eq!(call(&mut s, cmd::DMA_UNMAP, &dma_unmap(0x10_0000, 0x1000, 1), vec![]).0, errno::ENOTSUP);
    let (e, p) = call(&mut s, cmd::DMA_UNMAP, &dma_unmap(0x10_0000, 0x8_0000, 0), vec![]);
    assert_eq!((e, p), (0, dma_unmap(0x10_0000, 0x8_0000, 0)), "the request echoed");
    assert_eq!(s.device_mut().iommu().window_count(), 0);
    assert_eq!(call(&mut s, cmd::DMA_UNMAP, &dma_unmap(0, 0, vfio::DMA_UNMAP_FLAG_ALL), vec![]).0, 0);
    assert_eq!(s.dma_map_count(), 0);
    // The DMA the device now tries is blocked and logged by the IOMMU.
    assert!(s.device_mut().iommu().read(0x10_0000, &mut b, 0).is_err());
}

#[test]
fn set_irqs_checks_descriptors_against_count() {
    let mut s = server();
    let msix = vfio::PCI_MSIX_IRQ_INDEX;
    assert_eq!(
        call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(EVENTFD_TRIGGER, msix, 0, 3), vec![eventfd()]).0,
        errno::EINVAL
    );
    assert_eq!(
        call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(EVENTFD_TRIGGER, msix, 4, 2), vec![eventfd(), eventfd()]).0,
        errno::EINVAL
    );
    assert_eq!(
        call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(EVENTFD_TRIGGER, 9, 0, 1), vec![eventfd()]).0,
        errno::EINVAL
    );
    assert_eq!(
        call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(EVENTFD_TRIGGER, msix, u32::MAX, 2), vec![]).0,
        errno::EINVAL
    );
    // A pipe is not an eventfd (signalling it could block the server).
    let mut p = [0i32; 2];
    // SAFETY: pipe fills two new descriptors (checked), which we then own.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    // SAFETY: fresh descriptors, owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    drop(r);
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(EVENTFD_TRIGGER, msix, 0, 1), vec![w]).0, errno::EINVAL);
    // Client-triggered: DATA_NONE|TRIGGER signals; DATA_BOOL picks vectors.
    let fds: Vec<OwnedFd> = (0..5).map(|_| eventfd()).collect();
    let sent = fds.iter().map(dup).collect();
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(EVENTFD_TRIGGER, msix, 0, 5), sent).0, 0);
    let none_trigger = vfio::IRQ_SET_DATA_NONE | vfio::IRQ_SET_ACTION_TRIGGER;
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(none_trigger, msix, 1, 1), vec![]).0, 0);
    let bools =
        Payload(set_irqs(vfio::IRQ_SET_DATA_BOOL | vfio::IRQ_SET_ACTION_TRIGGER, msix, 2, 3)).bytes(&[1, 0, 1]).0;
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &bools, vec![]).0, 0);
    let counts: Vec<u64> = fds.iter().map(drain).collect();
    assert_eq!(counts, vec![0, 1, 1, 0, 1]);
    // Mask/unmask eventfds are not served; disabling the index takes no descriptors.
    let mask_efd = vfio::IRQ_SET_DATA_EVENTFD | vfio::IRQ_SET_ACTION_MASK;
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(mask_efd, msix, 0, 1), vec![eventfd()]).0, errno::ENOTSUP);
    assert_eq!(
        call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(none_trigger, msix, 0, 0), vec![eventfd()]).0,
        errno::EINVAL
    );
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(none_trigger, msix, 0, 0), vec![]).0, 0);
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(none_trigger, msix, 1, 1), vec![]).0, 0);
    assert_eq!(drain(&fds[1]), 0, "disabled: no eventfd left to signal");
}

/// Bring the 82574L model up far enough to raise interrupts: memory decode, bus mastering.
fn enable(s: &mut VfioUserServer<I82574>) {
    assert_eq!(write(s, 7, 4, &[6, 0]), 0);
}

#[test]
fn msix_messages_reach_their_eventfds() {
    let mut s = server();
    enable(&mut s);
    // MSI-X enable in the model's config (QEMU writes config through), then the eventfds.
    let cap = s.caps.msix.unwrap() as u64;
    assert_eq!(write(&mut s, 7, cap + 3, &[0x80]), 0);
    let fds: Vec<OwnedFd> = (0..5).map(|_| eventfd()).collect();
    let sent = fds.iter().map(dup).collect();
    let msix = vfio::PCI_MSIX_IRQ_INDEX;
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(EVENTFD_TRIGGER, msix, 0, 5), sent).0, 0);
    // IVAR: the Other cause to vector 2 (valid); unmask Other and link-status change, raise LSC.
    write32(&mut s, 0, 0xE4, (0x8 | 2) << 16);
    write32(&mut s, 0, 0xD0, 1 << 24 | 1 << 2);
    write32(&mut s, 0, 0xC8, 1 << 2);
    let counts: Vec<u64> = fds.iter().map(drain).collect();
    assert_eq!(counts, vec![0, 0, 1, 0, 0], "the Other vector, and only it");
    // Masked by the client: held, then delivered on unmask.
    let mask = vfio::IRQ_SET_DATA_NONE | vfio::IRQ_SET_ACTION_MASK;
    let unmask = vfio::IRQ_SET_DATA_NONE | vfio::IRQ_SET_ACTION_UNMASK;
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(mask, msix, 2, 1), vec![]).0, 0);
    write32(&mut s, 0, 0xC0, u32::MAX); // ICR: clear, so the next cause is a new edge
    write32(&mut s, 0, 0xC8, 1 << 2);
    assert_eq!(drain(&fds[2]), 0);
    assert_eq!(s.stats.held, 1);
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(unmask, msix, 2, 1), vec![]).0, 0);
    assert_eq!(drain(&fds[2]), 1);
}

#[test]
fn intx_is_level_triggered_and_automasked() {
    let mut s = server();
    enable(&mut s);
    let fd = eventfd();
    let intx = vfio::PCI_INTX_IRQ_INDEX;
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(EVENTFD_TRIGGER, intx, 0, 1), vec![dup(&fd)]).0, 0);
    write32(&mut s, 0, 0xD0, 1 << 2); // IMS: LSC
    write32(&mut s, 0, 0xC8, 1 << 2); // ICS: LSC, the line goes high
    assert_eq!(drain(&fd), 1);
    // Automasked: another access while the line stays high signals nothing.
    let _ = read32(&mut s, 0, 0x08);
    assert_eq!(drain(&fd), 0);
    // Unmask with the line still high: signalled again (and masked again).
    let unmask = vfio::IRQ_SET_DATA_NONE | vfio::IRQ_SET_ACTION_UNMASK;
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(unmask, intx, 0, 1), vec![]).0, 0);
    assert_eq!(drain(&fd), 1);
    // The guest reads ICR (clears it, line low); after unmask nothing more comes.
    let _ = read32(&mut s, 0, 0xC0);
    assert_eq!(call(&mut s, cmd::DEVICE_SET_IRQS, &set_irqs(unmask, intx, 0, 1), vec![]).0, 0);
    assert_eq!(drain(&fd), 0);
}

// ---- through a socket -----------------------------------------------------------------

/// Send `bytes` with `fds` attached (SCM_RIGHTS).
fn send_with_fds(sock: &UnixStream, bytes: &[u8], fds: &[&OwnedFd]) {
    let mut cbuf = [0u64; 16];
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut _, iov_len: bytes.len() };
    // SAFETY: plain C struct, zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !raw.is_empty() {
        // SAFETY: size computation.
        let space = unsafe { libc::CMSG_SPACE((raw.len() * 4) as u32) } as usize;
        assert!(space <= std::mem::size_of_val(&cbuf));
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: the control buffer holds `space` bytes, enough for one header and the
        // descriptors; CMSG_FIRSTHDR points at its start.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN((raw.len() * 4) as u32) as _;
            std::ptr::copy_nonoverlapping(raw.as_ptr(), libc::CMSG_DATA(c).cast::<i32>(), raw.len());
        }
    }
    // SAFETY: `msg` describes live buffers for the duration of the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) };
    assert_eq!(n as usize, bytes.len());
}

fn message(c: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = hdr(c, payload.len()).to_bytes().to_vec();
    m.extend_from_slice(payload);
    m
}

fn recv_reply(sock: &mut UnixStream) -> Vec<u8> {
    use std::io::Read;
    let mut h = [0u8; 16];
    sock.read_exact(&mut h).unwrap();
    let size = Header::parse(&h).size as usize;
    let mut rest = vec![0u8; size - 16];
    sock.read_exact(&mut rest).unwrap();
    [h.to_vec(), rest].concat()
}

/// Run a server on one end of a socket pair in its own thread; returns the client end and
/// the thread (which yields the server's stats and how `serve` ended).
/// What the server thread ends with: its stats, the IOMMU windows left, how `serve` ended.
type Ended = (Stats, usize, Result<(), String>);

fn spawn() -> (UnixStream, std::thread::JoinHandle<Ended>) {
    let (a, b) = UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = VfioUserServer::new(I82574::new(Config::default()), Clock::Manual);
        let r = s.serve(b).map_err(|e| e.to_string());
        let windows = s.device_mut().iommu().window_count();
        (s.stats, windows, r)
    });
    (a, t)
}

#[test]
fn socket_descriptors_and_disconnect_mid_message() {
    let (mut c, t) = spawn();
    send_with_fds(&c, &message(cmd::VERSION, &[0, 0, 0, 0]), &[]);
    assert_eq!(reply_error(&recv_reply(&mut c)), 0);
    let mem = memfd(1 << 16, true);
    send_with_fds(&c, &message(cmd::DMA_MAP, &dma_map(0x1000, 0x1000, 0)), &[&mem]);
    assert_eq!(reply_error(&recv_reply(&mut c)), 0);
    // Nine descriptors: more than max_msg_fds; refused, and the server carries on.
    let many: Vec<OwnedFd> = (0..9).map(|_| eventfd()).collect();
    let refs: Vec<&OwnedFd> = many.iter().collect();
    send_with_fds(&c, &message(cmd::DEVICE_SET_IRQS, &set_irqs(EVENTFD_TRIGGER, 2, 0, 5)), &refs);
    assert_eq!(reply_error(&recv_reply(&mut c)), errno::EINVAL);
    // Half a message, then the client goes away.
    let m = message(cmd::REGION_READ, &Payload::default().u64(0).u32(7).u32(4).0);
    send_with_fds(&c, m.get(..20).unwrap(), &[]);
    drop(c);
    let (stats, windows, r) = t.join().expect("the server thread does not panic");
    assert!(r.is_err(), "a message cut short is an I/O error: {r:?}");
    assert_eq!(windows, 0, "the client's DMA windows go with it");
    assert_eq!((stats.messages, stats.refused), (3, 1));
}

#[test]
fn socket_oversized_header_is_answered_then_closed() {
    let (mut c, t) = spawn();
    let mut h = hdr(cmd::REGION_WRITE, 0);
    h.size = u32::MAX;
    send_with_fds(&c, &h.to_bytes(), &[]);
    assert_eq!(reply_error(&recv_reply(&mut c)), errno::E2BIG);
    let mut rest = Vec::new();
    use std::io::Read;
    assert_eq!(c.read_to_end(&mut rest).unwrap(), 0, "connection closed");
    let (_, _, r) = t.join().unwrap();
    assert!(r.is_ok());
    // A header smaller than itself.
    let (mut c, t) = spawn();
    send_with_fds(&c, &Header { size: 3, ..hdr(cmd::VERSION, 0) }.to_bytes(), &[]);
    assert_eq!(reply_error(&recv_reply(&mut c)), errno::EINVAL);
    drop(c);
    assert!(t.join().unwrap().2.is_ok());
}
