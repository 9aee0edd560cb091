//! Something for a served NIC's port to reach: a host on the far end of a [`Cable`]
//! (crate::wire) that answers ARP requests for its IPv4 address and ICMP echo requests
//! sent to it — enough for a guest to `ping` through the model. It sends nothing of its
//! own accord and ignores every other frame.
//!
//! Frames from the wire are untrusted: every field is read with a bounds check, the FCS,
//! the IPv4 header checksum and the ICMP checksum are verified, fragments and options
//! other than a plain header are accepted only as the RFCs allow (fragments ignored), and
//! a malformed frame is counted and dropped. Facts: RFC 826 (ARP), RFC 791 (IPv4 header
//! and its checksum), RFC 792 (echo / echo reply: type 8 / 0, identifier, sequence and
//! data returned unchanged), RFC 1071 (the Internet checksum).
//!
//! [`Cable`]: crate::wire::Cable

use crate::PciDevice;
use crate::net;
use crate::wire::{self, WireEnd};

const ETH_HDR: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ARP_LEN: usize = 28;
const IPPROTO_ICMP: u8 = 1;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
/// Smallest Ethernet frame without FCS: shorter replies are padded (a receiver counts a
/// shorter frame as undersize and drops it).
const MIN_FRAME: usize = 60;
/// Frames taken off the wire per [`Responder::poll`].
const POLL_BUDGET: usize = 256;

/// What the responder did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResponderStats {
    pub arp_replies: u64,
    pub echo_replies: u64,
    /// Well-formed frames that were not for it (other addresses, other protocols).
    pub ignored: u64,
    /// Frames with a bad FCS, a bad checksum or a truncated header.
    pub malformed: u64,
}

/// A host at `mac` / `ip` on one end of a cable.
#[derive(Debug)]
pub struct Responder {
    mac: [u8; 6],
    ip: [u8; 4],
    end: WireEnd,
    buf: Vec<u8>,
    pub stats: ResponderStats,
}

/// Why a frame got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoAnswer {
    NotForUs,
    Malformed,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

impl Responder {
    pub fn new(end: WireEnd, mac: [u8; 6], ip: [u8; 4]) -> Responder {
        Responder { mac, ip, end, buf: Vec::new(), stats: ResponderStats::default() }
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn ip(&self) -> [u8; 4] {
        self.ip
    }

    /// Answer the frames waiting on the wire (at most a fixed budget per call); returns
    /// how many replies were sent.
    pub fn poll(&mut self, now_ns: u64) -> usize {
        let mut sent = 0;
        let mut buf = std::mem::take(&mut self.buf);
        for _ in 0..POLL_BUDGET {
            if !self.end.recv_into(&mut buf) {
                break;
            }
            if !wire::fcs_ok(&buf) {
                self.stats.malformed += 1;
                continue;
            }
            let frame = buf.get(..buf.len().saturating_sub(wire::FCS_LEN)).unwrap_or(&[]);
            match self.answer(frame) {
                Ok(mut reply) => {
                    if reply.len() < MIN_FRAME {
                        reply.resize(MIN_FRAME, 0);
                    }
                    self.end.send(&wire::with_fcs(&reply), now_ns);
                    sent += 1;
                }
                Err(NoAnswer::NotForUs) => self.stats.ignored += 1,
                Err(NoAnswer::Malformed) => self.stats.malformed += 1,
            }
        }
        self.buf = buf;
        sent
    }

    /// The reply to one frame (without FCS), if it deserves one.
    fn answer(&mut self, f: &[u8]) -> Result<Vec<u8>, NoAnswer> {
        let dst = f.get(..6).ok_or(NoAnswer::Malformed)?;
        if dst != self.mac && dst != [0xFF; 6] {
            return Err(NoAnswer::NotForUs);
        }
        let src: [u8; 6] = f.get(6..12).and_then(|s| s.try_into().ok()).ok_or(NoAnswer::Malformed)?;
        let payload = f.get(ETH_HDR..).ok_or(NoAnswer::Malformed)?;
        let body = match be16(f, 12).ok_or(NoAnswer::Malformed)? {
            ETHERTYPE_ARP => {
                let r = self.arp(payload)?;
                self.stats.arp_replies += 1;
                r
            }
            ETHERTYPE_IPV4 => {
                let r = self.icmp_echo(payload)?;
                self.stats.echo_replies += 1;
                r
            }
            _ => return Err(NoAnswer::NotForUs),
        };
        let ethertype = be16(f, 12).ok_or(NoAnswer::Malformed)?;
        let mut out = Vec::with_capacity(ETH_HDR + body.len());
        out.extend_from_slice(&src);
        out.extend_from_slice(&self.mac);
        out.extend_from_slice(&ethertype.to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// RFC 826: a request (op 1) for our address gets a reply (op 2) with our hardware
    /// address, sent to the asker.
    fn arp(&self, a: &[u8]) -> Result<Vec<u8>, NoAnswer> {
        let a = a.get(..ARP_LEN).ok_or(NoAnswer::Malformed)?;
        let (htype, ptype, op) = (be16(a, 0), be16(a, 2), be16(a, 6));
        if htype != Some(1) || ptype != Some(ETHERTYPE_IPV4) || a.get(4..6) != Some(&[6, 4]) {
            return Err(NoAnswer::NotForUs);
        }
        if op != Some(1) || a.get(24..28) != Some(&self.ip) {
            return Err(NoAnswer::NotForUs);
        }
        let (sha, spa) = (a.get(8..14).ok_or(NoAnswer::Malformed)?, a.get(14..18).ok_or(NoAnswer::Malformed)?);
        let mut r = Vec::with_capacity(ARP_LEN);
        r.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 2]);
        r.extend_from_slice(&self.mac);
        r.extend_from_slice(&self.ip);
        r.extend_from_slice(sha);
        r.extend_from_slice(spa);
        Ok(r)
    }

    /// RFC 792: an echo request to our address, unfragmented, with valid checksums, gets
    /// an echo reply carrying its identifier, sequence number and data.
    fn icmp_echo(&self, p: &[u8]) -> Result<Vec<u8>, NoAnswer> {
        let ver_ihl = *p.first().ok_or(NoAnswer::Malformed)?;
        let ihl = usize::from(ver_ihl & 0x0F) * 4;
        if ver_ihl >> 4 != 4 || ihl < 20 {
            return Err(NoAnswer::Malformed);
        }
        let total = usize::from(be16(p, 2).ok_or(NoAnswer::Malformed)?);
        let ip = p.get(..total).ok_or(NoAnswer::Malformed)?;
        let hdr = ip.get(..ihl).ok_or(NoAnswer::Malformed)?;
        if net::checksum(hdr) != 0 {
            return Err(NoAnswer::Malformed);
        }
        if hdr.get(16..20) != Some(&self.ip) || hdr.get(9) != Some(&IPPROTO_ICMP) {
            return Err(NoAnswer::NotForUs);
        }
        // More-fragments or a fragment offset: not reassembled here.
        if be16(hdr, 6).ok_or(NoAnswer::Malformed)? & 0x3FFF != 0 {
            return Err(NoAnswer::NotForUs);
        }
        let icmp = ip.get(ihl..).ok_or(NoAnswer::Malformed)?;
        if icmp.len() < 8 || net::checksum(icmp) != 0 {
            return Err(NoAnswer::Malformed);
        }
        if icmp.first() != Some(&ICMP_ECHO_REQUEST) || icmp.get(1) != Some(&0) {
            return Err(NoAnswer::NotForUs);
        }
        let src = hdr.get(12..16).ok_or(NoAnswer::Malformed)?;
        // IPv4 header: no options, our address as source, TTL 64.
        let mut r = Vec::with_capacity(20 + icmp.len());
        r.extend_from_slice(&[0x45, 0]);
        r.extend_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
        r.extend_from_slice(hdr.get(4..6).ok_or(NoAnswer::Malformed)?); // identification
        r.extend_from_slice(&[0, 0, 64, IPPROTO_ICMP, 0, 0]);
        r.extend_from_slice(&self.ip);
        r.extend_from_slice(src);
        let c = net::checksum(&r);
        r[10..12].copy_from_slice(&c.to_be_bytes());
        let start = r.len();
        r.extend_from_slice(icmp);
        r[start] = ICMP_ECHO_REPLY;
        r[start + 2..start + 4].copy_from_slice(&[0, 0]);
        let c = net::checksum(&r[start..]);
        r[start + 2..start + 4].copy_from_slice(&c.to_be_bytes());
        Ok(r)
    }
}

/// A device whose port is cabled to a [`Responder`]: a [`PciDevice`] that behaves exactly
/// as `dev`, and after every access or clock step lets the responder answer what the
/// device sent, then lets the device take the answer off the wire (a zero-length
/// [`PciDevice::advance`], which polls the port). What a vfio-user server serves when the
/// guest must be able to ping something.
pub struct Cabled<D: PciDevice> {
    pub dev: D,
    pub responder: Responder,
}

impl<D: PciDevice> Cabled<D> {
    fn answer(&mut self) {
        if self.responder.poll(self.dev.now_ns()) > 0 {
            self.dev.advance(0);
        }
    }
}

impl<D: PciDevice> PciDevice for Cabled<D> {
    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        self.dev.config_read(offset, size)
    }
    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        self.dev.config_write(offset, size, value)
    }
    fn bar_len(&self, bar: u8) -> Option<u64> {
        self.dev.bar_len(bar)
    }
    fn bar_read32(&mut self, bar: u8, offset: u64) -> u32 {
        self.dev.bar_read32(bar, offset)
    }
    fn bar_write32(&mut self, bar: u8, offset: u64, value: u32) {
        self.dev.bar_write32(bar, offset, value);
        self.answer();
    }
    fn advance(&mut self, ns: u64) {
        self.dev.advance(ns);
        self.answer();
    }
    fn now_ns(&self) -> u64 {
        self.dev.now_ns()
    }
    fn next_deadline_ns(&self) -> Option<u64> {
        self.dev.next_deadline_ns()
    }
    fn function_reset(&mut self) {
        self.dev.function_reset()
    }
    fn take_interrupts(&mut self) -> Vec<crate::MsiMessage> {
        self.dev.take_interrupts()
    }
    fn iommu(&mut self) -> &mut crate::Iommu {
        self.dev.iommu()
    }
    fn dma_faults_total(&self) -> u64 {
        self.dev.dma_faults_total()
    }
    fn touch_log(&self) -> Option<&crate::touch::TouchLog> {
        self.dev.touch_log()
    }
    fn intx_level(&self) -> bool {
        self.dev.intx_level()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Cable;

    const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const GUEST_IP: [u8; 4] = [10, 0, 2, 15];
    const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const HOST_IP: [u8; 4] = [10, 0, 2, 2];

    fn arp_request(target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xFF; 6];
        f.extend_from_slice(&GUEST_MAC);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&GUEST_MAC);
        f.extend_from_slice(&GUEST_IP);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f
    }

    fn echo_request(seq: u16, data: &[u8]) -> Vec<u8> {
        let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34];
        icmp.extend_from_slice(&seq.to_be_bytes());
        icmp.extend_from_slice(data);
        let c = net::checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0xAB, 0xCD, 0x40, 0, 64, 1, 0, 0]);
        ip.extend_from_slice(&GUEST_IP);
        ip.extend_from_slice(&HOST_IP);
        let c = net::checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut f = HOST_MAC.to_vec();
        f.extend_from_slice(&GUEST_MAC);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&icmp);
        f
    }

    fn exchange(frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, ResponderStats) {
        let (guest, host) = Cable::new().ends();
        let mut resp = Responder::new(host, HOST_MAC, HOST_IP);
        for f in frames {
            guest.send(&wire::with_fcs(f), 0);
        }
        resp.poll(0);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while guest.recv_into(&mut buf) {
            assert!(wire::fcs_ok(&buf));
            out.push(buf[..buf.len() - wire::FCS_LEN].to_vec());
        }
        (out, resp.stats.clone())
    }

    #[test]
    fn answers_arp_for_its_address_only() {
        let (out, st) = exchange(&[arp_request(HOST_IP), arp_request([10, 0, 2, 3])]);
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!(r.len(), MIN_FRAME, "padded to the minimum frame");
        assert_eq!(&r[..6], &GUEST_MAC);
        assert_eq!(&r[12..14], &[0x08, 0x06]);
        assert_eq!(&r[20..22], &[0, 2], "reply");
        assert_eq!(&r[22..28], &HOST_MAC);
        assert_eq!(&r[28..32], &HOST_IP);
        assert_eq!(&r[32..38], &GUEST_MAC);
        assert_eq!(&r[38..42], &GUEST_IP);
        assert_eq!((st.arp_replies, st.ignored), (1, 1));
    }

    #[test]
    fn echoes_pings_with_valid_checksums_and_the_same_data() {
        let data: Vec<u8> = (0..56u8).collect();
        let (out, st) = exchange(&[echo_request(7, &data)]);
        assert_eq!(st.echo_replies, 1);
        let r = &out[0];
        let ip = &r[ETH_HDR..];
        assert_eq!(net::checksum(&ip[..20]), 0, "IP header checksum");
        assert_eq!(&ip[12..16], &HOST_IP);
        assert_eq!(&ip[16..20], &GUEST_IP);
        let icmp = &ip[20..];
        assert_eq!(net::checksum(icmp), 0, "ICMP checksum");
        assert_eq!(icmp[0], ICMP_ECHO_REPLY);
        assert_eq!(&icmp[4..8], &[0x12, 0x34, 0, 7], "identifier and sequence");
        assert_eq!(&icmp[8..], &data[..]);
    }

    #[test]
    fn malformed_and_foreign_frames_get_no_answer() {
        let mut bad_sum = echo_request(1, b"x");
        let n = bad_sum.len();
        bad_sum[n - 1] ^= 0xFF;
        let mut truncated = echo_request(2, b"abcdef");
        truncated.truncate(ETH_HDR + 10);
        let mut other_host = echo_request(3, b"y");
        other_host[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 9]);
        let mut fragment = echo_request(4, b"z");
        fragment[ETH_HDR + 6] = 0x20; // more fragments
        let (out, st) = exchange(&[bad_sum, truncated, other_host, fragment, vec![0xFF; 3], Vec::new()]);
        assert!(out.is_empty());
        assert_eq!(st.echo_replies + st.arp_replies, 0);
        assert_eq!(st.malformed + st.ignored, 6, "{st:?}");
    }

    /// A device that transmits an ARP request on any BAR write and keeps what its port
    /// receives when its clock steps: enough to see the wrapper's order of events.
    struct Talker {
        end: crate::wire::WireEnd,
        got: Vec<Vec<u8>>,
        iommu: crate::Iommu,
    }

    impl PciDevice for Talker {
        fn config_read(&mut self, _: u16, _: u8) -> u32 {
            0
        }
        fn config_write(&mut self, _: u16, _: u8, _: u32) {}
        fn bar_len(&self, _: u8) -> Option<u64> {
            None
        }
        fn bar_read32(&mut self, _: u8, _: u64) -> u32 {
            0
        }
        fn bar_write32(&mut self, _: u8, _: u64, _: u32) {
            self.end.send(&wire::with_fcs(&arp_request(HOST_IP)), 0);
        }
        fn advance(&mut self, _: u64) {
            let mut b = Vec::new();
            while self.end.recv_into(&mut b) {
                self.got.push(b.clone());
            }
        }
        fn now_ns(&self) -> u64 {
            0
        }
        fn function_reset(&mut self) {}
        fn take_interrupts(&mut self) -> Vec<crate::MsiMessage> {
            Vec::new()
        }
        fn iommu(&mut self) -> &mut crate::Iommu {
            &mut self.iommu
        }
        fn dma_faults_total(&self) -> u64 {
            0
        }
    }

    #[test]
    fn a_cabled_device_gets_the_answer_within_the_access_that_sent_the_request() {
        let (dev_end, host_end) = Cable::new().ends();
        let dev = Talker { end: dev_end, got: Vec::new(), iommu: crate::Iommu::new() };
        let mut c = Cabled { dev, responder: Responder::new(host_end, HOST_MAC, HOST_IP) };
        c.bar_write32(0, 0, 1);
        assert_eq!(c.dev.got.len(), 1, "the reply was taken off the wire by the device");
        assert!(wire::fcs_ok(&c.dev.got[0]));
        assert_eq!(&c.dev.got[0][20..22], &[0, 2], "an ARP reply");
        assert_eq!(c.responder.stats.arp_replies, 1);
        assert!(c.touch_log().is_none(), "the wrapper passes the device's (absent) log through");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Deterministic pseudo-random frames (seed printed on failure by the assert text).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let (guest, host) = Cable::new().ends();
        let mut resp = Responder::new(host, HOST_MAC, HOST_IP);
        for i in 0..2000 {
            let mut f = echo_request(i as u16, b"seed");
            let len = f.len();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % len;
                f[at] = (x >> 32) as u8;
            }
            f.truncate(((x >> 40) as usize) % (len + 1));
            guest.send(&wire::with_fcs(&f), 0);
            resp.poll(0);
        }
        let st = &resp.stats;
        assert_eq!(
            st.arp_replies + st.echo_replies + st.ignored + st.malformed,
            2000,
            "seed 0x9E3779B97F4A7C15: {st:?}"
        );
    }
}
