//! Map-Notify and Map-Notify-Ack: inputs with the type nibble set to 4 and
//! 5 and signed, so that the fuzzer spends its time past the header and
//! the digest. What parses writes back to the same repr.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lisp::{auth, message_type, Authenticated, MapNotify, ParseError};

const KEY: &[u8] = b"key";

fn parse<'a>(m: &Authenticated<'a>) -> Result<MapNotify<'a>, ParseError> {
    match m.message_type() {
        message_type::MAP_NOTIFY => MapNotify::parse(m),
        _ => MapNotify::parse_ack(m),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut msg = data.to_vec();
    if msg.is_empty() {
        return;
    }
    for message_type in [message_type::MAP_NOTIFY, message_type::MAP_NOTIFY_ACK] {
        msg[0] = (message_type << 4) | (msg[0] & 0x0f);
        let _ = auth::sign(&mut msg, KEY);
        let Ok(verified) = auth::verify(&msg, KEY) else {
            continue;
        };
        let Ok(notify) = parse(&verified) else {
            continue;
        };
        assert_eq!(notify.body.nonce, verified.nonce());
        let mut buf = vec![0; notify.buffer_len()];
        let len = match message_type {
            message_type::MAP_NOTIFY => notify.emit(&mut buf, KEY),
            _ => notify.emit_ack(&mut buf, KEY),
        }
        .unwrap();
        let again = auth::verify(&buf[..len], KEY).unwrap();
        assert_eq!(parse(&again).unwrap(), notify);
    }
});
