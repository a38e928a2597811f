//! The lispguard demo: a map-server, two sites with a host behind each,
//! and a robot, each in its network namespace with WireGuard by
//! wireguard-go. Host A pings host B, then the robot pings host B, caches
//! cold; the demo prints what happened when, and the peers each side ended
//! with. Run it with `bash demo/run.sh` (root); it cleans up after itself.

#[path = "../tests/e2e/mod.rs"]
mod e2e;

use e2e::lab::Lab;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// "HH:MM:SS.uuuuuu LEVEL message": the time in µs since midnight, and
/// the message.
fn stamp(line: &str) -> Option<(i64, &str)> {
    let (time, rest) = line.split_once(' ')?;
    let mut parts = time.split([':', '.']).map(|p| p.parse::<i64>().ok());
    let (h, m, s, us) = (
        parts.next()??,
        parts.next()??,
        parts.next()??,
        parts.next()??,
    );
    let message = rest
        .trim_start()
        .split_once(' ')
        .map_or(rest, |(_, m)| m.trim_start());
    Some((((h * 60 + m) * 60 + s) * 1_000_000 + us, message))
}

/// The log lines every process wrote since the last call.
fn logs(lab: &Lab) -> Vec<(i64, String, String)> {
    let mut lines = Vec::new();
    // The lines of the last events are still on their way from the pipes.
    let mut quiet = false;
    while !quiet {
        quiet = true;
        for p in &lab.processes {
            while let Ok(line) = p.log.recv_timeout(Duration::from_millis(20)) {
                quiet = false;
                if let Some((at, message)) = stamp(&line) {
                    lines.push((at, p.name.clone(), message.to_string()));
                }
            }
        }
    }
    lines
}

/// Plays one first contact and prints its timeline; whether it went as
/// it should (the miss seen, the first ping answered).
fn scene(lab: &Lab, title: &str, from_ns: &str, node: &str, to: &str) -> bool {
    println!("\n== {title}, caches cold ==\n");
    logs(lab);
    let (received, text) = e2e::ping(from_ns, to, 1);
    let reply = text
        .lines()
        .find(|l| l.contains("bytes from"))
        .unwrap_or("no reply");
    println!("  ping: {reply}");
    let rtt: f64 = reply
        .split("time=")
        .nth(1)
        .and_then(|t| t.trim_end_matches(" ms").parse().ok())
        .unwrap_or(0.0);
    let mut events = logs(lab);
    // Time 0: the first packet reaches the agent (its miss), microseconds
    // after ping sent it.
    let agent = format!("agent {node}");
    let Some(start) = events
        .iter()
        .find(|(_, who, what)| *who == agent && what.starts_with("miss"))
        .map(|(at, _, _)| *at)
    else {
        println!("  (no miss logged: was the cache warm?)");
        return false;
    };
    events.retain(|(at, _, _)| *at >= start);
    // The queued packet goes into WireGuard right after the agent set its
    // peer, and starts the handshake.
    let queued = events
        .iter()
        .position(|(_, who, what)| *who == agent && what.contains("queued packets"));
    let peer_set = queued.and_then(|q| {
        events[q..]
            .iter()
            .find(|(_, who, what)| *who == agent && what.starts_with("peer "))
    });
    if let Some(&(at, _, _)) = peer_set {
        events.push((
            at + 1,
            "WireGuard".into(),
            "handshake initiated towards the new peer (the queued packet waits in it)".into(),
        ));
    }
    if received == 1 {
        let at = start + (rtt * 1000.0).round() as i64;
        events.push((
            at,
            "ping".into(),
            format!("first reply: {rtt} ms after the first packet (handshake done, nothing lost)"),
        ));
    }
    events.sort_by_key(|(at, _, _)| *at);
    println!("\n  {:>6}  {:<11} what", "ms", "who");
    for (at, who, message) in events {
        let ms = (at - start) as f64 / 1000.0;
        println!("  {ms:>6.2}  {who:<11} {message}");
    }
    received == 1
}

fn main() {
    e2e::ECHO_LOGS.store(false, Ordering::Relaxed);
    println!("lispguard demo: a map-server, site A (10.1.0.0/24, host 10.1.0.2), site B");
    println!("(10.2.0.0/24, host 10.2.0.2) and a robot (10.8.0.7), each in a network");
    println!("namespace behind an underlay router; WireGuard by wireguard-go.");
    let mut lab = Lab::new("demo");
    lab.agent_log_level = "debug";
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.node("r", 1000, "10.8.0.7/32");
    lab.start();
    println!("\nmap-server and agents up; every agent registered.");
    let (a, r) = (lab.get("a").host.clone(), lab.get("r").ns.clone());
    let played = [
        scene(&lab, "host A pings host B", &a, "a", "10.2.0.2"),
        scene(&lab, "the robot pings host B", &r, "r", "10.2.0.2"),
    ];
    for (node, what) in [("a", "site A"), ("b", "site B"), ("r", "the robot")] {
        println!("\n== the peers of {what} (lispguard status) ==\n");
        let socket = lab.ns.dir.join(format!("{node}.sock"));
        let out = e2e::exec(
            &lab.get(node).ns,
            &[
                &e2e::binary("lispguard"),
                "status",
                "-s",
                &socket.to_string_lossy(),
            ],
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            println!("  {line}");
        }
    }
    println!("\nDone; removing the namespaces.");
    if played.contains(&false) {
        drop(lab);
        eprintln!("demo: a first contact did not go as it should (see above)");
        std::process::exit(1);
    }
}
