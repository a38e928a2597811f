//! The kernel backend (generic netlink), in a fresh network namespace. On
//! a kernel with the WireGuard module (OpenWrt, a VM) it runs the same
//! set/read/remove cycle as the userspace test; on one without, the error
//! must say so.

mod common;

use std::{io, net::SocketAddr};

use common::{ifname, netns};
use ipnet::IpNet;
use netconf::{generate_private_key, public_key, Backend, Peer, WireGuard};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn kernel_backend() {
    let rtnl = netns();
    let name = ifname(1);
    let key = generate_private_key();
    let wg = match WireGuard::up(&name, Backend::Kernel, &key, 51831) {
        Ok(wg) => wg,
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!(
                    "bringing up WireGuard interface {name} (kernel): \
                     this kernel has no WireGuard module: "
                )),
                "{msg}"
            );
            assert!(
                !std::path::Path::new("/sys/module/wireguard").exists(),
                "the module is loaded, yet: {msg}"
            );
            assert_eq!(
                rtnl.ifindex(&name).unwrap_err().kind(),
                io::ErrorKind::NotFound,
                "nothing left behind"
            );
            return;
        }
    };
    assert_eq!(wg.backend(), Backend::Kernel);
    rtnl.ifindex(&name).expect("the link exists");
    assert!(wg.peers().unwrap().is_empty());

    // Enough allowed IPs that the kernel splits the dump into several
    // messages (each holds about 32 KiB, an allowed IP takes 28 bytes).
    let p1 = public_key(&generate_private_key());
    let endpoint: SocketAddr = "[::1]:51999".parse().unwrap();
    let many: Vec<IpNet> = (0..3000u32)
        .map(|i| IpNet::new((0x0a00_0000 | i << 8).to_be_bytes().into(), 24).unwrap())
        .collect();
    wg.set_peer(&Peer {
        public_key: p1,
        endpoint: Some(endpoint),
        allowed_ips: many.clone(),
        persistent_keepalive: Some(25),
    })
    .unwrap();
    let peers = wg.peers().unwrap();
    assert_eq!(peers.len(), 1, "one peer, however many parts");
    assert_eq!(peers[0].endpoint, Some(endpoint));
    assert_eq!(peers[0].persistent_keepalive, Some(25));
    let mut got = peers[0].allowed_ips.clone();
    got.sort();
    let mut want = many;
    want.sort();
    // Not assert_eq: a diff of 3000 prefixes would bury the message.
    assert!(
        got == want,
        "{} allowed IPs back of {}",
        got.len(),
        want.len()
    );

    // Replace the allowed IPs, keepalive off, endpoint kept.
    wg.set_peer(&Peer {
        public_key: p1,
        endpoint: None,
        allowed_ips: vec![net("10.0.2.0/24"), net("fd00:2::/64")],
        persistent_keepalive: None,
    })
    .unwrap();
    let p = &wg.peers().unwrap()[0];
    assert!(
        p.allowed_ips == [net("10.0.2.0/24"), net("fd00:2::/64")],
        "replaced: {} allowed IPs, not 2",
        p.allowed_ips.len()
    );
    assert_eq!(p.persistent_keepalive, None);
    assert_eq!(p.endpoint, Some(endpoint));

    // up() again keeps the peers.
    let again = WireGuard::up(&name, Backend::Kernel, &key, 51831).unwrap();
    assert_eq!(again.peers().unwrap().len(), 1);

    wg.remove_peer(&p1).unwrap();
    wg.remove_peer(&p1).unwrap(); // unknown is fine
    assert!(wg.peers().unwrap().is_empty());

    again.delete().unwrap();
    assert_eq!(
        rtnl.ifindex(&name).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    let e = wg.set_peer(&Peer {
        public_key: p1,
        endpoint: None,
        allowed_ips: vec![],
        persistent_keepalive: None,
    });
    let e = e.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    assert!(wg.peers().is_err());
}
