//! Datagrams the engine wants sent, and the state it changed. The engine
//! decides, the socket layer sends after the engine's lock is released.
//! Buffers are reused between calls, so handling a message allocates
//! nothing once warm.

use crate::change::Change;
use lisp::WriteError;
use std::net::SocketAddr;

/// Largest control message the map-server writes: 8 records with keys and
/// NAT-Traversal locators fit in well under this.
pub const MAX_DATAGRAM: usize = 4096;

#[derive(Default)]
pub struct Outbox {
    datagrams: Vec<(SocketAddr, Box<[u8]>, usize)>,
    len: usize,
    /// What changed in the state kept across restarts, in order.
    pub changes: Vec<Change>,
}

impl Outbox {
    /// Queues a datagram to `to` written by `write`; queues nothing when
    /// writing fails.
    pub fn push(
        &mut self,
        to: SocketAddr,
        write: impl FnOnce(&mut [u8]) -> Result<usize, WriteError>,
    ) -> Result<&[u8], WriteError> {
        if self.len == self.datagrams.len() {
            let buf = vec![0; MAX_DATAGRAM].into_boxed_slice();
            self.datagrams.push((to, buf, 0));
        }
        let slot = &mut self.datagrams[self.len];
        let len = write(&mut slot.1)?;
        slot.0 = to;
        slot.2 = len;
        self.len += 1;
        Ok(&slot.1[..len])
    }

    /// Queues bytes written before (a retransmission).
    pub fn push_bytes(&mut self, to: SocketAddr, bytes: &[u8]) {
        let _ = self.push(to, |buf| {
            let dst = buf
                .get_mut(..bytes.len())
                .ok_or(WriteError::BufferTooSmall {
                    needed: bytes.len(),
                    available: MAX_DATAGRAM,
                })?;
            dst.copy_from_slice(bytes);
            Ok(bytes.len())
        });
    }

    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.datagrams[..self.len]
            .iter()
            .map(|(to, buf, len)| (*to, &buf[..*len]))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the datagrams (the changes are taken separately).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}
