//! `nicqual serve-vfio-user`: our emulated 82574L behind the vfio-user protocol, so QEMU's
//! `vfio-user-pci` (QEMU ≥ 10.1) puts it into a virtual machine and the guest's own kernel
//! driver (Linux's e1000e) runs against it, faults included
//! (`device-model/src/vfio_user/` has the protocol, the regions and the interrupt rules).

use crate::devices::DeviceSpec;
use nicqual_model::PciDevice;
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_model::responder::{Cabled, Responder};
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
    /// IPv4 address of the host at the far end of the device's cable, which answers ARP
    /// and ICMP echo (so the guest can ping through the model).
    #[arg(long, default_value = "10.0.2.2")]
    peer_ip: std::net::Ipv4Addr,
    /// Write the register-touch log (every access the model does not implement: space,
    /// offset, name, direction, values, count) to FILE when the client goes; a summary
    /// line goes to stderr either way.
    #[arg(long)]
    touch_log: Option<PathBuf>,
}

/// The peer's MAC address: locally administered, "NQ" in the middle.
const PEER_MAC: [u8; 6] = [0x02, 0x4E, 0x51, 0x00, 0x00, 0x02];

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
    if let Some(p) = &a.pcap
        && let Err(e) = cable.tap(Direction::AToB, p)
    {
        eprintln!("nicqual: --pcap {}: {e}", p.display());
        return ExitCode::from(2);
    }
    let (port, far) = cable.ends();
    model.connect(port);
    let device = Cabled { dev: model, responder: Responder::new(far, PEER_MAC, a.peer_ip.octets()) };
    let listener = match crate::serve_qtest::listen(&a.socket, "serve-vfio-user") {
        Ok(l) => l,
        Err(code) => return code,
    };
    tracing::info!(target: "nicqual::vfio_user", "serving {} on {}", a.device, a.socket.display());
    let result = listener.accept().and_then(|(stream, _)| {
        // The model's clock starts with the client.
        let mut server = VfioUserServer::real_time(device);
        let r = server.serve(stream);
        let st = server.stats;
        tracing::info!(
            target: "nicqual::vfio_user",
            "{} messages ({} refused), {} DMA maps, {} interrupts signalled, {} undelivered",
            st.messages, st.refused, st.dma_maps, st.signals, st.undelivered
        );
        report_touches(server.device(), a.touch_log.as_deref());
        let p = &server.device().responder.stats;
        eprintln!(
            "nicqual: peer {}: {} ARP replies, {} echo replies, {} frames ignored, {} malformed",
            a.peer_ip, p.arp_replies, p.echo_replies, p.ignored, p.malformed
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

/// The summary line on stderr, the entries on stderr at debug level and in `file`.
fn report_touches(dev: &impl PciDevice, file: Option<&std::path::Path>) {
    let Some(log) = dev.touch_log() else {
        eprintln!("nicqual: touch log: not kept by this model");
        return;
    };
    eprintln!("nicqual: {}", log.summary());
    let lines: Vec<String> = log.entries().iter().map(|t| t.to_string()).collect();
    for l in &lines {
        eprintln!("nicqual:   {l}");
    }
    if let Some(f) = file {
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        if let Err(e) = std::fs::write(f, text) {
            eprintln!("nicqual: --touch-log {}: {e}", f.display());
        }
    }
}
