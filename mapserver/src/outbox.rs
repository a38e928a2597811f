//! What the engine asks of the socket layer: datagrams to send, and the
//! state it changed for the store. The engine decides; the server hands
//! the changes on in order while it holds the engine, and sends after the
//! engine's lock is released. Buffers are reused between calls, so
//! handling a message allocates nothing once warm.

use crate::change::Change;
use netconf::outbox::Bytes;
use std::net::SocketAddr;

pub use netconf::outbox::MAX_DATAGRAM;

/// The map-server engine's outbox.
pub type Outbox = netconf::outbox::Outbox<Effect>;

/// One thing the engine asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A control message to a site; its bytes are in the outbox.
    Send { to: SocketAddr, message: Bytes },
    /// Keep this across restarts ([`crate::store`]).
    Store(Change),
}

/// How the map-server's engine and server use their outbox.
pub trait OutboxExt {
    /// Queues a datagram to `to` written by `write`; queues nothing when
    /// writing fails.
    fn send<E>(
        &mut self,
        to: SocketAddr,
        write: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<&[u8], E>;
    /// Queues bytes written before (a retransmission).
    fn send_copy(&mut self, to: SocketAddr, bytes: &[u8]);
    fn store(&mut self, change: Change);
    /// The datagrams, in order.
    fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])>;
    /// The changes, in the order they were made.
    fn changes(&self) -> impl Iterator<Item = &Change>;
}

impl OutboxExt for Outbox {
    fn send<E>(
        &mut self,
        to: SocketAddr,
        write: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<&[u8], E> {
        let message = self.write(write)?;
        self.push(Effect::Send { to, message });
        Ok(self.bytes(message))
    }

    fn send_copy(&mut self, to: SocketAddr, bytes: &[u8]) {
        let message = self.copy(bytes);
        self.push(Effect::Send { to, message });
    }

    fn store(&mut self, change: Change) {
        self.push(Effect::Store(change));
    }

    fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.actions().iter().filter_map(|a| match a {
            Effect::Send { to, message } => Some((*to, self.bytes(*message))),
            Effect::Store(_) => None,
        })
    }

    fn changes(&self) -> impl Iterator<Item = &Change> {
        self.actions().iter().filter_map(|a| match a {
            Effect::Store(change) => Some(change),
            Effect::Send { .. } => None,
        })
    }
}
