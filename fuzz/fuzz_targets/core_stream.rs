//! libFuzzer over `tape_fuzz::core_stream` (its checks are documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| tape_fuzz::core_stream(bytes));
