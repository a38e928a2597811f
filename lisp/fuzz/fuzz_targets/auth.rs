//! Authentication of arbitrary input returns without panicking; what
//! verifies reads its header in place, parses by its type, and a
//! Map-Notify's acknowledgement verifies as a Map-Notify-Ack.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lisp::{auth, message_type, MapNotify, MapRegister};

const KEY: &[u8] = b"site key";

fuzz_target!(|data: &[u8]| {
    let Ok(verified) = auth::verify(data, KEY) else {
        return;
    };
    let _ = (
        verified.nonce(),
        verified.key_id(),
        verified.authentication_data(),
    );
    match verified.message_type() {
        message_type::MAP_REGISTER => drop(MapRegister::parse(&verified)),
        message_type::MAP_NOTIFY => {
            let notify = MapNotify::parse(&verified);
            let mut ack = vec![0; data.len()];
            let len = verified.acknowledge(&mut ack, KEY).unwrap();
            let acked = auth::verify(&ack[..len], KEY).unwrap();
            assert_eq!(acked.nonce(), verified.nonce());
            assert_eq!(MapNotify::parse_ack(&acked).ok(), notify.ok());
        }
        _ => drop(MapNotify::parse_ack(&verified)),
    }
});
