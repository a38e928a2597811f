//! Map-Register (RFC 9301 §5.6), Map-Notify and Map-Notify-Ack (§5.7):
//! the three authenticated messages. They share one layout after the
//! first word — nonce, Key ID, Algorithm ID, authentication data, records,
//! and the xTR-ID and Site-ID when the I bit says so — which [`Registration`]
//! holds.

use crate::auth::{self, Algorithm};
use crate::error::{ParseError, ParseErrorKind, WriteError};
use crate::record::{parse_record, Record};
use crate::wire::{
    array, bounded, fail, flag, header, parse_all, take_, u16_, u64_, u8_, Emit, Res, Writer,
};
use crate::{message_type, MAX_RECORDS};

/// What Map-Register, Map-Notify and Map-Notify-Ack carry after their
/// first word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub nonce: u64,
    /// Selects the shared key when a site has several.
    pub key_id: u8,
    pub algorithm: Algorithm,
    pub records: heapless::Vec<Record, MAX_RECORDS>,
    /// xTR-ID and Site-ID, sent when the I bit is set.
    pub xtr: Option<XtrId>,
}

/// The 128-bit xTR-ID and 64-bit Site-ID that identify the sending xTR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct XtrId {
    pub xtr_id: u128,
    pub site_id: u64,
}

/// A Map-Register: an ETR tells its Map-Server which EID-Prefixes it
/// serves and through which RLOCs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapRegister {
    /// P bit: the Map-Server answers Map-Requests for these EIDs itself.
    pub proxy_reply: bool,
    /// S bit: the ETR is LISP-SEC capable.
    pub security: bool,
    /// E bit: EID-notify (a first-hop router registering a dynamic EID).
    pub eid_notify: bool,
    /// T bit: time the registration out by the Record TTL.
    pub use_ttl: bool,
    /// a bit: merge with other ETRs' registrations of the same prefix.
    pub merge: bool,
    /// M bit: the Map-Server acknowledges with a Map-Notify.
    pub want_map_notify: bool,
    pub body: Registration,
}

/// A Map-Notify, or (type 5) the Map-Notify-Ack that answers it; both
/// have the same contents and no flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapNotify {
    pub body: Registration,
}

mod bits {
    pub const P: u32 = 1 << 27;
    pub const S: u32 = 1 << 26;
    pub const I: u32 = 1 << 25;
    pub const E: u32 = 1 << 12;
    pub const T: u32 = 1 << 11;
    pub const A: u32 = 1 << 10;
    pub const M: u32 = 1 << 8;
}

impl MapRegister {
    /// A Map-Register as lispguard agents send it: the map-server answers
    /// Map-Requests for these EIDs itself (P) and acknowledges (M).
    pub fn new(body: Registration) -> MapRegister {
        MapRegister {
            proxy_reply: true,
            security: false,
            eid_notify: false,
            use_ttl: false,
            merge: false,
            want_map_notify: true,
            body,
        }
    }

    pub fn parse(msg: &[u8]) -> Result<MapRegister, ParseError> {
        parse_all(msg, parse_register)
    }

    /// Writes the message into `buf`, authenticated with `key`, and
    /// returns its length.
    pub fn write(&self, buf: &mut [u8], key: &[u8]) -> Result<usize, WriteError> {
        let first = u32::from(message_type::MAP_REGISTER) << 28
            | flag(self.proxy_reply, bits::P)
            | flag(self.security, bits::S)
            | flag(self.body.xtr.is_some(), bits::I)
            | flag(self.eid_notify, bits::E)
            | flag(self.use_ttl, bits::T)
            | flag(self.merge, bits::A)
            | flag(self.want_map_notify, bits::M);
        self.body.write(first, buf, key)
    }
}

impl MapNotify {
    pub fn parse(msg: &[u8]) -> Result<MapNotify, ParseError> {
        parse_all(msg, |i| parse_notify(i, message_type::MAP_NOTIFY))
    }

    pub fn parse_ack(msg: &[u8]) -> Result<MapNotify, ParseError> {
        parse_all(msg, |i| parse_notify(i, message_type::MAP_NOTIFY_ACK))
    }

    /// Writes a Map-Notify authenticated with `key`; returns its length.
    pub fn write(&self, buf: &mut [u8], key: &[u8]) -> Result<usize, WriteError> {
        self.write_as(message_type::MAP_NOTIFY, buf, key)
    }

    /// Writes the same contents as a Map-Notify-Ack.
    pub fn write_ack(&self, buf: &mut [u8], key: &[u8]) -> Result<usize, WriteError> {
        self.write_as(message_type::MAP_NOTIFY_ACK, buf, key)
    }

    fn write_as(&self, message_type: u8, buf: &mut [u8], key: &[u8]) -> Result<usize, WriteError> {
        // RFC 9301 gives Map-Notify no I bit: nothing would announce an xTR-ID.
        if self.body.xtr.is_some() {
            return Err(WriteError::Invalid {
                field: "xTR-ID in Map-Notify",
                value: 1,
            });
        }
        self.body.write(u32::from(message_type) << 28, buf, key)
    }
}

impl Registration {
    /// The body's length after the first word.
    fn body_len(&self) -> usize {
        8 + 4
            + self.algorithm.full_len()
            + self.records.iter().map(Emit::wire_len).sum::<usize>()
            + self.xtr.as_ref().map_or(0, Emit::wire_len)
    }

    /// Writes `first` (type and flags; the record count is added here),
    /// the body with the authentication data zeroed, then signs it.
    fn write(&self, first: u32, buf: &mut [u8], key: &[u8]) -> Result<usize, WriteError> {
        let mut w = Writer::for_message(buf, 4 + self.body_len())?;
        w.u32(first | self.records.len() as u32)?;
        w.u64(self.nonce)?;
        w.u8(self.key_id)?;
        w.u8(self.algorithm.id())?;
        w.u16(self.algorithm.full_len() as u16)?;
        w.bytes(&[0; 32][..self.algorithm.full_len()])?;
        self.records.iter().try_for_each(|r| r.emit(&mut w))?;
        self.xtr.map_or(Ok(()), |xtr| xtr.emit(&mut w))?;
        // The header written above is one sign() accepts.
        auth::sign(w.written(), key).map_err(|_| WriteError::Invalid {
            field: "Algorithm ID",
            value: self.algorithm.id().into(),
        })?;
        Ok(w.len())
    }
}

fn parse_register(i: &[u8]) -> Res<'_, MapRegister> {
    let (i, word) = header(message_type::MAP_REGISTER)(i)?;
    let (i, body) = parse_body(i, word, word & bits::I != 0)?;
    Ok((
        i,
        MapRegister {
            proxy_reply: word & bits::P != 0,
            security: word & bits::S != 0,
            eid_notify: word & bits::E != 0,
            use_ttl: word & bits::T != 0,
            merge: word & bits::A != 0,
            want_map_notify: word & bits::M != 0,
            body,
        },
    ))
}

fn parse_notify(i: &[u8], message_type: u8) -> Res<'_, MapNotify> {
    let (i, word) = header(message_type)(i)?;
    let (i, body) = parse_body(i, word, false)?;
    Ok((i, MapNotify { body }))
}

/// The shared body; `word` is the first word (for the record count).
fn parse_body(i: &[u8], word: u32, has_xtr_id: bool) -> Res<'_, Registration> {
    let (i, nonce) = u64_("Nonce")(i)?;
    let (i, key_id) = u8_("Key ID")(i)?;
    let algorithm_at = i;
    let (i, algorithm_id) = u8_("Algorithm ID")(i)?;
    let Some(algorithm) = Algorithm::from_id(algorithm_id) else {
        return fail(
            algorithm_at,
            ParseErrorKind::Invalid {
                field: "Algorithm ID",
                value: algorithm_id.into(),
            },
        );
    };
    let (i, auth_len) = u16_("Authentication Data Length")(i)?;
    let (i, _auth_data) = take_("Authentication Data", auth_len.into())(i)?;
    let (i, records) = bounded(i, (word & 0xff) as usize, "records", parse_record)?;
    let (i, xtr) = parse_xtr_id(i, has_xtr_id)?;
    Ok((
        i,
        Registration {
            nonce,
            key_id,
            algorithm,
            records,
            xtr,
        },
    ))
}

/// The xTR-ID and Site-ID at the end of a message, when its I bit is set.
pub(crate) fn parse_xtr_id(i: &[u8], present: bool) -> Res<'_, Option<XtrId>> {
    if !present {
        return Ok((i, None));
    }
    let (i, xtr_id) = array::<16>("xTR-ID")(i)?;
    let (i, site_id) = u64_("Site-ID")(i)?;
    let xtr_id = u128::from_be_bytes(xtr_id);
    Ok((i, Some(XtrId { xtr_id, site_id })))
}

impl Emit for XtrId {
    fn wire_len(&self) -> usize {
        24
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        w.bytes(&self.xtr_id.to_be_bytes())?;
        w.u64(self.site_id)
    }
}
