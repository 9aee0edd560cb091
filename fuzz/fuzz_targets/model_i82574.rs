//! The 82574L model under arbitrary config/BAR/DMA/fault sequences (harness:
//! nicqual_reliability::model_i82574).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(v) = nicqual_reliability::model_i82574::run(data) {
        panic!("{v}");
    }
});
