//! Authentication of Map-Register, Map-Notify and Map-Notify-Ack
//! (RFC 9301 §5.6): an HMAC over the whole message, computed with the
//! Authentication Data field set to zero.
//!
//! [`verify`] returns an [`Authenticated`] message, the only thing the
//! three messages parse from.

use crate::error::{AuthError, WriteError};
use crate::message_type;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// Algorithm ID values (RFC 9301 §5.6, IANA "LISP Algorithm ID Numbers").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// 1: HMAC-SHA-1-96, kept for interoperation with older xTRs.
    HmacSha1_96,
    /// 2: HMAC-SHA-256-128, what lispguard sends.
    HmacSha256_128,
}

impl Algorithm {
    pub const fn id(self) -> u8 {
        match self {
            Self::HmacSha1_96 => 1,
            Self::HmacSha256_128 => 2,
        }
    }

    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::HmacSha1_96),
            2 => Some(Self::HmacSha256_128),
            _ => None,
        }
    }

    /// The full digest length, which is what lispguard writes (as other
    /// implementations do).
    pub const fn full_len(self) -> usize {
        match self {
            Self::HmacSha1_96 => 20,
            Self::HmacSha256_128 => 32,
        }
    }

    /// The truncated length the algorithm's name gives (96 or 128 bits),
    /// accepted on input.
    pub const fn truncated_len(self) -> usize {
        match self {
            Self::HmacSha1_96 => 12,
            Self::HmacSha256_128 => 16,
        }
    }
}

/// Where the authentication fields sit in messages of types 3, 4 and 5:
/// byte 12 Key ID, 13 Algorithm ID, 14..16 Authentication Data Length,
/// then the data.
pub(crate) const KEY_ID: usize = 12;
pub(crate) const ALGORITHM_ID: usize = 13;
pub(crate) const DATA_LENGTH: core::ops::Range<usize> = 14..16;
pub(crate) const DATA: usize = 16;

/// The authentication data of `msg`: algorithm and the byte range of the
/// digest, after checking the type, the algorithm and the length.
fn locate(msg: &[u8]) -> Result<(Algorithm, core::ops::Range<usize>), AuthError> {
    if msg.len() < DATA {
        return Err(AuthError::Truncated);
    }
    let message_type = msg[0] >> 4;
    if !matches!(message_type, 3..=5) {
        return Err(AuthError::NotAuthenticated { message_type });
    }
    let id = msg[ALGORITHM_ID];
    let algorithm = Algorithm::from_id(id).ok_or(AuthError::UnsupportedAlgorithm(id))?;
    let length = u16::from_be_bytes([msg[DATA_LENGTH.start], msg[DATA_LENGTH.start + 1]]);
    if usize::from(length) != algorithm.full_len()
        && usize::from(length) != algorithm.truncated_len()
    {
        return Err(AuthError::BadLength {
            algorithm: id,
            length,
        });
    }
    let range = DATA..DATA + usize::from(length);
    if msg.len() < range.end {
        return Err(AuthError::Truncated);
    }
    Ok((algorithm, range))
}

/// Feeds the message to `mac` with the digest bytes in `hole` as zeros,
/// without copying the message.
fn feed(mac: &mut impl Mac, msg: &[u8], hole: &core::ops::Range<usize>) {
    const ZEROS: [u8; 32] = [0; 32];
    mac.update(&msg[..hole.start]);
    mac.update(&ZEROS[..hole.len()]);
    mac.update(&msg[hole.end..]);
}

/// Fills in the authentication data of a Map-Register, Map-Notify or
/// Map-Notify-Ack in place, whatever the field holds: after a writer, or
/// after a setter changed a message (e.g. its type or nonce).
pub fn sign(msg: &mut [u8], key: &[u8]) -> Result<(), AuthError> {
    let (algorithm, range) = locate(msg)?;
    // HMAC takes keys of any length, so new_from_slice cannot fail.
    match algorithm {
        Algorithm::HmacSha1_96 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key).map_err(|_| AuthError::Mismatch)?;
            feed(&mut mac, msg, &range);
            let digest = mac.finalize().into_bytes();
            msg[range.clone()].copy_from_slice(&digest[..range.len()]);
        }
        Algorithm::HmacSha256_128 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| AuthError::Mismatch)?;
            feed(&mut mac, msg, &range);
            let digest = mac.finalize().into_bytes();
            msg[range.clone()].copy_from_slice(&digest[..range.len()]);
        }
    }
    Ok(())
}

/// A Map-Register, Map-Notify or Map-Notify-Ack whose authentication data
/// matched the shared key. Only [`verify`] makes one. Its header fields
/// are read in place; its records are read by parsing it (e.g.
/// [`crate::MapNotify::parse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authenticated<'a> {
    bytes: &'a [u8],
    algorithm: Algorithm,
    /// Authentication Data Length (the data starts at byte 16).
    data_len: usize,
}

impl<'a> Authenticated<'a> {
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn message_type(&self) -> u8 {
        self.bytes[0] >> 4
    }

    pub fn nonce(&self) -> u64 {
        crate::wire::nonce(self.bytes)
    }

    pub fn key_id(&self) -> u8 {
        self.bytes[KEY_ID]
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The digest as received (full or truncated).
    pub fn authentication_data(&self) -> &'a [u8] {
        &self.bytes[DATA..DATA + self.data_len]
    }

    /// Answers a Map-Notify with its Map-Notify-Ack: the same bytes as
    /// type 5, signed with `key`, in `buf`; returns the length.
    pub fn acknowledge(&self, buf: &mut [u8], key: &[u8]) -> Result<usize, WriteError> {
        let found = self.message_type();
        if found != message_type::MAP_NOTIFY {
            return Err(WriteError::Invalid {
                field: "message type to acknowledge",
                value: found.into(),
            });
        }
        let (len, available) = (self.bytes.len(), buf.len());
        let ack = buf.get_mut(..len).ok_or(WriteError::BufferTooSmall {
            needed: len,
            available,
        })?;
        ack.copy_from_slice(self.bytes);
        ack[0] = (message_type::MAP_NOTIFY_ACK << 4) | (ack[0] & 0x0f);
        // The header was checked by verify: sign accepts it.
        sign(ack, key).map_err(|_| WriteError::Invalid {
            field: "Algorithm ID",
            value: self.algorithm.id().into(),
        })?;
        Ok(len)
    }
}

/// Verifies the authentication data of a received Map-Register,
/// Map-Notify or Map-Notify-Ack with the shared `key`, in constant time.
/// Accepts the full and the truncated digest length.
pub fn verify<'a>(msg: &'a [u8], key: &[u8]) -> Result<Authenticated<'a>, AuthError> {
    let (algorithm, range) = locate(msg)?;
    let digest = &msg[range.clone()];
    let matches = match algorithm {
        Algorithm::HmacSha1_96 => check::<Hmac<Sha1>>(key, msg, &range, digest),
        Algorithm::HmacSha256_128 => check::<Hmac<Sha256>>(key, msg, &range, digest),
    };
    if matches {
        Ok(Authenticated {
            bytes: msg,
            algorithm,
            data_len: range.len(),
        })
    } else {
        Err(AuthError::Mismatch)
    }
}

fn check<M: Mac + KeyInit>(
    key: &[u8],
    msg: &[u8],
    hole: &core::ops::Range<usize>,
    digest: &[u8],
) -> bool {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return false;
    };
    feed(&mut mac, msg, hole);
    // Constant-time comparison of the (possibly truncated) digest.
    mac.verify_truncated_left(digest).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac_hex<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> String {
        let mut mac = <M as KeyInit>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// RFC 2202 §3, test cases 1, 2 and 6 (key longer than the block).
    #[test]
    fn hmac_sha1_matches_rfc2202() {
        assert_eq!(
            hmac_hex::<Hmac<Sha1>>(&[0x0b; 20], b"Hi There"),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            hmac_hex::<Hmac<Sha1>>(b"Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hmac_hex::<Hmac<Sha1>>(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    /// RFC 4231 §4.2, §4.3 and §4.7 (key longer than the block).
    #[test]
    fn hmac_sha256_matches_rfc4231() {
        assert_eq!(
            hmac_hex::<Hmac<Sha256>>(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hmac_hex::<Hmac<Sha256>>(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_hex::<Hmac<Sha256>>(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// A minimal type-3 header with `algorithm` and a zeroed digest of
    /// `length` bytes, followed by a body.
    fn message(algorithm: u8, length: u16) -> Vec<u8> {
        let mut msg = vec![0x30, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0, algorithm];
        msg.extend_from_slice(&length.to_be_bytes());
        msg.extend(core::iter::repeat_n(0, usize::from(length)));
        msg.extend_from_slice(b"records");
        msg
    }

    #[test]
    fn signed_message_verifies_and_any_change_fails() {
        for (algorithm, length) in [(1, 20), (2, 32)] {
            let mut msg = message(algorithm, length);
            sign(&mut msg, b"site key").unwrap();
            assert!(verify(&msg, b"site key").is_ok());
            assert_eq!(verify(&msg, b"other key"), Err(AuthError::Mismatch));
            for at in 0..msg.len() {
                // Changing the algorithm or length fails earlier, differently.
                if at == ALGORITHM_ID || DATA_LENGTH.contains(&at) {
                    continue;
                }
                let mut altered = msg.clone();
                altered[at] ^= 0x01;
                assert!(verify(&altered, b"site key").is_err(), "byte {at}");
            }
        }
    }

    #[test]
    fn truncated_digest_is_accepted() {
        for (algorithm, truncated) in [(1u8, 12u16), (2, 16)] {
            // The truncated digest is the left part of the HMAC computed over
            // the message as it stands with the shorter field.
            let mut short = message(algorithm, truncated);
            sign(&mut short, b"k").unwrap();
            assert!(verify(&short, b"k").is_ok());
        }
    }

    #[test]
    fn bad_headers_are_named() {
        assert_eq!(
            verify(&message(0, 0), b"k"),
            Err(AuthError::UnsupportedAlgorithm(0))
        );
        assert_eq!(
            verify(&message(2, 20), b"k"),
            Err(AuthError::BadLength {
                algorithm: 2,
                length: 20
            })
        );
        let mut map_request = message(2, 32);
        map_request[0] = 0x10;
        assert_eq!(
            verify(&map_request, b"k"),
            Err(AuthError::NotAuthenticated { message_type: 1 })
        );
        assert_eq!(
            verify(&message(2, 32)[..40], b"k"),
            Err(AuthError::Truncated)
        );
    }
}
