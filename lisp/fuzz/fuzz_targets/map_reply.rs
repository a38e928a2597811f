//! Map-Replies: inputs with the type nibble set to 2, so that the fuzzer
//! spends its time past the header. The view's iterators and the repr
//! agree, and the repr writes back to bytes that parse to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lisp::{map_reply, MapReply};

fuzz_target!(|data: &[u8]| {
    let mut msg = data.to_vec();
    if let Some(first) = msg.first_mut() {
        *first = (2 << 4) | (*first & 0x0f);
    }
    let Ok(packet) = map_reply::Packet::new_checked(&msg[..]) else {
        return;
    };
    let reply = MapReply::parse(&packet);
    assert_eq!(reply.nonce, packet.nonce());
    assert_eq!(packet.records().iter().count(), reply.records.len());
    for (record, again) in packet.records().iter().zip(reply.records.iter()) {
        assert_eq!(record.locators.iter().count(), record.locators.len());
        assert_eq!(record, again);
    }
    let mut buf = vec![0; reply.buffer_len()];
    let len = reply.emit(&mut buf).unwrap();
    let again = map_reply::Packet::new_checked(&buf[..len]).unwrap();
    assert_eq!(MapReply::parse(&again), reply);
});
