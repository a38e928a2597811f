//! The agent's configuration: one plain struct, filled from TOML here and
//! from UCI (`/etc/config/lispguard`) on OpenWrt. Field names are the UCI
//! option names.
//!
//! ```toml
//! control_address = "100.64.0.2"   # this node's address inside the tunnel
//! overlay = ["10.0.0.0/8"]         # destinations resolved on demand
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
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use netconf::Backend;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The WireGuard interface carrying control and data.
    #[serde(default = "default_interface")]
    pub interface: String,
    #[serde(default)]
    pub backend: Backend,
    #[serde(default = "default_wireguard_port")]
    pub listen_port: u16,
    /// Created, mode 0600, on first start if missing.
    #[serde(default = "default_private_key_file")]
    pub private_key_file: PathBuf,
    /// This node's overlay address for control messages.
    pub control_address: IpAddr,
    /// The TUN device the overlay prefixes are routed to.
    #[serde(default = "default_tun")]
    pub tun: String,
    /// Destinations resolved on demand: routed to the TUN until a peer
    /// for them exists.
    #[serde(default)]
    pub overlay: Vec<IpNet>,
    /// Seconds between Map-Registers.
    #[serde(default = "default_register_interval")]
    pub register_interval: u64,
    /// Minutes others may cache this node's mapping: an idle peer goes
    /// from their WireGuard after that long.
    #[serde(default = "default_record_ttl")]
    pub record_ttl: u32,
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// The unix socket `lispguard status` reads.
    #[serde(default = "default_status_socket")]
    pub status_socket: PathBuf,
    #[serde(rename = "map_server", default)]
    pub map_servers: Vec<MapServer>,
    #[serde(rename = "eid", default)]
    pub eids: Vec<Eid>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MapServer {
    /// Host name or address of its WireGuard endpoint.
    pub address: String,
    #[serde(default = "default_wireguard_port")]
    pub port: u16,
    pub public_key: String,
    pub control_address: IpAddr,
    /// This site's shared key for Map-Register authentication.
    pub key: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Eid {
    pub prefix: IpNet,
    #[serde(default)]
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

impl Eid {
    pub fn eid_prefix(&self) -> EidPrefix {
        EidPrefix::new(self.iid, self.prefix)
    }
}

impl Config {
    /// The instance ID this node lives in (all its EIDs share one).
    pub fn iid(&self) -> u32 {
        self.eids.first().map_or(0, |e| e.iid)
    }

    /// Loads a configuration file: TOML when its name ends in `.toml`, UCI
    /// otherwise (`/etc/config/lispguard`). Returns the warnings too.
    pub fn load(path: &Path) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![ConfigError::new(path, 0, "", &e.to_string())]))?;
        if path.extension().is_some_and(|e| e == "toml") {
            Config::parse_toml(path, &text).map(|c| (c, Vec::new()))
        } else {
            Config::parse_uci(path, &text)
        }
    }

    pub fn parse_toml(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            let line = text[..at.min(text.len())].matches('\n').count() + 1;
            let start = text[..at.min(text.len())].rfind('\n').map_or(0, |n| n + 1);
            let option = text[start..]
                .lines()
                .next()
                .and_then(|l| l.split_once('='))
                .map_or("", |(key, _)| key.trim());
            ConfigErrors(vec![ConfigError::new(
                path,
                line,
                option,
                e.message().trim_end(),
            )])
        })?;
        config.check(path, |place| toml_line(text, place))?;
        Ok(config)
    }

    /// Checks what the parser cannot, reporting every error; `locate`
    /// gives the line of an option in the front end's file.
    pub fn check(
        &self,
        path: &Path,
        locate: impl Fn(Place<'_>) -> usize,
    ) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let mut error =
            |section: &'static str, index: usize, option: &'static str, message: String| {
                let line = locate(Place {
                    section,
                    index,
                    option,
                });
                let name = match section {
                    "agent" => option.to_string(),
                    _ => format!("{section}[{index}].{option}"),
                };
                errors.push(ConfigError::new(path, line, &name, &message));
            };
        if self.map_servers.is_empty() {
            error(
                "agent",
                0,
                "map_server",
                "at least one map_server is needed".into(),
            );
        }
        for (n, ms) in self.map_servers.iter().enumerate() {
            if let Err(e) = netconf::parse_key(&ms.public_key) {
                error("map_server", n, "public_key", e);
            }
            if ms.key.is_empty() {
                error(
                    "map_server",
                    n,
                    "key",
                    "the map-server key must not be empty".into(),
                );
            }
        }
        if self.eids.is_empty() {
            error(
                "agent",
                0,
                "eid",
                "at least one eid (prefix) is needed".into(),
            );
        }
        for (n, eid) in self.eids.iter().enumerate() {
            if eid.prefix.trunc() != eid.prefix {
                error("eid", n, "prefix", format!("{}: host bits set", eid.prefix));
            }
            if eid.iid != self.iid() {
                let message = format!(
                    "all EIDs of a node are in one instance: {} here, {} before",
                    eid.iid,
                    self.iid()
                );
                error("eid", n, "iid", message);
            }
        }
        if self.overlay.is_empty() {
            error(
                "agent",
                0,
                "overlay",
                "no overlay prefixes: nothing would be resolved".into(),
            );
        }
        if self.record_ttl == 0 {
            error("agent", 0, "record_ttl", "must be at least 1 minute".into());
        }
        if self.register_interval == 0 {
            error(
                "agent",
                0,
                "register_interval",
                "must be at least 1 second".into(),
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// Where an option lives: in the agent's own settings, or in the
/// `index`-th section of a kind (`map_server`, `eid`).
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    pub section: &'a str,
    pub index: usize,
    pub option: &'a str,
}

/// The line of `place` in a TOML file: the option's line, else its
/// section's header; 0 when neither is there.
fn toml_line(text: &str, place: Place<'_>) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let header = format!("[[{}]]", place.section);
    let (start, end) = if place.section == "agent" {
        let end = lines.iter().position(|l| l.trim_start().starts_with('['));
        (0, end.unwrap_or(lines.len()))
    } else {
        let Some(start) = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim() == header)
            .nth(place.index)
            .map(|(n, _)| n)
        else {
            return 0;
        };
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.trim_start().starts_with('['))
            .map_or(lines.len(), |n| start + 1 + n);
        (start, end)
    };
    let sets = |l: &&str| {
        l.trim_start()
            .strip_prefix(place.option)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    match lines[start..end].iter().position(sets) {
        Some(n) => start + n + 1,
        None if place.section == "agent" => 0,
        None => start + 1,
    }
}

pub use netconf::check::{ConfigError, ConfigErrors};
