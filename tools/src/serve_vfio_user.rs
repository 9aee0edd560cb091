//! `nicqual serve-vfio-user`: our emulated 82574L behind the vfio-user protocol, so QEMU's
//! `vfio-user-pci` (QEMU ≥ 10.1) puts it into a virtual machine and the guest's own kernel
//! driver (Linux's e1000e) runs against it, faults included
//! (`device-model/src/vfio_user/` has the protocol, the regions and the interrupt rules).

use crate::devices::DeviceSpec;
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_model::vfio_user::VfioUserServer;
use nicqual_model::wire::{Cable, Direction};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// UNIX socket to listen on (QEMU: `-device '{"driver":"vfio-user-pci","socket":{"type":"unix","path":PATH}}'`).
    #[arg(long)]
    socket: PathBuf,
    /// Device to serve: model:i82574l.
    #[arg(long, default_value = "model:i82574l")]
    device: DeviceSpec,
    #[command(flatten)]
    plan: crate::serve_qtest::FaultArgs,
    /// Write the frames the device transmits on its wire to FILE (pcap).
    #[arg(long)]
    pcap: Option<PathBuf>,
}

pub fn run(a: Args) -> ExitCode {
    let plan = match a.plan.plan() {
        Ok(p) => p,
        Err(code) => return code,
    };
    if a.device != DeviceSpec::ModelI82574 {
        eprintln!(
            "nicqual: serve-vfio-user serves model:i82574l (the model a guest's e1000e driver runs against), not {}",
            a.device
        );
        return ExitCode::from(2);
    }
    // Refuse what cannot apply: a vector or IVAR entry the 82574L does not have.
    if let Err(e) = plan.validate_for(crate::qualify::i82574_fault_target()) {
        eprintln!("nicqual: fault plan for {}: {e}", a.device);
        return ExitCode::from(2);
    }
    let mut model = Model::new(Config::default());
    if !plan.faults.is_empty() {
        model.arm_faults(plan);
    }
    let cable = Cable::new();
    if let Some(p) = &a.pcap {
        if let Err(e) = cable.tap(Direction::AToB, p) {
            eprintln!("nicqual: --pcap {}: {e}", p.display());
            return ExitCode::from(2);
        }
        model.connect(cable.ends().0);
    }
    let listener = match crate::serve_qtest::listen(&a.socket, "serve-vfio-user") {
        Ok(l) => l,
        Err(code) => return code,
    };
    tracing::info!(target: "nicqual::vfio_user", "serving {} on {}", a.device, a.socket.display());
    let result = listener.accept().and_then(|(stream, _)| {
        // The model's clock starts with the client.
        let mut server = VfioUserServer::real_time(model);
        let r = server.serve(stream);
        let st = server.stats;
        tracing::info!(
            target: "nicqual::vfio_user",
            "{} messages ({} refused), {} DMA maps, {} interrupts signalled, {} undelivered",
            st.messages, st.refused, st.dma_maps, st.signals, st.undelivered
        );
        r
    });
    let _ = std::fs::remove_file(&a.socket);
    if let Some(p) = &a.pcap {
        match cable.close_tap(Direction::AToB) {
            Ok(n) => eprintln!("nicqual: --pcap {}: {n} frames", p.display()),
            Err(e) => eprintln!("nicqual: --pcap {}: {e}", p.display()),
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nicqual: serve-vfio-user: {e}");
            ExitCode::from(1)
        }
    }
}
