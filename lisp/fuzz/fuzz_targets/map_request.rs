//! Map-Requests: inputs with the type nibble set to 1, so that the fuzzer
//! spends its time past the header. The view's iterators and the repr
//! agree, and the repr writes back to bytes that parse to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lisp::{map_request, MapRequest};

fuzz_target!(|data: &[u8]| {
    let mut msg = data.to_vec();
    if let Some(first) = msg.first_mut() {
        *first = (1 << 4) | (*first & 0x0f);
    }
    let Ok(packet) = map_request::Packet::new_checked(&msg[..]) else {
        return;
    };
    let request = MapRequest::parse(&packet);
    assert_eq!(request.nonce, packet.nonce());
    assert_eq!(packet.itr_rlocs().iter().count(), request.itr_rlocs.len());
    assert_eq!(packet.records().iter().count(), request.records.len());
    assert_eq!(packet.map_reply(), request.map_reply);
    let mut buf = vec![0; request.buffer_len()];
    let len = request.emit(&mut buf).unwrap();
    let again = map_request::Packet::new_checked(&buf[..len]).unwrap();
    assert_eq!(MapRequest::parse(&again), request);
});
