//! MapReply::parse on inputs whose type nibble is already 2, so that the
//! fuzzer spends its time past the header.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut msg = data.to_vec();
    if let Some(first) = msg.first_mut() {
        *first = (2 << 4) | (*first & 0x0f);
    }
    let _ = lisp::MapReply::parse(&msg);
});
