//! What sysfs says about PCI functions, IOMMU groups and VFIO, and binding a function to
//! vfio-pci (driver_override + drivers_probe) and back. The roots of sysfs and /dev are
//! configurable so the tests run against a fake tree.

use super::error::{Blocker, VfioError};
use std::fs;
use std::path::{Path, PathBuf};

/// Drivers a device in the same IOMMU group may be bound to without spoiling the group's
/// viability (the kernel's rule: vfio drivers, pci-stub, and PCIe port drivers; or none).
pub const VIABLE_DRIVERS: &[&str] = &["vfio-pci", "pci-stub", "pcieport"];

/// Where sysfs, /dev and nicqual's binding state live.
#[derive(Debug, Clone)]
pub struct Host {
    pub sys: PathBuf,
    pub dev: PathBuf,
    /// Where `bind` remembers each function's original driver for `unbind`.
    pub state: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Host { sys: "/sys".into(), dev: "/dev".into(), state: "/run/nicqual".into() }
    }
}

/// A validated PCI address, `DDDD:BB:DD.F` (lower case).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PciAddr(String);

impl PciAddr {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `BB:DD.F`, as the kernel's DMAR fault lines name the requester.
    pub fn bdf(&self) -> &str {
        self.0.get(5..).unwrap_or(&self.0)
    }
}

impl std::fmt::Display for PciAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PciAddr {
    type Err = VfioError;

    /// Accepts `DDDD:BB:DD.F` or `BB:DD.F` (domain 0). Strict, because it becomes a path.
    fn from_str(s: &str) -> Result<Self, VfioError> {
        let bad = || VfioError::BadAddress { addr: s.to_string() };
        let full = if s.len() == 7 { format!("0000:{s}") } else { s.to_string() };
        let b = full.as_bytes();
        let at = |i: usize| b.get(i).copied();
        if b.len() != 12 || at(4) != Some(b':') || at(7) != Some(b':') || at(10) != Some(b'.') {
            return Err(bad());
        }
        let hex = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(|c| c.is_ascii_hexdigit()));
        if !(hex(0..4) && hex(5..7) && hex(8..10) && matches!(at(11), Some(b'0'..=b'7'))) {
            return Err(bad());
        }
        let dev = full.get(8..10).and_then(|d| u8::from_str_radix(d, 16).ok()).ok_or_else(bad)?;
        if dev > 0x1f {
            return Err(bad());
        }
        Ok(PciAddr(full.to_ascii_lowercase()))
    }
}

/// One PCI function as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PciFunction {
    pub addr: String,
    pub vendor: u16,
    pub device: u16,
    /// 24-bit class code (0x02xxxx = network controller).
    pub class: u32,
    pub driver: Option<String>,
    pub iommu_group: Option<u32>,
    pub driver_override: Option<String>,
}

impl PciFunction {
    pub fn is_network(&self) -> bool {
        self.class >> 16 == 0x02
    }

    pub fn driver_name(&self) -> &str {
        self.driver.as_deref().unwrap_or("(none)")
    }
}

/// Whether the function's IOMMU group can be handed to VFIO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viability {
    Viable,
    NotViable(Vec<Blocker>),
    NoGroup,
}

/// The newer iommufd path (Linux >= 6.6: /dev/iommu plus a per-device VFIO cdev).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IommufdStatus {
    pub dev_iommu: bool,
    /// `/dev/vfio/devices/vfioN` of the function, when the kernel created one.
    pub cdev: Option<String>,
}

fn read_trim(p: &Path) -> Result<String, VfioError> {
    fs::read_to_string(p).map(|s| s.trim().to_string()).map_err(|source| VfioError::Sysfs { path: p.into(), source })
}

fn parse_hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

fn link_name(p: &Path) -> Option<String> {
    fs::read_link(p).ok()?.file_name()?.to_str().map(str::to_string)
}

fn write_sysfs(p: &Path, data: &str) -> Result<(), VfioError> {
    tracing::debug!(target: "nicqual::vfio", "write {:?} > {}", data, p.display());
    // One write(2), opened as the shell's `echo x > attr` does (O_TRUNC is a no-op on sysfs);
    // never created: a missing attribute is an error.
    let mut f = fs::OpenOptions::new().write(true).truncate(true).open(p).map_err(|e| VfioError::open(p, e))?;
    std::io::Write::write_all(&mut f, data.as_bytes()).map_err(|source| VfioError::Sysfs { path: p.into(), source })
}

impl Host {
    pub fn with_root(sys: impl Into<PathBuf>, dev: impl Into<PathBuf>, state: impl Into<PathBuf>) -> Host {
        Host { sys: sys.into(), dev: dev.into(), state: state.into() }
    }

    fn pci_dir(&self, addr: &str) -> PathBuf {
        self.sys.join("bus/pci/devices").join(addr)
    }

    /// Read one function's attributes.
    pub fn function(&self, addr: &PciAddr) -> Result<PciFunction, VfioError> {
        let d = self.pci_dir(addr.as_str());
        if !d.exists() {
            return Err(VfioError::NoDevice { addr: addr.to_string(), sys: self.sys.clone() });
        }
        let num = |f: &str| -> Result<u32, VfioError> {
            let p = d.join(f);
            let s = read_trim(&p)?;
            parse_hex(&s).ok_or_else(|| VfioError::Sysfs {
                path: p,
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not hex: {s:?}")),
            })
        };
        let over = fs::read_to_string(d.join("driver_override")).ok().map(|s| s.trim().to_string());
        Ok(PciFunction {
            addr: addr.to_string(),
            vendor: num("vendor")? as u16,
            device: num("device")? as u16,
            class: num("class")? & 0xFF_FFFF,
            driver: link_name(&d.join("driver")),
            iommu_group: link_name(&d.join("iommu_group")).and_then(|g| g.parse().ok()),
            driver_override: over.filter(|s| !s.is_empty() && s != "(null)"),
        })
    }

    /// Every PCI function, sorted by address.
    pub fn pci_functions(&self) -> Result<Vec<PciFunction>, VfioError> {
        let dir = self.sys.join("bus/pci/devices");
        let rd = fs::read_dir(&dir).map_err(|source| VfioError::Sysfs { path: dir.clone(), source })?;
        let mut addrs: Vec<PciAddr> =
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<PciAddr>().ok()).collect();
        addrs.sort();
        addrs.iter().map(|a| self.function(a)).collect()
    }

    /// IOMMU groups exist only when an IOMMU is enabled (or VFIO's no-IOMMU mode made them).
    pub fn iommu_enabled(&self) -> bool {
        let iommu_class = fs::read_dir(self.sys.join("class/iommu")).is_ok_and(|mut d| d.next().is_some());
        let groups = fs::read_dir(self.sys.join("kernel/iommu_groups")).is_ok_and(|mut d| d.next().is_some());
        iommu_class || (groups && !self.noiommu_mode())
    }

    /// VFIO's unsafe no-IOMMU mode is switched on.
    pub fn noiommu_mode(&self) -> bool {
        read_trim(&self.sys.join("module/vfio/parameters/enable_unsafe_noiommu_mode")).is_ok_and(|s| s == "Y")
    }

    pub fn vfio_pci_loaded(&self) -> bool {
        self.sys.join("bus/pci/drivers/vfio-pci").is_dir()
    }

    /// Addresses of the functions in IOMMU group `group`.
    pub fn group_members(&self, group: u32) -> Vec<PciAddr> {
        let dir = self.sys.join("kernel/iommu_groups").join(group.to_string()).join("devices");
        let mut v: Vec<PciAddr> = fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Whether `f`'s group may be opened through VFIO. `f` itself does not count (it is
    /// the one about to be bound).
    pub fn viability(&self, f: &PciFunction) -> Viability {
        let Some(g) = f.iommu_group else { return Viability::NoGroup };
        let mut blockers = Vec::new();
        for a in self.group_members(g) {
            if a.as_str() == f.addr {
                continue;
            }
            let drv = link_name(&self.pci_dir(a.as_str()).join("driver"));
            if let Some(d) = drv.filter(|d| !VIABLE_DRIVERS.contains(&d.as_str())) {
                blockers.push(Blocker { addr: a.to_string(), driver: d });
            }
        }
        if blockers.is_empty() { Viability::Viable } else { Viability::NotViable(blockers) }
    }

    /// The group's character device: /dev/vfio/N, or /dev/vfio/noiommu-N in no-IOMMU mode.
    pub fn group_dev(&self, group: u32) -> PathBuf {
        let plain = self.dev.join("vfio").join(group.to_string());
        let noiommu = self.dev.join("vfio").join(format!("noiommu-{group}"));
        if !plain.exists() && noiommu.exists() { noiommu } else { plain }
    }

    /// Is the iommufd/cdev interface there for this function?
    pub fn iommufd_status(&self, addr: &PciAddr) -> IommufdStatus {
        let cdev = fs::read_dir(self.pci_dir(addr.as_str()).join("vfio-dev"))
            .ok()
            .and_then(|mut d| d.next()?.ok()?.file_name().to_str().map(|n| format!("/dev/vfio/devices/{n}")));
        IommufdStatus { dev_iommu: self.dev.join("iommu").exists(), cdev }
    }

    /// Everything VFIO needs before a group can be opened, checked in the order a user
    /// fixes them: IOMMU on, not no-IOMMU, device exists and has a group, bound to
    /// vfio-pci, group viable. Returns the function and its group.
    pub fn check_ready(&self, addr: &PciAddr) -> Result<(PciFunction, u32), VfioError> {
        let f = self.function(addr)?;
        let Some(group) = f.iommu_group else {
            if !self.iommu_enabled() {
                return Err(VfioError::IommuDisabled { groups: self.sys.join("kernel/iommu_groups") });
            }
            return Err(VfioError::NoGroup { addr: addr.to_string() });
        };
        if self.noiommu_mode() && self.group_dev(group).ends_with(format!("noiommu-{group}")) {
            return Err(VfioError::NoIommuMode { addr: addr.to_string(), group });
        }
        if f.driver.as_deref() != Some("vfio-pci") {
            return Err(VfioError::NotBound { addr: addr.to_string(), driver: f.driver_name().to_string() });
        }
        if let Viability::NotViable(blockers) = self.viability(&f) {
            return Err(VfioError::GroupNotViable { addr: addr.to_string(), group, blockers });
        }
        Ok((f, group))
    }

    fn state_file(&self, addr: &PciAddr) -> PathBuf {
        self.state.join(format!("{addr}.driver"))
    }

    /// Bind `addr` to vfio-pci: remember its driver, unbind it, set driver_override to
    /// vfio-pci and ask the kernel to probe. Returns the driver it had before.
    pub fn bind(&self, addr: &PciAddr) -> Result<Option<String>, VfioError> {
        let f = self.function(addr)?;
        if f.driver.as_deref() == Some("vfio-pci") {
            return Ok(None);
        }
        if !self.vfio_pci_loaded() {
            return Err(VfioError::VfioPciMissing { path: self.sys.join("bus/pci/drivers/vfio-pci") });
        }
        if f.iommu_group.is_none() && !self.iommu_enabled() && !self.noiommu_mode() {
            return Err(VfioError::IommuDisabled { groups: self.sys.join("kernel/iommu_groups") });
        }
        let dir = self.pci_dir(addr.as_str());
        fs::create_dir_all(&self.state).map_err(|source| VfioError::Sysfs { path: self.state.clone(), source })?;
        let sf = self.state_file(addr);
        fs::write(&sf, f.driver.clone().unwrap_or_default())
            .map_err(|source| VfioError::Sysfs { path: sf.clone(), source })?;
        write_sysfs(&dir.join("driver_override"), "vfio-pci")?;
        if f.driver.is_some() {
            write_sysfs(&dir.join("driver/unbind"), addr.as_str())?;
        }
        write_sysfs(&self.sys.join("bus/pci/drivers_probe"), addr.as_str())?;
        let now = self.function(addr)?;
        if now.driver.as_deref() != Some("vfio-pci") {
            return Err(VfioError::BindFailed {
                addr: addr.to_string(),
                step: "driver_override=vfio-pci and drivers_probe",
                now: now.driver_name().to_string(),
                want: "vfio-pci".into(),
            });
        }
        Ok(f.driver)
    }

    /// Give `addr` back: unbind from vfio-pci, clear driver_override, rebind the driver
    /// `bind` recorded (or let the kernel probe). Returns the driver it is bound to now.
    pub fn unbind(&self, addr: &PciAddr) -> Result<Option<String>, VfioError> {
        let f = self.function(addr)?;
        let dir = self.pci_dir(addr.as_str());
        let sf = self.state_file(addr);
        let orig = fs::read_to_string(&sf).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        if f.driver.as_deref() == Some("vfio-pci") {
            write_sysfs(&dir.join("driver/unbind"), addr.as_str())?;
        }
        // A lone newline clears the override.
        write_sysfs(&dir.join("driver_override"), "\n")?;
        let bind_path = orig.as_ref().map(|d| self.sys.join("bus/pci/drivers").join(d).join("bind"));
        match &bind_path {
            Some(p) if p.exists() => write_sysfs(p, addr.as_str())?,
            _ => write_sysfs(&self.sys.join("bus/pci/drivers_probe"), addr.as_str())?,
        }
        let now = self.function(addr)?;
        if let Some(want) = &orig
            && now.driver.as_deref() != Some(want.as_str())
        {
            return Err(VfioError::BindFailed {
                addr: addr.to_string(),
                step: "restoring the original driver",
                now: now.driver_name().to_string(),
                want: want.clone(),
            });
        }
        let _ = fs::remove_file(&sf);
        Ok(now.driver)
    }
}

/// RLIMIT_MEMLOCK (soft) in bytes; `u64::MAX` when unlimited.
pub fn memlock_limit() -> u64 {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into the live local `r`.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return 0;
    }
    if r.rlim_cur == libc::RLIM_INFINITY { u64::MAX } else { r.rlim_cur }
}

/// True when the process may lock memory beyond RLIMIT_MEMLOCK (CAP_IPC_LOCK, e.g. root).
pub fn has_ipc_lock() -> bool {
    // Effective capabilities from /proc/self/status (CapEff, hex bitmask); CAP_IPC_LOCK = 14.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("CapEff:").and_then(|v| u64::from_str_radix(v.trim(), 16).ok()))
        })
        .is_some_and(|caps| caps & (1 << 14) != 0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fake sysfs + /dev tree in a fresh temporary directory (removed on drop).
    pub struct FakeTree {
        pub root: PathBuf,
        pub host: Host,
    }

    impl Drop for FakeTree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    impl FakeTree {
        pub fn new() -> FakeTree {
            static N: AtomicU32 = AtomicU32::new(0);
            let root = std::env::temp_dir().join(format!(
                "nicqual-fakesys-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&root);
            for d in ["sys/bus/pci/devices", "sys/bus/pci/drivers", "sys/kernel/iommu_groups", "dev/vfio", "state"] {
                fs::create_dir_all(root.join(d)).unwrap();
            }
            fs::write(root.join("sys/bus/pci/drivers_probe"), "").unwrap();
            let host = Host::with_root(root.join("sys"), root.join("dev"), root.join("state"));
            FakeTree { root, host }
        }

        pub fn driver(&self, name: &str) {
            let d = self.root.join("sys/bus/pci/drivers").join(name);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("bind"), "").unwrap();
            fs::write(d.join("unbind"), "").unwrap();
        }

        /// A function with a class, an optional driver and an optional IOMMU group.
        pub fn function(&self, addr: &str, class: u32, driver: Option<&str>, group: Option<u32>) {
            let real = self.root.join("sys/devices/pci0000:00").join(addr);
            fs::create_dir_all(&real).unwrap();
            fs::write(real.join("vendor"), "0x8086\n").unwrap();
            fs::write(real.join("device"), "0x10d3\n").unwrap();
            fs::write(real.join("class"), format!("{class:#08x}\n")).unwrap();
            fs::write(real.join("driver_override"), "(null)\n").unwrap();
            symlink(&real, self.root.join("sys/bus/pci/devices").join(addr)).unwrap();
            if let Some(d) = driver {
                self.driver(d);
                symlink(self.root.join("sys/bus/pci/drivers").join(d), real.join("driver")).unwrap();
            }
            if let Some(g) = group {
                let gd = self.root.join("sys/kernel/iommu_groups").join(g.to_string());
                fs::create_dir_all(gd.join("devices")).unwrap();
                let _ = symlink(&real, gd.join("devices").join(addr));
                symlink(&gd, real.join("iommu_group")).unwrap();
                fs::write(self.root.join("dev/vfio").join(g.to_string()), "").unwrap();
            }
        }

        pub fn read(&self, rel: &str) -> String {
            fs::read_to_string(self.root.join(rel)).unwrap()
        }
    }

    fn addr(s: &str) -> PciAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_are_strict() {
        assert_eq!(addr("00:04.0").as_str(), "0000:00:04.0");
        assert_eq!(addr("0000:3B:00.1").as_str(), "0000:3b:00.1");
        assert_eq!(addr("0000:00:04.0").bdf(), "00:04.0");
        for bad in ["", "0000:00:04", "0000:00:04.8", "0000:00:20.0", "../../etc", "0000:00:04.0/x", "zz:00.0"] {
            assert!(bad.parse::<PciAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_functions_with_driver_group_and_viability() {
        let t = FakeTree::new();
        t.function("0000:00:04.0", 0x020000, None, Some(3));
        t.function("0000:00:04.1", 0x020000, Some("e1000e"), Some(3));
        t.function("0000:00:05.0", 0x020000, Some("vfio-pci"), Some(4));
        t.function("0000:00:1f.0", 0x060100, Some("lpc_ich"), None);
        let fs = t.host.pci_functions().unwrap();
        assert_eq!(fs.len(), 4);
        let nics: Vec<_> = fs.iter().filter(|f| f.is_network()).collect();
        assert_eq!(nics.len(), 3);
        assert_eq!(nics[0].vendor, 0x8086);
        assert_eq!(nics[0].device, 0x10d3);
        assert_eq!(nics[1].driver.as_deref(), Some("e1000e"));
        assert_eq!(nics[2].iommu_group, Some(4));
        assert_eq!(nics[0].driver_override, None);
        // 04.0 shares group 3 with 04.1, which e1000e holds: not viable, and says who.
        match t.host.viability(nics[0]) {
            Viability::NotViable(b) => {
                assert_eq!(b, vec![Blocker { addr: "0000:00:04.1".into(), driver: "e1000e".into() }])
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(t.host.viability(nics[2]), Viability::Viable);
        assert_eq!(t.host.viability(&fs[3]), Viability::NoGroup);
        assert!(t.host.iommu_enabled());
    }

    #[test]
    fn readiness_errors_name_the_fix() {
        let t = FakeTree::new();
        t.function("0000:00:04.0", 0x020000, Some("e1000e"), Some(3));
        t.function("0000:00:04.1", 0x020000, Some("igb"), Some(3));
        t.function("0000:00:05.0", 0x020000, Some("vfio-pci"), Some(3));
        let e = t.host.check_ready(&addr("0000:00:04.0")).unwrap_err();
        assert!(matches!(e, VfioError::NotBound { .. }), "{e}");
        assert!(e.to_string().contains("nicqual bind 0000:00:04.0"));
        let e = t.host.check_ready(&addr("0000:00:05.0")).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("group 3") && s.contains("0000:00:04.0 (bound to e1000e)") && s.contains("igb"), "{s}");
        let e = t.host.check_ready(&addr("0000:00:09.0")).unwrap_err();
        assert!(matches!(e, VfioError::NoDevice { .. }));
    }

    #[test]
    fn no_groups_means_iommu_disabled() {
        let t = FakeTree::new();
        t.function("0000:00:04.0", 0x020000, None, None);
        assert!(!t.host.iommu_enabled());
        let e = t.host.check_ready(&addr("0000:00:04.0")).unwrap_err();
        assert!(matches!(e, VfioError::IommuDisabled { .. }), "{e}");
        assert!(e.to_string().contains("intel_iommu=on"), "{e}");
        t.driver("vfio-pci");
        let e = t.host.bind(&addr("0000:00:04.0")).unwrap_err();
        assert!(matches!(e, VfioError::IommuDisabled { .. }), "{e}");
    }

    #[test]
    fn noiommu_mode_is_refused() {
        let t = FakeTree::new();
        t.function("0000:00:04.0", 0x020000, Some("vfio-pci"), Some(0));
        fs::remove_file(t.root.join("dev/vfio/0")).unwrap();
        fs::write(t.root.join("dev/vfio/noiommu-0"), "").unwrap();
        let p = t.root.join("sys/module/vfio/parameters");
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("enable_unsafe_noiommu_mode"), "Y\n").unwrap();
        assert!(t.host.noiommu_mode());
        assert!(!t.host.iommu_enabled());
        let e = t.host.check_ready(&addr("0000:00:04.0")).unwrap_err();
        assert!(matches!(e, VfioError::NoIommuMode { group: 0, .. }), "{e}");
    }

    #[test]
    fn bind_writes_override_unbind_and_probe_then_checks_the_result() {
        let t = FakeTree::new();
        t.function("0000:00:04.0", 0x020000, Some("e1000e"), Some(3));
        let a = addr("0000:00:04.0");
        let e = t.host.bind(&a).unwrap_err();
        assert!(matches!(e, VfioError::VfioPciMissing { .. }), "{e}");
        t.driver("vfio-pci");
        // The fake kernel does not act on the writes, so the check after probing fails,
        // and says so; the writes themselves went where the kernel wants them.
        let e = t.host.bind(&a).unwrap_err();
        assert!(e.to_string().contains("bound to e1000e, expected vfio-pci"), "{e}");
        assert_eq!(t.read("sys/bus/pci/devices/0000:00:04.0/driver_override"), "vfio-pci");
        assert_eq!(t.read("sys/bus/pci/drivers/e1000e/unbind"), "0000:00:04.0");
        assert_eq!(t.read("sys/bus/pci/drivers_probe"), "0000:00:04.0");
        assert_eq!(t.read("state/0000:00:04.0.driver"), "e1000e");
        // Now play the kernel: vfio-pci took it.
        let dev = t.root.join("sys/bus/pci/devices/0000:00:04.0");
        fs::remove_file(dev.join("driver")).unwrap();
        symlink(t.root.join("sys/bus/pci/drivers/vfio-pci"), dev.join("driver")).unwrap();
        assert_eq!(t.host.bind(&a).unwrap(), None, "already bound: nothing to do");
        assert_eq!(t.host.check_ready(&a).unwrap().1, 3);
        // Unbind restores e1000e through its bind file.
        let e = t.host.unbind(&a).unwrap_err();
        assert!(e.to_string().contains("restoring the original driver"), "{e}");
        assert_eq!(t.read("sys/bus/pci/drivers/vfio-pci/unbind"), "0000:00:04.0");
        assert_eq!(t.read("sys/bus/pci/drivers/e1000e/bind"), "0000:00:04.0");
        assert_eq!(t.read("sys/bus/pci/devices/0000:00:04.0/driver_override"), "\n");
        fs::remove_file(dev.join("driver")).unwrap();
        symlink(t.root.join("sys/bus/pci/drivers/e1000e"), dev.join("driver")).unwrap();
        assert_eq!(t.host.unbind(&a).unwrap().as_deref(), Some("e1000e"));
        assert!(!t.root.join("state/0000:00:04.0.driver").exists());
    }

    #[test]
    fn iommufd_detection() {
        let t = FakeTree::new();
        t.function("0000:00:04.0", 0x020000, Some("vfio-pci"), Some(3));
        let a = addr("0000:00:04.0");
        assert_eq!(t.host.iommufd_status(&a), IommufdStatus { dev_iommu: false, cdev: None });
        fs::write(t.root.join("dev/iommu"), "").unwrap();
        fs::create_dir_all(t.root.join("sys/bus/pci/devices/0000:00:04.0/vfio-dev/vfio0")).unwrap();
        let s = t.host.iommufd_status(&a);
        assert!(s.dev_iommu);
        assert_eq!(s.cdev.as_deref(), Some("/dev/vfio/devices/vfio0"));
    }
}
