//! RSS checks of the two-queue-pair group: frames of seeded flows (IPv4/TCP, IPv4, IPv6/TCP,
//! IPv6) go out through MAC loopback and come back on both receive queues.
//!
//! * `rss-spread`: each frame arrives on the queue the driver's RETA names for the driver's
//!   own Toeplitz hash of the frame (bit 7 of entry `hash & 0x7F`); per-queue counts
//!   against the prediction.
//! * `rss-hash`: the hash and RSS type in each write-back equal the driver's computation.
//! * `rss-loopback`: every frame on each queue is byte-for-byte the frame sent.
//!
//! Completions are found by reading both rings (bounded polls), as in the other datapath
//! checks; the messages on the RxQ0 and RxQ1 vectors during the traffic are measured.

use super::datapath::{digest, ensure_loopback, poll_rx, send_frames};
use nicqual_hw::i82574::{self as r, IvarEntry, RssType};
use nicqual_nics::DriverError;
use nicqual_nics::i82574::I82574;
use nicqual_nics::i82574::datapath::RxMeta;
use nicqual_nics::i82574::rss;
use nicqual_pci::{Backend, CheckReport, CheckResult};

/// Flows per kind (IPv4/TCP, IPv4, IPv6/TCP, IPv6).
const FLOWS_PER_KIND: u32 = 16;
/// Seed of the flows' addresses and ports (printed in every result).
pub const SEED: u64 = 0x5EED_0020;
/// Frames queued between receive passes (each ring holds 31 posted buffers).
const CHUNK: usize = 16;

/// One sent frame and what the driver predicts for it.
struct Sent {
    frame: Vec<u8>,
    kind: RssType,
    hash: u32,
    queue: u8,
}

/// One received frame with its write-back metadata.
struct Got {
    frame: Vec<u8>,
    meta: RxMeta,
}

/// The traffic of one RSS check.
struct Traffic {
    sent: Vec<Sent>,
    got: Vec<Got>,
    /// Messages on the RxQ0 and RxQ1 vectors while it ran.
    vector_msgs: [u64; 2],
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// One's-complement sum of `b` (16-bit big-endian words) added to `acc`.
fn csum_add(mut acc: u32, b: &[u8]) -> u32 {
    for w in b.chunks(2) {
        let hi = w.first().copied().unwrap_or(0);
        let lo = w.get(1).copied().unwrap_or(0);
        acc += u32::from(u16::from_be_bytes([hi, lo]));
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc
}

/// A broadcast frame from `src_mac` with IP header `ip_head` (addresses included, checksum
/// field zero for IPv4), its layer-4 protocol `proto` and segment `seg` (TCP checksum filled
/// in over the pseudo-header of `src`/`dst`).
fn build(src_mac: [u8; 6], v6: bool, src: &[u8], dst: &[u8], ports: Option<(u16, u16)>, seq: u32) -> Vec<u8> {
    // Upper layer: a TCP header (SYN, 20 bytes) with ports, or protocol 253 (experiments)
    // / IPv6 "no next header"; then 32 payload bytes naming the frame.
    let mut seg = Vec::new();
    let proto = match ports {
        Some((sp, dp)) => {
            seg.extend_from_slice(&sp.to_be_bytes());
            seg.extend_from_slice(&dp.to_be_bytes());
            seg.extend_from_slice(&seq.to_be_bytes());
            seg.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0xFF, 0xFF, 0, 0, 0, 0]);
            6u8
        }
        None if v6 => 59,
        None => 253,
    };
    seg.extend(seq.to_be_bytes().iter().cycle().take(32).enumerate().map(|(i, b)| b ^ i as u8));
    if proto == 6 {
        let pseudo = csum_add(csum_add(0, src), dst) + 6 + seg.len() as u32;
        let c = !(csum_add(pseudo, &seg) as u16);
        if let Some(f) = seg.get_mut(16..18) {
            f.copy_from_slice(&c.to_be_bytes());
        }
    }
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&src_mac);
    if v6 {
        f.extend_from_slice(&[0x86, 0xDD, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(seg.len() as u16).to_be_bytes());
        f.extend_from_slice(&[proto, 64]);
    } else {
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + seg.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&(seq as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 64, proto, 0, 0]);
        ip.extend_from_slice(src);
        ip.extend_from_slice(dst);
        let c = !(csum_add(0, &ip) as u16);
        if let Some(h) = ip.get_mut(10..12) {
            h.copy_from_slice(&c.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&seg);
        return f;
    }
    f.extend_from_slice(src);
    f.extend_from_slice(dst);
    f.extend_from_slice(&seg);
    f
}

/// The seeded flows, one frame each, with the driver's predicted hash, type and queue.
fn flows(src_mac: [u8; 6], table: &[u8; r::RETA_ENTRIES]) -> Vec<Sent> {
    let mut x = SEED;
    let mut out = Vec::new();
    let kinds = [RssType::Ipv4Tcp, RssType::Ipv4, RssType::Ipv6Tcp, RssType::Ipv6];
    for (k, kind) in kinds.into_iter().enumerate() {
        for i in 0..FLOWS_PER_KIND {
            let seq = k as u32 * FLOWS_PER_KIND + i;
            let (a, b) = (xorshift(&mut x), xorshift(&mut x));
            let ports = matches!(kind, RssType::Ipv4Tcp | RssType::Ipv6Tcp).then(|| (a as u16 | 1024, b as u16 | 1024));
            let (frame, input) = if matches!(kind, RssType::Ipv4Tcp | RssType::Ipv4) {
                // Private source and destination: 10/8 and 192.168/16.
                let src = [10, (a >> 16) as u8, (a >> 24) as u8, (a >> 32) as u8];
                let dst = [192, 168, (b >> 16) as u8, (b >> 24) as u8];
                (build(src_mac, false, &src, &dst, ports, seq), rss::input_v4(src, dst, ports))
            } else {
                // Unique local addresses (fd00::/8).
                let v6 = |hi: u64, lo: u64| {
                    (u128::from(0xfd00_0000_0000_0000 | hi >> 8) << 64 | u128::from(lo)).to_be_bytes()
                };
                let (src, dst) = (v6(a, b), v6(b, a));
                (build(src_mac, true, &src, &dst, ports, seq), rss::input_v6(src, dst, ports))
            };
            let hash = rss::toeplitz(&rss::KEY, &input);
            out.push(Sent { frame, kind, hash, queue: rss::queue_of(table, hash) });
        }
    }
    out
}

/// The check applies: two receive rings posted and MRQC holding the RSS set-up. `Err`
/// carries the reason it does not.
fn applies<B: Backend>(drv: &mut I82574<B>) -> Result<Result<(), String>, DriverError> {
    ensure_loopback(drv, false)?;
    let (queues, on) = drv.datapath().map_or((0, false), |dp| (dp.rx_queues(), dp.rss_enabled()));
    if queues < 2 || !on {
        return Ok(Err(format!("{queues} receive queue(s) posted: RSS needs two queue pairs")));
    }
    let mrqc = drv.read(r::MRQC)?;
    let want = nicqual_nics::i82574::datapath::MRQC_RSS;
    if mrqc & r::MRQC_MRQE_MASK != want & r::MRQC_MRQE_MASK {
        return Ok(Err(format!(
            "MRQC reads {mrqc:#010x} after {want:#010x} was written: the device does not keep RSS enabled (no multiple receive queues)"
        )));
    }
    Ok(Ok(()))
}

/// Receive from both queues until `want` frames arrived in all or the bound passed.
fn collect_both<B: Backend>(drv: &mut I82574<B>, want: usize, out: &mut Vec<Got>) -> Result<(), DriverError> {
    let (mut pkts, mut meta) = (Vec::new(), Vec::new());
    poll_rx(drv, want, out, |drv, out| {
        for q in 0..2 {
            while drv.rx_batch_meta(q, &mut pkts, &mut meta, 32)? > 0 {}
        }
        if let Some(dp) = drv.datapath_mut() {
            for (p, m) in pkts.drain(..).zip(meta.drain(..)) {
                if let Some(frame) = dp.pool().to_vec(&p) {
                    out.push(Got { frame, meta: m });
                }
                dp.pool_mut().free(p);
            }
        }
        Ok(())
    })
}

/// Run the flows through MAC loopback; `None` (with the reason) when RSS does not apply.
fn run_traffic<B: Backend>(drv: &mut I82574<B>) -> Result<Result<Traffic, String>, DriverError> {
    if let Err(why) = applies(drv)? {
        return Ok(Err(why));
    }
    let mut junk = Vec::new();
    collect_both(drv, 0, &mut junk)?;
    drv.drain_notifiers()?;
    let vectors = [IvarEntry::RxQ0, IvarEntry::RxQ1].map(|e| drv.route(e));
    let count = |drv: &I82574<B>| {
        vectors.map(|v| v.and_then(|v| drv.counters.deliveries.get(v as usize).copied()).unwrap_or(0))
    };
    let before = count(drv);
    let src_mac = drv.mac().unwrap_or([0x02, 0, 0, 0, 0, 1]);
    let sent = flows(src_mac, &drv.rss_table());
    let mut got = Vec::new();
    for chunk in sent.chunks(CHUNK) {
        let frames: Vec<Vec<u8>> = chunk.iter().map(|s| s.frame.clone()).collect();
        let queued = send_frames(drv, &frames)?;
        let want = got.len() + queued;
        collect_both(drv, want, &mut got)?;
        drv.drain_notifiers()?;
    }
    // Interrupt moderation (EITR) may hold the last message back: give it the delivery bound.
    let bound = drv.options().irq_bound_ns;
    drv.backend_mut().wait(bound);
    drv.drain_notifiers()?;
    let after = count(drv);
    let vector_msgs = [after[0].saturating_sub(before[0]), after[1].saturating_sub(before[1])];
    Ok(Ok(Traffic { sent, got, vector_msgs }))
}

/// The sent frame `g` is (matched by its bytes).
fn sent_of<'a>(t: &'a Traffic, g: &Got) -> Option<&'a Sent> {
    t.sent.iter().find(|s| s.frame == g.frame)
}

fn seed_note() -> String {
    format!("{} flows ({FLOWS_PER_KIND} each IPv4/TCP, IPv4, IPv6/TCP, IPv6; seed {SEED:#x})", 4 * FLOWS_PER_KIND)
}

fn na(why: String) -> CheckReport {
    CheckReport::new("", CheckResult::Na, format!("not applicable: {why}"))
}

/// `rss-spread`: per-queue arrivals against the driver's RETA prediction.
pub(super) fn check_spread<B: Backend>(drv: &mut I82574<B>) -> Result<CheckReport, DriverError> {
    let t = match run_traffic(drv)? {
        Ok(t) => t,
        Err(why) => return Ok(na(why)),
    };
    let predicted = [0u8, 1].map(|q| t.sent.iter().filter(|s| s.queue == q).count());
    let arrived = [0u16, 1].map(|q| t.got.iter().filter(|g| g.meta.queue == q).count());
    let mut wrong = Vec::new();
    for g in &t.got {
        if let Some(s) = sent_of(&t, g)
            && u16::from(s.queue) != g.meta.queue
        {
            wrong.push(format!(
                "hash {:#010x} (RETA[{}]) -> queue {}, arrived on {}",
                s.hash,
                s.hash & 0x7F,
                s.queue,
                g.meta.queue
            ));
        }
    }
    let counts = format!(
        "queue 0: {} arrived / {} predicted, queue 1: {} / {}; messages on the RxQ0/RxQ1 vectors: {}/{}",
        arrived[0], predicted[0], arrived[1], predicted[1], t.vector_msgs[0], t.vector_msgs[1]
    );
    let (result, detail) = if !wrong.is_empty() {
        (
            CheckResult::Fail,
            format!("{} frame(s) on a queue RETA does not name: {}; {counts}", wrong.len(), wrong.join("; ")),
        )
    } else if t.got.len() != t.sent.len() {
        (CheckResult::Fail, format!("{}/{} frames came back; {counts}", t.got.len(), t.sent.len()))
    } else if predicted.contains(&0) {
        (CheckResult::Fail, format!("the seeded flows do not reach both queues, nothing shown: {counts}"))
    } else {
        (CheckResult::Pass, format!("{}: every frame on the queue RETA[hash & 0x7f] names; {counts}", seed_note()))
    };
    Ok(CheckReport::new("", result, detail)
        .measure("queue0_frames", arrived[0] as f64, "frames")
        .measure("queue1_frames", arrived[1] as f64, "frames")
        .measure("queue0_predicted", predicted[0] as f64, "frames")
        .measure("queue1_predicted", predicted[1] as f64, "frames")
        .measure("misrouted", wrong.len() as f64, "frames")
        .measure("rxq0_vector_messages", t.vector_msgs[0] as f64, "messages")
        .measure("rxq1_vector_messages", t.vector_msgs[1] as f64, "messages"))
}

/// `rss-hash`: hash and type of each write-back against the driver's own Toeplitz.
pub(super) fn check_hash<B: Backend>(drv: &mut I82574<B>) -> Result<CheckReport, DriverError> {
    let t = match run_traffic(drv)? {
        Ok(t) => t,
        Err(why) => return Ok(na(why)),
    };
    let mut bad = Vec::new();
    let mut matched = 0usize;
    for g in &t.got {
        let Some(s) = sent_of(&t, g) else { continue };
        matched += 1;
        if g.meta.hash != s.hash || g.meta.rss_type != s.kind as u8 {
            bad.push(format!(
                "{:?} frame: write-back hash {:#010x} type {}, driver {:#010x} type {}",
                s.kind, g.meta.hash, g.meta.rss_type, s.hash, s.kind as u8
            ));
        }
    }
    let rep = if !bad.is_empty() {
        CheckReport::new(
            "",
            CheckResult::Fail,
            format!("{}/{matched} write-backs differ from the driver's Toeplitz: {}", bad.len(), bad.join("; ")),
        )
    } else if matched != t.sent.len() {
        CheckReport::new(
            "",
            CheckResult::Fail,
            format!("{matched}/{} frames came back intact to compare hashes", t.sent.len()),
        )
    } else {
        CheckReport::new(
            "",
            CheckResult::Pass,
            format!(
                "{}: hash and RSS type of all {matched} write-backs equal the driver's Toeplitz over the same fields (RXCSUM.PCSD)",
                seed_note()
            ),
        )
    };
    Ok(rep.measure("compared", matched as f64, "frames").measure("mismatched", bad.len() as f64, "frames"))
}

/// `rss-loopback`: per queue, every frame byte-for-byte as sent.
pub(super) fn check_loopback<B: Backend>(drv: &mut I82574<B>) -> Result<CheckReport, DriverError> {
    let t = match run_traffic(drv)? {
        Ok(t) => t,
        Err(why) => return Ok(na(why)),
    };
    let mut intact = [0usize; 2];
    let mut bad = Vec::new();
    for g in &t.got {
        match sent_of(&t, g) {
            Some(_) => {
                if let Some(n) = intact.get_mut(g.meta.queue as usize) {
                    *n += 1;
                }
            }
            None => bad.push(format!(
                "queue {}: a {} B frame matching none sent (digest {:#018x})",
                g.meta.queue,
                g.frame.len(),
                digest(&g.frame)
            )),
        }
    }
    let missing = t.sent.iter().filter(|s| !t.got.iter().any(|g| g.frame == s.frame)).count();
    let per_queue = format!("queue 0: {} intact, queue 1: {} intact", intact[0], intact[1]);
    let rep = if !bad.is_empty() || missing > 0 {
        CheckReport::new(
            "",
            CheckResult::Fail,
            format!("{per_queue}; {missing} of {} sent missing; {}", t.sent.len(), bad.join("; ")),
        )
    } else if intact.contains(&0) {
        CheckReport::new("", CheckResult::Fail, format!("{per_queue}: one queue carried nothing, not shown per queue"))
    } else {
        CheckReport::new(
            "",
            CheckResult::Pass,
            format!("{}: {per_queue}, every frame byte-for-byte as sent through MAC loopback", seed_note()),
        )
    };
    Ok(rep
        .measure("queue0_intact", intact[0] as f64, "frames")
        .measure("queue1_intact", intact[1] as f64, "frames")
        .measure("missing", missing as f64, "frames")
        .measure("corrupt", bad.len() as f64, "frames"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nicqual_backends::emulated::EmulatedBackend;
    use nicqual_model::PciDevice;
    use nicqual_model::i82574::{Config, I82574 as Model};
    use nicqual_nics::i82574::Options;

    fn up(queue_pairs: u8) -> I82574<EmulatedBackend<Model>> {
        let b = EmulatedBackend::new(Model::new(Config::default()), "model:i82574l");
        let mut d = I82574::attach(b, Options { queue_pairs, ..Options::default() }).unwrap();
        d.bring_up().unwrap();
        d
    }

    fn measure(r: &CheckReport, name: &str) -> f64 {
        r.measurements.iter().find(|m| m.name == name).map(|m| m.value).unwrap()
    }

    #[test]
    fn healthy_model_passes_with_both_queues_used() {
        let mut d = up(2);
        let s = check_spread(&mut d).unwrap();
        assert_eq!(s.result, CheckResult::Pass, "{}", s.detail);
        let (q0, q1) = (measure(&s, "queue0_frames"), measure(&s, "queue1_frames"));
        assert!(q0 > 0.0 && q1 > 0.0 && q0 + q1 == f64::from(4 * FLOWS_PER_KIND), "{}", s.detail);
        let h = check_hash(&mut d).unwrap();
        assert_eq!((h.result, measure(&h, "mismatched")), (CheckResult::Pass, 0.0), "{}", h.detail);
        let l = check_loopback(&mut d).unwrap();
        assert_eq!(l.result, CheckResult::Pass, "{}", l.detail);
    }

    /// A device hashing with another key than the driver programmed (its RSSRK0 changed
    /// behind the driver's back) fails the hash check for every frame with a hash.
    #[test]
    fn a_device_hashing_with_another_key_fails_the_hash_check() {
        let mut d = up(2);
        let dev = d.backend_mut().device_mut();
        let k0 = dev.bar_read32(0, u64::from(r::RSSRK));
        dev.bar_write32(0, u64::from(r::RSSRK), k0 ^ 0x0100_0000);
        let h = check_hash(&mut d).unwrap();
        assert_eq!(h.result, CheckResult::Fail, "{}", h.detail);
        assert_eq!(measure(&h, "mismatched"), f64::from(4 * FLOWS_PER_KIND), "{}", h.detail);
    }

    #[test]
    fn one_queue_pair_is_not_applicable_with_the_reason() {
        let mut d = up(1);
        for r in [check_spread(&mut d).unwrap(), check_hash(&mut d).unwrap(), check_loopback(&mut d).unwrap()] {
            assert_eq!(r.result, CheckResult::Na, "{}", r.detail);
            assert!(r.detail.contains("RSS needs two queue pairs"), "{}", r.detail);
        }
    }
}
