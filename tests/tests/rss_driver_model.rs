//! RSS arithmetic, the driver's against the model's: each owns its Toeplitz hash and its
//! reading of the redirection table; here the driver programs the key and table into the
//! emulated 82574L, and for seeded flows (IPv4/IPv6, with and without TCP ports) the hash
//! and queue the model would compute from the frame and its registers must equal what the
//! driver predicts.

use nicqual_backends::emulated::EmulatedBackend;
use nicqual_hw::i82574::{self as r, RssType};
use nicqual_model::i82574::rss::{Flow, key_from_regs, reta_queue};
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_nics::i82574::{I82574, Options, rss};

/// SplitMix64: a seeded source of addresses and ports (no dependency for one test).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// An Ethernet frame: an IPv4 or IPv6 header from `src` to `dst`, then a TCP header.
fn frame(v6: bool, src: &[u8], dst: &[u8], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&dport.to_be_bytes());
    tcp.extend_from_slice(&[0; 8]);
    tcp.extend_from_slice(&[0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    if v6 {
        f.extend_from_slice(&0x86DDu16.to_be_bytes());
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        f.extend_from_slice(&[6, 64]);
    } else {
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&(20 + tcp.len() as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1, 0, 0, 64, 6, 0, 0]);
    }
    f.extend_from_slice(src);
    f.extend_from_slice(dst);
    f.extend_from_slice(&tcp);
    f
}

#[test]
fn driver_and_model_agree_on_rss_hash_and_queue_for_seeded_flows() {
    let b = EmulatedBackend::new(Model::new(Config::default()), "model:i82574l");
    let mut d = I82574::attach(b, Options { queue_pairs: 2, ..Options::default() }).unwrap();
    d.bring_up().unwrap();
    let model = d.backend().device();
    let key = key_from_regs((0..r::RSSRK_LEN).map(|i| model.peek(r::RSSRK + 4 * i)));
    assert_eq!(key, rss::KEY, "the key in the device is the driver's");
    let table = d.rss_table();
    let seed = 20;
    let mut rng = Rng(seed);
    let mut per_queue = [0u32; 2];
    for i in 0..400 {
        let v6 = i % 2 == 1;
        let n = if v6 { 16 } else { 4 };
        let src: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        let dst: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        let (sp, dp) = (rng.next() as u16, rng.next() as u16);
        let flow = Flow::parse(&frame(v6, &src, &dst, sp, dp));
        for ports in [None, Some((sp, dp))] {
            let (ty, input) = match (v6, ports) {
                (false, None) => {
                    (RssType::Ipv4, rss::input_v4(src[..].try_into().unwrap(), dst[..].try_into().unwrap(), None))
                }
                (false, p) => {
                    (RssType::Ipv4Tcp, rss::input_v4(src[..].try_into().unwrap(), dst[..].try_into().unwrap(), p))
                }
                (true, None) => {
                    (RssType::Ipv6, rss::input_v6(src[..].try_into().unwrap(), dst[..].try_into().unwrap(), None))
                }
                (true, p) => {
                    (RssType::Ipv6Tcp, rss::input_v6(src[..].try_into().unwrap(), dst[..].try_into().unwrap(), p))
                }
            };
            let want = rss::toeplitz(&rss::KEY, &input);
            let got = flow.rss_hash(ty, &key);
            assert_eq!(got, want, "seed {seed} flow {i} {ty:?}: model {got:#010x}, driver {want:#010x}");
            let q_model = reta_queue(|n| model.peek(r::RETA + 4 * n), got);
            let q_driver = u32::from(rss::queue_of(&table, want));
            assert_eq!(q_model, q_driver, "seed {seed} flow {i} {ty:?} hash {got:#010x}");
            per_queue[q_driver as usize] += 1;
        }
    }
    // The table spreads: both queues get a fair share of 800 hashes.
    assert!(per_queue.iter().all(|&n| n > 300), "{per_queue:?}");
}
