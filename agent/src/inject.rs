//! Sends a packet out of an interface without routing it: how the packets
//! queued while a destination was being resolved reach the WireGuard
//! interface once its peer exists, and WireGuard encrypts each to the peer
//! whose allowed-ips hold its destination.
//!
//! Writing them back into the TUN instead would make the kernel route them
//! as if they arrived from outside, which needs forwarding enabled (and
//! accept_local for packets from the node's own addresses on a mobile
//! node); an AF_PACKET socket hands them straight to the interface's
//! transmit path. Like any AF_PACKET send this skips routing and netfilter
//! (no firewall or NAT rule sees these packets), which is what we want for
//! packets that already went through both on their way to the TUN.

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// An AF_PACKET SOCK_DGRAM socket bound to one interface. WireGuard is an
/// L3 device without link header, so nothing is prepended to the packet.
/// Non-blocking: `send` fails with WouldBlock when the socket's send buffer
/// is full.
#[derive(Debug)]
pub struct Injector {
    fd: OwnedFd,
    ifindex: libc::c_int,
    interface: String,
}

impl Injector {
    /// A socket sending out of `interface`; the error names the interface.
    ///
    /// The interface is held by index: if it is deleted and created again,
    /// sends fail (ENXIO/ENODEV) and a new Injector is needed.
    pub fn new(interface: &str) -> io::Result<Injector> {
        let named = |e: io::Error| {
            // ENODEV / ENXIO: no such interface; say NotFound so callers can
            // tell that from a permission or resource problem.
            let kind = match e.raw_os_error() {
                Some(libc::ENODEV | libc::ENXIO) => io::ErrorKind::NotFound,
                _ => e.kind(),
            };
            io::Error::new(kind, format!("interface {interface}: {e}"))
        };
        let c_name = CString::new(interface).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface {interface:?}: name contains NUL"),
            )
        })?;
        // SAFETY: a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if ifindex == 0 {
            return Err(named(io::Error::last_os_error()));
        }
        let ifindex = libc::c_int::try_from(ifindex)
            .map_err(|_| named(io::Error::from(io::ErrorKind::InvalidData)))?;
        // Protocol 0: the socket receives nothing, it only sends.
        // SAFETY: plain syscall; the fd is owned from here on.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(named(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Binding (still protocol 0) checks that the interface exists now.
        let addr = link_address(ifindex, 0);
        // SAFETY: `addr` is a valid sockaddr_ll of the length given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(named(io::Error::last_os_error()));
        }
        Ok(Injector {
            fd,
            ifindex,
            interface: interface.to_owned(),
        })
    }

    /// The interface packets go out of.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Sends one IPv4 or IPv6 packet out of the interface, as its protocol
    /// (ETH_P_IP / ETH_P_IPV6, from the version nibble: WireGuard drops a
    /// packet whose protocol does not match its header).
    ///
    /// InvalidInput for anything else; the kernel fails with ENETDOWN when
    /// the interface is down and EMSGSIZE when the packet exceeds its MTU.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let protocol = match packet.first().map(|b| b >> 4) {
            Some(4) => libc::ETH_P_IP,
            Some(6) => libc::ETH_P_IPV6,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not an IPv4 or IPv6 packet",
                ))
            }
        };
        let addr = link_address(self.ifindex, protocol as u16);
        // SAFETY: `packet` and `addr` are valid for the lengths given.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("send on {}: {e}", self.interface),
            ));
        }
        if n as usize != packet.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("send on {}: {n} of {} bytes", self.interface, packet.len()),
            ));
        }
        Ok(())
    }
}

/// A link-layer address for `ifindex` with no hardware address (L3 device).
fn link_address(ifindex: libc::c_int, protocol: u16) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as libc::c_ushort;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex;
    addr
}

impl AsRawFd for Injector {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Injector {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
