//! `lispguard`: the command line.

use agent::config::Config;
use agent::lookup::{self, Query};
use agent::status::Request;
use agent::{daemon, status};
use argh::FromArgs;
use netconf::cli::Failure;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "toml")]
const DEFAULT_CONFIG: &str = "/etc/lispguard/agent.toml";
#[cfg(not(feature = "toml"))]
const DEFAULT_CONFIG: &str = "/etc/config/lispguard";
const DEFAULT_SOCKET: &str = "/run/lispguard.sock";

netconf::command_line! {
    /// lispguard: WireGuard peers on demand. When a packet first goes to an
    /// overlay address without a peer, the agent asks the map-server (LISP,
    /// inside WireGuard) for its key and endpoint, sets the peer up, and sends
    /// the packet on; the map-server tells the other side at the same moment.
    struct Cli(Command);
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Run(Run),
    Join(Join),
    Status(StatusCommand),
    Lookup(LookupCommand),
    CheckConfig(CheckConfig),
    Genkey(Genkey),
    Pubkey(Pubkey),
}

#[derive(FromArgs)]
/// Run the agent in the foreground (SIGTERM or SIGINT stop it and remove
/// its interface, routes and peers).
#[argh(subcommand, name = "run")]
struct Run {
    /// configuration file: TOML if it ends in .toml, else UCI (default
    /// /etc/lispguard/agent.toml; OpenWrt: /etc/config/lispguard)
    #[argh(option, short = 'c', default = "PathBuf::from(DEFAULT_CONFIG)")]
    config: PathBuf,
    /// log level: error, warn, info, debug, trace (default: the file's)
    #[argh(option)]
    log_level: Option<String>,
    /// log to syslog (OpenWrt's logread) instead of stderr
    #[argh(switch)]
    syslog: bool,
}

#[derive(FromArgs)]
/// Enrol this node with a token from the map-server's operator
/// (`lispguard-mapserver token create`), write its configuration and run
/// the agent: the key pair is made here (the private key never leaves the
/// node), the map-server gives the control address and EIDs, and pins
/// nothing but the WireGuard keys the token carries. A token of a group of
/// map-servers enrols with each (the same addresses from all; one that
/// does not answer is said, and `--force` later enrols there). One
/// command per node; the map-servers' configuration is not edited.
#[argh(subcommand, name = "join")]
struct Join {
    /// the token, lgt2.... as `token create` printed it
    #[argh(positional)]
    token: String,
    /// the configuration file to write: TOML if it ends in .toml (default
    /// /etc/lispguard/agent.toml; an existing one is kept unless --force),
    /// else UCI (OpenWrt: /etc/config/lispguard, filled in and enabled)
    #[argh(option, short = 'c', default = "PathBuf::from(DEFAULT_CONFIG)")]
    config: PathBuf,
    /// the private key file (default /etc/lispguard/agent.key), created
    /// 0600 if missing
    #[argh(option, default = "PathBuf::from(\"/etc/lispguard/agent.key\")")]
    key: PathBuf,
    /// a destination prefix resolved on demand (repeat it; default: the
    /// EIDs the token gives, e.g. its pool)
    #[argh(option)]
    overlay: Vec<String>,
    /// replace an existing configuration file
    #[argh(switch)]
    force: bool,
    /// write the configuration only (then start the agent as a service,
    /// e.g. systemctl enable --now lispguard)
    #[argh(switch)]
    no_start: bool,
}

#[derive(FromArgs)]
/// Show the running agent's map-servers, peers (EID prefixes, endpoint,
/// key, TTL, last handshake, bytes) and counters.
#[argh(subcommand, name = "status")]
struct StatusCommand {
    /// print JSON instead of a table
    #[argh(switch)]
    json: bool,
    /// the agent's status socket (default /run/lispguard.sock)
    #[argh(option, short = 's', default = "PathBuf::from(DEFAULT_SOCKET)")]
    socket: PathBuf,
}

#[derive(FromArgs)]
/// Ask the map-server, through the running agent, what this node would get
/// for EID (as the LISP tools' lig does): the WireGuard key, EID prefix,
/// TTL and locators (endpoint, priority/weight), or the negative answer
/// and its action. Installs nothing and pushes nothing to the EID's node.
#[argh(subcommand, name = "lookup")]
struct LookupCommand {
    /// the EID: one IPv4 or IPv6 address
    #[argh(positional)]
    eid: String,
    /// print JSON instead of a table
    #[argh(switch)]
    json: bool,
    /// the agent's status socket (default /run/lispguard.sock)
    #[argh(option, short = 's', default = "PathBuf::from(DEFAULT_SOCKET)")]
    socket: PathBuf,
}

#[derive(FromArgs)]
/// Check a configuration file (TOML, or UCI such as /etc/config/lispguard)
/// as `run` would, without touching the system: every option's type and
/// value (addresses, prefixes and their lengths, ports 1-65535, WireGuard
/// keys of 32 bytes in base64, interface names of at most 15 bytes with no
/// '/', ':', '%' or whitespace, durations up to 2^31-1 seconds), required
/// options not empty, at least one map_server and one eid, all EIDs in one
/// instance and none 0.0.0.0/0 or ::/0. Prints every error and warning
/// (unknown options, with a "did you mean") as FILE:LINE: OPTION: MESSAGE;
/// exits 1 if there is an error, 0 on warnings alone.
#[argh(subcommand, name = "check-config")]
struct CheckConfig {
    /// the configuration file
    #[argh(positional)]
    file: PathBuf,
}

#[derive(FromArgs)]
/// Print a new private key (base64), as `wg genkey` does.
#[argh(subcommand, name = "genkey")]
struct Genkey {}

#[derive(FromArgs)]
/// Read a private key on standard input and print its public key, as
/// `wg pubkey` does.
#[argh(subcommand, name = "pubkey")]
struct Pubkey {}

fn main() -> ExitCode {
    netconf::cli::main::<Cli>(|command| match command {
        Command::Run(run) => run_agent(&run),
        Command::Join(join) => join_and_run(join),
        Command::Status(s) => {
            let request = Request::Status { json: s.json };
            Ok(status::request(&s.socket, &request).map(|text| print!("{text}"))?)
        }
        Command::Lookup(l) => {
            let eid = lookup::parse_eid(&l.eid)?;
            let request = Request::Lookup(Query { eid, json: l.json });
            Ok(status::request(&l.socket, &request).map(|text| print!("{text}"))?)
        }
        Command::CheckConfig(check) => Ok(Config::load(&check.file)
            .map(|(_, warnings)| {
                for warning in &warnings {
                    println!("{warning}");
                }
                println!("{}: ok", check.file.display());
            })
            .map_err(|e| e.to_string())?),
        Command::Genkey(_) => {
            println!("{}", netconf::format_key(&netconf::generate_private_key()));
            Ok(())
        }
        Command::Pubkey(_) => {
            let mut text = String::new();
            Ok(std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| e.to_string())
                .and_then(|_| netconf::parse_key(&text))
                .map(|key| println!("{}", netconf::format_key(&netconf::public_key(&key))))?)
        }
    })
}

fn join_and_run(join: Join) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let token =
        netconf::token::Token::decode(&join.token).map_err(|e| format!("the token: {e}"))?;
    // TOML by its name; else UCI, which OpenWrt's package installs ready
    // to fill in.
    let toml = join.config.extension().is_some_and(|e| e == "toml");
    let existing = match std::fs::read_to_string(&join.config) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: {e}", join.config.display()).into()),
    };
    if toml && existing.is_some() && !join.force {
        return Err(format!(
            "{} exists: this node has a configuration (give --force to replace it, or -c another file)",
            join.config.display()
        )
        .into());
    }
    let overlay = join
        .overlay
        .iter()
        .map(|p| netconf::check::rules::parse_prefix(p).map_err(|e| format!("--overlay: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let private_key = netconf::load_or_create_private_key(&join.key)
        .map_err(|e| format!("{}: {e}", join.key.display()))?;
    let (joined, failed) = agent::join::enrol(&token, &private_key, lisp::address::WIREGUARD_PORT)?;
    let overlay = match overlay.is_empty() {
        true => joined.eids.iter().map(|e| e.prefix).collect(),
        false => overlay,
    };
    let settings = agent::join::Settings {
        token: &token,
        joined: &joined,
        private_key: &private_key,
        overlay: &overlay,
        private_key_file: &join.key,
    };
    let text = match toml {
        true => settings.toml(),
        false => settings
            .uci(existing.as_deref().unwrap_or_default(), join.force)
            .map_err(|e| format!("{}: {e}", join.config.display()))?,
    };
    // It holds the node's Map-Register keys.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&join.config)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    written.map_err(|e| format!("{}: {e}", join.config.display()))?;
    let eids: Vec<String> = joined.eids.iter().map(|e| e.to_string()).collect();
    let map_servers: Vec<String> = joined
        .map_servers
        .iter()
        .map(|m| m.endpoint.to_string())
        .collect();
    println!(
        "enrolled with the map-server at {}: control address {}, EIDs {}; configuration in {}",
        map_servers.join(" and "),
        joined.control_address,
        eids.join(", "),
        join.config.display()
    );
    for why in &failed {
        eprintln!(
            "warning: not enrolled there: {why}. This node works through the map-servers \
             that enrolled it; `lispguard join --force` with the same token and key enrols \
             it with the others (the same node asking again gets the same addresses)"
        );
    }
    if join.no_start {
        return Ok(());
    }
    run_agent(&Run {
        config: join.config,
        log_level: None,
        syslog: false,
    })
}

fn run_agent(run: &Run) -> Result<(), Failure> {
    let (config, warnings) = Config::load(&run.config).map_err(Failure::config)?;
    let level = run.log_level.as_deref().unwrap_or(&config.log_level);
    netconf::logger::init_with(level, run.syslog)?;
    for warning in &warnings {
        log::warn!("{warning}");
    }
    match daemon::run(&config, &run.config)? {
        daemon::Ended::Stopped => Ok(()),
        // In place: the same process (its PID, as systemd and procd know
        // it), this program, its arguments.
        daemon::Ended::Reload => {
            use std::os::unix::process::CommandExt;
            let program = std::env::current_exe().map_err(|e| e.to_string())?;
            let e = std::process::Command::new(program)
                .args(std::env::args_os().skip(1))
                .exec();
            Err(format!("starting again: {e}").into())
        }
    }
}
