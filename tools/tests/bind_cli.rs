//! `nicqual bind` / `nicqual unbind` on a fake sysfs + procfs tree: what each refuses, the
//! exit codes (0 done, 1 the kernel did not do it, 2 usage/refused, 3 environment), and
//! that a refused command writes nothing.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::Command;

const NIC: &str = "0000:00:04.0";

/// A fake tree: one e1000e NIC in IOMMU group 3, vfio-pci loaded, empty routing tables.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let t = Tree { dir: tempfile::tempdir().unwrap() };
        for d in ["sys/bus/pci/devices", "sys/kernel/iommu_groups/3/devices", "dev/vfio", "state", "proc/net"] {
            fs::create_dir_all(t.p(d)).unwrap();
        }
        fs::write(t.p("sys/bus/pci/drivers_probe"), "").unwrap();
        fs::write(t.p("proc/net/route"), "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n").unwrap();
        fs::write(t.p("proc/net/ipv6_route"), "").unwrap();
        fs::write(t.p("dev/vfio/3"), "").unwrap();
        for d in ["e1000e", "vfio-pci"] {
            fs::create_dir_all(t.p(&format!("sys/bus/pci/drivers/{d}"))).unwrap();
            fs::write(t.p(&format!("sys/bus/pci/drivers/{d}/bind")), "").unwrap();
            fs::write(t.p(&format!("sys/bus/pci/drivers/{d}/unbind")), "").unwrap();
        }
        t.function(NIC, 0x020000, Some("e1000e"));
        t
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn function(&self, addr: &str, class: u32, driver: Option<&str>) {
        let d = self.p(&format!("sys/bus/pci/devices/{addr}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("vendor"), "0x8086\n").unwrap();
        fs::write(d.join("device"), "0x10d3\n").unwrap();
        fs::write(d.join("class"), format!("{class:#08x}\n")).unwrap();
        fs::write(d.join("driver_override"), "(null)\n").unwrap();
        if let Some(drv) = driver {
            symlink(self.p(&format!("sys/bus/pci/drivers/{drv}")), d.join("driver")).unwrap();
        }
        symlink(self.p("sys/kernel/iommu_groups/3"), d.join("iommu_group")).unwrap();
    }

    fn netdev(&self, ifname: &str, operstate: &str, flags: u32) {
        let d = self.p(&format!("sys/bus/pci/devices/{NIC}/net/{ifname}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("operstate"), format!("{operstate}\n")).unwrap();
        fs::write(d.join("flags"), format!("{flags:#x}\n")).unwrap();
    }

    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let root = |r: &str| self.p(r).to_str().unwrap().to_string();
        let o = Command::new(env!("CARGO_BIN_EXE_nicqual"))
            .args(args)
            .args(["--sysfs-root", &root("sys"), "--dev-root", &root("dev"), "--state-dir", &root("state")])
            .args(["--proc-root", &root("proc")])
            .output()
            .expect("run nicqual");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Every entry of the tree: a symlink's target, a file's bytes, a directory as empty.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut seen = BTreeMap::new();
        let mut todo = vec![self.dir.path().to_path_buf()];
        while let Some(d) = todo.pop() {
            for p in fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()) {
                let kind = fs::symlink_metadata(&p).unwrap().file_type();
                let v = match (kind.is_symlink(), kind.is_dir()) {
                    (true, _) => fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes(),
                    (false, true) => {
                        todo.push(p.clone());
                        Vec::new()
                    }
                    (false, false) => fs::read(&p).unwrap(),
                };
                seen.insert(p, v);
            }
        }
        seen
    }
}

#[test]
fn refusals_exit_2_and_write_nothing() {
    let t = Tree::new();
    t.netdev("enp0s4", "up", 0x1003);
    t.function("0000:01:00.0", 0x010802, Some("e1000e"));
    t.function("0000:00:00.0", 0x060000, None);
    let before = t.snapshot();
    for (addr, says) in [
        (NIC, "network interface enp0s4 up (operstate up)"),
        ("0000:01:00.0", "0x010802 (NVMe controller), not a network controller"),
        ("0000:00:00.0", "host bridge"),
    ] {
        let (code, _, err) = t.run(&["bind", addr]);
        assert_eq!(code, Some(2), "{addr}: {err}");
        assert!(err.contains("refused") && err.contains(addr) && err.contains(says), "{addr}: {err}");
    }
    assert_eq!(t.snapshot(), before);
    // Not a PCI address at all: usage.
    let (code, _, err) = t.run(&["bind", "../../etc"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn force_prints_what_it_overrides_and_goes_ahead() {
    let t = Tree::new();
    t.netdev("enp0s4", "up", 0x1003);
    // The fake kernel binds nothing, so the forced bind goes ahead, fails its check and
    // is rolled back: exit 1, the original driver rebound.
    let (code, _, err) = t.run(&["bind", NIC, "--force"]);
    assert!(err.contains("--force: overriding: ") && err.contains("enp0s4"), "{err}");
    assert!(err.contains("rolled back: driver_override restored, bound to e1000e again"), "{err}");
    assert_eq!(code, Some(1), "{err}");
    let dev = t.p(&format!("sys/bus/pci/devices/{NIC}"));
    assert_eq!(fs::read_to_string(dev.join("driver_override")).unwrap(), "\n");
    assert_eq!(fs::read_to_string(t.p("sys/bus/pci/drivers/e1000e/unbind")).unwrap(), NIC);
    assert_eq!(fs::read_to_string(t.p("sys/bus/pci/drivers/e1000e/bind")).unwrap(), NIC);
}

#[test]
fn environment_problems_exit_3() {
    let t = Tree::new();
    for cmd in ["bind", "unbind"] {
        let o = Command::new(env!("CARGO_BIN_EXE_nicqual"))
            .args([cmd, NIC, "--sysfs-root", t.p("nowhere").to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{cmd}: {err}");
        assert!(err.contains("no sysfs PCI tree"), "{cmd}: {err}");
    }
    fs::remove_dir_all(t.p("sys/bus/pci/drivers/vfio-pci")).unwrap();
    let (code, _, err) = t.run(&["bind", NIC]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("modprobe vfio-pci"), "{err}");
    for cmd in ["bind", "unbind"] {
        let (code, _, err) = t.run(&[cmd, "0000:00:09.0"]);
        assert_eq!(code, Some(3), "{cmd}: {err}");
        assert!(err.contains("0000:00:09.0: no such PCI function"), "{cmd}: {err}");
    }
}

#[test]
fn unbind_refuses_what_nicqual_did_not_bind_and_bad_state_files() {
    let t = Tree::new();
    let before = t.snapshot();
    let (code, out, err) = t.run(&["unbind", NIC]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not bound by nicqual") && err.contains("nothing changed"), "{err}");
    assert!(!out.contains("released") && !err.contains("released"), "{out}{err}");
    assert_eq!(t.snapshot(), before);
    fs::write(t.p(&format!("state/{NIC}.driver")), format!("{NIC} ../../../etc\n")).unwrap();
    let before = t.snapshot();
    let (code, _, err) = t.run(&["unbind", NIC]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not a driver name"), "{err}");
    assert_eq!(t.snapshot(), before);
}
