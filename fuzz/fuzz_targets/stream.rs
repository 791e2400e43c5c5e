//! Fuzz target `stream`: see `passt_core::fuzzing::stream` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passt_core::fuzzing::stream(data));
