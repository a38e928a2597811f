//! The relay: LISP's RTR role (RFC 9735) for WireGuard. Two nodes that
//! cannot reach each other directly (each behind a NAT that picks a new
//! port per destination, or a firewall between them) send their WireGuard
//! datagrams to it, and it forwards them as they are: WireGuard encrypts
//! them end to end, so the relay cannot read them.
//!
//! Never an open relay: it forwards only for a pair of sites the
//! map-server chose to relay ([`Relay::allocate`]). Each pair gets two UDP
//! ports from the configured range, one per side. What arrives at one
//! side's port from the address that side sends from leaves from the other
//! side's port to the address the other side sends from, so each node sees
//! its peer at the port it was told, and its NAT lets the answers in.
//! A side's address is learnt from its first datagram (its NAT's mapping
//! towards the relay is known to no one before), and learnt again once it
//! fell silent for [`REBIND_AFTER`] (a node that roamed, a NAT that dropped
//! its binding). A datagram for a side not heard from yet is dropped: the
//! map-server gives the starting side the relay only after the other side
//! reached out, and the starter's agent sends a dropped handshake again.
//! Pairs idle for the configured time are freed.

use crate::db::SiteId;
use polling::{Event, Events, PollMode, Poller};
use portable_atomic::{AtomicU64, Ordering::Relaxed};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A side whose address sent nothing for this long takes a datagram from
/// a new address as its own: longer than the gap between WireGuard's
/// handshake attempts while a session is up (so that two addresses cannot
/// take turns), much shorter than the agent's wait before it asks the
/// map-server again about a silent peer (20 s).
pub const REBIND_AFTER: Duration = Duration::from_secs(3);

/// Largest datagram forwarded: a WireGuard message on a 9000-byte MTU
/// path, with room to spare.
const MAX_DATAGRAM: usize = 9216;

/// Datagrams read from one port before they are sent on together.
const BATCH: usize = 32;

/// Most bytes of one segmented send (UDP's limit for a datagram, which a
/// segmented send is until the stack cuts it).
const MAX_SEGMENTED: usize = 65_000;

/// `setsockopt`/cmsg level and type of UDP segmentation offload (Linux
/// 4.18, `linux/udp.h`); not in every libc target of the crate.
const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;

/// The `[relay]` section: where nodes reach the relay, and its ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// The address nodes send to (the map-server box's, as they reach it).
    pub address: IpAddr,
    /// UDP ports it allocates, two per relayed pair.
    pub ports: RangeInclusive<u16>,
    /// A pair that forwarded nothing for this long is freed.
    pub idle: Duration,
}

/// The two ports of a relayed pair, each named for the side that sends to
/// it, in the order the pair was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// Where the first site of the pair sends to (and hears the other at).
    pub first: u16,
    pub second: u16,
}

/// What the relay counts.
#[derive(Default)]
pub struct RelayMetrics {
    pub pairs: AtomicU64,
    pub allocated: AtomicU64,
    pub expired: AtomicU64,
    /// No free port pair (every one forwarding lately).
    pub full: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// For a side not heard from yet.
    pub unbound: AtomicU64,
    /// From an address other than the side's own while it is live.
    pub foreign: AtomicU64,
}

impl RelayMetrics {
    /// The Prometheus text format, after the map-server's.
    pub fn render(&self, out: &mut String) {
        let lines: [(&str, &str, &str, &AtomicU64); 7] = [
            (
                "relay_pairs",
                "gauge",
                "Pairs of sites relayed now.",
                &self.pairs,
            ),
            (
                "relay_pairs_allocated_total",
                "counter",
                "Pairs given relay ports.",
                &self.allocated,
            ),
            (
                "relay_pairs_expired_total",
                "counter",
                "Relayed pairs freed when idle.",
                &self.expired,
            ),
            (
                "relay_full_total",
                "counter",
                "Pairs refused a relay: no free ports.",
                &self.full,
            ),
            (
                "relay_forwarded_packets_total",
                "counter",
                "Datagrams forwarded.",
                &self.packets,
            ),
            (
                "relay_forwarded_bytes_total",
                "counter",
                "Bytes forwarded.",
                &self.bytes,
            ),
            (
                "relay_unbound_dropped_total",
                "counter",
                "Datagrams dropped: the other side has not been heard from yet.",
                &self.unbound,
            ),
        ];
        for (name, kind, help, value) in lines {
            let _ = writeln!(out, "# HELP lispguard_{name} {help}");
            let _ = writeln!(out, "# TYPE lispguard_{name} {kind}");
            let _ = writeln!(out, "lispguard_{name} {}", value.load(Relaxed));
        }
        let name = "relay_foreign_dropped_total";
        let _ = writeln!(
            out,
            "# HELP lispguard_{name} Datagrams dropped: not from the address the side sends from."
        );
        let _ = writeln!(out, "# TYPE lispguard_{name} counter");
        let _ = writeln!(out, "lispguard_{name} {}", self.foreign.load(Relaxed));
    }
}

/// The relay: its ports, shared by the map-server's engine (which
/// allocates) and the thread that forwards.
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

struct Shared {
    config: RelayConfig,
    poller: Poller,
    table: Mutex<Table>,
    metrics: Arc<RelayMetrics>,
}

#[derive(Default)]
struct Table {
    pairs: HashMap<(SiteId, SiteId), u64>,
    allocations: HashMap<u64, Allocation>,
    used: HashSet<u16>,
    next_id: u64,
}

struct Allocation {
    pair: (SiteId, SiteId),
    sides: [Side; 2],
    /// Last datagram forwarded.
    active: Instant,
}

struct Side {
    socket: UdpSocket,
    port: u16,
    /// Where this side sends from, and when it last did.
    at: Option<(SocketAddr, Instant)>,
}

impl Relay {
    /// Starts the relay's thread; binds nothing until a pair is allocated.
    pub fn start(config: RelayConfig, metrics: Arc<RelayMetrics>) -> io::Result<Relay> {
        let shared = Arc::new(Shared {
            config,
            poller: Poller::new()?,
            table: Mutex::new(Table::default()),
            metrics,
        });
        let relay = Relay { shared };
        let forwarding = relay.clone();
        std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || forwarding.forward())?;
        Ok(relay)
    }

    pub fn address(&self) -> IpAddr {
        self.shared.config.address
    }

    pub fn metrics(&self) -> &RelayMetrics {
        &self.shared.metrics
    }

    /// The ports of the pair `a`, `b` if it is relayed now.
    pub fn ports(&self, a: SiteId, b: SiteId) -> Option<Ports> {
        let table = self.table();
        table
            .allocation(a, b)
            .map(|allocation| allocation.ports_for(a))
    }

    /// The pair's ports: those it has, else two free ones (bound now, so
    /// that the first datagrams find them). None when every port is taken
    /// by a pair that forwarded lately.
    pub fn allocate(&self, a: SiteId, b: SiteId, now: Instant) -> Option<Ports> {
        let mut table = self.table();
        if let Some(allocation) = table.allocation(a, b) {
            return Some(allocation.ports_for(a));
        }
        let sides = loop {
            match [self.bind(&mut table), self.bind(&mut table)] {
                [Some(one), Some(two)] => break [one, two],
                [one, two] => {
                    for side in one.into_iter().chain(two) {
                        table.used.remove(&side.port);
                    }
                    let idle = self.shared.config.idle / 2;
                    if !self.evict_idlest(&mut table, now, idle) {
                        self.shared.metrics.full.fetch_add(1, Relaxed);
                        log::warn!("relay: no free ports for another pair");
                        return None;
                    }
                }
            }
        };
        let id = table.next_id;
        table.next_id += 1;
        for (i, side) in sides.iter().enumerate() {
            let key = id as usize * 2 + i;
            // SAFETY: the socket is deleted from the poller before it is
            // closed (`Table::free`).
            let added = unsafe {
                self.shared.poller.add_with_mode(
                    &side.socket,
                    Event::readable(key),
                    PollMode::Level,
                )
            };
            if let Err(e) = added {
                log::error!("relay: cannot watch port {}: {e}", side.port);
            }
        }
        let pair = ordered(a, b);
        let allocation = Allocation {
            pair,
            sides,
            active: now,
        };
        let ports = allocation.ports_for(a);
        log::info!(
            "relay: sites {} and {} relayed at ports {} and {}",
            pair.0,
            pair.1,
            allocation.sides[0].port,
            allocation.sides[1].port
        );
        table.allocations.insert(id, allocation);
        table.pairs.insert(pair, id);
        self.shared.metrics.allocated.fetch_add(1, Relaxed);
        self.shared.metrics.pairs.fetch_add(1, Relaxed);
        Some(ports)
    }

    /// Frees the ports of every pair `site` is in (it was revoked).
    pub fn release_site(&self, site: SiteId) {
        let mut table = self.table();
        let ids: Vec<u64> = table
            .pairs
            .iter()
            .filter(|((a, b), _)| *a == site || *b == site)
            .map(|(_, id)| *id)
            .collect();
        for id in ids {
            self.free(&mut table, id);
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.shared.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A socket on a free port of the range, starting at a random one.
    fn bind(&self, table: &mut Table) -> Option<Side> {
        let range = &self.shared.config.ports;
        let count = u32::from(range.end() - range.start()) + 1;
        let start = fastrand::u32(..count);
        let any = match self.shared.config.address {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        for k in 0..count {
            let port = range.start() + ((start + k) % count) as u16;
            if table.used.contains(&port) {
                continue;
            }
            // Another program may hold it: then the next.
            let Ok(socket) = UdpSocket::bind((any, port)) else {
                continue;
            };
            if socket.set_nonblocking(true).is_err() {
                continue;
            }
            table.used.insert(port);
            return Some(Side {
                socket,
                port,
                at: None,
            });
        }
        None
    }

    /// Frees the pair that forwarded least lately, if it was idle for
    /// `idle`.
    fn evict_idlest(&self, table: &mut Table, now: Instant, idle: Duration) -> bool {
        let idlest = table
            .allocations
            .iter()
            .min_by_key(|(id, a)| (a.active, **id))
            .filter(|(_, a)| now.saturating_duration_since(a.active) >= idle)
            .map(|(id, _)| *id);
        idlest.is_some_and(|id| {
            self.free(table, id);
            true
        })
    }

    fn free(&self, table: &mut Table, id: u64) {
        let Some(allocation) = table.allocations.remove(&id) else {
            return;
        };
        table.pairs.remove(&allocation.pair);
        for side in &allocation.sides {
            let _ = self.shared.poller.delete(&side.socket);
            table.used.remove(&side.port);
        }
        self.shared.metrics.pairs.fetch_sub(1, Relaxed);
    }

    /// The forwarding thread: waits for datagrams on every side's port,
    /// and frees idle pairs.
    fn forward(self) {
        let mut events = Events::new();
        let mut buf = vec![0u8; BATCH * MAX_DATAGRAM];
        let idle = self.shared.config.idle;
        let sweep_every = (idle / 4).max(Duration::from_secs(1));
        let mut next_sweep = Instant::now() + sweep_every;
        loop {
            events.clear();
            let wait = next_sweep.saturating_duration_since(Instant::now());
            if let Err(e) = self.shared.poller.wait(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("relay: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            let now = Instant::now();
            let mut table = self.table();
            for event in events.iter() {
                let (id, side) = ((event.key / 2) as u64, event.key % 2);
                if let Some(allocation) = table.allocations.get_mut(&id) {
                    allocation.drain(side, now, &mut buf, &self.shared.metrics);
                }
            }
            if now >= next_sweep {
                next_sweep = now + sweep_every;
                let expired: Vec<u64> = table
                    .allocations
                    .iter()
                    .filter(|(_, a)| now.saturating_duration_since(a.active) >= idle)
                    .map(|(id, _)| *id)
                    .collect();
                for id in expired {
                    self.free(&mut table, id);
                    self.shared.metrics.expired.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

impl Table {
    /// The allocation of the pair `a`, `b`, if it is relayed now.
    fn allocation(&self, a: SiteId, b: SiteId) -> Option<&Allocation> {
        self.allocations.get(self.pairs.get(&ordered(a, b))?)
    }
}

impl Allocation {
    fn ports_for(&self, first: SiteId) -> Ports {
        let [a, b] = [self.sides[0].port, self.sides[1].port];
        if first == self.pair.0 {
            Ports {
                first: a,
                second: b,
            }
        } else {
            Ports {
                first: b,
                second: a,
            }
        }
    }

    /// Forwards everything waiting at side `from`'s port: read in
    /// batches, and the datagrams of a batch of one size sent on as one
    /// segmented send (UDP GSO), so that the stack between here and the
    /// other side is crossed once per run, not once per datagram (what a
    /// bulk transfer through the relay costs is nearly all that).
    fn drain(&mut self, from: usize, now: Instant, buf: &mut [u8], metrics: &RelayMetrics) {
        let to = 1 - from;
        loop {
            let mut lengths: heapless::Vec<usize, BATCH> = heapless::Vec::new();
            let mut used = 0;
            let mut more = true;
            while !lengths.is_full() && used + MAX_DATAGRAM <= buf.len() {
                let slot = &mut buf[used..used + MAX_DATAGRAM];
                let (len, source) = match self.sides[from].socket.recv_from(slot) {
                    Ok(received) => received,
                    Err(e) => {
                        if e.kind() != io::ErrorKind::WouldBlock {
                            log::debug!("relay: port {}: {e}", self.sides[from].port);
                        }
                        more = false;
                        break;
                    }
                };
                if self.take_from(from, source, now, metrics) {
                    used += len;
                    let _ = lengths.push(len);
                }
            }
            let Some((destination, _)) = self.sides[to].at else {
                metrics.unbound.fetch_add(lengths.len() as u64, Relaxed);
                if more {
                    continue;
                }
                return;
            };
            self.send_on(to, destination, &buf[..used], &lengths, now, metrics);
            if !more {
                return;
            }
        }
    }

    /// Whether a datagram from `source` at side `from` is the side's own
    /// (learnt, or learnt again after [`REBIND_AFTER`] of silence).
    fn take_from(
        &mut self,
        from: usize,
        source: SocketAddr,
        now: Instant,
        metrics: &RelayMetrics,
    ) -> bool {
        let side = &mut self.sides[from];
        match side.at {
            Some((at, last)) if at != source => {
                if now.saturating_duration_since(last) < REBIND_AFTER {
                    metrics.foreign.fetch_add(1, Relaxed);
                    return false;
                }
                log::info!(
                    "relay: port {} now sends from {source} (was {at})",
                    side.port
                );
            }
            None => log::debug!("relay: port {} sends from {source}", side.port),
            _ => {}
        }
        side.at = Some((source, now));
        true
    }

    /// Sends `bytes`, the datagrams of `lengths` one after the other, from
    /// side `to`'s port to `destination`: each run of one size (and the
    /// shorter one after it) as one segmented send, the rest one by one.
    fn send_on(
        &mut self,
        to: usize,
        destination: SocketAddr,
        bytes: &[u8],
        lengths: &[usize],
        now: Instant,
        metrics: &RelayMetrics,
    ) {
        let socket = &self.sides[to].socket;
        let (mut at, mut i) = (0, 0);
        while i < lengths.len() {
            let size = lengths[i];
            // The run: datagrams of `size`, then one shorter at most.
            let mut n = 1;
            while i + n < lengths.len()
                && lengths[i + n - 1] == size
                && lengths[i + n] <= size
                && (n + 1) * size <= MAX_SEGMENTED
            {
                n += 1;
            }
            let run: usize = lengths[i..i + n].iter().sum();
            let segmented = n > 1 && SEGMENTING.load(Relaxed);
            let mut sent = match segmented {
                false => socket.send_to(&bytes[at..at + run], destination),
                true => send_segmented(socket, destination, &bytes[at..at + run], size),
            };
            if segmented && sent.as_ref().is_err_and(unsupported) {
                log::warn!("relay: this kernel cannot segment UDP sends: one datagram per send");
                SEGMENTING.store(false, Relaxed);
            }
            if !SEGMENTING.load(Relaxed) && n > 1 {
                sent = lengths[i..i + n]
                    .iter()
                    .scan(at, |start, len| {
                        let datagram = &bytes[*start..*start + len];
                        *start += len;
                        Some(socket.send_to(datagram, destination))
                    })
                    .collect::<io::Result<Vec<usize>>>()
                    .map(|sent| sent.iter().sum());
            }
            match sent {
                Ok(_) => {
                    self.active = now;
                    metrics.packets.fetch_add(n as u64, Relaxed);
                    metrics.bytes.fetch_add(run as u64, Relaxed);
                }
                Err(e) => log::debug!("relay: to {destination}: {e}"),
            }
            at += run;
            i += n;
        }
    }
}

/// Whether segmented sends work here (until one fails as unsupported:
/// a kernel before 4.18).
static SEGMENTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// What a kernel without UDP segmentation answers a segmented send.
fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP | libc::EIO)
    )
}

/// One send of `bytes` cut by the stack into datagrams of `segment`
/// bytes (the last may be shorter): UDP_SEGMENT.
fn send_segmented(
    socket: &UdpSocket,
    to: SocketAddr,
    bytes: &[u8],
    segment: usize,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let address = socket2::SockAddr::from(to);
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // Room for one cmsg of a u16, aligned as cmsghdr wants.
    let mut control = [0u64; 4];
    // SAFETY: a zeroed msghdr is valid; every pointer set below outlives
    // the sendmsg call, and the cmsg is written inside `control`, whose
    // size CMSG_SPACE(2) does not exceed (32 bytes).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = address.as_ptr() as *mut libc::c_void;
        msg.msg_namelen = address.len();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = libc::CMSG_SPACE(2) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::Error::other("no room for a control message"));
        }
        (*cmsg).cmsg_level = SOL_UDP;
        (*cmsg).cmsg_type = UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(2) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut u16, segment as u16);
        let sent = libc::sendmsg(socket.as_raw_fd(), &msg, 0);
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

/// A pair's key: the same whichever side asks.
fn ordered(a: SiteId, b: SiteId) -> (SiteId, SiteId) {
    (a.min(b), a.max(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ports `offset..=offset + len - 1` of this test process's own block
    /// (below the ephemeral range): test runs side by side do not share
    /// them.
    fn ports(offset: u16, len: u16) -> RangeInclusive<u16> {
        let base = 20000 + (std::process::id() % 700) as u16 * 16 + offset;
        base..=base + len - 1
    }

    fn relay(ports: RangeInclusive<u16>) -> Relay {
        let config = RelayConfig {
            address: Ipv4Addr::LOCALHOST.into(),
            ports,
            idle: Duration::from_secs(60),
        };
        Relay::start(config, Arc::default()).unwrap()
    }

    fn node() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    /// Waits until the relay thread counted `n` (5 s at most).
    fn counted(counter: &AtomicU64, n: u64) {
        let until = Instant::now() + Duration::from_secs(5);
        while counter.load(Relaxed) < n {
            assert!(Instant::now() < until, "the relay did not count it");
            std::thread::yield_now();
        }
    }

    fn receive(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buf = [0; 64];
        let (len, from) = socket.recv_from(&mut buf).unwrap();
        (buf[..len].to_vec(), from)
    }

    #[test]
    fn a_pair_hears_each_other_at_its_own_port_once_both_sent() {
        let relay = relay(ports(0, 2));
        let ports = relay.allocate(1, 2, Instant::now()).unwrap();
        assert_ne!(ports.first, ports.second);
        assert_eq!(relay.ports(2, 1).unwrap().first, ports.second);
        let (a, b) = (node(), node());
        // Before b was heard from, a's datagram has nowhere to go.
        a.send_to(b"lost", at(ports.first)).unwrap();
        counted(&relay.metrics().unbound, 1);
        b.send_to(b"hello a", at(ports.second)).unwrap();
        assert_eq!(receive(&a), (b"hello a".to_vec(), at(ports.first)));
        a.send_to(b"hello b", at(ports.first)).unwrap();
        assert_eq!(receive(&b), (b"hello b".to_vec(), at(ports.second)));
        let metrics = relay.metrics();
        // Counted once sent: maybe after b received it.
        counted(&metrics.packets, 2);
        assert_eq!(metrics.unbound.load(Relaxed), 1);
    }

    #[test]
    fn a_burst_arrives_whole_and_in_order_sent_on_in_segments() {
        let relay = relay(ports(10, 2));
        let ports = relay.allocate(1, 2, Instant::now()).unwrap();
        let (a, b) = (node(), node());
        b.send_to(b"b", at(ports.second)).unwrap();
        a.send_to(b"a", at(ports.first)).unwrap();
        assert_eq!(receive(&b).0, b"a");
        // Eleven datagrams at once: ten of one size and a shorter one,
        // one segmented send if they are read in one batch.
        let burst: Vec<Vec<u8>> = (0..11u8)
            .map(|k| vec![k; if k == 10 { 40 } else { 1200 }])
            .collect();
        for datagram in &burst {
            a.send_to(datagram, at(ports.first)).unwrap();
        }
        let mut buf = [0; 2048];
        for datagram in &burst {
            let (len, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..len], from), (datagram.as_slice(), at(ports.second)));
        }
        counted(&relay.metrics().packets, 12);
    }

    #[test]
    fn another_address_cannot_take_a_side_that_is_live() {
        let relay = relay(ports(2, 2));
        let ports = relay.allocate(1, 2, Instant::now()).unwrap();
        let (a, b, intruder) = (node(), node(), node());
        b.send_to(b"b", at(ports.second)).unwrap();
        a.send_to(b"a", at(ports.first)).unwrap();
        assert_eq!(receive(&b).0, b"a");
        intruder.send_to(b"intruder", at(ports.first)).unwrap();
        counted(&relay.metrics().foreign, 1);
        a.send_to(b"a again", at(ports.first)).unwrap();
        assert_eq!(receive(&b).0, b"a again");
    }

    #[test]
    fn no_relay_for_a_pair_when_every_port_is_in_use_lately() {
        let relay = relay(ports(4, 4));
        let now = Instant::now();
        assert!(relay.allocate(1, 2, now).is_some());
        assert!(relay.allocate(3, 4, now).is_some());
        assert_eq!(relay.allocate(5, 6, now), None);
        assert_eq!(relay.metrics().full.load(Relaxed), 1);
        // Past half the idle time, the idlest pair makes room.
        let later = now + Duration::from_secs(31);
        assert!(relay.allocate(5, 6, later).is_some());
        assert_eq!(relay.ports(1, 2), None);
        assert_eq!(relay.metrics().pairs.load(Relaxed), 2);
    }

    #[test]
    fn a_released_pair_frees_its_ports() {
        let relay = relay(ports(8, 2));
        let now = Instant::now();
        let ports = relay.allocate(1, 2, now).unwrap();
        relay.release_site(2);
        assert_eq!(relay.ports(1, 2), None);
        let again = relay.allocate(3, 4, now).unwrap();
        let mut both = [again.first, again.second];
        both.sort();
        let mut before = [ports.first, ports.second];
        before.sort();
        assert_eq!(both, before);
    }
}
