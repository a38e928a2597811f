//! The agent at run time: brings up the WireGuard interface (the
//! map-servers as peers), the control address and the TUN device routed
//! for the overlay, then runs the engine on one thread — TUN packets,
//! control messages, address events, the clock, the status socket,
//! signals — and carries out what it decides.

use crate::config::Config;
use crate::engine::{Action, Agent, MapServerSettings, PeerStats, PeerSummary, Refusal, Settings};
use crate::inject::Injector;
use crate::packet::{self, Unreachable};
use crate::status;
use crate::tun::Tun;
use ipnet::IpNet;
use lisp::CONTROL_PORT;
use netconf::{AddressEvents, Peer, Rtnl, WireGuard};
use smol::future::FutureExt;
use smol::Async;
use std::collections::HashSet;
use std::io::{self, Read};
use std::net::{IpAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How often the WireGuard counters are read (idle and dead peers).
const STATS_EVERY: Duration = Duration::from_secs(5);
/// Keepalive to the map-servers: keeps the NAT binding of the one socket
/// that carries control and data open. Also the keepalive of a pushed peer
/// until it answers.
const KEEPALIVE: u16 = 25;
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
    tun: Async<Tun>,
    injector: Injector,
    control: Async<UdpSocket>,
    /// Index of the WireGuard interface: control messages are taken only
    /// from it (WireGuard vouches for their source; the underlay does not).
    tunnel_index: u32,
    /// Source address of the packets this node itself sends into the
    /// overlay: one of its EIDs, never its control address (peers accept
    /// only the EIDs they were told of).
    source: Option<IpAddr>,
    /// The map-servers as WireGuard peers, as configured.
    map_servers: Vec<Peer>,
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

/// The map-servers as WireGuard peers: keys parsed, host names resolved.
fn map_server_peers(config: &Config) -> io::Result<Vec<Peer>> {
    let mut peers = Vec::new();
    for ms in &config.map_servers {
        let key = netconf::parse_key(&ms.public_key)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let endpoint = (ms.address.as_str(), ms.port)
            .to_socket_addrs()
            .map_err(|e| io::Error::new(e.kind(), format!("map-server {}: {e}", ms.address)))?
            .next()
            .ok_or_else(|| io::Error::other(format!("map-server {}: no address", ms.address)))?;
        peers.push(Peer {
            public_key: key,
            endpoint: Some(endpoint),
            allowed_ips: vec![host_prefix(ms.control_address)],
            persistent_keepalive: Some(KEEPALIVE),
        });
    }
    Ok(peers)
}

impl Host {
    fn up(config: &Config) -> io::Result<(Host, [u8; 32])> {
        // What can still fail without touching the system comes first, so
        // that a failure leaves no key file and no interface behind. The
        // names are checked again for a Config not read from a file.
        for name in [&config.interface, &config.tun] {
            netconf::check::rules::check_interface_name(name)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let map_servers = map_server_peers(config)?;
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
        for peer in &map_servers {
            wg.set_peer(peer)?;
            for prefix in &peer.allowed_ips {
                rtnl.add_route(*prefix, &config.interface)?;
            }
        }
        let tun = Tun::open(&config.tun)?;
        rtnl.set_up(&config.tun, Some(TUN_MTU))?;
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
        let tunnel_index = netconf::udp::ifindex(&config.interface)?;
        let host = Host {
            config: config.clone(),
            tunnel_index,
            wg,
            rtnl,
            tun: Async::new(tun)?,
            injector,
            control: Async::new(control)?,
            source,
            map_servers,
            routes: HashSet::new(),
        };
        Ok((host, private_key))
    }

    /// Carries out the engine's decisions; a failure is logged, and the
    /// rest still done.
    fn carry_out(&mut self, actions: Vec<Action>) {
        for action in actions {
            if let Err(e) = self.carry_out_one(action) {
                log::warn!("{e}");
            }
        }
    }

    fn carry_out_one(&mut self, action: Action) -> io::Result<()> {
        match action {
            Action::Control { to, message } => {
                self.control.get_ref().send_to(&message, to).map(drop)
            }
            Action::SetPeer {
                public_key,
                endpoint,
                allowed_ips,
                keepalive,
            } => {
                log::info!(
                    "peer {} at {endpoint} for {allowed_ips:?}",
                    crate::status::fingerprint(&public_key)
                );
                self.wg.set_peer(&Peer {
                    public_key,
                    endpoint: Some(endpoint),
                    allowed_ips,
                    persistent_keepalive: keepalive.then_some(KEEPALIVE),
                })
            }
            Action::RemovePeer { public_key } => {
                log::info!("peer {} removed", crate::status::fingerprint(&public_key));
                self.wg.remove_peer(&public_key)
            }
            Action::AddRoute(prefix) => {
                let source = self
                    .source
                    .filter(|s| s.is_ipv4() == prefix.addr().is_ipv4());
                self.rtnl
                    .add_route_from(prefix, &self.config.interface, source)?;
                self.routes.insert(prefix);
                Ok(())
            }
            Action::RemoveRoute(prefix) => {
                self.routes.remove(&prefix);
                self.rtnl.remove_route(prefix, &self.config.interface)
            }
            Action::Forward(packet) => self.injector.send(&packet),
            Action::Refuse { packet, why } => {
                let Some(original) = packet::addresses(&packet) else {
                    return Ok(());
                };
                let why = match why {
                    Refusal::NoMapping => Unreachable::Host,
                    Refusal::Denied => Unreachable::AdminProhibited,
                };
                let mut icmp = [0u8; 1280];
                match packet::icmp_unreachable(&packet, original.destination, why, &mut icmp) {
                    Some(len) => self.tun.get_ref().send(&icmp[..len]),
                    None => Ok(()),
                }
            }
        }
    }

    fn stats(&self) -> Vec<PeerStats> {
        match self.wg.peers() {
            Ok(peers) => peers
                .into_iter()
                .filter(|p| !self.is_map_server(&p.public_key))
                .map(|p| PeerStats {
                    public_key: p.public_key,
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

    /// Sets every peer's endpoint again after this node's addresses
    /// changed: WireGuard remembers the source address it last sent each
    /// peer from, and would go on using one that is gone.
    fn reset_endpoints(&self, peers: &[PeerSummary]) {
        let data = peers.iter().map(|p| Peer {
            public_key: p.public_key,
            endpoint: Some(p.endpoint),
            allowed_ips: p.prefixes.clone(),
            persistent_keepalive: None,
        });
        for peer in self.map_servers.iter().cloned().chain(data) {
            if let Err(e) = self.wg.set_peer(&peer) {
                log::warn!("{e}");
            }
        }
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

enum Event {
    Packet(usize),
    Control(netconf::udp::Received),
    Addresses,
    Status(UnixStream),
    Timer,
    Stop,
}

/// Runs the agent until SIGTERM or SIGINT.
pub fn run(config: &Config) -> Result<(), String> {
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
    let settings = Settings {
        iid: config.iid(),
        eids: config.eids.iter().map(|e| e.eid_prefix()).collect(),
        control: config.control_address,
        overlay: config.overlay.clone(),
        public_key,
        listen_port: config.listen_port,
        register_interval: Duration::from_secs(config.register_interval),
        record_ttl: config.record_ttl,
        map_servers: config
            .map_servers
            .iter()
            .map(|m| MapServerSettings {
                control: m.control_address,
                key: m.key.as_bytes().to_vec(),
            })
            .collect(),
        cache_capacity: CACHE_CAPACITY,
    };
    let now = Instant::now();
    let mut engine = Agent::new(settings, now);
    // Peers a previous run left: adopted, not disturbed.
    for peer in host.wg.peers().map_err(|e| e.to_string())? {
        if let (false, Some(endpoint)) = (host.is_map_server(&peer.public_key), peer.endpoint) {
            host.routes.extend(peer.allowed_ips.iter().copied());
            engine.adopt(now, peer.public_key, endpoint, &peer.allowed_ips);
        }
    }
    engine.set_rlocs(now, rlocs(config, &host.rtnl).map_err(|e| e.to_string())?);
    let events = Async::new(AddressEvents::subscribe().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let status_listener = status::listen(&config.status_socket).map_err(|e| e.to_string())?;
    let (stop_reader, stop_writer) = UnixStream::pair().map_err(|e| e.to_string())?;
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::low_level::pipe::register(
            signal,
            stop_writer.try_clone().map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    }
    let stop = Async::new(stop_reader).map_err(|e| e.to_string())?;

    smol::block_on(async {
        let mut packet = vec![0u8; 65536];
        let mut message = vec![0u8; 65536];
        let mut next_stats = Instant::now() + STATS_EVERY;
        loop {
            let mut actions = Vec::new();
            let deadline = engine.poll(Instant::now(), &mut actions).min(next_stats);
            host.carry_out(actions);
            let event = async {
                host.tun
                    .read_with(|t| t.recv(&mut packet))
                    .await
                    .map(Event::Packet)
            }
            .or(async {
                host.control
                    .read_with(|s| netconf::udp::recv(s, &mut message))
                    .await
                    .map(Event::Control)
            })
            .or(async { events.readable().await.map(|()| Event::Addresses) })
            .or(async {
                let (client, _) = status_listener.accept().await?;
                client.into_inner().map(Event::Status)
            })
            .or(async { stop.readable().await.map(|()| Event::Stop) })
            .or(async {
                smol::Timer::at(deadline).await;
                Ok(Event::Timer)
            })
            .await;
            let now = Instant::now();
            let mut actions = Vec::new();
            match event {
                Ok(Event::Packet(len)) => match packet::addresses(&packet[..len]) {
                    Some(a) => {
                        engine.on_packet(now, a.destination, packet[..len].to_vec(), &mut actions)
                    }
                    None => engine.counters.dropped_packets += 1,
                },
                Ok(Event::Control(got))
                    if !netconf::udp::from_tunnel(&got, Some(host.tunnel_index)) =>
                {
                    log::debug!(
                        "control message from {} not through the tunnel: dropped",
                        got.from
                    );
                    engine.counters.bad_messages += 1;
                }
                Ok(Event::Control(got)) => {
                    engine.on_control(now, got.from, &message[..got.len], &mut actions)
                }
                Ok(Event::Addresses) => {
                    // Drain the events; what matters is the new set.
                    if let Err(e) = events.get_ref().read() {
                        log::debug!("address events: {e}");
                    }
                    match rlocs(config, &host.rtnl) {
                        Ok(rlocs) => {
                            if engine.set_rlocs(now, rlocs) {
                                host.reset_endpoints(&engine.status(now).peers);
                            }
                        }
                        Err(e) => log::warn!("reading addresses: {e}"),
                    }
                }
                Ok(Event::Status(stream)) => status::answer(stream, &engine.status(now), &host.wg),
                Ok(Event::Timer) => {
                    if now >= next_stats {
                        next_stats = now + STATS_EVERY;
                        engine.on_peer_stats(now, &host.stats(), &mut actions);
                    }
                }
                Ok(Event::Stop) => break,
                Err(e) => log::warn!("{e}"),
            }
            host.carry_out(actions);
        }
    });
    let _ = std::fs::remove_file(&config.status_socket);
    let mut drain = [0u8; 16];
    let _ = stop.get_ref().read(&mut drain);
    host.down();
    log::info!("stopped");
    Ok(())
}
