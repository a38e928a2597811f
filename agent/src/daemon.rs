//! The agent at run time: brings up the WireGuard interface (the
//! map-servers as peers), the control address and the TUN device routed
//! for the overlay, then runs the engine on one thread. The event loop
//! waits on a list of sources — control socket, TUN, address events,
//! status socket, signals, the engine's deadline — each handled by one
//! short function, and carries out what the engine decides.

use crate::config::Config;
use crate::engine::{
    Agent, Counters, Effect, MapServerSettings, Outbox, PeerStats, Refusal, Settings,
};
use crate::inject::Injector;
use crate::lookup::{self, Query};
use crate::metrics;
use crate::packet::{self, Unreachable};
use crate::poll;
use crate::status::{self, Request};
use crate::tun::Tun;
use ipnet::IpNet;
use lisp::CONTROL_PORT;
use netconf::{AddressEvents, Peer, PublicKey, Rtnl, WireGuard};
use std::collections::HashSet;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Keepalive to the map-servers: keeps the NAT binding of the one socket
/// that carries control and data open. Also the keepalive of a pushed peer
/// until it answers.
const KEEPALIVE: u16 = 25;
/// How long a direct-path probe keeps the direct endpoint, watching where
/// the peer is heard from (see [`Host::probe_direct`]).
const PROBE_HOLD: Duration = Duration::from_millis(20);
/// MTU of the TUN: WireGuard's default, so that the kernel fragments (or
/// signals the path MTU) before a packet reaches the TUN; the injector
/// cannot fragment.
const TUN_MTU: u32 = 1420;
/// Entries the map-cache holds.
const CACHE_CAPACITY: usize = 4096;

/// Everything the agent set up, to carry out actions and to tear down.
struct Host {
    config: Config,
    wg: WireGuard,
    rtnl: Rtnl,
    tun: Tun,
    injector: Injector,
    control: UdpSocket,
    /// Index of the WireGuard interface: control messages are taken only
    /// from it (WireGuard vouches for their source; the underlay does not).
    tunnel_index: u32,
    /// Source address of the packets this node itself sends into the
    /// overlay: one of its EIDs, never its control address (peers accept
    /// only the EIDs they were told of).
    source: Option<IpAddr>,
    /// The map-servers as WireGuard peers, as configured.
    map_servers: Vec<Peer>,
    /// ICMP errors may come from this node's own address (see
    /// [`icmp_from_own_address`]).
    icmp_own_source: bool,
    routes: HashSet<IpNet>,
}

fn host_prefix(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

/// The address this node sends from in the overlay: a mobile node's host
/// EID, or an xTR's own address within its EID prefixes.
fn overlay_source(config: &Config, rtnl: &Rtnl) -> io::Result<Option<IpAddr>> {
    let eids: Vec<IpNet> = config.eids.iter().map(|e| e.prefix).collect();
    if let Some(host) = eids.iter().find(|p| p.prefix_len() == p.max_prefix_len()) {
        return Ok(Some(host.addr()));
    }
    Ok(rtnl
        .addresses()?
        .into_iter()
        .map(|(_, _, a)| a.addr())
        .find(|a| eids.iter().any(|p| p.contains(a))))
}

/// Lets the kernel take ICMP errors from this node's own address written
/// into the TUN: a packet arriving with a local source is dropped as a
/// martian unless the interface accepts local sources (IPv4; this only
/// concerns the TUN, which only the agent writes). Under strict reverse
/// path filtering (rp_filter 1) it is dropped all the same: then the
/// errors come from the unreachable destination, as before.
fn icmp_from_own_address(tun: &str) -> bool {
    let conf = |interface: &str, key: &str| format!("/proc/sys/net/ipv4/conf/{interface}/{key}");
    if let Err(e) = std::fs::write(conf(tun, "accept_local"), "1") {
        log::warn!("{tun}: accept_local: {e}; ICMP errors come from the destination's address");
        return false;
    }
    let strict = ["all", tun]
        .iter()
        .any(|i| std::fs::read_to_string(conf(i, "rp_filter")).is_ok_and(|v| v.trim() == "1"));
    if strict {
        log::warn!(
            "strict reverse path filtering (rp_filter 1): ICMP errors come from the destination's address"
        );
    }
    !strict
}

/// No IPv6 link-local address on the TUN (address generation "none",
/// set before it goes up): without one the kernel sends no router
/// solicitations, duplicate address detection or MLD reports into it, so
/// only overlay traffic reaches the agent. Routes through the TUN need no
/// address. Without IPv6 in the kernel there is nothing to quieten.
fn quiet_ipv6(tun: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{tun}/addr_gen_mode");
    if let Err(e) = std::fs::write(&path, "1") {
        log::debug!("{path}: {e}");
    }
}

/// This node's underlay addresses: what it registers as RLOCs.
fn rlocs(config: &Config, rtnl: &Rtnl) -> io::Result<Vec<IpAddr>> {
    let ours = |a: &IpAddr| {
        *a == config.control_address
            || config.overlay.iter().any(|p| p.contains(a))
            || config.eids.iter().any(|e| e.prefix.contains(a))
    };
    Ok(rtnl
        .addresses()?
        .into_iter()
        .filter(|(_, name, _)| *name != config.interface && *name != config.tun)
        .map(|(_, _, a)| a.addr())
        .filter(|a| match a {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
            IpAddr::V6(v6) => {
                !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
            }
        })
        .filter(|a| !ours(a))
        .collect())
}

impl Host {
    fn up(config: &Config) -> io::Result<(Host, [u8; 32])> {
        let private_key = netconf::load_or_create_private_key(&config.private_key_file)?;
        let wg = WireGuard::up(
            &config.interface,
            config.backend,
            &private_key,
            config.listen_port,
        )?;
        let rtnl = Rtnl::new()?;
        rtnl.add_address(&config.interface, host_prefix(config.control_address))?;
        let source = overlay_source(config, &rtnl)?;
        // A mobile node's EID lives on the WireGuard interface, so that
        // it is a local address to send from.
        if let Some(eid) =
            source.filter(|s| config.eids.iter().any(|e| e.prefix == host_prefix(*s)))
        {
            rtnl.add_address(&config.interface, host_prefix(eid))?;
        }
        rtnl.set_up(&config.interface, None)?;
        let mut map_servers = Vec::new();
        for ms in &config.map_servers {
            let key = netconf::parse_key(&ms.public_key)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let endpoint = (ms.address.as_str(), ms.port)
                .to_socket_addrs()
                .map_err(|e| io::Error::new(e.kind(), format!("map-server {}: {e}", ms.address)))?
                .next()
                .ok_or_else(|| {
                    io::Error::other(format!("map-server {}: no address", ms.address))
                })?;
            let peer = Peer {
                public_key: key,
                endpoint: Some(endpoint),
                allowed_ips: vec![host_prefix(ms.control_address)],
                persistent_keepalive: Some(KEEPALIVE),
            };
            wg.set_peer(&peer)?;
            rtnl.add_route(host_prefix(ms.control_address), &config.interface)?;
            map_servers.push(peer);
        }
        let tun = Tun::open(&config.tun)?;
        quiet_ipv6(&config.tun);
        rtnl.set_up(&config.tun, Some(TUN_MTU))?;
        let icmp_own_source = icmp_from_own_address(&config.tun);
        for prefix in &config.overlay {
            rtnl.add_route_from(
                *prefix,
                &config.tun,
                source.filter(|s| s.is_ipv4() == prefix.addr().is_ipv4()),
            )?;
        }
        let injector = Injector::new(&config.interface)?;
        let control = UdpSocket::bind((config.control_address, CONTROL_PORT)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("LISP socket {}:{CONTROL_PORT}: {e}", config.control_address),
            )
        })?;
        netconf::udp::enable_ancillary(&control)?;
        control.set_nonblocking(true)?;
        let tunnel_index = netconf::udp::ifindex(&config.interface)?;
        let host = Host {
            config: config.clone(),
            wg,
            rtnl,
            tun,
            injector,
            control,
            tunnel_index,
            source,
            map_servers,
            icmp_own_source,
            routes: HashSet::new(),
        };
        Ok((host, private_key))
    }

    /// Carries out one of the engine's effects, its bytes in `out`.
    fn carry_out(&mut self, effect: &Effect, out: &Outbox) -> io::Result<()> {
        match effect {
            Effect::Control { to, message } => {
                self.control.send_to(out.bytes(*message), to).map(drop)
            }
            Effect::SetPeer {
                public_key,
                endpoint,
                allowed_ips,
                keepalive,
            } => {
                self.wg.set_peer(&Peer {
                    public_key: *public_key,
                    endpoint: *endpoint,
                    allowed_ips: allowed_ips.clone(),
                    persistent_keepalive: keepalive.then_some(KEEPALIVE),
                })?;
                // Logged once set: a line written wakes the log's reader,
                // which should not delay a first contact's handshake.
                let key = netconf::key_fingerprint(public_key);
                match endpoint {
                    Some(endpoint) => log::info!("peer {key} at {endpoint} for {allowed_ips:?}"),
                    None => log::info!("peer {key} for {allowed_ips:?}: its handshake will come"),
                }
                Ok(())
            }
            Effect::RemovePeer { public_key } => {
                log::info!("peer {} removed", netconf::key_fingerprint(public_key));
                self.wg.remove_peer(public_key)
            }
            Effect::ProbeDirect {
                public_key,
                direct,
                relay,
                allowed_ips,
                keepalive,
            } => self.probe_direct(*public_key, *direct, *relay, allowed_ips, *keepalive),
            Effect::Rehandshake { map_server } => {
                let Some(peer) = self.map_server(*map_server) else {
                    return Ok(());
                };
                log::debug!("map-server {map_server}: new WireGuard handshake");
                self.wg.remove_peer(&peer.public_key)?;
                self.wg.set_peer(peer)
            }
            Effect::SetMapServer { map_server } => match self.map_server(*map_server) {
                Some(peer) => self.wg.set_peer(peer),
                None => Ok(()),
            },
            // The daemon reads them, and answers lookups, where it carries
            // out the outbox.
            Effect::ReadPeerStats | Effect::LookedUp { .. } => Ok(()),
            Effect::AddRoute(prefix) => {
                let source = self
                    .source
                    .filter(|s| s.is_ipv4() == prefix.addr().is_ipv4());
                self.rtnl
                    .add_route_from(*prefix, &self.config.interface, source)?;
                self.routes.insert(*prefix);
                Ok(())
            }
            Effect::RemoveRoute(prefix) => {
                self.routes.remove(prefix);
                self.rtnl.remove_route(*prefix, &self.config.interface)
            }
            Effect::Forward(packet) => self.injector.send(out.bytes(*packet)),
            Effect::Refuse { packet, why } => self.refuse(out.bytes(*packet), *why),
        }
    }

    /// The map-server's WireGuard peer, as configured.
    fn map_server(&self, control_address: IpAddr) -> Option<&Peer> {
        self.map_servers
            .iter()
            .find(|p| p.allowed_ips.contains(&host_prefix(control_address)))
    }

    /// Answers `packet`'s source with an ICMP error through the TUN.
    fn refuse(&self, packet: &[u8], why: Refusal) -> io::Result<()> {
        let Some(original) = packet::addresses(packet) else {
            return Ok(());
        };
        let why = match why {
            Refusal::NoMapping => Unreachable::Host,
            Refusal::Denied => Unreachable::AdminProhibited,
        };
        let mut icmp = [0u8; 1280];
        let from = self.icmp_source(original.destination);
        match packet::icmp_unreachable(packet, from, why, &mut icmp) {
            Some(len) => self.tun.send(&icmp[..len]),
            None => Ok(()),
        }
    }

    /// The source of an ICMP error about `destination`: this node's own
    /// address (RFC 1812 4.3.2.4) — an xTR's address on the LAN facing
    /// the host, a mobile node's EID — of the same family; the control
    /// address else; the unreachable destination only when this node has
    /// no address of that family.
    fn icmp_source(&self, destination: IpAddr) -> IpAddr {
        let family = |a: &IpAddr| a.is_ipv4() == destination.is_ipv4();
        if !self.icmp_own_source && destination.is_ipv4() {
            return destination;
        }
        self.source
            .filter(family)
            .or(Some(self.config.control_address).filter(family))
            .unwrap_or(destination)
    }

    /// See [`Effect::ProbeDirect`]: keepalives off, then on (which sends
    /// one at once) with the direct endpoint, which is kept for
    /// [`PROBE_HOLD`] to see where the peer is heard from next. Heard
    /// there: the direct path works both ways, it stays. Heard through the
    /// relay: WireGuard went back to it by itself. Not heard: the relay
    /// again (if the keepalive got through, the other side sends directly
    /// from now on, and WireGuard follows when that arrives). Packets this
    /// side sends meanwhile take the direct path: lost if it fails. Nothing
    /// is done when WireGuard has left the relay already.
    fn probe_direct(
        &mut self,
        public_key: PublicKey,
        direct: SocketAddr,
        relay: SocketAddr,
        allowed_ips: &[IpNet],
        keepalive: bool,
    ) -> io::Result<()> {
        let read = |wg: &WireGuard| -> io::Result<Option<(Option<SocketAddr>, u64)>> {
            let peers = wg.peers()?;
            let peer = peers.iter().find(|p| p.public_key == public_key);
            Ok(peer.map(|p| (p.endpoint, p.rx_bytes)))
        };
        if read(&self.wg)?.and_then(|(endpoint, _)| endpoint) != Some(relay) {
            return Ok(());
        }
        let mut peer = Peer {
            public_key,
            endpoint: Some(direct),
            allowed_ips: allowed_ips.to_vec(),
            persistent_keepalive: None,
        };
        let key = netconf::key_fingerprint(&public_key);
        self.wg.set_peer(&peer)?;
        peer.persistent_keepalive = Some(KEEPALIVE);
        self.wg.set_peer(&peer)?;
        // Counted from here: what came through the relay before (while
        // the endpoint was being set) says nothing of the direct path.
        let Some((Some(_), before)) = read(&self.wg)? else {
            return Ok(());
        };
        let until = Instant::now() + PROBE_HOLD;
        while Instant::now() < until {
            match read(&self.wg)? {
                Some((Some(now), rx)) if now == direct && rx > before => {
                    log::debug!("peer {key}: heard on the direct path {direct}");
                    return Ok(());
                }
                Some((Some(now), _)) if now == direct => {}
                _ => return Ok(()),
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        log::debug!("peer {key}: nothing on the direct path {direct} yet: the relay again");
        peer.endpoint = Some(relay);
        peer.persistent_keepalive = keepalive.then_some(KEEPALIVE);
        self.wg.set_peer(&peer)
    }

    fn stats(&self) -> Vec<PeerStats> {
        match self.wg.peers() {
            Ok(peers) => peers
                .into_iter()
                .filter(|p| !self.is_map_server(&p.public_key))
                .map(|p| PeerStats {
                    public_key: p.public_key,
                    endpoint: p.endpoint,
                    rx_bytes: p.rx_bytes,
                    tx_bytes: p.tx_bytes,
                })
                .collect(),
            Err(e) => {
                log::warn!("reading WireGuard peers: {e}");
                Vec::new()
            }
        }
    }

    fn is_map_server(&self, key: &[u8; 32]) -> bool {
        self.map_servers.iter().any(|m| m.public_key == *key)
    }

    /// Removes what the agent set up: routes, the TUN (closed on drop) and
    /// the WireGuard interface with its peers.
    fn down(self) {
        for prefix in &self.routes {
            let _ = self.rtnl.remove_route(*prefix, &self.config.interface);
        }
        if let Err(e) = self.wg.delete() {
            log::warn!("removing {}: {e}", self.config.interface);
        }
    }
}

/// Control messages read per turn of the event loop, before any TUN
/// packet; and TUN packets handled per turn, so that a flood on the TUN
/// never keeps a control message waiting for long.
const CONTROL_BATCH: usize = 64;
const TUN_BATCH: usize = 32;
/// How often the log sums up misses, refusals and drops (when any).
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// What woke the event loop (control messages and TUN packets are read
/// every turn, whatever woke it).
enum Wake {
    Traffic,
    Addresses,
    StatusConnection(UnixStream),
    StatusRequest(usize),
    Timer,
    Stop,
    Reload,
}

/// How a run ended.
pub enum Ended {
    /// SIGTERM or SIGINT: the interface, routes and peers are removed.
    Stopped,
    /// SIGHUP with a good configuration: the agent is to start again in
    /// place with it (see [`run`]).
    Reload,
}

/// The event loop's state: the engine, the host it drives and the
/// sources it waits on.
struct Agentd<'a> {
    config: &'a Config,
    host: Host,
    engine: Agent,
    /// What the engine decided and the host has yet to carry out.
    out: Outbox,
    events: AddressEvents,
    status_listener: UnixListener,
    clients: Vec<status::Client>,
    /// Clients waiting for the answer to their lookup, by its id.
    lookups: Vec<(u64, Query, status::Client)>,
    stop: UnixStream,
    reload: UnixStream,
    /// Where the configuration was read from, for a reload.
    config_file: &'a std::path::Path,
    /// The configuration SIGHUP read again, good and changed.
    reloaded: Option<Config>,
    packet: Vec<u8>,
    message: Vec<u8>,
    next_summary: Instant,
    summarised: Counters,
}

impl Agentd<'_> {
    /// Runs until SIGTERM or SIGINT, or SIGHUP with a good configuration.
    fn run(&mut self) -> Ended {
        loop {
            self.carry_out();
            let wake = self.wait();
            self.control_messages();
            self.tun_packets();
            match wake {
                Ok(Wake::Traffic) => {}
                Ok(Wake::Addresses) => self.addresses(),
                Ok(Wake::StatusConnection(stream)) => self.status_connection(stream),
                Ok(Wake::StatusRequest(i)) => self.status_request(i),
                Ok(Wake::Timer) => {}
                Ok(Wake::Stop) => return Ended::Stopped,
                Ok(Wake::Reload) if self.reload_checked() => return Ended::Reload,
                Ok(Wake::Reload) => {}
                Err(e) => log::warn!("{e}"),
            }
            self.clock();
        }
    }

    /// Waits for the first of the sources to be ready, the control socket
    /// first, or the next deadline (see [`poll`]).
    fn wait(&self) -> io::Result<Wake> {
        // Listened to while there is room for another status client.
        let listener = match self.clients.len() < status::CLIENTS_MAX {
            true => poll::readable(&self.status_listener),
            false => poll::NOTHING,
        };
        let mut fds = [poll::NOTHING; 6 + status::CLIENTS_MAX];
        let sources = [
            poll::readable(&self.host.control),
            poll::readable(&self.host.tun),
            poll::readable(&self.events),
            poll::readable(&self.stop),
            poll::readable(&self.reload),
            listener,
        ];
        let clients = self.clients.iter().map(|c| poll::readable(&c.stream));
        for (slot, fd) in fds.iter_mut().zip(sources.into_iter().chain(clients)) {
            *slot = fd;
        }
        if poll::wait(&mut fds, self.deadline())? == 0 {
            return Ok(Wake::Timer);
        }
        let [control, tun, addresses, stop, reload, listener, clients @ ..] = &fds;
        if poll::ready(control) || poll::ready(tun) {
            return Ok(Wake::Traffic);
        }
        if poll::ready(addresses) {
            return Ok(Wake::Addresses);
        }
        if let Some(i) = clients[..self.clients.len()].iter().position(poll::ready) {
            return Ok(Wake::StatusRequest(i));
        }
        if poll::ready(listener) {
            match self.status_listener.accept() {
                Ok((client, _)) => return Ok(Wake::StatusConnection(client)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if poll::ready(stop) {
            return Ok(Wake::Stop);
        }
        if poll::ready(reload) {
            return Ok(Wake::Reload);
        }
        Ok(Wake::Timer)
    }

    /// SIGHUP: whether the configuration file, read again, is good and
    /// differs from the one running (kept in `reloaded`). A bad one is
    /// logged and changes nothing.
    fn reload_checked(&mut self) -> bool {
        let mut drain = [0u8; 16];
        let _ = self.reload.read(&mut drain);
        let file = self.config_file.display();
        match Config::load(self.config_file) {
            Ok((new, _)) if new == *self.config => {
                log::info!("SIGHUP: {file} unchanged");
                false
            }
            Ok((new, _)) => {
                log::info!("SIGHUP: {file} changed: starting again with it, tunnels kept");
                self.reloaded = Some(new);
                true
            }
            Err(e) => {
                log::error!("SIGHUP: {e}; going on as configured before");
                false
            }
        }
    }

    /// When something is due by the clock: the engine's next poll, the
    /// log's summary, a status client's time.
    fn deadline(&self) -> Instant {
        self.clients
            .iter()
            .map(|c| c.deadline)
            .fold(self.engine.poll_at().min(self.next_summary), Instant::min)
    }

    /// Carries out what the engine wrote, in order; a failure is logged
    /// and the rest still done. The peers' counters it asked for are read
    /// and reported back, which may decide more.
    fn carry_out(&mut self) {
        loop {
            let mut read_stats = false;
            for effect in self.out.actions() {
                read_stats |= matches!(effect, Effect::ReadPeerStats);
                if let Effect::LookedUp {
                    lookup,
                    map_server,
                    reply,
                } = effect
                {
                    let reply = reply.map(|r| self.out.bytes(r));
                    let iid = self.config.iid();
                    looked_up(&mut self.lookups, *lookup, iid, *map_server, reply);
                }
                // Per packet: at debug (a flood must not flood the log too).
                let per_packet = matches!(effect, Effect::Forward(_) | Effect::Refuse { .. });
                match self.host.carry_out(effect, &self.out) {
                    Err(e) if per_packet => log::debug!("{e}"),
                    Err(e) => log::warn!("{e}"),
                    Ok(()) => {}
                }
            }
            self.out.clear();
            if !read_stats {
                return;
            }
            let stats = self.host.stats();
            self.engine
                .on_peer_stats(Instant::now(), &stats, &mut self.out);
        }
    }

    /// Control messages waiting on the LISP socket, up to a batch.
    fn control_messages(&mut self) {
        for _ in 0..CONTROL_BATCH {
            let got = match netconf::udp::recv(&self.host.control, &mut self.message) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return log::debug!("LISP socket: {e}"),
            };
            if !netconf::udp::from_tunnel(&got, Some(self.host.tunnel_index)) {
                self.engine.on_forged_control(got.from);
                continue;
            }
            let message = &self.message[..got.len];
            self.engine
                .on_control(Instant::now(), got.from, message, &mut self.out);
            self.carry_out();
        }
    }

    /// Packets waiting on the TUN, up to a batch.
    fn tun_packets(&mut self) {
        for _ in 0..TUN_BATCH {
            let len = match self.host.tun.recv(&mut self.packet) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return log::debug!("TUN: {e}"),
            };
            let packet = &self.packet[..len];
            match packet::addresses(packet) {
                Some(a) => self.engine.on_packet(
                    Instant::now(),
                    a.source,
                    a.destination,
                    packet,
                    &mut self.out,
                ),
                None => self.engine.on_malformed_packet(),
            }
            self.carry_out();
        }
    }

    /// This node's addresses changed: what matters is the new set.
    fn addresses(&mut self) {
        if let Err(e) = self.events.read() {
            log::debug!("address events: {e}");
        }
        match rlocs(self.config, &self.host.rtnl) {
            Ok(rlocs) => self.engine.set_rlocs(Instant::now(), rlocs, &mut self.out),
            Err(e) => log::warn!("reading addresses: {e}"),
        }
        self.carry_out();
    }

    fn status_connection(&mut self, stream: UnixStream) {
        match status::Client::new(stream, Instant::now()) {
            Ok(client) => self.clients.push(client),
            Err(e) => log::debug!("status client: {e}"),
        }
    }

    /// Status client `i` sent something: answered once its request is in
    /// (a lookup once the map-server answered).
    fn status_request(&mut self, i: usize) {
        match self.clients[i].read() {
            Ok(None) => {}
            Ok(Some(request)) => {
                let client = self.clients.swap_remove(i);
                let now = Instant::now();
                match Request::parse(&request) {
                    Ok(Request::Status { json }) => {
                        client.answer(json, &self.engine.status(now), &self.host.wg)
                    }
                    Ok(Request::Metrics) => {
                        client.reply(&metrics::render(&self.engine.status(now)))
                    }
                    Ok(Request::Lookup(query)) => {
                        match self.engine.lookup(now, query.eid, &mut self.out) {
                            Some(id) => self.lookups.push((id, query, client)),
                            None => client.reply(&format!(
                                "error: {} lookups in progress already; try again\n",
                                crate::engine::LOOKUPS_MAX
                            )),
                        }
                        self.carry_out();
                    }
                    Err(answer) => client.reply(&answer),
                }
            }
            Err(e) => {
                log::debug!("status client: {e}");
                self.clients.swap_remove(i);
            }
        }
    }

    /// What is due by the clock: the engine's timers, the log's summary,
    /// status clients that said nothing in time.
    fn clock(&mut self) {
        let now = Instant::now();
        self.engine.poll(now, &mut self.out);
        if now >= self.next_summary {
            self.next_summary = now + SUMMARY_EVERY;
            self.summary();
        }
        self.clients.retain(|c| c.deadline > now);
    }

    /// One log line for what happened since the last one, when anything
    /// did: per-packet events are only counted (and logged at debug).
    fn summary(&mut self) {
        let (c, last) = (*self.engine.counters(), self.summarised);
        let misses = c.misses - last.misses;
        let refused = c.refused_packets - last.refused_packets;
        let throttled = c.throttled - last.throttled;
        let negative = c.negative_replies - last.negative_replies;
        let dropped = c.dropped_packets - last.dropped_packets;
        if misses + refused + negative + dropped > 0 {
            log::info!(
                "last {}s: {misses} misses, {refused} packets refused ({throttled} over the Map-Request limits), {negative} negative Map-Replies, {dropped} packets dropped",
                SUMMARY_EVERY.as_secs()
            );
        }
        self.summarised = c;
    }
}

/// The answer to lookup `id`, to the client waiting for it.
fn looked_up(
    lookups: &mut Vec<(u64, Query, status::Client)>,
    id: u64,
    iid: u32,
    map_server: IpAddr,
    reply: Option<&[u8]>,
) {
    let Some(at) = lookups.iter().position(|(l, _, _)| *l == id) else {
        return;
    };
    let (_, query, client) = lookups.swap_remove(at);
    client.reply(&lookup::show(query, iid, map_server, reply));
}

/// Runs the agent until SIGTERM or SIGINT, which remove its interface,
/// routes and peers; or until SIGHUP with a changed, good configuration in
/// `config_file`, which leaves them (as after a crash, the next run adopts
/// the peers, and tunnels in use never notice) unless the interface itself
/// changes.
pub fn run(config: &Config, config_file: &std::path::Path) -> Result<Ended, String> {
    let (mut host, private_key) = Host::up(config).map_err(|e| e.to_string())?;
    let public_key = netconf::public_key(&private_key);
    log::info!(
        "{} up, public key {}, control address {}, overlay {:?} via {}",
        config.interface,
        netconf::format_key(&public_key),
        config.control_address,
        config.overlay,
        config.tun
    );
    let now = Instant::now();
    let nonces = fastrand::Rng::with_seed(netconf::random::seed().map_err(|e| e.to_string())?);
    let mut engine = Agent::new(settings(config, public_key), now, nonces);
    // Peers a previous run left: adopted, not disturbed.
    for peer in host.wg.peers().map_err(|e| e.to_string())? {
        if let (false, Some(endpoint)) = (host.is_map_server(&peer.public_key), peer.endpoint) {
            host.routes.extend(peer.allowed_ips.iter().copied());
            engine.adopt(now, peer.public_key, endpoint, &peer.allowed_ips);
        }
    }
    let mut out = Outbox::default();
    let rlocs = rlocs(config, &host.rtnl).map_err(|e| e.to_string())?;
    engine.set_rlocs(now, rlocs, &mut out);
    let events = AddressEvents::subscribe().map_err(|e| e.to_string())?;
    let status_listener = status::listen(&config.status_socket).map_err(|e| e.to_string())?;
    let (stop_reader, stop_writer) = UnixStream::pair().map_err(|e| e.to_string())?;
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::low_level::pipe::register(
            signal,
            stop_writer.try_clone().map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    }
    stop_reader
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let stop = stop_reader;
    let (reload_reader, reload_writer) = UnixStream::pair().map_err(|e| e.to_string())?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGHUP, reload_writer)
        .map_err(|e| e.to_string())?;
    reload_reader
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let reload = reload_reader;
    if let Some(addr) = config.metrics {
        serve_metrics(addr, config.status_socket.clone())?;
    }
    let mut agentd = Agentd {
        config,
        host,
        engine,
        out,
        events,
        status_listener,
        clients: Vec::new(),
        lookups: Vec::new(),
        stop,
        reload,
        config_file,
        reloaded: None,
        packet: vec![0u8; 65536],
        message: vec![0u8; 65536],
        next_summary: now + SUMMARY_EVERY,
        summarised: Counters::default(),
    };
    let ended = agentd.run();
    agentd.summary();
    let _ = std::fs::remove_file(&config.status_socket);
    let mut drain = [0u8; 16];
    let _ = agentd.stop.read(&mut drain);
    // Reloading on the same interface: it and its peers stay, for the
    // next run to adopt.
    let same = |c: &Config| c.interface == config.interface && c.backend == config.backend;
    if agentd.reloaded.as_ref().is_some_and(same) {
        return Ok(Ended::Reload);
    }
    agentd.host.down();
    log::info!("stopped");
    Ok(ended)
}

/// Serves the metrics from a thread of its own, which asks the event loop
/// for them on the status socket at each scrape: the loop renders them
/// from the engine between two events (one consistent snapshot, nothing
/// shared, nothing published while no one scrapes) and never waits on a
/// scraper's network.
fn serve_metrics(addr: SocketAddr, status_socket: PathBuf) -> Result<(), String> {
    netconf::http::serve(addr, move || {
        status::request(&status_socket, &Request::Metrics)
    })
    .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    log::info!("metrics on http://{addr}/metrics");
    Ok(())
}

/// The engine's settings from the configuration.
fn settings(config: &Config, public_key: [u8; 32]) -> Settings {
    Settings {
        iid: config.iid(),
        eids: config.eids.iter().map(|e| e.eid_prefix()).collect(),
        control_address: config.control_address,
        overlay: config.overlay.clone(),
        public_key,
        listen_port: config.listen_port,
        register_interval: Duration::from_secs(config.register_interval),
        record_ttl: config.record_ttl,
        map_servers: config
            .map_servers
            .iter()
            .map(|m| MapServerSettings {
                control_address: m.control_address,
                key: m.key.as_bytes().to_vec(),
            })
            .collect(),
        cache_capacity: CACHE_CAPACITY,
    }
}
