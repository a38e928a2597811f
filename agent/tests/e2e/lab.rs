//! A lab: an underlay router, a map-server, and nodes — xTRs with a LAN
//! host behind each, or mobile nodes — each in its namespace, running the
//! real binaries. Names carry the test's tag: tests run side by side, and
//! wireguard-go's UAPI sockets are shared by every namespace.

use super::{binary, exec, link, route, sysctl, Namespaces, Process};
use std::net::SocketAddr;
use std::path::Path;

/// Where an agent with metrics serves them, in its own namespace.
pub const AGENT_METRICS: &str = "127.0.0.1:9101";

/// A WireGuard key pair: the private key written to `file`, the public key
/// returned in base64.
pub fn keypair(file: &Path) -> String {
    let private = netconf::generate_private_key();
    std::fs::write(file, netconf::format_key(&private)).unwrap();
    netconf::format_key(&netconf::public_key(&private))
}

pub struct Node {
    pub name: String,
    /// The namespace of the agent.
    pub ns: String,
    /// The LAN host's namespace (xTRs), else the agent's own.
    pub host: String,
    pub iid: u32,
    pub eid: String,
    /// More EID-Prefixes of an xTR, each with the xTR's own address .1 in
    /// it (on an interface of its own): destinations that answer a ping.
    pub more_eids: Vec<String>,
    pub control_address: String,
    /// Its underlay address.
    pub rloc: String,
    /// The namespace of the NAT in front of it, if any.
    pub nat: Option<String>,
    pub tun: String,
    /// Minutes others may cache its mapping.
    pub record_ttl: u32,
    /// Serves Prometheus metrics on 127.0.0.1:9101 in its namespace.
    pub metrics: bool,
    /// It enrolled with a token: no site of the map-server's configuration.
    pub enrolled: bool,
    public_key: String,
}

impl Node {
    /// Its WireGuard public key, base64.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }
}

pub struct Lab {
    /// First, so that they stop before their namespaces go.
    pub processes: Vec<Process>,
    pub tag: String,
    pub ns: Namespaces,
    pub router: String,
    pub ms: String,
    pub nodes: Vec<Node>,
    /// The agents' `--log-level` (the demo's timeline reads their debug
    /// lines).
    pub agent_log_level: &'static str,
    /// The map-servers' `--log-level`: debug for the tests, which read
    /// those lines; the benchmarks' is a deployment's default, info (a
    /// line logged is a write to the lab's pipe, which wakes its reader).
    pub ms_log_level: &'static str,
    /// The first map-server's mappings file (static mappings in bulk), if
    /// any: set before start.
    pub mappings_file: Option<std::path::PathBuf>,
    /// `[[policy]]` tables every map-server gets (see [`Lab::policy`]).
    policies: String,
    ms_public: String,
    /// A second map-server's namespace and public key, when it has one
    /// ([`Lab::add_second_map_server`]).
    second_ms: Option<(String, String)>,
    family: Family,
    /// The first map-server relays pairs with no direct path.
    relay: bool,
    /// The first map-server enrols nodes with tokens.
    enrolment: bool,
}

/// The NAT in front of a node, if any.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nat {
    None,
    /// Masquerade, keeping the node's port where it can (endpoint-
    /// independent mapping).
    Masquerade,
    /// Masquerade to a random port per destination (`fully-random`): no
    /// one can learn where the node is reached from a third address.
    RandomPorts,
}

/// The underlay's addresses: IPv4 (172.31.N.0/24 per link), IPv6 alone
/// (fd31:N::/64), or both.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
    Dual,
}

impl Family {
    /// Host `host` of underlay link `net`: with its prefix length, and
    /// without.
    fn at(self, net: u8, host: u8) -> (String, String) {
        let address = match self {
            Family::V4 | Family::Dual => format!("172.31.{net}.{host}"),
            Family::V6 => format!("fd31:{net}::{host}"),
        };
        let len = if self == Family::V6 { 64 } else { 24 };
        (format!("{address}/{len}"), address)
    }
}

/// What tells the lab's map-servers apart: the first's, the second's.
struct MsSpec {
    process: &'static str,
    file: &'static str,
    interface: &'static str,
    /// Its underlay link (the map-server is host 2 on it).
    net: u8,
    control_address: &'static str,
}

/// The secret the lab's two map-servers share when they enrol nodes.
const GROUP_SECRET: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

const MAP_SERVERS: [MsSpec; 2] = [
    MsSpec {
        process: "map-server",
        file: "ms",
        interface: "ms",
        net: 1,
        control_address: "100.64.0.1",
    },
    MsSpec {
        process: "map-server 2",
        file: "ms2",
        interface: "m2",
        net: 254,
        control_address: "100.64.0.254",
    },
];

impl Lab {
    /// A lab whose names start with `tag` and this run's id.
    pub fn new(tag: &str) -> Lab {
        Lab::with_underlay(tag, Family::V4)
    }

    /// The same with an underlay of IPv6 alone: map-servers, nodes and
    /// their RLOCs (fd31:N::2) have no IPv4 address on it.
    pub fn ipv6_underlay(tag: &str) -> Lab {
        Lab::with_underlay(tag, Family::V6)
    }

    /// The same with both IPv4 and IPv6 on every underlay link; the nodes
    /// reach the map-servers over IPv6 and register both RLOCs.
    pub fn dual_stack_underlay(tag: &str) -> Lab {
        Lab::with_underlay(tag, Family::Dual)
    }

    fn with_underlay(tag: &str, family: Family) -> Lab {
        let tag = &format!("{tag}{}", super::run_id());
        let mut ns = Namespaces::new(tag);
        let router = ns.add(&format!("{tag}-underlay"));
        let ms = ns.add(&format!("{tag}-ms"));
        let ms_public = keypair(&ns.dir.join("ms.key"));
        let lab = Lab {
            tag: tag.into(),
            ns,
            router,
            ms,
            nodes: Vec::new(),
            processes: Vec::new(),
            agent_log_level: "info",
            ms_log_level: "debug",
            mappings_file: None,
            policies: String::new(),
            ms_public,
            second_ms: None,
            family,
            relay: false,
            enrolment: false,
        };
        lab.prepare(&lab.router);
        if family != Family::V6 {
            sysctl(&lab.router, "net.ipv4.ip_forward", "1");
        }
        if family != Family::V4 {
            sysctl(&lab.router, "net.ipv6.conf.all.forwarding", "1");
        }
        lab.underlay_link("r-ms", &lab.ms, MAP_SERVERS[0].net);
        lab
    }

    /// A new namespace's settings for the lab's underlay: on IPv6, no
    /// duplicate address detection to wait for on the links made next.
    fn prepare(&self, ns: &str) {
        if self.family != Family::V4 {
            sysctl(ns, "net.ipv6.conf.default.accept_dad", "0");
        }
    }

    /// Links `ns` (as host 2, interface u0) to the router (host 1,
    /// interface `router_if`) on underlay link `net`, its default route
    /// through the router.
    fn underlay_link(&self, router_if: &str, ns: &str, net: u8) {
        self.prepare(ns);
        let (router_addr, gateway) = self.family.at(net, 1);
        let (addr, _) = self.family.at(net, 2);
        link(&self.router, router_if, &router_addr, ns, "u0", &addr);
        route(ns, "default", &gateway);
        if self.family == Family::Dual {
            let (router_addr, gateway) = Family::V6.at(net, 1);
            let (addr, _) = Family::V6.at(net, 2);
            super::ip(&[
                "-n",
                &self.router,
                "addr",
                "add",
                &router_addr,
                "dev",
                router_if,
            ]);
            super::ip(&["-n", ns, "addr", "add", &addr, "dev", "u0"]);
            route(ns, "default", &gateway);
        }
    }

    /// A second map-server beside the first, in a namespace of its own on
    /// the underlay (172.31.254.2, control address 100.64.0.254), with its
    /// own key and state: every node registers with both.
    pub fn add_second_map_server(&mut self) {
        let ns = self.ns.add(&format!("{}-ms2", self.tag));
        self.underlay_link("r-ms2", &ns, MAP_SERVERS[1].net);
        let public = keypair(&self.ns.dir.join("ms2.key"));
        self.second_ms = Some((ns, public));
    }

    /// The map-servers: the specs of those the lab has, with their
    /// namespaces and public keys.
    fn map_servers(&self) -> impl Iterator<Item = (&'static MsSpec, &str, &str)> {
        let first = (self.ms.as_str(), self.ms_public.as_str());
        let second = self
            .second_ms
            .as_ref()
            .map(|(n, k)| (n.as_str(), k.as_str()));
        MAP_SERVERS
            .iter()
            .zip([Some(first), second])
            .filter_map(|(spec, ms)| ms.map(|(ns, key)| (spec, ns, key)))
    }

    /// A node: `eid` a LAN prefix (an xTR with a host at .2 behind it) or
    /// a /32 (a mobile node that is itself the EID).
    pub fn node(&mut self, name: &str, iid: u32, eid: &str) -> &Node {
        self.add_node(name, iid, eid, Nat::None)
    }

    /// A node behind a NAT (nftables masquerade in a namespace of its own
    /// between the node and the router): its RLOC is private.
    pub fn node_behind_nat(&mut self, name: &str, iid: u32, eid: &str) -> &Node {
        self.add_node(name, iid, eid, Nat::Masquerade)
    }

    /// The same behind a NAT that picks a random port per destination.
    pub fn node_behind_port_changing_nat(&mut self, name: &str, iid: u32, eid: &str) -> &Node {
        self.add_node(name, iid, eid, Nat::RandomPorts)
    }

    /// Has the map-server relay pairs with no direct path (before start),
    /// on ports 40000-40099 of its underlay address.
    pub fn enable_relay(&mut self) {
        self.relay = true;
    }

    /// Has the map-servers enrol nodes with tokens (before start): each
    /// one's underlay listener on its underlay address, port 4342, control
    /// addresses out of 100.64.1.0/24; two map-servers are a group (one
    /// secret, each naming the other).
    pub fn enable_enrolment(&mut self) {
        self.enrolment = true;
    }

    /// What the enrolled nodes of `group` may resolve (before start).
    pub fn policy(&mut self, group: &str, may_resolve: &[&str]) {
        let names: Vec<String> = may_resolve.iter().map(|n| format!("\"{n}\"")).collect();
        self.policies.push_str(&format!(
            "[[policy]]\ngroup = \"{group}\"\nmay_resolve = [{}]\n",
            names.join(", ")
        ));
    }

    /// A token from the running map-server (`token create ARGS`).
    pub fn create_token(&self, args: &[&str]) -> String {
        let mut full = vec!["token", "create"];
        full.extend(args);
        let out = self.ms_command(&full);
        let token = out.lines().next().unwrap_or_default();
        assert!(token.starts_with("lgt2."), "token create {args:?}: {out}");
        token.to_string()
    }

    /// A mobile node that enrols with `token` (`lispguard join`) and
    /// runs, once the map-server is up: the join's output, or its error.
    /// The configuration it writes gets the lab's names (interface, TUN,
    /// status socket) put in front, as an operator would.
    pub fn join(&mut self, name: &str, token: &str) -> Result<String, String> {
        self.add_node(name, 0, "0.0.0.0/32", Nat::None);
        let dir = self.ns.dir.clone();
        let file = dir.join(format!("{name}.toml"));
        let key = dir.join(format!("{name}.key"));
        let n = self.nodes.last_mut().unwrap();
        n.enrolled = true;
        let out = exec(
            &n.ns,
            &[
                &binary("lispguard"),
                "join",
                token,
                "-c",
                &file.to_string_lossy(),
                "--key",
                &key.to_string_lossy(),
                "--overlay",
                "10.0.0.0/8",
                "--no-start",
            ],
        );
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let written = std::fs::read_to_string(&file).unwrap();
        let value = |key: &str| {
            let line = written.lines().find(|l| l.starts_with(key)).unwrap();
            line.split('"').nth(1).unwrap().to_string()
        };
        n.eid = value("prefix = ");
        n.control_address = value("control_address = ");
        let names = format!(
            "interface = \"lg{}{name}\"\ntun = \"{}\"\nbackend = \"{}\"\nstatus_socket = \"{}\"\n",
            self.tag,
            n.tun,
            super::backend(),
            dir.join(format!("{name}.sock")).display(),
        );
        std::fs::write(&file, names + &written).unwrap();
        let agent = self.run_agent(name, &file);
        agent.await_log("registered with the map-server");
        self.processes.push(agent);
        Ok(said)
    }

    /// The router drops UDP between nodes: only what goes to or comes
    /// from the map-servers passes.
    pub fn block_direct_paths(&self) {
        let ms = self.family.at(MAP_SERVERS[0].net, 2).1;
        let family = if self.family == Family::V6 {
            "ip6"
        } else {
            "ip"
        };
        let rules = self.ns.file(
            "block-direct.nft",
            &format!(
                "table inet blockdirect {{\n chain forward {{\n  type filter hook forward priority 0;\n  \
                 meta l4proto udp {family} saddr != {ms} {family} daddr != {ms} drop\n }}\n}}\n"
            ),
        );
        let out = exec(&self.router, &["nft", "-f", &rules.to_string_lossy()]);
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Lets direct UDP between nodes through again.
    pub fn unblock_direct_paths(&self) {
        let out = exec(
            &self.router,
            &["nft", "delete", "table", "inet", "blockdirect"],
        );
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn add_node(&mut self, name: &str, iid: u32, eid: &str, nat: Nat) -> &Node {
        let n = self.nodes.len() + 2;
        let ns = self.ns.add(&format!("{}-{name}", self.tag));
        assert!(
            nat == Nat::None || self.family == Family::V4,
            "NATs are IPv4 only"
        );
        let masquerade = match nat {
            Nat::RandomPorts => "masquerade fully-random",
            _ => "masquerade",
        };
        let (uplink, gateway) = if nat != Nat::None {
            let nat_ns = self.ns.add(&format!("{}-{name}nat", self.tag));
            sysctl(&nat_ns, "net.ipv4.ip_forward", "1");
            let public = format!("172.31.{n}.2/24");
            link(
                &self.router,
                &format!("r-{name}"),
                &format!("172.31.{n}.1/24"),
                &nat_ns,
                "wan",
                &public,
            );
            route(&nat_ns, "default", &format!("172.31.{n}.1"));
            let rules = self.ns.file(
                &format!("{name}-nat.nft"),
                // As a home router has it: masquerade, and nothing new let
                // in from the outside (without that, an unasked packet
                // from a peer leaves a conntrack entry that makes the
                // masquerade pick another port for the node's own
                // handshake to that peer, and hole punching fails).
                &format!("table ip nat {{\n chain postrouting {{\n  type nat hook postrouting priority 100;\n  oifname \"wan\" {masquerade}\n }}\n chain input {{\n  type filter hook input priority 0;\n  iifname \"wan\" ct state new drop\n }}\n}}\n"),
            );
            let out = exec(&nat_ns, &["nft", "-f", &rules.to_string_lossy()]);
            assert!(
                out.status.success(),
                "nft: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (nat_ns, format!("192.168.{n}"))
        } else {
            (self.router.clone(), String::new())
        };
        let nat_ns = (nat != Nat::None).then(|| uplink.clone());
        let rloc = if nat != Nat::None {
            link(
                &uplink,
                "inside",
                &format!("{gateway}.1/24"),
                &ns,
                "u0",
                &format!("{gateway}.2/24"),
            );
            route(&ns, "default", &format!("{gateway}.1"));
            format!("{gateway}.2")
        } else {
            self.underlay_link(&format!("r-{name}"), &ns, n as u8);
            self.family.at(n as u8, 2).1
        };
        let host = if eid.ends_with("/32") || eid.ends_with("/128") {
            ns.clone()
        } else if let Some(base) = eid.strip_suffix("::/64") {
            // An IPv6 LAN: the xTR at ::1, the host at ::2, no duplicate
            // address detection to wait for.
            sysctl(&ns, "net.ipv6.conf.all.forwarding", "1");
            let host = self.ns.add(&format!("{}-{name}h", self.tag));
            for n in [&ns, &host] {
                sysctl(n, "net.ipv6.conf.default.accept_dad", "0");
            }
            link(
                &ns,
                "lan",
                &format!("{base}::1/64"),
                &host,
                "eth0",
                &format!("{base}::2/64"),
            );
            route(&host, "default", &format!("{base}::1"));
            host
        } else {
            sysctl(&ns, "net.ipv4.ip_forward", "1");
            let host = self.ns.add(&format!("{}-{name}h", self.tag));
            let base = eid.trim_end_matches(".0/24");
            link(
                &ns,
                "lan",
                &format!("{base}.1/24"),
                &host,
                "eth0",
                &format!("{base}.2/24"),
            );
            route(&host, "default", &format!("{base}.1"));
            host
        };
        let public_key = keypair(&self.ns.dir.join(format!("{name}.key")));
        self.nodes.push(Node {
            name: name.into(),
            ns,
            host,
            iid,
            eid: eid.into(),
            more_eids: Vec::new(),
            control_address: format!("100.64.0.{n}"),
            rloc,
            nat: nat_ns,
            tun: format!("lg{}{name}t", self.tag),
            record_ttl: 15,
            metrics: false,
            enrolled: false,
            public_key,
        });
        self.nodes.last().unwrap()
    }

    /// The scan scenario's lab: site A (with a second host at .3, the
    /// scanner, returned) and four sites of five EID-Prefixes each, whose
    /// hosts A has never contacted (returned); not started.
    pub fn for_a_scan(tag: &str) -> (Lab, Vec<String>, String) {
        let mut lab = Lab::new(tag);
        lab.node("a", 1000, "10.1.0.0/24");
        let mut destinations = Vec::new();
        for (name, n) in [("b", 2), ("c", 3), ("d", 4), ("e", 5)] {
            lab.node(name, 1000, &format!("10.{n}.0.0/24"));
            destinations.extend(lab.add_prefixes(name, 5));
        }
        let scanner = lab.add_host("a", 3);
        (lab, destinations, scanner)
    }

    /// Sets how long others may cache `name`'s mapping (before start).
    pub fn set_record_ttl(&mut self, name: &str, minutes: u32) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.name == name) {
            n.record_ttl = minutes;
        }
    }

    /// Has `name` serve its metrics (before start): off by default.
    pub fn enable_metrics(&mut self, name: &str) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.name == name) {
            n.metrics = true;
        }
    }

    /// Gives xTR `name` more EID-Prefixes (before start), `count` /24s
    /// after its LAN's: 10.N.1.0/24 ... Its address .1 in each answers.
    pub fn add_prefixes(&mut self, name: &str, count: u8) -> Vec<String> {
        let n = self.nodes.iter_mut().find(|n| n.name == name).unwrap();
        let base = n.eid.trim_end_matches(".0.0/24").to_string();
        let mut added = Vec::new();
        for k in 1..=count {
            let dummy = format!("eid{k}");
            // A veth pair with no peer namespace: no dummy module needed.
            let other = format!("{dummy}p");
            super::ip(&[
                "-n", &n.ns, "link", "add", &dummy, "type", "veth", "peer", "name", &other,
            ]);
            super::ip(&["-n", &n.ns, "link", "set", &other, "up"]);
            let address = format!("{base}.{k}.1");
            super::ip(&[
                "-n",
                &n.ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                &dummy,
            ]);
            super::ip(&["-n", &n.ns, "link", "set", &dummy, "up"]);
            n.more_eids.push(format!("{base}.{k}.0/24"));
            added.push(address);
        }
        added
    }

    /// Another host on xTR `name`'s LAN, at .`last`: its own namespace
    /// and link to the xTR (which answers for .1 on it too).
    pub fn add_host(&mut self, name: &str, last: u8) -> String {
        let n = self.get(name);
        let base = n.eid.trim_end_matches(".0/24").to_string();
        let node_ns = n.ns.clone();
        let host = self.ns.add(&format!("{}-{name}h{last}", self.tag));
        let lan = format!("lan{last}");
        link(
            &node_ns,
            &lan,
            &format!("{base}.1/32"),
            &host,
            "eth0",
            &format!("{base}.{last}/24"),
        );
        super::ip(&[
            "-n",
            &node_ns,
            "route",
            "add",
            &format!("{base}.{last}/32"),
            "dev",
            &lan,
        ]);
        route(&host, "default", &format!("{base}.1"));
        host
    }

    pub fn get(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .expect("a node of the lab")
    }

    fn ms_config(&self, spec: &MsSpec) -> String {
        let dir = &self.ns.dir;
        let file = spec.file;
        let mut text = format!(
            "control_address = \"{}\"\n\
             [wireguard]\ninterface = \"lg{}{}\"\nbackend = \"{}\"\nprivate_key_file = \"{}\"\n\
             [lisp]\nmetrics = \"127.0.0.1:9090\"\ncontrol_socket = \"{}\"\nstate_file = \"{}\"\n",
            spec.control_address,
            self.tag,
            spec.interface,
            super::backend(),
            dir.join(format!("{file}.key")).display(),
            dir.join(format!("{file}.sock")).display(),
            dir.join(format!("{file}.db")).display(),
        );
        // In [lisp], before the next table.
        if let (Some(mappings), "ms") = (&self.mappings_file, file) {
            text.push_str(&format!("mappings_file = \"{}\"\n", mappings.display()));
        }
        let listener = |net: u8| SocketAddr::new(self.family.at(net, 2).1.parse().unwrap(), 4342);
        if self.enrolment {
            text.push_str(&format!(
                "underlay_listen = \"{}\"\n[enrolment]\ncontrol_pool = \"100.64.1.0/24\"\n",
                listener(spec.net)
            ));
            let others: Vec<String> = self
                .map_servers()
                .filter(|(other, _, _)| other.net != spec.net)
                .map(|(other, _, key)| format!("\"{} {key}\"", listener(other.net)))
                .collect();
            if !others.is_empty() {
                text.push_str(&format!(
                    "group_secret = \"{GROUP_SECRET}\"\ngroup = [{}]\n",
                    others.join(", ")
                ));
            }
            text.push_str(&self.policies);
        }
        if self.relay && spec.net == MAP_SERVERS[0].net {
            let address = self.family.at(spec.net, 2).1;
            text.push_str(&format!(
                "[relay]\naddress = \"{address}\"\nports = \"40000-40099\"\n"
            ));
        }
        for n in self.nodes.iter().filter(|n| !n.enrolled) {
            let eids: Vec<String> = [&n.eid]
                .into_iter()
                .chain(&n.more_eids)
                .map(|e| format!("\"[{}] {e}\"", n.iid))
                .collect();
            text.push_str(&format!(
                "[[site]]\nname = \"{}\"\nkey = \"key {}\"\npublic_key = \"{}\"\n\
                 control_address = \"{}\"\neids = [{}]\n",
                n.name,
                n.name,
                n.public_key,
                n.control_address,
                eids.join(", ")
            ));
        }
        text
    }

    fn agent_config(&self, n: &Node) -> String {
        let dir = &self.ns.dir;
        let more: String = n
            .more_eids
            .iter()
            .map(|e| format!("[[eid]]\nprefix = \"{e}\"\niid = {}\n", n.iid))
            .collect();
        format!(
            "interface = \"lg{tag}{name}\"\ntun = \"{tun}\"\nbackend = \"{backend}\"\n\
             private_key_file = \"{key}\"\ncontrol_address = \"{control_address}\"\n\
             overlay = [\"10.0.0.0/8\", \"fd00::/16\"]\nstatus_socket = \"{socket}\"\nrecord_ttl = {ttl}\n{metrics}\
             {map_servers}[[eid]]\nprefix = \"{eid}\"\niid = {iid}\n",
            tag = self.tag,
            name = n.name,
            tun = n.tun,
            backend = super::backend(),
            key = dir.join(format!("{}.key", n.name)).display(),
            control_address = n.control_address,
            socket = dir.join(format!("{}.sock", n.name)).display(),
            map_servers = self
                .map_servers()
                .map(|(spec, _, public)| format!(
                    "[[map_server]]\naddress = \"{}\"\npublic_key = \"{public}\"\n\
                     control_address = \"{}\"\nkey = \"key {}\"\n",
                    match self.family {
                        Family::Dual => Family::V6.at(spec.net, 2).1,
                        family => family.at(spec.net, 2).1,
                    },
                    spec.control_address,
                    n.name
                ))
                .collect::<String>(),
            eid = n.eid,
            iid = n.iid,
            ttl = n.record_ttl,
            metrics = if n.metrics {
                format!("metrics = \"{AGENT_METRICS}\"\n")
            } else {
                String::new()
            },
        ) + &more
    }

    /// Starts the map-server and every agent; returns when all registered.
    pub fn start(&mut self) {
        let map_servers: Vec<_> = self
            .map_servers()
            .map(|(spec, ns, _)| self.start_ms(spec, ns))
            .collect();
        self.processes.extend(map_servers);
        self.start_agents();
    }

    /// Stops every agent (each removes its interface, peers and routes)
    /// and starts them again: caches cold on every side.
    pub fn restart_agents(&mut self) {
        self.processes.truncate(self.map_servers().count());
        self.start_agents();
    }

    fn start_agents(&mut self) {
        for n in (0..self.nodes.len()).filter(|n| !self.nodes[*n].enrolled) {
            let agent = self.start_agent(&self.nodes[n]);
            self.processes.push(agent);
        }
        // Registered with every map-server: the line once for each.
        let map_servers = self.map_servers().count();
        for p in &self.processes[map_servers..] {
            for _ in 0..map_servers {
                p.await_log("registered with the map-server");
            }
        }
    }

    fn start_agent(&self, n: &Node) -> Process {
        let config = self
            .ns
            .file(&format!("{}.toml", n.name), &self.agent_config(n));
        self.run_agent(&n.name, &config)
    }

    /// Runs node `name`'s agent with `config`, once it is up.
    fn run_agent(&self, name: &str, config: &Path) -> Process {
        Process::start(
            &format!("agent {name}"),
            &self.get(name).ns,
            &binary("lispguard"),
            &[
                "run",
                "--log-level",
                self.agent_log_level,
                "-c",
                &config.to_string_lossy(),
            ],
            "up, public key",
        )
    }

    /// Kills an agent without letting it clean up (SIGKILL), then starts it
    /// again: what it left behind is still there.
    pub fn crash_and_restart(&mut self, name: &str) -> &Process {
        let label = format!("agent {name}");
        let at = self
            .processes
            .iter()
            .position(|p| p.name == label)
            .expect("a started agent");
        self.processes[at].signal(libc::SIGKILL);
        self.processes.remove(at);
        let node = self.nodes.iter().position(|n| n.name == name).unwrap();
        let agent = self.start_agent(&self.nodes[node]);
        agent.await_log("registered with the map-server");
        self.processes.push(agent);
        self.processes.last().unwrap()
    }

    /// Writes node `name`'s configuration file again (after changing the
    /// node) and sends its agent SIGHUP.
    pub fn reload_agent(&self, name: &str) {
        let node = self.get(name);
        self.ns
            .file(&format!("{name}.toml"), &self.agent_config(node));
        self.agent(name).signal(libc::SIGHUP);
    }

    /// A node, to change before [`Lab::reload_agent`].
    pub fn node_mut(&mut self, name: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .expect("a node of the lab")
    }

    /// A started agent's process.
    pub fn agent(&self, name: &str) -> &Process {
        self.processes
            .iter()
            .find(|p| p.name == format!("agent {name}"))
            .expect("a started agent")
    }

    /// A counter of a node's `lispguard status --json`.
    pub fn status_counter(&self, node: &str, counter: &str) -> u64 {
        let status = self.status(node);
        let key = format!("\"{counter}\":");
        let at = status.find(&key).unwrap_or_else(|| panic!("{status}")) + key.len();
        status[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{status}"))
    }

    /// `lispguard status --json` of a node.
    pub fn status(&self, name: &str) -> String {
        let n = self.get(name);
        let socket = self.ns.dir.join(format!("{name}.sock"));
        let out = exec(
            &n.ns,
            &[
                &binary("lispguard"),
                "status",
                "--json",
                "-s",
                &socket.to_string_lossy(),
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start_ms(&self, spec: &MsSpec, ns: &str) -> Process {
        let config = self
            .ns
            .file(&format!("{}.toml", spec.file), &self.ms_config(spec));
        Process::start(
            spec.process,
            ns,
            &binary("lispguard-mapserver"),
            &[
                "run",
                "--log-level",
                self.ms_log_level,
                "-c",
                &config.to_string_lossy(),
            ],
            "map-server on",
        )
    }

    /// The map-server's process.
    pub fn map_server(&self) -> &Process {
        self.processes
            .iter()
            .find(|p| p.name == "map-server")
            .expect("a running map-server")
    }

    /// Stops the map-server with `signal` (SIGTERM: as `systemctl stop`
    /// does; SIGKILL: a crash) and waits until it is gone.
    pub fn stop_map_server(&mut self, signal: i32) {
        self.stop(MAP_SERVERS[0].process, signal);
    }

    /// Stops the process named `name` with `signal` and waits until it is
    /// gone.
    pub fn stop(&mut self, name: &str, signal: i32) {
        let at = self
            .processes
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("no running {name}"));
        let ms = self.processes.remove(at);
        ms.signal(signal);
        drop(ms); // waits for it
    }

    /// Starts the map-server again, with the same configuration and state
    /// file; returns when it logs that it listens.
    pub fn restart_map_server(&mut self) {
        let ms = self.start_ms(&MAP_SERVERS[0], &self.ms);
        self.processes.insert(0, ms);
    }

    /// The map-server's Prometheus metrics.
    pub fn ms_metrics(&self) -> String {
        super::in_namespace(&self.ms, || {
            use std::io::{Read, Write};
            let mut http = std::net::TcpStream::connect("127.0.0.1:9090").expect("metrics");
            http.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
            let mut text = String::new();
            http.read_to_string(&mut text).unwrap();
            text
        })
    }

    /// A GET of an agent's metrics address, in its namespace: the whole
    /// HTTP answer, or why there was none.
    pub fn agent_metrics(&self, name: &str) -> std::io::Result<String> {
        super::in_namespace(&self.get(name).ns, || {
            use std::io::{Read, Write};
            let mut http = std::net::TcpStream::connect(AGENT_METRICS)?;
            http.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
            let mut text = String::new();
            http.read_to_string(&mut text)?;
            Ok(text)
        })
    }

    /// `lispguard lookup` on node `name`: whether it succeeded, and what
    /// it printed (standard output, then error).
    pub fn lookup(&self, name: &str, args: &[&str]) -> (bool, String) {
        let socket = self.ns.dir.join(format!("{name}.sock"));
        let socket = socket.to_string_lossy().into_owned();
        let lispguard = binary("lispguard");
        let mut cmd = vec![lispguard.as_str(), "lookup", "-s", &socket];
        cmd.extend(args);
        let out = exec(&self.get(name).ns, &cmd);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// A map-server command (`sites`, `revoke NAME`, ...).
    pub fn ms_command(&self, args: &[&str]) -> String {
        self.ms_command_on(&MAP_SERVERS[0], args)
    }

    /// The same on the second map-server.
    pub fn second_ms_command(&self, args: &[&str]) -> String {
        self.ms_command_on(&MAP_SERVERS[1], args)
    }

    fn ms_command_on(&self, spec: &MsSpec, args: &[&str]) -> String {
        let socket = self.ns.dir.join(format!("{}.sock", spec.file));
        let socket = socket.to_string_lossy().into_owned();
        let mut full = args.to_vec();
        full.extend(["-s", &socket]);
        let out = std::process::Command::new(binary("lispguard-mapserver"))
            .args(&full)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}
