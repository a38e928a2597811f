//! The agent's memory against its number of peers: resident memory
//! (VmRSS, and its peak VmHWM, from /proc) of one mobile node's agent
//! process with 0, 10, 100 and 1000 peers, and of its wireguard-go beside
//! it, separately.
//!
//! A peer here is what a first contact leaves in the agent: a WireGuard
//! peer (key, endpoint, allowed IP), a /32 route to it through the
//! WireGuard interface and a resolved map-cache entry. The destinations
//! are static mappings the map-server serves from a mappings file: 1000
//! keys, each at an endpoint in 198.18.0.0/15 that nobody answers (a peer
//! is set up whether or not its handshake completes; wireguard-go keeps
//! trying). The node contacts them with one UDP datagram each, paced
//! under its Map-Request budget for one source (32 new destinations per
//! second), and each count is read once the agent has logged that many
//! peers.
//!
//! `cargo bench -p agent --bench memory [-- MAX] [--data FILE]` (root;
//! the release binaries: `tests/bench/plots.sh` builds them). `--data
//! FILE` writes the table as TSV.

#[path = "../tests/e2e/mod.rs"]
mod e2e;
// Only its command line (`args`) is used here.
#[allow(dead_code)]
mod nebula;

use e2e::lab::Lab;
use std::collections::HashSet;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

/// New destinations contacted per second: under the agent's budget for
/// one inner source (`agent/src/budget.rs`, 32 per second).
const PER_SECOND: u32 = 25;

fn main() {
    let (_, data, max) = nebula::args(1000u32);
    e2e::ECHO_LOGS.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut lab = Lab::new("mem");
    lab.node("m", 1000, "10.9.0.1/32");
    let mappings: String = (0..max)
        .map(|k| {
            let key = netconf::public_key(&netconf::generate_private_key());
            format!(
                "[1000] {}/32 {} 198.18.{}.{}:51820\n",
                destination(k),
                netconf::format_key(&key),
                k >> 8,
                k & 0xff
            )
        })
        .collect();
    lab.mappings_file = Some(lab.ns.file("mappings.txt", &mappings));
    lab.start();
    let agent = lab.agent("m").pid();
    let wireguard = wireguard_go(&format!("lg{}m", lab.tag));
    let socket = e2e::in_namespace(&lab.get("m").ns, || UdpSocket::bind("0.0.0.0:0"))
        .expect("the node's socket");

    let mut tsv = String::from("peers\tagent_rss_kb\tagent_hwm_kb\twg_rss_kb\twg_hwm_kb\n");
    println!("resident memory of one node's processes (kB), by its number of peers:");
    println!(
        "  {:>6} {:>10} {:>10} {:>14} {:>14}",
        "peers", "agent RSS", "agent peak", "wireguard-go", "wg-go peak"
    );
    let mut installed = HashSet::new();
    let mut contacted = 0;
    for peers in [0, 10, 100, 1000].into_iter().filter(|p| *p <= max) {
        let start = Instant::now();
        for k in contacted..peers {
            let due =
                start + Duration::from_secs_f64(f64::from(k - contacted) / f64::from(PER_SECOND));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            // Lost on its way or not, the miss is what sets the peer up.
            let _ = socket.send_to(b"hello", (destination(k), 9));
        }
        contacted = peers;
        await_peers(&lab, &mut installed, peers as usize);
        let row = [
            status(agent, "VmRSS:"),
            status(agent, "VmHWM:"),
            status(wireguard, "VmRSS:"),
            status(wireguard, "VmHWM:"),
        ];
        println!(
            "  {:>6} {:>10} {:>10} {:>14} {:>14}",
            peers, row[0], row[1], row[2], row[3]
        );
        tsv += &format!("{peers}\t{}\t{}\t{}\t{}\n", row[0], row[1], row[2], row[3]);
    }
    let status = lab.status("m");
    println!(
        "  (peers in `lispguard status`: {}; refused packets: {})",
        status.matches("\"public_key\":").count(),
        lab.status_counter("m", "refused_packets")
    );
    if let Some(file) = data {
        std::fs::write(&file, tsv).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

/// The `k`th destination: 10.100.0.1 on, 250 per /24.
fn destination(k: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, (k / 250) as u8, (k % 250 + 1) as u8)
}

/// Waits until the agent has logged a peer for `count` distinct
/// prefixes (its "peer KEY at ENDPOINT for [PREFIX]" lines).
fn await_peers(lab: &Lab, installed: &mut HashSet<String>, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while installed.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lab
            .agent("m")
            .log
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{} of {count} peers set up", installed.len()));
        if let Some((_, prefixes)) = line.split_once(" for [") {
            if line.contains("INFO  peer ") {
                installed.insert(prefixes.split(']').next().unwrap_or_default().to_string());
            }
        }
    }
}

/// A size field of /proc/PID/status, in kB.
fn status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The pid of the wireguard-go process that runs `interface` (it runs
/// detached from the agent that started it).
fn wireguard_go(interface: &str) -> u32 {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let mut args = cmdline.split(|b| *b == 0);
            let program = args.next()?;
            (program.ends_with(b"wireguard-go") && args.next()? == interface.as_bytes())
                .then_some(pid)
        })
        .next()
        .unwrap_or_else(|| panic!("no wireguard-go for {interface}"))
}
