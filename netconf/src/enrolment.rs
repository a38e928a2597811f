//! The enrolment Map-Register (`lispguard join`): written by the node,
//! read by the map-server, so that its layout is in one place. The I bit
//! is set; the Site-ID is the token's id, the xTR-ID the node's; it is
//! signed with the token's key; its records are, in this order,
//! 1. the node's WireGuard key around the control address it asks for, or
//!    0.0.0.0/0 (any), with the node's address as locator;
//! 2. the token's grant, a Distinguished Name (AFI 17, RFC 9735; EID
//!    mask-len 0: the name is taken whole), from which a map-server of the
//!    group that did not issue the token derives its key;
//! 3. the EIDs it asks for, if any.
//!
//! A node asks for addresses when another map-server of its group gave
//! them.

use crate::token::Token;
use crate::PublicKey;
use ipnet::IpNet;
use lisp::{
    Address, Algorithm, EidPrefix, List, Locator, MapRegister, Record, Registration, XtrId,
};
use std::net::{IpAddr, SocketAddr};

/// What a node asks a later map-server of its group for: what the first
/// gave.
#[derive(Clone, Copy, Debug)]
pub struct Asking<'a> {
    pub control_address: IpAddr,
    pub eids: &'a [EidPrefix],
}

/// The enrolment Map-Register of the node with `public_key` and id
/// `xtr_id`, at `rloc`, signed with `token`'s key.
pub fn write(
    token: &Token,
    public_key: &PublicKey,
    rloc: SocketAddr,
    xtr_id: u128,
    nonce: u64,
    asking: Option<Asking>,
) -> Result<Vec<u8>, String> {
    let locators = [Locator::reachable(Address::rloc(rloc))];
    let control = EidPrefix::new(
        0,
        asking.map_or(IpNet::V4(ipnet::Ipv4Net::default()), |a| {
            IpNet::from(a.control_address)
        }),
    );
    let mut records = vec![
        Record::mapping(&control, Some(public_key), 1, &locators),
        Record {
            eid_mask_len: 0,
            eid: Address::Name(&token.grant),
            ..Record::mapping(&control, None, 1, &[])
        },
    ];
    let asked = asking.map_or(&[][..], |a| a.eids);
    records.extend(asked.iter().map(|eid| Record::mapping(eid, None, 1, &[])));
    let register = MapRegister::new(Registration {
        nonce,
        key_id: 0,
        algorithm: Algorithm::HmacSha256_128,
        records: List::new(&records),
        xtr: Some(XtrId {
            xtr_id,
            site_id: u64::from_be_bytes(token.id.0),
        }),
    });
    let mut buf = vec![0; register.buffer_len()];
    let len = register
        .emit(&mut buf, &token.register_key())
        .map_err(|e| e.to_string())?;
    buf.truncate(len);
    Ok(buf)
}

/// An enrolment's records, read (by the map-server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrolling<'a> {
    pub public_key: PublicKey,
    /// The control address it asks for; None: any.
    pub control_address: Option<IpAddr>,
    pub grant: Option<&'a str>,
    /// The EIDs it asks for; empty: what the token gives.
    pub eids: Vec<EidPrefix>,
}

impl<'a> Enrolling<'a> {
    /// None: not an enrolment's records (no key first, or an EID that is
    /// not one).
    pub fn read(records: impl Iterator<Item = Record<'a>>) -> Option<Enrolling<'a>> {
        let mut records = records.peekable();
        let first = records.next()?;
        let public_key = first.eid.wireguard_key()?;
        let control_address = first.eid.ip().filter(|ip| !ip.is_unspecified());
        let grant = match records.peek().map(|r| &r.eid) {
            Some(Address::Name(grant)) => Some(*grant),
            _ => None,
        };
        let eids = records
            .skip(usize::from(grant.is_some()))
            .map(|r| EidPrefix::from_address(&r.eid, r.eid_mask_len))
            .collect::<Option<_>>()?;
        Some(Enrolling {
            public_key,
            control_address,
            grant,
            eids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{MapServer, TokenId};

    #[test]
    fn what_the_node_writes_the_map_server_reads() {
        let token = Token {
            map_servers: vec![MapServer {
                address: "192.0.2.1:4342".parse().unwrap(),
                public_key: [1; 32],
            }],
            id: TokenId([1, 2, 3, 4, 5, 6, 7, 8]),
            grant: "iid=1000 uses=2 pool=10.9.0.0/24".into(),
            secret: [5; 32],
        };
        let rloc = "198.51.100.7:51820".parse().unwrap();
        let eids = ["[1000] 10.9.0.1/32".parse().unwrap()];
        for asking in [
            None,
            Some(Asking {
                control_address: "100.64.1.1".parse().unwrap(),
                eids: &eids,
            }),
        ] {
            let bytes = write(&token, &[9; 32], rloc, 7, 1, asking).unwrap();
            let verified = lisp::auth::verify(&bytes, &token.register_key()).unwrap();
            let register = MapRegister::parse(&verified).unwrap();
            assert_eq!(register.body.xtr.unwrap().site_id, 0x0102030405060708);
            let read = Enrolling::read(register.body.records.iter()).unwrap();
            assert_eq!(read.public_key, [9; 32]);
            assert_eq!(read.grant, Some(token.grant.as_str()));
            assert_eq!(read.control_address, asking.map(|a| a.control_address));
            assert_eq!(read.eids, asking.map_or(&[][..], |a| a.eids));
        }
    }
}
