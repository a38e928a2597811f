//! Enrolment tokens: one printable string an operator copies from a
//! map-server to a node, carrying all the node needs to trust the
//! map-servers it enrols with and be trusted by them — each one's underlay
//! address and port and WireGuard public key (pinned: there is no CA), the
//! token's id, what it gives (its grant) and a 32-byte secret.
//!
//! ```text
//! lgt2.<base64url, no padding, of:>
//!   count 1 | count × (family 1 (4 or 6) | address 4 or 16 | port 2 | public key 32)
//!   | id 8 | grant length 1 | grant | secret 32 | check 4
//! ```
//!
//! The map-server that issued it comes first; the others are the map-servers
//! of its group, which share a secret: a group token's secret is derived
//! from that and the id and grant ([`Token::group_secret`]), so that each
//! verifies the node's enrolment with no state from the issuer. The grant is
//! printable text (`iid=1000 uses=20 pool=10.9.0.0/24`) that the enrolment
//! carries as a Distinguished Name. The version is in the prefix, so a later
//! format is told apart before any decoding. `check` is the start of the
//! SHA-256 of the bytes before it: a mistyped or mangled copy is an error
//! here, not an enrolment that goes unanswered. A map-server keeps only keys
//! derived from the secret ([`Token::register_key`]), never the secret.

use crate::PublicKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// What every token of this format starts with.
pub const PREFIX: &str = "lgt2.";

/// The most map-servers a token names.
pub const MAX_MAP_SERVERS: usize = 4;
/// The longest grant, in bytes.
pub const MAX_GRANT: usize = 200;
/// Bytes of the check.
const CHECK: usize = 4;
/// One map-server, the longest (IPv6).
const MAX_MEMBER: usize = 1 + 16 + 2 + 32;
/// The longest body of this format.
const MAX_BODY: usize = 1 + MAX_MAP_SERVERS * MAX_MEMBER + 8 + 1 + MAX_GRANT + 32 + CHECK;
/// The longest text decoded at all: longer is not a token of this format.
const MAX_TEXT: usize = PREFIX.len() + MAX_BODY.div_ceil(3) * 4;

/// A token's id: 8 random bytes, shown in hex. It names the token in the
/// store, in `token list` and `token revoke`, and is the Site-ID of the
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

/// A map-server a token names: where its underlay listener is, and its
/// WireGuard key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapServer {
    pub address: SocketAddr,
    pub public_key: PublicKey,
}

/// An enrolment token, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The issuer first, then the others of its group.
    pub map_servers: Vec<MapServer>,
    pub id: TokenId,
    /// What it gives, as the map-servers read it: printable ASCII.
    pub grant: String,
    pub secret: [u8; 32],
}

// The secret stays out of logs and panics.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map_servers: Vec<String> = self
            .map_servers
            .iter()
            .map(|m| format!("{} {}", m.address, crate::key_fingerprint(&m.public_key)))
            .collect();
        f.debug_struct("Token")
            .field("map_servers", &map_servers)
            .field("id", &self.id)
            .field("grant", &self.grant)
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
    /// It ends inside a field, or goes on after the check: cut or joined
    /// when copied.
    Length { got: usize },
    /// No map-server, or more than a token names.
    MapServers(u8),
    /// An address family byte other than 4 or 6.
    Family(u8),
    /// A grant that is not printable text.
    Grant,
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
                "a lispguard token of version '{v}'; this release reads '{PREFIX}' tokens \
                 (ask the map-server's operator for a new one)"
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
            DecodeError::Length { got } => write!(
                f,
                "the token's {got} bytes do not add up: cut or joined when copied"
            ),
            DecodeError::MapServers(n) => write!(
                f,
                "the token names {n} map-servers (1 to {MAX_MAP_SERVERS})"
            ),
            DecodeError::Family(family) => write!(f, "the token names address family {family}"),
            DecodeError::Grant => write!(f, "the token's grant is not text"),
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
    /// A new token for `map_servers` (the issuer first) giving `grant`: a
    /// random id from the OS, and a random secret, or with `group` (the
    /// secret the map-servers share) the secret derived from it.
    pub fn generate(
        map_servers: Vec<MapServer>,
        grant: String,
        group: Option<&[u8; 32]>,
    ) -> std::io::Result<Token> {
        let mut random = [0; 40];
        getrandom::fill(&mut random)
            .map_err(|e| std::io::Error::other(format!("no randomness for a token: {e}")))?;
        let (id, secret) = random.split_at(8);
        let id = TokenId(id.try_into().unwrap_or_default());
        let secret = match group {
            Some(group) => Token::group_secret(group, id, &grant),
            None => secret.try_into().unwrap_or([0; 32]),
        };
        Ok(Token {
            map_servers,
            id,
            grant,
            secret,
        })
    }

    /// The secret of group token `id` giving `grant`, from the secret the
    /// group's map-servers share: each computes it from the enrolment
    /// alone, and a changed grant is another secret.
    pub fn group_secret(group: &[u8; 32], id: TokenId, grant: &str) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(group) else {
            return [0; 32];
        };
        mac.update(b"lispguard token v2 group secret ");
        mac.update(&id.0);
        mac.update(grant.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The key that authenticates the enrolment Map-Register (and its
    /// Map-Notify): what the map-server stores instead of the secret.
    pub fn register_key(&self) -> [u8; 32] {
        Token::register_key_of(&self.secret)
    }

    /// The same, from a secret.
    pub fn register_key_of(secret: &[u8; 32]) -> [u8; 32] {
        derive(secret, b"enrolment map-register")
    }

    /// An enrolled node's Map-Register key with one map-server: from the
    /// X25519 of the two WireGuard keys, so that it never crosses the
    /// underlay and only the two can compute it — the node with its private
    /// key and the map-server's public one, the map-server the reverse. In
    /// base64url, as the configuration files write a site's key (text,
    /// used as the HMAC key as it stands).
    pub fn site_key(own_private: &[u8; 32], other_public: &PublicKey) -> String {
        let shared = x25519_dalek::x25519(*own_private, *other_public);
        URL_SAFE_NO_PAD.encode(derive(&shared, b"node map-register"))
    }

    /// The printable form, `lgt2.` and base64url.
    pub fn encode(&self) -> String {
        let mut body = Vec::with_capacity(MAX_BODY);
        body.push(self.map_servers.len() as u8);
        for m in &self.map_servers {
            match m.address.ip() {
                IpAddr::V4(a) => {
                    body.push(4);
                    body.extend_from_slice(&a.octets());
                }
                IpAddr::V6(a) => {
                    body.push(6);
                    body.extend_from_slice(&a.octets());
                }
            }
            body.extend_from_slice(&m.address.port().to_be_bytes());
            body.extend_from_slice(&m.public_key);
        }
        body.extend_from_slice(&self.id.0);
        body.push(self.grant.len() as u8);
        body.extend_from_slice(self.grant.as_bytes());
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
        let short = DecodeError::Length { got: body.len() };
        if body.len() < CHECK {
            return Err(short);
        }
        let (content, sum) = body.split_at(body.len() - CHECK);
        let mut r = Reader(content);
        let count = r.take(1).ok_or(short.clone())?[0];
        if count == 0 || usize::from(count) > MAX_MAP_SERVERS {
            return Err(DecodeError::MapServers(count));
        }
        let mut map_servers = Vec::with_capacity(count.into());
        for _ in 0..count {
            let family = r.take(1).ok_or(short.clone())?[0];
            let ip = match family {
                4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>().ok_or(short.clone())?)),
                6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>().ok_or(short.clone())?)),
                _ => return Err(DecodeError::Family(family)),
            };
            let port = u16::from_be_bytes(r.array().ok_or(short.clone())?);
            let public_key = r.array().ok_or(short.clone())?;
            map_servers.push(MapServer {
                address: SocketAddr::new(ip, port),
                public_key,
            });
        }
        let id = TokenId(r.array().ok_or(short.clone())?);
        let grant_len = r.take(1).ok_or(short.clone())?[0];
        let grant = r.take(grant_len.into()).ok_or(short.clone())?;
        let secret = r.array().ok_or(short.clone())?;
        if !r.0.is_empty() {
            return Err(short);
        }
        if check(content) != sum {
            return Err(DecodeError::Check);
        }
        let grant = std::str::from_utf8(grant)
            .ok()
            .filter(|g| g.bytes().all(|b| b == b' ' || b.is_ascii_graphic()))
            .ok_or(DecodeError::Grant)?;
        if let Some(m) = map_servers.iter().find(|m| {
            let ip = m.address.ip();
            m.address.port() == 0 || ip.is_unspecified() || ip.is_multicast()
        }) {
            return Err(DecodeError::Unreachable(m.address));
        }
        Ok(Token {
            map_servers,
            id,
            grant: grant.to_string(),
            secret,
        })
    }
}

/// Reads a token's body field by field; None: it ended inside one.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (field, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(field)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

fn check(content: &[u8]) -> [u8; CHECK] {
    let digest = Sha256::digest(content);
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A key for one purpose from a secret: HMAC-SHA-256 keyed with the secret
/// over a label. The secret is already 32 uniformly random bytes, so
/// HKDF's extract step adds nothing (RFC 5869 section 3.3), and one HMAC
/// over a label is HKDF-Expand of one block: no dependency beyond the HMAC
/// the codec uses.
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

    const GRANT: &str = "iid=1000 uses=20 pool=10.9.0.0/24";

    fn member(address: &str) -> MapServer {
        MapServer {
            address: address.parse().unwrap(),
            public_key: [0x11; 32],
        }
    }

    fn token(addresses: &[&str]) -> Token {
        Token {
            map_servers: addresses.iter().map(|a| member(a)).collect(),
            id: TokenId([1, 2, 3, 4, 5, 6, 7, 0xab]),
            grant: GRANT.into(),
            secret: [0x5e; 32],
        }
    }

    #[test]
    fn the_node_and_the_map_server_derive_the_same_site_key() {
        let ms = crate::generate_private_key();
        let node = crate::generate_private_key();
        let at_node = Token::site_key(&node, &crate::public_key(&ms));
        assert_eq!(Token::site_key(&ms, &crate::public_key(&node)), at_node);
        assert_eq!(at_node.len(), 43);
        let other = crate::generate_private_key();
        assert_ne!(Token::site_key(&other, &crate::public_key(&ms)), at_node);
    }

    #[test]
    fn a_token_round_trips_for_either_family_and_several_map_servers() {
        for addresses in [
            &["192.0.2.1:4342"][..],
            &["[2001:db8::1]:4342"],
            &[
                "192.0.2.1:4342",
                "[2001:db8::2]:4342",
                "198.51.100.3:4342",
                "[2001:db8::4]:1",
            ],
        ] {
            let token = token(addresses);
            let text = token.encode();
            assert!(text.starts_with("lgt2."), "{text}");
            assert!(text.len() <= MAX_TEXT, "{text}");
            assert!(text
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c)));
            assert_eq!(Token::decode(&format!("  {text}\n")), Ok(token));
        }
        let longest = Token {
            grant: "g".repeat(MAX_GRANT),
            ..token(&["[2001:db8::1]:4342"; MAX_MAP_SERVERS])
        };
        assert_eq!(longest.encode().len(), MAX_TEXT);
        assert_eq!(Token::decode(&longest.encode()), Ok(longest));
    }

    #[test]
    fn a_group_token_s_secret_is_derived_from_the_group_s_and_its_grant() {
        let group = [9; 32];
        let a =
            Token::generate(vec![member("192.0.2.1:4342")], GRANT.into(), Some(&group)).unwrap();
        assert_eq!(a.secret, Token::group_secret(&group, a.id, GRANT));
        assert_ne!(
            a.secret,
            Token::group_secret(&group, a.id, "iid=1000 uses=21 pool=10.9.0.0/24")
        );
        assert_ne!(a.secret, Token::group_secret(&[8; 32], a.id, GRANT));
        let b = Token::generate(vec![member("192.0.2.1:4342")], GRANT.into(), None).unwrap();
        assert_ne!(a.id, b.id);
        assert_ne!(b.secret, Token::group_secret(&group, b.id, GRANT));
        assert_ne!(a.register_key(), a.secret);
        assert_ne!(a.register_key(), b.register_key());
        assert_eq!(
            Token::decode(&a.encode()).unwrap().register_key(),
            a.register_key()
        );
    }

    #[test]
    fn hostile_strings_get_a_clear_error() {
        let text = token(&["192.0.2.1:4342"]).encode();
        let cases: Vec<(String, DecodeError)> = vec![
            ("".into(), DecodeError::Foreign),
            ("tskey-auth-k123".into(), DecodeError::Foreign),
            ("lgt.abc".into(), DecodeError::Foreign),
            ("lgt1.AAAA".into(), DecodeError::Version("1".into())),
            ("lgt2.".into(), DecodeError::Length { got: 0 }),
            (format!("{text}="), DecodeError::NotBase64),
            (text.replace('.', ".+"), DecodeError::NotBase64),
            (
                text[..PREFIX.len() + 100].into(),
                DecodeError::Length { got: 75 },
            ),
            (format!("{text}AAAA"), DecodeError::Length { got: 121 }),
            ("x".repeat(10_000), DecodeError::TooLong(10_000)),
            (
                format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode([0u8; 10])),
                DecodeError::MapServers(0),
            ),
            (
                format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode([5u8; 10])),
                DecodeError::MapServers(5),
            ),
        ];
        for (input, error) in cases {
            assert_eq!(Token::decode(&input), Err(error), "{input:?}");
        }
        // One character changed anywhere in the body: an error says so.
        for at in PREFIX.len()..text.len() - 1 {
            let mut mangled = text.clone().into_bytes();
            mangled[at] = if mangled[at] == b'A' { b'B' } else { b'A' };
            let mangled = String::from_utf8(mangled).unwrap();
            assert!(Token::decode(&mangled).is_err(), "at {at}");
        }
        let unspecified = token(&["192.0.2.1:4342", "0.0.0.0:4342"]).encode();
        assert!(matches!(
            Token::decode(&unspecified),
            Err(DecodeError::Unreachable(_))
        ));
        let control = Token {
            grant: "iid=1\n".into(),
            ..token(&["192.0.2.1:4342"])
        };
        assert_eq!(Token::decode(&control.encode()), Err(DecodeError::Grant));
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
        let shown = format!("{:?}", token(&["192.0.2.1:4342"]));
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
        fn any_bytes_decode_or_err_without_panicking(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = Token::decode(&format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(body)));
        }

        #[test]
        fn any_token_round_trips(
            v6 in proptest::prelude::any::<bool>(),
            address in proptest::prelude::any::<[u8; 16]>(),
            port in 1u16..,
            key in proptest::prelude::any::<[u8; 32]>(),
            id in proptest::prelude::any::<[u8; 8]>(),
            grant in "[ -~]{0,200}",
            secret in proptest::prelude::any::<[u8; 32]>(),
        ) {
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::from(address))
            } else {
                IpAddr::V4(Ipv4Addr::new(192, address[1], address[2], address[3]))
            };
            proptest::prop_assume!(!ip.is_unspecified() && !ip.is_multicast());
            let token = Token {
                map_servers: vec![MapServer { address: SocketAddr::new(ip, port), public_key: key }],
                id: TokenId(id),
                grant,
                secret,
            };
            proptest::prop_assert_eq!(Token::decode(&token.encode()), Ok(token));
        }
    }
}
