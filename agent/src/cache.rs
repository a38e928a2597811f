//! The map-cache: what this node knows of overlay destinations. A prefix
//! is resolved (a WireGuard peer and a route exist for it), pending (a
//! Map-Request is out; its first packets wait here), or negative (nothing
//! maps it; packets are answered with ICMP). Bounded in entries and in the
//! packets it holds, so a scan of thousands of EIDs cannot grow it.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use netconf::PublicKey;
use prefix_trie::PrefixMap;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Instant;

/// Packets kept per pending destination, and in all.
pub const QUEUE_PER_ENTRY: usize = 8;
pub const QUEUE_TOTAL: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// A Map-Request is out; `queue` holds the packets that wait for it.
    Pending {
        nonce: u64,
        /// Map-Requests sent so far.
        sent: u32,
        /// When the first packet missed: the start of a first contact.
        missed: Instant,
        retry_at: Instant,
        /// The inner source whose packet started it: each source may have
        /// only so many destinations pending (a scan stays its own).
        source: IpAddr,
        queue: Vec<Vec<u8>>,
    },
    /// A WireGuard peer with `key` carries the prefix until `expires`.
    Resolved { key: PublicKey, expires: Instant },
    /// No mapping: answer with ICMP until `expires`.
    Negative {
        action: lisp::Action,
        expires: Instant,
        /// The map-server did not answer (rather than answered "none"):
        /// forgotten as soon as it answers again.
        no_answer: bool,
    },
}

impl State {
    /// When the entry next needs the engine: a retry or its expiry.
    pub fn deadline(&self) -> Instant {
        match self {
            State::Pending { retry_at, .. } => *retry_at,
            State::Resolved { expires, .. } | State::Negative { expires, .. } => *expires,
        }
    }
}

/// The entries by the time they are due, so that finding what is due and
/// the next deadline costs O(log n), not a walk of the cache.
type Deadlines = BTreeSet<(Instant, IpNet)>;

pub struct MapCache {
    v4: PrefixMap<Ipv4Net, State>,
    v6: PrefixMap<Ipv6Net, State>,
    len: usize,
    capacity: usize,
    queued: usize,
    deadlines: Deadlines,
    /// Negative entries by expiry: the first one is evicted when full.
    negatives: Deadlines,
    /// Pending entries per inner source.
    pending_by_source: HashMap<IpAddr, usize>,
    /// The pending entries: few (bounded per source and by the Map-Request
    /// budget), so finding those within a prefix walks these, not the cache.
    pending: BTreeSet<IpNet>,
}

/// The cache holds `capacity` entries and is full.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl MapCache {
    pub fn new(capacity: usize) -> MapCache {
        MapCache {
            v4: PrefixMap::new(),
            v6: PrefixMap::new(),
            len: 0,
            capacity,
            queued: 0,
            deadlines: BTreeSet::new(),
            negatives: BTreeSet::new(),
            pending_by_source: HashMap::new(),
            pending: BTreeSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Packets held in all pending entries.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Destinations pending for packets from `source`.
    pub fn pending_from(&self, source: IpAddr) -> usize {
        self.pending_by_source.get(&source).copied().unwrap_or(0)
    }

    /// The most specific entry covering `destination`.
    pub fn lookup(&self, destination: IpAddr) -> Option<(IpNet, &State)> {
        match IpNet::from(destination) {
            IpNet::V4(p) => self.v4.get_lpm(&p).map(|(p, s)| (IpNet::V4(p), s)),
            IpNet::V6(p) => self.v6.get_lpm(&p).map(|(p, s)| (IpNet::V6(p), s)),
        }
    }

    pub fn get(&self, prefix: &IpNet) -> Option<&State> {
        match prefix {
            IpNet::V4(p) => self.v4.get(p),
            IpNet::V6(p) => self.v6.get(p),
        }
    }

    /// Inserts or replaces; makes room by evicting the negative entry that
    /// expires first when full, never a pending or resolved one.
    pub fn insert(&mut self, prefix: IpNet, state: State) -> Result<(), Full> {
        if self.get(&prefix).is_none() && self.len >= self.capacity {
            let (_, victim) = *self.negatives.first().ok_or(Full)?;
            self.remove(&victim);
        }
        self.remember(prefix, &state);
        let old = match prefix {
            IpNet::V4(p) => self.v4.insert(p, state),
            IpNet::V6(p) => self.v6.insert(p, state),
        };
        match old {
            Some(old) => self.forget(prefix, &old),
            None => self.len += 1,
        }
        Ok(())
    }

    pub fn remove(&mut self, prefix: &IpNet) -> Option<State> {
        let old = match prefix {
            IpNet::V4(p) => self.v4.remove(p),
            IpNet::V6(p) => self.v6.remove(p),
        }?;
        self.len -= 1;
        self.forget(*prefix, &old);
        Some(old)
    }

    /// Accounts for an entry coming in: indexes and counts.
    fn remember(&mut self, prefix: IpNet, state: &State) {
        self.deadlines.insert((state.deadline(), prefix));
        match state {
            State::Pending { queue, source, .. } => {
                self.queued += queue.len();
                *self.pending_by_source.entry(*source).or_default() += 1;
                self.pending.insert(prefix);
            }
            State::Negative { expires, .. } => {
                self.negatives.insert((*expires, prefix));
            }
            State::Resolved { .. } => {}
        }
    }

    /// Accounts for an entry going (removed, or replaced by a new state
    /// already remembered).
    fn forget(&mut self, prefix: IpNet, old: &State) {
        let now_due = self.get(&prefix).map(State::deadline);
        if now_due != Some(old.deadline()) {
            self.deadlines.remove(&(old.deadline(), prefix));
        }
        match old {
            State::Pending { queue, source, .. } => {
                self.queued -= queue.len();
                if !matches!(self.get(&prefix), Some(State::Pending { .. })) {
                    self.pending.remove(&prefix);
                }
                if let Some(n) = self.pending_by_source.get_mut(source) {
                    *n -= 1;
                    if *n == 0 {
                        self.pending_by_source.remove(source);
                    }
                }
            }
            State::Negative { expires, .. } => {
                let still = matches!(self.get(&prefix), Some(State::Negative { expires: e, .. }) if e == expires);
                if !still {
                    self.negatives.remove(&(*expires, prefix));
                }
            }
            State::Resolved { .. } => {}
        }
    }

    /// Queues a packet on the pending entry `prefix`; false (the packet is
    /// dropped) when that entry or the cache holds all it may.
    pub fn enqueue(&mut self, prefix: &IpNet, packet: Vec<u8>) -> bool {
        if self.queued >= QUEUE_TOTAL {
            return false;
        }
        let state = match prefix {
            IpNet::V4(p) => self.v4.get_mut(p),
            IpNet::V6(p) => self.v6.get_mut(p),
        };
        match state {
            Some(State::Pending { queue, .. }) if queue.len() < QUEUE_PER_ENTRY => {
                queue.push(packet);
                self.queued += 1;
                true
            }
            _ => false,
        }
    }

    /// Sets when a pending entry's next Map-Request is due, counting one
    /// more sent when `sent`; false when `prefix` is not pending.
    pub fn reschedule(&mut self, prefix: &IpNet, retry_at: Instant, sent: bool) -> bool {
        let state = match prefix {
            IpNet::V4(p) => self.v4.get_mut(p),
            IpNet::V6(p) => self.v6.get_mut(p),
        };
        let Some(State::Pending {
            sent: count,
            retry_at: at,
            ..
        }) = state
        else {
            return false;
        };
        if sent {
            *count += 1;
        }
        let old = std::mem::replace(at, retry_at);
        self.deadlines.remove(&(old, *prefix));
        self.deadlines.insert((retry_at, *prefix));
        true
    }

    /// The entries due at `now`, earliest first.
    pub fn due(&self, now: Instant) -> Vec<IpNet> {
        self.deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, p)| *p)
            .collect()
    }

    /// When the next entry is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &State)> {
        let v4 = self.v4.iter().map(|(p, s)| (IpNet::V4(p), s));
        let v6 = self.v6.iter().map(|(p, s)| (IpNet::V6(p), s));
        v4.chain(v6)
    }

    /// Pending entries for destinations within `prefix`: the ones a reply
    /// for `prefix` answers too.
    pub fn pending_within(&self, prefix: &IpNet) -> Vec<IpNet> {
        self.pending
            .iter()
            .filter(|p| prefix.contains(*p))
            .copied()
            .collect()
    }

    /// Checks the indexes against the entries (tests).
    #[cfg(test)]
    fn consistent(&self) -> bool {
        let mut deadlines = Deadlines::new();
        let mut negatives = Deadlines::new();
        let mut pending = BTreeSet::new();
        for (p, s) in self.iter() {
            deadlines.insert((s.deadline(), p));
            if let State::Pending { .. } = s {
                pending.insert(p);
            }
            if let State::Negative { expires, .. } = s {
                negatives.insert((*expires, p));
            }
        }
        deadlines == self.deadlines && negatives == self.negatives && pending == self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pending(packets: usize) -> State {
        State::Pending {
            nonce: 1,
            sent: 1,
            missed: Instant::now(),
            retry_at: Instant::now(),
            source: "10.1.0.2".parse().unwrap(),
            queue: vec![vec![0u8; 20]; packets],
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn lookup_is_longest_prefix() {
        let mut cache = MapCache::new(8);
        let t = Instant::now();
        cache
            .insert(
                net("10.2.0.0/16"),
                State::Negative {
                    action: lisp::Action::DROP_NO_REASON,
                    expires: t,
                    no_answer: false,
                },
            )
            .unwrap();
        cache
            .insert(
                net("10.2.3.0/24"),
                State::Resolved {
                    key: [1; 32],
                    expires: t,
                },
            )
            .unwrap();
        assert_eq!(
            cache.lookup("10.2.3.4".parse().unwrap()).unwrap().0,
            net("10.2.3.0/24")
        );
        assert_eq!(
            cache.lookup("10.2.4.4".parse().unwrap()).unwrap().0,
            net("10.2.0.0/16")
        );
        assert!(cache.lookup("10.3.0.1".parse().unwrap()).is_none());
        assert!(cache.lookup("2001:db8::1".parse().unwrap()).is_none());
    }

    #[test]
    fn queues_are_bounded_per_entry_and_in_total() {
        let mut cache = MapCache::new(1000);
        let one = net("10.9.0.1/32");
        cache.insert(one, pending(0)).unwrap();
        let accepted = (0..20).filter(|_| cache.enqueue(&one, vec![0; 20])).count();
        assert_eq!(accepted, QUEUE_PER_ENTRY);
        for n in 0..100u32 {
            let p = IpNet::from(IpAddr::from(std::net::Ipv4Addr::from(0x0a0a_0000 + n)));
            cache.insert(p, pending(0)).unwrap();
            while cache.enqueue(&p, vec![0; 20]) {}
        }
        assert_eq!(cache.queued(), QUEUE_TOTAL);
        cache.remove(&one);
        assert_eq!(cache.queued(), QUEUE_TOTAL - QUEUE_PER_ENTRY);
    }

    #[test]
    fn full_cache_evicts_negative_entries_only() {
        let t = Instant::now();
        let mut cache = MapCache::new(2);
        let negative = |s| State::Negative {
            action: lisp::Action::DROP_NO_REASON,
            expires: t + Duration::from_secs(s),
            no_answer: false,
        };
        cache.insert(net("10.0.0.1/32"), negative(5)).unwrap();
        cache.insert(net("10.0.0.2/32"), negative(9)).unwrap();
        cache.insert(net("10.0.0.3/32"), pending(1)).unwrap();
        assert!(
            cache.get(&net("10.0.0.1/32")).is_none(),
            "the older negative entry went"
        );
        cache.insert(net("10.0.0.4/32"), pending(1)).unwrap();
        assert_eq!(cache.insert(net("10.0.0.5/32"), pending(1)), Err(Full));
        assert_eq!(cache.len(), 2);
        assert!(cache.consistent());
    }

    #[test]
    fn the_deadline_index_follows_every_change() {
        let t = Instant::now();
        let at = |s| t + Duration::from_secs(s);
        let mut cache = MapCache::new(8);
        let negative = |s| State::Negative {
            action: lisp::Action::DROP_NO_REASON,
            expires: at(s),
            no_answer: false,
        };
        let (one, two, three) = (net("10.0.0.1/32"), net("10.0.0.2/32"), net("10.0.0.3/32"));
        cache.insert(one, negative(9)).unwrap();
        cache.insert(two, pending(0)).unwrap();
        cache.reschedule(&two, at(5), true);
        cache
            .insert(
                three,
                State::Resolved {
                    key: [3; 32],
                    expires: at(7),
                },
            )
            .unwrap();
        assert!(cache.consistent());
        assert_eq!(cache.next_deadline(), Some(at(5)));
        assert_eq!(cache.due(at(7)), vec![two, three]);
        // Replaced by a state due at the same time: still indexed once.
        cache.insert(one, negative(9)).unwrap();
        cache.insert(two, negative(5)).unwrap();
        assert!(cache.consistent());
        assert_eq!(cache.pending_from("10.1.0.2".parse().unwrap()), 0);
        cache.remove(&two);
        cache.remove(&three);
        assert!(cache.consistent());
        assert_eq!(cache.due(at(8)), Vec::<IpNet>::new());
        assert_eq!(cache.next_deadline(), Some(at(9)));
    }

    #[test]
    fn pending_entries_are_counted_per_source() {
        let mut cache = MapCache::new(8);
        let source = "10.1.0.2".parse().unwrap();
        cache.insert(net("10.0.0.1/32"), pending(0)).unwrap();
        cache.insert(net("10.0.0.2/32"), pending(0)).unwrap();
        assert_eq!(cache.pending_from(source), 2);
        cache.insert(net("10.0.0.2/32"), pending(0)).unwrap();
        assert_eq!(
            cache.pending_from(source),
            2,
            "a replaced entry counts once"
        );
        cache.remove(&net("10.0.0.1/32"));
        assert_eq!(cache.pending_from(source), 1);
        assert_eq!(
            cache.pending_within(&net("10.0.0.0/24")),
            vec![net("10.0.0.2/32")]
        );
    }
}
