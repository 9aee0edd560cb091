//! `nicqual conformance`: the differential conformance cases (tests/src/conformance.rs),
//! each on a fresh device of our 82574L model and of QEMU's e1000e, as a table
//! (case, ours, QEMU's, verdict). Exit 0 when every case agrees or differs exactly as
//! docs/CONFORMANCE.md documents.

use nicqual_tests::conformance::{Verdict, cases, run_case, table};
use nicqual_tests::{fresh_model, fresh_qemu};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run only the cases whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// List the cases (name and what each checks) without running them.
    #[arg(long)]
    list: bool,
    /// Also write the results as JSON (schema `nicqual.conformance/1`) to FILE (`-` = stdout,
    /// the table then goes to stderr).
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
}

pub fn run(a: Args) -> ExitCode {
    let all = cases();
    let chosen: Vec<_> = all.iter().filter(|c| a.filter.as_deref().is_none_or(|f| c.name.contains(f))).collect();
    if chosen.is_empty() {
        // No case ran: that is not a PASS (exit 2: usage).
        eprintln!("nicqual: no conformance case matches {:?} (list them with --list)", a.filter.unwrap_or_default());
        return ExitCode::from(2);
    }
    if a.list {
        for c in &chosen {
            println!("{:<34} {}{}", c.name, c.what, c.known.map_or(String::new(), |k| format!(" [known: {k}]")));
        }
        return ExitCode::SUCCESS;
    }
    let rows: Vec<_> = chosen.iter().map(|c| run_case(c, &mut fresh_model, &mut fresh_qemu)).collect();
    let to_stdout = a.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let say = |s: String| if to_stdout { eprint!("{s}") } else { print!("{s}") };
    say(table(&rows));
    let agree = rows.iter().filter(|r| r.verdict == Verdict::Agree).count();
    let known = rows.iter().filter(|r| matches!(r.verdict, Verdict::Known(_))).count();
    let bad = rows.len() - agree - known;
    say(format!(
        "\n{}: {} cases, {agree} agree, {known} differ as documented (docs/CONFORMANCE.md), {bad} unexplained\n",
        if bad == 0 { "PASS" } else { "FAIL" },
        rows.len()
    ));
    if let Some(path) = &a.json {
        let cases: Vec<serde_json::Value> = rows
            .iter()
            .zip(&chosen)
            .map(|(r, c)| {
                serde_json::json!({
                    "name": r.name,
                    "what": c.what,
                    "ours": r.ours,
                    "qemu": r.theirs,
                    "verdict": match &r.verdict {
                        Verdict::Agree => "agree",
                        Verdict::Known(_) => "known-difference",
                        Verdict::KnownButAgree(_) => "agree-but-documented",
                        Verdict::Differ => "differ",
                        Verdict::Error(_) => "error",
                    },
                    "detail": r.verdict.as_str(),
                    "documented": c.known,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "schema": "nicqual.conformance/1",
            "tool": nicqual_report::Tool::this(),
            "summary": {"cases": rows.len(), "agree": agree, "known": known, "unexplained": bad},
            "cases": cases,
        });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
        let written = if to_stdout {
            std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())
        } else {
            std::fs::write(path, text)
        };
        if let Err(e) = written {
            eprintln!("nicqual: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
