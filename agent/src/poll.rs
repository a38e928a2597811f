//! How the event loop waits: one ppoll(2) over its descriptors, its next
//! deadline the timeout. Nothing is registered between two waits and no
//! other thread takes part, so a packet that wakes the loop costs one
//! system call to wait for, where async-io's reactor cost a dozen (its
//! one-shot registrations made again at every turn, a new timer each
//! time) and two thread wake-ups; on a first contact's path that was tens
//! of microseconds at every step, and more on a small router.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// What waits for `fd` to be readable.
pub fn readable(fd: &impl AsRawFd) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Waits for nothing: poll skips a negative descriptor.
pub const NOTHING: libc::pollfd = libc::pollfd {
    fd: -1,
    events: 0,
    revents: 0,
};

/// Whether `fd` has something to read, or an end or error to read (a
/// read then says which).
pub fn ready(fd: &libc::pollfd) -> bool {
    fd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

/// Waits until one of `fds` is ready or `deadline` has passed, and says
/// how many are ready (0: the deadline, or a signal came in between).
pub fn wait(fds: &mut [libc::pollfd], deadline: Instant) -> io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    // A wait longer than the timespec holds is no different from an
    // endless one, which the deadline never asks for.
    let timeout = libc::timespec {
        tv_sec: left.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: left.subsec_nanos() as _,
    };
    // SAFETY: `fds` is a valid array of its length, `timeout` a valid
    // timespec, and no signal mask is given.
    let n = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &timeout,
            std::ptr::null(),
        )
    };
    match n {
        n if n >= 0 => Ok(n as usize),
        _ => match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            e => Err(e),
        },
    }
}
