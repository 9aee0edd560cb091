//! Starting a qtest server process (QEMU, or `nicqual serve-qtest`) and making sure it
//! never outlives us: killed and reaped on drop, and killed by the kernel if we die first
//! (PR_SET_PDEATHSIG).

use crate::error::BackendError;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Size of the firmware image QEMU maps below 4 GiB.
pub const HALT_BIOS_LEN: usize = 64 * 1024;
/// Offset of the reset vector (0xFFFFFFF0) inside it.
pub const HALT_RESET_VECTOR: usize = 0xFFF0;
/// `cli; hlt; jmp $-3`: the CPU stops at reset with interrupts off and stays stopped
/// (the jump covers a spurious wake-up by NMI/SMI). No firmware touches PCI.
pub const HALT_CODE: [u8; 4] = [0xFA, 0xF4, 0xEB, 0xFD];

/// The "halt" firmware image: 64 KiB of zeros with [`HALT_CODE`] at the reset vector.
pub fn halt_bios() -> Vec<u8> {
    let mut b = vec![0u8; HALT_BIOS_LEN];
    if let Some(code) = b.get_mut(HALT_RESET_VECTOR..HALT_RESET_VECTOR + HALT_CODE.len()) {
        code.copy_from_slice(&HALT_CODE);
    }
    b
}

/// A running server process. Dropping it kills (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    program: PathBuf,
    stderr_path: PathBuf,
}

impl ServerProcess {
    /// Spawn `program args`, stderr into `stderr_path`; `inherit` is a descriptor the child
    /// keeps open under the same number (a netdev socket). A missing binary is reported as
    /// [`BackendError::ProgramNotFound`] with what to install.
    pub fn spawn(
        program: &Path,
        args: &[String],
        stderr_path: &Path,
        inherit: Option<std::os::fd::RawFd>,
    ) -> Result<ServerProcess, BackendError> {
        let err = std::fs::File::create(stderr_path)
            .map_err(|e| BackendError::Io { what: format!("create {}", stderr_path.display()), source: e })?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        // SAFETY: the closure runs in the child between fork and exec; it only calls
        // prctl(2), getppid(2) and fcntl(2), all async-signal-safe, touches no locks and
        // allocates nothing. PR_SET_PDEATHSIG makes the kernel SIGKILL the server if the
        // thread that spawned it dies without dropping us (crash, SIGKILL): no process is
        // left behind. Clearing FD_CLOEXEC on `inherit` (the child's own copy of a
        // descriptor the parent holds open) lets exactly that descriptor survive exec.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = inherit
                    && libc::fcntl(fd, libc::F_SETFD, 0) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() == 1 {
                    return Err(std::io::Error::other("parent exited during spawn"));
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BackendError::ProgramNotFound {
                    program: program.display().to_string(),
                    why: e.to_string(),
                    hint: String::new(),
                }
            } else {
                BackendError::Io { what: format!("spawn {}", program.display()), source: e }
            }
        })?;
        Ok(ServerProcess { child, program: program.to_path_buf(), stderr_path: stderr_path.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Last lines the server wrote to stderr (for error messages).
    pub fn stderr_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.stderr_path) {
            let _ = f.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().rev().take(8).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// If the server exits within `within`, the error saying so (with its stderr).
    pub fn exit_error(&mut self, within: Duration) -> Option<BackendError> {
        let t0 = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    return Some(BackendError::ServerExited {
                        program: self.program.display().to_string(),
                        status: st.to_string(),
                        stderr: self.stderr_tail(),
                    });
                }
                Ok(None) if t0.elapsed() < within => std::thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    /// Connect to the server's listening socket at `sock`, retrying until it appears,
    /// at most `timeout`. Fails early (with its stderr) if the server exits.
    pub fn connect(&mut self, sock: &Path, timeout: Duration) -> Result<UnixStream, BackendError> {
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(BackendError::ServerExited {
                    program: self.program.display().to_string(),
                    status: st.to_string(),
                    stderr: self.stderr_tail(),
                });
            }
            match UnixStream::connect(sock) {
                Ok(s) => return Ok(s),
                Err(e) if t0.elapsed() >= timeout => {
                    return Err(BackendError::Io {
                        what: format!(
                            "connect to qtest socket {} after {} ms (server stderr: {})",
                            sock.display(),
                            timeout.as_millis(),
                            self.stderr_tail()
                        ),
                        source: e,
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Already exited: just reap. Otherwise SIGKILL and reap, so no zombie and no
        // orphan remains.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halt_bios_has_code_at_reset_vector() {
        let b = halt_bios();
        assert_eq!(b.len(), 65536);
        assert_eq!(&b[0xFFF0..0xFFF4], &[0xFA, 0xF4, 0xEB, 0xFD]);
        assert_eq!(b.iter().filter(|&&x| x != 0).count(), 4);
    }

    #[test]
    fn missing_program_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = ServerProcess::spawn(Path::new("/nonexistent/qemu-system-x86_64"), &[], &dir.path().join("err"), None)
            .unwrap_err();
        assert!(matches!(e, BackendError::ProgramNotFound { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/qemu-system-x86_64"));
    }
}
