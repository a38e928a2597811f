//! The lists a message holds (records, locators, ITR-RLOCs): either the
//! bytes of a checked message, read item by item as they are iterated, or
//! a slice of items the caller built for writing. Neither allocates.

use crate::error::{ParseError, ParseErrorKind, WriteError};
use crate::wire::{Cursor, Emit, Writer};
use core::fmt;

/// An item of a [`List`]: how to read one from the wire.
pub trait Item<'a>: Sized + Clone {
    #[doc(hidden)]
    fn read(c: &mut Cursor<'a>) -> Result<Self, ParseError>;
}

/// A bounded list of `T`, borrowed from a message or from the caller.
#[derive(Clone, Copy)]
pub struct List<'a, T> {
    inner: Inner<'a, T>,
}

#[derive(Clone, Copy)]
enum Inner<'a, T> {
    /// `count` items, already checked, in `bytes`.
    Wire {
        count: usize,
        bytes: &'a [u8],
    },
    Slice(&'a [T]),
}

impl<'a, T: Item<'a>> List<'a, T> {
    /// A list to write: the caller's items.
    pub const fn new(items: &'a [T]) -> Self {
        List {
            inner: Inner::Slice(items),
        }
    }

    pub const fn empty() -> Self {
        List::new(&[])
    }

    pub fn len(&self) -> usize {
        match self.inner {
            Inner::Wire { count, .. } => count,
            Inner::Slice(items) => items.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item at `index`, read from the start.
    pub fn get(&self, index: usize) -> Option<T> {
        self.iter().nth(index)
    }

    pub fn iter(&self) -> Iter<'a, T> {
        match self.inner {
            Inner::Wire { count, bytes } => Iter {
                inner: IterInner::Wire {
                    left: count,
                    cursor: Cursor::new(bytes),
                },
            },
            Inner::Slice(items) => Iter {
                inner: IterInner::Slice(items.iter()),
            },
        }
    }

    /// Reads `count` items at `c`, failing with `TooMany` before reading
    /// any when `count` is over `max`.
    pub(crate) fn read(
        c: &mut Cursor<'a>,
        count: usize,
        max: usize,
        field: &'static str,
    ) -> Result<Self, ParseError> {
        if count > max {
            return c.fail(c.pos(), ParseErrorKind::TooMany { field, max });
        }
        let start = c.pos();
        for _ in 0..count {
            T::read(c)?;
        }
        Ok(List {
            inner: Inner::Wire {
                count,
                bytes: c.since(start),
            },
        })
    }

    /// `count` items in `bytes` that a checked view already walked.
    pub(crate) fn from_checked(count: usize, bytes: &'a [u8]) -> Self {
        List {
            inner: Inner::Wire { count, bytes },
        }
    }

    /// The count to write, checked against the bound the parser keeps, so
    /// that what is written can be read back.
    pub(crate) fn count(&self, max: usize, field: &'static str) -> Result<usize, WriteError> {
        match self.len() {
            n if n > max => Err(WriteError::Invalid {
                field,
                value: n as u32,
            }),
            n => Ok(n),
        }
    }
}

impl<'a, T: Item<'a> + Emit> List<'a, T> {
    pub(crate) fn wire_len(&self) -> usize {
        match self.inner {
            Inner::Wire { bytes, .. } => bytes.len(),
            Inner::Slice(items) => items.iter().map(Emit::wire_len).sum(),
        }
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        match self.inner {
            // Checked when read: its bytes are the items.
            Inner::Wire { bytes, .. } => w.bytes(bytes),
            Inner::Slice(items) => items.iter().try_for_each(|item| item.emit(w)),
        }
    }
}

impl<'a, T: Item<'a>> Default for List<'a, T> {
    fn default() -> Self {
        List::empty()
    }
}

impl<'a, T: Item<'a>> From<&'a [T]> for List<'a, T> {
    fn from(items: &'a [T]) -> Self {
        List::new(items)
    }
}

impl<'a, T: Item<'a>, const N: usize> From<&'a [T; N]> for List<'a, T> {
    fn from(items: &'a [T; N]) -> Self {
        List::new(items)
    }
}

impl<'a, T: Item<'a>> IntoIterator for &List<'a, T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Lists are equal when their items are, wherever they live.
impl<'a, T: Item<'a> + PartialEq> PartialEq for List<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a, T: Item<'a> + Eq> Eq for List<'a, T> {}

impl<'a, T: Item<'a> + fmt::Debug> fmt::Debug for List<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The items of a [`List`], by value (they are small: bytes are borrowed).
pub struct Iter<'a, T> {
    inner: IterInner<'a, T>,
}

enum IterInner<'a, T> {
    Wire { left: usize, cursor: Cursor<'a> },
    Slice(core::slice::Iter<'a, T>),
}

impl<'a, T: Item<'a>> Iterator for Iter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.inner {
            IterInner::Wire { left, cursor } => {
                *left = left.checked_sub(1)?;
                // The bytes were checked when the list was read.
                T::read(cursor).ok()
            }
            IterInner::Slice(items) => items.next().cloned(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = match &self.inner {
            IterInner::Wire { left, .. } => *left,
            IterInner::Slice(items) => items.len(),
        };
        (0, Some(left))
    }
}
