//! `degrade`: read and change degrade flags in a flag file, for developers working locally, or in a running
//! service through its admin API (`--url`), for operators.
//!
//! ```text
//! degrade [--file F] list [--json]     every flag: value, default, type, where the value comes from
//! degrade [--file F] get NAME          one flag's value
//! degrade [--file F] set NAME VALUE    set the file's value (checked against the flag's type)
//! degrade [--file F] unset NAME        remove the file's value (back to the default)
//! degrade [--file F] validate          check the file
//! ```
//!
//! `--file` defaults to `configs/feature_flags.yaml`. `list --json` prints the flags as JSON
//! (`{"flags": [{"name", "kind", "value", "default", "source", "description"}]}`, the admin API's shape). `set` and `unset` edit the file in place, keeping its
//! comments and order, and replace it atomically (a unique temporary file, fsync, rename:
//! `brownout_foundation::fs::write_atomically`). A wrong name or value exits with status 1 and a message, and
//! leaves the file untouched; a usage error (an unknown command or option, a missing or extra argument, an
//! option the command does not take) exits with status 2 and says so on standard error.
//!
//! The command line is clap's: `--help` (also per command: `degrade set --help`), `--version`, `--opt=value`,
//! options before or after the command, typo suggestions. Built without clap's `color` feature, it never
//! prints colour (so `NO_COLOR` holds trivially). `degrade completions SHELL` prints a completion script
//! (bash, elvish, fish, powershell, zsh).
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
//! degrade --url http://127.0.0.1:8080/admin [--token-file F] (list [--json] | get NAME | set NAME VALUE | unset NAME)
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

use brownout_degrade::flags::{FlagFile, edit, env_var};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod remote;

/// Read and change degrade flags: in a flag file, or in a running service through its admin API (--url).
///
/// Exit status: 0 done, 1 refused (a wrong name or value, an invalid file, the admin API said no; the file is
/// left untouched), 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "degrade", version)]
struct Cli {
    /// The flag file (not with --url).
    #[arg(long, short, global = true, value_name = "FILE", default_value = "configs/feature_flags.yaml")]
    file: PathBuf,
    /// A running service's admin API (`http://host:port/admin`) instead of the file: list, get, set, unset.
    #[arg(long, global = true, value_name = "URL")]
    url: Option<String>,
    /// With --url: the admin API's bearer token, read from this file (a bare token, or the first `id:token`
    /// line). Without it the token comes from the DEGRADE_TOKEN environment variable, never from the command
    /// line.
    #[arg(long, global = true, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Refused: a token on the command line lands in the shell history and `ps`.
    #[arg(long, global = true, hide = true, num_args = 0..=1, value_name = "TOKEN")]
    token: Option<Option<String>>,
    #[command(subcommand)]
    command: Cmd,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Every flag: type, value, default, and where the value comes from.
    List {
        /// Print JSON (`{"flags": [...]}`, the admin API's shape) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// One flag's value.
    Get {
        /// The flag (`service.setting`).
        name: String,
    },
    /// Set a flag (checked against its type): the file's value, or with --url an override in the service's
    /// memory (the highest precedence).
    Set {
        /// The flag (`service.setting`).
        name: String,
        /// Its new value (`true`, `cached`, `12.5`, `-1`: checked against the flag's type).
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Remove the file's value (back to the default), or with --url the service's override.
    Unset {
        /// The flag (`service.setting`).
        name: String,
    },
    /// Check the file (not with --url).
    Validate,
    /// Print the completion script of a shell to standard output.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

enum Failure {
    Usage(String),
    Refused(String),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = |id: &str| {
        let explicit = |m: &clap::ArgMatches| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        explicit(&matches) || matches.subcommand().is_some_and(|(_, m)| explicit(m))
    };
    let outcome = match check(&cli, given) {
        Ok(()) => run(cli),
        Err(msg) => Err(Failure::Usage(msg)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // A usage error as clap prints its own: `error: ...`, the usage line, a pointer to --help; status 2.
        Err(Failure::Usage(msg)) => Cli::command().error(clap::error::ErrorKind::ArgumentConflict, msg).exit(),
        Err(Failure::Refused(msg)) => {
            eprintln!("degrade: {msg}");
            ExitCode::from(1)
        }
    }
}

/// What clap cannot say by itself: `--token` is refused, and which options go with which commands.
fn check(cli: &Cli, given: impl Fn(&str) -> bool) -> Result<(), String> {
    if cli.token.is_some() {
        return Err("--token is refused: a token on the command line lands in the shell history and `ps`; \
                    use --token-file FILE or DEGRADE_TOKEN"
            .into());
    }
    match (&cli.url, &cli.command) {
        (_, Cmd::Completions { .. }) if given("file") || cli.url.is_some() || cli.token_file.is_some() => {
            return Err("`completions` takes no --file, --url or --token-file".into());
        }
        (Some(_), Cmd::Validate) => {
            return Err("`validate` checks a file; it does not go with --url".into());
        }
        (Some(_), _) if given("file") => return Err("--file and --url exclude each other".into()),
        (None, _) if cli.token_file.is_some() => return Err("--token-file goes with --url".into()),
        _ => {}
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), Failure> {
    let file = cli.file;
    if let Some(url) = cli.url {
        let token = remote::token(cli.token_file.as_deref()).map_err(Failure::Refused)?;
        let remote = remote::Remote::new(&url, token).map_err(Failure::Usage)?;
        return remote::run(&remote, &cli.command).map_err(Failure::Refused);
    }
    let refused = |e: brownout_degrade::FlagError| Failure::Refused(e.to_string());
    match &cli.command {
        Cmd::List { json } => {
            let flags = FlagFile::read(&file).map_err(refused)?;
            let source = |name: &str, set: bool| match (std::env::var_os(env_var(name)).is_some(), set) {
                (true, _) => format!("file (overridden here by {})", env_var(name)),
                (false, true) => "file".to_owned(),
                (false, false) => "default".to_owned(),
            };
            if *json {
                let rows: Vec<_> = flags
                    .flags
                    .values()
                    .map(|spec| {
                        serde_json::json!({
                            "name": spec.name,
                            "kind": spec.kind.name(),
                            "value": spec.kind.format(spec.value.unwrap_or(spec.default)),
                            "default": spec.kind.format(spec.default),
                            "source": source(&spec.name, spec.value.is_some()),
                            "description": spec.description,
                        })
                    })
                    .collect();
                println!("{}", serde_json::json!({ "flags": rows }));
                return Ok(());
            }
            println!("{:<36} {:<10} {:<12} {:<12} source", "flag", "type", "value", "default");
            for spec in flags.flags.values() {
                println!(
                    "{:<36} {:<10} {:<12} {:<12} {}",
                    spec.name,
                    spec.kind.name(),
                    spec.kind.format(spec.value.unwrap_or(spec.default)),
                    spec.kind.format(spec.default),
                    source(&spec.name, spec.value.is_some())
                );
            }
            Ok(())
        }
        Cmd::Get { name } => {
            let flags = FlagFile::read(&file).map_err(refused)?;
            let spec = flags.flags.get(name).ok_or_else(|| unknown(&file, name))?;
            println!("{}", spec.kind.format(spec.value.unwrap_or(spec.default)));
            Ok(())
        }
        Cmd::Set { name, value } => rewrite(&file, name, Some(value)),
        Cmd::Unset { name } => rewrite(&file, name, None),
        Cmd::Validate => {
            let flags = FlagFile::read(&file).map_err(refused)?;
            println!("{}: {} flags, valid", file.display(), flags.flags.len());
            Ok(())
        }
        Cmd::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "degrade", &mut std::io::stdout());
            Ok(())
        }
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
