//! Who starts the WireGuard handshake of a first contact, and when the
//! pair goes through the relay: the map-server's memory of recent first
//! contacts, by (requester, destination).
//!
//! One side only starts: crossing handshakes each replace their own
//! initiation with the other's, reject the response to their own, and
//! neither side has a session until WireGuard's retry 5 s later. The side
//! that must not start is given the other's locators marked not to be sent
//! to (see [`crate::answer::Answer::not_to_be_sent_to`]): it sets the peer
//! without an endpoint, and only answers.
//!
//! A requester that asks again for the same mapping soon after is taken as
//! one whose handshake never completed; each time it goes one step
//! further: the requester starts, then the destination reaches out first,
//! then the relay. A Map-Request sent again because its reply was slow or
//! lost (the same nonce) is no such sign: it gets the same decision.

use crate::db::SiteId;
use lisp::EidPrefix;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a first contact the requester started is remembered: a request
/// between them meanwhile steps to [`Start::AfterReachOut`]. Well past the
/// agent's checks of its first handshake (80 ms in all) and its way back
/// here; short enough that a node that restarted and reaches for the same
/// destination again finds it forgotten.
pub const FIRST_CONTACT_WINDOW: Duration = Duration::from_millis(250);

/// How long a first contact the destination reached out for is
/// remembered: a request again for it meanwhile goes through the relay.
/// Past the agent's 1 s wait for such a handshake (`RELAY_AFTER` in the
/// agent), and its way back.
pub const REACH_OUT_WINDOW: Duration = Duration::from_secs(3);

/// How long a pair whose direct handshakes failed is relayed at once.
pub const DIRECT_FAILED_MEMORY: Duration = Duration::from_secs(600);

/// Pairs remembered at most, each kind; past it, what is forgotten makes
/// the next first contact start over from the requester.
const MAX_REMEMBERED: usize = 4096;

/// Who starts the handshake of a first contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The requester, at once: the destination can be reached unasked (this
    /// map-server sees its WireGuard endpoint where it registered, so no
    /// NAT in front of it lets in only what answers its own traffic). It
    /// is pushed first, for a head start; the requester's agent starts the
    /// handshake again if the destination was not ready yet.
    Requester,
    /// The destination, which reached for the requester within
    /// [`FIRST_CONTACT_WINDOW`] and is starting one already.
    Destination,
    /// The destination reaches out (opening a NAT in front of it), and the
    /// requester starts once the destination acknowledged the push: the
    /// held reply. For a destination behind a NAT, and for a requester
    /// asking again within [`FIRST_CONTACT_WINDOW`] (its handshakes never
    /// completed: a firewall in front of the destination).
    AfterReachOut,
    /// As [`Start::AfterReachOut`], both through the relay: the pair is
    /// relayed already; or the destination reached out and the requester
    /// asks again within [`REACH_OUT_WINDOW`]; or both are behind NATs and
    /// one of them changes ports (each NAT lets in only what comes from
    /// where its node sent to, and one's is unknowable).
    Relayed,
}

/// What the map-server knows of a pair when deciding.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pair {
    /// The destination is seen where it registered (no NAT in front).
    pub destination_open: bool,
    /// Both are behind NATs, and one is seen at a port other than its
    /// WireGuard port.
    pub no_direct_path: bool,
    /// The map-server has a relay, with the pair on it now.
    pub relayed_now: bool,
    /// The map-server has a relay.
    pub relay: bool,
}

#[derive(Clone, Copy)]
struct Contact {
    at: Instant,
    /// The mapping asked for: another of the destination's mappings is
    /// another first contact's, not this one's asked again.
    eid: EidPrefix,
    /// The Map-Request's: one sent again with it asks nothing new.
    nonce: u64,
    start: Start,
}

/// The first contacts of the last seconds, and the pairs whose direct
/// handshakes failed lately.
#[derive(Default)]
pub struct FirstContacts {
    recent: HashMap<(SiteId, SiteId), Contact>,
    direct_failed: HashMap<(SiteId, SiteId), Instant>,
}

impl FirstContacts {
    /// Who starts the first contact of `requester` with `destination`'s
    /// mapping `eid`, asked for by the Map-Request `nonce`, and remembers
    /// it.
    pub fn decide(
        &mut self,
        now: Instant,
        requester: SiteId,
        destination: SiteId,
        eid: EidPrefix,
        nonce: u64,
        pair: Pair,
    ) -> Start {
        let within = |at: Instant, window| now.saturating_duration_since(at) < window;
        if pair.relayed_now {
            return Start::Relayed;
        }
        let asked_again = self
            .recent
            .get(&(requester, destination))
            .filter(|c| c.eid == eid);
        if let Some(c) = asked_again.filter(|c| c.nonce == nonce && within(c.at, REACH_OUT_WINDOW))
        {
            return c.start;
        }
        if let Some(c) = self.recent.get(&(destination, requester)) {
            if c.start == Start::Requester && within(c.at, FIRST_CONTACT_WINDOW) {
                return Start::Destination;
            }
        }
        let start = match asked_again {
            Some(c)
                if c.start != Start::Requester && within(c.at, REACH_OUT_WINDOW) && pair.relay =>
            {
                let fresh = |at: &Instant| within(*at, DIRECT_FAILED_MEMORY);
                remember(
                    &mut self.direct_failed,
                    (requester, destination),
                    now,
                    fresh,
                );
                Start::Relayed
            }
            Some(c) if c.start == Start::Requester && within(c.at, FIRST_CONTACT_WINDOW) => {
                Start::AfterReachOut
            }
            _ if pair.relay
                && (pair.no_direct_path || self.failed_lately(now, requester, destination)) =>
            {
                Start::Relayed
            }
            _ if !pair.destination_open => Start::AfterReachOut,
            _ => Start::Requester,
        };
        let contact = Contact {
            at: now,
            eid,
            nonce,
            start,
        };
        remember(&mut self.recent, (requester, destination), contact, |c| {
            within(c.at, REACH_OUT_WINDOW)
        });
        start
    }

    fn failed_lately(&self, now: Instant, a: SiteId, b: SiteId) -> bool {
        [(a, b), (b, a)].iter().any(|pair| {
            self.direct_failed
                .get(pair)
                .is_some_and(|at| now.saturating_duration_since(*at) < DIRECT_FAILED_MEMORY)
        })
    }
}

/// Remembers `value` for `pair` within [`MAX_REMEMBERED`] entries: when
/// full, only what is still `fresh` stays, and a new pair is left out if
/// that makes no room.
fn remember<V>(
    map: &mut HashMap<(SiteId, SiteId), V>,
    pair: (SiteId, SiteId),
    value: V,
    fresh: impl Fn(&V) -> bool,
) {
    if map.len() >= MAX_REMEMBERED {
        map.retain(|_, v| fresh(v));
    }
    if map.len() < MAX_REMEMBERED || map.contains_key(&pair) {
        map.insert(pair, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eid(s: &str) -> EidPrefix {
        EidPrefix::new(0, s.parse().unwrap())
    }

    const OPEN: Pair = Pair {
        destination_open: true,
        no_direct_path: false,
        relayed_now: false,
        relay: true,
    };

    #[test]
    fn each_request_again_goes_one_step_further_up_to_the_relay() {
        let mut contacts = FirstContacts::default();
        let t = Instant::now();
        let b = eid("10.2.0.0/24");
        assert_eq!(contacts.decide(t, 1, 2, b, 1, OPEN), Start::Requester);
        let t = t + Duration::from_millis(90);
        assert_eq!(contacts.decide(t, 1, 2, b, 2, OPEN), Start::AfterReachOut);
        let t = t + Duration::from_millis(1100);
        assert_eq!(contacts.decide(t, 1, 2, b, 3, OPEN), Start::Relayed);
        // Later first contacts of the pair, either way, are relayed at once.
        let t = t + Duration::from_secs(60);
        assert_eq!(
            contacts.decide(t, 2, 1, eid("10.1.0.0/24"), 4, OPEN),
            Start::Relayed
        );
        let t = t + DIRECT_FAILED_MEMORY;
        assert_eq!(
            contacts.decide(t, 2, 1, eid("10.1.0.0/24"), 5, OPEN),
            Start::Requester
        );
    }

    #[test]
    fn another_mapping_of_the_destination_is_a_first_contact_of_its_own() {
        let mut contacts = FirstContacts::default();
        let t = Instant::now();
        assert_eq!(
            contacts.decide(t, 1, 2, eid("10.2.0.0/24"), 6, OPEN),
            Start::Requester
        );
        let t = t + Duration::from_millis(10);
        assert_eq!(
            contacts.decide(t, 1, 2, eid("10.2.1.0/24"), 7, OPEN),
            Start::Requester
        );
    }

    #[test]
    fn without_a_relay_a_failed_reach_out_is_tried_again() {
        let mut contacts = FirstContacts::default();
        let closed = Pair {
            destination_open: false,
            relay: false,
            ..OPEN
        };
        let t = Instant::now();
        let b = eid("10.2.0.0/24");
        assert_eq!(contacts.decide(t, 1, 2, b, 8, closed), Start::AfterReachOut);
        let t = t + Duration::from_millis(1100);
        assert_eq!(contacts.decide(t, 1, 2, b, 9, closed), Start::AfterReachOut);
    }

    #[test]
    fn nats_that_change_ports_are_relayed_at_once_and_a_crossing_request_waits() {
        let mut contacts = FirstContacts::default();
        let t = Instant::now();
        let nats = Pair {
            destination_open: false,
            no_direct_path: true,
            ..OPEN
        };
        assert_eq!(
            contacts.decide(t, 1, 2, eid("10.2.0.0/24"), 10, nats),
            Start::Relayed
        );
        let mut open = FirstContacts::default();
        assert_eq!(
            open.decide(t, 1, 2, eid("10.2.0.0/24"), 11, OPEN),
            Start::Requester
        );
        assert_eq!(
            open.decide(t, 2, 1, eid("10.1.0.0/24"), 12, OPEN),
            Start::Destination
        );
    }

    #[test]
    fn a_request_sent_again_is_answered_as_before_not_taken_for_a_failed_handshake() {
        let mut contacts = FirstContacts::default();
        let t = Instant::now();
        let b = eid("10.2.0.0/24");
        assert_eq!(contacts.decide(t, 1, 2, b, 7, OPEN), Start::Requester);
        // Its reply was slow: the agent sends the same Map-Request again.
        let t = t + Duration::from_millis(100);
        assert_eq!(contacts.decide(t, 1, 2, b, 7, OPEN), Start::Requester);
        // A new Map-Request (its handshake never completed) steps on.
        let t = t + Duration::from_millis(50);
        assert_eq!(contacts.decide(t, 1, 2, b, 8, OPEN), Start::AfterReachOut);
        let t = t + Duration::from_millis(100);
        assert_eq!(contacts.decide(t, 1, 2, b, 8, OPEN), Start::AfterReachOut);
    }
}
