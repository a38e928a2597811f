//! The packet-level pieces against things we did not write: tshark for the
//! ICMP errors, and the kernel for the TUN device and the AF_PACKET
//! injector. Kernel tests run as root, each in a network namespace of its
//! own (namespaces are per thread; libtest gives each test a thread), so
//! their traffic never leaves it; the addresses are the documentation
//! ranges 192.0.2.0/24, 198.51.100.0/24 and 2001:db8::/32.

use std::fs;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{self, Command};
use std::time::{Duration, Instant};

use agent::inject::Injector;
use agent::packet::{
    addresses, icmp_unreachable, Addresses, Unreachable, ICMPV4_ERROR_MAX, ICMPV6_ERROR_MAX,
};
use agent::tun::Tun;

const TIMEOUT: Duration = Duration::from_secs(5);

const LOCAL4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const REMOTE4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const LOCAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 7);
/// The agent's own address, that its ICMP errors come from (RFC 1812
/// 4.3.2.4): never the unreachable destination's.
const AGENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const AGENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0xfe);

// ---------------------------------------------------------------- helpers

/// Moves the calling thread into a new, empty network namespace and brings
/// its `lo` up; `ip` run from this thread afterwards acts inside it.
fn netns() {
    // SAFETY: plain syscall; only affects the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        panic!(
            "unshare(CLONE_NEWNET): {} (these tests need root)",
            io::Error::last_os_error()
        );
    }
    ip(&["link", "set", "lo", "up"]);
}

/// Test topology only: the product code never runs `ip`.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `fd` for `events`; returns the revents, or 0 on timeout.
fn wait(fd: &impl AsRawFd, events: libc::c_short, timeout: Duration) -> libc::c_short {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) } {
            n if n > 0 => return pfd.revents,
            0 => return 0,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            _ => panic!("poll: {}", io::Error::last_os_error()),
        }
    }
}

/// Reads packets from `tun` until one satisfies `wanted`. Others (the
/// kernel's own IPv6 router solicitations and MLD reports on a fresh
/// device) are skipped.
fn recv_matching(tun: &Tun, wanted: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + TIMEOUT;
    let mut skipped = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if wait(tun, libc::POLLIN, left) == 0 {
            panic!(
                "no matching packet on {} in {TIMEOUT:?}; skipped {skipped:?}",
                tun.name()
            );
        }
        match tun.recv(&mut buf) {
            Ok(n) if wanted(&buf[..n]) => return buf[..n].to_vec(),
            Ok(n) => skipped.push(addresses(&buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("recv on {}: {e}", tun.name()),
        }
    }
}

/// RFC 1071 checksum, written here independently of the crate's.
fn inet_checksum(parts: &[&[u8]]) -> u16 {
    let mut all: Vec<u8> = parts.concat();
    if all.len() % 2 == 1 {
        all.push(0);
    }
    let mut sum: u32 = all
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A valid IPv4 or IPv6 packet carrying `transport` (whose checksum field
/// sits at `checksum_at`, and is filled in here) as `protocol`.
fn ip_packet(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    mut transport: Vec<u8>,
    checksum_at: usize,
) -> Vec<u8> {
    let len = transport.len();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            if protocol != 1 {
                let pseudo = [
                    &s.octets()[..],
                    &d.octets(),
                    &[0, protocol],
                    &(len as u16).to_be_bytes(),
                ];
                let c = inet_checksum(&[&pseudo.concat(), &transport]);
                transport[checksum_at..checksum_at + 2].copy_from_slice(&c.to_be_bytes());
            } else {
                let c = inet_checksum(&[&transport]);
                transport[checksum_at..checksum_at + 2].copy_from_slice(&c.to_be_bytes());
            }
            let mut p = vec![0x45, 0];
            p.extend_from_slice(&((20 + len) as u16).to_be_bytes());
            p.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, protocol, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let c = inet_checksum(&[&p]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p.extend_from_slice(&transport);
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let pseudo = [
                &s.octets()[..],
                &d.octets(),
                &(len as u32).to_be_bytes(),
                &[0, 0, 0, protocol],
            ];
            let c = inet_checksum(&[&pseudo.concat(), &transport]);
            transport[checksum_at..checksum_at + 2].copy_from_slice(&c.to_be_bytes());
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&(len as u16).to_be_bytes());
            p.extend_from_slice(&[protocol, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&transport);
            p
        }
        _ => unreachable!("mixed families"),
    }
}

fn udp(src: IpAddr, dst: IpAddr, payload_len: usize) -> Vec<u8> {
    // Ports 40000 -> 9 (discard): no payload dissector to trip over.
    let mut t = vec![0x9c, 0x40, 0, 9];
    t.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend((0..payload_len).map(|i| (i % 251) as u8));
    ip_packet(src, dst, 17, t, 6)
}

fn tcp_syn(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let mut t = vec![
        0xc3, 0x50, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
    ];
    t.extend_from_slice(&[0, 0, 0, 0]);
    ip_packet(src, dst, 6, t, 16)
}

fn echo_request(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let (protocol, ty) = if src.is_ipv4() { (1, 8) } else { (58, 128) };
    let mut t = vec![ty, 0, 0, 0, 0x12, 0x34, 0, 1];
    t.extend_from_slice(b"lispguard echo");
    ip_packet(src, dst, protocol, t, 2)
}

fn icmp_error(original: &[u8], from: IpAddr, why: Unreachable) -> Vec<u8> {
    let mut out = [0u8; ICMPV6_ERROR_MAX];
    let n = icmp_unreachable(original, from, why, &mut out).expect("an ICMP error");
    out[..n].to_vec()
}

// ------------------------------------------------------ packet vs tshark

/// A pcap (LINKTYPE_RAW: bare IPv4/IPv6 packets) of `packets`.
fn pcap(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    f.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    f.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    f.extend_from_slice(&101u32.to_le_bytes()); // LINKTYPE_RAW
    for (i, p) in packets.iter().enumerate() {
        f.extend_from_slice(&(i as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(p);
    }
    f
}

#[test]
fn tshark_accepts_our_icmp_errors() {
    let (l4, r4, l6, r6) = (
        IpAddr::V4(LOCAL4),
        IpAddr::V4(REMOTE4),
        IpAddr::V6(LOCAL6),
        IpAddr::V6(REMOTE6),
    );
    let originals = [
        udp(l4, r4, 72),
        udp(l4, r4, 73),
        tcp_syn(l4, r4),
        echo_request(l4, r4),
        udp(l4, r4, 1472), // 1500 bytes: quote cut at 576
        udp(l6, r6, 72),
        udp(l6, r6, 73),
        tcp_syn(l6, r6),
        echo_request(l6, r6),
        udp(l6, r6, 1452), // 1500 bytes: quote cut at 1280
    ];
    let mut packets = Vec::new();
    let mut expected = Vec::new();
    for original in &originals {
        let v4 = original[0] >> 4 == 4;
        let from = if v4 {
            IpAddr::V4(AGENT4)
        } else {
            IpAddr::V6(AGENT6)
        };
        for why in [Unreachable::Host, Unreachable::AdminProhibited] {
            let e = icmp_error(original, from, why);
            assert!(
                e.len()
                    <= if v4 {
                        ICMPV4_ERROR_MAX
                    } else {
                        ICMPV6_ERROR_MAX
                    }
            );
            if original.len() == 1500 {
                assert_eq!(e.len(), if v4 { 576 } else { 1280 });
            }
            packets.push(e);
            expected.push(match (v4, why) {
                (true, Unreachable::Host) => (3, 1),
                (true, Unreachable::AdminProhibited) => (3, 13),
                (false, Unreachable::Host) => (1, 3),
                (false, Unreachable::AdminProhibited) => (1, 1),
            });
        }
    }
    let dir = std::env::temp_dir().join(format!("lispguard-packet-io-{}", process::id()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("icmp-errors.pcap");
    fs::write(&file, pcap(&packets)).unwrap();

    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args(["-o", "ip.check_checksum:TRUE"])
        .args(["-o", "udp.check_checksum:TRUE"])
        .args(["-o", "tcp.check_checksum:TRUE"])
        .args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=a"])
        .args([
            "-e",
            "icmp.type",
            "-e",
            "icmp.code",
            "-e",
            "icmp.checksum.status",
        ])
        .args([
            "-e",
            "icmpv6.type",
            "-e",
            "icmpv6.code",
            "-e",
            "icmpv6.checksum.status",
        ])
        .args(["-e", "ip.checksum.status", "-e", "udp.checksum.status"])
        .args(["-e", "tcp.checksum.status", "-e", "_ws.malformed"])
        .args(["-e", "_ws.expert.severity", "-e", "_ws.expert.message"])
        .args(["-e", "ip.src", "-e", "ipv6.src"])
        .output()
        .expect("tshark must be installed (apt-get install tshark)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), packets.len(), "tshark output:\n{text}");
    // Checksum status: 1 = Good, 0 = Bad, 2 = Unverified (the transport
    // checksum of a quote cut short cannot be checked).
    const GOOD: &str = "1";
    const UNVERIFIED: &str = "2";
    // Expert severities up to PI_CHAT (0x00200000) are commentary, e.g.
    // "Connection establish request (SYN)"; notes, warnings and errors fail.
    const PI_CHAT: u32 = 0x0020_0000;
    for (i, (line, &(ty, code))) in lines.iter().zip(&expected).enumerate() {
        let f: Vec<Vec<&str>> = line
            .split('|')
            .map(|field| field.split(',').filter(|v| !v.is_empty()).collect())
            .collect();
        assert_eq!(f.len(), 14, "{line}");
        // The first occurrence is ours; later ones are in the quote.
        let (t, c, status) = if ty == 3 {
            (&f[0], &f[1], &f[2])
        } else {
            (&f[3], &f[4], &f[5])
        };
        assert_eq!(t.first(), Some(&ty.to_string().as_str()), "type: {line}");
        assert_eq!(c.first(), Some(&code.to_string().as_str()), "code: {line}");
        assert_eq!(status.first(), Some(&GOOD), "ICMP checksum: {line}");
        // IPv4 header checksums, ours and the quoted one.
        assert!(
            f[6].iter().all(|s| *s == GOOD),
            "IP header checksum: {line}"
        );
        assert_eq!(f[6].len(), if ty == 3 { 2 } else { 0 }, "{line}");
        let truncated = originals[i / 2].len() == 1500;
        for transport in f[7].iter().chain(&f[8]) {
            let want = if truncated { UNVERIFIED } else { GOOD };
            assert_eq!(*transport, want, "quoted UDP/TCP checksum: {line}");
        }
        assert!(f[9].is_empty(), "malformed: {line}");
        let (source, agent) = if ty == 3 {
            (&f[12], AGENT4.to_string())
        } else {
            (&f[13], AGENT6.to_string())
        };
        assert_eq!(
            source.first(),
            Some(&agent.as_str()),
            "from the agent's address: {line}"
        );
        for severity in &f[10] {
            let severity: u32 = severity.parse().unwrap();
            assert!(severity <= PI_CHAT, "expert info above chat: {line}");
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

// ------------------------------------------------------------ Tun + kernel

/// What the kernel reported to the UDP socket (IP_RECVERR / IPV6_RECVERR).
#[derive(Debug, PartialEq, Eq)]
struct KernelError {
    errno: i32,
    origin: u8,
    icmp_type: u8,
    icmp_code: u8,
    offender: IpAddr,
}

fn set_recverr(sock: &UdpSocket, v6: bool) {
    let (level, name) = if v6 {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::SOL_IP, libc::IP_RECVERR)
    };
    let on: libc::c_int = 1;
    // SAFETY: a valid int option.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt RECVERR: {}", io::Error::last_os_error());
}

/// Waits for the ICMP error to reach `sock` and reads it from the error
/// queue: the kernel's own parse of our packet (type, code, offender).
fn kernel_error(sock: &UdpSocket) -> KernelError {
    let revents = wait(sock, 0, TIMEOUT);
    assert!(
        revents & libc::POLLERR != 0,
        "no ICMP error reached the socket in {TIMEOUT:?}"
    );
    let mut data = [0u8; 2048];
    let mut control = [0u64; 64];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control) as _;
    // SAFETY: msg points at live buffers of the sizes given.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_ERRQUEUE) };
    assert!(
        n >= 0,
        "recvmsg(MSG_ERRQUEUE): {}",
        io::Error::last_os_error()
    );
    // SAFETY: walking the control buffer the kernel just filled.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let (level, ty) = ((*cmsg).cmsg_level, (*cmsg).cmsg_type);
            if (level, ty) == (libc::SOL_IP, libc::IP_RECVERR)
                || (level, ty) == (libc::SOL_IPV6, libc::IPV6_RECVERR)
            {
                let ee = libc::CMSG_DATA(cmsg) as *const libc::sock_extended_err;
                let ee_val = std::ptr::read_unaligned(ee);
                let sa = libc::SO_EE_OFFENDER(ee);
                let offender = match i32::from((*sa).sa_family) {
                    libc::AF_INET => {
                        let sin = std::ptr::read_unaligned(sa as *const libc::sockaddr_in);
                        IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                    }
                    libc::AF_INET6 => {
                        let sin6 = std::ptr::read_unaligned(sa as *const libc::sockaddr_in6);
                        IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                    }
                    f => panic!("offender family {f}"),
                };
                return KernelError {
                    errno: ee_val.ee_errno as i32,
                    origin: ee_val.ee_origin,
                    icmp_type: ee_val.ee_type,
                    icmp_code: ee_val.ee_code,
                    offender,
                };
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    panic!("no RECVERR control message");
}

/// Sends UDP from `local` to `remote` (routed to a Tun), checks the Tun
/// hands over exactly that datagram, answers it with an ICMP error written
/// into the Tun, and checks the kernel delivers that error to the sender.
fn tun_round_trip(local: IpAddr, remote: IpAddr, agent: IpAddr) {
    netns();
    let tun = Tun::open(&format!("lgtt{}", process::id())).expect("open Tun");
    let v6 = local.is_ipv6();
    let (family, host_len, prefix) = if v6 {
        ("-6", "128", "2001:db8:2::/64")
    } else {
        ("-4", "32", "198.51.100.0/24")
    };
    ip(&["link", "set", tun.name(), "up"]);
    ip(&[
        family,
        "addr",
        "add",
        &format!("{local}/{host_len}"),
        "dev",
        "lo",
        // Else the IPv6 address stays tentative until the (skipped) DAD
        // work runs, and bind() may fail with EADDRNOTAVAIL meanwhile.
        "nodad",
    ]);
    ip(&[family, "route", "add", prefix, "dev", tun.name()]);

    let sock = UdpSocket::bind(SocketAddr::new(local, 0)).unwrap();
    sock.connect(SocketAddr::new(remote, 9)).unwrap();
    sock.set_nonblocking(true).unwrap();
    set_recverr(&sock, v6);
    let port = sock.local_addr().unwrap().port();
    let (origin, header) = if v6 {
        (libc::SO_EE_ORIGIN_ICMP6, 40)
    } else {
        (libc::SO_EE_ORIGIN_ICMP, 20)
    };

    let cases = if v6 {
        [
            (Unreachable::Host, 1, 3, libc::EHOSTUNREACH),
            (Unreachable::AdminProhibited, 1, 1, libc::EACCES),
        ]
    } else {
        [
            (Unreachable::Host, 3, 1, libc::EHOSTUNREACH),
            (Unreachable::AdminProhibited, 3, 13, libc::EHOSTUNREACH),
        ]
    };
    for (why, icmp_type, icmp_code, errno) in cases {
        let payload = format!("lispguard {why:?}");
        sock.send(payload.as_bytes()).unwrap();
        let expected = Addresses {
            source: local,
            destination: remote,
        };
        let packet = recv_matching(&tun, |p| addresses(p) == Some(expected));
        assert_eq!(packet.len(), header + 8 + payload.len());
        assert_eq!(packet[if v6 { 6 } else { 9 }], 17, "UDP");
        let udp = &packet[header..];
        assert_eq!(u16::from_be_bytes([udp[0], udp[1]]), port);
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 9);
        assert_eq!(&udp[8..], payload.as_bytes());

        tun.send(&icmp_error(&packet, agent, why))
            .expect("write into Tun");
        assert_eq!(
            kernel_error(&sock),
            KernelError {
                errno,
                origin,
                icmp_type,
                icmp_code,
                offender: agent,
            }
        );
    }
}

#[test]
fn tun_hands_over_routed_ipv4_and_takes_back_icmp_errors() {
    tun_round_trip(LOCAL4.into(), REMOTE4.into(), AGENT4.into());
}

#[test]
fn tun_hands_over_routed_ipv6_and_takes_back_icmpv6_errors() {
    tun_round_trip(LOCAL6.into(), REMOTE6.into(), AGENT6.into());
}

#[test]
fn tun_recv_would_block_when_idle_and_rejects_bad_names() {
    netns();
    let tun = Tun::open(&format!("lgtw{}", process::id())).unwrap();
    let mut buf = [0u8; 1500];
    // Down, so not even the kernel's IPv6 chatter reaches it.
    assert_eq!(
        tun.recv(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    for bad in ["", "a-name-of-16-byt", "with/slash", "nul\0", "tun%d"] {
        let e = Tun::open(bad).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}: {e}");
    }
}

#[test]
fn tun_attaches_to_persistent_device_and_names_busy_one() {
    netns();
    let name = format!("lgtp{}", process::id());
    ip(&["tuntap", "add", "dev", &name, "mode", "tun"]);
    let tun = Tun::open(&name).expect("attach to persistent TUN");
    assert_eq!(tun.name(), name);
    // A single-queue device takes one reader.
    let e = Tun::open(&name).unwrap_err();
    assert!(e.to_string().contains(&name), "{e}");
    assert_eq!(e.raw_os_error(), None);
    drop(tun);
    ip(&["tuntap", "del", "dev", &name, "mode", "tun"]);
}

#[test]
fn a_packet_routed_to_the_tun_wakes_the_event_loop_s_wait() {
    netns();
    let tun = Tun::open(&format!("lgts{}", process::id())).unwrap();
    let name = tun.name().to_owned();
    ip(&["link", "set", &name, "up"]);
    ip(&["addr", "add", "192.0.2.1/32", "dev", "lo"]);
    ip(&["route", "add", "198.51.100.0/24", "dev", &name]);
    let sock = UdpSocket::bind("192.0.2.1:0").unwrap();
    sock.send_to(b"smol", "198.51.100.9:9").unwrap();

    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut buf = [0u8; 1500];
    let packet = loop {
        let mut fds = [agent::poll::readable(&tun)];
        assert_eq!(
            agent::poll::wait(&mut fds, deadline).unwrap(),
            1,
            "a packet within the timeout"
        );
        let n = tun.recv(&mut buf).unwrap();
        if buf[..n].ends_with(b"smol") {
            break buf[..n].to_vec();
        }
    };
    assert_eq!(
        addresses(&packet).unwrap().destination,
        IpAddr::from([198, 51, 100, 9])
    );
}

// ---------------------------------------------------------------- Injector

/// A Tun stands in for the WireGuard interface (both are L3 devices
/// without link header): what is injected into it comes out at its reader
/// byte for byte — as it would at wireguard-go's.
#[test]
fn injector_sends_packets_out_of_the_interface_unchanged() {
    netns();
    let tun = Tun::open(&format!("lgti{}", process::id())).unwrap();
    ip(&["link", "set", tun.name(), "up"]);
    let injector = Injector::new(tun.name()).expect("Injector::new");
    assert_eq!(injector.interface(), tun.name());

    let packets = [
        udp(LOCAL4.into(), REMOTE4.into(), 100),
        tcp_syn(LOCAL4.into(), REMOTE4.into()),
        udp(LOCAL6.into(), REMOTE6.into(), 100),
        echo_request(LOCAL6.into(), REMOTE6.into()),
        udp(LOCAL4.into(), REMOTE4.into(), 1472), // exactly the 1500 MTU
    ];
    for p in &packets {
        injector.send(p).expect("inject");
        let got = recv_matching(&tun, |q| q == &p[..]);
        assert_eq!(&got, p);
    }

    // Beyond the interface MTU: the kernel refuses, nothing is fragmented.
    let too_big = udp(LOCAL4.into(), REMOTE4.into(), 1473);
    let e = injector.send(&too_big).unwrap_err();
    assert!(e.to_string().contains("Message too long"), "{e}");
    // Not IP: refused before the kernel.
    let e = injector.send(&[0x50; 40]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        injector.send(&[]).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    // Interface down.
    ip(&["link", "set", tun.name(), "down"]);
    let e = injector.send(&packets[0]).unwrap_err();
    assert!(e.to_string().contains(tun.name()), "{e}");
    assert_eq!(e.kind(), io::ErrorKind::NetworkDown, "{e}");
}

#[test]
fn injector_names_a_missing_interface() {
    netns();
    let name = format!("lgmiss{}", process::id());
    let e = Injector::new(&name).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(&name), "{e}");
}
