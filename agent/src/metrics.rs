//! What the agent counts beyond `status`'s counters — refusals by reason,
//! the first-contact time — and the Prometheus text exposition of it all,
//! rendered from a [`Status`] in the event loop (so that one scrape is one
//! consistent snapshot).

use crate::engine::{Refusal, Status};
use std::fmt::Write;
use std::time::Duration;

/// Why packets were answered with ICMP instead of sent: each has its own
/// counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The map-server answered that nothing maps the destination.
    NoMapping,
    /// The map-server did not answer.
    NoAnswer,
    /// The map-server's policy denies it.
    Denied,
    /// Its source had too many destinations pending, or the node no
    /// Map-Request left (a scan).
    OverLimits,
}

impl Refused {
    pub const ALL: [Refused; 4] = [
        Refused::NoMapping,
        Refused::NoAnswer,
        Refused::Denied,
        Refused::OverLimits,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refused::NoMapping => "no_mapping",
            Refused::NoAnswer => "no_answer",
            Refused::Denied => "denied",
            Refused::OverLimits => "over_limits",
        }
    }

    /// The ICMP error the packet gets.
    pub fn refusal(self) -> Refusal {
        match self {
            Refused::Denied => Refusal::Denied,
            _ => Refusal::NoMapping,
        }
    }
}

/// Upper bounds of the first-contact buckets, microseconds: 0.5 ms (a
/// map-server next door) to 5 s (retries to a slow one).
pub const BUCKETS_US: [u64; 13] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000,
];

/// A Prometheus histogram of durations: counts per bucket (not
/// cumulative; the last one is +Inf), their sum and number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    buckets: [u64; BUCKETS_US.len() + 1],
    sum_us: u64,
    count: u64,
}

impl Histogram {
    pub fn observe(&mut self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[bucket] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Observations of at most `le` (a bucket bound, or above the last:
    /// all), as Prometheus counts them.
    pub fn at_most(&self, le: Duration) -> u64 {
        let us = le.as_micros();
        BUCKETS_US
            .iter()
            .zip(&self.buckets)
            .take_while(|(b, _)| u128::from(**b) <= us)
            .map(|(_, n)| n)
            .sum::<u64>()
            + if BUCKETS_US.last().is_some_and(|b| u128::from(*b) < us) {
                self.buckets[BUCKETS_US.len()]
            } else {
                0
            }
    }
}

/// One metric's `# HELP` and `# TYPE` lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP lispguard_agent_{name} {help}");
    let _ = writeln!(out, "# TYPE lispguard_agent_{name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    head(out, name, kind, help);
    let _ = writeln!(out, "lispguard_agent_{name} {value}");
}

/// The Prometheus text format (version 0.0.4).
pub fn render(status: &Status) -> String {
    let mut out = String::new();
    let c = &status.counters;
    single(
        &mut out,
        "peers",
        "gauge",
        "WireGuard peers set up on demand.",
        status.peers.len(),
    );
    head(
        &mut out,
        "map_cache_entries",
        "gauge",
        "Map-cache entries, by state.",
    );
    for (state, n) in [
        ("resolved", status.cached),
        ("pending", status.pending),
        ("negative", status.negative),
    ] {
        let _ = writeln!(
            out,
            "lispguard_agent_map_cache_entries{{state=\"{state}\"}} {n}"
        );
    }
    let counters = [
        (
            "misses_total",
            "Packets to a destination without a map-cache entry.",
            c.misses,
        ),
        (
            "map_requests_total",
            "Map-Requests sent (retries, refreshes and lookups included).",
            c.map_requests,
        ),
        (
            "map_replies_total",
            "Map-Replies taken (lookups included).",
            c.map_replies,
        ),
        (
            "negative_replies_total",
            "Negative answers to resolutions.",
            c.negative_replies,
        ),
        (
            "pushes_total",
            "Map-Notifies pushed by a map-server (not those acknowledging a Map-Register).",
            c.pushes,
        ),
        (
            "throttled_total",
            "New destinations and refreshes over the Map-Request limits.",
            c.throttled,
        ),
        (
            "dropped_packets_total",
            "Packets dropped: queue or map-cache full, unreadable.",
            c.dropped_packets,
        ),
        (
            "ignored_packets_total",
            "Packets on the TUN not for the overlay.",
            c.ignored_packets,
        ),
        (
            "bad_messages_total",
            "Control messages dropped: unknown sender, forged, unreadable, unasked.",
            c.bad_messages,
        ),
        (
            "handshake_fallbacks_total",
            "First contacts whose handshake never completed: the map-server was asked again.",
            c.handshake_fallbacks,
        ),
        (
            "relay_to_direct_total",
            "Relayed peers that moved to a direct path.",
            c.relay_to_direct,
        ),
    ];
    for (name, help, value) in counters {
        single(&mut out, name, "counter", help, value);
    }
    single(
        &mut out,
        "queued_packets",
        "gauge",
        "Packets waiting for their destination to be resolved.",
        status.queued_packets,
    );
    head(
        &mut out,
        "refused_packets_total",
        "counter",
        "Packets answered with ICMP unreachable, by reason.",
    );
    for reason in Refused::ALL {
        let _ = writeln!(
            out,
            "lispguard_agent_refused_packets_total{{reason=\"{}\"}} {}",
            reason.label(),
            c.refused[reason as usize]
        );
    }
    let h = &c.first_contact;
    head(
        &mut out,
        "first_contact_seconds",
        "histogram",
        "From a miss to its peer being set up.",
    );
    let mut cumulative = 0;
    for (bound, n) in BUCKETS_US.iter().zip(&h.buckets) {
        cumulative += n;
        let le = *bound as f64 / 1e6;
        let _ = writeln!(
            out,
            "lispguard_agent_first_contact_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "lispguard_agent_first_contact_seconds_bucket{{le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(
        out,
        "lispguard_agent_first_contact_seconds_sum {}",
        h.sum_us as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "lispguard_agent_first_contact_seconds_count {}",
        h.count
    );
    head(
        &mut out,
        "map_server_registered",
        "gauge",
        "1 if the map-server acknowledged a Map-Register and has not left a message unanswered since.",
    );
    for ms in &status.map_servers {
        let registered = ms.registered.is_some() && ms.answering;
        let _ = writeln!(
            out,
            "lispguard_agent_map_server_registered{{map_server=\"{}\"}} {}",
            ms.control_address,
            u8::from(registered)
        );
    }
    head(
        &mut out,
        "map_server_last_map_notify_seconds",
        "gauge",
        "Seconds since the map-server last acknowledged a Map-Register (none before the first).",
    );
    for ms in &status.map_servers {
        if let Some(age) = ms.registered {
            let _ = writeln!(
                out,
                "lispguard_agent_map_server_last_map_notify_seconds{{map_server=\"{}\"}} {}",
                ms.control_address,
                age.as_secs_f64()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Counters, MapServerStatus};

    #[test]
    fn the_exposition_has_every_family_with_its_type_and_labels() {
        let mut counters = Counters {
            misses: 3,
            ..Counters::default()
        };
        counters.refused[Refused::Denied as usize] = 2;
        counters.first_contact.observe(Duration::from_millis(4));
        let map_server = |addr: &str, registered| MapServerStatus {
            control_address: addr.parse().unwrap(),
            registered,
            waiting: false,
            answering: true,
        };
        let status = Status {
            map_servers: vec![
                map_server("100.64.0.1", Some(Duration::from_secs(12))),
                map_server("100.64.0.9", None),
            ],
            peers: Vec::new(),
            cached: 1,
            pending: 2,
            negative: 0,
            queued_packets: 5,
            rlocs: Vec::new(),
            counters,
        };
        let text = render(&status);
        for line in [
            "# TYPE lispguard_agent_misses_total counter",
            "lispguard_agent_misses_total 3",
            "lispguard_agent_map_cache_entries{state=\"pending\"} 2",
            "lispguard_agent_queued_packets 5",
            "lispguard_agent_refused_packets_total{reason=\"denied\"} 2",
            "# TYPE lispguard_agent_first_contact_seconds histogram",
            "lispguard_agent_first_contact_seconds_bucket{le=\"0.0025\"} 0",
            "lispguard_agent_first_contact_seconds_bucket{le=\"0.005\"} 1",
            "lispguard_agent_first_contact_seconds_bucket{le=\"+Inf\"} 1",
            "lispguard_agent_first_contact_seconds_count 1",
            "lispguard_agent_map_server_registered{map_server=\"100.64.0.1\"} 1",
            "lispguard_agent_map_server_registered{map_server=\"100.64.0.9\"} 0",
            "lispguard_agent_map_server_last_map_notify_seconds{map_server=\"100.64.0.1\"} 12",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        assert!(!text.contains("last_map_notify_seconds{map_server=\"100.64.0.9\"}"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let family = line.split(['{', ' ']).next().unwrap_or("");
            let base = family
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "{family} has its TYPE"
            );
        }
    }

    #[test]
    fn a_duration_lands_in_the_first_bucket_that_holds_it() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(9));
        assert_eq!(h.count(), 3);
        assert_eq!(h.at_most(Duration::from_micros(500)), 1);
        assert_eq!(
            h.at_most(Duration::from_millis(2)),
            1,
            "no bound at 2 ms: 1 ms's"
        );
        assert_eq!(h.at_most(Duration::from_millis(5)), 2);
        assert_eq!(h.at_most(Duration::from_secs(5)), 2);
        assert_eq!(h.at_most(Duration::MAX), 3);
    }
}
