//! Routes for EID prefixes through the WireGuard interface.

use std::io;
use std::net::IpAddr;

use ipnet::IpNet;
use log::debug;
use neli::{
    consts::{
        nl::NlmF,
        rtnl::{RtAddrFamily, RtScope, RtTable, Rta, Rtm, Rtn, Rtprot},
    },
    rtnl::{Rtmsg, RtmsgBuilder},
    types::RtBuffer,
};

use super::{
    address::{addr_from_octets, family_and_octets},
    attr, build_attr, Rtnl,
};
use crate::error::{ctx, invalid};

/// The `rtm_protocol` of lispguard's routes: our own number, so that they
/// are told apart from static and daemon routes (`ip route show proto 76`),
/// a restarted agent can find the ones it left, and removal never touches a
/// route someone else made. 76 is 'L' and is not in iproute2's rt_protos.
pub const ROUTE_PROTOCOL: u8 = 76;

const RT_TABLE_MAIN: u32 = libc::RT_TABLE_MAIN as u32;

fn route_msg(prefix: IpNet, oif: u32, add: bool, source: Option<IpAddr>) -> io::Result<Rtmsg> {
    let (family, octets) = family_and_octets(prefix.network());
    let mut attrs = RtBuffer::new();
    if prefix.prefix_len() > 0 {
        attrs.push(build_attr(Rta::Dst, octets.as_slice())?);
    }
    attrs.push(build_attr(Rta::Oif, oif)?);
    if let Some(source) = source {
        let (source_family, source_octets) = family_and_octets(source);
        if source_family != family {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("route {prefix}: source {source} is of another family"),
            ));
        }
        attrs.push(build_attr(Rta::Prefsrc, source_octets.as_slice())?);
    }
    let (scope, kind) = match (add, family) {
        // A route through a device without gateway: link scope for IPv4
        // (as `ip route add PREFIX dev X`); IPv6 ignores the scope.
        (true, RtAddrFamily::Inet) => (RtScope::Link, Rtn::Unicast),
        (true, _) => (RtScope::Universe, Rtn::Unicast),
        // For deletion, NOWHERE and UNSPEC match any scope and type.
        (false, _) => (RtScope::Nowhere, Rtn::Unspec),
    };
    RtmsgBuilder::default()
        .rtm_family(family)
        .rtm_dst_len(prefix.prefix_len())
        .rtm_src_len(0)
        .rtm_tos(0)
        .rtm_table(RtTable::Main)
        .rtm_protocol(Rtprot::from(ROUTE_PROTOCOL))
        .rtm_scope(scope)
        .rtm_type(kind)
        .rtattrs(attrs)
        .build()
        .map_err(invalid)
}

impl Rtnl {
    /// Adds or replaces the route for `prefix` through interface `name`, in
    /// the main table with protocol [`ROUTE_PROTOCOL`]. NLM_F_REPLACE makes
    /// it idempotent and moves a route for the same prefix from another
    /// interface. Host bits of `prefix` are ignored.
    pub fn add_route(&self, prefix: IpNet, name: &str) -> io::Result<()> {
        self.add_route_from(prefix, name, None)
    }

    /// As [`Rtnl::add_route`], with a preferred source address (`ip route
    /// ... src`): what locally sent packets to `prefix` carry, e.g. a
    /// mobile node's EID rather than its control address.
    pub fn add_route_from(
        &self,
        prefix: IpNet,
        name: &str,
        source: Option<IpAddr>,
    ) -> io::Result<()> {
        let prefix = prefix.trunc();
        let index = self.ifindex(name)?;
        self.sock
            .request::<_, Rtmsg>(
                Rtm::Newroute,
                NlmF::CREATE | NlmF::REPLACE,
                route_msg(prefix, index, true, source)?,
            )
            .map_err(ctx(|| format!("adding {prefix} via {name}")))?;
        Ok(())
    }

    /// Removes our route for `prefix` through `name`; absent (or the
    /// interface gone, which takes its routes with it) is not an error.
    pub fn remove_route(&self, prefix: IpNet, name: &str) -> io::Result<()> {
        let prefix = prefix.trunc();
        let index = match self.ifindex(name) {
            Ok(index) => index,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                debug!("not removing the route for {prefix}: {e}");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match self.sock.request::<_, Rtmsg>(
            Rtm::Delroute,
            NlmF::empty(),
            route_msg(prefix, index, false, None)?,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r
                .map(drop)
                .map_err(ctx(|| format!("removing {prefix} via {name}"))),
        }
    }

    /// lispguard's routes (protocol [`ROUTE_PROTOCOL`], main table), IPv4
    /// and IPv6, as (prefix, ifindex): what a restarted agent reconciles.
    pub fn routes(&self) -> io::Result<Vec<(IpNet, u32)>> {
        let msg = RtmsgBuilder::default()
            .rtm_family(RtAddrFamily::Unspecified)
            .rtm_dst_len(0)
            .rtm_src_len(0)
            .rtm_tos(0)
            .rtm_table(RtTable::Unspec)
            .rtm_protocol(Rtprot::Unspec)
            .rtm_scope(RtScope::Universe)
            .rtm_type(Rtn::Unspec)
            .build()
            .map_err(invalid)?;
        let routes: Vec<Rtmsg> = self
            .sock
            .dump(Rtm::Getroute, msg)
            .map_err(ctx(|| "listing routes"))?;
        Ok(routes.iter().filter_map(our_route).collect())
    }
}

/// (prefix, ifindex) of a route of ours in the main table.
fn our_route(r: &Rtmsg) -> Option<(IpNet, u32)> {
    if u8::from(*r.rtm_protocol()) != ROUTE_PROTOCOL {
        return None;
    }
    // RTA_TABLE (host-order u32) holds tables above 255; rtm_table is 8 bits.
    let table = attr(r.rtattrs(), Rta::Table)
        .and_then(|raw| Some(u32::from_ne_bytes(raw.try_into().ok()?)))
        .unwrap_or(u8::from(*r.rtm_table()) as u32);
    if table != RT_TABLE_MAIN {
        return None;
    }
    let oif = u32::from_ne_bytes(attr(r.rtattrs(), Rta::Oif)?.try_into().ok()?);
    let family = *r.rtm_family();
    let dst = match attr(r.rtattrs(), Rta::Dst) {
        Some(raw) => addr_from_octets(family, raw)?,
        // No RTA_DST: the default route.
        None => match family {
            RtAddrFamily::Inet => std::net::Ipv4Addr::UNSPECIFIED.into(),
            RtAddrFamily::Inet6 => std::net::Ipv6Addr::UNSPECIFIED.into(),
            _ => return None,
        },
    };
    Some((IpNet::new(dst, *r.rtm_dst_len()).ok()?, oif))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use neli::ToBytes;

    use super::*;
    use crate::rtnl::socket::parse;

    fn bytes(msg: &Rtmsg) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        msg.to_bytes(&mut buf).unwrap();
        buf.into_inner()
    }

    /// The contract on any host, little- or big-endian: attribute headers
    /// and integers in host order, addresses in network order.
    #[test]
    fn route_message_byte_order() {
        let msg = route_msg("10.88.0.0/16".parse().unwrap(), 0x0102_0304, true, None).unwrap();
        let b = bytes(&msg);
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol,
        // scope, type, flags (u32).
        assert_eq!(
            b[..8],
            [libc::AF_INET as u8, 16, 0, 0, 254, ROUTE_PROTOCOL, 253, 1]
        );
        assert_eq!(b[12..14], 8u16.to_ne_bytes());
        assert_eq!(b[14..16], libc::RTA_DST.to_ne_bytes());
        assert_eq!(b[16..20], [10, 88, 0, 0]);
        assert_eq!(b[20..22], 8u16.to_ne_bytes());
        assert_eq!(b[22..24], libc::RTA_OIF.to_ne_bytes());
        assert_eq!(b[24..28], 0x0102_0304u32.to_ne_bytes());
        assert_eq!(b.len(), 28);
    }

    #[test]
    fn route_message_round_trip() {
        for (prefix, oif) in [
            ("10.88.0.0/16", 7),
            ("fd00:88::/48", 300),
            ("0.0.0.0/0", 2),
            ("::/0", 2),
        ] {
            let prefix: IpNet = prefix.parse().unwrap();
            let b = bytes(&route_msg(prefix, oif, true, None).unwrap());
            let parsed: Rtmsg = parse(&b).unwrap();
            assert_eq!(our_route(&parsed), Some((prefix, oif)));
        }
    }

    #[test]
    fn other_protocols_are_not_ours() {
        let mut b = bytes(&route_msg("10.88.0.0/16".parse().unwrap(), 7, true, None).unwrap());
        b[5] = libc::RTPROT_STATIC;
        assert_eq!(our_route(&parse(&b).unwrap()), None);
    }
}
