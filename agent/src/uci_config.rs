//! The agent's configuration from OpenWrt UCI (`/etc/config/lispguard`):
//! the struct TOML fills, with the same option names.
//!
//! ```text
//! config agent 'main'
//!     option control_address '100.64.0.2'
//!     list overlay '10.0.0.0/8'
//!     option private_key 'generate'       # or: option private_key_file '/etc/...'
//! config map_server
//!     option address '192.0.2.1'
//!     option public_key '...'
//!     option control_address '100.64.0.1'
//!     option key 'site key'
//! config eid
//!     option prefix '10.1.0.0/24'
//!     option iid '1000'
//! ```
//!
//! Every error names the line, section and option; an option or section
//! it does not know is a warning, not silence.

use crate::config::{self as c, Backend, Config, ConfigError, ConfigErrors, Eid, MapServer, Place};
use std::path::Path;
use std::str::FromStr;

const AGENT_OPTIONS: &[&str] = &[
    // Read by the init script, not by the agent.
    "enabled",
    "interface",
    "backend",
    "listen_port",
    "private_key",
    "private_key_file",
    "control_address",
    "tun",
    "overlay",
    "register_interval",
    "record_ttl",
    "log_level",
    "status_socket",
];
const MAP_SERVER_OPTIONS: &[&str] = &["address", "port", "public_key", "control_address", "key"];
const EID_OPTIONS: &[&str] = &["prefix", "iid"];

/// Reads one section's options, collecting errors and warnings.
struct Reader<'a> {
    path: &'a Path,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl Reader<'_> {
    fn error(&mut self, line: usize, option: String, message: String) {
        self.errors
            .push(ConfigError::new(self.path, line, &option, &message));
    }

    /// `section.option` parsed as `T` (`what` says what it must be).
    fn get<T: FromStr>(&mut self, section: &uci::Section, option: &str, what: &str) -> Option<T> {
        let entry = section.entries(option).last()?;
        match entry.value.parse() {
            Ok(value) => Some(value),
            Err(_) => {
                let message = format!("'{}' is not {what}", entry.value);
                self.error(entry.line, format!("{}.{option}", section.kind), message);
                None
            }
        }
    }

    fn required<T: FromStr>(
        &mut self,
        section: &uci::Section,
        option: &str,
        what: &str,
    ) -> Option<T> {
        if section.entries(option).next().is_none() {
            let message = format!("missing: {what}");
            self.error(section.line, format!("{}.{option}", section.kind), message);
            return None;
        }
        self.get(section, option, what)
    }

    fn unknown_options(&mut self, section: &uci::Section, known: &[&str]) {
        for option in &section.options {
            if !known.contains(&option.name.as_str()) {
                let name = format!("{}.{}", section.kind, option.name);
                self.warnings.push(ConfigError::new(
                    self.path,
                    option.line,
                    &name,
                    "unknown option, ignored",
                ));
            }
        }
    }
}

impl Config {
    /// Parses a UCI file; returns the configuration and its warnings.
    pub fn parse_uci(path: &Path, text: &str) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let file = uci::parse(text)
            .map_err(|e| ConfigErrors(vec![ConfigError::new(path, e.line, "", &e.to_string())]))?;
        let mut r = Reader {
            path,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        for section in &file.sections {
            if !["agent", "map_server", "eid"].contains(&section.kind.as_str()) {
                let message = format!("unknown section type '{}', ignored", section.kind);
                r.warnings
                    .push(ConfigError::new(path, section.line, "", &message));
            }
        }
        let agents: Vec<&uci::Section> = file.sections_of("agent").collect();
        let Some(agent) = agents.first() else {
            return Err(ConfigErrors(vec![ConfigError::new(
                path,
                0,
                "agent",
                "no 'config agent' section",
            )]));
        };
        if let Some(second) = agents.get(1) {
            r.error(
                second.line,
                "agent".into(),
                "more than one 'config agent' section".into(),
            );
        }
        r.unknown_options(agent, AGENT_OPTIONS);
        let control_address = r.required(agent, "control_address", "an IP address");
        let mut overlay = Vec::new();
        for entry in agent.entries("overlay") {
            match entry.value.parse() {
                Ok(prefix) => overlay.push(prefix),
                Err(_) => r.error(
                    entry.line,
                    "agent.overlay".into(),
                    format!("'{}' is not a prefix", entry.value),
                ),
            }
        }
        let backend = match agent.option("backend") {
            None | Some("kernel") => Backend::Kernel,
            Some("userspace") => Backend::Userspace,
            Some(other) => {
                let line = agent
                    .entries("backend")
                    .last()
                    .map_or(agent.line, |e| e.line);
                r.error(
                    line,
                    "agent.backend".into(),
                    format!("'{other}' is not 'kernel' or 'userspace'"),
                );
                Backend::Kernel
            }
        };
        let private_key_file = match (
            agent.option("private_key"),
            agent.option("private_key_file"),
        ) {
            (Some(_), Some(_)) => {
                let message =
                    "set private_key 'generate' or private_key_file, not both".to_string();
                r.error(agent.line, "agent.private_key".into(), message);
                c::default_private_key_file()
            }
            (Some("generate"), None) | (None, None) => c::default_private_key_file(),
            (Some(other), None) => {
                let line = agent
                    .entries("private_key")
                    .last()
                    .map_or(agent.line, |e| e.line);
                let message = format!(
                    "'{other}': only 'generate' is understood here; keep a key in a file (mode 0600) and set private_key_file"
                );
                r.error(line, "agent.private_key".into(), message);
                c::default_private_key_file()
            }
            (None, Some(file)) => file.into(),
        };
        let mut map_servers = Vec::new();
        for section in file.sections_of("map_server") {
            r.unknown_options(section, MAP_SERVER_OPTIONS);
            let ms = (
                r.required::<String>(section, "address", "a host name or address"),
                r.get(section, "port", "a port number"),
                r.required::<String>(section, "public_key", "a WireGuard public key"),
                r.required(section, "control_address", "an IP address"),
                r.required::<String>(section, "key", "the site's Map-Register key"),
            );
            if let (Some(address), port, Some(public_key), Some(control_address), Some(key)) = ms {
                map_servers.push(MapServer {
                    address,
                    port: port.unwrap_or_else(c::default_wireguard_port),
                    public_key,
                    control_address,
                    key,
                });
            }
        }
        let mut eids = Vec::new();
        for section in file.sections_of("eid") {
            r.unknown_options(section, EID_OPTIONS);
            let prefix = r.required(section, "prefix", "a prefix");
            let iid = r
                .get(section, "iid", "an instance ID (0 to 4294967295)")
                .unwrap_or(0);
            if let Some(prefix) = prefix {
                eids.push(Eid { prefix, iid });
            }
        }
        let defaults = (
            r.get(agent, "listen_port", "a port number"),
            r.get(agent, "register_interval", "a number of seconds"),
            r.get(agent, "record_ttl", "a number of minutes"),
        );
        let Some(control_address) = control_address else {
            return Err(ConfigErrors(r.errors));
        };
        let config = Config {
            interface: agent
                .option("interface")
                .map_or_else(c::default_interface, String::from),
            backend,
            listen_port: defaults.0.unwrap_or_else(c::default_wireguard_port),
            private_key_file,
            control_address,
            tun: agent
                .option("tun")
                .map_or_else(c::default_tun, String::from),
            overlay,
            register_interval: defaults.1.unwrap_or_else(c::default_register_interval),
            record_ttl: defaults.2.unwrap_or_else(c::default_record_ttl),
            log_level: agent
                .option("log_level")
                .map_or_else(c::default_log_level, String::from),
            status_socket: agent
                .option("status_socket")
                .map_or_else(c::default_status_socket, Into::into),
            map_servers,
            eids,
        };
        if let Err(ConfigErrors(more)) = config.check(path, |place| uci_line(&file, place)) {
            r.errors.extend(more);
        }
        if r.errors.is_empty() {
            Ok((config, r.warnings))
        } else {
            r.errors.sort_by_key(|e| e.line);
            Err(ConfigErrors(r.errors))
        }
    }
}

/// The line of `place` in the UCI file: the option's, else its section's.
fn uci_line(file: &uci::Config, place: Place<'_>) -> usize {
    let Some(section) = file.sections_of(place.section).nth(place.index) else {
        return 0;
    };
    section
        .entries(place.option)
        .last()
        .map_or(section.line, |e| e.line)
}
