//! The largest message the codec reads, parsed and walked on a 64 KiB
//! thread in a debug build: views and borrowed reprs keep parsing off the
//! stack (the owned 5 KB structs before them needed 128-256 KB here).

use lisp::address::NatTraversal;
use lisp::{
    auth, Address, Algorithm, List, Locator, MapNotify, MapRegister, Record, Registration,
    MAX_LOCATORS, MAX_RECORDS,
};

const KEY: &[u8] = b"site key";

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

/// A Map-Register of MAX_RECORDS records of MAX_LOCATORS NAT-Traversal
/// locators, each with every RLOC an IPv6 address.
fn largest_map_register() -> Vec<u8> {
    let nat = NatTraversal {
        ms_port: 4342,
        etr_port: 40000,
        global_etr_rloc: Some(ip("2001:db8::1")),
        ms_rloc: Some(ip("2001:db8::2")),
        private_etr_rloc: Some(ip("2001:db8::3")),
        rtr_rlocs: heapless::Vec::from_slice(&[ip("2001:db8::4"), ip("2001:db8::5")]).unwrap(),
        ..NatTraversal::default()
    };
    let locators = vec![Locator::reachable(Address::NatTraversal(nat)); MAX_LOCATORS];
    let key = [7; 32];
    let eid = Address::eid(1000, ip("2001:db8:100::"), Some(&key));
    let record = Record {
        locators: List::new(&locators),
        ..Record::negative(eid, 48, 60, lisp::Action::NO_ACTION)
    };
    let records = vec![record; MAX_RECORDS];
    let register = MapRegister::new(Registration {
        nonce: 1,
        key_id: 0,
        algorithm: Algorithm::HmacSha256_128,
        records: List::new(&records),
        xtr: None,
    });
    let mut buf = vec![0; register.buffer_len()];
    let len = register.emit(&mut buf, KEY).unwrap();
    assert_eq!(len, buf.len());
    buf
}

#[test]
fn the_largest_message_parses_on_a_64_kib_stack() {
    let bytes = largest_map_register();
    let locators = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            let verified = auth::verify(&bytes, KEY).unwrap();
            let register = MapRegister::parse(&verified).unwrap();
            let mut locators = 0;
            for record in &register.body.records {
                assert!(record.eid.wireguard_key().is_some());
                for locator in &record.locators {
                    assert!(locator.rloc.endpoint().is_some());
                    locators += 1;
                }
            }
            locators
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(locators, MAX_RECORDS * MAX_LOCATORS);
}

/// What a parse puts on the stack: reprs hold header fields and borrowed
/// slices, never the records themselves.
#[test]
fn reprs_are_small() {
    let sizes = [
        ("MapRegister", size_of::<MapRegister>()),
        ("MapNotify", size_of::<MapNotify>()),
        ("MapReply", size_of::<lisp::MapReply>()),
        ("MapRequest", size_of::<lisp::MapRequest>()),
        ("Record", size_of::<Record>()),
        ("Address", size_of::<Address>()),
    ];
    for (name, size) in sizes {
        println!("{name}: {size} B");
        assert!(size <= 512, "{name} is {size} B");
    }
}
