//! DMA through the IOMMU, proved with one frame: the driver maps a one-page TX ring and a
//! one-page buffer at its own IOVAs, posts one legacy descriptor and requires the device to
//! fetch it, read the buffer and write the descriptor back (DD) — three DMAs the IOMMU must
//! translate. The IOMMU's fault count (where the backend sees it) is read before and after,
//! so a DMA the IOMMU blocked is reported, not silently read as garbage.
//!
//! Generic over the backend; written for VFIO, where nothing else shows a blocked DMA.

use nicqual_hw::i82574 as r;
use nicqual_hw::i82574_desc::{TXD_CMD_EOP, TXD_CMD_IFCS, TXD_CMD_RS, TXD_STAT_DD, TXD_STATUS_OFFSET, TxDesc};
use nicqual_nics::DriverError;
use nicqual_nics::i82574::I82574;
use nicqual_pci::backend::{Backend, DmaPerm};
use zerocopy::IntoBytes;

/// IOVA of the probe's TX ring.
pub const RING_IOVA: u64 = 0x1000_0000;
/// IOVA of the probe's frame buffer.
pub const BUF_IOVA: u64 = 0x1001_0000;
/// An IOVA nothing ever maps (the deliberate-bug mode points the buffer here).
pub const UNMAPPED_IOVA: u64 = 0x1F00_0000;
/// Frame length sent (the minimum Ethernet frame without FCS).
pub const FRAME_LEN: u16 = 60;
/// EtherType of the probe frame (IEEE 802 local experimental).
pub const ETHERTYPE: u16 = 0x88B5;

/// What the probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxProbe {
    /// IOVA the descriptor pointed the device at.
    pub buf_iova: u64,
    /// The device wrote the descriptor back with DD.
    pub written_back: bool,
    /// TDH after the probe (1 = the device consumed the descriptor).
    pub tdh: u32,
    /// Time from the tail write to DD (or to giving up), ns.
    pub waited_ns: u64,
    /// IOMMU faults that appeared during the probe (`None`: the backend cannot see them).
    pub new_faults: Option<u64>,
}

fn frame(src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend(src);
    f.extend(ETHERTYPE.to_be_bytes());
    f.extend((0..FRAME_LEN as usize - 14).map(|i| i as u8 ^ 0xA5));
    f
}

/// Send one frame through a one-descriptor ring. `buf_iova` overrides where the descriptor
/// points (the deliberate-bug mode passes [`UNMAPPED_IOVA`]). Waits at most `bound_ns` for
/// DD and then up to `fault_wait_ns` for the kernel to log a fault. Everything mapped is
/// unmapped before returning, after the transmitter is stopped.
pub fn tx_probe<B: Backend>(
    drv: &mut I82574<B>,
    buf_iova: Option<u64>,
    bound_ns: u64,
    fault_wait_ns: u64,
) -> Result<TxProbe, DriverError> {
    let b = drv.backend_mut();
    let ring = b.dma_alloc(4096)?;
    let buf = b.dma_alloc(4096)?;
    let src = drv.mac().unwrap_or([0x02, 0, 0, 0, 0, 1]);
    buf.write(0, &frame(src)).ok_or(DriverError::NotUp)?;
    let target = buf_iova.unwrap_or(BUF_IOVA);
    let desc = TxDesc::legacy(target, FRAME_LEN, TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS);
    ring.write(0, desc.as_bytes()).ok_or(DriverError::NotUp)?;
    let b = drv.backend_mut();
    b.dma_map(&ring, RING_IOVA, DmaPerm::BIDIRECTIONAL)?;
    if let Err(e) = b.dma_map(&buf, BUF_IOVA, DmaPerm::TO_DEVICE) {
        let _ = b.dma_unmap(RING_IOVA);
        return Err(e.into());
    }
    let faults_before = drv.backend().dma_faults();
    let result = run(drv, &ring, bound_ns);
    // Stop the transmitter before the memory goes away, whatever happened.
    let stopped = drv.write(r::TCTL, 0);
    let mut new_faults = None;
    if let Some(before) = faults_before {
        let steps = fault_wait_ns / 10_000_000 + 1;
        for _ in 0..steps {
            let now = drv.backend().dma_faults().unwrap_or(before);
            new_faults = Some(now.saturating_sub(before));
            if now > before {
                break;
            }
            drv.backend_mut().wait(10_000_000);
        }
    }
    let b = drv.backend_mut();
    let u1 = b.dma_unmap(BUF_IOVA);
    let u2 = b.dma_unmap(RING_IOVA);
    let (written_back, tdh, waited_ns) = result?;
    stopped?;
    u1?;
    u2?;
    Ok(TxProbe { buf_iova: target, written_back, tdh, waited_ns, new_faults })
}

fn run<B: Backend>(
    drv: &mut I82574<B>,
    ring: &nicqual_pci::dma::DmaMemory,
    bound_ns: u64,
) -> Result<(bool, u32, u64), DriverError> {
    drv.write(r::TCTL, 0)?;
    drv.write(r::tdbal(0), RING_IOVA as u32)?;
    drv.write(r::tdbah(0), (RING_IOVA >> 32) as u32)?;
    drv.write(r::tdlen(0), ring.len() as u32)?;
    drv.write(r::tdh(0), 0)?;
    drv.write(r::tdt(0), 0)?;
    drv.write(r::TCTL, r::TCTL_EN | r::TCTL_PSP)?;
    let t0 = drv.backend().now_ns();
    drv.write(r::tdt(0), 1)?;
    let step = drv.options().poll_step_ns.max(1_000);
    let mut done = false;
    for _ in 0..bound_ns / step + 2 {
        let status = ring.read_u32(TXD_STATUS_OFFSET).unwrap_or(0);
        if status & TXD_STAT_DD != 0 {
            done = true;
            break;
        }
        if drv.backend().now_ns().saturating_sub(t0) >= bound_ns {
            break;
        }
        drv.backend_mut().wait(step);
    }
    let waited = drv.backend().now_ns().saturating_sub(t0);
    let tdh = drv.read(r::tdh(0))?;
    Ok((done, tdh, waited))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_frame_is_broadcast_from_our_mac() {
        let f = frame([2, 0, 0, 0, 0, 7]);
        assert_eq!(f.len(), FRAME_LEN as usize);
        assert_eq!(f.get(..6), Some(&[0xFF; 6][..]));
        assert_eq!(f.get(6..12), Some(&[2, 0, 0, 0, 0, 7][..]));
        assert_eq!(f.get(12..14), Some(&[0x88, 0xB5][..]));
    }

    fn model() -> I82574<nicqual_backends::emulated::EmulatedBackend<nicqual_model::i82574::I82574>> {
        use nicqual_model::i82574::{Config, I82574 as Model};
        let b = nicqual_backends::emulated::EmulatedBackend::new(Model::new(Config::default()), "model:i82574l");
        let mut d = I82574::attach(b, nicqual_nics::i82574::Options::default()).unwrap();
        d.bring_up().unwrap();
        d
    }

    #[test]
    fn probe_passes_on_the_model_and_unmaps_everything() {
        let mut d = model();
        let p = tx_probe(&mut d, None, 10_000_000, 0).unwrap();
        assert!(p.written_back, "{p:?}");
        assert_eq!(p.tdh, 1);
        assert_eq!(p.new_faults, Some(0));
        assert_eq!(d.backend().live_mappings(), 0);
    }

    #[test]
    fn unmapped_buffer_iova_is_an_iommu_fault() {
        let mut d = model();
        let p = tx_probe(&mut d, Some(UNMAPPED_IOVA), 10_000_000, 0).unwrap();
        assert_eq!(p.buf_iova, UNMAPPED_IOVA);
        assert!(p.new_faults.is_some_and(|n| n > 0), "{p:?}");
        assert_eq!(d.backend().live_mappings(), 0);
    }
}
