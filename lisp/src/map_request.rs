//! Map-Request (RFC 9301 §5.2), with the subscription bits of RFC 9437
//! §5: I (xTR-ID present) and, per record, N (notification requested).

use crate::address::{self, Address};
use crate::error::{ParseError, WriteError};
use crate::record::{check_mask_len, parse_record, write_check_mask_len, Record};
use crate::registration::{parse_xtr_id, XtrId};
use crate::wire::{bounded, fits, flag, header, parse_all, u64_, u8_, Emit, Res, Writer};
use crate::{message_type, MAX_RECORDS};

/// ITR-RLOCs kept per Map-Request (the wire allows 32).
pub const MAX_ITR_RLOCS: usize = 8;

/// A Map-Request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapRequest {
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
    pub source_eid: Address,
    /// Where the answer goes; at least one.
    pub itr_rlocs: heapless::Vec<Address, MAX_ITR_RLOCS>,
    pub records: heapless::Vec<RequestRecord, MAX_RECORDS>,
    /// M bit: the requester's own mapping, sent along.
    pub map_reply: Option<Record>,
    /// I bit (RFC 9437): identifies the subscriber.
    pub xtr: Option<XtrId>,
}

/// One EID-Prefix asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestRecord {
    /// N bit (RFC 9437): subscribe to changes of this mapping.
    pub notify: bool,
    pub eid_mask_len: u8,
    pub eid: Address,
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

impl MapRequest {
    /// A Map-Request from an ITR reachable at `itr_rloc`: no flags, no
    /// source EID, no records yet.
    pub fn new(nonce: u64, itr_rloc: Address) -> MapRequest {
        let mut itr_rlocs = heapless::Vec::new();
        let _ = itr_rlocs.push(itr_rloc);
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
            itr_rlocs,
            records: heapless::Vec::new(),
            map_reply: None,
            xtr: None,
        }
    }

    pub fn parse(msg: &[u8]) -> Result<MapRequest, ParseError> {
        parse_all(msg, parse)
    }

    /// Writes the message into `buf` and returns its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        let mut w = Writer::for_message(buf, self.wire_len())?;
        self.emit(&mut w)?;
        Ok(w.len())
    }
}

pub(crate) fn parse(i: &[u8]) -> Res<'_, MapRequest> {
    let (i, word) = header(message_type::MAP_REQUEST)(i)?;
    let (i, nonce) = u64_("Nonce")(i)?;
    let (i, source_eid) = address::parse(i)?;
    // IRC is the number of ITR-RLOCs minus one.
    let irc = ((word >> bits::IRC_SHIFT) & 0x1f) as usize;
    let (i, itr_rlocs) = bounded(i, irc + 1, "ITR-RLOCs", address::parse)?;
    let (i, records) = bounded(i, (word & 0xff) as usize, "records", parse_request_record)?;
    let (i, map_reply) = if word & bits::M != 0 {
        let (i, record) = parse_record(i)?;
        (i, Some(record))
    } else {
        (i, None)
    };
    let (i, xtr) = parse_xtr_id(i, word & bits::I != 0)?;
    Ok((
        i,
        MapRequest {
            authoritative: word & bits::A != 0,
            probe: word & bits::P != 0,
            smr: word & bits::S != 0,
            pitr: word & bits::PITR != 0,
            smr_invoked: word & bits::SMR_INVOKED != 0,
            local_xtr: word & bits::L != 0,
            dont_map_reply: word & bits::D != 0,
            nonce,
            source_eid,
            itr_rlocs,
            records,
            map_reply,
            xtr,
        },
    ))
}

fn parse_request_record(i: &[u8]) -> Res<'_, RequestRecord> {
    let (i, reserved) = u8_("record Reserved")(i)?;
    let (i, eid_mask_len) = u8_("EID mask-len")(i)?;
    let eid_at = i;
    let (i, eid) = address::parse(i)?;
    check_mask_len(eid_at, &eid, eid_mask_len)?;
    Ok((
        i,
        RequestRecord {
            notify: reserved & bits::N != 0,
            eid_mask_len,
            eid,
        },
    ))
}

impl Emit for RequestRecord {
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

impl Emit for MapRequest {
    fn wire_len(&self) -> usize {
        12 + self.source_eid.wire_len()
            + self.itr_rlocs.iter().map(Emit::wire_len).sum::<usize>()
            + self.records.iter().map(Emit::wire_len).sum::<usize>()
            + self.map_reply.as_ref().map_or(0, Emit::wire_len)
            + self.xtr.as_ref().map_or(0, Emit::wire_len)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        let rlocs = self.itr_rlocs.len() as u32;
        let irc =
            fits("ITR-RLOC Count", rlocs.wrapping_sub(1), 5).map_err(|_| WriteError::Invalid {
                field: "ITR-RLOC Count",
                value: rlocs,
            })?;
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
                | self.records.len() as u32,
        )?;
        w.u64(self.nonce)?;
        self.source_eid.emit(w)?;
        self.itr_rlocs.iter().try_for_each(|a| a.emit(w))?;
        self.records.iter().try_for_each(|r| r.emit(w))?;
        if let Some(record) = &self.map_reply {
            record.emit(w)?;
        }
        self.xtr.map_or(Ok(()), |xtr| xtr.emit(w))
    }
}
