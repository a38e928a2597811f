//! Relayed against direct throughput (issue 11: relayed at least 80 % of
//! direct): an `iperf3` TCP run between two sites' hosts, in two labs of
//! the same shape — two plain sites, the map-server with its relay — one
//! where the sites reach each other directly, one where the underlay
//! router drops UDP between them, so that their first contact ends on
//! the relay. Runs alternate between the labs. Each run also reports the
//! CPU time, over the run, of both sites' wireguard-go, the map-server
//! (and its relay thread alone), the iperf3 server, and the machine.
//!
//! While relayed, the agents try the direct path 10 s after the relay,
//! then at twice the wait: a failed try loses what a site sends in its
//! 20 ms, so relayed runs may count a burst of retransmits.
//!
//! `cargo bench -p agent --bench relay_throughput [-- SECONDS] [--data
//! FILE]` (root; iperf3 and the release binaries: `tests/bench/plots.sh
//! topologies`). `--data FILE` writes every run as TSV.

#[path = "../tests/e2e/mod.rs"]
mod e2e;
mod iperf3;
// Its command line.
#[allow(dead_code)]
mod nebula;

use e2e::lab::Lab;
use e2e::{cpu_seconds, Process};

/// Runs per path, alternating.
const ROUNDS: usize = 3;

/// A lab of two sites with a first contact made, and its iperf3 server.
struct Path {
    key: &'static str,
    /// First, so that it stops before the lab's namespaces go.
    server: Process,
    lab: Lab,
}

/// CPU seconds used so far: (wireguard-go of a, of b, the map-server, its
/// relay thread, the iperf3 server, the whole machine, the relay thread in
/// the kernel).
type Cpu = [f64; 7];

fn main() {
    let (_, data, seconds) = nebula::args(10u32);
    e2e::ECHO_LOGS.store(false, std::sync::atomic::Ordering::Relaxed);
    let paths = [path("direct", "rtd", false), path("relay", "rtr", true)];
    let mut tsv = String::from(
        "path\tround\ttcp_mbit_s\ttcp_retransmits\tseconds\tcpu_wg_a\tcpu_wg_b\tcpu_mapserver\tcpu_relay_thread\tcpu_iperf3_server\tcpu_machine\tcpu_relay_thread_system\trelayed_datagrams\n",
    );
    println!("iperf3 TCP between two sites' hosts, {seconds} s per run, runs alternating:");
    println!(
        "  {:<7} {:>5} {:>7} {:>11} | {:>5} s, CPU s: {:>5} {:>5} {:>10} {:>5} {:>7} {:>7} | {:>9} {:>5}",
        "path", "round", "Mbit/s", "retransmits", "wall", "wg a", "wg b", "map-server", "relay", "iperf3s", "machine", "relayed", "µs/dg"
    );
    let mut rates: [Vec<f64>; 2] = Default::default();
    // The relay thread's (CPU seconds, of which in the kernel, datagrams).
    let mut relay = (0.0, 0.0, 0.0);
    for round in 0..ROUNDS {
        for (k, p) in paths.iter().enumerate() {
            let (before, relayed_before) = (cpu(p), relayed(&p.lab));
            let start = std::time::Instant::now();
            let run = iperf3::iperf3(&p.lab.get("a").host, "10.2.0.2", seconds, &[]);
            let wall = start.elapsed().as_secs_f64();
            let (after, relayed_after) = (cpu(p), relayed(&p.lab));
            let used: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
            let datagrams = relayed_after - relayed_before;
            // The relay thread's CPU time per datagram it forwarded.
            let per_datagram = if datagrams > 0.0 {
                format!("{:.1}", used[3] * 1e6 / datagrams)
            } else {
                "-".into()
            };
            println!(
                "  {:<7} {:>5} {:>7.0} {:>11.0} | {:>5.1}           {:>5.2} {:>5.2} {:>10.2} {:>5.2} {:>7.2} {:>7.2} | {:>9.0} {:>5}",
                p.key, round, run.mbit_s, run.loss, wall, used[0], used[1], used[2], used[3], used[4], used[5], datagrams, per_datagram
            );
            tsv += &format!(
                "{}\t{round}\t{:.0}\t{:.0}\t{wall:.2}",
                p.key, run.mbit_s, run.loss
            );
            for u in &used {
                tsv += &format!("\t{u:.2}");
            }
            tsv += &format!("\t{datagrams:.0}\n");
            rates[k].push(run.mbit_s);
            relay = (relay.0 + used[3], relay.1 + used[6], relay.2 + datagrams);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (direct, relayed) = (mean(&rates[0]), mean(&rates[1]));
    println!(
        "  relayed / direct: {:.0} / {:.0} Mbit/s = {:.0} % (mean of {ROUNDS} runs each; target >= 80 %)",
        relayed,
        direct,
        100.0 * relayed / direct
    );
    println!(
        "  relay thread: {:.1} µs of CPU per datagram forwarded, {:.0} % of it in the kernel",
        relay.0 * 1e6 / relay.2.max(1.0),
        100.0 * relay.1 / relay.0.max(f64::MIN_POSITIVE)
    );
    println!(
        "  (CPU s over each run, {} cores; \"machine\": every process and interrupt, other users' too)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if let Some(file) = data {
        std::fs::write(&file, tsv).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

/// Two plain sites a and b and the relay; with `relayed`, direct UDP
/// between the sites is dropped. Their first contact made (checked to
/// have taken the expected path), an iperf3 server on b's host.
fn path(key: &'static str, tag: &str, relayed: bool) -> Path {
    let mut lab = Lab::new(tag);
    lab.enable_relay();
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    if relayed {
        lab.block_direct_paths();
    }
    let (received, text) = e2e::ping(&lab.get("a").host, "10.2.0.2", 1);
    assert_eq!(received, 1, "{key}: the first ping: {text}");
    let status = lab.status("a");
    assert_eq!(
        status.contains("\"endpoint\":\"172.31.1.2:400"),
        relayed,
        "{key}: b's endpoint: {status}"
    );
    let server = iperf3::server(&format!("iperf3 {key}"), &lab.get("b").host);
    Path { key, server, lab }
}

/// CPU seconds used so far by what moves a path's data.
fn cpu(p: &Path) -> Cpu {
    let interface = |node: &str| format!("lg{}{node}", p.lab.tag);
    let ms = p.lab.map_server().pid();
    let relay = thread(ms, "relay");
    [
        cpu_seconds(wireguard_go(&interface("a"))),
        cpu_seconds(wireguard_go(&interface("b"))),
        cpu_seconds(ms),
        cpu_seconds(relay),
        cpu_seconds(p.server.pid()),
        machine_cpu_seconds(),
        system_cpu_seconds(relay),
    ]
}

/// The pid of the wireguard-go that serves `interface` (it daemonises:
/// not a child of the agent's process).
fn wireguard_go(interface: &str) -> u32 {
    let wanted = format!("wireguard-go\0{interface}\0");
    processes()
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.ends_with(wanted.as_bytes()))
        })
        .unwrap_or_else(|| panic!("no wireguard-go for {interface}"))
}

/// The id of `pid`'s thread named `name` (/proc/ID/stat reads a thread
/// as it reads a process).
fn thread(pid: u32, name: &str) -> u32 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .find(|tid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                .is_ok_and(|c| c.trim() == name)
        })
        .unwrap_or_else(|| panic!("no thread {name} in {pid}"))
}

fn processes() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
}

/// CPU seconds the whole machine spent busy (not idle, not waiting for
/// I/O), every core summed: the first line of /proc/stat.
fn machine_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...; guest time is
    // counted in user already.
    let busy: f64 = ticks.iter().take(8).sum::<f64>()
        - ticks.get(3).copied().unwrap_or(0.0)
        - ticks.get(4).copied().unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    busy / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Datagrams the lab's relay forwarded so far (its map-server's metrics).
fn relayed(lab: &Lab) -> f64 {
    let metrics = lab.ms_metrics();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("lispguard_relay_forwarded_packets_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no relayed datagrams in:\n{metrics}"))
}

/// CPU seconds a process or thread has spent in the kernel (stime, the
/// 15th field of /proc/ID/stat).
fn system_cpu_seconds(id: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{id}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after
        .split_whitespace()
        .nth(12)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}
