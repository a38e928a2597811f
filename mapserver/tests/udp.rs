//! The map-server over real UDP on loopback: two sites' agents register,
//! one resolves the other, the push reaches the destination and is sent
//! again until acknowledged.

mod common;

use common::{config, request, TestSite, A, B};
use lisp::{auth, MapNotify, Message};
use mapserver::engine::MapServer;
use mapserver::metrics::Metrics;
use mapserver::server::Server;
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
    fn new(site: TestSite, server: SocketAddr) -> Agent {
        let socket = UdpSocket::bind(site.control_socket(NET)).unwrap();
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
        let notify = self.receive();
        auth::verify(&notify, self.site.key).unwrap();
        assert_eq!(MapNotify::parse(&notify).unwrap().body.nonce, 3);
    }
}

#[test]
fn register_resolve_and_push_over_udp() {
    let metrics = Arc::new(Metrics::default());
    let config = config(NET, &[&A, &B], "rate_limit = 0");
    let engine = MapServer::new(&config, metrics.clone(), Instant::now());
    let server = Server::start(engine, "127.1.0.1:0".parse().unwrap(), 2, None).unwrap();
    let a = Agent::new(A, server.local_addr());
    let b = Agent::new(B, server.local_addr());
    a.register("192.0.2.10:51820");
    b.register("192.0.2.11:51820");

    a.send(&request(42, "[1000] 10.2.0.9/32"));
    let Message::MapReply(reply) = Message::parse(&a.receive()).unwrap() else {
        panic!("expected a Map-Reply");
    };
    assert_eq!(reply.nonce, 42);
    assert_eq!(reply.records[0].eid.wireguard_key(), Some(B.public_key));

    // b does not answer the push at first: it comes again, unchanged.
    let push = b.receive();
    assert_eq!(
        MapNotify::parse(&push).unwrap().body.records[0]
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
            Message::MapNotify(n) => assert_eq!(n, MapNotify::parse(&push).unwrap()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(metrics.notifies_acked.load(Relaxed), 1);
    assert!(metrics.notifies_retransmitted.load(Relaxed) >= 1);
    assert_eq!(metrics.map_requests.load(Relaxed), 2);
}
