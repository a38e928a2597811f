//! First contact per topology (issue 11): two sites behind masquerading
//! NATs (direct), behind NATs that change ports (relayed at once), with
//! direct UDP dropped by the underlay router (relayed after the direct
//! handshakes failed), on an IPv6-only underlay with IPv6 EIDs, and two
//! plain sites (the baseline). One lab per topology, all with the relay
//! configured; trials interleaved in one run.
//!
//! Each trial is cold everywhere: the agents and the map-server are
//! stopped, the NATs' connection tracking flushed, the map-server and the
//! agents started again (registered), then one `ping -c1 -W 5` from one
//! site's host to the other's. The map-server's restart matters for the
//! relayed ones: warm, it would keep the pair's relay ports (90 s idle)
//! and remember a failed direct pair for 10 minutes, so that every trial
//! after the first with direct UDP dropped would be relayed at once
//! instead of after the escalation. The path the first contact took
//! (direct, or the relay) is read from the requester's status.
//!
//! `cargo bench -p agent --bench topologies [-- TRIALS] [--data FILE]`
//! (root; conntrack, and the release binaries: `tests/bench/plots.sh
//! topologies`). `--data FILE` also writes every trial as TSV (topology,
//! trial, ms, lost, path).

#[path = "../tests/e2e/mod.rs"]
mod e2e;
// Its command line.
#[allow(dead_code)]
mod nebula;

use e2e::lab::Lab;

/// One topology's lab and what a trial pings.
struct Topology {
    /// Key in the data file.
    key: &'static str,
    name: &'static str,
    lab: Lab,
    /// The requester's node and the namespace its ping starts from.
    node: &'static str,
    from: String,
    to: &'static str,
    /// The relay's locator as the requester's status shows an endpoint
    /// there.
    relay: &'static str,
}

fn main() {
    let (_, data, trials) = nebula::args(20usize);
    e2e::ECHO_LOGS.store(false, std::sync::atomic::Ordering::Relaxed);
    let conntrack = std::process::Command::new("conntrack")
        .arg("--version")
        .output();
    assert!(
        conntrack.is_ok_and(|out| out.status.success()),
        "conntrack (Debian package conntrack) flushes the NATs between trials"
    );
    let mut topologies = [
        topology("nat", "behind masquerading NATs", "tpn", |lab| {
            lab.node_behind_nat("a", 1000, "10.1.0.0/24");
            lab.node_behind_nat("b", 1000, "10.2.0.0/24");
        }),
        topology("nat-random", "behind port-changing NATs", "tpr", |lab| {
            lab.node_behind_port_changing_nat("a", 1000, "10.1.0.0/24");
            lab.node_behind_port_changing_nat("b", 1000, "10.2.0.0/24");
        }),
        topology("blocked", "direct UDP dropped", "tpx", |lab| {
            lab.node("a", 1000, "10.1.0.0/24");
            lab.node("b", 1000, "10.2.0.0/24");
            lab.block_direct_paths();
        }),
        ipv6(),
        topology("plain", "plain sites (baseline)", "tpp", |lab| {
            lab.node("a", 1000, "10.1.0.0/24");
            lab.node("b", 1000, "10.2.0.0/24");
        }),
    ];
    // (topology, trial, round trip or None: lost, relayed)
    let mut rows: Vec<(usize, usize, Option<f64>, bool)> = Vec::new();
    for trial in 0..trials {
        // Each topology first in turn.
        for k in 0..topologies.len() {
            let t = (k + trial) % topologies.len();
            let topology = &mut topologies[t];
            restart_cold(&mut topology.lab);
            let (received, text) = e2e::ping(&topology.from, topology.to, 1);
            let ms = (received == 1).then(|| e2e::rtt_ms(&text)).flatten();
            let status = topology.lab.status(topology.node);
            let relayed = status.contains(&format!("\"endpoint\":\"{}", topology.relay));
            rows.push((t, trial, ms, relayed));
        }
    }
    if let Some(file) = data {
        let mut tsv = String::from("topology\ttrial\tms\tlost\tpath\n");
        for &(t, trial, ms, relayed) in &rows {
            let ms = ms.map_or(String::new(), |ms| format!("{ms:.3}"));
            let lost = u8::from(ms.is_empty());
            let path = if relayed { "relay" } else { "direct" };
            tsv += &format!("{}\t{trial}\t{ms}\t{lost}\t{path}\n", topologies[t].key);
        }
        std::fs::write(&file, tsv).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    println!("first ping between cold sites per topology, {trials} interleaved trials each (ms):");
    println!(
        "  {:<30} {:>8} {:>8} {:>8}  {:>5}  {:>7}",
        "", "p50", "p99", "max", "lost", "relayed"
    );
    for (t, topology) in topologies.iter().enumerate() {
        let mine = rows.iter().filter(|r| r.0 == t);
        let mut times: Vec<f64> = mine.clone().filter_map(|r| r.2).collect();
        times.sort_by(f64::total_cmp);
        let lost = mine.clone().filter(|r| r.2.is_none()).count();
        let relayed = mine.filter(|r| r.3).count();
        println!(
            "  {:<30} {:>8.2} {:>8.2} {:>8.2}  {:>2}/{:<2}  {:>3}/{:<3}",
            topology.name,
            at(&times, 0.5),
            at(&times, 0.99),
            at(&times, 1.0),
            lost,
            trials,
            relayed,
            trials
        );
    }
}

/// An IPv4 topology of two sites, a and b: a's host pings b's.
fn topology(
    key: &'static str,
    name: &'static str,
    tag: &str,
    build: impl FnOnce(&mut Lab),
) -> Topology {
    let mut lab = Lab::new(tag);
    lab.enable_relay();
    build(&mut lab);
    lab.start();
    let from = lab.get("a").host.clone();
    Topology {
        key,
        name,
        lab,
        node: "a",
        from,
        to: "10.2.0.2",
        relay: "172.31.1.2:400",
    }
}

/// An IPv6-only underlay with IPv6 EIDs: a robot's /128 pings a host of a
/// site's /64.
fn ipv6() -> Topology {
    let mut lab = Lab::ipv6_underlay("tp6");
    lab.enable_relay();
    lab.node("r", 1000, "fd00:9::1/128");
    lab.node("s", 1000, "fd00:2::/64");
    lab.start();
    let from = lab.get("r").ns.clone();
    Topology {
        key: "ipv6",
        name: "IPv6 underlay, IPv6 EIDs",
        lab,
        node: "r",
        from,
        to: "fd00:2::2",
        relay: "[fd31:1::2]:400",
    }
}

/// Stops the agents and the map-server, forgets every NAT binding, starts
/// the map-server and the agents again: nothing of the last trial left.
fn restart_cold(lab: &mut Lab) {
    lab.processes.truncate(1);
    lab.stop_map_server(libc::SIGTERM);
    for nat in lab.nodes.iter().filter_map(|n| n.nat.as_ref()) {
        // Exits 1 when there was nothing to flush.
        e2e::exec(nat, &["conntrack", "-F"]);
    }
    lab.restart_map_server();
    lab.restart_agents();
}

/// The `p` quantile of sorted `times` (nearest rank).
fn at(times: &[f64], p: f64) -> f64 {
    let last = times.len().max(1) - 1;
    times
        .get((last as f64 * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}
