//! Fuzz target `budget_file`: see `brownout_fuzz::budget_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brownout_fuzz::budget_file(data));
