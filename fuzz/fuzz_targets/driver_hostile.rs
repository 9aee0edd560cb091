//! The 82574L driver against a hostile device (harness: nicqual_reliability::driver_hostile).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(v) = nicqual_reliability::driver_hostile::run(data) {
        panic!("{v}");
    }
});
