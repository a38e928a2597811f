//! Typed errors: what went wrong and, for parsing, where.

use core::fmt;

/// A message could not be parsed. `offset` is the byte offset, from the
/// start of the message, of the field that was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub kind: ParseErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The message ended inside this field.
    Truncated { field: &'static str },
    /// The message type is not the one the parser was asked for.
    WrongType { expected: u8, found: u8 },
    /// A message type lispguard does not speak.
    UnknownType(u8),
    /// An AFI this codec cannot size, so nothing after it can be read.
    UnknownAfi(u16),
    /// An LCAF whose Length does not match its contents.
    LcafLength { lcaf_type: u8, length: u16 },
    /// A list longer than this codec keeps (its bound, not the RFC's).
    TooMany { field: &'static str, max: usize },
    /// A value the RFC does not allow here (e.g. mask-len 33 for IPv4).
    Invalid { field: &'static str, value: u32 },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.kind)
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { field } => write!(f, "message ends inside {field}"),
            Self::WrongType { expected, found } => {
                write!(f, "message type {found}, expected {expected}")
            }
            Self::UnknownType(t) => write!(f, "unknown message type {t}"),
            Self::UnknownAfi(afi) => write!(f, "unknown AFI {afi}"),
            Self::LcafLength { lcaf_type, length } => {
                write!(
                    f,
                    "LCAF type {lcaf_type}: length {length} does not match its contents"
                )
            }
            Self::TooMany { field, max } => write!(f, "more than {max} {field}"),
            Self::Invalid { field, value } => write!(f, "invalid {field} {value}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A message could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The caller's buffer is shorter than the message.
    BufferTooSmall { needed: usize, available: usize },
    /// A field holds a value that does not fit its bits on the wire.
    Invalid { field: &'static str, value: u32 },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { needed, available } => {
                write!(f, "message needs {needed} bytes, buffer has {available}")
            }
            Self::Invalid { field, value } => write!(f, "{field} {value} does not fit the wire"),
        }
    }
}

impl std::error::Error for WriteError {}

/// A Map-Register, Map-Notify or Map-Notify-Ack failed authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// Too short to hold the authentication header and data.
    Truncated,
    /// Not a message type that carries authentication data.
    NotAuthenticated { message_type: u8 },
    /// Algorithm ID 0 (none) or one this codec does not implement.
    UnsupportedAlgorithm(u8),
    /// Authentication Data Length is neither the full nor the truncated
    /// digest length of the algorithm.
    BadLength { algorithm: u8, length: u16 },
    /// The digest does not match: wrong key, or the message was altered.
    Mismatch,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated => write!(f, "message too short for its authentication data"),
            Self::NotAuthenticated { message_type } => {
                write!(
                    f,
                    "message type {message_type} carries no authentication data"
                )
            }
            Self::UnsupportedAlgorithm(a) => write!(f, "unsupported authentication algorithm {a}"),
            Self::BadLength { algorithm, length } => {
                write!(
                    f,
                    "authentication data length {length} is wrong for algorithm {algorithm}"
                )
            }
            Self::Mismatch => write!(f, "authentication data does not match"),
        }
    }
}

impl std::error::Error for AuthError {}
