//! Fuzz target `chaos_headers`: see `brownout_fuzz::chaos_headers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brownout_fuzz::chaos_headers(data));
