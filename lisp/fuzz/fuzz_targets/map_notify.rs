//! MapNotify::parse and parse_ack on inputs whose type nibble is already
//! 4 and 5, so that the fuzzer spends its time past the header.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut msg = data.to_vec();
    if let Some(first) = msg.first_mut() {
        *first = (4 << 4) | (*first & 0x0f);
        let _ = lisp::MapNotify::parse(&msg);
        msg[0] = (5 << 4) | (msg[0] & 0x0f);
        let _ = lisp::MapNotify::parse_ack(&msg);
    }
});
