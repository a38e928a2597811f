//! `lispguard join TOKEN`: enrolment with a token the map-server's
//! operator gave (`lispguard-mapserver token create`), without an edit of
//! the map-server's configuration.
//!
//! The node makes its WireGuard key pair and sends each map-server the
//! token names (the issuer first, then the others of its group) at its
//! underlay listener the enrolment Map-Register ([`netconf::enrolment`]):
//! to the first, asking for what the token gives; to the later ones, for
//! the control address and EIDs the first gave.
//!
//! The Map-Notify, authenticated with the same key, carries this node's
//! control address, the map-server's own mapping (control address, the
//! WireGuard key the token pins, its WireGuard port) and the EIDs given.
//! The node's Map-Register key with each map-server is derived from the
//! X25519 of the two WireGuard keys: it never crosses the underlay. The
//! node writes its configuration with all that, and starts; it registers
//! with every map-server that enrolled it (RFC 9301's register-to-all).

use ipnet::IpNet;
use lisp::{auth, Address, EidPrefix, MapNotify, Record, XtrId};
use netconf::enrolment::{self, Asking};
use netconf::token::{MapServer, Token};
use netconf::PublicKey;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

/// How long each try waits for the Map-Notify; a new nonce each time (the
/// map-server refuses a nonce it saw: a replay).
const TRIES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// What the map-servers gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    pub control_address: IpAddr,
    pub eids: Vec<EidPrefix>,
    /// Each map-server that enrolled this node, in the token's order.
    pub map_servers: Vec<Enrolled>,
}

/// One map-server that enrolled this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrolled {
    pub public_key: PublicKey,
    pub control_address: IpAddr,
    /// Where this node reaches the map-server's WireGuard.
    pub endpoint: SocketAddr,
}

/// Enrols with every map-server `token` names, this node's WireGuard key
/// being the one whose private half is `private_key`. The first that
/// answers gives the addresses; the others are asked for the same. Also
/// returns, for each map-server that did not enrol this node, why: the
/// node works through the others, and `join --force` again enrols it
/// there (the same node asking again gets the same answer).
pub fn enrol(
    token: &Token,
    private_key: &[u8; 32],
    listen_port: u16,
) -> Result<(Joined, Vec<String>), String> {
    let public_key = netconf::public_key(private_key);
    // The node's id: from its key, so that asking again is the same node.
    let xtr_id = u128::from_be_bytes(public_key[..16].try_into().unwrap_or_default());
    let mut joined: Option<Joined> = None;
    let mut failed = Vec::new();
    for map_server in &token.map_servers {
        let asking = joined.as_ref().map(|j| Asking {
            control_address: j.control_address,
            eids: &j.eids,
        });
        let answer = enrol_with(token, map_server, &public_key, xtr_id, listen_port, asking);
        match (answer, &mut joined) {
            (Ok((control_address, eids, enrolled)), None) => {
                joined = Some(Joined {
                    control_address,
                    eids,
                    map_servers: vec![enrolled],
                })
            }
            (Ok((control_address, eids, enrolled)), Some(j)) => {
                if (control_address, &eids) != (j.control_address, &j.eids) {
                    failed.push(format!(
                        "the map-server at {} gave other addresses than the first",
                        map_server.address
                    ));
                    continue;
                }
                j.map_servers.push(enrolled);
            }
            (Err(e), _) => failed.push(e),
        }
    }
    match joined {
        Some(joined) => Ok((joined, failed)),
        None => Err(failed.join("; ")),
    }
}

/// The control address, EIDs and map-server `map_server` gave.
fn enrol_with(
    token: &Token,
    map_server: &MapServer,
    public_key: &PublicKey,
    xtr_id: u128,
    listen_port: u16,
    asking: Option<Asking>,
) -> Result<(IpAddr, Vec<EidPrefix>, Enrolled), String> {
    let address = map_server.address;
    let any = match address {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let socket = UdpSocket::bind((any, 0)).map_err(|e| format!("a UDP socket: {e}"))?;
    socket
        .connect(address)
        .map_err(|e| format!("the map-server at {address}: {e}"))?;
    // The address the map-server sees this node at, as its locator.
    let rloc = socket.local_addr().map_err(|e| e.to_string())?.ip();
    let random = || netconf::random::seed().map_err(|e| e.to_string());
    let xtr = XtrId {
        xtr_id,
        site_id: u64::from_be_bytes(token.id.0),
    };
    let rloc = SocketAddr::new(rloc, listen_port);
    let key = token.register_key();
    for wait in TRIES {
        let nonce = random()?;
        let message = enrolment::write(token, public_key, rloc, xtr.xtr_id, nonce, asking)?;
        if let Err(e) = socket.send(&message) {
            return Err(format!("sending to the map-server at {address}: {e}"));
        }
        socket
            .set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        let mut answer = [0u8; 1500];
        loop {
            let len = match socket.recv(&mut answer) {
                Ok(len) => len,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(format!("from the map-server at {address}: {e}")),
            };
            // Anything not signed with the token's key, or not the answer
            // to this try, is not the map-server's answer.
            let Ok(verified) = auth::verify(&answer[..len], &key) else {
                continue;
            };
            let Ok(notify) = MapNotify::parse(&verified) else {
                continue;
            };
            if notify.body.nonce != nonce || notify.body.xtr != Some(xtr) {
                continue;
            }
            return answered(map_server, public_key, &notify);
        }
    }
    Err(format!(
        "no answer from the map-server at {address} after {} tries: a map-server answers \
         nothing to a token it does not take (wrong, expired, used up or revoked: ask its \
         operator for `lispguard-mapserver token list`), or nothing of this node's reaches \
         it there",
        TRIES.len()
    ))
}

/// Reads the Map-Notify's records: this node's control address, the
/// map-server's mapping (its key must be the one the token pins), the EIDs.
fn answered(
    map_server: &MapServer,
    public_key: &[u8; 32],
    notify: &MapNotify,
) -> Result<(IpAddr, Vec<EidPrefix>, Enrolled), String> {
    let address = map_server.address;
    let records: Vec<Record> = notify.body.records.iter().collect();
    let host = |r: &Record| r.eid.ip();
    let (Some(own), Some(ms)) = (records.first(), records.get(1)) else {
        return Err(format!(
            "the map-server at {address}'s answer lacks the control addresses"
        ));
    };
    if own.eid.wireguard_key() != Some(*public_key) {
        return Err(format!(
            "the map-server at {address}'s answer is for another node"
        ));
    }
    if ms.eid.wireguard_key() != Some(map_server.public_key) {
        return Err(format!(
            "the map-server at {address}'s answer names a WireGuard key other than the token's"
        ));
    }
    let port = ms
        .locators
        .iter()
        .find_map(|l| match &l.rloc {
            Address::NatTraversal(n) => Some(n.etr_port),
            _ => None,
        })
        .ok_or_else(|| format!("the map-server at {address}'s answer lacks its WireGuard port"))?;
    let eids: Vec<EidPrefix> = records[2..]
        .iter()
        .filter_map(|r| EidPrefix::from_address(&r.eid, r.eid_mask_len))
        .collect();
    match (host(own), host(ms), eids.is_empty()) {
        (Some(control_address), Some(map_server_control), false) => Ok((
            control_address,
            eids,
            Enrolled {
                public_key: map_server.public_key,
                control_address: map_server_control,
                endpoint: SocketAddr::new(address.ip(), port),
            },
        )),
        _ => Err(format!(
            "the map-server at {address}'s answer lacks an address or an EID"
        )),
    }
}

/// The node's configuration from what `joined` gave: the map-servers with
/// this node's Map-Register key for each (derived from `private_key`), the
/// EIDs, `overlay` (the destinations resolved on demand), the key file.
pub struct Settings<'a> {
    pub token: &'a Token,
    pub joined: &'a Joined,
    pub private_key: &'a [u8; 32],
    pub overlay: &'a [IpNet],
    pub private_key_file: &'a Path,
}

impl Settings<'_> {
    /// As a TOML file.
    pub fn toml(&self) -> String {
        let overlay: Vec<String> = self.overlay.iter().map(|p| format!("\"{p}\"")).collect();
        let mut text = format!(
            "# Written by `lispguard join` (token {}). Check it with\n\
             #   lispguard check-config FILE\n\
             control_address = \"{}\"\n\
             overlay = [{}]\n\
             private_key_file = \"{}\"\n",
            self.token.id,
            self.joined.control_address,
            overlay.join(", "),
            self.private_key_file.display(),
        );
        for map_server in &self.joined.map_servers {
            text.push_str("\n[[map_server]]\n");
            for (name, value) in self.map_server(map_server) {
                let value = match name {
                    "port" => value,
                    _ => format!("\"{value}\""),
                };
                let _ = writeln!(text, "{name} = {value}");
            }
        }
        for eid in &self.joined.eids {
            let _ = write!(
                text,
                "\n[[eid]]\nprefix = \"{}\"\niid = {}\n",
                eid.prefix, eid.iid
            );
        }
        text
    }

    /// Into the UCI file `existing` (OpenWrt's /etc/config/lispguard, as
    /// the package installs it): the `agent` section gets the addresses
    /// and key file and is enabled, the map_server and eid sections are
    /// the map-server's and the EIDs given. A file that has a map-server
    /// already is this node's configuration: replaced only with `force`.
    pub fn uci(&self, existing: &str, force: bool) -> Result<String, String> {
        let mut file = uci::parse(existing).map_err(|e| format!("line {}: {e}", e.line))?;
        if !force && file.sections_of("map_server").next().is_some() {
            return Err("it has a map_server section: this node is configured \
                        (give --force to replace it)"
                .into());
        }
        file.sections
            .retain(|s| s.kind != "map_server" && s.kind != "eid");
        if file.sections_of("agent").next().is_none() {
            file.sections
                .insert(0, uci::Section::new("agent", Some("main".into())));
        }
        if let Some(agent) = file.sections.iter_mut().find(|s| s.kind == "agent") {
            agent.set("enabled", "1");
            agent.set("control_address", self.joined.control_address.to_string());
            // The token it enrolled with (`option token`, for the init
            // script) has done its work.
            for name in ["token", "private_key", "private_key_file", "overlay"] {
                agent.remove(name);
            }
            agent.set(
                "private_key_file",
                self.private_key_file.display().to_string(),
            );
            for prefix in self.overlay {
                agent.add_list("overlay", prefix.to_string());
            }
        }
        for (n, enrolled) in self.joined.map_servers.iter().enumerate() {
            let mut map_server = uci::Section::new("map_server", Some(format!("ms{}", n + 1)));
            for (name, value) in self.map_server(enrolled) {
                map_server.set(name, value);
            }
            file.sections.push(map_server);
        }
        for eid in &self.joined.eids {
            let mut section = uci::Section::new("eid", None);
            section.set("prefix", eid.prefix.to_string());
            section.set("iid", eid.iid.to_string());
            file.sections.push(section);
        }
        uci::write(&file).map_err(|e| e.to_string())
    }

    /// A map_server's options, as both formats name them.
    fn map_server(&self, enrolled: &Enrolled) -> [(&'static str, String); 5] {
        let endpoint = enrolled.endpoint;
        [
            ("address", endpoint.ip().to_string()),
            ("port", endpoint.port().to_string()),
            ("public_key", netconf::format_key(&enrolled.public_key)),
            ("control_address", enrolled.control_address.to_string()),
            (
                "key",
                Token::site_key(self.private_key, &enrolled.public_key),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const SHIPPED: &str = include_str!("../../openwrt/lispguard/files/lispguard.config");

    fn joined() -> (Token, Joined) {
        let token = Token {
            map_servers: Vec::new(),
            id: netconf::token::TokenId([1, 2, 3, 4, 5, 6, 7, 8]),
            grant: "iid=1000 uses=1 pool=10.9.0.0/24".into(),
            secret: [0x11; 32],
        };
        let map_server = |last: u8, key: u8| Enrolled {
            public_key: [key; 32],
            control_address: IpAddr::from([100, 64, 0, last]),
            endpoint: SocketAddr::from(([192, 0, 2, last], 51820)),
        };
        let joined = Joined {
            control_address: "100.64.1.3".parse().unwrap(),
            eids: vec!["[1000] 10.9.0.3/32".parse().unwrap()],
            map_servers: vec![map_server(1, 0xaa), map_server(254, 0xbb)],
        };
        (token, joined)
    }

    fn settings<'a>(token: &'a Token, joined: &'a Joined, overlay: &'a [IpNet]) -> Settings<'a> {
        Settings {
            token,
            joined,
            private_key: &[0x22; 32],
            overlay,
            private_key_file: Path::new("/etc/lispguard/agent.key"),
        }
    }

    #[cfg(feature = "toml")]
    #[test]
    fn both_formats_read_back_as_the_same_configuration() {
        let (token, joined) = joined();
        let overlay = ["10.0.0.0/8".parse().unwrap()];
        let written = settings(&token, &joined, &overlay);
        let (from_toml, _) = Config::parse_toml(Path::new("agent.toml"), &written.toml()).unwrap();
        let uci = written.uci(SHIPPED, false).unwrap();
        let (from_uci, _) = Config::parse_uci(Path::new("lispguard"), &uci).unwrap();
        assert_eq!(from_toml, from_uci);
        assert_eq!(from_uci.control_address, joined.control_address);
        // One map-server each, with the key derived for it.
        assert_eq!(from_uci.map_servers.len(), 2);
        for (configured, enrolled) in from_uci.map_servers.iter().zip(&joined.map_servers) {
            assert_eq!(
                configured.key,
                Token::site_key(&[0x22; 32], &enrolled.public_key)
            );
            assert_eq!(configured.port, 51820);
        }
        assert_ne!(from_uci.map_servers[0].key, from_uci.map_servers[1].key);
        assert_eq!(from_uci.eids[0].prefix, joined.eids[0].prefix);
        assert!(uci.contains("option enabled '1'"), "{uci}");
        // Configured now: a second join must be forced.
        assert!(written.uci(&uci, false).unwrap_err().contains("--force"));
        assert_eq!(written.uci(&uci, true).unwrap(), uci);
    }
}
