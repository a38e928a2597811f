//! rtnetlink, through neli: links, addresses, routes and address events.
//!
//! Everything acts in the network namespace of the thread that opened the
//! socket (`Rtnl::new`, `AddressEvents::subscribe`): namespaces are per
//! thread on Linux, which is what lets each test run in its own.

mod address;
mod events;
mod link;
mod route;
pub(crate) mod socket;

use std::io;

use neli::{
    consts::rtnl::RtaType,
    rtnl::Rtattr,
    types::{Buffer, RtBuffer},
};

pub use events::{AddressEvent, AddressEvents};
pub use route::ROUTE_PROTOCOL;

pub(crate) use link::check_name;

use socket::Socket;

/// A NETLINK_ROUTE socket for configuring links, addresses and routes.
///
/// Requests are synchronous and serialised by an internal lock, so one
/// `Rtnl` can be shared between threads (of the same network namespace).
pub struct Rtnl {
    sock: Socket,
}

impl Rtnl {
    /// Opens a NETLINK_ROUTE socket in the calling thread's network
    /// namespace.
    pub fn new() -> io::Result<Rtnl> {
        Ok(Rtnl {
            sock: Socket::open(neli::consts::socket::NlFamily::Route)
                .map_err(|e| crate::error::context("opening a rtnetlink socket", e))?,
        })
    }
}

/// The raw payload of the first attribute of type `ty`.
fn attr<T: RtaType>(attrs: &RtBuffer<T, Buffer>, ty: T) -> Option<&[u8]> {
    attrs
        .iter()
        .find(|a| *a.rta_type() == ty)
        .map(|a| a.rta_payload().as_ref())
}

/// Builds an attribute; the payload is serialised as neli does it (integers
/// in host order, `&[u8]` verbatim, `&str` with a trailing NUL).
fn build_attr<T, P>(ty: T, payload: P) -> io::Result<Rtattr<T, Buffer>>
where
    T: RtaType,
    P: neli::Size + neli::ToBytes,
{
    neli::rtnl::RtattrBuilder::default()
        .rta_type(ty)
        .rta_payload(payload)
        .build()
        .map_err(crate::error::invalid)
}
