//! Your first frame with nicqual: bring up an Intel 82574L, send one Ethernet frame through
//! MAC loopback and check that it comes back byte for byte.
//!
//! The driver code is one generic function, [`first_frame`], that works on ANY
//! [`Backend`]: the in-process device model, QEMU's e1000e over qtest, or real hardware
//! through VFIO. Copy it as the starting point of your own driver or tool; only `main`
//! knows which device it talks to.
//!
//! ```text
//! cargo run --release -p nicqual-nics --example first_frame -- model:i82574l
//! cargo run --release -p nicqual-nics --example first_frame -- qemu:e1000e
//! ```
//!
//! Exits 0 only when the frame came back identical; any failure is printed and exits 1.

use nicqual_backends::emulated::EmulatedBackend;
use nicqual_backends::qtest::{QemuConfig, QtestBackend, Target};
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_nics::i82574::datapath::DatapathConfig;
use nicqual_nics::i82574::{I82574, Options};
use nicqual_pci::Backend;
use std::collections::VecDeque;
use std::process::ExitCode;

/// How long to wait for the frame to come back, on the backend's clock.
const RX_TIMEOUT_NS: u64 = 1_000_000_000;
/// Poll interval while waiting.
const RX_POLL_NS: u64 = 1_000_000;

/// The frame: broadcast destination (accepted without programming any address filter),
/// our own MAC as source, the IEEE local-experimental EtherType 0x88B5, then a payload.
fn build_frame(src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xB5]);
    f.extend_from_slice(b"hello from nicqual's first_frame example");
    // Pad to the 60-byte Ethernet minimum ourselves (the MAC appends the 4-byte FCS and
    // strips it again on receive), with a pattern so any corruption shows.
    let mut i = 0u8;
    while f.len() < 128 {
        f.push(i);
        i = i.wrapping_add(37);
    }
    f
}

/// Bring the 82574L up on `backend`, send one frame through MAC loopback, receive it and
/// compare. Generic over the backend: this is all a driver author needs to copy.
fn first_frame<B: Backend>(backend: B) -> Result<(), String> {
    let info = backend.info();
    let clock = if info.virtual_time { "virtual" } else { "wall-clock" };
    println!("device {} ({:?} backend, {clock} time)", info.name, info.kind);

    // 1. Probe: vendor/device ID check, memory decode and bus mastering on.
    let mut nic = I82574::attach(backend, Options::default()).map_err(|e| format!("attach: {e}"))?;
    let id = nic.identity();
    println!("attached: PCI {:04x}:{:04x} revision {}", id.vendor, id.device, id.revision);

    // 2. Bring up as Linux e1000e does: reset, MAC address from the EEPROM, MSI-X, link.
    nic.bring_up().map_err(|e| format!("bring-up: {e}"))?;
    let mac = nic.mac().ok_or("bring-up read no MAC address")?;
    let m = mac.map(|b| format!("{b:02x}")).join(":");
    println!("up: MAC {m}, link up");

    // 3. Rings and a packet pool in one DMA region, the receiver in MAC loopback
    //    (RCTL.LBM): what the transmitter sends comes straight back to the receiver.
    let cfg = DatapathConfig { ring_size: 64, pool_entries: 128, loopback: true, ..DatapathConfig::default() };
    nic.setup_datapath(cfg).map_err(|e| format!("datapath setup: {e}"))?;
    println!("datapath: 64-descriptor RX and TX rings, MAC loopback on");

    // 4. Transmit: take a buffer from the pool, fill it, queue it (the driver writes the
    //    descriptor and the TX tail register).
    let frame = build_frame(mac);
    let dp = nic.datapath_mut().ok_or("no datapath after setup")?;
    let mut pkt = dp.pool_mut().alloc().ok_or("packet pool empty")?;
    dp.pool().write(&mut pkt, &frame).ok_or("frame larger than a pool buffer")?;
    let mut txq = VecDeque::from([pkt]);
    let queued = nic.tx_batch(0, &mut txq).map_err(|e| format!("transmit: {e}"))?;
    if queued != 1 {
        return Err(format!("transmit ring took {queued} of 1 frame"));
    }
    println!("sent {} bytes", frame.len());

    // 5. Receive: poll the RX ring (the driver validates every write-back) until the
    //    frame is back or the timeout passes on the backend's clock.
    let start = nic.backend().now_ns();
    let mut rx = Vec::new();
    while rx.is_empty() {
        nic.rx_batch(0, &mut rx, 8).map_err(|e| format!("receive: {e}"))?;
        if rx.is_empty() {
            let waited = nic.backend().now_ns().saturating_sub(start);
            if waited >= RX_TIMEOUT_NS {
                return Err(format!("no frame came back within {} ms", waited / 1_000_000));
            }
            nic.backend_mut().wait(RX_POLL_NS);
        }
    }
    nic.tx_clean().map_err(|e| format!("TX clean: {e}"))?;

    // 6. Compare what came back with what was sent, then give the buffers back.
    let dp = nic.datapath_mut().ok_or("datapath gone")?;
    let mut got = Vec::new();
    for p in rx {
        got.push(dp.pool().to_vec(&p).ok_or("received packet outside the pool")?);
        dp.pool_mut().free(p);
    }
    let refused = dp.counters.wb_errors();
    if refused != 0 {
        return Err(format!("the driver refused {refused} descriptor write-back(s)"));
    }
    match got.as_slice() {
        [back] if *back == frame => println!("received {} bytes: identical to what was sent", back.len()),
        [back] => {
            let at = back.iter().zip(&frame).position(|(a, b)| a != b).unwrap_or(back.len().min(frame.len()));
            return Err(format!("received {} bytes, sent {}; first difference at byte {at}", back.len(), frame.len()));
        }
        more => return Err(format!("{} frames came back, expected 1", more.len())),
    }

    // 7. Stop the rings, unmap the DMA region, disable interrupts.
    nic.teardown_datapath().map_err(|e| format!("teardown: {e}"))?;
    let backend = nic.shutdown();
    if backend.live_mappings() != 0 {
        return Err(format!("{} DMA mapping(s) still live after shutdown", backend.live_mappings()));
    }
    println!("shut down: no DMA mapping left");
    Ok(())
}

fn main() -> ExitCode {
    let device = std::env::args().nth(1).unwrap_or_default();
    let result = match device.as_str() {
        // The device model in this process (virtual time).
        "model:i82574l" => first_frame(EmulatedBackend::new(Model::new(Config::default()), "model:i82574l")),
        // QEMU's own e1000e, driven over the qtest socket (QEMU is stopped when the backend drops).
        "qemu:e1000e" => match QtestBackend::spawn(Target::Qemu(QemuConfig::default())) {
            Ok(b) => first_frame(b),
            Err(e) => Err(format!("cannot start QEMU: {e}")),
        },
        _ => {
            eprintln!("usage: first_frame model:i82574l|qemu:e1000e");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => {
            println!("first_frame on {device}: PASS");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("first_frame on {device}: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}
