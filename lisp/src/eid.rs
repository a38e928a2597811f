//! EID-Prefix: an IP prefix within an instance ID, the key of every
//! mapping. Written `[IID] PREFIX`, as Wireshark and other LISP tools show
//! it (`[1000] 10.1.0.0/16`); the `[0] ` of the default instance may be
//! left out.

use crate::address::Address;
use core::fmt;
use core::str::FromStr;
use ipnet::IpNet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EidPrefix {
    pub iid: u32,
    /// Always in canonical form: no host bits set.
    pub prefix: IpNet,
}

impl EidPrefix {
    /// The prefix with its host bits cleared.
    pub fn new(iid: u32, prefix: IpNet) -> EidPrefix {
        EidPrefix {
            iid,
            prefix: prefix.trunc(),
        }
    }

    /// The EID-Prefix an address field and mask-len describe, if the
    /// address holds an IP address and the mask-len fits it.
    pub fn from_address(eid: &Address, mask_len: u8) -> Option<EidPrefix> {
        let prefix = IpNet::new(eid.ip()?, mask_len).ok()?;
        Some(EidPrefix::new(eid.instance_id(), prefix))
    }

    /// Whether `other` lies within this prefix, in the same instance.
    pub fn contains(&self, other: &EidPrefix) -> bool {
        self.iid == other.iid && self.prefix.contains(&other.prefix)
    }
}

impl fmt::Display for EidPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.iid, self.prefix)
    }
}

/// Why a string is not an EID-Prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EidPrefixError(pub String);

impl fmt::Display for EidPrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not an EID prefix: expected '[IID] PREFIX/LEN', e.g. '[1000] 10.1.0.0/16'",
            self.0
        )
    }
}

impl std::error::Error for EidPrefixError {}

impl FromStr for EidPrefix {
    type Err = EidPrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || EidPrefixError(s.to_string());
        let s = s.trim();
        let (iid, prefix) = match s.strip_prefix('[') {
            Some(rest) => {
                let (iid, prefix) = rest.split_once(']').ok_or_else(err)?;
                (iid.trim().parse().map_err(|_| err())?, prefix.trim())
            }
            None => (0, s),
        };
        let prefix: IpNet = prefix.parse().map_err(|_| err())?;
        if prefix.trunc() != prefix {
            return Err(err());
        }
        Ok(EidPrefix { iid, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_bracket_notation() {
        let p: EidPrefix = "[1000] 10.1.0.0/16".parse().unwrap();
        assert_eq!(p.iid, 1000);
        assert_eq!(p.to_string(), "[1000] 10.1.0.0/16");
        assert_eq!("2001:db8::/32".parse::<EidPrefix>().unwrap().iid, 0);
        assert!("[x] 10.0.0.0/8".parse::<EidPrefix>().is_err());
        // Host bits set: a typo more often than an intent.
        assert!("10.1.0.1/16".parse::<EidPrefix>().is_err());
    }

    #[test]
    fn containment_respects_the_instance() {
        let site: EidPrefix = "[1] 10.0.0.0/8".parse().unwrap();
        assert!(site.contains(&"[1] 10.1.0.0/16".parse().unwrap()));
        assert!(!site.contains(&"[2] 10.1.0.0/16".parse().unwrap()));
        assert!(!site.contains(&"[1] 11.0.0.0/16".parse().unwrap()));
    }

    #[test]
    fn from_an_address_field() {
        let eid = Address::eid(7, "10.1.2.3".parse().unwrap(), Some(&[1; 32]));
        let p = EidPrefix::from_address(&eid, 24).unwrap();
        assert_eq!(p.to_string(), "[7] 10.1.2.0/24");
        assert_eq!(EidPrefix::from_address(&eid, 33), None);
    }
}
