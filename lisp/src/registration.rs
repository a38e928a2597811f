//! Map-Register (RFC 9301 §5.6), Map-Notify and Map-Notify-Ack (§5.7):
//! the three authenticated messages. They share one layout after the
//! first word — nonce, Key ID, Algorithm ID, authentication data, records,
//! and the xTR-ID and Site-ID when the I bit says so — which [`Packet`]
//! reads and [`Registration`] holds. A Map-Notify echoes the xTR-ID and
//! Site-ID of the Map-Register it answers (RFC 9301 §5.7: its fields are
//! copied from the Map-Register), with its own I bit, bit 4 as Wireshark,
//! tcpdump and lispers.net read it.
//!
//! Only an [`Authenticated`] message parses into a [`MapRegister`] or a
//! [`MapNotify`]: verify before parse is a type rule. What a map-server
//! needs to choose the key before it can verify is in [`Untrusted`].

use crate::auth::{self, Algorithm, Authenticated};
use crate::error::{AuthError, ParseError, ParseErrorKind, WriteError};
use crate::list::List;
use crate::record::Record;
use crate::wire::{flag, Cursor, Emit, Writer};
use crate::{message_type, MAX_RECORDS};

mod field {
    pub(crate) use crate::auth::{ALGORITHM_ID, KEY_ID};
    pub const DATA: usize = crate::auth::DATA_LENGTH.end;
}

mod bits {
    pub const P: u32 = 1 << 27;
    pub const S: u32 = 1 << 26;
    pub const I: u32 = 1 << 25;
    /// A Map-Notify's or Map-Notify-Ack's I bit.
    pub const NOTIFY_I: u32 = 1 << 27;
    pub const E: u32 = 1 << 12;
    pub const T: u32 = 1 << 11;
    pub const A: u32 = 1 << 10;
    pub const M: u32 = 1 << 8;
}

/// A Map-Register, Map-Notify or Map-Notify-Ack whose layout was checked
/// (not its authenticity): every field, record and locator lies within the
/// buffer, so no accessor can fail.
#[derive(Clone, Copy, Debug)]
pub struct Packet<T> {
    buffer: T,
    records_at: usize,
    xtr_at: usize,
    end: usize,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the whole layout once.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let mut c = Cursor::new(buffer.as_ref());
        let word = c.u32("message header")?;
        let found = (word >> 28) as u8;
        if !(message_type::MAP_REGISTER..=message_type::MAP_NOTIFY_ACK).contains(&found) {
            let expected = message_type::MAP_REGISTER;
            return c.fail(0, ParseErrorKind::WrongType { expected, found });
        }
        c.u64("Nonce")?;
        c.u8("Key ID")?;
        let algorithm_id = c.u8("Algorithm ID")?;
        if Algorithm::from_id(algorithm_id).is_none() {
            let (field, value) = ("Algorithm ID", algorithm_id.into());
            return c.fail(
                field::ALGORITHM_ID,
                ParseErrorKind::Invalid { field, value },
            );
        }
        let auth_len = c.u16("Authentication Data Length")?;
        c.take("Authentication Data", auth_len.into())?;
        let records_at = c.pos();
        List::<Record>::read(&mut c, (word & 0xff) as usize, MAX_RECORDS, "records")?;
        let xtr_at = c.pos();
        read_xtr_id(&mut c, has_xtr_id(word))?;
        let end = c.pos();
        Ok(Packet {
            buffer,
            records_at,
            xtr_at,
            end,
        })
    }

    fn word(&self) -> u32 {
        crate::wire::first_word(self.buffer.as_ref())
    }

    pub fn message_type(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    pub fn nonce(&self) -> u64 {
        crate::wire::nonce(self.buffer.as_ref())
    }

    /// Selects the shared key when a site has several.
    pub fn key_id(&self) -> u8 {
        self.buffer.as_ref()[field::KEY_ID]
    }

    pub fn algorithm(&self) -> Algorithm {
        let id = self.buffer.as_ref()[field::ALGORITHM_ID];
        // Checked by new_checked.
        Algorithm::from_id(id).unwrap_or(Algorithm::HmacSha256_128)
    }

    pub fn authentication_data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..self.records_at]
    }

    /// The message as checked, without bytes after its end.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.end]
    }
}

impl<'a> Packet<&'a [u8]> {
    pub fn records(&self) -> List<'a, Record<'a>> {
        let bytes = self.buffer.get(self.records_at..self.xtr_at);
        List::from_checked((self.word() & 0xff) as usize, bytes.unwrap_or_default())
    }

    /// xTR-ID and Site-ID, when the I bit says they are there.
    pub fn xtr(&self) -> Option<XtrId> {
        let mut c = Cursor::at(self.buffer, self.xtr_at, self.end);
        read_xtr_id(&mut c, has_xtr_id(self.word())).ok().flatten()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Changes the type between 3, 4 and 5; the message must be signed
    /// again afterwards ([`auth::sign`]).
    pub fn set_message_type(&mut self, message_type: u8) {
        let first = &mut self.buffer.as_mut()[0];
        *first = (message_type << 4) | (*first & 0x0f);
    }

    pub fn set_nonce(&mut self, nonce: u64) {
        crate::wire::set_nonce(self.buffer.as_mut(), nonce);
    }
}

/// Whether the I bit of a message of this type is set: bit 6 of a
/// Map-Register, bit 4 of a Map-Notify or Map-Notify-Ack.
fn has_xtr_id(word: u32) -> bool {
    let i = match (word >> 28) as u8 {
        message_type::MAP_REGISTER => bits::I,
        _ => bits::NOTIFY_I,
    };
    word & i != 0
}

/// A Map-Register whose authenticity is not known yet: only for choosing
/// the key to verify it with (e.g. by the Key ID, or by the site that owns
/// its first EID). Nothing read here may be acted on before
/// [`Untrusted::verify`].
#[derive(Clone, Copy, Debug)]
pub struct Untrusted<'a> {
    packet: Packet<&'a [u8]>,
}

/// Two are equal when their bytes are.
impl PartialEq for Untrusted<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Untrusted<'_> {}

impl<'a> Untrusted<'a> {
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        Packet::new_checked(bytes).map(|packet| Untrusted { packet })
    }

    pub fn message_type(&self) -> u8 {
        self.packet.message_type()
    }

    /// Unauthenticated Key ID.
    pub fn untrusted_key_id(&self) -> u8 {
        self.packet.key_id()
    }

    /// Unauthenticated records.
    pub fn untrusted_records(&self) -> List<'a, Record<'a>> {
        self.packet.records()
    }

    /// Unauthenticated xTR-ID and Site-ID (an enrolment's Site-ID names
    /// the token whose key verifies it).
    pub fn untrusted_xtr(&self) -> Option<XtrId> {
        self.packet.xtr()
    }

    /// The message as received: the digest covers all of it.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.packet.buffer
    }

    /// Verifies it with the key it led to.
    pub fn verify(&self, key: &[u8]) -> Result<Authenticated<'a>, AuthError> {
        auth::verify(self.as_bytes(), key)
    }
}

/// What Map-Register, Map-Notify and Map-Notify-Ack carry after their
/// first word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration<'a> {
    pub nonce: u64,
    /// Selects the shared key when a site has several.
    pub key_id: u8,
    pub algorithm: Algorithm,
    pub records: List<'a, Record<'a>>,
    /// xTR-ID and Site-ID, sent when the I bit is set: a Map-Register's,
    /// echoed by the Map-Notify that answers it.
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
pub struct MapRegister<'a> {
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
    pub body: Registration<'a>,
}

/// A Map-Notify, or (type 5) the Map-Notify-Ack that answers it; both
/// have the same contents and no flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapNotify<'a> {
    pub body: Registration<'a>,
}

/// Checks the layout of an authenticated message of type `expected`.
fn checked<'a>(message: &Authenticated<'a>, expected: u8) -> Result<Packet<&'a [u8]>, ParseError> {
    let packet = Packet::new_checked(message.as_bytes())?;
    let found = packet.message_type();
    if found != expected {
        return Err(ParseError {
            offset: 0,
            kind: ParseErrorKind::WrongType { expected, found },
        });
    }
    Ok(packet)
}

impl<'a> Registration<'a> {
    fn parse(packet: &Packet<&'a [u8]>) -> Registration<'a> {
        Registration {
            nonce: packet.nonce(),
            key_id: packet.key_id(),
            algorithm: packet.algorithm(),
            records: packet.records(),
            xtr: packet.xtr(),
        }
    }
}

impl<'a> MapRegister<'a> {
    /// A Map-Register as lispguard agents send it: the map-server answers
    /// Map-Requests for these EIDs itself (P) and acknowledges (M).
    pub fn new(body: Registration<'a>) -> MapRegister<'a> {
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

    /// The Map-Register an authenticated message holds.
    pub fn parse(message: &Authenticated<'a>) -> Result<MapRegister<'a>, ParseError> {
        let packet = checked(message, message_type::MAP_REGISTER)?;
        let word = packet.word();
        Ok(MapRegister {
            proxy_reply: word & bits::P != 0,
            security: word & bits::S != 0,
            eid_notify: word & bits::E != 0,
            use_ttl: word & bits::T != 0,
            merge: word & bits::A != 0,
            want_map_notify: word & bits::M != 0,
            body: Registration::parse(&packet),
        })
    }

    /// Bytes the message takes.
    pub fn buffer_len(&self) -> usize {
        4 + self.body.body_len()
    }

    /// Writes the message into `buf`, authenticated with `key`, and
    /// returns its length.
    pub fn emit(&self, buf: &mut [u8], key: &[u8]) -> Result<usize, WriteError> {
        let first = u32::from(message_type::MAP_REGISTER) << 28
            | flag(self.proxy_reply, bits::P)
            | flag(self.security, bits::S)
            | flag(self.body.xtr.is_some(), bits::I)
            | flag(self.eid_notify, bits::E)
            | flag(self.use_ttl, bits::T)
            | flag(self.merge, bits::A)
            | flag(self.want_map_notify, bits::M);
        self.body.emit(first, buf, key)
    }
}

impl<'a> MapNotify<'a> {
    /// The Map-Notify an authenticated message holds.
    pub fn parse(message: &Authenticated<'a>) -> Result<MapNotify<'a>, ParseError> {
        let packet = checked(message, message_type::MAP_NOTIFY)?;
        let body = Registration::parse(&packet);
        Ok(MapNotify { body })
    }

    /// The Map-Notify-Ack an authenticated message holds.
    pub fn parse_ack(message: &Authenticated<'a>) -> Result<MapNotify<'a>, ParseError> {
        let packet = checked(message, message_type::MAP_NOTIFY_ACK)?;
        let body = Registration::parse(&packet);
        Ok(MapNotify { body })
    }

    /// Bytes the message takes.
    pub fn buffer_len(&self) -> usize {
        4 + self.body.body_len()
    }

    /// Writes a Map-Notify authenticated with `key`; returns its length.
    pub fn emit(&self, buf: &mut [u8], key: &[u8]) -> Result<usize, WriteError> {
        self.emit_as(message_type::MAP_NOTIFY, buf, key)
    }

    /// Writes the same contents as a Map-Notify-Ack.
    pub fn emit_ack(&self, buf: &mut [u8], key: &[u8]) -> Result<usize, WriteError> {
        self.emit_as(message_type::MAP_NOTIFY_ACK, buf, key)
    }

    fn emit_as(&self, message_type: u8, buf: &mut [u8], key: &[u8]) -> Result<usize, WriteError> {
        let first = u32::from(message_type) << 28 | flag(self.body.xtr.is_some(), bits::NOTIFY_I);
        self.body.emit(first, buf, key)
    }
}

impl Registration<'_> {
    /// The body's length after the first word.
    fn body_len(&self) -> usize {
        8 + 4
            + self.algorithm.full_len()
            + self.records.wire_len()
            + self.xtr.as_ref().map_or(0, Emit::wire_len)
    }

    /// Writes `first` (type and flags; the record count is added here),
    /// the body with the authentication data zeroed, then signs it.
    fn emit(&self, first: u32, buf: &mut [u8], key: &[u8]) -> Result<usize, WriteError> {
        let records = self.records.count(MAX_RECORDS, "Record Count")? as u32;
        let mut w = Writer::for_message(buf, 4 + self.body_len())?;
        w.u32(first | records)?;
        w.u64(self.nonce)?;
        w.u8(self.key_id)?;
        w.u8(self.algorithm.id())?;
        w.u16(self.algorithm.full_len() as u16)?;
        w.bytes(&[0; 32][..self.algorithm.full_len()])?;
        self.records.emit(&mut w)?;
        self.xtr.map_or(Ok(()), |xtr| xtr.emit(&mut w))?;
        // The header written above is one sign() accepts.
        auth::sign(w.written(), key).map_err(|_| WriteError::Invalid {
            field: "Algorithm ID",
            value: self.algorithm.id().into(),
        })?;
        Ok(w.len())
    }
}

/// The xTR-ID and Site-ID at the end of a message, when its I bit is set.
pub(crate) fn read_xtr_id(c: &mut Cursor<'_>, present: bool) -> Result<Option<XtrId>, ParseError> {
    if !present {
        return Ok(None);
    }
    let xtr_id = u128::from_be_bytes(c.array("xTR-ID")?);
    let site_id = c.u64("Site-ID")?;
    Ok(Some(XtrId { xtr_id, site_id }))
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
