//! The LISP control-message codec lispguard speaks: Map-Request,
//! Map-Reply, Map-Register, Map-Notify, Map-Notify-Ack and the
//! Encapsulated Control Message of RFC 9301, with the LCAF address types
//! of RFC 8060 that carry instance IDs, NAT traversal and WireGuard keys.
//!
//! No I/O, no allocation, no copies. Each message has a checked view over
//! the received bytes (`map_reply::Packet` and the like): `new_checked`
//! walks the layout once and reports a typed error with the offset of the
//! bad field; after it no accessor can fail, header fields are read in
//! place and lists (records, locators, ITR-RLOCs) are iterated off the
//! wire. A repr (`MapReply`, ...) is the meaning of a message; it borrows
//! addresses, keys and lists from the buffer, or, for writing, from the
//! caller's slices; `emit` writes it into a caller buffer. Every list is
//! bounded (the `MAX_*` constants): more is an error, not an allocation.
//!
//! Map-Register, Map-Notify and Map-Notify-Ack parse only from what
//! [`auth::verify`] returned: verify before parse is a type rule.
//!
//! ```
//! use lisp::{map_reply, Address, List, MapReply, Message, Record};
//! let eid = Address::eid(0, "10.1.0.0".parse().unwrap(), Some(&[7; 32]));
//! let records = [Record::negative(eid, 24, 1, lisp::Action::NO_ACTION)];
//! let reply = MapReply { nonce: 42, records: List::new(&records), ..Default::default() };
//! let mut buf = [0u8; 1500];
//! let len = reply.emit(&mut buf).unwrap();
//!
//! let packet = map_reply::Packet::new_checked(&buf[..len]).unwrap();
//! assert_eq!(packet.nonce(), 42);
//! assert_eq!(MapReply::parse(&packet), reply);
//! assert_eq!(Message::parse(&buf[..len]), Ok(Message::MapReply(reply)));
//! ```

pub mod address;
pub mod auth;
mod ecm;
mod eid;
mod error;
pub mod ip;
pub mod list;
pub mod map_reply;
pub mod map_request;
mod record;
pub mod registration;
mod wire;

pub use address::{Address, InstanceId, KeyedAddress, NatTraversal, SecurityKey};
pub use auth::{Algorithm, Authenticated};
pub use ecm::Ecm;
pub use eid::{EidPrefix, EidPrefixError};
pub use error::{AuthError, ParseError, ParseErrorKind, WriteError};
pub use list::List;
pub use map_reply::MapReply;
pub use map_request::{MapRequest, RequestRecord, MAX_ITR_RLOCS};
pub use record::{Action, Locator, Record, MAX_LOCATORS, TTL_INFINITE, UNUSABLE_PRIORITY};
pub use registration::{MapNotify, MapRegister, Registration, Untrusted, XtrId};

/// UDP port of the LISP control plane.
pub const CONTROL_PORT: u16 = 4342;

/// Records read per message.
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
/// on the type. The authenticated ones come checked but not verified.
#[derive(Clone, Debug, PartialEq, Eq)]
// A few hundred bytes, no allocation: boxing would cost more than it saves.
#[allow(clippy::large_enum_variant)]
pub enum Message<'a> {
    MapRequest(MapRequest<'a>),
    MapReply(MapReply<'a>),
    /// A Map-Register, Map-Notify or Map-Notify-Ack, to verify.
    Untrusted(Untrusted<'a>),
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
            message_type::MAP_REQUEST => map_request::Packet::new_checked(msg)
                .map(|p| Message::MapRequest(MapRequest::parse(&p))),
            message_type::MAP_REPLY => {
                map_reply::Packet::new_checked(msg).map(|p| Message::MapReply(MapReply::parse(&p)))
            }
            message_type::MAP_REGISTER..=message_type::MAP_NOTIFY_ACK => {
                Untrusted::new_checked(msg).map(Message::Untrusted)
            }
            message_type::ECM => Ecm::parse(msg).map(Message::Ecm),
            other => Err(ParseError {
                offset: 0,
                kind: ParseErrorKind::UnknownType(other),
            }),
        }
    }
}
