//! `cost-meter`: check budget files, report usage, generate Prometheus rules, estimate a job before it runs,
//! run and meter any command, and keep a result cache of repeated work.
//!
//! ```text
//! cost-meter validate [DIR]                  check the budget files (default configs/budgets/)
//! cost-meter report [--budgets DIR] [--records FILE] [--checkpoint FILE] [--month YYYY-MM] [--json]
//!                                            usage per budget and per label set, month to date
//! cost-meter rules [DIR] [--out FILE] [--test BUDGET --test-out FILE]
//!                                            Prometheus recording and alerting rules (and a promtool test)
//! cost-meter estimate --team T --service S [--strategy X] [--tier T] [--env E]
//!                     [--budgets DIR] [--records FILE] [--json]
//!                                            the pre-run estimate from similar jobs in the records
//! cost-meter run [OPTIONS] -- COMMAND [ARGS...]
//!                                            gate, estimate, run and meter a command (and its whole tree)
//! cost-meter cache stats --cache DIR         hit rate per label set, bytes and CPU-hours saved
//! cost-meter cache gc --cache DIR --max-size SIZE
//!                                            drop least recently used entries down to SIZE
//! cost-meter completions SHELL               a completion script (bash, elvish, fish, powershell, zsh)
//! ```
//!
//! `--records` defaults to `cost_records.jsonl` (JSON lines, one finished job each). Errors go to standard
//! error naming the file, the field and the reason; a refused input exits with status 1, a usage error (an
//! unknown command or option, an option the command does not take, a bad value) with status 2. `run` has
//! exit statuses of its own: see `cost-meter run --help`.
//!
//! Only `rules` writes files among the budget commands, and only once every argument has been checked: a
//! refused argument leaves no `--out` or `--test-out` file behind. `report --checkpoint FILE` only reads: a
//! checkpoint that does not parse is reported (file and reason) with status 1 and left where it is,
//! untouched; the service that keeps it moves it aside when it next starts. The report does not fall back to
//! the records then, since that would show a month-to-date figure the checkpoint contradicts.
//!
//! The command line is clap's: `--help` (also per command), `--version`, `--opt=value`, typo suggestions.
//! Built without clap's `color` feature, it never prints colour.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

mod budgets;
mod cache;
mod run;

/// Budgets, usage reports, Prometheus rules and pre-run estimates for metered jobs; `run` meters any command.
///
/// Exit status: 0 done, 1 refused (an invalid file, a missing record, an unknown budget), 2 usage error.
/// `cost-meter run` passes on its command's status; see `cost-meter run --help` for its own.
#[derive(Debug, Parser)]
#[command(name = "cost-meter", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Check the budget files of a directory (every error, with its file, field and reason).
    Validate {
        /// The budgets directory.
        #[arg(value_name = "DIR", conflicts_with = "budgets")]
        dir: Option<PathBuf>,
        /// The budgets directory (the same as DIR).
        #[arg(long, visible_alias = "dir", value_name = "DIR")]
        budgets: Option<PathBuf>,
    },
    /// Usage per budget and per label set, month to date, from the records or a checkpoint.
    Report(budgets::ReportArgs),
    /// Prometheus recording and alerting rules for the budgets (and a promtool unit test).
    Rules(budgets::RulesArgs),
    /// The pre-run estimate of a job from similar jobs in the records.
    Estimate(budgets::EstimateArgs),
    /// Gate, estimate, run and meter a command and its whole process tree; optionally cache its outputs.
    #[command(long_about = run::LONG_ABOUT)]
    Run(Box<run::RunArgs>),
    /// The result cache: its statistics and its garbage collection.
    Cache {
        #[command(subcommand)]
        command: cache::CacheCmd,
    },
    /// Print the completion script of a shell to standard output.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The budgets directory and the records file, shared by the commands that read them.
#[derive(Debug, Args)]
struct Sources {
    /// The budgets directory.
    #[arg(long, visible_alias = "dir", value_name = "DIR")]
    budgets: Option<PathBuf>,
    /// The records file (JSON lines, one finished job each) [default: cost_records.jsonl].
    #[arg(long, value_name = "FILE")]
    records: Option<PathBuf>,
}

/// Why a command failed.
enum Failure {
    /// A usage error: status 2, clap's usage line.
    Usage(String),
    /// A refused input: status 1.
    Refused(String),
    /// A specific status (from `run`), after its message was printed.
    Exit(u8),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Cmd::Validate { dir, budgets } => budgets::validate(&budgets::dir_or_default(dir.or(budgets))),
        Cmd::Report(args) => budgets::report(&args),
        Cmd::Rules(args) => budgets::rules(&args),
        Cmd::Estimate(args) => budgets::estimate_cmd(&args),
        Cmd::Run(args) => run::run(*args),
        Cmd::Cache { command } => cache::cache_cmd(command),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cost-meter", &mut std::io::stdout());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // A usage error as clap prints its own: `error: ...`, the usage line, a pointer to --help; status 2.
        Err(Failure::Usage(msg)) => Cli::command().error(clap::error::ErrorKind::ValueValidation, msg).exit(),
        Err(Failure::Refused(msg)) => {
            eprintln!("cost-meter: {msg}");
            ExitCode::from(1)
        }
        Err(Failure::Exit(code)) => ExitCode::from(code),
    }
}
