//! The map-server over real UDP on loopback: two sites' agents register,
//! one resolves the other, the push reaches the destination and is sent
//! again until acknowledged. Each test runs in a network namespace of its
//! own (see [`private_loopback`]).

mod common;

use common::{config, config_with_xtrs, request, Itr, TestSite, A, B, C, X, Y};
use lisp::{auth, Action, Address, MapNotify, Message};
use mapserver::engine::MapServer;
use mapserver::metrics::DropReason;
use mapserver::metrics::Metrics;
use mapserver::server::{Host, Server};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NET: u8 = 1;

/// A site's agent: a socket on its control address, port 4342.
struct Agent {
    site: TestSite,
    socket: UdpSocket,
    server: SocketAddr,
}

impl Agent {
    fn new(site: TestSite, net: u8, server: SocketAddr) -> Agent {
        let socket = UdpSocket::bind(site.control_socket(net)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Agent {
            site,
            socket,
            server,
        }
    }

    fn send(&self, msg: &[u8]) {
        self.socket.send_to(msg, self.server).unwrap();
    }

    /// The next datagram, within 5 s.
    fn receive(&self) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let (len, from) = self
            .socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{}: nothing from the map-server: {e}", self.site.name));
        assert_eq!(from, self.server);
        buf[..len].to_vec()
    }

    fn register(&self, rloc: &str) {
        let eid = self.site.eids[0].replace("/16", "/24");
        self.send(&self.site.register(3, &eid, rloc.parse().unwrap()));
        // Pushes may be on their way too: the Map-Notify with our nonce
        // is the answer.
        loop {
            let notify = self.receive();
            if auth::verify(&notify, self.site.key).unwrap().nonce() == 3 {
                break;
            }
        }
    }
}

/// A Map-Notify pushed to `site`, verified with its key and parsed; kept
/// for the test's run (what it parses to borrows from it).
fn pushed(site: &TestSite, bytes: &[u8]) -> MapNotify<'static> {
    let bytes: &'static [u8] = bytes.to_vec().leak();
    let verified = auth::verify(bytes, site.key).expect("signed with the site's key");
    MapNotify::parse(&verified).unwrap()
}

/// A map-server on 127.N.0.1 (its own N per test) for `sites`.
/// Moves this test's thread, and the threads it starts, into a network
/// namespace of its own with loopback up: the fixed addresses and port
/// 4342 its sites bind never meet another test run on this host (two
/// checkouts may test at once).
fn private_loopback() {
    // SAFETY: unshare(CLONE_NEWNET) changes the calling thread's network
    // namespace only.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
    let rtnl = netconf::Rtnl::new().expect("rtnetlink");
    rtnl.set_up("lo", None).expect("loopback up");
}

fn start(net: u8, sites: &[&TestSite], lisp: &str) -> (Server, Arc<Metrics>) {
    private_loopback();
    let metrics = Arc::new(Metrics::default());
    let config = config(net, sites, lisp);
    let engine = MapServer::new(
        &config,
        metrics.clone(),
        Instant::now(),
        fastrand::Rng::with_seed(1),
    );
    let listen = SocketAddr::from(([127, net, 0, 1], 0));
    (
        Server::start(engine, listen, 2, Default::default()).unwrap(),
        metrics,
    )
}

/// What the map-server answers `agent`'s request for `eid`.
fn resolve(agent: &Agent, nonce: u64, eid: &str) -> lisp::MapReply<'static> {
    agent.send(&request(nonce, eid));
    // Kept for the test's run: the reply borrows from it.
    let received: &'static [u8] = agent.receive().leak();
    match Message::parse(received).unwrap() {
        Message::MapReply(reply) => {
            assert_eq!(reply.nonce, nonce);
            reply
        }
        other => panic!("expected a Map-Reply, got {other:?}"),
    }
}

#[test]
fn register_resolve_and_push_over_udp() {
    let (server, metrics) = start(NET, &[&A, &B], "rate_limit = 0");
    let a = Agent::new(A, NET, server.local_addr());
    let b = Agent::new(B, NET, server.local_addr());
    a.register("192.0.2.10:51820");
    b.register("192.0.2.11:51820");

    a.send(&request(42, "[1000] 10.2.0.9/32"));
    let received = a.receive();
    let Message::MapReply(reply) = Message::parse(&received).unwrap() else {
        panic!("expected a Map-Reply");
    };
    assert_eq!(reply.nonce, 42);
    assert_eq!(
        reply.records.get(0).unwrap().eid.wireguard_key(),
        Some(B.public_key)
    );

    // b does not answer the push at first: it comes again, unchanged.
    let push = b.receive();
    assert_eq!(
        pushed(&B, &push)
            .body
            .records
            .get(0)
            .unwrap()
            .eid
            .wireguard_key(),
        Some(A.public_key)
    );
    assert_eq!(b.receive(), push);
    b.send(&b.site.ack(&push));
    // A round trip from the same socket orders after the ack.
    b.send(&request(43, "[1000] 10.1.0.9/32"));
    loop {
        match Message::parse(&b.receive()).unwrap() {
            Message::MapReply(r) => break assert_eq!(r.nonce, 43),
            // A retransmission already on its way when the ack came.
            Message::Untrusted(n) => assert_eq!(n.as_bytes(), push),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(metrics.notifies_acked.load(Relaxed), 1);
    assert!(metrics.notifies_retransmitted.load(Relaxed) >= 1);
    assert_eq!(metrics.map_requests.load(Relaxed), 2);
}

#[test]
fn bad_registrations_get_no_answer_and_are_counted() {
    const NET: u8 = 3;
    let (server, metrics) = start(NET, &[&A, &B], "rate_limit = 0");
    let a = Agent::new(A, NET, server.local_addr());
    let rloc = "192.0.2.10:51820".parse().unwrap();
    a.send(&A.register_with(1, "[1000] 10.1.0.0/24", rloc, b"wrong", A.public_key));
    a.send(&A.register(2, "[1000] 10.2.0.0/24", rloc));
    // Datagrams from one socket reach one server thread in order: the
    // answer to this request comes after both were handled.
    let reply = resolve(&a, 3, "[1000] 10.2.0.9/32");
    assert_eq!(reply.records.get(0).unwrap().action, Action::DROP_NO_REASON);
    assert_eq!(metrics.drops(DropReason::AuthFailed), 1);
    assert_eq!(metrics.drops(DropReason::OutsidePrefix), 1);
    assert_eq!(metrics.registrations.load(Relaxed), 0);
}

#[test]
fn miss_and_policy_denial_are_negative_replies() {
    const NET: u8 = 4;
    let (server, _) = start(NET, &[&A, &B, &C], "rate_limit = 0\nnegative_ttl = 1");
    let a = Agent::new(A, NET, server.local_addr());
    let b = Agent::new(B, NET, server.local_addr());
    let c = Agent::new(C, NET, server.local_addr());
    b.register("192.0.2.11:51820");
    let miss = resolve(&a, 1, "[1000] 10.7.0.1/32");
    assert_eq!(miss.records.get(0).unwrap().action, Action::DROP_NO_REASON);
    assert_eq!(miss.records.get(0).unwrap().ttl, 1);
    // c is in instance 2 only.
    let denied = resolve(&c, 2, "[1000] 10.2.0.9/32");
    assert_eq!(
        denied.records.get(0).unwrap().action,
        Action::DROP_POLICY_DENIED
    );
    assert!(denied.records.get(0).unwrap().locators.is_empty());
}

#[test]
fn subscriber_hears_of_a_change_and_of_expiry() {
    const NET: u8 = 5;
    let (server, _) = start(NET, &[&A, &B], "rate_limit = 0\nregistration_ttl = 2");
    let a = Agent::new(A, NET, server.local_addr());
    let b = Agent::new(B, NET, server.local_addr());
    a.register("192.0.2.10:51820");
    b.register("192.0.2.11:51820");
    // The reply waits for b's ack of the push.
    a.send(&request(1, "[1000] 10.2.0.9/32"));
    let push = b.receive();
    b.send(&b.site.ack(&push));
    assert!(matches!(
        Message::parse(&a.receive()),
        Ok(Message::MapReply(_))
    ));
    // b moves: a is told, with the new RLOC.
    b.register("198.51.100.4:51820");
    let update = a.receive();
    let record = pushed(&A, &update).body.records.get(0).unwrap();
    assert_eq!(
        record.locators.get(0).unwrap().rloc.endpoint(),
        Some("198.51.100.4:51820".parse().unwrap())
    );
    a.send(&a.site.ack(&update));
    // Then b falls silent: after the 2 s registration TTL (and within the
    // timer's 1 s tick) a is told the mapping is gone.
    let gone = loop {
        let notify = a.receive();
        if notify != update {
            break pushed(&A, &notify);
        }
    };
    let record = &gone.body.records.get(0).unwrap();
    assert!(record.locators.is_empty());
    assert!(matches!(&record.eid, Address::SecurityKey(k) if k.revoked));
}

#[test]
fn datagrams_a_full_receive_buffer_drops_are_counted() {
    private_loopback();
    let net = 7;
    let metrics = Arc::new(Metrics::default());
    let engine = MapServer::new(
        &config(net, &[&A], "rate_limit = 0"),
        metrics.clone(),
        Instant::now(),
        fastrand::Rng::with_seed(1),
    );
    let listen = SocketAddr::from(([127, net, 0, 1], 0));
    let server = Server::start(engine, listen, 1, Default::default()).unwrap();
    let a = Agent::new(A, net, server.local_addr());
    // The engine is busy (locked) while a burst arrives: the receive
    // thread cannot drain the socket, whose buffer overflows.
    const BURST: usize = 40_000;
    let msg = request(1, "[1000] 10.1.0.1/32");
    server.with_engine(|_, _, _| {
        for _ in 0..BURST {
            a.send(&msg);
        }
    });
    // The count rides on the next datagram queued after the drops.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.receive_dropped.load(Relaxed) == 0 && Instant::now() < deadline {
        a.send(&msg);
        std::thread::sleep(Duration::from_millis(10));
    }
    let dropped = metrics.receive_dropped.load(Relaxed);
    assert!(dropped > 0, "no drop counted");
    assert!(dropped < BURST as u64);
    assert!(metrics
        .render()
        .contains(&format!("lispguard_receive_dropped_total {dropped}")));
}

#[test]
fn plain_lisp_xtrs_register_and_resolve_over_the_underlay() {
    const NET: u8 = 8;
    private_loopback();
    let config = config_with_xtrs(NET, &[], &[(&X, ""), (&Y, "")], "rate_limit = 0");
    let engine = MapServer::new(
        &config,
        Arc::new(Metrics::default()),
        Instant::now(),
        fastrand::Rng::with_seed(1),
    );
    let host = Host {
        underlay: Some(SocketAddr::from(([127, NET, 0, 1], 0))),
        ..Default::default()
    };
    let server = Server::start(engine, SocketAddr::from(([127, NET, 0, 1], 0)), 1, host).unwrap();
    let resolver = server.underlay_addr().expect("an underlay listener");
    let bind = |last: u8, port: u16| {
        let socket = UdpSocket::bind(SocketAddr::from(([127, NET, 0, last], port))).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    };
    let mut buf = [0u8; 1500];

    // x's ETR registers its prefix from its RLOC, with its xTR-ID.
    let etr = bind(20, 4342);
    let xtr = lisp::XtrId {
        xtr_id: 0xfeed,
        site_id: 3,
    };
    let rloc = etr.local_addr().unwrap().ip();
    etr.send_to(
        &X.register(1, "[1000] 10.8.0.0/24", rloc, Some(xtr)),
        resolver,
    )
    .unwrap();
    let (len, from) = etr.recv_from(&mut buf).expect("a Map-Notify");
    assert_eq!(from, resolver);
    let verified = auth::verify(&buf[..len], X.key).expect("signed with x's key");
    assert_eq!(MapNotify::parse(&verified).unwrap().body.xtr, Some(xtr));

    // y's ITR encapsulates a Map-Request from one socket and names another
    // (its ITR-RLOC and inner source port) for the answer.
    let sender = bind(21, 0);
    let answers = bind(22, 0);
    let itr = Itr {
        address: sender.local_addr().unwrap().ip(),
        rlocs: vec![answers.local_addr().unwrap().ip()],
        port: answers.local_addr().unwrap().port(),
    };
    let ecm = Y.ecm_request(
        9,
        "[1000] 10.9.0.5/32",
        "[1000] 10.8.0.9/32",
        &itr,
        resolver,
    );
    sender.send_to(&ecm, resolver).unwrap();
    let (len, from) = answers
        .recv_from(&mut buf)
        .expect("a Map-Reply at the ITR-RLOC");
    assert_eq!(from, resolver);
    let Ok(Message::MapReply(reply)) = Message::parse(&buf[..len]) else {
        panic!("expected a Map-Reply");
    };
    assert_eq!(reply.nonce, 9);
    let record = reply.records.get(0).unwrap();
    assert_eq!(record.eid.wireguard_key(), None);
    assert_eq!(record.locators.get(0).unwrap().rloc.ip(), Some(rloc));
}
