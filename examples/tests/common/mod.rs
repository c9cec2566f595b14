//! Helpers shared by the examples' test files: the binaries of this build, built first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// A binary of this build, built (or brought up to date) first with `cargo build -p PACKAGE TARGET NAME` in the
/// test's own profile: the examples and other packages' binaries are not built for `cargo test --test X`, and
/// an older binary would test older code. Built once per test binary.
fn built(package: &str, target: &str, name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    built
        .entry(format!("{package}/{target}/{name}"))
        .or_insert_with(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args(["build", "-q", "-p", package, target, name]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            assert!(build.status().unwrap().success(), "cannot build {package}'s {name}");
            let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
            if target == "--example" { profile_dir.join("examples").join(file) } else { profile_dir.join(file) }
        })
        .clone()
}

/// An example of the `examples` package (`gameday`, `http_service`, `load`).
#[allow(dead_code)]
pub fn example(name: &str) -> PathBuf {
    built("examples", "--example", name)
}

/// The `degrade` binary of degrade-flags.
#[allow(dead_code)]
pub fn degrade() -> PathBuf {
    built("brownout-degrade", "--bin", "degrade")
}
