//! Replay every input of a directory through the `enic_rings` harness, `ROUNDS` times
//! (default 1), and print the rate: what per-input setup costs, without libFuzzer.
//! `cargo run --release -p nicqual-reliability --example enic_rings_replay -- fuzz/corpus/enic_rings [rounds]`
fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "fuzz/corpus/enic_rings".into());
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(1);
    let inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    let t0 = std::time::Instant::now();
    let mut bad = 0;
    for _ in 0..rounds {
        for d in &inputs {
            if let Err(v) = nicqual_reliability::enic_rings::run(d) {
                bad += 1;
                eprintln!("violation: {v}");
            }
        }
    }
    let n = inputs.len() * rounds;
    let s = t0.elapsed().as_secs_f64();
    println!("{n} executions of {} inputs in {s:.2} s: {:.0} exec/s, {bad} violations", inputs.len(), n as f64 / s);
}
