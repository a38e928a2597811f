//! WireGuard keys: X25519 public keys, random private keys, and the two
//! text forms — base64 (as `wg` and our configurations show keys) and hex
//! (as wireguard-go's UAPI wants them). Both codecs are for 32-byte keys
//! only, which keeps them a few lines each and strict (one spelling per key).

use std::io;

use crate::PublicKey;

/// The public key of a private key (X25519 with the base point; the
/// private key is clamped by the scalar multiplication, as WireGuard does).
pub fn public_key(private_key: &[u8; 32]) -> PublicKey {
    x25519_dalek::x25519(*private_key, x25519_dalek::X25519_BASEPOINT_BYTES)
}

/// A new random private key, clamped as X25519 wants; fails only when the
/// OS has no randomness to give.
pub fn try_generate_private_key() -> io::Result<[u8; 32]> {
    let mut key = [0; 32];
    getrandom::fill(&mut key)
        .map_err(|e| io::Error::other(format!("no randomness for a private key: {e}")))?;
    key[0] &= 248;
    key[31] &= 127;
    key[31] |= 64;
    Ok(key)
}

/// A new random private key, clamped as X25519 wants.
///
/// # Panics
/// When the OS has no randomness to give (Linux always has, since 3.17);
/// [`try_generate_private_key`] returns that as an error instead.
pub fn generate_private_key() -> [u8; 32] {
    match try_generate_private_key() {
        Ok(key) => key,
        Err(e) => panic!("{e}"),
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A WireGuard key in base64 (44 characters, one `=`), as `wg genkey`
/// prints it.
pub fn format_key(key: &[u8; 32]) -> String {
    let mut out = String::with_capacity(44);
    for chunk in key.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..=chunk.len() {
            out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out.push('=');
    out
}

/// The first characters of a key in base64: enough to tell keys apart in
/// a status table or a log line.
pub fn key_fingerprint(key: &[u8; 32]) -> String {
    let mut text = format_key(key);
    text.truncate(10);
    text
}

/// A WireGuard key in its usual base64 form (as `wg genkey` prints it).
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    decode_base64(text)
        .ok_or_else(|| format!("'{text}' is not a WireGuard key (32 bytes in base64)"))
}

fn decode_base64(text: &str) -> Option<[u8; 32]> {
    let digits = text.strip_suffix('=')?.as_bytes();
    if digits.len() != 43 {
        return None;
    }
    let mut n: u32 = 0;
    let mut bits = 0;
    let mut out = [0; 32];
    let mut len = 0;
    for &c in digits {
        let v = BASE64.iter().position(|&b| b == c)? as u32;
        n = (n << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(len)? = (n >> bits) as u8;
            len += 1;
        }
    }
    // 43 digits are 258 bits: the last 2 must be zero (canonical form).
    (len == 32 && n & 3 == 0).then_some(out)
}

/// A key in lowercase hex, for the UAPI.
pub(super) fn to_hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key in hex (64 digits), from the UAPI.
pub(super) fn from_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = (digit(pair[0])? << 4 | digit(pair[1])?) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_strictness() {
        // `wg pubkey` of RFC 7748's Alice.
        let alice =
            from_hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a").unwrap();
        assert_eq!(
            format_key(&alice),
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
        );
        assert_eq!(
            parse_key(" hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n"),
            Ok(alice)
        );
        for key in [[0u8; 32], [0xff; 32], try_generate_private_key().unwrap()] {
            assert_eq!(parse_key(&format_key(&key)), Ok(key));
        }
        for bad in [
            "",
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo", // no padding
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmp=", // trailing bits set
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTm*=", // not base64
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmoA=", // 33 bytes
            "é",
        ] {
            assert!(parse_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprint_is_the_start_of_the_base64_key() {
        let alice =
            from_hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a").unwrap();
        assert_eq!(key_fingerprint(&alice), "hSDwCYkwp1");
    }

    #[test]
    fn hex_round_trip() {
        let key = try_generate_private_key().unwrap();
        assert_eq!(from_hex(&to_hex(&key)), Some(key));
        assert_eq!(from_hex(&to_hex(&key).to_uppercase()), Some(key));
        assert_eq!(from_hex("00"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
        assert_eq!(from_hex(&"é".repeat(32)), None);
    }
}
