//! libFuzzer over `tape_fuzz::file_log` (its checks are documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| tape_fuzz::file_log(bytes));
