//! Bad input gets a typed error that names the field and its offset, in
//! words an operator can read in a log line.

use lisp::{map_reply, List, MapReply, Message, ParseError, ParseErrorKind, Untrusted, WriteError};

fn err(offset: usize, kind: ParseErrorKind) -> Result<Message<'static>, ParseError> {
    Err(ParseError { offset, kind })
}

#[test]
fn truncation_names_the_field_it_cut() {
    assert_eq!(
        Message::parse(&[]),
        err(
            0,
            ParseErrorKind::Truncated {
                field: "message header"
            }
        )
    );
    let cut = [0x10, 0, 0, 1, 1, 2, 3];
    let e = Message::parse(&cut).unwrap_err();
    assert_eq!(
        e,
        ParseError {
            offset: 4,
            kind: ParseErrorKind::Truncated { field: "Nonce" }
        }
    );
    assert_eq!(e.to_string(), "at byte 4: message ends inside Nonce");
}

#[test]
fn authentication_data_longer_than_the_message_is_truncation() {
    // Map-Register claiming 32 bytes of authentication data, holding 4.
    let msg = [
        0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 32, 1, 2, 3, 4,
    ];
    assert_eq!(
        Untrusted::new_checked(&msg).unwrap_err(),
        ParseError {
            offset: 16,
            kind: ParseErrorKind::Truncated {
                field: "Authentication Data"
            }
        }
    );
}

#[test]
fn unknown_algorithm_is_invalid_at_its_byte() {
    let msg = [0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 7, 0, 0];
    let e = Untrusted::new_checked(&msg).unwrap_err();
    assert_eq!(e.offset, 13);
    assert_eq!(e.to_string(), "at byte 13: invalid Algorithm ID 7");
}

#[test]
fn more_records_than_kept_is_refused_before_reading_them() {
    let mut msg = vec![0x20, 0, 0, 9];
    msg.extend_from_slice(&[0; 8]);
    assert_eq!(
        Message::parse(&msg),
        err(
            12,
            ParseErrorKind::TooMany {
                field: "records",
                max: lisp::MAX_RECORDS
            }
        )
    );
}

#[test]
fn mask_len_longer_than_the_address_is_invalid() {
    // Map-Reply record for 10.0.0.0/33.
    let msg = [
        0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // header, nonce
        0, 0, 0, 1, 0, 33, 0, 0, 0, 0, // TTL, 0 locators, mask-len 33
        0, 1, 10, 0, 0, 0, // AFI 1, 10.0.0.0
    ];
    assert_eq!(
        Message::parse(&msg),
        err(
            22,
            ParseErrorKind::Invalid {
                field: "EID mask-len",
                value: 33
            }
        )
    );
}

#[test]
fn types_are_checked() {
    assert_eq!(
        Message::parse(&[0x60, 0, 0, 0]),
        err(0, ParseErrorKind::UnknownType(6))
    );
    assert_eq!(
        map_reply::Packet::new_checked(&[0x10, 0, 0, 0])
            .unwrap_err()
            .kind,
        ParseErrorKind::WrongType {
            expected: 2,
            found: 1
        }
    );
}

#[test]
fn writing_refuses_values_that_do_not_fit_their_bits() {
    let mut record = lisp::Record::negative(lisp::Address::None, 0, 1, lisp::Action(8));
    let records = [record.clone()];
    let reply = MapReply {
        records: List::new(&records),
        ..MapReply::default()
    };
    let mut buf = [0u8; 64];
    assert_eq!(
        reply.emit(&mut buf),
        Err(WriteError::Invalid {
            field: "ACT",
            value: 8
        })
    );
    record.action = lisp::Action::NO_ACTION;
    record.map_version = 4096;
    let records = [record];
    let reply = MapReply {
        records: List::new(&records),
        ..MapReply::default()
    };
    assert_eq!(
        reply.emit(&mut buf),
        Err(WriteError::Invalid {
            field: "Map-Version Number",
            value: 4096
        })
    );
}

#[test]
fn writing_refuses_more_items_than_a_reader_keeps() {
    let records = vec![lisp::Record::negative(lisp::Address::None, 0, 1, lisp::Action(0)); 9];
    let reply = MapReply {
        records: List::new(&records),
        ..MapReply::default()
    };
    assert_eq!(
        reply.emit(&mut [0u8; 256]),
        Err(WriteError::Invalid {
            field: "Record Count",
            value: 9
        })
    );
}

#[test]
fn only_a_map_notify_is_acknowledged() {
    let register = lisp::MapRegister::new(lisp::Registration {
        nonce: 1,
        key_id: 0,
        algorithm: lisp::Algorithm::HmacSha256_128,
        records: List::empty(),
        xtr: None,
    });
    let mut buf = [0u8; 64];
    let len = register.emit(&mut buf, b"k").unwrap();
    let verified = lisp::auth::verify(&buf[..len], b"k").unwrap();
    assert_eq!(
        verified.acknowledge(&mut [0u8; 64], b"k"),
        Err(WriteError::Invalid {
            field: "message type to acknowledge",
            value: 3
        })
    );
}
