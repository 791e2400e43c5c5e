//! Fuzz target `port_spec`: see `passt_core::fuzzing::port_spec` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passt_core::fuzzing::port_spec(data));
