//! Tunnel setup time: host A pings host B across two xTR sites with cold
//! caches (both agents freshly started), many times; the first ping's
//! round trip is the whole setup — miss, Map-Request, Map-Reply and push,
//! peers and routes on both sides, WireGuard handshake — plus the ping.
//! `cargo bench -p agent --bench setup [-- TRIALS]` (root; as the tests).

#[path = "../tests/e2e/mod.rs"]
mod e2e;

use e2e::lab::Lab;

fn main() {
    let trials: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let mut lab = Lab::new("bs");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    let host = lab.get("a").host.clone();
    let mut times = Vec::new();
    let mut lost = 0;
    for trial in 0..trials {
        if trial > 0 {
            lab.restart_agents();
        }
        let (received, text) = e2e::ping(&host, "10.2.0.2", 1);
        let rtt = text
            .lines()
            .find_map(|l| l.split("time=").nth(1))
            .and_then(|t| t.trim_end_matches(" ms").parse::<f64>().ok());
        match (received, rtt) {
            (1, Some(ms)) => times.push(ms),
            _ => lost += 1,
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |p: f64| {
        times
            .get(((times.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!("first-packet round trip with cold caches, {trials} trials:");
    println!(
        "  p50 {:.2} ms, p99 {:.2} ms, min {:.2} ms, max {:.2} ms",
        at(0.5),
        at(0.99),
        at(0.0),
        at(1.0)
    );
    println!("  first pings lost: {lost}");
    // For comparison: a warm tunnel.
    let (_, text) = e2e::ping(&host, "10.2.0.2", 20);
    if let Some(summary) = text.lines().find(|l| l.starts_with("rtt")) {
        println!("  warm tunnel: {summary}");
    }
}
