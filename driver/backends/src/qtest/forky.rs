//! QEMU 11.1 from a Debian forky root, run on this host with chroot: the harness the QEMU
//! 11 oracle (`qemu11:e1000e`, igb) and the guest-driver tests share. The root is built
//! and the process launched by `scripts/forky-root.sh`, embedded here so the binary needs
//! no source tree; this module only builds the command lines.
//!
//! * **Root.** `mmdebstrap --variant=minbase --include=qemu-system-x86 forky` into a cache
//!   dir (`$NICQUAL_FORKY_ROOT`, else `$XDG_CACHE_HOME/nicqual/forky`, else
//!   `/var/cache/nicqual/forky` as root), built once under a lock and reused while its
//!   stamp matches the recipe.
//! * **Launch.** `unshare --mount` then bind mounts of /dev, /proc, /sys and /tmp
//!   (`--make-rslave`) and `chroot ROOT qemu-system-x86_64 …`, every step an `exec`: the
//!   PID we spawn is QEMU's, so the usual kill-on-drop and parent-death signal apply, and
//!   the mounts live in QEMU's private mount namespace, gone with it however it ends.
//!   Paths handed to QEMU must be under /dev or /tmp (the qtest backend's temp dir is).

use crate::error::BackendError;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The launcher script, as in the source tree (scripts/forky-root.sh).
pub const SCRIPT: &str = include_str!("../../../../scripts/forky-root.sh");
/// Environment variable overriding where the root lives.
pub const ROOT_ENV: &str = "NICQUAL_FORKY_ROOT";
/// What to run when the root is missing.
pub const BUILD_HINT: &str =
    "; build the QEMU 11 root (as root, about 300 MB, once): bash scripts/forky-root.sh build, or make deps";

/// `bash -c SCRIPT forky-root.sh SUB ARGS…`: the program and its arguments.
fn script(sub: &str, args: &[String]) -> (PathBuf, Vec<String>) {
    let mut a = vec!["-c".to_string(), SCRIPT.to_string(), "forky-root.sh".to_string(), sub.to_string()];
    a.extend(args.iter().cloned());
    (PathBuf::from("bash"), a)
}

/// The command that runs `qemu-system-x86_64 ARGS…` (QEMU 11.1) from the forky root.
pub fn qemu_command(args: &[String]) -> (PathBuf, Vec<String>) {
    script("run", args)
}

/// The command that runs any program inside the forky root, with the same mounts.
pub fn exec_command(cmd: &[String]) -> (PathBuf, Vec<String>) {
    script("exec", cmd)
}

fn run_script(sub: &str) -> Result<PathBuf, BackendError> {
    let (prog, args) = script(sub, &[]);
    let out =
        Command::new(&prog).args(&args).stdin(Stdio::null()).output().map_err(|e| BackendError::ProgramNotFound {
            program: prog.display().to_string(),
            why: e.to_string(),
            hint: " (bash runs the forky-root launcher)".into(),
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().last().map(str::trim) {
        Some(p) if out.status.success() && p.starts_with('/') => Ok(PathBuf::from(p)),
        _ => Err(BackendError::ProgramNotFound {
            program: "qemu-system-x86_64 (QEMU 11.1, Debian forky root)".into(),
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            hint: BUILD_HINT.into(),
        }),
    }
}

/// The root's path if it is built and valid; otherwise a typed error saying how to build it.
pub fn root() -> Result<PathBuf, BackendError> {
    run_script("path")
}

/// Build the root if it is missing or stale (needs root and the Debian mirror), and
/// return its path. Cheap when it is already there.
pub fn build() -> Result<PathBuf, BackendError> {
    run_script("build")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_run_the_embedded_script() {
        let (p, a) = qemu_command(&["-version".into()]);
        assert_eq!(p, PathBuf::from("bash"));
        assert_eq!(a.first().map(String::as_str), Some("-c"));
        assert!(a.get(1).is_some_and(|s| s.contains("mmdebstrap") && s.contains("unshare --mount")));
        assert_eq!(&a[2..], &["forky-root.sh", "run", "-version"]);
        let (_, e) = exec_command(&["true".into()]);
        assert_eq!(&e[3..], &["exec", "true"]);
    }
}
