//! The agent's configuration from OpenWrt UCI (`/etc/config/lispguard`):
//! the file becomes a [`Document`] and goes through the conversion TOML
//! goes through, with the same option names and the same checks.
//!
//! ```text
//! config agent 'main'
//!     option control_address '100.64.0.2'
//!     list overlay '10.0.0.0/8'
//!     option private_key 'generate'       # or: option private_key_file '/etc/...'
//!     option metrics '127.0.0.1:9101'     # Prometheus metrics; off when unset
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

use crate::config::{Config, ConfigError, ConfigErrors, Syntax};
use netconf::check::{Document, Entry, Item, Section, Value};
use std::collections::HashMap;
use std::path::Path;

impl Config {
    /// Parses a UCI file; returns the configuration and its warnings.
    pub fn parse_uci(path: &Path, text: &str) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let file = uci::parse(text)
            .map_err(|e| ConfigErrors(vec![ConfigError::new(path, e.line, "", &e.to_string())]))?;
        Config::from_document(path, &document(&file), Syntax::Uci)
    }
}

/// The sections of a UCI file, each option's value settled as libuci does
/// (a later `option` replaces, `list` appends); values stay untyped text.
fn document(file: &uci::Config) -> Document {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let sections = file
        .sections
        .iter()
        .map(|section| {
            let index = counts.entry(section.kind.as_str()).or_default();
            let mut names: Vec<&str> = Vec::new();
            for option in &section.options {
                if !names.contains(&option.name.as_str()) {
                    names.push(&option.name);
                }
            }
            let entries = names
                .into_iter()
                .map(|name| match section.get(name) {
                    Some(value) => entry(name, &value),
                    // Only `option NAME ''` lines: unset to libuci, kept
                    // so that a required option can say it is empty.
                    None => Entry {
                        name: name.to_string(),
                        line: section.entries(name).last().map_or(0, |o| o.line),
                        value: Value::Text(String::new()),
                    },
                })
                .collect();
            let converted = Section {
                kind: section.kind.clone(),
                index: *index,
                line: section.line,
                repeated: true,
                entries,
            };
            *index += 1;
            converted
        })
        .collect();
    Document { sections }
}

fn entry(name: &str, value: &uci::Value<'_>) -> Entry {
    match value {
        uci::Value::Single(option) => Entry {
            name: name.to_string(),
            line: option.line,
            value: Value::Text(option.value.clone()),
        },
        uci::Value::List(items) => Entry {
            name: name.to_string(),
            line: items.first().map_or(0, |o| o.line),
            value: Value::Array(
                items
                    .iter()
                    .map(|o| Item {
                        line: o.line,
                        value: Value::Text(o.value.clone()),
                    })
                    .collect(),
            ),
        },
    }
}
