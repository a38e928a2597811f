//! The map-cache: what this node knows of overlay destinations. A prefix
//! is resolved (a WireGuard peer and a route exist for it), pending (a
//! Map-Request is out; its first packets wait here), or negative (nothing
//! maps it; packets are answered with ICMP). Bounded in entries and in the
//! packets it holds, so a scan of thousands of EIDs cannot grow it.

use crate::engine::PublicKey;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
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
        retry_at: Instant,
        queue: Vec<Vec<u8>>,
    },
    /// A WireGuard peer with `key` carries the prefix until `expires`.
    Resolved { key: PublicKey, expires: Instant },
    /// No mapping: answer with ICMP until `expires`.
    Negative {
        action: lisp::Action,
        expires: Instant,
    },
}

pub struct MapCache {
    v4: PrefixMap<Ipv4Net, State>,
    v6: PrefixMap<Ipv6Net, State>,
    len: usize,
    capacity: usize,
    queued: usize,
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

    /// Inserts or replaces; makes room by evicting a negative entry when
    /// full, never a pending or resolved one.
    pub fn insert(&mut self, prefix: IpNet, state: State) -> Result<(), Full> {
        if self.get(&prefix).is_none() && self.len >= self.capacity {
            let victim = self
                .iter()
                .filter_map(|(p, s)| match s {
                    State::Negative { expires, .. } => Some((*expires, p)),
                    _ => None,
                })
                .min()
                .map(|(_, p)| p)
                .ok_or(Full)?;
            self.remove(&victim);
        }
        if let State::Pending { queue, .. } = &state {
            self.queued += queue.len();
        }
        let old = match prefix {
            IpNet::V4(p) => self.v4.insert(p, state),
            IpNet::V6(p) => self.v6.insert(p, state),
        };
        match old {
            Some(old) => self.forget(&old),
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
        self.forget(&old);
        Some(old)
    }

    fn forget(&mut self, old: &State) {
        if let State::Pending { queue, .. } = old {
            self.queued -= queue.len();
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

    /// Counts one more Map-Request for a pending entry and sets when the
    /// next is due; false when `prefix` is not pending.
    pub fn reschedule(&mut self, prefix: &IpNet, retry_at: Instant) -> bool {
        let state = match prefix {
            IpNet::V4(p) => self.v4.get_mut(p),
            IpNet::V6(p) => self.v6.get_mut(p),
        };
        match state {
            Some(State::Pending {
                sent, retry_at: at, ..
            }) => {
                *sent += 1;
                *at = retry_at;
                true
            }
            _ => false,
        }
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
        self.iter()
            .filter(|(p, s)| matches!(s, State::Pending { .. }) && prefix.contains(p))
            .map(|(p, _)| p)
            .collect()
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
            retry_at: Instant::now(),
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
    }
}
