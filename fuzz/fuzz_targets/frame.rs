//! Fuzz target `frame`: see `passt_core::fuzzing::frame` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passt_core::fuzzing::frame(data));
