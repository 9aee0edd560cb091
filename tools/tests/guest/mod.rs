//! Pieces shared by the guest-booting tests (vfio_guest.rs, lava_guest.rs): a newc cpio
//! writer, the Debian guest kernel, and the initramfs that carries busybox, nicqual with
//! its shared libraries and a list of kernel modules.

use std::path::{Path, PathBuf};
use std::process::Command;

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

pub const INSTALL: &str =
    "install them with `make deps` (apt-get install qemu-system-x86 linux-image-amd64 busybox-static)";

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

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}; {INSTALL}", p.display()))
}

/// The guest kernel: `NICQUAL_GUEST_KERNEL`, else the newest /boot/vmlinuz-V whose
/// /lib/modules/V has vfio-pci. Returns (vmlinuz, modules dir).
pub fn guest_kernel() -> (PathBuf, PathBuf) {
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
                (k.exists() && dir.join("kernel/drivers/vfio/pci/vfio-pci.ko").exists()).then_some((k, dir))
            })
            .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| panic!("no /boot/vmlinuz-V with vfio-pci in /lib/modules/V; {INSTALL}"))
}

/// The shared libraries `ldd` lists for `bin` (absolute paths, as the loader wants them).
fn shared_libs(bin: &Path) -> Vec<PathBuf> {
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

/// Pack `init` as /init, busybox, nicqual with its libraries and the kernel `modules`
/// (name, path under `modules_dir`/kernel) as /lib/modules/NAME.ko.
pub fn initramfs(init: &[u8], nicqual: &Path, modules_dir: &Path, modules: &[(&str, &str)]) -> Vec<u8> {
    let mut c = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "tmp", "run", "lib", "lib64", "lib/modules", "lib/x86_64-linux-gnu"] {
        c.dir(d);
    }
    // The kernel opens /dev/console for init's stdio before init mounts devtmpfs.
    c.entry("dev/console", 0o020600, (5, 1), &[]);
    c.file("init", 0o755, init);
    c.file("bin/sh", 0o755, &read(Path::new("/bin/busybox")));
    c.file("bin/busybox", 0o755, &read(Path::new("/bin/busybox")));
    c.file("bin/nicqual", 0o755, &read(nicqual));
    for lib in shared_libs(nicqual) {
        let name = lib.to_string_lossy().trim_start_matches('/').to_string();
        // Parent directories beyond the ones made above (e.g. /usr/lib/...).
        let mut parent = String::new();
        for part in name.split('/').collect::<Vec<_>>().iter().rev().skip(1).rev() {
            parent = if parent.is_empty() { part.to_string() } else { format!("{parent}/{part}") };
            if !["lib", "lib64", "lib/x86_64-linux-gnu"].contains(&parent.as_str()) {
                c.dir(&parent);
            }
        }
        c.file(&name, 0o755, &read(&lib));
    }
    for (m, rel) in modules {
        c.file(&format!("lib/modules/{m}.ko"), 0o644, &read(&modules_dir.join("kernel").join(rel)));
    }
    c.finish()
}
