//! The map-server's decisions, driven without a network and with a
//! made-up clock: each test reads like the scenario it checks.

mod common;

use common::{config, request, request_with, TestSite, A, B, C, D};
use lisp::{auth, Action, Address, EidPrefix, MapNotify, MapReply, Message};
use mapserver::change::Change;
use mapserver::config::StaticMapping;
use mapserver::db::Mapping;
use mapserver::engine::{MapServer, Saved};
use mapserver::metrics::{DropReason, Metrics};
use mapserver::outbox::{Outbox, OutboxExt};
use mapserver::relay::{Relay, RelayConfig};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NET: u8 = 0;

/// The engine's nonces, the same every run.
fn nonces() -> fastrand::Rng {
    fastrand::Rng::with_seed(9)
}
const NO_LIMIT: &str = "rate_limit = 0";

struct World {
    server: MapServer,
    metrics: Arc<Metrics>,
    now: Instant,
    out: Outbox,
    /// What the engine reported for the store, in order.
    changes: Vec<Change>,
}

impl World {
    fn new(sites: &[&TestSite], lisp: &str) -> World {
        World::with(&config(NET, sites, lisp))
    }

    fn with(config: &mapserver::config::Config) -> World {
        let metrics = Arc::new(Metrics::default());
        let now = Instant::now();
        let server = MapServer::new(config, metrics.clone(), now, nonces());
        World {
            server,
            metrics,
            now,
            out: Outbox::default(),
            changes: Vec::new(),
        }
    }

    /// Delivers `msg` from `site`'s control address; returns what the
    /// map-server sent, to whom.
    fn from(&mut self, site: &TestSite, msg: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
        let from = SocketAddr::new(site.control_address(NET), 40000);
        self.server.handle(self.now, from, msg, &mut self.out);
        self.drain()
    }

    fn drain(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        let sent = self
            .out
            .datagrams()
            .map(|(to, b)| (to, b.to_vec()))
            .collect();
        self.changes.extend(self.out.changes().cloned());
        self.out.clear();
        sent
    }

    /// Lets `after` pass and runs the timers.
    fn wait(&mut self, after: Duration) -> Vec<(SocketAddr, Vec<u8>)> {
        self.now += after;
        self.server.poll(self.now, &mut self.out);
        self.drain()
    }

    /// Has every site that `sent` pushed to acknowledge; returns what the
    /// map-server sent then (the replies that waited for the acks).
    fn ack_pushes(
        &mut self,
        sent: &[(SocketAddr, Vec<u8>)],
        sites: &[&TestSite],
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut released = Vec::new();
        for site in sites {
            for (_, push) in sent
                .iter()
                .filter(|(to, _)| *to == site.control_socket(NET))
            {
                released.extend(self.from(site, &site.ack(push)));
            }
        }
        released
    }

    /// Registers `site`'s first EID prefix at `rloc`.
    fn register(&mut self, site: &TestSite, rloc: &str) {
        let msg = site.register(1, &first_eid(site), rloc.parse().unwrap());
        let sent = self.from(site, &msg);
        assert_eq!(sent.len(), 1, "{} registered", site.name);
    }
}

fn first_eid(site: &TestSite) -> String {
    site.eids[0].replace(".0.0/16", ".0.0/24")
}

/// The Map-Reply among `sent` (to the requester's source port).
fn reply(sent: &[(SocketAddr, Vec<u8>)]) -> MapReply<'_> {
    let replies: Vec<MapReply> = sent
        .iter()
        .filter_map(|(_, bytes)| match Message::parse(bytes).unwrap() {
            Message::MapReply(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1, "one Map-Reply");
    replies.into_iter().next().unwrap()
}

/// The one datagram among `sent` pushed to `site`'s control port.
fn pushed_to(site: &TestSite, sent: &[(SocketAddr, Vec<u8>)]) -> Vec<u8> {
    let pushed: Vec<_> = sent
        .iter()
        .filter(|(to, _)| *to == site.control_socket(NET))
        .collect();
    assert_eq!(pushed.len(), 1, "one push to {}", site.name);
    pushed[0].1.clone()
}

fn notify(site: &TestSite, bytes: &[u8]) -> MapNotify<'static> {
    // Kept for the test's run: what it parses to borrows from it.
    let bytes: &'static [u8] = bytes.to_vec().leak();
    let verified = auth::verify(bytes, site.key).expect("signed with the site's key");
    MapNotify::parse(&verified).unwrap()
}

#[test]
fn map_register_with_m_bit_is_answered_by_a_signed_map_notify() {
    let mut w = World::new(&[&A], NO_LIMIT);
    let msg = A.register(
        77,
        "[1000] 10.1.0.0/24",
        "192.0.2.10:51820".parse().unwrap(),
    );
    let sent = w.from(&A, &msg);
    assert_eq!(sent.len(), 1);
    let (to, bytes) = &sent[0];
    assert_eq!(to.ip(), A.control_address(NET));
    let n = notify(&A, bytes);
    assert_eq!(n.body.nonce, 77);
    assert_eq!(n.body.records.len(), 1);
    assert_eq!(w.metrics.registrations.load(Relaxed), 1);
}

#[test]
fn bad_registrations_are_dropped_by_reason_and_store_nothing() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    let rloc: SocketAddr = "192.0.2.10:51820".parse().unwrap();
    let cases: [(Vec<u8>, DropReason); 4] = [
        (
            A.register_with(1, "[1000] 10.1.0.0/24", rloc, b"wrong key", A.public_key),
            DropReason::AuthFailed,
        ),
        (
            A.register(2, "[1000] 10.2.0.0/24", rloc),
            DropReason::OutsidePrefix,
        ),
        (
            A.register(3, "[2] 10.1.0.0/24", rloc),
            DropReason::OutsidePrefix,
        ),
        (
            A.register_with(4, "[1000] 10.1.0.0/24", rloc, A.key, B.public_key),
            DropReason::KeyMismatch,
        ),
    ];
    for (msg, reason) in cases {
        let before = w.metrics.drops(reason);
        assert!(w.from(&A, &msg).is_empty(), "{reason:?}: no answer");
        assert_eq!(w.metrics.drops(reason), before + 1, "{reason:?} counted");
    }
    assert_eq!(w.metrics.drops(DropReason::AuthFailed), 1);
    assert_eq!(w.metrics.drops(DropReason::OutsidePrefix), 2);
    assert_eq!(w.metrics.drops(DropReason::KeyMismatch), 1);
    assert_eq!(w.metrics.registrations.load(Relaxed), 0);
    // Garbage and strangers.
    assert!(w.from(&A, &[0x30, 1, 2]).is_empty());
    let stranger = TestSite {
        control_address: "127.0.0.99",
        ..A
    };
    assert!(w
        .from(&stranger, &A.register(5, "[1000] 10.1.0.0/24", rloc))
        .is_empty());
    assert_eq!(w.metrics.drops(DropReason::UnknownSource), 1);
}

#[test]
fn a_site_cannot_take_over_another_sites_prefix() {
    // e may register within 10.2.0.0/16 too (an operator's overlap:
    // check-config refuses it in a file, the engine holds anyway).
    let e = TestSite {
        name: "e",
        control_address: "127.0.0.6",
        eids: &["[1000] 10.5.0.0/16"],
        public_key: [0xee; 32],
        ..B
    };
    let mut overlap = config(NET, &[&B, &e], NO_LIMIT);
    overlap.sites[1].eids = overlap.sites[0].eids.clone();
    let mut w = World::with(&overlap);
    w.register(&B, "192.0.2.11:51820");
    let msg = e.register(1, "[1000] 10.2.0.0/24", "192.0.2.66:51820".parse().unwrap());
    assert!(w.from(&e, &msg).is_empty());
    assert_eq!(w.metrics.drops(DropReason::OwnedByOther), 1);
    let (owner, _) = w
        .server
        .lookup(&"[1000] 10.2.0.9/32".parse().unwrap())
        .unwrap();
    assert_eq!(owner.as_deref(), Some("b"));
}

#[test]
fn request_hit_replies_to_the_requester_and_pushes_it_to_the_destination() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:40000");
    let sent = w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    assert_eq!(sent.len(), 1, "the push first; the reply waits for its ack");
    let released = w.ack_pushes(&sent, &[&B]);

    let r = reply(&released);
    assert_eq!(r.nonce, 5);
    let record = &r.records.get(0).unwrap();
    assert_eq!(record.eid_mask_len, 24);
    assert_eq!(record.eid.instance_id(), 1000);
    assert_eq!(record.eid.wireguard_key(), Some(B.public_key));
    assert_eq!(
        first_endpoint(record),
        Some("192.0.2.11:40000".parse().unwrap())
    );

    let pushed = notify(&B, &pushed_to(&B, &sent));
    let record = &pushed.body.records.get(0).unwrap();
    assert_eq!(record.eid.wireguard_key(), Some(A.public_key));
    assert_eq!(
        first_endpoint(record),
        Some("192.0.2.10:51820".parse().unwrap())
    );
}

impl World {
    /// Has the map-server see `site`'s WireGuard endpoint at `endpoint`.
    fn observe(&mut self, site: &TestSite, endpoint: &str) {
        self.server.observed_endpoint(
            &site.public_key,
            Some(endpoint.parse().unwrap()),
            &mut Outbox::default(),
        );
    }
}

/// The priorities of the first record's locators in the Map-Reply among
/// `sent`.
fn reply_priorities(sent: &[(SocketAddr, Vec<u8>)]) -> Vec<u8> {
    let r = reply(sent);
    let record = r.records.get(0).unwrap();
    record.locators.iter().map(|l| l.priority).collect()
}

/// The same in what `sent` pushed to `site`.
fn pushed_priorities(site: &TestSite, sent: &[(SocketAddr, Vec<u8>)]) -> Vec<u8> {
    let record = pushed_record(site, sent);
    record.locators.iter().map(|l| l.priority).collect()
}

#[test]
fn a_first_contact_is_answered_at_once_when_the_destination_can_be_reached() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:40000");
    // The map-server sees b where it registered: no NAT in front of it.
    w.observe(&B, "192.0.2.11:40000");
    let sent = w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    assert_eq!(sent.len(), 2, "the push and the reply, nothing held");
    assert_eq!(sent[0].0, B.control_socket(NET), "the push first");
    // b learns a's key, and answers a's handshake rather than start one.
    let record = pushed_record(&B, &sent);
    assert_eq!(record.eid.wireguard_key(), Some(A.public_key));
    assert_eq!(
        first_endpoint(&record),
        Some("192.0.2.10:51820".parse().unwrap())
    );
    assert_eq!(pushed_priorities(&B, &sent), [lisp::UNUSABLE_PRIORITY]);
    // a may send to b at once.
    assert_eq!(reply_priorities(&sent), [1]);
    assert_eq!(w.metrics.held_replies.load(Relaxed), 0);
}

#[test]
fn the_reply_waits_for_a_destination_behind_a_nat_or_a_requester_asking_again() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.168.1.11:51820");
    // Behind a NAT: b must reach out first, or a's handshake is not let in.
    w.observe(&B, "203.0.113.5:40001");
    let sent = w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    assert_eq!(sent.len(), 1, "the push; the reply waits for its ack");
    assert_eq!(pushed_priorities(&B, &sent), [1], "b sends");
    w.ack_pushes(&sent, &[&B]);

    // Seen where it registered: answered at once; but a asking again soon
    // after (its handshake never completed) gets the held reply.
    w.observe(&B, "192.168.1.11:51820");
    let sent = w.from(&A, &request(6, "[1000] 10.2.0.9/32"));
    assert_eq!(sent.len(), 2, "at once");
    w.ack_pushes(&sent, &[&B]);
    w.now += Duration::from_millis(40);
    let sent = w.from(&A, &request(7, "[1000] 10.2.0.9/32"));
    assert_eq!(sent.len(), 1, "held");
    assert_eq!(pushed_priorities(&B, &sent), [1], "b reaches out");
    assert_eq!(reply_priorities(&w.ack_pushes(&sent, &[&B])), [1]);
    assert_eq!(w.metrics.held_replies.load(Relaxed), 2);
    // Later on, a request is a first contact again.
    w.now += Duration::from_secs(1);
    assert_eq!(w.from(&A, &request(8, "[1000] 10.2.0.9/32")).len(), 2);
}

#[test]
fn a_map_request_sent_again_with_its_nonce_is_answered_as_before() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    w.observe(&B, "192.0.2.11:51820");
    let sent = w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    assert_eq!(sent.len(), 2, "a starts");
    w.ack_pushes(&sent, &[&B]);
    // Its reply was slow: a sends the same Map-Request again. b is not
    // told to reach out, which would cross the handshake a starts.
    w.now += Duration::from_millis(100);
    let sent = w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    assert_eq!(sent.len(), 2, "at once, as before");
    assert_eq!(pushed_priorities(&B, &sent), [lisp::UNUSABLE_PRIORITY]);
    assert_eq!(reply_priorities(&sent), [1]);
    assert_eq!(w.metrics.held_replies.load(Relaxed), 0);
}

#[test]
fn of_two_sites_reaching_for_each_other_at_once_only_one_starts() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    w.observe(&A, "192.0.2.10:51820");
    w.observe(&B, "192.0.2.11:51820");
    let sent = w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    assert_eq!(sent.len(), 2, "a starts");
    // b asks for a before a's handshake arrived: b only answers it.
    let sent = w.from(&B, &request(6, "[1000] 10.1.0.9/32"));
    assert_eq!(
        reply_priorities(&sent),
        [lisp::UNUSABLE_PRIORITY],
        "b waits for a's"
    );
    assert_eq!(pushed_priorities(&A, &sent), [1]);
    assert_eq!(w.metrics.held_replies.load(Relaxed), 0);
}

#[test]
fn a_request_without_the_n_bit_only_looks_nothing_pushed_nothing_subscribed() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:40000");
    // `lispguard lookup` on a: answered at once, b told nothing.
    let sent = w.from(&A, &request_with(5, "[1000] 10.2.0.9/32", false));
    assert_eq!(sent.len(), 1, "the reply alone");
    assert_eq!(sent[0].0.ip(), A.control_address(NET));
    let record = reply(&sent).records.get(0).unwrap();
    assert_eq!(record.eid.wireguard_key(), Some(B.public_key));
    // b moves: a, not subscribed, hears nothing of it.
    let moved = B.register(2, "[1000] 10.2.0.0/24", "192.0.2.12:40000".parse().unwrap());
    let sent = w.from(&B, &moved);
    assert_eq!(sent.len(), 1, "b's own Map-Notify only: {sent:?}");
    assert_eq!(sent[0].0.ip(), B.control_address(NET));
}

#[test]
fn unacknowledged_push_is_retransmitted_until_the_ack() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    let sent = w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    let push = pushed_to(&B, &sent);
    // The first ack is lost: 20 ms later the same push goes again.
    assert!(w.wait(Duration::from_millis(19)).is_empty());
    let again = w.wait(Duration::from_millis(1));
    assert_eq!(again, vec![(B.control_socket(NET), push.clone())]);
    // A second request meanwhile does not start another push: it waits
    // for the same one.
    assert!(w.from(&A, &request(6, "[1000] 10.2.0.9/32")).is_empty());
    // The ack arrives: both replies go; then nothing more is sent.
    let released = w.from(&B, &B.ack(&push));
    assert_eq!(released.len(), 2);
    assert!(released
        .iter()
        .all(|(to, _)| to.ip() == A.control_address(NET)));
    assert!(w.wait(Duration::from_secs(5)).is_empty());
    assert_eq!(w.metrics.notifies_acked.load(Relaxed), 1);
    assert_eq!(w.metrics.notifies_retransmitted.load(Relaxed), 1);
}

#[test]
fn push_to_a_silent_site_backs_off_then_gives_up() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    let mut sends = Vec::new();
    for ms in 1..=6000 {
        if !w.wait(Duration::from_millis(1)).is_empty() {
            sends.push(ms);
        }
    }
    // The reply stops waiting at 100 ms; the push goes on.
    assert_eq!(sends, [20, 60, 100, 140, 300, 620, 1260, 2540]);
    assert_eq!(w.metrics.notifies_failed.load(Relaxed), 1);
}

#[test]
fn a_push_out_of_retries_goes_again_when_its_site_registers_again() {
    // B moves while a push to it is on its way: it cannot ack until the
    // map-server knows where it went, which its next Map-Register says.
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    let push = pushed_to(&B, &w.from(&A, &request(5, "[1000] 10.2.0.9/32")));
    for _ in 0..10 {
        w.wait(Duration::from_secs(1));
    }
    assert_eq!(w.metrics.notifies_failed.load(Relaxed), 1);
    assert!(w.wait(Duration::from_secs(60)).is_empty(), "parked: silent");
    let moved = B.register(2, &first_eid(&B), "192.0.2.99:51820".parse().unwrap());
    let sent = w.from(&B, &moved);
    assert!(
        sent.contains(&(B.control_socket(NET), push.clone())),
        "the push goes again after B registered"
    );
    w.from(&B, &B.ack(&push));
    let later = w.wait(Duration::from_secs(5));
    assert!(
        later.iter().all(|(to, _)| *to != B.control_socket(NET)),
        "acked: nothing more to B"
    );
}

#[test]
fn miss_gets_a_short_negative_reply() {
    let mut w = World::new(&[&A], "rate_limit = 0\nnegative_ttl = 2");
    w.register(&A, "192.0.2.10:51820");
    let sent = w.from(&A, &request(9, "[1000] 10.7.0.1/32"));
    assert_eq!(sent.len(), 1, "no push on a miss");
    let record = &reply(&sent).records.get(0).unwrap();
    assert!(record.locators.is_empty());
    assert_eq!(record.action, Action::DROP_NO_REASON);
    assert_eq!(record.ttl, 2);
    assert_eq!(w.metrics.negative_replies.load(Relaxed), 1);
}

#[test]
fn policy_denies_across_instances_and_outside_may_resolve() {
    let mut w = World::new(&[&A, &B, &C, &D], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    w.register(&C, "192.0.2.12:51820");
    w.register(&D, "192.0.2.13:51820");
    let denied = |w: &mut World, site: &TestSite, eid: &str| {
        let sent = w.from(site, &request(1, eid));
        assert_eq!(sent.len(), 1, "{} -> {eid}: no push", site.name);
        reply(&sent).records.get(0).unwrap().action
    };
    // c lives in instance 2: instance 1000 is not its to resolve.
    assert_eq!(
        denied(&mut w, &C, "[1000] 10.2.0.9/32"),
        Action::DROP_POLICY_DENIED
    );
    // d may resolve a, not b.
    assert_eq!(
        denied(&mut w, &D, "[1000] 10.2.0.9/32"),
        Action::DROP_POLICY_DENIED
    );
    let sent = w.from(&D, &request(2, "[1000] 10.1.0.9/32"));
    let released = w.ack_pushes(&sent, &[&A]);
    assert_eq!(
        reply(&released).records.get(0).unwrap().eid.wireguard_key(),
        Some(A.public_key)
    );
}

#[test]
fn subscribers_hear_of_a_changed_rloc() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    // b roams: same prefix, new RLOC.
    let msg = B.register(
        2,
        "[1000] 10.2.0.0/24",
        "198.51.100.4:51820".parse().unwrap(),
    );
    let sent = w.from(&B, &msg);
    assert_eq!(sent.len(), 2, "the Map-Notify to b and the update to a");
    let update = notify(&A, &pushed_to(&A, &sent));
    assert_eq!(
        first_endpoint(&update.body.records.get(0).unwrap()),
        Some("198.51.100.4:51820".parse().unwrap())
    );
    // A refresh with nothing changed tells no one.
    assert_eq!(w.from(&B, &msg).len(), 1);
    // b was pushed a's mapping: when a moves, b is told too.
    let msg = A.register(
        3,
        "[1000] 10.1.0.0/24",
        "203.0.113.9:51820".parse().unwrap(),
    );
    let sent = w.from(&A, &msg);
    let update = notify(&B, &pushed_to(&B, &sent));
    assert_eq!(
        first_endpoint(&update.body.records.get(0).unwrap()),
        Some("203.0.113.9:51820".parse().unwrap())
    );
}

/// The revocation a subscriber receives: no locators, the key marked R.
fn assert_revocation(site: &TestSite, sent: &[(SocketAddr, Vec<u8>)], of: [u8; 32]) {
    let record = &notify(site, &pushed_to(site, sent))
        .body
        .records
        .get(0)
        .unwrap();
    assert!(record.locators.is_empty());
    match &record.eid {
        Address::SecurityKey(k) => {
            assert!(k.revoked);
            assert_eq!(k.key, of);
        }
        other => panic!("expected a Security Key LCAF, got {other:?}"),
    }
}

#[test]
fn expiry_removes_the_mapping_and_tells_subscribers() {
    let mut w = World::new(&[&A, &B], "rate_limit = 0\nregistration_ttl = 3");
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    w.from(&B, &[]); // (an empty datagram from b is dropped, not fatal)
                     // a keeps registering, b goes silent.
    w.now += Duration::from_secs(2);
    w.register(&A, "192.0.2.10:51820");
    let sent = w.wait(Duration::from_secs(1));
    assert_revocation(&A, &sent, B.public_key);
    assert!(w
        .server
        .lookup(&"[1000] 10.2.0.9/32".parse().unwrap())
        .is_none());
    assert!(w
        .server
        .lookup(&"[1000] 10.1.0.9/32".parse().unwrap())
        .is_some());
}

#[test]
fn revoking_a_site_removes_it_from_subscribers_and_refuses_it() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    assert_eq!(w.server.revoke("b", w.now, &mut w.out), Ok(1));
    let sent = w.drain();
    assert_revocation(&A, &sent, B.public_key);
    let msg = B.register(3, "[1000] 10.2.0.0/24", "192.0.2.11:51820".parse().unwrap());
    assert!(w.from(&B, &msg).is_empty());
    assert_eq!(w.metrics.drops(DropReason::Revoked), 1);
    assert_eq!(
        w.server.revoke("nobody", w.now, &mut w.out),
        Err("no site is named 'nobody'".into())
    );
}

#[test]
fn a_request_admitted_before_its_site_was_revoked_is_refused_after() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    // A receive thread admits B's request against the directory it has...
    let before = w.server.directory().clone();
    let from = SocketAddr::new(B.control_address(NET), 40000);
    let msg = request(5, "[1000] 10.1.0.9/32");
    let admitted = before.admit(w.now, from, &msg).unwrap();
    // ...while B is revoked, which gives the engine a new one.
    w.server.revoke("b", w.now, &mut w.out).unwrap();
    w.drain();
    assert!(!Arc::ptr_eq(&before, w.server.directory()));
    w.server.decide(w.now, admitted, &mut w.out);
    assert!(w.drain().is_empty(), "no answer to a revoked site");
    assert_eq!(w.metrics.drops(DropReason::Revoked), 1);
    // The new directory refuses B without the engine.
    let refused = w.server.directory().admit(w.now, from, &msg).err();
    assert_eq!(refused.map(|r| r.reason), Some(DropReason::Revoked));
}

#[test]
fn requests_that_push_nothing_are_answered_with_the_engine_only_read() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    let directory = w.server.directory().clone();
    let from = SocketAddr::new(A.control_address(NET), 40000);
    // A miss is answered on the shared path (`&self`).
    let miss = request(1, "[1000] 10.3.0.1/32");
    let admitted = directory.admit(w.now, from, &miss).unwrap();
    assert!(w.server.answer(w.now, &admitted, &mut w.out));
    assert_eq!(w.drain().len(), 1, "the negative Map-Reply");
    // B's EID: B is to be pushed A's mapping, which only `decide` does.
    let hit = request(2, "[1000] 10.2.0.1/32");
    let admitted = directory.admit(w.now, from, &hit).unwrap();
    assert!(
        !w.server.answer(w.now, &admitted, &mut w.out),
        "a request that pushes is left to decide"
    );
    assert!(w.drain().is_empty());
    w.server.decide(w.now, admitted, &mut w.out);
    let sent = w.drain();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].0,
        B.control_socket(NET),
        "the push; the reply waits"
    );
}

#[test]
fn a_site_seen_behind_a_nat_is_handed_out_at_its_observed_endpoint() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.168.1.20:51820");
    w.observe(&B, "203.0.113.5:40001");
    let sent = w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    let released = w.ack_pushes(&sent, &[&B]);
    match &reply(&released)
        .records
        .get(0)
        .unwrap()
        .locators
        .get(0)
        .unwrap()
        .rloc
    {
        Address::NatTraversal(nat) => {
            assert_eq!(nat.global_etr_rloc, Some("203.0.113.5".parse().unwrap()));
            assert_eq!(nat.etr_port, 40001);
            assert_eq!(nat.private_etr_rloc, Some("192.168.1.20".parse().unwrap()));
        }
        other => panic!("expected a NAT-Traversal locator, got {other:?}"),
    }
}

#[test]
fn rate_limit_drops_a_flooding_site() {
    let mut w = World::new(&[&A], "rate_limit = 5");
    let replies = (0..100)
        .map(|n| w.from(&A, &request(n, "[1000] 10.1.0.1/32")).len())
        .sum::<usize>();
    assert_eq!(replies, 10, "the burst: twice the rate");
    assert_eq!(w.metrics.drops(DropReason::RateLimited), 90);
    w.now += Duration::from_secs(1);
    assert_eq!(w.from(&A, &request(1, "[1000] 10.1.0.1/32")).len(), 1);
}

#[test]
fn reload_keeps_registrations_and_withdraws_removed_sites() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    w.server
        .reload(&config(NET, &[&A, &B], NO_LIMIT), w.now, &mut w.out);
    assert!(w.drain().is_empty());
    assert_eq!(w.metrics.registrations.load(Relaxed), 2);
    w.server
        .reload(&config(NET, &[&A], NO_LIMIT), w.now, &mut w.out);
    let sent = w.drain();
    assert_revocation(&A, &sent, B.public_key);
    assert_eq!(w.metrics.registrations.load(Relaxed), 1);
}

/// The one record of the Map-Notify pushed to `site` among `sent`.
fn pushed_record(site: &TestSite, sent: &[(SocketAddr, Vec<u8>)]) -> lisp::Record<'static> {
    let n = notify(site, &pushed_to(site, sent));
    assert_eq!(n.body.records.len(), 1);
    n.body.records.get(0).unwrap()
}

#[test]
fn a_miss_is_answered_for_the_widest_free_prefix_and_healed_when_it_fills() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    // Only a's 10.1.0.0/24 is registered: 10.2.0.0/15 holds nothing.
    let sent = w.from(&A, &request(9, "[1000] 10.2.0.9/32"));
    let record = &reply(&sent).records.get(0).unwrap();
    assert_eq!(record.action, Action::DROP_NO_REASON);
    assert_eq!(record.eid_mask_len, 15);
    assert_eq!(record.eid.instance_id(), 1000);
    assert_eq!(
        EidPrefix::from_address(&record.eid, record.eid_mask_len),
        Some("[1000] 10.2.0.0/15".parse().unwrap())
    );
    // b registers inside it: a hears its negative answer no longer holds.
    let msg = B.register(1, "[1000] 10.2.0.0/24", "192.0.2.11:51820".parse().unwrap());
    let sent = w.from(&B, &msg);
    assert_eq!(sent.len(), 2, "b's Map-Notify and the push to a");
    let heal = pushed_record(&A, &sent);
    assert!(heal.locators.is_empty());
    assert_eq!(heal.ttl, 0);
    assert_eq!(heal.action, Action::NO_ACTION);
    assert!(heal.authoritative);
    assert_eq!(heal.eid.wireguard_key(), None);
    assert_eq!(
        EidPrefix::from_address(&heal.eid, heal.eid_mask_len),
        Some("[1000] 10.2.0.0/15".parse().unwrap())
    );
    // Retransmitted until acknowledged, like any push.
    let again = w.wait(Duration::from_millis(20));
    assert_eq!(again.len(), 1);
    w.from(&A, &A.ack(&pushed_to(&A, &sent)));
    assert!(w.wait(Duration::from_secs(5)).is_empty());
    // Said once: a refresh or another registration tells no one again.
    assert_eq!(w.from(&B, &msg).len(), 1);
}

#[test]
fn another_instance_gets_back_only_the_prefix_it_asked() {
    let mut w = World::new(&[&A, &C], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    let sent = w.from(&C, &request(1, "[1000] 10.9.0.1/32"));
    let record = reply(&sent).records.get(0).unwrap();
    assert_eq!(record.eid_mask_len, 32);
    assert_eq!(record.action, Action::DROP_NO_REASON);
}

#[test]
fn a_negative_subscription_ends_with_its_ttl_and_needs_the_n_bit() {
    let mut w = World::new(&[&A, &B, &D], "rate_limit = 0\nnegative_ttl = 1");
    w.register(&A, "192.0.2.10:51820");
    // d asks without the N bit: answered, not subscribed.
    let asked = request(1, "[1000] 10.2.0.9/32");
    let packet = lisp::map_request::Packet::new_checked(&asked[..]).unwrap();
    let mut plain = lisp::MapRequest::parse(&packet);
    let mut record = plain.records.get(0).unwrap();
    record.notify = false;
    let records = [record];
    plain.records = lisp::List::new(&records);
    let mut buf = [0u8; 1500];
    let len = plain.emit(&mut buf).unwrap();
    assert_eq!(w.from(&D, &buf[..len]).len(), 1);
    // a asks with it, then a minute passes.
    w.from(&A, &request(2, "[1000] 10.2.0.9/32"));
    w.now += Duration::from_secs(60);
    let msg = B.register(1, "[1000] 10.2.0.0/24", "192.0.2.11:51820".parse().unwrap());
    assert_eq!(w.from(&B, &msg).len(), 1, "only b's own Map-Notify");
}

#[test]
fn a_static_mapping_heals_negative_answers_too() {
    let key = netconf::format_key(&[0x55; 32]);
    let with_static = format!(
        "rate_limit = 0\n[[static]]\neid = \"[1000] 10.9.1.0/24\"\npublic_key = \"{key}\"\nrloc = \"192.0.2.99:51820\"\n"
    );
    let mut w = World::new(&[&A], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    let sent = w.from(&A, &request(3, "[1000] 10.9.1.1/32"));
    let record = reply(&sent).records.get(0).unwrap();
    assert_eq!(record.eid_mask_len, 13, "10.8.0.0/13");
    w.server
        .reload(&config(NET, &[&A], &with_static), w.now, &mut w.out);
    let sent = w.drain();
    let heal = pushed_record(&A, &sent);
    assert_eq!(heal.eid_mask_len, 13);
    assert!(heal.locators.is_empty());
}

#[test]
fn streamed_statics_replace_the_old_ones_and_only_new_prefixes_heal() {
    let static_mapping = |eid: &str, last: u8| StaticMapping {
        eid: eid.parse().unwrap(),
        public_key: [last; 32],
        rloc: SocketAddr::from(([192, 0, 2, last], 51820)),
        ttl: 5,
    };
    let key_of = |w: &World, eid: &str| {
        let (_, answer) = w.server.lookup(&eid.parse().unwrap())?;
        answer.record().eid.wireguard_key()
    };
    let mut w = World::new(&[&A], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    let mut update = w.server.update_statics(w.now);
    assert!(update.add(static_mapping("[1000] 10.9.1.0/24", 91), &mut w.out));
    assert!(update.add(static_mapping("[1000] 10.9.2.0/24", 92), &mut w.out));
    let twice = static_mapping("[1000] 10.9.2.0/24", 92);
    assert!(!update.add(twice.clone(), &mut w.out), "given twice");
    assert_eq!(update.finish(), 3);
    // a hears of a miss in 10.9.3.0/24 when it fills, not of a kept one.
    let sent = w.from(&A, &request(3, "[1000] 10.9.3.1/32"));
    let record = reply(&sent).records.get(0).unwrap();
    assert_eq!(record.eid_mask_len, 24, "10.9.3.0/24");
    w.drain();
    let mut update = w.server.update_statics(w.now);
    assert!(update.add(static_mapping("[1000] 10.9.2.0/24", 95), &mut w.out));
    assert!(update.add(static_mapping("[1000] 10.9.3.0/24", 93), &mut w.out));
    assert!(
        !update.add(twice, &mut w.out),
        "given twice, kept from before"
    );
    assert_eq!(update.finish(), 3);
    assert_eq!(key_of(&w, "[1000] 10.9.1.1/32"), None, "removed");
    assert_eq!(
        key_of(&w, "[1000] 10.9.2.1/32"),
        Some([92; 32]),
        "the last one wins"
    );
    assert_eq!(key_of(&w, "[1000] 10.9.3.1/32"), Some([93; 32]), "added");
    let sent = w.drain();
    assert_eq!(
        sent.len(),
        1,
        "one push: the new prefix healed a's negative"
    );
    assert_eq!(pushed_record(&A, &sent).eid_mask_len, 24);
    assert_eq!(
        key_of(&w, "[1000] 10.1.0.1/32"),
        Some(A.public_key),
        "registrations stay"
    );
}

#[test]
fn a_revoked_site_gets_no_answers_and_no_pushes() {
    let mut w = World::new(&[&A, &B, &D], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    w.register(&D, "192.0.2.13:51820");
    // b asked about a miss and would hear when it fills.
    w.from(&B, &request(1, "[1000] 10.9.0.1/32"));
    w.drain();
    w.changes.clear();
    assert_eq!(w.server.revoke("b", w.now, &mut w.out), Ok(1));
    w.drain();
    assert_eq!(
        w.changes,
        vec![
            Change::Withdrawn {
                eid: "[1000] 10.2.0.0/24".parse().unwrap()
            },
            Change::Revoked {
                site: "b".into(),
                key: Some(B.public_key)
            }
        ]
    );
    w.changes.clear();
    // Its Map-Requests are dropped: nothing about a, nothing pushed to a.
    assert!(w.from(&B, &request(2, "[1000] 10.1.0.9/32")).is_empty());
    assert_eq!(w.metrics.drops(DropReason::Revoked), 1);
    // Nothing is pushed to it either (the negative it asked about fills).
    let e = TestSite {
        name: "e",
        control_address: "127.0.0.6",
        eids: &["[1000] 10.9.0.0/16"],
        public_key: [0xee; 32],
        ..D
    };
    w.server
        .reload(&config(NET, &[&A, &B, &D, &e], NO_LIMIT), w.now, &mut w.out);
    w.drain();
    let msg = e.register(1, "[1000] 10.9.0.0/24", "192.0.2.14:51820".parse().unwrap());
    let sent = w.from(&e, &msg);
    assert!(sent.iter().all(|(to, _)| to.ip() != B.control_address(NET)));
    assert_eq!(w.server.revoked_keys(), vec![B.public_key]);
}

#[test]
fn restore_takes_back_what_the_configuration_still_allows() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    w.server.revoke("b", w.now, &mut w.out).unwrap();
    w.drain();
    let kept: Vec<Change> = std::mem::take(&mut w.changes);
    let registered = kept
        .iter()
        .filter(|c| matches!(c, Change::Registered { .. }))
        .count();
    assert_eq!(registered, 2, "both registrations were reported");
    // What a store would hold now: a's registration, b's revocation, and a
    // stale registration of b's (expired) and one with an old key.
    let a = w
        .server
        .sites()
        .into_iter()
        .find(|s| s.name == "a")
        .unwrap();
    let mut mapping = a.mappings[0].clone();
    let old_key = Mapping {
        eid: "[1000] 10.1.1.0/24".parse().unwrap(),
        key: Some([0x01; 32]),
        ..mapping.clone()
    };
    let expired = Mapping {
        eid: "[1000] 10.1.2.0/24".parse().unwrap(),
        expires: Some(w.now),
        ..mapping.clone()
    };
    mapping.site = None;
    let saved = Saved {
        registrations: vec![
            ("a".into(), mapping),
            ("a".into(), old_key),
            ("a".into(), expired),
            ("gone".into(), a.mappings[0].clone()),
        ],
        revoked: vec![("b".into(), Some(B.public_key))],
        observed: vec![("a".into(), "203.0.113.7:4000".parse().unwrap())],
    };
    let metrics = Arc::new(Metrics::default());
    let mut restarted = MapServer::new(&config(NET, &[&A, &B], NO_LIMIT), metrics, w.now, nonces());
    let mut out = Outbox::default();
    assert_eq!(restarted.restore(saved.clone(), w.now, &mut out), 1);
    assert_eq!(
        out.changes().count(),
        3,
        "three rows dropped: {:?}",
        out.actions()
    );
    let sites = restarted.sites();
    assert_eq!(sites[0].mappings.len(), 1);
    assert_eq!(sites[0].observed, Some("203.0.113.7:4000".parse().unwrap()));
    assert!(sites[1].revoked);
    // b's Map-Registers are still refused.
    let from = SocketAddr::new(B.control_address(NET), 4342);
    let msg = B.register(1, "[1000] 10.2.0.0/24", "192.0.2.11:51820".parse().unwrap());
    restarted.handle(w.now, from, &msg, &mut out);
    assert_eq!(restarted.metrics().drops(DropReason::Revoked), 1);
    // A new key for b lifts the revocation (and the store hears so).
    let b2 = TestSite {
        public_key: [0xb2; 32],
        ..B
    };
    let mut out = Outbox::default();
    let mut again = MapServer::new(
        &config(NET, &[&A, &b2], NO_LIMIT),
        Arc::new(Metrics::default()),
        w.now,
        nonces(),
    );
    again.restore(saved, w.now, &mut out);
    assert!(!again.sites()[1].revoked);
    assert!(out
        .changes()
        .any(|c| *c == Change::Unrevoked { site: "b".into() }));
}

#[test]
fn a_push_makes_the_engine_due_at_its_first_retransmission() {
    let mut w = World::new(&[&A, &B], NO_LIMIT);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    let expiry = w.server.poll_at().expect("registrations expire");
    assert!(expiry > w.now + Duration::from_secs(60));
    // a asks for b: b is pushed a's mapping, the reply waits for the ack.
    let sent = w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    assert_eq!(
        w.server.poll_at(),
        Some(w.now + mapserver::push::RETRY_AFTER[0])
    );
    // Acknowledged: once polled, nothing is due before the expiry again.
    w.ack_pushes(&sent, &[&B]);
    w.wait(mapserver::push::RETRY_AFTER[0]);
    assert_eq!(w.server.poll_at(), Some(expiry));
}

/// The endpoint of a record's first locator.
/// A map-server with a relay on loopback, ports from `first`.
fn with_relay(sites: &[&TestSite], first: u16) -> World {
    let mut w = World::new(sites, NO_LIMIT);
    let relay = RelayConfig {
        address: "127.0.0.1".parse().unwrap(),
        ports: first..=first + 9,
        idle: Duration::from_secs(90),
    };
    w.server
        .set_relay(Relay::start(relay, Arc::default()).unwrap());
    w
}

/// The relay port a record's first locator sends to, if it is the relay.
fn relay_port(record: &lisp::Record) -> Option<u16> {
    let first = record.locators.get(0)?;
    (first.rloc.is_relayed() && first.priority == 0).then(|| first_endpoint(record).unwrap().port())
}

#[test]
fn two_sites_behind_nats_that_change_ports_are_relayed_from_the_first_contact() {
    let mut w = with_relay(&[&A, &B], 42000);
    w.register(&A, "192.168.2.10:51820");
    w.register(&B, "192.168.1.11:51820");
    w.observe(&A, "198.51.100.4:40002");
    w.observe(&B, "203.0.113.5:51820");
    let sent = w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    assert_eq!(
        sent.len(),
        1,
        "the push; the reply waits for b to reach out"
    );
    let to_b = pushed_record(&B, &sent);
    let b_port = relay_port(&to_b).expect("b is given the relay");
    // Then a's own locator, for b to try the direct path later.
    assert_eq!(
        to_b.locators.get(1).unwrap().rloc.endpoint(),
        Some("198.51.100.4:40002".parse().unwrap())
    );
    let released = w.ack_pushes(&sent, &[&B]);
    let r = reply(&released);
    let a_port = relay_port(&r.records.get(0).unwrap()).expect("a is given the relay");
    assert_ne!(a_port, b_port, "a port per side");
    assert!((42000..=42009).contains(&a_port));
    // A refresh later keeps the pair on the same ports.
    w.now += Duration::from_secs(30);
    let sent = w.from(&A, &request(6, "[1000] 10.2.0.9/32"));
    assert_eq!(relay_port(&pushed_record(&B, &sent)), Some(b_port));
    let released = w.ack_pushes(&sent, &[&B]);
    assert_eq!(
        relay_port(&reply(&released).records.get(0).unwrap()),
        Some(a_port)
    );
    // So does what a is told when b moves.
    let msg = B.register(
        2,
        "[1000] 10.2.0.0/24",
        "192.168.7.11:51820".parse().unwrap(),
    );
    let update = notify(&A, &pushed_to(&A, &w.from(&B, &msg)));
    assert_eq!(
        relay_port(&update.body.records.get(0).unwrap()),
        Some(a_port)
    );
}

#[test]
fn a_pair_whose_direct_handshakes_fail_goes_through_the_relay_on_the_third_request() {
    let mut w = with_relay(&[&A, &B], 42010);
    w.register(&A, "192.0.2.10:51820");
    w.register(&B, "192.0.2.11:51820");
    w.observe(&A, "192.0.2.10:51820");
    w.observe(&B, "192.0.2.11:51820");
    let sent = w.from(&A, &request(5, "[1000] 10.2.0.9/32"));
    assert_eq!(sent.len(), 2, "a starts, directly");
    assert_eq!(relay_port(&reply(&sent).records.get(0).unwrap()), None);
    w.ack_pushes(&sent, &[&B]);
    // a's tries never completed: b reaches out, directly.
    w.now += Duration::from_millis(90);
    let sent = w.from(&A, &request(6, "[1000] 10.2.0.9/32"));
    assert_eq!(relay_port(&pushed_record(&B, &sent)), None);
    let released = w.ack_pushes(&sent, &[&B]);
    assert_eq!(relay_port(&reply(&released).records.get(0).unwrap()), None);
    // Nor did that: the relay.
    w.now += Duration::from_millis(1100);
    let sent = w.from(&A, &request(7, "[1000] 10.2.0.9/32"));
    assert!(relay_port(&pushed_record(&B, &sent)).is_some());
    let released = w.ack_pushes(&sent, &[&B]);
    assert!(relay_port(&reply(&released).records.get(0).unwrap()).is_some());
}

fn first_endpoint(record: &lisp::Record) -> Option<SocketAddr> {
    record.locators.get(0)?.rloc.endpoint()
}
