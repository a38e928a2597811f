//! Generic netlink: messages (`struct genlmsghdr` + attributes), a bounded
//! attribute reader, and resolving a family's id through nlctrl.
//!
//! Attributes are written and read here rather than with neli's `Nlattr`:
//! the WireGuard messages nest three levels deep with NLA_F_NESTED, the
//! reader must refuse a bad length with an error (never a panic, whatever
//! the kernel sends), and the bytes are short enough to check by hand in
//! tests. The socket and its framing are the rtnetlink module's.

use std::io;

use crate::{error::invalid, rtnl::socket::Socket};

/// `sizeof(struct nlattr)`.
const NLA_HDRLEN: usize = 4;
/// Set on an attribute whose payload is more attributes.
pub(crate) const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | 1 << 14);

/// nlctrl, the family that names the others (include/uapi/linux/genetlink.h).
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// A generic netlink message being built: `genlmsghdr`, then attributes.
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(cmd: u8, version: u8) -> Writer {
        Writer {
            buf: vec![cmd, version, 0, 0],
        }
    }

    /// An attribute with `payload` verbatim, padded to 4 bytes.
    pub(crate) fn put(&mut self, ty: u16, payload: &[u8]) -> &mut Writer {
        let len = NLA_HDRLEN + payload.len();
        self.buf.extend((len as u16).to_ne_bytes());
        self.buf.extend(ty.to_ne_bytes());
        self.buf.extend(payload);
        self.pad();
        self
    }

    pub(crate) fn put_u16(&mut self, ty: u16, value: u16) -> &mut Writer {
        self.put(ty, &value.to_ne_bytes())
    }

    pub(crate) fn put_u32(&mut self, ty: u16, value: u32) -> &mut Writer {
        self.put(ty, &value.to_ne_bytes())
    }

    /// A NUL-terminated string (NLA_NUL_STRING).
    pub(crate) fn put_str(&mut self, ty: u16, value: &str) -> &mut Writer {
        let mut payload = Vec::with_capacity(value.len() + 1);
        payload.extend(value.as_bytes());
        payload.push(0);
        self.put(ty, &payload)
    }

    /// A nested attribute (NLA_F_NESTED) holding what `inner` writes.
    pub(crate) fn nest(&mut self, ty: u16, inner: impl FnOnce(&mut Writer)) -> &mut Writer {
        let start = self.buf.len();
        self.buf.extend([0; NLA_HDRLEN]);
        inner(self);
        let len = self.buf.len() - start;
        self.buf[start..start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
        self.buf[start + 2..start + 4].copy_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    fn pad(&mut self) {
        self.buf.resize((self.buf.len() + 3) & !3, 0);
    }

    /// The message payload; fails if an attribute outgrew its 16-bit length.
    pub(crate) fn finish(self) -> io::Result<Vec<u8>> {
        // Any attribute over 64 KiB would have wrapped; the whole message
        // being under that size rules it out.
        if self.buf.len() > u16::MAX as usize {
            return Err(invalid("generic netlink message over 64 KiB"));
        }
        Ok(self.buf)
    }
}

/// The attributes of a received generic netlink message, after its
/// `genlmsghdr`.
pub(crate) fn message_attrs(payload: &[u8]) -> io::Result<Attrs<'_>> {
    payload
        .get(4..)
        .map(Attrs)
        .ok_or_else(|| invalid("generic netlink message shorter than its header"))
}

/// Attributes in a buffer, as (type without flags, payload); a length that
/// does not fit is an error and ends the iteration.
pub(crate) struct Attrs<'a>(pub(crate) &'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = io::Result<(u16, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let buf = self.0;
        let len = match buf.get(..NLA_HDRLEN) {
            Some(h) => u16::from_ne_bytes([h[0], h[1]]) as usize,
            None => 0,
        };
        if len < NLA_HDRLEN || len > buf.len() {
            self.0 = &[];
            return Some(Err(invalid(format!(
                "netlink attribute of length {len} in {} bytes",
                buf.len()
            ))));
        }
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        self.0 = &buf[((len + 3) & !3).min(buf.len())..];
        Some(Ok((ty, &buf[NLA_HDRLEN..len])))
    }
}

/// A fixed-size attribute payload, or an error naming what was expected.
pub(crate) fn fixed<const N: usize>(payload: &[u8], what: &str) -> io::Result<[u8; N]> {
    payload.try_into().map_err(|_| {
        invalid(format!(
            "netlink attribute {what} of {} bytes, not {N}",
            payload.len()
        ))
    })
}

pub(crate) fn get_u16(payload: &[u8], what: &str) -> io::Result<u16> {
    fixed(payload, what).map(u16::from_ne_bytes)
}

pub(crate) fn get_u64(payload: &[u8], what: &str) -> io::Result<u64> {
    fixed(payload, what).map(u64::from_ne_bytes)
}

/// The id of generic netlink family `name`; ENOENT when the kernel has no
/// such family (its module is not loaded and cannot be).
pub(crate) fn resolve_family(sock: &Socket, name: &str) -> io::Result<u16> {
    let mut msg = Writer::new(CTRL_CMD_GETFAMILY, 1);
    msg.put_str(CTRL_ATTR_FAMILY_NAME, name);
    for reply in sock.request_raw(GENL_ID_CTRL, 0, &msg.finish()?)? {
        for attr in message_attrs(&reply)? {
            let (ty, payload) = attr?;
            if ty == CTRL_ATTR_FAMILY_ID {
                return get_u16(payload, "CTRL_ATTR_FAMILY_ID");
            }
        }
    }
    Err(invalid(format!(
        "nlctrl answered without the id of family {name}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_round_trip() {
        let mut w = Writer::new(7, 1);
        w.put_str(2, "wg0").nest(8, |w| {
            w.put_u16(6, 51820);
        });
        let msg = w.finish().unwrap();
        let n = |v: u16| v.to_ne_bytes();
        let expected = [
            &[7, 1, 0, 0][..],
            &n(8),
            &n(2),
            b"wg0\0",
            &n(12),
            &n(8 | NLA_F_NESTED),
            &n(6),
            &n(6),
            &n(51820),
            &[0, 0],
        ]
        .concat();
        assert_eq!(msg, expected);

        let attrs: Vec<_> = message_attrs(&msg)
            .unwrap()
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(attrs[0], (2, &b"wg0\0"[..]));
        assert_eq!(attrs[1].0, 8, "flags masked off");
        let inner: Vec<_> = Attrs(attrs[1].1).collect::<io::Result<_>>().unwrap();
        assert_eq!(inner, [(6, &n(51820)[..])]);
        assert_eq!(get_u16(inner[0].1, "port").unwrap(), 51820);
    }

    #[test]
    fn bad_lengths_are_errors() {
        let n = |v: u16| v.to_ne_bytes();
        for bad in [
            &[1, 0][..],                        // shorter than a header
            &[&n(3)[..], &n(1)].concat(),       // length below the header's
            &[&n(9)[..], &n(1), &[0]].concat(), // longer than what is left
        ] {
            let mut attrs = Attrs(bad);
            assert!(attrs.next().unwrap().is_err(), "{bad:?}");
            assert!(attrs.next().is_none());
        }
        assert!(message_attrs(&[1, 2]).is_err());
        assert!(get_u16(&[1, 2, 3], "x").is_err());
        assert!(get_u64(&[1], "x").is_err());
    }
}
