//! The LISP control-message codec lispguard speaks: Map-Request,
//! Map-Reply, Map-Register, Map-Notify, Map-Notify-Ack and the
//! Encapsulated Control Message of RFC 9301, with the LCAF address types
//! of RFC 8060 that carry instance IDs, NAT traversal and WireGuard keys.
//!
//! No I/O. Parsers take the UDP payload and return a typed error with the
//! offset of the bad field; they never panic and never allocate. Writers
//! fill a caller buffer and return the length. Every list is bounded (see
//! the `MAX_*` constants): a message that holds more is an error, not an
//! allocation.
//!
//! ```
//! use lisp::{Address, MapReply, Message, Record};
//! let eid = Address::eid(0, "10.1.0.0".parse().unwrap(), Some(&[7; 32]));
//! let mut reply = MapReply { nonce: 42, ..Default::default() };
//! reply.records.push(Record::negative(eid, 24, 1, lisp::Action::NO_ACTION)).unwrap();
//! let mut buf = [0u8; 1500];
//! let len = reply.write(&mut buf).unwrap();
//! assert_eq!(Message::parse(&buf[..len]), Ok(Message::MapReply(reply)));
//! ```

pub mod address;
pub mod auth;
mod ecm;
mod eid;
mod error;
pub mod ip;
mod map_reply;
mod map_request;
mod record;
mod registration;
mod wire;

pub use address::{Address, InstanceId, KeyedAddress, NatTraversal, SecurityKey};
pub use auth::Algorithm;
pub use ecm::Ecm;
pub use eid::{EidPrefix, EidPrefixError};
pub use error::{AuthError, ParseError, ParseErrorKind, WriteError};
pub use map_reply::MapReply;
pub use map_request::{MapRequest, RequestRecord, MAX_ITR_RLOCS};
pub use record::{Action, Locator, Record, MAX_LOCATORS, TTL_INFINITE};
pub use registration::{MapNotify, MapRegister, Registration, XtrId};

/// UDP port of the LISP control plane.
pub const CONTROL_PORT: u16 = 4342;

/// Records kept per message.
pub const MAX_RECORDS: usize = 8;

/// Message types (RFC 9301 §5.1, IANA "LISP Packet Types").
pub mod message_type {
    pub const MAP_REQUEST: u8 = 1;
    pub const MAP_REPLY: u8 = 2;
    pub const MAP_REGISTER: u8 = 3;
    pub const MAP_NOTIFY: u8 = 4;
    pub const MAP_NOTIFY_ACK: u8 = 5;
    pub const ECM: u8 = 8;
}

/// Any control message lispguard speaks, for a receiver that dispatches
/// on the type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    MapRequest(MapRequest),
    MapReply(MapReply),
    MapRegister(MapRegister),
    MapNotify(MapNotify),
    MapNotifyAck(MapNotify),
    Ecm(Ecm<'a>),
}

impl<'a> Message<'a> {
    /// Parses a UDP payload received on the control port.
    pub fn parse(msg: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let Some(&first) = msg.first() else {
            return Err(ParseError {
                offset: 0,
                kind: ParseErrorKind::Truncated {
                    field: "message header",
                },
            });
        };
        match first >> 4 {
            message_type::MAP_REQUEST => MapRequest::parse(msg).map(Message::MapRequest),
            message_type::MAP_REPLY => MapReply::parse(msg).map(Message::MapReply),
            message_type::MAP_REGISTER => MapRegister::parse(msg).map(Message::MapRegister),
            message_type::MAP_NOTIFY => MapNotify::parse(msg).map(Message::MapNotify),
            message_type::MAP_NOTIFY_ACK => MapNotify::parse_ack(msg).map(Message::MapNotifyAck),
            message_type::ECM => Ecm::parse(msg).map(Message::Ecm),
            other => Err(ParseError {
                offset: 0,
                kind: ParseErrorKind::UnknownType(other),
            }),
        }
    }
}
