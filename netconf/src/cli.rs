//! What both daemons' command lines share beyond their subcommands.

use std::process::ExitCode;

/// The subcommand to run, or the exit status when the line asked for
/// `--version` (printed) or named no subcommand (a hint printed).
pub fn command<C>(program: &str, version: bool, command: Option<C>) -> Result<C, ExitCode> {
    if version {
        println!("{program} {}", env!("CARGO_PKG_VERSION"));
        return Err(ExitCode::SUCCESS);
    }
    command.ok_or_else(|| {
        eprintln!("{program}: no command given; `{program} --help` lists them");
        ExitCode::from(2)
    })
}
