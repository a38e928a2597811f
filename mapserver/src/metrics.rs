//! Counters the map-server keeps, shared by its threads, and their
//! Prometheus text exposition.

use std::fmt::Write;
// 64-bit counters even on CPUs without 64-bit atomics (32-bit MIPS).
use portable_atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Why a message was dropped: each has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Not a LISP message we can parse.
    Malformed,
    /// From an address that is no site's control address.
    UnknownSource,
    /// Authentication data missing or wrong.
    AuthFailed,
    /// An EID-Prefix outside the site's allowed set.
    OutsidePrefix,
    /// A WireGuard key other than the site's.
    KeyMismatch,
    /// A prefix another site has registered.
    OwnedByOther,
    /// From a site an operator revoked.
    Revoked,
    /// A message type the map-server does not take.
    UnexpectedType,
    /// More messages from one site than its rate allows.
    RateLimited,
    /// Not received on the map-server's WireGuard interface: its source
    /// address is not vouched for (a forged datagram from the underlay).
    NotFromTunnel,
    /// An ECM Map-Request with no ITR-RLOC of the family it came in (or
    /// no inner source port) to answer at.
    NoItrRloc,
    /// An enrolment naming no token this map-server knows (issued, or a
    /// group token it can verify).
    UnknownToken,
    /// An enrolment with a token revoked, expired or used up.
    TokenNotActive,
    /// An enrolment whose nonce was seen before for its token.
    Replayed,
    /// An enrolment over the enrolment rate.
    EnrolmentRate,
    /// No address left in the token's pool or the control pool.
    PoolExhausted,
    /// An enrolment asking for addresses (those another map-server of the
    /// group gave) that are taken here or outside what its token gives.
    AddressTaken,
}

impl DropReason {
    pub const ALL: [DropReason; 17] = [
        DropReason::Malformed,
        DropReason::UnknownSource,
        DropReason::AuthFailed,
        DropReason::OutsidePrefix,
        DropReason::KeyMismatch,
        DropReason::OwnedByOther,
        DropReason::Revoked,
        DropReason::UnexpectedType,
        DropReason::RateLimited,
        DropReason::NotFromTunnel,
        DropReason::NoItrRloc,
        DropReason::UnknownToken,
        DropReason::TokenNotActive,
        DropReason::Replayed,
        DropReason::EnrolmentRate,
        DropReason::PoolExhausted,
        DropReason::AddressTaken,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownSource => "unknown_source",
            DropReason::AuthFailed => "auth_failed",
            DropReason::OutsidePrefix => "outside_prefix",
            DropReason::KeyMismatch => "key_mismatch",
            DropReason::OwnedByOther => "owned_by_other_site",
            DropReason::Revoked => "revoked",
            DropReason::UnexpectedType => "unexpected_type",
            DropReason::RateLimited => "rate_limited",
            DropReason::NotFromTunnel => "not_from_tunnel",
            DropReason::NoItrRloc => "no_itr_rloc",
            DropReason::UnknownToken => "unknown_token",
            DropReason::TokenNotActive => "token_not_active",
            DropReason::Replayed => "replayed",
            DropReason::EnrolmentRate => "enrolment_rate",
            DropReason::PoolExhausted => "pool_exhausted",
            DropReason::AddressTaken => "address_taken",
        }
    }
}

/// Upper bounds of the processing-time histogram buckets, microseconds.
const BUCKETS_US: [u64; 8] = [1, 2, 5, 10, 20, 50, 100, 1000];

#[derive(Default)]
pub struct Metrics {
    pub registrations: AtomicU64,
    pub map_registers: AtomicU64,
    pub map_requests: AtomicU64,
    pub map_replies: AtomicU64,
    /// Map-Replies held for the destination's ack (the requester sends
    /// first).
    pub held_replies: AtomicU64,
    pub negative_replies: AtomicU64,
    pub notifies_sent: AtomicU64,
    pub notifies_acked: AtomicU64,
    pub notifies_retransmitted: AtomicU64,
    pub notifies_failed: AtomicU64,
    /// Datagrams the kernel dropped because a LISP socket's receive buffer
    /// was full (SO_RXQ_OVFL, counted when the next datagram arrives).
    pub receive_dropped: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    processing_ns: AtomicU64,
}

impl Metrics {
    pub fn dropped(&self, reason: DropReason) {
        self.drops[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].load(Relaxed)
    }

    /// Records how long one message took to process.
    pub fn processed(&self, took: Duration) {
        let us = took.as_micros() as u64;
        let bucket = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.processing_ns
            .fetch_add(took.as_nanos() as u64, Relaxed);
    }

    /// The Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, kind: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP lispguard_{name} {help}");
            let _ = writeln!(out, "# TYPE lispguard_{name} {kind}");
            let _ = writeln!(out, "lispguard_{name} {}", v.load(Relaxed));
        };
        counter(
            &mut out,
            "registrations",
            "EID-Prefixes registered now.",
            "gauge",
            &self.registrations,
        );
        counter(
            &mut out,
            "map_registers_total",
            "Map-Registers accepted.",
            "counter",
            &self.map_registers,
        );
        counter(
            &mut out,
            "map_requests_total",
            "Map-Requests received.",
            "counter",
            &self.map_requests,
        );
        counter(
            &mut out,
            "map_replies_total",
            "Map-Replies sent.",
            "counter",
            &self.map_replies,
        );
        counter(
            &mut out,
            "held_map_replies_total",
            "Map-Replies held until the destination acknowledged its push (the requester starts the handshake).",
            "counter",
            &self.held_replies,
        );
        counter(
            &mut out,
            "negative_map_replies_total",
            "Negative Map-Reply records sent.",
            "counter",
            &self.negative_replies,
        );
        counter(
            &mut out,
            "map_notifies_sent_total",
            "Map-Notifies sent (not counting retransmissions).",
            "counter",
            &self.notifies_sent,
        );
        counter(
            &mut out,
            "map_notifies_acked_total",
            "Pushed Map-Notifies acknowledged.",
            "counter",
            &self.notifies_acked,
        );
        counter(
            &mut out,
            "map_notifies_retransmitted_total",
            "Pushed Map-Notifies sent again.",
            "counter",
            &self.notifies_retransmitted,
        );
        counter(
            &mut out,
            "map_notifies_failed_total",
            "Pushed Map-Notifies never acknowledged.",
            "counter",
            &self.notifies_failed,
        );
        counter(
            &mut out,
            "receive_dropped_total",
            "Datagrams the kernel dropped for a full LISP socket receive buffer.",
            "counter",
            &self.receive_dropped,
        );
        let _ = writeln!(
            out,
            "# HELP lispguard_dropped_total Messages dropped, by reason."
        );
        let _ = writeln!(out, "# TYPE lispguard_dropped_total counter");
        for reason in DropReason::ALL {
            let _ = writeln!(
                out,
                "lispguard_dropped_total{{reason=\"{}\"}} {}",
                reason.label(),
                self.drops(reason)
            );
        }
        let _ = writeln!(
            out,
            "# HELP lispguard_processing_seconds Time to process one message."
        );
        let _ = writeln!(out, "# TYPE lispguard_processing_seconds histogram");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_US.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(
                out,
                "lispguard_processing_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        cumulative += self.buckets[BUCKETS_US.len()].load(Relaxed);
        let _ = writeln!(
            out,
            "lispguard_processing_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.processing_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "lispguard_processing_seconds_sum {sum}");
        let _ = writeln!(out, "lispguard_processing_seconds_count {cumulative}");
        out
    }
}

/// Minimum time between two log lines about drops of one reason.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// Which drops are logged: at most one line per reason every
/// [`DROP_LOG_EVERY`], saying how many were not. Lock-free, so that the
/// receive threads refuse a forged datagram without taking a lock.
pub struct DropLog {
    origin: std::time::Instant,
    /// When a drop of each reason was last logged: nanoseconds since
    /// `origin`, plus 1 (0: never).
    last: [AtomicU64; DropReason::ALL.len()],
    suppressed: [AtomicU64; DropReason::ALL.len()],
}

impl DropLog {
    /// `origin`: no `now` given to [`DropLog::note`] is earlier.
    pub fn new(origin: std::time::Instant) -> DropLog {
        DropLog {
            origin,
            last: Default::default(),
            suppressed: Default::default(),
        }
    }

    /// Notes a drop at `now`: `Some(n)` if it is to be logged, with how
    /// many were not since the last line.
    pub fn note(&self, now: std::time::Instant, reason: DropReason) -> Option<u64> {
        let at = now.saturating_duration_since(self.origin).as_nanos() as u64 + 1;
        let last = &self.last[reason as usize];
        let before = last.load(Relaxed);
        let every = DROP_LOG_EVERY.as_nanos() as u64;
        let quiet = before != 0 && at.saturating_sub(before) < every;
        if quiet || last.compare_exchange(before, at, Relaxed, Relaxed).is_err() {
            self.suppressed[reason as usize].fetch_add(1, Relaxed);
            return None;
        }
        Some(self.suppressed[reason as usize].swap(0, Relaxed))
    }
}
