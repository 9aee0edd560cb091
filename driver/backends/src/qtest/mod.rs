//! The qtest backend: a PCI function inside a QEMU (or any qtest server, such as
//! `nicqual serve-qtest`) driven over QEMU's qtest line protocol, with no guest OS.
//!
//! * **Process.** [`QtestBackend::spawn`] starts the server with its listening socket in a
//!   private temp dir and connects to it; the server is killed and reaped on drop (and by
//!   the kernel if we die first). QEMU runs `-accel tcg` with a generated "halt" firmware
//!   ([`process::halt_bios`]): the CPU stops at the reset vector, so no firmware touches PCI.
//! * **PCI.** Config space through ports 0xCF8/0xCFC (the first 256 bytes); the backend
//!   assigns BARs itself (memory from 0xE0000000, I/O from 0xC000), as firmware would.
//! * **DMA.** Guest RAM is a shared file both sides map. [`Backend::dma_alloc`] hands out
//!   windows of it from a first-fit allocator; a window's IOVA is its guest-physical address
//!   ([`DmaMemory::fixed_iova`]). QEMU has no IOMMU here: mapping permissions are recorded,
//!   not enforced, and [`Backend::dma_faults`] is `None`.
//! * **Interrupts.** With no CPU to take a message, every MSI-X vector stays masked in the
//!   table and the backend observes delivery through the PBA, as QEMU's own qtests do:
//!   a pending bit of a vector the driver has not masked signals its eventfd, and is
//!   cleared by unmasking and re-masking the entry (the message then goes to the halted
//!   CPU's local APIC, harmlessly). Limitations: messages that coalesce between two polls
//!   count once; a message raised in the instant between unmask and re-mask is not seen.
//! * **Frames.** QEMU's NIC is plugged into a socket netdev whose other end the backend
//!   owns ([`QtestBackend::wire_send`], [`QtestBackend::wire_recv`]); `nicqual_qualify::wire_socket` is the
//!   `wire[socket]` qualification check built on it.
//! * **Time.** If the server answers `clock_step`, time is its virtual clock and `wait`
//!   steps it. Debian's QEMU 7.2 has no qtest accelerator (`clock_step` is refused), so
//!   there time is real: `wait` sleeps in bounded steps, polling the PBA.
//! * **QEMU generations.** [`QemuBuild::Host`] is the host's QEMU (Debian bookworm: 7.2,
//!   `-accel tcg`, halt firmware, real time). [`QemuBuild::Forky11`] is QEMU 11.1 from the
//!   Debian forky root ([`forky`]): `-accel qtest`, so no CPU ever runs (no firmware is
//!   needed) and time is the virtual clock: `wait(ns)` is one `clock_step ns`, costs no
//!   wall time, and bounds are exact. QEMU 11 answers `clock_step 0` with FAIL, so its
//!   clock is probed with a 1 ns step, and a QEMU 11 that does not step is an error.

pub mod forky;
pub mod process;
pub mod wire;

use crate::backend::{Backend, BackendInfo, BackendKind, DmaPerm};
use crate::dma::DmaMemory;
use crate::error::BackendError;
use crate::eventfd::EventFd;
use memmap2::{MmapOptions, MmapRaw};
use nicqual_hw::pci;
use process::ServerProcess;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wire::{QtestConn, WireError};

/// Environment variable naming the QEMU binary.
pub const QEMU_ENV: &str = "NICQUAL_QEMU";
/// QEMU binary used when [`QEMU_ENV`] is not set.
pub const QEMU_DEFAULT: &str = "qemu-system-x86_64";
/// Where the backend starts assigning memory BARs.
pub const MMIO_BASE: u64 = 0xE000_0000;
/// Where the backend starts assigning I/O BARs.
pub const IO_BASE: u32 = 0xC000;
/// Guest RAM below this is left alone (real-mode area, ISA holes); DMA memory comes from
/// above it.
pub const DMA_POOL_START: u64 = 16 << 20;
/// Message data of vector `v` is `MSI_DATA_BASE + v` (as in the emulated backend).
pub const MSI_DATA_BASE: u32 = 0x40;
/// The one configuration mechanism this backend uses (PCI local bus spec, mechanism #1).
const CONFIG_ADDRESS: u16 = pci::CONFIG_ADDRESS_PORT;
const CONFIG_DATA: u16 = pci::CONFIG_DATA_PORT;

/// How to start QEMU.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// QEMU binary: `$NICQUAL_QEMU`, else `qemu-system-x86_64` on PATH.
    pub binary: PathBuf,
    /// QEMU device name (`e1000e`).
    pub device: String,
    /// PCI slot on bus 0.
    pub slot: u8,
    /// Guest RAM in MiB.
    pub ram_mib: u64,
    /// The NIC's network backend.
    pub netdev: Netdev,
    /// More QEMU arguments.
    pub extra_args: Vec<String>,
    /// Bound on starting and connecting.
    pub start_timeout: Duration,
    /// Which QEMU: the host's (`binary`) or QEMU 11.1 from the forky root.
    pub build: QemuBuild,
}

/// Which QEMU runs the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QemuBuild {
    /// [`QemuConfig::binary`] on this host (Debian bookworm's 7.2): `-accel tcg` with the
    /// halt firmware, real time.
    #[default]
    Host,
    /// QEMU 11.1 from the Debian forky root ([`forky`]; `binary` is not used):
    /// `-accel qtest`, virtual time.
    Forky11,
}

impl QemuBuild {
    /// The device-spec prefix of this QEMU (`qemu`, `qemu11`).
    pub fn prefix(self) -> &'static str {
        match self {
            QemuBuild::Host => "qemu",
            QemuBuild::Forky11 => "qemu11",
        }
    }
}

impl QemuConfig {
    /// QEMU 11.1 from the forky root, otherwise the defaults.
    pub fn qemu11() -> QemuConfig {
        QemuConfig { build: QemuBuild::Forky11, ..QemuConfig::default() }
    }
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            binary: std::env::var_os(QEMU_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(QEMU_DEFAULT)),
            device: "e1000e".into(),
            slot: 4,
            ram_mib: 128,
            netdev: Netdev::Socket,
            extra_args: Vec::new(),
            start_timeout: Duration::from_secs(20),
            build: QemuBuild::Host,
        }
    }
}

/// What the QEMU NIC's port is plugged into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Netdev {
    /// One end of a socket pair (`-netdev socket,fd=N`); the backend owns the other end,
    /// so the client sees every frame the NIC sends and injects what it receives
    /// ([`QtestBackend::wire_send`], [`QtestBackend::wire_recv`]).
    Socket,
    /// Any other `-netdev` argument (its id must be `n0`).
    Spec(String),
}

/// Largest frame accepted from the socket netdev.
pub const WIRE_MAX_FRAME: usize = 65536;

/// What to connect to.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start QEMU with its device.
    Qemu(QemuConfig),
    /// Start another qtest server: `program args… --socket S --mem-path F --ram-mib N`
    /// (the options `nicqual serve-qtest` takes); the function is at `slot` on bus 0.
    Server { program: PathBuf, args: Vec<String>, slot: u8, ram_mib: u64, start_timeout: Duration },
}

/// Guest RAM shared with the server, and the DMA allocator over it.
#[derive(Debug)]
struct GuestRam {
    map: Arc<MmapRaw>,
    pool: Arc<Mutex<Pool>>,
}

/// First-fit allocator of 4 KiB-aligned guest-physical ranges.
#[derive(Debug, Default)]
struct Pool {
    /// start -> length of each free range.
    free: BTreeMap<u64, u64>,
}

impl Pool {
    fn alloc(&mut self, len: u64) -> Option<u64> {
        let (&start, &flen) = self.free.iter().find(|(_, l)| **l >= len)?;
        self.free.remove(&start);
        if flen > len {
            self.free.insert(start + len, flen - len);
        }
        Some(start)
    }

    fn release(&mut self, start: u64, len: u64) {
        let mut start = start;
        let mut len = len;
        if let Some((&ps, &pl)) = self.free.range(..start).next_back()
            && ps + pl == start
        {
            self.free.remove(&ps);
            start = ps;
            len += pl;
        }
        if let Some(&nl) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            len += nl;
        }
        self.free.insert(start, len);
    }

    fn free_bytes(&self) -> u64 {
        self.free.values().sum()
    }
}

#[derive(Debug, Clone, Copy)]
struct Bar {
    addr: u64,
    len: u64,
    io: bool,
}

use nicqual_pci::caps::MsixLayout;

#[derive(Debug, Clone, Copy)]
enum Clock {
    Real(Instant),
    /// Server's virtual time, ns, as of the last `clock_step`.
    Virtual(u64),
}

/// Counters of what the backend did on the wire.
#[derive(Debug, Default, Clone, Copy)]
pub struct QtestStats {
    /// Messages observed through PBA pending bits and signalled on a notifier.
    pub messages: u64,
    /// PBA polls.
    pub pba_polls: u64,
}

/// Called with every frame that crosses the NIC's wire and the backend's time, ns.
pub type WireCapture = Box<dyn FnMut(&[u8], u64)>;

/// A wire capture callback (`--pcap`).
struct Capture(WireCapture);

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capture")
    }
}

/// A PCI function behind a qtest server.
#[derive(Debug)]
pub struct QtestBackend {
    conn: QtestConn,
    /// Killed and reaped on drop (after the connection closes, before the dir goes).
    server: Option<ServerProcess>,
    ram: Option<GuestRam>,
    _dir: Option<tempfile::TempDir>,
    name: String,
    devfn: u32,
    bars: [Option<Bar>; 6],
    msix: Option<MsixLayout>,
    notifiers: Vec<EventFd>,
    driver_masked: Vec<bool>,
    mapped: BTreeMap<u64, (DmaMemory, DmaPerm)>,
    /// Our end of the NIC's socket netdev.
    wire: Option<UnixStream>,
    /// Called with every frame that crosses the wire (either way) and the time, ns.
    capture: Option<Capture>,
    clock: Clock,
    /// The server must answer `clock_step` (QEMU under the qtest accelerator): probe it
    /// with a 1 ns step (QEMU refuses 0) and fail set-up if it does not step.
    needs_virtual_time: bool,
    broken: Option<String>,
    pub stats: QtestStats,
}

fn wire_err(what: &str, e: WireError) -> BackendError {
    BackendError::Qtest { what: what.to_string(), why: e.to_string() }
}

fn private_dir() -> Result<tempfile::TempDir, BackendError> {
    let b = tempfile::Builder::new().prefix("nicqual-qtest-").tempdir_in(shm_or_tmp());
    b.map_err(|e| BackendError::Io { what: "create the qtest temp dir".into(), source: e })
}

/// Guest RAM is best in tmpfs (/dev/shm) when there is one.
fn shm_or_tmp() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && std::fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly()) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn create_ram(path: &Path, mib: u64) -> Result<(), BackendError> {
    let f = std::fs::File::create(path)
        .map_err(|e| BackendError::Io { what: format!("create guest RAM {}", path.display()), source: e })?;
    f.set_len(mib << 20).map_err(|e| BackendError::Io { what: format!("size guest RAM {}", path.display()), source: e })
}

fn map_ram(path: &Path, mib: u64) -> Result<GuestRam, BackendError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| BackendError::Io { what: format!("open guest RAM {}", path.display()), source: e })?;
    let len = (mib << 20) as usize;
    let map = MmapOptions::new()
        .len(len)
        .map_raw(&f)
        .map_err(|e| BackendError::Io { what: format!("map guest RAM {}", path.display()), source: e })?;
    let mut pool = Pool::default();
    if (len as u64) > DMA_POOL_START {
        pool.free.insert(DMA_POOL_START, len as u64 - DMA_POOL_START);
    }
    Ok(GuestRam { map: Arc::new(map), pool: Arc::new(Mutex::new(pool)) })
}

/// The QEMU command line for `cfg` (without the binary); `wire_fd` is the descriptor the
/// child inherits for [`Netdev::Socket`]. `bios` is the halt firmware of
/// [`QemuBuild::Host`]; under the qtest accelerator no CPU runs and it is not passed.
pub fn qemu_args(cfg: &QemuConfig, bios: &Path, sock: &Path, ram: &Path, wire_fd: Option<i32>) -> Vec<String> {
    let netdev = match &cfg.netdev {
        Netdev::Socket => format!("socket,id=n0,fd={}", wire_fd.unwrap_or(-1)),
        Netdev::Spec(s) => s.clone(),
    };
    let mut a: Vec<String> = [
        "-machine",
        "q35,memory-backend=ram",
        "-object",
        &format!("memory-backend-file,id=ram,size={}M,mem-path={},share=on", cfg.ram_mib, ram.display()),
        "-m",
        &format!("{}M", cfg.ram_mib),
        "-qtest",
        &format!("unix:{},server=on,wait=on", sock.display()),
        "-qtest-log",
        "/dev/null",
        "-display",
        "none",
        "-nodefaults",
        "-no-user-config",
        "-device",
        &format!("{},netdev=n0,addr={:02x}.0", cfg.device, cfg.slot),
        "-netdev",
        &netdev,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match cfg.build {
        QemuBuild::Host => a.extend(["-accel".into(), "tcg".into(), "-bios".into(), bios.display().to_string()]),
        QemuBuild::Forky11 => a.extend(["-accel".into(), "qtest".into()]),
    }
    a.extend(cfg.extra_args.iter().cloned());
    a
}

impl QtestBackend {
    /// Start `target`, connect, and set the function up as firmware would (BARs, decode).
    pub fn spawn(target: Target) -> Result<QtestBackend, BackendError> {
        let dir = private_dir()?;
        let sock = dir.path().join("qtest.sock");
        let ram_path = dir.path().join("guest-ram");
        // The socket netdev: QEMU gets one end (inherited under its own number), we keep
        // the other; our copy of QEMU's end is closed once QEMU has started.
        let pair = match &target {
            Target::Qemu(QemuConfig { netdev: Netdev::Socket, .. }) => Some(
                UnixStream::pair()
                    .map_err(|e| BackendError::Io { what: "socket pair for the netdev".into(), source: e })?,
            ),
            _ => None,
        };
        let child_fd = pair.as_ref().map(|(_, theirs)| theirs.as_raw_fd());
        let (program, args, slot, ram_mib, timeout, name, hint) = match &target {
            Target::Qemu(cfg) if cfg.build == QemuBuild::Forky11 => {
                // Missing root: say how to build it, before anything starts.
                forky::root()?;
                let (program, args) = forky::qemu_command(&qemu_args(cfg, Path::new(""), &sock, &ram_path, child_fd));
                (
                    program,
                    args,
                    cfg.slot,
                    cfg.ram_mib,
                    cfg.start_timeout,
                    format!("qemu11:{}", cfg.device),
                    forky::BUILD_HINT.to_string(),
                )
            }
            Target::Qemu(cfg) => {
                let bios = dir.path().join("halt.bin");
                std::fs::write(&bios, process::halt_bios())
                    .map_err(|e| BackendError::Io { what: format!("write {}", bios.display()), source: e })?;
                (
                    cfg.binary.clone(),
                    qemu_args(cfg, &bios, &sock, &ram_path, child_fd),
                    cfg.slot,
                    cfg.ram_mib,
                    cfg.start_timeout,
                    format!("qemu:{}", cfg.device),
                    format!(
                        "; install QEMU (as root: apt-get install -y qemu-system-x86) or set {QEMU_ENV} to the qemu-system-x86_64 binary"
                    ),
                )
            }
            Target::Server { program, args, slot, ram_mib, start_timeout } => {
                let mut a = args.clone();
                a.extend([
                    "--socket".to_string(),
                    sock.display().to_string(),
                    "--mem-path".to_string(),
                    ram_path.display().to_string(),
                    // The file is ours, created just above for this server to share.
                    "--reuse-mem-path".to_string(),
                    "--ram-mib".to_string(),
                    ram_mib.to_string(),
                ]);
                (
                    program.clone(),
                    a,
                    *slot,
                    *ram_mib,
                    *start_timeout,
                    format!("qtest:{}", program.display()),
                    String::new(),
                )
            }
        };
        create_ram(&ram_path, ram_mib)?;
        let mut server =
            ServerProcess::spawn(&program, &args, &dir.path().join("stderr"), child_fd).map_err(|e| match e {
                BackendError::ProgramNotFound { program, why, .. } => {
                    BackendError::ProgramNotFound { program, why, hint }
                }
                e => e,
            })?;
        let stream = server.connect(&sock, timeout)?;
        let ram = map_ram(&ram_path, ram_mib)?;
        let conn = QtestConn::new(stream, timeout)
            .map_err(|e| BackendError::Io { what: "set qtest socket timeouts".into(), source: e })?;
        let mut b = QtestBackend::with_conn(conn, Some(ram), slot, name)?;
        b.needs_virtual_time = matches!(&target, Target::Qemu(c) if c.build == QemuBuild::Forky11);
        if let Err(e) = b.setup() {
            // A server that dies right after it started listening (bad option, unknown
            // device) is reported with its own words rather than as a broken pipe.
            return Err(server.exit_error(Duration::from_secs(2)).unwrap_or(e));
        }
        b.server = Some(server);
        b._dir = Some(dir);
        // QEMU holds its end now; dropping our copy of it leaves one reader per side.
        b.wire = pair.map(|(ours, _theirs)| ours);
        Ok(b)
    }

    /// True when this backend owns the other end of the NIC's wire ([`Netdev::Socket`]).
    pub fn has_wire(&self) -> bool {
        self.wire.is_some()
    }

    /// Have `f` called with every frame that crosses the NIC's wire, either way, and the
    /// backend's time in ns (`--pcap`).
    pub fn set_wire_capture(&mut self, f: WireCapture) {
        self.capture = Some(Capture(f));
    }

    fn captured(&mut self, frame: &[u8]) {
        let now = self.now_ns();
        if let Some(c) = self.capture.as_mut() {
            (c.0)(frame, now);
        }
    }

    /// Put `frame` (no FCS) on the NIC's wire: QEMU's socket netdev receives it as if it
    /// came from a link partner (stream framing: big-endian u32 length, then the bytes).
    pub fn wire_send(&mut self, frame: &[u8]) -> Result<(), BackendError> {
        self.captured(frame);
        let w = self.wire.as_mut().ok_or_else(|| BackendError::Qtest {
            what: "wire_send".into(),
            why: "QEMU was not started with the socket netdev".into(),
        })?;
        if frame.len() > WIRE_MAX_FRAME {
            return Err(BackendError::Qtest { what: "wire_send".into(), why: format!("{}-byte frame", frame.len()) });
        }
        let mut buf = Vec::with_capacity(4 + frame.len());
        buf.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        buf.extend_from_slice(frame);
        w.write_all(&buf).map_err(|e| BackendError::Io { what: "write to the netdev socket".into(), source: e })
    }

    /// The next frame the NIC sent on its wire, waiting at most `timeout` for it to start;
    /// `None` when nothing came. A length above [`WIRE_MAX_FRAME`] is an error, not a length.
    pub fn wire_recv(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, BackendError> {
        let io = |what: &str, e| BackendError::Io { what: what.to_string(), source: e };
        let w = self.wire.as_mut().ok_or_else(|| BackendError::Qtest {
            what: "wire_recv".into(),
            why: "QEMU was not started with the socket netdev".into(),
        })?;
        w.set_read_timeout(Some(timeout.max(Duration::from_micros(1)))).map_err(|e| io("netdev socket timeout", e))?;
        let mut hdr = [0u8; 4];
        match w.read(&mut hdr) {
            Ok(0) => {
                return Err(BackendError::Qtest {
                    what: "wire_recv".into(),
                    why: "QEMU closed the netdev socket".into(),
                });
            }
            Ok(n) => {
                // The rest of the frame follows at once; bound the wait for it.
                w.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| io("netdev socket timeout", e))?;
                if let Some(rest) = hdr.get_mut(n..) {
                    w.read_exact(rest).map_err(|e| io("read a netdev frame header", e))?;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Ok(None);
            }
            Err(e) => return Err(io("read the netdev socket", e)),
        }
        let len = u32::from_be_bytes(hdr) as usize;
        if len > WIRE_MAX_FRAME {
            return Err(BackendError::Qtest { what: "wire_recv".into(), why: format!("frame length {len} from QEMU") });
        }
        let mut frame = vec![0u8; len];
        w.read_exact(&mut frame).map_err(|e| io("read a netdev frame", e))?;
        self.captured(&frame);
        Ok(Some(frame))
    }

    /// Connect to a server that is already running (its function at `slot`). DMA needs
    /// the server's guest RAM file (`mem_path`, `ram_mib`).
    pub fn connect(
        sock: &Path,
        slot: u8,
        ram: Option<(&Path, u64)>,
        timeout: Duration,
    ) -> Result<QtestBackend, BackendError> {
        let s = std::os::unix::net::UnixStream::connect(sock)
            .map_err(|e| BackendError::Io { what: format!("connect to {}", sock.display()), source: e })?;
        let conn = QtestConn::new(s, timeout)
            .map_err(|e| BackendError::Io { what: "set qtest socket timeouts".into(), source: e })?;
        let ram = ram.map(|(p, mib)| map_ram(p, mib)).transpose()?;
        let mut b = QtestBackend::with_conn(conn, ram, slot, format!("qtest:{}", sock.display()))?;
        b.setup()?;
        Ok(b)
    }

    fn with_conn(conn: QtestConn, ram: Option<GuestRam>, slot: u8, name: String) -> Result<QtestBackend, BackendError> {
        if slot >= 32 {
            return Err(BackendError::Qtest { what: "slot".into(), why: format!("slot {slot} is not 0..=31") });
        }
        Ok(QtestBackend {
            conn,
            server: None,
            ram,
            _dir: None,
            name,
            devfn: (slot as u32) << 3,
            bars: [None; 6],
            msix: None,
            notifiers: Vec::new(),
            driver_masked: Vec::new(),
            mapped: BTreeMap::new(),
            wire: None,
            capture: None,
            clock: Clock::Real(Instant::now()),
            needs_virtual_time: false,
            broken: None,
            stats: QtestStats::default(),
        })
    }

    /// Probe the clock, check a function is present, assign its BARs.
    fn setup(&mut self) -> Result<(), BackendError> {
        self.clock = if self.needs_virtual_time {
            Clock::Virtual(self.conn.clock_step(Some(1)).map_err(|e| wire_err("clock_step 1 (qtest accelerator)", e))?)
        } else {
            match self.conn.clock_step(Some(0)) {
                Ok(t) => Clock::Virtual(t),
                Err(WireError::Fail { .. }) => Clock::Real(Instant::now()),
                Err(e) => return Err(wire_err("probe clock_step", e)),
            }
        };
        let id = self.cfg_read(0, 4)?;
        if id & 0xFFFF == 0xFFFF {
            return Err(BackendError::Qtest {
                what: "PCI probe".into(),
                why: format!("no function at 00:{:02x}.0 (vendor/device reads {id:#010x})", self.devfn >> 3),
            });
        }
        self.assign_bars()?;
        self.msix = self.find_msix()?;
        Ok(())
    }

    /// The private directory (socket, guest RAM, firmware) of a server this backend started.
    pub fn work_dir(&self) -> Option<&Path> {
        self._dir.as_ref().map(|d| d.path())
    }

    /// PID of the server process this backend started, if any.
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(|s| s.pid())
    }

    /// Commands sent on the wire so far.
    pub fn commands(&self) -> u64 {
        self.conn.commands
    }

    /// Why the backend stopped talking to the server, if it did (all reads are then
    /// all-ones, as for a device that is gone).
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Guest-physical address of BAR `bar`.
    pub fn bar_address(&self, bar: u8) -> Option<u64> {
        self.bars.get(bar as usize).copied().flatten().map(|b| b.addr)
    }

    /// Bytes of guest RAM still free for DMA.
    pub fn dma_free_bytes(&self) -> u64 {
        self.ram.as_ref().map_or(0, |r| r.pool.lock().map_or(0, |p| p.free_bytes()))
    }

    /// Send a raw qtest command (for conformance cases that need the wire itself).
    pub fn raw(&mut self, cmd: &str) -> Result<String, BackendError> {
        self.conn.cmd(cmd).map_err(|e| wire_err("raw command", e))
    }

    /// Send a raw qtest command and return the server's whole reply line (`OK…`,
    /// `FAIL…`, `ERR…`): for clients that compare servers word for word.
    pub fn raw_reply(&mut self, cmd: &str) -> Result<String, BackendError> {
        self.conn.exchange(cmd).map_err(|e| wire_err("raw command", e))
    }

    fn cfg_addr(&self, off: u16) -> u32 {
        pci::CONFIG_ENABLE | self.devfn << 8 | (off as u32 & 0xFC)
    }

    fn cfg_read(&mut self, off: u16, size: u8) -> Result<u32, BackendError> {
        let a = self.cfg_addr(off);
        self.conn.out(4, CONFIG_ADDRESS, a).map_err(|e| wire_err("config address", e))?;
        self.conn.inp(size, CONFIG_DATA + (off & 3)).map_err(|e| wire_err("config read", e))
    }

    fn cfg_write(&mut self, off: u16, size: u8, v: u32) -> Result<(), BackendError> {
        let a = self.cfg_addr(off);
        self.conn.out(4, CONFIG_ADDRESS, a).map_err(|e| wire_err("config address", e))?;
        self.conn.out(size, CONFIG_DATA + (off & 3), v).map_err(|e| wire_err("config write", e))
    }

    /// Size and place every BAR (memory naturally aligned from [`MMIO_BASE`], I/O from
    /// [`IO_BASE`]), then enable I/O and memory decode. Bus mastering stays the driver's.
    fn assign_bars(&mut self) -> Result<(), BackendError> {
        let cmd = self.cfg_read(pci::COMMAND, 2)?;
        self.cfg_write(pci::COMMAND, 2, cmd & !((pci::COMMAND_IO | pci::COMMAND_MEMORY) as u32))?;
        let mut mem = MMIO_BASE;
        let mut io = IO_BASE;
        self.bars = [None; 6];
        let mut n = 0u8;
        while n < 6 {
            let off = pci::bar(n);
            let orig = self.cfg_read(off, 4)?;
            self.cfg_write(off, 4, u32::MAX)?;
            let sz = self.cfg_read(off, 4)?;
            let is_io = orig & 1 == 1;
            let is64 = !is_io && (orig >> 1) & 3 == 2;
            let mask = if is_io { sz & !3 } else { sz & !0xF };
            if mask == 0 {
                self.cfg_write(off, 4, orig)?;
                n += if is64 { 2 } else { 1 };
                continue;
            }
            let len = (!mask).wrapping_add(1) as u64 & if is_io { 0xFFFF } else { 0xFFFF_FFFF };
            if is_io {
                let base = (io as u64).div_ceil(len.max(4)) * len.max(4);
                self.cfg_write(off, 4, base as u32)?;
                io = (base + len) as u32;
                if let Some(slot) = self.bars.get_mut(n as usize) {
                    *slot = Some(Bar { addr: base, len, io: true });
                }
            } else {
                let base = mem.div_ceil(len) * len;
                self.cfg_write(off, 4, base as u32)?;
                if is64 {
                    self.cfg_write(off + 4, 4, 0)?;
                }
                mem = base + len;
                if let Some(slot) = self.bars.get_mut(n as usize) {
                    *slot = Some(Bar { addr: base, len, io: false });
                }
            }
            n += if is64 { 2 } else { 1 };
        }
        self.cfg_write(pci::COMMAND, 2, cmd | (pci::COMMAND_IO | pci::COMMAND_MEMORY) as u32)
    }

    fn find_msix(&mut self) -> Result<Option<MsixLayout>, BackendError> {
        nicqual_pci::caps::msix_layout(|off, size| self.cfg_read(off, size))
    }

    fn fail(&mut self, e: WireError) {
        if self.broken.is_none() {
            tracing::error!(target: "nicqual::qtest", "{e}: treating the device as gone");
            self.broken = Some(e.to_string());
        }
    }

    fn bar_checked(&self, bar: u8, offset: u64, size: u64) -> Option<Bar> {
        let b = self.bars.get(bar as usize).copied().flatten()?;
        (offset.checked_add(size)? <= b.len).then_some(b)
    }

    /// Sized BAR read (1, 2, 4 or 8 bytes); all-ones when the BAR or offset is invalid or
    /// the server is unreachable.
    pub fn bar_read(&mut self, bar: u8, offset: u64, size: u8) -> u64 {
        let ones = if size >= 8 { u64::MAX } else { (1u64 << (8 * size as u32)) - 1 };
        if self.broken.is_some() || !matches!(size, 1 | 2 | 4 | 8) {
            return ones;
        }
        let Some(b) = self.bar_checked(bar, offset, size as u64) else { return ones };
        let r = if b.io {
            if size == 8 {
                return ones;
            }
            self.conn.inp(size, (b.addr + offset) as u16).map(|v| v as u64)
        } else {
            let c = match size {
                1 => 'b',
                2 => 'w',
                4 => 'l',
                _ => 'q',
            };
            self.conn.cmd_hex(&format!("read{c} {:#x}", b.addr + offset))
        };
        r.unwrap_or_else(|e| {
            self.fail(e);
            ones
        }) & ones
    }

    /// Sized BAR write (1, 2, 4 or 8 bytes); ignored when invalid or unreachable.
    pub fn bar_write(&mut self, bar: u8, offset: u64, size: u8, v: u64) {
        if self.broken.is_some() || !matches!(size, 1 | 2 | 4 | 8) {
            return;
        }
        let Some(b) = self.bar_checked(bar, offset, size as u64) else { return };
        let r = if b.io {
            if size == 8 {
                return;
            }
            self.conn.out(size, (b.addr + offset) as u16, v as u32)
        } else {
            let c = match size {
                1 => 'b',
                2 => 'w',
                4 => 'l',
                _ => 'q',
            };
            self.conn.cmd(&format!("write{c} {:#x} {v:#x}", b.addr + offset)).map(|_| ())
        };
        if let Err(e) = r {
            self.fail(e);
        }
    }

    fn msix_entry_ctrl(&mut self, l: MsixLayout, v: u16, ctrl: u32) {
        let off = l.table_off + v as u64 * pci::MSIX_ENTRY_SIZE + pci::MSIX_ENTRY_VECTOR_CTRL;
        self.bar_write(l.table_bir, off, 4, ctrl as u64);
    }

    /// Poll the PBA once: every pending vector the driver has not masked is signalled on
    /// its eventfd and its pending bit cleared (unmask + re-mask). Returns how many.
    fn poll_msix(&mut self) -> u32 {
        let Some(l) = self.msix else { return 0 };
        if self.notifiers.is_empty() || self.broken.is_some() {
            return 0;
        }
        let mut fired = 0;
        let n = self.notifiers.len().min(l.size as usize);
        for word in 0..n.div_ceil(32) {
            self.stats.pba_polls += 1;
            let pba = self.bar_read(l.pba_bir, l.pba_off + 4 * word as u64, 4) as u32;
            if pba == 0 || pba == u32::MAX {
                continue;
            }
            for bit in 0..32 {
                let v = word * 32 + bit;
                if v >= n || pba & (1 << bit) == 0 || self.driver_masked.get(v).copied().unwrap_or(true) {
                    continue;
                }
                self.msix_entry_ctrl(l, v as u16, 0);
                self.msix_entry_ctrl(l, v as u16, pci::MSIX_ENTRY_CTRL_MASKBIT);
                if let Some(fd) = self.notifiers.get(v) {
                    let _ = fd.signal();
                }
                self.stats.messages += 1;
                fired += 1;
            }
        }
        fired
    }
}

impl Backend for QtestBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: BackendKind::Qtest,
            name: self.name.clone(),
            msix_table_access: true,
            virtual_time: matches!(self.clock, Clock::Virtual(_)),
        }
    }

    fn config_read(&mut self, offset: u16, size: u8) -> Result<u32, BackendError> {
        if !matches!(size, 1 | 2 | 4) || offset as usize + size as usize > 256 || !offset.is_multiple_of(size as u16) {
            return Err(BackendError::BadConfigAccess { offset, size });
        }
        self.cfg_read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) -> Result<(), BackendError> {
        if !matches!(size, 1 | 2 | 4) || offset as usize + size as usize > 256 || !offset.is_multiple_of(size as u16) {
            return Err(BackendError::BadConfigAccess { offset, size });
        }
        self.cfg_write(offset, size, value)
    }

    fn bar_len(&self, bar: u8) -> Option<u64> {
        self.bars.get(bar as usize).copied().flatten().map(|b| b.len)
    }

    fn read32(&mut self, bar: u8, offset: u64) -> u32 {
        self.bar_read(bar, offset, 4) as u32
    }

    fn write32(&mut self, bar: u8, offset: u64, value: u32) {
        self.bar_write(bar, offset, 4, value as u64)
    }

    fn dma_alloc(&mut self, len: usize) -> Result<DmaMemory, BackendError> {
        let ram = self.ram.as_ref().ok_or_else(|| BackendError::DmaAlloc {
            len,
            why: "this qtest server shares no guest RAM with us".into(),
        })?;
        let len = len.max(1).div_ceil(4096) * 4096;
        let gpa = ram
            .pool
            .lock()
            .map_err(|_| BackendError::DmaAlloc { len, why: "allocator poisoned".into() })?
            .alloc(len as u64)
            .ok_or_else(|| BackendError::DmaAlloc { len, why: "guest RAM exhausted".into() })?;
        let pool = Arc::clone(&ram.pool);
        let release = Box::new(move || {
            if let Ok(mut p) = pool.lock() {
                p.release(gpa, len as u64);
            }
        });
        // SAFETY: the first-fit pool hands `gpa..gpa+len` out once and takes it back only
        // in `release`, which runs when the last clone of this window is dropped, so no
        // other live DmaMemory covers any of these bytes.
        unsafe { DmaMemory::window(Arc::clone(&ram.map), gpa as usize, len, gpa, release) }
    }

    fn dma_map(&mut self, mem: &DmaMemory, iova: u64, perm: DmaPerm) -> Result<(), BackendError> {
        let len = mem.len() as u64;
        let ours = self.ram.as_ref().is_some_and(|r| {
            let base = r.map.as_mut_ptr() as usize;
            let p = mem.as_ptr() as usize;
            p >= base && p + mem.len() <= base + r.map.len()
        });
        if !ours || mem.fixed_iova() != Some(iova) {
            return Err(BackendError::DmaMap {
                iova,
                len,
                why: format!(
                    "on qtest DMA memory must come from this backend's dma_alloc and be mapped at its guest-physical address ({})",
                    mem.fixed_iova().map_or("none".to_string(), |a| format!("{a:#x}"))
                ),
            });
        }
        if self.mapped.contains_key(&iova) {
            return Err(BackendError::DmaMap { iova, len, why: "already mapped".into() });
        }
        self.mapped.insert(iova, (mem.clone(), perm));
        Ok(())
    }

    fn dma_unmap(&mut self, iova: u64) -> Result<(), BackendError> {
        self.mapped.remove(&iova).map(|_| ()).ok_or(BackendError::DmaUnmap { iova, why: "not mapped".into() })
    }

    fn msix_enable(&mut self, vectors: u16) -> Result<(), BackendError> {
        let l = self.msix.ok_or(BackendError::Msix { vectors, why: "device has no MSI-X capability".into() })?;
        if vectors == 0 || vectors > l.size || vectors > 32 {
            return Err(BackendError::Msix { vectors, why: format!("device has {} vectors", l.size) });
        }
        let mut fds = Vec::with_capacity(vectors as usize);
        for _ in 0..vectors {
            fds.push(EventFd::new().map_err(|e| BackendError::Io { what: "eventfd".into(), source: e })?);
        }
        for v in 0..l.size as u64 {
            let e = l.table_off + v * pci::MSIX_ENTRY_SIZE;
            self.bar_write(l.table_bir, e + pci::MSIX_ENTRY_VECTOR_CTRL, 4, pci::MSIX_ENTRY_CTRL_MASKBIT as u64);
            if v < vectors as u64 {
                self.bar_write(l.table_bir, e + pci::MSIX_ENTRY_ADDR_LO, 4, pci::MSI_ADDRESS_BASE);
                self.bar_write(l.table_bir, e + pci::MSIX_ENTRY_ADDR_HI, 4, 0);
                self.bar_write(l.table_bir, e + pci::MSIX_ENTRY_DATA, 4, (MSI_DATA_BASE + v as u32) as u64);
            }
        }
        self.cfg_write(l.cap + pci::MSIX_MSG_CTRL, 2, pci::MSIX_CTRL_ENABLE as u32)?;
        if let Some(b) = &self.broken {
            return Err(BackendError::Msix { vectors, why: b.clone() });
        }
        self.notifiers = fds;
        self.driver_masked = vec![false; vectors as usize];
        Ok(())
    }

    fn msix_disable(&mut self) -> Result<(), BackendError> {
        if let Some(l) = self.msix
            && self.broken.is_none()
        {
            self.cfg_write(l.cap + pci::MSIX_MSG_CTRL, 2, 0)?;
        }
        self.notifiers.clear();
        self.driver_masked.clear();
        Ok(())
    }

    fn msix_mask(&mut self, vector: u16, masked: bool) -> Result<(), BackendError> {
        let have = self.notifiers.len() as u16;
        match self.driver_masked.get_mut(vector as usize) {
            Some(m) => *m = masked,
            None => return Err(BackendError::NoSuchVector { vector, have }),
        }
        // The table entry itself stays masked (that is how delivery is observed); a
        // message held while the driver had the vector masked is signalled at the next
        // poll, as an unmask would send it.
        Ok(())
    }

    fn msix_masked_delivery(&self) -> bool {
        true
    }

    fn notifier(&self, vector: u16) -> Option<&EventFd> {
        self.notifiers.get(vector as usize)
    }

    fn msix_vectors(&self) -> u16 {
        self.notifiers.len() as u16
    }

    fn live_mappings(&self) -> usize {
        self.mapped.len()
    }

    fn reset(&mut self) -> Result<(), BackendError> {
        Err(BackendError::Reset {
            why: "qtest offers no function-level reset for this device (no FLR capability); use CTRL.RST".into(),
        })
    }

    fn now_ns(&self) -> u64 {
        match self.clock {
            Clock::Real(t0) => t0.elapsed().as_nanos() as u64,
            Clock::Virtual(t) => t,
        }
    }

    fn wait(&mut self, ns: u64) {
        match self.clock {
            Clock::Virtual(_) => {
                // QEMU refuses a 0 ns step (FAIL): a zero wait only polls.
                if ns > 0 {
                    match self.conn.clock_step(Some(ns)) {
                        Ok(t) => self.clock = Clock::Virtual(t),
                        Err(e) => self.fail(e),
                    }
                }
                self.poll_msix();
            }
            Clock::Real(t0) => {
                let end = t0.elapsed() + Duration::from_nanos(ns);
                // Poll often for short waits (interrupt latency), less for long ones.
                let step = if ns > 20_000_000 { Duration::from_millis(1) } else { Duration::from_micros(50) };
                // Bounded: each round sleeps at least `step` or ends the wait.
                let max_rounds = ns / step.as_nanos() as u64 + 2;
                for _ in 0..max_rounds {
                    if self.poll_msix() > 0 || self.broken.is_some() {
                        return;
                    }
                    let now = t0.elapsed();
                    if now >= end {
                        return;
                    }
                    std::thread::sleep(step.min(end - now));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_first_fit_and_coalesce() {
        let mut p = Pool::default();
        p.free.insert(0x0100_0000, 0x10_000);
        let a = p.alloc(0x1000).unwrap();
        let b = p.alloc(0x2000).unwrap();
        assert_eq!((a, b), (0x0100_0000, 0x0100_1000));
        assert!(p.alloc(0x100_000).is_none());
        p.release(a, 0x1000);
        p.release(b, 0x2000);
        assert_eq!(p.free.len(), 1);
        assert_eq!(p.free_bytes(), 0x10_000);
    }

    #[test]
    fn qemu_command_line_is_halted_tcg_with_shared_ram() {
        let cfg = QemuConfig::default();
        let a = qemu_args(&cfg, Path::new("/d/halt.bin"), Path::new("/d/s"), Path::new("/d/ram"), Some(7)).join(" ");
        assert!(a.contains("-accel tcg"));
        assert!(a.contains("-bios /d/halt.bin"));
        assert!(a.contains("-qtest unix:/d/s,server=on,wait=on"));
        assert!(a.contains("mem-path=/d/ram,share=on"));
        assert!(a.contains("-device e1000e,netdev=n0,addr=04.0"));
        assert!(a.contains("-netdev socket,id=n0,fd=7"));
    }

    #[test]
    fn qemu11_command_line_is_the_qtest_accelerator_without_firmware() {
        let cfg = QemuConfig::qemu11();
        let a = qemu_args(&cfg, Path::new("/d/halt.bin"), Path::new("/d/s"), Path::new("/d/ram"), Some(7)).join(" ");
        assert!(a.contains("-accel qtest"), "{a}");
        assert!(!a.contains("-bios") && !a.contains("tcg"), "{a}");
        assert!(a.contains("-nodefaults"), "no default NIC beside ours: {a}");
        assert_eq!(cfg.build.prefix(), "qemu11");
    }
}
