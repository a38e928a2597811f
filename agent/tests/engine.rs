//! The agent's decisions, driven without a network and with a made-up
//! clock; the map-server's side is played with the codec.

use agent::engine::{Action, Agent, MapServerSettings, PeerStats, Refusal, Settings};
use ipnet::IpNet;
use lisp::{
    auth, Action as Act, Address, Algorithm, Locator, MapNotify, MapRegister, MapReply, MapRequest,
    Message, Record, Registration,
};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const MS_KEY: &[u8] = b"site key";
const B_KEY: [u8; 32] = [0xbb; 32];

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
        let now = Instant::now();
        let settings = Settings {
            iid: 1000,
            eids: vec!["[1000] 10.1.0.0/24".parse().unwrap()],
            control: ip("100.64.0.2"),
            overlay: vec![net("10.0.0.0/8")],
            public_key: [0xaa; 32],
            listen_port: 51820,
            register_interval: Duration::from_secs(60),
            record_ttl: 15,
            map_servers: vec![MapServerSettings {
                control: ip("100.64.0.1"),
                key: MS_KEY.to_vec(),
            }],
            cache_capacity: 16,
        };
        World {
            agent: Agent::new(settings, now),
            now,
        }
    }

    fn packet(&mut self, to: &str, tag: u8) -> Vec<Action> {
        let mut out = Vec::new();
        self.agent.on_packet(self.now, ip(to), vec![tag], &mut out);
        out
    }

    fn receive(&mut self, msg: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        self.agent.on_control(self.now, ms(), msg, &mut out);
        out
    }

    fn wait(&mut self, d: Duration) -> Vec<Action> {
        self.now += d;
        let mut out = Vec::new();
        self.agent.poll(self.now, &mut out);
        out
    }
}

/// The Map-Requests among `actions`, parsed.
fn requests(actions: &[Action]) -> Vec<MapRequest> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Control { to, message } if *to == ms() => match Message::parse(message) {
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
fn record_b(endpoint: &str) -> Record {
    let mut record = Record::negative(
        Address::eid(1000, ip("10.2.0.0"), Some(&B_KEY)),
        24,
        15,
        Act::NO_ACTION,
    );
    record
        .locators
        .push(Locator::reachable(Address::rloc(endpoint.parse().unwrap())))
        .unwrap();
    record
}

fn reply(nonce: u64, record: Record) -> Vec<u8> {
    let mut reply = MapReply {
        nonce,
        ..MapReply::default()
    };
    reply.records.push(record).unwrap();
    written(|b| reply.write(b))
}

fn push(records: Vec<Record>, key: &[u8]) -> Vec<u8> {
    let notify = MapNotify {
        body: Registration {
            nonce: 99,
            key_id: 0,
            algorithm: Algorithm::HmacSha256_128,
            records: heapless::Vec::from_slice(&records).unwrap(),
            xtr: None,
        },
    };
    written(|b| notify.write(b, key))
}

#[test]
fn cold_miss_queues_packets_asks_once_then_installs_and_sends_them() {
    let mut w = World::new();
    let first = w.packet("10.2.0.9", 1);
    let asked = requests(&first);
    assert_eq!(asked.len(), 1);
    let record = &asked[0].records[0];
    assert_eq!(
        (record.eid_mask_len, record.eid.instance_id(), record.notify),
        (32, 1000, true)
    );
    assert_eq!(record.eid.ip(), Some(ip("10.2.0.9")));
    assert_eq!(asked[0].itr_rlocs[0], Address::Ip(ip("100.64.0.2")));
    assert!(
        w.packet("10.2.0.9", 2).is_empty(),
        "queued, no second request"
    );

    let actions = w.receive(&reply(asked[0].nonce, record_b("192.0.2.11:51820")));
    assert_eq!(
        actions,
        vec![
            Action::SetPeer {
                public_key: B_KEY,
                endpoint: "192.0.2.11:51820".parse().unwrap(),
                allowed_ips: vec![net("10.2.0.0/24")],
                keepalive: false,
            },
            Action::AddRoute(net("10.2.0.0/24")),
            Action::Forward(vec![1]),
            Action::Forward(vec![2]),
        ]
    );
}

#[test]
fn a_reply_answers_every_pending_destination_it_covers() {
    let mut w = World::new();
    let nonce = requests(&w.packet("10.2.0.9", 1))[0].nonce;
    requests(&w.packet("10.2.0.10", 2));
    let actions = w.receive(&reply(nonce, record_b("192.0.2.11:51820")));
    let forwarded: Vec<_> = actions
        .iter()
        .filter(|a| matches!(a, Action::Forward(_)))
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
        Act::DROP_NO_REASON,
    );
    assert_eq!(
        w.receive(&reply(nonce, negative)),
        vec![Action::Refuse {
            packet: vec![1],
            why: Refusal::NoMapping
        }]
    );
    assert_eq!(
        w.packet("10.7.0.1", 2),
        vec![Action::Refuse {
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
        Act::DROP_POLICY_DENIED,
    );
    assert_eq!(
        w.receive(&reply(nonce, denied)),
        vec![Action::Refuse {
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
                .filter(|a| matches!(a, Action::Refuse { .. })),
        );
    }
    assert_eq!(sent_at, [100, 300, 700]);
    assert_eq!(
        refused,
        vec![Action::Refuse {
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
    assert_eq!(w.agent.counters.bad_messages, 1);
    // And nothing from a stranger is taken.
    let mut out = Vec::new();
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
        Action::SetPeer {
            public_key: B_KEY,
            endpoint: "192.0.2.11:40000".parse().unwrap(),
            allowed_ips: vec![net("10.2.0.0/24")],
            // Pushed: reach out until it answers (through our NAT).
            keepalive: true,
        }
    );
    assert_eq!(actions[1], Action::AddRoute(net("10.2.0.0/24")));
    let Action::Control { to, message } = &actions[2] else {
        panic!("no ack: {actions:?}")
    };
    assert_eq!(*to, ms());
    auth::verify(message, MS_KEY).unwrap();
    assert_eq!(MapNotify::parse_ack(message).unwrap().body.nonce, 99);
    // Signed with another key: ignored.
    assert!(w
        .receive(&push(vec![record_b("192.0.2.11:1")], b"forged"))
        .is_empty());
}

#[test]
fn a_pushed_peer_is_reached_out_to_until_it_answers() {
    let mut w = World::new();
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    let mut out = Vec::new();
    let stats = |rx| {
        [PeerStats {
            public_key: B_KEY,
            rx_bytes: rx,
            tx_bytes: 148,
        }]
    };
    w.agent.on_peer_stats(w.now, &stats(0), &mut out);
    assert!(out.is_empty(), "still waiting: {out:?}");
    w.agent.on_peer_stats(w.now, &stats(92), &mut out);
    assert_eq!(
        out,
        vec![Action::SetPeer {
            public_key: B_KEY,
            endpoint: "192.0.2.11:51820".parse().unwrap(),
            allowed_ips: vec![net("10.2.0.0/24")],
            keepalive: false,
        }]
    );
}

#[test]
fn a_revocation_removes_route_and_peer() {
    let mut w = World::new();
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    let mut revoked = record_b("192.0.2.11:51820");
    revoked.locators.clear();
    if let Address::SecurityKey(k) = &mut revoked.eid {
        k.revoked = true;
    }
    let actions = w.receive(&push(vec![revoked], MS_KEY));
    assert_eq!(actions[0], Action::RemoveRoute(net("10.2.0.0/24")));
    assert_eq!(actions[1], Action::RemovePeer { public_key: B_KEY });
}

#[test]
fn a_mapping_for_our_own_eids_is_never_installed() {
    let mut w = World::new();
    let mut own = record_b("192.0.2.66:51820");
    own.eid = Address::eid(1000, ip("10.1.0.0"), Some(&[0x66; 32]));
    let actions = w.receive(&push(vec![own], MS_KEY));
    assert!(
        !actions.iter().any(|a| matches!(a, Action::SetPeer { .. })),
        "{actions:?}"
    );
}

/// The Map-Register among `actions`, checked and parsed.
fn registered(actions: &[Action]) -> Option<(Vec<u8>, MapRegister)> {
    actions.iter().find_map(|a| match a {
        Action::Control { message, .. } if message[0] >> 4 == 3 => {
            auth::verify(message, MS_KEY).unwrap();
            Some((message.clone(), MapRegister::parse(message).unwrap()))
        }
        _ => None,
    })
}

#[test]
fn registers_at_once_retries_until_notified_and_again_on_rloc_change() {
    let mut w = World::new();
    w.agent.set_rlocs(w.now, vec![ip("192.0.2.10")]);
    let (_, register) = registered(&w.wait(Duration::ZERO)).expect("registers at start");
    let record = &register.body.records[0];
    assert_eq!(record.eid.wireguard_key(), Some([0xaa; 32]));
    assert_eq!(
        record.locators[0].rloc.endpoint(),
        Some("192.0.2.10:51820".parse().unwrap())
    );
    assert!(register.want_map_notify && register.proxy_reply);
    // No Map-Notify: again after 1 s, then 2 s.
    assert!(registered(&w.wait(Duration::from_millis(999))).is_none());
    let (_, again) = registered(&w.wait(Duration::from_millis(1))).expect("resent");
    assert!(registered(&w.wait(Duration::from_millis(1999))).is_none());
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
    assert!(w.receive(&written(|b| notify.write(b, MS_KEY))).is_empty());
    assert!(registered(&w.wait(Duration::from_secs(59))).is_none());
    // The RLOC changes: at once.
    w.agent.set_rlocs(w.now, vec![ip("198.51.100.4")]);
    let (_, moved) = registered(&w.wait(Duration::ZERO)).expect("re-registers");
    assert_eq!(
        moved.body.records[0].locators[0].rloc.endpoint(),
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
            rx_bytes: rx,
            tx_bytes: tx,
        }]
    };
    // Active: traffic 10 s before the 15 min TTL runs out.
    w.now += Duration::from_secs(14 * 60 + 50);
    let mut out = Vec::new();
    w.agent.on_peer_stats(w.now, &stats(100, 100), &mut out);
    let actions = w.wait(Duration::from_secs(10));
    assert_eq!(requests(&actions).len(), 1, "refreshed: {actions:?}");
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::RemovePeer { .. })));
    // Then idle: removed when the grace runs out.
    let actions = w.wait(Duration::from_secs(60));
    assert!(
        actions.contains(&Action::RemoveRoute(net("10.2.0.0/24"))),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::RemovePeer { public_key: B_KEY }));
}

#[test]
fn a_peer_that_stops_answering_is_resolved_again() {
    let mut w = World::new();
    w.receive(&push(vec![record_b("192.0.2.11:51820")], MS_KEY));
    let mut out = Vec::new();
    for (seconds, tx) in [(5, 100), (10, 200), (15, 300), (20, 400)] {
        w.now += Duration::from_secs(5);
        out.clear();
        w.agent.on_peer_stats(
            w.now,
            &[PeerStats {
                public_key: B_KEY,
                rx_bytes: 0,
                tx_bytes: tx,
            }],
            &mut out,
        );
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
    assert_eq!(w.agent.counters.ignored_packets, 2);
    assert_eq!(w.agent.counters.map_requests, 0);
}

#[test]
fn queues_and_cache_stay_within_bounds() {
    let mut w = World::new();
    for n in 0..12 {
        w.packet("10.2.0.9", n);
    }
    assert_eq!(w.agent.counters.dropped_packets, 12 - 8);
    // A scan: more destinations than the cache holds.
    for n in 0..40u32 {
        w.packet(&format!("10.3.{}.{}", n / 200, n % 200 + 1), 0);
    }
    assert_eq!(w.agent.counters.map_requests, 16, "one per cache slot");
    assert_eq!(w.agent.counters.dropped_packets, 4 + 40 - 15);
}
