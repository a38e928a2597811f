//! What a site sends a map-server, for tests and the load generator: a
//! test topology's configuration and the messages of its agents.

#![allow(dead_code)]

use lisp::{
    Address, Algorithm, Ecm, EidPrefix, List, Locator, MapNotify, MapRegister, MapRequest, Record,
    Registration, RequestRecord, XtrId,
};
use mapserver::config::{format_key, Config};
use std::net::SocketAddr;
use std::path::Path;

/// A site of the test topology.
pub struct TestSite {
    pub name: &'static str,
    pub key: &'static [u8],
    pub public_key: [u8; 32],
    pub control_address: &'static str,
    pub eids: &'static [&'static str],
}

pub const A: TestSite = TestSite {
    name: "a",
    key: b"key of a",
    public_key: [0xaa; 32],
    control_address: "127.0.0.2",
    eids: &["[1000] 10.1.0.0/16"],
};
pub const B: TestSite = TestSite {
    name: "b",
    key: b"key of b",
    public_key: [0xbb; 32],
    control_address: "127.0.0.3",
    eids: &["[1000] 10.2.0.0/16"],
};
/// In another instance.
pub const C: TestSite = TestSite {
    name: "c",
    key: b"key of c",
    public_key: [0xcc; 32],
    control_address: "127.0.0.4",
    eids: &["[2] 10.3.0.0/16"],
};
/// May resolve site a only.
pub const D: TestSite = TestSite {
    name: "d",
    key: b"key of d",
    public_key: [0xdd; 32],
    control_address: "127.0.0.5",
    eids: &["[1000] 10.4.0.0/16"],
};

impl TestSite {
    /// Its `[[site]]` section, with control addresses on `net` (127.0.N.x)
    /// so that tests running side by side do not share addresses.
    pub fn toml(&self, net: u8) -> String {
        let eids: Vec<String> = self.eids.iter().map(|e| format!("\"{e}\"")).collect();
        let extra = if self.name == "d" {
            "may_resolve = [\"a\"]\n"
        } else {
            ""
        };
        format!(
            "[[site]]\nname = \"{}\"\nkey = \"{}\"\npublic_key = \"{}\"\ncontrol_address = \"{}\"\neids = [{}]\naccept_more_specifics = true\n{extra}\n",
            self.name,
            std::str::from_utf8(self.key).unwrap(),
            format_key(&self.public_key),
            self.control_address(net),
            eids.join(", ")
        )
    }

    pub fn control_address(&self, net: u8) -> std::net::IpAddr {
        let last: u8 = self
            .control_address
            .rsplit('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        std::net::IpAddr::from([127, net, 0, last])
    }

    /// Where its agent listens for pushes.
    pub fn control_socket(&self, net: u8) -> SocketAddr {
        SocketAddr::new(self.control_address(net), lisp::CONTROL_PORT)
    }

    /// A Map-Register of `eid` (mask-len included) at `rloc`, with M set.
    pub fn register(&self, nonce: u64, eid: &str, rloc: SocketAddr) -> Vec<u8> {
        self.register_with(nonce, eid, rloc, self.key, self.public_key)
    }

    pub fn register_with(
        &self,
        nonce: u64,
        eid: &str,
        rloc: SocketAddr,
        site_key: &[u8],
        public_key: [u8; 32],
    ) -> Vec<u8> {
        let eid: EidPrefix = eid.parse().unwrap();
        let locators = [Locator {
            local: true,
            ..Locator::reachable(Address::rloc(rloc))
        }];
        let records = [Record::mapping(&eid, Some(&public_key), 15, &locators)];
        register_records(nonce, &records, site_key, None)
    }

    /// The Map-Notify-Ack that answers a pushed Map-Notify.
    pub fn ack(&self, notify: &[u8]) -> Vec<u8> {
        let verified =
            lisp::auth::verify(notify, self.key).expect("push signed with the site's key");
        let notify = MapNotify::parse(&verified).unwrap();
        written(|b| notify.emit_ack(b, self.key))
    }
}

/// A Map-Request for one EID (`[IID] address/len`).
pub fn request(nonce: u64, eid: &str) -> Vec<u8> {
    request_with(nonce, eid, true)
}

/// A Map-Request for one EID, with or without the N bit (subscribe).
pub fn request_with(nonce: u64, eid: &str, notify: bool) -> Vec<u8> {
    let eid: EidPrefix = eid.parse().unwrap();
    let records = [RequestRecord {
        notify,
        eid_mask_len: eid.prefix.prefix_len(),
        eid: Address::eid(eid.iid, eid.prefix.addr(), None),
    }];
    let request = MapRequest::new(nonce, &[Address::None], &records);
    written(|b| request.emit(b))
}

pub fn written(write: impl FnOnce(&mut [u8]) -> Result<usize, lisp::WriteError>) -> Vec<u8> {
    let mut buf = vec![0; 4096];
    let len = write(&mut buf).unwrap();
    buf.truncate(len);
    buf
}

/// A configuration with `sites` on 127.N.0.x and `lisp` as the body of
/// its [lisp] section.
pub fn config(net: u8, sites: &[&TestSite], lisp: &str) -> Config {
    let mut text = format!(
        "control_address = \"127.{net}.0.1\"\n[wireguard]\nprivate_key_file = \"/dev/null\"\n[lisp]\n{lisp}\n"
    );
    for site in sites {
        text.push_str(&site.toml(net));
    }
    Config::parse(Path::new("test.toml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A standard LISP xTR: a site of kind "lisp", on the underlay, with a
/// shared key and prefixes and no WireGuard side.
pub struct LispXtr {
    pub name: &'static str,
    pub key: &'static [u8],
    pub eids: &'static [&'static str],
}

pub const X: LispXtr = LispXtr {
    name: "x",
    key: b"key of x",
    eids: &["[1000] 10.8.0.0/16"],
};
pub const Y: LispXtr = LispXtr {
    name: "y",
    key: b"key of y",
    eids: &["[1000] 10.9.0.0/16"],
};

impl LispXtr {
    /// Its `[[site]]` section, with `extra` options.
    pub fn toml(&self, extra: &str) -> String {
        let eids: Vec<String> = self.eids.iter().map(|e| format!("\"{e}\"")).collect();
        format!(
            "[[site]]\nname = \"{}\"\nkind = \"lisp\"\nkey = \"{}\"\neids = [{}]\naccept_more_specifics = true\n{extra}\n",
            self.name,
            std::str::from_utf8(self.key).unwrap(),
            eids.join(", ")
        )
    }

    /// A Map-Register of `eid` at the plain RLOC `rloc`, as a standard xTR
    /// sends it: no Security Key LCAF, M set, its xTR-ID if given (I bit).
    pub fn register(
        &self,
        nonce: u64,
        eid: &str,
        rloc: std::net::IpAddr,
        xtr: Option<XtrId>,
    ) -> Vec<u8> {
        plain_register(nonce, eid, rloc, self.key, xtr)
    }

    /// A Map-Request for `eid` from source EID `source` (its own host),
    /// encapsulated (ECM) by `itr` to the map-resolver at `resolver`.
    pub fn ecm_request(
        &self,
        nonce: u64,
        source: &str,
        eid: &str,
        itr: &Itr,
        resolver: SocketAddr,
    ) -> Vec<u8> {
        let source: EidPrefix = source.parse().unwrap();
        let eid: EidPrefix = eid.parse().unwrap();
        let records = [RequestRecord {
            notify: false,
            eid_mask_len: eid.prefix.prefix_len(),
            eid: Address::eid(eid.iid, eid.prefix.addr(), None),
        }];
        let rlocs: Vec<Address> = itr.rlocs.iter().map(|ip| Address::Ip(*ip)).collect();
        let request = MapRequest {
            source_eid: Address::eid(source.iid, source.prefix.addr(), None),
            ..MapRequest::new(nonce, &rlocs, &records)
        };
        let inner = written(|b| request.emit(b));
        let ecm = Ecm {
            security: false,
            ddt: false,
            to_etr: false,
            to_ms: false,
            source: SocketAddr::new(itr.address, itr.port),
            destination: resolver,
            message: &inner,
        };
        written(|b| ecm.emit(b))
    }
}

/// An ITR as its Map-Requests describe it.
pub struct Itr {
    /// Its own address: the inner IP source.
    pub address: std::net::IpAddr,
    /// Where it wants the answer (ITR-RLOCs), in order.
    pub rlocs: Vec<std::net::IpAddr>,
    /// The inner UDP source port: where the answer goes.
    pub port: u16,
}

/// A Map-Register without a WireGuard key, signed with `site_key`.
pub fn plain_register(
    nonce: u64,
    eid: &str,
    rloc: std::net::IpAddr,
    site_key: &[u8],
    xtr: Option<XtrId>,
) -> Vec<u8> {
    let eid: EidPrefix = eid.parse().unwrap();
    let locators = [Locator {
        local: true,
        ..Locator::reachable(Address::Ip(rloc))
    }];
    let records = [Record::mapping(&eid, None, 1440, &locators)];
    register_records(nonce, &records, site_key, xtr)
}

/// A Map-Register of `records`, signed with `site_key`.
fn register_records(
    nonce: u64,
    records: &[Record],
    site_key: &[u8],
    xtr: Option<XtrId>,
) -> Vec<u8> {
    let register = MapRegister::new(Registration {
        nonce,
        key_id: 0,
        algorithm: Algorithm::HmacSha256_128,
        records: List::new(records),
        xtr,
    });
    written(|b| register.emit(b, site_key))
}

/// [`config`] with plain LISP sites too, each with its extra options,
/// and the underlay listener on.
pub fn config_with_xtrs(
    net: u8,
    sites: &[&TestSite],
    xtrs: &[(&LispXtr, &str)],
    lisp: &str,
) -> Config {
    let mut text = format!(
        "control_address = \"127.{net}.0.1\"\n[wireguard]\nprivate_key_file = \"/dev/null\"\n[lisp]\nunderlay_listen = \"127.{net}.0.1:4342\"\n{lisp}\n"
    );
    for site in sites {
        text.push_str(&site.toml(net));
    }
    for (xtr, extra) in xtrs {
        text.push_str(&xtr.toml(extra));
    }
    Config::parse(Path::new("test.toml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A map-server process the test started; stopped (SIGTERM) and awaited
/// on drop.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}
