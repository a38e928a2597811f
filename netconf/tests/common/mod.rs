//! Test helpers: a fresh network namespace per test, unique interface
//! names, waiting on fds and processes without sleeping.

#![allow(dead_code)]

use std::{
    fs, io,
    ops::Deref,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::PathBuf,
    time::Duration,
};

use netconf::{Backend, Rtnl, WireGuard};

/// Moves the calling thread into a new, empty network namespace and brings
/// its `lo` up. Namespaces are per thread, and libtest runs each test on a
/// thread of its own; netlink sockets opened and processes (wireguard-go)
/// started from this thread afterwards live in the new namespace.
pub fn netns() -> Rtnl {
    // SAFETY: plain syscall; only affects the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        panic!(
            "unshare(CLONE_NEWNET): {} (tests need root)",
            io::Error::last_os_error()
        );
    }
    let rtnl = Rtnl::new().expect("rtnetlink socket");
    rtnl.set_up("lo", None).expect("lo up");
    rtnl
}

/// An interface name unique to this test process and test: the UAPI socket
/// directory /var/run/wireguard is shared by all namespaces.
pub fn ifname(n: u32) -> String {
    format!("nct{}-{n}", std::process::id())
}

/// The path of wireguard-go's UAPI socket for `name`.
pub fn uapi_socket(name: &str) -> PathBuf {
    PathBuf::from(format!("/var/run/wireguard/{name}.sock"))
}

/// The backend under test: wireguard-go unless LISPGUARD_TEST_BACKEND says
/// `kernel` (tests/vm/run.sh, in a VM whose kernel has the module).
pub fn backend() -> Backend {
    match std::env::var("LISPGUARD_TEST_BACKEND").as_deref() {
        Ok("kernel") => Backend::Kernel,
        _ => Backend::Userspace,
    }
}

/// A WireGuard interface that is deleted when the test ends, even when it
/// fails, so that no wireguard-go outlives its test.
pub struct Wg(Option<WireGuard>);

impl Wg {
    pub fn up(name: &str, key: &[u8; 32], port: u16) -> Wg {
        Wg(Some(
            WireGuard::up(name, backend(), key, port).expect("WireGuard::up"),
        ))
    }

    /// Deletes it now, checking the result.
    pub fn delete(mut self) {
        self.0.take().unwrap().delete().expect("WireGuard::delete");
    }
}

impl Deref for Wg {
    type Target = WireGuard;
    fn deref(&self) -> &WireGuard {
        self.0.as_ref().unwrap()
    }
}

impl Drop for Wg {
    fn drop(&mut self) {
        if let Some(wg) = self.0.take() {
            let _ = wg.delete();
        }
    }
}

/// Waits until `fd` is readable; false on timeout.
pub fn wait_readable(fd: &impl AsRawFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) } {
            n if n > 0 => return true,
            0 => return false,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            _ => panic!("poll: {}", io::Error::last_os_error()),
        }
    }
}

/// The pid of the wireguard-go serving `name` (its command line is
/// `wireguard-go <name>`), if one runs.
pub fn wireguard_go_pid(name: &str) -> Option<i32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
        let mut args = cmdline.split(|&b| b == 0);
        let ours = args.next()?.ends_with(b"wireguard-go") && args.next()? == name.as_bytes();
        ours.then_some(pid)
    })
}

/// A pidfd for `pid`: readable once the process has exited.
pub fn pidfd(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned from here on.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The network namespace (as /proc shows it, e.g. "net:[4026532301]") of
/// a process, or of the calling thread for `None`.
pub fn netns_of(pid: Option<i32>) -> String {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/ns/net"),
        None => "/proc/thread-self/ns/net".to_string(),
    };
    fs::read_link(path)
        .expect("readlink ns/net")
        .to_string_lossy()
        .into_owned()
}
