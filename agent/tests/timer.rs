//! async-io's timers fire. On 32-bit mips musl, rustix (without `--cfg
//! fix_y2038`, see .cargo/config.toml) hands a 64-bit-time itimerspec to
//! the 32-bit `timerfd_settime`: the timer is never armed and every timer
//! hangs, so the agent's retransmits and expiries never happen. cross/test.sh
//! runs this under qemu-mips to catch that regression; it also runs on the
//! host with the rest of the workspace's tests.

use std::time::{Duration, Instant};

/// Fails the test instead of hanging it when the timer is broken.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("async-io timer never fired (mips: is --cfg fix_y2038 in the rustflags?)")
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
