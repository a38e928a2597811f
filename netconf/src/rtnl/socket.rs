//! Request/response over a netlink socket: NETLINK_ROUTE for [`Rtnl`], and
//! NETLINK_GENERIC for the kernel's WireGuard (whose messages are built by
//! `wireguard::kernel`, so they go through the raw `*_raw` methods).
//!
//! [`Rtnl`]: super::Rtnl
//!
//! neli builds and parses the rtnetlink structs (`Ifinfomsg`, `Ifaddrmsg`,
//! `Rtmsg` and their attributes); the framing around them is done here, by
//! `nlmsg_len`, for three reasons:
//! - neli's `Nlmsghdr` parser does not always consume exactly `nlmsg_len`
//!   bytes (an ACK carrying extended-ACK TLVs leaves them behind), which would
//!   desynchronise every following message of the datagram;
//! - a reply must be matched to its request by sequence number, so that
//!   leftovers of an earlier, abandoned exchange are skipped, not misread;
//! - neli's synchronous router starts a thread per socket and wakes it every
//!   100 ms, which a 16 MB router does not need for a few requests a minute.
//!
//! Byte order: the netlink header, errno and integer attributes (ifindex, MTU,
//! table) are host order; neli writes integers in native order, which is
//! what the kernel wants on little- and big-endian (MIPS) hosts alike.
//! Addresses are network order in the kernel's structs, so they are always
//! handled as byte arrays (`octets()`), never as integers.

use std::{
    io::{self, Cursor},
    sync::{Mutex, MutexGuard},
};

use log::debug;
use neli::{
    consts::{
        nl::NlmF,
        rtnl::Rtm,
        socket::{Msg, NlFamily},
    },
    nl::{NlPayload, NlmsghdrBuilder},
    socket::NlSocket,
    utils::Groups,
    FromBytesWithInput, Size, ToBytes,
};

use crate::error::{errno, invalid};

/// `sizeof(struct nlmsghdr)`.
const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = libc::NLMSG_NOOP as u16;
const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
const NLMSG_OVERRUN: u16 = libc::NLMSG_OVERRUN as u16;
const NLM_F_DUMP_INTR: u16 = libc::NLM_F_DUMP_INTR as u16;

/// The kernel never puts more than 32 KiB into one netlink datagram (dumps
/// are cut at that size), so a buffer of this size is never truncated.
pub(crate) const RECV_BUFFER: usize = 32 * 1024;

/// How often a dump the kernel marked as interrupted (the table changed while
/// it was being read) is retried before its possibly inconsistent result is
/// used anyway.
const DUMP_RETRIES: usize = 3;

/// One netlink message inside a received datagram.
pub(crate) struct Message<'a> {
    pub(crate) ty: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    pub(crate) pid: u32,
    /// What follows the header, up to `nlmsg_len`.
    pub(crate) payload: &'a [u8],
}

fn ne_u16(b: &[u8]) -> u16 {
    u16::from_ne_bytes([b[0], b[1]])
}

fn ne_u32(b: &[u8]) -> u32 {
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

/// Splits a datagram into its messages, by `nlmsg_len` (host order).
pub(crate) fn split(mut buf: &[u8]) -> io::Result<Vec<Message<'_>>> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = ne_u32(buf) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(invalid(format!(
                "netlink message of length {len} in {} bytes",
                buf.len()
            )));
        }
        out.push(Message {
            ty: ne_u16(&buf[4..]),
            flags: ne_u16(&buf[6..]),
            seq: ne_u32(&buf[8..]),
            pid: ne_u32(&buf[12..]),
            payload: &buf[NLMSG_HDRLEN..len],
        });
        // NLMSG_ALIGN; the last message of a datagram may lack its padding.
        buf = &buf[((len + 3) & !3).min(buf.len())..];
    }
    Ok(out)
}

/// Parses a message payload as one of neli's rtnetlink structs.
pub(crate) fn parse<R: FromBytesWithInput<Input = usize>>(payload: &[u8]) -> io::Result<R> {
    R::from_bytes_with_input(&mut Cursor::new(payload), payload.len())
        .map_err(|e| invalid(format!("malformed rtnetlink message: {e}")))
}

/// The errno carried by an NLMSG_ERROR or NLMSG_DONE payload (a host-order
/// `int`, negative on error) as a positive errno; 0 when there is none.
fn carried_errno(payload: &[u8]) -> i32 {
    let code = payload.get(..4).map_or(0, |raw| ne_u32(raw) as i32);
    if code < 0 {
        code.wrapping_neg()
    } else {
        0
    }
}

/// Receives one datagram into `buf`, returning its length. `MSG_TRUNC` makes
/// the kernel report a datagram's full length, so a truncation is seen.
pub(crate) fn recv(sock: &NlSocket, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match sock.recv(&mut *buf, Msg::TRUNC) {
            Ok((n, _)) if n > buf.len() => {
                return Err(invalid(format!(
                    "netlink datagram of {n} bytes exceeds the {} byte buffer",
                    buf.len()
                )))
            }
            Ok((n, _)) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A netlink socket used for one request at a time.
///
/// The mutex makes `Rtnl` shareable between threads: replies are read by
/// whoever sent the request, so two exchanges must not interleave.
pub(crate) struct Socket {
    inner: Mutex<Inner>,
}

struct Inner {
    sock: NlSocket,
    /// Our netlink port id, which the kernel puts in its replies.
    pid: u32,
    seq: u32,
    buf: Vec<u8>,
}

impl Socket {
    /// Opens a socket of `family` in the calling thread's network namespace.
    pub(crate) fn open(family: NlFamily) -> io::Result<Socket> {
        let sock = NlSocket::connect(family, None, Groups::empty())?;
        let pid = sock.pid()?;
        Ok(Socket {
            inner: Mutex::new(Inner {
                sock,
                pid,
                seq: 0,
                buf: vec![0; RECV_BUFFER],
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic mid-exchange leaves only unread replies behind, which the
        // sequence check skips: the socket is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a request with NLM_F_ACK and returns the payloads of the
    /// kernel's replies before its ACK (a GETLINK answers with one; a change
    /// with none). A negative ACK becomes the errno's io::Error.
    pub(crate) fn request<P, R>(&self, ty: Rtm, flags: NlmF, payload: P) -> io::Result<Vec<R>>
    where
        P: Size + ToBytes,
        R: FromBytesWithInput<Input = usize>,
    {
        let request = encode(ty, flags | NlmF::ACK, payload)?;
        let mut out = Vec::new();
        self.lock()
            .exchange(request, |m| parse(m.payload).map(|r| out.push(r)))?;
        Ok(out)
    }

    /// Dumps a table (links, addresses, routes), retrying when the kernel
    /// says the table changed during the dump.
    pub(crate) fn dump<P, R>(&self, ty: Rtm, payload: P) -> io::Result<Vec<R>>
    where
        P: Size + ToBytes,
        R: FromBytesWithInput<Input = usize>,
    {
        let request = encode(ty, NlmF::DUMP, payload)?;
        self.lock().dump(request, |m| parse(m.payload))
    }

    /// Sends an already serialised payload (a generic netlink message) as
    /// message type `ty` with NLM_F_ACK, and returns the payloads of the
    /// replies before the ACK.
    pub(crate) fn request_raw(
        &self,
        ty: u16,
        flags: u16,
        payload: &[u8],
    ) -> io::Result<Vec<Vec<u8>>> {
        let request = encode_raw(ty, flags | libc::NLM_F_ACK as u16, payload);
        let mut out = Vec::new();
        self.lock().exchange(request, |m| {
            out.push(m.payload.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    /// A dump with an already serialised payload: the payloads of every
    /// part, retried like [`dump`](Socket::dump) when interrupted.
    pub(crate) fn dump_raw(&self, ty: u16, payload: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let request = encode_raw(ty, libc::NLM_F_DUMP as u16, payload);
        self.lock().dump(request, |m| Ok(m.payload.to_vec()))
    }
}

/// Serialises a request around a raw payload (host-order header, padded).
fn encode_raw(ty: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + payload.len();
    let mut buf = Vec::with_capacity((len + 3) & !3);
    buf.extend((len as u32).to_ne_bytes());
    buf.extend(ty.to_ne_bytes());
    buf.extend((flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
    buf.extend([0; 8]); // sequence number and port id: filled in / the kernel's
    buf.extend(payload);
    buf.resize((len + 3) & !3, 0);
    buf
}

/// Serialises a request; its sequence number is filled in by `exchange`.
fn encode<P: Size + ToBytes>(ty: Rtm, flags: NlmF, payload: P) -> io::Result<Vec<u8>> {
    let msg = NlmsghdrBuilder::default()
        .nl_type(ty)
        .nl_flags(flags | NlmF::REQUEST)
        .nl_payload(NlPayload::Payload(payload))
        .build()
        .map_err(invalid)?;
    let mut buf = Cursor::new(vec![0; msg.padded_size()]);
    msg.to_bytes(&mut buf).map_err(invalid)?;
    Ok(buf.into_inner())
}

impl Inner {
    /// Runs a dump request, retrying when the kernel says the table changed
    /// during the dump; `each` turns one part into a result.
    fn dump<R>(
        &mut self,
        request: Vec<u8>,
        mut each: impl FnMut(&Message<'_>) -> io::Result<R>,
    ) -> io::Result<Vec<R>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut out = Vec::new();
            let mut interrupted = false;
            self.exchange(request.clone(), |m| {
                interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
                each(m).map(|r| out.push(r))
            })?;
            if !interrupted || attempt > DUMP_RETRIES {
                return Ok(out);
            }
            debug!("netlink dump interrupted by a change; retrying");
        }
    }

    /// Sends `request` under a fresh sequence number and feeds each reply
    /// message to `on_reply` until the ACK, the error or the end of the dump.
    fn exchange(
        &mut self,
        mut request: Vec<u8>,
        mut on_reply: impl FnMut(&Message<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        request[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.sock.send(&request, Msg::empty())?;

        let Inner { sock, pid, buf, .. } = self;
        loop {
            let n = recv(sock, buf)?;
            for m in split(&buf[..n])? {
                if m.seq != seq || m.pid != *pid {
                    debug!("skipping stale rtnetlink reply (seq {})", m.seq);
                    continue;
                }
                match m.ty {
                    NLMSG_NOOP => {}
                    NLMSG_ERROR | NLMSG_DONE => {
                        return match carried_errno(m.payload) {
                            0 => Ok(()),
                            code => Err(errno(code)),
                        }
                    }
                    NLMSG_OVERRUN => return Err(invalid("netlink overrun")),
                    _ => on_reply(&m)?,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, ty: u16, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
        [
            &len.to_ne_bytes()[..],
            &ty.to_ne_bytes(),
            &flags.to_ne_bytes(),
            &seq.to_ne_bytes(),
            &pid.to_ne_bytes(),
        ]
        .concat()
    }

    #[test]
    fn split_by_length_in_host_order() {
        let mut buf = header(21, 20, 2, 7, 99);
        buf.extend([1, 2, 3, 4, 5, 0, 0, 0]); // 5 payload bytes, padded
        buf.extend(header(20, NLMSG_ERROR, 0, 8, 99));
        buf.extend((-libc::EEXIST).to_ne_bytes()); // last one: no padding
        let msgs = split(&buf).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            (msgs[0].ty, msgs[0].flags, msgs[0].seq, msgs[0].pid),
            (20, 2, 7, 99)
        );
        assert_eq!(msgs[0].payload, [1, 2, 3, 4, 5]);
        assert_eq!((msgs[1].ty, msgs[1].seq), (NLMSG_ERROR, 8));
        assert_eq!(carried_errno(msgs[1].payload), libc::EEXIST);
        assert_eq!(carried_errno(&0i32.to_ne_bytes()), 0);
    }

    #[test]
    fn split_rejects_bad_lengths() {
        assert!(split(&header(12, 20, 0, 0, 0)).is_err());
        assert!(split(&header(64, 20, 0, 0, 0)).is_err());
    }

    #[test]
    fn raw_request_encoding() {
        let b = encode_raw(0x1d, libc::NLM_F_ACK as u16, &[3, 1, 0, 0, 9]);
        assert_eq!(b.len(), NLMSG_HDRLEN + 8, "padded to 4");
        assert_eq!(b[..4], 21u32.to_ne_bytes(), "nlmsg_len without padding");
        assert_eq!(b[4..6], 0x1du16.to_ne_bytes());
        assert_eq!(
            b[6..8],
            ((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes()
        );
        assert_eq!(b[16..], [3, 1, 0, 0, 9, 0, 0, 0]);
    }

    #[test]
    fn request_encoding() {
        let link = neli::rtnl::IfinfomsgBuilder::default()
            .ifi_family(neli::consts::rtnl::RtAddrFamily::Unspecified)
            .build()
            .unwrap();
        let b = encode(Rtm::Getlink, NlmF::DUMP, link).unwrap();
        assert_eq!(b.len(), NLMSG_HDRLEN + 16);
        assert_eq!(b[..4], (b.len() as u32).to_ne_bytes());
        assert_eq!(b[4..6], libc::RTM_GETLINK.to_ne_bytes());
        assert_eq!(
            b[6..8],
            ((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes()
        );
    }
}
