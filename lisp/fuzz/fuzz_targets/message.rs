//! Any input: parsing returns; what parses writes back to bytes that parse
//! to the same message (authenticated ones once signed and verified).
//! An authenticated message parses only once verified.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lisp::{auth, message_type, MapNotify, MapRegister, Message};

const KEY: &[u8] = b"key";

fuzz_target!(|data: &[u8]| {
    let mut signed = data.to_vec();
    let _ = auth::sign(&mut signed, KEY);
    let Ok(message) = Message::parse(&signed) else {
        return;
    };
    let mut buf = vec![0; 65536];
    match &message {
        Message::MapRequest(m) => {
            let len = m.emit(&mut buf).unwrap();
            assert_eq!(Message::parse(&buf[..len]).as_ref(), Ok(&message));
        }
        Message::MapReply(m) => {
            let len = m.emit(&mut buf).unwrap();
            assert_eq!(Message::parse(&buf[..len]).as_ref(), Ok(&message));
        }
        Message::Ecm(m) => {
            let len = m.emit(&mut buf).unwrap();
            assert_eq!(Message::parse(&buf[..len]).as_ref(), Ok(&message));
        }
        Message::Untrusted(u) => {
            // Not signable (e.g. a digest length the algorithm lacks).
            let Ok(verified) = u.verify(KEY) else { return };
            match verified.message_type() {
                message_type::MAP_REGISTER => {
                    let m = MapRegister::parse(&verified).unwrap();
                    let len = m.emit(&mut buf, KEY).unwrap();
                    let again = auth::verify(&buf[..len], KEY).unwrap();
                    assert_eq!(MapRegister::parse(&again).unwrap(), m);
                }
                message_type::MAP_NOTIFY => {
                    let m = MapNotify::parse(&verified).unwrap();
                    let len = m.emit(&mut buf, KEY).unwrap();
                    let again = auth::verify(&buf[..len], KEY).unwrap();
                    assert_eq!(MapNotify::parse(&again).unwrap(), m);
                }
                _ => {
                    let m = MapNotify::parse_ack(&verified).unwrap();
                    let len = m.emit_ack(&mut buf, KEY).unwrap();
                    let again = auth::verify(&buf[..len], KEY).unwrap();
                    assert_eq!(MapNotify::parse_ack(&again).unwrap(), m);
                }
            }
        }
    }
});
