//! The agent's decisions, without I/O: what to do with a packet for an
//! unresolved destination, with a control message from a map-server, and
//! when time passes. The I/O layer feeds it and carries out the
//! [`Effect`]s it writes into an [`Outbox`]: control datagrams, WireGuard
//! peers, routes, packets, reading the peers' counters. Timers the
//! smoltcp way: every input writes effects, [`Agent::poll`] runs what is
//! due, [`Agent::poll_at`] says when to call it next.

use crate::budget::Budget;
use crate::cache::{MapCache, State};
use crate::metrics::{Histogram, Refused};
use ipnet::IpNet;
use lisp::{
    auth, map_reply, message_type, Action, Address, Algorithm, EidPrefix, List, Locator, MapNotify,
    MapRegister, MapReply, MapRequest, Record, Registration, RequestRecord, CONTROL_PORT,
    MAX_LOCATORS, MAX_RECORDS,
};
use netconf::outbox::Bytes;
use netconf::PublicKey;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Waits before resending a Map-Request; after the last, the destination
/// is unreachable.
const REQUEST_RETRY: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
];
/// A Map-Request sent and retried as [`REQUEST_RETRY`] says is given up
/// this long after the first.
pub const REQUEST_GIVE_UP: Duration = {
    let (mut total, mut i) = (Duration::ZERO, 0);
    while i < REQUEST_RETRY.len() {
        total = total.saturating_add(REQUEST_RETRY[i]);
        i += 1;
    }
    total
};
/// A Map-Request unanswered this long is forgotten (its nonce no longer
/// accepted).
const REQUEST_FORGOTTEN: Duration = Duration::from_secs(10);
/// How long "no answer" is remembered, so that a dead map-server is not
/// asked again for every packet.
const NO_ANSWER_TTL: Duration = Duration::from_secs(5);
/// First wait before resending an unacknowledged Map-Register; it doubles
/// up to the register interval.
const REGISTER_RETRY: Duration = Duration::from_secs(1);
/// After this node's underlay addresses changed, its Map-Register is sent
/// again this soon (then twice as long each time): a new address may come
/// before its route (a DHCP client adds the address, then the default
/// route), and what WireGuard sends in between is lost; a second's wait
/// for the retry was most of a handover.
const RLOC_CHANGE_RETRY: Duration = Duration::from_millis(20);
/// Record TTL this node gives its own mapping by default, minutes: how
/// long others may cache it (changes reach them through the map-server).
pub const RECORD_TTL: u32 = 15;
/// A peer that sent but heard nothing back for this long is re-resolved
/// (both ends may have moved: the "double jump"); while it stays silent,
/// the wait doubles up to [`DEAD_MAX`].
const DEAD_AFTER: Duration = Duration::from_secs(20);
const DEAD_MAX: Duration = Duration::from_secs(600);
/// Destinations one inner source may have pending at once; its next new
/// destination is refused with ICMP at once.
pub const PENDING_PER_SOURCE: usize = 16;
/// A map-server that leaves a Map-Register or Map-Request unanswered has
/// its WireGuard session started afresh, at most this often; while it
/// stays silent, the Map-Register is sent again this often too.
const REHANDSHAKE_EVERY: Duration = Duration::from_secs(2);
/// When a first contact checks that its WireGuard handshake completed, from
/// the moment it handed WireGuard its packets (see [`Handshaking`]). Each
/// check that finds none starts it again: a handshake that reached the
/// destination before its agent had set this node as a peer was dropped,
/// and WireGuard itself would try again only 5 s later. It takes about
/// 1 ms in the lab, and the first try finds the destination not ready in
/// about one contact in eight. The later checks wait longer than 20 ms:
/// WireGuard drops an initiation that comes within 20 ms of the last one
/// it took from the same peer (a flood), and the destination may have
/// taken the one before while its answer was on its way.
pub const HANDSHAKE_CHECKS: [Duration; 3] = [
    Duration::from_millis(5),
    Duration::from_millis(25),
    Duration::from_millis(50),
];
/// The longest wait for a handshake check (see [`check_wait`]).
const CHECK_WAIT_MAX: Duration = Duration::from_millis(500);
/// After the map-server had the destination reach out, how long the
/// handshake may take before the map-server is asked again (it then hands
/// out its relay).
pub const RELAY_AFTER: Duration = Duration::from_secs(1);
/// Times a first contact asks the map-server again because its handshake
/// never completed: once for the destination to reach out, once for the
/// relay.
const MAX_ASKS: u8 = 2;
/// While a peer goes through a relay, the direct path is tried this long
/// after, then at twice the wait each time up to [`PROBE_MAX`].
pub const PROBE_FIRST: Duration = Duration::from_secs(10);
const PROBE_MAX: Duration = Duration::from_secs(300);
/// A pushed peer not heard from for this long may be one the other side
/// forgot (it restarted, or its mapping expired first): it is set afresh,
/// which makes WireGuard start a handshake at once. Three readings of the
/// counters, so that a tunnel in use is never taken for one.
const STALE_AFTER: Duration = Duration::from_secs(15);
/// A peer whose mapping expired is kept (and re-resolved) if it carried
/// traffic this recently; removed with its route otherwise.
const IDLE_AFTER: Duration = Duration::from_secs(30);
/// What a WireGuard keepalive counts for in a peer's traffic counters (an
/// empty data message), twice: a persistent one from one side and a
/// passive one from the other may fall between two readings. Traffic no
/// larger is no use of the peer: with keepalives on, it flows while the
/// peer idles.
const KEEPALIVES_BYTES: u64 = 2 * 32;
/// While an active peer's mapping is being refreshed.
const REFRESH_GRACE: Duration = Duration::from_secs(30);
/// How often the WireGuard counters are read (idle and dead peers).
pub const STATS_EVERY: Duration = Duration::from_secs(5);
/// Lookups (`lispguard lookup`) in progress at once; more are refused.
pub const LOOKUPS_MAX: usize = 8;

/// Why queued packets could not be sent: the ICMP error they get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No mapping, or no answer: host unreachable.
    NoMapping,
    /// The map-server's policy denies it: administratively prohibited.
    Denied,
}

/// The agent engine's outbox: effects, carried out in order, and the
/// bytes they carry.
pub type Outbox = netconf::outbox::Outbox<Effect>;

/// What the I/O layer is to do. `B` holds the bytes of a message or
/// packet: a handle into the [`Outbox`], or owned bytes (see [`owned`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<B = Bytes> {
    /// A control message to a map-server's control address.
    Control {
        to: SocketAddr,
        message: B,
    },
    /// Adds or updates a WireGuard peer; its allowed-ips replace the old.
    SetPeer {
        public_key: PublicKey,
        /// None: the other side starts the handshake, and WireGuard takes
        /// its endpoint from it (see [`Handshaking`]); an endpoint set
        /// before stays.
        endpoint: Option<SocketAddr>,
        allowed_ips: Vec<IpNet>,
        /// Send keepalives: until a peer that was pushed to us answers
        /// (it is reached out to from this side too, so that this side's
        /// NAT lets the other side's handshake in), and to a peer behind
        /// a NAT for as long as it is set.
        keepalive: bool,
    },
    RemovePeer {
        public_key: PublicKey,
    },
    /// A peer that goes through the relay at `relay`: one keepalive to
    /// its `direct` endpoint, then the peer set as before (the relay, its
    /// allowed-ips and keepalive). If the keepalive gets through, the
    /// other side's WireGuard moves the peer to the direct path (it sends
    /// to where it last heard from), and this side's follows when it hears
    /// the answer; if not, nothing changed.
    ProbeDirect {
        public_key: PublicKey,
        direct: SocketAddr,
        relay: SocketAddr,
        allowed_ips: Vec<IpNet>,
        keepalive: bool,
    },
    /// The map-server at this control address left a message unanswered:
    /// start its WireGuard session afresh (remove the peer and set it
    /// again, which makes WireGuard send a handshake at once) rather than
    /// wait out WireGuard's own timers.
    Rehandshake {
        map_server: IpAddr,
    },
    /// Set the map-server's WireGuard peer again as configured: this
    /// node's addresses changed, and WireGuard would go on sending from
    /// the source address it last used, which may be gone.
    SetMapServer {
        map_server: IpAddr,
    },
    /// Read every peer's traffic counters and report them with
    /// [`Agent::on_peer_stats`].
    ReadPeerStats,
    /// A route for the prefix through the WireGuard interface.
    AddRoute(IpNet),
    RemoveRoute(IpNet),
    /// A packet that waited for resolution, now to go out through
    /// WireGuard.
    Forward(B),
    /// Answer this packet's source with an ICMP error.
    Refuse {
        packet: B,
        why: Refusal,
    },
    /// The answer to lookup `lookup` ([`Agent::lookup`]): the Map-Reply
    /// from the map-server at `map_server`, or `None` if none came.
    LookedUp {
        lookup: u64,
        map_server: IpAddr,
        reply: Option<B>,
    },
}

impl<B> Effect<B> {
    /// The same effect with its bytes held by `f(bytes)`.
    pub fn map<C>(self, f: impl FnOnce(B) -> C) -> Effect<C> {
        match self {
            Effect::Control { to, message } => Effect::Control {
                to,
                message: f(message),
            },
            Effect::SetPeer {
                public_key,
                endpoint,
                allowed_ips,
                keepalive,
            } => Effect::SetPeer {
                public_key,
                endpoint,
                allowed_ips,
                keepalive,
            },
            Effect::RemovePeer { public_key } => Effect::RemovePeer { public_key },
            Effect::ProbeDirect {
                public_key,
                direct,
                relay,
                allowed_ips,
                keepalive,
            } => Effect::ProbeDirect {
                public_key,
                direct,
                relay,
                allowed_ips,
                keepalive,
            },
            Effect::Rehandshake { map_server } => Effect::Rehandshake { map_server },
            Effect::SetMapServer { map_server } => Effect::SetMapServer { map_server },
            Effect::ReadPeerStats => Effect::ReadPeerStats,
            Effect::AddRoute(prefix) => Effect::AddRoute(prefix),
            Effect::RemoveRoute(prefix) => Effect::RemoveRoute(prefix),
            Effect::Forward(packet) => Effect::Forward(f(packet)),
            Effect::Refuse { packet, why } => Effect::Refuse {
                packet: f(packet),
                why,
            },
            Effect::LookedUp {
                lookup,
                map_server,
                reply,
            } => Effect::LookedUp {
                lookup,
                map_server,
                reply: reply.map(f),
            },
        }
    }
}

/// The effects in `out` with their bytes copied out (tests, logs).
pub fn owned(out: &Outbox) -> Vec<Effect<Vec<u8>>> {
    out.actions()
        .iter()
        .map(|e| e.clone().map(|b| out.bytes(b).to_vec()))
        .collect()
}

/// A map-server as the agent talks to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapServerSettings {
    pub control_address: IpAddr,
    pub key: Vec<u8>,
}

/// What the agent needs from its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub iid: u32,
    /// This node's EID-Prefixes.
    pub eids: Vec<EidPrefix>,
    pub control_address: IpAddr,
    /// Destinations resolved on demand; anything else reaching the TUN
    /// (the kernel's own IPv6 chatter, say) is ignored.
    pub overlay: Vec<IpNet>,
    pub public_key: PublicKey,
    /// The WireGuard port, registered with each RLOC.
    pub listen_port: u16,
    pub register_interval: Duration,
    /// TTL of this node's own mapping, minutes.
    pub record_ttl: u32,
    pub map_servers: Vec<MapServerSettings>,
    pub cache_capacity: usize,
}

/// Traffic counters of a WireGuard peer, read from the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerStats {
    pub public_key: PublicKey,
    /// Where WireGuard sends to: where it last heard the peer from.
    pub endpoint: Option<SocketAddr>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

struct Peer {
    endpoint: Option<SocketAddr>,
    prefixes: BTreeSet<IpNet>,
    /// Keepalives on until it answers (see [`Effect::SetPeer`]).
    reaching_out: bool,
    /// A first contact whose handshake has not completed yet.
    handshaking: Option<Handshaking>,
    /// It goes through this relay (the endpoint), until WireGuard moves it
    /// to the direct path (see [`Effect::ProbeDirect`]).
    relay: Option<Relay>,
    /// Its mapping came as a NAT-Traversal locator: keepalives hold that
    /// NAT's binding open for as long as the peer is set (until its
    /// mapping expires with the peer idle), so that this side still gets
    /// through after a pause (else only the peer's own traffic, or 20 s of
    /// silence and a new resolution, would open it again).
    behind_nat: bool,
    rx: u64,
    tx: u64,
    /// Last time it carried traffic (keepalives alone do not count).
    active: Instant,
    /// Last time it received; with `tx` growing, tells a dead peer.
    heard: Instant,
    /// When it was last re-resolved as dead.
    probed: Option<Instant>,
    /// How long after `probed` it is re-resolved again if still silent.
    probe_wait: Duration,
}

impl Peer {
    fn new(endpoint: Option<SocketAddr>, now: Instant) -> Peer {
        Peer {
            endpoint,
            prefixes: BTreeSet::new(),
            reaching_out: false,
            handshaking: None,
            relay: None,
            behind_nat: false,
            rx: 0,
            tx: 0,
            active: now,
            heard: now,
            probed: None,
            probe_wait: DEAD_AFTER,
        }
    }
}

/// A peer installed from a Map-Reply, its handshake not yet seen to
/// complete. This node starts it: the map-server pushed its mapping to the
/// destination with the locators marked not to be sent to, and that agent
/// sets the peer without an endpoint and only answers, so the two
/// handshakes never cross (each side would drop the other's session for
/// its own, and neither would send until WireGuard's retry 5 s later).
/// The waiting packets go to WireGuard at once; copies are kept to hand
/// over again to a peer set afresh at each of [`HANDSHAKE_CHECKS`] that
/// finds nothing received. After the last, the map-server is asked again:
/// it then holds the reply until the destination acknowledged the push and
/// has the destination reach out (a firewall in front of it lets in only
/// what answers its own traffic).
struct Handshaking {
    packets: Vec<Vec<u8>>,
    /// Checks done.
    checks: usize,
    /// The path's round trip, as near as this side knows it (see
    /// [`check_wait`] and `path_round_trip`).
    round_trip: Duration,
    /// Times the map-server was asked again (see [`MAX_ASKS`]).
    asks: u8,
    /// Not a first contact: a peer found dead, resolved again.
    dead: bool,
}

/// A peer given a relay, and when the direct path is tried.
struct Relay {
    at: SocketAddr,
    /// The direct endpoint to try; none: no path to try.
    direct: Option<SocketAddr>,
    /// WireGuard was seen sending elsewhere at the last reading: it heard
    /// the peer from there (see [`Effect::ProbeDirect`]).
    left: bool,
    probe_at: Instant,
    probe_wait: Duration,
}

struct Registering {
    /// The nonce of the Map-Register awaiting its Map-Notify, and when the
    /// first of those unanswered since was sent (new RLOCs start afresh).
    nonce: Option<u64>,
    /// The nonces of the last Map-Registers a newer one superseded: a late
    /// Map-Notify for one of them answers that Map-Register, it is no push.
    superseded: [Option<u64>; 4],
    sent: Instant,
    acked: Option<Instant>,
    next: Instant,
    retry: Duration,
    /// It left a message unanswered and has not answered since.
    lost: bool,
    /// When it last sent us a valid message.
    heard: Option<Instant>,
    rehandshaken: Option<Instant>,
    /// Its Map-Replies' smoothed round trip.
    round_trip: SmoothedRoundTrip,
}

/// A round trip smoothed over the samples, as TCP smooths its own
/// (RFC 6298, SRTT: the first sample, then 7/8 of the estimate and 1/8 of
/// each new one): one fast answer from a map-server that is usually far
/// does not make the handshake checks early.
#[derive(Clone, Copy, Debug, Default)]
struct SmoothedRoundTrip(Option<Duration>);

impl SmoothedRoundTrip {
    fn sample(&mut self, round_trip: Duration) {
        self.0 = Some(match self.0 {
            None => round_trip,
            Some(smoothed) => (smoothed * 7 + round_trip) / 8,
        });
    }
}

impl Registering {
    /// The Map-Register awaiting its Map-Notify is superseded (sent again,
    /// or from other addresses): its nonce is kept among the last few.
    fn supersede(&mut self) {
        if let Some(nonce) = self.nonce.take() {
            self.superseded.rotate_right(1);
            self.superseded[0] = Some(nonce);
        }
    }
}

/// A lookup in progress: a Map-Request whose answer is shown, never
/// installed; its nonce is its id.
struct Lookup {
    nonce: u64,
    eid: IpAddr,
    /// Map-Requests sent so far, and to which map-server the last.
    sent: u32,
    map_server: Option<usize>,
    retry_at: Instant,
}

/// A Map-Request out: what it resolves, and which map-server has it.
#[derive(Clone, Copy)]
struct Asked {
    prefix: IpNet,
    map_server: Option<usize>,
    sent: Instant,
    /// Sent again with its nonce: which of the two its answer is for is
    /// not known, so it is no sample of the smoothed round trip (Karn's
    /// rule).
    again: bool,
}

/// What `lispguard status` shows of the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub map_servers: Vec<MapServerStatus>,
    pub peers: Vec<PeerSummary>,
    pub cached: usize,
    pub pending: usize,
    pub negative: usize,
    pub queued_packets: usize,
    pub rlocs: Vec<IpAddr>,
    pub counters: Counters,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapServerStatus {
    pub control_address: IpAddr,
    /// How long ago it acknowledged our last Map-Register.
    pub registered: Option<Duration>,
    /// A Map-Register is waiting for its Map-Notify.
    pub waiting: bool,
    /// It has not left a message unanswered since it last answered.
    pub answering: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSummary {
    pub public_key: PublicKey,
    /// As the map-server gave it; none while the destination is to start
    /// the handshake (WireGuard knows it from then on).
    pub endpoint: Option<SocketAddr>,
    pub prefixes: Vec<IpNet>,
    /// Until its first mapping expires (then it is refreshed or removed).
    pub expires_in: Option<Duration>,
    /// The relay it was given (see [`Effect::ProbeDirect`]).
    pub relay: Option<SocketAddr>,
}

/// Counters `status` shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub map_requests: u64,
    pub map_replies: u64,
    pub negative_replies: u64,
    pub pushes: u64,
    /// Packets for destinations without a cache entry.
    pub misses: u64,
    /// New destinations refused by the fairness limits (pending per
    /// source, Map-Request budget).
    pub throttled: u64,
    pub dropped_packets: u64,
    /// Not for the overlay (e.g. IPv6 router solicitations on the TUN).
    pub ignored_packets: u64,
    pub refused_packets: u64,
    /// Refused packets by reason, indexed by [`Refused`].
    pub refused: [u64; Refused::ALL.len()],
    pub bad_messages: u64,
    /// First contacts whose handshake was started again: it found the
    /// destination not ready yet (see [`HANDSHAKE_CHECKS`]).
    pub handshake_retries: u64,
    /// First contacts whose handshake never completed: the map-server was
    /// asked to have the destination reach out.
    pub handshake_fallbacks: u64,
    /// Relayed peers that WireGuard moved to a direct path.
    pub relay_to_direct: u64,
    /// From a miss to its peer set up.
    pub first_contact: Histogram,
}

pub struct Agent {
    settings: Settings,
    rlocs: Vec<IpAddr>,
    cache: MapCache,
    peers: HashMap<PublicKey, Peer>,
    /// Map-Requests out, by nonce.
    requests: HashMap<u64, Asked>,
    lookups: Vec<Lookup>,
    registering: Vec<Registering>,
    budget: Budget,
    next_map_server: usize,
    /// When the peers' counters are read next.
    next_stats: Instant,
    /// When first contacts check their handshake (see [`Handshaking`]).
    handshake_checks: BTreeSet<(Instant, PublicKey)>,
    /// Nonces of Map-Requests and Map-Registers.
    rng: fastrand::Rng,
    counters: Counters,
}

impl Agent {
    /// An agent for `settings`; `rng` makes its nonces (seeded from the OS
    /// in the daemon, fixed in tests so that runs repeat).
    pub fn new(settings: Settings, now: Instant, rng: fastrand::Rng) -> Agent {
        let registering = settings
            .map_servers
            .iter()
            .map(|_| Registering {
                nonce: None,
                superseded: [None; 4],
                sent: now,
                acked: None,
                next: now,
                retry: REGISTER_RETRY,
                lost: false,
                heard: None,
                rehandshaken: None,
                round_trip: SmoothedRoundTrip::default(),
            })
            .collect();
        Agent {
            cache: MapCache::new(settings.cache_capacity),
            settings,
            rlocs: Vec::new(),
            peers: HashMap::new(),
            requests: HashMap::new(),
            lookups: Vec::new(),
            registering,
            budget: Budget::new(now),
            next_map_server: 0,
            next_stats: now + STATS_EVERY,
            handshake_checks: BTreeSet::new(),
            rng,
            counters: Counters::default(),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A peer found on the interface at start, left by a run that did not
    /// stop cleanly: kept as resolved (its tunnel undisturbed) and then
    /// refreshed or removed like any other.
    pub fn adopt(
        &mut self,
        now: Instant,
        key: PublicKey,
        endpoint: SocketAddr,
        prefixes: &[IpNet],
    ) {
        let expires = now + Duration::from_secs(u64::from(RECORD_TTL) * 60);
        for prefix in prefixes {
            if self
                .cache
                .insert(*prefix, State::Resolved { key, expires })
                .is_err()
            {
                break;
            }
        }
        let mut peer = Peer::new(Some(endpoint), now);
        peer.prefixes = prefixes.iter().copied().collect();
        self.peers.insert(key, peer);
    }

    pub fn status(&self, now: Instant) -> Status {
        let mut status = Status {
            map_servers: self
                .settings
                .map_servers
                .iter()
                .zip(&self.registering)
                .map(|(ms, r)| MapServerStatus {
                    control_address: ms.control_address,
                    registered: r.acked.map(|at| now.saturating_duration_since(at)),
                    waiting: r.nonce.is_some(),
                    answering: !r.lost,
                })
                .collect(),
            peers: Vec::new(),
            cached: 0,
            pending: 0,
            negative: 0,
            queued_packets: self.cache.queued(),
            rlocs: self.rlocs.clone(),
            counters: self.counters,
        };
        for (_, state) in self.cache.iter() {
            match state {
                State::Pending { .. } => status.pending += 1,
                State::Resolved { .. } => status.cached += 1,
                State::Negative { .. } => status.negative += 1,
            }
        }
        for (key, peer) in &self.peers {
            let expires_in = peer
                .prefixes
                .iter()
                .filter_map(|p| match self.cache.get(p) {
                    Some(State::Resolved { expires, .. }) => {
                        Some(expires.saturating_duration_since(now))
                    }
                    _ => None,
                })
                .min();
            status.peers.push(PeerSummary {
                public_key: *key,
                endpoint: peer.endpoint,
                prefixes: peer.prefixes.iter().copied().collect(),
                expires_in,
                relay: peer.relay.as_ref().map(|r| r.at),
            });
        }
        status.peers.sort_by_key(|p| p.prefixes.first().copied());
        status
    }

    /// This node's underlay addresses: when they changed, register them
    /// at once, and set every peer again (WireGuard remembers the source
    /// address it last sent each peer from, and would go on using one
    /// that is gone).
    pub fn set_rlocs(&mut self, now: Instant, mut rlocs: Vec<IpAddr>, out: &mut Outbox) {
        rlocs.sort();
        rlocs.dedup();
        if rlocs == self.rlocs {
            return;
        }
        log::info!("RLOCs now {rlocs:?}: registering");
        self.rlocs = rlocs;
        for r in &mut self.registering {
            r.next = now;
            r.retry = RLOC_CHANGE_RETRY;
            // What was sent from the old addresses is superseded, not
            // unanswered.
            r.supersede();
        }
        for ms in &self.settings.map_servers {
            out.push(Effect::SetMapServer {
                map_server: ms.control_address,
            });
        }
        for (key, peer) in &self.peers {
            out.push(set_peer(*key, peer));
        }
    }

    /// A packet from `source` for `destination` reached the TUN: no peer
    /// carries it yet.
    pub fn on_packet(
        &mut self,
        now: Instant,
        source: IpAddr,
        destination: IpAddr,
        packet: &[u8],
        out: &mut Outbox,
    ) {
        if !self
            .settings
            .overlay
            .iter()
            .any(|p| p.contains(&destination))
        {
            self.counters.ignored_packets += 1;
            return;
        }
        match self.cache.lookup(destination) {
            Some((
                _,
                State::Negative {
                    action,
                    expires,
                    no_answer,
                },
            )) if *expires > now => {
                let why = match no_answer {
                    true => Refused::NoAnswer,
                    false => refused(*action),
                };
                self.refuse(packet, why, out);
            }
            Some((prefix, State::Pending { .. })) => {
                if !self.cache.enqueue(&prefix, packet.to_vec()) {
                    self.counters.dropped_packets += 1;
                }
            }
            // Resolved but still routed here: the route is being set up,
            // or the peer is refreshing. Send it on.
            Some((_, State::Resolved { .. })) => {
                let packet = out.copy(packet);
                out.push(Effect::Forward(packet));
            }
            _ => {
                self.counters.misses += 1;
                self.resolve(now, source, IpNet::from(destination), packet, out)
            }
        }
    }

    /// Starts resolving `prefix` with `packet` waiting on it, unless its
    /// source has too many destinations pending or no Map-Request left in
    /// its allowance: then the packet is refused at once, so that a
    /// scanning host is refused before anyone else.
    fn resolve(
        &mut self,
        now: Instant,
        source: IpAddr,
        prefix: IpNet,
        packet: &[u8],
        out: &mut Outbox,
    ) {
        if self.cache.pending_from(source) >= PENDING_PER_SOURCE
            || !self.budget.new_destination(now, source)
        {
            log::debug!("{source} -> {prefix}: over the Map-Request limits, refused");
            self.counters.throttled += 1;
            self.refuse(packet, Refused::OverLimits, out);
            return;
        }
        let nonce = self.rng.u64(..);
        let state = State::Pending {
            nonce,
            sent: 1,
            missed: now,
            retry_at: now + REQUEST_RETRY[0],
            source,
            queue: vec![packet.to_vec()],
        };
        if let Err(full) = self.cache.insert(prefix, state) {
            log::debug!(
                "map-cache full ({} entries): dropping a packet for {prefix} ({full:?})",
                self.cache.len()
            );
            self.counters.dropped_packets += 1;
            return;
        }
        log::debug!("miss: {prefix} has no peer; Map-Request sent, packet queued");
        self.send_request(now, nonce, prefix, out);
    }

    /// Sends the Map-Request `nonce` for `prefix` to the next map-server.
    fn send_request(&mut self, now: Instant, nonce: u64, prefix: IpNet, out: &mut Outbox) {
        if self.requests.len() >= self.settings.cache_capacity {
            // Refreshes a dead map-server never answered: forgotten (a
            // pending destination's request is sent again every few
            // hundred ms, so it stays).
            self.requests
                .retain(|_, a| now.saturating_duration_since(a.sent) < REQUEST_FORGOTTEN);
        }
        let map_server = self.pick_map_server();
        let asked = Asked {
            prefix,
            map_server,
            sent: now,
            again: self.requests.contains_key(&nonce),
        };
        self.requests.insert(nonce, asked);
        if let Some(ms) = map_server {
            self.emit_request(ms, nonce, prefix, true, out);
        }
    }

    /// Writes the Map-Request `nonce` for `prefix` to map-server `ms`:
    /// with the N bit (RFC 9437: subscribe) when it resolves, without it
    /// when it only looks up (the map-server then pushes nothing).
    fn emit_request(
        &mut self,
        ms: usize,
        nonce: u64,
        prefix: IpNet,
        notify: bool,
        out: &mut Outbox,
    ) {
        let to = SocketAddr::new(self.settings.map_servers[ms].control_address, CONTROL_PORT);
        let itr_rlocs = [Address::Ip(self.settings.control_address)];
        let records = [RequestRecord {
            notify,
            eid_mask_len: prefix.prefix_len(),
            eid: Address::eid(self.settings.iid, prefix.addr(), None),
        }];
        let request = MapRequest::new(nonce, &itr_rlocs, &records);
        if let Ok(message) = out.write(|buf| request.emit(buf)) {
            self.counters.map_requests += 1;
            out.push(Effect::Control { to, message });
        }
    }

    /// Asks a map-server what this node would get for `eid` (`lispguard
    /// lookup`), changing nothing: no subscription, no push, no peer, no
    /// cache entry. The answer comes as [`Effect::LookedUp`] with the
    /// returned id, after retries as a resolution has them. `None` when
    /// [`LOOKUPS_MAX`] are in progress or there is no map-server.
    pub fn lookup(&mut self, now: Instant, eid: IpAddr, out: &mut Outbox) -> Option<u64> {
        if self.lookups.len() >= LOOKUPS_MAX || self.settings.map_servers.is_empty() {
            return None;
        }
        let nonce = self.rng.u64(..);
        self.lookups.push(Lookup {
            nonce,
            eid,
            sent: 0,
            map_server: None,
            retry_at: now,
        });
        self.lookups_due(now, out);
        Some(nonce)
    }

    /// Sends the lookups' Map-Requests that are due; answers those out of
    /// retries with no reply.
    fn lookups_due(&mut self, now: Instant, out: &mut Outbox) {
        let mut i = 0;
        while i < self.lookups.len() {
            let l = &self.lookups[i];
            if l.retry_at > now {
                i += 1;
                continue;
            }
            let (nonce, eid) = (l.nonce, l.eid);
            let Some(wait) = REQUEST_RETRY.get(l.sent as usize) else {
                let l = self.lookups.swap_remove(i);
                let map_server = l.map_server.map_or(self.settings.control_address, |ms| {
                    self.settings.map_servers[ms].control_address
                });
                out.push(Effect::LookedUp {
                    lookup: l.nonce,
                    map_server,
                    reply: None,
                });
                continue;
            };
            if !self.budget.site(now) {
                self.lookups[i].retry_at =
                    now + self.budget.site_wait(now).max(Duration::from_millis(1));
                i += 1;
                continue;
            }
            let ms = self.pick_map_server();
            let l = &mut self.lookups[i];
            l.sent += 1;
            l.retry_at = now + *wait;
            l.map_server = ms;
            if let Some(ms) = ms {
                self.emit_request(ms, nonce, IpNet::from(eid), false, out);
            }
            i += 1;
        }
    }

    /// Map-servers take turns: a Map-Request that got no answer goes to the
    /// next one.
    /// The map-servers take turns; one that left a message unanswered
    /// is skipped while another answers (its retries and re-handshakes go
    /// on: it is asked again once it answers).
    fn pick_map_server(&mut self) -> Option<usize> {
        let count = self.settings.map_servers.len();
        let first = self.next_map_server;
        let ms = (0..count)
            .map(|k| first.wrapping_add(k) % count)
            .find(|ms| !self.registering[*ms].lost)
            .or((count > 0).then(|| first % count))?;
        self.next_map_server = ms.wrapping_add(1);
        Some(ms)
    }

    /// Map-server `ms` left a message unanswered: start its WireGuard
    /// session afresh, unless that was done lately.
    fn unanswered(&mut self, now: Instant, ms: usize, out: &mut Outbox) {
        let Some(r) = self.registering.get_mut(ms) else {
            return;
        };
        if !r.lost {
            log::info!(
                "the map-server at {} did not answer: handshaking again",
                self.settings.map_servers[ms].control_address
            );
        }
        r.lost = true;
        if r.rehandshaken
            .is_some_and(|at| now.saturating_duration_since(at) < REHANDSHAKE_EVERY)
        {
            return;
        }
        r.rehandshaken = Some(now);
        out.push(Effect::Rehandshake {
            map_server: self.settings.map_servers[ms].control_address,
        });
    }

    /// Map-server `ms` answered: after a loss, what it could not answer is
    /// asked again at once — the "no answer" negative entries are
    /// forgotten, the Map-Register is sent again with retries from 1 s.
    fn answered(&mut self, now: Instant, ms: usize) {
        let r = &mut self.registering[ms];
        r.heard = Some(now);
        if !std::mem::replace(&mut r.lost, false) {
            return;
        }
        log::info!(
            "the map-server at {} answers again",
            self.settings.map_servers[ms].control_address
        );
        if r.nonce.is_some() {
            // Sent again at once, as a fresh start: not counted as one
            // more unanswered.
            r.supersede();
            r.next = now;
        }
        r.retry = REGISTER_RETRY;
        let no_answer: Vec<IpNet> = self
            .cache
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s,
                    State::Negative {
                        no_answer: true,
                        ..
                    }
                )
            })
            .map(|(p, _)| p)
            .collect();
        for prefix in no_answer {
            self.cache.remove(&prefix);
        }
    }

    /// A packet on the TUN whose addresses could not be read: counted,
    /// dropped.
    pub fn on_malformed_packet(&mut self) {
        self.counters.dropped_packets += 1;
    }

    /// A control message that did not arrive through the WireGuard
    /// interface (forged from the underlay with a map-server's address):
    /// counted, never read.
    pub fn on_forged_control(&mut self, from: SocketAddr) {
        log::debug!("control message from {from} not through the tunnel: dropped");
        self.counters.bad_messages += 1;
    }

    /// A control message from `from`.
    pub fn on_control(&mut self, now: Instant, from: SocketAddr, msg: &[u8], out: &mut Outbox) {
        let Some(ms) = self
            .settings
            .map_servers
            .iter()
            .position(|m| m.control_address == from.ip())
        else {
            self.counters.bad_messages += 1;
            return;
        };
        let handled = match msg.first().map(|b| b >> 4) {
            Some(message_type::MAP_REPLY) => self.on_reply(now, ms, msg, out),
            Some(message_type::MAP_NOTIFY) => self.on_notify(now, ms, from, msg, out),
            _ => false,
        };
        if !handled {
            self.counters.bad_messages += 1;
        }
    }

    /// A Map-Reply from map-server `ms`.
    fn on_reply(&mut self, now: Instant, ms: usize, msg: &[u8], out: &mut Outbox) -> bool {
        let Ok(packet) = map_reply::Packet::new_checked(msg) else {
            return false;
        };
        let reply = MapReply::parse(&packet);
        if let Some(i) = self.lookups.iter().position(|l| l.nonce == reply.nonce) {
            let lookup = self.lookups.swap_remove(i);
            self.answered(now, ms);
            self.counters.map_replies += 1;
            let reply = out.copy(msg);
            out.push(Effect::LookedUp {
                lookup: lookup.nonce,
                map_server: self.settings.map_servers[ms].control_address,
                reply: Some(reply),
            });
            return true;
        }
        // Only answers to our own requests: a nonce we did not send is not
        // trusted.
        let Some(asked) = self.requests.remove(&reply.nonce) else {
            return false;
        };
        if let Some(ms) = asked.map_server {
            self.answered(now, ms);
            if !asked.again {
                let sample = now.saturating_duration_since(asked.sent);
                self.registering[ms].round_trip.sample(sample);
            }
        }
        self.counters.map_replies += 1;
        log::debug!("Map-Reply for {}", asked.prefix);
        for record in &reply.records {
            self.apply(now, &record, Some(asked), out);
        }
        // A reply without a record for what was asked (or none at all) is
        // as good as no answer; the retry timer takes care of it.
        true
    }

    fn on_notify(
        &mut self,
        now: Instant,
        ms: usize,
        from: SocketAddr,
        msg: &[u8],
        out: &mut Outbox,
    ) -> bool {
        let Ok(verified) = auth::verify(msg, &self.settings.map_servers[ms].key) else {
            return false;
        };
        let Ok(notify) = MapNotify::parse(&verified) else {
            return false;
        };
        let registering = &mut self.registering[ms];
        if registering.nonce == Some(notify.body.nonce) {
            // The map-server took our Map-Register.
            if registering.acked.is_none() {
                log::info!("registered with the map-server at {from}");
            }
            registering.nonce = None;
            registering.acked = Some(now);
            registering.retry = REGISTER_RETRY;
            registering.next = now + self.settings.register_interval;
            self.answered(now, ms);
            return true;
        }
        self.answered(now, ms);
        if self.registering[ms]
            .superseded
            .contains(&Some(notify.body.nonce))
        {
            // The answer to a Map-Register sent again since: the newer
            // one's is awaited.
            log::debug!("a late Map-Notify for a Map-Register sent again since");
            return true;
        }
        // A push: the other side of a tunnel being set up, or a change to
        // a mapping we resolved.
        self.counters.pushes += 1;
        log::debug!(
            "Map-Notify pushed by the map-server: {} record(s)",
            notify.body.records.len()
        );
        for record in &notify.body.records {
            self.apply(now, &record, None, out);
        }
        // The ack is the Map-Notify as received, as type 5, signed again.
        let key = &self.settings.map_servers[ms].key;
        if let Ok(message) = out.write(|buf| verified.acknowledge(buf, key)) {
            out.push(Effect::Control { to: from, message });
        }
        true
    }

    /// Acts on one mapping record: installs a peer, forgets one, or
    /// remembers a negative answer. `asked` is the Map-Request this
    /// answers, if any.
    fn apply(&mut self, now: Instant, record: &Record, asked: Option<Asked>, out: &mut Outbox) {
        let Some(eid) = EidPrefix::from_address(&record.eid, record.eid_mask_len) else {
            return;
        };
        if eid.iid != self.settings.iid || self.is_own(&eid.prefix) {
            log::warn!("ignoring a mapping for {eid}: not ours to install");
            return;
        }
        let prefix = eid.prefix;
        let ttl = Duration::from_secs(u64::from(record.ttl) * 60);
        let key = record.eid.wireguard_key();
        let revoked = record.eid.revoked();
        // The most preferred locator packets may be sent to (the lowest
        // priority; the first of equals); none, but located: the other
        // side starts the handshake (see [`Handshaking`]).
        let best = |relayed: bool| {
            record
                .locators
                .iter()
                .filter(|l| l.unicast() && (relayed || !l.rloc.is_relayed()))
                .filter_map(|l| Some((l.priority, l.rloc.is_relayed(), l.rloc.endpoint()?)))
                .min_by_key(|(priority, ..)| *priority)
        };
        let chosen = best(true);
        let endpoint = chosen.map(|(.., endpoint)| endpoint);
        // Through a relay: the best of the others is the direct path,
        // tried while the relay carries the traffic.
        let relayed = chosen
            .filter(|(_, relayed, _)| *relayed)
            .map(|_| best(false).map(|(.., direct)| direct));
        let located = record.locators.iter().any(|l| l.rloc.endpoint().is_some());
        let behind_nat = record
            .locators
            .iter()
            .any(|l| matches!(l.rloc, Address::NatTraversal(_)));
        match (key, located) {
            (Some(key), true) if !revoked => {
                let found = Found {
                    prefix,
                    key,
                    endpoint,
                    relayed,
                    behind_nat,
                    ttl,
                };
                let round_trip = asked.map(|a| self.path_round_trip(now, a));
                self.install(now, found, round_trip, out)
            }
            // Pushed without a key: a negative answer healed (the prefix
            // now holds a registration; the next packet resolves it), or
            // a mapping revoked.
            _ if asked.is_none() => {
                if let Some(State::Negative { .. }) = self.cache.get(&prefix) {
                    log::info!("{prefix} is no longer unmapped");
                    self.cache.remove(&prefix);
                } else {
                    self.withdraw(prefix, out);
                }
            }
            _ => {
                self.counters.negative_replies += 1;
                let action = record.action;
                let expires = now + ttl.max(Duration::from_secs(1));
                // A negative answer may cover more than was asked: every
                // destination pending within it is answered too.
                let asked = asked.map(|a| a.prefix);
                let (waiting, _) = self.take_pending(asked.into_iter().chain([prefix]));
                let negative = State::Negative {
                    action,
                    expires,
                    no_answer: false,
                };
                let _ = self.cache.insert(prefix, negative);
                for packet in waiting {
                    self.refuse(&packet, refused(action), out);
                }
            }
        }
    }

    /// Whether `prefix` overlaps this node's own EIDs: never a peer's.
    fn is_own(&self, prefix: &IpNet) -> bool {
        self.settings
            .eids
            .iter()
            .any(|e| e.prefix.contains(prefix) || prefix.contains(&e.prefix))
    }

    /// Removes the pending entries at and within these prefixes; returns
    /// the packets they held, and when the first of them missed.
    fn take_pending(
        &mut self,
        prefixes: impl IntoIterator<Item = IpNet>,
    ) -> (Vec<Vec<u8>>, Option<Instant>) {
        let mut packets = Vec::new();
        let mut first = None;
        for prefix in prefixes {
            for p in self.cache.pending_within(&prefix) {
                if let Some(State::Pending {
                    nonce,
                    queue,
                    missed,
                    ..
                }) = self.cache.remove(&p)
                {
                    self.requests.remove(&nonce);
                    packets.extend(queue);
                    first = Some(first.map_or(missed, |f: Instant| f.min(missed)));
                }
            }
        }
        (packets, first)
    }

    /// The round trip to the destination, as near as this side knows it:
    /// the longer of what the answer to `asked` took (from the last time
    /// it was sent) and its map-server's smoothed round trip.
    fn path_round_trip(&self, now: Instant, asked: Asked) -> Duration {
        let smoothed = asked
            .map_server
            .and_then(|ms| self.registering[ms].round_trip.0);
        let sample = now.saturating_duration_since(asked.sent);
        smoothed.map_or(sample, |smoothed| smoothed.max(sample))
    }

    /// Installs a mapping: its peer, the packets that waited for it, then
    /// its route (the packets go straight to WireGuard, see inject.rs: the
    /// route's netlink round trip is not on a first contact's path).
    /// `replied`: it answers a Map-Request of ours (else it was pushed).
    fn install(
        &mut self,
        now: Instant,
        found: Found,
        round_trip: Option<Duration>,
        out: &mut Outbox,
    ) {
        let replied = round_trip.is_some();
        let round_trip = round_trip.unwrap_or_default();
        let Found {
            prefix,
            key,
            endpoint,
            relayed,
            behind_nat,
            ttl,
        } = found;
        // The prefix may have moved from another peer (a new key).
        if let Some(State::Resolved { key: old, .. }) = self.cache.get(&prefix) {
            if *old != key {
                let old = *old;
                self.detach(old, &prefix, out);
            }
        }
        let (waiting, missed) = self.take_pending([prefix]);
        if let Some(missed) = missed {
            let took = now.saturating_duration_since(missed);
            self.counters.first_contact.observe(took);
        }
        let expires = now + ttl.max(Duration::from_secs(60));
        if self
            .cache
            .insert(prefix, State::Resolved { key, expires })
            .is_err()
        {
            log::warn!("map-cache full: {prefix} is routed but not cached");
        }
        let known = self.peers.contains_key(&key);
        let peer = self
            .peers
            .entry(key)
            .or_insert_with(|| Peer::new(endpoint, now));
        let new_route = peer.prefixes.insert(prefix);
        // Pushed with an endpoint to send to: the other side waits for
        // this one to reach out (a NAT in front of it lets in only what
        // answers), with a new handshake if this side has been silent long
        // (the other side may have forgotten the session).
        let reach_out = !replied && endpoint.is_some();
        // A relay offered while the direct path this side is on carries
        // traffic (WireGuard moved there): it stays there.
        let direct_works = relayed.is_some()
            && known
            && peer.relay.as_ref().is_none_or(|r| r.left)
            && peer.rx > 0
            && now.saturating_duration_since(peer.heard) < DEAD_AFTER;
        let offered = endpoint;
        // An answer without one leaves the endpoint WireGuard has (from
        // the other side's handshake).
        let endpoint = match direct_works {
            true => peer.endpoint,
            false => endpoint.or(peer.endpoint),
        };
        let moved = peer.endpoint != endpoint;
        let changed = new_route || moved || peer.behind_nat != behind_nat;
        peer.endpoint = endpoint;
        peer.behind_nat = behind_nat;
        match (relayed, offered) {
            (Some(direct), Some(at)) if peer.relay.as_ref().map(|r| r.at) != Some(at) => {
                if !direct_works {
                    log::info!("{prefix}: through the relay at {at}");
                }
                peer.relay = Some(Relay {
                    at,
                    direct,
                    left: direct_works,
                    probe_at: now + PROBE_FIRST,
                    probe_wait: PROBE_FIRST,
                });
            }
            (Some(_), Some(_)) => {}
            _ => peer.relay = None,
        }
        let stale = reach_out && known && now.saturating_duration_since(peer.heard) >= STALE_AFTER;
        let handshaking = replied && peer.handshaking.is_some();
        // Resolved again because it was dead (see [`Agent::on_peer_stats`]).
        let dead = handshaking && peer.handshaking.as_ref().is_some_and(|h| h.dead);
        // A new handshake at once (WireGuard would try a new endpoint only
        // when its 5 s are up) when dead, when moved before anything was
        // received, and when pushed another relay port (the map-server
        // gave the pair new ones, e.g. after its restart): the relay
        // learns where this side is only from what it sends.
        let relay_moved = reach_out && known && moved && relayed.is_some();
        let afresh = stale
            || dead
            || relay_moved
            || (known && moved && peer.rx == 0 && (reach_out || handshaking));
        // A first contact: this side starts the handshake (when WireGuard
        // reads the first packet; turning keepalives on to start it as the
        // peer is set up found the other side not ready more often).
        let starts = replied && !known && endpoint.is_some();
        peer.reaching_out |= stale || relay_moved || (reach_out && changed && peer.rx == 0);
        if stale {
            log::info!("{prefix}: pushed again, silent for {STALE_AFTER:?}: a new handshake");
        }
        if afresh {
            (peer.heard, peer.rx, peer.tx) = (now, 0, 0);
            out.push(Effect::RemovePeer { public_key: key });
        }
        if changed || afresh {
            out.push(set_peer(key, peer));
        }
        if starts {
            peer.handshaking = Some(Handshaking {
                packets: waiting.clone(),
                checks: 0,
                round_trip,
                asks: 0,
                dead: false,
            });
            let wait = check_wait(0, round_trip).unwrap_or(HANDSHAKE_CHECKS[0]);
            self.handshake_checks.insert((now + wait, key));
        } else if let Some(h) = peer.handshaking.as_mut().filter(|_| handshaking) {
            // The answer to asking again (see [`MAX_ASKS`]).
            let wait = if afresh {
                // Through the relay, or dead: the first packets again, as
                // to a new peer (WireGuard dropped what the old one held).
                for packet in &h.packets {
                    let packet = out.copy(packet);
                    out.push(Effect::Forward(packet));
                }
                h.checks = 0;
                h.round_trip = round_trip;
                // From here on, a first contact's steps.
                h.dead = false;
                check_wait(0, round_trip).unwrap_or(HANDSHAKE_CHECKS[0])
            } else {
                // The destination reached out: its handshake takes a round
                // trip on the underlay, maybe a long one.
                h.checks = HANDSHAKE_CHECKS.len();
                RELAY_AFTER
            };
            h.packets.extend(waiting.iter().cloned());
            self.handshake_checks.insert((now + wait, key));
        }
        if !waiting.is_empty() {
            log::debug!(
                "{prefix}: its {} queued packets go once its peer is set",
                waiting.len()
            );
        }
        for packet in waiting {
            let packet = out.copy(&packet);
            out.push(Effect::Forward(packet));
        }
        if new_route {
            out.push(Effect::AddRoute(prefix));
        }
    }

    /// Removes `prefix` from peer `key`; the peer goes with its last prefix.
    fn detach(&mut self, key: PublicKey, prefix: &IpNet, out: &mut Outbox) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.prefixes.remove(prefix) {
            return;
        }
        out.push(Effect::RemoveRoute(*prefix));
        if peer.prefixes.is_empty() {
            self.peers.remove(&key);
            out.push(Effect::RemovePeer { public_key: key });
        } else {
            out.push(set_peer(key, peer));
        }
    }

    /// Forgets a mapping: its cache entry, route and (if last) peer.
    fn withdraw(&mut self, prefix: IpNet, out: &mut Outbox) {
        if let Some(State::Resolved { key, .. }) = self.cache.remove(&prefix) {
            log::info!("{prefix} withdrawn");
            self.detach(key, &prefix, out);
        }
    }

    fn refuse(&mut self, packet: &[u8], why: Refused, out: &mut Outbox) {
        self.counters.refused_packets += 1;
        self.counters.refused[why as usize] += 1;
        let packet = out.copy(packet);
        out.push(Effect::Refuse {
            packet,
            why: why.refusal(),
        });
    }

    /// What the WireGuard interface counts for each peer: tells idle peers
    /// from active ones, and dead ones (sending, hearing nothing).
    pub fn on_peer_stats(&mut self, now: Instant, stats: &[PeerStats], out: &mut Outbox) {
        let mut dead = Vec::new();
        let mut moved_off_relay = 0;
        for s in stats {
            let Some(peer) = self.peers.get_mut(&s.public_key) else {
                continue;
            };
            // Counters start again from 0 when the peer is set afresh.
            let delta = |now: u64, before: u64| now.checked_sub(before).unwrap_or(now);
            let (tx, rx) = (delta(s.tx_bytes, peer.tx), delta(s.rx_bytes, peer.rx));
            let sent = tx > KEEPALIVES_BYTES;
            let heard = rx > 0;
            if sent || rx > KEEPALIVES_BYTES {
                peer.active = now;
            }
            let keepalive = wants_keepalive(peer);
            if heard {
                peer.heard = now;
                peer.probe_wait = DEAD_AFTER;
            }
            peer.rx = s.rx_bytes;
            peer.tx = s.tx_bytes;
            if s.rx_bytes > 0 {
                // Its handshake completed.
                peer.handshaking = None;
            }
            if s.rx_bytes > 0 {
                // It answered: reaching out is done.
                peer.reaching_out = false;
            }
            if wants_keepalive(peer) != keepalive {
                out.push(set_peer(s.public_key, peer));
            }
            let keepalive = wants_keepalive(peer);
            if let Some(relay) = peer.relay.as_mut() {
                let prefix = || {
                    peer.prefixes
                        .first()
                        .map(|p| p.to_string())
                        .unwrap_or_default()
                };
                match s.endpoint {
                    // WireGuard heard the peer elsewhere: the direct path
                    // (see [`Effect::ProbeDirect`]); it stays there while
                    // the peer's packets come that way.
                    Some(direct) if direct != relay.at => {
                        if !relay.left {
                            log::info!("the peer of {} moved off the relay to {direct}", prefix());
                            moved_off_relay += 1;
                        }
                        relay.left = true;
                        peer.endpoint = Some(direct);
                    }
                    _ if relay.left => {
                        log::info!("the peer of {} is back on the relay", prefix());
                        relay.left = false;
                        peer.endpoint = Some(relay.at);
                    }
                    _ if now >= relay.probe_at => {
                        if let Some(direct) = relay.direct {
                            out.push(Effect::ProbeDirect {
                                public_key: s.public_key,
                                direct,
                                relay: relay.at,
                                allowed_ips: peer.prefixes.iter().copied().collect(),
                                keepalive,
                            });
                        }
                        relay.probe_wait = (relay.probe_wait * 2).min(PROBE_MAX);
                        relay.probe_at = now + relay.probe_wait;
                    }
                    _ => {}
                }
            }
            let silent = now.saturating_duration_since(peer.heard) >= DEAD_AFTER;
            let probed_lately = peer
                .probed
                .is_some_and(|at| now.saturating_duration_since(at) < peer.probe_wait);
            if sent && silent && !probed_lately {
                if peer.probed.is_some_and(|at| at > peer.heard) {
                    // Probed before and still silent: wait longer next time.
                    peer.probe_wait = (peer.probe_wait * 2).min(DEAD_MAX);
                }
                peer.probed = Some(now);
                dead.extend(peer.prefixes.iter().copied());
                // Its answer starts over as a first contact would: a new
                // handshake, checked, and the map-server asked again if
                // none completes (a relay that went with a restart of the
                // map-server is found again so).
                peer.handshaking = Some(Handshaking {
                    packets: Vec::new(),
                    checks: 0,
                    // Measured again when the answer comes.
                    round_trip: Duration::ZERO,
                    asks: 0,
                    dead: true,
                });
            }
        }
        self.counters.relay_to_direct += moved_off_relay;
        for prefix in dead {
            log::info!("no answer from the peer of {prefix} while sending: resolving it again");
            self.refresh(now, prefix, out);
        }
        self.check_handshakes(now, out);
    }

    /// First contacts whose handshake check is due and found nothing
    /// received (the counters were read just now): each starts its
    /// handshake again, or after the last check asks the map-server again
    /// (see [`Handshaking`]).
    fn check_handshakes(&mut self, now: Instant, out: &mut Outbox) {
        while let Some(&(at, key)) = self.handshake_checks.first() {
            if at > now {
                return;
            }
            self.handshake_checks.pop_first();
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let (Some(h), Some(&prefix)) = (peer.handshaking.as_mut(), peer.prefixes.first())
            else {
                continue;
            };
            h.checks += 1;
            if let Some(wait) = check_wait(h.checks, h.round_trip) {
                self.counters.handshake_retries += 1;
                log::debug!("no handshake with the peer of {prefix} yet: starting it again");
                restart(key, peer, out);
                self.handshake_checks.insert((now + wait, key));
                continue;
            }
            if h.asks >= MAX_ASKS {
                peer.handshaking = None;
                log::warn!(
                    "no handshake with the peer of {prefix}, directly or through a relay: \
                     WireGuard goes on trying"
                );
                continue;
            }
            h.asks += 1;
            self.counters.handshake_fallbacks += 1;
            let next = match h.asks {
                1 => "to have it reach out",
                _ => "for its relay",
            };
            log::info!("no handshake with the peer of {prefix} yet: asking the map-server {next}");
            if self.budget.site(now) {
                let nonce = self.rng.u64(..);
                self.send_request(now, nonce, prefix, out);
            } else {
                self.counters.throttled += 1;
            }
        }
    }

    /// Asks again for a resolved prefix; the answer updates it in place.
    /// Skipped when the site's Map-Request budget is spent: it comes due
    /// again.
    fn refresh(&mut self, now: Instant, prefix: IpNet, out: &mut Outbox) {
        if !self.budget.site(now) {
            self.counters.throttled += 1;
            return;
        }
        let nonce = self.rng.u64(..);
        self.send_request(now, nonce, prefix, out);
    }

    /// Retries, registrations, expiry and the peers' counters that are
    /// due; [`Agent::poll_at`] says when it next has something to do.
    pub fn poll(&mut self, now: Instant, out: &mut Outbox) {
        self.register_due(now, out);
        self.lookups_due(now, out);
        let check_due = self
            .handshake_checks
            .first()
            .is_some_and(|(at, _)| *at <= now);
        if now >= self.next_stats || check_due {
            if now >= self.next_stats {
                self.next_stats = now + STATS_EVERY;
            }
            // Without peers there is nothing to count.
            if !self.peers.is_empty() {
                out.push(Effect::ReadPeerStats);
            } else {
                self.handshake_checks.clear();
            }
        }
        for prefix in self.cache.due(now) {
            let Some(state) = self.cache.get(&prefix).cloned() else {
                continue;
            };
            match state {
                State::Pending { nonce, sent, .. } => self.retry(now, prefix, nonce, sent, out),
                State::Negative { .. } => {
                    self.cache.remove(&prefix);
                }
                State::Resolved { key, .. } => {
                    let idle = self
                        .peers
                        .get(&key)
                        .is_none_or(|p| now.saturating_duration_since(p.active) >= IDLE_AFTER);
                    if idle {
                        log::info!("{prefix} expired and its peer is idle: removed");
                        self.withdraw(prefix, out);
                    } else {
                        let expires = now + REFRESH_GRACE;
                        let _ = self.cache.insert(prefix, State::Resolved { key, expires });
                        self.refresh(now, prefix, out);
                    }
                }
            }
        }
    }

    fn retry(&mut self, now: Instant, prefix: IpNet, nonce: u64, sent: u32, out: &mut Outbox) {
        // Unanswered, and nothing else heard from that map-server since it
        // was sent (a request it dropped under load is no sign of a dead
        // session).
        if let Some(Asked {
            map_server: Some(ms),
            sent,
            ..
        }) = self.requests.get(&nonce).copied()
        {
            if self.registering[ms].heard.is_none_or(|at| at <= sent) {
                self.unanswered(now, ms, out);
            }
        }
        let Some(wait) = REQUEST_RETRY.get(sent as usize) else {
            log::debug!("no Map-Reply for {prefix} after {sent} Map-Requests");
            let (waiting, _) = self.take_pending([prefix]);
            let negative = State::Negative {
                action: lisp::Action::DROP_NO_REASON,
                expires: now + NO_ANSWER_TTL,
                no_answer: true,
            };
            let _ = self.cache.insert(prefix, negative);
            for packet in waiting {
                self.refuse(&packet, Refused::NoAnswer, out);
            }
            return;
        };
        if !self.budget.site(now) {
            // No Map-Request left this instant: the retry waits its turn.
            let turn = self.budget.site_wait(now).max(Duration::from_millis(1));
            self.cache.reschedule(&prefix, now + turn, false);
            return;
        }
        self.cache.reschedule(&prefix, now + *wait, true);
        self.send_request(now, nonce, prefix, out);
    }

    fn register_due(&mut self, now: Instant, out: &mut Outbox) {
        for ms in 0..self.registering.len() {
            if self.registering[ms].next > now {
                continue;
            }
            let nonce = self.rng.u64(..);
            let Some(message) = self.map_register(nonce, ms, out) else {
                continue;
            };
            let r = &self.registering[ms];
            // Unanswered for a retry's time: the session may be dead.
            if r.nonce.is_some() && now.saturating_duration_since(r.sent) >= REGISTER_RETRY {
                self.unanswered(now, ms, out);
            }
            let interval = self.settings.register_interval;
            let r = &mut self.registering[ms];
            match r.nonce {
                Some(_) => r.supersede(),
                None => r.sent = now,
            }
            r.nonce = Some(nonce);
            // While lost, it is sent again with each new handshake.
            let cap = if r.lost { REHANDSHAKE_EVERY } else { interval };
            r.next = now + r.retry.min(cap);
            r.retry = (r.retry * 2).min(interval);
            out.push(Effect::Control {
                to: SocketAddr::new(self.settings.map_servers[ms].control_address, CONTROL_PORT),
                message,
            });
        }
    }

    /// A Map-Register of every EID of this node at its RLOCs, written
    /// into `out`.
    fn map_register(&self, nonce: u64, ms: usize, out: &mut Outbox) -> Option<Bytes> {
        let mut locators: heapless::Vec<Locator, MAX_LOCATORS> = heapless::Vec::new();
        for rloc in &self.rlocs {
            let endpoint = SocketAddr::new(*rloc, self.settings.listen_port);
            if locators
                .push(Locator::reachable(Address::rloc(endpoint)))
                .is_err()
            {
                break;
            }
        }
        let mut records: heapless::Vec<Record, MAX_RECORDS> = heapless::Vec::new();
        for eid in &self.settings.eids {
            let record = Record::mapping(
                eid,
                Some(&self.settings.public_key),
                self.settings.record_ttl,
                &locators,
            );
            if records.push(record).is_err() {
                log::warn!("more than {MAX_RECORDS} EIDs: the rest are not registered");
                break;
            }
        }
        let register = MapRegister::new(Registration {
            nonce,
            key_id: 0,
            algorithm: Algorithm::HmacSha256_128,
            records: List::new(&records),
            xtr: None,
        });
        let key = &self.settings.map_servers[ms].key;
        out.write(|buf| register.emit(buf, key)).ok()
    }

    /// When [`Agent::poll`] next has something to do.
    pub fn poll_at(&self) -> Instant {
        let registers = self.registering.iter().map(|r| r.next);
        let checks = self.handshake_checks.first().map(|(at, _)| *at);
        let lookups = self.lookups.iter().map(|l| l.retry_at);
        self.cache
            .next_deadline()
            .into_iter()
            .chain(registers)
            .chain(checks)
            .chain(lookups)
            .fold(self.next_stats, Instant::min)
    }
}

/// A positive mapping, as a reply or push gives it.
struct Found {
    prefix: IpNet,
    key: PublicKey,
    /// None: not to be sent to (see [`Handshaking`]).
    endpoint: Option<SocketAddr>,
    /// The endpoint is a relay: with the direct endpoint to try, if any.
    relayed: Option<Option<SocketAddr>>,
    /// It was given as a NAT-Traversal locator.
    behind_nat: bool,
    ttl: Duration,
}

fn set_peer(public_key: PublicKey, peer: &Peer) -> Effect {
    Effect::SetPeer {
        public_key,
        endpoint: peer.endpoint,
        allowed_ips: peer.prefixes.iter().copied().collect(),
        keepalive: wants_keepalive(peer),
    }
}

/// Keepalives: while reaching out, and for a peer behind a NAT.
fn wants_keepalive(peer: &Peer) -> bool {
    peer.reaching_out || peer.behind_nat
}

/// When the `k`-th check of a first contact's handshake comes, after the
/// last one: [`HANDSHAKE_CHECKS`], or two of the path's round trips when
/// that is longer (at most [`CHECK_WAIT_MAX`]; the round trip is its
/// Map-Reply's, or its map-server's smoothed one when longer). A handshake
/// is a round trip between the nodes; started again while its answer is
/// still on the way, it is lost twice over: the other side drops the new
/// initiation (within 20 ms of the one it answered), and the answer finds
/// no handshake to complete. None after the last.
fn check_wait(k: usize, round_trip: Duration) -> Option<Duration> {
    let wait = HANDSHAKE_CHECKS.get(k)?;
    Some((*wait).max(round_trip * 2).min(CHECK_WAIT_MAX))
}

/// Sets a peer afresh and hands WireGuard its first packets again: a new
/// peer starts a handshake at once, where the old one would wait out the
/// 5 s after its first attempt.
fn restart(public_key: PublicKey, peer: &Peer, out: &mut Outbox) {
    out.push(Effect::RemovePeer { public_key });
    out.push(set_peer(public_key, peer));
    for packet in peer.handshaking.iter().flat_map(|h| &h.packets) {
        let packet = out.copy(packet);
        out.push(Effect::Forward(packet));
    }
}

/// Why packets for a destination answered with `action` are refused.
fn refused(action: Action) -> Refused {
    if action == Action::DROP_POLICY_DENIED {
        Refused::Denied
    } else {
        Refused::NoMapping
    }
}
