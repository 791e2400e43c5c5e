//! Fuzz target `translator`: see `passt_core::fuzzing::translator` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passt_core::fuzzing::translator(data));
