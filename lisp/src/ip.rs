//! IPv4 and IPv6 headers, as far as lispguard reads and writes them: the
//! inner header of an Encapsulated Control Message, and the packets the
//! agent takes from its TUN device and answers with ICMP errors. Checked
//! views over borrowed buffers: no allocation, no panic on any input.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const IPV4_HEADER_LEN: usize = 20;
pub const IPV6_HEADER_LEN: usize = 40;
pub const PROTOCOL_ICMP: u8 = 1;
pub const PROTOCOL_UDP: u8 = 17;
pub const PROTOCOL_ICMPV6: u8 = 58;

/// An IP packet whose header lengths were checked against the buffer;
/// `bytes` stops at the length the header declares (link padding dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// IPv4; options, if any, end at `header_len`.
    V4 {
        bytes: &'a [u8],
        header_len: usize,
        source: Ipv4Addr,
        destination: Ipv4Addr,
    },
    /// IPv6; extension headers, if any, are part of the payload.
    V6 {
        bytes: &'a [u8],
        source: Ipv6Addr,
        destination: Ipv6Addr,
    },
}

/// Why a buffer is not an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// A version nibble other than 4 or 6 (0 for an empty buffer).
    Version(u8),
    /// The buffer ends inside the fixed header.
    TruncatedHeader,
    /// IPv4: a header length under 20 bytes, or a Total Length under it.
    HeaderLength(usize),
    /// The buffer ends before the length the header declares.
    TruncatedPacket,
}

impl<'a> Packet<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>, Malformed> {
        let version = buf.first().map_or(0, |b| b >> 4);
        match version {
            4 => {
                let header = buf
                    .get(..IPV4_HEADER_LEN)
                    .ok_or(Malformed::TruncatedHeader)?;
                let header_len = usize::from(header[0] & 0x0f) * 4;
                let total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
                if header_len < IPV4_HEADER_LEN || total_len < header_len {
                    return Err(Malformed::HeaderLength(header_len));
                }
                let bytes = buf.get(..total_len).ok_or(Malformed::TruncatedPacket)?;
                Ok(Packet::V4 {
                    bytes,
                    header_len,
                    source: Ipv4Addr::new(header[12], header[13], header[14], header[15]),
                    destination: Ipv4Addr::new(header[16], header[17], header[18], header[19]),
                })
            }
            6 => {
                let header = buf
                    .get(..IPV6_HEADER_LEN)
                    .ok_or(Malformed::TruncatedHeader)?;
                // A payload length of 0 may be a jumbogram (RFC 2675); we then
                // know only that the fixed header is there, which is all we read.
                let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
                let bytes = buf
                    .get(..IPV6_HEADER_LEN + payload_len)
                    .ok_or(Malformed::TruncatedPacket)?;
                let address = |at: usize| {
                    let mut octets = [0; 16];
                    octets.copy_from_slice(&header[at..at + 16]);
                    Ipv6Addr::from(octets)
                };
                Ok(Packet::V6 {
                    bytes,
                    source: address(8),
                    destination: address(24),
                })
            }
            v => Err(Malformed::Version(v)),
        }
    }

    /// The whole packet, header included, without link padding.
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            Packet::V4 { bytes, .. } | Packet::V6 { bytes, .. } => bytes,
        }
    }

    /// IPv4's Protocol, IPv6's first Next Header.
    pub fn protocol(&self) -> u8 {
        match *self {
            Packet::V4 { bytes, .. } => bytes[9],
            Packet::V6 { bytes, .. } => bytes[6],
        }
    }

    /// What follows the (fixed, for IPv6) header.
    pub fn payload(&self) -> &'a [u8] {
        match *self {
            Packet::V4 {
                bytes, header_len, ..
            } => &bytes[header_len..],
            Packet::V6 { bytes, .. } => &bytes[IPV6_HEADER_LEN..],
        }
    }

    pub fn source(&self) -> IpAddr {
        match *self {
            Packet::V4 { source, .. } => source.into(),
            Packet::V6 { source, .. } => source.into(),
        }
    }

    pub fn destination(&self) -> IpAddr {
        match *self {
            Packet::V4 { destination, .. } => destination.into(),
            Packet::V6 { destination, .. } => destination.into(),
        }
    }
}

/// Adds `data` as big-endian 16-bit words (a last odd byte padded with
/// zero) to a one's-complement running sum; only the last slice of a
/// checksum may have odd length.
pub fn sum(mut sum: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// The Internet checksum (RFC 1071) of `data` on top of `sum`.
pub fn checksum(sum: u64, data: &[u8]) -> u16 {
    let mut sum = self::sum(sum, data);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The sum of the pseudo-header a UDP or ICMPv6 checksum covers (RFC 768,
/// RFC 8200 §8.1): source, destination, protocol and upper-layer length.
/// IPv4's 16-bit length and IPv6's 32-bit one sum to the same words.
pub fn pseudo_header_sum(source: IpAddr, destination: IpAddr, protocol: u8, length: u32) -> u64 {
    let address = |sum_so_far, ip: IpAddr| match ip {
        IpAddr::V4(ip) => self::sum(sum_so_far, &ip.octets()),
        IpAddr::V6(ip) => self::sum(sum_so_far, &ip.octets()),
    };
    let sum = address(address(0, source), destination);
    self::sum(sum, &length.to_be_bytes()) + u64::from(protocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 §3: the sum of these words is 0xddf2, complement 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(0, &data), 0x220d);
        assert_eq!(checksum(sum(0, &data[..4]), &data[4..]), 0x220d);
    }

    #[test]
    fn pseudo_header_sums_as_its_bytes() {
        let (s4, d4) = (
            "192.0.2.1".parse().unwrap(),
            "198.51.100.7".parse().unwrap(),
        );
        let v4 = [192, 0, 2, 1, 198, 51, 100, 7, 0, 17, 0x01, 0x02];
        assert_eq!(pseudo_header_sum(s4, d4, 17, 0x0102), sum(0, &v4));
        let (s6, d6): (IpAddr, IpAddr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::7".parse().unwrap(),
        );
        let mut v6 = [0u8; 40];
        if let (IpAddr::V6(s), IpAddr::V6(d)) = (s6, d6) {
            v6[..16].copy_from_slice(&s.octets());
            v6[16..32].copy_from_slice(&d.octets());
        }
        v6[32..36].copy_from_slice(&0x0001_0203u32.to_be_bytes());
        v6[39] = 58;
        assert_eq!(pseudo_header_sum(s6, d6, 58, 0x0001_0203), sum(0, &v6));
    }

    #[test]
    fn lengths_are_checked_against_the_buffer() {
        let mut v4 = [0u8; 24];
        v4[0] = 0x45;
        v4[2..4].copy_from_slice(&22u16.to_be_bytes());
        v4[9] = PROTOCOL_UDP;
        let p = Packet::parse(&v4).unwrap();
        assert_eq!(
            (p.bytes().len(), p.payload().len(), p.protocol()),
            (22, 2, 17)
        );
        v4[2..4].copy_from_slice(&25u16.to_be_bytes());
        assert_eq!(Packet::parse(&v4), Err(Malformed::TruncatedPacket));
        v4[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Packet::parse(&v4), Err(Malformed::HeaderLength(20)));
        v4[0] = 0x44;
        assert_eq!(Packet::parse(&v4), Err(Malformed::HeaderLength(16)));
        assert_eq!(Packet::parse(&v4[..19]), Err(Malformed::TruncatedHeader));
        assert_eq!(Packet::parse(&[]), Err(Malformed::Version(0)));
        assert_eq!(Packet::parse(&[0x50; 40]), Err(Malformed::Version(5)));

        let mut v6 = [0u8; 44];
        v6[0] = 0x60;
        v6[5] = 3;
        v6[6] = PROTOCOL_ICMPV6;
        let p = Packet::parse(&v6).unwrap();
        assert_eq!(
            (p.bytes().len(), p.payload().len(), p.protocol()),
            (43, 3, 58)
        );
        v6[5] = 5;
        assert_eq!(Packet::parse(&v6), Err(Malformed::TruncatedPacket));
        assert_eq!(Packet::parse(&v6[..39]), Err(Malformed::TruncatedHeader));
    }
}
