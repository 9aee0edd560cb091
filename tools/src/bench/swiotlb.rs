//! SWIOTLB map+unmap cost as a function of pool occupancy.
//!
//! The pool (64 MiB) is filled with a seeded mix of mapping sizes (1–17 slots, the rx/tx
//! sizes of the bnx2x scenario), then random mappings are released until the target
//! occupancy is reached, which leaves the pool fragmented the way churn does. Then one
//! mapping of the measured size is made and released, over and over: the occupancy stays
//! put. Reported: the median over batches of the mean time per map+unmap pair. Two costs:
//! slot search and bookkeeping only (`alloc`/`free`), and with the bounce copy (`map` of a
//! to-device buffer, `unmap`). The pool's backing memory is touched before measuring.
//! `--json FILE` writes the same rows as JSON (`-` = stdout, the table then goes to stderr).

use nicqual_dma::swiotlb::{DeviceName, DmaDirection, Generation, MapKind, Swiotlb, SwiotlbConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// One measurement.
#[derive(Debug, Clone)]
pub struct Row {
    pub generation: Generation,
    pub size: usize,
    pub target_pct: u32,
    pub used_pct: f64,
    pub alloc_free_ns: f64,
    pub map_unmap_ns: f64,
    pub failures: u64,
}

fn fill(pool: &mut Swiotlb, target_pct: u32, rng: &mut ChaCha8Rng) {
    let dev = DeviceName::new("bnx2x", "0000:04:00.0");
    let total = pool.config().nslabs;
    let over = (total * (target_pct as usize + 8) / 100).min(total);
    let want = total * target_pct as usize / 100;
    let mut live = Vec::new();
    let mut misses = 0;
    while pool.stats().used < over && misses < 1000 {
        let size = rng.random_range(1..=17usize) * 2048 - rng.random_range(0..2048);
        match pool.alloc(&dev, 0, size, DmaDirection::ToDevice, MapKind::Single, 0) {
            Ok(m) => live.push(m.tlb_addr),
            Err(_) => misses += 1,
        }
    }
    while pool.stats().used > want && !live.is_empty() {
        let i = rng.random_range(0..live.len());
        let a = live.swap_remove(i);
        let _ = pool.free(a);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn measure(generation: Generation, size: usize, target_pct: u32, batches: usize, per_batch: usize) -> Row {
    let mut rng = ChaCha8Rng::seed_from_u64(7 + target_pct as u64);
    let mut pool = Swiotlb::new(SwiotlbConfig::default_for(generation));
    // A kernel's pool is resident; a fresh Vec is not. Touch every page first so the
    // figures are the allocator and the copy, not first-touch page faults.
    pool.store_mut().fill(0x5A);
    fill(&mut pool, target_pct, &mut rng);
    let used_pct = pool.stats().used as f64 * 100.0 / pool.config().nslabs as f64;
    let dev = DeviceName::new("bnx2x", "0000:04:00.0");
    let mut failures = 0u64;
    let mut bookkeeping = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..per_batch {
            match pool.alloc(&dev, 0x1000, black_box(size), DmaDirection::ToDevice, MapKind::Single, 0) {
                Ok(m) => {
                    let _ = pool.free(black_box(m.tlb_addr));
                }
                Err(_) => failures += 1,
            }
        }
        bookkeeping.push(t.elapsed().as_nanos() as f64 / per_batch as f64);
    }
    let mut cpu = vec![0xA5u8; size];
    let mut copying = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..per_batch {
            if let Ok(m) = pool.map(&dev, &cpu, 0, 0x1000, size, DmaDirection::ToDevice, MapKind::Single, 0) {
                let _ = pool.unmap(m.tlb_addr, &mut cpu, 0, size, DmaDirection::ToDevice);
            }
        }
        copying.push(t.elapsed().as_nanos() as f64 / per_batch as f64);
    }
    Row {
        generation,
        size,
        target_pct,
        used_pct,
        alloc_free_ns: median(bookkeeping),
        map_unmap_ns: median(copying),
        failures,
    }
}

/// Run, print the table, and with `json` write the rows there.
pub fn run(quick: bool, json: Option<&Path>) -> ExitCode {
    let (batches, per_batch) = if quick { (5, 200) } else { (101, 2000) };
    // With the JSON on stdout, the table goes to stderr.
    let to_stdout = json.is_none_or(|p| p.as_os_str() != "-");
    let say = |line: String| if to_stdout { println!("{line}") } else { eprintln!("{line}") };
    say(format!("SWIOTLB map+unmap, 64 MiB pool, median of {batches} batches x {per_batch} pairs (ns per pair)"));
    say(format!(
        "{:<12} {:>6} {:>9} {:>7} {:>16} {:>20} {:>9}",
        "allocator", "bytes", "occupancy", "actual", "slots only (ns)", "with copy-in (ns)", "failed"
    ));
    let mut rows = Vec::new();
    for generation in [Generation::ClassicXen, Generation::Modern] {
        for size in [1500usize, 9472] {
            for pct in [10u32, 50, 90] {
                let r = measure(generation, size, pct, batches, per_batch);
                say(format!(
                    "{:<12} {:>6} {:>8}% {:>6.1}% {:>16.1} {:>20.1} {:>9}",
                    format!("{:?}", r.generation),
                    r.size,
                    r.target_pct,
                    r.used_pct,
                    r.alloc_free_ns,
                    r.map_unmap_ns,
                    r.failures
                ));
                rows.push(r);
            }
        }
    }
    let Some(path) = json else { return ExitCode::SUCCESS };
    let results: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "allocator": r.generation,
                "bytes": r.size,
                "occupancy_pct": r.target_pct,
                "actual_pct": r.used_pct,
                "slots_only_ns": r.alloc_free_ns,
                "with_copy_in_ns": r.map_unmap_ns,
                "failed": r.failures,
            })
        })
        .collect();
    let v = serde_json::json!({
        "mode": "swiotlb",
        "pool_bytes": SwiotlbConfig::default_for(Generation::Modern).bytes(),
        "batches": batches,
        "pairs_per_batch": per_batch,
        "statistic": "median over batches of the mean ns per map+unmap pair",
        "results": results,
    });
    match super::write_json(path, &v) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nicqual: {e}");
            ExitCode::from(2)
        }
    }
}
