//! The WireGuard interface, through wireguard-control.
//!
//! Kernel backend: generic netlink to the kernel module. Userspace backend:
//! wireguard-go, reached over its UAPI socket `/var/run/wireguard/<name>.sock`.
//!
//! wireguard-control would start wireguard-go itself when that socket does
//! not answer, but it waits for the process's output pipes to close, which
//! never happens when `LOG_LEVEL` (a common variable name) or
//! `WG_PROCESS_FOREGROUND` is in our environment: the daemonised
//! wireguard-go then keeps the pipes. And it reports any failure as a bare
//! "address not available". So [`WireGuard::up`] starts wireguard-go first,
//! without those variables and with its error output kept for the message;
//! wireguard-control then finds the socket and only configures.
//!
//! Network namespaces: the kernel backend acts in the calling thread's
//! namespace; wireguard-go is a child of the calling thread and so inherits
//! that thread's namespace too. But the UAPI socket directory is shared by
//! all namespaces (it is in the filesystem), so interface names must be
//! unique across namespaces when the userspace backend is used.

use std::{
    env, fmt, io,
    net::SocketAddr,
    os::unix::net::UnixStream,
    path::Path,
    process::{Command, Stdio},
    time::SystemTime,
};

use ipnet::IpNet;
use log::debug;
use wireguard_control::{
    self as wgc, backends::userspace, Device, DeviceUpdate, InterfaceName, Key, PeerConfigBuilder,
    PeerInfo,
};

use crate::{
    error::{context, ctx},
    PublicKey, Rtnl,
};

/// Where a WireGuard interface lives; `backend = "kernel"` or
/// `"userspace"` in both daemons' configurations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The kernel module (Linux ≥ 5.6, or OpenWrt's kmod-wireguard).
    #[default]
    Kernel,
    /// wireguard-go, for kernels without the module.
    Userspace,
}

impl Backend {
    fn wgc(self) -> wgc::Backend {
        match self {
            Backend::Kernel => wgc::Backend::Kernel,
            Backend::Userspace => wgc::Backend::Userspace,
        }
    }
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
    iface: InterfaceName,
    backend: Backend,
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
#[derive(Clone, Debug, PartialEq, Eq)]
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

impl From<PeerInfo> for PeerStatus {
    fn from(p: PeerInfo) -> PeerStatus {
        PeerStatus {
            public_key: p.config.public_key.0,
            endpoint: p.config.endpoint,
            allowed_ips: p
                .config
                .allowed_ips
                .iter()
                .filter_map(|a| IpNet::new(a.address, a.cidr).ok())
                .collect(),
            last_handshake: p.stats.last_handshake_time,
            rx_bytes: p.stats.rx_bytes,
            tx_bytes: p.stats.tx_bytes,
            persistent_keepalive: p.config.persistent_keepalive_interval.filter(|&k| k != 0),
        }
    }
}

/// How a key appears in messages: base64, as `wg` shows it.
fn show(key: &PublicKey) -> String {
    Key(*key).to_base64()
}

/// Whether a wireguard-go answers on the UAPI socket for `name`, in either
/// directory wireguard-control uses. A socket file left by a crashed
/// wireguard-go refuses the connection.
fn uapi_alive(name: &str) -> bool {
    ["/var/run/wireguard", "/run/wireguard"].iter().any(|dir| {
        let path = Path::new(dir).join(format!("{name}.sock"));
        path.exists() && UnixStream::connect(path).is_ok()
    })
}

/// Starts wireguard-go for interface `name` and waits for it to daemonise;
/// by then its TUN device and UAPI socket exist. The implementation can be
/// chosen as with wireguard-control and wg-quick.
fn start_wireguard_go(name: &str) -> io::Result<()> {
    let program = env::var("WG_USERSPACE_IMPLEMENTATION")
        .or_else(|_| env::var("WG_QUICK_USERSPACE_IMPLEMENTATION"))
        .unwrap_or_else(|_| "wireguard-go".to_string());
    let output = Command::new(&program)
        .arg(name)
        .env_remove("LOG_LEVEL")
        .env_remove("WG_PROCESS_FOREGROUND")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| context(format_args!("starting {program}"), e))?;
    if output.status.success() {
        return Ok(());
    }
    // The last line is the error; the lines before, a banner saying the
    // kernel module would be better.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reason = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no error output");
    Err(io::Error::other(format!(
        "{program} {name} failed ({}): {}",
        output.status,
        reason.trim()
    )))
}

impl WireGuard {
    /// Creates the interface if missing (userspace: starts wireguard-go, see
    /// the module doc), sets the private key and listen port, and keeps
    /// existing peers, so that a restarted agent does not disturb live
    /// tunnels. The link is left as it was: bring it up with
    /// [`Rtnl::set_up`].
    pub fn up(
        name: &str,
        backend: Backend,
        private_key: &[u8; 32],
        listen_port: u16,
    ) -> io::Result<WireGuard> {
        let what = || format!("bringing up WireGuard interface {name} ({backend})");
        let iface: InterfaceName = name
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {e}", what())))?;
        if backend == Backend::Userspace && !uapi_alive(name) {
            start_wireguard_go(name).map_err(ctx(what))?;
        }
        DeviceUpdate::new()
            .set_private_key(Key(*private_key))
            .set_listen_port(listen_port)
            .apply(&iface, backend.wgc())
            .map_err(|e| match (backend, e.raw_os_error()) {
                (Backend::Kernel, Some(libc::EOPNOTSUPP)) => context(
                    format_args!("{}: this kernel has no WireGuard module", what()),
                    e,
                ),
                _ => context(what(), e),
            })?;
        debug!("WireGuard interface {name} ({backend}) is up");
        Ok(WireGuard {
            name: name.to_owned(),
            iface,
            backend,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Fails when the interface has gone (wireguard-go died, someone deleted
    /// it): wireguard-control would otherwise silently create a new, keyless
    /// interface when asked to change a peer on a missing one.
    fn check_exists(&self) -> io::Result<()> {
        let gone = match self.backend {
            Backend::Userspace => !uapi_alive(&self.name),
            Backend::Kernel => match Rtnl::new()?.ifindex(&self.name) {
                Ok(_) => false,
                Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                Err(e) => return Err(e),
            },
        };
        if gone {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("WireGuard interface {} is gone", self.name),
            ));
        }
        Ok(())
    }

    /// Adds or updates a peer; its allowed IPs replace the previous ones.
    pub fn set_peer(&self, peer: &Peer) -> io::Result<()> {
        let what = || format!("setting peer {} on {}", show(&peer.public_key), self.name);
        self.check_exists().map_err(ctx(what))?;
        let mut config = PeerConfigBuilder::new(&Key(peer.public_key))
            .replace_allowed_ips()
            .set_persistent_keepalive_interval(peer.persistent_keepalive.unwrap_or(0));
        for net in &peer.allowed_ips {
            config = config.add_allowed_ip(net.addr(), net.prefix_len());
        }
        if let Some(endpoint) = peer.endpoint {
            config = config.set_endpoint(endpoint);
        }
        DeviceUpdate::new()
            .add_peer(config)
            .apply(&self.iface, self.backend.wgc())
            .map_err(ctx(what))
    }

    /// Removes a peer; an unknown one is not an error.
    pub fn remove_peer(&self, public_key: &PublicKey) -> io::Result<()> {
        let what = || format!("removing peer {} from {}", show(public_key), self.name);
        self.check_exists().map_err(ctx(what))?;
        DeviceUpdate::new()
            .remove_peer_by_key(&Key(*public_key))
            .apply(&self.iface, self.backend.wgc())
            .map_err(ctx(what))
    }

    /// The peers with their handshake and traffic counters.
    pub fn peers(&self) -> io::Result<Vec<PeerStatus>> {
        let device = Device::get(&self.iface, self.backend.wgc())
            .map_err(ctx(|| format!("reading the peers of {}", self.name)))?;
        Ok(device.peers.into_iter().map(PeerStatus::from).collect())
    }

    /// Deletes the interface. Userspace: removing the UAPI socket makes
    /// wireguard-go exit (it watches the socket with inotify), and the link
    /// is deleted here too so that it is gone when this returns, not when
    /// wireguard-go gets round to exiting.
    pub fn delete(self) -> io::Result<()> {
        let what = || format!("deleting WireGuard interface {}", self.name);
        if self.backend == Backend::Userspace {
            userspace::delete_interface(&self.iface).map_err(ctx(what))?;
        }
        Rtnl::new()
            .and_then(|rtnl| rtnl.delete_link(&self.name))
            .map_err(ctx(what))?;
        debug!("WireGuard interface {} deleted", self.name);
        Ok(())
    }
}

/// The public key of a private key (X25519 with the base point).
pub fn public_key(private_key: &[u8; 32]) -> PublicKey {
    Key(*private_key).get_public().0
}

/// A new random private key, clamped as X25519 wants.
pub fn generate_private_key() -> [u8; 32] {
    Key::generate_private().0
}

/// A WireGuard key in its usual base64 form (as `wg genkey` prints it).
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    Key::from_base64(text.trim()).map(|key| key.0).map_err(|_| {
        format!(
            "'{}' is not a WireGuard key (32 bytes in base64)",
            text.trim()
        )
    })
}

/// A WireGuard key in base64.
pub fn format_key(key: &[u8; 32]) -> String {
    Key(*key).to_base64()
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
            let key = generate_private_key();
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
