//! Engine time per new destination as the map-cache fills: a miss
//! (Map-Request out), its negative Map-Reply, and a poll, with 100 to
//! 4000 entries cached. With the deadline index it should not grow with
//! the cache. `cargo bench -p agent --bench misses` (no network).

mod common;

use agent::engine::{Agent, Effect, Outbox};
use lisp::{Action, Address, List, MapReply, Message, Record};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

const CAPACITY: usize = 4096;

fn agent(now: Instant) -> Agent {
    let settings = common::site_a(CAPACITY);
    Agent::new(settings, now, fastrand::Rng::with_seed(1))
}

/// One new destination, answered negatively: the time it took.
fn miss(agent: &mut Agent, now: Instant, n: u32) -> Duration {
    let ms: SocketAddr = "100.64.0.1:4342".parse().unwrap();
    let destination = IpAddr::V4(Ipv4Addr::from(0x0a64_0000 + n));
    // Many hosts, so that no per-source limit bites.
    let source = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + n % 200 + 10));
    let begin = Instant::now();
    let mut out = Outbox::default();
    agent.on_packet(now, source, destination, &[0; 60], &mut out);
    agent.poll(now, &mut out);
    let nonce = out.actions().iter().find_map(|a| match a {
        Effect::Control { message, .. } => match Message::parse(out.bytes(*message)) {
            Ok(Message::MapRequest(r)) => Some(r.nonce),
            _ => None,
        },
        _ => None,
    });
    let mut elapsed = begin.elapsed();
    if let Some(nonce) = nonce {
        let eid = Address::eid(1000, destination, None);
        let records = [Record::negative(eid, 32, 60, Action::DROP_NO_REASON)];
        let reply = MapReply {
            nonce,
            records: List::new(&records),
            ..MapReply::default()
        };
        let mut buf = vec![0; 512];
        let len = reply.emit(&mut buf).unwrap_or(0);
        out.clear();
        let begin = Instant::now();
        agent.on_control(now, ms, &buf[..len], &mut out);
        elapsed += begin.elapsed();
    }
    elapsed
}

fn main() {
    let mut now = Instant::now();
    let mut agent = agent(now);
    let mut n = 0;
    println!("cached entries | engine time per new destination (mean of 500)");
    for target in [500, 1000, 1400, 2000, 3000, 4000usize] {
        while (n as usize) < target.saturating_sub(500) {
            miss(&mut agent, now, n);
            n += 1;
            now += Duration::from_millis(5);
        }
        let mut total = Duration::ZERO;
        for _ in 0..500 {
            total += miss(&mut agent, now, n);
            n += 1;
            now += Duration::from_millis(5);
        }
        println!(
            "{:>14} | {:.1} µs",
            agent.status(now).negative,
            total.as_secs_f64() * 1e6 / 500.0
        );
    }
}
