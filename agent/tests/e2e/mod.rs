//! A test topology of network namespaces: an underlay router, a
//! map-server, xTRs with a LAN host behind each, mobile nodes; real
//! wireguard-go, real map-server and agents as processes.
//!
//! Underlay: the router joins every node's veth, each in its own /24 of
//! 172.31.N.0 (N per node). LANs: 10.N.0.0/24 behind xTR N. Overlay
//! control addresses: 100.64.0.N; the map-server is 100.64.0.1.

#![allow(dead_code)]

pub mod lab;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

/// Runs `ip` for the topology (the product never does); panics with its
/// error output when it fails.
pub fn ip(args: &[&str]) {
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

/// Runs a command in namespace `ns`; returns its output.
pub fn exec(ns: &str, cmd: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .output()
        .expect("ip netns exec")
}

pub fn sysctl(ns: &str, key: &str, value: &str) {
    let out = exec(ns, &["sysctl", "-qw", &format!("{key}={value}")]);
    assert!(
        out.status.success(),
        "sysctl {key}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A process of the topology, stopped (SIGTERM, then waited for) on drop;
/// its log lines arrive on `log`.
pub struct Process {
    pub name: String,
    child: Child,
    pub log: Receiver<String>,
}

impl Process {
    /// Starts `program args` in `ns`; waits until a log line contains
    /// `ready` (panics, with the log, if the process says ERROR first or
    /// exits).
    pub fn start(name: &str, ns: &str, program: &str, args: &[&str], ready: &str) -> Process {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .env("LISPGUARD_LOG_TIME", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = channel();
        let tag = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if ECHO_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
                    eprintln!("{tag}: {line}");
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let process = Process {
            name: name.into(),
            child,
            log,
        };
        process.await_log(ready);
        process
    }

    /// Waits for a log line containing `text` (the process's own account
    /// of an event); panics if it exits or fails first.
    pub fn await_log(&self, text: &str) -> String {
        self.await_log_within(text, Duration::from_secs(30))
    }

    /// As [`Process::await_log`], waiting up to `limit` in all (a process
    /// that logs other lines meanwhile does not make it wait longer).
    pub fn await_log_within(&self, text: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(line) if line.starts_with("ERROR") => panic!("{}: {line}", self.name),
                Ok(_) => {}
                Err(e) => panic!("{}: no '{text}' in its log: {e}", self.name),
            }
        }
    }

    /// The process's pid (`ip netns exec` execs the program itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        let _ = self.child.wait();
    }
}

/// The WireGuard backend the daemons of a lab use: wireguard-go unless
/// LISPGUARD_TEST_BACKEND says `kernel` (tests/vm/run.sh, in a VM whose
/// kernel has the module).
pub fn backend() -> String {
    std::env::var("LISPGUARD_TEST_BACKEND").unwrap_or_else(|_| "userspace".into())
}

/// Namespaces, deleted (with their interfaces) on drop.
pub struct Namespaces {
    pub names: Vec<String>,
    pub dir: PathBuf,
}

/// A tag unique to this process (its pid in base 36), so that two test
/// runs on one host never share a namespace, an interface name (the UAPI
/// sockets in /var/run/wireguard are shared by every namespace) or a
/// directory.
pub fn run_id() -> String {
    let mut pid = std::process::id();
    let mut id = Vec::new();
    loop {
        id.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(pid % 36) as usize]);
        pid /= 36;
        if pid == 0 {
            break;
        }
    }
    id.reverse();
    String::from_utf8(id).unwrap()
}

impl Namespaces {
    /// Holds the namespaces of a lab, and a directory for its keys and
    /// configuration files: private to root (0700), removed on drop.
    pub fn new(tag: &str) -> Namespaces {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("lge2e-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .expect("the lab's directory");
        Namespaces {
            names: Vec::new(),
            dir,
        }
    }

    /// A namespace named `prefix-name`, with lo up.
    pub fn add(&mut self, name: &str) -> String {
        let ns = format!("lge-{name}");
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        self.names.push(ns.clone());
        ns
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A veth pair between two namespaces with addresses on each end.
pub fn link(a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: &str) {
    ip(&[
        "-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
    ]);
    ip(&["-n", a, "addr", "add", a_addr, "dev", a_if]);
    ip(&["-n", b, "addr", "add", b_addr, "dev", b_if]);
    ip(&["-n", a, "link", "set", a_if, "up"]);
    ip(&["-n", b, "link", "set", b_if, "up"]);
}

pub fn route(ns: &str, prefix: &str, via: &str) {
    ip(&["-n", ns, "route", "add", prefix, "via", via]);
}

/// `ping -c COUNT` from `ns`; the number of replies.
pub fn ping(ns: &str, to: &str, count: u32) -> (u32, String) {
    let out = exec(
        ns,
        &[
            "ping",
            "-n",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "5",
            to,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let received = text
        .lines()
        .find_map(|l| {
            l.split(", ")
                .find(|p| p.ends_with("received"))
                .map(|p| p.trim_end_matches(" received").trim().to_string())
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (received, text)
}

/// The path of a binary of this workspace: beside the agent's in tests
/// (tests/run.sh builds all binaries before the tests), in the running
/// program's parent directory for the demo (target/release/examples).
pub fn binary(name: &str) -> String {
    let dir = match option_env!("CARGO_BIN_EXE_lispguard") {
        Some(agent) => Path::new(agent).parent().map(Path::to_path_buf),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.parent()?.to_path_buf())),
    };
    let path = dir.unwrap_or_default().join(name);
    assert!(
        path.exists(),
        "{} is not built: cargo build --workspace --bins",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// Whether processes' log lines are echoed to stderr (tests: yes, where
/// libtest captures them; the demo prints its own account).
pub static ECHO_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Runs `f` on a thread of its own inside namespace `ns` and waits for it:
/// sockets it opens live there. The calling thread stays where it is.
pub fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in(ns, f).join().expect("the thread in the namespace")
}

/// Runs `f` on a thread of its own moved into namespace `ns` (setns
/// changes only the calling thread's namespace).
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("the namespace");
        // SAFETY: setns on an open namespace file; affects this thread only.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// A scan from namespace `ns`: one UDP datagram to each of `count`
/// overlay addresses from 10.200.0.1 on (none registered), `rate` per
/// second. `started` gets a message after the first second's worth.
pub fn scan(
    ns: &str,
    count: u32,
    rate: u32,
    started: std::sync::mpsc::Sender<()>,
) -> std::thread::JoinHandle<u32> {
    spawn_in(ns, move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let begin = std::time::Instant::now();
        let first = u32::from(std::net::Ipv4Addr::new(10, 200, 0, 1));
        let mut sent = 0;
        for n in 0..count {
            let due = begin + Duration::from_secs_f64(f64::from(n) / f64::from(rate));
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
            let to = std::net::Ipv4Addr::from(first + n);
            // Refused ones come back as ICMP errors on later sends: ignored.
            if socket.send_to(b"scan", (to, 9)).is_ok() {
                sent += 1;
            }
            if n == rate {
                let _ = started.send(());
            }
        }
        sent
    })
}

/// The round-trip time `ping` printed for its first reply, in ms.
pub fn rtt_ms(ping_output: &str) -> Option<f64> {
    let at = ping_output.find("time=")? + 5;
    let rest = &ping_output[at..];
    rest[..rest.find(' ')?].parse().ok()
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (in parentheses): utime is the 14th
    // field of the line, stime the 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}
