//! Fuzz harness: the 82574L driver against a hostile device.
//!
//! The device is the emulated 82574L wrapped in [`HostileBackend`]: the fuzzer's bytes
//! decide, for every register/config read, whether the driver sees the real value, all-ones,
//! zero, garbage or flipped bits; whether a write is dropped; when garbage is written into
//! mapped DMA memory; when interrupts fire spuriously, waits return early, backend calls fail,
//! and when the device disappears for good. The input's first part is the list of driver
//! operations to run after attach; the rest is the hostile script.
//!
//! Invariants checked after every operation: no panic; a bounded number of device accesses
//! (the backend panics past its budget); `DeviceGone` only when STATUS (or the config
//! identity) really read all-ones; no device access at all once the driver knows the device
//! is gone; every error renders a non-empty message. After teardown: no live DMA mapping
//! (mapped == unmapped), no overlapping map and no unmap of an unknown IOVA, and no DMA fault
//! in the model unless the device misbehaved in a way that can redirect DMA (a dropped
//! ring-base write, a corrupted read-modify-write, a scribbled descriptor: see
//! [`nicqual_backends::hostile::HostileLog::honest`]).

use crate::{Violation, violation};
use arbitrary::{Arbitrary, Unstructured};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_backends::hostile::{HostileBackend, Script};
use nicqual_hw::i82574::{self as r, IvarEntry};
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_nics::DriverError;
use nicqual_nics::i82574::datapath::DatapathConfig;
use nicqual_nics::i82574::{I82574, Options};
use nicqual_pci::Backend;
use nicqual_qualify::i82574::{SuiteOptions, run_suite};
use std::collections::VecDeque;

const MAX_OPS: usize = 16;

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum DriverOp {
    BringUp,
    RunSuite,
    Reset,
    ReadMac,
    PhyRead {
        reg: u8,
    },
    SetupMsix,
    WaitLink,
    ServiceVector {
        vector: u8,
    },
    DrainNotifiers,
    FireAndWait {
        entry: u8,
    },
    Watchdog {
        quiet_us: u16,
    },
    Recover {
        entry: u8,
    },
    PollCauses,
    PatternTest,
    CheckMsixEntry {
        vector: u8,
    },
    CheckIvar {
        entry: u8,
    },
    Read {
        reg: u16,
    },
    IrqDisable,
    Remove,
    /// Set up the datapath (small rings, MAC loopback or not).
    SetupDatapath {
        ring: u8,
        loopback: bool,
    },
    /// Queue `n` frames of `len` bytes (0 and oversize included) for transmission.
    TxBatch {
        n: u8,
        len: u16,
    },
    RxBatch {
        max: u8,
    },
    TxClean,
    ReadHead {
        rx: bool,
    },
    TeardownDatapath,
    /// Let virtual time pass (delay timers, link, loopback delivery).
    Wait {
        us: u16,
    },
}

type Hostile = HostileBackend<EmulatedBackend<Model>>;

fn entry(i: u8) -> IvarEntry {
    IvarEntry::from_index(u32::from(i % 5)).unwrap_or(IvarEntry::Other)
}

fn accesses(b: &Hostile) -> u64 {
    b.log.reads + b.log.writes
}

/// Check one driver result against what the hostile device really did.
fn check_err(b: &Hostile, op: &str, r: &Result<(), DriverError>) -> Result<(), Violation> {
    let Err(e) = r else { return Ok(()) };
    let msg = e.to_string();
    if msg.trim().is_empty() {
        return Err(violation(format!("{op}: error with an empty message: {e:?}")));
    }
    if e.is_device_gone() && !b.saw_all_ones(r::BAR_REGS, u64::from(r::STATUS)) {
        return Err(violation(format!("{op}: driver declared the device gone but STATUS never read all-ones: {msg}")));
    }
    Ok(())
}

fn apply(d: &mut I82574<Hostile>, op: DriverOp) -> Result<(), DriverError> {
    match op {
        DriverOp::BringUp => d.bring_up(),
        DriverOp::RunSuite => {
            run_suite(d, &SuiteOptions::default());
            Ok(())
        }
        DriverOp::Reset => d.reset().map(drop),
        DriverOp::ReadMac => d.read_mac().map(drop),
        DriverOp::PhyRead { reg } => d.phy_read(u32::from(reg)).map(drop),
        DriverOp::SetupMsix => d.setup_msix(),
        DriverOp::WaitLink => d.wait_link().map(drop),
        DriverOp::ServiceVector { vector } => d.service_vector(u16::from(vector % 4)),
        DriverOp::DrainNotifiers => d.drain_notifiers().map(drop),
        DriverOp::FireAndWait { entry: e } => d.fire_and_wait(entry(e)).map(drop),
        DriverOp::Watchdog { quiet_us } => d.watchdog(u64::from(quiet_us) * 1000).map(drop),
        DriverOp::Recover { entry: e } => d.recover(entry(e)).map(drop),
        DriverOp::PollCauses => d.poll_causes().map(drop),
        DriverOp::PatternTest => d.register_pattern_test(&[]).map(drop),
        DriverOp::CheckMsixEntry { vector } => d.check_msix_entry(u16::from(vector % 4)).map(drop),
        DriverOp::CheckIvar { entry: e } => d.check_ivar_entry(entry(e)).map(drop),
        DriverOp::Read { reg } => {
            let names = r::named_registers();
            let off = names.get(usize::from(reg) % names.len().max(1)).map(|(o, _)| *o).unwrap_or(r::STATUS);
            d.read(off).map(drop)
        }
        DriverOp::IrqDisable => d.irq_disable(),
        DriverOp::Remove => {
            d.backend_mut().remove();
            Ok(())
        }
        DriverOp::SetupDatapath { ring, loopback } => {
            let ring_size = 8 << (ring % 4);
            d.setup_datapath(DatapathConfig { ring_size, pool_entries: 2 * ring_size, loopback, ..Default::default() })
        }
        DriverOp::TxBatch { n, len } => {
            let mut q = VecDeque::new();
            if let Some(dp) = d.datapath_mut() {
                let pool = dp.pool_mut();
                for i in 0..(n % 16) {
                    let Some(mut p) = pool.alloc() else { break };
                    // Byte b of the frame is (b mod 256) ^ i, filled 256 bytes at a time.
                    let ramp: Vec<u8> = (0..=255u8).map(|b| b ^ i).collect();
                    let mut frame = vec![0u8; usize::from(len)];
                    for chunk in frame.chunks_mut(ramp.len()) {
                        chunk.copy_from_slice(&ramp[..chunk.len()]);
                    }
                    // Oversize or empty frames stay as they are: the driver must refuse them.
                    if pool.write(&mut p, &frame).is_none() {
                        let _ = pool.set_len(&mut p, 0);
                    }
                    q.push_back(p);
                }
            }
            let r = d.tx_batch(0, &mut q).map(drop);
            if let Some(dp) = d.datapath_mut() {
                for p in q {
                    dp.pool_mut().free(p);
                }
            }
            r
        }
        DriverOp::RxBatch { max } => {
            let mut out = Vec::new();
            let r = d.rx_batch(0, &mut out, usize::from(max)).map(drop);
            if let Some(dp) = d.datapath_mut() {
                for p in out {
                    dp.pool_mut().free(p);
                }
            }
            r
        }
        DriverOp::TxClean => d.tx_clean().map(drop),
        DriverOp::ReadHead { rx } => d.read_head(rx).map(drop),
        DriverOp::TeardownDatapath => d.teardown_datapath(),
        DriverOp::Wait { us } => {
            d.backend_mut().wait(u64::from(us) * 1000);
            Ok(())
        }
    }
}

/// Run one input.
pub fn run(data: &[u8]) -> Result<(), Violation> {
    let mut u = Unstructured::new(data);
    let n = usize::from(u.arbitrary::<u8>().unwrap_or(0)) % (MAX_OPS + 1);
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        match DriverOp::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    let script = Script::new(u.take_rest());
    run_ops(&ops, script)
}

/// Run a decoded operation list against a device following `script`.
pub fn run_ops(ops: &[DriverOp], script: Script) -> Result<(), Violation> {
    let model = Model::new(Config { link_up_delay_ns: 1_000_000, ..Config::default() });
    let hb = HostileBackend::new(EmulatedBackend::new(model, "model:i82574l"), script);
    let mut d = match I82574::attach(hb, Options::default()) {
        Ok(d) => d,
        // The backend was consumed; attach's errors are checked by type only.
        Err(e) if e.is_device_gone() || matches!(e, DriverError::WrongDevice { .. } | DriverError::Backend(_)) => {
            return Ok(());
        }
        Err(e) => return Err(violation(format!("attach failed with an unexpected error: {e}"))),
    };
    let mut gone_at: Option<u64> = None;
    let mut suites = 0;
    for (i, op) in ops.iter().enumerate() {
        // One full suite per input: it already runs every check once (thousands of frames);
        // a second one multiplied the cost of an execution without reaching new code.
        if matches!(op, DriverOp::RunSuite) {
            suites += 1;
            if suites > 1 {
                continue;
            }
        }
        let res = apply(&mut d, *op);
        let name = format!("op {i} {op:?}");
        check_err(d.backend(), &name, &res)?;
        if let Some(n) = gone_at
            && accesses(d.backend()) != n
        {
            return Err(violation(format!(
                "{name}: driver touched the device {} more times after finding it gone",
                accesses(d.backend()) - n
            )));
        }
        if d.is_gone() && gone_at.is_none() {
            gone_at = Some(accesses(d.backend()));
        }
    }
    let hb = d.shutdown();
    if let Some(n) = gone_at
        && accesses(&hb) != n
    {
        return Err(violation("shutdown touched a device the driver knew was gone"));
    }
    if hb.live_mappings() != 0 || hb.inner().live_mappings() != 0 {
        return Err(violation(format!(
            "after teardown {} DMA windows are still mapped (model sees {})",
            hb.live_mappings(),
            hb.inner().live_mappings()
        )));
    }
    if !hb.log.bad_dma_calls.is_empty() {
        return Err(violation(format!("bad DMA calls: {:?}", hb.log.bad_dma_calls)));
    }
    let faults = hb.inner().dma_faults().unwrap_or(0);
    if faults != 0 && hb.log.honest() {
        return Err(violation(format!(
            "the model recorded {faults} DMA faults although the device only misbehaved harmlessly \
             (no corrupted read, dropped write or DMA scribble): the driver gave it an address \
             outside its windows"
        )));
    }
    Ok(())
}
