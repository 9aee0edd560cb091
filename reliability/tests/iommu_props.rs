//! Property tests of the IOMMU model's window lookup against a reference model: a plain
//! list of (iova, len, perm) intervals over one host block.
//!
//! For any sequence of map/unmap/read/write: map succeeds exactly when the window is
//! non-empty, does not wrap and overlaps no live window; unmap succeeds exactly for a live
//! window start; an access succeeds exactly when every byte lies in some live window that
//! grants the direction (windows may be adjacent, an access may span them); a successful
//! write lands at the host bytes the reference predicts, a blocked one changes nothing and
//! is counted as a fault.

use nicqual_model::{HostRegion, Iommu, Perm};
use proptest::prelude::*;

const HOST: usize = 64 * 1024;
/// Windows live in a small IOVA space so they collide often.
const SPACE: u64 = 16 * 1024;

#[derive(Debug, Clone)]
enum Op {
    Map { iova: u64, len: u64, host_off: usize, perm: u8 },
    Unmap { pick: usize, bogus: u64 },
    Write { iova: u64, len: usize, fill: u8 },
    Read { iova: u64, len: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..SPACE, 0u64..2048, 0..HOST / 2, 0u8..3).prop_map(|(iova, len, host_off, perm)| Op::Map {
            iova,
            len,
            host_off,
            perm
        }),
        (any::<usize>(), 0..SPACE).prop_map(|(pick, bogus)| Op::Unmap { pick, bogus }),
        (0..SPACE + 64, 0usize..600, any::<u8>()).prop_map(|(iova, len, fill)| Op::Write { iova, len, fill }),
        (0..SPACE + 64, 0usize..600).prop_map(|(iova, len)| Op::Read { iova, len }),
        // Extremes: the top of the address space.
        (u64::MAX - 4096..=u64::MAX, 0u64..8192, 0..HOST / 2).prop_map(|(iova, len, host_off)| Op::Map {
            iova,
            len,
            host_off,
            perm: 2
        }),
    ]
}

#[derive(Debug, Clone, Copy)]
struct W {
    iova: u64,
    len: u64,
    host_off: usize,
    perm: Perm,
}

fn perm(p: u8) -> Perm {
    match p {
        0 => Perm::READ,
        1 => Perm::WRITE,
        _ => Perm::READ_WRITE,
    }
}

/// Host offset of every byte of the access, or None if some byte is not allowed.
fn resolve(ws: &[W], iova: u64, len: usize, write: bool) -> Option<Vec<usize>> {
    let mut out = Vec::with_capacity(len);
    for i in 0..len as u64 {
        let a = iova.checked_add(i)?;
        let w = ws.iter().find(|w| a >= w.iova && a - w.iova < w.len)?;
        if (write && !w.perm.write) || (!write && !w.perm.read) {
            return None;
        }
        out.push(w.host_off + (a - w.iova) as usize);
    }
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn window_lookup_matches_reference(ops in proptest::collection::vec(op(), 1..40)) {
        let mem = HostRegion::zeroed(HOST);
        let mut shadow = vec![0u8; HOST];
        let mut io = Iommu::new();
        let mut ws: Vec<W> = Vec::new();
        let mut faults = 0u64;
        for op in ops {
            match op {
                Op::Map { iova, len, host_off, perm: p } => {
                    let len = len.min((HOST - host_off) as u64);
                    let ok_ref = len > 0
                        && iova.checked_add(len).is_some()
                        && !ws.iter().any(|w| iova < w.iova + w.len && w.iova < iova + len);
                    let got = io.map(iova, mem.slice(host_off, len as usize).unwrap(), perm(p));
                    prop_assert_eq!(got.is_ok(), ok_ref, "map {:#x}+{:#x} over {:?}", iova, len, ws);
                    if ok_ref {
                        ws.push(W { iova, len, host_off, perm: perm(p) });
                    }
                }
                Op::Unmap { pick, bogus } => {
                    let target = if ws.is_empty() || pick % 4 == 0 { bogus } else { ws[pick % ws.len()].iova };
                    let live = ws.iter().position(|w| w.iova == target);
                    let got = io.unmap(target);
                    prop_assert_eq!(got.is_ok(), live.is_some());
                    if let Some(i) = live {
                        prop_assert_eq!(got.unwrap(), ws[i].len);
                        ws.remove(i);
                    }
                }
                Op::Write { iova, len, fill } => {
                    let data: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                    let want = resolve(&ws, iova, len, true);
                    let got = io.write(iova, &data, 0);
                    prop_assert_eq!(got.is_ok(), want.is_some(), "write {:#x}+{} over {:?}", iova, len, ws);
                    match want {
                        Some(offs) => {
                            for (o, b) in offs.into_iter().zip(&data) {
                                shadow[o] = *b;
                            }
                        }
                        None => faults += 1,
                    }
                }
                Op::Read { iova, len } => {
                    let want = resolve(&ws, iova, len, false);
                    let mut buf = vec![0u8; len];
                    let got = io.read(iova, &mut buf, 0);
                    prop_assert_eq!(got.is_ok(), want.is_some(), "read {:#x}+{} over {:?}", iova, len, ws);
                    match want {
                        Some(offs) => {
                            let expect: Vec<u8> = offs.into_iter().map(|o| shadow[o]).collect();
                            prop_assert_eq!(buf, expect);
                        }
                        None => faults += 1,
                    }
                }
            }
            prop_assert_eq!(io.window_count(), ws.len());
            prop_assert_eq!(io.faults_total(), faults);
        }
        drop(io);
        let mut host = vec![0u8; HOST];
        mem.read(0, &mut host).unwrap();
        prop_assert_eq!(host, shadow, "host memory differs from the reference");
    }
}
