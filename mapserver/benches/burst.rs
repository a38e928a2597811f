//! Bursts: N Map-Requests sent back to back (within the site's rate
//! allowance) to a map-server on loopback; how many were answered, and how
//! many the kernel dropped for want of receive-buffer room (the metric
//! `lispguard_receive_dropped_total`).
//! `cargo bench -p mapserver --bench burst [-- N...]` (default 500 1000 1900)

#[path = "../tests/common/mod.rs"]
mod common;

use common::{config, request, A, B};
use lisp::Message;
use mapserver::db::{Locators, Mapping, Rloc};
use mapserver::engine::MapServer;
use mapserver::metrics::Metrics;
use mapserver::server::Server;
use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NET: u8 = 3;
const EIDS: u32 = 1000;

fn mapping(i: u32, now: Instant) -> Mapping {
    let rlocs = Locators::from_elem(
        Rloc {
            address: SocketAddr::from(([192, 0, 2, 1], 51820)),
            priority: 1,
            weight: 100,
        },
        1,
    );
    Mapping {
        site: None,
        eid: format!("[1000] 10.0.{}.{}/32", i / 250, i % 250 + 1)
            .parse()
            .unwrap(),
        key: Some(B.public_key),
        rlocs,
        ttl: 15,
        registered: now,
        expires: None,
    }
}

/// One burst of `n` requests; (answered, dropped by the kernel).
fn burst(n: u32) -> (u32, u64) {
    let metrics = Arc::new(Metrics::default());
    // The default rate limit (1000/s, a burst of 2000) allows every burst.
    let cfg = config(NET, &[&A, &B], "");
    let now = Instant::now();
    let mut engine = MapServer::new(&cfg, metrics.clone(), now, fastrand::Rng::with_seed(1));
    for i in 0..EIDS {
        engine.insert_mapping(mapping(i, now));
    }
    let server = Server::start(
        engine,
        SocketAddr::from(([127, NET, 0, 1], 0)),
        1,
        Default::default(),
    )
    .unwrap();
    // The client's own buffer is large, so that what is lost is lost at
    // the server.
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
    socket.set_recv_buffer_size(8 << 20).unwrap();
    socket
        .bind(&SocketAddr::new(A.control_address(NET), 0).into())
        .unwrap();
    let socket: UdpSocket = socket.into();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    for i in 0..n {
        let msg = request(
            u64::from(i),
            &format!("[1000] 10.0.{}.{}/32", i / 250 % 4, i % 250 + 1),
        );
        socket.send_to(&msg, server.local_addr()).unwrap();
    }
    let mut answered = 0;
    let mut buf = [0u8; 4096];
    while let Ok((len, _)) = socket.recv_from(&mut buf) {
        if let Ok(Message::MapReply(_)) = Message::parse(&buf[..len]) {
            answered += 1;
        }
    }
    drop(server);
    (answered, metrics.receive_dropped.load(Relaxed))
}

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![500, 1000, 1900]
    } else {
        sizes
    };
    println!("burst  answered  lost   kernel drops counted");
    for n in sizes {
        let (answered, dropped) = burst(n);
        let lost = n - answered;
        println!(
            "{n:>5}  {answered:>8}  {lost:>4} ({:.1} %)  {dropped}",
            100.0 * f64::from(lost) / f64::from(n)
        );
    }
}
