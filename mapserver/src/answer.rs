//! The records the map-server writes, owned until the message is: a wire
//! record borrows its key and locators, and the mapping they come from
//! may change (or go) before the message is written.

use lisp::{Action, Address, EidPrefix, List, Locator, Record, MAX_LOCATORS, MAX_RECORDS};

/// One record to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub eid: EidPrefix,
    pub kind: Kind,
    /// Record TTL, in minutes.
    pub ttl: u32,
    pub locators: heapless::Vec<Locator<'static>, MAX_LOCATORS>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The EID's WireGuard key (none: a plain LISP mapping, or one served
    /// to a plain LISP site), at the locators.
    Mapping(Option<[u8; 32]>),
    /// The mapping withdrawn: no locators, TTL 0, and its key with the R
    /// bit.
    Revocation(Option<[u8; 32]>),
    /// No mapping: what to do with the packets.
    Negative(Action),
}

impl Answer {
    pub fn mapping(
        eid: EidPrefix,
        key: Option<[u8; 32]>,
        ttl: u32,
        locators: heapless::Vec<Locator<'static>, MAX_LOCATORS>,
    ) -> Answer {
        Answer {
            eid,
            kind: Kind::Mapping(key),
            ttl,
            locators,
        }
    }

    pub fn revocation(eid: EidPrefix, key: Option<[u8; 32]>) -> Answer {
        let locators = heapless::Vec::new();
        Answer {
            eid,
            kind: Kind::Revocation(key),
            ttl: 0,
            locators,
        }
    }

    pub fn negative(eid: EidPrefix, ttl: u32, action: Action) -> Answer {
        let locators = heapless::Vec::new();
        Answer {
            eid,
            kind: Kind::Negative(action),
            ttl,
            locators,
        }
    }

    /// Marks every locator not to be sent to (priority 255: "MUST NOT be
    /// used for unicast forwarding", RFC 9301 section 5.4): the receiver
    /// sets the peer without an endpoint and answers the handshake the
    /// mapping's owner starts, which brings the endpoint with it.
    pub fn not_to_be_sent_to(&mut self) {
        for locator in &mut self.locators {
            locator.priority = lisp::UNUSABLE_PRIORITY;
        }
    }

    /// Puts `relay` first among the locators (the last gives way when
    /// they are as many as a record holds): the receiver sends through
    /// the relay, and may try the others.
    pub fn through(&mut self, relay: Locator<'static>) {
        if self.locators.is_full() {
            self.locators.pop();
        }
        let _ = self.locators.insert(0, relay);
    }

    /// The same answer without its WireGuard key: what a plain LISP site
    /// is served.
    pub fn without_key(self) -> Answer {
        let kind = match self.kind {
            Kind::Mapping(_) => Kind::Mapping(None),
            Kind::Revocation(_) => Kind::Revocation(None),
            negative => negative,
        };
        Answer { kind, ..self }
    }

    /// The record as it goes on the wire.
    pub fn record(&self) -> Record<'_> {
        let (iid, address, len) = (
            self.eid.iid,
            self.eid.prefix.addr(),
            self.eid.prefix.prefix_len(),
        );
        match &self.kind {
            Kind::Mapping(key) => {
                Record::mapping(&self.eid, key.as_ref(), self.ttl, &self.locators)
            }
            Kind::Revocation(Some(key)) => Record::revocation(&self.eid, key),
            Kind::Revocation(None) => {
                Record::negative(Address::eid(iid, address, None), len, 0, Action::NO_ACTION)
            }
            Kind::Negative(action) => {
                Record::negative(Address::eid(iid, address, None), len, self.ttl, *action)
            }
        }
    }
}

/// Runs `write` with `answers` as the records of a message (at most
/// [`MAX_RECORDS`] of them, as a message holds).
pub fn with_records<R>(answers: &[Answer], write: impl FnOnce(List<'_, Record<'_>>) -> R) -> R {
    let records: heapless::Vec<Record<'_>, MAX_RECORDS> = answers
        .iter()
        .take(MAX_RECORDS)
        .map(Answer::record)
        .collect();
    write(List::new(&records))
}
