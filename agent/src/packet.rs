//! IPv4/IPv6 packets as the TUN device hands them over (no packet-info
//! header): the addresses the agent resolves, and the ICMP errors it sends
//! back when a destination has no mapping.
//!
//! Everything here works on borrowed buffers: no allocation, and no panic on
//! any input, because the input is whatever a local host chose to send.

use lisp::ip::{
    checksum, pseudo_header_sum, Packet, IPV4_HEADER_LEN, IPV6_HEADER_LEN, PROTOCOL_ICMP,
    PROTOCOL_ICMPV6,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Source and destination of an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addresses {
    pub source: IpAddr,
    pub destination: IpAddr,
}

/// Why a destination is unreachable; picks the ICMP / ICMPv6 code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreachable {
    /// The map-server has no mapping for the destination
    /// (ICMP code 1 host unreachable, ICMPv6 code 3 address unreachable).
    Host,
    /// A mapping exists but policy forbids the path
    /// (ICMP code 13 communication administratively prohibited,
    /// ICMPv6 code 1 communication with destination administratively prohibited).
    AdminProhibited,
}

/// RFC 1812 4.3.2.3: an ICMP error should carry as much of the original as
/// possible without the whole datagram exceeding 576 bytes.
pub const ICMPV4_ERROR_MAX: usize = 576;
/// RFC 4443 2.4 (c): as much of the invoking packet as possible without the
/// error exceeding the minimum IPv6 MTU, 1280 bytes.
pub const ICMPV6_ERROR_MAX: usize = 1280;

/// Type, code, checksum and the 4-byte unused field of an ICMP error.
const ICMP_ERROR_HEADER: usize = 8;
/// RFC 1812 4.3.2.5 / Linux: ICMP errors go out with precedence
/// "internetwork control" (DSCP CS6).
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;
const HOP_LIMIT: u8 = 64;

const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_HOST_UNREACH: u8 = 1;
const ICMP_PKT_FILTERED: u8 = 13;
const ICMPV6_DEST_UNREACH: u8 = 1;
const ICMPV6_ADM_PROHIBITED: u8 = 1;
const ICMPV6_ADDR_UNREACH: u8 = 3;
const ICMPV6_REDIRECT: u8 = 137;

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Source and destination of an IPv4 or IPv6 packet; None when it is too
/// short or not IP (checks version nibble, header length fields against the
/// buffer).
pub fn addresses(packet: &[u8]) -> Option<Addresses> {
    let packet = Packet::parse(packet).ok()?;
    Some(Addresses {
        source: packet.source(),
        destination: packet.destination(),
    })
}

/// Writes into `out` an ICMP (IPv4: type 3, code 1 host unreachable / code
/// 13 communication administratively prohibited) or ICMPv6 (type 1, code 3
/// address unreachable / code 1 administratively prohibited) error answering
/// `original`, sent from `from` to the original's source, with a TTL/hop
/// limit of 64, carrying as much of the original as RFC 1812 (IPv4: up to
/// 576 bytes total) / RFC 4443 (IPv6: up to 1280 total) allow; returns its
/// length.
///
/// None when `original` is not an IP packet, or is itself an ICMP error, or
/// is not the first fragment, or has a non-unicast source, or a multicast /
/// limited-broadcast destination (never answer errors with errors, never
/// multiply one packet into many answers: RFC 1812 4.3.2.7, RFC 4443 2.4 (e));
/// also None when `from` is not of the original's family or `out` is too
/// short for the answer ([`ICMPV4_ERROR_MAX`] / [`ICMPV6_ERROR_MAX`] bytes
/// always suffice). Checksums are correct (ICMPv6 with the pseudo-header).
pub fn icmp_unreachable(
    original: &[u8],
    from: IpAddr,
    why: Unreachable,
    out: &mut [u8],
) -> Option<usize> {
    match (Packet::parse(original).ok()?, from) {
        (
            Packet::V4 {
                bytes,
                header_len,
                source,
                destination,
            },
            IpAddr::V4(from),
        ) => icmpv4_unreachable(bytes, header_len, source, destination, from, why, out),
        (
            Packet::V6 {
                bytes,
                source,
                destination,
            },
            IpAddr::V6(from),
        ) => icmpv6_unreachable(bytes, source, destination, from, why, out),
        _ => None,
    }
}

/// RFC 1812 4.3.2.7: a source that does not name a single host — this
/// network (0/8), loopback, multicast, class E and limited broadcast.
fn v4_source_is_unicast(source: Ipv4Addr) -> bool {
    let first = source.octets()[0];
    !(first == 0 || source.is_loopback() || source.is_multicast() || first >= 240)
}

fn icmpv4_unreachable(
    original: &[u8],
    header_len: usize,
    source: Ipv4Addr,
    destination: Ipv4Addr,
    from: Ipv4Addr,
    why: Unreachable,
    out: &mut [u8],
) -> Option<usize> {
    if !v4_source_is_unicast(source) || destination.is_multicast() || destination.is_broadcast() {
        return None;
    }
    // Fragment offset (low 13 bits of bytes 6-7) must be 0: only the first
    // fragment carries the transport header the sender needs to match.
    if u16_at(original, 6)? & 0x1fff != 0 {
        return None;
    }
    if original.get(9) == Some(&PROTOCOL_ICMP) {
        // An ICMP packet too short to show its type is treated as an error.
        let icmp_type = *original.get(header_len)?;
        // Destination unreachable, source quench, redirect, time exceeded,
        // parameter problem (RFC 792, RFC 1812 4.3.2.7).
        if matches!(icmp_type, 3 | 4 | 5 | 11 | 12) {
            return None;
        }
    }
    let code = match why {
        Unreachable::Host => ICMP_HOST_UNREACH,
        Unreachable::AdminProhibited => ICMP_PKT_FILTERED,
    };
    let quoted = original
        .len()
        .min(ICMPV4_ERROR_MAX - IPV4_HEADER_LEN - ICMP_ERROR_HEADER);
    let total = IPV4_HEADER_LEN + ICMP_ERROR_HEADER + quoted;
    let out = out.get_mut(..total)?;
    let (ip, icmp) = out.split_at_mut(IPV4_HEADER_LEN);

    ip[0] = 0x45;
    ip[1] = TOS_INTERNETWORK_CONTROL;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    // Identification 0 with DF set: an atomic datagram (RFC 6864); at most
    // 576 bytes, which every IPv4 path to a host must carry.
    ip[4..6].copy_from_slice(&[0, 0]);
    ip[6..8].copy_from_slice(&[0x40, 0]);
    ip[8] = HOP_LIMIT;
    ip[9] = PROTOCOL_ICMP;
    ip[10..12].copy_from_slice(&[0, 0]);
    ip[12..16].copy_from_slice(&from.octets());
    ip[16..20].copy_from_slice(&source.octets());
    let ip_checksum = checksum(0, ip);
    ip[10..12].copy_from_slice(&ip_checksum.to_be_bytes());

    icmp[0] = ICMP_DEST_UNREACH;
    icmp[1] = code;
    icmp[2..8].copy_from_slice(&[0; 6]);
    icmp[8..].copy_from_slice(&original[..quoted]);
    let icmp_checksum = checksum(0, icmp);
    icmp[2..4].copy_from_slice(&icmp_checksum.to_be_bytes());
    Some(total)
}

/// What the extension-header chain of an IPv6 packet shows.
enum Upper {
    /// The upper-layer protocol and the offset of its header.
    Found(u8, usize),
    /// A Fragment header with a non-zero offset.
    LaterFragment,
    /// The chain runs past the packet, or into ESP: cannot tell.
    Unknown,
}

/// Walks the IPv6 extension headers (RFC 8200 4) to the upper-layer header.
fn upper_layer(packet: &[u8]) -> Upper {
    let mut next = match packet.get(6) {
        Some(&n) => n,
        None => return Upper::Unknown,
    };
    let mut at = IPV6_HEADER_LEN;
    loop {
        let (Some(&following), Some(&len)) = (packet.get(at), packet.get(at + 1)) else {
            return match next {
                0 | 43 | 44 | 51 | 60 | 135 | 139 | 140 => Upper::Unknown,
                _ => Upper::Found(next, at),
            };
        };
        let len = usize::from(len);
        let header_len = match next {
            // Hop-by-Hop, Routing, Destination Options, Mobility, HIP, Shim6.
            0 | 43 | 60 | 135 | 139 | 140 => (len + 1) * 8,
            // Fragment: fixed 8 bytes; offset in the top 13 bits of bytes 2-3.
            44 => {
                match u16_at(packet, at + 2) {
                    Some(offset) if offset & 0xfff8 != 0 => return Upper::LaterFragment,
                    Some(_) => {}
                    None => return Upper::Unknown,
                }
                8
            }
            // Authentication Header: length in 4-byte units, minus 2.
            51 => (len + 2) * 4,
            // ESP hides what follows.
            50 => return Upper::Unknown,
            _ => return Upper::Found(next, at),
        };
        next = following;
        at += header_len;
    }
}

fn icmpv6_unreachable(
    original: &[u8],
    source: Ipv6Addr,
    destination: Ipv6Addr,
    from: Ipv6Addr,
    why: Unreachable,
    out: &mut [u8],
) -> Option<usize> {
    if source.is_unspecified()
        || source.is_loopback()
        || source.is_multicast()
        || destination.is_multicast()
    {
        return None;
    }
    match upper_layer(original) {
        Upper::LaterFragment | Upper::Unknown => return None,
        Upper::Found(PROTOCOL_ICMPV6, at) => {
            // RFC 4443 2.4 (e): no error for an error (types 0-127) or a
            // Redirect; a truncated ICMPv6 header counts as an error.
            let icmp_type = *original.get(at)?;
            if icmp_type < 128 || icmp_type == ICMPV6_REDIRECT {
                return None;
            }
        }
        Upper::Found(..) => {}
    }
    let code = match why {
        Unreachable::Host => ICMPV6_ADDR_UNREACH,
        Unreachable::AdminProhibited => ICMPV6_ADM_PROHIBITED,
    };
    let quoted = original
        .len()
        .min(ICMPV6_ERROR_MAX - IPV6_HEADER_LEN - ICMP_ERROR_HEADER);
    let payload = ICMP_ERROR_HEADER + quoted;
    let total = IPV6_HEADER_LEN + payload;
    let out = out.get_mut(..total)?;
    let (ip, icmp) = out.split_at_mut(IPV6_HEADER_LEN);

    ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    ip[4..6].copy_from_slice(&(payload as u16).to_be_bytes());
    ip[6] = PROTOCOL_ICMPV6;
    ip[7] = HOP_LIMIT;
    ip[8..24].copy_from_slice(&from.octets());
    ip[24..40].copy_from_slice(&source.octets());

    icmp[0] = ICMPV6_DEST_UNREACH;
    icmp[1] = code;
    icmp[2..8].copy_from_slice(&[0; 6]);
    icmp[8..].copy_from_slice(&original[..quoted]);
    // ICMPv6's checksum covers the RFC 8200 8.1 pseudo-header.
    let sum = pseudo_header_sum(from.into(), source.into(), PROTOCOL_ICMPV6, payload as u32);
    let icmp_checksum = checksum(sum, icmp);
    icmp[2..4].copy_from_slice(&icmp_checksum.to_be_bytes());
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const V4_SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const V4_DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const V6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    const V6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 7);

    /// Checksum written independently of the code under test: the sum of
    /// all 16-bit words, checksum included, folds to 0xffff when correct.
    fn verifies(words: &[&[u8]]) -> bool {
        let mut all = Vec::new();
        for w in words {
            all.extend_from_slice(w);
        }
        if all.len() % 2 == 1 {
            all.push(0);
        }
        let mut sum: u32 = 0;
        for pair in all.chunks(2) {
            sum += (u32::from(pair[0]) << 8) | u32::from(pair[1]);
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    /// An IPv4 packet of `len` bytes (at least 28) with a UDP header.
    fn v4(protocol: u8, len: usize, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[8] = 63;
        p[9] = protocol;
        p[12..16].copy_from_slice(&src.octets());
        p[16..20].copy_from_slice(&dst.octets());
        let c = checksum(0, &p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        for (i, b) in p[20..].iter_mut().enumerate() {
            *b = i as u8;
        }
        p
    }

    fn v6(next: u8, len: usize, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        p[6] = next;
        p[7] = 63;
        p[8..24].copy_from_slice(&src.octets());
        p[24..40].copy_from_slice(&dst.octets());
        for (i, b) in p[40..].iter_mut().enumerate() {
            *b = i as u8;
        }
        p
    }

    fn answer(original: &[u8], from: IpAddr, why: Unreachable) -> Option<Vec<u8>> {
        let mut out = [0u8; 2000];
        let n = icmp_unreachable(original, from, why, &mut out)?;
        Some(out[..n].to_vec())
    }

    #[test]
    fn addresses_of_v4_and_v6() {
        let p = v4(17, 40, V4_SRC, V4_DST);
        assert_eq!(
            addresses(&p),
            Some(Addresses {
                source: V4_SRC.into(),
                destination: V4_DST.into()
            })
        );
        let p = v6(17, 60, V6_SRC, V6_DST);
        assert_eq!(
            addresses(&p),
            Some(Addresses {
                source: V6_SRC.into(),
                destination: V6_DST.into()
            })
        );
    }

    #[test]
    fn addresses_rejects_truncated_and_garbage() {
        let p4 = v4(17, 40, V4_SRC, V4_DST);
        let p6 = v6(17, 60, V6_SRC, V6_DST);
        // Every strict prefix is shorter than the declared total length.
        for n in 0..p4.len() {
            assert_eq!(addresses(&p4[..n]), None, "v4 prefix {n}");
        }
        for n in 0..p6.len() {
            assert_eq!(addresses(&p6[..n]), None, "v6 prefix {n}");
        }
        // Trailing link padding is fine.
        let mut padded = p4.clone();
        padded.extend_from_slice(&[0; 6]);
        assert!(addresses(&padded).is_some());
        // IHL below 5, or beyond the total length.
        let mut bad = p4.clone();
        bad[0] = 0x44;
        assert_eq!(addresses(&bad), None);
        let mut bad = p4.clone();
        bad[0] = 0x4f; // 60-byte header in a 40-byte packet
        assert_eq!(addresses(&bad), None);
        // Other versions.
        for version in [0u8, 5, 7, 15] {
            let mut bad = p6.clone();
            bad[0] = version << 4;
            assert_eq!(addresses(&bad), None);
        }
    }

    #[test]
    fn icmpv4_host_unreachable_parses_back() {
        let original = v4(17, 100, V4_SRC, V4_DST);
        let e = answer(&original, V4_DST.into(), Unreachable::Host).unwrap();
        assert_eq!(e.len(), 20 + 8 + 100);
        assert_eq!(e[0], 0x45);
        assert_eq!(u16::from_be_bytes([e[2], e[3]]) as usize, e.len());
        assert_eq!(e[6] & 0x1f, 0, "not a fragment");
        assert_eq!(e[8], 64, "TTL");
        assert_eq!(e[9], 1, "protocol ICMP");
        assert_eq!(&e[12..16], &V4_DST.octets());
        assert_eq!(&e[16..20], &V4_SRC.octets());
        assert!(verifies(&[&e[..20]]), "IP header checksum");
        assert_eq!((e[20], e[21]), (3, 1));
        assert_eq!(&e[24..28], &[0; 4]);
        assert!(verifies(&[&e[20..]]), "ICMP checksum");
        assert_eq!(&e[28..], &original[..]);
        assert_eq!(
            addresses(&e),
            Some(Addresses {
                source: V4_DST.into(),
                destination: V4_SRC.into()
            })
        );
    }

    #[test]
    fn icmpv4_admin_prohibited_code() {
        let original = v4(6, 60, V4_SRC, V4_DST);
        let e = answer(&original, V4_DST.into(), Unreachable::AdminProhibited).unwrap();
        assert_eq!((e[20], e[21]), (3, 13));
        assert!(verifies(&[&e[20..]]));
    }

    #[test]
    fn icmpv6_address_unreachable_parses_back() {
        let original = v6(17, 100, V6_SRC, V6_DST);
        let e = answer(&original, V6_DST.into(), Unreachable::Host).unwrap();
        assert_eq!(e.len(), 40 + 8 + 100);
        assert_eq!(e[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([e[4], e[5]]) as usize, e.len() - 40);
        assert_eq!(e[6], 58, "next header ICMPv6");
        assert_eq!(e[7], 64, "hop limit");
        assert_eq!(&e[8..24], &V6_DST.octets());
        assert_eq!(&e[24..40], &V6_SRC.octets());
        assert_eq!((e[40], e[41]), (1, 3));
        assert_eq!(&e[44..48], &[0; 4]);
        let len = ((e.len() - 40) as u32).to_be_bytes();
        assert!(verifies(&[&e[8..40], &len, &[0, 0, 0, 58], &e[40..]]));
        assert_eq!(&e[48..], &original[..]);

        let e = answer(&original, V6_DST.into(), Unreachable::AdminProhibited).unwrap();
        assert_eq!((e[40], e[41]), (1, 1));
        assert!(verifies(&[&e[8..40], &len, &[0, 0, 0, 58], &e[40..]]));
    }

    #[test]
    fn odd_length_quote_checksums() {
        let original = v4(17, 101, V4_SRC, V4_DST);
        let e = answer(&original, V4_DST.into(), Unreachable::Host).unwrap();
        assert!(verifies(&[&e[20..]]));
        let original = v6(17, 101, V6_SRC, V6_DST);
        let e = answer(&original, V6_DST.into(), Unreachable::Host).unwrap();
        let len = ((e.len() - 40) as u32).to_be_bytes();
        assert!(verifies(&[&e[8..40], &len, &[0, 0, 0, 58], &e[40..]]));
    }

    #[test]
    fn quotes_are_truncated_to_the_rfc_limits() {
        let original = v4(17, 1500, V4_SRC, V4_DST);
        let e = answer(&original, V4_DST.into(), Unreachable::Host).unwrap();
        assert_eq!(e.len(), 576);
        assert_eq!(&e[28..], &original[..548]);
        assert!(verifies(&[&e[20..]]));

        let original = v6(17, 1500, V6_SRC, V6_DST);
        let e = answer(&original, V6_DST.into(), Unreachable::Host).unwrap();
        assert_eq!(e.len(), 1280);
        assert_eq!(&e[48..], &original[..1232]);
        let len = 1240u32.to_be_bytes();
        assert!(verifies(&[&e[8..40], &len, &[0, 0, 0, 58], &e[40..]]));
    }

    #[test]
    fn out_too_short_is_none_and_exact_fits() {
        let original = v4(17, 1500, V4_SRC, V4_DST);
        let mut out = [0u8; ICMPV4_ERROR_MAX];
        assert_eq!(
            icmp_unreachable(&original, V4_DST.into(), Unreachable::Host, &mut out),
            Some(576)
        );
        assert_eq!(
            icmp_unreachable(&original, V4_DST.into(), Unreachable::Host, &mut out[..575]),
            None
        );
        let original = v6(17, 1500, V6_SRC, V6_DST);
        let mut out = [0u8; ICMPV6_ERROR_MAX];
        assert_eq!(
            icmp_unreachable(&original, V6_DST.into(), Unreachable::Host, &mut out),
            Some(1280)
        );
    }

    #[test]
    fn padding_is_not_quoted() {
        let original = v4(17, 40, V4_SRC, V4_DST);
        let mut padded = original.clone();
        padded.extend_from_slice(&[0xee; 10]);
        let e = answer(&padded, V4_DST.into(), Unreachable::Host).unwrap();
        assert_eq!(&e[28..], &original[..]);
    }

    #[test]
    fn no_answer_to_icmp_errors() {
        for t in [3u8, 4, 5, 11, 12] {
            let mut p = v4(1, 56, V4_SRC, V4_DST);
            p[20] = t;
            assert_eq!(
                answer(&p, V4_DST.into(), Unreachable::Host),
                None,
                "type {t}"
            );
        }
        // Echo request is answered.
        let mut p = v4(1, 56, V4_SRC, V4_DST);
        p[20] = 8;
        assert!(answer(&p, V4_DST.into(), Unreachable::Host).is_some());
        // ICMP without a type byte: cannot tell, no answer.
        let p = v4(1, 20, V4_SRC, V4_DST);
        assert_eq!(answer(&p, V4_DST.into(), Unreachable::Host), None);

        for t in [1u8, 2, 3, 4, 100, 127, 137] {
            let mut p = v6(58, 88, V6_SRC, V6_DST);
            p[40] = t;
            assert_eq!(
                answer(&p, V6_DST.into(), Unreachable::Host),
                None,
                "type {t}"
            );
        }
        let mut p = v6(58, 88, V6_SRC, V6_DST);
        p[40] = 128; // echo request
        assert!(answer(&p, V6_DST.into(), Unreachable::Host).is_some());
    }

    #[test]
    fn no_answer_to_icmpv6_error_behind_extension_headers() {
        // Hop-by-Hop (8 bytes) then Destination Options (16 bytes) then ICMPv6.
        let mut p = v6(0, 40 + 8 + 16 + 8, V6_SRC, V6_DST);
        p[40] = 60;
        p[41] = 0;
        p[48] = 58;
        p[49] = 1;
        p[64] = 1; // destination unreachable
        assert_eq!(answer(&p, V6_DST.into(), Unreachable::Host), None);
        p[64] = 128;
        assert!(answer(&p, V6_DST.into(), Unreachable::Host).is_some());
        // Chain running past the packet: cannot tell.
        let mut p = v6(0, 44, V6_SRC, V6_DST);
        p[40] = 60;
        p[41] = 4;
        assert_eq!(answer(&p, V6_DST.into(), Unreachable::Host), None);
    }

    #[test]
    fn no_answer_to_non_unicast_sources_or_group_destinations() {
        for src in [
            Ipv4Addr::new(224, 0, 0, 1),
            Ipv4Addr::new(239, 1, 2, 3),
            Ipv4Addr::BROADCAST,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(0, 1, 2, 3),
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::new(240, 0, 0, 1),
        ] {
            let p = v4(17, 40, src, V4_DST);
            assert_eq!(answer(&p, V4_DST.into(), Unreachable::Host), None, "{src}");
        }
        for dst in [Ipv4Addr::new(224, 0, 0, 251), Ipv4Addr::BROADCAST] {
            let p = v4(17, 40, V4_SRC, dst);
            assert_eq!(answer(&p, V4_DST.into(), Unreachable::Host), None, "{dst}");
        }
        for src in [
            "ff02::1".parse::<Ipv6Addr>().unwrap(),
            Ipv6Addr::UNSPECIFIED,
            Ipv6Addr::LOCALHOST,
        ] {
            let p = v6(17, 60, src, V6_DST);
            assert_eq!(answer(&p, V6_DST.into(), Unreachable::Host), None, "{src}");
        }
        let p = v6(17, 60, V6_SRC, "ff0e::1".parse().unwrap());
        assert_eq!(answer(&p, V6_DST.into(), Unreachable::Host), None);
    }

    #[test]
    fn only_first_fragments_are_answered() {
        let mut p = v4(17, 60, V4_SRC, V4_DST);
        p[6] = 0x20; // MF, offset 0: first fragment
        assert!(answer(&p, V4_DST.into(), Unreachable::Host).is_some());
        p[6] = 0x20;
        p[7] = 0x01; // offset 8 bytes
        assert_eq!(answer(&p, V4_DST.into(), Unreachable::Host), None);
        p[6] = 0x00; // last fragment, offset 8
        assert_eq!(answer(&p, V4_DST.into(), Unreachable::Host), None);

        // IPv6 Fragment header: next header UDP, offset in bytes 2-3.
        let mut p = v6(44, 40 + 8 + 16, V6_SRC, V6_DST);
        p[40] = 17;
        p[42..44].copy_from_slice(&[0, 1]); // offset 0, M flag
        assert!(answer(&p, V6_DST.into(), Unreachable::Host).is_some());
        p[42..44].copy_from_slice(&[0, 8]); // offset 1 (8 bytes)
        assert_eq!(answer(&p, V6_DST.into(), Unreachable::Host), None);
        // A later fragment of an ICMPv6 packet, too.
        p[40] = 58;
        assert_eq!(answer(&p, V6_DST.into(), Unreachable::Host), None);
    }

    #[test]
    fn family_mismatch_is_none() {
        let p = v4(17, 40, V4_SRC, V4_DST);
        assert_eq!(answer(&p, V6_DST.into(), Unreachable::Host), None);
        let p = v6(17, 60, V6_SRC, V6_DST);
        assert_eq!(answer(&p, V4_DST.into(), Unreachable::Host), None);
    }

    #[test]
    fn random_bytes_never_panic() {
        // A cheap deterministic generator on top of proptest, so that this
        // runs even with PROPTEST_CASES=1.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut out = [0u8; 1280];
        for round in 0..20_000 {
            let len = round % 200;
            let mut buf = [0u8; 200];
            for b in &mut buf[..len] {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            // Bias towards the interesting versions.
            if len > 0 && round % 2 == 0 {
                buf[0] = (buf[0] & 0x0f) | if round % 4 == 0 { 0x40 } else { 0x60 };
            }
            let _ = addresses(&buf[..len]);
            let _ = icmp_unreachable(&buf[..len], V4_DST.into(), Unreachable::Host, &mut out);
            let _ = icmp_unreachable(&buf[..len], V6_DST.into(), Unreachable::Host, &mut out);
        }
    }

    fn ip_like() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x40, 0x60, 0x00]),
            prop::collection::vec(any::<u8>(), 0..1600),
        )
            .prop_map(|(first, mut rest)| {
                if !rest.is_empty() {
                    rest[0] = first;
                }
                // Make the length fields agree with the buffer often.
                let len = rest.len();
                if len >= 4 && first >> 4 == 4 && len % 3 != 0 {
                    rest[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                }
                if len >= 6 && first >> 4 == 6 && len >= 40 && len % 3 != 0 {
                    rest[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
                }
                rest
            })
    }

    proptest! {
        #[test]
        fn no_panic_on_any_input(p in ip_like(), out_len in 0usize..1400, admin in any::<bool>()) {
            let why = if admin { Unreachable::AdminProhibited } else { Unreachable::Host };
            let mut out = vec![0u8; out_len];
            let parsed = addresses(&p);
            for from in [IpAddr::from(V4_DST), IpAddr::from(V6_DST)] {
                if let Some(n) = icmp_unreachable(&p, from, why, &mut out) {
                    // Whatever is produced is a well-formed IP packet back
                    // to the original's source, within the RFC limits.
                    let a = addresses(&out[..n]).expect("answer parses");
                    prop_assert_eq!(Some(a.destination), parsed.map(|p| p.source));
                    prop_assert_eq!(a.source, from);
                    let limit = if from.is_ipv4() { ICMPV4_ERROR_MAX } else { ICMPV6_ERROR_MAX };
                    prop_assert!(n <= limit);
                }
            }
        }
    }
}
