//! The map-server's TOML configuration, and its check: every error names
//! the file, the line and the option.
//!
//! ```toml
//! control_address = "100.64.0.1"     # the map-server's own, in the tunnel
//!
//! [wireguard]
//! interface = "lgms0"
//! backend = "kernel"                 # or "userspace" (wireguard-go)
//! private_key_file = "/etc/lispguard/mapserver.key"
//! listen_port = 51820
//!
//! [lisp]
//! registration_ttl = 180             # seconds: 3 x the agents' register interval
//!
//! [[site]]
//! name = "campus-a"
//! key = "shared secret for Map-Register"
//! public_key = "base64 WireGuard public key"
//! control_address = "100.64.0.2"
//! eids = ["[1000] 10.1.0.0/16"]
//! ```

use lisp::EidPrefix;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The configuration file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    control_address: Spanned<IpAddr>,
    wireguard: WireGuard,
    #[serde(default)]
    lisp: Lisp,
    #[serde(default, rename = "site")]
    sites: Vec<SiteFile>,
    #[serde(default, rename = "static")]
    statics: Vec<StaticFile>,
}

/// How the map-server drives its WireGuard interface.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WireGuard {
    #[serde(default = "default_interface")]
    pub interface: String,
    #[serde(default)]
    pub backend: Backend,
    pub private_key_file: PathBuf,
    #[serde(default = "default_wireguard_port")]
    pub listen_port: u16,
}

pub use netconf::Backend;

/// The LISP side: where to listen and how long things live.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Lisp {
    /// Where Map-Registers and Map-Requests arrive; default the control
    /// address, port 4342.
    pub listen: Option<SocketAddr>,
    /// Seconds a registration lives without being refreshed.
    pub registration_ttl: u64,
    /// TTL of a negative Map-Reply, in minutes.
    pub negative_ttl: u32,
    /// Prometheus metrics over HTTP.
    pub metrics: SocketAddr,
    /// The unix socket `sites`, `lookup` and `revoke` talk to.
    pub control_socket: PathBuf,
    /// Receive threads; default one per core.
    pub threads: Option<usize>,
    /// Messages per second one site may send; 0 for no limit.
    pub rate_limit: u32,
    /// Where registrations, revocations and endpoints are kept across
    /// restarts (SQLite; its directory is created 0700 if missing).
    pub state_file: PathBuf,
}

impl Default for Lisp {
    fn default() -> Self {
        Lisp {
            listen: None,
            registration_ttl: 180,
            negative_ttl: 1,
            metrics: SocketAddr::from(([127, 0, 0, 1], 9090)),
            control_socket: PathBuf::from("/run/lispguard-mapserver.sock"),
            threads: None,
            rate_limit: 1000,
            state_file: PathBuf::from("/var/lib/lispguard/mapserver.db"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFile {
    name: Spanned<String>,
    key: Spanned<String>,
    public_key: Spanned<String>,
    control_address: Spanned<IpAddr>,
    eids: Vec<Spanned<String>>,
    #[serde(default)]
    accept_more_specifics: bool,
    may_resolve: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticFile {
    eid: Spanned<String>,
    public_key: Spanned<String>,
    rloc: SocketAddr,
    #[serde(default = "default_static_ttl")]
    ttl: u32,
}

fn default_interface() -> String {
    "lgms0".into()
}
fn default_wireguard_port() -> u16 {
    51820
}
fn default_static_ttl() -> u32 {
    60
}

/// A WireGuard public key.
pub type PublicKey = [u8; 32];

/// The checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub control_address: IpAddr,
    pub wireguard: WireGuard,
    pub lisp: Lisp,
    pub sites: Vec<Site>,
    pub statics: Vec<StaticMapping>,
}

/// A site: one agent (xTR or mobile node) and what it may register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub name: String,
    /// Shared key of its Map-Registers' HMAC.
    pub key: Vec<u8>,
    /// Its WireGuard public key: the map-server's peer, and the only key
    /// its registrations may carry.
    pub public_key: PublicKey,
    /// Its overlay address for control messages, inside the tunnel.
    pub control_address: IpAddr,
    /// EID-Prefixes it may register.
    pub eids: Vec<EidPrefix>,
    /// Whether it may register prefixes more specific than `eids`.
    pub accept_more_specifics: bool,
    /// Sites whose EIDs it may resolve; all in the same instance if None.
    pub may_resolve: Option<Vec<String>>,
}

/// A mapping served without registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticMapping {
    pub eid: EidPrefix,
    pub public_key: PublicKey,
    pub rloc: SocketAddr,
    /// Record TTL, minutes.
    pub ttl: u32,
}

impl Config {
    /// The LISP listen address (control address, port 4342 by default).
    pub fn listen(&self) -> SocketAddr {
        self.lisp
            .listen
            .unwrap_or(SocketAddr::new(self.control_address, lisp::CONTROL_PORT))
    }

    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![ConfigError::new(path, 0, "", &e.to_string())]))?;
        Config::parse(path, &text)
    }

    /// Parses `text`, read from `file`, reporting every error found.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let mut errors = Errors {
            file,
            text,
            list: Vec::new(),
        };
        let parsed: File = match toml::from_str(text) {
            Ok(parsed) => parsed,
            Err(e) => {
                let at = e.span().map(|s| s.start);
                let option = at.map_or("", |at| key_on_line(text, at));
                errors.add(at, option, e.message().trim_end());
                return Err(ConfigErrors(errors.list));
            }
        };
        let sites: Vec<Site> = parsed
            .sites
            .iter()
            .map(|s| check_site(s, &mut errors))
            .collect();
        check_site_names(&parsed.sites, &mut errors);
        let statics = parsed
            .statics
            .iter()
            .map(|s| StaticMapping {
                eid: errors.eid(&s.eid, "static eid"),
                public_key: errors.public_key(&s.public_key, "static public_key"),
                rloc: s.rloc,
                ttl: s.ttl,
            })
            .collect();
        if parsed.lisp.registration_ttl == 0 {
            errors.add(None, "lisp.registration_ttl", "must be at least 1 second");
        }
        if !errors.list.is_empty() {
            errors.list.sort_by_key(|e| e.line);
            return Err(ConfigErrors(errors.list));
        }
        Ok(Config {
            control_address: *parsed.control_address.get_ref(),
            wireguard: parsed.wireguard,
            lisp: parsed.lisp,
            sites,
            statics,
        })
    }
}

fn check_site(s: &SiteFile, errors: &mut Errors<'_>) -> Site {
    let name = s.name.get_ref();
    let option = |o: &str| format!("site '{name}' {o}");
    if s.key.get_ref().is_empty() {
        errors.add(s.key.span().start, &option("key"), "must not be empty");
    }
    let eids: Vec<EidPrefix> = s
        .eids
        .iter()
        .map(|e| errors.eid(e, &option("eids")))
        .collect();
    if s.eids.is_empty() {
        errors.add(
            s.name.span().start,
            &option("eids"),
            "a site needs at least one EID prefix",
        );
    }
    Site {
        name: name.clone(),
        key: s.key.get_ref().as_bytes().to_vec(),
        public_key: errors.public_key(&s.public_key, &option("public_key")),
        control_address: *s.control_address.get_ref(),
        eids,
        accept_more_specifics: s.accept_more_specifics,
        may_resolve: s
            .may_resolve
            .as_ref()
            .map(|names| names.iter().map(|n| n.get_ref().clone()).collect()),
    }
}

/// Names, control addresses and keys must each be unique; may_resolve must
/// name sites that exist.
fn check_site_names(sites: &[SiteFile], errors: &mut Errors<'_>) {
    for (i, s) in sites.iter().enumerate() {
        for earlier in &sites[..i] {
            let name = s.name.get_ref();
            if earlier.name.get_ref() == name {
                errors.add(
                    s.name.span().start,
                    "site name",
                    &format!("'{name}' is defined twice"),
                );
            }
            if earlier.control_address.get_ref() == s.control_address.get_ref() {
                errors.add(
                    s.control_address.span().start,
                    &format!("site '{name}' control_address"),
                    &format!(
                        "also the control address of site '{}'",
                        earlier.name.get_ref()
                    ),
                );
            }
            if earlier.public_key.get_ref() == s.public_key.get_ref() {
                errors.add(
                    s.public_key.span().start,
                    &format!("site '{name}' public_key"),
                    &format!("also the public key of site '{}'", earlier.name.get_ref()),
                );
            }
        }
        for other in s.may_resolve.iter().flatten() {
            if !sites.iter().any(|t| t.name.get_ref() == other.get_ref()) {
                errors.add(
                    other.span().start,
                    &format!("site '{}' may_resolve", s.name.get_ref()),
                    &format!("no site is named '{}'", other.get_ref()),
                );
            }
        }
    }
}

/// The key assigned on the line holding byte `at` (`key = value`), to name
/// the option of an error the TOML parser reports.
fn key_on_line(text: &str, at: usize) -> &str {
    let start = text[..at.min(text.len())].rfind('\n').map_or(0, |n| n + 1);
    let line = text[start..].lines().next().unwrap_or("");
    line.split_once('=').map_or("", |(key, _)| key.trim())
}

/// Collects errors, turning byte offsets into line numbers.
struct Errors<'a> {
    file: &'a Path,
    text: &'a str,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    /// An error at byte `at` of the file, or (None) at no single place.
    fn add(&mut self, at: impl Into<Option<usize>>, option: &str, message: &str) {
        let line = at.into().map_or(0, |at| {
            self.text[..at.min(self.text.len())].matches('\n').count() + 1
        });
        self.list
            .push(ConfigError::new(self.file, line, option, message));
    }

    fn eid(&mut self, value: &Spanned<String>, option: &str) -> EidPrefix {
        value
            .get_ref()
            .parse()
            .unwrap_or_else(|e: lisp::EidPrefixError| {
                self.add(value.span().start, option, &e.to_string());
                EidPrefix::new(0, ipnet::IpNet::default())
            })
    }

    fn public_key(&mut self, value: &Spanned<String>, option: &str) -> PublicKey {
        parse_key(value.get_ref()).unwrap_or_else(|message| {
            self.add(value.span().start, option, &message);
            [0; 32]
        })
    }
}

pub use netconf::{format_key, parse_key};

pub use netconf::check::{ConfigError, ConfigErrors};
