//! The socket side: reading one framed message with the file descriptors sent along
//! (`SCM_RIGHTS`), bounded in bytes, descriptors and time; validating the descriptors a
//! client hands over (eventfds, sealed memory); signalling an eventfd.

use super::proto::{HEADER_LEN, Header, MAX_FDS, ProtoError, errno};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A message as read off the socket.
pub struct Incoming {
    pub header: Header,
    pub payload: Vec<u8>,
    pub fds: Vec<OwnedFd>,
    /// More descriptors came than [`MAX_FDS`] (the extra ones were closed), or the kernel
    /// truncated the control data: the message is refused.
    pub fds_overflow: bool,
}

/// What reading a message gave.
pub enum Read {
    Message(Incoming),
    /// The client closed the connection between messages.
    Closed,
    /// The header announces a size the server refuses; the stream cannot be resynchronised,
    /// so the caller answers with this error and closes the connection.
    BadSize(Header, ProtoError),
}

/// `recvmsg` into `buf`, collecting `SCM_RIGHTS` descriptors into `fds` (at most
/// [`MAX_FDS`]; the rest are closed and `overflow` set).
fn recv_some(fd: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>, overflow: &mut bool) -> io::Result<usize> {
    // Room for MAX_FDS descriptors; u64 elements keep the buffer aligned for cmsghdr.
    let mut cbuf = [0u64; 16];
    let cbuf_len = std::mem::size_of_val(&cbuf);
    // SAFETY: CMSG_SPACE only computes a size from its argument.
    let need = unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;
    debug_assert!(need <= cbuf_len);
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is a plain C struct; all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = need.min(cbuf_len) as _;
    let n = loop {
        // SAFETY: `msg` points at `iov` (describing `buf`, valid for writes of its length)
        // and at `cbuf` (valid for `msg_controllen` bytes); all live across the call.
        let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        *overflow = true;
    }
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR/NXTHDR walk its control buffer
    // within `msg_controllen` and return null at its end.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !c.is_null() {
        // SAFETY: `c` is non-null and points at a complete cmsghdr inside `cbuf` (the
        // kernel wrote it and CMSG_FIRSTHDR/NXTHDR checked it fits).
        let (level, ty, len) = unsafe { ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len as usize) };
        if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) is a size computation; CMSG_DATA points inside `c`.
            let (hdr_len, data) = unsafe { (libc::CMSG_LEN(0) as usize, libc::CMSG_DATA(c)) };
            let count = len.saturating_sub(hdr_len) / std::mem::size_of::<RawFd>();
            for i in 0..count {
                // SAFETY: the kernel wrote `count` descriptors after the header, inside the
                // control buffer; the data may be unaligned, hence read_unaligned.
                let raw = unsafe { data.cast::<RawFd>().add(i).read_unaligned() };
                // SAFETY: SCM_RIGHTS installed `raw` in this process for us; nothing else
                // owns it, so taking ownership (and closing it on drop) is sound.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                if fds.len() < MAX_FDS {
                    fds.push(owned);
                } else {
                    *overflow = true;
                }
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
    }
    Ok(n)
}

/// Fill `buf` completely; `Ok(false)` when the peer closed before the first byte.
fn recv_exact(fd: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>, overflow: &mut bool) -> io::Result<bool> {
    let mut at = 0;
    while at < buf.len() {
        let n = recv_some(fd, buf.get_mut(at..).unwrap_or_default(), fds, overflow)?;
        if n == 0 {
            if at == 0 {
                return Ok(false);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("peer closed after {at} of {} bytes", buf.len()),
            ));
        }
        at += n;
    }
    Ok(true)
}

/// Read one message from `sock` (blocking, within the socket's read timeout).
pub fn read_message(sock: &impl AsRawFd) -> io::Result<Read> {
    let fd = sock.as_raw_fd();
    let mut fds = Vec::new();
    let mut overflow = false;
    let mut hb = [0u8; HEADER_LEN];
    if !recv_exact(fd, &mut hb, &mut fds, &mut overflow)? {
        return Ok(Read::Closed);
    }
    let header = Header::parse(&hb);
    let len = match header.payload_len() {
        Ok(l) => l,
        Err(e) => return Ok(Read::BadSize(header, e)),
    };
    let mut payload = vec![0u8; len];
    if len > 0 && !recv_exact(fd, &mut payload, &mut fds, &mut overflow)? {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed after the header"));
    }
    Ok(Read::Message(Incoming { header, payload, fds, fds_overflow: overflow }))
}

/// Wait until `fd` is readable or `timeout_ms` passes; `Ok(true)` when readable (or hung up).
pub fn wait_readable(fd: &impl AsRawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, count 1.
    let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) };
    }
    Ok(n > 0)
}

/// Check that `fd` is an eventfd and make it non-blocking, so signalling it never blocks
/// the server (a pipe or a full socket handed over as an "eventfd" would).
pub fn check_eventfd(fd: &OwnedFd) -> Result<(), ProtoError> {
    let raw = fd.as_raw_fd();
    let link = std::fs::read_link(format!("/proc/self/fd/{raw}"))
        .map_err(|e| ProtoError::new(errno::EBADF, format!("descriptor {raw}: {e}")))?;
    if link.as_os_str() != "anon_inode:[eventfd]" {
        return Err(ProtoError::new(errno::EINVAL, format!("descriptor is {} , not an eventfd", link.display())));
    }
    // SAFETY: fcntl on a descriptor we own; F_GETFL/F_SETFL take and return flags only.
    let fl = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    // SAFETY: as above.
    if fl < 0 || unsafe { libc::fcntl(raw, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
        return Err(ProtoError::new(errno::EBADF, "eventfd: cannot make it non-blocking"));
    }
    Ok(())
}

/// Add 1 to an eventfd's counter. A full counter (EAGAIN) means the interrupt is already
/// pending, which is what a signal asks for; any other failure is reported.
pub fn signal(fd: &OwnedFd) -> io::Result<()> {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live local buffer to a descriptor we own.
    let n = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    if n == 8 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock { Ok(()) } else { Err(e) }
}

/// Seals on a memory descriptor (`F_GET_SEALS`); `None` when it cannot carry seals (not a
/// memfd).
pub fn seals(fd: &OwnedFd) -> Option<i32> {
    // SAFETY: fcntl F_GET_SEALS on a descriptor we own returns flags or -1.
    let s = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    (s >= 0).then_some(s)
}
