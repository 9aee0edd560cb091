//! `nicqual conformance`: the differential conformance cases (tests/src/conformance.rs),
//! each on a fresh device of our 82574L model, of QEMU 7.2's e1000e (the host's) and of
//! QEMU 11.1's (Debian forky root, virtual time), as a three-way table (case, ours, QEMU
//! 7.2, QEMU 11.1, each QEMU's verdict). Exit 0 when every case agrees or differs exactly
//! as docs/CONFORMANCE.md documents, for both QEMUs.

use nicqual_tests::conformance::{Row3, Verdict, cases, known_qemu11, run_case3, table3};
use nicqual_tests::{fresh_model, fresh_qemu, fresh_qemu11};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run only the cases whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// List the cases (name and what each checks) without running them.
    #[arg(long)]
    list: bool,
    /// Also write the results as JSON (schema `nicqual.conformance/2`) to FILE (`-` = stdout,
    /// the table then goes to stderr).
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
    /// Instead: probe QEMU 11.1's igb (82576) interrupt block and print its answers
    /// (groundwork for a second Intel family; there is no igb model to compare with).
    #[arg(long, conflicts_with_all = ["filter", "list", "json"])]
    igb_probe: bool,
}

pub fn run(a: Args) -> ExitCode {
    if a.igb_probe {
        return match nicqual_tests::igb::run(&mut nicqual_tests::igb::fresh_igb) {
            Ok(rows) => {
                print!("{}", nicqual_tests::igb::table(&rows));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("nicqual: igb probe: {e}");
                ExitCode::from(3)
            }
        };
    }
    let all = cases();
    let chosen: Vec<_> = all.iter().filter(|c| a.filter.as_deref().is_none_or(|f| c.name.contains(f))).collect();
    if chosen.is_empty() {
        // No case ran: that is not a PASS (exit 2: usage).
        eprintln!("nicqual: no conformance case matches {:?} (list them with --list)", a.filter.unwrap_or_default());
        return ExitCode::from(2);
    }
    if a.list {
        for c in &chosen {
            println!(
                "{:<34} {}{}{}",
                c.name,
                c.what,
                c.known.map_or(String::new(), |k| format!(" [known on 7.2: {k}]")),
                known_qemu11(c.name).map_or(String::new(), |k| format!(" [known on 11.1: {k}]"))
            );
        }
        return ExitCode::SUCCESS;
    }
    let rows: Vec<Row3> =
        chosen.iter().map(|c| run_case3(c, &mut fresh_model, &mut fresh_qemu, &mut fresh_qemu11)).collect();
    let to_stdout = a.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let say = |s: String| if to_stdout { eprint!("{s}") } else { print!("{s}") };
    say(table3(&rows));
    let count = |v: fn(&Row3) -> &Verdict| {
        let agree = rows.iter().filter(|r| *v(r) == Verdict::Agree).count();
        let known = rows.iter().filter(|r| matches!(v(r), Verdict::Known(_))).count();
        (agree, known, rows.len() - agree - known)
    };
    let (agree72, known72, bad72) = count(|r| &r.v72);
    let (agree11, known11, bad11) = count(|r| &r.v11);
    let bad = bad72 + bad11;
    say(format!(
        "\n{}: {} cases; QEMU 7.2: {agree72} agree, {known72} differ as documented, {bad72} unexplained; QEMU 11.1: {agree11} agree, {known11} differ as documented, {bad11} unexplained (docs/CONFORMANCE.md)\n",
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
                    "qemu": r.qemu72,
                    "verdict": verdict_word(&r.v72),
                    "detail": r.v72.as_str(),
                    "documented": c.known,
                    "qemu11": r.qemu11,
                    "verdict_qemu11": verdict_word(&r.v11),
                    "detail_qemu11": r.v11.as_str(),
                    "documented_qemu11": known_qemu11(c.name),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "schema": "nicqual.conformance/2",
            "tool": nicqual_report::Tool::this(),
            "summary": {
                "cases": rows.len(),
                "agree": agree72, "known": known72, "unexplained": bad72,
                "qemu11": {"agree": agree11, "known": known11, "unexplained": bad11},
            },
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

fn verdict_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::Agree => "agree",
        Verdict::Known(_) => "known-difference",
        Verdict::KnownButAgree(_) => "agree-but-documented",
        Verdict::Differ => "differ",
        Verdict::Error(_) => "error",
    }
}
