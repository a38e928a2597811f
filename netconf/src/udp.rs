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
    let mut msg = message_header(from.as_mut_ptr(), &mut iov, &mut control);
    // SAFETY: every pointer in msg refers to a live buffer of the length
    // given beside it, all outliving the call.
    let len = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: recvmsg filled in the header and msg_namelen bytes of the
    // storage.
    unsafe { received(&msg, len as usize) }
}

/// Datagrams received together ([`recv_batch`]): each in a buffer of its
/// own, with what it came with. Allocated once; a receive allocates
/// nothing.
pub struct Batch {
    buffers: Vec<u8>,
    size: usize,
    from: Vec<libc::sockaddr_storage>,
    control: Vec<[u64; CONTROL_LEN / 8]>,
    iovs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    received: Vec<Received>,
}

impl Batch {
    /// Room for `count` datagrams of up to `size` bytes.
    pub fn new(count: usize, size: usize) -> Batch {
        Batch {
            buffers: vec![0; count * size],
            size,
            // SAFETY: an all-zero sockaddr_storage, iovec and mmsghdr are
            // valid (family 0, null pointers, zero lengths).
            from: vec![unsafe { std::mem::zeroed() }; count],
            control: vec![[0; CONTROL_LEN / 8]; count],
            iovs: vec![unsafe { std::mem::zeroed() }; count],
            headers: vec![unsafe { std::mem::zeroed() }; count],
            received: Vec::with_capacity(count),
        }
    }

    /// The datagrams of the last [`recv_batch`], in the order they came.
    pub fn datagrams(&self) -> impl Iterator<Item = (&Received, &[u8])> {
        self.received
            .iter()
            .zip(self.buffers.chunks(self.size))
            .map(|(r, buf)| (r, &buf[..r.len]))
    }
}

/// Receives as many datagrams as are waiting, up to the batch's room, in
/// one system call (recvmmsg): under load, one call for many requests.
/// Non-blocking sockets return WouldBlock when none is waiting.
pub fn recv_batch(socket: &UdpSocket, batch: &mut Batch) -> io::Result<usize> {
    batch.received.clear();
    let Batch {
        buffers,
        size,
        from,
        control,
        iovs,
        headers,
        received: _,
    } = batch;
    let slots = buffers
        .chunks_mut(*size)
        .zip(from.iter_mut())
        .zip(control.iter_mut())
        .zip(iovs.iter_mut())
        .zip(headers.iter_mut());
    for ((((buf, from), control), iov), header) in slots {
        *iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        header.msg_hdr = message_header(from, iov, control);
        header.msg_len = 0;
    }
    // SAFETY: each header points at its own storage, iovec, buffer and
    // control room, all of the lengths given and owned by the batch, which
    // outlives the call.
    let got = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            headers.len() as _,
            0 as _,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    for header in &headers[..got as usize] {
        // SAFETY: recvmmsg filled in this header, its storage and its
        // control room.
        let received = unsafe { received(&header.msg_hdr, header.msg_len as usize) }?;
        batch.received.push(received);
    }
    Ok(batch.received.len())
}

/// Datagrams sent together ([`send_batch`]): the room for their headers
/// and addresses, allocated once.
pub struct Sending {
    to: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl Sending {
    /// Room for `count` datagrams a call.
    pub fn new(count: usize) -> Sending {
        // SAFETY: an all-zero sockaddr_storage, iovec and mmsghdr are
        // valid (family 0, null pointers, zero lengths).
        Sending {
            to: vec![unsafe { std::mem::zeroed() }; count],
            iovs: vec![unsafe { std::mem::zeroed() }; count],
            headers: vec![unsafe { std::mem::zeroed() }; count],
        }
    }
}

/// Sends the first of `datagrams` (as many as there is room for) in one
/// system call (sendmmsg): how many went. An error is the first one's:
/// none went.
pub fn send_batch<'a>(
    socket: &UdpSocket,
    sending: &mut Sending,
    datagrams: impl Iterator<Item = (SocketAddr, &'a [u8])>,
) -> io::Result<usize> {
    let Sending { to, iovs, headers } = sending;
    let mut count = 0;
    let slots = to.iter_mut().zip(iovs.iter_mut()).zip(headers.iter_mut());
    for (((to, iov), header), (address, bytes)) in slots.zip(datagrams) {
        let len = write_sockaddr(address, to);
        *iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        // SAFETY: an all-zero msghdr is valid (null pointers, zero
        // lengths).
        header.msg_hdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_name = (to as *mut libc::sockaddr_storage).cast();
        header.msg_hdr.msg_namelen = len;
        header.msg_hdr.msg_iov = iov;
        header.msg_hdr.msg_iovlen = 1;
        header.msg_len = 0;
        count += 1;
    }
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: the first `count` headers point at their own address and
    // iovec, and each iovec at bytes the caller lends for the call.
    let sent =
        unsafe { libc::sendmmsg(socket.as_raw_fd(), headers.as_mut_ptr(), count as _, 0 as _) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Writes `address` into `storage` as the kernel takes it; its length.
fn write_sockaddr(address: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    // SAFETY: all-zero storage is valid, and it is large and aligned enough
    // for either family's sockaddr.
    unsafe {
        *storage = std::mem::zeroed();
        match address {
            SocketAddr::V4(a) => {
                let sin =
                    &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                let sin6 =
                    &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                sin6.sin6_scope_id = a.scope_id();
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }
}

/// A header for receiving one datagram into `iov`, its source into
/// `from`, its ancillary data into `control`.
fn message_header(
    from: *mut libc::sockaddr_storage,
    iov: &mut libc::iovec,
    control: &mut [u64; CONTROL_LEN / 8],
) -> libc::msghdr {
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = from.cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = CONTROL_LEN as _;
    msg
}

/// What a received header says of its datagram of `len` bytes.
///
/// # Safety
/// `msg` must be a header the kernel filled in: its name of msg_namelen
/// bytes, its control data within msg_controllen.
unsafe fn received(msg: &libc::msghdr, len: usize) -> io::Result<Received> {
    let from = socket_addr(
        &*msg.msg_name.cast::<libc::sockaddr_storage>(),
        msg.msg_namelen,
    )?;
    let mut received = Received {
        len,
        from,
        ifindex: None,
        overflows: None,
    };
    // The CMSG_* macros walk the control buffer within msg_controllen;
    // each payload is read unaligned at its size.
    let mut cmsg = libc::CMSG_FIRSTHDR(msg);
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
        cmsg = libc::CMSG_NXTHDR(msg, cmsg);
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
    fn a_batch_takes_what_is_waiting_in_order_up_to_its_room() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_ancillary(&rx).unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut batch = Batch::new(4, 16);
        assert_eq!(
            recv_batch(&rx, &mut batch).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        // Six waiting, one of them longer than a buffer: four, then two.
        for n in 0..6u8 {
            let len = if n == 2 { 20 } else { usize::from(n) + 1 };
            tx.send_to(&vec![n; len], to).unwrap();
        }
        assert_eq!(recv_batch(&rx, &mut batch).unwrap(), 4);
        let got: Vec<(SocketAddr, Vec<u8>)> = batch
            .datagrams()
            .map(|(r, bytes)| {
                assert_eq!(r.ifindex, Some(ifindex("lo").unwrap()));
                (r.from, bytes.to_vec())
            })
            .collect();
        let from = tx.local_addr().unwrap();
        assert_eq!(
            got,
            [
                (from, vec![0]),
                (from, vec![1; 2]),
                (from, vec![2; 16]), // cut to its buffer
                (from, vec![3; 4]),
            ]
        );
        assert_eq!(recv_batch(&rx, &mut batch).unwrap(), 2);
        let lengths: Vec<usize> = batch.datagrams().map(|(r, _)| r.len).collect();
        assert_eq!(lengths, [5, 6]);
    }

    #[test]
    fn a_batch_goes_out_in_order_to_each_address_of_either_family() {
        let v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let v6 = UdpSocket::bind("[::1]:0").unwrap();
        let (to4, to6) = (v4.local_addr().unwrap(), v6.local_addr().unwrap());
        let tx4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx6 = UdpSocket::bind("[::1]:0").unwrap();
        let mut sending = Sending::new(2);
        let three: [(SocketAddr, &[u8]); 3] = [(to4, b"one"), (to4, b"two"), (to4, b"three")];
        // Room for two: two go, the caller sends the rest.
        assert_eq!(
            send_batch(&tx4, &mut sending, three.iter().copied()).unwrap(),
            2
        );
        assert_eq!(
            send_batch(&tx4, &mut sending, three[2..].iter().copied()).unwrap(),
            1
        );
        assert_eq!(
            send_batch(&tx6, &mut sending, [(to6, &b"six"[..])].into_iter()).unwrap(),
            1
        );
        let mut buf = [0u8; 16];
        for want in [&b"one"[..], b"two", b"three"] {
            let (len, from) = v4.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..len], from), (want, tx4.local_addr().unwrap()));
        }
        let (len, from) = v6.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..len], from),
            (&b"six"[..], tx6.local_addr().unwrap())
        );
        // Nothing to send: no call.
        assert_eq!(
            send_batch(&tx4, &mut sending, std::iter::empty()).unwrap(),
            0
        );
        // One the kernel refuses (another family): those before it go, it
        // is the next call's error, and the caller goes on after it.
        let refused: [(SocketAddr, &[u8]); 3] = [(to4, b"a"), (to6, b"b"), (to4, b"c")];
        let from = |n: usize| refused[n..].iter().copied();
        assert_eq!(send_batch(&tx4, &mut sending, from(0)).unwrap(), 1);
        assert!(send_batch(&tx4, &mut sending, from(1)).is_err());
        assert_eq!(send_batch(&tx4, &mut sending, from(2)).unwrap(), 1);
        for want in [&b"a"[..], b"c"] {
            let (len, _) = v4.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], want);
        }
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
