//! The userspace backend: wireguard-go, started as a process and then
//! configured over its UAPI socket `/var/run/wireguard/<name>.sock` with
//! the cross-platform line protocol (https://www.wireguard.com/xplatform/):
//! `set=1` or `get=1`, `key=value` lines, a blank line; the answer ends with
//! `errno=N` and a blank line. Keys are hex there.

use std::{
    env,
    fmt::Write as _,
    io::{self, BufRead, BufReader, Read, Write},
    net::SocketAddr,
    os::fd::{AsRawFd, FromRawFd},
    os::unix::net::UnixStream,
    path::PathBuf,
    process::{Command, Stdio},
    sync::Mutex,
    time::{Duration, SystemTime},
};

use ipnet::IpNet;
use log::debug;

use super::{
    key::{from_hex, to_hex},
    Change, PeerChange, PeerStatus,
};
use crate::error::{context, invalid};

/// Where wireguard-go puts its sockets (fixed in its source).
const SOCKET_DIR: &str = "/var/run/wireguard";

/// How long wireguard-go may take to answer; a hung one fails the call
/// rather than the daemon.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How long a deletion waits for wireguard-go to exit.
pub(super) const EXIT_WAIT: Duration = Duration::from_secs(2);

/// The most we read of one answer: 1 MiB holds some thousands of peers.
const MAX_ANSWER: u64 = 1 << 20;

pub(super) fn socket_path(name: &str) -> PathBuf {
    PathBuf::from(format!("{SOCKET_DIR}/{name}.sock"))
}

/// Whether a wireguard-go answers on the UAPI socket for `name`. A socket
/// file left by a crashed wireguard-go refuses the connection.
pub(super) fn alive(name: &str) -> bool {
    UnixStream::connect(socket_path(name)).is_ok()
}

/// The userspace WireGuard to run, as wg-quick chooses it.
fn implementation() -> String {
    env::var("WG_USERSPACE_IMPLEMENTATION")
        .or_else(|_| env::var("WG_QUICK_USERSPACE_IMPLEMENTATION"))
        .unwrap_or_else(|_| "wireguard-go".to_string())
}

/// Starts wireguard-go for interface `name` and waits for it to daemonise;
/// by then its TUN device and UAPI socket exist. The implementation can be
/// chosen as with wg-quick. `LOG_LEVEL` (a common variable name) and
/// `WG_PROCESS_FOREGROUND` are removed from its environment: with either,
/// the daemonised wireguard-go keeps our output pipe open (or never
/// daemonises), and we would wait forever. Its error output is kept for
/// the message.
pub(super) fn start(name: &str) -> io::Result<()> {
    let program = implementation();
    let output = Command::new(&program)
        .arg(name)
        .env_remove("LOG_LEVEL")
        .env_remove("WG_PROCESS_FOREGROUND")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| context(format_args!("starting {program}"), e))?;
    if output.status.success() {
        return Ok(());
    }
    // The last line is the error; the lines before, a banner saying the
    // kernel module would be better.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reason = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no error output");
    Err(io::Error::other(format!(
        "{program} {name} failed ({}): {}",
        output.status,
        reason.trim()
    )))
}

/// wireguard-go's UAPI socket for one interface, its connection kept from
/// one request to the next. wireguard-go takes any number of requests on a
/// connection, in turn, and a new one costs it a goroutine: a peer set on a
/// new connection took 130–140 µs here, on a kept one 30–50 µs, and a
/// first contact sets one on each side.
#[derive(Default)]
pub(super) struct Uapi {
    kept: Mutex<Option<BufReader<UnixStream>>>,
}

impl Uapi {
    pub(super) fn set(&self, name: &str, change: &Change<'_>) -> io::Result<()> {
        self.exchange(name, &set_request(change)).map(drop)
    }

    pub(super) fn peers(&self, name: &str) -> io::Result<Vec<PeerStatus>> {
        parse_get(&self.exchange(name, "get=1\n\n")?)
    }

    /// Sends one request and returns the answer's lines before `errno=`;
    /// a non-zero errno becomes that error. A kept connection closed
    /// under us (wireguard-go restarted; an implementation that takes one
    /// request a connection) is replaced once: a request applies in full
    /// or not at all, and sent again changes nothing more.
    fn exchange(&self, name: &str, request: &str) -> io::Result<Vec<String>> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut sock) = kept.take() {
            match exchange_on(&mut sock, request) {
                Err(e) if closed(&e) => {}
                Err(e) => return Err(e),
                Ok(answer) => {
                    *kept = Some(sock);
                    return answer;
                }
            }
        }
        let mut sock = BufReader::new(connect(name)?);
        let answer = exchange_on(&mut sock, request)?;
        *kept = Some(sock);
        answer
    }
}

/// A new connection to `name`'s UAPI socket.
fn connect(name: &str) -> io::Result<UnixStream> {
    let sock = UnixStream::connect(socket_path(name)).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => super::gone(name),
        _ => context(
            format_args!("connecting to {}", socket_path(name).display()),
            e,
        ),
    })?;
    sock.set_read_timeout(Some(TIMEOUT))?;
    sock.set_write_timeout(Some(TIMEOUT))?;
    Ok(sock)
}

/// Whether an error says the other end closed the connection.
fn closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// One request on `sock`, and its whole answer, through the blank line
/// after `errno=`, so that the connection is ready for the next. The outer
/// error is the connection's; the inner, wireguard-go's answer.
fn exchange_on(
    sock: &mut BufReader<UnixStream>,
    request: &str,
) -> io::Result<io::Result<Vec<String>>> {
    let eof = || {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "wireguard-go closed the UAPI socket mid-answer",
        )
    };
    sock.get_ref().write_all(request.as_bytes())?;
    let mut reader = sock.take(MAX_ANSWER);
    let mut lines = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(eof());
        }
        let text = line.trim_end_matches('\n');
        let Some(code) = text.strip_prefix("errno=") else {
            lines.push(text.to_owned());
            continue;
        };
        let code = parse_errno(code)?;
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(eof());
        }
        return Ok(match code {
            0 => Ok(lines),
            code => Err(io::Error::from_raw_os_error(code)),
        });
    }
}

/// wireguard-go sends a negative errno, the protocol's text a positive
/// one: either is the same error.
fn parse_errno(code: &str) -> io::Result<i32> {
    code.parse::<i32>()
        .map(i32::wrapping_abs)
        .map_err(|_| invalid(format!("wireguard-go answered errno={code}")))
}

/// Removing the socket makes wireguard-go exit (it watches it); returns
/// the process that served it, for [`wait_for_exit`].
pub(super) fn delete(name: &str) -> io::Result<Option<libc::pid_t>> {
    let pid = server_pid(name);
    match std::fs::remove_file(socket_path(name)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(pid),
    }
}

/// The wireguard-go serving `name`: the process whose arguments are
/// `PROGRAM NAME`. (Not the UAPI socket's peer credentials: those name the
/// parent that created the socket and exited when it daemonised.)
fn server_pid(name: &str) -> Option<libc::pid_t> {
    let program = implementation();
    let program = program.rsplit('/').next().unwrap_or(&program).as_bytes();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: libc::pid_t = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let mut args = cmdline.split(|&b| b == 0);
            let ours = args.next()?.ends_with(program) && args.next()? == name.as_bytes();
            ours.then_some(pid)
        })
}

/// Waits (at most `limit`) until process `pid` has exited. A wireguard-go
/// still shutting down removes its socket path when it goes, which would
/// be the socket of a wireguard-go started for the same name meanwhile
/// (a daemon restarting): so a deletion returns only once it is gone.
pub(super) fn wait_for_exit(pid: libc::pid_t, limit: Duration) {
    // SAFETY: pidfd_open takes a pid and flags; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    if fd < 0 {
        return; // already gone (or a kernel without pidfds: nothing to wait on)
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // A pidfd is readable once the process exited.
    // SAFETY: poll on one pollfd that lives across the call.
    if unsafe { libc::poll(&mut poll, 1, limit.as_millis() as libc::c_int) } == 0 {
        log::warn!("wireguard-go (pid {pid}) has not exited after {limit:?}");
    }
}

/// A `set=1` request. `replace_allowed_ips` comes before the allowed IPs,
/// as it applies in order; without `endpoint` the old one stays.
pub(super) fn set_request(change: &Change<'_>) -> String {
    let mut out = String::from("set=1\n");
    // Writing to a String cannot fail.
    let _ = (|| -> std::fmt::Result {
        if let Some((private_key, port)) = change.interface {
            writeln!(out, "private_key={}", to_hex(private_key))?;
            writeln!(out, "listen_port={port}")?;
        }
        match &change.peer {
            None => {}
            Some(PeerChange::Remove(key)) => {
                writeln!(out, "public_key={}\nremove=true", to_hex(key))?;
            }
            Some(PeerChange::Set(peer)) => {
                writeln!(out, "public_key={}", to_hex(&peer.public_key))?;
                if let Some(endpoint) = peer.endpoint {
                    writeln!(out, "endpoint={endpoint}")?;
                }
                let keepalive = peer.persistent_keepalive.unwrap_or(0);
                writeln!(out, "persistent_keepalive_interval={keepalive}")?;
                writeln!(out, "replace_allowed_ips=true")?;
                for net in &peer.allowed_ips {
                    writeln!(out, "allowed_ip={net}")?;
                }
            }
        }
        Ok(())
    })();
    out.push('\n');
    out
}

/// The peers in the lines of a `get=1` answer. Interface lines and keys
/// this version does not know are skipped; a malformed value is an error.
pub(super) fn parse_get(lines: &[String]) -> io::Result<Vec<PeerStatus>> {
    let mut peers: Vec<PeerStatus> = Vec::new();
    // The handshake's seconds and nanoseconds come on two lines.
    let mut handshake = (0u64, 0u32);
    let bad = |line: &str| invalid(format!("wireguard-go answered {line:?}"));
    let finish = |peer: Option<&mut PeerStatus>, (secs, nanos): (u64, u32)| {
        if let Some(peer) = peer {
            if (secs, nanos) != (0, 0) {
                peer.last_handshake =
                    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos));
            }
        }
    };
    for line in lines {
        let (key, value) = line.split_once('=').ok_or_else(|| bad(line))?;
        if key == "public_key" {
            finish(peers.last_mut(), handshake);
            handshake = (0, 0);
            peers.push(PeerStatus {
                public_key: from_hex(value).ok_or_else(|| bad(line))?,
                ..PeerStatus::default()
            });
            continue;
        }
        let Some(peer) = peers.last_mut() else {
            continue; // private_key, listen_port, fwmark: the interface's
        };
        match key {
            "endpoint" => match value.parse::<SocketAddr>() {
                Ok(endpoint) => peer.endpoint = Some(endpoint),
                // E.g. a link-local address with a zone name.
                Err(_) => debug!("wireguard-go peer endpoint {value:?} not understood"),
            },
            "allowed_ip" => peer
                .allowed_ips
                .push(value.parse::<IpNet>().map_err(|_| bad(line))?),
            "rx_bytes" => peer.rx_bytes = value.parse().map_err(|_| bad(line))?,
            "tx_bytes" => peer.tx_bytes = value.parse().map_err(|_| bad(line))?,
            "persistent_keepalive_interval" => {
                let seconds: u16 = value.parse().map_err(|_| bad(line))?;
                peer.persistent_keepalive = (seconds != 0).then_some(seconds);
            }
            "last_handshake_time_sec" => handshake.0 = value.parse().map_err(|_| bad(line))?,
            "last_handshake_time_nsec" => {
                handshake.1 = value
                    .parse()
                    .ok()
                    .filter(|&n| n < 1_000_000_000)
                    .ok_or_else(|| bad(line))?
            }
            _ => {} // preshared_key, protocol_version, newer keys
        }
    }
    finish(peers.last_mut(), handshake);
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Peer;

    #[test]
    fn set_requests() {
        let private = [0x11; 32];
        let peer = Peer {
            public_key: [0xab; 32],
            endpoint: Some("[::1]:51998".parse().unwrap()),
            allowed_ips: vec![
                "10.0.1.0/24".parse().unwrap(),
                "fd00:1::/64".parse().unwrap(),
            ],
            persistent_keepalive: Some(25),
        };
        let req = set_request(&Change {
            interface: Some((&private, 51811)),
            peer: Some(PeerChange::Set(&peer)),
        });
        assert_eq!(
            req,
            format!(
                "set=1\nprivate_key={}\nlisten_port=51811\npublic_key={}\n\
                 endpoint=[::1]:51998\npersistent_keepalive_interval=25\n\
                 replace_allowed_ips=true\nallowed_ip=10.0.1.0/24\nallowed_ip=fd00:1::/64\n\n",
                "11".repeat(32),
                "ab".repeat(32)
            )
        );
        let req = set_request(&Change {
            interface: None,
            peer: Some(PeerChange::Remove(&[0xcd; 32])),
        });
        assert_eq!(
            req,
            format!("set=1\npublic_key={}\nremove=true\n\n", "cd".repeat(32))
        );
        assert_eq!(parse_errno("-22").unwrap(), 22);
        assert_eq!(parse_errno("22").unwrap(), 22);
        assert!(parse_errno("x").is_err());
    }

    /// A `get=1` answer captured from wireguard-go v0.0.20220316 (two
    /// interfaces on loopback after a handshake, one peer without), up to
    /// its `errno=0`.
    const CAPTURED: &str = include_str!("uapi_get.txt");

    fn lines(text: &str) -> Vec<String> {
        text.lines()
            .take_while(|l| !l.starts_with("errno="))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn answers_on_one_connection_are_read_whole_one_after_the_other() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        (&theirs)
            .write_all(b"a=1\nerrno=0\n\nerrno=-22\n\nb=2\nerrno=0\n\nc=3\n")
            .unwrap();
        let mut ours = BufReader::new(ours);
        let mut answer = |request| exchange_on(&mut ours, request);
        assert_eq!(answer("get=1\n\n").unwrap().unwrap(), ["a=1"]);
        let refused = answer("set=1\n\n").unwrap().unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(answer("get=1\n\n").unwrap().unwrap(), ["b=2"]);
        // Closed mid-answer: the connection's error, one to connect again on.
        drop(theirs);
        let e = answer("get=1\n\n").unwrap_err();
        assert!(closed(&e), "{e}");
    }

    #[test]
    fn parse_captured_get() {
        let peers = parse_get(&lines(CAPTURED)).unwrap();
        assert_eq!(peers.len(), 2, "{peers:?}");
        let p = &peers[0];
        assert_eq!(p.endpoint, Some("127.0.0.1:51813".parse().unwrap()));
        assert_eq!(p.allowed_ips, ["10.99.0.2/32".parse::<IpNet>().unwrap()]);
        assert_eq!(p.persistent_keepalive, Some(1));
        assert!(p.last_handshake.is_some());
        assert!(p.rx_bytes > 0 && p.tx_bytes > 0);
        let q = &peers[1];
        assert_eq!(q.endpoint, None);
        assert_eq!(q.last_handshake, None);
        assert_eq!(q.persistent_keepalive, None);
        assert_eq!(q.allowed_ips.len(), 2);
        assert_eq!((q.rx_bytes, q.tx_bytes), (0, 0));
    }

    #[test]
    fn malformed_answers_are_errors() {
        let key = format!("public_key={}", "ab".repeat(32));
        for bad in [
            "no equals sign",
            "public_key=abc",
            &format!("{key}\nallowed_ip=10.0.0.0/33"),
            &format!("{key}\nrx_bytes=-1"),
            &format!("{key}\npersistent_keepalive_interval=70000"),
            &format!("{key}\nlast_handshake_time_nsec=1000000000"),
        ] {
            assert!(parse_get(&lines(bad)).is_err(), "{bad}");
        }
        // Interface lines before any peer and unknown keys are skipped.
        let ok = format!(
            "private_key={}\nlisten_port=1\nfuture=1\n{key}\nfuture=2",
            "11".repeat(32)
        );
        assert_eq!(parse_get(&lines(&ok)).unwrap().len(), 1);
    }
}
