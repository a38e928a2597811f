//! What the side-by-side benches share: their command line, lispguard's
//! lab, and Nebula (Debian package nebula, 1.6.1 in Debian 12) beside it
//! in that lab: a lighthouse and two nodes.

use crate::e2e::lab::Lab;
use crate::e2e::{link, route, Process};
use std::process::{Command, Stdio};

/// The benches' command line: `--data FILE`, and one number (trials,
/// seconds) or `default`.
pub fn args<N: std::str::FromStr>(default: N) -> (Vec<String>, Option<String>, N) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = args
        .iter()
        .position(|a| a == "--data")
        .map(|k| args.get(k + 1).expect("--data FILE").clone());
    let number = args
        .iter()
        .filter(|a| Some(*a) != data.as_ref())
        .find_map(|a| a.parse().ok())
        .unwrap_or(default);
    (args, data, number)
}

/// The benches' lispguard lab, started: two sites (a, b) and two mobile
/// nodes (m, n).
pub fn lispguard_lab(tag: &str) -> Lab {
    let mut lab = Lab::new(tag);
    // As deployed, and as Nebula runs beside it.
    lab.ms_log_level = "info";
    lab.node("a", 1000, "10.1.0.0/24");
    lab.node("b", 1000, "10.2.0.0/24");
    lab.node("m", 1000, "10.9.0.1/32");
    lab.node("n", 1000, "10.9.0.2/32");
    lab.start();
    lab
}

/// The overlay prefix of the Nebula lab and its lighthouse's address.
pub const NEBULA_NET: &str = "192.168.100";

/// A lighthouse and two nodes in namespaces of the lab, on links of
/// their own to its router (172.30.N.0/24), certificates from
/// `nebula-cert`.
pub struct Nebula {
    /// (namespace, config file) of the two nodes.
    pub nodes: Vec<(String, String)>,
    /// First the lighthouse, then the running nodes.
    processes: Vec<Process>,
}

impl Nebula {
    pub fn new(lab: &mut Lab) -> Nebula {
        let dir = lab.ns.dir.clone();
        let cert = |args: &[&str]| {
            let out = Command::new("nebula-cert")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect(
                    "nebula-cert (Debian package nebula: tests/bench/first-contact.sh installs it)",
                );
            assert!(out.status.success(), "nebula-cert {args:?}: {out:?}");
        };
        cert(&["ca", "-name", "lab", "-duration", "1h"]);
        let mut namespaces = Vec::new();
        let mut configs = Vec::new();
        for (k, name) in ["lighthouse", "n1", "n2"].into_iter().enumerate() {
            let n = k + 1;
            let ns = lab.ns.add(&format!("{}-neb{name}", lab.tag));
            link(
                &lab.router,
                &format!("r-neb{n}"),
                &format!("172.30.{n}.1/24"),
                &ns,
                "u0",
                &format!("172.30.{n}.2/24"),
            );
            route(&ns, "default", &format!("172.30.{n}.1"));
            cert(&[
                "sign",
                "-name",
                name,
                "-ip",
                &format!("{NEBULA_NET}.{n}/24"),
                "-out-crt",
                &format!("{name}.crt"),
                "-out-key",
                &format!("{name}.key"),
            ]);
            let config = lab
                .ns
                .file(&format!("{name}.yml"), &nebula_config(&dir, name, n == 1));
            namespaces.push(ns);
            configs.push(config.to_string_lossy().into_owned());
        }
        let lighthouse = start_nebula("lighthouse", &namespaces[0], &configs[0]);
        let nodes = namespaces.into_iter().zip(configs).skip(1).collect();
        let mut nebula = Nebula {
            nodes,
            processes: vec![lighthouse],
        };
        nebula.restart_nodes();
        nebula
    }

    /// Stops the nodes (if running) and starts them again; returns when
    /// both have handshaken with the lighthouse.
    pub fn restart_nodes(&mut self) {
        self.processes.truncate(1);
        for (k, (ns, config)) in self.nodes.iter().enumerate() {
            let node = start_nebula(&format!("nebula n{}", k + 1), ns, config);
            self.processes.push(node);
        }
        for node in &self.processes[1..] {
            node.await_log(&format!("vpnIp={NEBULA_NET}.1"));
        }
    }
}

/// A Nebula process; its log (on stdout) is turned to stderr, where
/// [`Process`] reads it. Ready once its TUN device is up.
fn start_nebula(name: &str, ns: &str, config: &str) -> Process {
    Process::start(
        name,
        ns,
        "sh",
        &["-c", &format!("exec nebula -config {config} 1>&2")],
        "Nebula interface is active",
    )
}

fn nebula_config(dir: &std::path::Path, name: &str, lighthouse: bool) -> String {
    let lighthouses = if lighthouse {
        String::new()
    } else {
        format!("  hosts: [\"{NEBULA_NET}.1\"]\n")
    };
    format!(
        "pki:\n  ca: {dir}/ca.crt\n  cert: {dir}/{name}.crt\n  key: {dir}/{name}.key\n\
         static_host_map:\n  \"{NEBULA_NET}.1\": [\"172.30.1.2:4242\"]\n\
         lighthouse:\n  am_lighthouse: {lighthouse}\n  interval: 60\n{lighthouses}\
         listen:\n  host: 0.0.0.0\n  port: 4242\n\
         punchy:\n  punch: true\n\
         tun:\n  dev: neb{name}\n  mtu: 1300\n\
         logging:\n  level: info\n  format: text\n\
         firewall:\n  outbound:\n    - port: any\n      proto: any\n      host: any\n\
         \x20 inbound:\n    - port: any\n      proto: any\n      host: any\n",
        dir = dir.display(),
    )
}

pub fn nebula_version() -> String {
    Command::new("nebula")
        .arg("-version")
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
