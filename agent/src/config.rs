//! The agent's configuration: one plain struct, filled from TOML here and
//! from UCI (`/etc/config/lispguard`, see `uci_config.rs`) on OpenWrt.
//! Both front ends become a [`Document`] and go through the one
//! field-by-field conversion below, so an option means, and is checked,
//! the same in both; every error is reported, each with its line.
//!
//! ```toml
//! control_address = "100.64.0.2"   # this node's address inside the tunnel
//! overlay = ["10.0.0.0/8"]         # destinations resolved on demand
//! metrics = "127.0.0.1:9101"       # Prometheus metrics; off when unset
//!
//! [[map_server]]
//! address = "192.0.2.1"            # its WireGuard endpoint
//! public_key = "base64 WireGuard public key"
//! control_address = "100.64.0.1"
//! key = "this site's Map-Register key"
//!
//! [[eid]]
//! prefix = "10.1.0.0/24"           # xTR: the LAN behind it; robot: a /32
//! iid = 1000
//! ```

use ipnet::IpNet;
use lisp::EidPrefix;
use netconf::check::options::{integer, nonempty, text};
use netconf::check::{rules, Document, Report, Section};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

pub use netconf::check::{ConfigError, ConfigErrors};
pub use netconf::Backend;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The WireGuard interface carrying control and data.
    pub interface: String,
    pub backend: Backend,
    pub listen_port: u16,
    /// Created, mode 0600, on first start if missing.
    pub private_key_file: PathBuf,
    /// This node's overlay address for control messages.
    pub control_address: IpAddr,
    /// The TUN device the overlay prefixes are routed to.
    pub tun: String,
    /// Destinations resolved on demand: routed to the TUN until a peer
    /// for them exists.
    pub overlay: Vec<IpNet>,
    /// Seconds between Map-Registers.
    pub register_interval: u64,
    /// Minutes others may cache this node's mapping: an idle peer goes
    /// from their WireGuard after that long.
    pub record_ttl: u32,
    pub log_level: String,
    /// The unix socket `lispguard status` reads.
    pub status_socket: PathBuf,
    /// Where Prometheus metrics are served (`GET /metrics`); off when
    /// unset.
    pub metrics: Option<SocketAddr>,
    pub map_servers: Vec<MapServer>,
    pub eids: Vec<Eid>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapServer {
    /// Host name or address of its WireGuard endpoint.
    pub address: String,
    pub port: u16,
    /// Checked: a base64 WireGuard key.
    pub public_key: String,
    pub control_address: IpAddr,
    /// This site's shared key for Map-Register authentication.
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eid {
    pub prefix: IpNet,
    pub iid: u32,
}

pub(crate) fn default_interface() -> String {
    "lg0".into()
}
pub(crate) fn default_wireguard_port() -> u16 {
    lisp::address::WIREGUARD_PORT
}
pub(crate) fn default_private_key_file() -> PathBuf {
    "/etc/lispguard/agent.key".into()
}
pub(crate) fn default_tun() -> String {
    "lgtun0".into()
}
pub(crate) fn default_register_interval() -> u64 {
    60
}
pub(crate) fn default_record_ttl() -> u32 {
    crate::engine::RECORD_TTL
}
pub(crate) fn default_log_level() -> String {
    "info".into()
}
pub(crate) fn default_status_socket() -> PathBuf {
    "/run/lispguard.sock".into()
}

const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

impl Eid {
    pub fn eid_prefix(&self) -> EidPrefix {
        EidPrefix::new(self.iid, self.prefix)
    }
}

/// Which front end a [`Document`] came from: the agent's own options are
/// the top level of a TOML file, a `config agent` section in UCI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Syntax {
    #[cfg(feature = "toml")]
    Toml,
    Uci,
}

impl Config {
    /// The instance ID this node lives in (all its EIDs share one).
    pub fn iid(&self) -> u32 {
        self.eids.first().map_or(0, |e| e.iid)
    }

    /// Loads a configuration file: TOML when its name ends in `.toml`, UCI
    /// otherwise (`/etc/config/lispguard`). Returns the warnings too; on
    /// an error, every error and warning found. A build without the `toml`
    /// feature refuses a `.toml` file rather than misread it as UCI.
    pub fn load(path: &Path) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let toml = path.extension().is_some_and(|e| e == "toml");
        if toml && !cfg!(feature = "toml") {
            let message = "this lispguard reads UCI files only (built without TOML)";
            return Err(ConfigErrors::one(path, message));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigErrors::one(path, &e.to_string()))?;
        #[cfg(feature = "toml")]
        if toml {
            return Config::parse_toml(path, &text);
        }
        Config::parse_uci(path, &text)
    }

    /// Parses a TOML file; returns the configuration and its warnings.
    #[cfg(feature = "toml")]
    pub fn parse_toml(path: &Path, text: &str) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let doc = Document::from_toml(path, text)?;
        Config::from_document(path, &doc, Syntax::Toml)
    }

    /// Converts and checks every option of every section.
    pub(crate) fn from_document(
        path: &Path,
        doc: &Document,
        syntax: Syntax,
    ) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let mut report = Report::new(path);
        let (kind, label) = match syntax {
            #[cfg(feature = "toml")]
            Syntax::Toml => ("", ""),
            Syntax::Uci => ("agent", "agent."),
        };
        report.unknown_sections(doc, &[kind, "map_server", "eid"]);
        let agents: Vec<&Section> = doc.sections_of(kind).collect();
        let none = Section::default();
        let agent = match agents.as_slice() {
            [] => {
                report.error(0, "agent", "no 'config agent' section");
                &none
            }
            [first, more @ ..] => {
                for second in more {
                    report.error(second.line, "agent", "more than one 'config agent' section");
                }
                *first
            }
        };
        let own = read_agent(&mut report, agent, label);
        let map_servers = read_map_servers(&mut report, doc, own.control_address);
        let eids = read_eids(&mut report, doc);
        let config = own.build(map_servers, eids);
        report.finish(config)
    }
}

/// The agent's own options as read; None where missing or wrong.
struct Own {
    interface: String,
    backend: Backend,
    listen_port: u16,
    private_key_file: PathBuf,
    control_address: Option<IpAddr>,
    tun: String,
    overlay: Option<Vec<IpNet>>,
    register_interval: u64,
    record_ttl: u32,
    log_level: String,
    status_socket: PathBuf,
    metrics: Option<SocketAddr>,
}

impl Own {
    fn build(self, map_servers: Option<Vec<MapServer>>, eids: Option<Vec<Eid>>) -> Option<Config> {
        Some(Config {
            interface: self.interface,
            backend: self.backend,
            listen_port: self.listen_port,
            private_key_file: self.private_key_file,
            control_address: self.control_address?,
            tun: self.tun,
            overlay: self.overlay?,
            register_interval: self.register_interval,
            record_ttl: self.record_ttl,
            log_level: self.log_level,
            status_socket: self.status_socket,
            metrics: self.metrics,
            map_servers: map_servers?,
            eids: eids?,
        })
    }
}

fn read_agent(report: &mut Report, agent: &Section, label: &str) -> Own {
    let mut o = report.options(agent, label);
    // Read by the init script, not by the agent (`token`: it enrols with
    // it, `lispguard join`, when no map-server is configured yet).
    o.known(&["enabled", "token"]);
    let interface = o
        .get("interface", rules::interface_name)
        .unwrap_or_else(default_interface);
    let tun = o
        .get("tun", rules::interface_name)
        .unwrap_or_else(default_tun);
    if tun == interface {
        o.error_on("tun", &format!("'{tun}' is also the WireGuard interface"));
    }
    let backend = o.get("backend", rules::backend).unwrap_or_default();
    let listen_port = o
        .get("listen_port", rules::port)
        .unwrap_or_else(default_wireguard_port);
    let private_key_file = private_key_file(&mut o);
    let control_address = o.required(
        "control_address",
        "this node's IP address inside the tunnel",
        rules::ip_address,
    );
    let overlay = if o.is_set("overlay") {
        o.list("overlay", rules::prefix)
    } else {
        Some(Vec::new())
    };
    let overlay = match overlay {
        Some(list) if list.is_empty() => {
            o.error_on("overlay", "no overlay prefixes: nothing would be resolved");
            None
        }
        overlay => overlay,
    };
    let register_interval = o
        .get("register_interval", rules::seconds)
        .unwrap_or_else(default_register_interval);
    let record_ttl = o
        .get("record_ttl", rules::minutes)
        .unwrap_or_else(default_record_ttl);
    let log_level = o
        .get("log_level", |v| {
            let level = text(v)?;
            LOG_LEVELS
                .contains(&level)
                .then(|| level.to_string())
                .ok_or_else(|| format!("'{level}' is not a log level ({})", LOG_LEVELS.join(", ")))
        })
        .unwrap_or_else(default_log_level);
    let status_socket = o
        .get("status_socket", nonempty)
        .map_or_else(default_status_socket, PathBuf::from);
    let metrics = o.get("metrics", rules::socket_address);
    if metrics.is_some_and(|m| !m.ip().is_loopback()) {
        // Allowed, since it was written out; said, since the metrics
        // (peers, map-servers) are served to whoever reaches the address.
        o.warning_on(
            "metrics",
            "not a loopback address: anyone who reaches it reads the metrics (no authentication)",
        );
    }
    o.finish();
    Own {
        interface,
        backend,
        listen_port,
        private_key_file,
        control_address,
        tun,
        overlay,
        register_interval,
        record_ttl,
        log_level,
        status_socket,
        metrics,
    }
}

/// `private_key 'generate'` (UCI's way to say "the default file") or
/// `private_key_file`, not both; a key itself never sits in the
/// configuration, which is world-readable on OpenWrt.
fn private_key_file(o: &mut netconf::check::Options<'_>) -> PathBuf {
    o.get("private_key", |v| match text(v)? {
        "generate" => Ok(()),
        other => Err(format!(
            "'{other}': only 'generate' is understood here; keep a key in a file (mode 0600) and set private_key_file"
        )),
    });
    let file = o.get("private_key_file", nonempty);
    if o.is_set("private_key") && o.is_set("private_key_file") {
        o.error_on(
            "private_key",
            "set private_key 'generate' or private_key_file, not both",
        );
    }
    file.map_or_else(default_private_key_file, PathBuf::from)
}

fn read_map_servers(
    report: &mut Report,
    doc: &Document,
    own_address: Option<IpAddr>,
) -> Option<Vec<MapServer>> {
    let mut map_servers = Some(Vec::new());
    let mut count = 0;
    for section in doc.sections_of("map_server") {
        count += 1;
        let mut o = report.options(section, &format!("map_server[{}].", section.index));
        let address = o.required("address", "a host name or address", nonempty);
        let port = o
            .get("port", rules::port)
            .unwrap_or_else(default_wireguard_port);
        let public_key = o.required("public_key", "its WireGuard public key", |v| {
            rules::key(v)?;
            Ok(text(v)?.trim().to_string())
        });
        let control_address = o.required(
            "control_address",
            "its IP address inside the tunnel",
            rules::ip_address,
        );
        if control_address.is_some() && control_address == own_address {
            o.error_on("control_address", "also this node's own control_address");
        }
        let key = o.required("key", "this site's Map-Register key", nonempty);
        o.finish();
        let ms = (|| {
            Some(MapServer {
                address: address?,
                port,
                public_key: public_key?,
                control_address: control_address?,
                key: key?,
            })
        })();
        match (ms, map_servers.as_mut()) {
            (Some(ms), Some(list)) => list.push(ms),
            _ => map_servers = None,
        }
    }
    if count == 0 {
        report.error(0, "map_server", "at least one map_server is needed");
        return None;
    }
    map_servers
}

fn read_eids(report: &mut Report, doc: &Document) -> Option<Vec<Eid>> {
    let mut eids = Some(Vec::new());
    let mut first_iid = None;
    let mut count = 0;
    for section in doc.sections_of("eid") {
        count += 1;
        let mut o = report.options(section, &format!("eid[{}].", section.index));
        let prefix = o.required("prefix", "an EID prefix (ADDRESS/LENGTH)", |v| {
            rules::prefix(v).and_then(rules::not_default)
        });
        let iid: Option<u32> = match o.get("iid", integer("an instance ID (0 to 4294967295)")) {
            None if o.is_set("iid") => None,
            iid => Some(iid.unwrap_or(0)),
        };
        if let (Some(iid), Some(first)) = (iid, first_iid) {
            if iid != first {
                let message =
                    format!("all EIDs of a node are in one instance: {iid} here, {first} before");
                o.error_on("iid", &message);
            }
        }
        first_iid = first_iid.or(iid);
        o.finish();
        match (prefix, iid, eids.as_mut()) {
            (Some(prefix), Some(iid), Some(list)) => list.push(Eid { prefix, iid }),
            _ => eids = None,
        }
    }
    if count == 0 {
        report.error(0, "eid", "at least one eid (prefix) is needed");
        return None;
    }
    eids
}
