//! The qtest line protocol, client side (the server side lives with the models, in
//! `nicqual_model::qtest_server`).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_replies() {
        assert_eq!(parse_hex("0x10"), Some(16));
        assert_eq!(parse_hex("OK"), None);
        assert_eq!(parse_hex("0x"), None);
    }
}
