//! Rules of the `driver/` crates that the compiler alone does not keep:
//!
//! * every driver crate keeps denying `unwrap`/`expect`/indexing/`panic!` in non-test code
//!   (clippy enforces the lints themselves in `make lint`); this test catches the two ways
//!   the guard could silently go away: the crate-level `deny` being edited out, and new
//!   local `allow`s. Each allowed exception is listed here with its reason;
//! * the dependency rule (docs/ARCHITECTURE.md): the NIC drivers and the Xen front end never
//!   depend on the device models except as a dev-dependency, and nothing below the backends
//!   (the contract and the DMA platform) depends on a NIC driver, the models or a backend,
//!   or names a specific NIC. Read from `cargo metadata`, transitively.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LINTS: &[&str] = &["clippy::unwrap_used", "clippy::expect_used", "clippy::indexing_slicing", "clippy::panic"];

/// The crates under `driver/`, each of which must deny the lints at its root.
const DRIVER_CRATES: &[&str] = &["pci", "dma", "backends", "nics", "xen"];

/// (file relative to driver/, lint) pairs that may be allowed locally, with the reason.
const ALLOWED: &[(&str, &str, &str)] = &[
    ("xen/src/netfront.rs", "clippy::panic", "const evaluation: a bad ring size fails the build, never a run"),
    ("xen/src/rxpool.rs", "clippy::panic", "const evaluation: a bad ring size fails the build, never a run"),
    (
        "backends/src/hostile.rs",
        "clippy::panic",
        "test-only backend (feature `hostile`): an unbounded driver loop must abort loudly",
    ),
];

fn driver_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../driver")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn driver_crates_deny_unwrap_expect_indexing_panic() {
    for krate in DRIVER_CRATES {
        let path = driver_dir().join(krate).join("src/lib.rs");
        let lib = std::fs::read_to_string(&path).unwrap();
        let attr = lib
            .lines()
            .find(|l| l.trim_start().starts_with("#![") && l.contains("deny("))
            .unwrap_or_else(|| panic!("{} has no crate-level deny(...) attribute", path.display()));
        for lint in LINTS {
            assert!(attr.contains(lint), "{} no longer denies {lint}: {attr}", path.display());
        }
        // The deny may be lifted for unit tests only, nothing broader.
        if attr.contains("cfg_attr(") {
            assert!(
                attr.contains("cfg_attr(not(test)"),
                "{}: the deny is conditional on something other than not(test): {attr}",
                path.display()
            );
        }
    }
}

#[test]
fn no_new_local_allow_of_the_denied_lints() {
    let root = driver_dir();
    let mut files = Vec::new();
    for krate in DRIVER_CRATES {
        rust_files(&root.join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 30, "driver/*/src looks empty: {}", root.display());
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim_start();
            if !(l.starts_with("#[allow(") || l.starts_with("#![allow(") || l.starts_with("#[expect(")) {
                continue;
            }
            for lint in LINTS.iter().chain(&["clippy::restriction", "clippy::all"]) {
                // `clippy::panic` must not match `clippy::panic_in_result_fn` etc.
                let hit = l
                    .match_indices(lint)
                    .any(|(i, _)| !l[i + lint.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'));
                if hit && !ALLOWED.iter().any(|(file, al, _)| *file == rel && al == lint) {
                    found.push(format!("driver/{rel}:{}: {l}", n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "unlisted local allows of denied lints (argue and list them in this test):\n{}",
        found.join("\n")
    );
}

/// `make test` runs the tests, qualification and soak from release builds. Without overflow
/// checks there, an arithmetic overflow reachable from device input wraps silently instead of
/// failing a test (two were found only once the checks were on: see docs/RELIABILITY.md).
#[test]
fn release_builds_keep_overflow_checks() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let toml = std::fs::read_to_string(root).unwrap();
    let release = toml.split("[profile.release]").nth(1).expect("root Cargo.toml has a [profile.release]");
    let section = release.split("\n[").next().unwrap_or_default();
    let on = section.lines().map(str::trim).any(|l| l.replace(' ', "") == "overflow-checks=true");
    assert!(on, "[profile.release] must keep `overflow-checks = true`; it has:\n{section}");
}

// ---- the dependency rule ----------------------------------------------------------------

/// Crates that must never reach the device models through normal (non-dev) dependencies,
/// directly or transitively.
const MODEL_FREE: &[&str] = &["nicqual-pci", "nicqual-dma", "nicqual-nics", "nicqual-xen"];
/// Crates below the backends: they may not reach a NIC driver, a backend or the Xen front
/// end, and their sources may not name a NIC.
const BELOW_BACKENDS: &[&str] = &["nicqual-pci", "nicqual-dma"];
/// Workspace crates off limits to `BELOW_BACKENDS`.
const ABOVE: &[&str] =
    &["nicqual-model", "nicqual-backends", "nicqual-nics", "nicqual-xen", "nicqual-qualify", "nicqual-scenarios"];

/// Normal dependencies (optional ones included: a feature could turn them on) of every
/// package in `cargo metadata --no-deps` output, by package name.
fn normal_deps(meta: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for p in meta["packages"].as_array().expect("metadata has packages") {
        let name = p["name"].as_str().expect("package name").to_string();
        let deps = p["dependencies"]
            .as_array()
            .expect("package dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_string))
            .collect();
        out.insert(name, deps);
    }
    out
}

/// Everything `root` reaches through normal dependencies among the workspace packages.
fn closure(deps: &BTreeMap<String, BTreeSet<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(p) = todo.pop() {
        for d in deps.get(&p).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

/// Every break of the dependency rule in `meta`, one line each.
fn dependency_violations(meta: &Value) -> Vec<String> {
    let deps = normal_deps(meta);
    let mut v = Vec::new();
    for krate in MODEL_FREE {
        if !deps.contains_key(*krate) {
            v.push(format!("{krate}: not in the workspace (renamed? update this test and ARCHITECTURE.md)"));
            continue;
        }
        if closure(&deps, krate).contains("nicqual-model") {
            v.push(format!(
                "{krate} reaches nicqual-model through normal dependencies (allowed only as a dev-dependency)"
            ));
        }
    }
    for krate in BELOW_BACKENDS {
        let reach = closure(&deps, krate);
        for above in ABOVE {
            if reach.contains(*above) {
                v.push(format!("{krate} is below the backends but depends on {above}"));
            }
        }
    }
    v
}

fn cargo_metadata() -> Value {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn drivers_and_xen_front_end_never_depend_on_the_models() {
    let meta = cargo_metadata();
    let v = dependency_violations(&meta);
    assert!(v.is_empty(), "the dependency rule is broken:\n{}", v.join("\n"));
    // The rule is about normal dependencies: the models stay available to the tests.
    let nics = meta["packages"].as_array().unwrap().iter().find(|p| p["name"] == "nicqual-nics").unwrap();
    let dev_model =
        nics["dependencies"].as_array().unwrap().iter().any(|d| d["name"] == "nicqual-model" && d["kind"] == "dev");
    assert!(dev_model, "nicqual-nics should test against nicqual-model as a dev-dependency");
}

/// The check itself: adding the model back as a normal dependency (directly, or through a
/// crate that has it) is caught.
#[test]
fn the_dependency_check_catches_a_model_dependency() {
    let mut meta = cargo_metadata();
    let add = |meta: &mut Value, pkg: &str, dep: &str| {
        let p = meta["packages"].as_array_mut().unwrap().iter_mut().find(|p| p["name"] == pkg).unwrap();
        p["dependencies"].as_array_mut().unwrap().push(serde_json::json!({"name": dep, "kind": null}));
    };
    add(&mut meta, "nicqual-xen", "nicqual-model");
    let v = dependency_violations(&meta);
    assert!(v.iter().any(|l| l.starts_with("nicqual-xen reaches nicqual-model")), "{v:?}");
    let mut meta = cargo_metadata();
    add(&mut meta, "nicqual-dma", "nicqual-backends");
    let v = dependency_violations(&meta);
    assert!(v.iter().any(|l| l.contains("nicqual-dma reaches nicqual-model")), "{v:?}");
    assert!(v.iter().any(|l| l.contains("nicqual-dma is below the backends but depends on nicqual-backends")), "{v:?}");
}

/// Nothing below the backends names a specific NIC: no NIC's datasheet module from
/// `nicqual-hw` is imported by the contract or the DMA platform.
#[test]
fn nothing_below_the_backends_knows_a_nic() {
    let mut files = Vec::new();
    for krate in ["pci", "dma"] {
        rust_files(&driver_dir().join(krate).join("src"), &mut files);
    }
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for nic in ["i82574", "enic", "bnx2x", "xen_netif"] {
                if line.contains(&format!("nicqual_hw::{nic}")) || line.contains(&format!("nicqual_nics::{nic}")) {
                    found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "NIC-specific code below the backends:\n{}", found.join("\n"));
}
