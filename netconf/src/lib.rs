//! netconf: the one place where lispguard configures the host's network —
//! the WireGuard interface (generic netlink or wireguard-go's UAPI) and
//! links, addresses, routes and address events (rtnetlink); one netlink
//! stack, neli's. Both the agent and
//! the map-server use it; nothing here shells out to `ip` or `wg`.
//!
//! Everything acts in the network namespace of the calling thread.

pub mod check;
pub mod cli;
pub mod control;
pub mod enrolment;
mod error;
mod genl;
pub mod http;
pub mod rtnl;
pub mod token;
pub mod udp;
pub mod wireguard;

pub mod logger;
pub mod outbox;
pub mod random;

pub use rtnl::{AddressEvent, AddressEvents, Rtnl, ROUTE_PROTOCOL};
pub use wireguard::{
    format_key, generate_private_key, key_fingerprint, load_or_create_private_key, parse_key,
    public_key, try_generate_private_key, Backend, Peer, PeerStatus, WireGuard,
};

/// A WireGuard public key (Curve25519), raw bytes.
pub type PublicKey = [u8; 32];

#[cfg(test)]
mod tests {
    /// The agent and the map-server share these between threads and tasks.
    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::Rtnl>();
        send_sync::<crate::WireGuard>();
        send_sync::<crate::AddressEvents>();
    }
}
