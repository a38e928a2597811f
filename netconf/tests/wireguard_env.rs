//! wireguard-go and the environment: variables that would make
//! WireGuard::up wait forever for wireguard-go, and a failing
//! implementation. One test, alone in its binary, as it changes the
//! process's environment.

mod common;

use std::{sync::mpsc, thread, time::Duration};

use common::{ifname, netns, uapi_socket, Wg};
use netconf::{generate_private_key, Backend, WireGuard};

#[test]
fn environment() {
    // Set while this is the only thread of ours that runs.
    std::env::set_var("LOG_LEVEL", "verbose");
    std::env::set_var("WG_PROCESS_FOREGROUND", "1");

    // With these, wireguard-go keeps its output pipes (or never returns):
    // up() must not hang. The watchdog fails the test instead of hanging it.
    let name = ifname(1);
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let rtnl = netns();
        let wg = Wg::up(&name, &generate_private_key(), 51821);
        tx.send(rtnl.ifindex(&name).is_ok()).unwrap();
        wg.delete();
    });
    let created = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("WireGuard::up hung with LOG_LEVEL set");
    assert!(created);
    worker.join().unwrap();

    // A failing implementation: the error says which, and for what.
    let _rtnl = netns();
    std::env::set_var("WG_USERSPACE_IMPLEMENTATION", "/bin/false");
    let name = ifname(2);
    let e = WireGuard::up(&name, Backend::Userspace, &generate_private_key(), 51822)
        .err()
        .expect("/bin/false cannot be wireguard-go");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "bringing up WireGuard interface {name} (userspace): /bin/false {name} failed"
        )),
        "{msg}"
    );
    assert!(!uapi_socket(&name).exists());
}
