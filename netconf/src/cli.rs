//! The command line both daemons share: the program's description,
//! `--version`, `--help`, and one of its commands. Each main.rs lists only
//! its commands (an argh subcommand enum) and declares its top level with
//! [`command_line!`](crate::command_line): argh takes a description only
//! from a doc comment, so the shared part is a macro, not a generic type.

use std::process::ExitCode;

/// A program's top-level command line, as [`command_line!`](crate::command_line)
/// declares it.
pub trait CommandLine: argh::TopLevelCommand {
    /// The enum of the program's commands.
    type Command;
    /// The program's name, for `--version` and hints.
    const PROGRAM: &'static str;
    /// Whether the line asked for `--version`.
    fn version(&self) -> bool;
    /// The command the line named, if any.
    fn into_command(self) -> Option<Self::Command>;
}

/// Exit status of `run` when its configuration has errors: sysexits.h's
/// EX_CONFIG, which a service manager can tell from a failure worth a
/// restart (the systemd units' `RestartPreventExitStatus=`).
pub const EX_CONFIG: u8 = 78;

/// Why a command failed: the message for the operator and the exit status.
#[derive(Debug)]
pub struct Failure {
    message: String,
    status: u8,
}

impl Failure {
    /// The configuration has errors: restarting will not help.
    pub fn config(message: impl ToString) -> Self {
        Failure {
            message: message.to_string(),
            status: EX_CONFIG,
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure { message, status: 1 }
    }
}

/// Reads the process's command line and runs the command it names with
/// `run`: prints the version for `--version`, a hint when it names no
/// command (exit 2), the command's error when it fails (exit 1, or
/// [`EX_CONFIG`]).
pub fn main<L: CommandLine>(run: impl FnOnce(L::Command) -> Result<(), Failure>) -> ExitCode {
    let line: L = argh::from_env();
    if line.version() {
        println!("{} {}", L::PROGRAM, env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let Some(command) = line.into_command() else {
        let program = L::PROGRAM;
        eprintln!("{program}: no command given; `{program} --help` lists them");
        return ExitCode::from(2);
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}

/// Declares a program's top-level command line: a struct `$name` whose doc
/// comment is the description `--help` shows, with `--version` and one of
/// the commands of `$commands` (an argh subcommand enum). Run it with
/// [`cli::main`](crate::cli::main).
///
/// ```ignore
/// netconf::command_line! {
///     /// lispguard: WireGuard peers on demand.
///     struct Cli(Command);
/// }
/// ```
#[macro_export]
macro_rules! command_line {
    ($(#[$attr:meta])* struct $name:ident($commands:ty);) => {
        #[derive(argh::FromArgs)]
        $(#[$attr])*
        struct $name {
            /// print the version and exit
            #[argh(switch)]
            version: bool,
            #[argh(subcommand)]
            command: Option<$commands>,
        }

        impl $crate::cli::CommandLine for $name {
            type Command = $commands;
            const PROGRAM: &'static str = env!("CARGO_BIN_NAME");
            fn version(&self) -> bool {
                self.version
            }
            fn into_command(self) -> Option<$commands> {
                self.command
            }
        }
    };
}
