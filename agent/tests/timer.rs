//! Timers on 32-bit mips musl, where a time_t of the wrong width shows: a
//! wait that never ends, or ends at once. cross/test.sh runs this under
//! qemu-mips; it runs on the host with the rest of the workspace's tests.
//! - The agent's event loop waits with `agent::poll::wait` (ppoll and a
//!   `timespec`).
//! - The map-server's reactor is async-io's: rustix (without `--cfg
//!   fix_y2038`, see .cargo/config.toml) hands a 64-bit-time itimerspec to
//!   the 32-bit `timerfd_settime`, the timer is never armed and every
//!   timer hangs. async-io is a dev-dependency here for this test only:
//!   the map-server's own tests do not run on mips.

use agent::poll;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Fails the test instead of hanging it when the wait is broken.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("the wait never ended (mips: is --cfg fix_y2038 in the rustflags? is the timespec's time_t right?)")
}

#[test]
fn a_wait_with_nothing_ready_ends_at_its_deadline() {
    let (waited, ready) = within(Duration::from_secs(30), || {
        let (quiet, _other) = UnixStream::pair().unwrap();
        let mut fds = [poll::readable(&quiet), poll::NOTHING];
        let start = Instant::now();
        let ready = poll::wait(&mut fds, start + Duration::from_millis(50)).unwrap();
        (start.elapsed(), ready)
    });
    assert_eq!(ready, 0);
    assert!(
        waited >= Duration::from_millis(50),
        "ended after {waited:?}"
    );
    // A deadline long past: at once.
    let (quiet, _other) = UnixStream::pair().unwrap();
    let mut fds = [poll::readable(&quiet)];
    let past = Instant::now() - Duration::from_secs(1);
    assert_eq!(poll::wait(&mut fds, past).unwrap(), 0);
}

#[test]
fn a_wait_ends_when_a_descriptor_is_ready_and_says_which() {
    let ready = within(Duration::from_secs(30), || {
        let (quiet, _q) = UnixStream::pair().unwrap();
        let (written, mut writer) = UnixStream::pair().unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            std::io::Write::write_all(&mut writer, b"x").unwrap();
            writer
        });
        let mut fds = [poll::readable(&quiet), poll::readable(&written)];
        let n = poll::wait(&mut fds, Instant::now() + Duration::from_secs(20)).unwrap();
        (n, poll::ready(&fds[0]), poll::ready(&fds[1]))
    });
    assert_eq!(ready, (1, false, true));
}

#[test]
fn timer_after_fires() {
    let waited = within(Duration::from_secs(30), || {
        let start = Instant::now();
        async_io::block_on(async_io::Timer::after(Duration::from_millis(50)));
        start.elapsed()
    });
    assert!(
        waited >= Duration::from_millis(50),
        "fired after {waited:?}"
    );
}

#[test]
fn timer_at_wins_race_with_pending_future() {
    let (late, deadline) = within(Duration::from_secs(30), || {
        let deadline = Instant::now() + Duration::from_millis(80);
        let pending = async {
            std::future::pending::<()>().await;
            false
        };
        let timeout = async {
            async_io::Timer::at(deadline).await;
            true
        };
        let timed_out = async_io::block_on(futures_lite::future::or(pending, timeout));
        assert!(timed_out, "the never-completing future won");
        (Instant::now(), deadline)
    });
    assert!(late >= deadline, "returned {:?} early", deadline - late);
}
