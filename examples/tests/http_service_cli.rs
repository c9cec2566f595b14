//! The `http_service` binary's command line, run as a user runs it: `--help` lists every option, `--version`,
//! `--opt=value`, and usage errors (an unknown option with a suggestion, a missing or bad value, options that
//! exclude each other) on standard error with exit status 2, before the service starts.
//!
//! Each run has a scratch directory as its working directory: nothing is written into the source tree.

mod common;

use std::process::{Command, Output};

/// Runs the `http_service` binary with `args` in a scratch directory, and waits for it.
fn http_service(args: &[&str]) -> Output {
    let dir = tempfile::Builder::new().prefix("http-service-cli-").tempdir().unwrap();
    Command::new(common::example("http_service")).args(args).current_dir(dir.path()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_every_option_and_exits_0() {
    let out = http_service(&["--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    for option in [
        "--listen",
        "--rules",
        "--flags",
        "--admin-token-file",
        "--admin-audit-log",
        "--budgets",
        "--budget-checkpoint",
        "--bare",
        "--orders-dir",
        "--without-degrade",
        "--provider-latency",
        "--cpu-clock",
        "--header-read-timeout",
        "--body-read-timeout",
        "--help",
        "--version",
    ] {
        assert!(help.contains(option), "--help does not list {option}:\n{help}");
    }
    assert!(help.contains("Usage: http_service"), "{help}");
}

#[test]
fn version_prints_the_package_version_and_exits_0() {
    let out = http_service(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).trim(), format!("http_service {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn an_unknown_option_is_refused_with_a_suggestion_and_exit_2() {
    let out = http_service(&["--provider-latncy", "0ms"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--provider-latncy") && err.contains("--provider-latency"), "{err}");
    assert!(out.stdout.is_empty(), "a usage error prints nothing on standard output");
}

#[test]
fn a_bad_or_missing_value_is_a_usage_error_naming_the_option() {
    for (args, option) in [
        (&["--listen", "localhost"][..], "--listen"),
        (&["--listen=8080"][..], "--listen"),
        (&["--cpu-clock", "cycles"][..], "--cpu-clock"),
        (&["--body-read-timeout=0s"][..], "--body-read-timeout"),
        (&["--rules"][..], "--rules"),
        (&["--bare", "--admin-token-file", "tokens"][..], "--admin-token-file"),
        (&["serve"][..], "serve"),
    ] {
        let out = http_service(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(option), "{args:?}: the error does not name {option}:\n{err}");
    }
}

/// `--opt=value` is accepted: a service that cannot start (its flag file is missing) names the file it was
/// given and exits 1, which tells a run-time failure from a usage error.
#[test]
fn option_equals_value_parses_and_a_start_failure_exits_1() {
    let out = http_service(&["--listen=127.0.0.1:0", "--flags=missing-flags.yaml", "--provider-latency=0ms"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("http_service: missing-flags.yaml"), "{err}");
}
