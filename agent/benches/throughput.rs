//! Data-plane throughput once a tunnel is up: `iperf3` TCP and UDP
//! between two sites' hosts and between two mobile nodes through
//! lispguard (wireguard-go), between two Nebula nodes, and between two
//! xTRs on the underlay without a tunnel (the lab's own ceiling), in the
//! lab of `first_contact`. A first ping sets each tunnel up; then one TCP
//! run and one UDP run (as fast as the sender goes, 1200-byte datagrams:
//! no fragmentation in either overlay), one system after the other.
//!
//! `cargo bench -p agent --bench throughput [-- SECONDS] [--data FILE]`
//! (root; iperf3, Nebula and the release binaries: `tests/bench/plots.sh`
//! installs and builds them). `--data FILE` also writes the table as TSV.

#[path = "../tests/e2e/mod.rs"]
mod e2e;
mod iperf3;
mod nebula;

use iperf3::iperf3;
use nebula::{nebula_version, Nebula, NEBULA_NET};

fn main() {
    let (_, data, seconds) = nebula::args(5u32);
    let mut lab = nebula::lispguard_lab("tp");
    let nebula = Nebula::new(&mut lab);
    let (a, b) = (lab.get("a"), lab.get("b"));
    let (m, n) = (lab.get("m"), lab.get("n"));
    // (name, key in the data file, client namespace, server namespace,
    // server address)
    let systems = [
        (
            "underlay, no tunnel",
            "underlay",
            &a.ns,
            &b.ns,
            b.rloc.clone(),
        ),
        (
            "lispguard, site to site",
            "lispguard-site",
            &a.host,
            &b.host,
            "10.2.0.2".to_string(),
        ),
        (
            "lispguard, mobile to mobile",
            "lispguard-mobile",
            &m.ns,
            &n.ns,
            "10.9.0.2".to_string(),
        ),
        (
            "Nebula, node to node",
            "nebula",
            &nebula.nodes[0].0,
            &nebula.nodes[1].0,
            format!("{NEBULA_NET}.3"),
        ),
    ];
    let mut tsv = String::from("system\ttcp_mbit_s\ttcp_retransmits\tudp_mbit_s\tudp_lost_pct\n");
    println!("iperf3 through the lab, {seconds} s per run (receiver's Mbit/s):");
    println!(
        "  {:<28} {:>9} {:>12} {:>9} {:>9}",
        "", "TCP", "retransmits", "UDP", "UDP lost"
    );
    for (name, key, client, server, address) in &systems {
        let (received, text) = e2e::ping(client, address, 1);
        assert_eq!(received, 1, "{name}: no answer to the first ping: {text}");
        let _server = iperf3::server(&format!("iperf3 {key}"), server);
        let tcp = iperf3(client, address, seconds, &[]);
        let udp = iperf3(
            client,
            address,
            seconds,
            &["--udp", "--bitrate", "0", "--length", "1200"],
        );
        println!(
            "  {:<28} {:>9.0} {:>12.0} {:>9.0} {:>8.1}%",
            name, tcp.mbit_s, tcp.loss, udp.mbit_s, udp.loss
        );
        tsv += &format!(
            "{key}\t{:.0}\t{:.0}\t{:.0}\t{:.2}\n",
            tcp.mbit_s, tcp.loss, udp.mbit_s, udp.loss
        );
    }
    println!(
        "  (UDP: as fast as the sender goes; Nebula: {})",
        nebula_version()
    );
    if let Some(file) = data {
        std::fs::write(&file, tsv).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}
