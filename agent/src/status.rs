//! `lispguard status`: the running agent answers on a local unix socket
//! with what it knows — map-servers, peers with their EIDs, endpoints,
//! keys, TTLs, handshakes and bytes — as a table or as JSON. The same
//! socket answers `metrics` (the Prometheus text, for the metrics
//! thread) and `lookup EID` (see [`crate::lookup`]). An answer that
//! starts with `error: ` is one.

use crate::engine::{PeerSummary, Status};
use crate::lookup::Query;
use netconf::{control, key_fingerprint, PeerStatus, WireGuard};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Status clients served at once; more wait in the listener's backlog.
pub const CLIENTS_MAX: usize = 8;
/// A client that has not sent its request by then is dropped (it holds
/// up nobody meanwhile, only one of the [`CLIENTS_MAX`] places).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest request (`status json`): a client sending more is answered
/// from what it sent.
const REQUEST_MAX: usize = 256;
/// How long writing an answer may take: the answer is small, so only a
/// client that does not read (its buffer full) ever waits this.
const WRITE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long `lispguard status` waits on the agent before giving up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a scrape waits on the event loop: a loop that does not answer
/// by then is answered 503.
const METRICS_TIMEOUT: Duration = Duration::from_secs(2);
/// The answer to a request that is not one.
const UNKNOWN: &str = "error: unknown request (status, status json, metrics, lookup EID [json])\n";

/// What a client asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Status {
        json: bool,
    },
    /// The Prometheus text.
    Metrics,
    Lookup(Query),
}

impl Request {
    /// A request line; `Err` holds the answer to a bad one.
    pub fn parse(line: &str) -> Result<Request, String> {
        let line = line.trim();
        let (word, args) = line.split_once(' ').unwrap_or((line, ""));
        match (word, args.trim()) {
            ("status", "") => Ok(Request::Status { json: false }),
            ("status", "json") => Ok(Request::Status { json: true }),
            ("metrics", "") => Ok(Request::Metrics),
            ("lookup", args) => Query::parse(args)
                .map(Request::Lookup)
                .map_err(|e| format!("error: {e}\n")),
            _ => Err(UNKNOWN.into()),
        }
    }
}

/// Listens on `path`, replacing a socket a previous run left behind.
pub fn listen(path: &Path) -> io::Result<UnixListener> {
    if path.exists() && UnixStream::connect(path).is_err() {
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| io::Error::new(e.kind(), format!("status socket {}: {e}", path.display())))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A connected client whose request is read as it arrives, so that a
/// client that sends nothing never holds up the agent.
pub struct Client {
    /// Non-blocking until the answer is written.
    pub stream: UnixStream,
    request: Vec<u8>,
    /// When it is dropped if its request is not complete.
    pub deadline: Instant,
}

impl Client {
    pub fn new(stream: UnixStream, now: Instant) -> io::Result<Client> {
        stream.set_nonblocking(true)?;
        Ok(Client {
            stream,
            request: Vec::new(),
            deadline: now + CLIENT_TIMEOUT,
        })
    }

    /// Reads what has arrived, without blocking; the request once it is
    /// complete (a line, the end of the stream or [`REQUEST_MAX`] bytes).
    pub fn read(&mut self) -> io::Result<Option<String>> {
        let mut buf = [0u8; REQUEST_MAX];
        loop {
            let room = REQUEST_MAX - self.request.len();
            match (&self.stream).read(&mut buf[..room]) {
                Ok(0) => break,
                Ok(n) => {
                    self.request.extend_from_slice(&buf[..n]);
                    if self.request.contains(&b'\n') || self.request.len() >= REQUEST_MAX {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let line = self
            .request
            .split(|b| *b == b'\n')
            .next()
            .unwrap_or_default();
        Ok(Some(String::from_utf8_lossy(line).into_owned()))
    }

    /// Answers `status` or `status json`.
    pub fn answer(self, json_wanted: bool, status: &Status, wg: &WireGuard) {
        let peers = wg.peers().unwrap_or_default();
        let text = match json_wanted {
            true => json(status, &peers),
            false => table(status, &peers),
        };
        self.reply(&text);
    }

    /// Writes `text` as the whole answer.
    pub fn reply(self, text: &str) {
        let stream = self.stream;
        let result = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
            .and_then(|()| (&stream).write_all(text.as_bytes()));
        if let Err(e) = result {
            log::debug!("status client: {e}");
        }
    }
}

/// The client side: the running agent's answer to `request`; an answer
/// starting with `error: ` is an error.
pub fn request(path: &Path, request: &Request) -> Result<String, String> {
    let (line, timeout) = match request {
        Request::Status { json: false } => ("status".to_string(), REQUEST_TIMEOUT),
        Request::Status { json: true } => ("status json".to_string(), REQUEST_TIMEOUT),
        Request::Metrics => ("metrics".to_string(), METRICS_TIMEOUT),
        Request::Lookup(query) => (query.line(), REQUEST_TIMEOUT),
    };
    let answer = netconf::control::request(path, &line, timeout).map_err(|e| match e {
        control::Error::Unreachable(e) => format!(
            "cannot reach the agent at {}: {e} (is it running?)",
            path.display()
        ),
        control::Error::Exchange(e) => e.to_string(),
    })?;
    match answer.strip_prefix("error: ") {
        Some(error) => Err(error.trim_end().to_string()),
        None if answer.is_empty() => {
            Err("the agent closed the connection without an answer".into())
        }
        None => Ok(answer),
    }
}

pub(crate) fn ago(duration: Duration) -> String {
    let s = duration.as_secs();
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

fn handshake_age(peer: Option<&PeerStatus>) -> Option<Duration> {
    let at = peer?.last_handshake?;
    SystemTime::now().duration_since(at).ok()
}

fn handshake_unix_ms(peer: Option<&PeerStatus>) -> Option<u128> {
    let at = peer?.last_handshake?;
    Some(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis())
}

fn table(status: &Status, peers: &[PeerStatus]) -> String {
    let mut out = String::from("map-servers:\n");
    for ms in &status.map_servers {
        let state = match (ms.registered, ms.waiting) {
            (Some(age), false) => format!("registered {} ago", ago(age)),
            (Some(age), true) => format!("registered {} ago, re-registering", ago(age)),
            (None, _) => "not registered (no Map-Notify yet)".into(),
        };
        let _ = writeln!(out, "  {:<20} {state}", ms.control_address);
    }
    let rlocs: Vec<String> = status.rlocs.iter().map(|r| r.to_string()).collect();
    let _ = writeln!(
        out,
        "RLOCs: {}",
        if rlocs.is_empty() {
            "none".into()
        } else {
            rlocs.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "peers:\n  {:<11} {:<24} {:<22} {:>5} {:>10} {:>10} {:>10}",
        "KEY", "ENDPOINT", "EID PREFIXES", "TTL", "HANDSHAKE", "RX", "TX"
    );
    for p in &status.peers {
        let wg = peers.iter().find(|w| w.public_key == p.public_key);
        let prefixes: Vec<String> = p.prefixes.iter().map(|x| x.to_string()).collect();
        let _ = writeln!(
            out,
            "  {:<11} {:<24} {:<22} {:>5} {:>10} {:>10} {:>10}",
            key_fingerprint(&p.public_key),
            endpoint(p, wg).map_or("-".into(), |e| match p.relay == Some(e) {
                true => format!("{e} (relay)"),
                false => e.to_string(),
            }),
            prefixes.join(","),
            p.expires_in.map_or("-".into(), ago),
            handshake_age(wg).map_or("never".into(), |a| format!("{} ago", ago(a))),
            wg.map_or(0, |w| w.rx_bytes),
            wg.map_or(0, |w| w.tx_bytes),
        );
    }
    let c = &status.counters;
    let _ = writeln!(
        out,
        "map-cache: {} resolved, {} pending ({} packets waiting), {} negative",
        status.cached, status.pending, status.queued_packets, status.negative
    );
    let _ = writeln!(
        out,
        "control: {} misses, {} Map-Requests, {} Map-Replies ({} negative), {} pushes, {} bad messages dropped",
        c.misses, c.map_requests, c.map_replies, c.negative_replies, c.pushes, c.bad_messages
    );
    let _ = writeln!(
        out,
        "packets: {} dropped, {} refused with ICMP ({} over the per-source limits)",
        c.dropped_packets, c.refused_packets, c.throttled
    );
    if c.handshake_retries + c.handshake_fallbacks > 0 {
        let _ = writeln!(
            out,
            "  first contacts: {} handshake(s) started again (the destination was not ready: \
             harmless), {} never completed and asked the map-server again (the destination \
             reaches out, then the relay: a firewall or NAT in the way?)",
            c.handshake_retries, c.handshake_fallbacks
        );
    }
    if c.relay_to_direct > 0 {
        let _ = writeln!(
            out,
            "  relayed peers moved to a direct path: {}",
            c.relay_to_direct
        );
    }
    if c.ignored_packets > 0 {
        let (n, were) = match c.ignored_packets {
            1 => ("1 packet".to_string(), "was"),
            n => (format!("{n} packets"), "were"),
        };
        let _ = writeln!(
            out,
            "  {n} not for the overlay {were} ignored: the kernel's own traffic on the TUN \
             (IPv6 router solicitations, say); harmless"
        );
    }
    out
}

/// Where WireGuard sends to the peer (it follows a peer that moves), or
/// where the map-server said it is.
fn endpoint(p: &PeerSummary, wg: Option<&PeerStatus>) -> Option<SocketAddr> {
    wg.and_then(|w| w.endpoint).or(p.endpoint)
}

/// A JSON string: the values here are addresses, prefixes and base64 keys,
/// but quote and backslash are escaped all the same.
pub(crate) fn string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn json(status: &Status, peers: &[PeerStatus]) -> String {
    let map_servers: Vec<String> = status
        .map_servers
        .iter()
        .map(|ms| {
            format!(
                "{{\"control_address\":{},\"registered_seconds_ago\":{},\"waiting_for_map_notify\":{}}}",
                string(&ms.control_address.to_string()),
                ms.registered.map_or("null".into(), |a| a.as_secs().to_string()),
                ms.waiting
            )
        })
        .collect();
    let peer_list: Vec<String> = status
        .peers
        .iter()
        .map(|p| {
            let wg = peers.iter().find(|w| w.public_key == p.public_key);
            let prefixes: Vec<String> = p.prefixes.iter().map(|x| string(&x.to_string())).collect();
            format!(
                "{{\"public_key\":{},\"endpoint\":{},\"relay\":{},\"eid_prefixes\":[{}],\"ttl_seconds\":{},\"last_handshake_unix_ms\":{},\"rx_bytes\":{},\"tx_bytes\":{}}}",
                string(&netconf::format_key(&p.public_key)),
                endpoint(p, wg).map_or("null".into(), |e| string(&e.to_string())),
                p.relay.map_or("null".into(), |e| string(&e.to_string())),
                prefixes.join(","),
                p.expires_in.map_or("null".into(), |d| d.as_secs().to_string()),
                handshake_unix_ms(wg).map_or("null".into(), |ms| ms.to_string()),
                wg.map_or(0, |w| w.rx_bytes),
                wg.map_or(0, |w| w.tx_bytes),
            )
        })
        .collect();
    let rlocs: Vec<String> = status
        .rlocs
        .iter()
        .map(|r| string(&r.to_string()))
        .collect();
    let c = &status.counters;
    format!(
        "{{\"map_servers\":[{}],\"rlocs\":[{}],\"peers\":[{}],\"map_cache\":{{\"resolved\":{},\"pending\":{},\"negative\":{},\"queued_packets\":{}}},\"counters\":{{\"misses\":{},\"throttled\":{},\"map_requests\":{},\"map_replies\":{},\"negative_replies\":{},\"pushes\":{},\"dropped_packets\":{},\"refused_packets\":{},\"ignored_packets\":{},\"bad_messages\":{},\"handshake_retries\":{},\"handshake_fallbacks\":{},\"relay_to_direct\":{}}}}}\n",
        map_servers.join(","),
        rlocs.join(","),
        peer_list.join(","),
        status.cached,
        status.pending,
        status.negative,
        status.queued_packets,
        c.misses,
        c.throttled,
        c.map_requests,
        c.map_replies,
        c.negative_replies,
        c.pushes,
        c.dropped_packets,
        c.refused_packets,
        c.ignored_packets,
        c.bad_messages,
        c.handshake_retries,
        c.handshake_fallbacks,
        c.relay_to_direct
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Counters;

    #[test]
    fn requests_are_read_and_a_wrong_one_answered_with_an_error() {
        assert_eq!(
            Request::parse("status\n"),
            Ok(Request::Status { json: false })
        );
        assert_eq!(
            Request::parse("status json"),
            Ok(Request::Status { json: true })
        );
        assert_eq!(Request::parse("metrics"), Ok(Request::Metrics));
        let eid = "10.2.0.2".parse().unwrap();
        assert_eq!(
            Request::parse("lookup 10.2.0.2 json"),
            Ok(Request::Lookup(Query { eid, json: true }))
        );
        assert!(Request::parse("lookup nowhere")
            .unwrap_err()
            .starts_with("error: 'nowhere' is not an EID"));
        assert_eq!(Request::parse("stats"), Err(UNKNOWN.to_string()));
    }

    fn status(ignored_packets: u64) -> Status {
        Status {
            map_servers: Vec::new(),
            peers: Vec::new(),
            cached: 0,
            pending: 0,
            negative: 0,
            queued_packets: 0,
            rlocs: Vec::new(),
            counters: Counters {
                ignored_packets,
                ..Counters::default()
            },
        }
    }

    #[test]
    fn ignored_packets_are_explained_and_only_when_there_are_some() {
        assert!(!table(&status(0), &[]).contains("not for the overlay"));
        let text = table(&status(4), &[]);
        assert!(
            text.contains("4 packets not for the overlay were ignored: the kernel's own traffic"),
            "{text}"
        );
    }
}
