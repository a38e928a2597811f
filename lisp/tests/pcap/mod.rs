//! A pcap writer for tests: LISP control messages as UDP datagrams
//! (port 4342 between two loopback addresses, or given endpoints), link
//! type RAW (IPv4 headers).

#![allow(dead_code)]

use std::net::SocketAddrV4;

const LINKTYPE_RAW: u32 = 101;

/// The Internet checksum of an IPv4 header (RFC 1071).
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A pcap file holding `payloads` as UDP 127.0.0.1:4342 -> 127.0.0.2:4342.
pub fn udp_4342(payloads: &[&[u8]]) -> Vec<u8> {
    let from = SocketAddrV4::new([127, 0, 0, 1].into(), 4342);
    let to = SocketAddrV4::new([127, 0, 0, 2].into(), 4342);
    let datagrams: Vec<_> = payloads.iter().map(|p| (from, to, *p)).collect();
    udp(&datagrams)
}

/// A pcap file holding each payload as a UDP datagram from and to its
/// endpoints.
pub fn udp(datagrams: &[(SocketAddrV4, SocketAddrV4, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
    for (n, (from, to, payload)) in datagrams.iter().enumerate() {
        let udp_len = 8 + payload.len();
        let total = 20 + udp_len;
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&from.ip().octets());
        ip[16..20].copy_from_slice(&to.ip().octets());
        let checksum = ipv4_checksum(&ip);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        let mut udp = [0u8; 8];
        udp[0..2].copy_from_slice(&from.port().to_be_bytes());
        udp[2..4].copy_from_slice(&to.port().to_be_bytes());
        udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        // UDP checksum 0: none (allowed over IPv4).
        out.extend_from_slice(&(n as u32 + 1).to_le_bytes()); // ts_sec
        out.extend_from_slice(&0u32.to_le_bytes()); // ts_usec
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&ip);
        out.extend_from_slice(&udp);
        out.extend_from_slice(payload);
    }
    out
}
