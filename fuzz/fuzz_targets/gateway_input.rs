//! libFuzzer over `tape_fuzz::gateway_input` (its checks are documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| tape_fuzz::gateway_input(bytes));
