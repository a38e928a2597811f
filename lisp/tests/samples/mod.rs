//! Realistic lispguard messages, one or more of every type, shared by the
//! Wireshark test, the benchmarks and the fuzz seeds.

#![allow(dead_code)]

use lisp::address::{InstanceId, NatTraversal};
use lisp::{
    Action, Address, Algorithm, Ecm, List, Locator, MapNotify, MapRegister, MapReply, MapRequest,
    Record, Registration, RequestRecord, XtrId,
};
use std::net::IpAddr;

pub const SITE_KEY: &[u8] = b"campus-a shared key";
pub const WG_KEY_A: [u8; 32] = [0xa1; 32];
pub const WG_KEY_B: [u8; 32] = [0xb2; 32];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A list of sample items: the samples live as long as the test, as the
/// caller's own items would.
fn vec<'a, T: lisp::list::Item<'a>>(items: impl IntoIterator<Item = T>) -> List<'a, T> {
    List::new(items.into_iter().collect::<Vec<_>>().leak())
}

/// Site B's record as the map-server hands it out: EID 10.2.0.0/24 in
/// instance 1000 with its WireGuard key, behind a NAT.
pub fn record_b() -> Record<'static> {
    Record {
        ttl: 1440,
        eid_mask_len: 24,
        action: Action::NO_ACTION,
        authoritative: true,
        map_version: 0,
        eid: Address::eid(1000, ip("10.2.0.0"), Some(&WG_KEY_B)),
        locators: vec([Locator::reachable(Address::NatTraversal(NatTraversal {
            ms_port: 4342,
            etr_port: 51820,
            global_etr_rloc: Some(ip("198.51.100.7")),
            ms_rloc: Some(ip("192.0.2.1")),
            private_etr_rloc: Some(ip("192.168.1.20")),
            ..NatTraversal::default()
        }))]),
    }
}

/// Site b's record as the relay hands it out: the relay first (its
/// address as RTR RLOC, the pair's port as ETR port), then b's own.
pub fn record_b_relayed() -> Record<'static> {
    let relay = std::net::SocketAddr::new(ip("192.0.2.1"), 40002);
    Record {
        locators: vec([
            Locator {
                priority: 0,
                ..Locator::reachable(Address::relayed(relay, Some(ip("198.51.100.7"))))
            },
            Locator::reachable(Address::Ip(ip("198.51.100.7"))),
        ]),
        ..record_b()
    }
}

/// A robot's record: host EID 2001:db8:100::7/128, no instance, a plain
/// IPv6 RLOC and an IPv4 one.
pub fn record_robot() -> Record<'static> {
    Record {
        ttl: 15,
        eid_mask_len: 128,
        action: Action::NO_ACTION,
        authoritative: true,
        map_version: 3,
        eid: Address::eid(0, ip("2001:db8:100::7"), Some(&WG_KEY_A)),
        locators: vec([
            Locator::reachable(Address::Ip(ip("2001:db8:ffff::2"))),
            Locator::reachable(Address::Ip(ip("203.0.113.9"))),
        ]),
    }
}

pub fn map_request() -> MapRequest<'static> {
    MapRequest {
        source_eid: Address::InstanceId(InstanceId {
            flags: 0,
            iid: 1000,
            mask_len: 0,
            address: Some(ip("10.1.0.5")),
        }),
        itr_rlocs: vec([Address::Ip(ip("100.64.0.1")), Address::Ip(ip("fd00::1"))]),
        records: vec([RequestRecord {
            notify: true,
            eid_mask_len: 32,
            eid: Address::InstanceId(InstanceId {
                flags: 0,
                iid: 1000,
                mask_len: 0,
                address: Some(ip("10.2.0.9")),
            }),
        }]),
        xtr: Some(XtrId {
            xtr_id: 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff,
            site_id: 7,
        }),
        ..MapRequest::new(0x0102_0304_0506_0708, &[], &[])
    }
}

/// An SMR-invoked request carrying the requester's own mapping.
pub fn map_request_with_mapping() -> MapRequest<'static> {
    MapRequest {
        authoritative: true,
        smr_invoked: true,
        source_eid: Address::Ip(ip("2001:db8:100::7")),
        records: vec([RequestRecord {
            notify: false,
            eid_mask_len: 128,
            eid: Address::Ip(ip("2001:db8:200::1")),
        }]),
        map_reply: Some(record_robot()),
        xtr: None,
        ..map_request()
    }
}

pub fn map_reply() -> MapReply<'static> {
    MapReply {
        probe: false,
        echo_nonce: false,
        security: false,
        nonce: 0x0102_0304_0506_0708,
        records: vec([record_b(), record_robot(), record_b_relayed()]),
    }
}

pub fn negative_map_reply() -> MapReply<'static> {
    MapReply {
        nonce: 0x1111_2222_3333_4444,
        records: vec([Record::negative(
            Address::eid(1000, ip("10.9.0.0"), None),
            16,
            1,
            Action::DROP_POLICY_DENIED,
        )]),
        ..MapReply::default()
    }
}

pub fn registration(algorithm: Algorithm) -> Registration<'static> {
    Registration {
        nonce: 0xdead_beef_0000_0001,
        key_id: 0,
        algorithm,
        records: vec([record_b(), record_robot()]),
        xtr: None,
    }
}

pub fn map_register(algorithm: Algorithm) -> MapRegister<'static> {
    MapRegister::new(Registration {
        xtr: Some(XtrId {
            xtr_id: 0xfeed_0000_0000_0000_0000_0000_0000_0001,
            site_id: 42,
        }),
        ..registration(algorithm)
    })
}

/// A node's enrolment with a group token (`lispguard join`), asking a
/// second map-server for what the first gave: its key around the control
/// address, the token's grant as a Distinguished Name, the EID.
pub fn enrolment() -> MapRegister<'static> {
    let control = Record {
        ttl: 1,
        eid_mask_len: 32,
        action: Action::NO_ACTION,
        authoritative: true,
        map_version: 0,
        eid: Address::eid(0, ip("100.64.1.1"), Some(&WG_KEY_A)),
        locators: vec([Locator::reachable(Address::Ip(ip("198.51.100.7")))]),
    };
    let grant = Record {
        eid_mask_len: 0,
        eid: Address::Name("iid=1000 uses=20 until=1764400000 pool=10.9.0.0/24"),
        locators: List::default(),
        ..control.clone()
    };
    let eid = Record {
        eid_mask_len: 32,
        eid: Address::eid(1000, ip("10.9.0.1"), None),
        locators: List::default(),
        ..control.clone()
    };
    MapRegister::new(Registration {
        xtr: Some(XtrId {
            xtr_id: 0xa1a1_a1a1_a1a1_a1a1_a1a1_a1a1_a1a1_a1a1,
            site_id: 0x0102_0304_0506_07ab,
        }),
        records: vec([control, grant, eid]),
        ..registration(Algorithm::HmacSha256_128)
    })
}

pub fn map_notify() -> MapNotify<'static> {
    MapNotify {
        body: registration(Algorithm::HmacSha256_128),
    }
}

/// The Map-Notify that answers a Map-Register with the I bit: its xTR-ID
/// and Site-ID echoed.
pub fn map_notify_with_xtr_id() -> MapNotify<'static> {
    MapNotify {
        body: Registration {
            nonce: 0xdead_beef_0000_0002,
            ..map_register(Algorithm::HmacSha256_128).body
        },
    }
}

/// A Map-Request encapsulated to a Map-Resolver, inner header of the
/// family of `source`.
pub fn ecm<'a>(inner: &'a [u8], source: &str, destination: &str) -> Ecm<'a> {
    Ecm {
        security: false,
        ddt: false,
        to_etr: false,
        to_ms: true,
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
        message: inner,
    }
}

/// The bytes `write` puts in a buffer.
pub fn written(write: impl FnOnce(&mut [u8]) -> Result<usize, lisp::WriteError>) -> Vec<u8> {
    let mut buf = vec![0; 4096];
    let len = write(&mut buf).unwrap();
    buf.truncate(len);
    buf
}

/// Every sample, written: (name, bytes, Security Key LCAFs that Wireshark
/// reaches in it).
pub fn all() -> Vec<(&'static str, Vec<u8>, usize)> {
    let sha256 = Algorithm::HmacSha256_128;
    let inner = written(|b| map_request().emit(b));
    vec![
        ("map-request", written(|b| map_request().emit(b)), 0),
        (
            "map-request-with-mapping",
            written(|b| map_request_with_mapping().emit(b)),
            1,
        ),
        ("map-reply", written(|b| map_reply().emit(b)), 3),
        (
            "negative-map-reply",
            written(|b| negative_map_reply().emit(b)),
            0,
        ),
        (
            "map-register-sha256",
            written(|b| map_register(sha256).emit(b, SITE_KEY)),
            2,
        ),
        (
            "map-register-sha1",
            written(|b| map_register(Algorithm::HmacSha1_96).emit(b, SITE_KEY)),
            2,
        ),
        ("map-notify", written(|b| map_notify().emit(b, SITE_KEY)), 2),
        // Wireshark 4.0 does not dissect type 5 at all.
        (
            "map-notify-ack",
            written(|b| map_notify().emit_ack(b, SITE_KEY)),
            0,
        ),
        (
            "ecm-ipv4",
            written(|b| ecm(&inner, "10.1.0.5:40000", "192.0.2.1:4342").emit(b)),
            0,
        ),
        (
            "ecm-ipv6",
            written(|b| ecm(&inner, "[fd00::5]:40000", "[fd00::53]:4342").emit(b)),
            0,
        ),
        (
            "map-notify-xtr-id",
            written(|b| map_notify_with_xtr_id().emit(b, SITE_KEY)),
            2,
        ),
        ("enrolment", written(|b| enrolment().emit(b, SITE_KEY)), 1),
    ]
}
