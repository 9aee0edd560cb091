//! The bnx2x ring model and port driver under hostile completions and DMA (harness:
//! nicqual_reliability::bnx2x_rings).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(v) = nicqual_reliability::bnx2x_rings::run(data) {
        panic!("{v}");
    }
});
