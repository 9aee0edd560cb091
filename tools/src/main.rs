//! `nicqual`: qualify NIC drivers against emulated NICs (and real ones through VFIO).

mod bench;
mod conformance;
mod devices;
mod diff;
mod interrupt;
mod output;
mod progress;
mod qualify;
mod qualify_bnx2x;
mod regs;
mod scenario;
mod serve_qtest;
mod serve_vfio_user;
mod soak;
mod vfio_cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The exit-status table, shown by `--help` (and in the README).
const EXIT_CODES: &str = "Exit status:
  0  everything that applied passed (scenarios: expected failures of the field variants included)
  1  the device failed a check (scenarios: a nicqual-side check failed)
  2  usage or input error: bad flag or value, a fault that cannot apply, unreadable or malformed file
  3  could not run: the environment (IOMMU off, QEMU or a package missing, device not found,
     permissions); a run record is still written where --json was asked, verdict `error`";

#[derive(Parser)]
#[command(
    name = "nicqual",
    version,
    about = "Userspace NIC driver qualification against emulated and real NICs",
    after_help = EXIT_CODES
)]
struct Cli {
    /// No progress or log output (the result table and files are still written).
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once per process: the size of the largest variant (qualify's arguments) costs
// nothing worth boxing it for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Run the qualification checks against a device and print a verdict table.
    #[command(after_help = EXIT_CODES)]
    Qualify(qualify::Args),
    /// List the devices nicqual can drive (emulated, and real NICs for VFIO).
    Devices(vfio_cli::HostArgs),
    /// Hand a PCI function to vfio-pci (remembering its driver) so nicqual can drive it.
    Bind(vfio_cli::BindArgs),
    /// Give a function back to the driver it had before `nicqual bind`.
    Unbind(vfio_cli::AddrArgs),
    /// Re-render a stored run record (JSON) as HTML, JUnit, KTAP or JSON.
    Report(output::ReportArgs),
    /// Compare two run records: checks that changed result, measurements that moved
    /// (exit 1 on a regression).
    Diff(diff::Args),
    /// Dump every register of a device with its name and decoded fields (like ethtool -d).
    Regs(regs::Args),
    /// Run a field-failure scenario (`scenario list`, `scenario run NAME`).
    Scenario(scenario::Args),
    /// Measure (not test): loopback throughput of the emulated 82574L datapath.
    Bench(bench::Args),
    /// Run the differential conformance cases on our 82574L model and QEMU's e1000e.
    Conformance(conformance::Args),
    /// Serve our emulated device over QEMU's qtest line protocol (for qtest clients).
    ServeQtest(serve_qtest::Args),
    /// Serve our emulated 82574L over vfio-user (QEMU's vfio-user-pci), for a guest's own driver.
    ServeVfioUser(serve_vfio_user::Args),
    /// Soak: traffic under a seeded random fault plan; every frame delivered or dropped with a reason.
    Soak(soak::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        if cli.quiet { "error".to_string() } else { std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()) };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(progress::LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.cmd {
        Cmd::Qualify(a) => qualify::run(a, cli.quiet),
        Cmd::Devices(h) => {
            devices::list();
            vfio_cli::list(&h.host());
            ExitCode::SUCCESS
        }
        Cmd::Bind(a) => vfio_cli::bind(a),
        Cmd::Unbind(a) => vfio_cli::unbind(a),
        Cmd::Report(a) => output::report(a),
        Cmd::Diff(a) => diff::run(a),
        Cmd::Regs(a) => regs::run(a),
        Cmd::Scenario(a) => scenario::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Conformance(a) => conformance::run(a),
        Cmd::ServeQtest(a) => serve_qtest::run(a),
        Cmd::ServeVfioUser(a) => serve_vfio_user::run(a),
        Cmd::Soak(a) => soak::run(a),
    }
}
