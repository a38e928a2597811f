//! Static mappings in bulk: the mappings file (`[lisp] mappings_file`),
//! one mapping per line, for sets too large for `[[static]]` tables (a
//! million lines start in about a second; a TOML array of a million
//! tables took 8 s and 2.3 GB):
//!
//! ```text
//! # [IID] EID-PREFIX       WIREGUARD-PUBLIC-KEY                          ENDPOINT           [TTL]
//! [1000] 10.9.0.0/24       Y2xhc3NpYyBleGFtcGxlIGtleSBmb3IgZG9jcyEhISE=  192.0.2.20:51820   60
//! ```
//!
//! Fields are separated by blanks; `#` starts a comment; the TTL is in
//! minutes (default 60). The file is read as a stream, never held whole:
//! `check-config` and a reload check it whole first (every bad line is
//! reported with its number, and a file with errors changes nothing); a
//! start reads it once, feeding the engine line by line, and stops at the
//! first bad line (then reports them all).

use crate::config::{Config, StaticMapping};
use crate::engine::MapServer;
use crate::outbox::Outbox;
use lisp::EidPrefix;
use netconf::check::{ConfigError, ConfigErrors};
use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;
use std::time::Instant;

/// Record TTL, minutes, of a line that gives none.
pub const DEFAULT_TTL: u32 = 60;

/// The errors reported in full; beyond, only their number.
const ERRORS_SHOWN: usize = 20;

/// The option that names the file, in error messages.
const OPTION: &str = "lisp.mappings_file";

/// Parses one line: `None` for a blank or comment line.
pub fn parse_line(line: &str) -> Result<Option<StaticMapping>, String> {
    let line = line.split('#').next().unwrap_or_default().trim();
    if line.is_empty() {
        return Ok(None);
    }
    let (eid, rest) = split_eid(line);
    let mut fields = rest.split_whitespace();
    let (iid, prefix) = netconf::check::rules::parse_eid_prefix(eid)?;
    let usage = "expected '[IID] EID-PREFIX PUBLIC-KEY ADDRESS:PORT [TTL]'";
    let public_key = fields
        .next()
        .ok_or_else(|| format!("no public key: {usage}"))
        .and_then(netconf::parse_key)?;
    let rloc = fields
        .next()
        .ok_or_else(|| format!("no endpoint: {usage}"))?;
    let rloc = rloc
        .parse()
        .map_err(|_| format!("'{rloc}' is not an endpoint ADDRESS:PORT"))?;
    let ttl = match fields.next() {
        None => DEFAULT_TTL,
        Some(ttl) => ttl
            .parse()
            .map_err(|_| format!("'{ttl}' is not a TTL in minutes"))?,
    };
    if let Some(extra) = fields.next() {
        return Err(format!("'{extra}' after the TTL: {usage}"));
    }
    Ok(Some(StaticMapping {
        eid: EidPrefix::new(iid, prefix),
        public_key,
        rloc,
        ttl,
    }))
}

/// Gives the engine the configuration's static mappings: its `[[static]]`
/// tables and its mappings file, streamed. Returns how many it serves; an
/// error at the file's first bad line or prefix given twice (what was
/// read before it is served).
pub fn apply(
    engine: &mut MapServer,
    config: &Config,
    now: Instant,
    out: &mut Outbox,
) -> Result<usize, ConfigErrors> {
    let mut update = engine.update_statics(now);
    for mapping in &config.statics {
        update.add(mapping.clone(), out);
    }
    let read = match &config.lisp.mappings_file {
        Some(path) => read(path, |mapping| {
            let eid = mapping.eid;
            match update.add(mapping, out) {
                true => Ok(()),
                false => Err(format!("{eid} is given twice")),
            }
        })
        .map(drop),
        None => Ok(()),
    };
    let count = update.finish();
    read.map(|()| count)
}

/// Splits a line after its EID, `[IID] PREFIX` or `PREFIX` (instance 0),
/// without copying it.
fn split_eid(line: &str) -> (&str, &str) {
    let iid_end = match line.starts_with('[') {
        true => line.find(']').map_or(0, |at| at + 1),
        false => 0,
    };
    let prefix = line[iid_end..].trim_start();
    let prefix_at = line.len() - prefix.len();
    match prefix.find(char::is_whitespace) {
        Some(end) => line.split_at(prefix_at + end),
        None => (line, ""),
    }
}

/// Feeds every mapping of the file to `each`, in order; returns how many.
/// Stops at the first bad line, or the first `each` refuses.
pub fn read(
    path: &Path,
    mut each: impl FnMut(StaticMapping) -> Result<(), String>,
) -> Result<usize, ConfigErrors> {
    let mut count = 0;
    lines(path, |number, line| {
        let fed = match parse_line(line) {
            Ok(Some(mapping)) => each(mapping).map(|()| 1),
            Ok(None) => Ok(0),
            Err(message) => Err(message),
        };
        match fed {
            Ok(n) => {
                count += n;
                Ok(())
            }
            Err(message) => Err(ConfigErrors(vec![ConfigError::new(
                path, number, OPTION, &message,
            )])),
        }
    })?;
    Ok(count)
}

/// Checks the whole file: every bad line (the first [`ERRORS_SHOWN`] in
/// full) and every prefix given twice. Returns how many mappings it holds.
pub fn check(path: &Path) -> Result<usize, ConfigErrors> {
    let mut errors = Vec::new();
    let mut more = 0;
    let mut seen: HashSet<EidPrefix> = HashSet::new();
    let mut count = 0;
    lines(path, |number, line| {
        let problem = match parse_line(line) {
            Ok(None) => None,
            Ok(Some(m)) if !seen.insert(m.eid) => Some(format!("{} is given twice", m.eid)),
            Ok(Some(_)) => {
                count += 1;
                None
            }
            Err(message) => Some(message),
        };
        match problem {
            Some(message) if errors.len() < ERRORS_SHOWN => {
                errors.push(ConfigError::new(path, number, OPTION, &message));
            }
            Some(_) => more += 1,
            None => {}
        }
        Ok(())
    })?;
    if more > 0 {
        let message = format!("{more} more bad lines");
        errors.push(ConfigError::new(path, 0, OPTION, &message));
    }
    match errors.is_empty() {
        true => Ok(count),
        false => Err(ConfigErrors(errors)),
    }
}

/// Calls `f` with each line and its number, reusing one buffer.
fn lines(
    path: &Path,
    mut f: impl FnMut(usize, &str) -> Result<(), ConfigErrors>,
) -> Result<(), ConfigErrors> {
    let unreadable = |e: std::io::Error| ConfigErrors::one(path, &format!("{OPTION}: {e}"));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut line = String::new();
    for number in 1.. {
        line.clear();
        if reader.read_line(&mut line).map_err(unreadable)? == 0 {
            break;
        }
        f(number, &line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn a_line_with_and_without_its_optional_parts() {
        let m = parse_line(&format!(
            "[1000] 10.9.0.0/24 {KEY} 192.0.2.20:51820 15 # lab"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(m.eid, "[1000] 10.9.0.0/24".parse().unwrap());
        assert_eq!(m.rloc, "192.0.2.20:51820".parse().unwrap());
        assert_eq!((m.public_key, m.ttl), ([0; 32], 15));
        let m = parse_line(&format!("10.9.0.0/24 {KEY} [2001:db8::1]:51820"))
            .unwrap()
            .unwrap();
        assert_eq!((m.eid.iid, m.ttl), (0, DEFAULT_TTL));
        assert_eq!(parse_line("   # only a comment\n"), Ok(None));
    }

    #[test]
    fn a_bad_line_says_what_is_wrong() {
        let cases = [
            ("[1000] 10.9.0.1/24 K E", "host bits"),
            ("[1000] 10.9.0.0/24", "no public key"),
            ("[1000] 10.9.0.0/24 short 192.0.2.1:1", "key"),
            (&format!("[1000] 10.9.0.0/24 {KEY}"), "no endpoint"),
            (
                &format!("[1000] 10.9.0.0/24 {KEY} 192.0.2.1"),
                "ADDRESS:PORT",
            ),
            (&format!("[1000] 10.9.0.0/24 {KEY} 192.0.2.1:1 x"), "TTL"),
            (
                &format!("[1000] 10.9.0.0/24 {KEY} 192.0.2.1:1 5 6"),
                "after",
            ),
        ];
        for (line, expected) in cases {
            let error = parse_line(line).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
