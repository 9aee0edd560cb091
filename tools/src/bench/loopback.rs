//! Loopback throughput of the emulated 82574L: the driver's `tx_batch` / `rx_batch` against
//! the device model in MAC loopback (RCTL.LBM), one core, packets per second and bits per
//! second per frame size. Everything on the path is measured: descriptor writes, the tail
//! doorbell, the model fetching descriptors and buffers through its IOMMU, FCS, statistics,
//! the receive path writing back, and the driver validating every write-back.
//!
//! Packet buffers are filled once; each round re-queues buffers from the pool by length
//! only (no copy), as a traffic generator would.
//!
//! `--nic enic`: the enic driver's `send_batch` / `poll_rx_with` against the VIC model,
//! whose adapter loops WQ 0 back into RQ 0: one doorbell per batch, one descriptor and one
//! buffer copy per frame each way, every completion validated, an MSI-X message and a
//! credit return per service pass, no allocation per frame.

use super::Args;
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_dma::mempool::Packet;
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_nics::i82574::datapath::DatapathConfig;
use nicqual_nics::i82574::{I82574, Options};
use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const NIC: &str = "model:i82574l";

/// One measured frame size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub nic: String,
    pub frame_size: usize,
    pub batch: usize,
    pub mpps: f64,
    pub gbps: f64,
    pub packets: u64,
    /// Wall-clock seconds measured.
    pub seconds: f64,
    /// CPU time this thread got in that interval (Linux schedstat), and the rate per CPU
    /// second: on a shared machine the wall-clock rate understates what one core does.
    pub cpu_seconds: Option<f64>,
    pub mpps_per_cpu_second: Option<f64>,
    /// Of that, wall-clock seconds spent inside the emulated device (its register
    /// handlers, its DMA through the IOMMU model, interrupt delivery), and the rate that
    /// time alone would sustain: what the emulation costs per packet, apart from the
    /// driver's own work. Needs `--split`.
    pub device_seconds: Option<f64>,
    pub device_mpps: Option<f64>,
    /// Frames sent but not received back (must be 0: loopback on the model loses nothing).
    pub lost: u64,
    /// Write-backs the driver refused (must be 0).
    pub wb_errors: u64,
}

impl Row {
    /// A row from what was counted (`packets` received in `secs`, `cpu` CPU seconds).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        nic: &str,
        frame_size: usize,
        batch: usize,
        packets: u64,
        secs: f64,
        cpu: Option<f64>,
        lost: u64,
        wb_errors: u64,
    ) -> Row {
        Row {
            nic: nic.into(),
            frame_size,
            batch,
            mpps: packets as f64 / secs / 1e6,
            gbps: packets as f64 * frame_size as f64 * 8.0 / secs / 1e9,
            packets,
            seconds: secs,
            cpu_seconds: cpu,
            mpps_per_cpu_second: cpu.map(|c| packets as f64 / c / 1e6),
            device_seconds: None,
            device_mpps: None,
            lost,
            wb_errors,
        }
    }

    /// The device's share: `ns` spent in the model over the measured interval.
    pub(crate) fn with_device_ns(mut self, ns: Option<u64>) -> Row {
        self.device_seconds = ns.map(|n| n as f64 / 1e9).filter(|&s| s > 0.0);
        self.device_mpps = self.device_seconds.map(|s| self.packets as f64 / s / 1e6);
        self
    }
}

fn frame(size: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(29)).collect();
    if let Some(h) = f.get_mut(..14) {
        h[..6].copy_from_slice(&[0xFF; 6]);
        h[6..12].copy_from_slice(&Config::default().mac);
        h[12..14].copy_from_slice(&[0x88, 0xB5]);
    }
    f
}

/// CPU time of the calling thread in ns (first field of /proc/thread-self/schedstat).
pub(crate) fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// What [`timed`] measured.
pub(crate) struct Timed {
    /// Packets received before the measured interval.
    pub got0: u64,
    /// Wall seconds measured.
    pub secs: f64,
    /// CPU seconds this thread got in them.
    pub cpu: Option<f64>,
    /// Nanoseconds the device model accounted in them (`--split`).
    pub device_ns: Option<u64>,
}

/// Run `round` on `state` for 100 ms of warm-up, then for `seconds`; `device_ns` reads the
/// device-time account of `state` (its difference over the interval is reported).
pub(crate) fn timed<S>(
    seconds: f64,
    state: &mut S,
    sent: &mut u64,
    got: &mut u64,
    mut round: impl FnMut(&mut S, &mut u64, &mut u64) -> Result<(), String>,
    device_ns: impl Fn(&S) -> Option<u64>,
) -> Result<Timed, String> {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(100) {
        round(state, sent, got)?;
    }
    let got0 = *got;
    let dev0 = device_ns(state);
    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    let limit = Duration::from_secs_f64(seconds.max(0.01));
    loop {
        for _ in 0..64 {
            round(state, sent, got)?;
        }
        if t0.elapsed() >= limit || crate::interrupt::interrupted() {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu0.zip(thread_cpu_ns()).map(|(a, b)| b.saturating_sub(a) as f64 / 1e9).filter(|&c| c > 0.0);
    let device_ns = dev0.zip(device_ns(state)).map(|(a, b)| b.saturating_sub(a));
    Ok(Timed { got0, secs, cpu, device_ns })
}

fn measure(size: usize, batch: usize, seconds: f64, split: bool) -> Result<Row, String> {
    let max_std = nicqual_hw::i82574_desc::MAX_STD_FRAME - nicqual_hw::i82574_desc::FCS_LEN;
    let base = if size > max_std { DatapathConfig::jumbo() } else { DatapathConfig::default() };
    let cfg = DatapathConfig { loopback: true, ring_size: 512, pool_entries: 2048, ..base };
    let mut backend = EmulatedBackend::new(Model::new(Config::default()), NIC);
    if split {
        backend.time_device();
    }
    let mut d = I82574::attach(backend, Options::default()).map_err(|e| e.to_string())?;
    d.bring_up().map_err(|e| e.to_string())?;
    d.setup_datapath(cfg).map_err(|e| e.to_string())?;
    let err = |e: nicqual_nics::DriverError| e.to_string();
    // Fill every free buffer with the frame once.
    {
        let dp = d.datapath_mut().ok_or("no datapath")?;
        let bytes = frame(size);
        let mut all = Vec::new();
        dp.pool_mut().alloc_batch(&mut all, usize::MAX);
        for p in all.iter_mut() {
            dp.pool().write(p, &bytes).ok_or("frame larger than a buffer")?;
        }
        for p in all {
            dp.pool_mut().free(p);
        }
    }
    let mut txq: VecDeque<Packet> = VecDeque::with_capacity(batch);
    let mut rxv: Vec<Packet> = Vec::with_capacity(batch);
    let mut round = |d: &mut I82574<EmulatedBackend<Model>>, sent: &mut u64, got: &mut u64| -> Result<(), String> {
        let dp = d.datapath_mut().ok_or("no datapath")?;
        while txq.len() < batch {
            let Some(mut p) = dp.pool_mut().alloc() else { break };
            dp.pool().set_len(&mut p, size).ok_or("frame larger than a buffer")?;
            txq.push_back(p);
        }
        *sent += d.tx_batch(0, &mut txq).map_err(err)? as u64;
        *got += d.rx_batch(0, &mut rxv, batch).map_err(err)? as u64;
        let dp = d.datapath_mut().ok_or("no datapath")?;
        for p in rxv.drain(..) {
            dp.pool_mut().free(p);
        }
        Ok(())
    };
    let (mut sent, mut got) = (0u64, 0u64);
    let t = timed(seconds, &mut d, &mut sent, &mut got, &mut round, |d| d.backend().device_ns())?;
    // Collect what is still in the RX ring so `lost` is exact.
    loop {
        let n = d.rx_batch(0, &mut rxv, batch).map_err(err)?;
        if n == 0 {
            break;
        }
        got += n as u64;
        let dp = d.datapath_mut().ok_or("no datapath")?;
        for p in rxv.drain(..) {
            dp.pool_mut().free(p);
        }
    }
    let packets = got - t.got0;
    let dp = d.datapath().ok_or("no datapath")?;
    let lost = sent.saturating_sub(got);
    let wb_errors = dp.counters.wb_errors();
    let _ = d.shutdown();
    Ok(Row::new(NIC, size, batch, packets, t.secs, t.cpu, lost, wb_errors).with_device_ns(t.device_ns))
}

/// One enic loopback measurement: interface and adapter MTU 9000, 512-entry rings, pool
/// buffers (one mapping for every buffer, as the 82574L's mempool) and poll mode (no
/// MSI-X message per service pass); every completion validated as always.
fn measure_enic(size: usize, batch: usize, seconds: f64, split: bool) -> Result<Row, String> {
    use nicqual_model::enic::{EnicDevice, EnicFaultPlan};
    use nicqual_nics::enic::{Buffers, Enic, EnicOptions, Platform, Policy};
    let dev = EnicDevice::new(9000, EnicFaultPlan::none());
    let o = EnicOptions::new(Policy::Nicqual, Platform::Direct, 9000, 512).buffers(Buffers::Pool).interrupts(false);
    let mut backend = EmulatedBackend::new(dev, ENIC);
    if split {
        backend.time_device();
    }
    let (mut e, _) = Enic::with_options(backend, o).map_err(|e| e.to_string())?;
    let bytes = frame(size);
    let n = batch as u32;
    let mut sink = |_: &[u8]| {};
    let (mut sent, mut got) = (0u64, 0u64);
    // `got` follows the driver's delivered count, so `timed` sees where the interval began.
    let round = |e: &mut Enic<EmulatedBackend<EnicDevice>>, _: &mut u64, got: &mut u64| -> Result<(), String> {
        e.send_batch(&bytes, n).map_err(|e| e.to_string())?;
        e.poll_rx_with(&mut sink);
        *got = e.stats.rx_delivered;
        Ok(())
    };
    let t = timed(seconds, &mut e, &mut sent, &mut got, round, |e| e.backend().device_ns())?;
    let (secs, cpu, got0) = (t.secs, t.cpu, t.got0);
    while e.poll_rx_with(&mut sink) > 0 {}
    let packets = e.stats.rx_delivered - got0;
    let lost = e.stats.tx_frames.saturating_sub(e.stats.rx_delivered);
    let wb_errors = e.stats.dropped_total() + e.stats.tx_bad_completions + e.stats.stale_colour;
    let _ = e.shutdown();
    Ok(Row::new(ENIC, size, batch, packets, secs, cpu, lost, wb_errors).with_device_ns(t.device_ns))
}

const ENIC: &str = "model:enic";

pub fn run(a: &Args) -> ExitCode {
    let mut nics: Vec<&str> = Vec::new();
    for n in &a.nics {
        match n.as_str() {
            "i82574l" | "82574l" | "i82574" => nics.push("i82574l"),
            "bnx2x" => nics.push("bnx2x"),
            "enic" => nics.push("enic"),
            other => {
                eprintln!("nicqual: --nic {other}: expected i82574l, bnx2x or enic");
                return ExitCode::from(2);
            }
        }
    }
    let enic_max = (nicqual_hw::enic::ENIC_MAX_MTU + nicqual_hw::enic::VLAN_ETH_HLEN) as usize;
    if nics.contains(&"enic")
        && let Some(s) = a.frame_sizes.iter().find(|&&s| !(14..=enic_max).contains(&s))
    {
        eprintln!("nicqual: --frame-size {s}: the enic takes 14..={enic_max} (MTU 9000 + a VLAN Ethernet header)");
        return ExitCode::from(2);
    }
    if a.batch == 0 || a.batch > 511 {
        eprintln!("nicqual: --batch must be in 1..=511 (the ring holds 512 descriptors)");
        return ExitCode::from(2);
    }
    let max = nicqual_hw::i82574_desc::MAX_JUMBO_FRAME - nicqual_hw::i82574_desc::FCS_LEN;
    if nics.contains(&"i82574l")
        && let Some(s) = a.frame_sizes.iter().find(|&&s| !(14..=max).contains(&s))
    {
        eprintln!("nicqual: --frame-size {s}: must be in 14..={max} (the 82574L's largest frame with LPE, less FCS)");
        return ExitCode::from(2);
    }
    let bmax = super::bnx2x::max_frame();
    if nics.contains(&"bnx2x")
        && let Some(s) = a.frame_sizes.iter().find(|&&s| !(14..=bmax).contains(&s))
    {
        eprintln!("nicqual: --frame-size {s}: must be in 14..={bmax} for the bnx2x (MTU 9000)");
        return ExitCode::from(2);
    }
    let mut rows = Vec::new();
    let split_head = if a.split { format!(" {:>8} {:>11}", "device%", "device Mpps") } else { String::new() };
    println!(
        "{:<14} {:>10} {:>6} {:>9} {:>9} {:>12} {:>6} {:>9}{split_head}",
        "nic", "frame_size", "batch", "Mpps", "Gbit/s", "packets", "lost", "Mpps/cpu"
    );
    let cells = nics.iter().flat_map(|&n| a.frame_sizes.iter().map(move |&s| (n, s)));
    for (nic, size) in cells {
        if crate::interrupt::interrupted() {
            eprintln!("nicqual: bench interrupted: {nic} {size} B and later not measured");
            break;
        }
        let r = match nic {
            "enic" => measure_enic(size, a.batch, a.seconds, a.split),
            "bnx2x" => super::bnx2x::measure(size, a.batch, a.seconds, a.split),
            _ => measure(size, a.batch, a.seconds, a.split),
        };
        match r {
            Ok(r) => {
                let split = match (a.split, r.device_seconds, r.device_mpps) {
                    (true, Some(ds), Some(dm)) => format!(" {:>7.1}% {:>11.3}", 100.0 * ds / r.seconds, dm),
                    (true, ..) => format!(" {:>8} {:>11}", "-", "-"),
                    (false, ..) => String::new(),
                };
                println!(
                    "{:<14} {:>10} {:>6} {:>9.3} {:>9.3} {:>12} {:>6} {:>9}{split}",
                    r.nic,
                    r.frame_size,
                    r.batch,
                    r.mpps,
                    r.gbps,
                    r.packets,
                    r.lost,
                    r.mpps_per_cpu_second.map_or("-".to_string(), |m| format!("{m:.3}"))
                );
                rows.push(r);
            }
            Err(e) => {
                eprintln!("nicqual: bench at {size} B: {e}");
                return ExitCode::from(1);
            }
        }
    }
    println!(
        "one core, MAC loopback on the emulated 82574L and bnx2x, adapter loopback on the emulated enic; frame_size excludes the FCS;\n\
         Mpps = packets per wall-clock second, Mpps/cpu = per second of CPU time this thread got"
    );
    if a.split {
        println!(
            "device% = share of the wall-clock interval spent inside the device model (its register handlers, DMA through\n\
             the IOMMU model, interrupt delivery); device Mpps = packets per second of that time: what the emulation alone sustains"
        );
    }
    if let Some(path) = &a.json {
        let v = serde_json::json!({
            "schema": "nicqual.bench/1",
            "kind": "bench",
            "mode": "loopback",
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "host": nicqual_report::Host::this(),
            "results": rows,
        });
        if let Err(e) = super::write_json(path, &v) {
            eprintln!("nicqual: {e}");
            return ExitCode::from(2);
        }
    }
    if rows.iter().any(|r| r.lost > 0 || r.wb_errors > 0) {
        eprintln!("nicqual: frames were lost or write-backs refused during the bench (see the table)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
