//! End to end, real everything: network namespaces, wireguard-go, the
//! map-server and the agents as processes, LAN hosts behind xTRs, mobile
//! nodes. Each test builds its own lab. Needs root, iproute2,
//! wireguard-go, ping.

mod e2e;

use e2e::lab::Lab;
use e2e::{binary, exec, ping, sysctl};

/// A packet counter of an interface in a namespace.
fn counter(ns: &str, interface: &str, which: &str) -> u64 {
    let out = exec(
        ns,
        &[
            "cat",
            &format!("/sys/class/net/{interface}/statistics/{which}"),
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn host_a_pings_host_b_with_cold_caches_and_the_first_ping_is_answered() {
    let mut lab = Lab::new("s1");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    let (a, b) = (lab.get("a"), lab.get("b"));

    let (received, text) = ping(&a.host, "10.2.0.2", 1);
    assert_eq!(received, 1, "the first ping is answered:\n{text}");

    // Both sides have the other as a peer.
    let status_a = lab.status("a");
    let status_b = lab.status("b");
    assert!(
        status_a.contains("\"10.2.0.0/24\""),
        "a's peers: {status_a}"
    );
    assert!(
        status_b.contains("\"10.1.0.0/24\""),
        "b's peers: {status_b}"
    );

    // From now on the data bypasses the agents: the TUNs see no more.
    let tun_packets = || {
        (
            counter(&a.ns, &a.tun, "tx_packets"),
            counter(&b.ns, &b.tun, "tx_packets"),
        )
    };
    let before = tun_packets();
    let (received, text) = ping(&a.host, "10.2.0.2", 5);
    assert_eq!(received, 5, "{text}");
    assert_eq!(tun_packets(), before, "packets still reach the TUNs");
}

#[test]
fn a_robot_pings_a_site_host_and_the_host_pings_it_back() {
    let mut lab = Lab::new("s2");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.node("r", 1000, "10.8.0.7/32");
    lab.start();
    let (b, robot) = (lab.get("b"), lab.get("r"));
    let (received, text) = ping(&robot.ns, "10.2.0.2", 1);
    assert_eq!(received, 1, "robot to site host:\n{text}");
    assert!(text.contains("from 10.2.0.2"), "{text}");
    let (received, text) = ping(&b.host, "10.8.0.7", 2);
    assert_eq!(received, 2, "site host to robot:\n{text}");
}

#[test]
fn a_destination_outside_every_registration_gets_icmp_unreachable() {
    let mut lab = Lab::new("s7");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.start();
    let a = lab.get("a");
    let (received, text) = ping(&a.host, "10.99.0.1", 1);
    assert_eq!(received, 0);
    assert!(text.contains("Destination Host Unreachable"), "{text}");
    // From the xTR's own address on the host's LAN (RFC 1812 4.3.2.4),
    // not from the unreachable destination.
    assert!(text.contains("From 10.1.0.1 "), "{text}");
}

#[test]
fn a_status_client_that_sends_nothing_does_not_hold_up_the_agent() {
    let mut lab = Lab::new("s9");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    let a = lab.get("a");
    let socket = lab.ns.dir.join("a.sock");
    let silent = std::os::unix::net::UnixStream::connect(&socket).expect("connects");
    // A first contact is answered, and another client gets its status,
    // while the silent client is still connected (before, the agent
    // waited 1 s for its request, then dropped it).
    let (received, text) = ping(&a.host, "10.2.0.2", 1);
    assert_eq!(received, 1, "{text}");
    let status = lab.status("a");
    assert!(status.contains("\"10.2.0.0/24\""), "{status}");
    let mut probe = [0u8; 1];
    silent.set_nonblocking(true).unwrap();
    assert!(
        matches!(std::io::Read::read(&mut &silent, &mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the silent client is still connected, unanswered"
    );
}

#[test]
fn a_site_in_another_instance_cannot_resolve_this_one() {
    let mut lab = Lab::new("s8");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.node("c", 2, "10.3.0.0/24");
    lab.start();
    let c = lab.get("c");
    // c asks in its own instance, where 10.2.0.2 is no one's.
    let (received, text) = ping(&c.host, "10.2.0.2", 1);
    assert_eq!(received, 0, "{text}");
    assert!(text.contains("Destination Host Unreachable"), "{text}");
    assert!(!lab.status("c").contains("10.2.0.0/24"));
    assert!(
        !lab.status("b").contains("10.3.0.0/24"),
        "no push across instances"
    );
}

#[test]
fn revoking_a_site_removes_its_peer_from_the_others() {
    let mut lab = Lab::new("s5");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    let a = lab.get("a");
    assert_eq!(ping(&a.host, "10.2.0.2", 1).0, 1);
    let said = lab.ms_command(&["revoke", "b"]);
    assert!(said.contains("revoked"), "{said}");
    lab.agent("a").await_log("10.2.0.0/24 withdrawn");
    assert!(
        !lab.status("a").contains("10.2.0.0/24"),
        "{}",
        lab.status("a")
    );
    let (received, text) = ping(&a.host, "10.2.0.2", 1);
    assert_eq!(received, 0, "b is revoked: {text}");
}

/// Moves a node to another underlay address, as when it roams.
fn move_node(lab: &Lab, name: &str, to: &str) {
    let node = lab.get(name);
    let from = lab_rloc(lab, name);
    e2e::ip(&[
        "-n",
        &node.ns,
        "addr",
        "del",
        &format!("{from}/24"),
        "dev",
        "u0",
    ]);
    e2e::ip(&[
        "-n",
        &node.ns,
        "addr",
        "add",
        &format!("{to}/24"),
        "dev",
        "u0",
    ]);
    // Deleting the address took the default route with it.
    let gateway = to.rsplit_once('.').unwrap().0.to_string() + ".1";
    e2e::ip(&[
        "-n", &node.ns, "route", "replace", "default", "via", &gateway,
    ]);
}

/// The node's underlay address now.
fn lab_rloc(lab: &Lab, name: &str) -> String {
    let out = exec(
        &lab.get(name).ns,
        &["ip", "-4", "-o", "addr", "show", "dev", "u0"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let field = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or("");
    field.split('/').next().unwrap_or("").to_string()
}

#[test]
fn a_node_that_moves_reregisters_and_traffic_resumes_even_when_both_move() {
    let mut lab = Lab::new("s4");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    let a_host = lab.get("a").host.clone();
    assert_eq!(ping(&a_host, "10.2.0.2", 1).0, 1);

    // b moves: it registers its new RLOC, and a (which resolved b) is told.
    move_node(&lab, "b", "172.31.3.3");
    lab.agent("a").await_log("at 172.31.3.3:51820");
    let (received, text) = ping(&a_host, "10.2.0.2", 1);
    assert_eq!(received, 1, "after b moved: {text}");

    // Both move at once (the double jump): each learns the other's new
    // RLOC from the map-server.
    move_node(&lab, "a", "172.31.2.4");
    move_node(&lab, "b", "172.31.3.4");
    lab.agent("a").await_log("at 172.31.3.4:51820");
    lab.agent("b").await_log("at 172.31.2.4:51820");
    let (received, text) = ping(&a_host, "10.2.0.2", 3);
    assert!(received >= 1, "after the double jump: {text}");
}

#[test]
fn a_site_behind_a_nat_is_reached_through_its_observed_endpoint() {
    let mut lab = Lab::new("s6");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node_behind_nat("b", 1000, "10.2.0.0/24");
    lab.start();
    let (a, b) = (lab.get("a"), lab.get("b"));
    // The hard way round first: the destination is the one behind the NAT.
    let (received, text) = ping(&a.host, "10.2.0.2", 1);
    assert_eq!(received, 1, "a to b (behind the NAT), first ping:\n{text}");
    // a was handed b's observed (public) endpoint, not its private one.
    let status = lab.status("a");
    assert!(status.contains("\"endpoint\":\"172.31.3.2:"), "{status}");
    let (received, text) = ping(&b.host, "10.1.0.2", 2);
    assert_eq!(received, 2, "b to a:\n{text}");
}

#[test]
fn a_site_behind_a_firewall_is_reached_once_it_reaches_out() {
    let mut lab = Lab::new("sa");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    let (a, b) = (lab.get("a"), lab.get("b"));
    // b's underlay lets in from a only what answers b's own traffic: the
    // handshakes a starts on its first contact never arrive, until b
    // reaches out to a.
    let rules = lab.ns.file(
        "b-firewall.nft",
        &format!(
            "table inet firewall {{\n chain input {{\n  type filter hook input priority 0;\n  \
             ip saddr {} ct state new drop\n }}\n}}\n",
            a.rloc
        ),
    );
    let out = exec(&b.ns, &["nft", "-f", &rules.to_string_lossy()]);
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (received, text) = ping(&a.host, "10.2.0.2", 1);
    assert_eq!(
        received, 1,
        "the first ping is answered all the same:\n{text}"
    );
    assert_eq!(lab.status_counter("a", "handshake_fallbacks"), 1);
    let (received, text) = ping(&b.host, "10.1.0.2", 2);
    assert_eq!(received, 2, "and b reaches a:\n{text}");
}

#[test]
fn two_sites_behind_nats_reach_each_other_directly_on_the_first_ping() {
    let mut lab = Lab::new("sc");
    lab.node_behind_nat("a", 1000, "10.1.0.0/24");
    lab.node_behind_nat("b", 1000, "10.2.0.0/24");
    lab.start();
    let (a, b) = (lab.get("a"), lab.get("b"));
    // b reaches out first (its NAT then lets a's handshake in), a's NAT
    // keeps the port it uses towards the map-server: direct, no relay.
    let (received, text) = ping(&a.host, "10.2.0.2", 1);
    assert_eq!(received, 1, "a to b, both behind NATs, first ping:\n{text}");
    let status = lab.status("a");
    assert!(
        status.contains("\"endpoint\":\"172.31.3.2:"),
        "b's public side: {status}"
    );
    let (received, text) = ping(&b.host, "10.1.0.2", 2);
    assert_eq!(received, 2, "b to a:\n{text}");
}

#[test]
fn two_sites_behind_nats_that_change_ports_are_relayed_on_the_first_ping() {
    let mut lab = Lab::new("sr");
    lab.agent_log_level = "debug";
    lab.enable_relay();
    lab.node_behind_port_changing_nat("a", 1000, "10.1.0.0/24");
    lab.node_behind_port_changing_nat("b", 1000, "10.2.0.0/24");
    lab.start();
    let (a, b) = (lab.get("a"), lab.get("b"));
    // Each NAT picks a new port per destination: neither side can learn
    // where the other's NAT would let it in. The map-server sees that
    // from where their tunnels come from, and relays them at once.
    let (received, text) = ping(&a.host, "10.2.0.2", 1);
    assert_eq!(received, 1, "a to b through the relay, first ping:\n{text}");
    let status = lab.status("a");
    assert!(
        status.contains("\"endpoint\":\"172.31.1.2:400"),
        "b at the relay: {status}"
    );
    let (received, text) = ping(&b.host, "10.1.0.2", 2);
    assert_eq!(received, 2, "b to a:\n{text}");
    let metrics = lab.ms_metrics();
    assert_eq!(sample(&metrics, "lispguard_relay_pairs"), 1.0, "{metrics}");
    assert!(sample(&metrics, "lispguard_relay_forwarded_packets_total") >= 6.0);
    // The map-server restarts: its relay ports are gone. The agents find
    // the peer silent, resolve it again and get new ones.
    lab.stop_map_server(libc::SIGTERM);
    lab.restart_map_server();
    let (a, b) = (lab.get("a"), lab.get("b"));
    let (received, text) = ping_until_answered(&a.host, "10.2.0.2", 60);
    assert!(received, "a to b after the restart:\n{text}");
    let (received, text) = ping(&b.host, "10.1.0.2", 2);
    assert_eq!(received, 2, "b to a:\n{text}");
}

/// Pings once a second, at most `seconds` times, until one is answered.
fn ping_until_answered(ns: &str, to: &str, seconds: u32) -> (bool, String) {
    let out = exec(
        ns,
        &[
            "ping",
            "-n",
            "-c",
            "1",
            "-w",
            &seconds.to_string(),
            "-i",
            "1",
            to,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

#[test]
fn a_pair_with_direct_udp_blocked_is_relayed_then_moves_back_to_direct_without_a_loss() {
    let mut lab = Lab::new("sb");
    lab.agent_log_level = "debug";
    lab.enable_relay();
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    lab.block_direct_paths();
    let (a, b) = (lab.get("a"), lab.get("b"));
    // a's handshakes, then b's reaching out, never arrive: the third
    // answer is the relay, about a second on.
    let (received, text) = ping(&a.host, "10.2.0.2", 1);
    assert_eq!(received, 1, "the first ping, through the relay:\n{text}");
    assert_eq!(lab.status_counter("a", "handshake_fallbacks"), 2);
    lab.agent("a").await_log("through the relay at 172.31.1.2:");
    // The underlay lets UDP through again: a try of the direct path (10 s
    // after the relay, then 20 s after that; b tries too) moves the pair
    // there, while a pings b ten times a second, none lost. A try is heard
    // only when the peer sends within its 20 ms (here: a ping's answer in
    // one try out of five or so), else WireGuard's roaming moves the pair
    // after one of the tries: within a minute.
    let host = a.host.clone();
    let pinging = std::thread::spawn(move || {
        let ping = [
            "ping", "-n", "-c", "250", "-i", "0.1", "-W", "2", "10.2.0.2",
        ];
        String::from_utf8_lossy(&exec(&host, &ping).stdout).into_owned()
    });
    lab.unblock_direct_paths();
    lab.agent("a").await_log_within(
        "moved off the relay to 172.31.3.2:51820",
        std::time::Duration::from_secs(60),
    );
    let text = pinging.join().unwrap();
    assert!(text.contains(" 250 received, 0% packet loss"), "{text}");
    let status = lab.status("a");
    assert!(
        status.contains("\"endpoint\":\"172.31.3.2:51820\""),
        "{status}"
    );
    let (received, text) = ping(&b.host, "10.1.0.2", 2);
    assert_eq!(received, 2, "b to a, directly:\n{text}");
}

#[test]
fn twenty_robots_enrol_with_one_token_and_reach_each_other_and_bad_enrolments_are_refused() {
    let mut lab = Lab::new("en");
    lab.enable_enrolment();
    lab.node("a", 1000, "10.1.0.0/24");
    lab.start();
    let token = lab.create_token(&["--iid", "1000", "--pool", "10.9.0.0/24", "--uses", "20"]);
    let robots: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    for robot in &robots {
        let said = lab
            .join(robot, &token)
            .unwrap_or_else(|e| panic!("{robot}: {e}"));
        assert!(said.contains("enrolled with the map-server"), "{said}");
    }
    // Each robot reaches the next on its first ping, and site a's host
    // reaches the first robot.
    for (i, robot) in robots.iter().enumerate() {
        let next = lab.get(&robots[(i + 1) % robots.len()]).eid.clone();
        let next = next.trim_end_matches("/32");
        let (received, text) = ping(&lab.get(robot).ns, next, 1);
        assert_eq!(received, 1, "{robot} to {next}:\n{text}");
    }
    let first = lab.get("r0").eid.trim_end_matches("/32").to_string();
    assert_eq!(first, "10.9.0.1");
    let (received, text) = ping(&lab.get("a").host, &first, 1);
    assert_eq!(received, 1, "a's host to r0:\n{text}");
    // The token is spent: a 21st robot gets no answer.
    let error = lab.join("late", &token).unwrap_err();
    assert!(error.contains("no answer from the map-server"), "{error}");
    // A forged token (the real id, another secret) gets none either.
    let mut forged = netconf::token::Token::decode(&token).unwrap();
    forged.secret = [7; 32];
    let error = lab.join("forger", &forged.encode()).unwrap_err();
    assert!(error.contains("no answer"), "{error}");
    // An enrolment sent again as it was (a replay) gets no answer; the
    // first one did.
    let once = netconf::token::Token::decode(&lab.create_token(&[
        "--iid",
        "1000",
        "--pool",
        "10.9.1.0/24",
        "--uses",
        "2",
    ]))
    .unwrap();
    let node = netconf::public_key(&netconf::generate_private_key());
    let rloc = lab.get("a").rloc.parse().unwrap();
    let message = netconf::enrolment::write(
        &once,
        &node,
        std::net::SocketAddr::new(rloc, 51820),
        9,
        1,
        None,
    )
    .unwrap();
    let answers = e2e::in_namespace(&lab.get("a").ns, move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let wait = std::time::Duration::from_secs(1);
        socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0; 1500];
        [0, 1].map(|_| {
            socket
                .send_to(&message, once.map_servers[0].address)
                .unwrap();
            socket.recv(&mut buf).is_ok()
        })
    });
    assert_eq!(answers, [true, false], "answered once");
    let metrics = lab.ms_metrics();
    assert_eq!(
        sample(&metrics, "lispguard_dropped_total{reason=\"replayed\"}"),
        1.0
    );
    let dropped = |reason: &str| {
        sample(
            &metrics,
            &format!("lispguard_dropped_total{{reason=\"{reason}\"}}"),
        )
    };
    // Every try of each is counted.
    assert_eq!(dropped("token_not_active"), 3.0, "{metrics}");
    assert_eq!(dropped("auth_failed"), 3.0, "{metrics}");
    let list = lab.ms_command(&["token", "list"]);
    assert!(list.contains("used up"), "{list}");
    // The map-server restarts: the enrolled robots are still its sites,
    // and two that never spoke reach each other.
    lab.stop_map_server(libc::SIGTERM);
    lab.restart_map_server();
    let far = lab.get("r10").eid.trim_end_matches("/32").to_string();
    let (received, text) = ping(&lab.get("r0").ns, &far, 1);
    assert_eq!(received, 1, "r0 to r10 after the restart:\n{text}");
}

#[test]
fn a_peer_behind_a_nat_is_kept_reachable_through_a_pause() {
    let mut lab = Lab::new("sd");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node_behind_nat("b", 1000, "10.2.0.0/24");
    lab.start();
    let (a, b) = (lab.get("a"), lab.get("b"));
    // b's NAT forgets a binding after 30 s without a packet (Linux's
    // default for one seen one way; WireGuard's keepalive is every 25 s).
    let nat = b.nat.clone().expect("b is behind a NAT");
    for timeout in ["udp_timeout", "udp_timeout_stream"] {
        sysctl(&nat, &format!("net.netfilter.nf_conntrack_{timeout}"), "30");
    }
    let (received, text) = ping(&a.host, "10.2.0.2", 1);
    assert_eq!(received, 1, "{text}");
    // A pause longer than the NAT's memory: a's keepalives to b hold the
    // binding, so a still gets through at once.
    std::thread::sleep(std::time::Duration::from_secs(45));
    let (received, text) = ping(&a.host, "10.2.0.2", 1);
    assert_eq!(received, 1, "after the pause:\n{text}");
}

#[test]
fn ipv6_eids_a_robot_and_a_site_reach_each_other_and_an_unmapped_one_is_refused() {
    let mut lab = Lab::new("se");
    lab.node("r", 1000, "fd00:9::1/128");
    lab.node("s", 1000, "fd00:2::/64");
    lab.start();
    let (r, s_host) = (lab.get("r").ns.clone(), lab.get("s").host.clone());
    let (received, text) = ping(&r, "fd00:2::2", 1);
    assert_eq!(
        received, 1,
        "robot to a host of the /64, first ping:\n{text}"
    );
    assert!(text.contains("from fd00:2::2"), "{text}");
    let (received, text) = ping(&s_host, "fd00:9::1", 2);
    assert_eq!(received, 2, "the host to the robot:\n{text}");
    // No mapping: ICMPv6 destination unreachable, from the robot itself.
    let (received, text) = ping(&r, "fd00:99::1", 1);
    assert_eq!(received, 0, "{text}");
    assert!(
        text.contains("Destination unreachable"),
        "ICMPv6 error:\n{text}"
    );
}

#[test]
fn an_ipv6_underlay_carries_first_contacts_between_ipv4_and_ipv6_eids() {
    let mut lab = Lab::ipv6_underlay("sf");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.node("r", 1000, "fd00:9::1/128");
    lab.node("s", 1000, "fd00:2::/64");
    lab.start();
    let (a_host, r) = (lab.get("a").host.clone(), lab.get("r").ns.clone());
    let (received, text) = ping(&a_host, "10.2.0.2", 1);
    assert_eq!(
        received, 1,
        "IPv4 EIDs over IPv6 RLOCs, first ping:\n{text}"
    );
    let status = lab.status("a");
    assert!(
        status.contains("\"endpoint\":\"[fd31:3::2]:51820\""),
        "b's RLOC: {status}"
    );
    let (received, text) = ping(&r, "fd00:2::2", 1);
    assert_eq!(
        received, 1,
        "IPv6 EIDs over IPv6 RLOCs, first ping:\n{text}"
    );
}

#[test]
fn a_dual_stack_site_that_loses_its_ipv4_uplink_is_reached_at_its_ipv6_rloc() {
    let mut lab = Lab::dual_stack_underlay("sg");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    let (a_host, b_ns) = (lab.get("a").host.clone(), lab.get("b").ns.clone());
    let (received, text) = ping(&a_host, "10.2.0.2", 1);
    assert_eq!(received, 1, "{text}");
    // Both RLOCs registered, the same priority: the first, IPv4, is used.
    assert!(lab
        .status("a")
        .contains("\"endpoint\":\"172.31.3.2:51820\""));
    // b's IPv4 uplink goes: it registers its IPv6 RLOC alone, and a is
    // told (b's registration reaches the map-server over IPv6).
    exec(&b_ns, &["ip", "addr", "del", "172.31.3.2/24", "dev", "u0"]);
    lab.agent("a").await_log("at [fd31:3::2]:51820");
    let (received, text) = ping(&a_host, "10.2.0.2", 3);
    assert!(received >= 1, "at b's IPv6 RLOC:\n{text}");
}

#[test]
fn expiry_removes_the_idle_peer_and_route_on_both_sides() {
    let mut lab = Lab::new("s3");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.set_record_ttl("a", 1);
    lab.set_record_ttl("b", 1);
    lab.start();
    let (a, b) = (lab.get("a"), lab.get("b"));
    assert_eq!(ping(&a.host, "10.2.0.2", 1).0, 1);
    let routed = |ns: &str, prefix: &str| {
        let out = exec(ns, &["ip", "route", "show", prefix]);
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    };
    assert!(routed(&a.ns, "10.2.0.0/24") && routed(&b.ns, "10.1.0.0/24"));
    // A minute of silence: each side's mapping of the other expires idle.
    let limit = std::time::Duration::from_secs(90);
    lab.agent("a")
        .await_log_within("10.2.0.0/24 expired and its peer is idle", limit);
    lab.agent("b")
        .await_log_within("10.1.0.0/24 expired and its peer is idle", limit);
    assert!(!routed(&a.ns, "10.2.0.0/24"), "a's route to b is gone");
    assert!(!routed(&b.ns, "10.1.0.0/24"), "b's route to a is gone");
    assert!(!lab.status("a").contains("10.2.0.0/24"));
    assert!(!lab.status("b").contains("10.1.0.0/24"));
}

#[test]
fn a_restarted_agent_keeps_the_live_peers_it_left() {
    let mut lab = Lab::new("s9");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    let a_host = lab.get("a").host.clone();
    assert_eq!(ping(&a_host, "10.2.0.2", 1).0, 1);
    lab.crash_and_restart("a");
    // The peer and its route survived the crash and were adopted: traffic
    // flows at once, without asking the map-server again.
    let (received, text) = ping(&a_host, "10.2.0.2", 3);
    assert_eq!(received, 3, "{text}");
    let status = lab.status("a");
    assert!(status.contains("\"10.2.0.0/24\""), "adopted: {status}");
    assert!(
        status.contains("\"map_requests\":0"),
        "no new resolution: {status}"
    );
}

#[test]
fn a_labs_keys_live_in_a_private_directory_that_goes_with_the_lab() {
    use std::os::unix::fs::PermissionsExt;
    let mut lab = Lab::new("s0");
    lab.node("a", 1000, "10.1.0.0/24");
    let dir = lab.ns.dir.clone();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    assert!(dir.join("a.key").exists());
    drop(lab);
    assert!(!dir.exists(), "{} is left behind", dir.display());
}

/// The value of one sample in a Prometheus text (the first line that
/// starts with `sample` and a space).
fn sample(metrics: &str, sample: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in:\n{metrics}"))
}

#[test]
fn lookup_shows_a_mapping_without_installing_it_and_metrics_count_a_first_contact() {
    let mut lab = Lab::new("s10");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.enable_metrics("a");
    lab.start();
    let (a, b) = (lab.get("a"), lab.get("b"));

    // Off by default: nothing listens on b.
    let refused = lab.agent_metrics("b").unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    // a looks up b's host: b's key and endpoint; nothing installed on a,
    // nothing pushed to b.
    let (ok, text) = lab.lookup("a", &["10.2.0.2", "--json"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("\"public_key\":\"{}\"", b.public_key())),
        "{text}"
    );
    assert!(
        text.contains(&format!("\"endpoint\":\"{}:51820\"", b.rloc)),
        "{text}"
    );
    assert!(text.contains("\"eid_prefix\":\"10.2.0.0/24\""), "{text}");
    let (ok, table) = lab.lookup("a", &["10.2.0.2"]);
    assert!(
        ok && table.contains(&format!("{}:51820 (1/100)", b.rloc)),
        "{table}"
    );
    assert!(!lab.status("a").contains("10.2.0.0/24"), "a peer on a");
    assert!(!lab.status("b").contains("10.1.0.0/24"), "a push to b");
    // An EID no one registered: the negative answer.
    let (ok, text) = lab.lookup("a", &["10.99.0.1"]);
    assert!(ok, "{text}");
    assert!(text.contains("negative: drop"), "{text}");
    assert_eq!(lab.status_counter("a", "negative"), 0, "not cached");
    // Not an EID.
    let (ok, text) = lab.lookup("a", &["10.2.0.0/24"]);
    assert!(!ok && text.contains("not an EID"), "{text}");

    // a's first contact with b, then a scrape.
    let (received, text) = ping(&a.host, "10.2.0.2", 1);
    assert_eq!(received, 1, "{text}");
    let http = lab.agent_metrics("a").unwrap();
    assert!(http.starts_with("HTTP/1.0 200 OK"), "{http}");
    assert_eq!(sample(&http, "lispguard_agent_peers"), 1.0);
    assert!(sample(&http, "lispguard_agent_misses_total") >= 1.0);
    assert!(
        sample(&http, "lispguard_agent_map_requests_total") >= 4.0,
        "3 lookups, 1 miss"
    );
    assert!(sample(&http, "lispguard_agent_map_replies_total") >= 4.0);
    assert_eq!(
        sample(&http, "lispguard_agent_first_contact_seconds_count"),
        1.0
    );
    assert_eq!(
        sample(
            &http,
            "lispguard_agent_first_contact_seconds_bucket{le=\"5\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &http,
            "lispguard_agent_map_server_registered{map_server=\"100.64.0.1\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &http,
            "lispguard_agent_refused_packets_total{reason=\"no_mapping\"}"
        ),
        0.0
    );

    // No agent at the socket; no map-server to answer.
    let nobody = [
        &binary("lispguard"),
        "lookup",
        "-s",
        "/nonexistent.sock",
        "10.1.0.2",
    ];
    let out = exec(&a.ns, &nobody);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("is it running?"),
        "{text}"
    );
    lab.stop_map_server(libc::SIGTERM);
    let (ok, text) = lab.lookup("a", &["10.3.0.2"]);
    assert!(
        !ok && text.contains("no Map-Reply for 10.3.0.2 within 1500 ms"),
        "{text}"
    );
}
