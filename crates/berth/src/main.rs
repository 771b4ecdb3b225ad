//! `berth`: the command line. Docker's commands and flags, on Berth's engine.

mod attach;
mod build_cmds;
mod cli;
pub(crate) use commands::report;
mod commands;
mod container_cmds;
mod df_cmd;
mod flags;
mod format;
mod image_cmds;
mod man_cmd;
mod network_cmds;
mod paths;
mod prune_cmds;
mod registry_cmds;
mod system_cmds;
mod template;
mod volume_cmds;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// Docker's exit code for a command line it cannot take.
const USAGE_FAILED: i32 = 125;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if berth_engine::monitor::is_monitor(&args) {
        return ExitCode::from(berth_engine::monitor::main(&args).clamp(0, 255) as u8);
    }
    quiet_on_closed_stdout();
    let code = match parse(args) {
        Ok(mut cli) => match paths::resolve(&mut cli) {
            Ok(()) => match log_level(&cli.global) {
                Some(level) => {
                    init_logging(&cli.global, level);
                    commands::dispatch(cli)
                }
                None => {
                    // Docker's CLI: the message, and status 1.
                    eprintln!(
                        "Unable to parse logging level: {}",
                        commands::escape_controls(&cli.global.log_level)
                    );
                    1
                }
            },
            Err(e) => {
                report(&e);
                USAGE_FAILED
            }
        },
        Err(code) => code,
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// A reader that closes early (`berth ps | grep -q x`) ends the output:
/// `println!` panics on a write to a closed pipe, and this hook turns that
/// panic into the quiet end docker's CLI has (the Go runtime lets a write to
/// a closed stdout raise SIGPIPE). Any other panic keeps the default report.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if commands::stdout_closed() {
            commands::end_on_closed_stdout();
        }
        default(info)
    }));
}

/// The command line as docker's CLI reads it (see `flags`), or the exit code
/// of a line that cannot be taken, its error printed.
fn parse(args: Vec<OsString>) -> Result<cli::Cli, i32> {
    // Not built whole: subcommands are deferred (see cli.rs), and only the
    // one the words name is ever built.
    let mut cmd = cli::Cli::command();
    let words = flags::normalize(&cmd, args).map_err(|e| {
        eprintln!("{}\nSee '{} --help'.", e.message, e.command);
        USAGE_FAILED
    })?;
    let mut matches = cmd.try_get_matches_from_mut(words).map_err(clap_error)?;
    cli::Cli::from_arg_matches_mut(&mut matches).map_err(clap_error)
}

/// Prints clap's message; docker's exit codes: help is 0, a wrong number of
/// arguments or an unknown command 1, a bad flag value 125.
fn clap_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind as K;
    let _ = e.print();
    match e.kind() {
        K::DisplayHelp
        | K::DisplayVersion
        | K::DisplayHelpOnMissingArgumentOrSubcommand
        | K::MissingSubcommand => 0,
        K::InvalidSubcommand
        | K::UnknownArgument
        | K::MissingRequiredArgument
        | K::TooFewValues
        | K::TooManyValues
        | K::WrongNumberOfValues => 1,
        _ => USAGE_FAILED,
    }
}

/// `--log-level` as tracing names it, from the names docker's CLI takes
/// (logrus's, any case); None for a name it refuses.
fn log_level(g: &cli::Global) -> Option<&'static str> {
    Some(match g.log_level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        _ => return None,
    })
}

fn init_logging(g: &cli::Global, level: &str) {
    let level = if g.debug { "debug" } else { level };
    // libcgroups warns about every controller the host lacks: keep it quiet
    // unless debugging.
    let filter = if g.debug {
        level.to_string()
    } else {
        format!("{level},libcgroups=error,rustls=off")
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .try_init();
}
