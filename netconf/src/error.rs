//! Error context: every error leaving this crate says what was being done,
//! e.g. "adding 10.1.0.0/24 via lg0: File exists (os error 17)", because the
//! agent logs these verbatim and a bare errno is useless in a router's log.

use std::{fmt::Display, io};

/// Prefixes `err` with `what`, keeping its kind so callers can still match
/// on `ErrorKind` (NotFound, AlreadyExists, ...).
pub(crate) fn context(what: impl Display, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// `map_err` helper: `.map_err(ctx(|| format!("adding {net}")))`.
pub(crate) fn ctx<D: Display>(what: impl FnOnce() -> D) -> impl FnOnce(io::Error) -> io::Error {
    move |err| context(what(), err)
}

/// A kernel errno (positive) as an io::Error.
pub(crate) fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// neli's serialisation and builder errors, which only happen on a bug in
/// how we build a message; they carry no errno.
pub(crate) fn invalid(what: impl Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}
