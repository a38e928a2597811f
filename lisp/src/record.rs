//! The mapping record shared by Map-Reply, Map-Register and Map-Notify
//! (RFC 9301 §5.4): an EID-Prefix and the locators (RLOCs) it maps to.

use crate::address::{max_mask_len, Address};
use crate::eid::EidPrefix;
use crate::error::{ParseError, ParseErrorKind, WriteError};
use crate::list::{Item, List};
use crate::wire::{fits, flag, Cursor, Emit, Writer};

/// Locators read per record.
pub const MAX_LOCATORS: usize = 4;

/// Record TTL meaning "never expires" (RFC 9301 §5.4).
pub const TTL_INFINITE: u32 = 0xffff_ffff;

/// ACT: what an ITR does with packets for a record without locators
/// (RFC 9301 §5.4; IANA "LISP ACT Values"). A 3-bit field, kept as its raw
/// value so that unassigned ones survive a round trip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Action(pub u8);

impl Action {
    pub const NO_ACTION: Action = Action(0);
    pub const NATIVELY_FORWARD: Action = Action(1);
    pub const SEND_MAP_REQUEST: Action = Action(2);
    pub const DROP_NO_REASON: Action = Action(3);
    pub const DROP_POLICY_DENIED: Action = Action(4);
    pub const DROP_AUTH_FAILURE: Action = Action(5);
}

/// One EID-Record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Record TTL, in minutes; [`TTL_INFINITE`] never expires.
    pub ttl: u32,
    pub eid_mask_len: u8,
    pub action: Action,
    /// A bit: the record comes from an authoritative source.
    pub authoritative: bool,
    /// Map-Version Number (12 bits); 0 when not versioned.
    pub map_version: u16,
    pub eid: Address<'a>,
    pub locators: List<'a, Locator<'a>>,
}

/// The priority of a locator that "MUST NOT be used for unicast
/// forwarding" (RFC 9301 section 5.4).
pub const UNUSABLE_PRIORITY: u8 = 255;

/// One RLOC-Record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Locator<'a> {
    pub priority: u8,
    pub weight: u8,
    pub m_priority: u8,
    pub m_weight: u8,
    /// L bit: the locator is local to the ETR sending the message.
    pub local: bool,
    /// p bit: the locator was probed (RLOC-probing reply).
    pub probed: bool,
    /// R bit: the locator is reachable.
    pub reachable: bool,
    pub rloc: Address<'a>,
}

mod bits {
    /// Record word 2 (after Locator Count and EID mask-len): ACT, A.
    pub const ACT_SHIFT: u32 = 13;
    pub const A: u32 = 1 << 12;
    /// Locator flags word: L, p, R.
    pub const L: u16 = 1 << 2;
    pub const P: u16 = 1 << 1;
    pub const R: u16 = 1;
}

impl<'a> Locator<'a> {
    /// Whether packets may be sent to it (its priority is not
    /// [`UNUSABLE_PRIORITY`]).
    pub fn unicast(&self) -> bool {
        self.priority != UNUSABLE_PRIORITY
    }

    /// A unicast locator that is up: priority 1, weight 100, not used for
    /// multicast (M priority 255).
    pub fn reachable(rloc: Address<'a>) -> Locator<'a> {
        Locator {
            priority: 1,
            weight: 100,
            m_priority: 255,
            m_weight: 0,
            local: false,
            probed: false,
            reachable: true,
            rloc,
        }
    }
}

impl<'a> Record<'a> {
    /// A record that says "no mapping": no locators, the given action.
    pub fn negative(eid: Address<'a>, eid_mask_len: u8, ttl: u32, action: Action) -> Record<'a> {
        Record {
            ttl,
            eid_mask_len,
            action,
            authoritative: true,
            map_version: 0,
            eid,
            locators: List::empty(),
        }
    }

    /// A mapping as lispguard registers and hands it out: the EID-prefix in
    /// a Security Key LCAF carrying the node's WireGuard key (a plain LISP
    /// site's: the bare EID-prefix), at its locators; authoritative,
    /// No-Action.
    pub fn mapping(
        eid: &EidPrefix,
        wireguard_key: Option<&'a [u8; 32]>,
        ttl: u32,
        locators: &'a [Locator<'a>],
    ) -> Record<'a> {
        Record {
            ttl,
            eid_mask_len: eid.prefix.prefix_len(),
            action: Action::NO_ACTION,
            authoritative: true,
            map_version: 0,
            eid: Address::eid(eid.iid, eid.prefix.addr(), wireguard_key),
            locators: List::new(locators),
        }
    }

    /// The record that withdraws a mapping: no locators, TTL 0, and its key
    /// with the R (revoked) bit set.
    pub fn revocation(eid: &EidPrefix, wireguard_key: &'a [u8; 32]) -> Record<'a> {
        let mut record = Record::mapping(eid, Some(wireguard_key), 0, &[]);
        if let Address::SecurityKey(key) = &mut record.eid {
            key.revoked = true;
        }
        record
    }

    /// The EID-Prefix the record is for, when its EID holds an IP address.
    pub fn eid_prefix(&self) -> Option<EidPrefix> {
        EidPrefix::from_address(&self.eid, self.eid_mask_len)
    }
}

impl<'a> Item<'a> for Record<'a> {
    fn read(c: &mut Cursor<'a>) -> Result<Self, ParseError> {
        let ttl = c.u32("Record TTL")?;
        let locator_count = c.u8("Locator Count")?;
        let eid_mask_len = c.u8("EID mask-len")?;
        let act_a = u32::from(c.u16("ACT")?);
        let version = c.u16("Map-Version Number")?;
        let eid = read_eid(c, eid_mask_len)?;
        let locators = List::read(c, locator_count.into(), MAX_LOCATORS, "locators")?;
        Ok(Record {
            ttl,
            eid_mask_len,
            action: Action((act_a >> bits::ACT_SHIFT) as u8),
            authoritative: act_a & bits::A != 0,
            map_version: version & 0x0fff,
            eid,
            locators,
        })
    }
}

/// An EID address; a mask-len longer than its address is malformed.
pub(crate) fn read_eid<'a>(c: &mut Cursor<'a>, mask_len: u8) -> Result<Address<'a>, ParseError> {
    let at = c.pos();
    let eid = Address::read(c)?;
    match max_mask_len(&eid) {
        Some(max) if mask_len > max => c.fail(
            at,
            ParseErrorKind::Invalid {
                field: "EID mask-len",
                value: mask_len.into(),
            },
        ),
        _ => Ok(eid),
    }
}

pub(crate) fn write_check_mask_len(eid: &Address<'_>, mask_len: u8) -> Result<(), WriteError> {
    match max_mask_len(eid) {
        Some(max) if mask_len > max => Err(WriteError::Invalid {
            field: "EID mask-len",
            value: mask_len.into(),
        }),
        _ => Ok(()),
    }
}

impl<'a> Item<'a> for Locator<'a> {
    fn read(c: &mut Cursor<'a>) -> Result<Self, ParseError> {
        let priority = c.u8("Priority")?;
        let weight = c.u8("Weight")?;
        let m_priority = c.u8("M Priority")?;
        let m_weight = c.u8("M Weight")?;
        let flags = c.u16("locator flags")?;
        let rloc = Address::read(c)?;
        Ok(Locator {
            priority,
            weight,
            m_priority,
            m_weight,
            local: flags & bits::L != 0,
            probed: flags & bits::P != 0,
            reachable: flags & bits::R != 0,
            rloc,
        })
    }
}

impl Emit for Record<'_> {
    fn wire_len(&self) -> usize {
        10 + self.eid.wire_len() + self.locators.wire_len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        write_check_mask_len(&self.eid, self.eid_mask_len)?;
        let act = fits("ACT", self.action.0.into(), 3)?;
        let version = fits("Map-Version Number", self.map_version.into(), 12)?;
        let count = self.locators.count(MAX_LOCATORS, "Locator Count")?;
        w.u32(self.ttl)?;
        w.u8(count as u8)?; // at most MAX_LOCATORS
        w.u8(self.eid_mask_len)?;
        w.u16((act << bits::ACT_SHIFT | flag(self.authoritative, bits::A)) as u16)?;
        w.u16(version as u16)?;
        self.eid.emit(w)?;
        self.locators.emit(w)
    }
}

impl Emit for Locator<'_> {
    fn wire_len(&self) -> usize {
        6 + self.rloc.wire_len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        w.bytes(&[self.priority, self.weight, self.m_priority, self.m_weight])?;
        let mut flags = 0;
        if self.local {
            flags |= bits::L;
        }
        if self.probed {
            flags |= bits::P;
        }
        if self.reachable {
            flags |= bits::R;
        }
        w.u16(flags)?;
        self.rloc.emit(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_carries_its_key_and_a_revocation_revokes_it() {
        let eid: EidPrefix = "[7] 10.1.0.0/24".parse().unwrap();
        let rloc = [Locator::reachable(Address::Ip(
            "192.0.2.1".parse().unwrap(),
        ))];
        let mapping = Record::mapping(&eid, Some(&[9; 32]), 60, &rloc);
        assert_eq!(mapping.eid.wireguard_key(), Some([9; 32]));
        assert_eq!(mapping.eid_prefix(), Some(eid));
        assert_eq!((mapping.ttl, mapping.locators.len()), (60, 1));
        assert_eq!(mapping.action, Action::NO_ACTION);

        let revocation = Record::revocation(&eid, &[9; 32]);
        assert!(revocation.eid.revoked());
        assert_eq!(revocation.eid.wireguard_key(), Some([9; 32]));
        assert_eq!((revocation.ttl, revocation.locators.len()), (0, 0));
    }
}
