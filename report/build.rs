//! Records the git commit the tool was built from (`NICQUAL_GIT_COMMIT`), so every run
//! record names the exact source that produced it. Outside a git checkout (a source
//! tarball) nothing is set and records say so by leaving the field out.

use std::path::Path;
use std::process::Command;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = root.join(".git");
    // Rebuild when HEAD moves (a commit, a checkout) or a branch ref changes.
    for f in ["HEAD", "packed-refs", "refs/heads"] {
        let p = git.join(f);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(r) = head.trim().strip_prefix("ref: ")
    {
        let p = git.join(r);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    let out = Command::new("git").arg("-C").arg(&root).args(["rev-parse", "HEAD"]).output();
    if let Ok(o) = out
        && o.status.success()
    {
        let hash = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            println!("cargo:rustc-env=NICQUAL_GIT_COMMIT={hash}");
        }
    }
}
