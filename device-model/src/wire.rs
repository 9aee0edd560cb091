//! What a transmitted frame meets after it leaves a MAC: a cable to another device, with an
//! optional pcap tap and an optional fault-injecting stretch of wire.
//!
//! Frames on the wire carry their 4-byte Ethernet FCS (CRC-32, appended by the sending MAC
//! when the descriptor asks for it); the receiving MAC checks it, so corruption on the wire
//! is detected the way real hardware detects it — as a CRC error — not by a flag.
//!
//! A [`Cable`] has two directions, each a bounded queue. Each end is a [`WireEnd`] a device
//! model holds: it sends into one direction and receives from the other. Everything is
//! synchronous and deterministic: a device sends inside a register access, and the other
//! device picks the frame up at its next register access or clock step. Wire faults are
//! drawn from a ChaCha8 RNG seeded per direction, so a run replays exactly.
//!
//! The pcap tap records each frame as it was sent (before any wire fault), without the FCS
//! (the usual LINKTYPE_ETHERNET convention), with nanosecond timestamps on the virtual clock.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Length of the Ethernet frame check sequence.
pub const FCS_LEN: usize = 4;
/// Frames queued on one direction before further frames are dropped (counted).
pub const DEFAULT_QUEUE_FRAMES: usize = 4096;

/// The CRC-32 the Ethernet FCS carries, little-endian on the wire.
pub fn fcs(frame: &[u8]) -> [u8; 4] {
    crc32fast::hash(frame).to_le_bytes()
}

/// True when the last four bytes are the FCS of the rest.
pub fn fcs_ok(frame_with_fcs: &[u8]) -> bool {
    match frame_with_fcs.len().checked_sub(FCS_LEN) {
        Some(n) => frame_with_fcs.get(n..).is_some_and(|f| f == fcs(&frame_with_fcs[..n])),
        None => false,
    }
}

/// `frame` followed by its FCS.
pub fn with_fcs(frame: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(frame.len() + FCS_LEN);
    v.extend_from_slice(frame);
    v.extend_from_slice(&fcs(frame));
    v
}

/// Seeded fault probabilities of one direction of a wire (each in 0.0..=1.0, per frame).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireFaults {
    #[serde(default)]
    pub seed: u64,
    /// The frame vanishes.
    #[serde(default)]
    pub drop: f64,
    /// One bit of the frame (FCS included) flips.
    #[serde(default)]
    pub corrupt: f64,
    /// The frame is cut short at a random length.
    #[serde(default)]
    pub truncate: f64,
    /// The frame arrives twice.
    #[serde(default)]
    pub duplicate: f64,
}

impl WireFaults {
    /// Parse `drop=0.01,corrupt=0.01,truncate=0,duplicate=0,seed=7` (any subset).
    pub fn parse(spec: &str) -> Result<WireFaults, String> {
        let mut f = WireFaults::default();
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("wire fault `{part}`: expected key=value"))?;
            let prob = || -> Result<f64, String> {
                let p: f64 = v.trim().parse().map_err(|_| format!("wire fault `{part}`: bad number"))?;
                if (0.0..=1.0).contains(&p) { Ok(p) } else { Err(format!("wire fault `{part}`: not in 0..=1")) }
            };
            match k.trim() {
                "drop" => f.drop = prob()?,
                "corrupt" => f.corrupt = prob()?,
                "truncate" => f.truncate = prob()?,
                "duplicate" => f.duplicate = prob()?,
                "seed" => f.seed = v.trim().parse().map_err(|_| format!("wire fault `{part}`: bad seed"))?,
                other => {
                    return Err(format!("wire fault `{other}`: unknown (drop, corrupt, truncate, duplicate, seed)"));
                }
            }
        }
        Ok(f)
    }
}

/// What one direction of the wire did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct WireStats {
    /// Frames handed to the wire by the sender.
    pub sent: u64,
    /// Frames taken off the wire by the receiver.
    pub delivered: u64,
    pub dropped: u64,
    pub corrupted: u64,
    pub truncated: u64,
    pub duplicated: u64,
    /// Frames lost because the receiver did not pick them up (queue full).
    pub overflow: u64,
}

/// pcap writer on the virtual clock.
pub struct PcapTap {
    w: pcap_file::pcap::PcapWriter<std::io::BufWriter<std::fs::File>>,
    pub frames: u64,
}

impl std::fmt::Debug for PcapTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapTap").field("frames", &self.frames).finish()
    }
}

impl PcapTap {
    /// Create `path` with an Ethernet, nanosecond-resolution pcap header.
    pub fn create(path: &Path) -> std::io::Result<PcapTap> {
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let header = pcap_file::pcap::PcapHeader {
            datalink: pcap_file::DataLink::ETHERNET,
            ts_resolution: pcap_file::TsResolution::NanoSecond,
            snaplen: 65535,
            ..Default::default()
        };
        let w = pcap_file::pcap::PcapWriter::with_header(file, header).map_err(std::io::Error::other)?;
        Ok(PcapTap { w, frames: 0 })
    }

    /// Record one frame (without FCS) at virtual time `now_ns`.
    pub fn record(&mut self, frame: &[u8], now_ns: u64) -> std::io::Result<()> {
        let len = u32::try_from(frame.len()).map_err(std::io::Error::other)?;
        let pkt = pcap_file::pcap::PcapPacket::new(std::time::Duration::from_nanos(now_ns), len, frame);
        self.w.write_packet(&pkt).map_err(std::io::Error::other)?;
        self.frames += 1;
        Ok(())
    }

    /// Flush and close; returns the frames recorded.
    pub fn finish(self) -> std::io::Result<u64> {
        use std::io::Write;
        self.w.into_writer().flush()?;
        Ok(self.frames)
    }
}

#[derive(Debug)]
struct Link {
    queue: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    cap: usize,
    faults: Option<(WireFaults, ChaCha8Rng)>,
    tap: Option<PcapTap>,
    tap_errors: u64,
    stats: WireStats,
}

impl Link {
    fn new() -> Self {
        Link {
            queue: VecDeque::new(),
            spare: Vec::new(),
            cap: DEFAULT_QUEUE_FRAMES,
            faults: None,
            tap: None,
            tap_errors: 0,
            stats: WireStats::default(),
        }
    }

    fn enqueue(&mut self, data: &[u8]) {
        if self.queue.len() >= self.cap {
            self.stats.overflow += 1;
            return;
        }
        let mut v = self.spare.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(data);
        self.queue.push_back(v);
    }

    fn send(&mut self, frame_with_fcs: &[u8], now_ns: u64) {
        self.stats.sent += 1;
        if let Some(tap) = &mut self.tap {
            let n = frame_with_fcs.len().saturating_sub(FCS_LEN);
            if tap.record(frame_with_fcs.get(..n).unwrap_or_default(), now_ns).is_err() {
                self.tap_errors += 1;
            }
        }
        let Some((f, rng)) = &mut self.faults else {
            self.enqueue(frame_with_fcs);
            return;
        };
        let f = *f;
        if rng.random_bool(f.drop) {
            self.stats.dropped += 1;
            return;
        }
        let dup = rng.random_bool(f.duplicate);
        let corrupt = rng.random_bool(f.corrupt) && !frame_with_fcs.is_empty();
        let truncate = rng.random_bool(f.truncate) && frame_with_fcs.len() > 1;
        if !corrupt && !truncate {
            self.enqueue(frame_with_fcs);
        } else {
            let mut v = frame_with_fcs.to_vec();
            if corrupt {
                let i = rng.random_range(0..v.len());
                let bit = rng.random_range(0..8u32);
                if let Some(b) = v.get_mut(i) {
                    *b ^= 1 << bit;
                }
                self.stats.corrupted += 1;
            }
            if truncate {
                let n = rng.random_range(1..v.len());
                v.truncate(n);
                self.stats.truncated += 1;
            }
            self.enqueue(&v);
            if dup {
                self.enqueue(&v);
            }
        }
        if dup {
            self.stats.duplicated += 1;
            if !corrupt && !truncate {
                self.enqueue(frame_with_fcs);
            }
        }
    }
}

fn lock(l: &Arc<Mutex<Link>>) -> MutexGuard<'_, Link> {
    // A poisoned lock only means another holder panicked; the queue itself is still sound.
    l.lock().unwrap_or_else(|e| e.into_inner())
}

/// One end of a cable, held by a device model.
#[derive(Debug, Clone)]
pub struct WireEnd {
    tx: Arc<Mutex<Link>>,
    rx: Arc<Mutex<Link>>,
}

impl WireEnd {
    /// Put a frame (with FCS) on the wire at virtual time `now_ns`.
    pub fn send(&self, frame_with_fcs: &[u8], now_ns: u64) {
        lock(&self.tx).send(frame_with_fcs, now_ns);
    }

    /// Take the next arriving frame into `out` (its old buffer is recycled). False if none.
    pub fn recv_into(&self, out: &mut Vec<u8>) -> bool {
        let mut l = lock(&self.rx);
        match l.queue.pop_front() {
            Some(v) => {
                l.stats.delivered += 1;
                let old = std::mem::replace(out, v);
                if l.spare.len() < 64 {
                    l.spare.push(old);
                }
                true
            }
            None => false,
        }
    }

    /// True when a frame is waiting.
    pub fn has_rx(&self) -> bool {
        !lock(&self.rx).queue.is_empty()
    }
}

/// Which direction of a cable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    AToB,
    BToA,
}

/// A cable between two devices (or a device and a test harness).
#[derive(Debug, Clone)]
pub struct Cable {
    a_to_b: Arc<Mutex<Link>>,
    b_to_a: Arc<Mutex<Link>>,
}

impl Default for Cable {
    fn default() -> Self {
        Self::new()
    }
}

impl Cable {
    pub fn new() -> Cable {
        Cable { a_to_b: Arc::new(Mutex::new(Link::new())), b_to_a: Arc::new(Mutex::new(Link::new())) }
    }

    /// End A (sends A→B) and end B (sends B→A).
    pub fn ends(&self) -> (WireEnd, WireEnd) {
        (
            WireEnd { tx: self.a_to_b.clone(), rx: self.b_to_a.clone() },
            WireEnd { tx: self.b_to_a.clone(), rx: self.a_to_b.clone() },
        )
    }

    fn link(&self, dir: Direction) -> &Arc<Mutex<Link>> {
        match dir {
            Direction::AToB => &self.a_to_b,
            Direction::BToA => &self.b_to_a,
        }
    }

    /// Inject faults into one direction (seeded by `faults.seed`).
    pub fn set_faults(&self, dir: Direction, faults: WireFaults) {
        let rng = ChaCha8Rng::seed_from_u64(faults.seed);
        lock(self.link(dir)).faults = Some((faults, rng));
    }

    /// Record one direction into a pcap file.
    pub fn tap(&self, dir: Direction, path: &Path) -> std::io::Result<()> {
        lock(self.link(dir)).tap = Some(PcapTap::create(path)?);
        Ok(())
    }

    /// Flush and close the tap of `dir`; returns the frames it recorded.
    pub fn close_tap(&self, dir: Direction) -> std::io::Result<u64> {
        let tap = lock(self.link(dir)).tap.take();
        match tap {
            Some(t) => t.finish(),
            None => Ok(0),
        }
    }

    /// Frames the tap of `dir` failed to write.
    pub fn tap_errors(&self, dir: Direction) -> u64 {
        lock(self.link(dir)).tap_errors
    }

    pub fn stats(&self, dir: Direction) -> WireStats {
        lock(self.link(dir)).stats
    }

    /// Frames waiting in `dir`.
    pub fn queued(&self, dir: Direction) -> usize {
        lock(self.link(dir)).queue.len()
    }

    /// Bound the queue of `dir` (frames beyond it are dropped and counted as overflow).
    pub fn set_queue_limit(&self, dir: Direction, frames: usize) {
        lock(self.link(dir)).cap = frames;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: u8) -> Vec<u8> {
        with_fcs(&[i; 60])
    }

    #[test]
    fn clean_cable_delivers_in_order_both_ways() {
        let c = Cable::new();
        let (a, b) = c.ends();
        for i in 0..5 {
            a.send(&frame(i), 0);
        }
        b.send(&frame(9), 0);
        let mut out = Vec::new();
        for i in 0..5 {
            assert!(b.recv_into(&mut out));
            assert_eq!(out, frame(i));
            assert!(fcs_ok(&out));
        }
        assert!(!b.recv_into(&mut out));
        assert!(a.recv_into(&mut out) && out == frame(9));
        assert_eq!(c.stats(Direction::AToB).delivered, 5);
    }

    #[test]
    fn every_corruption_breaks_the_fcs_and_is_counted() {
        let c = Cable::new();
        c.set_faults(Direction::AToB, WireFaults { seed: 3, corrupt: 0.3, ..Default::default() });
        let (a, b) = c.ends();
        for i in 0..1000u32 {
            a.send(&with_fcs(&i.to_le_bytes().repeat(16)), 0);
        }
        let (mut bad, mut good, mut out) = (0u64, 0u64, Vec::new());
        while b.recv_into(&mut out) {
            if fcs_ok(&out) { good += 1 } else { bad += 1 }
        }
        let s = c.stats(Direction::AToB);
        assert!(s.corrupted > 200, "{s:?}");
        assert_eq!(bad, s.corrupted);
        assert_eq!(good + bad, 1000);
    }

    #[test]
    fn drop_truncate_duplicate_are_counted_and_seeded() {
        let run = |seed| {
            let c = Cable::new();
            c.set_faults(Direction::AToB, WireFaults { seed, drop: 0.1, truncate: 0.1, duplicate: 0.1, corrupt: 0.0 });
            let (a, b) = c.ends();
            for i in 0..500u32 {
                a.send(&with_fcs(&i.to_le_bytes().repeat(20)), 0);
            }
            let mut out = Vec::new();
            let mut n = 0u64;
            while b.recv_into(&mut out) {
                n += 1;
            }
            let s = c.stats(Direction::AToB);
            assert_eq!(n, 500 - s.dropped + s.duplicated, "{s:?}");
            s
        };
        let s = run(11);
        assert!(s.dropped > 0 && s.truncated > 0 && s.duplicated > 0);
        assert_eq!(run(11), s, "same seed, same faults");
    }

    #[test]
    fn fault_spec_parses() {
        let f = WireFaults::parse("corrupt=0.01,seed=9").unwrap();
        assert_eq!((f.corrupt, f.seed, f.drop), (0.01, 9, 0.0));
        assert!(WireFaults::parse("corrupt=2").is_err());
        assert!(WireFaults::parse("melt=0.1").is_err());
    }

    #[test]
    fn pcap_tap_writes_a_readable_file() {
        let dir = std::env::temp_dir().join(format!("nicqual-wire-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.pcap");
        let c = Cable::new();
        c.tap(Direction::AToB, &path).unwrap();
        let (a, _b) = c.ends();
        for i in 0..7 {
            a.send(&frame(i), 1000 * i as u64);
        }
        assert_eq!(c.close_tap(Direction::AToB).unwrap(), 7);
        let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let mut n = 0;
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            assert_eq!(p.data.len(), 60, "FCS is not recorded");
            n += 1;
        }
        assert_eq!(n, 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
