#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshgate_fuzz::grpc_status(data));
