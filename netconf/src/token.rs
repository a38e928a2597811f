//! Enrolment tokens: one printable string an operator copies from the
//! map-server to a node, carrying all the node needs to trust the
//! map-server and be trusted by it — the map-server's underlay address and
//! port, its WireGuard public key (pinned: there is no CA), the token's id
//! and a 32-byte secret.
//!
//! ```text
//! lgt1.<base64url, no padding, of:>
//!   family 1 (4 or 6) | address 4 or 16 | port 2 | public key 32 | id 8 | secret 32 | check 4
//! ```
//!
//! The version is in the prefix, so a later format is told apart before any
//! decoding. `check` is the start of the SHA-256 of the bytes before it: a
//! mistyped or mangled copy is an error here, not an enrolment that goes
//! unanswered. The map-server keeps only keys derived from the secret
//! ([`Token::register_key`]), never the secret.

use crate::PublicKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// What every token of this format starts with.
pub const PREFIX: &str = "lgt1.";

/// The longest body of this format (an IPv6 map-server), in bytes.
const MAX_BODY: usize = 1 + 16 + 2 + 32 + 8 + 32 + CHECK;
/// Bytes of the check.
const CHECK: usize = 4;
/// The longest text decoded at all: longer is not a token of this format.
const MAX_TEXT: usize = PREFIX.len() + MAX_BODY.div_ceil(3) * 4;

/// A token's id: 8 random bytes, shown in hex. It names the token in the
/// store, in `token list` and `token revoke`, and (planned) in the
/// enrolment Map-Register, so that the map-server finds the key to verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub [u8; 8]);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl FromStr for TokenId {
    type Err = String;

    fn from_str(text: &str) -> Result<TokenId, String> {
        let bad = || format!("'{text}' is not a token id (16 hex digits, as `token list` shows)");
        if text.len() != 16 || !text.is_ascii() {
            return Err(bad());
        }
        let mut id = [0; 8];
        for (byte, pair) in id.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(TokenId(id))
    }
}

/// An enrolment token, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The map-server's underlay listener (`[lisp] underlay_listen`).
    pub map_server: SocketAddr,
    /// The map-server's WireGuard public key.
    pub public_key: PublicKey,
    pub id: TokenId,
    pub secret: [u8; 32],
}

// The secret stays out of logs and panics.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("map_server", &self.map_server)
            .field("public_key", &crate::key_fingerprint(&self.public_key))
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a string is not a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a lispguard token at all.
    Foreign,
    /// A lispguard token of another format version.
    Version(String),
    /// Longer than any token: not one.
    TooLong(usize),
    /// Characters outside base64url, or padding.
    NotBase64,
    /// Too short or too long for its address family: cut when copied.
    Length { got: usize, expected: usize },
    /// An address family byte other than 4 or 6.
    Family(u8),
    /// The check does not match: a character was changed.
    Check,
    /// An address or port no node can send to.
    Unreachable(SocketAddr),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Foreign => write!(f, "not a lispguard token (they start with '{PREFIX}')"),
            DecodeError::Version(v) => write!(
                f,
                "a lispguard token of version '{v}'; this release reads '{PREFIX}' tokens"
            ),
            DecodeError::TooLong(n) => {
                write!(
                    f,
                    "{n} characters: longer than any token ({MAX_TEXT} at most)"
                )
            }
            DecodeError::NotBase64 => write!(
                f,
                "the token has characters a token never has (copy it again, whole)"
            ),
            DecodeError::Length { got, expected } => write!(
                f,
                "the token is {got} bytes where {expected} were expected: cut or joined when copied"
            ),
            DecodeError::Family(family) => write!(f, "the token names address family {family}"),
            DecodeError::Check => write!(
                f,
                "the token does not match its check: a character was changed when copied"
            ),
            DecodeError::Unreachable(address) => {
                write!(f, "the token names {address}, which no node can reach")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl Token {
    /// A new token for the map-server at `map_server` with `public_key`:
    /// a random id and secret from the OS.
    pub fn generate(map_server: SocketAddr, public_key: PublicKey) -> std::io::Result<Token> {
        let mut random = [0; 40];
        getrandom::fill(&mut random)
            .map_err(|e| std::io::Error::other(format!("no randomness for a token: {e}")))?;
        let (id, secret) = random.split_at(8);
        Ok(Token {
            map_server,
            public_key,
            id: TokenId(id.try_into().unwrap_or_default()),
            secret: secret.try_into().unwrap_or([0; 32]),
        })
    }

    /// The key that authenticates the enrolment Map-Register (and its
    /// Map-Notify): what the map-server stores instead of the secret.
    pub fn register_key(&self) -> [u8; 32] {
        derive(&self.secret, b"enrolment map-register")
    }

    /// The Map-Register key of the node that enrols with `node_public`
    /// (see [`site_key`]), as the map-server computes it.
    pub fn site_key_of(map_server_private: &[u8; 32], node_public: &PublicKey) -> String {
        site_key(&x25519_dalek::x25519(*map_server_private, *node_public))
    }

    /// The same, as the node computes it with its own private key and the
    /// map-server's pinned public key.
    pub fn site_key(&self, node_private: &[u8; 32]) -> String {
        site_key(&x25519_dalek::x25519(*node_private, self.public_key))
    }

    /// The printable form, `lgt1.` and base64url.
    pub fn encode(&self) -> String {
        let mut body = Vec::with_capacity(MAX_BODY);
        match self.map_server.ip() {
            IpAddr::V4(a) => {
                body.push(4);
                body.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                body.push(6);
                body.extend_from_slice(&a.octets());
            }
        }
        body.extend_from_slice(&self.map_server.port().to_be_bytes());
        body.extend_from_slice(&self.public_key);
        body.extend_from_slice(&self.id.0);
        body.extend_from_slice(&self.secret);
        let check = check(&body);
        body.extend_from_slice(&check);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&body))
    }

    /// Reads a token as an operator pasted it (surrounding whitespace is
    /// ignored).
    pub fn decode(text: &str) -> Result<Token, DecodeError> {
        let text = text.trim();
        if text.len() > MAX_TEXT {
            return Err(DecodeError::TooLong(text.len()));
        }
        let Some(encoded) = text.strip_prefix(PREFIX) else {
            return Err(
                match text.strip_prefix("lgt").and_then(|t| t.split_once('.')) {
                    Some((version, _)) if !version.is_empty() => {
                        DecodeError::Version(version.chars().take(8).collect())
                    }
                    _ => DecodeError::Foreign,
                },
            );
        };
        let body = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| DecodeError::NotBase64)?;
        let address_len = match body.first() {
            Some(4) => 4,
            Some(6) => 16,
            Some(&family) => return Err(DecodeError::Family(family)),
            None => {
                return Err(DecodeError::Length {
                    got: 0,
                    expected: MAX_BODY - 12,
                })
            }
        };
        let expected = MAX_BODY - 16 + address_len;
        if body.len() != expected {
            return Err(DecodeError::Length {
                got: body.len(),
                expected,
            });
        }
        let (content, sum) = body.split_at(expected - CHECK);
        if check(content) != sum {
            return Err(DecodeError::Check);
        }
        let (address, rest) = content[1..].split_at(address_len);
        let ip = match <[u8; 4]>::try_from(address) {
            Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            Err(_) => IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(address).map_err(|_| DecodeError::Family(6))?,
            )),
        };
        let field = |range: std::ops::Range<usize>| &rest[range];
        let port = u16::from_be_bytes([rest[0], rest[1]]);
        let map_server = SocketAddr::new(ip, port);
        if port == 0 || ip.is_unspecified() || ip.is_multicast() {
            return Err(DecodeError::Unreachable(map_server));
        }
        let array = |range| <[u8; 32]>::try_from(field(range)).unwrap_or([0; 32]);
        Ok(Token {
            map_server,
            public_key: array(2..34),
            id: TokenId(<[u8; 8]>::try_from(field(34..42)).unwrap_or_default()),
            secret: array(42..74),
        })
    }
}

/// An enrolled node's Map-Register key: from the X25519 of the node's and
/// the map-server's WireGuard keys, so that it never crosses the underlay
/// and only the two can compute it. In base64url, as the configuration
/// files write a site's key (text, used as the HMAC key as it stands).
fn site_key(shared: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(derive(shared, b"node map-register"))
}

fn check(content: &[u8]) -> [u8; CHECK] {
    let digest = Sha256::digest(content);
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A key for one purpose from the token's secret: HMAC-SHA-256 keyed with
/// the secret over a label. The secret is already 32 uniformly random
/// bytes, so HKDF's extract step adds nothing (RFC 5869 section 3.3), and
/// one HMAC over a label is HKDF-Expand of one block: no dependency beyond
/// the HMAC the codec uses.
fn derive(secret: &[u8; 32], label: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return [0; 32];
    };
    mac.update(b"lispguard token v1 ");
    mac.update(label);
    mac.update(&[1]);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_and_the_map_server_derive_the_same_site_key() {
        let ms = crate::generate_private_key();
        let node = crate::generate_private_key();
        let token = Token {
            public_key: crate::public_key(&ms),
            ..token("192.0.2.1:4342")
        };
        let at_node = token.site_key(&node);
        assert_eq!(Token::site_key_of(&ms, &crate::public_key(&node)), at_node);
        assert_eq!(at_node.len(), 43);
        let other = crate::generate_private_key();
        assert_ne!(token.site_key(&other), at_node);
    }

    fn token(map_server: &str) -> Token {
        Token {
            map_server: map_server.parse().unwrap(),
            public_key: [0x11; 32],
            id: TokenId([1, 2, 3, 4, 5, 6, 7, 0xab]),
            secret: [0x5e; 32],
        }
    }

    #[test]
    fn a_token_round_trips_for_either_family() {
        for address in ["192.0.2.1:4342", "[2001:db8::1]:4342"] {
            let token = token(address);
            let text = token.encode();
            assert!(text.starts_with("lgt1."), "{text}");
            assert!(text.len() <= MAX_TEXT, "{text}");
            assert!(text
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c)));
            assert_eq!(Token::decode(&format!("  {text}\n")), Ok(token));
        }
    }

    #[test]
    fn generated_tokens_differ_and_the_register_key_is_not_the_secret() {
        let a = Token::generate("192.0.2.1:4342".parse().unwrap(), [1; 32]).unwrap();
        let b = Token::generate("192.0.2.1:4342".parse().unwrap(), [1; 32]).unwrap();
        assert_ne!(a.id, b.id);
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.register_key(), a.secret);
        assert_ne!(a.register_key(), b.register_key());
        assert_eq!(
            Token::decode(&a.encode()).unwrap().register_key(),
            a.register_key()
        );
    }

    #[test]
    fn hostile_strings_get_a_clear_error() {
        let text = token("192.0.2.1:4342").encode();
        let cases: Vec<(String, DecodeError)> = vec![
            ("".into(), DecodeError::Foreign),
            ("tskey-auth-k123".into(), DecodeError::Foreign),
            ("lgt.abc".into(), DecodeError::Foreign),
            ("lgt2.AAAA".into(), DecodeError::Version("2".into())),
            (
                "lgt1.".into(),
                DecodeError::Length {
                    got: 0,
                    expected: 83,
                },
            ),
            (format!("{text}="), DecodeError::NotBase64),
            (text.replace('.', ".+"), DecodeError::NotBase64),
            (
                text[..PREFIX.len() + 100].into(),
                DecodeError::Length {
                    got: 75,
                    expected: 83,
                },
            ),
            (
                format!("{text}AAAA"),
                DecodeError::Length {
                    got: 86,
                    expected: 83,
                },
            ),
            ("x".repeat(10_000), DecodeError::TooLong(10_000)),
        ];
        for (input, error) in cases {
            assert_eq!(Token::decode(&input), Err(error), "{input:?}");
        }
        // One character changed anywhere in the body: the check says so.
        for at in PREFIX.len()..text.len() - 1 {
            let mut mangled = text.clone().into_bytes();
            mangled[at] = if mangled[at] == b'A' { b'B' } else { b'A' };
            let mangled = String::from_utf8(mangled).unwrap();
            let error = Token::decode(&mangled).unwrap_err();
            assert!(
                matches!(error, DecodeError::Check | DecodeError::Family(_)),
                "at {at}: {error:?}"
            );
        }
        let unspecified = token("0.0.0.0:4342").encode();
        assert!(matches!(
            Token::decode(&unspecified),
            Err(DecodeError::Unreachable(_))
        ));
    }

    #[test]
    fn a_token_id_reads_back_from_its_hex() {
        let id = TokenId([1, 2, 3, 4, 5, 6, 7, 0xab]);
        assert_eq!(id.to_string(), "01020304050607ab");
        assert_eq!("01020304050607ab".parse(), Ok(id));
        for bad in [
            "",
            "0102",
            "01020304050607zz",
            "01020304050607abcd",
            "ü1020304050607a",
        ] {
            assert!(bad.parse::<TokenId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_debug_form_hides_the_secret() {
        let shown = format!("{:?}", token("192.0.2.1:4342"));
        assert!(!shown.contains("94"), "{shown}"); // 0x5e
        assert!(shown.contains("192.0.2.1:4342"), "{shown}");
    }

    proptest::proptest! {
        #[test]
        fn any_string_decodes_or_errs_without_panicking(text in "\\PC{0,200}") {
            let _ = Token::decode(&text);
            let _ = Token::decode(&format!("{PREFIX}{text}"));
        }

        #[test]
        fn any_token_round_trips(
            v6 in proptest::prelude::any::<bool>(),
            address in proptest::prelude::any::<[u8; 16]>(),
            port in 1u16..,
            key in proptest::prelude::any::<[u8; 32]>(),
            id in proptest::prelude::any::<[u8; 8]>(),
            secret in proptest::prelude::any::<[u8; 32]>(),
        ) {
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::from(address))
            } else {
                IpAddr::V4(Ipv4Addr::new(192, address[1], address[2], address[3]))
            };
            proptest::prop_assume!(!ip.is_unspecified() && !ip.is_multicast());
            let token = Token { map_server: SocketAddr::new(ip, port), public_key: key, id: TokenId(id), secret };
            proptest::prop_assert_eq!(Token::decode(&token.encode()), Ok(token));
        }
    }
}
