//! The local control socket the CLI's `sites`, `lookup`, `revoke` and
//! `token` talk to: one request line in, a status line and text out.
//!
//! ```text
//! > lookup [1000] 10.2.0.9/32
//! < OK
//! < [1000] 10.2.0.0/24 of site 'b' ...
//! > token create iid=1000 uses=20 expires=86400 pool=10.9.0.0/24
//! < OK
//! < lgt2.BMAAAgEQ...
//! < token 3f2a... for [1000] pool 10.9.0.0/24, 20 uses, expires in 1d00h
//! ```

use crate::engine::SiteStatus;
use crate::issue::{self, Request};
use crate::server::Server;
use crate::store::Store;
use crate::token::TokenId;
use lisp::{Address, EidPrefix};
use netconf::{key_fingerprint, PublicKey};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest request line accepted.
const MAX_REQUEST: u64 = 1024;
/// How long a command waits on the map-server before giving up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What `token` needs: the state file (a connection of its own: tokens are
/// no engine state yet) and the key tokens pin.
pub struct Tokens {
    pub store: Store,
    pub public_key: PublicKey,
}

/// Serves the control socket at `path` until the process ends (one client
/// at a time: these are an operator's commands).
pub fn serve(
    path: &Path,
    server: Arc<Server>,
    mut tokens: Tokens,
) -> io::Result<std::thread::JoinHandle<()>> {
    // A socket left by a previous run that did not stop cleanly.
    if path.exists() && UnixStream::connect(path).is_err() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream, &server, &mut tokens) {
                    log::warn!("control socket: {e}");
                }
            }
        })
}

fn answer(stream: UnixStream, server: &Server, tokens: &mut Tokens) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream.try_clone()?.take(MAX_REQUEST)).read_line(&mut line)?;
    let reply = match execute(line.trim(), server, tokens) {
        Ok(text) => format!("OK\n{text}"),
        Err(e) => format!("ERR {e}\n"),
    };
    (&stream).write_all(reply.as_bytes())
}

fn execute(request: &str, server: &Server, tokens: &mut Tokens) -> Result<String, String> {
    let (command, argument) = request.split_once(' ').unwrap_or((request, ""));
    match command {
        "sites" => Ok(server.with_engine(|engine, now, _| sites_table(&engine.sites(), now))),
        "lookup" => {
            let eid: EidPrefix = argument.parse().map_err(|e| format!("{e}"))?;
            server.with_engine(|engine, _, _| match engine.lookup(&eid) {
                Some((owner, answer)) => Ok(describe(&eid, owner, &answer.record())),
                None => Err(format!("{eid}: no mapping")),
            })
        }
        "revoke" => {
            let count = server.with_engine(|engine, now, out| engine.revoke(argument, now, out))?;
            Ok(format!(
                "site '{argument}' revoked: {count} registrations removed\n"
            ))
        }
        "rename" => {
            let (site, name) = argument.split_once(' ').ok_or("rename SITE NAME")?;
            server.with_engine(|engine, _, out| engine.rename(site, name, out))?;
            Ok(format!("node '{site}' is '{name}' now\n"))
        }
        "token" => token(argument, server, tokens),
        _ => Err(format!("unknown request '{request}'")),
    }
}

fn token(request: &str, server: &Server, tokens: &mut Tokens) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (command, argument) = request.split_once(' ').unwrap_or((request, ""));
    match command {
        "create" => {
            let request = Request::parse(argument)?;
            let (underlay, public_key) = (server.underlay_addr(), tokens.public_key);
            let (token, issued) = server.with_engine(|engine, _, _| {
                let Some(enrolment) = engine.enrolment_mut().map(|e| e.config().clone()) else {
                    return Err("enrolment is off: set [enrolment] control_pool in the \
                        configuration and restart"
                        .to_string());
                };
                request.issue(
                    |eid| engine.claimant(eid),
                    underlay,
                    public_key,
                    &enrolment,
                    now,
                )
            })?;
            tokens.store.add_token(&issued).map_err(|e| e.to_string())?;
            server.with_engine(|engine, _, _| {
                if let Some(enrolment) = engine.enrolment_mut() {
                    enrolment.keep_token(issued.clone());
                }
            });
            let described = issue::table(std::slice::from_ref(&issued), now);
            log::info!("token {} created", issued.id);
            Ok(format!("{}\n{described}", token.encode()))
        }
        "list" => {
            let list = tokens.store.tokens().map_err(|e| e.to_string())?;
            Ok(issue::table(&list, now))
        }
        "revoke" => {
            let id: TokenId = argument.parse()?;
            match tokens.store.revoke_token(id).map_err(|e| e.to_string())? {
                true => {
                    server.with_engine(|engine, _, _| {
                        if let Some(enrolment) = engine.enrolment_mut() {
                            enrolment.revoke_token(id);
                        }
                    });
                    log::warn!("token {id} revoked");
                    Ok(format!(
                        "token {id} revoked: it enrols no node from now on\n"
                    ))
                }
                false => Err(format!("no token has id {id} (see token list)")),
            }
        }
        _ => Err(format!("unknown request 'token {request}'")),
    }
}

fn age(since: Instant, now: Instant) -> String {
    let s = now.saturating_duration_since(since).as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

fn sites_table(sites: &[SiteStatus], now: Instant) -> String {
    let mut out = format!(
        "{:<16} {:<16} {:<11} {:<22} {:<24} {:<22} {}\n",
        "SITE", "CONTROL", "KEY", "SEEN AT", "EID PREFIX", "RLOC", "AGE"
    );
    for s in sites {
        let seen = s.observed.map_or("-".into(), |e| e.to_string());
        let name = if s.revoked {
            format!("{} (revoked)", s.name)
        } else {
            s.name.clone()
        };
        let head = format!(
            "{:<16} {:<16} {:<11} {:<22}",
            name,
            s.control_address
                .map_or("(underlay)".into(), |a| a.to_string()),
            s.public_key.map_or("-".into(), |k| key_fingerprint(&k)),
            seen
        );
        if s.mappings.is_empty() {
            let _ = writeln!(out, "{head} {:<24} {:<22} -", "(not registered)", "-");
        }
        for (n, m) in s.mappings.iter().enumerate() {
            let lead = if n == 0 { head.as_str() } else { "" };
            let rloc = m
                .rlocs
                .first()
                .map_or("-".into(), |r| r.address.to_string());
            let _ = writeln!(
                out,
                "{lead:<68} {:<24} {:<22} {}",
                m.eid.to_string(),
                rloc,
                age(m.registered, now)
            );
        }
    }
    out
}

fn describe(asked: &EidPrefix, owner: Option<String>, record: &lisp::Record) -> String {
    let found = EidPrefix::from_address(&record.eid, record.eid_mask_len)
        .map_or("?".into(), |p| p.to_string());
    let owner = owner.map_or("static mapping".into(), |o| format!("site '{o}'"));
    let key = record
        .eid
        .wireguard_key()
        .map_or("-".into(), |k| key_fingerprint(&k));
    let mut out = format!(
        "{asked} -> {found} of {owner}, key {key}, TTL {} min\n",
        record.ttl
    );
    for l in &record.locators {
        let at = match &l.rloc {
            Address::NatTraversal(n) => format!(
                "{} (behind NAT; private {})",
                l.rloc.endpoint().map_or("?".into(), |e| e.to_string()),
                n.private_etr_rloc.map_or("-".into(), |p| p.to_string())
            ),
            other => other.endpoint().map_or("?".into(), |e| e.to_string()),
        };
        let _ = writeln!(
            out,
            "  locator {at} priority {} weight {}",
            l.priority, l.weight
        );
    }
    out
}

/// The CLI side: sends `request`, returns the text or the server's error.
pub fn request(path: &Path, request: &str) -> Result<String, String> {
    let reply = netconf::control::request(path, request, REQUEST_TIMEOUT).map_err(|e| match e {
        netconf::control::Error::Unreachable(e) => format!(
            "cannot reach the map-server at {}: {e} (is it running? see --socket)",
            path.display()
        ),
        netconf::control::Error::Exchange(e) => e.to_string(),
    })?;
    match reply.split_once('\n') {
        Some(("OK", text)) => Ok(text.to_string()),
        Some((status, _)) => Err(status.strip_prefix("ERR ").unwrap_or(status).to_string()),
        None => Err(format!("unexpected answer '{reply}'")),
    }
}
