//! Fuzz harness: the vfio-user server (`device-model/src/vfio_user/`) fed a byte stream as
//! a client would write it, in front of the 82574L model.
//!
//! The stream is framed exactly as the server frames its socket: a 16-byte header, then the
//! payload its size field announces. A header whose size the server refuses ends the
//! stream (the server answers and closes the connection); so does a message cut short (the
//! client went away mid-message). Each framed message goes through `handle`, the decoder and
//! dispatcher the socket loop uses, with no descriptors (the hostile descriptor cases are
//! unit tests: counts, kinds and seals). The first byte's low bit says whether a valid
//! VERSION comes first, so the fuzzer reaches the commands behind negotiation. Between
//! messages the model's virtual clock moves by the message id's low byte in µs (timers,
//! link-up, throttling fire).
//!
//! Invariants: no panic; every reply is well-formed (its size field is its length, type
//! Reply, the request's id and command echoed); an error reply is the header alone and
//! carries a non-zero errno; a message with No_reply gets no reply and every other one gets
//! one; a REGION_READ reply carries exactly the bytes asked for; nothing allocates past the
//! message cap (the replies are bounded by it).

use crate::{Violation, violation};
use nicqual_model::PciDevice;
use nicqual_model::i82574::{Config, I82574};
use nicqual_model::vfio_user::proto::{HEADER_LEN, Header, cmd, flags};
use nicqual_model::vfio_user::{Clock, MAX_MSG, VfioUserServer};

/// Most messages taken from one input.
const MAX_MESSAGES: usize = 256;

pub fn run(data: &[u8]) -> Result<(), Violation> {
    let Some((&first, mut rest)) = data.split_first() else { return Ok(()) };
    let mut s = VfioUserServer::new(I82574::new(Config::default()), Clock::Manual);
    if first & 1 != 0 {
        let h = Header { id: 0, cmd: cmd::VERSION, size: HEADER_LEN as u32 + 4, flags: 0, error: 0 };
        let r = s.handle(&h, &[0, 0, 0, 0], Vec::new()).ok_or_else(|| violation("VERSION got no reply"))?;
        check(&h, &[0, 0, 0, 0], &r)?;
    }
    for _ in 0..MAX_MESSAGES {
        let Some((hb, tail)) = rest.split_first_chunk::<HEADER_LEN>() else { break };
        let h = Header::parse(hb);
        let Ok(len) = h.payload_len() else { break };
        let Some((payload, tail)) = tail.split_at_checked(len) else { break };
        rest = tail;
        match s.handle(&h, payload, Vec::new()) {
            Some(r) if h.no_reply() => return Err(violation(format!("No_reply message {h:?} got {} bytes", r.len()))),
            Some(r) => check(&h, payload, &r)?,
            None if !h.no_reply() => return Err(violation(format!("message {h:?} got no reply"))),
            None => {}
        }
        s.device_mut().advance(u64::from(h.id & 0xFF) * 1000);
    }
    Ok(())
}

fn check(req: &Header, payload: &[u8], r: &[u8]) -> Result<(), Violation> {
    let hb: &[u8; HEADER_LEN] = r
        .first_chunk::<HEADER_LEN>()
        .ok_or_else(|| violation(format!("reply of {} bytes, shorter than a header", r.len())))?;
    let h = Header::parse(hb);
    if h.size as usize != r.len() || r.len() > MAX_MSG {
        return Err(violation(format!("reply size field {} for {} bytes", h.size, r.len())));
    }
    if h.flags & flags::TYPE_MASK != flags::TYPE_REPLY || h.id != req.id || h.cmd != req.cmd {
        return Err(violation(format!("reply header {h:?} to {req:?}")));
    }
    if h.flags & flags::ERROR != 0 {
        if r.len() != HEADER_LEN || h.error == 0 {
            return Err(violation(format!("error reply {h:?} of {} bytes", r.len())));
        }
        return Ok(());
    }
    if req.cmd == cmd::REGION_READ {
        let count = payload.get(12..16).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
        if count.map(|c| c as usize + 16 + HEADER_LEN) != Some(r.len()) {
            return Err(violation(format!("REGION_READ of {count:?} bytes answered with {} bytes", r.len())));
        }
    }
    Ok(())
}
