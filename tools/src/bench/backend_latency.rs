//! Per-register-operation cost of each backend (`nicqual bench --backend-latency`): the same
//! calls through the `Backend` trait — a BAR0 register read (STATUS), a BAR0 register write
//! (RDBAH, a plain read/write register with no side effect), and a 4-byte config-space
//! read — on the in-process emulated 82574L, on the same model served over qtest by
//! `nicqual serve-qtest`, and on QEMU's e1000e over qtest. A qtest operation is a request
//! line, a socket round trip and a reply line (config accesses take two: 0xCF8 then 0xCFC).

use super::Args;
use nicqual_backends::emulated::EmulatedBackend;
use nicqual_backends::qtest::{QemuConfig, QtestBackend, Target};
use nicqual_hw::i82574 as r;
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_pci::Backend;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// One measured (backend, operation) pair.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub backend: String,
    pub op: &'static str,
    pub ops: u64,
    pub ns_per_op: f64,
    /// Cost relative to the same operation on the emulated backend.
    pub vs_emulated: f64,
}

type Op = (&'static str, fn(&mut dyn Backend));

const OPS: [Op; 3] = [
    ("read32 STATUS", |b| {
        std::hint::black_box(b.read32(r::BAR_REGS, r::STATUS as u64));
    }),
    ("write32 RDBAH", |b| b.write32(r::BAR_REGS, r::rdbah(0) as u64, 0x1234_5678)),
    ("config_read 4", |b| {
        std::hint::black_box(b.config_read(0, 4).ok());
    }),
];

/// Run `op` in rounds of 64 until `budget` has passed (at least one round).
fn time_op(b: &mut dyn Backend, op: fn(&mut dyn Backend), budget: Duration) -> (u64, f64) {
    for _ in 0..64 {
        op(b); // warm-up
    }
    let t0 = Instant::now();
    let mut n = 0u64;
    // Bounded by the budget: each round does 64 operations and then checks the clock.
    loop {
        for _ in 0..64 {
            op(b);
        }
        n += 64;
        if t0.elapsed() >= budget || crate::interrupt::interrupted() {
            break;
        }
    }
    (n, t0.elapsed().as_nanos() as f64 / n as f64)
}

/// A backend under test, or why it could not be started.
type Started = Result<Box<dyn Backend>, String>;

fn backends() -> Vec<(String, Started)> {
    let served = QtestBackend::spawn(Target::Server {
        program: std::env::current_exe().unwrap_or_else(|_| "nicqual".into()),
        args: vec!["serve-qtest".into()],
        slot: 4,
        ram_mib: 16,
        start_timeout: Duration::from_secs(20),
    });
    let qemu = QtestBackend::spawn(Target::Qemu(QemuConfig::default()));
    let boxed = |b: Result<QtestBackend, nicqual_pci::BackendError>| {
        b.map(|b| Box::new(b) as Box<dyn Backend>).map_err(|e| e.to_string())
    };
    vec![
        (
            "emulated (model:i82574l, in-process)".into(),
            Ok(Box::new(EmulatedBackend::new(Model::new(Config::default()), "model:i82574l")) as Box<dyn Backend>),
        ),
        ("qtest (serve-qtest, our model)".into(), boxed(served)),
        ("qtest (QEMU e1000e)".into(), boxed(qemu)),
    ]
}

pub fn run(a: &Args) -> ExitCode {
    let budget = Duration::from_secs_f64((a.seconds / 3.0).clamp(0.001, 60.0));
    let mut rows: Vec<Row> = Vec::new();
    let mut errors = Vec::new();
    let mut base = [0f64; OPS.len()];
    for (i, (name, b)) in backends().into_iter().enumerate() {
        let mut b = match b {
            Ok(b) => b,
            Err(e) => {
                errors.push(format!("{name}: {e}"));
                continue;
            }
        };
        for (k, (op_name, op)) in OPS.iter().enumerate() {
            let (ops, ns) = time_op(b.as_mut(), *op, budget);
            if i == 0
                && let Some(slot) = base.get_mut(k)
            {
                *slot = ns;
            }
            let vs = base.get(k).copied().filter(|x| *x > 0.0).map_or(f64::NAN, |e| ns / e);
            rows.push(Row { backend: name.clone(), op: op_name, ops, ns_per_op: ns, vs_emulated: vs });
        }
        // Dropping the backend kills its server process.
    }
    println!("{:<40} {:<15} {:>12} {:>10} {:>12}", "backend", "operation", "ns/op", "ops", "x emulated");
    for r in &rows {
        println!("{:<40} {:<15} {:>12.1} {:>10} {:>12.1}", r.backend, r.op, r.ns_per_op, r.ops, r.vs_emulated);
    }
    for e in &errors {
        eprintln!("nicqual: bench --backend-latency: {e}");
    }
    if let Some(p) = &a.json {
        let v = serde_json::json!({ "mode": "backend-latency", "seconds_per_op": budget.as_secs_f64(), "results": rows, "errors": errors });
        if let Err(e) = super::write_json(p, &v) {
            eprintln!("nicqual: {e}");
            return ExitCode::from(2);
        }
    }
    if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
