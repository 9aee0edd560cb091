//! The qtest line protocol, both sides: a client connection, and QEMU's exact reply
//! syntax (softmmu/qtest.c, QEMU 7.2) for anyone serving it.
//!
//! One command per line, one reply per command: `OK [value]` or `FAIL reason`. QEMU may
//! interleave asynchronous `IRQ raise N` / `IRQ lower N` lines (only after
//! `irq_intercept_*`), which the client skips.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Errors of the qtest transport.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("qtest `{cmd}`: {source}")]
    Io { cmd: String, source: std::io::Error },
    #[error("qtest `{cmd}`: connection closed by the server")]
    Closed { cmd: String },
    #[error("qtest `{cmd}` failed: {reply}")]
    Fail { cmd: String, reply: String },
    #[error("qtest `{cmd}`: malformed reply {reply:?}")]
    Malformed { cmd: String, reply: String },
}

/// A client connection to a qtest server (QEMU, or `nicqual serve-qtest`).
#[derive(Debug)]
pub struct QtestConn {
    r: BufReader<UnixStream>,
    w: UnixStream,
    line: String,
    /// Commands sent (for statistics and benchmarks).
    pub commands: u64,
}

impl QtestConn {
    /// Wrap a connected stream; every reply must arrive within `timeout`.
    pub fn new(s: UnixStream, timeout: Duration) -> std::io::Result<QtestConn> {
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let w = s.try_clone()?;
        Ok(QtestConn { r: BufReader::new(s), w, line: String::new(), commands: 0 })
    }

    /// Send one command and return what follows `OK` (trimmed; empty for a bare `OK`).
    pub fn cmd(&mut self, cmd: &str) -> Result<String, WireError> {
        let l = self.exchange(cmd)?;
        if l == "OK" {
            return Ok(String::new());
        }
        if let Some(rest) = l.strip_prefix("OK ") {
            return Ok(rest.trim().to_string());
        }
        Err(WireError::Fail { cmd: cmd.to_string(), reply: l })
    }

    /// Send one command and return its whole reply line (`OK…`, `FAIL…` or `ERR…`),
    /// skipping asynchronous lines.
    pub fn exchange(&mut self, cmd: &str) -> Result<String, WireError> {
        let io = |e| WireError::Io { cmd: cmd.to_string(), source: e };
        self.commands += 1;
        let mut buf = Vec::with_capacity(cmd.len() + 1);
        buf.extend_from_slice(cmd.as_bytes());
        buf.push(b'\n');
        self.w.write_all(&buf).map_err(io)?;
        // Bounded: the server answers each command with one OK/FAIL/ERR line; anything
        // else (IRQ notices, QEMU's diagnostic lines) is skipped, at most this many.
        for _ in 0..1024 {
            self.line.clear();
            let n = self.r.read_line(&mut self.line).map_err(io)?;
            if n == 0 {
                return Err(WireError::Closed { cmd: cmd.to_string() });
            }
            let l = self.line.trim_end();
            if l == "OK" || l.starts_with("OK ") || l.starts_with("FAIL") || l.starts_with("ERR") {
                return Ok(l.to_string());
            }
        }
        Err(WireError::Malformed { cmd: cmd.to_string(), reply: self.line.trim_end().to_string() })
    }

    /// Send a command whose reply is `OK 0x<hex>`; parse the number.
    pub fn cmd_hex(&mut self, cmd: &str) -> Result<u64, WireError> {
        let rep = self.cmd(cmd)?;
        parse_hex(&rep).ok_or_else(|| WireError::Malformed { cmd: cmd.to_string(), reply: rep })
    }

    pub fn out(&mut self, size: u8, port: u16, v: u32) -> Result<(), WireError> {
        self.cmd(&format!("out{} {port:#x} {v:#x}", suffix_io(size))).map(|_| ())
    }

    pub fn inp(&mut self, size: u8, port: u16) -> Result<u32, WireError> {
        self.cmd_hex(&format!("in{} {port:#x}", suffix_io(size))).map(|v| v as u32)
    }

    pub fn readl(&mut self, addr: u64) -> Result<u32, WireError> {
        self.cmd_hex(&format!("readl {addr:#x}")).map(|v| v as u32)
    }

    pub fn writel(&mut self, addr: u64, v: u32) -> Result<(), WireError> {
        self.cmd(&format!("writel {addr:#x} {v:#x}")).map(|_| ())
    }

    /// `clock_step [ns]`: the server's virtual time after the step.
    pub fn clock_step(&mut self, ns: Option<u64>) -> Result<u64, WireError> {
        let cmd = match ns {
            Some(ns) => format!("clock_step {ns}"),
            None => "clock_step".to_string(),
        };
        let rep = self.cmd(&cmd)?;
        rep.parse::<u64>().map_err(|_| WireError::Malformed { cmd, reply: rep })
    }
}

fn suffix_io(size: u8) -> char {
    match size {
        1 => 'b',
        2 => 'w',
        _ => 'l',
    }
}

/// Parse `0x…` (or bare hex) as QEMU prints it.
pub fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    if h.is_empty() {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

/// Parse a number as QEMU's qtest does (`qemu_strtou64(.., 0, ..)`): `0x` hex, `0` octal,
/// else decimal.
pub fn parse_num(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// QEMU's reply syntax, for servers.
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
        let mut s = String::with_capacity(5 + 2 * data.len());
        s.push_str("OK 0x");
        for b in data {
            s.push_str(&format!("{b:02x}"));
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

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (what GLib's g_base64_encode produces).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let byte = |i: usize| c.get(i).copied().unwrap_or(0) as u32;
        let n = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..4 {
            if i <= c.len() {
                // The index is masked to 6 bits, so it is always inside the alphabet.
                out.push(B64.get((n >> (18 - 6 * i) & 63) as usize).copied().unwrap_or(b'=') as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decode standard base64 (padding optional); `None` on a character outside the alphabet.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for ch in s.bytes() {
        if ch == b'=' {
            break;
        }
        let v = B64.iter().position(|&b| b == ch)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_glib() {
        // Reply QEMU 7.2 gave for `b64read` of 05 00 00 00 00 00 00 00.
        assert_eq!(base64_encode(&[5, 0, 0, 0, 0, 0, 0, 0]), "BQAAAAAAAAA=");
        for n in 0..10u8 {
            let d: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&d)).unwrap(), d);
        }
        assert!(base64_decode("A!").is_none());
    }

    #[test]
    fn reply_syntax_is_qemus() {
        assert_eq!(reply::port_in(0x0), "OK 0x0000");
        assert_eq!(reply::port_in(0x10d38086), "OK 0x10d38086");
        assert_eq!(reply::mem_read(5), "OK 0x0000000000000005");
        assert_eq!(reply::bytes(&[0x41, 0x42, 0, 0]), "OK 0x41420000");
        assert_eq!(reply::unknown("clock_step"), "FAIL Unknown command 'clock_step'");
        assert_eq!(parse_num("0x10"), Some(16));
        assert_eq!(parse_num("010"), Some(8));
        assert_eq!(parse_num("10"), Some(10));
        assert_eq!(parse_hex("OK"), None);
    }
}
