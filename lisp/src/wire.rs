//! Reading and writing primitives shared by every message: a cursor that
//! names the field it reads and reports errors at their offset in the
//! whole message, and a bounds-checked writer into the caller's buffer.

use crate::error::{ParseError, ParseErrorKind, WriteError};

/// A read position in a message (public only to name it in [`crate::list::Item`];
/// its module is private). Offsets stay those of the whole message,
/// even inside an LCAF body, so that every error points at its byte.
#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a> {
    msg: &'a [u8],
    pos: usize,
    /// Where reading stops: the end of the message or of an LCAF body.
    end: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(msg: &'a [u8]) -> Self {
        Cursor {
            msg,
            pos: 0,
            end: msg.len(),
        }
    }

    /// A cursor over `bytes` alone, for items a checked view already walked.
    pub(crate) fn at(msg: &'a [u8], pos: usize, end: usize) -> Self {
        Cursor { msg, pos, end }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    /// The bytes from `start` to the current position.
    pub(crate) fn since(&self, start: usize) -> &'a [u8] {
        self.msg.get(start..self.pos).unwrap_or_default()
    }

    pub(crate) fn error(&self, at: usize, kind: ParseErrorKind) -> ParseError {
        ParseError { offset: at, kind }
    }

    pub(crate) fn fail<T>(&self, at: usize, kind: ParseErrorKind) -> Result<T, ParseError> {
        Err(self.error(at, kind))
    }

    pub(crate) fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], ParseError> {
        let bytes = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.end)
            .and_then(|end| self.msg.get(self.pos..end))
            .ok_or(ParseError {
                offset: self.pos,
                kind: ParseErrorKind::Truncated { field },
            })?;
        self.pos += n;
        Ok(bytes)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], ParseError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, ParseError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, ParseError> {
        self.array(field).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, ParseError> {
        self.array(field).map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, ParseError> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// A cursor over the next `n` bytes (an LCAF body); this one moves past.
    pub(crate) fn sub(&mut self, field: &'static str, n: usize) -> Result<Cursor<'a>, ParseError> {
        let start = self.pos;
        self.take(field, n)?;
        Ok(Cursor {
            msg: self.msg,
            pos: start,
            end: self.pos,
        })
    }

    /// Reads the first word and checks the message type (top 4 bits).
    pub(crate) fn header(&mut self, expected: u8) -> Result<u32, ParseError> {
        let word = self.u32("message header")?;
        let found = (word >> 28) as u8;
        if found != expected {
            return self.fail(self.pos - 4, ParseErrorKind::WrongType { expected, found });
        }
        Ok(word)
    }
}

/// Something with a fixed layout on the wire (public only to bound
/// [`crate::List`]'s writing methods; its module is private).
pub trait Emit {
    /// Bytes it takes on the wire.
    fn wire_len(&self) -> usize;
    /// Writes it at the writer's position.
    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError>;
}

/// A cursor over the caller's buffer. Every write is bounds-checked, so a
/// wrong length computation is an error, never a panic.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// A writer for a message of `needed` bytes; fails at once when the
    /// buffer is too small, naming both sizes.
    pub(crate) fn for_message(buf: &'a mut [u8], needed: usize) -> Result<Self, WriteError> {
        if buf.len() < needed {
            return Err(WriteError::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        Ok(Writer { buf, len: 0 })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let end = self.len + bytes.len();
        let available = self.buf.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(WriteError::BufferTooSmall {
                needed: end,
                available,
            })?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), WriteError> {
        self.bytes(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), WriteError> {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), WriteError> {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> Result<(), WriteError> {
        self.bytes(&v.to_be_bytes())
    }

    /// The bytes written so far.
    pub(crate) fn written(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

/// Writes `item` alone into `buf`, sized by its `wire_len`.
pub(crate) fn emit_into(item: &impl Emit, buf: &mut [u8]) -> Result<usize, WriteError> {
    let mut w = Writer::for_message(buf, item.wire_len())?;
    item.emit(&mut w)?;
    Ok(w.len())
}

/// Checks that `value` fits in `bits` bits before it is written.
pub(crate) fn fits(field: &'static str, value: u32, bits: u32) -> Result<u32, WriteError> {
    if value >> bits == 0 {
        Ok(value)
    } else {
        Err(WriteError::Invalid { field, value })
    }
}

/// A flag bit: `mask` when set, 0 otherwise.
pub(crate) const fn flag(set: bool, mask: u32) -> u32 {
    if set {
        mask
    } else {
        0
    }
}

/// Every control message's first word: type, flags, counts.
pub(crate) fn first_word(message: &[u8]) -> u32 {
    u32::from_be_bytes([message[0], message[1], message[2], message[3]])
}

/// Where every control message but ECM carries its nonce.
pub(crate) const NONCE: core::ops::Range<usize> = 4..12;

pub(crate) fn nonce(message: &[u8]) -> u64 {
    let mut nonce = [0; 8];
    nonce.copy_from_slice(&message[NONCE]);
    u64::from_be_bytes(nonce)
}

pub(crate) fn set_nonce(message: &mut [u8], nonce: u64) {
    message[NONCE].copy_from_slice(&nonce.to_be_bytes());
}
