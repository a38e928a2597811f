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

/// The agent's TOML configuration for what `joined` gave: the map-server
/// with this node's derived Map-Register key, the EIDs, `overlay` (the
/// destinations resolved on demand), the key file.
pub fn config(
    token: &Token,
    joined: &Joined,
    site_key: &str,
    overlay: &[IpNet],
    private_key_file: &Path,
) -> String {
    let list = |items: &mut dyn Iterator<Item = String>| {
        items
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "# Written by `lispguard join` (token {}). Check it with\n\
         #   lispguard check-config FILE\n\
         control_address = \"{}\"\n\
         overlay = [{}]\n\
         private_key_file = \"{}\"\n\n\
         [[map_server]]\n\
         address = \"{}\"\n\
         port = {}\n\
         public_key = \"{}\"\n\
         control_address = \"{}\"\n\
         key = \"{site_key}\"\n",
        token.id,
        joined.control_address,
        list(&mut overlay.iter().map(|p| p.to_string())),
        private_key_file.display(),
        joined.map_server_endpoint.ip(),
        joined.map_server_endpoint.port(),
        netconf::format_key(&token.public_key),
        joined.map_server_control,
    );
    for eid in &joined.eids {
        let _ = write!(
            text,
            "\n[[eid]]\nprefix = \"{}\"\niid = {}\n",
            eid.prefix, eid.iid
        );
    }
    text
}
