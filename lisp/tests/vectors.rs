//! Fixed byte vectors, assembled by hand from the RFC 9301 / RFC 8060
//! diagrams, with digests computed by Python's hmac module: the codec must
//! parse them to the intended values and write those values back to the
//! very same bytes. On a big-endian target these catch any byte-order slip.

use lisp::address::NatTraversal;
use lisp::{
    auth, map_reply, map_request, Action, Address, Algorithm, Ecm, List, Locator, MapNotify,
    MapRegister, MapReply, MapRequest, Record, Registration, RequestRecord, XtrId,
};

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ip(s: &str) -> Address<'static> {
    Address::Ip(s.parse().unwrap())
}

const KEY: &[u8] = b"campus-a shared key";

/// Type 1, IRC 0 (one ITR-RLOC), one record; source EID AFI 0.
#[test]
fn map_request_vector() {
    let bytes = unhex(
        "10 00 00 01  0102030405060708
         0000  0001 c0000201
         00 20 0001 0a020009",
    );
    let itr_rlocs = [ip("192.0.2.1")];
    let records = [RequestRecord {
        notify: false,
        eid_mask_len: 32,
        eid: ip("10.2.0.9"),
    }];
    let expected = MapRequest::new(0x0102_0304_0506_0708, &itr_rlocs, &records);
    let packet = map_request::Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(MapRequest::parse(&packet), expected);
    let mut buf = [0u8; 64];
    let len = expected.emit(&mut buf).unwrap();
    assert_eq!(buf[..len], bytes[..]);
}

/// Type 3 with P and M set, HMAC-SHA-256-128 (full 32-byte digest) and
/// HMAC-SHA-1-96 (20 bytes) over one record.
#[test]
fn map_register_vectors() {
    let record = "000005a0 01 18 1000 0000 0001 0a010000
                  0164ff00 0001 0001 c6336407";
    for (algorithm, auth, digest) in [
        (
            Algorithm::HmacSha256_128,
            "00 02 0020",
            "7a0bad1b181a3cd45b51aa4c085f911266601d7c52510d6c3eea0d7bd58f910b",
        ),
        (
            Algorithm::HmacSha1_96,
            "00 01 0014",
            "97cf58513f3f7c7ed7c73306e1ab9f854d6ed9de",
        ),
    ] {
        let bytes = unhex(&format!(
            "38 00 01 01 000000000000002a {auth} {digest} {record}"
        ));
        let locators = [Locator::reachable(ip("198.51.100.7"))];
        let records = [Record {
            ttl: 1440,
            eid_mask_len: 24,
            action: Action::NO_ACTION,
            authoritative: true,
            map_version: 0,
            eid: ip("10.1.0.0"),
            locators: List::new(&locators),
        }];
        let expected = MapRegister::new(Registration {
            nonce: 42,
            key_id: 0,
            algorithm,
            records: List::new(&records),
            xtr: None,
        });
        let verified = auth::verify(&bytes, KEY).unwrap();
        assert_eq!(verified.nonce(), 42);
        assert_eq!(verified.authentication_data(), unhex(digest));
        assert_eq!(MapRegister::parse(&verified), Ok(expected.clone()));
        let mut buf = [0u8; 128];
        let len = expected.emit(&mut buf, KEY).unwrap();
        assert_eq!(buf[..len], bytes[..], "{algorithm:?}");
    }
}

/// Type 2 with one record whose locator is a NAT-Traversal LCAF (RFC 8060
/// §4.4): ports 4342 / 51820, global, MS and private RLOCs, no RTR.
#[test]
fn map_reply_with_nat_traversal_vector() {
    let bytes = unhex(
        "20 00 00 01  00000000000000ff
         0000000f 01 20 1000 0003 0001 0a020009
         0164ff00 0001
         4003 00 00 07 00 0016  10f6 ca6c
             0001 c6336407  0001 c0000201  0001 c0a80114",
    );
    let nat = NatTraversal {
        ms_port: 4342,
        etr_port: 51820,
        global_etr_rloc: Some("198.51.100.7".parse().unwrap()),
        ms_rloc: Some("192.0.2.1".parse().unwrap()),
        private_etr_rloc: Some("192.168.1.20".parse().unwrap()),
        ..NatTraversal::default()
    };
    let locators = [Locator::reachable(Address::NatTraversal(nat))];
    let records = [Record {
        ttl: 15,
        eid_mask_len: 32,
        action: Action::NO_ACTION,
        authoritative: true,
        map_version: 3,
        eid: ip("10.2.0.9"),
        locators: List::new(&locators),
    }];
    let expected = MapReply {
        nonce: 0xff,
        records: List::new(&records),
        ..MapReply::default()
    };
    let packet = map_reply::Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(packet.nonce(), 0xff);
    assert_eq!(MapReply::parse(&packet), expected);
    let mut buf = [0u8; 128];
    let len = expected.emit(&mut buf).unwrap();
    assert_eq!(buf[..len], bytes[..]);
}

/// Type 4 with the I bit (bit 4, 0x48): a Map-Notify echoing the xTR-ID
/// and Site-ID of a Map-Register, after its record (RFC 9301 §5.6, §5.7).
#[test]
fn map_notify_with_xtr_id_vector() {
    let bytes = unhex(
        "48 00 00 01 000000000000002a 00 02 0020
         2f9a71fb3ab6b4b681c485396546842f54eec469e3e9532abf2f1d7754c8b61d
         000005a0 01 18 1000 0000 0001 0a010000
         0164ff00 0001 0001 c6336407
         00112233445566778899aabbccddeeff 0000000000000007",
    );
    let locators = [Locator::reachable(ip("198.51.100.7"))];
    let records = [Record {
        ttl: 1440,
        eid_mask_len: 24,
        action: Action::NO_ACTION,
        authoritative: true,
        map_version: 0,
        eid: ip("10.1.0.0"),
        locators: List::new(&locators),
    }];
    let expected = MapNotify {
        body: Registration {
            nonce: 42,
            key_id: 0,
            algorithm: Algorithm::HmacSha256_128,
            records: List::new(&records),
            xtr: Some(XtrId {
                xtr_id: 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff,
                site_id: 7,
            }),
        },
    };
    let verified = auth::verify(&bytes, KEY).unwrap();
    assert_eq!(MapNotify::parse(&verified), Ok(expected.clone()));
    let mut buf = [0u8; 128];
    let len = expected.emit(&mut buf, KEY).unwrap();
    assert_eq!(buf[..len], bytes[..]);
}

/// Type 8 with the M bit, an IPv4 header (TTL 64, UDP, its checksum) and
/// a UDP header (port 40000 to 4342, its checksum over the pseudo-header)
/// around the Map-Request of `map_request_vector` (RFC 9301 §5.8).
#[test]
fn ecm_vector() {
    let inner = "10 00 00 01  0102030405060708
                 0000  0001 c0000201
                 00 20 0001 0a020009";
    let bytes = unhex(&format!(
        "81 00 00 00
         45 00 0038 0000 0000 40 11 aeae 0a010005 c0000201
         9c40 10f6 0024 9a24
         {inner}"
    ));
    let inner = unhex(inner);
    let expected = Ecm {
        security: false,
        ddt: false,
        to_etr: false,
        to_ms: true,
        source: "10.1.0.5:40000".parse().unwrap(),
        destination: "192.0.2.1:4342".parse().unwrap(),
        message: &inner,
    };
    assert_eq!(Ecm::parse(&bytes), Ok(expected.clone()));
    let mut buf = [0u8; 128];
    let len = expected.emit(&mut buf).unwrap();
    assert_eq!(buf[..len], bytes[..]);
}
