//! Preflight: from a NIC's ring configuration, predict before any traffic whether its DMA
//! mappings can exhaust the SWIOTLB pool, in slots, counting what the allocator really
//! costs (page alignment of multi-page mappings, no mapping across a 128-slot segment).
//!
//! The worst case is every ring full and every in-flight transmit holding its mapping.
//! Each class of mapping of `n` slots with alignment stride `s` (2 when the mapping is
//! page-aligned, else 1) fits `k = (128 - n) / ceil_s(n) + 1` times per segment (21 for
//! the 5-slot bnx2x MTU 9000 rx buffer); classes are packed segment by segment, so the
//! demand is `sum(ceil(count / k))` segments against `nslabs / 128`.
//!
//! Which mappings bounce follows [`crate::memory`]: on native memory none (64-bit device),
//! on Xen PV every buffer that crosses a page boundary unless its frames are consecutive
//! (`bounce_fraction` says how many do: 1.0 is the worst case, a fully scattered p2m).

use crate::swiotlb::{Generation, IO_TLB_SEGSIZE, PAGE_SIZE, SwiotlbConfig, nr_slots};
use serde::Serialize;

/// One kind of mapping a driver holds, and how many of them at once at worst.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapClass {
    pub name: String,
    /// Mappings held at once.
    pub count: u64,
    /// Bytes per mapping.
    pub size: usize,
    /// Byte offset of the buffer in its first page (decides page crossing).
    pub page_offset: usize,
    /// Fraction of these mappings that bounce (0 = never, 1 = all).
    pub bounce_fraction: f64,
    /// A human explanation (sourced or inferred).
    pub why: String,
}

/// The predictor's view of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassDemand {
    pub name: String,
    pub bouncing: u64,
    pub nslots: usize,
    /// Slots one mapping effectively occupies, alignment waste included.
    pub slots_with_alignment: usize,
    pub per_segment: usize,
    pub segments: u64,
    pub why: String,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub classes: Vec<ClassDemand>,
    pub nslabs: usize,
    pub segments_available: u64,
    pub segments_needed: u64,
    /// Bouncing mappings times their slots (no alignment waste).
    pub demand_slots: u64,
    /// Positive: slots to spare at worst case; negative: slots short.
    pub margin_slots: i64,
    pub will_exhaust: bool,
    pub message: String,
}

fn page_aligned(generation: Generation, size: usize) -> bool {
    match generation {
        Generation::Modern => size >= PAGE_SIZE,
        _ => size > PAGE_SIZE,
    }
}

/// Predict exhaustion of `pool` by `classes`.
pub fn predict(classes: &[MapClass], pool: &SwiotlbConfig) -> Prediction {
    let mut out = Vec::new();
    let mut needed: u64 = 0;
    let mut infinite = false;
    let mut demand_slots = 0u64;
    for c in classes {
        let bouncing = (c.count as f64 * c.bounce_fraction.clamp(0.0, 1.0)).ceil() as u64;
        let nslots = nr_slots(c.size.max(1));
        let step = if page_aligned(pool.generation, c.size) { nslots.next_multiple_of(2) } else { nslots };
        let per_segment = if nslots > IO_TLB_SEGSIZE { 0 } else { (IO_TLB_SEGSIZE - nslots) / step + 1 };
        let segments = if bouncing == 0 {
            0
        } else if per_segment == 0 {
            infinite = true;
            u64::MAX
        } else {
            bouncing.div_ceil(per_segment as u64)
        };
        needed = needed.saturating_add(segments);
        demand_slots += bouncing * nslots as u64;
        out.push(ClassDemand {
            name: c.name.clone(),
            bouncing,
            nslots,
            slots_with_alignment: step,
            per_segment,
            segments,
            why: c.why.clone(),
        });
    }
    let available = (pool.nslabs / IO_TLB_SEGSIZE) as u64;
    let will_exhaust = infinite || needed > available;
    let margin_slots = if infinite {
        i64::MIN
    } else {
        (available as i64 - needed.min(i64::MAX as u64) as i64) * IO_TLB_SEGSIZE as i64
    };
    let terms: Vec<String> = out
        .iter()
        .filter(|d| d.bouncing > 0)
        .map(|d| format!("{} {} x {} slots ({} per segment)", d.bouncing, d.name, d.nslots, d.per_segment))
        .collect();
    let lhs = if terms.is_empty() { "no bouncing mappings".to_string() } else { terms.join(" + ") };
    let message = if will_exhaust {
        format!(
            "{lhs} = {} segments ({} slots) > {} segments ({} slots, {} MiB): will exhaust{}",
            if infinite { "unbounded".to_string() } else { needed.to_string() },
            needed.saturating_mul(IO_TLB_SEGSIZE as u64),
            available,
            pool.nslabs,
            pool.bytes() >> 20,
            if infinite { String::new() } else { format!(" (short by {} slots)", -margin_slots) }
        )
    } else {
        format!(
            "{lhs} = {needed} segments ({} slots) <= {available} segments ({} slots, {} MiB): fits, margin {margin_slots} slots",
            needed * IO_TLB_SEGSIZE as u64,
            pool.nslabs,
            pool.bytes() >> 20
        )
    };
    Prediction {
        classes: out,
        nslabs: pool.nslabs,
        segments_available: available,
        segments_needed: needed,
        demand_slots,
        margin_slots,
        will_exhaust,
        message,
    }
}
