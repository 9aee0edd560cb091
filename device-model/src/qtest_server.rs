//! A qtest server for nicqual's own device models: the emulated PCI function answers QEMU's
//! qtest line protocol, so a client written for QEMU (ours, libqtest, a shell script on a
//! socket) drives it unchanged (`nicqual serve-qtest`).
//!
//! The machine is q35-like, with no CPU: config space through ports 0xCF8/0xCFC (the
//! host bridge 8086:29C0 at 00:00.0, the device at `slot`, every other function absent),
//! BARs placed by the client, guest RAM at guest-physical 0, and the device's DMA going to
//! guest RAM at IOVA = guest-physical address (its IOMMU model holds one window over the
//! whole RAM). Time is the model's virtual clock: `clock_step` advances it.
//!
//! Supported commands and QEMU 7.2's reply syntax for each:
//! `outb|outw|outl PORT VAL` → `OK`; `inb|inw|inl PORT` → `OK 0x%04x`;
//! `writeb|writew|writel|writeq ADDR VAL` → `OK`; `readb|readw|readl|readq ADDR` →
//! `OK 0x%016x`; `read ADDR SIZE` → `OK 0x<hex bytes>`; `write ADDR SIZE 0x<hex>` (short
//! data zero-filled) → `OK`; `b64read ADDR SIZE` → `OK <base64>`; `b64write ADDR SIZE B64`
//! → `OK`; `memset ADDR SIZE BYTE` → `OK`; `clock_step [NS]`, `clock_set NS` → `OK <ns>`;
//! `endianness` → `OK little`; anything else → `FAIL Unknown command '<name>'`.
//!
//! Where QEMU would abort (a missing argument, an unparsable number, an empty line) the
//! server answers `FAIL <reason>` and carries on. Unassigned memory reads 0 and unassigned
//! ports read all-ones, as in QEMU. BAR accesses narrower than 4 bytes are widened to the
//! aligned dword (reads shifted, writes zero-filled) and 8-byte ones split low dword first,
//! which is what QEMU does for a device whose register ops take exactly 4 bytes.

use crate::{HostRegion, PciDevice, Perm};
use base64::Engine;
use memmap2::{MmapOptions, MmapRaw};
use nicqual_hw::pci;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;

/// Largest `read`/`write`/`b64read`/`b64write`/`memset` size served (bounds allocations).
pub const MAX_BULK: u64 = 16 << 20;
/// Longest request line accepted (a `b64write` of [`MAX_BULK`] bytes fits).
pub const MAX_LINE: usize = (MAX_BULK as usize) * 3;

/// What the server counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServerStats {
    pub commands: u64,
    pub failed: u64,
    /// Interrupt messages the device sent to the (halted) CPU.
    pub messages: u64,
}

/// A PCI device model behind the qtest protocol.
pub struct QtestServer<D: PciDevice> {
    dev: D,
    /// Guest RAM; the device's IOMMU window holds another reference, so the mapping lives
    /// as long as either (even an IOMMU moved out of the device).
    ram: Arc<MmapRaw>,
    devfn: u32,
    config_address: u32,
    pub stats: ServerStats,
}

/// Errors setting up a server (the session itself answers `FAIL` and carries on).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("qtest: {what}: {why}")]
    Qtest { what: String, why: String },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

/// Parse a number as QEMU's qtest does (`qemu_strtou64(.., 0, ..)`): `0x` hex, `0` octal,
/// else decimal.
pub fn parse_num(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(o) = s.strip_prefix('0').filter(|o| !o.is_empty()) {
        u64::from_str_radix(o, 8).ok()
    } else {
        s.parse().ok()
    }
}

/// Standard base64 as GLib's `g_base64_encode` writes it (with padding).
pub fn base64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Standard base64, padding optional (GLib's decoder is as lenient); `None` on anything
/// else.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(s.trim_end_matches('=')).ok()
}

/// QEMU 7.2's reply syntax (softmmu/qtest.c).
pub mod reply {
    /// `inb`/`inw`/`inl`: `OK 0x%04x`.
    pub fn port_in(v: u32) -> String {
        format!("OK 0x{v:04x}")
    }

    /// `readb`/`readw`/`readl`/`readq`: `OK 0x%016x`.
    pub fn mem_read(v: u64) -> String {
        format!("OK 0x{v:016x}")
    }

    /// `read ADDR SIZE`: `OK 0x` followed by two hex digits per byte.
    pub fn bytes(data: &[u8]) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(5 + 2 * data.len());
        s.push_str("OK 0x");
        for b in data {
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    /// `b64read`: `OK <base64>`.
    pub fn b64(data: &[u8]) -> String {
        format!("OK {}", super::base64_encode(data))
    }

    /// `clock_step` / `clock_set`: `OK <ns>` (decimal).
    pub fn clock(ns: u64) -> String {
        format!("OK {ns}")
    }

    /// A command QEMU does not know: `FAIL Unknown command '<name>'`.
    pub fn unknown(name: &str) -> String {
        format!("FAIL Unknown command '{name}'")
    }

    pub const OK: &str = "OK";
}

/// Guest RAM: a shared file both sides map (`path`), or private anonymous memory.
pub fn guest_ram(path: Option<&Path>, mib: u64) -> Result<MmapRaw, ServeError> {
    guest_ram_at(path, mib, false)
}

/// Most guest RAM a server takes (`--ram-mib`).
pub const MAX_RAM_MIB: u64 = 16 << 10;

/// Guest RAM of `mib` MiB (1..=[`MAX_RAM_MIB`]): anonymous, or the file at `path`. A file
/// that already exists is guest memory someone else owns: it is used (and written) only
/// when `reuse` says so, else refused, so a mistyped path never overwrites a file.
pub fn guest_ram_at(path: Option<&Path>, mib: u64, reuse: bool) -> Result<MmapRaw, ServeError> {
    let too_large =
        || ServeError::Qtest { what: "guest RAM".into(), why: format!("{mib} MiB is not 1..={MAX_RAM_MIB}") };
    if mib == 0 || mib > MAX_RAM_MIB {
        return Err(too_large());
    }
    let len = mib.checked_mul(1 << 20).and_then(|b| usize::try_from(b).ok()).ok_or_else(too_large)?;
    match path {
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(!reuse)
                .create_new(!reuse)
                .truncate(false)
                .open(p)
                .map_err(|e| {
                    let what = if e.kind() == std::io::ErrorKind::AlreadyExists {
                        format!("guest RAM {} exists (give --reuse-mem-path to use it as guest memory)", p.display())
                    } else {
                        format!("open guest RAM {}", p.display())
                    };
                    ServeError::Io { what, source: e }
                })?;
            let have = f.metadata().map(|m| m.len()).unwrap_or(0);
            if have < len as u64 {
                f.set_len(len as u64)
                    .map_err(|e| ServeError::Io { what: format!("size guest RAM {}", p.display()), source: e })?;
            }
            MmapOptions::new()
                .len(len)
                .map_raw(&f)
                .map_err(|e| ServeError::Io { what: format!("map guest RAM {}", p.display()), source: e })
        }
        None => MmapOptions::new()
            .len(len)
            .map_anon()
            .map(MmapRaw::from)
            .map_err(|e| ServeError::Io { what: "allocate guest RAM".into(), source: e }),
    }
}

/// Where a guest-physical address goes.
enum Target {
    Bar(u8, u64),
    Ram(usize),
    Unassigned,
}

fn words_num(w: Option<&&str>, what: &str) -> Result<u64, String> {
    let s = w.ok_or_else(|| format!("missing {what}"))?;
    parse_num(s).ok_or_else(|| format!("bad {what} {s:?}"))
}

impl<D: PciDevice> QtestServer<D> {
    /// Serve `dev` at 00:`slot`.0 with `ram` as guest RAM. The device may DMA to all of it.
    pub fn new(mut dev: D, slot: u8, ram: MmapRaw) -> Result<Self, ServeError> {
        if slot == 0 || slot >= 32 {
            return Err(ServeError::Qtest {
                what: "slot".into(),
                why: format!("slot {slot} is not 1..=31 (00.0 is the host bridge)"),
            });
        }
        let ram = Arc::new(ram);
        // SAFETY: `ram` maps `ram.len()` readable and writable bytes, unmapped only when the
        // last `Arc` goes, and the region holds one. The memory is only ever copied, never
        // referenced: device DMA goes through the IOMMU's copies and the server's own
        // accesses (`ram_read`/`ram_write`) are raw copies. The other `Arc` is a private
        // field of this server, which is not `Send` (its device holds the IOMMU), so no
        // other thread reaches the RAM through Rust; a client process sharing the file
        // writes it from outside this program, between requests, as a guest CPU would.
        let region = unsafe { HostRegion::new(ram.as_mut_ptr(), ram.len(), Arc::clone(&ram)) };
        dev.iommu()
            .map(0, region, Perm::READ_WRITE)
            .map_err(|e| ServeError::Qtest { what: "map guest RAM for the device".into(), why: e.to_string() })?;
        Ok(QtestServer { dev, ram, devfn: (slot as u32) << 3, config_address: 0, stats: ServerStats::default() })
    }

    pub fn device(&self) -> &D {
        &self.dev
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Serve one connection until the client closes it.
    pub fn serve(&mut self, stream: UnixStream) -> std::io::Result<()> {
        let mut w = stream.try_clone()?;
        let mut r = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            // Bounded: a line longer than MAX_LINE is refused and the connection closed.
            let n = (&mut r).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
            if n == 0 {
                return Ok(());
            }
            if n > MAX_LINE {
                w.write_all(b"FAIL request line too long\n")?;
                return Ok(());
            }
            let text = String::from_utf8_lossy(&line);
            let mut out = self.handle(text.trim_end_matches(['\n', '\r']));
            out.push('\n');
            w.write_all(out.as_bytes())?;
        }
    }

    /// Answer one request line (without its newline) with one reply line.
    pub fn handle(&mut self, line: &str) -> String {
        self.stats.commands += 1;
        let words: Vec<&str> = line.split(' ').collect();
        let r = self.dispatch(&words);
        // Messages to the interrupt window reach the halted CPU: counted, nothing more.
        self.stats.messages += self.dev.take_interrupts().len() as u64;
        r.unwrap_or_else(|why| {
            self.stats.failed += 1;
            format!("FAIL {why}")
        })
    }

    fn dispatch(&mut self, w: &[&str]) -> Result<String, String> {
        let cmd = w.first().copied().unwrap_or_default();
        let arg = |i: usize, what: &str| words_num(w.get(i), what);
        match cmd {
            "" => Err("empty command".into()),
            "outb" | "outw" | "outl" => {
                let (port, v) = (arg(1, "port")?, arg(2, "value")?);
                let port = u16::try_from(port).map_err(|_| format!("port {port:#x} > 0xffff"))?;
                self.port_write(port, io_size(cmd), v as u32);
                Ok(reply::OK.into())
            }
            "inb" | "inw" | "inl" => {
                let port = arg(1, "port")?;
                let port = u16::try_from(port).map_err(|_| format!("port {port:#x} > 0xffff"))?;
                Ok(reply::port_in(self.port_read(port, io_size(cmd))))
            }
            "readb" | "readw" | "readl" | "readq" => {
                let addr = arg(1, "address")?;
                Ok(reply::mem_read(self.mem_read(addr, mem_size(cmd))))
            }
            "writeb" | "writew" | "writel" | "writeq" => {
                let (addr, v) = (arg(1, "address")?, arg(2, "value")?);
                self.mem_write(addr, mem_size(cmd), v);
                Ok(reply::OK.into())
            }
            "read" | "b64read" => {
                let (addr, size) = (arg(1, "address")?, self.bulk_size(arg(2, "size")?)?);
                let mut buf = vec![0u8; size];
                self.bulk_read(addr, &mut buf);
                Ok(if cmd == "read" { reply::bytes(&buf) } else { reply::b64(&buf) })
            }
            "write" => {
                let (addr, size) = (arg(1, "address")?, self.bulk_size(arg(2, "size")?)?);
                let hex = w.get(3).ok_or("missing data")?;
                // QEMU: two hex digits per byte after "0x"; missing bytes are zero.
                let Some(digits) = hex.get(2..).filter(|_| hex.len() >= 3) else {
                    return Ok("ERR invalid argument size".into());
                };
                let mut buf = vec![0u8; size];
                for (b, pair) in buf.iter_mut().zip(digits.as_bytes().chunks_exact(2)) {
                    *b = (hex_nibble(pair.first().copied()) << 4) | hex_nibble(pair.get(1).copied());
                }
                self.bulk_write(addr, &buf);
                Ok(reply::OK.into())
            }
            "b64write" => {
                let (addr, size) = (arg(1, "address")?, self.bulk_size(arg(2, "size")?)?);
                let data = base64_decode(w.get(3).ok_or("missing data")?).ok_or("bad base64 data")?;
                // QEMU writes min(decoded, SIZE) bytes.
                let n = data.len().min(size);
                self.bulk_write(addr, data.get(..n).unwrap_or_default());
                Ok(reply::OK.into())
            }
            "memset" => {
                let (addr, size) = (arg(1, "address")?, self.bulk_size(arg(2, "size")?)?);
                let byte = arg(3, "value")? as u8;
                self.bulk_write(addr, &vec![byte; size]);
                Ok(reply::OK.into())
            }
            "clock_step" => {
                let step = match w.get(1) {
                    Some(_) => arg(1, "ns")?,
                    None => self.dev.next_deadline_ns().map_or(0, |d| d.saturating_sub(self.dev.now_ns())),
                };
                self.dev.advance(step);
                Ok(reply::clock(self.dev.now_ns()))
            }
            "clock_set" => {
                let t = arg(1, "ns")?;
                let now = self.dev.now_ns();
                self.dev.advance(t.saturating_sub(now));
                Ok(reply::clock(self.dev.now_ns()))
            }
            "endianness" => Ok("OK little".into()),
            other => Ok(reply::unknown(other)),
        }
    }

    fn bulk_size(&self, size: u64) -> Result<usize, String> {
        if size == 0 || size > MAX_BULK {
            return Err(format!("size {size} is not 1..={MAX_BULK}"));
        }
        Ok(size as usize)
    }

    // ---- PCI configuration (mechanism #1) -------------------------------------------------

    /// The function the config address names, and the register offset.
    fn config_target(&self, port: u16) -> Option<(u32, u16)> {
        let a = self.config_address;
        if a & pci::CONFIG_ENABLE == 0 || (a >> 16) & 0xFF != 0 {
            return None;
        }
        let devfn = (a >> 8) & 0xFF;
        Some((devfn, ((a & 0xFC) as u16) + (port - pci::CONFIG_DATA_PORT)))
    }

    fn config_read(&mut self, port: u16, size: u8) -> u32 {
        let ones = ones32(size);
        let Some((devfn, off)) = self.config_target(port) else { return ones };
        if devfn == 0 {
            // The q35 host bridge: identity and class, nothing else.
            let dword = match off & !3 {
                0 => pci::Q35_HOST_BRIDGE_ID,
                0x08 => pci::CLASS_HOST_BRIDGE << 8,
                _ => 0,
            };
            return (dword >> (8 * (off & 3) as u32)) & ones;
        }
        if devfn != self.devfn || !off.is_multiple_of(size as u16) {
            return ones;
        }
        self.dev.config_read(off, size)
    }

    fn config_write(&mut self, port: u16, size: u8, v: u32) {
        let Some((devfn, off)) = self.config_target(port) else { return };
        if devfn == self.devfn && off.is_multiple_of(size as u16) {
            self.dev.config_write(off, size, v);
        }
    }

    // ---- port I/O -----------------------------------------------------------------------

    fn port_read(&mut self, port: u16, size: u8) -> u32 {
        if port == pci::CONFIG_ADDRESS_PORT && size == 4 {
            return self.config_address;
        }
        if (pci::CONFIG_DATA_PORT..pci::CONFIG_DATA_PORT + 4).contains(&port) {
            return self.config_read(port, size);
        }
        match self.io_bar(port) {
            Some((bar, off)) => {
                let dword = self.dev.bar_read32(bar, off & !3);
                (dword >> (8 * (off & 3) as u32)) & ones32(size)
            }
            None => ones32(size),
        }
    }

    fn port_write(&mut self, port: u16, size: u8, v: u32) {
        if port == pci::CONFIG_ADDRESS_PORT && size == 4 {
            self.config_address = v;
            return;
        }
        if (pci::CONFIG_DATA_PORT..pci::CONFIG_DATA_PORT + 4).contains(&port) {
            self.config_write(port, size, v);
            return;
        }
        if let Some((bar, off)) = self.io_bar(port) {
            let v = (v & ones32(size)) << (8 * (off & 3) as u32);
            self.dev.bar_write32(bar, off & !3, v);
        }
    }

    /// The I/O BAR (and offset in it) that decodes `port`, when I/O decode is on.
    fn io_bar(&mut self, port: u16) -> Option<(u8, u64)> {
        if self.dev.config_read(pci::COMMAND, 2) as u16 & pci::COMMAND_IO == 0 {
            return None;
        }
        (0..6u8).find_map(|bar| {
            let len = self.dev.bar_len(bar)?;
            let raw = self.dev.config_read(pci::bar(bar), 4);
            if raw & 1 == 0 {
                return None;
            }
            let base = (raw & !3 & 0xFFFF) as u64;
            let p = port as u64;
            // `then_some` would evaluate its argument first: take the offset only when it exists.
            let off = p.checked_sub(base)?;
            (base != 0 && off < len).then_some((bar, off))
        })
    }

    // ---- memory -------------------------------------------------------------------------

    fn target(&mut self, addr: u64, size: u64) -> Target {
        if self.dev.config_read(pci::COMMAND, 2) as u16 & pci::COMMAND_MEMORY != 0 {
            let mut bar = 0u8;
            while bar < 6 {
                let raw = self.dev.config_read(pci::bar(bar), 4);
                let is64 = raw & 1 == 0 && (raw >> 1) & 3 == 2;
                let next = bar + if is64 { 2 } else { 1 };
                if let Some(len) = self.dev.bar_len(bar)
                    && raw & 1 == 0
                {
                    let hi = if is64 { self.dev.config_read(pci::bar(bar + 1), 4) as u64 } else { 0 };
                    let base = hi << 32 | (raw & !0xF) as u64;
                    if base != 0 && addr >= base && addr - base < len {
                        return Target::Bar(bar, addr - base);
                    }
                }
                bar = next;
            }
        }
        match addr.checked_add(size) {
            Some(end) if end <= self.ram.len() as u64 => Target::Ram(addr as usize),
            _ => Target::Unassigned,
        }
    }

    fn mem_read(&mut self, addr: u64, size: u8) -> u64 {
        match self.target(addr, size as u64) {
            Target::Bar(bar, off) => {
                if size == 8 {
                    let lo = self.dev.bar_read32(bar, off) as u64;
                    let hi = self.dev.bar_read32(bar, off + 4) as u64;
                    hi << 32 | lo
                } else {
                    let dword = self.dev.bar_read32(bar, off & !3);
                    ((dword >> (8 * (off & 3) as u32)) & ones32(size)) as u64
                }
            }
            Target::Ram(a) => {
                let mut b = [0u8; 8];
                if let Some(dst) = b.get_mut(..size as usize) {
                    self.ram_read(a, dst);
                }
                u64::from_le_bytes(b)
            }
            Target::Unassigned => 0,
        }
    }

    fn mem_write(&mut self, addr: u64, size: u8, v: u64) {
        match self.target(addr, size as u64) {
            Target::Bar(bar, off) => {
                if size == 8 {
                    self.dev.bar_write32(bar, off, v as u32);
                    self.dev.bar_write32(bar, off + 4, (v >> 32) as u32);
                } else {
                    let v = (v as u32 & ones32(size)) << (8 * (off & 3) as u32);
                    self.dev.bar_write32(bar, off & !3, v);
                }
            }
            Target::Ram(a) => {
                let b = v.to_le_bytes();
                self.ram_write(a, b.get(..size as usize).unwrap_or_default());
            }
            Target::Unassigned => {}
        }
    }

    fn bulk_read(&mut self, addr: u64, buf: &mut [u8]) {
        if let Target::Ram(a) = self.target(addr, buf.len() as u64) {
            self.ram_read(a, buf);
            return;
        }
        // Not plain RAM: byte by byte, as the CPU would see each byte.
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.mem_read(addr.wrapping_add(i as u64), 1) as u8;
        }
    }

    fn bulk_write(&mut self, addr: u64, data: &[u8]) {
        if let Target::Ram(a) = self.target(addr, data.len() as u64) {
            self.ram_write(a, data);
            return;
        }
        for (i, b) in data.iter().enumerate() {
            self.mem_write(addr.wrapping_add(i as u64), 1, *b as u64);
        }
    }

    /// Copy out of guest RAM; `off..off+len` was checked to lie inside it by `target`.
    fn ram_read(&self, off: usize, dst: &mut [u8]) {
        if off.checked_add(dst.len()).is_none_or(|end| end > self.ram.len()) {
            return;
        }
        // SAFETY: the range lies inside the mapping (checked above); `dst` is a distinct
        // Rust buffer, so they cannot overlap. The guest RAM is only ever copied, never
        // referenced, and nothing else writes it during this call (the device runs only
        // inside our own calls; a client sharing the file writes it between requests,
        // as a guest CPU would, and a racing byte is just a racing byte).
        unsafe { std::ptr::copy_nonoverlapping(self.ram.as_ptr().add(off), dst.as_mut_ptr(), dst.len()) };
    }

    fn ram_write(&self, off: usize, src: &[u8]) {
        if off.checked_add(src.len()).is_none_or(|end| end > self.ram.len()) {
            return;
        }
        // SAFETY: as in `ram_read`, in the other direction; the mapping is writable.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ram.as_mut_ptr().add(off), src.len()) };
    }
}

fn io_size(cmd: &str) -> u8 {
    match cmd.as_bytes().last() {
        Some(b'b') => 1,
        Some(b'w') => 2,
        _ => 4,
    }
}

fn mem_size(cmd: &str) -> u8 {
    match cmd.as_bytes().last() {
        Some(b'b') => 1,
        Some(b'w') => 2,
        Some(b'l') => 4,
        _ => 8,
    }
}

fn ones32(size: u8) -> u32 {
    if size >= 4 { u32::MAX } else { (1u32 << (8 * size as u32)) - 1 }
}

fn hex_nibble(c: Option<u8>) -> u8 {
    match c {
        Some(c @ b'0'..=b'9') => c - b'0',
        Some(c @ b'a'..=b'f') => c - b'a' + 10,
        Some(c @ b'A'..=b'F') => c - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_glib() {
        use super::{base64_decode, base64_encode};
        // Reply QEMU 7.2 gave for `b64read` of 05 00 00 00 00 00 00 00.
        assert_eq!(base64_encode(&[5, 0, 0, 0, 0, 0, 0, 0]), "BQAAAAAAAAA=");
        for n in 0..10u8 {
            let d: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&d)).unwrap(), d);
            assert_eq!(base64_decode(base64_encode(&d).trim_end_matches('=')).unwrap(), d);
        }
        assert!(base64_decode("A!").is_none());
    }

    #[test]
    fn reply_syntax_is_qemus() {
        use super::{parse_num, reply};
        assert_eq!(reply::port_in(0x0), "OK 0x0000");
        assert_eq!(reply::port_in(0x10d38086), "OK 0x10d38086");
        assert_eq!(reply::mem_read(5), "OK 0x0000000000000005");
        assert_eq!(reply::bytes(&[0x41, 0x42, 0, 0]), "OK 0x41420000");
        assert_eq!(reply::unknown("clock_step"), "FAIL Unknown command 'clock_step'");
        assert_eq!(parse_num("0x10"), Some(16));
        assert_eq!(parse_num("010"), Some(8));
        assert_eq!(parse_num("10"), Some(10));
        assert_eq!(parse_num("0"), Some(0));
    }

    use super::*;
    use crate::i82574::{Config, I82574};

    fn server() -> QtestServer<I82574> {
        QtestServer::new(I82574::new(Config::default()), 4, guest_ram(None, 2).unwrap()).unwrap()
    }

    #[test]
    fn config_space_and_bars_through_the_wire() {
        let mut s = server();
        assert_eq!(s.handle("outl 0xcf8 0x80000000"), "OK");
        assert_eq!(s.handle("inl 0xcfc"), "OK 0x29c08086");
        assert_eq!(s.handle("inb 0xcfc"), "OK 0x0086");
        assert_eq!(s.handle("outl 0xcf8 0x80002000"), "OK");
        assert_eq!(s.handle("inl 0xcfc"), "OK 0x10d38086");
        assert_eq!(s.handle("inw 0xcfe"), "OK 0x10d3");
        assert_eq!(s.handle("outl 0xcf8 0x80002800"), "OK");
        assert_eq!(s.handle("inl 0xcfc"), "OK 0xffffffff");
        // BAR0 at 0xe0000000, memory decode on: STATUS answers.
        s.handle("outl 0xcf8 0x80002010");
        s.handle("outl 0xcfc 0xe0000000");
        assert_eq!(s.handle("readl 0xe0000008"), "OK 0x0000000000000000", "decode still off");
        s.handle("outl 0xcf8 0x80002004");
        s.handle("outw 0xcfc 0x6");
        assert_ne!(s.handle("readl 0xe0000008"), "OK 0x0000000000000000");
        // writeb is widened with zeros: CTRL_EXT.DRV_LOAD (bit 28) through byte 3.
        s.handle("writel 0xe0000018 0");
        s.handle("writeb 0xe000001b 0x10");
        assert_eq!(s.handle("readl 0xe0000018"), "OK 0x0000000010000000");
    }

    #[test]
    fn guest_ram_commands_answer_as_qemu() {
        let mut s = server();
        assert_eq!(s.handle("writel 0x1000 0x12345678"), "OK");
        assert_eq!(s.handle("readq 0x1000"), "OK 0x0000000012345678");
        assert_eq!(s.handle("readb 0x1000"), "OK 0x0000000000000078");
        assert_eq!(s.handle("read 0x1000 4"), "OK 0x78563412");
        assert_eq!(s.handle("b64read 0x1000 8"), "OK eFY0EgAAAAA=");
        assert_eq!(s.handle("write 0x1000 4 0xab"), "OK");
        assert_eq!(s.handle("read 0x1000 4"), "OK 0xab000000");
        assert_eq!(s.handle("memset 0x1000 3 0x11"), "OK");
        assert_eq!(s.handle("read 0x1000 4"), "OK 0x11111100");
        assert_eq!(s.handle("b64write 0x1000 4 AQIDBA=="), "OK");
        assert_eq!(s.handle("read 0x1000 4"), "OK 0x01020304");
        assert_eq!(s.handle("readl 0xfe000000"), "OK 0x0000000000000000");
        assert_eq!(s.handle("inb 0x5000"), "OK 0x00ff");
        assert_eq!(s.handle("endianness"), "OK little");
        assert_eq!(s.handle("foo"), "FAIL Unknown command 'foo'");
        assert!(s.handle("readl").starts_with("FAIL "));
        assert!(s.handle("").starts_with("FAIL "));
        assert!(s.handle("read 0x1000 0").starts_with("FAIL "));
    }

    #[test]
    fn ports_around_an_io_bar_decode_without_overflow() {
        let mut s = server();
        // BAR2 is the 82574L's 32-byte I/O BAR: put it at 0x6000 and turn I/O decode on.
        s.handle("outl 0xcf8 0x80002018");
        s.handle("outl 0xcfc 0x6001");
        s.handle("outl 0xcf8 0x80002004");
        s.handle("outw 0xcfc 0x1");
        // Below the BAR (the port once went through `port - base` before the range check).
        assert_eq!(s.handle("inb 0x5000"), "OK 0x00ff");
        assert_eq!(s.handle("inl 0x5fff"), "OK 0xffffffff");
        // Past its end.
        assert_eq!(s.handle("inl 0x6020"), "OK 0xffffffff");
        // Inside: IOADDR reads back what was written.
        assert_eq!(s.handle("outl 0x6000 0x8"), "OK");
        assert_eq!(s.handle("inl 0x6000"), "OK 0x0008");
    }

    #[test]
    fn clock_step_advances_the_virtual_clock() {
        let mut s = server();
        assert_eq!(s.handle("clock_step 0"), "OK 0");
        assert_eq!(s.handle("clock_step 1000"), "OK 1000");
        // Without an argument: to the next timer (the model's link-up).
        let r = s.handle("clock_step");
        let t: u64 = r.strip_prefix("OK ").unwrap().parse().unwrap();
        assert!(t > 1000, "{r}");
        assert_eq!(s.handle("clock_set 5"), format!("OK {t}"), "the clock never goes back");
    }

    /// A client that steps the clock to the end of time and then arms every timer the
    /// 82574L has (link-up through CTRL.SLU / a reset, EITR/ITR throttling through ICS,
    /// the receive and transmit delay timers) gets answers, not a crash; and so does
    /// `clock_set` to the end of time.
    #[test]
    fn the_end_of_time_arms_timers_without_overflow() {
        let mut s = server();
        s.handle("outl 0xcf8 0x80002010");
        s.handle("outl 0xcfc 0xe0000000");
        s.handle("outl 0xcf8 0x80002004");
        s.handle("outw 0xcfc 0x6");
        assert_eq!(s.handle("clock_step 18446744073709551615"), "OK 18446744073709551615");
        for (reg, val) in [
            (0x0000u32, 0x0400_0040u32), // CTRL: RST, SLU
            (0x00C4, 0xFFFF),            // ITR
            (0x00E8, 0xFFFF),            // EITR0
            (0x00D0, 0x01F0_0000),       // IMS: every queue and Other cause
            (0x00C8, 0x01F0_0000),       // ICS: raise them (throttled sends arm timers)
            (0x2820, 0xFFFF),            // RDTR
            (0x282C, 0xFFFF),            // RADV
            (0x3820, 0xFFFF),            // TIDV
            (0x382C, 0xFFFF),            // TADV
            (0x0000, 0x0000_0040),       // CTRL: SLU again (link timer)
        ] {
            assert_eq!(s.handle(&format!("writel {:#x} {val:#x}", 0xE000_0000u32 + reg)), "OK");
            assert!(s.handle(&format!("readl {:#x}", 0xE000_0000u32 + reg)).starts_with("OK "));
        }
        assert_eq!(s.handle("clock_step"), "OK 18446744073709551615");
        assert_eq!(s.handle("clock_step 1"), "OK 18446744073709551615");
        let mut t = server();
        assert_eq!(t.handle("clock_set 18446744073709551615"), "OK 18446744073709551615");
        assert_eq!(t.handle("clock_step 5"), "OK 18446744073709551615");
    }
}
