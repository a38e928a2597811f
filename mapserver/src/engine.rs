//! The map-server's decisions, without I/O: what to do with a message from
//! a site, and what is due when time passes. The socket layer feeds it
//! datagrams and the clock, and sends what it leaves in the [`Outbox`].
//!
//! A site is known by the source address of its messages: its control
//! address, which WireGuard guarantees (the inner source of a packet from
//! a peer lies within that peer's allowed-ips). Nothing a site claims about
//! itself is taken on trust: what the map-server pushes about a site comes
//! from that site's authenticated registration. A plain LISP site (no
//! WireGuard) is known on the underlay by its registration's EID prefixes
//! and key ([`Directory::admit_underlay`]); it is never pushed to, never
//! served a WireGuard key, and the two kinds resolve each other only where
//! `may_resolve` names the other site.

use crate::admission::{log_drop, Admitted, Directory, Input};
use crate::answer::{with_records, Answer, Kind};
use crate::change::Change;
use crate::config::{Config, Site, StaticMapping};
use crate::db::{Db, Locators, Mapping, Rloc, SiteId};
use crate::enrolment::{Enrolment, Node};
use crate::first_contact::{FirstContacts, Pair, Start};
use crate::metrics::{DropLog, DropReason, Metrics};
use crate::outbox::{Outbox, OutboxExt};
use crate::push::{PushKey, Pushes};
use crate::relay::Relay;
use ipnet::IpNet;
use lisp::address::NatTraversal;
use lisp::{
    Action, Address, Algorithm, Authenticated, EidPrefix, Locator, MapNotify, MapRegister,
    MapReply, MapRequest, Record, Registration, Untrusted, XtrId, CONTROL_PORT, MAX_RECORDS,
};
use netconf::PublicKey;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest a Map-Reply waits for the destination to acknowledge the push
/// of the requester's mapping (see [`HeldReply`]).
const HOLD_REPLY_MAX: Duration = Duration::from_millis(100);

/// A Map-Reply held until the destination has acknowledged the push (see
/// [`Start::AfterReachOut`]): the destination's agent acknowledges only
/// after it configured the requester as a WireGuard peer and reached out
/// to it, so the requester's first handshake finds it ready.
struct HeldReply {
    to: SocketAddr,
    reply: Vec<u8>,
    waiting_for: Vec<PushKey>,
    until: Instant,
}

/// A site and what the map-server knows of it at run time.
struct SiteState {
    config: Site,
    /// An operator revoked it: its registrations are refused.
    revoked: bool,
    /// Where its WireGuard packets come from, as the map-server's own
    /// WireGuard interface sees it (behind a NAT: the NAT's address).
    observed: Option<SocketAddr>,
    /// Negative prefixes it was answered and asked to hear about (N bit),
    /// until their TTL ends: it hears when a registration overlaps one.
    /// Its own lock: requests answered concurrently add to it.
    negatives: Mutex<Vec<(EidPrefix, Instant)>>,
}

/// A site that resolved an EID-Prefix and may still have it cached.
struct Subscriber {
    site: SiteId,
    until: Instant,
}

/// Shards of [`Subscriptions`]: requests for different prefixes on
/// different threads seldom meet on one lock.
const SUBSCRIPTION_SHARDS: usize = 16;

type SubscriberMap = HashMap<EidPrefix, Vec<Subscriber>>;

/// The subscribers of each EID-Prefix, behind their own locks (a shard of
/// prefixes each): requests answered concurrently
/// ([`MapServer::answer`]) subscribe here.
#[derive(Default)]
struct Subscriptions([Mutex<SubscriberMap>; SUBSCRIPTION_SHARDS]);

impl Subscriptions {
    fn shard(eid: &EidPrefix) -> usize {
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(eid, &mut hasher);
        std::hash::Hasher::finish(&hasher) as usize % SUBSCRIPTION_SHARDS
    }

    /// The shard of `eid`, locked. A thread that panicked holding it left
    /// it consistent: each use is one map operation.
    fn lock(&self, eid: &EidPrefix) -> MutexGuard<'_, SubscriberMap> {
        self.0[Self::shard(eid)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn get_mut(&mut self, eid: &EidPrefix) -> &mut SubscriberMap {
        let shard = &mut self.0[Self::shard(eid)];
        shard.get_mut().unwrap_or_else(|p| p.into_inner())
    }

    fn all_mut(&mut self) -> impl Iterator<Item = &mut SubscriberMap> {
        self.0
            .iter_mut()
            .map(|shard| shard.get_mut().unwrap_or_else(|p| p.into_inner()))
    }
}

/// What answering one EID-Record of a Map-Request decided, before any of
/// it is carried out.
struct Resolution {
    answer: Answer,
    negative: bool,
    /// A hit: the requester may cache the prefix it resolved until then.
    subscribe: Option<(EidPrefix, Instant)>,
    /// A negative answer the requester asked to hear about (N bit).
    subscribe_negative: Option<(EidPrefix, Instant)>,
    /// A hit on a site's mapping: the site to push the requester's
    /// mappings in this instance to.
    push: Option<(SiteId, u32)>,
}

/// A site's negative subscriptions, locked.
fn negatives_of(site: &SiteState) -> MutexGuard<'_, Vec<(EidPrefix, Instant)>> {
    site.negatives.lock().unwrap_or_else(|p| p.into_inner())
}

/// Negative prefixes one site may be subscribed to at a time (RFC 9437
/// style): past it, the one that expires first gives way.
const MAX_NEGATIVE_SUBSCRIPTIONS: usize = 64;

/// State kept across a restart (see [`crate::store`]), its times on this
/// run's clock; sites are named, their ids are this run's.
#[derive(Clone, Debug, Default)]
pub struct Saved {
    /// Registering site and mapping (its `site` field is ignored).
    pub registrations: Vec<(String, Mapping)>,
    /// Revoked sites and the WireGuard key they had when revoked.
    pub revoked: Vec<(String, Option<PublicKey>)>,
    /// Sites' last observed WireGuard endpoints.
    pub observed: Vec<(String, SocketAddr)>,
}

pub struct MapServer {
    /// Indexed by SiteId; None for a site removed from the configuration.
    sites: Vec<Option<SiteState>>,
    ids: HashMap<String, SiteId>,
    /// The sites as the receive threads see them (see [`Directory`]):
    /// built anew whenever a site's control address, key or revocation
    /// changes.
    directory: Arc<Directory>,
    /// When this engine started: the origin of the directory's clock.
    origin: Instant,
    db: Db,
    pushes: Pushes,
    subscribers: Subscriptions,
    registration_ttl: Duration,
    negative_ttl: u32,
    /// Messages per second a site may send; 0: no limit.
    rate_limit: u32,
    metrics: Arc<Metrics>,
    drop_log: Arc<DropLog>,
    /// Nonces of pushed Map-Notifies.
    rng: fastrand::Rng,
    held: Vec<HeldReply>,
    /// Recent first contacts (see [`Start`]).
    first_contacts: FirstContacts,
    /// Pairs of sites with no direct path go through it (see
    /// [`Start::Relayed`]).
    relay: Option<Relay>,
    /// Tokens and the nodes they enrolled (see [`crate::enrolment`]).
    enrolment: Option<Enrolment>,
    /// The map-server's control address and WireGuard port, for the
    /// enrolled nodes to reach it.
    own: (IpAddr, u16),
    /// Unix seconds at `origin` (token expiry is in unix seconds), as
    /// [`MapServer::set_enrolment`] was told.
    origin_unix: i64,
}

/// A registered site as `sites` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteStatus {
    pub name: String,
    /// None for a plain LISP site.
    pub control_address: Option<IpAddr>,
    pub public_key: Option<PublicKey>,
    pub observed: Option<SocketAddr>,
    pub revoked: bool,
    pub mappings: Vec<Mapping>,
}

impl MapServer {
    /// A map-server for `config`; `rng` makes the nonces of its pushes
    /// (seeded from the OS in the daemon, fixed in tests).
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        now: Instant,
        rng: fastrand::Rng,
    ) -> MapServer {
        let drop_log = Arc::new(DropLog::new(now));
        let directory = Directory::new(
            std::iter::empty(),
            0,
            None,
            now,
            metrics.clone(),
            drop_log.clone(),
        );
        let mut server = MapServer {
            sites: Vec::new(),
            ids: HashMap::new(),
            directory: Arc::new(directory),
            origin: now,
            db: Db::default(),
            pushes: Pushes::default(),
            subscribers: Subscriptions::default(),
            registration_ttl: Duration::ZERO,
            negative_ttl: 1,
            rate_limit: 0,
            metrics,
            drop_log,
            rng,
            held: Vec::new(),
            first_contacts: FirstContacts::default(),
            relay: None,
            enrolment: None,
            own: (config.control_address, config.wireguard.listen_port),
            origin_unix: 0,
        };
        server.reload(config, now, &mut Outbox::default());
        server
    }

    /// Relays pairs of sites with no direct path through `relay` (see
    /// [`Start::Relayed`]).
    pub fn set_relay(&mut self, relay: Relay) {
        self.relay = Some(relay);
    }

    /// Enrols nodes with tokens; the nodes it enrolled before are sites
    /// from now on (`config` is the configuration in force). `unix` is
    /// the wall clock at `now`, in seconds: tokens expire by it.
    pub fn set_enrolment(
        &mut self,
        enrolment: Enrolment,
        config: &Config,
        now: Instant,
        unix: i64,
        out: &mut Outbox,
    ) {
        let since = now.saturating_duration_since(self.origin).as_secs() as i64;
        self.origin_unix = unix - since;
        self.enrolment = Some(enrolment);
        self.reload(config, now, out);
    }

    /// Renames enrolled node `site` to `name` (a configured site is named
    /// by the configuration); its registrations, endpoint and revocation
    /// go with it ([`Change::Renamed`]).
    pub fn rename(&mut self, site: &str, name: &str, out: &mut Outbox) -> Result<(), String> {
        if name.is_empty() || name.len() > 64 || name.contains(char::is_whitespace) {
            return Err(format!("'{name}': a name is 1 to 64 characters, no spaces"));
        }
        if self.ids.contains_key(name) {
            return Err(format!("'{name}' is taken: a site has that name"));
        }
        let enrolment = self.enrolment.as_mut();
        let node = enrolment
            .and_then(|e| e.node_mut(site))
            .ok_or_else(|| format!("no enrolled node is named '{site}' (see sites)"))?;
        node.name = name.to_string();
        let id = self.ids.remove(site).ok_or("no such site")?;
        self.ids.insert(name.to_string(), id);
        if let Some(state) = self.site_mut(id) {
            state.config.name = name.to_string();
        }
        self.rebuild_directory();
        out.store(Change::Renamed {
            from: site.to_string(),
            to: name.to_string(),
        });
        log::info!("node '{site}' renamed '{name}'");
        Ok(())
    }

    /// The sites of the nodes enrolled.
    /// The site `node` is, with its group's policy.
    fn enrolled_site(&self, node: &Node) -> Site {
        match &self.enrolment {
            Some(enrolment) => enrolment.site_of(node),
            None => node.site(),
        }
    }

    pub fn enrolled_sites(&self) -> Vec<Site> {
        let nodes = self.enrolment.iter().flat_map(|e| e.nodes());
        nodes.map(|n| self.enrolled_site(n)).collect()
    }

    /// The tokens' side of `token create` and `token revoke`.
    pub fn enrolment_mut(&mut self) -> Option<&mut Enrolment> {
        self.enrolment.as_mut()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The sites as the receive threads are to see them: handed to them
    /// (the server swaps it in) whenever it is a new one.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    fn rebuild_directory(&mut self) {
        let sites = self.sites.iter().enumerate().filter_map(|(id, s)| {
            let s = s.as_ref()?;
            Some((id as SiteId, &s.config, s.revoked))
        });
        let directory = Directory::new(
            sites,
            self.rate_limit,
            Some(&self.directory),
            self.origin,
            self.metrics.clone(),
            self.drop_log.clone(),
        );
        self.directory = Arc::new(directory);
    }

    /// Applies a new configuration without losing registrations: sites keep
    /// theirs unless they left the configuration, changed key, or lost the
    /// prefixes; subscribers hear of what was removed.
    pub fn reload(&mut self, config: &Config, now: Instant, out: &mut Outbox) {
        self.registration_ttl = Duration::from_secs(config.lisp.registration_ttl);
        self.negative_ttl = config.lisp.negative_ttl;
        self.rate_limit = config.lisp.rate_limit;
        self.own = (config.control_address, config.wireguard.listen_port);
        if let (Some(enrolment), Some(changed)) = (self.enrolment.as_mut(), &config.enrolment) {
            enrolment.set_config(changed.clone());
        }
        let mut kept = vec![false; self.sites.len()];
        let enrolled = self.enrolled_sites();
        for site in config.sites.iter().chain(&enrolled) {
            let next = self.ids.len() as SiteId;
            let id = *self.ids.entry(site.name.clone()).or_insert(next);
            let slot = id as usize;
            if slot >= self.sites.len() {
                self.sites.resize_with(slot + 1, || None);
                kept.resize(slot + 1, false);
            }
            kept[slot] = true;
            let old = self.sites[slot].take();
            // A revocation holds until the site gets a new key.
            let revoked = old
                .as_ref()
                .is_some_and(|s| s.revoked && s.config.public_key() == site.public_key());
            if !revoked && old.as_ref().is_some_and(|s| s.revoked) {
                log::info!("site '{}' has a new key: no longer revoked", site.name);
                out.store(Change::Unrevoked {
                    site: site.name.clone(),
                });
            }
            let (observed, negatives) =
                old.map_or((None, Mutex::default()), |s| (s.observed, s.negatives));
            self.sites[slot] = Some(SiteState {
                config: site.clone(),
                revoked,
                observed,
                negatives,
            });
            // Registrations the new configuration no longer allows go.
            let stale: Vec<EidPrefix> = self
                .db
                .site_prefixes(id)
                .filter(|eid| {
                    !allowed(site, eid)
                        || self.db.get(eid).is_some_and(|m| m.key != site.public_key())
                })
                .copied()
                .collect();
            for eid in stale {
                self.withdraw(&eid, now, out);
            }
        }
        for (slot, kept) in kept.iter().enumerate() {
            if !kept && self.sites[slot].is_some() {
                self.remove_registrations(slot as SiteId, now, out);
                self.pushes.forget_site(slot as SiteId);
                if let Some(gone) = self.sites[slot].take() {
                    if gone.revoked {
                        out.store(Change::Unrevoked {
                            site: gone.config.name,
                        });
                    }
                }
            }
        }
        self.rebuild_directory();
        // A mappings file is streamed in by the caller (update_statics).
        if config.lisp.mappings_file.is_none() {
            let mut update = self.update_statics(now);
            for s in &config.statics {
                update.add(s.clone(), out);
            }
            update.finish();
        }
        self.update_gauge();
    }

    /// Starts replacing the static mappings: feed each with
    /// [`StaticsUpdate::add`] (a mappings file is streamed, never held
    /// whole), then [`StaticsUpdate::finish`] removes those not added again.
    pub fn update_statics(&mut self, now: Instant) -> StaticsUpdate<'_> {
        let mut before: Vec<(EidPrefix, bool)> = self
            .db
            .iter()
            .filter(|m| m.site.is_none())
            .map(|m| (m.eid, false))
            .collect();
        before.sort_unstable();
        let subscribed = self
            .sites
            .iter()
            .flatten()
            .any(|s| !negatives_of(s).is_empty());
        StaticsUpdate {
            engine: self,
            before,
            subscribed,
            now,
            added: 0,
        }
    }

    /// Takes back the state of a previous run: registrations that have not
    /// expired and that the configuration still allows (same site, same
    /// key, allowed prefix), revocations of sites that kept their key, the
    /// sites' last endpoints. What it drops is withdrawn in `out`.
    /// Returns how many registrations it restored.
    pub fn restore(&mut self, saved: Saved, now: Instant, out: &mut Outbox) -> usize {
        for (name, key) in saved.revoked {
            let site = self
                .ids
                .get(&name)
                .copied()
                .and_then(|id| self.site_mut(id));
            match site {
                Some(site) if site.config.public_key() == key => site.revoked = true,
                _ => out.store(Change::Unrevoked { site: name }),
            }
        }
        self.rebuild_directory();
        for (name, endpoint) in saved.observed {
            if let Some(site) = self
                .ids
                .get(&name)
                .copied()
                .and_then(|id| self.site_mut(id))
            {
                site.observed = Some(endpoint);
            }
        }
        let mut restored = 0;
        for (name, mapping) in saved.registrations {
            let id = self.ids.get(&name).copied();
            let keep = id.and_then(|id| {
                let site = self.site(id)?;
                let fits = !site.revoked
                    && allowed(&site.config, &mapping.eid)
                    && mapping.key == site.config.public_key()
                    && mapping.expires.is_some_and(|at| at > now)
                    && self.db.get(&mapping.eid).is_none();
                fits.then_some(id)
            });
            match keep {
                Some(id) => {
                    self.db.insert(Mapping {
                        site: Some(id),
                        ..mapping
                    });
                    restored += 1;
                }
                None => out.store(Change::Withdrawn { eid: mapping.eid }),
            }
        }
        self.update_gauge();
        restored
    }

    /// The WireGuard keys of revoked sites: the tunnel keeps no peer for
    /// them.
    pub fn revoked_keys(&self) -> Vec<PublicKey> {
        self.sites
            .iter()
            .flatten()
            .filter(|s| s.revoked)
            .filter_map(|s| s.config.public_key())
            .collect()
    }

    fn site(&self, id: SiteId) -> Option<&SiteState> {
        self.sites.get(id as usize)?.as_ref()
    }

    fn site_mut(&mut self, id: SiteId) -> Option<&mut SiteState> {
        self.sites.get_mut(id as usize)?.as_mut()
    }

    /// What the map-server's WireGuard interface sees as the endpoint of the
    /// peer with `public_key`.
    pub fn observed_endpoint(
        &mut self,
        public_key: &PublicKey,
        endpoint: Option<SocketAddr>,
        out: &mut Outbox,
    ) {
        for site in self.sites.iter_mut().flatten() {
            if site.config.public_key() == Some(*public_key) && site.observed != endpoint {
                site.observed = endpoint;
                if let Some(endpoint) = endpoint {
                    out.store(Change::Observed {
                        site: site.config.name.clone(),
                        endpoint,
                    });
                }
            }
        }
    }

    /// Handles one datagram from `from` as the server does: admits it
    /// ([`Directory::admit`]), answers it if it is a request that needs
    /// no push ([`MapServer::answer`]), else decides.
    pub fn handle(&mut self, now: Instant, from: SocketAddr, msg: &[u8], out: &mut Outbox) {
        let directory = self.directory.clone();
        match directory.admit(now, from, msg) {
            Ok(admitted) => {
                if !self.answer(now, &admitted, out) {
                    self.decide(now, admitted, out);
                }
            }
            Err(refused) => directory.refuse(now, refused, from),
        }
    }

    /// Handles one datagram from `from` on the underlay listener, as the
    /// server does ([`Directory::admit_underlay`]).
    pub fn handle_underlay(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: &[u8],
        out: &mut Outbox,
    ) {
        let directory = self.directory.clone();
        match directory.admit_underlay(now, from, msg) {
            Ok(admitted) => {
                if !self.answer(now, &admitted, out) {
                    self.decide(now, admitted, out);
                }
            }
            Err(refused) => directory.refuse(now, refused, from),
        }
    }

    /// Decides on a message a receive thread admitted. The directory it
    /// was admitted by may be older than a revocation made meanwhile:
    /// that is checked again here.
    pub fn decide(&mut self, now: Instant, admitted: Admitted<'_>, out: &mut Outbox) {
        let Admitted { site, from, input } = admitted;
        match input {
            Input::Register(register) => self.on_register(now, site, from, register, out),
            Input::Request(request) => self.on_request(now, site, from, request, out),
            Input::NotifyAck(ack) => self.on_notify_ack(now, site, ack, out),
            Input::Enrol(untrusted) => self.on_enrol(now, from, untrusted, out),
        }
    }

    /// A node enrolling with a token (see [`crate::enrolment`]): verified
    /// with the token's key, decided, and answered with a Map-Notify
    /// (same key, xTR-ID and Site-ID echoed) of, in this order, the node's
    /// control address, the map-server's own mapping (its control address
    /// and WireGuard key, its WireGuard port in a NAT-Traversal locator:
    /// the node reaches it at the token's address), and the node's EIDs.
    /// A refused one gets no answer, and is counted.
    fn on_enrol(
        &mut self,
        now: Instant,
        from: SocketAddr,
        untrusted: Untrusted<'_>,
        out: &mut Outbox,
    ) {
        let Some(mut enrolment) = self.enrolment.take() else {
            return self.dropped(now, DropReason::UnknownToken, from, None);
        };
        let decided = (|| {
            let xtr = untrusted.untrusted_xtr().ok_or(DropReason::Malformed)?;
            let grant = crate::enrolment::untrusted_grant(untrusted.untrusted_records().iter());
            let (id, key) = enrolment
                .key_of(xtr.site_id, grant)
                .ok_or(DropReason::UnknownToken)?;
            let verified = untrusted.verify(&key).map_err(|_| DropReason::AuthFailed)?;
            let register = MapRegister::parse(&verified).map_err(|_| DropReason::Malformed)?;
            let unix =
                self.origin_unix + now.saturating_duration_since(self.origin).as_secs() as i64;
            let taken =
                |eid: &EidPrefix| self.db.lookup(eid).is_some() || self.claimant(eid).is_some();
            let control_taken = |address: IpAddr| {
                address == self.own.0
                    || self
                        .sites
                        .iter()
                        .flatten()
                        .any(|s| s.config.control_address() == Some(address))
            };
            let enrolled = enrolment.enrol(unix, (id, key), &register, taken, control_taken)?;
            Ok((enrolled, key, register.body.nonce, xtr))
        })();
        let public_key = netconf::public_key(enrolment.private_key());
        self.enrolment = Some(enrolment);
        let (enrolled, key, nonce, xtr) = match decided {
            Ok(decided) => decided,
            Err(reason) => return self.dropped(now, reason, from, None),
        };
        let node = &enrolled.node;
        if enrolled.new {
            log::info!(
                "node '{}' enrolled with token {} from {from}: control address {}, EIDs {:?}",
                node.name,
                node.token,
                node.control_address,
                node.eids.iter().map(|e| e.to_string()).collect::<Vec<_>>()
            );
            let site = self.enrolled_site(node);
            self.add_site(site);
            if let Some(token) = &enrolled.learnt {
                log::info!("group token {} seen first: kept", token.id);
                out.store(Change::TokenLearnt(Box::new(token.clone())));
            }
            out.store(Change::Enrolled {
                node: Box::new(node.clone()),
                uses_left: enrolled.uses_left,
            });
        }
        let ttl = (self.registration_ttl.as_secs() / 60) as u32;
        let host = |address: IpAddr| EidPrefix::new(0, IpNet::from(address));
        let mut answers: heapless::Vec<Answer, MAX_RECORDS> = heapless::Vec::new();
        let _ = answers.push(Answer::mapping(
            host(node.control_address),
            Some(node.public_key),
            ttl,
            heapless::Vec::new(),
        ));
        let wireguard = NatTraversal {
            ms_port: CONTROL_PORT,
            etr_port: self.own.1,
            ..NatTraversal::default()
        };
        let mut locators = heapless::Vec::new();
        let _ = locators.push(Locator::reachable(Address::NatTraversal(wireguard)));
        let _ = answers.push(Answer::mapping(
            host(self.own.0),
            Some(public_key),
            ttl,
            locators,
        ));
        for eid in &node.eids {
            let _ = answers.push(Answer::mapping(
                *eid,
                Some(node.public_key),
                ttl,
                heapless::Vec::new(),
            ));
        }
        let write = |buf: &mut [u8]| write_notify(nonce, &answers, Some(xtr), &key, buf);
        if out.send(from, write).is_ok() {
            self.metrics.notifies_sent.fetch_add(1, Relaxed);
        }
    }

    /// Adds a site that enrolled (its id is new, or the one it had).
    fn add_site(&mut self, site: Site) {
        let next = self.ids.len() as SiteId;
        let id = *self.ids.entry(site.name.clone()).or_insert(next);
        let slot = id as usize;
        if slot >= self.sites.len() {
            self.sites.resize_with(slot + 1, || None);
        }
        self.sites[slot] = Some(SiteState {
            config: site,
            revoked: false,
            observed: None,
            negatives: Mutex::default(),
        });
        self.rebuild_directory();
    }

    fn on_register(
        &mut self,
        now: Instant,
        id: SiteId,
        from: SocketAddr,
        register: MapRegister<'_>,
        out: &mut Outbox,
    ) {
        let Some(site) = self.site(id) else { return };
        if site.revoked {
            return self.dropped(now, DropReason::Revoked, from, Some(id));
        }
        // Check every record before storing any: all or nothing.
        let mut mappings: heapless::Vec<Mapping, MAX_RECORDS> = heapless::Vec::new();
        for record in &register.body.records {
            let mapping = match self.mapping_from(id, &record, now) {
                Ok(mapping) => mapping,
                Err(reason) => return self.dropped(now, reason, from, Some(id)),
            };
            let _ = mappings.push(mapping);
        }
        for mapping in mappings {
            let eid = mapping.eid;
            let registered = self
                .db
                .get(&eid)
                .map(|old| (old.registered, old.same_as(&mapping)));
            let mapping = Mapping {
                registered: registered.map_or(now, |(at, _)| at),
                ..mapping
            };
            out.store(Change::Registered {
                site: self.site_name(id).to_string(),
                mapping: Box::new(mapping.clone()),
            });
            self.db.insert(mapping);
            match registered {
                None => {
                    log::info!("site '{}' registered {eid}", self.site_name(id));
                    self.notify_negative(&eid, Some(id), now, out);
                }
                Some((_, true)) => {}
                Some((_, false)) => {
                    log::info!("site '{}' changed {eid}", self.site_name(id));
                    self.notify_subscribers(&eid, None, now, out);
                }
            }
        }
        self.metrics.map_registers.fetch_add(1, Relaxed);
        self.update_gauge();
        self.pushes.resume(id, now, out);
        if register.want_map_notify {
            // Its fields copied, xTR-ID and Site-ID included (RFC 9301 §5.7).
            let notify = MapNotify {
                body: register.body,
            };
            let Some(site) = self.site(id) else { return };
            if out
                .send(from, |buf| notify.emit(buf, &site.config.key))
                .is_ok()
            {
                self.metrics.notifies_sent.fetch_add(1, Relaxed);
            }
        }
    }

    /// The mapping a site's record asks for, or why it may not have it.
    fn mapping_from(
        &self,
        id: SiteId,
        record: &Record,
        now: Instant,
    ) -> Result<Mapping, DropReason> {
        let site = &self.site(id).ok_or(DropReason::UnknownSource)?.config;
        let eid = EidPrefix::from_address(&record.eid, record.eid_mask_len)
            .ok_or(DropReason::Malformed)?;
        if !allowed(site, &eid) {
            return Err(DropReason::OutsidePrefix);
        }
        // A WireGuard site's key, or none from a plain LISP site.
        if record.eid.wireguard_key() != site.public_key() {
            return Err(DropReason::KeyMismatch);
        }
        if self.db.get(&eid).is_some_and(|m| m.site != Some(id)) {
            return Err(DropReason::OwnedByOther);
        }
        let rlocs = record
            .locators
            .iter()
            .filter_map(|locator| {
                Some(Rloc {
                    address: locator.rloc.endpoint()?,
                    priority: locator.priority,
                    weight: locator.weight,
                })
            })
            .collect();
        Ok(Mapping {
            site: Some(id),
            eid,
            key: site.public_key(),
            rlocs,
            ttl: record.ttl,
            registered: now,
            expires: Some(now + self.registration_ttl),
        })
    }

    /// Answers a Map-Request that needs no push, reading the database and
    /// subscribing behind narrow locks only, so that the server answers
    /// requests on several threads at once (`&self`, under a read lock).
    /// Returns false, having done nothing, when the message needs
    /// [`MapServer::decide`]: it is no request, or it resolves a site's
    /// mapping, and that site is to be pushed the requester's (with the
    /// reply held for its ack).
    pub fn answer(&self, now: Instant, admitted: &Admitted<'_>, out: &mut Outbox) -> bool {
        let Admitted {
            site: id,
            from,
            input: Input::Request(request),
        } = admitted
        else {
            return false;
        };
        let (id, from) = (*id, *from);
        if self.site(id).is_some_and(|s| s.revoked) {
            self.dropped(now, DropReason::Revoked, from, Some(id));
            return true;
        }
        let mut resolved: heapless::Vec<Resolution, MAX_RECORDS> = heapless::Vec::new();
        for wanted in &request.records {
            let Some(r) = self.resolve(now, id, &wanted) else {
                continue;
            };
            if r.push.is_some_and(|(owner, _)| owner != id) {
                // A push: decide resolves it all again under the write
                // lock (the mappings may change between the two locks).
                return false;
            }
            let _ = resolved.push(r);
        }
        self.metrics.map_requests.fetch_add(1, Relaxed);
        let mut answers: heapless::Vec<Answer, MAX_RECORDS> = heapless::Vec::new();
        for r in resolved {
            self.subscribe_as_resolved(id, &r);
            let _ = answers.push(r.answer);
        }
        self.reply(from, request.nonce, &answers, out);
        true
    }

    /// Answers a Map-Request, pushing to the sites whose mappings it
    /// resolves.
    fn on_request(
        &mut self,
        now: Instant,
        id: SiteId,
        from: SocketAddr,
        request: MapRequest<'_>,
        out: &mut Outbox,
    ) {
        if self.site(id).is_some_and(|s| s.revoked) {
            return self.dropped(now, DropReason::Revoked, from, Some(id));
        }
        self.metrics.map_requests.fetch_add(1, Relaxed);
        let mut answers: heapless::Vec<Answer, MAX_RECORDS> = heapless::Vec::new();
        let mut waiting_for = Vec::new();
        for wanted in &request.records {
            let Some(mut r) = self.resolve(now, id, &wanted) else {
                continue;
            };
            self.subscribe_as_resolved(id, &r);
            if let Some((owner, iid)) = r.push.filter(|(owner, _)| *owner != id) {
                // Pushed before the reply goes: the destination's agent
                // then has a head start on the requester's handshake.
                let start = self.who_starts(now, id, owner, iid, r.answer.eid, request.nonce);
                let push = self.push_mappings(owner, id, iid, start == Start::Requester, now, out);
                match start {
                    Start::Requester => {}
                    Start::Destination => r.answer.not_to_be_sent_to(),
                    Start::AfterReachOut | Start::Relayed => waiting_for.extend(push),
                }
                if let Some(relay) = self.relay_locator(id, owner) {
                    r.answer.through(relay);
                }
            }
            let _ = answers.push(r.answer);
        }
        if waiting_for.is_empty() {
            return self.reply(from, request.nonce, &answers, out);
        }
        let mut buf = vec![0; crate::outbox::MAX_DATAGRAM];
        if let Ok(len) = write_reply(request.nonce, &answers, &mut buf) {
            buf.truncate(len);
            self.metrics.held_replies.fetch_add(1, Relaxed);
            self.held.push(HeldReply {
                to: from,
                reply: buf,
                waiting_for,
                until: now + HOLD_REPLY_MAX,
            });
        }
    }

    /// Who starts the WireGuard handshake of a first contact between
    /// `requester` and the destination `owner`'s mapping `eid`, asked for
    /// by the Map-Request `nonce` (see [`Start`]); a relayed pair has its
    /// relay ports from here on.
    fn who_starts(
        &mut self,
        now: Instant,
        requester: SiteId,
        owner: SiteId,
        iid: u32,
        eid: EidPrefix,
        nonce: u64,
    ) -> Start {
        let pair = Pair {
            destination_open: self.seen_where_registered(owner, iid),
            no_direct_path: self.behind_nat_changing_ports(requester, owner, iid),
            relayed_now: self
                .relay
                .as_ref()
                .is_some_and(|r| r.ports(requester, owner).is_some()),
            relay: self.relay.is_some(),
        };
        let start = self
            .first_contacts
            .decide(now, requester, owner, eid, nonce, pair);
        if start != Start::Relayed {
            return start;
        }
        match &self.relay {
            Some(relay) if relay.allocate(requester, owner, now).is_some() => Start::Relayed,
            _ => Start::AfterReachOut,
        }
    }

    /// Whether both sites are behind NATs, one of them seen at a port other
    /// than its WireGuard port: a NAT that picks a new port per
    /// destination, so neither can learn where to reach the other.
    fn behind_nat_changing_ports(&self, a: SiteId, b: SiteId, iid: u32) -> bool {
        let seen_at = |site: SiteId| {
            let seen = self.site(site).and_then(|s| s.observed)?;
            let registered: Vec<SocketAddr> = self
                .mappings_of(site, iid)
                .flat_map(|m| m.rlocs.iter().map(|r| r.address))
                .collect();
            let behind_nat = !registered.contains(&seen);
            let port_changed = !registered.iter().any(|r| r.port() == seen.port());
            Some((behind_nat, port_changed))
        };
        match (seen_at(a), seen_at(b)) {
            (Some((true, a_changed)), Some((true, b_changed))) => a_changed || b_changed,
            _ => false,
        }
    }

    /// The relay's locator for site `to` to reach site `about` at, while
    /// the pair is relayed.
    fn relay_locator(&self, to: SiteId, about: SiteId) -> Option<Locator<'static>> {
        let relay = self.relay.as_ref()?;
        let ports = relay.ports(to, about)?;
        let seen = self.site(about).and_then(|s| s.observed).map(|o| o.ip());
        let at = SocketAddr::new(relay.address(), ports.first);
        Some(Locator {
            priority: 0,
            ..Locator::reachable(Address::relayed(at, seen))
        })
    }

    /// Whether this map-server sees `site`'s WireGuard endpoint at one of
    /// the locators of its mappings in `iid`: no NAT in front of it.
    fn seen_where_registered(&self, site: SiteId, iid: u32) -> bool {
        let Some(seen) = self.site(site).and_then(|s| s.observed) else {
            return false;
        };
        let mut mappings = self.mappings_of(site, iid).peekable();
        mappings.peek().is_some() && mappings.all(|m| m.rlocs.iter().any(|r| r.address == seen))
    }

    /// `site`'s registered mappings in instance `iid`.
    fn mappings_of(&self, site: SiteId, iid: u32) -> impl Iterator<Item = &Mapping> {
        self.db
            .site_prefixes(site)
            .filter(move |e| e.iid == iid)
            .filter_map(|e| self.db.get(e))
    }

    /// What the map-server answers `site` for one EID-Record it asked
    /// for; changes nothing.
    fn resolve(
        &self,
        now: Instant,
        id: SiteId,
        wanted: &lisp::RequestRecord,
    ) -> Option<Resolution> {
        let eid = EidPrefix::from_address(&wanted.eid, wanted.eid_mask_len)?;
        let negative = |answer, subscribe_negative| Resolution {
            answer,
            negative: true,
            subscribe: None,
            subscribe_negative,
            push: None,
        };
        Some(match self.db.lookup(&eid) {
            Some(m) if self.may_resolve(id, m) => {
                let until = now + Duration::from_secs(u64::from(m.ttl) * 60);
                // Without the N bit (RFC 9437) the requester only looks
                // (`lispguard lookup`): it is not subscribed, and the
                // owner is not pushed its mapping.
                let lisp = |id| self.site(id).is_some_and(|s| s.config.wireguard.is_none());
                let answer = match lisp(id) {
                    true => self.record_of(m).without_key(),
                    false => self.record_of(m),
                };
                Resolution {
                    answer,
                    negative: false,
                    subscribe: wanted.notify.then_some((m.eid, until)),
                    subscribe_negative: None,
                    // Only between two WireGuard sites: a push configures a
                    // tunnel.
                    push: m
                        .site
                        .filter(|owner| wanted.notify && !lisp(*owner) && !lisp(id))
                        .map(|owner| (owner, m.eid.iid)),
                }
            }
            Some(denied) => negative(
                Answer::negative(denied.eid, self.negative_ttl, Action::DROP_POLICY_DENIED),
                None,
            ),
            None => {
                // Another instance's layout is not the requester's to
                // learn: it gets back what it asked.
                let member = self
                    .site(id)
                    .is_some_and(|s| s.config.eids.iter().any(|e| e.iid == eid.iid));
                let prefix = match member {
                    true => self.db.widest_negative(&eid),
                    false => eid,
                };
                let ttl = Duration::from_secs(u64::from(self.negative_ttl) * 60);
                let subscribe = (wanted.notify && member).then_some((prefix, now + ttl));
                negative(
                    Answer::negative(prefix, self.negative_ttl, Action::DROP_NO_REASON),
                    subscribe,
                )
            }
        })
    }

    /// Counts a negative answer (logs a positive one) and subscribes
    /// `site` to what it was answered, behind the subscriptions' own
    /// locks: once per answer given (`resolve` may run twice for one).
    fn subscribe_as_resolved(&self, site: SiteId, r: &Resolution) {
        if r.negative {
            self.metrics.negative_replies.fetch_add(1, Relaxed);
        } else {
            log::debug!("site '{}' resolved {}", self.site_name(site), r.answer.eid);
        }
        if let Some((eid, until)) = r.subscribe {
            self.subscribe(eid, site, until);
        }
        if let Some((negative, until)) = r.subscribe_negative {
            self.subscribe_negative(negative, site, until);
        }
    }

    /// Sends the Map-Reply with `answers`.
    fn reply(&self, to: SocketAddr, nonce: u64, answers: &[Answer], out: &mut Outbox) {
        if out.send(to, |buf| write_reply(nonce, answers, buf)).is_ok() {
            self.metrics.map_replies.fetch_add(1, Relaxed);
        }
    }

    /// Sends the held replies no longer waiting for anything, or waiting
    /// past their time.
    fn release_replies(&mut self, now: Instant, out: &mut Outbox) {
        let metrics = &self.metrics;
        self.held.retain(|held| {
            if !held.waiting_for.is_empty() && held.until > now {
                return true;
            }
            out.send_copy(held.to, &held.reply);
            metrics.map_replies.fetch_add(1, Relaxed);
            false
        });
    }

    /// Policy: never across instance IDs; within one, any site of the
    /// requester's kind (static mappings count as WireGuard ones) unless
    /// its `may_resolve` names the sites it may reach; a site of the other
    /// kind only when `may_resolve` names it.
    fn may_resolve(&self, requester: SiteId, mapping: &Mapping) -> bool {
        let Some(site) = self.site(requester) else {
            return false;
        };
        if !site.config.eids.iter().any(|e| e.iid == mapping.eid.iid) {
            return false;
        }
        let owner = mapping.site.and_then(|o| self.site(o));
        let named = |names: &Vec<String>| {
            owner.is_some_and(|o| {
                names.iter().any(|name| match name.strip_prefix("group:") {
                    Some(group) => o.config.group.as_deref() == Some(group),
                    None => *name == o.config.name,
                })
            })
        };
        let lisp_owner = owner.is_some_and(|o| o.config.wireguard.is_none());
        if site.config.wireguard.is_none() != lisp_owner {
            return site.config.may_resolve.as_ref().is_some_and(named);
        }
        match (&site.config.may_resolve, owner) {
            (None, _) | (Some(_), None) => true,
            (Some(names), Some(_)) => named(names),
        }
    }

    /// Remembers that `site` was told nothing lies in `negative` and wants
    /// to hear otherwise; bounded per site, expired entries go first.
    fn subscribe_negative(&self, negative: EidPrefix, site: SiteId, until: Instant) {
        let Some(state) = self.site(site) else {
            return;
        };
        let mut negatives = negatives_of(state);
        if let Some(entry) = negatives.iter_mut().find(|(p, _)| *p == negative) {
            entry.1 = until;
            return;
        }
        if negatives.len() >= MAX_NEGATIVE_SUBSCRIPTIONS {
            let first = negatives
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(n, _)| n);
            if let Some(n) = first {
                negatives.swap_remove(n);
            }
        }
        negatives.push((negative, until));
    }

    /// A new mapping of `eid` appeared (a registration of `owner`, or a
    /// static one): each site told that a prefix overlapping it held
    /// nothing hears that its negative answer no longer holds — one
    /// Map-Notify record per negative prefix: no locators, TTL 0,
    /// No-Action, A bit (RFC 9437 style).
    fn notify_negative(
        &mut self,
        eid: &EidPrefix,
        owner: Option<SiteId>,
        now: Instant,
        out: &mut Outbox,
    ) {
        let overlaps = |p: &EidPrefix| p.contains(eid) || eid.contains(p);
        let mut due: Vec<(SiteId, heapless::Vec<Answer, MAX_RECORDS>)> = Vec::new();
        for (id, site) in self.sites.iter_mut().enumerate() {
            let Some(site) = site.as_mut() else { continue };
            let negatives = site.negatives.get_mut().unwrap_or_else(|p| p.into_inner());
            negatives.retain(|(_, until)| *until > now);
            if site.revoked || Some(id as SiteId) == owner {
                continue;
            }
            let mut records = heapless::Vec::new();
            negatives.retain(|(p, _)| {
                if !overlaps(p) || records.is_full() {
                    return true;
                }
                let _ = records.push(Answer::negative(*p, 0, Action::NO_ACTION));
                false
            });
            if !records.is_empty() {
                due.push((id as SiteId, records));
            }
        }
        for (to, records) in due {
            log::debug!(
                "site '{}' told {} negative answer(s) no longer hold: {eid} registered",
                self.site_name(to),
                records.len()
            );
            let key = PushKey {
                to_site: to,
                about_site: owner.unwrap_or(SiteId::MAX),
                changed: Some(*eid),
            };
            self.push(key, records, now, out);
        }
    }

    fn subscribe(&self, eid: EidPrefix, site: SiteId, until: Instant) {
        let mut shard = self.subscribers.lock(&eid);
        let subscribers = shard.entry(eid).or_default();
        match subscribers.iter_mut().find(|s| s.site == site) {
            Some(s) => s.until = until,
            None => subscribers.push(Subscriber { site, until }),
        }
    }

    /// The record the map-server hands out for a mapping. A site seen
    /// behind a NAT (its observed WireGuard endpoint is none it registered)
    /// gets one NAT-Traversal locator: the observed endpoint as global ETR
    /// RLOC, the registered address as private ETR RLOC.
    fn record_of(&self, m: &Mapping) -> Answer {
        let observed = m.site.and_then(|id| self.site(id)?.observed);
        let mut locators = heapless::Vec::new();
        match observed {
            Some(seen) if !m.rlocs.iter().any(|r| r.address == seen) => {
                let nat = NatTraversal {
                    ms_port: CONTROL_PORT,
                    etr_port: seen.port(),
                    global_etr_rloc: Some(seen.ip()),
                    private_etr_rloc: m.rlocs.first().map(|r| r.address.ip()),
                    ..NatTraversal::default()
                };
                let _ = locators.push(Locator::reachable(Address::NatTraversal(nat)));
            }
            _ => {
                for r in &m.rlocs {
                    let _ = locators.push(Locator {
                        priority: r.priority,
                        weight: r.weight,
                        ..Locator::reachable(Address::rloc(r.address))
                    });
                }
            }
        }
        Answer::mapping(m.eid, m.key, m.ttl, locators)
    }

    /// Pushes `about`'s mappings in instance `iid` to site `to`, unless such
    /// a push is already on its way; returns the push in flight, for the
    /// reply to wait for. `about_initiates`: `about` starts the handshake,
    /// and `to` is to answer it, not to send (see [`Start`]).
    fn push_mappings(
        &mut self,
        to: SiteId,
        about: SiteId,
        iid: u32,
        about_initiates: bool,
        now: Instant,
        out: &mut Outbox,
    ) -> Option<PushKey> {
        let key = PushKey {
            to_site: to,
            about_site: about,
            changed: None,
        };
        if to == about {
            return None;
        }
        if self.pushes.is_pending(key) {
            return Some(key);
        }
        let mut records = heapless::Vec::new();
        let mut pushed: heapless::Vec<(EidPrefix, u32), MAX_RECORDS> = heapless::Vec::new();
        for eid in self.db.site_prefixes(about).filter(|e| e.iid == iid) {
            if let Some(m) = self.db.get(eid) {
                let mut record = self.record_of(m);
                if about_initiates {
                    record.not_to_be_sent_to();
                }
                if let Some(relay) = self.relay_locator(to, about) {
                    record.through(relay);
                }
                if records.push(record).is_err() {
                    break;
                }
                let _ = pushed.push((m.eid, m.ttl));
            }
        }
        if records.is_empty() {
            return None;
        }
        // The destination caches what it is pushed: it hears of changes
        // as a requester would (both ends may move: the double jump).
        for (eid, ttl) in pushed {
            self.subscribe(eid, to, now + Duration::from_secs(u64::from(ttl) * 60));
        }
        self.push(key, records, now, out);
        Some(key)
    }

    /// Sends a Map-Notify with `records` and keeps it until acknowledged.
    fn push(
        &mut self,
        key: PushKey,
        records: heapless::Vec<Answer, MAX_RECORDS>,
        now: Instant,
        out: &mut Outbox,
    ) {
        let nonce = self.rng.u64(..);
        let Some(site) = self.site(key.to_site).filter(|s| !s.revoked) else {
            return;
        };
        // A plain LISP site is never pushed to: it is not in the tunnel.
        let Some(control) = site.config.control_address() else {
            return;
        };
        let to = SocketAddr::new(control, CONTROL_PORT);
        let site_key = &site.config.key;
        let write = |buf: &mut [u8]| write_notify(nonce, &records, None, site_key, buf);
        if let Ok(bytes) = out.send(to, write) {
            log::debug!("Map-Notify pushed to site '{}'", site.config.name);
            self.pushes.sent(key, nonce, to, bytes, now);
            self.metrics.notifies_sent.fetch_add(1, Relaxed);
        }
    }

    /// Tells the sites that may have cached `eid` what it maps to now: its
    /// current record, or, when it is gone (`removed`), a revocation.
    fn notify_subscribers(
        &mut self,
        eid: &EidPrefix,
        removed: Option<&Mapping>,
        now: Instant,
        out: &mut Outbox,
    ) {
        let Some(mut subscribers) = self.subscribers.get_mut(eid).remove(eid) else {
            return;
        };
        subscribers.retain(|s| s.until > now);
        let (owner, record) = match (self.db.get(eid), removed) {
            (Some(m), _) => (m.site, self.record_of(m)),
            (None, Some(gone)) => (gone.site, Answer::revocation(gone.eid, gone.key)),
            (None, None) => return,
        };
        let about = owner.unwrap_or(SiteId::MAX);
        for s in subscribers.iter().filter(|s| Some(s.site) != owner) {
            let mut records = heapless::Vec::new();
            let mut record = record.clone();
            let relay = owner.and_then(|owner| self.relay_locator(s.site, owner));
            if let (Some(relay), Kind::Mapping(_)) = (relay, record.kind) {
                record.through(relay);
            }
            let _ = records.push(record);
            let key = PushKey {
                to_site: s.site,
                about_site: about,
                changed: Some(*eid),
            };
            self.push(key, records, now, out);
        }
        if removed.is_none() && !subscribers.is_empty() {
            self.subscribers.get_mut(eid).insert(*eid, subscribers);
        }
    }

    fn on_notify_ack(
        &mut self,
        now: Instant,
        id: SiteId,
        ack: Authenticated<'_>,
        out: &mut Outbox,
    ) {
        // Its nonce is all an ack tells: read in place, records unread.
        if let Some(key) = self.pushes.acked(id, ack.nonce()) {
            self.metrics.notifies_acked.fetch_add(1, Relaxed);
            for held in &mut self.held {
                held.waiting_for.retain(|k| *k != key);
            }
            self.release_replies(now, out);
        }
    }

    /// Removes a mapping and tells its subscribers.
    fn withdraw(&mut self, eid: &EidPrefix, now: Instant, out: &mut Outbox) {
        if let Some(removed) = self.db.remove(eid) {
            if removed.site.is_some() {
                out.store(Change::Withdrawn { eid: *eid });
            }
            self.notify_subscribers(eid, Some(&removed), now, out);
        }
    }

    fn remove_registrations(&mut self, id: SiteId, now: Instant, out: &mut Outbox) {
        let eids: Vec<EidPrefix> = self.db.site_prefixes(id).copied().collect();
        for eid in eids {
            self.withdraw(&eid, now, out);
        }
        self.update_gauge();
    }

    /// An operator's revocation: the site's registrations go, the sites
    /// that resolved them hear so, its Map-Registers and Map-Requests are
    /// refused and nothing is pushed to it until a reloaded configuration
    /// gives it a new key. The revocation is kept across restarts
    /// ([`Change::Revoked`]); the tunnel removes the site's peer.
    pub fn revoke(&mut self, name: &str, now: Instant, out: &mut Outbox) -> Result<usize, String> {
        let id = *self
            .ids
            .get(name)
            .filter(|id| self.site(**id).is_some())
            .ok_or_else(|| format!("no site is named '{name}'"))?;
        let count = self.db.site_prefixes(id).count();
        self.remove_registrations(id, now, out);
        self.pushes.forget_site(id);
        for subscribers in self.subscribers.all_mut().flat_map(|m| m.values_mut()) {
            subscribers.retain(|s| s.site != id);
        }
        let control = self.site(id).and_then(|s| s.config.control_address());
        self.held.retain(|h| Some(h.to.ip()) != control);
        if let Some(relay) = &self.relay {
            relay.release_site(id);
        }
        if let Some(site) = self.site_mut(id) {
            site.revoked = true;
            site.negatives
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            let change = Change::Revoked {
                site: site.config.name.clone(),
                key: site.config.public_key(),
            };
            out.store(change);
        }
        self.rebuild_directory();
        log::warn!("site '{name}' revoked: {count} registrations removed");
        Ok(count)
    }

    /// The configured site whose EID prefixes overlap `eid`, if any: an
    /// enrolment token must not hand out a site's addresses.
    pub fn claimant(&self, eid: &EidPrefix) -> Option<String> {
        self.sites
            .iter()
            .flatten()
            .find(|s| {
                s.config
                    .eids
                    .iter()
                    .any(|e| e.contains(eid) || eid.contains(e))
            })
            .map(|s| s.config.name.clone())
    }

    /// Retransmits pushes that are due, releases held replies and expires
    /// registrations; [`MapServer::poll_at`] says when it is next due.
    pub fn poll(&mut self, now: Instant, out: &mut Outbox) {
        for expired in self.db.expire(now) {
            out.store(Change::Withdrawn { eid: expired.eid });
            log::info!(
                "{} expired: no Map-Register for {} s",
                expired.eid,
                self.registration_ttl.as_secs()
            );
            self.notify_subscribers(&expired.eid, Some(&expired), now, out);
        }
        self.update_gauge();
        self.release_replies(now, out);
        self.pushes.poll(now, out, &self.metrics);
    }

    /// When [`MapServer::poll`] next has something to do: asked after every
    /// call that may have started a timer (a push, a held reply).
    pub fn poll_at(&self) -> Option<Instant> {
        let held = self.held.iter().map(|h| h.until).min();
        [self.pushes.next(), held, self.db.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Every configured site with its registrations.
    pub fn sites(&self) -> Vec<SiteStatus> {
        self.sites
            .iter()
            .enumerate()
            .filter_map(|(id, s)| {
                let s = s.as_ref()?;
                Some(SiteStatus {
                    name: s.config.name.clone(),
                    control_address: s.config.control_address(),
                    public_key: s.config.public_key(),
                    observed: s.observed,
                    revoked: s.revoked,
                    mappings: self
                        .db
                        .site_prefixes(id as SiteId)
                        .filter_map(|eid| self.db.get(eid).cloned())
                        .collect(),
                })
            })
            .collect()
    }

    /// The mapping an EID resolves to, as a site would be answered.
    pub fn lookup(&self, eid: &EidPrefix) -> Option<(Option<String>, Answer)> {
        let m = self.db.lookup(eid)?;
        let owner = m
            .site
            .and_then(|id| Some(self.site(id)?.config.name.clone()));
        Some((owner, self.record_of(m)))
    }

    /// Bulk-loads mappings, bypassing registration (benchmarks).
    pub fn insert_mapping(&mut self, mapping: Mapping) {
        self.db.insert(mapping);
        self.update_gauge();
    }

    fn update_gauge(&self) {
        self.metrics
            .registrations
            .store(self.db.len() as u64, Relaxed);
    }

    fn site_name(&self, id: SiteId) -> &str {
        self.site(id).map_or("?", |s| &s.config.name)
    }

    /// Counts a drop, and logs it as [`DropLog`] allows.
    fn dropped(&self, now: Instant, reason: DropReason, from: SocketAddr, site: Option<SiteId>) {
        let name = site
            .and_then(|id| self.site(id))
            .map(|s| s.config.name.as_str());
        log_drop(&self.metrics, &self.drop_log, now, reason, from, name);
    }
}

/// Writes a Map-Notify with `answers`, signed with `key`, into `buf`.
fn write_notify(
    nonce: u64,
    answers: &[Answer],
    xtr: Option<XtrId>,
    key: &[u8],
    buf: &mut [u8],
) -> Result<usize, lisp::WriteError> {
    with_records(answers, |records| {
        let notify = MapNotify {
            body: Registration {
                nonce,
                key_id: 0,
                algorithm: Algorithm::HmacSha256_128,
                records,
                xtr,
            },
        };
        notify.emit(buf, key)
    })
}

/// Writes a Map-Reply with `answers` into `buf`.
fn write_reply(nonce: u64, answers: &[Answer], buf: &mut [u8]) -> Result<usize, lisp::WriteError> {
    with_records(answers, |records| {
        MapReply {
            nonce,
            records,
            ..MapReply::default()
        }
        .emit(buf)
    })
}

/// Whether a site may register `eid`: one of its prefixes, or within one
/// when it accepts more specifics.
fn allowed(site: &Site, eid: &EidPrefix) -> bool {
    site.eids
        .iter()
        .any(|a| a == eid || (site.accept_more_specifics && a.contains(eid)))
}

/// A replacement of the static mappings under way (see
/// [`MapServer::update_statics`]).
pub struct StaticsUpdate<'a> {
    engine: &'a mut MapServer,
    /// The static prefixes before, sorted, each with whether it was added
    /// again.
    before: Vec<(EidPrefix, bool)>,
    /// Whether any site waits to hear of a negative answer filling (else
    /// a million new prefixes need not each look).
    subscribed: bool,
    now: Instant,
    added: usize,
}

impl StaticsUpdate<'_> {
    /// Serves `mapping` (the last one added for a prefix wins); a new
    /// prefix heals the negative answers it fills. False when this update
    /// already added the prefix.
    pub fn add(&mut self, mapping: StaticMapping, out: &mut Outbox) -> bool {
        let (known, again) = match self
            .before
            .binary_search_by(|(eid, _)| eid.cmp(&mapping.eid))
        {
            Ok(at) => (true, std::mem::replace(&mut self.before[at].1, true)),
            Err(_) => (false, false),
        };
        let old = self.engine.db.insert(Mapping {
            site: None,
            eid: mapping.eid,
            key: Some(mapping.public_key),
            rlocs: Locators::from_elem(
                Rloc {
                    address: mapping.rloc,
                    priority: 1,
                    weight: 100,
                },
                1,
            ),
            ttl: mapping.ttl,
            registered: self.now,
            expires: None,
        });
        if !known && self.subscribed {
            self.engine
                .notify_negative(&mapping.eid, None, self.now, out);
        }
        self.added += 1;
        // Added before in this update: a static one at the prefix that
        // was not there before, or one that was and is marked again.
        !again && (known || old.is_none_or(|m| m.site.is_some()))
    }

    /// Removes the static mappings not added again; returns how many were
    /// added.
    pub fn finish(self) -> usize {
        for (eid, _) in self.before.iter().filter(|(_, again)| !again) {
            self.engine.db.remove(eid);
        }
        self.engine.update_gauge();
        self.added
    }
}
