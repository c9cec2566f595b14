//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same functions the cargo-fuzz
//! targets call (`fuzz/src/lib.rs`, included here), so CI on stable exercises every input the fuzzer kept,
//! crashes found and fixed included, without nightly or libFuzzer.

use std::path::Path;

#[allow(dead_code, unreachable_pub)]
#[path = "../../fuzz/src/lib.rs"]
mod drive;

/// Runs every file of `fuzz/corpus/<target>/` through `run`; fails on an empty corpus (a wrong path must not
/// pass silently). Returns the number of inputs.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // A panic names the input, so a failure can be reproduced with `cargo fuzz run <target> <file>`.
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
        inputs += 1;
    }
    assert!(inputs > 0, "no corpus in {}", dir.display());
    inputs
}

#[test]
fn chaos_config_corpus() {
    replay("chaos_config", drive::chaos_config);
}

#[test]
fn flag_file_corpus() {
    replay("flag_file", drive::flag_file);
}

#[test]
fn budget_file_corpus() {
    replay("budget_file", drive::budget_file);
}

#[test]
fn chaos_headers_corpus() {
    replay("chaos_headers", drive::chaos_headers);
}
