//! The `degrade` CLI: each subcommand, and bad input leaving the file byte-for-byte unchanged.

use std::os::unix::fs::symlink;
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
    assert!(stdout(&valid).contains("6 flags, valid"));
}

#[test]
fn set_then_unset_restores_the_file_exactly() {
    let file = scratch("set");
    let set = degrade(&file, &["set", "quotes.source", "cached"]);
    assert!(set.status.success(), "{}", stderr(&set));
    assert_eq!(stdout(&degrade(&file, &["get", "quotes.source"])).trim(), "cached");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("# Where the demo's GET /quote/{symbol} takes quotes from"), "comments are kept");
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
    let mut leftovers: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    leftovers.sort();
    // The lock file stays by design (it holds nothing); no temporary file is left behind.
    assert_eq!(leftovers, [".feature_flags.yaml.lock", "feature_flags.yaml"]);
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

/// Ten `degrade set` processes at once on one file, five updates each on flags of their own: every update is
/// in the file at the end (read-edit-rename runs under the file's lock; without it most updates were lost).
#[test]
fn concurrent_sets_on_one_file_all_land() {
    const PROCESSES: usize = 10;
    const UPDATES: usize = 5;
    let file = scratch("concurrent");
    let mut text = String::from("flags:\n");
    for p in 0..PROCESSES {
        for u in 0..UPDATES {
            text.push_str(&format!("  p{p}.flag{u}:\n    type: bool\n    default: false\n\n"));
        }
    }
    std::fs::write(&file, &text).unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|p| {
            let file = file.clone();
            std::thread::spawn(move || {
                for u in 0..UPDATES {
                    let out = degrade(&file, &["set", &format!("p{p}.flag{u}"), "true"]);
                    assert!(out.status.success(), "p{p}.flag{u}: {}", stderr(&out));
                }
            })
        })
        .collect();
    for child in children {
        child.join().unwrap();
    }
    let list = stdout(&degrade(&file, &["list"]));
    let mut lost = Vec::new();
    for p in 0..PROCESSES {
        for u in 0..UPDATES {
            let out = degrade(&file, &["get", &format!("p{p}.flag{u}")]);
            if stdout(&out).trim() != "true" {
                lost.push(format!("p{p}.flag{u}"));
            }
        }
    }
    assert!(lost.is_empty(), "{} of {} updates lost: {lost:?}\n{list}", lost.len(), PROCESSES * UPDATES);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("value: true").count(), PROCESSES * UPDATES, "{text}");
}

/// `set` through a symlink edits the link's target and keeps the link (it used to replace the link with a
/// regular file, cutting the configuration loose from what it pointed to).
#[test]
fn set_through_a_symlink_edits_the_target_and_keeps_the_link() {
    let target = scratch("symlink");
    let dir = target.parent().unwrap();
    let link = dir.join("linked.yaml");
    let _ = std::fs::remove_file(&link);
    symlink("feature_flags.yaml", &link).unwrap();
    let out = degrade(&link, &["set", "quotes.source", "cached"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert_eq!(stdout(&degrade(&target, &["get", "quotes.source"])).trim(), "cached", "the target is updated");
    assert_eq!(stdout(&degrade(&link, &["get", "quotes.source"])).trim(), "cached");
    assert!(degrade(&link, &["unset", "quotes.source"]).status.success());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), FLAGS);
}

/// A Kubernetes-ConfigMap-style layout: `feature_flags.yaml -> ..data/feature_flags.yaml` and
/// `..data -> ..2026_12_04_x`. After `set`, both links are still links and reading through them shows the new
/// value. (A real ConfigMap is mounted read-only: there `set` fails with the reason.)
#[test]
fn set_in_a_configmap_layout_keeps_its_links() {
    let dir = std::env::temp_dir().join(format!("degrade-cli-{}-configmap", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("..2026_12_04_x")).unwrap();
    std::fs::write(dir.join("..2026_12_04_x/feature_flags.yaml"), FLAGS).unwrap();
    symlink("..2026_12_04_x", dir.join("..data")).unwrap();
    let file = dir.join("feature_flags.yaml");
    symlink("..data/feature_flags.yaml", &file).unwrap();
    let out = degrade(&file, &["set", "api.shed_percent", "30"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for link in [file.clone(), dir.join("..data")] {
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "{} cut loose", link.display());
    }
    assert_eq!(stdout(&degrade(&file, &["get", "api.shed_percent"])).trim(), "30");
    let through = std::fs::read_to_string(&file).unwrap();
    assert!(through.contains("value: 30"), "{through}");
    assert_eq!(std::fs::read_to_string(dir.join("..2026_12_04_x/feature_flags.yaml")).unwrap(), through);
    let mut top: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    top.sort();
    assert_eq!(top, ["..2026_12_04_x", "..data", "feature_flags.yaml"], "nothing written beside the links");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `degrade` with these arguments only (no `--file` put first), from a scratch working directory.
fn degrade_args(args: &[&str]) -> Output {
    let dir = std::env::temp_dir();
    Command::new(env!("CARGO_BIN_EXE_degrade"))
        .args(args)
        .current_dir(dir)
        .env_remove("DEGRADE_QUOTES_SOURCE")
        .env_remove("DEGRADE_TOKEN")
        .output()
        .expect("the degrade binary runs")
}

#[test]
fn help_lists_every_command_and_option_and_version_prints_the_version() {
    let help = degrade_args(&["--help"]);
    assert_eq!(help.status.code(), Some(0), "{}", stderr(&help));
    let text = stdout(&help);
    for word in
        ["list", "get", "set", "unset", "validate", "completions", "--file", "--url", "--token-file", "--version"]
    {
        assert!(text.contains(word), "--help does not mention {word}:\n{text}");
    }
    assert!(!text.contains("--token "), "the refused --token is not advertised:\n{text}");
    let list = stdout(&degrade_args(&["list", "--help"]));
    assert!(list.contains("--json"), "{list}");
    let set = stdout(&degrade_args(&["help", "set"]));
    assert!(set.contains("<NAME>") && set.contains("<VALUE>"), "{set}");

    let version = degrade_args(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(stdout(&version).trim(), format!("degrade {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2_on_stderr_with_a_suggestion() {
    let file = scratch("usage");
    let before = std::fs::read(&file).unwrap();
    for (args, says) in [
        (&["lsit"][..], "tip: some similar subcommands exist: 'validate', 'set', 'list'"),
        (&["--fiel", "x", "list"][..], "tip: a similar argument exists: '--file'"),
        (&["list", "--jsno"][..], "tip: a similar argument exists: '--json'"),
        (&["get"][..], "<NAME>"),
        (&["set", "quotes.source"][..], "<VALUE>"),
        (&["get", "quotes.source", "extra"][..], "unexpected argument 'extra'"),
        (&[][..], "Usage: degrade"),
    ] {
        let out = degrade(&file, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}: errors go to stderr: {}", stdout(&out));
    }
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

/// An option the command does not take is refused (exit 2), never ignored.
#[test]
fn an_option_the_command_does_not_take_is_refused() {
    let file = scratch("refused");
    let flags = file.display().to_string();
    for (args, says) in [
        (&["validate", "--json"][..], "unexpected argument '--json'"),
        (&["get", "quotes.source", "--json"][..], "unexpected argument '--json'"),
        (&["--url", "http://127.0.0.1:9/admin", "validate"][..], "`validate` checks a file; it does not go with --url"),
        (&["--url", "http://127.0.0.1:9/admin", "--file", &flags, "list"][..], "--file and --url exclude each other"),
        (&["--token-file", "tokens", "--file", &flags, "list"][..], "--token-file goes with --url"),
        (&["--token", "secret-0123456789", "--url", "http://127.0.0.1:9/admin", "list"][..], "--token is refused"),
        (&["completions", "bash", "--file", &flags][..], "`completions` takes no --file"),
        (&["completions", "tcsh"][..], "invalid value 'tcsh'"),
    ] {
        let out = degrade_args(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("secret-0123456789"), "the token is never echoed");
    }
}

#[test]
fn options_take_equals_and_go_before_or_after_the_command() {
    let file = scratch("equals");
    let flags = format!("--file={}", file.display());
    for args in [&[flags.as_str(), "get", "quotes.source"][..], &["get", "quotes.source", flags.as_str()][..]] {
        let out = degrade_args(args);
        assert_eq!(stdout(&out).trim(), "live", "{args:?}: {}", stderr(&out));
    }
    // A negative value is a value, not an option: refused by the flag's type (exit 1), not by the parser.
    let out = degrade(&file, &["set", "api.shed_percent", "-1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("flags.api.shed_percent.value"), "{}", stderr(&out));
}

#[test]
fn list_json_has_every_flag_with_its_value_default_and_source() {
    let file = scratch("json");
    assert!(degrade(&file, &["set", "quotes.source", "cached"]).status.success());
    let out = degrade(&file, &["list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let flags = doc["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 6, "{doc}");
    let quotes = flags.iter().find(|f| f["name"] == "quotes.source").unwrap();
    assert_eq!(
        (&quotes["kind"], &quotes["value"], &quotes["default"], &quotes["source"]),
        (&"strategy".into(), &"cached".into(), &"live".into(), &"file".into()),
        "{quotes}"
    );
    let shed = flags.iter().find(|f| f["name"] == "api.shed_percent").unwrap();
    assert_eq!((&shed["value"], &shed["source"]), (&"0".into(), &"default".into()), "{shed}");
}

/// clap is built without its `color` feature: no escape sequence ever, even when colour is forced
/// (`CLICOLOR_FORCE`), so `NO_COLOR` is honoured whatever the terminal.
#[test]
fn no_colour_is_ever_printed() {
    for args in [&["--help"][..], &["lsit"][..], &["list", "--jsno"][..]] {
        for (var, value) in [("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")] {
            let out = Command::new(env!("CARGO_BIN_EXE_degrade")).args(args).env(var, value).output().unwrap();
            let all = [out.stdout, out.stderr].concat();
            assert!(!all.is_empty() && !all.contains(&0x1b), "{args:?} with {var}: {}", String::from_utf8_lossy(&all));
        }
    }
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, says) in [("bash", "_degrade()"), ("zsh", "#compdef degrade"), ("fish", "complete -c degrade")] {
        let out = degrade_args(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(says) && script.contains("validate") && script.contains("token-file"), "{shell}");
    }
}
