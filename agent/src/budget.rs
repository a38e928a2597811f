//! How many Map-Requests the agent may send: a token bucket for the site
//! and one for each inner source, so that one scanning host runs out of
//! its own allowance (and is refused with ICMP) long before the site's
//! runs out for everyone, and the site stays under the map-server's rate
//! limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Map-Requests per second for the whole node, retries included, and the
/// burst it may send at once. The map-server allows a site 1000 messages
/// per second (Map-Registers included): a fifth of it leaves room for
/// registrations, acknowledgements and a second xTR of the same site.
pub const SITE_RATE: f64 = 200.0;
pub const SITE_BURST: f64 = 50.0;
/// New destinations per second one inner source may have resolved: a
/// browser opening a page resolves a few dozen; a scan, thousands.
pub const SOURCE_RATE: f64 = 32.0;
pub const SOURCE_BURST: f64 = 32.0;
/// Sources tracked at once; beyond it, new sources share one bucket (a
/// flood of forged sources cannot grow the table).
const SOURCES_MAX: usize = 1024;

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Clone, Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    pub fn new(now: Instant, rate: f64, burst: f64) -> Bucket {
        Bucket {
            tokens: burst,
            last: now,
            rate,
            burst,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = self.last.max(now);
    }

    fn has_token(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let ok = self.has_token(now);
        if ok {
            self.tokens -= 1.0;
        }
        ok
    }

    /// How long until a token is there.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        Duration::from_secs_f64(((1.0 - self.tokens) / self.rate).max(0.0))
    }

    fn full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// The site's bucket and the sources' buckets.
pub struct Budget {
    site: Bucket,
    sources: HashMap<IpAddr, Bucket>,
    /// Shared by the sources beyond [`SOURCES_MAX`].
    overflow: Bucket,
}

impl Budget {
    pub fn new(now: Instant) -> Budget {
        Budget {
            site: Bucket::new(now, SITE_RATE, SITE_BURST),
            sources: HashMap::new(),
            overflow: Bucket::new(now, SOURCE_RATE, SOURCE_BURST),
        }
    }

    /// A Map-Request for a new destination of `source`: both its own and
    /// the site's allowance must have a token (taken only if both do).
    pub fn new_destination(&mut self, now: Instant, source: IpAddr) -> bool {
        if !self.sources.contains_key(&source) && self.sources.len() >= SOURCES_MAX {
            // Sources whose buckets refilled are as good as new: forget them.
            self.sources.retain(|_, b| !b.full(now));
        }
        let bucket = if self.sources.len() < SOURCES_MAX || self.sources.contains_key(&source) {
            self.sources
                .entry(source)
                .or_insert_with(|| Bucket::new(now, SOURCE_RATE, SOURCE_BURST))
        } else {
            &mut self.overflow
        };
        if !bucket.has_token(now) || !self.site.has_token(now) {
            return false;
        }
        bucket.take(now);
        self.site.take(now)
    }

    /// A Map-Request that is not for a new destination (a retry, a
    /// refresh): the site's allowance only.
    pub fn site(&mut self, now: Instant) -> bool {
        self.site.take(now)
    }

    /// How long until the site has a token again.
    pub fn site_wait(&mut self, now: Instant) -> Duration {
        self.site.wait(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t = Instant::now();
        let mut b = Bucket::new(t, 10.0, 5.0);
        assert_eq!((0..20).filter(|_| b.take(t)).count(), 5);
        assert_eq!(b.wait(t), Duration::from_millis(100));
        let later = t + Duration::from_secs(1);
        assert_eq!(
            (0..20).filter(|_| b.take(later)).count(),
            5,
            "capped at the burst"
        );
    }

    #[test]
    fn a_busy_source_runs_out_before_the_site_does() {
        let t = Instant::now();
        let mut budget = Budget::new(t);
        let scanner = "10.1.0.2".parse().unwrap();
        let other = "10.1.0.3".parse().unwrap();
        let granted = (0..1000)
            .filter(|_| budget.new_destination(t, scanner))
            .count();
        assert_eq!(granted as f64, SOURCE_BURST);
        assert!(
            budget.new_destination(t, other),
            "another host still gets one"
        );
    }
}
