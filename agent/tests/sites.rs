//! End to end, real everything: network namespaces, wireguard-go, the
//! map-server and two agents as processes, and a LAN host behind each
//! agent. Needs root, iproute2, wireguard-go, ping.

mod e2e;

use e2e::{binary, exec, link, ping, route, sysctl, Namespaces, Process};
use std::path::Path;

/// A WireGuard key pair: the private key written to `file`, the public key
/// returned in base64.
fn keypair(file: &Path) -> String {
    let private = netconf::generate_private_key();
    std::fs::write(file, netconf::format_key(&private)).unwrap();
    netconf::format_key(&netconf::public_key(&private))
}

/// The underlay router, the map-server and xTRs A and B with LAN hosts.
struct TwoSites {
    ns: Namespaces,
    ms: String,
    xa: String,
    xb: String,
    ha: String,
    hb: String,
}

/// A packet counter of an interface in a namespace.
fn counter(ns: &str, interface: &str, which: &str) -> u64 {
    let out = exec(
        ns,
        &[
            "cat",
            &format!("/sys/class/net/{interface}/statistics/{which}"),
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

impl TwoSites {
    fn new(tag: &str) -> TwoSites {
        let mut ns = Namespaces::new(tag);
        let router = ns.add(&format!("{tag}-r"));
        let ms = ns.add(&format!("{tag}-ms"));
        let xa = ns.add(&format!("{tag}-xa"));
        let xb = ns.add(&format!("{tag}-xb"));
        let ha = ns.add(&format!("{tag}-ha"));
        let hb = ns.add(&format!("{tag}-hb"));
        for n in [&router, &xa, &xb] {
            sysctl(n, "net.ipv4.ip_forward", "1");
        }
        link(&router, "r-ms", "172.31.1.1/24", &ms, "u0", "172.31.1.2/24");
        link(&router, "r-xa", "172.31.2.1/24", &xa, "u0", "172.31.2.2/24");
        link(&router, "r-xb", "172.31.3.1/24", &xb, "u0", "172.31.3.2/24");
        route(&ms, "default", "172.31.1.1");
        route(&xa, "default", "172.31.2.1");
        route(&xb, "default", "172.31.3.1");
        link(&xa, "lan", "10.1.0.1/24", &ha, "eth0", "10.1.0.2/24");
        link(&xb, "lan", "10.2.0.1/24", &hb, "eth0", "10.2.0.2/24");
        route(&ha, "default", "10.1.0.1");
        route(&hb, "default", "10.2.0.1");
        TwoSites {
            ns,
            ms,
            xa,
            xb,
            ha,
            hb,
        }
    }

    fn start(&self) -> (Process, Process, Process) {
        let dir = &self.ns.dir;
        let ms_public = keypair(&dir.join("ms.key"));
        let a_public = keypair(&dir.join("a.key"));
        let b_public = keypair(&dir.join("b.key"));
        let site = |name: &str, public: &str, control: &str, eid: &str| {
            format!(
                "[[site]]\nname = \"{name}\"\nkey = \"key {name}\"\npublic_key = \"{public}\"\n\
                 control_address = \"{control}\"\neids = [\"{eid}\"]\n"
            )
        };
        let ms_config = self.ns.file(
            "ms.toml",
            &format!(
                "control_address = \"100.64.0.1\"\n\
                 [wireguard]\ninterface = \"lgems\"\nbackend = \"userspace\"\n\
                 private_key_file = \"{}\"\n\
                 [lisp]\nmetrics = \"127.0.0.1:9090\"\ncontrol_socket = \"{}\"\n{}{}",
                dir.join("ms.key").display(),
                dir.join("ms.sock").display(),
                site("a", &a_public, "100.64.0.2", "[1000] 10.1.0.0/24"),
                site("b", &b_public, "100.64.0.3", "[1000] 10.2.0.0/24"),
            ),
        );
        let agent = |name: &str, control: &str, eid: &str| {
            self.ns.file(
                &format!("{name}.toml"),
                &format!(
                    "interface = \"lge{name}0\"\ntun = \"lge{name}t\"\nbackend = \"userspace\"\n\
                     private_key_file = \"{}\"\ncontrol_address = \"{control}\"\n\
                     overlay = [\"10.0.0.0/8\"]\nstatus_socket = \"{}\"\n\
                     [[map_server]]\naddress = \"172.31.1.2\"\npublic_key = \"{ms_public}\"\n\
                     control_address = \"100.64.0.1\"\nkey = \"key {name}\"\n\
                     [[eid]]\nprefix = \"{eid}\"\niid = 1000\n",
                    dir.join(format!("{name}.key")).display(),
                    dir.join(format!("{name}.sock")).display(),
                ),
            )
        };
        let a_config = agent("a", "100.64.0.2", "10.1.0.0/24");
        let b_config = agent("b", "100.64.0.3", "10.2.0.0/24");
        let ms = Process::start(
            "map-server",
            &self.ms,
            &binary("lispguard-mapserver"),
            &["run", "-c", &ms_config.to_string_lossy()],
            "map-server on",
        );
        let lispguard = env!("CARGO_BIN_EXE_lispguard");
        let a = Process::start(
            "agent a",
            &self.xa,
            lispguard,
            &["run", "-c", &a_config.to_string_lossy()],
            "up, public key",
        );
        let b = Process::start(
            "agent b",
            &self.xb,
            lispguard,
            &["run", "-c", &b_config.to_string_lossy()],
            "up, public key",
        );
        a.await_log("registered with the map-server");
        b.await_log("registered with the map-server");
        (ms, a, b)
    }

    fn status(&self, ns: &str, agent: &str) -> String {
        let socket = self.ns.dir.join(format!("{agent}.sock"));
        let out = exec(
            ns,
            &[
                env!("CARGO_BIN_EXE_lispguard"),
                "status",
                "--json",
                "-s",
                &socket.to_string_lossy(),
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[test]
fn host_a_pings_host_b_with_cold_caches_and_the_first_ping_is_answered() {
    let sites = TwoSites::new("s1");
    let (_ms, _a, _b) = sites.start();

    let (received, text) = ping(&sites.ha, "10.2.0.2", 1);
    assert_eq!(received, 1, "the first ping is answered:\n{text}");

    // Both sides have the other as a peer.
    let a = sites.status(&sites.xa, "a");
    let b = sites.status(&sites.xb, "b");
    assert!(a.contains("\"10.2.0.0/24\""), "a's peers: {a}");
    assert!(b.contains("\"10.1.0.0/24\""), "b's peers: {b}");

    // From now on the data bypasses the agents: the TUNs see no more.
    let before = (
        counter(&sites.xa, "lgeat", "tx_packets"),
        counter(&sites.xb, "lgebt", "tx_packets"),
    );
    let (received, text) = ping(&sites.ha, "10.2.0.2", 5);
    assert_eq!(received, 5, "{text}");
    let after = (
        counter(&sites.xa, "lgeat", "tx_packets"),
        counter(&sites.xb, "lgebt", "tx_packets"),
    );
    assert_eq!(before, after, "packets still reach the TUNs");
    let _ = (&sites.hb, &sites.ms);
}
