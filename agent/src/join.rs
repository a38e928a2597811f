//! `lispguard join TOKEN`: enrolment with a token the map-server's
//! operator gave (`lispguard-mapserver token create`), without an edit of
//! the map-server's configuration.
//!
//! The node makes its WireGuard key pair and sends the map-server's
//! underlay listener (the token names it) a Map-Register with the I bit:
//! Site-ID the token's id, xTR-ID a random id of this node, one record —
//! this node's WireGuard key around 0.0.0.0/0, "what the token gives" —
//! authenticated with the key derived from the token's secret. The
//! Map-Notify, authenticated with the same key, carries this node's
//! control address, the map-server's own mapping (control address, the
//! WireGuard key the token pins, its WireGuard port) and the EIDs given.
//! The node's Map-Register key from then on is derived from the X25519 of
//! the two WireGuard keys: it never crosses the underlay. The node writes
//! its configuration with all that, and starts.

use ipnet::IpNet;
use lisp::{
    auth, Address, Algorithm, EidPrefix, List, Locator, MapNotify, MapRegister, Record,
    Registration, XtrId,
};
use netconf::token::Token;
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

/// What the map-server gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    pub control_address: IpAddr,
    pub map_server_control: IpAddr,
    /// Where this node reaches the map-server's WireGuard.
    pub map_server_endpoint: SocketAddr,
    pub eids: Vec<EidPrefix>,
}

/// Enrols with `token`, this node's WireGuard key being the one whose
/// private half is `private_key`.
pub fn enrol(token: &Token, private_key: &[u8; 32], listen_port: u16) -> Result<Joined, String> {
    let public_key = netconf::public_key(private_key);
    let any = match token.map_server {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let socket = UdpSocket::bind((any, 0)).map_err(|e| format!("a UDP socket: {e}"))?;
    socket
        .connect(token.map_server)
        .map_err(|e| format!("the map-server at {}: {e}", token.map_server))?;
    // The address the map-server sees this node at, as its locator.
    let rloc = socket.local_addr().map_err(|e| e.to_string())?.ip();
    let random = || netconf::random::seed().map_err(|e| e.to_string());
    let xtr = XtrId {
        xtr_id: (u128::from(random()?) << 64) | u128::from(random()?),
        site_id: u64::from_be_bytes(token.id.0),
    };
    let rloc = SocketAddr::new(rloc, listen_port);
    let key = token.register_key();
    for wait in TRIES {
        let nonce = random()?;
        let message = register(token, &public_key, rloc, xtr.xtr_id, nonce)?;
        if let Err(e) = socket.send(&message) {
            return Err(format!(
                "sending to the map-server at {}: {e}",
                token.map_server
            ));
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
                Err(e) => return Err(format!("from the map-server at {}: {e}", token.map_server)),
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
            return joined(token, &public_key, &notify);
        }
    }
    Err(format!(
        "no answer from the map-server at {} after {} tries: a map-server answers nothing \
         to a token it does not take (wrong, expired, used up or revoked: ask its operator \
         for `lispguard-mapserver token list`), or nothing of this node's reaches it there",
        token.map_server,
        TRIES.len()
    ))
}

/// The enrolment Map-Register of the node with `public_key` and id
/// `xtr_id`, at `rloc`: one record, its key around 0.0.0.0/0 ("what the
/// token gives"), signed with the token's key.
pub fn register(
    token: &Token,
    public_key: &[u8; 32],
    rloc: SocketAddr,
    xtr_id: u128,
    nonce: u64,
) -> Result<Vec<u8>, String> {
    let locators = [Locator::reachable(Address::rloc(rloc))];
    let anything = EidPrefix::new(0, IpNet::V4(ipnet::Ipv4Net::default()));
    let records = [Record::mapping(&anything, Some(public_key), 1, &locators)];
    let register = MapRegister::new(Registration {
        nonce,
        key_id: 0,
        algorithm: Algorithm::HmacSha256_128,
        records: List::new(&records),
        xtr: Some(XtrId {
            xtr_id,
            site_id: u64::from_be_bytes(token.id.0),
        }),
    });
    let mut buf = vec![0; register.buffer_len()];
    let len = register
        .emit(&mut buf, &token.register_key())
        .map_err(|e| e.to_string())?;
    buf.truncate(len);
    Ok(buf)
}

/// Reads the Map-Notify's records: this node's control address, the
/// map-server's mapping (its key must be the one the token pins), the EIDs.
fn joined(token: &Token, public_key: &[u8; 32], notify: &MapNotify) -> Result<Joined, String> {
    let records: Vec<Record> = notify.body.records.iter().collect();
    let host = |r: &Record| r.eid.ip();
    let (Some(own), Some(ms)) = (records.first(), records.get(1)) else {
        return Err("the map-server's answer lacks the control addresses".into());
    };
    if own.eid.wireguard_key() != Some(*public_key) {
        return Err("the map-server's answer is for another node".into());
    }
    if ms.eid.wireguard_key() != Some(token.public_key) {
        return Err("the map-server's answer names a WireGuard key other than the token's".into());
    }
    let port = ms
        .locators
        .iter()
        .find_map(|l| match &l.rloc {
            Address::NatTraversal(n) => Some(n.etr_port),
            _ => None,
        })
        .ok_or("the map-server's answer lacks its WireGuard port")?;
    let eids: Vec<EidPrefix> = records[2..]
        .iter()
        .filter_map(|r| EidPrefix::from_address(&r.eid, r.eid_mask_len))
        .collect();
    match (host(own), host(ms), eids.is_empty()) {
        (Some(control_address), Some(map_server_control), false) => Ok(Joined {
            control_address,
            map_server_control,
            map_server_endpoint: SocketAddr::new(token.map_server.ip(), port),
            eids,
        }),
        _ => Err("the map-server's answer lacks an address or an EID".into()),
    }
}

/// The node's configuration from what `joined` gave: the map-server with
/// this node's derived Map-Register key, the EIDs, `overlay` (the
/// destinations resolved on demand), the key file.
pub struct Settings<'a> {
    pub token: &'a Token,
    pub joined: &'a Joined,
    pub site_key: &'a str,
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
             private_key_file = \"{}\"\n\n[[map_server]]\n",
            self.token.id,
            self.joined.control_address,
            overlay.join(", "),
            self.private_key_file.display(),
        );
        for (name, value) in self.map_server() {
            let value = match name {
                "port" => value,
                _ => format!("\"{value}\""),
            };
            let _ = writeln!(text, "{name} = {value}");
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
        let mut map_server = uci::Section::new("map_server", Some("ms1".into()));
        for (name, value) in self.map_server() {
            map_server.set(name, value);
        }
        file.sections.push(map_server);
        for eid in &self.joined.eids {
            let mut section = uci::Section::new("eid", None);
            section.set("prefix", eid.prefix.to_string());
            section.set("iid", eid.iid.to_string());
            file.sections.push(section);
        }
        uci::write(&file).map_err(|e| e.to_string())
    }

    /// The map_server options, as both formats name them.
    fn map_server(&self) -> [(&'static str, String); 5] {
        let endpoint = self.joined.map_server_endpoint;
        [
            ("address", endpoint.ip().to_string()),
            ("port", endpoint.port().to_string()),
            ("public_key", netconf::format_key(&self.token.public_key)),
            (
                "control_address",
                self.joined.map_server_control.to_string(),
            ),
            ("key", self.site_key.to_string()),
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
            map_server: "192.0.2.1:4342".parse().unwrap(),
            public_key: [0xaa; 32],
            id: netconf::token::TokenId([1, 2, 3, 4, 5, 6, 7, 8]),
            secret: [0x11; 32],
        };
        let joined = Joined {
            control_address: "100.64.1.3".parse().unwrap(),
            map_server_control: "100.64.0.1".parse().unwrap(),
            map_server_endpoint: "192.0.2.1:51820".parse().unwrap(),
            eids: vec!["[1000] 10.9.0.3/32".parse().unwrap()],
        };
        (token, joined)
    }

    fn settings<'a>(token: &'a Token, joined: &'a Joined, overlay: &'a [IpNet]) -> Settings<'a> {
        Settings {
            token,
            joined,
            site_key: "derived-key",
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
        assert_eq!(from_uci.map_servers[0].key, "derived-key");
        assert_eq!(from_uci.map_servers[0].port, 51820);
        assert_eq!(from_uci.eids[0].prefix, joined.eids[0].prefix);
        assert!(uci.contains("option enabled '1'"), "{uci}");
        // Configured now: a second join must be forced.
        assert!(written.uci(&uci, false).unwrap_err().contains("--force"));
        assert_eq!(written.uci(&uci, true).unwrap(), uci);
    }
}
