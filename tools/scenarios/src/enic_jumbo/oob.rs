//! The field's crash path, modelled: what the early enic driver built from a receive
//! completion (an skb: `len`, the bytes the device's data reached, the room behind it) and
//! what IPv4 fragmentation's copy loop then read from it when the datagram went on towards a
//! smaller-MTU path (the bridge/VIF to a guest at 1500).
//!
//! Sources read (Linux 2.6.29, the first kernel with enic; the receive rule below is the
//! same in mainline up to the page-fragment rework):
//! * `drivers/net/enic/enic_main.c`: `enic_rq_alloc_buf` posts `len = netdev->mtu + ETH_HLEN`
//!   bytes of an skb from `enic_rq_alloc_skb` (`dev_alloc_skb(len + NET_IP_ALIGN)`, then
//!   `skb_reserve(NET_IP_ALIGN)`); `enic_rq_indicate_buf` frees the skb when `packet_error`
//!   is set, else on `eop && bytes_written > 0` calls `skb_put(skb, bytes_written)` with no
//!   comparison against `buf->len`, else frees it ("Buffer overflow"); probe calls
//!   `enic_change_mtu(netdev, enic->port_mtu)`, so the interface starts at the vNIC's MTU.
//! * `drivers/net/enic/cq_enet_desc.h`: `packet_error` is the completion's truncated bit.
//! * `include/linux/skbuff.h`, `net/core/skbuff.c`: `dev_alloc_skb` adds `NET_SKB_PAD` (16)
//!   of headroom and `__alloc_skb` rounds the data size up with `SKB_DATA_ALIGN`
//!   (`SMP_CACHE_BYTES`, 64 on x86-64), `skb->end = data + size`; `skb_put` moves `tail`
//!   and `len` and calls `skb_over_panic` (printk + `BUG()`) if `tail > end`.
//! * `net/ipv4/ip_output.c` `ip_fragment`: an skb without `frag_list` goes to the slow
//!   path: `left = skb->len - hlen`, fragments of `mtu - hlen` rounded down to 8 except the
//!   last, each filled by `skb_copy_bits(skb, ptr, ..., len)` (and `BUG()` if it fails);
//!   `skb_copy_bits` refuses only `offset > skb->len - len` — it trusts `skb->len`.
//! * `pci_unmap_single(buf->len)` (through the SWIOTLB in a Xen dom0) gives the CPU at most
//!   the posted length of what the device wrote.
//!
//! Nothing here reads a byte past a buffer: the copies are computed and the part past the
//! data is counted as an event.

use nicqual_hw::enic::{self as hw, CqEnetRqDesc, RqCompletion, RqEnetDesc};
use nicqual_model::enic::{CQ_BASE, EnicDevice, RQ_BASE};
use nicqual_model::ring::{DescRing, RingLayout};
use serde::Serialize;

/// `NET_SKB_PAD` (include/linux/skbuff.h, 2.6.29): headroom `dev_alloc_skb` reserves.
pub const NET_SKB_PAD: u32 = 16;
/// `NET_IP_ALIGN` (include/linux/skbuff.h): the driver's extra reserve.
pub const NET_IP_ALIGN: u32 = 2;
/// `SMP_CACHE_BYTES` on x86-64 (`1 << CONFIG_X86_L1_CACHE_SHIFT`, 6 for generic x86-64).
pub const SMP_CACHE_BYTES: u32 = 64;
/// IPv4 header without options: the workload's datagrams (storage traffic; a premise).
pub const IP_HLEN: u32 = 20;
/// MTU of the path the datagrams leave by: the bridge/VIF towards a guest at 1500.
pub const PATH_MTU: u32 = 1500;

/// `SKB_DATA_ALIGN`.
pub const fn skb_data_align(x: u32) -> u32 {
    (x + SMP_CACHE_BYTES - 1) & !(SMP_CACHE_BYTES - 1)
}

/// `skb->end - skb->data` of the skb early enic posts for a `buf_len`-byte buffer:
/// `__alloc_skb(SKB_DATA_ALIGN(buf_len + NET_IP_ALIGN + NET_SKB_PAD))` less both reserves.
pub const fn early_tailroom(buf_len: u32) -> u32 {
    skb_data_align(buf_len + NET_IP_ALIGN + NET_SKB_PAD) - NET_SKB_PAD - NET_IP_ALIGN
}

/// Which receive rule turns a completion into an skb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// 2.6.29 `enic_rq_indicate_buf`: truncated → drop; `eop && bytes_written > 0` →
    /// `skb_put(bytes_written)`.
    Early,
    /// nicqual's driver: a whole frame (sop and eop), not truncated, `0 < bytes_written <=`
    /// the posted length, or dropped.
    Nicqual,
}

/// The linear skb handed up, in bytes from `skb->data` at receive (the Ethernet header).
/// Early enic receives into one linear buffer, so `data_len` (paged bytes) is always 0 and
/// is not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Skb {
    /// `skb->len` after `skb_put`.
    pub len: u32,
    /// How far the frame's data reached: the posted (mapped) length at most.
    pub filled: u32,
    /// `skb->end - skb->data`: what `skb_put` checks `len` against.
    pub tailroom: u32,
}

/// What the receive rule did with one completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rx {
    Dropped(&'static str),
    /// `skb_put` past `skb->end`: `skb_over_panic`, a BUG in the receive path.
    OverPanic {
        put: u32,
        tailroom: u32,
    },
    Up(Skb),
}

/// Apply `rule` to a decoded completion whose buffer was posted with `posted` bytes.
pub fn receive(rule: Rule, c: &RqCompletion, posted: u32) -> Rx {
    let bw = u32::from(c.bytes_written);
    match rule {
        Rule::Early => {
            if c.truncated {
                return Rx::Dropped("packet_error (truncated)");
            }
            if !(c.eop && bw > 0) {
                return Rx::Dropped("no eop or nothing written");
            }
            let tailroom = early_tailroom(posted);
            if bw > tailroom {
                return Rx::OverPanic { put: bw, tailroom };
            }
            Rx::Up(Skb { len: bw, filled: bw.min(posted), tailroom })
        }
        Rule::Nicqual => {
            if c.truncated || !(c.sop && c.eop) || bw == 0 || bw > posted {
                return Rx::Dropped("refused by validation");
            }
            Rx::Up(Skb { len: bw, filled: bw, tailroom: posted })
        }
    }
}

/// One `skb_copy_bits` call of `ip_fragment`'s slow path: `len` bytes at `offset` from the
/// network header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FragCopy {
    pub offset: u32,
    pub len: u32,
}

/// The copies `ip_fragment`'s slow path makes for an IP datagram of `ip_len` bytes (header
/// `hlen`) leaving by a path of `mtu`: none when it fits (no fragmentation). Bounded: each
/// copy but the last takes at least 8 bytes.
pub fn fragment_copies(ip_len: u32, hlen: u32, mtu: u32) -> Vec<FragCopy> {
    let mut out = Vec::new();
    let Some(space) = mtu.checked_sub(hlen) else { return out };
    if ip_len <= mtu || space < 8 || ip_len < hlen {
        return out;
    }
    let (mut left, mut ptr) = (ip_len - hlen, hlen);
    while left > 0 {
        let mut len = left.min(space);
        if len < left {
            len &= !7;
        }
        out.push(FragCopy { offset: ptr, len });
        left -= len;
        ptr += len;
    }
    out
}

/// A copy that went past the frame's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OobEvent {
    /// The RQ entry the completion named.
    pub rq_index: u16,
    /// Bus address of the first byte read past the data (the posted buffer's address, as in
    /// the RQ descriptor, plus the data's length; in a dom0 without an IOMMU, the bounce
    /// slot or the skb).
    pub address: u64,
    /// That byte's offset in the frame.
    pub frame_offset: u32,
    /// Bytes this copy read past the data.
    pub bytes_past: u32,
    /// Which fragment (0-based) the copy filled.
    pub fragment: u32,
    /// `skb->len` and the data behind it.
    pub skb: Skb,
}

/// Per cell: what the rule and the fragmentation path made of the adapter's completions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OobTally {
    /// Receive completions read from the CQ.
    pub completions: u64,
    /// Completions whose CQ or RQ entry could not be read (never in a healthy run).
    pub unreadable: u64,
    pub skbs_up: u64,
    /// skbs whose `len` exceeds the data behind it.
    pub len_past_data: u64,
    /// skbs that `ip_fragment` split for the path MTU.
    pub fragmented: u64,
    /// `skb_copy_bits` calls that read past the data, and the bytes they read there.
    pub oob_copies: u64,
    pub oob_bytes: u64,
    pub first_oob: Option<OobEvent>,
    /// skbs past their data that fit the path whole (no copy: stale bytes forwarded).
    pub stale_unfragmented: u64,
    /// `skb_put` past `skb->end` (the field would have seen `skb_over_panic`).
    pub over_panics: u64,
    pub first_over_panic: Option<(u32, u32)>,
}

impl OobTally {
    /// Account one completion for the buffer at `address`, posted with `posted` bytes.
    pub fn account(&mut self, rule: Rule, c: &RqCompletion, posted: u32, address: u64) {
        self.completions += 1;
        let skb = match receive(rule, c, posted) {
            Rx::Dropped(_) => return,
            Rx::OverPanic { put, tailroom } => {
                self.over_panics += 1;
                self.first_over_panic.get_or_insert((put, tailroom));
                return;
            }
            Rx::Up(s) => s,
        };
        self.skbs_up += 1;
        let past_data = skb.len > skb.filled;
        self.len_past_data += u64::from(past_data);
        // eth_type_trans pulls the Ethernet header; ip_fragment works from the network
        // header with skb->len what is left.
        let copies = fragment_copies(skb.len.saturating_sub(hw::ETH_HLEN), IP_HLEN, PATH_MTU);
        if copies.is_empty() {
            self.stale_unfragmented += u64::from(past_data);
            return;
        }
        self.fragmented += 1;
        for (i, k) in copies.iter().enumerate() {
            let (from, to) = (hw::ETH_HLEN + k.offset, hw::ETH_HLEN + k.offset + k.len);
            if to <= skb.filled {
                continue;
            }
            let start = from.max(skb.filled);
            let bytes_past = to - start;
            self.oob_copies += 1;
            self.oob_bytes += u64::from(bytes_past);
            self.first_oob.get_or_insert(OobEvent {
                rq_index: c.completed_index,
                address: address + u64::from(start),
                frame_offset: start,
                bytes_past,
                fragment: i as u32,
                skb,
            });
        }
    }

    /// What the field would have seen of this cell's events.
    pub fn field_view(&self) -> String {
        let mut parts = Vec::new();
        if let Some(e) = self.first_oob {
            parts.push(format!(
                "{} skb_copy_bits calls read {} bytes past the frame's data (first: fragment {} of RQ entry {}, \
                 {} bytes from bus address {:#x}, frame offset {}; skb len {} over {} bytes of data, {} of room): \
                 inside the skb's own allocation, so no page fault — stale bytes sent on in the fragments",
                self.oob_copies,
                self.oob_bytes,
                e.fragment,
                e.rq_index,
                e.bytes_past,
                e.address,
                e.frame_offset,
                e.skb.len,
                e.skb.filled,
                e.skb.tailroom
            ));
        }
        if let Some((put, room)) = self.first_over_panic {
            parts.push(format!(
                "{} skb_put past skb->end (first: put {put} into {room} bytes of room): skb_over_panic, a BUG in \
                 enic_rq_indicate_buf, not a fault in skb_copy_bits",
                self.over_panics
            ));
        }
        if parts.is_empty() { "no skb longer than its data".into() } else { parts.join("; ") }
    }
}

/// Reads the receive completions the enic model wrote, from DMA memory, before the driver
/// consumes them: CQ 0 from where it last stopped up to the model's CQ tail, and for each
/// the RQ descriptor it names (posted address and length).
#[derive(Debug, Clone)]
pub struct CqSnoop {
    rule: Rule,
    cq: DescRing<CqEnetRqDesc>,
    cq_size: u32,
    rq: DescRing<RqEnetDesc>,
    rq_size: u32,
    next: u32,
    pub tally: OobTally,
}

fn read_u64(dev: &mut EnicDevice, lo: u64) -> u64 {
    u64::from(dev.reg_read32(lo)) | u64::from(dev.reg_read32(lo + 4)) << 32
}

impl CqSnoop {
    /// Attach to a brought-up device (rings configured); `None` if they are not.
    pub fn attach(dev: &mut EnicDevice, rule: Rule) -> Option<CqSnoop> {
        let cq_size = dev.reg_read32(CQ_BASE + hw::CQ_RING_SIZE);
        let rq_size = dev.reg_read32(RQ_BASE + hw::Q_RING_SIZE);
        let cq_base = read_u64(dev, CQ_BASE + hw::CQ_RING_BASE);
        let rq_base = read_u64(dev, RQ_BASE + hw::Q_RING_BASE);
        let cq = DescRing::new("CQ0 (snoop)", RingLayout::Contiguous { base: cq_base }, cq_size).ok()?;
        let rq = DescRing::new("RQ0 (snoop)", RingLayout::Contiguous { base: rq_base }, rq_size).ok()?;
        if cq_size == 0 || rq_size == 0 {
            return None;
        }
        let next = dev.reg_read32(CQ_BASE + hw::CQ_TAIL) % cq_size;
        Some(CqSnoop { rule, cq, cq_size, rq, rq_size, next, tally: OobTally::default() })
    }

    /// Account every completion written since the last call (bounded by the ring size).
    pub fn drain(&mut self, dev: &mut EnicDevice) {
        let tail = dev.reg_read32(CQ_BASE + hw::CQ_TAIL) % self.cq_size;
        let now = dev.now_ns();
        for _ in 0..self.cq_size {
            if self.next == tail {
                break;
            }
            let at = self.next;
            self.next = (self.next + 1) % self.cq_size;
            let Ok(d) = self.cq.fetch(dev.iommu(), at, now) else {
                self.tally.unreadable += 1;
                continue;
            };
            let c = d.decode();
            if c.ty != hw::CQ_DESC_TYPE_RQ_ENET {
                continue;
            }
            let idx = u32::from(c.completed_index);
            if idx >= self.rq_size {
                // An index outside the ring names no posted buffer (the driver counts it).
                self.tally.completions += 1;
                continue;
            }
            let Ok(r) = self.rq.fetch(dev.iommu(), idx, now) else {
                self.tally.unreadable += 1;
                continue;
            };
            self.tally.account(self.rule, &c, u32::from(r.buf_len()), r.address.get());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(bw: u16, truncated: bool, sop: bool, eop: bool) -> RqCompletion {
        RqCompletion {
            completed_index: 7,
            q_number: 0,
            sop,
            eop,
            bytes_written: bw,
            truncated,
            fcs_ok: true,
            ty: hw::CQ_DESC_TYPE_RQ_ENET,
            color: true,
        }
    }

    #[test]
    fn early_skb_room_follows_the_2629_allocation() {
        // MTU 1500: 1514 posted; 1514 + 2 + 16 = 1532 -> 1536; less 18 of reserves.
        assert_eq!(early_tailroom(hw::rx_buf_len_early(1500)), 1518);
        // MTU 9000: 9014 + 18 = 9032 -> 9088; 9070 of room, 56 past the posted buffer.
        assert_eq!(early_tailroom(hw::rx_buf_len_early(9000)), 9070);
    }

    #[test]
    fn slow_path_copies_tile_the_datagram() {
        // 9000-byte datagram to a 1500 path: 1480-byte pieces (a multiple of 8), 6 of them,
        // then the rest.
        let c = fragment_copies(9000, 20, 1500);
        assert_eq!(c.len(), 7);
        assert!(c[..6].iter().all(|k| k.len == 1480));
        assert_eq!(c.last().copied(), Some(FragCopy { offset: 20 + 6 * 1480, len: 9000 - 20 - 6 * 1480 }));
        assert!(fragment_copies(1500, 20, 1500).is_empty(), "fits: not fragmented");
    }

    #[test]
    fn over_length_completion_within_the_room_reads_past_the_data() {
        // MTU 1500, 1514 posted, adapter says 1517 without the truncated bit: skb_put fits
        // (room 1518), len 1517 over 1514 bytes of data, the 1503-byte datagram is split
        // 1480 + 3 and the second copy reads the 3 bytes from frame offset 1514.
        let mut t = OobTally::default();
        t.account(Rule::Early, &comp(1517, false, true, true), 1514, 0x10_0000);
        assert_eq!((t.skbs_up, t.len_past_data, t.fragmented, t.oob_copies, t.oob_bytes), (1, 1, 1, 1, 3));
        let e = t.first_oob.unwrap();
        assert_eq!((e.fragment, e.frame_offset, e.address, e.bytes_past), (1, 1514, 0x10_0000 + 1514, 3));
        assert_eq!(e.skb, Skb { len: 1517, filled: 1514, tailroom: 1518 });
        // The same completion under nicqual's rule is refused.
        let mut n = OobTally::default();
        n.account(Rule::Nicqual, &comp(1517, false, true, true), 1514, 0x10_0000);
        assert_eq!((n.skbs_up, n.oob_copies), (0, 0));
    }

    #[test]
    fn past_the_room_is_skb_over_panic_not_a_copy() {
        let c = comp(1519, false, true, true);
        assert_eq!(receive(Rule::Early, &c, 1514), Rx::OverPanic { put: 1519, tailroom: 1518 });
        let mut t = OobTally::default();
        t.account(Rule::Early, &c, 1514, 0);
        assert_eq!((t.over_panics, t.oob_copies, t.first_over_panic), (1, 0, Some((1519, 1518))));
    }

    #[test]
    fn an_honest_truncation_is_dropped_and_a_fitting_frame_copies_nothing_past() {
        // A 9014-byte frame into a 1514-byte buffer: truncated bit -> packet_error -> freed.
        assert_eq!(receive(Rule::Early, &comp(1514, true, true, true), 1514), Rx::Dropped("packet_error (truncated)"));
        // A full 9014-byte frame in a 9014-byte buffer: 7 copies, all within the data.
        let mut t = OobTally::default();
        t.account(Rule::Early, &comp(9014, false, true, true), 9014, 0);
        assert_eq!((t.fragmented, t.oob_copies, t.len_past_data), (1, 0, 0));
        // No eop: early enic frees the buffer.
        assert_eq!(
            receive(Rule::Early, &comp(700, false, true, false), 1514),
            Rx::Dropped("no eop or nothing written")
        );
    }
}
