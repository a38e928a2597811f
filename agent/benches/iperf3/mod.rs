//! `iperf3` for the throughput benches: a server in a namespace, and one
//! client run read from its summary.

use crate::e2e::{self, Process};

/// What one iperf3 run measured at the receiver.
pub struct Run {
    pub mbit_s: f64,
    /// TCP: segments the sender retransmitted; UDP: datagrams lost, %.
    pub loss: f64,
}

/// An `iperf3` server in `ns`, ready (stopped on drop).
pub fn server(name: &str, ns: &str) -> Process {
    // --forceflush: its stdout is a pipe, where "listening" would wait in
    // a buffer.
    Process::start(
        name,
        ns,
        "sh",
        &["-c", "exec iperf3 --server --forceflush --format m 1>&2"],
        "Server listening",
    )
}

/// One `iperf3` client run from `ns`; what its summary says the receiver
/// got.
pub fn iperf3(ns: &str, server: &str, seconds: u32, extra: &[&str]) -> Run {
    let seconds = seconds.to_string();
    let mut args = vec!["iperf3", "--client", server, "--time", &seconds];
    args.extend(["--format", "m"]);
    args.extend(extra);
    let out = e2e::exec(ns, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "iperf3 {extra:?}: {text}");
    // The summary's lines end with "sender" and "receiver"; the rate is
    // the word before "Mbits/sec".
    let line = |end: &str| -> Vec<&str> {
        text.lines()
            .find(|l| l.trim_end().ends_with(end))
            .unwrap_or_else(|| panic!("iperf3: no {end} line: {text}"))
            .split_whitespace()
            .collect()
    };
    let rate_at = |words: &[&str]| {
        words
            .iter()
            .position(|w| *w == "Mbits/sec")
            .unwrap_or_else(|| panic!("iperf3: no rate: {text}"))
    };
    let receiver = line("receiver");
    let at = rate_at(&receiver);
    let mbit_s = receiver[at - 1].parse().expect("a rate");
    let loss = if extra.contains(&"--udp") {
        // "... 0.010 ms  12/34567 (0.035%)  receiver"
        receiver
            .iter()
            .find_map(|w| w.strip_prefix('(')?.strip_suffix("%)")?.parse().ok())
            .unwrap_or_else(|| panic!("iperf3: no loss: {text}"))
    } else {
        // "... 831 Mbits/sec    0             sender"
        let sender = line("sender");
        let at = rate_at(&sender);
        sender[at + 1].parse().expect("retransmits")
    };
    Run { mbit_s, loss }
}
