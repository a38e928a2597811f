//! Ecm::parse on inputs whose type nibble is already 8, so that the
//! fuzzer spends its time past the header; then what a map-resolver does
//! with it: the inner Map-Request checked, parsed, its ITR-RLOCs and
//! records walked.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut msg = data.to_vec();
    if let Some(first) = msg.first_mut() {
        *first = (8 << 4) | (*first & 0x0f);
    }
    let Ok(ecm) = lisp::Ecm::parse(&msg) else {
        return;
    };
    let Ok(packet) = lisp::map_request::Packet::new_checked(ecm.message) else {
        return;
    };
    let request = lisp::MapRequest::parse(&packet);
    let _ = request.source_eid.ip();
    for rloc in &request.itr_rlocs {
        let _ = rloc.ip();
    }
    for record in &request.records {
        let _ = lisp::EidPrefix::from_address(&record.eid, record.eid_mask_len);
    }
});
