//! The agent's footprint: resident memory idle and with 1000 cached peers,
//! and wakeups per second when idle. `cargo bench -p agent --bench
//! footprint` (root; builds a lab as the tests do).

#[path = "../tests/e2e/mod.rs"]
mod e2e;

mod common;

use agent::engine::{Agent, Outbox};
use e2e::lab::Lab;
use lisp::{Action, Address, Algorithm, List, Locator, MapNotify, Record, Registration};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A field of /proc/PID/status, as a number (kB for sizes).
fn proc_status(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn switches(pid: &str) -> u64 {
    proc_status(pid, "voluntary_ctxt_switches:") + proc_status(pid, "nonvoluntary_ctxt_switches:")
}

/// The engine in this process, with `peers` pushed mappings installed:
/// the memory they take.
fn engine_with_peers(peers: u32) -> u64 {
    let now = Instant::now();
    let settings = common::site_a(4096);
    let before = proc_status("self", "VmRSS:");
    let mut agent = Agent::new(settings, now, fastrand::Rng::with_seed(1));
    let mut out = Outbox::default();
    for n in 0..peers {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&n.to_be_bytes());
        let eid = IpAddr::from([10, 2 + (n >> 16) as u8, (n >> 8) as u8, n as u8]);
        let endpoint = SocketAddr::from(([192, 0, 2, (n % 250) as u8 + 1], 51820));
        let locators = [Locator::reachable(Address::rloc(endpoint))];
        let records = [Record {
            locators: List::new(&locators),
            ..Record::negative(
                Address::eid(1000, eid, Some(&key)),
                32,
                15,
                Action::NO_ACTION,
            )
        }];
        let notify = MapNotify {
            body: Registration {
                nonce: u64::from(n),
                key_id: 0,
                algorithm: Algorithm::HmacSha256_128,
                records: List::new(&records),
                xtr: None,
            },
        };
        let mut buf = [0u8; 512];
        let len = notify.emit(&mut buf, b"key").unwrap();
        out.clear();
        agent.on_control(
            now,
            "100.64.0.1:4342".parse().unwrap(),
            &buf[..len],
            &mut out,
        );
    }
    let after = proc_status("self", "VmRSS:");
    assert_eq!(agent.status(now).peers.len(), peers as usize);
    (after - before) * 1024
}

fn main() {
    let per_1000 = engine_with_peers(1000);
    println!(
        "engine state for 1000 cached peers: {} kB ({} B per peer)",
        per_1000 / 1024,
        per_1000 / 1000
    );

    e2e::ECHO_LOGS.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut lab = Lab::new("fp");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    let pid = lab.agent("a").pid().to_string();
    println!(
        "agent process, idle after start: RSS {} kB (peak {} kB)",
        proc_status(&pid, "VmRSS:"),
        proc_status(&pid, "VmHWM:")
    );
    let a = lab.get("a").host.clone();
    assert_eq!(e2e::ping(&a, "10.2.0.2", 1).0, 1);
    println!(
        "agent process with one peer: RSS {} kB",
        proc_status(&pid, "VmRSS:")
    );
    let seconds = 20;
    let start = switches(&pid);
    std::thread::sleep(Duration::from_secs(seconds));
    let woke = switches(&pid) - start;
    println!(
        "idle: {woke} wakeups (context switches) in {seconds} s = {:.2} per second",
        woke as f64 / seconds as f64
    );
}
