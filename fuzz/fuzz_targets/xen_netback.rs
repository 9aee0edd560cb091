//! The Xen netback model against a hostile front end (harness:
//! nicqual_reliability::xen_netback).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(v) = nicqual_reliability::xen_netback::run(data) {
        panic!("{v}");
    }
});
