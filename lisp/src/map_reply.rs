//! Map-Reply (RFC 9301 §5.4): the answer to a Map-Request.

use crate::error::{ParseError, WriteError};
use crate::record::{parse_record, Record};
use crate::wire::{bounded, flag, header, parse_all, u64_, Emit, Res, Writer};
use crate::{message_type, MAX_RECORDS};

/// A Map-Reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapReply {
    /// P bit: answers an RLOC-probe.
    pub probe: bool,
    /// E bit: the sender can echo nonces in the data plane.
    pub echo_nonce: bool,
    /// S bit: LISP-SEC data follows (not produced by lispguard).
    pub security: bool,
    /// Copied from the Map-Request it answers.
    pub nonce: u64,
    pub records: heapless::Vec<Record, MAX_RECORDS>,
}

mod bits {
    pub const P: u32 = 1 << 27;
    pub const E: u32 = 1 << 26;
    pub const S: u32 = 1 << 25;
}

impl MapReply {
    pub fn parse(msg: &[u8]) -> Result<MapReply, ParseError> {
        parse_all(msg, parse)
    }

    /// Writes the message into `buf` and returns its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        let mut w = Writer::for_message(buf, self.wire_len())?;
        self.emit(&mut w)?;
        Ok(w.len())
    }
}

pub(crate) fn parse(i: &[u8]) -> Res<'_, MapReply> {
    let (i, word) = header(message_type::MAP_REPLY)(i)?;
    let (i, nonce) = u64_("Nonce")(i)?;
    let (i, records) = bounded(i, (word & 0xff) as usize, "records", parse_record)?;
    Ok((
        i,
        MapReply {
            probe: word & bits::P != 0,
            echo_nonce: word & bits::E != 0,
            security: word & bits::S != 0,
            nonce,
            records,
        },
    ))
}

impl Emit for MapReply {
    fn wire_len(&self) -> usize {
        12 + self.records.iter().map(Emit::wire_len).sum::<usize>()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        w.u32(
            u32::from(message_type::MAP_REPLY) << 28
                | flag(self.probe, bits::P)
                | flag(self.echo_nonce, bits::E)
                | flag(self.security, bits::S)
                | self.records.len() as u32,
        )?;
        w.u64(self.nonce)?;
        self.records.iter().try_for_each(|r| r.emit(w))
    }
}
