//! Fuzz target `control`: see `passt_core::fuzzing::control` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passt_core::fuzzing::control(data));
