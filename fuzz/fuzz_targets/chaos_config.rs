//! Fuzz target `chaos_config`: see `brownout_fuzz::chaos_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brownout_fuzz::chaos_config(data));
