//! The rules both daemons apply to their options, each in one place: a
//! value is checked the same way wherever it appears (TOML or UCI, agent
//! or map-server). Each takes a [`Value`] so it plugs into
//! [`Options::get`](super::Options::get).

use super::document::Value;
use super::options::{integer, text};
use ipnet::IpNet;
use std::net::IpAddr;

/// Linux's IFNAMSIZ less the terminating NUL. The kernel refuses longer
/// names for links, and a TUN opened by a longer name would be truncated
/// (attaching to another device).
pub const IFNAME_MAX: usize = 15;

/// The longest duration an option may set, in seconds: 2^31 - 1 (68
/// years). Every deadline is `now + duration` (registrations live 3 times
/// theirs); this bound keeps those sums far from overflowing any clock,
/// 32-bit `time_t` included, so a large value is an error here and never
/// a panic at run time.
pub const MAX_SECONDS: u64 = i32::MAX as u64;

/// An interface name the kernel accepts as is (`dev_valid_name`): 1 to 15
/// bytes, not `.` or `..`, no `/`, `:`, whitespace or NUL.
pub fn interface_name(value: &Value) -> Result<String, String> {
    let name = text(value)?;
    check_interface_name(name)?;
    Ok(name.to_string())
}

/// The rule of [`interface_name`], for names that come from elsewhere
/// (the daemons check again before they create a device).
pub fn check_interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an interface name must not be empty".into());
    }
    if name.len() > IFNAME_MAX {
        return Err(format!(
            "'{name}' is {} bytes, more than the {IFNAME_MAX} an interface name may have",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("'{name}' is not an interface name"));
    }
    if name.contains(|c: char| c == '/' || c == ':' || c == '%' || c == '\0' || c.is_whitespace()) {
        return Err(format!(
            "'{name}': an interface name has no '/', ':', '%' or whitespace"
        ));
    }
    Ok(())
}

/// How WireGuard is driven: `kernel` or `userspace` (wireguard-go).
pub fn backend(value: &Value) -> Result<crate::Backend, String> {
    match text(value)? {
        "kernel" => Ok(crate::Backend::Kernel),
        "userspace" => Ok(crate::Backend::Userspace),
        other => Err(format!("'{other}' is not 'kernel' or 'userspace'")),
    }
}

/// A duration in seconds, 1 to [`MAX_SECONDS`].
pub fn seconds(value: &Value) -> Result<u64, String> {
    in_range(value, "a number of seconds", 1, MAX_SECONDS)
}

/// A duration in minutes, 1 to [`MAX_SECONDS`] / 60.
pub fn minutes(value: &Value) -> Result<u32, String> {
    let minutes = in_range(value, "a number of minutes", 1, MAX_SECONDS / 60)?;
    // In range, so it fits.
    Ok(u32::try_from(minutes).unwrap_or(u32::MAX))
}

fn in_range(value: &Value, what: &str, min: u64, max: u64) -> Result<u64, String> {
    let n: i128 = integer(what)(value)?;
    if n < i128::from(min) {
        return Err(format!("{n}: must be at least {min}"));
    }
    if n > i128::from(max) {
        return Err(format!("{n} is too large: at most {max}"));
    }
    u64::try_from(n).map_err(|_| format!("{n} is not {what}"))
}

/// A port something listens on or sends to: 1 to 65535.
pub fn port(value: &Value) -> Result<u16, String> {
    let port: i128 = integer("a port number (1 to 65535)")(value)?;
    match u16::try_from(port) {
        Ok(0) => Err("port 0: a port number is 1 to 65535".into()),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("{port} is not a port number (1 to 65535)")),
    }
}

/// An address and port to listen on or send to: `ADDRESS:PORT`, IPv6 in
/// brackets, the port not 0.
pub fn socket_address(value: &Value) -> Result<std::net::SocketAddr, String> {
    let address: std::net::SocketAddr = super::options::parsed("an address:port")(value)?;
    if address.port() == 0 {
        return Err(format!("{address}: port 0: a port number is 1 to 65535"));
    }
    Ok(address)
}

/// A WireGuard key: 32 bytes in base64.
pub fn key(value: &Value) -> Result<[u8; 32], String> {
    crate::parse_key(text(value)?)
}

pub fn ip_address(value: &Value) -> Result<IpAddr, String> {
    let s = text(value)?;
    s.trim()
        .parse()
        .map_err(|_| format!("'{s}' is not an IP address"))
}

/// An IP prefix `ADDRESS/LENGTH` with no host bits set; the message says
/// which part is wrong.
pub fn prefix(value: &Value) -> Result<IpNet, String> {
    parse_prefix(text(value)?)
}

pub fn parse_prefix(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let Some((address, length)) = s.split_once('/') else {
        return Err(format!("'{s}' is not a prefix: expected ADDRESS/LENGTH"));
    };
    let address: IpAddr = address
        .parse()
        .map_err(|_| format!("'{s}': '{address}' is not an IP address"))?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let length: u8 = match length.parse() {
        Ok(n) if n <= max => n,
        Ok(n) => return Err(format!("'{s}': prefix length {n} is more than {max}")),
        Err(_) => return Err(format!("'{s}': '{length}' is not a prefix length")),
    };
    let prefix = IpNet::new(address, length).map_err(|e| format!("'{s}': {e}"))?;
    if prefix.trunc() != prefix {
        return Err(format!(
            "'{s}': host bits set (did you mean {}?)",
            prefix.trunc()
        ));
    }
    Ok(prefix)
}

/// An EID prefix: `[IID] ADDRESS/LENGTH` (the IID may be left out, for 0).
/// Not a default route: an EID of 0.0.0.0/0 or ::/0 would claim every
/// address of its instance.
pub fn eid_prefix(value: &Value) -> Result<(u32, IpNet), String> {
    parse_eid_prefix(text(value)?)
}

/// [`eid_prefix`] from text.
pub fn parse_eid_prefix(s: &str) -> Result<(u32, IpNet), String> {
    let s = s.trim();
    let bad = |why: String| {
        format!(
            "'{s}' is not an EID prefix ('[IID] ADDRESS/LENGTH', e.g. '[1000] 10.1.0.0/16'): {why}"
        )
    };
    let (iid, rest) = match s.strip_prefix('[') {
        Some(rest) => {
            let (iid, rest) = rest
                .split_once(']')
                .ok_or_else(|| bad("no ']' after the instance ID".into()))?;
            let iid = iid
                .trim()
                .parse()
                .map_err(|_| bad(format!("'{iid}' is not an instance ID (0 to 4294967295)")))?;
            (iid, rest)
        }
        None => (0, s),
    };
    let prefix = parse_prefix(rest).map_err(bad)?;
    not_default(prefix).map_err(bad)?;
    Ok((iid, prefix))
}

/// Refuses 0.0.0.0/0 and ::/0 as an EID.
pub fn not_default(prefix: IpNet) -> Result<IpNet, String> {
    if prefix.prefix_len() == 0 {
        return Err(format!(
            "{prefix} would claim every address; an EID prefix is a site's own"
        ));
    }
    Ok(prefix)
}

/// The one name in `known` close to `name` (a typo: at most 2 edits, or a
/// third of its length), if there is exactly one closest.
pub fn closest<'k>(name: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    let limit = (name.chars().count() / 3).clamp(1, 2);
    let mut best: Option<(usize, &str)> = None;
    let mut tie = false;
    for candidate in known {
        let d = edit_distance(name, candidate);
        if d > limit || best.is_some_and(|(_, b)| b == candidate) {
            continue;
        }
        match best {
            Some((bd, _)) if d > bd => {}
            Some((bd, _)) if d == bd => tie = true,
            _ => {
                best = Some((d, candidate));
                tie = false;
            }
        }
    }
    best.filter(|_| !tie).map(|(_, name)| name)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(previous + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn interface_names_follow_the_kernel() {
        assert!(interface_name(&t("lg0")).is_ok());
        assert!(interface_name(&t("fifteen-bytes-x")).is_ok());
        let long = interface_name(&t("sixteen-bytes-xx")).unwrap_err();
        assert!(long.contains("16 bytes"), "{long}");
        assert!(interface_name(&t("")).is_err());
        for bad in [".", "..", "a/b", "a b", "a:1", "a\tb"] {
            assert!(interface_name(&t(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_say_what_is_wrong() {
        assert_eq!(
            parse_prefix("10.0.0.0/33").unwrap_err(),
            "'10.0.0.0/33': prefix length 33 is more than 32"
        );
        assert!(parse_prefix("10.1.0.1/16")
            .unwrap_err()
            .contains("did you mean 10.1.0.0/16"));
        assert!(parse_prefix("ten/8")
            .unwrap_err()
            .contains("'ten' is not an IP address"));
        assert!(eid_prefix(&t("[1] 0.0.0.0/0")).is_err());
        assert!(eid_prefix(&t("::/0")).is_err());
        assert_eq!(
            eid_prefix(&t("[7] 10.1.0.0/16")).unwrap(),
            (7, "10.1.0.0/16".parse().unwrap())
        );
    }

    #[test]
    fn durations_and_ports_have_bounds() {
        assert_eq!(seconds(&Value::Integer(60)), Ok(60));
        assert!(seconds(&Value::Integer(0)).is_err());
        assert!(seconds(&Value::Integer(i128::from(u64::MAX))).is_err());
        assert!(minutes(&t("99999999999")).is_err());
        assert!(port(&Value::Integer(0)).is_err());
        assert!(port(&Value::Integer(70000)).is_err());
        assert_eq!(port(&t("51820")), Ok(51820));
    }

    #[test]
    fn a_typo_gets_one_suggestion() {
        let known = ["listen_port", "interface", "private_key_file"];
        assert_eq!(
            closest("listen_prot", known.into_iter()),
            Some("listen_port")
        );
        assert_eq!(closest("colour", known.into_iter()), None);
        assert_eq!(closest("a", ["b", "c"].into_iter()), None);
    }
}
