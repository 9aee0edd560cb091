//! The enic ring model and driver against a misbehaving adapter (harness:
//! nicqual_reliability::enic_rings).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(v) = nicqual_reliability::enic_rings::run(data) {
        panic!("{v}");
    }
});
