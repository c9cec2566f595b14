//! Fuzz target `flag_file`: see `brownout_fuzz::flag_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brownout_fuzz::flag_file(data));
