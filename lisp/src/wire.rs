//! Reading and writing primitives shared by every message: nom parsers
//! that name the field they read, and a bounds-checked writer into the
//! caller's buffer.

use crate::error::{ParseError, ParseErrorKind, WriteError};
use nom::{IResult, Parser};

/// The error a parser step returns: what went wrong and how many bytes of
/// the message were left, from which the caller derives the offset.
#[derive(Debug)]
pub(crate) struct Failure {
    remaining: usize,
    kind: ParseErrorKind,
}

impl<'a> nom::error::ParseError<&'a [u8]> for Failure {
    fn from_error_kind(input: &'a [u8], _: nom::error::ErrorKind) -> Self {
        Failure {
            remaining: input.len(),
            kind: ParseErrorKind::Truncated { field: "message" },
        }
    }

    fn append(_: &'a [u8], _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type Res<'a, T> = IResult<&'a [u8], T, Failure>;

/// Fails at `at` (the input where the bad field starts) with `kind`.
pub(crate) fn fail<T>(at: &[u8], kind: ParseErrorKind) -> Res<'_, T> {
    Err(nom::Err::Failure(Failure {
        remaining: at.len(),
        kind,
    }))
}

/// Runs `parser` over a whole message and turns its failure into a
/// [`ParseError`] with the offset of the field that failed.
pub(crate) fn parse_all<'a, T>(
    msg: &'a [u8],
    parser: impl FnOnce(&'a [u8]) -> Res<'a, T>,
) -> Result<T, ParseError> {
    match parser(msg) {
        Ok((_, value)) => Ok(value),
        Err(nom::Err::Error(f) | nom::Err::Failure(f)) => Err(ParseError {
            offset: msg.len() - f.remaining,
            kind: f.kind,
        }),
        // Only streaming parsers return Incomplete; ours are all complete.
        Err(nom::Err::Incomplete(_)) => Err(ParseError {
            offset: msg.len(),
            kind: ParseErrorKind::Truncated { field: "message" },
        }),
    }
}

/// Wraps `parser` so that running out of input reports `field`.
fn named<'a, O>(
    field: &'static str,
    mut parser: impl Parser<&'a [u8], Output = O, Error = Failure>,
) -> impl FnMut(&'a [u8]) -> Res<'a, O> {
    move |i| {
        parser.parse(i).map_err(|e| {
            e.map(|f| Failure {
                kind: ParseErrorKind::Truncated { field },
                ..f
            })
        })
    }
}

pub(crate) fn u8_<'a>(field: &'static str) -> impl FnMut(&'a [u8]) -> Res<'a, u8> {
    named(field, nom::number::complete::be_u8)
}

pub(crate) fn u16_<'a>(field: &'static str) -> impl FnMut(&'a [u8]) -> Res<'a, u16> {
    named(field, nom::number::complete::be_u16)
}

pub(crate) fn u32_<'a>(field: &'static str) -> impl FnMut(&'a [u8]) -> Res<'a, u32> {
    named(field, nom::number::complete::be_u32)
}

pub(crate) fn u64_<'a>(field: &'static str) -> impl FnMut(&'a [u8]) -> Res<'a, u64> {
    named(field, nom::number::complete::be_u64)
}

pub(crate) fn take_<'a>(
    field: &'static str,
    n: usize,
) -> impl FnMut(&'a [u8]) -> Res<'a, &'a [u8]> {
    named(field, nom::bytes::complete::take(n))
}

/// Reads a fixed-size array, e.g. an IPv6 address or the xTR-ID.
pub(crate) fn array<'a, const N: usize>(
    field: &'static str,
) -> impl FnMut(&'a [u8]) -> Res<'a, [u8; N]> {
    move |i| {
        let (i, bytes) = take_(field, N)(i)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok((i, out))
    }
}

/// Reads `count` items into a bounded vector, failing with `TooMany`
/// before reading anything when `count` exceeds its capacity.
pub(crate) fn bounded<'a, T, const N: usize>(
    i: &'a [u8],
    count: usize,
    field: &'static str,
    mut item: impl FnMut(&'a [u8]) -> Res<'a, T>,
) -> Res<'a, heapless::Vec<T, N>> {
    if count > N {
        return fail(i, ParseErrorKind::TooMany { field, max: N });
    }
    let mut out = heapless::Vec::new();
    let mut i = i;
    for _ in 0..count {
        let (rest, value) = item(i)?;
        // Cannot fail: count <= N was checked above.
        let _ = out.push(value);
        i = rest;
    }
    Ok((i, out))
}

/// Something with a fixed layout on the wire.
pub(crate) trait Emit {
    /// Bytes it takes on the wire.
    fn wire_len(&self) -> usize;
    /// Writes it at the writer's position.
    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError>;
}

/// A cursor over the caller's buffer. Every write is bounds-checked, so a
/// wrong length computation is an error, never a panic.
pub(crate) struct Writer<'a> {
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

/// Reads the first word of a message and checks its type (top 4 bits).
pub(crate) fn header<'a>(expected: u8) -> impl FnMut(&'a [u8]) -> Res<'a, u32> {
    move |i| {
        let (rest, word) = u32_("message header")(i)?;
        let found = (word >> 28) as u8;
        if found != expected {
            return fail(i, ParseErrorKind::WrongType { expected, found });
        }
        Ok((rest, word))
    }
}
