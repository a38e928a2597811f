//! What a receive thread decides about a datagram before it takes any
//! lock: which site sent it (by its control address in the tunnel; on the
//! underlay, a plain LISP site, by its EID prefixes), whether the site
//! may send now (its rate), and the message verified and parsed. The
//! engine builds a new [`Directory`] when its sites change (reload,
//! restore, revoke); the server swaps it in whole, so that the receive
//! threads read it without a lock, and a forged or malformed datagram is
//! refused without ever reaching the engine's lock.

use crate::config::Site;
use crate::db::SiteId;
use crate::metrics::{DropLog, DropReason, Metrics};
use lisp::{
    auth, map_request, message_type, Address, Authenticated, Ecm, EidPrefix, MapRegister,
    MapRequest, Untrusted,
};
// 64-bit atomics even on CPUs without them (32-bit MIPS).
use portable_atomic::{AtomicU64, Ordering::Relaxed};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// A site as the receive threads know it.
struct Entry {
    id: SiteId,
    name: String,
    /// Shared key of its HMACs.
    key: Vec<u8>,
    revoked: bool,
    /// Its rate limit (GCRA, the token bucket in one word): the time its
    /// next message is due at the site's rate, in nanoseconds since the
    /// directory's origin.
    due: AtomicU64,
}

/// The sites by control address and by EID prefix, read-mostly.
pub struct Directory {
    /// Indexed by SiteId; None for a removed site.
    entries: Vec<Option<Entry>>,
    /// WireGuard sites by control address.
    by_control: HashMap<IpAddr, SiteId>,
    /// Plain LISP sites by their configured EID prefixes, most specific
    /// first (a walk: a handful of such sites per map-server).
    by_eid: Vec<(EidPrefix, SiteId)>,
    /// Nanoseconds between two messages of one site at its rate; 0: no
    /// limit.
    interval: u64,
    /// How far a site's next due time may run ahead of now: a burst of
    /// twice the rate.
    tolerance: u64,
    origin: Instant,
    metrics: Arc<Metrics>,
    drop_log: Arc<DropLog>,
    /// When the next enrolment is due (see [`ENROLMENT_RATE`]), in
    /// nanoseconds since `origin`.
    enrolment_due: AtomicU64,
}

/// Enrolments taken per second, all tokens together (twice as many in a
/// burst): each costs an HMAC under the engine's lock, and a flood of
/// forged ones must not hold that lock.
pub const ENROLMENT_RATE: u64 = 10;

/// The site an enrolment is admitted for: none yet.
pub const ENROLLING: SiteId = SiteId::MAX;

/// A message from a known site, verified (Map-Register, Map-Notify-Ack)
/// and parsed.
// On the stack and moved once, to the engine: boxing the large variant
// would allocate per message.
#[allow(clippy::large_enum_variant)]
pub enum Input<'a> {
    Register(MapRegister<'a>),
    Request(MapRequest<'a>),
    /// Only its nonce matters: its records are not parsed.
    NotifyAck(Authenticated<'a>),
    /// A Map-Register on the underlay from a node enrolling with a token
    /// (see [`crate::enrolment`]); the engine verifies it with the
    /// token's key.
    Enrol(Untrusted<'a>),
}

/// A datagram the engine is to decide on.
pub struct Admitted<'a> {
    pub site: SiteId,
    /// Where the answer goes: the datagram's source; for an ECM
    /// Map-Request, its ITR-RLOC at the inner UDP source port.
    pub from: SocketAddr,
    pub input: Input<'a>,
}

/// Why a datagram was not admitted, and from which site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub reason: DropReason,
    pub site: Option<SiteId>,
}

impl Directory {
    /// The directory of `sites` (by id; None for a removed site), each
    /// limited to `rate_limit` messages per second (0: no limit). A site
    /// keeps its place in the rate from `previous`. `origin`: no `now`
    /// given to [`Directory::admit`] is earlier.
    pub fn new<'s>(
        sites: impl Iterator<Item = (SiteId, &'s Site, bool)>,
        rate_limit: u32,
        previous: Option<&Directory>,
        origin: Instant,
        metrics: Arc<Metrics>,
        drop_log: Arc<DropLog>,
    ) -> Directory {
        let mut entries: Vec<Option<Entry>> = Vec::new();
        let mut by_control = HashMap::new();
        let mut by_eid = Vec::new();
        for (id, site, revoked) in sites {
            let due = previous
                .and_then(|p| p.entry(id))
                .map_or(0, |e| e.due.load(Relaxed));
            let slot = id as usize;
            if entries.len() <= slot {
                entries.resize_with(slot + 1, || None);
            }
            entries[slot] = Some(Entry {
                id,
                name: site.name.clone(),
                key: site.key.clone(),
                revoked,
                due: AtomicU64::new(due),
            });
            match site.control_address() {
                Some(control) => {
                    by_control.insert(control, id);
                }
                None => by_eid.extend(site.eids.iter().map(|eid| (*eid, id))),
            }
        }
        by_eid.sort_by_key(|(eid, _)| std::cmp::Reverse(eid.prefix.prefix_len()));
        let interval = match rate_limit {
            0 => 0,
            rate => 1_000_000_000 / u64::from(rate),
        };
        Directory {
            entries,
            by_control,
            by_eid,
            interval,
            tolerance: interval * (2 * u64::from(rate_limit)).saturating_sub(1),
            origin,
            metrics,
            drop_log,
            enrolment_due: AtomicU64::new(previous.map_or(0, |p| p.enrolment_due.load(Relaxed))),
        }
    }

    /// Which site sent `msg`, and the message verified and parsed: the
    /// source must be a site's control address, the site within its
    /// rate, a Map-Register or Map-Notify-Ack must carry the site's HMAC
    /// (verified before it is parsed), and a revoked site may send
    /// neither Map-Registers nor Map-Requests.
    pub fn admit<'a>(
        &self,
        now: Instant,
        from: SocketAddr,
        msg: &'a [u8],
    ) -> Result<Admitted<'a>, Refused> {
        let Some(site) = self
            .by_control
            .get(&from.ip())
            .and_then(|id| self.entry(*id))
        else {
            return Err(Refused {
                reason: DropReason::UnknownSource,
                site: None,
            });
        };
        let refused = |reason| Refused {
            reason,
            site: Some(site.id),
        };
        if !self.within_rate(site, now) {
            return Err(refused(DropReason::RateLimited));
        }
        let input = match msg.first().map(|b| b >> 4) {
            Some(message_type::MAP_REGISTER) => {
                if site.revoked {
                    return Err(refused(DropReason::Revoked));
                }
                let verified =
                    auth::verify(msg, &site.key).map_err(|_| refused(DropReason::AuthFailed))?;
                let register =
                    MapRegister::parse(&verified).map_err(|_| refused(DropReason::Malformed))?;
                Input::Register(register)
            }
            Some(message_type::MAP_REQUEST) => {
                if site.revoked {
                    return Err(refused(DropReason::Revoked));
                }
                let packet = map_request::Packet::new_checked(msg)
                    .map_err(|_| refused(DropReason::Malformed))?;
                Input::Request(MapRequest::parse(&packet))
            }
            Some(message_type::MAP_NOTIFY_ACK) => {
                let ack =
                    auth::verify(msg, &site.key).map_err(|_| refused(DropReason::AuthFailed))?;
                if ack.message_type() != message_type::MAP_NOTIFY_ACK {
                    return Err(refused(DropReason::Malformed));
                }
                Input::NotifyAck(ack)
            }
            _ => return Err(refused(DropReason::UnexpectedType)),
        };
        Ok(Admitted {
            site: site.id,
            from,
            input,
        })
    }

    /// What a plain LISP xTR sent to the underlay listener: a Map-Register
    /// from the plain LISP site whose EID prefixes hold its first record's
    /// EID (RFC 9301 §5.6: the site is found by the EID prefixes and the
    /// key), verified with that site's key before it is parsed; or an ECM
    /// Map-Request (§5.8) from the plain LISP site whose prefixes hold its
    /// source EID, to be answered at its first usable ITR-RLOC of
    /// `from`'s address family, at the inner UDP source port (§5.7), never
    /// at `from`. A request's source EID is not authenticated (RFC 9301
    /// Map-Requests are not): it chooses the rate and the policy, and
    /// policy never serves a plain LISP site a WireGuard key.
    pub fn admit_underlay<'a>(
        &self,
        now: Instant,
        from: SocketAddr,
        msg: &'a [u8],
    ) -> Result<Admitted<'a>, Refused> {
        let unsited = |reason| Refused { reason, site: None };
        let (eid, input, reply_to) = match msg.first().map(|b| b >> 4) {
            Some(message_type::MAP_REGISTER) => {
                let untrusted =
                    Untrusted::new_checked(msg).map_err(|_| unsited(DropReason::Malformed))?;
                let eid = untrusted.untrusted_records().iter().next();
                let eid = eid.and_then(|r| r.eid_prefix());
                let site = eid.and_then(|eid| self.by_eid.iter().find(|(p, _)| p.contains(&eid)));
                // No plain LISP site's, with a Site-ID: a node enrolling.
                if site.is_none() && untrusted.untrusted_xtr().is_some() {
                    if !self.enrolment_within_rate(now) {
                        return Err(unsited(DropReason::EnrolmentRate));
                    }
                    return Ok(Admitted {
                        site: ENROLLING,
                        from,
                        input: Input::Enrol(untrusted),
                    });
                }
                (eid, Underlay::Register(untrusted), from)
            }
            Some(message_type::ECM) => {
                let malformed = |_| unsited(DropReason::Malformed);
                let ecm = Ecm::parse(msg).map_err(malformed)?;
                let packet = map_request::Packet::new_checked(ecm.message).map_err(malformed)?;
                let request = MapRequest::parse(&packet);
                let Some(to) = itr_rloc(&request, from, ecm.source.port()) else {
                    return Err(unsited(DropReason::NoItrRloc));
                };
                let source = &request.source_eid;
                let len = if source.ip().is_some_and(|ip| ip.is_ipv4()) {
                    32
                } else {
                    128
                };
                (
                    EidPrefix::from_address(source, len),
                    Underlay::Request(request),
                    to,
                )
            }
            _ => return Err(unsited(DropReason::UnexpectedType)),
        };
        let site = eid
            .and_then(|eid| self.by_eid.iter().find(|(p, _)| p.contains(&eid)))
            .and_then(|(_, id)| self.entry(*id))
            .ok_or(unsited(DropReason::UnknownSource))?;
        let refused = |reason| Refused {
            reason,
            site: Some(site.id),
        };
        if !self.within_rate(site, now) {
            return Err(refused(DropReason::RateLimited));
        }
        if site.revoked {
            return Err(refused(DropReason::Revoked));
        }
        let input = match input {
            Underlay::Request(request) => Input::Request(request),
            Underlay::Register(untrusted) => {
                let verified = untrusted
                    .verify(&site.key)
                    .map_err(|_| refused(DropReason::AuthFailed))?;
                let register =
                    MapRegister::parse(&verified).map_err(|_| refused(DropReason::Malformed))?;
                Input::Register(register)
            }
        };
        Ok(Admitted {
            site: site.id,
            from: reply_to,
            input,
        })
    }

    fn entry(&self, id: SiteId) -> Option<&Entry> {
        self.entries.get(id as usize)?.as_ref()
    }

    /// Takes one enrolment from [`ENROLMENT_RATE`], as
    /// [`Directory::within_rate`] does for a site.
    fn enrolment_within_rate(&self, now: Instant) -> bool {
        let interval = 1_000_000_000 / ENROLMENT_RATE;
        let tolerance = interval * (2 * ENROLMENT_RATE - 1);
        let now = now.saturating_duration_since(self.origin).as_nanos() as u64;
        take_due(&self.enrolment_due, now, interval, tolerance)
    }

    /// Takes one message from the site's rate: GCRA, which lets through
    /// what a bucket of twice the rate refilled at the rate would.
    fn within_rate(&self, site: &Entry, now: Instant) -> bool {
        if self.interval == 0 {
            return true;
        }
        let now = now.saturating_duration_since(self.origin).as_nanos() as u64;
        take_due(&site.due, now, self.interval, self.tolerance)
    }

    /// Counts a refused datagram and logs it (at most once per reason
    /// every few seconds; see [`DropLog`]).
    pub fn refuse(&self, now: Instant, refused: Refused, from: SocketAddr) {
        let name = refused
            .site
            .and_then(|id| self.entry(id))
            .map(|e| e.name.as_str());
        log_drop(
            &self.metrics,
            &self.drop_log,
            now,
            refused.reason,
            from,
            name,
        );
    }
}

/// What came in on the underlay, before its site is known.
// On the stack and moved once, as `Input`.
#[allow(clippy::large_enum_variant)]
enum Underlay<'a> {
    /// To verify with the key of the site its EID leads to.
    Register(Untrusted<'a>),
    /// Decapsulated: an RFC 9301 Map-Request carries no authentication.
    Request(MapRequest<'a>),
}

/// Where the answer to an encapsulated Map-Request goes: its first
/// ITR-RLOC that is an address of `from`'s family a datagram can go to, at
/// the inner UDP source `port` (RFC 9301 §5.7).
fn itr_rloc(request: &MapRequest<'_>, from: SocketAddr, port: u16) -> Option<SocketAddr> {
    let usable = |ip: &IpAddr| {
        ip.is_ipv4() == from.is_ipv4()
            && !ip.is_unspecified()
            && !ip.is_multicast()
            && *ip != IpAddr::from([255, 255, 255, 255])
    };
    let ip = request.itr_rlocs.iter().find_map(|rloc| match rloc {
        Address::Ip(ip) if usable(&ip) => Some(ip),
        _ => None,
    })?;
    (port != 0).then_some(SocketAddr::new(ip, port))
}

/// Counts a drop, and logs it as [`DropLog`] allows.
pub fn log_drop(
    metrics: &Metrics,
    drop_log: &DropLog,
    now: Instant,
    reason: DropReason,
    from: SocketAddr,
    site: Option<&str>,
) {
    metrics.dropped(reason);
    let Some(more) = drop_log.note(now, reason) else {
        return;
    };
    let who = match site {
        Some(name) => format!("site '{name}' ({from})"),
        None => from.to_string(),
    };
    let more = if more > 0 {
        format!(" ({more} more not logged)")
    } else {
        String::new()
    };
    log::warn!("dropped a message from {who}: {}{more}", reason.label());
}

/// GCRA on one due time (nanoseconds): takes one message if the due time
/// runs at most `tolerance` ahead of `now`, and moves it on by `interval`.
fn take_due(due: &AtomicU64, now: u64, interval: u64, tolerance: u64) -> bool {
    due.fetch_update(Relaxed, Relaxed, |due| {
        let due = due.max(now);
        (due - now <= tolerance).then_some(due + interval)
    })
    .is_ok()
}
