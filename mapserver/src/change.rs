//! What the engine changed in the state worth keeping across a restart.
//! The engine only reports it (it does no I/O); the server hands it, in the
//! order it happened, to whoever keeps the state ([`crate::store`]).

use crate::db::Mapping;
use crate::enrolment::Node;
use crate::issue::Issued;
use lisp::EidPrefix;
use netconf::PublicKey;
use std::net::SocketAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A site registered or refreshed a mapping (its expiry moved).
    Registered { site: String, mapping: Box<Mapping> },
    /// A registration is gone: withdrawn, expired, revoked, no longer
    /// allowed by the configuration.
    Withdrawn { eid: EidPrefix },
    /// An operator revoked the site while it had this WireGuard key (none:
    /// a plain LISP site).
    Revoked {
        site: String,
        key: Option<PublicKey>,
    },
    /// A revocation no longer holds: the site has a new key or is gone.
    Unrevoked { site: String },
    /// Where the site's WireGuard packets come from now.
    Observed { site: String, endpoint: SocketAddr },
    /// A group token another map-server issued, seen first in an
    /// enrolment that was accepted.
    TokenLearnt(Box<Issued>),
    /// A node enrolled with a token, which has `uses_left` now.
    Enrolled { node: Box<Node>, uses_left: u32 },
    /// An enrolled node has another name.
    Renamed { from: String, to: String },
}
