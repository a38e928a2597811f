//! The map-server's TOML configuration, and its check: the file is read
//! as a [`Document`] and converted option by option, so that every error
//! of every option in every table is reported, each with the file, the
//! line and the option; semantic checks (sites that collide with each
//! other or with the map-server) follow.
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
//!
//! [relay]                            # optional: for nodes with no direct path
//! address = "192.0.2.1"              # where nodes reach this box on the underlay
//! ports = "40000-40999"              # UDP ports, two per relayed pair
//! idle = 90                          # seconds before an idle pair is freed
//!
//! [[site]]                           # a standard LISP xTR on the underlay
//! name = "branch-lisp"
//! kind = "lisp"                      # needs [lisp] underlay_listen
//! key = "shared secret for Map-Register"
//! eids = ["[1000] 10.9.0.0/16"]
//! ```

use crate::enrolment::{EnrolmentConfig, Policy};
use crate::issue::check_group;
use crate::relay::RelayConfig;
use crate::token::MapServer;
use lisp::EidPrefix;
use netconf::check::options::{self, boolean, integer, nonempty};
use netconf::check::{rules, Document, Report, Section, Value};
use netconf::PublicKey;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

pub use netconf::Backend;

/// How the map-server drives its WireGuard interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireGuard {
    pub interface: String,
    pub backend: Backend,
    pub private_key_file: PathBuf,
    pub listen_port: u16,
}

/// The LISP side: where to listen and how long things live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lisp {
    /// Where Map-Registers and Map-Requests arrive; default the control
    /// address, port 4342.
    pub listen: Option<SocketAddr>,
    /// Where plain LISP xTRs (sites of kind "lisp") send Map-Registers and
    /// ECM Map-Requests, on the underlay; none: no such listener.
    pub underlay_listen: Option<SocketAddr>,
    /// Seconds a registration lives without being refreshed.
    pub registration_ttl: u64,
    /// TTL of a negative Map-Reply, in minutes.
    pub negative_ttl: u32,
    /// Prometheus metrics over HTTP.
    pub metrics: SocketAddr,
    /// The unix socket `sites`, `lookup`, `revoke` and `token` talk to.
    pub control_socket: PathBuf,
    /// Receive threads; default one per core.
    pub threads: Option<usize>,
    /// Messages per second one site may send; 0 for no limit.
    pub rate_limit: u32,
    /// Where registrations, revocations and endpoints are kept across
    /// restarts (SQLite; its directory is created 0700 if missing).
    pub state_file: PathBuf,
    /// Static mappings in bulk, one per line (see [`crate::statics`]);
    /// relative to the configuration file's directory.
    pub mappings_file: Option<PathBuf>,
}

impl Default for Lisp {
    fn default() -> Self {
        Lisp {
            listen: None,
            underlay_listen: None,
            registration_ttl: 180,
            negative_ttl: 1,
            metrics: SocketAddr::from(([127, 0, 0, 1], 9090)),
            control_socket: PathBuf::from("/run/lispguard-mapserver.sock"),
            threads: None,
            rate_limit: 1000,
            state_file: PathBuf::from("/var/lib/lispguard/mapserver.db"),
            mappings_file: None,
        }
    }
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

/// The checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub control_address: IpAddr,
    pub wireguard: WireGuard,
    pub lisp: Lisp,
    /// None: no relay; nodes reach each other directly or not at all.
    pub relay: Option<RelayConfig>,
    /// None: no enrolment; every site is configured.
    pub enrolment: Option<EnrolmentConfig>,
    pub sites: Vec<Site>,
    pub statics: Vec<StaticMapping>,
}

/// A site: one agent (xTR or mobile node), or a standard LISP xTR, and
/// what it may register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub name: String,
    /// Shared key of its Map-Registers' HMAC.
    pub key: Vec<u8>,
    /// How a lispguard agent reaches the map-server; None for a plain
    /// LISP xTR (`kind = "lisp"`), which registers on the underlay and
    /// whose registrations carry no WireGuard key.
    pub wireguard: Option<Peer>,
    /// EID-Prefixes it may register.
    pub eids: Vec<EidPrefix>,
    /// Whether it may register prefixes more specific than `eids`.
    pub accept_more_specifics: bool,
    /// Sites whose EIDs it may resolve; if None, all sites of its own
    /// kind (WireGuard or plain LISP) in the same instance. A site of the
    /// other kind only when named here. `group:NAME` names the enrolled
    /// nodes of a policy group.
    pub may_resolve: Option<Vec<String>>,
    /// An enrolled node's policy group (its token's); None for a
    /// configured site.
    pub group: Option<String>,
}

/// A lispguard site's side of the tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its WireGuard public key: the map-server's peer, and the only key
    /// its registrations may carry.
    pub public_key: PublicKey,
    /// Its overlay address for control messages, inside the tunnel.
    pub control_address: IpAddr,
}

impl Site {
    pub fn public_key(&self) -> Option<PublicKey> {
        self.wireguard.map(|w| w.public_key)
    }

    pub fn control_address(&self) -> Option<IpAddr> {
        self.wireguard.map(|w| w.control_address)
    }
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

    /// Loads and checks a file; warnings go to the log.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let (config, warnings) = Config::load_with_warnings(path)?;
        for warning in &warnings {
            log::warn!("{warning}");
        }
        Ok(config)
    }

    /// Loads and checks a file: the configuration and its warnings, or
    /// every error and warning found.
    pub fn load_with_warnings(path: &Path) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigErrors::one(path, &e.to_string()))?;
        let (mut config, warnings) = Config::parse_with_warnings(path, &text)?;
        if let Some(file) = &mut config.lisp.mappings_file {
            if file.is_relative() {
                *file = path.parent().unwrap_or(Path::new("")).join(&*file);
            }
        }
        Ok((config, warnings))
    }

    /// Checks the mappings file whole, if there is one (every bad line):
    /// `check-config` and a reload do, before anything changes; a start
    /// reads it once, as it loads it.
    pub fn check_mappings(&self) -> Result<usize, ConfigErrors> {
        self.lisp
            .mappings_file
            .as_deref()
            .map_or(Ok(0), crate::statics::check)
    }

    /// Parses `text`, read from `file`, reporting every error found.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
        Config::parse_with_warnings(file, text).map(|(config, _)| config)
    }

    /// Parses `text`, read from `file`: the configuration and its
    /// warnings, or every error and warning found.
    pub fn parse_with_warnings(
        file: &Path,
        text: &str,
    ) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let doc = Document::from_toml(file, text)?;
        let mut report = Report::new(file);
        report.unknown_sections(
            &doc,
            &[
                "wireguard",
                "lisp",
                "relay",
                "enrolment",
                "site",
                "static",
                "policy",
            ],
        );
        let none = Section::default();
        let top = doc.sections_of("").next().unwrap_or(&none);
        let mut o = report.options(top, "");
        let control_address = o.required(
            "control_address",
            "the map-server's IP address inside the tunnel",
            rules::ip_address,
        );
        o.finish();
        let wireguard = match single(&mut report, &doc, "wireguard") {
            Some(section) => read_wireguard(&mut report, section),
            None => {
                report.error(
                    0,
                    "wireguard",
                    "missing: a [wireguard] table with private_key_file",
                );
                None
            }
        };
        let lisp = match single(&mut report, &doc, "lisp") {
            Some(section) => read_lisp(&mut report, section),
            None => Some(Lisp::default()),
        };
        let relay = match single(&mut report, &doc, "relay") {
            Some(section) => read_relay(&mut report, section, wireguard.as_ref()).map(Some),
            None => Some(None),
        };
        let enrolment = match single(&mut report, &doc, "enrolment") {
            Some(section) => {
                if lisp.as_ref().is_some_and(|l| l.underlay_listen.is_none()) {
                    let message =
                        "nodes enrol on the underlay, but [lisp] underlay_listen is not set";
                    report.warning(section.line, "enrolment", message);
                }
                read_enrolment(&mut report, section).map(Some)
            }
            None => Some(None),
        };
        let sites = read_sites(&mut report, &doc, control_address);
        if lisp.as_ref().is_some_and(|l| l.underlay_listen.is_none()) {
            for site in doc.sections_of("site") {
                if matches!(site.entry("kind").map(|e| &e.value), Some(Value::String(k)) if k == "lisp")
                {
                    let line = site.entry("kind").map_or(site.line, |e| e.line);
                    let message = "a plain LISP site, but [lisp] underlay_listen is not set: it cannot reach the map-server";
                    report.warning(line, &format!("site[{}] kind", site.index), message);
                }
            }
        }
        let statics = read_statics(&mut report, &doc);
        let site_names: Vec<&str> = sites.iter().flatten().map(|s| s.name.as_str()).collect();
        let policies = read_policies(&mut report, &doc, &site_names);
        let enrolment = match (enrolment, policies) {
            (Some(Some(mut enrolment)), Some(policies)) => {
                enrolment.policies = policies;
                Some(Some(enrolment))
            }
            (Some(None), Some(policies)) if !policies.is_empty() => {
                let line = doc.sections_of("policy").next().map_or(0, |s| s.line);
                let message = "a policy is for enrolled nodes: it needs [enrolment]";
                report.error(line, "policy", message);
                None
            }
            (enrolment, policies) => enrolment.filter(|_| policies.is_some()),
        };
        let config = (|| {
            Some(Config {
                control_address: control_address?,
                wireguard: wireguard?,
                lisp: lisp?,
                relay: relay?,
                enrolment: enrolment?,
                sites: sites?,
                statics: statics?,
            })
        })();
        report.finish(config)
    }
}

/// The one `[kind]` table; `[[kind]]` (several) is an error.
fn single<'d>(report: &mut Report, doc: &'d Document, kind: &'d str) -> Option<&'d Section> {
    let section = doc.sections_of(kind).next()?;
    if section.repeated {
        let message = format!("one [{kind}] table, not [[{kind}]]");
        report.error(section.line, kind, &message);
    }
    Some(section)
}

/// An address and port to listen on; port 0 would be a random port no
/// one knows.
fn read_wireguard(report: &mut Report, section: &Section) -> Option<WireGuard> {
    let mut o = report.options(section, "wireguard.");
    let interface = o
        .get("interface", rules::interface_name)
        .unwrap_or_else(default_interface);
    let backend = o.get("backend", rules::backend).unwrap_or_default();
    let private_key_file = o.required("private_key_file", "the path of its private key", nonempty);
    let listen_port = o
        .get("listen_port", rules::port)
        .unwrap_or_else(default_wireguard_port);
    let ok = !o.had_errors();
    o.finish();
    Some(WireGuard {
        interface,
        backend,
        private_key_file: private_key_file?.into(),
        listen_port,
    })
    .filter(|_| ok)
}

fn read_lisp(report: &mut Report, section: &Section) -> Option<Lisp> {
    let defaults = Lisp::default();
    let mut o = report.options(section, "lisp.");
    let lisp = Lisp {
        listen: o.get("listen", rules::socket_address),
        underlay_listen: o.get("underlay_listen", rules::socket_address),
        registration_ttl: o
            .get("registration_ttl", rules::seconds)
            .unwrap_or(defaults.registration_ttl),
        negative_ttl: o
            .get("negative_ttl", rules::minutes)
            .unwrap_or(defaults.negative_ttl),
        metrics: o
            .get("metrics", rules::socket_address)
            .unwrap_or(defaults.metrics),
        control_socket: o
            .get("control_socket", nonempty)
            .map_or(defaults.control_socket, PathBuf::from),
        threads: o.get("threads", |v| {
            match integer::<usize>("a number of threads")(v)? {
                0 => Err("must be at least 1".into()),
                n => Ok(n),
            }
        }),
        rate_limit: o
            .get(
                "rate_limit",
                integer("a number of messages per second (0: no limit)"),
            )
            .unwrap_or(defaults.rate_limit),
        state_file: o
            .get("state_file", nonempty)
            .map_or(defaults.state_file, PathBuf::from),
        mappings_file: o.get("mappings_file", nonempty).map(PathBuf::from),
    };
    let ok = !o.had_errors();
    o.finish();
    ok.then_some(lisp)
}

/// The `[relay]` table: an address nodes reach, and a range of at least
/// two ports apart from the map-server's own.
fn read_relay(
    report: &mut Report,
    section: &Section,
    wireguard: Option<&WireGuard>,
) -> Option<RelayConfig> {
    let mut o = report.options(section, "relay.");
    let address = o.required(
        "address",
        "the address nodes reach the relay at on the underlay",
        rules::ip_address,
    );
    let ports = o.required("ports", "the UDP ports it allocates, as FIRST-LAST", |v| {
        let text = options::text(v)?;
        let wrong = || format!("{text:?}: ports are FIRST-LAST, e.g. \"40000-40999\"");
        let (first, last) = text.split_once('-').ok_or_else(wrong)?;
        let first: u16 = first.trim().parse().map_err(|_| wrong())?;
        let last: u16 = last.trim().parse().map_err(|_| wrong())?;
        if first == 0 || last <= first {
            return Err(format!(
                "{text:?}: at least two ports, FIRST lower than LAST, not 0 (each pair takes two)"
            ));
        }
        let own = [lisp::CONTROL_PORT]
            .into_iter()
            .chain(wireguard.map(|w| w.listen_port));
        for port in own {
            if (first..=last).contains(&port) {
                return Err(format!("{text:?} holds port {port}, the map-server's own"));
            }
        }
        Ok(first..=last)
    });
    let idle = o.get("idle", rules::seconds).unwrap_or(90);
    let ok = !o.had_errors();
    o.finish();
    Some(RelayConfig {
        address: address?,
        ports: ports?,
        idle: std::time::Duration::from_secs(idle.max(1)),
    })
    .filter(|_| ok)
}

/// The `[enrolment]` table: the pool of enrolled nodes' control
/// addresses; for map-servers that enrol each other's nodes, the secret
/// they share and the others' underlay listeners and WireGuard keys.
fn read_enrolment(report: &mut Report, section: &Section) -> Option<EnrolmentConfig> {
    let mut o = report.options(section, "enrolment.");
    let control_pool = o.required(
        "control_pool",
        "the prefix enrolled nodes' control addresses come from",
        |v| {
            let pool = rules::parse_prefix(options::text(v)?)?;
            match pool.hosts().next() {
                Some(_) => Ok(pool),
                None => Err(format!("{pool} holds no address to give")),
            }
        },
    );
    let group_secret = o.get("group_secret", |v| {
        rules::key(v).map_err(|e| format!("{e} (make one with `wg genkey`, the same on each)"))
    });
    let group = o.list("group", |v| {
        let text = options::text(v)?;
        let bad = || {
            format!(
                "'{text}' is not 'ADDRESS:PORT PUBLIC_KEY' (another map-server's \
                 underlay_listen and WireGuard public key)"
            )
        };
        let (address, key) = text.split_once(' ').ok_or_else(bad)?;
        Ok(MapServer {
            address: address.trim().parse().map_err(|_| bad())?,
            public_key: netconf::parse_key(key.trim())?,
        })
    });
    if group.as_ref().is_some_and(|g| !g.is_empty())
        && group_secret.is_none()
        && !o.is_set("group_secret")
    {
        o.error_on(
            "group",
            "a group needs group_secret, the same on each of its map-servers",
        );
    }
    let ok = !o.had_errors();
    o.finish();
    Some(EnrolmentConfig {
        control_pool: control_pool?,
        group_secret,
        group: group.unwrap_or_default(),
        policies: Vec::new(),
    })
    .filter(|_| ok)
}

/// A site as read, even in part, with the lines its semantic checks point
/// at: a site with a wrong option is still compared with the others.
struct SiteRead {
    name: Option<String>,
    key: Option<Vec<u8>>,
    /// None for a plain LISP site, whose key and address stay None.
    lisp: bool,
    public_key: Option<PublicKey>,
    control_address: Option<IpAddr>,
    /// The EID prefixes that parsed, each with its line.
    eids: Vec<(EidPrefix, usize)>,
    accept_more_specifics: bool,
    may_resolve: Option<Vec<(String, usize)>>,
    name_line: usize,
    control_line: usize,
    key_line: usize,
    /// Whether every option was right.
    ok: bool,
}

impl SiteRead {
    fn site(self) -> Option<Site> {
        let may_resolve = self
            .may_resolve
            .map(|names| names.into_iter().map(|(name, _)| name).collect());
        let wireguard = match self.lisp {
            true => None,
            false => Some(Peer {
                public_key: self.public_key?,
                control_address: self.control_address?,
            }),
        };
        Some(Site {
            name: self.name?,
            key: self.key?,
            wireguard,
            eids: self.eids.into_iter().map(|(eid, _)| eid).collect(),
            accept_more_specifics: self.accept_more_specifics,
            may_resolve,
            group: None,
        })
        .filter(|_| self.ok)
    }
}

fn read_sites(
    report: &mut Report,
    doc: &Document,
    own_address: Option<IpAddr>,
) -> Option<Vec<Site>> {
    let read: Vec<SiteRead> = doc
        .sections_of("site")
        .map(|section| read_site(report, section, own_address))
        .collect();
    check_sites(report, &read);
    read.into_iter().map(SiteRead::site).collect()
}

fn read_site(report: &mut Report, section: &Section, own: Option<IpAddr>) -> SiteRead {
    let label = match section.entry("name").map(|e| &e.value) {
        Some(Value::String(name)) if !name.is_empty() => format!("site '{name}' "),
        _ => format!("site[{}] ", section.index),
    };
    let mut o = report.options(section, &label);
    let name = o.required("name", "the site's name", nonempty);
    let key = o.required("key", "the shared key of its Map-Registers", nonempty);
    let lisp = o
        .get("kind", |v| match options::text(v)? {
            "wireguard" => Ok(false),
            "lisp" => Ok(true),
            other => Err(format!(
                "'{other}': \"wireguard\" (a lispguard agent) or \"lisp\" (a plain LISP xTR)"
            )),
        })
        .unwrap_or(false);
    let (public_key, control_address) = if lisp {
        for name in ["public_key", "control_address"] {
            if o.is_set(name) {
                o.error_on(
                    name,
                    "a plain LISP site (kind = \"lisp\") has no WireGuard side",
                );
            }
        }
        (None, None)
    } else {
        let public_key = o.required("public_key", "its WireGuard public key", rules::key);
        let control_address = o.required(
            "control_address",
            "its IP address inside the tunnel",
            rules::ip_address,
        );
        (public_key, control_address)
    };
    if control_address.is_some() && control_address == own {
        o.error_on(
            "control_address",
            "also the map-server's own control_address",
        );
    }
    let eids = o
        .required("eids", "its EID prefixes", |v| match v {
            Value::Array(_) => Ok(()),
            other => Err(format!("expected an array, found {}", other.type_name())),
        })
        .and_then(|()| o.list("eids", eid_prefix));
    if eids.as_ref().is_some_and(Vec::is_empty) {
        o.error_on("eids", "a site needs at least one EID prefix");
    }
    let accept_more_specifics = o.get("accept_more_specifics", boolean).unwrap_or(false);
    let may_resolve = o.is_set("may_resolve").then(|| {
        let names = o.list("may_resolve", nonempty).unwrap_or_default();
        names
            .into_iter()
            .zip(items(section, "may_resolve"))
            .collect()
    });
    let ok = !o.had_errors();
    o.finish();
    let line = |name: &str| section.entry(name).map_or(section.line, |e| e.line);
    let eids = match section.entry("eids").map(|e| &e.value) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| Some((eid_prefix(&item.value).ok()?, item.line)))
            .collect(),
        _ => Vec::new(),
    };
    SiteRead {
        name,
        key: key.map(String::into_bytes),
        lisp,
        public_key,
        control_address,
        eids,
        accept_more_specifics,
        may_resolve,
        name_line: line("name"),
        control_line: line("control_address"),
        key_line: line("public_key"),
        ok,
    }
}

/// The lines of a list's items.
fn items(section: &Section, name: &str) -> Vec<usize> {
    match section.entry(name).map(|e| &e.value) {
        Some(Value::Array(items)) => items.iter().map(|i| i.line).collect(),
        _ => Vec::new(),
    }
}

fn eid_prefix(value: &Value) -> Result<EidPrefix, String> {
    rules::eid_prefix(value).map(|(iid, prefix)| EidPrefix::new(iid, prefix))
}

/// Names, control addresses and keys are each unique; may_resolve names
/// sites that exist; no two sites claim one EID prefix, and a site that
/// accepts more specifics holds no other site's prefix (it could register
/// that site's addresses). A prefix inside another site's is allowed
/// otherwise: longest-prefix match gives its addresses to the inner site.
fn check_sites(report: &mut Report, sites: &[SiteRead]) {
    fn same<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
        a.is_some() && a == b
    }
    for (i, s) in sites.iter().enumerate() {
        let name = s.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
        let name_of = |t: &SiteRead| t.name.clone().unwrap_or_default();
        for earlier in &sites[..i] {
            let other = name_of(earlier);
            if same(&earlier.name, &s.name) {
                report.error(
                    s.name_line,
                    "site name",
                    &format!("'{name}' is defined twice"),
                );
            }
            if same(&earlier.control_address, &s.control_address) {
                let message = format!("also the control address of site '{other}'");
                report.error(
                    s.control_line,
                    &format!("site '{name}' control_address"),
                    &message,
                );
            }
            if same(&earlier.public_key, &s.public_key) {
                let message = format!("also the public key of site '{other}'");
                report.error(s.key_line, &format!("site '{name}' public_key"), &message);
            }
        }
        let option = format!("site '{name}' eids");
        for (eid, line) in &s.eids {
            for (j, t) in sites.iter().enumerate().filter(|(j, _)| *j != i) {
                let other = name_of(t);
                for (theirs, _) in &t.eids {
                    let message = if theirs == eid {
                        // Once, at the later of the two.
                        if j > i {
                            continue;
                        }
                        format!("{eid} is also an EID prefix of site '{other}'")
                    } else if s.accept_more_specifics && eid.contains(theirs) {
                        format!(
                            "{eid} holds site '{other}''s {theirs}, and accept_more_specifics would let this site register it"
                        )
                    } else {
                        continue;
                    };
                    report.error(*line, &option, &message);
                }
            }
        }
        let names: Vec<&str> = sites.iter().filter_map(|t| t.name.as_deref()).collect();
        for (other, line) in s.may_resolve.iter().flatten() {
            if let Err(message) = check_resolvable(other, &names) {
                report.error(*line, &format!("site '{name}' may_resolve"), &message);
            }
        }
    }
}

/// A `may_resolve` item: a configured site's name, or `group:NAME`, the
/// nodes enrolled into policy group NAME.
fn check_resolvable(name: &str, sites: &[&str]) -> Result<(), String> {
    match name.strip_prefix("group:") {
        Some(group) => check_group(group).map(drop),
        None if sites.contains(&name) => Ok(()),
        None => Err(format!(
            "no site is named '{name}' (enrolled nodes are named by their group: group:NAME)"
        )),
    }
}

/// The `[[policy]]` tables: what the enrolled nodes of a group may
/// resolve.
fn read_policies(report: &mut Report, doc: &Document, sites: &[&str]) -> Option<Vec<Policy>> {
    let mut policies = Some(Vec::new());
    for section in doc.sections_of("policy") {
        let mut o = report.options(section, &format!("policy[{}].", section.index));
        let group = o.required("group", "the policy group it is for", |v| {
            check_group(options::text(v)?)
        });
        let may_resolve = o.required(
            "may_resolve",
            "what its nodes may resolve: site names and group:NAME",
            |v| {
                let names = match v {
                    Value::Array(items) => items.iter().map(|i| &i.value).collect(),
                    one => vec![one],
                };
                names
                    .into_iter()
                    .map(|v| {
                        let name = options::text(v)?;
                        check_resolvable(name, sites).map(|_| name.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()
            },
        );
        if let (Some(group), Some(list)) = (&group, policies.as_ref()) {
            if list.iter().any(|p: &Policy| &p.group == group) {
                let message = format!("a second policy for group '{group}'");
                o.error_on("group", &message);
            }
        }
        let ok = !o.had_errors();
        o.finish();
        match (group, may_resolve, policies.as_mut()) {
            (Some(group), Some(may_resolve), Some(list)) if ok => {
                list.push(Policy { group, may_resolve })
            }
            _ => policies = None,
        }
    }
    policies
}

fn read_statics(report: &mut Report, doc: &Document) -> Option<Vec<StaticMapping>> {
    let mut statics = Some(Vec::new());
    for section in doc.sections_of("static") {
        let mut o = report.options(section, &format!("static[{}].", section.index));
        let mapping = (
            o.required("eid", "its EID prefix", eid_prefix),
            o.required("public_key", "its WireGuard public key", rules::key),
            o.required(
                "rloc",
                "its WireGuard endpoint (address:port)",
                rules::socket_address,
            ),
            o.get("ttl", rules::minutes)
                .unwrap_or_else(default_static_ttl),
        );
        let ok = !o.had_errors();
        o.finish();
        match (mapping, statics.as_mut()) {
            ((Some(eid), Some(public_key), Some(rloc), ttl), Some(list)) if ok => {
                list.push(StaticMapping {
                    eid,
                    public_key,
                    rloc,
                    ttl,
                })
            }
            _ => statics = None,
        }
    }
    statics
}

pub use netconf::{format_key, parse_key};

pub use netconf::check::{ConfigError, ConfigErrors};
