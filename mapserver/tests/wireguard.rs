//! The map-server with real WireGuard: it runs as a process in one network
//! namespace, a client in another, joined by a veth pair; wireguard-go on
//! both sides. The client registers through the tunnel, gets its
//! Map-Notify, and resolves a mapping; the map-server sees the client's
//! endpoint on its own WireGuard interface.
//!
//! Needs root, `ip` (iproute2, for the test topology only) and wireguard-go.

mod common;

use common::{request, Running};
use lisp::{auth, MapNotify, Message};
use mapserver::config::format_key;
use netconf::{Backend, Peer, Rtnl, WireGuard};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs a command of the test topology's set-up; panics with its output
/// when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair, and a directory for the keys and
/// configuration (0700); all removed on drop (with whatever runs in them).
struct Topology {
    ms: String,
    client: String,
    dir: std::path::PathBuf,
}

impl Topology {
    fn new(tag: &str) -> Topology {
        use std::os::unix::fs::DirBuilderExt;
        let t = Topology {
            ms: format!("lgt-ms-{tag}"),
            client: format!("lgt-cl-{tag}"),
            dir: std::env::temp_dir().join(format!("lgt-wg-{tag}")),
        };
        let _ = std::fs::remove_dir_all(&t.dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&t.dir)
            .expect("the test's directory");
        for ns in [&t.ms, &t.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "-n", &t.ms, "link", "add", "v-ms", "type", "veth", "peer", "name", "v-cl", "netns",
            &t.client,
        ]);
        ip(&["-n", &t.ms, "addr", "add", "192.168.77.1/24", "dev", "v-ms"]);
        ip(&[
            "-n",
            &t.client,
            "addr",
            "add",
            "192.168.77.2/24",
            "dev",
            "v-cl",
        ]);
        ip(&["-n", &t.ms, "link", "set", "v-ms", "up"]);
        ip(&["-n", &t.client, "link", "set", "v-cl", "up"]);
        t
    }

    /// Moves the calling thread into the client namespace.
    fn enter_client(&self) {
        let ns = std::fs::File::open(format!("/var/run/netns/{}", self.client)).unwrap();
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0,
            "setns"
        );
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.ms, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn client_registers_and_resolves_through_wireguard() {
    let tag = std::process::id().to_string();
    let topology = Topology::new(&tag);
    let dir = &topology.dir;

    let client_private = netconf::generate_private_key();
    let client_public = netconf::public_key(&client_private);
    let ms_private = netconf::generate_private_key();
    let ms_key_file = dir.join("ms.key");
    std::fs::write(&ms_key_file, format_key(&ms_private)).unwrap();
    let config = format!(
        "control_address = \"100.64.0.1\"\n\
         [wireguard]\ninterface = \"lgtms{tag}\"\nbackend = \"userspace\"\n\
         private_key_file = \"{}\"\nlisten_port = 51820\n\
         [lisp]\nmetrics = \"127.0.0.1:19091\"\ncontrol_socket = \"{}\"\n\
         state_file = \"{}\"\nmappings_file = \"mappings\"\n\
         [[site]]\nname = \"robot\"\nkey = \"robot secret\"\npublic_key = \"{}\"\n\
         control_address = \"100.64.0.2\"\neids = [\"[1000] 10.1.0.7/32\"]\n\
         [[static]]\neid = \"[1000] 10.2.0.0/24\"\npublic_key = \"{}\"\nrloc = \"192.0.2.20:51820\"\n",
        ms_key_file.display(),
        dir.join("ms.sock").display(),
        dir.join("ms.db").display(),
        format_key(&client_public),
        format_key(&[0x22; 32]),
    );
    let config_file = dir.join("ms.toml");
    std::fs::write(&config_file, config).unwrap();
    // Beside the configuration: one more static mapping, from the file.
    let mappings = |eid: &str| format!("{eid} {} 192.0.2.40:51820 5\n", format_key(&[0x44; 32]));
    std::fs::write(dir.join("mappings"), mappings("[1000] 10.4.0.0/24")).unwrap();

    let mut child = Command::new("ip")
        .args(["netns", "exec", &topology.ms])
        .arg(env!("CARGO_BIN_EXE_lispguard-mapserver"))
        .args(["run", "-c"])
        .arg(&config_file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ready when it says where it listens.
    let stderr = child.stderr.take().unwrap();
    let server = Running(child);
    let mut lines = BufReader::new(stderr).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("map-server on") || l.starts_with("ERROR") || l.contains("cannot"));
    assert!(
        ready
            .as_deref()
            .is_some_and(|l| l.contains("map-server on")),
        "map-server did not start: {ready:?}"
    );
    // Its log, line by line, for the test to await events in.
    let (log_tx, log) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("map-server: {line}");
            let _ = log_tx.send(line);
        }
    });

    // The client, in its namespace.
    topology.enter_client();
    let ms_public = netconf::public_key(&ms_private);
    let wg = WireGuard::up(
        &format!("lgtcl{tag}"),
        Backend::Userspace,
        &client_private,
        51820,
    )
    .unwrap();
    wg.set_peer(&Peer {
        public_key: ms_public,
        endpoint: Some("192.168.77.1:51820".parse().unwrap()),
        allowed_ips: vec!["100.64.0.1/32".parse().unwrap()],
        persistent_keepalive: Some(25),
    })
    .unwrap();
    let rtnl = Rtnl::new().unwrap();
    rtnl.add_address(wg.name(), "100.64.0.2/32".parse().unwrap())
        .unwrap();
    rtnl.set_up(wg.name(), None).unwrap();
    rtnl.add_route("100.64.0.1/32".parse().unwrap(), wg.name())
        .unwrap();

    let socket = UdpSocket::bind("100.64.0.2:4342").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let ms: SocketAddr = "100.64.0.1:4342".parse().unwrap();
    let robot = common::TestSite {
        name: "robot",
        key: b"robot secret",
        public_key: client_public,
        control_address: "100.64.0.2",
        eids: &["[1000] 10.1.0.7/32"],
    };
    let register = robot.register(
        11,
        "[1000] 10.1.0.7/32",
        "192.168.77.2:51820".parse().unwrap(),
    );
    socket.send_to(&register, ms).unwrap();
    let mut buf = [0u8; 4096];
    let (len, from) = socket
        .recv_from(&mut buf)
        .expect("Map-Notify through the tunnel");
    assert_eq!(from, ms);
    let verified = auth::verify(&buf[..len], b"robot secret").unwrap();
    assert_eq!(MapNotify::parse(&verified).unwrap().body.nonce, 11);

    socket
        .send_to(&request(12, "[1000] 10.2.0.5/32"), ms)
        .unwrap();
    let (len, _) = socket
        .recv_from(&mut buf)
        .expect("Map-Reply through the tunnel");
    let Message::MapReply(reply) = Message::parse(&buf[..len]).unwrap() else {
        panic!("expected a Map-Reply");
    };
    assert_eq!(reply.nonce, 12);
    assert_eq!(
        reply.records.get(0).unwrap().eid.wireguard_key(),
        Some([0x22; 32])
    );
    let resolve = |nonce: u64, eid: &str, buf: &mut [u8]| {
        socket.send_to(&request(nonce, eid), ms).unwrap();
        let (len, _) = socket.recv_from(buf).expect("Map-Reply through the tunnel");
        let Message::MapReply(reply) = Message::parse(&buf[..len]).unwrap() else {
            panic!("expected a Map-Reply");
        };
        assert_eq!(reply.nonce, nonce);
        reply.records.get(0).unwrap().eid.wireguard_key()
    };
    assert_eq!(
        resolve(13, "[1000] 10.4.0.9/32", &mut buf),
        Some([0x44; 32])
    );

    // The map-server saw the client at its veth address.
    let sites = || {
        let out = Command::new(env!("CARGO_BIN_EXE_lispguard-mapserver"))
            .args(["sites", "-s"])
            .arg(dir.join("ms.sock"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let table = sites();
    assert!(table.contains("192.168.77.2:51820"), "{table}");
    assert!(table.contains("[1000] 10.1.0.7/32"), "{table}");

    // SIGHUP with one more site: it appears, the robot stays registered.
    let more = format!(
        "{}\n[[site]]\nname = \"depot\"\nkey = \"k\"\npublic_key = \"{}\"\n\
         control_address = \"100.64.0.3\"\neids = [\"[1000] 10.3.0.0/24\"]\n",
        std::fs::read_to_string(&config_file).unwrap(),
        format_key(&[0x33; 32])
    );
    std::fs::write(&config_file, more).unwrap();
    // ... and the mappings file serves another prefix instead.
    std::fs::write(dir.join("mappings"), mappings("[1000] 10.5.0.0/24")).unwrap();
    unsafe { libc::kill(server.0.id() as i32, libc::SIGHUP) };
    let reloaded = log
        .iter()
        .find(|l| l.contains("configuration reloaded") || l.contains("not reloaded"));
    assert!(
        reloaded.as_deref().is_some_and(|l| l.contains("2 sites")),
        "{reloaded:?}"
    );
    let table = sites();
    assert!(table.contains("depot"), "{table}");
    assert!(table.contains("[1000] 10.1.0.7/32"), "{table}");
    assert_eq!(
        resolve(14, "[1000] 10.5.0.9/32", &mut buf),
        Some([0x44; 32])
    );
    assert_eq!(resolve(15, "[1000] 10.4.0.9/32", &mut buf), None);
    wg.delete().unwrap();
}
