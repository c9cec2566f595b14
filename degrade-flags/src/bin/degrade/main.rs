//! `degrade`: read and change degrade flags in a flag file, for developers working locally, or in a running
//! service through its admin API (`--url`), for operators.
//!
//! ```text
//! degrade [--file F] list              every flag: value, default, type, where the value comes from
//! degrade [--file F] get NAME          one flag's value
//! degrade [--file F] set NAME VALUE    set the file's value (checked against the flag's type)
//! degrade [--file F] unset NAME        remove the file's value (back to the default)
//! degrade [--file F] validate          check the file
//! ```
//!
//! `--file` defaults to `configs/feature_flags.yaml`. `set` and `unset` edit the file in place, keeping its
//! comments and order, and replace it atomically (a unique temporary file, fsync, rename:
//! `brownout_foundation::fs::write_atomically`). A wrong name or value exits with status 1 and a message, and
//! leaves the file untouched; a usage error exits with status 2.
//!
//! Concurrent `set`s and `unset`s of one file all land: each holds an exclusive advisory lock (`flock`) on a
//! lock file beside the flag file, `.NAME.lock`, from before it reads the file until after the rename. The lock
//! file is left in place (removing it would let two editors lock two different files); it holds nothing.
//!
//! Through a symlink (a chain of them, or a Kubernetes ConfigMap's `NAME -> ..data/NAME`), `set` and `unset`
//! edit the link's final target and keep the links: the lock file and the temporary file go beside the target.
//! A real ConfigMap is mounted read-only: there `set` fails with the reason (change the ConfigMap instead, or
//! use `--url` on the running service).
//!
//! ```text
//! degrade --url http://127.0.0.1:8080/admin [--token-file F] (list | get NAME | set NAME VALUE | unset NAME)
//! ```
//!
//! With `--url` the commands go to chaos-tower's admin API of a running service instead of a file: `set`
//! overrides the flag in the service's memory (the highest precedence) and `unset` drops that override. The
//! bearer token comes from `--token-file F` (a bare token, or the first `id:token` line) or else the
//! `DEGRADE_TOKEN` environment variable. A token on the command line (`--token`) is refused: it would land in
//! the shell's history and in `ps`. Errors say what the API said: `401` (token refused), `400`/`404` with the
//! field and the reason, `429` (too many failed attempts), or that the service cannot be reached.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use degrade_flags::flags::{FlagFile, edit, env_var};

const USAGE: &str = "usage: degrade [--file FILE] (list | get NAME | set NAME VALUE | unset NAME | validate)\n       \
                     degrade --url URL [--token-file FILE] (list | get NAME | set NAME VALUE | unset NAME)\n       \
                     (the token comes from --token-file or DEGRADE_TOKEN, never from the command line)";

mod remote;

enum Failure {
    Usage(String),
    Refused(String),
}

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("degrade: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Refused(msg)) => {
            eprintln!("degrade: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Vec<String>) -> Result<(), Failure> {
    let mut file = PathBuf::from("configs/feature_flags.yaml");
    let mut url: Option<String> = None;
    let mut token_file: Option<PathBuf> = None;
    let mut words = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--file" | "-f" => file = it.next().ok_or_else(|| Failure::Usage("--file needs a path".into()))?.into(),
            "--url" => url = Some(it.next().ok_or_else(|| Failure::Usage("--url needs a URL".into()))?),
            "--token-file" => {
                token_file = Some(it.next().ok_or_else(|| Failure::Usage("--token-file needs a path".into()))?.into())
            }
            a if a == "--token" || a.starts_with("--token=") => {
                return Err(Failure::Usage(
                    "--token is refused: a token on the command line lands in the shell history and `ps`; \
                     use --token-file FILE or DEGRADE_TOKEN"
                        .into(),
                ));
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => words.push(arg),
        }
    }
    let refused = |e: degrade_flags::FlagError| Failure::Refused(e.to_string());
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    if let Some(url) = url {
        if !matches!(words.as_slice(), ["list"] | ["get", _] | ["set", _, _] | ["unset", _]) {
            return Err(Failure::Usage("with --url: list, get NAME, set NAME VALUE or unset NAME".into()));
        }
        let token = remote::token(token_file.as_deref()).map_err(Failure::Refused)?;
        let remote = remote::Remote::new(&url, token).map_err(Failure::Usage)?;
        return remote::run(&remote, &words).map_err(Failure::Refused);
    }
    if token_file.is_some() {
        return Err(Failure::Usage("--token-file goes with --url".into()));
    }
    match words.as_slice() {
        ["list"] => {
            let flags = FlagFile::read(&file).map_err(refused)?;
            println!("{:<36} {:<10} {:<12} {:<12} source", "flag", "type", "value", "default");
            for spec in flags.flags.values() {
                let value = spec.value.unwrap_or(spec.default);
                let source = if std::env::var_os(env_var(&spec.name)).is_some() {
                    format!("file (overridden here by {})", env_var(&spec.name))
                } else if spec.value.is_some() {
                    "file".to_owned()
                } else {
                    "default".to_owned()
                };
                println!(
                    "{:<36} {:<10} {:<12} {:<12} {source}",
                    spec.name,
                    spec.kind.name(),
                    spec.kind.format(value),
                    spec.kind.format(spec.default)
                );
            }
            Ok(())
        }
        ["get", name] => {
            let flags = FlagFile::read(&file).map_err(refused)?;
            let spec = flags.flags.get(*name).ok_or_else(|| unknown(&file, name))?;
            println!("{}", spec.kind.format(spec.value.unwrap_or(spec.default)));
            Ok(())
        }
        ["set", name, value] => rewrite(&file, name, Some(value)),
        ["unset", name] => rewrite(&file, name, None),
        ["validate"] => {
            let flags = FlagFile::read(&file).map_err(refused)?;
            println!("{}: {} flags, valid", file.display(), flags.flags.len());
            Ok(())
        }
        [] => Err(Failure::Usage("no command".into())),
        other => Err(Failure::Usage(format!("cannot understand `{}`", other.join(" ")))),
    }
}

fn unknown(file: &Path, name: &str) -> Failure {
    Failure::Refused(format!("{}: no flag named `{name}`", file.display()))
}

/// Under the file's lock: checks the change, edits the text in place, checks the result, and replaces the file
/// (the final target of a symlink) atomically.
fn rewrite(file: &Path, name: &str, value: Option<&str>) -> Result<(), Failure> {
    let target = brownout_foundation::fs::resolve_symlinks(file)
        .map_err(|e| Failure::Refused(format!("{}: cannot follow the link: {e}", file.display())))?;
    let _lock = lock(file, &target)?;
    let text = std::fs::read_to_string(&target)
        .map_err(|e| Failure::Refused(format!("{}: cannot read the file: {e}", file.display())))?;
    let flags = FlagFile::parse(&text, Some(file)).map_err(|e| Failure::Refused(e.to_string()))?;
    let spec = flags.flags.get(name).ok_or_else(|| unknown(file, name))?;
    let parsed = value
        .map(|v| spec.kind.parse(v))
        .transpose()
        .map_err(|r| Failure::Refused(format!("{}: flags.{name}.value: {r}", file.display())))?;
    let formatted = parsed.map(|v| spec.kind.format(v));
    let edited = edit::set_value(&text, name, formatted.as_deref()).ok_or_else(|| {
        Failure::Refused(format!(
            "{}: the entry of `{name}` is not a block or a one-line mapping; edit it by hand",
            file.display()
        ))
    })?;
    // The edit must give a valid file in which exactly this flag changed as asked.
    let check = FlagFile::parse(&edited, Some(file)).map_err(|e| Failure::Refused(format!("edit refused: {e}")))?;
    if check.flags.get(name).map(|s| s.value) != Some(parsed) || check.flags.len() != flags.flags.len() {
        return Err(Failure::Refused(format!(
            "{}: the edit did not give the expected file; nothing written",
            file.display()
        )));
    }
    brownout_foundation::fs::write_atomically(&target, edited.as_bytes())
        .map_err(|e| Failure::Refused(cannot_write(file, &target, &e)))?;
    match formatted {
        Some(v) => println!("{name} = {v}"),
        None => println!("{name} = {} (default)", spec.kind.format(spec.default)),
    }
    Ok(())
}

/// Takes the exclusive advisory lock of `target` (the flag file, links resolved): `flock` on `.NAME.lock` in
/// the same directory, created if needed, held until the returned file is dropped. Blocks while another
/// `degrade` edits the file.
fn lock(file: &Path, target: &Path) -> Result<File, Failure> {
    let name = target.file_name().ok_or_else(|| Failure::Refused(format!("{}: not a file", file.display())))?;
    let mut lock_name = std::ffi::OsString::from(".");
    lock_name.push(name);
    lock_name.push(".lock");
    let lock_path = target.with_file_name(lock_name);
    // Opened for append and never written: a planted symlink there could be locked, never changed.
    let lock = File::options()
        .append(true)
        .create(true)
        .open(&lock_path)
        .map_err(|e| Failure::Refused(cannot_write(file, &lock_path, &e)))?;
    lock.lock()
        .map_err(|e| Failure::Refused(format!("{}: cannot lock {}: {e}", file.display(), lock_path.display())))?;
    Ok(lock)
}

/// The error of a write to `path` (the flag file's target, or its lock file), with a hint for a read-only
/// mount such as a Kubernetes ConfigMap.
fn cannot_write(file: &Path, path: &Path, e: &std::io::Error) -> String {
    let through = if path == file { String::new() } else { format!(" ({})", path.display()) };
    let hint = if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem {
        "; the file is on a read-only mount (a Kubernetes ConfigMap is one): change its source, or use --url on \
         the running service"
    } else {
        ""
    };
    format!("{}: cannot write{through}: {e}{hint}", file.display())
}
