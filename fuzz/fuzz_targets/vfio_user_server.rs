//! The vfio-user server's decoder and dispatcher against any byte stream a client could
//! send (harness: nicqual_reliability::vfio_user_server).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(v) = nicqual_reliability::vfio_user_server::run(data) {
        panic!("{v}");
    }
});
