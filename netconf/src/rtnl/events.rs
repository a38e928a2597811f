//! Address events: the agent re-announces its RLOCs when the host's
//! addresses change (DHCP renewals, a modem reconnecting), without polling.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd},
};

use ipnet::IpNet;
use log::warn;
use neli::{consts::socket::NlFamily, rtnl::Ifaddrmsg, socket::NlSocket, utils::Groups};

use super::{
    address::ifaddr,
    socket::{parse, recv, split, RECV_BUFFER},
};
use crate::error::ctx;

const RTM_NEWADDR: u16 = libc::RTM_NEWADDR;
const RTM_DELADDR: u16 = libc::RTM_DELADDR;

/// An address appeared on or disappeared from an interface.
///
/// `Added` can repeat for an address already reported, when its flags
/// change (e.g. an IPv6 address finishing duplicate address detection):
/// handle it idempotently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressEvent {
    Added { ifindex: u32, address: IpNet },
    Removed { ifindex: u32, address: IpNet },
}

/// A socket subscribed to IPv4 and IPv6 address add/remove events,
/// non-blocking, for an async loop: register its fd with the reactor (e.g.
/// async-io's `Async`) and call [`read`](AddressEvents::read) when readable.
///
/// If events come faster than they are read, the kernel drops some and
/// `read` fails once with ENOBUFS: re-read the full state with
/// [`Rtnl::addresses`](super::Rtnl::addresses) then.
pub struct AddressEvents {
    sock: NlSocket,
}

impl AddressEvents {
    /// Subscribes, in the calling thread's network namespace.
    pub fn subscribe() -> io::Result<AddressEvents> {
        let groups = Groups::new_groups(&[libc::RTNLGRP_IPV4_IFADDR, libc::RTNLGRP_IPV6_IFADDR]);
        let sock = NlSocket::connect(NlFamily::Route, None, groups)
            .map_err(ctx(|| "subscribing to address events"))?;
        sock.nonblock()
            .map_err(ctx(|| "subscribing to address events"))?;
        Ok(AddressEvents { sock })
    }

    /// Reads what has arrived; `Ok(empty)` when nothing is pending (the
    /// socket is non-blocking). Takes `&self` (the buffer is its own: events
    /// are rare), so that an async reactor's shared handle can read.
    pub fn read(&self) -> io::Result<Vec<AddressEvent>> {
        let mut events = Vec::new();
        let mut buf = vec![0; RECV_BUFFER];
        loop {
            let n = match recv(&self.sock, &mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(events),
                Err(e) => return Err(ctx(|| "reading address events")(e)),
            };
            for m in split(&buf[..n]).map_err(ctx(|| "reading address events"))? {
                let added = match m.ty {
                    RTM_NEWADDR => true,
                    RTM_DELADDR => false,
                    _ => continue,
                };
                // One odd message must not cost the events around it.
                let msg: Ifaddrmsg = match parse(m.payload) {
                    Ok(msg) => msg,
                    Err(e) => {
                        warn!("skipping an address event: {e}");
                        continue;
                    }
                };
                if let Some((ifindex, address)) = ifaddr(&msg) {
                    events.push(if added {
                        AddressEvent::Added { ifindex, address }
                    } else {
                        AddressEvent::Removed { ifindex, address }
                    });
                }
            }
        }
    }
}

impl AsRawFd for AddressEvents {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for AddressEvents {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the NlSocket owns this fd and closes it only when dropped,
        // which cannot happen while `self` is borrowed.
        unsafe { BorrowedFd::borrow_raw(self.sock.as_raw_fd()) }
    }
}
