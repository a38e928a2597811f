//! The TUN device the overlay prefixes are routed to: the kernel hands the
//! agent every packet for a destination that has no WireGuard peer yet, and
//! takes back the ICMP errors for destinations that have no mapping.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use tun_tap::{Iface, Mode};

/// A non-blocking TUN device without packet-info header: reads and writes
/// are bare IPv4/IPv6 packets. Wrap it in `smol::Async` to await packets.
#[derive(Debug)]
pub struct Tun {
    iface: Iface,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name`.
    ///
    /// Attaching works for a persistent device created in TUN mode without
    /// packet info (`ip tuntap add mode tun`) that no other process holds.
    /// The device is created down; bringing it up and routing the overlay
    /// prefixes to it is the network configuration's job.
    pub fn open(name: &str) -> io::Result<Tun> {
        // tun-tap silently truncates long names, which would attach us to
        // a different device: the configuration's rule, checked again.
        netconf::check::rules::check_interface_name(name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("TUN device: {e}")))?;
        let iface = Iface::without_packet_info(name, Mode::Tun)
            .map_err(|e| io::Error::new(e.kind(), format!("TUN device {name}: {e}")))?;
        set_nonblocking(iface.as_raw_fd())
            .map_err(|e| io::Error::new(e.kind(), format!("TUN device {name}: {e}")))?;
        Ok(Tun { iface })
    }

    /// The device's name as the kernel has it.
    pub fn name(&self) -> &str {
        self.iface.name()
    }

    /// One packet; WouldBlock when none is waiting.
    ///
    /// A packet longer than `buf` is truncated to it (the device MTU, 1500
    /// by default, always fits a buffer of that size).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.iface.recv(buf)
    }

    /// Hands a packet to the kernel as if it arrived on the TUN (used for
    /// the ICMP errors).
    ///
    /// The kernel checks the IP version and (when the device is down)
    /// fails with EIO; whatever else is wrong with the packet makes it drop
    /// it silently, as a network would.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let n = self.iface.send(packet)?;
        if n != packet.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("TUN write took {n} of {} bytes", packet.len()),
            ));
        }
        Ok(())
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.iface.as_raw_fd()
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd is owned by `self.iface` and stays open while the
        // borrow of `self` lasts.
        unsafe { BorrowedFd::borrow_raw(self.iface.as_raw_fd()) }
    }
}

/// O_NONBLOCK on `fd` (tun-tap's own helper needs its "libc" feature and
/// uses FIONBIO; this is the same thing through fcntl).
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own; no pointers involved.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
