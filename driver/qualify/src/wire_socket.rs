//! The `wire[socket]` qualification check for QEMU: frames through the NIC's real port.
//! The backend owns the other end of QEMU's socket netdev, so the check plays link
//! partner: frames the driver transmits must come out of the socket byte for byte, and
//! frames written into the socket must arrive through the driver's RX ring intact.

use nicqual_backends::qtest::QtestBackend;
use nicqual_nics::i82574::I82574;
use nicqual_nics::i82574::datapath::DatapathConfig;
use nicqual_pci::backend::Backend;
use nicqual_pci::health::{CheckReport, CheckResult};
use std::collections::VecDeque;
use std::time::Duration;

/// Name of the check in reports.
pub const CHECK: &str = "wire[socket]";
/// Frames each way.
pub const FRAMES: usize = 8;

/// A broadcast test frame of `len` bytes (no FCS) numbered `seq`.
fn frame(len: usize, seq: u8) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&[0x02, 0x6E, 0x71, 0x00, 0x00, seq, 0x88, 0xB5]);
    f.extend((0..len.saturating_sub(14)).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seq)));
    f
}

/// Sizes from the minimum to the largest standard frame (no FCS).
fn size(k: usize) -> usize {
    60 + (1514 - 60) * k / (FRAMES - 1)
}

/// Run the check on an attached, brought-up driver. Not applicable without the socket
/// netdev. The datapath is set up for the check and torn down after it.
pub fn wire_check(d: &mut I82574<QtestBackend>) -> CheckReport {
    if !d.backend().has_wire() {
        return CheckReport::new(CHECK, CheckResult::Na, "QEMU was started with another netdev: no wire to watch");
    }
    let t0 = d.backend().now_ns();
    let r = run(d);
    let teardown = d.teardown_datapath();
    let mut rep = match (r, teardown) {
        (Ok(detail), Ok(())) => CheckReport::new(CHECK, CheckResult::Pass, detail),
        (Err(e), _) => CheckReport::new(CHECK, CheckResult::Fail, e),
        (Ok(_), Err(e)) => CheckReport::new(CHECK, CheckResult::Fail, format!("datapath teardown: {e}")),
    };
    rep.duration_ns = d.backend().now_ns().saturating_sub(t0);
    rep
}

fn run(d: &mut I82574<QtestBackend>) -> Result<String, String> {
    let cfg = DatapathConfig { ring_size: 64, pool_entries: 256, ..Default::default() };
    d.setup_datapath(cfg).map_err(|e| format!("datapath setup: {e}"))?;
    // Out: the driver transmits, the link partner (us) receives.
    let out: Vec<Vec<u8>> = (0..FRAMES).map(|k| frame(size(k), k as u8)).collect();
    let mut txq = VecDeque::new();
    for f in &out {
        let dp = d.datapath_mut().ok_or("datapath gone")?;
        let mut p = dp.pool_mut().alloc().ok_or("packet pool empty")?;
        dp.pool().write(&mut p, f).ok_or("frame larger than a buffer")?;
        txq.push_back(p);
    }
    let sent = d.tx_batch(0, &mut txq).map_err(|e| format!("tx_batch: {e}"))?;
    if sent != FRAMES {
        return Err(format!("tx_batch queued {sent} of {FRAMES} frames"));
    }
    for (k, f) in out.iter().enumerate() {
        match d.backend_mut().wire_recv(Duration::from_secs(2)).map_err(|e| e.to_string())? {
            Some(got) if &got == f => {}
            Some(got) => {
                return Err(format!("frame {k} ({} B) left the port as {} different bytes", f.len(), got.len()));
            }
            None => return Err(format!("frame {k} ({} B) never left the port (2 s)", f.len())),
        }
    }
    // In: the link partner sends, the driver receives.
    let inbound: Vec<Vec<u8>> = (0..FRAMES).map(|k| frame(size(FRAMES - 1 - k), 0x80 | k as u8)).collect();
    for f in &inbound {
        d.backend_mut().wire_send(f).map_err(|e| e.to_string())?;
    }
    let mut got = Vec::new();
    // Bounded: 2 s of 1 ms waits at most.
    for _ in 0..2000 {
        d.rx_batch(0, &mut got, 64).map_err(|e| format!("rx_batch: {e}"))?;
        if got.len() >= FRAMES {
            break;
        }
        d.backend_mut().wait(1_000_000);
    }
    let dp = d.datapath_mut().ok_or("datapath gone")?;
    let frames: Vec<Vec<u8>> = got.iter().filter_map(|p| dp.pool().to_vec(p)).collect();
    for p in got {
        dp.pool_mut().free(p);
    }
    if frames.len() != FRAMES {
        return Err(format!("{} of {FRAMES} frames written into the socket arrived", frames.len()));
    }
    if let Some(k) = frames.iter().zip(&inbound).position(|(a, b)| a != b) {
        return Err(format!("received frame {k} differs from what was sent into the socket"));
    }
    let wb = dp.counters.wb_errors();
    if wb != 0 {
        return Err(format!("{wb} RX/TX write-backs refused"));
    }
    Ok(format!(
        "{FRAMES}/{FRAMES} frames ({}-{} B) out through QEMU's socket netdev intact, {FRAMES}/{FRAMES} in; 0 write-backs refused",
        size(0),
        size(FRAMES - 1)
    ))
}
