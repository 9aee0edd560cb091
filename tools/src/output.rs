//! Where a run record goes: `--json`, `--junit`, `--ktap`, `--html`, `--lava` (shared by `qualify`,
//! `report` and any other subcommand that produces a record).

use nicqual_report::{RunRecord, html, junit, ktap, lava};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct Outputs {
    /// Write the run record (JSON, schema nicqual.run/3) here; `-` or no FILE for standard
    /// output.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// Write JUnit XML (one testcase per check) here; `-` for standard output.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print KTAP v1 (as kselftest does) on standard output, or write it to FILE.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub ktap: Option<PathBuf>,
    /// Write the self-contained HTML report here; `-` for standard output.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print LAVA test cases (a shell script of `lava-test-case` calls, one per check and
    /// per measurement; docs/LAB.md) on standard output, or write them to FILE.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub lava: Option<PathBuf>,
}

fn is_stdout(p: &Path) -> bool {
    p.as_os_str() == "-"
}

impl Outputs {
    fn all(&self) -> [(&'static str, Option<&PathBuf>); 5] {
        [
            ("json", self.json.as_ref()),
            ("junit", self.junit.as_ref()),
            ("ktap", self.ktap.as_ref()),
            ("html", self.html.as_ref()),
            ("lava", self.lava.as_ref()),
        ]
    }

    /// True when one of the outputs owns standard output (the table then goes to stderr).
    pub fn uses_stdout(&self) -> bool {
        self.all().iter().any(|(_, p)| p.is_some_and(|p| is_stdout(p)))
    }

    /// Usage check, before anything runs: at most one output on standard output, no two
    /// outputs naming the same file, and every output file creatable where it is asked for
    /// (its directory exists and takes a new file), so an unwritable path is found before
    /// the run, not after it.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_against(&[])
    }

    /// [`Outputs::validate`], and no output naming one of `inputs` (a run must never
    /// overwrite what it reads).
    pub fn validate_against(&self, inputs: &[&Path]) -> Result<(), String> {
        let on_stdout: Vec<&str> =
            self.all().iter().filter(|(_, p)| p.is_some_and(|p| is_stdout(p))).map(|(n, _)| *n).collect();
        if on_stdout.len() > 1 {
            return Err(format!("--{} all want standard output; give files to all but one", on_stdout.join(", --")));
        }
        let files: Vec<(&str, &PathBuf)> =
            self.all().into_iter().filter_map(|(n, p)| p.filter(|p| !is_stdout(p)).map(|p| (n, p))).collect();
        for (i, (kind, path)) in files.iter().enumerate() {
            let id = identity(path)?;
            if let Some((other, _)) = files.iter().take(i).find(|(_, q)| identity(q).is_ok_and(|q| q == id)) {
                return Err(format!(
                    "--{other} and --{kind} both name {}; give each output its own file",
                    path.display()
                ));
            }
            if let Some(input) = inputs.iter().find(|q| identity(q).is_ok_and(|q| q == id)) {
                return Err(format!(
                    "--{kind} {} is an input of this run ({}); refusing to overwrite it",
                    path.display(),
                    input.display()
                ));
            }
            let dir = parent(path);
            tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| format!("--{kind} {}: cannot create a file in {}: {e}", path.display(), dir.display()))?;
        }
        Ok(())
    }

    /// The files (not standard output) the reports go to.
    pub fn files(&self) -> Vec<&PathBuf> {
        self.all().into_iter().filter_map(|(_, p)| p.filter(|p| !is_stdout(p))).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.all().iter().all(|(_, p)| p.is_none())
    }

    /// Render and write every requested output. Files are written whole to a temporary
    /// file beside their destination, and only once every one of them is written are they
    /// renamed into place: a reader never sees half a report, and a failure leaves none
    /// of the requested files changed.
    pub fn write(&self, rec: &RunRecord) -> Result<(), String> {
        let mut staged = Vec::new();
        for (kind, path) in self.all() {
            let Some(path) = path else { continue };
            let text = match kind {
                "json" => rec.to_json(),
                "junit" => junit::render(rec),
                "ktap" => ktap::render(rec),
                "lava" => lava::render(rec),
                _ => html::render(rec),
            };
            if is_stdout(path) {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(|e| format!("stdout: {e}"))?;
            } else {
                let mut tmp = tempfile::NamedTempFile::new_in(parent(path))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                // A report is for others to read (CI artifacts): the usual 0644, not the
                // temporary file's 0600.
                use std::os::unix::fs::PermissionsExt;
                tmp.write_all(text.as_bytes())
                    .and_then(|_| tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)))
                    .and_then(|_| tmp.as_file().sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                staged.push((kind, path, tmp));
            }
        }
        for (kind, path, tmp) in staged {
            tmp.persist(path).map_err(|e| format!("cannot write {}: {}", path.display(), e.error))?;
            tracing::info!("wrote {kind} report {}", path.display());
        }
        Ok(())
    }
}

/// The directory a file output goes to (`.` for a bare file name).
fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// What a path names, for comparing outputs with each other and with inputs: the
/// canonical directory plus the file name (the file itself need not exist yet).
fn identity(p: &Path) -> Result<PathBuf, String> {
    let name = p.file_name().ok_or_else(|| format!("{}: not a file name", p.display()))?;
    let dir = parent(p).canonicalize().map_err(|e| format!("{}: {e}", parent(p).display()))?;
    let joined = dir.join(name);
    // An existing file may be reached through a symlink: compare what it points to.
    Ok(joined.canonicalize().unwrap_or(joined))
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A stored run record (written by --json).
    record: PathBuf,
    #[command(flatten)]
    out: Outputs,
}

/// `nicqual report RUN.json ...`: re-render a stored record. Exit status is the record's
/// verdict (0 pass, 1 fail), 2 for usage or I/O errors.
pub fn report(a: ReportArgs) -> std::process::ExitCode {
    use std::process::ExitCode;
    if let Err(e) = a.out.validate_against(&[&a.record]) {
        eprintln!("nicqual: {e}");
        return ExitCode::from(2);
    }
    if a.out.is_empty() {
        eprintln!("nicqual: nothing to write: give --html, --junit, --ktap, --lava or --json");
        return ExitCode::from(2);
    }
    let rec = match RunRecord::load(&a.record) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nicqual: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = a.out.write(&rec) {
        eprintln!("nicqual: {e}");
        return ExitCode::from(2);
    }
    ExitCode::from(rec.verdict.exit_code())
}
