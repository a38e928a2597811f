//! Map-Notifies the map-server pushes to a site — the requester's mapping
//! to the destination of a Map-Request, or a changed mapping to its
//! subscribers — kept until the site acknowledges them and sent again on a
//! backing-off schedule. Tunnel setup waits on these, so the first retry
//! comes fast.

use crate::metrics::Metrics;
use crate::outbox::{Outbox, OutboxExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Wait before each retransmission; after the last, the push has failed.
pub const RETRY_AFTER: [Duration; 7] = [
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
    Duration::from_millis(160),
    Duration::from_millis(320),
    Duration::from_millis(640),
    Duration::from_millis(1280),
];

/// How long a push out of retries waits for its site to register again.
pub const PARKED_FOR: Duration = Duration::from_secs(600);

/// One push in flight: to a site, about another site's mappings (all of
/// them in an instance, or one that changed). A newer push with the same
/// key replaces the older.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PushKey {
    pub to_site: u32,
    pub about_site: u32,
    pub changed: Option<lisp::EidPrefix>,
}

struct Pending {
    /// Out of retries: the site is unreachable now (it may be moving).
    /// Kept, unsent, until it registers again (then sent anew) or until
    /// `next`.
    parked: bool,
    nonce: u64,
    to: SocketAddr,
    bytes: Vec<u8>,
    retries: usize,
    next: Instant,
}

#[derive(Default)]
pub struct Pushes {
    pending: HashMap<PushKey, Pending>,
    /// No pending push is due before this; asked after every message, so
    /// kept rather than found by a walk. A push acknowledged since may
    /// leave it early: `poll` then runs for nothing and sets it right.
    due: Option<Instant>,
}

impl Pushes {
    /// Whether such a push is on its way (a parked one is not: a new push
    /// replaces it).
    pub fn is_pending(&self, key: PushKey) -> bool {
        self.pending.get(&key).is_some_and(|p| !p.parked)
    }

    /// Remembers a Map-Notify just sent, until acknowledged.
    pub fn sent(&mut self, key: PushKey, nonce: u64, to: SocketAddr, bytes: &[u8], now: Instant) {
        self.due_by(now + RETRY_AFTER[0]);
        self.pending.insert(
            key,
            Pending {
                parked: false,
                nonce,
                to,
                bytes: bytes.to_vec(),
                retries: 0,
                next: now + RETRY_AFTER[0],
            },
        );
    }

    /// A Map-Notify-Ack from `site` with `nonce`: the push it answered.
    pub fn acked(&mut self, site: u32, nonce: u64) -> Option<PushKey> {
        let key = self
            .pending
            .iter()
            .find(|(k, p)| k.to_site == site && p.nonce == nonce)
            .map(|(k, _)| *k)?;
        self.pending.remove(&key).map(|_| key)
    }

    /// `site` registered: it is reachable again (a site that moves while
    /// a push is on its way cannot ack it until its new endpoint is
    /// known), so what was parked for it goes out anew.
    pub fn resume(&mut self, site: u32, now: Instant, out: &mut Outbox) {
        let mut resumed = false;
        for p in self
            .pending
            .iter_mut()
            .filter(|(k, p)| k.to_site == site && p.parked)
            .map(|(_, p)| p)
        {
            out.send_copy(p.to, &p.bytes);
            p.parked = false;
            p.retries = 0;
            p.next = now + RETRY_AFTER[0];
            resumed = true;
        }
        if resumed {
            self.due_by(now + RETRY_AFTER[0]);
        }
    }

    fn due_by(&mut self, at: Instant) {
        self.due = Some(self.due.map_or(at, |due| due.min(at)));
    }

    /// Forgets every push to or about `site`.
    pub fn forget_site(&mut self, site: u32) {
        self.pending
            .retain(|k, _| k.to_site != site && k.about_site != site);
    }

    /// Sends what is due again, gives up on what ran out of retries.
    pub fn poll(&mut self, now: Instant, out: &mut Outbox, metrics: &Metrics) {
        self.pending.retain(|key, p| {
            if p.next > now {
                return true;
            }
            if p.parked {
                return false; // the site never came back
            }
            p.retries += 1;
            if p.retries > RETRY_AFTER.len() {
                metrics.notifies_failed.fetch_add(1, Relaxed);
                log::warn!(
                    "site #{}: no Map-Notify-Ack after {} sends to {}; sent again when it registers",
                    key.to_site,
                    p.retries,
                    p.to
                );
                p.parked = true;
                p.next = now + PARKED_FOR;
                return true;
            }
            out.send_copy(p.to, &p.bytes);
            metrics.notifies_retransmitted.fetch_add(1, Relaxed);
            p.next = now
                + RETRY_AFTER
                    .get(p.retries)
                    .copied()
                    .unwrap_or(RETRY_AFTER[6]);
            true
        });
        self.due = self.pending.values().map(|p| p.next).min();
    }

    /// When [`Pushes::poll`] next has something to do.
    pub fn next(&self) -> Option<Instant> {
        self.due
    }
}
