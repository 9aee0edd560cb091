//! Which of the driver's live streaming mappings hold SWIOTLB bounce slots, by holder: the
//! driver walks what it holds (posted RX BD buffers, buffers held by open TPA
//! aggregations, posted SGE pages, the mappings of each TX packet from `xmit` until its
//! completion is reclaimed) and counts, for each mapping the DMA API bounced, the slots a
//! mapping of that length takes (`nr_slots`, Linux `lib/swiotlb.c`). The sum over holders
//! is what this driver holds in the pool; a caller checks it against the pool's own count.

use super::{Bnx2x, RxBuf};
use crate::backend::Backend;
use crate::swiotlb::nr_slots;
use serde::Serialize;

/// What holds a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Holder {
    /// An RX buffer posted on a BD ring (`rx_buf_size(mtu)` bytes).
    RxBd,
    /// An RX buffer taken off the ring by a TPA start, held until the TPA end.
    TpaHeld,
    /// A posted SGE page (TPA).
    Sge,
    /// A part (linear or fragment) of a transmitted packet not yet reclaimed.
    Tx,
}

/// Mappings of one holder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HolderCount {
    pub mappings: usize,
    pub bounced: usize,
    /// Bounce slots the bounced ones take.
    pub slots: usize,
}

impl HolderCount {
    fn add(&mut self, len: usize, bounced: bool) {
        self.mappings += 1;
        if bounced {
            self.bounced += 1;
            self.slots += nr_slots(len);
        }
    }
}

/// The driver's live streaming mappings by holder (all zero in pool mode: nothing is
/// mapped on the datapath there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BounceCensus {
    pub rx_bd: HolderCount,
    pub tpa_held: HolderCount,
    pub sge: HolderCount,
    pub tx: HolderCount,
    /// TX packets in flight (each holds one mapping per part).
    pub tx_packets: usize,
}

impl BounceCensus {
    pub fn get(&self, h: Holder) -> HolderCount {
        match h {
            Holder::RxBd => self.rx_bd,
            Holder::TpaHeld => self.tpa_held,
            Holder::Sge => self.sge,
            Holder::Tx => self.tx,
        }
    }

    /// Bounce slots held, all holders.
    pub fn slots(&self) -> usize {
        self.rx_bd.slots + self.tpa_held.slots + self.sge.slots + self.tx.slots
    }

    /// Sum of two censuses (e.g. the ports of a bond).
    pub fn plus(&self, o: &BounceCensus) -> BounceCensus {
        let add = |a: HolderCount, b: HolderCount| HolderCount {
            mappings: a.mappings + b.mappings,
            bounced: a.bounced + b.bounced,
            slots: a.slots + b.slots,
        };
        BounceCensus {
            rx_bd: add(self.rx_bd, o.rx_bd),
            tpa_held: add(self.tpa_held, o.tpa_held),
            sge: add(self.sge, o.sge),
            tx: add(self.tx, o.tx),
            tx_packets: self.tx_packets + o.tx_packets,
        }
    }
}

impl<B: Backend> Bnx2x<B> {
    /// What holds the driver's live streaming mappings and their bounce slots now.
    pub fn bounce_census(&self) -> BounceCensus {
        let mut c = BounceCensus::default();
        let mapped = |b: &RxBuf| match b {
            RxBuf::Mapped { map, .. } => Some((map.len, map.bounced)),
            RxBuf::Pool { .. } => None,
        };
        for fq in &self.queues {
            for (len, bounced) in fq.rx_slots.iter().flatten().filter_map(mapped) {
                c.rx_bd.add(len, bounced);
            }
            for (len, bounced) in fq.aggs.iter().flatten().filter_map(|a| a.buf.as_ref()).filter_map(mapped) {
                c.tpa_held.add(len, bounced);
            }
            for (len, bounced) in fq.sge_slots.iter().flatten().filter_map(mapped) {
                c.sge.add(len, bounced);
            }
            for p in &fq.tx_pkts {
                for (_, m) in &p.parts {
                    c.tx.add(m.len, m.bounced);
                }
            }
            c.tx_packets += usize::from(fq.tx_pkt_prod.wrapping_sub(fq.tx_pkt_cons));
        }
        c
    }
}
