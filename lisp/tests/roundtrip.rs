//! Property tests: every message lispguard can write parses back to
//! itself, and no mutation of a valid message makes a parser panic.

use lisp::address::{InstanceId, KeyedAddress, NatTraversal, SecurityKey};
use lisp::{
    auth, Action, Address, Algorithm, Ecm, Locator, MapNotify, MapRegister, MapReply, MapRequest,
    Message, Record, Registration, RequestRecord, WriteError, XtrId,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};

fn bounded<T: Clone + std::fmt::Debug, const N: usize>(
    item: impl Strategy<Value = T>,
    max: usize,
) -> impl Strategy<Value = heapless::Vec<T, N>> {
    vec(item, 0..=max.min(N)).prop_map(|v| heapless::Vec::from_slice(&v).unwrap())
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn instance_id() -> impl Strategy<Value = InstanceId> {
    (any::<u32>(), any::<u8>(), option::of(ip())).prop_map(|(iid, mask_len, address)| InstanceId {
        iid,
        mask_len,
        address,
    })
}

fn nat_traversal() -> impl Strategy<Value = NatTraversal> {
    (
        any::<(u16, u16)>(),
        [option::of(ip()), option::of(ip()), option::of(ip())],
        bounded(ip(), 2),
    )
        .prop_map(|((ms_port, etr_port), [g, m, p], rtr_rlocs)| NatTraversal {
            ms_port,
            etr_port,
            global_etr_rloc: g,
            ms_rloc: m,
            private_etr_rloc: p,
            rtr_rlocs,
        })
}

fn security_key() -> impl Strategy<Value = SecurityKey> {
    let keyed = prop_oneof![
        option::of(ip()).prop_map(KeyedAddress::Ip),
        instance_id().prop_map(KeyedAddress::InstanceId),
    ];
    (any::<u8>(), any::<bool>(), bounded(any::<u8>(), 64), keyed).prop_map(
        |(algorithm, revoked, key, address)| SecurityKey {
            algorithm,
            revoked,
            key,
            address,
        },
    )
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        Just(Address::None),
        ip().prop_map(Address::Ip),
        instance_id().prop_map(Address::InstanceId),
        nat_traversal().prop_map(Address::NatTraversal),
        security_key().prop_map(Address::SecurityKey),
    ]
}

/// An EID and a mask-len that fits its address.
fn eid() -> impl Strategy<Value = (Address, u8)> {
    (address(), any::<u8>()).prop_map(|(eid, mask)| {
        let mask = match eid.ip() {
            Some(IpAddr::V4(_)) => mask % 33,
            Some(IpAddr::V6(_)) => mask % 129,
            None => mask,
        };
        (eid, mask)
    })
}

fn locator() -> impl Strategy<Value = Locator> {
    (any::<[u8; 4]>(), any::<[bool; 3]>(), address()).prop_map(|(p, [l, pr, r], rloc)| Locator {
        priority: p[0],
        weight: p[1],
        m_priority: p[2],
        m_weight: p[3],
        local: l,
        probed: pr,
        reachable: r,
        rloc,
    })
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<u32>(),
        eid(),
        0u8..8,
        any::<bool>(),
        0u16..4096,
        bounded(locator(), 3),
    )
        .prop_map(
            |(ttl, (eid, eid_mask_len), act, authoritative, map_version, locators)| Record {
                ttl,
                eid_mask_len,
                action: Action(act),
                authoritative,
                map_version,
                eid,
                locators,
            },
        )
}

fn xtr_id() -> impl Strategy<Value = XtrId> {
    any::<(u128, u64)>().prop_map(|(xtr_id, site_id)| XtrId { xtr_id, site_id })
}

fn map_request() -> impl Strategy<Value = MapRequest> {
    let request_record =
        (any::<bool>(), eid()).prop_map(|(notify, (eid, eid_mask_len))| RequestRecord {
            notify,
            eid_mask_len,
            eid,
        });
    let itr_rlocs = vec(address(), 1..=8).prop_map(|v| heapless::Vec::from_slice(&v).unwrap());
    (
        any::<[bool; 7]>(),
        any::<u64>(),
        address(),
        itr_rlocs,
        bounded(request_record, 4),
        option::of(record()),
        option::of(xtr_id()),
    )
        .prop_map(
            |([a, p, s, pitr, si, l, d], nonce, source_eid, itr_rlocs, records, map_reply, xtr)| {
                MapRequest {
                    authoritative: a,
                    probe: p,
                    smr: s,
                    pitr,
                    smr_invoked: si,
                    local_xtr: l,
                    dont_map_reply: d,
                    nonce,
                    source_eid,
                    itr_rlocs,
                    records,
                    map_reply,
                    xtr,
                }
            },
        )
}

fn map_reply() -> impl Strategy<Value = MapReply> {
    (any::<[bool; 3]>(), any::<u64>(), bounded(record(), 4)).prop_map(
        |([probe, echo_nonce, security], nonce, records)| MapReply {
            probe,
            echo_nonce,
            security,
            nonce,
            records,
        },
    )
}

fn registration(with_xtr: bool) -> impl Strategy<Value = Registration> {
    let algorithm = prop_oneof![
        Just(Algorithm::HmacSha1_96),
        Just(Algorithm::HmacSha256_128)
    ];
    let xtr = if with_xtr {
        option::of(xtr_id()).boxed()
    } else {
        Just(None).boxed()
    };
    (any::<(u64, u8)>(), algorithm, bounded(record(), 4), xtr).prop_map(
        |((nonce, key_id), algorithm, records, xtr)| Registration {
            nonce,
            key_id,
            algorithm,
            records,
            xtr,
        },
    )
}

fn map_register() -> impl Strategy<Value = MapRegister> {
    (any::<[bool; 6]>(), registration(true)).prop_map(|([p, s, e, t, a, m], body)| MapRegister {
        proxy_reply: p,
        security: s,
        eid_notify: e,
        use_ttl: t,
        merge: a,
        want_map_notify: m,
        body,
    })
}

fn socket_pair() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
    prop_oneof![
        any::<([u8; 4], u16, [u8; 4], u16)>()
            .prop_map(|(s, sp, d, dp)| (SocketAddr::from((s, sp)), SocketAddr::from((d, dp)))),
        any::<([u8; 16], u16, [u8; 16], u16)>()
            .prop_map(|(s, sp, d, dp)| (SocketAddr::from((s, sp)), SocketAddr::from((d, dp)))),
    ]
}

const KEY: &[u8] = b"site shared key";

/// Writes `write` into a buffer of exactly the length it reports, checking
/// that one byte less is refused with the right sizes.
fn write_exact(write: impl Fn(&mut [u8]) -> Result<usize, WriteError>) -> Vec<u8> {
    let mut big = vec![0; 65536];
    let len = write(&mut big).unwrap();
    let mut exact = vec![0; len];
    assert_eq!(write(&mut exact), Ok(len));
    assert_eq!(exact, big[..len]);
    let mut short = vec![0; len - 1];
    assert_eq!(
        write(&mut short),
        Err(WriteError::BufferTooSmall {
            needed: len,
            available: len - 1
        })
    );
    exact
}

/// Any message, as written bytes.
fn any_message_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        map_request().prop_map(|m| write_exact(|b| m.write(b))),
        map_reply().prop_map(|m| write_exact(|b| m.write(b))),
        map_register().prop_map(|m| write_exact(|b| m.write(b, KEY))),
        registration(false)
            .prop_map(|body| write_exact(|b| MapNotify { body: body.clone() }.write_ack(b, KEY))),
        (any::<[bool; 4]>(), socket_pair(), map_request()).prop_map(|(f, (s, d), inner)| {
            let inner = write_exact(|b| inner.write(b));
            let ecm = Ecm {
                security: f[0],
                ddt: f[1],
                to_etr: f[2],
                to_ms: f[3],
                source: s,
                destination: d,
                message: &inner,
            };
            write_exact(|b| ecm.write(b))
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn map_request_round_trips(m in map_request()) {
        let bytes = write_exact(|b| m.write(b));
        prop_assert_eq!(Message::parse(&bytes), Ok(Message::MapRequest(m)));
    }

    #[test]
    fn map_reply_round_trips(m in map_reply()) {
        let bytes = write_exact(|b| m.write(b));
        prop_assert_eq!(Message::parse(&bytes), Ok(Message::MapReply(m)));
    }

    #[test]
    fn map_register_round_trips_and_verifies(m in map_register()) {
        let bytes = write_exact(|b| m.write(b, KEY));
        prop_assert_eq!(auth::verify(&bytes, KEY), Ok(()));
        prop_assert!(auth::verify(&bytes, b"another key").is_err());
        prop_assert_eq!(Message::parse(&bytes), Ok(Message::MapRegister(m)));
    }

    #[test]
    fn map_notify_and_ack_round_trip_and_verify(body in registration(false)) {
        let notify = MapNotify { body };
        let bytes = write_exact(|b| notify.write(b, KEY));
        prop_assert_eq!(auth::verify(&bytes, KEY), Ok(()));
        prop_assert_eq!(Message::parse(&bytes), Ok(Message::MapNotify(notify.clone())));
        let bytes = write_exact(|b| notify.write_ack(b, KEY));
        prop_assert_eq!(auth::verify(&bytes, KEY), Ok(()));
        prop_assert_eq!(Message::parse(&bytes), Ok(Message::MapNotifyAck(notify)));
    }

    #[test]
    fn ecm_round_trips(flags in any::<[bool; 4]>(), (source, destination) in socket_pair(),
                       message in vec(any::<u8>(), 0..300)) {
        let ecm = Ecm {
            security: flags[0], ddt: flags[1], to_etr: flags[2], to_ms: flags[3],
            source, destination, message: &message,
        };
        let bytes = write_exact(|b| ecm.write(b));
        prop_assert_eq!(Ecm::parse(&bytes), Ok(ecm));
    }

    /// Flipped, overwritten, inserted and cut bytes: parsing and verifying
    /// return, never panic; what parses re-writes to something that parses
    /// to the same value.
    #[test]
    fn mutations_never_panic(
        bytes in any_message_bytes(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = bytes;
        for (at, value, how) in edits {
            let at = at.index(bytes.len());
            match how {
                0 => bytes[at] ^= value | 1,
                1 => bytes[at] = value,
                _ => bytes.insert(at, value),
            }
        }
        let cut = cut.index(bytes.len() + 1);
        for msg in [&bytes[..], &bytes[..cut]] {
            let _ = auth::verify(msg, KEY);
            if let Ok(parsed) = Message::parse(msg) {
                let mut buf = vec![0; 65536];
                let rewritten = match &parsed {
                    Message::MapRequest(m) => m.write(&mut buf),
                    Message::MapReply(m) => m.write(&mut buf),
                    Message::MapRegister(m) => m.write(&mut buf, KEY),
                    Message::MapNotify(m) => m.write(&mut buf, KEY),
                    Message::MapNotifyAck(m) => m.write_ack(&mut buf, KEY),
                    Message::Ecm(m) => m.write(&mut buf),
                };
                // Writing fails only for what parsing keeps but cannot
                // send on (an unknown LCAF skipped by length).
                if let Ok(len) = rewritten {
                    prop_assert_eq!(Message::parse(&buf[..len]), Ok(parsed));
                }
            }
        }
    }
}
