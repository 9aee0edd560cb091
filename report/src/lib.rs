//! nicqual run records and their writers.
//!
//! A [`RunRecord`] is what one run found: tool, host, backend, device identity, seed and
//! fault plan, every check (result, reason, measurements, the registers and vectors
//! involved, what to do), and optional timelines (interrupt deliveries per vector,
//! bounce-pool occupancy, jumbo-frame matrix, throughput per frame size). Any code that
//! runs checks builds one; the writers render it:
//!
//! * JSON ([`RunRecord::to_json`], schema [`SCHEMA`], docs/REPORT.md),
//! * JUnit XML ([`junit::render`]),
//! * KTAP v1 as kselftest prints it ([`ktap::render`]),
//! * one self-contained HTML page with inline SVG plots ([`html::render`]).
//!
//! This crate depends on nothing else of nicqual, so any crate can produce records.

pub mod bench;
pub mod html;
pub mod junit;
pub mod ktap;
pub mod record;
mod svg;

pub use record::*;
