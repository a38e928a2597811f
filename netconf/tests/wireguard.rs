//! The WireGuard interface against real wireguard-go, each test in a fresh
//! network namespace.

mod common;

use std::{
    io,
    net::SocketAddr,
    time::{Duration, Instant},
};

use common::{ifname, netns, netns_of, pidfd, uapi_socket, wait_readable, wireguard_go_pid, Wg};
use ipnet::IpNet;
use netconf::{generate_private_key, public_key, Backend, Peer, PeerStatus, WireGuard};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn find(peers: &[PeerStatus], key: &[u8; 32]) -> PeerStatus {
    peers
        .iter()
        .find(|p| &p.public_key == key)
        .cloned()
        .unwrap_or_else(|| panic!("peer missing from {peers:?}"))
}

#[test]
fn keys() {
    // RFC 7748, section 6.1 (Alice).
    let private = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let public = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    assert_eq!(public_key(&private), public);
    let (a, b) = (generate_private_key(), generate_private_key());
    assert_ne!(a, b);
    assert_eq!(a[0] & 7, 0, "clamped");
    assert_ne!(public_key(&a), public_key(&b));
}

fn hex(s: &str) -> [u8; 32] {
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn peers_set_read_remove() {
    let rtnl = netns();
    let name = ifname(1);
    let key = generate_private_key();
    let wg = Wg::up(&name, &key, 51811);
    assert_eq!(wg.name(), name);
    assert!(wg.peers().unwrap().is_empty());

    // wireguard-go is our thread's child and so lives in our namespace.
    let pid = wireguard_go_pid(&name).expect("wireguard-go runs");
    assert_eq!(netns_of(Some(pid)), netns_of(None));
    rtnl.ifindex(&name).expect("the tun is in our namespace");

    let p1 = public_key(&generate_private_key());
    let p2 = public_key(&generate_private_key());
    let endpoint: SocketAddr = "127.0.0.1:51999".parse().unwrap();
    wg.set_peer(&Peer {
        public_key: p1,
        endpoint: Some(endpoint),
        allowed_ips: vec![net("10.0.1.0/24"), net("fd00:1::/64")],
        persistent_keepalive: Some(25),
    })
    .unwrap();
    let got = find(&wg.peers().unwrap(), &p1);
    assert_eq!(got.endpoint, Some(endpoint));
    assert_eq!(got.allowed_ips, [net("10.0.1.0/24"), net("fd00:1::/64")]);
    assert_eq!(got.persistent_keepalive, Some(25));
    assert_eq!(got.last_handshake, None);

    // An update replaces the allowed IPs and turns keepalives off; without
    // an endpoint the old one stays.
    wg.set_peer(&Peer {
        public_key: p1,
        endpoint: None,
        allowed_ips: vec![net("10.0.2.0/24")],
        persistent_keepalive: None,
    })
    .unwrap();
    let got = find(&wg.peers().unwrap(), &p1);
    assert_eq!(got.allowed_ips, [net("10.0.2.0/24")]);
    assert_eq!(got.persistent_keepalive, None);
    assert_eq!(got.endpoint, Some(endpoint));

    let v6_endpoint: SocketAddr = "[::1]:51998".parse().unwrap();
    wg.set_peer(&Peer {
        public_key: p2,
        endpoint: Some(v6_endpoint),
        allowed_ips: vec![net("10.0.3.0/24")],
        persistent_keepalive: None,
    })
    .unwrap();
    assert_eq!(wg.peers().unwrap().len(), 2);
    assert_eq!(find(&wg.peers().unwrap(), &p2).endpoint, Some(v6_endpoint));

    // up() again, as a restarted agent does: peers stay, same wireguard-go.
    let again = WireGuard::up(&name, Backend::Userspace, &key, 51811).unwrap();
    assert_eq!(again.peers().unwrap().len(), 2);
    assert_eq!(wireguard_go_pid(&name), Some(pid));

    wg.remove_peer(&p1).unwrap();
    wg.remove_peer(&p1).unwrap(); // unknown is fine
    let peers = wg.peers().unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].public_key, p2);

    // delete(): link and UAPI socket gone and wireguard-go exited when it
    // returns (a daemon restarting at once must not meet the old one).
    let exited = pidfd(pid).expect("pidfd_open");
    again.delete().unwrap();
    assert_eq!(
        rtnl.ifindex(&name).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert!(!uapi_socket(&name).exists());
    assert!(
        wait_readable(&exited, Duration::ZERO),
        "wireguard-go still runs when delete() returns"
    );

    // The other handle now refuses, rather than starting a new, keyless
    // interface behind our back.
    let e = wg
        .set_peer(&Peer {
            public_key: p1,
            endpoint: None,
            allowed_ips: vec![],
            persistent_keepalive: None,
        })
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    assert!(wireguard_go_pid(&name).is_none());
    assert!(wg.peers().is_err());
    assert!(rtnl.ifindex(&name).is_err());
    drop(wg); // deleting again is harmless
}

#[test]
fn invalid_name() {
    let _rtnl = netns();
    let e = WireGuard::up(
        "a-name-too-long-for-linux",
        Backend::Userspace,
        &generate_private_key(),
        0,
    )
    .err()
    .expect("refused");
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("a-name-too-long-for-linux"), "{e}");
}

/// Two interfaces in one namespace, peers of each other over loopback:
/// a real handshake, seen in last_handshake and the byte counters.
#[test]
fn handshake_over_loopback() {
    let rtnl = netns();
    let (a, b) = (ifname(2), ifname(3));
    let (ka, kb) = (generate_private_key(), generate_private_key());
    let wg_a = Wg::up(&a, &ka, 51812);
    let wg_b = Wg::up(&b, &kb, 51813);
    // wireguard-go only sends while its tun is up.
    rtnl.set_up(&a, None).unwrap();
    rtnl.set_up(&b, None).unwrap();
    wg_b.set_peer(&Peer {
        public_key: public_key(&ka),
        endpoint: None,
        allowed_ips: vec![net("10.99.0.1/32")],
        persistent_keepalive: None,
    })
    .unwrap();
    // Turning a keepalive on sends one at once, which needs a handshake.
    wg_a.set_peer(&Peer {
        public_key: public_key(&kb),
        endpoint: Some("127.0.0.1:51813".parse().unwrap()),
        allowed_ips: vec![net("10.99.0.2/32")],
        persistent_keepalive: Some(1),
    })
    .unwrap();

    // No event to wait on here: poll the counters, bounded. B (the
    // responder) counts the handshake only once A's first packet after it
    // arrives, so wait for both sides.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (seen, back) = loop {
        let seen = find(&wg_a.peers().unwrap(), &public_key(&kb));
        let back = find(&wg_b.peers().unwrap(), &public_key(&ka));
        if seen.last_handshake.is_some()
            && seen.rx_bytes > 0
            && seen.tx_bytes > 0
            && back.last_handshake.is_some()
        {
            break (seen, back);
        }
        assert!(Instant::now() < deadline, "no handshake: {seen:?} {back:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(seen.last_handshake.unwrap() <= std::time::SystemTime::now());
    assert!(back.rx_bytes > 0 && back.tx_bytes > 0, "{back:?}");
    // B learnt A's endpoint from the handshake.
    assert_eq!(back.endpoint, Some("127.0.0.1:51812".parse().unwrap()));

    wg_a.delete();
    wg_b.delete();
}

/// The UAPI connection is kept from one request to the next; when
/// wireguard-go goes (a crash) and another is started for the interface,
/// the next request finds the kept connection closed and connects again.
#[test]
fn a_kept_uapi_connection_is_replaced_when_wireguard_go_starts_again() {
    let _rtnl = netns();
    let name = ifname(4);
    let key = generate_private_key();
    let wg = Wg::up(&name, &key, 51814);
    let peer = |public_key| Peer {
        public_key,
        endpoint: None,
        allowed_ips: vec![],
        persistent_keepalive: None,
    };
    let (p1, p2) = (
        public_key(&generate_private_key()),
        public_key(&generate_private_key()),
    );
    wg.set_peer(&peer(p1)).unwrap();
    wg.set_peer(&peer(p2)).unwrap();
    assert_eq!(wg.peers().unwrap().len(), 2);

    let pid = wireguard_go_pid(&name).expect("wireguard-go runs");
    let exited = pidfd(pid).expect("pidfd_open");
    // SAFETY: signals the wireguard-go this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(wait_readable(&exited, Duration::from_secs(5)), "killed");
    let again = WireGuard::up(&name, Backend::Userspace, &key, 51814).unwrap();
    assert_ne!(wireguard_go_pid(&name), Some(pid), "another wireguard-go");

    // The first handle's connection went with the old one.
    wg.set_peer(&peer(p1)).unwrap();
    let peers = again.peers().unwrap();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0].public_key, p1);
    wg.delete();
}
