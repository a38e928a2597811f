//! A scan from one host and first contacts from another, behind the same
//! xTR: one host of site A sends UDP to 10,000 unregistered overlay
//! addresses at 1000/s while another host of A pings 20 destinations A
//! has no cache entry for (4 sites x 5 EID-Prefixes). Reports the
//! contacts' first-reply times (p50/p99, and how many failed), the
//! agent's CPU seconds over the scan (/proc/PID/stat), the Map-Requests
//! it sent and the log lines it wrote.
//! `cargo build --profile bench --bins && cargo bench -p agent --bench scan`
//! (root; as the tests).

#[path = "../tests/e2e/mod.rs"]
mod e2e;

use e2e::lab::Lab;
use e2e::{cpu_seconds, ping, rtt_ms, scan};
use std::sync::atomic::Ordering;

fn main() {
    e2e::ECHO_LOGS.store(false, Ordering::Relaxed);
    let (mut lab, destinations, scanner) = Lab::for_a_scan("bsc");
    lab.start();
    let host = lab.get("a").host.clone();
    let agent = lab.agent("a");
    let _ = agent.log.try_iter().count();
    let pid = agent.pid();
    let requests_before = lab.status_counter("a", "map_requests");
    let cpu_before = cpu_seconds(pid);
    let begin = std::time::Instant::now();

    let (started, under_way) = std::sync::mpsc::channel();
    let scanning = scan(&scanner, 10_000, 1000, started);
    let _ = under_way.recv();
    let mut times = Vec::new();
    let mut failed = 0;
    for to in &destinations {
        let (received, text) = ping(&host, to, 1);
        match (received, rtt_ms(&text)) {
            (1, Some(ms)) => times.push(ms),
            _ => failed += 1,
        }
    }
    let sent = scanning.join().unwrap_or(0);
    let scan_time = begin.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let requests = lab.status_counter("a", "map_requests") - requests_before;
    let log_lines = lab.agent("a").log.try_iter().count();

    times.sort_by(f64::total_cmp);
    let at = |p: f64| {
        times
            .get(((times.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!("scan: {sent} datagrams in {scan_time:.1} s from one host behind site A");
    println!(
        "first contacts from another host: {} of {} answered, first reply p50 {:.1} ms, p99 {:.1} ms",
        times.len(),
        destinations.len(),
        at(0.5),
        at(0.99)
    );
    println!("agent CPU over the scan: {cpu:.2} s");
    println!("Map-Requests sent: {requests}");
    println!("agent log lines written: {log_lines}");
    if failed > 0 {
        println!("failed contacts: {failed}");
    }
}
