//! Where a run record goes: `--json`, `--junit`, `--ktap`, `--html` (shared by `qualify`,
//! `report` and any other subcommand that produces a record).

use nicqual_report::{RunRecord, html, junit, ktap};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct Outputs {
    /// Write the run record (JSON, schema nicqual.run/2) here; `-` for standard output.
    #[arg(long, value_name = "FILE")]
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
}

fn is_stdout(p: &Path) -> bool {
    p.as_os_str() == "-"
}

impl Outputs {
    fn all(&self) -> [(&'static str, Option<&PathBuf>); 4] {
        [
            ("json", self.json.as_ref()),
            ("junit", self.junit.as_ref()),
            ("ktap", self.ktap.as_ref()),
            ("html", self.html.as_ref()),
        ]
    }

    /// True when one of the outputs owns standard output (the table then goes to stderr).
    pub fn uses_stdout(&self) -> bool {
        self.all().iter().any(|(_, p)| p.is_some_and(|p| is_stdout(p)))
    }

    /// Usage check: at most one output on standard output.
    pub fn validate(&self) -> Result<(), String> {
        let on_stdout: Vec<&str> =
            self.all().iter().filter(|(_, p)| p.is_some_and(|p| is_stdout(p))).map(|(n, _)| *n).collect();
        if on_stdout.len() > 1 {
            return Err(format!("--{} all want standard output; give files to all but one", on_stdout.join(", --")));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.all().iter().all(|(_, p)| p.is_none())
    }

    /// Render and write every requested output.
    pub fn write(&self, rec: &RunRecord) -> Result<(), String> {
        for (kind, path) in self.all() {
            let Some(path) = path else { continue };
            let text = match kind {
                "json" => rec.to_json(),
                "junit" => junit::render(rec),
                "ktap" => ktap::render(rec),
                _ => html::render(rec),
            };
            if is_stdout(path) {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(|e| format!("stdout: {e}"))?;
            } else {
                std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                tracing::info!("wrote {kind} report {}", path.display());
            }
        }
        Ok(())
    }
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
    if let Err(e) = a.out.validate() {
        eprintln!("nicqual: {e}");
        return ExitCode::from(2);
    }
    if a.out.is_empty() {
        eprintln!("nicqual: nothing to write: give --html, --junit, --ktap or --json");
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
    if rec.verdict == nicqual_report::Verdict::Pass { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
