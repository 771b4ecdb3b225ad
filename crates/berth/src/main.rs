//! `berth`: the command line. Docker's commands and flags, on Berth's engine.

mod attach;
mod build_cmds;
mod cli;
pub(crate) use commands::report;
mod commands;
mod container_cmds;
mod format;
mod image_cmds;
mod network_cmds;
mod registry_cmds;
mod template;
mod volume_cmds;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(&cli.global);
    let code = commands::dispatch(cli);
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn init_logging(g: &cli::Global) {
    let level = if g.debug {
        "debug"
    } else {
        g.log_level.as_str()
    };
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
