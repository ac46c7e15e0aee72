//! libFuzzer entry point for `pseal_fuzz::config` (the harness itself is in `fuzz/src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pseal_fuzz::config(data));
