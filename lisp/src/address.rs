//! Addresses as LISP carries them: an AFI and what follows it (RFC 9301
//! §5.1), including the LISP Canonical Address Format (LCAF, RFC 8060)
//! types lispguard uses. Keys and unknown addresses borrow their bytes
//! from the message.
//!
//! Nesting is bounded by the types: an Instance-ID LCAF wraps a plain
//! address, a Security Key LCAF wraps a plain address or an Instance-ID
//! LCAF. Whatever cannot be represented — an LCAF type we do not know, a
//! nesting the types do not allow, more than [`MAX_LCAF_DEPTH`] levels — is
//! kept whole as [`Address::Unknown`], by its length: newer peers
//! interoperate, and it is written back byte for byte.

use crate::error::{ParseError, ParseErrorKind, WriteError};
use crate::list::Item;
use crate::wire::{Cursor, Emit, Writer};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Address Family Identifiers (IANA) used by LISP.
pub mod afi {
    /// No address, e.g. an unset Source EID.
    pub const NONE: u16 = 0;
    pub const IPV4: u16 = 1;
    pub const IPV6: u16 = 2;
    /// Distinguished Name (RFC 9735): a null-terminated ASCII string.
    pub const DISTINGUISHED_NAME: u16 = 17;
    /// LISP Canonical Address Format (RFC 8060).
    pub const LCAF: u16 = 16387;
}

/// LCAF types (RFC 8060 §3).
pub mod lcaf_type {
    pub const INSTANCE_ID: u8 = 2;
    pub const NAT_TRAVERSAL: u8 = 7;
    pub const SECURITY_KEY: u8 = 11;
}

/// LCAF levels the parser descends before it keeps the rest whole.
pub const MAX_LCAF_DEPTH: usize = 3;
/// The longest Distinguished Name read, in bytes without its null: a
/// bound of this codec, not of RFC 9735.
pub const MAX_NAME: usize = 255;
/// RTR RLOCs kept from a NAT-Traversal LCAF.
pub const MAX_RTR_RLOCS: usize = 2;

/// RFC 8061 §4 cipher suite 6 (`LISP_256_EC25519_CHACHA20_POLY1305`):
/// X25519 with ChaCha20-Poly1305, the suite of a WireGuard public key.
pub const KEY_ALGORITHM_X25519_CHACHA20: u8 = 6;

/// The WireGuard port a plain-AFI locator implies (a locator carries its
/// port in a NAT-Traversal LCAF only when it is another one).
pub const WIREGUARD_PORT: u16 = 51820;

/// An address field: AFI 0, an IP address, or an LCAF.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address<'a> {
    /// AFI 0: no address.
    None,
    /// AFI 1 or 2.
    Ip(IpAddr),
    /// AFI 17, a Distinguished Name (RFC 9735): printable ASCII, at most
    /// [`MAX_NAME`] bytes, written with its terminating null.
    Name(&'a str),
    /// Instance-ID LCAF (type 2): the address within a virtual network.
    InstanceId(InstanceId),
    /// NAT-Traversal LCAF (type 7): how to reach an ETR behind a NAT.
    NatTraversal(NatTraversal),
    /// Security Key LCAF (type 11): a public key bound to an address.
    SecurityKey(SecurityKey<'a>),
    /// An LCAF this codec does not represent, kept as it came.
    Unknown(Unknown<'a>),
}

/// Instance-ID LCAF body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InstanceId {
    /// LCAF Flags, kept as received.
    pub flags: u8,
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
    /// LCAF Flags, kept as received.
    pub flags: u8,
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
pub struct SecurityKey<'a> {
    /// LCAF Flags, kept as received.
    pub flags: u8,
    /// RFC 8061 cipher suite of the key, e.g. [`KEY_ALGORITHM_X25519_CHACHA20`].
    pub algorithm: u8,
    /// R bit: the key is being revoked.
    pub revoked: bool,
    /// Key Material.
    pub key: &'a [u8],
    /// The address the key belongs to.
    pub address: KeyedAddress,
}

/// What a Security Key LCAF wraps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyedAddress {
    Ip(Option<IpAddr>),
    InstanceId(InstanceId),
}

/// An LCAF not represented here: its type, and the whole address as on
/// the wire (AFI and LCAF header included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Unknown<'a> {
    pub lcaf_type: u8,
    pub bytes: &'a [u8],
}

impl<'a> Address<'a> {
    /// The address lispguard registers for an EID: the IP address, inside
    /// an Instance-ID LCAF when `iid` is not 0, inside a Security Key LCAF
    /// carrying the WireGuard public key when there is one.
    pub fn eid(iid: u32, ip: IpAddr, wireguard_key: Option<&'a [u8; 32]>) -> Address<'a> {
        let keyed = if iid == 0 {
            KeyedAddress::Ip(Some(ip))
        } else {
            KeyedAddress::InstanceId(InstanceId {
                flags: 0,
                iid,
                mask_len: 0,
                address: Some(ip),
            })
        };
        match (wireguard_key, keyed) {
            (Some(key), address) => Address::SecurityKey(SecurityKey {
                flags: 0,
                algorithm: KEY_ALGORITHM_X25519_CHACHA20,
                revoked: false,
                key,
                address,
            }),
            (None, KeyedAddress::Ip(_)) => Address::Ip(ip),
            (None, KeyedAddress::InstanceId(instance)) => Address::InstanceId(instance),
        }
    }

    /// The locator for a WireGuard endpoint: a plain address at the
    /// default port, else a NAT-Traversal LCAF carrying the port.
    pub fn rloc(endpoint: SocketAddr) -> Address<'a> {
        if endpoint.port() == WIREGUARD_PORT {
            return Address::Ip(endpoint.ip());
        }
        Address::NatTraversal(NatTraversal {
            etr_port: endpoint.port(),
            global_etr_rloc: Some(endpoint.ip()),
            ..NatTraversal::default()
        })
    }

    /// The locator of a destination reached through a relay (RFC 9735's
    /// RTR): a NAT-Traversal LCAF whose RTR RLOC is the relay and whose
    /// ETR port is the relay's port for the receiver's side of the pair;
    /// the global ETR RLOC is where the destination is seen, for
    /// information.
    pub fn relayed(relay: SocketAddr, seen: Option<IpAddr>) -> Address<'a> {
        let mut rtr_rlocs = heapless::Vec::new();
        let _ = rtr_rlocs.push(relay.ip());
        Address::NatTraversal(NatTraversal {
            etr_port: relay.port(),
            global_etr_rloc: seen,
            rtr_rlocs,
            ..NatTraversal::default()
        })
    }

    /// Whether this locator is reached through a relay (see
    /// [`Address::relayed`]).
    pub fn is_relayed(&self) -> bool {
        matches!(self, Address::NatTraversal(n) if !n.rtr_rlocs.is_empty())
    }

    /// The WireGuard endpoint a locator names: a plain address at the
    /// default port, or a NAT-Traversal LCAF's RTR RLOC (a relay), else
    /// its global (else private) ETR RLOC, at its ETR port.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        match self {
            Address::Ip(ip) => Some(SocketAddr::new(*ip, WIREGUARD_PORT)),
            Address::NatTraversal(n) => {
                let ip = n
                    .rtr_rlocs
                    .first()
                    .copied()
                    .or(n.global_etr_rloc)
                    .or(n.private_etr_rloc)?;
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
            Address::None | Address::Name(_) | Address::NatTraversal(_) | Address::Unknown(_) => {
                None
            }
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
                k.key.try_into().ok()
            }
            _ => None,
        }
    }

    /// Whether a Security Key LCAF says its key is being revoked (R bit).
    pub fn revoked(&self) -> bool {
        matches!(self, Address::SecurityKey(k) if k.revoked)
    }
}

/// Bits of the innermost IP address: the limit of a mask-len over it.
pub(crate) fn max_mask_len(address: &Address<'_>) -> Option<u8> {
    match address.ip()? {
        IpAddr::V4(_) => Some(32),
        IpAddr::V6(_) => Some(128),
    }
}

impl<'a> Item<'a> for Address<'a> {
    fn read(c: &mut Cursor<'a>) -> Result<Self, ParseError> {
        read_at_depth(c, 0)
    }
}

fn read_at_depth<'a>(c: &mut Cursor<'a>, depth: usize) -> Result<Address<'a>, ParseError> {
    let start = c.pos();
    let afi = c.u16("AFI")?;
    match afi {
        afi::NONE => Ok(Address::None),
        afi::IPV4 => Ok(Address::Ip(
            Ipv4Addr::from(c.array::<4>("IPv4 address")?).into(),
        )),
        afi::IPV6 => Ok(Address::Ip(
            Ipv6Addr::from(c.array::<16>("IPv6 address")?).into(),
        )),
        afi::LCAF => read_lcaf(c, start, depth),
        afi::DISTINGUISHED_NAME => read_name(c),
        _ => c.fail(start, ParseErrorKind::UnknownAfi(afi)),
    }
}

/// A Distinguished Name after its AFI: printable ASCII up to the null,
/// at most [`MAX_NAME`] bytes of it.
fn read_name<'a>(c: &mut Cursor<'a>) -> Result<Address<'a>, ParseError> {
    let start = c.pos();
    loop {
        let at = c.pos();
        match c.u8("Distinguished Name")? {
            0 => break,
            _ if at - start >= MAX_NAME => {
                return c.fail(
                    start,
                    ParseErrorKind::TooMany {
                        field: "Distinguished Name bytes",
                        max: MAX_NAME,
                    },
                )
            }
            b if b == b' ' || b.is_ascii_graphic() => {}
            b => {
                return c.fail(
                    at,
                    ParseErrorKind::Invalid {
                        field: "Distinguished Name byte",
                        value: b.into(),
                    },
                )
            }
        }
    }
    let bytes = c.since(start);
    match core::str::from_utf8(&bytes[..bytes.len() - 1]) {
        Ok(name) => Ok(Address::Name(name)),
        // Printable ASCII is UTF-8: this is not reached.
        Err(_) => c.fail(
            start,
            ParseErrorKind::Invalid {
                field: "Distinguished Name",
                value: 0,
            },
        ),
    }
}

/// A plain address (AFI 0, 1 or 2) inside an LCAF, or `None` when it is
/// something else (then the LCAF is kept whole).
fn read_inner_ip(c: &mut Cursor<'_>, depth: usize) -> Result<Option<Option<IpAddr>>, ParseError> {
    Ok(match read_at_depth(c, depth)? {
        Address::None => Some(None),
        Address::Ip(ip) => Some(Some(ip)),
        _ => None,
    })
}

/// The LCAF header after its AFI (Rsvd1, Flags, Type, Rsvd2, Length), then
/// the body, which must be consumed exactly. `start` is where the AFI was.
fn read_lcaf<'a>(
    c: &mut Cursor<'a>,
    start: usize,
    depth: usize,
) -> Result<Address<'a>, ParseError> {
    let header = c.pos();
    let _rsvd1 = c.u8("LCAF Rsvd1")?;
    let flags = c.u8("LCAF Flags")?;
    let lcaf_type = c.u8("LCAF Type")?;
    let rsvd2 = c.u8("LCAF Rsvd2")?;
    let length = c.u16("LCAF Length")?;
    let mut body = c.sub("LCAF body", usize::from(length))?;
    let parsed = match lcaf_type {
        _ if depth >= MAX_LCAF_DEPTH => None,
        lcaf_type::INSTANCE_ID => {
            read_instance_id(&mut body, flags, rsvd2, depth)?.map(Address::InstanceId)
        }
        lcaf_type::NAT_TRAVERSAL => {
            read_nat_traversal(&mut body, flags, depth)?.map(Address::NatTraversal)
        }
        lcaf_type::SECURITY_KEY => {
            read_security_key(&mut body, flags, depth)?.map(Address::SecurityKey)
        }
        _ => None,
    };
    match parsed {
        Some(_) if !body.is_empty() => {
            c.fail(header, ParseErrorKind::LcafLength { lcaf_type, length })
        }
        Some(address) => Ok(address),
        None => Ok(Address::Unknown(Unknown {
            lcaf_type,
            bytes: c.since(start),
        })),
    }
}

fn read_instance_id(
    c: &mut Cursor<'_>,
    flags: u8,
    mask_len: u8,
    depth: usize,
) -> Result<Option<InstanceId>, ParseError> {
    let iid = c.u32("Instance ID")?;
    Ok(read_inner_ip(c, depth + 1)?.map(|address| InstanceId {
        flags,
        iid,
        mask_len,
        address,
    }))
}

fn read_nat_traversal(
    c: &mut Cursor<'_>,
    flags: u8,
    depth: usize,
) -> Result<Option<NatTraversal>, ParseError> {
    let ms_port = c.u16("MS UDP Port Number")?;
    let etr_port = c.u16("ETR UDP Port Number")?;
    let mut rlocs = [None; 3];
    for rloc in &mut rlocs {
        match read_inner_ip(c, depth + 1)? {
            Some(address) => *rloc = address,
            None => return Ok(None),
        }
    }
    let mut rtr_rlocs = heapless::Vec::new();
    while !c.is_empty() {
        match read_inner_ip(c, depth + 1)? {
            Some(Some(rtr)) if rtr_rlocs.push(rtr).is_ok() => {}
            _ => return Ok(None),
        }
    }
    let [global_etr_rloc, ms_rloc, private_etr_rloc] = rlocs;
    Ok(Some(NatTraversal {
        flags,
        ms_port,
        etr_port,
        global_etr_rloc,
        ms_rloc,
        private_etr_rloc,
        rtr_rlocs,
    }))
}

/// Key Count, Rsvd3, Key Algorithm, Rsvd4 + R bit, Key Length, Key
/// Material, then the wrapped address. Only a single key is represented.
fn read_security_key<'a>(
    c: &mut Cursor<'a>,
    flags: u8,
    depth: usize,
) -> Result<Option<SecurityKey<'a>>, ParseError> {
    let key_count = c.u8("Key Count")?;
    if key_count != 1 {
        return Ok(None);
    }
    let _rsvd3 = c.u8("Rsvd3")?;
    let algorithm = c.u8("Key Algorithm")?;
    let rsvd4_r = c.u8("R bit")?;
    let key_len = c.u16("Key Length")?;
    let key = c.take("Key Material", usize::from(key_len))?;
    let address = match read_at_depth(c, depth + 1)? {
        Address::None => KeyedAddress::Ip(None),
        Address::Ip(ip) => KeyedAddress::Ip(Some(ip)),
        Address::InstanceId(instance) => KeyedAddress::InstanceId(instance),
        _ => return Ok(None),
    };
    Ok(Some(SecurityKey {
        flags,
        algorithm,
        revoked: rsvd4_r & 1 == 1,
        key,
        address,
    }))
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
    flags: u8,
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
    w.u8(flags)?;
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
        let body = self.body_len();
        emit_lcaf_header(w, self.flags, lcaf_type::INSTANCE_ID, self.mask_len, body)?;
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
        let body = self.body_len();
        emit_lcaf_header(w, self.flags, lcaf_type::NAT_TRAVERSAL, 0, body)?;
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

impl SecurityKey<'_> {
    fn body_len(&self) -> usize {
        6 + self.key.len()
            + match &self.address {
                KeyedAddress::Ip(ip) => ip_len(ip),
                KeyedAddress::InstanceId(instance) => instance.wire_len(),
            }
    }
}

impl Emit for SecurityKey<'_> {
    fn wire_len(&self) -> usize {
        LCAF_HEADER_LEN + self.body_len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        let key_len = u16::try_from(self.key.len()).map_err(|_| WriteError::Invalid {
            field: "Key Length",
            value: self.key.len() as u32,
        })?;
        let body = self.body_len();
        emit_lcaf_header(w, self.flags, lcaf_type::SECURITY_KEY, 0, body)?;
        w.u8(1)?; // Key Count
        w.u8(0)?; // Rsvd3
        w.u8(self.algorithm)?;
        w.u8(u8::from(self.revoked))?; // Rsvd4 and the R bit
        w.u16(key_len)?;
        w.bytes(self.key)?;
        match &self.address {
            KeyedAddress::Ip(ip) => emit_ip(ip, w),
            KeyedAddress::InstanceId(instance) => instance.emit(w),
        }
    }
}

impl Emit for Address<'_> {
    fn wire_len(&self) -> usize {
        match self {
            Address::None => ip_len(&None),
            Address::Ip(ip) => ip_len(&Some(*ip)),
            Address::Name(name) => 2 + name.len() + 1,
            Address::InstanceId(x) => x.wire_len(),
            Address::NatTraversal(x) => x.wire_len(),
            Address::SecurityKey(x) => x.wire_len(),
            Address::Unknown(x) => x.bytes.len(),
        }
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        match self {
            Address::None => emit_ip(&None, w),
            Address::Ip(ip) => emit_ip(&Some(*ip), w),
            Address::Name(name) => {
                w.u16(afi::DISTINGUISHED_NAME)?;
                w.bytes(name.as_bytes())?;
                w.u8(0)
            }
            Address::InstanceId(x) => x.emit(w),
            Address::NatTraversal(x) => x.emit(w),
            Address::SecurityKey(x) => x.emit(w),
            Address::Unknown(x) => w.bytes(x.bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The address at the start of `bytes`, and how many bytes it took.
    fn parse(bytes: &[u8]) -> Result<(Address<'_>, usize), ParseError> {
        let mut c = Cursor::new(bytes);
        let address = Address::read(&mut c)?;
        Ok((address, c.pos()))
    }

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
        assert_eq!(parse(&expected), Ok((eid.clone(), expected.len())));
        assert_eq!(eid.instance_id(), 7);
        assert_eq!(eid.wireguard_key(), Some(key));
        assert_eq!(eid.ip(), Some("10.1.0.0".parse().unwrap()));
    }

    #[test]
    fn lcaf_flags_are_kept() {
        let msg = [0x40, 0x03, 0, 0x5a, 2, 0, 0, 6, 0, 0, 0, 1, 0, 0];
        let (a, _) = parse(&msg).unwrap();
        assert!(matches!(&a, Address::InstanceId(i) if i.flags == 0x5a));
        assert_eq!(bytes_of(&a), msg);
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
    fn a_relayed_locator_names_the_relay_as_rtr_and_its_port_as_endpoint() {
        let relay: SocketAddr = "192.0.2.1:40002".parse().unwrap();
        let seen = "198.51.100.9".parse().unwrap();
        let locator = Address::relayed(relay, Some(seen));
        assert!(locator.is_relayed());
        assert_eq!(locator.endpoint(), Some(relay));
        let bytes = bytes_of(&locator);
        // LCAF type 7; MS port 0, ETR port 40002, global ETR RLOC, MS
        // RLOC and private ETR RLOC (AFI 0), RTR RLOC.
        assert_eq!(bytes[4], 7);
        assert_eq!(bytes[8..12], [0, 0, 0x9c, 0x42]);
        assert_eq!(bytes[12..18], [0, 1, 198, 51, 100, 9]);
        assert_eq!(bytes[18..22], [0, 0, 0, 0]);
        assert_eq!(bytes[22..], [0, 1, 192, 0, 2, 1]);
        assert_eq!(parse(&bytes), Ok((locator, bytes.len())));
        assert!(!Address::rloc(relay).is_relayed());
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
        let (a, len) = parse(&msg).unwrap();
        assert_eq!(
            a,
            Address::Unknown(Unknown {
                lcaf_type: 16,
                bytes: &msg[..11]
            })
        );
        assert_eq!(
            parse(&msg[len..]).unwrap().0,
            Address::Ip("1.2.3.4".parse().unwrap())
        );
        // Kept whole, it is written back as it came.
        assert_eq!(bytes_of(&a), msg[..11]);
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
        let (a, len) = parse(&msg).unwrap();
        assert_eq!(len, msg.len());
        assert_eq!(
            a,
            Address::Unknown(Unknown {
                lcaf_type: 2,
                bytes: &msg
            })
        );
    }

    #[test]
    fn lcaf_length_that_disagrees_with_body_is_an_error_at_the_lcaf() {
        // Instance-ID LCAF claiming 11 bytes holding 10 + one stray byte.
        let msg = [
            0x40, 0x03, 0, 0, 2, 0, 0, 11, 0, 0, 0, 1, 0, 1, 10, 0, 0, 1, 0xff,
        ];
        let err = parse(&msg).unwrap_err();
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
        let err = parse(&[0, 6, 1, 2, 3, 4, 5, 6]).unwrap_err();
        assert_eq!(err.offset, 0);
        assert_eq!(err.kind, ParseErrorKind::UnknownAfi(6));
    }

    #[test]
    fn a_distinguished_name_is_ascii_up_to_its_null() {
        let name = Address::Name("iid=1000 pool=10.9.0.0/24");
        let bytes = bytes_of(&name);
        assert_eq!(&bytes[..2], &[0, 17]);
        assert_eq!(bytes.last(), Some(&0));
        assert_eq!(parse(&bytes), Ok((name, bytes.len())));
        // No null: the message ends inside it.
        assert!(matches!(
            parse(&bytes[..bytes.len() - 1]).unwrap_err().kind,
            ParseErrorKind::Truncated { .. }
        ));
        // A control byte, or longer than the bound: refused, not read on.
        let err = parse(&[0, 17, b'a', 7, 0]).unwrap_err();
        assert_eq!(err.offset, 3);
        let mut long = vec![0, 17];
        long.extend([b'a'; MAX_NAME + 1]);
        long.push(0);
        assert!(matches!(
            parse(&long).unwrap_err().kind,
            ParseErrorKind::TooMany { .. }
        ));
        long.remove(2);
        assert_eq!(parse(&long).unwrap().1, long.len());
    }
}
