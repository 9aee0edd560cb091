//! What sysfs says about PCI functions, IOMMU groups and VFIO, and binding a function to
//! vfio-pci (driver_override + drivers_probe) and back. The roots of sysfs and /dev are
//! configurable so the tests run against a fake tree.

use super::error::{Blocker, Refusal, Rollback, VfioError};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, Read};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Drivers a device in the same IOMMU group may be bound to without spoiling the group's
/// viability (the kernel's rule: vfio drivers, pci-stub, and PCIe port drivers; or none).
pub const VIABLE_DRIVERS: &[&str] = &["vfio-pci", "pci-stub", "pcieport"];

/// Where sysfs, /dev, /proc and nicqual's binding state live.
#[derive(Debug, Clone)]
pub struct Host {
    pub sys: PathBuf,
    pub dev: PathBuf,
    /// Where `bind` remembers each function's original driver for `unbind`.
    pub state: PathBuf,
    /// procfs root: `bind` reads the routing tables (net/route, net/ipv6_route) here.
    pub proc: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Host { sys: "/sys".into(), dev: "/dev".into(), state: "/run/nicqual".into(), proc: "/proc".into() }
    }
}

/// Longest kernel driver name a state file may hold.
pub const DRIVER_NAME_MAX: usize = 64;
/// Largest state file read (an address, a space, a driver name and a newline fit).
const STATE_FILE_MAX: u64 = 128;
/// Most routes named in one refusal.
const ROUTES_SHOWN: usize = 4;
/// Most bytes of a routing table read (a full Internet table in /proc/net/route is ~130 MB;
/// the first 64 MiB cover any host that is not a router).
const ROUTE_TABLE_MAX: u64 = 64 << 20;
/// IFF_UP in an interface's `flags`.
const IFF_UP: u32 = 0x1;

/// A kernel driver name as nicqual accepts it (`[A-Za-z0-9_-]`, 1..=64 bytes): it becomes
/// a path component under /sys/bus/pci/drivers.
pub fn valid_driver_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= DRIVER_NAME_MAX
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// What `bind` remembers for `unbind`: the function and the driver it had (none when it
/// had none). On disk: `DDDD:BB:DD.F[ DRIVER]\n`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindState {
    pub addr: PciAddr,
    pub driver: Option<String>,
}

impl BindState {
    fn render(&self) -> String {
        match &self.driver {
            Some(d) => format!("{} {d}\n", self.addr),
            None => format!("{}\n", self.addr),
        }
    }

    /// Parse a state file's bytes for function `want`; anything but a canonical address
    /// equal to `want` and an optional valid driver name is refused.
    pub fn parse(path: &Path, bytes: &[u8], want: &PciAddr) -> Result<BindState, VfioError> {
        let bad = |why: String| VfioError::BadStateFile { path: path.into(), why };
        let shown = |s: &[u8]| format!("{:?}", String::from_utf8_lossy(s.get(..48).unwrap_or(s)));
        let text = std::str::from_utf8(bytes).map_err(|_| bad(format!("not text: {}", shown(bytes))))?;
        let line = text.strip_suffix('\n').unwrap_or(text);
        let mut fields = line.split(' ');
        let a = fields.next().unwrap_or_default();
        let d = fields.next();
        if fields.next().is_some() {
            return Err(bad(format!("more than an address and a driver: {}", shown(bytes))));
        }
        let addr = match a.parse::<PciAddr>() {
            Ok(p) if p.as_str() == a => p,
            _ => return Err(bad(format!("{} is not a PCI address (DDDD:BB:DD.F)", shown(a.as_bytes())))),
        };
        if &addr != want {
            return Err(bad(format!("names {addr}, not {want}")));
        }
        let driver = match d {
            None => None,
            Some(d) if valid_driver_name(d) => Some(d.to_string()),
            Some(d) => {
                return Err(bad(format!(
                    "{} is not a driver name ([A-Za-z0-9_-], at most {DRIVER_NAME_MAX} bytes)",
                    shown(d.as_bytes())
                )));
            }
        };
        Ok(BindState { addr, driver })
    }
}

/// What `bind` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The driver the function had before (None: it had none, or was already on vfio-pci).
    pub previous: Option<String>,
    /// It was on vfio-pci already; nothing was changed.
    pub already: bool,
}

/// Which steps of a bind were carried out, for the rollback.
#[derive(Debug, Default)]
struct Steps {
    override_written: bool,
    unbound: bool,
}

/// Routes of each interface in `want` found in a /proc/net/route (IPv4) or
/// /proc/net/ipv6_route (IPv6) table, as `prefix/len [via gateway]`.
fn routes_in(table: impl BufRead, v6: bool, want: &[String], out: &mut BTreeMap<String, Vec<String>>) {
    for line in table.lines().map_while(Result::ok) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dev, route) = if v6 {
            // dest destlen src srclen nexthop metric refcnt use flags devname
            let hex128 = |i: usize| f.get(i).and_then(|s| u128::from_str_radix(s, 16).ok()).map(Ipv6Addr::from);
            let len = f.get(1).and_then(|s| u8::from_str_radix(s, 16).ok());
            match (f.get(9), hex128(0), len, hex128(4)) {
                (Some(d), Some(dst), Some(len), Some(gw)) => {
                    (*d, if gw.is_unspecified() { format!("{dst}/{len}") } else { format!("{dst}/{len} via {gw}") })
                }
                _ => continue,
            }
        } else {
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; addresses are
            // the kernel's network-order u32 printed in host order.
            let hex32 = |i: usize| {
                f.get(i).and_then(|s| u32::from_str_radix(s, 16).ok()).map(|v| Ipv4Addr::from(v.to_ne_bytes()))
            };
            match (f.first(), hex32(1), hex32(2), hex32(7)) {
                (Some(d), Some(dst), Some(gw), Some(mask)) => {
                    let len = u32::from_be_bytes(mask.octets()).count_ones();
                    (*d, if gw.is_unspecified() { format!("{dst}/{len}") } else { format!("{dst}/{len} via {gw}") })
                }
                _ => continue,
            }
        };
        if want.iter().any(|w| w == dev) {
            out.entry(dev.to_string()).or_default().push(route);
        }
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
        Host { sys: sys.into(), dev: dev.into(), state: state.into(), proc: "/proc".into() }
    }

    /// The same host with procfs at `proc` (tests: a fake tree).
    pub fn with_proc(self, proc: impl Into<PathBuf>) -> Host {
        Host { proc: proc.into(), ..self }
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

    /// The network interfaces the kernel created for `addr` (`.../net/<ifname>`).
    pub fn interfaces(&self, addr: &PciAddr) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.pci_dir(addr.as_str()).join("net"))
            .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string)).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Why `ifname` (an interface of `addr`) counts as up, if it does: operstate "up", or
    /// IFF_UP in its flags (drivers that report operstate "unknown" while up), or neither
    /// attribute readable (then it cannot be shown to be down).
    fn interface_up(&self, addr: &PciAddr, ifname: &str) -> Option<String> {
        let d = self.pci_dir(addr.as_str()).join("net").join(ifname);
        let oper = read_trim(&d.join("operstate")).ok();
        let flags = read_trim(&d.join("flags")).ok();
        let flag_bits = flags.as_deref().and_then(parse_hex);
        if oper.as_deref() == Some("up") {
            return Some("operstate up".into());
        }
        if let (Some(s), Some(v)) = (&flags, flag_bits)
            && v & IFF_UP != 0
        {
            return Some(format!("flags {s} has IFF_UP"));
        }
        if oper.is_none() && flag_bits.is_none() {
            return Some("neither operstate nor flags readable, so it cannot be shown to be down".into());
        }
        None
    }

    /// The routes through each of `ifnames`, from the procfs routing tables. IPv4's table
    /// must be readable; IPv6's may be absent (IPv6 disabled).
    pub fn routes(&self, ifnames: &[String]) -> Result<BTreeMap<String, Vec<String>>, VfioError> {
        let mut out = BTreeMap::new();
        for (rel, v6) in [("net/route", false), ("net/ipv6_route", true)] {
            let p = self.proc.join(rel);
            match fs::File::open(&p) {
                Ok(f) => routes_in(std::io::BufReader::new(f.take(ROUTE_TABLE_MAX)), v6, ifnames, &mut out),
                Err(e) if v6 && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(VfioError::Sysfs { path: p, source }),
            }
        }
        Ok(out)
    }

    /// Everything that makes binding `f` unsafe: a host bridge, a function that is not a
    /// network controller, an interface that is up or carries routes.
    pub fn bind_refusals(&self, f: &PciFunction) -> Result<Vec<Refusal>, VfioError> {
        let (addr, class) = (f.addr.clone(), f.class);
        if class >> 8 == 0x0600 {
            return Ok(vec![Refusal::HostBridge { addr, class }]);
        }
        let mut v = Vec::new();
        if !f.is_network() {
            v.push(Refusal::NotNetwork { addr: addr.clone(), class });
        }
        let pa: PciAddr = f.addr.parse()?;
        let ifs = self.interfaces(&pa);
        for i in &ifs {
            if let Some(found) = self.interface_up(&pa, i) {
                v.push(Refusal::InterfaceUp { addr: addr.clone(), class, ifname: i.clone(), found });
            }
        }
        if !ifs.is_empty() {
            for (ifname, mut routes) in self.routes(&ifs)? {
                let n = routes.len();
                routes.truncate(ROUTES_SHOWN);
                if n > ROUTES_SHOWN {
                    routes.push(format!("and {} more", n - ROUTES_SHOWN));
                }
                v.push(Refusal::InterfaceRouted { addr: addr.clone(), class, ifname, routes });
            }
        }
        Ok(v)
    }

    fn state_file(&self, addr: &PciAddr) -> PathBuf {
        self.state.join(format!("{addr}.driver"))
    }

    /// What `bind` remembered for `addr`: None when there is no state file; a typed error
    /// when the file is anything but `ADDR[ DRIVER]` for this very address (or a symlink,
    /// or too long).
    pub fn read_state(&self, addr: &PciAddr) -> Result<Option<BindState>, VfioError> {
        let p = self.state_file(addr);
        let bad = |why: String| VfioError::BadStateFile { path: p.clone(), why };
        let f = match fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(bad("is a symbolic link".into())),
            Err(e) => return Err(VfioError::open(&p, e)),
        };
        let meta = f.metadata().map_err(|source| VfioError::Sysfs { path: p.clone(), source })?;
        if !meta.is_file() {
            return Err(bad("is not a regular file".into()));
        }
        let mut bytes = Vec::new();
        f.take(STATE_FILE_MAX + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| VfioError::Sysfs { path: p.clone(), source })?;
        if bytes.len() as u64 > STATE_FILE_MAX {
            return Err(bad(format!("longer than {STATE_FILE_MAX} bytes")));
        }
        BindState::parse(&p, &bytes, addr).map(Some)
    }

    /// Write the state file: a fresh file in the state directory renamed over the old
    /// name, so a symlink planted there is replaced, never followed.
    fn write_state(&self, st: &BindState) -> Result<(), VfioError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VfioError::Sysfs { path, source }
        };
        fs::create_dir_all(&self.state).map_err(io(&self.state))?;
        let sf = self.state_file(&st.addr);
        let tmp = self.state.join(format!(".{}.driver.new", st.addr));
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| VfioError::open(&tmp, e))?;
        std::io::Write::write_all(&mut f, st.render().as_bytes()).map_err(io(&tmp))?;
        drop(f);
        fs::rename(&tmp, &sf).map_err(io(&sf))
    }

    /// Bind `addr` to vfio-pci: refuse an unsafe function (see [`Host::bind_refusals`];
    /// a caller passing `force` reports what it overrides), remember its driver, set driver_override to vfio-pci, unbind it and
    /// ask the kernel to probe. A step that fails after the first sysfs write is rolled
    /// back (driver_override restored, the original driver rebound) and the error reports
    /// the failure and the rollback.
    pub fn bind(&self, addr: &PciAddr, force: bool) -> Result<Bound, VfioError> {
        let f = self.function(addr)?;
        if f.driver.as_deref() == Some("vfio-pci") {
            return Ok(Bound { previous: None, already: true });
        }
        let refusals = self.bind_refusals(&f)?;
        if !refusals.is_empty() && !force {
            return Err(VfioError::Refused { refusals });
        }
        if !self.vfio_pci_loaded() {
            return Err(VfioError::VfioPciMissing { path: self.sys.join("bus/pci/drivers/vfio-pci") });
        }
        if f.iommu_group.is_none() && !self.iommu_enabled() && !self.noiommu_mode() {
            return Err(VfioError::IommuDisabled { groups: self.sys.join("kernel/iommu_groups") });
        }
        if let Some(d) = f.driver.as_deref().filter(|d| !valid_driver_name(d)) {
            return Err(VfioError::BadStateFile {
                path: self.state_file(addr),
                why: format!("the current driver's name {d:?} cannot be recorded"),
            });
        }
        self.write_state(&BindState { addr: addr.clone(), driver: f.driver.clone() })?;
        let mut steps = Steps::default();
        match self.bind_steps(addr, &f, &mut steps) {
            Ok(()) => Ok(Bound { previous: f.driver, already: false }),
            Err(cause) => {
                let rollback = self.roll_back(addr, &f, &steps);
                if matches!(rollback, Rollback::Restored { .. }) {
                    let _ = fs::remove_file(self.state_file(addr));
                }
                Err(VfioError::BindRolledBack { addr: addr.to_string(), cause: Box::new(cause), rollback })
            }
        }
    }

    fn bind_steps(&self, addr: &PciAddr, f: &PciFunction, steps: &mut Steps) -> Result<(), VfioError> {
        let dir = self.pci_dir(addr.as_str());
        steps.override_written = true;
        write_sysfs(&dir.join("driver_override"), "vfio-pci")?;
        if f.driver.is_some() {
            write_sysfs(&dir.join("driver/unbind"), addr.as_str())?;
            steps.unbound = true;
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
        Ok(())
    }

    /// Undo a failed bind of `f` (as it was before): release whatever driver holds it now
    /// if that is not the original, restore driver_override, rebind the original driver.
    fn roll_back(&self, addr: &PciAddr, f: &PciFunction, steps: &Steps) -> Rollback {
        let dir = self.pci_dir(addr.as_str());
        let mut errors = Vec::new();
        let now = self.function(addr).ok().and_then(|n| n.driver);
        if let Some(d) = now.as_deref().filter(|d| Some(*d) != f.driver.as_deref() && valid_driver_name(d))
            && let Err(e) = write_sysfs(&self.sys.join("bus/pci/drivers").join(d).join("unbind"), addr.as_str())
        {
            errors.push(format!("releasing it from {d}: {e}"));
        }
        if steps.override_written {
            // A lone newline clears the override; a previous one is written back.
            let old = f.driver_override.clone().unwrap_or_else(|| "\n".into());
            if let Err(e) = write_sysfs(&dir.join("driver_override"), &old) {
                errors.push(format!("restoring driver_override: {e}"));
            }
        }
        if let Some(orig) = f.driver.as_deref()
            && (steps.unbound || now.as_deref() != Some(orig))
            && let Err(e) = write_sysfs(&self.sys.join("bus/pci/drivers").join(orig).join("bind"), addr.as_str())
        {
            errors.push(format!("rebinding {orig}: {e}"));
        }
        let after = self.function(addr).ok().and_then(|n| n.driver);
        if errors.is_empty() && after == f.driver {
            Rollback::Restored { driver: after }
        } else {
            Rollback::Incomplete {
                now: after.unwrap_or_else(|| "(no driver)".into()),
                want: f.driver_name().to_string(),
                errors,
            }
        }
    }

    /// Give `addr` back: only a function `bind` recorded (an unknown one is refused with
    /// nothing changed); unbind from vfio-pci, clear driver_override, rebind the recorded
    /// driver (or let the kernel probe). Returns the driver it is bound to now.
    pub fn unbind(&self, addr: &PciAddr) -> Result<Option<String>, VfioError> {
        let f = self.function(addr)?;
        let Some(st) = self.read_state(addr)? else {
            return Err(VfioError::NotBoundByNicqual {
                addr: addr.to_string(),
                driver: f.driver_name().to_string(),
                state: self.state_file(addr),
            });
        };
        let dir = self.pci_dir(addr.as_str());
        if f.driver.as_deref() == Some("vfio-pci") {
            write_sysfs(&dir.join("driver/unbind"), addr.as_str())?;
        }
        // A lone newline clears the override.
        write_sysfs(&dir.join("driver_override"), "\n")?;
        // The name was validated by read_state: one path component, no "/" or "..".
        let bind_path = st.driver.as_ref().map(|d| self.sys.join("bus/pci/drivers").join(d).join("bind"));
        match &bind_path {
            Some(p) if p.exists() => write_sysfs(p, addr.as_str())?,
            _ => write_sysfs(&self.sys.join("bus/pci/drivers_probe"), addr.as_str())?,
        }
        let now = self.function(addr)?;
        if let Some(want) = &st.driver
            && now.driver.as_deref() != Some(want.as_str())
        {
            return Err(VfioError::BindFailed {
                addr: addr.to_string(),
                step: "restoring the original driver",
                now: now.driver_name().to_string(),
                want: want.clone(),
            });
        }
        let _ = fs::remove_file(self.state_file(addr));
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
            for d in [
                "sys/bus/pci/devices",
                "sys/bus/pci/drivers",
                "sys/kernel/iommu_groups",
                "dev/vfio",
                "state",
                "proc/net",
            ] {
                fs::create_dir_all(root.join(d)).unwrap();
            }
            fs::write(root.join("sys/bus/pci/drivers_probe"), "").unwrap();
            fs::write(
                root.join("proc/net/route"),
                "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
            )
            .unwrap();
            fs::write(root.join("proc/net/ipv6_route"), "").unwrap();
            let host =
                Host::with_root(root.join("sys"), root.join("dev"), root.join("state")).with_proc(root.join("proc"));
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

        /// A network interface of `addr` with its operstate and flags.
        pub fn netdev(&self, addr: &str, ifname: &str, operstate: &str, flags: u32) {
            let d = self.root.join("sys/bus/pci/devices").join(addr).join("net").join(ifname);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("operstate"), format!("{operstate}\n")).unwrap();
            fs::write(d.join("flags"), format!("{flags:#x}\n")).unwrap();
        }

        /// An IPv4 route through `ifname`, as /proc/net/route prints it.
        pub fn route4(&self, ifname: &str, dst: [u8; 4], gw: [u8; 4], len: u32) {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0).to_be_bytes();
            let hex = |b: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(b));
            let line = format!("{ifname}\t{}\t{}\t0003\t0\t0\t0\t{}\t0\t0\t0\n", hex(dst), hex(gw), hex(mask));
            let mut f = fs::OpenOptions::new().append(true).open(self.root.join("proc/net/route")).unwrap();
            std::io::Write::write_all(&mut f, line.as_bytes()).unwrap();
        }

        /// An IPv6 route through `ifname`, as /proc/net/ipv6_route prints it.
        pub fn route6(&self, ifname: &str, dst: Ipv6Addr, len: u8) {
            let zero = "0".repeat(32);
            let line = format!(
                "{:032x} {len:02x} {zero} 00 {zero} 00000100 00000001 00000000 00000001 {ifname:>8}\n",
                u128::from(dst)
            );
            let mut f = fs::OpenOptions::new().append(true).open(self.root.join("proc/net/ipv6_route")).unwrap();
            std::io::Write::write_all(&mut f, line.as_bytes()).unwrap();
        }

        /// Every file and symlink under the fake root with its contents or target.
        pub fn snapshot(&self) -> BTreeMap<PathBuf, String> {
            fn walk(d: &Path, out: &mut BTreeMap<PathBuf, String>) {
                for e in fs::read_dir(d).unwrap() {
                    let p = e.unwrap().path();
                    let m = fs::symlink_metadata(&p).unwrap();
                    if m.file_type().is_symlink() {
                        out.insert(p.clone(), format!("-> {}", fs::read_link(&p).unwrap().display()));
                    } else if m.is_dir() {
                        walk(&p, out);
                    } else {
                        out.insert(p.clone(), String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned());
                    }
                }
            }
            let mut out = BTreeMap::new();
            walk(&self.root, &mut out);
            out
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
        let e = t.host.bind(&addr("0000:00:04.0"), false).unwrap_err();
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

    /// Point `addr`'s driver symlink at `driver`, as the kernel would after binding it.
    fn play_kernel(t: &FakeTree, addr: &str, driver: &str) {
        let dev = t.root.join("sys/bus/pci/devices").join(addr);
        let _ = fs::remove_file(dev.join("driver"));
        symlink(t.root.join("sys/bus/pci/drivers").join(driver), dev.join("driver")).unwrap();
    }

    #[test]
    fn bind_writes_override_unbind_and_probe_and_rolls_back_when_the_kernel_does_not_bind() {
        let t = FakeTree::new();
        t.function("0000:00:04.0", 0x020000, Some("e1000e"), Some(3));
        let a = addr("0000:00:04.0");
        let e = t.host.bind(&a, false).unwrap_err();
        assert!(matches!(e, VfioError::VfioPciMissing { .. }), "{e}");
        t.driver("vfio-pci");
        // The fake kernel does not act on the writes, so the check after probing fails and
        // the bind is rolled back; the writes went where the kernel wants them.
        let e = t.host.bind(&a, false).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("bound to e1000e, expected vfio-pci"), "{s}");
        assert!(s.contains("rolled back: driver_override restored, bound to e1000e again"), "{s}");
        match &e {
            VfioError::BindRolledBack { cause, rollback, .. } => {
                assert!(matches!(**cause, VfioError::BindFailed { .. }), "{cause}");
                assert_eq!(*rollback, Rollback::Restored { driver: Some("e1000e".into()) });
            }
            e => panic!("{e}"),
        }
        assert_eq!(t.read("sys/bus/pci/drivers/e1000e/unbind"), "0000:00:04.0");
        assert_eq!(t.read("sys/bus/pci/drivers_probe"), "0000:00:04.0");
        assert_eq!(t.read("sys/bus/pci/devices/0000:00:04.0/driver_override"), "\n", "override cleared");
        assert_eq!(t.read("sys/bus/pci/drivers/e1000e/bind"), "0000:00:04.0", "original driver rebound");
        assert!(!t.root.join("state/0000:00:04.0.driver").exists(), "nothing left to unbind");
        // Now play the kernel: vfio-pci took it (with the state bind writes).
        t.host.write_state(&BindState { addr: a.clone(), driver: Some("e1000e".into()) }).unwrap();
        assert_eq!(t.read("state/0000:00:04.0.driver"), "0000:00:04.0 e1000e\n");
        play_kernel(&t, "0000:00:04.0", "vfio-pci");
        assert_eq!(t.host.bind(&a, false).unwrap(), Bound { previous: None, already: true });
        assert_eq!(t.host.check_ready(&a).unwrap().1, 3);
        // Unbind restores e1000e through its bind file.
        fs::write(t.root.join("sys/bus/pci/drivers/e1000e/bind"), "").unwrap();
        let e = t.host.unbind(&a).unwrap_err();
        assert!(e.to_string().contains("restoring the original driver"), "{e}");
        assert_eq!(t.read("sys/bus/pci/drivers/vfio-pci/unbind"), "0000:00:04.0");
        assert_eq!(t.read("sys/bus/pci/drivers/e1000e/bind"), "0000:00:04.0");
        assert_eq!(t.read("sys/bus/pci/devices/0000:00:04.0/driver_override"), "\n");
        play_kernel(&t, "0000:00:04.0", "e1000e");
        assert_eq!(t.host.unbind(&a).unwrap().as_deref(), Some("e1000e"));
        assert!(!t.root.join("state/0000:00:04.0.driver").exists());
    }

    /// A NIC on e1000e in group 3, vfio-pci loaded.
    fn nic_tree() -> (FakeTree, PciAddr) {
        let t = FakeTree::new();
        t.function("0000:00:04.0", 0x020000, Some("e1000e"), Some(3));
        t.driver("vfio-pci");
        (t, addr("0000:00:04.0"))
    }

    fn refusals(e: VfioError) -> Vec<Refusal> {
        match e {
            VfioError::Refused { refusals } => refusals,
            e => panic!("expected a refusal, got: {e}"),
        }
    }

    #[test]
    fn an_interface_that_is_up_is_refused_and_nothing_is_written() {
        for (oper, flags, found) in [("up", 0x1003, "operstate up"), ("unknown", 0x1003, "flags 0x1003 has IFF_UP")] {
            let (t, a) = nic_tree();
            t.netdev("0000:00:04.0", "enp0s4", oper, flags);
            let before = t.snapshot();
            let e = t.host.bind(&a, false).unwrap_err();
            let s = e.to_string();
            assert!(s.contains("0000:00:04.0") && s.contains("enp0s4") && s.contains("0x020000"), "{s}");
            assert!(s.contains("--force"), "{s}");
            assert_eq!(
                refusals(e),
                vec![Refusal::InterfaceUp {
                    addr: "0000:00:04.0".into(),
                    class: 0x020000,
                    ifname: "enp0s4".into(),
                    found: found.into()
                }]
            );
            assert_eq!(t.snapshot(), before, "a refused bind writes nothing");
        }
        // Down (operstate down, IFF_UP clear) and without routes: no refusal.
        let (t, a) = nic_tree();
        t.netdev("0000:00:04.0", "enp0s4", "down", 0x1002);
        assert_eq!(t.host.bind_refusals(&t.host.function(&a).unwrap()).unwrap(), vec![]);
        // Neither attribute readable: it cannot be shown to be down.
        let d = t.root.join("sys/bus/pci/devices/0000:00:04.0/net/enp0s4");
        fs::remove_file(d.join("operstate")).unwrap();
        fs::write(d.join("flags"), "junk\n").unwrap();
        let r = t.host.bind_refusals(&t.host.function(&a).unwrap()).unwrap();
        assert!(matches!(&r[..], [Refusal::InterfaceUp { found, .. }] if found.contains("cannot be shown")), "{r:?}");
    }

    #[test]
    fn an_interface_that_is_down_but_carries_routes_is_refused() {
        let (t, a) = nic_tree();
        t.netdev("0000:00:04.0", "enp0s4", "down", 0x1002);
        t.route4("lo", [127, 0, 0, 0], [0; 4], 8);
        t.route4("enp0s4", [10, 0, 2, 0], [0; 4], 24);
        t.route4("enp0s4", [0; 4], [10, 0, 2, 2], 0);
        t.route6("enp0s4", "2001:db8::".parse().unwrap(), 64);
        t.route6("enp0s40", "2001:db8:1::".parse().unwrap(), 64);
        let before = t.snapshot();
        let e = t.host.bind(&a, false).unwrap_err();
        assert_eq!(
            refusals(e),
            vec![Refusal::InterfaceRouted {
                addr: "0000:00:04.0".into(),
                class: 0x020000,
                ifname: "enp0s4".into(),
                routes: vec!["10.0.2.0/24".into(), "0.0.0.0/0 via 10.0.2.2".into(), "2001:db8::/64".into()],
            }]
        );
        assert_eq!(t.snapshot(), before);
        // No IPv4 table at all: the routes cannot be checked, which is an environment error.
        fs::remove_file(t.root.join("proc/net/route")).unwrap();
        let e = t.host.bind(&a, false).unwrap_err();
        assert!(matches!(&e, VfioError::Sysfs { path, .. } if path.ends_with("proc/net/route")), "{e}");
    }

    #[test]
    fn nvme_and_host_bridges_are_refused() {
        let t = FakeTree::new();
        t.driver("vfio-pci");
        t.function("0000:01:00.0", 0x010802, Some("nvme"), Some(5));
        t.function("0000:00:00.0", 0x060000, None, Some(0));
        t.function("0000:00:1c.0", 0x060400, Some("pcieport"), Some(6));
        let before = t.snapshot();
        let e = t.host.bind(&addr("0000:01:00.0"), false).unwrap_err();
        assert!(e.to_string().contains("0x010802 (NVMe controller), not a network controller"), "{e}");
        assert_eq!(refusals(e), vec![Refusal::NotNetwork { addr: "0000:01:00.0".into(), class: 0x010802 }]);
        let e = t.host.bind(&addr("0000:00:00.0"), false).unwrap_err();
        assert!(e.to_string().contains("host bridge"), "{e}");
        assert_eq!(refusals(e), vec![Refusal::HostBridge { addr: "0000:00:00.0".into(), class: 0x060000 }]);
        let e = t.host.bind(&addr("0000:00:1c.0"), false).unwrap_err();
        assert!(e.to_string().contains("PCI-to-PCI bridge"), "{e}");
        assert_eq!(t.snapshot(), before);
    }

    #[test]
    fn force_overrides_the_refusals() {
        let (t, a) = nic_tree();
        t.netdev("0000:00:04.0", "enp0s4", "up", 0x1003);
        t.route4("enp0s4", [10, 0, 2, 0], [0; 4], 24);
        let r = t.host.bind_refusals(&t.host.function(&a).unwrap()).unwrap();
        assert_eq!(r.len(), 2, "{r:?}");
        // Forced, it goes ahead: the writes happen (and, the fake kernel binding nothing,
        // are rolled back).
        let e = t.host.bind(&a, true).unwrap_err();
        assert!(matches!(e, VfioError::BindRolledBack { .. }), "{e}");
        assert_eq!(t.read("sys/bus/pci/drivers/e1000e/unbind"), "0000:00:04.0");
        assert_eq!(t.read("sys/bus/pci/drivers_probe"), "0000:00:04.0");
        // A forced NVMe bind goes ahead too.
        t.function("0000:01:00.0", 0x010802, None, Some(5));
        let e = t.host.bind(&addr("0000:01:00.0"), true).unwrap_err();
        assert!(e.to_string().contains("left without a driver as before"), "{e}");
        assert_eq!(t.read("sys/bus/pci/drivers_probe"), "0000:01:00.0");
    }

    #[test]
    fn a_bind_that_fails_midway_is_rolled_back() {
        // drivers_probe missing: override set and e1000e unbound, then the probe fails.
        let (t, a) = nic_tree();
        fs::remove_file(t.root.join("sys/bus/pci/drivers_probe")).unwrap();
        let e = t.host.bind(&a, false).unwrap_err();
        let VfioError::BindRolledBack { cause, rollback, .. } = &e else { panic!("{e}") };
        assert!(cause.to_string().contains("drivers_probe"), "{cause}");
        assert_eq!(*rollback, Rollback::Restored { driver: Some("e1000e".into()) });
        assert_eq!(t.read("sys/bus/pci/devices/0000:00:04.0/driver_override"), "\n");
        assert_eq!(t.read("sys/bus/pci/drivers/e1000e/bind"), "0000:00:04.0");
        assert!(!t.root.join("state/0000:00:04.0.driver").exists());
        assert!(!t.root.join("sys/bus/pci/drivers_probe").exists(), "never created");

        // The original driver's unbind missing: the override is restored, e1000e (never
        // released) is not rebound.
        let (t, a) = nic_tree();
        fs::remove_file(t.root.join("sys/bus/pci/drivers/e1000e/unbind")).unwrap();
        let e = t.host.bind(&a, false).unwrap_err();
        let VfioError::BindRolledBack { rollback, .. } = &e else { panic!("{e}") };
        assert_eq!(*rollback, Rollback::Restored { driver: Some("e1000e".into()) });
        assert_eq!(t.read("sys/bus/pci/devices/0000:00:04.0/driver_override"), "\n");
        assert_eq!(t.read("sys/bus/pci/drivers/e1000e/bind"), "");
        assert_eq!(t.read("sys/bus/pci/drivers_probe"), "");

        // A previous override is written back, not cleared.
        let (t, a) = nic_tree();
        fs::write(t.root.join("sys/bus/pci/devices/0000:00:04.0/driver_override"), "e1000e\n").unwrap();
        fs::remove_file(t.root.join("sys/bus/pci/drivers_probe")).unwrap();
        t.host.bind(&a, false).unwrap_err();
        assert_eq!(t.read("sys/bus/pci/devices/0000:00:04.0/driver_override"), "e1000e");

        // driver_override itself missing: the rollback cannot restore it and says so; the
        // state file stays for a later unbind.
        let (t, a) = nic_tree();
        fs::remove_file(t.root.join("sys/bus/pci/devices/0000:00:04.0/driver_override")).unwrap();
        let e = t.host.bind(&a, false).unwrap_err();
        let VfioError::BindRolledBack { rollback, .. } = &e else { panic!("{e}") };
        assert!(
            matches!(rollback, Rollback::Incomplete { errors, .. } if errors.len() == 1 && errors[0].contains("driver_override")),
            "{rollback}"
        );
        assert!(e.to_string().contains("ROLLBACK INCOMPLETE"), "{e}");
        assert_eq!(t.read("state/0000:00:04.0.driver"), "0000:00:04.0 e1000e\n");
    }

    #[test]
    fn a_rollback_that_cannot_restore_the_driver_says_so() {
        // The kernel gave the function to igb instead: the rollback releases it from igb,
        // restores the override, rebinds e1000e, and reports what it found afterwards.
        let (t, a) = nic_tree();
        let f = t.host.function(&a).unwrap();
        t.driver("igb");
        play_kernel(&t, "0000:00:04.0", "igb");
        let r = t.host.roll_back(&a, &f, &Steps { override_written: true, unbound: true });
        assert_eq!(t.read("sys/bus/pci/drivers/igb/unbind"), "0000:00:04.0");
        assert_eq!(t.read("sys/bus/pci/devices/0000:00:04.0/driver_override"), "\n");
        assert_eq!(t.read("sys/bus/pci/drivers/e1000e/bind"), "0000:00:04.0");
        // The fake kernel did not act on those writes: still on igb, and the report says so.
        assert_eq!(r, Rollback::Incomplete { now: "igb".into(), want: "e1000e".into(), errors: vec![] });
        assert!(r.to_string().contains("bound to igb, expected e1000e"), "{r}");
    }

    #[test]
    fn hostile_state_files_are_refused_and_nothing_is_written() {
        let long = format!("0000:00:04.0 {}", "a".repeat(DRIVER_NAME_MAX + 1));
        let huge = format!("0000:00:04.0 {}", "a".repeat(4096));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("dotdot driver", b"0000:00:04.0 ../../../../etc\n".to_vec()),
            ("dotdot alone", b"../../etc".to_vec()),
            ("old format", b"e1000e\n".to_vec()),
            ("long name", long.into_bytes()),
            ("huge", huge.into_bytes()),
            ("binary", vec![0x30, 0xff, 0x00, 0x7f, 0x1b, b'\n', 0xfe]),
            ("nul in name", b"0000:00:04.0 e1000e\0x\n".to_vec()),
            ("slash", b"0000:00:04.0 e1000e/../../x\n".to_vec()),
            ("other function", b"0000:00:05.0 e1000e\n".to_vec()),
            ("short address", b"00:04.0 e1000e\n".to_vec()),
            ("three fields", b"0000:00:04.0 e1000e extra\n".to_vec()),
            ("two lines", b"0000:00:04.0 e1000e\n0000:00:04.0 igb\n".to_vec()),
            ("empty", Vec::new()),
        ];
        for (what, content) in cases {
            let (t, a) = nic_tree();
            play_kernel(&t, "0000:00:04.0", "vfio-pci");
            // Decoys where an escaping path would land, inside the fake root.
            for d in ["etc", "x"] {
                fs::create_dir_all(t.root.join(d)).unwrap();
                fs::write(t.root.join(d).join("bind"), "decoy").unwrap();
            }
            fs::write(t.root.join("state/0000:00:04.0.driver"), &content).unwrap();
            let before = t.snapshot();
            let e = t.host.unbind(&a).unwrap_err();
            assert!(matches!(e, VfioError::BadStateFile { .. }), "{what}: {e}");
            assert!(e.to_string().len() < 400, "{what}: the message is bounded: {e}");
            assert_eq!(t.snapshot(), before, "{what}: nothing written");
        }
        // A symlink where the state file should be is neither followed on read nor on write.
        let (t, a) = nic_tree();
        fs::create_dir_all(t.root.join("etc")).unwrap();
        fs::write(t.root.join("etc/passwd"), "root:x:0:0\n").unwrap();
        symlink(t.root.join("etc/passwd"), t.root.join("state/0000:00:04.0.driver")).unwrap();
        let e = t.host.unbind(&a).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        t.host.bind(&a, false).unwrap_err();
        assert_eq!(t.read("etc/passwd"), "root:x:0:0\n");
    }

    #[test]
    fn state_files_round_trip() {
        let (t, a) = nic_tree();
        for driver in [Some("e1000e".to_string()), Some("mlx5_core".into()), Some("vfio-pci".into()), None] {
            let st = BindState { addr: a.clone(), driver };
            t.host.write_state(&st).unwrap();
            assert_eq!(t.host.read_state(&a).unwrap(), Some(st));
        }
        assert_eq!(t.host.read_state(&addr("0000:00:05.0")).unwrap(), None);
    }

    #[test]
    fn unbinding_a_function_nicqual_did_not_bind_changes_nothing() {
        let (t, a) = nic_tree();
        for driver in ["e1000e", "vfio-pci"] {
            play_kernel(&t, "0000:00:04.0", driver);
            let before = t.snapshot();
            let e = t.host.unbind(&a).unwrap_err();
            assert!(matches!(e, VfioError::NotBoundByNicqual { .. }), "{e}");
            let s = e.to_string();
            assert!(s.contains("not bound by nicqual") && s.contains(driver) && !s.contains("released"), "{s}");
            assert_eq!(t.snapshot(), before);
        }
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
