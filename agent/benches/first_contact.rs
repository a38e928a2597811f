//! First contact, lispguard beside Nebula: the same lab shape for both —
//! an underlay router, the map-server or the lighthouse on its own link,
//! two nodes on links of their own — with trials interleaved in one run.
//! Each trial restarts the nodes (cold: no peer, no cache, no tunnel),
//! waits until they are ready (registered with the map-server; handshaken
//! with the lighthouse), and times the first `ping -c1` between them. The
//! map-server and the lighthouse stay warm.
//!
//! `tests/bench/first-contact.sh [TRIALS]` (root; installs Nebula; `--vm`
//! first: in the VM of tests/vm/lib.sh, on the kernel backend), or
//! `cargo bench -p agent --bench first_contact [-- TRIALS]`.
//! `--data FILE` also writes every trial there as TSV (system, trial,
//! ms, lost), for `tests/bench/plots.sh`.
//! `-- --timeline` prints instead where the time of one lispguard first
//! contact goes, from packet captures on every link (one clock: the
//! namespaces share the kernel's).

#[path = "../tests/e2e/mod.rs"]
mod e2e;
mod nebula;

use e2e::lab::Lab;
use nebula::{nebula_version, Nebula, NEBULA_NET};
use std::process::{Command, Stdio};

fn main() {
    let (args, data, trials) = nebula::args(25usize);
    let mut lab = nebula::lispguard_lab("fc");
    if args.iter().any(|a| a == "--timeline") {
        timeline(&mut lab);
        return;
    }
    let mut nebula = Nebula::new(&mut lab);
    // (name, key in the data file)
    let systems = [
        ("lispguard, site to site", "lispguard-site"),
        ("lispguard, mobile to mobile", "lispguard-mobile"),
        ("Nebula, node to node", "nebula"),
    ];
    let mut results: Vec<Trials> = systems.iter().map(|_| Trials::default()).collect();
    // (system, trial, round trip; None: lost)
    let mut rows: Vec<(usize, usize, Option<f64>)> = Vec::new();
    let site_host = lab.get("a").host.clone();
    let mobile = lab.get("m").ns.clone();
    for trial in 0..trials {
        lab.restart_agents();
        // Both lispguard pairs are cold after one restart; alternate which
        // goes first.
        let pairs = [(0, &site_host, "10.2.0.2"), (1, &mobile, "10.9.0.2")];
        for k in 0..2 {
            let (system, from, to) = pairs[(k + trial) % 2];
            rows.push((system, trial, results[system].add(e2e::ping(from, to, 1))));
        }
        nebula.restart_nodes();
        let ping = e2e::ping(&nebula.nodes[0].0, &format!("{NEBULA_NET}.3"), 1);
        rows.push((2, trial, results[2].add(ping)));
    }
    if let Some(file) = data {
        let mut tsv = String::from("system\ttrial\tms\tlost\n");
        for (system, trial, ms) in rows {
            let ms = ms.map_or(String::new(), |ms| format!("{ms:.3}"));
            let lost = u8::from(ms.is_empty());
            tsv += &format!("{}\t{trial}\t{ms}\t{lost}\n", systems[system].1);
        }
        std::fs::write(&file, tsv).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let nebula_p50 = results[2].at(0.5);
    let nebula_p99 = results[2].at(0.99);
    println!("first ping between cold nodes, {trials} interleaved trials each (ms):");
    println!(
        "  {:<28} {:>6} {:>6} {:>6} {:>6}  {:>5}  {:>13}",
        "", "p50", "p90", "p99", "max", "lost", "p50/p99 ratio"
    );
    for ((name, _), r) in systems.iter().zip(&results) {
        println!(
            "  {:<28} {:>6.2} {:>6.2} {:>6.2} {:>6.2}  {:>2}/{:<2}  {:>5.2} / {:.2}",
            name,
            r.at(0.5),
            r.at(0.9),
            r.at(0.99),
            r.at(1.0),
            r.lost,
            trials,
            r.at(0.5) / nebula_p50,
            r.at(0.99) / nebula_p99,
        );
    }
    println!("  (ratio: to Nebula's, same run; goal p50 <= 0.8, p99 <= 1.0)");
    println!("  Nebula: {}", nebula_version());
}

/// First-ping round trips of one system.
#[derive(Default)]
struct Trials {
    times: Vec<f64>,
    lost: usize,
}

impl Trials {
    /// Counts one trial; its round trip, None if the ping was lost.
    fn add(&mut self, (received, text): (u32, String)) -> Option<f64> {
        match (received, e2e::rtt_ms(&text)) {
            (1, Some(ms)) => {
                self.times.push(ms);
                self.times.sort_by(f64::total_cmp);
                Some(ms)
            }
            _ => {
                self.lost += 1;
                None
            }
        }
    }

    /// The `p` quantile (nearest rank).
    fn at(&self, p: f64) -> f64 {
        let last = self.times.len().max(1) - 1;
        self.times
            .get((last as f64 * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    }
}

/// Where the time of one cold site-to-site first contact goes: every
/// packet on the underlay (at the router), on host A's LAN, and inside
/// xTRs A and B (their TUN, where the agent takes a packet that missed,
/// and their WireGuard interface, where control messages enter and leave
/// the tunnel in the clear), with its offset from the ping's echo request,
/// in microseconds.
fn timeline(lab: &mut Lab) {
    lab.restart_agents();
    let dir = lab.ns.dir.clone();
    let router_ifs: Vec<String> = ["ms", "a", "b"].iter().map(|n| format!("r-{n}")).collect();
    let inside = |name: &str| {
        let node = lab.get(name);
        let interfaces = vec![node.tun.clone(), format!("lg{}{name}", lab.tag)];
        (node.ns.clone(), interfaces)
    };
    let captures = [
        (lab.get("a").host.clone(), vec!["eth0".to_string()]),
        (lab.router.clone(), router_ifs),
        inside("a"),
        inside("b"),
    ];
    let mut dumpcaps = Vec::new();
    let mut files = Vec::new();
    for (k, (ns, ifs)) in captures.iter().enumerate() {
        let file = dir.join(format!("timeline{k}.pcapng"));
        let mut args = vec!["netns", "exec", ns, "dumpcap", "-w"];
        let path = file.to_string_lossy().into_owned();
        args.push(&path);
        for i in ifs {
            args.extend(["-i", i]);
        }
        let child = Command::new("ip")
            .args(&args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("dumpcap (Debian package tshark)");
        dumpcaps.push(child);
        files.push(path);
    }
    // dumpcap says "File: ..." on stderr once it captures, then counts
    // the packets written ("Packets: N", lines ended by \r).
    let (tx, counts) = std::sync::mpsc::channel();
    for (k, child) in dumpcaps.iter_mut().enumerate() {
        let stderr = child.stderr.take().expect("piped");
        let tx = tx.clone();
        std::thread::spawn(move || {
            use std::io::{BufRead, BufReader};
            for line in BufReader::new(stderr).split(b'\r').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line);
                let count = if line.contains("File:") {
                    Some(0)
                } else {
                    line.trim()
                        .strip_prefix("Packets: ")
                        .and_then(|n| n.parse().ok())
                };
                if count.is_some_and(|n| tx.send((k, n)).is_err()) {
                    break;
                }
            }
        });
    }
    let mut seen = [None::<u32>; 4];
    let mut await_counts = |at_least: [u32; 4]| {
        while !seen
            .iter()
            .zip(at_least)
            .all(|(n, min)| n.is_some_and(|n| n >= min))
        {
            // Long enough for the emulated VM (`--vm`).
            let Ok((k, n)) = counts.recv_timeout(std::time::Duration::from_secs(30)) else {
                panic!("dumpcap's packet counts: {seen:?}, awaiting at least {at_least:?}");
            };
            seen[k] = Some(n);
        }
    };
    await_counts([0; 4]);
    let (received, _) = e2e::ping(&lab.get("a").host, "10.2.0.2", 1);
    if received == 0 {
        println!("the first ping was not answered (within ping's 5 s)");
    }
    // Until the captures hold the echo request (and reply) on host A's
    // LAN, at least what crossed the underlay meanwhile (request, push,
    // ack, reply, two handshake messages, the ping both ways), and inside
    // A (the ping at the TUN, request and reply, the ping in and out of
    // WireGuard) and B (push, ack, the ping in and out).
    await_counts([1 + received, 8, 3 + 2 * received, 2 + 2 * received]);
    for child in &mut dumpcaps {
        // SAFETY: signals our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let _ = child.wait();
    }
    // Underlay and control addresses both by the node's name.
    let names = [
        ("172.31.1.2", "ms"),
        ("172.31.2.2", "a"),
        ("172.31.3.2", "b"),
        ("10.1.0.2", "host a"),
        ("10.2.0.2", "host b"),
        ("100.64.0.1", "ms"),
        (lab.get("a").control_address.as_str(), "a"),
        (lab.get("b").control_address.as_str(), "b"),
    ];
    let name = |ip: &str| {
        names
            .iter()
            .find(|(a, _)| *a == ip)
            .map_or(ip.to_string(), |(_, n)| n.to_string())
    };
    // Where a packet was captured, for those inside the xTRs.
    let place = |k: usize, interface: &str| {
        let Some(node) = k.checked_sub(2).and_then(|n| ["a", "b"].get(n)) else {
            return String::new();
        };
        match interface == lab.get(node).tun {
            true => format!(" [{node} tun]"),
            false => format!(" [{node} wg]"),
        }
    };
    let mut events: Vec<(f64, String)> = Vec::new();
    for (k, file) in files.iter().enumerate() {
        let out = Command::new("tshark")
            .args([
                "-r",
                file,
                "-d",
                "udp.port==51820,wg",
                "-d",
                "udp.port==51821,wg",
            ])
            .args(["-T", "fields", "-E", "separator=|"])
            .args(["-e", "frame.time_epoch", "-e", "frame.interface_name"])
            .args(["-e", "ip.src", "-e", "ip.dst", "-e", "wg.type"])
            .args(["-e", "frame.len", "-e", "icmp.type", "-e", "lisp.type"])
            .output()
            .expect("tshark");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split('|').collect();
            let [time, interface, src, dst, wg, len, icmp, lisp] = f[..] else {
                continue;
            };
            let Ok(time) = time.parse::<f64>() else {
                continue;
            };
            // The router sees every packet twice, in and out: keep it as
            // it arrives, on the link of its source. Not IPv4: not ours.
            if src.is_empty() || k == 1 && interface != format!("r-{}", name(src)) {
                continue;
            }
            let what = match (wg, icmp, lisp) {
                (_, "8", _) => "ICMP echo request".to_string(),
                (_, "0", _) => "ICMP echo reply".to_string(),
                ("1", ..) => "WireGuard handshake initiation".into(),
                ("2", ..) => "WireGuard handshake response".into(),
                ("3", ..) => "WireGuard cookie reply".into(),
                ("4", ..) => format!("WireGuard data, {len} B"),
                (_, _, "1") => "Map-Request".into(),
                (_, _, "2") => "Map-Reply".into(),
                (_, _, "4") => "Map-Notify".into(),
                (_, _, "5") => "Map-Notify-Ack".into(),
                _ => format!("{len} B"),
            };
            let at = place(k, interface);
            events.push((
                time,
                format!("{:>7} -> {:<7} {what}{at}", name(src), name(dst)),
            ));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let Some(start) = events
        .iter()
        .find(|(_, e)| e.contains("echo request"))
        .map(|e| e.0)
    else {
        panic!("no echo request captured");
    };
    println!("one cold site-to-site first contact (µs from the echo request at host A):");
    for (time, event) in events.iter().filter(|(t, _)| *t >= start) {
        println!("  {:>8.0}  {event}", (time - start) * 1e6);
    }
    println!(
        "  (underlay packets as they reach the router, where WireGuard data between a site and the map-server is LISP control traffic; [a wg]: inside xTR a, on its WireGuard interface, in the clear; [a tun]: on the TUN its agent reads)"
    );
}
