//! Map-Reply (RFC 9301 §5.4): the answer to a Map-Request.

use crate::error::{ParseError, WriteError};
use crate::list::List;
use crate::record::Record;
use crate::wire::{emit_into, flag, Cursor, Emit, Writer};
use crate::{message_type, MAX_RECORDS};

mod field {
    pub const RECORDS: usize = 12;
}

mod bits {
    pub const P: u32 = 1 << 27;
    pub const E: u32 = 1 << 26;
    pub const S: u32 = 1 << 25;
}

/// A Map-Reply whose layout was checked: every record and locator lies
/// within the buffer, so no accessor can fail.
#[derive(Clone, Copy, Debug)]
pub struct Packet<T> {
    buffer: T,
    end: usize,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the whole layout once.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let mut c = Cursor::new(buffer.as_ref());
        let word = c.header(message_type::MAP_REPLY)?;
        c.u64("Nonce")?;
        List::<Record>::read(&mut c, (word & 0xff) as usize, MAX_RECORDS, "records")?;
        let end = c.pos();
        Ok(Packet { buffer, end })
    }

    fn word(&self) -> u32 {
        crate::wire::first_word(self.buffer.as_ref())
    }

    /// Copied from the Map-Request it answers.
    pub fn nonce(&self) -> u64 {
        crate::wire::nonce(self.buffer.as_ref())
    }

    /// The message as checked, without bytes after its end.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.end]
    }
}

impl<'a> Packet<&'a [u8]> {
    pub fn records(&self) -> List<'a, Record<'a>> {
        let bytes = self.buffer.get(field::RECORDS..self.end);
        List::from_checked((self.word() & 0xff) as usize, bytes.unwrap_or_default())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_nonce(&mut self, nonce: u64) {
        crate::wire::set_nonce(self.buffer.as_mut(), nonce);
    }
}

/// A Map-Reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapReply<'a> {
    /// P bit: answers an RLOC-probe.
    pub probe: bool,
    /// E bit: the sender can echo nonces in the data plane.
    pub echo_nonce: bool,
    /// S bit: LISP-SEC data follows (not produced by lispguard).
    pub security: bool,
    /// Copied from the Map-Request it answers.
    pub nonce: u64,
    pub records: List<'a, Record<'a>>,
}

impl<'a> MapReply<'a> {
    /// The reply a checked packet holds.
    pub fn parse(packet: &Packet<&'a [u8]>) -> MapReply<'a> {
        let word = packet.word();
        MapReply {
            probe: word & bits::P != 0,
            echo_nonce: word & bits::E != 0,
            security: word & bits::S != 0,
            nonce: packet.nonce(),
            records: packet.records(),
        }
    }

    /// Bytes the message takes.
    pub fn buffer_len(&self) -> usize {
        self.wire_len()
    }

    /// Writes the message into `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        emit_into(self, buf)
    }
}

impl Emit for MapReply<'_> {
    fn wire_len(&self) -> usize {
        12 + self.records.wire_len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        let records = self.records.count(MAX_RECORDS, "Record Count")? as u32;
        w.u32(
            u32::from(message_type::MAP_REPLY) << 28
                | flag(self.probe, bits::P)
                | flag(self.echo_nonce, bits::E)
                | flag(self.security, bits::S)
                | records,
        )?;
        w.u64(self.nonce)?;
        self.records.emit(w)
    }
}
