//! `lispguard-mapserver`: the command line.

use argh::FromArgs;
use mapserver::change::Change;
use mapserver::config::Config;
use mapserver::engine::MapServer;
use mapserver::enrolment::{Enrolment, Node};
use mapserver::metrics::Metrics;
use mapserver::outbox::{Outbox, OutboxExt};
use mapserver::relay::{Relay, RelayMetrics};
use mapserver::server::{Host, Observer, Server};
use mapserver::store::{Clock, Store};
use mapserver::tunnel::Tunnel;
use mapserver::{control, statics};
use netconf::cli::Failure;
use netconf::logger;
use netconf::PublicKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEFAULT_CONFIG: &str = "/etc/lispguard/mapserver.toml";
const DEFAULT_SOCKET: &str = "/run/lispguard-mapserver.sock";

netconf::command_line! {
    /// The lispguard map-server: sites register their EID prefixes and
    /// WireGuard keys with it over LISP inside WireGuard; it answers their
    /// Map-Requests and pushes each requester's key to the destination.
    struct Cli(Command);
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Run(Run),
    CheckConfig(CheckConfig),
    Sites(Sites),
    Lookup(Lookup),
    Revoke(Revoke),
    Rename(Rename),
    Token(TokenCommand),
}

#[derive(FromArgs)]
/// Run the map-server in the foreground (SIGHUP reloads the
/// configuration, SIGTERM stops it).
#[argh(subcommand, name = "run")]
struct Run {
    /// configuration file (default /etc/lispguard/mapserver.toml)
    #[argh(option, short = 'c', default = "PathBuf::from(DEFAULT_CONFIG)")]
    config: PathBuf,
    /// log level: error, warn, info (default), debug, trace
    #[argh(option, default = "String::from(\"info\")")]
    log_level: String,
    /// log to syslog instead of stderr
    #[argh(switch)]
    syslog: bool,
}

#[derive(FromArgs)]
/// Check a configuration file as `run` would, without touching the
/// system: every option's type and value (addresses, EID prefixes
/// "[IID] ADDRESS/LENGTH" and their lengths, ports 1-65535, WireGuard keys
/// of 32 bytes in base64, interface names of at most 15 bytes with no '/',
/// ':', '%' or whitespace, durations up to 2^31-1 seconds), required
/// options not empty, and the sites together: unique names, keys and
/// control addresses, none the map-server's own, no EID prefix claimed by
/// two sites or held by a site that accepts more specifics, none 0.0.0.0/0
/// or ::/0, may_resolve naming sites that exist. Prints every error and
/// warning (unknown options, with a "did you mean") as FILE:LINE: OPTION:
/// MESSAGE; exits 1 if there is an error, 0 on warnings alone.
#[argh(subcommand, name = "check-config")]
struct CheckConfig {
    /// the configuration file
    #[argh(positional)]
    file: PathBuf,
}

#[derive(FromArgs)]
/// List the configured sites: control address, key, where they are seen,
/// their registrations and ages.
#[argh(subcommand, name = "sites")]
struct Sites {
    /// control socket of the running map-server
    #[argh(option, short = 's', default = "PathBuf::from(DEFAULT_SOCKET)")]
    socket: PathBuf,
}

#[derive(FromArgs)]
/// Show what an EID resolves to, e.g. `lookup "[1000] 10.2.0.9/32"`.
#[argh(subcommand, name = "lookup")]
struct Lookup {
    /// the EID prefix, "[IID] ADDRESS/LEN" (IID 0 may be left out)
    #[argh(positional)]
    eid: String,
    /// control socket of the running map-server
    #[argh(option, short = 's', default = "PathBuf::from(DEFAULT_SOCKET)")]
    socket: PathBuf,
}

#[derive(FromArgs)]
/// Revoke a site: remove its registrations and WireGuard peer, tell the
/// sites that resolved them, refuse its messages (across restarts) until a
/// reload gives it a new key.
#[argh(subcommand, name = "revoke")]
struct Revoke {
    /// the site's name
    #[argh(positional)]
    site: String,
    /// control socket of the running map-server
    #[argh(option, short = 's', default = "PathBuf::from(DEFAULT_SOCKET)")]
    socket: PathBuf,
}

#[derive(FromArgs)]
/// Rename a node that enrolled with a token (it is named after its control
/// address, node-ADDRESS, when it enrols): registrations, endpoint and
/// revocation go with it. Configured sites are named in the configuration.
#[argh(subcommand, name = "rename")]
struct Rename {
    /// the node's name now
    #[argh(positional)]
    site: String,
    /// its new name
    #[argh(positional)]
    name: String,
    /// control socket of the running map-server
    #[argh(option, short = 's', default = "PathBuf::from(DEFAULT_SOCKET)")]
    socket: PathBuf,
}

#[derive(FromArgs)]
/// Enrolment tokens: a node given one (`lispguard join TOKEN`) enrols
/// with the map-server on its underlay listener, with no edit of the
/// configuration; it is a site from then on (`sites` lists it, `revoke`
/// removes it, `rename` names it). A token carries the map-server's underlay address
/// and port, its WireGuard public key and a secret; the map-server keeps
/// only a key derived from the secret.
#[argh(subcommand, name = "token")]
struct TokenCommand {
    #[argh(subcommand)]
    command: TokenSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum TokenSub {
    Create(TokenCreate),
    List(TokenList),
    Revoke(TokenRevoke),
}

#[derive(FromArgs)]
/// Create a token and print it (only the token, on stdout; what it allows
/// on stderr). It is shown this once: copy it to the nodes. Needs
/// [lisp] underlay_listen.
#[argh(
    subcommand,
    name = "create",
    example = "Twenty robots, one address each, within a day:\n\
               $ {command_name} --iid 1000 --pool 10.9.0.0/24 --uses 20 --group robots",
    example = "One access point with its LAN, within an hour:\n\
               $ {command_name} --iid 1000 --prefix 10.8.1.0/24 --expires 1h"
)]
struct TokenCreate {
    /// instance ID of the EIDs it gives
    #[argh(option)]
    iid: u32,
    /// give each node one address of this prefix (e.g. 10.9.0.0/24);
    /// it must not overlap a configured site's EIDs
    #[argh(option)]
    pool: Option<String>,
    /// give the one node it enrols this prefix (repeat for more); only
    /// with --uses 1
    #[argh(option)]
    prefix: Vec<String>,
    /// how many nodes it may enrol (default 1)
    #[argh(option, default = "1")]
    uses: u32,
    /// how long it enrols nodes: 90s, 30m, 24h (default), 7d, or never
    #[argh(option, default = "String::from(\"24h\")")]
    expires: String,
    /// the policy group its nodes join: a [[policy]] for it says what they
    /// may resolve (without one, their whole instance)
    #[argh(option)]
    group: Option<String>,
    /// the map-server's address as nodes reach it, when underlay_listen
    /// is a wildcard (0.0.0.0 or ::)
    #[argh(option)]
    address: Option<std::net::IpAddr>,
    /// control socket of the running map-server
    #[argh(option, short = 's', default = "PathBuf::from(DEFAULT_SOCKET)")]
    socket: PathBuf,
}

#[derive(FromArgs)]
/// List the tokens: id, instance, the EIDs they give, uses left, when they
/// expire, group and state (active, revoked, expired, used up). Never
/// their secrets: the map-server does not keep them.
#[argh(subcommand, name = "list")]
struct TokenList {
    /// control socket of the running map-server
    #[argh(option, short = 's', default = "PathBuf::from(DEFAULT_SOCKET)")]
    socket: PathBuf,
}

#[derive(FromArgs)]
/// Revoke a token: it enrols no node from now on (nodes it enrolled stay).
#[argh(subcommand, name = "revoke")]
struct TokenRevoke {
    /// the token's id, as `token list` shows it
    #[argh(positional)]
    id: String,
    /// control socket of the running map-server
    #[argh(option, short = 's', default = "PathBuf::from(DEFAULT_SOCKET)")]
    socket: PathBuf,
}

/// Runs a `token` command against the running map-server.
fn token(command: &TokenSub) -> Result<(), Failure> {
    match command {
        TokenSub::Create(c) => {
            let request = token_request(c)?;
            let reply =
                control::request(&c.socket, &format!("token create {}", request.to_line()))?;
            let (token, described) = reply.split_once('\n').unwrap_or((&reply, ""));
            println!("{token}");
            eprint!("{described}");
            Ok(())
        }
        TokenSub::List(l) => print(control::request(&l.socket, "token list")),
        TokenSub::Revoke(r) => {
            let id: mapserver::token::TokenId = r.id.parse()?;
            print(control::request(&r.socket, &format!("token revoke {id}")))
        }
    }
}

/// `token create`'s options as the control socket's request, checked here
/// first (a bad prefix is told without a running map-server).
fn token_request(c: &TokenCreate) -> Result<mapserver::issue::Request, String> {
    let mut line = format!("iid={} uses={}", c.iid, c.uses);
    let mut field = |name: &str, value: &str| {
        if value.is_empty() || value.contains(|ch: char| ch.is_whitespace() || ch == '=') {
            return Err(format!("--{name} '{value}': no spaces or '='"));
        }
        line.push_str(&format!(" {name}={value}"));
        Ok(())
    };
    if let Some(seconds) = mapserver::issue::parse_lifetime(&c.expires)? {
        field("expires", &seconds.to_string())?;
    }
    if let Some(group) = &c.group {
        field("group", group)?;
    }
    if let Some(address) = c.address {
        field("address", &address.to_string())?;
    }
    if let Some(pool) = &c.pool {
        field("pool", pool)?;
    }
    for prefix in &c.prefix {
        field("prefix", prefix)?;
    }
    mapserver::issue::Request::parse(&line)
}

fn main() -> ExitCode {
    netconf::cli::main::<Cli>(|command| match command {
        Command::Run(run) => self::run(&run),
        Command::CheckConfig(check) => match Config::load_with_warnings(&check.file)
            .and_then(|(config, warnings)| config.check_mappings().map(|_| warnings))
        {
            Ok(warnings) => {
                for warning in &warnings {
                    println!("{warning}");
                }
                println!("{}: ok", check.file.display());
                Ok(())
            }
            Err(errors) => Err(errors.to_string().into()),
        },
        Command::Sites(s) => print(control::request(&s.socket, "sites")),
        Command::Lookup(l) => print(control::request(&l.socket, &format!("lookup {}", l.eid))),
        Command::Revoke(r) => print(control::request(&r.socket, &format!("revoke {}", r.site))),
        Command::Rename(r) => print(control::request(
            &r.socket,
            &format!("rename {} {}", r.site, r.name),
        )),
        Command::Token(t) => token(&t.command),
    })
}

fn print(result: Result<String, String>) -> Result<(), Failure> {
    Ok(result.map(|text| print!("{text}"))?)
}

/// The tunnel, taken out (None) when the map-server stops and removes it.
type SharedTunnel = Arc<Mutex<Option<Tunnel>>>;

fn run(run: &Run) -> Result<(), Failure> {
    logger::init_with(&run.log_level, run.syslog)?;
    let config = Config::load(&run.config).map_err(Failure::config)?;
    let metrics = Arc::new(Metrics::default());
    let now = Instant::now();
    let nonces = fastrand::Rng::with_seed(netconf::random::seed().map_err(|e| e.to_string())?);
    let mut engine = MapServer::new(&config, metrics.clone(), now, nonces);
    let mut dropped = Outbox::default();
    if config.lisp.mappings_file.is_some() {
        let started = Instant::now();
        // One pass: a bad line stops the start, and then every one is
        // reported.
        let count = statics::apply(&mut engine, &config, now, &mut dropped)
            .map_err(|e| Failure::config(config.check_mappings().err().unwrap_or(e)))?;
        log::info!("{count} static mappings loaded in {:?}", started.elapsed());
    }
    // The configuration is whole: from here on files and interfaces are
    // created.
    let state_file = &config.lisp.state_file;
    let mut store = Store::open(state_file).map_err(|e| format!("state file: {e}"))?;
    let nodes = store.nodes().map_err(|e| format!("state file: {e}"))?;
    let mut with_nodes = config.clone();
    match &config.enrolment {
        Some(enrolment) => {
            let tokens = store.tokens().map_err(|e| format!("state file: {e}"))?;
            let private_key =
                netconf::load_or_create_private_key(&config.wireguard.private_key_file)
                    .map_err(|e| format!("WireGuard: {e}"))?;
            with_nodes.sites.extend(nodes.iter().map(Node::site));
            let enrolment = Enrolment::new(enrolment.clone(), private_key, tokens, nodes);
            let unix = Clock::now().unix(now);
            engine.set_enrolment(enrolment, &config, now, unix, &mut dropped);
        }
        None if !nodes.is_empty() => log::warn!(
            "{} enrolled nodes are not sites while [enrolment] is not configured",
            nodes.len()
        ),
        None => {}
    }
    let clock = Clock::now();
    let saved = store.load(&clock).map_err(|e| format!("state file: {e}"))?;
    let restored = engine.restore(saved, now, &mut dropped);
    store
        .apply(dropped.changes(), &clock)
        .map_err(|e| format!("state file: {e}"))?;
    let tunnel =
        Tunnel::up(&with_nodes, &engine.revoked_keys()).map_err(|e| format!("WireGuard: {e}"))?;
    let tokens = control::Tokens {
        store: Store::open(state_file).map_err(|e| format!("state file: {e}"))?,
        public_key: tunnel.public_key(),
    };
    // Restored sites: their peers get an endpoint and keepalive, so that
    // WireGuard handshakes with them now, not when they next send.
    let mut waking = HashMap::new();
    for site in engine.sites().into_iter().filter(|s| !s.revoked) {
        let Some(public_key) = site.public_key else {
            continue; // a plain LISP site: no tunnel
        };
        let registered = site.mappings.iter().find_map(|m| m.rlocs.first());
        let Some(endpoint) = site.observed.or(registered.map(|r| r.address)) else {
            continue;
        };
        match tunnel.wake(&public_key, endpoint) {
            Ok(()) => {
                waking.insert(site.name, public_key);
            }
            Err(e) => log::warn!("WireGuard peer of site '{}': {e}", site.name),
        }
    }
    log::info!(
        "restored {restored} registrations from {}; handshaking with {} sites",
        state_file.display(),
        waking.len()
    );
    let ifindex = tunnel.ifindex().map_err(|e| format!("WireGuard: {e}"))?;
    let tunnel: SharedTunnel = Arc::new(Mutex::new(Some(tunnel)));
    let (changes, batches) = mpsc::channel();
    let (flushed_tx, flushed) = mpsc::channel();
    let keeper_tunnel = tunnel.clone();
    let give_up = Instant::now() + Duration::from_secs(config.lisp.registration_ttl);
    std::thread::Builder::new()
        .name("store".into())
        .spawn(move || keep(store, batches, flushed_tx, keeper_tunnel, waking, give_up))
        .map_err(|e| format!("cannot start the store's thread: {e}"))?;
    let observe = tunnel.clone();
    let observer: Observer = Arc::new(move || {
        let tunnel = observe.lock().unwrap_or_else(|p| p.into_inner());
        let endpoints = tunnel
            .as_ref()
            .map(Tunnel::endpoints)
            .unwrap_or(Ok(Vec::new()));
        endpoints.unwrap_or_else(|e| {
            log::warn!("reading WireGuard peers: {e}");
            Vec::new()
        })
    });
    let relay_metrics = Arc::new(RelayMetrics::default());
    if let Some(relay) = &config.relay {
        let relay = Relay::start(relay.clone(), relay_metrics.clone())
            .map_err(|e| format!("cannot start the relay: {e}"))?;
        engine.set_relay(relay);
    }
    let threads = config
        .lisp
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let listen = config.listen();
    let server = Arc::new(
        Server::start(
            engine,
            listen,
            threads,
            Host {
                tunnel: Some(ifindex),
                observer: Some(observer),
                changes: Some(changes.clone()),
                underlay: config.lisp.underlay_listen,
            },
        )
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?,
    );
    let relayed = config.relay.is_some();
    netconf::http::serve(config.lisp.metrics, move || {
        let mut text = metrics.render();
        if relayed {
            relay_metrics.render(&mut text);
        }
        Ok(text)
    })
    .map_err(|e| format!("cannot serve metrics on {}: {e}", config.lisp.metrics))?;
    let socket = &config.lisp.control_socket;
    control::serve(socket, server.clone(), tokens)
        .map_err(|e| format!("cannot open the control socket {}: {e}", socket.display()))?;
    if let Some(underlay) = server.underlay_addr() {
        log::info!("plain LISP xTRs on {underlay} (underlay)");
    }
    if let Some(relay) = &config.relay {
        log::info!(
            "relay at {}, ports {}-{}",
            relay.address,
            relay.ports.start(),
            relay.ports.end()
        );
    }
    log::info!(
        "map-server on {listen} ({threads} threads), {} sites, metrics on http://{}/metrics",
        config.sites.len(),
        config.lisp.metrics
    );
    wait_for_signals(&run.config, &config, &server, &tunnel);
    let _ = std::fs::remove_file(socket);
    // Everything the engine changed is stored before the process ends.
    if changes.send(Vec::new()).is_ok() && flushed.recv_timeout(FLUSH_WAIT).is_err() {
        log::warn!("the state file may miss the last changes");
    }
    let tunnel = tunnel.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(Err(e)) = tunnel.map(Tunnel::down) {
        log::warn!("removing the WireGuard interface: {e}");
    }
    log::info!("stopped");
    Ok(())
}

/// Longest the map-server waits at exit for its state to be stored.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// Stores the engine's changes (each batch of what is queued in one
/// transaction) and carries out what they mean for the tunnel: a revoked
/// site's peer goes; a woken site's keepalive goes off once it registered,
/// or once a registration would have expired (the site is not coming).
/// An empty batch asks for `flushed` once all before it is stored.
fn keep(
    mut store: Store,
    batches: Receiver<Vec<Change>>,
    flushed: Sender<()>,
    tunnel: SharedTunnel,
    mut waking: HashMap<String, PublicKey>,
    give_up: Instant,
) {
    loop {
        let received = match waking.is_empty() {
            true => batches
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            false => batches.recv_timeout(give_up.saturating_duration_since(Instant::now())),
        };
        let mut batch = match received {
            Ok(batch) => batch,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let tunnel = tunnel.lock().unwrap_or_else(|p| p.into_inner());
                for (site, key) in waking.drain() {
                    log::info!("site '{site}' has not registered since the start");
                    if let Some(Err(e)) = tunnel.as_ref().map(|t| t.quiet(&key)) {
                        log::warn!("WireGuard: {e}");
                    }
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut flush = batch.is_empty();
        while let Ok(more) = batches.try_recv() {
            flush |= more.is_empty();
            batch.extend(more);
        }
        if !batch.is_empty() {
            if let Err(e) = store.apply(&batch, &Clock::now()) {
                log::error!("state file: {e}");
            }
        }
        let mut tunnel = tunnel.lock().unwrap_or_else(|p| p.into_inner());
        for change in &batch {
            let done = match (change, tunnel.as_mut()) {
                (Change::Revoked { key: Some(key), .. }, Some(tunnel)) => tunnel.revoke(key),
                (Change::Enrolled { node, .. }, Some(tunnel)) => {
                    tunnel.add_site(node.public_key, node.control_address)
                }
                (Change::Registered { site, .. }, Some(tunnel)) => match waking.remove(site) {
                    Some(key) => tunnel.quiet(&key),
                    None => Ok(()),
                },
                _ => Ok(()),
            };
            if let Err(e) = done {
                log::warn!("WireGuard: {e}");
            }
        }
        drop(tunnel);
        if flush {
            let _ = flushed.send(());
        }
    }
}

/// Reloads on SIGHUP; returns on SIGTERM or SIGINT.
fn wait_for_signals(
    path: &Path,
    started: &Config,
    server: &Server,
    tunnel: &Mutex<Option<Tunnel>>,
) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => return log::error!("cannot watch signals: {e}"),
    };
    for signal in signals.forever() {
        if signal != SIGHUP {
            return;
        }
        match Config::load(path).and_then(|c| c.check_mappings().map(|_| c)) {
            Ok(config) => {
                if config.relay != started.relay {
                    log::warn!("[relay] changed: it takes effect at the next start");
                }
                let (revoked, nodes) = server.with_engine(|engine, now, out| {
                    engine.reload(&config, now, out);
                    if config.lisp.mappings_file.is_some() {
                        if let Err(e) = statics::apply(engine, &config, now, out) {
                            log::error!("static mappings: {e}");
                        }
                    }
                    (engine.revoked_keys(), engine.enrolled_sites())
                });
                let mut with_nodes = config.clone();
                with_nodes.sites.extend(nodes);
                let mut tunnel = tunnel.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(Err(e)) = tunnel.as_mut().map(|t| t.sync(&with_nodes, &revoked)) {
                    log::error!("WireGuard peers not updated: {e}");
                }
                log::info!("configuration reloaded: {} sites", config.sites.len());
            }
            Err(errors) => log::error!("configuration not reloaded, it has errors:\n{errors}"),
        }
    }
}
