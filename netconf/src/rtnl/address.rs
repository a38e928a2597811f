//! Interface addresses: adding, removing, listing (the node's own RLOCs).

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnet::IpNet;
use log::debug;
use neli::{
    consts::{
        nl::NlmF,
        rtnl::{Ifa, IfaF, RtAddrFamily, RtScope, Rtm},
    },
    rtnl::{Ifaddrmsg, IfaddrmsgBuilder},
    types::RtBuffer,
};

use super::{attr, build_attr, Rtnl};
use crate::error::{ctx, invalid};

/// The address family and the address in network byte order, as the kernel
/// stores it in IFA_*/RTA_* attributes.
pub(super) fn family_and_octets(addr: IpAddr) -> (RtAddrFamily, Vec<u8>) {
    match addr {
        IpAddr::V4(a) => (RtAddrFamily::Inet, a.octets().to_vec()),
        IpAddr::V6(a) => (RtAddrFamily::Inet6, a.octets().to_vec()),
    }
}

/// An address attribute payload (network byte order) of the given family.
pub(super) fn addr_from_octets(family: RtAddrFamily, raw: &[u8]) -> Option<IpAddr> {
    match family {
        RtAddrFamily::Inet => Some(Ipv4Addr::from(<[u8; 4]>::try_from(raw).ok()?).into()),
        RtAddrFamily::Inet6 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(raw).ok()?).into()),
        _ => None,
    }
}

/// The (ifindex, address/prefix) an address message describes.
///
/// IFA_LOCAL is the interface's own address; IFA_ADDRESS is the same, or the
/// peer's on a point-to-point link, and the only one IPv6 sends without a
/// peer. So LOCAL first, then ADDRESS.
pub(super) fn ifaddr(msg: &Ifaddrmsg) -> Option<(u32, IpNet)> {
    let raw = attr(msg.rtattrs(), Ifa::Local).or_else(|| attr(msg.rtattrs(), Ifa::Address))?;
    let addr = addr_from_octets(*msg.ifa_family(), raw)?;
    Some((
        *msg.ifa_index(),
        IpNet::new(addr, *msg.ifa_prefixlen()).ok()?,
    ))
}

/// The message adding or removing `address` on interface `index`: IFA_LOCAL
/// and IFA_ADDRESS both set to it, as `ip address add` does without a peer.
/// IPv6 ones without duplicate address detection (`nodad`): otherwise the
/// address stays tentative until the kernel's DAD work runs after the link
/// goes up, even with DAD off, and a route preferring it as source (a
/// mobile node's EID) is refused meanwhile (EINVAL).
fn address_msg(index: u32, address: IpNet) -> io::Result<Ifaddrmsg> {
    let (family, octets) = family_and_octets(address.addr());
    let mut attrs = RtBuffer::new();
    attrs.push(build_attr(Ifa::Local, octets.as_slice())?);
    attrs.push(build_attr(Ifa::Address, octets.as_slice())?);
    IfaddrmsgBuilder::default()
        .ifa_family(family)
        .ifa_prefixlen(address.prefix_len())
        .ifa_flags(if address.addr().is_ipv6() {
            IfaF::NODAD
        } else {
            IfaF::empty()
        })
        .ifa_scope(RtScope::Universe)
        .ifa_index(index)
        .rtattrs(attrs)
        .build()
        .map_err(invalid)
}

impl Rtnl {
    /// Adds an address; already present is not an error (idempotent).
    pub fn add_address(&self, name: &str, address: IpNet) -> io::Result<()> {
        let index = self.ifindex(name)?;
        let msg = address_msg(index, address)?;
        match self
            .sock
            .request::<_, Ifaddrmsg>(Rtm::Newaddr, NlmF::CREATE | NlmF::EXCL, msg)
        {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            r => r
                .map(drop)
                .map_err(ctx(|| format!("adding {address} to {name}"))),
        }
    }

    /// Removes an address; absent (or the interface gone, which takes its
    /// addresses with it) is not an error, so cleanup can be repeated.
    pub fn remove_address(&self, name: &str, address: IpNet) -> io::Result<()> {
        let index = match self.ifindex(name) {
            Ok(index) => index,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                debug!("not removing {address}: {e}");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let msg = address_msg(index, address)?;
        match self
            .sock
            .request::<_, Ifaddrmsg>(Rtm::Deladdr, NlmF::empty(), msg)
        {
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            r => r
                .map(drop)
                .map_err(ctx(|| format!("removing {address} from {name}"))),
        }
    }

    /// Addresses of all interfaces, IPv4 and IPv6, with the interface's
    /// index and name, for finding the node's own RLOCs.
    pub fn addresses(&self) -> io::Result<Vec<(u32, String, IpNet)>> {
        let links = self.links()?;
        let msg = IfaddrmsgBuilder::default()
            .ifa_family(RtAddrFamily::Unspecified)
            .ifa_prefixlen(0)
            .ifa_scope(RtScope::Universe)
            .ifa_index(0)
            .build()
            .map_err(invalid)?;
        let addrs: Vec<Ifaddrmsg> = self
            .sock
            .dump(Rtm::Getaddr, msg)
            .map_err(ctx(|| "listing addresses"))?;
        Ok(addrs
            .iter()
            .filter_map(ifaddr)
            .map(|(index, net)| {
                let name = links
                    .iter()
                    .find(|(i, _)| *i == index)
                    .map(|(_, n)| n.clone())
                    // An interface created between the two dumps.
                    .unwrap_or_default();
                (index, name, net)
            })
            .collect())
    }

    /// Addresses of interface `name`.
    pub fn addresses_of(&self, name: &str) -> io::Result<Vec<IpNet>> {
        let index = self.ifindex(name)?;
        Ok(self
            .addresses()?
            .into_iter()
            .filter(|(i, _, _)| *i == index)
            .map(|(_, _, net)| net)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use neli::ToBytes;

    use super::*;
    use crate::rtnl::socket::parse;

    #[test]
    fn address_message_byte_order_and_round_trip() {
        for (net, octets, flags) in [
            ("192.0.2.1/24", vec![192, 0, 2, 1], 0),
            (
                "2001:db8::1/64",
                vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                libc::IFA_F_NODAD as u8,
            ),
        ] {
            let net: IpNet = net.parse().unwrap();
            let msg = address_msg(0x0102_0304, net).unwrap();
            let mut buf = Cursor::new(Vec::new());
            msg.to_bytes(&mut buf).unwrap();
            let b = buf.into_inner();
            // struct ifaddrmsg: family, prefixlen, flags, scope, index (u32).
            assert_eq!(b[1], net.prefix_len());
            assert_eq!(b[2], flags, "IPv6: no duplicate address detection");
            assert_eq!(b[4..8], 0x0102_0304u32.to_ne_bytes());
            // IFA_LOCAL first: header in host order, address in network order.
            assert_eq!(b[8..10], (4 + octets.len() as u16).to_ne_bytes());
            assert_eq!(b[10..12], libc::IFA_LOCAL.to_ne_bytes());
            assert_eq!(b[12..12 + octets.len()], octets[..]);
            let parsed: Ifaddrmsg = parse(&b).unwrap();
            assert_eq!(ifaddr(&parsed), Some((0x0102_0304, net)));
        }
    }
}
