//! `nicqual serve-qtest`: our emulated device behind QEMU's qtest line protocol, so one
//! client drives QEMU's e1000e and our 82574L model unchanged (`device-model/src/qtest_server.rs`
//! has the supported commands and the machine layout).

use crate::devices::{DEFAULT_DEVICE, DeviceSpec};
use nicqual_model::FaultPlan;
use nicqual_model::bnx2x::{Bnx2xDevice, Config as Bnx2xConfig};
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_model::qtest_server::{MAX_RAM_MIB, QtestServer, guest_ram_at};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// UNIX socket to listen on.
    #[arg(long)]
    socket: PathBuf,
    /// Clients to serve, one after another, on the same machine (its state carries over);
    /// the server exits when the last one disconnects. A client that connects while
    /// another is served waits its turn.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    clients: u32,
    /// Device to serve (emulated devices only).
    #[arg(long, default_value = DEFAULT_DEVICE)]
    device: DeviceSpec,
    #[command(flatten)]
    plan: FaultArgs,
    /// Guest RAM file to share with the client; it must not exist (it is created) unless
    /// --reuse-mem-path is given. Private RAM without it.
    #[arg(long)]
    mem_path: Option<PathBuf>,
    /// Use the existing --mem-path file as guest RAM (its contents are guest memory and are
    /// changed by the run).
    #[arg(long, requires = "mem_path")]
    reuse_mem_path: bool,
    /// Guest RAM size in MiB (1..=16384).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=MAX_RAM_MIB))]
    ram_mib: u64,
    /// PCI slot of the device on bus 0 (QEMU's `addr=`).
    #[arg(long, default_value_t = 4)]
    slot: u8,
}

/// The fault options of the servers (serve-qtest, serve-vfio-user).
#[derive(clap::Args, Debug)]
pub(crate) struct FaultArgs {
    /// Fault shorthand, repeatable (as for `qualify`); times count from server start.
    #[arg(long = "fault", value_name = "SPEC")]
    fault: Vec<FaultPlan>,
    /// Fault plan file (TOML, or JSON by extension).
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Seed of the fault plan.
    #[arg(long)]
    seed: Option<u64>,
}

impl FaultArgs {
    /// The plan the options describe, or the usage error already printed.
    pub(crate) fn plan(&self) -> Result<FaultPlan, ExitCode> {
        crate::qualify::plan_from(self.faults.as_deref(), &self.fault, self.seed).map_err(|e| {
            eprintln!("nicqual: {e}");
            ExitCode::from(2)
        })
    }
}

/// Listen on `socket`. A stale socket from an earlier run is replaced (as QEMU does); any
/// other file is not.
pub(crate) fn listen(socket: &Path, what: &str) -> Result<UnixListener, ExitCode> {
    if std::fs::symlink_metadata(socket).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(socket);
    }
    UnixListener::bind(socket).map_err(|e| {
        eprintln!("nicqual: {what}: listen on {}: {e}", socket.display());
        ExitCode::from(1)
    })
}

pub fn run(a: Args) -> ExitCode {
    let plan = match a.plan.plan() {
        Ok(p) => p,
        Err(code) => return code,
    };
    match a.device {
        DeviceSpec::ModelI82574 => {
            let mut model = Model::new(Config::default());
            if !plan.faults.is_empty() {
                model.arm_faults(plan);
            }
            serve(&a, model)
        }
        DeviceSpec::ModelBnx2x(device_id) => {
            let mut model = Bnx2xDevice::with_config(Bnx2xConfig { device_id, ..Bnx2xConfig::default() });
            if let Err(e) = plan.validate_for(model.fault_target()) {
                eprintln!("nicqual: fault plan for {}: {e}", a.device);
                return ExitCode::from(2);
            }
            if !plan.faults.is_empty() {
                model.arm_faults(plan);
            }
            serve(&a, model)
        }
        DeviceSpec::ModelEnic { vf } => {
            use nicqual_model::enic::{EnicConfig, EnicDevice, EnicFaultPlan};
            if let Err(e) = plan.validate_for(EnicDevice::fault_target()) {
                eprintln!("nicqual: fault plan for {}: {e}", a.device);
                return ExitCode::from(2);
            }
            let cfg = EnicConfig { vnic_mtu: 9000, vf, ..EnicConfig::default() };
            let mut model = EnicDevice::with_config(cfg, EnicFaultPlan::none());
            if !plan.faults.is_empty() {
                model.arm_faults(plan);
            }
            serve(&a, model)
        }
        _ => {
            eprintln!(
                "nicqual: serve-qtest serves emulated devices only (model:i82574l, model:bnx2x, model:enic), not {}",
                a.device
            );
            ExitCode::from(2)
        }
    }
}

/// Serve `model` on the socket to the clients `a` asks for.
fn serve<D: nicqual_model::PciDevice>(a: &Args, model: D) -> ExitCode {
    let server = guest_ram_at(a.mem_path.as_deref(), a.ram_mib, a.reuse_mem_path)
        .and_then(|ram| QtestServer::new(model, a.slot, ram));
    let mut server = match server {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nicqual: serve-qtest: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match listen(&a.socket, "serve-qtest") {
        Ok(l) => l,
        Err(code) => return code,
    };
    tracing::info!(target: "nicqual::qtest", "serving {} at 00:{:02x}.0 on {}", a.device, a.slot, a.socket.display());
    let mut result = Ok(());
    for n in 0..a.clients {
        result = listener.accept().and_then(|(stream, _)| server.serve(stream));
        if let Err(e) = &result {
            // A client that broke its connection does not take the server down with it.
            tracing::info!(target: "nicqual::qtest", "client {}: {e}", n + 1);
        }
    }
    let _ = std::fs::remove_file(&a.socket);
    let st = server.stats;
    tracing::info!(target: "nicqual::qtest", "{} commands, {} failed, {} messages", st.commands, st.failed, st.messages);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nicqual: serve-qtest: {e}");
            ExitCode::from(1)
        }
    }
}
