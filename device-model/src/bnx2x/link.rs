//! The link behind the MAC, when one is configured ([`Bnx2xDevice::set_link`]): a
//! transmitter that drains the TX BD chains at the line rate on the virtual clock, and a link
//! partner that sends IEEE 802.3x PAUSE frames (seeded).
//!
//! Without a link (the default) the device is in MAC loopback (see the module docs of
//! `bnx2x`): nothing here runs, and the only cost is one `Option` test per fetched packet and
//! per clock advance.
//!
//! With a link:
//! * each packet the device fetches from a TX BD chain is queued on the one transmitter in
//!   fetch order; its last bit leaves at `start + wire time`, where `start` is the later of
//!   the fetch time and the end of the previous packet, moved past any PAUSE in force
//!   (802.3x: a pause stops the MAC from *starting* a frame; one already on the wire
//!   finishes);
//! * the TX consumer index in the queue's fast-path status block moves only when the
//!   virtual clock passes that instant (then the status block is written and, with the IGU
//!   enabled, the vector fires) — a completion arrives when the wire would have sent it;
//! * wire time counts, per Ethernet frame, the frame (padded to 60 bytes) plus FCS 4,
//!   preamble and SFD 8, inter-frame gap 12 bytes (IEEE 802.3 clause 4); an LSO packet
//!   (start BD flag `SW_LSO`, MSS and header lengths in the E2 parse BD's `parsing_data`,
//!   Linux `bnx2x_set_pbd_gso_e2` / `bnx2x_set_pbd_csum_e2`) is sent as its segments,
//!   each repeating the headers;
//! * a PAUSE episode from the link partner lasts a whole number of maximal pause times
//!   (`pause_time` 0xFFFF quanta of 512 bit times each, IEEE 802.3 Annex 31B), episodes
//!   arrive as a Poisson process, their length in pause frames is geometric — both from
//!   [`PausePlan`]'s seed. The schedule is generated as time goes, so it does not depend on
//!   what the driver does.
//!
//! Frames sent on the link leave the model (counted in [`LinkStats`]); they are not looped
//! back. In loopback mode an LSO packet comes back as its segments (IPv4 total length, IP
//! id, TCP sequence and flags rewritten per segment; checksums are not modelled).

use super::{Bnx2xDevice, QueueErrorCode, hw};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

/// Bytes every Ethernet frame adds on the wire: FCS 4, preamble + SFD 8, IFG 12.
pub const WIRE_OVERHEAD: u64 = 24;
/// Shortest frame before FCS (padding).
pub const MIN_FRAME: u64 = 60;
/// Largest LSO packet the device accepts (the start BD's and first data BD's 16-bit byte
/// counts; Linux's GSO limit is 64 KiB).
pub const LSO_MAX: usize = 65535;
/// Bit times in one pause quantum (IEEE 802.3 Annex 31B).
pub const QUANTUM_BITS: u64 = 512;
/// Most pause frames one episode chains (bounds an episode; ~3.4 s at 10 Gb/s).
pub const MAX_PAUSE_FRAMES: u32 = 1000;
/// Most PAUSE episodes per second a plan may ask for.
pub const MAX_PAUSES_PER_S: f64 = 10_000.0;
/// Most episodes generated per call: a clock that jumps further ahead skips the rest of
/// the schedule up to the new time (bounded work for any clock step).
const MAX_EPISODES_PER_STEP: u32 = 10_000;
/// Most pauses kept for [`Link::pauses`] (the oldest half is dropped beyond it).
const MAX_KEPT_PAUSES: usize = 100_000;

/// PAUSE frames the link partner sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PausePlan {
    pub seed: u64,
    /// Mean episodes per second (Poisson); 0 = never.
    pub per_s: f64,
    /// Mean maximal pause frames per episode (geometric, at least 1).
    pub mean_frames: f64,
}

impl PausePlan {
    pub const NONE: PausePlan = PausePlan { seed: 0, per_s: 0.0, mean_frames: 1.0 };
}

/// The link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Line rate, bit/s (1..=400 Gb/s).
    pub rate_bps: u64,
    pub pauses: PausePlan,
}

impl LinkConfig {
    /// 10 GbE without pauses.
    pub const TEN_GBE: LinkConfig = LinkConfig { rate_bps: 10_000_000_000, pauses: PausePlan::NONE };
}

/// Why a link configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkError {
    #[error("link rate {0} bit/s outside 1..=400e9")]
    Rate(u64),
    #[error("pause plan: {0} episodes/s outside 0..={MAX_PAUSES_PER_S}")]
    PauseRate(f64),
    #[error("pause plan: mean {0} pause frames per episode outside 1..={MAX_PAUSE_FRAMES}")]
    PauseLength(f64),
}

/// What the link did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkStats {
    /// Packets sent (an LSO packet counts once).
    pub packets: u64,
    /// Ethernet frames on the wire (LSO segments counted).
    pub frames: u64,
    /// Bytes on the wire including padding, FCS, preamble and gap.
    pub wire_bytes: u64,
    pub pause_episodes: u64,
    /// Time the transmitter held a frame back because of a pause, ns.
    pub paused_ns: u64,
}

/// LSO parameters of a fetched packet (from the parse BD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lso {
    /// Start of the TCP header, bytes.
    pub l4: usize,
    /// All headers (L2..L4), bytes.
    pub hdr: usize,
    pub mss: usize,
}

impl Lso {
    /// From the start BD flags and `parsing_data`; `Ok(None)` for a plain packet. A packet
    /// of `len` bytes with LSO must name headers inside it and an MSS in `1..=mtu`.
    pub(super) fn parse(flags: u8, parsing: u32, len: usize, mtu: u32) -> Result<Option<Lso>, QueueErrorCode> {
        if flags & hw::TX_BD_FLAGS_SW_LSO == 0 {
            return Ok(None);
        }
        let l4 = ((parsing >> hw::PARSE_L4_HDR_START_SHIFT) & 0x7FF) as usize * 2;
        let tcp = ((parsing >> hw::PARSE_TCP_HDR_LEN_SHIFT) & 0xF) as usize * 4;
        let mss = ((parsing >> hw::PARSE_LSO_MSS_SHIFT) & hw::PARSE_LSO_MSS_MASK) as usize;
        let hdr = l4 + tcp;
        if l4 < 14 + 20 || tcp < 20 || hdr >= len || mss == 0 || mss > mtu as usize {
            return Err(QueueErrorCode::TxBd);
        }
        Ok(Some(Lso { l4, hdr, mss }))
    }

    /// Segments and wire bytes of a `len`-byte packet.
    pub(super) fn wire(lso: Option<Lso>, len: usize) -> (u64, u64) {
        let frame = |n: usize| (n as u64).max(MIN_FRAME) + WIRE_OVERHEAD;
        let Some(l) = lso else { return (1, frame(len)) };
        let payload = len.saturating_sub(l.hdr);
        let (full, rem) = (payload / l.mss, payload % l.mss);
        let segs = (full + usize::from(rem > 0)).max(1);
        let mut bytes = full as u64 * frame(l.hdr + l.mss);
        if rem > 0 || full == 0 {
            bytes += frame(l.hdr + rem);
        }
        (segs as u64, bytes)
    }
}

/// The transmitter and the link partner's pauses.
#[derive(Debug, Clone)]
pub struct Link {
    cfg: LinkConfig,
    rng: ChaCha8Rng,
    /// Pauses generated so far (start, end), sorted, disjoint (overlaps merged).
    pauses: Vec<(u64, u64)>,
    /// Start of the next episode not generated yet (`u64::MAX`: none).
    next_pause: u64,
    /// When the transmitter is free.
    busy_until: u64,
    /// Packets on the transmitter: (instant their last bit leaves, queue), in that order.
    pending: VecDeque<(u64, u16)>,
    pub stats: LinkStats,
}

impl Link {
    pub fn new(cfg: LinkConfig) -> Result<Link, LinkError> {
        if !(1..=400_000_000_000).contains(&cfg.rate_bps) {
            return Err(LinkError::Rate(cfg.rate_bps));
        }
        let p = cfg.pauses;
        if !(0.0..=MAX_PAUSES_PER_S).contains(&p.per_s) {
            return Err(LinkError::PauseRate(p.per_s));
        }
        if !(1.0..=f64::from(MAX_PAUSE_FRAMES)).contains(&p.mean_frames) {
            return Err(LinkError::PauseLength(p.mean_frames));
        }
        let mut l = Link {
            cfg,
            rng: ChaCha8Rng::seed_from_u64(p.seed ^ 0x5041_5553_4531),
            pauses: Vec::new(),
            next_pause: u64::MAX,
            busy_until: 0,
            pending: VecDeque::new(),
            stats: LinkStats::default(),
        };
        if p.per_s > 0.0 {
            l.next_pause = l.gap();
        }
        Ok(l)
    }

    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    /// Wire time of `bytes` at the line rate, ns (rounded up).
    pub fn wire_ns(&self, bytes: u64) -> u64 {
        (u128::from(bytes) * 8 * 1_000_000_000).div_ceil(u128::from(self.cfg.rate_bps)).min(u128::from(u64::MAX)) as u64
    }

    /// One maximal PAUSE frame's pause, ns.
    pub fn pause_frame_ns(&self) -> u64 {
        (u128::from(0xFFFF * QUANTUM_BITS) * 1_000_000_000)
            .div_ceil(u128::from(self.cfg.rate_bps))
            .min(u128::from(u64::MAX)) as u64
    }

    fn gap(&mut self) -> u64 {
        let u: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
        ((-u.ln() * 1e9 / self.cfg.pauses.per_s) as u64).max(1)
    }

    /// Generate the schedule until every episode starting at or before `t` is known.
    fn extend_to(&mut self, t: u64) {
        let mut budget = MAX_EPISODES_PER_STEP;
        while self.next_pause <= t && self.next_pause != u64::MAX {
            if budget == 0 {
                self.next_pause = t.saturating_add(self.gap());
                break;
            }
            budget -= 1;
            let p = 1.0 / self.cfg.pauses.mean_frames;
            let mut frames = 1u32;
            while frames < MAX_PAUSE_FRAMES && !self.rng.random_bool(p) {
                frames += 1;
            }
            let start = self.next_pause;
            let end = start.saturating_add(u64::from(frames).saturating_mul(self.pause_frame_ns()));
            self.stats.pause_episodes += 1;
            match self.pauses.last_mut() {
                Some(last) if last.1 >= start => last.1 = last.1.max(end),
                _ => self.pauses.push((start, end)),
            }
            if self.pauses.len() > MAX_KEPT_PAUSES {
                self.pauses.drain(..MAX_KEPT_PAUSES / 2);
            }
            self.next_pause = start.saturating_add(self.gap());
        }
    }

    /// The pause in force at `t` (start, end), if any.
    pub fn pause_at(&mut self, t: u64) -> Option<(u64, u64)> {
        self.extend_to(t);
        let i = self.pauses.partition_point(|&(s, _)| s <= t);
        i.checked_sub(1).and_then(|i| self.pauses.get(i)).copied().filter(|&(_, e)| e > t)
    }

    /// Pauses generated so far (those starting up to the latest time asked about).
    pub fn pauses(&self) -> &[(u64, u64)] {
        &self.pauses
    }

    /// Queue a packet of `wire_bytes` (`frames` Ethernet frames) from queue `q` at `now`;
    /// returns the instant its last bit leaves.
    pub fn send(&mut self, now: u64, q: u16, frames: u64, wire_bytes: u64) -> u64 {
        let mut start = now.max(self.busy_until);
        // Merged pauses are disjoint, so one step past the pause in force is enough unless
        // a new episode starts exactly there; each step moves forward.
        while let Some((_, end)) = self.pause_at(start) {
            self.stats.paused_ns = self.stats.paused_ns.saturating_add(end - start);
            start = end;
        }
        let done = start.saturating_add(self.wire_ns(wire_bytes));
        self.busy_until = done;
        self.pending.push_back((done, q));
        self.stats.packets = self.stats.packets.saturating_add(1);
        self.stats.frames = self.stats.frames.saturating_add(frames);
        self.stats.wire_bytes = self.stats.wire_bytes.saturating_add(wire_bytes);
        done
    }

    /// The next packet whose last bit has left by `now`: its queue.
    pub fn pop_done(&mut self, now: u64) -> Option<u16> {
        match self.pending.front() {
            Some(&(t, q)) if t <= now => {
                self.pending.pop_front();
                Some(q)
            }
            _ => None,
        }
    }

    /// Packets on the transmitter, not yet sent.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// A function reset: what was on the transmitter is gone; the partner's schedule stays.
    pub fn reset(&mut self, now: u64) {
        self.pending.clear();
        self.busy_until = now;
    }
}

impl Bnx2xDevice {
    /// Put the MAC on a link (instead of loopback).
    pub fn set_link(&mut self, cfg: LinkConfig) -> Result<(), LinkError> {
        let mut l = Link::new(cfg)?;
        l.busy_until = self.now_ns;
        self.link = Some(Box::new(l));
        Ok(())
    }

    /// The link, if one is configured.
    pub fn link(&self) -> Option<&Link> {
        self.link.as_deref()
    }

    pub fn link_mut(&mut self) -> Option<&mut Link> {
        self.link.as_deref_mut()
    }

    /// The packet just fetched into `self.frame` from queue `q` (its first `frame_len`
    /// bytes): on the link, queue it on the transmitter; in loopback, send it (or its LSO
    /// segments) back to RX queue `q`.
    pub(super) fn tx_fetched(&mut self, q: usize, lso: Option<Lso>) {
        let frame = std::mem::take(&mut self.frame);
        let len = self.frame_len.min(frame.len());
        let (frames, wire) = Lso::wire(lso, len);
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += len as u64;
        let now = self.now_ns;
        if let Some(link) = self.link.as_deref_mut() {
            link.send(now, q as u16, frames, wire);
        } else {
            self.now_ns += super::wire_ns(len);
            if let Some(qu) = self.queues.get_mut(q) {
                qu.tx_done = qu.tx_done.wrapping_add(1);
                qu.dirty = true;
            }
            self.loop_back_segments(q, frame.get(..len).unwrap_or_default(), lso);
        }
        self.frame = frame;
    }

    /// Loopback of an LSO packet: each MSS of payload behind a copy of the headers.
    fn loop_back_segments(&mut self, q: usize, frame: &[u8], lso: Option<Lso>) {
        let Some(l) = lso else {
            self.rx_frame(q, frame);
            return;
        };
        let (Some(head), Some(payload)) = (frame.get(..l.hdr), frame.get(l.hdr..)) else { return };
        let be16 = |b: &[u8], i: usize| b.get(i..i + 2).map_or(0, |x| u16::from_be_bytes([x[0], x[1]]));
        let be32 = |b: &[u8], i: usize| b.get(i..i + 4).map_or(0, |x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]));
        let (id, seq, flags) = (be16(head, 18), be32(head, l.l4 + 4), head.get(l.l4 + 13).copied().unwrap_or(0));
        let n = payload.chunks(l.mss).count();
        let mut seg = Vec::with_capacity(l.hdr + l.mss);
        for (i, chunk) in payload.chunks(l.mss).enumerate() {
            seg.clear();
            seg.extend_from_slice(head);
            seg.extend_from_slice(chunk);
            let put = |s: &mut Vec<u8>, at: usize, b: &[u8]| {
                if let Some(d) = s.get_mut(at..at + b.len()) {
                    d.copy_from_slice(b);
                }
            };
            let ip_len = (l.hdr - 14 + chunk.len()) as u16;
            put(&mut seg, 16, &ip_len.to_be_bytes());
            put(&mut seg, 18, &id.wrapping_add(i as u16).to_be_bytes());
            put(&mut seg, l.l4 + 4, &seq.wrapping_add((i * l.mss) as u32).to_be_bytes());
            // FIN and PSH only on the last segment (what TSO does with them).
            let f = if i + 1 == n { flags } else { flags & !(super::TCP_FIN | super::TCP_PSH) };
            put(&mut seg, l.l4 + 13, &[f]);
            self.rx_frame(q, &seg);
        }
    }

    /// Completions whose time has come: move each queue's TX consumer and report.
    pub(super) fn link_advance(&mut self) {
        let now = self.now_ns;
        let Some(link) = self.link.as_deref_mut() else { return };
        let mut touched = 0u64;
        while let Some(q) = link.pop_done(now) {
            if let Some(qu) = self.queues.get_mut(usize::from(q)) {
                qu.tx_done = qu.tx_done.wrapping_add(1);
                qu.dirty = true;
                touched |= 1 << (q % 64);
            }
        }
        for q in 0..self.queues.len().min(64) {
            if touched & (1 << q) != 0 {
                self.update_sb(q);
            }
        }
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
