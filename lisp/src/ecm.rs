//! Encapsulated Control Message (RFC 9301 §5.8): a control message with an
//! inner IP and UDP header, as an ITR sends a Map-Request to a
//! Map-Resolver.

use crate::error::{ParseError, ParseErrorKind, WriteError};
use crate::ip::{self, Malformed, Packet};
use crate::message_type;
use crate::wire::{emit_into, flag, Cursor, Emit, Writer};
use core::net::{IpAddr, SocketAddr};

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

const UDP_HEADER_LEN: usize = 8;
/// TTL / hop limit of the inner header.
const INNER_TTL: u8 = 64;

impl<'a> Ecm<'a> {
    pub fn parse(msg: &'a [u8]) -> Result<Ecm<'a>, ParseError> {
        let mut c = Cursor::new(msg);
        let word = c.header(message_type::ECM)?;
        let ip_at = c.pos();
        let inner = msg.get(ip_at..).unwrap_or_default();
        let packet = match Packet::parse(inner) {
            Ok(packet) => packet,
            Err(malformed) => return c.fail(ip_at, inner_error(inner, malformed)),
        };
        if packet.protocol() != ip::PROTOCOL_UDP {
            let (field, value) = ("inner IP protocol", packet.protocol().into());
            return c.fail(ip_at, ParseErrorKind::Invalid { field, value });
        }
        let udp_at = ip_at + (packet.bytes().len() - packet.payload().len());
        let mut c = Cursor::at(msg, udp_at, ip_at + packet.bytes().len());
        let source_port = c.u16("inner UDP source port")?;
        let destination_port = c.u16("inner UDP destination port")?;
        let udp_len = c.u16("inner UDP length")?;
        let _checksum = c.u16("inner UDP checksum")?;
        let Some(message_len) = usize::from(udp_len).checked_sub(UDP_HEADER_LEN) else {
            let (field, value) = ("inner UDP length", udp_len.into());
            return c.fail(udp_at, ParseErrorKind::Invalid { field, value });
        };
        let message = c.take("inner message", message_len)?;
        Ok(Ecm {
            security: word & bits::S != 0,
            ddt: word & bits::D != 0,
            to_etr: word & bits::E != 0,
            to_ms: word & bits::M != 0,
            source: SocketAddr::new(packet.source(), source_port),
            destination: SocketAddr::new(packet.destination(), destination_port),
            message,
        })
    }

    /// Bytes the message takes.
    pub fn buffer_len(&self) -> usize {
        self.wire_len()
    }

    /// Writes the message into `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        emit_into(self, buf)
    }

    fn udp_len(&self) -> usize {
        UDP_HEADER_LEN + self.message.len()
    }
}

/// The codec's words for what is wrong with the inner IP header.
fn inner_error(ip_at: &[u8], malformed: Malformed) -> ParseErrorKind {
    let v4 = ip_at.first().is_some_and(|b| b >> 4 == 4);
    match malformed {
        _ if ip_at.is_empty() => ParseErrorKind::Truncated {
            field: "inner IP version",
        },
        Malformed::Version(v) => ParseErrorKind::Invalid {
            field: "inner IP version",
            value: v.into(),
        },
        Malformed::TruncatedHeader => ParseErrorKind::Truncated {
            field: if v4 {
                "inner IPv4 header"
            } else {
                "inner IPv6 header"
            },
        },
        Malformed::HeaderLength(len) => ParseErrorKind::Invalid {
            field: "inner IPv4 header length",
            value: len as u32,
        },
        Malformed::TruncatedPacket => ParseErrorKind::Truncated {
            field: if v4 {
                "inner IPv4 packet"
            } else {
                "inner IPv6 payload"
            },
        },
    }
}

impl Emit for Ecm<'_> {
    fn wire_len(&self) -> usize {
        let ip_header = match self.source {
            SocketAddr::V4(_) => ip::IPV4_HEADER_LEN,
            SocketAddr::V6(_) => ip::IPV6_HEADER_LEN,
        };
        4 + ip_header + self.udp_len()
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
        match (self.source.ip(), self.destination.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total = ip::IPV4_HEADER_LEN as u16 + udp_len;
                let mut header = [0u8; ip::IPV4_HEADER_LEN];
                header[0] = 0x45;
                header[2..4].copy_from_slice(&total.to_be_bytes());
                header[8] = INNER_TTL;
                header[9] = ip::PROTOCOL_UDP;
                header[12..16].copy_from_slice(&s.octets());
                header[16..20].copy_from_slice(&d.octets());
                let checksum = ip::checksum(0, &header);
                header[10..12].copy_from_slice(&checksum.to_be_bytes());
                w.bytes(&header)?;
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                w.u32(0x6000_0000)?;
                w.u16(udp_len)?;
                w.u8(ip::PROTOCOL_UDP)?;
                w.u8(INNER_TTL)?;
                w.bytes(&s.octets())?;
                w.bytes(&d.octets())?;
            }
            _ => {
                return Err(WriteError::Invalid {
                    field: "inner destination address family",
                    value: u32::from(self.destination.is_ipv6()),
                })
            }
        }
        let mut udp = [0u8; UDP_HEADER_LEN];
        udp[0..2].copy_from_slice(&self.source.port().to_be_bytes());
        udp[2..4].copy_from_slice(&self.destination.port().to_be_bytes());
        udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
        let pseudo = ip::pseudo_header_sum(
            self.source.ip(),
            self.destination.ip(),
            ip::PROTOCOL_UDP,
            udp_len.into(),
        );
        let checksum = match ip::checksum(ip::sum(pseudo, &udp), self.message) {
            0 => 0xffff, // 0 means "no checksum" in UDP
            c => c,
        };
        udp[6..8].copy_from_slice(&checksum.to_be_bytes());
        w.bytes(&udp)?;
        w.bytes(self.message)
    }
}
