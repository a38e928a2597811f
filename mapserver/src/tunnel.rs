//! The map-server's WireGuard interface: one peer per site, whose
//! allowed-ips are the site's control address, a route to each control
//! address, and the map-server's own control address on the interface.
//! It also reads where each peer's packets come from, for NAT traversal.

use crate::config::{Config, PublicKey};
use ipnet::IpNet;
use netconf::{Peer, Rtnl, WireGuard};
use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};

pub struct Tunnel {
    wg: WireGuard,
    rtnl: Rtnl,
    /// Control addresses routed through the interface now.
    routed: HashSet<IpAddr>,
}

/// A host prefix: /32 or /128.
fn host(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

impl Tunnel {
    /// Brings the interface up as `config` says, keeping the peers it has.
    pub fn up(config: &Config) -> io::Result<Tunnel> {
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
        };
        tunnel.sync(config)?;
        Ok(tunnel)
    }

    /// Makes the peers and routes those of `config`'s sites: adds the new,
    /// updates the changed, removes the gone.
    pub fn sync(&mut self, config: &Config) -> io::Result<()> {
        let wanted: HashSet<PublicKey> = config.sites.iter().map(|s| s.public_key).collect();
        for peer in self.wg.peers()? {
            if !wanted.contains(&peer.public_key) {
                self.wg.remove_peer(&peer.public_key)?;
            }
        }
        for site in &config.sites {
            self.wg.set_peer(&Peer {
                public_key: site.public_key,
                endpoint: None,
                allowed_ips: vec![host(site.control_address)],
                persistent_keepalive: None,
            })?;
        }
        let addresses: HashSet<IpAddr> = config.sites.iter().map(|s| s.control_address).collect();
        for gone in self.routed.difference(&addresses) {
            self.rtnl.remove_route(host(*gone), self.wg.name())?;
        }
        for address in &addresses {
            self.rtnl.add_route(host(*address), self.wg.name())?;
        }
        self.routed = addresses;
        Ok(())
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
