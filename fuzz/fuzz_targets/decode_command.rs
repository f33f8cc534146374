//! libFuzzer over `tape_fuzz::decode_command` (its checks are documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| tape_fuzz::decode_command(bytes));
