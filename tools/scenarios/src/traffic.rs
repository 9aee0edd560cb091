//! Seeded test packets that carry their own integrity check.
//!
//! Layout: `seq u32 | flow u8 | len u16 | payload | fnv1a32(all before)`, little-endian.
//! A packet whose check fails, or whose length disagrees, was corrupted on the way.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const HEADER: usize = 7;
const TRAILER: usize = 4;
/// Smallest packet the generator makes (an Ethernet minimum frame without FCS).
pub const MIN_LEN: usize = 60;

fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// A deterministic packet source.
pub struct Gen {
    rng: ChaCha8Rng,
    next_seq: u32,
    flow: u8,
}

impl Gen {
    /// Packets of flow `flow` from `seed` (different flows from one seed differ).
    pub fn new(seed: u64, flow: u8) -> Gen {
        Gen { rng: ChaCha8Rng::seed_from_u64(seed ^ (u64::from(flow) << 56)), next_seq: 0, flow }
    }

    /// A packet of `len` bytes (at least [`MIN_LEN`]).
    pub fn packet(&mut self, len: usize) -> Vec<u8> {
        let len = len.max(MIN_LEN);
        let mut p = Vec::with_capacity(len);
        p.extend_from_slice(&self.next_seq.to_le_bytes());
        p.push(self.flow);
        p.extend_from_slice(&(len.min(usize::from(u16::MAX)) as u16).to_le_bytes());
        while p.len() < len - TRAILER {
            p.push(self.rng.random());
        }
        let sum = fnv1a(&p);
        p.extend_from_slice(&sum.to_le_bytes());
        self.next_seq += 1;
        p
    }

    /// A packet with a length drawn uniformly from `lo..=hi`.
    pub fn packet_in(&mut self, lo: usize, hi: usize) -> Vec<u8> {
        let len = self.rng.random_range(lo.max(MIN_LEN)..=hi.max(lo.max(MIN_LEN)));
        self.packet(len)
    }

    /// Packets made so far.
    pub fn made(&self) -> u32 {
        self.next_seq
    }
}

/// A packet's sequence number if its length field and check agree with its contents.
pub fn verify(p: &[u8]) -> Option<u32> {
    if p.len() < HEADER + TRAILER {
        return None;
    }
    let len = u16::from_le_bytes([p[5], p[6]]) as usize;
    if len != p.len() {
        return None;
    }
    let (body, sum) = p.split_at(p.len() - TRAILER);
    (fnv1a(body) == u32::from_le_bytes(sum.try_into().ok()?)).then(|| u32::from_le_bytes([p[0], p[1], p[2], p[3]]))
}

/// Tally of what arrived against what was sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub sent: u64,
    pub delivered: u64,
    pub corrupted: u64,
    pub duplicated: u64,
    pub lost: u64,
}

/// Compare packets received (any order) against sequence numbers `first..first+count`.
pub fn tally(received: &[Vec<u8>], first: u32, count: u32) -> Tally {
    let mut seen = vec![false; count as usize];
    let mut t = Tally { sent: u64::from(count), ..Tally::default() };
    for p in received {
        match verify(p) {
            Some(s) if s >= first && s - first < count => {
                let i = (s - first) as usize;
                if seen[i] {
                    t.duplicated += 1;
                } else {
                    seen[i] = true;
                    t.delivered += 1;
                }
            }
            Some(_) => {}
            None => t.corrupted += 1,
        }
    }
    t.lost = t.sent - t.delivered;
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_verify_and_corruption_is_caught() {
        let mut g = Gen::new(3, 1);
        let p = g.packet_in(60, 1514);
        assert_eq!(verify(&p), Some(0));
        let mut bad = p.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        assert_eq!(verify(&bad), None);
        assert_eq!(verify(&p[..p.len() - 1]), None);
        let q = g.packet(100);
        let t = tally(&[q.clone(), q, bad], 0, 3);
        assert_eq!((t.delivered, t.duplicated, t.corrupted, t.lost), (1, 1, 1, 2));
    }

    #[test]
    fn same_seed_same_packets() {
        let a: Vec<_> = (0..5).map(|_| Gen::new(9, 2).packet_in(60, 9000)).collect();
        let mut g = Gen::new(9, 2);
        assert_eq!(a[0], g.packet_in(60, 9000));
        assert_ne!(Gen::new(9, 2).packet_in(60, 9000), Gen::new(10, 2).packet_in(60, 9000));
    }
}
