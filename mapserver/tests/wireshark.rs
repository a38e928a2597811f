//! The map-server's exchanges with a standard LISP xTR, checked against
//! a decoder we did not write: what the engine sends goes into a pcap
//! with the endpoints it chose, and Wireshark's LISP dissector (tshark)
//! must decode each field as meant, with no malformed packet and no
//! expert info. tshark is required: this test fails, not skips, without
//! it.

mod common;
#[path = "../../lisp/tests/pcap/mod.rs"]
mod pcap;

use common::{config_with_xtrs, Itr, X, Y};
use lisp::XtrId;
use mapserver::engine::MapServer;
use mapserver::metrics::Metrics;
use mapserver::outbox::{Outbox, OutboxExt};
use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

fn v4(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

/// Each packet's fields as tshark decodes them, repeated values joined
/// by ';'.
fn decoded(pcap: &std::path::Path, fields: &[&str]) -> Vec<HashMap<String, String>> {
    let mut command = Command::new("tshark");
    command.args([
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
    ]);
    command.arg("-r").arg(pcap);
    command.args(["-T", "fields", "-E", "separator=|", "-E", "aggregator=;"]);
    for field in fields {
        command.args(["-e", field]);
    }
    let out = command
        .output()
        .expect("tshark is required for this test: apt-get install tshark");
    assert!(out.status.success(), "tshark failed: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let values = line.split('|').map(str::to_string);
            fields.iter().map(|f| f.to_string()).zip(values).collect()
        })
        .collect()
}

#[test]
fn wireshark_decodes_the_ecm_exchange_and_the_xtr_id_echo() {
    let config = config_with_xtrs(0, &[], &[(&X, ""), (&Y, "")], "rate_limit = 0");
    let now = Instant::now();
    let metrics = Arc::new(Metrics::default());
    let mut server = MapServer::new(&config, metrics, now, fastrand::Rng::with_seed(1));
    let mut out = Outbox::default();
    let resolver = v4("192.0.2.1:4342");
    let mut packets: Vec<(SocketAddrV4, SocketAddrV4, Vec<u8>)> = Vec::new();
    let mut exchange = |from: SocketAddrV4, msg: Vec<u8>, underlay: &mut MapServer| {
        underlay.handle_underlay(now, from.into(), &msg, &mut out);
        packets.push((from, resolver, msg));
        for (to, bytes) in out.datagrams() {
            let SocketAddr::V4(to) = to else {
                panic!("an IPv4 exchange")
            };
            packets.push((resolver, to, bytes.to_vec()));
        }
        out.clear();
    };

    let xtr = XtrId {
        xtr_id: 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff,
        site_id: 7,
    };
    let etr = v4("198.51.100.20:4342");
    let register = X.register(
        0x0102_0304_0506_0708,
        "[1000] 10.8.0.0/24",
        (*etr.ip()).into(),
        Some(xtr),
    );
    exchange(etr, register, &mut server);
    let itr = Itr {
        address: "198.51.100.21".parse().unwrap(),
        rlocs: vec![
            "2001:db8::22".parse().unwrap(),
            "198.51.100.22".parse().unwrap(),
        ],
        port: 61000,
    };
    let ecm = Y.ecm_request(
        0x1111_2222_3333_4444,
        "[1000] 10.9.0.5/32",
        "[1000] 10.8.0.9/32",
        &itr,
        resolver.into(),
    );
    exchange(v4("198.51.100.21:4342"), ecm, &mut server);
    assert_eq!(packets.len(), 4, "a Map-Notify and a Map-Reply");

    let datagrams: Vec<_> = packets
        .iter()
        .map(|(from, to, bytes)| (*from, *to, bytes.as_slice()))
        .collect();
    let pcap = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("underlay.pcap");
    std::fs::write(&pcap, pcap::udp(&datagrams)).unwrap();

    let xtr_id = "00112233445566778899aabbccddeeff";
    let expected: [&[(&str, &str)]; 4] = [
        &[
            ("lisp.type", "3"),
            ("lisp.mreg.flags.xtrid", "1"),
            ("lisp.xtrid", xtr_id),
            ("lisp.siteid", "0000000000000007"),
        ],
        // Back to the ETR's source, the xTR-ID and Site-ID echoed.
        &[
            ("ip.dst", "198.51.100.20"),
            ("udp.dstport", "4342"),
            ("lisp.type", "4"),
            ("lisp.nonce", "0x0102030405060708"),
            ("lisp.mnot.flags.xtrid", "1"),
            ("lisp.xtrid", xtr_id),
            ("lisp.siteid", "0000000000000007"),
            ("lisp.mapping.eid.masklen", "24"),
        ],
        // The inner Map-Request's ITR-RLOCs and source port.
        &[
            ("lisp.type", "8;1"),
            ("udp.srcport", "4342;61000"),
            ("lisp.mreq.itr_rloc_ipv4", "198.51.100.22"),
            ("lisp.mreq.itr_rloc_ipv6", "2001:db8::22"),
        ],
        // To the first IPv4 ITR-RLOC at the inner source port, not to the
        // ECM's source.
        &[
            ("ip.dst", "198.51.100.22"),
            ("udp.dstport", "61000"),
            ("lisp.type", "2"),
            ("lisp.nonce", "0x1111222233334444"),
            ("lisp.mapping.act", "0"),
            ("lisp.loc.locator", "198.51.100.20"),
        ],
    ];
    let mut fields: Vec<&str> = expected
        .iter()
        .flat_map(|e| e.iter().map(|(f, _)| *f))
        .collect();
    fields.extend(["_ws.expert.message", "_ws.malformed"]);
    fields.sort();
    fields.dedup();
    let got = decoded(&pcap, &fields);
    assert_eq!(got.len(), expected.len());
    for (n, (want, got)) in expected.iter().zip(&got).enumerate() {
        for (field, value) in *want {
            assert_eq!(got[*field], *value, "packet {}: {field}", n + 1);
        }
        assert_eq!(got["_ws.malformed"], "", "packet {} is malformed", n + 1);
        assert_eq!(
            got["_ws.expert.message"],
            "",
            "packet {}: expert infos",
            n + 1
        );
    }
}
