//! The agent's decisions, driven without a network and with a made-up
//! clock; the map-server's side is played with the codec.

use agent::engine::{
    owned, Agent, Effect, MapServerSettings, Outbox, PeerStats, Refusal, Settings,
};
use ipnet::IpNet;
use lisp::{
    auth, Action, Address, Algorithm, List, Locator, MapNotify, MapRegister, MapReply, MapRequest,
    Message, Record, Registration,
};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const MS_KEY: &[u8] = b"site key";
const B_KEY: [u8; 32] = [0xbb; 32];

/// Effects with their bytes, as the tests read them.
type Done = Vec<Effect<Vec<u8>>>;

fn ms() -> SocketAddr {
    "100.64.0.1:4342".parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct World {
    agent: Agent,
    now: Instant,
}

impl World {
    fn new() -> World {
        World::with_cache(16)
    }

    fn with_cache(cache_capacity: usize) -> World {
        World::with(cache_capacity, &["100.64.0.1"])
    }

    /// An agent with these map-servers' control addresses.
    fn with(cache_capacity: usize, map_servers: &[&str]) -> World {
        let now = Instant::now();
        let settings = Settings {
            iid: 1000,
            eids: vec!["[1000] 10.1.0.0/24".parse().unwrap()],
            control_address: ip("100.64.0.2"),
            overlay: vec![net("10.0.0.0/8")],
            public_key: [0xaa; 32],
            listen_port: 51820,
            register_interval: Duration::from_secs(60),
            record_ttl: 15,
            map_servers: map_servers
                .iter()
                .map(|ms| MapServerSettings {
                    control_address: ip(ms),
                    key: MS_KEY.to_vec(),
                })
                .collect(),
            cache_capacity,
        };
        World {
            // A fixed seed: the same nonces every run.
            agent: Agent::new(settings, now, fastrand::Rng::with_seed(7)),
            now,
        }
    }

    /// A packet from host 10.1.0.2 behind this site.
    fn packet(&mut self, to: &str, tag: u8) -> Done {
        self.packet_from("10.1.0.2", to, tag)
    }

    fn packet_from(&mut self, from: &str, to: &str, tag: u8) -> Done {
        let mut out = Outbox::default();
        self.agent
            .on_packet(self.now, ip(from), ip(to), &[tag], &mut out);
        owned(&out)
    }

    fn receive(&mut self, msg: &[u8]) -> Done {
        let mut out = Outbox::default();
        self.agent.on_control(self.now, ms(), msg, &mut out);
        owned(&out)
    }

    fn wait(&mut self, d: Duration) -> Done {
        self.now += d;
        let mut out = Outbox::default();
        self.agent.poll(self.now, &mut out);
        owned(&out)
    }

    /// The WireGuard counters of the peers, read now.
    fn stats(&mut self, stats: &[PeerStats]) -> Done {
        let mut out = Outbox::default();
        self.agent.on_peer_stats(self.now, stats, &mut out);
        owned(&out)
    }

    /// This node's underlay addresses are now `rlocs`.
    fn rlocs(&mut self, rlocs: &[&str]) -> Done {
        let mut out = Outbox::default();
        let rlocs = rlocs.iter().map(|r| ip(r)).collect();
        self.agent.set_rlocs(self.now, rlocs, &mut out);
        owned(&out)
    }
}

/// A message the test keeps for its whole run: what it parses to borrows
/// from it.
fn kept(message: &[u8]) -> &'static [u8] {
    message.to_vec().leak()
}

/// The Map-Requests among `actions`, parsed.
fn requests(actions: &[Effect<Vec<u8>>]) -> Vec<MapRequest<'static>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Effect::Control { to, message } if *to == ms() => match Message::parse(kept(message)) {
                Ok(Message::MapRequest(r)) => Some(r),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn written(write: impl FnOnce(&mut [u8]) -> Result<usize, lisp::WriteError>) -> Vec<u8> {
    let mut buf = vec![0; 4096];
    let len = write(&mut buf).unwrap();
    buf.truncate(len);
    buf
}

/// The record the map-server hands out for site b's 10.2.0.0/24.
fn record_b(endpoint: &str) -> Record<'static> {
    let mut record = Record::negative(
        Address::eid(1000, ip("10.2.0.0"), Some(&B_KEY)),
        24,
        15,
        Action::NO_ACTION,
    );
    let locators = vec![Locator::reachable(Address::rloc(endpoint.parse().unwrap()))];
    record.locators = List::new(locators.leak());
    record
}

fn reply(nonce: u64, record: Record) -> Vec<u8> {
    let records = [record];
    let reply = MapReply {
        nonce,
        records: List::new(&records),
        ..MapReply::default()
    };
    written(|b| reply.emit(b))
}

fn push(records: Vec<Record>, key: &[u8]) -> Vec<u8> {
    let notify = MapNotify {
        body: Registration {
            nonce: 99,
            key_id: 0,
            algorithm: Algorithm::HmacSha256_128,
            records: List::new(&records),
            xtr: None,
        },
    };
    written(|b| notify.emit(b, key))
}

#[test]
fn cold_miss_queues_packets_asks_once_then_installs_and_sends_them() {
    let mut w = World::new();
    let first = w.packet("10.2.0.9", 1);
    let asked = requests(&first);
    assert_eq!(asked.len(), 1);
    let record = asked[0].records.get(0).unwrap();
    assert_eq!(
        (record.eid_mask_len, record.eid.instance_id(), record.notify),
        (32, 1000, true)
    );
    assert_eq!(record.eid.ip(), Some(ip("10.2.0.9")));
    assert_eq!(
        asked[0].itr_rlocs.get(0),
        Some(Address::Ip(ip("100.64.0.2")))
    );
    assert!(
        w.packet("10.2.0.9", 2).is_empty(),
        "queued, no second request"
    );

    let actions = w.receive(&reply(asked[0].nonce, record_b("192.0.2.11:51820")));
    assert_eq!(
        actions,
        vec![
            Effect::SetPeer {
                public_key: B_KEY,
                endpoint: Some("192.0.2.11:51820".parse().unwrap()),
                allowed_ips: vec![net("10.2.0.0/24")],
                keepalive: false,
            },
            // The route after them: they go straight to WireGuard.
            Effect::Forward(vec![1]),
            Effect::Forward(vec![2]),
            Effect::AddRoute(net("10.2.0.0/24")),
        ]
    );
}

/// Site b's record with its locator marked not to be sent to: b starts
/// the handshake, this side answers.
fn record_b_starts(endpoint: &str) -> Record<'static> {
    let mut record = record_b(endpoint);
    let locators = vec![Locator {
        priority: lisp::UNUSABLE_PRIORITY,
        ..Locator::reachable(Address::rloc(endpoint.parse().unwrap()))
    }];
    record.locators = List::new(locators.leak());
    record
}

fn b_stats(rx_bytes: u64) -> [PeerStats; 1] {
    [PeerStats {
        public_key: B_KEY,
        endpoint: None,
        rx_bytes,
        tx_bytes: 148,
    }]
}

/// b as a peer, at `endpoint`.
fn peer_b(endpoint: Option<&str>, keepalive: bool) -> Effect<Vec<u8>> {
    Effect::SetPeer {
        public_key: B_KEY,
        endpoint: endpoint.map(|e| e.parse().unwrap()),
        allowed_ips: vec![net("10.2.0.0/24")],
        keepalive,
    }
}

#[test]
fn a_first_contact_starts_its_handshake_again_until_the_destination_is_ready() {
    let mut w = World::new();
    w.wait(Duration::ZERO);
    let nonce = requests(&w.packet("10.2.0.9", 1))[0].nonce;
    w.receive(&reply(nonce, record_b("192.0.2.11:51820")));
    let [first, second, _] = agent::engine::HANDSHAKE_CHECKS;
    assert_eq!(w.wait(first), vec![Effect::ReadPeerStats]);
    // Nothing from b: its agent had not set this node as a peer yet when
    // the handshake arrived. A new peer starts another at once.
    assert_eq!(
        w.stats(&b_stats(0)),
        vec![
            Effect::RemovePeer { public_key: B_KEY },
            peer_b(Some("192.0.2.11:51820"), false),
            Effect::Forward(vec![1]),
        ]
    );
    assert_eq!(w.wait(second), vec![Effect::ReadPeerStats]);
    assert!(w.stats(&b_stats(92)).is_empty(), "b answered");
    assert!(
        !w.wait(Duration::from_secs(1))
            .contains(&Effect::ReadPeerStats),
        "no more checks"
    );
    assert_eq!(w.agent.counters().handshake_retries, 1);
}

#[test]
fn on_a_long_path_the_handshake_is_given_two_of_the_map_server_s_round_trips() {
    let mut w = World::new();
    w.wait(Duration::ZERO);
    let nonce = requests(&w.packet("10.2.0.9", 1))[0].nonce;
    // The answer took 40 ms: the handshake's answer may take as long.
    w.now += Duration::from_millis(40);
    w.receive(&reply(nonce, record_b("192.0.2.11:51820")));
    let [first, ..] = agent::engine::HANDSHAKE_CHECKS;
    assert!(
        !w.wait(first).contains(&Effect::ReadPeerStats),
        "not started again while its answer may be on the way"
    );
    assert_eq!(
        w.wait(Duration::from_millis(80) - first),
        vec![Effect::ReadPeerStats]
    );
    assert!(w.stats(&b_stats(92)).is_empty(), "b answered");
    assert_eq!(w.agent.counters().handshake_retries, 0);
    // Nothing from b: started again, and the next check is as far.
    let mut w = World::new();
    w.wait(Duration::ZERO);
    let nonce = requests(&w.packet("10.2.0.9", 1))[0].nonce;
    w.now += Duration::from_millis(40);
    w.receive(&reply(nonce, record_b("192.0.2.11:51820")));
    w.wait(Duration::from_millis(80));
    assert!(w
        .stats(&b_stats(0))
        .contains(&Effect::RemovePeer { public_key: B_KEY }));
    assert!(!w
        .wait(Duration::from_millis(79))
        .contains(&Effect::ReadPeerStats));
    assert_eq!(
        w.wait(Duration::from_millis(1)),
        vec![Effect::ReadPeerStats]
    );
}

#[test]
fn one_fast_answer_from_a_map_server_that_is_usually_slow_keeps_the_checks_late() {
    let mut w = World::new();
    w.wait(Duration::ZERO);
    // Three answers that took 40 ms, then one that took 1 ms.
    for n in 1..=3u8 {
        let to = format!("10.{}.0.9", 2 + n);
        let nonce = requests(&w.packet(&to, n))[0].nonce;
        w.now += Duration::from_millis(40);
        w.receive(&reply(
            nonce,
            negative(&format!("10.{}.0.0", 2 + n), 16, 15),
        ));
    }
    let nonce = requests(&w.packet("10.2.0.9", 9))[0].nonce;
    w.now += Duration::from_millis(1);
    w.receive(&reply(nonce, record_b("192.0.2.11:51820")));
    // Smoothed: 7/8 of 40 ms and 1/8 of 1 ms, 35.1 ms; checked after two.
    assert!(
        !w.wait(Duration::from_millis(70))
            .contains(&Effect::ReadPeerStats),
        "not at 5 ms, when the handshake's answer may be on its way"
    );
    assert_eq!(
        w.wait(Duration::from_millis(1)),
        vec![Effect::ReadPeerStats]
    );
}

#[test]
fn a_first_handshake_that_never_completes_has_the_destination_reach_out() {
    let mut w = World::new();
    w.wait(Duration::ZERO);
    let nonce = requests(&w.packet("10.2.0.9", 1))[0].nonce;
    w.receive(&reply(nonce, record_b("192.0.2.11:51820")));
    let mut asked = Vec::new();
    for wait in agent::engine::HANDSHAKE_CHECKS {
        assert_eq!(w.wait(wait), vec![Effect::ReadPeerStats]);
        asked = requests(&w.stats(&b_stats(0)));
    }
    assert_eq!(asked.len(), 1, "the map-server asked again, once");
    let counters = w.agent.counters();
    assert_eq!(
        (counters.handshake_retries, counters.handshake_fallbacks),
        (2, 1)
    );
    // Its held answer changes nothing here: b reaches out.
    assert!(w
        .receive(&reply(asked[0].nonce, record_b("192.0.2.11:51820")))
        .is_empty());
}

/// b through the relay at 192.0.2.1:`port`, its direct endpoint after.
fn record_b_relayed(port: u16) -> Record<'static> {
    let mut record = record_b("192.0.2.11:51820");
    let relay = SocketAddr::new(ip("192.0.2.1"), port);
    let locators = vec![
        Locator {
            priority: 0,
            ..Locator::reachable(Address::relayed(relay, Some(ip("192.0.2.11"))))
        },
        Locator::reachable(Address::rloc("192.0.2.11:51820".parse().unwrap())),
    ];
    record.locators = List::new(locators.leak());
    record
}

fn b_seen(endpoint: &str, rx_bytes: u64) -> [PeerStats; 1] {
    [PeerStats {
        endpoint: Some(endpoint.parse().unwrap()),
        ..b_stats(rx_bytes)[0]
    }]
}

#[test]
fn a_handshake_that_fails_after_the_reach_out_goes_through_the_relay_then_tries_direct() {
    let mut w = World::new();
    w.wait(Duration::ZERO);
    let nonce = requests(&w.packet("10.2.0.9", 1))[0].nonce;
    w.receive(&reply(nonce, record_b("192.0.2.11:51820")));
    let mut asked = Vec::new();
    for wait in agent::engine::HANDSHAKE_CHECKS {
        w.wait(wait);
        asked = requests(&w.stats(&b_stats(0)));
    }
    // b reached out; after a second with nothing, the map-server is asked
    // for its relay.
    assert!(w
        .receive(&reply(asked[0].nonce, record_b("192.0.2.11:51820")))
        .is_empty());
    assert!(w
        .wait(agent::engine::RELAY_AFTER)
        .contains(&Effect::ReadPeerStats));
    let asked = requests(&w.stats(&b_stats(0)));
    assert_eq!(asked.len(), 1);
    assert_eq!(w.agent.counters().handshake_fallbacks, 2);
    // Through the relay: a new peer (a handshake at once), with
    // keepalives, and the first packet again.
    let relay = "192.0.2.1:40002";
    assert_eq!(
        w.receive(&reply(asked[0].nonce, record_b_relayed(40002))),
        vec![
            Effect::RemovePeer { public_key: B_KEY },
            peer_b(Some(relay), true),
            Effect::Forward(vec![1]),
        ]
    );
    w.wait(agent::engine::HANDSHAKE_CHECKS[0]);
    assert!(w.stats(&b_seen(relay, 92)).is_empty(), "answered");
    // The direct path is tried, then less often while it fails.
    w.wait(agent::engine::PROBE_FIRST);
    let probe = Effect::ProbeDirect {
        public_key: B_KEY,
        direct: "192.0.2.11:51820".parse().unwrap(),
        relay: relay.parse().unwrap(),
        allowed_ips: vec![net("10.2.0.0/24")],
        keepalive: true,
    };
    assert_eq!(w.stats(&b_seen(relay, 200)), vec![probe.clone()]);
    w.wait(agent::engine::PROBE_FIRST);
    assert!(w.stats(&b_seen(relay, 300)).is_empty(), "not yet again");
    w.wait(agent::engine::PROBE_FIRST);
    assert_eq!(w.stats(&b_seen(relay, 400)), vec![probe]);
    // b's answer came directly: WireGuard moved there, and so does the
    // agent; a refresh offering the relay again leaves it there.
    let direct = "192.0.2.11:51820";
    w.wait(Duration::from_secs(1));
    assert!(w.stats(&b_seen(direct, 500)).is_empty());
    assert_eq!(w.agent.counters().relay_to_direct, 1);
    w.wait(agent::engine::PROBE_FIRST * 8);
    assert!(w.stats(&b_seen(direct, 600)).is_empty(), "no more probes");
    assert_eq!(
        w.agent.status(w.now).peers[0].endpoint,
        Some(direct.parse().unwrap())
    );
}

#[test]
fn a_mapping_marked_not_to_be_sent_to_sets_the_peer_to_answer_only() {
    let mut w = World::new();
    // Pushed: the other side starts the handshake; no reaching out.
    let actions = w.receive(&push(vec![record_b_starts("192.0.2.11:51820")], MS_KEY));
    assert_eq!(actions[0], peer_b(None, false));
    // Answered so (the other side is starting one already): the packets
    // go to WireGuard, which sends them once that handshake is done.
    let mut w = World::new();
    let nonce = requests(&w.packet("10.2.0.9", 1))[0].nonce;
    let actions = w.receive(&reply(nonce, record_b_starts("192.0.2.11:51820")));
    assert_eq!(
        actions,
        vec![
            peer_b(None, false),
            Effect::Forward(vec![1]),
            Effect::AddRoute(net("10.2.0.0/24")),
        ]
    );
    assert!(!w
        .wait(Duration::from_secs(1))
        .contains(&Effect::ReadPeerStats));
}

/// The map-servers that `actions` sent a Map-Request to.
fn asked_at(actions: &[Effect<Vec<u8>>]) -> Vec<IpAddr> {
    actions
        .iter()
        .filter_map(|a| match a {
            Effect::Control { to, message } if message[0] >> 4 == 1 => Some(to.ip()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_map_server_that_does_not_answer_is_skipped_while_another_does() {
    let mut w = World::with(16, &["100.64.0.1", "100.64.0.254"]);
    w.wait(Duration::ZERO);
    assert_eq!(asked_at(&w.packet("10.2.0.9", 1)), [ip("100.64.0.1")]);
    // Unanswered: the retry goes to the other one, and so do new requests.
    assert_eq!(
        asked_at(&w.wait(Duration::from_millis(100))),
        [ip("100.64.0.254")]
    );
    assert_eq!(asked_at(&w.packet("10.3.0.9", 2)), [ip("100.64.0.254")]);
    assert_eq!(asked_at(&w.packet("10.4.0.9", 3)), [ip("100.64.0.254")]);
}

#[test]
fn the_locator_of_the_lowest_priority_is_used() {
    let mut w = World::new();
    let nonce = requests(&w.packet("10.2.0.9", 1))[0].nonce;
    let mut record = record_b("192.0.2.11:51820");
    let at = |endpoint: &str, priority| Locator {
        priority,
        ..Locator::reachable(Address::rloc(endpoint.parse().unwrap()))
    };
    let locators = vec![at("192.0.2.11:51820", 2), at("[2001:db8::11]:51820", 1)];
    record.locators = List::new(locators.leak());
    let actions = w.receive(&reply(nonce, record));
    assert_eq!(actions[0], peer_b(Some("[2001:db8::11]:51820"), false));
}

#[test]
fn a_reply_answers_every_pending_destination_it_covers() {
    let mut w = World::new();
    let nonce = requests(&w.packet("10.2.0.9", 1))[0].nonce;
    requests(&w.packet("10.2.0.10", 2));
    let actions = w.receive(&reply(nonce, record_b("192.0.2.11:51820")));
    let forwarded: Vec<_> = actions
        .iter()
        .filter(|a| matches!(a, Effect::Forward(_)))
        .collect();
    assert_eq!(forwarded.len(), 2);
}

#[test]
fn negative_reply_refuses_the_queue_and_later_packets_until_it_expires() {
    let mut w = World::new();
    let nonce = requests(&w.packet("10.7.0.1", 1))[0].nonce;
    let negative = Record::negative(
        Address::eid(1000, ip("10.7.0.1"), None),
        32,
        1,
        Action::DROP_NO_REASON,
    );
    assert_eq!(
        w.receive(&reply(nonce, negative)),
        vec![Effect::Refuse {
            packet: vec![1],
            why: Refusal::NoMapping
        }]
    );
    assert_eq!(
        w.packet("10.7.0.1", 2),
        vec![Effect::Refuse {
            packet: vec![2],
            why: Refusal::NoMapping
        }]
    );
    w.wait(Duration::from_secs(61));
    assert_eq!(
        requests(&w.packet("10.7.0.1", 3)).len(),
        1,
        "asked again after the TTL"
    );

    let nonce = requests(&w.packet("10.8.0.1", 4))[0].nonce;
    let denied = Record::negative(
        Address::eid(1000, ip("10.8.0.1"), None),
        32,
        1,
        Action::DROP_POLICY_DENIED,
    );
    assert_eq!(
        w.receive(&reply(nonce, denied)),
        vec![Effect::Refuse {
            packet: vec![4],
            why: Refusal::Denied
        }]
    );
}

#[test]
fn unanswered_request_is_retried_with_backoff_then_refused() {
    let mut w = World::new();
    w.wait(Duration::ZERO); // the first Map-Register goes out
    requests(&w.packet("10.2.0.9", 1));
    let mut sent_at = Vec::new();
    let mut refused = Vec::new();
    for ms in 1..=2000 {
        let actions = w.wait(Duration::from_millis(1));
        if !requests(&actions).is_empty() {
            sent_at.push(ms);
        }
        refused.extend(
            actions
                .into_iter()
                .filter(|a| matches!(a, Effect::Refuse { .. })),
        );
    }
    assert_eq!(sent_at, [100, 300, 700]);
    assert_eq!(
        refused,
        vec![Effect::Refuse {
            packet: vec![1],
            why: Refusal::NoMapping
        }]
    );
}

#[test]
fn replies_with_a_nonce_we_did_not_send_are_ignored() {
    let mut w = World::new();
    requests(&w.packet("10.2.0.9", 1));
    assert!(w
        .receive(&reply(12345, record_b("192.0.2.11:51820")))
        .is_empty());
    assert_eq!(w.agent.counters().bad_messages, 1);
    // And nothing from a stranger is taken.
    let mut out = Outbox::default();
    w.agent
        .on_control(w.now, "100.64.0.9:4342".parse().unwrap(), &[0x20], &mut out);
    assert!(out.is_empty());
}

#[test]
fn a_pushed_mapping_installs_the_peer_and_is_acknowledged() {
    let mut w = World::new();
    let actions = w.receive(&push(vec![record_b("192.0.2.11:40000")], MS_KEY));
    assert_eq!(
        actions[0],
        Effect::SetPeer {
            public_key: B_KEY,
            endpoint: Some("192.0.2.11:40000".parse().unwrap()),
            allowed_ips: vec![net("10.2.0.0/24")],
            // Pushed: reach out until it answers (through our NAT).
            keepalive: true,
        }
    );
    assert_eq!(actions[1], Effect::AddRoute(net("10.2.0.0/24")));
    let Effect::Control { to, message } = &actions[2] else {
        panic!("no ack: {actions:?}")
    };
    assert_eq!(*to, ms());
    let verified = auth::verify(message, MS_KEY).unwrap();
    assert_eq!(MapNotify::parse_ack(&verified).unwrap().body.nonce, 99);
    // Signed with another key: ignored.
    assert!(w
        .receive(&push(vec![record_b("192.0.2.11:1")], b"forged"))
        .is_empty());
}

#[test]
fn a_pushed_peer_is_reached_out_to_until_it_answers() {
    let mut w = World::new();
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    let stats = |rx| {
        [PeerStats {
            public_key: B_KEY,
            endpoint: None,
            rx_bytes: rx,
            tx_bytes: 148,
        }]
    };
    let out = w.stats(&stats(0));
    assert!(out.is_empty(), "still waiting: {out:?}");
    let out = w.stats(&stats(92));
    assert_eq!(
        out,
        vec![Effect::SetPeer {
            public_key: B_KEY,
            endpoint: Some("192.0.2.11:51820".parse().unwrap()),
            allowed_ips: vec![net("10.2.0.0/24")],
            keepalive: false,
        }]
    );
}

#[test]
fn a_push_for_a_peer_silent_for_long_starts_a_new_handshake() {
    let mut w = World::new();
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    w.stats(&b_stats(92));
    // Heard lately: pushed again, nothing to do but the ack.
    w.now += Duration::from_secs(10);
    let again = w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    assert!(matches!(again[..], [Effect::Control { .. }]), "{again:?}");
    // Silent since: b may have forgotten this node (restarted).
    w.now += Duration::from_secs(6);
    let again = w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    assert_eq!(
        again[..2],
        [
            Effect::RemovePeer { public_key: B_KEY },
            Effect::SetPeer {
                public_key: B_KEY,
                endpoint: Some("192.0.2.11:51820".parse().unwrap()),
                allowed_ips: vec![net("10.2.0.0/24")],
                keepalive: true,
            }
        ]
    );
}

/// Site b's record as the map-server gives it for a b seen behind a NAT.
fn record_b_behind_nat() -> Record<'static> {
    let mut record = record_b("192.0.2.11:51820");
    let nat = lisp::NatTraversal {
        ms_port: 4342,
        etr_port: 40001,
        global_etr_rloc: Some(ip("203.0.113.5")),
        private_etr_rloc: Some(ip("192.168.1.11")),
        ..lisp::NatTraversal::default()
    };
    let locators = vec![Locator::reachable(Address::NatTraversal(nat))];
    record.locators = List::new(locators.leak());
    record
}

#[test]
fn a_peer_behind_a_nat_gets_keepalives_until_it_goes() {
    let mut w = World::new();
    let nonce = requests(&w.packet("10.2.0.9", 1))[0].nonce;
    let actions = w.receive(&reply(nonce, record_b_behind_nat()));
    let at = Some("203.0.113.5:40001");
    assert_eq!(actions[0], peer_b(at, true));
    let counters = |rx, tx| {
        [PeerStats {
            public_key: B_KEY,
            endpoint: None,
            rx_bytes: rx,
            tx_bytes: tx,
        }]
    };
    // It answered: the keepalives stay on.
    assert!(w.stats(&counters(1000, 1000)).is_empty());
    // Keepalives alone are no use of it: when its mapping expires (15
    // min), the peer goes, and they with it.
    let (mut rx, mut tx) = (1000, 1000);
    let mut removed = false;
    for _ in 0..(16 * 60 / 5) {
        (rx, tx) = (rx + 32, tx + 32);
        let mut actions = w.wait(Duration::from_secs(5));
        actions.extend(w.stats(&counters(rx, tx)));
        removed |= actions.contains(&Effect::RemovePeer { public_key: B_KEY });
        assert!(
            !actions.iter().any(|a| matches!(a, Effect::SetPeer { .. })),
            "{actions:?}"
        );
    }
    assert!(removed, "the idle peer is removed at its expiry");
}

#[test]
fn a_revocation_removes_route_and_peer() {
    let mut w = World::new();
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    let mut revoked = record_b("192.0.2.11:51820");
    revoked.locators = List::empty();
    if let Address::SecurityKey(k) = &mut revoked.eid {
        k.revoked = true;
    }
    let actions = w.receive(&push(vec![revoked], MS_KEY));
    assert_eq!(actions[0], Effect::RemoveRoute(net("10.2.0.0/24")));
    assert_eq!(actions[1], Effect::RemovePeer { public_key: B_KEY });
}

#[test]
fn a_mapping_for_our_own_eids_is_never_installed() {
    let mut w = World::new();
    let mut own = record_b("192.0.2.66:51820");
    own.eid = Address::eid(1000, ip("10.1.0.0"), Some(&[0x66; 32]));
    let actions = w.receive(&push(vec![own], MS_KEY));
    assert!(
        !actions.iter().any(|a| matches!(a, Effect::SetPeer { .. })),
        "{actions:?}"
    );
}

/// The Map-Register among `actions`, checked and parsed.
fn registered(actions: &[Effect<Vec<u8>>]) -> Option<(Vec<u8>, MapRegister<'static>)> {
    actions.iter().find_map(|a| match a {
        Effect::Control { message, .. } if message[0] >> 4 == 3 => {
            let verified = auth::verify(kept(message), MS_KEY).unwrap();
            Some((message.clone(), MapRegister::parse(&verified).unwrap()))
        }
        _ => None,
    })
}

#[test]
fn registers_at_once_retries_until_notified_and_again_on_rloc_change() {
    let mut w = World::new();
    w.rlocs(&["192.0.2.10"]);
    let (_, register) = registered(&w.wait(Duration::ZERO)).expect("registers at start");
    let record = register.body.records.get(0).unwrap();
    assert_eq!(record.eid.wireguard_key(), Some([0xaa; 32]));
    assert_eq!(
        first_endpoint(&record),
        Some("192.0.2.10:51820".parse().unwrap())
    );
    assert!(register.want_map_notify && register.proxy_reply);
    // No Map-Notify: again after 20 ms, then 40 ms (new RLOCs may have
    // no route yet), ...
    assert!(registered(&w.wait(Duration::from_millis(19))).is_none());
    let (_, again) = registered(&w.wait(Duration::from_millis(1))).expect("resent");
    assert!(registered(&w.wait(Duration::from_millis(39))).is_none());
    assert!(registered(&w.wait(Duration::from_millis(1))).is_some());
    // The Map-Notify for the latest one: quiet until the interval.
    let (_, latest) = registered(&w.wait(Duration::from_secs(4))).unwrap();
    assert_ne!(
        latest.body.nonce, again.body.nonce,
        "each try has its nonce"
    );
    let notify = MapNotify {
        body: latest.body.clone(),
    };
    assert!(w.receive(&written(|b| notify.emit(b, MS_KEY))).is_empty());
    // A late Map-Notify for an earlier try answers that try: no push to
    // act on or acknowledge.
    let late = MapNotify {
        body: again.body.clone(),
    };
    let pushes = w.agent.counters().pushes;
    assert!(w.receive(&written(|b| late.emit(b, MS_KEY))).is_empty());
    assert_eq!(w.agent.counters().pushes, pushes);
    assert!(registered(&w.wait(Duration::from_secs(59))).is_none());
    // The RLOC changes: at once.
    w.rlocs(&["198.51.100.4"]);
    let (_, moved) = registered(&w.wait(Duration::ZERO)).expect("re-registers");
    assert_eq!(
        first_endpoint(&moved.body.records.get(0).unwrap()),
        Some("198.51.100.4:51820".parse().unwrap())
    );
}

#[test]
fn expiry_removes_an_idle_peer_and_refreshes_an_active_one() {
    let mut w = World::new();
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    let stats = |rx, tx| {
        [PeerStats {
            public_key: B_KEY,
            endpoint: None,
            rx_bytes: rx,
            tx_bytes: tx,
        }]
    };
    // Active: traffic 10 s before the 15 min TTL runs out.
    w.now += Duration::from_secs(14 * 60 + 50);
    w.stats(&stats(100, 100));
    let actions = w.wait(Duration::from_secs(10));
    assert_eq!(requests(&actions).len(), 1, "refreshed: {actions:?}");
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Effect::RemovePeer { .. })));
    // Then idle: removed when the grace runs out.
    let actions = w.wait(Duration::from_secs(60));
    assert!(
        actions.contains(&Effect::RemoveRoute(net("10.2.0.0/24"))),
        "{actions:?}"
    );
    assert!(actions.contains(&Effect::RemovePeer { public_key: B_KEY }));
}

#[test]
fn a_peer_that_stops_answering_is_resolved_again() {
    let mut w = World::new();
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    for (seconds, tx) in [(5, 100), (10, 200), (15, 300), (20, 400)] {
        w.now += Duration::from_secs(5);
        let out = w.stats(&[PeerStats {
            public_key: B_KEY,
            endpoint: None,
            rx_bytes: 0,
            tx_bytes: tx,
        }]);
        assert_eq!(
            requests(&out).len(),
            usize::from(seconds >= 20),
            "at {seconds} s"
        );
    }
}

#[test]
fn packets_outside_the_overlay_are_ignored() {
    let mut w = World::new();
    assert!(w.packet("ff02::2", 1).is_empty());
    assert!(w.packet("192.168.1.1", 2).is_empty());
    assert_eq!(w.agent.counters().ignored_packets, 2);
    assert_eq!(w.agent.counters().map_requests, 0);
}

#[test]
fn queues_and_cache_stay_within_bounds() {
    let mut w = World::new();
    for n in 0..12 {
        w.packet("10.2.0.9", n);
    }
    assert_eq!(w.agent.counters().dropped_packets, 12 - 8);
    // Many hosts, more destinations than the cache holds.
    for n in 0..40u32 {
        w.packet_from(
            &format!("10.1.0.{}", n + 10),
            &format!("10.3.0.{}", n + 1),
            0,
        );
    }
    assert_eq!(w.agent.counters().map_requests, 16, "one per cache slot");
    assert_eq!(w.agent.counters().dropped_packets, 4 + 40 - 15);
}

/// Map-Requests among the actions, and ICMP refusals.
fn asked_and_refused(actions: &[Effect<Vec<u8>>]) -> (usize, usize) {
    let refused = actions
        .iter()
        .filter(|a| matches!(a, Effect::Refuse { .. }))
        .count();
    (requests(actions).len(), refused)
}

fn negative(eid: &str, len: u8, ttl: u32) -> Record<'static> {
    Record::negative(
        Address::eid(1000, ip(eid), None),
        len,
        ttl,
        Action::DROP_NO_REASON,
    )
}

#[test]
fn a_scanning_host_is_refused_at_once_past_its_pending_bound_and_others_still_resolve() {
    let mut w = World::with_cache(256);
    let mut asked = 0;
    let mut refused = 0;
    for n in 0..20 {
        let (a, r) = asked_and_refused(&w.packet(&format!("10.9.0.{}", n + 1), 0));
        asked += a;
        refused += r;
    }
    assert_eq!(
        (asked, refused),
        (
            agent::engine::PENDING_PER_SOURCE,
            20 - agent::engine::PENDING_PER_SOURCE
        ),
        "pending destinations of one source are bounded; the rest refused without a Map-Request"
    );
    assert_eq!(
        asked_and_refused(&w.packet_from("10.1.0.3", "10.2.0.9", 1)),
        (1, 0),
        "another host resolves"
    );
}

#[test]
fn a_host_over_its_map_request_rate_is_refused_before_the_site_runs_out() {
    let mut w = World::with_cache(256);
    let mut asked = 0;
    for n in 0..200u32 {
        // Each destination answered at once: the pending bound never bites.
        let actions = w.packet(&format!("10.9.{}.{}", n / 250, n % 250 + 1), 0);
        for r in requests(&actions) {
            asked += 1;
            w.receive(&reply(
                r.nonce,
                negative(&format!("10.9.{}.{}", n / 250, n % 250 + 1), 32, 1),
            ));
        }
    }
    assert_eq!(asked, agent::budget::SOURCE_BURST as usize);
    assert!(w.agent.counters().throttled > 0);
    // Another host of the site still gets its Map-Requests out.
    for n in 0..10 {
        let actions = w.packet_from("10.1.0.3", &format!("10.2.0.{}", n + 1), 0);
        assert_eq!(asked_and_refused(&actions), (1, 0), "contact {n}");
    }
    // The scanner's allowance comes back with time.
    w.now += Duration::from_secs(1);
    assert_eq!(asked_and_refused(&w.packet("10.9.9.9", 0)), (1, 0));
}

#[test]
fn the_site_budget_holds_retries_back_until_it_refills() {
    let mut w = World::with_cache(256);
    // Fifty hosts, one destination each: the site's burst.
    for n in 0..50u32 {
        let actions = w.packet_from(
            &format!("10.1.0.{}", n + 10),
            &format!("10.9.0.{}", n + 1),
            0,
        );
        assert_eq!(requests(&actions).len(), 1, "host {n}");
    }
    let over = w.packet_from("10.1.0.200", "10.9.1.1", 9);
    assert_eq!(
        asked_and_refused(&over),
        (0, 1),
        "the site's budget is spent"
    );
    // Retries are due at 100 ms: 20 tokens came back by then (200/s), so
    // 20 retries go out now and the rest wait for theirs, none lost.
    let actions = w.wait(Duration::from_millis(100));
    let retried = requests(&actions).len();
    assert!((19..=21).contains(&retried), "{retried} retries");
    let mut total = retried;
    for _ in 0..300 {
        total += requests(&w.wait(Duration::from_millis(1))).len();
    }
    assert!(total >= 50, "every pending destination retried: {total}");
}

#[test]
fn a_wide_negative_answer_takes_the_pending_destinations_within_it_and_is_evictable() {
    let mut w = World::new();
    let nonce = requests(&w.packet("10.7.0.1", 1))[0].nonce;
    requests(&w.packet("10.7.3.4", 2));
    let actions = w.receive(&reply(nonce, negative("10.4.0.0", 14, 1)));
    assert_eq!(
        asked_and_refused(&actions),
        (0, 2),
        "both answered by 10.4.0.0/14"
    );
    assert_eq!(asked_and_refused(&w.packet("10.6.200.1", 3)), (0, 1));
    assert_eq!(w.agent.status(w.now).negative, 1);
    // A full cache makes room by evicting it.
    for n in 0..16u32 {
        w.packet_from(
            &format!("10.1.0.{}", n + 10),
            &format!("10.9.0.{}", n + 1),
            0,
        );
    }
    let status = w.agent.status(w.now);
    assert_eq!((status.negative, status.pending), (0, 16));
}

#[test]
fn a_pushed_record_without_key_heals_a_negative_entry() {
    let mut w = World::new();
    let nonce = requests(&w.packet("10.7.0.1", 1))[0].nonce;
    w.receive(&reply(nonce, negative("10.4.0.0", 14, 1)));
    // The map-server: 10.4.0.0/14 now holds a registration.
    let mut healed = negative("10.4.0.0", 14, 0);
    healed.action = Action::NO_ACTION;
    healed.authoritative = true;
    let actions = w.receive(&push(vec![healed], MS_KEY));
    assert!(
        actions.iter().all(|a| matches!(a, Effect::Control { .. })),
        "only the ack: {actions:?}"
    );
    assert_eq!(w.agent.status(w.now).negative, 0);
    assert_eq!(
        asked_and_refused(&w.packet("10.7.0.1", 2)),
        (1, 0),
        "resolved normally"
    );
    // A push for a prefix held positively still withdraws it.
    let nonce = requests(&w.packet("10.2.0.9", 3))[0].nonce;
    w.receive(&reply(nonce, record_b("192.0.2.11:51820")));
    let mut revoked = negative("10.2.0.0", 24, 0);
    revoked.action = Action::NO_ACTION;
    assert!(w
        .receive(&push(vec![revoked], MS_KEY))
        .contains(&Effect::RemovePeer { public_key: B_KEY }));
}

fn rehandshakes(actions: &[Effect<Vec<u8>>]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Effect::Rehandshake { map_server } if *map_server == ms().ip()))
        .count()
}

#[test]
fn an_unanswered_map_register_rehandshakes_the_map_server_at_most_every_few_seconds() {
    let mut w = World::new();
    assert_eq!(
        rehandshakes(&w.wait(Duration::ZERO)),
        0,
        "the first Map-Register"
    );
    let mut at = Vec::new();
    for ms in 1..=10_000 {
        if rehandshakes(&w.wait(Duration::from_millis(1))) > 0 {
            at.push(ms);
        }
    }
    assert_eq!(at.first(), Some(&1000), "by the first retry");
    assert!(at.windows(2).all(|p| p[1] - p[0] >= 2000), "{at:?}");
    assert!(at.len() >= 4, "and again while it stays silent: {at:?}");
}

#[test]
fn new_rlocs_right_after_a_map_register_are_registered_without_a_new_handshake() {
    // The node moves in two steps (address gone, new address): each step
    // registers at once; the Map-Register it replaces had no time to be
    // answered, which says nothing of the session (WireGuard roams by itself).
    let mut w = World::new();
    w.wait(Duration::ZERO);
    w.rlocs(&[]);
    let first = w.wait(Duration::from_millis(4));
    w.rlocs(&["192.0.2.10"]);
    let second = w.wait(Duration::from_millis(4));
    assert!(
        registered(&second).is_some(),
        "the new RLOCs are registered"
    );
    assert_eq!(rehandshakes(&first) + rehandshakes(&second), 0);
}

#[test]
fn an_unanswered_map_request_rehandshakes_the_map_server_at_once() {
    let mut w = World::new();
    let (_, register) = registered(&w.wait(Duration::ZERO)).unwrap();
    w.receive(&written(|b| {
        MapNotify {
            body: register.body.clone(),
        }
        .emit(b, MS_KEY)
    }));
    requests(&w.packet("10.2.0.9", 1));
    let actions = w.wait(Duration::from_millis(100));
    assert_eq!(requests(&actions).len(), 1, "retried");
    assert_eq!(rehandshakes(&actions), 1);
    // One request lost while the map-server answers others: no new
    // handshake (a request dropped under load says nothing of the session).
    w.wait(Duration::from_secs(3));
    let lost = requests(&w.packet("10.3.0.1", 2));
    let answered = requests(&w.packet("10.3.0.2", 3));
    w.now += Duration::from_millis(10);
    w.receive(&reply(answered[0].nonce, negative("10.3.0.2", 32, 1)));
    let actions = w.wait(Duration::from_millis(90));
    assert_eq!(requests(&actions).len(), 1, "{} retried", lost[0].nonce);
    assert_eq!(rehandshakes(&actions), 0);
}

#[test]
fn a_map_server_that_answers_again_heals_no_answer_entries_and_registration() {
    let mut w = World::new();
    w.wait(Duration::ZERO); // the first Map-Register, unanswered
    requests(&w.packet("10.2.0.9", 1));
    for _ in 0..2000 {
        w.wait(Duration::from_millis(1));
    }
    // Gave up on 10.2.0.9 ("no answer"), and the map-server is lost.
    assert_eq!(asked_and_refused(&w.packet("10.2.0.9", 2)), (0, 1));
    // Map-Registers are resent with each new handshake, every 2 s at most.
    let mut last = None;
    for _ in 0..5000 {
        if let Some(r) = registered(&w.wait(Duration::from_millis(1))) {
            last = Some(r);
        }
    }
    let (_, register) = last.expect("probing");
    // It answers: registered, and the destination is asked for at once.
    w.receive(&written(|b| {
        MapNotify {
            body: register.body.clone(),
        }
        .emit(b, MS_KEY)
    }));
    assert!(w.agent.status(w.now).map_servers[0].registered.is_some());
    let asked = requests(&w.packet("10.2.0.9", 3));
    assert_eq!(asked.len(), 1, "asked for at once");
    w.receive(&reply(asked[0].nonce, record_b("192.0.2.11:51820")));
    // A Map-Reply heals too: lost again, then answered by a reply.
    w.now += Duration::from_secs(60);
    let actions = w.wait(Duration::ZERO);
    assert!(registered(&actions).is_some(), "the periodic Map-Register");
    let nonce = requests(&w.packet("10.3.0.77", 4))[0].nonce;
    let actions = w.wait(Duration::from_millis(1000));
    assert!(rehandshakes(&actions) > 0, "lost again: {actions:?}");
    w.receive(&reply(nonce, record_b("192.0.2.11:51820")));
    // Registration is retried at once, then from 1 s.
    let (_, first) = registered(&w.wait(Duration::ZERO)).expect("re-registers at once");
    assert!(registered(&w.wait(Duration::from_millis(999))).is_none());
    let (_, second) = registered(&w.wait(Duration::from_millis(1))).expect("1 s later");
    assert_ne!(first.body.nonce, second.body.nonce);
}

#[test]
fn the_answer_for_a_dead_peer_starts_a_new_handshake_as_a_first_contact_would() {
    let mut w = World::new();
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    let mut asked = Vec::new();
    for tx in [100, 200, 300, 400] {
        w.now += Duration::from_secs(5);
        asked = requests(&w.stats(&[PeerStats {
            tx_bytes: tx,
            ..b_stats(0)[0]
        }]));
    }
    assert_eq!(
        w.receive(&reply(asked[0].nonce, record_b("192.0.2.11:51820"))),
        vec![
            Effect::RemovePeer { public_key: B_KEY },
            // Pushed and never heard: still reaching out.
            peer_b(Some("192.0.2.11:51820"), true),
        ]
    );
    // Checked, and started again, as a first contact is.
    w.wait(agent::engine::HANDSHAKE_CHECKS[0]);
    assert!(w
        .stats(&b_stats(0))
        .contains(&Effect::RemovePeer { public_key: B_KEY }));
}

#[test]
fn a_peer_that_never_answers_is_resolved_again_less_and_less_often() {
    let mut w = World::new();
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    let mut tx = 0;
    let mut asked_at = Vec::new();
    for second in (5..=1500).step_by(5) {
        w.now += Duration::from_secs(5);
        tx += 100;
        let stats = [PeerStats {
            public_key: B_KEY,
            endpoint: None,
            rx_bytes: 0,
            tx_bytes: tx,
        }];
        let out = w.stats(&stats);
        if !requests(&out).is_empty() {
            asked_at.push(second);
        }
    }
    assert_eq!(asked_at[..5], [20, 40, 80, 160, 320], "{asked_at:?}");
    let gaps: Vec<u64> = asked_at.windows(2).map(|p| p[1] - p[0]).collect();
    assert!(gaps.iter().all(|g| *g <= 600), "capped at 10 min: {gaps:?}");
    assert_eq!(gaps.last(), Some(&600));
    // Heard: back to 20 s.
    w.now += Duration::from_secs(5);
    let heard = [PeerStats {
        public_key: B_KEY,
        endpoint: None,
        rx_bytes: 1,
        tx_bytes: tx + 1,
    }];
    w.stats(&heard);
    let mut next = None;
    for second in (5..=60).step_by(5) {
        w.now += Duration::from_secs(5);
        tx += 100;
        let stats = [PeerStats {
            public_key: B_KEY,
            endpoint: None,
            rx_bytes: 1,
            tx_bytes: tx + 1,
        }];
        let out = w.stats(&stats);
        if next.is_none() && !requests(&out).is_empty() {
            next = Some(second);
        }
    }
    assert_eq!(next, Some(20));
}

#[test]
fn replies_while_registration_goes_unanswered_do_not_resend_the_map_register_each_time() {
    let mut w = World::with_cache(256);
    w.wait(Duration::ZERO); // the first Map-Register, never answered
    w.wait(Duration::from_secs(1)); // its retry: the map-server is lost
    let mut registers = 0;
    for n in 0..100u32 {
        let to = format!("10.9.0.{}", n + 1);
        let from = format!("10.1.0.{}", n + 10);
        let actions = w.packet_from(&from, &to, 0);
        let nonce = requests(&actions)[0].nonce;
        w.receive(&reply(nonce, negative(&to, 32, 1)));
        registers += usize::from(registered(&w.wait(Duration::from_millis(5))).is_some());
    }
    // 0.5 s: the one resent when the map-server answered again, then none
    // until its retry 1 s later.
    assert_eq!(registers, 1);
}

#[test]
fn the_peers_counters_are_asked_for_every_few_seconds_while_there_are_peers() {
    let mut w = World::new();
    let asks = |done: &Done| done.iter().filter(|e| **e == Effect::ReadPeerStats).count();
    assert_eq!(asks(&w.wait(agent::engine::STATS_EVERY)), 0, "no peer yet");
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    let mut asked_at = Vec::new();
    for second in 1..=15 {
        if asks(&w.wait(Duration::from_secs(1))) > 0 {
            asked_at.push(second);
        }
    }
    assert_eq!(asked_at, [5, 10, 15]);
    assert!(w.agent.poll_at() <= w.now + agent::engine::STATS_EVERY);
}

#[test]
fn new_rlocs_set_every_peer_and_map_server_again() {
    let mut w = World::new();
    w.rlocs(&["192.0.2.10"]);
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    let done = w.rlocs(&["198.51.100.4"]);
    assert!(
        done.contains(&Effect::SetMapServer {
            map_server: ms().ip()
        }),
        "{done:?}"
    );
    assert!(
        done.iter().any(|e| matches!(
            e,
            Effect::SetPeer { public_key, endpoint, .. }
                if *public_key == B_KEY && *endpoint == Some("192.0.2.11:51820".parse().unwrap())
        )),
        "{done:?}"
    );
    assert!(
        w.rlocs(&["198.51.100.4"]).is_empty(),
        "the same set: nothing"
    );
}

#[test]
fn an_unreadable_packet_is_counted_as_dropped() {
    let mut w = World::new();
    w.agent.on_malformed_packet();
    assert_eq!(w.agent.counters().dropped_packets, 1);
}

#[test]
fn the_same_seed_gives_the_same_nonces() {
    let (mut one, mut two) = (World::new(), World::new());
    let asked = |w: &mut World| requests(&w.packet("10.2.0.9", 1))[0].nonce;
    assert_eq!(asked(&mut one), asked(&mut two));
}

/// The endpoint of a record's first locator.
fn first_endpoint(record: &lisp::Record) -> Option<SocketAddr> {
    record.locators.get(0)?.rloc.endpoint()
}

#[test]
fn first_contact_time_runs_from_the_miss_to_the_peer_and_refusals_count_by_reason() {
    use agent::metrics::Refused;
    let mut w = World::new();
    let nonce = requests(&w.packet("10.2.0.9", 1))[0].nonce;
    w.now += Duration::from_millis(3);
    w.packet("10.2.0.9", 2); // queued: the contact started with the first
    w.receive(&reply(nonce, record_b("192.0.2.11:51820")));
    let c = *w.agent.counters();
    assert_eq!(c.first_contact.count(), 1);
    assert_eq!(c.first_contact.at_most(Duration::from_micros(2500)), 0);
    assert_eq!(c.first_contact.at_most(Duration::from_millis(5)), 1);
    assert_eq!(c.refused, [0; Refused::ALL.len()]);

    // A negative answer, a denial, and no answer at all.
    let nonce = requests(&w.packet("10.7.0.1", 3))[0].nonce;
    let negative = |eid, action| Record::negative(Address::eid(1000, ip(eid), None), 32, 1, action);
    w.receive(&reply(nonce, negative("10.7.0.1", Action::DROP_NO_REASON)));
    w.packet("10.7.0.1", 4);
    let nonce = requests(&w.packet("10.8.0.1", 5))[0].nonce;
    w.receive(&reply(
        nonce,
        negative("10.8.0.1", Action::DROP_POLICY_DENIED),
    ));
    requests(&w.packet("10.9.0.1", 6));
    for _ in 0..16 {
        w.wait(Duration::from_millis(100));
    }
    w.packet("10.9.0.1", 7);
    let c = *w.agent.counters();
    assert_eq!(c.refused[Refused::NoMapping as usize], 2);
    assert_eq!(c.refused[Refused::Denied as usize], 1);
    assert_eq!(c.refused[Refused::NoAnswer as usize], 2);
    assert_eq!(c.refused_packets, 5);
    assert_eq!(c.first_contact.count(), 1, "refusals are no first contact");
}

/// The answers to lookups among `actions`: (id, reply bytes).
fn looked_up(actions: &[Effect<Vec<u8>>]) -> Vec<(u64, Option<Vec<u8>>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Effect::LookedUp { lookup, reply, .. } => Some((*lookup, reply.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lookup_asks_without_the_n_bit_and_installs_nothing() {
    let mut w = World::new();
    let mut out = Outbox::default();
    let id = w.agent.lookup(w.now, ip("10.2.0.9"), &mut out).unwrap();
    let asked = requests(&owned(&out));
    assert_eq!(asked.len(), 1);
    let record = asked[0].records.get(0).unwrap();
    assert_eq!((record.eid_mask_len, record.notify), (32, false));
    assert_eq!(asked[0].nonce, id);

    let answer = reply(id, record_b("192.0.2.11:51820"));
    let actions = w.receive(&answer);
    assert_eq!(looked_up(&actions), [(id, Some(answer.clone()))]);
    assert_eq!(actions.len(), 1, "nothing but the answer: {actions:?}");
    let status = w.agent.status(w.now);
    assert!(status.peers.is_empty());
    assert_eq!((status.cached, status.pending, status.negative), (0, 0, 0));
    assert_eq!(w.agent.counters().map_replies, 1);
    assert!(looked_up(&w.receive(&answer)).is_empty(), "answered once");
}

#[test]
fn an_unanswered_lookup_is_retried_then_answered_with_none() {
    let mut w = World::new();
    w.wait(Duration::ZERO); // the first Map-Register goes out
    let mut out = Outbox::default();
    let id = w.agent.lookup(w.now, ip("10.2.0.9"), &mut out).unwrap();
    let mut sent = requests(&owned(&out)).len();
    let mut answers = Vec::new();
    for _ in 0..2000 {
        let actions = w.wait(Duration::from_millis(1));
        sent += requests(&actions).len();
        answers.extend(looked_up(&actions));
    }
    assert_eq!(sent, 4, "as a resolution is retried");
    assert_eq!(answers, [(id, None)]);
    assert_eq!(w.agent.status(w.now).pending, 0);
}

#[test]
fn lookups_at_once_are_bounded() {
    let mut w = World::new();
    let mut out = Outbox::default();
    for n in 0..agent::engine::LOOKUPS_MAX {
        let eid = ip(&format!("10.2.0.{}", n + 1));
        assert!(w.agent.lookup(w.now, eid, &mut out).is_some());
    }
    assert_eq!(w.agent.lookup(w.now, ip("10.2.0.99"), &mut out), None);
}
