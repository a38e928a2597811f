//! The TUN device the overlay prefixes are routed to: the kernel hands the
//! agent every packet for a destination that has no WireGuard peer yet, and
//! takes back the ICMP errors for destinations that have no mapping.
//!
//! Opening one is a single ioctl (TUNSETIFF on /dev/net/tun), so it is done
//! here rather than through a crate that compiles a C file for it.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking TUN device without packet-info header: reads and writes
/// are bare IPv4/IPv6 packets; `poll::readable` waits for them.
#[derive(Debug)]
pub struct Tun {
    fd: OwnedFd,
    name: String,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name`.
    ///
    /// Attaching works for a persistent device created in TUN mode without
    /// packet info (`ip tuntap add mode tun`) that no other process holds.
    /// The device is created down; bringing it up and routing the overlay
    /// prefixes to it is the network configuration's job.
    pub fn open(name: &str) -> io::Result<Tun> {
        // The kernel would truncate a long name and attach us to a
        // different device: the configuration's rule, checked again.
        netconf::check::rules::check_interface_name(name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("TUN device: {e}")))?;
        let context = |e: io::Error| io::Error::new(e.kind(), format!("TUN device {name}: {e}"));
        // SAFETY: open(2) of a constant NUL-terminated path.
        let fd = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(context(io::Error::last_os_error()));
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ifreq is plain old data; all zeroes is a valid value.
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        // The name fits (at most 15 bytes, checked above) and leaves the
        // terminating NUL of the zeroed array.
        for (to, from) in request.ifr_name.iter_mut().zip(name.bytes()) {
            *to = from as libc::c_char;
        }
        request.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes the ifreq we pass, which lives
        // across the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut request) } < 0 {
            return Err(context(io::Error::last_os_error()));
        }
        // SAFETY: the kernel leaves a NUL-terminated name in ifr_name.
        let name = unsafe { CStr::from_ptr(request.ifr_name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        Ok(Tun { fd, name })
    }

    /// The device's name as the kernel has it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One packet; WouldBlock when none is waiting.
    ///
    /// A packet longer than `buf` is truncated to it (the device MTU, 1500
    /// by default, always fits a buffer of that size).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: read(2) into a buffer we hold mutably, at most its length.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Hands a packet to the kernel as if it arrived on the TUN (used for
    /// the ICMP errors).
    ///
    /// The kernel checks the IP version and (when the device is down)
    /// fails with EIO; whatever else is wrong with the packet makes it drop
    /// it silently, as a network would.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        // SAFETY: write(2) from a buffer we hold, at most its length.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != packet.len() {
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
        self.fd.as_raw_fd()
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
