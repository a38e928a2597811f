//! The mapping record shared by Map-Reply, Map-Register and Map-Notify
//! (RFC 9301 §5.4): an EID-Prefix and the locators (RLOCs) it maps to.

use crate::address::{self, max_mask_len, Address};
use crate::eid::EidPrefix;
use crate::error::{ParseErrorKind, WriteError};
use crate::wire::{bounded, fail, fits, flag, u16_, u32_, u8_, Emit, Res, Writer};

/// Locators kept per record.
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// Record TTL, in minutes; [`TTL_INFINITE`] never expires.
    pub ttl: u32,
    pub eid_mask_len: u8,
    pub action: Action,
    /// A bit: the record comes from an authoritative source.
    pub authoritative: bool,
    /// Map-Version Number (12 bits); 0 when not versioned.
    pub map_version: u16,
    pub eid: Address,
    pub locators: heapless::Vec<Locator, MAX_LOCATORS>,
}

/// One RLOC-Record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Locator {
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
    pub rloc: Address,
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

impl Locator {
    /// A unicast locator that is up: priority 1, weight 100, not used for
    /// multicast (M priority 255).
    pub fn reachable(rloc: Address) -> Locator {
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

impl Record {
    /// A record that says "no mapping": no locators, the given action.
    pub fn negative(eid: Address, eid_mask_len: u8, ttl: u32, action: Action) -> Record {
        Record {
            ttl,
            eid_mask_len,
            action,
            authoritative: true,
            map_version: 0,
            eid,
            locators: heapless::Vec::new(),
        }
    }

    /// A mapping as lispguard registers and hands it out: the EID-prefix in
    /// a Security Key LCAF carrying the node's WireGuard key, at its
    /// locators; authoritative, No-Action.
    pub fn mapping(
        eid: &EidPrefix,
        wireguard_key: &[u8; 32],
        ttl: u32,
        locators: heapless::Vec<Locator, MAX_LOCATORS>,
    ) -> Record {
        Record {
            ttl,
            eid_mask_len: eid.prefix.prefix_len(),
            action: Action::NO_ACTION,
            authoritative: true,
            map_version: 0,
            eid: Address::eid(eid.iid, eid.prefix.addr(), Some(wireguard_key)),
            locators,
        }
    }

    /// The record that withdraws a mapping: no locators, TTL 0, and its key
    /// with the R (revoked) bit set.
    pub fn revocation(eid: &EidPrefix, wireguard_key: &[u8; 32]) -> Record {
        let mut record = Record::mapping(eid, wireguard_key, 0, heapless::Vec::new());
        if let Address::SecurityKey(key) = &mut record.eid {
            key.revoked = true;
        }
        record
    }
}

pub(crate) fn parse_record(i: &[u8]) -> Res<'_, Record> {
    let (i, ttl) = u32_("Record TTL")(i)?;
    let (i, locator_count) = u8_("Locator Count")(i)?;
    let (i, eid_mask_len) = u8_("EID mask-len")(i)?;
    let (i, act_a) = u16_("ACT")(i)?;
    let (i, version) = u16_("Map-Version Number")(i)?;
    let eid_at = i;
    let (i, eid) = address::parse(i)?;
    check_mask_len(eid_at, &eid, eid_mask_len)?;
    let (i, locators) = bounded(i, locator_count.into(), "locators", parse_locator)?;
    let act_a = u32::from(act_a);
    Ok((
        i,
        Record {
            ttl,
            eid_mask_len,
            action: Action((act_a >> bits::ACT_SHIFT) as u8),
            authoritative: act_a & bits::A != 0,
            map_version: version & 0x0fff,
            eid,
            locators,
        },
    ))
}

/// A mask-len longer than the EID's address is malformed.
pub(crate) fn check_mask_len<'a>(at: &'a [u8], eid: &Address, mask_len: u8) -> Res<'a, ()> {
    match max_mask_len(eid) {
        Some(max) if mask_len > max => fail(
            at,
            ParseErrorKind::Invalid {
                field: "EID mask-len",
                value: mask_len.into(),
            },
        ),
        _ => Ok((at, ())),
    }
}

pub(crate) fn write_check_mask_len(eid: &Address, mask_len: u8) -> Result<(), WriteError> {
    match max_mask_len(eid) {
        Some(max) if mask_len > max => Err(WriteError::Invalid {
            field: "EID mask-len",
            value: mask_len.into(),
        }),
        _ => Ok(()),
    }
}

fn parse_locator(i: &[u8]) -> Res<'_, Locator> {
    let (i, priority) = u8_("Priority")(i)?;
    let (i, weight) = u8_("Weight")(i)?;
    let (i, m_priority) = u8_("M Priority")(i)?;
    let (i, m_weight) = u8_("M Weight")(i)?;
    let (i, flags) = u16_("locator flags")(i)?;
    let (i, rloc) = address::parse(i)?;
    Ok((
        i,
        Locator {
            priority,
            weight,
            m_priority,
            m_weight,
            local: flags & bits::L != 0,
            probed: flags & bits::P != 0,
            reachable: flags & bits::R != 0,
            rloc,
        },
    ))
}

impl Emit for Record {
    fn wire_len(&self) -> usize {
        10 + self.eid.wire_len() + self.locators.iter().map(Emit::wire_len).sum::<usize>()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        write_check_mask_len(&self.eid, self.eid_mask_len)?;
        let act = fits("ACT", self.action.0.into(), 3)?;
        let version = fits("Map-Version Number", self.map_version.into(), 12)?;
        w.u32(self.ttl)?;
        w.u8(self.locators.len() as u8)?; // at most MAX_LOCATORS
        w.u8(self.eid_mask_len)?;
        w.u16((act << bits::ACT_SHIFT | flag(self.authoritative, bits::A)) as u16)?;
        w.u16(version as u16)?;
        self.eid.emit(w)?;
        self.locators.iter().try_for_each(|l| l.emit(w))
    }
}

impl Emit for Locator {
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
        let rloc = Locator::reachable(Address::Ip("192.0.2.1".parse().unwrap()));
        let mapping = Record::mapping(
            &eid,
            &[9; 32],
            60,
            heapless::Vec::from_slice(&[rloc]).unwrap(),
        );
        assert_eq!(mapping.eid.wireguard_key(), Some([9; 32]));
        assert_eq!(
            EidPrefix::from_address(&mapping.eid, mapping.eid_mask_len),
            Some(eid)
        );
        assert_eq!((mapping.ttl, mapping.locators.len()), (60, 1));
        assert_eq!(mapping.action, Action::NO_ACTION);

        let revocation = Record::revocation(&eid, &[9; 32]);
        assert!(matches!(&revocation.eid, Address::SecurityKey(k) if k.revoked));
        assert_eq!(revocation.eid.wireguard_key(), Some([9; 32]));
        assert_eq!((revocation.ttl, revocation.locators.len()), (0, 0));
    }
}
