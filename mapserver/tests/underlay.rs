//! Standard LISP xTRs on the underlay, driven through the engine with a
//! made-up clock: plain LISP sites register without a WireGuard key and
//! hear their xTR-ID echoed, resolve through ECM Map-Requests answered at
//! their ITR-RLOC, and never see a WireGuard site's key.

mod common;

use common::{config_with_xtrs, plain_register, request, Itr, LispXtr, TestSite, A, B, X, Y};
use lisp::{auth, Action, MapNotify, MapReply, Message, XtrId};
use mapserver::config::Config;
use mapserver::engine::MapServer;
use mapserver::metrics::{DropReason, Metrics};
use mapserver::outbox::{Outbox, OutboxExt};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

const NET: u8 = 0;
const RESOLVER: &str = "127.0.0.1:4342";

struct World {
    server: MapServer,
    metrics: Arc<Metrics>,
    now: Instant,
    out: Outbox,
}

type Sent = Vec<(SocketAddr, Vec<u8>)>;

impl World {
    fn new(sites: &[&TestSite], xtrs: &[(&LispXtr, &str)]) -> World {
        World::with(&config_with_xtrs(NET, sites, xtrs, "rate_limit = 0"))
    }

    fn with(config: &Config) -> World {
        let metrics = Arc::new(Metrics::default());
        let now = Instant::now();
        let server = MapServer::new(config, metrics.clone(), now, fastrand::Rng::with_seed(9));
        World {
            server,
            metrics,
            now,
            out: Outbox::default(),
        }
    }

    fn drain(&mut self) -> Sent {
        let sent = self
            .out
            .datagrams()
            .map(|(to, b)| (to, b.to_vec()))
            .collect();
        self.out.clear();
        sent
    }

    /// A datagram to the underlay listener from `from`.
    fn underlay(&mut self, from: &str, msg: &[u8]) -> Sent {
        let from = from.parse().unwrap();
        self.server
            .handle_underlay(self.now, from, msg, &mut self.out);
        self.drain()
    }

    /// A datagram to the tunnel listener from `site`'s control address.
    fn tunnel(&mut self, site: &TestSite, msg: &[u8]) -> Sent {
        let from = SocketAddr::new(site.control_address(NET), 40000);
        self.server.handle(self.now, from, msg, &mut self.out);
        self.drain()
    }

    /// `xtr` registers its first prefix (as a /24) at `rloc`.
    fn register(&mut self, xtr: &LispXtr, rloc: &str) {
        let eid = xtr.eids[0].replace(".0.0/16", ".0.0/24");
        let msg = xtr.register(1, &eid, rloc.parse().unwrap(), None);
        let sent = self.underlay(&format!("{rloc}:4342"), &msg);
        assert_eq!(sent.len(), 1, "{} registered", xtr.name);
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `Y`'s ITR at 192.0.2.21 asks for `eid` from its host 10.9.0.5, to be
/// answered at 192.0.2.22, inner source port 61000.
fn ecm_from_y(nonce: u64, eid: &str) -> Vec<u8> {
    let itr = Itr {
        address: ip("192.0.2.21"),
        rlocs: vec![ip("2001:db8::22"), ip("192.0.2.22")],
        port: 61000,
    };
    Y.ecm_request(
        nonce,
        "[1000] 10.9.0.5/32",
        eid,
        &itr,
        RESOLVER.parse().unwrap(),
    )
}

fn only_reply(sent: &Sent) -> (SocketAddr, MapReply<'_>) {
    assert_eq!(sent.len(), 1, "one datagram: {sent:?}");
    match Message::parse(&sent[0].1).unwrap() {
        Message::MapReply(reply) => (sent[0].0, reply),
        other => panic!("expected a Map-Reply, got {other:?}"),
    }
}

#[test]
fn a_plain_lisp_xtr_registers_without_a_key_and_hears_its_xtr_id_echoed() {
    let mut w = World::new(&[&A], &[(&X, "")]);
    let xtr = XtrId {
        xtr_id: 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff,
        site_id: 7,
    };
    let msg = X.register(5, "[1000] 10.8.0.0/24", ip("192.0.2.20"), Some(xtr));
    let sent = w.underlay("192.0.2.20:4342", &msg);

    assert_eq!(sent.len(), 1);
    let (to, bytes) = &sent[0];
    assert_eq!(*to, "192.0.2.20:4342".parse().unwrap());
    let verified = auth::verify(bytes, X.key).expect("signed with x's key");
    let notify = MapNotify::parse(&verified).unwrap();
    assert_eq!(notify.body.nonce, 5);
    assert_eq!(notify.body.xtr, Some(xtr));
    let record = notify.body.records.get(0).unwrap();
    assert_eq!(record.eid.wireguard_key(), None);
    assert_eq!(w.metrics.map_registers.load(Relaxed), 1);
    let (owner, _) = w
        .server
        .lookup(&"[1000] 10.8.0.7/32".parse().unwrap())
        .unwrap();
    assert_eq!(owner.as_deref(), Some("x"));
}

#[test]
fn each_kind_registers_only_on_its_own_listener_and_a_wireguard_site_still_needs_its_key() {
    let mut w = World::new(&[&A], &[(&X, "")]);
    let rloc = "192.0.2.10:51820".parse().unwrap();
    // A WireGuard site without its key, in the tunnel: refused as before.
    let keyless = plain_register(1, "[1000] 10.1.0.0/24", ip("192.0.2.10"), A.key, None);
    assert!(w.tunnel(&A, &keyless).is_empty());
    assert_eq!(w.metrics.drops(DropReason::KeyMismatch), 1);
    // A WireGuard site on the underlay: no plain LISP site holds its EID.
    let keyed = A.register(2, "[1000] 10.1.0.0/24", rloc);
    assert!(w.underlay("192.0.2.10:4342", &keyed).is_empty());
    assert_eq!(w.metrics.drops(DropReason::UnknownSource), 1);
    // A plain LISP register forged with the wrong key.
    let forged = plain_register(3, "[1000] 10.8.0.0/24", ip("192.0.2.66"), b"guess", None);
    assert!(w.underlay("192.0.2.66:4342", &forged).is_empty());
    assert_eq!(w.metrics.drops(DropReason::AuthFailed), 1);
    assert_eq!(w.metrics.registrations.load(Relaxed), 0);
}

#[test]
fn an_ecm_map_request_is_answered_at_its_itr_rloc_and_inner_source_port() {
    let mut w = World::new(&[], &[(&X, ""), (&Y, "")]);
    w.register(&X, "192.0.2.20");

    let sent = w.underlay("192.0.2.21:4342", &ecm_from_y(77, "[1000] 10.8.0.9/32"));

    let (to, reply) = only_reply(&sent);
    // The first IPv4 ITR-RLOC (the request came over IPv4), at the inner
    // UDP source port: not the packet's source.
    assert_eq!(to, "192.0.2.22:61000".parse().unwrap());
    assert_eq!(reply.nonce, 77);
    let record = reply.records.get(0).unwrap();
    assert_eq!(record.eid.wireguard_key(), None);
    assert_eq!(record.action, Action::NO_ACTION);
    assert_eq!(
        record.locators.get(0).unwrap().rloc.ip(),
        Some(ip("192.0.2.20"))
    );
}

#[test]
fn an_ecm_map_request_with_no_itr_rloc_to_answer_at_is_dropped() {
    let mut w = World::new(&[], &[(&X, ""), (&Y, "")]);
    let resolver = RESOLVER.parse().unwrap();
    let mut itr = Itr {
        address: ip("192.0.2.21"),
        rlocs: vec![ip("2001:db8::22")],
        port: 61000,
    };
    let only_v6 = Y.ecm_request(
        1,
        "[1000] 10.9.0.5/32",
        "[1000] 10.8.0.9/32",
        &itr,
        resolver,
    );
    assert!(w.underlay("192.0.2.21:4342", &only_v6).is_empty());
    assert_eq!(w.metrics.drops(DropReason::NoItrRloc), 1);
    // A source EID no plain LISP site holds.
    itr.rlocs = vec![ip("192.0.2.22")];
    let stranger = Y.ecm_request(
        2,
        "[1000] 10.1.0.5/32",
        "[1000] 10.8.0.9/32",
        &itr,
        resolver,
    );
    assert!(w.underlay("192.0.2.21:4342", &stranger).is_empty());
    assert_eq!(w.metrics.drops(DropReason::UnknownSource), 1);
    // A Map-Request not encapsulated: not what a map-resolver takes here.
    assert!(w
        .underlay("192.0.2.21:4342", &request(3, "[1000] 10.8.0.9/32"))
        .is_empty());
    assert_eq!(w.metrics.drops(DropReason::UnexpectedType), 1);
}

#[test]
fn a_plain_lisp_site_is_denied_wireguard_eids_and_never_gets_a_key() {
    let mut w = World::new(&[&A, &B], &[(&Y, "")]);
    w.tunnel(
        &B,
        &B.register(1, "[1000] 10.2.0.0/24", "192.0.2.11:51820".parse().unwrap()),
    );

    let sent = w.underlay("192.0.2.21:4342", &ecm_from_y(1, "[1000] 10.2.0.9/32"));
    let (_, reply) = only_reply(&sent);
    let record = reply.records.get(0).unwrap();
    assert_eq!(record.action, Action::DROP_POLICY_DENIED);
    assert!(record.locators.is_empty());

    // Allowed by name: B's locators, still without its key, and nothing
    // pushed to B (a plain LISP site is no WireGuard peer).
    let mut w = World::new(&[&A, &B], &[(&Y, "may_resolve = [\"b\"]")]);
    w.tunnel(
        &B,
        &B.register(1, "[1000] 10.2.0.0/24", "192.0.2.11:51820".parse().unwrap()),
    );
    let sent = w.underlay("192.0.2.21:4342", &ecm_from_y(2, "[1000] 10.2.0.9/32"));
    let (to, reply) = only_reply(&sent);
    assert_eq!(to, "192.0.2.22:61000".parse().unwrap());
    let record = reply.records.get(0).unwrap();
    assert_eq!(record.action, Action::NO_ACTION);
    assert_eq!(record.eid.wireguard_key(), None);
    assert_eq!(record.locators.len(), 1);
}

#[test]
fn a_wireguard_site_resolves_a_plain_lisp_site_only_if_it_names_it() {
    let mut w = World::new(&[&A], &[(&X, "")]);
    w.register(&X, "192.0.2.20");
    let sent = w.tunnel(&A, &request(1, "[1000] 10.8.0.9/32"));
    let (to, reply) = only_reply(&sent);
    assert_eq!(to.ip(), A.control_address(NET));
    assert_eq!(
        reply.records.get(0).unwrap().action,
        Action::DROP_POLICY_DENIED
    );

    // A names x: x's mapping, with no key to configure a peer with, and
    // nothing pushed to x (it is not in the tunnel).
    let mut config = config_with_xtrs(NET, &[&A], &[(&X, "")], "rate_limit = 0");
    config.sites[0].may_resolve = Some(vec!["x".into()]);
    let mut w = World::with(&config);
    w.register(&X, "192.0.2.20");
    let sent = w.tunnel(&A, &request(2, "[1000] 10.8.0.9/32"));
    let (to, reply) = only_reply(&sent);
    assert_eq!(to.ip(), A.control_address(NET));
    let record = reply.records.get(0).unwrap();
    assert_eq!(record.action, Action::NO_ACTION);
    assert_eq!(record.eid.wireguard_key(), None);
    assert_eq!(
        record.locators.get(0).unwrap().rloc.ip(),
        Some(ip("192.0.2.20"))
    );
}
