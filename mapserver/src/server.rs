//! Runs the engine over UDP: one SO_REUSEPORT socket and thread per core
//! (the kernel spreads senders across them), all sharing one engine, and a
//! timer thread that polls the engine when it says it is due. A receive
//! thread finds the sending site, checks its rate, verifies and parses
//! the message against the engine's [`Directory`] without any lock
//! (forged and malformed datagrams never reach the engine's lock); the
//! engine's lock is held only while deciding. Datagrams go out after it
//! is released, and state changes go, in order, to whoever keeps them
//! ([`Host::changes`]).
//!
//! Where the map-server has its WireGuard interface, a datagram is taken
//! only if it arrived on it: WireGuard vouches for the inner source
//! address, the underlay does not. Plain LISP xTRs have a listener of
//! their own on the underlay (off unless configured), one socket and
//! thread, where a site is found by its EID prefixes and key instead
//! ([`Directory::admit_underlay`]).

use crate::admission::{Directory, Input, Refused};
use crate::change::Change;
use crate::engine::MapServer;
use crate::metrics::{DropReason, Metrics};
use crate::outbox::{Outbox, OutboxExt, MAX_DATAGRAM};
use arc_swap::ArcSwap;
use async_channel::{Receiver, Sender};
use async_io::{Async, Timer};
use futures_lite::FutureExt;
use netconf::udp;
use netconf::PublicKey;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Reads where each WireGuard peer's packets come from (the map-server's
/// own interface), for NAT traversal.
pub type Observer = Arc<dyn Fn() -> Vec<(PublicKey, Option<SocketAddr>)> + Send + Sync>;

/// Receive buffer of each LISP socket: room for a burst of some thousands
/// of requests (the kernel default, ~200 KB, lost 8-11 % of a burst).
const RECEIVE_BUFFER: usize = 4 << 20;

/// What ties a server to its host; nothing in loopback tests and
/// benchmarks.
#[derive(Clone, Default)]
pub struct Host {
    /// Index of the WireGuard interface control messages must arrive on.
    pub tunnel: Option<u32>,
    /// Asked before each Map-Register.
    pub observer: Option<Observer>,
    /// Receives the engine's state changes, in the order they were made.
    pub changes: Option<mpsc::Sender<Vec<Change>>>,
    /// Where plain LISP xTRs reach the map-server on the underlay (port 0
    /// picks one); None: no such listener.
    pub underlay: Option<SocketAddr>,
}

/// Which listener a datagram came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listener {
    /// The sites' control addresses, in the tunnel.
    Control,
    /// Plain LISP xTRs on the underlay.
    Underlay,
}

impl Host {
    /// Hands the changes in `out` on; called with the engine locked, so
    /// that they arrive in the order the engine made them.
    fn hand_on(&self, out: &Outbox) {
        let Some(to) = &self.changes else { return };
        let changes: Vec<Change> = out.changes().cloned().collect();
        if !changes.is_empty() && to.send(changes).is_err() {
            log::error!("state changes lost: the store is gone");
        }
    }
}

/// The longest the timer thread sleeps with nothing due (expiry is checked
/// at least this often even if a deadline was missed).
const IDLE_TICK: Duration = Duration::from_secs(1);

/// When the timer thread polls the engine next, and how to make it sooner.
struct Alarm {
    /// Read and written with the engine locked, so that no thread sees an
    /// engine whose deadline the timer thread has not planned for yet.
    at: Mutex<Instant>,
    wake: Sender<()>,
}

/// What the threads of a server share.
struct Shared {
    /// Read-locked to answer Map-Requests that need no push (many threads
    /// at once), write-locked for everything else.
    engine: RwLock<MapServer>,
    /// The engine's directory, swapped in whenever the engine has a new
    /// one (with the engine locked): the receive threads' lock-free view.
    directory: ArcSwap<Directory>,
    host: Host,
    alarm: Alarm,
}

impl Shared {
    /// Runs `f` on the engine; then, still holding it, hands the changes
    /// on (in the order the engine made them) and wakes the timer thread
    /// if the engine is due before it planned.
    fn decide<R>(&self, out: &mut Outbox, f: impl FnOnce(&mut MapServer, &mut Outbox) -> R) -> R {
        let mut engine = write(&self.engine);
        let result = f(&mut engine, out);
        self.host.hand_on(out);
        if !Arc::ptr_eq(&self.directory.load(), engine.directory()) {
            self.directory.store(engine.directory().clone());
        }
        let planned = *self.alarm.at.lock().unwrap_or_else(|p| p.into_inner());
        if engine.poll_at().is_some_and(|due| due < planned) {
            let _ = self.alarm.wake.try_send(());
        }
        result
    }

    /// A datagram `bytes` arrived.
    fn on_datagram(
        &self,
        listener: Listener,
        received: &udp::Received,
        bytes: &[u8],
        metrics: &Metrics,
        out: &mut Outbox,
    ) {
        let from = received.from;
        let started = Instant::now();
        let directory = self.directory.load();
        if listener == Listener::Control && !udp::from_tunnel(received, self.host.tunnel) {
            let refused = Refused {
                reason: DropReason::NotFromTunnel,
                site: None,
            };
            return directory.refuse(started, refused, from);
        }
        let admitted = match listener {
            Listener::Control => directory.admit(started, from, bytes),
            Listener::Underlay => directory.admit_underlay(started, from, bytes),
        };
        let admitted = match admitted {
            Ok(admitted) => admitted,
            Err(refused) => {
                directory.refuse(started, refused, from);
                return metrics.processed(started.elapsed());
            }
        };
        // Registrations are rare: the NAT view is refreshed before each, so
        // that the map-server hands out what it sees from then on.
        let seen = match (&self.host.observer, &admitted.input) {
            (Some(observe), Input::Register(_)) => observe(),
            _ => Vec::new(),
        };
        if read(&self.engine).answer(started, &admitted, out) {
            return metrics.processed(started.elapsed());
        }
        self.decide(out, |engine, out| {
            for (key, endpoint) in &seen {
                engine.observed_endpoint(key, *endpoint, out);
            }
            engine.decide(started, admitted, out);
        });
        metrics.processed(started.elapsed());
    }

    /// Runs what is due; returns when to run again.
    fn on_timer(&self, now: Instant, out: &mut Outbox) -> Instant {
        let mut engine = write(&self.engine);
        engine.poll(now, out);
        self.host.hand_on(out);
        let next = engine
            .poll_at()
            .map_or(now + IDLE_TICK, |at| at.min(now + IDLE_TICK));
        *self.alarm.at.lock().unwrap_or_else(|p| p.into_inner()) = next;
        next
    }
}

/// A running map-server. Dropping it stops its threads.
pub struct Server {
    shared: Arc<Shared>,
    /// For what the engine sends outside a receive loop (revoke, reload).
    socket: UdpSocket,
    local_addr: SocketAddr,
    underlay_addr: Option<SocketAddr>,
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// A UDP socket on `addr` that other sockets may share (SO_REUSEPORT),
/// with a receive buffer for bursts and the ancillary data [`udp::recv`]
/// reads.
fn shared_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    udp::size_receive_buffer(&socket, RECEIVE_BUFFER)?;
    udp::enable_ancillary(&socket)?;
    Ok(socket)
}

/// Locks the engine to change it; a thread that panicked holding it
/// leaves it usable, as every engine method leaves its state consistent
/// between statements.
fn write(engine: &RwLock<MapServer>) -> RwLockWriteGuard<'_, MapServer> {
    engine
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks the engine to read it (answers to requests that need no push).
fn read(engine: &RwLock<MapServer>) -> RwLockReadGuard<'_, MapServer> {
    engine
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Server {
    /// Binds `threads` sockets to `listen` (port 0 picks one) and starts
    /// serving.
    pub fn start(
        engine: MapServer,
        listen: SocketAddr,
        threads: usize,
        host: Host,
    ) -> io::Result<Server> {
        let first = shared_socket(listen)?;
        let local_addr = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..threads.max(1) {
            sockets.push(shared_socket(local_addr)?);
        }
        let underlay = host.underlay.map(shared_socket).transpose()?;
        let underlay_addr = underlay.as_ref().map(UdpSocket::local_addr).transpose()?;
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let (wake, woken) = async_channel::bounded::<()>(1);
        let shared = Arc::new(Shared {
            directory: ArcSwap::new(engine.directory().clone()),
            engine: RwLock::new(engine),
            host,
            alarm: Alarm {
                at: Mutex::new(Instant::now()),
                wake,
            },
        });
        let timer_socket = sockets[0].try_clone()?;
        let socket = sockets[0].try_clone()?;
        let mut threads = Vec::new();
        let listeners = sockets
            .into_iter()
            .map(|s| (Listener::Control, s))
            .chain(underlay.map(|s| (Listener::Underlay, s)));
        for (n, (listener, socket)) in listeners.enumerate() {
            let (shared, stopped) = (shared.clone(), stopped.clone());
            let name = match listener {
                Listener::Control => format!("lisp-rx-{n}"),
                Listener::Underlay => "lisp-underlay".into(),
            };
            threads.push(std::thread::Builder::new().name(name).spawn(move || {
                async_io::block_on(receive(&shared, listener, socket).or(wait(stopped)))
            })?);
        }
        let shared_for_timer = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("lisp-timer".into())
                .spawn(move || {
                    let timing = timers(&shared_for_timer, timer_socket, woken);
                    async_io::block_on(timing.or(wait(stopped)))
                })?,
        );
        Ok(Server {
            shared,
            socket,
            local_addr,
            underlay_addr,
            stop: Some(stop),
            threads,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the underlay listener is bound, if there is one.
    pub fn underlay_addr(&self) -> Option<SocketAddr> {
        self.underlay_addr
    }

    /// Runs `f` on the engine and sends what it leaves in the outbox: for
    /// the control socket's queries and revocations, and reloads.
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut MapServer, Instant, &mut Outbox) -> R) -> R {
        let mut out = Outbox::default();
        let result = self
            .shared
            .decide(&mut out, |engine, out| f(engine, Instant::now(), out));
        for (to, bytes) in out.datagrams() {
            // The socket is non-blocking; a full buffer loses this datagram,
            // which the push schedule sends again.
            if let Err(e) = self.socket.send_to(bytes, to) {
                log::warn!("sending to {to}: {e}");
            }
        }
        result
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.take(); // closes the channel: every thread's wait() ends
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

async fn wait(stopped: Receiver<()>) {
    let _ = stopped.recv().await;
}

/// Sends what `out` holds, many datagrams a system call; one the kernel
/// refuses (no route to it) is logged and skipped.
async fn send_all(socket: &Async<UdpSocket>, sending: &mut udp::Sending, out: &mut Outbox) {
    let total = out.datagrams().count();
    let mut done = 0;
    while done < total {
        let next = || out.datagrams().skip(done);
        match socket
            .write_with(|s| udp::send_batch(s, sending, next()))
            .await
        {
            Ok(sent) => done += sent,
            Err(e) => {
                if let Some((to, _)) = next().next() {
                    log::warn!("sending to {to}: {e}");
                }
                done += 1;
            }
        }
    }
    out.clear();
}

/// Datagrams a receive thread takes in one system call: under load, one
/// call for many requests; idle, one as before.
const RECEIVE_BATCH: usize = 32;

/// One receive thread: each datagram from `socket` to the engine.
async fn receive(shared: &Shared, listener: Listener, socket: UdpSocket) {
    let socket = match Async::new(socket) {
        Ok(socket) => socket,
        Err(e) => return log::error!("cannot poll the LISP socket: {e}"),
    };
    let metrics = read(&shared.engine).metrics().clone();
    let mut batch = udp::Batch::new(RECEIVE_BATCH, MAX_DATAGRAM);
    let mut sending = udp::Sending::new(RECEIVE_BATCH);
    let mut out = Outbox::default();
    let mut overflows = udp::Overflows::default();
    loop {
        if let Err(e) = socket.read_with(|s| udp::recv_batch(s, &mut batch)).await {
            log::warn!("receiving: {e}");
            continue;
        }
        for (received, bytes) in batch.datagrams() {
            let dropped = overflows.update(received);
            if dropped > 0 {
                metrics
                    .receive_dropped
                    .fetch_add(u64::from(dropped), Relaxed);
            }
            shared.on_datagram(listener, received, bytes, &metrics, &mut out);
        }
        send_all(&socket, &mut sending, &mut out).await;
    }
}

/// The timer thread: polls the engine when it is due, or woken sooner.
async fn timers(shared: &Shared, socket: UdpSocket, woken: Receiver<()>) {
    let socket = match Async::new(socket) {
        Ok(socket) => socket,
        Err(e) => return log::error!("cannot poll the LISP socket: {e}"),
    };
    let mut out = Outbox::default();
    let mut sending = udp::Sending::new(RECEIVE_BATCH);
    loop {
        let until = shared.on_timer(Instant::now(), &mut out);
        send_all(&socket, &mut sending, &mut out).await;
        let sleep = async {
            Timer::at(until).await;
        };
        let woken = async {
            let _ = woken.recv().await;
        };
        sleep.or(woken).await;
    }
}
