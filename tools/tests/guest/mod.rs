//! What the guest tests share (`vfio_guest.rs`, `guest_driver.rs`): the initramfs archive,
//! the QEMU process guard, and the serial console with its `@@NQ` markers.
#![allow(dead_code)]

use nicqual_report::RunRecord;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The contents of `p`, or a panic naming it and how to install what is missing.
pub fn read(p: &Path, install: &str) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}; {install}", p.display()))
}

/// The guest kernel: `NICQUAL_GUEST_KERNEL`, else the newest /boot/vmlinuz-V whose
/// /lib/modules/V has `module` (a path under it). Returns (vmlinuz, modules dir).
pub fn kernel_with(module: &str, install: &str) -> (PathBuf, PathBuf) {
    if let Ok(k) = std::env::var("NICQUAL_GUEST_KERNEL") {
        let k = PathBuf::from(k);
        let name = k.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let ver = name.strip_prefix("vmlinuz-").unwrap_or(name);
        return (k.clone(), Path::new("/lib/modules").join(ver));
    }
    let mut found: Vec<(PathBuf, PathBuf)> = std::fs::read_dir("/lib/modules")
        .map(|rd| {
            rd.filter_map(|e| {
                let dir = e.ok()?.path();
                let ver = dir.file_name()?.to_str()?.to_string();
                let k = PathBuf::from(format!("/boot/vmlinuz-{ver}"));
                (k.exists() && dir.join(module).exists()).then_some((k, dir))
            })
            .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| panic!("no /boot/vmlinuz-V with {module} in /lib/modules/V; {install}"))
}

/// The vfio stack in dependency order, then e1000e so the NICs start with their kernel
/// driver (paths under /lib/modules/VERSION/kernel).
pub const VFIO_MODULES: &[(&str, &str)] = &[
    ("irqbypass", "virt/lib/irqbypass.ko"),
    ("vfio", "drivers/vfio/vfio.ko"),
    ("vfio_iommu_type1", "drivers/vfio/vfio_iommu_type1.ko"),
    ("vfio_virqfd", "drivers/vfio/vfio_virqfd.ko"),
    ("vfio-pci-core", "drivers/vfio/pci/vfio-pci-core.ko"),
    ("vfio-pci", "drivers/vfio/pci/vfio-pci.ko"),
    ("e1000e", "drivers/net/ethernet/intel/e1000e/e1000e.ko"),
];

/// What to install when a guest piece is missing.
pub const INSTALL: &str =
    "install them with `make deps` (apt-get install qemu-system-x86 linux-image-amd64 busybox-static)";

/// The guest kernel whose /lib/modules/V has vfio-pci. Returns (vmlinuz, modules dir).
pub fn guest_kernel() -> (PathBuf, PathBuf) {
    kernel_with("kernel/drivers/vfio/pci/vfio-pci.ko", INSTALL)
}

/// Pack `init` as /init (with guest/prelude.sh as /lib/prelude.sh), busybox, nicqual with
/// its libraries and the kernel `modules` (name, path under `modules_dir`/kernel) as
/// /lib/modules/NAME.ko.
pub fn initramfs(init: &[u8], nicqual: &Path, modules_dir: &Path, modules: &[(&str, &str)]) -> Vec<u8> {
    let read = |p: &Path| read(p, INSTALL);
    let mut c = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "tmp", "run", "lib", "lib64", "lib/modules", "lib/x86_64-linux-gnu"] {
        c.dir(d);
    }
    // The kernel opens /dev/console for init's stdio before init mounts devtmpfs.
    c.entry("dev/console", 0o020600, (5, 1), &[]);
    c.file("init", 0o755, init);
    c.file("lib/prelude.sh", 0o644, include_bytes!("prelude.sh"));
    c.file("bin/sh", 0o755, &read(Path::new("/bin/busybox")));
    c.file("bin/busybox", 0o755, &read(Path::new("/bin/busybox")));
    c.binary_with_libs("bin/nicqual", nicqual, INSTALL);
    for (m, rel) in modules {
        c.file(&format!("lib/modules/{m}.ko"), 0o644, &read(&modules_dir.join("kernel").join(rel)));
    }
    c.finish()
}

/// A newc ("070701") cpio archive, the format the kernel unpacks as an initramfs.
#[derive(Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    pub fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let fields = [self.ino, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, (0, 0), &[]);
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, (0, 0), data);
    }

    /// `bin` at its own path in the archive, with the shared libraries `ldd` lists for it
    /// (and any parent directory of theirs besides /lib, /lib64 and
    /// /lib/x86_64-linux-gnu, which the caller makes).
    pub fn binary_with_libs(&mut self, dest: &str, bin: &Path, install: &str) {
        self.file(dest, 0o755, &read(bin, install));
        for lib in shared_libs(bin) {
            let name = lib.to_string_lossy().trim_start_matches('/').to_string();
            let mut parent = String::new();
            for part in name.split('/').collect::<Vec<_>>().iter().rev().skip(1).rev() {
                parent = if parent.is_empty() { part.to_string() } else { format!("{parent}/{part}") };
                if !["lib", "lib64", "lib/x86_64-linux-gnu"].contains(&parent.as_str()) {
                    self.dir(&parent);
                }
            }
            self.file(&name, 0o755, &read(&lib, install));
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

/// The shared libraries `ldd` lists for `bin` (absolute paths, as the loader wants them).
pub fn shared_libs(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().unwrap_or_else(|e| panic!("ldd {}: {e}", bin.display()));
    assert!(out.status.success(), "ldd {}: {}", bin.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The QEMU process; killed (and reaped) however the test ends.
pub struct Vm(pub Child);

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Read QEMU's console (its stdout) line by line until the guest prints `@@NQ done`, QEMU
/// exits, or `bound` from `t0` passes; then give the guest a moment to power off.
pub fn collect(vm: &mut Vm, bound: Duration, t0: Instant) -> Vec<String> {
    let (tx, rx) = mpsc::channel();
    let out = vm.0.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).split(b'\n').map_while(Result::ok) {
            let l = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        let left = bound.saturating_sub(t0.elapsed());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let done = l.starts_with("@@NQ done");
                lines.push(l);
                if done {
                    break;
                }
            }
            // Timed out, or QEMU exited (its stdout closed).
            Err(_) => break,
        }
    }
    // The guest powers itself off; give it a moment, then the guard kills QEMU regardless.
    for _ in 0..50 {
        if vm.0.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    lines
}

/// What the guest printed: `@@NQ` lines, `begin`/`end` blocks with their exit codes, and
/// the whole console.
pub struct Console {
    pub lines: Vec<String>,
    pub blocks: BTreeMap<String, (String, Option<i32>)>,
    pub done: bool,
}

impl Console {
    pub fn parse(lines: Vec<String>) -> Console {
        let mut blocks = BTreeMap::new();
        let mut open: Option<(String, String)> = None;
        let mut done = false;
        for l in &lines {
            if let Some(rest) = l.strip_prefix("@@NQ begin ") {
                open = Some((rest.trim().to_string(), String::new()));
            } else if let Some(rest) = l.strip_prefix("@@NQ end ") {
                let mut it = rest.split_whitespace();
                let name = it.next().unwrap_or_default().to_string();
                let rc = it.next().and_then(|r| r.strip_prefix("rc=")).and_then(|r| r.parse().ok());
                if let Some((n, body)) = open.take()
                    && n == name
                {
                    blocks.insert(name, (body, rc));
                }
            } else if let Some((_, body)) = open.as_mut() {
                body.push_str(l);
                body.push('\n');
            } else if l.starts_with("@@NQ done") {
                done = true;
            }
        }
        Console { lines, blocks, done }
    }

    pub fn block(&self, name: &str) -> Option<&(String, Option<i32>)> {
        self.blocks.get(name)
    }

    /// `@@NQ KEY ...` lines, without the prefix.
    pub fn marks(&self, key: &str) -> Vec<String> {
        let p = format!("@@NQ {key} ");
        self.lines.iter().filter_map(|l| l.strip_prefix(&p).map(str::to_string)).collect()
    }

    /// The guest's kernel log tail, or the console tail when the guest never got that far.
    pub fn kernel_log_tail(&self) -> String {
        match self.block("dmesg") {
            Some((log, _)) => {
                let v: Vec<&str> = log.lines().collect();
                v.get(v.len().saturating_sub(60)..).unwrap_or_default().join("\n")
            }
            None => {
                let n = self.lines.len();
                format!(
                    "(no dmesg block; console tail)\n{}",
                    self.lines.get(n.saturating_sub(60)..).unwrap_or_default().join("\n")
                )
            }
        }
    }

    /// Fail the test naming `what`, with the guest kernel log tail.
    pub fn fail(&self, what: &str) -> ! {
        panic!("{what}\n--- guest kernel log (tail) ---\n{}\n--- end of guest kernel log ---", self.kernel_log_tail())
    }

    /// The run record the block `name` printed (`--json -`), and the exit code.
    pub fn record(&self, name: &str) -> (RunRecord, i32) {
        let Some((body, rc)) = self.block(name) else { self.fail(&format!("the guest printed no `{name}` block")) };
        let stderr = self.block(&format!("{name}.stderr")).map(|b| b.0.as_str()).unwrap_or_default();
        let start = body
            .find('{')
            .unwrap_or_else(|| self.fail(&format!("`{name}` printed no JSON (exit {rc:?}); its stderr:\n{stderr}")));
        let rec = serde_json::from_str(body.get(start..).unwrap_or_default()).unwrap_or_else(|e| {
            self.fail(&format!("`{name}`: run record does not parse: {e}\n{body}\nstderr:\n{stderr}"))
        });
        (rec, rc.unwrap_or(-1))
    }
}

#[test]
fn cpio_newc_layout() {
    let mut c = Cpio::default();
    c.file("init", 0o755, b"#!/bin/sh\n");
    let a = c.finish();
    assert_eq!(a.get(..6), Some(&b"070701"[..]));
    // Header 110 bytes + "init\0" padded to 4, then the data padded to 4.
    assert_eq!(a.get(110..115), Some(&b"init\0"[..]));
    assert_eq!(a.get(116..126), Some(&b"#!/bin/sh\n"[..]));
    let mode = std::str::from_utf8(a.get(14..22).unwrap()).unwrap();
    assert_eq!(u32::from_str_radix(mode, 16).unwrap(), 0o100755);
    assert!(a.windows(10).any(|w| w == b"TRAILER!!!"));
    assert!(a.len().is_multiple_of(4));
}
