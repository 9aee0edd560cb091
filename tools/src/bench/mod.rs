//! `nicqual bench`: timing figures (never asserted in tests; recorded in docs/PERFORMANCE.md
//! with the command). One module per mode.

pub mod swiotlb;

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// SWIOTLB map+unmap cost at 10/50/90 % pool occupancy.
    #[arg(long)]
    swiotlb: bool,
    /// Fewer iterations (a smoke run, not a measurement).
    #[arg(long)]
    quick: bool,
}

pub fn run(a: Args) -> ExitCode {
    let mut ran = false;
    if a.swiotlb {
        swiotlb::run(a.quick);
        ran = true;
    }
    if !ran {
        eprintln!("nicqual bench: choose a mode (--swiotlb)");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
