//! The map-server's WireGuard interface: one peer per site, whose
//! allowed-ips are the site's control address, a route to each control
//! address, and the map-server's own control address on the interface.
//! It also reads where each peer's packets come from, for NAT traversal.

use crate::config::Config;
use ipnet::IpNet;
use netconf::PublicKey;
use netconf::{Peer, Rtnl, WireGuard};
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// Keepalive interval set on a restored site's peer until the site
/// registers: turning it on makes WireGuard send a handshake at once.
const WAKE_KEEPALIVE: u16 = 25;

pub struct Tunnel {
    wg: WireGuard,
    rtnl: Rtnl,
    /// Control addresses routed through the interface now.
    routed: HashSet<IpAddr>,
    /// Each configured (not revoked) site's key and control address.
    peers: HashMap<PublicKey, IpAddr>,
    public_key: PublicKey,
}

/// A host prefix: /32 or /128.
fn host(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

impl Tunnel {
    /// Brings the interface up as `config` says, keeping the peers it has
    /// (none for the `revoked` keys).
    pub fn up(config: &Config, revoked: &[PublicKey]) -> io::Result<Tunnel> {
        let wg_config = &config.wireguard;
        // Before the key file is created (a Config may not come from a
        // checked file).
        netconf::check::rules::check_interface_name(&wg_config.interface)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let private_key = netconf::load_or_create_private_key(&wg_config.private_key_file)?;
        let wg = WireGuard::up(
            &wg_config.interface,
            wg_config.backend,
            &private_key,
            wg_config.listen_port,
        )?;
        let rtnl = Rtnl::new()?;
        rtnl.add_address(wg.name(), host(config.control_address))?;
        rtnl.set_up(wg.name(), None)?;
        log::info!(
            "WireGuard {} up on port {}, public key {}",
            wg.name(),
            wg_config.listen_port,
            crate::config::format_key(&netconf::public_key(&private_key))
        );
        let mut tunnel = Tunnel {
            wg,
            rtnl,
            routed: HashSet::new(),
            peers: HashMap::new(),
            public_key: netconf::public_key(&private_key),
        };
        tunnel.sync(config, revoked)?;
        Ok(tunnel)
    }

    /// The map-server's WireGuard public key (what tokens pin).
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// Makes the peers and routes those of `config`'s sites: adds the new,
    /// updates the changed, removes the gone and the `revoked` (nothing a
    /// revoked site sends reaches the map-server).
    pub fn sync(&mut self, config: &Config, revoked: &[PublicKey]) -> io::Result<()> {
        self.peers = config
            .sites
            .iter()
            .filter_map(|s| s.wireguard)
            .filter(|w| !revoked.contains(&w.public_key))
            .map(|w| (w.public_key, w.control_address))
            .collect();
        for peer in self.wg.peers()? {
            if !self.peers.contains_key(&peer.public_key) {
                self.wg.remove_peer(&peer.public_key)?;
            }
        }
        for (key, control) in &self.peers {
            self.wg.set_peer(&Peer {
                public_key: *key,
                endpoint: None,
                allowed_ips: vec![host(*control)],
                persistent_keepalive: None,
            })?;
        }
        let addresses: HashSet<IpAddr> = config
            .sites
            .iter()
            .filter_map(|s| s.control_address())
            .collect();
        for gone in self.routed.difference(&addresses) {
            self.rtnl.remove_route(host(*gone), self.wg.name())?;
        }
        for address in &addresses {
            self.rtnl.add_route(host(*address), self.wg.name())?;
        }
        self.routed = addresses;
        Ok(())
    }

    /// Points a site's peer at `endpoint` with keepalive on: WireGuard
    /// handshakes with it at once, so that after a restart the site's
    /// next message, and the first answer to it, get through.
    pub fn wake(&self, key: &PublicKey, endpoint: SocketAddr) -> io::Result<()> {
        let Some(control) = self.peers.get(key) else {
            return Ok(());
        };
        self.wg.set_peer(&Peer {
            public_key: *key,
            endpoint: Some(endpoint),
            allowed_ips: vec![host(*control)],
            persistent_keepalive: Some(WAKE_KEEPALIVE),
        })
    }

    /// Turns a woken peer's keepalive off again: the site keeps its own
    /// towards the map-server.
    pub fn quiet(&self, key: &PublicKey) -> io::Result<()> {
        let Some(control) = self.peers.get(key) else {
            return Ok(());
        };
        self.wg.set_peer(&Peer {
            public_key: *key,
            endpoint: None,
            allowed_ips: vec![host(*control)],
            persistent_keepalive: None,
        })
    }

    /// Adds the peer and route of a node that enrolled.
    pub fn add_site(&mut self, key: PublicKey, control: IpAddr) -> io::Result<()> {
        self.peers.insert(key, control);
        self.wg.set_peer(&Peer {
            public_key: key,
            endpoint: None,
            allowed_ips: vec![host(control)],
            persistent_keepalive: None,
        })?;
        self.rtnl.add_route(host(control), self.wg.name())?;
        self.routed.insert(control);
        Ok(())
    }

    /// Removes a revoked site's peer.
    pub fn revoke(&mut self, key: &PublicKey) -> io::Result<()> {
        self.peers.remove(key);
        self.wg.remove_peer(key)
    }

    /// Index of the interface: control messages must arrive on it.
    pub fn ifindex(&self) -> io::Result<u32> {
        netconf::udp::ifindex(self.wg.name())
    }

    /// Where each peer's packets come from now.
    pub fn endpoints(&self) -> io::Result<Vec<(PublicKey, Option<SocketAddr>)>> {
        Ok(self
            .wg
            .peers()?
            .into_iter()
            .map(|p| (p.public_key, p.endpoint))
            .collect())
    }

    /// Removes the interface (and with it its peers and routes).
    pub fn down(self) -> io::Result<()> {
        self.wg.delete()
    }
}
