//! Encapsulated Control Message (RFC 9301 §5.8): a control message with an
//! inner IP and UDP header, as an ITR sends a Map-Request to a
//! Map-Resolver.

use crate::error::{ParseError, ParseErrorKind, WriteError};
use crate::message_type;
use crate::wire::{array, fail, flag, header, parse_all, take_, u16_, u8_, Emit, Res, Writer};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// An ECM; `message` is the inner control message, not parsed here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ecm<'a> {
    /// S bit: LISP-SEC data follows (not produced by lispguard).
    pub security: bool,
    /// D bit: sent by a DDT node.
    pub ddt: bool,
    /// E bit: to be forwarded to an authoritative ETR.
    pub to_etr: bool,
    /// M bit: a co-located Map-Server may answer it.
    pub to_ms: bool,
    /// The inner IP and UDP source.
    pub source: SocketAddr,
    /// The inner IP and UDP destination.
    pub destination: SocketAddr,
    pub message: &'a [u8],
}

mod bits {
    pub const S: u32 = 1 << 27;
    pub const D: u32 = 1 << 26;
    pub const E: u32 = 1 << 25;
    pub const M: u32 = 1 << 24;
}

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const UDP_HEADER_LEN: usize = 8;
const UDP: u8 = 17;
/// TTL / hop limit of the inner header.
const INNER_TTL: u8 = 64;

impl<'a> Ecm<'a> {
    pub fn parse(msg: &'a [u8]) -> Result<Ecm<'a>, ParseError> {
        parse_all(msg, parse)
    }

    /// Writes the message into `buf` and returns its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        let mut w = Writer::for_message(buf, self.wire_len())?;
        self.emit(&mut w)?;
        Ok(w.len())
    }

    fn udp_len(&self) -> usize {
        UDP_HEADER_LEN + self.message.len()
    }
}

pub(crate) fn parse(i: &[u8]) -> Res<'_, Ecm<'_>> {
    let (i, word) = header(message_type::ECM)(i)?;
    let ip_at = i;
    let (_, version) = u8_("inner IP version")(i)?;
    let (i, (source, destination, ip_payload)) = match version >> 4 {
        4 => parse_ipv4(i)?,
        6 => parse_ipv6(i)?,
        v => {
            return fail(
                ip_at,
                ParseErrorKind::Invalid {
                    field: "inner IP version",
                    value: v.into(),
                },
            )
        }
    };
    let udp_at = ip_payload;
    let (p, source_port) = u16_("inner UDP source port")(ip_payload)?;
    let (p, destination_port) = u16_("inner UDP destination port")(p)?;
    let (p, udp_len) = u16_("inner UDP length")(p)?;
    let (p, _checksum) = u16_("inner UDP checksum")(p)?;
    let Some(message_len) = usize::from(udp_len).checked_sub(UDP_HEADER_LEN) else {
        return fail(
            udp_at,
            ParseErrorKind::Invalid {
                field: "inner UDP length",
                value: udp_len.into(),
            },
        );
    };
    let (_, message) = take_("inner message", message_len)(p)?;
    Ok((
        i,
        Ecm {
            security: word & bits::S != 0,
            ddt: word & bits::D != 0,
            to_etr: word & bits::E != 0,
            to_ms: word & bits::M != 0,
            source: SocketAddr::new(source, source_port),
            destination: SocketAddr::new(destination, destination_port),
            message,
        },
    ))
}

type Inner<'a> = (IpAddr, IpAddr, &'a [u8]);

/// An IPv4 header (options skipped); returns the addresses and the
/// payload that Total Length delimits.
fn parse_ipv4(i: &[u8]) -> Res<'_, Inner<'_>> {
    let start = i;
    let (_, header) = take_("inner IPv4 header", IPV4_HEADER_LEN)(i)?;
    let header_len = usize::from(header[0] & 0x0f) * 4;
    let total_len = u16::from_be_bytes([header[2], header[3]]);
    if header_len < IPV4_HEADER_LEN || usize::from(total_len) < header_len {
        return fail(
            start,
            ParseErrorKind::Invalid {
                field: "inner IPv4 header length",
                value: header_len as u32,
            },
        );
    }
    check_udp(start, header[9])?;
    let (rest, packet) = take_("inner IPv4 packet", total_len.into())(i)?;
    let source = Ipv4Addr::new(header[12], header[13], header[14], header[15]);
    let destination = Ipv4Addr::new(header[16], header[17], header[18], header[19]);
    Ok((
        rest,
        (source.into(), destination.into(), &packet[header_len..]),
    ))
}

/// An IPv6 header without extension headers.
fn parse_ipv6(i: &[u8]) -> Res<'_, Inner<'_>> {
    let start = i;
    let (i, _version_class_flow) = array::<4>("inner IPv6 header")(i)?;
    let (i, payload_len) = u16_("inner IPv6 payload length")(i)?;
    let (i, next_header) = u8_("inner IPv6 next header")(i)?;
    check_udp(start, next_header)?;
    let (i, _hop_limit) = u8_("inner IPv6 hop limit")(i)?;
    let (i, source) = array::<16>("inner IPv6 source")(i)?;
    let (i, destination) = array::<16>("inner IPv6 destination")(i)?;
    let (rest, payload) = take_("inner IPv6 payload", payload_len.into())(i)?;
    Ok((
        rest,
        (
            Ipv6Addr::from(source).into(),
            Ipv6Addr::from(destination).into(),
            payload,
        ),
    ))
}

fn check_udp(at: &[u8], protocol: u8) -> Res<'_, ()> {
    if protocol != UDP {
        return fail(
            at,
            ParseErrorKind::Invalid {
                field: "inner IP protocol",
                value: protocol.into(),
            },
        );
    }
    Ok((at, ()))
}

/// The Internet checksum (RFC 1071) of `parts`; all but the last must be
/// of even length.
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        let mut words = part.chunks_exact(2);
        for word in &mut words {
            sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Emit for Ecm<'_> {
    fn wire_len(&self) -> usize {
        let ip = match self.source {
            SocketAddr::V4(_) => IPV4_HEADER_LEN,
            SocketAddr::V6(_) => IPV6_HEADER_LEN,
        };
        4 + ip + self.udp_len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        let udp_len = u16::try_from(self.udp_len()).map_err(|_| WriteError::Invalid {
            field: "inner message length",
            value: self.message.len() as u32,
        })?;
        w.u32(
            u32::from(message_type::ECM) << 28
                | flag(self.security, bits::S)
                | flag(self.ddt, bits::D)
                | flag(self.to_etr, bits::E)
                | flag(self.to_ms, bits::M),
        )?;
        // The pseudo-header the UDP checksum covers (RFC 768, RFC 8200 §8.1).
        let mut pseudo = [0u8; 40];
        let pseudo_len = match (self.source.ip(), self.destination.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total = IPV4_HEADER_LEN as u16 + udp_len;
                let mut ip = [0u8; IPV4_HEADER_LEN];
                ip[0] = 0x45;
                ip[2..4].copy_from_slice(&total.to_be_bytes());
                ip[8] = INNER_TTL;
                ip[9] = UDP;
                ip[12..16].copy_from_slice(&s.octets());
                ip[16..20].copy_from_slice(&d.octets());
                let checksum = internet_checksum(&[&ip]);
                ip[10..12].copy_from_slice(&checksum.to_be_bytes());
                w.bytes(&ip)?;
                pseudo[..4].copy_from_slice(&s.octets());
                pseudo[4..8].copy_from_slice(&d.octets());
                pseudo[9] = UDP;
                pseudo[10..12].copy_from_slice(&udp_len.to_be_bytes());
                12
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                w.u32(0x6000_0000)?;
                w.u16(udp_len)?;
                w.u8(UDP)?;
                w.u8(INNER_TTL)?;
                w.bytes(&s.octets())?;
                w.bytes(&d.octets())?;
                pseudo[..16].copy_from_slice(&s.octets());
                pseudo[16..32].copy_from_slice(&d.octets());
                pseudo[32..36].copy_from_slice(&u32::from(udp_len).to_be_bytes());
                pseudo[39] = UDP;
                40
            }
            _ => {
                return Err(WriteError::Invalid {
                    field: "inner destination address family",
                    value: u32::from(self.destination.is_ipv6()),
                })
            }
        };
        let mut udp = [0u8; UDP_HEADER_LEN];
        udp[0..2].copy_from_slice(&self.source.port().to_be_bytes());
        udp[2..4].copy_from_slice(&self.destination.port().to_be_bytes());
        udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
        let checksum = match internet_checksum(&[&pseudo[..pseudo_len], &udp, self.message]) {
            0 => 0xffff, // 0 means "no checksum" in UDP
            c => c,
        };
        udp[6..8].copy_from_slice(&checksum.to_be_bytes());
        w.bytes(&udp)?;
        w.bytes(self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 §3: the sum of these words is 0xddf2, complement 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&[&data]), 0x220d);
    }
}
