//! Load generator: Map-Requests per second, latency and the server's CPU
//! time per reply over loopback UDP, with 10 to 1M registered EIDs, and
//! memory per registration.
//! `cargo bench -p mapserver --bench load [-- [echo|engine] [pin] SECONDS [N...]]`
//! `--data FILE` also writes the runs over sockets there as TSV, for
//! `tests/bench/plots.sh`.
//!
//! Server and load generator share this machine (and its cores). `echo`
//! puts a trivial UDP server in the map-server's place (it answers every
//! request with one prepared Map-Reply, its nonce patched in, with the
//! map-server's socket calls): the generator's ceiling, and the kernel's
//! part of the server's CPU per reply. `pin` puts the server's threads on
//! CPU 0 and the generator's on CPU 1, with one receive thread.
//! `engine` leaves the sockets out: threads feed the engine requests as
//! the receive threads do, once all under one Mutex (the engine's lock
//! before admission.rs) and once as the server does now (admission
//! without a lock, answers under a read lock).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{config, request, A, B};
use lisp::Message;
use mapserver::admission::Directory;
use mapserver::db::{Locators, Mapping, Rloc};
use mapserver::engine::MapServer;
use mapserver::metrics::Metrics;
use mapserver::outbox::{Outbox, OutboxExt};
use mapserver::server::Server;
use netconf::udp;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

const NET: u8 = 2;
/// Requests each of the two clients keeps in flight to saturate the
/// server; a window of 1 measures latency without queueing.
const SATURATING_WINDOW: usize = 32;
const CLIENTS: usize = 2;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The i-th host EID of site b: [1000] 10.x.y.z/32 (b may register more
/// specifics of 10.0.0.0/8 in this topology).
fn eid(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + 1 + i)
}

fn mapping(i: u32, now: Instant) -> Mapping {
    let rlocs = Locators::from_elem(
        Rloc {
            address: SocketAddr::from(([192, 0, 2, (i % 250) as u8 + 1], 51820)),
            priority: 1,
            weight: 100,
        },
        1,
    );
    Mapping {
        // Static: no push to wait for, so this measures lookup and reply
        // (a hit on a site's mapping also pushes to the site and holds the
        // reply for its ack; see engine.rs).
        site: None,
        eid: format!("[1000] {}/32", eid(i)).parse().unwrap(),
        key: Some(B.public_key),
        rlocs,
        ttl: 15,
        registered: now,
        expires: Some(now + Duration::from_secs(3600)),
    }
}

struct Run {
    requests: u64,
    seconds: f64,
    latencies_us: Vec<u32>,
    /// CPU time of the server's threads (or the echo's).
    server_cpu: Duration,
}

/// CPU time so far of this process's threads whose name starts with
/// `prefix` (/proc's schedstat: nanoseconds on a CPU).
fn cpu_of_threads(prefix: &str) -> Duration {
    let total = threads_named(prefix)
        .map(|task| {
            let stat = std::fs::read_to_string(task.join("schedstat")).unwrap_or_default();
            stat.split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    Duration::from_nanos(total)
}

/// This process's threads whose name starts with `prefix`: their
/// /proc/self/task/TID directories.
fn threads_named(prefix: &str) -> impl Iterator<Item = std::path::PathBuf> + '_ {
    let tasks = std::fs::read_dir("/proc/self/task").into_iter().flatten();
    tasks.flatten().map(|task| task.path()).filter(move |path| {
        std::fs::read_to_string(path.join("comm")).is_ok_and(|name| name.starts_with(prefix))
    })
}

/// What the load goes to.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    MapServer,
    Echo,
}

/// A trivial UDP server: `threads` SO_REUSEPORT sockets, each answering
/// every datagram with `reply`, the request's nonce copied in, with the
/// map-server's own batched socket calls (`recvmmsg`, `sendmmsg`): what
/// the kernel's UDP path costs a reply on this machine, and the
/// generator's ceiling. Stops when `stop` is set.
fn echo(
    addr: SocketAddr,
    threads: usize,
    reply: Vec<u8>,
    stop: Arc<AtomicBool>,
) -> (SocketAddr, Vec<std::thread::JoinHandle<()>>) {
    let bind = |addr: SocketAddr| {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket.set_recv_buffer_size(4 << 20).unwrap();
        socket.set_nonblocking(true).unwrap();
        socket.bind(&addr.into()).unwrap();
        let socket = UdpSocket::from(socket);
        udp::enable_ancillary(&socket).unwrap();
        socket
    };
    let first = bind(addr);
    let local = first.local_addr().unwrap();
    let mut sockets = vec![first];
    for _ in 1..threads {
        sockets.push(bind(local));
    }
    let handles = sockets
        .into_iter()
        .enumerate()
        .map(|(n, socket)| {
            let (reply, stop) = (reply.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("lisp-echo-{n}"))
                .spawn(move || echo_thread(&socket, reply, &stop))
                .unwrap()
        })
        .collect();
    (local, handles)
}

fn echo_thread(socket: &UdpSocket, reply: Vec<u8>, stop: &AtomicBool) {
    const BATCH: usize = 32;
    let mut batch = udp::Batch::new(BATCH, 4096);
    let mut sending = udp::Sending::new(BATCH);
    let mut replies = vec![reply; BATCH];
    let mut to = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) {
        match udp::recv_batch(socket, &mut batch) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fd = libc::pollfd {
                    fd: socket.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut fd, 1, 50) };
                continue;
            }
            Err(e) => panic!("echo: {e}"),
        }
        to.clear();
        for ((received, bytes), reply) in batch.datagrams().zip(replies.iter_mut()) {
            if bytes.len() >= 12 {
                reply[4..12].copy_from_slice(&bytes[4..12]);
                to.push(received.from);
            }
        }
        let mut done = 0;
        while done < to.len() {
            let next = to.iter().zip(&replies).skip(done);
            match udp::send_batch(socket, &mut sending, next.map(|(&a, r)| (a, &r[..]))) {
                Ok(sent) => done += sent,
                Err(_) => done += 1, // the client's buffer is full: lost
            }
        }
    }
}

/// With `pin`, the server's threads (named lisp-*) run on CPU 0 and the
/// clients on CPU 1, as the issue measured: the server's figures without
/// the generator on its core.
fn pin_to(cpu: usize, thread: libc::pid_t) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(thread, size_of::<libc::cpu_set_t>(), &set);
    }
}

fn pin_server_threads() {
    let tids = threads_named("lisp-").filter_map(|task| task.file_name()?.to_str()?.parse().ok());
    for tid in tids {
        pin_to(0, tid);
    }
}

/// One client: keeps WINDOW requests in flight for `duration`.
fn client(
    server: SocketAddr,
    eids: u32,
    window: usize,
    duration: Duration,
    seed: u64,
    pin: bool,
) -> (u64, Vec<u32>) {
    if pin {
        pin_to(1, 0);
    }
    let socket = UdpSocket::bind((A.control_address(NET), 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut sent_at = std::collections::HashMap::new();
    let mut next_nonce = seed << 32;
    let mut send = |sent_at: &mut std::collections::HashMap<u64, Instant>| {
        let target = eid(rng.u32(..eids));
        next_nonce += 1;
        let msg = request(next_nonce, &format!("[1000] {target}/32"));
        sent_at.insert(next_nonce, Instant::now());
        socket.send_to(&msg, server).unwrap();
    };
    for _ in 0..window {
        send(&mut sent_at);
    }
    let mut latencies = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let Ok((len, _)) = socket.recv_from(&mut buf) else {
            // A reply lost (socket buffer full): refill the window.
            sent_at.clear();
            for _ in 0..window {
                send(&mut sent_at);
            }
            continue;
        };
        if let Ok(Message::MapReply(reply)) = Message::parse(&buf[..len]) {
            assert!(
                !reply.records.get(0).unwrap().locators.is_empty(),
                "every EID is registered"
            );
            if let Some(at) = sent_at.remove(&reply.nonce) {
                latencies.push(at.elapsed().as_micros() as u32);
            }
        }
        send(&mut sent_at);
    }
    (latencies.len() as u64, latencies)
}

fn measure(
    target: Target,
    eids: u32,
    threads: usize,
    window: usize,
    duration: Duration,
    pin: bool,
) -> (Run, u64) {
    let metrics = Arc::new(Metrics::default());
    let cfg = config(NET, &[&A, &B], "rate_limit = 0");
    let now = Instant::now();
    let mut engine = MapServer::new(&cfg, metrics, now, fastrand::Rng::with_seed(1));
    let before = rss_bytes();
    for i in 0..eids {
        engine.insert_mapping(mapping(i, now));
    }
    let per_registration = (rss_bytes().saturating_sub(before)) / u64::from(eids.max(1));
    let listen = SocketAddr::from(([127, NET, 0, 1], 0));
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, server, echoes) = match target {
        Target::MapServer => {
            let server = Server::start(engine, listen, threads, Default::default()).unwrap();
            (server.local_addr(), Some(server), Vec::new())
        }
        Target::Echo => {
            // The map-server's own answer to one request, as the template.
            let mut out = Outbox::default();
            let from = SocketAddr::new(A.control_address(NET), 4342);
            let msg = request(1, &format!("[1000] {}/32", eid(0)));
            engine.handle(now, from, &msg, &mut out);
            let reply = out.datagrams().next().unwrap().1.to_vec();
            let (addr, echoes) = echo(listen, threads, reply, stop.clone());
            (addr, None, echoes)
        }
    };
    if pin {
        pin_server_threads();
    }
    let cpu_before = cpu_of_threads("lisp-");
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS as u64)
        .map(|n| std::thread::spawn(move || client(addr, eids, window, duration, n + 1, pin)))
        .collect();
    let mut run = Run {
        requests: 0,
        seconds: 0.0,
        latencies_us: Vec::new(),
        server_cpu: Duration::ZERO,
    };
    for c in clients {
        let (n, lat) = c.join().unwrap();
        run.requests += n;
        run.latencies_us.extend(lat);
    }
    run.seconds = started.elapsed().as_secs_f64();
    run.server_cpu = cpu_of_threads("lisp-").saturating_sub(cpu_before);
    drop(server);
    stop.store(true, Ordering::Relaxed);
    for e in echoes {
        e.join().unwrap();
    }
    (run, per_registration)
}

/// How the engine-only threads reach the engine.
enum Locking {
    /// One Mutex around everything: `handle`.
    Global(Mutex<MapServer>),
    /// As the server does: admission with no lock, requests that push
    /// nothing under a read lock.
    Shared(Arc<Directory>, RwLock<MapServer>),
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Requests answered per second by `threads` threads feeding `locking`
/// the messages in `requests` round, and the CPU µs each took.
fn feed(locking: &Locking, requests: &[Vec<u8>], threads: usize, duration: Duration) -> (f64, f64) {
    let from = SocketAddr::new(A.control_address(NET), 40000);
    let started = Instant::now();
    let end = started + duration;
    let (answered, cpu) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|n| {
                std::thread::Builder::new()
                    .name(format!("lisp-engine-{n}"))
                    .spawn_scoped(scope, move || {
                        let mut out = Outbox::default();
                        let mut answered = 0u64;
                        let cpu = thread_cpu();
                        let mut next = n * requests.len() / threads.max(1);
                        while Instant::now() < end {
                            for _ in 0..64 {
                                let msg = &requests[next % requests.len()];
                                next += 1;
                                let now = Instant::now();
                                match locking {
                                    Locking::Global(engine) => {
                                        engine.lock().unwrap().handle(now, from, msg, &mut out)
                                    }
                                    Locking::Shared(directory, engine) => {
                                        let admitted = directory.admit(now, from, msg).unwrap();
                                        if !engine.read().unwrap().answer(now, &admitted, &mut out)
                                        {
                                            engine.write().unwrap().decide(now, admitted, &mut out);
                                        }
                                    }
                                }
                                answered += out.datagrams().count() as u64;
                                out.clear();
                            }
                        }
                        (answered, thread_cpu() - cpu)
                    })
                    .unwrap()
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .fold((0u64, Duration::ZERO), |(n, cpu), (m, c)| (n + m, cpu + c))
    });
    let seconds = started.elapsed().as_secs_f64();
    let cpu_us = cpu.as_secs_f64() * 1e6 / answered.max(1) as f64;
    (answered as f64 / seconds, cpu_us)
}

/// The engine alone, without sockets: replies/s with one Mutex and with
/// the server's locking, 1 and 2 threads.
fn engine_only(eids: u32, duration: Duration) {
    let metrics = Arc::new(Metrics::default());
    let cfg = config(NET, &[&A, &B], "rate_limit = 0");
    let now = Instant::now();
    let mut engine = MapServer::new(&cfg, metrics, now, fastrand::Rng::with_seed(1));
    for i in 0..eids {
        engine.insert_mapping(mapping(i, now));
    }
    let mut rng = fastrand::Rng::with_seed(7);
    let requests: Vec<Vec<u8>> = (0..4096u64)
        .map(|n| request(n, &format!("[1000] {}/32", eid(rng.u32(..eids)))))
        .collect();
    let mut locking = Locking::Global(Mutex::new(engine));
    for name in ["one Mutex", "admission + RwLock"] {
        for threads in [1, 2] {
            let (per_second, cpu_us) = feed(&locking, &requests, threads, duration);
            println!("{eids:>10} {name:>20} {threads:>8} {per_second:>12.0} {cpu_us:>13.2}");
        }
        if let Locking::Global(engine) = locking {
            let engine = engine.into_inner().unwrap();
            locking = Locking::Shared(engine.directory().clone(), RwLock::new(engine));
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes --bench; take numbers and `echo` only.
    let target = match std::env::args().any(|a| a == "echo") {
        true => Target::Echo,
        false => Target::MapServer,
    };
    let engine = std::env::args().any(|a| a == "engine");
    let pin = std::env::args().any(|a| a == "pin");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = args
        .iter()
        .position(|a| a == "--data")
        .map(|k| args.get(k + 1).expect("--data FILE").clone());
    let numbers: Vec<u64> = args
        .iter()
        .filter(|a| Some(*a) != data.as_ref())
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = numbers.first().copied().unwrap_or(5);
    let sizes: Vec<u32> = if numbers.len() > 1 {
        numbers[1..].iter().map(|&n| n as u32).collect()
    } else {
        vec![10, 1_000, 100_000, 1_000_000]
    };
    if engine {
        println!(
            "{:>10} {:>20} {:>8} {:>12} {:>13}",
            "EIDs", "locking", "threads", "replies/s", "CPU µs/reply"
        );
        for eids in sizes {
            engine_only(eids, Duration::from_secs(seconds));
        }
        return;
    }
    println!(
        "{:>10} {:>8} {:>9} {:>12} {:>13} {:>9} {:>9} {:>14}",
        "EIDs",
        "threads",
        "in flight",
        "replies/s",
        "CPU µs/reply",
        "p50 µs",
        "p99 µs",
        "RSS/mapping B"
    );
    let mut tsv = String::from(
        "target\teids\tthreads\tin_flight\treplies_per_s\tcpu_us_per_reply\
         \tmean_us\tp50_us\tp99_us\trss_per_mapping_b\n",
    );
    let target_name = match target {
        Target::MapServer => "mapserver",
        Target::Echo => "echo",
    };
    // The first run of a size measures memory: later ones reuse what the
    // previous run freed.
    // Pinned, the server has one core: one receive thread.
    let runs: &[(usize, usize)] = match pin {
        false => &[(1, SATURATING_WINDOW), (2, SATURATING_WINDOW), (2, 1)],
        true => &[(1, SATURATING_WINDOW), (1, 1)],
    };
    for eids in sizes {
        for (n, &(threads, window)) in runs.iter().enumerate() {
            let duration = Duration::from_secs(seconds);
            let (mut run, per_registration) = measure(target, eids, threads, window, duration, pin);
            run.latencies_us.sort_unstable();
            let memory = match n {
                0 => per_registration.to_string(),
                _ => "-".into(),
            };
            let cpu_per_reply = run.server_cpu.as_secs_f64() * 1e6 / run.requests.max(1) as f64;
            let replies_per_s = run.requests as f64 / run.seconds;
            let (p50, p99) = (
                percentile(&run.latencies_us, 0.50),
                percentile(&run.latencies_us, 0.99),
            );
            let mean = run
                .latencies_us
                .iter()
                .map(|&us| f64::from(us))
                .sum::<f64>()
                / run.latencies_us.len().max(1) as f64;
            tsv += &format!(
                "{target_name}\t{eids}\t{threads}\t{}\t{replies_per_s:.0}\t{cpu_per_reply:.3}\
                 \t{mean:.1}\t{p50}\t{p99}\t{memory}\n",
                window * CLIENTS
            );
            println!(
                "{:>10} {:>8} {:>9} {:>12.0} {:>13.2} {:>9} {:>9} {:>14}",
                eids,
                threads,
                window * CLIENTS,
                replies_per_s,
                cpu_per_reply,
                p50,
                p99,
                memory
            );
        }
    }
    if let Some(file) = data {
        std::fs::write(&file, tsv).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}
