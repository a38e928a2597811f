//! Addresses as LISP carries them: an AFI and what follows it (RFC 9301
//! §5.1), including the LISP Canonical Address Format (LCAF, RFC 8060)
//! types lispguard uses.
//!
//! Nesting is bounded by the types: an Instance-ID LCAF wraps a plain
//! address, a Security Key LCAF wraps a plain address or an Instance-ID
//! LCAF. Whatever cannot be represented — an LCAF type we do not know, a
//! nesting the types do not allow, more than [`MAX_LCAF_DEPTH`] levels — is
//! skipped by its length and parsed as [`Address::Unknown`], so that newer
//! peers interoperate.

use crate::error::{ParseErrorKind, WriteError};
use crate::wire::{array, fail, take_, u16_, u32_, u8_, Emit, Res, Writer};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Address Family Identifiers (IANA) used by LISP.
pub mod afi {
    /// No address, e.g. an unset Source EID.
    pub const NONE: u16 = 0;
    pub const IPV4: u16 = 1;
    pub const IPV6: u16 = 2;
    /// LISP Canonical Address Format (RFC 8060).
    pub const LCAF: u16 = 16387;
}

/// LCAF types (RFC 8060 §3).
pub mod lcaf_type {
    pub const INSTANCE_ID: u8 = 2;
    pub const NAT_TRAVERSAL: u8 = 7;
    pub const SECURITY_KEY: u8 = 11;
}

/// LCAF levels the parser descends before it skips the rest by length.
pub const MAX_LCAF_DEPTH: usize = 3;
/// RTR RLOCs kept from a NAT-Traversal LCAF.
pub const MAX_RTR_RLOCS: usize = 2;
/// Key material kept from a Security Key LCAF; longer keys (e.g. 2048-bit
/// MODP) are skipped as an unknown address.
pub const MAX_KEY_LEN: usize = 64;

/// RFC 8061 §4 cipher suite 6 (`LISP_256_EC25519_CHACHA20_POLY1305`):
/// X25519 with ChaCha20-Poly1305, the suite of a WireGuard public key.
pub const KEY_ALGORITHM_X25519_CHACHA20: u8 = 6;

/// The WireGuard port a plain-AFI locator implies (DESIGN: a locator
/// carries its port in a NAT-Traversal LCAF only when it is another one).
pub const WIREGUARD_PORT: u16 = 51820;

/// An address field: AFI 0, an IP address, or an LCAF.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// AFI 0: no address.
    None,
    /// AFI 1 or 2.
    Ip(IpAddr),
    /// Instance-ID LCAF (type 2): the address within a virtual network.
    InstanceId(InstanceId),
    /// NAT-Traversal LCAF (type 7): how to reach an ETR behind a NAT.
    NatTraversal(NatTraversal),
    /// Security Key LCAF (type 11): a public key bound to an address.
    SecurityKey(SecurityKey),
    /// An LCAF this codec does not represent, skipped by its length.
    Unknown { lcaf_type: u8 },
}

/// Instance-ID LCAF body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InstanceId {
    /// The virtual network (tenant) the address belongs to.
    pub iid: u32,
    /// IID mask-len: how many leading bits of `iid` are significant, for
    /// registering a range of instances; 0 for a single one.
    pub mask_len: u8,
    /// The wrapped address; `None` is AFI 0.
    pub address: Option<IpAddr>,
}

/// NAT-Traversal LCAF body (RFC 8060 §4.3; used as in RFC 9735).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NatTraversal {
    pub ms_port: u16,
    /// The UDP port the ETR is reachable at (its WireGuard port).
    pub etr_port: u16,
    /// The address the ETR is seen at from outside its NAT.
    pub global_etr_rloc: Option<IpAddr>,
    pub ms_rloc: Option<IpAddr>,
    /// The address the ETR has on its own interface.
    pub private_etr_rloc: Option<IpAddr>,
    pub rtr_rlocs: heapless::Vec<IpAddr, MAX_RTR_RLOCS>,
}

/// Security Key LCAF body carrying one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecurityKey {
    /// RFC 8061 cipher suite of the key, e.g. [`KEY_ALGORITHM_X25519_CHACHA20`].
    pub algorithm: u8,
    /// R bit: the key is being revoked.
    pub revoked: bool,
    pub key: heapless::Vec<u8, MAX_KEY_LEN>,
    /// The address the key belongs to.
    pub address: KeyedAddress,
}

/// What a Security Key LCAF wraps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyedAddress {
    Ip(Option<IpAddr>),
    InstanceId(InstanceId),
}

impl Address {
    /// The address lispguard registers for an EID: the IP address, inside
    /// an Instance-ID LCAF when `iid` is not 0, inside a Security Key LCAF
    /// carrying the WireGuard public key when there is one.
    pub fn eid(iid: u32, ip: IpAddr, wireguard_key: Option<&[u8; 32]>) -> Address {
        let keyed = if iid == 0 {
            KeyedAddress::Ip(Some(ip))
        } else {
            KeyedAddress::InstanceId(InstanceId {
                iid,
                mask_len: 0,
                address: Some(ip),
            })
        };
        match (wireguard_key, keyed) {
            (Some(key), address) => Address::SecurityKey(SecurityKey {
                algorithm: KEY_ALGORITHM_X25519_CHACHA20,
                revoked: false,
                key: heapless::Vec::from_slice(key).unwrap_or_default(),
                address,
            }),
            (None, KeyedAddress::Ip(_)) => Address::Ip(ip),
            (None, KeyedAddress::InstanceId(instance)) => Address::InstanceId(instance),
        }
    }

    /// The locator for a WireGuard endpoint: a plain address at the
    /// default port, else a NAT-Traversal LCAF carrying the port.
    pub fn rloc(endpoint: SocketAddr) -> Address {
        if endpoint.port() == WIREGUARD_PORT {
            return Address::Ip(endpoint.ip());
        }
        Address::NatTraversal(NatTraversal {
            etr_port: endpoint.port(),
            global_etr_rloc: Some(endpoint.ip()),
            ..NatTraversal::default()
        })
    }

    /// The WireGuard endpoint a locator names: a plain address at the
    /// default port, or a NAT-Traversal LCAF's global (else private) ETR
    /// RLOC at its ETR port.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        match self {
            Address::Ip(ip) => Some(SocketAddr::new(*ip, WIREGUARD_PORT)),
            Address::NatTraversal(n) => {
                let ip = n.global_etr_rloc.or(n.private_etr_rloc)?;
                Some(SocketAddr::new(ip, n.etr_port))
            }
            _ => None,
        }
    }

    /// The IP address inside whatever wraps it.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ip(ip) => Some(*ip),
            Address::InstanceId(i) => i.address,
            Address::SecurityKey(k) => match &k.address {
                KeyedAddress::Ip(ip) => *ip,
                KeyedAddress::InstanceId(i) => i.address,
            },
            Address::None | Address::NatTraversal(_) | Address::Unknown { .. } => None,
        }
    }

    /// The instance ID, 0 when no Instance-ID LCAF is present.
    pub fn instance_id(&self) -> u32 {
        match self {
            Address::InstanceId(i)
            | Address::SecurityKey(SecurityKey {
                address: KeyedAddress::InstanceId(i),
                ..
            }) => i.iid,
            _ => 0,
        }
    }

    /// The WireGuard public key, when a Security Key LCAF carries an X25519
    /// key of the right length.
    pub fn wireguard_key(&self) -> Option<[u8; 32]> {
        match self {
            Address::SecurityKey(k) if k.algorithm == KEY_ALGORITHM_X25519_CHACHA20 => {
                k.key.as_slice().try_into().ok()
            }
            _ => None,
        }
    }
}

/// Bits of the innermost IP address: the limit of a mask-len over it.
pub(crate) fn max_mask_len(address: &Address) -> Option<u8> {
    match address.ip()? {
        IpAddr::V4(_) => Some(32),
        IpAddr::V6(_) => Some(128),
    }
}

pub(crate) fn parse(i: &[u8]) -> Res<'_, Address> {
    parse_at_depth(i, 0)
}

fn parse_at_depth(i: &[u8], depth: usize) -> Res<'_, Address> {
    let start = i;
    let (i, afi) = u16_("AFI")(i)?;
    match afi {
        afi::NONE => Ok((i, Address::None)),
        afi::IPV4 => {
            let (i, octets) = array::<4>("IPv4 address")(i)?;
            Ok((i, Address::Ip(Ipv4Addr::from(octets).into())))
        }
        afi::IPV6 => {
            let (i, octets) = array::<16>("IPv6 address")(i)?;
            Ok((i, Address::Ip(Ipv6Addr::from(octets).into())))
        }
        afi::LCAF => parse_lcaf(i, depth),
        _ => fail(start, ParseErrorKind::UnknownAfi(afi)),
    }
}

/// The LCAF header after its AFI (Rsvd1, Flags, Type, Rsvd2, Length), then
/// the body, which must be consumed exactly.
fn parse_lcaf(i: &[u8], depth: usize) -> Res<'_, Address> {
    let header = i;
    let (i, _rsvd1) = u8_("LCAF Rsvd1")(i)?;
    let (i, _flags) = u8_("LCAF Flags")(i)?;
    let (i, lcaf_type) = u8_("LCAF Type")(i)?;
    let (i, rsvd2) = u8_("LCAF Rsvd2")(i)?;
    let (i, length) = u16_("LCAF Length")(i)?;
    let (rest, body) = take_("LCAF body", usize::from(length))(i)?;
    if depth >= MAX_LCAF_DEPTH {
        return Ok((rest, Address::Unknown { lcaf_type }));
    }
    let parsed = match lcaf_type {
        lcaf_type::INSTANCE_ID => parse_instance_id(body, rsvd2, depth),
        lcaf_type::NAT_TRAVERSAL => parse_nat_traversal(body, depth),
        lcaf_type::SECURITY_KEY => parse_security_key(body, depth),
        _ => skipped(body, lcaf_type),
    };
    let (left, address) = parsed?;
    if !left.is_empty() {
        return fail(header, ParseErrorKind::LcafLength { lcaf_type, length });
    }
    Ok((rest, address))
}

/// A plain address (AFI 0, 1 or 2) inside an LCAF of type `outer`, or
/// `Err(lcaf_type)` of what to report as unknown when it is something else.
fn inner_ip(address: Address, outer: u8) -> Result<Option<IpAddr>, u8> {
    match address {
        Address::None => Ok(None),
        Address::Ip(ip) => Ok(Some(ip)),
        Address::Unknown { lcaf_type } => Err(lcaf_type),
        _ => Err(outer),
    }
}

/// What a parser returns for an LCAF it skips: nothing left of the body.
fn skipped(body: &[u8], lcaf_type: u8) -> Res<'_, Address> {
    Ok((&body[body.len()..], Address::Unknown { lcaf_type }))
}

fn parse_instance_id(body: &[u8], mask_len: u8, depth: usize) -> Res<'_, Address> {
    let (i, iid) = u32_("Instance ID")(body)?;
    let (i, inner) = parse_at_depth(i, depth + 1)?;
    let address = match inner_ip(inner, lcaf_type::INSTANCE_ID) {
        Ok(address) => address,
        Err(unknown) => return skipped(i, unknown),
    };
    Ok((
        i,
        Address::InstanceId(InstanceId {
            iid,
            mask_len,
            address,
        }),
    ))
}

fn parse_nat_traversal(body: &[u8], depth: usize) -> Res<'_, Address> {
    let (i, ms_port) = u16_("MS UDP Port Number")(body)?;
    let (mut i, etr_port) = u16_("ETR UDP Port Number")(i)?;
    let mut rlocs = [None; 3];
    for rloc in &mut rlocs {
        let (rest, inner) = parse_at_depth(i, depth + 1)?;
        i = rest;
        match inner_ip(inner, lcaf_type::NAT_TRAVERSAL) {
            Ok(address) => *rloc = address,
            Err(_) => return skipped(i, lcaf_type::NAT_TRAVERSAL),
        }
    }
    let mut rtr_rlocs = heapless::Vec::new();
    while !i.is_empty() {
        let (rest, inner) = parse_at_depth(i, depth + 1)?;
        i = rest;
        match inner_ip(inner, lcaf_type::NAT_TRAVERSAL) {
            Ok(Some(rtr)) if rtr_rlocs.push(rtr).is_ok() => {}
            _ => return skipped(i, lcaf_type::NAT_TRAVERSAL),
        }
    }
    let [global_etr_rloc, ms_rloc, private_etr_rloc] = rlocs;
    Ok((
        i,
        Address::NatTraversal(NatTraversal {
            ms_port,
            etr_port,
            global_etr_rloc,
            ms_rloc,
            private_etr_rloc,
            rtr_rlocs,
        }),
    ))
}

/// Key Count, Rsvd3, Key Algorithm, Rsvd4 + R bit, Key Length, Key
/// Material, then the wrapped address. Only a single key is represented.
fn parse_security_key(body: &[u8], depth: usize) -> Res<'_, Address> {
    let (i, key_count) = u8_("Key Count")(body)?;
    if key_count != 1 {
        return skipped(body, lcaf_type::SECURITY_KEY);
    }
    let (i, _rsvd3) = u8_("Rsvd3")(i)?;
    let (i, algorithm) = u8_("Key Algorithm")(i)?;
    let (i, rsvd4_r) = u8_("R bit")(i)?;
    let (i, key_len) = u16_("Key Length")(i)?;
    let (i, key) = take_("Key Material", usize::from(key_len))(i)?;
    let (i, inner) = parse_at_depth(i, depth + 1)?;
    let Ok(key) = heapless::Vec::from_slice(key) else {
        return skipped(i, lcaf_type::SECURITY_KEY);
    };
    let address = match inner {
        Address::InstanceId(instance) => KeyedAddress::InstanceId(instance),
        other => match inner_ip(other, lcaf_type::SECURITY_KEY) {
            Ok(ip) => KeyedAddress::Ip(ip),
            Err(unknown) => return skipped(i, unknown),
        },
    };
    Ok((
        i,
        Address::SecurityKey(SecurityKey {
            algorithm,
            revoked: rsvd4_r & 1 == 1,
            key,
            address,
        }),
    ))
}

const LCAF_HEADER_LEN: usize = 8;

fn ip_len(ip: &Option<IpAddr>) -> usize {
    match ip {
        None => 2,
        Some(IpAddr::V4(_)) => 6,
        Some(IpAddr::V6(_)) => 18,
    }
}

fn emit_ip(ip: &Option<IpAddr>, w: &mut Writer<'_>) -> Result<(), WriteError> {
    match ip {
        None => w.u16(afi::NONE),
        Some(IpAddr::V4(a)) => {
            w.u16(afi::IPV4)?;
            w.bytes(&a.octets())
        }
        Some(IpAddr::V6(a)) => {
            w.u16(afi::IPV6)?;
            w.bytes(&a.octets())
        }
    }
}

fn emit_lcaf_header(
    w: &mut Writer<'_>,
    lcaf_type: u8,
    rsvd2: u8,
    body_len: usize,
) -> Result<(), WriteError> {
    let length = u16::try_from(body_len).map_err(|_| WriteError::Invalid {
        field: "LCAF Length",
        value: body_len as u32,
    })?;
    w.u16(afi::LCAF)?;
    w.u8(0)?; // Rsvd1
    w.u8(0)?; // Flags
    w.u8(lcaf_type)?;
    w.u8(rsvd2)?;
    w.u16(length)
}

impl InstanceId {
    fn body_len(&self) -> usize {
        4 + ip_len(&self.address)
    }
}

impl Emit for InstanceId {
    fn wire_len(&self) -> usize {
        LCAF_HEADER_LEN + self.body_len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        emit_lcaf_header(w, lcaf_type::INSTANCE_ID, self.mask_len, self.body_len())?;
        w.u32(self.iid)?;
        emit_ip(&self.address, w)
    }
}

impl NatTraversal {
    fn body_len(&self) -> usize {
        4 + ip_len(&self.global_etr_rloc)
            + ip_len(&self.ms_rloc)
            + ip_len(&self.private_etr_rloc)
            + self
                .rtr_rlocs
                .iter()
                .map(|r| ip_len(&Some(*r)))
                .sum::<usize>()
    }
}

impl Emit for NatTraversal {
    fn wire_len(&self) -> usize {
        LCAF_HEADER_LEN + self.body_len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        emit_lcaf_header(w, lcaf_type::NAT_TRAVERSAL, 0, self.body_len())?;
        w.u16(self.ms_port)?;
        w.u16(self.etr_port)?;
        emit_ip(&self.global_etr_rloc, w)?;
        emit_ip(&self.ms_rloc, w)?;
        emit_ip(&self.private_etr_rloc, w)?;
        for rtr in &self.rtr_rlocs {
            emit_ip(&Some(*rtr), w)?;
        }
        Ok(())
    }
}

impl SecurityKey {
    fn body_len(&self) -> usize {
        6 + self.key.len()
            + match &self.address {
                KeyedAddress::Ip(ip) => ip_len(ip),
                KeyedAddress::InstanceId(instance) => instance.wire_len(),
            }
    }
}

impl Emit for SecurityKey {
    fn wire_len(&self) -> usize {
        LCAF_HEADER_LEN + self.body_len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        emit_lcaf_header(w, lcaf_type::SECURITY_KEY, 0, self.body_len())?;
        w.u8(1)?; // Key Count
        w.u8(0)?; // Rsvd3
        w.u8(self.algorithm)?;
        w.u8(u8::from(self.revoked))?; // Rsvd4 and the R bit
        w.u16(self.key.len() as u16)?; // at most MAX_KEY_LEN
        w.bytes(&self.key)?;
        match &self.address {
            KeyedAddress::Ip(ip) => emit_ip(ip, w),
            KeyedAddress::InstanceId(instance) => instance.emit(w),
        }
    }
}

impl Emit for Address {
    fn wire_len(&self) -> usize {
        match self {
            Address::None => ip_len(&None),
            Address::Ip(ip) => ip_len(&Some(*ip)),
            Address::InstanceId(x) => x.wire_len(),
            Address::NatTraversal(x) => x.wire_len(),
            Address::SecurityKey(x) => x.wire_len(),
            Address::Unknown { .. } => 0,
        }
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        match self {
            Address::None => emit_ip(&None, w),
            Address::Ip(ip) => emit_ip(&Some(*ip), w),
            Address::InstanceId(x) => x.emit(w),
            Address::NatTraversal(x) => x.emit(w),
            Address::SecurityKey(x) => x.emit(w),
            // Its bytes were skipped, not kept: it cannot be sent on.
            Address::Unknown { lcaf_type } => Err(WriteError::Invalid {
                field: "unknown LCAF type",
                value: u32::from(*lcaf_type),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_all;

    fn bytes_of(address: &Address) -> Vec<u8> {
        let mut buf = vec![0; address.wire_len()];
        let mut w = Writer::for_message(&mut buf, address.wire_len()).unwrap();
        address.emit(&mut w).unwrap();
        assert_eq!(w.len(), address.wire_len());
        buf
    }

    #[test]
    fn eid_with_key_and_instance_lays_out_as_rfc8060() {
        let key = [0x11; 32];
        let eid = Address::eid(7, "10.1.0.0".parse().unwrap(), Some(&key));
        let mut expected = vec![
            0x40, 0x03, 0, 0, 11, 0, 0, 56, // LCAF header, type 11, length 56
            1, 0, 6, 0, 0, 32, // count 1, suite 6, R=0, key length 32
        ];
        expected.extend_from_slice(&key);
        expected.extend_from_slice(&[
            0x40, 0x03, 0, 0, 2, 0, 0, 10, // LCAF header, type 2, length 10
            0, 0, 0, 7, // instance ID 7
            0, 1, 10, 1, 0, 0, // AFI 1, 10.1.0.0
        ]);
        assert_eq!(bytes_of(&eid), expected);
        assert_eq!(parse_all(&expected, parse), Ok(eid.clone()));
        assert_eq!(eid.instance_id(), 7);
        assert_eq!(eid.wireguard_key(), Some(key));
        assert_eq!(eid.ip(), Some("10.1.0.0".parse().unwrap()));
    }

    #[test]
    fn endpoints_map_to_locators_and_back() {
        let default: SocketAddr = "192.0.2.7:51820".parse().unwrap();
        assert_eq!(Address::rloc(default), Address::Ip(default.ip()));
        let other: SocketAddr = "[2001:db8::7]:40000".parse().unwrap();
        assert!(matches!(Address::rloc(other), Address::NatTraversal(_)));
        for endpoint in [default, other] {
            assert_eq!(Address::rloc(endpoint).endpoint(), Some(endpoint));
        }
    }

    #[test]
    fn instance_zero_without_key_is_a_plain_afi() {
        let eid = Address::eid(0, "2001:db8::1".parse().unwrap(), None);
        assert_eq!(eid, Address::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(bytes_of(&eid)[..2], [0, 2]);
    }

    #[test]
    fn unknown_lcaf_type_is_skipped_by_length() {
        // Type 16 (JSON, RFC 8060 §5.4), 3 body bytes, then a plain AFI.
        let msg = [
            0x40, 0x03, 0, 0, 16, 0, 0, 3, b'{', b'}', 0, 0, 1, 1, 2, 3, 4,
        ];
        let (rest, a) = parse(&msg).unwrap();
        assert_eq!(a, Address::Unknown { lcaf_type: 16 });
        assert_eq!(
            parse(rest).unwrap().1,
            Address::Ip("1.2.3.4".parse().unwrap())
        );
    }

    #[test]
    fn deep_nesting_is_skipped_not_followed() {
        // Instance-ID LCAFs nested 5 deep around an IPv4 address.
        let mut msg = vec![0, 1, 10, 0, 0, 1];
        for _ in 0..5 {
            let mut outer = vec![0x40, 0x03, 0, 0, 2, 0];
            outer.extend_from_slice(&((4 + msg.len()) as u16).to_be_bytes());
            outer.extend_from_slice(&[0, 0, 0, 1]);
            outer.extend_from_slice(&msg);
            msg = outer;
        }
        let (rest, a) = parse(&msg).unwrap();
        assert!(rest.is_empty());
        assert_eq!(a, Address::Unknown { lcaf_type: 2 });
    }

    #[test]
    fn lcaf_length_that_disagrees_with_body_is_an_error_at_the_lcaf() {
        // Instance-ID LCAF claiming 11 bytes holding 10 + one stray byte.
        let msg = [
            0x40, 0x03, 0, 0, 2, 0, 0, 11, 0, 0, 0, 1, 0, 1, 10, 0, 0, 1, 0xff,
        ];
        let err = parse_all(&msg, parse).unwrap_err();
        assert_eq!(err.offset, 2);
        assert_eq!(
            err.kind,
            ParseErrorKind::LcafLength {
                lcaf_type: 2,
                length: 11
            }
        );
    }

    #[test]
    fn unknown_afi_is_named_with_its_offset() {
        let err = parse_all(&[0, 6, 1, 2, 3, 4, 5, 6], parse).unwrap_err();
        assert_eq!(err.offset, 0);
        assert_eq!(err.kind, ParseErrorKind::UnknownAfi(6));
    }
}
