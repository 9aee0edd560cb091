//! Linux's own e1000e driver against nicqual's 82574L model: the model is served over
//! vfio-user by `nicqual serve-vfio-user`, QEMU 11.1 (from the Debian forky root,
//! `scripts/forky-root.sh`) attaches it with its `vfio-user-pci` client, and the host's
//! Debian kernel boots with a busybox initramfs that loads `e1000e.ko`. This side reads the
//! serial console and asserts on what the driver printed.
//!
//! Boots a VM (TCG, about 20 s), so it is `#[ignore]`d in the plain `cargo test` run and run
//! by `make test-guest-driver` (part of `make test`). Needs root (the forky chroot), the
//! forky root (built on first use: `bash scripts/forky-root.sh build`, about 300 MB) and the
//! Debian packages `linux-image-amd64 busybox-static`. `NICQUAL_GUEST_KERNEL` (a vmlinuz
//! whose modules are in /lib/modules/VERSION) overrides the kernel found.

mod guest;

use guest::{Console, Cpio, Vm};
use nicqual_backends::qtest::forky;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on one guest run (boot, probe, link, traffic, power-off).
const GUEST_BOUND: Duration = Duration::from_secs(180);
const E1000E: &str = "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko";
const INSTALL: &str = "install them with `make deps` (apt-get install linux-image-amd64 busybox-static ethtool)";
const ETHTOOL: &str = "/usr/sbin/ethtool";

fn read(p: &Path) -> Vec<u8> {
    guest::read(p, INSTALL)
}

/// /init, busybox and e1000e.ko (it needs no other module on Debian's kernels).
fn initramfs(modules: &Path) -> Vec<u8> {
    let mut c = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "tmp", "run", "lib", "lib64", "lib/modules", "lib/x86_64-linux-gnu"] {
        c.dir(d);
    }
    c.entry("dev/console", 0o020600, (5, 1), &[]);
    c.file("init", 0o755, include_bytes!("guest_driver/init.sh"));
    c.file("lib/prelude.sh", 0o644, include_bytes!("guest/prelude.sh"));
    let busybox = read(Path::new("/bin/busybox"));
    c.file("bin/sh", 0o755, &busybox);
    c.file("bin/busybox", 0o755, &busybox);
    c.file("lib/modules/e1000e.ko", 0o644, &read(&modules.join(E1000E)));
    // ethtool for the driver's register dump, statistics and self-test.
    c.binary_with_libs("bin/ethtool", Path::new(ETHTOOL), INSTALL);
    c.finish()
}

/// The server process; killed (and reaped) however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one boot left: the console, and the server's exit and log.
struct Run {
    console: Console,
    server_ok: bool,
    server_log: String,
    secs: f64,
}

/// Serve the model (with `server_args`), boot the guest against it, collect everything.
fn boot(server_args: &[&str]) -> Run {
    let root = forky::build().unwrap_or_else(|e| panic!("QEMU 11.1 (forky root): {e}"));
    // Paths QEMU sees must be under /tmp (the chroot bind-mounts it).
    let dir = tempfile::Builder::new().prefix("nq-guest-driver").tempdir_in("/tmp").expect("temp dir in /tmp");
    let (kernel, modules) = guest::kernel_with(E1000E, INSTALL);
    let vmlinuz = dir.path().join("vmlinuz");
    std::fs::copy(&kernel, &vmlinuz).unwrap_or_else(|e| panic!("copy {}: {e}", kernel.display()));
    let initrd = dir.path().join("initramfs.cpio");
    std::fs::write(&initrd, initramfs(&modules)).expect("write initramfs");
    let sock = dir.path().join("vfio-user.sock");
    let server = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["serve-vfio-user", "--socket"])
        .arg(&sock)
        .args(server_args)
        .env("RUST_LOG", "nicqual::vfio_user=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nicqual serve-vfio-user");
    let mut server = Server(server);
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "serve-vfio-user never created {}", sock.display());
        if let Ok(Some(st)) = server.0.try_wait() {
            panic!("serve-vfio-user exited before listening: {st}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let device = format!(r#"{{"driver":"vfio-user-pci","socket":{{"type":"unix","path":"{}"}}}}"#, sock.display());
    let args: Vec<String> = [
        "-accel",
        "tcg",
        "-M",
        "q35",
        "-cpu",
        "max",
        "-m",
        "256",
        "-smp",
        "1",
        "-nodefaults",
        "-nic",
        "none",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        // Guest RAM the server can map for the device's DMA (sealed memfd, shared).
        "-object",
        "memory-backend-memfd,id=ram,size=256M,share=on",
        "-machine",
        "memory-backend=ram",
        "-device",
        &device,
        "-kernel",
        &vmlinuz.to_string_lossy(),
        "-initrd",
        &initrd.to_string_lossy(),
        "-append",
        "console=ttyS0 panic=-1 rdinit=/init",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (prog, argv) = forky::qemu_command(&args);
    let child = Command::new(&prog)
        .args(&argv)
        .env(forky::ROOT_ENV, &root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start QEMU 11.1 from {}: {e}", root.display()));
    let mut vm = Vm(child);
    let lines = guest::collect(&mut vm, GUEST_BOUND, t0);
    drop(vm);
    // QEMU gone, the client's socket closed: the server ends by itself.
    let mut server_ok = false;
    for _ in 0..100 {
        if let Ok(Some(st)) = server.0.try_wait() {
            server_ok = st.success();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut server_log = String::new();
    if let Some(mut e) = server.0.stderr.take() {
        let _ = e.read_to_string(&mut server_log);
    }
    drop(server);
    Run { console: Console::parse(lines), server_ok, server_log, secs: t0.elapsed().as_secs_f64() }
}

/// The guest's kernel messages from e1000e.
fn driver_lines(c: &Console) -> Vec<String> {
    c.block("dmesg")
        .map(|(log, _)| log.lines().filter(|l| l.contains("e1000e")).map(str::to_string).collect())
        .unwrap_or_default()
}

#[test]
#[ignore = "boots a QEMU 11.1 guest against the served model (about 20 s of TCG): run by `make test-guest-driver`"]
fn linux_e1000e_probes_the_served_model() {
    let r = boot(&[]);
    let c = &r.console;
    eprintln!("guest driver: {:.1} s wall; {}", r.secs, c.marks("boot").join(" "));
    for l in c.marks("pci") {
        eprintln!("  pci {l}");
    }
    for l in driver_lines(c) {
        eprintln!("  {l}");
    }
    if let Some((irqs, _)) = c.block("interrupts") {
        eprintln!("{irqs}");
    }
    eprintln!("server: {}", r.server_log.trim());
    if !c.done {
        c.fail(&format!("the guest did not finish within {} s (QEMU killed)", GUEST_BOUND.as_secs()));
    }
    assert!(
        c.marks("pci").iter().any(|l| l.contains("0x8086:0x10d3 class 0x020000")),
        "the served 82574L is not on the guest's PCI bus: {:?}",
        c.marks("pci")
    );
    let log = c.block("dmesg").map(|b| b.0.clone()).unwrap_or_default();
    if !log.contains("Intel(R) PRO/1000 Network Connection") {
        c.fail(&format!("e1000e did not probe the served model; its messages:\n{}", driver_lines(c).join("\n")));
    }
    assert!(log.contains("NIC Link is Up"), "no link: {}", driver_lines(c).join("\n"));
    assert_eq!(c.marks("carrier"), vec!["1".to_string()]);
    // The vectors Linux requested, each with interrupts the served model raised.
    let irqs = c.block("interrupts").map(|b| b.0.clone()).unwrap_or_default();
    for name in ["eth0-rx-0", "eth0-tx-0"] {
        assert!(irqs.contains(name), "no {name} vector: {irqs}");
    }
    assert!(r.server_ok, "serve-vfio-user did not exit cleanly after QEMU: {}", r.server_log);
    assert!(r.server_log.contains("(0 refused)"), "QEMU's messages were refused: {}", r.server_log);
    // Traffic through the model: the guest pings the responder behind the model's cable.
    let o = Outcome::of(c);
    eprintln!("{}", o.row("healthy"));
    for (name, (out, rc)) in &c.blocks {
        if name.starts_with("ethtool") || name.starts_with("ping") {
            eprintln!("--- {name} rc={rc:?}\n{}", out.trim_end());
        }
    }
    assert_eq!(c.block("ping").and_then(|b| b.1), Some(0), "ping through the model failed");
    assert!(r.server_log.contains("echo replies") && !r.server_log.contains(" 0 echo replies"), "{}", r.server_log);
    // `ethtool -d` and `-S` readable.
    for (name, what) in [("ethtool-d", "CTRL"), ("ethtool-S", "rx_packets")] {
        let (out, rc) = c.block(name).cloned().unwrap_or_default();
        assert!(rc == Some(0) && out.contains(what), "{name} rc={rc:?}: {out}");
    }
    // Linux's own offline self-test passes every test on the healthy model.
    let (out, rc) = c.block("ethtool-t").cloned().unwrap_or_default();
    assert!(rc == Some(0) && out.contains("The test result is PASS"), "ethtool -t eth0 offline rc={rc:?}:\n{out}");
    assert_eq!(c.block("ping-after-test").and_then(|b| b.1), Some(0), "no traffic after the self-test");
    // Every register Linux touched is modelled.
    assert!(
        r.server_log.contains("touch log: empty"),
        "the healthy run touched registers the model does not implement:\n{}",
        r.server_log
    );
}

/// What Linux's driver did in one run, for docs/GUEST.md.
struct Outcome {
    probed: bool,
    link: bool,
    ping: Option<i32>,
    ping_after: Option<i32>,
    selftest: String,
    messages: Vec<String>,
}

impl Outcome {
    fn of(c: &Console) -> Outcome {
        let log = c.block("dmesg").map(|b| b.0.clone()).unwrap_or_default();
        let selftest = match c.block("ethtool-t") {
            None => "not run".into(),
            Some((out, rc)) => {
                let lines: Vec<&str> = out
                    .lines()
                    .filter(|l| l.contains("result is") || l.contains("(offline)") || l.contains("(on/offline)"))
                    .map(str::trim)
                    .collect();
                format!("rc={} {}", rc.map_or("none".into(), |r| r.to_string()), lines.join("; "))
            }
        };
        // The driver's own messages beyond the routine ones.
        let routine = [
            "Intel(R) PRO/1000",
            "PBA No",
            "MAC:",
            "(PCI Express",
            "NIC Link is Up",
            "offline testing",
            "testing",
            "Copyright",
            "Interrupt Throttling Rate",
            "registered PHC clock",
        ];
        let messages = driver_lines(c)
            .into_iter()
            .filter(|l| !routine.iter().any(|r| l.contains(r)))
            .map(|l| l.split("e1000e").nth(1).map(str::trim).unwrap_or(&l).to_string())
            .collect();
        Outcome {
            probed: log.contains("Intel(R) PRO/1000 Network Connection"),
            link: log.contains("NIC Link is Up"),
            ping: c.block("ping").and_then(|b| b.1),
            ping_after: c.block("ping-after-test").and_then(|b| b.1),
            selftest,
            messages,
        }
    }

    /// One markdown row: fault | probed | link | ping | self-test | ping after | messages.
    fn row(&self, fault: &str) -> String {
        let yn = |b: bool| if b { "yes" } else { "no" };
        let rc = |r: Option<i32>| match r {
            Some(0) => "replies".to_string(),
            Some(n) => format!("no replies (rc {n})"),
            None => "not run".into(),
        };
        let mut msgs = self.messages.clone();
        msgs.dedup();
        msgs.truncate(6);
        format!(
            "| `{fault}` | {} | {} | {} | {} | {} | {} |",
            yn(self.probed),
            yn(self.link),
            rc(self.ping),
            self.selftest.replace('|', "/"),
            rc(self.ping_after),
            msgs.join("<br>").replace('|', "/")
        )
    }
}

/// Interrupt counts of eth0's vectors in the guest's /proc/interrupts: (name, count).
fn vector_counts(c: &Console) -> Vec<(String, u64)> {
    let irqs = c.block("interrupts").map(|b| b.0.clone()).unwrap_or_default();
    irqs.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let name = w.last().filter(|n| n.starts_with("eth0"))?;
            Some((name.to_string(), w.get(1)?.parse().ok()?))
        })
        .collect()
}

/// What Linux's driver did under each of nicqual's faults, as a table on stderr (a finding
/// about Linux, not a target: only the harness itself is asserted — the guest finishes, the
/// server survives the whole session and refuses nothing QEMU sent). The vectors are the
/// three e1000e programs on an 82574L: 0 receive, 1 transmit, 2 other (link).
#[test]
#[ignore = "boots a QEMU 11.1 guest once per fault (about 3 min of TCG): run by `make test-guest-driver`"]
fn linux_e1000e_meets_nicquals_faults() {
    let mut rows = Vec::new();
    for fault in ["", "lose-vector:0", "lose-vector:1", "lose-vector:2", "corrupt-ivar:Other", "surprise-removal@14s"] {
        let args: Vec<&str> = if fault.is_empty() { vec![] } else { vec!["--fault", fault] };
        let r = boot(&args);
        let c = &r.console;
        if !c.done {
            c.fail(&format!("--fault {fault}: the guest did not finish within {} s", GUEST_BOUND.as_secs()));
        }
        assert!(r.server_ok, "--fault {fault}: serve-vfio-user did not exit cleanly: {}", r.server_log);
        assert!(r.server_log.contains("(0 refused)"), "--fault {fault}: {}", r.server_log);
        let log = c.block("dmesg").map(|b| b.0.clone()).unwrap_or_default();
        let probed = log.contains("Intel(R) PRO/1000 Network Connection");
        let after: Vec<String> = driver_lines(c)
            .into_iter()
            .filter(|l| {
                !["Network Driver", "Copyright", "Throttling", "PHC", "PCI Express", "Network Connection", "MAC:"]
                    .iter()
                    .any(|k| l.contains(k))
            })
            .map(|l| l.split_once("] ").map_or(l.clone(), |(_, m)| m.to_string()))
            .collect();
        let ping = c
            .block("ping")
            .and_then(|(b, _)| b.lines().find(|l| l.contains("packets transmitted")).map(str::to_string))
            .unwrap_or_else(|| "no ping summary".into());
        let vectors: Vec<String> = vector_counts(c).iter().map(|(n, k)| format!("{n}={k}")).collect();
        // The self-test and the traffic after it (docs/GUEST.md).
        let o = Outcome::of(c);
        let after_test = match o.ping_after {
            Some(0) => "replies",
            Some(_) => "no replies",
            None => "not run",
        };
        rows.push(format!(
            "| {} | {} | {} → {} | {} | {} | {} | {} | {} |",
            if fault.is_empty() { "(none)" } else { fault },
            if probed { "probed" } else { "no probe" },
            c.marks("carrier").join(""),
            c.marks("carrier-after").join(""),
            vectors.join(" "),
            ping.trim(),
            if after.is_empty() { "—".to_string() } else { after.join("; ") },
            o.selftest.replace('|', "/"),
            after_test,
        ));
        eprintln!("{}", rows.last().map(String::as_str).unwrap_or_default());
    }
    eprintln!(
        "| fault | probe | carrier (before → after traffic) | eth0 vectors | ping 10.0.2.2 (the responder) | e1000e messages after probe | `ethtool -t eth0 offline` | ping after the test |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        eprintln!("{r}");
    }
}
