//! Links: index lookup, bringing an interface up, listing, deleting.

use std::io;

use log::debug;
use neli::{
    consts::{
        nl::NlmF,
        rtnl::{Iff, Ifla, IflaInfo, RtAddrFamily, Rtm},
    },
    rtnl::{Ifinfomsg, IfinfomsgBuilder},
    types::RtBuffer,
};

use super::{attr, build_attr, Rtnl};
use crate::error::{context, ctx, invalid};

/// Rejects what the kernel would reject anyway, with a clearer message
/// (the rule configuration checks apply).
pub(crate) fn check_name(name: &str) -> io::Result<()> {
    crate::check::rules::check_interface_name(name)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// The interface name in a link message (NUL-terminated in the kernel's
/// attribute; neli's `String` parser would panic on an empty payload).
fn link_name(msg: &Ifinfomsg) -> Option<String> {
    let raw = attr(msg.rtattrs(), Ifla::Ifname)?;
    let raw = raw.split(|&b| b == 0).next().unwrap_or(raw);
    Some(String::from_utf8_lossy(raw).into_owned())
}

impl Rtnl {
    /// The index of interface `name`; a missing interface is a NotFound
    /// error that names it.
    pub fn ifindex(&self, name: &str) -> io::Result<u32> {
        check_name(name)?;
        let mut attrs = RtBuffer::new();
        attrs.push(build_attr(Ifla::Ifname, name)?);
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .rtattrs(attrs)
            .build()
            .map_err(invalid)?;
        let replies: Vec<Ifinfomsg> = self
            .sock
            .request(Rtm::Getlink, NlmF::empty(), msg)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENODEV) => io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("interface {name} not found"),
                ),
                _ => context(format_args!("looking up interface {name}"), e),
            })?;
        match replies.first() {
            Some(link) if *link.ifi_index() > 0 => Ok(*link.ifi_index() as u32),
            _ => Err(invalid(format!(
                "looking up interface {name}: no index in the kernel's answer"
            ))),
        }
    }

    /// Sets interface `name` up (IFF_UP), and its MTU when given.
    pub fn set_up(&self, name: &str, mtu: Option<u32>) -> io::Result<()> {
        let index = self.ifindex(name)?;
        let mut attrs = RtBuffer::new();
        if let Some(mtu) = mtu {
            attrs.push(build_attr(Ifla::Mtu, mtu)?);
        }
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(index as libc::c_int)
            .ifi_flags(Iff::UP)
            .ifi_change(Iff::UP)
            .rtattrs(attrs)
            .build()
            .map_err(invalid)?;
        self.sock
            .request::<_, Ifinfomsg>(Rtm::Newlink, NlmF::empty(), msg)
            .map_err(ctx(|| match mtu {
                Some(mtu) => format!("setting {name} up with mtu {mtu}"),
                None => format!("setting {name} up"),
            }))?;
        Ok(())
    }

    /// Creates interface `name` of link kind `kind` (IFLA_LINKINFO /
    /// IFLA_INFO_KIND, e.g. "wireguard"); an existing one is an
    /// AlreadyExists error. A kind the kernel does not know (its module
    /// missing) is EOPNOTSUPP.
    pub(crate) fn create_link(&self, name: &str, kind: &str) -> io::Result<()> {
        check_name(name)?;
        let info = build_attr(Ifla::Linkinfo, &[][..])?
            .nest(&build_attr(IflaInfo::Kind, kind)?)
            .map_err(invalid)?;
        let mut attrs = RtBuffer::new();
        attrs.push(build_attr(Ifla::Ifname, name)?);
        attrs.push(info);
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .rtattrs(attrs)
            .build()
            .map_err(invalid)?;
        self.sock
            .request::<_, Ifinfomsg>(Rtm::Newlink, NlmF::CREATE | NlmF::EXCL, msg)
            .map(drop)
            .map_err(ctx(|| format!("creating {kind} interface {name}")))
    }

    /// All interfaces as (index, name), to name the owners of addresses.
    pub(crate) fn links(&self) -> io::Result<Vec<(u32, String)>> {
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .build()
            .map_err(invalid)?;
        let links: Vec<Ifinfomsg> = self
            .sock
            .dump(Rtm::Getlink, msg)
            .map_err(ctx(|| "listing interfaces"))?;
        Ok(links
            .iter()
            .filter_map(|l| Some((*l.ifi_index() as u32, link_name(l)?)))
            .collect())
    }

    /// Deletes interface `name`; a missing one is not an error.
    pub(crate) fn delete_link(&self, name: &str) -> io::Result<()> {
        let index = match self.ifindex(name) {
            Ok(index) => index,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(index as libc::c_int)
            .build()
            .map_err(invalid)?;
        match self
            .sock
            .request::<_, Ifinfomsg>(Rtm::Dellink, NlmF::empty(), msg)
        {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                debug!("{name} vanished before it was deleted");
                Ok(())
            }
            r => r.map(drop).map_err(ctx(|| format!("deleting {name}"))),
        }
    }
}
