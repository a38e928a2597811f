//! Links, addresses, routes and address events against the real kernel, each
//! test in a fresh network namespace with a userspace WireGuard interface.

mod common;

use std::{
    io,
    time::{Duration, Instant},
};

use common::{ifname, netns, wait_readable, Wg};
use ipnet::IpNet;
use netconf::{generate_private_key, AddressEvent, AddressEvents, Backend, Rtnl, WireGuard};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Reads address events until `want` has been seen, waiting on the fd.
fn await_event(events: &AddressEvents, want: AddressEvent) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(wait_readable(events, left), "no {want:?} within 5 s");
        if events.read().expect("reading events").contains(&want) {
            return;
        }
    }
}

#[test]
fn addresses_and_address_events() {
    let rtnl = netns();
    let name = ifname(1);
    let wg = Wg::up(&name, &generate_private_key(), 51801);
    // No IPv6 link-local address of the kernel's own: its events (added,
    // then again when its duplicate detection ends) would come at any time.
    let gen_mode = format!("/proc/sys/net/ipv6/conf/{name}/addr_gen_mode");
    std::fs::write(&gen_mode, "1").unwrap();
    rtnl.set_up(&name, Some(1380)).unwrap();
    let index = rtnl.ifindex(&name).unwrap();
    assert!(index > 1, "lo is 1");

    let events = AddressEvents::subscribe().unwrap();
    assert!(events.read().unwrap().is_empty(), "nothing pending yet");

    let v4 = net("10.77.0.1/24");
    let v6 = net("fd00:77::1/64");
    for address in [v4, v6] {
        rtnl.add_address(&name, address).unwrap();
        // Already present is fine.
        rtnl.add_address(&name, address).unwrap();
        await_event(
            &events,
            AddressEvent::Added {
                ifindex: index,
                address,
            },
        );
    }

    let all = rtnl.addresses().unwrap();
    assert!(all.contains(&(index, name.clone(), v4)), "{all:?}");
    assert!(all.contains(&(index, name.clone(), v6)), "{all:?}");
    assert!(
        all.contains(&(1, "lo".to_string(), net("127.0.0.1/8"))),
        "{all:?}"
    );
    let mine = rtnl.addresses_of(&name).unwrap();
    assert!(mine.contains(&v4) && mine.contains(&v6), "{mine:?}");

    for address in [v4, v6] {
        rtnl.remove_address(&name, address).unwrap();
        await_event(
            &events,
            AddressEvent::Removed {
                ifindex: index,
                address,
            },
        );
        // Absent is fine.
        rtnl.remove_address(&name, address).unwrap();
    }
    let mine = rtnl.addresses_of(&name).unwrap();
    assert!(!mine.contains(&v4) && !mine.contains(&v6), "{mine:?}");

    wg.delete();
}

#[test]
fn routes_add_replace_remove() {
    let rtnl = netns();
    let (a, b) = (ifname(2), ifname(3));
    let wg_a = Wg::up(&a, &generate_private_key(), 51802);
    let wg_b = Wg::up(&b, &generate_private_key(), 51803);
    rtnl.set_up(&a, None).unwrap();
    rtnl.set_up(&b, None).unwrap();
    let (ia, ib) = (rtnl.ifindex(&a).unwrap(), rtnl.ifindex(&b).unwrap());

    let for_prefix = |prefix: IpNet| -> Vec<u32> {
        rtnl.routes()
            .unwrap()
            .into_iter()
            .filter(|(p, _)| *p == prefix)
            .map(|(_, oif)| oif)
            .collect()
    };

    for prefix in [net("10.88.0.0/16"), net("fd00:88::/48"), net("0.0.0.0/0")] {
        rtnl.add_route(prefix, &a).unwrap();
        rtnl.add_route(prefix, &a).unwrap(); // idempotent
        assert_eq!(for_prefix(prefix), [ia], "{prefix} via {a}");

        rtnl.add_route(prefix, &b).unwrap(); // replaces, not adds
        assert_eq!(for_prefix(prefix), [ib], "{prefix} moved to {b}");

        // Removing through the interface it no longer uses does nothing.
        rtnl.remove_route(prefix, &a).unwrap();
        assert_eq!(for_prefix(prefix), [ib]);

        rtnl.remove_route(prefix, &b).unwrap();
        assert!(for_prefix(prefix).is_empty(), "{prefix} removed");
        rtnl.remove_route(prefix, &b).unwrap(); // absent is fine
    }

    // Host bits are ignored, as the kernel would refuse them.
    rtnl.add_route(net("10.89.3.4/16"), &a).unwrap();
    assert_eq!(for_prefix(net("10.89.0.0/16")), [ia]);
    rtnl.remove_route(net("10.89.0.0/16"), &a).unwrap();
    assert!(for_prefix(net("10.89.0.0/16")).is_empty());

    // Deleting the interface takes its routes with it; removing then is fine.
    rtnl.add_route(net("10.90.0.0/24"), &b).unwrap();
    wg_b.delete();
    assert!(for_prefix(net("10.90.0.0/24")).is_empty());
    rtnl.remove_route(net("10.90.0.0/24"), &b).unwrap();
    wg_a.delete();
}

#[test]
fn errors_name_what_failed() {
    let rtnl = netns();
    let missing = ifname(4);

    let e = rtnl.ifindex(&missing).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert_eq!(e.to_string(), format!("interface {missing} not found"));

    let e = rtnl.set_up(&missing, None).unwrap_err();
    assert!(e.to_string().contains(&missing), "{e}");
    let e = rtnl.add_address(&missing, net("10.1.0.1/24")).unwrap_err();
    assert!(e.to_string().contains(&missing), "{e}");
    let e = rtnl.add_route(net("10.1.0.0/24"), &missing).unwrap_err();
    assert!(e.to_string().contains(&missing), "{e}");
    let e = rtnl.addresses_of(&missing).unwrap_err();
    assert!(e.to_string().contains(&missing), "{e}");
    // Removing from a missing interface: nothing to remove.
    rtnl.remove_address(&missing, net("10.1.0.1/24")).unwrap();
    rtnl.remove_route(net("10.1.0.0/24"), &missing).unwrap();

    let e = rtnl.ifindex("a-name-too-long-for-linux").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");

    // A real errno, with what was being done: an IPv4 route through a link
    // that is down.
    let name = ifname(5);
    let wg = Wg::up(&name, &generate_private_key(), 51805);
    let e = rtnl.add_route(net("10.1.0.0/24"), &name).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("adding 10.1.0.0/24 via {name}: ")),
        "{e}"
    );
    // Above every link's maximum: kernel WireGuard's is about 2^31 (and it
    // has no minimum), wireguard-go's TUN's 65535.
    let e = rtnl.set_up(&name, Some(u32::MAX)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("setting {name} up with mtu {}: ", u32::MAX)),
        "{e}"
    );
    wg.delete();

    // This machine may or may not have the WireGuard module.
    let kernel = ifname(6);
    match WireGuard::up(&kernel, Backend::Kernel, &generate_private_key(), 51806) {
        Ok(wg) => wg.delete().unwrap(),
        Err(e) => assert!(
            e.to_string().starts_with(&format!(
                "bringing up WireGuard interface {kernel} (kernel)"
            )),
            "{e}"
        ),
    }
}

#[test]
fn rtnl_is_per_namespace() {
    // A socket opened before unshare stays in the old namespace; one opened
    // after sees only the new one (just lo).
    let outer = Rtnl::new().unwrap();
    let inner = netns();
    let inner_addrs = inner.addresses().unwrap();
    assert!(
        inner_addrs
            .iter()
            .all(|(i, name, _)| *i == 1 && name == "lo"),
        "{inner_addrs:?}"
    );
    assert_eq!(
        outer.ifindex("lo").unwrap(),
        1,
        "the old socket still answers, from its own namespace"
    );
}
