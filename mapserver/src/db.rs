//! The mapping database: EID-Prefix → mapping, with longest-prefix match
//! per instance ID and address family (a prefix trie each), an expiry
//! index, and an index of each site's prefixes. Lookup cost depends on the
//! prefix length, not on the number of mappings.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use lisp::EidPrefix;
use netconf::PublicKey;
use prefix_trie::PrefixMap;
use smallvec::SmallVec;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

/// A site's number, stable across configuration reloads.
pub type SiteId = u32;

/// Where a registered ETR's WireGuard socket is reachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rloc {
    pub address: SocketAddr,
    pub priority: u8,
    pub weight: u8,
}

/// A mapping's locators: one, inline, in nearly every mapping (a million
/// static mappings cost their locator and nothing beside), more on the
/// heap.
pub type Locators = SmallVec<[Rloc; 1]>;

/// What an EID-Prefix maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Index of the registering site; None for a static mapping.
    pub site: Option<SiteId>,
    pub eid: EidPrefix,
    /// None for a plain LISP site's registration.
    pub key: Option<PublicKey>,
    /// At most [`lisp::MAX_LOCATORS`], as a record carries.
    pub rlocs: Locators,
    /// Record TTL handed out, in minutes.
    pub ttl: u32,
    /// When the site first registered it (for the age `sites` shows).
    pub registered: Instant,
    /// None for a static mapping, which never expires.
    pub expires: Option<Instant>,
}

impl Mapping {
    /// Same locators and key: a refresh, not a change subscribers hear of.
    pub fn same_as(&self, other: &Mapping) -> bool {
        self.key == other.key && self.rlocs == other.rlocs
    }
}

#[derive(Default)]
struct Tables {
    v4: PrefixMap<Ipv4Net, Mapping>,
    v6: PrefixMap<Ipv6Net, Mapping>,
}

#[derive(Default)]
pub struct Db {
    instances: HashMap<u32, Tables>,
    expiry: BTreeSet<(Instant, EidPrefix)>,
    by_site: HashMap<SiteId, BTreeSet<EidPrefix>>,
    len: usize,
}

impl Db {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts or replaces the mapping of `mapping.eid`; returns the old one.
    pub fn insert(&mut self, mapping: Mapping) -> Option<Mapping> {
        let old = self.remove(&mapping.eid);
        let eid = mapping.eid;
        if let Some(expires) = mapping.expires {
            self.expiry.insert((expires, eid));
        }
        if let Some(site) = mapping.site {
            self.by_site.entry(site).or_default().insert(eid);
        }
        let tables = self.instances.entry(eid.iid).or_default();
        match eid.prefix {
            IpNet::V4(p) => tables.v4.insert(p, mapping),
            IpNet::V6(p) => tables.v6.insert(p, mapping),
        };
        self.len += 1;
        old
    }

    /// The mapping of exactly this prefix.
    pub fn get(&self, eid: &EidPrefix) -> Option<&Mapping> {
        let tables = self.instances.get(&eid.iid)?;
        match eid.prefix {
            IpNet::V4(p) => tables.v4.get(&p),
            IpNet::V6(p) => tables.v6.get(&p),
        }
    }

    /// The most specific mapping that covers `eid`.
    pub fn lookup(&self, eid: &EidPrefix) -> Option<&Mapping> {
        let tables = self.instances.get(&eid.iid)?;
        match eid.prefix {
            IpNet::V4(p) => tables.v4.get_lpm(&p).map(|(_, m)| m),
            IpNet::V6(p) => tables.v6.get_lpm(&p).map(|(_, m)| m),
        }
    }

    pub fn remove(&mut self, eid: &EidPrefix) -> Option<Mapping> {
        let tables = self.instances.get_mut(&eid.iid)?;
        let old = match eid.prefix {
            IpNet::V4(p) => tables.v4.remove(&p),
            IpNet::V6(p) => tables.v6.remove(&p),
        }?;
        self.len -= 1;
        if let Some(expires) = old.expires {
            self.expiry.remove(&(expires, old.eid));
        }
        if let Some(site) = old.site {
            if let Some(set) = self.by_site.get_mut(&site) {
                set.remove(&old.eid);
                if set.is_empty() {
                    self.by_site.remove(&site);
                }
            }
        }
        Some(old)
    }

    /// Removes and returns the mappings whose time ran out by `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<Mapping> {
        let mut expired = Vec::new();
        while let Some(&(at, eid)) = self.expiry.first() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            expired.extend(self.remove(&eid));
        }
        expired
    }

    /// When the next mapping expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.first().map(|(at, _)| *at)
    }

    /// The least specific prefix that contains `eid` and no mapping (RFC
    /// 9301 section 8.1: a negative Map-Reply covers the widest prefix
    /// known to hold no EID-Prefix), for an `eid` no mapping covers. Its
    /// length is found by binary search: a prefix free of mappings stays
    /// free when lengthened.
    pub fn widest_negative(&self, eid: &EidPrefix) -> EidPrefix {
        let tables = self.instances.get(&eid.iid);
        let free = |len: u8| -> bool {
            let Some(tables) = tables else { return true };
            match eid.prefix {
                IpNet::V4(p) => Ipv4Net::new(p.addr(), len)
                    .map(|p| tables.v4.children(&p.trunc()).next().is_none())
                    .unwrap_or(true),
                IpNet::V6(p) => Ipv6Net::new(p.addr(), len)
                    .map(|p| tables.v6.children(&p.trunc()).next().is_none())
                    .unwrap_or(true),
            }
        };
        let (mut lo, mut hi) = (0u8, eid.prefix.prefix_len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if free(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let prefix = IpNet::new(eid.prefix.addr(), lo).unwrap_or(eid.prefix);
        EidPrefix::new(eid.iid, prefix)
    }

    /// The prefixes `site` has registered.
    pub fn site_prefixes(&self, site: SiteId) -> impl Iterator<Item = &EidPrefix> {
        self.by_site.get(&site).into_iter().flatten()
    }

    /// Every mapping, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Mapping> {
        self.instances.values().flat_map(|t| {
            t.v4.iter()
                .map(|(_, m)| m)
                .chain(t.v6.iter().map(|(_, m)| m))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn mapping(eid: &str, site: SiteId, expires: Instant) -> Mapping {
        Mapping {
            site: Some(site),
            eid: eid.parse().unwrap(),
            key: Some([site as u8; 32]),
            rlocs: Locators::new(),
            ttl: 1,
            registered: expires,
            expires: Some(expires),
        }
    }

    fn eid(s: &str) -> EidPrefix {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_within_the_instance_only() {
        let t = Instant::now();
        let mut db = Db::default();
        db.insert(mapping("[1] 10.0.0.0/8", 1, t));
        db.insert(mapping("[1] 10.1.0.0/16", 2, t));
        db.insert(mapping("[2] 10.1.2.0/24", 3, t));
        assert_eq!(db.lookup(&eid("[1] 10.1.2.3/32")).unwrap().site, Some(2));
        assert_eq!(db.lookup(&eid("[1] 10.2.0.1/32")).unwrap().site, Some(1));
        assert_eq!(db.lookup(&eid("[2] 10.1.2.3/32")).unwrap().site, Some(3));
        assert!(db.lookup(&eid("[2] 10.1.3.3/32")).is_none());
        assert!(db.lookup(&eid("[3] 10.1.2.3/32")).is_none());
        assert!(db.lookup(&eid("[1] 2001:db8::1/128")).is_none());
    }

    #[test]
    fn refresh_moves_the_deadline_and_expiry_removes_once() {
        let t = Instant::now();
        let mut db = Db::default();
        db.insert(mapping("10.1.0.0/16", 1, t + Duration::from_secs(10)));
        db.insert(mapping("10.1.0.0/16", 1, t + Duration::from_secs(20)));
        assert_eq!(db.len(), 1);
        assert!(db.expire(t + Duration::from_secs(15)).is_empty());
        assert_eq!(db.next_expiry(), Some(t + Duration::from_secs(20)));
        assert_eq!(db.expire(t + Duration::from_secs(20)).len(), 1);
        assert!(db.is_empty());
        assert_eq!(db.site_prefixes(1).count(), 0);
    }

    #[test]
    fn negative_prefix_is_the_widest_free_of_mappings() {
        let t = Instant::now();
        let mut db = Db::default();
        assert_eq!(
            db.widest_negative(&eid("[1] 10.9.9.9/32")),
            eid("[1] 0.0.0.0/0")
        );
        db.insert(mapping("[1] 10.1.0.0/16", 1, t));
        db.insert(mapping("[1] 10.2.3.0/24", 2, t));
        db.insert(mapping("[2] 10.200.0.0/16", 3, t));
        // 10.128.0.0/9 holds nothing of instance 1.
        assert_eq!(
            db.widest_negative(&eid("[1] 10.200.1.1/32")),
            eid("[1] 10.128.0.0/9")
        );
        // Beside 10.2.3.0/24: 10.2.2.0/24 is free, 10.2.0.0/22 is not.
        assert_eq!(
            db.widest_negative(&eid("[1] 10.2.2.7/32")),
            eid("[1] 10.2.2.0/24")
        );
        assert_eq!(
            db.widest_negative(&eid("[1] 11.0.0.1/32")),
            eid("[1] 11.0.0.0/8")
        );
        assert_eq!(
            db.widest_negative(&eid("[1] 128.0.0.1/32")),
            eid("[1] 128.0.0.0/1")
        );
        assert_eq!(
            db.widest_negative(&eid("[1] 2001:db8::1/128")),
            eid("[1] ::/0")
        );
    }

    #[test]
    fn site_index_follows_inserts_and_removals() {
        let t = Instant::now();
        let mut db = Db::default();
        db.insert(mapping("10.1.0.0/16", 1, t));
        db.insert(mapping("10.2.0.0/16", 1, t));
        db.insert(mapping("2001:db8::/32", 2, t));
        assert_eq!(db.site_prefixes(1).count(), 2);
        db.remove(&eid("10.1.0.0/16"));
        assert_eq!(
            db.site_prefixes(1).collect::<Vec<_>>(),
            [&eid("10.2.0.0/16")]
        );
        assert_eq!(db.iter().count(), 2);
    }
}
