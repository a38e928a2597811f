//! Any input: parsing returns; what parses writes back to bytes that parse
//! to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lisp::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::parse(data) else {
        return;
    };
    let mut buf = [0u8; 65536];
    let written = match &message {
        Message::MapRequest(m) => m.write(&mut buf),
        Message::MapReply(m) => m.write(&mut buf),
        Message::MapRegister(m) => m.write(&mut buf, b"key"),
        Message::MapNotify(m) => m.write(&mut buf, b"key"),
        Message::MapNotifyAck(m) => m.write_ack(&mut buf, b"key"),
        Message::Ecm(m) => m.write(&mut buf),
    };
    // Only a skipped (unknown) LCAF cannot be written back.
    if let Ok(len) = written {
        assert_eq!(Message::parse(&buf[..len]).as_ref(), Ok(&message));
    }
});
