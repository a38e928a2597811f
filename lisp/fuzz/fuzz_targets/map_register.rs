//! Map-Registers: inputs with the type nibble set to 3 and signed, so that
//! the fuzzer spends its time past the header and the digest. What parses
//! agrees with the untrusted view, and writes back to the same repr.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lisp::{auth, MapRegister, Untrusted};

const KEY: &[u8] = b"key";

fuzz_target!(|data: &[u8]| {
    let mut msg = data.to_vec();
    let Some(first) = msg.first_mut() else { return };
    *first = (3 << 4) | (*first & 0x0f);
    let _ = auth::sign(&mut msg, KEY);
    let Ok(untrusted) = Untrusted::new_checked(&msg) else {
        return;
    };
    let Ok(verified) = untrusted.verify(KEY) else {
        return;
    };
    let register = MapRegister::parse(&verified).unwrap();
    assert_eq!(register.body.key_id, untrusted.untrusted_key_id());
    assert!(register
        .body
        .records
        .iter()
        .eq(untrusted.untrusted_records().iter()));
    let mut buf = vec![0; register.buffer_len()];
    let len = register.emit(&mut buf, KEY).unwrap();
    let again = auth::verify(&buf[..len], KEY).unwrap();
    assert_eq!(MapRegister::parse(&again).unwrap(), register);
});
