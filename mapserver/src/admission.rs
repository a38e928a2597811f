//! What a receive thread decides about a datagram before it takes any
//! lock: which site sent it (by its control address), whether the site
//! may send now (its rate), and the message verified and parsed. The
//! engine builds a new [`Directory`] when its sites change (reload,
//! restore, revoke); the server swaps it in whole, so that the receive
//! threads read it without a lock, and a forged or malformed datagram is
//! refused without ever reaching the engine's lock.

use crate::config::Site;
use crate::db::SiteId;
use crate::metrics::{DropLog, DropReason, Metrics};
use lisp::{auth, map_request, message_type, Authenticated, MapRegister, MapRequest};
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

/// The sites by control address, read-mostly.
pub struct Directory {
    by_control: HashMap<IpAddr, Entry>,
    /// Nanoseconds between two messages of one site at its rate; 0: no
    /// limit.
    interval: u64,
    /// How far a site's next due time may run ahead of now: a burst of
    /// twice the rate.
    tolerance: u64,
    origin: Instant,
    metrics: Arc<Metrics>,
    drop_log: Arc<DropLog>,
}

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
}

/// A datagram the engine is to decide on.
pub struct Admitted<'a> {
    pub site: SiteId,
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
        let by_control = sites
            .map(|(id, site, revoked)| {
                let due = previous
                    .and_then(|p| p.by_control.get(&site.control_address))
                    .filter(|e| e.id == id)
                    .map_or(0, |e| e.due.load(Relaxed));
                let entry = Entry {
                    id,
                    name: site.name.clone(),
                    key: site.key.clone(),
                    revoked,
                    due: AtomicU64::new(due),
                };
                (site.control_address, entry)
            })
            .collect();
        let interval = match rate_limit {
            0 => 0,
            rate => 1_000_000_000 / u64::from(rate),
        };
        Directory {
            by_control,
            interval,
            tolerance: interval * (2 * u64::from(rate_limit)).saturating_sub(1),
            origin,
            metrics,
            drop_log,
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
        let Some(site) = self.by_control.get(&from.ip()) else {
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

    /// Takes one message from the site's rate: GCRA, which lets through
    /// what a bucket of twice the rate refilled at the rate would.
    fn within_rate(&self, site: &Entry, now: Instant) -> bool {
        if self.interval == 0 {
            return true;
        }
        let now = now.saturating_duration_since(self.origin).as_nanos() as u64;
        site.due
            .fetch_update(Relaxed, Relaxed, |due| {
                let due = due.max(now);
                (due - now <= self.tolerance).then_some(due + self.interval)
            })
            .is_ok()
    }

    /// Counts a refused datagram and logs it (at most once per reason
    /// every few seconds; see [`DropLog`]).
    pub fn refuse(&self, now: Instant, refused: Refused, from: SocketAddr) {
        let site = refused.site.and(self.by_control.get(&from.ip()));
        let name = site.map(|e| e.name.as_str());
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
