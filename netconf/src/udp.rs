//! The LISP control sockets of both daemons: each datagram is received with
//! the interface it arrived on (IP_PKTINFO / IPV6_RECVPKTINFO) and the
//! socket's count of datagrams the kernel dropped for want of buffer room
//! (SO_RXQ_OVFL), so that a daemon takes control messages only from its own
//! WireGuard interface — where WireGuard vouches for the inner source
//! address — and can count what a burst cost it.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// A datagram as [`recv`] received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
    /// Index of the interface it arrived on, when the kernel said.
    pub ifindex: Option<u32>,
    /// The socket's running count of datagrams dropped because its receive
    /// buffer was full, when this datagram was queued (SO_RXQ_OVFL; the
    /// kernel attaches it once the count is not zero).
    pub overflows: Option<u32>,
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn set_int(
    socket: &UdpSocket,
    level: libc::c_int,
    option: libc::c_int,
    value: i32,
) -> io::Result<()> {
    // SAFETY: setsockopt on an open descriptor with a pointer to an int and
    // its size.
    check(unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    })
}

fn get_int(socket: &UdpSocket, level: libc::c_int, option: libc::c_int) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: getsockopt into an int of the size passed.
    check(unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&mut value as *mut i32).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// Asks the kernel to tell, with each datagram, the interface it arrived
/// on and the socket's drop count.
pub fn enable_ancillary(socket: &UdpSocket) -> io::Result<()> {
    match socket.local_addr()? {
        SocketAddr::V4(_) => set_int(socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?,
        SocketAddr::V6(_) => set_int(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?,
    }
    set_int(socket, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)
}

/// Sizes the receive buffer to `bytes`: beyond net.core.rmem_max when the
/// process may (SO_RCVBUFFORCE needs CAP_NET_ADMIN), else as far as it
/// allows. Returns the size the kernel granted (it doubles the request for
/// its bookkeeping).
pub fn size_receive_buffer(socket: &UdpSocket, bytes: usize) -> io::Result<usize> {
    let bytes = i32::try_from(bytes).unwrap_or(i32::MAX);
    if set_int(socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes).is_err() {
        set_int(socket, libc::SOL_SOCKET, libc::SO_RCVBUF, bytes)?;
    }
    Ok(get_int(socket, libc::SOL_SOCKET, libc::SO_RCVBUF)?.max(0) as usize)
}

/// The index of the interface named `name`.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let name = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: a NUL-terminated string that lives across the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
}

/// Room for an in6_pktinfo and a u32 drop count, with their headers.
const CONTROL_LEN: usize = 128;

/// Receives one datagram into `buf` (recvmsg), with what
/// [`enable_ancillary`] asked for. Non-blocking sockets return WouldBlock
/// as recv_from does.
pub fn recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    let mut from = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut control = [0u64; CONTROL_LEN / 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = from.as_mut_ptr().cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = CONTROL_LEN as _;
    // SAFETY: every pointer in msg refers to a live buffer of the length
    // given beside it, all outliving the call.
    let len = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: recvmsg filled in msg_namelen bytes of the storage.
    let from = unsafe { socket_addr(from.assume_init_ref(), msg.msg_namelen) }?;
    let mut received = Received {
        len: len as usize,
        from,
        ifindex: None,
        overflows: None,
    };
    // SAFETY: the CMSG_* macros walk the control buffer recvmsg filled in,
    // within msg_controllen; each payload is read unaligned at its size.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    received.ifindex = Some(info.ipi_ifindex as u32);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    received.ifindex = Some(info.ipi6_ifindex);
                }
                (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => {
                    received.overflows = Some(std::ptr::read_unaligned(data.cast::<u32>()));
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(received)
}

/// The address in a sockaddr_storage of `len` bytes.
///
/// # Safety
/// `storage` must hold a sockaddr of the family it names, `len` long.
unsafe fn socket_addr(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> io::Result<SocketAddr> {
    let len = len as usize;
    match storage.ss_family as libc::c_int {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            let a = &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            let a = &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        family => Err(io::Error::other(format!(
            "datagram from an address of family {family}"
        ))),
    }
}

/// Counts kernel drops from the running SO_RXQ_OVFL count of one socket.
#[derive(Debug, Default)]
pub struct Overflows {
    last: u32,
}

impl Overflows {
    /// How many datagrams were dropped since the last datagram seen.
    pub fn update(&mut self, received: &Received) -> u32 {
        let Some(count) = received.overflows else {
            return 0;
        };
        let new = count.wrapping_sub(self.last);
        self.last = count;
        new
    }
}

/// Whether a datagram may be taken as coming from the WireGuard interface
/// `tunnel` (None: no tunnel to check against, e.g. loopback tests).
pub fn from_tunnel(received: &Received, tunnel: Option<u32>) -> bool {
    match tunnel {
        None => true,
        Some(index) => received.ifindex == Some(index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receives_with_the_ingress_interface() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_ancillary(&rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 64];
        let got = recv(&rx, &mut buf).unwrap();
        assert_eq!(&buf[..got.len], b"hello");
        assert_eq!(got.from, tx.local_addr().unwrap());
        assert_eq!(got.ifindex, Some(ifindex("lo").unwrap()));
        assert!(from_tunnel(&got, Some(ifindex("lo").unwrap())));
        assert!(!from_tunnel(&got, Some(u32::MAX)));
        assert!(from_tunnel(&got, None));
    }

    #[test]
    fn counts_what_a_full_buffer_dropped() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_ancillary(&rx).unwrap();
        // The smallest buffer the kernel grants; nothing read meanwhile.
        set_int(&rx, libc::SOL_SOCKET, libc::SO_RCVBUF, 1).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        for _ in 0..200 {
            tx.send_to(&[0u8; 512], to).unwrap();
        }
        // The count rides on the datagrams queued after the drops.
        let mut overflows = Overflows::default();
        let mut buf = [0u8; 1024];
        rx.set_nonblocking(true).unwrap();
        let mut received = 0;
        while let Ok(got) = recv(&rx, &mut buf) {
            assert_eq!(overflows.update(&got), 0);
            received += 1;
        }
        assert!(received < 200);
        tx.send_to(b"after", to).unwrap();
        rx.set_nonblocking(false).unwrap();
        let got = recv(&rx, &mut buf).unwrap();
        assert_eq!(overflows.update(&got), 200 - received);
    }

    #[test]
    fn buffer_grows_to_what_is_asked_or_allowed() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = get_int(&rx, libc::SOL_SOCKET, libc::SO_RCVBUF).unwrap() as usize;
        let granted = size_receive_buffer(&rx, 4 << 20).unwrap();
        assert!(granted >= before);
    }
}
