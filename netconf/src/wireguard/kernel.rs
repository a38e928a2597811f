//! The kernel backend: the "wireguard" generic netlink family, as the
//! kernel's include/uapi/linux/wireguard.h defines it. Keys are raw bytes,
//! integers host order, endpoints `struct sockaddr_in`/`sockaddr_in6`.
//!
//! The interface itself is an rtnetlink link of kind "wireguard", created
//! with [`Rtnl`]'s RTM_NEWLINK.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    time::{Duration, SystemTime},
};

use ipnet::IpNet;
use neli::consts::socket::NlFamily;

use super::{Change, PeerChange, PeerStatus};
use crate::{
    error::{context, invalid},
    genl::{self, fixed, get_u16, get_u64, Attrs, Writer},
    rtnl::socket::Socket,
    Rtnl,
};

const WG_GENL_NAME: &str = "wireguard";
const WG_GENL_VERSION: u8 = 1;

const WG_CMD_GET_DEVICE: u8 = 0;
const WG_CMD_SET_DEVICE: u8 = 1;

const WGDEVICE_A_IFNAME: u16 = 2;
const WGDEVICE_A_PRIVATE_KEY: u16 = 3;
const WGDEVICE_A_LISTEN_PORT: u16 = 6;
const WGDEVICE_A_PEERS: u16 = 8;

const WGPEER_F_REMOVE_ME: u32 = 1 << 0;
const WGPEER_F_REPLACE_ALLOWEDIPS: u32 = 1 << 1;

const WGPEER_A_PUBLIC_KEY: u16 = 1;
const WGPEER_A_FLAGS: u16 = 3;
const WGPEER_A_ENDPOINT: u16 = 4;
const WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL: u16 = 5;
const WGPEER_A_LAST_HANDSHAKE_TIME: u16 = 6;
const WGPEER_A_RX_BYTES: u16 = 7;
const WGPEER_A_TX_BYTES: u16 = 8;
const WGPEER_A_ALLOWEDIPS: u16 = 9;

const WGALLOWEDIP_A_FAMILY: u16 = 1;
const WGALLOWEDIP_A_IPADDR: u16 = 2;
const WGALLOWEDIP_A_CIDR_MASK: u16 = 3;

const AF_INET: u16 = libc::AF_INET as u16;
const AF_INET6: u16 = libc::AF_INET6 as u16;

/// A generic netlink socket with the family's id, opened in the namespace
/// of the thread that brought the interface up.
pub(super) struct Kernel {
    sock: Socket,
    family: u16,
}

impl Kernel {
    /// Creates the link if missing, then resolves the family. Both fail
    /// with EOPNOTSUPP / ENOENT on a kernel without the module.
    pub(super) fn open(name: &str) -> io::Result<Kernel> {
        let rtnl = Rtnl::new()?;
        match rtnl.ifindex(name) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match rtnl.create_link(name, "wireguard") {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    // EOPNOTSUPP, under create_link's context.
                    Err(e) if e.kind() == io::ErrorKind::Unsupported => return Err(no_module(e)),
                    r => r?,
                }
            }
            Err(e) => return Err(e),
        }
        let sock = Socket::open(NlFamily::Generic)
            .map_err(|e| context("opening a generic netlink socket", e))?;
        let family =
            genl::resolve_family(&sock, WG_GENL_NAME).map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => no_module(e),
                _ => context("resolving the wireguard netlink family", e),
            })?;
        Ok(Kernel { sock, family })
    }

    pub(super) fn set(&self, name: &str, change: &Change<'_>) -> io::Result<()> {
        // Several messages only for thousands of allowed IPs; should a later
        // one fail, the peer has the first ones: the caller's retry sets all.
        set_device(name, change)?
            .iter()
            .try_for_each(|msg| self.sock.request_raw(self.family, 0, msg).map(drop))
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENODEV) => super::gone(name),
                Some(libc::EOPNOTSUPP) => {
                    context(format_args!("{name} is not a WireGuard interface"), e)
                }
                _ => e,
            })
    }

    pub(super) fn peers(&self, name: &str) -> io::Result<Vec<PeerStatus>> {
        let mut msg = Writer::new(WG_CMD_GET_DEVICE, WG_GENL_VERSION);
        msg.put_str(WGDEVICE_A_IFNAME, name);
        let parts = self
            .sock
            .dump_raw(self.family, &msg.finish()?)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENODEV) => super::gone(name),
                _ => e,
            })?;
        let mut peers = Vec::new();
        for part in &parts {
            parse_device(part, &mut peers)?;
        }
        Ok(peers)
    }
}

fn no_module(e: io::Error) -> io::Error {
    context("this kernel has no WireGuard module", e)
}

/// How many allowed IPs go in one message: an attribute's length is 16
/// bits, and an IPv6 one takes 40 bytes.
const ALLOWED_IPS_PER_MESSAGE: usize = 1000;

/// WG_CMD_SET_DEVICE for interface `name`: the private key and port, and
/// at most one peer. Without WGDEVICE_F_REPLACE_PEERS, other peers stay.
/// A peer with more allowed IPs than fit one message continues in the next
/// ones, as wg(8) does it: same public key, no flags (so no replacing).
pub(super) fn set_device(name: &str, change: &Change<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut msg = Writer::new(WG_CMD_SET_DEVICE, WG_GENL_VERSION);
    msg.put_str(WGDEVICE_A_IFNAME, name);
    if let Some((private_key, port)) = change.interface {
        msg.put(WGDEVICE_A_PRIVATE_KEY, private_key)
            .put_u16(WGDEVICE_A_LISTEN_PORT, port);
    }
    let peer = match &change.peer {
        None => return Ok(vec![msg.finish()?]),
        Some(PeerChange::Remove(key)) => {
            // Peers and allowed IPs are lists: each a nest of type 0.
            msg.nest(WGDEVICE_A_PEERS, |msg| {
                msg.nest(0, |msg| {
                    msg.put(WGPEER_A_PUBLIC_KEY, *key)
                        .put_u32(WGPEER_A_FLAGS, WGPEER_F_REMOVE_ME);
                });
            });
            return Ok(vec![msg.finish()?]);
        }
        Some(PeerChange::Set(peer)) => peer,
    };
    let mut chunks = peer.allowed_ips.chunks(ALLOWED_IPS_PER_MESSAGE);
    msg.nest(WGDEVICE_A_PEERS, |msg| {
        msg.nest(0, |msg| {
            msg.put(WGPEER_A_PUBLIC_KEY, &peer.public_key)
                .put_u32(WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS);
            if let Some(endpoint) = peer.endpoint {
                msg.put(WGPEER_A_ENDPOINT, &sockaddr(endpoint));
            }
            msg.put_u16(
                WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
                peer.persistent_keepalive.unwrap_or(0),
            );
            if let Some(first) = chunks.next() {
                allowed_ips(msg, first);
            }
        });
    });
    let mut out = vec![msg.finish()?];
    for chunk in chunks {
        let mut msg = Writer::new(WG_CMD_SET_DEVICE, WG_GENL_VERSION);
        msg.put_str(WGDEVICE_A_IFNAME, name)
            .nest(WGDEVICE_A_PEERS, |msg| {
                msg.nest(0, |msg| {
                    msg.put(WGPEER_A_PUBLIC_KEY, &peer.public_key);
                    allowed_ips(msg, chunk);
                });
            });
        out.push(msg.finish()?);
    }
    Ok(out)
}

fn allowed_ips(msg: &mut Writer, nets: &[IpNet]) {
    msg.nest(WGPEER_A_ALLOWEDIPS, |msg| {
        for net in nets {
            msg.nest(0, |msg| allowed_ip(msg, net));
        }
    });
}

fn allowed_ip(msg: &mut Writer, net: &IpNet) {
    match net.addr() {
        IpAddr::V4(a) => msg
            .put_u16(WGALLOWEDIP_A_FAMILY, AF_INET)
            .put(WGALLOWEDIP_A_IPADDR, &a.octets()),
        IpAddr::V6(a) => msg
            .put_u16(WGALLOWEDIP_A_FAMILY, AF_INET6)
            .put(WGALLOWEDIP_A_IPADDR, &a.octets()),
    }
    .put(WGALLOWEDIP_A_CIDR_MASK, &[net.prefix_len()]);
}

/// `struct sockaddr_in` (16 bytes) or `sockaddr_in6` (28): family host
/// order, port and flow info network order, scope id host order.
fn sockaddr(endpoint: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(28);
    match endpoint {
        SocketAddr::V4(a) => {
            out.extend(AF_INET.to_ne_bytes());
            out.extend(a.port().to_be_bytes());
            out.extend(a.ip().octets());
            out.extend([0; 8]);
        }
        SocketAddr::V6(a) => {
            out.extend(AF_INET6.to_ne_bytes());
            out.extend(a.port().to_be_bytes());
            out.extend(a.flowinfo().to_be_bytes());
            out.extend(a.ip().octets());
            out.extend(a.scope_id().to_ne_bytes());
        }
    }
    out
}

fn parse_sockaddr(raw: &[u8]) -> io::Result<SocketAddr> {
    let bad = || invalid(format!("WGPEER_A_ENDPOINT of {} bytes", raw.len()));
    let family = u16::from_ne_bytes(fixed(raw.get(..2).ok_or_else(bad)?, "family")?);
    let port = u16::from_be_bytes(fixed(raw.get(2..4).ok_or_else(bad)?, "port")?);
    match (family, raw.len()) {
        (AF_INET, 16) => {
            let ip: [u8; 4] = fixed(&raw[4..8], "address")?;
            Ok(SocketAddrV4::new(Ipv4Addr::from(ip), port).into())
        }
        (AF_INET6, 28) => {
            let flow = u32::from_be_bytes(fixed(&raw[4..8], "flowinfo")?);
            let ip: [u8; 16] = fixed(&raw[8..24], "address")?;
            let scope = u32::from_ne_bytes(fixed(&raw[24..28], "scope id")?);
            Ok(SocketAddrV6::new(Ipv6Addr::from(ip), port, flow, scope).into())
        }
        _ => Err(bad()),
    }
}

/// Adds the peers of one part of a WG_CMD_GET_DEVICE dump to `peers`. A
/// peer with many allowed IPs continues in the next part, under the same
/// public key: those are appended to it.
pub(super) fn parse_device(payload: &[u8], peers: &mut Vec<PeerStatus>) -> io::Result<()> {
    for attr in genl::message_attrs(payload)? {
        let (ty, value) = attr?;
        if ty != WGDEVICE_A_PEERS {
            continue;
        }
        for peer in Attrs(value) {
            let peer = parse_peer(peer?.1)?;
            match peers.last_mut() {
                Some(last) if last.public_key == peer.public_key => {
                    last.allowed_ips.extend(peer.allowed_ips)
                }
                _ => peers.push(peer),
            }
        }
    }
    Ok(())
}

fn parse_peer(raw: &[u8]) -> io::Result<PeerStatus> {
    let mut public_key = None;
    let mut peer = PeerStatus::default();
    for attr in Attrs(raw) {
        let (ty, value) = attr?;
        match ty {
            WGPEER_A_PUBLIC_KEY => public_key = Some(fixed(value, "WGPEER_A_PUBLIC_KEY")?),
            WGPEER_A_ENDPOINT => peer.endpoint = Some(parse_sockaddr(value)?),
            WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL => {
                let seconds = get_u16(value, "WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL")?;
                peer.persistent_keepalive = (seconds != 0).then_some(seconds);
            }
            WGPEER_A_LAST_HANDSHAKE_TIME => {
                // struct __kernel_timespec: two s64; zero when none yet.
                let raw: [u8; 16] = fixed(value, "WGPEER_A_LAST_HANDSHAKE_TIME")?;
                let seconds = get_u64(&raw[..8], "tv_sec")?;
                let nanos = get_u64(&raw[8..], "tv_nsec")?;
                if (seconds, nanos) != (0, 0) {
                    let since = Duration::from_secs(seconds)
                        .checked_add(Duration::from_nanos(nanos))
                        .ok_or_else(|| invalid("handshake time out of range"))?;
                    peer.last_handshake = SystemTime::UNIX_EPOCH.checked_add(since);
                }
            }
            WGPEER_A_RX_BYTES => peer.rx_bytes = get_u64(value, "WGPEER_A_RX_BYTES")?,
            WGPEER_A_TX_BYTES => peer.tx_bytes = get_u64(value, "WGPEER_A_TX_BYTES")?,
            WGPEER_A_ALLOWEDIPS => {
                for ip in Attrs(value) {
                    peer.allowed_ips.push(parse_allowed_ip(ip?.1)?);
                }
            }
            _ => {}
        }
    }
    peer.public_key = public_key.ok_or_else(|| invalid("a peer without WGPEER_A_PUBLIC_KEY"))?;
    Ok(peer)
}

fn parse_allowed_ip(raw: &[u8]) -> io::Result<IpNet> {
    let (mut family, mut addr, mut cidr) = (None, None, None);
    for attr in Attrs(raw) {
        let (ty, value) = attr?;
        match ty {
            WGALLOWEDIP_A_FAMILY => family = Some(get_u16(value, "WGALLOWEDIP_A_FAMILY")?),
            WGALLOWEDIP_A_IPADDR => addr = Some(value),
            WGALLOWEDIP_A_CIDR_MASK => {
                cidr = Some(fixed::<1>(value, "WGALLOWEDIP_A_CIDR_MASK")?[0])
            }
            _ => {}
        }
    }
    let ip: IpAddr = match (family, addr) {
        (Some(AF_INET), Some(a)) => Ipv4Addr::from(fixed::<4>(a, "WGALLOWEDIP_A_IPADDR")?).into(),
        (Some(AF_INET6), Some(a)) => Ipv6Addr::from(fixed::<16>(a, "WGALLOWEDIP_A_IPADDR")?).into(),
        _ => return Err(invalid("an allowed IP without family or address")),
    };
    let cidr = cidr.ok_or_else(|| invalid("an allowed IP without WGALLOWEDIP_A_CIDR_MASK"))?;
    IpNet::new(ip, cidr).map_err(|e| invalid(format!("allowed IP {ip}/{cidr}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Peer;

    fn n16(v: u16) -> [u8; 2] {
        v.to_ne_bytes()
    }

    /// One attribute as the kernel lays it out: nla_len, nla_type, payload,
    /// padding to 4.
    fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = [&n16(4 + payload.len() as u16)[..], &n16(ty), payload].concat();
        out.resize((out.len() + 3) & !3, 0);
        out
    }

    fn nested(ty: u16, inner: &[Vec<u8>]) -> Vec<u8> {
        nla(ty | 0x8000, &inner.concat())
    }

    fn peer() -> Peer {
        Peer {
            public_key: [0xab; 32],
            endpoint: Some("192.0.2.7:51820".parse().unwrap()),
            allowed_ips: vec!["10.1.0.0/24".parse().unwrap(), "fd00::/64".parse().unwrap()],
            persistent_keepalive: Some(25),
        }
    }

    /// The bytes of a set-device with one peer, built by hand from
    /// wireguard.h's numbers (not from this module's constants).
    #[test]
    fn set_device_with_one_peer() {
        let private = [0x11; 32];
        let peer = peer();
        let msg = set_device(
            "wg0",
            &Change {
                interface: Some((&private, 51820)),
                peer: Some(PeerChange::Set(&peer)),
            },
        )
        .unwrap();
        let expected = [
            vec![1, 1, 0, 0],    // WG_CMD_SET_DEVICE, version 1
            nla(2, b"wg0\0"),    // WGDEVICE_A_IFNAME
            nla(3, &private),    // WGDEVICE_A_PRIVATE_KEY
            nla(6, &n16(51820)), // WGDEVICE_A_LISTEN_PORT, host order
            nested(
                8,
                &[nested(
                    0,
                    &[
                        // WGDEVICE_A_PEERS { peer 0 {
                        nla(1, &[0xab; 32]),         // WGPEER_A_PUBLIC_KEY
                        nla(3, &2u32.to_ne_bytes()), // WGPEER_A_FLAGS: REPLACE_ALLOWEDIPS
                        // WGPEER_A_ENDPOINT: sockaddr_in, port in network order
                        nla(
                            4,
                            &[&n16(2)[..], &[0xca, 0x6c], &[192, 0, 2, 7], &[0; 8]].concat(),
                        ),
                        nla(5, &n16(25)), // WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL
                        nested(
                            9,
                            &[
                                // WGPEER_A_ALLOWEDIPS
                                nested(
                                    0,
                                    &[nla(1, &n16(2)), nla(2, &[10, 1, 0, 0]), nla(3, &[24])],
                                ),
                                nested(
                                    0,
                                    &[
                                        nla(1, &n16(10)),
                                        nla(
                                            2,
                                            &[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                                        ),
                                        nla(3, &[64]),
                                    ],
                                ),
                            ],
                        ),
                    ],
                )],
            ),
        ]
        .concat();
        assert_eq!(msg, [expected]);
    }

    #[test]
    fn remove_peer_and_keepalive_off() {
        let key = [0xcd; 32];
        let msg = set_device(
            "wg0",
            &Change {
                interface: None,
                peer: Some(PeerChange::Remove(&key)),
            },
        )
        .unwrap();
        let expected = [
            vec![1, 1, 0, 0],
            nla(2, b"wg0\0"),
            nested(
                8,
                &[nested(0, &[nla(1, &key), nla(3, &1u32.to_ne_bytes())])],
            ), // REMOVE_ME
        ]
        .concat();
        assert_eq!(msg, [expected]);

        // No endpoint: none sent (the kernel keeps the one it has); no
        // keepalive: 0 sent, which turns it off.
        let quiet = Peer {
            endpoint: None,
            persistent_keepalive: None,
            allowed_ips: vec![],
            ..peer()
        };
        let msg = set_device(
            "wg0",
            &Change {
                interface: None,
                peer: Some(PeerChange::Set(&quiet)),
            },
        )
        .unwrap();
        let expected = [
            vec![1, 1, 0, 0],
            nla(2, b"wg0\0"),
            nested(
                8,
                &[nested(
                    0,
                    &[
                        nla(1, &[0xab; 32]),
                        nla(3, &2u32.to_ne_bytes()),
                        nla(5, &n16(0)),
                    ],
                )],
            ),
        ]
        .concat();
        assert_eq!(msg, [expected]);
    }

    /// Thousands of allowed IPs: several messages, the first replacing,
    /// the others adding to the same peer; together, every allowed IP once.
    #[test]
    fn many_allowed_ips_split() {
        let many: Vec<IpNet> = (0..2500u32)
            .map(|i| IpNet::new(Ipv6Addr::from(i as u128).into(), 128).unwrap())
            .collect();
        let peer = Peer {
            allowed_ips: many.clone(),
            ..peer()
        };
        let msgs = set_device(
            "wg0",
            &Change {
                interface: None,
                peer: Some(PeerChange::Set(&peer)),
            },
        )
        .unwrap();
        assert_eq!(msgs.len(), 3);
        let mut peers = Vec::new();
        for (i, msg) in msgs.iter().enumerate() {
            assert!(msg.len() < 65536);
            let flags = nla(3, &2u32.to_ne_bytes());
            let has_flags = msg.windows(flags.len()).any(|w| w == flags);
            assert_eq!(has_flags, i == 0, "only the first replaces");
            parse_device(msg, &mut peers).unwrap();
        }
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].allowed_ips, many);
    }

    #[test]
    fn endpoints_v6() {
        let e: SocketAddr = "[fe80::1%3]:51820".parse().unwrap();
        let raw = sockaddr(e);
        assert_eq!(raw.len(), 28);
        assert_eq!(raw[..4], [&n16(10)[..], &[0xca, 0x6c]].concat());
        assert_eq!(parse_sockaddr(&raw).unwrap(), e);
        assert!(parse_sockaddr(&raw[..27]).is_err());
        assert!(parse_sockaddr(&[]).is_err());
    }

    /// A dump in two parts as the kernel sends it for a peer whose allowed
    /// IPs did not fit the first: the second repeats the public key.
    #[test]
    fn get_device_dump_in_two_parts() {
        let ts = [&5u64.to_ne_bytes()[..], &7u64.to_ne_bytes()].concat();
        let first = [
            vec![0, 1, 0, 0],
            nla(2, b"wg0\0"),
            nla(6, &n16(51820)),
            nested(
                8,
                &[nested(
                    0,
                    &[
                        nla(1, &[0xab; 32]),
                        nla(
                            4,
                            &[&n16(2)[..], &[0xca, 0x6c], &[192, 0, 2, 7], &[0; 8]].concat(),
                        ),
                        nla(5, &n16(0)),
                        nla(6, &ts),
                        nla(7, &100u64.to_ne_bytes()),
                        nla(8, &200u64.to_ne_bytes()),
                        nla(10, &1u32.to_ne_bytes()),
                        nested(
                            9,
                            &[nested(
                                0,
                                &[nla(1, &n16(2)), nla(2, &[10, 1, 0, 0]), nla(3, &[24])],
                            )],
                        ),
                    ],
                )],
            ),
        ]
        .concat();
        let second = [
            vec![0, 1, 0, 0],
            nla(2, b"wg0\0"),
            nested(
                8,
                &[
                    nested(
                        0,
                        &[
                            nla(1, &[0xab; 32]),
                            nested(
                                9,
                                &[nested(
                                    0,
                                    &[nla(1, &n16(2)), nla(2, &[10, 2, 0, 0]), nla(3, &[16])],
                                )],
                            ),
                        ],
                    ),
                    nested(0, &[nla(1, &[0xcd; 32]), nla(6, &[0; 16])]),
                ],
            ),
        ]
        .concat();
        let mut peers = Vec::new();
        parse_device(&first, &mut peers).unwrap();
        parse_device(&second, &mut peers).unwrap();
        assert_eq!(peers.len(), 2);
        let p = &peers[0];
        assert_eq!(p.public_key, [0xab; 32]);
        assert_eq!(p.endpoint, Some("192.0.2.7:51820".parse().unwrap()));
        assert_eq!(
            p.allowed_ips,
            [
                "10.1.0.0/24".parse::<IpNet>().unwrap(),
                "10.2.0.0/16".parse().unwrap()
            ]
        );
        assert_eq!(
            p.last_handshake,
            Some(SystemTime::UNIX_EPOCH + Duration::new(5, 7))
        );
        assert_eq!(
            (p.rx_bytes, p.tx_bytes, p.persistent_keepalive),
            (100, 200, None)
        );
        assert_eq!(peers[1].public_key, [0xcd; 32]);
        assert_eq!(peers[1].last_handshake, None);

        // Truncated anywhere: an error, never a panic.
        for len in 0..first.len() {
            let _ = parse_device(&first[..len], &mut Vec::new());
        }
        let short_key = [
            vec![0, 1, 0, 0],
            nested(8, &[nested(0, &[nla(1, &[0xab; 31])])]),
        ]
        .concat();
        assert!(parse_device(&short_key, &mut Vec::new()).is_err());
        let bad_cidr = [
            vec![0, 1, 0, 0],
            nested(
                8,
                &[nested(
                    0,
                    &[
                        nla(1, &[0xab; 32]),
                        nested(
                            9,
                            &[nested(
                                0,
                                &[nla(1, &n16(2)), nla(2, &[10, 1, 0, 0]), nla(3, &[33])],
                            )],
                        ),
                    ],
                )],
            ),
        ]
        .concat();
        assert!(parse_device(&bad_cidr, &mut Vec::new()).is_err());
    }
}
