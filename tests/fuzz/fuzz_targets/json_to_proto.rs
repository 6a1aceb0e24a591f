#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshgate_fuzz::json_to_proto(data));
