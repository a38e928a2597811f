//! What an engine asks its I/O layer to do: typed actions in the order
//! they must be carried out, and the bytes some of them carry (datagrams,
//! packets) in buffers the caller keeps between calls, so that handling a
//! message allocates nothing once the buffers are warm. Both daemons'
//! engines write into one; the I/O layer carries it out, then clears it.

/// Room a buffer is given before it is written: the largest control
/// message either engine writes (8 records with keys and NAT-Traversal
/// locators fit well under it).
pub const MAX_DATAGRAM: usize = 4096;

/// Buffers kept across [`Outbox::clear`]: more than one event needs (a
/// reply and its acknowledgement, a few queued packets). A burst that
/// needs more (a negative answer refusing hundreds of queued packets)
/// allocates for itself and gives the memory back.
pub const BUFFERS_KEPT: usize = 16;

/// Bytes held by an [`Outbox`] for one of its actions: read them with
/// [`Outbox::bytes`]. Valid until the outbox is cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(usize);

/// Actions of type `A`, with the bytes they carry.
#[derive(Debug)]
pub struct Outbox<A> {
    /// Reused: the first `used` hold this round's bytes.
    buffers: Vec<(Vec<u8>, usize)>,
    used: usize,
    actions: Vec<A>,
}

impl<A> Default for Outbox<A> {
    fn default() -> Self {
        Outbox {
            buffers: Vec::new(),
            used: 0,
            actions: Vec::new(),
        }
    }
}

impl<A> Outbox<A> {
    /// Bytes written by `write` into a buffer of at least
    /// [`MAX_DATAGRAM`]; nothing is kept when writing fails.
    pub fn write<E>(
        &mut self,
        write: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<Bytes, E> {
        let (buf, len) = self.next_buffer(MAX_DATAGRAM);
        // A writer never claims more than it had room for; if one did, the
        // bytes end at the buffer's end rather than out of bounds.
        *len = write(buf)?.min(buf.len());
        self.used += 1;
        Ok(Bytes(self.used - 1))
    }

    /// A copy of `bytes` (a packet that waited, a message sent again).
    pub fn copy(&mut self, bytes: &[u8]) -> Bytes {
        let (buf, len) = self.next_buffer(bytes.len());
        buf[..bytes.len()].copy_from_slice(bytes);
        *len = bytes.len();
        self.used += 1;
        Bytes(self.used - 1)
    }

    /// The next free buffer, at least `room` long.
    fn next_buffer(&mut self, room: usize) -> &mut (Vec<u8>, usize) {
        if self.used == self.buffers.len() {
            self.buffers.push((Vec::new(), 0));
        }
        let slot = &mut self.buffers[self.used];
        if slot.0.len() < room {
            slot.0.resize(room, 0);
        }
        slot
    }

    /// The bytes an action carries.
    pub fn bytes(&self, id: Bytes) -> &[u8] {
        self.buffers
            .get(id.0)
            .filter(|_| id.0 < self.used)
            .map_or(&[], |(buf, len)| &buf[..*len])
    }

    /// Adds an action, to be carried out after those before it.
    pub fn push(&mut self, action: A) {
        self.actions.push(action);
    }

    /// The actions, in the order they must be carried out.
    pub fn actions(&self) -> &[A] {
        &self.actions
    }

    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Forgets the actions and their bytes; keeps up to [`BUFFERS_KEPT`]
    /// buffers.
    pub fn clear(&mut self) {
        self.actions.clear();
        self.used = 0;
        self.buffers.truncate(BUFFERS_KEPT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_bytes_read_back() {
        let mut out: Outbox<Bytes> = Outbox::default();
        let a = out.write(|b| -> Result<usize, ()> {
            b[..2].copy_from_slice(b"hi");
            Ok(2)
        });
        let a = a.unwrap();
        out.push(a);
        let big = vec![7u8; MAX_DATAGRAM + 10];
        let b = out.copy(&big);
        assert_eq!(out.bytes(a), b"hi");
        assert_eq!(out.bytes(b), &big[..]);
        assert!(out.write(|_| Err::<usize, ()>(())).is_err());
        out.clear();
        assert!(out.is_empty());
        assert_eq!(out.bytes(a), b"", "cleared");
        let c = out.copy(b"again");
        assert_eq!((c, out.bytes(c)), (a, &b"again"[..]));
        assert_eq!(out.buffers.len(), 3, "no buffer added once warm");
    }

    #[test]
    fn a_burst_gives_its_buffers_back() {
        let mut out: Outbox<Bytes> = Outbox::default();
        for n in 0..100u8 {
            let id = out.copy(&[n; 1400]);
            out.push(id);
        }
        assert_eq!(out.bytes(out.actions()[99]), &[99; 1400][..]);
        out.clear();
        assert_eq!(out.buffers.len(), BUFFERS_KEPT);
    }
}
