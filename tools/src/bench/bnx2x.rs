//! Loopback throughput of the emulated bnx2x (`--nic bnx2x`): the driver's `xmit` (copy
//! into the queue's pool buffers, start + parse BD) and `doorbell`, the model fetching the
//! BD chains and data through its IOMMU, looping each frame back into RX queue 0 (BD fetch,
//! data write, CQE write), one status block write per doorbell; then the driver's `poll`
//! (status block read, every CQE validated, data copied out, BD reposted, producers
//! written). Poll mode: no interrupts (IGU disabled), as a userspace driver runs. One core.

use super::loopback::{Row, timed};
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_dma::dmamap::{DmaApi, DmaPlatform};
use nicqual_dma::memory::HostMemory;
use nicqual_dma::swiotlb::DeviceName;
use nicqual_model::bnx2x::Bnx2xDevice;
use nicqual_nics::bnx2x::{Bnx2x, Bnx2xConfig, XmitOutcome};

pub const NIC: &str = "model:bnx2x";

/// Largest frame the bench sends (MTU 9000 + Ethernet header, VLAN tag and FCS slack).
pub fn max_frame() -> usize {
    Bnx2xConfig::new(9000).max_frame()
}

fn frame(size: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(29)).collect();
    for (d, s) in f.iter_mut().zip([0xFFu8; 12].iter().chain([0x88, 0xB5].iter())) {
        *d = *s;
    }
    f
}

pub fn measure(size: usize, batch: usize, seconds: f64, split: bool) -> Result<Row, String> {
    let mtu = if size > 1514 { 9000 } else { 1500 };
    let mut backend = EmulatedBackend::new(Bnx2xDevice::new(), NIC);
    if split {
        backend.time_device();
    }
    let platform = DmaPlatform::iommu(HostMemory::native(1 << 18)).shared();
    let dma = DmaApi::new(DeviceName::new("bnx2x", "bench"), platform, u64::MAX);
    let cfg = Bnx2xConfig { interrupts: false, rx_bd_pages: 1, tx_bd_pages: 1, ..Bnx2xConfig::new(mtu) };
    let mut d = Bnx2x::attach(backend, dma, cfg).map_err(|e| e.to_string())?;
    let bytes = frame(size);
    let err = |e: nicqual_nics::bnx2x::Bnx2xError| e.to_string();
    let round = |d: &mut Bnx2x<EmulatedBackend<Bnx2xDevice>>, sent: &mut u64, got: &mut u64| -> Result<(), String> {
        for _ in 0..batch {
            match d.xmit(0, &[&bytes]).map_err(err)? {
                XmitOutcome::Queued => *sent += 1,
                XmitOutcome::Busy => break,
                XmitOutcome::Dropped(e) => return Err(e.to_string()),
            }
        }
        d.doorbell(0).map_err(err)?;
        let mut n = 0u64;
        d.poll(0, batch, |_, _| n += 1).map_err(err)?;
        *got += n;
        Ok(())
    };
    let (mut sent, mut got) = (0u64, 0u64);
    let t = timed(seconds, &mut d, &mut sent, &mut got, round, |d| d.backend().device_ns())?;
    loop {
        let mut n = 0u64;
        d.poll(0, 4096, |_, _| n += 1).map_err(err)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let packets = got - t.got0;
    let bad = d.counters(0).map_or(0, |c| c.rx_bad_cqe);
    let (report, _) = d.close();
    if report.result != nicqual_pci::CheckResult::Pass {
        return Err(format!("teardown: {}", report.detail));
    }
    Ok(Row::new(NIC, size, batch, packets, t.secs, t.cpu, sent.saturating_sub(got), bad).with_device_ns(t.device_ns))
}
