//! The bnx2x side of the SWIOTLB preflight: which mappings a bnx2x port group holds at
//! worst, from its ring configuration (ring sizes, MTU, GRO, the platform's memory), as
//! [`MapClass`]es for the NIC-neutral predictor ([`nicqual_dma::preflight::predict`]).

use nicqual_dma::memory::MemoryKind;
use nicqual_dma::preflight::{MapClass, Prediction, predict};
use nicqual_dma::swiotlb::{PAGE_SIZE, SwiotlbConfig};
use nicqual_hw::bnx2x as hw;
use nicqual_pci::health::{CheckReport, CheckResult};
use serde::Serialize;

/// A bnx2x port group's DMA configuration (what `ethtool -g/-k`, the MTU and the platform
/// say).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bnx2xDmaConfig {
    pub ports: u32,
    /// Rx BDs per port (all queues together; Linux default `MAX_RX_AVAIL` = 4078).
    pub rx_bds_per_port: u32,
    pub rx_queues: u32,
    pub tx_queues: u32,
    /// TX BDs per queue (`MAX_TX_AVAIL` = 4078).
    pub tx_bds_per_queue: u32,
    pub mtu: u32,
    /// `ethtool -K gro`: turns TPA on only where `bnx2x_mtu_allows_gro` (see [`Self::tpa`]);
    /// it does not change what the driver is asked to transmit.
    pub gro: bool,
    /// Largest linear transmit buffer handed to the driver (the field log shows 14–33 KB).
    pub tx_linear_bytes: usize,
    pub memory: MemoryKind,
    /// Fraction of multi-page buffers whose frames are not consecutive (Xen; 1.0 = worst).
    pub scattered_fraction: f64,
}

impl Bnx2xDmaConfig {
    /// The field configuration: two bonded ports, MTU 9000, GRO off, Xen dom0.
    pub fn field() -> Self {
        Bnx2xDmaConfig {
            ports: 2,
            rx_bds_per_port: hw::MAX_RX_AVAIL as u32,
            rx_queues: 1,
            tx_queues: 1,
            tx_bds_per_queue: hw::MAX_TX_AVAIL as u32,
            mtu: 9000,
            gro: false,
            tx_linear_bytes: 33302,
            memory: MemoryKind::XenPv,
            scattered_fraction: 1.0,
        }
    }

    /// Rx mapping length (`rx_buf_size`).
    pub fn rx_buf_size(&self) -> usize {
        hw::rx_buf_size(self.mtu) as usize
    }

    /// TPA runs (in GRO mode) only when GRO is on and the MTU allows it.
    pub fn tpa(&self) -> bool {
        self.gro && hw::mtu_allows_gro(self.mtu)
    }

    fn bounce_fraction(&self, page_offset: usize, size: usize) -> f64 {
        match self.memory {
            MemoryKind::Native => 0.0,
            MemoryKind::XenPv if page_offset + size <= PAGE_SIZE => 0.0,
            MemoryKind::XenPv => self.scattered_fraction,
        }
    }

    /// Linear transmit packets in flight per queue at worst: each takes a start and a parse
    /// BD; the queue stops with fewer than `MAX_SKB_FRAGS + 4` BDs free.
    pub fn tx_in_flight_per_queue(&self) -> u64 {
        (self.tx_bds_per_queue.saturating_sub(hw::MAX_SKB_FRAGS + 4) / 2) as u64
    }

    /// The mapping classes of this configuration.
    pub fn classes(&self) -> Vec<MapClass> {
        let rx = self.rx_buf_size();
        let rx_off = hw::NET_SKB_PAD as usize;
        let mut v = vec![MapClass {
            name: "rx BDs".into(),
            count: self.ports as u64 * self.rx_bds_per_port as u64,
            size: rx,
            page_offset: rx_off,
            bounce_fraction: self.bounce_fraction(rx_off, rx),
            why: format!(
                "rx_buf_size {rx} B at MTU {} (bnx2x_set_rx_buf_size), {}",
                self.mtu,
                if hw::rx_buf_is_page_frag(self.mtu) {
                    "a page fragment: never crosses a page"
                } else {
                    "kmalloc'd, spans pages: bounces unless machine-contiguous"
                }
            ),
        }];
        if self.tpa() {
            v.push(MapClass {
                name: "TPA pool buffers".into(),
                count: self.ports as u64 * self.rx_queues as u64 * hw::MAX_AGG_QS as u64,
                size: rx,
                page_offset: rx_off,
                bounce_fraction: self.bounce_fraction(rx_off, rx),
                why: "one spare rx buffer per aggregation (MAX_AGG_QS) per queue".into(),
            });
            v.push(MapClass {
                name: "SGE pages".into(),
                count: self.ports as u64 * self.rx_queues as u64 * hw::MAX_RX_SGE_CNT as u64,
                size: PAGE_SIZE,
                page_offset: 0,
                bounce_fraction: self.bounce_fraction(0, PAGE_SIZE),
                why: "TPA SGEs are single pages (dma_map_page 4096): never bounce".into(),
            });
        }
        // The transmit skbs come from netback whatever the NIC's GRO setting: GRO/TPA is a
        // receive feature, and the seed-001 model finds nothing by which it reshapes them.
        let inflight = self.ports as u64 * self.tx_queues as u64 * self.tx_in_flight_per_queue();
        let off = 64;
        v.push(MapClass {
            name: "tx linear skbs".into(),
            count: inflight,
            size: self.tx_linear_bytes,
            page_offset: off,
            bounce_fraction: self.bounce_fraction(off, self.tx_linear_bytes),
            why: format!(
                "[inference] linear skbs up to {} B (field log: 14-33 KB from netback/OVS) mapped whole by bnx2x_start_xmit, GRO on or off",
                self.tx_linear_bytes
            ),
        });
        v
    }

    /// Predict for `pool`.
    pub fn predict(&self, pool: &SwiotlbConfig) -> Prediction {
        predict(&self.classes(), pool)
    }
}

/// What would make an exhausting configuration fit, each change tried on the predictor
/// (only changes it says fit are advised). GRO is never among them: it cannot turn TPA on
/// where `bnx2x_mtu_allows_gro` is false (MTU 9000), and where it can, TPA only adds
/// buffers; what it does not change is said.
pub fn advice(cfg: &Bnx2xDmaConfig, pool: &SwiotlbConfig) -> Vec<String> {
    let fits = |c: &Bnx2xDmaConfig, p: &SwiotlbConfig| !c.predict(p).will_exhaust;
    let mut out = Vec::new();
    if !cfg.gro {
        let on = Bnx2xDmaConfig { gro: true, ..cfg.clone() };
        out.push(if on.tpa() {
            "enabling GRO would not help (TPA adds rx buffers; transmit skbs are unchanged)".to_string()
        } else {
            format!(
                "enabling GRO would not help: bnx2x_mtu_allows_gro({}) is false, TPA stays off and the same buffers are mapped",
                cfg.mtu
            )
        });
    }
    let mtu1500 = Bnx2xDmaConfig { mtu: 1500, tx_linear_bytes: cfg.tx_linear_bytes, ..cfg.clone() };
    if cfg.mtu > 1500 && fits(&mtu1500, pool) {
        out.push("MTU 1500 fits (rx buffers become single page fragments)".into());
    }
    for n in [cfg.rx_bds_per_port / 2, cfg.rx_bds_per_port / 4] {
        if n > 0 && fits(&Bnx2xDmaConfig { rx_bds_per_port: n, ..cfg.clone() }, pool) {
            out.push(format!("{n} rx BDs per port fit (ethtool -G rx)"));
            break;
        }
    }
    let mib = (pool.nslabs * 2048) >> 20;
    for m in [mib * 2, mib * 4] {
        let bigger = SwiotlbConfig { nslabs: (m << 20) / 2048, ..*pool };
        if m > mib && fits(cfg, &bigger) {
            out.push(format!("a {m} MiB pool fits at worst"));
            break;
        }
    }
    out
}

/// The qualification check built on the predictor (`swiotlb-preflight`): fail when the
/// configuration can exhaust the pool, with the advice the predictor supports.
pub fn preflight_check(cfg: &Bnx2xDmaConfig, pool: &SwiotlbConfig) -> CheckReport {
    let p = cfg.predict(pool);
    let mut detail = p.message.clone();
    if p.will_exhaust {
        let advice = advice(cfg, pool);
        if !advice.is_empty() {
            detail.push_str("; ");
            detail.push_str(&advice.join("; "));
        }
    }
    let result = if p.will_exhaust { CheckResult::Fail } else { CheckResult::Pass };
    CheckReport::new("swiotlb-preflight", result, detail)
        .measure("segments_needed", p.segments_needed.min(u32::MAX as u64) as f64, "segments")
        .measure("segments_available", p.segments_available as f64, "segments")
        .measure("margin_slots", p.margin_slots.max(i32::MIN as i64) as f64, "slots")
}

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;
