//! Issuing enrolment tokens: what the operator asks for (`token create`),
//! checked, and the record the map-server keeps of each token. The
//! token's secret is printed once and never kept: the record holds the key
//! derived from it ([`crate::token::Token::register_key`]).
//!
//! A token carries its grant as text, the request's own line with the
//! expiry as a unix time (`iid=1000 uses=20 until=1764400000
//! pool=10.9.0.0/24`): the map-servers of a group read a token another
//! issued from it ([`Issued::from_grant`]).

use crate::enrolment::EnrolmentConfig;
use crate::token::{MapServer, Token, TokenId, MAX_GRANT};
use ipnet::IpNet;
use lisp::EidPrefix;
use netconf::check::rules::{not_default, parse_prefix};
use netconf::PublicKey;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

/// The longest policy group name.
const MAX_GROUP: usize = 32;

/// The EIDs a token gives the nodes that enrol with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// One address (a /32 or /128) per node, out of this prefix.
    Pool(IpNet),
    /// These prefixes, to the one node the token enrols.
    Prefixes(Vec<IpNet>),
}

/// What the map-server keeps of a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub id: TokenId,
    /// The key of the enrolment Map-Register, derived from the secret.
    pub register_key: [u8; 32],
    pub iid: u32,
    pub grant: Grant,
    /// Enrolments it still allows.
    pub uses_left: u32,
    /// Unix seconds; None: never.
    pub expires: Option<i64>,
    /// The policy group its nodes join; None: none.
    pub group: Option<String>,
    pub revoked: bool,
    /// Unix seconds.
    pub created: i64,
}

/// Whether a token still enrols nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    Revoked,
    Expired,
    UsedUp,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Active => "active",
            State::Revoked => "revoked",
            State::Expired => "expired",
            State::UsedUp => "used up",
        })
    }
}

impl Issued {
    /// Its state at unix second `now`; revocation first, as the operator's.
    pub fn state(&self, now: i64) -> State {
        if self.revoked {
            State::Revoked
        } else if self.expires.is_some_and(|at| at <= now) {
            State::Expired
        } else if self.uses_left == 0 {
            State::UsedUp
        } else {
            State::Active
        }
    }
}

/// `token create`, as the CLI sends it over the control socket:
/// `iid=N uses=N [expires=SECONDS] [group=NAME] [address=IP] (pool=CIDR |
/// prefix=CIDR...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub iid: u32,
    pub grant: Grant,
    pub uses: u32,
    /// Seconds from its creation; None: never expires.
    pub lifetime: Option<u64>,
    /// Or when it expires, in unix seconds (a grant's text).
    pub until: Option<i64>,
    pub group: Option<String>,
    /// The address nodes reach the underlay listener at, when it listens
    /// on a wildcard address.
    pub address: Option<IpAddr>,
}

impl Request {
    /// The request's text on the control socket.
    pub fn to_line(&self) -> String {
        let mut line = format!("iid={} uses={}", self.iid, self.uses);
        if let Some(seconds) = self.lifetime {
            let _ = write!(line, " expires={seconds}");
        }
        if let Some(at) = self.until {
            let _ = write!(line, " until={at}");
        }
        if let Some(group) = &self.group {
            let _ = write!(line, " group={group}");
        }
        if let Some(address) = self.address {
            let _ = write!(line, " address={address}");
        }
        match &self.grant {
            Grant::Pool(pool) => {
                let _ = write!(line, " pool={pool}");
            }
            Grant::Prefixes(prefixes) => prefixes.iter().for_each(|p| {
                let _ = write!(line, " prefix={p}");
            }),
        }
        line
    }

    /// Reads [`Request::to_line`]'s text and checks every value.
    pub fn parse(line: &str) -> Result<Request, String> {
        let (mut iid, mut uses, mut lifetime, mut group, mut address) = (None, 1, None, None, None);
        let mut until = None;
        let (mut pool, mut prefixes) = (None, Vec::new());
        for field in line.split_whitespace() {
            let Some((name, value)) = field.split_once('=') else {
                return Err(format!("'{field}' is not NAME=VALUE"));
            };
            let number = |what: &str| {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{what} '{value}' is not a number"))
            };
            match name {
                "iid" => {
                    iid = Some(value.parse::<u32>().map_err(|_| {
                        format!("instance ID '{value}' is not a number from 0 to 4294967295")
                    })?)
                }
                "uses" => {
                    uses = u32::try_from(number("uses")?)
                        .map_err(|_| format!("uses {value}: too many"))?
                }
                "expires" => lifetime = Some(number("expires")?),
                "until" => {
                    until = Some(
                        i64::try_from(number("until")?)
                            .map_err(|_| format!("until {value}: too late"))?,
                    )
                }
                "group" => group = Some(check_group(value)?),
                "address" => {
                    address = Some(
                        value
                            .parse()
                            .map_err(|_| format!("'{value}' is not an IP address"))?,
                    )
                }
                "pool" => pool = Some(eid_prefix(value)?),
                "prefix" => prefixes.push(eid_prefix(value)?),
                _ => return Err(format!("unknown field '{name}'")),
            }
        }
        let grant = match (pool, prefixes.is_empty()) {
            (Some(pool), true) => Grant::Pool(pool),
            (None, false) => Grant::Prefixes(prefixes),
            (Some(_), false) => return Err("a pool or fixed prefixes, not both".into()),
            (None, true) => {
                return Err("the token gives no EIDs: give a pool or fixed prefixes".into())
            }
        };
        let request = Request {
            iid: iid.ok_or("no instance ID")?,
            grant,
            uses,
            lifetime,
            until,
            group,
            address,
        };
        if request.uses == 0 {
            return Err("uses 0: a token that enrols no node".into());
        }
        if request.lifetime == Some(0) {
            return Err("expires 0: a token already expired".into());
        }
        if matches!(request.grant, Grant::Prefixes(_)) && request.uses > 1 {
            return Err(format!(
                "fixed prefixes go to one node, not {}: give --uses 1, or a --pool",
                request.uses
            ));
        }
        Ok(request)
    }

    /// Every prefix the token may hand out, in its instance.
    pub fn eids(&self) -> Vec<EidPrefix> {
        let prefixes = match &self.grant {
            Grant::Pool(pool) => std::slice::from_ref(pool),
            Grant::Prefixes(prefixes) => prefixes.as_slice(),
        };
        prefixes
            .iter()
            .map(|p| EidPrefix::new(self.iid, *p))
            .collect()
    }

    /// When a token of this request, made at unix second `now`, expires.
    fn expires(&self, now: i64) -> Option<i64> {
        self.until.or_else(|| {
            self.lifetime
                .map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX)))
        })
    }

    /// Issues the token: `claimant` names the configured site, if any,
    /// that holds EIDs overlapping an EID of the request (the token must
    /// not hand out a site's addresses); `underlay` is where the map-server
    /// listens for the enrolment, `public_key` its WireGuard key. With a
    /// group in `enrolment`, the token names the group's map-servers after
    /// this one and its secret is the group's to derive.
    pub fn issue(
        &self,
        claimant: impl Fn(&EidPrefix) -> Option<String>,
        underlay: Option<SocketAddr>,
        public_key: PublicKey,
        enrolment: &EnrolmentConfig,
        now: i64,
    ) -> Result<(Token, Issued), String> {
        for eid in self.eids() {
            if let Some(site) = claimant(&eid) {
                return Err(format!(
                    "{eid} overlaps the EIDs of site '{site}': a token gives addresses no site holds"
                ));
            }
        }
        let Some(underlay) = underlay else {
            return Err("no underlay listener: a node enrols over the underlay, \
                 set [lisp] underlay_listen in the configuration and reload"
                .into());
        };
        let map_server = match (self.address, underlay.ip().is_unspecified()) {
            (Some(address), _) => SocketAddr::new(address, underlay.port()),
            (None, false) => underlay,
            (None, true) => {
                return Err(format!(
                    "the underlay listener is {underlay}, no address a node can reach: \
                     give --address, the map-server's address as nodes see it"
                ))
            }
        };
        let grant = Request {
            lifetime: None,
            until: self.expires(now),
            address: None,
            ..self.clone()
        }
        .to_line();
        if grant.len() > MAX_GRANT {
            return Err(format!(
                "the grant '{grant}' is longer than a token carries ({MAX_GRANT} bytes): \
                 give fewer prefixes"
            ));
        }
        let mut map_servers = vec![MapServer {
            address: map_server,
            public_key,
        }];
        map_servers.extend(&enrolment.group);
        let token = Token::generate(map_servers, grant, enrolment.group_secret.as_ref())
            .map_err(|e| e.to_string())?;
        let issued = self.issued(token.id, token.register_key(), now);
        Ok((token, issued))
    }

    /// The record of token `id` of this request, made at `now`.
    fn issued(&self, id: TokenId, register_key: [u8; 32], now: i64) -> Issued {
        Issued {
            id,
            register_key,
            iid: self.iid,
            grant: self.grant.clone(),
            uses_left: self.uses,
            expires: self.expires(now),
            group: self.group.clone(),
            revoked: false,
            created: now,
        }
    }
}

impl Issued {
    /// A group token another map-server issued, read from the grant its
    /// enrolment carried (verified with the key derived from it), first
    /// seen at `now`.
    pub fn from_grant(
        id: TokenId,
        register_key: [u8; 32],
        grant: &str,
        now: i64,
    ) -> Result<Issued, String> {
        Ok(Request::parse(grant)?.issued(id, register_key, now))
    }
}

/// A prefix of a pool or fixed grant: canonical, not a default route.
fn eid_prefix(text: &str) -> Result<IpNet, String> {
    parse_prefix(text).and_then(not_default)
}

/// A policy group's name, as tokens and `[[policy]]` give it.
pub fn check_group(name: &str) -> Result<String, String> {
    let fine = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || name.len() > MAX_GROUP || !name.chars().all(fine) {
        return Err(format!(
            "group '{name}': 1 to {MAX_GROUP} letters, digits, '-' or '_'"
        ));
    }
    Ok(name.to_string())
}

/// A lifetime as the operator writes it: `90s`, `30m`, `24h`, `7d`, or
/// `never`; seconds (None: never).
pub fn parse_lifetime(text: &str) -> Result<Option<u64>, String> {
    if text == "never" {
        return Ok(None);
    }
    let bad =
        || format!("'{text}' is not a lifetime: a number with s, m, h or d (e.g. 24h), or never");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    match number.checked_mul(unit) {
        Some(0) => Err(format!("'{text}': a token that is expired already")),
        Some(seconds) if seconds <= netconf::check::rules::MAX_SECONDS => Ok(Some(seconds)),
        _ => Err(format!("'{text}' is too long: give never")),
    }
}

/// `token list`: one token a line, never its secret.
pub fn table(tokens: &[Issued], now: i64) -> String {
    let mut out = format!(
        "{:<16} {:<10} {:<24} {:>9} {:<14} {:<12} {}\n",
        "ID", "IID", "EIDS", "USES LEFT", "EXPIRES IN", "GROUP", "STATE"
    );
    for t in tokens {
        let eids = match &t.grant {
            Grant::Pool(pool) => format!("pool {pool}"),
            Grant::Prefixes(prefixes) => prefixes
                .iter()
                .map(IpNet::to_string)
                .collect::<Vec<_>>()
                .join(","),
        };
        let expires = match t.expires {
            None => "never".into(),
            Some(at) if at <= now => "-".into(),
            Some(at) => span(at - now),
        };
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:<24} {:>9} {:<14} {:<12} {}",
            t.id,
            t.iid,
            eids,
            t.uses_left,
            expires,
            t.group.as_deref().unwrap_or("-"),
            t.state(now)
        );
    }
    out
}

fn span(seconds: i64) -> String {
    match seconds {
        ..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        3600..86400 => format!("{}h{:02}m", seconds / 3600, seconds / 60 % 60),
        _ => format!("{}d{:02}h", seconds / 86400, seconds / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(line: &str) -> Result<Request, String> {
        Request::parse(line)
    }

    #[test]
    fn a_request_reads_back_from_its_line() {
        let r = Request {
            iid: 1000,
            grant: Grant::Prefixes(vec![
                "10.9.1.0/24".parse().unwrap(),
                "fd00::/64".parse().unwrap(),
            ]),
            uses: 1,
            lifetime: Some(86400),
            until: None,
            group: Some("robots".into()),
            address: Some("192.0.2.1".parse().unwrap()),
        };
        assert_eq!(request(&r.to_line()), Ok(r));
        let pool = request("iid=7 uses=20 pool=10.9.0.0/24").unwrap();
        assert_eq!(pool.grant, Grant::Pool("10.9.0.0/24".parse().unwrap()));
        assert_eq!((pool.lifetime, pool.group), (None, None));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (line, says) in [
            (
                "iid=7 pool=10.9.0.5/24",
                "host bits set (did you mean 10.9.0.0/24?)",
            ),
            ("iid=7 pool=10.9.0.0/33", "prefix length 33"),
            ("iid=7 pool=banana", "not a prefix"),
            ("iid=7 pool=0.0.0.0/0", "every address"),
            ("iid=7", "no EIDs"),
            ("iid=7 pool=10.9.0.0/24 prefix=10.8.0.0/24", "not both"),
            ("iid=7 uses=2 prefix=10.8.0.0/24", "--uses 1"),
            ("iid=7 uses=0 pool=10.9.0.0/24", "enrols no node"),
            ("iid=x pool=10.9.0.0/24", "instance ID"),
            ("pool=10.9.0.0/24", "no instance ID"),
            ("iid=7 pool=10.9.0.0/24 group=a;b", "group 'a;b'"),
            (
                "iid=7 pool=10.9.0.0/24 colour=red",
                "unknown field 'colour'",
            ),
        ] {
            let error = request(line).unwrap_err();
            assert!(error.contains(says), "{line}: {error}");
        }
    }

    #[test]
    fn issuing_needs_an_underlay_listener_and_free_eids() {
        let r = request("iid=7 uses=3 expires=60 pool=10.9.0.0/24").unwrap();
        let nobody = |_: &EidPrefix| None;
        let key = [5; 32];
        let underlay = "192.0.2.1:4342".parse().ok();
        let alone = EnrolmentConfig {
            control_pool: "100.64.1.0/24".parse().unwrap(),
            group_secret: None,
            group: Vec::new(),
            policies: Vec::new(),
        };
        let error = r.issue(nobody, None, key, &alone, 1000).unwrap_err();
        assert!(error.contains("underlay_listen"), "{error}");
        let held = |e: &EidPrefix| (e.iid == 7).then(|| "campus".to_string());
        let error = r.issue(held, underlay, key, &alone, 1000).unwrap_err();
        assert!(error.contains("site 'campus'"), "{error}");
        let wildcard = "0.0.0.0:4342".parse().ok();
        let error = r.issue(nobody, wildcard, key, &alone, 1000).unwrap_err();
        assert!(error.contains("--address"), "{error}");

        let (token, issued) = r.issue(nobody, underlay, key, &alone, 1000).unwrap();
        let ms = |address: &str| MapServer {
            address: address.parse().unwrap(),
            public_key: key,
        };
        assert_eq!(token.map_servers, [ms("192.0.2.1:4342")]);
        assert_eq!(token.grant, "iid=7 uses=3 until=1060 pool=10.9.0.0/24");
        assert_eq!(issued.id, token.id);
        assert_eq!(issued.register_key, token.register_key());
        assert_ne!(issued.register_key, token.secret);
        assert_eq!((issued.uses_left, issued.expires), (3, Some(1060)));
        assert_eq!(issued.state(1059), State::Active);
        assert_eq!(issued.state(1060), State::Expired);
        let r = Request {
            address: Some("203.0.113.9".parse().unwrap()),
            ..r
        };
        let (token, _) = r.issue(nobody, wildcard, key, &alone, 1000).unwrap();
        assert_eq!(token.map_servers, [ms("203.0.113.9:4342")]);

        // In a group: the others follow, the secret is the group's, and
        // another map-server reads the same record from the grant.
        let other = MapServer {
            address: "192.0.2.2:4342".parse().unwrap(),
            public_key: [6; 32],
        };
        let grouped = EnrolmentConfig {
            group_secret: Some([9; 32]),
            group: vec![other],
            ..alone
        };
        let (token, issued) = r.issue(nobody, wildcard, key, &grouped, 1000).unwrap();
        assert_eq!(token.map_servers, [ms("203.0.113.9:4342"), other]);
        assert_eq!(
            token.secret,
            Token::group_secret(&[9; 32], token.id, &token.grant)
        );
        let learnt = Issued::from_grant(token.id, issued.register_key, &token.grant, 1030).unwrap();
        assert_eq!(
            learnt,
            Issued {
                created: 1030,
                ..issued
            }
        );
    }

    #[test]
    fn lifetimes_read_as_operators_write_them() {
        assert_eq!(parse_lifetime("90s"), Ok(Some(90)));
        assert_eq!(parse_lifetime("30m"), Ok(Some(1800)));
        assert_eq!(parse_lifetime("24h"), Ok(Some(86400)));
        assert_eq!(parse_lifetime("7d"), Ok(Some(604800)));
        assert_eq!(parse_lifetime("never"), Ok(None));
        for bad in ["", "24", "h", "1w", "-1h", "0h", "99999999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
