//! Map-Request (RFC 9301 §5.2), with the subscription bits of RFC 9437
//! §5: I (xTR-ID present) and, per record, N (notification requested).

use crate::address::Address;
use crate::error::{ParseError, WriteError};
use crate::list::{Item, List};
use crate::record::{read_eid, write_check_mask_len, Record};
use crate::registration::{read_xtr_id, XtrId};
use crate::wire::{emit_into, fits, flag, Cursor, Emit, Writer};
use crate::{message_type, MAX_RECORDS};

/// ITR-RLOCs read per Map-Request (the wire allows 32).
pub const MAX_ITR_RLOCS: usize = 8;

mod field {
    pub const SOURCE_EID: usize = 12;
}

mod bits {
    pub const A: u32 = 1 << 27;
    pub const M: u32 = 1 << 26;
    pub const P: u32 = 1 << 25;
    pub const S: u32 = 1 << 24;
    pub const PITR: u32 = 1 << 23;
    pub const SMR_INVOKED: u32 = 1 << 22;
    pub const I: u32 = 1 << 20;
    pub const L: u32 = 1 << 14;
    pub const D: u32 = 1 << 13;
    pub const IRC_SHIFT: u32 = 8;
    /// N in the first (reserved) byte of a request record.
    pub const N: u8 = 0x80;
}

/// A Map-Request whose layout was checked: every field, list and address
/// lies within the buffer, so no accessor can fail.
#[derive(Clone, Copy, Debug)]
pub struct Packet<T> {
    buffer: T,
    /// Where the ITR-RLOCs, the records, the Map-Reply record and the
    /// xTR-ID start, and where the message ends.
    itr_rlocs_at: usize,
    records_at: usize,
    map_reply_at: usize,
    xtr_at: usize,
    end: usize,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the whole layout once.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let bytes = buffer.as_ref();
        let mut c = Cursor::new(bytes);
        let word = c.header(message_type::MAP_REQUEST)?;
        c.u64("Nonce")?;
        Address::read(&mut c)?;
        let itr_rlocs_at = c.pos();
        // IRC is the number of ITR-RLOCs minus one.
        let irc = ((word >> bits::IRC_SHIFT) & 0x1f) as usize;
        List::<Address>::read(&mut c, irc + 1, MAX_ITR_RLOCS, "ITR-RLOCs")?;
        let records_at = c.pos();
        List::<RequestRecord>::read(&mut c, (word & 0xff) as usize, MAX_RECORDS, "records")?;
        let map_reply_at = c.pos();
        if word & bits::M != 0 {
            Record::read(&mut c)?;
        }
        let xtr_at = c.pos();
        read_xtr_id(&mut c, word & bits::I != 0)?;
        let end = c.pos();
        Ok(Packet {
            buffer,
            itr_rlocs_at,
            records_at,
            map_reply_at,
            xtr_at,
            end,
        })
    }

    fn word(&self) -> u32 {
        crate::wire::first_word(self.buffer.as_ref())
    }

    pub fn nonce(&self) -> u64 {
        crate::wire::nonce(self.buffer.as_ref())
    }

    /// The message as checked, without bytes after its end.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.end]
    }
}

impl<'a> Packet<&'a [u8]> {
    fn list<I: Item<'a>>(&self, count: usize, range: core::ops::Range<usize>) -> List<'a, I> {
        // Checked by new_checked: the bounds and every item.
        List::from_checked(count, self.buffer.get(range).unwrap_or_default())
    }

    pub fn source_eid(&self) -> Address<'a> {
        let mut c = Cursor::at(self.buffer, field::SOURCE_EID, self.itr_rlocs_at);
        Address::read(&mut c).unwrap_or(Address::None)
    }

    /// Where the answer goes; at least one.
    pub fn itr_rlocs(&self) -> List<'a, Address<'a>> {
        let irc = ((self.word() >> bits::IRC_SHIFT) & 0x1f) as usize;
        self.list(irc + 1, self.itr_rlocs_at..self.records_at)
    }

    pub fn records(&self) -> List<'a, RequestRecord<'a>> {
        self.list(
            (self.word() & 0xff) as usize,
            self.records_at..self.map_reply_at,
        )
    }

    /// The requester's own mapping, when the M bit says it is there.
    pub fn map_reply(&self) -> Option<Record<'a>> {
        let mut c = Cursor::at(self.buffer, self.map_reply_at, self.xtr_at);
        (self.word() & bits::M != 0)
            .then(|| Record::read(&mut c).ok())
            .flatten()
    }

    pub fn xtr(&self) -> Option<XtrId> {
        let mut c = Cursor::at(self.buffer, self.xtr_at, self.end);
        read_xtr_id(&mut c, self.word() & bits::I != 0)
            .ok()
            .flatten()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_nonce(&mut self, nonce: u64) {
        crate::wire::set_nonce(self.buffer.as_mut(), nonce);
    }
}

/// A Map-Request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapRequest<'a> {
    /// A bit: the request is authoritative (sent by an ITR, not a cache).
    pub authoritative: bool,
    /// P bit: an RLOC-probe.
    pub probe: bool,
    /// S bit: Solicit-Map-Request.
    pub smr: bool,
    /// p bit: sent by a Proxy-ITR.
    pub pitr: bool,
    /// s bit: sent because of an SMR.
    pub smr_invoked: bool,
    /// L bit: sent by an xTR to the other xTRs of its own site.
    pub local_xtr: bool,
    /// D bit: do not answer with a Map-Reply.
    pub dont_map_reply: bool,
    pub nonce: u64,
    pub source_eid: Address<'a>,
    /// Where the answer goes; at least one.
    pub itr_rlocs: List<'a, Address<'a>>,
    pub records: List<'a, RequestRecord<'a>>,
    /// M bit: the requester's own mapping, sent along.
    pub map_reply: Option<Record<'a>>,
    /// I bit (RFC 9437): identifies the subscriber.
    pub xtr: Option<XtrId>,
}

/// One EID-Prefix asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestRecord<'a> {
    /// N bit (RFC 9437): subscribe to changes of this mapping.
    pub notify: bool,
    pub eid_mask_len: u8,
    pub eid: Address<'a>,
}

impl<'a> MapRequest<'a> {
    /// A Map-Request from an ITR reachable at `itr_rlocs`, for `records`:
    /// no flags, no source EID.
    pub fn new(
        nonce: u64,
        itr_rlocs: &'a [Address<'a>],
        records: &'a [RequestRecord<'a>],
    ) -> MapRequest<'a> {
        MapRequest {
            authoritative: false,
            probe: false,
            smr: false,
            pitr: false,
            smr_invoked: false,
            local_xtr: false,
            dont_map_reply: false,
            nonce,
            source_eid: Address::None,
            itr_rlocs: List::new(itr_rlocs),
            records: List::new(records),
            map_reply: None,
            xtr: None,
        }
    }

    /// The request a checked packet holds.
    pub fn parse(packet: &Packet<&'a [u8]>) -> MapRequest<'a> {
        let word = packet.word();
        MapRequest {
            authoritative: word & bits::A != 0,
            probe: word & bits::P != 0,
            smr: word & bits::S != 0,
            pitr: word & bits::PITR != 0,
            smr_invoked: word & bits::SMR_INVOKED != 0,
            local_xtr: word & bits::L != 0,
            dont_map_reply: word & bits::D != 0,
            nonce: packet.nonce(),
            source_eid: packet.source_eid(),
            itr_rlocs: packet.itr_rlocs(),
            records: packet.records(),
            map_reply: packet.map_reply(),
            xtr: packet.xtr(),
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

impl<'a> Item<'a> for RequestRecord<'a> {
    fn read(c: &mut Cursor<'a>) -> Result<Self, ParseError> {
        let reserved = c.u8("record Reserved")?;
        let eid_mask_len = c.u8("EID mask-len")?;
        let eid = read_eid(c, eid_mask_len)?;
        Ok(RequestRecord {
            notify: reserved & bits::N != 0,
            eid_mask_len,
            eid,
        })
    }
}

impl Emit for RequestRecord<'_> {
    fn wire_len(&self) -> usize {
        2 + self.eid.wire_len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        write_check_mask_len(&self.eid, self.eid_mask_len)?;
        w.u8(if self.notify { bits::N } else { 0 })?;
        w.u8(self.eid_mask_len)?;
        self.eid.emit(w)
    }
}

impl Emit for MapRequest<'_> {
    fn wire_len(&self) -> usize {
        12 + self.source_eid.wire_len()
            + self.itr_rlocs.wire_len()
            + self.records.wire_len()
            + self.map_reply.as_ref().map_or(0, Emit::wire_len)
            + self.xtr.as_ref().map_or(0, Emit::wire_len)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        let rlocs = self.itr_rlocs.count(MAX_ITR_RLOCS, "ITR-RLOC Count")? as u32;
        let irc =
            fits("ITR-RLOC Count", rlocs.wrapping_sub(1), 5).map_err(|_| WriteError::Invalid {
                field: "ITR-RLOC Count",
                value: rlocs,
            })?;
        let records = self.records.count(MAX_RECORDS, "Record Count")? as u32;
        w.u32(
            u32::from(message_type::MAP_REQUEST) << 28
                | flag(self.authoritative, bits::A)
                | flag(self.map_reply.is_some(), bits::M)
                | flag(self.probe, bits::P)
                | flag(self.smr, bits::S)
                | flag(self.pitr, bits::PITR)
                | flag(self.smr_invoked, bits::SMR_INVOKED)
                | flag(self.xtr.is_some(), bits::I)
                | flag(self.local_xtr, bits::L)
                | flag(self.dont_map_reply, bits::D)
                | irc << bits::IRC_SHIFT
                | records,
        )?;
        w.u64(self.nonce)?;
        self.source_eid.emit(w)?;
        self.itr_rlocs.emit(w)?;
        self.records.emit(w)?;
        if let Some(record) = &self.map_reply {
            record.emit(w)?;
        }
        self.xtr.map_or(Ok(()), |xtr| xtr.emit(w))
    }
}
