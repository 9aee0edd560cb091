//! Fuzz harness: the Xen netback model (`device-model/src/xen/netback.rs`) against a hostile
//! front end.
//!
//! The fuzzer is the guest: it writes anything into the two shared ring pages (producer
//! indices, event indices, requests with any id, grant reference, offset, size, flags),
//! writes grant-table entries of any type and flags naming any of its frames (or garbage
//! frame numbers), gives pages back to Xen, changes the xenstore keys netback connects by,
//! queues packets for the guest, sets the model's response faults and kicks the back end
//! at any virtual time. The host version (copy-only mainline, or flip-capable RHEL 5) is
//! picked by the first byte.
//!
//! Invariants: no panic; a guest page the guest never granted or named (the canary) is
//! never written; netback's guest queue stays within `RX_QUEUE_LIMIT`; after disconnect the
//! ring grants are no longer pinned (mapped == unmapped); the hypervisor's free heap never
//! exceeds what it started with plus what the guest gave back.

use crate::{Violation, violation};
use arbitrary::{Arbitrary, Unstructured};
use nicqual_hw::xen_netif::{DOM0, GrantEntryV1, PAGE_SIZE, RX_SLOT_LEN, TX_SLOT_LEN, gtf, sring, xs};
use nicqual_model::xen::netback::RX_QUEUE_LIMIT;
use nicqual_model::xen::{HostVersion, NetbackStats, ResponseFault, XenHost};
use zerocopy::little_endian::{U16, U32};

const GUEST: u16 = 3;
const PAGES: u32 = 16;
const TX_PFN: u32 = 0;
const RX_PFN: u32 = 1;
const CANARY_PFN: u32 = PAGES - 1;
const TX_GREF: u32 = 8;
const RX_GREF: u32 = 9;
const MAX_OPS: usize = 48;

#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// Raw bytes anywhere in a ring page (header or entries).
    RingWrite {
        rx: bool,
        off: u16,
        bytes: Vec<u8>,
    },
    /// Set the request producer (the common way to make netback read entries).
    ReqProd {
        rx: bool,
        prod: u32,
    },
    /// One request entry, all fields from the fuzzer.
    Request {
        rx: bool,
        slot: u8,
        raw: [u8; 12],
    },
    /// A grant entry: `frame` 0..PAGES-2 names that guest page (its machine frame, or its
    /// pfn for a transfer grant); anything else is a raw frame number.
    Grant {
        gref: u8,
        flags: u16,
        dom: u8,
        frame: u32,
        raw_frame: bool,
    },
    /// Give a page back to Xen (flip front ends do).
    Decrease {
        page: u8,
    },
    /// Change a connect key.
    StoreKey {
        key: u8,
        value: u32,
    },
    Connect,
    Disconnect,
    QueueRx {
        len: u16,
        fill: u8,
    },
    Fault {
        kind: u8,
        arg: u32,
    },
    Kick {
        advance_ns: u32,
    },
    TakeWire,
}

fn canary_bytes() -> Vec<u8> {
    (0..PAGE_SIZE).map(|i| (i as u8) ^ 0xA5).collect()
}

fn write_u32(host: &mut XenHost, pfn: u32, off: usize, v: u32) {
    let _ = host.hv.page_write(GUEST, pfn, off, &v.to_le_bytes());
}

/// Run one input.
pub fn run(data: &[u8]) -> Result<(), Violation> {
    let mut u = Unstructured::new(data);
    let version_pick = u.arbitrary::<u8>().unwrap_or(0);
    let ops: Vec<Op> = crate::decode_ops(&mut u, MAX_OPS);
    run_ops(version_pick, &ops).map(drop)
}

/// Run a decoded op list on a fresh host; returns netback's counters.
pub fn run_ops(version_pick: u8, ops: &[Op]) -> Result<NetbackStats, Violation> {
    let versions = HostVersion::all();
    let version = versions.get(usize::from(version_pick) % versions.len()).cloned().unwrap_or(HostVersion::MAINLINE);
    let mut host = XenHost::new(version, 64, 0x100, GUEST);
    host.boot_guest(PAGES).map_err(|e| violation(format!("boot: {e}")))?;
    let heap0 = host.hv.heap_free();
    let mut given_back = 0u64;
    // Ring pages granted to dom0, front-end keys written, rings initialised (zero).
    let fe = host.netback.frontend_dir();
    for (gref, pfn) in [(TX_GREF, TX_PFN), (RX_GREF, RX_PFN)] {
        let mfn = host.hv.pfn_to_mfn(GUEST, pfn);
        let e = GrantEntryV1 { flags: U16::new(gtf::PERMIT_ACCESS), domid: U16::new(DOM0), frame: U32::new(mfn) };
        host.hv.gnttab_write(GUEST, gref, e).map_err(|e| violation(format!("grant: {e}")))?;
    }
    host.store.write(&format!("{fe}/{}", xs::TX_RING_REF), TX_GREF);
    host.store.write(&format!("{fe}/{}", xs::RX_RING_REF), RX_GREF);
    host.store.write(&format!("{fe}/{}", xs::REQUEST_RX_COPY), 1);
    let canary = canary_bytes();
    host.hv.page_write(GUEST, CANARY_PFN, 0, &canary).map_err(|e| violation(format!("canary: {e}")))?;
    let canary_mfn = host.hv.pfn_to_mfn(GUEST, CANARY_PFN);
    let _ = connect(&mut host);

    for op in ops {
        match op {
            Op::RingWrite { rx, off, bytes } => {
                let pfn = if *rx { RX_PFN } else { TX_PFN };
                let off = usize::from(*off) % PAGE_SIZE;
                let n = bytes.len().min(PAGE_SIZE - off);
                let _ = host.hv.page_write(GUEST, pfn, off, bytes.get(..n).unwrap_or_default());
            }
            Op::ReqProd { rx, prod } => write_u32(&mut host, if *rx { RX_PFN } else { TX_PFN }, sring::REQ_PROD, *prod),
            Op::Request { rx, slot, raw } => {
                let (pfn, len) = if *rx { (RX_PFN, RX_SLOT_LEN) } else { (TX_PFN, TX_SLOT_LEN) };
                let off = sring::ENTRIES + usize::from(*slot) * len;
                if off + len <= PAGE_SIZE {
                    let _ = host.hv.page_write(GUEST, pfn, off, raw.get(..len).unwrap_or_default());
                }
            }
            Op::Grant { gref, flags, dom, frame, raw_frame } => {
                let gref = u32::from(*gref) % 64;
                let flags = *flags;
                let transfer = flags & gtf::TYPE_MASK == gtf::ACCEPT_TRANSFER;
                let page = 2 + frame % (PAGES - 3);
                let mut f = if *raw_frame {
                    *frame
                } else if transfer {
                    page
                } else {
                    host.hv.pfn_to_mfn(GUEST, page)
                };
                // The canary is never named, by pfn or by frame.
                if f == canary_mfn || f == CANARY_PFN {
                    f = f.wrapping_add(1);
                }
                let dom = if dom % 4 == 0 { u16::from(*dom) } else { DOM0 };
                let e = GrantEntryV1 { flags: U16::new(flags), domid: U16::new(dom), frame: U32::new(f) };
                let _ = host.hv.gnttab_write(GUEST, gref, e);
            }
            Op::Decrease { page } => {
                let pfn = 2 + u32::from(*page) % (PAGES - 3);
                if host.hv.decrease_reservation(GUEST, pfn).is_ok() {
                    given_back += 1;
                }
            }
            Op::StoreKey { key, value } => {
                let k = match key % 3 {
                    0 => xs::TX_RING_REF,
                    1 => xs::RX_RING_REF,
                    _ => xs::REQUEST_RX_COPY,
                };
                host.store.write(&format!("{fe}/{k}"), value % 80);
            }
            Op::Connect => {
                let _ = connect(&mut host);
            }
            Op::Disconnect => {
                host.netback.disconnect(&mut host.hv);
                check_unpinned(&host)?;
            }
            Op::QueueRx { len, fill } => {
                host.netback.queue_rx(vec![*fill; usize::from(*len) % 9000]);
            }
            Op::Fault { kind, arg } => {
                let a = *arg;
                let f = match kind % 8 {
                    0 => None,
                    1 => Some(ResponseFault::RxId { id: a as u16 }),
                    2 => Some(ResponseFault::RxStatus { status: a as i16 }),
                    3 => Some(ResponseFault::RxOffset { offset: a as u16 }),
                    4 => Some(ResponseFault::RxDuplicate),
                    5 => Some(ResponseFault::RxRspProdRunaway { extra: a }),
                    6 => Some(ResponseFault::TxId { id: a as u16 }),
                    _ => Some(ResponseFault::TxStatus { status: a as i16 }),
                };
                host.netback.set_fault(f);
            }
            Op::Kick { advance_ns } => {
                host.clock.advance(u64::from(*advance_ns));
                host.kick_backend();
            }
            Op::TakeWire => {
                host.netback.take_wire();
            }
        }
        if host.netback.rx_queued() > RX_QUEUE_LIMIT {
            return Err(violation(format!(
                "netback queues {} packets (limit {RX_QUEUE_LIMIT})",
                host.netback.rx_queued()
            )));
        }
        if host.hv.heap_free() > heap0 + given_back {
            return Err(violation(format!(
                "Xen's heap grew to {} frames from {heap0} with {given_back} pages given back",
                host.hv.heap_free()
            )));
        }
    }
    // The canary page: never granted, never named; nobody may have written it.
    let mut now = vec![0u8; PAGE_SIZE];
    if host.hv.pfn_to_mfn(GUEST, CANARY_PFN) != canary_mfn {
        return Err(violation("the canary page's machine frame changed"));
    }
    host.hv.page_read(GUEST, CANARY_PFN, 0, &mut now).map_err(|e| violation(format!("canary read: {e}")))?;
    if now != canary {
        return Err(violation("netback wrote a guest page that was never granted to it"));
    }
    host.netback.disconnect(&mut host.hv);
    check_unpinned(&host)?;
    Ok(host.netback.stats.clone())
}

fn connect(host: &mut XenHost) -> bool {
    let XenHost { hv, store, netback, .. } = host;
    netback.connect(hv, store).is_ok()
}

fn check_unpinned(host: &XenHost) -> Result<(), Violation> {
    for gref in 0..80 {
        if host.hv.gref_in_use(GUEST, gref) {
            return Err(violation(format!("grant {gref} is still mapped by netback after disconnect")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_guest_sends_and_receives() {
        // Smoke: the fixture itself connects, and a queued packet with no RX request stays queued.
        let ops = [Op::QueueRx { len: 100, fill: 7 }, Op::Kick { advance_ns: 10 }, Op::Disconnect];
        run_ops(0, &ops).unwrap();
    }

    #[test]
    fn the_ops_reach_netbacks_tx_path() {
        // TX request: gref u32, offset u16, flags u16, id u16, size u16.
        let mut raw = [0u8; 12];
        raw[..4].copy_from_slice(&20u32.to_le_bytes());
        raw[10..12].copy_from_slice(&60u16.to_le_bytes());
        let ops = [
            Op::Grant { gref: 20, flags: gtf::PERMIT_ACCESS, dom: 0, frame: 0, raw_frame: false },
            Op::Request { rx: false, slot: 0, raw },
            Op::ReqProd { rx: false, prod: 1 },
            Op::Kick { advance_ns: 1000 },
        ];
        let st = run_ops(0, &ops).unwrap();
        assert_eq!(st.tx_packets, 1, "{st:?}");
    }

    #[test]
    fn seeded_garbage_keeps_the_invariants() {
        use rand::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
        for i in 0..300 {
            let mut buf = vec![0u8; 2048];
            rng.fill_bytes(&mut buf);
            if let Err(v) = run(&buf) {
                panic!("input {i} (seed 2026): {v}");
            }
        }
    }
}
