//! Handover delay, as the ICCCN 2021 paper measured it: two mobile nodes
//! (m and n) with their peer established, m probing n at 10 per ms while
//! n changes its underlay address (another one on its link to the
//! router, as a robot that changes access point gets). Per handover: the
//! longest time without replies, from the last reply before the move to
//! the first reply after it. Then the double jump: both nodes move at the
//! same moment, so neither knows where the other went; each re-registers
//! and the map-server pushes the new RLOC to the other.
//!
//! Each kind twice: break before make (the old address removed, then the
//! new one added, as `agent/tests/sites.rs` moves a node) and make before
//! break (the new address first).
//!
//! The probes are UDP datagrams sent every 0.1 ms by this program from
//! m's namespace to an echo thread in n's, not `ping -i 0.0001`: iputils
//! ping takes an interval under 1 ms as "as fast as the replies come",
//! one probe in flight (3.4 per ms here), not 10 per ms. They cross the
//! same WireGuard tunnel an ICMP echo would.
//!
//! `cargo bench -p agent --bench handover [-- TRIALS] [--data FILE]`
//! (root; the release binaries: `tests/bench/plots.sh` builds them).
//! `--data FILE` writes every trial as TSV (kind, trial, ms, lost). A
//! handover not recovered within [`GIVE_UP`] is counted as lost.
//! `--logs` prints the daemons' logs (where the time goes).

#[path = "../tests/e2e/mod.rs"]
mod e2e;
// Only its command line (`args`) is used here.
#[allow(dead_code)]
mod nebula;

use e2e::lab::Lab;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a trial waits for replies to come back before it counts the
/// handover as lost.
const GIVE_UP: Duration = Duration::from_secs(30);
/// Replies received this long after the move can no longer be ones that
/// were on their way before it (a round trip here is under 1 ms): the
/// first of them ends the trial's window.
const IN_FLIGHT: Duration = Duration::from_millis(100);
/// Replies that show the flow is steady before a move: 0.1 s of them.
const STEADY: usize = 1000;
/// The probes' spacing: 10 per ms, as the paper's.
const PROBE_EVERY: Duration = Duration::from_micros(100);
/// Where the target's echo listens.
const ECHO_PORT: u16 = 9000;

/// The prober and the node that moves in a single handover; both move in
/// a double jump.
const PROBER: &str = "m";
const TARGET: &str = "n";
const TARGET_EID: &str = "10.9.0.2";

fn main() {
    let (args, data, trials) = nebula::args(20usize);
    let logs = args.iter().any(|a| a == "--logs");
    e2e::ECHO_LOGS.store(logs, Ordering::Relaxed);
    let mut lab = Lab::new("ho");
    lab.node(PROBER, 1000, "10.9.0.1/32");
    lab.node(TARGET, 1000, "10.9.0.2/32");
    lab.start();
    let (received, text) = e2e::ping(&lab.get(PROBER).ns, TARGET_EID, 1);
    assert_eq!(received, 1, "the first contact: {text}");
    echo(&lab.get(TARGET).ns);
    let mut hosts = Hosts::default();
    // A new address added before the old one goes is a secondary of the
    // same subnet: kept, not deleted with the old one.
    for name in [PROBER, TARGET] {
        e2e::sysctl(
            &lab.get(name).ns,
            "net.ipv4.conf.u0.promote_secondaries",
            "1",
        );
    }
    let (single, double) = (&[TARGET][..], &[PROBER, TARGET][..]);
    let kinds = [
        ("single, break before make", "single", (single, false)),
        ("double jump, break before make", "double", (double, false)),
        ("single, make before break", "single-mbb", (single, true)),
        (
            "double jump, make before break",
            "double-mbb",
            (double, true),
        ),
    ];
    let mut tsv = String::from("kind\ttrial\tms\tlost\n");
    // Probes sent per ms in each trial.
    let mut rates = Vec::new();
    println!("time without replies, m probing n every 0.1 ms, {trials} handovers each (ms):");
    println!(
        "  {:<31} {:>8} {:>8} {:>8} {:>8}  {:>5}",
        "", "p50", "p90", "max", "mean", "lost"
    );
    for (name, key, kind) in kinds {
        let mut times = Vec::new();
        for trial in 0..trials {
            let outage = handover(&lab, &mut hosts, kind, &mut rates);
            match outage {
                Some(ms) => {
                    times.push(ms);
                    tsv += &format!("{key}\t{trial}\t{ms:.3}\t0\n");
                }
                None => tsv += &format!("{key}\t{trial}\t\t1\n"),
            }
        }
        times.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let last = times.len().max(1) - 1;
            times
                .get((last as f64 * p).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
        println!(
            "  {:<31} {:>8.1} {:>8.1} {:>8.1} {:>8.1}  {:>2}/{:<2}",
            name,
            at(0.5),
            at(0.9),
            at(1.0),
            mean,
            trials - times.len(),
            trials
        );
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "  (lost: no reply within {} s; probes sent per ms: p50 {:.1}, min {:.1})",
        GIVE_UP.as_secs(),
        rates.get(rates.len() / 2).copied().unwrap_or(f64::NAN),
        rates.first().copied().unwrap_or(f64::NAN),
    );
    if let Some(file) = data {
        std::fs::write(&file, tsv).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

/// The last byte of each node's underlay address, 172.31.N.X: each move
/// takes the next one.
#[derive(Default)]
struct Hosts(std::collections::HashMap<String, u8>);

impl Hosts {
    /// The node's address now and the one it moves to.
    fn next(&mut self, lab: &Lab, name: &str) -> (String, String) {
        let rloc = &lab.get(name).rloc;
        let net = rloc.rsplit_once('.').expect("an IPv4 RLOC").0;
        let host = self.0.entry(name.to_string()).or_insert(2);
        let from = format!("{net}.{host}");
        *host += 1;
        (from, format!("{net}.{host}"))
    }
}

/// Who moves, and whether the new address comes before the old one goes.
type Kind<'a> = (&'a [&'a str], bool);

/// One handover: the probes started and steady, `movers` moved at once;
/// the longest time without replies (ms), None if none came back within
/// [`GIVE_UP`]. Adds the probes sent per ms to `rates`.
fn handover(
    lab: &Lab,
    hosts: &mut Hosts,
    (movers, new_first): Kind,
    rates: &mut Vec<f64>,
) -> Option<f64> {
    let probes = Probes::start(&lab.get(PROBER).ns);
    let mut seen = Vec::new();
    while seen.len() < STEADY {
        seen.push(
            probes
                .replies
                .recv_timeout(Duration::from_secs(10))
                .expect("replies before the move"),
        );
    }
    // Whose new address each agent waits for: the others'.
    let moves: Vec<(&str, String, String)> = movers
        .iter()
        .map(|name| {
            let (from, to) = hosts.next(lab, name);
            (*name, from, to)
        })
        .collect();
    let namespaces: Vec<(String, &str, &str)> = moves
        .iter()
        .map(|(name, from, to)| (lab.get(name).ns.clone(), from.as_str(), to.as_str()))
        .collect();
    for (name, _, _) in &moves {
        for other in [PROBER, TARGET].iter().filter(|o| *o != name) {
            drain(&lab.agent(other).log);
        }
    }
    let moved_at = Instant::now();
    std::thread::scope(|s| {
        for (ns, from, to) in &namespaces {
            s.spawn(|| move_node(ns, from, to, new_first));
        }
    });
    let after = Instant::now() + IN_FLIGHT;
    let mut recovered = false;
    while let Some(left) = GIVE_UP.checked_sub(moved_at.elapsed()) {
        let Ok(at) = probes.replies.recv_timeout(left) else {
            break;
        };
        seen.push(at);
        if at > after {
            recovered = true;
            break;
        }
    }
    rates.push(probes.stop());
    // Before the next trial: every agent has been told of the others'
    // new RLOCs (the control plane's account, not timed here).
    for (name, _, to) in &moves {
        for other in [PROBER, TARGET].iter().filter(|o| *o != name) {
            let told = await_line(
                &lab.agent(other).log,
                &format!(" at {to}:51820"),
                GIVE_UP.saturating_sub(moved_at.elapsed()),
            );
            if !told {
                println!("  agent {other} was not told that {name} moved to {to}");
            }
        }
    }
    if !recovered {
        return None;
    }
    // The window: from the last reply before the move on.
    let first = seen.iter().rposition(|t| *t <= moved_at).unwrap_or(0);
    let outage = seen[first..]
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    Some(outage.as_secs_f64() * 1e3)
}

/// A flow of probes from the prober to the target's echo: a UDP datagram
/// every [`PROBE_EVERY`], and the times their echoes come back.
struct Probes {
    stop: Arc<AtomicBool>,
    sender: JoinHandle<(u64, Duration)>,
    receiver: JoinHandle<()>,
    replies: Receiver<Instant>,
}

impl Probes {
    fn start(ns: &str) -> Probes {
        // A socket belongs to the namespace it was made in, whichever
        // thread uses it.
        let socket =
            e2e::in_namespace(ns, || UdpSocket::bind("0.0.0.0:0")).expect("the probes' socket");
        socket.connect((TARGET_EID, ECHO_PORT)).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("a read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, replies) = channel();
        let incoming = socket.try_clone().expect("the socket, cloned");
        let done = stop.clone();
        let receiver = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !done.load(Ordering::Relaxed) {
                // Errors: timeouts, and ICMP errors reported on the
                // connected socket while the target is unreachable.
                if incoming.recv(&mut buf).is_ok() && tx.send(Instant::now()).is_err() {
                    break;
                }
            }
        });
        let done = stop.clone();
        let sender = std::thread::spawn(move || {
            let begin = Instant::now();
            let mut due = begin;
            let mut sent = 0u64;
            while !done.load(Ordering::Relaxed) {
                let now = Instant::now();
                if let Some(wait) = due.checked_duration_since(now) {
                    std::thread::sleep(wait);
                } else if now - due > PROBE_EVERY * 10 {
                    // Descheduled: no burst to catch up.
                    due = now;
                }
                // Refused while the path is broken: that probe is lost.
                let _ = socket.send(&sent.to_be_bytes());
                sent += 1;
                due += PROBE_EVERY;
            }
            (sent, begin.elapsed())
        });
        Probes {
            stop,
            sender,
            receiver,
            replies,
        }
    }

    /// Stops the flow; the probes it sent per ms.
    fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let (sent, took) = self.sender.join().expect("the sender");
        let _ = self.receiver.join();
        sent as f64 / (took.as_secs_f64() * 1e3)
    }
}

/// The target's echo for the probes: every datagram sent back where it
/// came from, for as long as the bench runs.
fn echo(ns: &str) {
    let socket = e2e::in_namespace(ns, || UdpSocket::bind(("0.0.0.0", ECHO_PORT)))
        .expect("the echo's socket");
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        loop {
            if let Ok((len, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..len], from);
            }
        }
    });
}

/// Moves the node in `ns` to another underlay address on its link. Break
/// before make, as `agent/tests/sites.rs` does: the old address removed
/// (its default route with it), then the new one added and the default
/// route set again. Make before break (`new_first`): the new address
/// added first (a second uplink, or a lease renewed to a new address),
/// then the old one removed.
fn move_node(ns: &str, from: &str, to: &str, new_first: bool) {
    let del = || e2e::ip(&["-n", ns, "addr", "del", &format!("{from}/24"), "dev", "u0"]);
    let add = || e2e::ip(&["-n", ns, "addr", "add", &format!("{to}/24"), "dev", "u0"]);
    if new_first {
        add();
        del();
    } else {
        del();
        add();
    }
    let gateway = to.rsplit_once('.').expect("an IPv4 address").0.to_string() + ".1";
    e2e::ip(&["-n", ns, "route", "replace", "default", "via", &gateway]);
}

/// Drops the log lines read so far.
fn drain(log: &Receiver<String>) {
    while log.try_recv().is_ok() {}
}

/// Waits up to `limit` for a log line containing `text`.
fn await_line(log: &Receiver<String>, text: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match log.recv_timeout(left) {
            Ok(line) if line.contains(text) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}
