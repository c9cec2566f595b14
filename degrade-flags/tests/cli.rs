//! The `degrade` CLI: each subcommand, and bad input leaving the file byte-for-byte unchanged.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FLAGS: &str = include_str!("../../configs/feature_flags.yaml");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("degrade-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("feature_flags.yaml");
    std::fs::write(&file, FLAGS).unwrap();
    file
}

fn degrade(file: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_degrade"))
        .arg("--file")
        .arg(file)
        .args(args)
        .env_remove("DEGRADE_QUOTES_SOURCE")
        .output()
        .expect("the degrade binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn list_get_and_validate() {
    let file = scratch("list");
    let list = degrade(&file, &["list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    for flag in ["execution.partial_fill_mode", "quotes.source", "api.shed_percent"] {
        assert!(stdout(&list).contains(flag), "{}", stdout(&list));
    }
    let get = degrade(&file, &["get", "quotes.source"]);
    assert_eq!(stdout(&get).trim(), "live");
    let valid = degrade(&file, &["validate"]);
    assert!(valid.status.success());
    assert!(stdout(&valid).contains("5 flags, valid"));
}

#[test]
fn set_then_unset_restores_the_file_exactly() {
    let file = scratch("set");
    let set = degrade(&file, &["set", "quotes.source", "cached"]);
    assert!(set.status.success(), "{}", stderr(&set));
    assert_eq!(stdout(&degrade(&file, &["get", "quotes.source"])).trim(), "cached");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("# Where quotes come from"), "comments are kept");
    assert_eq!(text.lines().count(), FLAGS.lines().count() + 1, "one line added, nothing else changed");

    assert!(degrade(&file, &["set", "api.shed_percent", "12.5"]).status.success());
    assert!(degrade(&file, &["set", "execution.partial_fill_mode", "on"]).status.success());
    assert_eq!(stdout(&degrade(&file, &["get", "execution.partial_fill_mode"])).trim(), "true");

    for flag in ["quotes.source", "api.shed_percent", "execution.partial_fill_mode"] {
        assert!(degrade(&file, &["unset", flag]).status.success());
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), FLAGS);
}

#[test]
fn bad_input_exits_non_zero_and_leaves_the_file_untouched() {
    let file = scratch("bad");
    let before = std::fs::read(&file).unwrap();
    let cases: [&[&str]; 6] = [
        &["set", "quotes.source", "bogus"],
        &["set", "api.shed_percent", "101"],
        &["set", "api.shed_percent", "-1"],
        &["set", "execution.partial_fill_mode", "maybe"],
        &["set", "no.such.flag", "true"],
        &["unset", "no.such.flag"],
    ];
    for args in cases {
        let out = degrade(&file, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} says why");
        assert_eq!(std::fs::read(&file).unwrap(), before, "{args:?} changed the file");
    }
    let usage = degrade(&file, &["frobnicate"]);
    assert_eq!(usage.status.code(), Some(2));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind");
}

#[test]
fn an_invalid_file_is_reported_with_file_field_and_reason() {
    let file = scratch("invalid");
    std::fs::write(&file, "flags:\n  a.b: { type: bool, default: perhaps }\n").unwrap();
    let out = degrade(&file, &["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&file.display().to_string()) && err.contains("flags.a.b.default") && err.contains("not a bool"),
        "{err}"
    );
}
