//! `dom0-memory-squeeze`: dom0 boots with all host memory and sizes its receive buffers
//! for it; guests are started one a second, each taking memory dom0 balloons out, while
//! traffic flows to the guests already running; later a dom0 job takes some memory for two
//! seconds. Three runs on the same seeded traffic:
//!
//! * `boot-sized` — the field: ring depth fixed at boot, refill only on completion;
//! * `adaptive` — nicqual: depth from memory available now, surplus released, timed retries;
//! * `dom0-mem-cap` — the field's fix: `dom0_mem=` at boot, boot-time sizing.
//!
//! The run record has one check per run with the key numbers as measurements.

use super::Scenario;
use super::story::{Platform, Story, check, expect_field_failure, print_checks, record};
use nicqual_backends::xen::Dom0Pages;
use nicqual_model::xen::balloon::{ALLOC_FAILURE_LINE, MemoryConfig, PAGES_PER_MIB, XenMemory};
use nicqual_pci::CheckReport;
use nicqual_report as rep;
use nicqual_xen::rxpool::{PageSource, RxPoolConfig, RxPools, Sizing};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::io::Write;

pub const NAME: &str = "dom0-memory-squeeze";
pub const SUMMARY: &str =
    "dom0 sized its rx buffers for all host RAM, then ballooned down for guests: rings starve, guests unreachable";

/// Host RAM, Xen's share, dom0's fixed use.
const HOST_MIB: u64 = 4096;
const XEN_MIB: u64 = 64;
const DOM0_FIXED_MIB: u64 = 300;
/// Guests started, one a second from t = 1 s, each of this many pages (244.5 MiB).
pub const GUESTS: usize = 15;
const GUEST_PAGES: u64 = 62_583;
/// `dom0_mem=` of the capped run: what is left of the host once the guests have theirs.
pub const DOM0_MEM_MIB: u64 = 365;
/// A dom0 job takes this much memory from t = 18.05 s to t = 20 s.
const HOG_PAGES: u64 = 2_000;
const HOG_FROM_NS: u64 = 18 * SEC + 50_000_000;
const HOG_UNTIL_NS: u64 = 20 * SEC;
/// Traffic: one packet every 200 µs to a random running guest, for 24 s.
const GAP_NS: u64 = 200_000;
pub const END_NS: u64 = 24 * SEC;
/// Guests count as reachable when they received a packet in the last two seconds.
const WINDOW_FROM_NS: u64 = 22 * SEC;
const SEC: u64 = 1_000_000_000;

/// One run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub label: &'static str,
    pub sizing: Sizing,
    pub dom0_mem_mib: Option<u64>,
    pub guests_started: usize,
    /// When the last guest started (ns), if it did.
    pub last_guest_at_ns: Option<u64>,
    pub depth_at_end: u32,
    pub boot_depth: u32,
    /// Guests that received at least one packet in the last two seconds.
    pub reachable_at_end: usize,
    pub empty_rings_at_end: usize,
    pub sent: u64,
    pub delivered: u64,
    pub dropped_no_buffer: u64,
    /// In the last two seconds.
    pub window_sent: u64,
    pub window_delivered: u64,
    pub alloc_failures: u64,
    pub retries: u64,
    pub resizes: u64,
    pub longest_empty_ns: u64,
    pub first_alloc_failure: Option<(u64, String)>,
    pub report_line: String,
    /// The driver's own lines (nicqual's sizing and retries), first few.
    pub driver_lines: Vec<(u64, String)>,
    pub dom0_free_at_end: u64,
    pub ballooned_out: u64,
}

fn memory(cap: Option<u64>) -> XenMemory {
    XenMemory::new(MemoryConfig {
        host_pages: HOST_MIB * PAGES_PER_MIB,
        xen_pages: XEN_MIB * PAGES_PER_MIB,
        dom0_mem_pages: cap.map(|m| m * PAGES_PER_MIB),
        dom0_fixed_pages: DOM0_FIXED_MIB * PAGES_PER_MIB,
    })
}

/// Run one configuration.
pub fn simulate(seed: u64, label: &'static str, sizing: Sizing, cap: Option<u64>) -> Run {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut mem = memory(cap);
    let mut pools = RxPools::new(RxPoolConfig::new(sizing), Dom0Pages(&mut mem).boot_pages());
    let boot_depth = pools.depth();
    let mut window = [0u64; GUESTS];
    let (mut sent, mut delivered, mut window_sent) = (0u64, 0u64, 0u64);
    let mut last_guest_at_ns = None;
    let mut hog_on = false;
    let mut now = 0;
    while now < END_NS {
        // Toolstack: the next guest is due one second after the previous one.
        let started = mem.guests();
        if started < GUESTS && now >= (started as u64 + 1) * SEC {
            let target = mem.dom0_target();
            if mem.try_start_guest(GUEST_PAGES, now) {
                pools.add_vif(&mut Dom0Pages(&mut mem), now);
                last_guest_at_ns = Some(now);
            } else if mem.dom0_target() != target {
                // The balloon target moved: the driver's xenstore watch fires.
                pools.memory_changed(&mut Dom0Pages(&mut mem), now);
            }
        }
        if !hog_on && (HOG_FROM_NS..HOG_UNTIL_NS).contains(&now) {
            mem.hog(HOG_PAGES);
            hog_on = true;
        } else if hog_on && now >= HOG_UNTIL_NS {
            mem.release_hog();
            hog_on = false;
        }
        pools.tick(&mut Dom0Pages(&mut mem), now);
        let vifs = pools.vifs();
        if vifs > 0 {
            let v = rng.random_range(0..vifs);
            sent += 1;
            let ok = pools.receive(&mut Dom0Pages(&mut mem), v, now);
            delivered += u64::from(ok);
            if now >= WINDOW_FROM_NS {
                window_sent += 1;
                if ok && let Some(w) = window.get_mut(v) {
                    *w += 1;
                }
            }
        }
        now += GAP_NS;
    }
    let vifs = pools.vifs();
    let stats: Vec<_> = (0..vifs).filter_map(|v| pools.vif_stats(v)).collect();
    Run {
        label,
        sizing,
        dom0_mem_mib: cap,
        guests_started: mem.guests(),
        last_guest_at_ns,
        depth_at_end: pools.depth(),
        boot_depth,
        reachable_at_end: window.iter().take(vifs).filter(|&&n| n > 0).count(),
        empty_rings_at_end: pools.empty_rings(),
        sent,
        delivered,
        dropped_no_buffer: stats.iter().map(|s| s.dropped_no_buffer).sum(),
        window_sent,
        window_delivered: window.iter().sum(),
        alloc_failures: pools.stats.alloc_failures,
        retries: pools.stats.retries,
        resizes: pools.stats.resizes,
        longest_empty_ns: (0..vifs).map(|v| pools.max_empty_ns(v, END_NS)).max().unwrap_or(0),
        first_alloc_failure: mem.log().iter().find(|l| l.1 == ALLOC_FAILURE_LINE).cloned(),
        report_line: pools.report_line(END_NS),
        driver_lines: pools.log().iter().take(8).cloned().collect(),
        dom0_free_at_end: mem.free_pages(),
        ballooned_out: mem.stats.ballooned_out,
    }
}

/// The registry entry.
pub const SCENARIO: Scenario = Scenario {
    name: NAME,
    summary: SUMMARY,
    run,
    no_wire: Some(
        "its traffic is counted per vif against dom0's receive pools (page counts, no frame contents): there is no wire in the model",
    ),
};

const PLATFORM: Platform = Platform {
    backend: "model:xen-memory (Xen heap, dom0 balloon, toolstack; page counts)",
    spec: "model:xen-dom0",
    device: "Xen dom0 back end receive buffers (15 vifs)",
    driver: "nicqual-xen rxpool",
};

fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// One check per run: every guest started and reachable at the end.
pub fn checks(runs: &[Run]) -> Vec<CheckReport> {
    runs.iter()
        .map(|r| {
            let ok = r.guests_started == GUESTS && r.reachable_at_end == GUESTS;
            let detail = format!(
                "{}: {}/{} guests started, {}/{} reachable in the last 2 s ({}/{} packets), depth {} (boot {}); {}",
                r.label,
                r.guests_started,
                GUESTS,
                r.reachable_at_end,
                r.guests_started,
                r.window_delivered,
                r.window_sent,
                r.depth_at_end,
                r.boot_depth,
                r.report_line
            );
            let c = check(&format!("{NAME}.{}", r.label), ok, detail)
                .measure("guests_started", r.guests_started as f64, "guests")
                .measure("reachable_at_end", r.reachable_at_end as f64, "guests")
                .measure("empty_rings_at_end", r.empty_rings_at_end as f64, "rings")
                .measure("depth_at_end", f64::from(r.depth_at_end), "buffers")
                .measure("window_delivered", r.window_delivered as f64, "packets")
                .measure("window_sent", r.window_sent as f64, "packets")
                .measure("dropped_no_buffer", r.dropped_no_buffer as f64, "packets")
                .measure("alloc_failures", r.alloc_failures as f64, "allocations")
                .measure("retries", r.retries as f64, "refills")
                .measure("longest_empty", r.longest_empty_ns as f64, "ns");
            // Boot-time sizing is the field's configuration: its outage is the failure
            // being reproduced.
            if r.label == "boot-sized" { expect_field_failure(c) } else { c }
        })
        .collect()
}

pub fn run(seed: u64, out: &mut dyn Write) -> std::io::Result<rep::RunRecord> {
    let started = rep::now_rfc3339();
    let wall = std::time::Instant::now();
    writeln!(out, "scenario {NAME} (seed {seed}; replay: nicqual scenario run {NAME} --seed {seed})")?;
    writeln!(
        out,
        "host: {HOST_MIB} MiB, Xen {XEN_MIB} MiB; dom0 kernel {DOM0_FIXED_MIB} MiB + 1/64 of its boot memory; \
         {GUESTS} guests of {:.1} MiB started one a second from t = 1 s; a dom0 job takes up to {} MiB from 18.05 s to 20 s; \
         one packet every {} us to a random running guest for {} s\n",
        GUEST_PAGES as f64 / PAGES_PER_MIB as f64,
        HOG_PAGES / PAGES_PER_MIB,
        GAP_NS / 1000,
        END_NS / SEC
    )?;
    let field = simulate(seed, "boot-sized", Sizing::Boot, None);
    let nq = simulate(seed, "adaptive", Sizing::Adaptive, None);
    let cap = simulate(seed, "dom0-mem-cap", Sizing::Boot, Some(DOM0_MEM_MIB));
    let runs = [field, nq, cap];
    let [field, nq, cap] = &runs;
    let checks = checks(&runs);
    let first_fail =
        field.first_alloc_failure.as_ref().map_or("none".to_string(), |(t, l)| format!("\"{l}\" at {}", secs(*t)));
    let story = Story {
        field: "dom0 started with all host RAM and sized its network buffers for it; memory was then taken away \
                for guests. The back end logged \"xen_net: Memory squeeze in netback driver.\" and most guests \
                became unreachable until reboot. Field fix: cap dom0's memory at boot (dom0_mem=...)."
            .into(),
        here: format!(
            "Boot-time sizing gave every vif {} buffers. The last guest needed memory dom0 had lent to its rings: \
             the balloon took the pages of consumed buffers until it was paid. From then on refill is greedy, a \
             short ring takes whatever a freed batch offers, and a ring that runs empty gets no completion and so \
             never refills.\nFirst allocation failure: {first_fail}. At the end \
             {}/{} guests were reachable, {} rings empty, {} packets dropped for want of a buffer.\n\
             [inference] The field's line is classic netback's flip path (Xen's heap cannot refill its frame \
             cache); this model is the copy path, where the same shortage is an atomic allocation failure.",
            field.boot_depth, field.reachable_at_end, GUESTS, field.empty_rings_at_end, field.dropped_no_buffer
        ),
        nicqual: format!(
            "Sized the rings from memory available now and again whenever it moved ({} resizes), released \
             surplus buffers at once so the balloon was paid without starving anyone, and retried failed \
             refills on a timer with back-off ({} retries after {} failures).\nAll {}/{} guests reachable at \
             depth {}; longest empty ring {}.\n{}",
            nq.resizes,
            nq.retries,
            nq.alloc_failures,
            nq.reachable_at_end,
            GUESTS,
            nq.depth_at_end,
            secs(nq.longest_empty_ns),
            nq.report_line
        ),
        change: format!(
            "Drivers in a dom0 that balloons: size buffer pools from memory available now, re-evaluate on \
             balloon changes, and refill from a timer, never only from completions.\nUntil then: dom0_mem={}M \
             (boot-time sizing for the memory dom0 keeps): {}/{} guests reachable at depth {}, at the cost of \
             the memory the cap keeps from dom0.",
            DOM0_MEM_MIB, cap.reachable_at_end, GUESTS, cap.depth_at_end
        ),
    };
    story.print(out)?;
    for r in &runs {
        writeln!(out, "{}: {}", r.label, r.report_line)?;
        for (t, l) in &r.driver_lines {
            writeln!(out, "  [{}] {l}", secs(*t))?;
        }
    }
    writeln!(out)?;
    print_checks(out, &checks)?;
    Ok(record(NAME, seed, &PLATFORM, &checks, END_NS * 3, started, wall))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_sizing_starves_most_guests_adaptive_and_the_cap_keep_all() {
        let field = simulate(1, "boot-sized", Sizing::Boot, None);
        assert_eq!(field.boot_depth, 256);
        assert_eq!(field.guests_started, GUESTS);
        assert!(field.reachable_at_end < GUESTS / 2, "{field:?}");
        assert!(field.first_alloc_failure.is_some());
        let nq = simulate(1, "adaptive", Sizing::Adaptive, None);
        assert_eq!((nq.guests_started, nq.reachable_at_end, nq.empty_rings_at_end), (GUESTS, GUESTS, 0));
        assert!(nq.depth_at_end < 256 && nq.depth_at_end > 1, "{}", nq.depth_at_end);
        assert!(nq.retries > 0, "the dom0 job made refills fail and retry");
        let cap = simulate(1, "dom0-mem-cap", Sizing::Boot, Some(DOM0_MEM_MIB));
        assert_eq!((cap.guests_started, cap.reachable_at_end), (GUESTS, GUESTS));
        assert_eq!(cap.ballooned_out, 0, "with the cap dom0 never balloons");
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = serde_json::to_string(&simulate(9, "adaptive", Sizing::Adaptive, None)).unwrap();
        let b = serde_json::to_string(&simulate(9, "adaptive", Sizing::Adaptive, None)).unwrap();
        assert_eq!(a, b);
    }
}
