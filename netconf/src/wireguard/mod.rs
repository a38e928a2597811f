//! The WireGuard interface, driven directly: generic netlink for the
//! kernel module ([`kernel`]), the UAPI socket for wireguard-go ([`uapi`]).
//!
//! Why not a crate: wireguard-control (LGPL-2.1-or-later) brings its own
//! netlink stack (netlink-packet-*, ~200 KB on mips) beside our neli and
//! would oblige every distributor of a static binary to allow relinking;
//! wireguard-uapi (MIT) depends on neli 0.6, derive_builder and thiserror 1,
//! i.e. a second neli. The two protocols are small: a few attributes and a
//! line protocol, below, reusing the rtnetlink module's socket and framing.
//!
//! Namespaces: the kernel backend's netlink socket is opened by
//! [`WireGuard::up`] and so acts in that thread's network namespace;
//! wireguard-go is a child of the calling thread and inherits its namespace
//! too. But the UAPI socket directory is shared by all namespaces (it is in
//! the filesystem), so interface names must be unique across namespaces
//! when the userspace backend is used.

mod kernel;
mod key;
mod uapi;

use std::{fmt, io, net::SocketAddr, time::SystemTime};

use ipnet::IpNet;
use log::debug;

pub use key::{
    format_key, generate_private_key, key_fingerprint, parse_key, public_key,
    try_generate_private_key,
};

use crate::{error::ctx, PublicKey, Rtnl};

/// Where a WireGuard interface lives; `backend = "kernel"` or
/// `"userspace"` in both daemons' configurations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The kernel module (Linux ≥ 5.6, or OpenWrt's kmod-wireguard).
    #[default]
    Kernel,
    /// wireguard-go, for kernels without the module.
    Userspace,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Kernel => "kernel",
            Backend::Userspace => "userspace",
        })
    }
}

/// One WireGuard interface.
pub struct WireGuard {
    name: String,
    driver: Driver,
}

/// How an interface is configured: its backend's socket.
enum Driver {
    Kernel(kernel::Kernel),
    Userspace(uapi::Uapi),
}

/// A peer's wanted configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub public_key: PublicKey,
    /// `None` leaves the endpoint as it is: WireGuard cannot unset one, and
    /// learns a roaming peer's endpoint from its packets.
    pub endpoint: Option<SocketAddr>,
    pub allowed_ips: Vec<IpNet>,
    /// Seconds; `None` turns keepalives off.
    pub persistent_keepalive: Option<u16>,
}

/// A peer as the interface reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStatus {
    pub public_key: PublicKey,
    pub endpoint: Option<SocketAddr>,
    pub allowed_ips: Vec<IpNet>,
    pub last_handshake: Option<SystemTime>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Seconds; `None` when off.
    pub persistent_keepalive: Option<u16>,
}

/// One change, as both backends apply it: the interface's private key and
/// listen port, and at most one peer.
pub(crate) struct Change<'a> {
    interface: Option<(&'a [u8; 32], u16)>,
    peer: Option<PeerChange<'a>>,
}

pub(crate) enum PeerChange<'a> {
    /// Add or update; its allowed IPs replace the previous ones.
    Set(&'a Peer),
    Remove(&'a PublicKey),
}

/// The error for an interface that went away under us (wireguard-go died,
/// someone deleted it).
fn gone(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("WireGuard interface {name} is gone"),
    )
}

/// How a key appears in messages: base64, as `wg` shows it.
fn show(key: &PublicKey) -> String {
    format_key(key)
}

impl WireGuard {
    /// Creates the interface if missing (kernel: an RTM_NEWLINK of kind
    /// "wireguard"; userspace: starts wireguard-go), sets the private key
    /// and listen port, and keeps existing peers, so that a restarted agent
    /// does not disturb live tunnels. The link is left as it was: bring it
    /// up with [`Rtnl::set_up`].
    pub fn up(
        name: &str,
        backend: Backend,
        private_key: &[u8; 32],
        listen_port: u16,
    ) -> io::Result<WireGuard> {
        let what = || format!("bringing up WireGuard interface {name} ({backend})");
        crate::rtnl::check_name(name).map_err(ctx(what))?;
        let driver = match backend {
            Backend::Kernel => Driver::Kernel(kernel::Kernel::open(name).map_err(ctx(what))?),
            Backend::Userspace => {
                if !uapi::alive(name) {
                    uapi::start(name).map_err(ctx(what))?;
                }
                Driver::Userspace(uapi::Uapi::default())
            }
        };
        let wg = WireGuard {
            name: name.to_owned(),
            driver,
        };
        wg.apply(&Change {
            interface: Some((private_key, listen_port)),
            peer: None,
        })
        .map_err(ctx(what))?;
        debug!("WireGuard interface {name} ({backend}) is up");
        Ok(wg)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn backend(&self) -> Backend {
        match self.driver {
            Driver::Kernel(_) => Backend::Kernel,
            Driver::Userspace(_) => Backend::Userspace,
        }
    }

    /// A missing interface fails with NotFound (see [`gone`]): neither
    /// backend creates one behind our back.
    fn apply(&self, change: &Change<'_>) -> io::Result<()> {
        match &self.driver {
            Driver::Kernel(kernel) => kernel.set(&self.name, change),
            Driver::Userspace(uapi) => uapi.set(&self.name, change),
        }
    }

    /// Adds or updates a peer; its allowed IPs replace the previous ones.
    pub fn set_peer(&self, peer: &Peer) -> io::Result<()> {
        self.apply(&Change {
            interface: None,
            peer: Some(PeerChange::Set(peer)),
        })
        .map_err(ctx(|| {
            format!("setting peer {} on {}", show(&peer.public_key), self.name)
        }))
    }

    /// Removes a peer; an unknown one is not an error.
    pub fn remove_peer(&self, public_key: &PublicKey) -> io::Result<()> {
        self.apply(&Change {
            interface: None,
            peer: Some(PeerChange::Remove(public_key)),
        })
        .map_err(ctx(|| {
            format!("removing peer {} from {}", show(public_key), self.name)
        }))
    }

    /// The peers with their handshake and traffic counters.
    pub fn peers(&self) -> io::Result<Vec<PeerStatus>> {
        match &self.driver {
            Driver::Kernel(kernel) => kernel.peers(&self.name),
            Driver::Userspace(uapi) => uapi.peers(&self.name),
        }
        .map_err(ctx(|| format!("reading the peers of {}", self.name)))
    }

    /// Deletes the interface. Userspace: removing the UAPI socket makes
    /// wireguard-go exit (it watches the socket with inotify), the link is
    /// deleted here too, and this returns once wireguard-go has exited, so
    /// that a daemon restarting at once finds nothing of the old one.
    pub fn delete(self) -> io::Result<()> {
        let WireGuard { name, driver } = self;
        let what = || format!("deleting WireGuard interface {name}");
        let userspace = matches!(driver, Driver::Userspace(_));
        drop(driver); // the kept UAPI connection closed before wireguard-go goes
        let wireguard_go = match userspace {
            true => uapi::delete(&name).map_err(ctx(what))?,
            false => None,
        };
        Rtnl::new()
            .and_then(|rtnl| rtnl.delete_link(&name))
            .map_err(ctx(what))?;
        if let Some(pid) = wireguard_go {
            uapi::wait_for_exit(pid, uapi::EXIT_WAIT);
        }
        debug!("WireGuard interface {name} deleted");
        Ok(())
    }
}

/// Reads a base64 WireGuard private key, or creates one (mode 0600) when
/// the file does not exist yet.
pub fn load_or_create_private_key(path: &std::path::Path) -> io::Result<[u8; 32]> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = try_generate_private_key()?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            writeln!(file, "{}", format_key(&key))?;
            log::info!("created private key {}", path.display());
            Ok(key)
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}
