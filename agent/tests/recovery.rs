//! End to end, what a deployment lives through: the map-server restarted
//! (SIGTERM, kill -9) or down for a minute, a site revoked, forged control
//! messages from the underlay. Real namespaces, wireguard-go, processes.

mod e2e;

use e2e::lab::Lab;
use e2e::{exec, in_namespace, sysctl};
use lisp::{Address, Algorithm, List, Locator, MapNotify, MapRequest, Record, Registration};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One ping from `ns` to `to`, waiting at most `wait_s` seconds for the
/// reply; whether it was answered, and ping's account.
fn first_ping(ns: &str, to: &str, wait_s: u32) -> (bool, String) {
    let out = exec(
        ns,
        &["ping", "-n", "-c", "1", "-W", &wait_s.to_string(), to],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (text.contains(" 1 received"), text)
}

/// `ping -i 0.1 -c count` from `ns` running in the background.
struct Pinging(std::process::Child);

impl Pinging {
    fn start(ns: &str, to: &str, count: u32) -> Pinging {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-n", "-i", "0.1", "-W", "1"])
            .args(["-c", &count.to_string(), to])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ping");
        Pinging(child)
    }

    /// Waits for the end; (sent, answered, ping's account).
    fn finish(self) -> (u32, u32, String) {
        let out = self.0.wait_with_output().expect("ping");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let field = |suffix: &str| {
            text.lines()
                .find_map(|l| {
                    l.split(", ")
                        .find(|p| p.ends_with(suffix))
                        .map(|p| p.trim_end_matches(suffix).trim().parse().unwrap_or(0))
                })
                .unwrap_or(0)
        };
        (
            field(" packets transmitted"),
            field(" received"),
            text.lines().rev().take(3).collect::<Vec<_>>().join("\n"),
        )
    }
}

/// A counter of the map-server's metrics (`name{labels}` as written).
fn metric(lab: &Lab, name: &str) -> u64 {
    let text = lab.ms_metrics();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics:\n{text}"))
}

/// How many peers the map-server's WireGuard interface has, asked over
/// wireguard-go's UAPI socket (shared by every namespace).
fn map_server_peers(lab: &Lab) -> usize {
    use std::io::{BufRead, BufReader, Write};
    let path = format!("/var/run/wireguard/lg{}ms.sock", lab.tag);
    let mut uapi = std::os::unix::net::UnixStream::connect(&path).expect("the UAPI socket");
    uapi.write_all(b"get=1\n\n").unwrap();
    let mut peers = 0;
    for line in BufReader::new(uapi).lines().map_while(Result::ok) {
        if line.is_empty() {
            break;
        }
        peers += usize::from(line.starts_with("public_key="));
    }
    peers
}

/// The first contact from `from`'s host to `to`'s host right after the
/// map-server said it listens: answered within 2 s. Returns how long the
/// answer took from the map-server's start.
fn first_contact(lab: &Lab, from: &str, to: &str, listening: Instant) -> Duration {
    let (host, dest) = (&lab.get(from).host, lab.get(to).eid.replace(".0/24", ".2"));
    let (answered, text) = first_ping(host, &dest, 2);
    let took = listening.elapsed();
    assert!(
        answered,
        "{from} -> {to} within 2 s of the map-server listening:\n{text}"
    );
    eprintln!(
        "FIGURE first contact {from} -> {to} answered {took:?} after the map-server listened"
    );
    took
}

#[test]
fn a_map_server_restart_loses_no_tunnel_and_first_contacts_work_at_once() {
    let mut lab = Lab::new("r1");
    for (n, name) in ["a", "b", "c", "d"].iter().enumerate() {
        lab.node(name, 1000, &format!("10.{}.0.0/24", n + 1));
    }
    lab.start();
    let (a, b) = (lab.get("a").host.clone(), lab.get("b").host.clone());
    assert!(first_ping(&a, "10.2.0.2", 5).0, "a <-> b before");

    // SIGTERM and start, as `systemctl restart` does, while a pings b.
    let pinging = Pinging::start(&a, "10.2.0.2", 60);
    lab.stop_map_server(libc::SIGTERM);
    lab.restart_map_server();
    let listening = Instant::now();
    first_contact(&lab, "a", "c", listening);
    let (sent, answered, text) = pinging.finish();
    assert_eq!(answered, sent, "the a <-> b tunnel lost nothing:\n{text}");
    assert_eq!(sent, 60);

    // A crash: kill -9, then start.
    let pinging = Pinging::start(&b, "10.1.0.2", 40);
    lab.stop_map_server(libc::SIGKILL);
    lab.restart_map_server();
    let listening = Instant::now();
    first_contact(&lab, "b", "d", listening);
    let (sent, answered, text) = pinging.finish();
    assert_eq!(answered, sent, "the b <-> a tunnel lost nothing:\n{text}");
    let sites = lab.ms_command(&["sites"]);
    assert!(!sites.contains("(not registered)"), "{sites}");
}

#[test]
fn first_contacts_work_at_once_after_the_map_server_was_down_a_minute() {
    let mut lab = Lab::new("r2");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    lab.stop_map_server(libc::SIGTERM);
    // The scenario itself: a minute without a map-server.
    std::thread::sleep(Duration::from_secs(60));
    lab.restart_map_server();
    let listening = Instant::now();
    first_contact(&lab, "a", "b", listening);
}

#[test]
fn a_revoked_site_is_cut_off_and_stays_revoked_across_a_restart() {
    let mut lab = Lab::new("r3");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.node("c", 1000, "10.3.0.0/24");
    lab.start();
    let said = lab.ms_command(&["revoke", "b"]);
    assert!(said.contains("revoked"), "{said}");

    // b asks for c: no answer that lets it in, and c is given no key of b.
    let b = lab.get("b").host.clone();
    let (answered, text) = first_ping(&b, "10.3.0.2", 2);
    assert!(!answered, "b reached c after its revocation:\n{text}");
    assert!(
        !lab.status("b").contains("10.3.0.0/24"),
        "{}",
        lab.status("b")
    );
    assert!(
        !lab.status("c").contains("10.2.0.0/24"),
        "{}",
        lab.status("c")
    );
    assert_eq!(map_server_peers(&lab), 2, "b's peer is gone");

    // A reload leaves it out: its peer is not added back, so nothing it
    // sends reaches the map-server.
    let revoked = "lispguard_dropped_total{reason=\"revoked\"}";
    let before = metric(&lab, revoked);
    lab.map_server().signal(libc::SIGHUP);
    lab.map_server().await_log("configuration reloaded");
    let (answered, text) = first_ping(&b, "10.3.0.2", 2);
    assert!(!answered, "b reached c after a reload:\n{text}");
    assert_eq!(metric(&lab, revoked), before, "b's requests got through");
    assert_eq!(map_server_peers(&lab), 2, "b's peer is back");

    // Still revoked after a restart; its Map-Registers do not get in.
    lab.stop_map_server(libc::SIGTERM);
    lab.restart_map_server();
    let sites = lab.ms_command(&["sites"]);
    let b_line = sites.lines().find(|l| l.starts_with("b ")).unwrap_or("");
    assert!(b_line.contains("(revoked)"), "{sites}");
    assert!(b_line.contains("(not registered)"), "{sites}");
    let (answered, text) = first_ping(&b, "10.3.0.2", 2);
    assert!(!answered, "b reached c after the restart:\n{text}");
    assert_eq!(map_server_peers(&lab), 2, "b's peer is back");
    // The others are served as before.
    let a = lab.get("a").host.clone();
    assert!(first_ping(&a, "10.3.0.2", 2).0, "a -> c");
}

/// A Map-Request for `eid` in instance 1000.
fn map_request(nonce: u64, eid: &str) -> Vec<u8> {
    let records = [lisp::RequestRecord {
        notify: true,
        eid_mask_len: 32,
        eid: Address::eid(1000, eid.parse().unwrap(), None),
    }];
    let request = MapRequest::new(nonce, &[Address::None], &records);
    let mut buf = vec![0; 1500];
    let len = request.emit(&mut buf).unwrap();
    buf.truncate(len);
    buf
}

/// Sends `count` copies of `msg` from `ns` with the forged source `from`
/// (a non-local address: net.ipv4.ip_nonlocal_bind) to `to`.
fn forge(ns: &str, from: &str, to: &str, msg: Vec<u8>, count: usize) {
    sysctl(ns, "net.ipv4.ip_nonlocal_bind", "1");
    let (from, to): (SocketAddr, SocketAddr) = (from.parse().unwrap(), to.parse().unwrap());
    in_namespace(ns, move || {
        let socket = transparent_socket(from);
        for _ in 0..count {
            if let Err(e) = socket.send_to(&msg, to) {
                panic!("{from} -> {to}: {e}");
            }
        }
    });
}

/// A UDP socket bound to `from`, an address not of this host: sending
/// from it needs IP_TRANSPARENT besides the bind.
fn transparent_socket(from: SocketAddr) -> UdpSocket {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(v4) = from else {
        panic!("IPv4 only")
    };
    // SAFETY: plain socket calls on a descriptor this function owns, with
    // pointers to values of the sizes passed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let one: libc::c_int = 1;
        let rc = libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_TRANSPARENT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "IP_TRANSPARENT: {}", std::io::Error::last_os_error());
        let address = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::bind(
            fd,
            (&address as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "bind {from}: {}", std::io::Error::last_os_error());
        UdpSocket::from_raw_fd(fd)
    }
}

/// rp_filter off in `ns`, as a loosely configured host has it.
fn no_rp_filter(ns: &str) {
    for conf in ["all", "default", "u0"] {
        sysctl(ns, &format!("net.ipv4.conf.{conf}.rp_filter"), "0");
    }
}

#[test]
fn forged_control_messages_from_the_underlay_are_dropped_by_both_daemons() {
    let mut lab = Lab::new("r4");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    let (router, ms) = (lab.router.clone(), lab.ms.clone());
    let (a, b) = (lab.get("a"), lab.get("b"));
    let (a_host, b_ns, b_rloc) = (a.host.clone(), b.ns.clone(), b.rloc.clone());
    no_rp_filter(&ms);
    no_rp_filter(&b_ns);

    // At the map-server: a's control address, forged from the router,
    // more Map-Requests than a's rate allows (1000/s, bursts of 2000).
    e2e::ip(&[
        "-n",
        &router,
        "route",
        "add",
        "100.64.0.1/32",
        "via",
        "172.31.1.2",
    ]);
    let pushed = lab.status_counter("b", "pushes");
    let asked = lab.status_counter("a", "map_requests");
    forge(
        &router,
        "100.64.0.2:4342",
        "100.64.0.1:4342",
        map_request(7, "10.2.0.9"),
        3000,
    );
    // The real a still gets its answer: its first contact with b works.
    let (answered, text) = first_ping(&a_host, "10.2.0.2", 2);
    assert!(answered, "a -> b with forged requests about:\n{text}");
    assert_eq!(
        metric(&lab, "lispguard_dropped_total{reason=\"not_from_tunnel\"}"),
        3000
    );
    // A push to b for each of a's real requests (a second one when b's
    // handshake did not reach a in time), none for the forged ones.
    assert_eq!(
        lab.status_counter("b", "pushes") - pushed,
        lab.status_counter("a", "map_requests") - asked
    );

    // At an agent: a Map-Notify as the map-server would push it, signed
    // with b's key even, forged from the router towards b's control
    // address.
    e2e::ip(&[
        "-n",
        &router,
        "route",
        "add",
        "100.64.0.3/32",
        "via",
        &b_rloc,
    ]);
    let locators = [Locator::reachable(Address::rloc(
        "172.31.9.9:51820".parse().unwrap(),
    ))];
    let records = [Record {
        locators: List::new(&locators),
        ..Record::negative(
            Address::eid(1000, "10.66.0.0".parse().unwrap(), Some(&[0x66; 32])),
            24,
            15,
            lisp::Action::NO_ACTION,
        )
    }];
    let notify = MapNotify {
        body: Registration {
            nonce: 99,
            key_id: 0,
            algorithm: Algorithm::HmacSha256_128,
            records: List::new(&records),
            xtr: None,
        },
    };
    let mut buf = vec![0; 1500];
    let len = notify.emit(&mut buf, b"key b").unwrap();
    buf.truncate(len);
    let before = lab.status_counter("b", "bad_messages");
    forge(&router, "100.64.0.1:4342", "100.64.0.3:4342", buf, 20);
    // The status answer comes after the datagrams in b's event loop.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.status_counter("b", "bad_messages") < before + 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(lab.status_counter("b", "bad_messages"), before + 20);
    assert!(
        !lab.status("b").contains("10.66.0.0/24"),
        "{}",
        lab.status("b")
    );
}

#[test]
fn with_two_map_servers_first_contacts_go_on_when_one_is_gone() {
    let mut lab = Lab::new("r5");
    lab.add_second_map_server();
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.node("m", 1000, "10.9.0.1/32");
    // Returns once every node registered with both, so that either
    // map-server can answer for it.
    lab.start();
    // Gone with its WireGuard (a crash would leave wireguard-go behind,
    // still answering handshakes).
    lab.stop_map_server(libc::SIGTERM);
    let a_host = lab.get("a").host.clone();
    let (answered, text) = first_ping(&a_host, "10.2.0.2", 2);
    assert!(answered, "a -> b with the first map-server gone:\n{text}");
    // The second: the dead one is skipped once it left a request
    // unanswered.
    let (answered, text) = first_ping(&lab.get("m").ns, "10.2.0.2", 2);
    assert!(answered, "m -> b:\n{text}");
}

#[test]
fn a_node_enrolled_through_one_map_server_of_a_group_is_resolved_through_the_other_as_its_policy_allows(
) {
    let mut lab = Lab::new("r9");
    lab.enable_enrolment();
    lab.add_second_map_server();
    // The robots may resolve each other, not site a.
    lab.policy("robots", &["group:robots"]);
    lab.node("a", 1000, "10.1.0.0/24");
    lab.start();
    let token = lab.create_token(&[
        "--iid",
        "1000",
        "--pool",
        "10.9.0.0/24",
        "--uses",
        "5",
        "--group",
        "robots",
    ]);
    // Both up: the robot enrols with both, with the same addresses.
    let said = lab.join("r1", &token).unwrap();
    assert!(said.contains(" and 172.31.254.2:"), "with both: {said}");
    let sites = lab.second_ms_command(&["sites"]);
    assert!(sites.contains("node-100.64.1.1"), "{sites}");
    // The first map-server is gone: the next robot enrols through the
    // second alone, which verifies the token with no state from the
    // first.
    lab.stop_map_server(libc::SIGTERM);
    let said = lab.join("r2", &token).unwrap();
    assert!(said.contains("control address 100.64.1.2"), "{said}");
    assert!(!said.contains(" and "), "{said}");
    let tokens = lab.second_ms_command(&["token", "list"]);
    assert!(tokens.contains("active"), "{tokens}");
    // Each reaches the other through the second map-server.
    let (r1, r2) = (lab.get("r1").ns.clone(), lab.get("r2").ns.clone());
    let (answered, text) = first_ping(&r1, "10.9.0.2", 2);
    assert!(answered, "r1 -> r2:\n{text}");
    let (answered, text) = first_ping(&r2, "10.9.0.1", 2);
    assert!(answered, "r2 -> r1:\n{text}");
    // Their group's policy: site a is not theirs to resolve (the agent
    // answers "administratively prohibited"), but a resolves them.
    let (answered, text) = first_ping(&r1, "10.1.0.2", 2);
    assert!(
        !answered && text.contains("Packet filtered"),
        "r1 -> a:\n{text}"
    );
    let a_host = lab.get("a").host.clone();
    let (answered, text) = first_ping(&a_host, "10.9.0.1", 2);
    assert!(answered, "a -> r1:\n{text}");
}

#[test]
fn sighup_starts_again_with_a_changed_configuration_and_keeps_the_tunnels() {
    let mut lab = Lab::new("r6");
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.start();
    let (a_host, b_host) = (lab.get("a").host.clone(), lab.get("b").host.clone());
    assert!(first_ping(&a_host, "10.2.0.2", 2).0, "a -> b");

    // A bad file: the agent says why and goes on as it was.
    let file = lab.ns.dir.join("a.toml");
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        good.replace("record_ttl = 15", "record_ttl = \"soon\""),
    )
    .unwrap();
    lab.agent("a").signal(libc::SIGHUP);
    let said = lab.agent("a").await_log("SIGHUP: ");
    assert!(said.contains("record_ttl"), "{said}");
    assert!(lab.status("a").contains("\"10.2.0.0/24\""));

    // A good one: a starts again in place with it (same process), and the
    // tunnel to b carries on without a new first contact.
    let pushes = lab.status_counter("b", "pushes");
    lab.set_record_ttl("a", 7);
    lab.reload_agent("a");
    lab.agent("a").await_log("changed: starting again");
    lab.agent("a").await_log("registered with the map-server");
    let (found, text) = lab.lookup("b", &["--json", "10.1.0.9"]);
    assert!(
        found && text.contains("\"ttl_seconds\":420"),
        "the new record TTL:\n{text}"
    );
    assert!(
        first_ping(&b_host, "10.1.0.2", 2).0,
        "b -> a after the reload"
    );
    assert!(
        first_ping(&a_host, "10.2.0.2", 2).0,
        "a -> b after the reload"
    );
    assert_eq!(
        lab.status_counter("b", "pushes"),
        pushes,
        "no new first contact"
    );
}
