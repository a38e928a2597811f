//! Property tests: every message lispguard can write parses back to
//! itself, the checked views read what the reprs hold, and no mutation of
//! a valid message makes a parser panic.

use lisp::address::{InstanceId, KeyedAddress, NatTraversal, SecurityKey, Unknown};
use lisp::list::Item;
use lisp::{
    auth, map_reply, map_request, message_type, registration, Action, Address, Algorithm, Ecm,
    List, Locator, MapNotify, MapRegister, MapReply, MapRequest, Message, Record, Registration,
    RequestRecord, WriteError, XtrId,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};

/// Generated items live as long as the test: reprs borrow them, as they
/// borrow the caller's own items.
fn leak<T>(v: Vec<T>) -> &'static [T] {
    v.leak()
}

fn list<T: Item<'static> + std::fmt::Debug + 'static>(
    item: impl Strategy<Value = T>,
    len: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = List<'static, T>> {
    vec(item, len).prop_map(|v| List::new(leak(v)))
}

fn rtr_rlocs() -> impl Strategy<Value = heapless::Vec<IpAddr, 2>> {
    vec(ip(), 0..=2).prop_map(|v| heapless::Vec::from_slice(&v).unwrap())
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn instance_id() -> impl Strategy<Value = InstanceId> {
    (any::<(u8, u32, u8)>(), option::of(ip())).prop_map(|((flags, iid, mask_len), address)| {
        InstanceId {
            flags,
            iid,
            mask_len,
            address,
        }
    })
}

fn nat_traversal() -> impl Strategy<Value = NatTraversal> {
    (
        any::<(u8, u16, u16)>(),
        [option::of(ip()), option::of(ip()), option::of(ip())],
        rtr_rlocs(),
    )
        .prop_map(
            |((flags, ms_port, etr_port), [g, m, p], rtr_rlocs)| NatTraversal {
                flags,
                ms_port,
                etr_port,
                global_etr_rloc: g,
                ms_rloc: m,
                private_etr_rloc: p,
                rtr_rlocs,
            },
        )
}

fn security_key() -> impl Strategy<Value = SecurityKey<'static>> {
    let keyed = prop_oneof![
        option::of(ip()).prop_map(KeyedAddress::Ip),
        instance_id().prop_map(KeyedAddress::InstanceId),
    ];
    let key = vec(any::<u8>(), 0..=64).prop_map(leak);
    (any::<(u8, u8)>(), any::<bool>(), key, keyed).prop_map(
        |((flags, algorithm), revoked, key, address)| SecurityKey {
            flags,
            algorithm,
            revoked,
            key,
            address,
        },
    )
}

/// An LCAF of a type this codec does not represent, as bytes.
fn unknown() -> impl Strategy<Value = Unknown<'static>> {
    let lcaf_type = any::<u8>().prop_filter("a represented type", |t| ![2, 7, 11].contains(t));
    (any::<u8>(), lcaf_type, vec(any::<u8>(), 0..24)).prop_map(|(flags, lcaf_type, body)| {
        let mut bytes = vec![0x40, 0x03, 0, flags, lcaf_type, 0];
        bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&body);
        Unknown {
            lcaf_type,
            bytes: leak(bytes),
        }
    })
}

fn address() -> impl Strategy<Value = Address<'static>> {
    prop_oneof![
        Just(Address::None),
        ip().prop_map(Address::Ip),
        "[ -~]{0,40}".prop_map(|n| Address::Name(String::leak(n))),
        instance_id().prop_map(Address::InstanceId),
        nat_traversal().prop_map(Address::NatTraversal),
        security_key().prop_map(Address::SecurityKey),
        unknown().prop_map(Address::Unknown),
    ]
}

/// An EID and a mask-len that fits its address.
fn eid() -> impl Strategy<Value = (Address<'static>, u8)> {
    (address(), any::<u8>()).prop_map(|(eid, mask)| {
        let mask = match eid.ip() {
            Some(IpAddr::V4(_)) => mask % 33,
            Some(IpAddr::V6(_)) => mask % 129,
            None => mask,
        };
        (eid, mask)
    })
}

fn locator() -> impl Strategy<Value = Locator<'static>> {
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

fn record() -> impl Strategy<Value = Record<'static>> {
    (
        any::<u32>(),
        eid(),
        0u8..8,
        any::<bool>(),
        0u16..4096,
        list(locator(), 0..=3),
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

fn map_request() -> impl Strategy<Value = MapRequest<'static>> {
    let request_record =
        (any::<bool>(), eid()).prop_map(|(notify, (eid, eid_mask_len))| RequestRecord {
            notify,
            eid_mask_len,
            eid,
        });
    let itr_rlocs = list(address(), 1..=8);
    (
        any::<[bool; 7]>(),
        any::<u64>(),
        address(),
        itr_rlocs,
        list(request_record, 0..=4),
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

fn map_reply() -> impl Strategy<Value = MapReply<'static>> {
    (any::<[bool; 3]>(), any::<u64>(), list(record(), 0..=4)).prop_map(
        |([probe, echo_nonce, security], nonce, records)| MapReply {
            probe,
            echo_nonce,
            security,
            nonce,
            records,
        },
    )
}

fn registration(with_xtr: bool) -> impl Strategy<Value = Registration<'static>> {
    let algorithm = prop_oneof![
        Just(Algorithm::HmacSha1_96),
        Just(Algorithm::HmacSha256_128)
    ];
    let xtr = if with_xtr {
        option::of(xtr_id()).boxed()
    } else {
        Just(None).boxed()
    };
    (any::<(u64, u8)>(), algorithm, list(record(), 0..=4), xtr).prop_map(
        |((nonce, key_id), algorithm, records, xtr)| Registration {
            nonce,
            key_id,
            algorithm,
            records,
            xtr,
        },
    )
}

fn map_register() -> impl Strategy<Value = MapRegister<'static>> {
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
        // Boxed: the value trees of five message strategies side by side
        // outgrow a test thread's stack in a debug build.
        map_request()
            .prop_map(|m| write_exact(|b| m.emit(b)))
            .boxed(),
        map_reply().prop_map(|m| write_exact(|b| m.emit(b))).boxed(),
        map_register()
            .prop_map(|m| write_exact(|b| m.emit(b, KEY)))
            .boxed(),
        registration(false)
            .prop_map(|body| write_exact(|b| MapNotify { body: body.clone() }.emit_ack(b, KEY)))
            .boxed(),
        (any::<[bool; 4]>(), socket_pair(), map_request())
            .prop_map(|(f, (s, d), inner)| {
                let inner = write_exact(|b| inner.emit(b));
                let ecm = Ecm {
                    security: f[0],
                    ddt: f[1],
                    to_etr: f[2],
                    to_ms: f[3],
                    source: s,
                    destination: d,
                    message: &inner,
                };
                write_exact(|b| ecm.emit(b))
            })
            .boxed(),
    ]
}

/// Verifies an authenticated message with [`KEY`], parses it by its type
/// and writes it again.
fn verify_parse_emit(msg: &[u8], buf: &mut [u8]) -> Option<Result<usize, WriteError>> {
    let verified = auth::verify(msg, KEY).ok()?;
    Some(match verified.message_type() {
        message_type::MAP_REGISTER => MapRegister::parse(&verified).ok()?.emit(buf, KEY),
        message_type::MAP_NOTIFY => MapNotify::parse(&verified).ok()?.emit(buf, KEY),
        _ => MapNotify::parse_ack(&verified).ok()?.emit_ack(buf, KEY),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn map_request_round_trips(m in map_request()) {
        let bytes = write_exact(|b| m.emit(b));
        prop_assert_eq!(Message::parse(&bytes), Ok(Message::MapRequest(m)));
    }

    #[test]
    fn map_reply_round_trips(m in map_reply()) {
        let bytes = write_exact(|b| m.emit(b));
        prop_assert_eq!(Message::parse(&bytes), Ok(Message::MapReply(m)));
    }

    #[test]
    fn map_register_round_trips_and_verifies(m in map_register()) {
        let bytes = write_exact(|b| m.emit(b, KEY));
        let verified = auth::verify(&bytes, KEY);
        prop_assert!(verified.is_ok());
        prop_assert!(auth::verify(&bytes, b"another key").is_err());
        prop_assert_eq!(MapRegister::parse(&verified.unwrap()), Ok(m));
    }

    #[test]
    fn map_notify_and_ack_round_trip_and_verify(body in registration(true)) {
        let notify = MapNotify { body };
        let bytes = write_exact(|b| notify.emit(b, KEY));
        let verified = auth::verify(&bytes, KEY).unwrap();
        prop_assert_eq!(MapNotify::parse(&verified), Ok(notify.clone()));
        prop_assert!(MapNotify::parse_ack(&verified).is_err());
        let ack = write_exact(|b| notify.emit_ack(b, KEY));
        let verified_ack = auth::verify(&ack, KEY).unwrap();
        prop_assert_eq!(MapNotify::parse_ack(&verified_ack), Ok(notify));
        // The ack made from the received bytes is the ack written anew.
        let mut copied = vec![0; bytes.len()];
        prop_assert_eq!(verified.acknowledge(&mut copied, KEY), Ok(ack.len()));
        prop_assert_eq!(copied, ack);
    }

    /// The checked views read, in place and through their iterators, what
    /// the repr that was written holds.
    #[test]
    fn views_agree_with_reprs(
        request in map_request(), reply in map_reply(), register in map_register(),
    ) {
        let bytes = write_exact(|b| request.emit(b));
        let packet = map_request::Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(packet.nonce(), request.nonce);
        prop_assert!(packet.itr_rlocs().iter().eq(request.itr_rlocs.iter()));
        prop_assert!(packet.records().iter().eq(request.records.iter()));
        prop_assert_eq!(packet.map_reply(), request.map_reply.clone());
        prop_assert_eq!(packet.xtr(), request.xtr);
        prop_assert_eq!(packet.as_bytes(), &bytes[..]);

        let bytes = write_exact(|b| reply.emit(b));
        let packet = map_reply::Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(packet.nonce(), reply.nonce);
        prop_assert_eq!(packet.records().len(), reply.records.len());
        for (read, written) in packet.records().iter().zip(reply.records.iter()) {
            prop_assert!(read.locators.iter().eq(written.locators.iter()));
            prop_assert_eq!(read, written);
        }

        let bytes = write_exact(|b| register.emit(b, KEY));
        let untrusted = lisp::Untrusted::new_checked(&bytes).unwrap();
        prop_assert_eq!(untrusted.untrusted_key_id(), register.body.key_id);
        prop_assert!(untrusted.untrusted_records().iter().eq(register.body.records.iter()));
        let verified = untrusted.verify(KEY).unwrap();
        prop_assert_eq!(verified.nonce(), register.body.nonce);
        prop_assert_eq!(verified.algorithm(), register.body.algorithm);
        let packet = registration::Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(packet.authentication_data(), verified.authentication_data());
        prop_assert_eq!(packet.xtr(), register.body.xtr);
    }

    #[test]
    fn ecm_round_trips(flags in any::<[bool; 4]>(), (source, destination) in socket_pair(),
                       message in vec(any::<u8>(), 0..300)) {
        let ecm = Ecm {
            security: flags[0], ddt: flags[1], to_etr: flags[2], to_ms: flags[3],
            source, destination, message: &message,
        };
        let bytes = write_exact(|b| ecm.emit(b));
        prop_assert_eq!(Ecm::parse(&bytes), Ok(ecm));
    }

    /// Flipped, overwritten, inserted and cut bytes: parsing and verifying
    /// return, never panic; what parses re-writes to something that parses
    /// to the same value (the authenticated ones signed again, as a sender
    /// would, so that the mutations reach past the digest).
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
            let mut signed = msg.to_vec();
            let _ = auth::sign(&mut signed, KEY);
            let mut buf = vec![0; 65536];
            if let Ok(parsed) = Message::parse(&signed) {
                let rewritten = match &parsed {
                    Message::MapRequest(m) => m.emit(&mut buf),
                    Message::MapReply(m) => m.emit(&mut buf),
                    // Not signable: a digest length its algorithm lacks.
                    Message::Untrusted(_) => match verify_parse_emit(&signed, &mut buf) {
                        Some(written) => written,
                        None => continue,
                    },
                    Message::Ecm(m) => m.emit(&mut buf),
                };
                // Every address parsed is kept, unknown ones as bytes.
                let written = buf[..rewritten.unwrap()].to_vec();
                if let Message::Untrusted(_) = parsed {
                    let mut again = vec![0; 65536];
                    let len = verify_parse_emit(&written, &mut again).unwrap().unwrap();
                    prop_assert_eq!(&again[..len], &written[..]);
                } else {
                    prop_assert_eq!(Message::parse(&written), Ok(parsed));
                }
            }
        }
    }
}
