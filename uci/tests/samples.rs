//! The sample files in tests/samples, in the style of OpenWrt's own
//! /etc/config files plus ours, read for concrete values.

use uci::{parse, write, Config, OptionKind, Value};

fn sample(name: &str) -> (String, Config) {
    let path = format!("{}/tests/samples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let config = parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    (text, config)
}

#[test]
fn network() {
    let (text, c) = sample("network");
    assert_eq!(c.package, None);
    assert_eq!(c.sections.len(), 8);
    let kinds: Vec<_> = c.sections.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "interface",
            "globals",
            "device",
            "interface",
            "interface",
            "interface",
            "interface",
            "wireguard_wg0"
        ]
    );
    let names: Vec<_> = c
        .sections_of("interface")
        .map(|s| s.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["loopback", "lan", "wan", "wan6", "wg0"]);

    let lan = c.section("lan").unwrap();
    assert_eq!(lan.line, 19);
    assert_eq!(lan.option("ipaddr"), Some("192.168.8.1"));
    assert_eq!(lan.option("ip6assign"), Some("60"));
    assert_eq!(lan.option("gateway"), None);

    let bridge = c.sections_of("device").next().unwrap();
    assert_eq!(bridge.name, None);
    assert_eq!(bridge.list("ports"), ["lan1", "lan2", "lan3"]);
    assert_eq!(bridge.options[2].kind, OptionKind::List);
    assert_eq!(bridge.options[2].line, 15);

    let wg = c.section("wg0").unwrap();
    assert_eq!(wg.option("listen_port"), Some("51820"));
    assert_eq!(wg.list("addresses"), ["10.9.0.2/24", "fd00:9::2/64"]);
    let peer = c.sections_of("wireguard_wg0").next().unwrap();
    assert_eq!(peer.option("description"), Some("hub in Frankfurt"));
    assert_eq!(peer.list("allowed_ips"), ["10.9.0.0/24", "fd00:9::/64"]);

    // This file is laid out as libuci commits it: we write it back unchanged.
    assert_eq!(write(&c).unwrap(), text);
}

#[test]
fn wireless() {
    let (_, c) = sample("wireless");
    let radios: Vec<_> = c.sections_of("wifi-device").collect();
    assert_eq!(radios.len(), 2);
    assert_eq!(radios[1].name.as_deref(), Some("radio1"));
    assert_eq!(radios[1].option("country"), Some("DE"));
    assert_eq!(radios[0].option("path"), Some("platform/soc/18000000.wifi"));

    let ap = c.section("default_radio0").unwrap();
    assert_eq!(ap.kind, "wifi-iface");
    // Backslash escapes in double quotes, '\'' in single quotes.
    assert_eq!(ap.option("ssid"), Some("Cafe \"Zur Linde\""));
    assert_eq!(ap.option("key"), Some("it's a long passphrase"));

    // Unquoted values.
    let ap5 = c.section("default_radio1").unwrap();
    assert_eq!(ap5.option("device"), Some("radio1"));
    assert_eq!(ap5.option("mode"), Some("ap"));
    assert_eq!(ap5.option("key"), Some("correct horse battery staple"));

    // A comment after a value, and the line numbers after comment lines.
    let guest = c.section("guest").unwrap();
    assert_eq!(guest.line, 39);
    assert_eq!(guest.option("disabled"), Some("0"));
    assert_eq!(guest.get("disabled").map(|v| v.values()), Some(vec!["0"]));
    let disabled = guest.entries("disabled").next().unwrap();
    assert_eq!(disabled.line, 46);
}

#[test]
fn firewall() {
    let (_, c) = sample("firewall");
    assert_eq!(c.sections_of("zone").count(), 2);
    let wan = c
        .sections_of("zone")
        .find(|z| z.option("name") == Some("wan"))
        .unwrap();
    assert_eq!(wan.list("network"), ["wan", "wan6"]);
    assert_eq!(wan.option("masq"), Some("1"));

    let icmp6 = c
        .sections_of("rule")
        .find(|r| r.option("name") == Some("Allow-ICMPv6-Input"))
        .unwrap();
    let types = icmp6.list("icmp_type");
    assert_eq!(types.len(), 11);
    assert_eq!(types[0], "echo-request");
    assert_eq!(types[10], "neighbour-advertisement");
    assert_eq!(icmp6.option("limit"), Some("1000/sec"));

    let wg = c.section("wg_in").unwrap();
    assert_eq!(wg.kind, "rule");
    assert_eq!(wg.option("dest_port"), Some("51820"));

    let redirect = c.sections_of("redirect").next().unwrap();
    assert_eq!(redirect.option("dest_ip"), Some("192.168.8.20"));
    assert_eq!(redirect.option("enabled"), Some("0"));
    assert_eq!(c.sections.last().unwrap().kind, "redirect");
}

#[test]
fn lispguard() {
    let (_, c) = sample("lispguard");
    let agents: Vec<_> = c.sections_of("agent").collect();
    assert_eq!(agents.len(), 1);
    let agent = agents[0];
    assert_eq!(agent.name.as_deref(), Some("main"));
    assert_eq!(agent.line, 5);
    assert_eq!(agent.option("interface"), Some("wg_lisp"));
    assert_eq!(agent.option("listen_port"), Some("51820"));
    assert_eq!(agent.option("private_key"), Some("generate"));
    assert_eq!(agent.option("private_key_file"), None);
    assert_eq!(agent.option("control_address"), Some("fd00:ca::12"));
    assert_eq!(agent.list("overlay"), ["fd00:1::/48", "10.77.0.0/16"]);
    assert_eq!(agent.option("register_interval"), Some("60"));
    assert_eq!(agent.option("log_level"), Some("info"));
    // A checker needs the line of a value to report on it.
    match agent.get("listen_port") {
        Some(Value::Single(o)) => assert_eq!((o.line, o.kind), (7, OptionKind::Option)),
        other => panic!("{other:?}"),
    }
    match agent.get("overlay") {
        Some(Value::List(items)) => {
            assert_eq!(items.iter().map(|o| o.line).collect::<Vec<_>>(), [10, 11])
        }
        other => panic!("{other:?}"),
    }

    let servers: Vec<_> = c.sections_of("map_server").collect();
    assert_eq!(servers.len(), 2);
    assert_eq!(
        servers[0].option("address"),
        Some("ms1.lispguard.example.org")
    );
    assert_eq!(servers[0].option("port"), Some("51821"));
    assert_eq!(
        servers[0].option("public_key"),
        Some("Q0yKx6Jm9w2m8ZzT8mGf1c5fUj4bD4n1qz3JXc1m8Hk=")
    );
    assert_eq!(servers[0].option("control_address"), Some("fd00:ca::1"));
    assert_eq!(servers[0].option("key"), Some("site-12 shared secret"));
    assert_eq!(servers[1].option("address"), Some("203.0.113.40"));
    assert_eq!(servers[1].option("key"), Some("backup ms \\ key"));

    let eids: Vec<_> = c
        .sections_of("eid")
        .map(|s| (s.option("prefix").unwrap(), s.option("iid").unwrap()))
        .collect();
    assert_eq!(
        eids,
        [("fd00:1:12::/64", "1000"), ("10.77.12.0/24", "1000")]
    );
}

#[test]
fn samples_round_trip() {
    for name in ["network", "wireless", "firewall", "lispguard"] {
        let (_, c) = sample(name);
        let written = write(&c).unwrap();
        assert_eq!(parse(&written).unwrap(), c, "{name}:\n{written}");
        // Written text is a fixed point.
        assert_eq!(write(&parse(&written).unwrap()).unwrap(), written);
    }
}
